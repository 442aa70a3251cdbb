package dev.isthmus.uring.shard;

/**
 * One shard's possibly-stale view of another shard, refreshed from the metadata piggybacked on every reply
 * that comes back from it (technique 8: core-local metadata instead of global locks). Owned by the viewing
 * shard; read it only on that shard.
 *
 * <p>Slots {@link #TASK_QUEUE_DEPTH} to {@link #LOOP_BUSY_PERMILLE} are filled by the runtime; upper layers
 * register their own slots (from {@link #FIRST_USER_SLOT}) with {@link Shard#publishPiggyback}, for example
 * the log engine's fdatasync p99 so a gateway can fail a request early when the target's disk cannot make its
 * deadline.
 */
public final class RemoteView {
    /** Number of piggyback slots per reply. */
    public static final int SLOTS = 8;
    /** Tasks waiting on the remote shard when it replied. */
    public static final int TASK_QUEUE_DEPTH = 0;
    /** Cross-shard messages waiting in the remote shard's inbound queues when it replied. */
    public static final int INBOUND_DEPTH = 1;
    /** The remote loop's busy share over its last measurement window, in permille. */
    public static final int LOOP_BUSY_PERMILLE = 2;
    /** The first slot free for upper layers. */
    public static final int FIRST_USER_SLOT = 3;

    private final long[] values = new long[SLOTS];
    private long updatedNs;
    private long replies;

    void update(long[] piggyback, long nowNs) {
        System.arraycopy(piggyback, 0, values, 0, SLOTS);
        updatedNs = nowNs;
        replies++;
    }

    /** The value of {@code slot} as of the last reply. */
    public long get(int slot) {
        return values[slot];
    }

    /** When (System.nanoTime) the last reply arrived; 0 if none yet. */
    public long updatedNs() {
        return updatedNs;
    }

    /** Replies seen from that shard. */
    public long replies() {
        return replies;
    }

    @Override
    public String toString() {
        return "RemoteView{tasks=" + values[TASK_QUEUE_DEPTH] + ", inbound=" + values[INBOUND_DEPTH] + ", busy="
            + values[LOOP_BUSY_PERMILLE] + "‰, replies=" + replies + "}";
    }
}
