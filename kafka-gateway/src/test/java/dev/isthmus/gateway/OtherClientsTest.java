package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Clients that are not the Java client, against a live broker: librdkafka 2.0.2 (Debian's {@code kcat} and
 * {@code python3-confluent-kafka}) and kafkajs 2.2.4 (Node). Each test runs the real tool as a process; the
 * scripts are in {@code src/test/clients}. A tool that is not installed skips its test with the command that
 * installs it, except under CI ({@code CI=true}), where {@code .ci/run} installs them and a missing one fails.
 *
 * <p>A scenario that fails with the exact symptom of a broker bug already reported to the gateway's owner is
 * reported as aborted (skipped) naming that bug, so this class stays green while the bug is open and turns
 * into a real check the moment it is fixed; any other failure fails.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(300)
class OtherClientsTest {
    private static final Path CLIENTS = Path.of("src/test/clients");
    private static final int PROCESS_TIMEOUT_S = 120;

    /** Known broker bugs: the SEVERE log line the broker writes when it is hit, and the report. */
    private static final Map<String, String> KNOWN_BUGS = Map.of(); // none open (JoinGroup v<7 and empty-fetch fixed)

    /** What the broker logs at SEVERE during a test: a known bug's fingerprint. */
    private final ConcurrentLinkedQueue<LogRecord> severe = new ConcurrentLinkedQueue<>();
    private final Handler capture = new Handler() {
        @Override
        public void publish(LogRecord r) {
            if (r.getLevel().intValue() >= Level.SEVERE.intValue()) {
                severe.add(r);
            }
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };
    private final Logger isthmus = Logger.getLogger("dev.isthmus");

    @BeforeEach
    void captureLogs() {
        isthmus.addHandler(capture);
    }

    @AfterEach
    void releaseLogs() {
        isthmus.removeHandler(capture);
    }

    record Result(int exit, boolean timedOut, String out, String err) {
        String both() {
            return "exit " + exit + (timedOut ? " (timed out, killed)" : "") + "\n--- stdout\n" + tail(out)
                + "\n--- stderr\n" + tail(err);
        }

        private static String tail(String s) {
            return s.length() <= 6000 ? s : "..." + s.substring(s.length() - 6000);
        }
    }

    static Result exec(Path work, String stdin, Map<String, String> env, String... command)
        throws IOException, InterruptedException {
        return exec(PROCESS_TIMEOUT_S, work, stdin, env, command);
    }

    static Result exec(int timeoutS, Path work, String stdin, Map<String, String> env, String... command)
        throws IOException, InterruptedException {
        Path out = Files.createTempFile(work, "out", ".txt");
        Path err = Files.createTempFile(work, "err", ".txt");
        Path in = Files.createTempFile(work, "in", ".txt");
        Files.writeString(in, stdin, StandardCharsets.UTF_8);
        ProcessBuilder pb = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile())
            .redirectInput(in.toFile());
        pb.environment().putAll(env);
        System.out.println("$ " + String.join(" ", command));
        Process p = pb.start();
        boolean done = p.waitFor(timeoutS, TimeUnit.SECONDS);
        if (!done) {
            p.destroyForcibly();
            p.waitFor(30, TimeUnit.SECONDS);
        }
        Result r = new Result(done ? p.exitValue() : -1, !done, Files.readString(out, StandardCharsets.UTF_8),
            Files.readString(err, StandardCharsets.UTF_8));
        System.out.println(r.both());
        return r;
    }

    /** Skips (locally) or fails (CI) when a client is missing, with the way to install it. */
    static void require(boolean present, String what, String install) {
        if (present) {
            return;
        }
        String msg = what + " is not installed (" + install + ")";
        if ("true".equals(System.getenv("CI"))) {
            fail(msg + ": .ci/run installs it, so under CI it must be there");
        }
        Assumptions.abort(msg + "; skipped locally, required under CI");
    }

    static String onPath(String name) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path p = Path.of(dir, name);
            if (Files.isExecutable(p)) {
                return p.toString();
            }
        }
        return null;
    }

    /** Aborts naming a reported broker bug when the broker logged its fingerprint; otherwise fails. */
    private void failOrKnownBug(String message) {
        for (LogRecord r : severe) {
            for (Map.Entry<String, String> e : KNOWN_BUGS.entrySet()) {
                if (r.getMessage().contains(e.getKey())) {
                    System.out.println("KNOWN BROKER BUG: " + e.getValue());
                    Assumptions.abort(e.getValue() + " -- observed: " + message.lines().findFirst().orElse(""));
                }
            }
        }
        fail(message);
    }


    /**
     * A broker for one test, closed after it (before the arena leak check); closing first waits until every client connection is gone and no request is
     * still being handled (a killed client may leave a long-poll fetch behind), so shutdown never races a
     * handler (see the close-under-fetch report).
     */
    private final List<Broker> brokers = new ArrayList<>();

    private Broker started(Path dir) throws IOException {
        Broker b = Broker.start(config(dir));
        brokers.add(b);
        return b;
    }

    @AfterEach
    void idleThenClose() throws InterruptedException {
        for (Broker b : brokers) {
            awaitIdle(b);
            b.close();
        }
        brokers.clear();
    }

    static void awaitIdle(Broker b) throws InterruptedException {
        long deadline = System.nanoTime() + 60_000_000_000L;
        while ((Connection.openConnections(b) > 0 || Connection.pendingRequests(b) > 0) && System.nanoTime() < deadline) {
            Thread.sleep(10); // polling an observable condition, not timing
        }
    }

    private static BrokerConfig config(Path dir) {
        return BrokerConfig.defaults().toBuilder().port(0).dataDir(dir.resolve("data")).shards(2)
            .memoryBytes(256L << 20).pin(false).groupInitialRebalanceDelayMs(0).build();
    }

    // ------------------------------------------------------------------ kcat (librdkafka 2.0.2)

    private static String kcat() {
        String k = onPath("kcat");
        require(k != null, "kcat", "apt-get install kcat");
        return k;
    }

    @Test
    void kcatShouldProduceWithEveryCodecAndConsumeByPartition(@TempDir Path dir) throws Exception {
        String kcat = kcat();
        {
            Broker b = started(dir);
            b.createTopicBlocking("kc", 2);
            String broker = "127.0.0.1:" + b.port();
            Result md = exec(dir, "", Map.of(), kcat, "-b", broker, "-L", "-t", "kc");
            assertEquals(0, md.exit, md.both());
            assertTrue(md.out.contains("1 brokers:") && md.out.contains("2 partitions"), md.both());
            List<String> codecs = List.of("none", "gzip", "snappy", "lz4", "zstd");
            for (int p = 0; p < 2; p++) {
                for (String codec : codecs) {
                    int part = p;
                    String lines = IntStream.range(0, 20).mapToObj(i -> "key" + i + ":" + codec + "-" + part + "-" + i)
                        .collect(Collectors.joining("\n", "", "\n"));
                    Result r = exec(dir, lines, Map.of(), kcat, "-b", broker, "-P", "-t", "kc", "-p",
                        Integer.toString(p), "-K:", "-X", "compression.codec=" + codec, "-X", "enable.idempotence=true",
                        "-X", "acks=all");
                    assertEquals(0, r.exit, r.both());
                }
            }
            for (int p = 0; p < 2; p++) {
                Result r = exec(dir, "", Map.of(), kcat, "-b", broker, "-C", "-t", "kc", "-p", Integer.toString(p),
                    "-o", "beginning", "-c", "100", "-f", "%k=%s@%o\\n");
                assertEquals(0, r.exit, r.both());
                List<String> expected = new ArrayList<>();
                int offset = 0;
                for (String codec : codecs) {
                    for (int i = 0; i < 20; i++) {
                        expected.add("key" + i + "=" + codec + "-" + p + "-" + i + "@" + offset++);
                    }
                }
                assertEquals(expected, r.out.lines().toList(), "partition " + p + ": every record, in order");
            }
        }
    }

    @Test
    void kcatShouldStopAtTheEndOfAPartition(@TempDir Path dir) throws Exception {
        String kcat = kcat();
        {
            Broker b = started(dir);
            b.createTopicBlocking("eof", 1);
            String broker = "127.0.0.1:" + b.port();
            assertEquals(0, exec(dir, "a\nb\nc\n", Map.of(), kcat, "-b", broker, "-P", "-t", "eof", "-p", "0").exit);
            // -e: exit at the end of the partition, which librdkafka learns from an empty fetch.
            Result r = exec(15, dir, "", Map.of(), kcat, "-b", broker, "-C", "-t", "eof", "-p", "0", "-o", "beginning", "-e");
            assertEquals(0, r.exit, r.both());
            assertEquals(List.of("a", "b", "c"), r.out.lines().toList());
        }
    }

    @Test
    void kcatShouldConsumeInAGroup(@TempDir Path dir) throws Exception {
        String kcat = kcat();
        {
            Broker b = started(dir);
            b.createTopicBlocking("kg", 2);
            String broker = "127.0.0.1:" + b.port();
            String lines = IntStream.range(0, 30).mapToObj(i -> "v" + i).collect(Collectors.joining("\n", "", "\n"));
            assertEquals(0, exec(dir, lines, Map.of(), kcat, "-b", broker, "-P", "-t", "kg").exit);
            Result r = exec(20, dir, "", Map.of(), kcat, "-b", broker, "-G", "kcat-group", "-X", "auto.offset.reset=earliest",
                "-c", "30", "-f", "%s\\n", "kg");
            if (r.exit != 0) {
                failOrKnownBug("kcat -G: " + r.both());
            }
            assertEquals(IntStream.range(0, 30).mapToObj(i -> "v" + i).collect(Collectors.toSet()),
                r.out.lines().filter(l -> l.startsWith("v")).collect(Collectors.toSet()));
        }
    }

    // ------------------------------------------------------------------ confluent-kafka-python (librdkafka)

    static String python() throws Exception {
        String py = System.getenv().getOrDefault("ISTHMUS_PYTHON", "/usr/bin/python3");
        boolean ok = Files.isExecutable(Path.of(py))
            && new ProcessBuilder(py, "-c", "import confluent_kafka").start().waitFor() == 0;
        require(ok, "python3-confluent-kafka for " + py, "apt-get install python3-confluent-kafka");
        return py;
    }

    @Test
    void confluentKafkaPythonShouldProduceWithEveryCodecAndConsumeByAssignment(@TempDir Path dir) throws Exception {
        String py = python();
        {
            Broker b = started(dir);
            Result r = exec(dir, "", Map.of(), py, CLIENTS.resolve("confluent_roundtrip.py").toString(),
                "127.0.0.1:" + b.port(), "py-assign", "py-group", "200", "assign");
            assertEquals(0, r.exit, r.both());
            assertTrue(r.out.contains("\"step\": \"consume-assign\", \"distinct\": 1000, \"duplicates\": 0"), r.both());
        }
    }

    @Test
    void confluentKafkaPythonShouldConsumeInAGroupAndCommit(@TempDir Path dir) throws Exception {
        String py = python();
        {
            Broker b = started(dir);
            String broker = "127.0.0.1:" + b.port();
            Result produced = exec(dir, "", Map.of(), py, CLIENTS.resolve("confluent_roundtrip.py").toString(),
                broker, "py-group-topic", "py-unused", "50", "assign");
            assertEquals(0, produced.exit, produced.both());
            Result r = exec(dir, "", Map.of(), py, CLIENTS.resolve("confluent_roundtrip.py").toString(),
                broker, "py-group-topic", "py-group", "50", "group", "20");
            if (r.exit != 0) {
                failOrKnownBug("confluent-kafka group consumer: " + r.both());
            }
            assertTrue(r.out.contains("\"step\": \"consume-group\", \"distinct\": 250"), r.both());
        }
    }

    // ------------------------------------------------------------------ kafkajs 2.2.4 (Node)

    static String node() {
        String node = onPath("node");
        require(node != null, "node", "apt-get install nodejs");
        return node;
    }

    /** The installed kafkajs package ({@code .ci/run} puts it in ~/.cache/isthmus-clients), or $ISTHMUS_KAFKAJS. */
    static Path kafkajs() {
        Path kafkajs = Path.of(System.getenv().getOrDefault("ISTHMUS_KAFKAJS",
            System.getProperty("user.home") + "/.cache/isthmus-clients/node_modules/kafkajs"));
        require(Files.isRegularFile(kafkajs.resolve("package.json")), "kafkajs at " + kafkajs,
            "npm install --prefix ~/.cache/isthmus-clients kafkajs@2.2.4, or set ISTHMUS_KAFKAJS");
        return kafkajs;
    }

    @Test
    void kafkajsShouldCreateProduceAndConsumeInAGroup(@TempDir Path dir) throws Exception {
        String node = node();
        Path kafkajs = kafkajs();
        {
            Broker b = started(dir);
            Result r = exec(dir, "", Map.of("KAFKAJS_PATH", kafkajs.toString()), node,
                CLIENTS.resolve("kafkajs_roundtrip.js").toString(), "127.0.0.1:" + b.port(), "js-topic", "js-group", "100", "20");
            // Admin and the idempotent gzip producer must work whatever happens to the group.
            assertTrue(r.out.contains("{\"step\":\"admin\",\"created\":true,\"partitions\":2}"), r.both());
            assertTrue(r.out.contains("{\"step\":\"produce\""), r.both());
            assertTrue(!r.out.matches("(?s).*\"errorCode\":[1-9].*"), r.both());
            if (r.exit != 0) {
                failOrKnownBug("kafkajs: " + r.both());
            }
            assertTrue(r.out.contains("{\"step\":\"consume\",\"distinct\":100,\"duplicates\":0}"), r.both());
        }
    }
}
