package dev.isthmus.gateway.txn;

/**
 * The Kafka error codes of the transaction APIs (names and numbers as in Kafka's {@code Errors}), and one internal
 * code the state machine hands its shell and that never reaches a client ({@link #NEED_PRODUCER_ID}).
 */
public final class TxnErrors {
    private TxnErrors() {
    }

    public static final short UNKNOWN_SERVER_ERROR = -1;
    public static final short NONE = 0;
    public static final short UNKNOWN_TOPIC_OR_PARTITION = 3;
    public static final short NOT_LEADER_OR_FOLLOWER = 6;
    public static final short REQUEST_TIMED_OUT = 7;
    public static final short COORDINATOR_LOAD_IN_PROGRESS = 14;
    public static final short COORDINATOR_NOT_AVAILABLE = 15;
    public static final short NOT_COORDINATOR = 16;
    public static final short NOT_ENOUGH_REPLICAS = 19;
    public static final short NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20;
    public static final short UNSUPPORTED_VERSION = 35;
    public static final short INVALID_REQUEST = 42;
    public static final short UNSUPPORTED_FOR_MESSAGE_FORMAT = 43;
    public static final short INVALID_PRODUCER_EPOCH = 47;
    public static final short INVALID_TXN_STATE = 48;
    public static final short INVALID_PRODUCER_ID_MAPPING = 49;
    public static final short INVALID_TRANSACTION_TIMEOUT = 50;
    public static final short CONCURRENT_TRANSACTIONS = 51;
    public static final short TRANSACTION_COORDINATOR_FENCED = 52;
    public static final short TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53;
    public static final short OPERATION_NOT_ATTEMPTED = 55;
    public static final short KAFKA_STORAGE_ERROR = 56;
    public static final short PRODUCER_FENCED = 90;
    public static final short TRANSACTIONAL_ID_NOT_FOUND = 105;
    public static final short TRANSACTION_ABORTABLE = 120;
    public static final short INVALID_REGULAR_EXPRESSION = 128;

    /**
     * Internal: the request needs a new producer id and this shard's block of ids is used up; the shell waits for
     * the next block from the controller and asks again. Nothing was changed. Never sent to a client.
     */
    public static final short NEED_PRODUCER_ID = Short.MIN_VALUE;

    /** Whether {@code code} is one of the retriable errors the client simply tries again. */
    public static boolean retriable(short code) {
        return code == COORDINATOR_LOAD_IN_PROGRESS || code == COORDINATOR_NOT_AVAILABLE || code == NOT_COORDINATOR
            || code == CONCURRENT_TRANSACTIONS || code == REQUEST_TIMED_OUT;
    }
}
