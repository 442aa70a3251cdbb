package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Topic administration with kafka-clients' AdminClient against a live broker. */
@ExtendWith(ArenaLeakCheck.class)
class AdminApiTest {

    private static BrokerConfig config(Path dir) {
        return BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2).memoryBytes(256L << 20).build();
    }

    private static Properties props(Broker b) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return p;
    }

    private static <T extends Throwable> T cause(Class<T> type, org.junit.jupiter.api.function.Executable e) {
        return assertInstanceOf(type, assertThrows(ExecutionException.class, e).getCause());
    }

    @Test
    void shouldDescribeAndAlterTopicConfigs(@TempDir Path dir) throws Exception {
        try (Broker broker = Broker.start(config(dir)); Admin admin = Admin.create(props(broker))) {
            admin.createTopics(List.of(new NewTopic("cfg", 1, (short) 1).configs(Map.of("retention.ms", "60000"))))
                .all().get();
            ConfigResource topic = new ConfigResource(ConfigResource.Type.TOPIC, "cfg");
            Config c = admin.describeConfigs(List.of(topic)).all().get().get(topic);
            assertEquals("60000", c.get("retention.ms").value());
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, c.get("retention.ms").source());
            assertEquals("delete", c.get("cleanup.policy").value());
            assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, c.get("cleanup.policy").source());

            admin.incrementalAlterConfigs(Map.of(topic, List.of(
                new AlterConfigOp(new ConfigEntry("segment.bytes", "1048576"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND),
                new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE)))).all().get();
            c = admin.describeConfigs(List.of(topic)).all().get().get(topic);
            assertEquals("1048576", c.get("segment.bytes").value());
            assertEquals("delete,compact", c.get("cleanup.policy").value());
            assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, c.get("retention.ms").source());

            InvalidConfigurationException bad = cause(InvalidConfigurationException.class, () -> admin
                .incrementalAlterConfigs(Map.of(topic, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "soon"),
                    AlterConfigOp.OpType.SET)))).all().get());
            assertTrue(bad.getMessage().contains("Invalid value soon for configuration retention.ms"), bad.getMessage());
            cause(InvalidConfigurationException.class, () -> admin.incrementalAlterConfigs(Map.of(topic, List.of(
                new AlterConfigOp(new ConfigEntry("no.such.config", "1"), AlterConfigOp.OpType.SET)))).all().get());
            cause(InvalidConfigurationException.class, () -> admin.createTopics(List.of(new NewTopic("bad-cfg", 1,
                (short) 1).configs(Map.of("cleanup.policy", "shred")))).all().get());

            ConfigResource brokerRes = new ConfigResource(ConfigResource.Type.BROKER, "0");
            Config bc = admin.describeConfigs(List.of(brokerRes)).all().get().get(brokerRes);
            assertEquals("2", bc.get("isthmus.smp").value());
            assertEquals("1", bc.get("num.partitions").value());
        }
        // Overrides survive a restart.
        try (Broker broker = Broker.start(config(dir)); Admin admin = Admin.create(props(broker))) {
            ConfigResource topic = new ConfigResource(ConfigResource.Type.TOPIC, "cfg");
            assertEquals("1048576", admin.describeConfigs(List.of(topic)).all().get().get(topic).get("segment.bytes")
                .value());
        }
    }

    @Test
    void shouldRefusePartitionsBeyondTheConfiguredLimitPerShard(@TempDir Path dir) throws Exception {
        BrokerConfig limited = config(dir).toBuilder().maxPartitionsPerShard(3).build(); // 3 x 2 shards = 6
        try (Broker broker = Broker.start(limited); Admin admin = Admin.create(props(broker))) {
            admin.createTopics(List.of(new NewTopic("four", 4, (short) 1))).all().get();
            Throwable refused = cause(InvalidPartitionsException.class,
                () -> admin.createTopics(List.of(new NewTopic("three", 3, (short) 1))).all().get());
            assertTrue(refused.getMessage().contains("at most 6 (3 per shard x 2 shards x 1 brokers)"),
                refused.getMessage());
            cause(InvalidPartitionsException.class,
                () -> admin.createPartitions(Map.of("four", NewPartitions.increaseTo(7))).all().get());
            admin.createPartitions(Map.of("four", NewPartitions.increaseTo(6))).all().get();
            assertEquals(Set.of("four"), admin.listTopics().names().get());
            assertEquals(6, admin.describeTopics(List.of("four")).allTopicNames().get().get("four").partitions().size());
        }
    }

    @Test
    void shouldGrowPartitionsDeleteRecordsAndDeleteTopics(@TempDir Path dir) throws Exception {
        try (Broker broker = Broker.start(config(dir)); Admin admin = Admin.create(props(broker));
             KafkaProducer<String, String> producer = new KafkaProducer<>(props(broker))) {
            admin.createTopics(List.of(new NewTopic("grow", 2, (short) 1))).all().get();
            admin.createPartitions(Map.of("grow", NewPartitions.increaseTo(4))).all().get();
            TopicDescription d = admin.describeTopics(List.of("grow")).allTopicNames().get().get("grow");
            assertEquals(4, d.partitions().size());
            cause(InvalidPartitionsException.class,
                () -> admin.createPartitions(Map.of("grow", NewPartitions.increaseTo(3))).all().get());
            // Beyond the partitions a broker can host (1000 per shard, 2 shards here): refused, nothing created.
            Throwable tooMany = cause(InvalidPartitionsException.class,
                () -> admin.createPartitions(Map.of("grow", NewPartitions.increaseTo(10_000))).all().get());
            assertTrue(tooMany.getMessage().contains("at most 2000"), tooMany.getMessage());
            cause(InvalidPartitionsException.class,
                () -> admin.createTopics(List.of(new NewTopic("huge", 1_997, (short) 1))).all().get());
            assertFalse(admin.listTopics().names().get().contains("huge"));
            assertEquals(4, admin.describeTopics(List.of("grow")).allTopicNames().get().get("grow").partitions().size());
            producer.send(new ProducerRecord<>("grow", 3, "k", "on the new partition")).get();

            for (int i = 0; i < 10; i++) {
                producer.send(new ProducerRecord<>("grow", 0, "k", "v" + i)).get();
            }
            TopicPartition p0 = new TopicPartition("grow", 0);
            long low = admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(6))).lowWatermarks().get(p0).get()
                .lowWatermark();
            assertEquals(6, low);
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(props(broker))) {
                assertEquals(6L, c.beginningOffsets(List.of(p0)).get(p0));
                c.assign(List.of(p0));
                c.seekToBeginning(List.of(p0));
                List<String> values = new ArrayList<>();
                long end = System.nanoTime() + 30_000_000_000L;
                while (values.size() < 4 && System.nanoTime() < end) {
                    c.poll(Duration.ofMillis(200)).forEach(r -> values.add(r.value()));
                }
                assertEquals(List.of("v6", "v7", "v8", "v9"), values);
            }

            admin.deleteTopics(List.of("grow")).all().get();
            assertFalse(admin.listTopics().names().get().contains("grow"));
            cause(UnknownTopicOrPartitionException.class, () -> admin.deleteTopics(List.of("grow")).all().get());
            // The same name again starts empty.
            admin.createTopics(List.of(new NewTopic("grow", 1, (short) 1))).all().get();
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(props(broker))) {
                assertEquals(0L, c.endOffsets(List.of(p0)).get(p0));
            }
            assertEquals(1, admin.describeCluster().nodes().get().size());
            assertEquals(broker.clusterId(), admin.describeCluster().clusterId().get());
        }
    }

    @Test
    void shouldListOffsetsByTimestampAndMaxTimestamp(@TempDir Path dir) throws Exception {
        try (Broker broker = Broker.start(config(dir)); Admin admin = Admin.create(props(broker));
             KafkaProducer<String, String> producer = new KafkaProducer<>(props(broker))) {
            long[] stamps = {1_000, 9_000, 3_000, 9_000, 5_000};
            for (long ts : stamps) {
                producer.send(new ProducerRecord<>("clock", 0, ts, "k", "at " + ts)).get();
            }
            TopicPartition tp = new TopicPartition("clock", 0);
            var max = admin.listOffsets(Map.of(tp, org.apache.kafka.clients.admin.OffsetSpec.maxTimestamp())).all().get()
                .get(tp);
            assertEquals(1, max.offset(), "the first record with the largest timestamp");
            assertEquals(9_000, max.timestamp());
            var at = admin.listOffsets(Map.of(tp, org.apache.kafka.clients.admin.OffsetSpec.forTimestamp(4_000))).all()
                .get().get(tp);
            assertEquals(1, at.offset(), "the first record at or after 4000");
            assertEquals(5, admin.listOffsets(Map.of(tp, org.apache.kafka.clients.admin.OffsetSpec.latest())).all().get()
                .get(tp).offset());
            assertEquals(0, admin.listOffsets(Map.of(tp, org.apache.kafka.clients.admin.OffsetSpec.earliest())).all()
                .get().get(tp).offset());
        }
    }

    /** Every error code we answer with is Kafka's own number for that name. */
    @Test
    void shouldUseKafkasErrorCodeNumbers() throws Exception {
        for (Field f : ErrorCodes.class.getFields()) {
            if (Modifier.isStatic(f.getModifiers()) && f.getType() == short.class) {
                assertEquals(org.apache.kafka.common.protocol.Errors.valueOf(f.getName()).code(), f.getShort(null),
                    f.getName());
            }
        }
    }
}
