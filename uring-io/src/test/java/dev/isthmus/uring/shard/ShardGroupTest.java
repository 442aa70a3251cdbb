package dev.isthmus.uring.shard;

import dev.isthmus.uring.DmaFile;
import dev.isthmus.uring.IoBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ShardGroupTest {

    private static ShardGroupConfig config(int shards) {
        return ShardGroupConfig.of(shards).withPin(false);
    }

    private static long openFds() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        }
    }

    /** A reusable ping: the target adds one, the origin sends it again until {@code remaining} runs out. */
    static final class Ping extends ShardCall {
        final int to;
        int remaining;
        long value;
        final CompletableFuture<Long> done = new CompletableFuture<>();

        Ping(int to, int count) {
            this.to = to;
            this.remaining = count;
        }

        @Override
        protected boolean onTarget(Shard shard) {
            if (shard.id() != to) {
                throw new IllegalStateException("ran on shard " + shard.id() + " instead of " + to);
            }
            value++;
            return true;
        }

        @Override
        protected void onReply(Shard shard) {
            if (--remaining == 0) {
                done.complete(value);
            } else if (!shard.trySend(to, this)) {
                done.completeExceptionally(new IllegalStateException("refused"));
            }
        }
    }

    @ParameterizedTest(name = "{0} shards, {1}")
    @CsvSource({"1, IO_URING", "2, IO_URING", "4, IO_URING", "2, PORTABLE", "4, PORTABLE"})
    void shouldPingPongBetweenAllPairs(int n, IoBackend backend) throws Exception {
        int rounds = 2_000;
        try (ShardGroup g = ShardGroup.start(config(n).withBackend(backend), null)) {
            List<CompletableFuture<Long>> pings = new ArrayList<>();
            for (int from = 0; from < n; from++) {
                for (int to = 0; to < n; to++) {
                    int target = to;
                    Ping ping = new Ping(target, rounds);
                    pings.add(ping.done);
                    g.call(from, s -> s.trySend(target, ping)).get(10, TimeUnit.SECONDS);
                }
            }
            for (CompletableFuture<Long> p : pings) {
                assertEquals(rounds, p.get(60, TimeUnit.SECONDS));
            }
            // submitTo with results: every shard asks every shard for its id.
            for (int from = 0; from < n; from++) {
                List<Integer> ids = g.callAsync(from, s -> {
                    List<Promise<Integer>> ps = new ArrayList<>();
                    for (int to = 0; to < n; to++) {
                        ps.add(s.submitTo(to, Shard::id));
                    }
                    return Promise.whenAll(ps);
                }).get(10, TimeUnit.SECONDS);
                for (int to = 0; to < n; to++) {
                    assertEquals(to, ids.get(to));
                }
            }
            long sent = 0;
            long received = 0;
            for (Shard s : g.shards()) {
                sent += s.stats().get(ShardStats.CALLS_SENT);
                received += s.stats().get(ShardStats.REPLIES_RECEIVED);
            }
            assertEquals((long) n * n * rounds + (long) n * n, sent);
            assertEquals(sent, received);
        }
    }

    @Test
    void shouldCarryFailuresAndPiggybackedMetadataBack() throws Exception {
        try (ShardGroup g = ShardGroup.start(config(2), s -> s.publishPiggyback(RemoteView.FIRST_USER_SLOT,
            () -> 1000L + s.id()))) {
            Throwable t = g.callAsync(0, s -> s.submitTo(1, x -> {
                throw new IllegalArgumentException("bad partition");
            })).handle((v, f) -> f).get(10, TimeUnit.SECONDS);
            assertInstanceOf(IllegalArgumentException.class, t.getCause() == null ? t : t.getCause());
            long seen = g.call(0, s -> s.view(1).get(RemoteView.FIRST_USER_SLOT)).get(10, TimeUnit.SECONDS);
            assertEquals(1001L, seen);
            long replies = g.call(0, s -> s.view(1).replies()).get(10, TimeUnit.SECONDS);
            assertEquals(1, replies);
        }
    }

    /** Holds every call on the target until released: the in-flight bound must refuse the one too many. */
    @Test
    void shouldRefuseSendsBeyondTheInFlightBound() throws Exception {
        int depth = 4;
        List<ShardCall> held = new ArrayList<>();
        AtomicInteger replied = new AtomicInteger();
        try (ShardGroup g = ShardGroup.start(config(2).withCrossShardDepth(depth), null)) {
            List<Boolean> accepted = g.call(0, s -> {
                List<Boolean> r = new ArrayList<>();
                for (int i = 0; i < depth + 1; i++) {
                    r.add(s.trySend(1, new ShardCall() {
                        @Override
                        protected boolean onTarget(Shard shard) {
                            held.add(this);
                            return false;
                        }

                        @Override
                        protected void onReply(Shard shard) {
                            replied.incrementAndGet();
                        }
                    }));
                }
                return r;
            }).get(10, TimeUnit.SECONDS);
            assertEquals(List.of(true, true, true, true, false), accepted);
            Throwable refused = g.callAsync(0, s -> s.submitTo(1, x -> 1)).handle((v, f) -> f).get(10, TimeUnit.SECONDS);
            assertInstanceOf(ShardBusyException.class, refused);
            assertTrue(refused.getMessage().contains("4 calls in flight to shard 1"), refused.getMessage());
            // Release the held calls on shard 1; the replies free the slots.
            int released = 0;
            while (released < depth) {
                released += g.call(1, s -> {
                    int n = held.size();
                    for (ShardCall c : held) {
                        s.reply(c);
                    }
                    held.clear();
                    return n;
                }).get(10, TimeUnit.SECONDS);
            }
            while (g.call(0, s -> s.inFlightTo(1)).get(10, TimeUnit.SECONDS) > 0) {
                Thread.onSpinWait();
            }
            assertEquals(41, g.callAsync(0, s -> s.submitTo(1, x -> 41)).get(10, TimeUnit.SECONDS));
            assertEquals(depth, replied.get());
            assertTrue(g.shard(0).stats().get(ShardStats.SENDS_REFUSED) >= 2);
        }
    }

    @Test
    void shouldFireTimersInDeadlineOrderAndNeverEarly() throws Exception {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("shouldFireTimersInDeadlineOrderAndNeverEarly seed=" + seed);
        java.util.Random rnd = new java.util.Random(seed);
        int count = 200;
        long[] delays = new long[count];
        for (int i = 0; i < count; i++) {
            delays[i] = rnd.nextLong(60_000_000L);
        }
        // {earliest possible deadline, latest possible deadline, firedAt}: the test cannot see the deadline
        // schedule() computes, only that it lies between now+delay noted just before and just after the call.
        ConcurrentLinkedQueue<long[]> fired = new ConcurrentLinkedQueue<>();
        AtomicInteger cancelledFired = new AtomicInteger();
        try (ShardGroup g = ShardGroup.start(config(1), null)) {
            CompletableFuture<Void> all = new CompletableFuture<>();
            AtomicInteger left = new AtomicInteger(count);
            g.call(0, s -> {
                s.cancelTimer(s.schedule(1_000_000L, () -> { })); // load the timer classes before measuring
                for (int i = 0; i < count; i++) {
                    long[] deadline = new long[2];
                    Runnable task = () -> {
                        fired.add(new long[] {deadline[0], deadline[1], System.nanoTime()});
                        if (left.decrementAndGet() == 0) {
                            all.complete(null);
                        }
                    };
                    deadline[0] = System.nanoTime() + delays[i];
                    s.schedule(delays[i], task);
                    deadline[1] = System.nanoTime() + delays[i];
                }
                for (int i = 0; i < 50; i++) {
                    long id = s.schedule(1_000_000L + i * 100_000L, cancelledFired::incrementAndGet);
                    assertTrue(s.cancelTimer(id));
                    assertFalse(s.cancelTimer(id));
                }
                return null;
            }).get(10, TimeUnit.SECONDS);
            all.get(30, TimeUnit.SECONDS);
            Throwable timeout = g.callAsync(0, s -> new Promise<Integer>().withTimeout(s, 5_000_000L))
                .handle((v, f) -> f).get(10, TimeUnit.SECONDS);
            assertInstanceOf(TimeoutException.class, timeout);
        }
        assertEquals(0, cancelledFired.get());
        // Out of order is proven only when a timer whose deadline is certainly later fired first (no tolerance
        // tied to how long the test thread takes between noting a deadline and scheduling).
        long previousEarliest = Long.MIN_VALUE;
        for (long[] f : fired) {
            assertTrue(f[2] >= f[0], "a timer fired before its deadline");
            assertTrue(f[1] >= previousEarliest, "timers out of deadline order: deadline at most " + f[1]
                + " fired at " + f[2] + " after a timer with deadline at least " + previousEarliest);
            previousEarliest = Math.max(previousEarliest, f[0]);
        }
    }

    @Test
    void shouldSplitLongRunQueuesIntoTurnsByTheTaskQuota() throws Exception {
        try (ShardGroup g = ShardGroup.start(config(1).withQuota(200_000L, 50_000_000L), null)) {
            long turnsBefore = g.shard(0).stats().get(ShardStats.LOOP_TURNS);
            CompletableFuture<Void> done = new CompletableFuture<>();
            g.call(0, s -> {
                for (int i = 0; i < 2_000; i++) {
                    s.execute(() -> {
                        long end = System.nanoTime() + 20_000L;
                        while (System.nanoTime() < end) {
                            Thread.onSpinWait();
                        }
                    });
                }
                s.execute(() -> done.complete(null));
                return null;
            }).get(10, TimeUnit.SECONDS);
            done.get(30, TimeUnit.SECONDS);
            long turns = g.shard(0).stats().get(ShardStats.LOOP_TURNS) - turnsBefore;
            // 2000 x 20 us = 40 ms of tasks with a 0.2 ms quota: each turn runs at most ~11 of them.
            assertTrue(turns >= 2_000 / 12, "turns=" + turns);
        }
    }

    @Test
    void shouldReportAStalledTaskWithItsStack() throws Exception {
        AtomicReference<ShardGroup.StallReport> report = new AtomicReference<>();
        CompletableFuture<ShardGroup.StallReport> withStack = new CompletableFuture<>();
        try (ShardGroup g = ShardGroup.start(config(1).withQuota(500_000L, 10_000_000L), null)) {
            g.onStall(r -> {
                report.set(r);
                if (r.stack() != null) {
                    withStack.complete(r);
                }
            });
            g.call(0, s -> {
                spinInAStalledTask(60_000_000L);
                return null;
            }).get(10, TimeUnit.SECONDS);
            g.call(0, s -> null).get(10, TimeUnit.SECONDS); // the stalled task's accounting is done by now
            assertTrue(g.shard(0).stats().get(ShardStats.QUOTA_VIOLATIONS) >= 1);
            assertTrue(g.shard(0).stats().get(ShardStats.STALLS) >= 1);
            assertNotNull(report.get());
            assertEquals(ShardGroup.StallKind.STALL, report.get().kind());
            // The watchdog samples every 2.5 ms; a 60 ms stall is seen unless the machine starved it entirely.
            if (withStack.isDone()) {
                assertTrue(withStack.get().toString().contains("spinInAStalledTask"), withStack.get().toString());
            }
        }
    }

    @Test
    void shouldReportALongStallAgainWithItsFullDurationWhenItEnds() throws Exception {
        List<ShardGroup.StallReport> reports = new java.util.concurrent.CopyOnWriteArrayList<>();
        long stallNs = 5_000_000L;
        long spinNs = (Shard.LONG_STALL_FACTOR + 20) * stallNs; // 350 ms
        try (ShardGroup g = ShardGroup.start(config(1).withQuota(500_000L, stallNs), null)) {
            g.onStall(reports::add);
            g.call(0, s -> {
                spinInAStalledTask(spinNs);
                return null;
            }).get(10, TimeUnit.SECONDS);
            g.call(0, s -> null).get(10, TimeUnit.SECONDS); // the stalled task's accounting is done by now
            ShardGroup.StallReport last = reports.get(reports.size() - 1);
            assertEquals(ShardGroup.StallKind.STALL, last.kind());
            // Unless the watchdog itself was starved until the stall was nearly over (then its one report is close).
            assertTrue(last.durationNs() >= spinNs
                || reports.get(0).durationNs() > spinNs - Shard.LONG_STALL_FACTOR * stallNs,
                "the last report has the whole stall: " + reports);
        }
    }

    private static void spinInAStalledTask(long ns) {
        long end = System.nanoTime() + ns;
        while (System.nanoTime() < end) {
            Thread.onSpinWait();
        }
    }

    @Test
    void shouldDetectBlockingCallsInDebugMode() throws Exception {
        CompletableFuture<ShardGroup.StallReport> blocking = new CompletableFuture<>();
        try (ShardGroup g = ShardGroup.start(config(1).withDetectBlocking(true), null)) {
            g.onStall(r -> {
                if (r.kind() == ShardGroup.StallKind.BLOCKING) {
                    blocking.complete(r);
                }
            });
            // Keep blocking until the watchdog has seen it (it samples every millisecond).
            g.call(0, s -> {
                for (int i = 0; i < 200 && !blocking.isDone(); i++) {
                    try {
                        Thread.sleep(10);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
                return null;
            }).get(30, TimeUnit.SECONDS);
            ShardGroup.StallReport r = blocking.get(1, TimeUnit.SECONDS);
            assertTrue(r.toString().contains("sleep"), r.toString());
            assertTrue(g.shard(0).blockingDetected.get() >= 1);
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"IO_URING", "PORTABLE"})
    void shouldFinishWorkInFlightOnCloseAndLeakNoFds(IoBackend backend, @TempDir Path dir) throws Exception {
        long fdsBefore = openFds();
        int calls = 500;
        AtomicInteger completed = new AtomicInteger();
        AtomicLong written = new AtomicLong();
        ShardGroup g = ShardGroup.start(config(2).withBackend(backend), s -> {
            if (s.id() == 1) {
                // A stop hook that starts asynchronous I/O; a drain check holds the close until it is done.
                DmaFile file = s.engine().openDmaFile(dir.resolve("stop.dat"), true);
                MemorySegment buf = Arena.global().allocate(4096, 4096);
                boolean[] done = {false};
                s.onStop(() -> file.write(buf, 0, (res, flags, att) -> {
                    written.addAndGet(res);
                    file.close();
                    done[0] = true;
                }, 0));
                s.addDrainCheck(() -> done[0]);
            }
        });
        g.call(0, s -> {
            for (int i = 0; i < calls; i++) {
                long delay = (i % 20) * 1_000_000L;
                s.submitToAsync(1, t -> t.sleep(delay)).whenComplete((v, f) -> {
                    if (f == null) {
                        completed.incrementAndGet();
                    }
                });
            }
            return null;
        }).get(10, TimeUnit.SECONDS);
        g.close();
        assertEquals(calls, completed.get(), "every call in flight at close completed");
        assertEquals(4096, written.get(), "the stop hook's write completed before the ring closed");
        assertThrows(RejectedExecutionException.class, () -> g.execute(0, () -> { }));
        assertEquals(fdsBefore, openFds(), "rings, eventfds and files are all closed");
    }

    @Test
    void shouldRejectCloseFromAShardAndBadTargets() throws Exception {
        try (ShardGroup g = ShardGroup.start(config(2), null)) {
            Throwable t = g.call(0, s -> {
                g.close();
                return null;
            }).handle((v, f) -> f).get(10, TimeUnit.SECONDS);
            assertInstanceOf(IllegalStateException.class, t);
            Throwable bad = g.call(0, s -> s.trySend(7, new Ping(7, 1))).handle((v, f) -> f).get(10, TimeUnit.SECONDS);
            assertTrue(bad.getMessage().contains("no shard 7"), bad.getMessage());
            assertThrows(IllegalStateException.class, () -> g.shard(0).execute(() -> { }));
        }
    }
}
