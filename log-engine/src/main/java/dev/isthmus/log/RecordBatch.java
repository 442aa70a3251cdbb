package dev.isthmus.log;

import dev.isthmus.arena.IoBuf;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * A flyweight over one Kafka v2 record batch (magic 2) in memory: the on-disk and on-wire unit.
 * <pre>
 *  0  baseOffset            i64   \  outside the CRC: the leader stamps these
 *  8  batchLength           i32    | (bytes after this field)
 *  12 partitionLeaderEpoch  i32   /  (the Raft term)
 *  16 magic                 i8    = 2
 *  17 crc                   u32   CRC-32C of bytes [21, end)
 *  21 attributes            i16   bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control
 *  23 lastOffsetDelta       i32
 *  27 baseTimestamp         i64
 *  35 maxTimestamp          i64
 *  43 producerId            i64
 *  51 producerEpoch         i16
 *  53 baseSequence          i32
 *  57 recordsCount          i32
 *  61 records ...
 * </pre>
 * All fields are big-endian. {@link #wrap(MemorySegment, long)} re-points the view without allocating.
 * Not thread-safe; one view per user.
 */
public final class RecordBatch {
    public static final int BASE_OFFSET = 0;
    public static final int BATCH_LENGTH = 8;
    public static final int PARTITION_LEADER_EPOCH = 12;
    public static final int MAGIC = 16;
    public static final int CRC = 17;
    public static final int ATTRIBUTES = 21;
    public static final int LAST_OFFSET_DELTA = 23;
    public static final int BASE_TIMESTAMP = 27;
    public static final int MAX_TIMESTAMP = 35;
    public static final int PRODUCER_ID = 43;
    public static final int PRODUCER_EPOCH = 51;
    public static final int BASE_SEQUENCE = 53;
    public static final int RECORDS_COUNT = 57;
    /** Size of the header; the smallest valid batch. */
    public static final int HEADER_BYTES = 61;
    /** Bytes before batchLength's count starts (baseOffset + batchLength). */
    public static final int LOG_OVERHEAD = 12;
    public static final byte CURRENT_MAGIC = 2;

    public static final int COMPRESSION_MASK = 0x07;
    public static final int TIMESTAMP_TYPE_BIT = 0x08;
    public static final int TRANSACTIONAL_BIT = 0x10;
    public static final int CONTROL_BIT = 0x20;

    static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    /** Why a batch is invalid, or OK. */
    public enum Check {
        OK, TRUNCATED, BAD_LENGTH, BAD_MAGIC, BAD_CRC, BAD_COUNT
    }

    private MemorySegment segment;
    private long offset;

    /** Points this view at the batch starting at {@code offset} of {@code segment}. */
    public RecordBatch wrap(MemorySegment segment, long offset) {
        this.segment = segment;
        this.offset = offset;
        return this;
    }

    public MemorySegment segment() {
        return segment;
    }

    public long position() {
        return offset;
    }

    public long baseOffset() {
        return segment.get(LONG, offset + BASE_OFFSET);
    }

    public void baseOffset(long v) {
        segment.set(LONG, offset + BASE_OFFSET, v);
    }

    public int batchLength() {
        return segment.get(INT, offset + BATCH_LENGTH);
    }

    /** Bytes this batch occupies: {@link #LOG_OVERHEAD} + batchLength. */
    public int sizeInBytes() {
        return LOG_OVERHEAD + batchLength();
    }

    public int partitionLeaderEpoch() {
        return segment.get(INT, offset + PARTITION_LEADER_EPOCH);
    }

    public void partitionLeaderEpoch(int v) {
        segment.set(INT, offset + PARTITION_LEADER_EPOCH, v);
    }

    public byte magic() {
        return segment.get(ValueLayout.JAVA_BYTE, offset + MAGIC);
    }

    public int crc() {
        return segment.get(INT, offset + CRC);
    }

    public short attributes() {
        return segment.get(SHORT, offset + ATTRIBUTES);
    }

    public int lastOffsetDelta() {
        return segment.get(INT, offset + LAST_OFFSET_DELTA);
    }

    public long lastOffset() {
        return baseOffset() + lastOffsetDelta();
    }

    public long baseTimestamp() {
        return segment.get(LONG, offset + BASE_TIMESTAMP);
    }

    public long maxTimestamp() {
        return segment.get(LONG, offset + MAX_TIMESTAMP);
    }

    public long producerId() {
        return segment.get(LONG, offset + PRODUCER_ID);
    }

    public short producerEpoch() {
        return segment.get(SHORT, offset + PRODUCER_EPOCH);
    }

    public int baseSequence() {
        return segment.get(INT, offset + BASE_SEQUENCE);
    }

    public int recordsCount() {
        return segment.get(INT, offset + RECORDS_COUNT);
    }

    public boolean isControl() {
        return (attributes() & CONTROL_BIT) != 0;
    }

    public boolean isTransactional() {
        return (attributes() & TRANSACTIONAL_BIT) != 0;
    }

    public int compression() {
        return attributes() & COMPRESSION_MASK;
    }

    /** CRC-32C of bytes [attributes, end) as stored now. */
    public int computeCrc() {
        CRC32C crc = new CRC32C();
        long from = offset + ATTRIBUTES;
        long len = sizeInBytes() - ATTRIBUTES;
        crc.update(segment.asSlice(from, len).asByteBuffer());
        return (int) crc.getValue();
    }

    /** Rewrites the CRC after changing a field inside its coverage (e.g. maxTimestamp for LogAppendTime). */
    public void updateCrc() {
        segment.set(INT, offset + CRC, computeCrc());
    }

    /**
     * Validates the batch with {@code available} bytes from its start: length consistency, magic, CRC and
     * record count. {@code strictCount} demands recordsCount == lastOffsetDelta + 1 (a producer's batch);
     * compacted batches on disk may hold fewer records than their offset span.
     */
    public Check check(long available, boolean strictCount) {
        if (available < HEADER_BYTES) {
            return Check.TRUNCATED;
        }
        int length = batchLength();
        if (length < HEADER_BYTES - LOG_OVERHEAD) {
            return Check.BAD_LENGTH;
        }
        if ((long) length + LOG_OVERHEAD > available) {
            return Check.TRUNCATED;
        }
        if (magic() != CURRENT_MAGIC) {
            return Check.BAD_MAGIC;
        }
        int delta = lastOffsetDelta();
        int count = recordsCount();
        if (delta < 0 || count < 0 || (strictCount ? count != delta + 1L : count > delta + 1L)) {
            return Check.BAD_COUNT;
        }
        if (computeCrc() != crc()) {
            return Check.BAD_CRC;
        }
        return Check.OK;
    }

    /**
     * {@link #check} of the batch at {@code pos} of a fragment chain, with {@code available} bytes from there: the
     * same rules, read where the bytes lie (the CRC across fragments). Owner thread of the chain.
     */
    public static Check check(IoBuf chain, long pos, long available, boolean strictCount) {
        return new BatchBytes.Chained().wrap(chain).check(pos, available, strictCount);
    }

    @Override
    public String toString() {
        return "RecordBatch{baseOffset=" + baseOffset() + ", lastOffset=" + lastOffset() + ", size=" + sizeInBytes()
            + ", epoch=" + partitionLeaderEpoch() + ", records=" + recordsCount() + "}";
    }
}
