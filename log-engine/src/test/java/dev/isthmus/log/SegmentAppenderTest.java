package dev.isthmus.log;

import dev.isthmus.uring.DmaFile;
import dev.isthmus.uring.IoBackend;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.RingConfig;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SegmentAppenderTest {
    @TempDir
    Path dir;

    static final class Recorder implements SegmentAppender.Listener {
        long durable = -1;
        int durableCalls;
        String failure;
        int spaceCalls;

        @Override
        public void onDurable(long d) {
            assertTrue(d >= durable, "durable went backwards");
            durable = d;
            durableCalls++;
        }

        @Override
        public void onFailure(String what, int errno) {
            failure = what;
        }

        @Override
        public void onSpaceAvailable() {
            spaceCalls++;
        }
    }

    static void drive(IoEngine engine, BooleanSupplier done) {
        long deadline = System.nanoTime() + 120_000_000_000L; // a bound against hangs, not a timing check
        while (!done.getAsBoolean() && System.nanoTime() < deadline) {
            engine.submitAndWait(10_000_000L);
        }
        assertTrue(done.getAsBoolean(), "timed out");
    }

    /** Chunks of 1 MiB and more once confused a full chunk's write completion with an fdatasync's. */
    @ParameterizedTest
    @CsvSource({"IO_URING, 32", "PORTABLE, 32", "IO_URING, 1024", "IO_URING, 2048"})
    void shouldMakeEveryAppendedByteDurableWithFewSyncs(IoBackend backend, int chunkKiB) throws Exception {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("seed " + seed);
        Random random = new Random(seed);
        Path path = dir.resolve("00000000000000000000.log");
        byte[] expected = new byte[8 << 20];
        random.nextBytes(expected);
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             Arena arena = Arena.ofConfined();
             ChunkPool pool = ChunkPool.allocate(16, chunkKiB * 1024)) {
            DmaFile file = engine.openDmaFile(path, true);
            Recorder rec = new Recorder();
            SegmentAppender appender = new SegmentAppender(file, pool, rec, 0, MemorySegment.NULL, 0, 4 << 20, 64 << 20);
            MemorySegment src = arena.allocate(expected.length);
            MemorySegment.copy(expected, 0, src, ValueLayout.JAVA_BYTE, 0, expected.length);
            long pos = 0;
            int flushes = 0;
            while (pos < expected.length) {
                int n = (int) Math.min(expected.length - pos, 1 + random.nextInt(random.nextBoolean() ? 200 : 70_000));
                while (!appender.canAppend(n)) {
                    engine.submitAndWait(10_000_000L);
                }
                assertEquals(pos, appender.append(src, pos, n));
                pos += n;
                if (random.nextInt(4) == 0) {
                    appender.flush();
                    flushes++;
                }
                if (random.nextInt(8) == 0) {
                    engine.submitAndWait(0);
                }
            }
            appender.flush();
            long end = pos;
            drive(engine, () -> rec.durable == end);
            assertEquals(null, rec.failure);
            assertTrue(rec.durableCalls <= flushes + 1, rec.durableCalls + " syncs for " + flushes + " flushes");
            System.out.println(backend + ": " + flushes + " flushes, " + rec.durableCalls + " fdatasyncs");
            drive(engine, () -> appender.inFlight() == 0);
            appender.releaseTail();
            assertEquals(16, pool.available(), "chunks leaked");
            file.truncate(end);
            file.close();
        }
        assertArrayEquals(expected, Files.readAllBytes(path));
    }

    /**
     * Appends keep coming, each flushed while the previous tail write is still in flight: durability must
     * advance anyway (an fdatasync that waited for everything flushed would never start while the stream lasts).
     */
    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldBecomeDurableWhileAppendsKeepComing(IoBackend backend) throws Exception {
        Path path = dir.resolve("stream.log");
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             Arena arena = Arena.ofConfined();
             ChunkPool pool = ChunkPool.allocate(8, 64 * 1024)) {
            DmaFile file = engine.openDmaFile(path, true);
            Recorder rec = new Recorder();
            SegmentAppender appender = new SegmentAppender(file, pool, rec, 0, MemorySegment.NULL, 0, 0, 1 << 30);
            MemorySegment src = arena.allocate(100);
            src.fill((byte) 42);
            long deadline = System.nanoTime() + 120_000_000_000L; // a bound against hangs, not a timing check
            // One append and flush before every completion handled: from the second fdatasync on, whenever a tail
            // write completes, newer bytes are already waiting for the next one.
            while (rec.durableCalls < 3 && System.nanoTime() < deadline) {
                if (appender.canAppend(src.byteSize())) {
                    appender.append(src, 0, src.byteSize());
                    appender.flush();
                }
                engine.submitAndWait(10_000_000L);
            }
            assertTrue(rec.durableCalls >= 3, "durability stopped at " + rec.durable + " while appends kept coming (at "
                + appender.position() + ")");
            appender.flush();
            long end = appender.position();
            drive(engine, () -> rec.durable == end);
            drive(engine, () -> appender.inFlight() == 0);
            assertEquals(null, rec.failure);
            appender.releaseTail();
            assertEquals(8, pool.available(), "chunks leaked");
            file.truncate(end);
            file.close();
            byte[] bytes = Files.readAllBytes(path);
            assertEquals(end, bytes.length);
            for (byte b : bytes) {
                assertEquals(42, b);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldContinueAnUnalignedTail(IoBackend backend) throws Exception {
        Path path = dir.resolve("tail.log");
        byte[] first = new byte[10_000];
        byte[] second = new byte[50_000];
        new Random(1).nextBytes(first);
        new Random(2).nextBytes(second);
        Files.write(path, first);
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             Arena arena = Arena.ofConfined();
             ChunkPool pool = ChunkPool.allocate(4, 16 * 1024)) {
            DmaFile file = engine.openDmaFile(path, false);
            Recorder rec = new Recorder();
            MemorySegment tail = arena.allocate(first.length);
            MemorySegment.copy(first, 0, tail, ValueLayout.JAVA_BYTE, 0, first.length);
            SegmentAppender appender = new SegmentAppender(file, pool, rec, first.length, tail, first.length, 0, 1 << 30);
            MemorySegment src = arena.allocate(second.length);
            MemorySegment.copy(second, 0, src, ValueLayout.JAVA_BYTE, 0, second.length);
            appender.append(src, 0, second.length);
            appender.flush();
            drive(engine, () -> rec.durable == first.length + second.length);
            drive(engine, () -> appender.inFlight() == 0);
            assertFalse(appender.failed());
            appender.releaseTail();
            file.truncate(appender.position());
            file.close();
        }
        byte[] all = Files.readAllBytes(path);
        byte[] expected = new byte[first.length + second.length];
        System.arraycopy(first, 0, expected, 0, first.length);
        System.arraycopy(second, 0, expected, first.length, second.length);
        assertArrayEquals(expected, all);
    }

    /** A new appender over an existing tail takes no chunk until it appends: a shard reopens more logs than chunks. */
    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldTakeNoChunkForAnExistingTailUntilTheFirstAppend(IoBackend backend) throws Exception {
        Path path = dir.resolve("reopened.log");
        byte[] first = new byte[10_000];
        new Random(3).nextBytes(first);
        Files.write(path, first);
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             Arena arena = Arena.ofConfined();
             ChunkPool pool = ChunkPool.allocate(2, 16 * 1024)) {
            DmaFile file = engine.openDmaFile(path, false);
            MemorySegment tail = arena.allocate(first.length);
            MemorySegment.copy(first, 0, tail, ValueLayout.JAVA_BYTE, 0, first.length);
            SegmentAppender[] many = new SegmentAppender[5];
            for (int i = 0; i < many.length; i++) {
                many[i] = new SegmentAppender(file, pool, new Recorder(), first.length, tail, first.length, 0, 1 << 30);
            }
            assertEquals(2, pool.free(), "five appenders over a tail, no chunk taken");
            assertFalse(many[0].holdsTail());
            file.close();
        }
    }

    /**
     * Appenders sharing a pool with fewer chunks than appenders: each one's written tail is lent to the pool and
     * taken back by the others, and the bytes of its partial last block are restored for its next write. Every byte
     * of every file must read back as appended (a lost or stale block would show).
     */
    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldKeepEveryByteWhenIdleTailsAreTakenBackByOtherAppenders(IoBackend backend) throws Exception {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("seed " + seed);
        Random random = new Random(seed);
        int files = 5;
        int chunk = 16 * 1024;
        byte[][] expected = new byte[files][256 * 1024];
        for (byte[] e : expected) {
            random.nextBytes(e);
        }
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             Arena arena = Arena.ofConfined();
             ChunkPool pool = ChunkPool.allocate(3, chunk)) {
            DmaFile[] dma = new DmaFile[files];
            Recorder[] rec = new Recorder[files];
            SegmentAppender[] app = new SegmentAppender[files];
            MemorySegment[] src = new MemorySegment[files];
            long[] pos = new long[files];
            for (int i = 0; i < files; i++) {
                dma[i] = engine.openDmaFile(dir.resolve("f" + i + ".log"), true);
                rec[i] = new Recorder();
                app[i] = new SegmentAppender(dma[i], pool, rec[i], 0, MemorySegment.NULL, 0, 0, 1 << 30);
                src[i] = arena.allocate(expected[i].length);
                MemorySegment.copy(expected[i], 0, src[i], ValueLayout.JAVA_BYTE, 0, expected[i].length);
            }
            int appends = 0;
            while (true) {
                int i = random.nextInt(files);
                if (pos[i] == expected[i].length) {
                    boolean all = true;
                    for (int k = 0; k < files; k++) {
                        all &= pos[k] == expected[k].length;
                    }
                    if (all) {
                        break;
                    }
                    continue;
                }
                // Sizes that end anywhere: mid-block, on a block boundary, on a chunk boundary.
                int n = switch (random.nextInt(4)) {
                    case 0 -> 1 + random.nextInt(300);
                    case 1 -> 4096 - (int) (pos[i] % 4096);
                    case 2 -> chunk - (int) (pos[i] % chunk);
                    default -> 1 + random.nextInt(chunk + chunk / 2);
                };
                n = (int) Math.min(n, expected[i].length - pos[i]);
                SegmentAppender a = app[i];
                int len = n;
                // The others' unwritten tails are not lendable: write them out (as a log manager's flush would).
                drive(engine, () -> {
                    if (a.canAppend(len)) {
                        return true;
                    }
                    for (SegmentAppender x : app) {
                        x.flush();
                    }
                    return false;
                });
                assertEquals(pos[i], a.append(src[i], pos[i], n));
                pos[i] += n;
                appends++;
                if (random.nextInt(3) > 0) {
                    a.flush();
                }
                if (random.nextBoolean()) {
                    engine.submitAndWait(0);
                }
            }
            for (int i = 0; i < files; i++) {
                app[i].flush();
                int k = i;
                drive(engine, () -> rec[k].durable == expected[k].length && app[k].inFlight() == 0);
                assertEquals(null, rec[i].failure);
                app[i].releaseTail();
                dma[i].truncate(expected[i].length);
                dma[i].close();
            }
            assertTrue(pool.reclaimsTotal() > 0, "idle tails were taken back (" + appends + " appends)");
            assertEquals(3, pool.free(), "chunks leaked");
            System.out.println(backend + ": " + appends + " appends, " + pool.reclaimsTotal() + " tails taken back");
        }
        for (int i = 0; i < files; i++) {
            assertArrayEquals(expected[i], Files.readAllBytes(dir.resolve("f" + i + ".log")), "file " + i);
        }
    }
}
