package dev.isthmus.gateway;

import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.gateway.group.GroupErrors;
import dev.isthmus.gateway.group.GroupRecord;
import dev.isthmus.gateway.group.GroupStateMachine;
import dev.isthmus.gateway.group.OffsetsRecords;
import dev.isthmus.gateway.group.Outbox;
import dev.isthmus.log.BatchBuilder;
import dev.isthmus.log.Log;
import dev.isthmus.log.LogException;
import dev.isthmus.log.RecordBatch;
import dev.isthmus.log.Records;
import dev.isthmus.uring.shard.Promise;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;

/**
 * Where a {@link GroupStateMachine} keeps its state: one {@code __consumer_offsets} partition. It appends what the
 * machine emits ({@link Outbox.Write}) as one record batch through the partition's Raft group, and replays the
 * partition into a fresh machine when its leader loads it: every offset and group-metadata record
 * ({@link OffsetsRecords}), transactional offsets (in a transactional batch) as pending under their producer id,
 * and commit/abort markers (transactional control batches) as {@link GroupStateMachine#replayMarker}. Raft's own
 * control batches are skipped.
 *
 * <p>Runs on the offsets partition's shard (the partition and the arena are that shard's); reads are the log's
 * asynchronous reads, appends are answered once committed, so nothing here blocks the shard.
 */
final class GroupStore {
    private static final int RECORD_OVERHEAD_BYTES = 32;
    private static final short CONTROL_ABORT = 0;
    private static final short CONTROL_COMMIT = 1;
    private static final ValueLayout.OfShort BIG_ENDIAN_SHORT =
        ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);

    private final RecordBatch batchView = new RecordBatch();
    private final Records recordsView = new Records();

    /**
     * Replays {@code part} from its log start to its high watermark into {@code machine}; completes with the
     * number of records applied, or fails naming the offset it could not read or decode.
     */
    Promise<Integer> replay(Partition part, GroupStateMachine machine) {
        Promise<Integer> done = new Promise<>();
        replay(part, machine, part.logStartOffset(), done, new int[1]);
        return done;
    }

    private void replay(Partition part, GroupStateMachine machine, long from, Promise<Integer> done, int[] records) {
        long hw = part.highWatermark();
        if (from >= hw) {
            done.complete(records[0]);
            return;
        }
        part.log().read(from, hw, 1 << 20, new Log.ReadHandler() {
            @Override
            public void onRead(MemorySegment bytes, long firstOffset, long lastOffset) {
                if (bytes.byteSize() == 0) {
                    done.complete(records[0]);
                    return;
                }
                long next;
                try {
                    next = apply(bytes, machine, records);
                } catch (RuntimeException e) {
                    done.fail(new IllegalStateException("cannot replay " + part.topic + "-" + part.index + " at offset "
                        + from + ": " + e.getMessage(), e));
                    return;
                }
                replay(part, machine, Math.max(next, lastOffset + 1), done, records);
            }

            @Override
            public void onError(LogException error) {
                done.fail(error);
            }
        });
    }

    /**
     * Applies every record of the whole batches in {@code bytes} to {@code machine}; returns the offset after the
     * last batch (-1 if none). {@code records[0]} counts the records applied.
     */
    long apply(MemorySegment bytes, GroupStateMachine machine, int[] records) {
        long pos = 0;
        long next = -1;
        while (pos + RecordBatch.HEADER_BYTES <= bytes.byteSize()) {
            batchView.wrap(bytes, pos);
            int size = batchView.sizeInBytes();
            if (size <= 0 || pos + size > bytes.byteSize()) {
                break;
            }
            next = batchView.baseOffset() + batchView.lastOffsetDelta() + 1;
            boolean transactional = batchView.isTransactional() && batchView.producerId() >= 0;
            long producerId = transactional ? batchView.producerId() : -1;
            if (!recordsView.wrap(batchView)) {
                throw new IllegalArgumentException("compressed batch at offset " + batchView.baseOffset()
                    + " in an offsets partition");
            }
            while (recordsView.next()) {
                MemorySegment k = recordsView.key();
                if (k == null) {
                    continue;
                }
                ByteBuffer key = ByteBuffer.wrap(k.toArray(ValueLayout.JAVA_BYTE));
                if (batchView.isControl()) {
                    if (transactional) {
                        applyMarker(key, producerId, machine, recordsView.offset());
                        records[0]++;
                    }
                    continue; // Raft's own control entries
                }
                MemorySegment v = recordsView.value();
                GroupRecord r = OffsetsRecords.decode(key, v == null ? null : ByteBuffer.wrap(v.toArray(ValueLayout.JAVA_BYTE)));
                machine.replay(r, recordsView.offset(), producerId);
                records[0]++;
            }
            pos += size;
        }
        return next;
    }

    /** A transaction marker's key: i16 version, i16 type (0 abort, 1 commit), as Kafka's control records. */
    private static void applyMarker(ByteBuffer key, long producerId, GroupStateMachine machine, long offset) {
        if (key.remaining() < 4) {
            throw new IllegalArgumentException("control record of " + key.remaining() + " bytes at offset " + offset);
        }
        key.getShort();
        short type = key.getShort();
        if (type != CONTROL_ABORT && type != CONTROL_COMMIT) {
            throw new IllegalArgumentException("unknown transaction marker type " + type + " at offset " + offset);
        }
        machine.replayMarker(producerId, type == CONTROL_COMMIT);
    }

    /**
     * Appends {@code w}'s records as one batch (transactional under its producer id when it has one); completes
     * with the partition's error code and base offset once committed, or at once if the arena has no room.
     */
    Promise<Partition.AppendResult> append(MemoryArena arena, Partition part, Outbox.Write w, long nowMs) {
        byte[][] keys = new byte[w.records().size()][];
        byte[][] values = new byte[keys.length][];
        long size = RecordBatch.HEADER_BYTES;
        for (int i = 0; i < keys.length; i++) {
            keys[i] = OffsetsRecords.key(w.records().get(i));
            values[i] = OffsetsRecords.value(w.records().get(i));
            size += RECORD_OVERHEAD_BYTES + keys[i].length + (values[i] == null ? 0 : values[i].length);
        }
        long block = arena.allocate(size, Subsystem.OTHER);
        if (block == MemoryArena.NO_MEMORY) {
            return Promise.completed(new Partition.AppendResult(GroupErrors.COORDINATOR_NOT_AVAILABLE, -1, -1,
                "no memory on this shard for a " + size + "-byte group write"));
        }
        try {
            MemorySegment seg = arena.segment(block, size);
            int len = encode(seg, w, keys, values, nowMs);
            return part.appendInternal(seg, len);
        } finally {
            arena.free(block);
        }
    }

    /** Builds the batch of {@code w} into {@code seg}; returns its size. */
    static int encode(MemorySegment seg, Outbox.Write w, byte[][] keys, byte[][] values, long nowMs) {
        BatchBuilder b = new BatchBuilder(seg, 0, 0);
        if (w.producerId() >= 0) {
            b.producer(w.producerId(), w.producerEpoch(), -1);
        }
        for (int i = 0; i < keys.length; i++) {
            b.add(nowMs, keys[i], values[i]);
        }
        int len = b.build();
        if (w.producerId() >= 0) {
            short attributes = seg.get(BIG_ENDIAN_SHORT, RecordBatch.ATTRIBUTES);
            seg.set(BIG_ENDIAN_SHORT, RecordBatch.ATTRIBUTES, (short) (attributes | RecordBatch.TRANSACTIONAL_BIT));
            new RecordBatch().wrap(seg, 0).updateCrc();
        }
        return len;
    }
}
