package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.message.AddOffsetsToTxnRequestData;
import org.apache.kafka.common.message.OffsetFetchRequestData;
import org.apache.kafka.common.message.OffsetFetchResponseData;
import org.apache.kafka.common.message.TxnOffsetCommitRequestData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.requests.AddOffsetsToTxnResponse;
import org.apache.kafka.common.requests.OffsetFetchResponse;
import org.apache.kafka.common.requests.TxnOffsetCommitResponse;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * TxnOffsetCommit at the group coordinator with kafka-clients 4.3 and raw requests: offsets committed in a
 * transaction are written as a transactional batch of the producer into the group's {@code __consumer_offsets}
 * partition, stay pending (OffsetFetch RequireStable answers UNSTABLE_OFFSET_COMMIT, a plain fetch sees the older
 * offset) until the transaction's marker lands there, survive a restart as pending, and become the committed
 * offset on commit or go on abort. Under transaction version 2 the offsets partition joins the transaction with
 * the TxnOffsetCommit itself (v5); under version 1 it must have been added by AddOffsetsToTxn, which the group
 * coordinator verifies with the transaction coordinator (KIP-890 part 1). Steps that need partition leaders to
 * write markers (the partition side of issue 19) run where {@link TransactionCoordinatorTest#markersWritten} says
 * they do; elsewhere the transaction is checked to wait in PrepareCommit with its offsets still pending.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(240)
class TransactionOffsetsTest {
    private static final String TOPIC = "copied";

    /** {error code, committed offset} of {@code topic}-{@code partition} for {@code group}, by OffsetFetch v8. */
    static long[] fetchOffset(int port, String group, String topic, int partition, boolean requireStable)
        throws Exception {
        OffsetFetchRequestData req = new OffsetFetchRequestData().setRequireStable(requireStable);
        req.groups().add(new OffsetFetchRequestData.OffsetFetchRequestGroup().setGroupId(group).setTopics(List.of(
            new OffsetFetchRequestData.OffsetFetchRequestTopics().setName(topic).setPartitionIndexes(List.of(partition)))));
        OffsetFetchResponse r = (OffsetFetchResponse) KafkaRequests.send(port, ApiKeys.OFFSET_FETCH, (short) 8, req);
        OffsetFetchResponseData.OffsetFetchResponseGroup g = r.data().groups().get(0);
        if (g.errorCode() != Errors.NONE.code()) {
            return new long[] {g.errorCode(), -1};
        }
        OffsetFetchResponseData.OffsetFetchResponsePartitions p = g.topics().get(0).partitions().get(0);
        return new long[] {p.errorCode(), p.committedOffset()};
    }

    /** The answer once the group coordinator has loaded (retriable coordinator errors waited out). */
    static long[] awaitOffset(int port, String group, String topic, int partition, boolean requireStable)
        throws Exception {
        return TransactionCoordinatorTest.await("the offsets of " + group, () -> {
            try {
                long[] r = fetchOffset(port, group, topic, partition, requireStable);
                short code = (short) r[0];
                return code == Errors.COORDINATOR_LOAD_IN_PROGRESS.code() || code == Errors.NOT_COORDINATOR.code()
                    || code == Errors.COORDINATOR_NOT_AVAILABLE.code() ? null : r;
            } catch (Exception e) {
                return null;
            }
        });
    }

    /** TxnOffsetCommit of one offset at {@code version}; the partition's error code. */
    static short txnCommit(int port, short version, String txnId, String group, long pid, short epoch, int generation,
                           String memberId, String topic, int partition, long offset) throws Exception {
        TxnOffsetCommitRequestData req = new TxnOffsetCommitRequestData().setTransactionalId(txnId).setGroupId(group)
            .setProducerId(pid).setProducerEpoch(epoch).setGenerationId(generation).setMemberId(memberId)
            .setTopics(List.of(new TxnOffsetCommitRequestData.TxnOffsetCommitRequestTopic().setName(topic)
                .setPartitions(List.of(new TxnOffsetCommitRequestData.TxnOffsetCommitRequestPartition()
                    .setPartitionIndex(partition).setCommittedOffset(offset).setCommittedMetadata("raw")))));
        TxnOffsetCommitResponse r = (TxnOffsetCommitResponse) KafkaRequests.send(port, ApiKeys.TXN_OFFSET_COMMIT,
            version, req);
        return r.data().topics().get(0).partitions().get(0).errorCode();
    }

    private static int offsetsPartition(Broker b, String group) {
        return GroupCoordinator.partitionFor(group, b.config().offsetsTopicPartitions());
    }

    @ParameterizedTest(name = "transaction.version={0}")
    @ValueSource(ints = {1, 2})
    void shouldKeepOffsetsCommittedInATransactionPendingUntilItsMarker(int transactionVersion, @TempDir Path dir)
        throws Exception {
        String group = "copier-group";
        TopicPartition in0 = new TopicPartition(TOPIC, 0);
        boolean markers;
        int op;
        try (Broker b = Broker.start(TransactionCoordinatorTest.config(dir, transactionVersion));
             Admin a = TransactionCoordinatorTest.admin(b)) {
            a.createTopics(List.of(new NewTopic(TOPIC, 2, (short) 1))).all().get(30, TimeUnit.SECONDS);
            markers = TransactionCoordinatorTest.markersWritten(b);
            op = offsetsPartition(b, group);
            KafkaProducer<String, String> p = new KafkaProducer<>(TransactionCoordinatorTest.producerProps(b, "copier",
                600_000));
            try {
                p.initTransactions();
                p.beginTransaction();
                p.sendOffsetsToTransaction(Map.of(in0, new OffsetAndMetadata(42, "first")),
                    new ConsumerGroupMetadata(group));

                // In the transaction (AddOffsetsToTxn under version 1, the TxnOffsetCommit v5 itself under 2).
                TransactionDescription d = TransactionCoordinatorTest.describe(a, "copier");
                assertEquals(TransactionState.ONGOING, d.state());
                assertTrue(d.topicPartitions().contains(new TopicPartition(GroupCoordinator.OFFSETS_TOPIC, op)),
                    d.topicPartitions().toString());
                // Pending: RequireStable says so, a plain fetch sees no offset yet.
                assertEquals(Errors.UNSTABLE_OFFSET_COMMIT.code(), awaitOffset(b.port(), group, TOPIC, 0, true)[0]);
                assertEquals(-1, awaitOffset(b.port(), group, TOPIC, 0, false)[1]);
                // Stored as the producer's transactional batch.
                List<RecordBatch> batches = KafkaRequests.batches(b.port(), GroupCoordinator.OFFSETS_TOPIC, op);
                RecordBatch last = batches.getLast();
                assertTrue(last.isTransactional(), last.toString());
                assertFalse(last.isControlBatch());
                assertEquals(d.producerId(), last.producerId());
                assertEquals(d.producerEpoch(), last.producerEpoch());
                assertEquals(RecordBatch.NO_SEQUENCE, last.baseSequence());

                p.commitTransaction();
                if (markers) {
                    TransactionCoordinatorTest.awaitState(a, "copier", TransactionState.COMPLETE_COMMIT);
                    long[] committed = awaitOffset(b.port(), group, TOPIC, 0, true);
                    assertEquals(Errors.NONE.code(), (short) committed[0]);
                    assertEquals(42, committed[1]);
                    RecordBatch marker = KafkaRequests.batches(b.port(), GroupCoordinator.OFFSETS_TOPIC, op).getLast();
                    assertTrue(marker.isControlBatch() && marker.isTransactional(), marker.toString());

                    // An aborted transaction's offsets go; the committed one stays.
                    p.beginTransaction();
                    p.sendOffsetsToTransaction(Map.of(in0, new OffsetAndMetadata(50, "aborted")),
                        new ConsumerGroupMetadata(group));
                    assertEquals(Errors.UNSTABLE_OFFSET_COMMIT.code(), awaitOffset(b.port(), group, TOPIC, 0, true)[0]);
                    p.abortTransaction();
                    TransactionCoordinatorTest.awaitState(a, "copier", TransactionState.COMPLETE_ABORT);
                    long[] after = awaitOffset(b.port(), group, TOPIC, 0, true);
                    assertEquals(Errors.NONE.code(), (short) after[0]);
                    assertEquals(42, after[1]);
                } else {
                    // Decided, its markers waiting for partition leaders that take them: still pending.
                    assertEquals(TransactionState.PREPARE_COMMIT, TransactionCoordinatorTest.describe(a, "copier").state());
                    assertEquals(Errors.UNSTABLE_OFFSET_COMMIT.code(), awaitOffset(b.port(), group, TOPIC, 0, true)[0]);
                }
            } finally {
                p.close(Duration.ZERO);
            }
        }
        // After a restart the offsets partition is replayed: committed offsets and pending ones as they were.
        try (Broker b = Broker.start(TransactionCoordinatorTest.config(dir, transactionVersion))) {
            long[] r = awaitOffset(b.port(), group, TOPIC, 0, true);
            if (markers) {
                assertEquals(Errors.NONE.code(), (short) r[0]);
                assertEquals(42, r[1]);
            } else {
                assertEquals(Errors.UNSTABLE_OFFSET_COMMIT.code(), (short) r[0]);
                assertEquals(-1, awaitOffset(b.port(), group, TOPIC, 0, false)[1]);
            }
        }
    }

    @Test
    void shouldAnswerTxnOffsetCommitAsKafkaDoesAtTheWire(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(TransactionCoordinatorTest.config(dir, 2));
             Admin a = TransactionCoordinatorTest.admin(b)) {
            a.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            int port = b.port();
            long[] pe = TransactionCoordinatorTest.initRaw(port, "raw", 600_000);
            long pid = pe[0];
            short epoch = (short) pe[1];
            // The offsets partition is not in the transaction: verification fails (KIP-890 part 1), abortable from
            // v4, INVALID_TXN_STATE before; nothing is written.
            assertEquals(Errors.INVALID_TXN_STATE.code(), txnCommit(port, (short) 3, "raw", "g", pid, epoch, -1, "",
                TOPIC, 0, 7));
            assertEquals(Errors.TRANSACTION_ABORTABLE.code(), txnCommit(port, (short) 4, "raw", "g", pid, epoch, -1, "",
                TOPIC, 0, 7));
            assertEquals(-1, awaitOffset(port, "g", TOPIC, 0, false)[1]);
            assertEquals(Errors.NONE.code(), (short) awaitOffset(port, "g", TOPIC, 0, true)[0], "nothing pending");
            // A stale or future epoch, an unknown transactional id, an unknown topic.
            assertEquals(Errors.INVALID_PRODUCER_EPOCH.code(), txnCommit(port, (short) 5, "raw", "g", pid,
                (short) (epoch + 1), -1, "", TOPIC, 0, 7));
            assertEquals(Errors.INVALID_PRODUCER_ID_MAPPING.code(), txnCommit(port, (short) 5, "nobody", "g", pid,
                epoch, -1, "", TOPIC, 0, 7));
            assertEquals(Errors.UNKNOWN_TOPIC_OR_PARTITION.code(), txnCommit(port, (short) 5, "raw", "g", pid, epoch,
                -1, "", "no-such-topic", 0, 7));
            assertEquals(Errors.INVALID_REQUEST.code(), txnCommit(port, (short) 5, "", "g", pid, epoch, -1, "",
                TOPIC, 0, 7));
            // v5 (transaction version 2): the TxnOffsetCommit adds the offsets partition to the transaction.
            assertEquals(Errors.NONE.code(), txnCommit(port, (short) 5, "raw", "g", pid, epoch, -1, "", TOPIC, 0, 7));
            TransactionDescription d = TransactionCoordinatorTest.describe(a, "raw");
            assertEquals(TransactionState.ONGOING, d.state());
            assertEquals(java.util.Set.of(new TopicPartition(GroupCoordinator.OFFSETS_TOPIC, offsetsPartition(b, "g"))),
                d.topicPartitions());
            // Now in the transaction, the verified versions take it too; a member the group does not have is
            // refused (v3+ validates members; abortable for the client).
            assertEquals(Errors.NONE.code(), txnCommit(port, (short) 3, "raw", "g", pid, epoch, -1, "", TOPIC, 0, 8));
            assertEquals(Errors.UNKNOWN_MEMBER_ID.code(), txnCommit(port, (short) 3, "raw", "g", pid, epoch, 5,
                "someone", TOPIC, 0, 9));
            assertEquals(Errors.UNSTABLE_OFFSET_COMMIT.code(), awaitOffset(port, "g", TOPIC, 0, true)[0]);
            assertEquals(-1, awaitOffset(port, "g", TOPIC, 0, false)[1]);

            // Version 1: AddOffsetsToTxn puts the group's partition in the transaction, then TxnOffsetCommit v3.
            long[] pe1 = TransactionCoordinatorTest.initRaw(port, "raw-v1", 600_000);
            AddOffsetsToTxnResponse added = (AddOffsetsToTxnResponse) KafkaRequests.send(port,
                ApiKeys.ADD_OFFSETS_TO_TXN, (short) 3, new AddOffsetsToTxnRequestData().setTransactionalId("raw-v1")
                    .setProducerId(pe1[0]).setProducerEpoch((short) pe1[1]).setGroupId("g1"));
            assertEquals(Errors.NONE.code(), added.data().errorCode());
            assertEquals(Errors.NONE.code(), txnCommit(port, (short) 3, "raw-v1", "g1", pe1[0], (short) pe1[1], -1, "",
                TOPIC, 0, 11));
            assertEquals(Errors.UNSTABLE_OFFSET_COMMIT.code(), awaitOffset(port, "g1", TOPIC, 0, true)[0]);
        }
    }

    /**
     * The exactly-once loop of Kafka's TransactionalMessageCopier: a read_committed consumer in a group, a
     * transactional producer copying what it polls and committing the consumer's positions in the same transaction
     * (TxnOffsetCommit with the member's id and generation); every third transaction is aborted and the consumer
     * rewinds to its committed offsets. The output read with read_committed equals the input exactly once, in order
     * per partition, and the group's committed offsets end at the input's end. Needs partition leaders that write
     * markers (the partition side of issue 19).
     */
    @ParameterizedTest(name = "transaction.version={0}")
    @ValueSource(ints = {1, 2})
    void shouldCopyExactlyOnceWithOffsetsCommittedInTheTransaction(int transactionVersion, @TempDir Path dir)
        throws Exception {
        int records = 200;
        try (Broker b = Broker.start(TransactionCoordinatorTest.config(dir, transactionVersion));
             Admin a = TransactionCoordinatorTest.admin(b)) {
            org.junit.jupiter.api.Assumptions.assumeTrue(TransactionCoordinatorTest.markersWritten(b),
                "partition leaders do not take WriteTxnMarkers in this build");
            a.createTopics(List.of(new NewTopic("eos-in", 2, (short) 1), new NewTopic("eos-out", 2, (short) 1)))
                .all().get(30, TimeUnit.SECONDS);
            String bootstrap = "127.0.0.1:" + b.port();
            java.util.Properties pp = new java.util.Properties();
            pp.put(org.apache.kafka.clients.producer.ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            pp.put(org.apache.kafka.clients.producer.ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG,
                org.apache.kafka.common.serialization.StringSerializer.class.getName());
            pp.put(org.apache.kafka.clients.producer.ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG,
                org.apache.kafka.common.serialization.StringSerializer.class.getName());
            try (KafkaProducer<String, String> in = new KafkaProducer<>(pp)) {
                for (int i = 0; i < records; i++) {
                    in.send(new org.apache.kafka.clients.producer.ProducerRecord<>("eos-in", i % 2, "k" + i, "v" + i));
                }
                in.flush();
            }
            java.util.Properties cp = new java.util.Properties();
            cp.put(org.apache.kafka.clients.consumer.ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            cp.put(org.apache.kafka.clients.consumer.ConsumerConfig.GROUP_ID_CONFIG, "eos-copier");
            cp.put(org.apache.kafka.clients.consumer.ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
            cp.put(org.apache.kafka.clients.consumer.ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
            cp.put(org.apache.kafka.clients.consumer.ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            cp.put(org.apache.kafka.clients.consumer.ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 30);
            cp.put(org.apache.kafka.clients.consumer.ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG,
                org.apache.kafka.common.serialization.StringDeserializer.class.getName());
            cp.put(org.apache.kafka.clients.consumer.ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG,
                org.apache.kafka.common.serialization.StringDeserializer.class.getName());
            int committed = 0;
            int aborted = 0;
            try (org.apache.kafka.clients.consumer.KafkaConsumer<String, String> consumer =
                     new org.apache.kafka.clients.consumer.KafkaConsumer<>(cp);
                 KafkaProducer<String, String> copier = new KafkaProducer<>(TransactionCoordinatorTest.producerProps(b,
                     "eos-copier-txn", 60_000))) {
                consumer.subscribe(List.of("eos-in"));
                copier.initTransactions();
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
                int round = 0;
                while (committed < records) {
                    assertTrue(System.nanoTime() < deadline, "copied " + committed + " of " + records + " in time");
                    var polled = consumer.poll(Duration.ofMillis(200));
                    if (polled.isEmpty()) {
                        continue;
                    }
                    copier.beginTransaction();
                    Map<TopicPartition, OffsetAndMetadata> positions = new java.util.HashMap<>();
                    for (var r : polled) {
                        copier.send(new org.apache.kafka.clients.producer.ProducerRecord<>("eos-out", r.partition(),
                            r.key(), r.value()));
                        positions.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                    }
                    copier.sendOffsetsToTransaction(positions, consumer.groupMetadata());
                    if (round++ % 3 == 2) {
                        copier.abortTransaction();
                        aborted += polled.count();
                        // Rewind to what the group committed (read stable: the abort's markers are written first).
                        Map<TopicPartition, OffsetAndMetadata> back = consumer.committed(positions.keySet());
                        for (TopicPartition tp : positions.keySet()) {
                            OffsetAndMetadata o = back.get(tp);
                            consumer.seek(tp, o == null ? 0 : o.offset());
                        }
                    } else {
                        copier.commitTransaction();
                        committed += polled.count();
                    }
                }
            }
            assertTrue(aborted > 0, "some transactions were aborted");
            // The output, read committed: the input exactly once, in order per partition.
            cp.put(org.apache.kafka.clients.consumer.ConsumerConfig.GROUP_ID_CONFIG, "eos-reader");
            Map<Integer, List<String>> out = new java.util.TreeMap<>();
            try (org.apache.kafka.clients.consumer.KafkaConsumer<String, String> reader =
                     new org.apache.kafka.clients.consumer.KafkaConsumer<>(cp)) {
                reader.assign(List.of(new TopicPartition("eos-out", 0), new TopicPartition("eos-out", 1)));
                reader.seekToBeginning(reader.assignment());
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                int n = 0;
                while (n < records && System.nanoTime() < deadline) {
                    for (var r : reader.poll(Duration.ofMillis(200))) {
                        out.computeIfAbsent(r.partition(), k -> new java.util.ArrayList<>()).add(r.value());
                        n++;
                    }
                }
                // Nothing more arrives (no duplicate beyond the expected count).
                for (var r : reader.poll(Duration.ofMillis(500))) {
                    out.computeIfAbsent(r.partition(), k -> new java.util.ArrayList<>()).add(r.value());
                }
            }
            for (int p = 0; p < 2; p++) {
                List<String> expected = new java.util.ArrayList<>();
                for (int i = p; i < records; i += 2) {
                    expected.add("v" + i);
                }
                assertEquals(expected, out.get(p), "eos-out-" + p + " holds eos-in-" + p + " exactly once, in order");
            }
            var offsets = a.listConsumerGroupOffsets("eos-copier").partitionsToOffsetAndMetadata()
                .get(30, TimeUnit.SECONDS);
            assertEquals(records / 2, offsets.get(new TopicPartition("eos-in", 0)).offset());
            assertEquals(records / 2, offsets.get(new TopicPartition("eos-in", 1)).offset());
        }
    }
}
