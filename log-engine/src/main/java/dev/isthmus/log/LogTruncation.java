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
final class LogTruncation implements CompletionHandler {
    private final Log log;
    private final long offset;
    private final Consumer<RuntimeException> done;
    private Segment seg;
    private int windowId = -1;
    /** This truncation's place in the read pool's line when no window was free. */
    private final ChunkPool.Waiter windowWaiter = new ChunkPool.Waiter(this::onWindowReserved);
    private MemorySegment window;
    private SegmentReader reader;
    private long cut = -1;
    private long tailStart;
    private int syncsLeft;
    private static final long SYNC = 1;

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
        // Many logs may truncate at once (followers after a leader change): without a free read window, wait in
        // the read pool's line for one instead of failing.
        if (windowId < 0) {
            if (!log.readPool().admit(windowWaiter, 1)) {
                return; // onWindowReserved comes back here
            }
            windowId = log.readPool().acquireUninitialized();
            if (windowId < 0) {
                log.readPool().admit(windowWaiter, 1); // none left to take (reads took them): in line for the next
                return;
            }
        }
        window = log.readPool().chunk(windowId);
        if (offset == seg.baseOffset) {
            cut = 0;
            readTail();
            return;
        }
        // From the index's position for the cut (a wrong index makes the reader start again from 0).
        reader = SegmentReader.windowed(window, true, bytes -> LargeBuffer.allocate(log, bytes),
            SegmentReader.Hold.NONE, this::scan);
        reader.start(log, seg, seg.lookup(offset), offset, seg.size);
        scan();
    }

    /** Walks to the batch that starts at the cut (on from each read's completion). */
    private void scan() {
        int r;
        while (true) {
            r = reader.nextOrRead();
            if (r == SegmentReader.WAIT) {
                return;
            }
            if (r != SegmentReader.BATCH) {
                break;
            }
            if (reader.baseOffset() == offset) {
                cut = reader.position();
                break;
            }
            if (reader.lastOffset() >= offset) {
                break; // the offset is inside this batch: not a boundary
            }
            reader.advance();
        }
        long validEnd = reader.position();
        int errno = reader.errno();
        reader.close(); // a larger buffer goes back; the tail is read into the window
        if (r == SegmentReader.NO_MEMORY && cut < 0) {
            finish(new LogException(LogException.Kind.NO_MEMORY, "truncation of " + seg.path + " needs memory for a"
                + " batch at position " + validEnd + " larger than the read windows: " + log.largeBufferFailure()));
            return;
        }
        if (cut < 0) {
            finish(new LogException(LogException.Kind.OFFSET_OUT_OF_RANGE, "offset " + offset
                + " is not the start of a batch in " + seg.path + (errno != 0 ? ": " + Errno.describe(errno) : "")));
            return;
        }
        readTail();
    }

    /** Reads the last partial aligned block before the cut: what the appender writes again with the next append. */
    private void readTail() {
        int block = Math.max(4096, seg.file.alignment());
        tailStart = cut - cut % block;
        if (tailStart == cut) {
            complete();
            return;
        }
        long r = seg.file.read(window.asSlice(0, block), tailStart, this, 0);
        if (r < 0) {
            finish(new LogException(LogException.Kind.STORAGE_ERROR, "read of " + seg.path + ": " + Errno.describe((int) r)));
        }
    }

    @Override
    public void onComplete(int result, int flags, long attachment) {
        if (attachment == SYNC) {
            synced(result);
            return;
        }
        if (result < cut - tailStart) {
            finish(new LogException(LogException.Kind.STORAGE_ERROR, "short read of " + seg.path + " before "
                + cut + (result < 0 ? ": " + Errno.describe(result) : "")));
            return;
        }
        complete();
    }

    private void complete() {
        MemorySegment tail = window.asSlice(0, cut - tailStart);
        boolean deletedLater = log.finishSuffixTruncation(seg, cut, offset, tail);
        // The cut (an ftruncate) and the deletes of later segments are file-system metadata: durable only after an
        // fdatasync of the file and a sync of the directory. Appends after the cut wait for them to count as durable
        // (the log holds its reports), and the truncation is done once they are.
        syncsLeft = 1 + (deletedLater ? 1 : 0);
        long r = seg.file.datasync(this, SYNC);
        if (r < 0) {
            syncFailed("fdatasync of " + seg.path + " after the cut", (int) r);
        }
        if (deletedLater) {
            r = log.engine().syncDirectory(log.dir(), this, SYNC);
            if (r < 0) {
                syncFailed("fsync of " + log.dir() + " after dropping segments", (int) r);
            }
        }
    }

    private void synced(int result) {
        if (result < 0) {
            syncFailed("sync after cutting " + seg.path, result);
            return;
        }
        if (--syncsLeft == 0) {
            log.cutSynced();
            finish(null);
        }
    }

    private void syncFailed(String what, int errno) {
        if (syncsLeft < 0) {
            return; // reported already
        }
        syncsLeft = -1;
        log.onStorageFailure(seg, what + ": " + Errno.describe(errno), -errno);
        finish(new LogException(LogException.Kind.STORAGE_ERROR, what + ": " + Errno.describe(errno)));
    }

    private void onWindowReserved() {
        if (seg != null && windowId < 0) {
            locate();
        } else {
            log.readPool().cancel(windowWaiter);
        }
    }

    private void finish(RuntimeException error) {
        log.readPool().cancel(windowWaiter);
        if (windowId >= 0) {
            log.readPool().release(windowId);
            windowId = -1;
        }
        done.accept(error);
        log.readPool().wakeIfPending();
    }
}
