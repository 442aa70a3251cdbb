package dev.isthmus.log;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Walks the records of an uncompressed v2 batch in place (no copies): each record is
 * {@code length varint, attributes i8, timestampDelta varlong, offsetDelta varint, key, value, headers}.
 * Compressed batches are opaque here (the broker stores them as they came).
 */
public final class Records {
    private MemorySegment seg;
    private long pos;
    private long end;
    private long baseTimestamp;
    /** The batch's max timestamp when its timestamp type is LogAppendTime (every record has it), else -1. */
    private long logAppendTime;
    private long baseOffset;
    private int remaining;
    // The current record.
    private long recordStart;
    private long recordEnd;
    private long tailPos;
    private byte attributes;
    private long timestampDelta;
    private int offsetDelta;
    private long timestamp;
    private long offset;
    private long keyPos;
    private int keyLength;
    private long valuePos;
    private int valueLength;

    /** Points at the records of {@code batch} (uncompressed); returns false for a compressed batch. */
    public boolean wrap(RecordBatch batch) {
        if (batch.compression() != 0) {
            return false;
        }
        this.seg = batch.segment();
        this.pos = batch.position() + RecordBatch.HEADER_BYTES;
        this.end = batch.position() + batch.sizeInBytes();
        this.baseTimestamp = batch.baseTimestamp();
        this.logAppendTime = (batch.attributes() & RecordBatch.TIMESTAMP_TYPE_BIT) != 0 ? batch.maxTimestamp() : -1;
        this.baseOffset = batch.baseOffset();
        this.remaining = batch.recordsCount();
        return true;
    }

    /** Advances to the next record; false at the end. Throws {@link LogException} on malformed records. */
    public boolean next() {
        if (remaining == 0) {
            return false;
        }
        remaining--;
        recordStart = pos;
        int length = (int) readVarlong();
        recordEnd = pos + length;
        if (length < 0 || recordEnd > end) {
            throw new LogException(LogException.Kind.CORRUPT_MESSAGE, "record length " + length + " overruns its batch");
        }
        attributes = seg.get(ValueLayout.JAVA_BYTE, pos++);
        timestampDelta = readVarlong();
        // In a LogAppendTime batch every record's timestamp is the append time the broker stamped (Kafka's rule).
        timestamp = logAppendTime >= 0 ? logAppendTime : baseTimestamp + timestampDelta;
        offsetDelta = (int) readVarlong();
        offset = baseOffset + offsetDelta;
        tailPos = pos;
        keyLength = (int) readVarlong();
        keyPos = pos;
        if (keyLength > 0 && pos + keyLength > recordEnd) {
            throw new LogException(LogException.Kind.CORRUPT_MESSAGE, "record key of " + keyLength + " bytes overruns its record");
        }
        pos += Math.max(0, keyLength);
        valueLength = (int) readVarlong();
        valuePos = pos;
        if (valueLength > 0 && pos + valueLength > recordEnd) {
            throw new LogException(LogException.Kind.CORRUPT_MESSAGE, "record value of " + valueLength
                + " bytes overruns its record");
        }
        pos = recordEnd;
        return true;
    }

    /** The record's timestamp: the batch's append time in a LogAppendTime batch, else base timestamp + delta. */
    public long timestamp() {
        return timestamp;
    }

    public long offset() {
        return offset;
    }

    /** Key length, -1 for a null key. */
    public int keyLength() {
        return keyLength;
    }

    /** Value length, -1 for a null value (a tombstone). */
    public int valueLength() {
        return valueLength;
    }

    /** Where the current record starts (its length varint) in the wrapped memory. */
    long recordStart() {
        return recordStart;
    }

    /** Where the current record ends in the wrapped memory. */
    long recordEnd() {
        return recordEnd;
    }

    /** Where the current record's keyLength varint starts: key, value and headers follow unchanged to its end. */
    long tailPosition() {
        return tailPos;
    }

    byte attributes() {
        return attributes;
    }

    long timestampDelta() {
        return timestampDelta;
    }

    int offsetDelta() {
        return offsetDelta;
    }

    /** Position of the key bytes in the wrapped memory (valid when {@link #keyLength()} >= 0). */
    long keyPosition() {
        return keyPos;
    }

    /** The memory the records are read from. */
    MemorySegment memory() {
        return seg;
    }

    public MemorySegment key() {
        return keyLength < 0 ? null : seg.asSlice(keyPos, keyLength);
    }

    public MemorySegment value() {
        return valueLength < 0 ? null : seg.asSlice(valuePos, valueLength);
    }

    /** Zig-zag varlong (also reads varints). */
    private long readVarlong() {
        long raw = 0;
        int shift = 0;
        while (true) {
            if (pos >= end || shift > 63) {
                throw new LogException(LogException.Kind.CORRUPT_MESSAGE, "malformed varint in a record");
            }
            byte b = seg.get(ValueLayout.JAVA_BYTE, pos++);
            raw |= (long) (b & 0x7F) << shift;
            if ((b & 0x80) == 0) {
                break;
            }
            shift += 7;
        }
        return (raw >>> 1) ^ -(raw & 1);
    }
}
