package dev.isthmus.log;

import dev.isthmus.arena.ArenaExhaustedException;
import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.ffi.Errno;
import dev.isthmus.uring.CompletionHandler;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One disk read into the batch cache: an aligned direct-I/O read of a segment file straight into
 * {@link Subsystem#BATCH_CACHE} fragments (one read per fragment, all in flight together), then a walk over
 * the whole batches found from a batch boundary, which become a {@link CachedRange}. When the batch a reader
 * needs is longer than what was read, the read is extended by exactly what it lacks.
 *
 * <pre>
 *  file:  ...| alignedStart          startPos (a batch boundary)                  limit (readable end)
 *            |-------------------------|-----batch-----|-----batch-----|--part--|....
 *  range:                              [ whole batches                 )  fill, fileEnd
 * </pre>
 *
 * <p>A fill serves the read that missed (its requester, if any) and any read that missed on the same stretch
 * of file meanwhile (waiters, which simply run again once the range is cached). A fill whose log changed
 * under it (suffix truncation, compaction swap, close: a new cache generation) is thrown away. Owner: the
 * shard thread.
 */
final class CacheFill implements CompletionHandler {
    /** The smallest first read a fill shrinks to when memory is short. */
    static final int MIN_FILL_BYTES = 64 * 1024;

    private record Waiter(long fromOffset, long bound, int maxBytes, Log.ChainReadHandler handler) {
    }

    private final LogCache lc;
    private final Log log;
    private final Segment seg;
    private long startPos;
    private long coverStartHint;
    /** The offset the segment index was asked about to find {@link #startPos}, or -1 when it was not used. */
    private long indexTarget = -1;
    final boolean readAhead;
    private final long generation;
    private final int alignment;
    private long alignedStart;
    private long limit;
    private long requestedEnd;
    private long validEnd;
    private IoBuf chain;
    private int pending;
    private int errno;
    // Per issued fragment read: its file position and length (to spot short reads).
    private long[] readPos = new long[16];
    private long[] readLen = new long[16];
    private int reads;
    // The read that missed, if any.
    private long fromOffset = -1;
    private long bound;
    private int maxBytes;
    private Log.ChainReadHandler handler;
    private List<Waiter> waiters;
    private boolean done;

    /**
     * @param startPos      a batch boundary of {@code seg} to read from
     * @param coverStartHint the lowest offset the result may answer for (no batch lies between it and the
     *                      first batch at {@code startPos}), or -1 when only the first batch's base is known
     */
    CacheFill(LogCache lc, Segment seg, long startPos, long coverStartHint, boolean readAhead) {
        this.lc = lc;
        this.log = lc.log;
        this.seg = seg;
        this.startPos = startPos;
        this.coverStartHint = coverStartHint;
        this.readAhead = readAhead;
        this.generation = lc.generation;
        this.alignment = Math.max(4096, seg.file.alignment());
    }

    /** {@link #startPos} came from the segment index for {@code offset}: check the index's answer. */
    void fromIndex(long offset) {
        this.indexTarget = startPos > 0 ? offset : -1;
    }

    void requester(long from, long boundExclusive, int max, Log.ChainReadHandler h) {
        this.fromOffset = from;
        this.bound = boundExclusive;
        this.maxBytes = max;
        this.handler = h;
    }

    /** Whether a read starting at file {@code position} of {@code s} will find its batch in this fill. */
    boolean covers(Segment s, long position) {
        return !done && s == seg && position >= startPos && position < requestedEnd;
    }

    void addWaiter(long from, long boundExclusive, int max, Log.ChainReadHandler h) {
        if (waiters == null) {
            waiters = new ArrayList<>(2);
        }
        waiters.add(new Waiter(from, boundExclusive, max, h));
    }

    void start() {
        log.readStarted(seg);
        limit = seg.readableEnd();
        alignedStart = startPos - startPos % alignment;
        validEnd = Long.MAX_VALUE;
        if (startPos >= limit) {
            finish(null);
            return;
        }
        long length = roundUp(Math.min(lc.cache.settings.readAheadBytes(), limit - alignedStart));
        issue(alignedStart, length);
    }

    private long roundUp(long n) {
        return (n + alignment - 1) / alignment * alignment;
    }

    /**
     * Reads [filePos, filePos + length) into new cache fragments appended to the chain. When the cache budget
     * cannot give {@code length} even after reclaiming, a first read shrinks (halving, down to
     * {@link #MIN_FILL_BYTES}); a read that continues a batch must have what it asked for.
     */
    private void issue(long filePos, long length) {
        IoBuf part = null;
        while (part == null) {
            try {
                part = IoBuf.allocate(lc.cache.arena, Subsystem.BATCH_CACHE, length);
            } catch (ArenaExhaustedException e) {
                long smaller = length / 2 / alignment * alignment;
                if (chain != null || smaller < MIN_FILL_BYTES) {
                    fail(new LogException(LogException.Kind.NO_MEMORY, "no batch cache memory to read " + length
                        + " bytes of " + seg.path.getFileName() + ": " + e.getMessage()));
                    return;
                }
                length = smaller;
            }
        }
        long off = 0;
        for (int i = 0; i < part.fragmentCount(); i++) {
            MemorySegment m = part.fragment(i);
            if (reads == readPos.length) {
                readPos = Arrays.copyOf(readPos, reads * 2);
                readLen = Arrays.copyOf(readLen, reads * 2);
            }
            readPos[reads] = filePos + off;
            readLen[reads] = m.byteSize();
            long r = seg.file.read(m, filePos + off, this, reads);
            reads++;
            if (r < 0) {
                errno = (int) r;
                break;
            }
            pending++;
            off += m.byteSize();
        }
        if (chain == null) {
            chain = part;
        } else {
            chain.append(part);
            part.release();
        }
        requestedEnd = filePos + length;
        if (pending == 0) {
            process();
        }
    }

    @Override
    public void onComplete(int result, int flags, long attachment) {
        pending--;
        int i = (int) attachment;
        if (result < 0) {
            errno = result;
        } else if (result < readLen[i]) {
            validEnd = Math.min(validEnd, readPos[i] + result); // end of file
        }
        if (pending == 0) {
            process();
        }
    }

    private void process() {
        if (errno != 0) {
            fail(new LogException(LogException.Kind.STORAGE_ERROR, "read of " + seg.path + " at " + alignedStart + ": "
                + Errno.describe(errno)));
            return;
        }
        if (lc.generation != generation || log.isClosed() || seg.deleted) {
            finish(null); // stale: the requester and waiters run again against the log as it is now
            return;
        }
        long end = Math.min(Math.min(validEnd, requestedEnd), limit);
        CachedRange r = lc.cache.take(lc);
        long pos = startPos;
        long prevLast = -1;
        while (pos + RecordBatch.HEADER_BYTES <= end) {
            long rel = pos - alignedStart;
            int size = chain.getInt(rel + RecordBatch.BATCH_LENGTH) + RecordBatch.LOG_OVERHEAD;
            boolean parsed = size >= RecordBatch.HEADER_BYTES
                && chain.getByte(rel + RecordBatch.MAGIC) == RecordBatch.CURRENT_MAGIC;
            if (pos == startPos && indexTarget >= 0 && (!parsed
                || chain.getLong(rel + RecordBatch.BASE_OFFSET) + chain.getInt(rel + RecordBatch.LAST_OFFSET_DELTA) >= indexTarget)) {
                // The index entry must point at a batch ending before the target: it does not. Read from the start.
                seg.distrustIndex(parsed ? "the batch at position " + startPos + " holds offset " + indexTarget
                    + " or later" : "position " + startPos + " is not the start of a batch");
                lc.cache.recycle(r);
                restartFromSegmentStart();
                return;
            }
            if (!parsed) {
                break;
            }
            long base = chain.getLong(rel + RecordBatch.BASE_OFFSET);
            int delta = chain.getInt(rel + RecordBatch.LAST_OFFSET_DELTA);
            if (base <= prevLast || delta < 0 || base < seg.baseOffset) {
                break; // not the batch that must follow: never cached, never served
            }
            if (pos + size > end) {
                boolean needed = r.count == 0 || (fromOffset >= 0 && r.lastOffset() < fromOffset);
                if (needed && pos + size <= limit && end == requestedEnd) {
                    lc.cache.recycle(r);
                    issue(requestedEnd, roundUp(pos + size - requestedEnd));
                    return;
                }
                break;
            }
            r.addBatch(base, base + delta, pos - startPos);
            prevLast = base + delta;
            pos += size;
        }
        if (r.count == 0) {
            lc.cache.recycle(r);
            finish(null);
            return;
        }
        chain.trimFront(startPos - alignedStart);
        chain.trimBack(chain.size() - (pos - startPos));
        r.chain = chain;
        chain = null;
        r.fill = pos - startPos;
        r.segment = seg;
        r.fileEnd = pos;
        r.coverStart = coverStartHint >= 0 ? Math.min(coverStartHint, r.bases[0]) : r.bases[0];
        finish(r);
    }

    private void restartFromSegmentStart() {
        chain.release();
        chain = null;
        startPos = 0;
        coverStartHint = seg.baseOffset;
        indexTarget = -1;
        alignedStart = 0;
        reads = 0;
        validEnd = Long.MAX_VALUE;
        issue(0, roundUp(Math.min(lc.cache.settings.readAheadBytes(), limit)));
    }

    /** Serves the requester from {@code r} (or nothing), caches {@code r}, reruns the waiters. */
    private void finish(CachedRange r) {
        done = true;
        if (chain != null) {
            chain.release();
            chain = null;
        }
        lc.fillDone(this);
        try {
            CachedRange kept = r == null ? null : lc.insert(r);
            try {
                if (handler != null) {
                    if (r != null && r.coverStart <= fromOffset && r.lastOffset() >= fromOffset) {
                        CachedRange hit = lc.find(fromOffset);
                        if (hit != null) {
                            lc.serve(hit, fromOffset, bound, maxBytes, handler, true);
                        } else {
                            lc.serve(r, fromOffset, bound, maxBytes, handler, false);
                        }
                    } else if (r == null && (lc.generation != generation || seg.deleted) && !log.isClosed()) {
                        log.read(fromOffset, bound, maxBytes, handler); // the log changed: read it again
                    } else {
                        lc.serve(emptyRange(), fromOffset, bound, maxBytes, handler, false);
                    }
                }
            } finally {
                if (r != null && kept != r) {
                    r.release();
                    lc.cache.recycle(r);
                }
            }
        } finally {
            log.readDone(seg);
            rerunWaiters();
        }
    }

    private CachedRange emptyRange() {
        return lc.empty;
    }

    private void fail(LogException e) {
        done = true;
        if (chain != null) {
            chain.release();
            chain = null;
        }
        lc.fillDone(this);
        try {
            if (handler != null) {
                handler.onError(e);
            }
        } finally {
            log.readDone(seg);
            rerunWaiters();
        }
    }

    private void rerunWaiters() {
        if (waiters == null) {
            return;
        }
        for (Waiter w : waiters) {
            log.read(w.fromOffset(), w.bound(), w.maxBytes(), w.handler());
        }
        waiters = null;
    }
}
