package dev.isthmus.raft.server;

import dev.isthmus.log.ChunkPool;

/**
 * Where the logs of a shard's groups take their write-behind chunks and read windows. The gateway passes the
 * pools its shards carve from their arenas (the same pools its other logs use); {@link #allocate} makes
 * dedicated ones. Called on each shard's thread at start; the pools belong to that shard.
 */
public interface StoragePools {
    ChunkPool writePool(int shard);

    ChunkPool readPool(int shard);

    /** Frees pools this object allocated (called on each shard at close); nothing for borrowed pools. */
    default void release(int shard) {
    }

    /**
     * Dedicated pools per shard: {@code writeChunks} chunks of {@code writeChunkBytes} for write-behind and
     * {@code readWindows} windows of {@code readWindowBytes} for reads, freed at close.
     */
    static StoragePools allocate(int shards, int writeChunks, int writeChunkBytes, int readWindows, int readWindowBytes) {
        ChunkPool[] writes = new ChunkPool[shards];
        ChunkPool[] reads = new ChunkPool[shards];
        return new StoragePools() {
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
            }
        };
    }
}
