package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Many partitions per shard on the smallest arena: every partition's log shares the shard's write-behind pool
 * (1/8 of the arena in 256 KiB chunks, 32 of them at 64 MiB per shard), far fewer chunks than logs. Every
 * partition must still commit what it is sent: a log that is not writing gives its chunk back when another
 * needs one, and waiting logs are served in turn.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(1800)
class ManyPartitionsTest {

    /**
     * Partitions per shard; {@code -Disthmus.manyPartitions.perShard=990} runs the per-shard limit's worth (slow), and
     * {@code -Disthmus.manyPartitions.memoryMiB=N} gives the broker N MiB instead of the smallest memory allowed.
     */
    static final int PER_SHARD = Integer.getInteger("isthmus.manyPartitions.perShard", 250);

    @Test
    void shouldCommitAcksAllProducesOnEveryPartitionWhenLogsOutnumberWriteBehindChunks(@TempDir Path dir)
        throws Exception {
        int shards = 2;
        int perShard = PER_SHARD;
        int partitions = shards * perShard;
        int rounds = 3;
        long memory = Long.getLong("isthmus.manyPartitions.memoryMiB", BrokerConfig.minimumMemory(shards) >> 20) << 20;
        BrokerConfig cfg = BrokerConfig.defaults().withPort(0).withDataDir(dir).withShards(shards)
            .withMemory(memory).withPin(false);
        try (Broker b = Broker.start(cfg)) {
            int chunks = b.group().call(0, s -> b.state(0).writePool.capacity()).get();
            if (memory == BrokerConfig.minimumMemory(shards)) {
                assertTrue(chunks * 4 < perShard, chunks + " write-behind chunks per shard, " + perShard + " logs");
            }
            long t0 = System.nanoTime();
            FetchWire.createTopic(b, "many", partitions);
            long t1 = System.nanoTime();
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            pp.put(ProducerConfig.LINGER_MS_CONFIG, "5");
            // A stuck partition fails its sends within the test's time, not the client's default two minutes.
            pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "30000");
            pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            Map<Integer, List<String>> sent = new TreeMap<>();
            Map<Integer, String> failed = new TreeMap<>();
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                for (int round = 0; round < rounds; round++) {
                    List<Future<RecordMetadata>> acks = new ArrayList<>();
                    for (int p = 0; p < partitions; p++) {
                        String v = "r" + round + "-p" + p;
                        acks.add(producer.send(new ProducerRecord<>("many", p, null, v)));
                        sent.computeIfAbsent(p, k -> new ArrayList<>()).add(v);
                    }
                    for (int p = 0; p < partitions; p++) {
                        try {
                            RecordMetadata md = acks.get(p).get();
                            assertEquals(round, md.offset(), "offset of round " + round + " in partition " + p);
                        } catch (ExecutionException e) {
                            failed.putIfAbsent(p, e.getCause().toString());
                        }
                    }
                }
            }
            long t2 = System.nanoTime();
            if (!failed.isEmpty()) {
                throw new AssertionError(failed.size() + " of " + partitions + " partitions failed acks=all produces,"
                    + " e.g. " + failed.entrySet().stream().limit(3).toList());
            }

            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            Map<Integer, List<String>> got = new TreeMap<>();
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
                List<TopicPartition> tps = new ArrayList<>();
                for (int p = 0; p < partitions; p++) {
                    tps.add(new TopicPartition("many", p));
                }
                Map<TopicPartition, Long> ends = consumer.endOffsets(tps, Duration.ofSeconds(60));
                Map<Integer, Long> short_ = new HashMap<>();
                for (var e : ends.entrySet()) {
                    if (e.getValue() != rounds) {
                        short_.put(e.getKey().partition(), e.getValue());
                    }
                }
                assertEquals(Map.of(), short_, "high watermarks that are not " + rounds);
                consumer.assign(tps);
                consumer.seekToBeginning(tps);
                int total = 0;
                // A bound against hangs, not a timing check.
                long deadline = System.nanoTime() + 120_000_000_000L * Math.max(1, partitions / 500);
                while (total < partitions * rounds && System.nanoTime() < deadline) {
                    for (ConsumerRecord<String, String> rec : consumer.poll(Duration.ofMillis(200))) {
                        got.computeIfAbsent(rec.partition(), k -> new ArrayList<>()).add(rec.value());
                        total++;
                    }
                }
            }
            long t3 = System.nanoTime();
            System.out.printf("%d partitions on %d shards: created in %d ms, %d acks=all rounds in %d ms, read back in"
                + " %d ms%n", partitions, shards, (t1 - t0) / 1_000_000, rounds, (t2 - t1) / 1_000_000,
                (t3 - t2) / 1_000_000);
            if (!sent.equals(got)) {
                List<Integer> missing = new ArrayList<>();
                for (int p = 0; p < partitions; p++) {
                    if (!sent.get(p).equals(got.get(p))) {
                        missing.add(p);
                    }
                }
                // What a plain fetch of a few of them answers now (error, high watermark, bytes, shard).
                StringBuilder now = new StringBuilder();
                try (WireClient c = new WireClient(b.port(), 30_000)) {
                    var r = FetchWire.request(0, 0, Integer.MAX_VALUE, 0, -1);
                    List<Integer> few = missing.subList(0, Math.min(10, missing.size()));
                    for (int p : few) {
                        FetchWire.add(r, "many", null, p, 0, 1 << 20);
                    }
                    var resp = FetchWire.fetch(c, (short) 12, r);
                    for (int p : few) {
                        var pd = FetchWire.partition(resp, p);
                        now.append(' ').append(p).append(":e").append(pd.errorCode).append(":hw")
                            .append(pd.highWatermark).append(':').append(FetchWire.length(pd)).append("B:shard")
                            .append(FetchWire.shardOf(b, "many", p));
                    }
                }
                throw new AssertionError(missing.size() + " of " + partitions + " partitions not read back exactly "
                    + "(high watermarks were right); a fetch of some now:" + now);
            }
            for (int shard = 0; shard < shards; shard++) {
                int id = shard;
                long[] pool = b.group().call(shard, x -> new long[] {b.state(id).writePool.reclaimsTotal(),
                    b.state(id).writePool.waitsTotal(), b.state(id).writePool.waiting()}).get();
                System.out.println("shard " + shard + ": " + pool[0] + " idle chunks taken back, " + pool[1]
                    + " waits for write-behind memory");
                if (memory == BrokerConfig.minimumMemory(shards)) {
                    assertTrue(pool[0] > 0, "logs that stopped writing lent their chunks to others (shard " + shard + ")");
                }
                assertEquals(0, pool[2], "no log still waits for memory");
            }
        }
    }
}
