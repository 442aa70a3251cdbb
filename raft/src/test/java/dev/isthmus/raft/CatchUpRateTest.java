package dev.isthmus.raft;

import org.junit.jupiter.api.Test;

import static dev.isthmus.raft.TestCluster.payload;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The catch-up rate of a node ({@link RaftNode#setCatchUpRate}, Kafka's {@code leader.replication.throttled.rate}):
 * a learner joining a group receives the leader's log at no more than the rate (plus one second's burst), on the
 * simulated clock of {@link TestCluster}; voters are not limited; without a rate the learner catches up at once.
 */
class CatchUpRateTest {
    private static final int ENTRIES = 40;
    private static final int ENTRY_BYTES = 1000;

    /** A 3-node group on {0, 1} with {@code ENTRIES} entries of 1000 bytes, node 2 added as a learner. */
    private static RaftGroup groupWithLearner(TestCluster c) {
        assertTrue(c.runUntil(5_000, 10, () -> c.leader(0) != null), "no leader elected");
        c.settle();
        RaftGroup leader = c.leader(0);
        for (int i = 0; i < ENTRIES; i++) {
            leader.propose(new BytesPayload(new byte[ENTRY_BYTES], ENTRY_BYTES));
            c.nodes[leader.nodeId()].raft.flush();
            c.settle();
        }
        return leader;
    }

    @Test
    void shouldSendALearnerNoMoreThanTheRateAndStillCatchItUp() {
        TestCluster c = new TestCluster(3, 1, RaftGroupTest.CONFIG, new int[] {0, 1});
        RaftGroup leader = groupWithLearner(c);
        int l = leader.nodeId();
        long rate = 4_000;
        c.nodes[l].raft.setCatchUpRate(rate);
        long votersBefore = leader.commitOffset();
        assertEquals(RaftErrors.CONFIG_CHANGE_IN_PROGRESS, leader.changeMembership(new int[] {0, 1}, new int[] {2}));
        RaftGroup learner = c.nodes[2].group(0);
        long elapsedMs = 0;
        while (learner.lastOffset() < leader.lastOffset()) {
            c.advanceMs(10);
            elapsedMs += 10;
            c.tickAll();
            c.settle();
            long sent = c.nodes[l].raft.metrics().catchUpBytes();
            assertTrue(sent <= rate + rate * elapsedMs / 1000 + 2 * ENTRY_BYTES + 512, "sent " + sent + " bytes to the"
                + " learner in " + elapsedMs + " ms at " + rate + " B/s");
            assertTrue(elapsedMs < 60_000, "the learner did not catch up: " + learner.lastOffset() + " of "
                + leader.lastOffset());
            // Voters are not limited: a write still commits while the learner catches up.
            if (elapsedMs == 500) {
                long o = leader.propose(payload("while catching up"));
                c.nodes[l].raft.flush();
                c.settle();
                assertTrue(leader.commitOffset() >= o && o > votersBefore, "a voter write committed");
            }
        }
        assertTrue(elapsedMs >= (ENTRIES * (long) ENTRY_BYTES - rate) * 1000 / rate / 2,
            "40 KB at 4 KB/s cannot arrive in " + elapsedMs + " ms");
        assertTrue(c.nodes[l].raft.metrics().catchUpDelays() > 0);
        assertTrue(c.nodes[l].raft.metrics().catchUpBytes() >= ENTRIES * (long) ENTRY_BYTES);
    }

    @Test
    void shouldCatchUpAtOnceWithoutARate() {
        TestCluster c = new TestCluster(3, 1, RaftGroupTest.CONFIG, new int[] {0, 1});
        RaftGroup leader = groupWithLearner(c);
        int l = leader.nodeId();
        c.nodes[l].raft.setCatchUpRate(4_000);
        c.nodes[l].raft.setCatchUpRate(0);
        leader.changeMembership(new int[] {0, 1}, new int[] {2});
        RaftGroup learner = c.nodes[2].group(0);
        for (int i = 0; i < 10 && learner.lastOffset() < leader.lastOffset(); i++) {
            c.advanceMs(10);
            c.tickAll();
            c.settle();
        }
        assertEquals(leader.lastOffset(), learner.lastOffset());
        assertEquals(0, c.nodes[l].raft.metrics().catchUpDelays());
        assertThrows(IllegalArgumentException.class, () -> c.nodes[l].raft.setCatchUpRate(-1));
    }
}
