package dev.isthmus.raft;

/**
 * The opaque content of a {@link EntryKind#DATA} entry. Raft never looks inside: it needs only the size (for
 * flow control and batching) and the number of records (the number of Kafka offsets the entry covers).
 *
 * <p>The simulator and the controller use {@link BytesPayload} (a small heap array); production partitions
 * will use a record batch held in an IoBuf. Implementations must be immutable once proposed: the same
 * payload object may be read by the log, sent to several followers and applied, in any order.
 */
public interface Payload {
    /** Bytes this payload occupies in the log and on the wire (excluding Raft's own entry header). */
    int sizeBytes();

    /** Number of records, >= 1: the entry covers offsets {@code [base, base + recordCount() - 1]}. */
    int recordCount();
}
