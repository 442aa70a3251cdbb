package dev.isthmus.log;

import dev.isthmus.uring.IoBackend;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.RingConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fault injection on the files of a closed or crashed log: damaged and missing indexes (rebuilt, or distrusted
 * when they look valid but lie), holes of unwritten space, corrupt CRCs, and recovery progress reports.
 */
class LogRecoveryTest {
    @TempDir
    Path dir;
    IoEngine engine;
    ChunkPool writes;
    ChunkPool reads;
    final LogConfig config = LogConfig.defaults().withSegmentBytes(128 * 1024).withFallocateStep(64 * 1024)
        .withMaxBatchBytes(16 * 1024);

    @BeforeEach
    void setUp() {
        engine = IoEngine.create(IoBackend.AUTO, RingConfig.defaults());
        writes = ChunkPool.allocate(16, 32 * 1024);
        reads = ChunkPool.allocate(4, config.readWindowBytes());
    }

    @AfterEach
    void tearDown() {
        engine.close();
        writes.close();
        reads.close();
    }

    Path logDir() {
        return dir.resolve("topic-0");
    }

    Log open() {
        Log[] out = new Log[1];
        RuntimeException[] err = new RuntimeException[1];
        boolean[] called = {false};
        Log.open(engine, logDir(), config, writes, reads, d -> {
        }, (log, e) -> {
            out[0] = log;
            err[0] = e;
            called[0] = true;
        });
        LogTestSupport.drive(engine, () -> called[0], "open");
        if (err[0] != null) {
            throw err[0];
        }
        return out[0];
    }

    void close(Log log) {
        boolean[] done = {false};
        log.close(() -> done[0] = true);
        LogTestSupport.drive(engine, () -> done[0], "close");
    }

    /** Appends {@code n} batches of 1..4 records with ~1 KiB values; returns each batch's base offset. */
    List<Long> fill(Log log, int n) {
        List<Long> bases = new ArrayList<>();
        MemorySegment buf = MemorySegment.ofArray(new byte[16 * 1024]);
        for (int i = 0; i < n; i++) {
            BatchBuilder b = new BatchBuilder(buf, 0, 0);
            for (int r = 0; r <= i % 4; r++) {
                byte[] v = new byte[900 + i % 200];
                Arrays.fill(v, (byte) i);
                b.add(1_700_000_000_000L + i, ("k" + i).getBytes(), v);
            }
            int size = b.build();
            long base;
            while ((base = log.append(buf, 0, size, 2)) == Log.NO_MEMORY) {
                engine.submitAndWait(1_000_000L);
            }
            bases.add(base);
        }
        log.flush();
        LogTestSupport.drive(engine, () -> log.durableEndOffset() == log.logEndOffset(), "durable");
        return bases;
    }

    byte[] readAll(Log log) {
        return LogTestSupport.readAll(engine, log, log.logStartOffset(), log.logEndOffset());
    }

    long offsetForTimestamp(Log log, long ts) {
        long[] out = {Long.MIN_VALUE};
        log.offsetForTimestamp(ts, log.logEndOffset(), new Log.TimestampHandler() {
            @Override
            public void onOffset(long offset, long timestamp) {
                out[0] = offset;
            }

            @Override
            public void onError(LogException error) {
                throw error;
            }
        });
        LogTestSupport.drive(engine, () -> out[0] != Long.MIN_VALUE, "timestamp lookup");
        return out[0];
    }

    /** Reads from every batch's base offset and checks that the first batch returned is that one. */
    void checkEveryBatchReadable(Log log, List<Long> bases) {
        for (int i = 0; i < bases.size(); i++) {
            long base = bases.get(i);
            long last = (i + 1 < bases.size() ? bases.get(i + 1) : log.logEndOffset()) - 1;
            assertEquals(base, LogTestSupport.firstBatchAt(engine, log, base), "read at " + base);
            assertEquals(base, LogTestSupport.firstBatchAt(engine, log, last), "a read of " + last + " returns its batch");
        }
    }

    @Test
    void shouldRebuildMissingAndDamagedIndexesAndServeTheSameData() throws IOException {
        Log log = open();
        List<Long> bases = fill(log, 400);
        byte[] before = readAll(log);
        long tsOffset = offsetForTimestamp(log, 1_700_000_000_000L + 250);
        close(log);
        long[] segments = Log.listSegments(logDir());
        assertTrue(segments.length >= 4, "segments: " + segments.length);
        // Garbage, a length that is not whole entries, an out-of-order index, and a missing one.
        Files.write(logDir().resolve(Segment.fileName(segments[0], ".index")), new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9});
        Path ti = logDir().resolve(Segment.fileName(segments[1], ".timeindex"));
        Files.write(ti, Arrays.copyOf(Files.readAllBytes(ti), (int) Files.size(ti) - 5));
        Path oi = logDir().resolve(Segment.fileName(segments[2], ".index"));
        byte[] o = Files.readAllBytes(oi);
        assertTrue(o.length >= 16);
        byte[] swapped = o.clone();
        System.arraycopy(o, 0, swapped, 8, 8);
        System.arraycopy(o, 8, swapped, 0, 8);
        Files.write(oi, swapped);
        Files.delete(logDir().resolve(Segment.fileName(segments[3], ".index")));

        Log again = open();
        assertArrayEquals(before, readAll(again));
        checkEveryBatchReadable(again, bases);
        assertEquals(tsOffset, offsetForTimestamp(again, 1_700_000_000_000L + 250));
        close(again);
        // The rebuilt indexes were written: a third open loads them and reads the same.
        for (int i = 0; i < 4; i++) {
            assertTrue(Files.exists(logDir().resolve(Segment.fileName(segments[i], ".index"))));
        }
        Log third = open();
        assertArrayEquals(before, readAll(third));
        close(third);
    }

    @Test
    void shouldDistrustAnIndexThatLooksValidButPointsIntoBatches() throws IOException {
        Log log = open();
        List<Long> bases = fill(log, 200);
        byte[] before = readAll(log);
        close(log);
        long[] segments = Log.listSegments(logDir());
        // Every entry's position moved forward by 100 bytes: still increasing and inside the file, but wrong.
        Path oi = logDir().resolve(Segment.fileName(segments[0], ".index"));
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(oi)).order(ByteOrder.BIG_ENDIAN);
        for (int i = 0; i < b.capacity(); i += 8) {
            b.putInt(i + 4, b.getInt(i + 4) + 100);
        }
        Files.write(oi, b.array());
        Log again = open();
        checkEveryBatchReadable(again, bases);
        assertArrayEquals(before, readAll(again));
        dev.isthmus.uring.FileOps.JDK.awaitBackground(logDir()); // the delete runs in the background
        assertFalse(Files.exists(oi), "the lying index is deleted, to be rebuilt at the next open");
        // A suffix truncation that needs the index finds the batch boundary anyway.
        long cut = bases.get(20);
        RuntimeException[] err = {new IllegalStateException("not called")};
        again.truncateSuffix(cut, e -> err[0] = e);
        LogTestSupport.drive(engine, () -> err[0] == null || !(err[0] instanceof IllegalStateException)
            || !err[0].getMessage().equals("not called"), "truncation");
        assertNull(err[0]);
        assertEquals(cut, again.logEndOffset());
        close(again);
    }

    @Test
    void shouldDropSegmentsAboveAHoleOfUnwrittenSpace() throws IOException {
        Log log = open();
        List<Long> bases = fill(log, 400);
        close(log);
        long[] segments = Log.listSegments(logDir());
        assertTrue(segments.length >= 4);
        // As after a crash: no clean-shutdown marker, and the second-to-last segment has a page that was never
        // written (zeros) before its end, while the last segment holds later offsets.
        Files.delete(logDir().resolve(Log.CLEAN_SHUTDOWN));
        long victim = segments[segments.length - 2];
        Path p = logDir().resolve(Segment.fileName(victim, ".log"));
        // The hole starts at a batch boundary (as when a chunk write starting with a batch had not landed).
        byte[] bytes = Files.readAllBytes(p);
        RecordBatch v = new RecordBatch();
        long holeAt = 0;
        while (holeAt < bytes.length / 2) {
            holeAt += v.wrap(MemorySegment.ofArray(bytes), holeAt).sizeInBytes();
        }
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.seek(holeAt);
            f.write(new byte[8192]);
        }
        Log again = open();
        assertTrue(again.logEndOffset() > victim && again.logEndOffset() < segments[segments.length - 1],
            "cut inside the segment with the hole: end " + again.logEndOffset());
        assertEquals(segments.length - 1, again.segmentCount(), "the segment above the hole is gone");
        // Contiguous up to the new end, and appends continue right there.
        byte[] all = readAll(again);
        long next = 0;
        for (long pos = 0; pos < all.length; pos += v.sizeInBytes()) {
            v.wrap(MemorySegment.ofArray(all), pos);
            assertEquals(next, v.baseOffset());
            next = v.lastOffset() + 1;
        }
        assertEquals(again.logEndOffset(), next);
        assertTrue(bases.contains(next), "cut at a batch boundary");
        long end = again.logEndOffset();
        fill(again, 3);
        assertEquals(end, LogTestSupport.firstBatchAt(engine, again, end));
        close(again);
    }

    @Test
    void shouldCutTheLastSegmentAtACorruptCrcAndKeepEverythingBefore() throws IOException {
        Log log = open();
        List<Long> bases = fill(log, 120);
        byte[] before = readAll(log);
        close(log);
        Files.delete(logDir().resolve(Log.CLEAN_SHUTDOWN));
        long[] segments = Log.listSegments(logDir());
        Path last = logDir().resolve(Segment.fileName(segments[segments.length - 1], ".log"));
        long size = Files.size(last);
        try (RandomAccessFile f = new RandomAccessFile(last.toFile(), "rw")) {
            f.seek(size / 2);
            int b = f.read();
            f.seek(size / 2);
            f.write(b ^ 0x55);
        }
        Log again = open();
        long end = again.logEndOffset();
        assertTrue(end > segments[segments.length - 1] && end < bases.get(bases.size() - 1), "cut in the last segment: " + end);
        byte[] kept = readAll(again);
        assertArrayEquals(Arrays.copyOf(before, kept.length), kept, "everything before the corrupt batch is intact");
        close(again);
    }

    @Test
    void shouldReportRecoveryProgress() throws IOException {
        Log log = open();
        fill(log, 600);
        close(log);
        for (long base : Log.listSegments(logDir())) {
            Files.deleteIfExists(logDir().resolve(Segment.fileName(base, ".index")));
        }
        List<String> lines = new ArrayList<>();
        Handler h = new Handler() {
            @Override
            public void publish(LogRecord r) {
                lines.add(r.getMessage());
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        Logger jul = Logger.getLogger("dev.isthmus.log");
        long saved = LogRecovery.progressBytes;
        LogRecovery.progressBytes = 64 * 1024;
        jul.addHandler(h);
        try {
            close(open());
        } finally {
            jul.removeHandler(h);
            LogRecovery.progressBytes = saved;
        }
        List<String> progress = lines.stream().filter(l -> l.contains("recovery scanned")).toList();
        assertTrue(progress.size() >= 5, "progress lines: " + lines);
        assertTrue(progress.get(0).contains("%"), progress.get(0));
        assertTrue(progress.get(progress.size() - 1).contains("(100%)"), progress.toString());
    }

    /** Runs {@code body} with recovery points every {@code bytes} and the log's INFO/WARNING lines captured. */
    List<String> withRecoveryPoints(long bytes, Runnable body) {
        List<String> lines = new ArrayList<>();
        Handler h = new Handler() {
            @Override
            public void publish(LogRecord r) {
                lines.add(r.getMessage());
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        Logger jul = Logger.getLogger("dev.isthmus.log");
        long saved = Log.recoveryPointEveryBytes;
        Log.recoveryPointEveryBytes = bytes;
        jul.addHandler(h);
        try {
            body.run();
        } finally {
            jul.removeHandler(h);
            Log.recoveryPointEveryBytes = saved;
        }
        return lines;
    }

    /**
     * Appends batches until the log has a recovery point in its last segment, at least 32 KiB in (bounded: fails
     * after 400 batches). Returns every batch's base offset.
     */
    List<Long> fillPastARecoveryPoint(Log log) throws IOException {
        List<Long> bases = new ArrayList<>(fill(log, 100));
        for (int i = 0; i < 30; i++) {
            dev.isthmus.uring.FileOps.JDK.awaitBackground(logDir());
            Path file = logDir().resolve(RecoveryPoint.FILE);
            RecoveryPoint p = Files.exists(file) ? RecoveryPoint.decode(Files.readAllBytes(file)) : null;
            long[] segments = Log.listSegments(logDir());
            if (p != null && p.baseOffset() == segments[segments.length - 1] && p.position() >= 32 * 1024) {
                bases.addAll(fill(log, 5)); // a tail after the point
                return bases;
            }
            bases.addAll(fill(log, 10));
        }
        throw new AssertionError("no recovery point in the last segment after " + bases.size() + " batches");
    }

    /** As after a kill: no clean-shutdown marker (the close before it only made the test's files settle). */
    void crash(Log log) throws IOException {
        close(log);
        Files.delete(logDir().resolve(Log.CLEAN_SHUTDOWN));
    }

    @Test
    void shouldValidateOnlyTheTailAfterTheRecoveryPoint() {
        List<String> lines = withRecoveryPoints(16 * 1024, () -> {
            try {
                Log log = open();
                List<Long> bases = fillPastARecoveryPoint(log);
                byte[] before = readAll(log);
                long tsOffset = offsetForTimestamp(log, 1_700_000_000_000L + 150);
                crash(log);
                long[] segments = Log.listSegments(logDir());
                assertTrue(segments.length >= 2, "segments: " + segments.length);
                RecoveryPoint point = RecoveryPoint.decode(Files.readAllBytes(logDir().resolve(RecoveryPoint.FILE)));
                assertTrue(point != null && point.baseOffset() == segments[segments.length - 1] && point.position() > 0,
                    "a recovery point in the last segment: " + point);
                assertTrue(bases.contains(point.batchLastOffset() + 1) || point.batchLastOffset() + 1 == log.logEndOffset(),
                    "it names a batch's last offset");

                Log again = open();
                assertEquals(log.logEndOffset(), again.logEndOffset());
                assertArrayEquals(before, readAll(again));
                checkEveryBatchReadable(again, bases);
                assertEquals(tsOffset, offsetForTimestamp(again, 1_700_000_000_000L + 150));
                long end = again.logEndOffset();
                fill(again, 3); // appends go on at the recovered end
                assertEquals(end, LogTestSupport.firstBatchAt(engine, again, end));
                close(again);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        assertTrue(lines.stream().anyMatch(l -> l.contains("validating 1 segment(s)") && l.contains("from the recovery point")),
            "only the last segment is validated, from the point: " + lines);
    }

    @Test
    void shouldCutAtACorruptBatchAfterTheRecoveryPoint() {
        withRecoveryPoints(16 * 1024, () -> {
            try {
                Log log = open();
                List<Long> bases = fillPastARecoveryPoint(log);
                byte[] before = readAll(log);
                crash(log);
                long[] segments = Log.listSegments(logDir());
                RecoveryPoint point = RecoveryPoint.decode(Files.readAllBytes(logDir().resolve(RecoveryPoint.FILE)));
                Path last = logDir().resolve(Segment.fileName(segments[segments.length - 1], ".log"));
                long size = Files.size(last);
                long at = point.position() + (size - point.position()) / 2;
                assertTrue(at > point.position() && at < size, "room after the point");
                try (RandomAccessFile f = new RandomAccessFile(last.toFile(), "rw")) {
                    f.seek(at);
                    int b = f.read();
                    f.seek(at);
                    f.write(b ^ 0x55);
                }
                Log again = open();
                long end = again.logEndOffset();
                assertTrue(end > point.batchLastOffset() && end <= bases.get(bases.size() - 1),
                    "cut after the point, inside the last segment: " + end);
                byte[] kept = readAll(again);
                assertArrayEquals(Arrays.copyOf(before, kept.length), kept, "everything before the corrupt batch is intact");
                close(again);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    @Test
    void shouldValidateTheWholeSegmentWhenTheRecoveryPointDoesNotMatchIt() {
        List<String> lines = withRecoveryPoints(16 * 1024, () -> {
            try {
                Log log = open();
                List<Long> bases = fillPastARecoveryPoint(log);
                byte[] before = readAll(log);
                crash(log);
                Path file = logDir().resolve(RecoveryPoint.FILE);
                RecoveryPoint point = RecoveryPoint.decode(Files.readAllBytes(file));
                // A point whose position is 100 bytes off the batch it names (a damaged point whose checksum still
                // matches: made by hand).
                SegmentIndex idx = new SegmentIndex(point.baseOffset(), 4096);
                assertTrue(point.loadInto(idx, Long.MAX_VALUE));
                byte[] wrong = RecoveryPoint.encode(shifted(idx, point, 100), Long.MAX_VALUE);
                Files.write(file, wrong);
                Log again = open();
                assertArrayEquals(before, readAll(again));
                checkEveryBatchReadable(again, bases);
                close(again);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        assertTrue(lines.stream().anyMatch(l -> l.contains("validating the whole segment")), lines.toString());
    }

    /** {@code idx}'s entries plus one for the point's batch, moved {@code by} bytes forward. */
    private static SegmentIndex shifted(SegmentIndex idx, RecoveryPoint point, int by) {
        SegmentIndex out = new SegmentIndex(point.baseOffset(), 1);
        for (int i = 0; i < idx.offsetEntries(); i++) {
            out.onBatch(idx.entryLastOffset(i), idx.entryPosition(i), 1, -1);
        }
        out.onBatch(point.batchLastOffset(), point.position() + by, 1, -1);
        out.onBatch(point.batchLastOffset() + 1, point.position() + by + 1, 1, -1);
        return out;
    }

    @Test
    void shouldDeleteTheRecoveryPointOnASuffixTruncation() {
        withRecoveryPoints(16 * 1024, () -> {
            try {
                Log log = open();
                List<Long> bases = fillPastARecoveryPoint(log);
                dev.isthmus.uring.FileOps.JDK.awaitBackground(logDir());
                Path file = logDir().resolve(RecoveryPoint.FILE);
                assertTrue(Files.exists(file));
                long cut = bases.get(bases.size() / 2);
                RuntimeException[] err = {new IllegalStateException("not called")};
                log.truncateSuffix(cut, e -> err[0] = e);
                LogTestSupport.drive(engine, () -> err[0] == null || !"not called".equals(err[0].getMessage()),
                    "truncation");
                assertNull(err[0]);
                assertFalse(Files.exists(file), "the point may lie past the cut: deleted with it");
                List<Long> more = fill(log, 60); // new batches at the cut, perhaps at other positions
                byte[] before = readAll(log);
                crash(log);
                Log again = open();
                assertArrayEquals(before, readAll(again));
                List<Long> all = new ArrayList<>(bases.subList(0, bases.size() / 2));
                all.addAll(more);
                checkEveryBatchReadable(again, all);
                close(again);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }
}
