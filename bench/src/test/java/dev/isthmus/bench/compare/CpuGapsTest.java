package dev.isthmus.bench.compare;

import dev.isthmus.ffi.Libc;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CPU heartbeats of bench/compare: one per allowed CPU, each reporting its longest gap between wake-ups, and
 * the notes column naming seconds with a stalled CPU. No assertion on how long a gap is (that is the machine's).
 */
class CpuGapsTest {

    @Test
    void shouldReportTheLongestGapOfAnAllowedCpu() {
        int[] allowed = Libc.allowedCpus();
        try (CpuGaps gaps = CpuGaps.start()) {
            // Wait for the first beats (a condition, not a duration: on a loaded machine it may take a while).
            long deadline = System.nanoTime() + 60_000_000_000L;
            CpuGaps.Gap gap = gaps.takeMax();
            while (gap.cpu() < 0 && System.nanoTime() < deadline) {
                java.util.concurrent.locks.LockSupport.parkNanos(1_000_000L);
                gap = gaps.takeMax();
            }
            assertTrue(gap.cpu() >= 0, "no heartbeat ran in 60 s");
            int cpu = gap.cpu();
            assertTrue(Arrays.stream(allowed).anyMatch(c -> c == cpu), "CPU " + cpu + " is not one of "
                + Arrays.toString(allowed));
            assertTrue(gap.ns() > 0);
            assertTrue(gap.describe().startsWith("CPU " + cpu + " ran nothing for "), gap.describe());
        }
    }

    @Test
    void shouldNameStalledSecondsInTheNotes() {
        Workload.Result clean = new Workload.Result(new org.HdrHistogram.Histogram(3), new org.HdrHistogram.Histogram(3),
            1_000_000_000L, 100, 100, 100, 100, 0, 0, 0, null, 0, 1_000_000_000L);
        Spec spec = new Spec(Suite.SINGLE, Workload.Shape.SINGLE, 100);
        Row quiet = new Row(BrokerKind.ISTHMUS, spec, clean, 10, 0, 1 << 20, GcLog.Pauses.NONE, "x.hlog", 0, 0, -1);
        assertEquals("", quiet.notes());
        Row stalled = new Row(BrokerKind.ISTHMUS, spec, clean, 10, 0, 1 << 20, GcLog.Pauses.NONE, "x.hlog", 2, 0, -1);
        assertEquals("2 s with a CPU stalled 50+ ms", stalled.notes());
    }
}
