package dev.isthmus.gateway;

import dev.isthmus.gateway.KafkaTool.Run;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.tools.TopicCommand;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What Metadata, DescribeTopicPartitions, Kafka's tools and /metrics say about replicas while a node is down, on
 * three broker processes (as {@link ClusterTest} starts them) with {@code --replica-lag-time-max-ms 2000}: a topic
 * of replication factor 3 and one of replication factor 1 on node 2. With node 2 killed, the other nodes report
 * the replicated partitions with node 2 out of their in-sync replicas and among the offline replicas, and the
 * single-replica partition without a leader, its last in-sync replica kept (as Kafka reports it);
 * {@code kafka-topics.sh --describe --under-replicated-partitions} lists exactly the replicated partitions and
 * {@code --unavailable-partitions} exactly the other one; the metrics count them. Once node 2 is back, every replica
 * is in sync again and the tools list nothing. A produce sent to a replica that does not lead is answered
 * NOT_LEADER_OR_FOLLOWER naming the leader and its endpoint (KIP-951).
 */
class IsrTest {
    private static final String REPLICATED = "replicated";
    private static final String SINGLE = "single";
    private static final int PARTITIONS = 3;

    @Test
    void shouldReportReplicasOfADownNodeOutOfSyncAndItsOnlyReplicaPartitionsUnavailable(@TempDir Path dir)
            throws Exception {
        try (BrokerProcesses cluster = new BrokerProcesses(3, dir, List.of("--replica-lag-time-max-ms", "2000"))) {
            try {
                run(cluster);
            } catch (Throwable t) {
                System.err.println(cluster.tail(120));
                throw t;
            }
        }
    }

    private void run(BrokerProcesses cluster) throws Exception {
        boolean liveLeaderBeforeKill = false;
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap());
        try (Admin admin = Admin.create(ap)) {
            create(admin, new NewTopic(REPLICATED, PARTITIONS, (short) 3));
            create(admin, new NewTopic(SINGLE, Map.of(0, List.of(2))));
            awaitTopics(admin, "every replica in sync", d -> allInSync(d));
            produce(cluster.bootstrap());
            int leader = admin.describeTopics(List.of(REPLICATED)).allTopicNames().get(30, TimeUnit.SECONDS)
                .get(REPLICATED).partitions().get(0).leader().id();
            int other = (leader + 1) % 3;
            var hint = produceTo(cluster, other);
            assertEquals(org.apache.kafka.common.protocol.Errors.NOT_LEADER_OR_FOLLOWER.code(), hint.errorCode());
            assertEquals(leader, hint.currentLeader().leaderId(), "KIP-951: the leader is named");
            assertTrue(hint.currentLeader().leaderEpoch() > 0, hint.toString());
            assertEquals(cluster.node(leader).kafkaPort(), hintedPort(leader));
            assertEquals(List.of(), listed(cluster, 0, "--under-replicated-partitions"));
            assertEquals(List.of(), listed(cluster, 0, "--unavailable-partitions"));
            for (TopicPartitionInfo p : admin.describeTopics(List.of(REPLICATED)).allTopicNames()
                    .get(30, TimeUnit.SECONDS).get(REPLICATED).partitions()) {
                if (p.leader() != null && p.leader().id() != 2) {
                    liveLeaderBeforeKill = true;
                }
            }
        }

        cluster.kill(2);
        Properties others = new Properties();
        others.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapExcept(2));
        try (Admin admin = Admin.create(others)) {
            Map<String, TopicDescription> d = awaitTopics(admin, "node 2 out of sync and offline", ds -> {
                for (TopicPartitionInfo p : ds.get(REPLICATED).partitions()) {
                    if (p.leader() == null || p.leader().id() == 2 || ids(p.isr()).contains(2)
                        || !ids(p.isr()).equals(List.of(0, 1))) {
                        return false;
                    }
                }
                TopicPartitionInfo s = ds.get(SINGLE).partitions().get(0);
                return s.leader() == null;
            });
            for (TopicPartitionInfo p : d.get(REPLICATED).partitions()) {
                assertEquals(3, p.replicas().size(), p.toString());
            }
            TopicPartitionInfo s = d.get(SINGLE).partitions().get(0);
            assertEquals(List.of(2), ids(s.isr()), "the last in-sync replica of a partition without a leader is kept");
            for (int node : new int[] {0, 1}) {
                assertEquals(List.of(REPLICATED + "-0", REPLICATED + "-1", REPLICATED + "-2"),
                    listed(cluster, node, "--under-replicated-partitions"), "node " + node);
                assertEquals(List.of(SINGLE + "-0"), listed(cluster, node, "--unavailable-partitions"), "node " + node);
            }
            for (int node : new int[] {0, 1}) {
                String m = cluster.metrics(node);
                assertEquals(1, BrokerProcesses.metric(m, "isthmus_leaderless_partitions"), "node " + node);
                assertEquals(PARTITIONS + 1, BrokerProcesses.metric(m, "isthmus_offline_replicas"), "node " + node);
            }
            assertEquals(PARTITIONS, BrokerProcesses.metric(cluster.metrics(0), "isthmus_under_replicated_partitions")
                + BrokerProcesses.metric(cluster.metrics(1), "isthmus_under_replicated_partitions"),
                "the partitions the live nodes lead, all without node 2 in sync");
            if (liveLeaderBeforeKill) {
                // A shrink is counted by a leader within its term: only a partition that node 0 or 1 led when
                // node 2 died shrinks; when node 2 led all of them, the new leaders start their terms without it.
                assertTrue(BrokerProcesses.metric(cluster.metrics(0), "isthmus_isr_shrinks_total")
                    + BrokerProcesses.metric(cluster.metrics(1), "isthmus_isr_shrinks_total") >= 1);
            }
        }

        cluster.start(2);
        try (Admin admin = Admin.create(ap)) {
            awaitTopics(admin, "every replica in sync again", IsrTest::allInSync);
            assertEquals(List.of(), listed(cluster, 0, "--under-replicated-partitions"));
            assertEquals(List.of(), listed(cluster, 2, "--unavailable-partitions"));
            for (int node = 0; node < 3; node++) {
                assertEquals(0, BrokerProcesses.metric(cluster.metrics(node), "isthmus_leaderless_partitions"),
                    "node " + node);
            }
        }
    }

    private org.apache.kafka.common.message.ProduceResponseData lastProduce;

    /** Sends one Produce v12 for replicated-0 to node {@code node}; returns the partition's answer. */
    private org.apache.kafka.common.message.ProduceResponseData.PartitionProduceResponse produceTo(
            BrokerProcesses cluster, int node) throws Exception {
        var records = org.apache.kafka.common.record.internal.MemoryRecords.withRecords(
            org.apache.kafka.common.compress.Compression.NONE,
            new org.apache.kafka.common.record.internal.SimpleRecord("hint".getBytes(StandardCharsets.UTF_8)));
        var data = new org.apache.kafka.common.message.ProduceRequestData().setAcks((short) -1).setTimeoutMs(30_000);
        data.topicData().add(new org.apache.kafka.common.message.ProduceRequestData.TopicProduceData()
            .setName(REPLICATED).setPartitionData(List.of(
                new org.apache.kafka.common.message.ProduceRequestData.PartitionProduceData().setIndex(0)
                    .setRecords(records))));
        short version = 12;
        var header = new org.apache.kafka.common.requests.RequestHeader(
            org.apache.kafka.common.protocol.ApiKeys.PRODUCE, version, "isr-test", 1);
        java.nio.ByteBuffer out = org.apache.kafka.common.requests.RequestUtils.serialize(header.data(),
            header.headerVersion(), data, version);
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", cluster.node(node).kafkaPort())) {
            java.io.DataOutputStream o = new java.io.DataOutputStream(s.getOutputStream());
            o.writeInt(out.remaining());
            o.write(out.array(), out.arrayOffset() + out.position(), out.remaining());
            o.flush();
            java.io.DataInputStream in = new java.io.DataInputStream(s.getInputStream());
            byte[] resp = new byte[in.readInt()];
            in.readFully(resp);
            var r = (org.apache.kafka.common.requests.ProduceResponse) org.apache.kafka.common.requests.AbstractResponse
                .parseResponse(java.nio.ByteBuffer.wrap(resp), header);
            lastProduce = r.data();
            return r.data().responses().iterator().next().partitionResponses().get(0);
        }
    }

    /** The port of node {@code leader} in the last produce answer's NodeEndpoints, or -1. */
    private int hintedPort(int leader) {
        for (var e : lastProduce.nodeEndpoints()) {
            if (e.nodeId() == leader) {
                return e.port();
            }
        }
        return -1;
    }

    private static boolean allInSync(Map<String, TopicDescription> ds) {
        for (TopicDescription d : ds.values()) {
            for (TopicPartitionInfo p : d.partitions()) {
                if (p.leader() == null || !new TreeSet<>(ids(p.isr())).equals(new TreeSet<>(ids(p.replicas())))) {
                    return false;
                }
            }
        }
        return true;
    }

    private static List<Integer> ids(List<Node> nodes) {
        return nodes.stream().map(Node::id).sorted().toList();
    }

    private static void create(Admin admin, NewTopic topic) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (true) {
            try {
                admin.createTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS);
                return;
            } catch (Exception e) {
                if (e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException) {
                    return;
                }
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("the cluster did not create " + topic + ": " + e, e);
                }
                Thread.sleep(500);
            }
        }
    }

    /** Describes both topics until {@code done} holds (at most 60 s). */
    private static Map<String, TopicDescription> awaitTopics(Admin admin, String what,
                                                            Predicate<Map<String, TopicDescription>> done)
            throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        String last = "";
        while (System.nanoTime() < deadline) {
            try {
                Map<String, TopicDescription> d = admin.describeTopics(List.of(REPLICATED, SINGLE)).allTopicNames()
                    .get(20, TimeUnit.SECONDS);
                last = d.toString();
                if (done.test(d)) {
                    return d;
                }
            } catch (Exception e) {
                last = e.toString();
            }
            Thread.sleep(200);
        }
        throw new AssertionError("not reached: " + what + "; last: " + last);
    }

    private static void produce(String bootstrap) throws Exception {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            for (int i = 0; i < 30; i++) {
                p.send(new ProducerRecord<>(REPLICATED, i % PARTITIONS, "k", "v" + i)).get(30, TimeUnit.SECONDS);
            }
            p.send(new ProducerRecord<>(SINGLE, 0, "k", "v")).get(30, TimeUnit.SECONDS);
        }
    }

    /**
     * Runs {@code kafka-topics.sh --describe --topic 'replicated|single' <filter>} against node {@code node} and
     * returns the partitions it listed ("topic-partition", sorted).
     */
    private List<String> listed(BrokerProcesses cluster, int node, String filter) throws Exception {
        String[] args = {"--bootstrap-server", "127.0.0.1:" + cluster.node(node).kafkaPort(), "--describe", "--topic",
            REPLICATED + "|" + SINGLE, filter};
        Run r = KafkaTool.run("kafka-topics " + String.join(" ", args), () -> TopicCommand.main(args));
        assertEquals(0, r.code(), "kafka-topics exit status: " + r.err());
        String text = r.out();
        List<String> parts = new ArrayList<>();
        for (String line : text.split("\n")) {
            String topic = null;
            String partition = null;
            for (String field : line.trim().split("\t")) {
                if (field.startsWith("Topic: ")) {
                    topic = field.substring(7).trim();
                } else if (field.startsWith("Partition: ")) {
                    partition = field.substring(11).trim();
                }
            }
            if (topic != null && partition != null) {
                parts.add(topic + "-" + partition);
            }
        }
        parts.sort(String::compareTo);
        return parts;
    }
}
