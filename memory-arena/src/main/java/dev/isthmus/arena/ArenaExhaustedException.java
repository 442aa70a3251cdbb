package dev.isthmus.arena;

/**
 * An allocation could not be served: the subsystem's budget is used up, or the shard's memory is, even after
 * the reclaim hooks gave back what they could. Recoverable: nothing was allocated, and the caller sheds load
 * (a Kafka error code, a paused read) instead of the JVM running out of memory.
 */
public final class ArenaExhaustedException extends RuntimeException {
    private final Subsystem subsystem;
    private final long requestedBytes;

    public ArenaExhaustedException(String message, Subsystem subsystem, long requestedBytes) {
        super(message, null, false, false);
        this.subsystem = subsystem;
        this.requestedBytes = requestedBytes;
    }

    public Subsystem subsystem() {
        return subsystem;
    }

    public long requestedBytes() {
        return requestedBytes;
    }
}
