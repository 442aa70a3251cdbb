package dev.isthmus.log;

import dev.isthmus.uring.IoBackend;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.RingConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LogTest {
    @TempDir
    Path dir;
    IoEngine engine;
    ChunkPool writes;
    ChunkPool reads;
    Arena arena;
    long durable = -1;
    final LogConfig small = LogConfig.defaults().withSegmentBytes(256 * 1024).withFallocateStep(64 * 1024);

    /** The backend under test; {@link PortableLogTest} runs every test again on the portable one. */
    IoBackend backend() {
        return IoBackend.AUTO;
    }

    @BeforeEach
    void setUp() {
        engine = IoEngine.create(backend(), RingConfig.defaults());
        writes = ChunkPool.allocate(32, 32 * 1024);
        reads = ChunkPool.allocate(4, small.readWindowBytes());
        arena = Arena.ofConfined();
    }

    @AfterEach
    void tearDown() {
        engine.close();
        writes.close();
        reads.close();
        arena.close();
    }

    void drive(BooleanSupplier done, String what) {
        long deadline = System.nanoTime() + 120_000_000_000L; // a bound against hangs, not a timing check
        while (!done.getAsBoolean() && System.nanoTime() < deadline) {
            engine.submitAndWait(10_000_000L);
        }
        assertTrue(done.getAsBoolean(), "timed out: " + what);
    }

    Log open(LogConfig config) {
        Log[] out = new Log[1];
        RuntimeException[] err = new RuntimeException[1];
        boolean[] called = {false};
        Log.open(engine, dir.resolve("topic-0"), config, writes, reads, d -> durable = d, (log, e) -> {
            out[0] = log;
            err[0] = e;
            called[0] = true;
        });
        drive(() -> called[0], "open");
        if (err[0] != null) {
            throw err[0];
        }
        return out[0];
    }

    /** A batch of {@code records} records with values derived from {@code tag}. */
    MemorySegment batch(int records, int tag, int valueBytes) {
        MemorySegment buf = arena.allocate(records * (valueBytes + 64L) + 128);
        BatchBuilder b = new BatchBuilder(buf, 0, 0);
        for (int i = 0; i < records; i++) {
            byte[] v = new byte[valueBytes];
            java.util.Arrays.fill(v, (byte) (tag + i));
            b.add(1_700_000_000_000L + tag, ("key-" + tag + "-" + i).getBytes(), v);
        }
        return buf.asSlice(0, b.build());
    }

    long append(Log log, MemorySegment batch) {
        long r;
        while ((r = log.append(batch, 0, batch.byteSize(), 7)) == Log.NO_MEMORY) {
            engine.submitAndWait(1_000_000L);
        }
        return r;
    }

    record Read(byte[] bytes, long first, long last) {
    }

    Read read(Log log, long from, long bound, int maxBytes) {
        Read[] out = new Read[1];
        LogException[] err = new LogException[1];
        log.read(from, bound, maxBytes, new Log.ReadHandler() {
            @Override
            public void onRead(MemorySegment bytes, long firstOffset, long lastOffset) {
                out[0] = new Read(bytes.toArray(ValueLayout.JAVA_BYTE), firstOffset, lastOffset);
            }

            @Override
            public void onError(LogException error) {
                err[0] = error;
            }
        });
        drive(() -> out[0] != null || err[0] != null, "read");
        if (err[0] != null) {
            throw err[0];
        }
        return out[0];
    }

    /** Reads [from, end) completely, one segment at a time. */
    byte[] readAll(Log log, long from, long end) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        long next = from;
        while (next < end) {
            Read r = read(log, next, end, 64 << 20);
            assertTrue(r.bytes().length > 0, "no progress at " + next);
            out.writeBytes(r.bytes());
            next = r.last() + 1;
        }
        return out.toByteArray();
    }

    /** Parses back-to-back batches: (baseOffset, lastOffset, epoch) each. */
    static List<long[]> batches(byte[] bytes) {
        return batches(bytes, true);
    }

    /** {@link #batches(byte[])}; without {@code strictCount}, batches may hold fewer records than offsets (compacted). */
    static List<long[]> batches(byte[] bytes, boolean strictCount) {
        List<long[]> out = new ArrayList<>();
        MemorySegment seg = MemorySegment.ofArray(bytes);
        RecordBatch v = new RecordBatch();
        long pos = 0;
        while (pos < bytes.length) {
            v.wrap(seg, pos);
            assertEquals(RecordBatch.Check.OK, v.check(bytes.length - pos, strictCount));
            out.add(new long[] {v.baseOffset(), v.lastOffset(), v.partitionLeaderEpoch()});
            pos += v.sizeInBytes();
        }
        return out;
    }

    void close(Log log) {
        boolean[] closed = {false};
        log.close(() -> closed[0] = true);
        drive(() -> closed[0], "close");
    }

    @Test
    void shouldAssignOffsetsMakeThemDurableAndReadThemBack() {
        Log log = open(small);
        assertEquals(0, log.logEndOffset());
        long expectedBase = 0;
        for (int i = 0; i < 200; i++) {
            int records = 1 + i % 7;
            assertEquals(expectedBase, append(log, batch(records, i, 300)));
            expectedBase += records;
            if (i % 10 == 0) {
                log.flush();
            }
        }
        log.flush();
        long end = expectedBase;
        drive(() -> durable == end, "durable");
        assertEquals(end, log.durableEndOffset());
        assertTrue(log.segmentCount() > 1, "rolled: " + log.segmentCount());

        // Every offset is found, in the batch that contains it, and the bound is respected.
        for (long o = 0; o < end; o += 13) {
            Read r = read(log, o, end, 1);
            List<long[]> bs = batches(r.bytes());
            assertEquals(1, bs.size(), "at least and only one batch when maxBytes is tiny");
            assertTrue(bs.get(0)[0] <= o && o <= bs.get(0)[1], "offset " + o);
            assertEquals(7, bs.get(0)[2], "leader epoch stamped");
        }
        List<long[]> bs = batches(readAll(log, 0, end));
        assertTrue(bs.size() > 1);
        for (int i = 1; i < bs.size(); i++) {
            assertEquals(bs.get(i - 1)[1] + 1, bs.get(i)[0], "contiguous");
        }
        for (long[] b : batches(read(log, 0, 10, 1 << 20).bytes())) {
            assertTrue(b[1] < 10, "bound respected");
        }
        assertEquals(0, read(log, end, end + 100, 1000).bytes().length, "nothing past the end");
        LogException e = assertThrows(LogException.class, () -> read(log, end + 1, end + 5, 100));
        assertEquals(LogException.Kind.OFFSET_OUT_OF_RANGE, e.kind());
        close(log);
    }

    @Test
    void shouldReopenCleanlyWithTheSameContent() {
        Log log = open(small);
        for (int i = 0; i < 120; i++) {
            append(log, batch(3, i, 500));
        }
        log.flush();
        drive(() -> durable == 360, "durable");
        byte[] before = readAll(log, 0, 360);
        int segments = log.segmentCount();
        close(log);
        assertTrue(Files.exists(dir.resolve("topic-0").resolve(Log.CLEAN_SHUTDOWN)));

        Log again = open(small);
        assertEquals(360, again.logEndOffset());
        assertEquals(segments, again.segmentCount());
        assertArrayEquals(before, readAll(again, 0, 360));
        assertEquals(360, append(again, batch(2, 999, 10)));
        close(again);
    }

    @Test
    void shouldRecoverAfterAnUncleanStopKeepingEveryDurableRecord() throws Exception {
        Log log = open(small);
        for (int i = 0; i < 150; i++) {
            append(log, batch(2, i, 400));
        }
        log.flush();
        drive(() -> durable == 300, "durable");
        // Appended but never flushed: may or may not survive, but nothing durable may be lost.
        for (int i = 0; i < 5; i++) {
            append(log, batch(2, 1000 + i, 400));
        }
        drive(log::quiescent, "writes done");
        // No close: the engine goes away as in a crash (page cache is not involved; O_DIRECT writes are on disk).
        engine.close();
        engine = IoEngine.create(backend(), RingConfig.defaults());
        Log again = open(small);
        assertTrue(again.logEndOffset() >= 300, "lost durable records: end " + again.logEndOffset());
        List<long[]> bs = batches(readAll(again, 0, again.logEndOffset()));
        long expect = 0;
        for (long[] b : bs) {
            assertEquals(expect, b[0]);
            expect = b[1] + 1;
        }
        assertEquals(again.logEndOffset(), expect);
        // Appends continue after the recovered end.
        assertEquals(again.logEndOffset(), append(again, batch(1, 5, 5)));
        close(again);
    }

    @Test
    void shouldTruncateTheSuffixAtABatchBoundary() {
        Log log = open(small);
        List<Long> bases = new ArrayList<>();
        for (int i = 0; i < 100; i++) {
            bases.add(append(log, batch(4, i, 700)));
        }
        log.flush();
        drive(() -> durable == 400, "durable");
        long cut = bases.get(37);
        RuntimeException[] result = {null};
        boolean[] done = {false};
        log.truncateSuffix(cut, e -> {
            result[0] = e;
            done[0] = true;
        });
        drive(() -> done[0], "truncate");
        assertNull(result[0]);
        assertEquals(cut, log.logEndOffset());
        List<long[]> bs = batches(readAll(log, 0, cut));
        assertEquals(cut - 1, bs.get(bs.size() - 1)[1]);
        // New appends reuse the offsets, then everything reads back consistently after a reopen.
        assertEquals(cut, append(log, batch(2, 500, 100)));
        log.flush();
        drive(() -> log.durableEndOffset() == cut + 2, "durable after truncate");
        close(log);
        Log again = open(small);
        assertEquals(cut + 2, again.logEndOffset());
        // Not a batch boundary: refused.
        boolean[] d2 = {false};
        RuntimeException[] r2 = {null};
        again.truncateSuffix(cut - 2, e -> {
            r2[0] = e;
            d2[0] = true;
        });
        drive(() -> d2[0], "bad truncate");
        assertTrue(r2[0] instanceof LogException, String.valueOf(r2[0]));
        close(again);
    }

    @Test
    void shouldMoveTheLogStartAndApplyRetention() {
        Log log = open(small.withRetention(600 * 1024, -1));
        for (int i = 0; i < 800; i++) {
            append(log, batch(2, i, 900));
        }
        log.flush();
        drive(() -> durable == 1600, "durable");
        drive(log::quiescent, "seals");
        int before = log.segmentCount();
        int deleted = log.enforceRetention(System.currentTimeMillis());
        assertTrue(deleted > 0 && log.segmentCount() == before - deleted);
        assertTrue(log.sizeBytes() <= 600 * 1024 + 256 * 1024);
        long start = log.logStartOffset();
        assertTrue(start > 0);
        assertThrows(LogException.class, () -> read(log, start - 1, 1600, 100));
        assertEquals(start, batches(read(log, start, 1600, 1).bytes()).get(0)[0]);
        long newStart = log.truncatePrefix(start + 50);
        assertEquals(start + 50, newStart);
        close(log);
        Log again = open(small);
        assertEquals(start + 50, again.logStartOffset());
        close(again);
    }

    /**
     * A steady stream of appends, flushed every turn: durable offsets must be reported as the stream goes, not
     * only once it stops (appends after a flush never hold back what that flush made durable).
     */
    @Test
    void shouldReportDurabilityWhileAppendsKeepComing() {
        int[] reports = {0};
        long[] reported = {-1};
        Log[] out = new Log[1];
        Log.open(engine, dir.resolve("stream-0"), small.withSegmentBytes(64L << 20), writes, reads, d -> {
            reports[0]++;
            reported[0] = d;
        }, (l, e) -> out[0] = l);
        drive(() -> out[0] != null, "open");
        Log log = out[0];
        MemorySegment b = batch(1, 1, 100);
        long deadline = System.nanoTime() + 120_000_000_000L; // a bound against hangs, not a timing check
        while (reports[0] < 3 && System.nanoTime() < deadline) {
            append(log, b);
            log.flush();
            engine.submitAndWait(10_000_000L);
        }
        assertTrue(reports[0] >= 3, "durability stopped at " + reported[0] + " while appends kept coming (log end "
            + log.logEndOffset() + ")");
        log.flush();
        drive(() -> reported[0] == log.logEndOffset(), "durable");
        close(log);
    }

    /** Trimming, index writing and retention's deletes run on the file-task thread, off the shard loop. */
    @Test
    void shouldSealTrimAndDeleteSegmentFilesInTheBackground() throws IOException {
        Log log = open(small.withRetention(600 * 1024, -1));
        for (int i = 0; i < 800; i++) {
            append(log, batch(2, i, 900));
        }
        log.flush();
        drive(() -> durable == 1600, "durable");
        drive(log::quiescent, "seals");
        Path logDir = dir.resolve("topic-0");
        dev.isthmus.uring.FileOps.JDK.awaitBackground(logDir);
        assertTrue(log.segmentCount() > 3);
        for (int i = 0; i < log.segmentCount() - 1; i++) {
            Segment s = log.segments().get(i);
            assertEquals(s.size, Files.size(s.path), "a sealed segment is trimmed to its batches");
            assertTrue(s.index.offsetEntries() > 0);
            assertEquals(s.index.offsetEntries() * (long) SegmentIndex.OFFSET_ENTRY_BYTES, Files.size(s.indexPath()));
            assertEquals(s.index.timeEntries() * (long) SegmentIndex.TIME_ENTRY_BYTES, Files.size(s.timeIndexPath()));
        }
        int deleted = log.enforceRetention(System.currentTimeMillis());
        assertTrue(deleted > 0);
        dev.isthmus.uring.FileOps.JDK.awaitBackground(logDir);
        assertEquals(log.segmentCount(), Log.listSegments(logDir).length, "the dropped segments' files are gone");
        try (var files = Files.list(logDir)) {
            assertEquals(2L * (log.segmentCount() - 1), files.filter(p -> p.toString().endsWith("index")).count());
        }
        assertEquals(Long.toString(log.logStartOffset()), Files.readString(logDir.resolve(Log.LOG_START)).trim());
        close(log);
    }

    @Test
    void shouldRejectBadBatchesWithoutAppendingAnything() {
        Log log = open(small);
        MemorySegment good = batch(3, 1, 50);
        byte[] corrupt = good.toArray(ValueLayout.JAVA_BYTE);
        corrupt[corrupt.length - 1] ^= 1;
        LogException e = assertThrows(LogException.class,
            () -> log.append(MemorySegment.ofArray(corrupt), 0, corrupt.length, 1));
        assertEquals(LogException.Kind.CORRUPT_MESSAGE, e.kind());
        byte[] oldMagic = good.toArray(ValueLayout.JAVA_BYTE);
        oldMagic[RecordBatch.MAGIC] = 1;
        e = assertThrows(LogException.class, () -> log.append(MemorySegment.ofArray(oldMagic), 0, oldMagic.length, 1));
        assertEquals(LogException.Kind.INVALID_RECORD, e.kind());
        MemorySegment big = batch(1, 2, 300 * 1024);
        e = assertThrows(LogException.class, () -> log.append(big, 0, big.byteSize(), 1));
        assertEquals(LogException.Kind.MESSAGE_TOO_LARGE, e.kind());
        assertEquals(0, log.logEndOffset());
        assertEquals(0, append(log, good));
        close(log);
    }

    /**
     * The checked form (batches whose CRC-32C the caller checked since they arrived) does not compute the CRC again,
     * but still checks every header rule: magic, lengths, record count, max.message.bytes. What it appends is read
     * back byte for byte.
     */
    @Test
    void shouldCheckHeadersButNotTheCrcOfBatchesTheCallerChecked() {
        Log log = open(small);
        MemorySegment good = batch(3, 1, 50);
        byte[] stale = good.toArray(ValueLayout.JAVA_BYTE);
        stale[RecordBatch.CRC] ^= 1; // a CRC the checked form must not look at
        long r;
        while ((r = log.appendReplicaChecked(MemorySegment.ofArray(stale), 0, stale.length, 1)) == Log.NO_MEMORY) {
            engine.submitAndWait(1_000_000L);
        }
        assertEquals(0, r);
        assertEquals(3, log.logEndOffset());
        byte[] oldMagic = good.toArray(ValueLayout.JAVA_BYTE);
        oldMagic[RecordBatch.MAGIC] = 1;
        LogException e = assertThrows(LogException.class,
            () -> log.appendReplicaChecked(MemorySegment.ofArray(oldMagic), 0, oldMagic.length, 1));
        assertEquals(LogException.Kind.INVALID_RECORD, e.kind());
        byte[] badLength = good.toArray(ValueLayout.JAVA_BYTE);
        MemorySegment.ofArray(badLength).set(RecordBatch.INT, RecordBatch.BATCH_LENGTH, badLength.length);
        e = assertThrows(LogException.class,
            () -> log.appendReplicaChecked(MemorySegment.ofArray(badLength), 0, badLength.length, 1));
        assertEquals(LogException.Kind.CORRUPT_MESSAGE, e.kind());
        byte[] badCount = good.toArray(ValueLayout.JAVA_BYTE);
        MemorySegment.ofArray(badCount).set(RecordBatch.INT, RecordBatch.RECORDS_COUNT, 7);
        e = assertThrows(LogException.class,
            () -> log.appendReplicaChecked(MemorySegment.ofArray(badCount), 0, badCount.length, 1));
        assertEquals(LogException.Kind.INVALID_RECORD, e.kind());
        MemorySegment big = batch(1, 2, 300 * 1024);
        e = assertThrows(LogException.class, () -> log.appendReplicaChecked(big, 0, big.byteSize(), 1));
        assertEquals(LogException.Kind.MESSAGE_TOO_LARGE, e.kind());
        assertEquals(3, log.logEndOffset(), "nothing of a refused append is stored");
        log.flush();
        drive(() -> durable == 3, "durable");
        byte[] stored = readAll(log, 0, 3);
        assertEquals(stale.length, stored.length);
        MemorySegment.ofArray(stale).set(RecordBatch.LONG, RecordBatch.BASE_OFFSET, 0L);
        MemorySegment.ofArray(stale).set(RecordBatch.INT, RecordBatch.PARTITION_LEADER_EPOCH, 1);
        org.junit.jupiter.api.Assertions.assertArrayEquals(stale, stored, "stored as given, stamped");
        close(log);
    }

    /** {@code batch} with its lastOffsetDelta set to {@code delta} (a compacted batch keeps its span), CRC redone. */
    MemorySegment withSpan(MemorySegment batch, int delta) {
        MemorySegment copy = arena.allocate(batch.byteSize());
        copy.copyFrom(batch);
        copy.set(RecordBatch.INT, RecordBatch.LAST_OFFSET_DELTA, delta);
        new RecordBatch().wrap(copy, 0).updateCrc();
        return copy;
    }

    /**
     * A legal batch may cover up to 2^31 offsets (a compacted batch keeps its offsets whatever it holds): the log
     * rolls where the batch's span would not fit the active segment's i32 relative offsets, instead of failing
     * mid-append, and keeps serving appends, reads and a reopen afterwards.
     */
    @Test
    void shouldRollWhereABatchOffsetSpanWouldNotFitTheSegment() {
        Log log = open(small);
        assertEquals(0, append(log, batch(3, 1, 100)));
        assertEquals(3, append(log, batch(2, 2, 5000)));
        MemorySegment huge = withSpan(batch(1, 3, 100), Integer.MAX_VALUE);
        long r;
        while ((r = log.appendReplica(huge, 0, huge.byteSize(), 7)) == Log.NO_MEMORY) {
            engine.submitAndWait(1_000_000L);
        }
        assertEquals(5, r);
        assertEquals(2, log.segmentCount(), "the batch starts a new segment: offset 5 + 2^31 - 1 does not fit segment 0");
        long afterHuge = 5 + (long) Integer.MAX_VALUE + 1;
        assertEquals(afterHuge, log.logEndOffset());
        assertEquals(afterHuge, append(log, batch(4, 4, 100)));
        assertEquals(3, log.segmentCount(), "the next batch does not fit the huge batch's segment either");
        long end = afterHuge + 4;
        assertEquals(end, log.logEndOffset());
        log.flush();
        drive(() -> durable == end, "durable");
        List<long[]> bs = batches(readAll(log, 0, end), false);
        assertEquals(4, bs.size());
        assertEquals(5, bs.get(2)[0]);
        assertEquals(afterHuge - 1, bs.get(2)[1]);
        assertEquals(afterHuge, bs.get(3)[0]);
        close(log);

        Log again = open(small);
        assertEquals(end, again.logEndOffset());
        assertEquals(4, batches(readAll(again, 0, end), false).size());
        assertEquals(afterHuge, batches(read(again, afterHuge + 2, end, 1).bytes(), false).get(0)[0]);
        close(again);
    }

    /** An append whose batches together cover more offsets than one segment can hold is refused whole, up front. */
    @Test
    void shouldRefuseAnAppendWhoseOffsetSpanCannotFitAnySegment() {
        Log log = open(small);
        assertEquals(0, append(log, batch(1, 1, 100)));
        MemorySegment a = withSpan(batch(1, 2, 100), Integer.MAX_VALUE);
        MemorySegment two = arena.allocate(2 * a.byteSize());
        two.asSlice(0, a.byteSize()).copyFrom(a);
        two.asSlice(a.byteSize(), a.byteSize()).copyFrom(a);
        LogException e = assertThrows(LogException.class, () -> log.appendReplica(two, 0, two.byteSize(), 7));
        assertEquals(LogException.Kind.INVALID_RECORD, e.kind());
        assertEquals(1, log.logEndOffset(), "nothing appended");
        assertEquals(1, log.segmentCount());
        assertEquals(1, append(log, batch(2, 3, 100)), "the log keeps taking appends");
        close(log);
    }

    @Test
    void shouldPassARandomizedModelCheck() {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("LogTest model seed " + seed + " (replay with -Disthmus.seed=" + seed + ")");
        Random random = new Random(seed);
        Log log = open(small);
        // Model: offset -> tag of the batch holding it, and the batch's first offset.
        List<long[]> model = new ArrayList<>(); // {base, last, tag}
        for (int step = 0; step < 400; step++) {
            int action = random.nextInt(100);
            if (action < 70) {
                int records = 1 + random.nextInt(5);
                int tag = random.nextInt(1000);
                long base = append(log, batch(records, tag, random.nextInt(2000)));
                model.add(new long[] {base, base + records - 1, tag});
            } else if (action < 80) {
                log.flush();
            } else if (action < 90 && !model.isEmpty()) {
                log.flush();
                long end = log.logEndOffset();
                drive(() -> log.durableEndOffset() == end, "durable");
                long[] target = model.get(random.nextInt(model.size()));
                long from = target[0] + random.nextInt((int) (target[1] - target[0] + 1));
                List<long[]> got = batches(read(log, from, end, random.nextInt(20_000)).bytes());
                assertEquals(target[0], got.get(0)[0], "seed " + seed);
                assertEquals(target[1], got.get(0)[1], "seed " + seed);
            } else if (!model.isEmpty()) {
                int keep = random.nextInt(model.size());
                long cut = model.get(keep)[0];
                boolean[] done = {false};
                RuntimeException[] failure = {null};
                log.truncateSuffix(cut, e -> {
                    failure[0] = e;
                    done[0] = true;
                });
                drive(() -> done[0], "truncate to " + cut + " in " + log + " " + log.segments() + " inflight "
                    + log.segments().stream().map(x -> x.appender == null ? "-" : x.appender.inFlight() + "/" + x.appender.written() + "/" + x.appender.durable()).toList());
                assertNull(failure[0], "seed " + seed);
                model.subList(keep, model.size()).clear();
                assertEquals(cut, log.logEndOffset(), "seed " + seed);
            }
        }
        log.flush();
        long end = log.logEndOffset();
        drive(() -> log.durableEndOffset() == end, "final durable");
        close(log);
        Log again = open(small);
        assertEquals(end, again.logEndOffset());
        List<long[]> all = batches(readAll(again, 0, end));
        assertEquals(model.size(), all.size(), "seed " + seed);
        for (int i = 0; i < model.size(); i++) {
            assertEquals(model.get(i)[0], all.get(i)[0], "seed " + seed);
            assertEquals(model.get(i)[1], all.get(i)[1], "seed " + seed);
        }
        close(again);
    }

    @Test
    void shouldFindOffsetsByTimestamp() {
        Log log = open(small);
        // Batch i holds records with timestamps 1000*i + j.
        MemorySegment buf = arena.allocate(64 * 1024);
        for (int i = 0; i < 300; i++) {
            BatchBuilder b = new BatchBuilder(buf, 0, 0);
            for (int j = 0; j < 5; j++) {
                b.add(1000L * i + j, null, new byte[200]);
            }
            int size = b.build();
            while (log.append(buf, 0, size, 1) == Log.NO_MEMORY) {
                engine.submitAndWait(1_000_000L);
            }
        }
        log.flush();
        drive(() -> log.durableEndOffset() == 1500, "durable");
        long[][] cases = {{0, 0}, {3, 3}, {999, 5}, {1000, 5}, {1004, 9}, {150_002, 752}, {299_004, 1499}, {299_005, -1}};
        for (long[] c : cases) {
            long[] got = {Long.MIN_VALUE};
            log.offsetForTimestamp(c[0], log.durableEndOffset(), new Log.TimestampHandler() {
                @Override
                public void onOffset(long offset, long timestamp) {
                    got[0] = offset;
                }

                @Override
                public void onError(LogException error) {
                    got[0] = -99;
                }
            });
            drive(() -> got[0] != Long.MIN_VALUE, "timestamp lookup");
            assertEquals(c[1], got[0], "timestamp " + c[0]);
        }
        close(log);
    }

    @Test
    void shouldShareOneFlushAcrossManyLogsAndAppendsInATurn() {
        ChunkPool w = ChunkPool.allocate(64, 32 * 1024);
        ChunkPool r = ChunkPool.allocate(2, small.readWindowBytes());
        LogManager manager = new LogManager(engine, dir.resolve("shard-0"), w, r);
        List<Log> logs = new ArrayList<>();
        for (int p = 0; p < 8; p++) {
            Log[] out = new Log[1];
            manager.open("t-" + p, small, d -> { }, (l, e) -> out[0] = l);
            drive(() -> out[0] != null, "open");
            logs.add(out[0]);
        }
        int turns = 20;
        for (int turn = 0; turn < turns; turn++) {
            for (Log log : logs) {
                for (int a = 0; a < 10; a++) {
                    append(log, batch(1, a, 100));
                }
                manager.appended(log);
            }
            manager.poll();
            engine.submitAndWait(0);
        }
        drive(() -> logs.stream().allMatch(l -> l.durableEndOffset() == 10L * turns), "all durable");
        long syncs = manager.diskStats().syncs();
        System.out.println("8 logs x " + turns + " turns x 10 appends: " + syncs + " fdatasyncs, p99 "
            + manager.diskStats().syncP99Micros() + " us");
        assertTrue(syncs <= 8L * turns, "at most one fdatasync per log per turn: " + syncs);
        boolean[] closed = {false};
        manager.closeAll(() -> closed[0] = true);
        drive(() -> closed[0], "close all");
        w.close();
        r.close();
    }
}
