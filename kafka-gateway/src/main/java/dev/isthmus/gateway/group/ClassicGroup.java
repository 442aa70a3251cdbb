package dev.isthmus.gateway.group;

import dev.isthmus.uring.Verify;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * One classic consumer group (Kafka's {@code ClassicGroup}): its state, generation, protocol, leader and members,
 * the members between the two steps of their first join, the members a new generation still waits a SyncGroup
 * from, its timers as deadlines, and its committed and pending transactional offsets. Pure data with the small
 * rules Kafka keeps on the group itself (adding and removing members, protocol selection, member validation);
 * the protocol's steps live in {@link GroupStateMachine}. Single-threaded, no clock: times come in as arguments.
 *
 * <p>Timers are deadlines the machine fires from {@link GroupStateMachine#tick}: one per member (heartbeat),
 * one per pending member, one join timer (the initial delay or the rebalance timeout) and one sync timer.
 */
final class ClassicGroup {
    static final long NEVER = Long.MAX_VALUE;

    /** A committed offset; {@code recordOffset} is its record's offset in the offsets partition. */
    record Committed(long offset, int leaderEpoch, String metadata, long commitTimestampMs, long recordOffset) {
    }

    final String groupId;
    GroupState state = GroupState.EMPTY;
    GroupState previousState = GroupState.DEAD;
    long stateTimestampMs;
    int generationId;
    String protocolType;
    String protocolName;
    String leaderId;
    final LinkedHashMap<String, GroupMember> members = new LinkedHashMap<>();
    /** group.instance.id -> member id. */
    final Map<String, String> staticMembers = new HashMap<>();
    /** Member ids handed out by MEMBER_ID_REQUIRED -> when they expire unless the member comes back. */
    final LinkedHashMap<String, Long> pendingJoinMembers = new LinkedHashMap<>();
    /** Members of the current generation that have not sent SyncGroup yet. */
    final Set<String> pendingSyncMembers = new LinkedHashSet<>();
    /** Protocol name -> how many members support it. */
    final Map<String, Integer> supportedProtocols = new HashMap<>();
    int numAwaitingJoin;
    /** A member joined during the initial rebalance delay (which then extends). */
    boolean newMemberAdded;
    /** The topics the members subscribe to ("consumer" protocol), null when unknown. */
    Set<String> subscribedTopics;

    long joinDeadlineMs = NEVER;
    /** Whether the join timer is the initial-rebalance delay (else: complete the join at the rebalance timeout). */
    boolean joinTimerIsInitialDelay;
    int initialDelayMs;
    int initialRemainingMs;
    long syncDeadlineMs = NEVER;
    int syncTimerGeneration;

    final TreeMap<TopicPartition, Committed> offsets = new TreeMap<>();
    /** Producer id -> offsets committed in its open transaction (issue 19): invisible until its marker. */
    final Map<Long, TreeMap<TopicPartition, Committed>> pendingTxnOffsets = new LinkedHashMap<>();
    /** The offsets partition holds metadata of this group (not deleted by a tombstone since). */
    boolean metadataPersisted;
    /** The state a group marked Dead for an in-flight delete returns to if the delete fails. */
    GroupState stateBeforeDelete;

    ClassicGroup(String groupId, long nowMs) {
        this.groupId = groupId;
        this.stateTimestampMs = nowMs;
    }

    // ------------------------------------------------------------------ state

    boolean isInState(GroupState s) {
        return state == s;
    }

    void transitionTo(GroupState target, long nowMs) {
        Verify.that(target.validPrevious().contains(state), "group " + groupId + " cannot move from " + state + " to "
            + target);
        previousState = state;
        state = target;
        stateTimestampMs = nowMs;
    }

    /** Undoes the Dead of a delete whose records could not be written. */
    void restoreAfterFailedDelete() {
        Verify.that(state == GroupState.DEAD && stateBeforeDelete != null, "group " + groupId
            + " restored from " + state + " without a delete in flight");
        state = stateBeforeDelete;
        stateBeforeDelete = null;
    }

    boolean canRebalance() {
        return GroupState.PREPARING_REBALANCE.validPrevious().contains(state);
    }

    boolean usesConsumerProtocol() {
        return "consumer".equals(protocolType);
    }

    // ------------------------------------------------------------------ members

    boolean hasMember(String memberId) {
        return memberId != null && members.containsKey(memberId);
    }

    GroupMember member(String memberId) {
        return members.get(memberId);
    }

    boolean isLeader(String memberId) {
        return memberId != null && memberId.equals(leaderId);
    }

    String staticMemberId(String groupInstanceId) {
        return groupInstanceId == null ? null : staticMembers.get(groupInstanceId);
    }

    boolean isPendingMember(String memberId) {
        return pendingJoinMembers.containsKey(memberId);
    }

    void addPendingMember(String memberId, long deadlineMs) {
        Verify.that(!members.containsKey(memberId), "pending member " + memberId + " is already a member of " + groupId);
        pendingJoinMembers.put(memberId, deadlineMs);
    }

    /** Adds a member, parking its JoinGroup {@code joinRequestId} (or none). */
    void add(GroupMember m, long joinRequestId) {
        if (m.groupInstanceId != null) {
            Verify.that(!staticMembers.containsKey(m.groupInstanceId), "static member " + m.groupInstanceId
                + " added twice to " + groupId);
            staticMembers.put(m.groupInstanceId, m.memberId);
        }
        if (members.isEmpty()) {
            protocolType = m.protocolType;
        }
        Verify.that(java.util.Objects.equals(protocolType, m.protocolType), "member protocol type " + m.protocolType
            + " differs from group " + groupId + "'s " + protocolType);
        if (leaderId == null) {
            leaderId = m.memberId;
        }
        members.put(m.memberId, m);
        incrementSupportedProtocols(m);
        m.joinRequestId = joinRequestId;
        if (m.awaitingJoin()) {
            numAwaitingJoin++;
        }
        pendingJoinMembers.remove(m.memberId);
    }

    /** Removes a member or a pending member (its parked requests are the caller's to answer first). */
    void remove(String memberId) {
        GroupMember removed = members.remove(memberId);
        if (removed != null) {
            decrementSupportedProtocols(removed);
            if (removed.awaitingJoin()) {
                numAwaitingJoin--;
            }
            if (removed.groupInstanceId != null) {
                staticMembers.remove(removed.groupInstanceId);
            }
        }
        if (isLeader(memberId)) {
            Iterator<String> it = members.keySet().iterator();
            leaderId = it.hasNext() ? it.next() : null;
        }
        pendingJoinMembers.remove(memberId);
        pendingSyncMembers.remove(memberId);
    }

    /** Replaces a member's protocols and timeouts and parks (or, with -1, un-parks) its JoinGroup. */
    void updateMember(GroupMember m, java.util.List<GroupApi.Protocol> protocols, int rebalanceTimeoutMs,
                      int sessionTimeoutMs, long joinRequestId) {
        decrementSupportedProtocols(m);
        m.protocols = java.util.List.copyOf(protocols);
        incrementSupportedProtocols(m);
        m.rebalanceTimeoutMs = rebalanceTimeoutMs;
        m.sessionTimeoutMs = sessionTimeoutMs;
        if (joinRequestId != GroupMember.NO_REQUEST && !m.awaitingJoin()) {
            numAwaitingJoin++;
        } else if (joinRequestId == GroupMember.NO_REQUEST && m.awaitingJoin()) {
            numAwaitingJoin--;
        }
        m.joinRequestId = joinRequestId;
    }

    /** Clears a member's parked JoinGroup, returning its request id (or -1). */
    long takeJoin(GroupMember m) {
        long id = m.joinRequestId;
        if (id != GroupMember.NO_REQUEST) {
            m.joinRequestId = GroupMember.NO_REQUEST;
            numAwaitingJoin--;
        }
        return id;
    }

    /** Clears a member's parked SyncGroup, returning its request id (or -1). */
    long takeSync(GroupMember m) {
        long id = m.syncRequestId;
        m.syncRequestId = GroupMember.NO_REQUEST;
        return id;
    }

    /**
     * Keeps the current leader if it rejoined, else elects the first member that did; false when no member
     * rejoined (or there are none), in which case the generation cannot advance yet.
     */
    boolean maybeElectNewJoinedLeader() {
        if (leaderId == null) {
            return false;
        }
        GroupMember current = members.get(leaderId);
        if (current != null && current.awaitingJoin()) {
            return true;
        }
        for (GroupMember m : members.values()) {
            if (m.awaitingJoin()) {
                leaderId = m.memberId;
                return true;
            }
        }
        return false;
    }

    boolean hasAllMembersJoined() {
        return members.size() == numAwaitingJoin && pendingJoinMembers.isEmpty();
    }

    int rebalanceTimeoutMs() {
        int max = 0;
        for (GroupMember m : members.values()) {
            max = Math.max(max, m.rebalanceTimeoutMs);
        }
        return max;
    }

    /**
     * Kafka's member validation: a group.instance.id must map to this member id (else FENCED_INSTANCE_ID, or
     * UNKNOWN_MEMBER_ID when it maps to none), and the member must exist.
     */
    short validateMember(String memberId, String groupInstanceId) {
        if (groupInstanceId != null) {
            String existing = staticMembers.get(groupInstanceId);
            if (existing == null) {
                return GroupErrors.UNKNOWN_MEMBER_ID;
            }
            if (!existing.equals(memberId)) {
                return GroupErrors.FENCED_INSTANCE_ID;
            }
        }
        return hasMember(memberId) ? GroupErrors.NONE : GroupErrors.UNKNOWN_MEMBER_ID;
    }

    // ------------------------------------------------------------------ protocols

    private void incrementSupportedProtocols(GroupMember m) {
        for (GroupApi.Protocol p : m.protocols) {
            supportedProtocols.merge(p.name(), 1, Integer::sum);
        }
    }

    private void decrementSupportedProtocols(GroupMember m) {
        for (GroupApi.Protocol p : m.protocols) {
            supportedProtocols.merge(p.name(), -1, Integer::sum);
        }
    }

    /** Protocols every member supports. */
    private Set<String> candidateProtocols() {
        Set<String> out = new HashSet<>();
        for (Map.Entry<String, Integer> e : supportedProtocols.entrySet()) {
            if (e.getValue() == members.size()) {
                out.add(e.getKey());
            }
        }
        return out;
    }

    /**
     * Whether a member with this protocol type and these protocols may join: any non-empty type and list for an
     * Empty group, else the group's type and at least one protocol every current member supports.
     */
    boolean supportsProtocols(String memberProtocolType, java.util.List<GroupApi.Protocol> protocols) {
        if (state == GroupState.EMPTY) {
            return memberProtocolType != null && !memberProtocolType.isEmpty() && !protocols.isEmpty();
        }
        if (protocolType == null || !protocolType.equals(memberProtocolType)) {
            return false;
        }
        for (GroupApi.Protocol p : protocols) {
            if (supportedProtocols.getOrDefault(p.name(), 0) == members.size()) {
                return true;
            }
        }
        return false;
    }

    /**
     * The protocol of the next generation: among those every member supports, the one most members prefer
     * (each votes for its first candidate); a tie goes to the first voted for, in member order.
     */
    String selectProtocol() {
        Verify.that(!members.isEmpty(), "cannot select a protocol for empty group " + groupId);
        Set<String> candidates = candidateProtocols();
        Map<String, Integer> votes = new LinkedHashMap<>();
        for (GroupMember m : members.values()) {
            votes.merge(m.vote(candidates), 1, Integer::sum);
        }
        String best = null;
        int bestVotes = -1;
        for (Map.Entry<String, Integer> e : votes.entrySet()) {
            if (e.getValue() > bestVotes) {
                best = e.getKey();
                bestVotes = e.getValue();
            }
        }
        return best;
    }

    /** Moves to the next generation: Empty without members, else CompletingRebalance with a protocol chosen. */
    void initNextGeneration(long nowMs) {
        generationId++;
        if (!members.isEmpty()) {
            protocolName = selectProtocol();
            subscribedTopics = computeSubscribedTopics();
            transitionTo(GroupState.COMPLETING_REBALANCE, nowMs);
        } else {
            protocolName = null;
            subscribedTopics = computeSubscribedTopics();
            transitionTo(GroupState.EMPTY, nowMs);
        }
        pendingSyncMembers.clear();
    }

    /**
     * The topics the members subscribe to, read from their "consumer" protocol metadata (a version, then an
     * array of topic names, the prefix every version of the subscription shares); null when the group does not
     * use the consumer protocol, has no protocol yet, or a subscription cannot be read.
     */
    Set<String> computeSubscribedTopics() {
        if (!usesConsumerProtocol()) {
            return null;
        }
        if (members.isEmpty()) {
            return Set.of();
        }
        if (protocolName == null) {
            return null;
        }
        Set<String> topics = new HashSet<>();
        for (GroupMember m : members.values()) {
            try {
                ByteBuffer b = ByteBuffer.wrap(m.metadata(protocolName));
                if (b.getShort() < 0) {
                    return null;
                }
                int n = b.getInt();
                if (n < 0 || n > b.remaining()) {
                    return null;
                }
                for (int i = 0; i < n; i++) {
                    short len = b.getShort();
                    if (len < 0) {
                        return null;
                    }
                    byte[] s = new byte[len];
                    b.get(s);
                    topics.add(new String(s, StandardCharsets.UTF_8));
                }
            } catch (BufferUnderflowException e) {
                return null;
            }
        }
        return topics;
    }

    /** Kafka's rule: subscribed if the subscriptions name the topic; when unknown, if the group is a consumer group. */
    boolean isSubscribedTo(String topic) {
        return subscribedTopics != null ? subscribedTopics.contains(topic) : usesConsumerProtocol();
    }

    // ------------------------------------------------------------------ timers

    /** The earliest deadline of the group's timers, {@link #NEVER} when none is armed. */
    long nextDeadlineMs() {
        long d = Math.min(joinDeadlineMs, syncDeadlineMs);
        for (long p : pendingJoinMembers.values()) {
            d = Math.min(d, p);
        }
        for (GroupMember m : members.values()) {
            d = Math.min(d, m.heartbeatDeadlineMs);
        }
        return d;
    }

    // ------------------------------------------------------------------ offsets

    boolean hasPendingTxnOffset(TopicPartition tp) {
        for (TreeMap<TopicPartition, Committed> p : pendingTxnOffsets.values()) {
            if (p.containsKey(tp)) {
                return true;
            }
        }
        return false;
    }

    /** Nothing left that memory or the log would keep (writes in flight aside): the group may be forgotten. */
    boolean isForgettable() {
        return state == GroupState.EMPTY && members.isEmpty() && pendingJoinMembers.isEmpty() && offsets.isEmpty()
            && pendingTxnOffsets.isEmpty() && !metadataPersisted;
    }

    // ------------------------------------------------------------------ invariants

    /** Checks the group's internal consistency (always-on in tests after every step; cheap enough anywhere). */
    void verify() {
        int awaiting = 0;
        Map<String, Integer> protocols = new HashMap<>();
        for (Map.Entry<String, GroupMember> e : members.entrySet()) {
            GroupMember m = e.getValue();
            Verify.that(e.getKey().equals(m.memberId), "member keyed by another id in " + groupId);
            if (m.awaitingJoin()) {
                awaiting++;
            }
            for (GroupApi.Protocol p : m.protocols) {
                protocols.merge(p.name(), 1, Integer::sum);
            }
            if (m.groupInstanceId != null) {
                Verify.that(m.memberId.equals(staticMembers.get(m.groupInstanceId)), "static member "
                    + m.groupInstanceId + " of " + groupId + " not mapped to " + m.memberId);
            }
            Verify.that(!pendingJoinMembers.containsKey(m.memberId), "member " + m.memberId + " also pending in "
                + groupId);
            Verify.that(!m.awaitingSync() || state == GroupState.COMPLETING_REBALANCE, "member " + m.memberId
                + " awaits sync in state " + state + " of " + groupId);
            Verify.that(!m.awaitingJoin() || state == GroupState.PREPARING_REBALANCE || state == GroupState.STABLE,
                "member " + m.memberId + " awaits join in state " + state + " of " + groupId);
        }
        Verify.that(awaiting == numAwaitingJoin, "group " + groupId + " counts " + numAwaitingJoin
            + " members awaiting join, has " + awaiting);
        for (Map.Entry<String, Integer> e : supportedProtocols.entrySet()) {
            Verify.that(e.getValue().equals(protocols.getOrDefault(e.getKey(), 0)), "protocol " + e.getKey()
                + " count drifted in " + groupId);
        }
        Verify.that(staticMembers.size() == members.values().stream().filter(GroupMember::isStatic).count(),
            "stale static mappings in " + groupId);
        Verify.that(members.isEmpty() == (leaderId == null) || state == GroupState.DEAD, "group " + groupId
            + " leader " + leaderId + " with " + members.size() + " members");
        Verify.that(leaderId == null || members.containsKey(leaderId), "leader " + leaderId + " not a member of "
            + groupId);
        Verify.that(members.keySet().containsAll(pendingSyncMembers), "pending sync of a non-member in " + groupId);
        switch (state) {
            case EMPTY -> Verify.that(members.isEmpty(), "Empty group " + groupId + " with members");
            case STABLE, COMPLETING_REBALANCE -> Verify.that(protocolName != null && !members.isEmpty(),
                "group " + groupId + " in " + state + " without protocol or members");
            default -> {
            }
        }
        Verify.that(state != GroupState.COMPLETING_REBALANCE || syncDeadlineMs != NEVER || pendingSyncMembers.isEmpty(),
            "group " + groupId + " waits for syncs without a timer");
        Verify.that(state != GroupState.PREPARING_REBALANCE || joinDeadlineMs != NEVER, "group " + groupId
            + " prepares a rebalance without a join timer");
    }

    @Override
    public String toString() {
        return "ClassicGroup[" + groupId + ", " + state + ", generation " + generationId + ", protocol " + protocolName
            + ", leader " + leaderId + ", members " + members.values() + ", pending " + pendingJoinMembers.keySet() + "]";
    }
}
