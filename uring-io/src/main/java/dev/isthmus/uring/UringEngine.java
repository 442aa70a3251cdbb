package dev.isthmus.uring;

import dev.isthmus.ffi.ErrnoException;
import dev.isthmus.ffi.Libc;
import dev.isthmus.ffi.gen.libc.statx;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayDeque;

/**
 * {@link IoEngine} over one {@link Ring}: direct-I/O files, listeners with multishot accept, connections
 * with multishot receive into a shared provided-buffer ring. Owner: the thread that created the ring.
 */
public final class UringEngine implements IoEngine {
    /** Receive buffers shared by all connections of this engine. */
    public static final int RECEIVE_BUFFER_COUNT = 256;
    public static final int RECEIVE_BUFFER_BYTES = 16 * 1024;
    private static final int RECEIVE_GROUP = 0;

    private final Ring ring;
    private BufferRing receiveBuffers;
    /**
     * Connections whose multishot receive ended with -ENOBUFS, waiting for released buffers (each at most once:
     * a connection's starved flag says whether it is queued). One wakes per released buffer.
     */
    private final ArrayDeque<UringTcpConnection> starved = new ArrayDeque<>();

    public UringEngine(Ring ring) {
        this.ring = ring;
    }

    /** The ring, for operations this interface does not cover. */
    public Ring ring() {
        return ring;
    }

    @Override
    public int reap() {
        return ring.reap();
    }

    @Override
    public int submitAndWait(long timeoutNs) {
        return ring.submitAndWait(timeoutNs);
    }

    @Override
    public void wakeup() {
        ring.wakeup();
    }

    @Override
    public void signal(IoDriver target) {
        ring.signal(target instanceof UringEngine e ? e.ring : target);
    }

    @Override
    public String backendName() {
        return ring.backendName();
    }

    @Override
    public DmaFile openDmaFile(Path path, boolean create) {
        int flags = Libc.O_RDWR | Libc.O_DIRECT | Libc.O_CLOEXEC | (create ? Libc.O_CREAT : 0);
        int fd = Libc.check(Libc.open(path.toString(), flags, 0644), "open(" + path + ", O_DIRECT)");
        return new UringDmaFile(ring, fd, path, directIoAlignment(fd, path));
    }

    @Override
    public long syncDirectory(Path dir, CompletionHandler handler, long attachment) {
        int fd = Libc.open(dir.toString(), Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        if (fd < 0) {
            return fd; // -errno: the caller fails as for an fsync that could not be queued
        }
        // The fd is closed on completion, not at once: an fsync runs on an io-wq worker, which looks the fd up
        // itself (a close queued right behind it made it fail with EBADF).
        long r = ring.fsync(fd, false, (result, flags, att) -> {
            Libc.close(fd);
            handler.onComplete(result, flags, att);
        }, attachment);
        if (r < 0) {
            Libc.close(fd);
        }
        return r;
    }

    /** The O_DIRECT alignment of an open file: statx STATX_DIOALIGN, or 4096 when the file system does not say. */
    static int directIoAlignment(int fd, Path path) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(statx.layout());
            int r = Libc.statx(fd, a.allocateFrom(""), Libc.AT_EMPTY_PATH, Libc.STATX_DIOALIGN, st);
            if (r == 0 && (statx.stx_mask(st) & Libc.STATX_DIOALIGN) != 0) {
                int mem = statx.stx_dio_mem_align(st);
                int off = statx.stx_dio_offset_align(st);
                if (off == 0) {
                    Libc.close(fd);
                    throw new IllegalArgumentException("the file system of " + path + " does not support direct I/O");
                }
                return Math.max(mem, off);
            }
            return 4096;
        }
    }

    static long fileSize(int fd, Path path) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(statx.layout());
            Libc.check(Libc.statx(fd, a.allocateFrom(""), Libc.AT_EMPTY_PATH, Libc.STATX_SIZE, st), "statx(" + path + ")");
            return statx.stx_size(st);
        }
    }

    @Override
    public TcpListener listen(InetSocketAddress address, boolean reusePort, int backlog,
                              TcpListener.AcceptHandler handler) {
        int fd = SocketAddresses.tcpSocket(address);
        try (Arena a = Arena.ofConfined()) {
            Libc.check(Libc.setsockoptInt(fd, Libc.SOL_SOCKET, Libc.SO_REUSEADDR, 1), "setsockopt(SO_REUSEADDR)");
            if (reusePort) {
                Libc.check(Libc.setsockoptInt(fd, Libc.SOL_SOCKET, Libc.SO_REUSEPORT, 1), "setsockopt(SO_REUSEPORT)");
            }
            MemorySegment sa = a.allocate(SocketAddresses.MAX_BYTES, 8);
            int len = SocketAddresses.write(address, sa);
            Libc.check(Libc.bind(fd, sa, len), "bind(" + address + ")");
            Libc.check(Libc.listen(fd, backlog), "listen(" + address + ")");
        } catch (RuntimeException e) {
            Libc.close(fd);
            throw e;
        }
        UringTcpListener l = new UringTcpListener(this, fd, handler);
        l.arm();
        return l;
    }

    @Override
    public ConnectAttempt connect(InetSocketAddress address, long timeoutNs, TcpConnection.ConnectHandler handler) {
        UringConnectAttempt attempt = new UringConnectAttempt(this, handler);
        attempt.start(address, timeoutNs);
        return attempt;
    }

    UringTcpConnection newConnection(int fd) {
        Libc.setsockoptInt(fd, Libc.IPPROTO_TCP, Libc.TCP_NODELAY, 1);
        return new UringTcpConnection(this, fd);
    }

    BufferRing receiveBuffers() {
        if (receiveBuffers == null) {
            receiveBuffers = BufferRing.create(ring, RECEIVE_GROUP, RECEIVE_BUFFER_COUNT, RECEIVE_BUFFER_BYTES);
        }
        return receiveBuffers;
    }

    /**
     * {@code c}'s receive ended with -ENOBUFS: it waits for a buffer released by a consumer. If no buffer is
     * out with a consumer (all came back between the kernel running dry and this completion being reaped), no
     * release would ever wake it, so it re-arms at once.
     */
    void starved(UringTcpConnection c) {
        starved.add(c);
        if (receiveBuffers.outstanding() == 0) {
            bufferReleased();
        }
    }

    /** A buffer went back to the kernel: the first waiting connection that still wants to receive re-arms. */
    void bufferReleased() {
        UringTcpConnection c;
        while ((c = starved.poll()) != null) {
            if (c.buffersAvailable()) {
                return;
            }
        }
    }

    @Override
    public void close() {
        ring.close();
        if (receiveBuffers != null) {
            receiveBuffers.close();
        }
    }

    @Override
    public String toString() {
        return "UringEngine{" + ring + "}";
    }

    static ErrnoException failure(String call, long r) {
        return new ErrnoException(call, (int) -r);
    }
}
