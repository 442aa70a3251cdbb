package dev.isthmus.log;

import dev.isthmus.uring.IoBackend;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.RingConfig;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Random;

/**
 * The child process of {@link LogCrashTest}: appends batches forever to the log in {@code args[0]} and prints
 * {@code DURABLE n} each time the durable end advances. Each batch's producerId is set to the base offset the
 * child expects it to get, so the parent can check content after the crash. Killed with SIGKILL by the parent.
 */
public final class CrashChild {
    private CrashChild() {
    }

    public static void main(String[] args) throws java.io.IOException {
        Path dir = Path.of(args[0]);
        long seed = Long.parseLong(args[1]);
        Random random = new Random(seed);
        LogConfig config = LogConfig.defaults().withSegmentBytes(1 << 20).withFallocateStep(256 * 1024);
        try (IoEngine engine = IoEngine.create(IoBackend.AUTO, RingConfig.defaults());
             ChunkPool writes = ChunkPool.allocate(64, 32 * 1024);
             ChunkPool reads = ChunkPool.allocate(2, config.readWindowBytes());
             Arena arena = Arena.ofConfined()) {
            // Zeroed segment files for the log as soon as a segment holds 256 KiB: crashes also land while one is
            // made, renamed into the log, and before its directory is synced.
            java.util.List<long[]> due = new java.util.ArrayList<>();
            java.util.List<Runnable> tasks = new java.util.ArrayList<>();
            ZeroedSegments stock = ZeroedSegments.create(engine, dir.resolveSibling(dir.getFileName() + "-zeroed"), 1, 1 << 20,
                arena.allocate(256 * 1024, 4096), (delayNs, task) -> {
                    due.add(new long[] {System.nanoTime() + delayNs});
                    tasks.add(task);
                }, new ZeroedSegments.Policy(256 * 1024, 0, 0));
            Runnable runTimers = () -> {
                for (int i = 0; i < tasks.size(); i++) {
                    if (due.get(i)[0] <= System.nanoTime()) {
                        due.remove(i);
                        tasks.remove(i--).run();
                    }
                }
            };
            Log[] log = new Log[1];
            Log.open(engine, dir, config, writes, reads, null, stock, durable -> {
                System.out.println("DURABLE " + durable);
                System.out.flush();
            }, (l, e) -> {
                if (e != null) {
                    throw e;
                }
                log[0] = l;
            });
            while (log[0] == null) {
                engine.submitAndWait(10_000_000L);
            }
            System.out.println("OPEN " + log[0].logEndOffset());
            System.out.flush();
            MemorySegment buf = arena.allocate(64 * 1024);
            long zeroedReported = 0;
            while (true) {
                int appends = 1 + random.nextInt(20);
                for (int i = 0; i < appends; i++) {
                    long expected = log[0].logEndOffset();
                    BatchBuilder b = new BatchBuilder(buf, 0, 0).producer(expected, (short) 0, 0);
                    int records = 1 + random.nextInt(10);
                    for (int r = 0; r < records; r++) {
                        byte[] value = new byte[random.nextInt(3000)];
                        random.nextBytes(value);
                        b.add(System.currentTimeMillis(), null, value);
                    }
                    int size = b.build();
                    while (log[0].append(buf, 0, size, 1) == Log.NO_MEMORY) {
                        engine.submitAndWait(1_000_000L);
                    }
                }
                log[0].flush();
                engine.submitAndWait(random.nextInt(3) == 0 ? 1_000_000L : 0);
                runTimers.run();
                if (log[0].zeroedSegmentsTaken() > zeroedReported) {
                    zeroedReported = log[0].zeroedSegmentsTaken();
                    System.out.println("ZEROED " + zeroedReported);
                    System.out.flush();
                }
            }
        }
    }
}
