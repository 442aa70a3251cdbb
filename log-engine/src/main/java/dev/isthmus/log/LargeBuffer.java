package dev.isthmus.log;

import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Aligned memory for one read of a batch larger than the log's read windows ({@link ChunkPool} chunks sized for
 * a default batch): a batch of a topic whose max.message.bytes is larger, or one written before the limit was
 * lowered. Without it the windows would have to hold the largest batch any topic may have, times the number of
 * windows, on every shard; with it a 64 MiB batch costs memory only while it is being read.
 *
 * <p>Taken from the shard's arena under {@link Subsystem#BATCH_CACHE} when the log has a batch cache (cached
 * ranges are reclaimed to make room; the arena rounds the block up to a power of two), else from a Java arena of
 * its own (a log opened without a cache, as in tools and tests). {@link #allocate} answers null when the arena
 * cannot give the memory: the read then fails with {@link LogException.Kind#NO_MEMORY} instead of waiting or
 * growing memory. Owner: the log's shard thread; {@link #free()} exactly once.
 */
final class LargeBuffer {
    private final MemoryArena arena;
    private final long offset;
    private final Arena own;
    private final MemorySegment segment;

    private LargeBuffer(MemoryArena arena, long offset, Arena own, MemorySegment segment) {
        this.arena = arena;
        this.offset = offset;
        this.own = own;
        this.segment = segment;
    }

    /** At least {@code bytes} (rounded up to 4096) of 4096-aligned memory for {@code log}'s reads, or null. */
    static LargeBuffer allocate(Log log, long bytes) {
        long size = (bytes + 4095) / 4096 * 4096;
        BatchCache cache = log.batchCache();
        if (cache != null) {
            MemoryArena a = cache.arena;
            long off = a.allocate(size, Subsystem.BATCH_CACHE);
            if (off == MemoryArena.NO_MEMORY) {
                log.largeBufferFailed(a.lastFailure());
                return null;
            }
            return new LargeBuffer(a, off, null, a.segment(off, size));
        }
        Arena own = Arena.ofShared();
        return new LargeBuffer(null, -1, own, own.allocate(size, 4096));
    }

    MemorySegment segment() {
        return segment;
    }

    void free() {
        if (arena != null) {
            arena.free(offset);
        } else {
            own.close();
        }
    }
}
