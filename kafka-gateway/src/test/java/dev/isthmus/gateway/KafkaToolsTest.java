package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.KafkaTool.Run;
import org.apache.kafka.common.utils.Exit;
import org.apache.kafka.common.utils.Utils;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.tools.ConsoleProducer;
import org.apache.kafka.tools.LogDirsCommand;
import org.apache.kafka.tools.TopicCommand;
import org.apache.kafka.tools.TransactionsCommand;
import org.apache.kafka.tools.consumer.ConsoleConsumer;
import org.apache.kafka.tools.consumer.ConsoleConsumerOptions;
import org.apache.kafka.tools.consumer.group.ConsumerGroupCommand;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Kafka's own command line tools (the kafka-tools jar, run in-process as {@code bin/kafka-*.sh} would run
 * them, with Kafka's {@link Exit} hook turned into an exception instead of a JVM exit): kafka-topics
 * create/list/describe/alter/delete, kafka-console-producer, kafka-console-consumer by partition and in a group,
 * kafka-consumer-groups list/describe/reset-offsets/delete, kafka-log-dirs --describe and kafka-transactions
 * describe-producers against a live broker. (kafka-leader-election runs in {@link LeaderElectionTest}, on a cluster;
 * kafka-acls needs the kafka-server jar, left out of the test class path, so the ACL APIs are tested with the
 * Admin client in {@link AdminApiTest}.)
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(180)
class KafkaToolsTest {
    private Run topics(Broker b, String... args) throws Exception {
        String[] all = KafkaTool.withBootstrap("127.0.0.1:" + b.port(), args);
        return KafkaTool.run("kafka-topics " + String.join(" ", all), () -> TopicCommand.main(all));
    }

    private Run groups(Broker b, String... args) throws Exception {
        String[] all = KafkaTool.withBootstrap("127.0.0.1:" + b.port(), args);
        return KafkaTool.run("kafka-consumer-groups " + String.join(" ", all), () -> ConsumerGroupCommand.main(all));
    }

    private Run consume(Broker b, String... args) throws Exception {
        String[] all = KafkaTool.withBootstrap("127.0.0.1:" + b.port(), KafkaTool.concat(new String[] {"--timeout-ms",
            "20000"}, args));
        return KafkaTool.run("kafka-console-consumer " + String.join(" ", all),
            () -> ConsoleConsumer.run(new ConsoleConsumerOptions(all)));
    }

    private Run produce(Broker b, String stdin, String... args) throws Exception {
        String[] all = KafkaTool.withBootstrap("127.0.0.1:" + b.port(), args);
        return KafkaTool.run("kafka-console-producer " + String.join(" ", all), stdin, () -> ConsoleProducer.main(all));
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
            assertEquals(0, create.code(), create.err());
            assertTrue(create.out().contains("Created topic orders."), create.out());

            Run again = topics(b, "--create", "--topic", "orders", "--partitions", "3");
            assertEquals(1, again.code());
            assertTrue(again.out().contains("already exists") || again.err().contains("already exists"),
                again.printed());
            Run ifNotExists = topics(b, "--create", "--if-not-exists", "--topic", "orders", "--partitions", "3");
            assertEquals(0, ifNotExists.code(), ifNotExists.err());

            Run list = topics(b, "--list");
            assertEquals(0, list.code(), list.err());
            assertTrue(list.lines().contains("orders"), list.out());

            Run describe = topics(b, "--describe", "--topic", "orders");
            assertEquals(0, describe.code(), describe.err());
            assertTrue(describe.out().contains("PartitionCount: 3"), describe.out());
            assertTrue(describe.out().contains("retention.ms=3600000"), describe.out());
            for (int p = 0; p < 3; p++) {
                assertTrue(describe.out().contains("Partition: " + p + "\tLeader: 0\tReplicas: 0\tIsr: 0"),
                    describe.out());
            }

            // DescribeTopicPartitions pages of two partitions: the tool follows the cursor to the end.
            Run paged = topics(b, "--describe", "--topic", "orders", "--partition-size-limit-per-response", "2");
            assertEquals(0, paged.code(), paged.err());
            for (int p = 0; p < 3; p++) {
                assertTrue(paged.out().contains("Partition: " + p + "\tLeader: 0\tReplicas: 0\tIsr: 0\tElr: \tLastKnownElr: "),
                    paged.out());
            }

            Run alter = topics(b, "--alter", "--topic", "orders", "--partitions", "5");
            assertEquals(0, alter.code(), alter.err());
            assertTrue(topics(b, "--describe", "--topic", "orders").out().contains("PartitionCount: 5"));

            Run delete = topics(b, "--delete", "--topic", "orders");
            assertEquals(0, delete.code(), delete.err());
            assertTrue(!topics(b, "--list").lines().contains("orders"));
            Run missing = topics(b, "--describe", "--topic", "orders");
            assertEquals(1, missing.code());
        }
    }

    @Test
    void shouldMoveLinesThroughConsoleProducerAndConsoleConsumer(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir))) {
            assertEquals(0, topics(b, "--create", "--topic", "lines", "--partitions", "2").code());
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
            assertEquals(0, produced.code(), produced.err());

            // By partition, from the beginning: keys and values as sent, in order within the partition.
            List<String> all = new java.util.ArrayList<>();
            for (int p = 0; p < 2; p++) {
                Run r = consume(b, "--topic", "lines", "--partition", Integer.toString(p), "--offset", "earliest",
                    "--max-messages", Integer.toString(perPartition[p]), "--formatter-property", "print.key=true",
                    "--formatter-property", "key.separator=:", "--formatter-property", "print.partition=true");
                assertEquals(perPartition[p], r.lines().size(), r.out() + r.err());
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
            assertEquals(50, grouped.lines().size(), grouped.out() + grouped.err());

            Run list = groups(b, "--list");
            assertEquals(0, list.code(), list.err());
            assertTrue(list.lines().contains("console"), list.out());
            Run describe = groups(b, "--describe", "--group", "console");
            assertEquals(0, describe.code(), describe.err());
            long endRows = describe.lines().stream().filter(l -> l.startsWith("console") && l.contains("lines"))
                .filter(l -> l.split("\\s+")[5].equals("0")).count(); // LAG column
            assertEquals(2, endRows, "both partitions committed at the end, lag 0:\n" + describe.out());

            Run reset = groups(b, "--reset-offsets", "--group", "console", "--topic", "lines", "--to-earliest", "--execute");
            assertEquals(0, reset.code(), reset.err());
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
                assertEquals(0, state.code(), state.err());
                assertTrue(state.lines().stream().anyMatch(l -> l.startsWith("live") && l.contains("Stable")
                    && l.endsWith("1")), "state Stable with 1 member:\n" + state.out());
                Run members = groups(b, "--describe", "--group", "live", "--members", "--verbose");
                assertEquals(0, members.code(), members.err());
                assertTrue(members.lines().stream().anyMatch(l -> l.startsWith("live") && l.contains("live-client")
                    && l.contains("lines:0,1")), "the member, its client id and both partitions:\n" + members.out());
                Run busy = groups(b, "--delete", "--group", "live");
                assertTrue(busy.out().contains("NON_EMPTY_GROUP") || busy.out().contains("not empty"),
                    "a group with members is not deleted:\n" + busy.out() + busy.err());
            }

            Run delete = groups(b, "--delete", "--group", "console");
            assertEquals(0, delete.code(), delete.err());
            assertTrue(!groups(b, "--list").lines().contains("console"));
        }
    }

    private static KafkaProducer<String, String> idempotentProducer(Broker b) {
        java.util.Properties p = new java.util.Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        return new KafkaProducer<>(p);
    }

    @Test
    void shouldDescribeTheDataDirectoryAndEveryPartitionSizeWithKafkaLogDirs(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir))) {
            assertEquals(0, topics(b, "--create", "--topic", "sized", "--partitions", "2").code());
            assertEquals(0, topics(b, "--create", "--topic", "other", "--partitions", "1").code());
            try (KafkaProducer<String, String> producer = idempotentProducer(b)) {
                for (int i = 0; i < 300; i++) {
                    producer.send(new ProducerRecord<>("sized", i % 3 == 0 ? 1 : 0, "k" + i, "value-" + i));
                }
                producer.send(new ProducerRecord<>("other", 0, "k", "v")).get();
            }
            String[] args = {"--bootstrap-server", "127.0.0.1:" + b.port(), "--describe", "--topic-list", "sized"};
            Run r = KafkaTool.run("kafka-log-dirs " + String.join(" ", args), () -> LogDirsCommand.main(args));
            assertEquals(0, r.code(), r.err());
            assertTrue(r.out().contains("Received log directory information from brokers 0"), r.out());
            JsonNode json = new ObjectMapper().readTree(r.lines().stream().filter(l -> l.startsWith("{")).findFirst()
                .orElseThrow());
            assertEquals(1, json.get("brokers").size());
            JsonNode broker = json.get("brokers").get(0);
            assertEquals(0, broker.get("broker").asInt());
            assertEquals(1, broker.get("logDirs").size());
            JsonNode logDir = broker.get("logDirs").get(0);
            assertEquals(dir.toAbsolutePath().toString(), logDir.get("logDir").asText());
            assertTrue(logDir.get("error").isNull(), logDir.toString());
            JsonNode partitions = logDir.get("partitions");
            assertEquals(2, partitions.size(), "only the topic asked for: " + partitions);
            for (JsonNode p : partitions) {
                String name = p.get("partition").asText();
                int index = Integer.parseInt(name.substring(name.lastIndexOf('-') + 1));
                assertEquals("sized-" + index, name);
                long stored = KafkaRequests.storedBytes(b.port(), "sized", index);
                assertTrue(stored > 0, name);
                assertEquals(stored, p.get("size").asLong(), name + ": the size is every stored batch's bytes");
                assertEquals(0, p.get("offsetLag").asLong(), name);
                assertFalse(p.get("isFuture").asBoolean(), name);
            }
        }
    }

    @Test
    void shouldDescribeTheIdempotentProducerOfAPartitionWithKafkaTransactions(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir))) {
            assertEquals(0, topics(b, "--create", "--topic", "idem", "--partitions", "1").code());
            long before = System.currentTimeMillis();
            try (KafkaProducer<String, String> producer = idempotentProducer(b)) {
                for (int i = 0; i < 7; i++) {
                    producer.send(new ProducerRecord<>("idem", 0, "k" + i, "v" + i)).get(); // one batch each
                }
            }
            long after = System.currentTimeMillis();
            List<RecordBatch> stored = KafkaRequests.batches(b.port(), "idem", 0);
            assertEquals(7, stored.size());
            RecordBatch last = stored.get(stored.size() - 1);
            assertTrue(last.producerId() >= 0, "an idempotent batch carries its producer id");
            assertEquals(6, last.lastSequence());

            String[] args = {"--bootstrap-server", "127.0.0.1:" + b.port(), "describe-producers", "--topic", "idem",
                "--partition", "0"};
            Run r = KafkaTool.run("kafka-transactions " + String.join(" ", args), () -> TransactionsCommand.main(args));
            assertEquals(0, r.code(), r.err());
            assertEquals(List.of("ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence", "LastTimestamp",
                "CurrentTransactionStartOffset"), List.of(r.lines().get(0).split("\\s+")));
            assertEquals(2, r.lines().size(), "one producer: " + r.out());
            String[] row = r.lines().get(1).split("\\s+");
            assertEquals(Long.toString(last.producerId()), row[0]);
            assertEquals(Short.toString(last.producerEpoch()), row[1]);
            assertEquals("-1", row[2]);
            assertEquals("6", row[3]);
            long ts = Long.parseLong(row[4]);
            assertTrue(ts >= before && ts <= after, "last write at " + ts + ", produced in [" + before + ", " + after + "]");
            assertEquals("None", row[5]);
        }
    }
}
