package dev.isthmus.raft.storage;

import dev.isthmus.log.BatchBuilder;
import dev.isthmus.log.RecordBatch;
import dev.isthmus.raft.Payload;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A {@link Payload} that is exactly one Kafka v2 record batch: what a partition's Raft group replicates, and
 * what {@link LogEngineRaftLog} stores as is (the log stamps the batch's baseOffset and partitionLeaderEpoch,
 * fields outside its CRC, into its own copy). The entry covers {@code lastOffsetDelta + 1} offsets.
 *
 * <p>Immutable once built; the array is not copied: callers hand it over. Thread: any (it is a value).
 */
public final class KafkaBatchPayload implements Payload {
    private final byte[] bytes;
    private final int recordCount;

    /**
     * Wraps one v2 batch.
     *
     * @throws IllegalArgumentException when {@code bytes} is not exactly one well-formed v2 batch header
     */
    public KafkaBatchPayload(byte[] bytes) {
        if (bytes == null || bytes.length < RecordBatch.HEADER_BYTES) {
            throw new IllegalArgumentException("a record batch needs at least " + RecordBatch.HEADER_BYTES
                + " bytes, not " + (bytes == null ? "null" : bytes.length));
        }
        RecordBatch b = new RecordBatch().wrap(MemorySegment.ofArray(bytes), 0);
        if (b.magic() != RecordBatch.CURRENT_MAGIC) {
            throw new IllegalArgumentException("record batch has magic " + b.magic() + "; only magic 2 is stored");
        }
        if (b.sizeInBytes() != bytes.length) {
            throw new IllegalArgumentException("payload of " + bytes.length + " bytes holds a batch of "
                + b.sizeInBytes() + " bytes; exactly one batch is expected");
        }
        if (b.lastOffsetDelta() < 0) {
            throw new IllegalArgumentException("record batch has lastOffsetDelta " + b.lastOffsetDelta());
        }
        this.bytes = bytes;
        this.recordCount = b.lastOffsetDelta() + 1;
    }

    /** A batch of uncompressed records with the given values (null keys), for controller commands and tests. */
    public static KafkaBatchPayload ofValues(long timestampMs, byte[]... values) {
        if (values.length == 0) {
            throw new IllegalArgumentException("a batch needs at least one record");
        }
        long size = RecordBatch.HEADER_BYTES;
        for (byte[] v : values) {
            size += v.length + 32;
        }
        byte[] buf = new byte[(int) size];
        BatchBuilder b = new BatchBuilder(MemorySegment.ofArray(buf), 0, 0);
        for (byte[] v : values) {
            b.add(timestampMs, null, v);
        }
        return new KafkaBatchPayload(Arrays.copyOf(buf, b.build()));
    }

    /** The batch bytes (not a copy; do not modify). */
    public byte[] bytes() {
        return bytes;
    }

    @Override
    public int sizeBytes() {
        return bytes.length;
    }

    @Override
    public int recordCount() {
        return recordCount;
    }

    /** Equality by the batch's content, ignoring the stamped baseOffset and partitionLeaderEpoch. */
    @Override
    public boolean equals(Object o) {
        if (!(o instanceof KafkaBatchPayload p) || p.bytes.length != bytes.length) {
            return false;
        }
        return Arrays.equals(bytes, RecordBatch.BATCH_LENGTH, RecordBatch.PARTITION_LEADER_EPOCH, p.bytes,
            RecordBatch.BATCH_LENGTH, RecordBatch.PARTITION_LEADER_EPOCH)
            && Arrays.equals(bytes, RecordBatch.MAGIC, bytes.length, p.bytes, RecordBatch.MAGIC, bytes.length);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(Arrays.copyOfRange(bytes, RecordBatch.MAGIC, bytes.length));
    }

    @Override
    public String toString() {
        return "KafkaBatchPayload[" + bytes.length + " bytes, " + recordCount + " records]";
    }
}
