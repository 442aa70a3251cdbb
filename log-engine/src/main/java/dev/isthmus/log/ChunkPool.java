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
    }

    @Override
    public void close() {
        if (ownsRegion) {
            Libc.munmap(region);
        }
    }
}
