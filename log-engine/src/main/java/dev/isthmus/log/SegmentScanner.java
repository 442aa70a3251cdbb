package dev.isthmus.log;

import dev.isthmus.uring.CompletionHandler;
import dev.isthmus.uring.DmaFile;
import dev.isthmus.uring.Verify;

import java.lang.foreign.MemorySegment;

/**
 * Walks the batches of a segment file from a position, reading it in aligned windows with direct I/O, and
 * validating each batch (lengths, magic, CRC-32C, offsets increasing). It stops at the end of the data or at
 * the first invalid byte, which is where recovery cuts the segment.
 *
 * <p>A batch larger than the window (plus one alignment unit) is read into a larger buffer when the scanner has
 * a way to get one ({@link #SegmentScanner(DmaFile, MemorySegment, java.util.function.LongFunction)}): a topic's
 * max.message.bytes may exceed the read windows, and may have been lowered after larger batches were written.
 * Without one, or when the memory cannot be had, the scan ends with {@link End#NO_MEMORY}, never with
 * {@link End#INVALID}: a batch too large for the memory at hand is not a reason to cut a segment.
 *
 * <p>Owner: the file's engine thread. One scan at a time per scanner.
 */
public final class SegmentScanner implements CompletionHandler {

    /** Receives the scan's batches and its end. */
    public interface Visitor {
        /**
         * A valid batch at file {@code position}; {@code batch} is a view valid only during the call.
         *
         * @return false to stop the scan here (it then ends with {@link End#STOPPED})
         */
        boolean onBatch(RecordBatch batch, long position);

        /**
         * The scan ended at {@code validEnd}, the end of the last valid batch visited.
         *
         * @param errno a read error (negative), or 0
         */
        void onEnd(long validEnd, End reason, int errno);
    }

    /** Why a scan ended. */
    public enum End {
        /** Reached {@code limit}, or zeros/empty space after the last batch (the normal end of a segment). */
        END_OF_DATA,
        /** A batch failed validation: torn write, corruption, or garbage. */
        INVALID,
        /** The visitor asked to stop. */
        STOPPED,
        /** A read failed. */
        READ_ERROR,
        /** A batch is larger than the window and no larger buffer could be had; nothing is wrong with the data. */
        NO_MEMORY
    }

    /** A larger buffer for one scan: aligned memory and how to give it back. */
    public interface LargeWindow {
        MemorySegment segment();

        void free();
    }

    private final DmaFile file;
    private final java.util.function.LongFunction<LargeWindow> larger;
    private final MemorySegment baseWindow;
    private MemorySegment window;
    private LargeWindow large;
    private final int alignment;
    private final RecordBatch batch = new RecordBatch();
    private Visitor visitor;
    private long limit;
    private long position;
    private long windowStart;
    private long windowBytes;
    private long lastOffset;
    private boolean strictCount;
    private long reads;

    /**
     * @param window aligned scratch memory; its size bounds the largest batch that can be scanned
     */
    public SegmentScanner(DmaFile file, MemorySegment window) {
        this(file, window, null);
    }

    /**
     * @param window aligned scratch memory for batches that fit it
     * @param larger gives an aligned buffer of at least the asked bytes for a larger batch, or null when short;
     *               null: batches larger than {@code window} end the scan with {@link End#NO_MEMORY}
     */
    public SegmentScanner(DmaFile file, MemorySegment window, java.util.function.LongFunction<LargeWindow> larger) {
        this.file = file;
        this.larger = larger;
        this.baseWindow = window;
        this.window = window;
        this.alignment = Math.max(4096, file.alignment());
        Verify.that(window.byteSize() % alignment == 0 && window.address() % alignment == 0, "scan window alignment");
    }

    /** Reads issued by the last scan (for tests and progress reports). */
    public long reads() {
        return reads;
    }

    /**
     * Scans from {@code start} (a batch boundary) to at most {@code limit} (the file size).
     *
     * @param previousLastOffset the last offset before {@code start}, or -1: offsets must increase past it
     */
    public void scan(long start, long limit, long previousLastOffset, Visitor visitor) {
        this.visitor = visitor;
        this.limit = limit;
        this.position = start;
        this.lastOffset = previousLastOffset;
        this.windowStart = -1;
        this.windowBytes = 0;
        this.reads = 0;
        this.strictCount = false;
        advance();
    }

    private void advance() {
        while (true) {
            if (position >= limit) {
                end(position, End.END_OF_DATA, 0);
                return;
            }
            long need = Math.min(RecordBatch.HEADER_BYTES, limit - position);
            if (!inWindow(position, need)) {
                refill();
                return;
            }
            batch.wrap(window, position - windowStart);
            if (need < RecordBatch.HEADER_BYTES) {
                endAtGarbage();
                return;
            }
            long size = (long) batch.batchLength() + RecordBatch.LOG_OVERHEAD;
            if (batch.batchLength() < RecordBatch.HEADER_BYTES - RecordBatch.LOG_OVERHEAD || position + size > limit) {
                endAtGarbage();
                return;
            }
            if (size + alignment > window.byteSize()) {
                LargeWindow next = larger == null ? null : larger.apply(roundUp(size + alignment));
                if (next == null) {
                    end(position, End.NO_MEMORY, 0);
                    return;
                }
                if (large != null) {
                    large.free();
                }
                large = next;
                window = next.segment();
                windowStart = -1;
                windowBytes = 0;
                refill();
                return;
            }
            if (!inWindow(position, size)) {
                refill();
                return;
            }
            RecordBatch.Check check = batch.check(size, strictCount);
            if (check != RecordBatch.Check.OK || batch.baseOffset() <= lastOffset) {
                end(position, End.INVALID, 0);
                return;
            }
            lastOffset = batch.lastOffset();
            if (!visitor.onBatch(batch, position)) {
                end(position + size, End.STOPPED, 0);
                return;
            }
            position += size;
        }
    }

    /** Zeros (preallocated, never written space) end a segment normally; anything else is invalid. */
    private void endAtGarbage() {
        long rel = position - windowStart;
        long avail = Math.min(windowBytes - rel, 64);
        boolean zeros = true;
        for (long i = 0; i < avail; i++) {
            if (window.get(java.lang.foreign.ValueLayout.JAVA_BYTE, rel + i) != 0) {
                zeros = false;
                break;
            }
        }
        end(position, zeros ? End.END_OF_DATA : End.INVALID, 0);
    }

    /** Ends the scan: a larger buffer taken for it goes back first, then the visitor hears why. */
    private void end(long validEnd, End reason, int errno) {
        if (large != null) {
            large.free();
            large = null;
            window = baseWindow;
        }
        visitor.onEnd(validEnd, reason, errno);
    }

    private boolean inWindow(long pos, long length) {
        return windowStart >= 0 && pos >= windowStart && pos + length <= windowStart + windowBytes;
    }

    private void refill() {
        long start = position - position % alignment;
        if (start == windowStart && windowBytes > 0) {
            // The window already starts here and still lacks the batch: the file ends inside it (torn write).
            end(position, End.INVALID, 0);
            return;
        }
        windowStart = start;
        long length = Math.min(window.byteSize(), roundUp(limit - windowStart));
        reads++;
        long r = file.read(window.asSlice(0, length), windowStart, this, 0);
        if (r < 0) {
            end(position, End.READ_ERROR, (int) r);
        }
    }

    private long roundUp(long n) {
        return (n + alignment - 1) / alignment * alignment;
    }

    @Override
    public void onComplete(int result, int flags, long attachment) {
        if (result < 0) {
            end(position, End.READ_ERROR, result);
            return;
        }
        windowBytes = result;
        if (!inWindow(position, 1)) {
            // The file is shorter than its recorded size: the data ends here.
            end(position, End.END_OF_DATA, 0);
            return;
        }
        advance();
    }
}
