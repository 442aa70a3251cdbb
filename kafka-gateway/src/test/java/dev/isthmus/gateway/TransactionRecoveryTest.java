package dev.isthmus.gateway;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.message.FetchRequestData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.requests.FetchResponse;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The partition side of transactions across restarts of a broker process: after a kill -9 the producer state is
 * rebuilt (from the log, or from a periodic snapshot and the log after it) with the open transaction holding the
 * last stable offset and the aborted transactions listed again; after a clean stop the snapshot and the
 * {@code .txnindex} files are what the next start loads, and Kafka's DumpLogSegments reads the index entries and the
 * control batches from the files as Kafka wrote them.
 */
@Timeout(300)
class TransactionRecoveryTest {
    private static final String TOPIC = "recover";
    private static final TopicPartition TP = new TopicPartition(TOPIC, 0);
    private static final Pattern TXN_ENTRY = Pattern.compile(
        "producerId: (\\d+) firstOffset: (\\d+) lastOffset: (\\d+) lastStableOffset: (\\d+)");

    private static Admin admin(BrokerProcesses c) {
        return Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, c.bootstrap(),
            AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 60_000));
    }

    private static KafkaProducer<String, String> producer(BrokerProcesses c, String txnId) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, c.bootstrap());
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 600_000); // never times out here: the test ends it
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 60_000);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        return new KafkaProducer<>(p);
    }

    /** One READ_COMMITTED fetch from offset 0 (retried while the restarted node is not ready to answer). */
    private static FetchResponseData.PartitionData fetchCommitted(BrokerProcesses c) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            FetchRequestData req = new FetchRequestData().setReplicaId(-1).setMaxWaitMs(0).setMinBytes(0)
                .setMaxBytes(8 << 20).setIsolationLevel((byte) 1);
            req.topics().add(new FetchRequestData.FetchTopic().setTopic(TOPIC).setPartitions(List.of(
                new FetchRequestData.FetchPartition().setPartition(0).setFetchOffset(0).setPartitionMaxBytes(8 << 20))));
            FetchResponseData.PartitionData pd;
            try {
                FetchResponse r = (FetchResponse) KafkaRequests.send(c.node(0).kafkaPort(), ApiKeys.FETCH, (short) 12,
                    req);
                pd = r.data().responses().get(0).partitions().get(0);
            } catch (java.io.IOException notYet) {
                pd = null;
            }
            if (pd != null && pd.errorCode() == 0) {
                return pd;
            }
            assertTrue(System.nanoTime() < deadline, "no READ_COMMITTED fetch answered within 60 s: "
                + (pd == null ? "no connection" : "error " + pd.errorCode()) + "\n" + c.tail(40));
            Thread.sleep(100);
        }
    }

    /** {producerId, firstOffset} of each aborted transaction listed, in order. */
    private static List<List<Long>> aborted(FetchResponseData.PartitionData pd) {
        List<List<Long>> out = new ArrayList<>();
        for (FetchResponseData.AbortedTransaction a : pd.abortedTransactions()) {
            out.add(List.of(a.producerId(), a.firstOffset()));
        }
        return out;
    }

    private static void write(KafkaProducer<String, String> p, String txn, boolean commit) {
        p.beginTransaction();
        for (int i = 0; i < 3; i++) {
            p.send(new ProducerRecord<>(TOPIC, 0, "k", txn + "-" + i));
        }
        if (commit) {
            p.commitTransaction();
        } else {
            p.flush();
            p.abortTransaction();
        }
    }

    @Test
    void shouldRebuildOpenAndAbortedTransactionsAfterKillNineAndLoadThemFromTheSnapshotAfterACleanStop(
        @TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("broker.properties");
        Files.writeString(cfg, """
            transaction.state.log.num.partitions = 2
            transaction.abort.timed.out.transaction.cleanup.interval.ms = 200
            """);
        try (BrokerProcesses c = new BrokerProcesses(1, dir, List.of("--config", cfg.toString()))) {
            long openFirst;
            List<List<Long>> abortedBefore;
            try (Admin a = admin(c)) {
                a.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1))).all().get(60, TimeUnit.SECONDS);
                KafkaProducer<String, String> p = producer(c, "survivor");
                p.initTransactions();
                write(p, "c1", true);
                write(p, "a1", false);
                write(p, "c2", true);
                TransactionsTest.awaitStable(a, TP);
                p.beginTransaction();
                openFirst = p.send(new ProducerRecord<>(TOPIC, 0, "k", "open-0")).get().offset();
                p.send(new ProducerRecord<>(TOPIC, 0, "k", "open-1")).get();
                assertEquals(openFirst, TransactionsTest.latest(a, TP, IsolationLevel.READ_COMMITTED));
                FetchResponseData.PartitionData before = fetchCommitted(c);
                assertEquals(openFirst, before.lastStableOffset());
                abortedBefore = aborted(before);
                assertEquals(1, abortedBefore.size(), "a1 is aborted: " + abortedBefore);
                // The producer is dropped without ending its transaction; the broker dies with it open.
                p.close(java.time.Duration.ZERO);
            }
            int linesAtKill = c.output().size();
            c.kill(0);
            c.start(0);
            try (Admin a = admin(c)) {
                // Until the restarted replica has applied its committed entries (and committed one of its new term),
                // its LSO stays lower: never past the open transaction.
                FetchResponseData.PartitionData after = fetchCommitted(c);
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (after.lastStableOffset() < openFirst && System.nanoTime() < deadline) {
                    Thread.sleep(50);
                    after = fetchCommitted(c);
                }
                // How it came back (from the log, or a periodic snapshot and the log after it), for the record.
                c.output().subList(linesAtKill, c.output().size()).stream()
                    .filter(l -> l.contains("producer state of " + TOPIC)).forEach(System.out::println);
                assertEquals(openFirst, after.lastStableOffset(), "the open transaction holds the LSO after kill -9\n"
                    + c.tail(40));
                assertEquals(abortedBefore, aborted(after), "the aborted transactions after kill -9");
                assertEquals(openFirst, TransactionsTest.latest(a, TP, IsolationLevel.READ_COMMITTED));
                // A new incarnation of the producer aborts the open transaction: the LSO reaches the high watermark.
                try (KafkaProducer<String, String> p = producer(c, "survivor")) {
                    p.initTransactions();
                    write(p, "c3", true);
                }
                long end = TransactionsTest.awaitStable(a, TP);
                FetchResponseData.PartitionData done = fetchCommitted(c);
                assertEquals(end, done.lastStableOffset());
                assertEquals(2, done.abortedTransactions().size(), "a1 and the open one, aborted: " + aborted(done));
                assertEquals(openFirst, done.abortedTransactions().get(1).firstOffset());
            }
            List<List<Long>> abortedAtStop;
            long endAtStop;
            try (Admin a = admin(c)) {
                endAtStop = TransactionsTest.awaitStable(a, TP);
                abortedAtStop = aborted(fetchCommitted(c));
            }
            assertEquals(0, c.terminate(0), c.tail(40));
            // What a clean stop leaves: the producer snapshot and one .txnindex entry per aborted transaction, read by
            // Kafka's DumpLogSegments, and the control batches in the segment.
            Path partDir = c.node(0).dir().resolve("logs").resolve(TOPIC + "-0");
            assertTrue(Files.exists(partDir.resolve(PartitionProducers.SNAPSHOT)));
            List<String> txnIndexes = new ArrayList<>();
            List<String> segments = new ArrayList<>();
            try (Stream<Path> s = Files.list(partDir)) {
                s.sorted().forEach(f -> {
                    String n = f.getFileName().toString();
                    if (n.endsWith(".txnindex")) {
                        txnIndexes.add(f.toString());
                    } else if (n.endsWith(".log")) {
                        segments.add(f.toString());
                    }
                });
            }
            assertFalse(txnIndexes.isEmpty(), "no .txnindex file in " + partDir);
            ExternalClients.Result dump = ExternalClients.exec(120, dir, "", Map.of(),
                ExternalClients.javaCommand("org.apache.kafka.tools.DumpLogSegments", "--files",
                    String.join(",", txnIndexes)));
            assertEquals(0, dump.exit(), dump.both());
            List<List<Long>> indexed = new ArrayList<>();
            Matcher m = TXN_ENTRY.matcher(dump.out());
            while (m.find()) {
                indexed.add(List.of(Long.parseLong(m.group(1)), Long.parseLong(m.group(2))));
                assertTrue(Long.parseLong(m.group(3)) > Long.parseLong(m.group(2)), m.group());
            }
            assertEquals(abortedAtStop, indexed, "DumpLogSegments over the .txnindex files:\n" + dump.out());
            // The segments: DumpLogSegments finds five transactional control batches (DumpLogSegmentsTest reads
            // every record with --deep-iteration, the Raft leader's no-op included), and Kafka's FileRecords reads
            // their COMMIT/ABORT markers with the coordinator epoch.
            ExternalClients.Result log = ExternalClients.exec(120, dir, "", Map.of(),
                ExternalClients.javaCommand("org.apache.kafka.tools.DumpLogSegments", "--files",
                    String.join(",", segments)));
            assertEquals(0, log.exit(), log.both());
            assertEquals(5, Pattern.compile("isTransactional: true isControl: true").matcher(log.out()).results().count(),
                "transaction markers:\n" + log.out());
            int commits = 0;
            int aborts = 0;
            for (String segment : segments) {
                try (var records = org.apache.kafka.common.record.internal.FileRecords.open(Path.of(segment).toFile())) {
                    for (var batch : records.batches()) {
                        if (!batch.isControlBatch() || batch.producerId() < 0) {
                            continue;
                        }
                        assertTrue(batch.isTransactional());
                        var marker = org.apache.kafka.common.record.internal.EndTransactionMarker.deserialize(
                            batch.iterator().next());
                        assertTrue(marker.coordinatorEpoch() >= 0);
                        if (marker.controlType() == org.apache.kafka.common.record.internal.ControlRecordType.COMMIT) {
                            commits++;
                        } else {
                            aborts++;
                        }
                    }
                }
            }
            assertEquals(3, commits, "COMMIT markers of c1, c2, c3");
            assertEquals(2, aborts, "ABORT markers of a1 and the open transaction");
            int linesBefore = c.output().size();
            c.start(0);
            try (Admin a = admin(c)) {
                // Nothing open: once loaded, the LSO reaches the high watermark, at least where it was at the stop.
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (TransactionsTest.awaitStable(a, TP) < endAtStop) {
                    assertTrue(System.nanoTime() < deadline, "the LSO stays below " + endAtStop);
                    Thread.sleep(50);
                }
                FetchResponseData.PartitionData again = fetchCommitted(c);
                assertEquals(abortedAtStop, aborted(again), "the aborted transactions loaded from the snapshot");
            }
            List<String> restarted = c.output().subList(linesBefore, c.output().size());
            for (String line : restarted) {
                assertFalse(line.contains("producer state of " + TOPIC + "-0"), "the snapshot was not used: " + line);
            }
        }
    }
}
