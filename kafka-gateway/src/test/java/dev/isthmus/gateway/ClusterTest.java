package dev.isthmus.gateway;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Three brokers as separate processes on 127.0.0.1 forming a cluster from one seed list: a replicated topic
 * (replication factor 3), an idempotent acks=all producer and a consumer group running, and the leader of a
 * partition killed with SIGKILL in the middle. Every acknowledged record must be in the log exactly once
 * (checked by reading every partition from the start afterwards), the live group must have seen every one,
 * and the killed node must rejoin after a restart.
 */
class ClusterTest {
    private static final int NODES = 3;
    private static final String TOPIC = "replicated";

    private record Node(int id, int kafkaPort, int rpcPort, Path dir) {
    }

    private static int freePort() throws Exception {
        return TestPorts.free();
    }

    private static Process start(Node n, String seeds, List<String> log) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "--enable-native-access=ALL-UNNAMED", "-Xmx256m", "-cp", System.getProperty("java.class.path"),
            Main.class.getName(), "start", "--node-id", Integer.toString(n.id), "--listen", "127.0.0.1:" + n.kafkaPort,
            "--rpc-listen", "127.0.0.1:" + n.rpcPort, "--seeds", seeds, "--data-dir", n.dir.toString(), "--smp", "1",
            "--memory", "192M"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        Thread drain = new Thread(() -> {
            try {
                String l;
                while ((l = r.readLine()) != null) {
                    synchronized (log) {
                        log.add("node " + n.id + ": " + l);
                    }
                }
            } catch (Exception ignored) {
                // the process ended
            }
        });
        drain.setDaemon(true);
        drain.start();
        return p;
    }

    @Test
    void shouldLoseNoAcknowledgedRecordAndDuplicateNoneWhenTheLeaderIsKilled(@TempDir Path dir) throws Exception {
        List<Node> nodes = new ArrayList<>();
        StringBuilder seeds = new StringBuilder();
        for (int i = 0; i < NODES; i++) {
            Node n = new Node(i, freePort(), freePort(), dir.resolve("node-" + i));
            nodes.add(n);
            seeds.append(i == 0 ? "" : ",").append(i).append("@127.0.0.1:").append(n.rpcPort);
        }
        List<String> log = new ArrayList<>();
        Process[] procs = new Process[NODES];
        String bootstrap = String.join(",", nodes.stream().map(n -> "127.0.0.1:" + n.kafkaPort).toList());
        try {
            for (Node n : nodes) {
                procs[n.id] = start(n, seeds.toString(), log);
            }
            Properties ap = new Properties();
            ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            try (Admin admin = Admin.create(ap)) {
                // The brokers register with the controller once a majority of seeds is up: retry until RF 3 fits.
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
                while (true) {
                    try {
                        admin.createTopics(List.of(new NewTopic(TOPIC, 3, (short) 3))).all().get(30, TimeUnit.SECONDS);
                        break;
                    } catch (Exception e) {
                        if (e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException) {
                            break; // an earlier attempt's answer timed out on a loaded machine, yet the topic was made
                        }
                        if (System.nanoTime() > deadline) {
                            throw new AssertionError("the cluster did not take a replication-factor-3 topic: " + e
                                + "\n" + String.join("\n", tail(log)), e);
                        }
                        Thread.sleep(500);
                    }
                }
                TopicDescription d = admin.describeTopics(List.of(TOPIC)).allTopicNames().get().get(TOPIC);
                assertEquals(3, d.partitions().size());
                d.partitions().forEach(p -> assertEquals(3, p.replicas().size(), p.toString()));

                Set<String> acked = ConcurrentHashMap.newKeySet();
                Set<String> seen = ConcurrentHashMap.newKeySet();
                AtomicInteger sendFailures = new AtomicInteger();
                AtomicBoolean producing = new AtomicBoolean(true);
                int total = 3000;
                Thread consumerThread = new Thread(() -> consume(bootstrap, seen, producing, acked));
                consumerThread.start();

                Properties pp = new Properties();
                pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
                pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
                pp.put(ProducerConfig.ACKS_CONFIG, "all");
                pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
                pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "120000");
                pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
                pp.put(ProducerConfig.LINGER_MS_CONFIG, "2");
                int killed = -1;
                try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                    for (int i = 0; i < total; i++) {
                        String v = "v" + i;
                        producer.send(new ProducerRecord<>(TOPIC, Integer.toString(i), v), (md, e) -> {
                            if (e == null) {
                                acked.add(v);
                            } else {
                                sendFailures.incrementAndGet();
                            }
                        });
                        if (i == total / 3) {
                            producer.flush();
                            int leader = admin.describeTopics(List.of(TOPIC)).allTopicNames().get().get(TOPIC)
                                .partitions().get(0).leader().id();
                            killed = leader;
                            procs[leader].destroyForcibly().waitFor(30, TimeUnit.SECONDS); // SIGKILL
                        }
                        if (i % 100 == 0) {
                            Thread.sleep(20);
                        }
                    }
                    producer.flush();
                }
                assertTrue(killed >= 0);
                // Every send either succeeded or failed visibly; with a 120 s delivery timeout none should fail.
                assertEquals(0, sendFailures.get(), "sends failed");
                assertEquals(total, acked.size());

                // The killed node comes back and catches up.
                procs[killed] = start(nodes.get(killed), seeds.toString(), log);

                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
                while (!seen.containsAll(acked) && System.nanoTime() < until) {
                    Thread.sleep(200);
                }
                producing.set(false);
                consumerThread.join(60_000);
                Set<String> missingLive = new HashSet<>(acked);
                missingLive.removeAll(seen);
                assertTrue(missingLive.isEmpty(), "the group consumer missed " + missingLive.size() + " acknowledged records");

                // The log: every acknowledged record exactly once, read from the start of every partition.
                Map<String, Integer> counts = readAll(bootstrap);
                Set<String> missing = new HashSet<>(acked);
                missing.removeAll(counts.keySet());
                assertTrue(missing.isEmpty(), "lost acknowledged records: " + missing.size());
                List<String> dups = counts.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey).toList();
                assertTrue(dups.isEmpty(), "duplicated records: " + dups);
                assertEquals(total, counts.size());
            }
        } catch (Throwable t) {
            System.err.println(String.join("\n", tail(log)));
            throw t;
        } finally {
            for (Process p : procs) {
                if (p != null) {
                    p.destroyForcibly();
                    p.waitFor(30, TimeUnit.SECONDS);
                }
            }
        }
    }

    private static List<String> tail(List<String> log) {
        synchronized (log) {
            return new ArrayList<>(log.subList(Math.max(0, log.size() - 80), log.size()));
        }
    }

    private static void consume(String bootstrap, Set<String> seen, AtomicBoolean producing, Set<String> acked) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, "cluster-readers");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            c.subscribe(List.of(TOPIC));
            while (producing.get()) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    seen.add(r.value());
                }
                try {
                    c.commitSync(Duration.ofSeconds(5));
                } catch (Exception e) {
                    // a coordinator moving: the next poll finds the new one
                }
            }
        } catch (Exception e) {
            fail("the group consumer failed: " + e);
        }
    }

    private static Map<String, Integer> readAll(String bootstrap) throws Exception {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        Map<String, Integer> counts = new HashMap<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            List<TopicPartition> tps = List.of(new TopicPartition(TOPIC, 0), new TopicPartition(TOPIC, 1),
                new TopicPartition(TOPIC, 2));
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> ends = c.endOffsets(tps, Duration.ofSeconds(30));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    counts.merge(r.value(), 1, Integer::sum);
                }
                boolean done = true;
                for (TopicPartition tp : tps) {
                    done &= c.position(tp) >= ends.get(tp);
                }
                if (done) {
                    break;
                }
            }
        }
        return counts;
    }
}
