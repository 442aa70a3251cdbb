package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.protocol.message.ApiVersionsResponseData;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.FetchRequestData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.requests.AbstractResponse;
import org.apache.kafka.common.requests.FetchResponse;
import org.apache.kafka.common.requests.ProduceResponse;
import org.apache.kafka.common.requests.RequestHeader;
import org.apache.kafka.common.requests.RequestUtils;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.Future;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The client x codec matrix: every client family we run (kafka-clients, librdkafka through kcat and
 * confluent-kafka-python, kafkajs with its codec plug-ins) produces with every codec (none, gzip, snappy, lz4,
 * zstd), and the test reads back what was stored: on the wire (a raw Fetch, parsed by Kafka's own record
 * classes) and on disk (Kafka's {@code DumpLogSegments} on the closed broker's segment files), asserting the
 * codec bits of every data batch's attributes are the codec the producer asked for. Then every family's
 * consumer reads every family's batches back. Comparing records alone cannot see a client that silently
 * stops compressing (librdkafka did, while Produce was advertised from version 3).
 *
 * <p>The non-Java clients run as processes (scripts in {@code src/test/clients}); a family that is not
 * installed is left out locally and the test ends skipped naming it, after checking the others; under CI
 * ({@code CI=true}) a missing family fails (see {@link ExternalClients}).
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(600)
class CompressionMatrixTest {
    static final List<String> CODECS = List.of("none", "gzip", "snappy", "lz4", "zstd");
    /** Records per family and codec. */
    static final int RECORDS = 40;
    static final String PAD = "compressible-".repeat(8);
    private static final int PROCESS_TIMEOUT_S = 120;

    /** The same value the scripts produce: partition {@code CODECS.indexOf(codec)} of {@code topic}. */
    static String value(String topic, String codec, int n) {
        return topic + "/" + codec + "/" + n + "/" + PAD;
    }

    private enum Family {
        KAFKA_CLIENTS("kafka-clients"), KCAT("kcat"), CONFLUENT_KAFKA_PYTHON("confluent-kafka-python"),
        KAFKAJS("kafkajs");

        final String id;

        Family(String id) {
            this.id = id;
        }

        String topic() {
            return "cm-" + id;
        }
    }

    private static BrokerConfig config(Path data) {
        return BrokerConfig.defaults().toBuilder().port(0).dataDir(data).shards(2).memoryBytes(256L << 20)
            .pin(false).groupInitialRebalanceDelayMs(0).build();
    }

    @Test
    void everyClientFamilyShouldStoreTheCodecItAskedForAndReadEveryCodecBack(@TempDir Path dir) throws Exception {
        String kcat = ExternalClients.kcat();
        String python = ExternalClients.python();
        Path kafkajs = ExternalClients.kafkajs();
        Map<Family, String> missing = new EnumMap<>(Family.class);
        if (kcat == null) {
            missing.put(Family.KCAT, "apt-get install kcat");
        }
        if (python == null) {
            missing.put(Family.CONFLUENT_KAFKA_PYTHON, "apt-get install python3-confluent-kafka");
        }
        if (kafkajs == null) {
            missing.put(Family.KAFKAJS, ExternalClients.kafkajsInstall());
        }
        missing.forEach((f, how) -> {
            if (ExternalClients.underCi()) {
                ExternalClients.require(false, f.id, how); // fails: .ci/run installs every family
            }
        });
        List<Family> present = Stream.of(Family.values()).filter(f -> !missing.containsKey(f)).toList();
        Map<String, String> jsEnv = kafkajs == null ? Map.of() : Map.of("KAFKAJS_PATH", kafkajs.toString());
        Path data = dir.resolve("data");
        Map<String, List<String>> expected = new TreeMap<>();
        for (Family f : present) {
            for (String codec : CODECS) {
                expected.put(f.topic() + "-" + CODECS.indexOf(codec),
                    IntStream.range(0, RECORDS).mapToObj(n -> value(f.topic(), codec, n)).toList());
            }
        }
        int total = present.size() * CODECS.size() * RECORDS;
        List<String> topics = present.stream().map(Family::topic).toList();
        Map<String, String> storedOnWire = new LinkedHashMap<>();

        Broker b = Broker.start(config(data));
        try {
            String bootstrap = "127.0.0.1:" + b.port();
            for (Family f : present) {
                b.createTopicBlocking(f.topic(), CODECS.size());
            }
            // Every family produces every codec, partition i of its topic getting CODECS[i].
            for (Family f : present) {
                switch (f) {
                    case KAFKA_CLIENTS -> produceWithKafkaClients(bootstrap, f.topic());
                    case KCAT -> {
                        for (String codec : CODECS) {
                            String lines = IntStream.range(0, RECORDS).mapToObj(n -> value(f.topic(), codec, n))
                                .collect(Collectors.joining("\n", "", "\n"));
                            ExternalClients.Result r = ExternalClients.exec(PROCESS_TIMEOUT_S, dir, lines, Map.of(),
                                List.of(kcat, "-b", bootstrap, "-P", "-t", f.topic(), "-p",
                                    Integer.toString(CODECS.indexOf(codec)), "-z", codec, "-X", "acks=all",
                                    "-X", "enable.idempotence=true"));
                            assertEquals(0, r.exit(), "kcat -z " + codec + ": " + r.both());
                        }
                    }
                    case CONFLUENT_KAFKA_PYTHON -> {
                        ExternalClients.Result r = ExternalClients.exec(PROCESS_TIMEOUT_S, dir, "", Map.of(),
                            List.of(python, script("compression_matrix.py"), "produce", bootstrap, f.topic(),
                                Integer.toString(RECORDS)));
                        assertEquals(0, r.exit(), r.both());
                    }
                    case KAFKAJS -> {
                        ExternalClients.Result r = ExternalClients.exec(PROCESS_TIMEOUT_S, dir, "", jsEnv,
                            List.of(ExternalClients.onPath("node"), script("compression_matrix.js"), "produce",
                                bootstrap, f.topic(), Integer.toString(RECORDS)));
                        assertEquals(0, r.exit(), r.both());
                    }
                }
            }
            // On the wire: every data batch carries the codec its producer asked for.
            for (Family f : present) {
                for (String codec : CODECS) {
                    int partition = CODECS.indexOf(codec);
                    List<RecordBatch> batches = fetchAll(b.port(), f.topic(), partition);
                    String where = f.id + " asked for " + codec + " (" + f.topic() + "-" + partition + ")";
                    long records = 0;
                    long bytes = 0;
                    int dataBatches = 0;
                    for (RecordBatch batch : batches) {
                        batch.ensureValid();
                        assertEquals(RecordBatch.MAGIC_VALUE_V2, batch.magic(), where);
                        if (batch.isControlBatch()) {
                            continue;
                        }
                        dataBatches++;
                        assertEquals(codec, batch.compressionType().name, where + ": the batch at offset "
                            + batch.baseOffset() + " is stored with attributes codec " + batch.compressionType().name);
                        records += batch.lastOffset() - batch.baseOffset() + 1;
                        bytes += batch.sizeInBytes();
                    }
                    assertEquals(RECORDS, records, where + ": every record stored");
                    storedOnWire.put(f.id + " " + codec, codec + " (" + dataBatches + " batches, " + bytes + " B)");
                }
            }
            // Every family's consumer reads every family's batches, every codec, back in order.
            for (Family consumer : present) {
                Map<String, List<String>> got = switch (consumer) {
                    case KAFKA_CLIENTS -> consumeWithKafkaClients(bootstrap, topics, total);
                    case KCAT -> {
                        StringBuilder lines = new StringBuilder();
                        for (String topic : topics) {
                            ExternalClients.Result r = ExternalClients.exec(PROCESS_TIMEOUT_S, dir, "", Map.of(),
                                List.of(kcat, "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e",
                                    "-f", "R %t %p %o %s\\n"));
                            assertEquals(0, r.exit(), "kcat -C " + topic + ": " + r.both());
                            lines.append(r.out());
                        }
                        yield parseRecords(lines.toString());
                    }
                    case CONFLUENT_KAFKA_PYTHON -> {
                        ExternalClients.Result r = ExternalClients.exec(PROCESS_TIMEOUT_S, dir, "", Map.of(),
                            List.of(python, script("compression_matrix.py"), "consume", bootstrap,
                                String.join(",", topics), Integer.toString(CODECS.size()), Integer.toString(total)));
                        assertEquals(0, r.exit(), r.both());
                        yield parseRecords(r.out());
                    }
                    case KAFKAJS -> {
                        ExternalClients.Result r = ExternalClients.exec(PROCESS_TIMEOUT_S, dir, "", jsEnv,
                            List.of(ExternalClients.onPath("node"), script("compression_matrix.js"), "consume",
                                bootstrap, String.join(",", topics), Integer.toString(total)));
                        assertEquals(0, r.exit(), r.both());
                        yield parseRecords(r.out());
                    }
                };
                assertEquals(expected, got, consumer.id + " reads every family's records of every codec, in order");
            }
        } finally {
            OtherClientsTest.awaitIdle(b);
            b.close();
        }

        // On disk: Kafka's own DumpLogSegments over the closed broker's segment files agrees.
        Map<String, String> storedOnDisk = dumpLogSegments(dir, data, present);
        for (Family f : present) {
            for (String codec : CODECS) {
                assertEquals(codec, storedOnDisk.get(f.topic() + "-" + CODECS.indexOf(codec)),
                    f.id + " asked for " + codec + ": the codec DumpLogSegments reads from the segment file");
            }
        }
        System.out.println("client x codec matrix as stored (producer family, codec asked -> stored codec):");
        storedOnWire.forEach((k, v) -> System.out.println("  " + k + " -> " + v));
        if (!missing.isEmpty()) {
            Assumptions.abort("checked " + present.stream().map(f -> f.id).toList() + "; not installed here: "
                + missing.keySet().stream().map(f -> f.id).toList() + " (" + String.join("; ", missing.values())
                + "); required under CI");
        }
    }

    private static String script(String name) {
        return ExternalClients.SCRIPTS.resolve(name).toString();
    }

    private static void produceWithKafkaClients(String bootstrap, String topic) throws Exception {
        for (String codec : CODECS) {
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
            pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
            pp.put(ProducerConfig.LINGER_MS_CONFIG, "20");
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                List<Future<RecordMetadata>> acks = new ArrayList<>();
                for (int n = 0; n < RECORDS; n++) {
                    acks.add(producer.send(new ProducerRecord<>(topic, CODECS.indexOf(codec), null,
                        value(topic, codec, n))));
                }
                for (Future<RecordMetadata> f : acks) {
                    f.get();
                }
            }
        }
    }

    private static Map<String, List<String>> consumeWithKafkaClients(String bootstrap, List<String> topics, int total) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.CHECK_CRCS_CONFIG, "true");
        Map<String, List<String>> got = new TreeMap<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (String t : topics) {
                for (int p = 0; p < CODECS.size(); p++) {
                    tps.add(new TopicPartition(t, p));
                }
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            int n = 0;
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (n < total && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    got.computeIfAbsent(r.topic() + "-" + r.partition(), k -> new ArrayList<>()).add(r.value());
                    n++;
                }
            }
        }
        return got;
    }

    /** Lines "R topic partition offset value" (what every script prints per record) by topic-partition. */
    private static Map<String, List<String>> parseRecords(String out) {
        Map<String, List<String>> got = new TreeMap<>();
        for (String line : out.lines().toList()) {
            if (line.startsWith("R ")) {
                String[] f = line.split(" ", 5);
                got.computeIfAbsent(f[1] + "-" + f[2], k -> new ArrayList<>()).add(f[4]);
            }
        }
        return got;
    }

    /**
     * Every batch of a partition, read with raw Fetch v12 requests (no consumer in between) from offset 0 to the
     * high watermark and parsed by Kafka's own record classes.
     */
    static List<RecordBatch> fetchAll(int port, String topic, int partition) throws IOException {
        List<RecordBatch> batches = new ArrayList<>();
        long offset = 0;
        int correlation = 0;
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(30_000);
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            DataInputStream in = new DataInputStream(s.getInputStream());
            for (int round = 0; round < 10_000; round++) {
                FetchRequestData req = new FetchRequestData().setReplicaId(-1).setMaxWaitMs(0).setMinBytes(0)
                    .setMaxBytes(8 << 20).setIsolationLevel((byte) 0).setSessionId(0).setSessionEpoch(-1);
                req.topics().add(new FetchRequestData.FetchTopic().setTopic(topic).setPartitions(List.of(
                    new FetchRequestData.FetchPartition().setPartition(partition).setFetchOffset(offset)
                        .setLogStartOffset(-1).setPartitionMaxBytes(8 << 20).setCurrentLeaderEpoch(-1))));
                short version = 12;
                RequestHeader header = new RequestHeader(ApiKeys.FETCH, version, "compression-matrix", ++correlation);
                ByteBuffer bytes = RequestUtils.serialize(header.data(), header.headerVersion(), req, version);
                out.writeInt(bytes.remaining());
                out.write(bytes.array(), bytes.arrayOffset() + bytes.position(), bytes.remaining());
                out.flush();
                byte[] resp = new byte[in.readInt()];
                in.readFully(resp);
                FetchResponse r = (FetchResponse) AbstractResponse.parseResponse(ByteBuffer.wrap(resp), header);
                FetchResponseData.PartitionData pd = r.data().responses().get(0).partitions().get(0);
                assertEquals(Errors.NONE.code(), pd.errorCode(), topic + "-" + partition + " fetch at " + offset);
                long before = offset;
                for (RecordBatch batch : FetchResponse.recordsOrFail(pd).batches()) {
                    if (batch.lastOffset() >= offset) {
                        batches.add(batch);
                        offset = batch.lastOffset() + 1;
                    }
                }
                if (offset >= pd.highWatermark()) {
                    return batches;
                }
                assertTrue(offset > before, topic + "-" + partition + ": a fetch at " + offset
                    + " below the high watermark " + pd.highWatermark() + " returned nothing");
            }
        }
        throw new AssertionError(topic + "-" + partition + ": no end after 10000 fetches");
    }

    private static final Pattern DUMPING = Pattern.compile("^Dumping (.+)$");
    private static final Pattern BATCH = Pattern.compile(
        "^baseOffset: (\\d+) lastOffset: (\\d+) count: (\\d+) .* isControl: (true|false) .* compresscodec: (\\S+) .* isvalid: (true|false)");

    /**
     * Runs Kafka's {@code DumpLogSegments} over every segment file of the families' topics and returns, per
     * topic-partition, the one codec its data batches carry ("mixed: ..." when they differ); checks that every
     * batch is valid and that each partition holds {@link #RECORDS} data records.
     */
    private static Map<String, String> dumpLogSegments(Path work, Path data, List<Family> present) throws Exception {
        List<Path> files = new ArrayList<>();
        for (Family f : present) {
            for (int p = 0; p < CODECS.size(); p++) {
                Path partDir = data.resolve("logs").resolve(f.topic() + "-" + p);
                try (Stream<Path> s = Files.list(partDir)) {
                    s.filter(x -> x.getFileName().toString().endsWith(".log")).sorted().forEach(files::add);
                }
            }
        }
        ExternalClients.Result r = ExternalClients.exec(PROCESS_TIMEOUT_S, work, "", Map.of(),
            ExternalClients.javaCommand("org.apache.kafka.tools.DumpLogSegments", "--files",
                files.stream().map(Path::toString).collect(Collectors.joining(","))));
        assertEquals(0, r.exit(), "DumpLogSegments: " + r.both());
        assertFalse(r.err().contains("Exception"), "DumpLogSegments: " + r.both());
        Map<String, List<String>> codecs = new TreeMap<>();
        Map<String, Long> counts = new TreeMap<>();
        String current = null;
        for (String line : r.out().lines().toList()) {
            Matcher d = DUMPING.matcher(line);
            if (d.matches()) {
                current = Path.of(d.group(1)).getParent().getFileName().toString();
                continue;
            }
            Matcher m = BATCH.matcher(line);
            if (m.find()) {
                assertNotNull(current, line);
                assertEquals("true", m.group(6), "DumpLogSegments: an invalid batch in " + current + ": " + line);
                if (m.group(4).equals("false")) {
                    codecs.computeIfAbsent(current, k -> new ArrayList<>()).add(m.group(5));
                    counts.merge(current, Long.parseLong(m.group(3)), Long::sum);
                }
            }
        }
        Map<String, String> result = new TreeMap<>();
        codecs.forEach((part, list) -> {
            List<String> distinct = list.stream().distinct().toList();
            result.put(part, distinct.size() == 1 ? distinct.get(0) : "mixed: " + list);
            assertEquals(RECORDS, counts.get(part), part + ": data records in the segment files");
        });
        return result;
    }

    // ------------------------------------------------------------------ Produce versions (KAFKA-18659)

    /**
     * A Produce request at version 0-2 (the legacy message set of magic 0 inside): the header and body layout of
     * those versions, which our codecs and Kafka 4's do not generate.
     */
    private static byte[] legacyProduceFrame(short version, int correlationId, String topic) {
        byte[] value = "legacy".getBytes(StandardCharsets.UTF_8);
        ByteBuffer msg = ByteBuffer.allocate(4 + 1 + 1 + 4 + 4 + value.length);
        msg.putInt(0).put((byte) 0).put((byte) 0).putInt(-1).putInt(value.length).put(value);
        CRC32 crc = new CRC32();
        crc.update(msg.array(), 4, msg.capacity() - 4);
        msg.putInt(0, (int) crc.getValue());
        ByteBuffer set = ByteBuffer.allocate(8 + 4 + msg.capacity()).putLong(0).putInt(msg.capacity()).put(msg.array());
        byte[] client = "compression-matrix".getBytes(StandardCharsets.UTF_8);
        byte[] name = topic.getBytes(StandardCharsets.UTF_8);
        ByteBuffer f = ByteBuffer.allocate(4 + 2 + 2 + 4 + 2 + client.length + 2 + 4 + 4 + 2 + name.length + 4 + 4 + 4
            + set.capacity());
        f.putInt(f.capacity() - 4);
        f.putShort((short) 0).putShort(version).putInt(correlationId).putShort((short) client.length).put(client);
        f.putShort((short) -1).putInt(30_000).putInt(1).putShort((short) name.length).put(name).putInt(1).putInt(0)
            .putInt(set.capacity()).put(set.array());
        return f.array();
    }

    /** Sends one Produce at {@code version} (3 and up) of one record with Kafka's own serialization. */
    private static ProduceResponseData.PartitionProduceResponse produce(int port, short version, String topic, String v)
        throws IOException {
        ProduceRequestData data = new ProduceRequestData().setAcks((short) -1).setTimeoutMs(30_000);
        data.topicData().add(new ProduceRequestData.TopicProduceData().setName(topic).setPartitionData(List.of(
            new ProduceRequestData.PartitionProduceData().setIndex(0).setRecords(MemoryRecords.withRecords(
                Compression.gzip().build(), new SimpleRecord(v.getBytes(StandardCharsets.UTF_8)))))));
        RequestHeader header = new RequestHeader(ApiKeys.PRODUCE, version, "compression-matrix", 1);
        ByteBuffer bytes = RequestUtils.serialize(header.data(), header.headerVersion(), data, version);
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(30_000);
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            out.writeInt(bytes.remaining());
            out.write(bytes.array(), bytes.arrayOffset() + bytes.position(), bytes.remaining());
            out.flush();
            DataInputStream in = new DataInputStream(s.getInputStream());
            byte[] resp = new byte[in.readInt()];
            in.readFully(resp);
            ProduceResponse r = (ProduceResponse) AbstractResponse.parseResponse(ByteBuffer.wrap(resp), header);
            return r.data().responses().iterator().next().partitionResponses().get(0);
        }
    }

    @Test
    void shouldAdvertiseProduceFromVersion0AndCloseTheConnectionOnVersions0To2(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir.resolve("data")))) {
            b.createTopicBlocking("legacy", 1);
            try (WireClient c = new WireClient(b.port(), 30_000)) {
                c.send(WireClient.apiVersions(1));
                ApiVersionsResponseData r = WireClient.body(c.readFrame(),
                    dev.isthmus.gateway.protocol.message.ApiKeys.API_VERSIONS, (short) 0);
                ApiVersionsResponseData.ApiVersion produce = r.apiKeys.stream().filter(v -> v.apiKey == 0)
                    .findFirst().orElseThrow();
                assertEquals(0, produce.minVersion, "Produce is advertised from version 0, as Kafka 4 does");
                assertEquals(dev.isthmus.gateway.protocol.message.ApiKeys.PRODUCE.highestVersion, produce.maxVersion);
            }
            for (short v = 0; v <= 2; v++) {
                try (WireClient c = new WireClient(b.port(), 30_000)) {
                    c.send(legacyProduceFrame(v, 7, "legacy"));
                    assertNull(c.readFrame(), "Produce v" + v + " closes the connection unanswered");
                }
            }
            var first = produce(b.port(), (short) 3, "legacy", "v3");
            assertEquals(Errors.NONE.code(), first.errorCode(), "Produce v3 is served");
            assertEquals(0, first.baseOffset(), "the refused v0-2 requests appended nothing");
            List<RecordBatch> stored = fetchAll(b.port(), "legacy", 0).stream().filter(x -> !x.isControlBatch()).toList();
            assertEquals(1, stored.size());
            assertEquals("gzip", stored.get(0).compressionType().name);
            OtherClientsTest.awaitIdle(b);
        }
    }
}
