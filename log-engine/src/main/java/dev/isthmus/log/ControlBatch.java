package dev.isthmus.log;

import dev.isthmus.arena.IoBufView;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Kafka's transaction markers: the control batch a partition leader appends when a transaction ends (Kafka's
 * {@code EndTransactionMarker} and {@code ControlRecordType}), written and read here.
 * <pre>
 *  batch header (61 bytes)   attributes = transactional (bit 4) | control (bit 5), producer id / epoch of the
 *                            transaction, baseSequence -1, lastOffsetDelta 0, recordsCount 1
 *  record                    length varint | attributes i8 0 | timestampDelta varlong 0 | offsetDelta varint 0
 *    key   (4 bytes)         version i16 = 0 | type i16 (0 ABORT, 1 COMMIT; 2-6 are KRaft's own)
 *    value (6 bytes)         version i16 = 0 | coordinatorEpoch i32
 *                            headers varint 0
 * </pre>
 * A marker is {@link #MARKER_BYTES} bytes. Readers take any key version (only the type field is read, as Kafka
 * does) and any value version with at least the coordinator epoch. Stateless; any thread.
 */
public final class ControlBatch {
    /** Control record types (Kafka's ControlRecordType ids). */
    public static final int ABORT = 0;
    public static final int COMMIT = 1;
    /** Not a marker this broker reads: no record (compaction emptied it), an unknown type, or unreadable bytes. */
    public static final int UNKNOWN = -1;

    private static final int RECORD_BODY_BYTES = 16;
    private static final int RECORD_BYTES = 1 + RECORD_BODY_BYTES;
    /** Size of a marker batch. */
    public static final int MARKER_BYTES = RecordBatch.HEADER_BYTES + RECORD_BYTES;

    static {
        if (MARKER_BYTES != 78) {
            throw new AssertionError("a transaction marker is 78 bytes, not " + MARKER_BYTES);
        }
    }

    private ControlBatch() {
    }

    /**
     * Writes a COMMIT or ABORT marker of producer {@code producerId} at {@code epoch} into {@code dst[at]} (base
     * offset 0 and leader epoch -1: the log stamps both); returns {@link #MARKER_BYTES}.
     */
    public static int writeMarker(MemorySegment dst, long at, long producerId, short epoch, boolean commit,
                                  int coordinatorEpoch, long timestampMs) {
        long r = at + RecordBatch.HEADER_BYTES;
        dst.set(ValueLayout.JAVA_BYTE, r, (byte) (RECORD_BODY_BYTES << 1)); // zigzag varint 16
        dst.set(ValueLayout.JAVA_BYTE, r + 1, (byte) 0); // attributes
        dst.set(ValueLayout.JAVA_BYTE, r + 2, (byte) 0); // timestampDelta 0
        dst.set(ValueLayout.JAVA_BYTE, r + 3, (byte) 0); // offsetDelta 0
        dst.set(ValueLayout.JAVA_BYTE, r + 4, (byte) (4 << 1)); // key length 4
        dst.set(RecordBatch.SHORT, r + 5, (short) 0);
        dst.set(RecordBatch.SHORT, r + 7, (short) (commit ? COMMIT : ABORT));
        dst.set(ValueLayout.JAVA_BYTE, r + 9, (byte) (6 << 1)); // value length 6
        dst.set(RecordBatch.SHORT, r + 10, (short) 0);
        dst.set(RecordBatch.INT, r + 12, coordinatorEpoch);
        dst.set(ValueLayout.JAVA_BYTE, r + 16, (byte) 0); // no headers
        dst.set(RecordBatch.LONG, at + RecordBatch.BASE_OFFSET, 0L);
        dst.set(RecordBatch.INT, at + RecordBatch.BATCH_LENGTH, MARKER_BYTES - RecordBatch.LOG_OVERHEAD);
        dst.set(RecordBatch.INT, at + RecordBatch.PARTITION_LEADER_EPOCH, -1);
        dst.set(ValueLayout.JAVA_BYTE, at + RecordBatch.MAGIC, RecordBatch.CURRENT_MAGIC);
        dst.set(RecordBatch.SHORT, at + RecordBatch.ATTRIBUTES,
            (short) (RecordBatch.TRANSACTIONAL_BIT | RecordBatch.CONTROL_BIT));
        dst.set(RecordBatch.INT, at + RecordBatch.LAST_OFFSET_DELTA, 0);
        dst.set(RecordBatch.LONG, at + RecordBatch.BASE_TIMESTAMP, timestampMs);
        dst.set(RecordBatch.LONG, at + RecordBatch.MAX_TIMESTAMP, timestampMs);
        dst.set(RecordBatch.LONG, at + RecordBatch.PRODUCER_ID, producerId);
        dst.set(RecordBatch.SHORT, at + RecordBatch.PRODUCER_EPOCH, epoch);
        dst.set(RecordBatch.INT, at + RecordBatch.BASE_SEQUENCE, -1);
        dst.set(RecordBatch.INT, at + RecordBatch.RECORDS_COUNT, 1);
        new RecordBatch().wrap(dst, at).updateCrc();
        return MARKER_BYTES;
    }

    /**
     * The control type of the control batch at {@code batch} in {@code v} (whose batch length the caller checked):
     * {@link #ABORT}, {@link #COMMIT}, another Kafka type id (2 and up), or {@link #UNKNOWN} when the batch holds
     * no record or its first record does not read as a control record.
     */
    public static int type(IoBufView v, long batch) {
        long[] key = key(v, batch);
        if (key == null || key[1] < 4) {
            return UNKNOWN;
        }
        return v.getShort(key[0] + 2);
    }

    /**
     * The coordinator epoch of the COMMIT/ABORT marker at {@code batch} in {@code v}, or -1 when it cannot be read.
     */
    public static int coordinatorEpoch(IoBufView v, long batch) {
        long[] key = key(v, batch);
        if (key == null || key[1] < 4) {
            return -1;
        }
        long end = batch + RecordBatch.LOG_OVERHEAD + v.getInt(batch + RecordBatch.BATCH_LENGTH);
        long[] out = new long[1];
        long pos = varint(v, key[0] + key[1], end, out);
        if (pos < 0 || out[0] < 6 || pos + 6 > end) {
            return -1;
        }
        return v.getInt(pos + 2);
    }

    /** {position, length} of the first record's key of the batch at {@code batch}, or null when it does not parse. */
    private static long[] key(IoBufView v, long batch) {
        long end = batch + RecordBatch.LOG_OVERHEAD + v.getInt(batch + RecordBatch.BATCH_LENGTH);
        if (end > v.size() || v.getInt(batch + RecordBatch.RECORDS_COUNT) <= 0
            || (v.getShort(batch + RecordBatch.ATTRIBUTES) & RecordBatch.COMPRESSION_MASK) != 0) {
            return null;
        }
        long[] out = new long[2];
        long pos = varint(v, batch + RecordBatch.HEADER_BYTES, end, out); // record length
        if (pos < 0 || pos + 1 > end) {
            return null;
        }
        pos += 1; // attributes
        pos = varlong(v, pos, end, out); // timestamp delta
        if (pos < 0) {
            return null;
        }
        pos = varint(v, pos, end, out); // offset delta
        if (pos < 0) {
            return null;
        }
        pos = varint(v, pos, end, out); // key length
        if (pos < 0 || out[0] < 0 || pos + out[0] > end) {
            return null;
        }
        out[1] = out[0];
        out[0] = pos;
        return out;
    }

    private static long varint(IoBufView v, long pos, long end, long[] out) {
        long p = varlong(v, pos, end, out);
        if (p < 0 || out[0] < Integer.MIN_VALUE || out[0] > Integer.MAX_VALUE || p - pos > 5) {
            return -1;
        }
        return p;
    }

    /** Reads a zigzag varlong at {@code pos} into {@code out[0]}; returns the position after it, or -1. */
    private static long varlong(IoBufView v, long pos, long end, long[] out) {
        long raw = 0;
        int shift = 0;
        while (true) {
            if (pos >= end || shift > 63) {
                return -1;
            }
            byte b = v.getByte(pos++);
            raw |= (long) (b & 0x7F) << shift;
            if ((b & 0x80) == 0) {
                break;
            }
            shift += 7;
        }
        out[0] = (raw >>> 1) ^ -(raw & 1);
        return pos;
    }
}
