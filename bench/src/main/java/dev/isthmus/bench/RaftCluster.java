package dev.isthmus.bench;

import dev.isthmus.log.LogConfig;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.GroupListener;
import dev.isthmus.raft.RaftConfig;
import dev.isthmus.raft.StateMachine;
import dev.isthmus.raft.net.TransportConfig;
import dev.isthmus.raft.net.TransportMetrics;
import dev.isthmus.raft.server.RaftServer;
import dev.isthmus.raft.server.RaftServerConfig;
import dev.isthmus.raft.server.ReplicatedLog;
import dev.isthmus.raft.server.StoragePools;
import dev.isthmus.raft.storage.LogEngineRaftLog;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.ShardGroup;
import dev.isthmus.uring.shard.ShardGroupConfig;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Raft nodes for the benchmarks: each a {@link RaftServer} on its own shard group (pinning off), talking over
 * TCP on 127.0.0.1, with logs on the real disk in {@code -Disthmus.bench.dir} (default java.io.tmpdir), and
 * {@code groups} groups replicated by every node. Not itself a benchmark.
 */
final class RaftCluster implements AutoCloseable {
    final Path dir;
    final ShardGroup[] shardGroups;
    final RaftServer[] servers;
    final int shards;
    final int groups;

    RaftCluster(int nodes, int shards, int groups, String name) throws Exception {
        this.shards = shards;
        this.groups = groups;
        this.dir = Files.createTempDirectory(Path.of(System.getProperty("isthmus.bench.dir",
            System.getProperty("java.io.tmpdir"))), name);
        this.shardGroups = new ShardGroup[nodes];
        this.servers = new RaftServer[nodes];
        RaftConfig raft = RaftConfig.builder().heartbeatIntervalMs(150).electionTimeoutMs(1500, 3000)
            .maxInflightAppends(32).build();
        LogConfig log = LogConfig.defaults().withSegmentBytes(groups > 64 ? 1 << 20 : 64L << 20)
            .withFallocateStep(groups > 64 ? 0 : 8L << 20);
        int chunkBytes = groups > 64 ? 16 * 1024 : 256 * 1024;
        int chunks = Math.max(64, 2 * groups / shards + 32);
        for (int i = 0; i < nodes; i++) {
            shardGroups[i] = ShardGroup.start(ShardGroupConfig.of(shards).withPin(false), null);
            RaftServerConfig c = RaftServerConfig.of(i, "bench", new InetSocketAddress("127.0.0.1", 0),
                    java.util.Map.of(), java.util.Set.of(), dir.resolve("node" + i))
                .withRaft(raft)
                .withTransport(TransportConfig.defaults("bench"))
                .withLog(log, LogEngineRaftLog.Options.defaults());
            servers[i] = RaftServer.start(shardGroups[i], c, StoragePools.allocate(shards, chunks, chunkBytes, 4,
                log.readWindowBytes()));
        }
        for (RaftServer a : servers) {
            for (RaftServer b : servers) {
                if (a != b) {
                    a.transport().addPeer(b.nodeId(), b.rpcAddress()).get(10, TimeUnit.SECONDS);
                }
            }
        }
        int[] voters = new int[nodes];
        for (int i = 0; i < nodes; i++) {
            voters[i] = i;
        }
        for (RaftServer s : servers) {
            for (long g = 1; g <= groups; g++) {
                long gid = g;
                int preferred = (int) (g % nodes);
                s.onShard(shardOf(g), sh -> sh.addGroup(gid, Configuration.ofVoters(voters), StateMachine.NONE,
                    GroupListener.NONE).map(rl -> {
                        rl.setPreferredLeader(preferred); // leaders spread evenly, as the controller places them
                        return rl;
                    })).get(60, TimeUnit.SECONDS);
            }
        }
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (true) {
            int[] leaders = awaitLeaders();
            boolean balanced = true;
            for (long g = 1; g <= groups && balanced; g++) {
                balanced = leaders[(int) g] == (int) (g % nodes);
            }
            if (balanced || System.nanoTime() > end) {
                break;
            }
            Thread.sleep(200);
        }
    }

    int shardOf(long group) {
        return (int) (group % shards);
    }

    /** The node leading {@code group}, or -1. */
    int leaderOf(long group) throws Exception {
        for (RaftServer s : servers) {
            Boolean l = s.onShard(shardOf(group), sh -> {
                ReplicatedLog g = sh.group(group);
                return Promise.completed(g != null && g.isLeader());
            }).get(10, TimeUnit.SECONDS);
            if (l) {
                return s.nodeId();
            }
        }
        return -1;
    }

    /** Waits until every group has a leader; returns them (index = group id). */
    int[] awaitLeaders() throws Exception {
        int[] leaders = new int[groups + 1];
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        for (long g = 1; g <= groups; g++) {
            int l;
            while ((l = leaderOf(g)) < 0) {
                if (System.nanoTime() > end) {
                    throw new IllegalStateException("group " + g + " elected no leader in 120 s");
                }
                Thread.sleep(10);
            }
            leaders[(int) g] = l;
        }
        return leaders;
    }

    /** Sum over nodes of the transport counters. */
    TransportMetrics metrics() throws Exception {
        TransportMetrics sum = new TransportMetrics();
        for (RaftServer s : servers) {
            sum.add(s.transportMetrics().get(10, TimeUnit.SECONDS));
        }
        return sum;
    }

    @Override
    public void close() {
        for (int i = 0; i < servers.length; i++) {
            if (servers[i] != null) {
                servers[i].close();
            }
            if (shardGroups[i] != null) {
                shardGroups[i].close();
            }
        }
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
