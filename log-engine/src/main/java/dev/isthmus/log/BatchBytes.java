package dev.isthmus.log;

import dev.isthmus.arena.IoBuf;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.zip.CRC32C;

/**
 * The bytes of an append, whichever form they came in: one contiguous {@link MemorySegment} or an
 * {@link IoBuf} fragment chain. Validation, offset stamping, the copy into write-behind chunks and the copy
 * into the batch cache are written once against this view, so the two {@code Log.append} forms share every
 * line of logic. A chain is read where it lies, fragment by fragment: it is never linearised.
 *
 * <p>Each {@link Log} keeps one reusable instance of each form (re-pointed per append, no allocation).
 * Owner: the log's shard thread.
 */
abstract sealed class BatchBytes permits BatchBytes.Contiguous, BatchBytes.Chained {
    static final ValueLayout.OfLong LONG = RecordBatch.LONG;
    static final ValueLayout.OfInt INT = RecordBatch.INT;
    static final ValueLayout.OfShort SHORT = RecordBatch.SHORT;

    abstract byte getByte(long pos);

    abstract short getShort(long pos);

    abstract int getInt(long pos);

    abstract long getLong(long pos);

    abstract void setInt(long pos, int v);

    abstract void setLong(long pos, long v);

    /** CRC-32C of {@code length} bytes at {@code pos}. */
    abstract int crc32c(long pos, long length);

    /** Copies {@code length} bytes at {@code pos} into {@code dst} at {@code dstOffset}. */
    abstract void copyTo(long pos, MemorySegment dst, long dstOffset, long length);

    /**
     * Validates the batch at {@code pos} with {@code available} bytes from there: lengths, magic, record count
     * and CRC-32C, as {@link RecordBatch#check} does for contiguous memory.
     */
    final RecordBatch.Check check(long pos, long available, boolean strictCount) {
        return check(pos, available, strictCount, true);
    }

    /**
     * {@link #check(long, long, boolean)}, with the CRC-32C only when {@code crc}: without it, the header checks
     * alone (lengths, magic, record count), for a batch whose CRC its caller checked since the bytes arrived.
     */
    final RecordBatch.Check check(long pos, long available, boolean strictCount, boolean crc) {
        if (available < RecordBatch.HEADER_BYTES) {
            return RecordBatch.Check.TRUNCATED;
        }
        int length = getInt(pos + RecordBatch.BATCH_LENGTH);
        if (length < RecordBatch.HEADER_BYTES - RecordBatch.LOG_OVERHEAD) {
            return RecordBatch.Check.BAD_LENGTH;
        }
        if ((long) length + RecordBatch.LOG_OVERHEAD > available) {
            return RecordBatch.Check.TRUNCATED;
        }
        if (getByte(pos + RecordBatch.MAGIC) != RecordBatch.CURRENT_MAGIC) {
            return RecordBatch.Check.BAD_MAGIC;
        }
        int delta = getInt(pos + RecordBatch.LAST_OFFSET_DELTA);
        int count = getInt(pos + RecordBatch.RECORDS_COUNT);
        if (delta < 0 || count < 0 || (strictCount ? count != delta + 1L : count > delta + 1L)) {
            return RecordBatch.Check.BAD_COUNT;
        }
        long crcLength = (long) length + RecordBatch.LOG_OVERHEAD - RecordBatch.ATTRIBUTES;
        if (crc && crc32c(pos + RecordBatch.ATTRIBUTES, crcLength) != getInt(pos + RecordBatch.CRC)) {
            return RecordBatch.Check.BAD_CRC;
        }
        return RecordBatch.Check.OK;
    }

    /** Contiguous memory. */
    static final class Contiguous extends BatchBytes {
        /** Made on the first CRC asked for (a segment reader that checks headers only never needs one). */
        private CRC32C crc;
        private MemorySegment segment;
        /** A buffer view of the last segment wrapped, reused while callers append from the same memory. */
        private MemorySegment viewed;
        private java.nio.ByteBuffer view;

        Contiguous wrap(MemorySegment s) {
            this.segment = s;
            return this;
        }

        void clear() {
            segment = null;
        }

        @Override
        byte getByte(long pos) {
            return segment.get(ValueLayout.JAVA_BYTE, pos);
        }

        @Override
        short getShort(long pos) {
            return segment.get(SHORT, pos);
        }

        @Override
        int getInt(long pos) {
            return segment.get(INT, pos);
        }

        @Override
        long getLong(long pos) {
            return segment.get(LONG, pos);
        }

        @Override
        void setInt(long pos, int v) {
            segment.set(INT, pos, v);
        }

        @Override
        void setLong(long pos, long v) {
            segment.set(LONG, pos, v);
        }

        @Override
        int crc32c(long pos, long length) {
            if (crc == null) {
                crc = new CRC32C();
            }
            if (segment != viewed || segment.byteSize() > Integer.MAX_VALUE) {
                if (segment.byteSize() > Integer.MAX_VALUE) {
                    crc.reset();
                    crc.update(segment.asSlice(pos, length).asByteBuffer());
                    return (int) crc.getValue();
                }
                viewed = segment;
                view = segment.asByteBuffer();
            }
            view.limit((int) (pos + length)).position((int) pos);
            crc.reset();
            crc.update(view);
            return (int) crc.getValue();
        }

        @Override
        void copyTo(long pos, MemorySegment dst, long dstOffset, long length) {
            MemorySegment.copy(segment, pos, dst, dstOffset, length);
        }
    }

    /** A fragment chain. */
    static final class Chained extends BatchBytes {
        private IoBuf chain;

        Chained wrap(IoBuf c) {
            this.chain = c;
            return this;
        }

        IoBuf chain() {
            return chain;
        }

        void clear() {
            chain = null;
        }

        @Override
        byte getByte(long pos) {
            return chain.getByte(pos);
        }

        @Override
        short getShort(long pos) {
            return chain.getShort(pos);
        }

        @Override
        int getInt(long pos) {
            return chain.getInt(pos);
        }

        @Override
        long getLong(long pos) {
            return chain.getLong(pos);
        }

        @Override
        void setInt(long pos, int v) {
            chain.setInt(pos, v);
        }

        @Override
        void setLong(long pos, long v) {
            chain.setLong(pos, v);
        }

        @Override
        int crc32c(long pos, long length) {
            return chain.crc32c(pos, length);
        }

        @Override
        void copyTo(long pos, MemorySegment dst, long dstOffset, long length) {
            chain.copyTo(pos, dst, dstOffset, length);
        }
    }
}
