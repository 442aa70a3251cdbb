package dev.isthmus.uring.shard;

import dev.isthmus.uring.DmaFile;
import dev.isthmus.uring.sim.SimClock;
import dev.isthmus.uring.sim.SimDisk;
import dev.isthmus.uring.sim.SimFaults;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Shards stepped one turn at a time on the test's thread, over simulated engines and virtual time. */
class ShardInvokerTest {
    final SimClock clock = new SimClock();
    final SimDisk disk = new SimDisk(clock, SimFaults.quiet(), 1);

    ShardInvoker start(int shards) {
        return ShardInvoker.start(ShardGroupConfig.of(shards).withPin(false), id -> disk.newEngine(), null);
    }

    @Test
    void shouldFireTimersOnlyWhenVirtualTimeReachesThem() {
        try (ShardInvoker inv = start(1)) {
            List<String> fired = new ArrayList<>();
            inv.runOn(0, () -> {
                Shard s = Shard.current();
                s.schedule(5_000_000L, () -> fired.add("5ms"));
                s.schedule(1_000_000L, () -> fired.add("1ms"));
            });
            inv.invokeUntilIdle(0, 100);
            assertEquals(List.of(), fired, "no virtual time passed");
            assertEquals(1_000_000L, inv.shard(0).nextTimerDeadlineNs());
            clock.advanceTo(1_000_000L);
            inv.invokeUntilIdle(0, 100);
            assertEquals(List.of("1ms"), fired);
            clock.advanceTo(10_000_000L);
            inv.invokeUntilIdle(0, 100);
            assertEquals(List.of("1ms", "5ms"), fired);
        }
    }

    @Test
    void shouldRunCrossShardCallsWhenBothShardsAreStepped() {
        try (ShardInvoker inv = start(2)) {
            Integer[] got = {null};
            inv.runOn(0, () -> Shard.current().submitTo(1, s -> s.id() + 41).whenComplete((v, t) -> got[0] = v));
            inv.invoke(0); // sends
            assertNull(got[0]);
            inv.invoke(1); // runs on 1, replies
            inv.invoke(0); // receives the reply
            assertEquals(42, got[0]);
        }
    }

    @Test
    void shouldDeliverFileCompletionsThroughTheLoop() throws Exception {
        try (ShardInvoker inv = start(1)) {
            disk.fileOps().createDirectories(Path.of("/d"));
            MemorySegment buf = Arena.ofAuto().allocate(4096, 4096);
            int[] result = {Integer.MIN_VALUE};
            Shard[] current = {null};
            inv.runOn(0, () -> {
                DmaFile f = Shard.current().engine().openDmaFile(Path.of("/d/f"), true);
                f.write(buf, 0, (r, flags, a) -> {
                    result[0] = r;
                    current[0] = Shard.currentOrNull();
                }, 0);
            });
            assertEquals(0, inv.invoke(0) > 0 ? 1 : 0, "the write is not due yet");
            clock.advanceBy(1_000_000_000L);
            assertTrue(inv.invoke(0) > 0);
            assertEquals(4096, result[0]);
            assertSame(inv.shard(0), current[0], "completions run with their shard current");
        }
    }

    @Test
    void shouldRunStopHooksAndCloseEnginesOnClose() {
        ShardInvoker inv = start(2);
        List<Integer> stopped = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            int id = i;
            inv.runOn(i, () -> Shard.current().onStop(() -> stopped.add(id)));
        }
        inv.close();
        assertEquals(List.of(0, 1), stopped);
        assertNull(Shard.currentOrNull(), "no shard is current outside a step");
    }
}
