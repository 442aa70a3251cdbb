package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.protocol.message.ProduceResponseData;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Topic configs the produce path applies ({@link TopicSettings}): message.timestamp.type=LogAppendTime (the
 * broker's stamp in the stored batch, the Produce response, what consumers see and ListOffsets by timestamp),
 * message.timestamp.before/after.max.ms (INVALID_TIMESTAMP with per-record errors), and compression.type (batches
 * stored with the topic's codec whatever the producer sent, read back by kafka-clients, idempotence intact).
 */
@ExtendWith(ArenaLeakCheck.class)
class TopicSettingsTest {
    private int correlation;

    private static BrokerConfig config(Path dir) {
        return BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2).memoryBytes(256L << 20).pin(false)
            .build();
    }

    private static Admin admin(Broker b) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        return Admin.create(p);
    }

    private static void create(Admin admin, String topic, Map<String, String> configs) throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1).configs(configs))).all().get();
    }

    private static KafkaConsumer<String, String> consumer(Broker b) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.CHECK_CRCS_CONFIG, "true");
        return new KafkaConsumer<>(p);
    }

    private static List<ConsumerRecord<String, String>> readAll(Broker b, String topic, int expected) {
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(b)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (got.size() < expected && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(got::add);
            }
        }
        assertEquals(expected, got.size(), "records read from " + topic);
        return got;
    }

    private static KafkaProducer<String, String> producer(Broker b, String codec) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        return new KafkaProducer<>(p);
    }

    @Test
    void shouldStampLogAppendTimeAndFindOffsetsByIt(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir)); Admin admin = admin(b);
             WireClient wire = new WireClient(b.port(), 60_000)) {
            create(admin, "lat", Map.of("message.timestamp.type", "LogAppendTime"));
            long before = System.currentTimeMillis();
            // Timestamps from 1970: a LogAppendTime topic does not check them, it replaces them.
            ProduceResponseData.PartitionProduceResponse first = RawBatches.produce(wire, ++correlation, (short) 9,
                "lat", 0, RawBatches.good(3, 10, Compression.NONE, 1000));
            long after = System.currentTimeMillis();
            assertEquals(ErrorCodes.NONE, first.errorCode, first.errorMessage);
            assertTrue(first.logAppendTimeMs >= before && first.logAppendTimeMs <= after, "log_append_time "
                + first.logAppendTimeMs + " in [" + before + ", " + after + "]");
            ProduceResponseData.PartitionProduceResponse second = RawBatches.produce(wire, ++correlation, (short) 9,
                "lat", 0, RawBatches.good(2, 10, Compression.gzip().build(), 2000));
            assertEquals(ErrorCodes.NONE, second.errorCode, second.errorMessage);
            assertEquals(3, second.baseOffset);

            List<byte[]> stored = RawBatches.fetchBatches(wire, ++correlation, "lat", 0, 0);
            assertEquals(2, stored.size());
            assertTrue(RawBatches.logAppendTime(stored.get(0)), "the stored batch carries the LogAppendTime bit");
            assertEquals(first.logAppendTimeMs, RawBatches.maxTimestamp(stored.get(0)));
            assertEquals(second.logAppendTimeMs, RawBatches.maxTimestamp(stored.get(1)));
            assertEquals(1, RawBatches.codec(stored.get(1)), "compression.type=producer keeps gzip");

            for (ConsumerRecord<String, String> r : readAll(b, "lat", 5)) {
                assertEquals(TimestampType.LOG_APPEND_TIME, r.timestampType());
                assertEquals(r.offset() < 3 ? first.logAppendTimeMs : second.logAppendTimeMs, r.timestamp());
            }
            TopicPartition tp = new TopicPartition("lat", 0);
            assertEquals(0, admin.listOffsets(Map.of(tp, OffsetSpec.forTimestamp(first.logAppendTimeMs))).all().get()
                .get(tp).offset(), "ListOffsets follows the stamped time");
            if (second.logAppendTimeMs > first.logAppendTimeMs) {
                assertEquals(3, admin.listOffsets(Map.of(tp, OffsetSpec.forTimestamp(first.logAppendTimeMs + 1)))
                    .all().get().get(tp).offset());
            }
            assertEquals(-1, admin.listOffsets(Map.of(tp, OffsetSpec.forTimestamp(after + 3_600_000L))).all().get()
                .get(tp).offset(), "no record is later");

            // A producer may not claim LogAppendTime itself.
            byte[] claims = RawBatches.good(2, 10);
            claims[RawBatches.ATTRIBUTES + 1] |= 0x08;
            RawBatches.fixCrc(claims);
            ProduceResponseData.PartitionProduceResponse refused = RawBatches.produce(wire, ++correlation, (short) 9,
                "lat", 0, claims);
            assertEquals(ErrorCodes.INVALID_TIMESTAMP, refused.errorCode);
            assertEquals(2, refused.recordErrors.size());
        }
    }

    @Test
    void shouldRefuseTimestampsOutsideTheTopicBounds(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir)); Admin admin = admin(b);
             WireClient wire = new WireClient(b.port(), 60_000)) {
            create(admin, "recent", Map.of("message.timestamp.before.max.ms", "60000"));
            create(admin, "plain", Map.of());
            long now = System.currentTimeMillis();
            ProduceResponseData.PartitionProduceResponse old = RawBatches.produce(wire, ++correlation, (short) 9,
                "recent", 0, RawBatches.good(3, 10, Compression.NONE, now - 3_600_000L));
            assertEquals(ErrorCodes.INVALID_TIMESTAMP, old.errorCode);
            assertEquals(List.of(0, 1, 2), old.recordErrors.stream().map(e -> e.batchIndex).toList());
            assertTrue(old.recordErrors.get(0).batchIndexErrorMessage.contains("out of range"));
            assertEquals(ErrorCodes.NONE, RawBatches.produce(wire, ++correlation, (short) 9, "recent", 0,
                RawBatches.good(3, 10, Compression.NONE, now)).errorCode);
            // Kafka 4's defaults: any age (before.max.ms = Long.MAX_VALUE), at most an hour ahead.
            assertEquals(ErrorCodes.NONE, RawBatches.produce(wire, ++correlation, (short) 9, "plain", 0,
                RawBatches.good(1, 10, Compression.NONE, 1_000_000L)).errorCode);
            ProduceResponseData.PartitionProduceResponse future = RawBatches.produce(wire, ++correlation, (short) 9,
                "plain", 0, RawBatches.good(1, 10, Compression.NONE, now + 2 * 3_600_000L));
            assertEquals(ErrorCodes.INVALID_TIMESTAMP, future.errorCode);
            // Produce v7 carries no record errors: the error code and nothing else.
            ProduceResponseData.PartitionProduceResponse v7 = RawBatches.produce(wire, ++correlation, (short) 7,
                "plain", 0, RawBatches.good(1, 10, Compression.NONE, now + 2 * 3_600_000L));
            assertEquals(ErrorCodes.INVALID_TIMESTAMP, v7.errorCode);
            assertTrue(v7.recordErrors.isEmpty());
            // A bad value for the bound is refused with the key named.
            var e = org.junit.jupiter.api.Assertions.assertThrows(java.util.concurrent.ExecutionException.class,
                () -> create(admin, "bad", Map.of("message.timestamp.after.max.ms", "-5")));
            assertTrue(e.getCause().getMessage().contains("message.timestamp.after.max.ms"), e.getCause().getMessage());
        }
    }

    @Test
    void shouldStoreBatchesWithTheTopicCodecKeepingOffsetsAndIdempotence(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir)); Admin admin = admin(b);
             WireClient wire = new WireClient(b.port(), 60_000)) {
            create(admin, "to-zstd", Map.of("compression.type", "zstd"));
            create(admin, "to-plain", Map.of("compression.type", "uncompressed"));
            create(admin, "as-sent", Map.of());
            String[][] cases = {{"to-zstd", "gzip", "4"}, {"to-zstd", "none", "4"}, {"to-plain", "lz4", "0"},
                {"to-plain", "snappy", "0"}, {"as-sent", "snappy", "2"}};
            Map<String, Integer> counts = new java.util.HashMap<>();
            for (String[] c : cases) {
                try (KafkaProducer<String, String> p = producer(b, c[1])) {
                    for (int i = 0; i < 50; i++) {
                        p.send(new ProducerRecord<>(c[0], 0, "k" + i, c[1] + "-" + i));
                    }
                    p.flush();
                }
                counts.merge(c[0], 50, Integer::sum);
            }
            for (String topic : List.of("to-zstd", "to-plain", "as-sent")) {
                List<byte[]> stored = RawBatches.fetchBatches(wire, ++correlation, topic, 0, 0);
                assertFalse(stored.isEmpty());
                int expectedCodec = topic.equals("to-zstd") ? 4 : topic.equals("to-plain") ? 0 : 2;
                for (byte[] batch : stored) {
                    assertEquals(expectedCodec, RawBatches.codec(batch), topic + " stores codec " + expectedCodec);
                    assertTrue(ByteBuffer.wrap(batch).getLong(43) >= 0, "the producer id survives recompression");
                }
                List<ConsumerRecord<String, String>> got = readAll(b, topic, counts.get(topic));
                for (int i = 0; i < got.size(); i++) {
                    assertEquals(i, got.get(i).offset());
                    assertEquals("k" + (i % 50), got.get(i).key());
                    assertTrue(got.get(i).value().endsWith("-" + (i % 50)), got.get(i).value());
                }
            }
            // A retried idempotent batch is recognised after recompression: the same offset, nothing appended.
            ByteBuffer idem = org.apache.kafka.common.record.internal.MemoryRecords.withIdempotentRecords(
                Compression.gzip().build(), 9_999L, (short) 0, 0,
                new org.apache.kafka.common.record.internal.SimpleRecord("a".getBytes()),
                new org.apache.kafka.common.record.internal.SimpleRecord("b".getBytes())).buffer();
            byte[] bytes = RawBatches.bytes(idem);
            long base = RawBatches.produce(wire, ++correlation, (short) 9, "to-zstd", 0, bytes).baseOffset;
            assertEquals(100, base);
            ProduceResponseData.PartitionProduceResponse retry = RawBatches.produce(wire, ++correlation, (short) 9,
                "to-zstd", 0, bytes);
            assertEquals(ErrorCodes.NONE, retry.errorCode);
            assertEquals(base, retry.baseOffset);
            // compression.type changed at runtime applies to the next batch.
            admin.incrementalAlterConfigs(Map.of(new ConfigResource(ConfigResource.Type.TOPIC, "as-sent"),
                List.of(new AlterConfigOp(new ConfigEntry("compression.type", "lz4"), AlterConfigOp.OpType.SET))))
                .all().get();
            long deadline = System.nanoTime() + 30_000_000_000L;
            int codec = -1;
            while (codec != 3 && System.nanoTime() < deadline) {
                ProduceResponseData.PartitionProduceResponse r = RawBatches.produce(wire, ++correlation, (short) 9,
                    "as-sent", 0, RawBatches.good(2, 10));
                assertEquals(ErrorCodes.NONE, r.errorCode, r.errorMessage);
                List<byte[]> last = RawBatches.fetchBatches(wire, ++correlation, "as-sent", 0, r.baseOffset);
                codec = RawBatches.codec(last.get(last.size() - 1));
            }
            assertEquals(3, codec, "the altered compression.type applies to new batches");
        }
    }
}
