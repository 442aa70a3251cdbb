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
@Timeout(120)
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
}
