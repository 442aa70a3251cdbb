package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.utils.Exit;
import org.apache.kafka.connect.cli.ConnectDistributed;
import org.apache.kafka.connect.runtime.Connect;
import org.apache.kafka.connect.runtime.distributed.DistributedHerder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Kafka Connect 4.3 in distributed mode (the worker Kafka ships, run in this JVM) against a real broker: its
 * config, offset and status topics are created compacted on the broker, and the file source and file sink
 * connectors, created through the worker's REST API, copy a few thousand lines from one file through a topic to
 * another: the sink file equals the source file.
 *
 * <p>Connect calls {@link Exit} when its herder thread dies; the test turns that into a failure instead of
 * letting it end the JVM.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(180)
class ConnectDistributedTest {
    private static final int LINES = 3_000;

    /** Fails the test instead of exiting the JVM when Connect gives up. */
    static void trapExit() {
        Exit.setExitProcedure((code, message) -> {
            throw new IllegalStateException("Kafka's code called exit(" + code + "): " + message);
        });
        Exit.setHaltProcedure((code, message) -> {
            throw new IllegalStateException("Kafka's code called halt(" + code + "): " + message);
        });
    }

    static void releaseExit() {
        Exit.resetExitProcedure();
        Exit.resetHaltProcedure();
    }

    @BeforeEach
    void trap() {
        trapExit();
    }

    @AfterEach
    void release() {
        releaseExit();
    }

    static BrokerConfig config(Path data) {
        return BrokerConfig.defaults().toBuilder().port(0).dataDir(data).shards(2).memoryBytes(256L << 20)
            .pin(false).groupInitialRebalanceDelayMs(0).build();
    }

    /** A distributed worker's settings: internal topics with one replica and few partitions, String converters. */
    static Map<String, String> workerConfig(String bootstrap, String groupId) {
        Map<String, String> w = new HashMap<>();
        w.put("bootstrap.servers", bootstrap);
        w.put("group.id", groupId);
        w.put("config.storage.topic", groupId + "-configs");
        w.put("offset.storage.topic", groupId + "-offsets");
        w.put("status.storage.topic", groupId + "-status");
        w.put("config.storage.replication.factor", "1");
        w.put("offset.storage.replication.factor", "1");
        w.put("status.storage.replication.factor", "1");
        w.put("offset.storage.partitions", "3");
        w.put("status.storage.partitions", "2");
        w.put("key.converter", "org.apache.kafka.connect.storage.StringConverter");
        w.put("value.converter", "org.apache.kafka.connect.storage.StringConverter");
        w.put("listeners", "http://127.0.0.1:0");
        w.put("offset.flush.interval.ms", "500");
        // The file connectors are on the classpath with ServiceLoader manifests: no reflective classpath scan.
        w.put("plugin.discovery", "service_load");
        return w;
    }

    /** POSTs a connector to the worker's REST API until it is created (the worker may still be joining). */
    static void createConnector(URI rest, String name, Map<String, String> config) throws Exception {
        String json = "{\"name\":\"" + name + "\",\"config\":{" + config.entrySet().stream()
            .map(e -> "\"" + e.getKey() + "\":\"" + e.getValue() + "\"").collect(Collectors.joining(",")) + "}}";
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        HttpRequest req = HttpRequest.newBuilder(rest.resolve("/connectors")).timeout(Duration.ofSeconds(30))
            .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(json)).build();
        String last = "";
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (System.nanoTime() < deadline) {
            HttpResponse<String> r = http.send(req, HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() == 201) {
                return;
            }
            last = r.statusCode() + " " + r.body();
            Thread.sleep(200); // polling the worker until it has joined its group, not timing
        }
        fail("creating connector " + name + ": " + last);
    }

    private static List<String> lines(Path file) throws IOException {
        return Files.exists(file) ? Files.readAllLines(file, StandardCharsets.UTF_8) : List.of();
    }

    @Test
    void fileSourceAndFileSinkOnADistributedWorkerShouldCopyEveryLine(@TempDir Path dir) throws Exception {
        Path source = dir.resolve("source.txt");
        Path sink = dir.resolve("sink.txt");
        List<String> written = IntStream.range(0, LINES).mapToObj(i -> "line " + i + " of the file source, "
            + "through an Isthmus topic, to the file sink").toList();
        Files.write(source, written, StandardCharsets.UTF_8);
        try (Broker b = Broker.start(config(dir.resolve("data")))) {
            String bootstrap = "127.0.0.1:" + b.port();
            Connect<DistributedHerder> connect = new ConnectDistributed().startConnect(workerConfig(bootstrap, "connect"));
            try {
                URI rest = connect.rest().serverUrl();
                createConnector(rest, "file-source", Map.of(
                    "connector.class", "org.apache.kafka.connect.file.FileStreamSourceConnector", "tasks.max", "1",
                    "file", source.toString(), "topic", "connect-lines"));
                createConnector(rest, "file-sink", Map.of(
                    "connector.class", "org.apache.kafka.connect.file.FileStreamSinkConnector", "tasks.max", "1",
                    "file", sink.toString(), "topics", "connect-lines"));
                long deadline = System.nanoTime() + 90_000_000_000L;
                while (lines(sink).size() < LINES && System.nanoTime() < deadline) {
                    Thread.sleep(100); // polling the sink file, not timing
                }
                assertEquals(written, lines(sink), "the sink file equals the source file");
            } finally {
                connect.stop();
                connect.awaitStop();
            }
            // The worker created its internal topics compacted, as Connect requires.
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
                for (String t : List.of("connect-configs", "connect-offsets", "connect-status")) {
                    ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, t);
                    Config c = admin.describeConfigs(List.of(r)).all().get().get(r);
                    assertEquals("compact", c.get("cleanup.policy").value(), t + " cleanup.policy");
                }
                assertTrue(admin.listTopics().names().get().contains("connect-lines"));
            }
            OtherClientsTest.awaitIdle(b);
        }
    }
}
