package dev.isthmus.log;

import dev.isthmus.uring.IoEngine;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The one owner of a shard's log housekeeping: the logs of the shard and their shared flush scheduling, the
 * write-behind waiters' backstop, compaction scheduling (its {@link LogCleaner}), retention of the logs it opened
 * by name, the shard's {@link DiskStats}, and the wiring every log of the shard shares (engine, write-behind and
 * read pools, batch cache, zeroed segment stock).
 *
 * <p>Two kinds of logs: those opened by name ({@link #open}: plain logs the manager also compacts, applies
 * retention to and closes), and logs a caller owns ({@link #openOwned}: a Raft group's, whose truncations,
 * retention and compaction are replicated decisions of its owner), which still share everything above and are
 * flushed by {@link #poll()} once {@link #appended} names them. Raft's storage runs through one of these per shard,
 * so flushing, waiters and the cleaner are written once.
 *
 * <p>Appends only queue bytes; {@link #poll()}, called once per shard loop turn after the turn's tasks,
 * flushes every log that received appends during the turn: the tails are written and one fdatasync per
 * segment follows once they complete, so a burst of appends across a turn costs one flush (technique 6:
 * write, write, write, one flush). fdatasync latency is measured into {@link #diskStats()}.
 *
 * <p>All logs share the shard's write-behind and read budgets ({@link ChunkPool}s). Owner: the shard thread.
 */
public final class LogManager {
    private final IoEngine engine;
    private final Path baseDir;
    private final ChunkPool writePool;
    private final ChunkPool readPool;
    private final BatchCache cache;
    private final LogCleaner cleaner;
    private final DiskStats diskStats = new DiskStats();
    /** The shard's stock of zeroed segment files, or null (see {@link ZeroedSegments}). */
    private ZeroedSegments zeroed;
    private final Map<String, Log> logs = new HashMap<>();
    private final List<Log> dirty = new ArrayList<>();
    /** Open logs with cleanup.policy=compact (0: the cleaner is not even looked at). */
    private int compactLogs;

    /**
     * @param writePool write-behind chunks shared by all logs of the shard
     * @param readPool  read windows, each at least {@link LogConfig#readWindowBytes()} of every log
     */
    public LogManager(IoEngine engine, Path baseDir, ChunkPool writePool, ChunkPool readPool) {
        this(engine, baseDir, writePool, readPool, null);
    }

    /**
     * A manager whose logs share {@code cache} (null: none): their appends are cached and
     * {@link Log#read(long, long, int, Log.ChainReadHandler)} serves zero-copy chains with read-ahead.
     */
    public LogManager(IoEngine engine, Path baseDir, ChunkPool writePool, ChunkPool readPool, BatchCache cache) {
        this(engine, baseDir, writePool, readPool, cache, CompactionSettings.defaults());
    }

    /** A manager with a batch cache (or null) and compaction settings for its {@code cleanup.policy=compact} logs. */
    public LogManager(IoEngine engine, Path baseDir, ChunkPool writePool, ChunkPool readPool, BatchCache cache,
                      CompactionSettings compaction) {
        this.engine = engine;
        this.baseDir = baseDir;
        this.writePool = writePool;
        this.readPool = readPool;
        this.cache = cache;
        this.cleaner = new LogCleaner(compaction, cache == null ? null : cache.arena());
    }

    /**
     * How the shard compacts its {@code cleanup.policy=compact} logs (Kafka's log cleaner settings).
     *
     * @param mapBytes        memory of the key map, taken once (log.cleaner.dedupe.buffer.size); 24 bytes a key,
     *                        3/4 usable
     * @param bytesPerTurn    batch bytes handled per shard loop turn at most (the background budget)
     * @param checkIntervalMs how often logs are checked for compaction (log.cleaner.backoff.ms)
     * @param minDirtyRatio   compact a log once this share of its sealed bytes is new since the last compaction
     *                        (min.cleanable.dirty.ratio)
     * @param minLagMs        never compact a segment whose newest record is younger (min.compaction.lag.ms)
     */
    public record CompactionSettings(long mapBytes, long bytesPerTurn, long checkIntervalMs, double minDirtyRatio,
                                     long minLagMs) {
        public CompactionSettings {
            if (mapBytes < 16 * KeyOffsetMap.SLOT_BYTES || bytesPerTurn < 1 || checkIntervalMs < 0 || minDirtyRatio < 0
                || minDirtyRatio > 1 || minLagMs < 0) {
                throw new IllegalArgumentException("bad compaction settings: map " + mapBytes + " bytes, " + bytesPerTurn
                    + " bytes per turn, check every " + checkIntervalMs + " ms, dirty ratio " + minDirtyRatio + ", lag "
                    + minLagMs + " ms");
            }
        }

        /** 8 MiB key map (about 260 000 keys per pass), 256 KiB per loop turn, checks every 15 s, ratio 0.5, no lag. */
        public static CompactionSettings defaults() {
            return new CompactionSettings(8L << 20, 256 * 1024, 15_000, 0.5, 0);
        }
    }

    /**
     * Compacts the open log {@code name} as soon as the shard's cleaner is free, whatever its dirty ratio (and
     * whatever its cleanup.policy: an explicit request is obeyed); {@code done} runs on the shard thread with null
     * (compacted, or nothing was cleanable) or why it was not.
     */
    public void compact(String name, java.util.function.Consumer<RuntimeException> done) {
        Log log = logs.get(name);
        if (log == null) {
            done.accept(new IllegalStateException("log " + name + " is not open"));
            return;
        }
        cleaner.request(log, done);
    }

    /** Compactions completed by this shard. */
    public long compactions() {
        return cleaner.compactions();
    }

    /** Whether a compaction is running or requested. */
    public boolean compactionRunning() {
        return cleaner.busy();
    }

    /** Bytes compaction removed from this shard's logs. */
    public long compactionBytesRemoved() {
        return cleaner.bytesRemoved();
    }

    /** The shard's batch cache, or null. */
    public BatchCache batchCache() {
        return cache;
    }

    /**
     * Gives the logs opened from now on the shard's stock of zeroed segment files (null: none); the caller owns the
     * stock and closes it.
     */
    public void useZeroedSegments(ZeroedSegments stock) {
        this.zeroed = stock;
    }

    /** The shard's zeroed segment stock, or null. */
    public ZeroedSegments zeroedSegments() {
        return zeroed;
    }

    /** The shard's cleaner: logs opened by name are compacted by {@link #poll()}; owners of other logs ask it. */
    public LogCleaner cleaner() {
        return cleaner;
    }

    public ChunkPool writePool() {
        return writePool;
    }

    public ChunkPool readPool() {
        return readPool;
    }

    /**
     * Opens (or creates) a log in {@code dir} that the caller owns (see the class comment): it shares this manager's
     * pools, batch cache, zeroed segment stock and disk statistics, and is flushed by {@link #poll()} after
     * {@link #appended}; the caller applies its retention, asks {@link #cleaner()} to compact it, and closes it.
     */
    public void openOwned(Path dir, LogConfig config, Log.Listener listener, Log.OpenHandler handler) {
        Log.open(engine, dir, config, writePool, readPool, cache, zeroed, listener, (log, error) -> {
            if (log != null) {
                log.stats(diskStats);
            }
            handler.onOpen(log, error);
        });
    }

    /** Opens (or creates) the log {@code name} under the base directory. */
    public void open(String name, LogConfig config, Log.Listener listener, Log.OpenHandler handler) {
        if (logs.containsKey(name)) {
            handler.onOpen(null, new IllegalStateException("log " + name + " is already open"));
            return;
        }
        Log.open(engine, baseDir.resolve(name), config, writePool, readPool, cache, zeroed, listener, (log, error) -> {
            if (log != null) {
                log.stats(diskStats);
                log.managedBy(this);
                logs.put(name, log);
                recountCompactLogs();
            }
            handler.onOpen(log, error);
        });
    }

    /** The directory of the log {@code name} (whether or not it is open). */
    public Path dir(String name) {
        return baseDir.resolve(name);
    }

    public Log get(String name) {
        return logs.get(name);
    }

    public int size() {
        return logs.size();
    }

    /** Marks {@code log} (opened by name or owned) for the next {@link #poll()} (call after appending). */
    public void appended(Log log) {
        if (log.markDirty()) { // a flag, not a list search: O(1) per append however many logs are dirty
            dirty.add(log);
        }
    }

    /**
     * The shard loop's poller: flushes every log appended to since the last call. Returns the number of
     * logs flushed (the loop's work count).
     */
    public int poll() {
        int n = dirty.size();
        for (int i = 0; i < n; i++) {
            Log log = dirty.get(i);
            log.clearDirty();
            if (!log.isClosed() && !log.isFailed()) {
                log.flush();
            }
        }
        dirty.subList(0, n).clear(); // logs marked while flushing stay for the next poll
        if (writePool.hasWaiters()) {
            writePool.checkWaiters(System.nanoTime());
        }
        if (compactLogs > 0 || cleaner.busy()) {
            n += (int) Math.min(Integer.MAX_VALUE, cleaner.poll(engine.clock().currentTimeMillis(), logs.values()));
        }
        return n;
    }

    /** Applies retention to every log; returns segments deleted. */
    public int enforceRetention(long nowMs) {
        int deleted = 0;
        for (Log log : logs.values()) {
            if (!log.isClosed() && !log.isFailed()) {
                deleted += log.enforceRetention(nowMs);
            }
        }
        return deleted;
    }

    public DiskStats diskStats() {
        return diskStats;
    }

    public IoEngine engine() {
        return engine;
    }

    /** Closes {@code name} and forgets it (it may be opened again or its directory removed); {@code done} runs when it is closed. */
    public void close(String name, Runnable done) {
        Log log = logs.remove(name);
        if (log != null && log.clearDirty()) {
            dirty.remove(log);
        }
        recountCompactLogs();
        if (log == null) {
            done.run();
        } else {
            cleaner.abort(log);
            log.close(done);
        }
    }

    /** Closes every log; {@code done} runs once all are closed. */
    public void closeAll(Runnable done) {
        List<String> names = new ArrayList<>(logs.keySet());
        if (names.isEmpty()) {
            cleaner.close();
            done.run();
            return;
        }
        int[] left = {names.size()};
        for (String name : names) {
            close(name, () -> {
                if (--left[0] == 0) {
                    cleaner.close();
                    done.run();
                }
            });
        }
    }

    /** A log's config changed (compaction may have been switched on or off). */
    void recountCompactLogs() {
        int n = 0;
        for (Log log : logs.values()) {
            if (log.config().compact()) {
                n++;
            }
        }
        compactLogs = n;
    }
}
