package dev.isthmus.log;

import dev.isthmus.uring.IoBackend;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.RingConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Crash safety with a real process kill: a child JVM appends and reports durable offsets; it is killed with
 * SIGKILL after a random number of acknowledgements; after reopening, every acknowledged record is present,
 * intact (CRC) and has the content it was written with. Repeated on the same log, so recovery runs on logs
 * that were themselves recovered.
 */
class LogCrashTest {
    @TempDir
    Path dir;

    @Test
    void shouldKeepEveryAcknowledgedRecordAcrossKills() throws Exception {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("LogCrashTest seed " + seed + " (replay with -Disthmus.seed=" + seed + ")");
        Random random = new Random(seed);
        Path logDir = dir.resolve("crash-0");
        int rounds = Integer.getInteger("isthmus.crash.rounds", 6);
        long acknowledged = 0;
        long zeroedTaken = 0;
        for (int round = 0; round < rounds; round++) {
            int waitForAcks = 1 + random.nextInt(40);
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            ProcessBuilder pb = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-Xmx256m",
                "-cp", System.getProperty("java.class.path"), CrashChild.class.getName(), logDir.toString(),
                Long.toString(random.nextLong()));
            Path childErr = dir.resolve("child-" + round + ".err");
            pb.redirectError(childErr.toFile());
            Process child = pb.start();
            int acks = 0;
            long opened = -1;
            try (BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(),
                StandardCharsets.US_ASCII))) {
                String line;
                while (acks < waitForAcks && (line = out.readLine()) != null) {
                    if (line.startsWith("OPEN ")) {
                        opened = Long.parseLong(line.substring(5));
                        assertTrue(opened >= acknowledged, "round " + round + ": reopened at " + opened
                            + " below the acknowledged " + acknowledged + " (seed " + seed + ")");
                    } else if (line.startsWith("ZEROED ")) {
                        zeroedTaken++;
                    } else if (line.startsWith("DURABLE ")) {
                        acknowledged = Math.max(acknowledged, Long.parseLong(line.substring(8)));
                        acks++;
                    }
                }
                child.destroyForcibly(); // SIGKILL
                child.waitFor();
            }
            assertTrue(opened >= 0, "child never opened the log (seed " + seed + ", exit " + child.exitValue()
                + "); its stderr:\n" + Files.readString(childErr));
            verify(logDir, acknowledged, seed);
        }
        System.out.println("LogCrashTest: " + rounds + " kills, " + acknowledged + " records acknowledged, "
            + zeroedTaken + " segments started as zeroed files");
        assertTrue(zeroedTaken > 0, "no segment was a zeroed file: the crashes did not cover them (seed " + seed + ")");
    }

    /** Reopens the log and checks [0, acknowledged) batch by batch. */
    private void verify(Path logDir, long acknowledged, long seed) {
        LogConfig config = LogConfig.defaults().withSegmentBytes(1 << 20).withFallocateStep(256 * 1024);
        try (IoEngine engine = IoEngine.create(IoBackend.AUTO, RingConfig.defaults());
             ChunkPool writes = ChunkPool.allocate(8, 32 * 1024);
             ChunkPool reads = ChunkPool.allocate(2, config.readWindowBytes())) {
            Log[] log = new Log[1];
            RuntimeException[] err = new RuntimeException[1];
            boolean[] opened = {false};
            Log.open(engine, logDir, config, writes, reads, d -> { }, (l, e) -> {
                log[0] = l;
                err[0] = e;
                opened[0] = true;
            });
            drive(engine, () -> opened[0]);
            if (err[0] != null) {
                throw err[0];
            }
            assertTrue(log[0].logEndOffset() >= acknowledged, "log end " + log[0].logEndOffset()
                + " < acknowledged " + acknowledged + " (seed " + seed + ")");
            long next = 0;
            RecordBatch v = new RecordBatch();
            while (next < acknowledged) {
                List<byte[]> got = new ArrayList<>();
                long from = next;
                log[0].read(from, log[0].logEndOffset(), 1 << 20, new Log.ReadHandler() {
                    @Override
                    public void onRead(MemorySegment bytes, long firstOffset, long lastOffset) {
                        got.add(bytes.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
                    }

                    @Override
                    public void onError(LogException error) {
                        got.add(null);
                    }
                });
                drive(engine, () -> !got.isEmpty());
                byte[] bytes = got.get(0);
                assertTrue(bytes != null && bytes.length > 0, "no data at " + from + " (seed " + seed + ")");
                MemorySegment seg = MemorySegment.ofArray(bytes);
                long pos = 0;
                while (pos < bytes.length) {
                    v.wrap(seg, pos);
                    assertEquals(RecordBatch.Check.OK, v.check(bytes.length - pos, true), "seed " + seed);
                    assertEquals(next, v.baseOffset(), "offsets contiguous (seed " + seed + ")");
                    assertEquals(v.baseOffset(), v.producerId(), "content of batch " + next + " (seed " + seed + ")");
                    next = v.lastOffset() + 1;
                    pos += v.sizeInBytes();
                }
            }
            boolean[] closed = {false};
            log[0].close(() -> closed[0] = true);
            drive(engine, () -> closed[0]);
        }
    }

    private static void drive(IoEngine engine, java.util.function.BooleanSupplier done) {
        long deadline = System.nanoTime() + 120_000_000_000L; // a bound against hangs, not a timing check
        while (!done.getAsBoolean() && System.nanoTime() < deadline) {
            engine.submitAndWait(10_000_000L);
        }
        assertTrue(done.getAsBoolean(), "timed out");
    }
}
