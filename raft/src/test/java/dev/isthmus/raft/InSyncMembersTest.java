package dev.isthmus.raft;

import org.junit.jupiter.api.Test;

import static dev.isthmus.raft.TestCluster.payload;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The leader's view of which members are in sync in Kafka's sense ({@link RaftGroup#inSyncMembers}), the choice of
 * a member to hand leadership to before stopping ({@link RaftGroup#handOffTarget}), and members that may not lead
 * ({@link RaftNode#setMayLead}), driven by hand through {@link TestCluster} on its simulated clock.
 */
class InSyncMembersTest {
    private static final long LAG_MS = 300;

    private static RaftGroup elect(TestCluster c) {
        assertTrue(c.runUntil(5_000, 10, () -> c.leader(0) != null), "no leader elected");
        c.settle();
        return c.leader(0);
    }

    private static int[] all() {
        return new int[] {0, 1, 2};
    }

    @Test
    void shouldDropAFollowerThatStopsAcknowledgingAfterTheLagAndTakeItBackOnceCaughtUp() {
        TestCluster c = new TestCluster(3, 1, RaftGroupTest.CONFIG);
        RaftGroup leader = elect(c);
        int x = (leader.nodeId() + 1) % 3;
        int y = (leader.nodeId() + 2) % 3;
        assertArrayEquals(all(), leader.inSyncMembers(LAG_MS, id -> true));

        c.isolated.add(x);
        long[] sent = {0};
        c.runUntil(LAG_MS - 50, 10, () -> {
            leader.propose(payload("r" + sent[0]++));
            return false;
        });
        assertArrayEquals(all(), leader.inSyncMembers(LAG_MS, id -> true), "still within the lag");
        c.runUntil(200, 10, () -> {
            leader.propose(payload("r" + sent[0]++));
            return false;
        });
        int[] without = {Math.min(leader.nodeId(), y), Math.max(leader.nodeId(), y)};
        assertArrayEquals(without, leader.inSyncMembers(LAG_MS, id -> true), "out after the lag");
        assertTrue(leader.isLeader(), "the other follower keeps the majority");

        c.isolated.clear();
        assertTrue(c.runUntil(2_000, 10, () -> leader.inSyncMembers(LAG_MS, id -> true).length == 3),
            "back in once it caught up");
        assertEquals(leader.lastOffset(), c.nodes[x].group(0).lastOffset());
    }

    @Test
    void shouldKeepAnIdleFollowerInSyncThroughHeartbeats() {
        TestCluster c = new TestCluster(3, 1, RaftGroupTest.CONFIG);
        RaftGroup leader = elect(c);
        leader.propose(payload("one"));
        c.settle();
        c.runUntil(5 * LAG_MS, 10, () -> false);
        assertArrayEquals(all(), leader.inSyncMembers(LAG_MS, id -> true));
    }

    @Test
    void shouldLeaveOutMembersOnNodesThatAreNotLive() {
        TestCluster c = new TestCluster(3, 1, RaftGroupTest.CONFIG);
        RaftGroup leader = elect(c);
        int x = (leader.nodeId() + 1) % 3;
        int[] isr = leader.inSyncMembers(LAG_MS, id -> id != x);
        assertEquals(2, isr.length);
        for (int id : isr) {
            assertTrue(id != x);
        }
        assertNull(c.nodes[x].group(0).inSyncMembers(LAG_MS, id -> true), "a follower does not know");
    }

    @Test
    void shouldStartANewLeaderFromThePreviousInSyncSet() {
        TestCluster c = new TestCluster(3, 1, RaftGroupTest.CONFIG);
        RaftGroup leader = elect(c);
        int x = (leader.nodeId() + 1) % 3;
        leader.assumeOutOfSync(id -> id != x);
        assertEquals(2, leader.inSyncMembers(LAG_MS, id -> true).length, "out until it shows it caught up");
        c.runUntil(50, 10, () -> false); // heartbeats: its acknowledgements show it holds the whole log
        assertArrayEquals(all(), leader.inSyncMembers(LAG_MS, id -> true));
    }

    @Test
    void shouldHandLeadershipToThePreferredInSyncVoterElseTheOneHoldingMost() {
        TestCluster c = new TestCluster(3, 1, RaftGroupTest.CONFIG);
        RaftGroup leader = elect(c);
        int x = (leader.nodeId() + 1) % 3;
        int y = (leader.nodeId() + 2) % 3;
        assertEquals(y, leader.handOffTarget(id -> true, y));
        assertEquals(x, leader.handOffTarget(id -> id != y, y), "the preferred one is not eligible");
        assertEquals(-1, leader.handOffTarget(id -> false, y));
        assertEquals(-1, c.nodes[x].group(0).handOffTarget(id -> true, -1), "only the leader hands off");

        c.isolated.add(x);
        c.runUntil(LAG_MS, 10, () -> {
            leader.propose(payload("more"));
            return false;
        });
        assertEquals(y, leader.handOffTarget(id -> true, x), "the preferred one fell behind: the caught-up one");
        c.isolated.clear();
    }

    @Test
    void shouldRefuseProposalsAfterTimeoutNowUntilTheTargetTakesOver() {
        TestCluster c = new TestCluster(3, 1, RaftGroupTest.CONFIG);
        RaftGroup leader = elect(c);
        int x = (leader.nodeId() + 1) % 3;
        leader.propose(payload("before"));
        c.settle();
        assertEquals(RaftErrors.OK, leader.transferLeadership(x)); // x holds the whole log: TimeoutNow goes at once
        assertTrue(c.network.stream().anyMatch(m -> m instanceof TimeoutNow), "TimeoutNow sent");
        assertEquals(RaftErrors.TRANSFER_IN_PROGRESS, leader.propose(payload("late")),
            "a proposal taken now would make the target's log too short to win");
        c.settle();
        assertTrue(c.nodes[x].group(0).isLeader(), "the target won at once");
        assertEquals(0, c.nodes[x].raft.metrics().timeoutCampaigns());
    }

    @Test
    void shouldNotCampaignOnAMemberThatMayNotLead() {
        TestCluster c = new TestCluster(3, 1, RaftGroupTest.CONFIG);
        RaftGroup leader = elect(c);
        int x = (leader.nodeId() + 1) % 3;
        int y = (leader.nodeId() + 2) % 3;
        c.nodes[x].raft.setMayLead(false);
        assertEquals(RaftErrors.OK, leader.transferLeadership(x));
        c.nodes[leader.nodeId()].raft.flush();
        c.settle();
        assertTrue(leader.isLeader(), "x ignored the TimeoutNow");
        assertEquals(0, c.nodes[x].raft.metrics().transferCampaigns());

        c.isolated.add(leader.nodeId()); // the leader is gone: only y may take over
        assertTrue(c.runUntil(5_000, 10, () -> c.nodes[y].group(0).isLeader()), "y campaigns and wins");
        assertFalse(c.nodes[x].group(0).isLeader());
        assertEquals(0, c.nodes[x].raft.metrics().timeoutCampaigns(), "x never campaigned");
        assertTrue(c.nodes[y].raft.metrics().timeoutCampaigns() > 0);

        c.isolated.clear();
        c.nodes[x].raft.setMayLead(true);
        RaftGroup now = c.nodes[y].group(0);
        assertEquals(RaftErrors.OK, now.transferLeadership(x));
        c.nodes[y].raft.flush();
        c.settle();
        assertTrue(c.nodes[x].group(0).isLeader(), "allowed again, x takes a transfer");
        assertEquals(1, c.nodes[x].raft.metrics().transferCampaigns());
    }
}
