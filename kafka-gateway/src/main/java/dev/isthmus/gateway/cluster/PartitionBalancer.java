package dev.isthmus.gateway.cluster;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.IntPredicate;

/**
 * The controller's partition balancer: once a node joins the cluster, it moves replicas from the nodes holding the
 * most to the nodes holding the fewest until every live node's replica count is within one of every other's
 * (Redpanda's {@code partition_autobalancing_mode=node_add}), through the reassignment machinery
 * ({@link ControllerCommand.ReassignPartition}: the new replica joins the partition's Raft group as a learner,
 * catches up, then a joint-consensus change drops the old one), a bounded number of moves at a time.
 *
 * <h2>What a round does ({@link #plan}, a pure function of the state)</h2>
 * <ul>
 *   <li>Counts each live broker's replicas (the targets of moves in progress count where they go).</li>
 *   <li>While the fullest and the emptiest live brokers differ by more than one and the budget allows: moves one
 *       replica of a partition from the fullest to the emptiest. The partition must not be moving, must have every
 *       replica on a live node (an under-replicated partition is left alone), must not already have a replica on
 *       the emptiest broker, and the move must not lower the number of racks its replicas span. A replica that is
 *       not the preferred leader (first) is moved first, so leadership rarely changes; the moved replica keeps its
 *       position in the list.</li>
 * </ul>
 *
 * <h2>Pacing and when it runs ({@link #round})</h2>
 * Only the controller leader runs it, on its maintenance timer, at most every {@link #ROUND_INTERVAL_MS}. It starts
 * when a broker id the leader has not seen, and that is not a seed (a controller voter: the seeds form the cluster),
 * registers into a cluster that already held topics at the previous round (a new leader takes the brokers registered
 * then as known; a node that restarts is not new), waits {@link #JOIN_SETTLE_MS} after the last join (nodes of one start-up register
 * together), and stops once a round finds nothing to move and its own moves are done. That it is balancing is kept in
 * the controller state ({@link ControllerCommand.SetBalancing}, proposed when a join is seen and when it is done), so a
 * controller failover does not end a rebalance half-way: the next leader's balancer reads the flag and carries on
 * (first waiting for the moves its predecessor started, which it takes for an operator's). It keeps at most
 * {@code maxConcurrentMoves} partitions moving (its own and operators' together) and starts nothing while a move
 * it did not start (kafka-reassign-partitions) runs. Disabled with {@code --partition-balancer false}.
 *
 * <h2>Threads</h2>
 * {@link #round} runs on the controller shard only; {@link #status()} and {@link #setEnabled} may be called from any
 * thread (a volatile immutable status, a volatile flag).
 */
public final class PartitionBalancer {
    /** Partitions moving at once, the balancer's and operators' together (Redpanda's default is 50 per cluster). */
    public static final int DEFAULT_MAX_CONCURRENT_MOVES = 4;
    static final long ROUND_INTERVAL_MS = 1_000;
    static final long JOIN_SETTLE_MS = Long.getLong("isthmus.balancer.joinSettleMs", 10_000);
    private static final long MOVE_TIMEOUT_MS = 30_000;

    /** One replica move: partition {@code partition} of {@code topic} goes from {@code from} to {@code to}. */
    public record Move(String topic, int partition, int from, int to, int[] target) {
        @Override
        public String toString() {
            return topic + "-" + partition + ": " + from + " -> " + to + " " + Arrays.toString(target);
        }
    }

    /**
     * What {@code balancer status} shows.
     *
     * @param enabled          the balancer may run on this node (--partition-balancer)
     * @param active           this node leads the controller, so its balancer is the one that runs
     * @param state            off, idle, settling (a node joined; waiting for the others of its start-up),
     *                         balancing (moves of its own under way or to start), waiting (a move it did not start
     *                         runs)
     * @param movesInProgress  partitions of the cluster moving now (any origin)
     * @param ownMoves         of those, the ones this balancer started
     * @param maxConcurrentMoves the bound on partitions moving at once
     * @param movesStarted     moves this node's balancer started since it started
     * @param replicasPerNode  live registered node id -> replicas it holds or is receiving
     * @param lastProblem      why the last submitted move was refused, or null
     */
    public record Status(boolean enabled, boolean active, String state, int movesInProgress, int ownMoves,
                         int maxConcurrentMoves, long movesStarted, TreeMap<Integer, Integer> replicasPerNode,
                         String lastProblem) {
        /** The fullest live node's replicas minus the emptiest's (0 with fewer than two nodes). */
        public int spread() {
            if (replicasPerNode.size() < 2) {
                return 0;
            }
            int max = Integer.MIN_VALUE;
            int min = Integer.MAX_VALUE;
            for (int c : replicasPerNode.values()) {
                max = Math.max(max, c);
                min = Math.min(min, c);
            }
            return max - min;
        }
    }

    /** Submits a command through the controller (the controller shard's {@code submitHere}). */
    interface Submitter {
        void submit(ControllerCommand c, long timeoutMs, java.util.function.Consumer<ControllerResult> done);
    }

    private volatile boolean enabled = true;
    private final int maxConcurrentMoves;
    // Controller shard only.
    private Set<Integer> knownBrokers;
    private long settleUntilMs = -1;
    private boolean balancing;
    /** A {@link ControllerCommand.SetBalancing} is on its way (one at a time). */
    private boolean flagging;
    /** The state of the previous round held topics. */
    private boolean hadPartitions;
    private final Set<String> ownMoves = new HashSet<>();
    private long movesStarted;
    private long nextRoundMs;
    private String lastProblem;
    private volatile Status status;

    PartitionBalancer(int maxConcurrentMoves) {
        this.maxConcurrentMoves = maxConcurrentMoves;
        this.status = new Status(true, false, "idle", 0, 0, maxConcurrentMoves, 0, new TreeMap<>(), null);
    }

    /** Any thread: turns the balancer on or off (off: it starts no move; moves under way complete). */
    public void setEnabled(boolean on) {
        enabled = on;
    }

    /** Any thread: the latest status (updated every round on the controller leader). */
    public Status status() {
        return status;
    }

    /**
     * Controller shard, every maintenance turn: on the leader, notices joins and starts moves when due; elsewhere
     * forgets what it knew (a later leadership starts afresh).
     */
    void round(ClusterState s, boolean leader, long nowMs, IntPredicate live, IntPredicate seed, Submitter submitter) {
        if (!leader) {
            if (knownBrokers != null) {
                knownBrokers = null;
                balancing = false;
                flagging = false;
                settleUntilMs = -1;
                ownMoves.clear();
            }
            Status cur = status;
            String state = enabled ? "idle" : "off";
            if (cur.active() || !cur.state().equals(state)) { // rebuilt only on a change (this runs every turn)
                status = new Status(enabled, false, state, 0, 0, maxConcurrentMoves, movesStarted, new TreeMap<>(),
                    lastProblem);
            }
            return;
        }
        if (nowMs < nextRoundMs) {
            return;
        }
        nextRoundMs = nowMs + ROUND_INTERVAL_MS;
        Set<Integer> ids = new TreeSet<>();
        s.brokers().forEach(b -> ids.add(b.id()));
        if (knownBrokers == null) {
            knownBrokers = ids;
            balancing = s.balancing(); // a rebalance an earlier leader started goes on
        } else if (!knownBrokers.containsAll(ids)) {
            // A node joined: a node that is not a seed (controller voter), registering for the first time into a
            // cluster holding partitions (the seeds registering while the cluster forms are not joins).
            boolean joined = false;
            for (int id : ids) {
                joined |= !knownBrokers.contains(id) && !seed.test(id);
            }
            knownBrokers = ids;
            if (joined && hadPartitions) {
                settleUntilMs = nowMs + JOIN_SETTLE_MS;
                balancing = true;
            }
        }
        // The state's flag follows this leader's decision, so that the next leader carries on from it.
        if (balancing != s.balancing() && !flagging) {
            flagging = true;
            submitter.submit(new ControllerCommand.SetBalancing(balancing), MOVE_TIMEOUT_MS, r -> flagging = false);
        }
        hadPartitions = !s.topics().isEmpty();
        // Forget own moves that are done (or whose partition went away).
        ownMoves.removeIf(k -> {
            int dash = k.lastIndexOf('-');
            TopicInfo t = s.topic(k.substring(0, dash));
            PartitionInfo p = t == null ? null : t.partition(Integer.parseInt(k.substring(dash + 1)));
            return p == null || !p.reassigning();
        });
        int moving = 0;
        boolean foreign = false;
        for (TopicInfo t : s.topics()) {
            for (PartitionInfo p : t.partitions()) {
                if (p.reassigning()) {
                    moving++;
                    foreign |= !ownMoves.contains(t.name() + "-" + p.partition());
                }
            }
        }
        String state;
        if (!enabled) {
            state = "off";
        } else if (!balancing) {
            state = "idle";
        } else if (nowMs < settleUntilMs) {
            state = "settling";
        } else if (foreign) {
            state = "waiting";
        } else {
            List<Move> moves = plan(s, live, maxConcurrentMoves - moving);
            for (Move m : moves) {
                String key = m.topic() + "-" + m.partition();
                ownMoves.add(key);
                movesStarted++;
                submitter.submit(new ControllerCommand.ReassignPartition(m.topic(), m.partition(), m.target()),
                    MOVE_TIMEOUT_MS, r -> {
                        if (r == null || !r.isOk()) {
                            ownMoves.remove(key);
                            lastProblem = m + ": " + (r == null ? "no answer" : r.message());
                        }
                    });
            }
            if (moves.isEmpty() && ownMoves.isEmpty()) {
                balancing = false;
                state = "idle";
            } else {
                state = "balancing";
            }
        }
        status = new Status(enabled, true, state, moving, ownMoves.size(), maxConcurrentMoves, movesStarted,
            replicaCounts(s, live), lastProblem);
    }

    /** Live registered broker id -> replicas it holds or is receiving (the targets of moves). */
    static TreeMap<Integer, Integer> replicaCounts(ClusterState s, IntPredicate live) {
        TreeMap<Integer, Integer> count = new TreeMap<>();
        for (BrokerInfo b : s.brokers()) {
            if (live.test(b.id())) {
                count.put(b.id(), 0);
            }
        }
        for (TopicInfo t : s.topics()) {
            for (PartitionInfo p : t.partitions()) {
                for (int b : p.target()) {
                    count.computeIfPresent(b, (k, v) -> v + 1);
                }
            }
        }
        return count;
    }

    /**
     * The moves to start now, at most {@code budget}: see the class comment. Deterministic (brokers by count then
     * id, partitions by topic name then index).
     */
    static List<Move> plan(ClusterState s, IntPredicate live, int budget) {
        List<Move> out = new ArrayList<>();
        if (budget <= 0) {
            return out;
        }
        TreeMap<Integer, Integer> count = replicaCounts(s, live);
        if (count.size() < 2) {
            return out;
        }
        Set<String> planned = new HashSet<>();
        while (out.size() < budget) {
            int min = -1;
            for (var e : count.entrySet()) {
                if (min < 0 || e.getValue() < count.get(min)) {
                    min = e.getKey();
                }
            }
            Move m = null;
            // The fullest brokers first; the first that can give the emptiest one a replica.
            List<Integer> byLoad = new ArrayList<>(count.keySet());
            byLoad.sort((a, b) -> count.get(a).equals(count.get(b)) ? Integer.compare(a, b)
                : Integer.compare(count.get(b), count.get(a)));
            for (int max : byLoad) {
                if (count.get(max) - count.get(min) <= 1) {
                    break;
                }
                m = pick(s, live, max, min, planned);
                if (m != null) {
                    break;
                }
            }
            if (m == null) {
                break;
            }
            out.add(m);
            planned.add(m.topic() + "-" + m.partition());
            count.merge(m.from(), -1, Integer::sum);
            count.merge(m.to(), 1, Integer::sum);
        }
        return out;
    }

    private static Move pick(ClusterState s, IntPredicate live, int from, int to, Set<String> planned) {
        for (int pass = 0; pass < 2; pass++) { // pass 0: replicas that are not the preferred leader
            for (TopicInfo t : s.topics()) {
                for (PartitionInfo p : t.partitions()) {
                    if (p.reassigning() || planned.contains(t.name() + "-" + p.partition())) {
                        continue;
                    }
                    int[] r = p.replicas();
                    int at = -1;
                    boolean ok = true;
                    for (int i = 0; i < r.length; i++) {
                        ok &= live.test(r[i]) && r[i] != to;
                        if (r[i] == from) {
                            at = i;
                        }
                    }
                    if (!ok || at < 0 || (pass == 0) == (at == 0)) {
                        continue;
                    }
                    int[] target = r.clone();
                    target[at] = to;
                    if (racks(s, target) < racks(s, r)) {
                        continue;
                    }
                    return new Move(t.name(), p.partition(), from, to, target);
                }
            }
        }
        return null;
    }

    /** How many racks {@code replicas} span (a broker without a rack counts as a rack of its own). */
    private static int racks(ClusterState s, int[] replicas) {
        Set<String> racks = new HashSet<>();
        for (int b : replicas) {
            BrokerInfo bi = s.broker(b);
            racks.add(bi != null && bi.rack() != null ? "r:" + bi.rack() : "b:" + b);
        }
        return racks.size();
    }
}
