package dev.isthmus.bench;

import dev.isthmus.log.ChunkPool;
import dev.isthmus.log.DiskStats;
import dev.isthmus.log.Log;
import dev.isthmus.log.LogConfig;
import dev.isthmus.log.LogManager;
import dev.isthmus.uring.IoBackend;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.RingConfig;
import org.HdrHistogram.Histogram;
import org.openjdk.jmh.annotations.AuxCounters;
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
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Append-to-durable latency at a fraction of peak load, next to the device's own fdatasync latency, in one
 * run on one file system.
 *
 * <ol>
 * <li>Setup measures the device where the log meets it: {@code deviceSeconds} of sequential 4 KiB O_DIRECT
 *     writes into space fallocated as segments are, each followed by an fdatasync, one at a time, as plain
 *     system calls. The p99 of the fdatasyncs alone is {@code deviceSyncP99Us} (the target's yardstick); the
 *     p99 of write + fdatasync, what one durable small write costs at best, is {@code deviceWriteSyncP99Us}.</li>
 * <li>Setup measures peak: closed loop, up to 64 appends outstanding, for {@code peakSeconds}
 *     ({@code peakAppendsPerSec}).</li>
 * <li>Each benchmark operation is an open-loop run of {@code runSeconds} at {@code loadFraction} x peak (or at
 *     {@code rate} appends/s when that is set): append i is due at start + i / rate whether or not the log kept
 *     up, and its latency runs from when it was due (no coordinated omission) to the {@code onDurable} that
 *     covers it. The loop flushes once per turn, as the broker's does.</li>
 * <li>Then the same schedule for the same time through the simplest durable design, as plain system calls on
 *     this thread: a group commit that writes every append due so far as one O_DIRECT write into fresh
 *     fallocated space (padded to 4 KiB) and fdatasyncs it, then takes the next group. Its percentiles
 *     ({@code groupP99Us}, {@code groupP999Us}, {@code groupMaxUs}) say what the device and file system give
 *     at this load with no engine in the way, so a miss of the target can be told apart from a device that
 *     cannot make it.</li>
 * </ol>
 * The auxiliary counters report the run's percentiles in microseconds ({@code p50Us}, {@code p99Us},
 * {@code p999Us}, {@code maxUs}), the log's own fdatasync p99 ({@code logSyncP99Us}), the device's
 * ({@code deviceSyncP99Us}, {@code deviceWriteSyncP99Us}) and the ratio {@code p99OverDeviceSyncP99x100}
 * (target: at most 200).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx1g"})
public class LogLatencyBench implements Log.Listener {

    @Param({"1", "16"})
    public String shape;

    @Param({"0.5"})
    public double loadFraction;

    /** The log's fallocate step (adaptive fallocate grows segment files by this much ahead of the writer). */
    @Param({"32"})
    public int fallocateMiB;

    /**
     * Where the log's bytes land. {@code fresh}: fallocated space, as a log grows (each fdatasync also makes
     * extent conversions durable). {@code zeroed}: after its first append the log rolls into a segment file
     * written with zeros before the iteration (see {@code LogAppendBench}); the yardstick stays on fresh space.
     */
    @Param({"fresh"})
    public String layout;

    /** Appends per second; when above 0 it replaces {@code loadFraction} x peak. */
    @Param({"0"})
    public double rate;

    @Param({"5"})
    public int runSeconds;

    @Param({"3"})
    public int peakSeconds;

    @Param({"3"})
    public int deviceSeconds;

    /** What a run reports (JMH prints these next to the run time). */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class Latency {
        public long p50Us;
        public long p99Us;
        public long p999Us;
        public long maxUs;
        public long logSyncP99Us;
        public long deviceSyncP99Us;
        public long deviceWriteSyncP99Us;
        public long p99OverDeviceSyncP99x100;
        public long peakAppendsPerSec;
        public long appendsPerSec;
        public long groupP99Us;
        public long groupP999Us;
        public long groupMaxUs;
    }

    private Path dir;
    private IoEngine engine;
    private ChunkPool writes;
    private ChunkPool reads;
    private Log log;
    private Arena arena;
    private MemorySegment batch;
    private int batchBytes;
    private final DiskStats stats = new DiskStats();
    private final Histogram histogram = new Histogram(60_000_000_000L, 3);
    // Appends waiting for durability: last offset and due time, a ring.
    private long[] pendingLast = new long[1 << 20];
    private long[] pendingDueNs = new long[1 << 20];
    private int pendingHead;
    private int pendingTail;
    private long nowNs;
    private boolean recording;
    private long peak;
    private long deviceP99;
    private long deviceWriteP99;
    private LogConfig config;
    private int iteration;
    private MemorySegment groupBuffer;
    private MemorySegment zeros;
    private ZeroedStock stock;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        dir = Files.createTempDirectory(Path.of(System.getProperty("isthmus.bench.dir",
            System.getProperty("java.io.tmpdir"))), "isthmus-loglatency-");
        arena = Arena.ofShared();
        batch = LogAppendBench.buildBatch(arena, shape);
        batchBytes = (int) batch.byteSize();
        config = LogConfig.defaults().withSegmentBytes(1L << 30).withRetention(-1, -1)
            .withFallocateStep((long) fallocateMiB << 20);
        engine = IoEngine.create(IoBackend.AUTO, RingConfig.defaults());
        if (layout.equals("zeroed")) {
            zeros = arena.allocate(256 * 1024, 4096); // zero-filled
        } else if (!layout.equals("fresh")) {
            throw new IllegalArgumentException("layout is fresh or zeroed, not " + layout);
        }
        measureDeviceSync();
        writes = ChunkPool.allocate(128, 256 * 1024);
        reads = ChunkPool.allocate(2, config.readWindowBytes());
        openLog();
        peak = measurePeak();
        closeLog();
    }

    /** Every iteration runs on a fresh log, deleted afterwards: bounded disk use, deletion outside the runs. */
    @Setup(Level.Iteration)
    public void openLog() throws IOException {
        if (zeros != null) {
            stock = ZeroedStock.make(engine, dir.resolve("stock-" + iteration), 2, zeros);
        }
        Log[] out = new Log[1];
        // Opened through the shard's housekeeper so it gets the zeroed stock (wired explicitly); flushed by the bench.
        LogManager logs = new LogManager(engine, dir, writes, reads);
        logs.useZeroedSegments(stock == null ? null : stock.segments());
        logs.openOwned(dir.resolve("log-" + iteration++), config, this, (l, e) -> {
            if (e != null) {
                throw e;
            }
            out[0] = l;
        });
        while (out[0] == null) {
            engine.submitAndWait(1_000_000L);
        }
        log = out[0];
        log.stats(stats);
        pendingHead = 0;
        pendingTail = 0;
    }

    @TearDown(Level.Iteration)
    public void closeLog() throws IOException {
        boolean[] closed = {false};
        log.close(() -> closed[0] = true);
        while (!closed[0]) {
            engine.submitAndWait(1_000_000L);
        }
        if (stock != null) {
            stock.close();
            stock = null;
        }
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).filter(p -> !p.equals(dir)).forEach(p -> p.toFile().delete());
        }
    }

    /**
     * The device's fdatasync latency where the log meets it: a file fallocated through the engine (as segments
     * are), then sequential 4 KiB O_DIRECT writes, each followed by an fdatasync, one at a time, as plain system
     * calls on this thread (no ring, no worker thread: the device and file system alone). Sets the p99s (µs) of
     * the fdatasyncs and of write + fdatasync.
     */
    private void measureDeviceSync() throws IOException {
        Histogram sync = new Histogram(60_000_000L, 3);
        Histogram writeSync = new Histogram(60_000_000L, 3);
        MemorySegment block = arena.allocate(4096, 4096);
        block.fill((byte) 7);
        java.nio.ByteBuffer buf = block.asByteBuffer();
        long spanBytes = 256L << 20;
        Path path = dir.resolve("device");
        try (java.nio.channels.FileChannel ch = openFallocated(path, spanBytes)) {
            long end = System.nanoTime() + deviceSeconds * 1_000_000_000L;
            long pos = 0;
            while (System.nanoTime() < end && pos < spanBytes) {
                buf.clear();
                long t0 = System.nanoTime();
                while (buf.hasRemaining()) {
                    ch.write(buf, pos + buf.position());
                }
                long t1 = System.nanoTime();
                ch.force(false);
                long t2 = System.nanoTime();
                sync.recordValue((t2 - t1) / 1000);
                writeSync.recordValue((t2 - t0) / 1000);
                pos += 4096;
            }
        } finally {
            Files.deleteIfExists(path);
        }
        deviceP99 = sync.getValueAtPercentile(99);
        deviceWriteP99 = writeSync.getValueAtPercentile(99);
    }

    /**
     * Creates {@code path} with {@code bytes} fallocated through the engine (as segments are) and opens it for
     * O_DIRECT writes by plain system calls.
     */
    private java.nio.channels.FileChannel openFallocated(Path path, long bytes) throws IOException {
        long[] result = {0, 0};
        dev.isthmus.uring.DmaFile f = engine.openDmaFile(path, true);
        try {
            awaitOp(f.allocate(0, bytes, false, (res, flags, attachment) -> {
                result[0] = res;
                result[1] = 1;
            }, 0), result, "fallocate");
        } finally {
            f.close();
        }
        return java.nio.channels.FileChannel.open(path, java.nio.file.StandardOpenOption.WRITE,
            com.sun.nio.file.ExtendedOpenOption.DIRECT);
    }

    private void awaitOp(long id, long[] result, String what) {
        if (id < 0) {
            throw new IllegalStateException(what + " could not be queued: " + id);
        }
        result[1] = 0;
        while (result[1] == 0) {
            engine.submitAndWait(1_000_000_000L);
        }
        if (result[0] < 0) {
            throw new IllegalStateException(what + " failed: " + dev.isthmus.ffi.Errno.describe((int) -result[0]));
        }
    }

    /** Closed loop with 64 appends outstanding: appends per second. */
    private long measurePeak() {
        long end = System.nanoTime() + peakSeconds * 1_000_000_000L;
        long start = System.nanoTime();
        long done = 0;
        recording = false;
        while (System.nanoTime() < end) {
            while (pendingTail - pendingHead < 64) {
                if (!appendOne(0)) {
                    break;
                }
            }
            log.flush();
            int before = pendingHead;
            engine.submitAndWait(1_000_000L);
            done += pendingHead - before;
        }
        drain();
        return done * 1_000_000_000L / (System.nanoTime() - start);
    }

    private boolean appendOne(long dueNs) {
        long base = log.append(batch, 0, batchBytes, 1);
        if (base == Log.NO_MEMORY) {
            return false;
        }
        int i = pendingTail++ & (pendingLast.length - 1);
        pendingLast[i] = log.logEndOffset() - 1;
        pendingDueNs[i] = dueNs;
        return true;
    }

    private void drain() {
        log.flush();
        while (pendingHead != pendingTail) {
            engine.submitAndWait(1_000_000L);
        }
    }

    @Override
    public void onDurable(long durableEndOffset) {
        long now = recording ? System.nanoTime() : 0;
        while (pendingHead != pendingTail && pendingLast[pendingHead & (pendingLast.length - 1)] < durableEndOffset) {
            if (recording) {
                histogram.recordValue(Math.max(0, now - pendingDueNs[pendingHead & (pendingLast.length - 1)]));
            }
            pendingHead++;
        }
    }

    /** One open-loop run at loadFraction x peak. */
    @Benchmark
    public void run(Latency latency) {
        histogram.reset();
        double rate = this.rate > 0 ? this.rate : Math.max(1, peak * loadFraction);
        long intervalNs = (long) (1_000_000_000L / rate);
        long start = System.nanoTime();
        long end = start + runSeconds * 1_000_000_000L;
        long nextDue = start;
        long appends = 0;
        recording = true;
        while ((nowNs = System.nanoTime()) < end) {
            boolean appended = false;
            while (nextDue <= nowNs && pendingTail - pendingHead < pendingLast.length) {
                if (!appendOne(nextDue)) {
                    break; // write-behind memory short: the due times keep running, the wait is charged
                }
                nextDue += intervalNs;
                appends++;
                appended = true;
            }
            if (appended) {
                log.flush();
            }
            engine.submitAndWait(Math.max(0, Math.min(nextDue - System.nanoTime(), 1_000_000L)));
        }
        drain();
        recording = false;
        latency.p50Us = histogram.getValueAtPercentile(50) / 1000;
        latency.p99Us = histogram.getValueAtPercentile(99) / 1000;
        latency.p999Us = histogram.getValueAtPercentile(99.9) / 1000;
        latency.maxUs = histogram.getMaxValue() / 1000;
        latency.logSyncP99Us = stats.syncP99Micros();
        latency.deviceSyncP99Us = deviceP99;
        latency.deviceWriteSyncP99Us = deviceWriteP99;
        latency.p99OverDeviceSyncP99x100 = deviceP99 == 0 ? 0 : latency.p99Us * 100 / deviceP99;
        latency.peakAppendsPerSec = peak;
        latency.appendsPerSec = appends / Math.max(1, runSeconds);
        Histogram group = groupCommit(intervalNs);
        latency.groupP99Us = group.getValueAtPercentile(99) / 1000;
        latency.groupP999Us = group.getValueAtPercentile(99.9) / 1000;
        latency.groupMaxUs = group.getMaxValue() / 1000;
        System.out.println("LogLatencyBench shape " + shape + ": " + latency.appendsPerSec + " appends/s ("
            + (this.rate > 0 ? "fixed" : loadFraction + " x peak " + peak + "/s") + "): append-to-durable p50 "
            + latency.p50Us + " us, p99 " + latency.p99Us + " us, p99.9 " + latency.p999Us + " us, max "
            + latency.maxUs + " us; log fdatasync p99 " + latency.logSyncP99Us + " us; device fdatasync p99 "
            + deviceP99 + " us (write + fdatasync " + deviceWriteP99 + " us); p99 / device fdatasync p99 = "
            + latency.p99OverDeviceSyncP99x100 + "%; plain group commit, same schedule: p99 " + latency.groupP99Us
            + " us, p99.9 " + latency.groupP999Us + " us, max " + latency.groupMaxUs + " us");
    }

    /**
     * The yardstick: the same open-loop schedule (one append every {@code intervalNs} for {@code runSeconds})
     * through a plain group commit on this thread. Each turn writes every append due so far (up to 16 MiB) as one
     * O_DIRECT write, padded to 4 KiB, into space fallocated as segments are, fdatasyncs, and charges each append
     * from its due time to the fdatasync's return. The file is deleted afterwards.
     */
    private Histogram groupCommit(long intervalNs) {
        Histogram h = new Histogram(60_000_000_000L, 3);
        long perAppend = batchBytes;
        long maxGroupBytes = 16L << 20;
        long spanBytes = Math.min(8L << 30, Math.max(64L << 20,
            (runSeconds * 1_000_000_000L / intervalNs + 1) * ((perAppend + 4095) & ~4095L)));
        if (groupBuffer == null) {
            groupBuffer = arena.allocate(maxGroupBytes, 4096);
            groupBuffer.fill((byte) 7);
        }
        MemorySegment buf = groupBuffer;
        Path path = dir.resolve("group");
        try {
            try (java.nio.channels.FileChannel ch = openFallocated(path, spanBytes)) {
                long nextDue = System.nanoTime(); // the first append not yet written
                long scheduledEnd = nextDue + runSeconds * 1_000_000_000L;
                long pos = 0;
                while (nextDue < scheduledEnd) {
                    long now = System.nanoTime();
                    if (nextDue > now) {
                        java.util.concurrent.locks.LockSupport.parkNanos(nextDue - now);
                        continue;
                    }
                    long due = Math.min((now - nextDue) / intervalNs + 1, Math.max(1, maxGroupBytes / perAppend));
                    due = Math.min(due, (scheduledEnd - nextDue + intervalNs - 1) / intervalNs);
                    long bytes = (due * perAppend + 4095) & ~4095L;
                    if (pos + bytes > spanBytes) {
                        pos = 0; // wrapped: overwrites from here on (only if the span estimate fell short)
                    }
                    java.nio.ByteBuffer b = buf.asSlice(0, bytes).asByteBuffer();
                    while (b.hasRemaining()) {
                        ch.write(b, pos + b.position());
                    }
                    ch.force(false);
                    long durable = System.nanoTime();
                    for (long i = 0; i < due; i++) {
                        h.recordValue(Math.max(0, durable - (nextDue + i * intervalNs)));
                    }
                    nextDue += due * intervalNs;
                    pos += bytes;
                }
            }
            Files.deleteIfExists(path);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("group commit yardstick on " + path, e);
        }
        return h;
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        engine.close();
        writes.close();
        reads.close();
        arena.close();
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
