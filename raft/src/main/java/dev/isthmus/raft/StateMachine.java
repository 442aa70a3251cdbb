package dev.isthmus.raft;

/**
 * What a Raft group replicates into: the partition's state (high watermark, producer state) or the
 * controller's cluster metadata. Called on the group's shard, in offset order, only with committed entries
 * (paper §5.3: "apply log[lastApplied] to the state machine"). Implementations must be deterministic: the
 * same entries in the same order give the same state on every replica.
 */
public interface StateMachine {
    /**
     * Applies one committed entry of any kind (most implementations act on {@link EntryKind#DATA} only).
     * Entries arrive exactly once per incarnation, contiguous, from {@link #restore}'s point on.
     */
    void apply(Entry entry);

    /** The state as of the last applied entry, as bytes for a snapshot (thesis §5.1). */
    byte[] snapshot();

    /**
     * Replaces the whole state with a snapshot's (on start-up and when the leader installs one). {@code meta}
     * tells up to which offset the state reflects the log.
     */
    void restore(SnapshotMeta meta, byte[] data);
}
