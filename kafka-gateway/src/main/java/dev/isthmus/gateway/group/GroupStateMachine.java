package dev.isthmus.gateway.group;

import dev.isthmus.uring.Verify;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;

/**
 * The classic group protocol for the groups of one {@code __consumer_offsets} partition, as a pure state
 * machine (Kafka's {@code GroupMetadataManager} and {@code OffsetMetadataManager} for classic groups): no
 * threads, no I/O, no clock. Every input carries the time ({@code nowMs}); every output goes to an {@link Outbox}
 * as a value: replies (by the caller's request id), records to append, groups whose deadline moved. Timeouts are
 * deadlines the machine reports ({@link #nextDeadlineMs(String)}, {@link #nextCleanupMs()}) and fires when
 * stepped past them ({@link #tick}). Records it asks to append change its state only when the caller reports
 * them durable ({@link #written}), through the same code that replays them at load ({@link #replay}), so the
 * groups in memory are always what replaying the partition gives, plus what only lives in memory (members
 * between persisted generations, parked requests, timers).
 *
 * <p>Lifecycle: created when its partition's leader loads it; fed the partition's records with {@link #replay}
 * and {@link #replayMarker}; {@link #loaded} starts the members' timers; then requests, ticks and write
 * completions; {@link #unload} answers everything parked with NOT_COORDINATOR when leadership moves, after which
 * it is dropped. Owned by one thread (the offsets partition's shard); not thread-safe.
 *
 * <p>Where Isthmus departs from Kafka: a second JoinGroup or SyncGroup of a member while one is parked answers
 * the older with REBALANCE_IN_PROGRESS (Kafka leaves it unanswered); a removed member's parked SyncGroup answers
 * UNKNOWN_MEMBER_ID; a replaced static member's pending SyncGroup passes to its replacement; a static member's
 * session timer is re-armed when its replacement JoinGroup is answered; a group that never reached the log and has
 * nothing left is forgotten at once instead of at the next expiry run.
 */
public final class GroupStateMachine {
    private static final System.Logger LOG = System.getLogger(GroupStateMachine.class.getName());

    /** Makes member ids: Kafka's {@code prefix-UUID} in production, predictable ids in tests. */
    @FunctionalInterface
    public interface MemberIds {
        String next(String prefix);

        MemberIds RANDOM = prefix -> prefix + "-" + UUID.randomUUID();
    }

    private final GroupConfig config;
    private final MemberIds ids;
    private final Map<String, ClassicGroup> groups = new LinkedHashMap<>();
    private final Map<Long, PendingWrite> pendingWrites = new LinkedHashMap<>();
    /** Producer id -> groups holding offsets of its open transaction. */
    private final Map<Long, Set<String>> openTransactions = new HashMap<>();
    /**
     * Group id -> writes of its records not answered yet (kept apart from the group object, which a delete
     * replaces, and for commits that create their group).
     */
    private final Map<String, Integer> inflightWrites = new HashMap<>();
    /** Group id -> partitions with an offset commit appended but not answered yet, and how many. */
    private final Map<String, Map<TopicPartition, Integer>> inflightCommits = new HashMap<>();
    private long nextWriteId;
    private long nextCleanupMs = ClassicGroup.NEVER;
    private boolean live;
    private boolean unloaded;

    public GroupStateMachine(GroupConfig config, MemberIds ids) {
        this.config = config;
        this.ids = ids;
    }

    public GroupConfig config() {
        return config;
    }

    // ================================================================== JoinGroup

    public void join(long nowMs, long requestId, GroupApi.JoinRequest r, Outbox out) {
        checkLive();
        String memberId = r.memberId() == null ? "" : r.memberId();
        if (r.groupId() == null || r.groupId().isEmpty()) {
            out.reply(requestId, GroupApi.JoinResponse.error(GroupErrors.INVALID_GROUP_ID, memberId));
            return;
        }
        out.touch(r.groupId());
        if (r.sessionTimeoutMs() < config.minSessionTimeoutMs() || r.sessionTimeoutMs() > config.maxSessionTimeoutMs()) {
            out.reply(requestId, GroupApi.JoinResponse.error(GroupErrors.INVALID_SESSION_TIMEOUT, memberId));
            return;
        }
        boolean unknownMember = memberId.isEmpty();
        ClassicGroup g = groups.get(r.groupId());
        if (g == null) {
            if (!unknownMember) {
                out.reply(requestId, GroupApi.JoinResponse.error(GroupErrors.UNKNOWN_MEMBER_ID, memberId));
                return;
            }
            g = new ClassicGroup(r.groupId(), nowMs);
            groups.put(g.groupId, g);
        }
        if (!acceptJoiningMember(g, memberId)) {
            removeMember(g, memberId, GroupErrors.GROUP_MAX_SIZE_REACHED, out);
            out.reply(requestId, GroupApi.JoinResponse.error(GroupErrors.GROUP_MAX_SIZE_REACHED, ""));
        } else if (unknownMember) {
            joinNewMember(nowMs, requestId, r, g, out);
        } else {
            joinExistingMember(nowMs, requestId, r, g, out);
        }
        maybeForget(g);
    }

    /** Kafka's group.max.size rule: existing members always, newcomers while there is room. */
    private boolean acceptJoiningMember(ClassicGroup g, String memberId) {
        return switch (g.state) {
            case EMPTY, DEAD -> true;
            case PREPARING_REBALANCE -> (g.hasMember(memberId) && g.member(memberId).awaitingJoin())
                || g.numAwaitingJoin < config.maxSize();
            case COMPLETING_REBALANCE, STABLE -> g.hasMember(memberId) || g.members.size() < config.maxSize();
        };
    }

    private void joinNewMember(long nowMs, long requestId, GroupApi.JoinRequest r, ClassicGroup g, Outbox out) {
        if (g.isInState(GroupState.DEAD)) {
            out.reply(requestId, GroupApi.JoinResponse.error(GroupErrors.COORDINATOR_NOT_AVAILABLE, ""));
            return;
        }
        if (!g.supportsProtocols(r.protocolType(), r.protocols())) {
            out.reply(requestId, GroupApi.JoinResponse.error(GroupErrors.INCONSISTENT_GROUP_PROTOCOL, ""));
            return;
        }
        String instanceId = r.groupInstanceId();
        String newMemberId = ids.next(instanceId != null ? instanceId : r.clientId() == null ? "" : r.clientId());
        if (instanceId != null) {
            String existing = g.staticMemberId(instanceId);
            if (existing != null) {
                updateStaticMemberThenRebalanceOrCompleteJoin(nowMs, requestId, r, g, existing, newMemberId, out);
            } else {
                addMemberThenRebalanceOrCompleteJoin(nowMs, requestId, r, g, newMemberId, out);
            }
        } else if (r.apiVersion() >= 4) {
            // KIP-394: hand out the id; the member must come back with it within its session timeout.
            g.addPendingMember(newMemberId, nowMs + r.sessionTimeoutMs());
            out.reply(requestId, GroupApi.JoinResponse.error(GroupErrors.MEMBER_ID_REQUIRED, newMemberId));
        } else {
            addMemberThenRebalanceOrCompleteJoin(nowMs, requestId, r, g, newMemberId, out);
        }
    }

    private void joinExistingMember(long nowMs, long requestId, GroupApi.JoinRequest r, ClassicGroup g, Outbox out) {
        String memberId = r.memberId();
        if (g.isInState(GroupState.DEAD)) {
            out.reply(requestId, GroupApi.JoinResponse.error(GroupErrors.COORDINATOR_NOT_AVAILABLE, memberId));
            return;
        }
        if (!g.supportsProtocols(r.protocolType(), r.protocols())) {
            out.reply(requestId, GroupApi.JoinResponse.error(GroupErrors.INCONSISTENT_GROUP_PROTOCOL, memberId));
            return;
        }
        if (g.isPendingMember(memberId)) {
            if (r.groupInstanceId() != null) {
                // Pending ids are handed to dynamic members only: a static id with one names no member.
                out.reply(requestId, GroupApi.JoinResponse.error(GroupErrors.UNKNOWN_MEMBER_ID, memberId));
                return;
            }
            addMemberThenRebalanceOrCompleteJoin(nowMs, requestId, r, g, memberId, out);
            return;
        }
        short error = g.validateMember(memberId, r.groupInstanceId());
        if (error != GroupErrors.NONE) {
            out.reply(requestId, GroupApi.JoinResponse.error(error, memberId));
            return;
        }
        GroupMember m = g.member(memberId);
        switch (g.state) {
            case PREPARING_REBALANCE -> updateMemberThenRebalanceOrCompleteJoin(nowMs, requestId, r, g, m, out);
            case COMPLETING_REBALANCE -> {
                if (m.matches(r.protocols())) {
                    // The member lost its JoinGroup response: answer with the current generation again.
                    out.reply(requestId, joinResponse(g, m, g.isLeader(memberId), false, g.leaderId));
                } else {
                    updateMemberThenRebalanceOrCompleteJoin(nowMs, requestId, r, g, m, out);
                }
            }
            case STABLE -> {
                if (g.isLeader(memberId) || !m.matches(r.protocols())) {
                    // A leader's JoinGroup forces a rebalance: how it asks for one when topic metadata changed.
                    updateMemberThenRebalanceOrCompleteJoin(nowMs, requestId, r, g, m, out);
                } else {
                    out.reply(requestId, joinResponse(g, m, false, false, g.leaderId));
                }
            }
            default -> out.reply(requestId, GroupApi.JoinResponse.error(GroupErrors.UNKNOWN_MEMBER_ID, memberId));
        }
    }

    private void addMemberThenRebalanceOrCompleteJoin(long nowMs, long requestId, GroupApi.JoinRequest r,
                                                      ClassicGroup g, String memberId, Outbox out) {
        GroupMember m = new GroupMember(memberId, r.groupInstanceId(), r.clientId(), r.clientHost(),
            r.rebalanceTimeoutMs(), r.sessionTimeoutMs(), r.protocolType(), r.protocols());
        m.isNew = true;
        if (g.isInState(GroupState.PREPARING_REBALANCE) && g.previousState == GroupState.EMPTY) {
            g.newMemberAdded = true; // extends the initial rebalance delay
        }
        g.add(m, requestId);
        // A new member cannot heartbeat while its JoinGroup is parked; bound its wait instead.
        m.heartbeatDeadlineMs = nowMs + config.newMemberJoinTimeoutMs();
        maybePrepareRebalanceOrCompleteJoin(nowMs, g, out);
    }

    private void updateMemberThenRebalanceOrCompleteJoin(long nowMs, long requestId, GroupApi.JoinRequest r,
                                                         ClassicGroup g, GroupMember m, Outbox out) {
        long older = g.takeJoin(m);
        if (older != GroupMember.NO_REQUEST) {
            out.reply(older, GroupApi.JoinResponse.error(GroupErrors.REBALANCE_IN_PROGRESS, m.memberId));
        }
        g.updateMember(m, r.protocols(), r.rebalanceTimeoutMs(), r.sessionTimeoutMs(), requestId);
        maybePrepareRebalanceOrCompleteJoin(nowMs, g, out);
    }

    /** KIP-345: a static member restarted with a new member id takes the old one's place. */
    private void updateStaticMemberThenRebalanceOrCompleteJoin(long nowMs, long requestId, GroupApi.JoinRequest r,
                                                               ClassicGroup g, String oldMemberId, String newMemberId,
                                                               Outbox out) {
        String currentLeader = g.leaderId;
        GroupMember m = replaceStaticMember(g, r.groupInstanceId(), oldMemberId, newMemberId, out);
        m.heartbeatDeadlineMs = nowMs + m.sessionTimeoutMs;
        List<GroupApi.Protocol> oldProtocols = m.protocols;
        int oldRebalanceTimeoutMs = m.rebalanceTimeoutMs;
        int oldSessionTimeoutMs = m.sessionTimeoutMs;
        g.updateMember(m, r.protocols(), r.rebalanceTimeoutMs(), r.sessionTimeoutMs(), requestId);
        switch (g.state) {
            case STABLE -> {
                if (java.util.Objects.equals(g.protocolName, g.selectProtocol())) {
                    // Same protocol next generation: no rebalance; persist the new member id, then answer.
                    write(g, List.of(metadataRecord(g, null)), new StaticReplaceWrite(requestId, g.groupId,
                        oldMemberId, newMemberId, r.groupInstanceId(), oldProtocols, oldRebalanceTimeoutMs,
                        oldSessionTimeoutMs, currentLeader, r.apiVersion() >= 9), out);
                } else {
                    maybePrepareRebalanceOrCompleteJoin(nowMs, g, out);
                }
            }
            // Its old id may already be in the leader's assignment: rebalance so the new id gets one.
            case COMPLETING_REBALANCE -> prepareRebalance(nowMs, g, out);
            case PREPARING_REBALANCE -> maybeCompleteJoinPhase(nowMs, g, out);
            default -> Verify.that(false, "static member " + r.groupInstanceId() + " of " + g.groupId
                + " rejoined a group in state " + g.state);
        }
    }

    /**
     * Replaces the member of {@code instanceId}: the old id's parked requests answer FENCED_INSTANCE_ID, the new
     * member inherits its timeouts, protocols, assignment, leadership and pending SyncGroup.
     */
    private GroupMember replaceStaticMember(ClassicGroup g, String instanceId, String oldMemberId,
                                            String newMemberId, Outbox out) {
        GroupMember old = g.member(oldMemberId);
        Verify.that(old != null, "cannot replace missing member " + oldMemberId + " of " + g.groupId);
        long join = g.takeJoin(old);
        if (join != GroupMember.NO_REQUEST) {
            out.reply(join, new GroupApi.JoinResponse(GroupErrors.FENCED_INSTANCE_ID, -1, null, null, "", false,
                oldMemberId, List.of()));
        }
        long sync = g.takeSync(old);
        if (sync != GroupMember.NO_REQUEST) {
            out.reply(sync, GroupApi.SyncResponse.error(GroupErrors.FENCED_INSTANCE_ID));
        }
        boolean wasLeader = g.isLeader(oldMemberId);
        boolean wasPendingSync = g.pendingSyncMembers.contains(oldMemberId);
        g.remove(oldMemberId);
        GroupMember m = new GroupMember(newMemberId, instanceId, old.clientId, old.clientHost, old.rebalanceTimeoutMs,
            old.sessionTimeoutMs, old.protocolType, old.protocols);
        m.assignment = old.assignment;
        g.add(m, GroupMember.NO_REQUEST);
        if (wasLeader) {
            g.leaderId = newMemberId;
        }
        if (wasPendingSync) {
            g.pendingSyncMembers.add(newMemberId);
        }
        return m;
    }

    private void maybePrepareRebalanceOrCompleteJoin(long nowMs, ClassicGroup g, Outbox out) {
        if (g.canRebalance()) {
            prepareRebalance(nowMs, g, out);
        } else {
            maybeCompleteJoinPhase(nowMs, g, out);
        }
    }

    /** Completes the join phase if every member rejoined, except during the initial rebalance (its delay rules). */
    private void maybeCompleteJoinPhase(long nowMs, ClassicGroup g, Outbox out) {
        if (g.isInState(GroupState.PREPARING_REBALANCE) && g.previousState != GroupState.EMPTY
            && g.hasAllMembersJoined()) {
            completeJoin(nowMs, g, out);
        }
    }

    private void prepareRebalance(long nowMs, ClassicGroup g, Outbox out) {
        if (g.isInState(GroupState.COMPLETING_REBALANCE)) {
            resetAndPropagateAssignmentWithError(nowMs, g, GroupErrors.REBALANCE_IN_PROGRESS, out);
        }
        g.pendingSyncMembers.clear();
        g.syncDeadlineMs = ClassicGroup.NEVER;
        boolean initial = g.isInState(GroupState.EMPTY);
        if (initial) {
            // A new group waits for more members; each newcomer extends the wait, up to the rebalance timeout.
            g.joinTimerIsInitialDelay = true;
            g.initialDelayMs = config.initialRebalanceDelayMs();
            g.initialRemainingMs = Math.max(g.rebalanceTimeoutMs() - config.initialRebalanceDelayMs(), 0);
            g.joinDeadlineMs = nowMs + config.initialRebalanceDelayMs();
        }
        g.transitionTo(GroupState.PREPARING_REBALANCE, nowMs);
        if (!initial) {
            if (g.hasAllMembersJoined()) {
                completeJoin(nowMs, g, out);
            } else {
                scheduleJoinCompletion(nowMs, g);
            }
        }
    }

    private static void scheduleJoinCompletion(long nowMs, ClassicGroup g) {
        g.joinTimerIsInitialDelay = false;
        g.joinDeadlineMs = nowMs + Math.max(1, g.rebalanceTimeoutMs());
    }

    private void initialDelayExpired(long nowMs, ClassicGroup g, Outbox out) {
        if (g.newMemberAdded && g.initialRemainingMs != 0) {
            g.newMemberAdded = false;
            int delay = Math.min(config.initialRebalanceDelayMs(), g.initialRemainingMs);
            int remaining = Math.max(g.initialRemainingMs - g.initialDelayMs, 0);
            g.initialDelayMs = delay;
            g.initialRemainingMs = remaining;
            g.joinDeadlineMs = nowMs + delay;
        } else {
            completeJoin(nowMs, g, out);
        }
    }

    /**
     * Ends the join phase: dynamic members that did not rejoin are dropped, the generation advances and every
     * member that rejoined gets its JoinGroup answer (the leader with the members' metadata); the group then
     * waits for SyncGroups, or is Empty (persisted as such).
     */
    private void completeJoin(long nowMs, ClassicGroup g, Outbox out) {
        g.joinDeadlineMs = ClassicGroup.NEVER;
        g.joinTimerIsInitialDelay = false;
        for (GroupMember m : new ArrayList<>(g.members.values())) {
            if (!m.awaitingJoin() && !m.isStatic()) {
                removeMember(g, m.memberId, GroupErrors.UNKNOWN_MEMBER_ID, out);
            }
        }
        if (g.isInState(GroupState.DEAD)) {
            return;
        }
        if (!g.maybeElectNewJoinedLeader() && !g.members.isEmpty()) {
            // Only static members that did not rejoin are left: wait another rebalance timeout for them.
            scheduleJoinCompletion(nowMs, g);
            return;
        }
        g.initNextGeneration(nowMs);
        if (g.isInState(GroupState.EMPTY)) {
            write(g, List.of(metadataRecord(g, null)), new MetadataWrite(g.groupId), out);
            return;
        }
        for (GroupMember m : g.members.values()) {
            long join = g.takeJoin(m);
            if (join != GroupMember.NO_REQUEST) {
                out.reply(join, joinResponse(g, m, g.isLeader(m.memberId), false, g.leaderId));
            }
            m.heartbeatDeadlineMs = nowMs + m.sessionTimeoutMs;
            m.isNew = false;
            g.pendingSyncMembers.add(m.memberId);
        }
        g.syncDeadlineMs = nowMs + Math.max(1, g.rebalanceTimeoutMs());
        g.syncTimerGeneration = g.generationId;
    }

    private static GroupApi.JoinResponse joinResponse(ClassicGroup g, GroupMember m, boolean withMembers,
                                                      boolean skipAssignment, String leader) {
        List<GroupApi.JoinedMember> members = List.of();
        if (withMembers) {
            members = new ArrayList<>(g.members.size());
            for (GroupMember x : g.members.values()) {
                members.add(new GroupApi.JoinedMember(x.memberId, x.groupInstanceId, x.metadata(g.protocolName)));
            }
        }
        return new GroupApi.JoinResponse(GroupErrors.NONE, g.generationId, g.protocolType, g.protocolName, leader,
            skipAssignment, m.memberId, members);
    }

    // ================================================================== SyncGroup

    public void sync(long nowMs, long requestId, GroupApi.SyncRequest r, Outbox out) {
        checkLive();
        if (r.groupId() == null || r.groupId().isEmpty()) {
            out.reply(requestId, GroupApi.SyncResponse.error(GroupErrors.INVALID_GROUP_ID));
            return;
        }
        out.touch(r.groupId());
        ClassicGroup g = groups.get(r.groupId());
        if (g == null || g.isInState(GroupState.EMPTY)) {
            out.reply(requestId, GroupApi.SyncResponse.error(GroupErrors.UNKNOWN_MEMBER_ID));
            return;
        }
        short error = validateSync(g, r);
        if (error != GroupErrors.NONE) {
            out.reply(requestId, GroupApi.SyncResponse.error(error));
            return;
        }
        GroupMember m = g.member(r.memberId());
        switch (g.state) {
            case PREPARING_REBALANCE -> out.reply(requestId,
                GroupApi.SyncResponse.error(GroupErrors.REBALANCE_IN_PROGRESS));
            case COMPLETING_REBALANCE -> {
                long older = g.takeSync(m);
                if (older != GroupMember.NO_REQUEST) {
                    out.reply(older, GroupApi.SyncResponse.error(GroupErrors.REBALANCE_IN_PROGRESS));
                }
                m.syncRequestId = requestId;
                removePendingSyncMember(g, m.memberId);
                if (g.isLeader(m.memberId)) {
                    Map<String, byte[]> assignment = new HashMap<>();
                    for (GroupMember x : g.members.values()) {
                        byte[] a = r.assignments() == null ? null : r.assignments().get(x.memberId);
                        assignment.put(x.memberId, a == null ? GroupApi.EMPTY_BYTES : a);
                    }
                    write(g, List.of(metadataRecord(g, assignment)), new SyncWrite(g.groupId, g.generationId,
                        assignment), out);
                }
            }
            case STABLE -> {
                removePendingSyncMember(g, m.memberId);
                out.reply(requestId, new GroupApi.SyncResponse(GroupErrors.NONE, g.protocolType, g.protocolName,
                    m.assignment));
            }
            default -> out.reply(requestId, GroupApi.SyncResponse.error(GroupErrors.UNKNOWN_MEMBER_ID));
        }
    }

    private static short validateSync(ClassicGroup g, GroupApi.SyncRequest r) {
        if (g.isInState(GroupState.DEAD)) {
            return GroupErrors.COORDINATOR_NOT_AVAILABLE;
        }
        short error = g.validateMember(r.memberId(), r.groupInstanceId());
        if (error != GroupErrors.NONE) {
            return error;
        }
        if (r.generationId() != g.generationId) {
            return GroupErrors.ILLEGAL_GENERATION;
        }
        if (inconsistent(r.protocolType(), g.protocolType) || inconsistent(r.protocolName(), g.protocolName)) {
            return GroupErrors.INCONSISTENT_GROUP_PROTOCOL;
        }
        return GroupErrors.NONE;
    }

    private static boolean inconsistent(String requested, String current) {
        return requested != null && current != null && !requested.equals(current);
    }

    private static void removePendingSyncMember(ClassicGroup g, String memberId) {
        g.pendingSyncMembers.remove(memberId);
        if (g.pendingSyncMembers.isEmpty()) {
            g.syncDeadlineMs = ClassicGroup.NEVER;
        }
    }

    private void resetAndPropagateAssignmentWithError(long nowMs, ClassicGroup g, short error, Outbox out) {
        Verify.that(g.isInState(GroupState.COMPLETING_REBALANCE), "group " + g.groupId + " resets assignments in "
            + g.state);
        for (GroupMember m : g.members.values()) {
            m.assignment = GroupApi.EMPTY_BYTES;
        }
        propagateAssignment(nowMs, g, error, out);
    }

    private void propagateAssignment(long nowMs, ClassicGroup g, short error, Outbox out) {
        for (GroupMember m : g.members.values()) {
            long sync = g.takeSync(m);
            if (sync != GroupMember.NO_REQUEST) {
                out.reply(sync, error == GroupErrors.NONE
                    ? new GroupApi.SyncResponse(GroupErrors.NONE, g.protocolType, g.protocolName, m.assignment)
                    : new GroupApi.SyncResponse(error, null, null, m.assignment));
                // Its heartbeat timer may have fired while it waited: arm it again.
                m.heartbeatDeadlineMs = nowMs + m.sessionTimeoutMs;
            }
        }
    }

    private void expirePendingSync(long nowMs, ClassicGroup g, Outbox out) {
        g.syncDeadlineMs = ClassicGroup.NEVER;
        if (g.syncTimerGeneration != g.generationId) {
            return;
        }
        if ((g.isInState(GroupState.COMPLETING_REBALANCE) || g.isInState(GroupState.STABLE))
            && !g.pendingSyncMembers.isEmpty()) {
            List<String> late = new ArrayList<>(g.pendingSyncMembers);
            LOG.log(System.Logger.Level.INFO, () -> "group " + g.groupId + ": removing members " + late
                + " that sent no SyncGroup within the rebalance timeout");
            for (String id : late) {
                removeMember(g, id, GroupErrors.UNKNOWN_MEMBER_ID, out);
            }
            prepareRebalance(nowMs, g, out);
        }
    }

    // ================================================================== Heartbeat and LeaveGroup

    public void heartbeat(long nowMs, long requestId, GroupApi.HeartbeatRequest r, Outbox out) {
        checkLive();
        out.reply(requestId, new GroupApi.HeartbeatResponse(heartbeat(nowMs, r, out)));
    }

    private short heartbeat(long nowMs, GroupApi.HeartbeatRequest r, Outbox out) {
        if (r.groupId() == null || r.groupId().isEmpty()) {
            return GroupErrors.INVALID_GROUP_ID;
        }
        out.touch(r.groupId());
        ClassicGroup g = groups.get(r.groupId());
        if (g == null) {
            return GroupErrors.UNKNOWN_MEMBER_ID;
        }
        if (g.isInState(GroupState.DEAD)) {
            return GroupErrors.COORDINATOR_NOT_AVAILABLE;
        }
        short error = g.validateMember(r.memberId(), r.groupInstanceId());
        if (error != GroupErrors.NONE) {
            return error;
        }
        if (r.generationId() != g.generationId) {
            return GroupErrors.ILLEGAL_GENERATION;
        }
        GroupMember m = g.member(r.memberId());
        return switch (g.state) {
            case PREPARING_REBALANCE -> {
                m.heartbeatDeadlineMs = nowMs + m.sessionTimeoutMs;
                yield GroupErrors.REBALANCE_IN_PROGRESS;
            }
            case COMPLETING_REBALANCE, STABLE -> {
                m.heartbeatDeadlineMs = nowMs + m.sessionTimeoutMs;
                yield GroupErrors.NONE;
            }
            default -> GroupErrors.UNKNOWN_MEMBER_ID;
        };
    }

    public void leave(long nowMs, long requestId, GroupApi.LeaveRequest r, Outbox out) {
        checkLive();
        if (r.groupId() == null || r.groupId().isEmpty()) {
            out.reply(requestId, new GroupApi.LeaveResponse(GroupErrors.INVALID_GROUP_ID, List.of()));
            return;
        }
        out.touch(r.groupId());
        ClassicGroup g = groups.get(r.groupId());
        if (g == null || g.isInState(GroupState.DEAD)) {
            out.reply(requestId, new GroupApi.LeaveResponse(g == null ? GroupErrors.UNKNOWN_MEMBER_ID
                : GroupErrors.COORDINATOR_NOT_AVAILABLE, List.of()));
            return;
        }
        List<GroupApi.LeftMember> results = new ArrayList<>();
        boolean anyLeft = false;
        for (GroupApi.LeavingMember who : r.members()) {
            String memberId = who.memberId() == null ? "" : who.memberId();
            short code;
            if (memberId.isEmpty()) {
                // Administrative removal by group.instance.id (KIP-345).
                String current = g.staticMemberId(who.groupInstanceId());
                if (current != null) {
                    removeMember(g, current, GroupErrors.UNKNOWN_MEMBER_ID, out);
                    code = GroupErrors.NONE;
                } else {
                    code = GroupErrors.UNKNOWN_MEMBER_ID;
                }
            } else if (g.isPendingMember(memberId)) {
                g.remove(memberId);
                code = GroupErrors.NONE;
            } else {
                code = g.validateMember(memberId, who.groupInstanceId());
                if (code == GroupErrors.NONE) {
                    removeMember(g, memberId, GroupErrors.UNKNOWN_MEMBER_ID, out);
                }
            }
            anyLeft |= code == GroupErrors.NONE;
            results.add(new GroupApi.LeftMember(memberId, who.groupInstanceId(), code));
        }
        if (anyLeft) {
            switch (g.state) {
                case STABLE, COMPLETING_REBALANCE -> maybePrepareRebalanceOrCompleteJoin(nowMs, g, out);
                case PREPARING_REBALANCE -> maybeCompleteJoinPhase(nowMs, g, out);
                default -> {
                }
            }
        }
        out.reply(requestId, new GroupApi.LeaveResponse(GroupErrors.NONE, results));
        maybeForget(g);
    }

    /** Removes a member (or pending member), answering its parked JoinGroup and SyncGroup with {@code code}. */
    private static void removeMember(ClassicGroup g, String memberId, short code, Outbox out) {
        GroupMember m = g.member(memberId);
        if (m != null) {
            long join = g.takeJoin(m);
            if (join != GroupMember.NO_REQUEST) {
                out.reply(join, GroupApi.JoinResponse.error(code, ""));
            }
            long sync = g.takeSync(m);
            if (sync != GroupMember.NO_REQUEST) {
                out.reply(sync, GroupApi.SyncResponse.error(code));
            }
        }
        g.remove(memberId);
    }

    /** A member's heartbeat timer fired: unless it waits in a rebalance, it is gone. */
    private void heartbeatExpired(long nowMs, ClassicGroup g, GroupMember m, Outbox out) {
        m.heartbeatDeadlineMs = ClassicGroup.NEVER;
        if (g.isInState(GroupState.DEAD) || m.hasSatisfiedHeartbeat()) {
            return;
        }
        LOG.log(System.Logger.Level.INFO, () -> "group " + g.groupId + ": member " + m.memberId + " missed its "
            + (m.isNew ? config.newMemberJoinTimeoutMs() + " ms new-member join" : m.sessionTimeoutMs + " ms session")
            + " timeout; removing it");
        removeMember(g, m.memberId, GroupErrors.UNKNOWN_MEMBER_ID, out);
        if (g.isInState(GroupState.STABLE) || g.isInState(GroupState.COMPLETING_REBALANCE)) {
            maybePrepareRebalanceOrCompleteJoin(nowMs, g, out);
        } else if (g.isInState(GroupState.PREPARING_REBALANCE) && g.hasAllMembersJoined()) {
            completeJoin(nowMs, g, out);
        }
    }

    private void pendingMemberExpired(long nowMs, ClassicGroup g, String memberId, Outbox out) {
        g.remove(memberId);
        if (g.isInState(GroupState.PREPARING_REBALANCE) && g.hasAllMembersJoined()) {
            completeJoin(nowMs, g, out);
        }
    }

    // ================================================================== time

    /** The earliest deadline of {@code groupId}'s timers; {@link Long#MAX_VALUE} when none (or no such group). */
    public long nextDeadlineMs(String groupId) {
        ClassicGroup g = groups.get(groupId);
        return g == null ? ClassicGroup.NEVER : g.nextDeadlineMs();
    }

    /** When the next offset-expiry run is due; {@link Long#MAX_VALUE} when offsets never expire. */
    public long nextCleanupMs() {
        return nextCleanupMs;
    }

    /** The earliest deadline of anything in the machine. */
    public long nextDeadlineMs() {
        long d = nextCleanupMs;
        for (ClassicGroup g : groups.values()) {
            d = Math.min(d, g.nextDeadlineMs());
        }
        return d;
    }

    /** Fires everything due at {@code nowMs}: every group's timers, then the expiry run. */
    public void tick(long nowMs, Outbox out) {
        checkLive();
        for (String id : new ArrayList<>(groups.keySet())) {
            tickGroup(nowMs, id, out);
        }
        if (nowMs >= nextCleanupMs) {
            cleanup(nowMs, out);
        }
    }

    /**
     * Fires the due timers of one group, earliest first (ties: join timer, sync timer, pending members, members
     * in join order), until none is due. Always marks the group touched, so a timer that fired early re-arms.
     */
    public void tickGroup(long nowMs, String groupId, Outbox out) {
        checkLive();
        out.touch(groupId);
        ClassicGroup g = groups.get(groupId);
        if (g == null) {
            return;
        }
        int bound = 16 + 4 * (g.members.size() + g.pendingJoinMembers.size());
        for (int fired = 0; ; fired++) {
            Verify.that(fired <= bound, "group " + groupId + " kept firing timers at " + nowMs);
            long due = g.nextDeadlineMs();
            if (due > nowMs || groups.get(groupId) != g) {
                break;
            }
            if (g.joinDeadlineMs == due) {
                g.joinDeadlineMs = ClassicGroup.NEVER;
                if (g.joinTimerIsInitialDelay) {
                    initialDelayExpired(nowMs, g, out);
                } else {
                    completeJoin(nowMs, g, out);
                }
            } else if (g.syncDeadlineMs == due) {
                expirePendingSync(nowMs, g, out);
            } else if (!firePendingMember(nowMs, g, due, out)) {
                for (GroupMember m : g.members.values()) {
                    if (m.heartbeatDeadlineMs == due) {
                        heartbeatExpired(nowMs, g, m, out);
                        break;
                    }
                }
            }
        }
        maybeForget(g);
    }

    private boolean firePendingMember(long nowMs, ClassicGroup g, long due, Outbox out) {
        for (Map.Entry<String, Long> e : g.pendingJoinMembers.entrySet()) {
            if (e.getValue() == due) {
                String id = e.getKey();
                LOG.log(System.Logger.Level.DEBUG, () -> "group " + g.groupId + ": pending member " + id
                    + " did not come back within its session timeout");
                pendingMemberExpired(nowMs, g, id, out);
                return true;
            }
        }
        return false;
    }

    // ================================================================== offsets

    public void commitOffsets(long nowMs, long requestId, GroupApi.OffsetCommitRequest r, Outbox out) {
        checkLive();
        short[] codes = new short[r.offsets().size()];
        if (r.groupId() == null || r.groupId().isEmpty()) {
            Arrays.fill(codes, GroupErrors.INVALID_GROUP_ID);
            out.reply(requestId, new GroupApi.OffsetCommitResponse(codes));
            return;
        }
        out.touch(r.groupId());
        ClassicGroup g = groups.get(r.groupId());
        short error;
        if (g == null) {
            // A commit outside group management creates a "simple" group; one naming a generation needs a group.
            error = r.generationId() < 0 ? GroupErrors.NONE
                : r.apiVersion() >= 9 ? GroupErrors.GROUP_ID_NOT_FOUND : GroupErrors.ILLEGAL_GENERATION;
        } else {
            error = validateOffsetCommit(g, r.memberId(), r.groupInstanceId(), r.generationId(), false);
        }
        if (error != GroupErrors.NONE) {
            Arrays.fill(codes, error);
            out.reply(requestId, new GroupApi.OffsetCommitResponse(codes));
            return;
        }
        if (g != null && (g.isInState(GroupState.STABLE) || g.isInState(GroupState.PREPARING_REBALANCE))) {
            GroupMember m = g.member(r.memberId()); // commits keep a member's session alive
            m.heartbeatDeadlineMs = nowMs + m.sessionTimeoutMs;
        }
        writeOffsets(nowMs, requestId, r.groupId(), r.offsets(), codes, -1, (short) -1, out);
    }

    /**
     * TxnOffsetCommit: validated as Kafka does (no rebalance check; a generation only when one is named), then
     * written with the producer's id so that its offsets stay pending until the transaction's marker.
     */
    public void commitTransactionalOffsets(long nowMs, long requestId, GroupApi.TxnOffsetCommitRequest r, Outbox out) {
        checkLive();
        short[] codes = new short[r.offsets().size()];
        Verify.that(r.producerId() >= 0, "transactional offsets without a producer id");
        if (r.groupId() == null || r.groupId().isEmpty()) {
            Arrays.fill(codes, GroupErrors.INVALID_GROUP_ID);
            out.reply(requestId, new GroupApi.OffsetCommitResponse(codes));
            return;
        }
        out.touch(r.groupId());
        ClassicGroup g = groups.get(r.groupId());
        short error = g == null ? (r.generationId() < 0 ? GroupErrors.NONE : GroupErrors.ILLEGAL_GENERATION)
            : validateOffsetCommit(g, r.memberId(), r.groupInstanceId(), r.generationId(), true);
        if (error != GroupErrors.NONE) {
            Arrays.fill(codes, error);
            out.reply(requestId, new GroupApi.OffsetCommitResponse(codes));
            return;
        }
        writeOffsets(nowMs, requestId, r.groupId(), r.offsets(), codes, r.producerId(), r.producerEpoch(), out);
    }

    /** Kafka's {@code ClassicGroup.validateOffsetCommit}. */
    private static short validateOffsetCommit(ClassicGroup g, String memberId, String instanceId, int generationId,
                                              boolean transactional) {
        if (g.isInState(GroupState.DEAD)) {
            return GroupErrors.COORDINATOR_NOT_AVAILABLE;
        }
        if (generationId < 0 && g.isInState(GroupState.EMPTY)) {
            return GroupErrors.NONE; // the admin client or a consumer outside group management
        }
        if (generationId >= 0 || (memberId != null && !memberId.isEmpty()) || instanceId != null) {
            short error = g.validateMember(memberId, instanceId);
            if (error != GroupErrors.NONE) {
                return error;
            }
            if (generationId != g.generationId) {
                return GroupErrors.ILLEGAL_GENERATION;
            }
        } else if (!transactional && !g.isInState(GroupState.EMPTY)) {
            return GroupErrors.UNKNOWN_MEMBER_ID; // no member id or generation: only while the group is empty
        }
        if (!transactional && g.isInState(GroupState.COMPLETING_REBALANCE)) {
            return GroupErrors.REBALANCE_IN_PROGRESS;
        }
        return GroupErrors.NONE;
    }

    private void writeOffsets(long nowMs, long requestId, String groupId, List<GroupApi.OffsetEntry> entries,
                              short[] codes, long producerId, short producerEpoch, Outbox out) {
        List<GroupRecord> records = new ArrayList<>();
        List<Integer> written = new ArrayList<>();
        for (int i = 0; i < entries.size(); i++) {
            GroupApi.OffsetEntry e = entries.get(i);
            if (e.metadata() != null && e.metadata().length() > config.offsetMetadataMaxBytes()) {
                codes[i] = GroupErrors.OFFSET_METADATA_TOO_LARGE;
                continue;
            }
            records.add(new GroupRecord.OffsetCommit(groupId, e.partition(), new GroupRecord.OffsetValue(e.offset(),
                e.leaderEpoch(), e.metadata() == null ? "" : e.metadata(), nowMs)));
            written.add(i);
        }
        if (records.isEmpty()) {
            out.reply(requestId, new GroupApi.OffsetCommitResponse(codes));
            return;
        }
        List<TopicPartition> tps = new ArrayList<>();
        Map<TopicPartition, Integer> inflight = inflightCommits.computeIfAbsent(groupId, k -> new HashMap<>());
        for (GroupRecord rec : records) {
            TopicPartition tp = ((GroupRecord.OffsetCommit) rec).partition();
            tps.add(tp);
            inflight.merge(tp, 1, Integer::sum);
        }
        write(groupId, records, producerId, producerEpoch, new CommitWrite(requestId, groupId, codes, written, tps), out);
    }

    /**
     * The committed offsets of a group: of the partitions asked for ({@code partitions} null: all it has), -1 for
     * none. With {@code requireStable}, a partition with an offset pending in an open transaction answers
     * UNSTABLE_OFFSET_COMMIT (the consumer retries until the transaction ends).
     */
    public Map<TopicPartition, GroupApi.FetchedOffset> fetchOffsets(String groupId, List<TopicPartition> partitions,
                                                                    boolean requireStable) {
        ClassicGroup g = groups.get(groupId);
        if (g != null && g.isInState(GroupState.DEAD)) {
            g = null;
        }
        Map<TopicPartition, GroupApi.FetchedOffset> out = new LinkedHashMap<>();
        if (partitions == null) {
            if (g != null) {
                for (Map.Entry<TopicPartition, ClassicGroup.Committed> e : g.offsets.entrySet()) {
                    out.put(e.getKey(), requireStable && g.hasPendingTxnOffset(e.getKey())
                        ? GroupApi.FetchedOffset.UNSTABLE : fetched(e.getValue()));
                }
            }
            return out;
        }
        for (TopicPartition tp : partitions) {
            if (g != null && requireStable && g.hasPendingTxnOffset(tp)) {
                out.put(tp, GroupApi.FetchedOffset.UNSTABLE);
            } else {
                ClassicGroup.Committed c = g == null ? null : g.offsets.get(tp);
                out.put(tp, c == null ? GroupApi.FetchedOffset.NONE : fetched(c));
            }
        }
        return out;
    }

    private static GroupApi.FetchedOffset fetched(ClassicGroup.Committed c) {
        return new GroupApi.FetchedOffset(c.offset(), c.leaderEpoch(), c.metadata(), GroupErrors.NONE);
    }

    /** OffsetDelete: only for an empty group or a consumer group, never for a topic it subscribes to. */
    public void deleteOffsets(long nowMs, long requestId, GroupApi.OffsetDeleteRequest r, Outbox out) {
        checkLive();
        ClassicGroup g = groups.get(r.groupId());
        if (g == null || g.isInState(GroupState.DEAD)) {
            out.reply(requestId, new GroupApi.OffsetDeleteResponse(GroupErrors.GROUP_ID_NOT_FOUND, new short[0]));
            return;
        }
        out.touch(g.groupId);
        if (!g.isInState(GroupState.EMPTY) && !g.usesConsumerProtocol()) {
            out.reply(requestId, new GroupApi.OffsetDeleteResponse(GroupErrors.NON_EMPTY_GROUP, new short[0]));
            return;
        }
        short[] codes = new short[r.partitions().size()];
        List<GroupRecord> tombstones = new ArrayList<>();
        Set<TopicPartition> seen = new LinkedHashSet<>();
        for (int i = 0; i < r.partitions().size(); i++) {
            TopicPartition tp = r.partitions().get(i);
            if (g.isSubscribedTo(tp.topic())) {
                codes[i] = GroupErrors.GROUP_SUBSCRIBED_TO_TOPIC;
            } else if (hasOffsetOrPending(g, tp) && seen.add(tp)) {
                tombstones.add(new GroupRecord.OffsetCommit(g.groupId, tp, null));
            }
        }
        if (tombstones.isEmpty()) {
            out.reply(requestId, new GroupApi.OffsetDeleteResponse(GroupErrors.NONE, codes));
            return;
        }
        write(g, tombstones, new DeleteOffsetsWrite(requestId, g.groupId, codes), out);
    }

    private boolean hasOffsetOrPending(ClassicGroup g, TopicPartition tp) {
        return g.offsets.containsKey(tp) || g.hasPendingTxnOffset(tp) || inflightCommits(g.groupId).containsKey(tp);
    }

    private Map<TopicPartition, Integer> inflightCommits(String groupId) {
        return inflightCommits.getOrDefault(groupId, Map.of());
    }

    /** DeleteGroups for one group: only an Empty group; its offsets and metadata are tombstoned. */
    public void deleteGroup(long nowMs, long requestId, String groupId, Outbox out) {
        checkLive();
        ClassicGroup g = groups.get(groupId);
        if (g == null || g.isInState(GroupState.DEAD)) {
            out.reply(requestId, new GroupApi.DeleteGroupResponse(GroupErrors.GROUP_ID_NOT_FOUND));
            return;
        }
        out.touch(groupId);
        if (!g.isInState(GroupState.EMPTY)) {
            out.reply(requestId, new GroupApi.DeleteGroupResponse(GroupErrors.NON_EMPTY_GROUP));
            return;
        }
        List<GroupRecord> records = groupTombstones(g);
        markDead(g);
        write(g, records, new DeleteGroupWrite(requestId, groupId), out);
    }

    /** Tombstones for every offset of a group (committed, pending or in flight) and for its metadata. */
    private List<GroupRecord> groupTombstones(ClassicGroup g) {
        Set<TopicPartition> tps = new TreeSet<>(g.offsets.keySet());
        tps.addAll(inflightCommits(g.groupId).keySet());
        for (TreeMap<TopicPartition, ClassicGroup.Committed> p : g.pendingTxnOffsets.values()) {
            tps.addAll(p.keySet());
        }
        List<GroupRecord> records = new ArrayList<>();
        for (TopicPartition tp : tps) {
            records.add(new GroupRecord.OffsetCommit(g.groupId, tp, null));
        }
        records.add(new GroupRecord.GroupMetadata(g.groupId, null));
        return records;
    }

    private static void markDead(ClassicGroup g) {
        g.stateBeforeDelete = g.state;
        g.transitionTo(GroupState.DEAD, g.stateTimestampMs);
        g.joinDeadlineMs = ClassicGroup.NEVER;
        g.syncDeadlineMs = ClassicGroup.NEVER;
    }

    /** The topic was deleted: its offsets go (committed and pending), in every group. */
    public void topicDeleted(long nowMs, String topic, Outbox out) {
        checkLive();
        for (ClassicGroup g : new ArrayList<>(groups.values())) {
            Set<TopicPartition> tps = new TreeSet<>();
            for (TopicPartition tp : g.offsets.keySet()) {
                if (tp.topic().equals(topic)) {
                    tps.add(tp);
                }
            }
            for (TreeMap<TopicPartition, ClassicGroup.Committed> p : g.pendingTxnOffsets.values()) {
                for (TopicPartition tp : p.keySet()) {
                    if (tp.topic().equals(topic)) {
                        tps.add(tp);
                    }
                }
            }
            if (!tps.isEmpty()) {
                List<GroupRecord> tombstones = new ArrayList<>();
                for (TopicPartition tp : tps) {
                    tombstones.add(new GroupRecord.OffsetCommit(g.groupId, tp, null));
                }
                out.touch(g.groupId);
                write(g, tombstones, new TombstoneWrite(g.groupId), out);
            }
        }
    }

    /**
     * The expiry run (Kafka's {@code cleanupGroupMetadata}), at most once per check interval: offsets whose
     * retention passed are tombstoned (KIP-211: counted from when the group became Empty; for a group without a
     * protocol, from each commit; for a Stable consumer group, from each commit, for topics it no longer
     * subscribes to), never one with a transaction or commit in flight; an Empty group left with no offsets
     * is deleted.
     */
    public void cleanup(long nowMs, Outbox out) {
        checkLive();
        if (config.offsetsRetentionMs() < 0) {
            nextCleanupMs = ClassicGroup.NEVER;
            return;
        }
        nextCleanupMs = nowMs + config.retentionCheckIntervalMs();
        long retention = config.offsetsRetentionMs();
        for (ClassicGroup g : new ArrayList<>(groups.values())) {
            if (g.isInState(GroupState.DEAD)) {
                continue;
            }
            Boolean sinceCommit = expiryBase(g);
            List<TopicPartition> expired = new ArrayList<>();
            boolean allExpired = true;
            for (Map.Entry<TopicPartition, ClassicGroup.Committed> e : g.offsets.entrySet()) {
                TopicPartition tp = e.getKey();
                long base = sinceCommit == null ? 0 : sinceCommit ? e.getValue().commitTimestampMs() : g.stateTimestampMs;
                if (sinceCommit != null && !g.isSubscribedTo(tp.topic()) && nowMs - base >= retention
                    && !g.hasPendingTxnOffset(tp) && !inflightCommits(g.groupId).containsKey(tp)) {
                    expired.add(tp);
                } else {
                    allExpired = false;
                }
            }
            allExpired &= g.pendingTxnOffsets.isEmpty() && inflightCommits(g.groupId).isEmpty();
            boolean dropGroup = allExpired && g.isInState(GroupState.EMPTY) && g.pendingJoinMembers.isEmpty()
                && !inflightWrites.containsKey(g.groupId);
            if (dropGroup && !g.metadataPersisted && expired.isEmpty()) {
                groups.remove(g.groupId); // nothing of it reached the log
                out.touch(g.groupId);
                continue;
            }
            if (expired.isEmpty() && !dropGroup) {
                continue;
            }
            List<GroupRecord> records = new ArrayList<>();
            for (TopicPartition tp : expired) {
                records.add(new GroupRecord.OffsetCommit(g.groupId, tp, null));
            }
            if (dropGroup) {
                records.add(new GroupRecord.GroupMetadata(g.groupId, null));
                markDead(g);
            }
            LOG.log(System.Logger.Level.DEBUG, () -> "group " + g.groupId + ": expiring offsets " + expired
                + (dropGroup ? " and the group" : ""));
            out.touch(g.groupId);
            write(g, records, dropGroup ? new DeleteGroupWrite(GroupMember.NO_REQUEST, g.groupId)
                : new TombstoneWrite(g.groupId), out);
        }
    }

    /**
     * How a group's offsets age: TRUE from each commit, FALSE from when the group became Empty, null not at all
     * (Kafka's {@code offsetExpirationCondition}).
     */
    private static Boolean expiryBase(ClassicGroup g) {
        if (g.protocolType == null) {
            return Boolean.TRUE;
        }
        if (g.isInState(GroupState.EMPTY)) {
            return Boolean.FALSE;
        }
        if (g.usesConsumerProtocol() && g.subscribedTopics != null && g.isInState(GroupState.STABLE)) {
            return Boolean.TRUE;
        }
        return null;
    }

    // ================================================================== transactions (issue 19's seam)

    /**
     * A transaction marker of {@code producerId}, durable in the offsets partition (replayed, or written by the
     * transaction coordinator's WriteTxnMarkers): on commit its pending offsets become the committed ones unless
     * a later plain commit already replaced them (compared by record offset, as Kafka does); on abort they go.
     */
    public void replayMarker(long producerId, boolean commit) {
        Set<String> groupIds = openTransactions.remove(producerId);
        if (groupIds == null) {
            return;
        }
        for (String id : groupIds) {
            ClassicGroup g = groups.get(id);
            if (g == null) {
                continue;
            }
            TreeMap<TopicPartition, ClassicGroup.Committed> pending = g.pendingTxnOffsets.remove(producerId);
            if (pending != null && commit) {
                for (Map.Entry<TopicPartition, ClassicGroup.Committed> e : pending.entrySet()) {
                    ClassicGroup.Committed existing = g.offsets.get(e.getKey());
                    if (existing == null || e.getValue().recordOffset() > existing.recordOffset()) {
                        g.offsets.put(e.getKey(), e.getValue());
                    }
                }
            }
            maybeForget(g);
        }
    }

    /** Producers with offsets pending in an open transaction. */
    public Set<Long> openTransactions() {
        return Set.copyOf(openTransactions.keySet());
    }

    // ================================================================== replay, load, unload

    /**
     * Applies one record of the offsets partition at {@code recordOffset}, written by {@code producerId} (-1
     * outside a transaction): at load time for every record, and live for the records of each write once durable.
     */
    public void replay(GroupRecord record, long recordOffset, long producerId) {
        switch (record) {
            case GroupRecord.OffsetCommit o -> replayOffset(o, recordOffset, producerId);
            case GroupRecord.GroupMetadata m -> replayMetadata(m);
        }
    }

    private void replayOffset(GroupRecord.OffsetCommit o, long recordOffset, long producerId) {
        ClassicGroup g = groups.get(o.groupId());
        if (o.value() != null) {
            if (g == null) {
                g = new ClassicGroup(o.groupId(), o.value().commitTimestampMs());
                groups.put(g.groupId, g);
            }
            GroupRecord.OffsetValue v = o.value();
            ClassicGroup.Committed c = new ClassicGroup.Committed(v.offset(), v.leaderEpoch(),
                v.metadata() == null ? "" : v.metadata(), v.commitTimestampMs(), recordOffset);
            if (producerId < 0) {
                g.offsets.put(o.partition(), c);
            } else {
                g.pendingTxnOffsets.computeIfAbsent(producerId, p -> new TreeMap<>()).put(o.partition(), c);
                openTransactions.computeIfAbsent(producerId, p -> new LinkedHashSet<>()).add(g.groupId);
            }
            return;
        }
        if (g == null) {
            return;
        }
        g.offsets.remove(o.partition());
        for (Iterator<Map.Entry<Long, TreeMap<TopicPartition, ClassicGroup.Committed>>> it =
             g.pendingTxnOffsets.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<Long, TreeMap<TopicPartition, ClassicGroup.Committed>> e = it.next();
            e.getValue().remove(o.partition());
            if (e.getValue().isEmpty()) {
                it.remove();
                Set<String> open = openTransactions.get(e.getKey());
                if (open != null && open.remove(g.groupId) && open.isEmpty()) {
                    openTransactions.remove(e.getKey());
                }
            }
        }
        maybeForget(g);
    }

    private void replayMetadata(GroupRecord.GroupMetadata rec) {
        ClassicGroup g = groups.get(rec.groupId());
        if (rec.value() == null) {
            if (g == null) {
                return;
            }
            // The group is deleted; offsets of it not tombstoned with it (none, normally) live on in a fresh group.
            ClassicGroup fresh = new ClassicGroup(g.groupId, g.stateTimestampMs);
            fresh.offsets.putAll(g.offsets);
            fresh.pendingTxnOffsets.putAll(g.pendingTxnOffsets);
            groups.put(g.groupId, fresh);
            maybeForget(fresh);
            return;
        }
        Verify.that(!live, "group metadata of " + rec.groupId() + " replayed into a live machine");
        GroupRecord.GroupValue v = rec.value();
        ClassicGroup fresh = new ClassicGroup(rec.groupId(), v.stateTimestampMs());
        if (g != null) {
            fresh.offsets.putAll(g.offsets);
            fresh.pendingTxnOffsets.putAll(g.pendingTxnOffsets);
        }
        fresh.protocolType = v.protocolType() == null || v.protocolType().isEmpty() ? null : v.protocolType();
        fresh.generationId = v.generation();
        fresh.metadataPersisted = true;
        if (v.members() != null && !v.members().isEmpty()) {
            if (v.protocol() == null || fresh.protocolType == null) {
                throw new IllegalArgumentException("group " + rec.groupId() + " persisted with members but no protocol");
            }
            fresh.protocolName = v.protocol();
            for (GroupRecord.MemberValue mv : v.members()) {
                GroupMember m = new GroupMember(mv.memberId(), mv.groupInstanceId(), mv.clientId(), mv.clientHost(),
                    mv.rebalanceTimeoutMs(), mv.sessionTimeoutMs(), fresh.protocolType,
                    List.of(new GroupApi.Protocol(v.protocol(), mv.subscription())));
                m.assignment = mv.assignment();
                fresh.add(m, GroupMember.NO_REQUEST);
            }
            fresh.leaderId = v.leader() != null && fresh.members.containsKey(v.leader()) ? v.leader()
                : fresh.members.keySet().iterator().next();
            fresh.state = GroupState.STABLE;
        }
        fresh.subscribedTopics = fresh.computeSubscribedTopics();
        groups.put(fresh.groupId, fresh);
    }

    /**
     * Replay is over: arm every loaded member's session timer from now (Kafka's {@code onLoaded}), rebalance
     * groups above the size limit, start the expiry runs.
     */
    public void loaded(long nowMs, Outbox out) {
        Verify.that(!live && !unloaded, "loaded twice");
        live = true;
        for (ClassicGroup g : new ArrayList<>(groups.values())) {
            out.touch(g.groupId);
            for (GroupMember m : g.members.values()) {
                m.heartbeatDeadlineMs = nowMs + m.sessionTimeoutMs;
            }
            if (g.members.size() > config.maxSize()) {
                prepareRebalance(nowMs, g, out);
            }
        }
        nextCleanupMs = config.offsetsRetentionMs() < 0 ? ClassicGroup.NEVER : nowMs + config.retentionCheckIntervalMs();
    }

    /**
     * Leadership of the partition moved: every parked request and every request waiting for its write answers
     * NOT_COORDINATOR (the client finds the new coordinator); the machine is dead afterwards.
     */
    public void unload(Outbox out) {
        for (ClassicGroup g : groups.values()) {
            for (GroupMember m : g.members.values()) {
                long join = g.takeJoin(m);
                if (join != GroupMember.NO_REQUEST) {
                    out.reply(join, GroupApi.JoinResponse.error(GroupErrors.NOT_COORDINATOR, m.memberId));
                }
                long sync = g.takeSync(m);
                if (sync != GroupMember.NO_REQUEST) {
                    out.reply(sync, GroupApi.SyncResponse.error(GroupErrors.NOT_COORDINATOR));
                }
            }
        }
        for (PendingWrite w : pendingWrites.values()) {
            w.abandon(out);
        }
        pendingWrites.clear();
        inflightWrites.clear();
        inflightCommits.clear();
        groups.clear();
        openTransactions.clear();
        live = false;
        unloaded = true;
    }

    // ================================================================== writes

    /** What waits for a write: applied once the write is durable, or undone and answered if it failed. */
    private abstract static sealed class PendingWrite permits CommitWrite, SyncWrite, StaticReplaceWrite,
        MetadataWrite, TombstoneWrite, DeleteOffsetsWrite, DeleteGroupWrite {
        final String groupId;
        List<GroupRecord> records = List.of();
        long producerId = -1;

        PendingWrite(String groupId) {
            this.groupId = groupId;
        }

        /** The machine is unloaded before the write was answered: answer its request NOT_COORDINATOR. */
        void abandon(Outbox out) {
        }
    }

    /** Offsets of an OffsetCommit or TxnOffsetCommit, answered with one code per entry. */
    private static final class CommitWrite extends PendingWrite {
        final long requestId;
        final short[] codes;
        final List<Integer> written;
        final List<TopicPartition> inflight;

        CommitWrite(long requestId, String groupId, short[] codes, List<Integer> written, List<TopicPartition> inflight) {
            super(groupId);
            this.requestId = requestId;
            this.codes = codes;
            this.written = written;
            this.inflight = inflight;
        }

        @Override
        void abandon(Outbox out) {
            for (int i : written) {
                codes[i] = GroupErrors.NOT_COORDINATOR;
            }
            out.reply(requestId, new GroupApi.OffsetCommitResponse(codes));
        }
    }

    /** The leader's assignment of generation {@code generation}: the group becomes Stable once it is durable. */
    private static final class SyncWrite extends PendingWrite {
        final int generation;
        final Map<String, byte[]> assignment;

        SyncWrite(String groupId, int generation, Map<String, byte[]> assignment) {
            super(groupId);
            this.generation = generation;
            this.assignment = assignment;
        }
    }

    /** A static member's new id in a Stable group: its JoinGroup is answered once durable, else undone. */
    private static final class StaticReplaceWrite extends PendingWrite {
        final long requestId;
        final String oldMemberId;
        final String newMemberId;
        final String instanceId;
        final List<GroupApi.Protocol> oldProtocols;
        final int oldRebalanceTimeoutMs;
        final int oldSessionTimeoutMs;
        final String previousLeader;
        final boolean supportsSkipAssignment;

        StaticReplaceWrite(long requestId, String groupId, String oldMemberId, String newMemberId, String instanceId,
                           List<GroupApi.Protocol> oldProtocols, int oldRebalanceTimeoutMs, int oldSessionTimeoutMs,
                           String previousLeader, boolean supportsSkipAssignment) {
            super(groupId);
            this.requestId = requestId;
            this.oldMemberId = oldMemberId;
            this.newMemberId = newMemberId;
            this.instanceId = instanceId;
            this.oldProtocols = oldProtocols;
            this.oldRebalanceTimeoutMs = oldRebalanceTimeoutMs;
            this.oldSessionTimeoutMs = oldSessionTimeoutMs;
            this.previousLeader = previousLeader;
            this.supportsSkipAssignment = supportsSkipAssignment;
        }
    }

    /** Group metadata whose success changes nothing in memory (an Empty generation). */
    private static final class MetadataWrite extends PendingWrite {
        MetadataWrite(String groupId) {
            super(groupId);
        }
    }

    /** Offset tombstones (expiry, a deleted topic): replayed once durable. */
    private static final class TombstoneWrite extends PendingWrite {
        TombstoneWrite(String groupId) {
            super(groupId);
        }
    }

    /** OffsetDelete's tombstones, answered with one code per requested partition. */
    private static final class DeleteOffsetsWrite extends PendingWrite {
        final long requestId;
        final short[] codes;

        DeleteOffsetsWrite(long requestId, String groupId, short[] codes) {
            super(groupId);
            this.requestId = requestId;
            this.codes = codes;
        }

        @Override
        void abandon(Outbox out) {
            out.reply(requestId, new GroupApi.OffsetDeleteResponse(GroupErrors.NOT_COORDINATOR, new short[0]));
        }
    }

    /** A group's tombstones (DeleteGroups, or expiry with {@code requestId} -1); the group is Dead meanwhile. */
    private static final class DeleteGroupWrite extends PendingWrite {
        final long requestId;

        DeleteGroupWrite(long requestId, String groupId) {
            super(groupId);
            this.requestId = requestId;
        }

        @Override
        void abandon(Outbox out) {
            if (requestId != GroupMember.NO_REQUEST) {
                out.reply(requestId, new GroupApi.DeleteGroupResponse(GroupErrors.NOT_COORDINATOR));
            }
        }
    }

    private void write(ClassicGroup g, List<GroupRecord> records, PendingWrite then, Outbox out) {
        write(g.groupId, records, -1, (short) -1, then, out);
    }

    private void write(String groupId, List<GroupRecord> records, long producerId, short producerEpoch,
                       PendingWrite then, Outbox out) {
        long id = nextWriteId++;
        then.records = List.copyOf(records);
        then.producerId = producerId;
        inflightWrites.merge(groupId, 1, Integer::sum);
        pendingWrites.put(id, then);
        out.write(new Outbox.Write(id, then.records, producerId, producerEpoch));
    }

    /**
     * Write {@code writeId} is durable ({@code errorCode} NONE, its records at {@code baseOffset} onwards) or
     * failed with the partition's append error: apply it and answer what waited for it.
     */
    public void written(long nowMs, long writeId, short errorCode, long baseOffset, Outbox out) {
        checkLive();
        PendingWrite w = pendingWrites.remove(writeId);
        Verify.that(w != null, "write %d answered twice or never issued", writeId);
        String groupId = w.groupId;
        out.touch(groupId);
        ClassicGroup g = groups.get(groupId);
        inflightWrites.computeIfPresent(groupId, (k, n) -> n == 1 ? null : n - 1);
        boolean ok = errorCode == GroupErrors.NONE;
        switch (w) {
            case CommitWrite c -> {
                Map<TopicPartition, Integer> inflight = inflightCommits.get(groupId);
                for (TopicPartition tp : c.inflight) {
                    inflight.computeIfPresent(tp, (k, n) -> n == 1 ? null : n - 1);
                }
                if (inflight.isEmpty()) {
                    inflightCommits.remove(groupId);
                }
                if (ok) {
                    replayAll(c.records, baseOffset, c.producerId);
                }
                short code = GroupErrors.forAppend(errorCode, true);
                for (int i : c.written) {
                    c.codes[i] = code;
                }
                out.reply(c.requestId, new GroupApi.OffsetCommitResponse(c.codes));
            }
            case SyncWrite s -> {
                if (ok && g != null) {
                    g.metadataPersisted = true;
                }
                if (g != null && g.isInState(GroupState.COMPLETING_REBALANCE) && g.generationId == s.generation) {
                    if (ok) {
                        for (GroupMember m : g.members.values()) {
                            m.assignment = s.assignment.getOrDefault(m.memberId, GroupApi.EMPTY_BYTES);
                        }
                        propagateAssignment(nowMs, g, GroupErrors.NONE, out);
                        g.transitionTo(GroupState.STABLE, nowMs);
                    } else {
                        resetAndPropagateAssignmentWithError(nowMs, g, GroupErrors.forAppend(errorCode, false), out);
                        maybePrepareRebalanceOrCompleteJoin(nowMs, g, out);
                    }
                }
            }
            case StaticReplaceWrite s -> staticReplaceWritten(nowMs, g, s, errorCode, out);
            case MetadataWrite m -> {
                if (ok && g != null) {
                    g.metadataPersisted = true;
                } else if (!ok) {
                    LOG.log(System.Logger.Level.WARNING, () -> "group " + groupId + ": could not persist its metadata"
                        + " (error " + errorCode + "); a reload will see the previous generation");
                }
            }
            case TombstoneWrite t -> {
                if (ok) {
                    replayAll(t.records, baseOffset, -1);
                }
            }
            case DeleteOffsetsWrite d -> {
                if (ok) {
                    replayAll(d.records, baseOffset, -1);
                } else {
                    short code = GroupErrors.forAppend(errorCode, false);
                    for (int i = 0; i < d.codes.length; i++) {
                        if (d.codes[i] == GroupErrors.NONE) {
                            d.codes[i] = code;
                        }
                    }
                }
                out.reply(d.requestId, new GroupApi.OffsetDeleteResponse(GroupErrors.NONE, d.codes));
            }
            case DeleteGroupWrite d -> {
                if (ok) {
                    replayAll(d.records, baseOffset, -1);
                } else if (g != null && g.isInState(GroupState.DEAD)) {
                    g.restoreAfterFailedDelete();
                }
                if (d.requestId != GroupMember.NO_REQUEST) {
                    out.reply(d.requestId, new GroupApi.DeleteGroupResponse(GroupErrors.forAppend(errorCode, false)));
                }
            }
        }
        ClassicGroup after = groups.get(groupId);
        if (after != null) {
            maybeForget(after);
        }
    }

    private void replayAll(List<GroupRecord> records, long baseOffset, long producerId) {
        for (int i = 0; i < records.size(); i++) {
            replay(records.get(i), baseOffset + i, producerId);
        }
    }

    private void staticReplaceWritten(long nowMs, ClassicGroup g, StaticReplaceWrite s, short errorCode, Outbox out) {
        GroupMember m = g == null ? null : g.member(s.newMemberId);
        boolean parked = m != null && m.joinRequestId == s.requestId;
        if (errorCode == GroupErrors.NONE) {
            g.metadataPersisted = true;
            if (parked) {
                boolean leader = g.isLeader(s.newMemberId);
                g.takeJoin(m);
                // Its heartbeat timer may have fired (and been spared) while the write was in flight: arm it again,
                // or a member that stops right after this answer would never expire (Kafka does not re-arm here).
                m.heartbeatDeadlineMs = nowMs + m.sessionTimeoutMs;
                out.reply(s.requestId, s.supportsSkipAssignment
                    ? joinResponse(g, m, leader, leader, g.leaderId)
                    : joinResponse(g, m, false, false, s.previousLeader));
            }
            return;
        }
        if (!parked) {
            return; // the group moved on and answered the member already: nothing to undo
        }
        LOG.log(System.Logger.Level.WARNING, () -> "group " + s.groupId + ": could not persist static member "
            + s.instanceId + " as " + s.newMemberId + " (error " + errorCode + "); reverting to " + s.oldMemberId);
        g.updateMember(m, s.oldProtocols, s.oldRebalanceTimeoutMs, s.oldSessionTimeoutMs, GroupMember.NO_REQUEST);
        GroupMember old = replaceStaticMember(g, s.instanceId, s.newMemberId, s.oldMemberId, out);
        old.heartbeatDeadlineMs = nowMs + old.sessionTimeoutMs;
        out.reply(s.requestId, new GroupApi.JoinResponse(GroupErrors.forAppend(errorCode, false), g.generationId,
            g.protocolType, g.protocolName, s.previousLeader, false, "", List.of()));
    }

    /** The group's metadata record: its generation with every member's subscription and assignment. */
    private static GroupRecord.GroupMetadata metadataRecord(ClassicGroup g, Map<String, byte[]> assignment) {
        List<GroupRecord.MemberValue> members = new ArrayList<>(g.members.size());
        for (GroupMember m : g.members.values()) {
            byte[] a = assignment != null ? assignment.getOrDefault(m.memberId, GroupApi.EMPTY_BYTES) : m.assignment;
            members.add(new GroupRecord.MemberValue(m.memberId, m.groupInstanceId, m.clientId, m.clientHost,
                m.rebalanceTimeoutMs, m.sessionTimeoutMs, g.protocolName == null ? GroupApi.EMPTY_BYTES
                : m.metadata(g.protocolName), a));
        }
        return new GroupRecord.GroupMetadata(g.groupId, new GroupRecord.GroupValue(g.protocolType == null ? ""
            : g.protocolType, g.generationId, g.protocolName, g.leaderId, g.stateTimestampMs, members));
    }

    // ================================================================== queries

    public GroupApi.DescribedGroup describe(String groupId) {
        ClassicGroup g = groups.get(groupId);
        if (g == null || g.isInState(GroupState.DEAD)) {
            return new GroupApi.DescribedGroup(groupId, false, GroupState.DEAD, "", "", -1, List.of());
        }
        boolean stable = g.isInState(GroupState.STABLE);
        List<GroupApi.DescribedMember> members = new ArrayList<>();
        for (GroupMember m : g.members.values()) {
            members.add(new GroupApi.DescribedMember(m.memberId, m.groupInstanceId, m.clientId, m.clientHost,
                stable ? m.metadata(g.protocolName) : GroupApi.EMPTY_BYTES, stable ? m.assignment : GroupApi.EMPTY_BYTES));
        }
        return new GroupApi.DescribedGroup(groupId, true, g.state, g.protocolType == null ? "" : g.protocolType,
            stable ? g.protocolName : "", g.generationId, members);
    }

    public List<GroupApi.ListedGroup> list() {
        List<GroupApi.ListedGroup> out = new ArrayList<>();
        for (ClassicGroup g : groups.values()) {
            if (!g.isInState(GroupState.DEAD)) {
                out.add(new GroupApi.ListedGroup(g.groupId, g.protocolType == null ? "" : g.protocolType, g.state));
            }
        }
        return out;
    }

    /** A committed offset, for metrics. */
    @FunctionalInterface
    public interface CommittedOffsetVisitor {
        void visit(String groupId, TopicPartition partition, long offset);
    }

    public void forEachCommittedOffset(CommittedOffsetVisitor visitor) {
        for (ClassicGroup g : groups.values()) {
            for (Map.Entry<TopicPartition, ClassicGroup.Committed> e : g.offsets.entrySet()) {
                visitor.visit(g.groupId, e.getKey(), e.getValue().offset());
            }
        }
    }

    public Set<String> groupIds() {
        return Set.copyOf(groups.keySet());
    }

    /** Writes not answered yet. */
    public int pendingWrites() {
        return pendingWrites.size();
    }

    /** Checks every group's invariants (tests call it after every step). */
    public void verify() {
        for (ClassicGroup g : groups.values()) {
            g.verify();
        }
        for (Map.Entry<Long, Set<String>> e : openTransactions.entrySet()) {
            for (String id : e.getValue()) {
                ClassicGroup g = groups.get(id);
                Verify.that(g != null && g.pendingTxnOffsets.containsKey(e.getKey()), "open transaction of producer "
                    + e.getKey() + " names group " + id + " without its offsets");
            }
        }
    }

    /** Package-private view for tests in this package. */
    ClassicGroup group(String groupId) {
        return groups.get(groupId);
    }

    private void maybeForget(ClassicGroup g) {
        if (g.isForgettable() && !inflightWrites.containsKey(g.groupId) && groups.get(g.groupId) == g) {
            groups.remove(g.groupId);
        }
    }

    private void checkLive() {
        if (!live) {
            throw new IllegalStateException(unloaded ? "group state machine used after unload"
                : "group state machine used before loaded()");
        }
    }

    /** Visible for the shell's logging. */
    public int groupCount() {
        return groups.size();
    }
}
