package dev.isthmus.gateway;

import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.gateway.protocol.ByteSlice;
import dev.isthmus.gateway.protocol.IoBufProtocolReader;
import dev.isthmus.gateway.protocol.IoBufProtocolWriter;
import dev.isthmus.gateway.protocol.IoBufSlice;
import dev.isthmus.gateway.protocol.ProtocolException;
import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.ProtocolReader;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.ProduceRequestData;
import dev.isthmus.gateway.protocol.message.RequestHeaderData;
import dev.isthmus.gateway.protocol.message.ResponseHeaderData;
import dev.isthmus.uring.TcpConnection;
import dev.isthmus.uring.shard.Promise;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One client connection on the shard that accepted it. Owner: that shard's thread; every method and callback
 * runs there. Bytes are copied from the engine's receive buffers into an arena chain (NETWORK_RECEIVE budget),
 * cut into size-prefixed frames without linearising them, decoded with the generated codecs, and handled
 * concurrently: many requests may be in flight (pipelining, technique 7), and their responses leave strictly
 * in request order.
 *
 * <h2>Limits</h2>
 * <ul>
 *   <li><b>Request size</b> ({@link BrokerConfig#maxRequestBytes()}): a frame length above it, or below the
 *       smallest possible request header (negative and garbage lengths included), closes the connection with
 *       a logged sentence; nothing of the frame is buffered first.</li>
 *   <li><b>Connections</b> ({@link BrokerConfig#maxConnections()}): counted per broker across all shards; a
 *       connection beyond the limit is closed as soon as it is accepted, before any byte is read.</li>
 *   <li><b>Buffered bytes</b> ({@link BrokerConfig#maxConnectionBufferedBytes()}), as Kafka and Redpanda do it:
 *       by TCP back-pressure, never by closing. <em>Pending</em> bytes are those of parsed requests whose
 *       handlers still run plus responses not yet sent; <em>buffered</em> bytes are pending bytes plus received
 *       bytes not parsed yet. Once pending bytes reach the bound (or {@link #MAX_IN_FLIGHT} requests are
 *       pending) no further request is taken; once buffered bytes reach it the connection stops reading
 *       ({@link TcpConnection#suspendReceive()}): the kernel's receive queue fills, the window closes and the
 *       client's sends block. Taking and reading resume as responses leave; reading once buffered bytes are
 *       below three quarters of the bound (hysteresis: a client that is not reading does not make the
 *       connection flap at every response), or as soon as nothing is pending at all, so a request as large as
 *       the bound can always be completed. A connection thus holds at most the bound, plus the last request
 *       taken and its response, plus what the engine had already taken from the socket when it was told to stop
 *       (at most the shard's provided receive buffers, 4 MiB; ~1.5 MiB measured right after a resume against a
 *       client writing flat out, a few hundred KiB otherwise).</li>
 * </ul>
 * Malformed requests (a decoding {@link ProtocolException}, an unknown API key, an unsupported version other
 * than ApiVersions') close the connection; ApiVersions at an unknown version is answered in v0 with
 * UNSUPPORTED_VERSION as Kafka does. A request that fails to decode half way releases the zero-copy slices
 * it had taken; a handled request's slices are released when its handler completes.
 */
final class Connection implements TcpConnection.ReceiveHandler {
    private static final System.Logger LOG = System.getLogger(Connection.class.getName());
    private static final int MAX_PARTS = 64;
    /** Requests parsed and not yet answered, per connection, whatever their size. */
    static final int MAX_IN_FLIGHT = 1024;
    /** api key (2) + api version (2) + correlation id (4): no request is shorter. */
    private static final int MIN_FRAME_BYTES = 8;

    /** Per-broker counters shared by the shards: open connections and refusals. */
    private static final class Limits {
        final AtomicInteger open = new AtomicInteger();
        final AtomicLong refused = new AtomicLong();
        /** The most bytes one connection held in running requests plus unsent responses: the limit at work. */
        final AtomicLong bufferedHighWater = new AtomicLong();
        /** The most bytes one connection held in all: pending bytes plus received bytes not parsed yet. */
        final AtomicLong heldHighWater = new AtomicLong();
        /** Times a connection stopped reading because its buffered bytes reached the bound. */
        final AtomicLong receiveSuspensions = new AtomicLong();
        /** Connections not reading right now (suspended for the bound). */
        final AtomicInteger receiveSuspended = new AtomicInteger();
        /** Requests taken whose handlers have not completed, over all connections (open or closed). */
        final AtomicLong pending = new AtomicLong();
    }

    /** Weak keys: a closed broker's counters go with it. Touched once per accept. */
    private static final Map<Broker, Limits> LIMITS = Collections.synchronizedMap(new WeakHashMap<>());

    private static Limits limitsOf(Broker b) {
        return LIMITS.computeIfAbsent(b, k -> new Limits());
    }

    /** Any thread: connections currently counted against {@link BrokerConfig#maxConnections()}. */
    static int openConnections(Broker b) {
        return limitsOf(b).open.get();
    }

    /** Any thread: connections refused so far because the broker was at {@link BrokerConfig#maxConnections()}. */
    static long refusedConnections(Broker b) {
        return limitsOf(b).refused.get();
    }

    /** Any thread: the most bytes one connection of this broker has held in pending requests and responses. */
    static long bufferedHighWaterBytes(Broker b) {
        return limitsOf(b).bufferedHighWater.get();
    }

    /**
     * Any thread: the most bytes one connection of this broker has held in pending requests and responses plus
     * received bytes not parsed yet (the bound at work, with what was in flight when reading stopped).
     */
    static long heldHighWaterBytes(Broker b) {
        return limitsOf(b).heldHighWater.get();
    }

    /** Any thread: times a connection of this broker stopped reading because it held the bound. */
    static long receiveSuspensions(Broker b) {
        return limitsOf(b).receiveSuspensions.get();
    }

    /** Any thread: connections of this broker not reading right now because they hold the bound. */
    static int receiveSuspendedConnections(Broker b) {
        return limitsOf(b).receiveSuspended.get();
    }

    /**
     * Any thread: requests whose handlers still run, on any connection (a closed connection's included). Zero
     * with no connection open means the broker has no client work left (tests wait for it before closing).
     */
    static long pendingRequests(Broker b) {
        return limitsOf(b).pending.get();
    }

    /** A request in flight: its response, once ready, waits here for its turn. */
    private static final class Slot {
        final int correlationId;
        final ApiKeys api;
        final short version;
        final boolean noResponse;
        final int requestBytes;
        final List<IoBufSlice> slices;
        IoBuf response;
        boolean done;

        Slot(int correlationId, ApiKeys api, short version, boolean noResponse, int requestBytes,
             List<IoBufSlice> slices) {
            this.correlationId = correlationId;
            this.api = api;
            this.version = version;
            this.noResponse = noResponse;
            this.requestBytes = requestBytes;
            this.slices = slices;
        }
    }

    /**
     * The decoder's reader: an {@link IoBufProtocolReader} that remembers the zero-copy slices it hands out,
     * so a request that fails to decode half way, or whose handler is done, gives them back.
     */
    private static final class SliceTrackingReader implements ProtocolReader {
        private final IoBufProtocolReader in;
        List<IoBufSlice> slices;

        SliceTrackingReader(IoBufProtocolReader in) {
            this.in = in;
        }

        @Override
        public byte readByte() {
            return in.readByte();
        }

        @Override
        public short readShort() {
            return in.readShort();
        }

        @Override
        public int readInt() {
            return in.readInt();
        }

        @Override
        public long readLong() {
            return in.readLong();
        }

        @Override
        public int readUnsignedVarint() {
            return in.readUnsignedVarint();
        }

        @Override
        public String readUtf8(int length) {
            checkLength(length);
            return in.readUtf8(length);
        }

        @Override
        public ByteSlice readSlice(int length) {
            checkLength(length);
            ByteSlice s = in.readSlice(length);
            if (s instanceof IoBufSlice io) {
                if (slices == null) {
                    slices = new ArrayList<>(2);
                }
                slices.add(io);
            }
            return s;
        }

        @Override
        public byte[] readBytes(int length) {
            checkLength(length);
            return in.readBytes(length);
        }

        @Override
        public int remaining() {
            return in.remaining();
        }

        private static void checkLength(int length) {
            if (length < 0) {
                throw new ProtocolException("negative length " + length);
            }
        }

        void releaseAll() {
            release(slices);
            slices = null;
        }
    }

    private final Broker broker;
    private final ShardState state;
    private final TcpConnection socket;
    private final IoBuf inbound;
    private final ArrayDeque<Slot> inFlight = new ArrayDeque<>();
    private final MemorySegment[] parts = new MemorySegment[MAX_PARTS];
    private final int maxRequestBytes;
    private final long maxBufferedBytes;
    private final Limits limits;
    /** Request bytes of unfinished handlers plus response bytes not yet sent (the one being sent included). */
    private long inFlightBytes;
    private long inFlightHighWaterBytes;
    private long heldHighWaterBytes;
    /** Reading is suspended because buffered bytes reached the bound. */
    private boolean receiveSuspended;
    private IoBuf sending;
    private long sendingBytes;
    private int sendingFrom;
    private boolean parsing;
    private boolean counted;
    private String clientHost;
    private boolean closed;
    /** Hooks of running requests that wait for an event (parked fetches), run once if this connection closes. */
    private ArrayList<Runnable> closeHooks;

    Connection(Broker broker, ShardState state, TcpConnection socket) {
        this.broker = broker;
        this.state = state;
        this.socket = socket;
        this.maxRequestBytes = broker.config().maxRequestBytes();
        this.maxBufferedBytes = broker.config().maxConnectionBufferedBytes();
        this.limits = limitsOf(broker);
        this.inbound = IoBuf.empty(state.arena, Subsystem.NETWORK_RECEIVE);
    }

    /** Counts the connection against the broker's limit and starts receiving, or closes it when over the limit. */
    void start() {
        int max = broker.config().maxConnections();
        if (limits.open.incrementAndGet() > max) {
            limits.open.decrementAndGet();
            long n = limits.refused.incrementAndGet();
            if (Long.bitCount(n) == 1) { // 1, 2, 4, 8...: a storm of refusals does not flood the log
                LOG.log(System.Logger.Level.WARNING, "refusing connection from " + socket.remoteAddress() + ": "
                    + max + " connections are open, the limit (max connections); " + n + " refused so far");
            }
            close();
            return;
        }
        counted = true;
        socket.startReceiving(this);
    }

    @Override
    public void onReceive(TcpConnection connection, MemorySegment memory, long offset, int length, int bufferId) {
        try {
            if (!closed) {
                // Also while suspended: these bytes were taken from the socket before the suspension landed.
                inbound.append(memory, offset, length);
                noteHeld();
            }
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "closing " + socket.remoteAddress() + ": " + e.getMessage());
            close();
        } finally {
            socket.releaseBuffer(bufferId);
        }
        parseFrames();
    }

    @Override
    public void onClosed(TcpConnection connection, int result) {
        close();
    }

    /**
     * Takes every complete frame the limits allow. Not re-entrant: a handler that completes at once calls
     * back into {@link #complete} and from there here; the outer loop carries on instead of recursing (a long
     * pipeline of instantly answered requests must not grow the stack).
     */
    private void parseFrames() {
        if (parsing || closed) {
            return;
        }
        parsing = true;
        try {
            while (!closed && inbound.size() >= 4) {
                if (!inFlight.isEmpty() && (inFlight.size() >= MAX_IN_FLIGHT || inFlightBytes >= maxBufferedBytes)) {
                    break; // taken again from complete() / the send completion as responses leave
                }
                int size = inbound.getInt(0);
                if (size < MIN_FRAME_BYTES || size > maxRequestBytes) {
                    LOG.log(System.Logger.Level.WARNING, "closing " + socket.remoteAddress() + ": " + badLength(size));
                    close();
                    return;
                }
                if (inbound.size() < 4L + size) {
                    break;
                }
                IoBuf frame = inbound.share(4, size);
                inbound.trimFront(4L + size);
                try {
                    handleFrame(frame, 4 + size);
                } catch (ProtocolException | IndexOutOfBoundsException e) {
                    LOG.log(System.Logger.Level.WARNING, "closing " + socket.remoteAddress() + ": malformed request: "
                        + e.getMessage());
                    close();
                } catch (RuntimeException e) {
                    LOG.log(System.Logger.Level.ERROR, "closing " + socket.remoteAddress()
                        + ": a request could not be decoded (a broker bug: decoding errors must be ProtocolException)",
                        e);
                    close();
                } finally {
                    frame.release();
                }
            }
            if (!closed) {
                updateReceive();
            }
        } finally {
            parsing = false;
        }
    }

    /**
     * Stops reading once buffered bytes (pending plus unparsed) reach the bound, and reads again once they are
     * below three quarters of it, or once nothing is pending: then the unparsed bytes cannot make up a whole
     * frame (it would have been taken), and reading must go on for the request to complete. Called at the end
     * of every {@link #parseFrames()}, which runs after each receive, each handler completion and each send.
     */
    private void updateReceive() {
        long buffered = inFlightBytes + inbound.size();
        boolean nothingPending = inFlight.isEmpty() && sending == null;
        if (!receiveSuspended) {
            if (buffered >= maxBufferedBytes && !nothingPending) {
                receiveSuspended = true;
                limits.receiveSuspensions.incrementAndGet();
                limits.receiveSuspended.incrementAndGet();
                socket.suspendReceive();
            }
        } else if (nothingPending || buffered < maxBufferedBytes - maxBufferedBytes / 4) {
            receiveSuspended = false;
            limits.receiveSuspended.decrementAndGet();
            socket.resumeReceive();
        }
    }

    /** One sentence for a frame length out of bounds, with a hint when the bytes look like another protocol. */
    private String badLength(int size) {
        StringBuilder sb = new StringBuilder("request frame length ").append(size);
        if (size > maxRequestBytes) {
            sb.append(" is above the maximum request size ").append(maxRequestBytes);
        } else {
            sb.append(" is below the smallest request (").append(MIN_FRAME_BYTES).append(" bytes)");
        }
        int b0 = (size >>> 24) & 0xff;
        int b1 = (size >>> 16) & 0xff;
        if (b0 == 0x16 && b1 == 0x03) {
            sb.append(" (a TLS handshake? this listener speaks plaintext Kafka)");
        } else if (isAsciiWord(size)) {
            sb.append(" (text such as an HTTP request? this listener speaks the Kafka protocol)");
        }
        return sb.toString();
    }

    private static boolean isAsciiWord(int v) {
        for (int shift = 24; shift >= 0; shift -= 8) {
            int c = (v >>> shift) & 0xff;
            if (c < 0x20 || c > 0x7e) {
                return false;
            }
        }
        return true;
    }

    private void handleFrame(IoBuf frame, int frameBytes) {
        short apiKey = frame.getShort(0);
        short version = frame.getShort(2);
        ApiKeys api = ApiKeys.forId(apiKey);
        if (api == null || !broker.handlers().supports(api)) {
            throw new ProtocolException("unsupported API key " + apiKey);
        }
        SliceTrackingReader r = new SliceTrackingReader(new IoBufProtocolReader(frame));
        RequestHeaderData header = new RequestHeaderData();
        boolean versionOk = version >= broker.handlers().lowest(api) && version <= broker.handlers().highest(api);
        ProtocolMessage request;
        try {
            header.read(r, api.requestHeaderVersion(versionOk ? version : api.lowestVersion));
            if (!versionOk) {
                if (api == ApiKeys.API_VERSIONS) {
                    // Answer with our ranges in v0 so the client can pick a version.
                    r.releaseAll();
                    Slot slot = new Slot(header.correlationId, api, (short) 0, false, frameBytes, null);
                    admit(slot);
                    complete(slot, broker.handlers().apiVersions(ErrorCodes.UNSUPPORTED_VERSION));
                    return;
                }
                throw new ProtocolException(api + " version " + version + " is not supported");
            }
            request = api.newRequest();
            request.read(r, version);
        } catch (RuntimeException e) {
            r.releaseAll();
            throw e;
        }
        boolean noResponse = api == ApiKeys.PRODUCE && ((ProduceRequestData) request).acks == 0;
        Slot slot = new Slot(header.correlationId, api, version, noResponse, frameBytes, r.slices);
        admit(slot);
        Promise<ProtocolMessage> response;
        try {
            response = broker.handlers().handle(state, api, version, request, header, clientHost(), this);
        } catch (RuntimeException e) {
            response = Promise.failed(e);
        }
        response.whenComplete((msg, failure) -> {
            if (failure != null) {
                // The request's slices stay with whatever the handler started: freeing them could pull memory
                // from under work still running on another shard.
                LOG.log(System.Logger.Level.ERROR, "handling " + api + " v" + version + " failed; closing the connection", failure);
                inFlightBytes -= slot.requestBytes;
                limits.pending.decrementAndGet();
                close();
                return;
            }
            complete(slot, msg);
        });
    }

    private void admit(Slot slot) {
        inFlight.addLast(slot);
        limits.pending.incrementAndGet();
        grow(slot.requestBytes);
    }

    private void grow(long bytes) {
        inFlightBytes += bytes;
        if (inFlightBytes > inFlightHighWaterBytes) {
            inFlightHighWaterBytes = inFlightBytes;
            limits.bufferedHighWater.accumulateAndGet(inFlightBytes, Math::max);
        }
        noteHeld();
    }

    /** Tracks the most this connection held: pending bytes plus received bytes not parsed yet. */
    private void noteHeld() {
        long held = inFlightBytes + inbound.size();
        if (held > heldHighWaterBytes) {
            heldHighWaterBytes = held;
            limits.heldHighWater.accumulateAndGet(held, Math::max);
        }
    }

    private void complete(Slot slot, ProtocolMessage body) {
        release(slot.slices); // the handler is done with the request (idempotent: handlers may have released)
        inFlightBytes -= slot.requestBytes;
        limits.pending.decrementAndGet();
        if (closed) {
            Broker.releaseSlices(body);
            return;
        }
        if (!slot.noResponse) {
            IoBuf out = IoBuf.empty(state.arena, Subsystem.OTHER);
            try {
                long sizeAt = out.reserve(4);
                IoBufProtocolWriter w = new IoBufProtocolWriter(out);
                ResponseHeaderData h = new ResponseHeaderData();
                h.correlationId = slot.correlationId;
                h.write(w, slot.api.responseHeaderVersion(slot.version));
                body.write(w, slot.version);
                out.setInt(sizeAt, (int) (out.size() - 4));
            } catch (RuntimeException e) {
                out.release();
                LOG.log(System.Logger.Level.ERROR, "encoding " + slot.api + " v" + slot.version + " failed", e);
                close();
                return;
            } finally {
                Broker.releaseSlices(body);
            }
            slot.response = out;
            grow(out.size());
        } else {
            Broker.releaseSlices(body);
        }
        slot.done = true;
        flush();
        parseFrames();
    }

    /** Sends finished responses at the head of the pipeline, in order, one send at a time. */
    private void flush() {
        while (!closed && sending == null) {
            Slot head = inFlight.peekFirst();
            if (head == null || !head.done) {
                return;
            }
            inFlight.pollFirst();
            if (head.response == null) {
                continue;
            }
            sending = head.response;
            sendingBytes = sending.size();
            sendingFrom = 0;
            sendNext();
        }
    }

    private void sendNext() {
        int n = Math.min(MAX_PARTS, sending.fragmentCount() - sendingFrom);
        for (int i = 0; i < n; i++) {
            parts[i] = sending.fragment(sendingFrom + i);
        }
        sendingFrom += n;
        long id = socket.send(parts, n, (res, flags, att) -> {
            if (closed || res < 0) {
                sent();
                close();
                return;
            }
            if (sending != null && sendingFrom < sending.fragmentCount()) {
                sendNext();
                return;
            }
            sent();
            flush();
            parseFrames(); // the bytes just sent may let a throttled connection take requests again
        }, 0);
        if (id < 0) {
            sent();
            close();
        }
    }

    /** The response being sent is no longer read by the kernel: free it. */
    private void sent() {
        if (sending != null) {
            sending.release();
            sending = null;
            inFlightBytes -= sendingBytes;
            sendingBytes = 0;
        }
    }

    private static void release(List<IoBufSlice> slices) {
        if (slices != null) {
            for (int i = 0; i < slices.size(); i++) {
                slices.get(i).close();
            }
        }
    }

    /** The client's address as Kafka shows it in DescribeGroups ("/127.0.0.1"). */
    /** The client's address as Kafka shows it ("/127.0.0.1"), made once per connection. */
    private String clientHost() {
        if (clientHost == null) {
            java.net.InetSocketAddress a = socket.remoteAddress();
            clientHost = a == null ? "" : "/" + a.getAddress().getHostAddress();
        }
        return clientHost;
    }

    /**
     * Owner shard: runs {@code hook} once when this connection closes, unless {@link #removeOnClose} removed it
     * first. A request that waits for an event (a long-polling Fetch) registers, so its waiting and what it holds
     * end with the connection. Returns false, registering nothing, when the connection is already closed.
     */
    boolean onClose(Runnable hook) {
        if (closed) {
            return false;
        }
        if (closeHooks == null) {
            closeHooks = new ArrayList<>(2);
        }
        closeHooks.add(hook);
        return true;
    }

    /** Owner shard: forgets a hook added by {@link #onClose} (its request completed). */
    void removeOnClose(Runnable hook) {
        if (closeHooks != null) {
            closeHooks.remove(hook);
        }
    }

    void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (closeHooks != null) {
            ArrayList<Runnable> hooks = closeHooks;
            closeHooks = null;
            for (int i = 0; i < hooks.size(); i++) {
                hooks.get(i).run();
            }
        }
        if (receiveSuspended) {
            receiveSuspended = false;
            limits.receiveSuspended.decrementAndGet();
        }
        broker.connectionClosed(state, this);
        for (Slot s : inFlight) {
            if (s.response != null) {
                s.response.release();
            }
            // Slices of requests whose handlers still run are released when those complete.
        }
        inFlight.clear();
        // A response being sent is released by its send completion, once the kernel no longer reads it.
        inbound.release();
        socket.close();
        if (counted) {
            // Last: another thread that sees the count drop also sees this connection's receive memory freed.
            limits.open.decrementAndGet();
        }
    }
}
