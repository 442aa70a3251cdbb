package dev.isthmus.log;

import dev.isthmus.ffi.Errno;
import dev.isthmus.uring.CompletionHandler;

import java.lang.foreign.MemorySegment;

/**
 * One read of a {@link Log}: starting at the sparse index's position for the requested offset, reads an
 * aligned window with direct I/O, skips batches before the offset, and hands over the run of whole
 * batches that fits the byte limit and the bound. A batch that crosses the window's end is re-read at the
 * start of a new window; one larger than a window is read into a {@link LargeBuffer} of its size. Owner: the
 * log's thread.
 */
final class LogReader implements CompletionHandler {
    private final Log log;
    private final Segment seg;
    private final int windowId;
    private MemorySegment window;
    /** The buffer of a batch larger than the pool's windows, while one is used; freed when the read ends. */
    private LargeBuffer large;
    private final long fromOffset;
    private final long bound;
    private final int maxBytes;
    private final Log.ReadHandler handler;
    private final RecordBatch batch = new RecordBatch();
    private final int alignment;
    private final long limit;
    private long position;
    private long startPosition;
    private long windowStart;
    private long windowBytes;

    LogReader(Log log, Segment seg, int windowId, long fromOffset, long bound, int maxBytes, Log.ReadHandler handler) {
        this.log = log;
        this.seg = seg;
        this.windowId = windowId;
        this.window = log.readPool.chunk(windowId);
        this.fromOffset = fromOffset;
        this.bound = bound;
        this.maxBytes = Math.max(0, maxBytes);
        this.handler = handler;
        this.alignment = Math.max(4096, seg.file.alignment());
        this.limit = seg.readableEnd();
    }

    void start() {
        log.readStarted(seg);
        position = seg.lookup(fromOffset);
        startPosition = position;
        fill(position);
    }

    /**
     * The batch at the index's position must end before {@code fromOffset} (index entries map a batch's last
     * offset to its start, and the lookup picks an entry below the target). If it does not parse, or already
     * holds the target, the index is wrong: distrust it and read the segment from the start.
     */
    private boolean indexWrong(boolean parsed, long at) {
        if (startPosition == 0 || at != startPosition) {
            return false;
        }
        seg.distrustIndex(parsed ? "the batch at position " + startPosition + " holds offset " + fromOffset
            + " or later" : "position " + startPosition + " is not the start of a batch");
        startPosition = 0;
        position = 0;
        fill(0);
        return true;
    }

    private void fill(long from) {
        windowStart = from - from % alignment;
        long length = Math.min(window.byteSize(), (limit - windowStart + alignment - 1) / alignment * alignment);
        if (length <= 0 || from >= limit) {
            finish(0, 0, fromOffset, fromOffset - 1);
            return;
        }
        long r = seg.file.read(window.asSlice(0, length), windowStart, this, 0);
        if (r < 0) {
            fail("read of " + seg.path + " at " + windowStart + ": " + Errno.describe((int) r));
        }
    }

    @Override
    public void onComplete(int result, int flags, long attachment) {
        if (result < 0) {
            fail("read of " + seg.path + " at " + windowStart + ": " + Errno.describe(result));
            return;
        }
        windowBytes = Math.min(result, limit - windowStart);
        scan();
    }

    private void scan() {
        long windowEnd = windowStart + windowBytes;
        long first = -1;
        long firstOffset = -1;
        long lastOffset = -1;
        long end = position;
        boolean complete = false; // stopped by the bound or the byte limit, not by the window
        while (end < limit) {
            if (end + RecordBatch.HEADER_BYTES > windowEnd) {
                break;
            }
            batch.wrap(window, end - windowStart);
            long size = batch.sizeInBytes();
            if ((size < RecordBatch.HEADER_BYTES || batch.magic() != RecordBatch.CURRENT_MAGIC) && indexWrong(false, end)) {
                return;
            }
            if (size < RecordBatch.HEADER_BYTES || batch.magic() != RecordBatch.CURRENT_MAGIC
                || (lastOffset >= 0 && batch.baseOffset() <= lastOffset) || batch.baseOffset() < seg.baseOffset) {
                // Not a batch that can follow (e.g. bytes whose write has not landed): never hand it out. Offsets
                // may jump forward: compaction removes whole batches.
                complete = true;
                break;
            }
            if (end + size > limit) {
                complete = true; // a length past the readable end: not a batch that was ever written whole
                break;
            }
            if (end + size > windowEnd) {
                if (first < 0 && end % alignment + size > window.byteSize() && !growWindow(end % alignment + size)) {
                    return;
                }
                break;
            }
            if (batch.lastOffset() >= bound) {
                complete = true; // nothing at or past the bound is returned
                break;
            }
            if (first < 0) {
                if (batch.lastOffset() >= fromOffset && indexWrong(true, end)) {
                    return;
                }
                if (batch.lastOffset() < fromOffset) {
                    end += size;
                    position = end;
                    continue;
                }
                first = end;
                firstOffset = batch.baseOffset();
            } else if (end + size - first > maxBytes) {
                complete = true;
                break;
            }
            lastOffset = batch.lastOffset();
            end += size;
        }
        if (first >= 0) {
            // Whole batches in the window; one that did not fit is left for the next read.
            finish(first - windowStart, end - first, firstOffset, lastOffset);
        } else if (end >= limit || complete) {
            finish(0, 0, fromOffset, fromOffset - 1);
        } else {
            // The batch at `position` crosses the window's end: read a new window starting there.
            fill(position);
        }
    }

    /**
     * The batch the read needs is larger than the window: reads continue in a {@link LargeBuffer} of at least
     * {@code bytes}. False (after failing the read with NO_MEMORY) when the shard cannot give it now.
     */
    private boolean growWindow(long bytes) {
        LargeBuffer next = LargeBuffer.allocate(log, (bytes + alignment - 1) / alignment * alignment);
        if (next == null) {
            try {
                handler.onError(new LogException(LogException.Kind.NO_MEMORY, "no memory to read a batch of " + bytes
                    + " bytes of " + seg.path + " (larger than the " + window.byteSize() + "-byte read windows): "
                    + log.largeBufferFailure));
            } finally {
                release();
            }
            return false;
        }
        if (large != null) {
            large.free();
        }
        large = next;
        window = next.segment();
        return true;
    }

    private void finish(long offsetInWindow, long length, long firstOffset, long lastOffset) {
        try {
            handler.onRead(length == 0 ? MemorySegment.NULL : window.asSlice(offsetInWindow, length), firstOffset,
                lastOffset);
        } finally {
            release();
        }
    }

    private void fail(String what) {
        try {
            handler.onError(new LogException(LogException.Kind.STORAGE_ERROR, what));
        } finally {
            release();
        }
    }

    private void release() {
        if (large != null) {
            large.free();
            large = null;
        }
        log.readPool.release(windowId);
        log.readDone(seg);
        log.readPool.wakeIfPending(); // a recovery or truncation may wait for the window
    }
}
