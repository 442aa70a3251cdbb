package dev.isthmus.raft;

/**
 * The coalesced reply to a {@link Heartbeat}: per group, the follower's term, its durable matching offset
 * and its last offset. A term above the leader's makes that group's leader step down; groups whose follower
 * is waiting for its term to become durable are left out and answered by the next heartbeat.
 */
public record HeartbeatResponse(int from, int to, long[] groupIds, long[] terms, long[] matchOffsets,
                                long[] lastOffsets) implements RaftMessage {
    public HeartbeatResponse {
        if (groupIds.length != terms.length || groupIds.length != matchOffsets.length
            || groupIds.length != lastOffsets.length) {
            throw new IllegalArgumentException("heartbeat response arrays differ in length");
        }
    }

    public int size() {
        return groupIds.length;
    }
}
