package dev.isthmus.log;

import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;

/**
 * The per-shard batch cache (technique 4, no page cache): recently appended and recently read batches of
 * every log of the shard, held as {@link dev.isthmus.arena.IoBuf} chains of the shard's arena and handed to
 * readers as zero-copy shares, ready for the wire.
 *
 * <h2>What goes in</h2>
 * <ul>
 * <li>Appends: each append's batches are copied once into the log's current <em>write range</em> (pages of
 *     4 KiB .. 128 KiB, a new range every {@link Settings#writeRangeBytes()}), so consumers following the
 *     producers never touch the disk. An append of 256 KiB or more that arrives as a chain of this shard's
 *     arena is not copied: the range shares its fragments, which stay charged to the caller's subsystem
 *     (network receive, normally); such ranges are dropped when a subsystem other than the cache runs short.</li>
 * <li>Reads that miss: an aligned direct-I/O read of {@link Settings#readAheadBytes()} straight into cache
 *     memory (no bounce buffer); its whole batches become a <em>read range</em>.</li>
 * <li>Read-ahead: when a sequential reader (one continuing where a previous read of the log ended) has less
 *     than half of {@code readAheadBytes} cached ahead of it, the next aligned chunk is read asynchronously,
 *     before it asks; at most one read-ahead per log and {@link Settings#maxFillsInFlight()} disk fills per
 *     shard are in flight.</li>
 * </ul>
 *
 * <h2>Memory</h2>
 * Every byte the cache allocates comes from the arena under {@link Subsystem#BATCH_CACHE}, so the arena's
 * budget bounds the cache (shared appends stay charged to their own subsystem). The cache registers a
 * {@link MemoryArena.Reclaimer}: when the budget is reached, or any subsystem finds the arena short, the least
 * recently used ranges are dropped first. A dropped range's memory returns to the arena when the last reader
 * share of it is released (a share handed to a network send keeps its fragments alive until the send
 * completes). When memory cannot be had even after reclaim, appends are simply not cached and reads fail
 * with {@link LogException.Kind#NO_MEMORY}; nothing else is affected.
 *
 * <h2>Consistency</h2>
 * Ranges of one log never overlap in offsets. Suffix truncation, compaction swaps and close drop the
 * affected ranges and bump the log's cache generation, so a disk read that was in flight across such a
 * change is discarded rather than cached. Bytes of a range never change once written (readers share them);
 * a truncated write range stops taking appends.
 *
 * <h2>Threads</h2>
 * Owned by the shard thread, like the arena and the logs. Shares handed out may be released on any thread
 * (the arena takes remote frees).
 */
public final class BatchCache {

    /**
     * @param readAheadBytes   bytes per disk fill and read-ahead (a multiple of 4096)
     * @param maxFillsInFlight disk fills (misses plus read-aheads) in flight at once on the shard
     * @param writeRangeBytes  a write range takes appends up to this size, then a new one starts
     * @param cacheAppends     copy appended batches into the cache (consumers following producers hit it)
     */
    public record Settings(int readAheadBytes, int maxFillsInFlight, long writeRangeBytes, boolean cacheAppends) {
        public Settings {
            if (readAheadBytes < 4096 || readAheadBytes % 4096 != 0) {
                throw new IllegalArgumentException("read-ahead must be a positive multiple of 4096 bytes, got "
                    + readAheadBytes);
            }
            if (maxFillsInFlight < 1) {
                throw new IllegalArgumentException("at least one disk fill must be allowed in flight");
            }
            if (writeRangeBytes < 4096) {
                throw new IllegalArgumentException("write ranges must be at least 4096 bytes, got " + writeRangeBytes);
            }
        }

        /** 1 MiB read-ahead, 8 fills in flight, 4 MiB write ranges, appends cached. */
        public static Settings defaults() {
            return new Settings(1 << 20, 8, 4 << 20, true);
        }

        public Settings withReadAheadBytes(int bytes) {
            return new Settings(bytes, maxFillsInFlight, writeRangeBytes, cacheAppends);
        }

        public Settings withCacheAppends(boolean cache) {
            return new Settings(readAheadBytes, maxFillsInFlight, writeRangeBytes, cache);
        }
    }

    final MemoryArena arena;
    final Settings settings;
    // LRU list of every range of every log: head = least recently used.
    private CachedRange lruHead;
    private CachedRange lruTail;
    /** The range being grown right now: never evicted by a reclaim its own allocation triggers. */
    CachedRange busy;
    int fillsInFlight;
    private final CachedRange[] spare = new CachedRange[64];
    private int spareCount;
    private long cachedBytes;
    private long hits;
    private long misses;
    private long fills;
    private long readAheads;
    private long evictedBytes;
    private long appendsNotCached;

    /** A cache over {@code arena}'s BATCH_CACHE budget with default settings. Call on the arena's owner thread. */
    public BatchCache(MemoryArena arena) {
        this(arena, Settings.defaults());
    }

    public BatchCache(MemoryArena arena, Settings settings) {
        this.arena = arena;
        this.settings = settings;
        arena.registerReclaimer(Subsystem.BATCH_CACHE, this::reclaim);
        for (Subsystem s : Subsystem.values()) {
            if (s != Subsystem.BATCH_CACHE) {
                // Shared appends hold memory of their chain's subsystem (normally network receive).
                arena.registerReclaimer(s, this::reclaimShared);
            }
        }
    }

    public Settings settings() {
        return settings;
    }

    public MemoryArena arena() {
        return arena;
    }

    /** Bytes of arena memory the cache's ranges hold. */
    public long cachedBytes() {
        return cachedBytes;
    }

    /** Reads answered from memory. */
    public long hits() {
        return hits;
    }

    /** Reads that had to go to the disk. */
    public long misses() {
        return misses;
    }

    /** Disk reads into the cache (misses and read-aheads). */
    public long fills() {
        return fills;
    }

    /** Disk reads issued ahead of a sequential reader. */
    public long readAheads() {
        return readAheads;
    }

    /** Bytes dropped to give memory back. */
    public long evictedBytes() {
        return evictedBytes;
    }

    /** Appends that could not be cached for lack of memory. */
    public long appendsNotCached() {
        return appendsNotCached;
    }

    /**
     * Drops least recently used ranges (of cache memory, or sharing appended chains) until about
     * {@code bytesWanted} are released; returns the bytes dropped.
     */
    public long evict(long bytesWanted) {
        return drop(bytesWanted, true, true);
    }

    /**
     * The cache's budget is reached or the arena is short: drop least recently used ranges of cache memory.
     * Ranges sharing appended chains hold none; {@link #reclaimShared} gives those back.
     */
    private long reclaim(long bytesWanted) {
        return drop(bytesWanted, true, false);
    }

    /** Another subsystem (network receive, normally) is short: drop least recently used ranges sharing appended chains. */
    private long reclaimShared(long bytesWanted) {
        return drop(bytesWanted, false, true);
    }

    private long drop(long bytesWanted, boolean cacheMemory, boolean shared) {
        long got = 0;
        CachedRange r = lruHead;
        while (r != null && got < bytesWanted) {
            CachedRange next = r.lruNext;
            if (r != busy && (r.shared ? shared : cacheMemory)) {
                long bytes = r.chargeBytes();
                r.owner.evict(r);
                got += bytes;
                evictedBytes += bytes;
            }
            r = next;
        }
        return got;
    }

    // ------------------------------------------------------------------ bookkeeping for LogCache

    void onHit() {
        hits++;
    }

    void onMiss() {
        misses++;
    }

    void onFill(boolean readAhead) {
        fills++;
        if (readAhead) {
            readAheads++;
        }
    }

    void onAppendNotCached() {
        appendsNotCached++;
    }

    /** A range object for {@code owner}: a recycled one when there is one (no allocation in steady state). */
    CachedRange take(LogCache owner) {
        if (spareCount > 0) {
            CachedRange r = spare[--spareCount];
            spare[spareCount] = null;
            r.reset(owner);
            return r;
        }
        return new CachedRange(owner);
    }

    /** Gives back a released range object for reuse. */
    void recycle(CachedRange r) {
        if (r.chain == null && !r.inLru && spareCount < spare.length) {
            r.owner = null;
            spare[spareCount++] = r;
        }
    }

    void charge(long bytes) {
        cachedBytes += bytes;
    }

    /** Makes {@code r} the most recently used range (adding it to the list if needed). */
    void touch(CachedRange r) {
        if (r.inLru) {
            if (r == lruTail) {
                return;
            }
            unlink(r);
        }
        r.lruPrev = lruTail;
        r.lruNext = null;
        if (lruTail != null) {
            lruTail.lruNext = r;
        } else {
            lruHead = r;
        }
        lruTail = r;
        r.inLru = true;
    }

    /** Takes {@code r} out of the list and uncharges its memory (the caller releases it). */
    void forget(CachedRange r) {
        if (r.inLru) {
            unlink(r);
            r.inLru = false;
        }
        cachedBytes -= r.chargeBytes();
    }

    private void unlink(CachedRange r) {
        if (r.lruPrev != null) {
            r.lruPrev.lruNext = r.lruNext;
        } else {
            lruHead = r.lruNext;
        }
        if (r.lruNext != null) {
            r.lruNext.lruPrev = r.lruPrev;
        } else {
            lruTail = r.lruPrev;
        }
        r.lruPrev = null;
        r.lruNext = null;
    }

    @Override
    public String toString() {
        return "BatchCache{" + cachedBytes + " bytes, " + hits + " hits, " + misses + " misses, " + readAheads
            + " read-aheads, " + evictedBytes + " bytes evicted}";
    }
}
