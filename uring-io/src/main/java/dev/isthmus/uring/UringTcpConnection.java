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
 * through sendmsg with this connection's iovec array, continued after short sends. Owner: the ring's thread.
 *
 * <h2>Receive states</h2>
 * At most one multishot receive is armed at any time ({@code receiveOp}); it is re-armed only from its own
 * final completion (the one without F_MORE) or when none is armed, so data can never arrive through two
 * operations out of order.
 * <pre>
 *   armed --final CQE (data / kernel limit)--------------------> armed again (unless suspended)
 *   armed --suspendReceive: ASYNC_CANCEL--> cancelling --final CQE--> idle, or armed again if resumed meanwhile
 *   armed --ENOBUFS--> starved (queued on the engine) --a buffer released--> armed (unless suspended)
 *   idle/starved --resumeReceive--> armed (starved: when a buffer comes back)
 *   any --close--> cancel + close queued; onClosed once, from the final CQE, or from a NOP if nothing was armed
 * </pre>
 * Data completions that were already posted when a suspension was asked for are still delivered; they are
 * what "in flight" means, and the handler must take them (the alternative, holding their provided buffers
 * until resumption, would let clients that stop reading pin the shard's shared buffers).
 */
final class UringTcpConnection implements TcpConnection {
    private static final int MAX_PARTS = 64;
    private static final int RECEIVE = 1;
    private static final int SEND = 2;
    /** A NOP queued by {@link #close()} to report the end of receiving when no receive was armed. */
    private static final int END = 3;

    private final UringEngine engine;
    private final Ring ring;
    private final int fd;
    /*
     * The msghdr and iovecs of sends. An automatic arena: the kernel copies both when it prepares the sendmsg,
     * and Java touches them only while this connection is reachable from an in-flight operation, so there is
     * no moment at which freeing them explicitly would be both safe and known.
     */
    private final MemorySegment msg;
    private final MemorySegment iovecs;
    private final CompletionHandler ops = this::onComplete;
    private ReceiveHandler receiver;
    /** The armed multishot receive's user_data, until its final completion; -1 when none is armed. */
    private long receiveOp = -1;
    /** An ASYNC_CANCEL has been queued for {@link #receiveOp}. */
    private boolean receiveCancelled;
    private boolean suspended;
    /** Waiting in the engine's queue for a released buffer (the last receive ended with -ENOBUFS). */
    private boolean starved;
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
        Arena arena = Arena.ofAuto();
        this.msg = arena.allocate(msghdr.layout());
        this.iovecs = arena.allocate(16L * MAX_PARTS, 8);
    }

    @Override
    public void startReceiving(ReceiveHandler handler) {
        if (receiver != null) {
            throw new IllegalStateException("already receiving");
        }
        if (handler == null) {
            throw new IllegalArgumentException("receive handler is null");
        }
        receiver = handler;
        if (closed) {
            queueEnd();
            return;
        }
        arm();
    }

    /** Arms a multishot receive when one is wanted and none is armed or waited for. */
    private void arm() {
        if (receiveOp >= 0 || starved || suspended || closed || endReported || receiver == null || ring.isClosed()) {
            return;
        }
        long op = ring.recvMultishot(fd, engine.receiveBuffers(), ops, RECEIVE);
        if (op < 0) {
            reportEnd((int) op); // -EBUSY: the ring's in-flight bound; the connection cannot go on receiving
            return;
        }
        receiveOp = op;
        receiveCancelled = false;
    }

    /** From the engine: a buffer came back. Returns whether this connection armed a receive with it. */
    boolean buffersAvailable() {
        starved = false;
        arm();
        return receiveOp >= 0;
    }

    @Override
    public void suspendReceive() {
        if (suspended) {
            return;
        }
        suspended = true;
        if (receiveOp >= 0 && !receiveCancelled) {
            ring.cancelDetached(receiveOp);
            receiveCancelled = true;
        }
    }

    @Override
    public void resumeReceive() {
        if (!suspended) {
            return;
        }
        suspended = false;
        arm(); // nothing while the suspended receive winds down: its final completion re-arms
    }

    @Override
    public boolean isReceiveSuspended() {
        return suspended && receiveOp < 0;
    }

    private void onComplete(int result, int flags, long attachment) {
        if (attachment == RECEIVE) {
            onReceive(result, flags);
        } else if (attachment == SEND) {
            onSend(result);
        } else {
            reportEnd(0);
        }
    }

    private void onReceive(int result, int flags) {
        boolean last = (flags & Ring.CQE_F_MORE) == 0;
        if (last) {
            receiveOp = -1;
            receiveCancelled = false;
        }
        if (result > 0) {
            BufferRing buffers = engine.receiveBuffers();
            int bid = BufferRing.bufferId(flags);
            Verify.that(bid >= 0, "receive completion without a buffer");
            buffers.taken(bid);
            if (closed || endReported) {
                releaseBuffer(bid);
            } else {
                // Delivered even when suspended: these bytes left the socket before the cancellation landed.
                receiver.onReceive(this, buffers.memory(), (long) bid * buffers.bufferSize(), result, bid);
            }
            if (last) {
                if (closed) {
                    reportEnd(0);
                } else {
                    arm(); // the kernel ended the multishot after data (or we cancelled it): go on unless suspended
                }
            }
            return;
        }
        Verify.that(last, "a multishot receive completion without data must be its last");
        if (closed) {
            reportEnd(result == -Errno.ECANCELED || result == -Errno.ENOBUFS ? 0 : result);
        } else if (result == -Errno.ENOBUFS) {
            if (!suspended && !endReported) {
                starved = true;
                engine.starved(this); // armed again when a buffer comes back
            }
        } else if (result == -Errno.ECANCELED && !ring.isClosed()) {
            arm(); // our suspension's cancel; resumed meanwhile -> receive again
        } else {
            reportEnd(result); // 0: the peer closed; -errno: the connection failed; -ECANCELED: the ring closes
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

    /** Reports the end of receiving from a later completion (or at once if even a NOP cannot be queued). */
    private void queueEnd() {
        if (endReported || receiver == null) {
            return;
        }
        if (ring.isClosed() || ring.nop(ops, END) < 0) {
            reportEnd(0);
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
            if (sendDone < sendTotal && closed) {
                result = -Errno.EPIPE; // closed under a short send: the rest is not sent
            } else if (sendDone < sendTotal) {
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
        if (receiveOp >= 0) {
            if (!receiveCancelled) {
                ring.cancelDetached(receiveOp);
                receiveCancelled = true;
            }
            // Its final completion reports the end.
        } else {
            queueEnd(); // suspended, starved, or not started: nothing armed will report it
        }
        // Queued after every operation on fd (each holds its own reference), so the number cannot be reused
        // under one of them.
        ring.closeDetached(fd);
    }

    @Override
    public String toString() {
        return "TcpConnection{fd=" + fd + "}";
    }
}
