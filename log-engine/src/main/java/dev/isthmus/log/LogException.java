package dev.isthmus.log;

/**
 * An append or read the log refuses, with the Kafka error it maps to. Nothing was appended when it is thrown.
 */
public final class LogException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** The Kafka protocol errors the log engine reports. */
    public enum Kind {
        /** CRC mismatch or inconsistent lengths (Kafka CORRUPT_MESSAGE, 2). */
        CORRUPT_MESSAGE(2),
        /** A well-formed batch the log does not accept: magic &lt; 2, bad record count (INVALID_RECORD, 87). */
        INVALID_RECORD(87),
        /** Larger than max.message.bytes (MESSAGE_TOO_LARGE, 10). */
        MESSAGE_TOO_LARGE(10),
        /** Outside [log start, log end] (OFFSET_OUT_OF_RANGE, 1). */
        OFFSET_OUT_OF_RANGE(1),
        /** The disk failed; the log is read-only (KAFKA_STORAGE_ERROR, 56). */
        STORAGE_ERROR(56),
        /**
         * The shard's memory budget for the operation is used up for now (a read into the batch cache found no
         * memory even after the cache gave back what it could); retry later (REQUEST_TIMED_OUT, 7).
         */
        NO_MEMORY(7);

        public final short kafkaCode;

        Kind(int code) {
            this.kafkaCode = (short) code;
        }
    }

    private final Kind kind;

    public LogException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }
}
