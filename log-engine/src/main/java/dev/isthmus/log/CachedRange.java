package dev.isthmus.log;

import dev.isthmus.arena.IoBuf;
import dev.isthmus.uring.Verify;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A run of whole batches of one log held in the batch cache: one {@link IoBuf} chain of arena memory
 * ({@link dev.isthmus.arena.Subsystem#BATCH_CACHE}) with the batches back to back from position 0, and a
 * primitive index of their offsets and positions.
 *
 * <pre>
 *  chain: | batch 0 | batch 1 | ... | batch n-1 |  (free capacity of a write range)  |
 *         ^positions[0]=0                        ^fill                                ^chain.size()
 *  offsets answered: [coverStart, lasts[n-1]]; coverStart &lt;= bases[0] (a compacted log has gaps)
 * </pre>
 *
 * <p>A <em>write range</em> is filled by appends as they happen ({@link #open}); a <em>read range</em> is
 * what a disk read found, and remembers where it ended in its segment file so read-ahead continues there.
 * Bytes below {@code fill} never change once written: readers hold zero-copy shares of them (no
 * copy-on-write, so nothing may be rewritten in place). Owner: the shard thread.
 */
final class CachedRange {
    LogCache owner;
    IoBuf chain;
    /** Bytes of whole batches from the chain's start. */
    long fill;
    /** The lowest offset this range answers for: no batch of the log lies in [coverStart, bases[0]). */
    long coverStart;
    int count;
    long[] bases = new long[16];
    long[] lasts = new long[16];
    long[] positions = new long[16];
    /** A write range still taking appends (only the log's newest range can be). */
    boolean open;
    /** The chain shares an appender's own fragments (network receive memory), not cache pages. */
    boolean shared;
    /** Read ranges: the segment and the file position just after the last batch (-1 for write ranges). */
    Segment segment;
    long fileEnd = -1;
    // Write ranges: the pages of the chain, for copying appends in without per-append views.
    MemorySegment[] pages;
    long[] pageStarts;
    int pageCount;
    // The shard-wide LRU list.
    CachedRange lruPrev;
    CachedRange lruNext;
    boolean inLru;

    CachedRange(LogCache owner) {
        this.owner = owner;
    }

    /** Makes a released range new again for {@code newOwner}, keeping its arrays (the cache recycles ranges). */
    void reset(LogCache newOwner) {
        Verify.that(chain == null && !inLru, "reset of a range still in use");
        owner = newOwner;
        shared = false;
        fill = 0;
        coverStart = 0;
        count = 0;
        open = false;
        segment = null;
        fileEnd = -1;
        lruPrev = null;
        lruNext = null;
    }

    long firstOffset() {
        return bases[0];
    }

    long lastOffset() {
        return lasts[count - 1];
    }

    /** Bytes of arena memory this range holds (its chain's length). */
    long chargeBytes() {
        return chain == null ? 0 : chain.size();
    }

    void addBatch(long base, long last, long position) {
        if (count == bases.length) {
            int n = count * 2;
            bases = Arrays.copyOf(bases, n);
            lasts = Arrays.copyOf(lasts, n);
            positions = Arrays.copyOf(positions, n);
        }
        Verify.that(count == 0 || base > lasts[count - 1], "cached batch %d after %d", base, count == 0 ? -1 : lasts[count - 1]);
        bases[count] = base;
        lasts[count] = last;
        positions[count] = position;
        count++;
    }

    /** Index of the first batch whose last offset is >= {@code offset}, or {@link #count} when none. */
    int indexFor(long offset) {
        int lo = 0;
        int hi = count - 1;
        int found = count;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (lasts[mid] >= offset) {
                found = mid;
                hi = mid - 1;
            } else {
                lo = mid + 1;
            }
        }
        return found;
    }

    /** End position (exclusive) of batch {@code i}. */
    long endOf(int i) {
        return i + 1 < count ? positions[i + 1] : fill;
    }

    /** Copies {@code length} bytes of {@code src} at {@code srcPos} into the write range's pages at {@code pos}. */
    void copyIn(BatchBytes src, long srcPos, long pos, long length) {
        int p = 0;
        while (p < pageCount - 1 && pageStarts[p + 1] <= pos) {
            p++;
        }
        while (length > 0) {
            MemorySegment page = pages[p];
            long within = pos - pageStarts[p];
            long n = Math.min(page.byteSize() - within, length);
            src.copyTo(srcPos, page, within, n);
            srcPos += n;
            pos += n;
            length -= n;
            p++;
        }
    }

    /** Adds a page of {@code bytes} (already appended to the chain) to the page table. */
    void addPage(MemorySegment page, long start) {
        if (pages == null) {
            pages = new MemorySegment[4];
            pageStarts = new long[4];
        } else if (pageCount == pages.length) {
            pages = Arrays.copyOf(pages, pageCount * 2);
            pageStarts = Arrays.copyOf(pageStarts, pageCount * 2);
        }
        pages[pageCount] = page;
        pageStarts[pageCount] = start;
        pageCount++;
    }

    /**
     * A new range of batches [{@code from}, {@code to}) sharing this one's memory, answering from {@code cover}
     * (at most the first kept batch's base offset).
     */
    CachedRange slice(int from, int to, long cover) {
        Verify.that(from < to && to <= count && cover <= bases[from], "bad slice [%d, %d) of a cached range", from, to);
        CachedRange s = owner.cache.take(owner);
        long start = positions[from];
        long end = endOf(to - 1);
        s.chain = chain.share(start, end - start);
        for (int i = from; i < to; i++) {
            s.addBatch(bases[i], lasts[i], positions[i] - start);
        }
        s.fill = end - start;
        s.coverStart = cover;
        s.segment = segment;
        s.fileEnd = to == count ? fileEnd : -1;
        return s;
    }

    /** Releases the memory; the range is empty and answers nothing afterwards. */
    void release() {
        if (chain != null) {
            chain.release();
            chain = null;
        }
        count = 0;
        fill = 0;
        open = false;
        if (pages != null) {
            Arrays.fill(pages, 0, pageCount, null);
        }
        pageCount = 0;
    }

    /**
     * Drops batches at and after index {@code keep} (suffix truncation). Their bytes may be shared with
     * readers, so the range never takes appends again.
     */
    void cutAt(int keep) {
        Verify.that(keep < count, "cut at %d of %d batches", keep, count);
        fill = positions[keep];
        count = keep;
        open = false;
    }

    @Override
    public String toString() {
        return "CachedRange{" + (count == 0 ? "empty" : "[" + coverStart + ".." + lastOffset() + "], " + count
            + " batches, " + fill + " bytes") + (open ? ", open" : "") + "}";
    }
}
