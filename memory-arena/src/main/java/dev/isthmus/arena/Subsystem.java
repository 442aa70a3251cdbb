package dev.isthmus.arena;

/** Who memory is for: each has its own budget (limit and live usage) in a shard's {@link MemoryArena}. */
public enum Subsystem {
    /** Socket receive buffers and requests being decoded. */
    NETWORK_RECEIVE,
    /** The batch cache: recently written and read batches, ready for the wire; gives memory back under pressure. */
    BATCH_CACHE,
    /** Read-ahead buffers of sequential readers. */
    READ_AHEAD,
    /** Write-behind chunks of the log appender. */
    WRITE_BEHIND,
    /** Raft state: in-flight entries, snapshots being sent or received. */
    RAFT,
    /** Everything else. */
    OTHER;

    static final Subsystem[] ALL = values();
}
