package dev.isthmus.log;

import dev.isthmus.ffi.Errno;
import dev.isthmus.uring.CompletionHandler;
import dev.isthmus.uring.DmaFile;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.Verify;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * One shard's stock of segment files written full of zeros ahead of need, for its busy logs.
 *
 * <h2>Why</h2>
 * A log's segment grows into fallocated space, and fallocated blocks are <em>unwritten extents</em>: the first
 * write to each converts it, and the fdatasync after that write has to make the conversion durable too (a
 * journal commit on a journaled file system; on ext4 without a journal, as on the development VM, synchronous
 * writes of the inode and extent blocks) before it returns. Over blocks that were already written, an
 * fdatasync only flushes the device's cache. Measured on the development VM (ext4, 16 KiB writes, each
 * followed by fdatasync): 148 us per fdatasync into fallocated space, 63 us over written blocks; in the broker
 * every acknowledgement waits for one. So a log that writes in volume gets its next segment from this stock,
 * already written, and all of its fdatasyncs in that segment are the cheap kind.
 *
 * <h2>Which logs</h2>
 * A zeroed file is as large as a whole segment and stays allocated until the segment is sealed, so it goes
 * only to a log that proved busy ({@link Policy}: by default a segment that reached 64 MiB at 4 MiB/s or
 * faster, its fdatasyncs in flight 60% of the time or more), rolling away from that segment (a full one, or
 * one that became busy while a zeroed file was ready: {@link Log} rolls it early then).
 * Other logs keep growing their segments in fallocate steps and use no more disk than before. The zeros are
 * not free: they double the bytes the device writes for the log, and every fdatasync flushes them from the
 * device's cache too. On the development VM, a log taking 20,000 records/s (20 MB/s, an fdatasync in flight
 * ~45% of the time) gained nothing from zeroed segments and saw its p99 latency go from 27-36 ms to 80 ms (two
 * runs each); a log bound by its fdatasyncs (a producer at saturation; in flight ~70% of the time, the rest
 * is the round trip to the producer and back) reached 55-78k records/s in twenty runs with them, 53-70k in
 * eleven without.
 *
 * <h2>Making one</h2>
 * {@code zeroed-N.tmp} is created, fallocated to its full size, written with zeros, fdatasynced, and renamed
 * {@code zeroed-N.seg}. The stock is refilled as soon as a file is taken, at a paced rate: one
 * {@link #WRITE_BYTES} write at a time, no faster than 1.5 times the rate the taking log filled its previous
 * segment at (so the next file is ready before it is needed), at least {@link #MIN_RATE} and at most
 * {@link #MAX_RATE} bytes a second; the first file at {@link #INITIAL_RATE}. Pacing matters: every fdatasync of a log flushes the device's write cache, zeros included, and
 * zeros written as fast as the device takes them made the logs' fdatasyncs six times slower on the
 * development VM (0.09 to 0.54 ms on average) while a file was made. For the same reason a refill goes on only
 * while busy logs write ({@link #busyLogWrote}): once none has for {@link #QUIET_NS} it pauses, so a burst that
 * ended leaves no zeros running under the quieter logs that follow it. At start-up, {@code .tmp} files (cut short by a crash or a stop) are deleted and {@code .seg} files of
 * the configured size are kept: a restarted broker does not write them again.
 *
 * <h2>Taking one</h2>
 * {@link #take(Path, long)} renames a ready file into the log's directory under the new segment's name. The
 * rename is file-system metadata, which the segment's cheap fdatasyncs no longer write, so the log holds the
 * segment's durability until the directory is synced
 * ({@link SegmentAppender#holdDurableUntilSynced(IoEngine, Path)}).
 *
 * <p>Wired explicitly: one stock per shard ({@link #create}), handed to the shard's {@link LogManager}
 * ({@link LogManager#useZeroedSegments}), whose logs get it when they open. Owner: the engine's thread; every method
 * runs there.
 */
public final class ZeroedSegments implements CompletionHandler {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.log");

    /**
     * Which logs are busy: a segment that reached {@code busySegmentBytes} at {@code busyRate} bytes a second or
     * more (on average since its first append), with an fdatasync of it in flight {@code busySyncShare} of that
     * time or more: the log's throughput is bound by its fdatasyncs, which zeroed blocks make cheaper. A log that
     * syncs less often gains little, and the zeros its file costs the device are then a loss (see "Which logs").
     */
    public record Policy(long busySegmentBytes, long busyRate, double busySyncShare) {
        /** 64 MiB at 4 MiB/s or more, an fdatasync in flight 60% of the time or more. */
        public static final Policy DEFAULT = new Policy(64L << 20, 4L << 20, 0.6);

        public Policy {
            if (busySegmentBytes < 1 || busyRate < 0 || busySyncShare < 0 || busySyncShare > 1) {
                throw new IllegalArgumentException("bad zeroed-segment policy: " + busySegmentBytes + " bytes, "
                    + busyRate + " bytes/s, sync share " + busySyncShare);
            }
        }
    }

    private static final String READY_SUFFIX = ".seg";
    private static final String PARTIAL_SUFFIX = ".tmp";
    /** The size of each zero write. */
    public static final int WRITE_BYTES = 128 * 1024;
    /** Refill rate bounds, bytes per second; {@link #INITIAL_RATE} before a file was ever taken. */
    public static final long MIN_RATE = 4L << 20;
    public static final long MAX_RATE = 1L << 30;
    public static final long INITIAL_RATE = 256L << 20;
    /** A refill pauses once no busy log has written for this long (nanoseconds). */
    public static final long QUIET_NS = 200_000_000L;

    /** Runs a task on the engine's thread after a delay (the shard's timers). */
    @FunctionalInterface
    public interface Timer {
        void schedule(long delayNs, Runnable task);
    }

    private static final long TAG_FALLOCATE = 1;
    private static final long TAG_WRITE = 2;
    private static final long TAG_SYNC = 3;

    private final IoEngine engine;
    private final Path dir;
    private final int count;
    private final long fileBytes;
    private final MemorySegment zeros;
    private final Timer timer;
    private final Policy policy;
    private final Runnable resume = this::resume;
    /** Current refill rate (bytes per second) and when the next zero write may start. */
    private long rate = INITIAL_RATE;
    private long nextWriteNs;
    private boolean waiting;
    /** When a busy log last wrote or asked ({@link #busyLogWrote}); a refill waits while none has for {@link #QUIET_NS}. */
    private long lastBusyNs;
    /** A refill is paused until a busy log writes again. */
    private boolean pausedQuiet;
    private final ArrayDeque<Path> ready = new ArrayDeque<>();

    private DmaFile making;
    private Path makingPath;
    private long makingWritten;
    private boolean opInFlight;
    private long nextNumber;
    private boolean closed;
    /** Set when making a file failed: no more are made (the logs fall back to fallocated segments). */
    private String broken;
    private long filesMade;
    private long filesTaken;
    /** Set once a log on this engine proved busy: files are made from then on (none for a shard of quiet logs). */
    private boolean wanted;

    private ZeroedSegments(IoEngine engine, Path dir, int count, long fileBytes, MemorySegment zeros, Timer timer,
                           Policy policy) {
        this.engine = engine;
        this.policy = policy;
        this.timer = timer;
        this.dir = dir;
        this.count = count;
        this.fileBytes = fileBytes;
        this.zeros = zeros;
    }

    /**
     * Keeps {@code count} zeroed files of {@code fileBytes} in {@code dir} for the logs opened on {@code engine}.
     * Files are made once the first log asks for one ({@link #readyFor}), so a shard whose logs never write in
     * volume writes no zeros. Call on the engine's thread.
     *
     * @param zeros a buffer of zeros to write from, aligned for direct I/O (4096), a multiple of 4096 bytes
     *              long; owned by the caller, who keeps it until {@link #close()} and {@link #idle()}
     * @param timer the engine thread's timers, which pace the zero writes
     * @throws IOException the directory cannot be created or listed
     */
    public static ZeroedSegments create(IoEngine engine, Path dir, int count, long fileBytes, MemorySegment zeros,
                                        Timer timer) throws IOException {
        return create(engine, dir, count, fileBytes, zeros, timer, Policy.DEFAULT);
    }

    /** {@link #create(IoEngine, Path, int, long, MemorySegment, Timer)} with another idea of a busy log. */
    public static ZeroedSegments create(IoEngine engine, Path dir, int count, long fileBytes, MemorySegment zeros,
                                         Timer timer, Policy policy) throws IOException {
        if (count < 1 || fileBytes < (1 << 20) || fileBytes % 4096 != 0) {
            throw new IllegalArgumentException("zeroed segments: need at least 1 file of at least 1 MiB, a multiple"
                + " of 4096 bytes; got " + count + " of " + fileBytes);
        }
        if (zeros.byteSize() < 4096 || zeros.byteSize() % 4096 != 0 || zeros.address() % 4096 != 0) {
            throw new IllegalArgumentException("zeroed segments: the zero buffer must be 4096-aligned and a multiple of"
                + " 4096 bytes long, got " + zeros.byteSize() + " bytes at " + zeros.address());
        }
        engine.fileOps().createDirectories(dir);
        ZeroedSegments z = new ZeroedSegments(engine, dir, count, fileBytes, zeros, timer, policy);
        z.recover();
        return z;
    }

    private void recover() throws IOException {
        List<Path> files = new ArrayList<>(engine.fileOps().list(dir));
        for (Path p : files) {
            String name = p.getFileName().toString();
            if (name.startsWith("zeroed-") && (name.endsWith(READY_SUFFIX) || name.endsWith(PARTIAL_SUFFIX))) {
                String digits = name.substring("zeroed-".length(), name.length() - READY_SUFFIX.length());
                try {
                    nextNumber = Math.max(nextNumber, Long.parseLong(digits) + 1);
                } catch (NumberFormatException e) {
                    // not one of ours after all; numbering is unaffected
                }
                if (name.endsWith(READY_SUFFIX) && engine.fileOps().size(p) == fileBytes && ready.size() < count) {
                    ready.add(p);
                } else {
                    engine.fileOps().deleteIfExists(p);
                }
            }
        }
    }

    /** Which logs get zeroed files. */
    public Policy policy() {
        return policy;
    }

    /** The size of every zeroed file. */
    public long fileBytes() {
        return fileBytes;
    }

    /** Files ready to be taken. */
    public int ready() {
        return ready.size();
    }

    /** Files made since start-up. */
    public long filesMade() {
        return filesMade;
    }

    /** Files taken by logs since start-up. */
    public long filesTaken() {
        return filesTaken;
    }

    /** Whether a refill is paused until a busy log writes again ({@link #busyLogWrote}). */
    public boolean waitingForBusyLog() {
        return pausedQuiet;
    }

    /** Why making files stopped, or null. */
    public String broken() {
        return broken;
    }

    /** Whether no operation reading the zero buffer is in flight (the caller may free it once closed and idle). */
    public boolean idle() {
        return !opInFlight;
    }

    /** Whether {@link #take} would give a file to a segment of at most {@code maxSegmentBytes}. */
    public boolean available(long maxSegmentBytes) {
        return !closed && !ready.isEmpty() && fileBytes <= maxSegmentBytes;
    }

    /**
     * A busy log asks: {@link #available}, and from the first call on, the stock is kept full (making starts if
     * it has not).
     */
    public boolean readyFor(long maxSegmentBytes) {
        busyLogWrote();
        if (!wanted && !closed) {
            wanted = true;
            makeMore();
        }
        return available(maxSegmentBytes);
    }

    /**
     * A busy log (one asking for a zeroed file, or writing into one it took) appended. Refills go on only while
     * busy logs write: the zeros are for them, and every fdatasync on the device flushes the zeros written since
     * the last one, so a refill left running after the busy log went quiet (a burst that ended) slows every other
     * log's fdatasyncs for nothing (on the development VM, a 20k records/s log starting 5 s after a saturating
     * burst: p99.9 169-193 ms, against 49-101 ms without zeroed segments). The first file of the stock is made
     * without waiting. Engine thread; cheap enough to call on every append.
     */
    public void busyLogWrote() {
        lastBusyNs = engine.clock().nanoTime();
        if (pausedQuiet) {
            pausedQuiet = false;
            resume();
        }
    }

    /**
     * Renames a ready file to {@code target} (which must not exist) for a segment of at most
     * {@code maxSegmentBytes}, and starts making its replacement, paced by {@code logRate} (bytes a second the
     * taking log filled its previous segment at).
     *
     * @return whether a file was taken (false: none ready, too large, or the rename failed; the caller creates
     *         the segment as usual)
     */
    public boolean take(Path target, long maxSegmentBytes, long logRate) {
        if (!available(maxSegmentBytes) || engine.fileOps().exists(target)) {
            return false;
        }
        Path p = ready.poll();
        try {
            engine.fileOps().move(p, target, false);
        } catch (NoSuchFileException e) {
            LOG.log(System.Logger.Level.WARNING, "zeroed segment " + p + " vanished; making another");
            makeMore();
            return false;
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "could not move zeroed segment " + p + " to " + target + ": " + e);
            ready.addFirst(p);
            return false;
        }
        filesTaken++;
        rate = Math.max(MIN_RATE, Math.min(MAX_RATE, logRate / 2 * 3));
        lastBusyNs = engine.clock().nanoTime();
        wanted = true;
        makeMore();
        return true;
    }

    /** Stops making files (a file being made is deleted once its operation in flight completes). */
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (making != null && !opInFlight && !waiting) {
            abandon();
        }
    }

    private void makeMore() {
        if (!wanted || closed || broken != null || making != null || ready.size() >= count) {
            return;
        }
        Path p = dir.resolve("zeroed-" + nextNumber++ + PARTIAL_SUFFIX);
        try {
            making = engine.openDmaFile(p, true);
        } catch (RuntimeException e) {
            stop("cannot create " + p + ": " + e.getMessage());
            return;
        }
        makingPath = p;
        makingWritten = 0;
        if (making.alignment() > 4096 && zeros.byteSize() % making.alignment() != 0) {
            stop("the direct I/O alignment of " + p + " is " + making.alignment() + " bytes");
            return;
        }
        submit(making.allocate(0, fileBytes, false, this, TAG_FALLOCATE), "fallocate");
    }

    private void submit(long r, String what) {
        if (r < 0) {
            stop(what + " of " + makingPath + " could not be queued: " + Errno.describe((int) -r));
            return;
        }
        opInFlight = true;
    }

    private long writeLength() {
        return Math.min(Math.min(zeros.byteSize(), WRITE_BYTES), fileBytes - makingWritten);
    }

    private void writeNext() {
        long now = engine.clock().nanoTime();
        if (filesTaken > 0 && now - lastBusyNs > QUIET_NS) {
            pausedQuiet = true; // busyLogWrote resumes
            return;
        }
        if (now < nextWriteNs) {
            if (!waiting) {
                waiting = true;
                timer.schedule(nextWriteNs - now, resume);
            }
            return;
        }
        long len = writeLength();
        nextWriteNs = Math.max(nextWriteNs, now - 1_000_000L) + len * 1_000_000_000L / rate;
        submit(making.write(zeros, 0, len, makingWritten, this, TAG_WRITE), "write");
    }

    private void resume() {
        waiting = false;
        if (closed) {
            abandon();
        } else if (making != null && !opInFlight) {
            writeNext();
        }
    }

    @Override
    public void onComplete(int result, int flags, long attachment) {
        opInFlight = false;
        if (closed) {
            abandon();
            return;
        }
        if (result < 0) {
            String what = attachment == TAG_FALLOCATE ? "fallocate" : attachment == TAG_WRITE ? "write" : "fdatasync";
            stop(what + " of " + makingPath + " failed: " + Errno.describe(-result));
            return;
        }
        if (attachment == TAG_FALLOCATE) {
            writeNext();
        } else if (attachment == TAG_WRITE) {
            long expected = writeLength();
            if (result < expected) {
                stop("short write (" + result + " of " + expected + " bytes) to " + makingPath);
                return;
            }
            makingWritten += expected;
            if (makingWritten < fileBytes) {
                writeNext();
            } else {
                submit(making.datasync(this, TAG_SYNC), "fdatasync");
            }
        } else {
            Verify.that(attachment == TAG_SYNC, "unknown zeroed-segment operation %d", attachment);
            String name = makingPath.getFileName().toString();
            Path done = dir.resolve(name.substring(0, name.length() - PARTIAL_SUFFIX.length()) + READY_SUFFIX);
            making.close();
            making = null;
            try {
                engine.fileOps().move(makingPath, done, false);
            } catch (IOException e) {
                stop("cannot rename " + makingPath + " to " + done + ": " + e);
                return;
            }
            ready.add(done);
            filesMade++;
            makeMore();
        }
    }

    private void stop(String why) {
        broken = why;
        LOG.log(System.Logger.Level.WARNING, "zeroed segments stopped (new segments are fallocated as usual): " + why);
        abandon();
    }

    private void abandon() {
        if (making != null) {
            making.close();
            making = null;
            try {
                engine.fileOps().deleteIfExists(makingPath);
            } catch (IOException e) {
                LOG.log(System.Logger.Level.WARNING, "cannot delete " + makingPath + ": " + e);
            }
        }
    }
}
