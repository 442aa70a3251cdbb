package dev.isthmus.raft.net;

import dev.isthmus.ffi.Errno;
import dev.isthmus.uring.CompletionHandler;
import dev.isthmus.uring.TcpConnection;
import dev.isthmus.uring.shard.Shard;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;

/**
 * A {@link TcpConnection} that speaks TLS over another one: a JSSE {@link SSLEngine} driven by the shard loop, so a
 * {@link PeerConnection} sends and receives plaintext frames exactly as over a plain socket. Made by
 * {@link ShardTransport} for every accepted (server mode) and dialed (client mode) connection when the transport has
 * a {@link TransportTls}.
 *
 * <h2>Receiving</h2>
 * Ciphertext from the socket is copied into {@code netIn} (the socket's buffer goes back at once) and unwrapped
 * record by record into {@code appIn}; each record's plaintext is handed to the receive handler during the call, as
 * a socket hands its buffers (the handler copies it; {@link #releaseBuffer} is a no-op). While the engine waits for
 * a delegated task, or must wrap while a send is in flight, the socket's receiving is suspended and what the kernel
 * had already delivered waits in {@code netIn}, in order.
 *
 * <h2>Sending</h2>
 * One plaintext send at a time, as on a socket. It waits until the handshake is done, then is wrapped into
 * {@code netOut} (at most {@link #NET_OUT_BYTES} of ciphertext per socket send) and sent chunk by chunk; its
 * completion is reported once its last ciphertext left. Handshake and post-handshake messages (TLS 1.3 session
 * tickets, KeyUpdate) are wrapped ahead of it.
 *
 * <h2>Rules</h2>
 * TLS 1.2 renegotiation is refused (the connection closes). {@link #close} sends close_notify (or, after a
 * failure, the engine's alert) when no send is in flight and closes the socket after it, or after one second at the
 * latest; a failure is logged with its cause (rate-limited), never with key material.
 *
 * <h2>Threads</h2>
 * Owned by the shard of the socket; every method and callback runs there. Delegated tasks run on the executor of
 * {@link TransportTls#tasks()}; their completion is handed back to the shard with {@code ShardGroup.execute}.
 * Buffers are direct {@link ByteBuffer}s held by this object (the kernel reads {@code netOut} until the send's
 * completion, which this object waits for before reusing or dropping it).
 */
final class TlsTcpConnection implements TcpConnection {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.raft.net");
    /** Ciphertext per socket send (a few TLS records). */
    static final int NET_OUT_BYTES = 64 * 1024;
    private static final ByteBuffer EMPTY = ByteBuffer.allocate(0);
    private static volatile long lastFailureLogMs = Long.MIN_VALUE / 2;

    private final TcpConnection socket;
    private final SSLEngine engine;
    private final Shard shard;
    private final Executor tasks;
    private final String peerName;
    private final int packetBytes;
    private ReceiveHandler handler;
    private ByteBuffer netIn;
    private ByteBuffer appIn;
    private MemorySegment appInMemory;
    private final ByteBuffer netOut;
    private boolean netSendInFlight;
    private boolean taskRunning;
    private boolean handshakeDone;
    private boolean closed;
    private boolean socketClosed;
    private boolean closeNotifySent;
    private boolean userSuspended;
    private boolean tlsSuspended;
    private boolean peerClosed;
    // The plaintext send being wrapped.
    private ByteBuffer appOut;
    private CompletionHandler appHandler;
    private long appAttachment;
    private int appBytes;

    /**
     * @param socket   the connected socket (receiving not started)
     * @param engine   a client- or server-mode engine, not yet handshaking
     * @param peerName how logs name the other end
     */
    TlsTcpConnection(TcpConnection socket, SSLEngine engine, Shard shard, Executor tasks, String peerName) {
        this.socket = socket;
        this.engine = engine;
        this.shard = shard;
        this.tasks = tasks;
        this.peerName = peerName;
        this.packetBytes = engine.getSession().getPacketBufferSize();
        this.netIn = ByteBuffer.allocateDirect(2 * packetBytes);
        this.appIn = ByteBuffer.allocateDirect(engine.getSession().getApplicationBufferSize());
        this.appInMemory = MemorySegment.ofBuffer(appIn);
        this.netOut = ByteBuffer.allocateDirect(Math.max(NET_OUT_BYTES, 2 * packetBytes));
    }

    /** Whether the first handshake completed (tests). */
    boolean handshakeDone() {
        return handshakeDone;
    }

    // ================================================================================================ receiving

    @Override
    public void startReceiving(ReceiveHandler h) {
        if (handler != null) {
            throw new IllegalStateException("receiving already started");
        }
        handler = h;
        socket.startReceiving(new ReceiveHandler() {
            @Override
            public void onReceive(TcpConnection c, MemorySegment memory, long offset, int length, int bufferId) {
                try {
                    onCipher(memory, offset, length);
                } finally {
                    c.releaseBuffer(bufferId);
                }
            }

            @Override
            public void onClosed(TcpConnection c, int result) {
                socketClosed = true;
                closed = true;
                abandonAppSend();
                handler.onClosed(TlsTcpConnection.this, result);
            }
        });
        try {
            engine.beginHandshake();
        } catch (SSLException e) {
            fail("cannot start the TLS handshake: " + e.getMessage());
            return;
        }
        pump(); // a client speaks first
    }

    private void onCipher(MemorySegment memory, long offset, int length) {
        if (closed) {
            return;
        }
        if (netIn.remaining() < length) {
            ByteBuffer bigger = ByteBuffer.allocateDirect(Math.max(2 * netIn.capacity(), netIn.position() + length));
            netIn.flip();
            bigger.put(netIn);
            netIn = bigger;
        }
        // ofBuffer starts at the buffer's position: view the whole block, and copy at the position.
        MemorySegment.copy(memory, offset, MemorySegment.ofBuffer(netIn.duplicate().clear()), netIn.position(), length);
        netIn.position(netIn.position() + length);
        processIn();
    }

    /** Unwraps what {@code netIn} holds until it needs more bytes or has to wait. */
    private void processIn() {
        while (!closed) {
            if (taskRunning) {
                setTlsSuspended(true);
                return;
            }
            if (renegotiating()) {
                return;
            }
            SSLEngineResult.HandshakeStatus hs = engine.getHandshakeStatus();
            if (hs == SSLEngineResult.HandshakeStatus.NEED_TASK) {
                runTasks();
                continue;
            }
            if (hs == SSLEngineResult.HandshakeStatus.NEED_WRAP) {
                pump();
                if (closed || taskRunning) {
                    continue;
                }
                if (engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP) {
                    setTlsSuspended(true); // the send in flight must finish first; its completion resumes
                    return;
                }
                continue;
            }
            setTlsSuspended(false);
            if (netIn.position() == 0 || peerClosed) {
                return;
            }
            SSLEngineResult r;
            appIn.clear();
            netIn.flip();
            try {
                r = engine.unwrap(netIn, appIn);
            } catch (SSLException e) {
                fail((handshakeDone ? "TLS error: " : "TLS handshake failed: ") + e.getMessage());
                return;
            } finally {
                netIn.compact();
            }
            if (appIn.position() > 0) {
                handler.onReceive(this, appInMemory, 0, appIn.position(), 0);
            }
            if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.FINISHED) {
                handshakeFinished();
            }
            checkHandshakeDone();
            switch (r.getStatus()) {
                case BUFFER_UNDERFLOW -> {
                    if (netIn.position() == netIn.capacity()) {
                        ByteBuffer bigger = ByteBuffer.allocateDirect(Math.max(2 * netIn.capacity(),
                            engine.getSession().getPacketBufferSize()));
                        netIn.flip();
                        bigger.put(netIn);
                        netIn = bigger;
                    }
                    return; // a partial record: wait for more bytes
                }
                case BUFFER_OVERFLOW -> {
                    appIn = ByteBuffer.allocateDirect(Math.max(2 * appIn.capacity(),
                        engine.getSession().getApplicationBufferSize()));
                    appInMemory = MemorySegment.ofBuffer(appIn);
                }
                case CLOSED -> {
                    // close_notify from the peer: nothing more comes. The socket's end follows (or our close).
                    peerClosed = true;
                    close();
                    return;
                }
                case OK -> {
                    if (r.bytesConsumed() == 0 && r.bytesProduced() == 0
                        && engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_UNWRAP) {
                        return;
                    }
                }
            }
        }
    }

    /**
     * The handshake may end inside a delegated task (the peer's certificate check), and then no wrap or unwrap
     * reports FINISHED: the engine not handshaking any more means the same.
     */
    private void checkHandshakeDone() {
        if (!handshakeDone && engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NOT_HANDSHAKING) {
            handshakeFinished();
        }
    }

    private void handshakeFinished() {
        if (!handshakeDone) {
            handshakeDone = true;
            pump(); // the plaintext that waited for the handshake
        }
    }

    /** A handshake after the first one, other than what TLS 1.3 does without one, is refused. */
    private boolean renegotiating() {
        if (handshakeDone && "TLSv1.2".equals(engine.getSession().getProtocol())
            && engine.getHandshakeStatus() != SSLEngineResult.HandshakeStatus.NOT_HANDSHAKING) {
            fail("the peer tried to renegotiate TLS, which is not supported");
            return true;
        }
        return false;
    }

    private void runTasks() {
        if (taskRunning) {
            return;
        }
        taskRunning = true;
        int shardId = shard.id();
        try {
            tasks.execute(() -> {
                Runnable t;
                while ((t = engine.getDelegatedTask()) != null) {
                    t.run();
                }
                try {
                    shard.group().execute(shardId, this::tasksDone);
                } catch (RejectedExecutionException e) {
                    // the shard group stopped: nothing left to resume
                }
            });
        } catch (RejectedExecutionException e) {
            taskRunning = false;
            fail("the node is stopping");
        }
    }

    private void tasksDone() {
        taskRunning = false;
        if (closed) {
            if (!netSendInFlight) {
                closeSocket();
            }
            return;
        }
        checkHandshakeDone();
        pump();
        processIn();
    }

    private void setTlsSuspended(boolean on) {
        if (tlsSuspended != on) {
            tlsSuspended = on;
            applySuspension();
        }
    }

    private void applySuspension() {
        if (socketClosed) {
            return;
        }
        if (tlsSuspended || userSuspended) {
            socket.suspendReceive();
        } else {
            socket.resumeReceive();
        }
    }

    @Override
    public void releaseBuffer(int bufferId) {
        // The plaintext lives in appIn, reused after the handler returns: nothing to give back.
    }

    @Override
    public void suspendReceive() {
        userSuspended = true;
        applySuspension();
    }

    @Override
    public void resumeReceive() {
        userSuspended = false;
        applySuspension();
    }

    @Override
    public boolean isReceiveSuspended() {
        return userSuspended && socket.isReceiveSuspended();
    }

    // ================================================================================================ sending

    @Override
    public long send(MemorySegment[] parts, int count, CompletionHandler h, long attachment) {
        if (count != 1) {
            throw new IllegalArgumentException("TLS connections send one buffer at a time, not " + count);
        }
        return send(parts[0], h, attachment);
    }

    @Override
    public long send(MemorySegment data, CompletionHandler h, long attachment) {
        if (appHandler != null) {
            throw new IllegalStateException("a send is already in flight on this connection");
        }
        if (closed) {
            return -Errno.EPIPE;
        }
        if (data.byteSize() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("a send of " + data.byteSize() + " bytes");
        }
        appOut = data.asByteBuffer();
        appHandler = h;
        appAttachment = attachment;
        appBytes = (int) data.byteSize();
        pump();
        return 1;
    }

    /** Wraps what is due (handshake messages, then plaintext) into {@code netOut} and sends it. */
    private void pump() {
        if (netSendInFlight || taskRunning || socketClosed || closed && closeNotifySent) {
            return;
        }
        netOut.clear();
        try {
            while (netOut.remaining() >= packetBytes) {
                SSLEngineResult.HandshakeStatus hs = engine.getHandshakeStatus();
                if (hs == SSLEngineResult.HandshakeStatus.NEED_TASK) {
                    if (!closed) {
                        runTasks();
                    }
                    break;
                }
                SSLEngineResult r;
                if (hs == SSLEngineResult.HandshakeStatus.NEED_WRAP || closed) {
                    r = engine.wrap(EMPTY, netOut);
                } else if (handshakeDone && appOut != null && appOut.hasRemaining()) {
                    r = engine.wrap(appOut, netOut);
                } else {
                    break;
                }
                // Only the flag here: the plaintext waiting for the handshake is wrapped by this same loop.
                if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.FINISHED
                    || engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NOT_HANDSHAKING) {
                    handshakeDone = true;
                }
                if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                    closeNotifySent = true;
                    break;
                }
                if (r.getStatus() != SSLEngineResult.Status.OK || r.bytesProduced() == 0 && r.bytesConsumed() == 0) {
                    break;
                }
            }
        } catch (SSLException e) {
            fail("TLS error while sending: " + e.getMessage());
            return;
        }
        if (netOut.position() == 0) {
            completeAppSend();
            if (closed) {
                closeSocket();
            }
            return;
        }
        netOut.flip();
        netSendInFlight = true;
        long id = socket.send(MemorySegment.ofBuffer(netOut), this::onNetSent, 0);
        if (id < 0) {
            netSendInFlight = false;
            broken("send failed: " + Errno.describe((int) -id));
        }
    }

    private void onNetSent(int result, int flags, long attachment) {
        netSendInFlight = false;
        if (closed) {
            abandonAppSend();
            if (closeNotifySent || result < 0 || taskRunning) {
                closeSocket();
            } else {
                pump(); // close_notify, then the socket
            }
            return;
        }
        if (result < 0) {
            broken(null); // the socket's own end follows with its errno
            return;
        }
        completeAppSend();
        pump();
        if (!closed && tlsSuspended && !taskRunning) {
            processIn(); // receiving waited for this send
        }
    }

    /** Reports the plaintext send done once all of it was wrapped and its ciphertext left. */
    private void completeAppSend() {
        if (appHandler != null && !appOut.hasRemaining() && !netSendInFlight) {
            CompletionHandler h = appHandler;
            appHandler = null;
            appOut = null;
            h.onComplete(appBytes, 0, appAttachment);
        }
    }

    /** The plaintext send cannot finish (the connection closed): its owner hears so, and may free its buffer. */
    private void abandonAppSend() {
        if (appHandler != null && !netSendInFlight) {
            CompletionHandler h = appHandler;
            appHandler = null;
            appOut = null;
            h.onComplete(-Errno.ECANCELED, 0, appAttachment);
        }
    }

    @Override
    public void shutdownOutput() {
        socket.shutdownOutput();
    }

    // ================================================================================================ closing

    /** The socket cannot send: close it at once (no alert can go out). */
    private void broken(String why) {
        if (closed) {
            return;
        }
        if (why != null) {
            LOG.log(System.Logger.Level.DEBUG, "RPC connection with " + peerName + ": " + why);
        }
        closed = true;
        closeSocket();
        abandonAppSend();
    }

    private void fail(String why) {
        if (closed) {
            return;
        }
        if (why != null) {
            long now = System.nanoTime() / 1_000_000L;
            if (now - lastFailureLogMs >= 1000) {
                lastFailureLogMs = now;
                LOG.log(System.Logger.Level.WARNING, "RPC connection with " + peerName + ": " + why);
            }
        }
        close(); // the alert the engine has for the peer (a handshake failure's reason) goes out first, if it can
    }

    /**
     * Closes: a plaintext send not yet wrapped is abandoned (its completion reports -ECANCELED); close_notify goes
     * out when no send is in flight, and the socket closes after it, or after one second at the latest.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        abandonAppSend();
        if (socketClosed) {
            return;
        }
        engine.closeOutbound();
        if (!netSendInFlight && !taskRunning) {
            pump();
        }
        if (!socketClosed) {
            shard.schedule(1_000_000_000L, this::closeSocket);
        }
    }

    private void closeSocket() {
        if (!socketClosed) {
            socketClosed = true;
            socket.close();
        }
    }

    @Override
    public InetSocketAddress remoteAddress() {
        return socket.remoteAddress();
    }

    @Override
    public InetSocketAddress localAddress() {
        return socket.localAddress();
    }

    @Override
    public boolean isOpen() {
        return !closed && socket.isOpen();
    }

    @Override
    public String toString() {
        return "TlsTcpConnection[" + peerName + ", " + (handshakeDone ? engine.getSession().getProtocol()
            : "handshaking") + (closed ? ", closed" : "") + "]";
    }
}
