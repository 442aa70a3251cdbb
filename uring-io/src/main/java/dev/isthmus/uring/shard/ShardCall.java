package dev.isthmus.uring.shard;

/**
 * A cross-shard call: a reusable message that runs {@link #onTarget} on the target shard and then
 * {@link #onReply} back on the origin shard. It travels by reference through the single-producer
 * single-consumer queue between the two shards, so a caller that keeps and reuses its call objects sends and
 * receives with no allocation at all.
 *
 * <p>Subclasses carry the request and response fields. The target stamps its piggybacked shard-local metadata
 * (see {@link Shard#publishPiggyback}) into the call before it travels back, and the origin copies it into its
 * {@link RemoteView} of the target before {@link #onReply} runs: the caller's possibly-stale view of every shard
 * it talks to, kept without locks or shared state (technique 8 of the design).
 *
 * <p>A call object is owned by its origin shard; between {@link Shard#trySend} and {@link #onReply} the target
 * owns it. It must not be sent again before its reply arrived.
 */
public abstract class ShardCall {
    int origin = -1;
    int target = -1;
    boolean replying;
    boolean inFlight;
    final long[] piggyback = new long[RemoteView.SLOTS];

    /**
     * Runs on the target shard.
     *
     * @return true to send the reply at once; false when the work continues asynchronously and the code calls
     *         {@link Shard#reply(ShardCall)} on the target shard when it is done
     */
    protected abstract boolean onTarget(Shard shard);

    /** Runs on the origin shard once the reply arrived. */
    protected abstract void onReply(Shard shard);

    /** The shard that sent this call (valid while in flight and in {@link #onReply}). */
    public final int origin() {
        return origin;
    }

    /** The shard this call was sent to. */
    public final int target() {
        return target;
    }

    /** True between send and the start of {@link #onReply}. */
    public final boolean isInFlight() {
        return inFlight;
    }
}
