package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.Map;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Prometheus endpoint and health checks of a live broker. */
@ExtendWith(ArenaLeakCheck.class)
class MetricsServerTest {

    @Test
    void shouldExposeShardPartitionAndGroupMetrics(@TempDir Path dir) throws Exception {
        BrokerConfig config = BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2)
            .memoryBytes(256L << 20).metrics("127.0.0.1", 0).offsetsTopicPartitions(2).build();
        try (Broker broker = Broker.start(config)) {
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + broker.port());
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
                for (int i = 0; i < 10; i++) {
                    p.send(new ProducerRecord<>("metered", "v" + i)).get();
                }
            }
            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + broker.port());
            cp.put(ConsumerConfig.GROUP_ID_CONFIG, "watchers");
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
                c.commitSync(Map.of(new TopicPartition("metered", 0), new OffsetAndMetadata(4)));
            }
            HttpClient http = HttpClient.newHttpClient();
            String base = "http://127.0.0.1:" + broker.metricsPort();
            HttpResponse<String> m = http.send(HttpRequest.newBuilder(URI.create(base + "/metrics")).build(),
                HttpResponse.BodyHandlers.ofString());
            assertEquals(200, m.statusCode());
            String body = m.body();
            assertTrue(body.contains("isthmus_shard_loop_turns{shard=\"1\"}"), body);
            assertTrue(body.contains("isthmus_memory_subsystem_used_bytes{shard=\"0\",subsystem=\"write_behind\"}"), body);
            assertTrue(body.contains("isthmus_partition_high_watermark{topic=\"metered\",partition=\"0\"} 10"), body);
            assertTrue(body.contains("isthmus_partition_append_to_durable_micros_count{topic=\"metered\",partition=\"0\"} 10"),
                body);
            // Every produced batch went into the shard's arena: none had to be copied to the heap.
            assertTrue(body.contains("isthmus_partition_produce_heap_copies_total{topic=\"metered\",partition=\"0\"} 0"),
                body);
            assertTrue(body.contains("isthmus_group_lag{group=\"watchers\",topic=\"metered\",partition=\"0\"} 6"), body);
            assertTrue(body.contains("\nisthmus_connections_refused_total 0\n"), body);
            assertTrue(body.contains("\nisthmus_connections_open "), body);
            // The stock of zeroed segments is installed and, with no busy log, empty and never made.
            assertTrue(body.contains("isthmus_zeroed_segments_made_total{shard=\"0\"} 0"), body);
            // The write-behind pool the shard's logs share: its size, and no log waiting for it.
            assertTrue(body.contains("isthmus_write_behind_chunks{shard=\"0\"} "), body);
            assertTrue(body.contains("isthmus_write_behind_waiting_logs{shard=\"0\"} 0"), body);
            assertTrue(body.contains("isthmus_write_behind_waits_total{shard=\"1\"} "), body);
            HttpResponse<String> h = http.send(HttpRequest.newBuilder(URI.create(base + "/health")).build(),
                HttpResponse.BodyHandlers.ofString());
            assertEquals(200, h.statusCode());
            assertEquals("ok\n", h.body());
        }
    }
}
