package dev.isthmus.log;

import dev.isthmus.arena.IoBuf;
import dev.isthmus.ffi.Errno;

import java.util.ArrayList;
import java.util.List;

/**
 * One disk read into the batch cache: a cache {@link SegmentReader} reads an aligned stretch of a segment file
 * straight into {@link dev.isthmus.arena.Subsystem#BATCH_CACHE} fragments, and the whole batches it walks from a
 * batch boundary become a {@link CachedRange}. When the batch a reader needs is longer than what was read, the
 * stretch is extended by exactly what it lacks (and walked again from its start).
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
final class CacheFill {
    private record Waiter(long fromOffset, long bound, int maxBytes, Log.ChainReadHandler handler) {
    }

    private final LogCache lc;
    private final Log log;
    private final Segment seg;
    private final long startPos;
    private long coverStartHint;
    /** The offset the segment index was asked about to find {@link #startPos}, or -1 when it was not used. */
    private long indexTarget = -1;
    final boolean readAhead;
    private final long generation;
    private final SegmentReader reader;
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
        this.reader = SegmentReader.cached(lc.cache.arena, lc.cache.settings.readAheadBytes(),
            SegmentReader.Hold.UNTIL_DONE, this::process);
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
        return !done && s == seg && position >= reader.walkStart() && position < reader.askedEnd();
    }

    void addWaiter(long from, long boundExclusive, int max, Log.ChainReadHandler h) {
        if (waiters == null) {
            waiters = new ArrayList<>(2);
        }
        waiters.add(new Waiter(from, boundExclusive, max, h));
    }

    void start() {
        reader.start(log, seg, startPos, indexTarget, seg.readableEnd());
        int r = reader.nextOrRead();
        if (r != SegmentReader.WAIT) {
            ended(r);
        }
    }

    /** The first read could not be issued, or there is nothing to read. */
    private void ended(int r) {
        if (r == SegmentReader.NO_MEMORY) {
            fail(new LogException(LogException.Kind.NO_MEMORY, reader.failure()));
        } else if (r == SegmentReader.ERROR) {
            fail(readError());
        } else {
            finish(null);
        }
    }

    private LogException readError() {
        return new LogException(LogException.Kind.STORAGE_ERROR, "read of " + seg.path + " at " + reader.bufferStart()
            + ": " + Errno.describe(reader.errno()));
    }

    /** The stretch is in (the reader's completion): walk it, read on for a batch the requester needs, or cache it. */
    private void process() {
        if (reader.errno() != 0) {
            fail(readError());
            return;
        }
        if (lc.generation != generation || log.isClosed() || seg.deleted) {
            finish(null); // stale: the requester and waiters run again against the log as it is now
            return;
        }
        CachedRange r = lc.cache.take(lc);
        reader.rewind();
        long walkStart = reader.walkStart();
        while (true) {
            int x = reader.next();
            if (x == SegmentReader.BATCH) {
                r.addBatch(reader.baseOffset(), reader.lastOffset(), reader.position() - walkStart);
                reader.advance();
                continue;
            }
            if (x == SegmentReader.NEED_READ) {
                boolean restarted = reader.walkStart() != walkStart; // the index was wrong: read from the start
                boolean needed = r.count == 0 || (fromOffset >= 0 && r.lastOffset() < fromOffset);
                if (restarted || (needed && reader.readToRequestedEnd())) {
                    lc.cache.recycle(r);
                    if (restarted) {
                        coverStartHint = seg.baseOffset;
                    }
                    int y = reader.read();
                    if (y != SegmentReader.WAIT) {
                        ended(y);
                    }
                    return;
                }
            }
            break; // the end of what was read, of the readable data, or bytes that are not the batch that must follow
        }
        if (r.count == 0) {
            lc.cache.recycle(r);
            finish(null);
            return;
        }
        long end = reader.position();
        long bufferStart = reader.bufferStart();
        IoBuf chain = reader.takeChain();
        chain.trimFront(walkStart - bufferStart);
        chain.trimBack(chain.size() - (end - walkStart));
        r.chain = chain;
        r.fill = end - walkStart;
        r.segment = seg;
        r.fileEnd = end;
        r.coverStart = coverStartHint >= 0 ? Math.min(coverStartHint, r.bases[0]) : r.bases[0];
        finish(r);
    }

    /** Serves the requester from {@code r} (or nothing), caches {@code r}, reruns the waiters. */
    private void finish(CachedRange r) {
        done = true;
        dropMemory();
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
                        lc.serve(lc.empty, fromOffset, bound, maxBytes, handler, false);
                    }
                }
            } finally {
                if (r != null && kept != r) {
                    r.release();
                    lc.cache.recycle(r);
                }
            }
        } finally {
            reader.close(); // the segment's read count
            rerunWaiters();
        }
    }

    /** Cache memory read and not made a range goes back at once. */
    private void dropMemory() {
        IoBuf unused = reader.takeChain();
        if (unused != null) {
            unused.release();
        }
    }

    private void fail(LogException e) {
        done = true;
        dropMemory();
        lc.fillDone(this);
        try {
            if (handler != null) {
                handler.onError(e);
            }
        } finally {
            reader.close();
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
