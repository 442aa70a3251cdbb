package dev.isthmus.gateway;

import dev.isthmus.arena.Subsystem;
import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.uring.IoBackend;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Unmodified kafka-clients against a real broker: real sockets, io_uring, O_DIRECT logs. */
@ExtendWith(ArenaLeakCheck.class)
class BrokerEndToEndTest {

    private static BrokerConfig config(Path dir, int shards, IoBackend backend) {
        return BrokerConfig.defaults().withPort(0).withDataDir(dir).withShards(shards).withMemory(shards * (128L << 20))
            .withPin(false).withBackend(backend);
    }

    private static Properties common(Broker b) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        return p;
    }

    @ParameterizedTest(name = "{0} shards, {1}")
    @CsvSource({"1, IO_URING", "2, IO_URING", "4, IO_URING", "2, PORTABLE"})
    void shouldProduceAndConsumeWithUnmodifiedKafkaClients(int shards, IoBackend backend, @TempDir Path dir)
        throws Exception {
        int records = 2_000;
        try (Broker broker = Broker.start(config(dir, shards, backend))) {
            try (Admin admin = Admin.create(common(broker))) {
                admin.createTopics(List.of(new NewTopic("orders", 3, (short) 1))).all().get();
                ExecutionException dup = assertThrows(ExecutionException.class,
                    () -> admin.createTopics(List.of(new NewTopic("orders", 3, (short) 1))).all().get());
                assertInstanceOf(TopicExistsException.class, dup.getCause());
                assertEquals(1, admin.describeCluster().nodes().get().size());
            }
            Properties pp = common(broker);
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            pp.put(ProducerConfig.LINGER_MS_CONFIG, "5");
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            Map<Integer, List<String>> sent = new HashMap<>();
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                List<Future<RecordMetadata>> acks = new ArrayList<>();
                for (int i = 0; i < records; i++) {
                    acks.add(producer.send(new ProducerRecord<>("orders", "key-" + (i % 17), "value-" + i)));
                }
                for (int i = 0; i < records; i++) {
                    RecordMetadata m = acks.get(i).get();
                    sent.computeIfAbsent(m.partition(), k -> new ArrayList<>()).add("value-" + i);
                }
                // Auto-creation through Metadata, as Kafka does by default.
                producer.send(new ProducerRecord<>("auto-created", "k", "v")).get();
            }
            Properties cp = common(broker);
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
                List<TopicPartition> tps = List.of(new TopicPartition("orders", 0), new TopicPartition("orders", 1),
                    new TopicPartition("orders", 2));
                consumer.assign(tps);
                consumer.seekToBeginning(tps);
                Map<Integer, List<String>> got = new HashMap<>();
                int total = 0;
                long deadline = System.nanoTime() + 60_000_000_000L;
                while (total < records && System.nanoTime() < deadline) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                        got.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r.value());
                        total++;
                    }
                }
                assertEquals(sent, got, "every acknowledged record, in order per partition");
                Map<TopicPartition, Long> ends = consumer.endOffsets(tps);
                long sum = ends.values().stream().mapToLong(Long::longValue).sum();
                // Each partition's log also holds the Raft LEADER_CHANGE control batch of every term (consumers
                // skip control batches, like transaction markers), so the end offsets exceed the record count.
                assertTrue(sum >= records && sum <= records + 3L * tps.size(), "end offsets " + ends);
            }
        }
    }

    /**
     * One in-memory copy of a produced batch on the leader: its Raft payload shares the bytes the request was received
     * into (no copy into the partition shard's Raft memory), and once durable it is held only by the batch cache,
     * which serves the consumer. With two shards, connections and partitions meet on the same shard and across.
     */
    @Test
    void shouldReplicateTheReceivedBytesAndHoldDurableBatchesOnlyInTheBatchCache(@TempDir Path dir) throws Exception {
        int records = 600;
        try (Broker broker = Broker.start(config(dir, 2, IoBackend.AUTO))) {
            try (Admin admin = Admin.create(common(broker))) {
                admin.createTopics(List.of(new NewTopic("once", 4, (short) 1))).all().get();
            }
            Properties pp = common(broker);
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            pp.put(ProducerConfig.LINGER_MS_CONFIG, "2");
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            Map<Integer, List<String>> sent = new HashMap<>();
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                List<Future<RecordMetadata>> acks = new ArrayList<>();
                for (int i = 0; i < records; i++) {
                    acks.add(producer.send(new ProducerRecord<>("once", "k" + (i % 11), "v" + i)));
                }
                for (int i = 0; i < records; i++) {
                    sent.computeIfAbsent(acks.get(i).get().partition(), k -> new ArrayList<>()).add("v" + i);
                }
            }
            // Frees from another shard reach their arena on its next loop turns: wait for them (a bound, not a timing
            // check), then nothing may be left in Raft memory.
            long deadline = System.nanoTime() + 30_000_000_000L;
            long raft = -1;
            while (System.nanoTime() < deadline) {
                raft = broker.arenaStats(0).used(Subsystem.RAFT) + broker.arenaStats(1).used(Subsystem.RAFT);
                if (raft == 0) {
                    break;
                }
                Thread.sleep(20);
            }
            assertEquals(0, raft, "Raft memory held after every batch was acknowledged and durable: a payload was copied"
                + " into it, or Raft kept durable entries the batch cache holds");
            assertTrue(broker.arenaStats(0).used(Subsystem.BATCH_CACHE) + broker.arenaStats(1).used(Subsystem.BATCH_CACHE)
                + broker.arenaStats(0).used(Subsystem.NETWORK_RECEIVE) + broker.arenaStats(1).used(Subsystem.NETWORK_RECEIVE)
                > 0, "the batch cache holds the recent batches (its own pages, or shared received bytes)");
            Properties cp = common(broker);
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
                List<TopicPartition> tps = new ArrayList<>();
                for (int p = 0; p < 4; p++) {
                    tps.add(new TopicPartition("once", p));
                }
                consumer.assign(tps);
                consumer.seekToBeginning(tps);
                Map<Integer, List<String>> got = new HashMap<>();
                int total = 0;
                long until = System.nanoTime() + 60_000_000_000L;
                while (total < records && System.nanoTime() < until) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                        got.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r.value());
                        total++;
                    }
                }
                assertEquals(sent, got, "every acknowledged record, in order per partition");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"gzip", "snappy", "lz4", "zstd", "none"})
    void shouldPassCompressedBatchesThroughToConsumers(String codec, @TempDir Path dir) throws Exception {
        try (Broker broker = Broker.start(config(dir, 2, IoBackend.AUTO))) {
            Properties pp = common(broker);
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
            pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
            pp.put(ProducerConfig.LINGER_MS_CONFIG, "20");
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            List<String> sent = new ArrayList<>();
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                List<Future<RecordMetadata>> acks = new ArrayList<>();
                for (int i = 0; i < 500; i++) {
                    String v = codec + "-value-" + i + "-" + "x".repeat(i % 50);
                    sent.add(v);
                    acks.add(producer.send(new ProducerRecord<>("squeezed", "k" + i, v)));
                }
                for (Future<RecordMetadata> f : acks) {
                    f.get();
                }
            }
            Properties cp = common(broker);
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.CHECK_CRCS_CONFIG, "true");
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
                TopicPartition tp = new TopicPartition("squeezed", 0);
                consumer.assign(List.of(tp));
                consumer.seekToBeginning(List.of(tp));
                List<String> got = new ArrayList<>();
                long deadline = System.nanoTime() + 60_000_000_000L;
                while (got.size() < sent.size() && System.nanoTime() < deadline) {
                    consumer.poll(Duration.ofMillis(200)).forEach(r -> got.add(r.value()));
                }
                assertEquals(sent, got, "every record once, in order, decompressed by the consumer");
            }
        }
    }

    @Test
    void shouldKeepAcknowledgedRecordsAcrossARestart(@TempDir Path dir) throws Exception {
        Properties pp;
        try (Broker broker = Broker.start(config(dir, 2, IoBackend.AUTO))) {
            pp = common(broker);
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                for (int i = 0; i < 100; i++) {
                    producer.send(new ProducerRecord<>("durable", 0, null, "v" + i));
                }
                producer.flush();
            }
        }
        try (Broker broker = Broker.start(config(dir, 2, IoBackend.AUTO))) {
            Properties cp = common(broker);
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
                TopicPartition tp = new TopicPartition("durable", 0);
                consumer.assign(List.of(tp));
                consumer.seekToBeginning(List.of(tp));
                List<String> got = new ArrayList<>();
                long deadline = System.nanoTime() + 30_000_000_000L;
                while (got.size() < 100 && System.nanoTime() < deadline) {
                    consumer.poll(Duration.ofMillis(200)).forEach(r -> got.add(r.value()));
                }
                assertEquals(100, got.size());
                assertEquals("v0", got.get(0));
                assertEquals("v99", got.get(99));
                long end = consumer.endOffsets(List.of(tp)).get(tp);
                assertTrue(end >= 100 && end <= 103, "end offset " + end + ": 100 records and a control batch per term");
            }
        }
    }
}
