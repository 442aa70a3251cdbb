package dev.isthmus.log;

import dev.isthmus.ffi.Libc;
import dev.isthmus.uring.Verify;

import java.lang.foreign.MemorySegment;

/**
 * Fixed-size, aligned I/O buffers: {@code count} chunks of {@code chunkBytes} carved from one region. The count is
 * a memory budget (the write-behind budget of a shard's logs, or its read windows): when it is used up, users wait
 * (back-pressure) instead of growing memory.
 *
 * <h2>Sharing one budget between many logs</h2>
 * A shard's logs all take their write-behind chunks from one pool, and there may be far more logs than chunks (a
 * 64 MiB shard has 32 chunks of 256 KiB and may host 1000 partitions). Three rules keep every log able to make
 * progress however many there are:
 * <ul>
 * <li><b>Idle chunks are lent, not kept.</b> A log's partly filled tail chunk whose bytes are all written stays
 *     with the log ({@code markIdle}: the next small append goes on filling it, no copy), but counts as available:
 *     when the free list is empty, {@link #acquireUninitialized()} takes the least recently idled chunk back from
 *     its holder ({@code IdleHolder.giveBack}: the holder keeps the few bytes of its last, partial aligned block and
 *     restores them into a new chunk on its next append). A log that is not writing therefore holds no chunk.</li>
 * <li><b>Waiting logs are served in order.</b> An append that cannot have its chunks now joins a FIFO of
 *     {@link Waiter}s ({@link #admit} returns false; the log answers {@link Log#NO_MEMORY}). While anyone waits, other
 *     appends queue behind them instead of taking the chunks that come back, so a busy log cannot starve a quiet one.
 *     When chunks come back, the head's need is reserved for it and it is told ({@link Waiter}'s callback, which
 *     normally retries at once); its retry is then admitted.</li>
 * <li><b>Nothing is silent.</b> Waits, reclaims and the longest wait are counted ({@link #waitsTotal()},
 *     {@link #reclaimsTotal()}, {@link #waitNsTotal()}), and {@link #checkWaiters(long)}, called by the shard's loop
 *     while someone waits, logs a rate-limited warning once a log has waited {@link #WAIT_WARN_NS} or more.</li>
 * </ul>
 * Wake-ups are delivered at safe points only: {@link #wakeIfPending()} runs the waiters' callbacks unless a user of
 * the pool is in the middle of an append or flush ({@code enter()}/{@code exit()}); the appenders call it at the
 * end of every completion, and the loop's {@link #checkWaiters(long)} is a backstop.
 *
 * <p>Owner: one shard thread; every method runs there. The free list is an int stack and the idle chunks an
 * intrusive list over chunk ids: no per-chunk objects besides the slice views created once at construction, no
 * allocation on the data path.
 */
public final class ChunkPool implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.log");
    /** A log waiting this long for write-behind memory is reported. */
    public static final long WAIT_WARN_NS = 1_000_000_000L;
    /** At most one warning per this interval per pool. */
    static final long WARN_INTERVAL_NS = 10_000_000_000L;

    /** Holds an idle chunk and gives it back on request (a log's written tail). */
    interface IdleHolder {
        /**
         * The pool takes chunk {@code id} back (already unlinked from the idle list; the pool frees it on return):
         * stop using it, keeping whatever of its bytes is still needed.
         */
        void giveBack(int id);
    }

    /**
     * A user of the pool (one per log) that may have to wait for chunks. Its callback runs on the owner thread, at a
     * safe point (a completion, or the loop's backstop), once chunks were reserved for it: retry the append then.
     */
    public static final class Waiter {
        private final Runnable onAvailable;
        private Waiter next;
        private boolean queued;
        private boolean granted;
        /** Chunks asked for (queued) or reserved (granted). */
        private int need;
        private long sinceNs;

        public Waiter(Runnable onAvailable) {
            this.onAvailable = onAvailable;
        }

        /** Queued or holding a reservation not used yet. */
        public boolean waiting() {
            return queued || granted;
        }
    }

    private final MemorySegment region;
    private final boolean ownsRegion;
    private final int chunkBytes;
    private final MemorySegment[] chunks;
    private final int[] free;
    private int freeTop;

    // Idle chunks, least recently idled first: an intrusive doubly linked list over chunk ids (-1 ends it).
    private final IdleHolder[] idleHolder;
    private final int[] idlePrev;
    private final int[] idleNext;
    private int idleHead = -1;
    private int idleTail = -1;
    private int idleCount;

    // Waiters: FIFO (singly linked through Waiter.next), and chunks reserved for those told to retry.
    private Waiter head;
    private Waiter tail;
    private int queuedCount;
    private int reserved;
    private boolean wakePending;
    private boolean waking;
    /** Users in the middle of an append or flush: wake-ups wait until they are out. */
    private int depth;

    private long waitsTotal;
    private long reclaimsTotal;
    private long waitNsTotal;
    private long waitNsMax;
    private long lastWarnNs;
    private long warningsSuppressed;

    /**
     * A pool over {@code region} (page-aligned memory the caller owns, e.g. a slice of the shard's arena).
     *
     * @param chunkBytes a multiple of 4096
     */
    public ChunkPool(MemorySegment region, int chunkBytes) {
        this(region, chunkBytes, false);
    }

    private ChunkPool(MemorySegment region, int chunkBytes, boolean owns) {
        if (chunkBytes <= 0 || chunkBytes % 4096 != 0) {
            throw new IllegalArgumentException("chunk size must be a positive multiple of 4096, got " + chunkBytes);
        }
        if (region.address() % 4096 != 0) {
            throw new IllegalArgumentException("chunk pool memory must be 4096-aligned");
        }
        int count = (int) (region.byteSize() / chunkBytes);
        if (count < 2) {
            throw new IllegalArgumentException("chunk pool needs room for at least 2 chunks of " + chunkBytes
                + " bytes, got " + region.byteSize());
        }
        this.region = region;
        this.ownsRegion = owns;
        this.chunkBytes = chunkBytes;
        this.chunks = new MemorySegment[count];
        this.free = new int[count];
        this.idleHolder = new IdleHolder[count];
        this.idlePrev = new int[count];
        this.idleNext = new int[count];
        for (int i = 0; i < count; i++) {
            chunks[i] = region.asSlice((long) i * chunkBytes, chunkBytes);
            free[freeTop++] = count - 1 - i;
        }
    }

    /** A pool with its own mmapped memory of {@code count} chunks. */
    public static ChunkPool allocate(int count, int chunkBytes) {
        return new ChunkPool(Libc.mmapAnonymous((long) count * chunkBytes, true), chunkBytes, true);
    }

    public int chunkBytes() {
        return chunkBytes;
    }

    public int capacity() {
        return chunks.length;
    }

    /** Chunks that can be had now: free ones and idle ones (taken back from their holders on demand). */
    public int available() {
        return freeTop + idleCount;
    }

    /** Chunks on the free list. */
    public int free() {
        return freeTop;
    }

    /** Chunks lent to idle holders (counted in {@link #available()}). */
    public int idle() {
        return idleCount;
    }

    /** A zeroed chunk id, or -1 when the budget is used up. */
    public int acquire() {
        int id = acquireUninitialized();
        if (id >= 0) {
            chunks[id].fill((byte) 0);
        }
        return id;
    }

    /**
     * A chunk id whose memory holds whatever its last user left, or -1 when the budget is used up: for users
     * that overwrite (or zero) every byte they use, such as direct-I/O read windows and the appender. Takes the
     * least recently idled chunk back from its holder when none is free.
     */
    public int acquireUninitialized() {
        if (freeTop == 0) {
            if (idleHead < 0) {
                return -1;
            }
            int id = idleHead;
            IdleHolder h = idleHolder[id];
            unmarkIdle(id);
            reclaimsTotal++;
            h.giveBack(id);
            return id;
        }
        return free[--freeTop];
    }

    public MemorySegment chunk(int id) {
        return chunks[id];
    }

    public void release(int id) {
        if (freeTop >= chunks.length) {
            throw new IllegalStateException("chunk " + id + " released twice");
        }
        Verify.that(idleHolder[id] == null, "chunk %d released while idle", id);
        free[freeTop++] = id;
        if (head != null) {
            wakePending = true;
        }
    }

    // ------------------------------------------------------------------ idle chunks

    /** Lends {@code id} (held by {@code holder}, all its bytes written) to the pool until the holder uses it again. */
    void markIdle(int id, IdleHolder holder) {
        Verify.that(idleHolder[id] == null, "chunk %d marked idle twice", id);
        idleHolder[id] = holder;
        idlePrev[id] = idleTail;
        idleNext[id] = -1;
        if (idleTail >= 0) {
            idleNext[idleTail] = id;
        } else {
            idleHead = id;
        }
        idleTail = id;
        idleCount++;
        if (head != null) {
            wakePending = true;
        }
    }

    /** The holder of idle chunk {@code id} uses it again (or the pool takes it back). */
    void unmarkIdle(int id) {
        Verify.that(idleHolder[id] != null, "chunk %d is not idle", id);
        int p = idlePrev[id];
        int n = idleNext[id];
        if (p >= 0) {
            idleNext[p] = n;
        } else {
            idleHead = n;
        }
        if (n >= 0) {
            idlePrev[n] = p;
        } else {
            idleTail = p;
        }
        idleHolder[id] = null;
        idleCount--;
    }

    // ------------------------------------------------------------------ waiting for chunks

    /**
     * Whether {@code w} may take {@code take} chunks out of {@link #available()} now (counting an idle chunk of its
     * own that it will use again). When it may not, it joins the queue (or keeps its place) and its callback runs
     * once its chunks are reserved; when it holds a reservation, the reservation is used. A user told "no" must
     * retry after its callback, or {@link #cancel} (closing its log does).
     */
    public boolean admit(Waiter w, int take) {
        if (w.granted) {
            w.granted = false;
            reserved -= w.need;
            if (available() - reserved >= take) {
                return true;
            }
            // Its need grew meanwhile (an idle chunk of its own was taken back): first in line again.
            w.need = take;
            w.queued = true;
            w.next = head;
            head = w;
            if (tail == null) {
                tail = w;
            }
            queuedCount++;
            return false;
        }
        if (w.queued) {
            w.need = take;
            if (head == w && available() - reserved >= take) {
                pop();
                recordWait(w);
                return true;
            }
            return false;
        }
        if (head == null && available() - reserved >= take) {
            return true;
        }
        w.need = take;
        w.queued = true;
        w.next = null;
        w.sinceNs = System.nanoTime();
        if (tail == null) {
            head = w;
        } else {
            tail.next = w;
        }
        tail = w;
        queuedCount++;
        waitsTotal++;
        return false;
    }

    /** {@code w} no longer waits (its log closed or failed): its place and any reservation are given up. */
    public void cancel(Waiter w) {
        if (w.granted) {
            w.granted = false;
            reserved -= w.need;
            wakePending = true;
        }
        if (!w.queued) {
            return;
        }
        Waiter prev = null;
        for (Waiter x = head; x != null; prev = x, x = x.next) {
            if (x == w) {
                if (prev == null) {
                    head = w.next;
                } else {
                    prev.next = w.next;
                }
                if (tail == w) {
                    tail = prev;
                }
                break;
            }
        }
        w.next = null;
        w.queued = false;
        queuedCount--;
        wakePending = true;
    }

    private Waiter pop() {
        Waiter w = head;
        head = w.next;
        if (head == null) {
            tail = null;
        }
        w.next = null;
        w.queued = false;
        queuedCount--;
        return w;
    }

    private void recordWait(Waiter w) {
        long ns = System.nanoTime() - w.sinceNs;
        waitNsTotal += ns;
        waitNsMax = Math.max(waitNsMax, ns);
    }

    /** Whether any log waits for chunks (queued, or told to retry and not yet retried). */
    public boolean hasWaiters() {
        return head != null || reserved > 0;
    }

    /** A user starts an append or flush: wake-ups wait until it is out (a waiter's retry must not run inside it). */
    void enter() {
        depth++;
    }

    void exit() {
        depth--;
    }

    /**
     * Tells queued waiters, in order, that their chunks are reserved, while what is available covers the next one's
     * need; does nothing unless chunks came back since the last call, or inside a user's append or flush. Call at a
     * safe point: the appenders call it at the end of every completion.
     */
    public void wakeIfPending() {
        if (!wakePending || depth > 0 || waking) {
            return;
        }
        wakePending = false;
        waking = true;
        try {
            for (int bound = queuedCount; bound > 0 && head != null && available() - reserved >= head.need; bound--) {
                Waiter w = pop();
                recordWait(w);
                w.granted = true;
                reserved += w.need;
                w.onAvailable.run(); // normally retries at once, using the reservation
            }
        } finally {
            waking = false;
        }
    }

    /**
     * The loop's backstop while {@link #hasWaiters()}: serves waiters whose chunks are there, and warns (at most once
     * per {@link #WARN_INTERVAL_NS}) when the head of the queue has waited {@link #WAIT_WARN_NS} or more.
     */
    public void checkWaiters(long nowNs) {
        if (head == null) {
            return;
        }
        wakePending = true;
        wakeIfPending();
        Waiter h = head;
        if (h == null || nowNs - h.sinceNs < WAIT_WARN_NS) {
            return;
        }
        if (lastWarnNs != 0 && nowNs - lastWarnNs < WARN_INTERVAL_NS) {
            warningsSuppressed++;
            return;
        }
        lastWarnNs = nowNs;
        LOG.log(System.Logger.Level.WARNING, "write-behind memory is short: " + queuedCount + " log(s) wait for "
            + "chunks, the first for " + (nowNs - h.sinceNs) / 1_000_000 + " ms (it needs " + h.need + " of "
            + chunks.length + " chunks of " + chunkBytes / 1024 + " KiB; " + freeTop + " free, " + idleCount
            + " idle, " + reserved + " reserved, the rest being written). Appends resume as writes complete; "
            + "if this persists the disk is slower than the appends, or the shard needs more memory (--memory)"
            + (warningsSuppressed > 0 ? " (" + warningsSuppressed + " similar checks since the last warning)" : ""));
        warningsSuppressed = 0;
    }

    /** Logs queued for chunks now. */
    public int waiting() {
        return queuedCount;
    }

    /** Times a log had to wait for chunks. */
    public long waitsTotal() {
        return waitsTotal;
    }

    /** Idle chunks taken back from their holders for someone else. */
    public long reclaimsTotal() {
        return reclaimsTotal;
    }

    /** Time logs spent waiting for chunks, in total (completed waits). */
    public long waitNsTotal() {
        return waitNsTotal;
    }

    /** The longest completed wait. */
    public long waitNsMax() {
        return waitNsMax;
    }

    @Override
    public void close() {
        if (ownsRegion) {
            Libc.munmap(region);
        }
    }
}
