package dev.isthmus.raft;

/**
 * The opaque content of a {@link EntryKind#DATA} entry. Raft never looks inside: it needs only the size (for
 * flow control and batching) and the number of records (the number of Kafka offsets the entry covers).
 *
 * <p>The simulator and the controller use {@link BytesPayload} (a small heap array); a partition's produce path
 * uses a {@link dev.isthmus.raft.storage.KafkaBatchPayload} in a chain of its shard's arena memory. Implementations
 * must be immutable once proposed: the same payload object may be read by the log, sent to several followers and
 * applied, in any order.
 *
 * <h2>Lifetime</h2>
 * A payload in arena memory is reference counted: whoever keeps it beyond the call that handed it over (the
 * Raft log's tail cache and append queue, a message queued for a follower's connection) calls {@link #retain()}
 * and later {@link #release()} exactly once; the creator holds the first reference. The last release frees the
 * memory on its owner shard, from any thread. Heap payloads need none of this: both calls do nothing.
 */
public interface Payload {
    /** Bytes this payload occupies in the log and on the wire (excluding Raft's own entry header). */
    int sizeBytes();

    /** Number of records, >= 1: the entry covers offsets {@code [base, base + recordCount() - 1]}. */
    int recordCount();

    /**
     * Takes one more reference (returns this). Safe on any thread while the caller holds a reference.
     *
     * @throws IllegalStateException when the payload was already freed (a use after free)
     */
    default Payload retain() {
        return this;
    }

    /** Gives one reference back; the last frees the payload's memory. Safe on any thread. */
    default void release() {
    }
}
