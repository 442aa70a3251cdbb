package dev.isthmus.bench;

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

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The baseline of {@link RaftCommitBench}'s target: a single node's durable write, one {@code blockBytes}
 * O_DIRECT write then fdatasync per operation, sequential in a preallocated file in
 * {@code -Disthmus.bench.dir} (the same disk the Raft logs use), through the io_uring engine.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 3)
@Measurement(iterations = 3, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx1g"})
public class RaftFsyncBench {
    @Param({"4096"})
    public int blockBytes;

    private static final long FILE_BYTES = 256L << 20;
    private Path dir;
    private IoEngine engine;
    private DmaFile file;
    private Arena arena;
    private MemorySegment block;
    private long position;
    private final int[] result = new int[1];

    @Setup(Level.Trial)
    public void setup() throws Exception {
        dir = Files.createTempDirectory(Path.of(System.getProperty("isthmus.bench.dir",
            System.getProperty("java.io.tmpdir"))), "raft-fsync");
        engine = IoEngine.create(IoBackend.AUTO, RingConfig.defaults());
        file = engine.openDmaFile(dir.resolve("f"), true);
        arena = Arena.ofConfined();
        block = arena.allocate(blockBytes, 4096);
        block.fill((byte) 7);
        result[0] = Integer.MIN_VALUE;
        file.allocate(0, FILE_BYTES, false, (res, flags, att) -> result[0] = res, 0);
        await();
    }

    private void await() {
        while (result[0] == Integer.MIN_VALUE) {
            engine.submitAndWait(1_000_000_000L);
        }
        if (result[0] < 0) {
            throw new IllegalStateException("I/O failed: " + result[0]);
        }
    }

    @Benchmark
    public int writeAndFdatasync() {
        result[0] = Integer.MIN_VALUE;
        file.write(block, position, (res, flags, att) -> result[0] = res, 0);
        await();
        result[0] = Integer.MIN_VALUE;
        file.datasync((res, flags, att) -> result[0] = res, 0);
        await();
        position = (position + blockBytes) % FILE_BYTES;
        return result[0];
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        file.close();
        engine.close();
        arena.close();
        Files.deleteIfExists(dir.resolve("f"));
        Files.deleteIfExists(dir);
    }
}
