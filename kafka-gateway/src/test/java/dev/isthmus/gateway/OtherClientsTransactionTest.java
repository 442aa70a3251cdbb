package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.record.internal.ControlRecordType;
import org.apache.kafka.common.record.internal.EndTransactionMarker;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Transactional producers that are not the Java client, against a live broker: confluent-kafka-python on
 * librdkafka 2.0.2 and kafkajs 2.2.4, the same checks {@link TransactionsTest} makes with kafka-clients. Each
 * client runs as a process ({@code src/test/clients/confluent_transactions.py}, {@code kafkajs_transactions.js})
 * through five transactions on one transactional id: c1 (records and a consumer offset, committed), a1 (records
 * and an offset, aborted), c2 (committed), z1 (left open, then fenced by a second producer with the same id, whose
 * initialisation aborts it) and c3 (the second producer's, committed). The scripts check what the client sees: the
 * offset invisible until the commit, the aborted offset never, the fenced producer's error, and the client's own
 * read_committed consumer reading c1, c2 and c3 exactly once (both clients drop aborted records themselves, from
 * the fetch's aborted-transaction list). librdkafka sends its offsets with the group metadata of a consumer that
 * joined the group (TxnOffsetCommit v3 with a generation and member id, as in a consume-transform-produce loop);
 * kafkajs's TxnOffsetCommit (v0 to v1) carries only the group id. This class then checks
 * what the broker stored, with kafka-clients: read_committed returns c1, c2 and c3 exactly once, read_uncommitted
 * also a1 and z1, each partition holds the five markers in order (commit, abort, commit, abort, commit) with the
 * two aborted transactions in the read_committed fetch's list, the second producer's epoch above the first's, and
 * the group's offset is c1's.
 *
 * <p>On the wire (librdkafka's protocol debug log): InitProducerId v4, AddPartitionsToTxn v0, AddOffsetsToTxn v0,
 * TxnOffsetCommit v3, EndTxn v1, Produce v7; kafkajs uses InitProducerId, EndTxn and TxnOffsetCommit v0 to v1.
 * The clients run on transaction version 1 (neither uses KIP-890's version 2) against a broker that advertises
 * version 2, as Kafka 4.x brokers do. A missing client skips locally and fails under CI, as in
 * {@link OtherClientsTest}. One broker per test, closed after it once every connection is gone.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(240)
class OtherClientsTransactionTest {
    private static final Path CLIENTS = Path.of("src/test/clients");
    private static final String TOPIC = "txn-out";
    private static final String INPUT = "txn-in";
    private static final String GROUP = "txn-copier";
    private static final int PER_TXN = 6;

    private final List<Broker> brokers = new ArrayList<>();

    private Broker started(Path dir) throws Exception {
        Broker b = Broker.start(TransactionCoordinatorTest.config(dir.resolve("data"), 2).toBuilder().pin(false)
            .groupInitialRebalanceDelayMs(0).build());
        brokers.add(b);
        try (Admin a = TransactionCoordinatorTest.admin(b)) {
            a.createTopics(List.of(new NewTopic(TOPIC, 2, (short) 1), new NewTopic(INPUT, 1, (short) 1))).all()
                .get(30, TimeUnit.SECONDS);
        }
        return b;
    }

    @AfterEach
    void idleThenClose() throws InterruptedException {
        for (Broker b : brokers) {
            OtherClientsTest.awaitIdle(b);
            b.close();
        }
        brokers.clear();
    }

    @Test
    void confluentKafkaPythonTransactionsShouldCommitAbortAndBeFenced(@TempDir Path dir) throws Exception {
        String py = OtherClientsTest.python();
        Broker b = started(dir);
        OtherClientsTest.Result r = OtherClientsTest.exec(dir, "", Map.of(), py,
            CLIENTS.resolve("confluent_transactions.py").toString(), "127.0.0.1:" + b.port(), TOPIC, INPUT, GROUP,
            "py-txn");
        assertEquals(0, r.exit(), r.both());
        assertTrue(r.out().contains("{\"step\": \"member-joined\", \"assigned\": [[\"" + INPUT + "\", 0]]}"), r.both());
        assertClientSaw(r);
        // librdkafka 2.0.2 sends EndTxn v1, gets INVALID_PRODUCER_EPOCH and raises its fatal _FENCED error.
        assertTrue(r.out().contains("\"step\": \"z1-fenced\", \"code\": -144, \"name\": \"_FENCED\", \"fatal\": true"),
            r.both());
        assertStored(b);
    }

    @Test
    void kafkajsTransactionsShouldCommitAbortAndBeFenced(@TempDir Path dir) throws Exception {
        String node = OtherClientsTest.node();
        Path kafkajs = OtherClientsTest.kafkajs();
        Broker b = started(dir);
        OtherClientsTest.Result r = OtherClientsTest.exec(dir, "", Map.of("KAFKAJS_PATH", kafkajs.toString()), node,
            CLIENTS.resolve("kafkajs_transactions.js").toString(), "127.0.0.1:" + b.port(), TOPIC, INPUT, GROUP,
            "js-txn");
        assertEquals(0, r.exit(), r.both());
        assertClientSaw(r);
        // EndTxn v1 (kafkajs's highest): a fenced producer gets INVALID_PRODUCER_EPOCH (47), as Kafka answers
        // versions below 2 instead of PRODUCER_FENCED.
        assertTrue(r.out().contains("{\"step\":\"z1-fenced\",\"name\":\"KafkaJSProtocolError\",\"type\":\"INVALID_PRODUCER_EPOCH\",\"code\":47"),
            r.both());
        assertStored(b);
    }

    /** The steps each script reports, with the group offset it read (JSON spacing differs between Python and Node). */
    private static void assertClientSaw(OtherClientsTest.Result r) {
        String out = r.out().replace(" ", "");
        assertTrue(out.contains("{\"step\":\"c1-pending\",\"committed\":null}"), "offset hidden until the commit\n" + r.both());
        assertTrue(out.contains("{\"step\":\"c1-committed\",\"committed\":5}"), r.both());
        assertTrue(out.contains("{\"step\":\"c2-committed\",\"committed\":5}"), "aborted offset 9 dropped\n" + r.both());
        assertTrue(out.contains("\"step\":\"c3-committed\""), r.both());
        List<String> committed = new ArrayList<>();
        for (String txn : List.of("c1", "c2", "c3")) {
            for (int i = 0; i < PER_TXN; i++) {
                committed.add("\"" + txn + "-" + i + "\"");
            }
        }
        assertTrue(out.contains("{\"step\":\"read-committed\",\"values\":[" + String.join(",", committed) + "]}"),
            "the client's own read_committed consumer: c1, c2, c3 once each\n" + r.both());
    }

    private static List<String> values(String txn, int partition) {
        List<String> l = new ArrayList<>();
        for (int i = partition; i < PER_TXN; i += 2) {
            l.add(txn + "-" + i);
        }
        return l;
    }

    /** What the broker stored, read back with kafka-clients. */
    private static void assertStored(Broker b) throws Exception {
        try (Admin a = TransactionCoordinatorTest.admin(b)) {
            TopicPartition p0 = new TopicPartition(TOPIC, 0);
            TopicPartition p1 = new TopicPartition(TOPIC, 1);
            Map<TopicPartition, Long> end = Map.of(p0, TransactionsTest.awaitStable(a, p0), p1,
                TransactionsTest.awaitStable(a, p1));
            List<String> expected = new ArrayList<>();
            List<String> everything = new ArrayList<>();
            for (String txn : List.of("c1", "a1", "c2", "z1", "c3")) {
                for (int i = 0; i < PER_TXN; i++) {
                    (txn.startsWith("c") ? expected : everything).add(txn + "-" + i);
                }
            }
            everything.addAll(expected);
            List<String> committed = TransactionsTest.readAll(b, IsolationLevel.READ_COMMITTED, List.of(p0, p1), end);
            assertEquals(TransactionsTest.sorted(expected), TransactionsTest.sorted(committed),
                "read_committed: c1, c2, c3 once each, nothing of a1 or z1");
            List<String> uncommitted = TransactionsTest.readAll(b, IsolationLevel.READ_UNCOMMITTED, List.of(p0, p1), end);
            assertEquals(TransactionsTest.sorted(everything), TransactionsTest.sorted(uncommitted),
                "read_uncommitted: every data record of the five transactions, once, no control record");

            for (TopicPartition tp : List.of(p0, p1)) {
                // Per partition, in log order: each transaction's records, then its marker.
                List<String> order = new ArrayList<>();
                List<Short> epochs = new ArrayList<>();
                List<Long> abortedStarts = new ArrayList<>();
                long producerId = -1;
                long firstOffsetOfTxn = -1;
                FetchResponseData.PartitionData ru = TransactionsTest.fetch(b, tp, 0, (byte) 0);
                for (RecordBatch batch : ((MemoryRecords) ru.records()).batches()) {
                    assertTrue(batch.isTransactional(), tp + " batch at " + batch.baseOffset() + " is transactional");
                    if (producerId == -1) {
                        producerId = batch.producerId();
                    }
                    assertEquals(producerId, batch.producerId(), "one producer id for the transactional id, bumped epochs");
                    if (batch.isControlBatch()) {
                        Record rec = batch.iterator().next();
                        EndTransactionMarker m = EndTransactionMarker.deserialize(rec);
                        assertEquals(ControlRecordType.parse(rec.key()), m.controlType());
                        assertTrue(m.coordinatorEpoch() >= 0);
                        assertEquals(RecordBatch.NO_SEQUENCE, batch.baseSequence(), "markers carry no sequence");
                        order.add(m.controlType().name());
                        if (m.controlType() == ControlRecordType.ABORT) {
                            abortedStarts.add(firstOffsetOfTxn);
                        }
                        firstOffsetOfTxn = -1;
                    } else {
                        if (firstOffsetOfTxn == -1) {
                            firstOffsetOfTxn = batch.baseOffset();
                        }
                        for (Record rec : batch) {
                            order.add(StandardCharsets.UTF_8.decode(rec.value()).toString());
                        }
                    }
                    epochs.add(batch.producerEpoch());
                }
                List<String> expectedOrder = new ArrayList<>();
                for (String txn : List.of("c1", "a1", "c2", "z1", "c3")) {
                    expectedOrder.addAll(values(txn, tp.partition()));
                    expectedOrder.add(txn.startsWith("c") ? "COMMIT" : "ABORT");
                }
                assertEquals(expectedOrder, order, tp + ": records and markers in log order");
                for (int i = 1; i < epochs.size(); i++) {
                    assertTrue(epochs.get(i) >= epochs.get(i - 1), tp + ": producer epochs never go back " + epochs);
                }
                assertTrue(epochs.getLast() > epochs.getFirst(), tp + ": the second producer wrote with a bumped epoch "
                    + epochs);
                FetchResponseData.PartitionData rc = TransactionsTest.fetch(b, tp, 0, (byte) 1);
                assertEquals((long) end.get(tp), rc.lastStableOffset());
                assertNotNull(rc.abortedTransactions(), "read_committed lists the aborted transactions");
                List<Long> listed = new ArrayList<>();
                for (FetchResponseData.AbortedTransaction at : rc.abortedTransactions()) {
                    assertEquals(producerId, at.producerId());
                    listed.add(at.firstOffset());
                }
                listed.sort(null);
                assertEquals(abortedStarts, listed, tp + ": a1 and z1, by their first offsets");
            }
            assertEquals(5L, TransactionsTest.committedOffset(a, GROUP, new TopicPartition(INPUT, 0)),
                "the group's offset is the committed transaction's 5, never the aborted one's 9");
        }
    }
}
