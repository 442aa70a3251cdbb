package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.KafkaTool.Run;
import dev.isthmus.gateway.txn.TxnConfig;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.message.AddPartitionsToTxnRequestData;
import org.apache.kafka.common.message.AddPartitionsToTxnResponseData;
import org.apache.kafka.common.message.ApiVersionsRequestData;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.message.EndTxnRequestData;
import org.apache.kafka.common.message.FindCoordinatorRequestData;
import org.apache.kafka.common.message.FindCoordinatorResponseData;
import org.apache.kafka.common.message.InitProducerIdRequestData;
import org.apache.kafka.common.message.InitProducerIdResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.requests.AddPartitionsToTxnResponse;
import org.apache.kafka.common.requests.ApiVersionsResponse;
import org.apache.kafka.common.requests.EndTxnResponse;
import org.apache.kafka.common.requests.FindCoordinatorResponse;
import org.apache.kafka.common.requests.InitProducerIdResponse;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.tools.TransactionsCommand;
import org.apache.kafka.tools.consumer.ConsoleConsumer;
import org.apache.kafka.tools.consumer.ConsoleConsumerOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The transaction coordinator on a real broker with kafka-clients 4.3 and Kafka's tools: FindCoordinator for
 * transactional ids, InitProducerId (fencing, epochs, producer id blocks that survive restarts), the
 * transaction.version feature (version 2: an epoch per transaction), timeouts, Describe/ListTransactions and
 * kafka-transactions.sh, and {@code __transaction_state} read back by Kafka's own formatter. Transactions that need
 * markers on partitions to complete are checked where markers are written (see {@link #markersWritten}).
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(240)
class TransactionCoordinatorTest {
    private static final String TOPIC = "txn-data";

    static BrokerConfig config(Path dir, int transactionVersion) {
        return BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2).memoryBytes(256L << 20)
            .transactionSetting(TxnConfig.STATE_LOG_PARTITIONS, "4")
            .transactionSetting(TxnConfig.ABORT_INTERVAL_MS, "200")
            .transactionSetting(TxnConfig.TRANSACTION_VERSION, Integer.toString(transactionVersion)).build();
    }

    static Properties producerProps(Broker b, String txnId, int timeoutMs) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, timeoutMs);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 60_000);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        return p;
    }

    static Admin admin(Broker b) {
        return Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port()));
    }

    /** Whether partition leaders write transaction markers in this build (the partition side of issue 19). */
    static boolean markersWritten(Broker b) {
        return b.handlers().supports(dev.isthmus.gateway.protocol.message.ApiKeys.WRITE_TXN_MARKERS);
    }

    static TransactionDescription describe(Admin a, String id) throws Exception {
        return a.describeTransactions(List.of(id)).description(id).get(30, TimeUnit.SECONDS);
    }

    static <T> T await(String what, Supplier<T> probe) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            T v = probe.get();
            if (v != null) {
                return v;
            }
            if (System.nanoTime() > deadline) {
                fail("timed out waiting for " + what);
            }
            Thread.sleep(50);
        }
    }

    @Test
    void shouldAdvertiseTransactionVersionTwoAsAFinalizedFeature(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, 2)); Admin a = admin(b)) {
            ApiVersionsResponse v4 = (ApiVersionsResponse) KafkaRequests.send(b.port(), ApiKeys.API_VERSIONS, (short) 4,
                new ApiVersionsRequestData().setClientSoftwareName("t").setClientSoftwareVersion("1"));
            ApiVersionsResponseData.SupportedFeatureKey sf = v4.data().supportedFeatures().find("transaction.version");
            assertEquals(0, sf.minVersion());
            assertEquals(2, sf.maxVersion());
            assertEquals(2, v4.data().finalizedFeatures().find("transaction.version").maxVersionLevel());
            assertTrue(v4.data().finalizedFeaturesEpoch() >= 0);
            assertEquals(5, v4.data().apiKeys().find(ApiKeys.END_TXN.id).maxVersion());
            ApiVersionsResponse v3 = (ApiVersionsResponse) KafkaRequests.send(b.port(), ApiKeys.API_VERSIONS, (short) 3,
                new ApiVersionsRequestData().setClientSoftwareName("t").setClientSoftwareVersion("1"));
            assertEquals(null, v3.data().supportedFeatures().find("transaction.version"),
                "left out below v4: its minimum is 0 (KAFKA-17492)");
            assertEquals(2, v3.data().finalizedFeatures().find("transaction.version").maxVersionLevel());
            FeatureMetadata f = a.describeFeatures().featureMetadata().get(30, TimeUnit.SECONDS);
            assertEquals(2, f.finalizedFeatures().get("transaction.version").maxVersionLevel());
        }
    }

    @ParameterizedTest(name = "transaction.version {0}")
    @ValueSource(ints = {1, 2})
    void shouldInitTransactionsAndFenceTheFirstProducerWithTheSameId(int transactionVersion, @TempDir Path dir)
        throws Exception {
        try (Broker b = Broker.start(config(dir, transactionVersion)); Admin a = admin(b)) {
            a.createTopics(List.of(new NewTopic(TOPIC, 2, (short) 1))).all().get(30, TimeUnit.SECONDS);
            try (KafkaProducer<String, String> first = new KafkaProducer<>(producerProps(b, "fenced", 60_000));
                 KafkaProducer<String, String> second = new KafkaProducer<>(producerProps(b, "fenced", 60_000))) {
                first.initTransactions();
                TransactionDescription d1 = describe(a, "fenced");
                assertEquals(TransactionState.EMPTY, d1.state());
                assertEquals(0, d1.producerEpoch());
                assertEquals(60_000, d1.transactionTimeoutMs());
                assertEquals(b.config().nodeId(), d1.coordinatorId());
                second.initTransactions();
                TransactionDescription d2 = describe(a, "fenced");
                assertEquals(d1.producerId(), d2.producerId());
                assertEquals(1, d2.producerEpoch());
                // The zombie's next coordinator request (AddPartitionsToTxn under version 1, EndTxn under 2) is fenced.
                first.beginTransaction();
                first.send(new ProducerRecord<>(TOPIC, 0, "k", "from the zombie"));
                first.flush(); // the record's fate (and under version 1 its AddPartitionsToTxn) is known
                KafkaException e = assertThrows(KafkaException.class, first::abortTransaction);
                assertTrue(fenced(e), "fenced: " + e);
                TransactionDescription d3 = describe(a, "fenced");
                assertEquals(1, d3.producerEpoch(), "the zombie changed nothing");
                assertEquals(TransactionState.EMPTY, d3.state());
            }
        }
    }

    @Test
    void shouldBumpTheEpochOnEveryVersionTwoTransaction(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, 2)); Admin a = admin(b)) {
            a.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps(b, "bumps", 60_000))) {
                p.initTransactions();
                long pid = describe(a, "bumps").producerId();
                for (int i = 1; i <= 3; i++) {
                    p.beginTransaction();
                    p.send(new ProducerRecord<>(TOPIC, 0, "k", "v" + i));
                    p.flush();
                    p.abortTransaction();
                    // Answered once PrepareAbort is durable; CompleteAbort follows (at once when nothing was added).
                    TransactionDescription d = awaitState(a, "bumps", TransactionState.COMPLETE_ABORT);
                    assertEquals(pid, d.producerId());
                    assertEquals(i, d.producerEpoch(), "EndTxn v5 bumps the epoch once per transaction");
                }
            }
        }
    }

    @Test
    void shouldAbortATransactionPastItsTimeoutAndFenceItsProducer(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, 1)); Admin a = admin(b)) {
            a.createTopics(List.of(new NewTopic(TOPIC, 2, (short) 1))).all().get(30, TimeUnit.SECONDS);
            KafkaProducer<String, String> p = new KafkaProducer<>(producerProps(b, "slow", 1000));
            try {
                p.initTransactions();
                p.beginTransaction();
                p.send(new ProducerRecord<>(TOPIC, 0, "k", "v"));
                TransactionDescription open = awaitState(a, "slow", TransactionState.ONGOING);
                assertEquals(Set.of(new TopicPartition(TOPIC, 0)), open.topicPartitions());
                long pid = open.producerId();
                TransactionDescription aborted = await("the timeout abort", () -> {
                    TransactionDescription d = describeOrNull(a, "slow");
                    return d != null && (d.state() == TransactionState.PREPARE_ABORT
                        || d.state() == TransactionState.COMPLETE_ABORT) ? d : null;
                });
                assertEquals(open.producerEpoch() + 1, aborted.producerEpoch(), "fenced by one epoch bump");
                // The producer's late requests are fenced.
                AddPartitionsToTxnResponse add = (AddPartitionsToTxnResponse) KafkaRequests.send(b.port(),
                    ApiKeys.ADD_PARTITIONS_TO_TXN, (short) 3, v3Add("slow", pid, (short) open.producerEpoch(),
                        Map.of(TOPIC, List.of(1))));
                assertEquals(Errors.PRODUCER_FENCED, add.errors().get(AddPartitionsToTxnResponse.V3_AND_BELOW_TXN_ID)
                    .get(new TopicPartition(TOPIC, 1)));
                EndTxnResponse commit = (EndTxnResponse) KafkaRequests.send(b.port(), ApiKeys.END_TXN, (short) 4,
                    new EndTxnRequestData().setTransactionalId("slow").setProducerId(pid)
                        .setProducerEpoch((short) open.producerEpoch()).setCommitted(true));
                assertEquals(markersWritten(b) ? Errors.PRODUCER_FENCED.code() : Errors.CONCURRENT_TRANSACTIONS.code(),
                    commit.data().errorCode(), "a commit racing the abort: fenced once it completed (KAFKA-20785)");
                if (markersWritten(b)) {
                    awaitState(a, "slow", TransactionState.COMPLETE_ABORT);
                }
            } finally {
                p.close(java.time.Duration.ZERO);
            }
        }
    }

    static TransactionDescription describeOrNull(Admin a, String id) {
        try {
            return describe(a, id);
        } catch (Exception e) {
            return null; // not loaded yet, or not known
        }
    }

    static TransactionDescription awaitState(Admin a, String id, TransactionState state) throws Exception {
        return await(id + " in " + state, () -> {
            TransactionDescription d = describeOrNull(a, id);
            return d != null && d.state() == state ? d : null;
        });
    }

    @Test
    void shouldAnswerTheTransactionApisAsKafkaDoesAtTheWire(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, 2)); Admin a = admin(b)) {
            a.createTopics(List.of(new NewTopic(TOPIC, 2, (short) 1))).all().get(30, TimeUnit.SECONDS);
            // FindCoordinator v4: batched transactional ids, each answered by this (the only) node.
            FindCoordinatorResponse fc = (FindCoordinatorResponse) KafkaRequests.send(b.port(), ApiKeys.FIND_COORDINATOR,
                (short) 4, new FindCoordinatorRequestData().setKeyType((byte) 1).setCoordinatorKeys(List.of("x", "y")));
            assertEquals(2, fc.data().coordinators().size());
            for (FindCoordinatorResponseData.Coordinator c : fc.data().coordinators()) {
                assertEquals(Errors.NONE.code(), c.errorCode(), c.errorMessage());
                assertEquals(b.config().nodeId(), c.nodeId());
                assertEquals(b.port(), c.port());
            }
            InitProducerIdResponse tooLong = (InitProducerIdResponse) KafkaRequests.send(b.port(), ApiKeys.INIT_PRODUCER_ID,
                (short) 5, new InitProducerIdRequestData().setTransactionalId("x").setTransactionTimeoutMs(900_001));
            assertEquals(Errors.INVALID_TRANSACTION_TIMEOUT.code(), tooLong.data().errorCode());
            InitProducerIdResponse init = (InitProducerIdResponse) KafkaRequests.send(b.port(), ApiKeys.INIT_PRODUCER_ID,
                (short) 5, new InitProducerIdRequestData().setTransactionalId("x").setTransactionTimeoutMs(60_000));
            assertEquals(Errors.NONE.code(), init.data().errorCode());
            long pid = init.data().producerId();
            // AddPartitionsToTxn v3 (a client): an unknown partition fails, the others are not attempted.
            AddPartitionsToTxnResponse unknown = (AddPartitionsToTxnResponse) KafkaRequests.send(b.port(),
                ApiKeys.ADD_PARTITIONS_TO_TXN, (short) 3, v3Add("x", pid, (short) 0, Map.of(TOPIC, List.of(0, 7))));
            Map<TopicPartition, Errors> errs = unknown.errors().get(AddPartitionsToTxnResponse.V3_AND_BELOW_TXN_ID);
            assertEquals(Errors.OPERATION_NOT_ATTEMPTED, errs.get(new TopicPartition(TOPIC, 0)));
            assertEquals(Errors.UNKNOWN_TOPIC_OR_PARTITION, errs.get(new TopicPartition(TOPIC, 7)));
            AddPartitionsToTxnResponse added = (AddPartitionsToTxnResponse) KafkaRequests.send(b.port(),
                ApiKeys.ADD_PARTITIONS_TO_TXN, (short) 3, v3Add("x", pid, (short) 0, Map.of(TOPIC, List.of(0))));
            assertEquals(Errors.NONE, added.errors().get(AddPartitionsToTxnResponse.V3_AND_BELOW_TXN_ID)
                .get(new TopicPartition(TOPIC, 0)));
            // v5 from a partition leader (KIP-890): verify-only, two transactions in one request.
            AddPartitionsToTxnRequestData verify = new AddPartitionsToTxnRequestData();
            verify.transactions().add(new AddPartitionsToTxnRequestData.AddPartitionsToTxnTransaction()
                .setTransactionalId("x").setProducerId(pid).setProducerEpoch((short) 0).setVerifyOnly(true)
                .setTopics(topics(Map.of(TOPIC, List.of(0, 1)))));
            verify.transactions().add(new AddPartitionsToTxnRequestData.AddPartitionsToTxnTransaction()
                .setTransactionalId("nobody").setProducerId(1).setProducerEpoch((short) 0).setVerifyOnly(true)
                .setTopics(topics(Map.of(TOPIC, List.of(0)))));
            AddPartitionsToTxnResponse v = (AddPartitionsToTxnResponse) KafkaRequests.send(b.port(),
                ApiKeys.ADD_PARTITIONS_TO_TXN, (short) 5, verify);
            assertEquals(Errors.NONE, v.errors().get("x").get(new TopicPartition(TOPIC, 0)));
            assertEquals(Errors.TRANSACTION_ABORTABLE, v.errors().get("x").get(new TopicPartition(TOPIC, 1)));
            assertEquals(Errors.INVALID_PRODUCER_ID_MAPPING, v.errors().get("nobody").get(new TopicPartition(TOPIC, 0)));
            AddPartitionsToTxnResponse v4 = (AddPartitionsToTxnResponse) KafkaRequests.send(b.port(),
                ApiKeys.ADD_PARTITIONS_TO_TXN, (short) 4, verify);
            assertEquals(Errors.INVALID_TXN_STATE, v4.errors().get("x").get(new TopicPartition(TOPIC, 1)),
                "v4 does not know TRANSACTION_ABORTABLE");
            // EndTxn with a stale epoch: PRODUCER_FENCED from v2, INVALID_PRODUCER_EPOCH before.
            EndTxnResponse fenced = (EndTxnResponse) KafkaRequests.send(b.port(), ApiKeys.END_TXN, (short) 1,
                new EndTxnRequestData().setTransactionalId("x").setProducerId(pid).setProducerEpoch((short) 5)
                    .setCommitted(true));
            assertEquals(Errors.INVALID_PRODUCER_EPOCH.code(), fenced.data().errorCode());
            EndTxnResponse fenced2 = (EndTxnResponse) KafkaRequests.send(b.port(), ApiKeys.END_TXN, (short) 4,
                new EndTxnRequestData().setTransactionalId("x").setProducerId(pid).setProducerEpoch((short) 5)
                    .setCommitted(true));
            assertEquals(Errors.PRODUCER_FENCED.code(), fenced2.data().errorCode());
            // EndTxn v5 abort: the response carries the bumped epoch.
            EndTxnResponse abort = (EndTxnResponse) KafkaRequests.send(b.port(), ApiKeys.END_TXN, (short) 5,
                new EndTxnRequestData().setTransactionalId("x").setProducerId(pid).setProducerEpoch((short) 0)
                    .setCommitted(false));
            assertEquals(Errors.NONE.code(), abort.data().errorCode());
            assertEquals(pid, abort.data().producerId());
            assertEquals(1, abort.data().producerEpoch());
        }
    }

    private static AddPartitionsToTxnRequestData v3Add(String id, long pid, short epoch, Map<String, List<Integer>> parts) {
        return new AddPartitionsToTxnRequestData().setV3AndBelowTransactionalId(id).setV3AndBelowProducerId(pid)
            .setV3AndBelowProducerEpoch(epoch).setV3AndBelowTopics(topics(parts));
    }

    private static AddPartitionsToTxnRequestData.AddPartitionsToTxnTopicCollection topics(Map<String, List<Integer>> parts) {
        AddPartitionsToTxnRequestData.AddPartitionsToTxnTopicCollection c =
            new AddPartitionsToTxnRequestData.AddPartitionsToTxnTopicCollection();
        parts.forEach((t, ps) -> c.add(new AddPartitionsToTxnRequestData.AddPartitionsToTxnTopic().setName(t)
            .setPartitions(ps)));
        return c;
    }

    @Test
    void shouldHandOutProducerIdsOnceAcrossRestarts(@TempDir Path dir) throws Exception {
        Set<Long> seen = new HashSet<>();
        long highest = -1;
        for (int round = 0; round < 2; round++) {
            try (Broker b = Broker.start(config(dir, 2))) {
                for (int i = 0; i < 20; i++) {
                    InitProducerIdResponse r = (InitProducerIdResponse) KafkaRequests.send(b.port(),
                        ApiKeys.INIT_PRODUCER_ID, (short) 4, new InitProducerIdRequestData().setTransactionalId(null)
                            .setTransactionTimeoutMs(60_000));
                    assertEquals(Errors.NONE.code(), r.data().errorCode());
                    assertEquals(0, r.data().producerEpoch());
                    assertTrue(seen.add(r.data().producerId()), "producer id " + r.data().producerId() + " given twice");
                    if (round == 1) {
                        assertTrue(r.data().producerId() > highest, "a restarted broker takes a new block");
                    }
                }
            }
            highest = seen.stream().mapToLong(Long::longValue).max().orElseThrow();
        }
    }

    /** InitProducerId v5 for {@code id}; returns {pid, epoch}. */
    static long[] initRaw(int port, String id, int timeoutMs) throws Exception {
        InitProducerIdResponse r = (InitProducerIdResponse) KafkaRequests.send(port, ApiKeys.INIT_PRODUCER_ID, (short) 5,
            new InitProducerIdRequestData().setTransactionalId(id).setTransactionTimeoutMs(timeoutMs));
        assertEquals(Errors.NONE.code(), r.data().errorCode(), "InitProducerId " + id);
        return new long[] {r.data().producerId(), r.data().producerEpoch()};
    }

    static void addRaw(int port, String id, long[] pe, Map<String, List<Integer>> parts) throws Exception {
        AddPartitionsToTxnResponse r = (AddPartitionsToTxnResponse) KafkaRequests.send(port, ApiKeys.ADD_PARTITIONS_TO_TXN,
            (short) 3, v3Add(id, pe[0], (short) pe[1], parts));
        for (Errors e : r.errors().get(AddPartitionsToTxnResponse.V3_AND_BELOW_TXN_ID).values()) {
            assertEquals(Errors.NONE, e, "AddPartitionsToTxn " + id);
        }
    }

    @Test
    void shouldReplayTheTransactionStateAfterARestart(@TempDir Path dir) throws Exception {
        long[] pe;
        try (Broker b = Broker.start(config(dir, 1)); Admin a = admin(b)) {
            a.createTopics(List.of(new NewTopic(TOPIC, 2, (short) 1))).all().get(30, TimeUnit.SECONDS);
            pe = initRaw(b.port(), "survivor", 600_000);
            addRaw(b.port(), "survivor", pe, Map.of(TOPIC, List.of(0, 1)));
            assertEquals(TransactionState.ONGOING, describe(a, "survivor").state());
        }
        try (Broker b = Broker.start(config(dir, 1)); Admin a = admin(b)) {
            TransactionDescription d = await("the reloaded coordinator", () -> describeOrNull(a, "survivor"));
            assertEquals(TransactionState.ONGOING, d.state());
            assertEquals(pe[0], d.producerId());
            assertEquals(pe[1], d.producerEpoch());
            assertEquals(600_000, d.transactionTimeoutMs());
            assertEquals(Set.of(new TopicPartition(TOPIC, 0), new TopicPartition(TOPIC, 1)), d.topicPartitions());
            // A new incarnation fences and aborts it: the retry waits for the abort's markers.
            InitProducerIdResponse r = (InitProducerIdResponse) KafkaRequests.send(b.port(), ApiKeys.INIT_PRODUCER_ID,
                (short) 5, new InitProducerIdRequestData().setTransactionalId("survivor").setTransactionTimeoutMs(60_000));
            assertEquals(Errors.CONCURRENT_TRANSACTIONS.code(), r.data().errorCode());
            TransactionDescription fenced = describe(a, "survivor");
            assertEquals(pe[1] + 1, fenced.producerEpoch());
            if (markersWritten(b)) {
                awaitState(a, "survivor", TransactionState.COMPLETE_ABORT);
                assertEquals(pe[1] + 2, initRaw(b.port(), "survivor", 60_000)[1]);
            } else {
                assertEquals(TransactionState.PREPARE_ABORT, fenced.state());
            }
        }
    }

    @Test
    void shouldExpireAnIdleTransactionalIdWithATombstone(@TempDir Path dir) throws Exception {
        java.util.function.Function<Path, BrokerConfig> cfg = d -> config(d, 2).toBuilder()
            .transactionSetting(TxnConfig.ID_EXPIRATION_MS, "1000")
            .transactionSetting(TxnConfig.REMOVE_INTERVAL_MS, "200").build();
        long[] first;
        int p;
        try (Broker b = Broker.start(cfg.apply(dir)); Admin a = admin(b)) {
            first = initRaw(b.port(), "short-lived", 60_000);
            assertEquals(TransactionState.EMPTY, describe(a, "short-lived").state());
            // Idle past transactional.id.expiration.ms with no transaction open: Dead, then a tombstone.
            await("short-lived expired", () -> {
                try {
                    describe(a, "short-lived");
                    return null;
                } catch (Exception e) {
                    return e.getCause() instanceof org.apache.kafka.common.errors.TransactionalIdNotFoundException
                        ? e : null;
                }
            });
            assertTrue(a.listTransactions().all().get(30, TimeUnit.SECONDS).stream()
                .noneMatch(l -> l.transactionalId().equals("short-lived")));
            p = TxnConfig.partitionFor("short-lived", 4);
            var last = KafkaRequests.batches(b.port(), TxnCoordinator.TOPIC, p).getLast();
            org.apache.kafka.common.record.internal.Record tombstone = null;
            for (org.apache.kafka.common.record.internal.Record r : last) {
                tombstone = r;
            }
            assertTrue(tombstone != null && !tombstone.hasValue(), "the partition ends with a tombstone: " + tombstone);
            assertEquals("short-lived", dev.isthmus.gateway.txn.TransactionLog.readKey(tombstone.key()));
        }
        // Still gone after a restart; the id starts over with a new producer id.
        try (Broker b = Broker.start(cfg.apply(dir)); Admin a = admin(b)) {
            await("the reloaded coordinator", () -> {
                try {
                    describe(a, "short-lived");
                    return null;
                } catch (Exception e) {
                    return e.getCause() instanceof org.apache.kafka.common.errors.TransactionalIdNotFoundException
                        ? e : null;
                }
            });
            long[] again = initRaw(b.port(), "short-lived", 60_000);
            assertTrue(again[0] != first[0], "a new producer id after expiry");
            assertEquals(0, again[1]);
        }
    }

    // ------------------------------------------------------------------ Kafka's tools

    /** kafka-transactions.sh --bootstrap-server BOOTSTRAP ARGS: what it printed and the status it exited with. */
    private static Run transactions(String bootstrap, String... args) throws Exception {
        String[] all = KafkaTool.withBootstrap(bootstrap, args);
        return KafkaTool.run("kafka-transactions " + String.join(" ", all), () -> TransactionsCommand.main(all));
    }

    /**
     * KIP-664: {@code kafka-transactions.sh describe-producers} shows a transaction open on a partition, and
     * {@code abort --start-offset} writes its ABORT marker straight to the partition leader (WriteTxnMarkers with the
     * producer's epoch and the coordinator epoch DescribeProducers reported), so the last stable offset moves on.
     * Needs partition leaders that track transactions and take WriteTxnMarkers (the partition side of issue 19).
     */
    @Test
    void shouldAbortAHangingTransactionWithKafkaTransactionsTool(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, 1)); Admin a = admin(b)) {
            org.junit.jupiter.api.Assumptions.assumeTrue(markersWritten(b),
                "partition leaders do not take WriteTxnMarkers in this build");
            a.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            TopicPartition tp = new TopicPartition(TOPIC, 0);
            String bootstrap = "127.0.0.1:" + b.port();
            KafkaProducer<String, String> hanging = new KafkaProducer<>(producerProps(b, "hanging", 600_000));
            try {
                hanging.initTransactions();
                hanging.beginTransaction();
                long start = hanging.send(new ProducerRecord<>(TOPIC, 0, "k", "v")).get(30, TimeUnit.SECONDS).offset();
                assertEquals(start, latest(a, tp, org.apache.kafka.common.IsolationLevel.READ_COMMITTED),
                    "the last stable offset is held at the open transaction");

                Run producers = transactions(bootstrap, "describe-producers", "--topic", TOPIC, "--partition", "0");
                assertEquals(0, producers.code(), producers.err());
                List<String> lines = producers.out().lines().filter(l -> !l.isBlank()).toList();
                List<String> header = cells(lines.get(0));
                List<String> row = cells(lines.get(1));
                assertEquals(Long.toString(start), row.get(header.indexOf("CurrentTransactionStartOffset")),
                    producers.out());

                Run abort = transactions(bootstrap, "abort", "--topic", TOPIC, "--partition", "0", "--start-offset",
                    Long.toString(start));
                assertEquals(0, abort.code(), abort.err());
                // The ABORT marker is in: the last stable offset reaches the high watermark.
                long hw = latest(a, tp, org.apache.kafka.common.IsolationLevel.READ_UNCOMMITTED);
                assertTrue(hw > start + 1, "data and marker below the high watermark");
                assertEquals(hw, latest(a, tp, org.apache.kafka.common.IsolationLevel.READ_COMMITTED));
                Run after = transactions(bootstrap, "describe-producers", "--topic", TOPIC, "--partition", "0");
                List<String> afterLines = after.out().lines().filter(l -> !l.isBlank()).toList();
                assertTrue(!cells(afterLines.get(1)).get(header.indexOf("CurrentTransactionStartOffset"))
                    .equals(Long.toString(start)), after.out());
            } finally {
                hanging.close(java.time.Duration.ofSeconds(30)); // aborts at the coordinator; the partition has no open
            }
            // The coordinator's own abort of it completes too (its marker finds no open transaction and is taken).
            awaitState(a, "hanging", TransactionState.COMPLETE_ABORT);
        }
    }

    private static long latest(Admin a, TopicPartition tp, org.apache.kafka.common.IsolationLevel level)
        throws Exception {
        return a.listOffsets(Map.of(tp, org.apache.kafka.clients.admin.OffsetSpec.latest()),
            new org.apache.kafka.clients.admin.ListOffsetsOptions(level)).partitionResult(tp)
            .get(30, TimeUnit.SECONDS).offset();
    }

    @Test
    void shouldListAndDescribeTransactionsWithKafkaTransactionsTool(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, 1)); Admin a = admin(b)) {
            a.createTopics(List.of(new NewTopic(TOPIC, 2, (short) 1))).all().get(30, TimeUnit.SECONDS);
            try (KafkaProducer<String, String> idle = new KafkaProducer<>(producerProps(b, "tool-idle", 60_000));
                 KafkaProducer<String, String> busy = new KafkaProducer<>(producerProps(b, "tool-busy", 60_000))) {
                idle.initTransactions();
                busy.initTransactions();
                busy.beginTransaction();
                busy.send(new ProducerRecord<>(TOPIC, 1, "k", "v"));
                awaitState(a, "tool-busy", TransactionState.ONGOING);
                String bootstrap = "127.0.0.1:" + b.port();
                Run list = transactions(bootstrap, "list");
                assertEquals(0, list.code(), list.err());
                List<String> lines = list.out().lines().filter(l -> !l.isBlank()).toList();
                assertEquals(List.of("TransactionalId", "Coordinator", "ProducerId", "TransactionState"),
                    cells(lines.get(0)));
                Map<String, String> states = new java.util.TreeMap<>();
                for (String l : lines.subList(1, lines.size())) {
                    List<String> c = cells(l);
                    states.put(c.get(0), c.get(3));
                    assertEquals(Integer.toString(b.config().nodeId()), c.get(1));
                }
                assertEquals(Map.of("tool-idle", "Empty", "tool-busy", "Ongoing"), states);
                Run filtered = transactions(bootstrap, "list", "--transactional-id-pattern", "tool-b.*");
                assertEquals(0, filtered.code(), filtered.err());
                assertTrue(filtered.out().contains("tool-busy") && !filtered.out().contains("tool-idle"),
                    filtered.out());
                Run describe = transactions(bootstrap, "describe", "--transactional-id", "tool-busy");
                assertEquals(0, describe.code(), describe.err());
                List<String> d = describe.out().lines().filter(l -> !l.isBlank()).toList();
                List<String> header = cells(d.get(0));
                List<String> row = cells(d.get(1));
                assertEquals("tool-busy", row.get(header.indexOf("TransactionalId")), describe.out());
                assertEquals("Ongoing", row.get(header.indexOf("TransactionState")));
                assertEquals(TOPIC + "-1", row.get(header.indexOf("TopicPartitions")));
                assertEquals(Integer.toString(b.config().nodeId()), row.get(header.indexOf("CoordinatorId")));
                Run missing = transactions(bootstrap, "describe", "--transactional-id", "nobody");
                assertTrue(missing.code() != 0, "an unknown id fails");
                assertTrue((missing.err() + missing.out()).contains("TransactionalIdNotFound")
                    || (missing.err() + missing.out()).contains("could not be found"), missing.err());
            }
        }
    }

    @Test
    void shouldWriteTransactionStateRecordsThatKafkasFormatterReads(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, 2)); Admin a = admin(b)) {
            long pid;
            try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps(b, "formatted", 45_000))) {
                p.initTransactions();
                pid = describe(a, "formatted").producerId();
            }
            int partition = TxnConfig.partitionFor("formatted", 4);
            String bootstrap = "127.0.0.1:" + b.port();
            String[] args = KafkaTool.withBootstrap(bootstrap, "--topic", TxnCoordinator.TOPIC, "--partition",
                Integer.toString(partition), "--offset", "earliest", "--max-messages", "1", "--timeout-ms", "20000",
                "--formatter", "org.apache.kafka.tools.consumer.TransactionLogMessageFormatter");
            Run r = KafkaTool.run("kafka-console-consumer " + String.join(" ", args),
                () -> ConsoleConsumer.run(new ConsoleConsumerOptions(args)));
            String out = r.out();
            assertTrue(out.contains("\"transactionalId\":\"formatted\""), out);
            assertTrue(out.contains("\"producerId\":" + pid), out);
            assertTrue(out.contains("\"transactionTimeoutMs\":45000"), out);
            assertTrue(out.contains("\"transactionStatus\":0"), out);
        }
    }

    @Test
    void shouldCountOpenTransactionsForTheMetrics(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, 1)); Admin a = admin(b)) {
            a.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps(b, "counted", 60_000))) {
                p.initTransactions();
                p.beginTransaction();
                p.send(new ProducerRecord<>(TOPIC, 0, "k", "v"));
                awaitState(a, "counted", TransactionState.ONGOING);
                int open = 0;
                int ids = 0;
                for (int i = 0; i < b.shardCount(); i++) {
                    int s = i;
                    TxnCoordinator.Stats st = b.group().call(i, x -> b.state(s).txn.stats()).get(30, TimeUnit.SECONDS);
                    open += st.openTransactions();
                    ids += st.transactionalIds();
                }
                assertEquals(1, open);
                assertEquals(1, ids);
            }
        }
    }

    /** Fenced, as the client reports it: PRODUCER_FENCED from the coordinator, INVALID_PRODUCER_EPOCH from a leader. */
    static boolean fenced(KafkaException e) {
        return e instanceof ProducerFencedException || e.getCause() instanceof ProducerFencedException
            || e.getCause() instanceof org.apache.kafka.common.errors.InvalidProducerEpochException;
    }

    /** A row of Kafka's tools' tables (ToolsUtils.prettyPrintTable: padded cells, each followed by a tab). */
    static List<String> cells(String line) {
        return java.util.Arrays.stream(line.split("\t")).map(String::trim).toList();
    }
}
