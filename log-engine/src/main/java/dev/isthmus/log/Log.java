package dev.isthmus.log;

import dev.isthmus.arena.IoBuf;
import dev.isthmus.ffi.Errno;
import dev.isthmus.uring.Clock;
import dev.isthmus.uring.DmaFile;
import dev.isthmus.uring.FileOps;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.Verify;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A durable, append-only log of Kafka v2 record batches in one directory: segment files named by their base
 * offset, written with direct I/O through an {@link IoEngine}, with sparse indexes in Kafka's formats.
 *
 * <h2>Offsets and durability</h2>
 * {@link #append} assigns offsets at once (stamping each batch's baseOffset and partitionLeaderEpoch, which
 * lie outside its CRC) and returns; the bytes reach the disk through the active segment's appender, and
 * {@link Listener#onDurable(long)} reports the durable end (the offset after the last durable record) as
 * fdatasyncs complete. Durability advances in offset order even across segment rolls.
 *
 * <h2>Reads</h2>
 * {@link #read} returns whole batches from the first one containing the requested offset, at least one
 * batch, up to a byte limit, never past the caller's bound (the durable or committed end). Bytes come from
 * the disk with direct I/O into the log's read windows; nothing goes through the page cache.
 *
 * <h2>Threads</h2>
 * Owned by the engine's thread; every method and callback runs there. Opening lists the directory and reads
 * small checkpoint files with ordinary (short, synchronous) file calls; data moves only through the engine.
 *
 * <h2>Files and time</h2>
 * Every file-system call goes through the engine's {@link FileOps} and every clock read through its
 * {@link Clock} (never {@code java.nio.file.Files} or {@code System.currentTimeMillis} directly), so the same
 * code runs on the simulated engine, whose disk is in memory and crash-consistent and whose time is virtual.
 */
public final class Log {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.log");
    static final String LOG_SUFFIX = ".log";
    static final String CLEAN_SHUTDOWN = "clean-shutdown";
    static final String LOG_START = "log-start-offset";
    static final String CLEANER_CHECKPOINT = "cleaner-offset-checkpoint";
    /**
     * A {@link RecoveryPoint} is recorded each time the active segment made this many more bytes durable: what
     * recovery validates after a crash is bounded by it (plus what was not durable yet), whatever the segment size.
     * Package access: tests lower it.
     */
    static long recoveryPointEveryBytes = 32L << 20;

    /** What the log tells its owner. */
    public interface Listener {
        /** Every record below {@code durableEndOffset} is on stable storage. */
        void onDurable(long durableEndOffset);

        /** The disk failed; the log accepts no more appends. */
        default void onFailure(String what) {
        }

        /** Write-behind memory was freed: an append refused with {@link #NO_MEMORY} may be retried. */
        default void onSpaceAvailable() {
        }
    }

    /** Receives a read's batches. */
    public interface ReadHandler {
        /**
         * Whole batches: {@code bytes} holds them back to back, starting with the batch that contains the
         * requested offset; valid only during this call. Empty (length 0) when nothing is readable yet.
         */
        void onRead(MemorySegment bytes, long firstOffset, long lastOffset);

        /** The read failed (offset out of range, I/O error). */
        void onError(LogException error);
    }

    /**
     * Receives a read's batches as a fragment chain of batch-cache memory: zero-copy shares of the cached
     * batches, ready to be sent as they are. The receiver owns {@code batches} and must
     * {@link IoBuf#release() release} it (from any thread) when done; it stays valid until then, whatever
     * happens to the log or the cache meanwhile.
     */
    public interface ChainReadHandler {
        /**
         * Whole batches back to back, starting with the batch that contains the requested offset (or the first
         * one after it in a compacted log); an empty chain when nothing is readable yet.
         */
        void onRead(IoBuf batches, long firstOffset, long lastOffset);

        /** The read failed (offset out of range, I/O error, no memory); nothing to release. */
        void onError(LogException error);
    }

    /** Completion of {@link #open}. */
    public interface OpenHandler {
        void onOpen(Log log, RuntimeException error);
    }

    /**
     * Returned by {@link #append} when write-behind memory is short: nothing was appended, the log waits in line for
     * the shard's write-behind chunks ({@link ChunkPool}); retry after {@link Listener#onSpaceAvailable()} (or close
     * the log). While the log waits, chunks coming back are reserved for it in turn, not taken by other appends.
     */
    public static final long NO_MEMORY = -1;

    // Everything below is private: the log's collaborators (recovery, truncation, compaction, the closer, the
    // cache, the manager) read and change it through the package-private methods further down, never the fields.
    private final IoEngine engine;
    /** The engine's file-system calls and clock (see "Files and time"). */
    private final FileOps fs;
    private final Clock clock;
    private final Path dir;
    private LogConfig config;
    private final ChunkPool writePool;
    private final ChunkPool readPool;
    /** Why the last {@link LargeBuffer} could not be had (for the error of the read that needed it). */
    private String largeBufferFailure;
    private final Listener listener;
    private final List<Segment> segments = new ArrayList<>();
    private final List<Segment> segmentsView = java.util.Collections.unmodifiableList(segments);
    private final BatchBytes.Contiguous contiguous = new BatchBytes.Contiguous();
    private final BatchBytes.Chained chained = new BatchBytes.Chained();
    /** Base offsets and sizes of the batches of the current append, for the batch cache. */
    private long[] cacheBatchOffsets = new long[16];
    private int[] cacheBatchSizes = new int[16];
    /** This log's part of the shard's batch cache, or null when the log was opened without one. */
    private final LogCache cache;
    private long logStartOffset;
    private long nextOffset;
    private long durableNext;
    /** The segment and position of the last recovery point recorded (null: none yet in this life of the log). */
    private Segment recoveryPointSegment;
    private long recoveryPointPosition;
    private boolean failed;
    private boolean closed;
    private Runnable idleWaiter;
    /** The manager that opened this log, or null. */
    private LogManager manager;
    /** In the manager's list of logs to flush at its next poll. */
    private boolean inDirtyList;
    private long zeroedSegmentsTaken;
    /** This log's place in the write pool's line when an append found no memory. */
    private final ChunkPool.Waiter memoryWaiter = new ChunkPool.Waiter(this::onChunksReserved);
    /** The shard's stock of zeroed segment files (given by the {@link LogManager} that opened the log), or null. */
    private final ZeroedSegments zeroedStock;
    /** Segments rolled away from whose seal (last writes, fdatasync, release) has not finished. */
    private int sealsPending;
    // Compaction state: the offset up to which the log was compacted, the earliest delete horizon of a kept
    // tombstone (a compaction is due then), suffix truncations so far, whether one runs, the running compaction.
    private long cleanerCheckpoint;
    private long tombstoneHorizonMs = Long.MAX_VALUE;
    private int truncations;
    private boolean truncating;
    /**
     * A suffix truncation cut a file (and perhaps deleted later segments) and the cut is not durable yet: nothing
     * appended after it is reported durable until it is (a power loss could otherwise bring the cut records back
     * under, or in front of, acknowledged new ones). See {@link LogTruncation}.
     */
    private boolean cutUnsynced;
    private LogCompaction compaction;
    /** Reads (and cache fills) of this log's files in flight. */
    private int readsInFlight;
    private DiskStats stats;

    // Durability queue: (segment, end position, next offset) in append order.
    private Segment[] pendingSegment = new Segment[64];
    private long[] pendingEnd = new long[64];
    private long[] pendingNext = new long[64];
    private int pendingHead;
    private int pendingTail;
    /** The newest entry may still take appends (no flush since it was made). */
    private boolean pendingOpen;

    Log(IoEngine engine, Path dir, LogConfig config, ChunkPool writePool, ChunkPool readPool, BatchCache batchCache,
        ZeroedSegments zeroedStock, Listener listener) {
        this.cache = batchCache == null ? null : new LogCache(batchCache, this);
        this.engine = engine;
        this.fs = engine.fileOps();
        this.clock = engine.clock();
        this.dir = dir;
        this.config = config;
        this.writePool = writePool;
        this.readPool = readPool;
        this.listener = listener;
        this.zeroedStock = zeroedStock;
    }

    /**
     * Opens (creating if needed) the log in {@code dir}: validates the tail batch by batch after an unclean
     * shutdown, cuts it at the first invalid byte, rebuilds missing or damaged indexes, and calls
     * {@code handler} on the engine thread when ready.
     */
    public static void open(IoEngine engine, Path dir, LogConfig config, ChunkPool writePool, ChunkPool readPool,
                            Listener listener, OpenHandler handler) {
        open(engine, dir, config, writePool, readPool, null, listener, handler);
    }

    /**
     * {@link #open(IoEngine, Path, LogConfig, ChunkPool, ChunkPool, Listener, OpenHandler)} with a share of the
     * shard's {@link BatchCache} (null: none): appends are cached, and
     * {@link #read(long, long, int, ChainReadHandler)} serves zero-copy chains from it with read-ahead.
     */
    public static void open(IoEngine engine, Path dir, LogConfig config, ChunkPool writePool, ChunkPool readPool,
                            BatchCache cache, Listener listener, OpenHandler handler) {
        open(engine, dir, config, writePool, readPool, cache, null, listener, handler);
    }

    /** The full form: with the shard's {@link ZeroedSegments} stock (null: none), as a {@link LogManager} opens logs. */
    static void open(IoEngine engine, Path dir, LogConfig config, ChunkPool writePool, ChunkPool readPool,
                     BatchCache cache, ZeroedSegments zeroedStock, Listener listener, OpenHandler handler) {
        Log log = new Log(engine, dir, config, writePool, readPool, cache, zeroedStock, listener);
        try {
            log.fs.createDirectoriesDurably(dir);
            // A previous Log of this directory (closed, or abandoned) may still have file tasks queued.
            log.fs.awaitBackground(dir);
            new LogRecovery(log, handler).start();
        } catch (IOException e) {
            handler.onOpen(null, new UncheckedIOException("cannot open log directory " + dir + ": " + e.getMessage(), e));
        } catch (RuntimeException e) {
            handler.onOpen(null, e);
        }
    }

    // ------------------------------------------------------------------------------------------ state

    public Path dir() {
        return dir;
    }

    public LogConfig config() {
        return config;
    }

    /**
     * Changes the log's settings at runtime (IncrementalAlterConfigs): retention, roll, compaction and batch
     * limits apply from the next append or retention pass; the active segment keeps its file. Batches larger
     * than the read windows are read through a {@link LargeBuffer}, so any max.message.bytes up to segment.bytes
     * can be read back (appending one needs write-behind chunks for the whole batch).
     */
    public void updateConfig(LogConfig next) {
        this.config = next;
        if (manager != null) {
            manager.recountCompactLogs();
        }
    }

    /** The first offset still in the log. */
    public long logStartOffset() {
        return logStartOffset;
    }

    /** The offset the next appended record gets. */
    public long logEndOffset() {
        return nextOffset;
    }

    /** The offset after the last durable record. */
    public long durableEndOffset() {
        return durableNext;
    }

    public int segmentCount() {
        return segments.size();
    }

    /** Total bytes of all segments. */
    public long sizeBytes() {
        long total = 0;
        for (Segment s : segments) {
            total += s.size;
        }
        return total;
    }

    public boolean isFailed() {
        return failed;
    }

    Segment active() {
        return segments.get(segments.size() - 1);
    }

    /**
     * Recovery is done ({@link LogRecovery}): the log holds {@code recovered} (the last one active), starts at
     * {@code start} and appends at {@code next}, all durable.
     */
    void recovered(List<Segment> recovered, long start, long next) {
        Verify.that(segments.isEmpty() && !recovered.isEmpty(), "recovered twice, or no segment");
        segments.addAll(recovered);
        this.logStartOffset = start;
        this.nextOffset = next;
        this.durableNext = next;
    }

    // ------------------------------------------------------------------------------------------ for collaborators

    IoEngine engine() {
        return engine;
    }

    FileOps fs() {
        return fs;
    }

    Clock clock() {
        return clock;
    }

    ChunkPool writePool() {
        return writePool;
    }

    ChunkPool readPool() {
        return readPool;
    }

    /** The segments, oldest first, the last one active (a read-only view; changed only by this class). */
    List<Segment> segments() {
        return segmentsView;
    }

    /** This log's part of the batch cache, or null. */
    LogCache logCache() {
        return cache;
    }

    /** Why the last {@link LargeBuffer} for this log could not be had. */
    String largeBufferFailure() {
        return largeBufferFailure;
    }

    void largeBufferFailed(String why) {
        this.largeBufferFailure = why;
    }

    /** The offset below which the log was compacted (the cleaner's checkpoint). */
    long cleanerCheckpoint() {
        return cleanerCheckpoint;
    }

    /** The earliest delete horizon of a kept tombstone (a compaction is due then), or Long.MAX_VALUE. */
    long tombstoneHorizonMs() {
        return tombstoneHorizonMs;
    }

    /** The cleaner's state as recorded in the log's directory (read by recovery). */
    void restoreCleanerState(long checkpoint, long horizonMs) {
        this.cleanerCheckpoint = checkpoint;
        this.tombstoneHorizonMs = horizonMs;
    }

    /** Suffix truncations so far (a compaction started before one is stale). */
    int truncationCount() {
        return truncations;
    }

    /** Whether a suffix truncation runs. */
    boolean isTruncating() {
        return truncating;
    }

    /** The compaction running on this log, or null. */
    LogCompaction compaction() {
        return compaction;
    }

    void compactionStarted(LogCompaction c) {
        Verify.that(compaction == null, "two compactions of one log");
        this.compaction = c;
    }

    void compactionEnded(LogCompaction c) {
        if (compaction == c) {
            compaction = null;
        }
    }

    /** Opened by {@code m}: it schedules this log's flushes and compactions. */
    void managedBy(LogManager m) {
        this.manager = m;
    }

    /** Marks the log for its manager's next flush; false when it was marked already. */
    boolean markDirty() {
        if (inDirtyList) {
            return false;
        }
        inDirtyList = true;
        return true;
    }

    /** Takes the mark off (flushed, or closed); returns whether it was marked. */
    boolean clearDirty() {
        boolean was = inDirtyList;
        inDirtyList = false;
        return was;
    }

    // ------------------------------------------------------------------------------------------ append

    /**
     * Appends the record batches in {@code src[offset, offset + length)} (one or more, back to back),
     * assigning offsets from {@link #logEndOffset()} and stamping {@code leaderEpoch} into each. The batches
     * are validated first (magic 2, lengths, CRC-32C, record count, size limit); an invalid one throws
     * {@link LogException} and nothing is appended.
     *
     * @return the base offset assigned to the first batch, or {@link #NO_MEMORY} when write-behind memory
     *         is short (nothing appended; retry after {@link Listener#onSpaceAvailable()})
     */
    public long append(MemorySegment src, long offset, long length, int leaderEpoch) {
        try {
            return append(contiguous.wrap(src), offset, length, leaderEpoch);
        } finally {
            contiguous.clear();
        }
    }

    /**
     * Appends the record batches held by the fragment chain {@code batches} (all of it): the same contract as
     * {@link #append(MemorySegment, long, long, int)}, read where the bytes lie. Batches may cross fragment
     * boundaries; their CRC is checked across fragments and nothing is linearised: the bytes are copied once,
     * fragment by fragment, into the aligned write-behind chunks (and into the batch cache, if the log has
     * one). The chain's baseOffset and partitionLeaderEpoch fields are stamped in place; the caller keeps its
     * reference and releases it whenever it likes, but must not change the appended bytes afterwards: a large
     * append (256 KiB or more) of a chain of the batch cache's own arena is cached by sharing its fragments.
     */
    public long append(IoBuf batches, int leaderEpoch) {
        return append(batches, 0, batches.size(), leaderEpoch);
    }

    /** {@link #append(IoBuf, int)} of {@code length} bytes of {@code batches} from {@code offset}. */
    public long append(IoBuf batches, long offset, long length, int leaderEpoch) {
        return appendChain(batches, offset, length, leaderEpoch, true);
    }

    /**
     * {@link #append(MemorySegment, long, long, int)} of batches copied from another replica's log, which may have
     * been compacted there: a batch may hold fewer records than the offsets it covers (none, even), and keeps them.
     * Every other check is the same (magic, lengths, CRC-32C, size limit). Offsets are assigned from
     * {@link #logEndOffset()} as for any append, so each batch covers the offsets it covered on the other replica.
     */
    public long appendReplica(MemorySegment src, long offset, long length, int leaderEpoch) {
        try {
            return append(contiguous.wrap(src), offset, length, leaderEpoch, false);
        } finally {
            contiguous.clear();
        }
    }

    /**
     * {@link #appendReplica(MemorySegment, long, long, int)} of batches held by a fragment chain, read where they lie
     * as {@link #append(IoBuf, long, long, int)} does (baseOffset and partitionLeaderEpoch are stamped in place).
     */
    public long appendReplica(IoBuf batches, long offset, long length, int leaderEpoch) {
        return appendChain(batches, offset, length, leaderEpoch, false);
    }

    /**
     * {@link #appendReplica(IoBuf, long, long, int)} of batches whose CRC-32C the caller checked in full in this
     * process since their bytes arrived (the produce path validates each batch once, where it enters its partition;
     * a Raft log checks a follower's input once, as it takes it). The header checks stay (magic, lengths, record
     * count, size limit); the CRC is not computed again. Bytes read back from disk (recovery) or received from
     * another node never come through here unchecked.
     *
     * <p>The chain's bytes are final once appended (a Raft payload: stamped here, then only read): when the whole
     * chain is appended and it is of the batch cache's arena, the cache keeps the batches by sharing its fragments
     * whatever their size, rather than copying them (one copy of a produced batch in memory, held by the Raft log's
     * tail and the cache alike). The caller must not change the appended bytes afterwards.
     */
    public long appendReplicaChecked(IoBuf batches, long offset, long length, int leaderEpoch) {
        return appendChain(batches, offset, length, leaderEpoch, false, false);
    }

    /** {@link #appendReplicaChecked(IoBuf, long, long, int)} of batches in contiguous memory. */
    public long appendReplicaChecked(MemorySegment src, long offset, long length, int leaderEpoch) {
        try {
            return append(contiguous.wrap(src), offset, length, leaderEpoch, false, false);
        } finally {
            contiguous.clear();
        }
    }

    private long appendChain(IoBuf batches, long offset, long length, int leaderEpoch, boolean strictCount) {
        return appendChain(batches, offset, length, leaderEpoch, strictCount, true);
    }

    private long appendChain(IoBuf batches, long offset, long length, int leaderEpoch, boolean strictCount,
                             boolean crc) {
        if (offset < 0 || length < 0 || offset + length > batches.size()) {
            throw new IndexOutOfBoundsException("append of [" + offset + ", " + (offset + length) + ") from a chain of "
                + batches.size() + " bytes");
        }
        try {
            return append(chained.wrap(batches), offset, length, leaderEpoch, strictCount, crc);
        } finally {
            chained.clear();
        }
    }

    private long append(BatchBytes src, long offset, long length, int leaderEpoch) {
        return append(src, offset, length, leaderEpoch, true);
    }

    private long append(BatchBytes src, long offset, long length, int leaderEpoch, boolean strictCount) {
        return append(src, offset, length, leaderEpoch, strictCount, true);
    }

    private long append(BatchBytes src, long offset, long length, int leaderEpoch, boolean strictCount, boolean crc) {
        checkWritable();
        int batches = validate(src, offset, length, strictCount, crc);
        // Offset arithmetic is checked before any segment is touched: the batches' offsets must fit the log's
        // range, and all of them one segment's relative (i32) offsets, the active one's or a new one's.
        long span = validatedSpan;
        if (span > MAX_SEGMENT_SPAN) {
            throw new LogException(LogException.Kind.INVALID_RECORD, "an append of " + batches + " batches covers "
                + span + " offsets; one segment holds at most " + MAX_SEGMENT_SPAN);
        }
        if (nextOffset > Long.MAX_VALUE - span) {
            throw new LogException(LogException.Kind.INVALID_RECORD, "an append of " + span + " offsets at "
                + nextOffset + " would pass the largest offset " + Long.MAX_VALUE);
        }
        Segment seg = active();
        if (shouldRoll(seg, length, span)) {
            roll();
            seg = active();
        }
        if (nextOffset < seg.baseOffset || nextOffset - seg.baseOffset > MAX_SEGMENT_SPAN - span) {
            throw new LogException(LogException.Kind.INVALID_RECORD, "offsets [" + nextOffset + ", "
                + (nextOffset + span) + ") do not fit segment " + seg.baseOffset + " and it cannot roll (empty)");
        }
        int take = seg.appender.chunksToTake(length);
        if (take > writePool.capacity()) {
            throw new LogException(LogException.Kind.MESSAGE_TOO_LARGE, "an append of " + length + " bytes needs "
                + take + " write-behind chunks of " + writePool.chunkBytes() + " bytes; the shard has "
                + writePool.capacity() + " in all");
        }
        if (!writePool.admit(memoryWaiter, take)) {
            return NO_MEMORY;
        }
        long first = nextOffset;
        long pos = offset;
        long filePos = seg.size;
        if (cacheBatchOffsets.length < batches) {
            cacheBatchOffsets = new long[Math.max(batches, cacheBatchOffsets.length * 2)];
            cacheBatchSizes = new int[cacheBatchOffsets.length];
        }
        for (int i = 0; i < batches; i++) {
            int size = src.getInt(pos + RecordBatch.BATCH_LENGTH) + RecordBatch.LOG_OVERHEAD;
            int delta = src.getInt(pos + RecordBatch.LAST_OFFSET_DELTA);
            long maxTimestamp = src.getLong(pos + RecordBatch.MAX_TIMESTAMP);
            src.setLong(pos + RecordBatch.BASE_OFFSET, nextOffset);
            src.setInt(pos + RecordBatch.PARTITION_LEADER_EPOCH, leaderEpoch);
            long last = nextOffset + delta;
            seg.index.onBatch(last, filePos, size, maxTimestamp);
            seg.maxTimestamp = Math.max(seg.maxTimestamp, maxTimestamp);
            cacheBatchOffsets[i] = nextOffset;
            cacheBatchSizes[i] = size;
            nextOffset = last + 1;
            pos += size;
            filePos += size;
        }
        long start = seg.appender.append(src, offset, length);
        Verify.that(start == seg.size, "appender position %d != segment size %d", start, seg.size);
        if (seg.isEmpty()) {
            seg.createdMs = clock.currentTimeMillis();
        }
        seg.size += length;
        seg.lastOffset = nextOffset - 1;
        pushPending(seg, seg.size, nextOffset);
        if (cache != null) {
            // A checked append's chain is final (appendReplicaChecked): the cache may share it at any size.
            cache.onAppend(src, offset, length, batches, cacheBatchOffsets, cacheBatchSizes, nextOffset, !crc);
        }
        return first;
    }

    private void checkWritable() {
        if (closed) {
            throw new IllegalStateException("log " + dir + " is closed");
        }
        if (failed) {
            throw new LogException(LogException.Kind.STORAGE_ERROR, "log " + dir + " failed on a disk error");
        }
    }

    /**
     * Offsets one segment can hold: relative offsets (last offset - segment base) are i32s in the index files,
     * so a segment covers at most 2^31 offsets.
     */
    static final long MAX_SEGMENT_SPAN = (long) Integer.MAX_VALUE + 1;
    /** The offsets the batches {@link #validate} last checked cover (the sum of their lastOffsetDelta + 1). */
    private long validatedSpan;

    /**
     * Validates every batch (the CRC-32C only when {@code crc}); returns how many there are and leaves the offsets
     * they cover in {@link #validatedSpan}.
     */
    private int validate(BatchBytes src, long offset, long length, boolean strictCount, boolean crc) {
        long pos = offset;
        long end = offset + length;
        int count = 0;
        long span = 0;
        while (pos < end) {
            long available = end - pos;
            if (available >= RecordBatch.HEADER_BYTES && src.getByte(pos + RecordBatch.MAGIC) != RecordBatch.CURRENT_MAGIC) {
                throw new LogException(LogException.Kind.INVALID_RECORD, "batch " + count + " has magic "
                    + src.getByte(pos + RecordBatch.MAGIC) + "; only magic 2 (Kafka 0.11+) is accepted");
            }
            int size = available >= RecordBatch.HEADER_BYTES
                ? src.getInt(pos + RecordBatch.BATCH_LENGTH) + RecordBatch.LOG_OVERHEAD : -1;
            if (available >= RecordBatch.HEADER_BYTES && size > config.maxBatchBytes()) {
                throw new LogException(LogException.Kind.MESSAGE_TOO_LARGE, "batch " + count + " is "
                    + size + " bytes, more than max.message.bytes " + config.maxBatchBytes());
            }
            RecordBatch.Check check = src.check(pos, available, strictCount, crc);
            switch (check) {
                case OK -> {
                }
                case BAD_COUNT -> throw new LogException(LogException.Kind.INVALID_RECORD, "batch " + count
                    + ": recordsCount " + src.getInt(pos + RecordBatch.RECORDS_COUNT) + " != lastOffsetDelta + 1 ("
                    + (src.getInt(pos + RecordBatch.LAST_OFFSET_DELTA) + 1L) + ")");
                case BAD_CRC -> throw new LogException(LogException.Kind.CORRUPT_MESSAGE, "batch " + count
                    + ": CRC-32C mismatch");
                default -> throw new LogException(LogException.Kind.CORRUPT_MESSAGE, "batch " + count + ": "
                    + check + " (" + available + " bytes left, batchLength "
                    + (available >= 12 ? src.getInt(pos + RecordBatch.BATCH_LENGTH) : -1) + ")");
            }
            span += src.getInt(pos + RecordBatch.LAST_OFFSET_DELTA) + 1L;
            pos += size;
            count++;
        }
        validatedSpan = span;
        if (count == 0) {
            throw new LogException(LogException.Kind.CORRUPT_MESSAGE, "no record batch in an append of " + length
                + " bytes");
        }
        return count;
    }

    /** The shard's stock of zeroed segment files, when this log may use one (it fallocates), or null. */
    private ZeroedSegments zeroedStock() {
        return config.fallocateStepBytes() > 0 ? zeroedStock : null;
    }

    /**
     * The rate {@code seg} filled at (bytes a second) if that makes the log busy by the stock's
     * {@link ZeroedSegments.Policy} (a zeroed segment's log stays busy on its size and rate alone: its cheaper
     * fdatasyncs are in flight less); else 0, also when there is no stock.
     */
    private long busyRate(Segment seg) {
        ZeroedSegments stock = zeroedStock();
        if (stock == null || seg.appender == null || seg.size < stock.policy().busySegmentBytes()) {
            return 0;
        }
        ZeroedSegments.Policy policy = stock.policy();
        long ms = Math.max(1, clock.currentTimeMillis() - seg.createdMs);
        long rate = seg.size * 1000 / ms;
        if (rate < policy.busyRate()) {
            return 0;
        }
        double share = seg.appender.syncBusyNs() / 1e6 / ms;
        if (!seg.busyReported) {
            seg.busyReported = true;
            LOG.log(System.Logger.Level.DEBUG, "log " + seg.path + " reached " + (seg.size >> 20) + " MiB at "
                + (rate >> 20) + " MiB/s, an fdatasync in flight " + Math.round(share * 100) + "% of the time");
        }
        if (!seg.zeroed && share < policy.busySyncShare()) {
            return 0;
        }
        return Math.max(1, rate);
    }

    /** Whether the shard's stock has a zeroed file for this log's segments now (asking starts the stock). */
    private boolean zeroedSegmentReady() {
        ZeroedSegments stock = zeroedStock();
        return stock != null && stock.readyFor(config.segmentBytes());
    }

    /** Segments of this log that started as zeroed files (see {@link ZeroedSegments}). */
    public long zeroedSegmentsTaken() {
        return zeroedSegmentsTaken;
    }

    /**
     * Whether the next append of {@code length} bytes covering {@code span} offsets goes to a new segment: past
     * segment.bytes or segment.ms, where the batch's offsets would not fit the active segment's relative offsets,
     * or when a busy log's zeroed file is ready.
     */
    private boolean shouldRoll(Segment seg, long length, long span) {
        if (seg.zeroed && zeroedStock != null) {
            zeroedStock.busyLogWrote(); // its stock refills while it writes
        }
        if (seg.isEmpty()) {
            return false;
        }
        return seg.size + length > config.segmentBytes()
            || (!seg.zeroed && busyRate(seg) > 0 && zeroedSegmentReady())
            || clock.currentTimeMillis() - seg.createdMs >= config.segmentMs()
            || nextOffset - seg.baseOffset > MAX_SEGMENT_SPAN - span;
    }

    private void pushPending(Segment seg, long end, long next) {
        if (pendingTail - pendingHead == pendingSegment.length) {
            int n = pendingSegment.length;
            Segment[] s = new Segment[n * 2];
            long[] e = new long[n * 2];
            long[] x = new long[n * 2];
            for (int i = 0; i < n; i++) {
                int from = (pendingHead + i) & (n - 1);
                s[i] = pendingSegment[from];
                e[i] = pendingEnd[from];
                x[i] = pendingNext[from];
            }
            pendingSegment = s;
            pendingEnd = e;
            pendingNext = x;
            pendingTail = n;
            pendingHead = 0;
        }
        int i = pendingTail & (pendingSegment.length - 1);
        // Appends between two flushes share one entry (only the last end matters). A flush closes the entry:
        // durability is reported per flush, so appends arriving after it never hold back what it made durable.
        if (pendingOpen && pendingTail > pendingHead) {
            int prev = (pendingTail - 1) & (pendingSegment.length - 1);
            if (pendingSegment[prev] == seg) {
                pendingEnd[prev] = end;
                pendingNext[prev] = next;
                return;
            }
        }
        pendingSegment[i] = seg;
        pendingEnd[i] = end;
        pendingNext[i] = next;
        pendingTail++;
        pendingOpen = true;
    }

    /**
     * Asks for everything appended so far to become durable: writes the partly filled tails and runs one
     * fdatasync per segment once those writes complete. Many calls share one fdatasync (flush debouncing);
     * a {@link LogManager} calls this once per loop turn for every log with new appends.
     */
    public void flush() {
        pendingOpen = false;
        Segment flushed = null;
        for (int i = pendingHead; i < pendingTail; i++) {
            Segment s = pendingSegment[i & (pendingSegment.length - 1)];
            if (s != flushed && s.appender != null) { // entries of one segment are consecutive: one flush each
                s.appender.flush();
                flushed = s;
            }
        }
    }

    /** Whether appends are waiting to become durable. */
    public boolean hasUnflushed() {
        return pendingTail != pendingHead;
    }

    void onSegmentDurable(Segment seg, long durablePosition) {
        if (cutUnsynced) {
            maybeFinishSeal();
            return; // reported once the cut is durable (cutSynced)
        }
        long before = durableNext;
        while (pendingHead != pendingTail) {
            int i = pendingHead & (pendingSegment.length - 1);
            Segment s = pendingSegment[i];
            long durable = s.appender == null ? Long.MAX_VALUE : s.appender.durable();
            if (durable < pendingEnd[i]) {
                break;
            }
            durableNext = Math.max(durableNext, pendingNext[i]);
            pendingSegment[i] = null;
            pendingHead++;
        }
        if (durableNext > before) {
            listener.onDurable(durableNext);
        }
        maybeFinishSeal();
        if (durableNext > before) {
            maybeRecordRecoveryPoint(); // after the seal it may have finished: the previous segment must be sealed
        }
    }

    /**
     * Records a {@link RecoveryPoint} in the background once the active segment made
     * {@link #recoveryPointEveryBytes} more bytes durable, when every earlier segment is sealed (so durable in full):
     * the index entries are copied here, on the log's thread; the file is written by the file-task thread.
     */
    private void maybeRecordRecoveryPoint() {
        if (cutUnsynced || failed || closed || segments.isEmpty()) {
            return;
        }
        Segment s = active();
        if (s.appender == null) {
            return;
        }
        long durable = s.appender.durable();
        long from = s == recoveryPointSegment ? recoveryPointPosition : 0;
        if (durable - from < recoveryPointEveryBytes) {
            return;
        }
        if (segments.size() > 1 && segments.get(segments.size() - 2).appender != null) {
            return; // the previous segment is still sealing: not all of it is durable yet
        }
        byte[] bytes = RecoveryPoint.encode(s.index, durable);
        if (bytes == null) {
            return;
        }
        recoveryPointSegment = s;
        recoveryPointPosition = durable;
        Path target = dir.resolve(RecoveryPoint.FILE);
        fs.submitBackground(dir, "record the recovery point of " + s.path.getFileName(),
            () -> fs.writeAtomically(target, bytes));
    }

    void onStorageFailure(Segment seg, String what, int errno) {
        if (what.startsWith("fallocate")) {
            LOG.log(System.Logger.Level.WARNING, "log " + dir + ": " + what + ": " + Errno.describe(errno));
            return;
        }
        if (!failed) {
            failed = true;
            writePool.cancel(memoryWaiter);
            LOG.log(System.Logger.Level.ERROR, "log " + dir + " failed: " + what);
            listener.onFailure(what);
        }
    }

    /** The write pool reserved chunks for this log's refused append: the owner retries it now. */
    private void onChunksReserved() {
        if (closed || failed) {
            writePool.cancel(memoryWaiter);
            return;
        }
        listener.onSpaceAvailable();
    }

    /** Whether this log waits for write-behind memory (an append was refused and not retried with success yet). */
    public boolean waitingForMemory() {
        return memoryWaiter.waiting();
    }

    /** A segment's appender has nothing in flight: finish seals, and wake a waiting truncation or close. */
    void onSegmentIdle(Segment seg) {
        maybeFinishSeal();
        Runnable w = idleWaiter;
        if (w != null && quiescent()) {
            idleWaiter = null;
            w.run();
        }
    }

    /** Runs {@code r} once no write is in flight (now, or from the completion that makes it so). */
    void whenQuiescent(Runnable r) {
        if (quiescent()) {
            r.run();
        } else {
            Verify.that(idleWaiter == null, "two operations waiting for a quiescent log");
            idleWaiter = r;
        }
    }

    /** A read of {@code seg}'s file is about to be issued: the file stays open until {@link #readDone}. */
    void readStarted(Segment seg) {
        seg.readers++;
        readsInFlight++;
    }

    /** A read finished with {@code seg}: close its file if it was deleted meanwhile; wake a waiting truncation or close. */
    void readDone(Segment seg) {
        seg.readers--;
        readsInFlight--;
        Verify.that(seg.readers >= 0 && readsInFlight >= 0, "read count below zero: %d, %d", seg.readers, readsInFlight);
        if (seg.deleted && seg.readers == 0) {
            seg.file.close();
        }
        Runnable w = idleWaiter;
        if (w != null && quiescent()) {
            idleWaiter = null;
            w.run();
        }
    }

    // ------------------------------------------------------------------------------------------ segments

    /** Starts a new segment at {@link #logEndOffset()}; the previous one is sealed in the background. */
    public void roll() {
        checkWritable();
        Segment old = active();
        if (old.isEmpty()) {
            return;
        }
        old.sealing = true;
        sealsPending++;
        old.appender.flush();
        segments.add(createSegment(nextOffset, busyRate(old)));
        maybeFinishSeal();
    }

    /** Measures this log's fdatasyncs into {@code s} (a LogManager shares one per shard). */
    public void stats(DiskStats s) {
        this.stats = s;
        for (Segment seg : segments) {
            if (seg.appender != null) {
                seg.appender.stats(s);
            }
        }
    }

    DiskStats stats() {
        return stats;
    }

    /**
     * A new, empty segment at {@code baseOffset}. When it follows an active segment (a roll), its file is
     * preallocated with the fallocate step that segment's writer reached (a busy log's new segment starts with a
     * large step, allocated before any write). A log's first segment allocates nothing until its first write: a
     * partition that is created and never written (a client can create thousands) takes no disk space.
     */
    Segment createSegment(long baseOffset) {
        return createSegment(baseOffset, 0);
    }

    /**
     * {@link #createSegment(long)}; for a busy log (its previous segment filled at {@code busyRate} bytes a second;
     * 0: not busy; see {@link ZeroedSegments}) the file is a zeroed one from the shard's stock when one is ready.
     */
    Segment createSegment(long baseOffset, long busyRate) {
        Path p = dir.resolve(Segment.fileName(baseOffset, LOG_SUFFIX));
        ZeroedSegments stock = busyRate > 0 ? zeroedStock() : null;
        boolean zeroed = stock != null && stock.take(p, config.segmentBytes(), busyRate);
        DmaFile file = engine.openDmaFile(p, !zeroed);
        Segment s = new Segment(this, baseOffset, p, file, new SegmentIndex(baseOffset, config.indexIntervalBytes()));
        s.zeroed = zeroed;
        s.appender = new SegmentAppender(file, writePool, s, 0, MemorySegment.NULL, file.size(),
            config.fallocateStepBytes(), config.segmentBytes(), clock);
        s.appender.stats(stats);
        if (zeroed) {
            zeroedSegmentsTaken++;
        }
        // The file's name is new (created, or renamed in from the stock): no fdatasync of the file makes it durable,
        // only a sync of the directory, so the segment reports nothing durable before that completes (a power loss
        // could otherwise take the file and its acknowledged records with it).
        s.appender.holdDurableUntilSynced(engine, dir);
        Segment previous = segments.isEmpty() ? null : active();
        if (previous != null) {
            s.appender.preallocate(previous.appender != null ? previous.appender.fallocateStepBytes() : 0);
        }
        return s;
    }

    /**
     * Completes seals whose last writes and fdatasync finished: drops the tail chunk, then trims the file's
     * preallocated space and writes its indexes in the background ({@link FileOps#submitBackground}: an index write's
     * fdatasyncs and a truncate on a busy journal take milliseconds the shard loop must not wait for).
     */
    private void maybeFinishSeal() {
        if (sealsPending == 0) {
            return; // the common case, on every durability report: no walk over the segments
        }
        for (int i = 0; i < segments.size() - 1; i++) {
            Segment s = segments.get(i);
            if (s.sealing && s.appender != null && s.appender.inFlight() == 0 && s.appender.durable() >= s.size) {
                s.appender.releaseTail();
                s.appender = null;
                s.sealing = false;
                sealsPending--;
                long size = s.size;
                Path path = s.path;
                fs.submitBackground(dir, "trim and index the sealed segment " + path.getFileName(), () -> {
                    fs.truncate(path, size);
                    writeIndexFiles(fs, s);
                });
                // Its tail chunk (if it still had one) went back to the pool, which tells waiting logs at the end
                // of the completion that got here (ChunkPool.wakeIfPending).
            }
        }
    }

    /**
     * Writes a sealed segment's indexes in Kafka's format now, on the calling thread (close, open: a rebuild
     * covers a crash here). A distrusted index is not written: the next open rebuilds it.
     */
    void writeIndexes(Segment s) {
        try {
            writeIndexFiles(fs, s);
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "could not write indexes of " + s.path + " (rebuilt on next open): "
                + e.getMessage());
        }
    }

    /** {@link #writeIndexes} in the background ({@link FileOps#submitBackground}), after the directory's queued tasks. */
    void writeIndexesLater(Segment s) {
        fs.submitBackground(dir, "write the indexes of " + s.path.getFileName(), () -> writeIndexFiles(fs, s));
    }

    /**
     * Writes both index files of {@code s}. Runs on the shard thread or the file-task thread: the index of a
     * sealed segment no longer changes unless a suffix truncation, which waits for queued tasks first, cuts it.
     */
    private static void writeIndexFiles(FileOps fs, Segment s) throws IOException {
        if (s.indexDistrusted) {
            return;
        }
        writeIndexFile(fs, s.indexPath(), s.index, false);
        writeIndexFile(fs, s.timeIndexPath(), s.index, true);
    }

    /** Serialises index entries through this per-thread buffer: sealing a segment allocates no index-sized array. */
    private static final ThreadLocal<java.nio.ByteBuffer> INDEX_SCRATCH =
        ThreadLocal.withInitial(() -> java.nio.ByteBuffer.allocate(60 * 1024));

    /** Writes a segment's offset (or time) index to {@code target} atomically (temporary file, fdatasync, rename). */
    private static void writeIndexFile(FileOps fs, Path target, SegmentIndex index, boolean time) throws IOException {
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
        java.nio.ByteBuffer buf = INDEX_SCRATCH.get();
        MemorySegment view = MemorySegment.ofBuffer(buf.clear());
        try (FileOps.Writer ch = fs.create(tmp)) {
            int total = time ? index.timeEntries() : index.offsetEntries();
            int entryBytes = time ? SegmentIndex.TIME_ENTRY_BYTES : SegmentIndex.OFFSET_ENTRY_BYTES;
            int perWrite = buf.capacity() / entryBytes;
            for (int from = 0; from < total; from += perWrite) {
                int n = Math.min(perWrite, total - from);
                if (time) {
                    index.writeTimeIndex(view, from, n);
                } else {
                    index.writeOffsetIndex(view, from, n);
                }
                buf.clear().limit(n * entryBytes);
                ch.write(buf);
            }
            ch.sync();
        }
        fs.move(tmp, target, true);
    }

    // ------------------------------------------------------------------------------------------ reads

    /**
     * Reads whole batches starting with the one that contains {@code fromOffset}: at least one batch if any
     * is readable, then more while the total stays within {@code maxBytes}, never a batch whose last offset
     * is at or past {@code boundExclusive} (the durable or committed end), and never across a segment end.
     */
    public void read(long fromOffset, long boundExclusive, int maxBytes, ReadHandler handler) {
        if (fromOffset < logStartOffset || fromOffset > nextOffset) {
            handler.onError(new LogException(LogException.Kind.OFFSET_OUT_OF_RANGE, "offset " + fromOffset
                + " is outside the log [" + logStartOffset + ", " + nextOffset + "]"));
            return;
        }
        long bound = Math.min(boundExclusive, nextOffset);
        Segment seg = segmentFor(fromOffset);
        if (fromOffset >= bound || seg == null) {
            handler.onRead(MemorySegment.NULL, fromOffset, fromOffset - 1);
            return;
        }
        int window = readPool.acquireUninitialized();
        if (window < 0) {
            handler.onError(new LogException(LogException.Kind.STORAGE_ERROR, "no read window free (read budget of "
                + readPool.capacity() + " windows in use)"));
            return;
        }
        new WindowRead(this, seg, window, fromOffset, bound, maxBytes, handler).start();
    }

    /**
     * Reads whole batches starting with the one that contains {@code fromOffset} as a zero-copy chain of the
     * shard's batch cache: at least one batch if any is readable, then more while the total stays within
     * {@code maxBytes}, never a batch whose last offset is at or past {@code boundExclusive} (the durable or
     * committed end the caller may expose). Unlike the {@link ReadHandler} form it may continue across segment
     * ends. A cache hit calls {@code handler} before this method returns; a miss reads the disk with direct
     * I/O straight into cache memory (an aligned read of the cache's read-ahead size) and calls it from the
     * completion. A reader that continues where its previous read ended has the following data read ahead.
     *
     * @throws IllegalStateException the log was opened without a {@link BatchCache}
     */
    public void read(long fromOffset, long boundExclusive, int maxBytes, ChainReadHandler handler) {
        if (cache == null) {
            throw new IllegalStateException("log " + dir + " has no batch cache: open it with a BatchCache (Log.open or"
                + " a LogManager made with one) to read chains");
        }
        if (closed) {
            handler.onError(new LogException(LogException.Kind.STORAGE_ERROR, "log " + dir + " is closed"));
            return;
        }
        if (fromOffset < logStartOffset || fromOffset > nextOffset) {
            handler.onError(new LogException(LogException.Kind.OFFSET_OUT_OF_RANGE, "offset " + fromOffset
                + " is outside the log [" + logStartOffset + ", " + nextOffset + "]"));
            return;
        }
        long bound = Math.min(boundExclusive, nextOffset);
        if (fromOffset >= bound) {
            handler.onRead(IoBuf.empty(cache.cache.arena, dev.isthmus.arena.Subsystem.BATCH_CACHE), fromOffset,
                fromOffset - 1);
            return;
        }
        cache.read(fromOffset, bound, maxBytes, handler);
    }

    /** The shard's batch cache this log uses, or null. */
    public BatchCache batchCache() {
        return cache == null ? null : cache.cache;
    }

    /** Receives the result of {@link #offsetForTimestamp}. */
    public interface TimestampHandler {
        /**
         * @param offset    the first offset whose record timestamp is >= the target, or -1 when every record
         *                  is older
         * @param timestamp that record's timestamp (the batch's max timestamp for a compressed batch), or -1
         */
        void onOffset(long offset, long timestamp);

        void onError(LogException error);
    }

    /**
     * Finds the earliest offset whose timestamp is at or after {@code timestamp} (ListOffsets by time): the time
     * index narrows the segment range, then batches are read until one has a max timestamp that reaches it,
     * and its records are walked (for a compressed batch, the batch's base offset is the answer).
     */
    public void offsetForTimestamp(long timestamp, long boundExclusive, TimestampHandler handler) {
        long start = logStartOffset;
        for (Segment s : segments) {
            if (s.maxTimestamp >= 0 && s.maxTimestamp < timestamp && s != active()) {
                start = Math.max(start, s.lastOffset + 1);
            } else {
                start = Math.max(start, s.index.lookupTimestamp(timestamp));
                break;
            }
        }
        new TimestampLookup(this, timestamp, Math.min(boundExclusive, nextOffset), handler).from(start);
    }

    /** The file-system calls this log's files go through (the engine's: the machine's, or the simulator's). */
    public dev.isthmus.uring.FileOps fileOps() {
        return fs;
    }

    /**
     * The base offset of the segment whose offsets include {@code offset} (the name of its files, such as its
     * {@link TransactionIndex}), or -1 when {@code offset} is below the first segment.
     */
    public long segmentBaseFor(long offset) {
        Segment s = segmentFor(offset);
        return s == null ? -1 : s.baseOffset;
    }

    /** The segment whose offsets include {@code offset}: the last one with baseOffset <= offset. */
    Segment segmentFor(long offset) {
        int lo = 0;
        int hi = segments.size() - 1;
        Segment found = null;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            Segment s = segments.get(mid);
            if (s.baseOffset <= offset) {
                found = s;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return found;
    }

    // ------------------------------------------------------------------------------------------ truncation

    /**
     * Removes whole segments below {@code offset} and makes it the log start (retention, DeleteRecords).
     * Records at and after it stay; the segment containing it is kept whole, with reads starting at
     * {@code offset}. Returns the new log start.
     */
    public long truncatePrefix(long offset) {
        if (offset <= logStartOffset) {
            return logStartOffset;
        }
        if (offset > nextOffset) {
            throw new LogException(LogException.Kind.OFFSET_OUT_OF_RANGE, "cannot move the log start to " + offset
                + " past the log end " + nextOffset);
        }
        logStartOffset = offset;
        writeLogStart();
        if (cache != null) {
            cache.truncatePrefix(logStartOffset);
        }
        while (segments.size() > 1 && segments.get(1).baseOffset <= offset && segments.get(0).appender == null) {
            deleteSegment(segments.remove(0), true);
        }
        return logStartOffset;
    }

    /**
     * Records the log start in the background (like Kafka's log-start-offset checkpoint, it is not made durable
     * before the call returns: after a crash that lost it, the log starts at its first segment again).
     */
    private void writeLogStart() {
        byte[] bytes = Long.toString(logStartOffset).getBytes(StandardCharsets.US_ASCII);
        fs.submitBackground(dir, "record the log start " + logStartOffset,
            () -> fs.writeAtomically(dir.resolve(LOG_START), bytes));
    }

    /**
     * Drops {@code s}: closes its file (unless a read still uses it) and deletes its files, now or, with
     * {@code later}, in the background after the directory's queued tasks (retention and DeleteRecords, whose
     * segments lie below the log start: no file of the same name is made again while the delete waits).
     */
    private void deleteSegment(Segment s, boolean later) {
        s.deleted = true;
        if (s.readers == 0) {
            s.file.close();
        }
        Path log = s.path;
        Path index = s.indexPath();
        Path timeIndex = s.timeIndexPath();
        Path txnIndex = TransactionIndex.path(dir, s.baseOffset);
        if (later) {
            fs.submitBackground(dir, "delete the segment " + log.getFileName(), () -> {
                fs.deleteIfExists(log);
                fs.deleteIfExists(index);
                fs.deleteIfExists(timeIndex);
                fs.deleteIfExists(txnIndex);
            });
            return;
        }
        try {
            fs.deleteIfExists(log);
            fs.deleteIfExists(index);
            fs.deleteIfExists(timeIndex);
            fs.deleteIfExists(txnIndex);
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "could not delete " + s.path + ": " + e.getMessage());
        }
    }

    /**
     * Removes every record at or after {@code offset}, which must be a batch boundary (Raft's suffix
     * truncation). Waits for writes in flight, then cuts the file; {@code done} runs when the log is ready
     * for appends again, with null or the error.
     */
    public void truncateSuffix(long offset, java.util.function.Consumer<RuntimeException> done) {
        checkWritable();
        if (offset >= nextOffset) {
            done.accept(null);
            return;
        }
        if (offset < logStartOffset) {
            done.accept(new LogException(LogException.Kind.OFFSET_OUT_OF_RANGE, "cannot truncate to " + offset
                + " below the log start " + logStartOffset));
            return;
        }
        truncating = true;
        new LogTruncation(this, offset, e -> {
            truncating = false;
            done.accept(e);
        }).start();
    }

    /**
     * Drops later segments and resets the active one to end at {@code position} / {@code nextOffset}. Waits for
     * the log's queued file tasks first (they may still write the indexes of the segments it cuts). Until
     * {@link #cutSynced()}, nothing appended from here is reported durable.
     *
     * @return whether later segments were deleted (their deletes are durable only with a sync of the directory)
     */
    boolean finishSuffixTruncation(Segment seg, long position, long newNext, MemorySegment tail) {
        fs.awaitBackground(dir);
        boolean deletedLater = false;
        while (segments.get(segments.size() - 1) != seg) {
            Segment later = segments.remove(segments.size() - 1);
            if (later.appender != null) {
                later.appender.releaseTail();
                later.appender = null;
            }
            deleteSegment(later, false);
            deletedLater = true;
        }
        if (seg.appender != null) {
            seg.appender.releaseTail();
        }
        seg.file.truncate(position);
        seg.size = position;
        seg.lastOffset = newNext - 1;
        seg.sealing = false;
        sealsPending = 0;
        for (Segment s : segments) {
            if (s.sealing) {
                sealsPending++;
            }
        }
        seg.index.truncateTo(position, newNext - 1);
        seg.appender = new SegmentAppender(seg.file, writePool, seg, position, tail, position,
            config.fallocateStepBytes(), config.segmentBytes(), clock);
        seg.appender.stats(stats);
        cutUnsynced = true;
        try {
            fs.deleteIfExists(seg.indexPath());
            fs.deleteIfExists(seg.timeIndexPath());
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "could not delete stale indexes of " + seg.path);
        }
        // The recovery point may lie past the cut, or name a dropped segment: it goes, and the cut's directory sync
        // makes that durable before anything appended after the cut is reported durable. (Queued writes of it were
        // awaited above; the next one is recorded from the cut log.)
        recoveryPointSegment = null;
        try {
            if (fs.deleteIfExists(dir.resolve(RecoveryPoint.FILE))) {
                deletedLater = true;
            }
        } catch (IOException e) {
            onStorageFailure(seg, "delete of " + dir.resolve(RecoveryPoint.FILE) + " before a suffix truncation: "
                + e.getMessage(), 5);
        }
        truncations++;
        cleanerCheckpoint = Math.min(cleanerCheckpoint, newNext);
        if (cache != null) {
            cache.truncateSuffix(newNext);
        }
        // Everything at or past the cut is gone, durable or not.
        pendingHead = pendingTail;
        java.util.Arrays.fill(pendingSegment, null);
        nextOffset = newNext;
        long before = durableNext;
        durableNext = Math.min(durableNext, newNext);
        if (seg.appender.durable() >= position) {
            durableNext = newNext;
        }
        if (durableNext != before) {
            listener.onDurable(durableNext);
        }
        return deletedLater;
    }

    /** The cut of the last suffix truncation is durable: report what became durable after it meanwhile. */
    void cutSynced() {
        cutUnsynced = false;
        onSegmentDurable(null, 0);
    }

    /** Whether no write, fdatasync or read of this log is in flight. */
    boolean quiescent() {
        if (readsInFlight > 0) {
            return false;
        }
        for (Segment s : segments) {
            if (s.appender != null && s.appender.inFlight() > 0) {
                return false;
            }
        }
        return true;
    }

    // ------------------------------------------------------------------------------------------ retention

    /**
     * Deletes the oldest sealed segments while the log exceeds retention.bytes or their newest record is
     * older than retention.ms. Returns the number of segments deleted.
     */
    public int enforceRetention(long nowMs) {
        int deleted = 0;
        while (segments.size() > 1) {
            Segment oldest = segments.get(0);
            if (oldest.appender != null) {
                break;
            }
            boolean bySize = config.retentionBytes() >= 0 && sizeBytes() - oldest.size >= config.retentionBytes();
            boolean byTime = config.retentionMs() >= 0 && oldest.maxTimestamp >= 0
                && nowMs - oldest.maxTimestamp > config.retentionMs();
            if (!bySize && !byTime) {
                break;
            }
            segments.remove(0);
            deleteSegment(oldest, true);
            logStartOffset = Math.max(logStartOffset, segments.get(0).baseOffset);
            deleted++;
        }
        if (deleted > 0) {
            writeLogStart();
            if (cache != null) {
                cache.truncatePrefix(logStartOffset);
            }
        }
        return deleted;
    }

    /**
     * Where {@link #enforceRetention} would start the log at {@code nowMs}, without changing anything: the base
     * offset of the oldest segment it would keep (whole segments, by retention.bytes and retention.ms, never the
     * active one), or {@link #logStartOffset()} when it would delete none. For an owner that moves the log start
     * itself (a Raft group replicates the truncation so every replica makes it).
     */
    public long retentionStartOffset(long nowMs) {
        long start = logStartOffset;
        long size = sizeBytes();
        for (int i = 0; i < segments.size() - 1; i++) {
            Segment oldest = segments.get(i);
            if (oldest.appender != null) {
                break;
            }
            boolean bySize = config.retentionBytes() >= 0 && size - oldest.size >= config.retentionBytes();
            boolean byTime = config.retentionMs() >= 0 && oldest.maxTimestamp >= 0
                && nowMs - oldest.maxTimestamp > config.retentionMs();
            if (!bySize && !byTime) {
                break;
            }
            size -= oldest.size;
            start = Math.max(start, segments.get(i + 1).baseOffset);
        }
        return start;
    }

    // ------------------------------------------------------------------------------------------ compaction

    /** Why the compaction of {@code group} can no longer be swapped in, or null when it can. */
    String staleGroup(List<Segment> group, int truncationsAtStart) {
        if (closed || failed) {
            return "the log " + (closed ? "closed" : "failed");
        }
        if (truncations != truncationsAtStart) {
            return "the log was truncated";
        }
        int at = segments.indexOf(group.get(0));
        if (at < 0) {
            return "its segments were deleted (retention or DeleteRecords)";
        }
        for (int i = 0; i < group.size(); i++) {
            Segment s = at + i < segments.size() - 1 ? segments.get(at + i) : null;
            if (s != group.get(i) || s.appender != null || s.deleted) {
                return "its segments changed";
            }
        }
        return null;
    }

    /**
     * Puts a compacted segment in place of {@code group} (a run of sealed segments): its file was fdatasynced and
     * renamed to {@code swapPath}. Deletes the old segments and indexes, renames the swap file to the first
     * segment's name, and writes the new indexes in the background (a crash anywhere in between is finished by
     * the next open). Waits for the log's queued file tasks first: a seal of the group's segments may still be
     * writing their files.
     */
    void installCompacted(List<Segment> group, Path swapPath, SegmentIndex index, long sizeBytes, long maxTimestamp)
        throws IOException {
        fs.awaitBackground(dir);
        Segment first = group.get(0);
        Segment last = group.get(group.size() - 1);
        int at = segments.indexOf(first);
        Verify.that(at >= 0, "compacted group is not in the log");
        long maxTs = maxTimestamp;
        for (Segment s : group) {
            maxTs = Math.max(maxTs, s.maxTimestamp);
            deleteSegment(s, false);
        }
        Path target = dir.resolve(Segment.fileName(first.baseOffset, LOG_SUFFIX));
        fs.move(swapPath, target, false);
        fs.syncDirectory(dir);
        DmaFile file = engine.openDmaFile(target, false);
        Segment s = new Segment(this, first.baseOffset, target, file, index);
        s.size = sizeBytes;
        s.lastOffset = last.lastOffset;
        s.maxTimestamp = maxTs;
        s.createdMs = last.createdMs;
        for (int i = 0; i < group.size(); i++) {
            segments.remove(at);
        }
        segments.add(at, s);
        writeIndexesLater(s);
        if (cache != null) {
            cache.invalidate(first.baseOffset, last.lastOffset);
        }
    }

    /** A compaction finished: everything below {@code checkpoint} is clean; a kept tombstone expires at {@code horizonMs}. */
    void compactionFinished(long checkpoint, long horizonMs) {
        cleanerCheckpoint = Math.max(cleanerCheckpoint, checkpoint);
        tombstoneHorizonMs = horizonMs;
        byte[] bytes = (cleanerCheckpoint + " " + tombstoneHorizonMs).getBytes(StandardCharsets.US_ASCII);
        // In the background; if it is lost, the next compaction redoes the work.
        fs.submitBackground(dir, "record the cleaner checkpoint",
            () -> fs.writeAtomically(dir.resolve(CLEANER_CHECKPOINT), bytes));
    }

    // ------------------------------------------------------------------------------------------ close

    /**
     * Flushes, waits for every write and fdatasync, trims the active segment to its data, writes indexes and
     * a clean-shutdown marker so the next open skips recovery. {@code done} runs on the engine thread.
     */
    public void close(Runnable done) {
        if (closed) {
            done.run();
            return;
        }
        if (compaction != null) {
            compaction.abort(new IllegalStateException("compaction of " + dir + " abandoned: the log is closing"));
        }
        flush();
        new LogCloser(this, done).start();
    }

    void finishClose() {
        writePool.cancel(memoryWaiter);
        // Seals, deletes and checkpoints still queued go first: the clean-shutdown marker comes last.
        fs.awaitBackground(dir);
        if (cache != null) {
            cache.clear();
        }
        for (Segment s : segments) {
            if (s.appender != null) {
                s.appender.releaseTail();
                s.appender = null;
                if (!failed) {
                    s.file.truncate(s.size);
                    writeIndexes(s);
                }
            }
            s.file.close();
        }
        if (!failed) {
            try {
                fs.writeAtomically(dir.resolve(CLEAN_SHUTDOWN), Long.toString(nextOffset).getBytes(StandardCharsets.US_ASCII));
            } catch (IOException e) {
                LOG.log(System.Logger.Level.WARNING, "could not write the clean-shutdown marker of " + dir);
            }
        }
        closed = true;
    }

    boolean isClosed() {
        return closed;
    }

    /** Lists segment base offsets in {@code dir} on the machine's file system, ascending (tests). */
    static long[] listSegments(Path dir) throws IOException {
        return listSegments(FileOps.JDK, dir);
    }

    /** Lists segment base offsets in {@code dir}, ascending. */
    static long[] listSegments(FileOps fs, Path dir) throws IOException {
        return fs.list(dir).stream().map(p -> p.getFileName().toString())
            .filter(n -> n.endsWith(LOG_SUFFIX) && n.length() == 20 + LOG_SUFFIX.length())
            .mapToLong(n -> Long.parseLong(n.substring(0, 20)))
            .sorted()
            .toArray();
    }

    @Override
    public String toString() {
        return "Log{" + dir + ", [" + logStartOffset + ", " + nextOffset + "), durable " + durableNext + ", "
            + segments.size() + " segments}";
    }
}
