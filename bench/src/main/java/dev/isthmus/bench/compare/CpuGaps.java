package dev.isthmus.bench.compare;

import dev.isthmus.ffi.Libc;

import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;

/**
 * Tells a stalled CPU from a slow broker: one heartbeat thread pinned to each CPU this process may use, asleep
 * almost all the time, waking every millisecond and recording how long it was since its last wake-up. On a
 * busy but healthy CPU a wake-up is late by a scheduler slice or a tick (a few ms); a 100 ms gap means the CPU
 * ran nothing at all that long, as a virtual CPU the host did not schedule does (seen on the development VM,
 * where the disk's completion interrupt goes to one CPU only, so every fdatasync in flight waits with it).
 * The heartbeats cost well under 1% of a core each.
 *
 * <p>{@link #takeMax()} returns the longest gap of any CPU since the previous call and starts a new period.
 * When pinning is refused (a CPU set that changed), that heartbeat runs unpinned and says so in its thread name.
 */
public final class CpuGaps implements AutoCloseable {

    /** A gap of at least this long is reported in the per-second notes. */
    public static final long NOTE_NS = 20_000_000L;
    /** A gap of at least this long makes its second count as one with a stalled CPU. */
    public static final long STALL_NS = 50_000_000L;
    private static final long BEAT_NS = 1_000_000L;

    /** The longest gap in a period and the CPU it was on (-1 when no heartbeat ran). */
    public record Gap(int cpu, long ns) {
        public String describe() {
            return String.format(java.util.Locale.ROOT, "CPU %d ran nothing for %.0f ms", cpu, ns / 1e6);
        }
    }

    private final int[] cpus;
    private final AtomicLongArray maxGapNs;
    private final Thread[] threads;
    private volatile boolean closed;

    private CpuGaps(int[] cpus) {
        this.cpus = cpus;
        this.maxGapNs = new AtomicLongArray(cpus.length);
        this.threads = new Thread[cpus.length];
    }

    /** Starts one heartbeat per CPU this process may use. */
    public static CpuGaps start() {
        CpuGaps g = new CpuGaps(Libc.allowedCpus());
        for (int i = 0; i < g.cpus.length; i++) {
            int slot = i;
            Thread t = new Thread(() -> g.beat(slot), "compare-cpu-heartbeat-" + g.cpus[i]);
            t.setDaemon(true);
            g.threads[i] = t;
            t.start();
        }
        return g;
    }

    private void beat(int slot) {
        if (Libc.pinCurrentThread(cpus[slot]) < 0) {
            Thread.currentThread().setName(Thread.currentThread().getName() + "-unpinned");
        }
        long last = System.nanoTime();
        while (!closed) {
            LockSupport.parkNanos(BEAT_NS);
            long now = System.nanoTime();
            long gap = now - last;
            last = now;
            long seen = maxGapNs.get(slot);
            while (gap > seen && !maxGapNs.compareAndSet(slot, seen, gap)) {
                seen = maxGapNs.get(slot);
            }
        }
    }

    /** The longest gap of any CPU since the previous call; resets every CPU's. */
    public Gap takeMax() {
        int cpu = -1;
        long best = 0;
        for (int i = 0; i < cpus.length; i++) {
            long g = maxGapNs.getAndSet(i, 0);
            if (g > best) {
                best = g;
                cpu = cpus[i];
            }
        }
        return new Gap(cpu, best);
    }

    @Override
    public void close() {
        closed = true;
        for (Thread t : threads) {
            LockSupport.unpark(t);
        }
    }
}
