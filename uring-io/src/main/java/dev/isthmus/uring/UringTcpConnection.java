package dev.isthmus.uring;

import dev.isthmus.ffi.Errno;
import dev.isthmus.ffi.Libc;
import dev.isthmus.ffi.gen.libc.msghdr;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;

/**
 * {@link TcpConnection} on io_uring: multishot receive with the engine's provided buffers; gather sends
 * through sendmsg with this connection's iovec array, continued after short sends.
 */
final class UringTcpConnection implements TcpConnection {
    private static final int MAX_PARTS = 64;
    private static final int RECEIVE = 1;
    private static final int SEND = 2;

    private final UringEngine engine;
    private final Ring ring;
    private final int fd;
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment msg;
    private final MemorySegment iovecs;
    private final CompletionHandler ops = this::onComplete;
    private ReceiveHandler receiver;
    private long receiveOp = -1;
    private boolean closed;
    private boolean endReported;

    // The send in flight.
    private CompletionHandler sendHandler;
    private long sendAttachment;
    private long sendTotal;
    private long sendDone;
    private int sendFirstPart;
    private int sendCount;
    private InetSocketAddress remote;

    UringTcpConnection(UringEngine engine, int fd) {
        this.engine = engine;
        this.ring = engine.ring();
        this.fd = fd;
        this.msg = arena.allocate(msghdr.layout());
        this.iovecs = arena.allocate(16L * MAX_PARTS, 8);
    }

    @Override
    public void startReceiving(ReceiveHandler handler) {
        if (receiver != null) {
            throw new IllegalStateException("already receiving");
        }
        receiver = handler;
        rearm();
    }

    void rearm() {
        if (closed || endReported) {
            return;
        }
        receiveOp = ring.recvMultishot(fd, engine.receiveBuffers(), ops, RECEIVE);
        if (receiveOp < 0) {
            reportEnd((int) receiveOp);
        }
    }

    private void onComplete(int result, int flags, long attachment) {
        if (attachment == RECEIVE) {
            onReceive(result, flags);
        } else {
            onSend(result);
        }
    }

    private void onReceive(int result, int flags) {
        boolean more = (flags & Ring.CQE_F_MORE) != 0;
        if (!more) {
            receiveOp = -1;
        }
        BufferRing buffers = engine.receiveBuffers();
        if (result > 0) {
            int bid = BufferRing.bufferId(flags);
            Verify.that(bid >= 0, "receive completion without a buffer");
            buffers.taken(bid);
            if (closed || endReported) {
                releaseBuffer(bid);
            } else {
                receiver.onReceive(this, buffers.memory(), (long) bid * buffers.bufferSize(), result, bid);
            }
            if (!more) {
                rearm();
            }
        } else if (result == -Errno.ENOBUFS) {
            engine.starved(this); // re-armed when a buffer comes back
        } else if (result == 0) {
            reportEnd(0);
        } else {
            reportEnd(closed && result == -Errno.ECANCELED ? 0 : result);
        }
    }

    private void reportEnd(int result) {
        if (!endReported) {
            endReported = true;
            if (receiver != null) {
                receiver.onClosed(this, result);
            }
        }
    }

    @Override
    public void releaseBuffer(int bufferId) {
        engine.receiveBuffers().recycle(bufferId);
        engine.bufferReleased();
    }

    @Override
    public long send(MemorySegment data, CompletionHandler handler, long attachment) {
        if (sendHandler != null) {
            throw new IllegalStateException("a send is already in flight on this connection");
        }
        if (closed) {
            return -Errno.EPIPE;
        }
        sendHandler = handler;
        sendAttachment = attachment;
        sendTotal = data.byteSize();
        sendDone = 0;
        sendCount = 0;
        long r = ring.send(fd, data, 0, ops, SEND);
        if (r < 0) {
            sendHandler = null;
        }
        return r;
    }

    @Override
    public long send(MemorySegment[] parts, int count, CompletionHandler handler, long attachment) {
        if (count > MAX_PARTS) {
            throw new IllegalArgumentException("at most " + MAX_PARTS + " parts per send, got " + count);
        }
        if (sendHandler != null) {
            throw new IllegalStateException("a send is already in flight on this connection");
        }
        if (closed) {
            return -Errno.EPIPE;
        }
        long total = 0;
        for (int i = 0; i < count; i++) {
            iovecs.set(ValueLayout.JAVA_LONG, 16L * i, parts[i].address());
            iovecs.set(ValueLayout.JAVA_LONG, 16L * i + 8, parts[i].byteSize());
            total += parts[i].byteSize();
        }
        sendHandler = handler;
        sendAttachment = attachment;
        sendTotal = total;
        sendDone = 0;
        sendFirstPart = 0;
        sendCount = count;
        long r = submitGather();
        if (r < 0) {
            sendHandler = null;
        }
        return r;
    }

    private long submitGather() {
        msg.fill((byte) 0);
        msghdr.msg_iov(msg, MemorySegment.ofAddress(iovecs.address() + 16L * sendFirstPart));
        msghdr.msg_iovlen(msg, sendCount - sendFirstPart);
        return ring.sendmsg(fd, msg, 0, ops, SEND);
    }

    private void onSend(int result) {
        if (result >= 0 && sendCount > 0) {
            sendDone += result;
            if (sendDone < sendTotal) {
                // Short send: skip fully sent iovecs, trim the first partly sent one, send the rest.
                long left = result;
                while (left > 0) {
                    long off = 16L * sendFirstPart;
                    long len = iovecs.get(ValueLayout.JAVA_LONG, off + 8);
                    if (left >= len) {
                        left -= len;
                        sendFirstPart++;
                    } else {
                        iovecs.set(ValueLayout.JAVA_LONG, off, iovecs.get(ValueLayout.JAVA_LONG, off) + left);
                        iovecs.set(ValueLayout.JAVA_LONG, off + 8, len - left);
                        left = 0;
                    }
                }
                long r = submitGather();
                if (r >= 0) {
                    return;
                }
                result = (int) r;
            } else {
                result = (int) Math.min(sendDone, Integer.MAX_VALUE);
            }
        }
        CompletionHandler h = sendHandler;
        long att = sendAttachment;
        sendHandler = null;
        h.onComplete(result, 0, att);
    }

    @Override
    public void shutdownOutput() {
        if (!closed) {
            Libc.shutdown(fd, Libc.SHUT_WR);
        }
    }

    @Override
    public InetSocketAddress remoteAddress() {
        if (remote == null && !closed) {
            remote = SocketAddresses.remoteAddress(fd);
        }
        return remote;
    }

    @Override
    public InetSocketAddress localAddress() {
        return SocketAddresses.localAddress(fd);
    }

    @Override
    public boolean isOpen() {
        return !closed;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        // Shut down first so an in-flight receive or send ends promptly.
        Libc.shutdown(fd, Libc.SHUT_RDWR);
        if (ring.isClosed()) {
            // The ring is cancelling everything: close synchronously.
            Libc.close(fd);
            arena.close();
            return;
        }
        if (receiveOp >= 0) {
            ring.cancel(receiveOp, (r, f, a) -> { }, 0);
        }
        ring.close(fd, (r, f, a) -> arena.close(), 0);
    }

    @Override
    public String toString() {
        return "TcpConnection{fd=" + fd + "}";
    }
}
