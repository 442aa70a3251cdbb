package dev.isthmus.log;

import dev.isthmus.arena.ArenaExhaustedException;
import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.uring.Verify;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * One log's part of the shard's {@link BatchCache}: its cached ranges sorted by offset (never overlapping),
 * its open write range, the disk fills in flight for it and the state that spots sequential readers.
 * Serves {@link Log#read(long, long, int, Log.ChainReadHandler)}. Owner: the shard thread.
 */
final class LogCache {
    private static final int PAGE_BYTES_MIN = 4096;
    private static final int PAGE_BYTES_MAX = IoBuf.MAX_FRAGMENT_BYTES;
    private static final int RECENT_READERS = 4;
    /** Appends of at least this much arriving as a chain of the cache's arena are cached by sharing, not copying. */
    static final long SHARE_BYTES_MIN = 256 * 1024;
    /**
     * Fragments a shared write range takes before a new one starts: a read finds its batches' fragments by a walk
     * of the chain, so a range of thousands of small shared batches would make each read walk thousands.
     */
    static final int SHARED_RANGE_FRAGMENTS_MAX = 256;

    final BatchCache cache;
    final Log log;
    private CachedRange[] ranges = new CachedRange[8];
    private int rangeCount;
    /** The write range appends go to, or null. */
    private CachedRange open;
    /** Answers reads that find nothing (never holds batches). */
    final CachedRange empty;
    /** Bumped by every change that makes bytes read from the disk before it stale (truncation, swap, close). */
    long generation;
    /** Where recent reads ended: a read starting at one of these is sequential. */
    private final long[] recentEnds = new long[RECENT_READERS];
    private int recentNext;
    /** The read-ahead in flight for this log, or null. */
    CacheFill readAhead;
    /** Fills in flight (misses and read-ahead), for joining a miss to one that covers it. */
    private CacheFill[] fills = new CacheFill[4];
    private int fillCount;

    LogCache(BatchCache cache, Log log) {
        this.cache = cache;
        this.log = log;
        this.empty = new CachedRange(this);
        Arrays.fill(recentEnds, -1);
    }

    int rangeCount() {
        return rangeCount;
    }

    CachedRange range(int i) {
        return ranges[i];
    }

    // ------------------------------------------------------------------ appends

    /**
     * Copies an append's {@code n} batches (already stamped with their offsets) into the open write range.
     * Never fails the append: without memory, the batches are just not cached.
     */
    void onAppend(BatchBytes src, long offset, long length, int n, long[] bases, int[] sizes, long next) {
        onAppend(src, offset, length, n, bases, sizes, next, false);
    }

    /**
     * {@link #onAppend(BatchBytes, long, long, int, long[], int[], long)}; {@code finalChain}: the append is a chain
     * whose bytes never change afterwards (a Raft payload, {@link Log#appendReplicaChecked(IoBuf, long, long, int)}),
     * so a whole chain of this cache's arena is kept by sharing its fragments at any size: appended to the log's open
     * <em>shared</em> write range (no copy, no per-append object), which stays charged to the chain's subsystem.
     */
    void onAppend(BatchBytes src, long offset, long length, int n, long[] bases, int[] sizes, long next,
                  boolean finalChain) {
        if (!cache.settings.cacheAppends()) {
            return;
        }
        if (length >= SHARE_BYTES_MIN && src instanceof BatchBytes.Chained c && c.chain().arena() == cache.arena) {
            shareAppend(c.chain(), offset, length, n, bases, sizes, next);
            return;
        }
        if (finalChain && src instanceof BatchBytes.Chained c && c.chain().arena() == cache.arena && offset == 0
            && length == c.chain().size()) {
            shareIntoRange(c.chain(), length, n, bases, sizes, next);
            return;
        }
        CachedRange r = open;
        if (r != null && (r.shared || r.count == 0 || r.lastOffset() + 1 != bases[0]
            || (r.fill > 0 && r.fill + length > cache.settings.writeRangeBytes()))) {
            r.open = false;
            r = null;
            open = null;
        }
        if (r == null) {
            r = cache.take(this);
            r.chain = IoBuf.empty(cache.arena, Subsystem.BATCH_CACHE);
            r.open = true;
            r.coverStart = bases[0];
        }
        if (!reserve(r, r.fill + length)) {
            cache.onAppendNotCached();
            if (r.count == 0) {
                cache.charge(-r.chargeBytes()); // a new range never cached: give back its pages
                r.release();
                cache.recycle(r);
            } else {
                r.open = false;
                if (open == r) {
                    open = null;
                }
            }
            return;
        }
        r.copyIn(src, offset, r.fill, length);
        long pos = r.fill;
        for (int i = 0; i < n; i++) {
            long last = i + 1 < n ? bases[i + 1] - 1 : next - 1;
            r.addBatch(bases[i], last, pos);
            pos += sizes[i];
        }
        r.fill = pos;
        if (open != r) {
            open = r;
            insertAt(rangeCount, r);
        }
        cache.touch(r);
    }

    /**
     * A large append that arrived as a chain of this shard's memory is cached by sharing its fragments (no copy):
     * the range holds the caller's bytes as they are once stamped. Its memory stays charged to the caller's
     * subsystem (network receive), which gets a reclaim hook of its own ({@link BatchCache}); the waste of
     * pinning whole fragments is small next to a batch of at least {@link #SHARE_BYTES_MIN}.
     */
    private void shareAppend(IoBuf chain, long offset, long length, int n, long[] bases, int[] sizes, long next) {
        if (open != null) {
            open.open = false; // the shared range comes after it; appends start a new write range afterwards
            open = null;
        }
        CachedRange r = cache.take(this);
        r.chain = chain.share(offset, length);
        r.shared = true;
        r.coverStart = bases[0];
        long pos = 0;
        for (int i = 0; i < n; i++) {
            r.addBatch(bases[i], i + 1 < n ? bases[i + 1] - 1 : next - 1, pos);
            pos += sizes[i];
        }
        r.fill = pos;
        insertAt(rangeCount, r);
        cache.charge(r.chargeBytes());
        cache.touch(r);
    }

    /**
     * Appends a whole final chain to the open shared write range (a new one when there is none, it does not follow on,
     * or it reached {@link BatchCache.Settings#writeRangeBytes()}), sharing its fragments: the range's chain takes a
     * reference to each (the chain's own memory is freed once both let go). Nothing is copied and, past the range's
     * first append, nothing is allocated but the range's growing arrays.
     */
    private void shareIntoRange(IoBuf chain, long length, int n, long[] bases, int[] sizes, long next) {
        CachedRange r = open;
        if (r != null && (!r.shared || r.count == 0 || r.lastOffset() + 1 != bases[0]
            || r.fill + length > cache.settings.writeRangeBytes()
            || r.chain.fragmentCount() >= SHARED_RANGE_FRAGMENTS_MAX)) {
            r.open = false;
            r = null;
            open = null;
        }
        if (r == null) {
            r = cache.take(this);
            r.chain = IoBuf.empty(cache.arena, Subsystem.BATCH_CACHE);
            r.shared = true;
            r.open = true;
            r.coverStart = bases[0];
        }
        r.chain.append(chain);
        long pos = r.fill;
        for (int i = 0; i < n; i++) {
            r.addBatch(bases[i], i + 1 < n ? bases[i + 1] - 1 : next - 1, pos);
            pos += sizes[i];
        }
        Verify.that(pos == r.fill + length, "shared append of %d bytes holds batches of %d", length, pos - r.fill);
        r.fill = pos;
        if (open != r) {
            open = r;
            insertAt(rangeCount, r);
        }
        cache.charge(length);
        cache.touch(r);
    }

    /** Grows a write range's pages to {@code capacity}; false when the memory cannot be had. */
    private boolean reserve(CachedRange r, long capacity) {
        long size = r.chain.size();
        if (size >= capacity) {
            return true;
        }
        cache.busy = r;
        try {
            // Pages double with the range (4 KiB for a quiet log's first appends, up to 128 KiB), and what one
            // append lacks is allocated at once: one chain of up-to-128 KiB fragments.
            long want = Math.max(capacity - size, Math.min(Math.max(size, PAGE_BYTES_MIN), PAGE_BYTES_MAX));
            long bytes = want <= PAGE_BYTES_MAX ? (want + PAGE_BYTES_MIN - 1) / PAGE_BYTES_MIN * PAGE_BYTES_MIN
                : (want + PAGE_BYTES_MAX - 1) / PAGE_BYTES_MAX * PAGE_BYTES_MAX;
            IoBuf p = IoBuf.allocate(cache.arena, Subsystem.BATCH_CACHE, bytes);
            long at = size;
            for (int i = 0; i < p.fragmentCount(); i++) {
                MemorySegment page = p.fragment(i);
                r.addPage(page, at);
                at += page.byteSize();
            }
            r.chain.append(p);
            p.release();
            cache.charge(bytes);
            return true;
        } catch (ArenaExhaustedException e) {
            return false;
        } finally {
            cache.busy = null;
        }
    }

    // ------------------------------------------------------------------ reads

    /** The range that answers {@code offset}, or null. */
    CachedRange find(long offset) {
        int i = firstEndingAtOrAfter(offset);
        if (i < rangeCount && ranges[i].coverStart <= offset) {
            return ranges[i];
        }
        return null;
    }

    /** Index of the first range whose last offset is >= {@code offset} (ranges are sorted and disjoint). */
    private int firstEndingAtOrAfter(long offset) {
        int lo = 0;
        int hi = rangeCount - 1;
        int found = rangeCount;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (ranges[mid].lastOffset() >= offset) {
                found = mid;
                hi = mid - 1;
            } else {
                lo = mid + 1;
            }
        }
        return found;
    }

    private CachedRange nextContiguous(CachedRange r) {
        int i = indexOf(r);
        if (i >= 0 && i + 1 < rangeCount && ranges[i + 1].coverStart == r.lastOffset() + 1) {
            return ranges[i + 1];
        }
        return null;
    }

    private int indexOf(CachedRange r) {
        int i = firstEndingAtOrAfter(r.lastOffset());
        return i < rangeCount && ranges[i] == r ? i : -1;
    }

    /**
     * A read of {@code [fromOffset, bound)}, whose range checks the log made: answered at once from memory on
     * a hit, else after a disk fill (joining one in flight that covers it).
     */
    void read(long fromOffset, long bound, int maxBytes, Log.ChainReadHandler handler) {
        CachedRange r = find(fromOffset);
        if (r != null) {
            cache.onHit();
            serve(r, fromOffset, bound, maxBytes, handler, true);
            return;
        }
        cache.onMiss();
        Segment seg = log.segmentFor(fromOffset);
        long position = seg.lookup(fromOffset);
        for (int i = 0; i < fillCount; i++) {
            if (fills[i].covers(seg, position)) {
                fills[i].addWaiter(fromOffset, bound, maxBytes, handler);
                return;
            }
        }
        CacheFill f = new CacheFill(this, seg, position, position == 0 ? seg.baseOffset : -1, false);
        f.fromIndex(fromOffset);
        f.requester(fromOffset, bound, maxBytes, handler);
        startFill(f);
    }

    /**
     * Answers a read from {@code r} (and the ranges contiguous after it): whole batches from the one holding
     * {@code fromOffset}, at least one, within {@code maxBytes}, none reaching {@code bound}. Returns the
     * offset after the last batch served, or {@code fromOffset} when none was.
     */
    long serve(CachedRange r, long fromOffset, long bound, int maxBytes, Log.ChainReadHandler handler,
               boolean inserted) {
        IoBuf out = null;
        long first = -1;
        long last = fromOffset - 1;
        long bytes = 0;
        CachedRange cur = r;
        int i = r.indexFor(fromOffset);
        outer:
        while (cur != null) {
            int from = i;
            int j = i;
            while (j < cur.count) {
                if (cur.lasts[j] >= bound) {
                    break;
                }
                long size = cur.endOf(j) - cur.positions[j];
                if (bytes > 0 && bytes + size > maxBytes) {
                    break;
                }
                bytes += size;
                last = cur.lasts[j];
                if (first < 0) {
                    first = cur.bases[j];
                }
                j++;
            }
            if (j > from) {
                IoBuf part = cur.chain.share(cur.positions[from], cur.endOf(j - 1) - cur.positions[from]);
                if (out == null) {
                    out = part;
                } else {
                    out.append(part);
                    part.release();
                }
                if (inserted) {
                    cache.touch(cur);
                }
            }
            if (j < cur.count || !inserted) {
                break outer;
            }
            cur = nextContiguous(cur);
            i = 0;
        }
        if (out == null) {
            out = IoBuf.empty(cache.arena, Subsystem.BATCH_CACHE);
            first = fromOffset;
            last = fromOffset - 1;
        }
        long next = last + 1;
        boolean sequential = noteRead(fromOffset, next);
        try {
            handler.onRead(out, first, last);
        } finally {
            if (sequential && next > fromOffset) {
                maybeReadAhead(next);
            }
        }
        return next;
    }

    /** Remembers where a read ended; returns whether the read continued a previous one (a sequential reader). */
    private boolean noteRead(long from, long next) {
        boolean sequential = false;
        for (int i = 0; i < RECENT_READERS; i++) {
            if (recentEnds[i] == from) {
                recentEnds[i] = next;
                sequential = true;
            }
        }
        if (!sequential) {
            recentEnds[recentNext] = next;
            recentNext = (recentNext + 1) % RECENT_READERS;
        }
        return sequential;
    }

    /**
     * Starts a read-ahead at the end of what is cached contiguously from {@code next}, unless half of
     * {@link BatchCache.Settings#readAheadBytes()} is already cached ahead or a read-ahead is in flight.
     */
    void maybeReadAhead(long next) {
        if (readAhead != null || cache.fillsInFlight >= cache.settings.maxFillsInFlight() || log.isClosed()) {
            return;
        }
        long ahead = 0;
        long end = next;
        CachedRange lastRange = null;
        CachedRange r = find(next);
        while (r != null && ahead < cache.settings.readAheadBytes() / 2) {
            int i = r.indexFor(end);
            if (i < r.count) {
                ahead += r.fill - r.positions[i];
            }
            end = r.lastOffset() + 1;
            lastRange = r;
            r = nextContiguous(r);
        }
        if (ahead >= cache.settings.readAheadBytes() / 2 || end >= log.logEndOffset() || end < log.logStartOffset()) {
            return;
        }
        Segment seg;
        long position;
        long coverStart;
        if (lastRange != null && lastRange.segment != null && !lastRange.segment.deleted && lastRange.fileEnd >= 0
            && log.segments().contains(lastRange.segment)) {
            seg = lastRange.segment;
            position = lastRange.fileEnd;
            coverStart = end;
            if (position >= seg.size && seg.appender == null) {
                int k = log.segments().indexOf(seg);
                if (k + 1 >= log.segments().size()) {
                    return;
                }
                seg = log.segments().get(k + 1);
                position = 0;
            }
        } else {
            seg = log.segmentFor(end);
            if (seg == null) {
                return;
            }
            position = seg.lookup(end);
            coverStart = position == 0 ? seg.baseOffset : -1;
        }
        if (position >= seg.readableEnd()) {
            return; // appended but not written yet: nothing on disk to read ahead
        }
        CacheFill f = new CacheFill(this, seg, position, coverStart, true);
        if (coverStart < 0) {
            f.fromIndex(end);
        }
        readAhead = f;
        startFill(f);
    }

    private void startFill(CacheFill f) {
        if (fillCount == fills.length) {
            fills = Arrays.copyOf(fills, fillCount * 2);
        }
        fills[fillCount++] = f;
        cache.fillsInFlight++;
        cache.onFill(f.readAhead);
        f.start();
    }

    /** A fill finished (whatever its outcome): forget it. */
    void fillDone(CacheFill f) {
        for (int i = 0; i < fillCount; i++) {
            if (fills[i] == f) {
                fills[i] = fills[--fillCount];
                fills[fillCount] = null;
                break;
            }
        }
        cache.fillsInFlight--;
        if (readAhead == f) {
            readAhead = null;
        }
    }

    /**
     * Adds a range a disk fill produced, trimmed so it overlaps no cached range (what is cached already wins).
     * Returns the range now cached ({@code r} itself or a slice sharing its memory), or null when nothing of it
     * was new; the caller releases {@code r} unless it is the one returned.
     */
    CachedRange insert(CachedRange r) {
        int idx = firstEndingAtOrAfter(r.coverStart);
        int from = 0;
        long cover = r.coverStart;
        if (idx < rangeCount && ranges[idx].coverStart <= cover) {
            long after = ranges[idx].lastOffset() + 1;
            from = r.indexFor(after);
            cover = after;
            idx++;
        }
        int to = r.count;
        if (idx < rangeCount) {
            to = Math.min(to, r.indexFor(ranges[idx].coverStart));
        }
        if (from >= to) {
            return null;
        }
        CachedRange kept = r;
        if (from > 0 || to < r.count) {
            kept = r.slice(from, to, cover);
        } else {
            kept.coverStart = cover;
        }
        insertAt(idx, kept);
        cache.charge(kept.chargeBytes());
        cache.touch(kept);
        return kept;
    }

    private void insertAt(int idx, CachedRange r) {
        if (rangeCount == ranges.length) {
            ranges = Arrays.copyOf(ranges, rangeCount * 2);
        }
        System.arraycopy(ranges, idx, ranges, idx + 1, rangeCount - idx);
        ranges[idx] = r;
        rangeCount++;
        Verify.that(idx == 0 || ranges[idx - 1].lastOffset() < r.coverStart, "cached ranges overlap at %d", r.coverStart);
        Verify.that(idx + 1 >= rangeCount || r.lastOffset() < ranges[idx + 1].coverStart, "cached ranges overlap at %d",
            r.lastOffset());
    }

    // ------------------------------------------------------------------ dropping

    /** The shard cache dropped {@code r} to give memory back. */
    void evict(CachedRange r) {
        int i = indexOf(r);
        if (i >= 0) {
            removeAt(i);
        }
        drop(r);
    }

    private void removeAt(int i) {
        CachedRange r = ranges[i];
        System.arraycopy(ranges, i + 1, ranges, i, rangeCount - i - 1);
        ranges[--rangeCount] = null;
        if (open == r) {
            open = null;
        }
    }

    private void drop(CachedRange r) {
        cache.forget(r);
        r.release();
        cache.recycle(r);
    }

    /** Suffix truncation: forgets every batch at or after {@code offset}. */
    void truncateSuffix(long offset) {
        generation++;
        open = null;
        for (int i = rangeCount - 1; i >= 0; i--) {
            CachedRange r = ranges[i];
            if (r.coverStart >= offset || r.firstOffset() >= offset) {
                removeAt(i);
                drop(r);
            } else if (r.lastOffset() >= offset) {
                r.cutAt(r.indexFor(offset));
            } else {
                r.open = false;
                break;
            }
        }
    }

    /** Prefix truncation or retention: forgets ranges wholly below {@code logStart}. */
    void truncatePrefix(long logStart) {
        while (rangeCount > 0 && ranges[0].lastOffset() < logStart) {
            CachedRange r = ranges[0];
            removeAt(0);
            drop(r);
        }
    }

    /** Forgets ranges holding any offset in [first, last] (their segment was rewritten by compaction). */
    void invalidate(long first, long last) {
        generation++;
        for (int i = rangeCount - 1; i >= 0; i--) {
            CachedRange r = ranges[i];
            if (r.lastOffset() >= first && r.coverStart <= last) {
                removeAt(i);
                drop(r);
            }
        }
    }

    /** The log closed: drops everything. */
    void clear() {
        generation++;
        while (rangeCount > 0) {
            CachedRange r = ranges[rangeCount - 1];
            removeAt(rangeCount - 1);
            drop(r);
        }
    }

    @Override
    public String toString() {
        return "LogCache{" + log.dir() + ", " + rangeCount + " ranges}";
    }
}
