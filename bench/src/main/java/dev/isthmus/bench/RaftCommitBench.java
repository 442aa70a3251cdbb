package dev.isthmus.bench;

import dev.isthmus.raft.server.RaftException;
import dev.isthmus.raft.server.RaftServer;
import dev.isthmus.raft.server.ReplicatedLog;
import dev.isthmus.raft.storage.KafkaBatchPayload;
import dev.isthmus.uring.shard.Promise;
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

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * Raft commit on {@code nodes} local nodes (separate shard groups in this JVM, TCP over 127.0.0.1, logs on
 * the real disk): one operation is one 1 KiB Kafka batch proposed to a group's leader and committed (on a
 * majority's disks; the leader's fdatasync runs in parallel with the followers').
 *
 * <ul>
 *   <li>{@code commitLatency} (sample time): one proposal at a time per JMH thread; run with {@code -t 4}
 *       for moderate load. Compare its p99 with {@link RaftFsyncBench}'s single-node fdatasync p99 (target:
 *       within 2x). {@code nodes=1} is a one-member group: the single-node commit path.</li>
 *   <li>{@code commitThroughput}: {@code inflight} proposals spread over the groups, all awaited; entries/s.</li>
 * </ul>
 * Proposals enter from the JMH thread through one cross-thread call per leader shard (what the gateway's
 * handlers do from their own shard costs less). Data in {@code -Disthmus.bench.dir}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 3)
@Measurement(iterations = 3, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-XX:+UseZGC", "-Xmx2g"})
public class RaftCommitBench {
    @Param({"3"})
    public int nodes;

    @Param({"1", "64"})
    public int groups;

    @Param({"1"})
    public int shards;

    @Param({"1024"})
    public int valueBytes;

    @Param({"256"})
    public int inflight;

    private RaftCluster cluster;
    private int[] leaders;
    private KafkaBatchPayload payload;

    @Setup(Level.Trial)
    public void setup() throws Exception {
        cluster = new RaftCluster(nodes, shards, groups, "raft-commit");
        leaders = cluster.awaitLeaders();
        payload = KafkaBatchPayload.ofValues(System.currentTimeMillis(), new byte[valueBytes]);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        cluster.close();
    }

    private Promise<Long> propose(RaftServer s, long g) {
        ReplicatedLog rl = s.shard(cluster.shardOf(g)).group(g);
        return rl.replicate(payload);
    }

    private void refreshLeader(long g) throws Exception {
        int l;
        while ((l = cluster.leaderOf(g)) < 0) {
            Thread.sleep(1);
        }
        leaders[(int) g] = l;
    }

    @Benchmark
    public long commitLatency() throws Exception {
        long g = 1 + ThreadLocalRandom.current().nextInt(groups);
        while (true) {
            RaftServer s = cluster.servers[leaders[(int) g]];
            try {
                return s.onShard(cluster.shardOf(g), sh -> propose(s, g)).get(30, TimeUnit.SECONDS);
            } catch (java.util.concurrent.ExecutionException e) {
                if (!(e.getCause() instanceof RaftException)) {
                    throw e;
                }
                refreshLeader(g);
            }
        }
    }

    @Benchmark
    @BenchmarkMode(Mode.Throughput)
    @OutputTimeUnit(TimeUnit.SECONDS)
    @OperationsPerInvocation(256)
    public int commitThroughput() throws Exception {
        if (inflight != 256) {
            throw new IllegalArgumentException("commitThroughput counts 256 operations per invocation; keep inflight=256");
        }
        // One call per (leader, shard) proposing its share; all awaited.
        List<CompletableFuture<Integer>> calls = new ArrayList<>();
        for (int node = 0; node < nodes; node++) {
            for (int shard = 0; shard < shards; shard++) {
                List<Long> mine = new ArrayList<>();
                for (int i = 0; i < inflight; i++) {
                    long g = 1 + (i % groups);
                    if (leaders[(int) g] == node && cluster.shardOf(g) == shard) {
                        mine.add(g);
                    }
                }
                if (mine.isEmpty()) {
                    continue;
                }
                RaftServer s = cluster.servers[node];
                calls.add(s.onShard(shard, sh -> {
                    List<Promise<Long>> ps = new ArrayList<>(mine.size());
                    for (long g : mine) {
                        ps.add(propose(s, g).recover(t -> -1L));
                    }
                    return Promise.whenAll(ps).map(List::size);
                }));
            }
        }
        int n = 0;
        for (CompletableFuture<Integer> c : calls) {
            n += c.get(60, TimeUnit.SECONDS);
        }
        if (n != inflight) {
            leaders = cluster.awaitLeaders();
        }
        return n;
    }
}
