package dev.isthmus.raft.storage;

import dev.isthmus.arena.IoBuf;
import dev.isthmus.log.ChunkPool;
import dev.isthmus.log.Log;
import dev.isthmus.log.LogConfig;
import dev.isthmus.log.LogException;
import dev.isthmus.log.LogManager;
import dev.isthmus.log.RecordBatch;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.Entry;
import dev.isthmus.raft.EntryKind;
import dev.isthmus.raft.HardState;
import dev.isthmus.raft.RaftLog;
import dev.isthmus.raft.SnapshotMeta;
import dev.isthmus.raft.TermIndex;
import dev.isthmus.uring.FileOps;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.Verify;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * The production {@link RaftLog}: a Raft group's entries in a log-engine {@link Log} (segmented, O_DIRECT,
 * Kafka v2 batches with the term stamped into partitionLeaderEpoch, see {@link RaftBatches}) and its hard
 * state, snapshot and term-index checkpoint in a {@link RaftStateFile} beside the segments.
 *
 * <h2>Visibility and durability</h2>
 * Mutations update the in-memory view (a {@link TermIndex}, the configuration entries, a tail cache of recent
 * entries) at once and are handed to the {@link Log} in order; an append the log cannot take yet (write-behind
 * memory short) or that follows a suffix truncation still cutting the file waits in a queue. Durability is the
 * log's: the log is opened through the shard's {@link LogManager} (its pools, batch cache and zeroed segment stock),
 * which flushes it once per loop turn for all appends of the turn ({@link LogManager#appended},
 * {@link LogManager#poll()}: the owner polls the manager after this log's {@link #poll()}), and the log's durable end,
 * capped below any truncation not finished yet, is reported through {@link Callbacks#onAppendDurable}. Term, vote and snapshots become durable with a
 * state-file record (direct write + fdatasync, never blocking the shard).
 *
 * <h2>Reads: one cache per partition</h2>
 * The tail cache holds the entries the log cannot serve back yet: those not durable (appended, queued for the log,
 * or being written). Once durable an entry leaves it when the log has the shard's {@link dev.isthmus.log.BatchCache}
 * (every broker's log does): the batch cache already holds the same bytes (it shares a same-shard payload's
 * fragments), so Raft's catch-up reads and consumers' fetches are served by that one cache, under one index. A read
 * of a durable offset is a batch-cache read ({@link Log#read(long, long, int, Log.ChainReadHandler)}): a hit answers
 * at once with entries whose payloads share the cache's fragments (lent until the next read, see {@link #lent}); a
 * miss fills the cache from disk and answers {@link RaftLog#READ_PENDING}, then {@link Callbacks#onReadable()}
 * follows and the fill's entries stay pinned here until the next fill. A log without a batch cache (tools, some
 * tests) keeps durable entries within {@link Options#tailCacheBytes()} and reads older ones with copying direct
 * I/O.
 *
 * <h2>Recovery</h2>
 * Opening reads the latest state record (hard state, snapshot, term-index checkpoint and configuration
 * entries), opens the log (which validates its tail after a crash), then reconciles the checkpoint with the
 * log: the checkpoint is trusted up to the last offset whose epoch the log confirms (Raft's log matching
 * property makes that a prefix, found by one read or a binary search of reads), and only the log after it is
 * scanned. A snapshot install interrupted by a crash is finished (the log is reset to start after it).
 *
 * <h2>Threads</h2>
 * Owned by the engine's (shard's) thread, like the {@link Log}. Callbacks run on it, from I/O completions or
 * from {@link #poll()}, never inside a call of this class.
 */
public final class LogEngineRaftLog implements RaftLog, Log.Listener {
    /** Name of the state file in the log's directory. */
    public static final String STATE_FILE = "raft-state";
    /** The log-engine's log-start file (read when a log opens): how a reset log starts past offset 0. */
    static final String LOG_START_FILE = "log-start-offset";
    /**
     * Version 3 adds the record start (Kafka's log start offset, durable here: the log-engine records its own start in
     * the background, unsynced); version 2 prefix truncation entries among the control entries (version 1:
     * configurations only).
     */
    private static final short RECORD_VERSION = 3;
    private static final System.Logger LOG = System.getLogger("dev.isthmus.raft");

    /** Completion of {@link #open}. */
    public interface OpenHandler {
        void onOpen(LogEngineRaftLog log, RuntimeException error);
    }

    /**
     * Asks the owner to call {@link #poll()} later in the current loop turn (after the turn's appends), the way
     * {@link dev.isthmus.log.LogManager#appended} schedules its flushes. Calling it several times per turn is
     * fine; the owner may deduplicate.
     */
    @FunctionalInterface
    public interface Poller {
        void schedule(LogEngineRaftLog log);
    }

    /**
     * @param tailCacheBytes       durable entries kept in memory for followers and apply by a log without a batch cache
     *                             (beyond it, reads go to disk); a log with one keeps no durable entry (the batch
     *                             cache serves them)
     * @param checkpointEveryBytes appended bytes after which the term-index checkpoint is rewritten (bounds the
     *                             scan at recovery)
     * @param boundaryEveryBytes   spacing of the batch boundaries remembered for prefix truncation
     */
    public record Options(long tailCacheBytes, long checkpointEveryBytes, long boundaryEveryBytes) {
        public Options {
            if (tailCacheBytes < 0 || checkpointEveryBytes <= 0 || boundaryEveryBytes <= 0) {
                throw new IllegalArgumentException("bad LogEngineRaftLog options: tailCacheBytes=" + tailCacheBytes
                    + " checkpointEveryBytes=" + checkpointEveryBytes + " boundaryEveryBytes=" + boundaryEveryBytes);
            }
        }

        public static Options defaults() {
            return new Options(4L << 20, 64L << 20, 1L << 20);
        }
    }

    private enum OpKind { APPEND, TRUNCATE_SUFFIX, TRUNCATE_PREFIX, RESET }

    private record Op(OpKind kind, Entry entry, long offset, Runnable then) {
    }

    /** The shard's log housekeeper: opens the log with the shard's pools, cache and stock, and flushes it. */
    private final LogManager logs;
    private final IoEngine engine;
    private final Path dir;
    private LogConfig logConfig;
    private final ChunkPool readPool;
    private final Options options;
    private final Poller poller;
    private Log log;
    private RaftStateFile state;
    private Callbacks callbacks;

    // visible log
    private final TermIndex terms = new TermIndex();
    /** The CONFIGURATION and PREFIX_TRUNCATION entries of the visible log, in offset order. */
    private final List<Entry> controlEntries = new ArrayList<>();
    /** The tail cache: entries not durable yet, and those of the last disk read (see the class comment). */
    private final EntryWindow cache = new EntryWindow();
    private long cacheBytes;
    private long[] boundaries = new long[16];
    private int boundaryCount;
    private long bytesSinceBoundary;

    // durable state
    private HardState durableHardState = HardState.INITIAL;
    private HardState latestHardState = HardState.INITIAL;
    private SnapshotMeta snapshot = SnapshotMeta.NONE;
    private byte[] snapshotData = new byte[0];
    private SnapshotMeta savingMeta;
    private byte[] savingData;
    private SnapshotMeta installMeta;
    private byte[] installData;
    private boolean recordWanted;
    private long bytesSinceCheckpoint;
    private HardState writingHardState;
    private int writingKind;

    // the log pipeline
    private final ArrayDeque<Op> ops = new ArrayDeque<>();
    private boolean opBlocked;
    private boolean waitingSpace;
    private boolean draining;
    private int truncationsInFlight;
    /** A suffix truncation is running in the log-engine (close waits for it: a cut suffix must stay cut). */
    private boolean cutting;
    /** The log-engine close deferred until {@link #cutting} ends. */
    private Runnable closeAfterCut;
    private long truncationCap = Long.MAX_VALUE;
    private long logDurableEnd;
    private long reportedDurable = -1;
    private MemorySegment scratch = MemorySegment.NULL;
    /** The highest {@link #advanceRecordStart} asked for. */
    private long recordStartRequested;
    /** The record start a durable state record holds (what {@link #recordStartOffset()} reports). */
    private long durableRecordStart;
    /** The record start of the state record being written. */
    private long writingRecordStart;
    /** The record start of the record read at open (-1: none, or a record older than version 3). */
    private long recoveredRecordStart = -1;

    // reads
    private boolean readInFlight;
    private long readGeneration;
    private long pinnedFrom = Long.MAX_VALUE;
    private long pinnedTo = Long.MIN_VALUE;
    /**
     * Entries a batch-cache hit handed out ({@link #readShared}): their payloads share the cache's fragments and this
     * log holds the one reference each, lent to the caller until its next read or this log's next poll (the
     * transport takes its own references for what it queues).
     */
    private final List<Entry> lent = new ArrayList<>();
    /** The batch-cache read in progress (one at a time: a miss waits for its fill). */
    private final SharedRead sharedRead = new SharedRead();

    // callbacks deferred out of calls
    private int inCall;
    private final ArrayDeque<Runnable> deferred = new ArrayDeque<>();
    private boolean failed;
    private boolean closed;
    private Runnable stateIdleWaiter;

    // recovery input
    private TermIndex recordTerms;
    private final List<Entry> recordControls = new ArrayList<>();

    private LogEngineRaftLog(LogManager logs, Path dir, LogConfig logConfig, Options options, Poller poller) {
        this.logs = logs;
        this.engine = logs.engine();
        this.readPool = logs.readPool();
        this.dir = dir;
        this.logConfig = logConfig;
        this.options = options;
        this.poller = poller;
    }

    /**
     * Opens (creating if needed) the Raft log in {@code dir}: its state file, then the {@link Log}, then
     * reconciles them (see the class comment). {@code handler} runs on the engine thread.
     *
     * @param logs the shard's log housekeeper: the log shares its write-behind and read pools, batch cache (if any)
     *             and zeroed segment stock, and is flushed by its {@link LogManager#poll()}, which the owner runs
     *             every loop turn after this log's {@link #poll()}
     */
    public static void open(LogManager logs, Path dir, LogConfig config, Options options, Poller poller,
                            OpenHandler handler) {
        LogEngineRaftLog r = new LogEngineRaftLog(logs, dir, config, options, poller);
        IoEngine engine = r.engine;
        try {
            engine.fileOps().createDirectoriesDurably(dir);
            r.state = RaftStateFile.open(engine, dir.resolve(STATE_FILE));
            r.decodeRecord(r.state.recovered());
        } catch (IOException e) {
            handler.onOpen(null, new UncheckedIOException("cannot open Raft log " + dir + ": " + e.getMessage(), e));
            return;
        } catch (RuntimeException e) {
            if (r.state != null) {
                r.state.close();
            }
            handler.onOpen(null, e);
            return;
        }
        logs.openOwned(dir, config, r, (log, error) -> {
            if (error != null) {
                r.state.close();
                handler.onOpen(null, error);
                return;
            }
            r.log = log;
            new Recovery(r, handler).start();
        });
    }

    /** The underlying log (for the gateway's fetch path: read with a bound of the commit offset + 1). */
    public Log log() {
        return log;
    }

    /** The log's settings (the latest given to {@link #updateConfig}). */
    public LogConfig config() {
        return logConfig;
    }

    /**
     * Changes the log's settings at runtime (a topic's retention, segment size, cleanup policy, ... altered):
     * applied to the open {@link Log} at once (see {@link Log#updateConfig}) and used when the log is reopened
     * (a snapshot install that replaces it).
     */
    public void updateConfig(LogConfig next) {
        if (next == null) {
            throw new IllegalArgumentException("a log config is required");
        }
        if (log != null && !closed) {
            log.updateConfig(next);
        }
        logConfig = next;
    }

    // ===================================================================================== RaftLog queries

    @Override
    public void bind(Callbacks callbacks) {
        Verify.that(this.callbacks == null, "LogEngineRaftLog bound twice");
        this.callbacks = callbacks;
    }

    @Override
    public HardState hardState() {
        return durableHardState;
    }

    @Override
    public SnapshotMeta snapshotMeta() {
        return snapshot;
    }

    @Override
    public byte[] snapshotData() {
        return snapshotData;
    }

    @Override
    public long startOffset() {
        return terms.startOffset();
    }

    @Override
    public long lastOffset() {
        return terms.lastOffset();
    }

    @Override
    public long durableOffset() {
        long d = Math.min(Math.min(logDurableEnd - 1, truncationCap), terms.lastOffset());
        if (log == null) {
            d = terms.floorOffset();
        }
        return Math.max(d, terms.floorOffset());
    }

    @Override
    public long termAt(long offset) {
        return terms.termAt(offset);
    }

    @Override
    public long lastOffsetAtOrBeforeTerm(long term) {
        return terms.lastOffsetAtOrBeforeTerm(term);
    }

    @Override
    public List<Entry> configurationEntries() {
        List<Entry> out = new ArrayList<>();
        for (Entry e : controlEntries) {
            if (e.kind() == EntryKind.CONFIGURATION && e.baseOffset() > snapshot.lastOffset()) {
                out.add(e);
            }
        }
        return out;
    }

    @Override
    public List<Entry> prefixTruncationEntries() {
        List<Entry> out = new ArrayList<>();
        for (Entry e : controlEntries) {
            if (e.kind() == EntryKind.PREFIX_TRUNCATION) {
                out.add(e);
            }
        }
        return out;
    }

    /**
     * The record start a durable state record holds: {@link #advanceRecordStart} and prefix compactions move it once
     * their record is written. The log-engine's own start (what reads check) moves at once but is recorded in the
     * background without a sync, so a crash could move it back; this one never moves back.
     */
    @Override
    public long recordStartOffset() {
        return durableRecordStart;
    }

    @Override
    public int read(long fromOffset, int maxBytes, List<Entry> out) {
        if (fromOffset < startOffset()) {
            return READ_BELOW_START;
        }
        if (fromOffset > lastOffset()) {
            return READ_OK;
        }
        releaseLent();
        int first = cache.floorIndex(fromOffset);
        if (first < 0 || cache.get(first).lastOffset() < fromOffset) {
            if (sharesBatchCache() && fromOffset <= reportedDurable) {
                return readShared(fromOffset, maxBytes, out);
            }
            startDiskRead(fromOffset);
            return READ_PENDING;
        }
        long next = cache.get(first).baseOffset();
        long bytes = 0;
        for (int i = first, n = cache.size(); i < n; i++) {
            Entry e = cache.get(i);
            if (e.baseOffset() != next || (bytes > 0 && bytes + e.sizeBytes() > maxBytes)) {
                break;
            }
            out.add(e);
            bytes += e.sizeBytes();
            next = e.lastOffset() + 1;
        }
        return READ_OK;
    }

    /**
     * The entry of the tail cache that holds {@code offset}, or null when it is not cached; never reads the disk. For
     * checkers and diagnostics: what the log holds in memory (every entry not yet durable is there).
     */
    public Entry cachedEntry(long offset) {
        return cache.containing(offset);
    }

    /** Whether the storage failed (the group stopped; the log takes no more writes). */
    public boolean isFailed() {
        return failed;
    }

    // ===================================================================================== RaftLog mutations

    @Override
    public void append(List<Entry> entries) {
        inCall++;
        try {
            checkWritable();
            Verify.that(installMeta == null, "append while a snapshot install is pending");
            int n = entries.size();
            for (int i = 0; i < n; i++) {
                validate(entries.get(i));
            }
            for (int i = 0; i < n; i++) {
                Entry e = entries.get(i);
                Verify.that(e.baseOffset() == terms.lastOffset() + 1, "append at %d does not follow %d",
                    e.baseOffset(), terms.lastOffset());
                int pairs = terms.size();
                terms.append(e.baseOffset(), e.lastOffset(), e.term());
                if (terms.size() != pairs) {
                    recordWanted = true; // a new term: checkpoint it soon
                }
                if (e.kind() == EntryKind.CONFIGURATION || e.kind() == EntryKind.PREFIX_TRUNCATION) {
                    controlEntries.add(e);
                    recordWanted = true;
                }
                cachePut(e);
                bytesSinceCheckpoint += e.sizeBytes();
                bytesSinceBoundary += e.sizeBytes();
                if (bytesSinceBoundary >= options.boundaryEveryBytes()) {
                    addBoundary(e.lastOffset());
                }
                ops.add(new Op(OpKind.APPEND, hold(e), 0, null));
            }
            if (bytesSinceCheckpoint >= options.checkpointEveryBytes()) {
                recordWanted = true;
            }
            drainOps();
            if (recordWanted) {
                requestRecord();
            }
        } finally {
            inCall--;
        }
    }

    private static void validate(Entry e) {
        if (e.term() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("term " + e.term() + " does not fit a Kafka leader epoch");
        }
        if (e.kind() == EntryKind.DATA) {
            if (!(e.payload() instanceof KafkaBatchPayload p)) {
                throw new IllegalArgumentException("a Kafka log stores KafkaBatchPayload entries, not "
                    + e.payload().getClass().getName());
            }
            // Not strict about the record count: a batch compaction emptied keeps its offsets with fewer records.
            // A batch validated where it entered the partition (the leader's produce path) has its header checked
            // only; any other (a follower's input off the network) is checked in full once, here, and marked, so
            // the log-engine below checks headers only (appendReplicaChecked).
            // (The payload's own constructor checked magic, size and offset delta; the log-engine checks the
            // header again as it appends.)
            if (p.isChecked()) {
                return;
            }
            RecordBatch.Check c = p.inArena() ? RecordBatch.check(p.chain(), 0, p.sizeBytes(), false)
                : new RecordBatch().wrap(MemorySegment.ofArray(p.bytes()), 0).check(p.sizeBytes(), false);
            if (c != RecordBatch.Check.OK) {
                throw new IllegalArgumentException("entry at " + e.baseOffset() + " holds an invalid batch: " + c);
            }
            p.markChecked();
        }
    }

    @Override
    public void truncateSuffix(long fromOffset) {
        inCall++;
        try {
            checkWritable();
            Verify.that(installMeta == null, "truncation while a snapshot install is pending");
            Verify.that(fromOffset > terms.floorOffset() && fromOffset <= terms.lastOffset(),
                "suffix truncation at %d outside (%d, %d]", fromOffset, terms.floorOffset(), terms.lastOffset());
            terms.truncateSuffix(fromOffset);
            controlEntries.removeIf(e -> e.baseOffset() >= fromOffset);
            dropCacheFrom(fromOffset);
            while (boundaryCount > 0 && boundaries[boundaryCount - 1] >= fromOffset) {
                boundaryCount--;
            }
            readGeneration++;
            // Appends not yet handed to the log simply disappear; the log is cut for the rest.
            ops.removeIf(op -> {
                boolean cut = op.kind == OpKind.APPEND && op.entry.baseOffset() >= fromOffset;
                if (cut) {
                    unhold(op.entry);
                }
                return cut;
            });
            truncationsInFlight++;
            truncationCap = Math.min(truncationCap, fromOffset - 1);
            reportedDurable = Math.min(reportedDurable, durableOffset());
            ops.add(new Op(OpKind.TRUNCATE_SUFFIX, null, fromOffset, null));
            drainOps();
        } finally {
            inCall--;
        }
    }

    @Override
    public void truncatePrefix(long newStartOffset) {
        inCall++;
        try {
            checkWritable();
            Verify.that(newStartOffset <= snapshot.lastOffset() + 1, "prefix truncation to %d past the snapshot %d",
                newStartOffset, snapshot.lastOffset());
            long floor = chooseFloor(newStartOffset - 1);
            if (floor <= terms.floorOffset()) {
                return;
            }
            compactTo(floor);
            requestRecord();
        } finally {
            inCall--;
        }
    }

    @Override
    public void advanceRecordStart(long offset) {
        inCall++;
        try {
            checkWritable();
            Verify.that(offset == terms.startOffset() || (offset > terms.startOffset() && offset <= terms.lastOffset()),
                "record start %d outside the log [%d, %d]", offset, terms.startOffset(), terms.lastOffset());
            Entry containing = cache.containing(offset);
            Verify.that(containing == null || containing.baseOffset() <= terms.startOffset(), "record start %d is inside"
                + " the entry at %d, not the first one (log start %d)", offset,
                containing == null ? -1 : containing.baseOffset(), terms.startOffset());
            if (offset > recordStartRequested) {
                recordStartRequested = offset;
                requestRecord();
                // The log-engine takes a start inside a batch: reads at it return the batch from its base.
                ops.add(new Op(OpKind.TRUNCATE_PREFIX, null, offset, null));
                drainOps();
            }
        } finally {
            inCall--;
        }
    }

    /** The largest offset at or below {@code target} known to end a batch (never below the current floor). */
    private long chooseFloor(long target) {
        long best = terms.floorOffset();
        if (snapshot.lastOffset() <= target) {
            best = Math.max(best, snapshot.lastOffset());
        }
        int ci = cache.floorIndex(target + 1);
        if (ci >= 0 && cache.get(ci).lastOffset() >= target) {
            Entry c = cache.get(ci);
            long end = c.lastOffset() == target ? target : c.baseOffset() - 1;
            best = Math.max(best, end);
        }
        for (int i = boundaryCount - 1; i >= 0; i--) {
            if (boundaries[i] <= target) {
                best = Math.max(best, boundaries[i]);
                break;
            }
        }
        return Math.min(best, terms.lastOffset());
    }

    private void compactTo(long floor) {
        terms.truncatePrefix(floor);
        controlEntries.removeIf(e -> e.baseOffset() <= floor);
        while (!cache.isEmpty() && cache.get(0).baseOffset() <= floor) {
            dropAt(0);
        }
        int keep = 0;
        for (int i = 0; i < boundaryCount; i++) {
            if (boundaries[i] > floor) {
                boundaries[keep++] = boundaries[i];
            }
        }
        boundaryCount = keep;
        ops.add(new Op(OpKind.TRUNCATE_PREFIX, null, floor + 1, null));
        drainOps();
    }

    @Override
    public void persistHardState(HardState hs) {
        inCall++;
        try {
            checkWritable();
            latestHardState = hs;
            requestRecord();
        } finally {
            inCall--;
        }
    }

    @Override
    public void saveSnapshot(SnapshotMeta meta, byte[] data) {
        inCall++;
        try {
            checkWritable();
            Verify.that(meta.lastOffset() <= terms.lastOffset() && terms.termAt(meta.lastOffset()) == meta.lastTerm(),
                "snapshot at %d (term %d) is not an entry of this log", meta.lastOffset(), meta.lastTerm());
            savingMeta = meta;
            savingData = data;
            requestRecord();
        } finally {
            inCall--;
        }
    }

    @Override
    public void installSnapshot(SnapshotMeta meta, byte[] data) {
        inCall++;
        try {
            checkWritable();
            Verify.that(installMeta == null, "two snapshot installs at once");
            installMeta = meta;
            installData = data;
            requestRecord();
        } finally {
            inCall--;
        }
    }

    private void checkWritable() {
        if (closed) {
            throw new IllegalStateException("Raft log " + dir + " is closed");
        }
        if (failed) {
            throw new IllegalStateException("Raft log " + dir + " failed");
        }
    }

    // ===================================================================================== the loop turn

    /**
     * Retries appends that waited for write-behind memory and delivers callbacks that arose inside calls; the
     * shard's {@link LogManager#poll()}, after it, flushes what the turn appended. Call when the {@link Poller} asks
     * (once per loop turn is enough). Returns the work done.
     */
    public int poll() {
        int work = 0;
        if (!lent.isEmpty()) {
            releaseLent();
            work++;
        }
        if (waitingSpace && log != null && !failed && !closed) {
            waitingSpace = false;
            opBlocked = false;
            drainOps();
            work++;
        }
        while (!deferred.isEmpty() && inCall == 0) {
            deferred.poll().run();
            work++;
        }
        return work;
    }

    private void deliver(Runnable r) {
        if (inCall > 0) {
            deferred.add(r);
            poller.schedule(this);
        } else {
            r.run();
        }
    }

    /** Appended to the log: the shard's {@link LogManager} flushes it once this turn (flush debouncing). */
    private void markLogDirty() {
        logs.appended(log);
    }

    // ===================================================================================== log pipeline

    private void drainOps() {
        if (draining) {
            return;
        }
        draining = true;
        try {
            while (!ops.isEmpty() && !opBlocked && log != null && !failed) {
                Op op = ops.peek();
                switch (op.kind) {
                    case APPEND -> {
                        long r;
                        try {
                            // As a replica: a batch the leader's compaction thinned keeps its offsets. An arena
                            // payload is copied from its fragments into the write-behind chunks; a heap one goes
                            // through the scratch segment (the log stamps offsets into what it is given).
                            // Every entry was checked by append() (validate: a data batch's CRC-32C once, on
                            // whichever path it came); control entries are encoded here. The log checks headers.
                            if (op.entry.payload() instanceof KafkaBatchPayload p && p.inArena()) {
                                r = log.appendReplicaChecked(p.chain(), 0, p.sizeBytes(), (int) op.entry.term());
                            } else {
                                byte[] bytes = RaftBatches.encode(op.entry, engine.clock().currentTimeMillis());
                                r = log.appendReplicaChecked(scratchFor(bytes), 0, bytes.length, (int) op.entry.term());
                            }
                        } catch (RuntimeException e) {
                            // A refused or failed append (LogException), or a bug: the entry stays at the head of
                            // the queue, so rethrowing would fail every later call the same way; fail the storage
                            // once, loudly, instead.
                            fail("append of " + op.entry + " to " + dir + " failed: " + e);
                            return;
                        }
                        if (r == Log.NO_MEMORY) {
                            // The log waits in line for the shard's write-behind chunks; onSpaceAvailable resumes
                            // once chunks are reserved for it (see ChunkPool). No polling meanwhile.
                            opBlocked = true;
                            waitingSpace = true;
                            return;
                        }
                        Verify.that(r == op.entry.baseOffset(), "log placed the entry at %d, not %d", r,
                            op.entry.baseOffset());
                        ops.poll();
                        unhold(op.entry);
                        markLogDirty();
                    }
                    case TRUNCATE_SUFFIX -> {
                        ops.poll();
                        opBlocked = true;
                        cutting = true;
                        log.truncateSuffix(op.offset, error -> {
                            cutting = false;
                            opBlocked = false;
                            if (--truncationsInFlight == 0) {
                                truncationCap = Long.MAX_VALUE;
                            }
                            if (closeAfterCut != null) {
                                Runnable c = closeAfterCut;
                                closeAfterCut = null;
                                c.run();
                                return;
                            }
                            if (error != null) {
                                fail("suffix truncation of " + dir + " at " + op.offset + " failed: " + error.getMessage());
                                return;
                            }
                            drainOps();
                            reportDurable();
                        });
                    }
                    case TRUNCATE_PREFIX -> {
                        ops.poll();
                        try {
                            log.truncatePrefix(op.offset);
                        } catch (RuntimeException e) {
                            fail("prefix truncation of " + dir + " to " + op.offset + " failed: " + e.getMessage());
                            return;
                        }
                    }
                    case RESET -> {
                        ops.poll();
                        opBlocked = true;
                        resetLog(op.offset, () -> {
                            opBlocked = false;
                            op.then.run();
                            drainOps();
                        });
                    }
                }
            }
        } finally {
            draining = false;
        }
    }

    private MemorySegment scratchFor(byte[] bytes) {
        if (scratch.byteSize() < bytes.length) {
            scratch = Arena.ofAuto().allocate(Math.max(bytes.length, 64 * 1024), 8);
        }
        MemorySegment.copy(bytes, 0, scratch, ValueLayout.JAVA_BYTE, 0, bytes.length);
        return scratch;
    }

    /** Replaces the log with an empty one starting at {@code startOffset} (a snapshot that does not match). */
    private void resetLog(long startOffset, Runnable done) {
        Log old = log;
        log = null;
        old.close(() -> {
            try {
                FileOps fs = engine.fileOps();
                for (Path p : fs.list(dir)) {
                    if (!p.getFileName().toString().startsWith(STATE_FILE) && fs.isRegularFile(p)) {
                        fs.deleteIfExists(p);
                    }
                }
                fs.writeAtomically(dir.resolve(LOG_START_FILE),
                    Long.toString(startOffset).getBytes(StandardCharsets.US_ASCII));
                fs.syncDirectory(dir);
            } catch (IOException e) {
                fail("reset of " + dir + " to offset " + startOffset + " failed: " + e.getMessage());
                return;
            }
            logs.openOwned(dir, logConfig, this, (l, error) -> {
                if (error != null) {
                    fail("reopening " + dir + " at offset " + startOffset + " failed: " + error.getMessage());
                    return;
                }
                Verify.that(l.logEndOffset() == startOffset && l.logStartOffset() == startOffset,
                    "reset log starts at %d, not %d", l.logStartOffset(), startOffset);
                log = l;
                logDurableEnd = l.durableEndOffset();
                done.run();
            });
        });
    }

    // ===================================================================================== Log.Listener

    @Override
    public void onDurable(long durableEndOffset) {
        logDurableEnd = durableEndOffset;
        reportDurable();
    }

    @Override
    public void onFailure(String what) {
        fail("log " + dir + " failed: " + what);
    }

    @Override
    public void onSpaceAvailable() {
        if (waitingSpace && log != null) {
            waitingSpace = false;
            opBlocked = false;
            drainOps();
        }
    }

    private void reportDurable() {
        long d = durableOffset();
        if (d < reportedDurable) {
            reportedDurable = d;
        } else if (d > reportedDurable) {
            reportedDurable = d;
            evictCache();
            if (callbacks != null) {
                deliver(() -> {
                    if (!failed && !closed) {
                        callbacks.onAppendDurable(durableOffset());
                    }
                });
            }
        }
    }

    private void fail(String what) {
        if (failed) {
            return;
        }
        failed = true;
        LOG.log(System.Logger.Level.ERROR, what);
        if (callbacks != null) {
            deliver(() -> callbacks.onStorageFailure(what));
        }
    }

    // ===================================================================================== reads

    /** Whether durable entries are read from the shard's batch cache rather than kept in the tail cache. */
    private boolean sharesBatchCache() {
        return log != null && log.batchCache() != null;
    }

    /**
     * A read of durable entries from the shard's batch cache (see the class comment): a hit fills {@code out} before
     * returning, a miss answers {@link RaftLog#READ_PENDING} and {@link #readable()} follows its fill.
     */
    private int readShared(long fromOffset, int maxBytes, List<Entry> out) {
        if (readInFlight || failed) {
            return READ_PENDING; // the fill in flight ends with readable()
        }
        SharedRead r = sharedRead;
        r.start(fromOffset, out);
        // Bound by the reported durable end: what lies past it is in the tail cache (or being cut by a truncation).
        log.read(Math.max(fromOffset, log.logStartOffset()), reportedDurable + 1, maxBytes, r);
        if (r.out == null) {
            return r.rc; // answered before returning: a hit (or a failure handed to the disk path)
        }
        r.out = null;
        readInFlight = true;
        return READ_PENDING;
    }

    /** Gives back the references of entries handed out by batch-cache hits. */
    private void releaseLent() {
        for (int i = 0, n = lent.size(); i < n; i++) {
            unhold(lent.get(i));
        }
        lent.clear();
    }

    /**
     * The handler of {@link #readShared}: one object, reused (a read's fill completes before the next starts). On a hit
     * the entries go to the caller's list and {@link #lent}; from a fill they are pinned in the tail cache until the
     * next fill, like a disk read's.
     */
    private final class SharedRead implements Log.ChainReadHandler {
        long from;
        long generation;
        /** The caller's list while the read may answer at once; null once it went asynchronous. */
        List<Entry> out;
        int rc;

        void start(long fromOffset, List<Entry> into) {
            from = fromOffset;
            generation = readGeneration;
            out = into;
            rc = READ_PENDING;
        }

        @Override
        public void onRead(IoBuf batches, long firstOffset, long lastOffset) {
            try {
                if (out != null) {
                    int before = out.size();
                    RaftBatches.decodeShared(batches, out);
                    int n = out.size();
                    if (n == before) {
                        out = null;
                        startDiskRead(from);
                        rc = READ_PENDING;
                        return;
                    }
                    for (int i = before; i < n; i++) {
                        lent.add(out.get(i));
                    }
                    out = null;
                    rc = READ_OK;
                    if (!closed) {
                        poller.schedule(LogEngineRaftLog.this); // the lent references go back this turn
                    }
                    return;
                }
                readInFlight = false;
                if (generation == readGeneration && !closed && !failed && batches.size() > 0) {
                    List<Entry> got = new ArrayList<>();
                    RaftBatches.decodeShared(batches, got);
                    if (!got.isEmpty()) {
                        pinnedFrom = got.get(0).baseOffset();
                        pinnedTo = got.get(got.size() - 1).lastOffset();
                    }
                    for (Entry e : got) {
                        if (e.baseOffset() >= startOffset() && e.lastOffset() <= lastOffset()
                            && terms.termAt(e.baseOffset()) == e.term() && !cache.containsBase(e.baseOffset())) {
                            cachePut(e);
                        }
                        unhold(e); // the tail cache took its own reference, or nobody wants it
                    }
                }
                readable();
            } catch (IllegalArgumentException e) {
                out = null;
                readInFlight = false;
                fail("batch-cache read of " + dir + " at " + from + ": " + e.getMessage());
            } finally {
                batches.release();
            }
        }

        @Override
        public void onError(LogException error) {
            if (out != null) {
                // Answered at once (out of range: a prefix truncation the log-engine has not taken yet; no
                // memory): the copying disk read handles these cases.
                out = null;
                startDiskRead(from);
                rc = READ_PENDING;
                return;
            }
            readInFlight = false;
            if (log != null && log.isFailed()) {
                fail("batch-cache read of " + dir + " at " + from + " failed: " + error.getMessage());
                return;
            }
            deferred.add(LogEngineRaftLog.this::readableNow);
            poller.schedule(LogEngineRaftLog.this);
        }
    }

    private void startDiskRead(long fromOffset) {
        if (readInFlight || log == null || failed) {
            return;
        }
        readInFlight = true;
        long generation = readGeneration;
        int maxBytes = Math.max(logConfig.maxBatchBytes(), 256 * 1024);
        // The log's start may lie inside the first entry (advanceRecordStart): reading there returns that entry.
        log.read(Math.max(fromOffset, log.logStartOffset()), log.logEndOffset(), maxBytes, new Log.ReadHandler() {
            @Override
            public void onRead(MemorySegment bytes, long firstOffset, long lastOffset) {
                readInFlight = false;
                if (generation == readGeneration && bytes.byteSize() > 0) {
                    List<Entry> got = new ArrayList<>();
                    try {
                        RaftBatches.decode(bytes, bytes.byteSize(), got);
                    } catch (IllegalArgumentException e) {
                        fail("read of " + dir + " at " + fromOffset + ": " + e.getMessage());
                        return;
                    }
                    if (!got.isEmpty()) {
                        pinnedFrom = got.get(0).baseOffset();
                        pinnedTo = got.get(got.size() - 1).lastOffset();
                    }
                    for (Entry e : got) {
                        if (e.baseOffset() >= startOffset() && e.lastOffset() <= lastOffset()
                            && terms.termAt(e.baseOffset()) == e.term() && !cache.containsBase(e.baseOffset())) {
                            cachePut(e);
                        }
                    }
                }
                readable();
            }

            @Override
            public void onError(LogException error) {
                readInFlight = false;
                if (log != null && log.isFailed()) {
                    fail("read of " + dir + " at " + fromOffset + " failed: " + error.getMessage());
                    return;
                }
                // Transient (no read window free, a prefix truncation raced): retried on a later turn.
                deferred.add(LogEngineRaftLog.this::readableNow);
                poller.schedule(LogEngineRaftLog.this);
            }
        });
    }

    private void readable() {
        if (callbacks != null) {
            deliver(this::readableNow);
        }
    }

    private void readableNow() {
        if (!failed && !closed && callbacks != null) {
            evictCache();
            callbacks.onReadable();
        }
    }

    /**
     * Drops the oldest cached entries, except entries not durable yet (the log could not serve them back) and those
     * of the last disk read (the group is about to use them): every durable one when the batch cache serves them
     * ({@link #sharesBatchCache()}), else while over {@link Options#tailCacheBytes()}.
     */
    private void evictCache() {
        boolean shared = sharesBatchCache();
        int i = 0;
        while ((shared || cacheBytes > options.tailCacheBytes()) && i < cache.size()) {
            Entry e = cache.get(i);
            if (e.lastOffset() > reportedDurable) {
                return;
            }
            if (e.baseOffset() >= pinnedFrom && e.lastOffset() <= pinnedTo) {
                i++;
                continue;
            }
            dropAt(i);
        }
    }

    /**
     * Gives arena memory back under pressure (the shard's Raft budget is short): drops durable entries whose
     * payload is in an arena from the tail cache, oldest first, until about {@code wanted} bytes went. Followers
     * that still need them read them back from the log. Not while a call of this log is running.
     *
     * @return the payload bytes dropped (freed unless a message queued for a follower still holds them)
     */
    public long shedArenaEntries(long wanted) {
        if (inCall > 0 || draining || closed) {
            return 0;
        }
        long dropped = 0;
        int i = 0;
        while (dropped < wanted && i < cache.size()) {
            Entry e = cache.get(i);
            if (e.lastOffset() > reportedDurable) {
                break;
            }
            if (e.payload() instanceof KafkaBatchPayload p && p.inArena()) {
                dropAt(i);
                dropped += p.sizeBytes();
            } else {
                i++;
            }
        }
        return dropped;
    }

    private void dropCacheFrom(long fromOffset) {
        // From the entry holding fromOffset (if any) on.
        int i = cache.floorIndex(fromOffset);
        if (i < 0 || cache.get(i).lastOffset() < fromOffset) {
            i++;
        }
        for (int k = i, n = cache.size(); k < n; k++) {
            Entry e = cache.get(k);
            cacheBytes -= e.sizeBytes();
            unhold(e);
        }
        cache.truncate(i);
    }

    /** Drops every entry of the tail cache. */
    private void dropAllCached() {
        for (int k = 0, n = cache.size(); k < n; k++) {
            Entry e = cache.get(k);
            cacheBytes -= e.sizeBytes();
            unhold(e);
        }
        cache.truncate(0);
    }

    private void dropAt(int i) {
        Entry e = cache.get(i);
        cache.removeAt(i);
        cacheBytes -= e.sizeBytes();
        unhold(e);
    }

    private void cachePut(Entry e) {
        cache.put(hold(e));
        cacheBytes += e.sizeBytes();
    }

    /** One more reference to the entry's payload (arena payloads are counted; see {@link KafkaBatchPayload}). */
    private static Entry hold(Entry e) {
        if (e.payload() != null) {
            e.payload().retain();
        }
        return e;
    }

    private static void unhold(Entry e) {
        if (e.payload() != null) {
            e.payload().release();
        }
    }

    private void addBoundary(long offset) {
        bytesSinceBoundary = 0;
        if (boundaryCount == boundaries.length) {
            boundaries = Arrays.copyOf(boundaries, boundaryCount * 2);
        }
        boundaries[boundaryCount++] = offset;
    }

    // ===================================================================================== state records

    private void requestRecord() {
        recordWanted = true;
        if (!state.busy() && !closed && !failed) {
            writeRecord();
        }
    }

    private void writeRecord() {
        recordWanted = false;
        bytesSinceCheckpoint = 0;
        SnapshotMeta sm;
        byte[] sd;
        if (savingMeta != null) {
            sm = savingMeta;
            sd = savingData;
            writingKind = 1;
        } else if (installMeta != null && installMeta != snapshot) {
            // (an install whose record is durable already waits for its log reset: this record is another one)
            sm = installMeta;
            sd = installData;
            writingKind = 2;
        } else {
            sm = snapshot;
            sd = snapshotData;
            writingKind = 0;
        }
        writingHardState = latestHardState;
        writingRecordStart = Math.max(recordStartRequested, terms.startOffset());
        byte[] body = encodeRecord(writingHardState, sm, sd, terms, controlEntries, writingRecordStart);
        state.write(body, this::onRecordWritten);
    }

    private void onRecordWritten(String error) {
        if (closed) {
            Runnable w = stateIdleWaiter;
            stateIdleWaiter = null;
            if (w != null) {
                w.run();
            }
            return;
        }
        if (error != null) {
            fail(error);
            return;
        }
        durableHardState = writingHardState;
        durableRecordStart = Math.max(durableRecordStart, writingRecordStart);
        HardState hs = durableHardState;
        deliver(() -> {
            if (!failed && !closed && callbacks != null) {
                callbacks.onHardStateDurable(hs);
            }
        });
        if (writingKind == 1) {
            SnapshotMeta meta = savingMeta;
            snapshot = savingMeta;
            snapshotData = savingData;
            savingMeta = null;
            savingData = null;
            deliver(() -> {
                if (!failed && !closed && callbacks != null) {
                    callbacks.onSnapshotSaved(meta);
                }
            });
        } else if (writingKind == 2) {
            SnapshotMeta meta = installMeta;
            snapshot = installMeta;
            snapshotData = installData;
            applyInstall(meta);
        }
        writingKind = 0;
        // A callback delivered above may have started the next record already (a group compacting or moving its record
        // start from onSnapshotSaved): then that record's completion comes back here.
        if (!state.busy() && (recordWanted || savingMeta != null || (installMeta != null && installMeta != snapshot)
            || !durableHardState.equals(latestHardState))) {
            writeRecord();
        }
    }

    /** The snapshot record is durable: make the log start right after it. */
    private void applyInstall(SnapshotMeta meta) {
        long last = meta.lastOffset();
        // The record start follows the log past the snapshot once a record says so (the caller writes it next).
        recordStartRequested = Math.max(recordStartRequested, last + 1);
        recordWanted = true;
        Runnable installed = () -> {
            installMeta = null;
            installData = null;
            deliver(() -> {
                if (!failed && !closed && callbacks != null) {
                    callbacks.onSnapshotInstalled(meta);
                }
            });
        };
        if (last >= terms.floorOffset() && last <= terms.lastOffset() && terms.termAt(last) == meta.lastTerm()) {
            if (last > terms.floorOffset()) {
                compactTo(last);
            }
            installed.run();
            return;
        }
        Verify.that(ops.stream().noneMatch(op -> op.kind == OpKind.APPEND), "appends queued during a snapshot install");
        terms.reset(last, meta.lastTerm());
        controlEntries.clear();
        dropAllCached();
        boundaryCount = 0;
        readGeneration++;
        reportedDurable = last;
        ops.add(new Op(OpKind.RESET, null, last + 1, installed));
        drainOps();
    }

    /**
     * The state record (version 2): {@code version i16, term i64, votedFor i32, snapshot lastOffset i64, lastTerm
     * i64, configuration, data length i32, data, term index length i32, term index, control entry count i32}, then
     * per control entry {@code kind i8, offset i64, term i64} and its {@link ConfigurationFormat} (CONFIGURATION)
     * or {@code newStartOffset i64} (PREFIX_TRUNCATION), then (version 3) {@code recordStart i64}. Version 1 records
     * (configurations only, no kind byte) and version 2 records (no record start) are still read.
     */
    static byte[] encodeRecord(HardState hs, SnapshotMeta sm, byte[] sd, TermIndex terms, List<Entry> controls) {
        return encodeRecord(hs, sm, sd, terms, controls, terms.startOffset());
    }

    static byte[] encodeRecord(HardState hs, SnapshotMeta sm, byte[] sd, TermIndex terms, List<Entry> controls,
                               long recordStart) {
        byte[] ti = terms.encode();
        int size = 2 + 12 + 16 + ConfigurationFormat.sizeBytes(sm.configuration()) + 4 + sd.length + 4 + ti.length + 4
            + 8;
        for (Entry e : controls) {
            size += 17 + (e.kind() == EntryKind.CONFIGURATION ? ConfigurationFormat.sizeBytes(e.configuration()) : 8);
        }
        ByteBuffer b = ByteBuffer.allocate(size);
        b.putShort(RECORD_VERSION);
        b.putLong(hs.term()).putInt(hs.votedFor());
        b.putLong(sm.lastOffset()).putLong(sm.lastTerm());
        ConfigurationFormat.write(b, sm.configuration());
        b.putInt(sd.length).put(sd);
        b.putInt(ti.length).put(ti);
        b.putInt(controls.size());
        for (Entry e : controls) {
            Verify.that(e.kind() == EntryKind.CONFIGURATION || e.kind() == EntryKind.PREFIX_TRUNCATION,
                "entry at %d is not a control entry", e.baseOffset());
            b.put((byte) e.kind().code()).putLong(e.baseOffset()).putLong(e.term());
            if (e.kind() == EntryKind.CONFIGURATION) {
                ConfigurationFormat.write(b, e.configuration());
            } else {
                b.putLong(e.newStartOffset());
            }
        }
        b.putLong(recordStart);
        Verify.that(!b.hasRemaining(), "state record size miscounted by %d", b.remaining());
        return b.array();
    }

    private void decodeRecord(byte[] body) {
        if (body == null) {
            return;
        }
        try {
            ByteBuffer b = ByteBuffer.wrap(body);
            short version = b.getShort();
            if (version < 1 || version > RECORD_VERSION) {
                throw new IllegalArgumentException("unknown record version " + version);
            }
            HardState hs = new HardState(b.getLong(), b.getInt());
            durableHardState = hs;
            latestHardState = hs;
            long last = b.getLong();
            long lastTerm = b.getLong();
            Configuration c = ConfigurationFormat.read(b);
            byte[] sd = new byte[b.getInt()];
            b.get(sd);
            snapshot = new SnapshotMeta(last, lastTerm, c);
            snapshotData = sd;
            byte[] ti = new byte[b.getInt()];
            b.get(ti);
            recordTerms = TermIndex.decode(ti);
            int n = b.getInt();
            for (int i = 0; i < n; i++) {
                EntryKind kind = version == 1 ? EntryKind.CONFIGURATION : EntryKind.fromCode(b.get());
                long offset = b.getLong();
                long term = b.getLong();
                if (kind == EntryKind.CONFIGURATION) {
                    recordControls.add(Entry.configuration(offset, term, ConfigurationFormat.read(b)));
                } else if (kind == EntryKind.PREFIX_TRUNCATION) {
                    recordControls.add(Entry.prefixTruncation(offset, term, b.getLong()));
                } else {
                    throw new IllegalArgumentException("control entry of kind " + kind + " at " + offset);
                }
            }
            if (version >= 3) {
                recoveredRecordStart = b.getLong();
            }
            if (b.hasRemaining()) {
                throw new IllegalArgumentException(b.remaining() + " bytes after the last field");
            }
        } catch (RuntimeException e) {
            throw new IllegalStateException("Raft state file " + state.path() + " holds a damaged record: " + e, e);
        }
    }

    /** Closes the log and the state file once writes in flight are done; {@code done} runs on the engine thread. */
    public void close(Runnable done) {
        if (closed) {
            done.run();
            return;
        }
        closed = true;
        // Arena payloads go back to their shard now; nothing reads the cache or appends the queue after close.
        dropAllCached();
        releaseLent();
        for (Op op : ops) {
            if (op.kind == OpKind.APPEND) {
                unhold(op.entry);
            }
        }
        ops.clear();
        Runnable finish = () -> {
            Runnable closeState = () -> {
                state.close();
                done.run();
            };
            if (state.busy()) {
                stateIdleWaiter = closeState; // the record in flight completes first
            } else {
                closeState.run();
            }
        };
        if (log == null) {
            finish.run();
        } else if (cutting) {
            Log l = log;
            closeAfterCut = () -> l.close(finish);
        } else {
            log.close(finish);
        }
    }

    @Override
    public String toString() {
        return "LogEngineRaftLog{" + dir + ", [" + startOffset() + ".." + lastOffset() + "], durable " + durableOffset()
            + ", " + terms.size() + " terms, " + ops.size() + " queued}";
    }

    // ===================================================================================== recovery

    /**
     * Reconciles the state record with the opened log (see the class comment). Each step is one read at most;
     * the steps chain through the read completions.
     */
    private static final class Recovery {
        private final LogEngineRaftLog r;
        private final OpenHandler handler;
        private long floor;
        private long floorTerm;
        private long last;

        Recovery(LogEngineRaftLog r, OpenHandler handler) {
            this.r = r;
            this.handler = handler;
        }

        void start() {
            try {
                Log log = r.log;
                long start = log.logStartOffset();
                last = log.logEndOffset() - 1;
                SnapshotMeta s = r.snapshot;
                TermIndex rec = r.recordTerms;
                if (start > 0 && start <= last && start != s.lastOffset() + 1
                    && (rec == null || start != rec.floorOffset() + 1)) {
                    // The log's start may lie inside its first batch (advanceRecordStart): Raft's log starts at
                    // that batch.
                    epochBatchStart(start, base -> {
                        try {
                            reconcile(base);
                        } catch (RuntimeException e) {
                            fail(e);
                        }
                    });
                    return;
                }
                reconcile(start);
            } catch (RuntimeException e) {
                fail(e);
            }
        }

        /** Reconciles the record with the log whose first batch starts at {@code start}. */
        private void reconcile(long start) {
            try {
                Log log = r.log;
                SnapshotMeta s = r.snapshot;
                if (start > s.lastOffset() + 1) {
                    throw new IllegalStateException("log " + r.dir + " starts at " + start + " past its Raft snapshot at "
                        + s.lastOffset() + " (was it truncated outside Raft?)");
                }
                TermIndex rec = r.recordTerms;
                if (rec != null && rec.floorOffset() >= start && rec.floorOffset() <= last) {
                    // A prefix truncation recorded but not yet carried out by the log before a crash.
                    start = log.truncatePrefix(rec.floorOffset() + 1);
                }
                floor = start - 1;
                if (floor == -1) {
                    floorTerm = 0;
                } else if (s.exists() && floor == s.lastOffset()) {
                    floorTerm = s.lastTerm();
                } else if (rec != null && rec.floorOffset() <= floor && floor <= rec.lastOffset()) {
                    floorTerm = rec.termAt(floor);
                } else if (s.exists() && s.lastOffset() <= last) {
                    // Unknown term below the start: restart the log right after the snapshot, if it holds it.
                    epochAt(s.lastOffset(), epoch -> {
                        if (epoch == s.lastTerm()) {
                            r.log.truncatePrefix(s.lastOffset() + 1);
                            floor = s.lastOffset();
                            floorTerm = s.lastTerm();
                            seed();
                        } else {
                            resetThenFinish();
                        }
                    });
                    return;
                } else if (s.exists()) {
                    resetThenFinish();
                    return;
                } else {
                    throw new IllegalStateException("log " + r.dir + " starts at " + start + " with no Raft snapshot"
                        + " recording the term before it");
                }
                seed();
            } catch (RuntimeException e) {
                fail(e);
            }
        }

        /** Seeds the term index with the checkpoint's part above the floor, then verifies it. */
        private void seed() {
            TermIndex t = r.terms;
            t.reset(floor, floorTerm);
            TermIndex rec = r.recordTerms;
            if (rec != null && rec.lastOffset() > floor && rec.floorOffset() <= floor && rec.termAt(floor) == floorTerm) {
                TermIndex copy = TermIndex.decode(rec.encode());
                copy.truncatePrefix(floor);
                if (copy.lastOffset() > last) {
                    copy.truncateSuffix(last + 1);
                }
                copyInto(copy, t);
            }
            if (t.lastOffset() == floor) {
                scanFrom(floor + 1);
                return;
            }
            long claimed = t.lastOffset();
            epochAt(claimed, epoch -> {
                if (epoch == r.terms.termAt(claimed)) {
                    scanFrom(claimed + 1);
                } else {
                    bisect(floor + 1, claimed);
                }
            });
        }

        private static void copyInto(TermIndex from, TermIndex to) {
            // Rebuild term runs from the checkpoint: each run's start and the next run's start bound it.
            long prevEnd = from.floorOffset();
            long o = from.floorOffset() + 1;
            while (o <= from.lastOffset()) {
                long term = from.termAt(o);
                long end = from.lastOffsetAtOrBeforeTerm(term);
                to.append(o, end, term);
                prevEnd = end;
                o = end + 1;
            }
            Verify.that(prevEnd == from.lastOffset(), "term index copy ends at %d, not %d", prevEnd, from.lastOffset());
        }

        /** Finds the first offset in [lo, hi] whose log epoch disagrees with the checkpoint (hi is known to). */
        private void bisect(long lo, long hi) {
            if (lo >= hi) {
                long diverge = lo;
                epochBatchStart(diverge, base -> {
                    r.terms.truncateSuffix(Math.max(base, floor + 1));
                    scanFrom(r.terms.lastOffset() + 1);
                });
                return;
            }
            long mid = lo + (hi - lo) / 2;
            epochAt(mid, epoch -> {
                if (epoch == r.terms.termAt(mid)) {
                    bisect(mid + 1, hi);
                } else {
                    bisect(lo, mid);
                }
            });
        }

        /** Reads the log's batches from {@code from} to the end into the term index and configurations. */
        private void scanFrom(long from) {
            if (from > last) {
                finish();
                return;
            }
            readBatches(from, (b, end) -> {
                long next = from;
                RecordBatch view = new RecordBatch();
                long pos = 0;
                while (pos + RecordBatch.HEADER_BYTES <= end) {
                    view.wrap(b, pos);
                    int size = view.sizeInBytes();
                    if (pos + size > end) {
                        break;
                    }
                    if (view.lastOffset() >= next) {
                        long epoch = view.partitionLeaderEpoch();
                        if (epoch < r.terms.lastTerm() || epoch < 1) {
                            throw new IllegalStateException("log " + r.dir + " has epoch " + epoch + " at offset "
                                + view.baseOffset() + " after epoch " + r.terms.lastTerm() + ": not a Raft log");
                        }
                        Verify.that(view.baseOffset() == r.terms.lastOffset() + 1, "log batch at %d does not follow %d",
                            view.baseOffset(), r.terms.lastOffset());
                        Entry e = null;
                        if (view.isControl()) {
                            e = RaftBatches.decodeOne(view);
                        }
                        r.terms.append(view.baseOffset(), view.lastOffset(), epoch);
                        if (e != null && (e.kind() == EntryKind.CONFIGURATION
                            || e.kind() == EntryKind.PREFIX_TRUNCATION)) {
                            r.controlEntries.add(e);
                        }
                        r.bytesSinceBoundary += size;
                        if (r.bytesSinceBoundary >= r.options.boundaryEveryBytes()) {
                            r.addBoundary(view.lastOffset());
                        }
                        next = view.lastOffset() + 1;
                    }
                    pos += size;
                }
                if (next <= from) {
                    throw new IllegalStateException("recovery read at " + from + " of " + r.dir + " returned no batch");
                }
                scanFrom(next);
            });
        }

        private void finish() {
            SnapshotMeta s = r.snapshot;
            if (s.exists() && s.lastOffset() > r.terms.floorOffset()
                && (s.lastOffset() > r.terms.lastOffset() || r.terms.termAt(s.lastOffset()) != s.lastTerm())) {
                // A snapshot install was recorded but the log was not replaced before a crash.
                resetThenFinish();
                return;
            }
            // Configuration entries: the checkpoint's that the verified log confirms, then the scanned ones.
            List<Entry> configs = new ArrayList<>();
            for (Entry e : r.recordControls) {
                if (e.baseOffset() > r.terms.floorOffset() && r.terms.termAt(e.baseOffset()) == e.term()) {
                    configs.add(e);
                }
            }
            for (Entry e : r.controlEntries) {
                if (configs.isEmpty() || e.baseOffset() > configs.get(configs.size() - 1).baseOffset()) {
                    configs.add(e);
                }
            }
            r.controlEntries.clear();
            r.controlEntries.addAll(configs);
            done();
        }

        private void resetThenFinish() {
            SnapshotMeta s = r.snapshot;
            r.terms.reset(s.lastOffset(), s.lastTerm());
            r.controlEntries.clear();
            r.resetLog(s.lastOffset() + 1, this::done);
        }

        private void done() {
            // The record start: what a durable record holds, carried out again if the log-engine lost it (its start file
            // is written in the background, unsynced). A start the log-engine has that no record holds yet is recorded
            // now, and reported once that record is durable.
            long recorded = r.recoveredRecordStart;
            if (recorded > r.log.logStartOffset() && recorded <= r.log.logEndOffset() && recorded >= r.terms.startOffset()) {
                r.log.truncatePrefix(recorded);
            }
            long floor = r.recordTerms == null ? 0 : r.recordTerms.floorOffset() + 1;
            r.durableRecordStart = Math.max(recorded, floor);
            if (r.recoveredRecordStart < 0 && r.recordTerms == null) {
                r.durableRecordStart = r.log.logStartOffset(); // no record yet: a new log (or one from before version 3)
            }
            r.recordStartRequested = r.log.logStartOffset();
            if (r.log.logStartOffset() > r.durableRecordStart) {
                r.recordWanted = true; // written below, once open
            }
            r.recordTerms = null;
            r.recordControls.clear();
            r.logDurableEnd = r.log.durableEndOffset();
            r.reportedDurable = r.durableOffset();
            if (r.recordWanted) {
                r.requestRecord();
            }
            handler.onOpen(r, null);
        }

        private void fail(RuntimeException e) {
            r.closed = true;
            Log log = r.log;
            if (log != null) {
                log.close(() -> {
                    r.state.close();
                    handler.onOpen(null, e);
                });
            } else {
                r.state.close();
                handler.onOpen(null, e);
            }
        }

        private interface BatchesHandler {
            void onBatches(MemorySegment bytes, long length);
        }

        private void readBatches(long from, BatchesHandler h) {
            // Other logs of the shard (recovering too, when a broker restarts) may hold every read window for a
            // moment: wait for one rather than fail the open. The read takes it at once.
            ChunkPool.Waiter[] waiter = new ChunkPool.Waiter[1];
            waiter[0] = new ChunkPool.Waiter(() -> {
                if (r.closed) {
                    r.readPool.cancel(waiter[0]);
                } else if (r.readPool.admit(waiter[0], 1)) {
                    readBatchesNow(from, h);
                }
            });
            if (r.readPool.admit(waiter[0], 1)) {
                readBatchesNow(from, h);
            }
        }

        private void readBatchesNow(long from, BatchesHandler h) {
            int maxBytes = Math.max(r.logConfig.maxBatchBytes(), 256 * 1024);
            // A log start inside the first batch (an exact Kafka log start): reading there returns that batch.
            r.log.read(Math.max(from, r.log.logStartOffset()), r.log.logEndOffset(), maxBytes, new Log.ReadHandler() {
                @Override
                public void onRead(MemorySegment bytes, long firstOffset, long lastOffset) {
                    if (bytes.byteSize() == 0) {
                        fail(new IllegalStateException("log " + r.dir + " has no readable batch at offset " + from
                            + " below its end " + r.log.logEndOffset()));
                        return;
                    }
                    try {
                        h.onBatches(bytes, bytes.byteSize());
                    } catch (RuntimeException e) {
                        fail(e);
                    }
                }

                @Override
                public void onError(LogException error) {
                    fail(new IllegalStateException("recovery read of " + r.dir + " at " + from + " failed: "
                        + error.getMessage(), error));
                }
            });
        }

        /** The epoch of the batch containing {@code offset}. */
        private void epochAt(long offset, LongConsumer then) {
            readBatches(offset, (b, end) -> {
                RecordBatch v = new RecordBatch().wrap(b, 0);
                Verify.that(v.baseOffset() <= offset && v.lastOffset() >= offset, "read at %d returned batch at %d",
                    offset, v.baseOffset());
                then.accept(v.partitionLeaderEpoch());
            });
        }

        /** The base offset of the batch containing {@code offset}. */
        private void epochBatchStart(long offset, LongConsumer then) {
            readBatches(offset, (b, end) -> then.accept(new RecordBatch().wrap(b, 0).baseOffset()));
        }
    }
}
