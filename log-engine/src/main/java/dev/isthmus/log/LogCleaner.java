package dev.isthmus.log;

import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.Collection;
import java.util.List;
import java.util.function.Consumer;

/**
 * Schedules compactions of one shard's logs with {@code cleanup.policy=compact}: at most one runs at a time,
 * stepped from {@link LogManager#poll()} within {@link LogManager.CompactionSettings#bytesPerTurn()} per loop
 * turn. Every {@code checkIntervalMs} it picks the log with the highest dirty ratio at or above
 * {@code minDirtyRatio} (or one whose tombstones reached their delete horizon); requests made with
 * {@link LogManager#compact} run first, whatever their ratio.
 *
 * <h2>Logs a caller owns</h2>
 * A replicated log (a Raft group's, opened through {@link LogManager#openOwned}) is compacted by the same cleaner,
 * {@link LogManager#cleaner()}: its owner asks {@link #compactReplicated} when it finds the log due, and the
 * manager's {@link LogManager#poll()} steps it like any other compaction. Such a compaction is bounded by the
 * owner's end offset and keeps every batch (see {@link LogCompaction}). A cleaner can also run on its own
 * ({@link #LogCleaner(LogManager.CompactionSettings, MemoryArena)}, {@link #poll(long)} every loop turn,
 * {@link #close()} at the end).
 *
 * <p>Memory is fixed: the key map ({@code mapBytes}) is taken once, and a read window plus a scratch batch
 * buffer per run, all from the shard's arena (Subsystem.OTHER) when the manager has a batch cache, else from
 * native memory. Owner: the shard thread.
 */
public final class LogCleaner {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.log");

    private record Request(Log log, long endOffset, boolean replicated, TransactionIndex txns,
                           Consumer<RuntimeException> done) {
    }

    private final LogManager.CompactionSettings settings;
    private final MemoryArena arena;
    private final ArrayDeque<Request> requests = new ArrayDeque<>();
    private KeyOffsetMap map;
    private long mapOffset = -1;
    private LogCompaction running;
    private long bufferOffset = -1;
    /** Without an arena: the key map's memory (kept) and one run's buffers (freed after the run). */
    private Arena mapMemory;
    private Arena runMemory;
    private long nextCheckMs;
    private long compactions;
    private long bytesRemoved;
    private String lastMemoryProblem;

    /**
     * A cleaner whose key map and buffers come from {@code arena} (Subsystem.OTHER; the caller's shard thread
     * owns it), or from native memory when {@code arena} is null.
     */
    public LogCleaner(LogManager.CompactionSettings settings, MemoryArena arena) {
        if (settings == null) {
            throw new IllegalArgumentException("compaction settings are required");
        }
        this.settings = settings;
        this.arena = arena;
    }

    /** The settings this cleaner runs with. */
    public LogManager.CompactionSettings settings() {
        return settings;
    }

    /** Asks for a compaction of {@code log} as soon as the cleaner is free. */
    void request(Log log, Consumer<RuntimeException> done) {
        requests.add(new Request(log, Long.MAX_VALUE, false, null, done));
    }

    /**
     * Compacts {@code log}, a replicated log its owner opened ({@link LogManager#openOwned}), when the cleaner is
     * free and if it is due (the dirty ratio of its part below {@code endOffset} reaches {@code minDirtyRatio}, or a
     * kept tombstone passed its delete horizon): only sealed segments wholly below {@code endOffset} (the offsets
     * that can no longer change: a Raft commit offset + 1), and no batch is dropped, so batch boundaries, offsets
     * and leader epochs stay as every replica has them (see {@link LogCompaction}). {@code done} runs on the shard
     * thread with null (compacted, or not due) or why it was not compacted.
     */
    public void compactReplicated(Log log, long endOffset, Consumer<RuntimeException> done) {
        requests.add(new Request(log, endOffset, true, null, done));
    }

    /**
     * {@link #compactReplicated(Log, long, Consumer)} of a log with transactions (a Kafka partition): {@code txns} is
     * its aborted-transaction index, which the compaction reads (aborted records go, markers go once no longer
     * needed) and updates after each swap; {@code endOffset} must be at most the log's last stable offset.
     */
    public void compactReplicated(Log log, long endOffset, TransactionIndex txns, Consumer<RuntimeException> done) {
        requests.add(new Request(log, endOffset, true, txns, done));
    }

    /** Whether {@code log} has a compaction requested or running here. */
    public boolean isCompacting(Log log) {
        if (running != null && running.log == log) {
            return true;
        }
        for (Request r : requests) {
            if (r.log() == log) {
                return true;
            }
        }
        return false;
    }

    /** Compactions completed. */
    public long compactions() {
        return compactions;
    }

    /** Bytes compaction removed. */
    public long bytesRemoved() {
        return bytesRemoved;
    }

    /** Whether a compaction is running or requested. */
    public boolean busy() {
        return running != null || !requests.isEmpty();
    }

    /**
     * One loop turn for a cleaner of logs no manager opened: steps the running compaction or starts the next
     * requested one. Returns the work done (bytes handled).
     */
    public long poll(long nowMs) {
        return poll(nowMs, List.of());
    }

    /** One loop turn: steps the running compaction, or starts the next. Returns work done (bytes handled). */
    long poll(long nowMs, Collection<Log> logs) {
        if (running != null) {
            long work = running.step(settings.bytesPerTurn());
            if (running.isDone()) {
                bytesRemoved += Math.max(0, running.bytesIn() - running.bytesOut());
                running = null;
                releaseBuffers();
            }
            return work;
        }
        while (!requests.isEmpty()) {
            Request r = requests.poll();
            if (r.log().isClosed() || r.log().isFailed()) {
                r.done().accept(new IllegalStateException("log " + r.log().dir() + " is closed or failed; not compacted"));
                continue;
            }
            if (r.replicated() && r.log().compaction() == null) {
                double ratio = LogCompaction.dirtyRatio(r.log(), nowMs, minLagMs(r.log()), r.endOffset());
                if (ratio < minDirtyRatio(r.log()) && r.log().tombstoneHorizonMs() > nowMs
                    && !LogCompaction.maxLagPassed(r.log(), nowMs, r.endOffset())) {
                    r.done().accept(null); // not due
                    continue;
                }
            }
            if (!start(r.log(), nowMs, !r.replicated(), r.endOffset(), r.replicated(), r.txns(), r.done())) {
                r.done().accept(null); // nothing cleanable
            }
            return 1;
        }
        if (nextCheckMs == 0) {
            nextCheckMs = nowMs + settings.checkIntervalMs(); // the first check one interval after start-up
        }
        if (nowMs < nextCheckMs) {
            return 0;
        }
        nextCheckMs = nowMs + settings.checkIntervalMs();
        Log best = null;
        double bestRatio = 0;
        for (Log log : logs) {
            if (!log.config().compact() || log.isClosed() || log.isFailed() || log.compaction() != null) {
                continue;
            }
            double ratio = LogCompaction.dirtyRatio(log, nowMs, minLagMs(log));
            boolean due = log.tombstoneHorizonMs() <= nowMs || LogCompaction.maxLagPassed(log, nowMs, Long.MAX_VALUE);
            if ((ratio >= minDirtyRatio(log) || due) && (best == null || ratio > bestRatio)) {
                best = log;
                bestRatio = ratio;
            }
        }
        if (best != null && start(best, nowMs, false, Long.MAX_VALUE, false, null, e -> {
        })) {
            return 1;
        }
        return 0;
    }

    /** The log's min.compaction.lag.ms when its config sets one, else this cleaner's. */
    private long minLagMs(Log log) {
        return log.config().minCompactionLagMs() >= 0 ? log.config().minCompactionLagMs() : settings.minLagMs();
    }

    /** The log's min.cleanable.dirty.ratio when its config sets one, else this cleaner's. */
    private double minDirtyRatio(Log log) {
        return log.config().minCleanableDirtyRatio() >= 0 ? log.config().minCleanableDirtyRatio() : settings.minDirtyRatio();
    }

    private boolean start(Log log, long nowMs, boolean force, long endOffset, boolean keepBatches,
                          TransactionIndex txns, Consumer<RuntimeException> done) {
        if (!takeBuffers(log.config().readWindowBytes())) {
            done.accept(new LogException(LogException.Kind.NO_MEMORY, "no memory to compact " + log.dir() + ": "
                + lastMemoryProblem));
            return true;
        }
        MemorySegment window = bufferSegment(0, log.config().readWindowBytes());
        MemorySegment scratch = bufferSegment(log.config().readWindowBytes(), log.config().readWindowBytes());
        Consumer<RuntimeException> counted = e -> {
            if (e == null) {
                compactions++;
            }
            done.accept(e);
        };
        LogCompaction c = LogCompaction.plan(log, nowMs, minLagMs(log), force, endOffset, keepBatches, txns, map,
            window, scratch, counted);
        if (c == null) {
            releaseBuffers();
            return false;
        }
        running = c;
        c.start();
        return true;
    }

    /** Abandons the compaction of {@code log} if one runs, and its requests (the log is closing). */
    public void abort(Log log) {
        if (running != null && running.log == log) {
            running.abort(new IllegalStateException("compaction of " + log.dir() + " abandoned: the log is closing"));
        }
        requests.removeIf(r -> {
            if (r.log() == log) {
                r.done().accept(new IllegalStateException("log " + log.dir() + " closed before it was compacted"));
                return true;
            }
            return false;
        });
    }

    // ------------------------------------------------------------------ memory

    private MemorySegment windowMemory;

    private boolean takeBuffers(int windowBytes) {
        if (map == null) {
            MemorySegment m = allocate(settings.mapBytes(), true);
            if (m == null) {
                return false;
            }
            map = new KeyOffsetMap(m);
        }
        windowMemory = allocate(2L * windowBytes, false);
        return windowMemory != null;
    }

    private MemorySegment bufferSegment(long offset, long bytes) {
        return windowMemory.asSlice(offset, bytes);
    }

    /** Memory from the arena (Subsystem.OTHER) if there is one, else native; null (and a reason) if short. */
    private MemorySegment allocate(long bytes, boolean forMap) {
        if (arena != null) {
            long off = arena.allocate(bytes, Subsystem.OTHER);
            if (off == MemoryArena.NO_MEMORY) {
                lastMemoryProblem = arena.lastFailure();
                LOG.log(System.Logger.Level.WARNING, "compaction postponed: " + lastMemoryProblem);
                return null;
            }
            if (forMap) {
                mapOffset = off;
            } else {
                bufferOffset = off;
            }
            return arena.segment(off, bytes);
        }
        if (forMap) {
            mapMemory = Arena.ofShared();
            return mapMemory.allocate(bytes, 4096);
        }
        runMemory = Arena.ofConfined();
        return runMemory.allocate(bytes, 4096);
    }

    private void releaseBuffers() {
        if (arena != null && bufferOffset >= 0) {
            arena.free(bufferOffset);
            bufferOffset = -1;
        }
        if (runMemory != null) {
            runMemory.close();
            runMemory = null;
        }
        windowMemory = null;
    }

    /** Frees everything (the manager closed all its logs; the owner of a replicated logs' cleaner stopped). */
    public void close() {
        if (running != null) {
            running.abort(new IllegalStateException("compaction of " + running.log.dir() + " abandoned: shutting down"));
            running.step(1); // drops the cleaned file now when none of its writes is in flight
            running = null;
        }
        releaseBuffers();
        if (arena != null && mapOffset >= 0) {
            arena.free(mapOffset);
            mapOffset = -1;
        }
        map = null;
        if (mapMemory != null) {
            mapMemory.close();
            mapMemory = null;
        }
    }
}
