package dev.isthmus.raft;

/**
 * The leader's uncommitted proposals of its current term, as a ring of (last offset, bytes, proposal time):
 * bounds uncommitted data ({@link RaftConfig#maxUncommittedBytes()}, {@link RaftConfig#maxPendingProposals()})
 * and measures append-to-durable and proposal-to-commit latency. Cleared when leadership ends. Owned by the
 * group's shard.
 */
final class ProposalTracker {
    private final long[] lastOffsets;
    private final long[] bytes;
    private final long[] proposedMs;
    private int head;
    private int count;
    /** Entries from head that are durable locally but not yet committed. */
    private int durableCount;
    private long totalBytes;

    ProposalTracker(int capacity) {
        lastOffsets = new long[capacity];
        bytes = new long[capacity];
        proposedMs = new long[capacity];
    }

    boolean canAccept(long sizeBytes, long maxBytes) {
        return count < lastOffsets.length && totalBytes + sizeBytes <= maxBytes;
    }

    void add(long lastOffset, long sizeBytes, long nowMs) {
        Verify.that(count < lastOffsets.length, "proposal tracker overflow (%d)", count);
        int i = (head + count) % lastOffsets.length;
        lastOffsets[i] = lastOffset;
        bytes[i] = sizeBytes;
        proposedMs[i] = nowMs;
        count++;
        totalBytes += sizeBytes;
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
    }

    int count() {
        return count;
    }

    long totalBytes() {
        return totalBytes;
    }
}
