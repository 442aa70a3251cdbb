package dev.isthmus.gateway;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.ToIntFunction;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Kafka Streams 4.3 with {@code processing.guarantee=exactly_once_v2} on a three-node cluster of broker processes,
 * while the leader of an input partition, then the leader of an output partition, then the transaction coordinator
 * of the application's producer (the leader of its {@code __transaction_state} partition) is killed with SIGKILL in
 * the middle of processing and started again: a word count over a fixed input gives exactly the expected counts.
 *
 * <p>The input is four chunks of lines, each produced (idempotent, acks=all) while every node is up and every
 * replica in sync, so the input itself is never produced across a failure: what is checked is the application's
 * read-process-write cycle (consume, a repartition topic, a changelogged count store, produce, offsets committed in
 * the transaction) across the failures. The application is slowed by a pause per input line, so that each chunk
 * takes seconds to process and the kill lands while a transaction is open; the kill comes once the output shows the
 * chunk's first committed counts. The node stays down until its partitions have other leaders, then restarts, and
 * the next round starts once every partition of every topic has all its replicas in sync again.
 *
 * <p>Checked with a read_committed consumer over the output: with the store's cache off, each update of a word's
 * count is one output record, so the committed output of each word is exactly 1, 2, ..., n with n its number of
 * occurrences in the input: no update lost, none committed twice (an aborted transaction's records are there in the
 * log but never read). The input is read back too: each line exactly once. ({@link StreamsExactlyOnceTest} is the
 * one-broker version, with a clean restart.)
 *
 * <p>Found: a partition leader stored a later batch of a producer's transaction ahead of the first one, whose
 * verification with the coordinator had been refused (CONCURRENT_TRANSACTIONS: Streams starts its next transaction
 * while the coordinator still writes the last one's markers); the producer's retry of the first batch was then out of
 * order until the transaction timed out and the producer was fenced, a stall of about a minute per occurrence, seen
 * before any kill. The counts stayed exact (the fenced transactions were aborted). Fixed with Kafka's verification
 * guard (Partition#outOfOrderStart), tested by TransactionsTest.
 *
 * <p>Runtime: 224 s and 243 s in two runs on the shared 2-core VM at load average 45-53 (three broker JVMs, the
 * application and the checks); most of it is the nodes' start, Streams' first assignment and commits slowed by the
 * load, not the kills.
 */
@Timeout(value = 600, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class StreamsExactlyOnceClusterTest {
    private static final String APP = "isthmus-eos-cluster";
    private static final String IN = "eosc-in";
    private static final String OUT = "eosc-out";
    private static final int PARTITIONS = 2;
    private static final List<String> WORDS = List.of("kafka", "isthmus", "raft", "shard", "uring", "batch", "offset",
        "segment", "leader", "follower", "commit", "fetch", "produce", "stream", "table", "count", "word", "topic",
        "partition", "replica", "marker", "epoch", "fence", "abort");
    /** Lines per chunk; four chunks (three with a kill in them, and a last one after every node is back). */
    private static final int CHUNK = 150;
    private static final int CHUNKS = 4;
    /** The pause per input line in the application, so a chunk takes seconds to process (pacing, not timing). */
    private static final long PAUSE_PER_LINE_MS = 20;

    private static final long STARTED_NS = System.nanoTime();

    private static void step(String what) {
        System.out.printf("StreamsExactlyOnceClusterTest +%d ms: %s%n", (System.nanoTime() - STARTED_NS) / 1_000_000, what);
    }

    private static String line(int i) {
        return IntStream.range(0, 5).mapToObj(j -> WORDS.get((i * 7 + j * j * 3 + j * 5) % WORDS.size()))
            .collect(Collectors.joining(" "));
    }

    private static Map<String, Long> expectedCounts(int lines) {
        Map<String, Long> counts = new TreeMap<>();
        for (int i = 0; i < lines; i++) {
            for (String w : line(i).split(" ")) {
                counts.merge(w, 1L, Long::sum);
            }
        }
        return counts;
    }

    private static Admin admin(String bootstrap) {
        return Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
            AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000, AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000));
    }

    private static void produce(String bootstrap, int from, int to) throws Exception {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            for (int i = from; i < to; i++) {
                acks.add(producer.send(new ProducerRecord<>(IN, i % PARTITIONS, "line-" + i, line(i))));
            }
            for (Future<RecordMetadata> f : acks) {
                f.get(60, TimeUnit.SECONDS);
            }
        }
    }

    /**
     * Every committed record of {@code topic} from its beginning to its last stable offset, in order per partition
     * (read_committed).
     */
    private static <V> List<List<ConsumerRecord<String, V>>> readCommitted(String bootstrap, String topic,
                                                                          Class<?> valueDeserializer) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, IsolationLevel.READ_COMMITTED.toString().toLowerCase());
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, valueDeserializer.getName());
        List<List<ConsumerRecord<String, V>>> out = new ArrayList<>();
        try (KafkaConsumer<String, V> c = new KafkaConsumer<>(cp)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < PARTITIONS; p++) {
                tps.add(new TopicPartition(topic, p));
                out.add(new ArrayList<>());
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(30));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
                assertTrue(System.nanoTime() < deadline, "reading " + topic + " up to " + end + " took over 60 s");
                for (ConsumerRecord<String, V> r : c.poll(Duration.ofMillis(200))) {
                    out.get(r.partition()).add(r);
                }
            }
        }
        return out;
    }

    /** The latest committed count of each word. */
    private static Map<String, Long> latestCounts(String bootstrap) {
        Map<String, Long> latest = new TreeMap<>();
        for (List<ConsumerRecord<String, Long>> p : StreamsExactlyOnceClusterTest.<Long>readCommitted(bootstrap, OUT,
                LongDeserializer.class)) {
            for (ConsumerRecord<String, Long> r : p) {
                latest.put(r.key(), r.value());
            }
        }
        return latest;
    }

    private static long total(Map<String, Long> counts) {
        return counts.values().stream().mapToLong(Long::longValue).sum();
    }

    /** Every topic's description (internal topics too), or null while some node cannot answer. */
    private static Map<String, TopicDescription> topics(Admin a) {
        try {
            Collection<String> names = a.listTopics(new org.apache.kafka.clients.admin.ListTopicsOptions()
                .listInternal(true)).names().get(10, TimeUnit.SECONDS);
            return a.describeTopics(names).allTopicNames().get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            return null;
        }
    }

    /** Waits until every partition of every topic has a leader and all its replicas in sync. */
    private static void awaitInSync(BrokerProcesses c, String after) throws Exception {
        step("waiting for every replica in sync (" + after + ")");
        String last = "";
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        try (Admin a = admin(c.bootstrap())) {
            while (true) {
                Map<String, TopicDescription> all = topics(a);
                if (all != null) {
                    List<String> behind = new ArrayList<>();
                    all.forEach((name, d) -> d.partitions().forEach(p -> {
                        if (p.leader() == null || p.isr().size() < p.replicas().size()) {
                            behind.add(name + "-" + p.partition() + " " + p);
                        }
                    }));
                    if (behind.isEmpty() && all.containsKey(IN) && all.containsKey(OUT)) {
                        return;
                    }
                    last = behind.toString();
                }
                if (System.nanoTime() > deadline) {
                    fail("replicas not in sync 120 s " + after + ": " + last + "\n" + c.tail(60));
                }
                Thread.sleep(200); // polling the cluster's metadata
            }
        }
    }

    /** The node leading {@code tp}, as the cluster names it now. */
    private static int leaderOf(BrokerProcesses c, String topic, int partition) throws Exception {
        try (Admin a = admin(c.bootstrap())) {
            TopicPartitionInfo p = a.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS).get(topic)
                .partitions().get(partition);
            assertTrue(p.leader() != null, topic + "-" + partition + " has no leader: " + p);
            return p.leader().id();
        }
    }

    /** The node coordinating the application's (one) transactional id, the leader of its transaction log partition. */
    private static int transactionCoordinator(BrokerProcesses c) throws Exception {
        try (Admin a = admin(c.bootstrap())) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (true) {
                Collection<TransactionListing> ids = a.listTransactions().all().get(30, TimeUnit.SECONDS);
                List<String> ours = ids.stream().map(TransactionListing::transactionalId)
                    .filter(id -> id.startsWith(APP)).toList();
                if (ours.size() == 1) {
                    return a.describeTransactions(ours).description(ours.get(0)).get(30, TimeUnit.SECONDS)
                        .coordinatorId();
                }
                assertTrue(System.nanoTime() < deadline, "the application's transactional ids: " + ours);
                Thread.sleep(200); // polling the coordinators
            }
        }
    }

    /** Waits until the nodes other than {@code killed} name another leader for each of {@code partitions}. */
    private static void awaitLeadersElsewhere(BrokerProcesses c, int killed, List<TopicPartition> partitions)
        throws Exception {
        step("waiting for leaders other than node " + killed + " of " + partitions);
        String last = "";
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        try (Admin a = admin(c.bootstrapExcept(killed))) {
            while (true) {
                try {
                    List<String> topicNames = partitions.stream().map(TopicPartition::topic).distinct().toList();
                    Map<String, TopicDescription> d = a.describeTopics(topicNames).allTopicNames()
                        .get(10, TimeUnit.SECONDS);
                    boolean moved = true;
                    for (TopicPartition tp : partitions) {
                        TopicPartitionInfo p = d.get(tp.topic()).partitions().get(tp.partition());
                        moved &= p.leader() != null && p.leader().id() >= 0 && p.leader().id() != killed;
                    }
                    if (moved) {
                        return;
                    }
                    last = d.toString();
                } catch (Exception e) {
                    last = e.toString();
                }
                if (System.nanoTime() > deadline) {
                    fail("no other leader within 60 s of killing node " + killed + ": " + last + "\n" + c.tail(60));
                }
                Thread.sleep(100); // polling the survivors' metadata
            }
        }
    }

    /** Whether every offset the application committed has reached its partition's end. */
    private static boolean allCommitted(String bootstrap) {
        try (Admin admin = admin(bootstrap)) {
            Map<TopicPartition, OffsetAndMetadata> committed =
                admin.listConsumerGroupOffsets(APP).partitionsToOffsetAndMetadata().get(10, TimeUnit.SECONDS);
            if (committed.keySet().stream().filter(tp -> tp.topic().equals(IN)).count() < PARTITIONS) {
                return false;
            }
            Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
            committed.keySet().forEach(tp -> latest.put(tp, OffsetSpec.latest()));
            var ends = admin.listOffsets(latest).all().get(10, TimeUnit.SECONDS);
            // A committed offset past the last data record may stop before the last transaction's marker.
            return committed.entrySet().stream().allMatch(e -> e.getValue().offset() >= ends.get(e.getKey()).offset() - 1);
        } catch (Exception e) {
            return false; // a node restarting, a coordinator loading
        }
    }

    @Test
    void wordCountShouldGiveExactCountsWhenInputOutputAndTransactionLeadersAreKilled(@TempDir Path dir)
        throws Exception {
        Path cfg = dir.resolve("broker.properties");
        Files.writeString(cfg, """
            transaction.state.log.num.partitions = 2
            """);
        try (BrokerProcesses c = new BrokerProcesses(3, dir, List.of("--config", cfg.toString()))) {
            try {
                run(c, dir);
            } catch (Throwable t) {
                // The nodes' whole output, for the failure report (the test's directory is deleted).
                Path log = Path.of("target", "surefire-reports", "StreamsExactlyOnceClusterTest-nodes.txt");
                Files.createDirectories(log.getParent());
                Files.write(log, c.output());
                System.err.println("the nodes' output is in " + log.toAbsolutePath() + "; its end:\n" + c.tail(100));
                throw t;
            }
        }
    }

    private void run(BrokerProcesses c, Path dir) throws Exception {
        String bootstrap = c.bootstrap();
        try (Admin a = admin(bootstrap)) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
            while (true) { // the nodes register once a majority of the seeds is up
                try {
                    a.createTopics(List.of(new NewTopic(IN, PARTITIONS, (short) 3), new NewTopic(OUT, PARTITIONS,
                        (short) 3))).all().get(30, TimeUnit.SECONDS);
                    break;
                } catch (Exception e) {
                    if (e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException) {
                        break;
                    }
                    assertTrue(System.nanoTime() < deadline, "the cluster did not take replication-factor-3 topics: " + e);
                    Thread.sleep(500);
                }
            }
        }
        ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
        AtomicLong linesSeen = new AtomicLong();
        StreamsBuilder sb = new StreamsBuilder();
        sb.stream(IN, Consumed.with(Serdes.String(), Serdes.String()))
            .peek((k, v) -> {
                linesSeen.incrementAndGet();
                try {
                    Thread.sleep(PAUSE_PER_LINE_MS); // pacing: a chunk takes seconds, so the kills land mid-run
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            })
            .flatMapValues(v -> Arrays.asList(v.split(" ")))
            .groupBy((k, w) -> w, Grouped.with(Serdes.String(), Serdes.String()))
            .count(Materialized.as("word-counts"))
            .toStream()
            .to(OUT, Produced.with(Serdes.String(), Serdes.Long()));
        Properties sp = new Properties();
        sp.put(StreamsConfig.APPLICATION_ID_CONFIG, APP);
        sp.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        sp.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        sp.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "200");
        sp.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "0"); // every count update is an output record
        sp.put(StreamsConfig.STATE_DIR_CONFIG, dir.resolve("state").toString());
        sp.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, "3");
        sp.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, "1");
        sp.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), "10000");
        sp.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), "1000");
        sp.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_POLL_RECORDS_CONFIG), "50");
        KafkaStreams streams = new KafkaStreams(sb.build(), sp);
        streams.setUncaughtExceptionHandler(e -> {
            errors.add(e);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        AtomicBoolean closed = new AtomicBoolean();
        try {
            streams.start();
            // Three rounds, each with a chunk of input and the kill of one leader: of an input partition, of an
            // output partition, and of the application producer's transaction coordinator.
            List<String> targets = List.of("the leader of " + IN + "-0", "the leader of " + OUT + "-0",
                "the transaction coordinator");
            List<ToIntFunction<BrokerProcesses>> victims = List.of(
                x -> unchecked(() -> leaderOf(x, IN, 0)),
                x -> unchecked(() -> leaderOf(x, OUT, 0)),
                x -> unchecked(() -> transactionCoordinator(x)));
            for (int round = 0; round < CHUNKS; round++) {
                awaitInSync(c, round == 0 ? "at the start" : "after the restart");
                long before = total(latestCounts(bootstrap));
                step("producing lines " + round * CHUNK + ".." + (round + 1) * CHUNK + " (counted so far: " + before
                    + " words)");
                produce(bootstrap, round * CHUNK, (round + 1) * CHUNK);
                if (round == CHUNKS - 1) {
                    break;
                }
                // Mid-run: once the output shows this chunk's first committed counts.
                awaitProgress(bootstrap, before, streams, errors);
                int victim = victims.get(round).applyAsInt(c);
                long seen = linesSeen.get();
                step("kill -9 of node " + victim + ", " + targets.get(round) + " (the application has read " + seen
                    + " of " + (round + 1) * CHUNK + " lines)");
                c.kill(victim);
                List<TopicPartition> moved = new ArrayList<>();
                for (int p = 0; p < PARTITIONS; p++) {
                    moved.add(new TopicPartition(IN, p));
                    moved.add(new TopicPartition(OUT, p));
                }
                moved.add(new TopicPartition("__transaction_state", 0));
                moved.add(new TopicPartition("__transaction_state", 1));
                awaitLeadersElsewhere(c, victim, moved);
                step("restarting node " + victim + " (the application has read " + linesSeen.get() + " lines)");
                c.start(victim);
            }
            Map<String, Long> expected = expectedCounts(CHUNKS * CHUNK);
            step("waiting for the exact counts of " + total(expected) + " words");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            Map<String, Long> got = Map.of();
            while (true) {
                if (!errors.isEmpty()) {
                    fail("the Streams application failed: " + errors.peek(), errors.peek());
                }
                got = latestCounts(bootstrap);
                if (got.equals(expected) && allCommitted(bootstrap)) {
                    break;
                }
                if (System.nanoTime() > deadline) {
                    assertEquals(expected, got, "word counts 120 s after the last input (application "
                        + streams.state() + ")");
                    fail("the counts are right but the application did not commit every offset in 120 s");
                }
                Thread.sleep(250); // polling the output
            }
            step("exact counts reached; closing the application");
            streams.close(Duration.ofSeconds(30));
            closed.set(true);
            assertTrue(errors.isEmpty(), "no stream thread died: " + errors);

            // Every update of every word committed exactly once, in order: 1, 2, ..., n.
            Map<String, List<Long>> updates = new TreeMap<>();
            for (List<ConsumerRecord<String, Long>> p : StreamsExactlyOnceClusterTest.<Long>readCommitted(bootstrap, OUT,
                    LongDeserializer.class)) {
                for (ConsumerRecord<String, Long> r : p) {
                    updates.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value());
                }
            }
            assertEquals(expected.keySet(), updates.keySet(), "the words in the output");
            expected.forEach((w, n) -> assertEquals(
                java.util.stream.LongStream.rangeClosed(1, n).boxed().toList(), updates.get(w),
                "the committed updates of '" + w + "' (each count once, in order)"));
            // The fixed input, as stored: each line once.
            Map<String, Integer> lines = new HashMap<>();
            for (List<ConsumerRecord<String, String>> p : StreamsExactlyOnceClusterTest.<String>readCommitted(bootstrap, IN,
                    StringDeserializer.class)) {
                for (ConsumerRecord<String, String> r : p) {
                    lines.merge(r.key(), 1, Integer::sum);
                }
            }
            assertEquals(CHUNKS * CHUNK, lines.size(), "distinct input lines");
            assertTrue(lines.values().stream().allMatch(n -> n == 1), "an input line stored twice: " + lines);
            step("done: " + expected.size() + " words, " + total(expected) + " updates, each committed once");
        } finally {
            if (!closed.get()) {
                streams.close(Duration.ofSeconds(30));
            }
        }
    }

    /** Waits until the committed output counts more words than {@code before}. */
    private static void awaitProgress(String bootstrap, long before, KafkaStreams streams,
                                      ConcurrentLinkedQueue<Throwable> errors) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (total(latestCounts(bootstrap)) <= before) {
            if (!errors.isEmpty()) {
                fail("the Streams application failed: " + errors.peek(), errors.peek());
            }
            if (System.nanoTime() > deadline) {
                fail("no committed output within 90 s of the input (application " + streams.state() + ")");
            }
            Thread.sleep(100); // polling the output
        }
    }

    private interface Call {
        int get() throws Exception;
    }

    private static int unchecked(Call call) {
        try {
            return call.get();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
