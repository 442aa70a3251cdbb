package dev.isthmus.gateway.group;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The keys and values of the internal {@code __consumer_offsets} topic: what the group store writes and
 * replays. Small big-endian structures modelled on Kafka's own (a version number first, strings as int16 length
 * + UTF-8 with -1 for null, bytes as int32 length); a record with a null value is a tombstone, so compaction
 * keeps exactly the latest state of every key.
 *
 * <pre>
 * key v1 (offset):   i16 1, string group, string topic, i32 partition
 *   value v3:        i16 3, i64 offset, i32 leaderEpoch, string metadata, i64 commitTimestampMs
 * key v2 (group):    i16 2, string group
 *   value v1:        i16 1, string protocolType, i32 generation, string protocol, string leader, i64 stateTimestampMs
 *   value v2:        value v1's fields with i16 2 first, then i32 memberCount and per member:
 *                    string memberId, string groupInstanceId, string clientId, string clientHost,
 *                    i32 rebalanceTimeoutMs, i32 sessionTimeoutMs, bytes subscription, bytes assignment
 * </pre>
 *
 * Value v1 is what Isthmus wrote before members were persisted; it is still read (the group loads Empty). A
 * decoder ignores bytes after the fields it knows, as Kafka's do, so a later version may append fields.
 */
public final class OffsetsRecords {
    static final short OFFSET_KEY = 1;
    static final short GROUP_KEY = 2;
    private static final short OFFSET_VALUE_VERSION = 3;
    private static final short GROUP_VALUE_V1 = 1;
    private static final short GROUP_VALUE_V2 = 2;

    private OffsetsRecords() {
    }

    public static byte[] key(GroupRecord r) {
        return switch (r) {
            case GroupRecord.OffsetCommit o -> offsetKey(o.groupId(), o.partition().topic(), o.partition().partition());
            case GroupRecord.GroupMetadata g -> groupKey(g.groupId());
        };
    }

    /** The value bytes, or null for a tombstone. */
    public static byte[] value(GroupRecord r) {
        return switch (r) {
            case GroupRecord.OffsetCommit o -> o.value() == null ? null : offsetValue(o.value());
            case GroupRecord.GroupMetadata g -> g.value() == null ? null : groupValue(g.value());
        };
    }

    /**
     * Decodes a record; {@code value} null is a tombstone. Throws {@link IllegalArgumentException} naming the
     * problem for an unknown version or a truncated field.
     */
    public static GroupRecord decode(ByteBuffer key, ByteBuffer value) {
        try {
            short version = key.getShort();
            String group = string(key);
            if (version == OFFSET_KEY) {
                String topic = string(key);
                TopicPartition tp = new TopicPartition(topic, key.getInt());
                return new GroupRecord.OffsetCommit(group, tp, value == null ? null : offsetValue(value));
            }
            if (version == GROUP_KEY) {
                return new GroupRecord.GroupMetadata(group, value == null ? null : groupValue(value));
            }
            throw new IllegalArgumentException("unknown __consumer_offsets key version " + version);
        } catch (BufferUnderflowException e) {
            throw new IllegalArgumentException("truncated __consumer_offsets record", e);
        }
    }

    static byte[] offsetKey(String group, String topic, int partition) {
        ByteBuffer b = ByteBuffer.allocate(2 + size(group) + size(topic) + 4);
        b.putShort(OFFSET_KEY);
        put(b, group);
        put(b, topic);
        b.putInt(partition);
        return b.array();
    }

    static byte[] groupKey(String group) {
        ByteBuffer b = ByteBuffer.allocate(2 + size(group));
        b.putShort(GROUP_KEY);
        put(b, group);
        return b.array();
    }

    static byte[] offsetValue(GroupRecord.OffsetValue v) {
        ByteBuffer b = ByteBuffer.allocate(2 + 8 + 4 + size(v.metadata()) + 8);
        b.putShort(OFFSET_VALUE_VERSION);
        b.putLong(v.offset());
        b.putInt(v.leaderEpoch());
        put(b, v.metadata());
        b.putLong(v.commitTimestampMs());
        return b.array();
    }

    /** Version 2 when the value carries members (always, as written now), version 1 otherwise. */
    static byte[] groupValue(GroupRecord.GroupValue v) {
        int n = 2 + size(v.protocolType()) + 4 + size(v.protocol()) + size(v.leader()) + 8;
        if (v.members() != null) {
            n += 4;
            for (GroupRecord.MemberValue m : v.members()) {
                n += size(m.memberId()) + size(m.groupInstanceId()) + size(m.clientId()) + size(m.clientHost()) + 8
                    + 4 + m.subscription().length + 4 + m.assignment().length;
            }
        }
        ByteBuffer b = ByteBuffer.allocate(n);
        b.putShort(v.members() == null ? GROUP_VALUE_V1 : GROUP_VALUE_V2);
        put(b, v.protocolType());
        b.putInt(v.generation());
        put(b, v.protocol());
        put(b, v.leader());
        b.putLong(v.stateTimestampMs());
        if (v.members() != null) {
            b.putInt(v.members().size());
            for (GroupRecord.MemberValue m : v.members()) {
                put(b, m.memberId());
                put(b, m.groupInstanceId());
                put(b, m.clientId());
                put(b, m.clientHost());
                b.putInt(m.rebalanceTimeoutMs());
                b.putInt(m.sessionTimeoutMs());
                b.putInt(m.subscription().length);
                b.put(m.subscription());
                b.putInt(m.assignment().length);
                b.put(m.assignment());
            }
        }
        return b.array();
    }

    private static GroupRecord.OffsetValue offsetValue(ByteBuffer b) {
        short version = b.getShort();
        if (version != OFFSET_VALUE_VERSION) {
            throw new IllegalArgumentException("unknown offset value version " + version);
        }
        long offset = b.getLong();
        int epoch = b.getInt();
        String metadata = string(b);
        return new GroupRecord.OffsetValue(offset, epoch, metadata, b.getLong());
    }

    private static GroupRecord.GroupValue groupValue(ByteBuffer b) {
        short version = b.getShort();
        if (version != GROUP_VALUE_V1 && version != GROUP_VALUE_V2) {
            throw new IllegalArgumentException("unknown group value version " + version);
        }
        String type = string(b);
        int generation = b.getInt();
        String protocol = string(b);
        String leader = string(b);
        long stateTimestampMs = b.getLong();
        if (version == GROUP_VALUE_V1) {
            return new GroupRecord.GroupValue(type, generation, protocol, leader, stateTimestampMs, null);
        }
        int count = b.getInt();
        if (count < 0 || count > b.remaining()) {
            throw new IllegalArgumentException("group value with an invalid member count " + count);
        }
        List<GroupRecord.MemberValue> members = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            String memberId = string(b);
            String instanceId = string(b);
            String clientId = string(b);
            String clientHost = string(b);
            int rebalanceTimeoutMs = b.getInt();
            int sessionTimeoutMs = b.getInt();
            byte[] subscription = bytes(b);
            byte[] assignment = bytes(b);
            members.add(new GroupRecord.MemberValue(memberId, instanceId, clientId, clientHost, rebalanceTimeoutMs,
                sessionTimeoutMs, subscription, assignment));
        }
        return new GroupRecord.GroupValue(type, generation, protocol, leader, stateTimestampMs, members);
    }

    private static int size(String s) {
        if (s == null) {
            return 2;
        }
        int n = s.getBytes(StandardCharsets.UTF_8).length;
        if (n > Short.MAX_VALUE) {
            throw new IllegalArgumentException("a string of " + n + " bytes does not fit a __consumer_offsets record");
        }
        return 2 + n;
    }

    private static void put(ByteBuffer b, String s) {
        if (s == null) {
            b.putShort((short) -1);
            return;
        }
        byte[] u = s.getBytes(StandardCharsets.UTF_8);
        b.putShort((short) u.length);
        b.put(u);
    }

    private static String string(ByteBuffer b) {
        short n = b.getShort();
        if (n < 0) {
            return null;
        }
        byte[] u = new byte[n];
        b.get(u);
        return new String(u, StandardCharsets.UTF_8);
    }

    private static byte[] bytes(ByteBuffer b) {
        int n = b.getInt();
        if (n < 0 || n > b.remaining()) {
            throw new IllegalArgumentException("a bytes field of length " + n + " with " + b.remaining() + " left");
        }
        byte[] out = new byte[n];
        b.get(out);
        return out;
    }
}
