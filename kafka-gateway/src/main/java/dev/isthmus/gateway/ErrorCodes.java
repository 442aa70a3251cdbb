package dev.isthmus.gateway;

/** Kafka error codes the gateway answers with (names as in Kafka's Errors). */
public final class ErrorCodes {
    private ErrorCodes() {
    }

    public static final short UNKNOWN_SERVER_ERROR = -1;
    public static final short NONE = 0;
    public static final short OFFSET_OUT_OF_RANGE = 1;
    public static final short CORRUPT_MESSAGE = 2;
    public static final short UNKNOWN_TOPIC_OR_PARTITION = 3;
    public static final short LEADER_NOT_AVAILABLE = 5;
    public static final short REQUEST_TIMED_OUT = 7;
    public static final short MESSAGE_TOO_LARGE = 10;
    public static final short COORDINATOR_NOT_AVAILABLE = 15;
    public static final short INVALID_TOPIC_EXCEPTION = 17;
    public static final short INVALID_REQUIRED_ACKS = 21;
    public static final short UNSUPPORTED_VERSION = 35;
    public static final short TOPIC_ALREADY_EXISTS = 36;
    public static final short INVALID_PARTITIONS = 37;
    public static final short INVALID_REPLICATION_FACTOR = 38;
    public static final short INVALID_REQUEST = 42;
    public static final short OUT_OF_ORDER_SEQUENCE_NUMBER = 45;
    public static final short INVALID_PRODUCER_EPOCH = 47;
    public static final short TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53;
    public static final short KAFKA_STORAGE_ERROR = 56;
    public static final short UNKNOWN_TOPIC_ID = 100;
    public static final short THROTTLING_QUOTA_EXCEEDED = 89;
}
