package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.message.AlterPartitionReassignmentsRequestData;
import dev.isthmus.gateway.protocol.message.AlterPartitionReassignmentsResponseData;
import dev.isthmus.gateway.protocol.message.ListPartitionReassignmentsRequestData;
import dev.isthmus.gateway.protocol.message.ListPartitionReassignmentsResponseData;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.RaftErrors;
import dev.isthmus.raft.RaftGroup;
import dev.isthmus.gateway.cluster.ControllerCommand;
import dev.isthmus.gateway.cluster.PartitionInfo;
import dev.isthmus.raft.server.ReplicatedLog;
import dev.isthmus.uring.shard.Promise;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Moving partition replicas between brokers (KIP-455): the AlterPartitionReassignments and
 * ListPartitionReassignments handlers, and the per-shard loop that drives each led partition's Raft group towards
 * the replicas the controller lists for it.
 *
 * <h2>How a move runs</h2>
 * <ol>
 *   <li>AlterPartitionReassignments submits one {@link ControllerCommand.ReassignPartition} per partition; the answer
 *       comes once the controller applied it (Kafka answers when the change is recorded, not when data moved). The
 *       partition's replicas become {@code target ++ removing} with {@code adding} / {@code removing} set.</li>
 *   <li>Every broker follows the controller state: one now listed opens its replica (an empty Raft member that waits
 *       for the leader, {@link ShardState}); nothing else changes yet.</li>
 *   <li>On the shard of the partition's Raft leader, {@link #reconcile} asks the group for voters = target
 *       ({@link RaftGroup#changeMembership}): new members join as learners and catch up from the leader's log (or a
 *       snapshot when the log was truncated), then the joint configuration C_old,new is committed, then C_new (thesis
 *       §4.3). A leader that is not in C_new hands leadership to a voter of C_new after committing it.</li>
 *   <li>Once the group's committed configuration is exactly the target, its leader submits
 *       {@link ControllerCommand.CompleteReassignment}; the partition's replicas become the target, and each broker
 *       that no longer hosts it stops its member and deletes its directory (renamed at once, files deleted on the
 *       broker's background thread).</li>
 * </ol>
 * A cancel (null replicas) is a move back to the replicas before the move; a new target replaces the running one.
 * Metadata lists the whole replica set ({@code target ++ removing}) throughout, as Kafka does.
 *
 * <h2>Threads</h2>
 * One instance per broker. The handlers run on the connection's shard. {@link #start} schedules the reconcile loop on
 * each shard; a shard's loop reads only that shard's {@link ShardState} and its own slot of {@link #completing}.
 */
final class Reassignments {
    private static final System.Logger LOG = System.getLogger(Reassignments.class.getName());
    /** How often each shard checks the membership of the partitions it leads against the controller's target. */
    static final long RECONCILE_INTERVAL_NS = 100_000_000L;
    private static final long CONTROLLER_TIMEOUT_MS = 30_000;

    private final Broker broker;
    /** Per shard (touched only by that shard): the groups whose completion was submitted, with the target sent. */
    private final List<Map<Long, String>> completing = new ArrayList<>();

    Reassignments(Broker broker, int shards) {
        this.broker = broker;
        for (int i = 0; i < shards; i++) {
            completing.add(new HashMap<>());
        }
    }

    // ------------------------------------------------------------------ AlterPartitionReassignments (45)

    Promise<ProtocolMessage> alter(ShardState st, AlterPartitionReassignmentsRequestData req, short version) {
        AlterPartitionReassignmentsResponseData r = new AlterPartitionReassignmentsResponseData();
        r.errorMessage = null;
        r.allowReplicationFactorChange = req.allowReplicationFactorChange;
        List<Promise<Object>> all = new ArrayList<>();
        for (AlterPartitionReassignmentsRequestData.ReassignableTopic t : req.topics) {
            AlterPartitionReassignmentsResponseData.ReassignableTopicResponse tr
                = new AlterPartitionReassignmentsResponseData.ReassignableTopicResponse();
            tr.name = t.name;
            r.responses.add(tr);
            TopicTable.Topic topic = st.topics.get(t.name);
            for (AlterPartitionReassignmentsRequestData.ReassignablePartition p : t.partitions) {
                AlterPartitionReassignmentsResponseData.ReassignablePartitionResponse pr
                    = new AlterPartitionReassignmentsResponseData.ReassignablePartitionResponse();
                pr.partitionIndex = p.partitionIndex;
                pr.errorMessage = null;
                tr.partitions.add(pr);
                String name = t.name + "-" + p.partitionIndex;
                if (topic == null || p.partitionIndex < 0 || p.partitionIndex >= topic.partitions()) {
                    pr.errorCode = ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION;
                    pr.errorMessage = topic == null ? "topic " + t.name + " does not exist"
                        : "topic " + t.name + " has no partition " + p.partitionIndex;
                    continue;
                }
                int[] target = p.replicas == null ? null : p.replicas.stream().mapToInt(Integer::intValue).toArray();
                if (target != null && !req.allowReplicationFactorChange) {
                    PartitionInfo info = topic.partition(p.partitionIndex);
                    int rf = info.original().length;
                    if (target.length != rf) {
                        pr.errorCode = ErrorCodes.INVALID_REPLICATION_FACTOR;
                        pr.errorMessage = "the reassignment of " + name + " would change its replication factor from "
                            + rf + " to " + target.length + ", which the request does not allow";
                        continue;
                    }
                }
                all.add(broker.controllerCall(st.shard, new ControllerCommand.ReassignPartition(t.name,
                    p.partitionIndex, target), table -> table).map(o -> {
                        if (o instanceof Broker.Failure f) {
                            pr.errorCode = f.code();
                            pr.errorMessage = f.message();
                        }
                        return null;
                    }));
            }
        }
        return Promise.whenAllSettled(all).map(x -> r);
    }

    static final String LEADER_RATE = "leader.replication.throttled.rate";
    static final String FOLLOWER_RATE = "follower.replication.throttled.rate";
    static final String LOG_DIRS_RATE = "replica.alter.log.dirs.io.max.bytes.per.second";
    /** The broker-level replication throttles kafka-reassign-partitions.sh sets (--throttle) and clears (--verify). */
    static final Set<String> BROKER_THROTTLES = Set.of(LEADER_RATE, FOLLOWER_RATE, LOG_DIRS_RATE);
    private static final byte OP_SET = 0;
    private static final byte OP_DELETE = 1;

    /**
     * The throttle rates in force on this broker (bytes per second), as the controller state holds them for it: written
     * by {@link #follow} on the controller shard, read by DescribeConfigs on any shard.
     */
    private volatile Map<String, Long> rates = Map.of();

    /**
     * IncrementalAlterConfigs of this broker's replication throttles, or null when the resource names any other
     * config (the caller answers those). The change goes through the controller
     * ({@link ControllerCommand.AlterBrokerConfigs}), so it is kept across restarts as Kafka keeps it in its metadata,
     * and is in force once answered. {@code leader.replication.throttled.rate} becomes the catch-up rate of every
     * shard's Raft node ({@link dev.isthmus.raft.RaftNode#setCatchUpRate}, see {@link #follow}): what this node's leaders
     * send to learners (the replicas a reassignment adds) is limited to it. In Raft the leader pushes, so the follower
     * rate and the log-dir rate are accepted and kept but limit nothing. Completes with null or the refusal.
     */
    Promise<Broker.Failure> alterThrottles(ShardState st,
            dev.isthmus.gateway.protocol.message.IncrementalAlterConfigsRequestData.AlterConfigsResource res,
            boolean validateOnly) {
        for (var c : res.configs) {
            if (!BROKER_THROTTLES.contains(c.name)) {
                return null;
            }
        }
        String self = Integer.toString(broker.config().nodeId());
        if (!self.equals(res.resourceName)) {
            return Promise.completed(new Broker.Failure(ErrorCodes.INVALID_REQUEST, res.resourceName.isEmpty()
                ? "cluster-wide default replication throttles are not supported; set them per broker"
                : "the throttles of broker " + res.resourceName + " are set on that broker; this is broker " + self));
        }
        java.util.TreeMap<String, String> set = new java.util.TreeMap<>();
        java.util.TreeSet<String> delete = new java.util.TreeSet<>();
        for (var c : res.configs) {
            if (c.configOperation == OP_DELETE) {
                delete.add(c.name);
                set.remove(c.name);
            } else if (c.configOperation == OP_SET) {
                long v;
                try {
                    v = Long.parseLong(c.value == null ? "" : c.value.trim());
                } catch (NumberFormatException e) {
                    v = -1;
                }
                if (v < 0) {
                    return Promise.completed(new Broker.Failure(ErrorCodes.INVALID_CONFIG, c.name + " must be a"
                        + " non-negative number of bytes per second, not '" + c.value + "'"));
                }
                set.put(c.name, Long.toString(v));
                delete.remove(c.name);
            } else {
                return Promise.completed(new Broker.Failure(ErrorCodes.INVALID_CONFIG, c.name + " is a number, not a"
                    + " list: only SET and DELETE apply"));
            }
        }
        if (validateOnly || (set.isEmpty() && delete.isEmpty())) {
            return Promise.completed(null);
        }
        return broker.controllerCall(st.shard, new ControllerCommand.AlterBrokerConfigs(broker.config().nodeId(), set,
            delete), table -> table).map(o -> o instanceof Broker.Failure f ? f : null);
    }

    /**
     * Controller shard, with every state this node installs: puts the throttles the state holds for this broker in
     * force when they changed (also after a restart: the first state installed brings them back).
     */
    void follow(dev.isthmus.uring.shard.Shard s0, dev.isthmus.gateway.cluster.ClusterState cs) {
        Map<String, Long> next = throttles(cs.brokerConfigs(broker.config().nodeId()));
        if (!next.equals(rates)) {
            applyRates(s0, next);
        }
    }

    private static Map<String, Long> throttles(Map<String, String> configs) {
        Map<String, Long> out = new HashMap<>();
        configs.forEach((k, v) -> {
            if (BROKER_THROTTLES.contains(k)) {
                try {
                    out.put(k, Long.parseLong(v));
                } catch (NumberFormatException e) {
                    // the controller validated it; an unreadable value limits nothing
                }
            }
        });
        return Map.copyOf(out);
    }

    /** Puts {@code next} in force: the catch-up rate of every shard's Raft node. */
    private void applyRates(dev.isthmus.uring.shard.Shard from, Map<String, Long> next) {
        rates = next;
        long leader = next.getOrDefault(LEADER_RATE, Long.MAX_VALUE);
        long catchUp = leader == Long.MAX_VALUE ? 0 : Math.max(1, leader); // 0 B/s would never finish a move
        for (int i = 0; i < completing.size(); i++) {
            int id = i;
            from.submitTo(i, s -> {
                broker.state(id).raft.node().setCatchUpRate(catchUp);
                return null;
            });
        }
        LOG.log(System.Logger.Level.INFO, "replication throttles of broker " + broker.config().nodeId() + ": " + next
            + (catchUp > 0 ? "; learners catch up at " + catchUp + " B/s" : "; catch-up unlimited"));
    }

    /** A throttle rate set on this broker, or null (for tests and DescribeConfigs). */
    Long throttle(String name) {
        return rates.get(name);
    }

    // ------------------------------------------------------------------ ListPartitionReassignments (46)

    ProtocolMessage list(ShardState st, ListPartitionReassignmentsRequestData req) {
        ListPartitionReassignmentsResponseData r = new ListPartitionReassignmentsResponseData();
        r.errorMessage = null;
        if (req.topics == null) {
            for (TopicTable.Topic t : st.topics.topics()) {
                List<Integer> all = new ArrayList<>();
                for (int p = 0; p < t.partitions(); p++) {
                    all.add(p);
                }
                addOngoing(r, t, all);
            }
        } else {
            for (ListPartitionReassignmentsRequestData.ListPartitionReassignmentsTopics q : req.topics) {
                TopicTable.Topic t = st.topics.get(q.name);
                if (t != null) {
                    addOngoing(r, t, q.partitionIndexes); // unknown topics and partitions are left out, as Kafka does
                }
            }
        }
        return r;
    }

    private static void addOngoing(ListPartitionReassignmentsResponseData r, TopicTable.Topic t, List<Integer> indexes) {
        ListPartitionReassignmentsResponseData.OngoingTopicReassignment tr = null;
        for (int p : indexes) {
            if (p < 0 || p >= t.partitions() || !t.partition(p).reassigning()) {
                continue;
            }
            PartitionInfo info = t.partition(p);
            if (tr == null) {
                tr = new ListPartitionReassignmentsResponseData.OngoingTopicReassignment();
                tr.name = t.name();
                r.topics.add(tr);
            }
            ListPartitionReassignmentsResponseData.OngoingPartitionReassignment pr
                = new ListPartitionReassignmentsResponseData.OngoingPartitionReassignment();
            pr.partitionIndex = p;
            pr.replicas = boxed(info.replicas());
            pr.addingReplicas = boxed(info.adding());
            pr.removingReplicas = boxed(info.removing());
            tr.partitions.add(pr);
        }
    }

    private static List<Integer> boxed(int[] a) {
        List<Integer> l = new ArrayList<>(a.length);
        for (int v : a) {
            l.add(v);
        }
        return l;
    }

    // ------------------------------------------------------------------ driving the groups

    /** On {@code st}'s shard: starts its reconcile loop (stops by itself when the broker closes). */
    void start(ShardState st) {
        st.shard.schedule(RECONCILE_INTERVAL_NS, () -> {
            if (broker.isClosing()) {
                return;
            }
            try {
                reconcile(st);
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "reassignment check on shard " + st.shard.id() + " failed", e);
            }
            start(st);
        });
    }

    /**
     * On {@code st}'s shard: for every partition replica here, keeps its preferred leader current; for each one led
     * here whose group's membership differs from the controller's target (or that is being reassigned), drives the
     * group towards it and, once the group committed exactly the target, tells the controller.
     */
    void reconcile(ShardState st) {
        Map<Long, String> mine = completing.get(st.shard.id());
        Set<Long> seen = new HashSet<>();
        for (Partition part : st.partitions.values()) {
            TopicTable.Topic t = st.topics.get(part.topic);
            if (t == null || part.index >= t.partitions()) {
                continue;
            }
            PartitionInfo info = t.partition(part.index);
            ReplicatedLog rl = part.replica;
            if (info.groupId() != rl.groupId()) {
                continue;
            }
            int preferred = st.autoLeaderRebalance ? info.preferredLeader() : -1;
            if (rl.preferredLeader() != preferred) {
                rl.setPreferredLeader(preferred);
            }
            if (!rl.isLeader()) {
                continue;
            }
            RaftGroup g = rl.raft();
            int[] target = sorted(info.reassigning() ? info.target() : info.replicas());
            Configuration c = g.configuration();
            boolean settled = !c.isJoint() && c.learners().length == 0 && Arrays.equals(sorted(c.voters()), target)
                && g.configurationSettled();
            if (!settled) {
                int res = g.changeMembership(target, new int[0]);
                if (res != RaftErrors.OK) {
                    if (res != RaftErrors.CONFIG_CHANGE_IN_PROGRESS && res != RaftErrors.NOT_LEADER) {
                        LOG.log(System.Logger.Level.WARNING, "moving " + part.topic + "-" + part.index + " to voters "
                            + Arrays.toString(target) + " refused: " + RaftErrors.describe(res));
                    }
                    continue;
                }
            }
            if (!info.reassigning()) {
                continue;
            }
            long groupId = info.groupId();
            seen.add(groupId);
            String key = Arrays.toString(target);
            if (key.equals(mine.get(groupId))) {
                continue; // submitted; the controller's answer (or a new state) comes
            }
            mine.put(groupId, key);
            ControllerCommand.CompleteReassignment done = new ControllerCommand.CompleteReassignment(part.topic,
                part.index, groupId, target);
            broker.controllerCall(st.shard, done, table -> table).whenComplete((o, f) -> {
                if (mine.get(groupId) != null && mine.get(groupId).equals(key)) {
                    mine.remove(groupId); // completed, refused or failed: the next round looks again
                }
                if (o instanceof Broker.Failure failure) {
                    LOG.log(System.Logger.Level.INFO, "completing the move of " + part.topic + "-" + part.index
                        + " to " + key + ": " + failure.message());
                } else if (f == null) {
                    LOG.log(System.Logger.Level.INFO, "moved " + part.topic + "-" + part.index + " to replicas " + key);
                }
            });
        }
        mine.keySet().retainAll(seen);
    }

    private static int[] sorted(int[] a) {
        int[] c = a.clone();
        Arrays.sort(c);
        return c;
    }
}
