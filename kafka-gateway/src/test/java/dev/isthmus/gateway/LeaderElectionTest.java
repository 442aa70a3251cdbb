package dev.isthmus.gateway;

import dev.isthmus.gateway.KafkaTool.Run;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ElectLeadersOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ElectionNotNeededException;
import org.apache.kafka.common.errors.EligibleLeadersNotAvailableException;
import org.apache.kafka.common.message.ElectLeadersRequestData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.requests.ElectLeadersResponse;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.tools.LeaderElectionCommand;
import org.apache.kafka.tools.LogDirsCommand;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * ElectLeaders and DescribeLogDirs on a three-node cluster in one JVM (three {@link Broker}s from one seed list,
 * {@code --auto-leader-rebalance false} so that only the election under test moves leadership), with Kafka's
 * kafka-leader-election and kafka-log-dirs tools and the Admin client: a preferred election moves leadership back
 * to the preferred replica through Raft leadership transfer, a second one is not needed, one for a partition
 * whose preferred replica is down is refused with the reason, and an unclean election is never done (not needed
 * while a leader exists, refused with Raft's reason once a majority is down).
 */
@Timeout(300)
class LeaderElectionTest {
    private static final int NODES = 3;
    private static final String TOPIC = "elect";

    private static Run electLeaders(String bootstrap, String... args) throws Exception {
        String[] all = KafkaTool.withBootstrap(bootstrap, args);
        return KafkaTool.run("kafka-leader-election " + String.join(" ", all), () -> LeaderElectionCommand.main(all));
    }

    private static int freePort() throws Exception {
        return TestPorts.free();
    }

    /**
     * Which live node's replica of {@code TOPIC-partition} leads, asked of each node's Raft group; -1 for none. Two
     * may claim it for a moment around a transfer (the old leader has not seen the new term yet): the later term's.
     */
    private static int leaderOf(Broker[] nodes, int partition) throws Exception {
        int leader = -1;
        long leaderTerm = -1;
        for (int i = 0; i < nodes.length; i++) {
            Broker b = nodes[i];
            if (b == null) {
                continue;
            }
            long term = b.group().call(0, s -> {
                Partition p = b.state(0).partitions.get(TOPIC + "-" + partition);
                return p != null && p.isLeader() ? p.replica.term() : -1L;
            }).get(30, TimeUnit.SECONDS);
            if (term >= 0) {
                assertNotEquals(leaderTerm, term, "two leaders of " + TOPIC + "-" + partition + " in term " + term);
                if (term > leaderTerm) {
                    leader = i;
                    leaderTerm = term;
                }
            }
        }
        return leader;
    }

    private static int awaitLeader(Broker[] nodes, int partition) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            int l = leaderOf(nodes, partition);
            if (l >= 0) {
                return l;
            }
            if (System.nanoTime() > deadline) {
                fail(TOPIC + "-" + partition + " has no leader");
            }
            Thread.sleep(50);
        }
    }

    /** Hands leadership of the partition from {@code from} to {@code to} with the Raft group's own transfer. */
    private static void transfer(Broker[] nodes, int partition, int from, int to) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (leaderOf(nodes, partition) != to) {
            if (System.nanoTime() > deadline) {
                fail("leadership of " + TOPIC + "-" + partition + " did not move to node " + to);
            }
            Broker b = nodes[from];
            b.group().call(0, s -> b.state(0).partitions.get(TOPIC + "-" + partition).replica.raft()
                .transferLeadership(to)).get(30, TimeUnit.SECONDS);
            Thread.sleep(200);
        }
    }

    @Test
    void shouldElectThePreferredLeaderByRaftTransferAndNeverElectUncleanly(@TempDir Path dir) throws Exception {
        int[] rpc = new int[NODES];
        List<String> seeds = new ArrayList<>();
        for (int i = 0; i < NODES; i++) {
            rpc[i] = freePort();
            seeds.add(i + "@127.0.0.1:" + rpc[i]);
        }
        Broker[] nodes = new Broker[NODES];
        try {
            for (int i = 0; i < NODES; i++) {
                nodes[i] = Broker.start(BrokerConfig.defaults().toBuilder().port(0).nodeId(i)
                    .dataDir(dir.resolve("node-" + i)).shards(1).memoryBytes(128L << 20).pin(false).zeroedSegments(0)
                    .seeds(seeds).autoLeaderRebalance(false).build());
            }
            String bootstrap = String.join(",", java.util.Arrays.stream(nodes).map(n -> "127.0.0.1:" + n.port()).toList());
            Properties ap = new Properties();
            ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            try (Admin admin = Admin.create(ap)) {
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
                while (true) { // the nodes register once a majority of the seeds is up
                    try {
                        admin.createTopics(List.of(new NewTopic(TOPIC, 3, (short) 3))).all().get(30, TimeUnit.SECONDS);
                        break;
                    } catch (Exception e) {
                        if (System.nanoTime() > deadline) {
                            throw new AssertionError("the cluster did not take a replication-factor-3 topic", e);
                        }
                        Thread.sleep(200);
                    }
                }
                TopicDescription d = admin.describeTopics(List.of(TOPIC)).allTopicNames().get().get(TOPIC);
                int[] preferred = new int[3];
                for (int p = 0; p < 3; p++) {
                    preferred[p] = d.partitions().get(p).replicas().get(0).id();
                    awaitLeader(nodes, p);
                }
                Properties pp = new Properties();
                pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
                pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
                pp.put(ProducerConfig.ACKS_CONFIG, "all");
                try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                    for (int i = 0; i < 60; i++) {
                        producer.send(new ProducerRecord<>(TOPIC, i % 3, "k" + i, "v" + i)).get();
                    }
                }

                // Leadership of partition 0 away from its preferred replica (Raft's own transfer, no election here).
                int p0Leader = leaderOf(nodes, 0);
                if (p0Leader == preferred[0]) {
                    int other = d.partitions().get(0).replicas().get(1).id();
                    transfer(nodes, 0, p0Leader, other);
                }
                assertNotEquals(preferred[0], leaderOf(nodes, 0));

                Run elected = electLeaders(bootstrap, "--election-type", "preferred", "--topic", TOPIC, "--partition", "0");
                assertEquals(0, elected.code(), elected.printed());
                assertTrue(elected.printed().contains("Successfully completed leader election (PREFERRED) for partitions "
                    + TOPIC + "-0"), elected.printed());
                assertEquals(preferred[0], leaderOf(nodes, 0), "the answer comes once the preferred replica leads");

                Run again = electLeaders(bootstrap, "--election-type", "preferred", "--topic", TOPIC, "--partition", "0");
                assertEquals(0, again.code(), again.printed());
                assertTrue(again.printed().contains("Valid replica already elected for partitions " + TOPIC + "-0"),
                    again.printed());

                // Asked of a node that does not lead: it finds the leader (its own replica's hint) and has the leader
                // node carry out the transfer over the RPC between nodes.
                int p1Leader = leaderOf(nodes, 1);
                if (p1Leader == preferred[1]) {
                    p1Leader = d.partitions().get(1).replicas().get(2).id();
                    transfer(nodes, 1, preferred[1], p1Leader);
                }
                int asked = preferred[1];
                assertNotEquals(asked, leaderOf(nodes, 1));
                ElectLeadersRequestData req = new ElectLeadersRequestData().setElectionType((byte) 0).setTimeoutMs(30_000);
                req.topicPartitions().add(new ElectLeadersRequestData.TopicPartitions().setTopic(TOPIC)
                    .setPartitions(List.of(1)));
                ElectLeadersResponse resp = (ElectLeadersResponse) KafkaRequests.send(nodes[asked].port(),
                    ApiKeys.ELECT_LEADERS, (short) 2, req);
                var result = resp.data().replicaElectionResults().get(0).partitionResult().get(0);
                assertEquals(Errors.NONE.code(), result.errorCode(), result.errorMessage());
                assertEquals(preferred[1], leaderOf(nodes, 1));

                // Every partition of every topic: afterwards each is led by its preferred replica.
                Run all = electLeaders(bootstrap, "--election-type", "preferred", "--all-topic-partitions");
                assertEquals(0, all.code(), all.printed());
                for (int p = 0; p < 3; p++) {
                    assertEquals(preferred[p], leaderOf(nodes, p), TOPIC + "-" + p);
                }

                // Unclean while a leader exists: not needed, and the message says why.
                TopicPartition tp1 = new TopicPartition(TOPIC, 1);
                Optional<Throwable> unclean = admin.electLeaders(ElectionType.UNCLEAN, Set.of(tp1)).partitions().get()
                    .get(tp1);
                assertInstanceOf(ElectionNotNeededException.class, unclean.orElseThrow());
                assertTrue(unclean.get().getMessage().contains("Raft elects only a replica holding every committed"
                    + " record"), unclean.get().getMessage());

                // kafka-log-dirs across the cluster: every node holds every partition, each replica as large as the
                // batches its leader serves.
                Map<Integer, Long> stored = new HashMap<>();
                for (int p = 0; p < 3; p++) {
                    stored.put(p, KafkaRequests.storedBytes(nodes[preferred[p]].port(), TOPIC, p));
                    assertTrue(stored.get(p) > 0);
                }
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (true) {
                    String[] args = KafkaTool.withBootstrap(bootstrap, "--describe", "--topic-list", TOPIC);
                    Run dirs = KafkaTool.run("kafka-log-dirs " + String.join(" ", args),
                        () -> LogDirsCommand.main(args));
                    assertEquals(0, dirs.code(), dirs.printed());
                    JsonNode json = new ObjectMapper().readTree(dirs.printed().lines().filter(l -> l.startsWith("{"))
                        .findFirst().orElseThrow());
                    List<String> mismatches = new ArrayList<>();
                    assertEquals(NODES, json.get("brokers").size(), json.toString());
                    for (JsonNode broker : json.get("brokers")) {
                        int id = broker.get("broker").asInt();
                        JsonNode logDir = broker.get("logDirs").get(0);
                        assertEquals(dir.resolve("node-" + id).toAbsolutePath().toString(), logDir.get("logDir").asText());
                        assertEquals(3, logDir.get("partitions").size(), logDir.toString());
                        for (JsonNode p : logDir.get("partitions")) {
                            int index = Integer.parseInt(p.get("partition").asText().substring(TOPIC.length() + 1));
                            if (p.get("size").asLong() != stored.get(index)) {
                                mismatches.add("node " + id + " " + p);
                            }
                        }
                    }
                    if (mismatches.isEmpty()) {
                        break;
                    }
                    if (System.nanoTime() > until) {
                        fail("replica sizes differ from the leaders' " + stored + ": " + mismatches);
                    }
                    Thread.sleep(200); // a follower still catching up
                }

                // The preferred replica of partition 2 goes down: another leads, and a preferred election is refused.
                int down = preferred[2];
                nodes[down].close();
                nodes[down] = null;
                int p2Leader = awaitLeader(nodes, 2);
                assertNotEquals(down, p2Leader);
                String live = "127.0.0.1:" + nodes[p2Leader].port();
                Run refused = electLeaders(live, "--election-type", "preferred", "--topic", TOPIC, "--partition", "2");
                assertEquals(1, refused.code(), refused.printed());
                assertTrue(refused.printed().contains("Error completing leader election (PREFERRED) for partition: " + TOPIC
                    + "-2: org.apache.kafka.common.errors.PreferredLeaderNotAvailableException: the preferred replica "
                    + down + " of " + TOPIC + "-2 is not in sync with the leader"), refused.printed());
                assertEquals(p2Leader, leaderOf(nodes, 2), "leadership stays where it was");

                // A second node goes down: no majority, no leader, and no unclean election; the message says why.
                int last = -1;
                for (int i = 0; i < NODES; i++) {
                    if (nodes[i] != null && i != p2Leader) {
                        nodes[i].close();
                        nodes[i] = null;
                    } else if (nodes[i] != null) {
                        last = i;
                    }
                }
                Properties lp = new Properties();
                lp.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + nodes[last].port());
                try (Admin alone = Admin.create(lp)) {
                    TopicPartition tp0 = new TopicPartition(TOPIC, 0);
                    long stop = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                    Throwable t;
                    while (true) { // until the remaining replica has noticed it leads no majority
                        try {
                            t = alone.electLeaders(ElectionType.UNCLEAN, Set.of(tp0), new ElectLeadersOptions()
                                .timeoutMs(10_000)).partitions().get(20, TimeUnit.SECONDS).get(tp0).orElse(null);
                        } catch (Exception e) {
                            t = e;
                        }
                        if (t instanceof EligibleLeadersNotAvailableException || System.nanoTime() > stop) {
                            break;
                        }
                        Thread.sleep(200);
                    }
                    assertInstanceOf(EligibleLeadersNotAvailableException.class, t, String.valueOf(t));
                    assertTrue(t.getMessage().startsWith(TOPIC + "-0 has no leader: fewer than a majority of its replicas"),
                        t.getMessage());
                    assertTrue(t.getMessage().contains("an unclean election (which could lose acknowledged records) is"
                        + " never done"), t.getMessage());
                    assertEquals(-1, leaderOf(nodes, 0));
                }
            }
        } finally {
            for (Broker b : nodes) {
                if (b != null) {
                    b.close();
                }
            }
        }
    }
}
