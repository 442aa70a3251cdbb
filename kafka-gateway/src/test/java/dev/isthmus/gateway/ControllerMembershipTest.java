package dev.isthmus.gateway;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.QuorumInfo;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.tools.MetadataQuorumCommand;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Replacing a dead controller node, on broker processes: three seed nodes (the controller voters), a topic with
 * records; node 2 is killed for good; node 3 joins with the same {@code --seeds} and {@code isthmus admin controller
 * add 3 --wait} makes it a voter (DescribeQuorum lists 0,1,2,3), then {@code controller remove 2 --wait} takes the
 * dead node out (0,1,3). A change that would leave no live majority is refused with a sentence. The cluster keeps
 * serving throughout (a topic created and records produced after each step), and after every survivor is stopped and
 * started again, still with {@code --seeds} naming 0,1,2, the controller's voters are 0,1,3 (DescribeQuorum,
 * {@code kafka-metadata-quorum.sh describe --status} and the stored {@code isthmus.controller.voters}) and every
 * acknowledged record is read back once, in order.
 */
@Timeout(480)
class ControllerMembershipTest {
    private static final String TOPIC = "members";
    private static final int PARTITIONS = 3;

    @Test
    void shouldReplaceADeadControllerVoterAndKeepTheNewMembershipAcrossRestarts(@TempDir Path dir) throws Exception {
        try (BrokerProcesses cluster = new BrokerProcesses(4, 3, dir, List.of("--partition-balancer", "false",
                "--replica-lag-time-max-ms", "3000"), id -> List.of())) {
            try {
                run(cluster);
            } catch (Throwable t) {
                System.err.println(cluster.tail(200));
                throw t;
            }
        }
    }

    private void run(BrokerProcesses cluster) throws Exception {
        String seeds = cluster.bootstrapStarted();
        List<String> acked = new ArrayList<>();
        try (Admin admin = admin(seeds)) {
            create(admin, TOPIC, 3);
            assertEquals(Set.of(0, 1, 2), awaitVoters(admin, Set.of(0, 1, 2)));
            assertEquals("0,1,2", votersConfig(admin));
        }
        produce(seeds, "a", 300, acked);

        cluster.kill(2);
        cluster.start(3);
        String live = "127.0.0.1:" + cluster.node(0).kafkaPort() + ",127.0.0.1:" + cluster.node(1).kafkaPort() + ",127.0.0.1:"
            + cluster.node(3).kafkaPort();
        try (Admin admin = admin(live)) {
            awaitRegistered(admin, 3);
            // Node 2 is down: making it the only other voter with node 0 would leave no live majority.
            Result refused = admin("--bootstrap-server", live, "controller", "remove", "1");
            assertEquals(1, refused.code, refused.out);
            assertTrue(refused.out.contains("would be up"), refused.out);

            Result add = admin("--bootstrap-server", live, "--timeout", "120", "--wait", "controller", "add", "3");
            assertEquals(0, add.code, add.out);
            assertEquals(Set.of(0, 1, 2, 3), voters(admin));
            create(admin, "after-add", 2);
            produce(live, "b", 200, acked);

            Result remove = admin("--bootstrap-server", live, "--timeout", "120", "--wait", "controller", "remove", "2");
            assertEquals(0, remove.code, remove.out);
            assertEquals(Set.of(0, 1, 3), voters(admin));
            assertEquals("0,1,3", votersConfig(admin));
            create(admin, "after-remove", 2);
            produce(live, "c", 200, acked);

            // Kafka's own kafka-configs on the isthmus.* names of the cluster-wide default broker resource.
            KafkaTool.Run described = kafkaConfigs(live, "--describe", "--entity-type", "brokers", "--entity-default");
            assertEquals(0, described.code(), described.printed());
            assertTrue(described.out().contains("isthmus.controller.voters=0,1,3"), described.out());
            KafkaTool.Run set = kafkaConfigs(live, "--alter", "--entity-type", "brokers", "--entity-default",
                "--add-config", "isthmus.maintenance.nodes=[1]");
            assertEquals(0, set.code(), set.printed());
            assertTrue(kafkaConfigs(live, "--describe", "--entity-type", "brokers", "--entity-default").out()
                .contains("isthmus.maintenance.nodes=1"));
            KafkaTool.Run cleared = kafkaConfigs(live, "--alter", "--entity-type", "brokers", "--entity-default",
                "--delete-config", "isthmus.maintenance.nodes");
            assertEquals(0, cleared.code(), cleared.printed());
            KafkaTool.Run badVoters = kafkaConfigs(live, "--alter", "--entity-type", "brokers", "--entity-default",
                "--add-config", "isthmus.controller.voters=[0,2]");
            assertTrue(badVoters.code() != 0 && badVoters.printed().contains("node 2 is down"), badVoters.printed());

            // A replication throttle on node 0 (kafka-reassign-partitions --throttle sets it so): kept by the controller.
            ConfigResource node0 = new ConfigResource(ConfigResource.Type.BROKER, "0");
            admin.incrementalAlterConfigs(java.util.Map.of(node0, List.of(new org.apache.kafka.clients.admin.AlterConfigOp(
                new org.apache.kafka.clients.admin.ConfigEntry("leader.replication.throttled.rate", "1000000"),
                org.apache.kafka.clients.admin.AlterConfigOp.OpType.SET)))).all().get(60, TimeUnit.SECONDS);

            Result status = admin("--bootstrap-server", live, "--json", "controller", "status");
            assertEquals(0, status.code, status.out);
            assertEquals(0, admin("--bootstrap-server", live, "controller", "status").code);
            assertTrue(status.out.contains("\"voters\":[0,1,3]") && status.out.contains("\"settled\":true"), status.out);
        }

        // Every survivor stops and starts again with its old command line (--seeds still name 0, 1 and 2).
        for (int id : new int[] {0, 1, 3}) {
            cluster.terminate(id);
        }
        for (int id : new int[] {0, 1, 3}) {
            cluster.start(id);
        }
        try (Admin admin = admin(live)) {
            assertEquals(Set.of(0, 1, 3), awaitVoters(admin, Set.of(0, 1, 3)), "the membership survives the restart");
            assertEquals("0,1,3", votersConfig(admin), "the wanted voters are stored in the controller state");
            assertEquals("1000000", throttle(admin, 0), "node 0's replication throttle survives its restart");
            create(admin, "after-restart", 2);
        }
        String tool = metadataQuorum(live);
        assertTrue(tool.contains("CurrentVoters:") && tool.matches("(?s).*CurrentVoters:\\s*\\[\\{\"id\":\\s*0.*\"id\":\\s*1"
            + ".*\"id\":\\s*3.*") && !tool.matches("(?s).*CurrentVoters:[^\\n]*\"id\":\\s*2\\b.*"), tool);
        produce(live, "d", 100, acked);
        consumeAll(live, acked);
    }

    // ------------------------------------------------------------------ tools

    private record Result(int code, String out) {
    }

    private static Result admin(String... args) {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(buf, true, StandardCharsets.UTF_8);
        int code = AdminCommand.run(args, ps, ps);
        String out = buf.toString(StandardCharsets.UTF_8);
        System.out.println("isthmus admin " + String.join(" ", args) + " -> " + code + "\n" + out);
        return new Result(code, out);
    }

    /** {@code kafka-metadata-quorum.sh --bootstrap-server B describe --status}, as Kafka 4.3 ships it; its output. */
    private static String metadataQuorum(String bootstrap) throws Exception {
        String[] args = KafkaTool.withBootstrap(bootstrap, "describe", "--status");
        KafkaTool.Run r = KafkaTool.run("kafka-metadata-quorum " + String.join(" ", args),
            () -> MetadataQuorumCommand.main(args));
        assertEquals(0, r.code(), r.printed());
        return r.out();
    }

    /** {@code kafka-configs.sh --bootstrap-server B ARGS} (Kafka 4.3, in-process). */
    private static KafkaTool.Run kafkaConfigs(String bootstrap, String... args) throws Exception {
        String[] all = KafkaTool.withBootstrap(bootstrap, args);
        return KafkaTool.run("kafka-configs " + String.join(" ", all), () -> kafka.admin.ConfigCommand.main(all));
    }

    private static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");
        return Admin.create(p);
    }

    private static Set<Integer> voters(Admin admin) throws Exception {
        QuorumInfo q = admin.describeMetadataQuorum().quorumInfo().get(60, TimeUnit.SECONDS);
        Set<Integer> s = new TreeSet<>();
        q.voters().forEach(v -> s.add(v.replicaId()));
        return s;
    }

    private static Set<Integer> awaitVoters(Admin admin, Set<Integer> wanted) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
        Object last = null;
        while (System.nanoTime() < deadline) {
            try {
                Set<Integer> v = voters(admin);
                if (v.equals(wanted)) {
                    return v;
                }
                last = v;
            } catch (Exception e) {
                last = e;
            }
            Thread.sleep(500);
        }
        throw new AssertionError("controller voters not " + wanted + ": " + last);
    }

    /**
     * The cluster-wide {@code isthmus.controller.voters} as DescribeConfigs reports it; asked again while the answering
     * node, just restarted, has not caught up with the controller yet (it then reports no cluster-wide configs).
     */
    private static String votersConfig(Admin admin) throws Exception {
        ConfigResource cluster = new ConfigResource(ConfigResource.Type.BROKER, "");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (true) {
            Config c = admin.describeConfigs(List.of(cluster)).all().get(60, TimeUnit.SECONDS).get(cluster);
            var e = c.get(NodeModeConfigs.CONTROLLER_VOTERS);
            if (e != null) {
                return e.value();
            }
            assertTrue(System.nanoTime() < deadline, "no node reports " + NodeModeConfigs.CONTROLLER_VOTERS + ": " + c);
            Thread.sleep(500);
        }
    }

    /** Node {@code node}'s {@code leader.replication.throttled.rate} as DescribeConfigs reports it, or null. */
    private static String throttle(Admin admin, int node) throws Exception {
        ConfigResource r = new ConfigResource(ConfigResource.Type.BROKER, Integer.toString(node));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (true) {
            var e = admin.describeConfigs(List.of(r)).all().get(60, TimeUnit.SECONDS).get(r)
                .get("leader.replication.throttled.rate");
            if (e != null || System.nanoTime() > deadline) {
                return e == null ? null : e.value();
            }
            Thread.sleep(500); // the node, just restarted, has not installed the controller's state yet
        }
    }

    private static void awaitRegistered(Admin admin, int node) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
        while (System.nanoTime() < deadline) {
            try {
                if (admin.describeCluster().nodes().get(30, TimeUnit.SECONDS).stream().anyMatch(n -> n.id() == node)) {
                    return;
                }
            } catch (Exception e) {
                // not yet
            }
            Thread.sleep(500);
        }
        throw new AssertionError("node " + node + " did not register");
    }

    private static void create(Admin admin, String name, int rf) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (true) {
            try {
                admin.createTopics(List.of(new NewTopic(name, PARTITIONS, (short) rf))).all().get(30, TimeUnit.SECONDS);
                return;
            } catch (Exception e) {
                if (e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException) {
                    return;
                }
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("the cluster did not create " + name + ": " + e, e);
                }
                Thread.sleep(500);
            }
        }
    }

    /** Produces {@code count} records "prefix-i" round robin over the partitions; adds each acknowledged one. */
    private static void produce(String bootstrap, String prefix, int count, List<String> acked) throws Exception {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "120000");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            List<java.util.concurrent.Future<?>> sent = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                sent.add(producer.send(new ProducerRecord<>(TOPIC, i % PARTITIONS, null, prefix + "-" + i)));
            }
            for (int i = 0; i < count; i++) {
                sent.get(i).get(150, TimeUnit.SECONDS);
                acked.add(prefix + "-" + i);
            }
        }
    }

    /** Reads the topic from the start: each partition holds exactly its acknowledged records, in send order. */
    private static void consumeAll(String bootstrap, List<String> acked) {
        List<List<String>> expected = new ArrayList<>();
        for (int p = 0; p < PARTITIONS; p++) {
            expected.add(new ArrayList<>());
        }
        for (String v : acked) {
            int i = Integer.parseInt(v.substring(v.indexOf('-') + 1));
            expected.get(i % PARTITIONS).add(v);
        }
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < PARTITIONS; p++) {
                tps.add(new TopicPartition(TOPIC, p));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            List<List<String>> read = new ArrayList<>();
            for (int p = 0; p < PARTITIONS; p++) {
                read.add(new ArrayList<>());
            }
            int total = 0;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (total < acked.size()) {
                assertTrue(System.nanoTime() < deadline, "read " + total + " of " + acked.size());
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    read.get(r.partition()).add(r.value());
                    total++;
                }
            }
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofSeconds(2))) {
                read.get(r.partition()).add(r.value());
            }
            for (int p = 0; p < PARTITIONS; p++) {
                assertEquals(expected.get(p), read.get(p), "partition " + p + ": every acknowledged record once, in order");
            }
        }
    }
}
