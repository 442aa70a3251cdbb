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

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
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

    /** Sends {@code bytes} on a fresh connection to {@code port} and leaves it open (the caller closes it). */
    private static Socket stall(int port, String bytes) throws IOException {
        Socket s = new Socket("127.0.0.1", port);
        s.setSoTimeout(30_000);
        s.getOutputStream().write(bytes.getBytes(StandardCharsets.US_ASCII));
        s.getOutputStream().flush();
        return s;
    }

    /** Everything the server sends on {@code s} until it closes the connection. */
    private static String readAll(Socket s) throws IOException {
        return new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
    }

    /**
     * Finding 7 of issue 23: one client that sends half a request line and waits blocked /health and /metrics
     * for everyone. Now 50 such clients (and 10 that send nothing, and one that never reads) leave /health,
     * /ready and /metrics answering at once.
     */
    @Test
    void shouldAnswerHealthAndMetricsWhileStalledClientsHoldConnections(@TempDir Path dir) throws Exception {
        BrokerConfig config = BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2)
            .memoryBytes(256L << 20).metrics("127.0.0.1", 0).build();
        try (Broker broker = Broker.start(config)) {
            List<Socket> stalled = new ArrayList<>();
            try {
                for (int i = 0; i < 50; i++) {
                    stalled.add(stall(broker.metricsPort(), "GET /hea"));
                }
                for (int i = 0; i < 10; i++) {
                    stalled.add(stall(broker.metricsPort(), ""));
                }
                Socket notReading = new Socket();
                notReading.setReceiveBufferSize(1024);
                notReading.connect(new InetSocketAddress("127.0.0.1", broker.metricsPort()));
                stalled.add(notReading);
                notReading.getOutputStream().write("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII));
                HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(30)).build();
                String base = "http://127.0.0.1:" + broker.metricsPort();
                for (String path : List.of("/health", "/ready", "/metrics", "/health")) {
                    HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + path))
                        .timeout(Duration.ofSeconds(60)).build(), HttpResponse.BodyHandlers.ofString());
                    assertEquals(200, r.statusCode(), path + ": " + r.body());
                }
            } finally {
                for (Socket s : stalled) {
                    s.close();
                }
            }
        }
    }

    /**
     * Each HTTP connection has its deadlines and limits: a request head that does not arrive in time gets 408, one
     * too large 431, a method other than GET or HEAD 405, an unknown path 404, a line that is not HTTP 400; HEAD
     * answers without a body; at the connection limit a new client replaces the oldest stalled one.
     */
    @Test
    void shouldEnforceDeadlinesAndLimitsPerHttpConnection(@TempDir Path dir) throws Exception {
        BrokerConfig config = BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2)
            .memoryBytes(256L << 20).build();
        HttpEndpoint.Limits limits = new HttpEndpoint.Limits(300_000_000L, 30_000_000_000L, 1024, 4);
        try (Broker broker = Broker.start(config);
             MetricsServer m = MetricsServer.start(broker, "127.0.0.1", 0, limits)) {
            int port = m.port();
            try (Socket s = stall(port, "GET /hea")) {
                String r = readAll(s);
                assertTrue(r.startsWith("HTTP/1.1 408 "), r);
            }
            assertTrue(m.timedOutConnections() >= 1);
            try (Socket s = stall(port, "GET /health HTTP/1.1\r\nX-Padding: " + "p".repeat(2000) + "\r\n\r\n")) {
                String r = readAll(s);
                assertTrue(r.startsWith("HTTP/1.1 431 "), r);
            }
            try (Socket s = stall(port, "POST /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n")) {
                assertTrue(readAll(s).startsWith("HTTP/1.1 405 "));
            }
            try (Socket s = stall(port, "GET /nope HTTP/1.1\r\n\r\n")) {
                assertTrue(readAll(s).startsWith("HTTP/1.1 404 "));
            }
            try (Socket s = stall(port, "\u0016\u0003\u0001 hello\r\n\r\n")) {
                assertTrue(readAll(s).startsWith("HTTP/1.1 400 "));
            }
            try (Socket s = stall(port, "HEAD /health HTTP/1.1\r\n\r\n")) {
                String r = readAll(s);
                assertTrue(r.startsWith("HTTP/1.1 200 "), r);
                assertTrue(r.endsWith("\r\n\r\n"), "no body after the headers: " + r);
            }
            try (Socket s = stall(port, "GET /ready?verbose=1 HTTP/1.0\r\n\r\n")) {
                String r = readAll(s);
                assertTrue(r.startsWith("HTTP/1.1 200 ") && r.endsWith("\r\n\r\nready\n"), r);
            }
        }
        // With a long head deadline, four stalled connections fill a limit of four; a fifth client replaces the
        // oldest of them and is answered.
        HttpEndpoint.Limits patient = new HttpEndpoint.Limits(600_000_000_000L, 30_000_000_000L, 1024, 4);
        try (Broker broker = Broker.start(config.toBuilder().dataDir(dir.resolve("second")).build());
             MetricsServer m = MetricsServer.start(broker, "127.0.0.1", 0, patient)) {
            List<Socket> stalled = new ArrayList<>();
            try {
                for (int i = 0; i < 4; i++) {
                    stalled.add(stall(m.port(), "GET /heal"));
                }
                try (Socket s = stall(m.port(), "GET /health HTTP/1.1\r\n\r\n")) {
                    String r = readAll(s);
                    assertTrue(r.startsWith("HTTP/1.1 200 ") && r.endsWith("ok\n"), r);
                }
                assertEquals(1, m.replacedConnections());
                int end;
                try {
                    end = stalled.get(0).getInputStream().read();
                } catch (java.net.SocketException reset) {
                    end = -1; // closed before the server had read its bytes: a reset
                }
                assertEquals(-1, end, "the oldest stalled connection was closed");
            } finally {
                for (Socket s : stalled) {
                    s.close();
                }
            }
        }
    }

    /** The sum of every sample of {@code name} with labels containing {@code labels} in a scrape, or -1 if none. */
    private static long sample(String body, String name, String labels) {
        long sum = -1;
        for (String line : body.split("\n")) {
            if (line.startsWith(name + "{") && line.contains(labels)) {
                long v = Long.parseLong(line.substring(line.lastIndexOf(' ') + 1));
                sum = sum < 0 ? v : sum + v;
            }
        }
        return sum;
    }

    private static String scrape(Broker broker) throws Exception {
        HttpResponse<String> m = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
            + broker.metricsPort() + "/metrics")).timeout(Duration.ofSeconds(30)).build(),
            HttpResponse.BodyHandlers.ofString());
        assertEquals(200, m.statusCode());
        return m.body();
    }

    /**
     * Transactions on /metrics: the coordinator's open transactions, the age of the oldest and the markers pending
     * (per shard), and per partition the last stable offset, its lag behind the high watermark (Kafka's
     * LastStableOffsetLag: what read_committed consumers cannot read yet) and the transactions open there; all of
     * them back to zero once the transaction commits and its marker is written.
     */
    @Test
    void shouldExposeTransactionMetrics(@TempDir Path dir) throws Exception {
        BrokerConfig config = TransactionCoordinatorTest.config(dir, 2).toBuilder().metrics("127.0.0.1", 0).build();
        try (Broker broker = Broker.start(config);
             org.apache.kafka.clients.admin.Admin a = TransactionCoordinatorTest.admin(broker)) {
            a.createTopics(List.of(new org.apache.kafka.clients.admin.NewTopic("txn-metered", 1, (short) 1))).all()
                .get(30, java.util.concurrent.TimeUnit.SECONDS);
            String partition = "topic=\"txn-metered\",partition=\"0\"";
            try (KafkaProducer<String, String> p = new KafkaProducer<>(
                TransactionCoordinatorTest.producerProps(broker, "metered-txn", 600_000))) {
                p.initTransactions();
                p.beginTransaction();
                for (int i = 0; i < 3; i++) {
                    p.send(new ProducerRecord<>("txn-metered", 0, "k", "v" + i)).get(30, java.util.concurrent.TimeUnit.SECONDS);
                }
                String open = scrape(broker);
                assertEquals(1, sample(open, "isthmus_txn_open_transactions", ""), open);
                assertTrue(sample(open, "isthmus_txn_oldest_open_transaction_age_ms", "") >= 0, open);
                assertTrue(sample(open, "isthmus_txn_markers_pending", "") >= 0, open);
                assertEquals(0, sample(open, "isthmus_partition_last_stable_offset", partition), open);
                assertEquals(3, sample(open, "isthmus_partition_last_stable_offset_lag", partition), open);
                assertEquals(1, sample(open, "isthmus_partition_open_transactions", partition), open);
                p.commitTransaction();
            }
            // The marker (offset 3) is written after the commit is answered.
            String done = TransactionCoordinatorTest.await("the transaction's metrics back to zero", () -> {
                try {
                    String body = scrape(broker);
                    // Open until CompleteCommit is appended, which follows the last marker.
                    return sample(body, "isthmus_partition_last_stable_offset_lag", partition) == 0
                        && sample(body, "isthmus_txn_markers_pending", "") == 0
                        && sample(body, "isthmus_txn_open_transactions", "") == 0 ? body : null;
                } catch (Exception e) {
                    return null;
                }
            });
            assertEquals(0, sample(done, "isthmus_txn_oldest_open_transaction_age_ms", ""), done);
            assertEquals(4, sample(done, "isthmus_partition_last_stable_offset", partition), done);
            assertEquals(4, sample(done, "isthmus_partition_high_watermark", partition), done);
            assertEquals(0, sample(done, "isthmus_partition_open_transactions", partition), done);
            assertTrue(sample(done, "isthmus_txn_markers_written_total", "") >= 1, done);
        }
    }
}
