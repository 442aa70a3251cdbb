package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.connect.mirror.MirrorMaker;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * MirrorMaker 2 (connect-mirror 4.3, its dedicated {@link MirrorMaker} driver in this JVM) between two Isthmus
 * brokers: it copies a topic from cluster A to B as {@code A.<topic>}, record for record in each partition, and
 * translates a consumer group's committed offsets (checkpoints, then group offset sync), so the group resumes
 * on B where it stopped on A: never past a record it had not read, and past the records it had read up to the
 * last offset sync.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(180)
class MirrorMakerTest {
    private static final int PARTITIONS = 2;
    private static final int RECORDS = 1_000;
    /** Per partition, the records the group reads and commits on A before MirrorMaker starts. */
    private static final int CONSUMED = 300;

    @BeforeEach
    void trap() {
        ConnectDistributedTest.trapExit();
    }

    @AfterEach
    void release() {
        ConnectDistributedTest.releaseExit();
    }

    private static Map<String, String> mirrorConfig(String a, String b) {
        Map<String, String> m = new HashMap<>();
        m.put("clusters", "A, B");
        m.put("A.bootstrap.servers", a);
        m.put("B.bootstrap.servers", b);
        m.put("A->B.enabled", "true");
        m.put("A->B.topics", "orders");
        m.put("A->B.groups", "billing");
        m.put("B->A.enabled", "false");
        m.put("tasks.max", "1");
        for (String rf : List.of("replication.factor", "offset-syncs.topic.replication.factor",
            "checkpoints.topic.replication.factor", "heartbeats.topic.replication.factor",
            "config.storage.replication.factor", "offset.storage.replication.factor",
            "status.storage.replication.factor")) {
            m.put(rf, "1");
        }
        m.put("offset.storage.partitions", "3");
        m.put("status.storage.partitions", "2");
        m.put("sync.group.offsets.enabled", "true");
        m.put("sync.group.offsets.interval.seconds", "1");
        m.put("emit.checkpoints.interval.seconds", "1");
        m.put("emit.heartbeats.interval.seconds", "1");
        m.put("refresh.topics.interval.seconds", "1");
        m.put("refresh.groups.interval.seconds", "1");
        m.put("offset.flush.interval.ms", "500");
        m.put("plugin.discovery", "service_load");
        return m;
    }

    private static Properties client(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        return p;
    }

    /** Every record of {@code topic} on {@code bootstrap}: per partition, value by offset, in offset order. */
    private static Map<Integer, List<ConsumerRecord<String, String>>> readAll(String bootstrap, String topic,
                                                                             int expected) {
        Properties cp = client(bootstrap);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        Map<Integer, List<ConsumerRecord<String, String>>> got = new HashMap<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < PARTITIONS; p++) {
                tps.add(new TopicPartition(topic, p));
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            int n = 0;
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (n < expected && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    got.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r);
                    n++;
                }
            }
        }
        return got;
    }

    @Test
    void shouldMirrorATopicAndTranslateItsConsumerGroupOffsets(@TempDir Path dir) throws Exception {
        try (Broker a = Broker.start(ConnectDistributedTest.config(dir.resolve("a")));
             Broker b = Broker.start(ConnectDistributedTest.config(dir.resolve("b")))) {
            String aBoot = "127.0.0.1:" + a.port();
            String bBoot = "127.0.0.1:" + b.port();
            a.createTopicBlocking("orders", PARTITIONS);
            Properties pp = client(aBoot);
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                for (int i = 0; i < RECORDS; i++) {
                    producer.send(new ProducerRecord<>("orders", i % PARTITIONS, "k" + i, "order-" + i));
                }
                producer.flush();
            }
            Map<Integer, List<ConsumerRecord<String, String>>> source = readAll(aBoot, "orders", RECORDS);
            // The group reads the first CONSUMED records of each partition on A and commits after them.
            Map<TopicPartition, OffsetAndMetadata> commit = new HashMap<>();
            Set<String> consumed = new HashSet<>();
            for (int p = 0; p < PARTITIONS; p++) {
                List<ConsumerRecord<String, String>> part = source.get(p);
                assertEquals(RECORDS / PARTITIONS, part.size(), "orders-" + p + " on A");
                part.subList(0, CONSUMED).forEach(r -> consumed.add(r.value()));
                commit.put(new TopicPartition("orders", p), new OffsetAndMetadata(part.get(CONSUMED).offset()));
            }
            Properties gp = client(aBoot);
            gp.put(ConsumerConfig.GROUP_ID_CONFIG, "billing");
            gp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            gp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(gp)) {
                c.commitSync(commit);
            }

            MirrorMaker mm = new MirrorMaker(mirrorConfig(aBoot, bBoot), List.of("B"));
            mm.start();
            Map<TopicPartition, OffsetAndMetadata> translated = Map.of();
            Map<Integer, List<ConsumerRecord<String, String>>> mirrored;
            try (Admin bAdmin = Admin.create(client(bBoot))) {
                mirrored = readAll(bBoot, "A.orders", RECORDS);
                long deadline = System.nanoTime() + 90_000_000_000L;
                while (System.nanoTime() < deadline) {
                    translated = bAdmin.listConsumerGroupOffsets("billing").partitionsToOffsetAndMetadata().get();
                    if (translated.size() == PARTITIONS && translated.values().stream().allMatch(o -> o.offset() > 0)) {
                        break;
                    }
                    Thread.sleep(200); // polling B for the synced group offsets, not timing
                }
            } finally {
                mm.stop();
                mm.awaitStop();
            }
            for (int p = 0; p < PARTITIONS; p++) {
                assertEquals(source.get(p).stream().map(ConsumerRecord::value).toList(),
                    mirrored.getOrDefault(p, List.of()).stream().map(ConsumerRecord::value).toList(),
                    "A.orders-" + p + " on B holds orders-" + p + " of A, record for record");
            }
            assertEquals(PARTITIONS, translated.size(), "group billing has offsets on B: " + translated);
            for (int p = 0; p < PARTITIONS; p++) {
                OffsetAndMetadata o = translated.get(new TopicPartition("A.orders", p));
                List<ConsumerRecord<String, String>> onB = mirrored.get(p);
                long firstUnread = onB.stream().filter(r -> !consumed.contains(r.value())).findFirst().orElseThrow()
                    .offset();
                System.out.println("A.orders-" + p + ": billing committed " + o.offset() + " on B; its first unread "
                    + "record is at " + firstUnread);
                assertTrue(o.offset() > 0 && o.offset() <= firstUnread, "A.orders-" + p + ": the translated offset "
                    + o.offset() + " skips no unread record (first unread at " + firstUnread + ") and is past 0");
            }
            OtherClientsTest.awaitIdle(a);
            OtherClientsTest.awaitIdle(b);
        }
    }
}
