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
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The partition balancer on broker processes: three seed nodes hold a topic of 6 partitions with 2 replicas (4
 * replicas each); a fourth node, not a controller voter, joins the running cluster; the controller leader's balancer
 * moves replicas onto it through reassignments until every node holds 3 (within one of each other), every partition
 * ends with its 2 replicas in sync and no reassignment listed, the controller leader's metrics count the moves, and
 * a consumer reads every record produced before the join, in order, from the new replica sets.
 */
@Timeout(300)
class NodeJoinBalanceTest {
    private static final String TOPIC = "spread";
    private static final int PARTITIONS = 6;
    private static final int RECORDS = 600;

    @Test
    void shouldMoveReplicasOntoANodeThatJoinsUntilCountsAreEven(@TempDir Path dir) throws Exception {
        try (BrokerProcesses cluster = new BrokerProcesses(4, 3, dir, List.of("--replica-lag-time-max-ms", "2000"),
                id -> List.of())) {
            try {
                run(cluster);
            } catch (Throwable t) {
                System.err.println(cluster.tail(150));
                throw t;
            }
        }
    }

    private void run(BrokerProcesses cluster) throws Exception {
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapStarted());
        try (Admin admin = Admin.create(ap)) {
            create(admin, new NewTopic(TOPIC, PARTITIONS, (short) 2));
            await(admin, "every replica in sync", d -> allInSync(d, 2));
        }
        produce(cluster.bootstrapStarted());
        cluster.start(3);
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap());
        TreeMap<Integer, Integer> counts;
        try (Admin admin = Admin.create(ap)) {
            TopicDescription d = await(admin, "replicas spread onto node 3 and in sync", t -> allInSync(t, 2)
                && spread(counts(t)) <= 1 && counts(t).getOrDefault(3, 0) > 0 && noMoves(admin));
            counts = counts(d);
        }
        System.out.println("replicas per node after the join: " + counts);
        assertEquals(4, counts.size(), counts.toString());
        assertTrue(spread(counts) <= 1, counts.toString());
        double started = 0;
        for (int node = 0; node < 4; node++) {
            started += BrokerProcesses.metric(cluster.metrics(node), "isthmus_balancer_moves_started_total");
        }
        assertTrue(started >= 3, "the balancer moved 3 replicas at least (4,4,4,0 -> 3,3,3,3): " + started);
        consumeAll(cluster.bootstrap());
    }

    private static void produce(String bootstrap) throws Exception {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            List<java.util.concurrent.Future<?>> sent = new ArrayList<>();
            for (int i = 0; i < RECORDS; i++) {
                sent.add(producer.send(new ProducerRecord<>(TOPIC, i % PARTITIONS, null, "v-" + i)));
            }
            for (java.util.concurrent.Future<?> f : sent) {
                f.get(120, TimeUnit.SECONDS);
            }
        }
    }

    private static void consumeAll(String bootstrap) {
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
            int[] next = new int[PARTITIONS];
            int read = 0;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (read < RECORDS) {
                assertTrue(System.nanoTime() < deadline, "read " + read + " of " + RECORDS);
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    int p = r.partition();
                    assertEquals("v-" + (next[p] * PARTITIONS + p), r.value(), "partition " + p + " offset " + r.offset());
                    next[p]++;
                    read++;
                }
            }
        }
    }

    private static boolean noMoves(Admin admin) {
        try {
            return admin.listPartitionReassignments().reassignments().get(20, TimeUnit.SECONDS).isEmpty();
        } catch (Exception e) {
            return false;
        }
    }

    private static TreeMap<Integer, Integer> counts(TopicDescription d) {
        TreeMap<Integer, Integer> c = new TreeMap<>();
        for (TopicPartitionInfo p : d.partitions()) {
            for (Node n : p.replicas()) {
                c.merge(n.id(), 1, Integer::sum);
            }
        }
        return c;
    }

    private static int spread(TreeMap<Integer, Integer> c) {
        if (c.size() < 4) {
            return Integer.MAX_VALUE;
        }
        return c.values().stream().max(Integer::compare).orElseThrow() - c.values().stream().min(Integer::compare)
            .orElseThrow();
    }

    private static boolean allInSync(TopicDescription d, int rf) {
        for (TopicPartitionInfo p : d.partitions()) {
            if (p.leader() == null || p.replicas().size() != rf || p.isr().size() != rf) {
                return false;
            }
        }
        return true;
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

    private static TopicDescription await(Admin admin, String what, java.util.function.Predicate<TopicDescription> done)
            throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(150);
        String last = "";
        while (System.nanoTime() < deadline) {
            try {
                TopicDescription d = admin.describeTopics(List.of(TOPIC)).allTopicNames().get(20, TimeUnit.SECONDS)
                    .get(TOPIC);
                last = d.toString();
                if (done.test(d)) {
                    return d;
                }
            } catch (Exception e) {
                last = e.toString();
            }
            Thread.sleep(500);
        }
        throw new AssertionError("not reached: " + what + "; last: " + last);
    }
}
