package dev.isthmus.log;

import dev.isthmus.uring.IoEngine;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The logs of one shard (one per partition) and their shared flush scheduling.
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
    private final DiskStats diskStats = new DiskStats();
    private final Map<String, Log> logs = new HashMap<>();
    private final List<Log> dirty = new ArrayList<>();

    /**
     * @param writePool write-behind chunks shared by all logs of the shard
     * @param readPool  read windows, each at least {@link LogConfig#readWindowBytes()} of every log
     */
    public LogManager(IoEngine engine, Path baseDir, ChunkPool writePool, ChunkPool readPool) {
        this.engine = engine;
        this.baseDir = baseDir;
        this.writePool = writePool;
        this.readPool = readPool;
    }

    /** Opens (or creates) the log {@code name} under the base directory. */
    public void open(String name, LogConfig config, Log.Listener listener, Log.OpenHandler handler) {
        if (logs.containsKey(name)) {
            handler.onOpen(null, new IllegalStateException("log " + name + " is already open"));
            return;
        }
        Log.open(engine, baseDir.resolve(name), config, writePool, readPool, listener, (log, error) -> {
            if (log != null) {
                log.stats(diskStats);
                logs.put(name, log);
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

    /** Marks {@code log} for the next {@link #poll()} (call after appending). */
    public void appended(Log log) {
        if (!dirty.contains(log)) {
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
            if (!log.isClosed() && !log.isFailed()) {
                log.flush();
            }
        }
        dirty.clear();
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
        dirty.remove(log);
        if (log == null) {
            done.run();
        } else {
            log.close(done);
        }
    }

    /** Closes every log; {@code done} runs once all are closed. */
    public void closeAll(Runnable done) {
        List<String> names = new ArrayList<>(logs.keySet());
        if (names.isEmpty()) {
            done.run();
            return;
        }
        int[] left = {names.size()};
        for (String name : names) {
            close(name, () -> {
                if (--left[0] == 0) {
                    done.run();
                }
            });
        }
    }
}
