package dev.isthmus.gateway;

import dev.isthmus.gateway.group.GroupApi;
import dev.isthmus.gateway.group.GroupConfig;
import dev.isthmus.gateway.group.GroupRecord;
import dev.isthmus.gateway.group.GroupState;
import dev.isthmus.gateway.group.GroupStateMachine;
import dev.isthmus.gateway.group.OffsetsRecords;
import dev.isthmus.gateway.group.Outbox;
import dev.isthmus.gateway.group.TopicPartition;
import dev.isthmus.log.BatchBuilder;
import dev.isthmus.log.RecordBatch;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The group store's batches: what it appends for a write replays to the same records, transactional writes
 * replay as pending until their marker, Raft's own control batches are skipped, and records in the layout
 * earlier versions wrote (golden bytes, built here field by field) still load.
 */
class GroupStoreTest {
    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private static GroupStateMachine fresh() {
        return new GroupStateMachine(GroupConfig.defaults(), GroupStateMachine.MemberIds.RANDOM);
    }

    /** Batches laid end to end, base offsets assigned as a log would. */
    private static final class Log {
        final Arena arena = Arena.ofAuto();
        final MemorySegment seg = arena.allocate(1 << 16);
        long size;
        long nextOffset;

        void append(MemorySegment batch, long len) {
            MemorySegment.copy(batch, 0, seg, size, len);
            RecordBatch b = new RecordBatch().wrap(seg, size);
            b.baseOffset(nextOffset);
            nextOffset += b.lastOffsetDelta() + 1;
            size += len;
        }

        void write(Outbox.Write w, long nowMs) {
            byte[][] keys = new byte[w.records().size()][];
            byte[][] values = new byte[keys.length][];
            for (int i = 0; i < keys.length; i++) {
                keys[i] = OffsetsRecords.key(w.records().get(i));
                values[i] = OffsetsRecords.value(w.records().get(i));
            }
            MemorySegment batch = arena.allocate(8192);
            int len = GroupStore.encode(batch, w, keys, values, nowMs);
            append(batch, len);
        }

        /** A transaction marker: a transactional control batch of the producer, key (version 0, type). */
        void marker(long producerId, boolean commit) {
            MemorySegment batch = arena.allocate(512);
            byte[] key = ByteBuffer.allocate(4).putShort((short) 0).putShort((short) (commit ? 1 : 0)).array();
            byte[] value = ByteBuffer.allocate(6).putShort((short) 0).putInt(7).array();
            int len = new BatchBuilder(batch, 0, 0).control(true).producer(producerId, (short) 0, -1)
                .add(5, key, value).build();
            short attributes = batch.get(SHORT, RecordBatch.ATTRIBUTES);
            batch.set(SHORT, RecordBatch.ATTRIBUTES, (short) (attributes | RecordBatch.TRANSACTIONAL_BIT));
            new RecordBatch().wrap(batch, 0).updateCrc();
            append(batch, len);
        }

        int replayInto(GroupStateMachine m) {
            int[] n = new int[1];
            new GroupStore().apply(seg.asSlice(0, size), m, n);
            return n[0];
        }
    }

    private static long committed(GroupStateMachine m, String group, String topic, int partition) {
        TopicPartition tp = new TopicPartition(topic, partition);
        return m.fetchOffsets(group, List.of(tp), false).get(tp).offset();
    }

    @Test
    void shouldReplayAWriteToTheRecordsItCarried() {
        Log log = new Log();
        GroupRecord.GroupValue stable = new GroupRecord.GroupValue("consumer", 3, "range", "a", 50, List.of(
            new GroupRecord.MemberValue("a", "inst", "client", "/h", 30_000, 10_000, new byte[] {0, 0, 0, 0, 0, 0},
                new byte[] {9})));
        log.write(new Outbox.Write(0, List.of(
            new GroupRecord.GroupMetadata("g", stable),
            new GroupRecord.OffsetCommit("g", new TopicPartition("t", 0), new GroupRecord.OffsetValue(10, 1, "x", 60)),
            new GroupRecord.OffsetCommit("g", new TopicPartition("t", 1), new GroupRecord.OffsetValue(11, 1, "y", 60))),
            -1, (short) -1), 60);
        log.write(new Outbox.Write(1, List.of(new GroupRecord.OffsetCommit("g", new TopicPartition("t", 1), null)),
            -1, (short) -1), 70);
        GroupStateMachine m = fresh();
        assertEquals(4, log.replayInto(m));
        m.loaded(100, new Outbox());
        GroupApi.DescribedGroup d = m.describe("g");
        assertEquals(GroupState.STABLE, d.state());
        assertEquals(3, d.generationId());
        assertEquals("inst", d.members().getFirst().groupInstanceId());
        assertEquals(9, d.members().getFirst().assignment()[0]);
        assertEquals(10, committed(m, "g", "t", 0));
        assertEquals(-1, committed(m, "g", "t", 1), "the tombstone removed it");
    }

    @Test
    void shouldHoldTransactionalOffsetsUntilTheMarkerAndSkipRaftControlBatches() {
        Log log = new Log();
        log.write(new Outbox.Write(0, List.of(new GroupRecord.OffsetCommit("g", new TopicPartition("t", 0),
            new GroupRecord.OffsetValue(1, -1, "", 5))), -1, (short) -1), 5);
        log.write(new Outbox.Write(1, List.of(new GroupRecord.OffsetCommit("g", new TopicPartition("t", 0),
            new GroupRecord.OffsetValue(2, -1, "", 6))), 42, (short) 3), 6);
        MemorySegment written = log.seg.asSlice(0, log.size);
        RecordBatch txn = new RecordBatch();
        long pos = 0;
        List<Boolean> transactional = new ArrayList<>();
        while (pos < log.size) {
            txn.wrap(written, pos);
            transactional.add(txn.isTransactional());
            pos += txn.sizeInBytes();
        }
        assertEquals(List.of(false, true), transactional, "a write with a producer id is a transactional batch");
        assertEquals(42, txn.producerId());
        assertEquals(3, txn.producerEpoch());
        // A Raft control entry (no producer) in between: not a marker, skipped.
        MemorySegment raft = log.arena.allocate(256);
        int raftLen = new BatchBuilder(raft, 0, 0).control(true).add(7, new byte[] {0, 0, 0, 2}, new byte[] {0, 0})
            .build();
        log.append(raft, raftLen);

        GroupStateMachine before = fresh();
        log.replayInto(before);
        assertEquals(1, committed(before, "g", "t", 0), "pending until the marker");
        assertEquals(java.util.Set.of(42L), before.openTransactions());

        log.marker(42, true);
        GroupStateMachine after = fresh();
        log.replayInto(after);
        assertEquals(2, committed(after, "g", "t", 0));
        assertTrue(after.openTransactions().isEmpty());
    }

    @Test
    void shouldLoadRecordsInTheLayoutEarlierVersionsWrote() {
        // Built field by field as the first OffsetsRecords wrote them: offset key v1 / value v3, group key v2 / value v1.
        byte[] offsetKey = ByteBuffer.allocate(2 + 2 + 5 + 2 + 6 + 4).putShort((short) 1).put(str("group"))
            .put(str("events")).putInt(3).array();
        byte[] offsetValue = ByteBuffer.allocate(2 + 8 + 4 + 2 + 10 + 8).putShort((short) 3).putLong(1234).putInt(7)
            .put(str("checkpoint")).putLong(1_700_000_000_000L).array();
        byte[] groupKey = ByteBuffer.allocate(2 + 2 + 5).putShort((short) 2).put(str("group")).array();
        byte[] groupValue = ByteBuffer.allocate(2 + 10 + 4 + 7 + 2 + 8).putShort((short) 1).put(str("consumer"))
            .putInt(12).put(str("range")).putShort((short) -1).putLong(1_700_000_000_000L).array();
        Log log = new Log();
        MemorySegment batch = log.arena.allocate(1024);
        int len = new BatchBuilder(batch, 0, 0).add(1, groupKey, groupValue).add(1, offsetKey, offsetValue).build();
        log.append(batch, len);
        GroupStateMachine m = fresh();
        assertEquals(2, log.replayInto(m));
        m.loaded(1_700_000_000_100L, new Outbox());
        GroupApi.DescribedGroup d = m.describe("group");
        assertEquals(GroupState.EMPTY, d.state(), "a group persisted without members loads Empty");
        assertEquals(12, d.generationId());
        assertEquals("consumer", d.protocolType());
        Map<TopicPartition, GroupApi.FetchedOffset> offsets = m.fetchOffsets("group", null, false);
        GroupApi.FetchedOffset o = offsets.get(new TopicPartition("events", 3));
        assertEquals(1234, o.offset());
        assertEquals(7, o.leaderEpoch());
        assertEquals("checkpoint", o.metadata());
    }

    private static byte[] str(String s) {
        byte[] u = s.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(2 + u.length).putShort((short) u.length).put(u).array();
    }
}
