package dev.isthmus.raft.server;

import dev.isthmus.arena.ArenaConfig;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.log.BatchCache;
import dev.isthmus.log.ChunkPool;

/**
 * Where the logs of a shard's groups take their write-behind chunks, read windows and batch cache. The gateway
 * passes the pools and the cache its shards carve from their arenas (the same ones its other logs use);
 * {@link #allocate} makes dedicated ones. Called on each shard's thread at start; the pools belong to that shard.
 */
public interface StoragePools {
    ChunkPool writePool(int shard);

    ChunkPool readPool(int shard);

    /**
     * The shard's {@link BatchCache}, or null for none. With a cache, the groups' logs are opened with it: their
     * appends are cached and {@code log().read(from, bound, maxBytes, Log.ChainReadHandler)} serves zero-copy
     * chains with read-ahead (what a Kafka fetch wants); without one, only the copying reads work.
     */
    default BatchCache batchCache(int shard) {
        return null;
    }

    /**
     * The shard's stock of zeroed segment files for its busy logs, or null for none (see
     * {@link dev.isthmus.log.ZeroedSegments}): handed to the shard's {@link dev.isthmus.log.LogManager}, whose logs
     * take it when they open. The caller owns and closes it.
     */
    default dev.isthmus.log.ZeroedSegments zeroedSegments(int shard) {
        return null;
    }

    /** Frees pools this object allocated (called on each shard at close); nothing for borrowed pools. */
    default void release(int shard) {
    }

    /**
     * Dedicated pools per shard: {@code writeChunks} chunks of {@code writeChunkBytes} for write-behind and
     * {@code readWindows} windows of {@code readWindowBytes} for reads, freed at close.
     */
    static StoragePools allocate(int shards, int writeChunks, int writeChunkBytes, int readWindows, int readWindowBytes) {
        return allocate(shards, writeChunks, writeChunkBytes, readWindows, readWindowBytes, 0);
    }

    /**
     * {@link #allocate(int, int, int, int, int)} plus, when {@code cacheArenaBytes > 0}, a batch cache per shard
     * over an arena of that size made on the shard's thread (its BATCH_CACHE budget bounds the cache), emptied
     * and unmapped at close.
     */
    static StoragePools allocate(int shards, int writeChunks, int writeChunkBytes, int readWindows, int readWindowBytes,
                                 long cacheArenaBytes) {
        ChunkPool[] writes = new ChunkPool[shards];
        ChunkPool[] reads = new ChunkPool[shards];
        BatchCache[] caches = new BatchCache[shards];
        return new StoragePools() {
            @Override
            public BatchCache batchCache(int shard) {
                if (cacheArenaBytes <= 0) {
                    return null;
                }
                if (caches[shard] == null) {
                    caches[shard] = new BatchCache(MemoryArena.create(ArenaConfig.of(cacheArenaBytes)));
                }
                return caches[shard];
            }

            @Override
            public ChunkPool writePool(int shard) {
                if (writes[shard] == null) {
                    writes[shard] = ChunkPool.allocate(writeChunks, writeChunkBytes);
                }
                return writes[shard];
            }

            @Override
            public ChunkPool readPool(int shard) {
                if (reads[shard] == null) {
                    reads[shard] = ChunkPool.allocate(readWindows, readWindowBytes);
                }
                return reads[shard];
            }

            @Override
            public void release(int shard) {
                if (writes[shard] != null) {
                    writes[shard].close();
                    writes[shard] = null;
                }
                if (reads[shard] != null) {
                    reads[shard].close();
                    reads[shard] = null;
                }
                if (caches[shard] != null) {
                    // Every log of the shard is closed: its ranges are unused; shares handed out were released.
                    caches[shard].evict(Long.MAX_VALUE);
                    caches[shard].arena().drainRemoteFrees();
                    caches[shard].arena().close();
                    caches[shard] = null;
                }
            }
        };
    }
}
