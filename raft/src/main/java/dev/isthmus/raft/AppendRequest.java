package dev.isthmus.raft;

import java.util.List;

/**
 * AppendEntries (paper §5.3, Figure 2). Several may be in flight to one follower (pipelining); an empty one
 * probes where the follower's log matches.
 *
 * @param prevOffset   the last offset of the batch before the first entry (paper's prevLogIndex)
 * @param prevTerm     its term (prevLogTerm)
 * @param commitOffset the leader's commit offset (leaderCommit)
 * @param entries      whole batches, contiguous from {@code prevOffset + 1}; immutable
 */
public record AppendRequest(long groupId, int from, int to, long term, long prevOffset, long prevTerm,
                            long commitOffset, List<Entry> entries) implements GroupMessage {
    public AppendRequest {
        entries = List.copyOf(entries);
    }

    /** Sum of the entries' {@link Entry#sizeBytes()}. */
    public long sizeBytes() {
        long n = 0;
        for (Entry e : entries) {
            n += e.sizeBytes();
        }
        return n;
    }

    /**
     * One more reference to each data entry's payload (arena payloads are counted): a transport that queues
     * this message calls it, and {@link #releasePayloads()} once the message is encoded or dropped.
     */
    public void retainPayloads() {
        for (Entry e : entries) {
            if (e.payload() != null) {
                e.payload().retain();
            }
        }
    }

    /** Gives back the references {@link #retainPayloads()} took. */
    public void releasePayloads() {
        for (Entry e : entries) {
            if (e.payload() != null) {
                e.payload().release();
            }
        }
    }
}
