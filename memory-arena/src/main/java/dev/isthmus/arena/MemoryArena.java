package dev.isthmus.arena;

import dev.isthmus.ffi.Libc;
import org.agrona.collections.Long2ObjectHashMap;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One shard's fixed slice of memory: a single page-aligned region mapped at start-up, managed by a buddy
 * allocator for blocks of 64 KiB and more and by size-class slabs (512 B .. 32 KiB) carved from 64 KiB buddy
 * blocks. Allocations are named by their offset in the region (a {@code long}), so allocating and freeing
 * create no Java objects; {@link #segment} gives a {@link MemorySegment} view when one is needed.
 *
 * <h2>Alignment</h2>
 * Every block of 4 KiB or more is 4096-aligned (usable for O_DIRECT); smaller ones are aligned to their size.
 *
 * <h2>Budgets</h2>
 * Each {@link Subsystem} has a limit and a live usage (charged by the rounded-up block size). An allocation
 * beyond the subsystem's limit, or beyond the free memory after the reclaim hooks ({@link #registerReclaimer})
 * gave back what they could, fails with {@link #NO_MEMORY} and {@link #lastFailure()} says why — never a JVM
 * OutOfMemoryError and never swapping. {@link #allocateOrThrow} turns that into {@link ArenaExhaustedException}.
 *
 * <h2>Threads</h2>
 * Owned by one thread (the creating one, or the one given to {@link #bindOwner}): allocation and the free
 * lists are touched only there, checked always. {@link #free} may be called from any thread: a foreign free is
 * queued on a bounded lock-free many-to-one ring and the owner applies it in {@link #drainRemoteFrees()},
 * which the shard loop calls every turn ({@link ShardArenas} also batches frees from other shards through the
 * cross-shard queues). {@link #stats()} is readable from any thread.
 *
 * <h2>Debug mode</h2>
 * ({@link ArenaConfig#debug()}, {@code -Disthmus.arena.debug=true}): freed memory is poisoned and checked on
 * reuse (a write after free is reported with the block's last allocation site), a double free names both
 * sites, and {@link #checkNoLeaks()} lists every live allocation with the stack that made it. Only debug arenas are
 * tracked for the test suites' leak check ({@link #openArenas()}, {@link #takeClosedWithLeaks()}): that static
 * list is a diagnostic of the tests, not wiring, and a production arena is in no registry (its owner holds it; a
 * leak found at its close is logged).
 */
public final class MemoryArena implements AutoCloseable {
    public static final int MIN_SHIFT = 16;
    public static final long MIN_BLOCK = 1L << MIN_SHIFT;
    /** Returned by {@link #allocate} when the allocation cannot be served; see {@link #lastFailure()}. */
    public static final long NO_MEMORY = -1L;
    /** Sizes served from slabs; larger requests are buddy blocks. */
    static final int[] CLASS_SIZES = {512, 1024, 2048, 4096, 8192, 16384, 32768};
    private static final int CLASSES = CLASS_SIZES.length;
    private static final int SUBSYSTEMS = Subsystem.ALL.length;
    private static final byte POISON = (byte) 0xDB;
    /** Debug arenas not yet closed, and leak reports of debug arenas closed with live allocations (the tests' leak check). */
    private static final Map<MemoryArena, Boolean> OPEN = new ConcurrentHashMap<>();
    private static final java.util.Queue<String> CLOSED_WITH_LEAKS = new java.util.concurrent.ConcurrentLinkedQueue<>();

    /** Gives memory back when the arena runs short. Runs on the owner thread. */
    @FunctionalInterface
    public interface Reclaimer {
        /** Frees up to (about) {@code bytesWanted}; returns the bytes actually freed. */
        long reclaim(long bytesWanted);
    }

    private final ArenaConfig config;
    private final MemorySegment region;
    private final long base;
    private final BuddyAllocator buddy;
    private final int units;
    private volatile Thread owner;
    private boolean closed;
    /** Set by {@link ShardArenas}: the shard that owns this arena, or -1. */
    int shardId = -1;
    ShardArenas shardArenas;

    // Slabs: per 64 KiB unit that is a slab, its class (+1), subsystem, free bitmap (128 bits) and free count.
    private final byte[] slabClass;
    private final byte[] blockSubsystem;
    private final long[] slabBits;
    private final short[] slabFree;
    private final int[] slabNext;
    private final int[] slabPrev;
    private final int[] partialHeads = new int[CLASSES * SUBSYSTEMS];
    private final int[] emptySlabs = new int[CLASSES * SUBSYSTEMS];

    private final long[] used = new long[SUBSYSTEMS];
    private final long[] limits;
    private final List<Reclaimer>[] reclaimers;
    private final ArenaStats stats;
    private String lastFailure = "";
    private long highWater;
    private long usedTotal;
    private long liveAllocations;

    private final MpscLongQueue remoteFrees = new MpscLongQueue(8192);

    // Debug mode only.
    private final boolean debug;
    private final Long2ObjectHashMap<Throwable> sites;
    private final Long2ObjectHashMap<Throwable> freedSites;

    /**
     * Faults every page of the region in now, writable, so the data path never takes a first-touch page fault
     * (on a virtual machine one costs 10-15 us per 4 KiB page, and they arrive in bursts when a cache fills).
     * Done after MADV_HUGEPAGE so transparent huge pages back the region where the kernel allows it:
     * MADV_POPULATE_WRITE (Linux 5.14) where the kernel has it, else a write to every page.
     */
    private static void prefault(MemorySegment region) {
        if (Libc.madvise(region, Libc.MADV_POPULATE_WRITE) == 0) {
            return;
        }
        for (long at = 0; at < region.byteSize(); at += 4096) {
            region.set(ValueLayout.JAVA_BYTE, at, (byte) 0);
        }
    }

    /**
     * Whether this kernel populates writable pages without writing them (MADV_POPULATE_WRITE, Linux 5.14), probed once
     * on a page of its own: only then can {@link #populate(long, long)} run beside the owner's use of the arena.
     */
    public static boolean canPopulateConcurrently() {
        return PopulateProbe.SUPPORTED;
    }

    private static final class PopulateProbe {
        static final boolean SUPPORTED = probe();

        private static boolean probe() {
            MemorySegment page = Libc.mmapAnonymous(4096, false);
            try {
                return Libc.madvise(page, Libc.MADV_POPULATE_WRITE) == 0;
            } finally {
                Libc.munmap(page);
            }
        }
    }

    /**
     * Faults in {@code bytes} of the region from {@code offset}, writable, with MADV_POPULATE_WRITE: the kernel
     * allocates the pages as a write would but leaves their contents alone, so this may run on any thread while the
     * owner allocates from and writes into the same pages (a page the owner touched first is simply already there).
     * The broker calls it from a background thread after it starts serving, so start-up does not wait for the
     * arena's whole memory to be faulted in (see {@code Broker}); the mapping itself, and with it the kernel's commit
     * charge, was taken in full when the arena was made. Must not run concurrently with {@link #close()} (the
     * caller stops it first). Returns 0 or -errno ({@code -EINVAL} where the kernel lacks the advice,
     * {@code -ENOMEM} when memory ran out: the pages left are then faulted in by their first use).
     */
    public int populate(long offset, long bytes) {
        if (offset < 0 || bytes < 0 || offset + bytes > region.byteSize()) {
            throw new IndexOutOfBoundsException("populate [" + offset + ", " + (offset + bytes) + ") outside the "
                + region.byteSize() + "-byte arena");
        }
        if (bytes == 0) {
            return 0;
        }
        return Libc.madvise(region.asSlice(offset, bytes), Libc.MADV_POPULATE_WRITE);
    }

    @SuppressWarnings("unchecked")
    private MemoryArena(ArenaConfig config) {
        this.config = config;
        this.debug = config.debug();
        this.region = Libc.mmapAnonymous(config.bytes(), false);
        if (config.hugePages()) {
            Libc.madvise(region, Libc.MADV_HUGEPAGE); // advisory: ignored where THP is off
        }
        if (config.populate()) {
            prefault(region);
        }
        this.base = region.address();
        this.units = (int) (config.bytes() >>> MIN_SHIFT);
        this.buddy = new BuddyAllocator(units);
        this.slabClass = new byte[units];
        this.blockSubsystem = new byte[units];
        this.slabBits = new long[units * 2];
        this.slabFree = new short[units];
        this.slabNext = new int[units];
        this.slabPrev = new int[units];
        java.util.Arrays.fill(partialHeads, -1);
        java.util.Arrays.fill(emptySlabs, -1);
        this.limits = config.budgetLimits();
        this.reclaimers = new List[SUBSYSTEMS];
        for (int i = 0; i < SUBSYSTEMS; i++) {
            reclaimers[i] = new ArrayList<>(1);
        }
        this.stats = new ArenaStats(buddy.maxOrder(), config.bytes());
        this.sites = debug ? new Long2ObjectHashMap<>() : null;
        this.freedSites = debug ? new Long2ObjectHashMap<>() : null;
        if (debug) {
            region.fill(POISON);
        }
        this.owner = Thread.currentThread();
        publishStats();
        if (debug) {
            OPEN.put(this, Boolean.TRUE);
        }
    }

    /** Maps the region and makes the calling thread the owner. */
    public static MemoryArena create(ArenaConfig config) {
        return new MemoryArena(config);
    }

    /** Debug-mode arenas not yet closed (for leak checks in tests). */
    public static List<MemoryArena> openArenas() {
        return List.copyOf(OPEN.keySet());
    }

    /** Leak reports of debug-mode arenas closed with live allocations since the last call (for the test leak check). */
    public static List<String> takeClosedWithLeaks() {
        List<String> out = new ArrayList<>();
        String s;
        while ((s = CLOSED_WITH_LEAKS.poll()) != null) {
            out.add(s);
        }
        return out;
    }

    /** Moves ownership to {@code thread} (e.g. the shard thread, right after start-up). */
    public void bindOwner(Thread thread) {
        this.owner = thread;
    }

    public Thread owner() {
        return owner;
    }

    public boolean isOwnerThread() {
        return Thread.currentThread() == owner;
    }

    public ArenaConfig config() {
        return config;
    }

    /** The whole region. */
    public MemorySegment region() {
        return region;
    }

    /** A view of {@code bytes} at {@code offset}. */
    public MemorySegment segment(long offset, long bytes) {
        return region.asSlice(offset, bytes);
    }

    /** The native address of {@code offset}. */
    public long address(long offset) {
        return base + offset;
    }

    /** Any thread: the statistics. */
    public ArenaStats stats() {
        return stats;
    }

    /** Why the last {@link #allocate} returned {@link #NO_MEMORY}. */
    public String lastFailure() {
        return lastFailure;
    }

    public long used(Subsystem s) {
        return used[s.ordinal()];
    }

    public long limit(Subsystem s) {
        return limits[s.ordinal()];
    }

    /** Owner thread: changes a budget's limit (live usage above it is not taken back, new allocations fail). */
    public void setLimit(Subsystem s, long limit) {
        checkOwner();
        limits[s.ordinal()] = limit;
        stats.setLimit(s, limit);
    }

    /** Owner thread: {@code r} is asked to give memory back when {@code s} is over budget or memory is short. */
    public void registerReclaimer(Subsystem s, Reclaimer r) {
        checkOwner();
        reclaimers[s.ordinal()].add(r);
    }

    /** The usable size of a request of {@code bytes}: its size class or power-of-two block. */
    public static long roundedSize(long bytes) {
        if (bytes <= CLASS_SIZES[CLASSES - 1]) {
            return CLASS_SIZES[classOf(bytes)];
        }
        return MIN_BLOCK << orderOf(bytes);
    }

    static int classOf(long bytes) {
        if (bytes <= 512) {
            return 0;
        }
        return 64 - Long.numberOfLeadingZeros(bytes - 1) - 9;
    }

    static int orderOf(long bytes) {
        long units = (bytes + MIN_BLOCK - 1) >>> MIN_SHIFT;
        return units <= 1 ? 0 : 64 - Long.numberOfLeadingZeros(units - 1);
    }

    // ------------------------------------------------------------------ allocation

    /**
     * Owner thread: allocates at least {@code bytes} for {@code subsystem} and returns the block's offset in the
     * region, or {@link #NO_MEMORY} (then {@link #lastFailure()} says why). Never throws for lack of memory.
     */
    public long allocate(long bytes, Subsystem subsystem) {
        checkOwner();
        if (bytes <= 0) {
            throw new IllegalArgumentException("allocation size must be > 0, got " + bytes);
        }
        long size = roundedSize(bytes);
        if (size > config.bytes()) {
            return fail(subsystem, bytes, "larger than the whole arena (" + config.bytes() + " bytes)");
        }
        int s = subsystem.ordinal();
        if (used[s] + size > limits[s]) {
            reclaim(s, used[s] + size - limits[s]);
            if (used[s] + size > limits[s]) {
                return fail(subsystem, bytes, "over the " + subsystem + " budget: " + used[s] + " of " + limits[s]
                    + " bytes in use");
            }
        }
        long offset = size <= CLASS_SIZES[CLASSES - 1] ? allocateSmall(classOf(bytes), s) : allocateLarge(orderOf(bytes), s);
        if (offset < 0) {
            reclaimAll(size);
            offset = size <= CLASS_SIZES[CLASSES - 1] ? allocateSmall(classOf(bytes), s) : allocateLarge(orderOf(bytes), s);
            if (offset < 0) {
                int lo = buddy.largestFreeOrder();
                return fail(subsystem, bytes, "shard memory exhausted: " + freeBytes() + " bytes free, largest free block "
                    + (lo < 0 ? 0 : MIN_BLOCK << lo) + " bytes");
            }
        }
        used[s] += size;
        usedTotal += size;
        liveAllocations++;
        if (usedTotal > highWater) {
            highWater = usedTotal;
        }
        stats.onAllocate(s, used[s], usedTotal, highWater);
        if (debug) {
            try {
                checkPoison(offset, size);
            } catch (IllegalStateException useAfterFree) {
                free(offset); // re-poisons it; the caller's request fails with the report
                throw useAfterFree;
            }
            sites.put(offset, new Throwable("allocated " + bytes + " bytes for " + subsystem + " at offset " + offset));
            freedSites.remove(offset);
        }
        return offset;
    }

    /** Like {@link #allocate} but throws {@link ArenaExhaustedException} instead of returning NO_MEMORY. */
    public long allocateOrThrow(long bytes, Subsystem subsystem) {
        long offset = allocate(bytes, subsystem);
        if (offset == NO_MEMORY) {
            throw new ArenaExhaustedException(lastFailure, subsystem, bytes);
        }
        return offset;
    }

    private long fail(Subsystem subsystem, long bytes, String why) {
        lastFailure = "cannot allocate " + bytes + " bytes for " + subsystem + ": " + why;
        stats.onFailure();
        return NO_MEMORY;
    }

    private void reclaim(int s, long wanted) {
        List<Reclaimer> rs = reclaimers[s];
        long got = 0;
        for (int i = 0; i < rs.size() && got < wanted; i++) {
            got += rs.get(i).reclaim(wanted - got);
        }
    }

    private void reclaimAll(long wanted) {
        long got = 0;
        // The batch cache first: it exists to give memory back.
        for (int pass = 0; pass < SUBSYSTEMS && got < wanted; pass++) {
            int s = pass == 0 ? Subsystem.BATCH_CACHE.ordinal() : (pass <= Subsystem.BATCH_CACHE.ordinal() ? pass - 1 : pass);
            List<Reclaimer> rs = reclaimers[s];
            for (int i = 0; i < rs.size() && got < wanted; i++) {
                got += rs.get(i).reclaim(wanted - got);
            }
        }
    }

    private long allocateLarge(int order, int s) {
        int unit = buddy.allocate(order);
        if (unit < 0) {
            return NO_MEMORY;
        }
        blockSubsystem[unit] = (byte) s;
        stats.onBuddyChange(buddy);
        return (long) unit << MIN_SHIFT;
    }

    private long allocateSmall(int cls, int s) {
        int list = cls * SUBSYSTEMS + s;
        int slab = partialHeads[list];
        if (slab < 0) {
            slab = emptySlabs[list];
            if (slab >= 0) {
                emptySlabs[list] = -1;
            } else {
                slab = buddy.allocate(0);
                if (slab < 0) {
                    return NO_MEMORY;
                }
                stats.onBuddyChange(buddy);
                int objects = (int) (MIN_BLOCK / CLASS_SIZES[cls]);
                slabClass[slab] = (byte) (cls + 1);
                blockSubsystem[slab] = (byte) s;
                slabBits[2 * slab] = objects >= 64 ? -1L : (1L << objects) - 1;
                slabBits[2 * slab + 1] = objects >= 128 ? -1L : (objects > 64 ? (1L << (objects - 64)) - 1 : 0L);
                slabFree[slab] = (short) objects;
            }
            linkSlab(list, slab);
        }
        int bit;
        long lo = slabBits[2 * slab];
        if (lo != 0) {
            bit = Long.numberOfTrailingZeros(lo);
            slabBits[2 * slab] = lo & (lo - 1);
        } else {
            long hi = slabBits[2 * slab + 1];
            bit = 64 + Long.numberOfTrailingZeros(hi);
            slabBits[2 * slab + 1] = hi & (hi - 1);
        }
        if (--slabFree[slab] == 0) {
            unlinkSlab(list, slab);
        }
        return ((long) slab << MIN_SHIFT) + (long) bit * CLASS_SIZES[cls];
    }

    private void linkSlab(int list, int slab) {
        int head = partialHeads[list];
        slabNext[slab] = head;
        slabPrev[slab] = -1;
        if (head >= 0) {
            slabPrev[head] = slab;
        }
        partialHeads[list] = slab;
    }

    private void unlinkSlab(int list, int slab) {
        int n = slabNext[slab];
        int p = slabPrev[slab];
        if (p >= 0) {
            slabNext[p] = n;
        } else {
            partialHeads[list] = n;
        }
        if (n >= 0) {
            slabPrev[n] = p;
        }
        slabNext[slab] = -1;
        slabPrev[slab] = -1;
    }

    /** Owner thread: the rounded size of the live block at {@code offset}. */
    public long sizeOf(long offset) {
        int unit = (int) (offset >>> MIN_SHIFT);
        int cls = slabClass[unit] - 1;
        if (cls >= 0) {
            return CLASS_SIZES[cls];
        }
        int order = buddy.allocatedOrder(unit);
        if (order < 0 || (offset & (MIN_BLOCK - 1)) != 0) {
            throw new IllegalArgumentException("offset " + offset + " is not a live block");
        }
        return MIN_BLOCK << order;
    }

    // ------------------------------------------------------------------ free

    /**
     * Frees the block at {@code offset}. On the owner thread at once; on any other thread it is queued for the
     * owner (see the class comment). A double free or an offset that is no block throws (on the owner).
     */
    public void free(long offset) {
        if (Thread.currentThread() != owner) {
            freeRemote(offset);
            return;
        }
        if (closed) {
            throw new IllegalStateException("free on a closed arena");
        }
        if (offset < 0 || offset >= config.bytes()) {
            throw new IllegalArgumentException("offset " + offset + " is outside the arena (" + config.bytes() + " bytes)");
        }
        int unit = (int) (offset >>> MIN_SHIFT);
        int cls = slabClass[unit] - 1;
        int s = blockSubsystem[unit];
        long size;
        if (cls >= 0) {
            size = CLASS_SIZES[cls];
            int within = (int) (offset & (MIN_BLOCK - 1));
            if (within % size != 0) {
                throw new IllegalArgumentException("offset " + offset + " is inside a " + size + "-byte block, not its start");
            }
            int bit = within / (int) size;
            int word = 2 * unit + (bit >>> 6);
            long mask = 1L << (bit & 63);
            if ((slabBits[word] & mask) != 0) {
                throw new IllegalStateException(doubleFree(offset, size));
            }
            poison(offset, size);
            slabBits[word] |= mask;
            int list = cls * SUBSYSTEMS + s;
            int objects = (int) (MIN_BLOCK / size);
            int free = ++slabFree[unit];
            if (free == 1) {
                linkSlab(list, unit);
            }
            if (free == objects) {
                unlinkSlab(list, unit);
                if (emptySlabs[list] < 0) {
                    emptySlabs[list] = unit; // keep one empty slab per list to avoid split/merge churn
                } else {
                    slabClass[unit] = 0;
                    buddy.free(unit);
                    stats.onBuddyChange(buddy);
                }
            }
        } else {
            int order = buddy.allocatedOrder(unit);
            if (order < 0 || (offset & (MIN_BLOCK - 1)) != 0) {
                if (order < 0 && (offset & (MIN_BLOCK - 1)) == 0) {
                    throw new IllegalStateException(doubleFree(offset, -1));
                }
                throw new IllegalArgumentException("offset " + offset + " is not the start of a block");
            }
            size = MIN_BLOCK << order;
            poison(offset, size);
            buddy.free(unit);
            stats.onBuddyChange(buddy);
        }
        used[s] -= size;
        usedTotal -= size;
        liveAllocations--;
        stats.onFree(s, used[s], usedTotal);
        if (debug) {
            Throwable site = sites.remove(offset);
            freedSites.put(offset, site != null ? site : new Throwable("freed at offset " + offset));
        }
    }

    private String doubleFree(long offset, long size) {
        String msg = "double free of offset " + offset + (size > 0 ? " (" + size + "-byte block)" : "");
        if (debug && freedSites.get(offset) != null) {
            msg += "; it was last " + stackText(freedSites.get(offset));
        }
        return msg;
    }

    private void poison(long offset, long size) {
        if (debug) {
            region.asSlice(offset, size).fill(POISON);
        }
    }

    private void checkPoison(long offset, long size) {
        MemorySegment block = region.asSlice(offset, size);
        long mismatch = -1;
        long poison8 = 0xDBDBDBDBDBDBDBDBL;
        for (long i = 0; i + 8 <= size; i += 8) {
            if (block.get(ValueLayout.JAVA_LONG_UNALIGNED, i) != poison8) {
                mismatch = i;
                break;
            }
        }
        if (mismatch >= 0) {
            Throwable freed = freedSites.get(offset);
            throw new IllegalStateException("use after free: the block at offset " + offset + " (" + size
                + " bytes) was written at byte " + mismatch + " while free"
                + (freed != null ? "; it was " + stackText(freed) : ""));
        }
    }

    private void freeRemote(long offset) {
        ShardArenas sa = shardArenas;
        if (sa != null && sa.batchRemoteFree(this, offset)) {
            stats.onRemoteFree();
            return;
        }
        while (true) {
            if (remoteFrees.offer(offset)) {
                stats.onRemoteFree();
                return;
            }
            if (closed) {
                return;
            }
            Thread.onSpinWait(); // the owner drains every loop turn
        }
    }

    /** Owner thread: applies the frees other threads queued; returns how many. Called by the shard loop. */
    public int drainRemoteFrees() {
        checkOwner();
        int n = 0;
        long offset;
        while (n < 8192 && (offset = remoteFrees.poll()) != MpscLongQueue.EMPTY) {
            free(offset);
            n++;
        }
        return n;
    }

    // ------------------------------------------------------------------ leaks and close

    /** Owner thread: blocks currently allocated. */
    public long liveAllocations() {
        return liveAllocations;
    }

    public long freeBytes() {
        return buddy.freeUnits() << MIN_SHIFT;
    }

    /** Throws with every live allocation's site (debug mode) if anything is still allocated. */
    public void checkNoLeaks() {
        drainRemoteFreesIfOwner();
        if (liveAllocations == 0) {
            return;
        }
        StringBuilder sb = new StringBuilder(liveAllocations + " allocation(s) leaked in arena " + this);
        if (debug) {
            int shown = 0;
            for (Throwable t : sites.values()) {
                if (shown++ == 10) {
                    sb.append("\n  ...");
                    break;
                }
                sb.append("\n  ").append(stackText(t));
            }
        } else {
            sb.append(" (run with -Disthmus.arena.debug=true for allocation sites)");
        }
        throw new IllegalStateException(sb.toString());
    }

    private void drainRemoteFreesIfOwner() {
        if (Thread.currentThread() == owner && !closed) {
            drainRemoteFrees();
        }
    }

    private static String stackText(Throwable t) {
        StringBuilder sb = new StringBuilder(t.getMessage());
        StackTraceElement[] st = t.getStackTrace();
        for (int i = 0; i < Math.min(st.length, 8); i++) {
            sb.append("\n      at ").append(st[i]);
        }
        return sb.toString();
    }

    public boolean isClosed() {
        return closed;
    }

    /** Unmaps the region. Memory still allocated is lost to its holders: close only after everything is freed. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        drainRemoteFreesIfOwner();
        if (liveAllocations > 0) {
            try {
                checkNoLeaks();
            } catch (IllegalStateException leak) {
                if (debug) {
                    CLOSED_WITH_LEAKS.add(leak.getMessage());
                } else {
                    System.getLogger("dev.isthmus.arena").log(System.Logger.Level.WARNING, leak.getMessage());
                }
            }
        }
        closed = true;
        OPEN.remove(this);
        Libc.munmap(region);
    }

    private void checkOwner() {
        if (Thread.currentThread() != owner) {
            throw new IllegalStateException("arena owned by " + owner.getName() + " used from "
                + Thread.currentThread().getName());
        }
        if (closed) {
            throw new IllegalStateException("arena is closed");
        }
    }

    private void publishStats() {
        stats.onBuddyChange(buddy);
        for (Subsystem s : Subsystem.ALL) {
            stats.setLimit(s, limits[s.ordinal()]);
        }
    }

    @Override
    public String toString() {
        return "MemoryArena{" + config.bytes() + " bytes, used " + usedTotal + ", live " + liveAllocations + ", owner "
            + owner.getName() + "}";
    }
}
