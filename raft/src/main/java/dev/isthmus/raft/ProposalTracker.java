package dev.isthmus.raft;

import dev.isthmus.uring.Verify;

import java.util.Arrays;

/**
 * The leader's uncommitted proposals of its current term, as a ring of (last offset, bytes, proposal time):
 * bounds uncommitted data ({@link RaftConfig#maxUncommittedBytes()}, {@link RaftConfig#maxPendingProposals()})
 * and measures append-to-durable and proposal-to-commit latency. The ring starts small and doubles up to its
 * bound, so thousands of idle groups cost little. Cleared when leadership ends. Owned by the group's shard.
 */
final class ProposalTracker {
    private static final int INITIAL_CAPACITY = 16;

    private final int maxCount;
    private long[] lastOffsets = new long[INITIAL_CAPACITY];
    private long[] bytes = new long[INITIAL_CAPACITY];
    private long[] proposedMs = new long[INITIAL_CAPACITY];
    private int head;
    private int count;
    /** Entries from head that are durable locally but not yet committed. */
    private int durableCount;
    private long totalBytes;

    ProposalTracker(int maxCount) {
        Verify.that(maxCount > 0, "proposal tracker bound %d", maxCount);
        this.maxCount = maxCount;
    }

    boolean canAccept(long sizeBytes, long maxBytes) {
        return count < maxCount && totalBytes + sizeBytes <= maxBytes;
    }

    void add(long lastOffset, long sizeBytes, long nowMs) {
        Verify.that(count < maxCount, "proposal tracker overflow (%d)", count);
        if (count == lastOffsets.length) {
            grow();
        }
        if (count > 0) {
            long prev = lastOffsets[(head + count - 1) % lastOffsets.length];
            Verify.that(lastOffset > prev, "proposal at %d not after %d", lastOffset, prev);
        }
        int i = (head + count) % lastOffsets.length;
        lastOffsets[i] = lastOffset;
        bytes[i] = sizeBytes;
        proposedMs[i] = nowMs;
        count++;
        totalBytes += sizeBytes;
    }

    private void grow() {
        int n = lastOffsets.length;
        int m = Math.min(Math.max(n * 2, INITIAL_CAPACITY), Math.max(maxCount, n + 1));
        long[] l = new long[m];
        long[] b = new long[m];
        long[] p = new long[m];
        for (int k = 0; k < count; k++) {
            int i = (head + k) % n;
            l[k] = lastOffsets[i];
            b[k] = bytes[i];
            p[k] = proposedMs[i];
        }
        lastOffsets = l;
        bytes = b;
        proposedMs = p;
        head = 0;
    }

    /** Records local durability up to {@code offset}. */
    void durableTo(long offset, long nowMs, NodeMetrics metrics) {
        while (durableCount < count) {
            int i = (head + durableCount) % lastOffsets.length;
            if (lastOffsets[i] > offset) {
                break;
            }
            metrics.recordAppendDurableLatency(nowMs - proposedMs[i]);
            durableCount++;
        }
    }

    /** Records commit up to {@code offset} and forgets those proposals. */
    void committedTo(long offset, long nowMs, NodeMetrics metrics) {
        while (count > 0 && lastOffsets[head] <= offset) {
            metrics.recordCommitLatency(nowMs - proposedMs[head]);
            totalBytes -= bytes[head];
            head = (head + 1) % lastOffsets.length;
            count--;
            if (durableCount > 0) {
                durableCount--;
            }
        }
    }

    void clear() {
        head = 0;
        count = 0;
        durableCount = 0;
        totalBytes = 0;
        if (lastOffsets.length > INITIAL_CAPACITY) {
            lastOffsets = new long[INITIAL_CAPACITY];
            bytes = new long[INITIAL_CAPACITY];
            proposedMs = new long[INITIAL_CAPACITY];
        } else {
            Arrays.fill(lastOffsets, 0);
        }
    }

    int count() {
        return count;
    }

    long totalBytes() {
        return totalBytes;
    }
}
