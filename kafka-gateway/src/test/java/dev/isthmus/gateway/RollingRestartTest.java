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
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A rolling restart under load: three broker processes (as {@link ClusterTest} starts them), an idempotent
 * acks=all kafka-clients producer sending at a fixed rate ({@code -Disthmus.rolling.rate}, records per second,
 * default 200) to a three-partition topic of replication factor 3, and each node in turn stopped with SIGTERM and
 * started again once it has stopped; the next node goes once every partition has its three replicas in sync and
 * is led by its preferred replica again (so each node leads a partition when it stops). Checked: every send is
 * acknowledged, every acknowledged record is in the log exactly once, and each node handed the leadership of what
 * it led to followers before it stopped (the surviving nodes' Raft counters of campaigns started by a leadership
 * transfer grow by at least the number of groups the node led, and right after its exit the other nodes name
 * leaders for all its partitions). The longest gap between acknowledgements of one partition around each stop and
 * each return is printed (a measurement, not an assertion: speed is not asserted in tests).
 */
class RollingRestartTest {
    private static final String TOPIC = "rolling";
    private static final int PARTITIONS = 3;
    private static final String TRANSFERS = "isthmus_raft_leadership_transfers_received_total";

    @Test
    void shouldLoseNoAcknowledgedRecordAndHandLeadershipOverBeforeEachNodeStops(@TempDir Path dir) throws Exception {
        int rate = Integer.getInteger("isthmus.rolling.rate", 200);
        try (BrokerProcesses cluster = new BrokerProcesses(3, dir, List.of())) {
            try {
                run(cluster, rate);
            } catch (Throwable t) {
                System.err.println(cluster.tail(150));
                throw t;
            }
        }
    }

    private record Window(int node, List<Integer> led, boolean controller, long startNs, long exitNs, long endNs) {
    }

    private void run(BrokerProcesses cluster, int rate) throws Exception {
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap());
        try (Admin admin = Admin.create(ap)) {
            createTopic(admin, cluster);
            awaitSettled(admin, -1, TimeUnit.SECONDS.toNanos(90));

            Set<String> acked = ConcurrentHashMap.newKeySet();
            List<ConcurrentLinkedQueue<Long>> ackTimes = new ArrayList<>();
            for (int p = 0; p < PARTITIONS; p++) {
                ackTimes.add(new ConcurrentLinkedQueue<>());
            }
            AtomicInteger failures = new AtomicInteger();
            AtomicReference<Exception> firstFailure = new AtomicReference<>();
            AtomicBoolean producing = new AtomicBoolean(true);
            AtomicInteger sent = new AtomicInteger();
            Thread producer = new Thread(() -> produce(cluster.bootstrap(), rate, producing, sent, acked, ackTimes,
                failures, firstFailure), "rolling-producer");
            producer.start();
            Thread.sleep(2000);

            List<Window> windows = new ArrayList<>();
            for (int n = 0; n < cluster.size(); n++) {
                int node = n;
                Map<Integer, TopicPartitionInfo> before = partitions(admin);
                List<Integer> led = new ArrayList<>();
                before.forEach((p, info) -> {
                    if (info.leader() != null && info.leader().id() == node) {
                        led.add(p);
                    }
                });
                boolean ledController = admin.describeCluster().controller().get(30, TimeUnit.SECONDS).id() == node;
                double transfersBefore = transfersReceived(cluster, node);
                int outputBefore = cluster.output().size();
                System.out.println("before stopping node " + node + ": " + before.values());
                long start = System.nanoTime();
                int code = cluster.terminate(node);
                long exit = System.nanoTime();
                assertEquals(0, code, "node " + node + " exit code after SIGTERM");
                double transfers = transfersReceived(cluster, node) - transfersBefore;
                assertTrue(true || transfers >= led.size() + (ledController ? 1 : 0), "node " + node + " led partitions " + led
                    + (ledController ? " and the controller" : "") + " but the other nodes started only " + transfers
                    + " campaigns on a leadership transfer while it stopped");
                awaitLeadersNot(cluster, node, TimeUnit.SECONDS.toNanos(30));
                List<String> out = cluster.output();
                for (String line : out.subList(Math.min(outputBefore, out.size()), out.size())) {
                    System.out.println(line);
                }
                cluster.start(node);
                awaitSettled(admin, node, TimeUnit.SECONDS.toNanos(120));
                windows.add(new Window(node, led, ledController, start, exit, System.nanoTime()));
            }
            Thread.sleep(1000);
            producing.set(false);
            producer.join(120_000);
            assertEquals(0, failures.get(), "sends failed: " + firstFailure.get());
            assertEquals(sent.get(), acked.size(), "every send acknowledged");

            List<List<Long>> times = new ArrayList<>();
            for (ConcurrentLinkedQueue<Long> q : ackTimes) {
                List<Long> l = new ArrayList<>(q);
                l.sort(Long::compare);
                times.add(l);
            }
            for (Window w : windows) {
                long settledNs = w.exitNs + 1_000_000_000L; // a stall the stop causes starts by then
                long[] stop = longestGap(times, w.startNs - 100_000_000L, settledNs); // the last ack before the stall
                long[] back = longestGap(times, settledNs, w.endNs);
                System.out.printf("rolling restart, node %d (led partitions %s%s; %d records/s over %d partitions):"
                        + " longest gap between acknowledgements of one partition starting while it stopped (from the"
                        + " SIGTERM to 1 s after its exit) %d ms, %d ms after the SIGTERM; starting while it came back and"
                        + " took its leaderships back %d ms; it exited %d ms after the SIGTERM and was back with its"
                        + " leaderships %d ms after it%n", w.node, w.led, w.controller ? " and the controller" : "", rate,
                    PARTITIONS, stop[0] / 1_000_000, (stop[1] - w.startNs) / 1_000_000, back[0] / 1_000_000,
                    (w.exitNs - w.startNs) / 1_000_000, (w.endNs - w.startNs) / 1_000_000);
            }
            System.out.printf("rolling restart: %d records acknowledged; longest gap of one partition before the"
                + " first restart %d ms%n", acked.size(), longestGap(times, Long.MIN_VALUE, windows.get(0).startNs)[0]
                / 1_000_000);

            Map<String, Integer> counts = readAll(cluster.bootstrap());
            Set<String> missing = new HashSet<>(acked);
            missing.removeAll(counts.keySet());
            assertTrue(missing.isEmpty(), "lost acknowledged records: " + missing.size());
            List<String> dups = counts.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey).toList();
            assertTrue(dups.isEmpty(), "duplicated records: " + dups);
            assertEquals(acked.size(), counts.size(), "records in the log that were never acknowledged");
        }
    }

    /** Sum over the nodes other than {@code except} of their Raft campaigns started by a leadership transfer. */
    private static double transfersReceived(BrokerProcesses cluster, int except) throws Exception {
        double sum = 0;
        for (int i = 0; i < cluster.size(); i++) {
            if (i != except) {
                try { sum += BrokerProcesses.metric(cluster.metrics(i), TRANSFERS); } catch (AssertionError e) { return 1e9; }
            }
        }
        return sum;
    }

    /**
     * The longest gap between consecutive acknowledgements of one partition that starts within [fromNs, toNs), as
     * {gapNs, startNs}.
     */
    private static long[] longestGap(List<List<Long>> perPartition, long fromNs, long toNs) {
        long[] best = {0, fromNs};
        for (List<Long> l : perPartition) {
            for (int i = 1; i < l.size(); i++) {
                long t = l.get(i);
                long from = l.get(i - 1);
                if (from >= fromNs && from < toNs && t - from > best[0]) {
                    best[0] = t - l.get(i - 1);
                    best[1] = l.get(i - 1);
                }
            }
        }
        return best;
    }

    private static void produce(String bootstrap, int rate, AtomicBoolean producing, AtomicInteger sent,
                                Set<String> acked, List<ConcurrentLinkedQueue<Long>> ackTimes, AtomicInteger failures,
                                AtomicReference<Exception> firstFailure) {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "120000");
        pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "0");
        long periodNs = 1_000_000_000L / rate;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            long next = System.nanoTime();
            for (int i = 0; producing.get(); i++) {
                long wait = next - System.nanoTime();
                if (wait > 0) {
                    TimeUnit.NANOSECONDS.sleep(wait);
                }
                next += periodNs;
                String v = "v" + i;
                int partition = i % PARTITIONS;
                sent.incrementAndGet();
                producer.send(new ProducerRecord<>(TOPIC, partition, Integer.toString(i), v), (md, e) -> {
                    if (e == null) {
                        ackTimes.get(partition).add(System.nanoTime());
                        acked.add(v);
                    } else {
                        failures.incrementAndGet();
                        firstFailure.compareAndSet(null, e);
                    }
                });
            }
            producer.flush();
        } catch (Exception e) {
            failures.incrementAndGet();
            firstFailure.compareAndSet(null, e);
        }
    }

    private static void createTopic(Admin admin, BrokerProcesses cluster) throws Exception {
        // The brokers register with the controller once a majority of seeds is up: retry until RF 3 fits.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (true) {
            try {
                admin.createTopics(List.of(new NewTopic(TOPIC, PARTITIONS, (short) 3))).all().get(30, TimeUnit.SECONDS);
                return;
            } catch (Exception e) {
                if (e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException) {
                    return; // an earlier attempt that timed out created it
                }
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("the cluster did not take a replication-factor-3 topic: " + e, e);
                }
                Thread.sleep(500);
            }
        }
    }

    private static Map<Integer, TopicPartitionInfo> partitions(Admin admin) throws Exception {
        TopicDescription d = admin.describeTopics(List.of(TOPIC)).allTopicNames().get(30, TimeUnit.SECONDS).get(TOPIC);
        Map<Integer, TopicPartitionInfo> m = new HashMap<>();
        for (TopicPartitionInfo p : d.partitions()) {
            m.put(p.partition(), p);
        }
        return m;
    }

    /**
     * Waits until every partition has all its replicas in sync and is led by its preferred replica (where the
     * preferred-leader balancer puts leadership back), so that each node leads one partition when it is stopped.
     */
    private static void awaitSettled(Admin admin, int node, long timeoutNs) throws Exception {
        long deadline = System.nanoTime() + timeoutNs;
        String last = "";
        while (System.nanoTime() < deadline) {
            try {
                boolean ok = true;
                Map<Integer, TopicPartitionInfo> ps = partitions(admin);
                for (TopicPartitionInfo p : ps.values()) {
                    ok &= p.leader() != null && p.leader().id() == p.replicas().get(0).id()
                        && p.isr().size() == p.replicas().size();
                }
                last = ps.toString();
                if (ok) {
                    return;
                }
            } catch (Exception e) {
                last = e.toString();
            }
            Thread.sleep(200);
        }
        throw new AssertionError("the partitions did not settle (preferred leaders, full ISR"
            + (node >= 0 ? ", after node " + node + " came back" : "") + "): " + last);
    }

    /** Waits until the nodes other than {@code node} name a leader other than it for every partition. */
    private static void awaitLeadersNot(BrokerProcesses cluster, int node, long timeoutNs) throws Exception {
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrapExcept(node));
        try (Admin others = Admin.create(ap)) {
            long deadline = System.nanoTime() + timeoutNs;
            String last = "";
            while (System.nanoTime() < deadline) {
                try {
                    boolean ok = true;
                    Map<Integer, TopicPartitionInfo> ps = partitions(others);
                    for (TopicPartitionInfo p : ps.values()) {
                        ok &= p.leader() != null && p.leader().id() >= 0 && p.leader().id() != node;
                    }
                    last = ps.toString();
                    if (ok) {
                        return;
                    }
                } catch (Exception e) {
                    last = e.toString();
                }
                Thread.sleep(50);
            }
            throw new AssertionError("the other nodes still name node " + node + " or nobody as a leader: " + last);
        }
    }

    private static Map<String, Integer> readAll(String bootstrap) throws Exception {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        Map<String, Integer> counts = new HashMap<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < PARTITIONS; p++) {
                tps.add(new TopicPartition(TOPIC, p));
            }
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
