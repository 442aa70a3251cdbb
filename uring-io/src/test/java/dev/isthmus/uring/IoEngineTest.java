package dev.isthmus.uring;

import dev.isthmus.ffi.Errno;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The same behaviour from both backends, on real files and real loopback sockets. */
class IoEngineTest {
    @TempDir
    Path dir;

    static long seed() {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("IoEngineTest seed: " + seed + " (replay with -Disthmus.seed=" + seed + ")");
        return seed;
    }

    static void drive(IoEngine engine, BooleanSupplier done, String what) {
        long deadline = System.nanoTime() + 120_000_000_000L; // a bound against hangs, not a timing check
        while (!done.getAsBoolean() && System.nanoTime() < deadline) {
            engine.submitAndWait(50_000_000L);
        }
        assertTrue(done.getAsBoolean(), "timed out waiting for " + what);
    }

    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldKeepThousandsOfDirectWritesInFlightAndReadThemBack(IoBackend backend) {
        long seed = seed();
        Random random = new Random(seed);
        int blocks = 4096;
        int blockBytes = 4096;
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             Arena arena = Arena.ofConfined();
             DmaFile file = engine.openDmaFile(dir.resolve("many.bin"), true)) {
            MemorySegment data = arena.allocate((long) blocks * blockBytes, 4096);
            for (long i = 0; i < data.byteSize(); i += 8) {
                data.set(ValueLayout.JAVA_LONG, i, random.nextLong());
            }
            int[] order = new int[blocks];
            for (int i = 0; i < blocks; i++) {
                order[i] = i;
            }
            for (int i = blocks - 1; i > 0; i--) {
                int j = random.nextInt(i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            int[] completed = new int[1];
            int[] outOfOrder = new int[1];
            int[] lastAttachment = {-1};
            int[] failures = new int[1];
            CompletionHandler onWrite = (res, flags, att) -> {
                if (res != blockBytes) {
                    failures[0]++;
                }
                if (att < lastAttachment[0]) {
                    outOfOrder[0]++;
                }
                lastAttachment[0] = (int) att;
                completed[0]++;
            };
            for (int i = 0; i < blocks; i++) {
                int b = order[i];
                long r;
                while ((r = file.write(data.asSlice((long) b * blockBytes, blockBytes), (long) b * blockBytes, onWrite, i)) < 0) {
                    assertEquals(-Errno.EBUSY, r);
                    engine.submitAndWait(1_000_000L);
                }
            }
            drive(engine, () -> completed[0] == blocks, "writes");
            assertEquals(0, failures[0]);
            System.out.println(backend + ": " + outOfOrder[0] + " of " + blocks + " writes completed out of order");

            int[] synced = {Integer.MIN_VALUE};
            file.datasync((res, flags, att) -> synced[0] = res, 0);
            drive(engine, () -> synced[0] != Integer.MIN_VALUE, "fdatasync");
            assertEquals(0, synced[0]);

            MemorySegment back = arena.allocate(data.byteSize(), 4096);
            int[] read = {0};
            int chunk = 1 << 20;
            int chunks = (int) (data.byteSize() / chunk);
            for (int c = 0; c < chunks; c++) {
                file.read(back.asSlice((long) c * chunk, chunk), (long) c * chunk, (res, flags, att) -> {
                    assertEquals(chunk, res);
                    read[0]++;
                }, c);
            }
            drive(engine, () -> read[0] == chunks, "reads");
            assertEquals(-1L, data.mismatch(back), "read back differs (seed " + seed + ")");
            assertEquals(data.byteSize(), file.size());
        }
    }

    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldRejectMisalignedRequestsBeforeTheKernel(IoBackend backend) {
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             Arena arena = Arena.ofConfined();
             DmaFile file = engine.openDmaFile(dir.resolve("align.bin"), true)) {
            int a = file.alignment();
            assertTrue(a >= 512 && Integer.bitCount(a) == 1, "alignment " + a);
            MemorySegment buf = arena.allocate(2L * a, a);
            CompletionHandler never = (res, flags, att) -> { throw new AssertionError("completed"); };
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> file.write(buf.asSlice(0, a), 1, never, 0));
            assertTrue(e.getMessage().contains("position 1 is not a multiple of " + a), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> file.write(buf.asSlice(0, a - 1), 0, never, 0));
            assertTrue(e.getMessage().contains("length"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> file.read(buf.asSlice(1, a), 0, never, 0));
            assertTrue(e.getMessage().contains("buffer address"), e.getMessage());
            assertTrue(e.getMessage().contains("align.bin"), e.getMessage());
        }
    }

    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldWriteAnAlignedRangeOfARegion(IoBackend backend) throws Exception {
        Path p = dir.resolve("range.bin");
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             Arena arena = Arena.ofConfined();
             DmaFile file = engine.openDmaFile(p, true)) {
            int a = file.alignment();
            MemorySegment region = arena.allocate(4L * a, a);
            for (int i = 0; i < 4; i++) {
                region.asSlice((long) i * a, a).fill((byte) ('a' + i));
            }
            int[] r = {Integer.MIN_VALUE};
            // Blocks 1 and 2 of the region, written at the file's block 1.
            file.write(region, a, 2L * a, a, (res, flags, att) -> r[0] = res, 0);
            drive(engine, () -> r[0] != Integer.MIN_VALUE, "range write");
            assertEquals(2 * a, r[0]);
            byte[] got = Files.readAllBytes(p);
            assertEquals(3 * a, got.length);
            assertEquals('b', got[a]);
            assertEquals('c', got[3 * a - 1]);
            CompletionHandler never = (res, flags, att) -> { throw new AssertionError("completed"); };
            assertThrows(IllegalArgumentException.class, () -> file.write(region, 1, a, 0, never, 0));
            assertThrows(IndexOutOfBoundsException.class, () -> file.write(region, 3L * a, 2L * a, 0, never, 0));
        }
    }

    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldPreallocateAndTruncate(IoBackend backend) throws Exception {
        Path p = dir.resolve("grow.bin");
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             DmaFile file = engine.openDmaFile(p, true)) {
            int[] r = {Integer.MIN_VALUE};
            file.allocate(0, 8 << 20, false, (res, flags, att) -> r[0] = res, 0);
            drive(engine, () -> r[0] != Integer.MIN_VALUE, "fallocate");
            assertEquals(0, r[0]);
            assertEquals(8 << 20, file.size());
            file.truncate(4096);
            assertEquals(4096, file.size());
        }
        assertEquals(4096, Files.size(p));
    }

    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldFailToOpenMissingFileWithItsName(IoBackend backend) {
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults())) {
            RuntimeException e = assertThrows(RuntimeException.class,
                () -> engine.openDmaFile(dir.resolve("no/such/file"), false));
            assertTrue(e.getMessage().contains("no/such/file"), e.getMessage());
        }
    }

    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldEchoOverLoopback(IoBackend backend) throws Exception {
        long seed = seed();
        Random random = new Random(seed);
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             Arena arena = Arena.ofConfined()) {
            List<TcpConnection> serverSide = new ArrayList<>();
            // Echo server: every received chunk is sent back, then its buffer released.
            TcpListener listener = engine.listen(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), true, 128,
                (conn, res) -> {
                    assertEquals(0, res);
                    serverSide.add(conn);
                    conn.startReceiving(new EchoHandler(arena));
                });
            int port = listener.localAddress().getPort();
            assertTrue(port > 0);

            TcpConnection[] client = new TcpConnection[1];
            engine.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), (c, res) -> {
                assertEquals(0, res, Errno.describe(res));
                client[0] = c;
            });
            drive(engine, () -> client[0] != null && !serverSide.isEmpty(), "connect and accept");
            assertNotNull(client[0].remoteAddress());

            int total = 1 << 20;
            byte[] payload = new byte[total];
            random.nextBytes(payload);
            MemorySegment out = arena.allocate(total);
            MemorySegment.copy(payload, 0, out, ValueLayout.JAVA_BYTE, 0, total);
            byte[] received = new byte[total];
            int[] got = {0};
            boolean[] ended = {false};
            client[0].startReceiving(new TcpConnection.ReceiveHandler() {
                @Override
                public void onReceive(TcpConnection c, MemorySegment memory, long offset, int length, int bufferId) {
                    MemorySegment.copy(memory, ValueLayout.JAVA_BYTE, offset, received, got[0], length);
                    got[0] += length;
                    c.releaseBuffer(bufferId);
                }

                @Override
                public void onClosed(TcpConnection c, int result) {
                    ended[0] = true;
                }
            });
            // Send in gathered parts of random sizes.
            int[] sent = {0};
            int[] inFlight = {0};
            long pos = 0;
            while (pos < total) {
                int parts = 1 + random.nextInt(4);
                MemorySegment[] segs = new MemorySegment[parts];
                int n = 0;
                for (int i = 0; i < parts && pos < total; i++) {
                    int len = (int) Math.min(total - pos, 1 + random.nextInt(100_000));
                    segs[n++] = out.asSlice(pos, len);
                    pos += len;
                }
                inFlight[0] = 1;
                long r = client[0].send(segs, n, (res, flags, att) -> {
                    assertTrue(res > 0, Errno.describe(res));
                    sent[0] += res;
                    inFlight[0] = 0;
                }, 0);
                assertTrue(r >= 0);
                drive(engine, () -> inFlight[0] == 0, "send");
            }
            drive(engine, () -> got[0] == total, "echo of " + total + " bytes");
            assertEquals(total, sent[0]);
            assertTrue(java.util.Arrays.equals(payload, received), "echoed bytes differ (seed " + seed + ")");

            client[0].close();
            drive(engine, () -> ended[0], "end of the client's receive");
            listener.close();
            serverSide.forEach(TcpConnection::close);
            engine.submitAndWait(0);
        }
    }

    /** Sends every chunk back, one send at a time; closes when the peer closes. */
    static final class EchoHandler implements TcpConnection.ReceiveHandler {
        private final Arena arena;
        private final java.util.ArrayDeque<long[]> pending = new java.util.ArrayDeque<>();
        private MemorySegment memory;
        private boolean sending;

        EchoHandler(Arena arena) {
            this.arena = arena;
        }

        @Override
        public void onReceive(TcpConnection c, MemorySegment memory, long offset, int length, int bufferId) {
            this.memory = memory;
            pending.add(new long[] {offset, length, bufferId});
            pump(c);
        }

        private void pump(TcpConnection c) {
            if (sending || pending.isEmpty() || !c.isOpen()) {
                return;
            }
            long[] p = pending.poll();
            sending = true;
            c.send(memory.asSlice(p[0], p[1]), (res, flags, att) -> {
                sending = false;
                c.releaseBuffer((int) p[2]);
                if (res >= 0) {
                    pump(c);
                }
            }, 0);
        }

        @Override
        public void onClosed(TcpConnection c, int result) {
            c.close();
        }
    }

    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldReportConnectionRefused(IoBackend backend) throws Exception {
        int freePort;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            freePort = s.getLocalPort();
        }
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults())) {
            int[] result = {Integer.MIN_VALUE};
            engine.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), freePort), (c, res) -> result[0] = res);
            drive(engine, () -> result[0] != Integer.MIN_VALUE, "connect");
            assertEquals(-Errno.ECONNREFUSED, result[0], Errno.describe(result[0]));
        }
    }

    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldWakeUpFromAnotherThread(IoBackend backend) throws Exception {
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults())) {
            Thread t = new Thread(engine::wakeup);
            t.start();
            t.join();
            engine.submitAndWait(60_000_000_000L); // returns because of the wakeup
            assertEquals(backend == IoBackend.IO_URING ? "io_uring" : "portable", engine.backendName());
        }
    }

    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldCarryTextThroughTheEcho(IoBackend backend) throws Exception {
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             Arena arena = Arena.ofConfined()) {
            TcpListener listener = engine.listen(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), false, 16,
                (conn, res) -> conn.startReceiving(new EchoHandler(arena)));
            StringBuilder echoed = new StringBuilder();
            TcpConnection[] client = new TcpConnection[1];
            engine.connect(listener.localAddress(), (c, res) -> {
                client[0] = c;
                c.startReceiving(new TcpConnection.ReceiveHandler() {
                    @Override
                    public void onReceive(TcpConnection conn, MemorySegment memory, long offset, int length, int id) {
                        byte[] b = memory.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE);
                        echoed.append(new String(b, StandardCharsets.UTF_8));
                        conn.releaseBuffer(id);
                    }

                    @Override
                    public void onClosed(TcpConnection conn, int result) {
                    }
                });
                c.send(arena.allocateFrom("hello, isthmus").asSlice(0, 14), (r, f, a) -> { }, 0);
            });
            drive(engine, () -> echoed.toString().equals("hello, isthmus"), "echo");
            client[0].close();
            listener.close();
        }
    }
}
