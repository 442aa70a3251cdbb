package dev.isthmus.bench;

import dev.isthmus.raft.net.TransportMetrics;
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

import java.util.concurrent.TimeUnit;

/**
 * Idle heartbeat traffic per node pair for 1 and 1000 groups on 3 local nodes (every node replicates every
 * group): the coalesced heartbeats must make it independent of the number of groups. Each operation waits
 * 100 ms; the auxiliary counters report, per second and per node pair, the heartbeat frames
 * ({@code heartbeatsPerPair}: Heartbeat plus HeartbeatResponse), all frames ({@code framesPerPair}) and the
 * bytes ({@code bytesPerPair}).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 1, time = 3)
@Measurement(iterations = 3, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-XX:+UseZGC", "-Xmx3g"})
public class RaftHeartbeatBench {
    @Param({"1", "1000"})
    public int groups;

    @Param({"1"})
    public int shards;

    private RaftCluster cluster;
    private TransportMetrics last;

    @AuxCounters(AuxCounters.Type.OPERATIONS)
    @State(Scope.Thread)
    public static class PerPair {
        public long heartbeatsPerPair;
        public long framesPerPair;
        public long bytesPerPair;
        long heartbeats;
        long frames;
        long bytes;

        @Setup(Level.Iteration)
        public void reset() {
            heartbeatsPerPair = framesPerPair = bytesPerPair = heartbeats = frames = bytes = 0;
        }

        void add(long hb, long f, long b) {
            heartbeats += hb;
            frames += f;
            bytes += b;
            heartbeatsPerPair = heartbeats / PAIRS;
            framesPerPair = frames / PAIRS;
            bytesPerPair = bytes / PAIRS;
        }
    }

    static final int PAIRS = 3;

    @Setup(Level.Trial)
    public void setup() throws Exception {
        cluster = new RaftCluster(3, shards, groups, "raft-heartbeat");
        last = cluster.metrics();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        cluster.close();
    }

    @Benchmark
    public void idle(PerPair counters) throws Exception {
        Thread.sleep(100);
        TransportMetrics now = cluster.metrics();
        counters.add(now.heartbeatFramesSent() + now.heartbeatResponseFramesSent() - last.heartbeatFramesSent()
            - last.heartbeatResponseFramesSent(), now.framesSent() - last.framesSent(), now.bytesSent() - last.bytesSent());
        last = now;
    }
}
