package dev.isthmus.bench;

import dev.isthmus.gateway.Broker;
import dev.isthmus.gateway.BrokerConfig;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.InitProducerIdRequestData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.requests.AbstractResponse;
import org.apache.kafka.common.requests.InitProducerIdRequest;
import org.apache.kafka.common.requests.InitProducerIdResponse;
import org.apache.kafka.common.requests.ProduceRequest;
import org.apache.kafka.common.requests.ProduceResponse;
import org.apache.kafka.common.requests.RequestHeader;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import java.util.zip.CRC32C;

/**
 * The broker's produce path on one shard, end to end inside one JVM: one benchmark operation is one Produce
 * request (acks=all, one idempotent batch of {@code records} records of {@code valueBytes} for one partition)
 * written to the broker's socket and its response read back: the broker decodes the request, validates the
 * batch (size, CRC-32C, magic, offsets, the producer's sequence), proposes it to the partition's Raft group (a
 * one-member group on a single node: the same path as in a cluster), appends it to the log, makes it durable
 * (fdatasync) and acknowledges it.
 *
 * <p>The broker is a real {@link Broker} with one shard ({@code --smp 1}), started in the benchmark's JVM on
 * loopback; the benchmark thread is its only client, on a blocking socket with direct buffers, and keeps
 * {@code inFlight} requests outstanding (1: one round trip per operation; more: the shard can commit several
 * batches with one fdatasync). The request is encoded once; each operation rewrites its correlation id and the
 * batch's base sequence and CRC-32C in place, so the client side allocates nothing. Each response is checked
 * without decoding objects: error code NONE and the base offset that follows the previous batch's, so a broker
 * that refused or lost a batch fails the run.
 *
 * <p>With {@code -prof gc}, {@code gc.alloc.rate.norm} is the heap allocated per operation by every thread of
 * the JVM (JMH 1.37 reads {@code ThreadMXBean.getTotalThreadAllocatedBytes}): almost all of it is the shard
 * thread's work for one batch, which issue 18 wants at ~0 B/op. Files go to {@code -Disthmus.bench.dir}
 * (default java.io.tmpdir); each trial starts a fresh broker and deletes its data at the end.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 3)
@Measurement(iterations = 3, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-XX:+UseZGC", "-XX:-ZProactive", "-Xmx1g"})
public class ProducePathBench {

    /** Records per batch (one batch per request). */
    @Param({"1", "16"})
    public int records;

    /** Value bytes of each record. */
    @Param({"1024"})
    public int valueBytes;

    /** Requests outstanding on the connection (Kafka's producer allows 5 for an idempotent producer). */
    @Param({"1", "5"})
    public int inFlight;

    /** The broker's native memory (its one shard's arena), MiB. */
    @Param({"512"})
    public int memoryMiB;

    private static final String TOPIC = "produce-path";
    private static final short PRODUCE_VERSION = 11; // flexible, topics by name
    private static final int CORRELATION_OFFSET = 4 + 2 + 2; // after the size, api key, api version
    /** DefaultRecordBatch: CRC-32C at 17 covers attributes (21) to the end; base sequence at 53. */
    private static final int BATCH_CRC = 17;
    private static final int BATCH_ATTRIBUTES = 21;
    private static final int BATCH_BASE_SEQUENCE = 53;

    private Path dir;
    private Broker broker;
    private SocketChannel channel;
    private ByteBuffer request;
    private ByteBuffer crcView;
    private final CRC32C crc = new CRC32C();
    private final ByteBuffer sizeBuf = ByteBuffer.allocateDirect(4);
    private ByteBuffer response;
    private int batchAt;
    private int batchBytes;
    private int errorCodeAt;
    private int correlationId;
    private int nextSequence;
    private long expectedOffset;
    private int outstanding;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        dir = Files.createTempDirectory(Path.of(System.getProperty("isthmus.bench.dir",
            System.getProperty("java.io.tmpdir"))), "isthmus-producebench-");
        broker = Broker.start(BrokerConfig.defaults().toBuilder().host("127.0.0.1").port(0).dataDir(dir.resolve("data"))
            .shards(1).memoryBytes((long) memoryMiB << 20).pin(false).build());
        String bootstrap = "127.0.0.1:" + broker.port();
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            admin.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1))).all().get(60, TimeUnit.SECONDS);
        }
        channel = SocketChannel.open(new InetSocketAddress("127.0.0.1", broker.port()));
        channel.socket().setTcpNoDelay(true);
        response = ByteBuffer.allocateDirect(64 << 10);

        InitProducerIdResponse init = (InitProducerIdResponse) roundTrip(ApiKeys.INIT_PRODUCER_ID, (short) 4,
            new InitProducerIdRequest.Builder(new InitProducerIdRequestData().setTransactionalId(null)
                .setTransactionTimeoutMs(Integer.MAX_VALUE)).build((short) 4));
        if (init.error().code() != 0) {
            throw new IllegalStateException("InitProducerId failed: " + init.error());
        }
        long producerId = init.data().producerId();
        short epoch = init.data().producerEpoch();

        SimpleRecord[] batch = new SimpleRecord[records];
        long now = System.currentTimeMillis();
        for (int i = 0; i < records; i++) {
            batch[i] = new SimpleRecord(now, null, new byte[valueBytes]);
        }
        MemoryRecords recs = MemoryRecords.withIdempotentRecords(Compression.NONE, producerId, epoch, 0, batch);
        byte[] batchArray = new byte[recs.sizeInBytes()];
        recs.buffer().duplicate().get(batchArray);
        ProduceRequestData data = new ProduceRequestData().setAcks((short) -1).setTimeoutMs(30_000);
        ProduceRequestData.TopicProduceData t = new ProduceRequestData.TopicProduceData().setName(TOPIC);
        t.partitionData().add(new ProduceRequestData.PartitionProduceData().setIndex(0).setRecords(recs));
        data.topicData().add(t);
        ByteBuffer body = new ProduceRequest.Builder(PRODUCE_VERSION, PRODUCE_VERSION, data).build(PRODUCE_VERSION)
            .serializeWithHeader(new RequestHeader(ApiKeys.PRODUCE, PRODUCE_VERSION, "produce-path-bench", 0));
        byte[] framed = new byte[4 + body.remaining()];
        ByteBuffer.wrap(framed).putInt(body.remaining()).put(body);
        batchAt = indexOf(framed, batchArray);
        batchBytes = batchArray.length;
        if (batchAt < 0) {
            throw new IllegalStateException("the encoded Produce request does not hold the batch's bytes");
        }
        request = ByteBuffer.allocateDirect(framed.length).put(framed).flip();
        crcView = request.duplicate();
        // Response v11: size, correlation id, header tags, topics (compact array), name (compact string),
        // partitions (compact array), index, then the error code and the base offset.
        errorCodeAt = 4 + 4 + 1 + 1 + 1 + TOPIC.length() + 1 + 4;

        // One batch the slow way, to check the offsets read in place against kafka-clients' decoding.
        ProduceResponse first = (ProduceResponse) exchange(ApiKeys.PRODUCE, PRODUCE_VERSION);
        ProduceResponseData.PartitionProduceResponse pr = first.data().responses().iterator().next()
            .partitionResponses().getFirst();
        if (pr.errorCode() != 0 || pr.errorCode() != response.getShort(errorCodeAt)
                || pr.baseOffset() != response.getLong(errorCodeAt + 2)) {
            throw new IllegalStateException("the first Produce answered error " + pr.errorCode() + " at offset "
                + pr.baseOffset() + " (" + pr.errorMessage() + "); read in place: " + response.getShort(errorCodeAt)
                + " at " + response.getLong(errorCodeAt + 2));
        }
        expectedOffset = pr.baseOffset() + records;
    }

    @Setup(Level.Iteration)
    public void fill() throws IOException {
        while (outstanding < inFlight - 1) {
            send();
        }
    }

    @Benchmark
    public long produce() throws IOException {
        send();
        return receive();
    }

    @TearDown(Level.Iteration)
    public void drain() throws IOException {
        while (outstanding > 0) {
            receive();
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        if (channel != null) {
            channel.close();
        }
        if (broker != null) {
            broker.close();
        }
        if (dir != null) {
            try (Stream<Path> s = Files.walk(dir)) {
                for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }

    /** Writes the request with the next correlation id and base sequence (CRC-32C recomputed). */
    private void send() throws IOException {
        request.putInt(CORRELATION_OFFSET, ++correlationId);
        request.putInt(batchAt + BATCH_BASE_SEQUENCE, nextSequence);
        nextSequence += records;
        crc.reset();
        crcView.limit(batchAt + batchBytes).position(batchAt + BATCH_ATTRIBUTES);
        crc.update(crcView);
        request.putInt(batchAt + BATCH_CRC, (int) crc.getValue());
        request.clear();
        while (request.hasRemaining()) {
            channel.write(request);
        }
        outstanding++;
    }

    /** Reads one response and checks it in place: no error, and the batch right after the previous one. */
    private long receive() throws IOException {
        readFrame();
        outstanding--;
        short error = response.getShort(errorCodeAt);
        long baseOffset = response.getLong(errorCodeAt + 2);
        if (error != 0 || baseOffset != expectedOffset) {
            throw new IllegalStateException("Produce answered error " + error + " at offset " + baseOffset
                + ", expected no error at " + expectedOffset);
        }
        expectedOffset += records;
        return baseOffset;
    }

    private void readFrame() throws IOException {
        sizeBuf.clear();
        readFully(sizeBuf);
        int size = sizeBuf.getInt(0);
        if (size > response.capacity()) {
            throw new IllegalStateException("a " + size + " B response");
        }
        response.clear().limit(size + 4);
        response.putInt(size);
        readFully(response);
    }

    private void readFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (channel.read(b) < 0) {
                throw new IOException("the broker closed the connection");
            }
        }
    }

    /** Setup only: one request and its decoded response. */
    private AbstractResponse roundTrip(ApiKeys api, short version, org.apache.kafka.common.requests.AbstractRequest r)
            throws IOException {
        RequestHeader header = new RequestHeader(api, version, "produce-path-bench", ++correlationId);
        ByteBuffer body = r.serializeWithHeader(header);
        ByteBuffer framed = ByteBuffer.allocate(4 + body.remaining()).putInt(body.remaining()).put(body).flip();
        while (framed.hasRemaining()) {
            channel.write(framed);
        }
        readFrame();
        ByteBuffer heap = ByteBuffer.allocate(response.limit() - 4);
        heap.put(response.duplicate().position(4)).flip();
        return AbstractResponse.parseResponse(heap, header);
    }

    /** Setup only: sends the encoded Produce request once and decodes its response. */
    private AbstractResponse exchange(ApiKeys api, short version) throws IOException {
        int correlation = correlationId + 1;
        send();
        readFrame();
        outstanding--;
        ByteBuffer heap = ByteBuffer.allocate(response.limit() - 4);
        heap.put(response.duplicate().position(4)).flip();
        return AbstractResponse.parseResponse(heap, new RequestHeader(api, version, "produce-path-bench", correlation));
    }

    private static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
