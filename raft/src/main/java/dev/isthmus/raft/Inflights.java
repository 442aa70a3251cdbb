package dev.isthmus.raft;

import dev.isthmus.uring.Verify;

/**
 * The AppendEntries requests in flight to one follower, as a ring of (last offset, bytes): the pipelining
 * window of {@link Progress}. Bounded by count ({@link RaftConfig#maxInflightAppends()}) and bytes
 * ({@link RaftConfig#maxInflightBytes()}); freed from the head as the follower acknowledges.
 * Owned by the group's shard.
 */
final class Inflights {
    private final long[] lastOffsets;
    private final long[] bytes;
    private final long maxBytes;
    private int head;
    private int count;
    private long totalBytes;

    Inflights(int capacity, long maxBytes) {
        this.lastOffsets = new long[capacity];
        this.bytes = new long[capacity];
        this.maxBytes = maxBytes;
    }

    boolean full() {
        return count == lastOffsets.length || totalBytes >= maxBytes;
    }

    boolean isEmpty() {
        return count == 0;
    }

    int count() {
        return count;
    }

    long totalBytes() {
        return totalBytes;
    }

    void add(long lastOffset, long sizeBytes) {
        Verify.that(count < lastOffsets.length, "inflight window overflow (%d)", count);
        if (count > 0) {
            long prev = lastOffsets[(head + count - 1) % lastOffsets.length];
            Verify.that(lastOffset > prev, "inflight %d not after %d", lastOffset, prev);
        }
        int i = (head + count) % lastOffsets.length;
        lastOffsets[i] = lastOffset;
        bytes[i] = sizeBytes;
        count++;
        totalBytes += sizeBytes;
    }

    /** Frees every request whose last offset is at or below {@code offset}. */
    void freeTo(long offset) {
        while (count > 0 && lastOffsets[head] <= offset) {
            totalBytes -= bytes[head];
            head = (head + 1) % lastOffsets.length;
            count--;
        }
    }

    void clear() {
        head = 0;
        count = 0;
        totalBytes = 0;
    }
}
