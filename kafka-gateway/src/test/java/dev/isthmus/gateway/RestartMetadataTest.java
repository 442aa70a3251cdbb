package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.MetadataRequestData;
import dev.isthmus.gateway.protocol.message.MetadataResponseData;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartitionInfo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a restarted cluster node says in Metadata before it has caught up with the controller (bench/chaos's slow
 * recoveries after kill -9 of every node: producers were told by a restarted node that their topic did not exist,
 * dropped it from their metadata and blocked in send() for max.block.ms each time). Three broker processes, a
 * topic; every node killed (SIGKILL); node 0 restarted alone, so its controller has no quorum and it cannot catch
 * up: it answers Metadata with no brokers and no topics (the answer kafka-clients ignore and retry, keeping what
 * they knew), never with the topic unknown, and creates nothing. Once node 1 is back, node 0's answers go from
 * that empty one straight to the topic with every partition.
 */
@Timeout(300)
class RestartMetadataTest {
    private static final String TOPIC = "kept";
    private static final int PARTITIONS = 3;

    @Test
    void shouldAnswerMetadataWithoutBrokersUntilARestartedNodeHasCaughtUpWithTheController(@TempDir Path dir)
            throws Exception {
        try (BrokerProcesses cluster = new BrokerProcesses(3, dir, List.of())) {
            try {
                run(cluster);
            } catch (Throwable t) {
                for (String l : cluster.output()) {
                    if (!l.contains("stalled for") && !l.contains("\tat ") && !l.contains("lambda$new$0")) {
                        System.err.println(l);
                    }
                }
                System.err.println(cluster.tail(60));
                throw t;
            }
        }
    }

    private void run(BrokerProcesses cluster) throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap()))) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (true) {
                try {
                    admin.createTopics(List.of(new NewTopic(TOPIC, PARTITIONS, (short) 3))).all().get(30, TimeUnit.SECONDS);
                    break;
                } catch (Exception e) {
                    if (e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException) {
                        break;
                    }
                    assertTrue(System.nanoTime() < deadline, "the cluster did not take the topic: " + e);
                    Thread.sleep(500);
                }
            }
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (!led(admin)) {
                assertTrue(System.nanoTime() < deadline, "the topic's partitions got no leaders within 120 s");
                Thread.sleep(250);
            }
        }
        for (int i = 0; i < cluster.size(); i++) {
            cluster.kill(i);
        }
        int lines = cluster.output().size();
        cluster.start(0);
        awaitOutput(cluster, lines, "Isthmus broker 0 ready");

        // Alone, node 0 cannot catch up: every answer is the empty one, whatever the version, auto-creation or not.
        for (int round = 0; round < 10; round++) {
            for (short version : new short[] {1, 9, 12}) {
                MetadataResponseData r = metadata(cluster.node(0).kafkaPort(), version, round);
                assertEquals(List.of(), r.brokers, "v" + version + ": brokers before the node caught up");
                assertEquals(List.of(), r.topics, "v" + version + ": topics before the node caught up");
                assertEquals(-1, r.controllerId);
            }
            Thread.sleep(300);
        }

        // With node 1 back there is a quorum: node 0 registers, catches up, and then answers with the topic whole.
        cluster.start(1);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        int empty = 0;
        while (true) {
            MetadataResponseData r = metadata(cluster.node(0).kafkaPort(), (short) 12, 0);
            if (r.brokers.isEmpty()) {
                assertEquals(List.of(), r.topics, "an empty answer names no topic");
                empty++;
                assertTrue(System.nanoTime() < deadline, "node 0 did not catch up within 120 s");
                Thread.sleep(100);
                continue;
            }
            assertEquals(1, r.topics.size(), r.topics.toString());
            MetadataResponseData.MetadataResponseTopic t = r.topics.get(0);
            assertEquals(TOPIC, t.name);
            assertEquals(0, t.errorCode, "the first answer with brokers knows the topic");
            assertEquals(PARTITIONS, t.partitions.size());
            System.out.println("node 0 answered " + empty + " empty Metadata request(s) after node 1 restarted, then "
                + "the topic with brokers " + r.brokers.stream().map(b -> b.nodeId).toList());
            break;
        }
    }

    private static boolean led(Admin admin) throws Exception {
        TopicDescription d = admin.describeTopics(List.of(TOPIC)).allTopicNames().get(30, TimeUnit.SECONDS).get(TOPIC);
        for (TopicPartitionInfo p : d.partitions()) {
            if (p.leader() == null) {
                return false;
            }
        }
        return d.partitions().size() == PARTITIONS;
    }

    private static MetadataResponseData metadata(int port, short version, int correlationId) throws Exception {
        MetadataRequestData md = new MetadataRequestData();
        MetadataRequestData.MetadataRequestTopic t = new MetadataRequestData.MetadataRequestTopic();
        t.name = TOPIC;
        md.topics = new ArrayList<>(List.of(t));
        md.allowAutoTopicCreation = true;
        try (WireClient c = new WireClient(port, 30_000)) {
            c.send(WireClient.frame(ApiKeys.METADATA, version, correlationId, md));
            byte[] r = c.readFrame();
            assertTrue(r != null, "no answer to Metadata v" + version);
            return WireClient.body(r, ApiKeys.METADATA, version);
        }
    }

    private static void awaitOutput(BrokerProcesses cluster, int from, String text) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (true) {
            List<String> out = cluster.output();
            for (int i = from; i < out.size(); i++) {
                if (out.get(i).contains(text)) {
                    return;
                }
            }
            assertTrue(System.nanoTime() < deadline, "no '" + text + "' within 120 s");
            Thread.sleep(100);
        }
    }
}
