package dev.isthmus.gateway;

import dev.isthmus.raft.RaftGroup;
import dev.isthmus.gateway.cluster.BrokerInfo;
import dev.isthmus.gateway.cluster.ClusterState;

/**
 * The leader's choice of a consumer's preferred read replica (KIP-392, Kafka's {@code RackAwareReplicaSelector}
 * as {@code ReplicaManager.findPreferredReadReplica} applies it): a consumer that sends its {@code client.rack}
 * (Fetch v11+ {@code RackId}) to the leader of a partition is told to fetch from an in-sync follower in its rack.
 *
 * <h2>The rule</h2>
 * <ul>
 *   <li>No choice (-1: the leader serves) when the consumer names no rack, the leader's own node is in the
 *       consumer's rack, or no candidate is in it.</li>
 *   <li>Candidates are the followers in the partition's in-sync replicas as this leader last published them
 *       ({@link ReplicaStates}, in the current epoch) whose log reaches the fetch offset (Raft's match index + 1
 *       &ge; fetch offset: Kafka's {@code logEndOffset >= fetchOffset}), on a node that is up.</li>
 *   <li>Among the candidates in the consumer's rack, the one holding the most of the log (then the lowest id).</li>
 * </ul>
 * The follower then serves that consumer up to its own high watermark, which it learns from the commit offset
 * the leader sends with every AppendEntries and heartbeat (never past what it holds matching the leader's log, so
 * never past committed data); see {@link Partition#read}. A follower's log start is not known to the leader: a
 * follower whose log starts after the fetch offset (a recent snapshot install) answers OFFSET_OUT_OF_RANGE and the
 * consumer goes back to the leader, as Kafka's client does.
 *
 * <p>Threads: called on the shard hosting the leader replica, inside {@link Partition#read}; reads that shard's
 * state only. Stateless.
 */
final class ReadReplicaSelector {
    private ReadReplicaSelector() {
    }

    /**
     * The node {@code clientRack}'s consumer should fetch {@code p} from at {@code fetchOffset}, or -1 for this
     * leader. {@code st} is the leader's shard.
     */
    static int choose(ShardState st, Partition p, long fetchOffset, String clientRack) {
        ClusterState cluster = st.cluster;
        if (clientRack == null || clientRack.isEmpty() || cluster == null) {
            return -1;
        }
        RaftGroup raft = p.replica.raft();
        int self = raft.nodeId();
        BrokerInfo me = cluster.broker(self);
        if (me != null && clientRack.equals(me.rack())) {
            return -1;
        }
        ReplicaStates.Entry e = st.publishedIsr.get(p.groupId());
        if (e == null || e.epoch() != p.leaderEpoch()) {
            return -1;
        }
        int best = -1;
        long bestMatch = Long.MIN_VALUE;
        for (int id : e.isr()) {
            if (id == self) {
                continue;
            }
            BrokerInfo b = cluster.broker(id);
            if (b == null || !clientRack.equals(b.rack()) || !st.alive(id)) {
                continue;
            }
            long match = raft.matchOffset(id);
            if (match == Long.MIN_VALUE || match + 1 < fetchOffset) {
                continue;
            }
            if (match > bestMatch) { // isr is in ascending id order: ties keep the lowest id
                best = id;
                bestMatch = match;
            }
        }
        return best;
    }
}
