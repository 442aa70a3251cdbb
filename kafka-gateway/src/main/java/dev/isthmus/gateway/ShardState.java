package dev.isthmus.gateway;

import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.log.ChunkPool;
import dev.isthmus.log.LogConfig;
import dev.isthmus.log.LogManager;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.Shard;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * What one shard owns in the broker: its arena, its log manager (write-behind and read windows carved from
 * the arena's WRITE_BEHIND and READ_AHEAD budgets), its partitions, and its copy of the topic table.
 * Owner-shard only.
 */
final class ShardState {
    static final int WRITE_CHUNK_BYTES = 256 * 1024;
    final Shard shard;
    final MemoryArena arena;
    final LogManager logs;
    final Map<String, Partition> partitions = new HashMap<>();
    final Map<String, Promise<Partition>> opening = new HashMap<>();
    final LogConfig logConfig = LogConfig.defaults();
    TopicTable topics = TopicTable.EMPTY;
    /** Groups whose offsets partition this shard owns; set right after construction by the broker. */
    GroupCoordinator groups;
    /** Set when the broker closes this shard's logs: nothing may open a partition afterwards. */
    private boolean closed;
    private final long writeRegion;
    private final long readRegion;

    ShardState(Shard shard, MemoryArena arena, Path dataDir) {
        this.shard = shard;
        this.arena = arena;
        long writeBytes = Math.max(8L << 20, Math.min(64L << 20, arena.config().bytes() / 8));
        long readBytes = (long) logConfig.readWindowBytes() * 8;
        writeRegion = arena.allocateOrThrow(writeBytes, Subsystem.WRITE_BEHIND);
        readRegion = arena.allocateOrThrow(readBytes, Subsystem.READ_AHEAD);
        ChunkPool writePool = new ChunkPool(arena.segment(writeRegion, writeBytes), WRITE_CHUNK_BYTES);
        ChunkPool readPool = new ChunkPool(arena.segment(readRegion, readBytes), logConfig.readWindowBytes());
        this.logs = new LogManager(shard.engine(), dataDir, writePool, readPool);
        shard.addPoller(logs::poll);
        scheduleRetention();
    }

    static final long RETENTION_CHECK_NS = 30_000_000_000L;
    static final String DELETED_SUFFIX = ".deleted";

    private void scheduleRetention() {
        shard.schedule(RETENTION_CHECK_NS, () -> {
            logs.enforceRetention(System.currentTimeMillis());
            for (Partition p : partitions.values()) {
                p.snapshotProducers();
            }
            scheduleRetention();
        });
    }

    /** The log settings of a topic: the defaults with its overrides. */
    static LogConfig logConfigFor(TopicTable.Topic t) {
        return TopicConfigs.logConfig(t.configs());
    }

    /** Applies a topic's changed configs to the logs of its partitions open here. */
    void applyConfigs(TopicTable.Topic t) {
        LogConfig next = logConfigFor(t);
        for (Partition p : partitions.values()) {
            if (p.topic.equals(t.name())) {
                p.log.updateConfig(next);
            }
        }
    }

    /**
     * Removes partition {@code index} of a deleted topic: closes its log if open, then renames its directory
     * out of the way at once (a topic created again under the same name starts empty) and deletes the files on
     * {@code background}. Completes on this shard once the rename is done.
     */
    Promise<Void> dropPartition(String topic, int index, java.util.concurrent.Executor background) {
        String key = key(topic, index);
        Promise<Void> done = new Promise<>();
        Promise<Partition> pending = opening.get(key);
        Promise<Partition> ready = pending != null ? pending : Promise.completed(partitions.get(key));
        ready.whenComplete((part, f) -> {
            Partition p = partitions.remove(key);
            if (p != null) {
                p.deleted();
            }
            logs.close(key, () -> {
                java.nio.file.Path dir = logs.dir(key);
                try {
                    if (java.nio.file.Files.exists(dir)) {
                        java.nio.file.Path moved = dir.resolveSibling(key + "." + java.util.UUID.randomUUID()
                            + DELETED_SUFFIX);
                        java.nio.file.Files.move(dir, moved, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
                        background.execute(() -> deleteTree(moved));
                    }
                } catch (java.io.IOException e) {
                    System.getLogger(ShardState.class.getName()).log(System.Logger.Level.ERROR,
                        "cannot move the directory of deleted partition " + key + " away: " + e.getMessage());
                }
                done.complete(null);
            });
        });
        return done;
    }

    static void deleteTree(java.nio.file.Path dir) {
        try (var walk = java.nio.file.Files.walk(dir)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(f -> {
                try {
                    java.nio.file.Files.deleteIfExists(f);
                } catch (java.io.IOException e) {
                    System.getLogger(ShardState.class.getName()).log(System.Logger.Level.WARNING,
                        "cannot delete " + f + ": " + e.getMessage());
                }
            });
        } catch (java.io.IOException e) {
            System.getLogger(ShardState.class.getName()).log(System.Logger.Level.WARNING,
                "cannot delete " + dir + ": " + e.getMessage());
        }
    }

    /** At start-up: finishes deletions a previous run could not complete. */
    static void removeDeletedDirectories(java.nio.file.Path logsDir) throws java.io.IOException {
        try (var list = java.nio.file.Files.list(logsDir)) {
            list.filter(d -> d.getFileName().toString().endsWith(DELETED_SUFFIX)).forEach(ShardState::deleteTree);
        }
    }

    static String key(String topic, int partition) {
        return topic + "-" + partition;
    }

    /** The partition if open here, opening it first if this shard owns it and it exists in the topic table. */
    Promise<Partition> partition(String topic, int index) {
        if (closed) {
            return Promise.completed(null);
        }
        String key = key(topic, index);
        Partition p = partitions.get(key);
        if (p != null) {
            return Promise.completed(p);
        }
        Promise<Partition> pending = opening.get(key);
        if (pending != null) {
            return pending;
        }
        TopicTable.Topic t = topics.get(topic);
        if (t == null || index < 0 || index >= t.partitions()) {
            return Promise.completed(null);
        }
        Promise<Partition> promise = new Promise<>();
        opening.put(key, promise);
        Partition[] holder = new Partition[1];
        logs.open(key, logConfigFor(t), new dev.isthmus.log.Log.Listener() {
            @Override
            public void onDurable(long durableEndOffset) {
                if (holder[0] != null) {
                    holder[0].onDurable(durableEndOffset);
                }
            }

            @Override
            public void onFailure(String what) {
                if (holder[0] != null) {
                    holder[0].onFailure(what);
                }
            }
        }, (log, error) -> {
            opening.remove(key);
            if (error != null) {
                promise.fail(error);
                return;
            }
            Partition part = new Partition(topic, index, log, shard, arena, () -> logs.appended(log));
            holder[0] = part;
            Runnable ready = () -> {
                opening.remove(key);
                partitions.put(key, part);
                promise.complete(part);
            };
            if (topic.equals(GroupCoordinator.OFFSETS_TOPIC)) {
                ready.run(); // no producers write there; the coordinator replays it itself
                return;
            }
            opening.put(key, promise);
            part.recoverProducers(recoveryError -> {
                if (recoveryError != null) {
                    opening.remove(key);
                    logs.close(key, () -> promise.fail(recoveryError));
                    return;
                }
                ready.run();
            });
        });
        return promise;
    }

    /** Closes every log, then frees the log memory; {@code done} runs on this shard. */
    void close(Runnable done) {
        closed = true;
        for (Partition p : partitions.values()) {
            p.snapshotProducers();
        }
        logs.closeAll(() -> {
            partitions.clear();
            arena.free(writeRegion);
            arena.free(readRegion);
            done.run();
        });
    }
}
