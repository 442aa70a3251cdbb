package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.ApiVersionsRequestData;
import dev.isthmus.gateway.protocol.message.ApiVersionsResponseData;
import dev.isthmus.gateway.protocol.message.MetadataRequestData;
import dev.isthmus.gateway.protocol.message.MetadataResponseData;
import dev.isthmus.uring.UringEngine;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The connection limits of {@link Connection} over real sockets: request size (oversize, negative, tiny and
 * non-Kafka lengths close the connection), connections per broker (refused beyond the limit, accepted again
 * once one closes), and buffered bytes per connection (a client that does not read stops being served until
 * it reads, then gets every response in order; one that keeps sending without reading is no longer read from,
 * so its sends block, and is served completely once it reads: TCP back-pressure, never a close).
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(300) // a hang guard: two tests create a 1500-partition topic, 89 s on a machine with load ~35
class ConnectionLimitsTest {
    private static final int MAX_REQUEST = 64 << 10;
    private static final long MAX_BUFFERED = 256 << 10;

    private static BrokerConfig.Builder config(Path dir) {
        return BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2).memoryBytes(256L << 20)
            .pin(false).autoCreateTopics(false).maxRequestBytes(MAX_REQUEST).maxConnectionBufferedBytes(MAX_BUFFERED);
    }

    /** A fresh connection gets ApiVersions answered: the broker is alive and serving. */
    private static void assertServing(Broker b) throws IOException {
        try (WireClient c = new WireClient(b.port(), 30_000)) {
            c.send(WireClient.apiVersions(7));
            byte[] r = c.readFrame();
            assertNotNull(r, "a fresh connection must be served");
            assertEquals(7, WireClient.correlationId(r));
            ApiVersionsResponseData v = WireClient.body(r, ApiKeys.API_VERSIONS, (short) 0);
            assertEquals(0, v.errorCode);
        }
    }

    private static byte[] lengthOnly(int length) {
        return ByteBuffer.allocate(4).putInt(length).array();
    }

    @Test
    void shouldCloseConnectionsThatSendBadFrameLengths(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir).build())) {
            List<byte[]> bad = List.of(
                lengthOnly(MAX_REQUEST + 1),        // one byte over the limit: closed before the body arrives
                lengthOnly(Integer.MAX_VALUE),
                lengthOnly(-1),
                lengthOnly(Integer.MIN_VALUE),
                lengthOnly(0),
                lengthOnly(7),                      // shorter than any request header
                "GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII),
                new byte[] {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, (byte) 0xfc, 0x03, 0x03}); // TLS hello
            for (byte[] frame : bad) {
                try (WireClient c = new WireClient(b.port(), 30_000)) {
                    c.send(WireClient.apiVersions(1)); // a good request first, answered
                    assertEquals(1, WireClient.correlationId(c.readFrame()));
                    c.send(frame);
                    assertTrue(c.closedByBroker(), "closed after " + java.util.HexFormat.of().formatHex(frame));
                }
            }
            assertServing(b);
        }
    }

    @Test
    void shouldServeARequestOfExactlyTheMaximumSize(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir).build())) {
            // ApiVersions v3 whose client software name pads the frame to exactly the limit.
            ApiVersionsRequestData req = new ApiVersionsRequestData();
            req.clientSoftwareName = "";
            req.clientSoftwareVersion = "1.0";
            int base = WireClient.frame(ApiKeys.API_VERSIONS, (short) 3, 5, req).length - 4;
            req.clientSoftwareName = "a".repeat(MAX_REQUEST - base - 2); // the compact length grows by 2 bytes
            byte[] frame = WireClient.frame(ApiKeys.API_VERSIONS, (short) 3, 5, req);
            assertEquals(MAX_REQUEST, frame.length - 4);
            try (WireClient c = new WireClient(b.port(), 30_000)) {
                c.send(frame);
                byte[] r = c.readFrame();
                assertNotNull(r, "a request of exactly max request bytes is served");
                assertEquals(5, WireClient.correlationId(r));
            }
        }
    }

    @Test
    void shouldCloseOnUnknownApiKeysAndUnsupportedVersionsButAnswerApiVersionsInV0(@TempDir Path dir)
        throws Exception {
        try (Broker b = Broker.start(config(dir).build())) {
            // An API key no Kafka defines.
            byte[] unknown = WireClient.apiVersions(3);
            ByteBuffer.wrap(unknown).putShort(4, (short) 999);
            try (WireClient c = new WireClient(b.port(), 30_000)) {
                c.send(unknown);
                assertTrue(c.closedByBroker());
            }
            // Metadata at a version no schema has.
            byte[] metadata = WireClient.frame(ApiKeys.METADATA, (short) 1, 4, new MetadataRequestData());
            ByteBuffer.wrap(metadata).putShort(6, (short) 99);
            try (WireClient c = new WireClient(b.port(), 30_000)) {
                c.send(metadata);
                assertTrue(c.closedByBroker());
            }
            // ApiVersions above ours: UNSUPPORTED_VERSION in the v0 layout with our ranges (the client retries).
            byte[] future = WireClient.apiVersions(9);
            ByteBuffer.wrap(future).putShort(6, (short) 77);
            try (WireClient c = new WireClient(b.port(), 30_000)) {
                c.send(future);
                byte[] r = c.readFrame();
                assertNotNull(r);
                ApiVersionsResponseData v = WireClient.body(r, ApiKeys.API_VERSIONS, (short) 0);
                assertEquals(ErrorCodes.UNSUPPORTED_VERSION, v.errorCode);
                assertTrue(v.apiKeys.size() > 10);
                c.send(WireClient.apiVersions(10)); // and the connection stays usable
                assertEquals(10, WireClient.correlationId(c.readFrame()));
            }
            assertServing(b);
        }
    }

    @Test
    void shouldRefuseConnectionsBeyondTheLimitAndAcceptAgainWhenOneCloses(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir).maxConnections(3).build())) {
            List<WireClient> open = new ArrayList<>();
            try {
                for (int i = 0; i < 3; i++) {
                    WireClient c = new WireClient(b.port(), 30_000);
                    open.add(c);
                    c.send(WireClient.apiVersions(i));
                    assertEquals(i, WireClient.correlationId(c.readFrame()), "connection " + i + " is served");
                }
                assertEquals(3, Connection.openConnections(b));
                try (WireClient fourth = new WireClient(b.port(), 30_000)) {
                    try {
                        fourth.send(WireClient.apiVersions(99));
                    } catch (IOException closedAlready) {
                        // the broker may have closed it before our request went out
                    }
                    assertTrue(fourth.closedByBroker(), "a fourth connection is closed without an answer");
                }
                assertTrue(Connection.refusedConnections(b) >= 1);
                // The three still work.
                for (int i = 0; i < 3; i++) {
                    open.get(i).send(WireClient.apiVersions(100 + i));
                    assertEquals(100 + i, WireClient.correlationId(open.get(i).readFrame()));
                }
                open.remove(0).close();
                // Once the broker has seen that close, a new connection is served; until then it is refused.
                boolean served = false;
                for (int attempt = 0; attempt < 10_000 && !served; attempt++) {
                    try (WireClient c = new WireClient(b.port(), 30_000)) {
                        c.send(WireClient.apiVersions(200));
                        byte[] r = c.readFrame();
                        served = r != null && WireClient.correlationId(r) == 200;
                    } catch (IOException refused) {
                        // closed under our send: try again
                    }
                }
                assertTrue(served, "a connection is accepted again once one of the three closed");
            } finally {
                for (WireClient c : open) {
                    c.close();
                }
            }
        }
    }

    /**
     * Metadata for a topic of many partitions makes ~40 KiB responses from ~30-byte requests. A client that
     * pipelines hundreds of them with a tiny receive buffer and reads nothing fills the kernel's buffers; the
     * broker must then stop taking its requests (its pending responses stay near the limit instead of growing
     * to the 15+ MiB all of them would take), and serve everything, in order, once the client reads.
     */
    @Test
    void shouldStopTakingRequestsFromAConnectionThatDoesNotReadAndResumeWhenItDoes(@TempDir Path dir)
        throws Exception {
        try (Broker b = Broker.start(config(dir).build())) {
            b.createTopicBlocking("wide", 1500);
            int requests = 400;
            MetadataRequestData md = new MetadataRequestData();
            MetadataRequestData.MetadataRequestTopic t = new MetadataRequestData.MetadataRequestTopic();
            t.name = "wide";
            md.topics = new ArrayList<>(List.of(t));
            md.allowAutoTopicCreation = false;
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            for (int i = 0; i < requests; i++) {
                all.writeBytes(WireClient.frame(ApiKeys.METADATA, (short) 1, i, md));
            }
            try (Socket s = new Socket()) {
                s.setReceiveBufferSize(4096); // before connect: the window the broker sees stays small
                s.connect(new InetSocketAddress("127.0.0.1", b.port()));
                s.setSoTimeout(60_000);
                s.getOutputStream().write(all.toByteArray()); // ~12 KiB: fits the broker's receive side
                s.getOutputStream().flush();
                // Not reading: the kernel's buffers (a few MiB) fill and the broker's pending bytes reach the limit.
                long deadline = System.nanoTime() + 60_000_000_000L;
                while (Connection.bufferedHighWaterBytes(b) < MAX_BUFFERED && System.nanoTime() < deadline) {
                    Thread.onSpinWait();
                }
                assertTrue(Connection.bufferedHighWaterBytes(b) >= MAX_BUFFERED, "the limit was reached");
                java.io.DataInputStream in = new java.io.DataInputStream(s.getInputStream());
                long total = 0;
                for (int i = 0; i < requests; i++) {
                    int size = in.readInt();
                    byte[] r = new byte[size];
                    in.readFully(r);
                    assertEquals(i, WireClient.correlationId(r), "responses in request order");
                    if (i == 0) {
                        MetadataResponseData m = WireClient.body(r, ApiKeys.METADATA, (short) 1);
                        assertEquals(1500, m.topics.get(0).partitions.size());
                    }
                    total += size;
                }
                assertTrue(total > 10L * MAX_BUFFERED, "the scenario must produce far more than the limit: " + total);
            }
            long highWater = Connection.bufferedHighWaterBytes(b);
            // One response may start beyond the limit (a request is always taken when nothing is pending).
            assertTrue(highWater <= MAX_BUFFERED + 64 * 1024, "pending bytes of one connection peaked at "
                + highWater + ", limit " + MAX_BUFFERED);
            assertServing(b);
        }
    }

    /**
     * A client pipelines 2048 pairs of requests without reading: an ApiVersions padded to the maximum request
     * size (64 KiB, answered with half a KiB) and a Metadata of a 1500-partition topic (30 bytes, answered with
     * ~40 KiB) — 128 MiB of requests, 512 times the bound, and ~80 MiB of responses. The broker must stop reading
     * from it, so that its writes block while the broker holds about the bound for it, and then, once the
     * client reads, answer every request in order on the same connection: no close, nothing lost.
     */
    @Test
    void shouldStopReadingFromAClientThatKeepsSendingWithoutReadingAndServeItAllOnceItReads(@TempDir Path dir)
        throws Exception {
        try (Broker b = Broker.start(config(dir).build())) {
            b.createTopicBlocking("wide", 1500);
            int pairs = 2048;
            ApiVersionsRequestData av = new ApiVersionsRequestData();
            av.clientSoftwareName = "";
            av.clientSoftwareVersion = "1.0";
            int base = WireClient.frame(ApiKeys.API_VERSIONS, (short) 3, 0, av).length - 4;
            av.clientSoftwareName = "a".repeat(MAX_REQUEST - base - 2);
            byte[] padded = WireClient.frame(ApiKeys.API_VERSIONS, (short) 3, 0, av);
            assertEquals(MAX_REQUEST, padded.length - 4);
            MetadataRequestData md = new MetadataRequestData();
            MetadataRequestData.MetadataRequestTopic t = new MetadataRequestData.MetadataRequestTopic();
            t.name = "wide";
            md.topics = new ArrayList<>(List.of(t));
            md.allowAutoTopicCreation = false;
            byte[] metadata = WireClient.frame(ApiKeys.METADATA, (short) 1, 0, md);
            // One pair; the correlation ids (bytes 8..11 of each frame) are patched before each pair is sent.
            ByteBuffer pair = ByteBuffer.allocate(padded.length + metadata.length).put(padded).put(metadata);
            long totalBytes = (long) pairs * pair.capacity();
            long suspensionsBefore = Connection.receiveSuspensions(b);

            try (SocketChannel ch = SocketChannel.open()) {
                ch.setOption(java.net.StandardSocketOptions.SO_RCVBUF, 4096); // before connect: a small window
                ch.connect(new InetSocketAddress("127.0.0.1", b.port()));
                ch.configureBlocking(false);
                int[] next = {0};
                long[] written = {0};
                // Phase 1: write without reading until the broker has stopped reading and our writes no longer
                // go anywhere (the kernel's buffers on both sides are full): the client is blocked.
                boolean blocked = false;
                while (!blocked && (next[0] < pairs || pair.hasRemaining())) {
                    int n = writeSomePairs(ch, pair, padded.length, next, pairs, written);
                    blocked = n == 0 && Connection.receiveSuspendedConnections(b) >= 1;
                    if (n == 0 && !blocked) {
                        java.util.concurrent.locks.LockSupport.parkNanos(100_000L); // a polling back-off only
                    }
                }
                assertTrue(blocked, "the broker stopped reading before the client could send everything");
                assertTrue(Connection.receiveSuspensions(b) > suspensionsBefore);
                long usedWhileBlocked = 0;
                for (int shard = 0; shard < 2; shard++) {
                    usedWhileBlocked = Math.max(usedWhileBlocked,
                        b.arenaStats(shard).used(dev.isthmus.arena.Subsystem.NETWORK_RECEIVE));
                }
                System.out.printf("blocked after writing %d of %d bytes (%d pairs taken by the kernel); broker: %d"
                    + " receive bytes in the arena, held high water %d, pending high water %d (bound %d)%n",
                    written[0], totalBytes, next[0], usedWhileBlocked, Connection.heldHighWaterBytes(b),
                    Connection.bufferedHighWaterBytes(b), MAX_BUFFERED);
                assertTrue(written[0] < totalBytes / 2, "the client's writes blocked: " + written[0]);

                // Phase 2: read every response on one thread while the rest of the requests go out on this one
                // (a blocking channel takes one reader and one writer at once).
                ch.configureBlocking(true);
                AtomicReference<Throwable> readFailure = new AtomicReference<>();
                long[] responseBytes = {0};
                Thread reader = Thread.ofPlatform().name("limits-reader").start(() -> {
                    try {
                        java.io.DataInputStream in = new java.io.DataInputStream(new java.io.BufferedInputStream(
                            java.nio.channels.Channels.newInputStream(new ReadOnly(ch)), 64 << 10));
                        for (int i = 0; i < 2 * pairs; i++) {
                            int size = in.readInt();
                            byte[] r = new byte[size];
                            in.readFully(r);
                            assertEquals(i, WireClient.correlationId(r), "responses in request order");
                            if (i == 1) {
                                MetadataResponseData m = WireClient.body(r, ApiKeys.METADATA, (short) 1);
                                assertEquals(1500, m.topics.get(0).partitions.size());
                            }
                            responseBytes[0] += 4 + size;
                        }
                    } catch (Throwable e) {
                        readFailure.set(e);
                    }
                });
                try {
                    writeSomePairs(ch, pair, padded.length, next, pairs, written); // blocking: writes everything
                } catch (IOException e) {
                    throw new AssertionError("the broker closed the connection under the client's writes", e);
                }
                reader.join(120_000);
                assertFalse(reader.isAlive(), "every response was read");
                if (readFailure.get() != null) {
                    throw new AssertionError("reading the responses failed", readFailure.get());
                }
                assertEquals(totalBytes, written[0]);
                System.out.printf("served %d requests (%d bytes) with %d response bytes; held high water %d,"
                    + " pending high water %d (bound %d, max request %d); %d suspensions%n", 2 * pairs, totalBytes,
                    responseBytes[0], Connection.heldHighWaterBytes(b), Connection.bufferedHighWaterBytes(b),
                    MAX_BUFFERED, MAX_REQUEST, Connection.receiveSuspensions(b) - suspensionsBefore);

                // Memory stayed bounded throughout, however much the client sent: the bound plus one request and
                // one response pending, plus what the engine had already taken from the socket when it was told to
                // stop (at most its receive buffers; in this run see the held high water printed above).
                long slack = MAX_REQUEST + 64 * 1024;
                long inFlightReceive = (long) UringEngine.RECEIVE_BUFFER_COUNT * UringEngine.RECEIVE_BUFFER_BYTES;
                assertTrue(Connection.bufferedHighWaterBytes(b) <= MAX_BUFFERED + slack,
                    "pending bytes peaked at " + Connection.bufferedHighWaterBytes(b));
                assertTrue(Connection.heldHighWaterBytes(b) <= MAX_BUFFERED + slack + inFlightReceive,
                    "held bytes peaked at " + Connection.heldHighWaterBytes(b));
                assertTrue(usedWhileBlocked <= MAX_BUFFERED + slack + inFlightReceive,
                    "receive memory while blocked " + usedWhileBlocked);

                // The same connection still works.
                ch.write(ByteBuffer.wrap(WireClient.apiVersions(1_000_000)));
                java.io.DataInputStream in = new java.io.DataInputStream(java.nio.channels.Channels.newInputStream(ch));
                byte[] r = new byte[in.readInt()];
                in.readFully(r);
                assertEquals(1_000_000, WireClient.correlationId(r), "the connection was never closed");
            }
            long deadline = System.nanoTime() + 60_000_000_000L; // against hangs only
            while (Connection.openConnections(b) > 0 && System.nanoTime() < deadline) {
                java.util.concurrent.locks.LockSupport.parkNanos(100_000L);
            }
            assertEquals(0, Connection.openConnections(b));
            assertEquals(0, Connection.receiveSuspendedConnections(b), "a closed connection is not counted as suspended");
            assertServing(b);
        }
    }

    /**
     * Writes as much of the pair sequence as the socket takes now; returns the bytes written. {@code next} is the
     * index of the pair in {@code pair} (whose position says how far it went out), {@code pairs} the count.
     */
    private static int writeSomePairs(SocketChannel ch, ByteBuffer pair, int firstFrameBytes, int[] next, int pairs,
                                      long[] written) throws IOException {
        int total = 0;
        while (true) {
            if (!pair.hasRemaining()) {
                if (next[0] >= pairs) {
                    return total;
                }
                pair.clear();
                pair.putInt(8, 2 * next[0]);
                pair.putInt(firstFrameBytes + 8, 2 * next[0] + 1);
                next[0]++;
            }
            int n = ch.write(pair);
            if (n == 0) {
                return total;
            }
            total += n;
            written[0] += n;
        }
    }

    /**
     * The reading side of a channel another thread writes to, without the blocking-mode lock that
     * Channels.newInputStream of the channel itself holds for the whole of each blocking read.
     */
    private record ReadOnly(SocketChannel ch) implements java.nio.channels.ReadableByteChannel {
        @Override
        public int read(ByteBuffer dst) throws IOException {
            return ch.read(dst);
        }

        @Override
        public boolean isOpen() {
            return ch.isOpen();
        }

        @Override
        public void close() {
            // the test closes the channel
        }
    }

    @Test
    void shouldAnswerALongPipelineOfInstantRequestsWithoutRecursing(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir).maxConnectionBufferedBytes(64L << 20).build())) {
            int n = 50_000; // ~1 MiB of ApiVersions v0 in one write: answered at once, parsed in one loop
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            for (int i = 0; i < n; i++) {
                all.writeBytes(WireClient.apiVersions(i));
            }
            try (WireClient c = new WireClient(b.port(), 60_000)) {
                Thread writer = Thread.ofPlatform().start(() -> {
                    try {
                        c.send(all.toByteArray());
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                });
                for (int i = 0; i < n; i++) {
                    byte[] r = c.readFrame();
                    assertNotNull(r, "response " + i);
                    assertEquals(i, WireClient.correlationId(r));
                }
                writer.join();
            }
            assertArrayEquals(new long[] {0}, new long[] {Connection.refusedConnections(b)});
        }
    }

    // ------------------------------------------------------------------ issue 23: hostile clients

    /** Any thread: the sum over shards of a receive memory gauge. */
    private static long sum(Broker b, java.util.function.ToLongFunction<ReceiveMemory> gauge) {
        long n = 0;
        for (int i = 0; i < b.shardCount(); i++) {
            n += gauge.applyAsLong(b.receiveMemory(i));
        }
        return n;
    }

    /** Waits (against hangs only, never as an assertion of speed) until {@code condition} holds. */
    private static void await(String what, java.util.function.BooleanSupplier condition) {
        await(null, what, condition);
    }

    /** As {@link #await(String, java.util.function.BooleanSupplier)}; on failure shows {@code b}'s receive state. */
    private static void await(Broker b, String what, java.util.function.BooleanSupplier condition) {
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                StringBuilder state = new StringBuilder();
                for (int i = 0; b != null && i < b.shardCount(); i++) {
                    int id = i;
                    try {
                        state.append("shard ").append(i).append(": ").append(b.group().call(i,
                            s -> b.receiveMemory(id).describe()).get(10, java.util.concurrent.TimeUnit.SECONDS));
                    } catch (Exception e) {
                        state.append("shard ").append(i).append(": ").append(e).append('\n');
                    }
                }
                throw new AssertionError("not reached within a minute: " + what + "\n" + state);
            }
            java.util.concurrent.locks.LockSupport.parkNanos(1_000_000L);
        }
    }

    /**
     * Slowloris (finding 6): a connection that starts a request and stops sending — after part of a frame, or
     * part of a length — is closed once the request receive timeout passes, with a counted warning; an idle
     * connection that started nothing is not, and new clients are served throughout.
     */
    @Test
    void shouldCloseAConnectionThatStartsARequestAndDoesNotFinishIt(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir).requestReceiveTimeoutMs(200).build());
             WireClient idle = new WireClient(b.port(), 30_000)) {
            ConnectionWarnings warnings = Connection.warnings(b);
            long before = warnings.count(ConnectionWarnings.Reason.RECEIVE_TIMEOUT);
            try (WireClient partialFrame = new WireClient(b.port(), 30_000);
                 WireClient partialLength = new WireClient(b.port(), 30_000)) {
                byte[] av = WireClient.apiVersions(1);
                partialFrame.send(java.util.Arrays.copyOf(av, av.length - 3)); // all but the last 3 bytes
                partialLength.send(new byte[] {0, 0});                       // half a length
                assertTrue(partialFrame.closedByBroker(), "a frame started and not finished is closed");
                assertTrue(partialLength.closedByBroker(), "a length started and not finished is closed");
            }
            assertEquals(before + 2, warnings.count(ConnectionWarnings.Reason.RECEIVE_TIMEOUT));
            // The idle connection outlived both deadlines and is served.
            idle.send(WireClient.apiVersions(2));
            assertEquals(2, WireClient.correlationId(idle.readFrame()));
            assertServing(b);
            await("receive memory released", () -> sum(b, ReceiveMemory::committedGauge) == 0);
        }
    }

    /**
     * The receive-memory attack of finding 6: connections that each start a large request (most of the shard's
     * receive memory) and stop half way, and more that start small requests and stop, must not keep new clients
     * out. Large frames beyond the shard's memory for them wait unread (back-pressure: no disconnect), small
     * ones are served from the headroom, and 10 of 10 new kafka-clients clients get their answers while the
     * attack holds; once the attackers go, every byte of receive memory is released.
     */
    @Test
    void shouldServeNewClientsWhilePartialRequestsHoldTheReceiveMemory(@TempDir Path dir) throws Exception {
        int maxRequest = 24 << 20;
        BrokerConfig cfg = config(dir).maxRequestBytes(maxRequest).maxConnectionBufferedBytes(32L << 20)
            .requestReceiveTimeoutMs(600_000).build();
        try (Broker b = Broker.start(cfg)) {
            long capacity = b.receiveMemory(0).capacityBytes();
            assertTrue(capacity < 2L * maxRequest, "the scenario needs two large requests to exceed a shard: "
                + capacity);
            List<SocketChannel> attackers = new ArrayList<>();
            try {
                int large = 8;
                int sentPerLarge = 20 << 20;
                List<ByteBuffer> pending = new ArrayList<>();
                for (int i = 0; i < large; i++) {
                    SocketChannel ch = SocketChannel.open(new InetSocketAddress("127.0.0.1", b.port()));
                    ch.configureBlocking(false);
                    attackers.add(ch);
                    ByteBuffer buf = ByteBuffer.allocate(4 + sentPerLarge);
                    buf.putInt(maxRequest).put(WireClient.apiVersions(0), 4, 8).position(0);
                    pending.add(buf);
                }
                for (int i = 0; i < 24; i++) {
                    SocketChannel ch = SocketChannel.open(new InetSocketAddress("127.0.0.1", b.port()));
                    attackers.add(ch);
                    ByteBuffer buf = ByteBuffer.allocate(2_000);
                    buf.putInt(4_000).put(WireClient.apiVersions(0), 4, 8).position(0);
                    ch.write(buf); // a small request, started and never finished
                }
                // Write what the broker takes; those it does not read stay blocked (their buffers fill).
                await("large requests sent or held back", () -> {
                    boolean progress = false;
                    for (int i = 0; i < large; i++) {
                        try {
                            progress |= attackers.get(i).write(pending.get(i)) > 0;
                        } catch (IOException e) {
                            throw new AssertionError("an attacker was disconnected: " + e, e);
                        }
                    }
                    return !progress && sum(b, ReceiveMemory::waits) >= large - b.shardCount();
                });
                // Grants never pass the budget; bytes the engine had taken from waiting connections' sockets before
                // they stopped reading come on top (at most the engine's receive buffers).
                long engineBuffers = (long) UringEngine.RECEIVE_BUFFER_COUNT * UringEngine.RECEIVE_BUFFER_BYTES;
                for (int i = 0; i < b.shardCount(); i++) {
                    ReceiveMemory rm = b.receiveMemory(i);
                    assertTrue(rm.committedGauge() <= rm.capacityBytes() + engineBuffers, "shard " + i + " committed "
                        + rm.committedGauge() + " of " + rm.capacityBytes());
                }
                // 10 of 10 new kafka-clients clients are answered while the attack holds.
                for (int i = 0; i < 10; i++) {
                    Properties p = new Properties();
                    p.put(org.apache.kafka.clients.admin.AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG,
                        "127.0.0.1:" + b.port());
                    p.put(org.apache.kafka.clients.admin.AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 60_000);
                    try (org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(p)) {
                        assertEquals(1, admin.describeCluster().nodes().get(60, java.util.concurrent.TimeUnit.SECONDS)
                            .size(), "client " + i + " is answered");
                    }
                    assertServing(b);
                }
                // No one was disconnected for the broker's lack of memory without a logged reason: the small
                // attackers are all connected; a large one that had to wait may have been closed only to make room
                // for small requests (each close a counted warning).
                ByteBuffer probe = ByteBuffer.allocate(1);
                int closedLarge = 0;
                for (int i = 0; i < attackers.size(); i++) {
                    SocketChannel ch = attackers.get(i);
                    ch.configureBlocking(false);
                    int n;
                    try {
                        n = ch.read(probe);
                    } catch (IOException reset) {
                        n = -1;
                    }
                    if (i < large && n < 0) {
                        closedLarge++;
                    } else {
                        assertEquals(0, n, "attacker " + i + "'s connection is still open");
                    }
                }
                ConnectionWarnings w = Connection.warnings(b);
                assertEquals(closedLarge, w.count(ConnectionWarnings.Reason.RECEIVE_MEMORY_EXHAUSTED),
                    "every large attacker closed was closed with a reason");
                assertTrue(closedLarge < large, "a granted one is never closed: " + closedLarge);
                assertEquals(0, w.count(ConnectionWarnings.Reason.RECEIVE_ERROR));
                assertEquals(0, w.count(ConnectionWarnings.Reason.FRAME_ABOVE_RECEIVE_MEMORY));
                assertTrue(sum(b, ReceiveMemory::waits) >= large - b.shardCount(), "large requests waited");
            } finally {
                for (SocketChannel ch : attackers) {
                    ch.close();
                }
            }
            await(b, "every connection closed", () -> Connection.openConnections(b) == 0);
            await(b, "receive memory released", () -> sum(b, ReceiveMemory::committedGauge) == 0);
            for (int i = 0; i < b.shardCount(); i++) {
                int shard = i;
                await(b, "shard " + i + " receive arena memory freed",
                    () -> b.arenaStats(shard).used(dev.isthmus.arena.Subsystem.NETWORK_RECEIVE) == 0);
            }
            assertServing(b);
        }
    }

    /** A Fetch v12 of partition 0 of {@code topic} from offset 0, answered at once. */
    private static byte[] fetch(int correlationId, String topic, int maxBytes) {
        dev.isthmus.gateway.protocol.message.FetchRequestData f = new dev.isthmus.gateway.protocol.message.FetchRequestData();
        f.maxWaitMs = 0;
        f.minBytes = 1;
        f.maxBytes = maxBytes;
        dev.isthmus.gateway.protocol.message.FetchRequestData.FetchTopic t =
            new dev.isthmus.gateway.protocol.message.FetchRequestData.FetchTopic();
        t.topic = topic;
        dev.isthmus.gateway.protocol.message.FetchRequestData.FetchPartition p =
            new dev.isthmus.gateway.protocol.message.FetchRequestData.FetchPartition();
        p.partition = 0;
        p.fetchOffset = 0;
        p.partitionMaxBytes = maxBytes;
        t.partitions.add(p);
        f.topics.add(t);
        return WireClient.frame(ApiKeys.FETCH, (short) 12, correlationId, f);
    }

    /** Produces {@code records} records of 1 KiB, one request at a time (so no connection pipelines). */
    private static void produce(Broker b, String topic, int records) throws Exception {
        Properties pp = new Properties();
        pp.put(org.apache.kafka.clients.producer.ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        pp.put(org.apache.kafka.clients.producer.ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 1);
        pp.put(org.apache.kafka.clients.producer.ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG,
            org.apache.kafka.common.serialization.ByteArraySerializer.class.getName());
        pp.put(org.apache.kafka.clients.producer.ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG,
            org.apache.kafka.common.serialization.ByteArraySerializer.class.getName());
        try (org.apache.kafka.clients.producer.KafkaProducer<byte[], byte[]> p =
                 new org.apache.kafka.clients.producer.KafkaProducer<>(pp)) {
            for (int i = 0; i < records; i++) {
                p.send(new org.apache.kafka.clients.producer.ProducerRecord<>(topic, new byte[1024])).get();
            }
        }
    }

    /**
     * The bound on unanswered bytes counts what a request may produce before it starts (the 300 pipelined
     * 16 MiB fetches of issue 23 were all taken at once, 4,688 MiB held against 128 MiB): fetches whose
     * max_bytes exceeds the bound run one at a time, smaller ones as many as fit, and every response still
     * comes, in order.
     */
    @Test
    void shouldCountAFetchsMaxBytesAgainstTheBoundBeforeStartingIt(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir).build())) {
            b.createTopicBlocking("fetched", 1);
            produce(b, "fetched", 200);
            assertEquals(1, Connection.startedHighWater(b), "the producer sent one request at a time");
            int requests = 40;
            for (int maxBytes : new int[] {1 << 20, 48 << 10}) {
                ByteArrayOutputStream all = new ByteArrayOutputStream();
                for (int i = 0; i < requests; i++) {
                    all.writeBytes(fetch(i, "fetched", maxBytes));
                }
                try (WireClient c = new WireClient(b.port(), 60_000)) {
                    c.send(all.toByteArray()); // all pipelined, read only once every one was sent
                    for (int i = 0; i < requests; i++) {
                        byte[] r = c.readFrame();
                        assertNotNull(r, "response " + i);
                        assertEquals(i, WireClient.correlationId(r), "responses in request order");
                        dev.isthmus.gateway.protocol.message.FetchResponseData f = WireClient.body(r, ApiKeys.FETCH,
                            (short) 12);
                        assertEquals(ErrorCodes.NONE, f.responses.get(0).partitions.get(0).errorCode);
                        assertTrue(f.responses.get(0).partitions.get(0).records.length() > 0, "records returned");
                    }
                }
                long started = Connection.startedHighWater(b);
                if (maxBytes > MAX_BUFFERED) {
                    assertEquals(1, started, "a fetch whose max_bytes exceeds the bound runs alone");
                } else {
                    assertTrue(started <= MAX_BUFFERED / maxBytes + 1, "at most as many " + maxBytes
                        + "-byte fetches as fit under the bound ran at once: " + started);
                }
            }
            assertServing(b);
        }
    }

    /**
     * What a connection holds is released when it closes, in-flight responses included: a client that pipelines
     * fetches, reads nothing and goes away leaves no receive or response memory behind.
     */
    @Test
    void shouldReleaseEverythingAConnectionHeldWhenItCloses(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir).build())) {
            b.createTopicBlocking("held", 1);
            produce(b, "held", 300);
            long[] otherBefore = new long[b.shardCount()];
            // The produced batches' receive fragments may stay shared by the partition's batch cache (the payload
            // shares the received bytes; the cache shares them when it is on the same shard), so receive memory
            // returns to what it was before this connection, not to zero; the cache may drop them meanwhile.
            long[] receiveBefore = new long[b.shardCount()];
            for (int i = 0; i < otherBefore.length; i++) {
                otherBefore[i] = b.arenaStats(i).used(dev.isthmus.arena.Subsystem.OTHER);
                receiveBefore[i] = b.arenaStats(i).used(dev.isthmus.arena.Subsystem.NETWORK_RECEIVE);
            }
            long suspensions = Connection.receiveSuspensions(b);
            try (Socket s = new Socket()) {
                s.setReceiveBufferSize(4096); // before connect: responses pile up at the broker
                s.connect(new InetSocketAddress("127.0.0.1", b.port()));
                ByteArrayOutputStream all = new ByteArrayOutputStream();
                for (int i = 0; i < 200; i++) {
                    all.writeBytes(fetch(i, "held", 64 << 10));
                }
                s.getOutputStream().write(all.toByteArray());
                s.getOutputStream().flush();
                await("the connection holds the bound", () -> Connection.receiveSuspensions(b) > suspensions);
                s.setSoLinger(true, 0); // reset: the responses it holds will never be read
            }
            await("the connection closed", () -> Connection.openConnections(b) == 0);
            await("its requests finished", () -> Connection.pendingRequests(b) == 0);
            await("receive memory released", () -> sum(b, ReceiveMemory::committedGauge) == 0);
            for (int i = 0; i < b.shardCount(); i++) {
                int shard = i;
                await("shard " + i + " receive memory freed",
                    () -> b.arenaStats(shard).used(dev.isthmus.arena.Subsystem.NETWORK_RECEIVE) <= receiveBefore[shard]);
                await("shard " + i + " response memory freed",
                    () -> b.arenaStats(shard).used(dev.isthmus.arena.Subsystem.OTHER) == otherBefore[shard]);
            }
            assertEquals(0, Connection.receiveSuspendedConnections(b));
            assertServing(b);
        }
    }

    /**
     * Warnings about misbehaving connections are rate-limited (one line per reason per interval) and all counted
     * in /metrics: 30 connections with bad frame lengths make one log line and a count of 30.
     */
    @Test
    void shouldRateLimitAndCountWarningsAboutBadConnections(@TempDir Path dir) throws Exception {
        java.util.concurrent.ConcurrentLinkedQueue<String> lines = new java.util.concurrent.ConcurrentLinkedQueue<>();
        java.util.logging.Handler h = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                if (r.getMessage() != null && r.getMessage().contains("request frame length")) {
                    lines.add(r.getMessage());
                }
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        java.util.logging.Logger log = java.util.logging.Logger.getLogger(Connection.class.getName());
        log.addHandler(h);
        try (Broker b = Broker.start(config(dir).metrics("127.0.0.1", 0).build())) {
            Connection.warnings(b).intervalNs(3_600_000_000_000L); // an hour: the count below is exact
            for (int i = 0; i < 30; i++) {
                try (WireClient c = new WireClient(b.port(), 30_000)) {
                    c.send(lengthOnly(-1 - i));
                    assertTrue(c.closedByBroker());
                }
            }
            assertEquals(30, Connection.warnings(b).count(ConnectionWarnings.Reason.BAD_FRAME_LENGTH));
            assertEquals(1, lines.size(), "one line per reason per interval: " + lines);
            java.net.http.HttpResponse<String> m = java.net.http.HttpClient.newHttpClient().send(
                java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + b.metricsPort()
                    + "/metrics")).build(), java.net.http.HttpResponse.BodyHandlers.ofString());
            assertTrue(m.body().contains("\nisthmus_connection_warnings_total{reason=\"bad_frame_length\"} 30\n"),
                m.body());
            assertTrue(m.body().contains("\nisthmus_connection_warnings_total{reason=\"receive_timeout\"} 0\n"),
                m.body());
            assertServing(b);
        } finally {
            log.removeHandler(h);
        }
    }

    /**
     * A connection gets a bounded share of its shard's receive memory: with a 7 MiB request still running (a long
     * poll), its next 7 MiB request would pass its share (half of the shard's memory for large requests) and is not
     * read, while another connection's 7 MiB request, which the shard has room for, is read and answered.
     */
    @Test
    void shouldHoldAConnectionToItsShareOfReceiveMemory(@TempDir Path dir) throws Exception {
        // One shard, so that both connections share its receive memory.
        BrokerConfig cfg = config(dir).shards(1).maxRequestBytes(16 << 20).maxConnectionBufferedBytes(32L << 20)
            .build();
        try (Broker b = Broker.start(cfg)) {
            b.createTopicBlocking("quiet", 1);
            ReceiveMemory rm = b.receiveMemory(0);
            int pad = 14 << 20;
            assertTrue(2L * pad > rm.shareBytes() && 2L * pad + (1 << 20) < rm.largePoolBytes(),
                "two requests pass one connection's share and fit the shard: share " + rm.shareBytes() + ", pool "
                + rm.largePoolBytes());
            dev.isthmus.gateway.protocol.message.FetchRequestData f = new dev.isthmus.gateway.protocol.message.FetchRequestData();
            f.maxWaitMs = 60_000; // the topic is empty: a long poll
            f.minBytes = 1;
            f.maxBytes = 1024;
            f.rackId = "r".repeat(pad);
            dev.isthmus.gateway.protocol.message.FetchRequestData.FetchTopic t =
                new dev.isthmus.gateway.protocol.message.FetchRequestData.FetchTopic();
            t.topic = "quiet";
            dev.isthmus.gateway.protocol.message.FetchRequestData.FetchPartition p =
                new dev.isthmus.gateway.protocol.message.FetchRequestData.FetchPartition();
            p.partitionMaxBytes = 1024;
            t.partitions.add(p);
            f.topics.add(t);
            ByteArrayOutputStream two = new ByteArrayOutputStream();
            two.writeBytes(WireClient.frame(ApiKeys.FETCH, (short) 12, 1, f));
            two.writeBytes(WireClient.frame(ApiKeys.FETCH, (short) 12, 2, f));
            ApiVersionsRequestData av = new ApiVersionsRequestData();
            av.clientSoftwareName = "a".repeat(pad);
            av.clientSoftwareVersion = "1.0";
            byte[] large = WireClient.frame(ApiKeys.API_VERSIONS, (short) 3, 3, av);
            try (SocketChannel greedy = SocketChannel.open(new InetSocketAddress("127.0.0.1", b.port()))) {
                greedy.configureBlocking(false);
                ByteBuffer out = ByteBuffer.wrap(two.toByteArray());
                await(b, "the second request waits", () -> {
                    try {
                        greedy.write(out);
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                    return rm.waitingGauge() >= 1;
                });
                // Another connection is read and served meanwhile.
                try (WireClient other = new WireClient(b.port(), 60_000)) {
                    other.send(large);
                    byte[] r = other.readFrame();
                    assertNotNull(r, "the other connection is served");
                    assertEquals(3, WireClient.correlationId(r));
                }
                assertEquals(1, rm.waitingGauge(), "the greedy connection still waits");
                assertEquals(0, Connection.warnings(b).count(ConnectionWarnings.Reason.RECEIVE_MEMORY_EXHAUSTED));
            }
        }
    }

    /**
     * A request the shard's receive memory could never hold (here: below --max-request-bytes, above what a shard
     * can take) is refused with one logged, counted reason as soon as its length arrives, instead of filling the
     * memory and failing half way.
     */
    @Test
    void shouldCloseARequestLargerThanTheShardCanReceiveWithAReason(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir).maxRequestBytes(60 << 20).maxConnectionBufferedBytes(64L << 20)
            .build())) {
            long max = b.receiveMemory(0).maxFrameBytes();
            assertTrue(max < (60L << 20), "the scenario needs a shard that cannot take the maximum request: " + max);
            try (WireClient c = new WireClient(b.port(), 30_000)) {
                ByteBuffer head = ByteBuffer.allocate(12).putInt((int) max).put(WireClient.apiVersions(0), 4, 8);
                c.send(head.array());
                assertTrue(c.closedByBroker(), "a request above what the shard can take is refused");
            }
            assertEquals(1, Connection.warnings(b).count(ConnectionWarnings.Reason.FRAME_ABOVE_RECEIVE_MEMORY));
            assertServing(b);
        }
    }
}
