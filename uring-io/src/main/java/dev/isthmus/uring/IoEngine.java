package dev.isthmus.uring;

import java.net.InetSocketAddress;
import java.nio.file.Path;

/**
 * A shard's I/O engine: the {@link IoDriver} its loop drives plus the files and sockets it serves. One
 * implementation over io_uring ({@link UringEngine}) and one portable ({@link PortableEngine}) pass the same
 * tests. Created on, and owned by, one thread; every completion is delivered on that thread.
 */
public interface IoEngine extends IoDriver {

    /** Creates the engine for {@code backend} on the calling thread. */
    static IoEngine create(IoBackend backend, RingConfig config) {
        return switch (backend.resolve()) {
            case IO_URING -> {
                dev.isthmus.ffi.IoUringSupport s = dev.isthmus.ffi.IoUringSupport.probe();
                if (!s.usable()) {
                    throw new IllegalStateException("the io_uring backend was requested, but " + s.explanation());
                }
                yield new UringEngine(Ring.create(config));
            }
            case PORTABLE -> new PortableEngine(config.maxInFlight());
            case AUTO -> throw new IllegalStateException("AUTO resolves to a concrete backend");
        };
    }

    /** Creates the engine chosen by {@link IoBackend#AUTO} with default ring settings. */
    static IoEngine create() {
        return create(IoBackend.AUTO, RingConfig.defaults());
    }

    /**
     * Opens (and with {@code create}, creates) {@code path} for direct I/O (O_DIRECT: no page cache). The
     * open itself is a short synchronous call.
     *
     * @throws dev.isthmus.ffi.ErrnoException the open failed (message names the path and errno)
     */
    DmaFile openDmaFile(Path path, boolean create);

    /**
     * fsync(2) of the directory {@code dir}, so that files created, renamed or removed in it are durable; the
     * result (0 or -errno) reaches {@code handler} on this engine's thread. Opening the directory is a short
     * synchronous call; the fsync itself (a journal commit: up to milliseconds) does not block this thread.
     *
     * @return as for any queued operation: &gt;= 0, or -errno when it could not be queued or the directory could
     *         not be opened (the handler is then not called)
     */
    long syncDirectory(Path dir, CompletionHandler handler, long attachment);

    /**
     * The file-system calls storage makes beside its DMA files (listing, small files, renames, deletes, directory
     * fsyncs, background file work): {@link FileOps#JDK} on a real engine, the simulated disk on
     * {@link dev.isthmus.uring.sim.SimEngine}.
     */
    default FileOps fileOps() {
        return FileOps.JDK;
    }

    /**
     * The time this engine's shard and storage read: {@link Clock#SYSTEM} on a real engine, virtual time on
     * {@link dev.isthmus.uring.sim.SimEngine} (whose completions are delivered by that time).
     */
    default Clock clock() {
        return Clock.SYSTEM;
    }

    /**
     * Listens on {@code address} (port 0 picks a free one) and accepts connections for as long as the
     * listener is open; each connection (or -errno) reaches {@code handler} on this engine's thread.
     *
     * @param reusePort SO_REUSEPORT, so that every shard can listen on the same port and the kernel spreads
     *                  connections across them
     */
    TcpListener listen(InetSocketAddress address, boolean reusePort, int backlog, TcpListener.AcceptHandler handler);

    /**
     * Connects to {@code address}; the connection or -errno reaches {@code handler} on this engine's thread, or
     * -ETIMEDOUT when {@code timeoutNs} (&gt; 0) elapses first, in which case the socket is closed. With
     * {@code timeoutNs <= 0} only the kernel's own SYN retries bound the attempt (about two minutes by
     * default). The returned attempt can be {@linkplain ConnectAttempt#cancel() cancelled}: no callback
     * follows, and the socket is closed.
     *
     * <p>When the connect cannot even be queued (-EBUSY: the ring's in-flight bound is reached) the handler
     * runs before this method returns and the attempt is done.
     */
    ConnectAttempt connect(InetSocketAddress address, long timeoutNs, TcpConnection.ConnectHandler handler);

    /** {@link #connect(InetSocketAddress, long, TcpConnection.ConnectHandler)} without a timeout of our own. */
    default ConnectAttempt connect(InetSocketAddress address, TcpConnection.ConnectHandler handler) {
        return connect(address, 0, handler);
    }
}
