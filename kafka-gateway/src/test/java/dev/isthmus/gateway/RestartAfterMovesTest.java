package dev.isthmus.gateway;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
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
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A partition moved back and forth, then every node killed (bench/chaos seed 2231 lost 1,296 acknowledged records
 * this way): replicas {1,2} moved to {0,1}, {2,0} and {2,1}, records written before each move. After kill -9 of every
 * node, each node replays the controller log from its start; a node that installed those historical states stopped
 * and deleted its replica when a past state did not list it (node 2 at {0,1}, node 1 at {2,0}) and opened it again
 * empty, so both replicas of {2,1} came back empty and the partition started over at offset 0. A restarted node now
 * installs only states at or after its registration of this start: every record is read back, from offset 0.
 */
@Timeout(420)
class RestartAfterMovesTest {
    private static final String TOPIC = "moved";
    private static final int PER_STEP = 40;

    @Test
    void shouldKeepEveryRecordOfAMovedPartitionWhenEveryNodeRestarts(@TempDir Path dir) throws Exception {
        try (BrokerProcesses cluster = new BrokerProcesses(3, dir, List.of())) {
            try {
                run(cluster);
            } catch (Throwable t) {
                for (String l : cluster.output()) {
                    if (!l.contains("stalled for") && !l.contains("\tat ") && !l.contains("lambda$new$0")) {
                        System.err.println(l);
                    }
                }
                throw t;
            }
        }
    }

    private void run(BrokerProcesses cluster) throws Exception {
        List<String> written = new ArrayList<>();
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap()))) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (true) {
                try {
                    admin.createTopics(List.of(new NewTopic(TOPIC, Map.of(0, List.of(1, 2))))).all()
                        .get(30, TimeUnit.SECONDS);
                    break;
                } catch (Exception e) {
                    if (e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException) {
                        break;
                    }
                    assertTrue(System.nanoTime() < deadline, "the cluster did not take the topic: " + e);
                    Thread.sleep(500);
                }
            }
            produce(cluster, written, "at {1,2}");
            for (List<Integer> target : List.of(List.of(0, 1), List.of(2, 0), List.of(2, 1))) {
                admin.alterPartitionReassignments(Map.of(new TopicPartition(TOPIC, 0),
                    Optional.of(new NewPartitionReassignment(target)))).all().get(60, TimeUnit.SECONDS);
                awaitMoved(admin, target);
                produce(cluster, written, "at " + target);
            }
        }
        for (int i = 0; i < cluster.size(); i++) {
            cluster.kill(i);
        }
        for (int i = 0; i < cluster.size(); i++) {
            cluster.start(i);
        }
        List<String> read = new ArrayList<>();
        long firstOffset = -1;
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap());
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            TopicPartition tp = new TopicPartition(TOPIC, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
            while (read.size() < written.size() && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    if (firstOffset < 0) {
                        firstOffset = r.offset();
                    }
                    read.add(r.value());
                }
            }
        }
        assertEquals(written, read, "every record written before the restart, in order");
        assertEquals(0, firstOffset, "the first record at offset 0");
    }

    private static void produce(BrokerProcesses cluster, List<String> written, String where) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            for (int i = 0; i < PER_STEP; i++) {
                String v = where + " #" + i;
                producer.send(new ProducerRecord<>(TOPIC, 0, null, v)).get(60, TimeUnit.SECONDS);
                written.add(v);
            }
        }
    }

    /** Until the partition's replicas are {@code target} and no move of it is listed. */
    private static void awaitMoved(Admin admin, List<Integer> target) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        TopicPartition tp = new TopicPartition(TOPIC, 0);
        while (true) {
            boolean listed = admin.listPartitionReassignments(Set.of(tp)).reassignments().get(30, TimeUnit.SECONDS)
                .containsKey(tp);
            TopicDescription d = admin.describeTopics(List.of(TOPIC)).allTopicNames().get(30, TimeUnit.SECONDS).get(TOPIC);
            Set<Integer> replicas = new HashSet<>(d.partitions().get(0).replicas().stream().map(Node::id).toList());
            if (!listed && replicas.equals(new HashSet<>(target))) {
                return;
            }
            assertTrue(System.nanoTime() < deadline, "the move to " + target + " did not complete: replicas " + replicas
                + (listed ? ", still listed" : ""));
            Thread.sleep(250);
        }
    }
}
