package dev.isthmus.bench;

import dev.isthmus.uring.CompletionHandler;
import dev.isthmus.uring.DmaFile;
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
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Raw O_DIRECT device throughput through an {@link IoEngine}: sequential or random reads or writes of one
 * block size at one queue depth, on a preallocated file. One benchmark operation is one completed I/O, so
 * MB/s = ops/s x blockSize. The loop keeps {@code depth} operations in flight and allocates nothing
 * (check with {@code -prof gc}).
 *
 * <p>The file lives in {@code -Disthmus.bench.dir} (default: java.io.tmpdir), which should be on the
 * device under test. {@code bench/raw-device} runs this next to fio with the same parameters.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx1g"})
public class RawDeviceBench implements CompletionHandler {

    @Param({"4096", "131072", "1048576"})
    public int blockSize;

    @Param({"1", "16", "32"})
    public int depth;

    @Param({"seq", "rand"})
    public String pattern;

    @Param({"write", "read"})
    public String op;

    @Param({"IO_URING", "PORTABLE"})
    public String backend;

    /** File size; sequential access wraps around. */
    @Param({"1073741824"})
    public long fileBytes;

    private IoEngine engine;
    private DmaFile file;
    private Arena arena;
    private MemorySegment[] buffers;
    private int[] freeBuffers;
    private int freeTop;
    private long nextPosition;
    private long blocks;
    private SplittableRandom random;
    private int completed;
    private int failed;
    private int inFlight;
    private boolean write;
    private boolean sequential;
    private Path path;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        engine = IoEngine.create(IoBackend.valueOf(backend), RingConfig.defaults().withEntries(64));
        Path dir = Path.of(System.getProperty("isthmus.bench.dir", System.getProperty("java.io.tmpdir")));
        path = Files.createTempFile(dir, "isthmus-rawdevice-", ".bin");
        file = engine.openDmaFile(path, false);
        write = op.equals("write");
        sequential = pattern.equals("seq");
        blocks = fileBytes / blockSize;
        random = new SplittableRandom(42);
        arena = Arena.ofShared();
        buffers = new MemorySegment[depth];
        freeBuffers = new int[depth];
        for (int i = 0; i < depth; i++) {
            buffers[i] = arena.allocate(blockSize, Math.max(4096, file.alignment()));
            buffers[i].fill((byte) (i + 1));
            freeBuffers[freeTop++] = i;
        }
        // Allocate and write the whole file once, so reads read real blocks and writes overwrite allocated space.
        int[] done = {Integer.MIN_VALUE};
        file.allocate(0, fileBytes, false, (res, flags, att) -> done[0] = res, 0);
        while (done[0] == Integer.MIN_VALUE) {
            engine.submitAndWait(10_000_000L);
        }
        if (done[0] < 0) {
            throw new IllegalStateException("fallocate failed: " + done[0]);
        }
        MemorySegment fill = arena.allocate(1 << 20, 4096);
        fill.fill((byte) 0x5A);
        int[] pending = {0};
        for (long pos = 0; pos < fileBytes; pos += fill.byteSize()) {
            pending[0]++;
            file.write(fill.asSlice(0, Math.min(fill.byteSize(), fileBytes - pos)), pos,
                (res, flags, att) -> pending[0]--, 0);
            while (pending[0] >= 32) {
                engine.submitAndWait(10_000_000L);
            }
        }
        while (pending[0] > 0) {
            engine.submitAndWait(10_000_000L);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        while (inFlight > 0) {
            engine.submitAndWait(10_000_000L);
        }
        file.close();
        engine.close();
        arena.close();
        Files.deleteIfExists(path);
        if (failed > 0) {
            throw new IllegalStateException(failed + " I/O operations failed");
        }
    }

    private void refill() {
        while (freeTop > 0) {
            int b = freeBuffers[--freeTop];
            long position;
            if (sequential) {
                position = nextPosition;
                nextPosition += blockSize;
                if (nextPosition >= fileBytes) {
                    nextPosition = 0;
                }
            } else {
                position = random.nextLong(blocks) * blockSize;
            }
            long r = write ? file.write(buffers[b], position, this, b) : file.read(buffers[b], position, this, b);
            if (r < 0) {
                freeBuffers[freeTop++] = b;
                return;
            }
            inFlight++;
        }
    }

    @Override
    public void onComplete(int result, int flags, long attachment) {
        if (result != blockSize) {
            failed++;
        }
        freeBuffers[freeTop++] = (int) attachment;
        inFlight--;
        completed++;
    }

    /** One completed I/O of {@code blockSize} bytes. */
    @Benchmark
    public int io() {
        while (completed == 0) {
            refill();
            engine.submitAndWait(1_000_000_000L);
        }
        completed--;
        return inFlight;
    }
}
