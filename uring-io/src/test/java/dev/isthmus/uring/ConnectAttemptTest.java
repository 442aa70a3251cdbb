package dev.isthmus.uring;

import dev.isthmus.ffi.Errno;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;

import static dev.isthmus.uring.IoEngineTest.drive;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Outgoing connects that time out or are abandoned, on both engines, without network namespaces: the target is
 * a loopback listener whose accept queue is full (it never accepts), so the kernel drops our SYN and the connect
 * can only end by our timeout or cancel. Checked: the result, exactly one callback (none after a cancel), and our
 * sockets — found by inode in /proc/self/fd and /proc/net/tcp(6), so nothing else on the machine can disturb the
 * count — first in SYN_SENT, then closed; on io_uring, no operation left in the ring.
 */
class ConnectAttemptTest {

    /** A loopback listener (backlog 1) whose accept queue is full: SYNs to it are dropped. */
    static final class FullListener implements AutoCloseable {
        final ServerSocket server;
        final List<Socket> queued = new ArrayList<>();

        FullListener() throws IOException {
            server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
            // The kernel queues up to backlog + 1 established connections; two connects fill it.
            for (int i = 0; i < 2; i++) {
                Socket s = new Socket();
                s.connect(address(), 30_000);
                queued.add(s);
            }
            long deadline = System.nanoTime() + 60_000_000_000L; // against hangs only
            while (acceptQueueLength(server.getLocalPort()) < 2 && System.nanoTime() < deadline) {
                LockSupport.parkNanos(100_000L);
            }
            assertEquals(2, acceptQueueLength(server.getLocalPort()), "the listener's accept queue is full");
        }

        InetSocketAddress address() {
            return new InetSocketAddress(InetAddress.getLoopbackAddress(), server.getLocalPort());
        }

        @Override
        public void close() throws IOException {
            for (Socket s : queued) {
                s.close();
            }
            server.close();
        }
    }

    /** /proc/net/tcp and tcp6 rows, split into fields (sl, local, remote, state, tx:rx, ..., inode at 9). */
    private static List<String[]> tcpTable() throws IOException {
        List<String[]> rows = new ArrayList<>();
        for (String table : new String[] {"/proc/net/tcp", "/proc/net/tcp6"}) {
            try (Stream<String> lines = Files.lines(Path.of(table))) {
                lines.skip(1).map(String::trim).map(l -> l.split("\\s+")).forEach(rows::add);
            }
        }
        return rows;
    }

    /** The established connections waiting in the accept queue of the listener on {@code port}. */
    static int acceptQueueLength(int port) throws IOException {
        String portHex = String.format(":%04X", port);
        for (String[] f : tcpTable()) {
            if (f[1].endsWith(portHex) && f[3].equals("0A")) {
                return Integer.parseInt(f[4].substring(f[4].indexOf(':') + 1), 16);
            }
        }
        return -1;
    }

    /** The TCP state (hex, "02" = SYN_SENT) of the socket with {@code inode}, or null when it is gone. */
    static String tcpState(String inode) throws IOException {
        for (String[] f : tcpTable()) {
            if (f.length > 9 && f[9].equals(inode)) {
                return f[3];
            }
        }
        return null;
    }

    /** Inodes of this process's sockets. */
    static Set<String> socketInodes() throws IOException {
        Set<String> inodes = new HashSet<>();
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            s.forEach(p -> {
                try {
                    String link = Files.readSymbolicLink(p).toString();
                    if (link.startsWith("socket:[")) {
                        inodes.add(link.substring(8, link.length() - 1));
                    }
                } catch (IOException gone) {
                    // the listing's own descriptor, closed by now
                }
            });
        }
        return inodes;
    }

    /** The sockets that appeared since {@code before}: the attempts' own. */
    private static Set<String> newSockets(Set<String> before) throws IOException {
        Set<String> now = socketInodes();
        now.removeAll(before);
        return now;
    }

    private static void driveUntilClosed(IoEngine engine, Set<String> ours) throws IOException {
        long deadline = System.nanoTime() + 60_000_000_000L; // against hangs only
        while (System.nanoTime() < deadline) {
            Set<String> open = socketInodes();
            open.retainAll(ours);
            boolean ringIdle = !(engine instanceof UringEngine u) || u.ring().inFlight() == 0;
            if (open.isEmpty() && ringIdle) {
                break;
            }
            engine.submitAndWait(1_000_000L);
        }
        Set<String> open = socketInodes();
        open.retainAll(ours);
        assertEquals(Set.of(), open, "the attempts' sockets are closed");
        for (String inode : ours) {
            assertNull(tcpState(inode), "socket " + inode + " is gone from the TCP table");
        }
        if (engine instanceof UringEngine u) {
            assertEquals(0, u.ring().inFlight(), "neither a connect nor a timer is left in the ring");
        }
    }

    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldTimeOutAConnectThatCannotCompleteAndCloseItsSocket(IoBackend backend) throws Exception {
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             FullListener target = new FullListener()) {
            Set<String> before = socketInodes();
            int[] calls = {0};
            int[] result = {Integer.MIN_VALUE};
            TcpConnection[] conn = {null};
            ConnectAttempt attempt = engine.connect(target.address(), 50_000_000L, (c, r) -> {
                calls[0]++;
                result[0] = r;
                conn[0] = c;
            });
            assertFalse(attempt.isDone());
            engine.submitAndWait(0); // io_uring issues the connect here
            Set<String> ours = newSockets(before);
            assertEquals(1, ours.size(), "one socket for the attempt");
            if (calls[0] == 0) {
                assertEquals("02", tcpState(ours.iterator().next()), "our SYN went unanswered (SYN_SENT)");
            }
            drive(engine, () -> calls[0] > 0, "the timeout");
            assertEquals(-Errno.ETIMEDOUT, result[0], Errno.describe(result[0]));
            assertNull(conn[0]);
            assertTrue(attempt.isDone());
            assertFalse(attempt.cancel(), "nothing left to cancel");
            driveUntilClosed(engine, ours);
            for (int i = 0; i < 10; i++) {
                engine.submitAndWait(1_000_000L);
            }
            assertEquals(1, calls[0], "exactly one callback");
        }
    }

    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldCancelPendingConnectsWithoutACallbackOrALeakedSocket(IoBackend backend) throws Exception {
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             FullListener target = new FullListener()) {
            Set<String> before = socketInodes();
            int[] calls = {0};
            TcpConnection.ConnectHandler never = (c, r) -> calls[0]++;
            // Cancelled in the same loop turn, before the connect even reached the kernel (on io_uring).
            ConnectAttempt early = engine.connect(target.address(), never);
            assertTrue(early.cancel());
            assertFalse(early.cancel(), "a second cancel does nothing");
            assertTrue(early.isDone());
            Set<String> earlySocket = newSockets(before);
            // Cancelled while the kernel retries the SYN, with and without a timer.
            Set<String> beforePending = socketInodes();
            ConnectAttempt pending = engine.connect(target.address(), never);
            ConnectAttempt timed = engine.connect(target.address(), 60_000_000_000L, never);
            for (int i = 0; i < 10; i++) {
                engine.submitAndWait(1_000_000L);
            }
            assertEquals(0, calls[0], "the connects are pending: their SYNs are dropped");
            Set<String> pendingSockets = newSockets(beforePending);
            pendingSockets.removeAll(earlySocket);
            assertEquals(2, pendingSockets.size());
            for (String inode : pendingSockets) {
                assertEquals("02", tcpState(inode), "socket " + inode + " in SYN_SENT");
            }
            assertFalse(pending.isDone());
            assertTrue(pending.cancel());
            assertTrue(timed.cancel());
            Set<String> ours = new HashSet<>(pendingSockets);
            ours.addAll(earlySocket);
            driveUntilClosed(engine, ours);
            for (int i = 0; i < 10; i++) {
                engine.submitAndWait(1_000_000L);
            }
            assertEquals(0, calls[0], "no callback after a cancel");
        }
    }

    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldReportRefusalBeforeTheTimeoutAndLeaveNoTimerBehind(IoBackend backend) throws Exception {
        int freePort;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            freePort = s.getLocalPort();
        }
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults())) {
            int[] result = {Integer.MIN_VALUE};
            ConnectAttempt attempt = engine.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), freePort),
                60_000_000_000L, (c, r) -> result[0] = r);
            drive(engine, () -> result[0] != Integer.MIN_VALUE, "refusal");
            assertEquals(-Errno.ECONNREFUSED, result[0], Errno.describe(result[0]));
            assertFalse(attempt.cancel(), "a finished attempt cannot be cancelled");
            if (engine instanceof UringEngine u) {
                drive(engine, () -> u.ring().inFlight() == 0, "the timer's cancellation");
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = IoBackend.class, names = {"IO_URING", "PORTABLE"})
    void shouldConnectWithinTheTimeoutAndKeepTheConnection(IoBackend backend) throws Exception {
        try (IoEngine engine = IoEngine.create(backend, RingConfig.defaults());
             ServerSocket server = new ServerSocket(0, 16, InetAddress.getLoopbackAddress())) {
            TcpConnection[] conn = {null};
            ConnectAttempt attempt = engine.connect(
                new InetSocketAddress(InetAddress.getLoopbackAddress(), server.getLocalPort()), 60_000_000_000L,
                (c, r) -> {
                    assertEquals(0, r, Errno.describe(r));
                    conn[0] = c;
                });
            drive(engine, () -> conn[0] != null, "connect");
            assertFalse(attempt.cancel(), "too late to cancel: the connection is the caller's");
            assertTrue(conn[0].isOpen());
            try (Socket accepted = server.accept()) {
                assertNotNull(accepted);
                conn[0].close();
                assertEquals(-1, accepted.getInputStream().read(), "the connection closes normally");
            }
            if (engine instanceof UringEngine u) {
                drive(engine, () -> u.ring().inFlight() == 0, "the timer's cancellation");
            }
        }
    }
}
