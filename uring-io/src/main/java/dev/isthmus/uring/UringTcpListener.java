package dev.isthmus.uring;

import dev.isthmus.ffi.Errno;
import dev.isthmus.ffi.Libc;

import java.net.InetSocketAddress;

/** {@link TcpListener} with a multishot accept, re-armed when a completion lacks F_MORE. */
final class UringTcpListener implements TcpListener, CompletionHandler {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.uring");
    /** Back-off before re-arming after a resource error (EMFILE, ENFILE, ENOBUFS, ENOMEM). */
    private static final long REARM_DELAY_NS = 10_000_000L;

    private final UringEngine engine;
    private final int fd;
    private final AcceptHandler handler;
    private final InetSocketAddress local;
    private long acceptOp = -1;
    private boolean closed;

    UringTcpListener(UringEngine engine, int fd, AcceptHandler handler) {
        this.engine = engine;
        this.fd = fd;
        this.handler = handler;
        this.local = SocketAddresses.localAddress(fd);
    }

    void arm() {
        acceptOp = engine.ring().accept(fd, true, this, 0);
        if (acceptOp < 0) {
            throw UringEngine.failure("accept(" + local + ")", acceptOp);
        }
    }

    @Override
    public void onComplete(int result, int flags, long attachment) {
        if (attachment == 1) { // the re-arm delay elapsed
            if (!closed) {
                arm();
            }
            return;
        }
        boolean more = (flags & Ring.CQE_F_MORE) != 0;
        if (!more) {
            acceptOp = -1;
        }
        if (result >= 0) {
            if (closed) {
                Libc.close(result);
            } else {
                handler.onAccept(engine.newConnection(result), 0);
            }
        } else if (!closed && result != -Errno.ECANCELED) {
            LOG.log(System.Logger.Level.WARNING, "accept on " + local + " failed: " + Errno.describe(result));
            handler.onAccept(null, result);
        }
        if (!more && !closed) {
            if (result < 0) {
                engine.ring().timeout(REARM_DELAY_NS, this, 1);
            } else {
                arm();
            }
        }
    }

    @Override
    public InetSocketAddress localAddress() {
        return local;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (acceptOp >= 0) {
            engine.ring().cancel(acceptOp, (r, f, a) -> { }, 0);
        }
        Libc.close(fd);
    }
}
