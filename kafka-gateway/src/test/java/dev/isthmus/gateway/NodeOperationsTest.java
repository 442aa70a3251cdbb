package dev.isthmus.gateway;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
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
import org.apache.kafka.common.message.MetadataRequestData;
import org.apache.kafka.common.message.MetadataResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.requests.MetadataResponse;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Maintenance mode, decommissioning and a node joining, on broker processes (as {@link ReassignPartitionsTest}), driven
 * through {@code isthmus admin} ({@link AdminCommand}, in-process) under a steady idempotent acks=all producer:
 * <ul>
 *   <li>a fourth node started with the three controller nodes as its seeds (none of them restarted) registers and
 *       takes replicas of a new topic; decommissioning node 0 moves every replica off it (onto the joined node
 *       among others) at most {@code --max-concurrent-moves} at a time, until it holds none; new topics skip it;
 *       recommission clears the mark;</li>
 *   <li>maintenance on node 1 moves each of its leaderships to a follower by one Raft leadership transfer (the
 *       leader epoch grows by exactly one, the other nodes count the transfers) and none comes back while it is set,
 *       also across a restart of the node (no partition changes leader); disabling it brings the preferred leaderships
 *       back.</li>
 * </ul>
 * In both, every send succeeds and every acknowledged record is read back exactly once.
 */
@Timeout(240)
class NodeOperationsTest {
    private static final int MAX_MOVES = 2;
    private long startNs = System.nanoTime();

    /** Prints how long the test has run at {@code what} (where a slow run spent its time). */
    private void phase(String what) {
        System.out.println(String.format("[%6.1f s] %s", (System.nanoTime() - startNs) / 1e9, what));
    }

    @Test
    void shouldDecommissionANodeUnderLoadOntoANodeThatJoinedWithoutLosingARecord(@TempDir Path dir) throws Exception {
        try (BrokerProcesses cluster = new BrokerProcesses(3, dir, List.of("--replica-lag-time-max-ms", "2000",
            "--max-concurrent-moves", Integer.toString(MAX_MOVES)))) {
            try {
                decommission(cluster);
            } catch (Throwable t) {
                System.err.println(cluster.tail(200));
                throw t;
            }
        }
    }

    @Test
    void shouldDrainLeadersByTransferInMaintenanceAndGiveThemBackWhenDisabled(@TempDir Path dir) throws Exception {
        try (BrokerProcesses cluster = new BrokerProcesses(3, dir, List.of("--replica-lag-time-max-ms", "2000"))) {
            try {
                maintenance(cluster);
            } catch (Throwable t) {
                System.err.println(cluster.tail(200));
                throw t;
            }
        }
    }

    // ------------------------------------------------------------------ decommission, joining

    private void decommission(BrokerProcesses cluster) throws Exception {
        String d = "d";
        try (Admin admin = admin(cluster.bootstrap())) {
            create(admin, new NewTopic(d, 4, (short) 3));
            await(admin, List.of(d), "leaders", x -> leaders(x) && inSync(x));

            // A node joins: its seeds are the three controller nodes, which keep running unchanged.
            phase("3 nodes up, topic d created");
            int joined = cluster.addNode();
            assertEquals(3, joined);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
            while (admin.describeCluster().nodes().get(30, TimeUnit.SECONDS).size() < 4) {
                assertTrue(System.nanoTime() < deadline, "node 3 did not register");
                Thread.sleep(100);
            }
            create(admin, new NewTopic("n", 2, (short) 3));
            Map<String, TopicDescription> n = await(admin, List.of("n"), "leaders", x -> leaders(x) && inSync(x));
            assertTrue(replicasOn(n.get("n"), 3) > 0, "the joined node takes replicas of a new topic: " + n);
            phase("node 3 joined and took replicas of topic n");
        }

        Load load = new Load(cluster.bootstrap(), d, 4);
        load.start();
        load.awaitAcked(200);
        Run started = admin(cluster.bootstrap(), "decommission", "0");
        assertEquals(0, started.code(), started.err());
        assertTrue(started.out().contains("Node 0: "), started.out());
        int maxRunning = 0;
        int left;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (true) {
            Run status = admin(cluster.bootstrap(), "--json", "decommission", "status", "0");
            assertEquals(0, status.code(), status.err());
            left = number(status.out(), "replicas_left");
            int running = number(status.out(), "moves_running");
            maxRunning = Math.max(maxRunning, running);
            assertTrue(running <= MAX_MOVES, "at most " + MAX_MOVES + " moves run at a time: " + status.out());
            if (left == 0) {
                assertTrue(status.out().contains("\"state\":\"done\""), status.out());
                break;
            }
            assertTrue(System.nanoTime() < deadline, "node 0 still holds replicas: " + status.out());
            Thread.sleep(200);
        }
        phase("decommission done; at most " + maxRunning + " moves seen running");
        Run moves = admin(cluster.bootstrap(), "partitions", "moves");
        assertEquals(0, moves.code(), moves.err());
        load.awaitAcked(load.acked() + 200);
        load.stop();
        assertEquals(List.of(), load.failures(), "every send succeeded");

        try (Admin admin = admin(cluster.bootstrap())) {
            Map<String, TopicDescription> after = await(admin, List.of(d, "n"), "node 0 empty", x -> leaders(x)
                && inSync(x) && replicasOn(x.get(d), 0) == 0 && replicasOn(x.get("n"), 0) == 0);
            for (TopicDescription t : after.values()) {
                for (TopicPartitionInfo p : t.partitions()) {
                    assertEquals(3, p.replicas().size(), "the replication factor is kept: " + p);
                }
            }
            assertEquals(4, replicasOn(after.get(d), 3), "d's replicas on node 0 went to node 3, the only other node");
            // A decommissioned node gets no new replica.
            create(admin, new NewTopic("later", 3, (short) 3));
            Map<String, TopicDescription> later = await(admin, List.of("later"), "leaders", x -> leaders(x));
            assertEquals(0, replicasOn(later.get("later"), 0), later.toString());
        }
        Run status = admin(cluster.bootstrap(), "cluster", "status");
        assertEquals(0, status.code(), status.err());
        assertTrue(status.out().contains("decommissioning"), status.out());
        Run json = admin(cluster.bootstrap(), "--json", "cluster", "status");
        assertEquals(0, json.code(), json.err());
        assertTrue(json.out().contains("\"id\":0,") && json.out().contains("\"decommissioning\":true"), json.out());
        assertEquals(4, count(json.out(), "\"live\":true"), json.out());

        Map<String, Integer> read = readAll(cluster.bootstrap(), d, 4);
        assertEveryAckedReadOnce(load, read);
        phase("every acknowledged record read back");

        Run re = admin(cluster.bootstrap(), "recommission", "0");
        assertEquals(0, re.code(), re.err());
        Run after = admin(cluster.bootstrap(), "--json", "decommission", "status", "0");
        assertTrue(after.out().contains("\"decommissioning\":false"), after.out());
        Run unknown = admin(cluster.bootstrap(), "decommission", "9");
        assertEquals(1, unknown.code(), unknown.out());
        assertTrue(unknown.err().contains("node 9 is not a registered broker"), unknown.err());
    }

    // ------------------------------------------------------------------ maintenance

    private void maintenance(BrokerProcesses cluster) throws Exception {
        String m = "m";
        int node = 1;
        try (Admin admin = admin(cluster.bootstrap())) {
            create(admin, new NewTopic(m, 6, (short) 3));
            await(admin, List.of(m), "preferred leaders", x -> leaders(x) && inSync(x) && preferred(x.get(m)));
        }
        phase("3 nodes up, preferred leaders of m");
        Load load = new Load(cluster.bootstrap(), m, 6);
        load.start();
        load.awaitAcked(200);
        Map<Integer, int[]> before = leaderEpochs(cluster, m, e -> true);
        List<Integer> led = new ArrayList<>();
        before.forEach((p, le) -> {
            if (le[0] == node) {
                led.add(p);
            }
        });
        assertFalse(led.isEmpty(), "node 1 leads some partition: " + show(before));
        double transfersBefore = transfersReceived(cluster);

        Run enable = admin(cluster.bootstrap(), "--timeout", "60", "maintenance", "enable", "1", "--wait");
        assertEquals(0, enable.code(), enable.err());
        assertTrue(enable.out().contains("leads no partition"), enable.out());
        phase("node 1 drained");
        Map<Integer, int[]> drained = leaderEpochs(cluster, m, e -> e.values().stream().noneMatch(le -> le[0] == node));
        for (var e : drained.entrySet()) {
            int[] was = before.get(e.getKey());
            if (was[0] == node) {
                assertEquals(was[1] + 1, e.getValue()[1], "partition " + e.getKey() + " changed leader by one transfer"
                    + " (one term, no election): before " + show(before) + ", after " + show(drained));
            } else {
                assertEquals(was[0], e.getValue()[0], "partition " + e.getKey() + " kept its leader");
                assertEquals(was[1], e.getValue()[1], "partition " + e.getKey() + " kept its epoch");
            }
        }
        assertTrue(transfersReceived(cluster) >= transfersBefore + led.size(), "the other nodes received the "
            + led.size() + " leaderships by transfer");
        Run status = admin(cluster.bootstrap(), "--json", "maintenance", "status");
        assertEquals(0, status.code(), status.err());
        assertTrue(status.out().contains("{\"id\":1,\"live\":true,\"maintenance\":true,\"leaders\":0,\"drained\":true}"),
            status.out());
        long metricsBy = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (BrokerProcesses.metric(cluster.metrics(node), "isthmus_node_maintenance_leading_groups") != 0) {
            assertTrue(System.nanoTime() < metricsBy, "node 1's metrics show it leading groups in maintenance");
            Thread.sleep(100);
        }
        assertEquals(1.0, BrokerProcesses.metric(cluster.metrics(node), "isthmus_node_maintenance"));
        assertEquals(0.0, BrokerProcesses.metric(cluster.metrics(0), "isthmus_node_maintenance"));
        Run second = admin(cluster.bootstrap(), "maintenance", "enable", "2");
        assertEquals(1, second.code(), second.out());
        assertTrue(second.err().contains("at most one node may be in maintenance"), second.err());
        try (Admin admin = admin(cluster.bootstrap())) {
            assertTrue(admin.describeCluster().controller().get(30, TimeUnit.SECONDS).id() != node,
                "the controller's leadership left node 1 too");
        }
        // Still in maintenance after more load: no leadership came back. Restarted (what maintenance is for), it
        // comes back as a follower of everything: no partition changes leader or epoch.
        load.awaitAcked(load.acked() + 300);
        assertEquals(0, cluster.terminate(node), "node 1 stops cleanly");
        cluster.start(node);
        try (Admin admin = admin(cluster.bootstrap())) {
            await(admin, List.of(m), "node 1 back in sync", x -> leaders(x) && inSync(x));
        }
        load.awaitAcked(load.acked() + 300);
        assertEquals(show(drained), show(leaderEpochs(cluster, m, e -> true)),
            "restarted in maintenance, node 1 took no leadership and caused no election");
        assertTrue(leaderEpochs(cluster, m, e -> true).values().stream().noneMatch(le -> le[0] == node));
        phase("node 1 restarted in maintenance");

        Run disable = admin(cluster.bootstrap(), "maintenance", "disable", "1");
        assertEquals(0, disable.code(), disable.err());
        Map<Integer, int[]> back = leaderEpochs(cluster, m, e -> {
            for (var x : e.entrySet()) {
                if (x.getValue()[0] != before.get(x.getKey())[0]) {
                    return false;
                }
            }
            return true;
        });
        phase("preferred leaders back on node 1");
        for (int p : led) {
            assertEquals(before.get(p)[1] + 2, back.get(p)[1], "partition " + p + " came back to node 1 by one more"
                + " transfer: " + show(back));
        }
        load.awaitAcked(load.acked() + 200);
        load.stop();
        assertEquals(List.of(), load.failures(), "every send succeeded");
        assertEveryAckedReadOnce(load, readAll(cluster.bootstrap(), m, 6));
    }

    private static double transfersReceived(BrokerProcesses cluster) throws Exception {
        double sum = 0;
        for (int i = 0; i < cluster.size(); i++) {
            sum += BrokerProcesses.metric(cluster.metrics(i), "isthmus_raft_leadership_transfers_received_total");
        }
        return sum;
    }

    /**
     * {partition -> {leader, leader epoch}} of {@code topic} as Metadata v12 from every node reports it, once every
     * partition has a leader, all nodes agree and {@code until} holds (60 s at most).
     */
    private static Map<Integer, int[]> leaderEpochs(BrokerProcesses cluster, String topic,
                                                   Predicate<Map<Integer, int[]>> until) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        Map<Integer, int[]> last = null;
        while (true) {
            Map<Integer, int[]> agreed = null;
            boolean same = true;
            for (int i = 0; i < cluster.size() && same; i++) {
                Map<Integer, int[]> seen = new TreeMap<>();
                MetadataRequestData req = new MetadataRequestData().setAllowAutoTopicCreation(false)
                    .setTopics(List.of(new MetadataRequestData.MetadataRequestTopic().setName(topic)));
                MetadataResponse r;
                try {
                    r = (MetadataResponse) KafkaRequests.send(cluster.node(i).kafkaPort(), ApiKeys.METADATA, (short) 12,
                        req);
                } catch (java.io.IOException e) {
                    same = false; // a node just restarted may not listen yet: ask again until the deadline
                    break;
                }
                for (MetadataResponseData.MetadataResponseTopic t : r.data().topics()) {
                    for (MetadataResponseData.MetadataResponsePartition p : t.partitions()) {
                        seen.put(p.partitionIndex(), new int[] {p.leaderId(), p.leaderEpoch()});
                    }
                }
                if (agreed == null) {
                    agreed = seen;
                } else {
                    same = show(agreed).equals(show(seen));
                }
            }
            last = agreed;
            if (same && agreed != null && !agreed.isEmpty() && agreed.values().stream().allMatch(le -> le[0] >= 0)
                && until.test(agreed)) {
                return agreed;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("leaders of " + topic + " not as expected: " + (last == null ? null : show(last)));
            }
            Thread.sleep(100);
        }
    }

    private static String show(Map<Integer, int[]> m) {
        StringBuilder sb = new StringBuilder();
        m.forEach((p, le) -> sb.append(p).append("=node ").append(le[0]).append("@").append(le[1]).append(' '));
        return sb.toString().trim();
    }

    // ------------------------------------------------------------------ helpers

    private record Run(int code, String out, String err) {
    }

    private static Run admin(String bootstrap, String... args) {
        String[] all = new String[args.length + 2];
        all[0] = "--bootstrap-server";
        all[1] = bootstrap;
        System.arraycopy(args, 0, all, 2, args.length);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = AdminCommand.run(all, new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
        Run r = new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        System.out.println("isthmus admin " + String.join(" ", args) + " (exit " + code + ")\n" + r.out() + r.err());
        return r;
    }

    private static int number(String json, String field) {
        Matcher m = Pattern.compile("\"" + field + "\":(\\d+)").matcher(json);
        assertTrue(m.find(), field + " in " + json);
        return Integer.parseInt(m.group(1));
    }

    private static int count(String s, String what) {
        int n = 0;
        for (int i = s.indexOf(what); i >= 0; i = s.indexOf(what, i + 1)) {
            n++;
        }
        return n;
    }

    private static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");
        return Admin.create(p);
    }

    /** Creates {@code topic}, retrying while the cluster is still forming (a busy machine starts nodes slowly). */
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

    private static int replicasOn(TopicDescription t, int node) {
        int n = 0;
        for (TopicPartitionInfo p : t.partitions()) {
            for (Node r : p.replicas()) {
                n += r.id() == node ? 1 : 0;
            }
        }
        return n;
    }

    private static boolean leaders(Map<String, TopicDescription> d) {
        return d.values().stream().allMatch(t -> t.partitions().stream().allMatch(p -> p.leader() != null
            && !p.leader().isEmpty()));
    }

    private static boolean inSync(Map<String, TopicDescription> d) {
        return d.values().stream().allMatch(t -> t.partitions().stream().allMatch(p -> p.isr().size() == p.replicas().size()));
    }

    private static boolean preferred(TopicDescription t) {
        return t.partitions().stream().allMatch(p -> p.leader() != null && p.leader().id() == p.replicas().get(0).id());
    }

    private static Map<String, TopicDescription> await(Admin admin, List<String> topics, String what,
                                                       Predicate<Map<String, TopicDescription>> ok) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        Map<String, TopicDescription> d = null;
        while (true) {
            try {
                d = admin.describeTopics(topics).allTopicNames().get(30, TimeUnit.SECONDS);
                if (ok.test(d)) {
                    return d;
                }
            } catch (java.util.concurrent.ExecutionException e) {
                // not created everywhere yet
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no " + what + " within 90 s: " + d);
            }
            Thread.sleep(100);
        }
    }

    private static void assertEveryAckedReadOnce(Load load, Map<String, Integer> read) {
        for (String v : load.ackedValues()) {
            assertEquals(1, read.getOrDefault(v, 0), "acknowledged record " + v + " read exactly once");
        }
        for (Map.Entry<String, Integer> e : read.entrySet()) {
            assertEquals(1, e.getValue(), "record " + e.getKey() + " stored once");
        }
        assertTrue(load.ackedValues().size() >= 400, "acked " + load.ackedValues().size());
        System.out.println("acknowledged " + load.ackedValues().size() + " records, read " + read.size());
    }

    /** Every record of {@code topic} from offset 0 to the end (no consumer group: assign and seek). */
    private static Map<String, Integer> readAll(String bootstrap, String topic, int partitions) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        Map<String, Integer> read = new HashMap<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < partitions; i++) {
                tps.add(new TopicPartition(topic, i));
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(60));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
            while (tps.stream().anyMatch(tp -> c.position(tp, Duration.ofSeconds(30)) < end.get(tp))) {
                assertTrue(System.nanoTime() < deadline, "reading " + topic + " to " + end);
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    read.merge(r.value(), 1, Integer::sum);
                }
            }
        }
        return read;
    }

    /** An idempotent acks=all producer sending numbered records round-robin over the partitions of one topic. */
    private static final class Load {
        private final KafkaProducer<String, String> producer;
        private final String topic;
        private final int partitions;
        private final Set<String> acked = ConcurrentHashMap.newKeySet();
        private final List<String> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        private final AtomicBoolean stop = new AtomicBoolean();
        private final Thread thread;

        Load(String bootstrap, String topic, int partitions) {
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
            pp.put(ProducerConfig.LINGER_MS_CONFIG, "2");
            this.producer = new KafkaProducer<>(pp);
            this.topic = topic;
            this.partitions = partitions;
            this.thread = new Thread(this::run, "node-operations-load");
        }

        void start() {
            thread.start();
        }

        private void run() {
            long i = 0;
            while (!stop.get()) {
                String value = topic + ":" + i;
                producer.send(new ProducerRecord<>(topic, (int) (i % partitions), null, value), (md, e) -> {
                    if (e == null) {
                        acked.add(value);
                    } else {
                        failures.add(value + ": " + e);
                    }
                });
                i++;
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

        Set<String> ackedValues() {
            return acked;
        }

        List<String> failures() {
            return new ArrayList<>(failures);
        }
    }
}
