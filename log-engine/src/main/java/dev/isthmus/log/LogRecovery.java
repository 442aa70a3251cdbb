package dev.isthmus.log;

import dev.isthmus.ffi.Errno;
import dev.isthmus.uring.CompletionHandler;
import dev.isthmus.uring.DmaFile;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;

/**
 * Opens a {@link Log}: lists its segments, loads their indexes, and after an unclean shutdown validates the
 * last two segments batch by batch (a roll may have been under way), cutting at the first invalid byte and
 * dropping anything after a cut. Segments whose index files are missing or damaged are rescanned to rebuild
 * them. Progress is logged every 256 MiB scanned. Owner: the log's thread.
 */
final class LogRecovery implements SegmentScanner.Visitor, CompletionHandler {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.log");
    /** A progress line every this many bytes scanned (package access: tests lower it). */
    static long progressBytes = 256L << 20;

    private final Log log;
    private final Log.OpenHandler handler;
    private final ArrayDeque<Segment> toScan = new ArrayDeque<>();
    private int windowId = -1;
    private MemorySegment window;
    private Segment scanning;
    private long scannedBytes;
    private long nextProgress;
    private long totalBytes;
    private long startNs;
    private long cleanEnd = -1;
    private long logStart;
    private long tailStart;

    LogRecovery(Log log, Log.OpenHandler handler) {
        this.log = log;
        this.handler = handler;
    }

    void start() throws IOException {
        Path dir = log.dir;
        logStart = readLong(dir.resolve(Log.LOG_START), 0);
        Path marker = dir.resolve(Log.CLEAN_SHUTDOWN);
        cleanEnd = readLong(marker, -1);
        // From now on a crash is an unclean shutdown.
        Files.deleteIfExists(marker);
        readCleanerCheckpoint(dir);
        finishCompactionSwaps(dir);
        long[] bases = Log.listSegments(dir);
        for (int i = 0; i < bases.length; i++) {
            Path p = dir.resolve(Segment.fileName(bases[i], Log.LOG_SUFFIX));
            DmaFile file = log.engine.openDmaFile(p, false);
            Segment s = new Segment(log, bases[i], p, file, new SegmentIndex(bases[i], log.config.indexIntervalBytes()));
            s.size = file.size();
            s.createdMs = Files.getLastModifiedTime(p).toMillis();
            log.segments.add(s);
        }
        for (int i = 0; i < log.segments.size(); i++) {
            Segment s = log.segments.get(i);
            boolean last = i == log.segments.size() - 1;
            boolean recoverTail = cleanEnd < 0 && i >= log.segments.size() - 2;
            if (i + 1 < log.segments.size()) {
                s.lastOffset = log.segments.get(i + 1).baseOffset - 1;
            } else if (cleanEnd >= 0) {
                s.lastOffset = cleanEnd - 1;
            }
            if (recoverTail || !loadIndexes(s)) {
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
            nextProgress = progressBytes;
            startNs = System.nanoTime();
            windowId = log.readPool.acquireUninitialized();
            if (windowId < 0) {
                throw new IllegalStateException("no read window to recover " + dir);
            }
            window = log.readPool.chunk(windowId);
            LOG.log(System.Logger.Level.INFO, "log " + dir + ": " + (cleanEnd < 0 ? "unclean shutdown, validating "
                : "rebuilding indexes of ") + toScan.size() + " segment(s), " + (totalBytes >> 20) + " MiB");
        }
        scanNext();
    }

    private void readCleanerCheckpoint(Path dir) throws IOException {
        Path p = dir.resolve(Log.CLEANER_CHECKPOINT);
        if (!Files.exists(p)) {
            return;
        }
        String[] parts = Files.readString(p, StandardCharsets.US_ASCII).trim().split(" ");
        try {
            log.cleanerCheckpoint = Long.parseLong(parts[0]);
            log.tombstoneHorizonMs = parts.length > 1 ? Long.parseLong(parts[1]) : Long.MAX_VALUE;
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
        java.util.List<Path> swaps = new java.util.ArrayList<>();
        try (var files = Files.list(dir)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                String name = p.getFileName().toString();
                if (name.endsWith(".tmp") || name.endsWith(LogCompaction.CLEANED_SUFFIX)) {
                    Files.deleteIfExists(p);
                } else if (name.endsWith(LogCompaction.SWAP_SUFFIX)) {
                    swaps.add(p);
                }
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
            Files.deleteIfExists(dir.resolve(Segment.fileName(base, ".index")));
            Files.deleteIfExists(dir.resolve(Segment.fileName(base, ".timeindex")));
            for (long b : Log.listSegments(dir)) {
                if (b >= base && b < next) {
                    Files.deleteIfExists(dir.resolve(Segment.fileName(b, Log.LOG_SUFFIX)));
                    Files.deleteIfExists(dir.resolve(Segment.fileName(b, ".index")));
                    Files.deleteIfExists(dir.resolve(Segment.fileName(b, ".timeindex")));
                }
            }
            Files.move(swap, dir.resolve(Segment.fileName(base, Log.LOG_SUFFIX)), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            Log.syncDirectory(dir);
            LOG.log(System.Logger.Level.INFO, "log " + dir + ": finished an interrupted compaction of [" + base + ", "
                + next + ")");
        }
    }

    private static long readLong(Path p, long missing) throws IOException {
        if (!Files.exists(p)) {
            return missing;
        }
        String s = Files.readString(p, StandardCharsets.US_ASCII).trim();
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
            if (!Files.exists(oi) || !Files.exists(ti)) {
                return s.size == 0;
            }
            byte[] o = Files.readAllBytes(oi);
            byte[] t = Files.readAllBytes(ti);
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
        long prev = scanning.baseOffset - 1;
        scanning.lastOffset = prev; // what the scan finds, not what the next segment's name suggests
        new SegmentScanner(scanning.file, window, bytes -> LargeBuffer.allocate(log, bytes)).scan(0, scanning.size,
            prev, this);
    }

    @Override
    public boolean onBatch(RecordBatch batch, long position) {
        Segment s = scanning;
        s.index.onBatch(batch.lastOffset(), position, batch.sizeInBytes(), batch.maxTimestamp());
        s.maxTimestamp = Math.max(s.maxTimestamp, batch.maxTimestamp());
        s.lastOffset = batch.lastOffset();
        scannedBytes += batch.sizeInBytes();
        if (scannedBytes >= nextProgress) {
            nextProgress += progressBytes;
            LOG.log(System.Logger.Level.INFO, "log " + log.dir + ": recovery scanned " + (scannedBytes >> 20) + " of "
                + (totalBytes >> 20) + " MiB (" + (totalBytes == 0 ? 100 : scannedBytes * 100 / totalBytes) + "%), "
                + (System.nanoTime() - startNs) / 1_000_000 + " ms so far");
        }
        return true;
    }

    @Override
    public void onEnd(long validEnd, SegmentScanner.End reason, int errno) {
        Segment s = scanning;
        if (reason == SegmentScanner.End.READ_ERROR) {
            fail(new LogException(LogException.Kind.STORAGE_ERROR, "recovery read of " + s.path + " failed: "
                + Errno.describe(errno)));
            return;
        }
        if (reason == SegmentScanner.End.NO_MEMORY) {
            // Never cut a segment for want of memory: the open fails and can be tried again.
            fail(new LogException(LogException.Kind.NO_MEMORY, "recovery of " + s.path + " needs memory for a batch"
                + " at position " + validEnd + " larger than the read windows: " + log.largeBufferFailure));
            return;
        }
        if (s.isEmpty() && s.size > 0) {
            s.lastOffset = s.baseOffset - 1;
        }
        if (validEnd < s.size) {
            boolean zeros = reason == SegmentScanner.End.END_OF_DATA;
            if (!zeros) {
                LOG.log(System.Logger.Level.WARNING, "log " + log.dir + ": " + s.path.getFileName() + " has "
                    + (s.size - validEnd) + " invalid bytes after position " + validEnd + "; cutting them");
            }
            s.size = validEnd;
            s.file.truncate(validEnd);
            int idx = log.segments.indexOf(s);
            boolean contiguous = idx + 1 >= log.segments.size()
                || log.segments.get(idx + 1).baseOffset == s.lastOffset + 1;
            if (!zeros || !contiguous) {
                // Nothing after a cut can be trusted to be contiguous with it. Zeros (space never written) at the end
                // of a segment followed by one starting right after its last batch are a normal end (preallocated
                // space of a segment whose seal did not finish); otherwise the later segments hold offsets above a
                // hole, and since durability advances in offset order none of them was ever durable.
                if (zeros && idx + 1 < log.segments.size()) {
                    LOG.log(System.Logger.Level.WARNING, "log " + log.dir + ": " + s.path.getFileName() + " ends at"
                        + " offset " + s.lastOffset + " with unwritten space, but the next segment starts at "
                        + log.segments.get(idx + 1).baseOffset + "; dropping the never-durable segments after it");
                }
                while (log.segments.size() > idx + 1) {
                    Segment later = log.segments.remove(log.segments.size() - 1);
                    toScan.remove(later);
                    later.file.close();
                    try {
                        Files.deleteIfExists(later.path);
                        Files.deleteIfExists(later.indexPath());
                        Files.deleteIfExists(later.timeIndexPath());
                    } catch (IOException e) {
                        LOG.log(System.Logger.Level.WARNING, "could not delete " + later.path);
                    }
                }
            }
        }
        if (s != log.segments.get(log.segments.size() - 1) && log.segments.contains(s)) {
            log.writeIndexesLater(s); // a sealed segment: the next open loads them instead of scanning again
        }
        scanNext();
    }

    /** Reads the partly filled last chunk of the active segment for its appender. */
    private void openTail() {
        if (log.segments.isEmpty()) {
            log.segments.add(log.createSegment(logStart));
            finish();
            return;
        }
        Segment last = log.segments.get(log.segments.size() - 1);
        int chunk = log.writePool.chunkBytes();
        tailStart = last.size - last.size % chunk;
        if (tailStart == last.size) {
            startAppender(MemorySegment.NULL);
            return;
        }
        if (windowId < 0) {
            windowId = log.readPool.acquireUninitialized();
            if (windowId < 0) {
                fail(new IllegalStateException("no read window free to read the tail of " + last.path));
                return;
            }
            window = log.readPool.chunk(windowId);
        }
        if (window.byteSize() < chunk) {
            fail(new IllegalStateException("read windows of " + window.byteSize() + " bytes cannot hold a write-behind"
                + " chunk of " + chunk + " bytes"));
            return;
        }
        long r = last.file.read(window.asSlice(0, chunk), tailStart, this, 0);
        if (r < 0) {
            fail(new LogException(LogException.Kind.STORAGE_ERROR, "read of " + last.path + ": " + Errno.describe((int) r)));
        }
    }

    @Override
    public void onComplete(int result, int flags, long attachment) {
        Segment last = log.segments.get(log.segments.size() - 1);
        if (result < last.size - tailStart) {
            fail(new LogException(LogException.Kind.STORAGE_ERROR, "short read of the tail of " + last.path
                + (result < 0 ? ": " + Errno.describe(result) : "")));
            return;
        }
        startAppender(window.asSlice(0, last.size - tailStart));
    }

    private void startAppender(MemorySegment tail) {
        Segment last = log.segments.get(log.segments.size() - 1);
        last.appender = new SegmentAppender(last.file, log.writePool, last, last.size, tail, last.file.size(),
            log.config.fallocateStepBytes(), log.config.segmentBytes());
        finish();
    }

    private void finish() {
        if (windowId >= 0) {
            log.readPool.release(windowId);
            windowId = -1;
        }
        if (totalBytes >= progressBytes) {
            LOG.log(System.Logger.Level.INFO, "log " + log.dir + ": recovery scanned " + (scannedBytes >> 20) + " MiB in "
                + (System.nanoTime() - startNs) / 1_000_000 + " ms (100%)");
        }
        Segment first = log.segments.get(0);
        Segment last = log.segments.get(log.segments.size() - 1);
        long start = Math.max(logStart, first.baseOffset);
        long next = Math.max(last.lastOffset + 1, last.baseOffset);
        log.initialized(Math.min(start, next), next);
        handler.onOpen(log, null);
    }

    private void fail(RuntimeException e) {
        if (windowId >= 0) {
            log.readPool.release(windowId);
            windowId = -1;
        }
        for (Segment s : log.segments) {
            s.file.close();
        }
        handler.onOpen(null, e);
    }
}
