package dev.isthmus.gateway;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.NotEnoughReplicasException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * min.insync.replicas on a three-node cluster of brokers in this JVM (each its own shard group, arenas, Raft
 * server and listeners, talking over loopback): with every node up acks=all succeeds; with one follower stopped a
 * topic asking for 3 in-sync replicas answers NOT_ENOUGH_REPLICAS to acks=all and appends nothing, while acks=1
 * still succeeds and a topic asking for 2 is served; once the node is back, acks=all succeeds again. A value
 * above the replication factor is accepted, as in Kafka, and makes every acks=all produce fail. The same cluster
 * replicates a 5 MiB record (a Raft entry far larger than the default batch).
 */
@Timeout(300)
class MinInsyncReplicasTest {
    private static final int NODES = 3;

    private static int freePort() throws Exception {
        return TestPorts.free();
    }

    private static Properties clientProps(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        return p;
    }

    /** A producer that reports the broker's answer of its first attempt (no retries, so no idempotence). */
    private static KafkaProducer<byte[], byte[]> producer(String bootstrap, String acks) {
        Properties p = clientProps(bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, acks);
        p.put(ProducerConfig.RETRIES_CONFIG, "0");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(8 << 20));
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "20000");
        return new KafkaProducer<>(p);
    }

    private static long endOffset(Admin admin, TopicPartition tp) throws Exception {
        return admin.listOffsets(Map.of(tp, OffsetSpec.latest())).all().get().get(tp).offset();
    }

    @Test
    void shouldRefuseAcksAllBelowMinInsyncReplicasAndServeAcksOne(@TempDir Path dir) throws Exception {
        int[] rpc = new int[NODES];
        List<String> seeds = new ArrayList<>();
        for (int i = 0; i < NODES; i++) {
            rpc[i] = freePort();
            seeds.add(i + "@127.0.0.1:" + rpc[i]);
        }
        BrokerConfig[] configs = new BrokerConfig[NODES];
        Broker[] brokers = new Broker[NODES];
        try {
            for (int i = 0; i < NODES; i++) {
                configs[i] = BrokerConfig.defaults().toBuilder().nodeId(i).port(freePort()).rpc("127.0.0.1", rpc[i])
                    .seeds(seeds).dataDir(dir.resolve("node-" + i)).shards(1).memoryBytes(192L << 20).pin(false)
                    .build();
            }
            for (int i = 0; i < NODES; i++) {
                brokers[i] = Broker.start(configs[i]);
            }
            StringBuilder bootstrap = new StringBuilder();
            for (Broker b : brokers) {
                bootstrap.append(bootstrap.isEmpty() ? "" : ",").append("127.0.0.1:").append(b.port());
            }
            try (Admin admin = Admin.create(clientProps(bootstrap.toString()))) {
                createWhenTheClusterIsUp(admin, List.of(
                    new NewTopic("isr3", 1, (short) 3).configs(Map.of("min.insync.replicas", "3",
                        "max.message.bytes", Integer.toString(6 << 20))),
                    new NewTopic("isr2", 1, (short) 3).configs(Map.of("min.insync.replicas", "2")),
                    new NewTopic("isr4", 1, (short) 3).configs(Map.of("min.insync.replicas", "4"))));
                TopicPartition isr3 = new TopicPartition("isr3", 0);
                TopicPartition isr2 = new TopicPartition("isr2", 0);
                TopicPartition isr4 = new TopicPartition("isr4", 0);
                String bs = bootstrap.toString();
                try (KafkaProducer<byte[], byte[]> all = producer(bs, "all");
                     KafkaProducer<byte[], byte[]> one = producer(bs, "1")) {
                    // Every node up: acks=all succeeds (a 5 MiB record too: one Raft entry replicated to both
                    // followers), except where min.insync.replicas exceeds the replication factor.
                    all.send(new ProducerRecord<>("isr3", 0, null, "all up".getBytes())).get();
                    byte[] big = new byte[5 << 20];
                    Arrays.fill(big, (byte) 7);
                    all.send(new ProducerRecord<>("isr3", 0, null, big)).get();
                    all.send(new ProducerRecord<>("isr2", 0, null, "all up".getBytes())).get();
                    assertNotEnoughReplicas(all, admin, isr4, "4 asked of 3 replicas");
                    one.send(new ProducerRecord<>("isr4", 0, null, "acks=1".getBytes())).get();

                    // Stop a follower of isr3 (also of isr2: all three topics place a replica on every node).
                    int leader = leaderOf(admin, "isr3");
                    int stopped = (leader + 1) % NODES;
                    if (stopped == leaderOf(admin, "isr2")) {
                        stopped = (leader + 2) % NODES;
                    }
                    brokers[stopped].close();
                    brokers[stopped] = null;
                    // Once the leader has not heard from it for an election timeout, acks=all is refused.
                    assertNotEnoughReplicas(all, admin, isr3, "node " + stopped + " stopped");
                    one.send(new ProducerRecord<>("isr3", 0, null, "acks=1".getBytes())).get();
                    all.send(new ProducerRecord<>("isr2", 0, null, "two of three".getBytes())).get();

                    // Back: acks=all is served again once the leader hears from it.
                    brokers[stopped] = Broker.start(configs[stopped]);
                    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                    while (true) {
                        try {
                            all.send(new ProducerRecord<>("isr3", 0, null, "all back".getBytes())).get();
                            break;
                        } catch (ExecutionException e) {
                            if (System.nanoTime() > deadline) {
                                throw e;
                            }
                            Thread.sleep(200);
                        }
                    }
                }
                // The records acknowledged are there, in order, the refused ones are not.
                Properties cp = clientProps(bs);
                cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
                try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(cp)) {
                    c.assign(List.of(isr3));
                    List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
                    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                    long end = endOffset(admin, isr3);
                    while (got.size() < end && System.nanoTime() < deadline) {
                        c.poll(Duration.ofMillis(200)).forEach(got::add);
                    }
                    List<String> small = got.stream().filter(r -> r.value().length < 100).map(r -> new String(r.value()))
                        .toList();
                    assertTrue(small.get(0).equals("all up") && small.contains("acks=1")
                        && small.get(small.size() - 1).equals("all back"), small.toString());
                    assertEquals(1, got.stream().filter(r -> r.value().length == 5 << 20).count());
                }
            }
        } finally {
            for (Broker b : brokers) {
                if (b != null) {
                    b.close();
                }
            }
        }
    }

    /**
     * Sends acks=all records until one is refused with NOT_ENOUGH_REPLICAS (the leader notices a stopped node
     * within an election timeout), and checks that the refused one appended nothing.
     */
    private static void assertNotEnoughReplicas(KafkaProducer<byte[], byte[]> producer, Admin admin, TopicPartition tp,
                                                String why) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            long before = endOffset(admin, tp);
            try {
                producer.send(new ProducerRecord<>(tp.topic(), tp.partition(), null, why.getBytes())).get();
            } catch (ExecutionException e) {
                if (e.getCause() instanceof NotEnoughReplicasException refused) {
                    assertTrue(refused.getMessage().contains("min.insync.replicas"), refused.getMessage());
                    assertEquals(before, endOffset(admin, tp), "a refused produce appends nothing");
                    return;
                }
                if (System.nanoTime() > deadline) {
                    throw e;
                }
            }
            if (System.nanoTime() > deadline) {
                fail("acks=all was never refused on " + tp + " (" + why + ")");
            }
            Thread.sleep(100);
        }
    }

    private static int leaderOf(Admin admin, String topic) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            if (d.partitions().get(0).leader() != null && d.partitions().get(0).leader().id() >= 0) {
                return d.partitions().get(0).leader().id();
            }
            if (System.nanoTime() > deadline) {
                fail(topic + " has no leader");
            }
            Thread.sleep(100);
        }
    }

    private static void createWhenTheClusterIsUp(Admin admin, List<NewTopic> topics) throws Exception {
        // The brokers register with the controller once a majority of seeds is up: retry until RF 3 fits.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        for (NewTopic t : topics) {
            while (true) {
                try {
                    admin.createTopics(List.of(t)).all().get(30, TimeUnit.SECONDS);
                    break;
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException) {
                        break;
                    }
                    if (System.nanoTime() > deadline) {
                        throw e;
                    }
                    Thread.sleep(500);
                }
            }
            ConfigEntry e = admin.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.TOPIC, t.name())))
                .all().get().values().iterator().next().get("min.insync.replicas");
            assertNotNull(e);
            assertEquals(t.configs().get("min.insync.replicas"), e.value());
            leaderOf(admin, t.name());
        }
    }
}
