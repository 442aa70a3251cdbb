package dev.isthmus.log;

import dev.isthmus.ffi.Errno;
import dev.isthmus.uring.Clock;
import dev.isthmus.uring.CompletionHandler;
import dev.isthmus.uring.DmaFile;
import dev.isthmus.uring.Verify;

import java.lang.foreign.MemorySegment;

/**
 * Appends bytes to one segment file with O_DIRECT, through aligned write-behind chunks.
 *
 * <pre>
 *  file:  | chunk k (full, written) | chunk k+1 (full, in flight) | chunk k+2 (tail, partly filled) |
 *                                                                   ^ filled        ^ aligned length
 *  written --------------------------^ (contiguous prefix of completed writes)
 *  durable ----------------^ (covered by a completed fdatasync)
 * </pre>
 *
 * <ul>
 * <li>Bytes are copied into the tail chunk; a full chunk is written at once, and several chunk writes are
 *     in flight together, completing in any order (technique 3).</li>
 * <li>{@link #flush()} writes the partly filled tail chunk, padded to the alignment with zeros; the tail is
 *     rewritten as it grows, from the aligned block holding the end of what an earlier write covered (never
 *     the whole chunk again: small durable appends would otherwise write up to a chunk each, many times their
 *     size). At most one write per chunk is in flight (two writes of the same range could land in either
 *     order), so a rewrite waits for the previous one.</li>
 * <li>{@link #written()} advances only over a contiguous prefix of completed writes; one fdatasync at a time
 *     covers everything written so far, however many appends and flushes asked for it (technique 6). The
 *     next one starts as soon as what was flushed before the previous one completed is written, never waiting
 *     for appends that keep arriving.</li>
 * <li>The file is grown ahead of the writer with fallocate, so steady state writes overwrite allocated space
 *     (technique 5). Steps adapt to the write rate: they start at {@code fallocateStepBytes} and double while
 *     a step lasts less than a second (up to {@link #MAX_FALLOCATE_STEP_BYTES} and the segment's size), and
 *     halve back while one lasts more than ten. A busy log thus fallocates a handful of times per segment:
 *     file systems drain the file's direct I/O in flight for every fallocate (ext4 and XFS wait for it), so
 *     each one is a bubble in the write pipeline.</li>
 * </ul>
 *
 * <h2>Memory</h2>
 * The chunks come from a pool shared by the shard's logs (see {@link ChunkPool}). Full chunks go back as soon as
 * their write completes. The tail chunk stays while it has bytes to write; once they are all written it is lent to
 * the pool ({@code markIdle}): the next append keeps filling it if no one took it meanwhile, and if another log
 * needed it, the pool took it back ({@link #giveBack}) and this appender kept only the bytes of the tail's last,
 * partial aligned block (less than the alignment; the next write of the tail rewrites that block), which its next
 * append copies into a new chunk. So an appender that is not writing holds no chunk: a shard may have many more
 * logs than chunks. A new appender over an existing tail (recovery, truncation) takes no chunk either until it
 * appends.
 *
 * <p>Owner: the shard thread of the file's engine. Not thread-safe.
 */
public final class SegmentAppender implements CompletionHandler, ChunkPool.IdleHolder {

    /** What the appender reports to its log. */
    public interface Listener {
        /** Everything before file position {@code durable} is on stable storage. */
        void onDurable(long durable);

        /** A write, fallocate or fdatasync failed; the segment accepts no more appends. */
        void onFailure(String what, int errno);

        /** Chunks were freed: an append that was refused for lack of memory may be retried. */
        void onSpaceAvailable();

        /** No write, fallocate or fdatasync is in flight any more. */
        default void onIdle() {
        }
    }

    // Completion attachments: | tag (2 bits, 62-63) | write: filled bytes (bits 24-55) | chunk id (bits 0-23) |
    // fallocate: length (bits 0-61).
    private static final long TAG_WRITE = 0L;
    private static final long TAG_SYNC = 1L << 62;
    private static final long TAG_FALLOCATE = 2L << 62;
    private static final long TAG_DIRECTORY_SYNC = 3L << 62;
    private static final long TAG_MASK = 3L << 62;
    private static final int CHUNK_ID_BITS = 24;
    private static final long LOW_MASK = (1L << 62) - 1;
    /** The largest adaptive fallocate step. */
    public static final long MAX_FALLOCATE_STEP_BYTES = 1L << 30;
    /** A step consumed faster than this doubles the next one. */
    private static final long FAST_STEP_NS = 1_000_000_000L;
    /** A step that lasted longer than this halves the next one. */
    private static final long SLOW_STEP_NS = 10_000_000_000L;
    /** A page of zeros to pad tail writes with (copied from, never written). */
    private static final MemorySegment ZEROS = java.lang.foreign.Arena.global().allocate(4096, 4096);

    private final DmaFile file;
    private final Clock clock;
    private final ChunkPool pool;
    private final Listener listener;
    private final BatchBytes.Contiguous contiguous = new BatchBytes.Contiguous();
    private final int chunkBytes;
    private final int alignment;
    private final long fallocateStepBytes;
    private final long maxBytes;
    /** The next fallocate's length (adaptive, at least fallocateStepBytes) and when the last one was issued. */
    private long stepBytes;
    private long lastFallocateNs;

    // Chunk table, indexed by chunk id (pool ids): file position, fill, write state.
    private final long[] chunkFilePos;
    private final int[] chunkFilled;
    private final boolean[] chunkInFlight;
    private final boolean[] chunkNeedsWrite;
    private final int[] chunkWriteLen;
    /** Where in its chunk the write in flight starts (the aligned block holding the end of the previous one). */
    private final int[] chunkWriteFrom;

    /** Bytes of each chunk covered by its last completed write (from the chunk's start). */
    private final int[] chunkCovered;
    /** Chunks acquired and not released: the tail and those with writes in flight. */
    private final int[] live;
    private int liveCount;

    private int tailChunk = -1;
    /** The tail chunk is lent to the pool (all its bytes written); using it again takes it back first. */
    private boolean tailIdle;
    /**
     * The bytes of the tail's last, partial aligned block while the tail has no chunk ({@code position} not at a
     * chunk boundary): [position rounded down to the alignment, position). Made on first use, reused after.
     */
    private MemorySegment parked;
    /** In {@link #append}: a completion delivered inside it (a submission reaping) must not lend the tail. */
    private boolean appending;
    private long position;
    private long written;
    private long durable;
    private long syncRequested;
    /** The flushed position the next fdatasync waits for (fixed once set: see {@link #maybeSync()}). */
    private long syncGoal;
    private long syncing = -1;
    private long allocatedEnd;
    private boolean fallocating;
    private boolean failed;
    private int inFlight;
    private DiskStats stats;
    private long syncStartNs;
    /** Time with an fdatasync of this file in flight, in total. */
    private long syncBusyNs;
    /** Durability is not reported until the directory entry of the file is durable (see {@link #holdDurableUntilSynced}). */
    private boolean durableHeld;
    private long heldDurable;

    /**
     * @param file               the segment file, open for direct I/O
     * @param startPosition      where appends continue (the validated end of the existing data)
     * @param existingTail       ends with the bytes [startPosition rounded down to the alignment, startPosition)
     *                           already in the file, which the first tail write rewrites (kept in a copy of at
     *                           most one block: no chunk is taken until the first append); may be empty when
     *                           startPosition is a multiple of the alignment
     * @param allocatedBytes     the file's current size (already allocated space)
     * @param fallocateStepBytes grow the file by this much ahead of the writer (a multiple of the alignment)
     * @param maxBytes           the segment's size limit (fallocate never goes past it)
     */
    public SegmentAppender(DmaFile file, ChunkPool pool, Listener listener, long startPosition,
                           MemorySegment existingTail, long allocatedBytes, long fallocateStepBytes, long maxBytes) {
        this(file, pool, listener, startPosition, existingTail, allocatedBytes, fallocateStepBytes, maxBytes,
            Clock.SYSTEM);
    }

    /**
     * As above, reading time (fallocate step pacing, fdatasync latencies) from {@code clock}: the engine's, so a
     * simulated engine's virtual time paces it.
     */
    public SegmentAppender(DmaFile file, ChunkPool pool, Listener listener, long startPosition,
                           MemorySegment existingTail, long allocatedBytes, long fallocateStepBytes, long maxBytes,
                           Clock clock) {
        this.file = file;
        this.clock = clock;
        this.pool = pool;
        this.listener = listener;
        this.chunkBytes = pool.chunkBytes();
        this.alignment = Math.max(4096, file.alignment());
        if (chunkBytes % alignment != 0) {
            throw new IllegalArgumentException("chunk size " + chunkBytes + " is not a multiple of the file's"
                + " direct I/O alignment " + alignment + " (" + file.path() + ")");
        }
        if (fallocateStepBytes % alignment != 0) {
            throw new IllegalArgumentException("fallocate step " + fallocateStepBytes + " is not a multiple of "
                + alignment);
        }
        int n = pool.capacity();
        if (n >= 1 << CHUNK_ID_BITS) {
            throw new IllegalArgumentException("a chunk pool of " + n + " chunks is more than an appender can address");
        }
        this.chunkFilePos = new long[n];
        this.chunkFilled = new int[n];
        this.chunkInFlight = new boolean[n];
        this.chunkNeedsWrite = new boolean[n];
        this.chunkWriteLen = new int[n];
        this.chunkWriteFrom = new int[n];
        this.chunkCovered = new int[n];
        this.live = new int[n];
        this.fallocateStepBytes = fallocateStepBytes;
        this.stepBytes = fallocateStepBytes;
        this.maxBytes = maxBytes;
        this.position = startPosition;
        this.written = startPosition;
        this.durable = startPosition;
        this.syncRequested = startPosition;
        this.syncGoal = startPosition;
        this.allocatedEnd = allocatedBytes;
        // Already in the file: only its last partial aligned block is written again, from a chunk taken at the first
        // append (a log that is opened and not written takes none).
        int partial = (int) (startPosition % alignment);
        Verify.that(existingTail.byteSize() >= partial, "existing tail: %d bytes given, %d needed",
            existingTail.byteSize(), partial);
        if (partial > 0) {
            park(existingTail, existingTail.byteSize() - partial, partial);
        }
    }

    /** Keeps {@code length} bytes of {@code src} from {@code offset} as the tail's partial aligned block. */
    private void park(MemorySegment src, long offset, int length) {
        if (parked == null) {
            parked = MemorySegment.ofArray(new byte[alignment]);
        }
        MemorySegment.copy(src, offset, parked, 0, length);
    }

    /**
     * Grows the file ahead of the first write, {@code stepBytes} (or the configured step, if larger) at once: a
     * new segment of a busy log starts with the step its predecessor had reached, and allocating before any
     * write is in flight costs the pipeline nothing.
     */
    public void preallocate(long stepBytes) {
        if (fallocateStepBytes == 0) {
            return;
        }
        long step = Math.max(fallocateStepBytes, Math.min(stepBytes, MAX_FALLOCATE_STEP_BYTES));
        this.stepBytes = step / alignment * alignment;
        ensureAllocated(position);
    }

    /** The adaptive fallocate step reached so far (what the next segment of the log may start with). */
    public long fallocateStepBytes() {
        return stepBytes;
    }

    /**
     * Reports no durability until an fsync of {@code dir} completes: for a file renamed into {@code dir} (a
     * {@linkplain ZeroedSegments zeroed segment}), whose fdatasyncs overwrite written blocks and so write no
     * file-system metadata, the rename included. Call before the first append. The directory
     * sync counts as an operation in flight (a seal or close waits for it).
     */
    public void holdDurableUntilSynced(dev.isthmus.uring.IoEngine engine, java.nio.file.Path dir) {
        Verify.that(position == durable && !durableHeld, "holdDurableUntilSynced after appends");
        long r = engine.syncDirectory(dir, this, TAG_DIRECTORY_SYNC);
        if (r < 0) {
            fail("fsync of the directory " + dir, (int) -r);
            return;
        }
        durableHeld = true;
        heldDurable = durable;
        inFlight++;
    }

    /** Nanoseconds this file had an fdatasync in flight, in total (completed ones). */
    public long syncBusyNs() {
        return syncBusyNs;
    }

    /** Where fdatasync latencies are recorded (null: not measured). */
    public void stats(DiskStats s) {
        this.stats = s;
    }

    /** The end of the bytes appended so far (the next append's file position). */
    public long position() {
        return position;
    }

    /** The end of the contiguous prefix of completed writes. */
    public long written() {
        return written;
    }

    /** The end of what a completed fdatasync covers. */
    public long durable() {
        return durableHeld ? heldDurable : durable;
    }

    public boolean failed() {
        return failed;
    }

    /** Writes and syncs in flight. */
    public int inFlight() {
        return inFlight;
    }

    public DmaFile file() {
        return file;
    }

    /** Whether {@code bytes} more can be appended now without waiting for memory (ignoring other waiters). */
    public boolean canAppend(long bytes) {
        return chunksToTake(bytes) <= pool.available();
    }

    /**
     * How many chunks an append of {@code bytes} takes out of the pool's {@linkplain ChunkPool#available()
     * available} ones: new chunks, plus the tail if it is lent to the pool and not full (using it again takes it
     * back). With no tail chunk, the parked partial block goes into the first new chunk.
     */
    public int chunksToTake(long bytes) {
        if (tailChunk < 0) {
            long startFill = position % chunkBytes;
            return (int) Math.min(Integer.MAX_VALUE, (startFill + bytes + chunkBytes - 1) / chunkBytes);
        }
        int filled = chunkFilled[tailChunk];
        long room = chunkBytes - filled;
        long need = bytes <= room ? 0 : (bytes - room + chunkBytes - 1) / chunkBytes;
        return (int) Math.min(Integer.MAX_VALUE, need + (tailIdle && filled < chunkBytes ? 1 : 0));
    }

    /**
     * Copies {@code length} bytes of {@code source} from {@code offset} to the end of the segment. Check
     * {@link #canAppend(long)} first: this fails if memory runs out midway.
     *
     * @return the file position the bytes start at
     */
    public long append(MemorySegment source, long offset, long length) {
        long start = append(contiguous.wrap(source), offset, length);
        contiguous.clear();
        return start;
    }

    /** {@link #append(MemorySegment, long, long)} from either form of append bytes (a chain is copied fragment by fragment). */
    long append(BatchBytes source, long offset, long length) {
        if (failed) {
            throw new IllegalStateException("segment " + file.path() + " failed; no more appends");
        }
        Verify.that(canAppend(length), "append of %d bytes without the chunks for it", length);
        pool.enter();
        appending = true;
        try {
            if (tailIdle) {
                pool.unmarkIdle(tailChunk);
                tailIdle = false;
            }
            long start = position;
            long done = 0;
            while (done < length) {
                if (tailChunk < 0 || chunkFilled[tailChunk] == chunkBytes) {
                    nextChunk();
                }
                int filled = chunkFilled[tailChunk];
                int n = (int) Math.min(length - done, chunkBytes - filled);
                source.copyTo(offset + done, pool.chunk(tailChunk), filled, n);
                chunkFilled[tailChunk] = filled + n;
                done += n;
                position += n;
                if (chunkFilled[tailChunk] == chunkBytes) {
                    dispatch(tailChunk);
                }
            }
            return start;
        } finally {
            appending = false;
            // A completion delivered inside (a submission that had to reap) may have left the tail written.
            maybeLendTail();
            pool.exit();
        }
    }

    private void nextChunk() {
        int old = tailChunk;
        if (old < 0) {
            long pos = position - position % chunkBytes;
            tailChunk = acquireChunk(pos);
            int fill = (int) (position - pos);
            if (fill > 0) {
                // The tail was taken back while idle: its last partial aligned block comes back from where it was kept.
                int blockStart = fill / alignment * alignment;
                if (fill > blockStart) {
                    MemorySegment.copy(parked, 0, pool.chunk(tailChunk), blockStart, fill - blockStart);
                }
                chunkFilled[tailChunk] = fill;
                chunkCovered[tailChunk] = fill; // in the file already
                chunkWriteLen[tailChunk] = fill;
            }
            return;
        }
        if (chunkCovered[old] == chunkBytes) {
            releaseChunk(old); // full and written: nothing refers to it any more (first: it may be the one we get)
        }
        tailChunk = acquireChunk(chunkFilePos[old] + chunkBytes);
    }

    /** Lends the tail chunk to the pool when all its bytes are written and nothing is in flight on it. */
    private void maybeLendTail() {
        int t = tailChunk;
        if (t >= 0 && !tailIdle && !appending && !failed && !chunkInFlight[t] && !chunkNeedsWrite[t]
            && chunkCovered[t] == chunkFilled[t]) {
            tailIdle = true;
            pool.markIdle(t, this);
        }
    }

    /**
     * The pool takes the idle tail back: keep the bytes of its last partial aligned block (what the next write of
     * the tail rewrites) and go on without a tail chunk.
     */
    @Override
    public void giveBack(int id) {
        Verify.that(id == tailChunk && tailIdle && !chunkInFlight[id] && chunkCovered[id] == chunkFilled[id],
            "chunk %d taken back is not the idle tail (chunk %d)", id, tailChunk);
        int fill = chunkFilled[id];
        Verify.that(chunkFilePos[id] + fill == position, "idle tail ends at %d, not at %d",
            chunkFilePos[id] + fill, position);
        if (fill < chunkBytes) {
            int blockStart = fill / alignment * alignment;
            if (fill > blockStart) {
                park(pool.chunk(id), blockStart, fill - blockStart);
            }
        }
        tailIdle = false;
        tailChunk = -1;
        for (int i = 0; i < liveCount; i++) {
            if (live[i] == id) {
                live[i] = live[--liveCount];
                break;
            }
        }
    }

    private int acquireChunk(long filePos) {
        // Not zeroed: every byte is either appended or zero-padded by dispatch() before it is written.
        int id = pool.acquireUninitialized();
        Verify.that(id >= 0, "chunk pool exhausted");
        chunkFilePos[id] = filePos;
        chunkFilled[id] = 0;
        chunkCovered[id] = 0;
        chunkNeedsWrite[id] = false;
        chunkInFlight[id] = false;
        chunkWriteLen[id] = 0;
        live[liveCount++] = id;
        return id;
    }

    private void releaseChunk(int id) {
        for (int i = 0; i < liveCount; i++) {
            if (live[i] == id) {
                live[i] = live[--liveCount];
                break;
            }
        }
        pool.release(id);
    }

    /** The first byte not covered by a completed write: the lowest uncovered byte of any live chunk. */
    private long computeWritten() {
        long w = position;
        for (int i = 0; i < liveCount; i++) {
            int c = live[i];
            if (chunkCovered[c] < chunkFilled[c]) {
                w = Math.min(w, chunkFilePos[c] + chunkCovered[c]);
            }
        }
        return w;
    }

    /**
     * Writes the partly filled tail (if it has unwritten bytes) and asks for an fdatasync covering everything
     * appended so far, once the writes before it complete. Many flushes share one fdatasync.
     */
    public void flush() {
        if (failed) {
            return;
        }
        pool.enter();
        try {
            if (tailChunk >= 0 && chunkFilled[tailChunk] > chunkWriteLen[tailChunk]) {
                dispatch(tailChunk);
            }
            syncRequested = Math.max(syncRequested, position);
            maybeSync();
        } finally {
            pool.exit();
        }
    }

    private void dispatch(int chunk) {
        if (chunkInFlight[chunk]) {
            chunkNeedsWrite[chunk] = true;
            return;
        }
        int filled = chunkFilled[chunk];
        int len = filled == chunkBytes ? chunkBytes : (filled + alignment - 1) / alignment * alignment;
        if (len > filled) {
            // Zeros after the data up to the alignment: recovery reads them as the end of the segment.
            for (int at = filled; at < len; at += ZEROS.byteSize()) {
                MemorySegment.copy(ZEROS, 0, pool.chunk(chunk), at, Math.min(ZEROS.byteSize(), len - at));
            }
        }
        // What completed writes covered is in the file: start at the aligned block holding its end.
        int from = chunkCovered[chunk] / alignment * alignment;
        long filePos = chunkFilePos[chunk];
        ensureAllocated(filePos + len);
        long r = file.write(pool.chunk(chunk), from, len - from, filePos + from, this,
            TAG_WRITE | ((long) filled << CHUNK_ID_BITS) | chunk);
        if (r < 0) {
            fail("write of " + (len - from) + " bytes at " + (filePos + from), (int) -r);
            return;
        }
        chunkWriteFrom[chunk] = from;
        chunkInFlight[chunk] = true;
        chunkNeedsWrite[chunk] = false;
        chunkWriteLen[chunk] = filled;
        inFlight++;
    }

    private void ensureAllocated(long end) {
        if (fallocating || fallocateStepBytes == 0 || allocatedEnd >= maxBytes) {
            return;
        }
        // Keep at least half a step allocated ahead of the writer.
        if (end + stepBytes / 2 <= allocatedEnd) {
            return;
        }
        long now = clock.nanoTime();
        if (lastFallocateNs != 0) {
            long lastedNs = now - lastFallocateNs;
            if (lastedNs < FAST_STEP_NS) {
                stepBytes = Math.min(stepBytes * 2, MAX_FALLOCATE_STEP_BYTES);
            } else if (lastedNs > SLOW_STEP_NS) {
                stepBytes = Math.max(stepBytes / 2 / alignment * alignment, fallocateStepBytes);
            }
        }
        lastFallocateNs = now;
        long length = Math.min(Math.max(stepBytes, end - allocatedEnd), maxBytes - allocatedEnd);
        length = (length + alignment - 1) / alignment * alignment;
        long r = file.allocate(allocatedEnd, length, false, this, TAG_FALLOCATE | (length & LOW_MASK));
        if (r >= 0) {
            fallocating = true;
            inFlight++;
        }
    }

    /**
     * Starts the fdatasync for the current goal once its writes completed: the goal is the end of what had been
     * flushed when the previous fdatasync completed (or at the first flush since), and it does not move while
     * appends and flushes go on, so a steady stream of appends cannot postpone durability forever. The
     * fdatasync covers everything written by the time it starts, so all flushes up to then share it.
     */
    private void maybeSync() {
        if (syncing >= 0 || failed) {
            return;
        }
        if (syncGoal <= durable) {
            if (syncRequested <= durable) {
                return;
            }
            syncGoal = syncRequested;
        }
        if (written < syncGoal) {
            return;
        }
        long r = file.datasync(this, TAG_SYNC);
        if (r < 0) {
            fail("fdatasync", (int) -r);
            return;
        }
        syncing = written;
        inFlight++;
        syncStartNs = clock.nanoTime();
    }

    @Override
    public void onComplete(int result, int flags, long attachment) {
        inFlight--;
        try {
            complete(result, attachment);
        } finally {
            if (inFlight == 0) {
                listener.onIdle();
            }
            // Chunks freed or lent by this completion (or a seal it finished) go to waiting logs now.
            pool.wakeIfPending();
        }
    }

    private void complete(int result, long attachment) {
        long tag = attachment & TAG_MASK;
        if (tag == TAG_SYNC) {
            long covered = syncing;
            syncing = -1;
            long tookNs = clock.nanoTime() - syncStartNs;
            syncBusyNs += tookNs;
            if (stats != null) {
                stats.recordSync(tookNs);
            }
            if (result < 0) {
                fail("fdatasync", -result);
                return;
            }
            durable = covered;
            if (!durableHeld) {
                listener.onDurable(durable);
            }
            maybeSync();
        } else if (tag == TAG_DIRECTORY_SYNC) {
            durableHeld = false;
            if (result < 0) {
                fail("fsync of the segment's directory", -result);
                return;
            }
            if (durable > heldDurable) {
                listener.onDurable(durable);
            }
        } else if (tag == TAG_FALLOCATE) {
            fallocating = false;
            if (result < 0) {
                // Not fatal: writes extend the file themselves, only slower. Stop trying.
                allocatedEnd = Long.MAX_VALUE;
                listener.onFailure("fallocate (continuing without preallocation)", -result);
            } else {
                allocatedEnd += attachment & LOW_MASK;
            }
        } else {
            onWriteComplete((int) (attachment & ((1L << CHUNK_ID_BITS) - 1)), (int) ((attachment >>> CHUNK_ID_BITS) & 0xFFFFFFFFL),
                result);
        }
    }

    private void onWriteComplete(int chunk, int coveredBytes, int result) {
        chunkInFlight[chunk] = false;
        if (result < 0) {
            fail("write at " + chunkFilePos[chunk], -result);
            return;
        }
        int expected = (coveredBytes + alignment - 1) / alignment * alignment - chunkWriteFrom[chunk];
        if (result < expected) {
            // Direct-I/O writes transfer everything or fail; a short one means the device or file system is in trouble.
            fail("short write (" + result + " of " + expected + " bytes) at " + chunkFilePos[chunk], Errno.EIO);
            return;
        }
        chunkCovered[chunk] = Math.max(chunkCovered[chunk], coveredBytes);
        long before = written;
        written = Math.max(written, computeWritten());
        boolean freed = false;
        if (chunkNeedsWrite[chunk]) {
            dispatch(chunk);
        } else if (chunk != tailChunk && chunkCovered[chunk] == chunkBytes) {
            releaseChunk(chunk);
            freed = true;
        } else if (chunk == tailChunk) {
            maybeLendTail();
        }
        if (written > before) {
            maybeSync();
        }
        if (freed) {
            listener.onSpaceAvailable();
        }
    }

    private void fail(String what, int errno) {
        if (!failed) {
            failed = true;
            listener.onFailure(what + " on " + file.path() + ": " + Errno.describe(errno), errno);
        }
    }

    /**
     * Releases the tail chunk after everything was written and synced (segment roll or close). The caller
     * truncates the file to {@link #position()} to drop preallocated space.
     */
    public void releaseTail() {
        Verify.that(inFlight == 0, "releaseTail with %d operations in flight", inFlight);
        if (tailChunk >= 0) {
            if (tailIdle) {
                pool.unmarkIdle(tailChunk);
                tailIdle = false;
            }
            releaseChunk(tailChunk);
            tailChunk = -1;
        }
    }

    /** Whether the appender holds a tail chunk now (false once it is taken back, or before the first append). */
    boolean holdsTail() {
        return tailChunk >= 0;
    }

    /** Whether the tail chunk is lent to the pool. */
    boolean tailLent() {
        return tailIdle;
    }
}
