package dev.isthmus.gateway;

import dev.isthmus.gateway.txn.TxnConfig;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.message.EndTxnRequestData;
import org.apache.kafka.common.message.FindCoordinatorRequestData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.requests.EndTxnResponse;
import org.apache.kafka.common.requests.FindCoordinatorResponse;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The transaction coordinator on a three-node cluster in one JVM, across two failovers of its
 * {@code __transaction_state} partition: the next leader, elected by Raft, replays the partition and coordinates at
 * a higher coordinator epoch. An open transaction keeps its producer, epoch, timeout, start time and partitions and
 * is committed at the new coordinator; a transaction decided before the failover (PrepareCommit durable) has its
 * markers sent again by the new coordinator and completes where partition leaders take WriteTxnMarkers (until then
 * it stays PrepareCommit with its markers pending); a stalled transaction is aborted for its timeout. The stopped
 * node restarts, catches up as a follower, and the second coordinator's node then stops: the third replays what the
 * second wrote. Brokers also reach each other's coordinator over the broker-to-broker request path (a partition
 * leader's KIP-890 AddPartitionsToTxn, and a group coordinator adding its offsets partition for a TxnOffsetCommit
 * v5, whose offsets stay pending until the commit's marker lands there).
 */
@Timeout(value = 300, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class TransactionFailoverTest {
    private static final int NODES = 3;
    private static final String TOPIC = "txn-replicated";

    /** An RPC port for a node that restarts on the same address (below the ephemeral range: {@link TestPorts}). */
    private static int freePort() throws Exception {
        return TestPorts.free();
    }

    private static BrokerConfig config(Path dir, int id, List<String> seeds) {
        return BrokerConfig.defaults().toBuilder().port(0).nodeId(id).dataDir(dir.resolve("node-" + id)).shards(1)
            .memoryBytes(128L << 20).pin(false).zeroedSegments(0).seeds(seeds).autoLeaderRebalance(false)
            .offsetsTopicPartitions(2)
            .transactionSetting(TxnConfig.STATE_LOG_PARTITIONS, "2")
            .transactionSetting(TxnConfig.ABORT_INTERVAL_MS, "200")
            .transactionSetting(TxnConfig.TRANSACTION_VERSION, "1").build();
    }

    /** The node that coordinates {@code id}, asked of {@code asked}; -1 while none is known. */
    private static int coordinator(Broker asked, String id) {
        try {
            FindCoordinatorResponse r = (FindCoordinatorResponse) KafkaRequests.send(asked.port(),
                ApiKeys.FIND_COORDINATOR, (short) 4, new FindCoordinatorRequestData().setKeyType((byte) 1)
                    .setCoordinatorKeys(List.of(id)));
            var c = r.data().coordinators().get(0);
            return c.errorCode() == Errors.NONE.code() ? c.nodeId() : -1;
        } catch (Exception e) {
            return -1;
        }
    }

    /** The node that coordinates group {@code group}, asked of {@code asked}; -1 while none is known. */
    private static int groupCoordinator(Broker asked, String group) {
        try {
            FindCoordinatorResponse r = (FindCoordinatorResponse) KafkaRequests.send(asked.port(),
                ApiKeys.FIND_COORDINATOR, (short) 4, new FindCoordinatorRequestData().setKeyType((byte) 0)
                    .setCoordinatorKeys(List.of(group)));
            var c = r.data().coordinators().get(0);
            return c.errorCode() == Errors.NONE.code() ? c.nodeId() : -1;
        } catch (Exception e) {
            return -1;
        }
    }

    private static TransactionDescription describe(Admin a, String id) {
        try {
            return a.describeTransactions(List.of(id)).description(id).get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            return null; // moving, or loading
        }
    }

    private static final long STARTED_NS = System.nanoTime();

    /** Says which step the test reached (in the surefire output), so a failure or a timeout names its state. */
    private static void step(String what) {
        System.out.printf("TransactionFailoverTest +%d ms: %s%n", (System.nanoTime() - STARTED_NS) / 1_000_000, what);
    }

    private static <T> T await(String what, java.util.function.Supplier<T> probe) throws Exception {
        step("waiting for " + what);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (true) {
            T v = probe.get();
            if (v != null) {
                return v;
            }
            if (System.nanoTime() > deadline) {
                fail("timed out waiting for " + what);
            }
            Thread.sleep(100);
        }
    }

    /** The coordinator's transaction gauges on node {@code b} (one shard). */
    private static TxnCoordinator.Stats stats(Broker b) throws Exception {
        return b.group().call(0, x -> b.state(0).txn.stats()).get(30, TimeUnit.SECONDS);
    }

    private static String bootstrap(Broker[] nodes) {
        List<String> live = new ArrayList<>();
        for (Broker n : nodes) {
            if (n != null) {
                live.add("127.0.0.1:" + n.port());
            }
        }
        return String.join(",", live);
    }

    /** The description of {@code id} once a coordinator other than {@code not} answers it in a state of {@code ok}. */
    private static TransactionDescription awaitElsewhere(Admin a, String id, int not, Set<TransactionState> ok)
        throws Exception {
        return await(id + " at a coordinator other than node " + not + " in " + ok, () -> {
            TransactionDescription d = describe(a, id);
            return d != null && d.coordinatorId() != not && ok.contains(d.state()) ? d : null;
        });
    }

    @Test
    void shouldReplayTheTransactionStateAtTheNextCoordinatorWhenTheLeaderStops(@TempDir Path dir) throws Exception {
        List<String> seeds = new ArrayList<>();
        for (int i = 0; i < NODES; i++) {
            seeds.add(i + "@127.0.0.1:" + freePort());
        }
        Broker[] nodes = new Broker[NODES];
        try {
            for (int i = 0; i < NODES; i++) {
                step("starting node " + i);
                nodes[i] = Broker.start(config(dir, i, seeds));
            }
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap(nodes)))) {
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
                while (true) { // the nodes register once a majority of the seeds is up
                    try {
                        admin.createTopics(List.of(new NewTopic(TOPIC, 2, (short) 3))).all().get(30, TimeUnit.SECONDS);
                        break;
                    } catch (Exception e) {
                        if (System.nanoTime() > deadline) {
                            throw new AssertionError("the cluster did not take a replication-factor-3 topic", e);
                        }
                        Thread.sleep(200);
                    }
                }
            }
            // Three transactional ids on one __transaction_state partition (2 partitions: same hash parity).
            String moving = "moving";
            String deciding = sameCoordinatorPartitionAs(moving, "deciding");
            String stalled = sameCoordinatorPartitionAs(moving, "stalled");
            // The coordinator of "moving" (creates __transaction_state, replication factor 3).
            int coord = await("a coordinator", () -> {
                int c = coordinator(nodes[0], moving);
                return c >= 0 ? c : null;
            });
            Broker c = nodes[coord];
            // An open transaction that the next coordinator must carry on.
            long[] pe = TransactionCoordinatorTest.initRaw(c.port(), moving, 600_000);
            TransactionCoordinatorTest.addRaw(c.port(), moving, pe, Map.of(TOPIC, List.of(0, 1)));
            // A transaction decided (PrepareCommit durable) whose markers the next coordinator must finish.
            long[] de = TransactionCoordinatorTest.initRaw(c.port(), deciding, 600_000);
            TransactionCoordinatorTest.addRaw(c.port(), deciding, de, Map.of(TOPIC, List.of(1)));
            EndTxnResponse decided = (EndTxnResponse) KafkaRequests.send(c.port(), ApiKeys.END_TXN, (short) 4,
                new EndTxnRequestData().setTransactionalId(deciding).setProducerId(de[0])
                    .setProducerEpoch((short) de[1]).setCommitted(true));
            assertEquals(Errors.NONE.code(), decided.data().errorCode());
            // An open transaction whose timeout the next coordinator must enforce (2 s from its start).
            long[] se = TransactionCoordinatorTest.initRaw(c.port(), stalled, 2_000);
            TransactionCoordinatorTest.addRaw(c.port(), stalled, se, Map.of(TOPIC, List.of(0)));

            TransactionDescription before;
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap(nodes)))) {
                before = await("the open transaction", () -> describe(admin, moving));
                assertEquals(TransactionState.ONGOING, before.state());
                assertEquals(coord, before.coordinatorId());
            }

            // A partition leader on another node asks the coordinator to verify (KIP-890), broker to broker.
            int other = (coord + 1) % NODES;
            dev.isthmus.gateway.protocol.message.AddPartitionsToTxnRequestData verify =
                new dev.isthmus.gateway.protocol.message.AddPartitionsToTxnRequestData();
            dev.isthmus.gateway.protocol.message.AddPartitionsToTxnRequestData.AddPartitionsToTxnTransaction t =
                new dev.isthmus.gateway.protocol.message.AddPartitionsToTxnRequestData.AddPartitionsToTxnTransaction();
            t.transactionalId = moving;
            t.producerId = pe[0];
            t.producerEpoch = (short) pe[1];
            t.verifyOnly = true;
            dev.isthmus.gateway.protocol.message.AddPartitionsToTxnRequestData.AddPartitionsToTxnTopic topic =
                new dev.isthmus.gateway.protocol.message.AddPartitionsToTxnRequestData.AddPartitionsToTxnTopic();
            topic.name = TOPIC;
            topic.partitions.add(1);
            t.topics.add(topic);
            verify.transactions.add(t);
            Broker o = nodes[other];
            var answer = (dev.isthmus.gateway.protocol.message.AddPartitionsToTxnResponseData) o.group().callAsync(0,
                s -> o.handlers().transactions().requests().send(o.state(0), coord,
                    dev.isthmus.gateway.protocol.message.ApiKeys.ADD_PARTITIONS_TO_TXN, (short) 5, verify))
                .get(60, TimeUnit.SECONDS);
            assertEquals(Errors.NONE.code(), answer.resultsByTransaction.get(0).topicResults.get(0)
                .resultsByPartition.get(0).partitionErrorCode, "verified at the coordinator on node " + coord);

            // The producer commits consumer offsets in its transaction at a group coordinator on another node than
            // its transaction coordinator: TxnOffsetCommit v5 adds the group's offsets partition there, broker to
            // broker, and the offsets stay pending.
            String group;
            Broker groupNode;
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap(nodes)))) {
                int[] at = groupElsewhere(admin, nodes, coord);
                group = "copier-" + at[0];
                groupNode = nodes[at[1]];
            }
            TopicPartition offsetsPartition = new TopicPartition(GroupCoordinator.OFFSETS_TOPIC,
                GroupCoordinator.partitionFor(group, 2));
            assertEquals(Errors.NONE.code(), TransactionOffsetsTest.txnCommit(groupNode.port(), (short) 5, moving,
                group, pe[0], (short) pe[1], -1, "", TOPIC, 0, 17));
            assertEquals(Errors.UNSTABLE_OFFSET_COMMIT.code(),
                TransactionOffsetsTest.awaitOffset(groupNode.port(), group, TOPIC, 0, true)[0]);

            // The coordinator's node stops; Raft elects another leader of the partition, which replays it.
            step("stopping node " + coord + " (the first coordinator)");
            nodes[coord].close();
            step("node " + coord + " stopped");
            nodes[coord] = null;
            boolean markers = TransactionCoordinatorTest.markersWritten(nodes[other]);
            int next;
            try (Admin survivors = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap(nodes)))) {
                TransactionDescription after = awaitElsewhere(survivors, moving, coord, Set.of(TransactionState.ONGOING));
                next = after.coordinatorId();
                assertEquals(pe[0], after.producerId());
                assertEquals(pe[1], after.producerEpoch());
                assertEquals(600_000, after.transactionTimeoutMs());
                assertEquals(before.transactionStartTimeMs(), after.transactionStartTimeMs());
                assertEquals(Set.of(new TopicPartition(TOPIC, 0), new TopicPartition(TOPIC, 1), offsetsPartition),
                    after.topicPartitions());

                // The decided transaction: its markers resent by the new coordinator (written where partition
                // leaders take them; otherwise it stays PrepareCommit, with its markers pending there).
                TransactionDescription d = awaitElsewhere(survivors, deciding, coord, markers
                    ? Set.of(TransactionState.COMPLETE_COMMIT) : Set.of(TransactionState.PREPARE_COMMIT));
                assertEquals(de[0], d.producerId());
                if (!markers) {
                    assertEquals(Set.of(new TopicPartition(TOPIC, 1)), d.topicPartitions());
                    TxnCoordinator.Stats st = await("markers pending at node " + next, () -> {
                        try {
                            TxnCoordinator.Stats x = stats(nodes[next]);
                            return x.markersPending() > 0 ? x : null;
                        } catch (Exception e) {
                            return null;
                        }
                    });
                    assertTrue(st.markersPending() >= 1, st.toString());
                }

                // The stalled transaction: aborted for its timeout (by either coordinator), fenced one epoch up.
                TransactionDescription s = awaitElsewhere(survivors, stalled, coord, markers
                    ? Set.of(TransactionState.COMPLETE_ABORT)
                    : Set.of(TransactionState.PREPARE_ABORT, TransactionState.COMPLETE_ABORT));
                assertEquals(se[0], s.producerId());
                assertEquals(se[1] + 1, s.producerEpoch());

                // The producer commits at the new coordinator: answered once PrepareCommit is durable there.
                EndTxnResponse commit = (EndTxnResponse) KafkaRequests.send(nodes[next].port(), ApiKeys.END_TXN,
                    (short) 4, new EndTxnRequestData().setTransactionalId(moving).setProducerId(pe[0])
                        .setProducerEpoch((short) pe[1]).setCommitted(true));
                assertEquals(Errors.NONE.code(), commit.data().errorCode());
                TransactionDescription committed = describe(survivors, moving);
                assertTrue(committed.state() == TransactionState.PREPARE_COMMIT
                    || committed.state() == TransactionState.COMPLETE_COMMIT, committed.state().toString());
                // Its offsets: committed once the marker reaches the offsets partition, pending until then.
                if (markers) {
                    long[] offset = await("the committed offset of " + group, () -> {
                        try {
                            long[] x = TransactionOffsetsTest.awaitOffset(groupNode.port(), group, TOPIC, 0, true);
                            return x[0] == Errors.NONE.code() ? x : null;
                        } catch (Exception e) {
                            return null;
                        }
                    });
                    assertEquals(17, offset[1]);
                } else {
                    assertEquals(Errors.UNSTABLE_OFFSET_COMMIT.code(),
                        TransactionOffsetsTest.awaitOffset(groupNode.port(), group, TOPIC, 0, true)[0]);
                }
            }

            // The first node comes back (a follower now, catching up), then the second coordinator stops: the
            // third coordinator replays what the second one wrote.
            step("restarting node " + coord);
            nodes[coord] = Broker.start(config(dir, coord, seeds));
            int restarted = coord;
            await("node " + coord + " back in the cluster", () -> coordinator(nodes[restarted], moving) >= 0 ? 1 : null);
            try (Admin all = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap(nodes)))) {
                // Wait until every replica of the partition holds the second coordinator's records: the first
                // node must be in sync before the second stops, or no majority can elect a leader with them.
                await("node " + coord + " in sync", () -> {
                    try {
                        var desc = all.describeTopics(List.of(TxnCoordinator.TOPIC)).allTopicNames()
                            .get(10, TimeUnit.SECONDS).get(TxnCoordinator.TOPIC);
                        return desc.partitions().stream().allMatch(p -> p.isr().size() == NODES) ? desc : null;
                    } catch (Exception e) {
                        return null;
                    }
                });
            }
            step("stopping node " + next + " (the second coordinator)");
            nodes[next].close();
            nodes[next] = null;
            step("node " + next + " stopped");
            try (Admin survivors = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap(nodes)))) {
                TransactionDescription third = awaitElsewhere(survivors, moving, next, markers
                    ? Set.of(TransactionState.COMPLETE_COMMIT)
                    : Set.of(TransactionState.PREPARE_COMMIT, TransactionState.COMPLETE_COMMIT));
                assertEquals(pe[0], third.producerId());
                assertEquals(pe[1], third.producerEpoch());
                TransactionDescription s = awaitElsewhere(survivors, stalled, next, markers
                    ? Set.of(TransactionState.COMPLETE_ABORT)
                    : Set.of(TransactionState.PREPARE_ABORT, TransactionState.COMPLETE_ABORT));
                assertEquals(se[1] + 1, s.producerEpoch());
                if (markers) {
                    // A Kafka producer carries on at the third coordinator.
                    Properties pp = new Properties();
                    pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap(nodes));
                    pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, moving);
                    pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
                    pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
                    pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 60_000);
                    step("a Kafka producer at the third coordinator");
                    KafkaProducer<String, String> p = new KafkaProducer<>(pp);
                    try {
                        p.initTransactions();
                        p.beginTransaction();
                        p.send(new ProducerRecord<>(TOPIC, 0, "k", "v")).get(30, TimeUnit.SECONDS);
                        p.commitTransaction();
                    } finally {
                        // Bounded: close() without a timeout waits for a transaction that cannot end for ever.
                        p.close(java.time.Duration.ofSeconds(30));
                    }
                }
            }
        } finally {
            step("closing the nodes");
            for (Broker n : nodes) {
                if (n != null) {
                    n.close();
                }
            }
            step("closed");
        }
    }

    /**
     * {index, node} of a group {@code copier-<index>} whose coordinator is on another node than {@code coord}. There
     * are two offsets partitions, led wherever Raft elected their leaders, so both may be led by {@code coord}: then
     * the preferred leaders are elected (the partitions' replica lists start on different nodes), and the search
     * waits for one to move. (The search used to try group after group while both were led by {@code coord}: it
     * never ended, and never slept, so the test's timeout could not stop it: the CI hang of 2026-12-07.)
     */
    private static int[] groupElsewhere(Admin admin, Broker[] nodes, int coord) throws Exception {
        int[] byPartition = new int[2];
        java.util.Arrays.fill(byPartition, -1);
        for (int i = 0, found = 0; found < byPartition.length; i++) {
            int p = GroupCoordinator.partitionFor("copier-" + i, 2);
            if (byPartition[p] < 0) {
                byPartition[p] = i;
                found++;
            }
        }
        boolean elected = false;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (true) {
            for (int i : byPartition) {
                String g = "copier-" + i;
                int n = await("the coordinator of " + g, () -> {
                    int x = groupCoordinator(nodes[0], g);
                    return x >= 0 ? x : null;
                });
                if (n != coord) {
                    step("group " + g + " is coordinated by node " + n + ", the transactions by node " + coord);
                    return new int[] {i, n};
                }
            }
            if (System.nanoTime() > deadline) {
                fail("both offsets partitions stay led by node " + coord + ", the transaction coordinator, after"
                    + " electing their preferred leaders");
            }
            if (!elected) {
                step("both offsets partitions are led by node " + coord + ": electing their preferred leaders");
                try {
                    admin.electLeaders(org.apache.kafka.common.ElectionType.PREFERRED, Set.of(
                        new TopicPartition(GroupCoordinator.OFFSETS_TOPIC, 0),
                        new TopicPartition(GroupCoordinator.OFFSETS_TOPIC, 1))).all().get(30, TimeUnit.SECONDS);
                } catch (Exception e) {
                    step("electLeaders: " + e); // ELECTION_NOT_NEEDED for a partition led by its preferred replica
                }
                elected = true;
            }
            Thread.sleep(200);
        }
    }

    /** A transactional id starting with {@code prefix} on the same partition of a 2-partition log as {@code id}. */
    private static String sameCoordinatorPartitionAs(String id, String prefix) {
        for (int i = 0; ; i++) {
            String candidate = prefix + "-" + i;
            if (TxnConfig.partitionFor(candidate, 2) == TxnConfig.partitionFor(id, 2)) {
                return candidate;
            }
        }
    }
}
