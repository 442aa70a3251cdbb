package dev.isthmus.gateway.group;

import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * One member of a {@link ClassicGroup} (Kafka's {@code ClassicGroupMember}): its identity, timeouts, the protocols
 * it supports, its assignment in the current generation, the JoinGroup and SyncGroup requests it has parked
 * (request ids, -1 for none) and its heartbeat deadline. Owned by the group's state machine; single-threaded.
 */
final class GroupMember {
    static final long NO_REQUEST = -1;

    final String memberId;
    final String groupInstanceId;
    final String clientId;
    final String clientHost;
    final String protocolType;
    int rebalanceTimeoutMs;
    int sessionTimeoutMs;
    List<GroupApi.Protocol> protocols;
    byte[] assignment = GroupApi.EMPTY_BYTES;
    /** The parked JoinGroup's request id, or {@link #NO_REQUEST}. */
    long joinRequestId = NO_REQUEST;
    /** The parked SyncGroup's request id, or {@link #NO_REQUEST}. */
    long syncRequestId = NO_REQUEST;
    /** Joined but not yet part of a completed generation: it cannot heartbeat, a join timeout bounds its wait. */
    boolean isNew;
    /** When the member's heartbeat timer fires ({@link ClassicGroup#NEVER} when not armed). */
    long heartbeatDeadlineMs = ClassicGroup.NEVER;

    GroupMember(String memberId, String groupInstanceId, String clientId, String clientHost, int rebalanceTimeoutMs,
                int sessionTimeoutMs, String protocolType, List<GroupApi.Protocol> protocols) {
        this.memberId = memberId;
        this.groupInstanceId = groupInstanceId;
        this.clientId = clientId == null ? "" : clientId;
        this.clientHost = clientHost == null ? "" : clientHost;
        this.rebalanceTimeoutMs = rebalanceTimeoutMs;
        this.sessionTimeoutMs = sessionTimeoutMs;
        this.protocolType = protocolType;
        this.protocols = distinct(protocols);
    }

    boolean isStatic() {
        return groupInstanceId != null;
    }

    boolean awaitingJoin() {
        return joinRequestId != NO_REQUEST;
    }

    boolean awaitingSync() {
        return syncRequestId != NO_REQUEST;
    }

    /**
     * Whether a firing heartbeat timer spares the member: a member waiting in a rebalance (its JoinGroup or
     * SyncGroup parked) cannot heartbeat and is governed by the rebalance timeout instead; a new member is not
     * spared (its timer is the new-member join timeout).
     */
    boolean hasSatisfiedHeartbeat() {
        return !isNew && (awaitingJoin() || awaitingSync());
    }

    /** The same protocols with the same metadata in the same order. */
    boolean matches(List<GroupApi.Protocol> other) {
        if (other.size() != protocols.size()) {
            return false;
        }
        for (int i = 0; i < other.size(); i++) {
            GroupApi.Protocol a = protocols.get(i);
            GroupApi.Protocol b = other.get(i);
            if (!a.name().equals(b.name()) || !Arrays.equals(a.metadata(), b.metadata())) {
                return false;
            }
        }
        return true;
    }

    boolean supports(String protocol) {
        for (GroupApi.Protocol p : protocols) {
            if (p.name().equals(protocol)) {
                return true;
            }
        }
        return false;
    }

    /** The member's metadata for {@code protocol} (empty when it does not support it). */
    byte[] metadata(String protocol) {
        for (GroupApi.Protocol p : protocols) {
            if (p.name().equals(protocol)) {
                return p.metadata();
            }
        }
        return GroupApi.EMPTY_BYTES;
    }

    /**
     * The protocols in order, each name once (its first entry): a JoinGroup may repeat a name, and counting it twice
     * in the group's supported-protocol tally would make it a candidate no other member supports, or none at all
     * (ProtocolFuzzTest seed 19130333929793 left a group with no candidate and the shard with an exception).
     */
    static List<GroupApi.Protocol> distinct(List<GroupApi.Protocol> protocols) {
        java.util.LinkedHashMap<String, GroupApi.Protocol> byName = new java.util.LinkedHashMap<>();
        for (GroupApi.Protocol p : protocols) {
            byName.putIfAbsent(p.name(), p);
        }
        return byName.size() == protocols.size() ? List.copyOf(protocols) : List.copyOf(byName.values());
    }

    /** The member's most preferred protocol among {@code candidates}. */
    String vote(Set<String> candidates) {
        for (GroupApi.Protocol p : protocols) {
            if (candidates.contains(p.name())) {
                return p.name();
            }
        }
        throw new IllegalStateException("member " + memberId + " supports none of the candidate protocols " + candidates);
    }

    @Override
    public String toString() {
        return "GroupMember[" + memberId + (groupInstanceId == null ? "" : ", instance " + groupInstanceId)
            + (awaitingJoin() ? ", awaiting join" : "") + (awaitingSync() ? ", awaiting sync" : "")
            + (isNew ? ", new" : "") + "]";
    }
}
