package dev.isthmus.gateway.group;

/**
 * The Kafka error codes the group state machine answers with, numbered and named as in Kafka's {@code Errors}.
 * The package keeps its own list so that it depends on nothing of the gateway (the gateway depends on it).
 */
public final class GroupErrors {
    private GroupErrors() {
    }

    public static final short UNKNOWN_SERVER_ERROR = -1;
    public static final short NONE = 0;
    public static final short UNKNOWN_TOPIC_OR_PARTITION = 3;
    public static final short NOT_LEADER_OR_FOLLOWER = 6;
    public static final short REQUEST_TIMED_OUT = 7;
    public static final short MESSAGE_TOO_LARGE = 10;
    public static final short OFFSET_METADATA_TOO_LARGE = 12;
    public static final short COORDINATOR_LOAD_IN_PROGRESS = 14;
    public static final short COORDINATOR_NOT_AVAILABLE = 15;
    public static final short NOT_COORDINATOR = 16;
    public static final short RECORD_LIST_TOO_LARGE = 18;
    public static final short NOT_ENOUGH_REPLICAS = 19;
    public static final short NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20;
    public static final short ILLEGAL_GENERATION = 22;
    public static final short INCONSISTENT_GROUP_PROTOCOL = 23;
    public static final short INVALID_GROUP_ID = 24;
    public static final short UNKNOWN_MEMBER_ID = 25;
    public static final short INVALID_SESSION_TIMEOUT = 26;
    public static final short REBALANCE_IN_PROGRESS = 27;
    public static final short INVALID_COMMIT_OFFSET_SIZE = 28;
    public static final short INVALID_FETCH_SIZE = 4;
    public static final short KAFKA_STORAGE_ERROR = 56;
    public static final short NON_EMPTY_GROUP = 68;
    public static final short GROUP_ID_NOT_FOUND = 69;
    public static final short MEMBER_ID_REQUIRED = 79;
    public static final short GROUP_MAX_SIZE_REACHED = 81;
    public static final short FENCED_INSTANCE_ID = 82;
    public static final short GROUP_SUBSCRIBED_TO_TOPIC = 86;
    public static final short UNSTABLE_OFFSET_COMMIT = 88;

    /**
     * The error a group request answers with when appending its records to the offsets partition failed with
     * {@code appendError} (Kafka's {@code appendGroupMetadataErrorToResponseError}): the client either retries at
     * the same coordinator, looks the coordinator up again, or gives up. {@code commit} selects the offset-commit
     * flavour, where a record too large is INVALID_COMMIT_OFFSET_SIZE.
     */
    public static short forAppend(short appendError, boolean commit) {
        return switch (appendError) {
            case NONE -> NONE;
            case UNKNOWN_TOPIC_OR_PARTITION, NOT_ENOUGH_REPLICAS, NOT_ENOUGH_REPLICAS_AFTER_APPEND, REQUEST_TIMED_OUT,
                 COORDINATOR_NOT_AVAILABLE -> COORDINATOR_NOT_AVAILABLE;
            case NOT_LEADER_OR_FOLLOWER, KAFKA_STORAGE_ERROR, NOT_COORDINATOR -> NOT_COORDINATOR;
            case MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE, INVALID_FETCH_SIZE ->
                commit ? INVALID_COMMIT_OFFSET_SIZE : UNKNOWN_SERVER_ERROR;
            default -> COORDINATOR_NOT_AVAILABLE;
        };
    }
}
