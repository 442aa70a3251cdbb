package dev.isthmus.uring;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static dev.isthmus.uring.IoEngineTest.drive;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Receive flow control ({@link TcpConnection#suspendReceive()} / {@link TcpConnection#resumeReceive()}) on
 * both engines, over real loopback sockets: a suspended connection makes its peer's writes block (the kernel's
 * buffers fill and nothing more is taken from the socket), and every byte arrives in order after resuming, through
 * random suspends and resumes, from inside and outside callbacks, with the shared receive buffers exhausted by
 * another connection at the same time, and across closes on either side.
 *
 * <p>The peer streams a pattern in which the big-endian long at byte offset {@code 8k} is {@code k}, so a lost,
 * repeated or reordered buffer shows as a mismatch at its exact offset.
 */
class TcpFlowControlTest {
    private static final long PEER_BYTES = 100L << 20;

    static long seed(String test) {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println(test + " seed: " + seed + " (replay with -Disthmus.seed=" + seed + ")");
        return seed;
    }

    /** Fills {@code buf[0, limit)} with the pattern bytes starting at stream offset {@code from}; position 0. */
    static void pattern(ByteBuffer buf, long from) {
        buf.position(0);
        for (long o = from; buf.hasRemaining(); o++) {
            buf.put((byte) ((o >>> 3) >>> (8 * (7 - (int) (o & 7)))));
        }
        buf.flip();
    }

    /** Checks received bytes against the pattern and records the first mismatch. */
    static final class Checker implements TcpConnection.ReceiveHandler {
        long received;
        long callbacks;
        /** Callbacks while the test had seen {@link TcpConnection#isReceiveSuspended()} true: must stay 0. */
        long callbacksWhileSuspended;
        boolean frozen;
        /** Set by the test when it asks for a suspension, cleared when it resumes. */
        boolean suspendAsked;
        /** Callbacks between asking for a suspension and seeing it in effect: data that was in flight. */
        long inFlightCallbacks;
        int closedResult = Integer.MIN_VALUE;
        int closedCount;
        String mismatch;
        /** Set by the test: what to do inside a callback (suspend, resume, close...). */
        java.util.function.Consumer<TcpConnection> onData = c -> { };

        @Override
        public void onReceive(TcpConnection c, MemorySegment memory, long offset, int length, int bufferId) {
            if (frozen) {
                callbacksWhileSuspended++;
            } else if (suspendAsked) {
                inFlightCallbacks++;
            }
            if (closedCount > 0 && mismatch == null) {
                mismatch = "data after onClosed";
            }
            for (int i = 0; i < length && mismatch == null; i++) {
                long o = received + i;
                byte want = (byte) ((o >>> 3) >>> (8 * (7 - (int) (o & 7))));
                byte got = memory.get(ValueLayout.JAVA_BYTE, offset + i);
                if (got != want) {
                    mismatch = "byte " + o + " is " + got + ", expected " + want;
                }
            }
            received += length;
            callbacks++;
            c.releaseBuffer(bufferId);
            onData.accept(c);
        }

        @Override
        public void onClosed(TcpConnection c, int result) {
            closedCount++;
            closedResult = result;
        }
    }

    /** A listener on loopback that keeps what it accepts. */
    static final class Server implements AutoCloseable {
        final TcpListener listener;
        final List<TcpConnection> accepted = new ArrayList<>();

        Server(IoEngine engine) {
            listener = engine.listen(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), false, 16,
                (c, res) -> {
                    assertEquals(0, res);
                    accepted.add(c);
                });
        }

        /** Connects a plain NIO peer and returns it with the engine's side of the connection. */
        SocketChannel connectPeer(IoEngine engine) throws IOException {
            int before = accepted.size();
            SocketChannel peer = SocketChannel.open(listener.localAddress());
            drive(engine, () -> accepted.size() > before, "accept");
            return peer;
        }

        TcpConnection last() {
            return accepted.get(accepted.size() - 1);
        }

        @Override
        public void close() {
            listener.close();
            accepted.forEach(TcpConnection::close);
        }
    }

    private static int outstandingBuffers(IoEngine engine) {
        return engine instanceof UringEngine u ? u.receiveBuffers().outstanding() : 0;
    }

    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldBlockAPeerWriting100MiBToASuspendedConnectionAndDeliverEveryByteInOrderAfterResume(IoBackend backend)
        throws Exception {
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             Server server = new Server(engine);
             SocketChannel peer = server.connectPeer(engine)) {
            peer.configureBlocking(false);
            TcpConnection conn = server.last();
            Checker checker = new Checker();
            long[] suspendedAt = {-1};
            // Receive normally for the first MiB, then suspend from inside a callback.
            checker.onData = c -> {
                if (suspendedAt[0] < 0 && checker.received >= 1 << 20) {
                    suspendedAt[0] = checker.received;
                    c.suspendReceive();
                    c.suspendReceive(); // idempotent
                }
            };
            conn.startReceiving(checker);
            ByteBuffer chunk = ByteBuffer.allocateDirect(256 << 10);
            long[] written = {0};
            // Write until the connection has suspended and taken effect; then keep writing until the peer's
            // writes stop being accepted for many consecutive engine turns.
            int zeroStreak = 0;
            while (written[0] < PEER_BYTES && zeroStreak < 200) {
                int n = writeSome(peer, chunk, written);
                engine.submitAndWait(n == 0 ? 2_000_000L : 0);
                boolean quiet = conn.isReceiveSuspended();
                if (quiet && !checker.frozen) {
                    checker.frozen = true;
                }
                zeroStreak = quiet && n == 0 ? zeroStreak + 1 : 0;
            }
            assertTrue(checker.frozen, "the suspension took effect");
            assertNull(checker.mismatch);
            long inFlightAfterSuspend = checker.received - suspendedAt[0];
            System.out.printf("%s: suspended after %d bytes; %d more were in flight; the peer could write %d of %d"
                + " bytes before blocking (kernel buffers); %d receive buffers out%n", backend, suspendedAt[0],
                inFlightAfterSuspend, written[0], PEER_BYTES, outstandingBuffers(engine));
            assertTrue(written[0] < PEER_BYTES, "the peer's writes block while the connection is suspended");
            assertEquals(0, checker.callbacksWhileSuspended, "no callback once suspended");
            assertTrue(inFlightAfterSuspend <= (long) UringEngine.RECEIVE_BUFFER_COUNT * UringEngine.RECEIVE_BUFFER_BYTES,
                "bytes delivered after suspending are bounded by the engine's receive buffers: " + inFlightAfterSuspend);
            assertEquals(0, outstandingBuffers(engine), "a suspended connection holds no receive buffer");
            assertTrue(conn.isReceiveSuspended());

            // Resume: everything the peer wrote and writes from now on arrives, in order.
            checker.frozen = false;
            conn.resumeReceive();
            conn.resumeReceive(); // idempotent
            assertFalse(conn.isReceiveSuspended());
            long deadline = System.nanoTime() + 300_000_000_000L; // against hangs only
            while (checker.received < PEER_BYTES && System.nanoTime() < deadline) {
                int n = writeSome(peer, chunk, written);
                engine.submitAndWait(n == 0 ? 2_000_000L : 0);
            }
            assertNull(checker.mismatch);
            assertEquals(PEER_BYTES, written[0]);
            assertEquals(PEER_BYTES, checker.received, "every byte arrives after resuming");
            assertEquals(0, checker.closedCount);
        }
    }

    /** One non-blocking write of the next pattern bytes; returns what the kernel took. */
    private static int writeSome(SocketChannel peer, ByteBuffer chunk, long[] written) throws IOException {
        if (written[0] >= PEER_BYTES) {
            return 0;
        }
        int len = (int) Math.min(chunk.capacity(), PEER_BYTES - written[0]);
        ByteBuffer view = chunk.duplicate();
        view.limit(len);
        pattern(view, written[0]);
        int n = peer.write(view);
        written[0] += n;
        return n;
    }

    /**
     * Random suspends and resumes (from callbacks and between loop turns, twice in a row, suspend-then-resume
     * before the cancellation lands) while a second connection hoards receive buffers until the engine runs dry,
     * so the suspended connection also meets -ENOBUFS: both streams arrive complete and in order, and nothing is
     * delivered once a suspension has taken effect.
     */
    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldKeepEveryByteInOrderAcrossRandomSuspendsAndResumesWithBuffersExhausted(IoBackend backend)
        throws Exception {
        long seed = seed("shouldKeepEveryByteInOrderAcrossRandomSuspendsAndResumesWithBuffersExhausted");
        Random random = new Random(seed);
        long streamBytes = 48L << 20;
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             Server server = new Server(engine);
             Socket peerA = new Socket();
             Socket peerB = new Socket()) {
            peerA.connect(server.listener.localAddress());
            drive(engine, () -> server.accepted.size() == 1, "accept A");
            peerB.connect(server.listener.localAddress());
            drive(engine, () -> server.accepted.size() == 2, "accept B");
            TcpConnection a = server.accepted.get(0);
            TcpConnection b = server.accepted.get(1);
            AtomicReference<Throwable> writerFailure = new AtomicReference<>();
            AtomicLong writtenA = new AtomicLong();
            AtomicLong writtenB = new AtomicLong();
            Thread writerA = writer(peerA, streamBytes, writtenA, writerFailure);
            Thread writerB = writer(peerB, streamBytes, writtenB, writerFailure);

            Checker checkerA = new Checker();
            long[] suspends = {0};
            checkerA.onData = c -> {
                int r = random.nextInt(100);
                if (r < 8) {
                    c.suspendReceive();
                    checkerA.suspendAsked = true;
                    suspends[0]++;
                    if (r < 2) {
                        c.resumeReceive(); // resumed before the cancellation lands
                        checkerA.suspendAsked = false;
                    }
                }
            };
            // B keeps the buffers it receives and gives them back in bursts: the engine runs out of buffers.
            Checker checkerB = new Checker();
            List<Integer> hoard = new ArrayList<>();
            TcpConnection.ReceiveHandler hoarder = new TcpConnection.ReceiveHandler() {
                @Override
                public void onReceive(TcpConnection c, MemorySegment memory, long offset, int length, int bufferId) {
                    // Check now, release later: the checker's release goes to the hoard.
                    checkerB.onReceive(new HoldingConnection(c, hoard), memory, offset, length, bufferId);
                }

                @Override
                public void onClosed(TcpConnection c, int result) {
                    checkerB.onClosed(c, result);
                }
            };
            a.startReceiving(checkerA);
            b.startReceiving(hoarder);
            long exhausted = 0;
            int hoardHighWater = 0;
            int holdTarget = 256;
            int turnsHolding = 0;
            long deadline = System.nanoTime() + 300_000_000_000L; // against hangs only
            while ((checkerA.received < streamBytes || checkerB.received < streamBytes)
                && System.nanoTime() < deadline && writerFailure.get() == null) {
                engine.submitAndWait(1_000_000L);
                if (a.isReceiveSuspended()) {
                    checkerA.frozen = true;
                }
                if (engine instanceof UringEngine u
                    && u.receiveBuffers().outstanding() == UringEngine.RECEIVE_BUFFER_COUNT) {
                    exhausted++;
                }
                hoardHighWater = Math.max(hoardHighWater, hoard.size());
                // Hold until a random target (half the time: every buffer the engine has) is reached and a few
                // turns passed, or give up waiting after a while (near the end of B's stream).
                turnsHolding++;
                if (hoard.size() >= holdTarget && random.nextInt(100) < 30 || turnsHolding > 300) {
                    holdTarget = random.nextBoolean() ? 256 : 16 + random.nextInt(240);
                    turnsHolding = 0;
                    for (int bid : hoard) {
                        b.releaseBuffer(bid);
                    }
                    hoard.clear();
                }
                int r = random.nextInt(100);
                if (r < 25) {
                    checkerA.frozen = false;
                    checkerA.suspendAsked = false;
                    a.resumeReceive();
                    if (r < 3) {
                        a.resumeReceive();
                    }
                } else if (r < 30) {
                    a.suspendReceive();
                    a.suspendReceive();
                    checkerA.suspendAsked = true;
                    suspends[0]++;
                }
            }
            for (int bid : hoard) {
                b.releaseBuffer(bid);
            }
            hoard.clear();
            assertNull(writerFailure.get());
            writerA.join();
            writerB.join();
            System.out.printf("%s: %d suspends, %d deliveries of data in flight after a suspension was asked for;"
                + " receive buffers all out with consumers on %d loop turns (io_uring); the hoarding connection held"
                + " up to %d buffers%n", backend, suspends[0], checkerA.inFlightCallbacks, exhausted, hoardHighWater);
            assertEquals(256, hoardHighWater, "the engine's receive buffers ran out (seed " + seed + ")");
            assertNull(checkerA.mismatch, "seed " + seed);
            assertNull(checkerB.mismatch, "seed " + seed);
            assertEquals(streamBytes, checkerA.received, "seed " + seed);
            assertEquals(streamBytes, checkerB.received, "seed " + seed);
            assertEquals(0, checkerA.callbacksWhileSuspended, "no callback once a suspension took effect, seed " + seed);
            assertTrue(suspends[0] > 10, "the scenario suspended often: " + suspends[0]);
            assertEquals(0, outstandingBuffers(engine));
        }
    }

    /** Blocking writer of the pattern on its own thread. */
    private static Thread writer(Socket s, long bytes, AtomicLong written, AtomicReference<Throwable> failure) {
        return Thread.ofPlatform().name("peer-writer").start(() -> {
            try {
                OutputStream out = s.getOutputStream();
                ByteBuffer buf = ByteBuffer.allocate(64 << 10);
                long pos = 0;
                while (pos < bytes) {
                    ByteBuffer view = buf.duplicate();
                    view.limit((int) Math.min(buf.capacity(), bytes - pos));
                    pattern(view, pos);
                    out.write(buf.array(), 0, view.limit());
                    pos += view.limit();
                    written.set(pos);
                }
                out.flush();
            } catch (IOException | RuntimeException e) {
                failure.compareAndSet(null, e);
            }
        });
    }

    /** Forwards to a connection but keeps released buffer ids instead of releasing them. */
    private record HoldingConnection(TcpConnection c, List<Integer> hoard) implements TcpConnection {
        @Override
        public void releaseBuffer(int bufferId) {
            hoard.add(bufferId);
        }

        @Override
        public void startReceiving(ReceiveHandler handler) {
            c.startReceiving(handler);
        }

        @Override
        public void suspendReceive() {
            c.suspendReceive();
        }

        @Override
        public void resumeReceive() {
            c.resumeReceive();
        }

        @Override
        public boolean isReceiveSuspended() {
            return c.isReceiveSuspended();
        }

        @Override
        public long send(MemorySegment[] parts, int count, CompletionHandler handler, long attachment) {
            return c.send(parts, count, handler, attachment);
        }

        @Override
        public long send(MemorySegment data, CompletionHandler handler, long attachment) {
            return c.send(data, handler, attachment);
        }

        @Override
        public void shutdownOutput() {
            c.shutdownOutput();
        }

        @Override
        public InetSocketAddress remoteAddress() {
            return c.remoteAddress();
        }

        @Override
        public InetSocketAddress localAddress() {
            return c.localAddress();
        }

        @Override
        public boolean isOpen() {
            return c.isOpen();
        }

        @Override
        public void close() {
            c.close();
        }
    }

    /**
     * A connection starved of receive buffers (another one holds them all) and then suspended stays quiet when the
     * buffers come back, and receives everything once resumed.
     */
    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldStayQuietWhenBuffersComeBackWhileSuspendedAndReceiveEverythingAfterResuming(IoBackend backend)
        throws Exception {
        long bytes = 1 << 20;
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             Server server = new Server(engine);
             Socket peerH = new Socket();
             Socket peerA = new Socket()) {
            peerH.connect(server.listener.localAddress());
            drive(engine, () -> server.accepted.size() == 1, "accept H");
            peerA.connect(server.listener.localAddress());
            drive(engine, () -> server.accepted.size() == 2, "accept A");
            TcpConnection h = server.accepted.get(0);
            TcpConnection a = server.accepted.get(1);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread writerH = writer(peerH, 8L << 20, new AtomicLong(), failure);
            List<Integer> hoard = new ArrayList<>();
            boolean[] hoarding = {true};
            Checker checkerH = new Checker();
            h.startReceiving(new TcpConnection.ReceiveHandler() {
                @Override
                public void onReceive(TcpConnection c, MemorySegment memory, long offset, int length, int bufferId) {
                    checkerH.onReceive(hoarding[0] ? new HoldingConnection(c, hoard) : c, memory, offset, length,
                        bufferId);
                }

                @Override
                public void onClosed(TcpConnection c, int result) {
                    checkerH.onClosed(c, result);
                }
            });
            drive(engine, () -> hoard.size() == 256, "H holding every receive buffer");
            Checker checkerA = new Checker();
            a.startReceiving(checkerA);
            Thread writerA = writer(peerA, bytes, new AtomicLong(), failure);
            for (int i = 0; i < 20; i++) {
                engine.submitAndWait(1_000_000L);
            }
            assertEquals(0, checkerA.received, "no buffer to receive into");
            a.suspendReceive();
            assertTrue(a.isReceiveSuspended(), "a starved connection has nothing in flight");
            hoarding[0] = false;
            for (int bid : hoard) {
                h.releaseBuffer(bid);
            }
            hoard.clear();
            for (int i = 0; i < 50; i++) {
                engine.submitAndWait(1_000_000L);
            }
            assertEquals(0, checkerA.received, "buffers came back, but A is suspended");
            a.resumeReceive();
            drive(engine, () -> checkerA.received == bytes && checkerH.received == 8L << 20, "both streams");
            writerA.join();
            writerH.join();
            assertNull(failure.get());
            assertNull(checkerA.mismatch);
            assertNull(checkerH.mismatch);
            assertEquals(0, outstandingBuffers(engine));
        }
    }

    /**
     * The peer's end of stream is not reported while suspended (nothing is read, as with a server not calling
     * read), and arrives after every byte once resumed; closing a suspended connection reports onClosed once.
     */
    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldReportThePeersEndOnlyAfterResumingAndCloseSuspendedConnectionsOnce(IoBackend backend)
        throws Exception {
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             Server server = new Server(engine)) {
            // 1. The peer writes and closes while we are suspended.
            SocketChannel peer = server.connectPeer(engine);
            TcpConnection conn = server.last();
            Checker checker = new Checker();
            conn.suspendReceive(); // before starting: nothing is armed at all
            conn.startReceiving(checker);
            assertTrue(conn.isReceiveSuspended());
            ByteBuffer chunk = ByteBuffer.allocate(40_000); // fits the kernel's buffers without any reading
            pattern(chunk, 0);
            while (chunk.hasRemaining()) {
                peer.write(chunk);
            }
            peer.close();
            for (int i = 0; i < 20; i++) {
                engine.submitAndWait(1_000_000L);
            }
            assertEquals(0, checker.callbacks, "nothing delivered while suspended");
            assertEquals(0, checker.closedCount, "the peer's close is not seen while suspended");
            conn.resumeReceive();
            drive(engine, () -> checker.closedCount > 0, "end of stream after resuming");
            assertNull(checker.mismatch);
            assertEquals(40_000, checker.received, "all data before the end");
            assertEquals(0, checker.closedResult);
            assertEquals(1, checker.closedCount);

            // 2. We close while suspended: with the cancellation still in flight, and long after it landed.
            for (boolean landed : new boolean[] {false, true}) {
                SocketChannel p = server.connectPeer(engine);
                TcpConnection c = server.last();
                Checker ch = new Checker();
                c.startReceiving(ch);
                p.write(ByteBuffer.wrap(new byte[] {0, 0, 0}));
                drive(engine, () -> ch.received == 3, "first bytes");
                c.suspendReceive();
                if (landed) {
                    drive(engine, c::isReceiveSuspended, "suspension");
                }
                c.close();
                c.close();
                drive(engine, () -> ch.closedCount > 0, "onClosed after close");
                for (int i = 0; i < 5; i++) {
                    engine.submitAndWait(1_000_000L);
                }
                assertEquals(1, ch.closedCount, "onClosed exactly once");
                assertFalse(c.isOpen());
                // The socket is really closed: the peer reads end of stream.
                p.configureBlocking(true);
                assertEquals(-1, p.read(ByteBuffer.allocate(16)), "the peer sees the close");
                p.close();
            }
            assertEquals(0, outstandingBuffers(engine));
            assertNotNull(server.listener.localAddress());
        }
    }
}
