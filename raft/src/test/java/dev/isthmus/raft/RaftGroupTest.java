package dev.isthmus.raft;

import org.junit.jupiter.api.Test;

import java.util.List;

import static dev.isthmus.raft.TestCluster.payload;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Step-by-step behaviour of one group, driven by hand through {@link TestCluster}. */
class RaftGroupTest {
    static final RaftConfig CONFIG = RaftConfig.builder()
        .heartbeatIntervalMs(10)
        .electionTimeoutMs(100, 200)
        .retransmitTimeoutMs(50)
        .maxInflightAppends(4)
        .build();

    private static RaftGroup elect(TestCluster c, int group) {
        assertTrue(c.runUntil(5_000, 10, () -> c.leader(group) != null), "no leader elected");
        RaftGroup leader = c.leader(group);
        c.settle();
        return leader;
    }

    @Test
    void shouldLeadSoleVoterGroupOnlyAfterItsVoteIsDurable() {
        TestCluster c = new TestCluster(1, 1, CONFIG);
        RaftGroup g = c.nodes[0].group(0);
        c.nodes[0].raft.tick();
        assertEquals(Role.CANDIDATE, g.role(), "a sole voter campaigns at once");
        assertEquals(1, g.term());
        c.flush(0);
        assertEquals(Role.LEADER, g.role(), "leader once term and vote are durable");
    }

    @Test
    void shouldCommitOnlyWhatTheLeaderItselfHasFlushed() {
        TestCluster c = new TestCluster(1, 1, CONFIG);
        RaftGroup g = c.nodes[0].group(0);
        c.nodes[0].raft.tick();
        c.flush(0);
        long noop = g.lastOffset();
        long offset = g.propose(payload("a"));
        assertEquals(noop + 1, offset);
        c.nodes[0].raft.flush();
        assertTrue(g.commitOffset() < offset, "not committed before the leader's flush");
        c.flush(0);
        assertEquals(offset, g.commitOffset());
        assertEquals(RaftGroup.Outcome.COMMITTED, g.proposalOutcome(offset, g.term()));
    }

    @Test
    void shouldHoldVoteResponseUntilTermAndVoteAreDurable() {
        TestCluster c = new TestCluster(3, 1, CONFIG);
        c.network.clear();
        c.nodes[1].raft.receive(new VoteRequest(0, 0, 1, 5, -1, 0, false, false));
        assertEquals(5, c.nodes[1].group(0).term());
        assertTrue(c.network.stream().noneMatch(m -> m instanceof VoteResponse), "answered before durable");
        c.flush(1);
        VoteResponse r = (VoteResponse) c.network.stream().filter(m -> m instanceof VoteResponse).findFirst()
            .orElseThrow();
        assertTrue(r.granted());
        assertEquals(new HardState(5, 0), c.nodes[1].log(0).hardState());
    }

    @Test
    void shouldCommitOnlyWhenAMajorityHasTheEntryDurably() {
        TestCluster c = new TestCluster(3, 1, CONFIG);
        RaftGroup leader = elect(c, 0);
        int l = leader.nodeId();
        int f1 = (l + 1) % 3;
        int f2 = (l + 2) % 3;
        long offset = leader.propose(payload("x"));
        c.nodes[l].raft.flush();
        c.deliverAll(); // followers append, nobody flushed
        assertTrue(leader.commitOffset() < offset);
        c.flush(l);
        c.deliverAll();
        assertTrue(leader.commitOffset() < offset, "the leader alone is not a majority");
        c.flush(f1);
        c.deliverAll();
        assertEquals(offset, leader.commitOffset(), "leader + one durable follower commit");
        assertTrue(c.nodes[f2].group(0).durableOffset() < offset);
    }

    @Test
    void shouldPipelineSeveralAppendsBeforeAnyAcknowledgement() {
        TestCluster c = new TestCluster(3, 1, RaftConfig.builder().heartbeatIntervalMs(10).electionTimeoutMs(100, 200)
            .maxAppendBytes(100).maxInflightAppends(8).build());
        RaftGroup leader = elect(c, 0);
        int l = leader.nodeId();
        c.sent.clear();
        for (int i = 0; i < 20; i++) {
            leader.propose(new BytesPayload(new byte[60], 1));
        }
        c.nodes[l].raft.flush();
        long appends = c.sent.stream().filter(m -> m instanceof AppendRequest a && a.to() == (l + 1) % 3).count();
        assertEquals(8, appends, "a full window of AppendEntries in flight to one follower");
        c.settle();
        assertEquals(leader.lastOffset(), leader.commitOffset());
    }

    @Test
    void shouldSendOneHeartbeatPerPeerWhateverTheNumberOfGroups() {
        int groups = 50;
        TestCluster c = new TestCluster(3, groups, CONFIG, new int[] {0, 1, 2});
        assertTrue(c.runUntil(10_000, 10, () -> {
            for (int g = 0; g < groups; g++) {
                if (c.leader(g) == null) {
                    return false;
                }
            }
            return true;
        }));
        c.settle();
        c.sent.clear();
        c.advanceMs(CONFIG.heartbeatIntervalMs());
        c.tickAll();
        List<RaftMessage> hbs = c.sent.stream().filter(m -> m instanceof Heartbeat).toList();
        assertTrue(hbs.size() <= 6, "at most one heartbeat per ordered node pair, got " + hbs.size());
        int items = hbs.stream().mapToInt(m -> ((Heartbeat) m).size()).sum();
        assertEquals(2 * groups, items, "one item per group per follower");
        c.settle();
        long responses = c.sent.stream().filter(m -> m instanceof HeartbeatResponse).count();
        assertEquals(hbs.size(), responses);
    }

    @Test
    void shouldResolveConflictingSuffixAndNeverLoseCommittedEntries() {
        TestCluster c = new TestCluster(3, 1, CONFIG);
        RaftGroup leader = elect(c, 0);
        int l = leader.nodeId();
        for (int i = 0; i < 5; i++) {
            leader.propose(payload("c" + i));
        }
        c.nodes[l].raft.flush();
        c.settle();
        long committed = leader.commitOffset();
        // The leader is cut off and writes entries nobody else gets.
        c.isolated.add(l);
        for (int i = 0; i < 10; i++) {
            leader.propose(payload("lost" + i));
            c.nodes[l].raft.flush();
        }
        c.flush(l);
        long isolatedLast = leader.lastOffset();
        // The others elect a new leader and write different entries at the same offsets.
        RaftGroup next = null;
        for (int i = 0; i < 500 && next == null; i++) {
            c.advanceMs(10);
            for (TestCluster.Node n : c.nodes) {
                if (n.id != l) {
                    n.raft.tick();
                }
            }
            c.settle();
            for (TestCluster.Node n : c.nodes) {
                if (n.id != l && n.group(0).isLeader()) {
                    next = n.group(0);
                }
            }
        }
        assertNotNull(next, "the majority side elects a leader");
        for (int i = 0; i < 20; i++) {
            next.propose(payload("new" + i));
        }
        c.nodes[next.nodeId()].raft.flush();
        c.settle();
        assertTrue(next.lastOffset() > isolatedLast);
        c.isolated.clear();
        RaftGroup finalNext = next;
        assertTrue(c.runUntil(5_000, 10, () -> c.nodes[l].group(0).lastOffset() == finalNext.lastOffset()
            && c.nodes[l].group(0).commitOffset() == finalNext.commitOffset()));
        RaftGroup old = c.nodes[l].group(0);
        assertEquals(Role.FOLLOWER, old.role());
        assertTrue(old.metrics().suffixTruncations() >= 1);
        assertTrue(old.metrics().appendRejectsSent() <= 3, "fast back-off: one term per round trip, rejects="
            + old.metrics().appendRejectsSent());
        for (long o = 0; o <= committed; o++) {
            assertEquals(next.termAt(o), old.termAt(o));
        }
        assertEquals(c.nodes[next.nodeId()].log(0).entries(), c.nodes[l].log(0).entries());
    }

    @Test
    void shouldHandLeadershipToAnUpToDateFollower() {
        TestCluster c = new TestCluster(3, 1, CONFIG);
        RaftGroup leader = elect(c, 0);
        int target = (leader.nodeId() + 1) % 3;
        leader.propose(payload("before"));
        assertEquals(RaftErrors.OK, leader.transferLeadership(target));
        assertEquals(RaftErrors.TRANSFER_IN_PROGRESS, leader.propose(payload("during")));
        c.nodes[leader.nodeId()].raft.flush();
        c.settle();
        assertTrue(c.nodes[target].group(0).isLeader(), "target leads after TimeoutNow");
        assertEquals(Role.FOLLOWER, leader.role());
    }

    @Test
    void shouldNotLetAPartitionedNodeRaiseTheTermWithPreVote() {
        TestCluster c = new TestCluster(3, 1, CONFIG);
        RaftGroup leader = elect(c, 0);
        int x = (leader.nodeId() + 1) % 3;
        long term = leader.term();
        c.isolated.add(x);
        c.runUntil(2_000, 10, () -> false);
        assertEquals(term, c.nodes[x].group(0).term(), "pre-vote keeps the isolated node's term");
        assertTrue(c.nodes[x].group(0).metrics().preVotesStarted() > 0);
        c.isolated.clear();
        c.runUntil(500, 10, () -> false);
        assertTrue(leader.isLeader(), "the leader is not disturbed when the node comes back");
        assertEquals(term, leader.term());
    }

    @Test
    void shouldStepDownWhenLeaderLosesQuorum() {
        TestCluster c = new TestCluster(3, 1, CONFIG);
        RaftGroup leader = elect(c, 0);
        c.isolated.add(leader.nodeId());
        c.runUntil(1_000, 10, () -> !leader.isLeader());
        assertFalse(leader.isLeader(), "check-quorum steps the isolated leader down");
        assertTrue(leader.metrics().checkQuorumStepDowns() >= 1);
    }

    @Test
    void shouldIgnoreVoteRequestsWhileHearingFromALeader() {
        TestCluster c = new TestCluster(3, 1, CONFIG);
        RaftGroup leader = elect(c, 0);
        int f = (leader.nodeId() + 1) % 3;
        RaftGroup follower = c.nodes[f].group(0);
        long term = follower.term();
        c.nodes[f].raft.receive(new VoteRequest(0, (f + 1) % 3, f, term + 1, 1_000, term, false, false));
        assertEquals(term, follower.term(), "in lease: the higher term is ignored");
        assertEquals(1, follower.metrics().votesIgnoredInLease());
    }

    @Test
    void shouldSurviveLeaderCrashLosingUnflushedEntries() {
        TestCluster c = new TestCluster(3, 1, CONFIG);
        RaftGroup leader = elect(c, 0);
        int l = leader.nodeId();
        long committed = leader.propose(payload("kept"));
        c.nodes[l].raft.flush();
        c.settle();
        assertEquals(committed, leader.commitOffset());
        long unflushed = leader.propose(payload("maybe"));
        c.nodes[l].raft.flush(); // sent, but neither the leader nor anyone flushes
        c.network.clear();
        c.crashAndRestart(l, 1);
        // A new leader whose log is all committed appends no LEADER_CHANGE entry: commit moves with a proposal.
        assertTrue(c.runUntil(5_000, 10, () -> c.leader(0) != null));
        RaftGroup nl = c.leader(0);
        assertTrue(nl.propose(payload("next")) >= 0);
        c.nodes[nl.nodeId()].raft.flush();
        assertTrue(c.runUntil(5_000, 10, () -> nl.commitOffset() > committed));
        assertEquals(leader.termAt(committed), nl.termAt(committed));
        assertTrue(nl.lastOffset() >= unflushed - 1);
    }

    @Test
    void shouldCatchUpAFollowerBehindTheLogStartWithASnapshot() {
        RaftConfig cfg = CONFIG.toBuilder().snapshotIntervalOffsets(5).snapshotChunkBytes(1).build();
        TestCluster c = new TestCluster(3, 1, cfg);
        RaftGroup leader = elect(c, 0);
        int l = leader.nodeId();
        int lagging = (l + 1) % 3;
        c.isolated.add(lagging);
        for (int i = 0; i < 30; i++) {
            leader.propose(payload("s" + i));
            c.nodes[l].raft.flush();
            c.settle();
        }
        assertTrue(leader.startOffset() > 0, "the leader compacted its log");
        c.isolated.clear();
        RaftGroup f = c.nodes[lagging].group(0);
        assertTrue(c.runUntil(5_000, 10, () -> f.commitOffset() == leader.commitOffset()
            && f.lastOffset() == leader.lastOffset()));
        assertTrue(f.metrics().snapshotsInstalled() >= 1, "caught up through InstallSnapshot");
        assertEquals(f.startOffset() - 1, c.nodes[lagging].log(0).snapshotMeta().lastOffset());
    }

    @Test
    void shouldAddALearnerThenPromoteItThroughJointConsensus() {
        TestCluster c = new TestCluster(4, 1, CONFIG, new int[] {0, 1, 2});
        RaftGroup leader = elect(c, 0);
        for (int i = 0; i < 10; i++) {
            leader.propose(payload("m" + i));
        }
        c.nodes[leader.nodeId()].raft.flush();
        c.settle();
        int[] t = {0, 1, 3}; // replaces node 2 (perhaps the leader itself) with node 3
        boolean sawLearner = false;
        boolean sawJoint = false;
        for (int i = 0; i < 200; i++) {
            RaftGroup cur = c.leader(0);
            if (cur != null) {
                int rc = cur.changeMembership(t, new int[0]);
                if (rc == RaftErrors.OK) {
                    break;
                }
                Configuration cfg = cur.configuration();
                sawLearner |= cfg.isLearner(3);
                sawJoint |= cfg.isJoint();
            }
            c.advanceMs(10);
            c.tickAll();
            c.settle();
        }
        RaftGroup finalLeader = c.leader(0);
        assertEquals(Configuration.ofVoters(t), finalLeader.configuration());
        assertTrue(finalLeader.configurationSettled());
        assertTrue(sawLearner, "the new node joined as a learner first");
        assertTrue(sawJoint, "voters changed through the joint configuration");
        assertEquals(finalLeader.lastOffset(), c.nodes[3].group(0).lastOffset());
        assertTrue(c.nodes[3].group(0).configuration().isVoter(3));
    }

    @Test
    void shouldAnswerOffsetForLeaderEpochFromTheTermIndex() {
        TestCluster c = new TestCluster(1, 1, CONFIG);
        RaftGroup g = c.nodes[0].group(0);
        c.nodes[0].raft.tick();
        c.flush(0);
        long t1 = g.term();
        g.propose(new BytesPayload(new byte[3], 3)); // offsets 0..2: a new leader of an empty log appends no no-op
        c.flush(0);
        assertEquals(new EpochEndOffset(t1, 3), g.epochEndOffset(t1));
        assertEquals(EpochEndOffset.UNDEFINED, g.epochEndOffset(t1 + 1));
        assertEquals(new EpochEndOffset(0, 0), g.epochEndOffset(0));
        assertEquals(EpochEndOffset.UNDEFINED, g.epochEndOffset(-1));
    }

    @Test
    void shouldRefuseProposalsOnFollowersAndUnderBackpressure() {
        TestCluster c = new TestCluster(3, 1, CONFIG.toBuilder().maxUncommittedBytes(200).build());
        RaftGroup leader = elect(c, 0);
        RaftGroup follower = c.nodes[(leader.nodeId() + 1) % 3].group(0);
        assertEquals(RaftErrors.NOT_LEADER, follower.propose(payload("no")));
        long rc = 0;
        for (int i = 0; i < 10 && rc >= 0; i++) {
            rc = leader.propose(new BytesPayload(new byte[50], 1));
        }
        assertEquals(RaftErrors.BACKPRESSURE, rc);
        c.nodes[leader.nodeId()].raft.flush();
        c.settle();
        assertTrue(leader.propose(new BytesPayload(new byte[50], 1)) >= 0, "accepted again after commit");
    }

    /**
     * The paper's Figure 8: an entry of an earlier term that reaches a majority under a later leader is not
     * committed by counting replicas (paper §5.4.2), so a leader of a newer term may still replace it.
     */
    @Test
    void shouldNotCommitAnOldTermEntryByCountingReplicas() {
        RaftConfig cfg = CONFIG.toBuilder().maxAppendBytes(1).build(); // one entry per AppendEntries
        TestCluster c = new TestCluster(5, 1, cfg);
        Configuration all = Configuration.ofVoters(0, 1, 2, 3, 4);
        Entry start = Entry.leaderChange(0, 1);
        Entry x = Entry.data(1, 2, payload("X from term 2"));
        Entry y = Entry.data(1, 3, payload("Y from term 3"));
        // Term 2's leader (node 0) got X to node 1 only; term 3's leader (node 4, voted by 2 and 3) wrote Y alone.
        c.restartWith(0, TestCluster.image(List.of(start, x), new HardState(2, 0)), all);
        c.restartWith(1, TestCluster.image(List.of(start, x), new HardState(2, 0)), all);
        c.restartWith(2, TestCluster.image(List.of(start), new HardState(3, 4)), all);
        c.restartWith(3, TestCluster.image(List.of(start), new HardState(3, 4)), all);
        c.restartWith(4, TestCluster.image(List.of(start, y), new HardState(3, 4)), all);
        c.isolated.add(4);

        // Node 0 or 1 wins term 4 and copies X to nodes 2 and 3, but its own no-op reaches nobody.
        RaftGroup leader = null;
        for (int i = 0; i < 500 && (leader == null || c.nodes[2].group(0).termAt(1) != 2
            || c.nodes[3].group(0).termAt(1) != 2); i++) {
            c.advanceMs(10);
            for (int n = 0; n < 4; n++) {
                c.nodes[n].raft.tick();
            }
            for (int k = 0; k < 50; k++) {
                c.deliver(m -> !(m instanceof AppendRequest a
                    && a.entries().stream().anyMatch(e -> e.term() == a.term())));
                c.flushAll();
            }
            leader = c.leader(0);
        }
        assertNotNull(leader, "node 0 or 1 leads term 4");
        for (int n = 0; n < 4; n++) {
            assertEquals(2, c.nodes[n].group(0).termAt(1), "node " + n + " holds X");
        }
        for (int n = 0; n < 5; n++) {
            assertTrue(c.nodes[n].group(0).commitOffset() < 1, "X on a majority must not count as committed (node "
                + n + " commit " + c.nodes[n].group(0).commitOffset() + ")");
        }

        // Nodes 0 and 1 are cut off; node 4 (last term 3) wins with 2 and 3 and replaces X with Y.
        int old = leader.nodeId();
        c.isolated.clear();
        c.isolated.add(0);
        c.isolated.add(1);
        assertTrue(c.runUntil(10_000, 10, () -> {
            RaftGroup l = c.leader(0);
            return l != null && l.nodeId() == 4 && l.commitOffset() >= 2;
        }), "node 4 leads and commits");
        for (int n = 2; n < 5; n++) {
            assertEquals(3, c.nodes[n].group(0).termAt(1), "node " + n + " holds Y at offset 1");
        }
        c.isolated.clear();
        assertTrue(c.runUntil(10_000, 10, () -> c.nodes[0].group(0).termAt(1) == 3
            && c.nodes[1].group(0).termAt(1) == 3), "the old leader " + old + " and node 1 drop X for Y");
    }
}
