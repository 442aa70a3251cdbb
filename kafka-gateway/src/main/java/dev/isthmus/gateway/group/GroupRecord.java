package dev.isthmus.gateway.group;

import java.util.List;

/**
 * A record of the {@code __consumer_offsets} partition as the state machine emits and replays it: a committed
 * offset or a group's metadata, each with a null value for a tombstone (compaction keeps the latest value of
 * every key). {@link OffsetsRecords} encodes them to the keys and values on disk.
 */
public sealed interface GroupRecord {
    String groupId();

    /** The committed offset of one partition for a group; {@code value} null deletes it. */
    record OffsetCommit(String groupId, TopicPartition partition, OffsetValue value) implements GroupRecord {
    }

    /** A group's metadata as of its last persisted generation; {@code value} null deletes the group. */
    record GroupMetadata(String groupId, GroupValue value) implements GroupRecord {
    }

    record OffsetValue(long offset, int leaderEpoch, String metadata, long commitTimestampMs) {
    }

    /**
     * {@code members} is null when the record predates member persistence (value version 1): such a group loads
     * Empty and its members rejoin; otherwise a group with members loads Stable with them and their assignments.
     */
    record GroupValue(String protocolType, int generation, String protocol, String leader, long stateTimestampMs,
                      List<MemberValue> members) {
    }

    /** A member of a persisted generation: its subscription is its metadata for the group's protocol. */
    record MemberValue(String memberId, String groupInstanceId, String clientId, String clientHost,
                       int rebalanceTimeoutMs, int sessionTimeoutMs, byte[] subscription, byte[] assignment) {
    }
}
