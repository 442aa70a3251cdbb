package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.txn.TxnConfig;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.message.FetchRequestData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.record.internal.ControlRecordType;
import org.apache.kafka.common.record.internal.EndTransactionMarker;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.requests.FetchResponse;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The partition side of transactions on a real broker with kafka-clients 4.3: markers written by partition leaders,
 * the last stable offset, READ_COMMITTED fetches with their aborted transactions, ListOffsets by isolation level,
 * and what a partition stores (control batches, the aborted-transaction index), under transaction versions 1 and 2.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(180)
class TransactionsTest {
    static final String TOPIC = "txn";

    static BrokerConfig config(Path dir, int transactionVersion) {
        return TransactionCoordinatorTest.config(dir, transactionVersion);
    }

    static KafkaProducer<String, String> producer(Broker b, String txnId) {
        return new KafkaProducer<>(TransactionCoordinatorTest.producerProps(b, txnId, 60_000));
    }

    static KafkaConsumer<String, String> consumer(Broker b, IsolationLevel isolation) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation.toString());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return new KafkaConsumer<>(p);
    }

    /** Every record value of {@code tps} a consumer at {@code isolation} reads from the start, up to {@code end}. */
    static List<String> readAll(Broker b, IsolationLevel isolation, List<TopicPartition> tps, Map<TopicPartition, Long> end)
        throws Exception {
        List<String> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(b, isolation)) {
            c.assign(tps);
            c.seekToBeginning(tps);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (true) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    out.add(r.value());
                }
                boolean done = true;
                for (TopicPartition tp : tps) {
                    done &= c.position(tp) >= end.get(tp);
                }
                if (done) {
                    return out;
                }
                assertTrue(System.nanoTime() < deadline, "read " + out.size() + " records, positions not at " + end);
            }
        }
    }

    static long latest(Admin a, TopicPartition tp, IsolationLevel isolation) throws Exception {
        return a.listOffsets(Map.of(tp, OffsetSpec.latest()), new ListOffsetsOptions(isolation)).partitionResult(tp)
            .get(30, TimeUnit.SECONDS).offset();
    }

    /** One READ_COMMITTED or READ_UNCOMMITTED fetch of {@code tp} from {@code offset}, parsed by kafka-clients. */
    static FetchResponseData.PartitionData fetch(Broker b, TopicPartition tp, long offset, byte isolation)
        throws Exception {
        FetchRequestData req = new FetchRequestData().setReplicaId(-1).setMaxWaitMs(0).setMinBytes(0)
            .setMaxBytes(8 << 20).setIsolationLevel(isolation);
        req.topics().add(new FetchRequestData.FetchTopic().setTopic(tp.topic()).setPartitions(List.of(
            new FetchRequestData.FetchPartition().setPartition(tp.partition()).setFetchOffset(offset)
                .setPartitionMaxBytes(8 << 20))));
        FetchResponse r = (FetchResponse) KafkaRequests.send(b.port(), ApiKeys.FETCH, (short) 12, req);
        return r.data().responses().get(0).partitions().get(0);
    }

    @ParameterizedTest(name = "transaction.version {0}")
    @ValueSource(ints = {1, 2})
    void shouldShowCommittedRecordsOnceAndAbortedRecordsOnlyToReadUncommitted(int version, @TempDir Path dir)
        throws Exception {
        try (Broker b = Broker.start(config(dir, version)); Admin a = TransactionCoordinatorTest.admin(b)) {
            a.createTopics(List.of(new NewTopic(TOPIC, 2, (short) 1))).all().get(30, TimeUnit.SECONDS);
            TopicPartition p0 = new TopicPartition(TOPIC, 0);
            TopicPartition p1 = new TopicPartition(TOPIC, 1);
            try (KafkaProducer<String, String> p = producer(b, "writer")) {
                p.initTransactions();
                for (String txn : List.of("c1", "a1", "c2", "a2", "c3")) {
                    p.beginTransaction();
                    for (int i = 0; i < 5; i++) {
                        p.send(new ProducerRecord<>(TOPIC, i % 2, "k" + i, txn + "-" + i));
                    }
                    if (txn.startsWith("c")) {
                        p.commitTransaction();
                    } else {
                        p.flush();
                        p.abortTransaction();
                    }
                }
            }
            // Every transaction ended: the last stable offset reaches the high watermark (the markers are committed
            // once the coordinator completes, which the next transaction's start waited for).
            Map<TopicPartition, Long> end = Map.of(p0, awaitStable(a, p0), p1, awaitStable(a, p1));
            List<String> committed = readAll(b, IsolationLevel.READ_COMMITTED, List.of(p0, p1), end);
            List<String> expected = new ArrayList<>();
            for (String txn : List.of("c1", "c2", "c3")) {
                for (int i = 0; i < 5; i++) {
                    expected.add(txn + "-" + i);
                }
            }
            assertEquals(sorted(expected), sorted(committed), "read_committed: committed records once, no aborted one");
            List<String> uncommitted = readAll(b, IsolationLevel.READ_UNCOMMITTED, List.of(p0, p1), end);
            assertEquals(25, uncommitted.size(), "read_uncommitted: every data record, no control record");
            assertTrue(uncommitted.containsAll(List.of("a1-0", "a2-4")));
            // On the wire: each partition stores five markers, the aborted list names the two aborted transactions.
            for (TopicPartition tp : List.of(p0, p1)) {
                FetchResponseData.PartitionData rc = fetch(b, tp, 0, (byte) 1);
                assertEquals(end.get(tp), rc.lastStableOffset());
                assertEquals(2, rc.abortedTransactions().size(), "aborted transactions of " + tp);
                FetchResponseData.PartitionData ru = fetch(b, tp, 0, (byte) 0);
                assertEquals(null, ru.abortedTransactions(), "no aborted list for read_uncommitted");
                int markers = 0;
                int aborts = 0;
                long pid = -1;
                for (RecordBatch batch : ((MemoryRecords) ru.records()).batches()) {
                    assertTrue(batch.isTransactional());
                    pid = batch.producerId();
                    if (batch.isControlBatch()) {
                        markers++;
                        Record r = batch.iterator().next();
                        ControlRecordType type = ControlRecordType.parse(r.key());
                        EndTransactionMarker m = EndTransactionMarker.deserialize(r);
                        assertEquals(type, m.controlType());
                        assertTrue(m.coordinatorEpoch() >= 0);
                        assertEquals(-1, batch.baseSequence());
                        if (type == ControlRecordType.ABORT) {
                            aborts++;
                        }
                    }
                }
                assertEquals(5, markers, "one marker per transaction on " + tp);
                assertEquals(2, aborts);
                for (FetchResponseData.AbortedTransaction at : rc.abortedTransactions()) {
                    assertEquals(pid, at.producerId());
                }
            }
        }
    }

    @ParameterizedTest(name = "transaction.version {0}")
    @ValueSource(ints = {1, 2})
    void shouldHoldTheLastStableOffsetAtAnOpenTransaction(int version, @TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, version)); Admin a = TransactionCoordinatorTest.admin(b)) {
            a.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            TopicPartition tp = new TopicPartition(TOPIC, 0);
            try (KafkaProducer<String, String> plain = new KafkaProducer<>(plainProps(b));
                 KafkaProducer<String, String> p = producer(b, "holder")) {
                for (int i = 0; i < 3; i++) {
                    plain.send(new ProducerRecord<>(TOPIC, 0, "k", "plain-" + i)).get();
                }
                p.initTransactions();
                p.beginTransaction();
                long first = p.send(new ProducerRecord<>(TOPIC, 0, "k", "open-0")).get().offset();
                p.send(new ProducerRecord<>(TOPIC, 0, "k", "open-1")).get();
                plain.send(new ProducerRecord<>(TOPIC, 0, "k", "plain-after")).get();
                assertEquals(3, first);
                assertEquals(6, latest(a, tp, IsolationLevel.READ_UNCOMMITTED));
                assertEquals(first, latest(a, tp, IsolationLevel.READ_COMMITTED), "LSO = the open transaction's start");
                FetchResponseData.PartitionData rc = fetch(b, tp, 0, (byte) 1);
                assertEquals(first, rc.lastStableOffset());
                assertEquals(6, rc.highWatermark());
                int seen = 0;
                for (RecordBatch batch : ((MemoryRecords) rc.records()).batches()) {
                    assertTrue(batch.lastOffset() < first, "read_committed returns nothing at or past the LSO");
                    seen++;
                }
                assertEquals(3, seen);
                try (KafkaConsumer<String, String> c = consumer(b, IsolationLevel.READ_COMMITTED)) {
                    c.assign(List.of(tp));
                    c.seekToBeginning(List.of(tp));
                    List<String> got = new ArrayList<>();
                    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
                    while (System.nanoTime() < until) {
                        c.poll(Duration.ofMillis(100)).forEach(r -> got.add(r.value()));
                    }
                    assertEquals(List.of("plain-0", "plain-1", "plain-2"), got);
                    // A long poll parked below the LSO completes when the commit moves it (KAFKA-5376).
                    p.commitTransaction();
                    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                    while (got.size() < 6 && System.nanoTime() < deadline) {
                        c.poll(Duration.ofMillis(500)).forEach(r -> got.add(r.value()));
                    }
                    assertEquals(List.of("plain-0", "plain-1", "plain-2", "open-0", "open-1", "plain-after"), got);
                }
                assertEquals(7, awaitStable(a, tp), "the marker is past the data");
            }
        }
    }

    /** Produce {@code version} of one transactional batch of {@code count} records from sequence {@code seq}. */
    static org.apache.kafka.common.message.ProduceResponseData.PartitionProduceResponse produceTxn(Broker b,
        TopicPartition tp, String txnId, long[] pe, int seq, int count, short version) throws Exception {
        org.apache.kafka.common.record.internal.SimpleRecord[] records =
            new org.apache.kafka.common.record.internal.SimpleRecord[count];
        for (int i = 0; i < count; i++) {
            records[i] = new org.apache.kafka.common.record.internal.SimpleRecord(("k" + (seq + i)).getBytes(),
                ("v" + (seq + i)).getBytes());
        }
        var req = new org.apache.kafka.common.message.ProduceRequestData().setAcks((short) -1).setTimeoutMs(30_000)
            .setTransactionalId(txnId);
        var td = new org.apache.kafka.common.message.ProduceRequestData.TopicProduceData().setName(tp.topic());
        td.partitionData().add(new org.apache.kafka.common.message.ProduceRequestData.PartitionProduceData()
            .setIndex(tp.partition()).setRecords(MemoryRecords.withTransactionalRecords(
                org.apache.kafka.common.compress.Compression.NONE, pe[0], (short) pe[1], seq, records)));
        req.topicData().add(td);
        var r = (org.apache.kafka.common.requests.ProduceResponse) KafkaRequests.send(b.port(), ApiKeys.PRODUCE,
            version, req);
        return r.data().responses().iterator().next().partitionResponses().get(0);
    }

    /**
     * KIP-890's verification guard keeps the lowest sequence that asked to start a producer's transaction on a
     * partition: a later batch of the same epoch whose own verification passes may not start the transaction ahead
     * of it (OUT_OF_ORDER_SEQUENCE_NUMBER, as Kafka answers; the client retries it after the lower one). Under
     * transaction version 2 the last transaction's marker leaves the producer at the next epoch with no batch kept,
     * so nothing else stops it: the batch queued behind a refused verification was verified on its own and stored
     * first, and the producer's retry of the lower sequence was out of order for good, until its transaction timed
     * out (found by StreamsExactlyOnceClusterTest: Kafka Streams' next transaction starting while the coordinator
     * still completed the last one, CONCURRENT_TRANSACTIONS to its first batch's verification; here the first
     * verification is refused for a transactional id that does not match the producer).
     */
    @Test
    void shouldNotStartATransactionWithALaterBatchAheadOfOneWhoseVerificationFailed(@TempDir Path dir)
        throws Exception {
        short v12 = 12;
        try (Broker b = Broker.start(config(dir, 2)); Admin a = TransactionCoordinatorTest.admin(b)) {
            a.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            TopicPartition tp = new TopicPartition(TOPIC, 0);
            long[] pe = TransactionCoordinatorTest.initRaw(b.port(), "guarded", 60_000);
            // A first transaction on the partition, committed: its marker leaves the producer one epoch up here.
            var one = produceTxn(b, tp, "guarded", pe, 0, 2, v12);
            assertEquals(org.apache.kafka.common.protocol.Errors.NONE.code(), one.errorCode(), one.errorMessage());
            var end = (org.apache.kafka.common.requests.EndTxnResponse) KafkaRequests.send(b.port(), ApiKeys.END_TXN,
                (short) 5, new org.apache.kafka.common.message.EndTxnRequestData().setTransactionalId("guarded")
                    .setProducerId(pe[0]).setProducerEpoch((short) pe[1]).setCommitted(true));
            assertEquals(org.apache.kafka.common.protocol.Errors.NONE.code(), end.data().errorCode());
            long[] next = {end.data().producerId(), end.data().producerEpoch()};
            assertEquals(pe[1] + 1, next[1]);
            assertEquals(3, awaitStable(a, tp), "two records and the COMMIT marker");
            // The next transaction: sequences 0-4 are refused by the coordinator (the id does not match).
            var refused = produceTxn(b, tp, "stranger", next, 0, 5, v12);
            assertTrue(refused.errorCode() != org.apache.kafka.common.protocol.Errors.NONE.code(),
                "refused: " + refused.errorCode());
            // Sequences 5-9 pass their verification, but 0-4 come first.
            var early = produceTxn(b, tp, "guarded", next, 5, 5, v12);
            assertEquals(org.apache.kafka.common.protocol.Errors.OUT_OF_ORDER_SEQUENCE_NUMBER.code(), early.errorCode(),
                early.errorMessage());
            var retried = produceTxn(b, tp, "guarded", next, 0, 5, v12);
            assertEquals(org.apache.kafka.common.protocol.Errors.NONE.code(), retried.errorCode(), retried.errorMessage());
            assertEquals(3, retried.baseOffset());
            var after = produceTxn(b, tp, "guarded", next, 5, 5, v12);
            assertEquals(org.apache.kafka.common.protocol.Errors.NONE.code(), after.errorCode(), after.errorMessage());
            assertEquals(8, after.baseOffset());
            // What is stored: the batches in sequence order, the transaction open from offset 3.
            assertEquals(3, latest(a, tp, IsolationLevel.READ_COMMITTED));
            assertEquals(13, latest(a, tp, IsolationLevel.READ_UNCOMMITTED));
        }
    }

    @Test
    void shouldRefuseANonTransactionalBatchFromAProducerWithAnOpenTransaction(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, 2)); Admin a = TransactionCoordinatorTest.admin(b)) {
            a.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            TopicPartition tp = new TopicPartition(TOPIC, 0);
            try (KafkaProducer<String, String> p = producer(b, "mixer")) {
                p.initTransactions();
                p.beginTransaction();
                p.send(new ProducerRecord<>(TOPIC, 0, "k", "in-txn")).get();
                long pid = TransactionCoordinatorTest.describe(a, "mixer").producerId();
                short epoch = (short) TransactionCoordinatorTest.describe(a, "mixer").producerEpoch();
                var resp = produceRaw(b, tp, MemoryRecords.withIdempotentRecords(
                    org.apache.kafka.common.compress.Compression.NONE, pid, epoch, 1,
                    new org.apache.kafka.common.record.internal.SimpleRecord("k".getBytes(), "not-in-txn".getBytes())));
                assertEquals(org.apache.kafka.common.protocol.Errors.INVALID_TXN_STATE.code(), resp.errorCode(),
                    resp.errorMessage());
                p.abortTransaction();
            }
            assertEquals(2, awaitStable(a, tp));
        }
    }

    /** The group's committed offset of {@code tp} (null when none), as OffsetFetch answers with requireStable off. */
    static Long committedOffset(Admin a, String group, TopicPartition tp) throws Exception {
        var m = a.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS).get(tp);
        return m == null ? null : m.offset();
    }

    @ParameterizedTest(name = "transaction.version {0}")
    @ValueSource(ints = {1, 2})
    void shouldMakeOffsetsCommittedInATransactionVisibleOnlyOnCommit(int version, @TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, version)); Admin a = TransactionCoordinatorTest.admin(b)) {
            // Offsets of partitions that do not exist are refused (UNKNOWN_TOPIC_OR_PARTITION, as Kafka does).
            a.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1), new NewTopic("input", 4, (short) 1))).all()
                .get(30, TimeUnit.SECONDS);
            TopicPartition tp = new TopicPartition(TOPIC, 0);
            TopicPartition input = new TopicPartition("input", 3);
            String group = "copier";
            var meta = new org.apache.kafka.clients.consumer.ConsumerGroupMetadata(group);
            try (KafkaProducer<String, String> p = producer(b, "copier-1")) {
                p.initTransactions();
                p.beginTransaction();
                p.send(new ProducerRecord<>(TOPIC, 0, "k", "copied-1")).get();
                p.sendOffsetsToTransaction(Map.of(input, new org.apache.kafka.clients.consumer.OffsetAndMetadata(5)),
                    meta);
                assertEquals(null, committedOffset(a, group, input), "pending offsets are not visible before the commit");
                p.commitTransaction();
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (!Long.valueOf(5).equals(committedOffset(a, group, input))) {
                    assertTrue(System.nanoTime() < deadline, "the committed transaction's offset never became visible");
                    Thread.sleep(20);
                }
                // A transaction that aborts leaves the offset where it was.
                p.beginTransaction();
                p.send(new ProducerRecord<>(TOPIC, 0, "k", "copied-2")).get();
                p.sendOffsetsToTransaction(Map.of(input, new org.apache.kafka.clients.consumer.OffsetAndMetadata(9)),
                    meta);
                p.abortTransaction();
                // The next transaction starts once the abort completed (markers included) at the coordinator.
                p.beginTransaction();
                p.send(new ProducerRecord<>(TOPIC, 0, "k", "copied-3")).get();
                p.commitTransaction();
            }
            awaitStable(a, tp);
            assertEquals(5L, committedOffset(a, group, input), "the aborted transaction's offset 9 was dropped");
            // The offsets partition holds the two transactional offset batches and their markers.
            var offsets = a.listConsumerGroupOffsets(group, new org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions()
                .requireStable(true)).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            assertEquals(5L, offsets.get(input).offset(), "requireStable once no transaction is open");
        }
    }

    /** One Produce v9 (acks=all) of {@code records} to {@code tp}; the partition's answer. */
    static org.apache.kafka.common.message.ProduceResponseData.PartitionProduceResponse produceRaw(Broker b,
        TopicPartition tp, MemoryRecords records) throws Exception {
        var req = new org.apache.kafka.common.message.ProduceRequestData().setAcks((short) -1).setTimeoutMs(30_000);
        var td = new org.apache.kafka.common.message.ProduceRequestData.TopicProduceData().setName(tp.topic());
        td.partitionData().add(new org.apache.kafka.common.message.ProduceRequestData.PartitionProduceData()
            .setIndex(tp.partition()).setRecords(records));
        req.topicData().add(td);
        var r = (org.apache.kafka.common.requests.ProduceResponse) KafkaRequests.send(b.port(), ApiKeys.PRODUCE,
            (short) 9, req);
        return r.data().responses().iterator().next().partitionResponses().get(0);
    }

    static Properties plainProps(Broker b) {
        Properties p = new Properties();
        p.put("bootstrap.servers", "127.0.0.1:" + b.port());
        p.put("key.serializer", org.apache.kafka.common.serialization.StringSerializer.class.getName());
        p.put("value.serializer", org.apache.kafka.common.serialization.StringSerializer.class.getName());
        return p;
    }

    /** Waits until the last stable offset of {@code tp} equals its high watermark; returns it. */
    static long awaitStable(Admin a, TopicPartition tp) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            long hw = latest(a, tp, IsolationLevel.READ_UNCOMMITTED);
            long lso = latest(a, tp, IsolationLevel.READ_COMMITTED);
            if (hw == lso) {
                return hw;
            }
            assertTrue(System.nanoTime() < deadline, tp + ": the last stable offset " + lso + " stays below " + hw);
            Thread.sleep(20);
        }
    }

    static List<String> sorted(List<String> l) {
        List<String> c = new ArrayList<>(l);
        c.sort(null);
        return c;
    }

    static void assertNoControl(List<String> l) {
        assertFalse(l.contains(null));
        assertNotNull(l);
    }
}
