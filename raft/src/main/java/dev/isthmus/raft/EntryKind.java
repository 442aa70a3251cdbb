package dev.isthmus.raft;

/**
 * What a log entry carries. Production encodes every kind as a Kafka v2 record batch: {@link #DATA} as an
 * ordinary batch, the others as control batches (attribute bit 5) that consumers never see.
 */
public enum EntryKind {
    /** An opaque {@link Payload}: for a partition, a producer's record batch; for the controller, a command. */
    DATA(0),
    /**
     * The no-op a new leader appends at the start of its term, so that entries of earlier terms become
     * committed through it (paper §5.4.2, §8). One offset, no payload.
     */
    LEADER_CHANGE(1),
    /** A membership {@link Configuration}; it takes effect when appended, not when committed (thesis §4.1). */
    CONFIGURATION(2),
    /**
     * A prefix truncation of a group whose log is its state (a partition: retention, Kafka DeleteRecords): once
     * committed, every replica drops its log below {@link Entry#newStartOffset()} (a snapshot there, then the
     * log's prefix). One offset, no payload.
     */
    PREFIX_TRUNCATION(3);

    private final int code;

    EntryKind(int code) {
        this.code = code;
    }

    /** The stable wire and disk code of this kind. */
    public int code() {
        return code;
    }

    /** The kind with wire code {@code code}, or null when no kind has it. */
    public static EntryKind fromCode(int code) {
        return switch (code) {
            case 0 -> DATA;
            case 1 -> LEADER_CHANGE;
            case 2 -> CONFIGURATION;
            case 3 -> PREFIX_TRUNCATION;
            default -> null;
        };
    }
}
