package dev.isthmus.raft.server;

import dev.isthmus.log.LogConfig;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.GroupListener;
import dev.isthmus.raft.RaftConfig;
import dev.isthmus.raft.StateMachine;
import dev.isthmus.raft.net.TransportConfig;
import dev.isthmus.raft.net.TransportFrames;
import dev.isthmus.raft.net.TransportMetrics;
import dev.isthmus.raft.storage.KafkaBatchPayload;
import dev.isthmus.raft.storage.LogEngineRaftLog;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.ShardGroup;
import dev.isthmus.uring.shard.ShardGroupConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Three Raft servers in one JVM, each on its own shard group (two shards) with real sockets on 127.0.0.1 and
 * real files: groups placed on different shards on different nodes replicate and commit; a node stopped and
 * started again on the same port and data catches up; corrupt and foreign connections are refused without
 * disturbing the cluster.
 */
class RaftServerTest {
    static final long DEADLINE_NS = TimeUnit.SECONDS.toNanos(60);
    static final RaftConfig RAFT = RaftConfig.builder().heartbeatIntervalMs(50).electionTimeoutMs(300, 600)
        .retransmitTimeoutMs(200).build();

    @TempDir
    Path dir;
    final Node[] nodes = new Node[3];

    final class Node {
        final int id;
        ShardGroup shards;
        RaftServer server;
        int port;

        Node(int id) {
            this.id = id;
        }

        void start(Map<Integer, InetSocketAddress> peers) {
            shards = ShardGroup.start(ShardGroupConfig.of(2).withPin(false), null);
            RaftServerConfig c = RaftServerConfig.of(id, "test-cluster", new InetSocketAddress("127.0.0.1", port),
                    peers, Set.of(), dir.resolve("node" + id))
                .withRaft(RAFT)
                .withTransport(TransportConfig.defaults("test-cluster").withTimeouts(1000, 50, 2000).withBackoff(20, 200))
                .withLog(LogConfig.defaults().withSegmentBytes(1 << 20).withFallocateStep(256 * 1024),
                    LogEngineRaftLog.Options.defaults());
            server = RaftServer.start(shards, c, StoragePools.allocate(2, 16, 64 * 1024, 4,
                c.logConfig().readWindowBytes()));
            port = server.rpcAddress().getPort();
        }

        void stop() {
            if (server != null) {
                server.close();
                server = null;
            }
            if (shards != null) {
                shards.close();
                shards = null;
            }
        }

        <T> T on(int shard, java.util.function.Function<RaftShard, Promise<T>> fn) throws Exception {
            return server.onShard(shard, fn).get(30, TimeUnit.SECONDS);
        }

        <T> T read(int shard, java.util.function.Function<RaftShard, T> fn) throws Exception {
            return server.onShard(shard, s -> Promise.completed(fn.apply(s))).get(30, TimeUnit.SECONDS);
        }
    }

    void startAll() {
        for (int i = 0; i < 3; i++) {
            nodes[i] = new Node(i);
            nodes[i].start(Map.of());
        }
        for (Node n : nodes) {
            for (Node p : nodes) {
                if (p != n) {
                    n.server.transport().addPeer(p.id, new InetSocketAddress("127.0.0.1", p.port)).join();
                }
            }
        }
    }

    @AfterEach
    void tearDown() {
        for (Node n : nodes) {
            if (n != null) {
                n.stop();
            }
        }
    }

    static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + DEADLINE_NS;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(20);
        }
    }

    /** The shard of group {@code g} on node {@code n}: deliberately different across nodes. */
    static int shardOf(long g, int n) {
        return (int) ((g + n) % 2);
    }

    void addGroup(long g) throws Exception {
        for (Node n : nodes) {
            n.on(shardOf(g, n.id), s -> s.addGroup(g, Configuration.ofVoters(0, 1, 2), StateMachine.NONE,
                GroupListener.NONE));
        }
    }

    int leaderOf(long g) {
        for (Node n : nodes) {
            if (n.server == null) {
                continue;
            }
            try {
                Boolean leader = n.read(shardOf(g, n.id), s -> s.group(g) != null && s.group(g).isLeader());
                if (leader) {
                    return n.id;
                }
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }
        return -1;
    }

    long highWatermark(Node n, long g) throws Exception {
        return n.read(shardOf(g, n.id), s -> s.group(g) == null ? -1L : s.group(g).highWatermark());
    }

    /** Replicates {@code count} single-record batches through the leader; returns the last committed base offset. */
    long replicate(long g, int count, String tag) throws Exception {
        long last = -1;
        int done = 0;
        long end = System.nanoTime() + DEADLINE_NS;
        while (done < count) {
            if (System.nanoTime() > end) {
                throw new AssertionError("could not replicate " + count + " entries to group " + g + ": " + describe(g));
            }
            int leader = leaderOf(g);
            if (leader < 0) {
                Thread.sleep(20);
                continue;
            }
            Node n = nodes[leader];
            List<CompletableFuture<Long>> batch = new ArrayList<>();
            int from = done;
            int k = Math.min(50, count - done);
            try {
                for (int i = 0; i < k; i++) {
                    byte[] v = (tag + "-" + (from + i)).getBytes(StandardCharsets.UTF_8);
                    batch.add(n.server.onShard(shardOf(g, leader), s -> s.group(g).replicate(
                        KafkaBatchPayload.ofValues(System.currentTimeMillis(), v))));
                }
                for (CompletableFuture<Long> f : batch) {
                    last = Math.max(last, f.get(30, TimeUnit.SECONDS));
                }
                done += k;
            } catch (Exception e) {
                Thread.sleep(20); // leadership moved: retry the batch (duplicates are fine here)
            }
        }
        return last;
    }

    String describe(long g) {
        StringBuilder b = new StringBuilder();
        for (Node n : nodes) {
            if (n.server == null) {
                continue;
            }
            try {
                b.append("\n node ").append(n.id).append(": ")
                    .append((String) n.read(shardOf(g, n.id), s -> s.group(g) + " " + s.node().metrics()))
                    .append("\n   ").append(n.server.transportMetrics().get(10, TimeUnit.SECONDS));
            } catch (Exception e) {
                b.append(e);
            }
        }
        return b.toString();
    }

    @Test
    void shouldReplicateGroupsPlacedOnDifferentShardsOnEachNode() throws Exception {
        startAll();
        for (long g = 1; g <= 6; g++) {
            addGroup(g);
        }
        for (long g = 1; g <= 6; g++) {
            long g0 = g;
            long last = replicate(g, 120, "g" + g);
            for (Node n : nodes) {
                await("node " + n.id + " commits group " + g0, () -> {
                    try {
                        return highWatermark(n, g0) > last;
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                });
            }
        }
        TransportMetrics m = nodes[0].server.transportMetrics().get(10, TimeUnit.SECONDS);
        assertTrue(m.framesSent() > 0 && m.framesReceived() > 0, m.toString());
        assertEquals(0, m.corruptFrames(), m.toString());
    }

    @Test
    void shouldCatchUpAfterANodeRestartsOnTheSamePortAndData() throws Exception {
        startAll();
        long g = 3;
        addGroup(g);
        long first = replicate(g, 100, "before");
        Node victim = nodes[(leaderOf(g) + 1) % 3];
        victim.stop();
        long last = replicate(g, 200, "during");
        assertTrue(last > first);
        victim.start(Map.of(0, addr(nodes[0]), 1, addr(nodes[1]), 2, addr(nodes[2])));
        victim.on(shardOf(g, victim.id), s -> s.addGroup(g, Configuration.ofVoters(0, 1, 2), StateMachine.NONE,
            GroupListener.NONE));
        await("restarted node " + victim.id + " catches up", () -> {
            try {
                return highWatermark(victim, g) > last;
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        long more = replicate(g, 50, "after");
        await("every node commits after the restart", () -> {
            for (Node n : nodes) {
                try {
                    if (highWatermark(n, g) <= more) {
                        return false;
                    }
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            }
            return true;
        });
    }

    @Test
    void shouldHandLeadershipToThePreferredLeaders() throws Exception {
        startAll();
        for (long g = 1; g <= 6; g++) {
            addGroup(g);
            long gid = g;
            int preferred = (int) (g % 3);
            for (Node n : nodes) {
                n.read(shardOf(g, n.id), s -> {
                    s.group(gid).setPreferredLeader(preferred);
                    return null;
                });
            }
        }
        replicate(1, 10, "warm");
        await("every group led by its preferred leader", () -> {
            for (long g = 1; g <= 6; g++) {
                if (leaderOf(g) != (int) (g % 3)) {
                    return false;
                }
            }
            return true;
        });
        long last = replicate(4, 50, "after");
        assertEquals(1, leaderOf(4));
        assertTrue(last >= 0);
    }

    InetSocketAddress addr(Node n) {
        return new InetSocketAddress("127.0.0.1", n.port);
    }

    @Test
    void shouldCloseConnectionsThatSendGarbageOrBelongToAnotherCluster() throws Exception {
        startAll();
        long g = 5;
        addGroup(g);
        replicate(g, 20, "x");
        // Garbage: an HTTP request on the RPC port.
        try (Socket s = new Socket("127.0.0.1", nodes[0].port)) {
            s.setSoTimeout(10_000);
            OutputStream out = s.getOutputStream();
            out.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            assertEquals(-1, s.getInputStream().read(), "the node closes a connection sending garbage");
        }
        // A well-formed hello from another cluster.
        try (Socket s = new Socket("127.0.0.1", nodes[1].port)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(TransportFrames.encode(new TransportFrames.Hello(7, 1, 42, "other-cluster",
                "127.0.0.1", 1)));
            InputStream in = s.getInputStream();
            assertEquals(-1, in.read(), "the node closes a connection from another cluster without a hello");
        }
        // A hello naming the wrong node.
        try (Socket s = new Socket("127.0.0.1", nodes[2].port)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(TransportFrames.encode(new TransportFrames.Hello(7, 1, 42, "test-cluster",
                "127.0.0.1", 1)));
            assertEquals(-1, s.getInputStream().read(), "the node closes a connection meant for another node");
        }
        long last = replicate(g, 20, "y");
        await("the cluster still commits", () -> {
            try {
                return highWatermark(nodes[0], g) > last && highWatermark(nodes[1], g) > last
                    && highWatermark(nodes[2], g) > last;
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        TransportMetrics m0 = nodes[0].server.transportMetrics().get(10, TimeUnit.SECONDS);
        assertTrue(m0.corruptFrames() >= 1, m0.toString());
        TransportMetrics m1 = nodes[1].server.transportMetrics().get(10, TimeUnit.SECONDS);
        assertTrue(m1.handshakeFailures() >= 1, m1.toString());
    }
}
