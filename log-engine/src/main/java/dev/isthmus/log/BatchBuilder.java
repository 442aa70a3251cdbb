package dev.isthmus.log;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Writes uncompressed Kafka v2 record batches (magic 2) into memory: Raft's own entries (no-op and
 * configuration batches, as control batches), internal topics, and tests. Producers' batches arrive
 * already encoded and are never rebuilt.
 *
 * <p>Record layout (varints are zig-zag, as Kafka's): length, attributes i8, timestampDelta varlong,
 * offsetDelta varint, keyLength varint (-1 = null), key, valueLength varint, value, headerCount varint.
 */
public final class BatchBuilder {
    private final MemorySegment dst;
    private final long start;
    private long position;
    private int count;
    private long baseTimestamp = -1;
    private long maxTimestamp = -1;
    private final long baseOffset;
    private short attributes;
    private long producerId = -1;
    private short producerEpoch = -1;
    private int baseSequence = -1;
    private int leaderEpoch = -1;

    /** Starts a batch at {@code dst[offset]} with base offset {@code baseOffset}. */
    public BatchBuilder(MemorySegment dst, long offset, long baseOffset) {
        this.dst = dst;
        this.start = offset;
        this.baseOffset = baseOffset;
        this.position = offset + RecordBatch.HEADER_BYTES;
    }

    public BatchBuilder control(boolean control) {
        attributes = (short) (control ? attributes | RecordBatch.CONTROL_BIT : attributes & ~RecordBatch.CONTROL_BIT);
        return this;
    }

    public BatchBuilder producer(long id, short epoch, int sequence) {
        this.producerId = id;
        this.producerEpoch = epoch;
        this.baseSequence = sequence;
        return this;
    }

    public BatchBuilder leaderEpoch(int epoch) {
        this.leaderEpoch = epoch;
        return this;
    }

    /** Appends a record; {@code key} or {@code value} may be null. */
    public BatchBuilder add(long timestamp, byte[] key, byte[] value) {
        if (baseTimestamp < 0) {
            baseTimestamp = timestamp;
        }
        maxTimestamp = Math.max(maxTimestamp, timestamp);
        int bodySize = 1 + varlongSize(timestamp - baseTimestamp) + varintSize(count)
            + (key == null ? varintSize(-1) : varintSize(key.length) + key.length)
            + (value == null ? varintSize(-1) : varintSize(value.length) + value.length)
            + varintSize(0);
        position = putVarint(position, bodySize);
        dst.set(ValueLayout.JAVA_BYTE, position++, (byte) 0);
        position = putVarlong(position, timestamp - baseTimestamp);
        position = putVarint(position, count);
        position = putBytes(position, key);
        position = putBytes(position, value);
        position = putVarint(position, 0);
        count++;
        return this;
    }

    /** Finishes the header (lengths, counts, CRC) and returns the batch's size in bytes. */
    public int build() {
        if (count == 0) {
            throw new IllegalStateException("a batch needs at least one record");
        }
        int size = (int) (position - start);
        dst.set(RecordBatch.LONG, start + RecordBatch.BASE_OFFSET, baseOffset);
        dst.set(RecordBatch.INT, start + RecordBatch.BATCH_LENGTH, size - RecordBatch.LOG_OVERHEAD);
        dst.set(RecordBatch.INT, start + RecordBatch.PARTITION_LEADER_EPOCH, leaderEpoch);
        dst.set(ValueLayout.JAVA_BYTE, start + RecordBatch.MAGIC, RecordBatch.CURRENT_MAGIC);
        dst.set(RecordBatch.SHORT, start + RecordBatch.ATTRIBUTES, attributes);
        dst.set(RecordBatch.INT, start + RecordBatch.LAST_OFFSET_DELTA, count - 1);
        dst.set(RecordBatch.LONG, start + RecordBatch.BASE_TIMESTAMP, baseTimestamp);
        dst.set(RecordBatch.LONG, start + RecordBatch.MAX_TIMESTAMP, maxTimestamp);
        dst.set(RecordBatch.LONG, start + RecordBatch.PRODUCER_ID, producerId);
        dst.set(RecordBatch.SHORT, start + RecordBatch.PRODUCER_EPOCH, producerEpoch);
        dst.set(RecordBatch.INT, start + RecordBatch.BASE_SEQUENCE, baseSequence);
        dst.set(RecordBatch.INT, start + RecordBatch.RECORDS_COUNT, count);
        new RecordBatch().wrap(dst, start).updateCrc();
        return size;
    }

    private long putBytes(long pos, byte[] b) {
        if (b == null) {
            return putVarint(pos, -1);
        }
        pos = putVarint(pos, b.length);
        MemorySegment.copy(b, 0, dst, ValueLayout.JAVA_BYTE, pos, b.length);
        return pos + b.length;
    }

    private long putVarint(long pos, int v) {
        return putUnsigned(pos, ((long) ((v << 1) ^ (v >> 31))) & 0xFFFFFFFFL);
    }

    private long putVarlong(long pos, long v) {
        return putUnsigned(pos, (v << 1) ^ (v >> 63));
    }

    private long putUnsigned(long pos, long v) {
        while ((v & ~0x7FL) != 0) {
            dst.set(ValueLayout.JAVA_BYTE, pos++, (byte) ((v & 0x7F) | 0x80));
            v >>>= 7;
        }
        dst.set(ValueLayout.JAVA_BYTE, pos++, (byte) v);
        return pos;
    }

    static int varintSize(int v) {
        return unsignedSize(((long) ((v << 1) ^ (v >> 31))) & 0xFFFFFFFFL);
    }

    static int varlongSize(long v) {
        return unsignedSize((v << 1) ^ (v >> 63));
    }

    private static int unsignedSize(long v) {
        int n = 1;
        while ((v & ~0x7FL) != 0) {
            n++;
            v >>>= 7;
        }
        return n;
    }
}
