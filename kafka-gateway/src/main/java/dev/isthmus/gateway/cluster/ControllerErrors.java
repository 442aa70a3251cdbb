package dev.isthmus.gateway.cluster;

/** The controller's result codes: Kafka's error codes, so the gateway passes them to clients unchanged. */
public final class ControllerErrors {
    private ControllerErrors() {
    }

    public static final int NONE = 0;
    public static final int UNKNOWN_SERVER_ERROR = -1;
    public static final int UNKNOWN_TOPIC_OR_PARTITION = 3;
    public static final int REQUEST_TIMED_OUT = 7;
    public static final int INVALID_TOPIC_EXCEPTION = 17;
    public static final int TOPIC_ALREADY_EXISTS = 36;
    public static final int INVALID_PARTITIONS = 37;
    public static final int INVALID_REPLICATION_FACTOR = 38;
    public static final int INVALID_REPLICA_ASSIGNMENT = 39;
    public static final int INVALID_CONFIG = 40;
    public static final int NOT_CONTROLLER = 41;
    public static final int INVALID_REQUEST = 42;
    public static final int NO_REASSIGNMENT_IN_PROGRESS = 85;

    /** Retriable: the caller may send the command again (to the new leader). */
    public static boolean retriable(int code) {
        return code == NOT_CONTROLLER || code == REQUEST_TIMED_OUT;
    }
}
