package dev.isthmus.gateway.cluster;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The partition balancer on controller states: its plan evens replica counts with moves that keep racks and leave
 * preferred leaders where they are when it can, and its rounds start only after a node joins a cluster holding
 * partitions, wait for the join to settle and for operators' moves, keep at most the bound of partitions moving,
 * and stop once the counts are within one. Moves are applied to the state as the controller would (ReassignPartition,
 * then CompleteReassignment once "the group committed" the target).
 */
class PartitionBalancerTest {
    private long offset;

    private ClusterState apply(ClusterState s, ControllerCommand c) {
        ClusterState.Applied a = s.apply(c, ++offset);
        assertTrue(a.result().isOk(), a.result().toString());
        return a.state();
    }

    private ClusterState register(ClusterState s, int id, String rack) {
        return apply(s, new ControllerCommand.RegisterBroker(new BrokerInfo(id, "127.0.0.1", 9092 + id, "127.0.0.1",
            19092 + id, 2, List.of(), rack)));
    }

    private static final java.util.function.IntPredicate ALL_LIVE = id -> true;
    private static final java.util.function.IntPredicate NO_SEED = id -> false;

    @Test
    void shouldPlanMovesOntoAJoinedNodeUntilCountsAreWithinOne() {
        ClusterState s = ClusterState.EMPTY;
        for (int i = 0; i < 3; i++) {
            s = register(s, i, null);
        }
        s = apply(s, ControllerCommand.CreateTopic.of("t", 6, 2, Map.of()));
        s = apply(s, ControllerCommand.CreateTopic.of("u", 3, 3, Map.of()));
        s = register(s, 3, null);
        assertEquals(Map.of(0, 7, 1, 7, 2, 7, 3, 0), PartitionBalancer.replicaCounts(s, ALL_LIVE));
        List<PartitionBalancer.Move> moves = PartitionBalancer.plan(s, ALL_LIVE, 100);
        assertEquals(5, moves.size(), moves.toString()); // 21 replicas over 4 nodes: 6,5,5,5
        Set<String> partitions = new HashSet<>();
        for (PartitionBalancer.Move m : moves) {
            assertEquals(3, m.to());
            assertTrue(partitions.add(m.topic() + "-" + m.partition()), "one move per partition");
            PartitionInfo p = s.topic(m.topic()).partition(m.partition());
            assertTrue(p.preferredLeader() != m.from(), "a follower replica moves, not the preferred leader: " + m);
            assertEquals(Arrays.stream(m.target()).distinct().count(), m.target().length);
            s = apply(s, new ControllerCommand.ReassignPartition(m.topic(), m.partition(), m.target()));
        }
        TreeMap<Integer, Integer> after = PartitionBalancer.replicaCounts(s, ALL_LIVE);
        int max = after.values().stream().max(Integer::compare).orElseThrow();
        int min = after.values().stream().min(Integer::compare).orElseThrow();
        assertTrue(max - min <= 1, after.toString());
        assertEquals(List.of(), PartitionBalancer.plan(s, ALL_LIVE, 100), "balanced: nothing more");
    }

    @Test
    void shouldNotLowerTheRacksAPartitionSpansNorMovePartitionsWithADownReplica() {
        ClusterState s = ClusterState.EMPTY;
        s = register(s, 0, "a");
        s = register(s, 1, "b");
        s = apply(s, ControllerCommand.CreateTopic.of("t", 4, 2, Map.of()));
        s = register(s, 2, "a"); // rack a again: a replica of b moving there would put both in rack a
        for (PartitionBalancer.Move m : PartitionBalancer.plan(s, ALL_LIVE, 100)) {
            assertEquals(0, m.from(), "only rack a's replicas may move to the other node of rack a: " + m);
        }
        assertFalse(PartitionBalancer.plan(s, ALL_LIVE, 100).isEmpty());
        // Node 1 down: every partition has a replica there, so none moves.
        assertEquals(List.of(), PartitionBalancer.plan(s, id -> id != 1, 100));
    }

    @Test
    void shouldStartAfterAJoinSettlesKeepTheBoundAndStopWhenBalanced() {
        ClusterState[] s = {ClusterState.EMPTY};
        for (int i = 0; i < 3; i++) {
            s[0] = register(s[0], i, null);
        }
        s[0] = apply(s[0], ControllerCommand.CreateTopic.of("t", 12, 3, Map.of()));
        PartitionBalancer b = new PartitionBalancer(4);
        List<ControllerCommand> submitted = new ArrayList<>();
        PartitionBalancer.Submitter sub = (c, timeout, done) -> {
            if (c instanceof ControllerCommand.ReassignPartition) {
                submitted.add(c); // the moves (its SetBalancing flags apply too, uncounted)
            }
            s[0] = apply(s[0], c);
            done.accept(ControllerResult.ok(offset));
        };
        long now = 0;
        b.round(s[0], true, now, ALL_LIVE, NO_SEED, sub);
        assertEquals("idle", b.status().state());
        s[0] = register(s[0], 3, null);
        now += PartitionBalancer.ROUND_INTERVAL_MS;
        b.round(s[0], true, now, ALL_LIVE, NO_SEED, sub);
        assertEquals("settling", b.status().state(), "a node joined a cluster holding partitions");
        assertTrue(submitted.isEmpty());
        // An operator's move runs: the balancer waits for it.
        s[0] = apply(s[0], new ControllerCommand.ReassignPartition("t", 0, new int[] {0, 1, 3}));
        now += PartitionBalancer.JOIN_SETTLE_MS + PartitionBalancer.ROUND_INTERVAL_MS;
        b.round(s[0], true, now, ALL_LIVE, NO_SEED, sub);
        assertEquals("waiting", b.status().state());
        s[0] = complete(s[0], "t", 0);
        int rounds = 0;
        while (true) {
            now += PartitionBalancer.ROUND_INTERVAL_MS;
            int before = submitted.size();
            b.round(s[0], true, now, ALL_LIVE, NO_SEED, sub);
            int moving = 0;
            for (PartitionInfo p : s[0].topic("t").partitions()) {
                moving += p.reassigning() ? 1 : 0;
            }
            assertTrue(moving <= 4, "at most 4 partitions move at once: " + moving);
            if (b.status().state().equals("idle")) {
                break;
            }
            assertEquals("balancing", b.status().state());
            assertTrue(submitted.size() > before || moving > 0, "progress each round");
            // The groups commit their targets: every move completes before the next round.
            for (PartitionInfo p : s[0].topic("t").partitions()) {
                if (p.reassigning()) {
                    s[0] = complete(s[0], "t", p.partition());
                }
            }
            assertTrue(++rounds < 50, "the balancer settles");
        }
        assertTrue(b.status().spread() <= 1, b.status().toString());
        assertEquals(submitted.size(), b.status().movesStarted());
        assertTrue(submitted.size() >= 8, "36 replicas over 4 nodes: node 3 receives 9 (one by the operator)");
        // A restart of a known node is not a join; disabled, nothing runs.
        b.setEnabled(false);
        s[0] = register(s[0], 4, null);
        now += PartitionBalancer.JOIN_SETTLE_MS * 2;
        b.round(s[0], true, now, ALL_LIVE, NO_SEED, sub);
        now += PartitionBalancer.JOIN_SETTLE_MS * 2;
        int before = submitted.size();
        b.round(s[0], true, now, ALL_LIVE, NO_SEED, sub);
        assertEquals("off", b.status().state());
        assertEquals(before, submitted.size());
        b.round(s[0], false, now, ALL_LIVE, NO_SEED, sub);
        assertFalse(b.status().active(), "only the controller leader's balancer runs");
    }

    @Test
    void shouldNotStartWhileTheClustersNodesRegisterBeforeAnyTopic() {
        PartitionBalancer b = new PartitionBalancer(4);
        ClusterState s = register(ClusterState.EMPTY, 0, null);
        List<ControllerCommand> submitted = new ArrayList<>();
        PartitionBalancer.Submitter sub = (c, t, done) -> submitted.add(c);
        b.round(s, true, 0, ALL_LIVE, NO_SEED, sub);
        s = register(s, 1, null);
        s = register(s, 2, null);
        b.round(s, true, 1_000, ALL_LIVE, NO_SEED, sub);
        s = apply(s, new ControllerCommand.CreateTopic("t", java.util.UUID.randomUUID(), 3, 2, new TreeMap<>(),
            List.of(new int[] {0, 1}, new int[] {0, 1}, new int[] {0, 1})));
        for (long t = 2_000; t < 30_000; t += 1_000) {
            b.round(s, true, t, ALL_LIVE, NO_SEED, sub);
        }
        assertEquals("idle", b.status().state());
        assertEquals(List.of(), submitted, "the nodes of a new cluster registering are not joins");
        // A seed (controller voter) registering late, after topics exist, is not a join either.
        s = register(s, 3, null);
        b.round(s, true, 31_000, ALL_LIVE, id -> id == 3, sub);
        assertEquals("idle", b.status().state());
        // A node that is not a seed is.
        s = register(s, 4, null);
        b.round(s, true, 32_000, ALL_LIVE, id -> id == 3, sub);
        assertEquals("settling", b.status().state());
    }

    @Test
    void shouldCarryOnAfterAControllerFailoverFromTheStatesFlag() {
        ClusterState[] s = {ClusterState.EMPTY};
        for (int i = 0; i < 3; i++) {
            s[0] = register(s[0], i, null);
        }
        s[0] = apply(s[0], ControllerCommand.CreateTopic.of("t", 12, 3, Map.of()));
        List<ControllerCommand> moves = new ArrayList<>();
        PartitionBalancer.Submitter sub = (c, timeout, done) -> {
            if (c instanceof ControllerCommand.ReassignPartition) {
                moves.add(c);
            }
            s[0] = apply(s[0], c);
            done.accept(ControllerResult.ok(offset));
        };
        PartitionBalancer first = new PartitionBalancer(4);
        long now = 0;
        first.round(s[0], true, now, ALL_LIVE, NO_SEED, sub);
        s[0] = register(s[0], 3, null);
        now += PartitionBalancer.ROUND_INTERVAL_MS;
        first.round(s[0], true, now, ALL_LIVE, NO_SEED, sub);
        assertEquals("settling", first.status().state());
        assertTrue(s[0].balancing(), "the join is in the controller state at once");
        // The leader fails over before it moved anything: the next leader's balancer knows node 3 from the start (it is
        // no join for it), yet carries on from the state's flag.
        first.round(s[0], false, now, ALL_LIVE, NO_SEED, sub);
        PartitionBalancer next = new PartitionBalancer(4);
        int rounds = 0;
        while (true) {
            now += PartitionBalancer.ROUND_INTERVAL_MS;
            next.round(s[0], true, now, ALL_LIVE, NO_SEED, sub);
            for (PartitionInfo p : s[0].topic("t").partitions()) {
                if (p.reassigning()) {
                    s[0] = complete(s[0], "t", p.partition());
                }
            }
            if (next.status().state().equals("idle") && !s[0].balancing()) {
                break;
            }
            assertTrue(++rounds < 60, "the new leader's balancer finishes: " + next.status());
        }
        assertTrue(moves.size() >= 9, "36 replicas over 4 nodes: node 3 receives 9: " + moves.size());
        assertTrue(next.status().spread() <= 1, next.status().toString());
    }

    private ClusterState complete(ClusterState s, String topic, int partition) {
        PartitionInfo p = s.topic(topic).partition(partition);
        return apply(s, new ControllerCommand.CompleteReassignment(topic, partition, p.groupId(), p.target()));
    }
}
