package dev.isthmus.bench;

import dev.isthmus.log.BatchBuilder;
import dev.isthmus.log.ChunkPool;
import dev.isthmus.log.Log;
import dev.isthmus.log.LogConfig;
import dev.isthmus.uring.IoBackend;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.RingConfig;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Durable appends: one benchmark operation is one batch appended and durable. Shapes: 1 KiB records in
 * batches of 1, 16, 256 and 1024 records, and one 1 MiB record.
 *
 * <ul>
 * <li>{@code isthmus}: the log engine with up to {@code inflight} appends outstanding (as many producers
 *     would have); the loop flushes once per turn, so appends waiting together share one fdatasync.</li>
 * <li>{@code filechannel}: what a simple log does: {@code FileChannel.write} then {@code force(false)} per
 *     append.</li>
 * </ul>
 * Files live in {@code -Disthmus.bench.dir} (default java.io.tmpdir).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx1g"})
public class LogAppendBench implements Log.Listener {

    @Param({"1", "16", "256", "1024", "1MiB"})
    public String shape;

    @Param({"isthmus", "filechannel"})
    public String impl;

    @Param({"64"})
    public int inflight;

    /** Write-behind chunk size in KiB. */
    @Param({"256"})
    public int chunkKiB;

    private Path dir;
    private IoEngine engine;
    private ChunkPool writes;
    private ChunkPool reads;
    private Log log;
    private Arena arena;
    private MemorySegment batch;
    private int batchBytes;
    private long[] pendingLast;
    private int pendingHead;
    private int pendingTail;
    private long durable;
    private int completed;
    private FileChannel channel;
    private ByteBuffer channelBuffer;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        dir = Files.createTempDirectory(Path.of(System.getProperty("isthmus.bench.dir",
            System.getProperty("java.io.tmpdir"))), "isthmus-logbench-");
        arena = Arena.ofShared();
        int records;
        int recordBytes;
        if (shape.equals("1MiB")) {
            records = 1;
            recordBytes = 1 << 20;
        } else {
            records = Integer.parseInt(shape);
            recordBytes = 1024;
        }
        MemorySegment buf = arena.allocate((long) records * (recordBytes + 64) + 256, 4096);
        BatchBuilder b = new BatchBuilder(buf, 0, 0);
        Random random = new Random(1);
        byte[] value = new byte[recordBytes];
        random.nextBytes(value);
        for (int i = 0; i < records; i++) {
            b.add(1_700_000_000_000L + i, null, value);
        }
        batchBytes = b.build();
        batch = buf.asSlice(0, batchBytes);
        if (impl.equals("isthmus")) {
            LogConfig config = LogConfig.defaults().withSegmentBytes(1L << 30).withRetention(-1, -1).withMaxBatchBytes(2 << 20);
            engine = IoEngine.create(IoBackend.AUTO, RingConfig.defaults());
            int chunk = chunkKiB * 1024;
            writes = ChunkPool.allocate((int) Math.max(64, 8L * batchBytes / chunk + 8), chunk);
            reads = ChunkPool.allocate(2, config.readWindowBytes());
            Log[] out = new Log[1];
            Log.open(engine, dir.resolve("log"), config, writes, reads, this, (l, e) -> {
                if (e != null) {
                    throw e;
                }
                out[0] = l;
            });
            while (out[0] == null) {
                engine.submitAndWait(1_000_000L);
            }
            log = out[0];
            pendingLast = new long[Integer.highestOneBit(inflight) << 1];
        } else {
            channel = FileChannel.open(dir.resolve("log"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            channelBuffer = batch.asByteBuffer();
        }
    }

    @Override
    public void onDurable(long durableEndOffset) {
        durable = durableEndOffset;
        while (pendingHead != pendingTail && pendingLast[pendingHead & (pendingLast.length - 1)] < durable) {
            pendingHead++;
            completed++;
        }
    }

    /** One batch appended and durable. */
    @Benchmark
    public int append() throws IOException {
        if (channel != null) {
            channelBuffer.clear();
            while (channelBuffer.hasRemaining()) {
                channel.write(channelBuffer);
            }
            channel.force(false);
            return 1;
        }
        while (completed == 0) {
            boolean appended = false;
            while (pendingTail - pendingHead < inflight) {
                // The batch buffer is reused: the log copies it into its write-behind chunks.
                long base = log.append(batch, 0, batchBytes, 1);
                if (base == Log.NO_MEMORY) {
                    break;
                }
                pendingLast[pendingTail++ & (pendingLast.length - 1)] = log.logEndOffset() - 1;
                appended = true;
            }
            if (appended) {
                log.flush();
            }
            engine.submitAndWait(completed == 0 ? 1_000_000_000L : 0);
        }
        completed--;
        return completed;
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        if (channel != null) {
            channel.close();
        } else {
            boolean[] closed = {false};
            log.close(() -> closed[0] = true);
            while (!closed[0]) {
                engine.submitAndWait(1_000_000L);
            }
            engine.close();
            writes.close();
            reads.close();
        }
        arena.close();
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
