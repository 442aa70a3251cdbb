package dev.isthmus.log;

import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.IoBufView;

import java.lang.foreign.MemorySegment;
import java.util.zip.CRC32C;

/**
 * Validates a record batch a client produced, as Kafka's {@code LogValidator} (with {@code DefaultRecordBatch} and
 * {@code DefaultRecord}) does before anything reaches the log: nothing a consumer cannot read gets past it.
 *
 * <h2>What is checked, in order</h2>
 * <ol>
 *   <li>The bytes are exactly one batch: at least a header, batchLength + 12 equal to what was sent (less is
 *       CORRUPT_MESSAGE, more is a second batch: INVALID_RECORD), magic 2 (else UNSUPPORTED_FOR_MESSAGE_FORMAT),
 *       within max.message.bytes (else MESSAGE_TOO_LARGE), CRC-32C of attributes to the end (CORRUPT_MESSAGE).</li>
 *   <li>Attributes as a producer may set them: codec 0-4 (5-7 name no codec: CORRUPT_MESSAGE); no control bit, no
 *       delete-horizon bit (6) or higher bits (INVALID_RECORD); the transactional bit only where transactions are
 *       served (else INVALID_TXN_STATE); the LogAppendTime bit is the broker's to set (INVALID_TIMESTAMP for every
 *       record, as Kafka answers on a CreateTime topic).</li>
 *   <li>Counts: lastOffsetDelta >= 0, recordsCount > 0 and equal to lastOffsetDelta + 1; a producer id with a
 *       negative base sequence is INVALID_RECORD.</li>
 *   <li>The records, walked in place for an uncompressed batch and decompressed (at most
 *       {@link Rules#maxUncompressedBytes}, else MESSAGE_TOO_LARGE; a damaged stream is CORRUPT_MESSAGE) and walked
 *       for a compressed one: each record's length varint, the varints and lengths of its fields and headers
 *       inside the record, its fields ending exactly at its length (a malformed varint or a length overrunning
 *       its record or batch is CORRUPT_MESSAGE); exactly recordsCount records and no byte after them
 *       (INVALID_RECORD); negative header counts or header key sizes (INVALID_RECORD).</li>
 *   <li>Per record, collected for every record (KIP-467's record errors: the index in the batch and a message):
 *       offset deltas 0, 1, ..., n-1 (INVALID_RECORD), a key on a compacted topic (INVALID_RECORD), timestamps
 *       within message.timestamp.before.max.ms / after.max.ms of now on a CreateTime topic (INVALID_TIMESTAMP;
 *       records with no timestamp, -1, pass).</li>
 * </ol>
 * On success the records' largest timestamp ({@link #maxTimestamp()}) is known, for the broker to stamp into the
 * header as Kafka does, and for a compressed batch its records stay decompressed in {@link #records()} for a
 * recompression.
 *
 * <h2>Threads and memory</h2>
 * One instance per shard, used by that shard's thread only: {@link #validate} re-points it at each batch and keeps
 * its results until the next call. An uncompressed batch is validated where it lies (an {@link IoBufView}
 * fragment chain, read through its random-access getters) with no allocation; error messages are made only on
 * failure. A compressed batch is copied into a scratch array and decompressed into a reusable {@link
 * Compression.Output}, both grown as needed and trimmed back after an unusually large batch.
 */
public final class BatchValidator {
    // Kafka error codes the validator answers with.
    public static final short NONE = 0;
    public static final short CORRUPT_MESSAGE = 2;
    public static final short MESSAGE_TOO_LARGE = 10;
    public static final short INVALID_TIMESTAMP = 32;
    public static final short UNSUPPORTED_FOR_MESSAGE_FORMAT = 43;
    public static final short INVALID_TXN_STATE = 48;
    public static final short INVALID_RECORD = 87;

    /** Record errors kept per batch (the first ones); the count of all is still reported. */
    public static final int MAX_RECORD_ERRORS = 100;
    /** Kafka's NO_TIMESTAMP: a record without a timestamp. */
    public static final long NO_TIMESTAMP = -1;
    private static final int DELETE_HORIZON_BIT = 0x40;
    private static final int KNOWN_ATTRIBUTE_BITS = 0x3F;
    /** The smallest record body: attributes and five one-byte varints (timestamp and offset deltas, key, value, headers). */
    private static final int MIN_RECORD_BODY_BYTES = 6;
    private static final int RETAINED_SCRATCH_BYTES = 1 << 20;

    /**
     * The topic's rules for produced batches; made when a topic's configs change, not per batch.
     *
     * @param maxMessageBytes        max.message.bytes: the largest batch as sent
     * @param maxUncompressedBytes   the most a compressed batch's records may inflate to
     * @param compact                cleanup.policy includes compact: every record needs a key
     * @param logAppendTime          message.timestamp.type=LogAppendTime: producers' timestamps are not checked
     * @param timestampBeforeMaxMs   message.timestamp.before.max.ms
     * @param timestampAfterMaxMs    message.timestamp.after.max.ms
     * @param allowTransactional     transactional batches are served (a transaction coordinator exists)
     */
    public record Rules(int maxMessageBytes, int maxUncompressedBytes, boolean compact, boolean logAppendTime,
                        long timestampBeforeMaxMs, long timestampAfterMaxMs, boolean allowTransactional) {
        public Rules {
            if (maxMessageBytes < RecordBatch.HEADER_BYTES || maxUncompressedBytes < 0 || timestampBeforeMaxMs < 0
                || timestampAfterMaxMs < 0) {
                throw new IllegalArgumentException("invalid batch rules: max.message.bytes " + maxMessageBytes
                    + ", uncompressed limit " + maxUncompressedBytes + ", timestamp bounds " + timestampBeforeMaxMs
                    + "/" + timestampAfterMaxMs);
            }
        }
    }

    // ---- the batch being validated
    private IoBufView chain;
    private long base;
    private byte[] array;
    private long end;
    // ---- results
    private short errorCode;
    private String message;
    private int recordErrorCount;
    private final int[] recordErrorIndex = new int[MAX_RECORD_ERRORS];
    private final String[] recordErrorMessage = new String[MAX_RECORD_ERRORS];
    private short recordErrorCode;
    private int codec;
    private int recordCount;
    private long maxTimestamp;
    private boolean decompressed;
    // ---- walk state
    private long pos;
    private boolean malformed;
    // ---- CRC without allocation
    private final CRC32C crc = new CRC32C();
    private final byte[] crcScratch = new byte[16 * 1024];
    private final MemorySegment crcScratchSegment = MemorySegment.ofArray(crcScratch);
    // ---- scratch for compressed batches
    private byte[] compressedScratch = new byte[0];
    private final Compression.Output records = new Compression.Output(64 * 1024);
    private final Compression.Output rebuilt = new Compression.Output(64 * 1024);

    /**
     * Validates the one batch held by {@code src[offset, offset + length)} (a produce request's records for one
     * partition) under {@code rules} at {@code nowMs}. Returns {@link #NONE} or the Kafka error code; the details
     * stay readable until the next call.
     */
    public short validate(IoBufView src, long offset, long length, Rules rules, long nowMs) {
        reset();
        if (length < RecordBatch.HEADER_BYTES) {
            return fail(CORRUPT_MESSAGE, "record set of " + length + " bytes is shorter than a batch header ("
                + RecordBatch.HEADER_BYTES + ")");
        }
        int batchLength = src.getInt(offset + RecordBatch.BATCH_LENGTH);
        long size = (long) batchLength + RecordBatch.LOG_OVERHEAD;
        if (batchLength < RecordBatch.HEADER_BYTES - RecordBatch.LOG_OVERHEAD || size > length) {
            return fail(CORRUPT_MESSAGE, "batchLength " + batchLength + " does not match the " + length
                + " bytes sent");
        }
        byte magic = src.getByte(offset + RecordBatch.MAGIC);
        if (magic != RecordBatch.CURRENT_MAGIC) {
            return fail(UNSUPPORTED_FOR_MESSAGE_FORMAT, "record batch magic " + magic
                + " is not supported; only magic 2 (Kafka 0.11+ clients)");
        }
        if (size < length) {
            return fail(INVALID_RECORD, "a produce request must carry exactly one record batch per partition (got "
                + length + " bytes, the first batch is " + size + ")");
        }
        if (size > rules.maxMessageBytes()) {
            return fail(MESSAGE_TOO_LARGE, "batch of " + size + " bytes is larger than max.message.bytes "
                + rules.maxMessageBytes());
        }
        long crcBytes = size - RecordBatch.ATTRIBUTES;
        if (crc32c(src, offset + RecordBatch.ATTRIBUTES, crcBytes) != src.getInt(offset + RecordBatch.CRC)) {
            return fail(CORRUPT_MESSAGE, "record batch CRC-32C mismatch");
        }
        int attributes = src.getShort(offset + RecordBatch.ATTRIBUTES) & 0xFFFF;
        codec = attributes & RecordBatch.COMPRESSION_MASK;
        Compression compression = Compression.ofId(codec);
        if (compression == null) {
            return fail(CORRUPT_MESSAGE, "batch attributes name compression codec " + codec
                + ", which does not exist (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)");
        }
        if ((attributes & RecordBatch.CONTROL_BIT) != 0) {
            return fail(INVALID_RECORD, "clients may not produce control batches");
        }
        if ((attributes & ~KNOWN_ATTRIBUTE_BITS) != 0) {
            return fail(INVALID_RECORD, "batch attributes 0x" + Integer.toHexString(attributes) + " set "
                + ((attributes & DELETE_HORIZON_BIT) != 0 ? "the delete-horizon bit, which only the log cleaner sets"
                : "bits no producer sets"));
        }
        if ((attributes & RecordBatch.TRANSACTIONAL_BIT) != 0 && !rules.allowTransactional()) {
            return fail(INVALID_TXN_STATE, "transactional batch without a transaction: this broker does not serve"
                + " transactions yet");
        }
        int lastOffsetDelta = src.getInt(offset + RecordBatch.LAST_OFFSET_DELTA);
        int count = src.getInt(offset + RecordBatch.RECORDS_COUNT);
        if (lastOffsetDelta < 0) {
            return fail(INVALID_RECORD, "batch has an invalid offset range: lastOffsetDelta " + lastOffsetDelta);
        }
        if (count <= 0) {
            return fail(INVALID_RECORD, "invalid reported count for record batch: " + count);
        }
        if (count != lastOffsetDelta + 1L) {
            return fail(INVALID_RECORD, "inconsistent batch: recordsCount " + count + " but lastOffsetDelta "
                + lastOffsetDelta + " (offsets 0-" + lastOffsetDelta + ")");
        }
        long producerId = src.getLong(offset + RecordBatch.PRODUCER_ID);
        int baseSequence = src.getInt(offset + RecordBatch.BASE_SEQUENCE);
        if (producerId >= 0 && baseSequence < 0) {
            return fail(INVALID_RECORD, "invalid sequence number " + baseSequence + " in a batch of producer "
                + producerId);
        }
        boolean batchLogAppendTime = (attributes & RecordBatch.TIMESTAMP_TYPE_BIT) != 0;
        long baseTimestamp = src.getLong(offset + RecordBatch.BASE_TIMESTAMP);

        if (compression == Compression.NONE) {
            this.chain = src;
            this.base = offset;
            this.end = offset + size;
            this.pos = offset + RecordBatch.HEADER_BYTES;
        } else {
            int compressedBytes = (int) (size - RecordBatch.HEADER_BYTES);
            if (compressedScratch.length < compressedBytes) {
                compressedScratch = new byte[Math.max(compressedBytes, 64 * 1024)];
            }
            src.copyTo(offset + RecordBatch.HEADER_BYTES, compressedScratch, 0, compressedBytes);
            try {
                compression.decompress(MemorySegment.ofArray(compressedScratch).asSlice(0, compressedBytes), records,
                    rules.maxUncompressedBytes());
            } catch (LogException e) {
                return fail(e.kind() == LogException.Kind.MESSAGE_TOO_LARGE ? MESSAGE_TOO_LARGE : CORRUPT_MESSAGE,
                    e.kind() == LogException.Kind.MESSAGE_TOO_LARGE
                        ? "the " + compression.configName + " records of the batch decompress to more than "
                        + rules.maxUncompressedBytes() + " bytes"
                        : "the " + compression.configName + " records of the batch cannot be decompressed: "
                        + e.getMessage());
            } finally {
                trimScratch();
            }
            decompressed = true;
            this.array = records.bytes();
            this.base = 0;
            this.end = records.size();
            this.pos = 0;
        }
        return walk(count, rules, nowMs, baseTimestamp, batchLogAppendTime);
    }

    /**
     * CRC-32C of {@code src[pos, pos + length)}, through a reused array (a chain's own {@code crc32c} makes a
     * buffer view per fragment): no allocation.
     */
    private int crc32c(IoBufView src, long pos, long length) {
        crc.reset();
        while (length > 0) {
            int n = (int) Math.min(length, crcScratch.length);
            src.copyTo(pos, crcScratchSegment, 0, n);
            crc.update(crcScratch, 0, n);
            pos += n;
            length -= n;
        }
        return (int) crc.getValue();
    }

    private void trimScratch() {
        if (compressedScratch.length > RETAINED_SCRATCH_BYTES) {
            compressedScratch = new byte[RETAINED_SCRATCH_BYTES];
        }
    }

    /** Walks {@code count} records from {@link #pos} to {@link #end}. */
    private short walk(int count, Rules rules, long nowMs, long baseTimestamp, boolean batchLogAppendTime) {
        long lower = nowMs - rules.timestampBeforeMaxMs(); // both >= 0: cannot overflow
        long upper = rules.timestampAfterMaxMs() > Long.MAX_VALUE - nowMs ? Long.MAX_VALUE
            : nowMs + rules.timestampAfterMaxMs();
        long maxTs = NO_TIMESTAMP;
        for (int i = 0; i < count; i++) {
            if (pos >= end) {
                recordError(INVALID_RECORD, i, "the batch ends after " + i + " of its " + count + " records");
                return finishRecordErrors(count);
            }
            long recordStart = pos;
            int length = readVarint(end);
            if (malformed) {
                return fail(CORRUPT_MESSAGE, "record " + i + " at byte " + (recordStart - base)
                    + ": malformed length varint");
            }
            if (length < MIN_RECORD_BODY_BYTES || length > end - pos) {
                return fail(CORRUPT_MESSAGE, "record " + i + " at byte " + (recordStart - base) + ": length " + length
                    + (length < MIN_RECORD_BODY_BYTES ? " is too small for a record"
                    : " overruns the batch (" + (end - pos) + " bytes left)"));
            }
            long recordEnd = pos + length;
            pos++; // record attributes: unused in v2, any value is read the same
            long timestampDelta = readVarlong(recordEnd);
            int offsetDelta = readVarint(recordEnd);
            int keyLength = readVarint(recordEnd);
            if (!malformed) {
                skipBytes(keyLength, recordEnd);
            }
            int valueLength = malformed ? 0 : readVarint(recordEnd);
            if (!malformed) {
                skipBytes(valueLength, recordEnd);
            }
            if (malformed) {
                return fail(CORRUPT_MESSAGE, "record " + i + " at byte " + (recordStart - base)
                    + ": malformed varint or a key or value overrunning its record");
            }
            int headers = readVarint(recordEnd);
            if (malformed) {
                return fail(CORRUPT_MESSAGE, "record " + i + ": malformed header count varint");
            }
            if (headers < 0) {
                recordError(INVALID_RECORD, i, "invalid number of record headers: " + headers);
                return finishRecordErrors(count);
            }
            for (int h = 0; h < headers; h++) {
                int keyBytes = readVarint(recordEnd);
                if (!malformed && keyBytes < 0) {
                    recordError(INVALID_RECORD, i, "header " + h + " has a negative key size " + keyBytes);
                    return finishRecordErrors(count);
                }
                if (!malformed) {
                    skipBytes(keyBytes, recordEnd);
                }
                int valueBytes = malformed ? 0 : readVarint(recordEnd);
                if (!malformed) {
                    skipBytes(valueBytes, recordEnd);
                }
                if (malformed) {
                    return fail(CORRUPT_MESSAGE, "record " + i + ": header " + h + " is malformed or overruns its"
                        + " record");
                }
            }
            if (pos != recordEnd) {
                return fail(CORRUPT_MESSAGE, "record " + i + ": its fields take " + (pos - recordStart)
                    + " bytes but its length says " + (recordEnd - recordStart));
            }
            // The record is well formed; its content must also be acceptable.
            if (offsetDelta != i) {
                recordError(INVALID_RECORD, i, "offset delta " + offsetDelta + " where " + i
                    + " was expected (offset deltas run 0, 1, ... in a batch)");
            }
            if (rules.compact() && keyLength < 0) {
                recordError(INVALID_RECORD, i, "compacted topic cannot accept a record without a key");
            }
            long timestamp = baseTimestamp + timestampDelta;
            if (batchLogAppendTime) {
                recordError(INVALID_TIMESTAMP, i, "invalid timestamp type: producers may not set the timestamp"
                    + " type to LogAppendTime");
            } else if (!rules.logAppendTime() && timestamp != NO_TIMESTAMP && (timestamp < lower || timestamp > upper)) {
                recordError(INVALID_TIMESTAMP, i, "timestamp " + timestamp + " of the record is out of range; it"
                    + " should be within [" + lower + ", " + upper + "]");
            }
            if (timestamp > maxTs) {
                maxTs = timestamp;
            }
            pos = recordEnd;
        }
        if (pos != end) {
            return fail(INVALID_RECORD, "incorrect declared batch size: " + (end - pos) + " bytes remain after its "
                + count + " records");
        }
        if (recordErrorCount > 0) {
            return finishRecordErrors(count);
        }
        recordCount = count;
        maxTimestamp = maxTs;
        return NONE;
    }

    private short finishRecordErrors(int count) {
        errorCode = recordErrorCode;
        if (recordErrorCode == INVALID_TIMESTAMP) {
            message = "One or more records have been rejected due to invalid timestamp (" + recordErrorCount
                + " of " + count + " records): " + recordErrorMessage[0];
        } else {
            StringBuilder b = new StringBuilder("One or more records have been rejected due to ")
                .append(recordErrorCount).append(" record errors in total, and only showing the first three errors"
                    + " at most: [");
            for (int k = 0; k < Math.min(3, Math.min(recordErrorCount, MAX_RECORD_ERRORS)); k++) {
                b.append(k == 0 ? "" : ", ").append("record ").append(recordErrorIndex[k]).append(": ")
                    .append(recordErrorMessage[k]);
            }
            message = b.append(']').toString();
        }
        return errorCode;
    }

    private void recordError(short code, int index, String text) {
        // INVALID_TIMESTAMP wins, as in Kafka: any timestamp error makes the batch's error INVALID_TIMESTAMP.
        if (recordErrorCode != INVALID_TIMESTAMP) {
            recordErrorCode = code;
        }
        if (recordErrorCount < MAX_RECORD_ERRORS) {
            recordErrorIndex[recordErrorCount] = index;
            recordErrorMessage[recordErrorCount] = text;
        }
        recordErrorCount++;
    }

    private short fail(short code, String text) {
        errorCode = code;
        message = text;
        recordErrorCount = 0;
        return code;
    }

    private void reset() {
        chain = null;
        array = null;
        errorCode = NONE;
        message = null;
        for (int k = 0; k < Math.min(recordErrorCount, MAX_RECORD_ERRORS); k++) {
            recordErrorMessage[k] = null;
        }
        recordErrorCount = 0;
        recordErrorCode = NONE;
        codec = 0;
        recordCount = 0;
        maxTimestamp = NO_TIMESTAMP;
        decompressed = false;
        malformed = false;
        if (records.bytes().length > RETAINED_SCRATCH_BYTES) {
            records.trim(64 * 1024);
        }
        if (rebuilt.bytes().length > RETAINED_SCRATCH_BYTES) {
            rebuilt.trim(64 * 1024);
        }
        records.reset();
    }

    // ------------------------------------------------------------------------------------------ reading

    private byte byteAt(long p) {
        return array != null ? array[(int) p] : chain.getByte(p);
    }

    /** Advances over {@code n} bytes of a key, value or header (-1 = null) that must lie before {@code limit}. */
    private void skipBytes(int n, long limit) {
        if (n < -1 || (n > 0 && n > limit - pos)) {
            malformed = true;
            return;
        }
        if (n > 0) {
            pos += n;
        }
    }

    /** A zig-zag varint (at most 5 bytes) before {@code limit}; sets {@link #malformed} when it is not one. */
    private int readVarint(long limit) {
        int raw = 0;
        for (int shift = 0; shift < 35; shift += 7) {
            if (pos >= limit) {
                malformed = true;
                return 0;
            }
            byte b = byteAt(pos++);
            if (shift == 28 && (b & 0xF0) != 0) {
                malformed = true; // a fifth byte may carry only the top four bits
                return 0;
            }
            raw |= (b & 0x7F) << shift;
            if ((b & 0x80) == 0) {
                return (raw >>> 1) ^ -(raw & 1);
            }
        }
        malformed = true;
        return 0;
    }

    /** A zig-zag varlong (at most 10 bytes) before {@code limit}; sets {@link #malformed} when it is not one. */
    private long readVarlong(long limit) {
        long raw = 0;
        for (int shift = 0; shift < 70; shift += 7) {
            if (pos >= limit) {
                malformed = true;
                return 0;
            }
            byte b = byteAt(pos++);
            if (shift == 63 && (b & 0xFE) != 0) {
                malformed = true; // a tenth byte may carry only the top bit
                return 0;
            }
            raw |= (long) (b & 0x7F) << shift;
            if ((b & 0x80) == 0) {
                return (raw >>> 1) ^ -(raw & 1);
            }
        }
        malformed = true;
        return 0;
    }

    // ------------------------------------------------------------------------------------------ results

    /** The last validation's error code ({@link #NONE} when it passed). */
    public short errorCode() {
        return errorCode;
    }

    /** What is wrong, in a sentence, or null when the batch passed. */
    public String message() {
        return message;
    }

    /** How many records had errors (0 for a batch-level error); at most {@link #MAX_RECORD_ERRORS} are kept. */
    public int recordErrorCount() {
        return recordErrorCount;
    }

    /** The number of record errors kept ({@code min(recordErrorCount(), MAX_RECORD_ERRORS)}). */
    public int recordErrorsKept() {
        return Math.min(recordErrorCount, MAX_RECORD_ERRORS);
    }

    /** The index in the batch of the {@code k}th kept record error. */
    public int recordErrorIndex(int k) {
        return recordErrorIndex[k];
    }

    /** The message of the {@code k}th kept record error. */
    public String recordErrorMessage(int k) {
        return recordErrorMessage[k];
    }

    /** The batch's codec id (attributes bits 0-2). */
    public int codec() {
        return codec;
    }

    /** Records in the batch (after a successful validation). */
    public int recordCount() {
        return recordCount;
    }

    /** The largest record timestamp ({@link #NO_TIMESTAMP} when no record has one), after a successful validation. */
    public long maxTimestamp() {
        return maxTimestamp;
    }

    /**
     * The uncompressed records area of the last validated batch, if it was compressed (decompressed while
     * validating); null for an uncompressed one. Valid until the next call.
     */
    public Compression.Output records() {
        return decompressed ? records : null;
    }

    // ------------------------------------------------------------------------------------------ rewriting

    /**
     * The validated batch at {@code src[offset, ...)} rebuilt with its records compressed by {@code target} (or
     * uncompressed for {@link Compression#NONE}): the header is copied with the codec bits replaced and its length
     * and CRC redone; offsets, producer id, epoch, sequence and timestamps are unchanged. Returned in this
     * validator's own buffer, valid until the next call. Call after a successful {@link #validate} of that batch.
     */
    public Compression.Output recompress(IoBufView src, long offset, Compression target) {
        Compression.Output out = rebuilt;
        int size = src.getInt(offset + RecordBatch.BATCH_LENGTH) + RecordBatch.LOG_OVERHEAD;
        byte[] plain;
        int plainBytes;
        if (decompressed) {
            plain = records.bytes();
            plainBytes = records.size();
        } else {
            plainBytes = size - RecordBatch.HEADER_BYTES;
            if (compressedScratch.length < plainBytes) {
                compressedScratch = new byte[plainBytes];
            }
            src.copyTo(offset + RecordBatch.HEADER_BYTES, compressedScratch, 0, plainBytes);
            plain = compressedScratch;
        }
        Compression.Output body = new Compression.Output(Math.max(64, plainBytes / 2));
        int n = target.compress(plain, 0, plainBytes, body);
        if (!decompressed) {
            trimScratch();
        }
        out.reset();
        out.ensureRoom(RecordBatch.HEADER_BYTES + n);
        byte[] dst = out.bytes();
        src.copyTo(offset, dst, 0, RecordBatch.HEADER_BYTES);
        System.arraycopy(body.bytes(), 0, dst, RecordBatch.HEADER_BYTES, n);
        MemorySegment batch = MemorySegment.ofArray(dst);
        batch.set(RecordBatch.INT, RecordBatch.BATCH_LENGTH, RecordBatch.HEADER_BYTES + n - RecordBatch.LOG_OVERHEAD);
        short attributes = batch.get(RecordBatch.SHORT, RecordBatch.ATTRIBUTES);
        batch.set(RecordBatch.SHORT, RecordBatch.ATTRIBUTES,
            (short) ((attributes & ~RecordBatch.COMPRESSION_MASK) | target.id));
        out.setSize(RecordBatch.HEADER_BYTES + n);
        new RecordBatch().wrap(batch, 0).updateCrc();
        return out;
    }

    /**
     * Sets the batch's timestamp type and max timestamp as the broker decides them (Kafka's {@code setMaxTimestamp}):
     * LogAppendTime with the append time, or CreateTime with the records' largest timestamp; rewrites the CRC when
     * either changed. Returns whether the batch changed.
     */
    public static boolean stampTimestamps(IoBuf batch, long offset, boolean logAppendTime, long maxTimestamp) {
        short attributes = batch.getShort(offset + RecordBatch.ATTRIBUTES);
        short wanted = (short) (logAppendTime ? attributes | RecordBatch.TIMESTAMP_TYPE_BIT
            : attributes & ~RecordBatch.TIMESTAMP_TYPE_BIT);
        if (wanted == attributes && batch.getLong(offset + RecordBatch.MAX_TIMESTAMP) == maxTimestamp) {
            return false;
        }
        batch.setShort(offset + RecordBatch.ATTRIBUTES, wanted);
        batch.setLong(offset + RecordBatch.MAX_TIMESTAMP, maxTimestamp);
        int size = batch.getInt(offset + RecordBatch.BATCH_LENGTH) + RecordBatch.LOG_OVERHEAD;
        batch.setInt(offset + RecordBatch.CRC, batch.crc32c(offset + RecordBatch.ATTRIBUTES,
            size - RecordBatch.ATTRIBUTES));
        return true;
    }
}
