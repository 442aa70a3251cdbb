package dev.isthmus.log;

import dev.isthmus.uring.IoBackend;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.RingConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The stock of zeroed segment files, and logs rolling into them: real io_uring (and portable), real files. */
class ZeroedSegmentsTest {
    @TempDir
    Path dir;

    static final long FILE_BYTES = 8L << 20;
    /** Busy at 2 MiB, whatever its rate and fdatasyncs (tests run on shared cores: nothing depends on timing). */
    static final ZeroedSegments.Policy ANY_2_MIB = new ZeroedSegments.Policy(2L << 20, 0, 0);

    /** The shard's timers, run by {@link #drive}. */
    static final class Timers implements ZeroedSegments.Timer {
        final List<long[]> due = new ArrayList<>();
        final List<Runnable> tasks = new ArrayList<>();

        @Override
        public void schedule(long delayNs, Runnable task) {
            due.add(new long[] {System.nanoTime() + delayNs});
            tasks.add(task);
        }

        void runDue() {
            long now = System.nanoTime();
            for (int i = 0; i < tasks.size(); i++) {
                if (due.get(i)[0] <= now) {
                    Runnable t = tasks.remove(i);
                    due.remove(i);
                    i--;
                    t.run();
                }
            }
        }
    }

    final Timers timers = new Timers();

    void drive(IoEngine engine, BooleanSupplier done, String what) {
        long deadline = System.nanoTime() + 120_000_000_000L; // a bound against hangs, not a timing check
        while (!done.getAsBoolean() && System.nanoTime() < deadline) {
            engine.submitAndWait(1_000_000L);
            timers.runDue();
        }
        assertTrue(done.getAsBoolean(), "timed out: " + what);
    }

    static List<String> names(Path d) throws IOException {
        try (Stream<Path> s = Files.list(d)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    static boolean allZeros(Path file, long from, long to) throws IOException {
        try (FileChannel ch = FileChannel.open(file)) {
            ByteBuffer b = ByteBuffer.allocate(1 << 20);
            for (long pos = from; pos < to; ) {
                b.clear();
                b.limit((int) Math.min(b.capacity(), to - pos));
                int n = ch.read(b, pos);
                if (n <= 0) {
                    return false;
                }
                for (int i = 0; i < n; i++) {
                    if (b.get(i) != 0) {
                        return false;
                    }
                }
                pos += n;
            }
        }
        return true;
    }

    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void makesFilesOnlyOnceAskedKeepsThemAcrossRestartsAndDropsPartialOnes(IoBackend backend) throws Exception {
        Path stockDir = dir.resolve("stock");
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults()); Arena arena = Arena.ofConfined()) {
            MemorySegment zeros = arena.allocate(256 * 1024, 4096);
            ZeroedSegments z = ZeroedSegments.create(engine, stockDir, 1, FILE_BYTES, zeros, timers);
            try {
                for (int i = 0; i < 20; i++) {
                    engine.submitAndWait(1_000_000L);
                }
                assertEquals(List.of(), names(stockDir), "nothing is made before a log asks");
                assertFalse(z.readyFor(FILE_BYTES), "nothing is ready at first");
                drive(engine, () -> z.ready() == 1, "the first zeroed file");
                assertEquals(List.of("zeroed-0.seg"), names(stockDir));
                assertEquals(FILE_BYTES, Files.size(stockDir.resolve("zeroed-0.seg")));
                assertTrue(allZeros(stockDir.resolve("zeroed-0.seg"), 0, FILE_BYTES));
                assertFalse(z.available(FILE_BYTES - 4096), "a file larger than the segment is not handed out");
                assertNull(z.broken());
            } finally {
                z.close();
            }
        }
        // A restart keeps the ready file and deletes a partial one (a crash while making it).
        Files.write(stockDir.resolve("zeroed-1.tmp"), new byte[4096]);
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults()); Arena arena = Arena.ofConfined()) {
            MemorySegment zeros = arena.allocate(256 * 1024, 4096);
            ZeroedSegments z = ZeroedSegments.create(engine, stockDir, 1, FILE_BYTES, zeros, timers);
            try {
                assertEquals(1, z.ready());
                assertEquals(List.of("zeroed-0.seg"), names(stockDir));
                Path target = dir.resolve("taken.log");
                // A taking log filling at 1 byte/s: the refill runs at the 4 MiB/s floor, so the 8 MiB replacement
                // takes 2 s, far longer than the quiet time after which a refill waits for a busy log.
                assertTrue(z.take(target, FILE_BYTES, 1));
                assertEquals(FILE_BYTES, Files.size(target));
                assertEquals(1, z.filesTaken());
                // Taking starts its replacement, under the next number; with no busy log writing it pauses.
                drive(engine, z::waitingForBusyLog, "the refill pausing while no busy log writes");
                assertEquals(0, z.ready());
                assertEquals(List.of("zeroed-2.tmp"), names(stockDir));
                // It goes on while a busy log writes.
                drive(engine, () -> {
                    z.busyLogWrote();
                    return z.ready() == 1;
                }, "the replacement");
                assertEquals(List.of("zeroed-2.seg"), names(stockDir));
                assertEquals(1, z.filesMade());
            } finally {
                z.close();
            }
        }
    }

    /**
     * A busy log rolls early into a zeroed file, keeps appending there, and every byte reads back after a
     * reopen; the zeroed segment's fdatasyncs report durability only after its directory is synced.
     */
    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void busyLogRollsIntoZeroedSegmentAndLosesNothing(IoBackend backend) throws Exception {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("seed " + seed);
        Random random = new Random(seed);
        LogConfig config = LogConfig.defaults().withSegmentBytes(2 * FILE_BYTES);
        Path logDir = dir.resolve("topic-0");
        java.io.ByteArrayOutputStream appended = new java.io.ByteArrayOutputStream();
        long[] durable = {-1};
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults()); Arena arena = Arena.ofConfined();
             ChunkPool writes = ChunkPool.allocate(64, 256 * 1024);
             ChunkPool reads = ChunkPool.allocate(4, config.readWindowBytes())) {
            MemorySegment zeros = arena.allocate(256 * 1024, 4096);
            ZeroedSegments z = ZeroedSegments.create(engine, dir.resolve("stock"), 1, FILE_BYTES, zeros, timers,
                ANY_2_MIB);
            Log[] out = new Log[1];
            // Wired as a LogManager wires it: the log is given the shard's stock when it opens.
            Log.open(engine, logDir, config, writes, reads, null, z, d -> durable[0] = d, (l, e) -> out[0] = l);
            drive(engine, () -> out[0] != null, "open");
            Log log = out[0];
            MemorySegment buf = arena.allocate(80 * 1024);
            long next = 0;
            // Past the busy size, until the stock is made and the log rolled into it, then 8 MiB more.
            long extraAfterRoll = 4L << 20;
            long bytesAfterRoll = 0;
            while (bytesAfterRoll < extraAfterRoll) {
                byte[] v = new byte[64 * 1024];
                random.nextBytes(v);
                BatchBuilder b = new BatchBuilder(buf, 0, next).leaderEpoch(3);
                b.add(1_700_000_000_000L, ("k" + next).getBytes(), v);
                long len = b.build();
                appended.write(buf.asSlice(0, len).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
                long r;
                while ((r = log.append(buf, 0, len, 3)) == Log.NO_MEMORY) {
                    engine.submitAndWait(1_000_000L);
                    timers.runDue();
                }
                assertEquals(next, r);
                next++;
                log.flush();
                engine.submitAndWait(0);
                timers.runDue();
                if (log.zeroedSegmentsTaken() > 0) {
                    bytesAfterRoll += len;
                }
            }
            long end = next;
            drive(engine, () -> durable[0] == end, "durable end");
            assertEquals(1, log.zeroedSegmentsTaken());
            List<String> files = names(logDir);
            assertTrue(files.stream().filter(n -> n.endsWith(".log")).count() >= 2, "segments: " + files);
            boolean[] closed = {false};
            log.close(() -> closed[0] = true);
            drive(engine, () -> closed[0], "close");
            z.close();
            drive(engine, z::idle, "stock idle");

            // Reopen (no stock installed now): every batch is there, in order, byte for byte.
            out[0] = null;
            Log.open(engine, logDir, config, writes, reads, d -> { }, (l, e) -> out[0] = l);
            drive(engine, () -> out[0] != null, "reopen");
            Log again = out[0];
            assertEquals(end, again.logEndOffset());
            assertArrayEquals(appended.toByteArray(), LogTestSupport.readAll(engine, again, 0, end));
            boolean[] closedAgain = {false};
            again.close(() -> closedAgain[0] = true);
            drive(engine, () -> closedAgain[0], "close again");
        }
    }

    /**
     * The stock reaches logs only through the shard's {@link LogManager} (explicit wiring, no registry): a log it
     * opens by name and a log it opens for an owner (as Raft's storage opens each group's) roll into zeroed files once
     * busy; the logs of a manager without a stock take none.
     */
    @Test
    void aLogManagerHandsItsStockToTheLogsItOpensAndOnlyToThem() throws Exception {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("seed " + seed);
        Random random = new Random(seed);
        LogConfig config = LogConfig.defaults().withSegmentBytes(2 * FILE_BYTES);
        // The engine is closed first (resources close in reverse): if the test fails with writes in flight, they
        // complete before the memory they write from goes away.
        try (Arena arena = Arena.ofConfined();
             ChunkPool writes = ChunkPool.allocate(64, 256 * 1024);
             ChunkPool reads = ChunkPool.allocate(4, config.readWindowBytes());
             IoEngine engine = IoEngine.create(IoBackend.AUTO, RingConfig.defaults())) {
            MemorySegment zeros = arena.allocate(256 * 1024, 4096);
            ZeroedSegments z = ZeroedSegments.create(engine, dir.resolve("stock"), 2, FILE_BYTES, zeros, timers,
                ANY_2_MIB);
            LogManager stocked = new LogManager(engine, dir.resolve("stocked"), writes, reads);
            stocked.useZeroedSegments(z);
            LogManager plain = new LogManager(engine, dir.resolve("plain"), writes, reads);
            Log[] out = new Log[3];
            stocked.open("named-0", config, d -> { }, (l, e) -> out[0] = l);
            stocked.openOwned(dir.resolve("owned-0"), config, d -> { }, (l, e) -> out[1] = l);
            plain.open("named-0", config, d -> { }, (l, e) -> out[2] = l);
            drive(engine, () -> out[0] != null && out[1] != null && out[2] != null, "open");
            MemorySegment buf = arena.allocate(80 * 1024);
            appendBusily(engine, stocked, out[0], buf, random, () -> out[0].zeroedSegmentsTaken() > 0);
            appendBusily(engine, stocked, out[1], buf, random, () -> out[1].zeroedSegmentsTaken() > 0);
            appendBusily(engine, plain, out[2], buf, random, () -> out[2].sizeBytes() >= FILE_BYTES);
            assertEquals(0, out[2].zeroedSegmentsTaken(), "a log of a manager without a stock takes no zeroed file");
            assertEquals(1, out[2].segmentCount());
            boolean[] closed = {false, false, false};
            stocked.closeAll(() -> closed[0] = true);
            out[1].close(() -> closed[1] = true); // an owned log is its owner's to close
            plain.closeAll(() -> closed[2] = true);
            drive(engine, () -> closed[0] && closed[1] && closed[2], "close");
            z.close();
            drive(engine, z::idle, "stock idle");
        }
    }

    /**
     * Appends 64 KiB batches to {@code log}, flushed by its manager's loop turn, until {@code stop} holds. Past 4 MiB
     * (the log is busy: the stock is being made) each append gives the loop 2 ms, so the stock's paced writes get
     * ahead without the log writing a lot meanwhile (pacing, not a timing check; the deadline only bounds a hang).
     */
    private void appendBusily(IoEngine engine, LogManager logs, Log log, MemorySegment buf, Random random,
                              BooleanSupplier stop) {
        long bytes = 0;
        byte[] value = new byte[64 * 1024];
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (!stop.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "still not done after " + bytes + " bytes: " + log);
            if (bytes >= (4L << 20)) {
                long until = System.nanoTime() + 2_000_000L;
                while (System.nanoTime() < until) {
                    logs.poll();
                    engine.submitAndWait(500_000L);
                    timers.runDue();
                }
            }
            random.nextBytes(value);
            BatchBuilder b = new BatchBuilder(buf, 0, 0).leaderEpoch(1);
            b.add(1_700_000_000_000L, "k".getBytes(), value);
            long len = b.build();
            while (log.append(buf, 0, len, 1) == Log.NO_MEMORY) {
                logs.poll();
                engine.submitAndWait(1_000_000L);
                timers.runDue();
            }
            logs.appended(log);
            logs.poll();
            engine.submitAndWait(0);
            timers.runDue();
            bytes += len;
        }
    }
}
