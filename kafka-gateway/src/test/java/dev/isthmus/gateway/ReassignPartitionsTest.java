package dev.isthmus.gateway;

import dev.isthmus.gateway.KafkaTool.Run;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.PartitionReassignment;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.InvalidReplicaAssignmentException;
import org.apache.kafka.common.errors.NoReassignmentInProgressException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.tools.reassign.ReassignPartitionsCommand;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Moving replicas on three broker processes (as {@link ClusterTest} starts them; nodes 0, 1, 2): under a steady
 * idempotent acks=all producer, one partition moves from {0,1} to {1,2} and one grows from {0} to {0,1,2} through
 * AlterPartitionReassignments; no acknowledged record is lost or doubled, the removed replica's directory is gone,
 * and the grown partition serves everything from its new replicas with its only original replica killed. A move to a
 * node that is down stays listed by ListPartitionReassignments (replicas = target ++ removing, adding, removing;
 * Metadata lists the union) until {@code kafka-reassign-partitions.sh --cancel} rolls it back. Kafka's errors for
 * unknown partitions, unknown brokers and a cancel of nothing, and {@code kafka-reassign-partitions.sh --generate,
 * --execute, --verify} end to end.
 */
@Timeout(300)
class ReassignPartitionsTest {
    @Test
    void shouldMoveAndGrowReplicasUnderAcksAllLoadWithoutLosingARecord(@TempDir Path dir) throws Exception {
        try (BrokerProcesses cluster = new BrokerProcesses(3, dir, List.of("--replica-lag-time-max-ms", "2000"))) {
            try {
                moveUnderLoad(cluster);
            } catch (Throwable t) {
                System.err.println(cluster.tail(150));
                throw t;
            }
        }
    }

    @Test
    void shouldListAMoveToADownNodeCancelItAndAnswerKafkaErrorsAndRunTheTool(@TempDir Path dir) throws Exception {
        try (BrokerProcesses cluster = new BrokerProcesses(3, dir, List.of("--replica-lag-time-max-ms", "2000"))) {
            try {
                cancelAndTool(cluster, dir);
            } catch (Throwable t) {
                System.err.println(cluster.tail(150));
                throw t;
            }
        }
    }

    // ------------------------------------------------------------------ moves under load

    private void moveUnderLoad(BrokerProcesses cluster) throws Exception {
        String moved = "moved";
        String grown = "grown";
        try (Admin admin = admin(cluster.bootstrap())) {
            create(admin, new NewTopic(moved, Map.of(0, List.of(0, 1))));
            create(admin, new NewTopic(grown, Map.of(0, List.of(0))));
            await(admin, List.of(moved, grown), "leaders", d -> leaders(d) && inSync(d));

            Load load = new Load(cluster.bootstrap(), List.of(moved, grown));
            load.start();
            load.awaitAcked(300);
            // The grown partition's log no longer starts at 0: its new replicas start from the leader's log start.
            long deletedBelow = load.offsetsOf(grown).stream().mapToLong(Long::longValue).max().orElseThrow() / 2;
            assertTrue(deletedBelow > 10, "deleted below " + deletedBelow);
            admin.deleteRecords(Map.of(new TopicPartition(grown, 0), RecordsToDelete.beforeOffset(deletedBelow)))
                .all().get(30, TimeUnit.SECONDS);
            load.deletedBelow(grown, deletedBelow);
            admin.alterPartitionReassignments(Map.of(
                new TopicPartition(moved, 0), Optional.of(new NewPartitionReassignment(List.of(1, 2))),
                new TopicPartition(grown, 0), Optional.of(new NewPartitionReassignment(List.of(0, 1, 2)))))
                .all().get(30, TimeUnit.SECONDS);
            // While it runs, whatever ListPartitionReassignments shows is Kafka's shape: target first, then removing.
            Map<TopicPartition, PartitionReassignment> during = admin.listPartitionReassignments().reassignments()
                .get(30, TimeUnit.SECONDS);
            PartitionReassignment m = during.get(new TopicPartition(moved, 0));
            if (m != null) {
                assertEquals(List.of(1, 2, 0), m.replicas(), m.toString());
                assertEquals(List.of(2), m.addingReplicas());
                assertEquals(List.of(0), m.removingReplicas());
            }
            PartitionReassignment g = during.get(new TopicPartition(grown, 0));
            if (g != null) {
                assertEquals(List.of(0, 1, 2), g.replicas(), g.toString());
                assertEquals(List.of(1, 2), g.addingReplicas());
                assertEquals(List.of(), g.removingReplicas());
            }
            System.out.println("during the move: " + during);

            // Metadata lists the union during the move, and the adding replicas are in sync before the group commits
            // its new configuration and completes the move: wait for ListPartitionReassignments to be empty too.
            Map<String, TopicDescription> after = await(admin, List.of(moved, grown), "the moves done", d ->
                replicas(d.get(moved)).equals(List.of(1, 2)) && replicas(d.get(grown)).equals(List.of(0, 1, 2))
                    && leaders(d) && inSync(d) && noReassignments(admin));
            assertEquals(Map.of(), admin.listPartitionReassignments().reassignments().get(30, TimeUnit.SECONDS));
            System.out.println("after the move: " + after);
            long target = load.acked() + 300;
            load.awaitAcked(target);
            load.stop();
            assertEquals(List.of(), load.failures(), "every send succeeded");

            // Node 0 no longer holds moved-0; nodes 1 and 2 hold both partitions.
            awaitGone(cluster.node(0).dir().resolve("logs").resolve(moved + "-0"));
            for (int node : new int[] {1, 2}) {
                assertTrue(Files.isDirectory(cluster.node(node).dir().resolve("logs").resolve(moved + "-0")), "node " + node);
                assertTrue(Files.isDirectory(cluster.node(node).dir().resolve("logs").resolve(grown + "-0")), "node " + node);
            }

            Map<String, Integer> read = readAll(cluster.bootstrap(), List.of(moved, grown));
            assertEveryAckedReadOnce(load, read);
        }

        // The grown partition's data is on its new replicas: with node 0 (its only replica before) gone, nodes 1
        // and 2 serve every acknowledged record of it.
        cluster.kill(0);
        try (Admin admin = admin(cluster.bootstrapExcept(0))) {
            await(admin, List.of(grown), "a leader without node 0", d -> {
                Node l = d.get(grown).partitions().get(0).leader();
                return l != null && l.id() != 0;
            });
        }
        Map<String, Integer> fromNew = readAll(cluster.bootstrapExcept(0), List.of(grown));
        int n = 0;
        for (String v : lastLoad.ackedValues()) {
            if (v.startsWith(grown + ":") && lastLoad.expected(v)) {
                assertEquals(1, fromNew.getOrDefault(v, 0), "acked " + v + " read from nodes 1 and 2");
                n++;
            }
        }
        for (String v : fromNew.keySet()) {
            assertTrue(lastLoad.expected(v), "deleted record " + v + " is not served");
        }
        assertTrue(n > 0);
    }

    private Load lastLoad;

    private void assertEveryAckedReadOnce(Load load, Map<String, Integer> read) {
        int acked = 0;
        for (String v : load.ackedValues()) {
            assertEquals(load.expected(v) ? 1 : 0, read.getOrDefault(v, 0), "acknowledged record " + v
                + " read exactly once (none when deleted)");
            acked++;
        }
        for (Map.Entry<String, Integer> e : read.entrySet()) {
            assertEquals(1, e.getValue(), "record " + e.getKey() + " stored once");
        }
        assertTrue(acked >= 600, "acked " + acked);
        System.out.println("acknowledged " + acked + " records, read " + read.size());
        lastLoad = load;
    }

    /** An idempotent acks=all producer sending numbered records round-robin to partition 0 of each topic. */
    private static final class Load {
        private final KafkaProducer<String, String> producer;
        private final List<String> topics;
        private final Set<String> acked = ConcurrentHashMap.newKeySet();
        private final Map<String, Long> offsets = new ConcurrentHashMap<>();
        private final Map<String, Long> deletedBelow = new ConcurrentHashMap<>();
        private final List<String> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        private final AtomicBoolean stop = new AtomicBoolean();
        private final Thread thread;

        Load(String bootstrap, List<String> topics) {
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
            pp.put(ProducerConfig.LINGER_MS_CONFIG, "2");
            this.producer = new KafkaProducer<>(pp);
            this.topics = topics;
            this.thread = new Thread(this::run, "reassign-load");
        }

        void start() {
            thread.start();
        }

        private void run() {
            long i = 0;
            while (!stop.get()) {
                String topic = topics.get((int) (i % topics.size()));
                String value = topic + ":" + i++;
                producer.send(new ProducerRecord<>(topic, 0, null, value), (md, e) -> {
                    if (e == null) {
                        offsets.put(value, md.offset());
                        acked.add(value);
                    } else {
                        failures.add(value + ": " + e);
                    }
                });
                if (i % 50 == 0) {
                    producer.flush(); // paces the load: at most 50 records in flight
                }
            }
            producer.flush();
        }

        long acked() {
            return acked.size();
        }

        void awaitAcked(long count) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
            while (acked.size() < count) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("only " + acked.size() + " of " + count + " records acknowledged; failures "
                        + failures);
                }
                Thread.sleep(20);
            }
        }

        void stop() throws InterruptedException {
            stop.set(true);
            thread.join(120_000);
            producer.close(Duration.ofSeconds(30));
        }

        List<Long> offsetsOf(String topic) {
            return offsets.entrySet().stream().filter(e -> e.getKey().startsWith(topic + ":")).map(Map.Entry::getValue)
                .toList();
        }

        void deletedBelow(String topic, long offset) {
            deletedBelow.put(topic, offset);
        }

        /** Whether acknowledged record {@code value} is still to be read (not below a DeleteRecords point). */
        boolean expected(String value) {
            String topic = value.substring(0, value.indexOf(':'));
            return offsets.get(value) >= deletedBelow.getOrDefault(topic, 0L);
        }

        Set<String> ackedValues() {
            return acked;
        }

        List<String> failures() {
            return new ArrayList<>(failures);
        }
    }

    // ------------------------------------------------------------------ cancel, errors and the tool

    private void cancelAndTool(BrokerProcesses cluster, Path dir) throws Exception {
        String t = "t";
        String u = "u";
        String v = "v";
        TopicPartition t0 = new TopicPartition(t, 0);
        try (Admin admin = admin(cluster.bootstrap())) {
            create(admin, new NewTopic(t, Map.of(0, List.of(0, 1))));
            create(admin, new NewTopic(u, Map.of(0, List.of(0, 1))));
            create(admin, new NewTopic(v, Map.of(0, List.of(0, 1))));
            await(admin, List.of(t, u, v), "leaders", d -> leaders(d) && inSync(d));

            assertInstanceOf(UnknownTopicOrPartitionException.class, alterError(admin, new TopicPartition("nope", 0),
                List.of(0, 1)));
            assertInstanceOf(UnknownTopicOrPartitionException.class, alterError(admin, new TopicPartition(t, 5),
                List.of(0, 1)));
            assertInstanceOf(InvalidReplicaAssignmentException.class, alterError(admin, t0, List.of(0, 7)));
            assertInstanceOf(InvalidReplicaAssignmentException.class, alterError(admin, t0, List.of(1, 1)));
            assertInstanceOf(NoReassignmentInProgressException.class, alterError(admin, t0, null));
            // v1's guard (KIP-860): a changed replication factor is refused when the request does not allow it.
            try {
                admin.alterPartitionReassignments(Map.of(t0, Optional.of(new NewPartitionReassignment(List.of(0, 1, 2)))),
                    new org.apache.kafka.clients.admin.AlterPartitionReassignmentsOptions()
                        .allowReplicationFactorChange(false)).all().get(30, TimeUnit.SECONDS);
                throw new AssertionError("a replication factor change was accepted");
            } catch (ExecutionException e) {
                assertInstanceOf(org.apache.kafka.common.errors.InvalidReplicationFactorException.class, e.getCause());
            }
            assertEquals(Map.of(), admin.listPartitionReassignments().reassignments().get(30, TimeUnit.SECONDS),
                "refused requests started nothing");
        }

        // A move to node 2 while it is down cannot finish: it stays listed, and Metadata names the union.
        cluster.kill(2);
        try (Admin admin = admin(cluster.bootstrapExcept(2))) {
            admin.alterPartitionReassignments(Map.of(t0, Optional.of(new NewPartitionReassignment(List.of(1, 2))),
                new TopicPartition(v, 0), Optional.of(new NewPartitionReassignment(List.of(0, 2)))))
                .all().get(30, TimeUnit.SECONDS);
            produce(cluster.bootstrapExcept(2), v, 20);
            // kafka-topics.sh --describe shows the move (it asks ListPartitionReassignments).
            String described = topicsDescribe(cluster.bootstrapExcept(2), v);
            assertTrue(described.contains("Adding Replicas: 2") && described.contains("Removing Replicas: 1"), described);
            Map<TopicPartition, PartitionReassignment> listed = admin.listPartitionReassignments().reassignments()
                .get(30, TimeUnit.SECONDS);
            assertEquals(Set.of(t0, new TopicPartition(v, 0)), listed.keySet());
            assertEquals(List.of(1, 2, 0), listed.get(t0).replicas());
            assertEquals(List.of(2), listed.get(t0).addingReplicas());
            assertEquals(List.of(0), listed.get(t0).removingReplicas());
            assertEquals(Map.of(t0, listed.get(t0)).toString(), admin.listPartitionReassignments(
                Set.of(t0, new TopicPartition(u, 0))).reassignments().get(30, TimeUnit.SECONDS).toString(),
                "only the named partitions that move");
            Map<String, TopicDescription> d = admin.describeTopics(List.of(t)).allTopicNames().get(30, TimeUnit.SECONDS);
            assertEquals(List.of(1, 2, 0), d.get(t).partitions().get(0).replicas().stream().map(Node::id).toList(),
                "Metadata lists target ++ removing during the move");
            produce(cluster.bootstrapExcept(2), t, 20); // acks=all still works on the original replicas

            Path json = dir.resolve("cancel.json");
            Files.writeString(json, "{\"version\":1,\"partitions\":[{\"topic\":\"t\",\"partition\":0,\"replicas\":[1,2]}]}");
            // --preserve-throttles: clearing them sends IncrementalAlterConfigs to every broker, node 2 included,
            // which is down (the tool fails the same way against Kafka with a broker down).
            Run cancel = tool(cluster.bootstrapExcept(2), "--cancel", "--preserve-throttles", "--reassignment-json-file",
                json.toString());
            assertEquals(0, cancel.code(), cancel.err());
            assertTrue(cancel.out().contains("Successfully cancelled partition reassignment for: t-0"), cancel.out());
            // Back on {0, 1}; the order is the union's without the adding replicas, as Kafka's revert leaves it.
            await(admin, List.of(t), "the move rolled back", x -> replicas(x.get(t)).equals(List.of(1, 0))
                && leaders(x));
            assertEquals(Set.of(new TopicPartition(v, 0)), admin.listPartitionReassignments().reassignments()
                .get(30, TimeUnit.SECONDS).keySet(), "the move of v to node 2 waits for it");
        }
        cluster.start(2);
        try (Admin admin = admin(cluster.bootstrap())) {
            await(admin, List.of(t, u), "leaders", d -> leaders(d) && inSync(d));
            try (Admin two = admin("127.0.0.1:" + cluster.node(2).kafkaPort())) {
                await(two, List.of(t, u), "node 2 back with the topics", d -> leaders(d));
            }
            assertFalse(Files.exists(cluster.node(2).dir().resolve("logs").resolve("t-0")), "node 2 never hosted t-0");
            assertEquals(20, readAll(cluster.bootstrap(), List.of(t)).size());
            // The move of v finishes once node 2 is back and caught up.
            await(admin, List.of(v), "v on nodes 0 and 2", d -> replicas(d.get(v)).equals(List.of(0, 2)) && leaders(d)
                && inSync(d));
            awaitGone(cluster.node(1).dir().resolve("logs").resolve("v-0"));
            assertEquals(20, readAll(cluster.bootstrap(), List.of(v)).size());

            // kafka-reassign-partitions.sh: --generate proposes, --execute starts, --verify reports and finishes.
            Path topics = dir.resolve("topics.json");
            Files.writeString(topics, "{\"version\":1,\"topics\":[{\"topic\":\"u\"}]}");
            Run gen = tool(cluster.bootstrap(), "--generate", "--topics-to-move-json-file", topics.toString(),
                "--broker-list", "1,2");
            assertEquals(0, gen.code(), gen.err());
            assertTrue(gen.out().contains("Current partition replica assignment"), gen.out());
            assertTrue(gen.out().contains("\"topic\":\"u\",\"partition\":0,\"replicas\":[0,1]"), gen.out());
            String proposed = gen.out().substring(gen.out().indexOf("Proposed partition reassignment configuration"));
            proposed = proposed.substring(proposed.indexOf('{')).trim();
            assertTrue(proposed.contains("\"topic\":\"u\""), proposed);
            assertTrue(proposed.contains("\"replicas\":[1,2]") || proposed.contains("\"replicas\":[2,1]"),
                "the proposal uses brokers 1 and 2: " + proposed);
            Path plan = dir.resolve("plan.json");
            Files.writeString(plan, proposed);

            // With a throttle: what node 0 or 1 (u's leader) sends to the new replica is limited to 100 kB/s.
            produceBytes(cluster.bootstrap(), u, 300, 1000);
            Run exec = tool(cluster.bootstrap(), "--execute", "--reassignment-json-file", plan.toString(),
                "--throttle", "100000");
            assertEquals(0, exec.code(), exec.err());
            assertTrue(exec.out().contains("Successfully started partition reassignment"), exec.out());
            assertTrue(exec.out().contains("The inter-broker throttle limit was set to 100000 B/s"), exec.out());
            org.apache.kafka.common.config.ConfigResource b1 = new org.apache.kafka.common.config.ConfigResource(
                org.apache.kafka.common.config.ConfigResource.Type.BROKER, "1");
            org.apache.kafka.clients.admin.ConfigEntry rate = admin.describeConfigs(List.of(b1)).all()
                .get(30, TimeUnit.SECONDS).get(b1).get("leader.replication.throttled.rate");
            assertEquals("100000", rate.value());
            assertEquals(org.apache.kafka.clients.admin.ConfigEntry.ConfigSource.DYNAMIC_BROKER_CONFIG, rate.source());
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            Run verify;
            while (true) {
                verify = tool(cluster.bootstrap(), "--verify", "--reassignment-json-file", plan.toString());
                if (verify.out().contains("Reassignment of partition u-0 is completed")) {
                    break;
                }
                assertTrue(System.nanoTime() < deadline, "not completed: " + verify);
                Thread.sleep(300);
            }
            assertEquals(0, verify.code(), verify.err());
            assertTrue(verify.out().contains("Clearing broker-level throttles on brokers 0,1,2"), verify.out());
            double throttled = 0;
            double delayed = 0;
            for (int node = 0; node < 3; node++) {
                String m = cluster.metrics(node);
                throttled += BrokerProcesses.metric(m, "isthmus_catch_up_bytes_total");
                delayed += BrokerProcesses.metric(m, "isthmus_catch_up_delays_total");
            }
            assertTrue(throttled >= 300_000, "the new replica received u under the throttle: " + throttled + " bytes");
            assertTrue(delayed > 0, "the throttle held sends back");
            assertEquals(null, admin.describeConfigs(List.of(b1)).all().get(30, TimeUnit.SECONDS).get(b1)
                .get("leader.replication.throttled.rate"), "--verify removed the throttle");
            await(admin, List.of(u), "u on nodes 1 and 2", d -> new java.util.TreeSet<>(replicas(d.get(u)))
                .equals(new java.util.TreeSet<>(List.of(1, 2))) && leaders(d) && inSync(d));
            awaitGone(cluster.node(0).dir().resolve("logs").resolve("u-0"));
        }
    }

    /** kafka-topics.sh --describe --topic TOPIC, in-process: what it printed. */
    private static String topicsDescribe(String bootstrap, String topic) throws Exception {
        String[] all = KafkaTool.withBootstrap(bootstrap, "--describe", "--topic", topic);
        return KafkaTool.run("kafka-topics " + String.join(" ", all),
            () -> org.apache.kafka.tools.TopicCommand.main(all)).out();
    }

    private static Throwable alterError(Admin admin, TopicPartition tp, List<Integer> replicas) throws Exception {
        try {
            admin.alterPartitionReassignments(Map.of(tp, replicas == null ? Optional.empty()
                : Optional.of(new NewPartitionReassignment(replicas)))).all().get(30, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            savedMessage(e.getCause());
            return e.getCause();
        }
        throw new AssertionError("the reassignment of " + tp + " to " + replicas + " was accepted");
    }

    private static void savedMessage(Throwable t) {
        System.out.println("refused as expected: " + t);
    }

    /** kafka-reassign-partitions.sh --bootstrap-server BOOTSTRAP ARGS, in-process. */
    private static Run tool(String bootstrap, String... args) throws Exception {
        String[] all = KafkaTool.withBootstrap(bootstrap, args);
        return KafkaTool.run("kafka-reassign-partitions " + String.join(" ", all),
            () -> ReassignPartitionsCommand.main(all));
    }

    // ------------------------------------------------------------------ helpers

    private static Admin admin(String bootstrap) {
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        return Admin.create(ap);
    }

    private static boolean noReassignments(Admin admin) {
        try {
            return admin.listPartitionReassignments().reassignments().get(20, TimeUnit.SECONDS).isEmpty();
        } catch (Exception e) {
            return false;
        }
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

    private static List<Integer> replicas(TopicDescription d) {
        return d.partitions().get(0).replicas().stream().map(Node::id).toList();
    }

    private static boolean leaders(Map<String, TopicDescription> ds) {
        for (TopicDescription d : ds.values()) {
            for (TopicPartitionInfo p : d.partitions()) {
                if (p.leader() == null || p.leader().id() < 0) {
                    return false;
                }
            }
        }
        return true;
    }

    private static boolean inSync(Map<String, TopicDescription> ds) {
        for (TopicDescription d : ds.values()) {
            for (TopicPartitionInfo p : d.partitions()) {
                if (!new java.util.TreeSet<>(p.isr().stream().map(Node::id).toList())
                    .equals(new java.util.TreeSet<>(p.replicas().stream().map(Node::id).toList()))) {
                    return false;
                }
            }
        }
        return true;
    }

    /** Describes the topics until {@code done} holds (at most 90 s). */
    private static Map<String, TopicDescription> await(Admin admin, List<String> topics, String what,
                                                       Predicate<Map<String, TopicDescription>> done) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        String last = "";
        while (System.nanoTime() < deadline) {
            try {
                Map<String, TopicDescription> d = admin.describeTopics(topics).allTopicNames().get(20, TimeUnit.SECONDS);
                last = d.toString();
                if (done.test(d)) {
                    return d;
                }
            } catch (Exception e) {
                last = e.toString();
            }
            Thread.sleep(200);
        }
        throw new AssertionError("not reached: " + what + "; last: " + last);
    }

    /** Waits until {@code dir} no longer exists (its broker deletes it on a background thread). */
    private static void awaitGone(Path dir) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (Files.exists(dir)) {
            assertTrue(System.nanoTime() < deadline, dir + " still exists");
            Thread.sleep(100);
        }
    }

    private static void produce(String bootstrap, String topic, int count) throws Exception {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            for (int i = 0; i < count; i++) {
                p.send(new ProducerRecord<>(topic, 0, null, topic + ":" + i)).get(30, TimeUnit.SECONDS);
            }
        }
    }

    /** {@code count} acks=all records of {@code bytes} bytes each to partition 0 of {@code topic}. */
    private static void produceBytes(String bootstrap, String topic, int count, int bytes) throws Exception {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        String pad = "x".repeat(bytes);
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            for (int i = 0; i < count; i++) {
                p.send(new ProducerRecord<>(topic, 0, null, topic + ":big:" + i + ":" + pad));
            }
            p.flush();
        }
    }

    /** Every record of partition 0 of each topic, value to count. */
    private static Map<String, Integer> readAll(String bootstrap, List<String> topics) throws Exception {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        Map<String, Integer> counts = new HashMap<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            List<TopicPartition> tps = topics.stream().map(t -> new TopicPartition(t, 0)).toList();
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> ends = c.endOffsets(tps, Duration.ofSeconds(30));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    counts.merge(r.value(), 1, Integer::sum);
                }
                boolean done = true;
                for (TopicPartition tp : tps) {
                    done &= c.position(tp) >= ends.get(tp);
                }
                if (done) {
                    return counts;
                }
            }
            throw new AssertionError("could not read " + topics + " to " + ends + " within 60 s");
        }
    }
}
