package dev.isthmus.uring;

import dev.isthmus.ffi.Errno;
import dev.isthmus.ffi.Libc;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;

/**
 * {@link ConnectAttempt} on io_uring: IORING_OP_CONNECT, plus an IORING_OP_TIMEOUT when a timeout is asked
 * for. Owner: the ring's thread.
 * <pre>
 *   PENDING --connect CQE--------------------------------> DONE       (handler: connection or -errno)
 *   PENDING --timer CQE -ETIME: cancel connect--> TIMED_OUT --connect CQE--> DONE  (fd closed; -ETIMEDOUT)
 *   PENDING / TIMED_OUT --cancel(): cancel connect--> CANCELLED --connect CQE--> fd closed, no callback
 * </pre>
 * The socket is closed only once the connect's own completion has arrived, so its descriptor number is never
 * reused while the kernel still works on it; whichever of the timer and the connect completes second finds the
 * attempt settled and does nothing. The handler never runs after a timeout or a cancel has been decided but
 * before the connect completion: it runs exactly once, from that completion (or never, when cancelled).
 */
final class UringConnectAttempt implements ConnectAttempt, CompletionHandler {
    private static final int CONNECT = 1;
    private static final int TIMER = 2;

    private static final int PENDING = 0;
    private static final int TIMED_OUT = 1;
    private static final int CANCELLED = 2;
    private static final int DONE = 3;

    private final UringEngine engine;
    private final Ring ring;
    private final TcpConnection.ConnectHandler handler;
    private int fd = -1;
    private int state = PENDING;
    private long connectOp = -1;
    private long timerOp = -1;

    UringConnectAttempt(UringEngine engine, TcpConnection.ConnectHandler handler) {
        if (handler == null) {
            throw new IllegalArgumentException("connect handler is null");
        }
        this.engine = engine;
        this.ring = engine.ring();
        this.handler = handler;
    }

    void start(InetSocketAddress address, long timeoutNs) {
        fd = SocketAddresses.tcpSocket(address);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment sa = a.allocate(SocketAddresses.MAX_BYTES, 8);
            int len = SocketAddresses.write(address, sa);
            if (timeoutNs > 0) {
                timerOp = ring.timeout(timeoutNs, this, TIMER);
                if (timerOp < 0) {
                    fail((int) timerOp);
                    return;
                }
            }
            connectOp = ring.connect(fd, sa.asSlice(0, len), this, CONNECT); // the address is copied
        } catch (RuntimeException e) {
            // The ring is closed or the address cannot be written: nothing was queued on fd.
            stopTimer();
            Libc.close(fd);
            state = DONE;
            throw e;
        }
        if (connectOp < 0) {
            stopTimer();
            fail((int) connectOp);
        }
    }

    private void fail(int result) {
        Libc.close(fd); // nothing was queued on it
        state = DONE;
        handler.onConnect(null, result);
    }

    private void stopTimer() {
        if (timerOp >= 0) {
            ring.cancelDetached(timerOp);
            timerOp = -1; // its -ECANCELED completion finds the attempt settled
        }
    }

    @Override
    public void onComplete(int result, int flags, long attachment) {
        if (attachment == TIMER) {
            timerOp = -1;
            if (state == PENDING && result == -Errno.ETIME && connectOp >= 0) {
                state = TIMED_OUT;
                ring.cancelDetached(connectOp);
            }
            return;
        }
        connectOp = -1;
        stopTimer();
        switch (state) {
            case PENDING -> {
                state = DONE;
                if (result < 0) {
                    Libc.close(fd);
                    handler.onConnect(null, result);
                } else {
                    handler.onConnect(engine.newConnection(fd), 0);
                }
            }
            case TIMED_OUT -> {
                // Even if it connected in the last instant: the caller was promised an answer by the deadline.
                state = DONE;
                Libc.close(fd);
                handler.onConnect(null, -Errno.ETIMEDOUT);
            }
            case CANCELLED -> Libc.close(fd);
            default -> throw new IllegalStateException("connect completed twice (state " + state + ")");
        }
    }

    @Override
    public boolean cancel() {
        if (state != PENDING && state != TIMED_OUT) {
            return false;
        }
        if (state == PENDING && connectOp >= 0) {
            ring.cancelDetached(connectOp);
        }
        state = CANCELLED;
        stopTimer();
        return true;
    }

    @Override
    public boolean isDone() {
        return state == DONE || state == CANCELLED;
    }

    @Override
    public String toString() {
        return "ConnectAttempt{fd=" + fd + ", state=" + state + "}";
    }
}
