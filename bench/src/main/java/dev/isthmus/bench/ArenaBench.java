package dev.isthmus.bench;

import dev.isthmus.arena.ArenaConfig;
import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.IoBufReader;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;
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
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.TimeUnit;

/**
 * Allocate + free of one block (512 B, 16 KiB, 1 MiB) from a shard's {@link MemoryArena}, compared in the same
 * run with {@code Arena.ofConfined().allocate} (allocate, then close the arena) and with libc malloc/free
 * through FFM; plus IoBuf append and varint reads that straddle fragment boundaries. Targets (issue 4):
 * small allocations under 50 ns, no Java heap allocation per operation ({@code -prof gc}).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx1g"})
public class ArenaBench {

    @Param({"512", "16384", "1048576"})
    public int size;

    private MemoryArena arena;
    private MethodHandle malloc;
    private MethodHandle free;
    private IoBuf chain;
    private IoBuf varints;
    private byte[] payload;

    @Setup(Level.Trial)
    public void setUp() {
        arena = MemoryArena.create(ArenaConfig.of(256L << 20).withDebug(false).withUnlimitedBudgets());
        Linker linker = Linker.nativeLinker();
        malloc = linker.downcallHandle(linker.defaultLookup().find("malloc").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        free = linker.downcallHandle(linker.defaultLookup().find("free").orElseThrow(),
            FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));
        chain = IoBuf.empty(arena, Subsystem.OTHER);
        payload = new byte[Math.min(size, 4096)];
        // 10k varints in 7-byte fragments: most of them straddle a boundary.
        IoBuf src = IoBuf.empty(arena, Subsystem.OTHER);
        for (int i = 0; i < 10_000; i++) {
            src.appendVarint(i * 2_654_435);
        }
        varints = IoBuf.empty(arena, Subsystem.OTHER);
        for (long pos = 0; pos < src.size(); pos += 7) {
            varints.append(src.share(pos, Math.min(7, src.size() - pos)));
        }
        src.release();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        chain.release();
        varints.release();
        arena.close();
    }

    @Benchmark
    public long arenaAllocateFree() {
        long off = arena.allocate(size, Subsystem.OTHER);
        arena.free(off);
        return off;
    }

    @Benchmark
    public long confinedArenaAllocate() {
        try (Arena a = Arena.ofConfined()) {
            return a.allocate(size, 4096).address();
        }
    }

    @Benchmark
    public long mallocFree() throws Throwable {
        MemorySegment p = (MemorySegment) malloc.invokeExact((long) size);
        free.invokeExact(p);
        return p.address();
    }

    /** Appends {@code min(size, 4096)} bytes to a chain, trimming it back so it stays bounded. */
    @Benchmark
    public long ioBufAppend() {
        chain.append(payload, 0, payload.length);
        if (chain.size() > (8L << 20)) {
            chain.trimFront(chain.size() - (1L << 20));
        }
        return chain.size();
    }

    /** Reads 10k zigzag varints from a chain of 7-byte fragments; score is per varint / 10k. */
    @Benchmark
    public long ioBufCrossFragmentVarints() {
        IoBufReader r = varints.reader();
        long sum = 0;
        while (r.hasRemaining()) {
            sum += r.readVarint();
        }
        return sum;
    }
}
