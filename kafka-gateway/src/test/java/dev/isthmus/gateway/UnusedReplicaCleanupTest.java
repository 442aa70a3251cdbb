package dev.isthmus.gateway;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A replica removed while its node was down loses its files when the node starts again: on four broker processes,
 * node 2 holds a replica of {@code moved-0} and of {@code gone-0} and is stopped; {@code moved-0} is reassigned from
 * {0,1,2} to {0,1,3} and {@code gone} is deleted. Node 2 never installed those states, so nothing dropped its two
 * directories. Once it starts again and catches up, both directories are gone from its disk, while the replica it
 * still holds ({@code kept-0}) keeps its directory.
 */
@Timeout(300)
class UnusedReplicaCleanupTest {

    @Test
    void shouldDeleteTheDirectoriesOfReplicasRemovedWhileTheNodeWasDown(@TempDir Path dir) throws Exception {
        try (BrokerProcesses cluster = new BrokerProcesses(4, dir, List.of("--partition-balancer", "false"))) {
            try {
                run(cluster);
            } catch (Throwable t) {
                System.err.println(cluster.tail(150));
                throw t;
            }
        }
    }

    private void run(BrokerProcesses cluster) throws Exception {
        Path logs2 = cluster.node(2).dir().resolve("logs");
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap());
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");
        try (Admin admin = Admin.create(p)) {
            for (String t : List.of("moved", "gone", "kept")) {
                create(admin, new NewTopic(t, Map.of(0, List.of(0, 1, 2))));
            }
            for (String t : List.of("moved", "gone", "kept")) {
                await("node 2's directory of " + t + "-0", () -> Files.isRegularFile(logs2.resolve(t + "-0")
                    .resolve(ShardState.METADATA_FILE)));
            }
        }
        cluster.terminate(2);
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapExcept(2));
        try (Admin admin = Admin.create(p)) {
            admin.alterPartitionReassignments(Map.of(new TopicPartition("moved", 0),
                Optional.of(new NewPartitionReassignment(List.of(0, 1, 3))))).all().get(60, TimeUnit.SECONDS);
            admin.deleteTopics(List.of("gone")).all().get(60, TimeUnit.SECONDS);
            await("moved-0 on {0,1,3} with no reassignment left", () -> {
                TopicDescription d = admin.describeTopics(List.of("moved")).allTopicNames().get(30, TimeUnit.SECONDS)
                    .get("moved");
                return d.partitions().get(0).replicas().stream().map(n -> n.id()).sorted().toList()
                    .equals(List.of(0, 1, 3)) && admin.listPartitionReassignments().reassignments()
                    .get(30, TimeUnit.SECONDS).isEmpty();
            });
        }
        assertTrue(Files.exists(logs2.resolve("moved-0")) && Files.exists(logs2.resolve("gone-0")),
            "node 2 was down: nothing removed its directories yet");
        cluster.start(2);
        // Renamed away at once, then deleted in the background: nothing of either is left.
        await("node 2 removed moved-0 and gone-0", () -> left(logs2).isEmpty());
        assertTrue(Files.isRegularFile(logs2.resolve("kept-0").resolve(ShardState.METADATA_FILE)),
            "the replica node 2 still holds keeps its directory");
        assertTrue(cluster.output().stream().anyMatch(l -> l.startsWith("node 2:") && l.contains("removing the directory"
            + " of moved-0")), "node 2 says what it removed");
        assertFalse(cluster.output().stream().anyMatch(l -> l.startsWith("node 2:") && l.contains("removing the"
            + " directory of kept-0")));
    }

    private static List<String> left(Path logs) throws java.io.IOException {
        try (var list = Files.list(logs)) {
            return list.map(f -> f.getFileName().toString()).filter(n -> n.startsWith("moved-") || n.startsWith("gone-"))
                .toList();
        }
    }

    private interface Check {
        boolean done() throws Exception;
    }

    private static void await(String what, Check check) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(150);
        Exception last = null;
        while (System.nanoTime() < deadline) {
            try {
                if (check.done()) {
                    return;
                }
            } catch (Exception e) {
                last = e;
            }
            Thread.sleep(300);
        }
        throw new AssertionError("not reached: " + what + (last != null ? " (" + last + ")" : ""));
    }

    private static void create(Admin admin, NewTopic topic) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (true) {
            try {
                admin.createTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS);
                return;
            } catch (Exception e) {
                if (e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException) {
                    return;
                }
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("the cluster did not create " + topic + ": " + e, e);
                }
                Thread.sleep(500);
            }
        }
    }
}
