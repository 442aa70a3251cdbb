package dev.isthmus.gateway.cluster;

import dev.isthmus.log.LogConfig;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.RaftConfig;
import dev.isthmus.raft.net.TransportConfig;
import dev.isthmus.raft.server.RaftServer;
import dev.isthmus.raft.server.RaftServerConfig;
import dev.isthmus.raft.server.StoragePools;
import dev.isthmus.raft.storage.LogEngineRaftLog;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.ShardGroup;
import dev.isthmus.uring.shard.ShardGroupConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The controller on real servers in one JVM: three seed voters and a fourth node that joins from the seed
 * list. Commands sent from any node (the joining one forwards them) are applied once, everywhere; the joiner
 * becomes a learner of the controller group and learns every broker's address; a voter restarted on its data
 * keeps the metadata.
 */
class ControllerClusterTest {
    static final long DEADLINE_NS = TimeUnit.SECONDS.toNanos(60);
    static final long TIMEOUT_MS = 20_000;
    static final Set<Integer> SEEDS = Set.of(0, 1, 2);

    @TempDir
    Path dir;
    final Map<Integer, Integer> ports = new HashMap<>();
    final Node[] nodes = new Node[4];

    final class Node {
        final int id;
        ShardGroup shards;
        RaftServer server;
        Controller controller;
        java.util.concurrent.CompletableFuture<ClusterState> registered;

        Node(int id) {
            this.id = id;
        }

        void start() {
            shards = ShardGroup.start(ShardGroupConfig.of(2).withPin(false), null);
            Map<Integer, InetSocketAddress> seeds = new HashMap<>();
            for (int s : SEEDS) {
                seeds.put(s, new InetSocketAddress("127.0.0.1", ports.get(s)));
            }
            RaftServerConfig c = RaftServerConfig.of(id, "ctl-test", new InetSocketAddress("127.0.0.1", ports.get(id)),
                    seeds, SEEDS, dir.resolve("node" + id))
                .withRaft(RaftConfig.builder().heartbeatIntervalMs(50).electionTimeoutMs(300, 600)
                    .retransmitTimeoutMs(200).build())
                .withTransport(TransportConfig.defaults("ctl-test").withTimeouts(1000, 50, 2000).withBackoff(20, 200))
                .withLog(LogConfig.defaults().withSegmentBytes(1 << 20).withFallocateStep(256 * 1024),
                    LogEngineRaftLog.Options.defaults());
            server = RaftServer.start(shards, c, StoragePools.allocate(2, 8, 64 * 1024, 2,
                c.logConfig().readWindowBytes()));
            controller = get(shards.callAsync(RaftServer.CONTROLLER_SHARD, sh -> Controller.start(server)));
            registered = controller.register(new BrokerInfo(id, "127.0.0.1", 9000 + id, "127.0.0.1", ports.get(id), 2));
        }

        void stop() {
            if (controller != null) {
                get(shards.call(RaftServer.CONTROLLER_SHARD, sh -> {
                    controller.close();
                    return null;
                }));
                controller = null;
            }
            if (server != null) {
                server.close();
                server = null;
            }
            if (shards != null) {
                shards.close();
                shards = null;
            }
        }

        Controller controller() {
            return controller;
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

    static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** Waits for a start or stop of the controller on its shard (run from the test thread). */
    static <T> T get(java.util.concurrent.CompletableFuture<T> f) {
        try {
            return f.get(60, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new IllegalStateException("the controller did not start or stop: " + e, e);
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

    ControllerResult ok(java.util.concurrent.CompletableFuture<ControllerResult> f) throws Exception {
        ControllerResult r = f.get(TIMEOUT_MS * 2, TimeUnit.MILLISECONDS);
        assertTrue(r.isOk(), String.valueOf(r));
        return r;
    }

    @Test
    void shouldCatchUpAStoppedVoterThroughASnapshot() throws Exception {
        // Read when each controller starts: snapshots every 10 entries, so the leader's log no longer holds what
        // the stopped voter misses and it must install the snapshot over the transport.
        System.setProperty("isthmus.controller.snapshotEntries", "10");
        try {
            for (int i = 0; i < 3; i++) {
                ports.put(i, freePort());
            }
            for (int i = 0; i < 3; i++) {
                nodes[i] = new Node(i);
                nodes[i].start();
            }
            await("three brokers registered", () -> Arrays.stream(nodes, 0, 3)
                .allMatch(n -> n.controller().state().brokers().size() == 3));
            for (int t = 0; t < 15; t++) {
                ok(nodes[t % 3].controller().createTopic("before-" + t, 1, 3, Map.of(), TIMEOUT_MS));
            }
            nodes[2].stop();
            for (int t = 0; t < 40; t++) {
                ok(nodes[t % 2].controller().createTopic("during-" + t, 2, 2, Map.of("k", "v" + t), TIMEOUT_MS));
            }
            ClusterState expected = nodes[0].controller().state();
            nodes[2].start();
            await("the restarted voter has every topic", () -> {
                ClusterState s = nodes[2].controller().state();
                return s.appliedOffset() >= expected.appliedOffset() && s.topics().size() == 55;
            });
            ClusterState s2 = nodes[2].controller().state();
            for (TopicInfo t : expected.topics()) {
                assertEquals(t, s2.topic(t.name()), "topic " + t.name() + " after the snapshot install");
            }
            long start = nodes[0].server.onShard(RaftServer.CONTROLLER_SHARD, sh -> Promise.completed(
                sh.group(ClusterState.CONTROLLER_GROUP_ID).raft().startOffset())).get(10, TimeUnit.SECONDS);
            assertTrue(start > 0, "the leader compacted its controller log (start offset " + start + ")");
            long installed = nodes[2].server.onShard(RaftServer.CONTROLLER_SHARD, sh -> Promise.completed(
                sh.group(ClusterState.CONTROLLER_GROUP_ID).raft().metrics().snapshotsInstalled())).get(10, TimeUnit.SECONDS);
            assertTrue(installed >= 1, "the restarted voter installed the leader's snapshot");
        } finally {
            System.clearProperty("isthmus.controller.snapshotEntries");
        }
    }

    @Test
    void shouldApplyCommandsFromAnyNodeAndLetANodeJoinFromTheSeeds() throws Exception {
        for (int i = 0; i < 4; i++) {
            ports.put(i, freePort());
        }
        for (int i = 0; i < 4; i++) {
            nodes[i] = new Node(i);
            nodes[i].start();
        }
        await("all four brokers registered everywhere", () -> Arrays.stream(nodes)
            .allMatch(n -> n.controller().state().brokers().size() == 4));

        // A command from the joining node (not a voter: it forwards to the leader).
        ok(nodes[3].controller().createTopic("orders", 8, 3, Map.of("retention.ms", "60000"), TIMEOUT_MS));
        TopicInfo t = nodes[3].controller().state().topic("orders");
        assertNotNull(t, "the submitter sees its change at once");
        assertEquals(8, t.partitions().size());
        // Leaders spread over the four brokers: two preferred leaderships each.
        int[] leaders = new int[4];
        t.partitions().forEach(p -> leaders[p.preferredLeader()]++);
        assertTrue(Arrays.stream(leaders).allMatch(l -> l == 2), Arrays.toString(leaders));

        // Same name from two nodes at once: exactly one wins, everywhere.
        var a = nodes[0].controller().createTopic("dup", 1, 1, Map.of(), TIMEOUT_MS);
        var b = nodes[3].controller().createTopic("dup", 1, 1, Map.of(), TIMEOUT_MS);
        ControllerResult ra = a.get(TIMEOUT_MS * 2, TimeUnit.MILLISECONDS);
        ControllerResult rb = b.get(TIMEOUT_MS * 2, TimeUnit.MILLISECONDS);
        assertTrue(ra.isOk() != rb.isOk(), ra + " / " + rb);
        assertEquals(ControllerErrors.TOPIC_ALREADY_EXISTS, ra.isOk() ? rb.errorCode() : ra.errorCode());

        ok(nodes[1].controller().createPartitions("orders", 10, TIMEOUT_MS));
        ok(nodes[2].controller().alterConfigs("orders", Map.of("cleanup.policy", "compact"), Set.of("retention.ms"),
            TIMEOUT_MS));
        ok(nodes[3].controller().deleteTopic("dup", TIMEOUT_MS));
        ControllerResult bad = nodes[3].controller().deleteTopic("dup", TIMEOUT_MS).get(TIMEOUT_MS * 2,
            TimeUnit.MILLISECONDS);
        assertEquals(ControllerErrors.UNKNOWN_TOPIC_OR_PARTITION, bad.errorCode());

        await("every node has the same metadata", () -> {
            ClusterState s0 = nodes[0].controller().state();
            for (Node n : nodes) {
                ClusterState s = n.controller().state();
                if (s.appliedOffset() < bad.appliedOffset() || s.topic("dup") != null || s.topic("orders") == null
                    || s.topic("orders").partitions().size() != 10
                    || !s.topic("orders").configs().equals(Map.of("cleanup.policy", "compact"))
                    || !new java.util.ArrayList<>(s.topics()).equals(new java.util.ArrayList<>(s0.topics()))) {
                    return false;
                }
            }
            return true;
        });

        // The joiner replicates the metadata as a learner of the controller group, and knows every peer.
        Configuration[] config = new Configuration[1];
        await("node 3 is a learner of the controller group", () -> {
            try {
                config[0] = nodes[0].server.onShard(RaftServer.CONTROLLER_SHARD,
                    s -> Promise.completed(s.group(ClusterState.CONTROLLER_GROUP_ID).configuration())).get();
            } catch (Exception e) {
                throw new AssertionError(e);
            }
            return config[0].isLearner(3) && !config[0].isJoint();
        });
        assertTrue(config[0].isVoter(0) && config[0].isVoter(1) && config[0].isVoter(2) && !config[0].isVoter(3));
        await("node 3 knows the other brokers' RPC addresses", () -> {
            try {
                return nodes[3].server.onShard(0, s -> Promise.completed(s.transport().isConnected(0)
                    && s.transport().isConnected(1) && s.transport().isConnected(2))).get();
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });

        // A voter restarted on its data keeps the metadata and catches up on what it missed.
        nodes[1].stop();
        ok(nodes[3].controller().createTopic("while-down", 2, 2, Map.of(), TIMEOUT_MS));
        nodes[1].start();
        await("restarted voter catches up", () -> nodes[1].controller().state().topic("while-down") != null
            && nodes[1].controller().state().topic("orders") != null);
        assertNull(nodes[1].controller().state().topic("dup"));
    }

    /**
     * Soak seed 2231 (bench/chaos, 3 nodes): a restarted node's registration failed for 76 s while the controller
     * leader, on a loaded machine, took longer than the 2 s attempt timeout to apply each forwarded command. The
     * answer to every attempt arrived after the node had sent the command again and forgotten the first request, so
     * no attempt could ever complete; the node installs no metadata before its registration, so it hosted none of
     * its replicas (stuck-replica). The same loss of a late answer turned a CreateTopics that succeeded into
     * TOPIC_ALREADY_EXISTS (its resend). Here every attempt times out after 1 ms, before any answer can arrive.
     */
    @Test
    void shouldCompleteForwardedCommandsWhoseAnswerComesAfterTheAttemptTimeout() throws Exception {
        System.setProperty("isthmus.controller.attemptTimeoutMs", "1");
        try {
            for (int i = 0; i < 3; i++) {
                ports.put(i, freePort());
            }
            for (int i = 0; i < 3; i++) {
                nodes[i] = new Node(i);
                nodes[i].start();
            }
            for (int i = 0; i < 3; i++) {
                ClusterState s = nodes[i].registered.get(60, TimeUnit.SECONDS);
                assertNotNull(s.broker(i), "node " + i + " completed its registration with itself in the state");
            }
            await("a controller leader", () -> Arrays.stream(nodes, 0, 3).anyMatch(n -> n.controller().isLeader()));
            Node follower = Arrays.stream(nodes, 0, 3).filter(n -> !n.controller().isLeader()).findFirst().orElseThrow();
            for (int t = 0; t < 5; t++) {
                // Sent again after 1 ms, and more: the answer of the first send is the outcome, not TOPIC_ALREADY_EXISTS.
                ControllerResult r = ok(follower.controller().createTopic("late-" + t, 2, 3, Map.of(), TIMEOUT_MS));
                assertEquals(2, follower.controller().state().topic("late-" + t).partitions().size(), String.valueOf(r));
            }
        } finally {
            System.clearProperty("isthmus.controller.attemptTimeoutMs");
        }
    }
}
