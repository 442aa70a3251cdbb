package dev.isthmus.log;

import dev.isthmus.ffi.Errno;

import java.lang.foreign.MemorySegment;

/**
 * One copying read of a {@link Log} ({@link Log#read(long, long, int, Log.ReadHandler)}: Raft catch-up, timestamp
 * lookups): a {@link SegmentReader} over one of the read pool's windows walks from the sparse index's position for
 * the requested offset, skips batches before it, and hands over the run of whole batches that fits the byte limit
 * and the bound as one slice of the window. When the first batch wanted crosses the window's end the reader reads a
 * new window starting there (a batch larger than a window goes into a {@link LargeBuffer} of its size); a later one
 * that crosses it is left for the next read. Owner: the log's thread; the window is the read's until it answers.
 */
final class WindowRead {
    private final Log log;
    private final Segment seg;
    private final int windowId;
    private final long fromOffset;
    private final long bound;
    private final int maxBytes;
    private final Log.ReadHandler handler;
    private final SegmentReader reader;

    WindowRead(Log log, Segment seg, int windowId, long fromOffset, long bound, int maxBytes, Log.ReadHandler handler) {
        this.log = log;
        this.seg = seg;
        this.windowId = windowId;
        this.fromOffset = fromOffset;
        this.bound = bound;
        this.maxBytes = Math.max(0, maxBytes);
        this.handler = handler;
        this.reader = SegmentReader.windowed(log.readPool().chunk(windowId), false,
            bytes -> LargeBuffer.allocate(log, bytes), SegmentReader.Hold.UNTIL_DONE, this::walk);
    }

    void start() {
        reader.start(log, seg, seg.lookup(fromOffset), fromOffset, seg.readableEnd());
        walk();
    }

    /** Walks the window; reads a new one only while no batch was taken (a run is one slice of one window). */
    private void walk() {
        long first = -1;
        long firstOffset = -1;
        long lastOffset = -1;
        long end = -1;
        while (true) {
            int r = reader.next();
            if (r == SegmentReader.BATCH) {
                long last = reader.lastOffset();
                if (last >= bound) {
                    break; // nothing at or past the bound is returned
                }
                if (first < 0) {
                    if (last < fromOffset) {
                        reader.advance();
                        continue;
                    }
                    first = reader.position();
                    firstOffset = reader.baseOffset();
                } else if (reader.position() + reader.sizeBytes() - first > maxBytes) {
                    break;
                }
                lastOffset = last;
                end = reader.position() + reader.sizeBytes();
                reader.advance();
                continue;
            }
            if (r == SegmentReader.NEED_READ && first < 0) {
                r = reader.read();
                if (r == SegmentReader.WAIT) {
                    return; // walk() again from the completion
                }
            }
            if (r == SegmentReader.NO_MEMORY) {
                fail(new LogException(LogException.Kind.NO_MEMORY, "no memory to read a batch of " + seg.path
                    + ": " + reader.failure() + ": " + log.largeBufferFailure()));
                return;
            }
            if (r == SegmentReader.ERROR) {
                fail(new LogException(LogException.Kind.STORAGE_ERROR, "read of " + seg.path + " at "
                    + reader.bufferStart() + ": " + Errno.describe(reader.errno())));
                return;
            }
            // The next batch crosses the window (with a run in hand), or the walk ends: the limit, bytes whose write
            // has not landed, anything that is not the batch that must follow. Never handed out.
            break;
        }
        try {
            if (first >= 0) {
                handler.onRead(reader.slice(first, end - first), firstOffset, lastOffset);
            } else {
                handler.onRead(MemorySegment.NULL, fromOffset, fromOffset - 1);
            }
        } finally {
            release();
        }
    }

    private void fail(LogException e) {
        try {
            handler.onError(e);
        } finally {
            release();
        }
    }

    private void release() {
        log.readPool().release(windowId);
        reader.close(); // a larger buffer, the segment's read count
        log.readPool().wakeIfPending(); // a recovery or truncation may wait for the window
    }
}
