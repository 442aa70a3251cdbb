package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import org.apache.kafka.common.utils.Exit;
import org.apache.kafka.common.utils.Utils;
import org.apache.kafka.tools.ConsoleProducer;
import org.apache.kafka.tools.TopicCommand;
import org.apache.kafka.tools.consumer.ConsoleConsumer;
import org.apache.kafka.tools.consumer.ConsoleConsumerOptions;
import org.apache.kafka.tools.consumer.group.ConsumerGroupCommand;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Kafka's own command line tools (the kafka-tools jar, run in-process as {@code bin/kafka-*.sh} would run
 * them, with Kafka's {@link Exit} hook turned into an exception instead of a JVM exit): kafka-topics
 * create/list/describe/alter/delete, kafka-console-producer, kafka-console-consumer by partition and in a group,
 * and kafka-consumer-groups list/describe/reset-offsets/delete against a live broker.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(180)
class KafkaToolsTest {
    /** A tool called Exit.exit(code): carried out of the tool's main as an exception. */
    private static final class ToolExit extends RuntimeException {
        final int code;

        ToolExit(int code, String message) {
            super("exit " + code + (message == null ? "" : ": " + message), null, false, false);
            this.code = code;
        }
    }

    /** What a tool printed and the status it exited with. */
    private record Run(int code, String out, String err) {
        List<String> lines() {
            return out.lines().map(String::strip).filter(l -> !l.isEmpty()).toList();
        }
    }

    @FunctionalInterface
    private interface Tool {
        void run() throws Exception;
    }

    private PrintStream savedOut;
    private Integer firstExit;
    private PrintStream savedErr;
    private InputStream savedIn;

    @BeforeEach
    void hookExit() {
        savedOut = System.out;
        savedErr = System.err;
        savedIn = System.in;
        Exit.setExitProcedure((code, message) -> {
            if (firstExit == null) {
                firstExit = code; // a tool may catch our exception and exit again with 1: the first call counts
            }
            throw new ToolExit(code, message);
        });
        Exit.setShutdownHookAdder((name, hook) -> { }); // the tools' hooks would outlive the test
    }

    @AfterEach
    void restore() {
        System.setOut(savedOut);
        System.setErr(savedErr);
        System.setIn(savedIn);
        Exit.resetExitProcedure();
        Exit.resetShutdownHookAdder();
    }

    /** Runs a tool with {@code stdin}, capturing stdout and stderr; a normal return counts as exit 0. */
    private Run run(String stdin, Tool tool) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        System.setIn(new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)));
        firstExit = null;
        try {
            tool.run();
        } catch (ToolExit e) {
            // the code is in firstExit
        } finally {
            System.out.flush();
            System.err.flush();
            System.setOut(savedOut);
            System.setErr(savedErr);
            System.setIn(savedIn);
        }
        int code = firstExit == null ? 0 : firstExit;
        Run r = new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        savedOut.println("---- exit " + code + "\n" + r.out + (r.err.isBlank() ? "" : "---- stderr\n" + r.err));
        return r;
    }

    private Run topics(Broker b, String... args) throws Exception {
        String[] all = concat(new String[] {"--bootstrap-server", "127.0.0.1:" + b.port()}, args);
        savedOut.println("kafka-topics " + String.join(" ", all));
        return run("", () -> TopicCommand.main(all));
    }

    private Run groups(Broker b, String... args) throws Exception {
        String[] all = concat(new String[] {"--bootstrap-server", "127.0.0.1:" + b.port()}, args);
        savedOut.println("kafka-consumer-groups " + String.join(" ", all));
        return run("", () -> ConsumerGroupCommand.main(all));
    }

    private Run consume(Broker b, String... args) throws Exception {
        String[] all = concat(new String[] {"--bootstrap-server", "127.0.0.1:" + b.port(), "--timeout-ms", "20000"},
            args);
        savedOut.println("kafka-console-consumer " + String.join(" ", all));
        return run("", () -> ConsoleConsumer.run(new ConsoleConsumerOptions(all)));
    }

    private Run produce(Broker b, String stdin, String... args) throws Exception {
        String[] all = concat(new String[] {"--bootstrap-server", "127.0.0.1:" + b.port()}, args);
        savedOut.println("kafka-console-producer " + String.join(" ", all));
        return run(stdin, () -> ConsoleProducer.main(all));
    }

    private static String[] concat(String[] a, String[] b) {
        String[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    private static BrokerConfig config(Path dir) {
        return BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2).memoryBytes(256L << 20).pin(false)
            .groupInitialRebalanceDelayMs(0).build();
    }

    @Test
    void shouldCreateListDescribeAlterAndDeleteTopicsWithKafkaTopics(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir))) {
            Run create = topics(b, "--create", "--topic", "orders", "--partitions", "3", "--replication-factor", "1",
                "--config", "retention.ms=3600000");
            assertEquals(0, create.code, create.err);
            assertTrue(create.out.contains("Created topic orders."), create.out);

            Run again = topics(b, "--create", "--topic", "orders", "--partitions", "3");
            assertEquals(1, again.code);
            assertTrue(again.out.contains("already exists") || again.err.contains("already exists"), again.out + again.err);
            Run ifNotExists = topics(b, "--create", "--if-not-exists", "--topic", "orders", "--partitions", "3");
            assertEquals(0, ifNotExists.code, ifNotExists.err);

            Run list = topics(b, "--list");
            assertEquals(0, list.code, list.err);
            assertTrue(list.lines().contains("orders"), list.out);

            Run describe = topics(b, "--describe", "--topic", "orders");
            assertEquals(0, describe.code, describe.err);
            assertTrue(describe.out.contains("PartitionCount: 3"), describe.out);
            assertTrue(describe.out.contains("retention.ms=3600000"), describe.out);
            for (int p = 0; p < 3; p++) {
                assertTrue(describe.out.contains("Partition: " + p + "\tLeader: 0\tReplicas: 0\tIsr: 0"), describe.out);
            }

            Run alter = topics(b, "--alter", "--topic", "orders", "--partitions", "5");
            assertEquals(0, alter.code, alter.err);
            assertTrue(topics(b, "--describe", "--topic", "orders").out.contains("PartitionCount: 5"));

            Run delete = topics(b, "--delete", "--topic", "orders");
            assertEquals(0, delete.code, delete.err);
            assertTrue(!topics(b, "--list").lines().contains("orders"));
            Run missing = topics(b, "--describe", "--topic", "orders");
            assertEquals(1, missing.code);
        }
    }

    @Test
    void shouldMoveLinesThroughConsoleProducerAndConsoleConsumer(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir))) {
            assertEquals(0, topics(b, "--create", "--topic", "lines", "--partitions", "2").code);
            // Ten keys: the producer's default partitioner (murmur2 of the key) spreads them over both partitions.
            String input = IntStream.range(0, 50).mapToObj(i -> "k" + (i % 10) + ":line-" + i)
                .collect(Collectors.joining("\n", "", "\n"));
            int[] perPartition = new int[2];
            for (int i = 0; i < 50; i++) {
                byte[] key = ("k" + (i % 10)).getBytes(StandardCharsets.UTF_8);
                perPartition[Utils.toPositive(Utils.murmur2(key)) % 2]++;
            }
            Run produced = produce(b, input, "--topic", "lines", "--reader-property", "parse.key=true",
                "--reader-property", "key.separator=:", "--command-property", "acks=all");
            assertEquals(0, produced.code, produced.err);

            // By partition, from the beginning: keys and values as sent, in order within the partition.
            List<String> all = new java.util.ArrayList<>();
            for (int p = 0; p < 2; p++) {
                Run r = consume(b, "--topic", "lines", "--partition", Integer.toString(p), "--offset", "earliest",
                    "--max-messages", Integer.toString(perPartition[p]), "--formatter-property", "print.key=true",
                    "--formatter-property", "key.separator=:", "--formatter-property", "print.partition=true");
                assertEquals(perPartition[p], r.lines().size(), r.out + r.err);
                List<Integer> seq = r.lines().stream().map(l -> Integer.parseInt(l.substring(l.lastIndexOf("line-") + 5)))
                    .toList();
                assertEquals(seq.stream().sorted().toList(), seq, "partition " + p + " in order");
                for (String l : r.lines()) {
                    int i = Integer.parseInt(l.substring(l.lastIndexOf("line-") + 5));
                    assertEquals("Partition:" + p + ":k" + (i % 10) + ":line-" + i, l);
                }
                all.addAll(r.lines());
            }
            assertEquals(50, all.size());

            // In a consumer group: every line once, offsets committed (seen by kafka-consumer-groups below).
            Run grouped = consume(b, "--topic", "lines", "--group", "console", "--from-beginning", "--max-messages", "50",
                "--command-property", "enable.auto.commit=true", "--command-property", "auto.commit.interval.ms=100");
            assertEquals(50, grouped.lines().size(), grouped.out + grouped.err);

            Run list = groups(b, "--list");
            assertEquals(0, list.code, list.err);
            assertTrue(list.lines().contains("console"), list.out);
            Run describe = groups(b, "--describe", "--group", "console");
            assertEquals(0, describe.code, describe.err);
            long endRows = describe.lines().stream().filter(l -> l.startsWith("console") && l.contains("lines"))
                .filter(l -> l.split("\\s+")[5].equals("0")).count(); // LAG column
            assertEquals(2, endRows, "both partitions committed at the end, lag 0:\n" + describe.out);

            Run reset = groups(b, "--reset-offsets", "--group", "console", "--topic", "lines", "--to-earliest", "--execute");
            assertEquals(0, reset.code, reset.err);
            Run again = consume(b, "--topic", "lines", "--group", "console", "--max-messages", "50");
            assertEquals(50, again.lines().size(), "after --reset-offsets --to-earliest everything is read again");

            // A live member: kafka-consumer-groups sees it, its state and its assignment.
            java.util.Properties cp = new java.util.Properties();
            cp.put("bootstrap.servers", "127.0.0.1:" + b.port());
            cp.put("group.id", "live");
            cp.put("client.id", "live-client");
            cp.put("key.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
            cp.put("value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
            try (org.apache.kafka.clients.consumer.KafkaConsumer<String, String> live =
                     new org.apache.kafka.clients.consumer.KafkaConsumer<>(cp)) {
                live.subscribe(List.of("lines"));
                long deadline = System.nanoTime() + 60_000_000_000L;
                while (live.assignment().size() < 2 && System.nanoTime() < deadline) {
                    live.poll(java.time.Duration.ofMillis(100));
                }
                assertEquals(2, live.assignment().size());
                Run state = groups(b, "--describe", "--group", "live", "--state");
                assertEquals(0, state.code, state.err);
                assertTrue(state.lines().stream().anyMatch(l -> l.startsWith("live") && l.contains("Stable")
                    && l.endsWith("1")), "state Stable with 1 member:\n" + state.out);
                Run members = groups(b, "--describe", "--group", "live", "--members", "--verbose");
                assertEquals(0, members.code, members.err);
                assertTrue(members.lines().stream().anyMatch(l -> l.startsWith("live") && l.contains("live-client")
                    && l.contains("lines:0,1")), "the member, its client id and both partitions:\n" + members.out);
                Run busy = groups(b, "--delete", "--group", "live");
                assertTrue(busy.out.contains("NON_EMPTY_GROUP") || busy.out.contains("not empty"),
                    "a group with members is not deleted:\n" + busy.out + busy.err);
            }

            Run delete = groups(b, "--delete", "--group", "console");
            assertEquals(0, delete.code, delete.err);
            assertTrue(!groups(b, "--list").lines().contains("console"));
        }
    }
}
