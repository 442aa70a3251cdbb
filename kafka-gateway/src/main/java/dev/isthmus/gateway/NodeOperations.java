package dev.isthmus.gateway;

import dev.isthmus.gateway.cluster.ClusterState;
import dev.isthmus.gateway.cluster.Controller;
import dev.isthmus.gateway.cluster.ControllerCommand;
import dev.isthmus.gateway.cluster.Decommission;
import dev.isthmus.raft.server.RaftServer;
import dev.isthmus.raft.server.ReplicatedLog;

import java.util.Arrays;
import java.util.List;

/**
 * Maintenance mode and decommissioning on this node: follows the operator's per-node modes in the controller state
 * ({@link dev.isthmus.gateway.cluster.NodeModes}, set through {@link NodeModeConfigs}).
 *
 * <h2>Maintenance (Redpanda's maintenance mode; Kafka has only controlled shutdown)</h2>
 * <ul>
 *   <li>The node in maintenance stops its Raft members from campaigning ({@link dev.isthmus.raft.RaftNode#setMayLead};
 *       a group's only voter still may) and, every round, hands the leadership of each group it leads with another voter
 *       (partitions and the controller) to an in-sync voter by Raft leadership transfer (thesis §3.10: TimeoutNow to a
 *       follower holding the whole log, no election timeout), the preferred replica first
 *       ({@link ReplicatedLog#handOffLeadership}); a transfer that does not finish is started again.</li>
 *   <li>Every node gives it no leadership back through preferred-leader balancing
 *       ({@link RaftServer#setInMaintenance}).</li>
 *   <li>When maintenance is disabled the node may campaign again and the exclusion goes; the leaders of partitions
 *       whose preferred replica it is hand leadership back to it once it is caught up (preferred-leader balancing,
 *       {@code --auto-leader-rebalance}, on by default), or {@code kafka-leader-election.sh} does.</li>
 * </ul>
 * It keeps every replica and keeps replicating as a follower.
 *
 * <h2>Decommission</h2>
 * On the node leading the controller group, every round submits the next reassignments that move replicas off the
 * decommissioning nodes ({@link Decommission#nextMoves}: at most {@link BrokerConfig#maxConcurrentMoves()} running,
 * each replica replaced in place by the live node holding the fewest replicas); the reassignment machinery
 * ({@link Reassignments}) carries them out. A new round starts once the previous round's commands have answers, so
 * a command is never submitted twice.
 *
 * <h2>Threads</h2>
 * One instance per broker. {@link #start} schedules a round on each shard every {@link #ROUND_NS}; a shard's round
 * touches only that shard's {@link ShardState}, its Raft members and its own slot of {@link #maintenanceSeen}. The
 * decommission driver runs on the controller's shard ({@link RaftServer#CONTROLLER_SHARD}) only and keeps its state
 * there. Nothing blocks.
 */
final class NodeOperations {
    private static final System.Logger LOG = System.getLogger(NodeOperations.class.getName());
    static final long ROUND_NS = 250_000_000L;
    private static final long CONTROLLER_TIMEOUT_MS = 30_000;

    private final Broker broker;
    /** Per shard (that shard only): whether this node's maintenance was on at the shard's last round. */
    private final boolean[] maintenanceSeen;
    /** Per shard, written by that shard, read by any thread: groups it still leads while in maintenance. */
    private final int[] stillLeading;
    // Controller shard only: the decommission driver's commands waiting for their answer, and the nodes known done.
    private int submitting;
    private int[] doneReported = new int[0];

    NodeOperations(Broker broker, int shards) {
        this.broker = broker;
        this.maintenanceSeen = new boolean[shards];
        this.stillLeading = new int[shards];
    }

    /** On {@code st}'s shard: starts its rounds (they stop by themselves when the broker closes). */
    void start(ShardState st) {
        st.shard.schedule(ROUND_NS, () -> {
            if (broker.isClosing()) {
                return;
            }
            try {
                round(st);
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "node operations round on shard " + st.shard.id() + " failed", e);
            }
            start(st);
        });
    }

    /** Any thread: the Raft groups this node still leads while in maintenance (0 once drained; stale by a round). */
    int leadingInMaintenance() {
        int n = 0;
        for (int i = 0; i < stillLeading.length; i++) {
            n += stillLeading[i];
        }
        return n;
    }

    private void round(ShardState st) {
        ClusterState cs = st.cluster;
        RaftServer raft = broker.raft();
        if (cs == null || raft == null) {
            return;
        }
        int id = st.shard.id();
        boolean maintenance = follow(st, cs);
        stillLeading[id] = maintenance ? handOff(st) : 0;
        if (id == RaftServer.CONTROLLER_SHARD) {
            Controller c = broker.controller();
            decommission(st, c == null ? cs : c.state()); // the controller's latest: this node may lead it
        }
    }

    /**
     * On {@code st}'s shard: applies the node modes of {@code cs} to this shard (whether its members may campaign;
     * on shard 0 which nodes are in maintenance). Called with every controller state the shard installs, before the
     * install opens any group (so a node restarted in maintenance opens its groups unable to campaign), and every
     * round. Returns whether this node is in maintenance.
     */
    boolean follow(ShardState st, ClusterState cs) {
        RaftServer raft = broker.raft();
        if (cs == null || raft == null) {
            return false;
        }
        int id = st.shard.id();
        int self = broker.config().nodeId();
        boolean maintenance = cs.modes().inMaintenance(self);
        if (id == 0) {
            raft.setInMaintenance(cs.modes().maintenance());
        }
        if (maintenance != maintenanceSeen[id]) {
            maintenanceSeen[id] = maintenance;
            if (!broker.handingOffForShutdown()) {
                raft.shard(id).node().setMayLead(!maintenance);
            }
            if (id == 0) {
                LOG.log(System.Logger.Level.INFO, "node " + self + (maintenance
                    ? " is in maintenance: handing the leadership of its Raft groups to in-sync followers"
                    : " left maintenance: it may lead again (preferred leaders return by balancing)"));
            }
        }
        return maintenance;
    }

    /** Hands off what this shard leads (groups with another voter); returns how many groups it still leads. */
    private int handOff(ShardState st) {
        RaftServer raft = broker.raft();
        int leading = 0;
        for (ReplicatedLog rl : raft.shard(st.shard.id()).groups()) {
            if (!rl.isLeader() || rl.configuration().allVoters().length < 2) {
                continue;
            }
            leading++;
            rl.handOffLeadership(n -> st.alive(n) && !raft.isLeadershipExcluded(n));
        }
        return leading;
    }

    /** Controller shard: on the controller leader, submits the next moves off decommissioning nodes. */
    private void decommission(ShardState st, ClusterState cs) {
        Controller c = broker.controller();
        int[] nodes = cs.modes().decommissioning();
        if (c == null || nodes.length == 0) {
            doneReported = new int[0];
            return;
        }
        for (int n : nodes) {
            Decommission.Progress p = Decommission.progress(cs, n, st::alive);
            boolean reported = Arrays.stream(doneReported).anyMatch(x -> x == n);
            if (p.done() && !reported) {
                doneReported = Arrays.copyOf(doneReported, doneReported.length + 1);
                doneReported[doneReported.length - 1] = n;
                LOG.log(System.Logger.Level.INFO, "node " + n + " is decommissioned: it holds no replica");
            } else if (!p.done() && reported) {
                doneReported = Arrays.stream(doneReported).filter(x -> x != n).toArray();
            }
        }
        if (!c.isLeader() || submitting > 0) {
            return;
        }
        List<Decommission.Move> moves = Decommission.nextMoves(cs, broker.config().maxConcurrentMoves(), st::alive);
        for (Decommission.Move m : moves) {
            submitting++;
            String name = m.topic() + "-" + m.partition();
            c.submitHere(new ControllerCommand.ReassignPartition(m.topic(), m.partition(), m.target()),
                CONTROLLER_TIMEOUT_MS).whenComplete((r, f) -> {
                    submitting--;
                    if (f != null || !r.isOk()) {
                        LOG.log(System.Logger.Level.WARNING, "decommission: moving " + name + " to "
                            + Arrays.toString(m.target()) + " failed: " + (f != null ? f : r));
                    } else {
                        LOG.log(System.Logger.Level.INFO, "decommission: moving " + name + " to replicas "
                            + Arrays.toString(m.target()));
                    }
                });
        }
    }
}
