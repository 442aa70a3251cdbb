package dev.isthmus.log;

import dev.isthmus.uring.CompletionHandler;
import dev.isthmus.uring.Verify;

import java.lang.foreign.MemorySegment;

/**
 * A resumable walk over the batches of one sealed segment, one batch per {@link #next()} call, reading the
 * file in aligned windows with direct I/O. Unlike {@link SegmentScanner}, which runs through a whole window
 * in one go, the caller decides how many batches it handles per shard loop turn: background work (compaction)
 * stays within its per-turn budget and never holds the loop. Every batch is validated (lengths, magic,
 * CRC-32C, increasing offsets) before it is handed out.
 *
 * <p>Reads are counted as reads of the segment ({@link Log#readStarted}), so the log neither closes nor
 * deletes the file under one. Owner: the shard thread.
 */
final class BatchStream implements CompletionHandler {
    /** {@link #next()} results. */
    static final int BATCH = 0;
    static final int WAIT = 1;
    static final int END = 2;
    static final int INVALID = 3;
    static final int ERROR = 4;

    private final MemorySegment window;
    private final RecordBatch batch = new RecordBatch();
    private Log log;
    private Segment seg;
    private int alignment;
    private long limit;
    private long position;
    private long windowStart;
    private long windowBytes;
    private long lastOffset;
    private boolean reading;
    private int errno;

    /** @param window aligned memory larger than the largest batch plus one alignment unit */
    BatchStream(MemorySegment window) {
        this.window = window;
    }

    /** Starts a walk of {@code s} from position 0 to its size. */
    void reset(Log owner, Segment s) {
        Verify.that(!reading, "batch stream reset with a read in flight");
        this.log = owner;
        this.seg = s;
        this.alignment = Math.max(4096, s.file.alignment());
        this.limit = s.size;
        this.position = 0;
        this.windowStart = -1;
        this.windowBytes = 0;
        this.lastOffset = -1;
        this.errno = 0;
    }

    Segment segment() {
        return seg;
    }

    /** Whether a read is in flight (the stream must not be dropped before it completes). */
    boolean reading() {
        return reading;
    }

    /** File position of the current batch. */
    long position() {
        return position;
    }

    /** The current batch (valid after {@link #next()} returned {@link #BATCH}, until {@link #advance()}). */
    RecordBatch batch() {
        return batch;
    }

    int errno() {
        return errno;
    }

    /** The next batch ({@link #BATCH}), or why there is none now: {@link #WAIT} (a read was issued), END, INVALID, ERROR. */
    int next() {
        if (reading) {
            return WAIT;
        }
        if (errno != 0) {
            return ERROR;
        }
        if (position >= limit) {
            return END;
        }
        long need = Math.min(RecordBatch.HEADER_BYTES, limit - position);
        if (!inWindow(position, need)) {
            return refill();
        }
        if (need < RecordBatch.HEADER_BYTES) {
            return INVALID;
        }
        batch.wrap(window, position - windowStart);
        long size = (long) batch.batchLength() + RecordBatch.LOG_OVERHEAD;
        if (batch.batchLength() < RecordBatch.HEADER_BYTES - RecordBatch.LOG_OVERHEAD || position + size > limit
            || size + alignment > window.byteSize()) {
            return INVALID;
        }
        if (!inWindow(position, size)) {
            return refill();
        }
        if (batch.check(size, false) != RecordBatch.Check.OK || batch.baseOffset() <= lastOffset) {
            return INVALID;
        }
        return BATCH;
    }

    /** Moves past the current batch. */
    void advance() {
        lastOffset = batch.lastOffset();
        position += batch.sizeInBytes();
    }

    private boolean inWindow(long pos, long length) {
        return windowStart >= 0 && pos >= windowStart && pos + length <= windowStart + windowBytes;
    }

    private int refill() {
        long start = position - position % alignment;
        if (start == windowStart && windowBytes > 0) {
            return INVALID; // the window starts at this batch and still lacks it: the file is shorter than recorded
        }
        windowStart = start;
        long length = Math.min(window.byteSize(), (limit - windowStart + alignment - 1) / alignment * alignment);
        log.readStarted(seg);
        long r = seg.file.read(window.asSlice(0, length), windowStart, this, 0);
        if (r < 0) {
            log.readDone(seg);
            errno = (int) r;
            return ERROR;
        }
        reading = true;
        return WAIT;
    }

    @Override
    public void onComplete(int result, int flags, long attachment) {
        reading = false;
        if (result < 0) {
            errno = result;
        } else {
            windowBytes = result;
        }
        log.readDone(seg);
    }
}
