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
}
