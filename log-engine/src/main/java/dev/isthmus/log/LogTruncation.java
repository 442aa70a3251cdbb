package dev.isthmus.log;

import dev.isthmus.ffi.Errno;
import dev.isthmus.uring.CompletionHandler;

import java.lang.foreign.MemorySegment;
import java.util.function.Consumer;

/**
 * Suffix truncation of a {@link Log} (Raft conflict resolution): waits until no write is in flight, finds
 * the batch that starts at the cut offset by scanning from the sparse index, reads the bytes of the chunk
 * before the cut for the new appender, and cuts the segment file there. Owner: the log's thread.
 */
final class LogTruncation implements SegmentScanner.Visitor, CompletionHandler {
    private final Log log;
    private final long offset;
    private final Consumer<RuntimeException> done;
    private Segment seg;
    private int windowId = -1;
    private MemorySegment window;
    private long cut = -1;
    private long scanStart;
    private boolean visited;
    private boolean indexWrong;
    private long tailStart;

    LogTruncation(Log log, long offset, Consumer<RuntimeException> done) {
        this.log = log;
        this.offset = offset;
        this.done = done;
    }

    void start() {
        // The cut is found by reading the file: write out what is still only in memory first.
        log.flush();
        log.whenQuiescent(this::locate);
    }

    private void locate() {
        seg = log.segmentFor(offset);
        if (seg == null) {
            finish(new LogException(LogException.Kind.OFFSET_OUT_OF_RANGE, "no segment holds offset " + offset));
            return;
        }
        windowId = log.readPool.acquireUninitialized();
        if (windowId < 0) {
            finish(new LogException(LogException.Kind.STORAGE_ERROR, "no read window for truncation"));
            return;
        }
        window = log.readPool.chunk(windowId);
        if (offset == seg.baseOffset) {
            cut = 0;
            readTail();
            return;
        }
        scanFrom(seg.lookup(offset));
    }

    private void scanFrom(long position) {
        scanStart = position;
        visited = false;
        new SegmentScanner(seg.file, window, bytes -> LargeBuffer.allocate(log, bytes)).scan(position, seg.size, -1,
            this);
    }

    @Override
    public boolean onBatch(RecordBatch batch, long position) {
        if (!visited && scanStart > 0 && batch.lastOffset() >= offset) {
            indexWrong = true; // the index must point at a batch ending before the cut
            return false;
        }
        visited = true;
        if (batch.baseOffset() == offset) {
            cut = position;
            return false;
        }
        if (batch.lastOffset() >= offset) {
            return false; // the offset is inside this batch: not a boundary
        }
        return true;
    }

    @Override
    public void onEnd(long validEnd, SegmentScanner.End reason, int errno) {
        if (reason == SegmentScanner.End.NO_MEMORY && cut < 0) {
            finish(new LogException(LogException.Kind.NO_MEMORY, "truncation of " + seg.path + " needs memory for a"
                + " batch at position " + validEnd + " larger than the read windows: " + log.largeBufferFailure));
            return;
        }
        if (scanStart > 0 && (indexWrong || (!visited && reason == SegmentScanner.End.INVALID))) {
            seg.distrustIndex("position " + scanStart + " is not where a batch before offset " + offset + " starts");
            indexWrong = false;
            scanFrom(0);
            return;
        }
        if (cut < 0) {
            finish(new LogException(LogException.Kind.OFFSET_OUT_OF_RANGE, "offset " + offset
                + " is not the start of a batch in " + seg.path + (errno != 0 ? ": " + Errno.describe(errno) : "")));
            return;
        }
        readTail();
    }

    private void readTail() {
        int chunk = log.writePool.chunkBytes();
        tailStart = cut - cut % chunk;
        if (tailStart == cut) {
            complete();
            return;
        }
        long r = seg.file.read(window.asSlice(0, chunk), tailStart, this, 0);
        if (r < 0) {
            finish(new LogException(LogException.Kind.STORAGE_ERROR, "read of " + seg.path + ": " + Errno.describe((int) r)));
        }
    }

    @Override
    public void onComplete(int result, int flags, long attachment) {
        if (result < cut - tailStart) {
            finish(new LogException(LogException.Kind.STORAGE_ERROR, "short read of " + seg.path + " before "
                + cut + (result < 0 ? ": " + Errno.describe(result) : "")));
            return;
        }
        complete();
    }

    private void complete() {
        MemorySegment tail = window.asSlice(0, cut - tailStart);
        log.finishSuffixTruncation(seg, cut, offset, tail);
        finish(null);
    }

    private void finish(RuntimeException error) {
        if (windowId >= 0) {
            log.readPool.release(windowId);
            windowId = -1;
        }
        done.accept(error);
    }
}
