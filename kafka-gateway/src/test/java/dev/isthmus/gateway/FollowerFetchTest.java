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
import org.apache.kafka.common.PartitionInfo;
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
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Racks and follower fetching (KIP-392) on three broker processes started with {@code --rack rack-a|b|c}:
 * DescribeCluster and Metadata report each node's rack; a topic of replication factor 3 is produced to; a consumer
 * with {@code client.rack} set to a follower's rack reads every record in order, and the nodes' metrics show that
 * the follower served the bytes (its {@code isthmus_follower_fetch_bytes_total} grew, the leader answered with a
 * preferred read replica and returned no record bytes of the topic). Then the follower is killed: the consumer
 * falls back to the leader (Kafka's client drops its preferred read replica on a failed fetch) and reads the records
 * produced meanwhile, none skipped or repeated, and the leader's byte counter shows it served them.
 *
 * <p>Before that, transactions through a follower (KIP-392 with {@code isolation.level=read_committed}): a
 * transactional producer commits, aborts, commits, then leaves a transaction open on a second topic; a read_committed
 * consumer in a follower's rack reads the committed records only, in order, stops at the open transaction (the last
 * stable offset, which the follower must know) and reads its records once it commits; the follower served every byte.
 */
@Timeout(300)
class FollowerFetchTest {
    private static final String TOPIC = "racked";
    private static final String[] RACKS = {"rack-a", "rack-b", "rack-c"};
    private static final int FIRST = 2000;
    private static final int SECOND = 500;

    @Test
    void shouldServeARackedConsumerFromItsRacksFollowerAndFallBackToTheLeaderWhenItStops(@TempDir Path dir)
            throws Exception {
        try (BrokerProcesses cluster = new BrokerProcesses(3, dir, List.of("--replica-lag-time-max-ms", "2000"),
                id -> List.of("--rack", RACKS[id]))) {
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
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap());
        int leader;
        try (Admin admin = Admin.create(ap)) {
            // DescribeCluster carries every node's rack.
            Collection<Node> nodes = awaitNodes(admin);
            for (Node n : nodes) {
                assertEquals(RACKS[n.id()], n.rack(), "DescribeCluster: rack of node " + n.id());
            }
            create(admin, new NewTopic(TOPIC, 1, (short) 3));
            TopicPartitionInfo p = awaitInSync(admin);
            leader = p.leader().id();
            for (Node r : p.replicas()) {
                assertEquals(RACKS[r.id()], r.rack(), "the topic's replicas carry their racks");
            }
        }
        int follower = (leader + 1) % 3;
        produce(cluster.bootstrap(), 0, FIRST);

        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap());
        cp.put(ConsumerConfig.CLIENT_RACK_CONFIG, RACKS[follower]);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "200");
        cp.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "200");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        TopicPartition tp = new TopicPartition(TOPIC, 0);
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            // Metadata (v1+) carries the racks too.
            for (PartitionInfo pi : consumer.partitionsFor(TOPIC, Duration.ofSeconds(30))) {
                for (Node r : pi.replicas()) {
                    assertEquals(RACKS[r.id()], r.rack(), "Metadata: rack of node " + r.id());
                }
            }
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            List<String> values = new ArrayList<>();
            readUntil(consumer, values, FIRST);
            String lm = cluster.metrics(leader);
            String fm = cluster.metrics(follower);
            String om = cluster.metrics(3 - leader - follower);
            double servedByFollower = BrokerProcesses.metric(fm, "isthmus_follower_fetch_bytes_total");
            System.out.println("leader " + leader + ", follower " + follower + " (" + RACKS[follower] + ") served "
                + (long) servedByFollower + " record bytes; leader's preferred-replica answers: "
                + (long) BrokerProcesses.metric(lm, "isthmus_preferred_read_replica_answers_total"));
            assertTrue(servedByFollower > 0, "the follower in the consumer's rack served it");
            assertEquals(servedByFollower, topicBytesOut(fm), "every byte of the topic node " + follower
                + " returned came from its follower replica");
            assertTrue(BrokerProcesses.metric(lm, "isthmus_preferred_read_replica_answers_total")
                + BrokerProcesses.metric(om, "isthmus_preferred_read_replica_answers_total") >= 1,
                "the leader pointed the consumer at the follower");
            assertEquals(0, topicBytesOut(lm), "the leader returned no record of the topic");
            assertEquals(0, topicBytesOut(om), "the third node returned no record of the topic");
            assertEquals(0, BrokerProcesses.metric(lm, "isthmus_follower_fetch_bytes_total"));

            readCommittedThroughAFollower(cluster);
            // What the two nodes that stay up served as followers so far (the transactional topic's follower may be
            // one of them): the consumer of TOPIC must add nothing to it once it falls back to the leader.
            double followerBytesBefore = BrokerProcesses.metric(cluster.metrics(leader), "isthmus_follower_fetch_bytes_total")
                + BrokerProcesses.metric(cluster.metrics(3 - leader - follower), "isthmus_follower_fetch_bytes_total");

            // The follower stops: the consumer goes back to the leader and misses nothing.
            cluster.kill(follower);
            produce(cluster.bootstrapExcept(follower), FIRST, SECOND);
            readUntil(consumer, values, FIRST + SECOND);
            // Whichever of the two live nodes leads now served the rest, as leader (no follower is in rack a now).
            String lm2 = cluster.metrics(leader);
            String om2 = cluster.metrics(3 - leader - follower);
            assertTrue(topicBytesOut(lm2) + topicBytesOut(om2) > 0, "the leader served the consumer after the"
                + " follower stopped");
            assertEquals(followerBytesBefore, BrokerProcesses.metric(lm2, "isthmus_follower_fetch_bytes_total")
                + BrokerProcesses.metric(om2, "isthmus_follower_fetch_bytes_total"), "no follower served it then");
        }
    }

    private static final String TXN_TOPIC = "racked-txn";

    /** See the class comment: read_committed from the follower in the consumer's rack. */
    private void readCommittedThroughAFollower(BrokerProcesses cluster) throws Exception {
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap());
        int leader;
        try (Admin admin = Admin.create(ap)) {
            create(admin, new NewTopic(TXN_TOPIC, 1, (short) 3));
            leader = awaitInSync(admin, TXN_TOPIC).leader().id();
        }
        int follower = (leader + 1) % 3;
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap());
        pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "follower-txn");
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "120000");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap());
        cp.put(ConsumerConfig.CLIENT_RACK_CONFIG, RACKS[follower]);
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "200");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        TopicPartition tp = new TopicPartition(TXN_TOPIC, 0);
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp);
             KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            producer.initTransactions();
            transaction(producer, "c1", 50, true);
            transaction(producer, "a", 50, false);
            transaction(producer, "c2", 50, true);
            // Left open: its records are stored (flushed) but above the last stable offset.
            producer.beginTransaction();
            for (int i = 0; i < 50; i++) {
                producer.send(new ProducerRecord<>(TXN_TOPIC, 0, null, "o-" + i));
            }
            producer.flush();
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            List<String> expected = new ArrayList<>();
            for (String prefix : List.of("c1", "c2")) {
                for (int i = 0; i < 50; i++) {
                    expected.add(prefix + "-" + i);
                }
            }
            List<String> read = new ArrayList<>();
            readValues(consumer, read, expected.size());
            // Nothing past the open transaction: a few more polls return no record.
            for (int i = 0; i < 4; i++) {
                consumer.poll(Duration.ofMillis(500)).forEach(r -> read.add(r.value()));
            }
            assertEquals(expected, read, "committed records only, in order; none of the aborted or open transaction");
            producer.commitTransaction();
            for (int i = 0; i < 50; i++) {
                expected.add("o-" + i);
            }
            readValues(consumer, read, expected.size());
            assertEquals(expected, read, "the open transaction's records once it committed");
        }
        double served = topicBytesOut(cluster.metrics(follower), TXN_TOPIC);
        System.out.println("read_committed: follower " + follower + " (" + RACKS[follower] + ") of leader " + leader
            + " served " + (long) served + " record bytes of " + TXN_TOPIC);
        assertTrue(served > 0, "the follower in the consumer's rack served the transactional topic");
        assertEquals(0, topicBytesOut(cluster.metrics(leader), TXN_TOPIC), "the leader returned no record of it");
    }

    private static void transaction(KafkaProducer<String, String> producer, String prefix, int count, boolean commit)
            throws Exception {
        producer.beginTransaction();
        List<java.util.concurrent.Future<?>> sent = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            sent.add(producer.send(new ProducerRecord<>(TXN_TOPIC, 0, null, prefix + "-" + i)));
        }
        for (java.util.concurrent.Future<?> f : sent) {
            f.get(120, TimeUnit.SECONDS);
        }
        if (commit) {
            producer.commitTransaction();
        } else {
            producer.abortTransaction();
        }
    }

    private static void readValues(KafkaConsumer<String, String> consumer, List<String> values, int count) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (values.size() < count) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("read " + values.size() + " of " + count + " records: " + values);
            }
            consumer.poll(Duration.ofMillis(500)).forEach(r -> values.add(r.value()));
        }
    }

    /** Polls until {@code values} holds {@code count} records; each must be the next value, in order. */
    private static void readUntil(KafkaConsumer<String, String> consumer, List<String> values, int count) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (values.size() < count) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("read " + values.size() + " of " + count + " records");
            }
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                assertEquals("v-" + values.size(), r.value(), "record at offset " + r.offset());
                assertEquals(values.size(), r.offset());
                values.add(r.value());
            }
        }
    }

    private static void produce(String bootstrap, int from, int count) throws Exception {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "120000");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            List<java.util.concurrent.Future<?>> sent = new ArrayList<>();
            for (int i = from; i < from + count; i++) {
                sent.add(producer.send(new ProducerRecord<>(TOPIC, 0, null, "v-" + i)));
            }
            for (java.util.concurrent.Future<?> f : sent) {
                f.get(120, TimeUnit.SECONDS);
            }
        }
    }

    /** The record bytes of {@link #TOPIC} a node returned to fetches (0 when it returned none). */
    private static double topicBytesOut(String metrics) {
        return topicBytesOut(metrics, TOPIC);
    }

    private static double topicBytesOut(String metrics, String topic) {
        String prefix = "isthmus_topic_bytes_out_total{topic=\"" + topic + "\"} ";
        for (String line : metrics.split("\n")) {
            if (line.startsWith(prefix)) {
                return Double.parseDouble(line.substring(prefix.length()));
            }
        }
        return 0;
    }

    private static Collection<Node> awaitNodes(Admin admin) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        String last = "";
        while (System.nanoTime() < deadline) {
            try {
                Collection<Node> nodes = admin.describeCluster().nodes().get(20, TimeUnit.SECONDS);
                last = nodes.toString();
                if (nodes.size() == 3 && nodes.stream().allMatch(n -> n.rack() != null)) {
                    return nodes;
                }
            } catch (Exception e) {
                last = e.toString();
            }
            Thread.sleep(300);
        }
        throw new AssertionError("three nodes with racks not reported; last: " + last);
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

    /** The topic's partition once its preferred replica leads and all three replicas are in sync. */
    private static TopicPartitionInfo awaitInSync(Admin admin) throws Exception {
        return awaitInSync(admin, TOPIC);
    }

    private static TopicPartitionInfo awaitInSync(Admin admin, String topic) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        String last = "";
        while (System.nanoTime() < deadline) {
            try {
                TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get(20, TimeUnit.SECONDS)
                    .get(topic);
                TopicPartitionInfo p = d.partitions().get(0);
                last = p.toString();
                // Led by its preferred replica, where preferred-leader balancing keeps it (the leader stays put).
                if (p.leader() != null && p.isr().size() == 3 && p.leader().id() == p.replicas().get(0).id()) {
                    return p;
                }
            } catch (Exception e) {
                last = e.toString();
            }
            Thread.sleep(200);
        }
        throw new AssertionError("the partition did not get three in-sync replicas; last: " + last);
    }
}
