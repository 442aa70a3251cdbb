package dev.isthmus.uring;

import dev.isthmus.ffi.Errno;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SelectionKey;
import java.nio.channels.SocketChannel;

/** {@link TcpConnection} over a non-blocking {@link SocketChannel} registered with the engine's selector. */
final class PortableTcpConnection implements TcpConnection {
    private static final int READS_PER_EVENT = 4;

    private final PortableEngine engine;
    private final SocketChannel channel;
    private final SelectionKey key;
    private ReceiveHandler receiver;
    /** OP_READ is wanted: started, not suspended, not starved, not ended. */
    private boolean receiving;
    private boolean suspended;
    /** Queued on the engine, waiting for a released receive buffer. */
    private boolean starved;
    private boolean closed;
    private boolean endReported;

    private ByteBuffer[] sendBuffers;
    private CompletionHandler sendHandler;
    private long sendAttachment;
    private long sendTotal;
    private long sendDone;

    PortableTcpConnection(PortableEngine engine, SocketChannel channel) throws ClosedChannelException {
        this.engine = engine;
        this.channel = channel;
        // A connected channel may already be registered (for OP_CONNECT): reuse that key.
        SelectionKey existing = channel.keyFor(engine.selector());
        if (existing != null && existing.isValid()) {
            existing.interestOps(0);
            existing.attach(this);
            this.key = existing;
        } else {
            this.key = channel.register(engine.selector(), 0, this);
        }
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
        resume();
    }

    /** Turns reading on when it is wanted; returns whether it is on. */
    private boolean resume() {
        if (closed || endReported || receiver == null || suspended || starved) {
            return false;
        }
        receiving = true;
        key.interestOps(key.interestOps() | SelectionKey.OP_READ);
        return true;
    }

    /** From the engine: a receive buffer was released. Returns whether this connection reads again. */
    boolean buffersAvailable() {
        starved = false;
        return resume();
    }

    @Override
    public void suspendReceive() {
        if (suspended) {
            return;
        }
        suspended = true;
        receiving = false; // also stops the read loop of onReadable when called from onReceive
        if (key.isValid()) {
            key.interestOps(key.interestOps() & ~SelectionKey.OP_READ);
        }
    }

    @Override
    public void resumeReceive() {
        if (!suspended) {
            return;
        }
        suspended = false;
        resume(); // while starved, the engine resumes it when a buffer comes back
    }

    @Override
    public boolean isReceiveSuspended() {
        return suspended; // nothing is ever in flight here: reads happen synchronously in onReadable
    }

    void onReady(int ready) {
        if ((ready & SelectionKey.OP_READ) != 0) {
            onReadable();
        }
        if ((ready & SelectionKey.OP_WRITE) != 0 && sendHandler != null) {
            continueSend();
        }
    }

    private void onReadable() {
        for (int i = 0; i < READS_PER_EVENT && receiving && !closed; i++) {
            int bid = engine.takeBuffer();
            if (bid < 0) {
                receiving = false;
                key.interestOps(key.interestOps() & ~SelectionKey.OP_READ);
                starved = true;
                engine.starved(this);
                return;
            }
            ByteBuffer bb = engine.bufferView(bid);
            int n;
            try {
                n = channel.read(bb);
            } catch (IOException e) {
                engine.releaseBuffer(bid);
                end(PortableEngine.errnoOf(e));
                return;
            }
            if (n < 0) {
                engine.releaseBuffer(bid);
                end(0);
                return;
            }
            if (n == 0) {
                engine.releaseBuffer(bid);
                return;
            }
            receiver.onReceive(this, engine.receiveMemory(), (long) bid * PortableEngine.RECEIVE_BUFFER_BYTES, n, bid);
            if (n < PortableEngine.RECEIVE_BUFFER_BYTES) {
                return;
            }
        }
    }

    private void end(int result) {
        receiving = false;
        if (key.isValid()) {
            key.interestOps(key.interestOps() & ~SelectionKey.OP_READ);
        }
        if (!endReported) {
            endReported = true;
            receiver.onClosed(this, result);
        }
    }

    @Override
    public void releaseBuffer(int bufferId) {
        engine.releaseBuffer(bufferId);
    }

    @Override
    public long send(MemorySegment data, CompletionHandler handler, long attachment) {
        return send(new MemorySegment[] {data}, 1, handler, attachment);
    }

    @Override
    public long send(MemorySegment[] parts, int count, CompletionHandler handler, long attachment) {
        engine.checkOwner();
        if (sendHandler != null) {
            throw new IllegalStateException("a send is already in flight on this connection");
        }
        if (closed) {
            return -Errno.EPIPE;
        }
        sendBuffers = new ByteBuffer[count];
        long total = 0;
        for (int i = 0; i < count; i++) {
            sendBuffers[i] = parts[i].asByteBuffer();
            total += parts[i].byteSize();
        }
        sendHandler = handler;
        sendAttachment = attachment;
        sendTotal = total;
        sendDone = 0;
        continueSend();
        return 0;
    }

    private void continueSend() {
        int result;
        try {
            while (sendDone < sendTotal) {
                long n = channel.write(sendBuffers);
                if (n == 0) {
                    key.interestOps(key.interestOps() | SelectionKey.OP_WRITE);
                    return;
                }
                sendDone += n;
            }
            result = (int) Math.min(sendTotal, Integer.MAX_VALUE);
        } catch (IOException e) {
            result = PortableEngine.errnoOf(e);
        }
        if (key.isValid()) {
            key.interestOps(key.interestOps() & ~SelectionKey.OP_WRITE);
        }
        CompletionHandler h = sendHandler;
        long att = sendAttachment;
        int r = result;
        sendHandler = null;
        sendBuffers = null;
        engine.later(() -> h.onComplete(r, 0, att));
    }

    @Override
    public void shutdownOutput() {
        try {
            channel.shutdownOutput();
        } catch (IOException ignored) {
            // the peer is gone already; the receive side reports it
        }
    }

    @Override
    public InetSocketAddress remoteAddress() {
        try {
            return (InetSocketAddress) channel.getRemoteAddress();
        } catch (IOException e) {
            return null;
        }
    }

    @Override
    public InetSocketAddress localAddress() {
        try {
            return (InetSocketAddress) channel.getLocalAddress();
        } catch (IOException e) {
            return null;
        }
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
        key.cancel();
        PortableEngine.closeQuietly(channel);
        if (sendHandler != null) {
            CompletionHandler h = sendHandler;
            long att = sendAttachment;
            sendHandler = null;
            engine.later(() -> h.onComplete(-Errno.ECANCELED, 0, att));
        }
        if (receiver != null && !endReported) {
            endReported = true;
            engine.later(() -> receiver.onClosed(this, -Errno.ECANCELED));
        }
    }
}
