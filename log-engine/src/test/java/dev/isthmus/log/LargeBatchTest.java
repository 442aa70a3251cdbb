package dev.isthmus.log;

import dev.isthmus.arena.ArenaConfig;
import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.uring.IoBackend;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.RingConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Batches far larger than the read windows (16 MiB and 64 MiB against 1 MiB windows): appended, made durable,
 * read back through the batch cache, from the disk into the cache, through the window reads (Raft's and the
 * producer-state rebuild's path), after a clean and an unclean restart (recovery validates each one), and cut by
 * a suffix truncation. When the memory for such a read cannot be had the read fails with NO_MEMORY and recovery
 * refuses to open rather than cutting a sound segment.
 */
@ExtendWith(ArenaLeakCheck.class)
class LargeBatchTest {
    private static final int MIB = 1 << 20;
    @TempDir
    Path dir;
    IoEngine engine;
    ChunkPool writes;
    ChunkPool reads;
    MemoryArena arena;
    BatchCache cache;
    long durable = -1;
    /** 256 MiB segments, batches up to 72 MiB; the read windows stay those of a default (1 MiB) batch. */
    final LogConfig config = LogConfig.defaults().withSegmentBytes(256L * MIB).withMaxBatchBytes(72 * MIB);

    @BeforeEach
    void setUp() {
        engine = IoEngine.create(IoBackend.AUTO, RingConfig.defaults());
        writes = ChunkPool.allocate(80 * 4, 256 * 1024); // 80 MiB: a 64 MiB batch is copied whole
        reads = ChunkPool.allocate(4, LogConfig.defaults().readWindowBytes());
        arena = MemoryArena.create(ArenaConfig.of(512L * MIB));
        cache = new BatchCache(arena);
    }

    @AfterEach
    void tearDown() {
        engine.close();
        writes.close();
        reads.close();
        arena.checkNoLeaks();
        arena.close();
    }

    void drive(BooleanSupplier done, String what) {
        long deadline = System.nanoTime() + 120_000_000_000L; // a bound against hangs, not a timing check
        while (!done.getAsBoolean() && System.nanoTime() < deadline) {
            engine.submitAndWait(10_000_000L);
        }
        assertTrue(done.getAsBoolean(), "timed out: " + what);
    }

    Log open(BatchCache c) {
        Log[] out = new Log[1];
        RuntimeException[] err = new RuntimeException[1];
        boolean[] called = {false};
        Log.open(engine, dir.resolve("big-0"), config, writes, reads, c, d -> durable = d, (log, e) -> {
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

    void close(Log log) {
        boolean[] done = {false};
        log.close(() -> done[0] = true);
        drive(() -> done[0], "close");
    }

    /** A batch of {@code records} records of {@code valueBytes} each, the value bytes telling tag and index. */
    static byte[] batch(int records, int tag, int valueBytes) {
        MemorySegment buf = MemorySegment.ofArray(new byte[records * (valueBytes + 64) + 128]);
        BatchBuilder b = new BatchBuilder(buf, 0, 0);
        for (int i = 0; i < records; i++) {
            byte[] v = new byte[valueBytes];
            Arrays.fill(v, (byte) (tag * 31 + i));
            v[0] = (byte) tag;
            b.add(1_700_000_000_000L + tag, ("key-" + tag + "-" + i).getBytes(), v);
        }
        int size = b.build();
        return Arrays.copyOf(buf.toArray(ValueLayout.JAVA_BYTE), size);
    }

    /** The batch as the log stores it: base offset and leader epoch stamped (outside the CRC). */
    static byte[] stamped(byte[] batch, long base, int epoch) {
        byte[] s = batch.clone();
        ByteBuffer.wrap(s).putLong(0, base).putInt(12, epoch);
        return s;
    }

    long append(Log log, byte[] bytes) {
        MemorySegment seg = MemorySegment.ofArray(bytes.clone());
        long r;
        while ((r = log.append(seg, 0, bytes.length, 7)) == Log.NO_MEMORY) {
            log.flush();
            engine.submitAndWait(1_000_000L);
        }
        return r;
    }

    /** One batch read through the chain API (cache, or disk into the cache). */
    byte[] chainRead(Log log, long offset) {
        byte[][] out = new byte[1][];
        LogException[] err = new LogException[1];
        log.read(offset, log.logEndOffset(), 1, new Log.ChainReadHandler() {
            @Override
            public void onRead(IoBuf batches, long firstOffset, long lastOffset) {
                out[0] = batches.toByteArray();
                batches.release();
            }

            @Override
            public void onError(LogException error) {
                err[0] = error;
            }
        });
        drive(() -> out[0] != null || err[0] != null, "chain read at " + offset);
        if (err[0] != null) {
            throw err[0];
        }
        return out[0];
    }

    /** One batch read through a read window (the form Raft and the producer-state rebuild use). */
    byte[] windowRead(Log log, long offset) {
        byte[][] out = new byte[1][];
        LogException[] err = new LogException[1];
        log.read(offset, log.logEndOffset(), 1, new Log.ReadHandler() {
            @Override
            public void onRead(MemorySegment bytes, long firstOffset, long lastOffset) {
                out[0] = bytes.toArray(ValueLayout.JAVA_BYTE);
            }

            @Override
            public void onError(LogException error) {
                err[0] = error;
            }
        });
        drive(() -> out[0] != null || err[0] != null, "window read at " + offset);
        if (err[0] != null) {
            throw err[0];
        }
        return out[0];
    }

    /** Appends small, 16 MiB, small, 64 MiB, small; waits until durable; returns the stored bytes per batch. */
    List<byte[]> fill(Log log, List<Long> bases) {
        byte[][] batches = {batch(3, 1, 100), batch(16, 2, MIB), batch(2, 3, 300), batch(64, 4, MIB), batch(1, 5, 10)};
        List<byte[]> stored = new ArrayList<>();
        for (byte[] b : batches) {
            long base = append(log, b);
            bases.add(base);
            stored.add(stamped(b, base, 7));
        }
        log.flush();
        drive(() -> durable == log.logEndOffset(), "durable");
        assertTrue(stored.get(1).length > 16 * MIB && stored.get(3).length > 64 * MIB);
        return stored;
    }

    void assertAllReadable(Log log, List<Long> bases, List<byte[]> stored, boolean viaCache) {
        for (int i = 0; i < bases.size(); i++) {
            assertArrayEquals(stored.get(i), windowRead(log, bases.get(i)), "window read of batch " + i);
            if (viaCache) {
                assertArrayEquals(stored.get(i), chainRead(log, bases.get(i)), "chain read of batch " + i);
            }
        }
    }

    @Test
    void shouldAppendAndReadBackBatchesOf16And64MiBWithReadWindowsOf1MiB() throws Exception {
        List<Long> bases = new ArrayList<>();
        Log log = open(cache);
        List<byte[]> stored = fill(log, bases);
        assertAllReadable(log, bases, stored, true); // appended batches are in the cache
        cache.evict(Long.MAX_VALUE);
        assertAllReadable(log, bases, stored, true); // now from the disk
        // A read from inside the large batch returns the whole batch.
        assertArrayEquals(stored.get(3), windowRead(log, bases.get(3) + 40));
        close(log);

        // As after a crash: recovery validates every batch of the segment, the large ones included.
        Files.delete(dir.resolve("big-0").resolve(Log.CLEAN_SHUTDOWN));
        long size = Files.size(dir.resolve("big-0").resolve(Segment.fileName(0, ".log")));
        log = open(cache);
        assertEquals(bases.get(4) + 1, log.logEndOffset());
        assertEquals(size, Files.size(dir.resolve("big-0").resolve(Segment.fileName(0, ".log"))), "nothing cut");
        assertAllReadable(log, bases, stored, false);

        // Suffix truncation (Raft) finds batch boundaries past and at the large batches.
        RuntimeException[] done = {null};
        boolean[] called = {false};
        log.truncateSuffix(bases.get(4), e -> {
            done[0] = e;
            called[0] = true;
        });
        drive(() -> called[0], "truncate after the 64 MiB batch");
        assertNull(done[0]);
        assertEquals(bases.get(4), log.logEndOffset());
        called[0] = false;
        log.truncateSuffix(bases.get(3), e -> {
            done[0] = e;
            called[0] = true;
        });
        drive(() -> called[0], "truncate at the 64 MiB batch");
        assertNull(done[0]);
        assertEquals(bases.get(3), log.logEndOffset());
        assertArrayEquals(stored.get(1), windowRead(log, bases.get(1)));
        long next = append(log, batch(1, 6, 10));
        assertEquals(bases.get(3), next);
        close(log);
    }

    @Test
    void shouldFailAReadAndRefuseToRecoverRatherThanCutWhenMemoryForALargeBatchIsShort() throws Exception {
        List<Long> bases = new ArrayList<>();
        Log log = open(cache);
        List<byte[]> stored = fill(log, bases);
        close(log);
        Files.delete(dir.resolve("big-0").resolve(Log.CLEAN_SHUTDOWN));
        // As after a crash before any recovery point was recorded (one is, past the 64 MiB batch): recovery then
        // validates the segment from its start, through the large batch.
        Files.deleteIfExists(dir.resolve("big-0").resolve(RecoveryPoint.FILE));
        Path segment = dir.resolve("big-0").resolve(Segment.fileName(0, ".log"));
        long size = Files.size(segment);

        // A shard with 64 MiB of memory: its batch cache may take 32 MiB, not a 64 MiB batch's buffer.
        try (MemoryArena smallArena = MemoryArena.create(ArenaConfig.of(64L * MIB))) {
            BatchCache smallCache = new BatchCache(smallArena);
            LogException refused = null;
            try {
                open(smallCache);
            } catch (LogException e) {
                refused = e;
            }
            assertNotNull(refused, "recovery must not open the log without reading the 64 MiB batch");
            assertEquals(LogException.Kind.NO_MEMORY, refused.kind());
            assertTrue(refused.getMessage().contains("larger than the read windows"), refused.getMessage());
            assertEquals(size, Files.size(segment), "the segment is not cut");
            smallArena.checkNoLeaks();
        }
        log = open(cache); // with the memory, the same log opens whole
        assertEquals(bases.get(4) + 1, log.logEndOffset());
        assertAllReadable(log, bases, stored, false);
        close(log);

        try (MemoryArena smallArena = MemoryArena.create(ArenaConfig.of(64L * MIB))) {
            BatchCache smallCache = new BatchCache(smallArena);
            Log small = open(smallCache); // a clean open reads no batch
            LogException[] err = {null};
            small.read(bases.get(3), small.logEndOffset(), 1, new Log.ReadHandler() {
                @Override
                public void onRead(MemorySegment bytes, long firstOffset, long lastOffset) {
                    throw new AssertionError("read a 64 MiB batch without the memory for it");
                }

                @Override
                public void onError(LogException error) {
                    err[0] = error;
                }
            });
            drive(() -> err[0] != null, "refused read");
            assertEquals(LogException.Kind.NO_MEMORY, err[0].kind());
            assertArrayEquals(stored.get(1), windowRead(small, bases.get(1)), "a 16 MiB batch still fits");
            close(small);
            smallArena.checkNoLeaks();
        }
    }
}
