package dev.isthmus.gateway;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
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
 * Kafka's {@code kafka-dump-log.sh} (DumpLogSegments, from Kafka's tools jar) reads a partition's segment files
 * whole with {@code --deep-iteration}: data records, transaction markers, and the no-op a Raft leader appends when
 * it takes office, written as KRaft writes it (a LEADER_CHANGE control record whose value is a
 * LeaderChangeMessage naming the leader and the voters).
 */
@Timeout(value = 180, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class DumpLogSegmentsTest {
    private static final String TOPIC = "dumped";
    private static final Pattern LEADER_CHANGE = Pattern.compile("LeaderChange: (\\{.*})");

    private static void produce(Broker b, String txnId, int records) throws Exception {
        Properties pp = TransactionCoordinatorTest.producerProps(b, txnId, 60_000);
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            p.initTransactions();
            p.beginTransaction();
            for (int i = 0; i < records; i++) {
                p.send(new ProducerRecord<>(TOPIC, 0, "k" + i, "v" + i)).get(30, TimeUnit.SECONDS);
            }
            p.commitTransaction();
        }
    }

    @Test
    void shouldReadEveryRecordOfAPartitionsSegmentsWithDeepIteration(@TempDir Path dir) throws Exception {
        BrokerConfig config = TransactionCoordinatorTest.config(dir.resolve("node"), 2).toBuilder().shards(1).build();
        try (Broker b = Broker.start(config); Admin a = TransactionCoordinatorTest.admin(b)) {
            a.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            produce(b, "before", 3);
        }
        // A restart: the partition's Raft group elects its leader again in a new term, which starts with the no-op
        // (the log holds entries this leader does not know committed yet).
        try (Broker b = Broker.start(config)) {
            produce(b, "after", 2);
        }
        Path partDir = dir.resolve("node").resolve("logs").resolve(TOPIC + "-0");
        List<String> segments;
        try (Stream<Path> s = Files.list(partDir)) {
            segments = s.map(Path::toString).filter(n -> n.endsWith(".log")).sorted().toList();
        }
        assertFalse(segments.isEmpty(), "no segment in " + partDir);
        ExternalClients.Result dump = ExternalClients.exec(120, dir, "", Map.of(),
            ExternalClients.javaCommand("org.apache.kafka.tools.DumpLogSegments", "--deep-iteration", "--print-data-log",
                "--files", String.join(",", segments)));
        assertEquals(0, dump.exit(), dump.both());
        assertFalse(dump.out().contains("Exception") || dump.err().contains("Exception"), dump.both());
        // Every record: 5 data records, the COMMIT markers (2, or 3 when the first transaction's marker is sent
        // again by the coordinator after the restart: it was stopped before recording CompleteCommit), and at least
        // one leader's no-op.
        assertEquals(5, Pattern.compile("payload: v\\d").matcher(dump.out()).results().count(), dump.out());
        long commits = Pattern.compile("endTxnMarker: COMMIT").matcher(dump.out()).results().count();
        assertTrue(commits == 2 || commits == 3, dump.out());
        Matcher m = LEADER_CHANGE.matcher(dump.out());
        assertTrue(m.find(), "no leader change record:\n" + dump.out());
        String json = m.group(1);
        assertTrue(json.contains("\"leaderId\":" + config.nodeId()), json);
        assertTrue(json.contains("\"voters\":[{\"voterId\":" + config.nodeId() + "}]"), json);
    }
}
