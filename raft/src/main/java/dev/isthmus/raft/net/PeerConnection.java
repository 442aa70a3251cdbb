package dev.isthmus.raft.net;

import dev.isthmus.arena.ArenaExhaustedException;
import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.ffi.Errno;
import dev.isthmus.raft.Heartbeat;
import dev.isthmus.raft.HeartbeatResponse;
import dev.isthmus.raft.RaftMessage;
import dev.isthmus.raft.codec.RaftCodec;
import dev.isthmus.raft.codec.RaftCodecException;
import dev.isthmus.uring.CompletionHandler;
import dev.isthmus.uring.TcpConnection;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayDeque;

/**
 * One TCP connection to a peer node, on the shard that accepted or dialed it: the hello exchange, the frame
 * cutter for what arrives, and a bounded queue of what goes out.
 *
 * <h2>Sending</h2>
 * Messages queue as objects (at most {@link TransportConfig#maxPeerBufferBytes()} of frames; beyond it they
 * are dropped and counted: Raft retries). {@link #flush()} encodes as many queued frames as fit into the
 * connection's native send buffer and issues one send; the next batch goes when it completes. A frame larger
 * than the buffer gets a buffer of its own for its send.
 *
 * <h2>Receiving</h2>
 * Received bytes are copied out of the engine's provided buffers (released at once) into an accumulation
 * buffer, cut into frames, checked (CRC32C) and decoded; a corrupt or foreign frame closes the connection
 * (a stream that lost sync cannot be trusted). The buffer grows for a large frame up to
 * {@link TransportConfig#maxFrameBytes()} and shrinks back once it is empty.
 *
 * <h2>Threads</h2>
 * Owned by its shard's thread (all engine callbacks arrive there). Native buffers are freed only after the
 * last send completed, since the kernel may still read them.
 */
final class PeerConnection implements TcpConnection.ReceiveHandler, CompletionHandler {
    enum State { HANDSHAKE, ESTABLISHED, CLOSED }

    private static final System.Logger LOG = System.getLogger("dev.isthmus.raft.net");
    private static final int INITIAL_RECEIVE_BYTES = 64 * 1024;

    final ShardTransport owner;
    final TcpConnection tcp;
    /** True when this node dialed the connection. */
    final boolean dialed;
    /** The peer (known at creation for a dialed connection, from its hello for an accepted one). */
    int peer;
    long connectionId;
    /** Orders duplicate connections of one node pair; equal on both sides (see {@link ShardTransport}). */
    long rank;
    State state = State.HANDSHAKE;
    final long createdMs;
    long lastReceiveMs;
    long lastSendMs;
    String closeReason;

    private final Arena arena = Arena.ofConfined();
    private Arena receiveArena = Arena.ofConfined();
    private MemorySegment receiveSegment;
    private ByteBuffer receive;
    private final MemorySegment sendSegment;
    private final ByteBuffer sendBuffer;
    /**
     * The receive chain when the transport has a payload arena (the shard's, RAFT budget): received bytes are copied
     * once, from the socket's buffer into it, and an AppendRequest's batches share it
     * ({@link RaftCodec#decodeAppend}): a follower's batch is never copied again in memory (the log-engine's
     * write-behind chunk is the next copy). Other frames, small, are copied out into {@link #receive} and decoded
     * there. When the arena is short the chain continues on the heap (batches then go to the payload arena or the
     * heap, as {@link RaftCodec#decode} does) and returns to the arena once emptied. Null without a payload arena.
     */
    private IoBuf inbound;
    private Arena bigArena;
    private boolean sending;
    private boolean freed;
    private final ArrayDeque<Object> queue = new ArrayDeque<>();
    private final ArrayDeque<Integer> queueSizes = new ArrayDeque<>();
    private long queuedBytes;

    PeerConnection(ShardTransport owner, TcpConnection tcp, boolean dialed, int peer, long connectionId, long nowMs) {
        this.owner = owner;
        this.tcp = tcp;
        this.dialed = dialed;
        this.peer = peer;
        this.connectionId = connectionId;
        this.createdMs = nowMs;
        this.lastReceiveMs = nowMs;
        this.lastSendMs = nowMs;
        this.receiveSegment = receiveArena.allocate(INITIAL_RECEIVE_BYTES, 8);
        this.receive = receiveSegment.asByteBuffer().order(ByteOrder.BIG_ENDIAN);
        this.receive.limit(0);
        this.sendSegment = arena.allocate(owner.config().sendBufferBytes(), 8);
        this.sendBuffer = sendSegment.asByteBuffer().order(ByteOrder.BIG_ENDIAN);
    }

    void start() {
        tcp.startReceiving(this);
    }

    boolean isOpen() {
        return state != State.CLOSED;
    }

    long queuedBytes() {
        return queuedBytes;
    }

    boolean hasQueued() {
        return !queue.isEmpty();
    }

    /**
     * Queues a Raft message or transport frame; false (nothing queued) when the peer's buffer is full or the
     * connection is closed. Hellos bypass the bound.
     */
    boolean enqueue(Object frame, int frameBytes, boolean force) {
        if (state == State.CLOSED) {
            return false;
        }
        if (!force && queuedBytes + frameBytes > owner.config().maxPeerBufferBytes()) {
            return false;
        }
        queue.add(frame);
        queueSizes.add(frameBytes);
        queuedBytes += frameBytes;
        owner.markFlush(this);
        return true;
    }

    /** Starts a send of what is queued, unless one is in flight. Returns 1 when a send started. */
    int flush() {
        if (sending || queue.isEmpty() || state == State.CLOSED) {
            return 0;
        }
        TransportMetrics m = owner.metrics();
        RaftCodec codec = owner.codec();
        int first = queueSizes.peek();
        ByteBuffer out;
        MemorySegment segment;
        if (first > sendBuffer.capacity()) {
            bigArena = Arena.ofConfined();
            segment = bigArena.allocate(first, 8);
            out = segment.asByteBuffer().order(ByteOrder.BIG_ENDIAN);
        } else {
            segment = sendSegment;
            out = sendBuffer;
            out.clear();
        }
        int frames = 0;
        while (!queue.isEmpty() && queueSizes.peek() <= out.remaining()) {
            Object f = queue.poll();
            int size = queueSizes.poll();
            queuedBytes -= size;
            int before = out.position();
            try {
                if (f instanceof RaftMessage rm) {
                    codec.encode(rm, out);
                    if (rm instanceof Heartbeat) {
                        m.heartbeatFramesSent++;
                    } else if (rm instanceof HeartbeatResponse) {
                        m.heartbeatResponseFramesSent++;
                    }
                } else {
                    TransportFrames.encode(f, out);
                    if (f instanceof TransportFrames.Ping) {
                        m.pingsSent++;
                    } else if (f instanceof RpcMessage) {
                        m.rpcFramesSent++;
                    }
                }
            } catch (RaftCodecException e) {
                // A message the codec cannot frame (over the frame limit): a bug upstream, never a reason to
                // lose the connection. Log it and skip the message.
                out.position(before);
                LOG.log(System.Logger.Level.ERROR, "dropping a message to node " + peer + ": " + e.getMessage());
                continue;
            } finally {
                ShardTransport.unhold(f); // encoded (copied into the send buffer) or dropped
            }
            frames++;
            if (out.position() - before != size) {
                throw new IllegalStateException("frame of " + f.getClass().getSimpleName() + " took "
                    + (out.position() - before) + " bytes, computed " + size);
            }
        }
        if (frames == 0) {
            releaseBig();
            return 0;
        }
        int bytes = out.position();
        sending = true;
        m.sends++;
        m.framesSent += frames;
        m.bytesSent += bytes;
        lastSendMs = owner.nowMs();
        long r = tcp.send(segment.asSlice(0, bytes), this, 0);
        if (r < 0) {
            sending = false;
            releaseBig();
            close("send failed: " + Errno.describe((int) -r));
        }
        return 1;
    }

    private void releaseBig() {
        if (bigArena != null) {
            bigArena.close();
            bigArena = null;
        }
    }

    /** Send completion. */
    @Override
    public void onComplete(int result, int flags, long attachment) {
        sending = false;
        releaseBig();
        if (state == State.CLOSED) {
            free();
            return;
        }
        if (result < 0) {
            close("send failed: " + Errno.describe(-result));
            return;
        }
        if (!queue.isEmpty()) {
            owner.markFlush(this);
        }
    }

    // ------------------------------------------------------------------------------------------ receiving

    @Override
    public void onReceive(TcpConnection connection, MemorySegment memory, long offset, int length, int bufferId) {
        try {
            if (state == State.CLOSED) {
                return;
            }
            owner.metrics().bytesReceived += length;
            lastReceiveMs = owner.nowMs();
            MemoryArena payloads = owner.payloadArena();
            if (payloads != null) {
                receiveIntoChain(payloads, memory, offset, length);
                return;
            }
            int copied = 0;
            while (copied < length && state != State.CLOSED) {
                ensureRoom(1);
                // append at the limit
                int room = receive.capacity() - receive.limit();
                int n = Math.min(room, length - copied);
                MemorySegment.copy(memory, offset + copied, receiveSegment, receive.limit(), n);
                receive.limit(receive.limit() + n);
                copied += n;
                cutFrames();
            }
        } finally {
            connection.releaseBuffer(bufferId);
        }
    }

    /** Appends received bytes to {@link #inbound} (the heap when the arena is short) and takes its whole frames. */
    private void receiveIntoChain(MemoryArena payloads, MemorySegment memory, long offset, int length) {
        if (inbound == null) {
            inbound = IoBuf.empty(payloads, Subsystem.RAFT);
        }
        long before = inbound.size();
        try {
            inbound.append(memory, offset, length);
        } catch (ArenaExhaustedException e) {
            long took = inbound.size() - before;
            IoBuf heap = IoBuf.empty(null, Subsystem.RAFT);
            heap.append(inbound);
            inbound.release();
            inbound = heap;
            inbound.append(memory, offset + took, length - took);
        }
        cutChainFrames();
    }

    private void cutChainFrames() {
        RaftCodec codec = owner.codec();
        while (state != State.CLOSED && inbound.size() >= 8) {
            int announced = inbound.getInt(0);
            if (announced < RaftCodec.HEADER_BYTES - 4 + 8 || announced > codec.maxFrameBytes() - 4) {
                corrupt(new RaftCodecException("frame announces " + announced + " bytes (limit "
                    + codec.maxFrameBytes() + ")"));
                return;
            }
            int frame = announced + 4;
            if (inbound.size() < frame) {
                return;
            }
            byte type = inbound.getByte(7);
            Object decoded;
            try {
                if (RaftCodec.isAppendRequest(type)) {
                    IoBuf f = inbound.share(0, frame);
                    try {
                        decoded = codec.decodeAppend(f);
                    } finally {
                        f.release();
                    }
                } else {
                    ByteBuffer b = contiguous(frame);
                    decoded = TransportFrames.isTransportType(type) ? TransportFrames.decode(b, frame) : codec.decode(b);
                }
            } catch (RaftCodecException e) {
                corrupt(e);
                return;
            }
            inbound.trimFront(frame);
            owner.metrics().framesReceived++;
            onFrame(decoded);
        }
        if (state != State.CLOSED && inbound.size() == 0 && inbound.arena() == null) {
            inbound.release(); // back to the arena for the next bytes
            inbound = null;
        }
    }

    /** The first {@code frame} bytes of {@link #inbound} copied into {@link #receive} (grown as needed). */
    private ByteBuffer contiguous(int frame) {
        receive.position(0).limit(0);
        if (receive.capacity() < frame) {
            grow(frame);
        }
        inbound.copyTo(0, receiveSegment, 0, frame);
        receive.position(0).limit(frame);
        return receive;
    }

    /** Makes room for at least {@code n} more bytes after the limit: compacts, then grows. */
    private void ensureRoom(int n) {
        if (receive.capacity() - receive.limit() >= n) {
            return;
        }
        int unread = receive.remaining();
        if (receive.position() > 0) {
            MemorySegment.copy(receiveSegment, receive.position(), receiveSegment, 0, unread);
            receive.position(0).limit(unread);
        }
        if (receive.capacity() - receive.limit() < n) {
            grow(unread + n);
        }
    }

    private void grow(long needed) {
        long cap = receive.capacity();
        while (cap < needed) {
            cap *= 2;
        }
        cap = Math.min(cap, owner.config().maxFrameBytes());
        replaceReceiveBuffer(cap);
    }

    /** Moves the unread bytes into a new receive buffer of {@code bytes} and frees the old one. */
    private void replaceReceiveBuffer(long bytes) {
        Arena next = Arena.ofConfined();
        MemorySegment seg = next.allocate(bytes, 8);
        int unread = receive.remaining();
        MemorySegment.copy(receiveSegment, receive.position(), seg, 0, unread);
        receiveArena.close();
        receiveArena = next;
        receiveSegment = seg;
        receive = seg.asByteBuffer().order(ByteOrder.BIG_ENDIAN);
        receive.limit(unread);
    }

    private void cutFrames() {
        RaftCodec codec = owner.codec();
        while (state != State.CLOSED && receive.remaining() >= 8) {
            int frame;
            try {
                frame = codec.frameLength(receive);
            } catch (RaftCodecException e) {
                corrupt(e);
                return;
            }
            if (receive.remaining() < frame) {
                if (frame > receive.capacity()) {
                    int unread = receive.remaining();
                    MemorySegment.copy(receiveSegment, receive.position(), receiveSegment, 0, unread);
                    receive.position(0).limit(unread);
                    grow(frame);
                }
                return;
            }
            byte type = TransportFrames.peekType(receive);
            Object decoded;
            try {
                decoded = TransportFrames.isTransportType(type) ? TransportFrames.decode(receive, frame)
                    : codec.decode(receive);
            } catch (RaftCodecException e) {
                corrupt(e);
                return;
            }
            owner.metrics().framesReceived++;
            onFrame(decoded);
        }
        if (state != State.CLOSED && !receive.hasRemaining()) {
            receive.position(0).limit(0);
            if (receive.capacity() > 4 * INITIAL_RECEIVE_BYTES) {
                replaceReceiveBuffer(INITIAL_RECEIVE_BYTES);
            }
        }
    }

    private void corrupt(RaftCodecException e) {
        owner.metrics().corruptFrames++;
        close("bad frame from " + describePeer() + ": " + e.getMessage());
    }

    private void onFrame(Object f) {
        if (state == State.HANDSHAKE) {
            if (!(f instanceof TransportFrames.Hello h)) {
                ShardTransport.unhold(f); // a decoded AppendRequest's batches may be in the arena
                owner.metrics().handshakeFailures++;
                close("first frame from " + tcp.remoteAddress() + " is " + f.getClass().getSimpleName() + ", not a hello");
                return;
            }
            owner.onHello(this, h);
            return;
        }
        switch (f) {
            case TransportFrames.Hello h -> close("second hello from " + describePeer());
            case TransportFrames.Ping p -> {
            }
            case RpcMessage r -> owner.onRpcFrame(this, r);
            case RaftMessage m -> owner.onRaftFrame(this, m);
            default -> close("unexpected frame " + f);
        }
    }

    String describePeer() {
        return peer >= 0 ? "node " + peer : String.valueOf(tcp.remoteAddress());
    }

    @Override
    public void onClosed(TcpConnection connection, int result) {
        close(result == 0 ? "closed by " + describePeer() : "connection to " + describePeer() + " failed: "
            + Errno.describe(-result));
    }

    /** Closes the socket (idempotent); queued messages are dropped; the owner learns of it once. */
    void close(String reason) {
        if (state == State.CLOSED) {
            return;
        }
        State was = state;
        state = State.CLOSED;
        closeReason = reason;
        for (Object f : queue) {
            ShardTransport.unhold(f);
        }
        queue.clear();
        queueSizes.clear();
        queuedBytes = 0;
        tcp.close();
        if (!sending) {
            free();
        }
        owner.onConnectionClosed(this, was, reason);
    }

    private void free() {
        if (!freed) {
            freed = true;
            releaseBig();
            arena.close();
            receiveArena.close();
            if (inbound != null) {
                inbound.release(); // batches decoded from it keep their own references
                inbound = null;
            }
        }
    }

    @Override
    public String toString() {
        return "PeerConnection[" + describePeer() + ", " + state + (dialed ? ", dialed" : ", accepted") + ", queued "
            + queuedBytes + " B]";
    }
}
