package dev.isthmus.raft;

/**
 * The leader's view of one follower or learner (paper Figure 2's nextIndex/matchIndex, with etcd-raft's
 * probe/replicate/snapshot states).
 *
 * <pre>
 *            reject / retransmit timeout                   snapshot installed
 *   PROBE  <------------------------------ REPLICATE      SNAPSHOT -----------> PROBE
 *     |  one request per heartbeat          ^  pipelined:   ^
 *     |  interval until one succeeds        |  next moves   |  next below the leader's log start
 *     +-------------------------------------+  on send      +--- from PROBE or REPLICATE
 * </pre>
 * Owned by the group's shard.
 */
final class Progress {
    enum State { PROBE, REPLICATE, SNAPSHOT }

    final int nodeId;
    /** Highest offset known to match the leader's log and be durable on the follower. */
    long match = -1;
    /** Next offset to send. */
    long next;
    State state = State.PROBE;
    /** PROBE: a probe is outstanding; no other is sent until an answer or a heartbeat interval passes. */
    boolean paused;
    /** prevOffset of the outstanding probe (answers to older probes are stale). */
    long probePrevOffset = -2;
    long lastSendMs;
    /** Last time match advanced or the window was empty: drives the retransmit timeout. */
    long lastProgressMs;
    /** Heard from since the last check-quorum round (thesis §6.2). */
    boolean recentActive;
    /** When the leader last heard from this member (or became leader / added it), by the host clock. */
    long lastHeardMs;
    /** The commit offset carried by the last request sent (an idle follower is told of newer commits). */
    long commitSent = -1;
    /** A read for this follower answered READ_PENDING. */
    boolean waitingRead;

    // In sync in Kafka's sense (replica.lag.time.max.ms): see RaftGroup#inSyncMembers.
    /** The latest time (host clock) at which this member was known to hold everything the leader held then. */
    long caughtUpMs = Long.MIN_VALUE / 4;
    /** The leader's last offset at {@link #caughtUpTargetMs}: once match reaches it, the member was caught up then. */
    long caughtUpTargetOffset = Long.MAX_VALUE;
    long caughtUpTargetMs;
    final Inflights inflights;

    // SNAPSHOT state
    SnapshotMeta snapshot;
    byte[] snapshotData;
    long snapshotAckedBytes;

    Progress(int nodeId, long next, RaftConfig config) {
        this.nodeId = nodeId;
        this.next = next;
        this.inflights = new Inflights(config.maxInflightAppends(), config.maxInflightBytes());
    }

    void becomeProbe(long nextOffset) {
        state = State.PROBE;
        next = Math.max(nextOffset, match + 1);
        paused = false;
        inflights.clear();
        snapshot = null;
        snapshotData = null;
    }

    void becomeReplicate(long nextOffset, long nowMs) {
        state = State.REPLICATE;
        next = Math.max(nextOffset, match + 1);
        paused = false;
        inflights.clear();
        lastProgressMs = nowMs;
    }

    void becomeSnapshot(SnapshotMeta meta, byte[] data) {
        state = State.SNAPSHOT;
        inflights.clear();
        paused = false;
        snapshot = meta;
        snapshotData = data;
        snapshotAckedBytes = 0;
    }

    @Override
    public String toString() {
        return "Progress[" + nodeId + " " + state + " match=" + match + " next=" + next + " inflight="
            + inflights.count() + "]";
    }
}
