package dev.isthmus.raft.tool;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Three Raft nodes as separate JVMs ({@link RaftNodeMain}) on one host, each with its own ports and data
 * directory, under a client writing through the leader: the leader killed with SIGKILL and restarted, the
 * leader paused with SIGSTOP and resumed, and (where the host allows network namespaces) the leader cut off
 * from the network and healed. Each time every acknowledged entry must be in every node's committed log at
 * its acknowledged offset, the logs must agree, a new leader must be elected, and the node that was away
 * must catch up. Waits are conditions with generous deadlines; nothing depends on timing.
 */
class RaftProcessTest {
    static final int GROUP = 1;
    static final String ARGS = "--groups 1 --heartbeat-ms 50 --election-ms 300,600";

    @TempDir
    Path dir;

    /** Waits until every running node has committed the same log covering every acknowledged entry; checks it. */
    static void verifyConverged(ProcessCluster c, Load load) throws Exception {
        long needed = load.maxAckedOffset() + 1;
        c.await("every node commits past offset " + needed + " with equal high watermarks", () -> {
            long hw = -2;
            for (ProcessCluster.Node n : c.nodes) {
                long h = n.highWatermark(GROUP);
                if (h < needed || (hw != -2 && h != hw)) {
                    return false;
                }
                hw = h;
            }
            return true;
        });
        TreeMap<Long, String> first = null;
        for (ProcessCluster.Node n : c.nodes) {
            TreeMap<Long, String> log = n.scanAll(GROUP);
            for (Map.Entry<Long, String> e : load.acked.entrySet()) {
                assertEquals(e.getValue(), log.get(e.getKey()), "node " + n.id + " lost or changed the entry"
                    + " acknowledged at offset " + e.getKey());
            }
            if (first == null) {
                first = log;
            } else {
                assertEquals(first, log, "node " + n.id + " holds a different committed log");
            }
        }
        System.out.println("verified " + load.acked.size() + " acknowledged entries (" + load.errors.get()
            + " requests failed or unanswered) on " + c.nodes.length + " nodes, " + first.size() + " committed records");
    }

    /** Waits for a leader other than {@code old} in a term above {@code oldTerm}; prints how long it took. */
    static ProcessCluster.Node awaitNewLeader(ProcessCluster c, ProcessCluster.Node old, long oldTerm, String event)
        throws Exception {
        long t0 = System.nanoTime();
        ProcessCluster.Node[] found = new ProcessCluster.Node[1];
        c.await("a new leader after " + event, () -> {
            ProcessCluster.Node l = c.leader(GROUP);
            if (l != null && l != old && c.term(l, GROUP) > oldTerm) {
                found[0] = l;
                return true;
            }
            return false;
        });
        System.out.println("new leader node " + found[0].id + " " + (System.nanoTime() - t0) / 1_000_000
            + " ms after " + event + " (election timeout 300-600 ms)");
        return found[0];
    }

    static void awaitAcks(ProcessCluster c, Load load, int more) throws Exception {
        int target = load.ackedCount() + more;
        c.await(target + " acknowledged entries", () -> load.ackedCount() >= target);
    }

    @Test
    void shouldSurviveKillingTheLeaderUnderLoadAndCatchUpAfterRestart() throws Exception {
        try (ProcessCluster c = new ProcessCluster(dir, 3, null, ARGS)) {
            c.startAll();
            c.await("a leader", () -> c.leader(GROUP) != null);
            try (Load load = new Load(c, GROUP, "k")) {
                awaitAcks(c, load, 300);
                ProcessCluster.Node victim = c.leader(GROUP);
                long term = c.term(victim, GROUP);
                victim.kill9();
                awaitNewLeader(c, victim, term, "kill -9 of node " + victim.id);
                awaitAcks(c, load, 300);
                victim.start();
                awaitAcks(c, load, 200);
                ProcessCluster.Node leader = c.leader(GROUP);
                long target = leader == null ? 0 : leader.highWatermark(GROUP);
                c.await("restarted node " + victim.id + " catches up to " + target,
                    () -> victim.highWatermark(GROUP) >= target);
                load.close();
                verifyConverged(c, load);
            }
        }
    }

    @Test
    void shouldElectANewLeaderWhileTheOldOneIsPausedAndCatchItUpOnResume() throws Exception {
        try (ProcessCluster c = new ProcessCluster(dir, 3, null, ARGS)) {
            c.startAll();
            c.await("a leader", () -> c.leader(GROUP) != null);
            try (Load load = new Load(c, GROUP, "s")) {
                awaitAcks(c, load, 200);
                ProcessCluster.Node paused = c.leader(GROUP);
                long term = c.term(paused, GROUP);
                paused.pause();
                awaitNewLeader(c, paused, term, "SIGSTOP of node " + paused.id);
                awaitAcks(c, load, 300);
                paused.resume();
                c.await("resumed node " + paused.id + " follows the new term", () -> {
                    String[] s = paused.status(GROUP);
                    return s != null && !s[0].equals("LEADER") && Long.parseLong(s[1]) > term;
                });
                awaitAcks(c, load, 100);
                load.close();
                verifyConverged(c, load);
            }
        }
    }

    @Test
    void shouldKeepCommittingOnTheMajoritySideOfANetworkPartition() throws Exception {
        ProcessCluster.Netns netns = ProcessCluster.Netns.create(3);
        Assumptions.assumeTrue(netns != null, "network namespaces are not available on this host (needs root and"
            + " the ip tool); the partition test is skipped");
        try (ProcessCluster c = new ProcessCluster(dir, 3, netns, ARGS)) {
            c.startAll();
            c.await("a leader", () -> c.leader(GROUP) != null);
            try (Load load = new Load(c, GROUP, "p")) {
                awaitAcks(c, load, 200);
                ProcessCluster.Node cut = c.leader(GROUP);
                long term = c.term(cut, GROUP);
                long hwBefore = cut.highWatermark(GROUP);
                netns.isolate(cut.id);
                awaitNewLeader(c, cut, term, "cutting node " + cut.id + " off the network");
                awaitAcks(c, load, 300);
                netns.heal(cut.id);
                c.await("healed node " + cut.id + " follows the new term", () -> {
                    String[] s = cut.status(GROUP);
                    return s != null && !s[0].equals("LEADER") && Long.parseLong(s[1]) > term;
                });
                assertTrue(cut.highWatermark(GROUP) >= hwBefore);
                awaitAcks(c, load, 100);
                load.close();
                verifyConverged(c, load);
            }
        }
    }
}
