package dev.isthmus.gateway.cluster;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.IntPredicate;

/**
 * Which replicas to move next off the nodes being decommissioned ({@link NodeModes#decommissioning}), and how far a
 * decommission has come. Pure functions of a {@link ClusterState}: the controller leader's node calls
 * {@link #nextMoves} on every round of its decommission loop and submits each move as a
 * {@link ControllerCommand.ReassignPartition}, so the data moves through the reassignment machinery (learners catch
 * up, joint consensus, the old replica removed once the new voters commit; see {@link Reassignment}).
 *
 * <h2>Pacing</h2>
 * A move is running while its partition is being reassigned with a decommissioning node among the replicas it
 * removes. At most {@code maxRunning} run at a time across the cluster; the next ones start as these complete (Kafka
 * leaves the pacing of such moves to external tools; Redpanda's {@code members_backend} bounds them the same way).
 *
 * <h2>Choosing the new replica</h2>
 * Each replica on a decommissioning node is replaced in place (same position in the replica list, so a preferred
 * leader is replaced by the new preferred leader) by the node, among those registered, not decommissioning, not
 * already a replica of the partition and usable (live, as the caller knows it), that holds the fewest replicas
 * (counting the moves chosen in the same round), then the lowest id. A partition for which no node qualifies waits
 * (and is reported by {@link #progress}). A partition that moves for another reason and keeps the node in its target
 * gets a new target without it, computed against the running move (Kafka's rule for a new target).
 *
 * <p>Stateless and thread-safe.
 */
public final class Decommission {
    private Decommission() {
    }

    /** One reassignment to submit: {@code topic}-{@code partition} to replicas {@code target}. */
    public record Move(String topic, int partition, int[] target) {
    }

    /**
     * How far the decommission of a node is.
     *
     * @param replicasLeft the partitions that still list the node among their replicas (running moves included)
     * @param movesRunning the partitions moving a replica off the node now
     * @param stuck        partitions with a replica on the node that no usable node can take now
     */
    public record Progress(int node, boolean decommissioning, int replicasLeft, int movesRunning, int stuck) {
        /** Decommissioning and holding no replica any more. */
        public boolean done() {
            return decommissioning && replicasLeft == 0;
        }
    }

    /** The progress of node {@code node}'s decommission in {@code s}; {@code usable} as for {@link #nextMoves}. */
    public static Progress progress(ClusterState s, int node, IntPredicate usable) {
        int left = 0;
        int running = 0;
        int stuck = 0;
        TreeMap<Integer, Integer> load = load(s);
        for (TopicInfo t : s.topics()) {
            for (PartitionInfo p : t.partitions()) {
                if (!p.hasReplicaOn(node)) {
                    continue;
                }
                left++;
                if (PartitionInfo.contains(p.removing(), node)) {
                    running++;
                } else if (replacement(s, p, load, usable) < 0) {
                    stuck++;
                }
            }
        }
        return new Progress(node, s.modes().decommissioning(node), left, running, stuck);
    }

    /** The moves currently running off decommissioning nodes (see the class comment). */
    public static int running(ClusterState s) {
        int n = 0;
        for (TopicInfo t : s.topics()) {
            for (PartitionInfo p : t.partitions()) {
                if (movingOff(s, p)) {
                    n++;
                }
            }
        }
        return n;
    }

    private static boolean movingOff(ClusterState s, PartitionInfo p) {
        for (int b : p.removing()) {
            if (s.modes().decommissioning(b)) {
                return true;
            }
        }
        return false;
    }

    /**
     * The moves to start now so that at most {@code maxRunning} run, in node, topic and partition order; empty when
     * no node is being decommissioned, enough moves run, or no replica can go anywhere.
     *
     * @param usable whether a node may take a new replica now (the caller's view of liveness)
     */
    public static List<Move> nextMoves(ClusterState s, int maxRunning, IntPredicate usable) {
        List<Move> out = new ArrayList<>();
        int[] nodes = s.modes().decommissioning();
        if (nodes.length == 0) {
            return out;
        }
        int running = running(s);
        if (running >= maxRunning) {
            return out;
        }
        TreeMap<Integer, Integer> load = load(s);
        Set<Long> chosen = new HashSet<>();
        for (int node : nodes) {
            for (TopicInfo t : s.topics()) {
                for (PartitionInfo p : t.partitions()) {
                    if (running >= maxRunning) {
                        return out;
                    }
                    int[] target = p.target();
                    int at = indexOf(target, node);
                    if (at < 0 || chosen.contains(p.groupId())) {
                        continue; // not a target replica: absent, or already being removed
                    }
                    int b = replacement(s, p, load, usable);
                    if (b < 0) {
                        continue;
                    }
                    target[at] = b;
                    load.merge(b, 1, Integer::sum);
                    chosen.add(p.groupId());
                    out.add(new Move(t.name(), p.partition(), target));
                    running++;
                }
            }
        }
        return out;
    }

    /** Replicas per registered node (every listed replica, moves included). */
    private static TreeMap<Integer, Integer> load(ClusterState s) {
        TreeMap<Integer, Integer> load = new TreeMap<>();
        for (BrokerInfo b : s.brokers()) {
            load.put(b.id(), 0);
        }
        for (TopicInfo t : s.topics()) {
            for (PartitionInfo p : t.partitions()) {
                for (int r : p.replicas()) {
                    load.computeIfPresent(r, (k, v) -> v + 1);
                }
            }
        }
        return load;
    }

    /** The node to take a replica of {@code p}, or -1 when none qualifies. */
    private static int replacement(ClusterState s, PartitionInfo p, TreeMap<Integer, Integer> load, IntPredicate usable) {
        int best = -1;
        for (var e : load.entrySet()) {
            int b = e.getKey();
            if (s.modes().decommissioning(b) || p.hasReplicaOn(b) || !usable.test(b)) {
                continue;
            }
            if (best < 0 || e.getValue() < load.get(best)) {
                best = b;
            }
        }
        return best;
    }

    private static int indexOf(int[] a, int v) {
        for (int i = 0; i < a.length; i++) {
            if (a[i] == v) {
                return i;
            }
        }
        return -1;
    }
}
