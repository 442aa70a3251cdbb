package dev.isthmus.gateway;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.record.internal.ControlRecordType;
import org.apache.kafka.common.record.internal.EndTransactionMarker;
import org.apache.kafka.common.record.internal.FileRecords;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Compaction of a transactional, compacted topic ({@code cleanup.policy=compact}) as Kafka's cleaner does it: the
 * records of an aborted transaction are removed and never take the place of a committed value of the same key; its
 * ABORT marker and {@code .txnindex} entry stay while its records do, then the marker waits out
 * {@code delete.retention.ms} and loses its record; COMMIT markers stay while their transaction has records.
 * Checked on what the segment files hold (read with Kafka's own {@code FileRecords}, the broker stopped), on what
 * read_committed and read_uncommitted consumers see, and across a restart that rebuilds the producer state from the
 * compacted log (the last stable offset reaches the log end: no transaction is left open by what compaction
 * removed). Compaction passes are started on the partition's shard instead of waiting for the 15 s check interval.
 */
@Timeout(value = 240, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class TransactionCompactionTest {
    private static final String TOPIC = "txn-compacted";
    private static final long DELETE_RETENTION_MS = 3_000;

    private static BrokerConfig config(Path dir) {
        return TransactionCoordinatorTest.config(dir, 2).toBuilder().shards(1).build();
    }

    private static Partition partition(Broker b) {
        return b.state(0).partitions.get(ShardState.key(TOPIC, 0));
    }

    /** Runs compaction passes of the partition until {@code done} holds on its shard (bounded). */
    private static void compactUntil(Broker b, String what, java.util.function.Predicate<Partition> done)
        throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            boolean ok = b.group().call(0, s -> {
                Partition p = partition(b);
                return p != null && !b.raft().shard(0).cleaner().busy() && done.test(p);
            }).get(30, TimeUnit.SECONDS);
            if (ok) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("compaction did not reach: " + what);
            }
            b.group().call(0, s -> {
                Partition p = partition(b);
                if (p != null) {
                    p.replica.compact(b.raft().shard(0).cleaner());
                }
                return null;
            }).get(30, TimeUnit.SECONDS);
            Thread.sleep(50);
        }
    }

    private static Map<String, String> consume(Broker b, String isolation, int expected) {
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        Map<String, String> got = new LinkedHashMap<>();
        List<String> values = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            TopicPartition tp = new TopicPartition(TOPIC, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (values.size() < expected && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    got.put(r.key(), r.value());
                    values.add(r.value());
                }
            }
            // Nothing more comes (what was asked for is everything there is).
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                values.add(r.value());
            }
        }
        assertEquals(expected, values.size(), isolation + " read " + values);
        return got;
    }

    /** What the partition's segment files hold (the broker stopped: files trimmed to their data). */
    private record Stored(List<String> values, List<int[]> markers, long txnIndexBytes) {
    }

    private static Stored stored(Path partDir) throws Exception {
        List<String> values = new ArrayList<>();
        List<int[]> markers = new ArrayList<>(); // {type (-1: emptied), records, delete horizon set}
        long txnIndexBytes = 0;
        List<Path> files;
        try (Stream<Path> s = Files.list(partDir)) {
            files = s.sorted().toList();
        }
        for (Path f : files) {
            String n = f.getFileName().toString();
            if (n.endsWith(".txnindex")) {
                txnIndexBytes += Files.size(f);
            }
            if (!n.endsWith(".log")) {
                continue;
            }
            try (FileRecords records = FileRecords.open(f.toFile())) {
                for (RecordBatch batch : records.batches()) {
                    if (batch.isControlBatch() && batch.isTransactional()) {
                        int count = 0;
                        int type = -1;
                        for (Record r : batch) {
                            count++;
                            type = EndTransactionMarker.deserialize(r).controlType() == ControlRecordType.COMMIT ? 1 : 0;
                        }
                        markers.add(new int[] {type, count, batch.deleteHorizonMs().isPresent() ? 1 : 0});
                    } else if (!batch.isControlBatch()) {
                        for (Record r : batch) {
                            values.add(StandardCharsets.UTF_8.decode(r.value()).toString());
                        }
                    }
                }
            }
        }
        return new Stored(values, markers, txnIndexBytes);
    }

    @Test
    void shouldRemoveAbortedRecordsAndThenTheirMarkerAfterTheDeleteRetention(@TempDir Path dir) throws Exception {
        Path partDir = dir.resolve("logs").resolve(TOPIC + "-0");
        try (Broker b = Broker.start(config(dir)); Admin a = TransactionCoordinatorTest.admin(b)) {
            a.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1).configs(Map.of("cleanup.policy", "compact",
                "segment.ms", "1", "min.cleanable.dirty.ratio", "0", "delete.retention.ms",
                Long.toString(DELETE_RETENTION_MS))))).all().get(30, TimeUnit.SECONDS);
            try (KafkaProducer<String, String> committer = new KafkaProducer<>(
                     TransactionCoordinatorTest.producerProps(b, "committer", 60_000));
                 KafkaProducer<String, String> aborter = new KafkaProducer<>(
                     TransactionCoordinatorTest.producerProps(b, "aborter", 60_000))) {
                committer.initTransactions();
                aborter.initTransactions();
                committer.beginTransaction();
                committer.send(new ProducerRecord<>(TOPIC, 0, "k1", "c1")).get(30, TimeUnit.SECONDS);
                committer.send(new ProducerRecord<>(TOPIC, 0, "k2", "c1")).get(30, TimeUnit.SECONDS);
                committer.commitTransaction();
                aborter.beginTransaction();
                aborter.send(new ProducerRecord<>(TOPIC, 0, "k1", "a1")).get(30, TimeUnit.SECONDS);
                aborter.send(new ProducerRecord<>(TOPIC, 0, "k3", "a1")).get(30, TimeUnit.SECONDS);
                aborter.flush();
                aborter.abortTransaction();
                committer.beginTransaction();
                committer.send(new ProducerRecord<>(TOPIC, 0, "k2", "c2")).get(30, TimeUnit.SECONDS);
                committer.commitTransaction();
            }
            // The markers are written after the producers are answered: wait for them (the last stable offset
            // reaches the high watermark), then a last record rolls them into sealed segments below it.
            TransactionCoordinatorTest.await("every marker written", () -> {
                try {
                    return b.group().call(0, s -> {
                        Partition p = partition(b);
                        return p.producers.lastStableOffset() == p.replica.highWatermark()
                            && p.producers.txnIndex.size() == 1 ? p : null;
                    }).get(30, TimeUnit.SECONDS);
                } catch (Exception e) {
                    return null;
                }
            });
            Thread.sleep(5); // segment.ms = 1: the next append rolls
            Properties pp = TransactionCoordinatorTest.producerProps(b, "unused", 60_000);
            pp.remove(ProducerConfig.TRANSACTIONAL_ID_CONFIG);
            try (KafkaProducer<String, String> plain = new KafkaProducer<>(pp)) {
                plain.send(new ProducerRecord<>(TOPIC, 0, "end", "e")).get(30, TimeUnit.SECONDS);
            }
            // Before compaction: read_uncommitted sees the aborted records, read_committed does not.
            assertEquals("a1", consume(b, "read_uncommitted", 6).get("k3"));
            assertEquals(Map.of("k1", "c1", "k2", "c2", "end", "e"), consume(b, "read_committed", 4));

            // Compaction empties the aborted batches; the next pass finds nothing of the transaction left and drops
            // its index entry; its marker gets its delete horizon.
            compactUntil(b, "the aborted transaction's index entry dropped",
                p -> p.producers.txnIndex.size() == 0);
            Map<String, String> uncommitted = consume(b, "read_uncommitted", 3);
            assertEquals(Map.of("k1", "c1", "k2", "c2", "end", "e"), uncommitted,
                "the aborted records are gone, and the aborted k1 did not replace the committed one");
            assertEquals(uncommitted, consume(b, "read_committed", 3));
        }
        Stored mid = stored(partDir);
        assertEquals(List.of("c1", "c2", "e"), mid.values(), "stored records after compaction");
        assertEquals(3, mid.markers().size(), "two COMMIT markers and one ABORT marker: " + mid.markers());
        int[] abort = mid.markers().stream().filter(m -> m[0] == 0).findFirst().orElseThrow();
        assertEquals(1, abort[1], "the ABORT marker keeps its record until its delete horizon");
        assertEquals(1, abort[2], "its delete horizon is set");
        for (int[] m : mid.markers()) {
            if (m[0] == 1) {
                assertEquals(1, m[1], "a COMMIT marker stays while its transaction has records");
            }
        }
        assertEquals(0, mid.txnIndexBytes(), "no .txnindex entry is left");

        // Past delete.retention.ms, and with the producer state rebuilt from the compacted log (no snapshot): the
        // ABORT marker loses its record; no transaction is left open, so read_committed reads to the end.
        Thread.sleep(DELETE_RETENTION_MS);
        Files.delete(partDir.resolve(PartitionProducers.SNAPSHOT));
        try (Broker b = Broker.start(config(dir))) {
            // One pass after the restart (due: the marker's horizon is recorded with the cleaner checkpoint).
            compactUntil(b, "a compaction past the ABORT marker's horizon", p -> p.producers.loaded()
                && p.producers.rebuilds > 0 && b.raft().shard(0).cleaner().compactions() > 0);
            long end = b.group().call(0, s -> partition(b).replica.highWatermark()).get(30, TimeUnit.SECONDS);
            assertEquals(end, (long) b.group().call(0, s -> partition(b).producers.lastStableOffset())
                .get(30, TimeUnit.SECONDS), "the last stable offset is the high watermark");
            assertEquals(Map.of("k1", "c1", "k2", "c2", "end", "e"), consume(b, "read_committed", 3));
            assertEquals(Map.of("k1", "c1", "k2", "c2", "end", "e"), consume(b, "read_uncommitted", 3));
        }
        Stored after = stored(partDir);
        assertEquals(List.of("c1", "c2", "e"), after.values());
        int[] emptied = after.markers().stream().filter(m -> m[1] == 0).findFirst().orElseThrow(
            () -> new AssertionError("no emptied marker: " + after.markers()));
        assertEquals(-1, emptied[0]);
        assertEquals(2, after.markers().stream().filter(m -> m[0] == 1 && m[1] == 1).count(),
            "both COMMIT markers stay");
    }
}
