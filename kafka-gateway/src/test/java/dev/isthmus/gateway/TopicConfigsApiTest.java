package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.ExecutionException;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Kafka 4.3's topic configs through kafka-clients' AdminClient against a live broker: the specs Terraform,
 * Strimzi, Kafka Streams and MirrorMaker 2 send pass unchanged; DescribeConfigs reports every config with its
 * value, source, synonyms, type and documentation; bad values answer INVALID_CONFIG naming the key; the broker's
 * own defaults (a Kafka-style --config file) show as STATIC_BROKER_CONFIG and apply; and max.message.bytes goes
 * past 1 MiB: a 10 MiB record is produced and consumed.
 */
@ExtendWith(ArenaLeakCheck.class)
class TopicConfigsApiTest {
    private static final DescribeConfigsOptions FULL = new DescribeConfigsOptions().includeDocumentation(true)
        .includeSynonyms(true);

    private static BrokerConfig.Builder config(Path dir) {
        return BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2).memoryBytes(256L << 20).pin(false);
    }

    private static Properties props(Broker b) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        return p;
    }

    private static ConfigResource topic(String name) {
        return new ConfigResource(ConfigResource.Type.TOPIC, name);
    }

    private static Config describe(Admin admin, ConfigResource r) throws Exception {
        return admin.describeConfigs(List.of(r), FULL).all().get().get(r);
    }

    /** A topic as a Strimzi KafkaTopic or a Terraform kafka_topic resource typically spells it out. */
    static Map<String, String> strimziStyleTopic() {
        Map<String, String> c = new LinkedHashMap<>();
        c.put("cleanup.policy", "delete");
        c.put("retention.ms", "604800000");
        c.put("retention.bytes", "1073741824");
        c.put("segment.bytes", "536870912");
        c.put("segment.ms", "86400000");
        c.put("min.insync.replicas", "1");
        c.put("max.message.bytes", "2097152");
        c.put("compression.type", "producer");
        c.put("message.timestamp.type", "CreateTime");
        c.put("message.timestamp.after.max.ms", "3600000");
        c.put("unclean.leader.election.enable", "false");
        c.put("delete.retention.ms", "86400000");
        c.put("min.compaction.lag.ms", "0");
        c.put("max.compaction.lag.ms", "9223372036854775807");
        c.put("min.cleanable.dirty.ratio", "0.5");
        c.put("file.delete.delay.ms", "60000");
        c.put("flush.messages", "9223372036854775807");
        c.put("flush.ms", "9223372036854775807");
        c.put("index.interval.bytes", "4096");
        c.put("segment.index.bytes", "10485760");
        c.put("preallocate", "false");
        c.put("segment.jitter.ms", "0");
        c.put("message.downconversion.enable", "true"); // left in many specs written for Kafka 3.x
        return c;
    }

    @Test
    void shouldTakeAStrimziStyleTopicAndDescribeEveryConfigWithSourceSynonymsTypeAndDocumentation(@TempDir Path dir)
        throws Exception {
        Map<String, String> spec = strimziStyleTopic();
        try (Broker broker = Broker.start(config(dir).build()); Admin admin = Admin.create(props(broker))) {
            CreateTopicsResult created = admin.createTopics(List.of(new NewTopic("orders", 3, (short) 1).configs(spec)));
            created.all().get();
            Config fromCreate = created.config("orders").get();
            assertEquals("2097152", fromCreate.get("max.message.bytes").value());
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, fromCreate.get("max.message.bytes").source());
            assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, fromCreate.get("local.retention.ms").source());

            Config c = describe(admin, topic("orders"));
            for (String name : TopicConfigs.DEFINITIONS.keySet()) {
                ConfigEntry e = c.get(name);
                assertNotNull(e, name + " is described");
                assertNotNull(e.value(), name);
                assertTrue(e.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG
                    || e.source() == ConfigEntry.ConfigSource.DEFAULT_CONFIG, name + " " + e.source());
                assertEquals(spec.containsKey(name), e.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, name);
                assertNotNull(e.documentation(), name);
                assertFalse(e.documentation().isBlank(), name);
                assertTrue(e.type() != ConfigEntry.ConfigType.UNKNOWN, name);
                assertFalse(e.synonyms().isEmpty(), name);
                assertFalse(e.isReadOnly(), name);
                if (spec.containsKey(name)) {
                    assertEquals(spec.get(name), e.value(), name);
                }
                if (!TopicConfigs.applied(name)) {
                    assertTrue(e.documentation().contains("no effect on this broker"), name + ": " + e.documentation());
                }
            }
            assertEquals("true", c.get("message.downconversion.enable").value());
            assertEquals(ConfigEntry.ConfigType.LIST, c.get("cleanup.policy").type());
            assertEquals(ConfigEntry.ConfigType.DOUBLE, c.get("min.cleanable.dirty.ratio").type());
            assertEquals(List.of("retention.ms=604800000 DYNAMIC_TOPIC_CONFIG", "log.retention.hours=168 DEFAULT_CONFIG"),
                c.get("retention.ms").synonyms().stream().map(s -> s.name() + "=" + s.value() + " " + s.source())
                    .toList());
            assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, c.get("local.retention.bytes").source());
            assertEquals("-2", c.get("local.retention.bytes").value());

            // The applied ones apply: a 1.5 MiB record fits this topic's 2 MiB batches (the default is 1 MiB).
            Properties pp = props(broker);
            pp.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(4 << 20));
            pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "none");
            try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(pp)) {
                p.send(new ProducerRecord<>("orders", 0, null, new byte[3 << 19])).get();
                admin.createTopics(List.of(new NewTopic("small", 1, (short) 1))).all().get();
                ExecutionException tooLarge = assertThrows(ExecutionException.class,
                    () -> p.send(new ProducerRecord<>("small", 0, null, new byte[3 << 19])).get());
                assertInstanceOf(RecordTooLargeException.class, tooLarge.getCause());
            }
        }
    }

    @Test
    void shouldPassKafkaStreamsAndMirrorMaker2TopicSpecsUnchanged(@TempDir Path dir) throws Exception {
        try (Broker broker = Broker.start(config(dir).build()); Admin admin = Admin.create(props(broker))) {
            // What Kafka Streams' InternalTopicManager creates: a repartition topic, a key-value store's changelog,
            // a windowed store's changelog (compact and delete) and a versioned store's changelog.
            Map<String, String> repartition = Map.of("cleanup.policy", "delete", "segment.bytes", "52428800",
                "segment.ms", "600000", "retention.ms", "-1", "message.timestamp.type", "CreateTime");
            Map<String, String> changelog = Map.of("cleanup.policy", "compact", "message.timestamp.type", "CreateTime");
            Map<String, String> windowed = Map.of("cleanup.policy", "compact,delete", "retention.ms", "172800000",
                "message.timestamp.type", "CreateTime");
            Map<String, String> versioned = Map.of("cleanup.policy", "compact", "min.compaction.lag.ms", "86400000",
                "message.timestamp.type", "CreateTime");
            // MirrorMaker 2's internal topics.
            Map<String, String> mm2 = Map.of("cleanup.policy", "compact");
            admin.createTopics(List.of(
                new NewTopic("app-agg-repartition", 4, (short) 1).configs(repartition),
                new NewTopic("app-store-changelog", 4, (short) 1).configs(changelog),
                new NewTopic("app-window-changelog", 2, (short) 1).configs(windowed),
                new NewTopic("app-versioned-changelog", 2, (short) 1).configs(versioned),
                new NewTopic("mm2-offset-syncs.target.internal", 1, (short) 1).configs(mm2),
                new NewTopic("heartbeats", 1, (short) 1).configs(mm2))).all().get();
            Config w = describe(admin, topic("app-window-changelog"));
            assertEquals("compact,delete", w.get("cleanup.policy").value());
            assertEquals("172800000", w.get("retention.ms").value());
            assertEquals("-1", describe(admin, topic("app-agg-repartition")).get("retention.ms").value());

            // MirrorMaker 2 copies a source topic's non-default configs onto its remote topic with SET operations.
            admin.createTopics(List.of(new NewTopic("source.orders", 1, (short) 1))).all().get();
            List<AlterConfigOp> ops = new ArrayList<>();
            for (ConfigEntry e : describe(admin, topic("app-agg-repartition")).entries()) {
                if (e.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG) {
                    ops.add(new AlterConfigOp(new ConfigEntry(e.name(), e.value()), AlterConfigOp.OpType.SET));
                }
            }
            assertEquals(repartition.size(), ops.size());
            admin.incrementalAlterConfigs(Map.of(topic("source.orders"), ops)).all().get();
            Config copied = describe(admin, topic("source.orders"));
            repartition.forEach((k, v) -> assertEquals(v, copied.get(k).value(), k));

            // validateOnly goes through the same checks and changes nothing.
            admin.createTopics(List.of(new NewTopic("dry-run", 1, (short) 1).configs(changelog)),
                new CreateTopicsOptions().validateOnly(true)).all().get();
            assertFalse(admin.listTopics().names().get().contains("dry-run"));
        }
    }

    @Test
    void shouldAnswerInvalidConfigNamingTheKeyAndTheReason(@TempDir Path dir) throws Exception {
        try (Broker broker = Broker.start(config(dir).build()); Admin admin = Admin.create(props(broker))) {
            admin.createTopics(List.of(new NewTopic("t", 1, (short) 1).configs(Map.of("retention.ms", "60000"))))
                .all().get();
            String[][] bad = {
                {"retention.ms", "soon", "Not a number of type LONG"},
                {"retention.ms", "-2", "Value must be at least -1"},
                {"segment.bytes", "1000", "Value must be at least 1048576"},
                {"cleanup.policy", "shred", "String must be one of: compact, delete"},
                {"compression.type", "GZIP", "String must be one of"},
                {"min.insync.replicas", "0", "Value must be at least 1"},
                {"min.cleanable.dirty.ratio", "1.5", "Value must be between 0 and 1"},
                {"unclean.leader.election.enable", "maybe", "Expected value to be either true or false"},
                {"max.message.bytes", "2147483648", "Not a number of type INT"},
                {"max.message.bytes", "268435456", "this broker takes batches of at most"},
                {"follower.replication.throttled.replicas", "everything", "[partitionId]:[brokerId]"},
                {"remote.storage.enable", "true", "Tiered storage is not available"},
                {"no.such.config", "1", "Unknown topic config name: no.such.config"},
            };
            for (String[] b : bad) {
                String key = b[0];
                InvalidConfigurationException onCreate = assertInstanceOf(InvalidConfigurationException.class,
                    assertThrows(ExecutionException.class, () -> admin.createTopics(List.of(new NewTopic("t2", 1,
                        (short) 1).configs(Map.of(key, b[1])))).all().get()).getCause(), key);
                assertTrue(onCreate.getMessage().contains(key) && onCreate.getMessage().contains(b[2]),
                    onCreate.getMessage());
                InvalidConfigurationException onAlter = assertInstanceOf(InvalidConfigurationException.class,
                    assertThrows(ExecutionException.class, () -> admin.incrementalAlterConfigs(Map.of(topic("t"),
                        List.of(new AlterConfigOp(new ConfigEntry(key, b[1]), AlterConfigOp.OpType.SET)))).all().get())
                        .getCause(), key);
                assertTrue(onAlter.getMessage().contains(key) && onAlter.getMessage().contains(b[2]),
                    onAlter.getMessage());
            }
            assertFalse(admin.listTopics().names().get().contains("t2"));
            // Rules between configs, and list operations on a config that is not a list.
            InvalidConfigurationException lags = assertInstanceOf(InvalidConfigurationException.class,
                assertThrows(ExecutionException.class, () -> admin.incrementalAlterConfigs(Map.of(topic("t"), List.of(
                    new AlterConfigOp(new ConfigEntry("min.compaction.lag.ms", "10"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("max.compaction.lag.ms", "5"), AlterConfigOp.OpType.SET))))
                    .all().get()).getCause());
            assertTrue(lags.getMessage().contains("min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"),
                lags.getMessage());
            InvalidConfigurationException append = assertInstanceOf(InvalidConfigurationException.class,
                assertThrows(ExecutionException.class, () -> admin.incrementalAlterConfigs(Map.of(topic("t"), List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "5"), AlterConfigOp.OpType.APPEND)))).all().get())
                    .getCause());
            assertTrue(append.getMessage().contains("retention.ms"), append.getMessage());
            // Nothing of a refused request was applied.
            Config c = describe(admin, topic("t"));
            assertEquals("60000", c.get("retention.ms").value());
            assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, c.get("min.compaction.lag.ms").source());
            // List operations item by item, as Kafka: SUBTRACT to an empty policy, APPEND back.
            admin.incrementalAlterConfigs(Map.of(topic("t"), List.of(new AlterConfigOp(new ConfigEntry("cleanup.policy",
                "delete"), AlterConfigOp.OpType.SUBTRACT)))).all().get();
            assertEquals("", describe(admin, topic("t")).get("cleanup.policy").value());
            admin.incrementalAlterConfigs(Map.of(topic("t"), List.of(new AlterConfigOp(new ConfigEntry("cleanup.policy",
                "compact,delete"), AlterConfigOp.OpType.APPEND)))).all().get();
            assertEquals("compact,delete", describe(admin, topic("t")).get("cleanup.policy").value());
        }
    }

    @Test
    void shouldReportAndApplyTheBrokersDefaultsFromAKafkaStyleConfigFile(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("server.properties");
        Files.writeString(file, """
            # Kafka's names for the broker's defaults of topic configs
            log.retention.hours = 48
            message.max.bytes = 3145728
            log.cleanup.policy = delete
            min.insync.replicas = 1
            num.partitions = 2
            """);
        BrokerConfig parsed = Main.parse(new String[] {"--config", file.toString(), "--listen", "127.0.0.1:0",
            "--data-dir", dir.resolve("data").toString(), "--smp", "2", "--memory", "256M"});
        assertEquals("48", parsed.topicDefaults().get("log.retention.hours"));
        assertEquals(2, parsed.defaultPartitions());
        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class, () -> Main.parse(new String[] {
            "--log.retention.hours", "two days"}));
        assertTrue(refused.getMessage().contains("log.retention.hours"), refused.getMessage());

        try (Broker broker = Broker.start(parsed.toBuilder().pin(false).build()); Admin admin = Admin.create(props(broker))) {
            admin.createTopics(List.of(new NewTopic("plain", 1, (short) 1),
                new NewTopic("own", 1, (short) 1).configs(Map.of("retention.ms", "1000")))).all().get();
            Config c = describe(admin, topic("plain"));
            assertEquals("172800000", c.get("retention.ms").value());
            assertEquals(ConfigEntry.ConfigSource.STATIC_BROKER_CONFIG, c.get("retention.ms").source());
            assertEquals(List.of("log.retention.hours=48 STATIC_BROKER_CONFIG", "log.retention.hours=168 DEFAULT_CONFIG"),
                c.get("retention.ms").synonyms().stream().map(s -> s.name() + "=" + s.value() + " " + s.source())
                    .toList());
            assertEquals("3145728", c.get("max.message.bytes").value());
            assertEquals(ConfigEntry.ConfigSource.STATIC_BROKER_CONFIG, c.get("max.message.bytes").source());
            assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, c.get("segment.bytes").source());
            Config own = describe(admin, topic("own"));
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, own.get("retention.ms").source());
            assertEquals(List.of("retention.ms", "log.retention.hours", "log.retention.hours"),
                own.get("retention.ms").synonyms().stream().map(ConfigEntry.ConfigSynonym::name).toList());

            ConfigResource b = new ConfigResource(ConfigResource.Type.BROKER, "0");
            Config bc = describe(admin, b);
            assertEquals("48", bc.get("log.retention.hours").value());
            assertEquals(ConfigEntry.ConfigSource.STATIC_BROKER_CONFIG, bc.get("log.retention.hours").source());
            assertEquals("3145728", bc.get("message.max.bytes").value());
            assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, bc.get("log.segment.bytes").source());
            ConfigEntry limit = bc.get("isthmus.max.message.bytes.limit");
            assertEquals(Integer.toString(parsed.maxMessageBytesLimit()), limit.value());
            assertTrue(limit.documentation().contains("write-behind"), limit.documentation());

            // The broker's message.max.bytes applies to topics without their own: a 2.5 MiB record is taken.
            Properties pp = props(broker);
            pp.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(4 << 20));
            try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(pp)) {
                p.send(new ProducerRecord<>("plain", 0, null, new byte[5 << 19])).get();
            }
        }
    }

    @Test
    void shouldProduceAndConsumeATenMiBRecordWithKafkaClients(@TempDir Path dir) throws Exception {
        BrokerConfig c = config(dir).build();
        assertTrue(c.maxMessageBytesLimit() >= 12 << 20, "limit " + c.maxMessageBytesLimit());
        byte[] value = new byte[10 << 20];
        long seed = System.nanoTime();
        System.out.println("TopicConfigsApiTest seed " + seed);
        new Random(Long.getLong("isthmus.seed", seed)).nextBytes(value);
        try (Broker broker = Broker.start(c); Admin admin = Admin.create(props(broker))) {
            admin.createTopics(List.of(new NewTopic("big", 1, (short) 1)
                .configs(Map.of("max.message.bytes", Integer.toString(12 << 20))))).all().get();
            Properties pp = props(broker);
            pp.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(16 << 20));
            pp.put(ProducerConfig.BUFFER_MEMORY_CONFIG, Integer.toString(64 << 20));
            pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "none");
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(pp)) {
                assertEquals(0, p.send(new ProducerRecord<>("big", 0, "k".getBytes(), value)).get().offset());
                assertEquals(1, p.send(new ProducerRecord<>("big", 0, "small".getBytes(), "v".getBytes())).get().offset());
                ExecutionException tooLarge = assertThrows(ExecutionException.class,
                    () -> p.send(new ProducerRecord<>("big", 0, null, new byte[13 << 20])).get());
                assertInstanceOf(RecordTooLargeException.class, tooLarge.getCause());
            }
            Properties cp = props(broker);
            cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp)) {
                TopicPartition tp = new TopicPartition("big", 0);
                consumer.assign(List.of(tp));
                List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
                long deadline = System.nanoTime() + 60_000_000_000L;
                while (got.size() < 2 && System.nanoTime() < deadline) {
                    consumer.poll(Duration.ofMillis(500)).forEach(got::add);
                }
                assertEquals(2, got.size());
                assertEquals(0, got.get(0).offset());
                assertEquals(value.length, got.get(0).serializedValueSize());
                assertTrue(Arrays.equals(value, got.get(0).value()), "the 10 MiB value reads back intact");
                assertArrayEquals("v".getBytes(), got.get(1).value());
            }
            // A topic may not allow batches beyond what this broker can take, and the answer says why.
            InvalidConfigurationException over = assertInstanceOf(InvalidConfigurationException.class, assertThrows(
                ExecutionException.class, () -> admin.createTopics(List.of(new NewTopic("bigger", 1, (short) 1)
                    .configs(Map.of("max.message.bytes", Integer.toString(c.maxMessageBytesLimit() + 1))))).all().get())
                .getCause());
            assertTrue(over.getMessage().contains("at most " + c.maxMessageBytesLimit()), over.getMessage());
            assertTrue(over.getMessage().contains("write-behind"), over.getMessage());
        }
    }

    @Test
    void shouldTakeA64MiBRecordWhenTheBrokersMessageMaxBytesSizesItsMemoryForIt(@TempDir Path dir) throws Exception {
        int max = (64 << 20) + 1024;
        // message.max.bytes sizes each shard's write-behind memory to hold such a batch (a 128 MiB block of the
        // arena), which must stay within a quarter of the shard's memory.
        IllegalArgumentException tooSmall = assertThrows(IllegalArgumentException.class, () -> config(dir)
            .topicDefault("message.max.bytes", Integer.toString(max)).build());
        assertTrue(tooSmall.getMessage().contains("give --memory at least"), tooSmall.getMessage());
        BrokerConfig c = config(dir).shards(1).memoryBytes(640L << 20)
            .topicDefault("message.max.bytes", Integer.toString(max)).build();
        assertTrue(c.maxMessageBytesLimit() >= max, "limit " + c.maxMessageBytesLimit());
        byte[] value = new byte[64 << 20];
        new Random(Long.getLong("isthmus.seed", 64)).nextBytes(value);
        try (Broker broker = Broker.start(c)) {
            Properties pp = props(broker);
            pp.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(max + (1 << 20)));
            pp.put(ProducerConfig.BUFFER_MEMORY_CONFIG, Integer.toString(160 << 20));
            pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "none");
            try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(pp)) {
                assertEquals(0, p.send(new ProducerRecord<>("huge", 0, null, value)).get().offset());
            }
            Properties cp = props(broker);
            cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp)) {
                consumer.assign(List.of(new TopicPartition("huge", 0)));
                List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
                long deadline = System.nanoTime() + 60_000_000_000L;
                while (got.isEmpty() && System.nanoTime() < deadline) {
                    consumer.poll(Duration.ofMillis(500)).forEach(got::add);
                }
                assertEquals(1, got.size());
                assertTrue(Arrays.equals(value, got.get(0).value()), "the 64 MiB value reads back intact");
            }
        }
    }
}
