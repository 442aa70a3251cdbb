package dev.isthmus.gateway.group;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Model-based test of {@link GroupStateMachine}: seeded random schedules of consumers joining, syncing,
 * heartbeating, leaving, committing (sometimes with stale generations or standalone), crashing and restarting
 * (static members come back with a new member id), of admins deleting groups and offsets, of the clock stepping,
 * of writes completing late or failing, and of coordinator restarts that replay the log into a new machine. After
 * every step it checks the machine against a reference model and the protocol's invariants:
 *
 * <ul>
 *   <li>every request is answered exactly once, and the machine's own invariants hold ({@link GroupHarness});</li>
 *   <li>one generation at a time: within one coordinator incarnation generations only grow and all members of a
 *       generation are told the same protocol; the leader's member list names the member it answers;</li>
 *   <li>a member of a generation gets its own assignment of that generation (or its static predecessor's);</li>
 *   <li>no commit from a stale generation or a non-member is accepted; a standalone commit only for an empty group;
 *       an accepted commit is in the log;</li>
 *   <li>the offsets in memory are exactly those the log replays to (the reference model);</li>
 *   <li>a member not waiting in a rebalance is gone once its session timeout has passed since its last contact;</li>
 *   <li>offsets are removed only by a delete asked for or by an expiry that the retention rules allow;</li>
 *   <li>after a restart each group is what its last persisted metadata says (generation, Stable or Empty).</li>
 * </ul>
 *
 * Prints its seed; {@code -Disthmus.seed=N -Disthmus.group.seeds=1} replays one schedule, {@code
 * -Disthmus.group.seeds} and {@code -Disthmus.group.steps} run longer soaks.
 */
class GroupStateMachineModelTest {
    private static final List<String> GROUPS = List.of("g0", "g1");
    private static final String SIMPLE = "simple";
    private static final long RETENTION_MS = 20_000;
    private static final long CHECK_INTERVAL_MS = 3_000;
    private static final boolean TRACE = Boolean.getBoolean("isthmus.group.trace");

    @Test
    void shouldKeepTheProtocolInvariantsUnderRandomSchedules() {
        long base = Long.getLong("isthmus.seed", System.nanoTime());
        int seeds = Integer.getInteger("isthmus.group.seeds", 8);
        int steps = Integer.getInteger("isthmus.group.steps", 2_500);
        System.out.println("GroupStateMachineModelTest seed: " + base + " (" + seeds + " schedules of " + steps
            + " steps; replay one with -Disthmus.seed=N -Disthmus.group.seeds=1)");
        long[] totals = new long[4];
        for (int i = 0; i < seeds; i++) {
            long seed = base + i;
            Run run = new Run(seed);
            try {
                for (int s = 0; s < steps; s++) {
                    run.step = s;
                    run.step();
                }
            } catch (Throwable t) {
                throw new AssertionError("schedule with seed " + seed + " failed at step " + run.step + " ("
                    + run.lastAction + "); replay with -Disthmus.seed=" + seed + " -Disthmus.group.seeds=1", t);
            }
            totals[0] += run.generations;
            totals[1] += run.acceptedCommits;
            totals[2] += run.expiredTombstones;
            totals[3] += run.h.incarnation;
        }
        System.out.println("GroupStateMachineModelTest: " + totals[0] + " generations, " + totals[1]
            + " accepted commits, " + totals[2] + " expired offsets, " + totals[3] + " restarts");
        assertTrue(totals[0] > seeds, "schedules completed rebalances");
        assertTrue(totals[1] > seeds, "schedules accepted commits");
    }

    /** A consumer process: its configuration and what it believes. */
    private static final class Client {
        final int index;
        final String group;
        final String instanceId;
        final int sessionMs;
        final int rebalanceMs;
        final List<GroupApi.Protocol> protocols;
        final short version;
        String memberId = "";
        int generation = -1;
        boolean leader;
        List<GroupApi.JoinedMember> members = List.of();
        boolean crashed;

        Client(int index, String group, String instanceId, int sessionMs, int rebalanceMs,
               List<GroupApi.Protocol> protocols, short version) {
            this.index = index;
            this.group = group;
            this.instanceId = instanceId;
            this.sessionMs = sessionMs;
            this.rebalanceMs = rebalanceMs;
            this.protocols = protocols;
            this.version = version;
        }
    }

    private enum Kind { JOIN, SYNC, COMMIT, DELETE_GROUP, DELETE_OFFSETS }

    /** An issued request the model follows until its reply. */
    private record Req(Kind kind, Client client, String group, String memberId, int generation,
                       GroupApi.DescribedGroup before, List<GroupApi.OffsetEntry> entries, int logSizeAtIssue,
                       List<TopicPartition> partitions) {
    }

    private static final class Run {
        final Random rnd;
        final GroupHarness h;
        final List<Client> clients = new ArrayList<>();
        final Map<Long, Req> reqs = new HashMap<>();
        final Set<Long> outstanding = new HashSet<>();
        int repliesSeen;
        final Map<String, Long> lastActivity = new HashMap<>();
        final Map<String, Integer> sessionOf = new HashMap<>();
        /** "incarnation/group/generation" -> protocol told. */
        final Map<String, String> protocolOfGeneration = new HashMap<>();
        final Map<String, Integer> maxGeneration = new HashMap<>();
        final Map<String, Long> emptySince = new HashMap<>();
        final Map<String, String> protocolTypeOf = new HashMap<>();
        /** Bumped each time a group is seen gone: a group created again starts its generations over. */
        final Map<String, Integer> groupEpoch = new HashMap<>();
        final Map<String, Integer> deletingGroups = new HashMap<>();
        final Map<String, Integer> deletingOffsets = new HashMap<>();
        final Map<String, Map<TopicPartition, GroupRecord.OffsetValue>> fold = new HashMap<>();
        int folded;
        int step;
        String lastAction = "";
        long nextOffset = 1;
        long generations;
        long acceptedCommits;
        long expiredTombstones;

        Run(long seed) {
            rnd = new Random(seed);
            h = new GroupHarness(new GroupConfig(500, 60_000, rnd.nextBoolean() ? 0 : 1_000, 20_000,
                rnd.nextInt(4) == 0 ? 3 : Integer.MAX_VALUE, RETENTION_MS, CHECK_INTERVAL_MS, 4096));
            h.autoPersist = false;
            h.onEmit = this::checkEmitted;
            int n = 5 + rnd.nextInt(4);
            for (int i = 0; i < n; i++) {
                String group = GROUPS.get(i % GROUPS.size());
                String instance = rnd.nextInt(3) == 0 ? "inst-" + i : null;
                List<GroupApi.Protocol> protocols = switch (rnd.nextInt(3)) {
                    case 0 -> protocols("range");
                    case 1 -> protocols("range", "roundrobin");
                    default -> protocols("roundrobin", "range");
                };
                short version = (short) new int[] {3, 5, 9}[rnd.nextInt(3)];
                clients.add(new Client(i, group, instance, 1_000 + rnd.nextInt(5_000), 2_000 + rnd.nextInt(6_000),
                    protocols, version));
            }
        }

        private static List<GroupApi.Protocol> protocols(String... names) {
            List<GroupApi.Protocol> out = new ArrayList<>();
            for (String n : names) {
                out.add(new GroupApi.Protocol(n, GroupHarness.subscription("t")));
            }
            return out;
        }

        // ------------------------------------------------------------------ actions

        void step() {
            int r = rnd.nextInt(100);
            Client c = clients.get(rnd.nextInt(clients.size()));
            if (r < 20) {
                join(c);
            } else if (r < 34) {
                sync(c);
            } else if (r < 48) {
                heartbeat(c);
            } else if (r < 51) {
                leave(c);
            } else if (r < 61) {
                commit(c);
            } else if (r < 63) {
                lastAction = "crash client " + c.index;
                c.crashed = true;
            } else if (r < 64) {
                deleteGroup(rnd.nextInt(3) == 0 ? SIMPLE : GROUPS.get(rnd.nextInt(GROUPS.size())));
            } else if (r < 66) {
                deleteOffsets(rnd.nextInt(3) == 0 ? SIMPLE : GROUPS.get(rnd.nextInt(GROUPS.size())));
            } else if (r < 81) {
                long ms = rnd.nextInt(10) == 0 ? rnd.nextInt(25_000) : rnd.nextInt(2_500);
                lastAction = "advance " + ms + " ms";
                h.advance(ms);
            } else if (r < 96) {
                completeWrites();
            } else if (r < 97) {
                restart();
            } else {
                standaloneCommit();
            }
            h.advance(0); // timers due now fire, as the shell's zero-delay timers would
            if (TRACE) {
                System.out.println("step " + step + " at " + h.now + ": " + lastAction + " -> " + GROUPS.stream()
                    .map(g -> g + "=" + h.m.group(g) + (h.m.group(g) == null ? "" : " offsets "
                        + h.m.group(g).offsets.keySet())).toList() + " writes held " + h.heldWrites.size());
            }
            processReplies();
            checkInvariants();
        }

        void join(Client c) {
            if (c.crashed) {
                c.crashed = false; // the process restarts: a new member (static: same instance, new member id)
                c.memberId = "";
                c.generation = -1;
            }
            List<GroupApi.Protocol> protocols = rnd.nextInt(25) == 0 ? protocols("sticky") : c.protocols;
            String memberId = rnd.nextInt(50) == 0 ? "made-up" : c.memberId;
            lastAction = "join client " + c.index + " as '" + memberId + "'";
            GroupApi.JoinRequest req = new GroupApi.JoinRequest(c.group, memberId, c.instanceId, "client-" + c.index,
                "/10.0.0." + c.index, c.sessionMs, c.rebalanceMs, "consumer", protocols, c.version);
            activity(memberId);
            track(h.join(req), new Req(Kind.JOIN, c, c.group, memberId, -1, null, null, h.log.size(), null));
        }

        void sync(Client c) {
            if (c.crashed || c.memberId.isEmpty() || c.generation < 0) {
                return;
            }
            Map<String, byte[]> assignments = new LinkedHashMap<>();
            if (c.leader) {
                for (GroupApi.JoinedMember m : c.members) {
                    assignments.put(m.memberId(), assignment(c.generation, m.memberId(), m.groupInstanceId()));
                }
            }
            int generation = rnd.nextInt(30) == 0 ? c.generation - 1 : c.generation;
            lastAction = "sync client " + c.index + " " + c.memberId + " generation " + generation
                + (c.leader ? " (leader)" : "");
            activity(c.memberId);
            track(h.sync(GroupHarness.syncRequest(c.group, c.memberId, c.instanceId, generation, assignments)),
                new Req(Kind.SYNC, c, c.group, c.memberId, generation, null, null, h.log.size(), null));
        }

        void heartbeat(Client c) {
            if (c.crashed || c.memberId.isEmpty()) {
                return;
            }
            lastAction = "heartbeat client " + c.index + " " + c.memberId;
            activity(c.memberId);
            short code = h.heartbeat(c.group, c.memberId, c.instanceId, c.generation);
            activity(c.memberId);
            switch (code) {
                case GroupErrors.UNKNOWN_MEMBER_ID -> forget(c);
                case GroupErrors.FENCED_INSTANCE_ID -> c.crashed = true;
                case GroupErrors.ILLEGAL_GENERATION, GroupErrors.REBALANCE_IN_PROGRESS -> c.generation = -1;
                default -> {
                }
            }
        }

        void leave(Client c) {
            if (c.crashed || (c.memberId.isEmpty() && c.instanceId == null)) {
                return;
            }
            boolean byInstance = c.instanceId != null && rnd.nextBoolean();
            lastAction = "leave client " + c.index + (byInstance ? " by instance" : " " + c.memberId);
            activity(c.memberId);
            GroupApi.LeaveResponse r = h.leave(c.group, byInstance ? new GroupApi.LeavingMember("", c.instanceId)
                : new GroupApi.LeavingMember(c.memberId, c.instanceId));
            forget(c);
        }

        void commit(Client c) {
            if (c.crashed) {
                return;
            }
            int generation = rnd.nextInt(8) == 0 ? c.generation - 1 : c.generation;
            List<GroupApi.OffsetEntry> entries = entries();
            lastAction = "commit client " + c.index + " " + c.memberId + " generation " + generation;
            activity(c.memberId);
            GroupApi.DescribedGroup before = h.describe(c.group);
            int logSize = h.log.size();
            track(h.commit(c.group, generation, c.memberId, c.instanceId, entries.toArray(GroupApi.OffsetEntry[]::new)),
                new Req(Kind.COMMIT, c, c.group, c.memberId, generation, before, entries, logSize, null));
        }

        void standaloneCommit() {
            String group = rnd.nextBoolean() ? SIMPLE : GROUPS.get(rnd.nextInt(GROUPS.size()));
            List<GroupApi.OffsetEntry> entries = entries();
            lastAction = "standalone commit to " + group;
            GroupApi.DescribedGroup before = h.describe(group);
            int logSize = h.log.size();
            track(h.commit(group, -1, "", null, entries.toArray(GroupApi.OffsetEntry[]::new)),
                new Req(Kind.COMMIT, null, group, "", -1, before, entries, logSize, null));
        }

        List<GroupApi.OffsetEntry> entries() {
            List<GroupApi.OffsetEntry> entries = new ArrayList<>();
            Set<TopicPartition> seen = new HashSet<>();
            for (int i = 1 + rnd.nextInt(3); i > 0; i--) {
                TopicPartition tp = new TopicPartition(rnd.nextBoolean() ? "t" : "u", rnd.nextInt(3));
                if (seen.add(tp)) {
                    entries.add(new GroupApi.OffsetEntry(tp, nextOffset++, 0, "m"));
                }
            }
            return entries;
        }

        void deleteGroup(String group) {
            lastAction = "delete group " + group;
            deletingGroups.merge(group, 1, Integer::sum);
            track(h.deleteGroup(group), new Req(Kind.DELETE_GROUP, null, group, "", -1, null, null, h.log.size(), null));
        }

        void deleteOffsets(String group) {
            List<TopicPartition> tps = List.of(new TopicPartition(rnd.nextBoolean() ? "t" : "u", rnd.nextInt(3)));
            lastAction = "delete offsets " + tps + " of " + group;
            for (TopicPartition tp : tps) {
                deletingOffsets.merge(group + "/" + tp, 1, Integer::sum);
            }
            track(h.deleteOffsets(group, tps.toArray(TopicPartition[]::new)),
                new Req(Kind.DELETE_OFFSETS, null, group, "", -1, null, null, h.log.size(), tps));
        }

        void completeWrites() {
            lastAction = "complete writes";
            for (int i = 1 + rnd.nextInt(3); i > 0 && !h.heldWrites.isEmpty(); i--) {
                if (rnd.nextInt(30) == 0) {
                    allActivity(); // a failed write may re-arm members' timers (assignment errors, reverts)
                    h.completeHeldWrite(rnd.nextBoolean() ? GroupErrors.REQUEST_TIMED_OUT
                        : GroupErrors.NOT_LEADER_OR_FOLLOWER);
                    allActivity();
                } else {
                    h.completeHeldWrite(GroupErrors.NONE);
                }
            }
        }

        void restart() {
            lastAction = "restart the coordinator";
            h.restart();
            processReplies(); // the unload answered NOT_COORDINATOR to everything waiting
            allActivity(); // loading re-arms every member's session timer
            checkRestoredFromLog();
        }

        // ------------------------------------------------------------------ replies

        private void track(long id, Req r) {
            reqs.put(id, r);
            outstanding.add(id);
        }

        void processReplies() {
            for (; repliesSeen < h.replyOrder.size(); repliesSeen++) {
                long id = h.replyOrder.get(repliesSeen);
                Map.Entry<Long, Object> e = Map.entry(id, h.replies.get(id));
                outstanding.remove(e.getKey());
                Req q = reqs.remove(e.getKey());
                if (q == null) {
                    continue; // heartbeats and leaves are handled where they are sent
                }
                switch (q.kind) {
                    case JOIN -> joined(q, (GroupApi.JoinResponse) e.getValue());
                    case SYNC -> synced(q, (GroupApi.SyncResponse) e.getValue());
                    case COMMIT -> committed(q, ((GroupApi.OffsetCommitResponse) e.getValue()).errorCodes());
                    case DELETE_GROUP -> {
                        deletingGroups.merge(q.group, -1, (a, b) -> a + b == 0 ? null : a + b);
                        if (((GroupApi.DeleteGroupResponse) e.getValue()).errorCode() == GroupErrors.NONE) {
                            assertFalse(h.describe(q.group).found(), "group " + q.group + " deleted but still there");
                        }
                    }
                    case DELETE_OFFSETS -> {
                        for (TopicPartition tp : q.partitions) {
                            deletingOffsets.merge(q.group + "/" + tp, -1, (a, b) -> a + b == 0 ? null : a + b);
                        }
                    }
                }
            }
        }

        void joined(Req q, GroupApi.JoinResponse r) {
            Client c = q.client;
            activity(q.memberId);
            activity(r.memberId());
            if (r.errorCode() == GroupErrors.NONE) {
                sessionOf.put(r.memberId(), c.sessionMs);
                String key = h.incarnation + "/" + groupEpoch.getOrDefault(q.group, 0) + "/" + q.group + "/"
                    + r.generationId();
                String told = protocolOfGeneration.putIfAbsent(key, r.protocolName());
                if (told == null) {
                    generations++;
                    // Completing a join re-arms every remaining member's timer (static ones that did not rejoin).
                    for (GroupApi.DescribedMember m : h.describe(q.group).members()) {
                        activity(m.memberId());
                    }
                } else {
                    assertEquals(told, r.protocolName(), "two protocols told for generation " + key);
                }
                String maxKey = h.incarnation + "/" + groupEpoch.getOrDefault(q.group, 0) + "/" + q.group;
                Integer max = maxGeneration.get(maxKey);
                assertTrue(max == null || r.generationId() >= max, "generation " + r.generationId() + " of " + q.group
                    + " after " + max);
                maxGeneration.put(maxKey, r.generationId());
                if (!r.members().isEmpty()) {
                    Set<String> ids = new HashSet<>();
                    for (GroupApi.JoinedMember m : r.members()) {
                        assertTrue(ids.add(m.memberId()), "member " + m.memberId() + " listed twice");
                    }
                    assertTrue(ids.contains(r.memberId()), "the leader's list misses " + r.memberId());
                }
                if (!c.crashed) {
                    c.memberId = r.memberId();
                    c.generation = r.generationId();
                    c.leader = r.memberId().equals(r.leader()) && !r.skipAssignment();
                    c.members = r.members();
                }
                return;
            }
            if (c.crashed) {
                return;
            }
            switch (r.errorCode()) {
                case GroupErrors.MEMBER_ID_REQUIRED -> {
                    c.memberId = r.memberId();
                    c.generation = -1;
                    sessionOf.put(r.memberId(), c.sessionMs);
                }
                case GroupErrors.UNKNOWN_MEMBER_ID -> forget(c);
                case GroupErrors.FENCED_INSTANCE_ID -> c.crashed = true;
                default -> c.generation = -1;
            }
        }

        void synced(Req q, GroupApi.SyncResponse r) {
            Client c = q.client;
            activity(q.memberId);
            if (r.errorCode() == GroupErrors.NONE) {
                String[] a = new String(r.assignment(), StandardCharsets.UTF_8).split("\\|", -1);
                assertEquals(3, a.length, "member " + q.memberId + " of " + q.group + " got no assignment of generation "
                    + q.generation);
                assertEquals(Integer.toString(q.generation), a[0], "assignment of another generation");
                assertTrue(a[1].equals(q.memberId) || (c.instanceId != null && a[2].equals(c.instanceId)),
                    "member " + q.memberId + " got the assignment of " + a[1]);
                return;
            }
            if (c.crashed) {
                return;
            }
            switch (r.errorCode()) {
                case GroupErrors.UNKNOWN_MEMBER_ID -> forget(c);
                case GroupErrors.FENCED_INSTANCE_ID -> c.crashed = true;
                default -> c.generation = -1;
            }
        }

        void committed(Req q, short[] codes) {
            activity(q.memberId);
            GroupApi.DescribedGroup before = q.before;
            for (int i = 0; i < codes.length; i++) {
                if (codes[i] != GroupErrors.NONE) {
                    continue;
                }
                acceptedCommits++;
                if (q.generation >= 0) {
                    assertTrue(before.found(), "commit accepted for an unknown group " + q.group);
                    assertEquals(before.generationId(), q.generation, "commit of a stale generation accepted");
                    assertTrue(before.members().stream().anyMatch(m -> m.memberId().equals(q.memberId)),
                        "commit of non-member " + q.memberId + " accepted");
                    assertTrue(before.state() == GroupState.STABLE || before.state() == GroupState.PREPARING_REBALANCE,
                        "commit accepted in state " + before.state());
                } else {
                    assertTrue(!before.found() || before.state() == GroupState.EMPTY,
                        "standalone commit accepted for a group in state " + before.state());
                }
                GroupApi.OffsetEntry e = q.entries.get(i);
                boolean logged = false;
                for (int k = q.logSizeAtIssue; k < h.log.size() && !logged; k++) {
                    GroupHarness.LogEntry le = h.log.get(k);
                    if (le.key() != null && le.value() != null && OffsetsRecords.decode(ByteBuffer.wrap(le.key()),
                        ByteBuffer.wrap(le.value())) instanceof GroupRecord.OffsetCommit oc
                        && oc.groupId().equals(q.group) && oc.partition().equals(e.partition())
                        && oc.value().offset() == e.offset()) {
                        logged = true;
                    }
                }
                assertTrue(logged, "accepted commit " + e + " of " + q.group + " is not in the log");
            }
        }

        private void forget(Client c) {
            c.memberId = "";
            c.generation = -1;
            c.leader = false;
        }

        private void activity(String memberId) {
            if (memberId != null && !memberId.isEmpty()) {
                lastActivity.put(memberId, h.now);
            }
        }

        private void allActivity() {
            for (String g : GROUPS) {
                for (GroupApi.DescribedMember m : h.describe(g).members()) {
                    activity(m.memberId());
                }
            }
        }

        // ------------------------------------------------------------------ invariants

        void checkInvariants() {
            // The reference model: what the log replays to.
            Map<String, Map<TopicPartition, GroupRecord.OffsetValue>> offsets = foldOffsets(h.log.size());
            for (String g : allGroups()) {
                GroupApi.DescribedGroup d = h.describe(g);
                if (!d.found()) {
                    groupEpoch.merge(g, 1, Integer::sum);
                    continue; // gone, or dead while its tombstones are written
                }
                Map<TopicPartition, Long> expected = new HashMap<>();
                offsets.getOrDefault(g, Map.of()).forEach((tp, v) -> expected.put(tp, v.offset()));
                Map<TopicPartition, Long> actual = new HashMap<>();
                h.m.fetchOffsets(g, null, false).forEach((tp, f) -> actual.put(tp, f.offset()));
                assertEquals(expected, actual, "offsets of " + g + " differ from the log's");
            }
            // Sessions: a member not waiting in a rebalance is gone once its session passed since its last contact.
            Set<String> parked = new HashSet<>();
            for (long id : outstanding) {
                Req q = reqs.get(id);
                if (q != null && (q.kind == Kind.JOIN || q.kind == Kind.SYNC)) {
                    parked.add(q.memberId);
                }
            }
            for (String g : allGroups()) {
                GroupApi.DescribedGroup d = h.describe(g);
                if (d.found() && d.state() == GroupState.EMPTY) {
                    emptySince.putIfAbsent(g, h.now);
                } else if (d.found()) {
                    emptySince.remove(g);
                }
                if (d.found()) {
                    protocolTypeOf.put(g, d.protocolType());
                }
                for (GroupApi.DescribedMember m : d.members()) {
                    Long last = lastActivity.get(m.memberId());
                    Integer session = sessionOf.get(m.memberId());
                    if (last == null || session == null || parked.contains(m.memberId())) {
                        continue;
                    }
                    assertTrue(h.now < last + session, "member " + m.memberId() + " of " + g + " still there at "
                        + h.now + ", its session of " + session + " ms passed since its last contact at " + last);
                }
            }
        }

        /** After a restart every group is what its last persisted metadata and offsets say. */
        void checkRestoredFromLog() {
            Map<String, GroupRecord.GroupValue> metadata = new HashMap<>();
            Set<String> known = new HashSet<>();
            for (GroupHarness.LogEntry e : h.log) {
                if (e.key() == null) {
                    continue;
                }
                GroupRecord r = OffsetsRecords.decode(ByteBuffer.wrap(e.key()), e.value() == null ? null
                    : ByteBuffer.wrap(e.value()));
                if (r instanceof GroupRecord.GroupMetadata m) {
                    if (m.value() == null) {
                        metadata.remove(m.groupId());
                    } else {
                        metadata.put(m.groupId(), m.value());
                    }
                }
            }
            Map<String, Map<TopicPartition, GroupRecord.OffsetValue>> offsets = foldOffsets(h.log.size());
            known.addAll(metadata.keySet());
            offsets.forEach((g, o) -> {
                if (!o.isEmpty()) {
                    known.add(g);
                }
            });
            for (String g : allGroups()) {
                GroupApi.DescribedGroup d = h.describe(g);
                GroupRecord.GroupValue v = metadata.get(g);
                if (!known.contains(g)) {
                    assertFalse(d.found(), "group " + g + " back from nothing after a restart");
                    continue;
                }
                assertTrue(d.found(), "group " + g + " lost by a restart");
                if (v == null) {
                    assertEquals(GroupState.EMPTY, d.state());
                    assertEquals("", d.protocolType());
                    continue;
                }
                assertEquals(v.generation(), d.generationId(), "generation of " + g + " after a restart");
                assertEquals(v.members().isEmpty() ? GroupState.EMPTY : GroupState.STABLE, d.state());
                assertEquals(v.members().size(), d.members().size());
                if (v.members().isEmpty()) {
                    emptySince.put(g, v.stateTimestampMs());
                } else {
                    emptySince.remove(g);
                }
            }
        }

        /** Checks, when the machine decides them, that offset tombstones nobody asked for are allowed expiries. */
        void checkEmitted(Outbox.Write w) {
            Map<String, Map<TopicPartition, GroupRecord.OffsetValue>> offsets = foldOffsets(h.log.size());
            Set<String> droppedGroups = new HashSet<>();
            for (GroupRecord r : w.records()) {
                if (r instanceof GroupRecord.OffsetCommit oc && oc.value() == null) {
                    if (deletingGroups.containsKey(oc.groupId())
                        || deletingOffsets.containsKey(oc.groupId() + "/" + oc.partition())) {
                        continue;
                    }
                    GroupRecord.OffsetValue v = offsets.getOrDefault(oc.groupId(), Map.of()).get(oc.partition());
                    if (v == null) {
                        continue; // a tombstone for an offset still in flight or already gone
                    }
                    expiredTombstones++;
                    // Kafka's rules (KIP-211): a group without a protocol ages each offset from its commit; an Empty
                    // group ages them from when it became Empty; a Stable consumer group ages, from their commits,
                    // only the offsets of topics it does not subscribe to; nothing else expires.
                    GroupApi.DescribedGroup d = h.describe(oc.groupId());
                    boolean byCommit = h.now - v.commitTimestampMs() >= RETENTION_MS;
                    Long empty = emptySince.get(oc.groupId());
                    String why = "offset " + oc.partition() + " of " + oc.groupId() + " expired at " + h.now
                        + ": committed at " + v.commitTimestampMs() + ", group " + (d.found() ? d.state() : "dead")
                        + " since " + empty;
                    String type = d.found() ? d.protocolType() : protocolTypeOf.getOrDefault(oc.groupId(), "");
                    if (type.isEmpty()) {
                        assertTrue(byCommit, why);
                    } else if (!d.found() || d.state() == GroupState.EMPTY) {
                        assertTrue(empty != null && h.now - empty >= RETENTION_MS, why);
                    } else {
                        assertEquals(GroupState.STABLE, d.state(), why);
                        assertTrue(byCommit, why);
                        assertEquals("u", oc.partition().topic(), "a subscribed topic's offset expired");
                    }
                } else if (r instanceof GroupRecord.GroupMetadata m && m.value() == null
                    && !deletingGroups.containsKey(m.groupId())) {
                    droppedGroups.add(m.groupId());
                }
            }
            for (String g : droppedGroups) {
                Set<TopicPartition> left = new HashSet<>(offsets.getOrDefault(g, Map.of()).keySet());
                for (GroupRecord r : w.records()) {
                    if (r instanceof GroupRecord.OffsetCommit oc && oc.groupId().equals(g)) {
                        left.remove(oc.partition());
                    }
                }
                assertTrue(left.isEmpty(), "group " + g + " expired with offsets " + left);
            }
        }

        /** The offsets the log replays to, folded incrementally as the log grows (it only grows). */
        Map<String, Map<TopicPartition, GroupRecord.OffsetValue>> foldOffsets(int upTo) {
            Map<String, Map<TopicPartition, GroupRecord.OffsetValue>> out = fold;
            for (int i = folded; i < upTo; i++) {
                GroupHarness.LogEntry e = h.log.get(i);
                if (e.key() == null) {
                    continue;
                }
                GroupRecord r = OffsetsRecords.decode(ByteBuffer.wrap(e.key()), e.value() == null ? null
                    : ByteBuffer.wrap(e.value()));
                if (r instanceof GroupRecord.OffsetCommit oc) {
                    if (oc.value() == null) {
                        Map<TopicPartition, GroupRecord.OffsetValue> g = out.get(oc.groupId());
                        if (g != null) {
                            g.remove(oc.partition());
                        }
                    } else {
                        out.computeIfAbsent(oc.groupId(), k -> new HashMap<>()).put(oc.partition(), oc.value());
                    }
                }
            }
            folded = Math.max(folded, upTo);
            return out;
        }

        private static List<String> allGroups() {
            List<String> all = new ArrayList<>(GROUPS);
            all.add(SIMPLE);
            return all;
        }

        private static byte[] assignment(int generation, String memberId, String instanceId) {
            return (generation + "|" + memberId + "|" + (instanceId == null ? "" : instanceId))
                .getBytes(StandardCharsets.UTF_8);
        }
    }

    @SuppressWarnings("unused")
    private static void unreachable() {
        fail();
    }
}
