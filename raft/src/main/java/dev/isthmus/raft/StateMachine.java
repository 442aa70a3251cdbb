package dev.isthmus.raft;

/**
 * What a Raft group replicates into: the controller's cluster metadata, or a partition's derived state.
 * Called on the group's shard, in offset order, only with committed entries (paper §5.3: "apply
 * log[lastApplied] to the state machine"). Implementations must be deterministic: the same entries in the
 * same order give the same state on every replica.
 *
 * <p>A group whose state is the log itself (a Kafka partition: consumers read the log, the high watermark is
 * the commit offset) uses {@link #NONE}: the group then never reads committed entries back from storage, and
 * its snapshots are empty markers that only move the log start.
 */
public interface StateMachine {
    /** The state machine of a group whose log is its state: applies nothing, snapshots to zero bytes. */
    StateMachine NONE = new StateMachine() {
        @Override
        public void apply(Entry entry) {
            throw new IllegalStateException("StateMachine.NONE is never given entries");
        }

        @Override
        public byte[] snapshot() {
            return new byte[0];
        }

        @Override
        public void restore(SnapshotMeta meta, byte[] data) {
        }

        @Override
        public boolean consumesEntries() {
            return false;
        }
    };

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

    /** False when committed entries need not be read back and applied (see {@link #NONE}). */
    default boolean consumesEntries() {
        return true;
    }
}
