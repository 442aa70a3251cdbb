package dev.isthmus.log;

import dev.isthmus.ffi.Libc;

import java.lang.foreign.MemorySegment;

/**
 * Fixed-size, aligned I/O buffers for the write-behind path: {@code count} chunks of {@code chunkBytes}
 * carved from one region. The count is the write-behind memory budget: when every chunk is in use, appends
 * wait (back-pressure) instead of growing memory.
 *
 * <p>Owner: one shard thread. The free list is an int stack: no per-chunk objects besides the slice views
 * created once at construction.
 */
public final class ChunkPool implements AutoCloseable {
    private final MemorySegment region;
    private final boolean ownsRegion;
    private final int chunkBytes;
    private final MemorySegment[] chunks;
    private final int[] free;
    private int freeTop;
    /** Users waiting for a free chunk ({@link #whenAvailable}), oldest first; null until one waits. */
    private java.util.ArrayDeque<Runnable> waiters;

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

    public int available() {
        return freeTop;
    }

    /** A zeroed chunk id, or -1 when the budget is used up. */
    public int acquire() {
        if (freeTop == 0) {
            return -1;
        }
        int id = free[--freeTop];
        chunks[id].fill((byte) 0);
        return id;
    }

    /**
     * A chunk id whose memory holds whatever its last user left, or -1 when the budget is used up: for users
     * that overwrite (or zero) every byte they use, such as direct-I/O read windows and the appender.
     */
    public int acquireUninitialized() {
        if (freeTop == 0) {
            return -1;
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
        free[freeTop++] = id;
        if (waiters != null && !waiters.isEmpty()) {
            waiters.poll().run(); // the oldest waiter takes it (one null check on the common path)
        }
    }

    /**
     * Runs {@code user} once a chunk is free: at once when one is, otherwise from the {@link #release} that frees one
     * (waiters in arrival order, one per release). For users that can wait and must not fail for lack of memory,
     * such as a log's recovery and suffix truncation when many logs of the shard open or truncate at once; {@code user}
     * takes its chunk with {@link #acquireUninitialized()} (or {@link #acquire()}).
     */
    public void whenAvailable(Runnable user) {
        if (freeTop > 0) {
            user.run();
            return;
        }
        if (waiters == null) {
            waiters = new java.util.ArrayDeque<>();
        }
        waiters.add(user);
    }

    @Override
    public void close() {
        if (ownsRegion) {
            Libc.munmap(region);
        }
    }
}
