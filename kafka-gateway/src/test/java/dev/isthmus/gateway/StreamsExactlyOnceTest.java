package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.txn.TxnConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.IsolationLevel;
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
 * Kafka Streams 4.3 with {@code processing.guarantee=exactly_once_v2} against a real broker restarted while the
 * application is processing: a word count over a fixed input (a repartition topic, a changelogged count store, the
 * output, each written in the stream thread's transactions with the input offsets committed in them by
 * TxnOffsetCommit) read back by a READ_COMMITTED consumer gives the exact expected counts. Unlike at-least-once
 * ({@link StreamsTest}), the restart may come at any point: what the application processed but did not commit is
 * aborted and processed again, never counted twice.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(240)
class StreamsExactlyOnceTest {
    private static final String APP = "isthmus-wordcount-eos";
    private static final String IN = "eos-in";
    private static final String OUT = "eos-out";
    private static final List<String> WORDS = List.of("kafka", "isthmus", "raft", "shard", "uring", "batch", "offset",
        "segment", "leader", "follower", "commit", "fetch", "produce", "stream", "table", "count", "word", "topic",
        "partition", "replica");
    private static final int LINES = 600;

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
            .pin(false).groupInitialRebalanceDelayMs(0)
            .transactionSetting(TxnConfig.STATE_LOG_PARTITIONS, "4")
            .transactionSetting(TxnConfig.ABORT_INTERVAL_MS, "500").build();
    }

    private static void produce(int port, int from, int to) throws Exception {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + port);
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

    /** The latest committed count of every word in the output topic (READ_COMMITTED, beginning to end). */
    private static Map<String, Long> latestCounts(int port) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + port);
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, IsolationLevel.READ_COMMITTED.toString());
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, LongDeserializer.class.getName());
        Map<String, Long> latest = new TreeMap<>();
        try (KafkaConsumer<String, Long> c = new KafkaConsumer<>(cp)) {
            List<TopicPartition> tps = List.of(new TopicPartition(OUT, 0), new TopicPartition(OUT, 1));
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps); // the last stable offsets (READ_COMMITTED)
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp)) && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(100))) {
                    latest.put(r.key(), r.value());
                }
            }
        }
        return latest;
    }

    private static void awaitCounts(int port, Map<String, Long> expected, KafkaStreams streams,
                                    ConcurrentLinkedQueue<Throwable> errors) throws Exception {
        Map<String, Long> got = Map.of();
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (System.nanoTime() < deadline) {
            if (!errors.isEmpty()) {
                fail("the Streams application failed: " + errors.peek(), errors.peek());
            }
            got = latestCounts(port);
            if (got.equals(expected)) {
                return;
            }
            for (Map.Entry<String, Long> e : got.entrySet()) {
                assertTrue(e.getValue() <= expected.getOrDefault(e.getKey(), 0L), "counted twice: " + e + " of "
                    + expected.get(e.getKey()) + " (state " + streams.state() + ")");
            }
            Thread.sleep(200); // polling the output, not timing
        }
        assertEquals(expected, got, "word counts (state " + streams.state() + ")");
    }

    @Test
    void wordCountShouldGiveExactCountsWithExactlyOnceAcrossABrokerRestartMidProcessing(@TempDir Path dir)
        throws Exception {
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
            sp.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
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
                return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.REPLACE_THREAD;
            });
            streams.start();

            produce(port, 0, LINES / 2);
            awaitCounts(port, expectedCounts(LINES / 2), streams, errors);

            // The second half, and the restart while the application works through it (same data, same port).
            produce(port, LINES / 2, LINES);
            b.close();
            b = Broker.start(config(data, port));

            awaitCounts(port, expectedCounts(LINES), streams, errors);
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
