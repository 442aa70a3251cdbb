package dev.isthmus.uring.shard;

/**
 * A cross-shard call was refused because the caller already has the configured number of calls in flight to
 * the target shard: back-pressure. Callers map it to a retriable error (for Kafka clients, a request timeout
 * or {@code NOT_ENOUGH_REPLICAS}-style retriable code) or retry on a later turn; it never means data was lost.
 */
public final class ShardBusyException extends RuntimeException {
    private final int from;
    private final int to;

    public ShardBusyException(int from, int to, int depth) {
        super("shard " + from + " already has " + depth + " calls in flight to shard " + to
            + " (crossShardDepth); retry later", null, false, false);
        this.from = from;
        this.to = to;
    }

    public int from() {
        return from;
    }

    public int to() {
        return to;
    }
}
