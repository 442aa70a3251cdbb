package dev.isthmus.log;

import dev.isthmus.arena.ArenaExhaustedException;
import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.uring.CompletionHandler;
import dev.isthmus.uring.DmaFile;
import dev.isthmus.uring.Verify;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.function.LongFunction;

/**
 * The one reader of segment files: every path that reads batches back from a segment goes through it, whatever it
 * does with them: recovery and suffix truncation (validating every batch), compaction (one batch at a time within a
 * per-turn budget), copying reads for Raft catch-up ({@link WindowRead}) and batch-cache fills for fetches
 * ({@link CacheFill}). It holds what all of them need and what used to be written four times: aligned direct-I/O
 * reads of a file stretch, the walk from a batch boundary with its checks, batches crossing the end of what was
 * read, batches larger than the read memory, a file shorter than recorded, zeros of space never written, a sparse
 * index that points a read at the wrong place, and the segment's read count.
 *
 * <h2>Pull, one batch at a time</h2>
 * {@link #next()} never reads the disk: it answers {@link #BATCH} (whole in memory and checked: {@link #position()},
 * {@link #baseOffset()}, {@link #lastOffset()}, {@link #sizeBytes()}, and in window memory {@link #batch()}),
 * {@link #NEED_READ} (the bytes of the next batch are not in memory), or why the walk ends here. The owner decides
 * what to do with a batch ({@link #advance()} past it, or stop), and whether to read on: {@link #read()} issues the
 * read and answers {@link #WAIT}; the owner's {@code resume} runs from the completion. So a copying read stops when
 * the next batch crosses its window (it answers with what it has), a cache fill extends its memory only for the
 * batch its requester needs, compaction handles a few batches per loop turn, and recovery runs to the end.
 *
 * <h2>Checks</h2>
 * Every batch: a length at least a header's, not past the limit, magic 2, lastOffsetDelta not negative, base
 * offset above the previous batch's last (and at or above the segment's base: compaction may leave gaps, never
 * reorder). With {@code checkCrc} (recovery, truncation, compaction) also the record count and the CRC-32C.
 * Where the walk ends:
 * <pre>
 *   END        the limit (the recorded size, or the readable end of an active segment)
 *   ZEROS      zeros where the next batch would start: space fallocated and never written (a normal end for
 *              recovery, an invalid sealed segment for compaction)
 *   ENDS_EARLY the file ends at a batch boundary before the limit (shorter than recorded)
 *   INVALID    bytes that are not the batch that must follow: a torn write, corruption, garbage
 *   NO_MEMORY  a batch larger than the memory at hand, and no larger buffer could be had ({@link #failure()})
 *   ERROR      a read failed ({@link #errno()})
 * </pre>
 *
 * <h2>Memory</h2>
 * A <b>window</b> reader reads into caller memory (a read-pool window) and slides: a read starts at the aligned block
 * holding {@link #position()}; a batch longer than the window is read into a {@link LargeBuffer} of its size when
 * the reader was given a way to get one, freed when the walk ends. A <b>cache</b> reader reads into fresh
 * {@link Subsystem#BATCH_CACHE} fragments of the shard's arena (one read per fragment, all in flight at once) and
 * grows: a batch crossing the end is completed by reading exactly what it lacks, so the whole stretch can become a
 * cached range without a copy ({@link #takeChain()}). A first cache read shrinks (halving, down to
 * {@link #MIN_FILL_BYTES}) when the arena is short; a read that continues a batch must get what it asks.
 *
 * <h2>The index</h2>
 * Started at the sparse index's position for a target offset, the first batch must end before the target (the index
 * maps a batch's last offset to its start and the lookup picks an entry below). If it holds the target, or the bytes
 * there are not a batch header, the index is wrong: the segment distrusts it ({@link Segment#distrustIndex}) and the
 * walk starts again from position 0 ({@link #NEED_READ}).
 *
 * <h2>The segment's read count</h2>
 * Reads keep a segment's file open and the log from being cut under them ({@link Log#readStarted}): {@link Hold#NONE}
 * for recovery and truncation (they run while nothing else reads the log), {@link Hold#WHILE_READING} for compaction
 * (counted only while a read is in flight: it checks the log for changes before using what it read, and must not
 * hold a truncation back for a whole segment), {@link Hold#UNTIL_DONE} for reads that serve callers (from
 * {@link #start} to {@link #close()}: nothing is cut between the disk read and the answer).
 *
 * <p>Owner: the log's shard thread. One walk at a time; {@link #close()} (or the next {@link #start}) ends it.
 * Reusable: a reader is made once per recovery, truncation, compaction run or read, never per batch.
 */
final class SegmentReader implements CompletionHandler {
    /** {@link #next()} and {@link #read()} answers. */
    static final int BATCH = 0;
    static final int NEED_READ = 1;
    static final int WAIT = 2;
    static final int END = 3;
    static final int ZEROS = 4;
    static final int ENDS_EARLY = 5;
    static final int INVALID = 6;
    static final int NO_MEMORY = 7;
    static final int ERROR = 8;

    /** The smallest first read a cache reader shrinks to when memory is short. */
    static final int MIN_FILL_BYTES = 64 * 1024;
    /** Bytes looked at to tell never-written space from garbage. */
    private static final int ZERO_PROBE_BYTES = 64;

    /** How the reader counts itself as a reader of the segment (see the class comment). */
    enum Hold { NONE, WHILE_READING, UNTIL_DONE }

    private final boolean checkCrc;
    private final Hold hold;
    private final Runnable resume;
    // Window memory: the caller's window, a way to get a larger one, the larger one in use.
    private final MemorySegment baseWindow;
    private final LongFunction<LargeBuffer> larger;
    private MemorySegment window;
    private LargeBuffer large;
    // Cache memory: the arena, the size of a first read, the chain read so far.
    private final MemoryArena arena;
    private final long firstReadBytes;
    private IoBuf chain;
    // The view the walk reads through: over the window, or over the cache chain (only the one in use is made).
    private final BatchBytes.Contiguous contiguous;
    private final BatchBytes.Chained chained;
    private BatchBytes bytes;
    private final RecordBatch batch;

    // The walk.
    private Log log;
    private Segment seg;
    private DmaFile file;
    private long baseOffset;
    private int alignment;
    private long limit;
    private long walkStart;
    private long position;
    private long lastOffset;
    /** The index target the first batch must end before, or -1 when the walk did not start from the index. */
    private long indexTarget;
    private long needBytes;
    /** The last INVALID or ZEROS was a header that is no batch's (what a wrong index points at). */
    private boolean notABatch;
    private boolean holding;
    private int batchSize;

    // What is in memory: file bytes [bufStart, bufStart + bufBytes); eof when a read came back short.
    private long bufStart;
    private long bufBytes;
    /** End of what the reads into this memory asked for, and of what they returned. */
    private long askedEnd;
    private long validEnd;
    private boolean eof;
    private int pending;
    private int errno;
    private String failure;
    private long reads;
    // Per issued read: its file position and length (short reads end the data). A window reader issues one at a
    // time, a cache reader one per fragment.
    private long[] readPos;
    private long[] readLen;
    private int readCount;

    private SegmentReader(boolean checkCrc, Hold hold, Runnable resume, MemorySegment window,
                          LongFunction<LargeBuffer> larger, MemoryArena arena, long firstReadBytes) {
        this.checkCrc = checkCrc;
        this.hold = hold;
        this.resume = resume;
        this.baseWindow = window;
        this.window = window;
        this.larger = larger;
        this.arena = arena;
        this.firstReadBytes = firstReadBytes;
        this.contiguous = window != null ? new BatchBytes.Contiguous() : null;
        this.chained = window != null ? null : new BatchBytes.Chained();
        this.batch = window != null ? new RecordBatch() : null;
        this.readPos = new long[window != null ? 1 : 16];
        this.readLen = new long[readPos.length];
    }

    /**
     * A reader into {@code window} (aligned memory, a read-pool window).
     *
     * @param larger gives aligned memory of at least the asked bytes for a batch longer than the window, or null
     *               when short; null: such a batch ends the walk with {@link #NO_MEMORY}
     * @param resume runs on the shard thread when a read completes (null: the owner polls)
     */
    static SegmentReader windowed(MemorySegment window, boolean checkCrc, LongFunction<LargeBuffer> larger, Hold hold,
                                  Runnable resume) {
        Verify.that(window.byteSize() % 4096 == 0 && window.address() % 4096 == 0, "read window alignment");
        return new SegmentReader(checkCrc, hold, resume, window, larger, null, 0);
    }

    /** A reader into batch-cache memory of {@code arena}, first reads of {@code firstReadBytes}. */
    static SegmentReader cached(MemoryArena arena, long firstReadBytes, Hold hold, Runnable resume) {
        return new SegmentReader(false, hold, resume, null, null, arena, firstReadBytes);
    }

    /**
     * Starts a walk of {@code s} (of {@code log}) at {@code position}, a batch boundary, up to {@code limit}.
     *
     * @param indexTarget the offset {@code position} was looked up for in the segment's index (its first batch must
     *                    end before it), or -1
     */
    void start(Log log, Segment s, long position, long indexTarget, long limit) {
        begin(log, s, s.file, s.baseOffset, position, limit);
        this.indexTarget = position > 0 ? indexTarget : -1;
        if (hold == Hold.UNTIL_DONE) {
            log.readStarted(s);
            holding = true;
        }
    }

    /** Starts a walk of a bare file whose batches start at {@code baseOffset} (no log, no index; tools and tests). */
    void start(DmaFile f, long baseOffset, long position, long limit) {
        Verify.that(hold == Hold.NONE, "a bare file has no read count");
        begin(null, null, f, baseOffset, position, limit);
        this.indexTarget = -1;
    }

    private void begin(Log owner, Segment s, DmaFile f, long base, long position, long limit) {
        Verify.that(pending == 0, "segment reader restarted with a read in flight");
        close();
        this.log = owner;
        this.seg = s;
        this.file = f;
        this.baseOffset = base;
        this.alignment = Math.max(4096, f.alignment());
        this.limit = limit;
        this.walkStart = position;
        this.position = position;
        this.lastOffset = base - 1;
        this.errno = 0;
        this.failure = null;
        this.eof = false;
        this.bufStart = -1;
        this.bufBytes = 0;
        this.askedEnd = -1;
        this.reads = 0;
        this.readCount = 0;
        this.notABatch = false;
    }

    /** Ends the walk: gives back a larger buffer, an unclaimed cache chain and the segment's read count. */
    void close() {
        Verify.that(pending == 0, "segment reader closed with a read in flight");
        if (large != null) {
            large.free();
            large = null;
            window = baseWindow;
        }
        if (chain != null) {
            chain.release();
            chain = null;
        }
        if (holding) {
            holding = false;
            log.readDone(seg);
        }
        bufStart = -1;
        bufBytes = 0;
    }

    // ------------------------------------------------------------------------------------------ the walk

    /** The next batch ({@link #BATCH}), {@link #NEED_READ}, or why the walk ends at {@link #position()}. */
    int next() {
        if (pending > 0) {
            return WAIT;
        }
        if (errno != 0) {
            return ERROR;
        }
        int r = walk();
        if (indexTarget >= 0 && position == walkStart) {
            boolean wrong = r == BATCH ? lastOffset() >= indexTarget : (r == INVALID || r == ZEROS) && notABatch;
            if (wrong) {
                seg.distrustIndex(r == BATCH ? "the batch at position " + walkStart + " holds offset " + indexTarget
                    + " or later" : "position " + walkStart + " is not the start of a batch");
                restartFromZero();
                return NEED_READ;
            }
            if (r == BATCH) {
                indexTarget = -1;
            }
        }
        return r;
    }

    private int walk() {
        notABatch = false;
        if (position >= limit) {
            return END;
        }
        long avail = bufStart >= 0 && position >= bufStart ? bufStart + bufBytes - position : -1;
        long need = Math.min(RecordBatch.HEADER_BYTES, limit - position);
        if (avail < need) {
            if (avail >= 0 && eof) {
                return avail == 0 ? ENDS_EARLY : INVALID; // the file ends here, or inside a header
            }
            needBytes = need;
            return NEED_READ;
        }
        long rel = position - bufStart;
        if (need < RecordBatch.HEADER_BYTES) {
            return garbage(rel, avail);
        }
        int length = bytes.getInt(rel + RecordBatch.BATCH_LENGTH);
        if (length < RecordBatch.HEADER_BYTES - RecordBatch.LOG_OVERHEAD
            || bytes.getByte(rel + RecordBatch.MAGIC) != RecordBatch.CURRENT_MAGIC) {
            int g = garbage(rel, avail);
            notABatch = true;
            return g;
        }
        long size = (long) length + RecordBatch.LOG_OVERHEAD;
        if (position + size > limit) {
            return INVALID; // a length past the end: not a batch that was ever written whole
        }
        if (avail < size) {
            if (eof) {
                return INVALID; // the file ends inside the batch: a torn write
            }
            needBytes = size;
            return NEED_READ;
        }
        if (checkCrc) {
            if (bytes.check(rel, size, false) != RecordBatch.Check.OK) {
                notABatch = true;
                return INVALID;
            }
        } else if (bytes.getInt(rel + RecordBatch.LAST_OFFSET_DELTA) < 0) {
            return INVALID;
        }
        long base = bytes.getLong(rel + RecordBatch.BASE_OFFSET);
        if (base <= lastOffset || base < baseOffset) {
            return INVALID; // not the batch that must follow; offsets may jump forward (compaction), never back
        }
        batchSize = (int) size;
        if (window != null) {
            batch.wrap(window, rel);
        }
        return BATCH;
    }

    /** Bytes that are not a batch at {@code rel}: zeros (space never written) end the data; anything else is invalid. */
    private int garbage(long rel, long avail) {
        long n = Math.min(avail, ZERO_PROBE_BYTES);
        for (long i = 0; i < n; i++) {
            if (bytes.getByte(rel + i) != 0) {
                return INVALID;
            }
        }
        return ZEROS;
    }

    /** Moves past the current batch. */
    void advance() {
        lastOffset = lastOffset();
        position += batchSize;
    }

    /**
     * Walks again from where the walk started, over the memory read so far (a cache fill that read on walks its
     * whole stretch again, as the stretch becomes one cached range).
     */
    void rewind() {
        position = walkStart;
        lastOffset = baseOffset - 1;
    }

    /** A wrong index: the walk starts again at position 0 of the segment. */
    private void restartFromZero() {
        indexTarget = -1;
        walkStart = 0;
        position = 0;
        lastOffset = baseOffset - 1;
        if (chain != null) {
            chain.release();
            chain = null;
        }
        bufStart = -1;
        bufBytes = 0;
        eof = false;
        readCount = 0;
        needBytes = Math.min(RecordBatch.HEADER_BYTES, limit);
    }

    // ------------------------------------------------------------------------------------------ reading

    /**
     * Reads what {@link #next()} found missing ({@link #WAIT}: {@code resume} runs when it is in), or answers
     * {@link #NO_MEMORY} or {@link #ERROR} when the read cannot be issued.
     */
    int read() {
        Verify.that(pending == 0 && errno == 0, "segment read issued while one is in flight or failed");
        reads++;
        return arena != null ? readCached() : readWindow();
    }

    /** {@link #next()}, reading on when it needs to: BATCH, WAIT, or why the walk ends. */
    int nextOrRead() {
        int r = next();
        return r == NEED_READ ? read() : r;
    }

    private int readWindow() {
        long start = position - position % alignment;
        long want = position % alignment + needBytes;
        if (want > window.byteSize()) {
            LargeBuffer next = larger == null ? null : larger.apply(roundUp(want));
            if (next == null) {
                failure = "a batch of " + needBytes + " bytes at position " + position + " of " + file.path()
                    + " is larger than the " + baseWindow.byteSize() + "-byte read window"
                    + (larger == null ? "" : " and no larger buffer could be had");
                return NO_MEMORY;
            }
            if (large != null) {
                large.free();
            }
            large = next;
            window = next.segment();
        }
        bufStart = start;
        bufBytes = 0;
        eof = false;
        contiguous.wrap(window);
        bytes = contiguous;
        long length = Math.min(window.byteSize(), roundUp(limit - start));
        askedEnd = start + length;
        validEnd = askedEnd;
        readPos[0] = start;
        readLen[0] = length;
        readCount = 1;
        return issue(window.asSlice(0, length), start, 0);
    }

    private int readCached() {
        long filePos;
        long length;
        IoBuf part = null;
        boolean extend = chain != null && position >= bufStart && readToRequestedEnd();
        if (extend) {
            filePos = askedEnd;
            length = roundUp(position + needBytes - filePos);
            try {
                part = IoBuf.allocate(arena, Subsystem.BATCH_CACHE, length);
            } catch (ArenaExhaustedException e) {
                failure = "no batch cache memory to read " + length + " bytes of " + file.path().getFileName() + ": "
                    + e.getMessage();
                return NO_MEMORY;
            }
        } else {
            if (chain != null) {
                chain.release();
                chain = null;
            }
            filePos = position - position % alignment;
            length = roundUp(Math.min(firstReadBytes, limit - filePos));
            while (part == null) {
                try {
                    part = IoBuf.allocate(arena, Subsystem.BATCH_CACHE, length);
                } catch (ArenaExhaustedException e) {
                    long smaller = length / 2 / alignment * alignment;
                    if (smaller < MIN_FILL_BYTES) {
                        failure = "no batch cache memory to read " + length + " bytes of " + file.path().getFileName()
                            + ": " + e.getMessage();
                        return NO_MEMORY;
                    }
                    length = smaller;
                }
            }
            bufStart = filePos;
            bufBytes = 0;
            readCount = 0;
        }
        eof = false;
        long off = 0;
        int first = readCount;
        for (int i = 0; i < part.fragmentCount(); i++) {
            MemorySegment m = part.fragment(i);
            if (readCount == readPos.length) {
                readPos = Arrays.copyOf(readPos, readCount * 2);
                readLen = Arrays.copyOf(readLen, readCount * 2);
            }
            readPos[readCount] = filePos + off;
            readLen[readCount] = m.byteSize();
            readCount++;
            if (issue(m, filePos + off, readCount - 1) == ERROR) {
                break;
            }
            off += m.byteSize();
        }
        if (chain == null) {
            chain = part;
        } else {
            chain.append(part);
            part.release();
        }
        chained.wrap(chain);
        bytes = chained;
        askedEnd = filePos + length;
        validEnd = askedEnd;
        Verify.that(readCount > first, "a cache read issued no fragment read");
        if (pending == 0) {
            // Every read failed to be issued: the error stands (next() answers ERROR).
            return ERROR;
        }
        return WAIT;
    }

    private int issue(MemorySegment into, long filePos, long tag) {
        if (hold == Hold.WHILE_READING && pending == 0) {
            log.readStarted(seg);
            holding = true;
        }
        long r = file.read(into, filePos, this, tag);
        if (r < 0) {
            errno = (int) r;
            if (pending == 0 && hold == Hold.WHILE_READING) {
                holding = false;
                log.readDone(seg);
            }
            return ERROR;
        }
        pending++;
        return WAIT;
    }

    @Override
    public void onComplete(int result, int flags, long attachment) {
        pending--;
        int i = (int) attachment;
        if (result < 0) {
            errno = result;
        } else if (result < readLen[i]) {
            validEnd = Math.min(validEnd, readPos[i] + result); // the end of the file
        }
        if (pending > 0) {
            return;
        }
        bufBytes = Math.max(0, Math.min(validEnd, limit) - bufStart);
        eof = validEnd < Math.min(askedEnd, limit);
        if (hold == Hold.WHILE_READING) {
            holding = false;
            log.readDone(seg);
        }
        if (resume != null) {
            resume.run();
        }
    }

    private long roundUp(long n) {
        return (n + alignment - 1) / alignment * alignment;
    }

    // ------------------------------------------------------------------------------------------ what was read

    /** File position of the current batch (after {@link #BATCH}), or where the walk ended. */
    long position() {
        return position;
    }

    /** Where the walk started (0 after a wrong index restarted it). */
    long walkStart() {
        return walkStart;
    }

    long baseOffset() {
        return bytes.getLong(position - bufStart + RecordBatch.BASE_OFFSET);
    }

    long lastOffset() {
        return baseOffset() + bytes.getInt(position - bufStart + RecordBatch.LAST_OFFSET_DELTA);
    }

    int sizeBytes() {
        return batchSize;
    }

    /** The current batch over window memory (a window reader, after {@link #BATCH}, until {@link #advance()}). */
    RecordBatch batch() {
        Verify.that(batch != null, "a cache reader has no contiguous batch view");
        return batch;
    }

    /** {@code length} bytes of window memory at file position {@code from} (in memory now). */
    MemorySegment slice(long from, long length) {
        Verify.that(from >= bufStart && from + length <= bufStart + bufBytes, "slice outside the window");
        return window.asSlice(from - bufStart, length);
    }

    /** File position of the first byte of memory ({@link #takeChain()}'s position 0). */
    long bufferStart() {
        return bufStart;
    }

    /** Whether a read came back short (the file ends before what was asked). */
    boolean hitEnd() {
        return eof;
    }

    /** Whether the data read so far ends where it was asked to (no short read, no limit below it). */
    boolean readToRequestedEnd() {
        return !eof && bufStart >= 0 && bufStart + bufBytes == askedEnd;
    }

    /** The cache memory read so far, from {@link #bufferStart()}; the caller owns it (a cache reader). */
    IoBuf takeChain() {
        IoBuf c = chain;
        chain = null;
        bufStart = -1;
        bufBytes = 0;
        return c;
    }

    /** End of the file stretch the reads so far asked for (-1 before the first). */
    long askedEnd() {
        return askedEnd;
    }

    /** Whether a read is in flight (the reader must not be dropped before it completes). */
    boolean reading() {
        return pending > 0;
    }

    int errno() {
        return errno;
    }

    /** Why the walk ended with {@link #NO_MEMORY}. */
    String failure() {
        return failure;
    }

    /** Reads issued by this walk (tests, progress). */
    long reads() {
        return reads;
    }

    Segment segment() {
        return seg;
    }

    long limit() {
        return limit;
    }
}
