package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
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
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Kafka Streams 4.3, at-least-once, against a real broker that is restarted once while the application runs: a
 * word count over a fixed input (a repartition topic and a changelogged count store on the broker) gives the
 * exact expected counts.
 *
 * <p>At-least-once allows a record processed but not yet committed to be processed again after a failure, which
 * would count its words twice. So the broker is restarted (same data directory, same port) at a point where the
 * application has committed everything it processed: the first half of the input is counted and every committed
 * offset of the application's group has reached its partition's end. The restart drops every connection and every
 * group member (Isthmus keeps committed offsets across a restart, not group membership, unlike Kafka), so the
 * application reconnects, learns it was forgotten, loses its tasks and joins again; the second half of the input is
 * produced once it runs again, and the final counts must be exact: nothing lost, nothing counted twice. (Until the
 * restarted leader's first commit its high watermark lagged the log end and Fetch answered OFFSET_OUT_OF_RANGE at
 * the application's valid positions: it reset to the earliest offset and counted a partition again; this test
 * found that, 2 runs in 24.)
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(180)
class StreamsTest {
    private static final String APP = "isthmus-wordcount";
    private static final String IN = "wc-in";
    private static final String OUT = "wc-out";
    private static final List<String> WORDS = List.of("kafka", "isthmus", "raft", "shard", "uring", "batch", "offset",
        "segment", "leader", "follower", "commit", "fetch", "produce", "stream", "table", "count", "word", "topic",
        "partition", "replica");
    private static final int LINES = 400;

    private static String line(int i) {
        return IntStream.range(0, 5).mapToObj(j -> WORDS.get((i * 7 + j * j * 3 + j) % WORDS.size()))
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

    private static BrokerConfig config(Path data, int port) {
        return BrokerConfig.defaults().toBuilder().port(port).dataDir(data).shards(2).memoryBytes(256L << 20)
            .pin(false).groupInitialRebalanceDelayMs(0).build();
    }

    private static Properties client(int port) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + port);
        return p;
    }

    private static void produce(int port, int from, int to) throws Exception {
        Properties pp = client(port);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            for (int i = from; i < to; i++) {
                acks.add(producer.send(new ProducerRecord<>(IN, "line-" + i, line(i))));
            }
            for (Future<RecordMetadata> f : acks) {
                f.get();
            }
        }
    }

    /** The latest count of every word in the output topic, read from its beginning to its end. */
    private static Map<String, Long> latestCounts(int port) {
        Properties cp = client(port);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, LongDeserializer.class.getName());
        Map<String, Long> latest = new TreeMap<>();
        try (KafkaConsumer<String, Long> c = new KafkaConsumer<>(cp)) {
            List<TopicPartition> tps = List.of(new TopicPartition(OUT, 0), new TopicPartition(OUT, 1));
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps);
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp)) && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(100))) {
                    latest.put(r.key(), r.value());
                }
            }
        }
        return latest;
    }

    /** Whether every offset the application committed has reached its partition's end (nothing left to commit). */
    private static boolean allCommitted(int port) throws Exception {
        try (Admin admin = Admin.create(client(port))) {
            Map<TopicPartition, OffsetAndMetadata> committed =
                admin.listConsumerGroupOffsets(APP).partitionsToOffsetAndMetadata().get();
            if (committed.keySet().stream().filter(tp -> tp.topic().equals(IN)).count() < 2
                || committed.keySet().stream().noneMatch(tp -> tp.topic().endsWith("-repartition"))) {
                return false;
            }
            Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
            committed.keySet().forEach(tp -> latest.put(tp, OffsetSpec.latest()));
            var ends = admin.listOffsets(latest).all().get();
            return committed.entrySet().stream().allMatch(e -> e.getValue().offset() >= ends.get(e.getKey()).offset());
        }
    }

    /** Polls until the output holds {@code expected} and the application has committed everything. */
    private static void awaitCountedAndCommitted(int port, Map<String, Long> expected, KafkaStreams streams,
                                                 ConcurrentLinkedQueue<Throwable> errors) throws Exception {
        Map<String, Long> got = Map.of();
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (System.nanoTime() < deadline) {
            if (!errors.isEmpty()) {
                fail("the Streams application failed: " + errors.peek(), errors.peek());
            }
            got = latestCounts(port);
            if (got.equals(expected) && allCommitted(port)) {
                return;
            }
            Thread.sleep(200); // polling the output and the group's offsets, not timing
        }
        assertEquals(expected, got, "word counts (state " + streams.state() + ")");
        fail("the counts are right but the application did not commit every offset in time");
    }

    /**
     * Polls until the application's group is Stable again with its one member and the application runs: the
     * restarted broker kept the committed offsets but not the group's members, so the member learns it was
     * forgotten (UNKNOWN_MEMBER_ID), loses its tasks and joins again.
     */
    private static void awaitRejoined(int port, KafkaStreams streams, ConcurrentLinkedQueue<Throwable> errors)
        throws Exception {
        try (Admin admin = Admin.create(client(port))) {
            long deadline = System.nanoTime() + 60_000_000_000L;
            String seen = "";
            while (System.nanoTime() < deadline) {
                if (!errors.isEmpty()) {
                    fail("the Streams application failed: " + errors.peek(), errors.peek());
                }
                try {
                    ConsumerGroupDescription g = admin.describeConsumerGroups(List.of(APP)).all().get().get(APP);
                    seen = g.groupState() + " with " + g.members().size() + " member(s), application " + streams.state();
                    if (g.groupState() == GroupState.STABLE && g.members().size() == 1
                        && streams.state() == KafkaStreams.State.RUNNING) {
                        return;
                    }
                } catch (java.util.concurrent.ExecutionException e) {
                    seen = e.getCause().toString(); // the coordinator may still be loading the group
                }
                Thread.sleep(200); // polling the group, not timing
            }
            fail("the application did not rejoin its group after the restart: " + seen);
        }
    }

    @Test
    void wordCountShouldGiveExactCountsAcrossABrokerRestart(@TempDir Path dir) throws Exception {
        Path data = dir.resolve("data");
        Broker b = Broker.start(config(data, 0));
        int port = b.port();
        ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
        KafkaStreams streams = null;
        try {
            b.createTopicBlocking(IN, 2);
            b.createTopicBlocking(OUT, 2);
            StreamsBuilder sb = new StreamsBuilder();
            sb.stream(IN, Consumed.with(Serdes.String(), Serdes.String()))
                .flatMapValues(v -> Arrays.asList(v.split(" ")))
                .groupBy((k, w) -> w, Grouped.with(Serdes.String(), Serdes.String()))
                .count(Materialized.as("word-counts"))
                .toStream()
                .to(OUT, Produced.with(Serdes.String(), Serdes.Long()));
            Properties sp = new Properties();
            sp.put(StreamsConfig.APPLICATION_ID_CONFIG, APP);
            sp.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + port);
            sp.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
            sp.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "100");
            sp.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "0");
            sp.put(StreamsConfig.STATE_DIR_CONFIG, dir.resolve("state").toString());
            sp.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, "1");
            sp.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, "1");
            sp.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), "10000");
            sp.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), "1000");
            streams = new KafkaStreams(sb.build(), sp);
            streams.setUncaughtExceptionHandler(e -> {
                errors.add(e);
                return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
            });
            streams.start();

            produce(port, 0, LINES / 2);
            awaitCountedAndCommitted(port, expectedCounts(LINES / 2), streams, errors);

            // The restart: same data directory, same port; the application keeps running and reconnects.
            b.close();
            b = Broker.start(config(data, port));
            awaitRejoined(port, streams, errors);

            produce(port, LINES / 2, LINES);
            awaitCountedAndCommitted(port, expectedCounts(LINES), streams, errors);
            assertEquals(expectedCounts(LINES), latestCounts(port), "exact counts once everything is committed");
            assertTrue(streams.state().isRunningOrRebalancing(), "the application runs: " + streams.state());
            assertTrue(errors.isEmpty(), "no stream thread died: " + errors);
        } finally {
            if (streams != null) {
                streams.close(Duration.ofSeconds(30));
            }
            OtherClientsTest.awaitIdle(b);
            b.close();
        }
    }
}
