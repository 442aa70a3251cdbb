package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.protocol.ByteBufferReader;
import dev.isthmus.gateway.protocol.Uuid;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.FetchRequestData;
import dev.isthmus.gateway.protocol.message.FetchResponseData;
import dev.isthmus.gateway.protocol.message.RequestHeaderData;
import dev.isthmus.gateway.protocol.message.ResponseHeaderData;
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
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;

import static dev.isthmus.gateway.FetchWire.add;
import static dev.isthmus.gateway.FetchWire.batches;
import static dev.isthmus.gateway.FetchWire.forget;
import static dev.isthmus.gateway.FetchWire.length;
import static dev.isthmus.gateway.FetchWire.partition;
import static dev.isthmus.gateway.FetchWire.partitionCount;
import static dev.isthmus.gateway.FetchWire.request;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Incremental fetch sessions (KIP-227) on the wire: raw frames for the session's life (ids, epochs, what an
 * incremental response carries, forgotten partitions, the error codes), with topic names (v12) and topic ids
 * (v17); and an unmodified kafka-clients consumer of 200 partitions seen through a recording proxy.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(240)
class FetchSessionTest {

    /** Adds a partition by name (v12) or id (v17). */
    private static FetchRequestData addP(FetchRequestData r, short v, Uuid id, int p, long offset) {
        return v >= 13 ? add(r, null, id, p, offset, 1 << 20) : add(r, "s", null, p, offset, 1 << 20);
    }

    @ParameterizedTest(name = "Fetch v{0}")
    @ValueSource(shorts = {12, 17})
    void shouldServeASessionFromFullFetchToClose(short v, @TempDir Path dir) throws Exception {
        Random rnd = new Random(v);
        try (Broker b = Broker.start(FetchHandlerTest.config(dir, 2)); WireClient c = new WireClient(b.port(), 30_000)) {
            FetchWire.createTopic(b, "s", 3);
            Uuid id = FetchWire.topicId(b, "s");
            long[] end = new long[3];
            for (int p = 0; p < 3; p++) {
                end[p] = FetchWire.produce(c, "s", p, FetchWire.batch(rnd, 1, 50)) + 1;
            }
            // A full fetch asking for a session (id 0, epoch 0): every partition, and a new session id.
            FetchRequestData full = request(0, 0, 1 << 20, 0, 0);
            for (int p = 0; p < 3; p++) {
                addP(full, v, id, p, end[p]);
            }
            FetchResponseData r = FetchWire.fetch(c, v, full);
            FetchWire.assertNoError(r);
            int session = r.sessionId;
            assertNotEquals(0, session, "the response carries the new session's id");
            assertEquals(3, partitionCount(r));
            if (v >= 13) {
                assertEquals(id, r.responses.get(0).topicId);
            }

            // Epoch 1, nothing changed: an empty response in the same session.
            r = FetchWire.fetch(c, v, request(0, 0, 1 << 20, session, 1));
            FetchWire.assertNoError(r);
            assertEquals(session, r.sessionId);
            assertEquals(0, partitionCount(r), "an incremental response carries only what changed");

            // New data on partition 1: the request lists nothing, the response carries partition 1 alone.
            byte[] one = FetchWire.batch(rnd, 2, 40);
            FetchWire.produce(c, "s", 1, one);
            r = FetchWire.fetch(c, v, request(0, 0, 1 << 20, session, 2));
            FetchWire.assertNoError(r);
            assertEquals(1, partitionCount(r));
            FetchResponseData.PartitionData p1 = partition(r, 1);
            assertEquals(one.length, length(p1));
            assertEquals(end[1] + 2, p1.highWatermark);

            // The client moves partition 1's offset to its end: nothing new, nothing changed, nothing sent.
            r = FetchWire.fetch(c, v, addP(request(0, 0, 1 << 20, session, 3), v, id, 1, end[1] + 2));
            FetchWire.assertNoError(r);
            assertEquals(0, partitionCount(r));

            // Misuse: a wrong epoch, an unknown session, a session of the other topic naming.
            r = FetchWire.fetch(c, v, request(0, 0, 1 << 20, session, 9));
            assertEquals(ErrorCodes.INVALID_FETCH_SESSION_EPOCH, r.errorCode);
            assertEquals(0, r.sessionId);
            assertEquals(0, partitionCount(r));
            int unknown = session == Integer.MAX_VALUE ? 1 : session + 1;
            r = FetchWire.fetch(c, v, request(0, 0, 1 << 20, unknown, 1));
            assertEquals(ErrorCodes.FETCH_SESSION_ID_NOT_FOUND, r.errorCode);
            assertEquals(0, r.sessionId);
            short other = v >= 13 ? (short) 12 : (short) 17;
            r = FetchWire.fetch(c, other, request(0, 0, 1 << 20, session, 4));
            assertEquals(ErrorCodes.FETCH_SESSION_TOPIC_ID_ERROR, r.errorCode);

            // The errors left the session as it was (epoch 4 next). Forget partition 2, then produce to it.
            r = FetchWire.fetch(c, v, forget(request(0, 0, 1 << 20, session, 4), v >= 13 ? null : "s",
                v >= 13 ? id : null, 2));
            FetchWire.assertNoError(r);
            assertEquals(0, partitionCount(r));
            FetchWire.produce(c, "s", 2, FetchWire.batch(rnd, 1, 30));
            r = FetchWire.fetch(c, v, request(0, 0, 1 << 20, session, 5));
            assertEquals(0, partitionCount(r), "a forgotten partition is not fetched");

            // Added back: answered at once (the session has sent no high watermark for it yet), with its data.
            r = FetchWire.fetch(c, v, addP(request(0, 0, 1 << 20, session, 6), v, id, 2, end[2]));
            FetchWire.assertNoError(r);
            assertEquals(1, partitionCount(r));
            assertEquals(1, batches(partition(r, 2).records).size());

            // A long poll in the session (partition 2 moved to its end) answers with just the partition that got data.
            FetchWire.sendFetch(c, v, 77, addP(request(30_000, 1, 1 << 20, session, 7), v, id, 2, end[2] + 1));
            FetchWire.awaitTrue(() -> FetchWire.parked(b, "s", 0) == 1, "the session's fetch parked");
            try (WireClient producer = new WireClient(b.port(), 30_000)) {
                FetchWire.produce(producer, "s", 0, FetchWire.batch(rnd, 1, 20));
            }
            r = FetchWire.readFetch(c, v);
            FetchWire.assertNoError(r);
            assertEquals(session, r.sessionId);
            assertEquals(1, partitionCount(r));
            assertNotNull(partition(r, 0));

            // FINAL (epoch -1) closes the session and fetches what it lists, without a session.
            r = FetchWire.fetch(c, v, addP(request(0, 0, 1 << 20, session, -1), v, id, 0, end[0]));
            FetchWire.assertNoError(r);
            assertEquals(0, r.sessionId);
            assertEquals(1, partitionCount(r));
            r = FetchWire.fetch(c, v, request(0, 0, 1 << 20, session, 8));
            assertEquals(ErrorCodes.FETCH_SESSION_ID_NOT_FOUND, r.errorCode, "the closed session is gone");
            int finalShard = b.group().call(0, s -> b.handlers().fetch().sessions(0).size()).get()
                + b.group().call(1, s -> b.handlers().fetch().sessions(1).size()).get();
            assertEquals(0, finalShard, "no session is kept");
        }
    }

    @Test
    void shouldCloseTheNamedSessionOnAFullFetchAndOpenANewOne(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(FetchHandlerTest.config(dir, 1)); WireClient c = new WireClient(b.port(), 30_000)) {
            FetchWire.createTopic(b, "s", 1);
            FetchResponseData r = FetchWire.fetch(c, (short) 12, add(request(0, 0, 1 << 20, 0, 0), "s", null, 0, 0, 100));
            int first = r.sessionId;
            assertNotEquals(0, first);
            r = FetchWire.fetch(c, (short) 12, add(request(0, 0, 1 << 20, first, 0), "s", null, 0, 0, 100));
            int second = r.sessionId;
            assertNotEquals(0, second);
            assertNotEquals(first, second);
            assertEquals(ErrorCodes.FETCH_SESSION_ID_NOT_FOUND,
                FetchWire.fetch(c, (short) 12, request(0, 0, 1 << 20, first, 1)).errorCode);
            assertEquals(ErrorCodes.NONE, FetchWire.fetch(c, (short) 12, request(0, 0, 1 << 20, second, 1)).errorCode);
            // A sessionless fetch (FINAL, session 0) creates nothing.
            r = FetchWire.fetch(c, (short) 12, add(request(0, 0, 1 << 20, 0, -1), "s", null, 0, 0, 100));
            assertEquals(0, r.sessionId);
            assertEquals(1, b.group().call(0, s -> b.handlers().fetch().sessions(0).size()).get());
        }
    }

    @Test
    void shouldLetAConsumerOf200PartitionsFetchIncrementallyWithEveryRecordDelivered(@TempDir Path dir)
        throws Exception {
        int partitions = 200;
        int records = 4_000;
        try (RecordingProxy proxy = new RecordingProxy()) {
            // 128 MiB per shard: 100 logs per shard share fewer write-behind chunks (56) than there are logs.
            BrokerConfig cfg = FetchHandlerTest.config(dir, 2).toBuilder().advertised("127.0.0.1", proxy.port())
                .build();
            try (Broker b = Broker.start(cfg)) {
                proxy.target(b.port());
                FetchWire.createTopic(b, "wide", partitions);
                Properties common = new Properties();
                common.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + proxy.port());
                Properties pp = (Properties) common.clone();
                pp.put(ProducerConfig.ACKS_CONFIG, "all");
                pp.put(ProducerConfig.LINGER_MS_CONFIG, "5");
                pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
                pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
                Map<Integer, List<String>> sent = new HashMap<>();
                try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                    List<java.util.concurrent.Future<org.apache.kafka.clients.producer.RecordMetadata>> acks =
                        new ArrayList<>();
                    for (int i = 0; i < records; i++) {
                        int p = (i * 7) % partitions;
                        acks.add(producer.send(new ProducerRecord<>("wide", p, null, "v" + i)));
                        sent.computeIfAbsent(p, k -> new ArrayList<>()).add("v" + i);
                    }
                    for (var a : acks) {
                        a.get();
                    }
                }
                Properties cp = (Properties) common.clone();
                cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
                cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
                cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "200");
                // Small responses, so the session's many fetches each carry a few partitions' data.
                cp.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, "4096");
                Map<Integer, List<String>> got = new HashMap<>();
                try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
                    List<TopicPartition> tps = new ArrayList<>();
                    for (int p = 0; p < partitions; p++) {
                        tps.add(new TopicPartition("wide", p));
                    }
                    consumer.assign(tps);
                    consumer.seekToBeginning(tps);
                    int total = 0;
                    long deadline = System.nanoTime() + 120_000_000_000L;
                    while (total < records && System.nanoTime() < deadline) {
                        for (ConsumerRecord<String, String> rec : consumer.poll(Duration.ofMillis(200))) {
                            got.computeIfAbsent(rec.partition(), k -> new ArrayList<>()).add(rec.value());
                            total++;
                        }
                    }
                    // A few empty polls at the end: incremental fetches that list nothing.
                    for (int i = 0; i < 3; i++) {
                        consumer.poll(Duration.ofMillis(300));
                    }
                }
                if (!sent.equals(got)) {
                    List<Integer> missing = new ArrayList<>();
                    for (int p = 0; p < partitions; p++) {
                        if (!sent.get(p).equals(got.getOrDefault(p, List.of()))) {
                            missing.add(p);
                        }
                    }
                    StringBuilder log = new StringBuilder();
                    for (String line : proxy.log) {
                        log.append('\n').append(line);
                    }
                    StringBuilder state = new StringBuilder();
                    try (WireClient c = new WireClient(b.port(), 30_000)) {
                        FetchRequestData r = request(0, 0, Integer.MAX_VALUE, 0, -1);
                        for (int p : missing) {
                            add(r, "wide", null, p, 0, 1 << 20);
                        }
                        FetchResponseData now = FetchWire.fetch(c, (short) 12, r);
                        for (int p : missing) {
                            FetchResponseData.PartitionData pd = partition(now, p);
                            state.append(' ').append(p).append(":e").append(pd.errorCode).append(":hw")
                                .append(pd.highWatermark).append(':').append(length(pd)).append(":shard")
                                .append(FetchWire.shardOf(b, "wide", p));
                        }
                    }
                    throw new AssertionError("partitions not delivered exactly: " + missing + "; now:" + state + log);
                }
            }
            List<RecordingProxy.FetchSeen> seen = new ArrayList<>(proxy.fetches);
            RecordingProxy.FetchSeen firstFull = null;
            int incremental = 0;
            int smallest = Integer.MAX_VALUE;
            for (RecordingProxy.FetchSeen f : seen) {
                if (f.epoch() == 0 && f.partitions() == partitions && firstFull == null) {
                    firstFull = f;
                } else if (f.sessionId() != 0 && f.epoch() > 0) {
                    incremental++;
                    smallest = Math.min(smallest, f.frameBytes());
                }
            }
            assertNotNull(firstFull, "a full fetch of all 200 partitions opened the session: " + seen.subList(0,
                Math.min(5, seen.size())));
            assertTrue(incremental >= 5, incremental + " incremental fetches");
            assertTrue(smallest * 10 < firstFull.frameBytes(), "incremental requests are far smaller: " + smallest
                + " bytes against " + firstFull.frameBytes() + " for the full one");
            assertTrue(proxy.responseSessionIds.stream().anyMatch(id -> id != 0), "responses carry the session id");
            assertTrue(proxy.responseErrors.stream().allMatch(e -> e == 0), "no session error: " + proxy.responseErrors);
        }
    }

    /**
     * A TCP proxy that forwards Kafka frames unchanged and decodes the Fetch requests (and their responses) it
     * carries: what the client really put on the wire.
     */
    static final class RecordingProxy implements AutoCloseable {
        record FetchSeen(int frameBytes, short version, int sessionId, int epoch, int partitions, int forgotten) {
        }

        final ConcurrentLinkedQueue<FetchSeen> fetches = new ConcurrentLinkedQueue<>();
        final ConcurrentLinkedQueue<Integer> responseSessionIds = new ConcurrentLinkedQueue<>();
        final ConcurrentLinkedQueue<Short> responseErrors = new ConcurrentLinkedQueue<>();
        /** One line per Fetch request and response, for a failure's message. */
        final ConcurrentLinkedQueue<String> log = new ConcurrentLinkedQueue<>();
        private final ServerSocket server;
        private final List<Socket> sockets = new ArrayList<>();
        private volatile int targetPort;
        private final Thread acceptor;

        RecordingProxy() throws IOException {
            server = new ServerSocket();
            server.bind(new InetSocketAddress("127.0.0.1", 0));
            acceptor = new Thread(this::accept, "recording-proxy");
            acceptor.setDaemon(true);
            acceptor.start();
        }

        int port() {
            return server.getLocalPort();
        }

        void target(int port) {
            targetPort = port;
        }

        private void accept() {
            while (!server.isClosed()) {
                try {
                    Socket client = server.accept();
                    Socket upstream = new Socket("127.0.0.1", targetPort);
                    client.setTcpNoDelay(true);
                    upstream.setTcpNoDelay(true);
                    synchronized (sockets) {
                        sockets.add(client);
                        sockets.add(upstream);
                    }
                    Map<Integer, Short> fetchVersions = new ConcurrentHashMap<>();
                    Thread up = new Thread(() -> pump(client, upstream, true, fetchVersions), "proxy-up");
                    Thread down = new Thread(() -> pump(upstream, client, false, fetchVersions), "proxy-down");
                    up.setDaemon(true);
                    down.setDaemon(true);
                    up.start();
                    down.start();
                } catch (IOException e) {
                    return;
                }
            }
        }

        private void pump(Socket from, Socket to, boolean requests, Map<Integer, Short> fetchVersions) {
            try {
                DataInputStream in = new DataInputStream(from.getInputStream());
                DataOutputStream out = new DataOutputStream(to.getOutputStream());
                while (true) {
                    int size = in.readInt();
                    byte[] frame = new byte[size];
                    in.readFully(frame);
                    if (requests) {
                        noteRequest(frame, fetchVersions);
                    } else {
                        noteResponse(frame, fetchVersions);
                    }
                    out.writeInt(size);
                    out.write(frame);
                    out.flush();
                }
            } catch (IOException e) {
                try {
                    from.close();
                    to.close();
                } catch (IOException ignored) {
                    // closing both ends
                }
            }
        }

        private void noteRequest(byte[] frame, Map<Integer, Short> fetchVersions) {
            ByteBuffer b = ByteBuffer.wrap(frame);
            if (b.getShort(0) != ApiKeys.FETCH.id) {
                return;
            }
            short version = b.getShort(2);
            ByteBufferReader r = new ByteBufferReader(b);
            RequestHeaderData h = new RequestHeaderData();
            h.read(r, ApiKeys.FETCH.requestHeaderVersion(version));
            FetchRequestData req = new FetchRequestData();
            req.read(r, version);
            int n = 0;
            for (FetchRequestData.FetchTopic t : req.topics) {
                n += t.partitions.size();
            }
            int forgotten = 0;
            for (FetchRequestData.ForgottenTopic t : req.forgottenTopicsData) {
                forgotten += t.partitions.size();
            }
            fetchVersions.put(h.correlationId, version);
            fetches.add(new FetchSeen(4 + frame.length, version, req.sessionId, req.sessionEpoch, n, forgotten));
            StringBuilder sb = new StringBuilder("> " + h.correlationId + " v" + version + " session " + req.sessionId
                + " epoch " + req.sessionEpoch + " wait " + req.maxWaitMs + " min " + req.minBytes + " max "
                + req.maxBytes + " parts");
            for (FetchRequestData.FetchTopic t : req.topics) {
                for (FetchRequestData.FetchPartition p : t.partitions) {
                    sb.append(' ').append(p.partition).append('@').append(p.fetchOffset);
                }
            }
            sb.append(" forget");
            for (FetchRequestData.ForgottenTopic t : req.forgottenTopicsData) {
                sb.append(' ').append(t.partitions);
            }
            log.add(sb.toString());
        }

        private void noteResponse(byte[] frame, Map<Integer, Short> fetchVersions) {
            int correlationId = ByteBuffer.wrap(frame).getInt(0);
            Short version = fetchVersions.remove(correlationId);
            if (version == null) {
                return;
            }
            ByteBufferReader r = new ByteBufferReader(ByteBuffer.wrap(frame));
            new ResponseHeaderData().read(r, ApiKeys.FETCH.responseHeaderVersion(version));
            FetchResponseData resp = new FetchResponseData();
            resp.read(r, version);
            responseSessionIds.add(resp.sessionId);
            responseErrors.add(resp.errorCode);
            StringBuilder sb = new StringBuilder("< " + correlationId + " session " + resp.sessionId + " error "
                + resp.errorCode + " parts");
            for (FetchResponseData.FetchableTopicResponse t : resp.responses) {
                for (FetchResponseData.PartitionData p : t.partitions) {
                    sb.append(' ').append(p.partitionIndex).append(":e").append(p.errorCode).append(":hw")
                        .append(p.highWatermark).append(':').append(p.records == null ? -1 : p.records.length());
                }
            }
            log.add(sb.toString());
        }

        @Override
        public void close() throws IOException {
            server.close();
            synchronized (sockets) {
                for (Socket s : sockets) {
                    s.close();
                }
            }
        }
    }
}
