package dev.isthmus.log;

import dev.isthmus.ffi.Errno;
import dev.isthmus.uring.CompletionHandler;
import dev.isthmus.uring.DmaFile;
import dev.isthmus.uring.FileOps;
import dev.isthmus.uring.Verify;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;

/**
 * Opens a {@link Log}: lists its segments, loads their indexes, and after an unclean shutdown validates the
 * log's tail batch by batch, cutting at the first invalid byte and dropping anything after a cut. The tail is what
 * follows the log's {@link RecoveryPoint} when it lies in the last segment (the segment before is then durable and
 * only loaded), else the last two segments in full (a roll may have been under way). Segments whose index files are missing or damaged are rescanned to rebuild
 * them. Progress is logged every 256 MiB scanned.
 *
 * <p>Reads go through one of the shard's read windows, held from the first scan to the read of the tail's last
 * partial block. A shard opens many logs at once (a broker restarting with a thousand partitions a shard) and has a
 * few windows: a recovery that finds none waits in the read pool's line ({@link ChunkPool.Waiter}) and goes on
 * when one is released, instead of failing the open.
 *
 * <p>Owner: the log's thread.
 */
final class LogRecovery implements CompletionHandler {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.log");
    /** A progress line every this many bytes scanned (package access: tests lower it). */
    static long progressBytes = 256L << 20;

    private final Log log;
    private final Log.OpenHandler handler;
    /** The log's segments as recovery finds them; the log takes them when it is done ({@link Log#recovered}). */
    private final java.util.List<Segment> segments = new java.util.ArrayList<>();
    private final ArrayDeque<Segment> toScan = new ArrayDeque<>();
    /** Segments this recovery scanned: their bytes may be written and not durable (a killed process's). */
    private final java.util.List<Segment> scanned = new java.util.ArrayList<>();
    private int syncsLeft;
    private static final long TAG_SYNC = 1;
    private int windowId = -1;
    private MemorySegment window;
    /** Validates the scanned segments batch by batch (over the window, made once the window is held). */
    private SegmentReader reader;
    private Segment scanning;
    private long scannedBytes;
    private long nextProgress;
    private long totalBytes;
    private long startNs;
    private long cleanEnd = -1;
    /** The log's recovery point when it lies in the last segment (the scan of that segment starts there), else null. */
    private RecoveryPoint recoveryPoint;
    /** While the scan resumes at the recovery point: the last offset its first batch must have (else -1). */
    private long resumeExpect = -1;
    private long logStart;
    private long tailStart;
    /** This recovery's place in the read pool's line, and what to do once it has a window. */
    private final ChunkPool.Waiter windowWaiter = new ChunkPool.Waiter(this::onWindowReserved);
    private Runnable afterWindow;

    LogRecovery(Log log, Log.OpenHandler handler) {
        this.log = log;
        this.handler = handler;
    }

    void start() throws IOException {
        Path dir = log.dir();
        FileOps fs = log.fs();
        logStart = readLong(fs, dir.resolve(Log.LOG_START), 0);
        Path marker = dir.resolve(Log.CLEAN_SHUTDOWN);
        cleanEnd = readLong(fs, marker, -1);
        // From now on a crash is an unclean shutdown: the delete is made durable before anything is appended, or a
        // power loss could bring the marker back and the next open would trust its end over appended records.
        if (fs.deleteIfExists(marker)) {
            fs.syncDirectory(dir);
        }
        readCleanerCheckpoint(dir);
        finishCompactionSwaps(dir);
        RecoveryPoint point = cleanEnd < 0 ? RecoveryPoint.read(fs, dir) : null;
        long[] bases = Log.listSegments(fs, dir);
        for (int i = 0; i < bases.length; i++) {
            Path p = dir.resolve(Segment.fileName(bases[i], Log.LOG_SUFFIX));
            DmaFile file = log.engine().openDmaFile(p, false);
            Segment s = new Segment(log, bases[i], p, file, new SegmentIndex(bases[i], log.config().indexIntervalBytes()));
            s.size = file.size();
            s.createdMs = fs.lastModifiedMillis(p);
            segments.add(s);
        }
        // A recovery point in the last segment says the log is durable up to it: the segment before is then loaded
        // like any sealed one (scanned only when its index files are missing or damaged), and the last is scanned from
        // the point on.
        if (point != null && !segments.isEmpty() && point.baseOffset() == segments.get(segments.size() - 1).baseOffset
            && point.position() < segments.get(segments.size() - 1).size) {
            recoveryPoint = point;
        }
        for (int i = 0; i < segments.size(); i++) {
            Segment s = segments.get(i);
            boolean last = i == segments.size() - 1;
            boolean recoverTail = cleanEnd < 0 && (last || (i == segments.size() - 2 && recoveryPoint == null));
            if (i + 1 < segments.size()) {
                s.lastOffset = segments.get(i + 1).baseOffset - 1;
            } else if (cleanEnd >= 0) {
                s.lastOffset = cleanEnd - 1;
            }
            // An empty segment before the last holds no offsets at all, whatever the next one's name suggests: scanning
            // it (at no cost) lets the contiguity check see the hole if the next one does not start at its base (a
            // suffix truncation to its base whose new records were lost while later segments' writes survived).
            if (recoverTail || !loadIndexes(s) || (s.size == 0 && !last)) {
                s.index.truncateTo(0, s.baseOffset - 1);
                toScan.add(s);
            } else if (last && cleanEnd < 0) {
                toScan.add(s);
            }
        }
        if (!toScan.isEmpty()) {
            for (Segment s : toScan) {
                totalBytes += s.size;
            }
            if (recoveryPoint != null) {
                totalBytes -= recoveryPoint.position();
            }
            nextProgress = progressBytes;
            startNs = log.clock().nanoTime();
            LOG.log(System.Logger.Level.INFO, "log " + dir + ": " + (cleanEnd < 0 ? "unclean shutdown, validating "
                : "rebuilding indexes of ") + toScan.size() + " segment(s), " + (totalBytes >> 20) + " MiB"
                + (recoveryPoint != null ? " (from the recovery point at position " + recoveryPoint.position() + " of "
                + Segment.fileName(recoveryPoint.baseOffset(), Log.LOG_SUFFIX) + ")" : ""));
            withWindow(this::scanNext);
            return;
        }
        scanNext();
    }

    /** Runs {@code then} once this recovery holds a read window: now, or when one is released for it. */
    private void withWindow(Runnable then) {
        if (windowId >= 0) {
            then.run();
            return;
        }
        afterWindow = then;
        if (!log.readPool().admit(windowWaiter, 1)) {
            return; // onWindowReserved comes back here
        }
        windowId = log.readPool().acquireUninitialized();
        if (windowId < 0) {
            log.readPool().admit(windowWaiter, 1); // none left to take (reads took them): in line for the next
            return;
        }
        afterWindow = null;
        window = log.readPool().chunk(windowId);
        then.run();
    }

    private void onWindowReserved() {
        Runnable then = afterWindow;
        afterWindow = null;
        if (then != null) {
            withWindow(then);
        } else {
            log.readPool().cancel(windowWaiter);
        }
    }

    /** Gives the window back and lets the next recovery or truncation waiting for one go on. */
    private void releaseWindow() {
        log.readPool().cancel(windowWaiter);
        if (windowId >= 0) {
            log.readPool().release(windowId);
            windowId = -1;
        }
        log.readPool().wakeIfPending();
    }

    private void readCleanerCheckpoint(Path dir) throws IOException {
        Path p = dir.resolve(Log.CLEANER_CHECKPOINT);
        if (!log.fs().exists(p)) {
            return;
        }
        String[] parts = new String(log.fs().readAllBytes(p), StandardCharsets.US_ASCII).trim().split(" ");
        try {
            log.restoreCleanerState(Long.parseLong(parts[0]), parts.length > 1 ? Long.parseLong(parts[1]) : Long.MAX_VALUE);
        } catch (NumberFormatException e) {
            LOG.log(System.Logger.Level.WARNING, "ignoring damaged " + p + " (the next compaction starts over)");
        }
    }

    /**
     * Cleans up after an interrupted compaction, before the segments are listed: a {@code .cleaned} file was
     * never committed and is deleted; a {@code <base>-<next>.log.swap} file was committed (fdatasynced and
     * renamed), so the segments it replaces, [base, next), and their indexes are deleted and it takes the
     * first one's name. Also removes leftover {@code .tmp} files of interrupted atomic writes.
     */
    private void finishCompactionSwaps(Path dir) throws IOException {
        FileOps fs = log.fs();
        java.util.List<Path> swaps = new java.util.ArrayList<>();
        for (Path p : fs.list(dir)) {
            String name = p.getFileName().toString();
            if (name.endsWith(".tmp") || name.endsWith(LogCompaction.CLEANED_SUFFIX)) {
                fs.deleteIfExists(p);
            } else if (name.endsWith(LogCompaction.SWAP_SUFFIX)) {
                swaps.add(p);
            }
        }
        swaps.sort(null);
        for (Path swap : swaps) {
            String name = swap.getFileName().toString();
            long base;
            long next;
            try {
                base = Long.parseLong(name.substring(0, 20));
                next = Long.parseLong(name.substring(21, 41));
            } catch (RuntimeException e) {
                throw new IllegalStateException("cannot read the offsets in the name of " + swap + "; remove or rename it", e);
            }
            fs.deleteIfExists(dir.resolve(Segment.fileName(base, ".index")));
            fs.deleteIfExists(dir.resolve(Segment.fileName(base, ".timeindex")));
            for (long b : Log.listSegments(fs, dir)) {
                if (b >= base && b < next) {
                    fs.deleteIfExists(dir.resolve(Segment.fileName(b, Log.LOG_SUFFIX)));
                    fs.deleteIfExists(dir.resolve(Segment.fileName(b, ".index")));
                    fs.deleteIfExists(dir.resolve(Segment.fileName(b, ".timeindex")));
                }
            }
            fs.move(swap, dir.resolve(Segment.fileName(base, Log.LOG_SUFFIX)), false);
            fs.syncDirectory(dir);
            LOG.log(System.Logger.Level.INFO, "log " + dir + ": finished an interrupted compaction of [" + base + ", "
                + next + ")");
        }
    }

    private static long readLong(FileOps fs, Path p, long missing) throws IOException {
        if (!fs.exists(p)) {
            return missing;
        }
        String s = new String(fs.readAllBytes(p), StandardCharsets.US_ASCII).trim();
        try {
            return Long.parseLong(s);
        } catch (NumberFormatException e) {
            LOG.log(System.Logger.Level.WARNING, "ignoring damaged " + p + ": '" + s + "'");
            return missing;
        }
    }

    private boolean loadIndexes(Segment s) {
        try {
            Path oi = s.indexPath();
            Path ti = s.timeIndexPath();
            if (!log.fs().exists(oi) || !log.fs().exists(ti)) {
                return s.size == 0;
            }
            byte[] o = log.fs().readAllBytes(oi);
            byte[] t = log.fs().readAllBytes(ti);
            return s.index.load(MemorySegment.ofArray(o), o.length, MemorySegment.ofArray(t), t.length, s.size)
                || s.size == 0;
        } catch (IOException e) {
            return false;
        }
    }

    private void scanNext() {
        scanning = toScan.poll();
        if (scanning == null) {
            openTail();
            return;
        }
        scanned.add(scanning);
        long prev = scanning.baseOffset - 1;
        scanning.lastOffset = prev; // what the scan finds, not what the next segment's name suggests
        if (reader == null) {
            reader = SegmentReader.windowed(window, true, bytes -> LargeBuffer.allocate(log, bytes),
                SegmentReader.Hold.NONE, this::scan);
        }
        long from = 0;
        if (recoveryPoint != null && scanning.baseOffset == recoveryPoint.baseOffset()
            && recoveryPoint.loadInto(scanning.index, scanning.size)) {
            from = recoveryPoint.position();
            resumeExpect = recoveryPoint.batchLastOffset();
            scanning.maxTimestamp = scanning.index.maxTimestamp();
        }
        reader.start(log, scanning, from, -1, scanning.size);
        scan();
    }

    /**
     * The batch at the recovery point is not the one it names (or not a batch): the point is not trusted, and the
     * segment is scanned from its start.
     */
    private void resumeFromZero(String why) {
        LOG.log(System.Logger.Level.WARNING, "log " + log.dir() + ": " + why + " at the recovery point, position "
            + recoveryPoint.position() + " of " + scanning.path.getFileName() + "; validating the whole segment");
        resumeExpect = -1;
        totalBytes += recoveryPoint.position();
        scanning.index.truncateTo(0, scanning.baseOffset - 1);
        scanning.maxTimestamp = -1;
        scanning.lastOffset = scanning.baseOffset - 1;
        reader.start(log, scanning, 0, -1, scanning.size);
    }

    /** Walks the segment being scanned to where its valid data ends (on from each read's completion). */
    private void scan() {
        while (true) {
            int r = reader.nextOrRead();
            if (r == SegmentReader.WAIT) {
                return;
            }
            if (resumeExpect >= 0) {
                if (r == SegmentReader.BATCH && reader.batch().lastOffset() == resumeExpect) {
                    resumeExpect = -1;
                } else if (r == SegmentReader.BATCH || r == SegmentReader.INVALID || r == SegmentReader.ZEROS
                    || r == SegmentReader.END || r == SegmentReader.ENDS_EARLY) {
                    resumeFromZero(r == SegmentReader.BATCH ? "the batch there ends at offset "
                        + reader.batch().lastOffset() + ", not " + resumeExpect : "no valid batch");
                    continue;
                }
            }
            if (r != SegmentReader.BATCH) {
                long validEnd = reader.position();
                int errno = reader.errno();
                reader.close(); // a larger buffer taken for the scan goes back first
                onEnd(validEnd, r, errno);
                return;
            }
            onBatch(reader.batch(), reader.position());
            reader.advance();
        }
    }

    private void onBatch(RecordBatch batch, long position) {
        Segment s = scanning;
        s.index.onBatch(batch.lastOffset(), position, batch.sizeInBytes(), batch.maxTimestamp());
        s.maxTimestamp = Math.max(s.maxTimestamp, batch.maxTimestamp());
        s.lastOffset = batch.lastOffset();
        scannedBytes += batch.sizeInBytes();
        if (scannedBytes >= nextProgress) {
            nextProgress += progressBytes;
            LOG.log(System.Logger.Level.INFO, "log " + log.dir() + ": recovery scanned " + (scannedBytes >> 20) + " of "
                + (totalBytes >> 20) + " MiB (" + (totalBytes == 0 ? 100 : scannedBytes * 100 / totalBytes) + "%), "
                + (log.clock().nanoTime() - startNs) / 1_000_000 + " ms so far");
        }
    }

    /** The scan of the current segment ended at {@code validEnd} ({@link SegmentReader}'s answer {@code reason}). */
    private void onEnd(long validEnd, int reason, int errno) {
        Segment s = scanning;
        if (reason == SegmentReader.ERROR) {
            fail(new LogException(LogException.Kind.STORAGE_ERROR, "recovery read of " + s.path + " failed: "
                + Errno.describe(errno)));
            return;
        }
        if (reason == SegmentReader.NO_MEMORY) {
            // Never cut a segment for want of memory: the open fails and can be tried again.
            fail(new LogException(LogException.Kind.NO_MEMORY, "recovery of " + s.path + " needs memory for a batch"
                + " at position " + validEnd + " larger than the read windows: " + log.largeBufferFailure()));
            return;
        }
        if (s.isEmpty() && s.size > 0) {
            s.lastOffset = s.baseOffset - 1;
        }
        boolean zeros = true;
        if (validEnd < s.size) {
            // Zeros (space never written) or the file's end are where the data ends; anything else is cut.
            zeros = reason != SegmentReader.INVALID;
            if (!zeros) {
                LOG.log(System.Logger.Level.WARNING, "log " + log.dir() + ": " + s.path.getFileName() + " has "
                    + (s.size - validEnd) + " invalid bytes after position " + validEnd + "; cutting them");
            }
            s.size = validEnd;
            s.file.truncate(validEnd);
        }
        int idx = segments.indexOf(s);
        boolean contiguous = idx + 1 >= segments.size()
            || segments.get(idx + 1).baseOffset == s.lastOffset + 1;
        if (!zeros || !contiguous) {
            // Nothing after a cut can be trusted to be contiguous with it. A segment ending (in zeros, space never
            // written, or at its file's end) right before the next one's first offset is a normal end (a segment whose
            // seal did not finish); otherwise the later segments hold offsets above a hole, and since durability
            // advances in offset order none of them was ever durable. (A hole also arises when a segment's unsynced
            // tail is lost while a later segment's unsynced writes survive: rolls do not wait for seals.)
            if (!contiguous) {
                LOG.log(System.Logger.Level.WARNING, "log " + log.dir() + ": " + s.path.getFileName() + " ends at"
                    + " offset " + s.lastOffset + ", but the next segment starts at "
                    + segments.get(idx + 1).baseOffset + "; dropping the never-durable segments after it");
            }
            boolean deleted = false;
            while (segments.size() > idx + 1) {
                Segment later = segments.remove(segments.size() - 1);
                toScan.remove(later);
                later.file.close();
                try {
                    log.fs().deleteIfExists(later.path);
                    log.fs().deleteIfExists(later.indexPath());
                    log.fs().deleteIfExists(later.timeIndexPath());
                    deleted = true;
                } catch (IOException e) {
                    LOG.log(System.Logger.Level.WARNING, "could not delete " + later.path);
                }
            }
            if (deleted) {
                try {
                    // Before anything is appended after the cut: a power loss must not bring the dropped segments
                    // back behind new records that would then look contiguous with them.
                    log.fs().syncDirectory(log.dir());
                } catch (IOException e) {
                    fail(new LogException(LogException.Kind.STORAGE_ERROR, "fsync of " + log.dir() + " after dropping"
                        + " segments failed: " + e.getMessage()));
                    return;
                }
            }
        }
        if (s != segments.get(segments.size() - 1) && segments.contains(s)) {
            log.writeIndexesLater(s); // a sealed segment: the next open loads them instead of scanning again
        }
        scanNext();
    }

    /**
     * Reads the last partial aligned block of the active segment, the bytes its appender writes again with the next
     * append (nothing when the segment ends on a block boundary).
     */
    private void openTail() {
        if (segments.isEmpty()) {
            segments.add(log.createSegment(logStart));
            finish();
            return;
        }
        Segment last = segments.get(segments.size() - 1);
        int block = Math.max(4096, last.file.alignment());
        tailStart = last.size - last.size % block;
        if (tailStart == last.size) {
            startAppender(MemorySegment.NULL);
            return;
        }
        withWindow(this::readTail);
    }

    private void readTail() {
        Segment last = segments.get(segments.size() - 1);
        int block = Math.max(4096, last.file.alignment());
        if (window.byteSize() < block) {
            fail(new IllegalStateException("read windows of " + window.byteSize() + " bytes cannot hold a block of "
                + block + " bytes"));
            return;
        }
        long r = last.file.read(window.asSlice(0, block), tailStart, this, 0);
        if (r < 0) {
            fail(new LogException(LogException.Kind.STORAGE_ERROR, "read of " + last.path + ": " + Errno.describe((int) r)));
        }
    }

    @Override
    public void onComplete(int result, int flags, long attachment) {
        if (attachment == TAG_SYNC) {
            synced(result);
            return;
        }
        Segment last = segments.get(segments.size() - 1);
        if (result < last.size - tailStart) {
            fail(new LogException(LogException.Kind.STORAGE_ERROR, "short read of the tail of " + last.path
                + (result < 0 ? ": " + Errno.describe(result) : "")));
            return;
        }
        startAppender(window.asSlice(0, last.size - tailStart));
    }

    private void startAppender(MemorySegment tail) {
        Segment last = segments.get(segments.size() - 1);
        try {
            // The active segment grows past what its index files (from a clean close) describe: left in place, they
            // would let a later recovery trust the grown segment without scanning it. Its index lives in memory and
            // is written again when it is sealed. (The deletes become durable with the directory sync of the next
            // segment's creation; until then the segment is the last one, which recovery always scans.)
            log.fs().deleteIfExists(last.indexPath());
            log.fs().deleteIfExists(last.timeIndexPath());
        } catch (IOException e) {
            fail(new LogException(LogException.Kind.STORAGE_ERROR, "cannot delete the index files of " + last.path
                + ": " + e.getMessage()));
            return;
        }
        last.appender = new SegmentAppender(last.file, log.writePool(), last, last.size, tail, last.file.size(),
            log.config().fallocateStepBytes(), log.config().segmentBytes(), log.clock());
        finish();
    }

    private void finish() {
        releaseWindow();
        if (totalBytes >= progressBytes) {
            LOG.log(System.Logger.Level.INFO, "log " + log.dir() + ": recovery scanned " + (scannedBytes >> 20) + " MiB in "
                + (log.clock().nanoTime() - startNs) / 1_000_000 + " ms (100%)");
        }
        syncRecovered();
    }

    /**
     * After an unclean shutdown, makes what recovery kept durable before calling it so: a killed process leaves
     * written bytes (and new file names) that are in the kernel's and the device's caches but not on stable storage,
     * and a power loss after the restart could still lose them, though the log would have reported them durable.
     * One fdatasync per scanned segment, then a sync of the directory.
     */
    private void syncRecovered() {
        if (cleanEnd >= 0) {
            done();
            return;
        }
        syncsLeft = 1; // until every fdatasync is queued
        for (Segment s : scanned) {
            if (segments.contains(s)) {
                syncsLeft++;
                long r = s.file.datasync(this, TAG_SYNC);
                if (r < 0) {
                    synced((int) r);
                }
            }
        }
        synced(0);
    }

    private void synced(int result) {
        if (syncsLeft < 0) {
            return; // failed already
        }
        if (result < 0) {
            syncsLeft = -1;
            fail(new LogException(LogException.Kind.STORAGE_ERROR, "fdatasync of " + log.dir() + " after recovery: "
                + Errno.describe(result)));
            return;
        }
        if (--syncsLeft > 0) {
            return;
        }
        try {
            log.fs().syncDirectory(log.dir());
        } catch (IOException e) {
            fail(new LogException(LogException.Kind.STORAGE_ERROR, "fsync of " + log.dir() + " after recovery: "
                + e.getMessage()));
            return;
        }
        done();
    }

    private void done() {
        Segment first = segments.get(0);
        Segment last = segments.get(segments.size() - 1);
        long start = Math.max(logStart, first.baseOffset);
        long next = Math.max(last.lastOffset + 1, last.baseOffset);
        log.recovered(segments, Math.min(start, next), next);
        handler.onOpen(log, null);
    }

    private void fail(RuntimeException e) {
        releaseWindow();
        for (Segment s : segments) {
            s.file.close();
        }
        handler.onOpen(null, e);
    }
}
