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
    private static final long PROGRESS_BYTES = 256L << 20;

    private final Log log;
    private final Log.OpenHandler handler;
    private final ArrayDeque<Segment> toScan = new ArrayDeque<>();
    private int windowId = -1;
    private MemorySegment window;
    private Segment scanning;
    private long scannedBytes;
    private long nextProgress = PROGRESS_BYTES;
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
        for (String leftover : new String[] {".tmp"}) {
            try (var files = Files.list(dir)) {
                for (Path p : (Iterable<Path>) files::iterator) {
                    if (p.getFileName().toString().endsWith(leftover)) {
                        Files.deleteIfExists(p);
                    }
                }
            }
        }
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
            windowId = log.readPool.acquire();
            if (windowId < 0) {
                throw new IllegalStateException("no read window to recover " + dir);
            }
            window = log.readPool.chunk(windowId);
            LOG.log(System.Logger.Level.INFO, "log " + dir + ": " + (cleanEnd < 0 ? "unclean shutdown, validating "
                : "rebuilding indexes of ") + toScan.size() + " segment(s)");
        }
        scanNext();
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
        new SegmentScanner(scanning.file, window).scan(0, scanning.size, prev, this);
    }

    @Override
    public boolean onBatch(RecordBatch batch, long position) {
        Segment s = scanning;
        s.index.onBatch(batch.lastOffset(), position, batch.sizeInBytes(), batch.maxTimestamp());
        s.maxTimestamp = Math.max(s.maxTimestamp, batch.maxTimestamp());
        s.lastOffset = batch.lastOffset();
        scannedBytes += batch.sizeInBytes();
        if (scannedBytes >= nextProgress) {
            nextProgress += PROGRESS_BYTES;
            LOG.log(System.Logger.Level.INFO, "log " + log.dir + ": recovered " + (scannedBytes >> 20) + " MiB");
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
        if (validEnd < s.size) {
            boolean zeros = reason == SegmentScanner.End.END_OF_DATA;
            if (!zeros) {
                LOG.log(System.Logger.Level.WARNING, "log " + log.dir + ": " + s.path.getFileName() + " has "
                    + (s.size - validEnd) + " invalid bytes after position " + validEnd + "; cutting them");
            }
            s.size = validEnd;
            s.file.truncate(validEnd);
            int idx = log.segments.indexOf(s);
            if (!zeros) {
                // Nothing after a cut can be trusted to be contiguous with it.
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
        if (s.isEmpty() && s.size > 0) {
            s.lastOffset = s.baseOffset - 1;
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
            windowId = log.readPool.acquire();
            window = log.readPool.chunk(windowId);
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
