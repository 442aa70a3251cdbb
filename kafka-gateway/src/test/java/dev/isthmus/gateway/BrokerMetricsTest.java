package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
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
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The request, traffic and replica series {@link ShardMetrics} adds to {@code /metrics}, on a single node with two
 * shards: per-API request counts and latency histograms consistent with each other, the record bytes produced to
 * and fetched from a topic, and the replica gauges of a node that leads everything it hosts.
 */
@ExtendWith(ArenaLeakCheck.class)
class BrokerMetricsTest {
    private static final String TOPIC = "metered";
    private static final int RECORDS = 20;
    private static final int VALUE_BYTES = 200;

    @Test
    void shouldCountRequestsLatenciesTopicBytesAndReplicas(@TempDir Path dir) throws Exception {
        BrokerConfig config = BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2)
            .memoryBytes(256L << 20).metrics("127.0.0.1", 0).defaultPartitions(2).build();
        try (Broker broker = Broker.start(config)) {
            String bootstrap = "127.0.0.1:" + broker.port();
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            String value = "x".repeat(VALUE_BYTES);
            try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
                for (int i = 0; i < RECORDS; i++) {
                    p.send(new ProducerRecord<>(TOPIC, i % 2, null, value)).get(); // one batch per request
                }
            }
            String before = scrape(broker);
            long in = value(before, "isthmus_topic_bytes_in_total{topic=\"" + TOPIC + "\"}");
            assertTrue(in >= (long) RECORDS * VALUE_BYTES, "bytes in " + in + " hold every value");
            assertTrue(in < (long) RECORDS * (VALUE_BYTES + 100), "bytes in " + in + " are the batches, no more");
            assertEquals(0, value(before, "isthmus_topic_bytes_out_total{topic=\"" + TOPIC + "\"}"));

            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            int read = 0;
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
                List<TopicPartition> tps = List.of(new TopicPartition(TOPIC, 0), new TopicPartition(TOPIC, 1));
                c.assign(tps);
                c.seekToBeginning(tps);
                long deadline = System.nanoTime() + 30_000_000_000L;
                while (read < RECORDS && System.nanoTime() < deadline) {
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                        read++;
                    }
                }
            }
            assertEquals(RECORDS, read);
            String body = scrape(broker);
            long out = value(body, "isthmus_topic_bytes_out_total{topic=\"" + TOPIC + "\"}");
            assertTrue(out >= in, "every stored batch was fetched: out " + out + ", in " + in);

            long produces = value(body, "isthmus_requests_total{api=\"Produce\"}");
            assertTrue(produces >= RECORDS, "produce requests " + produces);
            assertTrue(value(body, "isthmus_requests_total{api=\"Fetch\"}") >= 1);
            assertEquals(0, value(body, "isthmus_request_failures_total{api=\"Produce\"}"));
            for (String api : List.of("Produce", "Fetch", "Metadata")) {
                List<Long> buckets = new ArrayList<>();
                Matcher m = Pattern.compile("isthmus_request_latency_seconds_bucket\\{api=\"" + api
                    + "\",le=\"[^\"]+\"} (\\d+)").matcher(body);
                while (m.find()) {
                    buckets.add(Long.parseLong(m.group(1)));
                }
                assertEquals(ShardMetrics.LATENCY_BUCKETS_S.length + 1, buckets.size(), api + " buckets");
                for (int i = 1; i < buckets.size(); i++) {
                    assertTrue(buckets.get(i) >= buckets.get(i - 1), api + " buckets are cumulative: " + buckets);
                }
                long count = value(body, "isthmus_request_latency_seconds_count{api=\"" + api + "\"}");
                assertEquals(buckets.get(buckets.size() - 1), count, api + ": the +Inf bucket is the count");
                assertEquals(value(body, "isthmus_requests_total{api=\"" + api + "\"}"), count, api);
                assertTrue(body.contains("isthmus_request_latency_seconds_sum{api=\"" + api + "\"} "), api);
            }

            assertEquals(2, value(body, "isthmus_leader_partitions"), "a single node leads what it hosts");
            assertEquals(2, value(body, "isthmus_replica_partitions"));
            assertEquals(0, value(body, "isthmus_under_replicated_partitions"));
            assertEquals(0, value(body, "isthmus_leaderless_partitions"));
            assertEquals(0, value(body, "isthmus_offline_replicas"));
            assertEquals(0, value(body, "isthmus_isr_shrinks_total"));
        }
    }

    private static String scrape(Broker broker) throws Exception {
        HttpResponse<String> m = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
            + broker.metricsPort() + "/metrics")).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, m.statusCode());
        return m.body();
    }

    /** The value of the series {@code series} (name and labels, exactly as rendered). */
    private static long value(String body, String series) {
        for (String line : body.split("\n")) {
            if (line.startsWith(series + " ")) {
                return Long.parseLong(line.substring(series.length() + 1).trim());
            }
        }
        throw new AssertionError("no series " + series + " in\n" + body);
    }
}
