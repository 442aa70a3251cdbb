package dev.isthmus.gateway.group;

import java.util.List;
import java.util.Map;

/**
 * The requests the group state machine takes and the responses it gives, as plain values: the request layer
 * ({@code GroupHandlers}) converts them from and to the wire messages of each API version, so the machine
 * knows nothing of codecs or buffers. Byte arrays are owned by the value (copied out of receive buffers).
 */
public final class GroupApi {
    private GroupApi() {
    }

    static final byte[] EMPTY_BYTES = new byte[0];

    /** One protocol a member supports, with its metadata (for "consumer": the subscription). */
    public record Protocol(String name, byte[] metadata) {
    }

    /**
     * JoinGroup. {@code memberId} is "" for a member joining for the first time; {@code apiVersion} decides the
     * two-step join (v4+) and whether a static leader may skip the assignment (v9+).
     */
    public record JoinRequest(String groupId, String memberId, String groupInstanceId, String clientId,
                              String clientHost, int sessionTimeoutMs, int rebalanceTimeoutMs, String protocolType,
                              List<Protocol> protocols, short apiVersion) {
    }

    /** A member as the leader sees it in its JoinGroup response. */
    public record JoinedMember(String memberId, String groupInstanceId, byte[] metadata) {
    }

    public record JoinResponse(short errorCode, int generationId, String protocolType, String protocolName,
                               String leader, boolean skipAssignment, String memberId, List<JoinedMember> members) {
        public static JoinResponse error(short code, String memberId) {
            return new JoinResponse(code, -1, null, null, "", false, memberId == null ? "" : memberId, List.of());
        }
    }

    /** SyncGroup; {@code assignments} is what the leader computed (empty from followers). */
    public record SyncRequest(String groupId, String memberId, String groupInstanceId, int generationId,
                              String protocolType, String protocolName, Map<String, byte[]> assignments) {
    }

    public record SyncResponse(short errorCode, String protocolType, String protocolName, byte[] assignment) {
        public static SyncResponse error(short code) {
            return new SyncResponse(code, null, null, EMPTY_BYTES);
        }
    }

    public record HeartbeatRequest(String groupId, String memberId, String groupInstanceId, int generationId) {
    }

    public record HeartbeatResponse(short errorCode) {
    }

    /** One member a LeaveGroup names: by member id, or (memberId "") by group.instance.id. */
    public record LeavingMember(String memberId, String groupInstanceId) {
    }

    public record LeaveRequest(String groupId, List<LeavingMember> members) {
    }

    public record LeftMember(String memberId, String groupInstanceId, short errorCode) {
    }

    /** {@code errorCode} is a group-level error; otherwise each member has its own. */
    public record LeaveResponse(short errorCode, List<LeftMember> members) {
    }

    public record OffsetEntry(TopicPartition partition, long offset, int leaderEpoch, String metadata) {
    }

    /** OffsetCommit: {@code generationId} -1 for a commit made outside group membership. */
    public record OffsetCommitRequest(String groupId, int generationId, String memberId, String groupInstanceId,
                                      List<OffsetEntry> offsets, short apiVersion) {
    }

    /**
     * TxnOffsetCommit (issue 19's seam): offsets committed inside the transaction of {@code producerId}; they
     * stay pending, invisible to OffsetFetch, until that producer's commit or abort marker is applied.
     */
    public record TxnOffsetCommitRequest(String groupId, long producerId, short producerEpoch, int generationId,
                                         String memberId, String groupInstanceId, List<OffsetEntry> offsets) {
    }

    /** One code per entry of the request, in its order. */
    public record OffsetCommitResponse(short[] errorCodes) {
        /** {@code count} entries all answered {@code code}. */
        public static OffsetCommitResponse all(short code, int count) {
            short[] codes = new short[count];
            java.util.Arrays.fill(codes, code);
            return new OffsetCommitResponse(codes);
        }
    }

    public record FetchedOffset(long offset, int leaderEpoch, String metadata, short errorCode) {
        static final FetchedOffset NONE = new FetchedOffset(-1, -1, "", GroupErrors.NONE);
        static final FetchedOffset UNSTABLE = new FetchedOffset(-1, -1, "", GroupErrors.UNSTABLE_OFFSET_COMMIT);
    }

    public record OffsetDeleteRequest(String groupId, List<TopicPartition> partitions) {
    }

    /** A group-level error (then {@code partitionErrors} is empty) or one code per requested partition. */
    public record OffsetDeleteResponse(short errorCode, short[] partitionErrors) {
    }

    /** DeleteGroups' answer for one group. */
    public record DeleteGroupResponse(short errorCode) {
    }

    public record DescribedMember(String memberId, String groupInstanceId, String clientId, String clientHost,
                                  byte[] metadata, byte[] assignment) {
    }

    /** DescribeGroups for one group; {@code found} false for an unknown or dead group. */
    public record DescribedGroup(String groupId, boolean found, GroupState state, String protocolType,
                                 String protocolData, int generationId, List<DescribedMember> members) {
    }

    public record ListedGroup(String groupId, String protocolType, GroupState state) {
    }
}
