package dev.isthmus.gateway;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * The records of the internal {@code __consumer_offsets} topic: what the group coordinator writes and replays.
 * Keys and values are small big-endian structures modelled on Kafka's own (a version number first, strings as
 * int16 length + UTF-8, -1 for null); a record with a null value is a tombstone, so compaction keeps exactly
 * the latest state of every key.
 *
 * <pre>
 * key v1 (offset):   i16 1, string group, string topic, i32 partition
 *   value v3:        i16 3, i64 offset, i32 leaderEpoch, string metadata, i64 commitTimestampMs
 * key v2 (group):    i16 2, string group
 *   value v1:        i16 1, string protocolType, i32 generation, string protocol, string leader, i64 stateTimestampMs
 * </pre>
 */
final class OffsetsRecords {
    static final short OFFSET_KEY = 1;
    static final short GROUP_KEY = 2;

    private OffsetsRecords() {
    }

    /** A decoded key: {@code topic} is null for a group key. */
    record Key(short version, String group, String topic, int partition) {
    }

    record OffsetValue(long offset, int leaderEpoch, String metadata, long commitTimestampMs) {
    }

    record GroupValue(String protocolType, int generation, String protocol, String leader, long stateTimestampMs) {
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

    static byte[] offsetValue(OffsetValue v) {
        ByteBuffer b = ByteBuffer.allocate(2 + 8 + 4 + size(v.metadata) + 8);
        b.putShort((short) 3);
        b.putLong(v.offset);
        b.putInt(v.leaderEpoch);
        put(b, v.metadata);
        b.putLong(v.commitTimestampMs);
        return b.array();
    }

    static byte[] groupValue(GroupValue v) {
        ByteBuffer b = ByteBuffer.allocate(2 + size(v.protocolType) + 4 + size(v.protocol) + size(v.leader) + 8);
        b.putShort((short) 1);
        put(b, v.protocolType);
        b.putInt(v.generation);
        put(b, v.protocol);
        put(b, v.leader);
        b.putLong(v.stateTimestampMs);
        return b.array();
    }

    /** Decodes a key; throws {@link IllegalArgumentException} naming the problem for an unknown layout. */
    static Key key(ByteBuffer b) {
        short version = b.getShort();
        String group = string(b);
        if (version == OFFSET_KEY) {
            String topic = string(b);
            return new Key(version, group, topic, b.getInt());
        }
        if (version == GROUP_KEY) {
            return new Key(version, group, null, -1);
        }
        throw new IllegalArgumentException("unknown __consumer_offsets key version " + version);
    }

    static OffsetValue offsetValue(ByteBuffer b) {
        short version = b.getShort();
        if (version != 3) {
            throw new IllegalArgumentException("unknown offset value version " + version);
        }
        long offset = b.getLong();
        int epoch = b.getInt();
        String metadata = string(b);
        return new OffsetValue(offset, epoch, metadata, b.getLong());
    }

    static GroupValue groupValue(ByteBuffer b) {
        short version = b.getShort();
        if (version != 1) {
            throw new IllegalArgumentException("unknown group value version " + version);
        }
        String type = string(b);
        int generation = b.getInt();
        String protocol = string(b);
        String leader = string(b);
        return new GroupValue(type, generation, protocol, leader, b.getLong());
    }

    private static int size(String s) {
        return 2 + (s == null ? 0 : s.getBytes(StandardCharsets.UTF_8).length);
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
}
