package dev.isthmus.gateway.group;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import static dev.isthmus.gateway.group.GroupHarness.joinRequest;
import static dev.isthmus.gateway.group.GroupHarness.offset;
import static dev.isthmus.gateway.group.GroupHarness.protocols;
import static dev.isthmus.gateway.group.GroupHarness.syncRequest;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One test per rule of Kafka's classic group protocol, driven through {@link GroupHarness} with a stepped clock. */
class GroupStateMachineTest {
    private static final String G = "group";

    /** Joins {@code n} dynamic members (two-step, v5), completes the rebalance and the syncs; leader first. */
    private static List<String> stableGroup(GroupHarness h, int n) {
        List<String> ids = new ArrayList<>();
        List<Long> joins = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String id = h.memberIdRequired(G);
            ids.add(id);
            joins.add(h.join(joinRequest(G, id, null, (short) 5)));
        }
        h.advance(0); // the initial rebalance delay (0 here) expires
        GroupApi.JoinResponse first = h.joinReply(joins.get(0));
        String leader = first.leader();
        int generation = first.generationId();
        Map<String, byte[]> assignment = new HashMap<>();
        for (String id : ids) {
            assignment.put(id, ("assignment-of-" + id).getBytes());
        }
        List<String> ordered = new ArrayList<>();
        ordered.add(leader);
        ids.stream().filter(id -> !id.equals(leader)).forEach(ordered::add);
        List<Long> syncs = new ArrayList<>();
        for (String id : ordered.reversed()) { // followers first: they wait for the leader
            syncs.add(h.sync(syncRequest(G, id, null, generation, id.equals(leader) ? assignment : Map.of())));
        }
        for (long s : syncs) {
            assertEquals(GroupErrors.NONE, h.syncReply(s).errorCode());
        }
        assertEquals(GroupState.STABLE, h.describe(G).state());
        return ordered;
    }

    // ------------------------------------------------------------------ joining

    @Test
    void shouldCountAProtocolNamedTwiceInOneJoinOnce() {
        // ProtocolFuzzTest seed 19130333929793: a JoinGroup naming "range" twice was counted as two supporters in a
        // group of one, so no protocol was every member's, and choosing one threw on the shard.
        GroupHarness h = new GroupHarness(GroupHarness.config());
        List<GroupApi.Protocol> twice = new ArrayList<>(protocols("range"));
        twice.addAll(protocols("range"));
        long id = h.join(joinRequest(G, "", null, (short) 3, 10_000, 30_000, twice));
        h.advance(0);
        GroupApi.JoinResponse joined = h.joinReply(id);
        assertEquals(GroupErrors.NONE, joined.errorCode());
        assertEquals("range", joined.protocolName());
        assertEquals(1, joined.members().size());
    }

    @Test
    void shouldAnswerMemberIdRequiredToAFirstJoinFromVersion4() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        long id = h.join(joinRequest(G, "", null, (short) 4));
        GroupApi.JoinResponse r = h.joinReply(id);
        assertEquals(GroupErrors.MEMBER_ID_REQUIRED, r.errorCode());
        assertTrue(r.memberId().startsWith("client-"), r.memberId());
        assertEquals(GroupState.EMPTY, h.describe(G).state());
        long again = h.join(joinRequest(G, r.memberId(), null, (short) 4));
        h.assertParked(again);
        h.advance(0);
        GroupApi.JoinResponse joined = h.joinReply(again);
        assertEquals(GroupErrors.NONE, joined.errorCode());
        assertEquals(r.memberId(), joined.memberId());
        assertEquals(1, joined.generationId());
        assertEquals(r.memberId(), joined.leader());
        assertEquals("range", joined.protocolName());
        assertEquals(1, joined.members().size(), "the leader gets every member's metadata");
    }

    @Test
    void shouldAddAMemberAtOnceBeforeVersion4() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        long id = h.join(joinRequest(G, "", null, (short) 3));
        h.assertParked(id);
        h.advance(0);
        assertEquals(GroupErrors.NONE, h.joinReply(id).errorCode());
        assertEquals(GroupState.COMPLETING_REBALANCE, h.describe(G).state());
    }

    @Test
    void shouldForgetAPendingMemberThatDoesNotComeBackWithinItsSessionTimeout() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        String id = h.memberIdRequired(G);
        h.advance(9_999);
        assertTrue(h.m.groupIds().contains(G));
        h.advance(1);
        assertFalse(h.m.groupIds().contains(G), "a group of one expired pending member is forgotten");
        long late = h.join(joinRequest(G, id, null, (short) 5));
        assertEquals(GroupErrors.UNKNOWN_MEMBER_ID, h.joinReply(late).errorCode());
    }

    @Test
    void shouldExtendTheInitialRebalanceDelayForEachNewcomerUpToTheRebalanceTimeout() {
        GroupConfig c = GroupHarness.config();
        GroupHarness h = new GroupHarness(new GroupConfig(c.minSessionTimeoutMs(), c.maxSessionTimeoutMs(), 3_000,
            c.newMemberJoinTimeoutMs(), c.maxSize(), c.offsetsRetentionMs(), c.retentionCheckIntervalMs(),
            c.offsetMetadataMaxBytes()));
        GroupApi.JoinRequest a = joinRequest(G, "", null, (short) 3, 10_000, 7_000, protocols("range"));
        long first = h.join(a);
        h.advance(2_000);
        long second = h.join(a); // a newcomer during the delay: the delay restarts (min(3s, 7s - 3s left))
        h.advance(1_000);
        h.assertParked(first);
        long third = h.join(a);
        h.advance(2_999);
        h.assertParked(first);
        h.advance(1);
        // Budget: 7 s rebalance timeout - 3 s = 4 s of extensions: the second extension is cut to 1 s.
        h.assertParked(first);
        h.advance(1_000);
        for (long id : List.of(first, second, third)) {
            assertEquals(GroupErrors.NONE, h.joinReply(id).errorCode());
            assertEquals(1, h.joinReply(id).generationId());
        }
    }

    @Test
    void shouldCompleteARebalanceOnceEveryMemberRejoined() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        List<String> ids = stableGroup(h, 3);
        String follower = ids.get(1);
        // A follower with new metadata forces a rebalance.
        long j1 = h.join(joinRequest(G, follower, null, (short) 5, 10_000, 30_000, protocols("range", "roundrobin")));
        assertEquals(GroupState.PREPARING_REBALANCE, h.describe(G).state());
        h.assertParked(j1);
        assertEquals(GroupErrors.REBALANCE_IN_PROGRESS, h.heartbeat(G, ids.get(0), null, 1));
        long j0 = h.join(joinRequest(G, ids.get(0), null, (short) 5));
        h.assertParked(j0);
        long j2 = h.join(joinRequest(G, ids.get(2), null, (short) 5));
        for (long j : List.of(j0, j1, j2)) {
            assertEquals(2, h.joinReply(j).generationId());
        }
        assertEquals(3, h.joinReply(j0).members().size());
        assertEquals(0, h.joinReply(j1).members().size(), "followers get no member list");
        assertEquals(GroupState.COMPLETING_REBALANCE, h.describe(G).state());
    }

    @Test
    void shouldDropDynamicMembersThatMissTheRebalanceTimeoutAndKeepStaticOnes() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        long s = h.join(joinRequest(G, "", "static-1", (short) 5));
        h.advance(0);
        String staticId = h.joinReply(s).memberId();
        assertTrue(staticId.startsWith("static-1-"), staticId);
        h.sync(syncRequest(G, staticId, "static-1", 1, Map.of()));
        String dynamic = h.memberIdRequired(G);
        long d = h.join(joinRequest(G, dynamic, null, (short) 5));
        assertEquals(GroupState.PREPARING_REBALANCE, h.describe(G).state());
        // The static member never rejoins; the dynamic one did: the generation completes at the rebalance timeout.
        for (int i = 0; i < 5; i++) {
            h.advance(5_000);
            assertEquals(GroupErrors.REBALANCE_IN_PROGRESS, h.heartbeat(G, staticId, "static-1", 1));
        }
        h.advance(4_999);
        h.assertParked(d);
        h.advance(1);
        GroupApi.JoinResponse r = h.joinReply(d);
        assertEquals(2, r.generationId());
        assertEquals(dynamic, r.leader(), "the leader must be a member that rejoined");
        assertEquals(Set.of(staticId, dynamic), h.describe(G).members().stream().map(GroupApi.DescribedMember::memberId)
            .collect(Collectors.toSet()), "a static member that did not rejoin stays");

        // Now a dynamic member that does not rejoin is dropped.
        GroupHarness h2 = new GroupHarness(GroupHarness.config());
        List<String> ids = stableGroup(h2, 2);
        long j = h2.join(joinRequest(G, ids.get(0), null, (short) 5)); // the leader rejoins: rebalance
        h2.advance(30_000);
        assertEquals(List.of(ids.get(0)), h2.describe(G).members().stream().map(GroupApi.DescribedMember::memberId).toList());
        assertEquals(2, h2.joinReply(j).generationId());
    }

    @Test
    void shouldElectALeaderAmongTheMembersThatRejoined() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        List<String> ids = stableGroup(h, 2);
        long j = h.join(joinRequest(G, ids.get(1), null, (short) 5, 10_000, 30_000, protocols("range", "x")));
        h.advance(30_000);
        GroupApi.JoinResponse r = h.joinReply(j);
        assertEquals(ids.get(1), r.leader());
        assertEquals(1, r.members().size());
    }

    @Test
    void shouldAnswerSyncsOnlyOnceTheLeadersAssignmentIsDurable() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        String a = h.memberIdRequired(G);
        long ja = h.join(joinRequest(G, a, null, (short) 5));
        String b = h.memberIdRequired(G);
        long jb = h.join(joinRequest(G, b, null, (short) 5));
        h.advance(0);
        String leader = h.joinReply(ja).leader();
        String follower = leader.equals(a) ? b : a;
        assertEquals(h.joinReply(ja).generationId(), h.joinReply(jb).generationId());
        long fs = h.sync(syncRequest(G, follower, null, 1, Map.of()));
        h.assertParked(fs);
        h.autoPersist = false;
        long ls = h.sync(syncRequest(G, leader, null, 1, Map.of(leader, new byte[] {1}, follower, new byte[] {2})));
        h.assertParked(ls);
        h.assertParked(fs);
        assertEquals(GroupState.COMPLETING_REBALANCE, h.describe(G).state());
        assertEquals(GroupErrors.NONE, h.heartbeat(G, follower, null, 1), "heartbeats go on while completing");
        h.completeHeldWrite(GroupErrors.NONE);
        assertArrayEquals(new byte[] {1}, h.syncReply(ls).assignment());
        assertArrayEquals(new byte[] {2}, h.syncReply(fs).assignment());
        assertEquals(GroupState.STABLE, h.describe(G).state());
        assertEquals("range", h.syncReply(fs).protocolName());
        // A late sync in Stable gets the current assignment.
        assertArrayEquals(new byte[] {2}, h.syncReply(h.sync(syncRequest(G, follower, null, 1, Map.of()))).assignment());
        assertEquals(GroupErrors.ILLEGAL_GENERATION, h.syncReply(h.sync(syncRequest(G, follower, null, 0, Map.of())))
            .errorCode());
    }

    @Test
    void shouldFailTheSyncsAndRebalanceWhenTheAssignmentCannotBeWritten() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        String a = h.memberIdRequired(G);
        long ja = h.join(joinRequest(G, a, null, (short) 5));
        h.advance(0);
        h.autoPersist = false;
        long s = h.sync(syncRequest(G, a, null, h.joinReply(ja).generationId(), Map.of(a, new byte[] {7})));
        h.completeHeldWrite(GroupErrors.NOT_LEADER_OR_FOLLOWER);
        assertEquals(GroupErrors.NOT_COORDINATOR, h.syncReply(s).errorCode());
        assertEquals(GroupState.PREPARING_REBALANCE, h.describe(G).state());
    }

    @Test
    void shouldRemoveMembersThatSendNoSyncWithinTheRebalanceTimeout() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        String a = h.memberIdRequired(G);
        long ja = h.join(joinRequest(G, a, null, (short) 5));
        String b = h.memberIdRequired(G);
        h.join(joinRequest(G, b, null, (short) 5));
        h.advance(0);
        String leader = h.joinReply(ja).leader();
        String silent = leader.equals(a) ? b : a;
        long ls = h.sync(syncRequest(G, leader, null, 1, Map.of(leader, new byte[] {1})));
        assertEquals(GroupState.STABLE, h.describe(G).state());
        assertEquals(GroupErrors.NONE, h.syncReply(ls).errorCode());
        for (int i = 0; i < 5; i++) { // both heartbeat; one never syncs
            h.advance(5_000);
            assertEquals(GroupErrors.NONE, h.heartbeat(G, leader, null, 1));
            assertEquals(GroupErrors.NONE, h.heartbeat(G, silent, null, 1));
        }
        h.advance(4_999);
        assertEquals(2, h.describe(G).members().size());
        h.advance(1); // the rebalance timeout since the generation completed
        assertEquals(GroupState.PREPARING_REBALANCE, h.describe(G).state());
        assertEquals(List.of(leader), h.describe(G).members().stream().map(GroupApi.DescribedMember::memberId).toList());
        assertEquals(GroupErrors.UNKNOWN_MEMBER_ID, h.heartbeat(G, silent, null, 1));
    }

    // ------------------------------------------------------------------ heartbeats and sessions

    @Test
    void shouldAnswerHeartbeatsByStateMemberAndGeneration() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        assertEquals(GroupErrors.UNKNOWN_MEMBER_ID, h.heartbeat(G, "nobody", null, 0));
        List<String> ids = stableGroup(h, 1);
        String id = ids.get(0);
        assertEquals(GroupErrors.NONE, h.heartbeat(G, id, null, 1));
        assertEquals(GroupErrors.ILLEGAL_GENERATION, h.heartbeat(G, id, null, 0));
        assertEquals(GroupErrors.UNKNOWN_MEMBER_ID, h.heartbeat(G, "other", null, 1));
        assertEquals(GroupErrors.UNKNOWN_MEMBER_ID, h.heartbeat(G, id, "instance", 1), "no such static member");
        assertEquals(GroupErrors.INVALID_GROUP_ID, h.heartbeat("", id, null, 1));
        long bad = h.join(joinRequest(G, id, null, (short) 5, 10_000, 30_000, protocols("roundrobin")));
        assertEquals(GroupErrors.INCONSISTENT_GROUP_PROTOCOL, h.joinReply(bad).errorCode(), "no common protocol");
        h.join(joinRequest(G, id, null, (short) 5, 10_000, 30_000, protocols("roundrobin", "range")));
        // The only member rejoined: the new generation completes at once.
        assertEquals(GroupState.COMPLETING_REBALANCE, h.describe(G).state());
        assertEquals(GroupErrors.ILLEGAL_GENERATION, h.heartbeat(G, id, null, 1));
        assertEquals(GroupErrors.NONE, h.heartbeat(G, id, null, 2));
    }

    @Test
    void shouldExpireASilentMemberAtItsSessionTimeoutAndRebalance() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        List<String> ids = stableGroup(h, 2);
        h.advance(5_000);
        h.heartbeat(G, ids.get(0), null, 1);
        h.advance(4_999);
        assertEquals(2, h.describe(G).members().size());
        h.advance(1); // 10 s since the second member's last contact
        assertEquals(List.of(ids.get(0)), h.describe(G).members().stream().map(GroupApi.DescribedMember::memberId).toList());
        assertEquals(GroupState.PREPARING_REBALANCE, h.describe(G).state());
        assertEquals(GroupErrors.REBALANCE_IN_PROGRESS, h.heartbeat(G, ids.get(0), null, 1));
    }

    @Test
    void shouldNotExpireAMemberWhileItsJoinWaitsInARebalance() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        List<String> ids = stableGroup(h, 2);
        long j = h.join(joinRequest(G, ids.get(0), null, (short) 5)); // leader rejoins; the other heartbeats only
        for (int i = 0; i < 5; i++) {
            h.advance(5_000);
            assertEquals(GroupErrors.REBALANCE_IN_PROGRESS, h.heartbeat(G, ids.get(1), null, 1));
        }
        // 25 s: past the leader's session timeout, but its join waits in the rebalance: it stays.
        assertTrue(h.describe(G).members().stream().anyMatch(m -> m.memberId().equals(ids.get(0))));
        h.assertParked(j);
        h.advance(5_000);
        assertEquals(GroupErrors.NONE, h.joinReply(j).errorCode());
        assertEquals(1, h.describe(G).members().size(), "the member that did not rejoin is dropped");
    }

    @Test
    void shouldDropANewMemberWhoseJoinWaitsLongerThanTheNewMemberJoinTimeout() {
        GroupConfig c = GroupHarness.config();
        GroupHarness h = new GroupHarness(new GroupConfig(c.minSessionTimeoutMs(), c.maxSessionTimeoutMs(), 0, 20_000,
            c.maxSize(), c.offsetsRetentionMs(), c.retentionCheckIntervalMs(), c.offsetMetadataMaxBytes()));
        List<String> ids = stableGroup(h, 1);
        // A rebalance that cannot complete for long: the existing member heartbeats but never rejoins, and the
        // newcomer's rebalance timeout is 100 s.
        long newcomer = h.join(joinRequest(G, h.memberIdRequired(G), null, (short) 5, 60_000, 100_000,
            protocols("range")));
        for (int i = 0; i < 3; i++) {
            h.assertParked(newcomer);
            h.advance(5_000);
            h.heartbeat(G, ids.get(0), null, 1);
        }
        h.advance(5_000);
        assertEquals(GroupErrors.UNKNOWN_MEMBER_ID, h.joinReply(newcomer).errorCode());
        assertEquals(List.of(ids.get(0)), h.describe(G).members().stream().map(GroupApi.DescribedMember::memberId)
            .toList());
    }

    // ------------------------------------------------------------------ static membership

    @Test
    void shouldReplaceARestartedStaticMemberWithoutARebalanceKeepingItsAssignment() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        long first = h.join(joinRequest(G, "", "inst", (short) 9));
        h.advance(0);
        String oldId = h.joinReply(first).memberId();
        h.sync(syncRequest(G, oldId, "inst", 1, Map.of(oldId, new byte[] {42})));
        int logBefore = h.log.size();
        long again = h.join(joinRequest(G, "", "inst", (short) 9));
        GroupApi.JoinResponse r = h.joinReply(again);
        assertEquals(GroupErrors.NONE, r.errorCode());
        assertNotEquals(oldId, r.memberId());
        assertEquals(1, r.generationId(), "no new generation");
        assertTrue(r.skipAssignment(), "a static leader rejoining (v9) skips the assignment");
        assertEquals(1, r.members().size());
        assertEquals(GroupState.STABLE, h.describe(G).state());
        assertEquals(logBefore + 1, h.log.size(), "the new member id is persisted");
        assertArrayEquals(new byte[] {42}, h.syncReply(h.sync(syncRequest(G, r.memberId(), "inst", 1, Map.of())))
            .assignment());
        assertEquals(GroupErrors.FENCED_INSTANCE_ID, h.heartbeat(G, oldId, "inst", 1));
        assertEquals(GroupErrors.NONE, h.heartbeat(G, r.memberId(), "inst", 1));
    }

    @Test
    void shouldFenceTheParkedRequestsOfAReplacedStaticMember() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        long a = h.join(joinRequest(G, "", "a", (short) 5));
        long b = h.join(joinRequest(G, "", "b", (short) 5));
        h.advance(0);
        String aId = h.joinReply(a).memberId();
        String bId = h.joinReply(b).memberId();
        h.sync(syncRequest(G, bId, "b", 1, Map.of()));
        h.sync(syncRequest(G, aId, "a", 1, Map.of()));
        assertEquals(GroupState.STABLE, h.describe(G).state());
        long rejoin = h.join(joinRequest(G, aId, "a", (short) 5, 10_000, 30_000, protocols("range", "x")));
        h.assertParked(rejoin); // b has not rejoined yet
        long replacement = h.join(joinRequest(G, "", "a", (short) 5));
        assertEquals(GroupErrors.FENCED_INSTANCE_ID, h.joinReply(rejoin).errorCode());
        h.assertParked(replacement);
        assertEquals(GroupErrors.FENCED_INSTANCE_ID, h.heartbeat(G, aId, "a", 1));
        h.join(joinRequest(G, bId, "b", (short) 5));
        assertEquals(GroupErrors.NONE, h.joinReply(replacement).errorCode());
        assertEquals(2, h.joinReply(replacement).generationId());
    }

    @Test
    void shouldRebalanceWhenAStaticMemberRejoinsDuringCompletingRebalance() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        long a = h.join(joinRequest(G, "", "a", (short) 5));
        long b = h.join(joinRequest(G, "", "b", (short) 5));
        h.advance(0);
        assertEquals(GroupState.COMPLETING_REBALANCE, h.describe(G).state());
        String bId = h.joinReply(b).memberId();
        long bSync = h.sync(syncRequest(G, bId, "b", 1, Map.of()));
        h.assertParked(bSync);
        long b2 = h.join(joinRequest(G, "", "b", (short) 5));
        assertEquals(GroupErrors.FENCED_INSTANCE_ID, h.syncReply(bSync).errorCode());
        assertEquals(GroupState.PREPARING_REBALANCE, h.describe(G).state());
        h.assertParked(b2);
        h.join(joinRequest(G, h.joinReply(a).memberId(), "a", (short) 5));
        assertEquals(2, h.joinReply(b2).generationId());
    }

    @Test
    void shouldRevertAStaticReplacementThatCannotBeWritten() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        long first = h.join(joinRequest(G, "", "inst", (short) 5));
        h.advance(0);
        String oldId = h.joinReply(first).memberId();
        h.sync(syncRequest(G, oldId, "inst", 1, Map.of(oldId, new byte[] {1})));
        h.autoPersist = false;
        long again = h.join(joinRequest(G, "", "inst", (short) 5));
        h.assertParked(again);
        h.completeHeldWrite(GroupErrors.REQUEST_TIMED_OUT);
        assertEquals(GroupErrors.COORDINATOR_NOT_AVAILABLE, h.joinReply(again).errorCode());
        assertEquals(GroupErrors.NONE, h.heartbeat(G, oldId, "inst", 1), "the old id is the member again");
    }

    // ------------------------------------------------------------------ protocols, limits, leaving

    @Test
    void shouldSelectTheProtocolMostMembersPreferAmongThoseAllSupport() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        long a = h.join(joinRequest(G, "", null, (short) 3, 10_000, 30_000, protocols("sticky", "range")));
        long b = h.join(joinRequest(G, "", null, (short) 3, 10_000, 30_000, protocols("range", "sticky")));
        long c = h.join(joinRequest(G, "", null, (short) 3, 10_000, 30_000, protocols("range", "roundrobin", "sticky")));
        h.advance(0);
        for (long id : List.of(a, b, c)) {
            assertEquals("range", h.joinReply(id).protocolName());
        }
        long d = h.join(joinRequest(G, "", null, (short) 3, 10_000, 30_000, protocols("roundrobin")));
        assertEquals(GroupErrors.INCONSISTENT_GROUP_PROTOCOL, h.joinReply(d).errorCode());
        long e = h.join(new GroupApi.JoinRequest(G, "", null, "c", "h", 10_000, 30_000, "connect", protocols("range"),
            (short) 3));
        assertEquals(GroupErrors.INCONSISTENT_GROUP_PROTOCOL, h.joinReply(e).errorCode());
        long f = h.join(new GroupApi.JoinRequest("other", "", null, "c", "h", 10_000, 30_000, "", protocols("range"),
            (short) 3));
        assertEquals(GroupErrors.INCONSISTENT_GROUP_PROTOCOL, h.joinReply(f).errorCode());
        assertFalse(h.m.groupIds().contains("other"));
    }

    @Test
    void shouldRejectBadGroupIdsAndSessionTimeouts() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        assertEquals(GroupErrors.INVALID_GROUP_ID, h.joinReply(h.join(joinRequest("", "", null, (short) 5))).errorCode());
        assertEquals(GroupErrors.INVALID_SESSION_TIMEOUT, h.joinReply(h.join(joinRequest(G, "", null, (short) 5, 999,
            30_000, protocols("range")))).errorCode());
        assertEquals(GroupErrors.INVALID_SESSION_TIMEOUT, h.joinReply(h.join(joinRequest(G, "", null, (short) 5, 600_001,
            30_000, protocols("range")))).errorCode());
        assertEquals(GroupErrors.UNKNOWN_MEMBER_ID, h.joinReply(h.join(joinRequest(G, "made-up", null, (short) 5)))
            .errorCode());
        assertTrue(h.m.groupIds().isEmpty());
    }

    @Test
    void shouldRefuseNewMembersBeyondTheGroupMaxSize() {
        GroupConfig c = GroupHarness.config();
        GroupHarness h = new GroupHarness(new GroupConfig(c.minSessionTimeoutMs(), c.maxSessionTimeoutMs(), 0,
            c.newMemberJoinTimeoutMs(), 2, c.offsetsRetentionMs(), c.retentionCheckIntervalMs(), c.offsetMetadataMaxBytes()));
        stableGroup(h, 2);
        assertEquals(GroupErrors.GROUP_MAX_SIZE_REACHED, h.joinReply(h.join(joinRequest(G, "", null, (short) 5)))
            .errorCode());
        assertEquals(2, h.describe(G).members().size());
    }

    @Test
    void shouldLeaveByMemberIdOrInstanceIdInOneBatch() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        long s = h.join(joinRequest(G, "", "inst", (short) 5));
        String d1 = h.memberIdRequired(G);
        h.join(joinRequest(G, d1, null, (short) 5));
        String d2 = h.memberIdRequired(G);
        h.join(joinRequest(G, d2, null, (short) 5));
        h.advance(0);
        String staticId = h.joinReply(s).memberId();
        GroupApi.LeaveResponse r = h.leave(G, new GroupApi.LeavingMember("", "inst"), new GroupApi.LeavingMember(d1, null),
            new GroupApi.LeavingMember("ghost", null), new GroupApi.LeavingMember(d2, "inst"));
        assertEquals(GroupErrors.NONE, r.errorCode());
        assertEquals(List.of(GroupErrors.NONE, GroupErrors.NONE, GroupErrors.UNKNOWN_MEMBER_ID,
            GroupErrors.UNKNOWN_MEMBER_ID), r.members().stream().map(GroupApi.LeftMember::errorCode).toList());
        assertEquals(List.of(d2), h.describe(G).members().stream().map(GroupApi.DescribedMember::memberId).toList());
        assertEquals(GroupErrors.UNKNOWN_MEMBER_ID, h.heartbeat(G, staticId, "inst", 1));
        assertEquals(GroupErrors.UNKNOWN_MEMBER_ID, h.leave("nothing", new GroupApi.LeavingMember(d2, null)).errorCode());
        // The last member leaves: the group goes Empty with a new generation, persisted.
        h.leave(G, new GroupApi.LeavingMember(d2, null));
        h.advance(30_000);
        assertEquals(GroupState.EMPTY, h.describe(G).state());
    }

    // ------------------------------------------------------------------ offset commits

    @Test
    void shouldAcceptCommitsOfTheCurrentGenerationOnceDurable() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        List<String> ids = stableGroup(h, 1);
        h.autoPersist = false;
        long c = h.commit(G, 1, ids.get(0), null, offset("t", 0, 10), offset("t", 1, 20));
        h.assertParked(c);
        assertEquals(-1, h.committed(G, "t", 0), "not visible before it is durable");
        h.completeHeldWrite(GroupErrors.NONE);
        assertArrayEquals(new short[] {0, 0}, h.commitReply(c));
        assertEquals(10, h.committed(G, "t", 0));
        assertEquals(20, h.committed(G, "t", 1));
        long failed = h.commit(G, 1, ids.get(0), null, offset("t", 0, 11));
        h.completeHeldWrite(GroupErrors.NOT_LEADER_OR_FOLLOWER);
        assertArrayEquals(new short[] {GroupErrors.NOT_COORDINATOR}, h.commitReply(failed));
        assertEquals(10, h.committed(G, "t", 0));
    }

    @Test
    void shouldRejectCommitsFromStaleGenerationsUnknownMembersAndDuringCompletingRebalance() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        List<String> ids = stableGroup(h, 2);
        assertArrayEquals(new short[] {GroupErrors.ILLEGAL_GENERATION},
            h.commitReply(h.commit(G, 0, ids.get(0), null, offset("t", 0, 1))));
        assertArrayEquals(new short[] {GroupErrors.UNKNOWN_MEMBER_ID},
            h.commitReply(h.commit(G, 1, "stranger", null, offset("t", 0, 1))));
        assertArrayEquals(new short[] {GroupErrors.UNKNOWN_MEMBER_ID},
            h.commitReply(h.commit(G, -1, "", null, offset("t", 0, 1))), "a standalone commit to an active group");
        h.join(joinRequest(G, ids.get(0), null, (short) 5));
        h.join(joinRequest(G, ids.get(1), null, (short) 5));
        assertEquals(GroupState.COMPLETING_REBALANCE, h.describe(G).state());
        assertArrayEquals(new short[] {GroupErrors.REBALANCE_IN_PROGRESS},
            h.commitReply(h.commit(G, 2, ids.get(0), null, offset("t", 0, 1))));
        assertArrayEquals(new short[] {GroupErrors.ILLEGAL_GENERATION},
            h.commitReply(h.commit(G, 1, ids.get(0), null, offset("t", 0, 1))));
        assertEquals(-1, h.committed(G, "t", 0));
    }

    @Test
    void shouldAcceptStandaloneCommitsForAnEmptyOrUnknownGroup() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        assertArrayEquals(new short[] {0}, h.commitReply(h.commit("simple", -1, "", null, offset("t", 0, 5))));
        assertEquals(5, h.committed("simple", "t", 0));
        assertEquals(GroupState.EMPTY, h.describe("simple").state());
        assertEquals("", h.describe("simple").protocolType());
        long unknown = h.commitAt((short) 9, "nogroup", 3, "m", offset("t", 0, 1));
        assertArrayEquals(new short[] {GroupErrors.GROUP_ID_NOT_FOUND}, h.commitReply(unknown));
        long old = h.commitAt((short) 8, "nogroup", 3, "m", offset("t", 0, 1));
        assertArrayEquals(new short[] {GroupErrors.ILLEGAL_GENERATION}, h.commitReply(old));
        String big = "x".repeat(4097);
        long tooBig = h.commit("simple", -1, "", null, new GroupApi.OffsetEntry(new TopicPartition("t", 1), 1, -1, big),
            offset("t", 2, 9));
        assertArrayEquals(new short[] {GroupErrors.OFFSET_METADATA_TOO_LARGE, GroupErrors.NONE}, h.commitReply(tooBig));
    }

    @Test
    void shouldKeepAMembersSessionAliveWithCommits() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        List<String> ids = stableGroup(h, 1);
        for (int i = 0; i < 5; i++) {
            h.advance(6_000);
            assertArrayEquals(new short[] {0}, h.commitReply(h.commit(G, 1, ids.get(0), null, offset("t", 0, i))));
        }
        assertEquals(1, h.describe(G).members().size());
    }

    // ------------------------------------------------------------------ expiry, deletion

    @Test
    void shouldExpireTheOffsetsOfAGroupEmptyForTheRetentionAndThenTheGroup() {
        GroupConfig c = GroupHarness.config();
        GroupHarness h = new GroupHarness(new GroupConfig(c.minSessionTimeoutMs(), c.maxSessionTimeoutMs(), 0,
            c.newMemberJoinTimeoutMs(), c.maxSize(), 100_000, 10_000, c.offsetMetadataMaxBytes()));
        List<String> ids = stableGroup(h, 1);
        h.commit(G, 1, ids.get(0), null, offset("t", 0, 7));
        h.advance(90_000 - 1); // long-lived member: nothing expires while it is there
        h.heartbeat(G, ids.get(0), null, 1);
        assertEquals(7, h.committed(G, "t", 0));
        h.leave(G, new GroupApi.LeavingMember(ids.get(0), null));
        assertEquals(GroupState.EMPTY, h.describe(G).state());
        h.advance(99_000);
        assertEquals(7, h.committed(G, "t", 0), "retention counts from when the group became empty");
        h.advance(11_000);
        assertEquals(-1, h.committed(G, "t", 0));
        assertFalse(h.m.groupIds().contains(G), "an empty group without offsets is deleted");
        h.restart();
        assertFalse(h.m.groupIds().contains(G), "the deletion is durable");
    }

    @Test
    void shouldExpireStandaloneOffsetsByTheirCommitTime() {
        GroupConfig c = GroupHarness.config();
        GroupHarness h = new GroupHarness(new GroupConfig(c.minSessionTimeoutMs(), c.maxSessionTimeoutMs(), 0,
            c.newMemberJoinTimeoutMs(), c.maxSize(), 100_000, 10_000, c.offsetMetadataMaxBytes()));
        h.commit("simple", -1, "", null, offset("t", 0, 1));
        h.advance(50_000);
        h.commit("simple", -1, "", null, offset("t", 1, 2));
        h.advance(55_000);
        assertEquals(-1, h.committed("simple", "t", 0));
        assertEquals(2, h.committed("simple", "t", 1));
        h.advance(50_000);
        assertFalse(h.m.groupIds().contains("simple"));
    }

    @Test
    void shouldExpireOffsetsOfTopicsAStableConsumerGroupNoLongerSubscribes() {
        GroupConfig c = GroupHarness.config();
        GroupHarness h = new GroupHarness(new GroupConfig(c.minSessionTimeoutMs(), 600_000, 0,
            c.newMemberJoinTimeoutMs(), c.maxSize(), 100_000, 10_000, c.offsetMetadataMaxBytes()));
        long j = h.join(new GroupApi.JoinRequest(G, "", null, "c", "h", 500_000, 30_000, "consumer",
            List.of(new GroupApi.Protocol("range", GroupHarness.subscription("t"))), (short) 3));
        h.advance(0);
        String id = h.joinReply(j).memberId();
        h.sync(syncRequest(G, id, null, 1, Map.of()));
        h.commit(G, 1, id, null, offset("t", 0, 1), offset("old", 0, 2));
        h.advance(110_000);
        assertEquals(1, h.committed(G, "t", 0), "a subscribed topic's offset stays");
        assertEquals(-1, h.committed(G, "old", 0));
        // And OffsetDelete refuses the subscribed topic.
        GroupApi.OffsetDeleteResponse d = (GroupApi.OffsetDeleteResponse) h.reply(h.deleteOffsets(G,
            new TopicPartition("t", 0), new TopicPartition("x", 0)));
        assertArrayEquals(new short[] {GroupErrors.GROUP_SUBSCRIBED_TO_TOPIC, GroupErrors.NONE}, d.partitionErrors());
    }

    @Test
    void shouldDeleteOnlyEmptyGroupsWithTheirOffsets() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        List<String> ids = stableGroup(h, 1);
        h.commit(G, 1, ids.get(0), null, offset("t", 0, 3));
        assertEquals(GroupErrors.NON_EMPTY_GROUP, ((GroupApi.DeleteGroupResponse) h.reply(h.deleteGroup(G))).errorCode());
        h.leave(G, new GroupApi.LeavingMember(ids.get(0), null));
        h.autoPersist = false;
        long del = h.deleteGroup(G);
        h.assertParked(del);
        assertFalse(h.describe(G).found(), "Dead while its tombstones are written");
        assertEquals(GroupErrors.COORDINATOR_NOT_AVAILABLE,
            h.joinReply(h.join(joinRequest(G, "", null, (short) 5))).errorCode());
        h.completeHeldWrite(GroupErrors.NONE);
        assertEquals(GroupErrors.NONE, ((GroupApi.DeleteGroupResponse) h.reply(del)).errorCode());
        assertFalse(h.m.groupIds().contains(G));
        assertEquals(GroupErrors.GROUP_ID_NOT_FOUND, ((GroupApi.DeleteGroupResponse) h.reply(h.deleteGroup(G))).errorCode());
        h.autoPersist = true;
        h.restart();
        assertFalse(h.m.groupIds().contains(G));
    }

    @Test
    void shouldReturnToEmptyWhenADeleteCannotBeWritten() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        h.commit("simple", -1, "", null, offset("t", 0, 1));
        h.autoPersist = false;
        long del = h.deleteGroup("simple");
        h.completeHeldWrite(GroupErrors.REQUEST_TIMED_OUT);
        assertEquals(GroupErrors.COORDINATOR_NOT_AVAILABLE, ((GroupApi.DeleteGroupResponse) h.reply(del)).errorCode());
        assertEquals(GroupState.EMPTY, h.describe("simple").state());
        assertEquals(1, h.committed("simple", "t", 0));
    }

    @Test
    void shouldDropTheOffsetsOfADeletedTopic() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        h.commit("simple", -1, "", null, offset("gone", 0, 1), offset("kept", 0, 2));
        h.m.topicDeleted(h.now, "gone", h.out);
        h.drain();
        assertEquals(-1, h.committed("simple", "gone", 0));
        assertEquals(2, h.committed("simple", "kept", 0));
        h.restart();
        assertEquals(-1, h.committed("simple", "gone", 0));
    }

    // ------------------------------------------------------------------ persistence

    @Test
    void shouldRestoreAStableGroupWithItsMembersAndAssignmentsFromTheLog() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        List<String> ids = stableGroup(h, 3);
        h.commit(G, 1, ids.get(0), null, offset("t", 0, 100));
        GroupApi.DescribedGroup before = h.describe(G);
        h.advance(8_000);
        h.restart();
        GroupApi.DescribedGroup after = h.describe(G);
        assertEquals(GroupState.STABLE, after.state());
        assertEquals(before.generationId(), after.generationId());
        assertEquals(before.members().stream().map(GroupApi.DescribedMember::memberId).toList(),
            after.members().stream().map(GroupApi.DescribedMember::memberId).toList());
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(before.members().get(i).assignment(), after.members().get(i).assignment());
        }
        assertEquals(100, h.committed(G, "t", 0));
        // Sessions restart at the load: a member heartbeating after the reload stays, the silent ones go.
        h.advance(9_000);
        assertEquals(GroupErrors.NONE, h.heartbeat(G, ids.get(0), null, 1));
        h.advance(1_000);
        assertEquals(1, h.describe(G).members().size());
    }

    @Test
    void shouldLoadAGroupRecordWithoutMembersAsEmpty() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        // A version 1 group value, as Isthmus wrote before members were persisted.
        byte[] v1 = OffsetsRecords.groupValue(new GroupRecord.GroupValue("consumer", 7, "range", "someone", 5, null));
        assertEquals(1, v1[1]);
        h.log.add(new GroupHarness.LogEntry(0, OffsetsRecords.groupKey(G), v1, -1, null));
        h.log.add(new GroupHarness.LogEntry(1, OffsetsRecords.offsetKey(G, "t", 0), OffsetsRecords.offsetValue(
            new GroupRecord.OffsetValue(11, 2, "m", 5)), -1, null));
        h.restart();
        GroupApi.DescribedGroup d = h.describe(G);
        assertEquals(GroupState.EMPTY, d.state());
        assertEquals(7, d.generationId());
        assertEquals("consumer", d.protocolType());
        assertEquals(11, h.committed(G, "t", 0));
        long j = h.join(joinRequest(G, "", null, (short) 3));
        h.advance(0);
        assertEquals(8, h.joinReply(j).generationId(), "generations go on from the persisted one");
    }

    @Test
    void shouldAnswerEverythingWaitingWithNotCoordinatorOnUnload() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        List<String> ids = stableGroup(h, 2);
        long j = h.join(joinRequest(G, ids.get(0), null, (short) 5));
        h.autoPersist = false;
        long c = h.commit("simple", -1, "", null, offset("t", 0, 1));
        h.m.unload(h.out);
        h.collectAfterUnload();
        assertEquals(GroupErrors.NOT_COORDINATOR, h.joinReply(j).errorCode());
        assertArrayEquals(new short[] {GroupErrors.NOT_COORDINATOR}, h.commitReply(c));
    }

    // ------------------------------------------------------------------ transactional offsets (issue 19's seam)

    @Test
    void shouldHoldTransactionalOffsetsUntilTheirCommitMarker() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        h.commit("g", -1, "", null, offset("t", 0, 5));
        assertArrayEquals(new short[] {0, 0}, h.commitReply(h.commitTxn("g", 77, offset("t", 0, 9), offset("t", 1, 4))));
        assertEquals(5, h.committed("g", "t", 0), "pending offsets are invisible");
        Map<TopicPartition, GroupApi.FetchedOffset> stable = h.m.fetchOffsets("g", List.of(new TopicPartition("t", 0)), true);
        assertEquals(GroupErrors.UNSTABLE_OFFSET_COMMIT, stable.get(new TopicPartition("t", 0)).errorCode());
        assertEquals(Set.of(77L), h.m.openTransactions());
        h.restart(); // pending offsets survive a reload as pending
        assertEquals(5, h.committed("g", "t", 0));
        assertEquals(Set.of(77L), h.m.openTransactions());
        h.marker(77, true);
        assertEquals(9, h.committed("g", "t", 0));
        assertEquals(4, h.committed("g", "t", 1));
        assertTrue(h.m.openTransactions().isEmpty());
        h.restart();
        assertEquals(9, h.committed("g", "t", 0));
    }

    @Test
    void shouldDropTransactionalOffsetsOnAbortAndPreferALaterPlainCommit() {
        GroupHarness h = new GroupHarness(GroupHarness.config());
        h.commitTxn("g", 1, offset("t", 0, 9));
        h.marker(1, false);
        assertEquals(-1, h.committed("g", "t", 0));
        h.commitTxn("g", 2, offset("t", 0, 9));
        h.commit("g", -1, "", null, offset("t", 0, 12)); // written after the transactional one
        h.marker(2, true);
        assertEquals(12, h.committed("g", "t", 0), "the later plain commit wins (record offsets compared)");
        h.restart();
        assertEquals(12, h.committed("g", "t", 0));
    }

    @Test
    void shouldNotExpireOffsetsWithATransactionOpen() {
        GroupConfig c = GroupHarness.config();
        GroupHarness h = new GroupHarness(new GroupConfig(c.minSessionTimeoutMs(), c.maxSessionTimeoutMs(), 0,
            c.newMemberJoinTimeoutMs(), c.maxSize(), 100_000, 10_000, c.offsetMetadataMaxBytes()));
        h.commit("g", -1, "", null, offset("t", 0, 1));
        h.commitTxn("g", 5, offset("t", 0, 2));
        h.advance(200_000);
        assertEquals(1, h.committed("g", "t", 0));
        h.marker(5, true);
        assertEquals(2, h.committed("g", "t", 0));
        h.advance(200_000);
        assertFalse(h.m.groupIds().contains("g"));
    }

    @Test
    void shouldEncodeEveryRecordSoThatItDecodesToItself() {
        List<GroupRecord> records = List.of(
            new GroupRecord.OffsetCommit("g", new TopicPartition("t", 3), new GroupRecord.OffsetValue(9, 2, "m", 77)),
            new GroupRecord.OffsetCommit("g", new TopicPartition("t", 3), null),
            new GroupRecord.GroupMetadata("g", null),
            new GroupRecord.GroupMetadata("g", new GroupRecord.GroupValue("consumer", 4, "range", "a", 99, List.of(
                new GroupRecord.MemberValue("a", null, "c", "/h", 300, 10, new byte[] {1, 2}, new byte[] {3}),
                new GroupRecord.MemberValue("b", "inst", "c", "/h", 300, 10, new byte[0], new byte[] {4, 5})))));
        for (GroupRecord r : records) {
            byte[] v = OffsetsRecords.value(r);
            GroupRecord back = OffsetsRecords.decode(java.nio.ByteBuffer.wrap(OffsetsRecords.key(r)),
                v == null ? null : java.nio.ByteBuffer.wrap(v));
            assertEquals(describeRecord(r), describeRecord(back));
        }
    }

    private static String describeRecord(GroupRecord r) {
        if (r instanceof GroupRecord.GroupMetadata m && m.value() != null && m.value().members() != null) {
            return m.groupId() + m.value().generation() + m.value().members().stream().map(x -> x.memberId()
                + x.groupInstanceId() + Arrays.toString(x.subscription()) + Arrays.toString(x.assignment()))
                .toList();
        }
        return r.toString();
    }
}
