package dev.isthmus.raft;

/**
 * One coalesced heartbeat from a node to a peer for every group the sender leads and the peer replicates:
 * item {@code i} says "I lead group {@code groupIds[i]} in term {@code terms[i]}, and you may commit up to
 * {@code commitOffsets[i]}" (the leader's commit offset capped by what it knows the peer holds). Sent once
 * per heartbeat interval per node pair whatever the number of groups.
 */
public record Heartbeat(int from, int to, long[] groupIds, long[] terms, long[] commitOffsets)
    implements RaftMessage {
    public Heartbeat {
        if (groupIds.length != terms.length || groupIds.length != commitOffsets.length) {
            throw new IllegalArgumentException("heartbeat arrays differ in length");
        }
    }

    public int size() {
        return groupIds.length;
    }
}
