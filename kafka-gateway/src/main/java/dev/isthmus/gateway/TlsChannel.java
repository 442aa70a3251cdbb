package dev.isthmus.gateway;

import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.uring.TcpConnection;
import dev.isthmus.uring.shard.Shard;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.concurrent.Executor;

/**
 * TLS over one connection's non-blocking socket: a JSSE {@link SSLEngine} driven by the shard loop, no thread per
 * connection. Owner: the connection's shard; every method runs there. The engine's delegated tasks (the handshake's
 * key exchange and signatures, CPU work) run on the broker's security workers and the channel resumes on its shard
 * when they are done; nothing else leaves the shard.
 *
 * <h2>Receiving</h2>
 * Ciphertext the engine delivers is copied into {@code netIn}, an arena block of at least one TLS record taken
 * while a partial record waits and given back once it is empty (an idle connection holds no TLS memory). Each
 * whole record is unwrapped into the shard's scratch block and the plaintext handed to the connection at once,
 * which copies it into its receive chain: so a Kafka request may span records and a record may hold many
 * requests. While the channel waits for a delegated task or for the socket to take handshake bytes, ciphertext
 * that does not fit waits on the heap ({@code backlog}), in order.
 *
 * <h2>Sending</h2>
 * One send at a time: handshake messages, post-handshake messages (TLS 1.3 session tickets and KeyUpdate answers)
 * and the response being sent are wrapped into {@code netOut}, an arena block taken per send and given back when
 * the kernel is done with it; a response larger than a block goes out in several sends. The response's fragments
 * are wrapped in place (gathered), without a copy into a heap buffer.
 *
 * <h2>Rules</h2>
 * TLS 1.2 and 1.3 as the settings allow; renegotiation is refused (a handshake after the first one, other than
 * TLS 1.3's KeyUpdate and session tickets, which the engine handles without a new handshake, closes the
 * connection). Closing sends close_notify when no send is in flight, and tolerates peers that send none.
 */
final class TlsChannel {
    /** Receives what the channel produces; called on the owner shard. */
    interface Sink {
        /** Plaintext bytes, valid only during the call. */
        void plaintext(MemorySegment data, long offset, int length);

        /**
         * Plaintext was delivered outside a call of {@link #onCipher} (after a delegated task or a send the receiving
         * waited for): the connection should look at what it received, as it does after each receive.
         */
        void deliveredLater();

        /** The first handshake completed. */
        void handshakeDone(SSLEngine engine);

        /** The channel cannot go on ({@code why} is one sentence for the log); the connection should close. */
        void failed(String why);
    }

    /** Per shard thread: the block records are unwrapped into before their plaintext is copied out. */
    private static final ThreadLocal<Scratch> SCRATCH = new ThreadLocal<>();

    /** A direct block and its segment view, made once per shard thread (no allocation per record). */
    private record Scratch(ByteBuffer buffer, MemorySegment memory) {
    }
    private static final int BLOCK_BYTES = 32 * 1024;
    private static final ByteBuffer EMPTY = ByteBuffer.allocate(0);
    private static final int MAX_PARTS = 64;

    private final SSLEngine engine;
    private final TcpConnection socket;
    private final MemoryArena arena;
    private final Shard shard;
    private final Executor workers;
    private final Sink sink;
    private final int packetBytes;
    private long netInOffset = MemoryArena.NO_MEMORY;
    private ByteBuffer netIn;
    private MemorySegment netInMemory;
    private boolean socketClosed;
    private long netOutOffset = MemoryArena.NO_MEMORY;
    private ByteBuffer netOut;
    private ArrayDeque<byte[]> backlog;
    private boolean sendInFlight;
    private boolean taskRunning;
    /** Receiving waits for the send in flight to finish (the engine must wrap before it can unwrap more). */
    private boolean blocked;
    /** Plaintext went to the sink since the last resume. */
    private boolean delivered;
    private boolean handshakeDone;
    private boolean closed;
    private boolean closeNotifySent;
    // The response being wrapped: its fragments as buffers, and what to run once all of it is sent.
    private final ByteBuffer[] srcs = new ByteBuffer[MAX_PARTS];
    private IoBuf response;
    private int responseNext;
    private int srcCount;
    private Runnable responseSent;

    TlsChannel(SSLEngine engine, TcpConnection socket, MemoryArena arena, Shard shard, Executor workers, Sink sink) {
        this.engine = engine;
        this.socket = socket;
        this.arena = arena;
        this.shard = shard;
        this.workers = workers;
        this.sink = sink;
        this.packetBytes = engine.getSession().getPacketBufferSize();
        if (packetBytes > BLOCK_BYTES || engine.getSession().getApplicationBufferSize() > BLOCK_BYTES) {
            throw new IllegalStateException("TLS records of " + packetBytes + " bytes do not fit the channel's blocks");
        }
    }

    /** Starts the server handshake (the client speaks first). */
    void start() throws SSLException {
        engine.beginHandshake();
    }

    boolean handshakeDone() {
        return handshakeDone;
    }

    // ====================================================================================== receiving

    /** Ciphertext from the socket; copied before this returns. */
    void onCipher(MemorySegment data, long offset, int length) {
        if (closed) {
            return;
        }
        if (backlog != null || taskRunning || blocked) {
            park(data, offset, length); // behind what already waits, in order
            return;
        }
        take(data, offset, length);
    }

    /** Moves ciphertext into {@code netIn} and unwraps; what cannot be taken while waiting goes to the backlog. */
    private void take(MemorySegment data, long offset, int length) {
        while (length > 0 && !closed) {
            if (!ensureNetIn()) {
                return;
            }
            int n = Math.min(length, netIn.remaining());
            MemorySegment.copy(data, offset, netInMemory, netIn.position(), n);
            netIn.position(netIn.position() + n);
            offset += n;
            length -= n;
            if (!unwrapAll()) {
                park(data, offset, length); // waiting for a task or a send; the rest keeps its order
                return;
            }
        }
    }

    private void park(MemorySegment data, long offset, int length) {
        if (length <= 0 || closed) {
            return;
        }
        if (backlog == null) {
            backlog = new ArrayDeque<>();
        }
        byte[] copy = new byte[length];
        MemorySegment.copy(data, ValueLayout.JAVA_BYTE, offset, copy, 0, length);
        backlog.addLast(copy);
    }

    /** Runs again what waited (after a task or a send): buffered ciphertext first, then the backlog, in order. */
    private void resumeReceive() {
        blocked = false;
        if (closed || taskRunning) {
            return;
        }
        delivered = false;
        resumeUnwrapping();
        if (delivered && !closed) {
            sink.deliveredLater();
        }
    }

    private void resumeUnwrapping() {
        if (netIn != null && netIn.position() > 0 && !unwrapAll()) {
            return;
        }
        while (backlog != null && !closed && !taskRunning && !blocked) {
            byte[] head = backlog.pollFirst();
            ArrayDeque<byte[]> rest = backlog.isEmpty() ? null : backlog;
            backlog = null;
            take(MemorySegment.ofArray(head), 0, head.length); // may park what it could not take
            if (rest != null) {
                if (backlog == null) {
                    backlog = rest;
                } else {
                    backlog.addAll(rest); // behind the part of head just parked
                }
            }
        }
    }

    private boolean ensureNetIn() {
        if (netIn != null) {
            return true;
        }
        long off = arena.allocate(BLOCK_BYTES, Subsystem.OTHER);
        if (off == MemoryArena.NO_MEMORY) {
            fail("no shard memory for a TLS receive buffer: " + arena.lastFailure());
            return false;
        }
        netInOffset = off;
        netInMemory = arena.segment(off, BLOCK_BYTES);
        netIn = netInMemory.asByteBuffer();
        return true;
    }

    private void freeNetIn() {
        if (netIn != null) {
            arena.free(netInOffset);
            netIn = null;
            netInMemory = null;
            netInOffset = MemoryArena.NO_MEMORY;
        }
    }

    private static Scratch scratch() {
        Scratch sc = SCRATCH.get();
        if (sc == null) {
            // One block per shard thread for the life of the process: off the heap, never shared across threads.
            ByteBuffer b = ByteBuffer.allocateDirect(BLOCK_BYTES);
            sc = new Scratch(b, MemorySegment.ofBuffer(b));
            SCRATCH.set(sc);
        }
        sc.buffer().clear();
        return sc;
    }

    /**
     * Unwraps every whole record in {@code netIn}. Returns false when it has to wait (a delegated task, or
     * handshake bytes to send while a send is in flight); {@code netIn} then keeps the rest.
     */
    private boolean unwrapAll() {
        netIn.flip();
        try {
            while (!closed) {
                if (renegotiating()) {
                    return false;
                }
                SSLEngineResult.HandshakeStatus hs = engine.getHandshakeStatus();
                if (hs == SSLEngineResult.HandshakeStatus.NEED_TASK) {
                    runTasks();
                    return false;
                }
                if (hs == SSLEngineResult.HandshakeStatus.NEED_WRAP) {
                    if (!sendInFlight) {
                        pump();
                    }
                    if (closed || taskRunning) {
                        return false;
                    }
                    if (engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP) {
                        blocked = sendInFlight; // the send completion wraps, then resumes receiving
                        return false;
                    }
                    continue;
                }
                if (!netIn.hasRemaining()) {
                    return true;
                }
                Scratch sc = scratch();
                ByteBuffer app = sc.buffer();
                SSLEngineResult r;
                try {
                    r = engine.unwrap(netIn, app);
                } catch (SSLException e) {
                    fail(handshakeDone ? "TLS error: " + e.getMessage()
                        : "TLS handshake failed: " + e.getMessage() + plaintextHint());
                    return false;
                }
                if (app.position() > 0) {
                    delivered = true;
                    sink.plaintext(sc.memory(), 0, app.position());
                }
                if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.FINISHED) {
                    handshakeFinished();
                }
                checkHandshakeDone();
                switch (r.getStatus()) {
                    case BUFFER_UNDERFLOW -> {
                        return true; // a partial record: wait for more bytes
                    }
                    case BUFFER_OVERFLOW -> fail("a TLS record larger than the channel's buffers");
                    case CLOSED -> {
                        // close_notify from the peer: answer it and close.
                        fail(null);
                        return false;
                    }
                    case OK -> {
                        if (r.bytesConsumed() == 0 && r.bytesProduced() == 0
                            && engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_UNWRAP) {
                            return true;
                        }
                    }
                }
            }
            return false;
        } finally {
            if (netIn != null) {
                netIn.compact();
                if (netIn.position() == 0) {
                    freeNetIn();
                }
            }
        }
    }

    private String plaintextHint() {
        return " (a client speaking plaintext Kafka to a TLS listener? set security.protocol to SSL or SASL_SSL)";
    }

    /**
     * The handshake may end inside a delegated task (the last client flight's certificate check), and then no
     * wrap or unwrap reports FINISHED: the engine not handshaking any more means the same.
     */
    private void checkHandshakeDone() {
        if (!handshakeDone && engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NOT_HANDSHAKING) {
            handshakeFinished();
        }
    }

    private void handshakeFinished() {
        if (!handshakeDone) {
            handshakeDone = true;
            sink.handshakeDone(engine);
        }
    }

    /** Runs the engine's delegated tasks on a worker, then resumes sending and receiving on the shard. */
    private void runTasks() {
        if (taskRunning) {
            return;
        }
        taskRunning = true;
        int shardId = shard.id();
        try {
            workers.execute(() -> {
                Runnable t;
                while ((t = engine.getDelegatedTask()) != null) {
                    t.run();
                }
                shard.group().execute(shardId, this::tasksDone);
            });
        } catch (java.util.concurrent.RejectedExecutionException e) {
            taskRunning = false;
            fail("the broker is stopping");
        }
    }

    private void tasksDone() {
        taskRunning = false;
        if (closed) {
            return;
        }
        checkHandshakeDone();
        if (renegotiating()) {
            return;
        }
        pump();
        resumeReceive();
    }

    /** A handshake after the first one, other than what TLS 1.3 does without one, is refused. */
    private boolean renegotiating() {
        if (handshakeDone && "TLSv1.2".equals(engine.getSession().getProtocol())
            && engine.getHandshakeStatus() != SSLEngineResult.HandshakeStatus.NOT_HANDSHAKING) {
            fail("the client tried to renegotiate TLS, which is not supported");
            return true;
        }
        return false;
    }

    // ====================================================================================== sending

    /** Sends {@code buf} encrypted; {@code done} runs once all of it left (not on failure: the channel fails). */
    void send(IoBuf buf, Runnable done) {
        if (response != null) {
            throw new IllegalStateException("a response is already being sent");
        }
        response = buf;
        responseNext = 0;
        srcCount = 0;
        responseSent = done;
        pump();
    }

    /** Whether bytes of the current response remain to be wrapped. */
    private boolean responsePending() {
        if (response == null) {
            return false;
        }
        for (int i = 0; i < srcCount; i++) {
            if (srcs[i].hasRemaining()) {
                return true;
            }
        }
        return responseNext < response.fragmentCount();
    }

    /** Refills {@link #srcs} with the next fragments once the previous ones are consumed. */
    private void refillSources() {
        for (int i = 0; i < srcCount; i++) {
            if (srcs[i].hasRemaining()) {
                return;
            }
        }
        int n = Math.min(MAX_PARTS, response.fragmentCount() - responseNext);
        for (int i = 0; i < n; i++) {
            srcs[i] = response.fragment(responseNext + i).asByteBuffer();
        }
        for (int i = n; i < srcCount; i++) {
            srcs[i] = null;
        }
        srcCount = n;
        responseNext += n;
    }

    /** Wraps what is due (handshake messages, then the response) into one block and sends it. */
    private void pump() {
        if (sendInFlight || taskRunning || closed && closeNotifySent) {
            return;
        }
        if (netOut == null) {
            long off = arena.allocate(2 * BLOCK_BYTES, Subsystem.OTHER);
            if (off == MemoryArena.NO_MEMORY) {
                fail("no shard memory for a TLS send buffer: " + arena.lastFailure());
                return;
            }
            netOutOffset = off;
            netOut = arena.segment(off, 2 * BLOCK_BYTES).asByteBuffer();
        }
        netOut.clear();
        try {
            while (netOut.remaining() >= packetBytes) {
                SSLEngineResult.HandshakeStatus hs = engine.getHandshakeStatus();
                if (hs == SSLEngineResult.HandshakeStatus.NEED_TASK) {
                    runTasks();
                    break;
                }
                SSLEngineResult r;
                if (hs == SSLEngineResult.HandshakeStatus.NEED_WRAP || closed) {
                    r = engine.wrap(EMPTY, netOut);
                } else if (handshakeDone && responsePending()) {
                    refillSources();
                    r = engine.wrap(srcs, 0, srcCount, netOut);
                } else {
                    break;
                }
                if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.FINISHED) {
                    handshakeFinished();
                }
                checkHandshakeDone();
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
            freeNetOut();
            finishResponseIfSent();
            return;
        }
        sendInFlight = true;
        MemorySegment out = arena.segment(netOutOffset, netOut.position());
        long id = socket.send(out, (res, flags, att) -> {
            sendInFlight = false;
            if (res < 0 || closed) {
                freeNetOut();
                if (closed) {
                    closeSocket();
                } else {
                    fail(null);
                }
                return;
            }
            finishResponseIfSent();
            if (!sendInFlight) {
                pump();
            }
            if (!sendInFlight) {
                freeNetOut();
            }
            resumeReceive();
        }, 0);
        if (id < 0) {
            sendInFlight = false;
            freeNetOut();
            fail(null);
        }
    }

    private void finishResponseIfSent() {
        if (response != null && !responsePending()) {
            Runnable done = responseSent;
            response = null;
            responseSent = null;
            for (int i = 0; i < srcCount; i++) {
                srcs[i] = null;
            }
            srcCount = 0;
            done.run();
        }
    }

    private void freeNetOut() {
        if (netOut != null && !sendInFlight) {
            arena.free(netOutOffset);
            netOut = null;
            netOutOffset = MemoryArena.NO_MEMORY;
        }
    }

    private void fail(String why) {
        if (!closed) {
            sink.failed(why);
        }
    }

    /**
     * Closes: sends close_notify when the socket is free (the socket closes after it), else closes the socket at
     * once; gives back the receive block. A response being sent is abandoned (its owner frees it).
     */
    void close() {
        if (closed) {
            return;
        }
        closed = true;
        backlog = null;
        freeNetIn();
        response = null;
        responseSent = null;
        for (int i = 0; i < srcCount; i++) {
            srcs[i] = null;
        }
        srcCount = 0;
        if (sendInFlight || taskRunning) {
            closeSocket(); // the completion gives the send block back
            return;
        }
        engine.closeOutbound();
        pump();
        if (!sendInFlight) {
            freeNetOut();
            closeSocket();
        }
    }

    private void closeSocket() {
        if (!socketClosed) {
            socketClosed = true;
            socket.close();
        }
    }
}
