package dev.isthmus.bench;

import dev.isthmus.uring.shard.Shard;
import dev.isthmus.uring.shard.ShardCall;
import dev.isthmus.uring.shard.ShardGroup;
import dev.isthmus.uring.shard.ShardGroupConfig;
import org.HdrHistogram.Histogram;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Cross-shard round trips: shard 0 sends a reusable {@link ShardCall} to shard 1 and, on the reply, sends it
 * again, {@value #BATCH} times per benchmark invocation (so the score is the mean round trip). Compared in
 * the same run with a hand-off through two {@link LinkedBlockingQueue}s between two threads and with a
 * {@link CompletableFuture} chain bouncing between two single-thread executors. The shard version allocates
 * nothing per message (check with {@code -prof gc}); its per-round-trip latency distribution (HdrHistogram,
 * recorded on shard 0) is printed at the end of each trial.
 *
 * <p>{@code busyPoll=false} is the production default (a shard with nothing to do blocks in io_uring_enter and
 * is woken by IORING_OP_MSG_RING); {@code busyPoll=true} spins instead. On a 2-core machine the benchmark
 * thread shares the cores with the two shards, which is what the {@code pin=false} default is for.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx1g"})
public class CrossShardBench {
    static final int BATCH = 1000;

    @Param({"false", "true"})
    public boolean busyPoll;

    private ShardGroup group;
    private Ping ping;
    private Runnable kick;
    private final Histogram histogram = new Histogram(3_600_000_000L, 3);

    private LinkedBlockingQueue<Object> toEcho;
    private LinkedBlockingQueue<Object> fromEcho;
    private Thread echo;
    private ExecutorService left;
    private ExecutorService right;

    final class Ping extends ShardCall {
        int remaining;
        long sentNs;
        volatile long completedBatches;

        @Override
        protected boolean onTarget(Shard shard) {
            return true;
        }

        @Override
        protected void onReply(Shard shard) {
            long now = System.nanoTime();
            histogram.recordValue(now - sentNs);
            if (--remaining == 0) {
                completedBatches = completedBatches + 1;
            } else {
                sentNs = now;
                shard.trySend(1, this);
            }
        }
    }

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        group = ShardGroup.start(ShardGroupConfig.of(2).withPin(false).withBusyPoll(busyPoll), null);
        ping = new Ping();
        kick = () -> {
            ping.remaining = BATCH;
            ping.sentNs = System.nanoTime();
            group.shard(0).trySend(1, ping);
        };
        toEcho = new LinkedBlockingQueue<>();
        fromEcho = new LinkedBlockingQueue<>();
        echo = new Thread(() -> {
            try {
                while (true) {
                    fromEcho.put(toEcho.take());
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "lbq-echo");
        echo.setDaemon(true);
        echo.start();
        left = Executors.newSingleThreadExecutor();
        right = Executors.newSingleThreadExecutor();
    }

    @Setup(Level.Iteration)
    public void resetHistogram() throws Exception {
        group.call(0, s -> {
            histogram.reset();
            return null;
        }).get();
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        Histogram copy = group.call(0, s -> histogram.copy()).get();
        if (copy.getTotalCount() > 0) {
            System.out.printf("%n[CrossShardBench busyPoll=%s] shard round trip: p50 %.2f us, p90 %.2f us, p99 %.2f us,"
                + " p99.9 %.2f us, max %.2f us (%d samples, last iteration)%n", busyPoll,
            copy.getValueAtPercentile(50) / 1000.0, copy.getValueAtPercentile(90) / 1000.0,
            copy.getValueAtPercentile(99) / 1000.0, copy.getValueAtPercentile(99.9) / 1000.0,
            copy.getMaxValue() / 1000.0, copy.getTotalCount());
        }
        group.close();
        echo.interrupt();
        left.shutdownNow();
        right.shutdownNow();
    }

    /** {@value #BATCH} shard-to-shard round trips over the SPSC queues with MSG_RING wakeups. */
    @Benchmark
    @OperationsPerInvocation(BATCH)
    public long shardRoundTrip() {
        long before = ping.completedBatches;
        group.execute(0, kick);
        while (ping.completedBatches == before) {
            Thread.onSpinWait();
            Thread.yield();
        }
        return before;
    }

    /** {@value #BATCH} round trips through two LinkedBlockingQueues between this thread and an echo thread. */
    @Benchmark
    @OperationsPerInvocation(BATCH)
    public Object linkedBlockingQueueRoundTrip() throws InterruptedException {
        Object token = this;
        for (int i = 0; i < BATCH; i++) {
            toEcho.put(token);
            token = fromEcho.take();
        }
        return token;
    }

    /** {@value #BATCH} round trips as a CompletableFuture chain hopping between two single-thread executors. */
    @Benchmark
    @OperationsPerInvocation(BATCH)
    public Integer completableFutureRoundTrip() {
        CompletableFuture<Integer> f = CompletableFuture.completedFuture(0);
        for (int i = 0; i < BATCH; i++) {
            f = f.thenApplyAsync(v -> v + 1, right).thenApplyAsync(v -> v, left);
        }
        return f.join();
    }
}
