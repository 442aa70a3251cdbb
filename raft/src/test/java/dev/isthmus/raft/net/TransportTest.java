package dev.isthmus.raft.net;

import dev.isthmus.raft.AppendRequest;
import dev.isthmus.raft.BytesPayload;
import dev.isthmus.raft.Entry;
import dev.isthmus.raft.RaftMessage;
import dev.isthmus.raft.codec.RaftCodec;
import dev.isthmus.uring.shard.ShardGroup;
import dev.isthmus.uring.shard.ShardGroupConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.DataInputStream;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The transport against hand-written peers on plain sockets: a peer that completes the hello and then stops
 * reading (the node's queue for it stays bounded and drops, the node keeps working), and a peer that accepts
 * but never says hello (the node gives up after the connect timeout and dials again with back-off).
 */
class TransportTest {
    static final long DEADLINE_NS = TimeUnit.SECONDS.toNanos(60);
    ShardGroup shards;
    RaftTransport transport;
    final ConcurrentLinkedQueue<RaftMessage> received = new ConcurrentLinkedQueue<>();

    @AfterEach
    void tearDown() {
        if (transport != null) {
            transport.close();
        }
        if (shards != null) {
            shards.close();
        }
    }

    void start(TransportConfig config, int peer, int peerPort) {
        shards = ShardGroup.start(ShardGroupConfig.of(2).withPin(false), null);
        transport = RaftTransport.start(shards, 0, config, new InetSocketAddress("127.0.0.1", 0), null,
            Map.of(peer, new InetSocketAddress("127.0.0.1", peerPort)), id -> received::add);
    }

    static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + DEADLINE_NS;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(20);
        }
    }

    TransportMetrics metrics() throws Exception {
        return transport.metrics().get(10, TimeUnit.SECONDS);
    }

    static TransportFrames.Hello readHello(InputStream in) throws Exception {
        DataInputStream d = new DataInputStream(in);
        int n = d.readInt();
        byte[] frame = new byte[n + 4];
        ByteBuffer.wrap(frame).putInt(n);
        d.readFully(frame, 4, n);
        return (TransportFrames.Hello) TransportFrames.decode(ByteBuffer.wrap(frame), frame.length);
    }

    @Test
    void shouldBoundWhatIsQueuedForAPeerThatStopsReading() throws Exception {
        try (ServerSocket fake = new ServerSocket(0)) {
            TransportConfig config = TransportConfig.defaults("t").withBuffers(1 << 20, 64 << 10, 8 << 20)
                .withTimeouts(1000, 50, 600_000);
            start(config, 9, fake.getLocalPort());
            try (Socket s = fake.accept()) {
                s.setReceiveBufferSize(64 << 10);
                TransportFrames.Hello h = readHello(s.getInputStream());
                assertEquals(0, h.from());
                assertEquals(9, h.to());
                s.getOutputStream().write(TransportFrames.encode(new TransportFrames.Hello(9, 0, h.connectionId(), "t",
                    "127.0.0.1", fake.getLocalPort())));
                await("connected", () -> {
                    try {
                        return shards.call(0, sh -> transport.onShard(0).isConnected(9)).get();
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                });
                // 64 MiB of appends towards a peer that reads nothing.
                byte[] chunk = new byte[256 << 10];
                for (int i = 0; i < 256; i++) {
                    int idx = i;
                    shards.call(idx % 2, sh -> {
                        transport.onShard(sh.id()).send(new AppendRequest(1, 0, 9, 1, idx - 1, 1, -1,
                            List.of(Entry.data(idx, 1, new BytesPayload(chunk, 1)))));
                        return null;
                    }).get(10, TimeUnit.SECONDS);
                }
                await("messages beyond the bound dropped", () -> {
                    try {
                        TransportMetrics m = metrics();
                        return m.droppedPeerBufferFull() + m.droppedShardBufferFull() > 0;
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                });
                TransportMetrics m = metrics();
                long frameBytes = RaftCodec.defaults().frameBytes(new AppendRequest(1, 0, 9, 1, 0, 1, -1,
                    List.of(Entry.data(1, 1, new BytesPayload(chunk, 1)))));
                // What left the node: the socket buffers' worth plus at most the bounded queues.
                assertTrue(m.bytesSent() < 64L * frameBytes, m.toString());
                assertTrue(m.droppedPeerBufferFull() + m.droppedShardBufferFull() > 100, m.toString());
                assertEquals(0, m.connectionsClosed(), m.toString());
            }
        }
    }

    @Test
    void shouldGiveUpOnAPeerThatNeverSaysHelloAndDialAgain() throws Exception {
        try (ServerSocket silent = new ServerSocket(0)) {
            start(TransportConfig.defaults("t").withTimeouts(300, 50, 2000).withBackoff(20, 100), 5,
                silent.getLocalPort());
            Socket first = silent.accept();
            Socket second = silent.accept(); // the node dialed again after giving up on the first
            first.setSoTimeout(10_000);
            assertEquals(-1, drain(first.getInputStream()), "the node closed the silent connection");
            TransportMetrics m = metrics();
            assertTrue(m.connectAttempts() >= 2, m.toString());
            assertTrue(m.handshakeFailures() >= 1, m.toString());
            assertEquals(0, m.connectionsEstablished(), m.toString());
            first.close();
            second.close();
        }
    }

    private static int drain(InputStream in) throws Exception {
        byte[] b = new byte[4096];
        int r;
        while ((r = in.read(b)) > 0) {
            // the hello, then the end of the stream
        }
        return r;
    }
}
