package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.protocol.message.ProduceResponseData;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Findings 1-4 of issue 23 as raw Produce frames: each hostile batch gets Kafka's exact error code (with KIP-467
 * record errors where a record is at fault), nothing of it is stored, and afterwards the partition keeps taking
 * produces and every offset of it is read by kafka-clients and by kcat (librdkafka) to the end, while clients of
 * other partitions keep working.
 */
@ExtendWith(ArenaLeakCheck.class)
class HostileBatchTest {
    private static Path dir;
    private static Broker broker;
    private static WireClient wire;
    private int correlation;

    @BeforeAll
    static void start() throws Exception {
        dir = Files.createTempDirectory("hostile-batch");
        broker = Broker.start(BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2)
            .memoryBytes(256L << 20).pin(false).metrics("127.0.0.1", 0).build());
        wire = new WireClient(broker.port(), 60_000);
        broker.createTopicBlocking("bystander", 2);
    }

    @AfterAll
    static void stop() throws Exception {
        wire.close();
        broker.close();
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
        }
    }

    private ProduceResponseData.PartitionProduceResponse produce(String topic, byte[] batch) throws IOException {
        return RawBatches.produce(wire, ++correlation, (short) 9, topic, 0, batch);
    }

    private long produceGood(String topic, int records, int valueBytes, long expectedBase) throws IOException {
        ProduceResponseData.PartitionProduceResponse r = produce(topic, RawBatches.good(records, valueBytes));
        assertEquals(ErrorCodes.NONE, r.errorCode, r.errorMessage);
        assertEquals(expectedBase, r.baseOffset);
        return expectedBase + records;
    }

    private static void assertKafkaError(ProduceResponseData.PartitionProduceResponse r, short code) {
        assertEquals(code, r.errorCode, "error " + r.errorCode + ": " + r.errorMessage);
        assertNotNull(r.errorMessage, "an error message names the problem");
        assertFalse(r.errorMessage.contains("Exception") || r.errorMessage.contains("java."), r.errorMessage);
        assertEquals(-1, r.baseOffset);
    }

    /** Finding 1: CRC-consistent garbage (40 bytes of 0xFF as records) answers CORRUPT_MESSAGE, not NONE. */
    @Test
    void shouldRefuseCrcConsistentGarbageAndKeepConsumersReading() throws Exception {
        String topic = "garbage";
        broker.createTopicBlocking(topic, 1);
        long end = produceGood(topic, 3, 50, 0);
        byte[] ff = new byte[40];
        Arrays.fill(ff, (byte) 0xFF);
        assertKafkaError(produce(topic, RawBatches.batch(ff, 1, 0)), ErrorCodes.CORRUPT_MESSAGE);
        end = produceGood(topic, 4, 50, end);
        assertPartitionReadable(topic, end);
        // The refusal is counted; no append failed on an internal error.
        java.net.http.HttpResponse<String> m = java.net.http.HttpClient.newHttpClient().send(
            java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + broker.metricsPort()
                + "/metrics")).build(), java.net.http.HttpResponse.BodyHandlers.ofString());
        String labels = "{topic=\"garbage\",partition=\"0\"}";
        assertTrue(m.body().contains("isthmus_partition_produce_rejected_batches_total" + labels + " 1"), m.body());
        assertTrue(m.body().contains("isthmus_partition_produce_append_failures_total" + labels + " 0"), m.body());
    }

    /** Finding 2: recordsCount 5 (lastOffsetDelta 4) with one record inside is INVALID_RECORD naming record 1. */
    @Test
    void shouldRefuseARecordCountLieNamingTheMissingRecord() throws Exception {
        String topic = "count-lie";
        broker.createTopicBlocking(topic, 1);
        long end = produceGood(topic, 2, 50, 0);
        byte[] one = RawBatches.records(RawBatches.good(1, 20));
        ProduceResponseData.PartitionProduceResponse r = produce(topic, RawBatches.batch(one, 5, 4));
        assertKafkaError(r, ErrorCodes.INVALID_RECORD);
        assertEquals(1, r.recordErrors.size(), "KIP-467 record errors: " + r.errorMessage);
        assertEquals(1, r.recordErrors.get(0).batchIndex);
        assertTrue(r.recordErrors.get(0).batchIndexErrorMessage.contains("1 of its 5"),
            r.recordErrors.get(0).batchIndexErrorMessage);
        end = produceGood(topic, 3, 50, end);
        assertEquals(5, end, "the log end moved by the good batches only");
        assertPartitionReadable(topic, end);
    }

    /**
     * Finding 3: after two good batches (the second over 4 KiB) a batch claiming 2^31-1 records with one inside is
     * refused as INVALID_RECORD, and every later produce to the partition succeeds (it used to answer
     * UNKNOWN_SERVER_ERROR "offset 2147483648 does not fit segment 0" until a restart).
     */
    @Test
    void shouldRefuseAHugeCountAfterGoodBatchesAndKeepThePartitionServing() throws Exception {
        String topic = "huge-count";
        broker.createTopicBlocking(topic, 1);
        long end = produceGood(topic, 3, 100, 0);
        end = produceGood(topic, 2, 3000, end);
        byte[] one = RawBatches.records(RawBatches.good(1, 20));
        ProduceResponseData.PartitionProduceResponse r = produce(topic,
            RawBatches.batch(one, Integer.MAX_VALUE, Integer.MAX_VALUE - 1));
        assertKafkaError(r, ErrorCodes.INVALID_RECORD);
        assertEquals(1, r.recordErrors.get(0).batchIndex);
        // lastOffsetDelta 2^31-1 with a count of 1: the header is inconsistent.
        assertKafkaError(produce(topic, RawBatches.batch(one, 1, Integer.MAX_VALUE)), ErrorCodes.INVALID_RECORD);
        for (int i = 0; i < 5; i++) {
            end = produceGood(topic, 2, 100, end);
        }
        assertPartitionReadable(topic, end);
    }

    /** Finding 4: the same lie into an empty partition leaves its log end at 0. */
    @Test
    void shouldRefuseAHugeCountIntoAnEmptyPartition() throws Exception {
        String topic = "huge-count-empty";
        broker.createTopicBlocking(topic, 1);
        byte[] one = RawBatches.records(RawBatches.good(1, 20));
        assertKafkaError(produce(topic, RawBatches.batch(one, Integer.MAX_VALUE, Integer.MAX_VALUE - 1)),
            ErrorCodes.INVALID_RECORD);
        assertEquals(0, endOffset(topic), "nothing of the refused batch is stored");
        long end = produceGood(topic, 2, 10, 0);
        assertPartitionReadable(topic, end);
    }

    /** Record-level damage of every kind is refused with the exact code, and nothing is stored. */
    @Test
    void shouldRefuseMalformedRecordsWithKafkasCodes() throws Exception {
        String topic = "malformed";
        broker.createTopicBlocking(topic, 1);
        long end = produceGood(topic, 1, 10, 0);
        byte[] good = RawBatches.good(3, 10);
        // Offset deltas out of order: rebuild the records with deltas 0, 2, 1.
        ByteArrayOutputStream recs = new ByteArrayOutputStream();
        for (int delta : new int[] {0, 2, 1}) {
            ByteArrayOutputStream body = new ByteArrayOutputStream();
            body.write(0);
            RawBatches.varint(body, 0);
            RawBatches.varint(body, delta);
            RawBatches.varint(body, -1);
            RawBatches.varint(body, 1);
            body.write('x');
            RawBatches.varint(body, 0);
            RawBatches.varint(recs, body.size());
            recs.writeBytes(body.toByteArray());
        }
        ProduceResponseData.PartitionProduceResponse r = produce(topic, RawBatches.batch(recs.toByteArray(), 3, 2));
        assertKafkaError(r, ErrorCodes.INVALID_RECORD);
        assertEquals(List.of(1, 2), r.recordErrors.stream().map(e -> e.batchIndex).toList());
        // Trailing bytes after the last record.
        byte[] trailing = Arrays.copyOf(RawBatches.records(good), good.length - RawBatches.HEADER + 3);
        assertKafkaError(produce(topic, RawBatches.batch(trailing, 3, 2)), ErrorCodes.INVALID_RECORD);
        // A record length overrunning the batch.
        byte[] overrun = RawBatches.records(good);
        overrun[0] = (byte) 0x7E;
        assertKafkaError(produce(topic, RawBatches.batch(overrun, 3, 2)), ErrorCodes.CORRUPT_MESSAGE);
        // A CRC mismatch, and a control batch.
        byte[] crc = good.clone();
        crc[crc.length - 1] ^= 1;
        assertKafkaError(produce(topic, crc), ErrorCodes.CORRUPT_MESSAGE);
        byte[] control = good.clone();
        control[RawBatches.ATTRIBUTES + 1] |= 0x20;
        RawBatches.fixCrc(control);
        assertKafkaError(produce(topic, control), ErrorCodes.INVALID_RECORD);
        // Too large for max.message.bytes (1 MiB by default).
        assertKafkaError(produce(topic, RawBatches.good(1, (1 << 20) + 10)), ErrorCodes.MESSAGE_TOO_LARGE);
        end = produceGood(topic, 2, 10, end);
        assertEquals(3, end);
        assertPartitionReadable(topic, end);
    }

    // ------------------------------------------------------------------ readers

    private long endOffset(String topic) {
        try (KafkaConsumer<byte[], byte[]> c = consumer()) {
            TopicPartition tp = new TopicPartition(topic, 0);
            return c.endOffsets(List.of(tp)).get(tp);
        }
    }

    private KafkaConsumer<byte[], byte[]> consumer() {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + broker.port());
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.CHECK_CRCS_CONFIG, "true");
        return new KafkaConsumer<>(p);
    }

    /**
     * Every offset in [0, end) of the partition is read, in order, by kafka-clients and by kcat (which exits at
     * the end, as it failed to after finding 1); and a producer and consumer of another topic keep working.
     */
    private void assertPartitionReadable(String topic, long end) throws Exception {
        TopicPartition tp = new TopicPartition(topic, 0);
        List<Long> offsets = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> c = consumer()) {
            c.assign(List.of(tp));
            assertEquals(end, c.endOffsets(List.of(tp)).get(tp));
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (offsets.size() < end && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    offsets.add(r.offset());
                }
            }
        }
        List<Long> expected = new ArrayList<>();
        for (long o = 0; o < end; o++) {
            expected.add(o);
        }
        assertEquals(expected, offsets, "kafka-clients reads every offset of " + topic);
        kcatReads(topic, expected);
        otherClientsWork();
    }

    private void kcatReads(String topic, List<Long> expected) throws Exception {
        String kcat = onPath("kcat");
        if (kcat == null) {
            if ("true".equals(System.getenv("CI"))) {
                fail("kcat is not installed (apt-get install kcat): .ci/run installs it, so under CI it must be there");
            }
            Assumptions.abort("kcat is not installed (apt-get install kcat); skipped locally, required under CI");
        }
        Path out = Files.createTempFile(dir, "kcat", ".out");
        Path err = Files.createTempFile(dir, "kcat", ".err");
        Process p = new ProcessBuilder(kcat, "-b", "127.0.0.1:" + broker.port(), "-C", "-t", topic, "-p", "0",
            "-o", "beginning", "-e", "-f", "%o\\n").redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        boolean done = p.waitFor(60, TimeUnit.SECONDS);
        if (!done) {
            p.destroyForcibly();
        }
        String stdout = Files.readString(out, StandardCharsets.UTF_8);
        assertTrue(done, "kcat did not reach the end of " + topic + ": " + stdout + Files.readString(err));
        assertEquals(0, p.exitValue(), Files.readString(err));
        assertEquals(expected, stdout.lines().map(Long::parseLong).toList(), "kcat reads every offset of " + topic);
    }

    private static String onPath(String name) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path p = Path.of(d, name);
            if (Files.isExecutable(p)) {
                return p.toString();
            }
        }
        return null;
    }

    private void otherClientsWork() throws Exception {
        String other = "bystander";
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + broker.port());
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        long[] before = new long[1];
        try (KafkaConsumer<byte[], byte[]> c = consumer()) {
            TopicPartition tp = new TopicPartition(other, 1);
            before[0] = c.endOffsets(List.of(tp)).get(tp);
        }
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            for (int i = 0; i < 10; i++) {
                p.send(new ProducerRecord<>(other, 1, "k", "v" + i)).get();
            }
        }
        try (KafkaConsumer<byte[], byte[]> c = consumer()) {
            TopicPartition tp = new TopicPartition(other, 1);
            c.assign(List.of(tp));
            c.seek(tp, before[0]);
            int got = 0;
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (got < 10 && System.nanoTime() < deadline) {
                got += c.poll(Duration.ofMillis(200)).count();
            }
            assertEquals(10, got, "a bystander topic keeps serving");
        }
    }
}
