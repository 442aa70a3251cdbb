package dev.isthmus.bench;

import dev.isthmus.arena.ArenaConfig;
import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.log.BatchBuilder;
import dev.isthmus.log.BatchCache;
import dev.isthmus.log.ChunkPool;
import dev.isthmus.log.Log;
import dev.isthmus.log.LogConfig;
import dev.isthmus.log.LogManager;
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
 * batches of 1, 16, 256 and 1024 records, and one 1 MiB record (MB/s = ops/s for that shape).
 *
 * <ul>
 * <li>{@code isthmus}: the log engine, the batch in contiguous memory, with up to {@code inflight} appends
 *     outstanding (as many producers would have); the loop flushes once per turn, so appends waiting together
 *     share one fdatasync.</li>
 * <li>{@code iobuf}: the same through {@code Log.append(IoBuf, int)}, the batch an arena chain of 128 KiB
 *     fragments (as the network delivers it), on a log with a {@link BatchCache} that also caches every
 *     append (the broker's configuration: one more copy per append, none for the 1 MiB shape, whose chain the
 *     cache shares). The benchmark appends the same chain again and again, re-stamping bytes the cache
 *     shares; nothing reads them here, but a real caller appends each chain once.</li>
 * <li>{@code filechannel}: what a simple log does: {@code FileChannel.write} then {@code force(false)} per
 *     append.</li>
 * </ul>
 * Files live in {@code -Disthmus.bench.dir} (default java.io.tmpdir); segments are 1 GiB, fallocated ahead in
 * {@code fallocateMiB} steps, and 4 GiB of retention bounds the disk use (the FileChannel file wraps at 4 GiB).
 * Check allocation with {@code -prof gc}: the only heap allocation of the segment path is the sparse index's
 * growth (memory the log keeps, about 2 bytes per KiB appended); the chain path adds the cache's fragment
 * objects (one set per 128 KiB cached).
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

    @Param({"isthmus", "iobuf", "filechannel"})
    public String impl;

    @Param({"64"})
    public int inflight;

    /** Write-behind chunk size in KiB. */
    @Param({"256"})
    public int chunkKiB;

    /** Write-behind memory in MiB. */
    @Param({"32"})
    public int writeBehindMiB;

    /** fallocate step in MiB (0: never). */
    @Param({"32"})
    public int fallocateMiB;

    /**
     * Where the segments' bytes land. {@code fresh}: fallocated space, as a log grows (every fdatasync also makes
     * the extent conversions durable). {@code zeroed}: after its first append the log rolls into segment files
     * written with zeros before the iteration ({@code ZeroedSegments}, {@code zeroedGiB} of them, a policy that
     * calls every log busy), so the measurement writes over laid-out blocks: the layout fio measures over.
     */
    @Param({"fresh"})
    public String layout;

    /** GiB of zeroed segment files made before each iteration for {@code layout=zeroed} (1 GiB segments). */
    @Param({"8"})
    public int zeroedGiB;

    private Path dir;
    private IoEngine engine;
    private ChunkPool writes;
    private ChunkPool reads;
    private Log log;
    private Arena arena;
    private MemoryArena memory;
    private MemorySegment batch;
    private IoBuf chain;
    private int batchBytes;
    private long[] pendingLast;
    private int pendingHead;
    private int pendingTail;
    private long durable;
    private int completed;
    private FileChannel channel;
    private ByteBuffer channelBuffer;
    private LogConfig config;
    private BatchCache cache;
    private int iteration;
    private MemorySegment zeros;
    private ZeroedStock stock;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        dir = Files.createTempDirectory(Path.of(System.getProperty("isthmus.bench.dir",
            System.getProperty("java.io.tmpdir"))), "isthmus-logbench-");
        arena = Arena.ofShared();
        batch = buildBatch(arena, shape);
        batchBytes = (int) batch.byteSize();
        if (impl.equals("filechannel")) {
            channelBuffer = batch.asByteBuffer();
            return;
        }
        config = LogConfig.defaults().withSegmentBytes(1L << 30).withRetention(-1, -1)
            .withMaxBatchBytes(2 << 20).withFallocateStep((long) fallocateMiB << 20);
        engine = IoEngine.create(IoBackend.AUTO, RingConfig.defaults());
        int chunk = chunkKiB * 1024;
        writes = ChunkPool.allocate(Math.max(8, (int) (((long) writeBehindMiB << 20) / chunk)), chunk);
        reads = ChunkPool.allocate(2, config.readWindowBytes());
        if (impl.equals("iobuf")) {
            memory = MemoryArena.create(ArenaConfig.of(256L << 20));
            cache = new BatchCache(memory);
            chain = IoBuf.empty(memory, Subsystem.NETWORK_RECEIVE);
            chain.append(batch, 0, batchBytes); // fragments of up to 128 KiB
        }
        pendingLast = new long[Integer.highestOneBit(inflight) << 1];
        if (layout.equals("zeroed")) {
            zeros = arena.allocate(256 * 1024, 4096); // zero-filled
        } else if (!layout.equals("fresh")) {
            throw new IllegalArgumentException("layout is fresh or zeroed, not " + layout);
        }
    }

    /**
     * Every iteration writes a fresh log (or file) and deletes it afterwards: tens of GiB per trial never pile
     * up on the disk, and file deletion stays outside the measurement.
     */
    @Setup(Level.Iteration)
    public void openLog() throws IOException {
        Path where = dir.resolve("log-" + iteration++);
        if (channelBuffer != null) {
            channel = FileChannel.open(where, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            return;
        }
        if (zeros != null) {
            stock = ZeroedStock.make(engine, dir.resolve("stock-" + iteration), zeroedGiB, zeros);
        }
        Log[] out = new Log[1];
        // Opened through the shard's housekeeper so it gets the zeroed stock (wired explicitly); flushed by the bench.
        LogManager logs = new LogManager(engine, dir, writes, reads, cache);
        logs.useZeroedSegments(stock == null ? null : stock.segments());
        logs.openOwned(where, config, this, (l, e) -> {
            if (e != null) {
                throw e;
            }
            out[0] = l;
        });
        while (out[0] == null) {
            engine.submitAndWait(1_000_000L);
        }
        log = out[0];
        pendingHead = 0;
        pendingTail = 0;
        completed = 0;
    }

    @TearDown(Level.Iteration)
    public void closeLog() throws IOException {
        if (channel != null) {
            channel.close();
            channel = null;
        } else {
            boolean[] closed = {false};
            log.close(() -> closed[0] = true);
            while (!closed[0]) {
                engine.submitAndWait(1_000_000L);
            }
            log = null;
        }
        if (stock != null) {
            stock.close();
            stock = null;
        }
        deleteContents(dir);
    }

    private static void deleteContents(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).filter(p -> !p.equals(dir)).forEach(p -> p.toFile().delete());
        }
    }

    /** One batch of the shape: n records of 1 KiB, or one record of 1 MiB. */
    static MemorySegment buildBatch(Arena arena, String shape) {
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
        return buf.asSlice(0, b.build());
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
                // The batch is reused: the log copies it into its write-behind chunks (and the cache).
                long base = chain != null ? log.append(chain, 1) : log.append(batch, 0, batchBytes, 1);
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
        if (engine != null) {
            engine.close();
            writes.close();
            reads.close();
        }
        if (chain != null) {
            chain.release();
            memory.close();
        }
        arena.close();
        deleteContents(dir);
        Files.deleteIfExists(dir);
    }
}
