package dev.isthmus.log;

import dev.isthmus.uring.IoBackend;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.RingConfig;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Many logs of one shard sharing a write-behind pool with far fewer chunks than logs (a broker shard hosts up to
 * 1000 partitions on 32 chunks). Every log must make progress: a log that is not writing lends its tail chunk, logs
 * refused for memory are served in turn and told so, and nothing a log wrote is lost when its tail is taken back.
 * The driver retries a refused log only when its listener hears {@code onSpaceAvailable}, as a Raft log does: a lost
 * wake-up shows as a hang.
 */
class ManyLogsTest {
    @TempDir
    Path dir;

    /** One log and what the driver knows about it. */
    static final class Writer implements Log.Listener {
        final int id;
        Log log;
        long durable;
        boolean waiting;
        int refusals;
        int wakeups;
        /** Batches appended, as stamped by the log (what a read must return). */
        final ByteArrayOutputStream appended = new ByteArrayOutputStream();
        MemorySegment pending;

        Writer(int id) {
            this.id = id;
        }

        @Override
        public void onDurable(long durableEndOffset) {
            assertTrue(durableEndOffset >= durable, "durability went backwards");
            durable = durableEndOffset;
        }

        @Override
        public void onSpaceAvailable() {
            wakeups++;
            waiting = false;
        }
    }

    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldMakeEveryLogDurableWhenLogsFarOutnumberWriteBehindChunks(IoBackend backend) {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("seed " + seed);
        Random random = new Random(seed);
        int logs = 100;
        int batchesPerLog = 5;
        int chunkBytes = 32 * 1024;
        // Small segments: rolls, whose sealing tails go back to the pool, happen along the way.
        LogConfig config = LogConfig.defaults().withSegmentBytes(128 * 1024).withFallocateStep(64 * 1024);
        // The engine is closed first: completions it delivers while closing may still touch the pools.
        try (ChunkPool writes = ChunkPool.allocate(8, chunkBytes);
             ChunkPool reads = ChunkPool.allocate(2, config.readWindowBytes());
             Arena arena = Arena.ofConfined();
             IoEngine engine = IoEngine.create(backend, RingConfig.defaults())) {
            LogManager manager = new LogManager(engine, dir, writes, reads);
            Writer[] w = open(engine, manager, config, logs);
            for (int round = 0; round < 2; round++) {
                int[] left = new int[logs];
                java.util.Arrays.fill(left, batchesPerLog);
                int[] order = new int[logs];
                for (int i = 0; i < logs; i++) {
                    order[i] = i;
                }
                long deadline = System.nanoTime() + 120_000_000_000L; // a bound against hangs, not a timing check
                int remaining = logs * batchesPerLog;
                while (remaining > 0 && System.nanoTime() < deadline) {
                    shuffle(order, random);
                    for (int i : order) {
                        Writer x = w[i];
                        if (left[i] == 0 || x.waiting) {
                            continue;
                        }
                        if (x.pending == null) {
                            // Mostly small batches, some larger than a chunk.
                            int valueBytes = random.nextInt(8) == 0 ? chunkBytes + random.nextInt(chunkBytes)
                                : 10 + random.nextInt(3000);
                            x.pending = batch(arena, x.id, batchesPerLog - left[i], valueBytes, random);
                        }
                        long r = x.log.append(x.pending, 0, x.pending.byteSize(), 3);
                        if (r == Log.NO_MEMORY) {
                            x.waiting = true;
                            x.refusals++;
                            continue;
                        }
                        x.appended.writeBytes(x.pending.toArray(ValueLayout.JAVA_BYTE));
                        x.pending = null;
                        left[i]--;
                        remaining--;
                        manager.appended(x.log);
                    }
                    manager.poll();
                    engine.submitAndWait(1_000_000L);
                }
                List<Integer> stuck = new ArrayList<>();
                for (int i = 0; i < logs; i++) {
                    if (left[i] > 0) {
                        stuck.add(i);
                    }
                }
                assertEquals(List.of(), stuck, "logs that could not append (pool: " + writes.free() + " free, "
                    + writes.idle() + " idle, " + writes.waiting() + " waiting)");
                LogTestSupport.drive(engine, () -> {
                    manager.poll();
                    for (Writer x : w) {
                        if (x.durable < x.log.logEndOffset()) {
                            return false;
                        }
                    }
                    return true;
                }, "every log durable");
                if (round == 0) {
                    int refusals = 0;
                    int wakeups = 0;
                    for (Writer x : w) {
                        refusals += x.refusals;
                        wakeups += x.wakeups;
                        assertFalse(x.log.waitingForMemory(), "log " + x.id + " still in line");
                    }
                    assertTrue(refusals > 0, "the pool was short (else this test tests nothing)");
                    assertEquals(refusals, wakeups, "every refused log was told when to retry");
                    assertTrue(writes.reclaimsTotal() > 0, "idle tails were lent and taken back");
                    System.out.println(backend + ": " + refusals + " refusals, " + writes.reclaimsTotal()
                        + " tails taken back, " + writes.waitsTotal() + " waits, longest "
                        + writes.waitNsMax() / 1_000_000 + " ms");
                    // Close every log and open them again: recovery's appenders over the tails take no chunk, and
                    // the next round appends after them.
                    boolean[] closed = {false};
                    manager.closeAll(() -> closed[0] = true);
                    LogTestSupport.drive(engine, () -> closed[0], "close");
                    assertEquals(8, writes.free(), "every chunk back after close");
                    Writer[] again = open(engine, manager, config, logs);
                    for (int i = 0; i < logs; i++) {
                        again[i].appended.writeBytes(w[i].appended.toByteArray());
                        again[i].durable = again[i].log.durableEndOffset();
                        w[i] = again[i];
                    }
                }
            }
            for (Writer x : w) {
                byte[] read = LogTestSupport.readAll(engine, x.log, 0, x.log.logEndOffset());
                assertArrayEquals(x.appended.toByteArray(), read, "log " + x.id);
            }
            boolean[] closed = {false};
            manager.closeAll(() -> closed[0] = true);
            LogTestSupport.drive(engine, () -> closed[0], "close");
            assertEquals(8, writes.free(), "chunks leaked");
        }
    }

    private Writer[] open(IoEngine engine, LogManager manager, LogConfig config, int logs) {
        Writer[] w = new Writer[logs];
        int[] opened = {0};
        for (int i = 0; i < logs; i++) {
            Writer x = new Writer(i);
            w[i] = x;
            manager.open("t-" + i, config, x, (log, error) -> {
                if (error != null) {
                    throw error;
                }
                x.log = log;
                opened[0]++;
            });
        }
        LogTestSupport.drive(engine, () -> opened[0] == logs, "open");
        return w;
    }

    private static MemorySegment batch(Arena arena, int log, int n, int valueBytes, Random random) {
        MemorySegment buf = arena.allocate(valueBytes + 256L);
        byte[] value = new byte[valueBytes];
        random.nextBytes(value);
        int size = new BatchBuilder(buf, 0, 0).add(1_700_000_000_000L, ("log-" + log + "-" + n).getBytes(), value)
            .build();
        return buf.asSlice(0, size);
    }

    private static void shuffle(int[] a, Random random) {
        for (int i = a.length - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
}
