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
 * whole with {@code --deep-iteration}: data records, transaction markers, the no-op a Raft leader appends when
 * it takes office, written as KRaft writes it (a LEADER_CHANGE control record whose value is a
 * LeaderChangeMessage naming the leader and the voters), and the membership entries a reassignment appends (the
 * joint configuration, then the new one), written as KRaft writes its voter set (a KRAFT_VOTERS control record whose
 * value is a VotersRecord listing the voting nodes).
 */
@Timeout(value = 180, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class DumpLogSegmentsTest {
    private static final String TOPIC = "dumped";
    private static final Pattern LEADER_CHANGE = Pattern.compile("LeaderChange: (\\{.*})");
    private static final Pattern KRAFT_VOTERS = Pattern.compile("KRaftVoters (\\{.*})");

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

    /** Kafka's DumpLogSegments --deep-iteration --print-data-log over the {@code .log} files of {@code partDir}. */
    private static ExternalClients.Result dump(Path dir, Path partDir) throws Exception {
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
        return dump;
    }

    private static void send(String bootstrap, String topic, int from, int to) throws Exception {
        Properties pp = new Properties();
        pp.put(org.apache.kafka.clients.producer.ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(org.apache.kafka.clients.producer.ProducerConfig.ACKS_CONFIG, "all");
        pp.put(org.apache.kafka.clients.producer.ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG,
            org.apache.kafka.common.serialization.StringSerializer.class.getName());
        pp.put(org.apache.kafka.clients.producer.ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG,
            org.apache.kafka.common.serialization.StringSerializer.class.getName());
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            for (int i = from; i < to; i++) {
                p.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i)).get(60, TimeUnit.SECONDS);
            }
        }
    }

    /**
     * A partition moved from node 0 alone to nodes 0 and 1 (the leader adds node 1 as a learner, then commits the
     * joint configuration and the new one): both nodes' segments read whole, and the membership entries show as
     * KRaftVoters records naming the voters.
     */
    @Test
    void shouldReadTheMembershipEntriesOfAReassignedPartition(@TempDir Path dir) throws Exception {
        String topic = "reassigned";
        int records = 0;
        try (BrokerProcesses c = new BrokerProcesses(2, dir, List.of());
             Admin a = Admin.create(Map.of(org.apache.kafka.clients.admin.AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG,
                 c.bootstrap()))) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
            while (true) { // the nodes register once both seeds are up
                try {
                    a.createTopics(List.of(new NewTopic(topic, Map.of(0, List.of(0))))).all().get(30, TimeUnit.SECONDS);
                    break;
                } catch (Exception e) {
                    if (e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException) {
                        break;
                    }
                    assertTrue(System.nanoTime() < deadline, "the cluster did not take the topic: " + e);
                    Thread.sleep(500);
                }
            }
            send(c.bootstrap(), topic, 0, 3);
            records += 3;
            org.apache.kafka.common.TopicPartition tp = new org.apache.kafka.common.TopicPartition(topic, 0);
            a.alterPartitionReassignments(Map.of(tp, java.util.Optional.of(
                new org.apache.kafka.clients.admin.NewPartitionReassignment(List.of(0, 1))))).all()
                .get(30, TimeUnit.SECONDS);
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
            String seen = "";
            while (true) {
                var p = a.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS).get(topic)
                    .partitions().get(0);
                seen = p.toString();
                if (p.replicas().size() == 2 && p.isr().size() == 2
                    && a.listPartitionReassignments().reassignments().get(30, TimeUnit.SECONDS).isEmpty()) {
                    break;
                }
                assertTrue(System.nanoTime() < deadline, "the move did not complete: " + seen);
                Thread.sleep(200);
            }
            send(c.bootstrap(), topic, 3, 5);
            records += 2;
            for (int node = 0; node < 2; node++) {
                assertEquals(0, c.terminate(node), c.tail(40));
            }
        }
        for (int node = 0; node < 2; node++) {
            ExternalClients.Result dump = dump(dir, dir.resolve("node-" + node).resolve("logs").resolve(topic + "-0"));
            String out = dump.out();
            assertEquals(records, Pattern.compile("payload: v\\d").matcher(out).results().count(), "node " + node
                + ":\n" + out);
            List<String> voters = KRAFT_VOTERS.matcher(out).results().map(m -> m.group(1)).toList();
            // Node 1 as a learner ({0} votes), the joint configuration ({0} and {0, 1}) and the new one ({0, 1}): the
            // last two list nodes 0 and 1 as voters.
            assertTrue(voters.size() >= 3, "node " + node + ": membership entries " + voters + "\n" + out);
            for (String json : voters.subList(voters.size() - 2, voters.size())) {
                assertTrue(json.contains("\"voterId\":0") && json.contains("\"voterId\":1"), json);
            }
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
