package dev.isthmus.gateway;

import dev.isthmus.arena.ArenaExhaustedException;
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
import dev.isthmus.gateway.protocol.message.FetchRequestData;
import dev.isthmus.gateway.protocol.message.ProduceRequestData;
import dev.isthmus.gateway.protocol.message.RequestHeaderData;
import dev.isthmus.gateway.protocol.message.SaslAuthenticateRequestData;
import dev.isthmus.gateway.protocol.message.SaslAuthenticateResponseData;
import dev.isthmus.gateway.protocol.message.SaslHandshakeRequestData;
import dev.isthmus.gateway.protocol.message.SaslHandshakeResponseData;
import dev.isthmus.gateway.security.KafkaPrincipal;
import dev.isthmus.gateway.security.ListenerConfig;
import dev.isthmus.gateway.security.SaslServerExchange;
import dev.isthmus.gateway.security.SecurityProtocol;
import dev.isthmus.gateway.protocol.message.ResponseHeaderData;
import dev.isthmus.uring.TcpConnection;
import dev.isthmus.uring.shard.Promise;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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
 *   <li><b>Receive memory</b> ({@link ReceiveMemory}): a frame is read only once the shard granted memory for
 *       all of it, within the connection's fair share ({@link BrokerConfig#connectionReceiveSharePercent()});
 *       until then the connection is not read from (back-pressure). A connection whose requests that still run
 *       hold more than its share is not read from either, until they are done. A frame must be completed within
 *       {@link BrokerConfig#requestReceiveTimeoutMs()} of its first byte, time stopped by the broker not
 *       counted, or the connection is closed. Should the arena still refuse memory, the bytes the engine had
 *       already taken wait on the heap and the connection stops reading until memory comes back: a client is
 *       never disconnected for the broker's lack of memory.</li>
 *   <li><b>Buffered bytes</b> ({@link BrokerConfig#maxConnectionBufferedBytes()}), as Kafka and Redpanda do it:
 *       by TCP back-pressure, never by closing. <em>Pending</em> bytes are those of parsed requests whose
 *       handlers still run, what those requests may produce (a Fetch: its max_bytes) until their responses
 *       exist, and responses not yet sent; <em>buffered</em> bytes are pending bytes plus received bytes not
 *       parsed yet. A request is started only if its pending bytes fit under the bound, or nothing else is
 *       pending (so a request as large as the bound can always be served); a request that does not fit waits,
 *       decoded, and no later one is taken ({@link #MAX_IN_FLIGHT} requests pending also stop taking). Once the
 *       bytes held (pending bytes less what started requests may still produce, plus unparsed bytes) reach the
 *       bound, the connection stops reading ({@link TcpConnection#suspendReceive()}): the kernel's receive queue
 *       fills, the window closes and the client's sends block. (Reading on until then lets a connection whose
 *       requests wait see its client go away.) Taking and reading resume as responses leave; reading once buffered bytes are
 *       below three quarters of the bound (hysteresis: a client that is not reading does not make the
 *       connection flap at every response), or as soon as nothing is pending at all. A connection thus holds
 *       at most the bound, plus the last request taken and its response, plus what the engine had already taken
 *       from the socket when it was told to stop (at most the shard's provided receive buffers, 4 MiB; ~1.5 MiB
 *       measured right after a resume against a client writing flat out, a few hundred KiB otherwise).</li>
 * </ul>
 * Malformed requests (a decoding {@link ProtocolException}, an unknown API key, an unsupported version other
 * than ApiVersions') close the connection; ApiVersions at an unknown version is answered in v0 with
 * UNSUPPORTED_VERSION as Kafka does. A request that fails to decode half way releases the zero-copy slices
 * it had taken; a handled request's slices are released when its handler completes. Every close for a client's
 * misbehaviour is logged through {@link ConnectionWarnings} (rate-limited per reason, counted in the metrics).
 *
 * <h2>Closing</h2>
 * Closing releases at once what the connection holds: received bytes, heap-parked bytes, responses waiting
 * for their turn, a decoded request not started. A response being sent is freed by its send completion, and
 * requests whose handlers still run keep their slices (and their charge in {@link ReceiveMemory}) until those
 * handlers complete, when their responses are dropped.
 */
final class Connection implements TcpConnection.ReceiveHandler {
    private static final int MAX_PARTS = 64;
    /** Requests parsed and not yet answered, per connection, whatever their size. */
    static final int MAX_IN_FLIGHT = 1024;
    /** api key (2) + api version (2) + correlation id (4): no request is shorter. */
    private static final int MIN_FRAME_BYTES = 8;
    // Why reading is suspended (bits of suspendReasons).
    /** Pending or buffered bytes at the bound, or a whole frame that cannot be taken yet. */
    private static final int BOUND = 1;
    /** Waiting for a receive memory grant for the frame being received. */
    private static final int GRANT = 2;
    /** The arena refused memory; received bytes wait on the heap. */
    private static final int MEMORY = 4;
    /** The connection holds more than its share of the shard's receive memory in requests that still run. */
    private static final int SHARE = 8;
    /** Reasons that stop the frame deadline's clock: the wait is the broker's doing. */
    private static final int PAUSING = BOUND | GRANT | SHARE;

    /** Per-broker counters shared by the shards: open connections and refusals. */
    private static final class Limits {
        final AtomicInteger open = new AtomicInteger();
        final AtomicLong refused = new AtomicLong();
        /** The most bytes one connection held in running requests plus unsent responses: the limit at work. */
        final AtomicLong bufferedHighWater = new AtomicLong();
        /** The most bytes one connection held in all: pending bytes plus received bytes not parsed yet. */
        final AtomicLong heldHighWater = new AtomicLong();
        /** The most requests one connection had started and not answered at once. */
        final AtomicLong startedHighWater = new AtomicLong();
        /** Times a connection stopped reading because its buffered bytes reached the bound. */
        final AtomicLong receiveSuspensions = new AtomicLong();
        /** Connections not reading right now (suspended for the bound). */
        final AtomicInteger receiveSuspended = new AtomicInteger();
        /** Requests taken whose handlers have not completed, over all connections (open or closed). */
        final AtomicLong pending = new AtomicLong();
        /** Rate-limited, counted warnings about connections. */
        final ConnectionWarnings warnings = new ConnectionWarnings();
        /** SASL authentications that succeeded: first ones, and re-authentications (KIP-368). */
        final AtomicLong authentications = new AtomicLong();
        final AtomicLong reauthentications = new AtomicLong();
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

    /** Any thread: the most requests one connection of this broker had started and not yet answered at once. */
    static long startedHighWater(Broker b) {
        return limitsOf(b).startedHighWater.get();
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

    /** Any thread: SASL authentications of this broker's connections that succeeded, {first, re-authentications}. */
    static long[] authentications(Broker b) {
        Limits l = limitsOf(b);
        return new long[] {l.authentications.get(), l.reauthentications.get()};
    }

    /** Any thread: the broker's rate-limited, counted warnings about connections. */
    static ConnectionWarnings warnings(Broker b) {
        return limitsOf(b).warnings;
    }

    /** A request in flight: its response, once ready, waits here for its turn. */
    private static final class Slot {
        final int correlationId;
        final ApiKeys api;
        final short version;
        final boolean noResponse;
        final int requestBytes;
        final List<IoBufSlice> slices;
        /** A decoded request not started yet (it waits for room under the bound); null once started. */
        ProtocolMessage request;
        RequestHeaderData header;
        /** A bare SASL token's answer (SaslHandshake v0): the response is the size and the token, no header. */
        boolean raw;
        /** What the request may produce, counted against the bound until its response exists. */
        long reservedBytes;
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
    private final ReceiveMemory memory;
    private final long receiveTimeoutNs;
    /**
     * Request bytes of unfinished handlers, what started requests may still produce, and response bytes not yet
     * sent (the one being sent included): the pending bytes held against the bound.
     */
    private long inFlightBytes;
    /** The part of {@link #inFlightBytes} that started requests may still produce (their responses do not exist). */
    private long reservedBytes;
    private long inFlightHighWaterBytes;
    private long heldHighWaterBytes;
    /** Request bytes of requests whose handlers have not completed (receive memory they pin). */
    private long pendingRequestBytes;
    /** Requests started and not answered (the deferred one not included). */
    private int started;
    private int startedHighWater;
    /** The request decoded and admitted but not started because it does not fit under the bound; or null. */
    private Slot deferred;
    /** What this connection is charged in {@link #memory}. */
    private long charged;
    /** 4 + size of the head frame once granted (while it is incomplete), else 0. */
    private long headGrantEnd;
    /** The size of the frame waiting for a grant (4 + length), or 0. */
    private long waitingFrameBytes;
    /** When the connection began to wait for receive memory (GRANT or MEMORY); 0 while it does not. */
    private long waitingSinceNs;
    /** When the first byte of the frame being received arrived; 0 when no frame is started. */
    private long frameStartNs;
    /** When a suspension that stops the frame clock began; 0 when the clock runs. */
    private long pausedAtNs;
    /** Why reading is suspended: BOUND, GRANT, MEMORY bits; 0 while reading. */
    private int suspendReasons;
    /** Bytes the engine delivered that the arena had no memory for, in order; null when none. */
    private ArrayDeque<byte[]> parked;
    private IoBuf sending;
    private long sendingBytes;
    private int sendingFrom;
    private boolean parsing;
    private boolean counted;
    private String clientHost;
    private boolean closed;
    /** Hooks of running requests that wait for an event (parked fetches), run once if this connection closes. */
    private ArrayList<Runnable> closeHooks;

    // ---------------------------------------------------------------- security
    /** The listener this connection came in on (its name picks the addresses Metadata answers with). */
    private final ListenerConfig listener;
    /** TLS over the socket on SSL and SASL_SSL listeners; null on the others. */
    private final TlsChannel tls;
    /** Who this connection acts for; ANONYMOUS until authenticated (or on a listener without authentication). */
    private KafkaPrincipal principal = KafkaPrincipal.ANONYMOUS;
    private SaslState saslState;
    /** The SASL exchange under way (first authentication or re-authentication), or null. */
    private SaslServerExchange exchange;
    /** The mechanism of the first successful authentication (re-authentication must use the same). */
    private String saslMechanism;
    /** When the authenticated session ends (KIP-368), System.nanoTime(); 0 = never. */
    private long sessionExpiryNs;
    /** A SaslHandshake arrived on an authenticated connection: the exchange that follows re-authenticates. */
    private boolean reauthenticating;
    /**
     * After a SaslHandshake v0 (KIP-43): the SASL tokens come as bare size-prefixed frames, no Kafka header, and are
     * answered the same way, until the exchange ends.
     */
    private boolean rawTokens;

    /** Where a SASL listener's connection stands. */
    private enum SaslState {
        /** Only ApiVersions and SaslHandshake may come. */
        HANDSHAKE,
        /** A mechanism was chosen: SaslAuthenticate tokens come. */
        AUTHENTICATE,
        /** Authenticated: every request is served (and SaslHandshake starts a re-authentication). */
        AUTHENTICATED,
        /** Authentication failed: the connection closes after the failure's response. */
        FAILED
    }

    Connection(Broker broker, ShardState state, TcpConnection socket, ListenerConfig listener) {
        this.broker = broker;
        this.state = state;
        this.socket = socket;
        this.listener = listener;
        this.saslState = listener.protocol().sasl() ? SaslState.HANDSHAKE : SaslState.AUTHENTICATED;
        this.tls = listener.protocol().tls() ? newTls() : null;
        this.maxRequestBytes = broker.config().maxRequestBytes();
        this.maxBufferedBytes = broker.config().maxConnectionBufferedBytes();
        this.limits = limitsOf(broker);
        this.memory = broker.receiveMemory(state.shard.id());
        this.receiveTimeoutNs = memory.timeoutNs();
        this.inbound = IoBuf.empty(state.arena, Subsystem.NETWORK_RECEIVE);
    }

    /** Counts the connection against the broker's limit and starts receiving, or closes it when over the limit. */
    void start() {
        int max = broker.config().maxConnections();
        if (limits.open.incrementAndGet() > max) {
            limits.open.decrementAndGet();
            long n = limits.refused.incrementAndGet();
            limits.warnings.warn(ConnectionWarnings.Reason.CONNECTION_LIMIT, "refusing connection from "
                + socket.remoteAddress() + ": " + max + " connections are open, the limit (max connections); " + n
                + " refused so far");
            close();
            return;
        }
        counted = true;
        memory.register(this);
        if (tls != null) {
            try {
                tls.start();
            } catch (javax.net.ssl.SSLException e) {
                warn(ConnectionWarnings.Reason.TLS_FAILED, "closing " + socket.remoteAddress() + ": TLS cannot start: "
                    + e.getMessage());
                close();
                return;
            }
        }
        socket.startReceiving(this);
    }

    private TlsChannel newTls() {
        javax.net.ssl.SSLEngine engine = broker.tls().newServerEngine();
        return new TlsChannel(engine, socket, state.arena, state.shard, broker.securityWorkers(),
            new TlsChannel.Sink() {
                @Override
                public void plaintext(MemorySegment data, long offset, int length) {
                    receivePlaintext(data, offset, length);
                }

                @Override
                public void deliveredLater() {
                    parseFrames();
                }

                @Override
                public void handshakeDone(javax.net.ssl.SSLEngine e) {
                    tlsHandshakeDone(e);
                }

                @Override
                public void failed(String why) {
                    if (why != null) {
                        warn(ConnectionWarnings.Reason.TLS_FAILED, "closing " + socket.remoteAddress() + ": " + why);
                    }
                    close();
                }
            });
    }

    /**
     * The TLS handshake finished: on an SSL listener the principal is the client certificate's subject DN through
     * {@code ssl.principal.mapping.rules} (ANONYMOUS without a certificate); on SASL_SSL it comes from SASL.
     */
    private void tlsHandshakeDone(javax.net.ssl.SSLEngine e) {
        if (listener.protocol().sasl()) {
            return;
        }
        java.security.cert.Certificate[] peer;
        try {
            peer = e.getSession().getPeerCertificates();
        } catch (javax.net.ssl.SSLPeerUnverifiedException x) {
            return; // no client certificate: User:ANONYMOUS
        }
        if (peer.length == 0 || !(peer[0] instanceof java.security.cert.X509Certificate x509)) {
            return;
        }
        String dn = x509.getSubjectX500Principal().getName(javax.security.auth.x500.X500Principal.RFC2253);
        String name = broker.tls().principalMapper().name(dn);
        if (name == null) {
            warn(ConnectionWarnings.Reason.AUTHENTICATION_FAILED, "closing " + socket.remoteAddress() + ": no"
                + " ssl.principal.mapping.rules rule applies to the client certificate's DN " + dn);
            close();
            return;
        }
        principal = KafkaPrincipal.user(name);
    }

    /** Who this connection acts for: the seam request handlers (the ACL authorizer) read. Owner shard. */
    KafkaPrincipal principal() {
        return principal;
    }

    /** {@link #principal()} as Kafka writes it ({@code User:alice}), made once per principal, not per request. */
    String principalName() {
        KafkaPrincipal p = principal;
        if (principalName == null || p != principalNamed) {
            principalNamed = p;
            principalName = String.valueOf(p);
        }
        return principalName;
    }

    /** The principal {@link #principalName} was made for, and the name. Owner shard. */
    private KafkaPrincipal principalNamed;
    private String principalName;

    /** The name of the listener this connection came in on. */
    String listenerName() {
        return listener.name();
    }

    /** The listener's security protocol. */
    SecurityProtocol securityProtocol() {
        return listener.protocol();
    }

    @Override
    public void onReceive(TcpConnection connection, MemorySegment data, long offset, int length, int bufferId) {
        try {
            if (!closed) {
                if (tls != null) {
                    tls.onCipher(data, offset, length);
                } else {
                    receivePlaintext(data, offset, length);
                }
            }
        } catch (RuntimeException e) {
            warn(ConnectionWarnings.Reason.RECEIVE_ERROR, "closing " + socket.remoteAddress() + ": " + e.getMessage());
            close();
        } finally {
            socket.releaseBuffer(bufferId);
        }
        parseFrames();
    }

    /** Request bytes (from the socket, or out of TLS records): into the inbound chain, behind what was parked. */
    private void receivePlaintext(MemorySegment data, long offset, int length) {
        if (closed) {
            return;
        }
        // Also while suspended: these bytes were taken from the socket before the suspension landed.
        if (parked != null) {
            park(data, offset, length); // behind what already waits, in order
        } else {
            append(data, offset, length);
        }
    }

    /** Copies received bytes into the inbound chain; what the arena has no memory for is parked on the heap. */
    private void append(MemorySegment data, long offset, int length) {
        long before = inbound.size();
        try {
            inbound.append(data, offset, length);
        } catch (ArenaExhaustedException e) {
            long took = inbound.size() - before;
            park(data, offset + took, (int) (length - took));
            suspend(MEMORY);
            memory.await(this);
        }
        noteHeld();
    }

    private void park(MemorySegment data, long offset, int length) {
        if (length <= 0) {
            return;
        }
        if (parked == null) {
            parked = new ArrayDeque<>();
        }
        byte[] copy = new byte[length];
        MemorySegment.copy(data, ValueLayout.JAVA_BYTE, offset, copy, 0, length);
        parked.addLast(copy);
    }

    /** Moves parked bytes into the inbound chain while the arena has memory; true once none is left. */
    private boolean drainParked() {
        while (parked != null) {
            byte[] head = parked.peekFirst();
            if (head == null) {
                parked = null;
                break;
            }
            long before = inbound.size();
            try {
                inbound.append(head, 0, head.length);
                parked.pollFirst();
            } catch (ArenaExhaustedException e) {
                int took = (int) (inbound.size() - before);
                if (took > 0) {
                    parked.pollFirst();
                    parked.addFirst(java.util.Arrays.copyOfRange(head, took, head.length));
                }
                noteHeld();
                return false;
            }
        }
        noteHeld();
        return true;
    }

    @Override
    public void onClosed(TcpConnection connection, int result) {
        close();
    }

    /**
     * Called by {@link ReceiveMemory} as memory comes back: moves parked bytes in, asks for the grant again and
     * takes what can be taken. True when the connection no longer waits for memory (or is closed).
     */
    boolean retryReceive() {
        if (closed) {
            return true;
        }
        if (drainParked()) {
            resume(MEMORY);
        }
        parseFrames();
        return closed || (suspendReasons & (GRANT | MEMORY)) == 0;
    }

    /** What this connection is charged in its shard's receive memory. */
    long chargedBytes() {
        return charged;
    }

    /** Called by {@link ReceiveMemory} to free receive memory no one else can: closes this connection, saying why. */
    void evictForMemory(String why) {
        warn(ConnectionWarnings.Reason.RECEIVE_MEMORY_EXHAUSTED, "closing " + socket.remoteAddress() + ": " + why);
        close();
    }

    /** The size of the frame this connection waits to receive (4 + length), or 0. */
    long waitingFrameBytes() {
        return waitingFrameBytes;
    }

    /** Since when this connection waits for receive memory (a grant or the arena); 0 when it does not. */
    long waitingSinceNs() {
        return waitingSinceNs;
    }

    /** Whether this connection waits for a grant of a large frame (those are granted in arrival order). */
    boolean waitingForLargeGrant() {
        return (suspendReasons & GRANT) != 0 && waitingFrameBytes > ReceiveMemory.SMALL_FRAME_BYTES;
    }

    /**
     * Called by {@link ReceiveMemory}'s sweep: closes the connection if the frame it is receiving started more
     * than the request receive timeout ago, not counting time the broker kept it from reading.
     */
    void checkReceiveDeadline(long nowNs) {
        if (closed || frameStartNs == 0 || pausedAtNs != 0 || headComplete()) {
            return;
        }
        long ageNs = nowNs - frameStartNs;
        if (ageNs > receiveTimeoutNs) {
            long size = inbound.size() >= 4 ? 4L + inbound.getInt(0) : -1;
            warn(ConnectionWarnings.Reason.RECEIVE_TIMEOUT, "closing " + socket.remoteAddress() + ": it started a "
                + "request " + ageNs / 1_000_000 + " ms ago and sent " + inbound.size() + " of its "
                + (size < 0 ? "?" : Long.toString(size)) + " bytes (request receive timeout "
                + receiveTimeoutNs / 1_000_000 + " ms)");
            close();
        }
    }

    private boolean headComplete() {
        long have = inbound.size();
        return have >= 4 && have >= 4L + inbound.getInt(0);
    }

    /**
     * Takes every complete frame the limits allow, and asks for the grant of the frame being received. Not
     * re-entrant: a handler that completes at once calls back into {@link #complete} and from there here; the
     * outer loop carries on instead of recursing (a long pipeline of instantly answered requests must not grow
     * the stack).
     */
    private void parseFrames() {
        if (parsing || closed) {
            return;
        }
        parsing = true;
        try {
            while (!closed) {
                if (deferred != null && !startDeferred()) {
                    break; // taken again from complete() / the send completion as responses leave
                }
                if (inbound.size() < 4) {
                    break;
                }
                int size = inbound.getInt(0);
                if (size < MIN_FRAME_BYTES || size > maxRequestBytes) {
                    warn(ConnectionWarnings.Reason.BAD_FRAME_LENGTH, "closing " + socket.remoteAddress() + ": "
                        + badLength(size));
                    close();
                    return;
                }
                long frameBytes = 4L + size;
                if (inbound.size() < frameBytes) {
                    if (headGrantEnd == 0) {
                        grantHead(frameBytes);
                    }
                    break;
                }
                if (!inFlight.isEmpty() && (inFlight.size() >= MAX_IN_FLIGHT || inFlightBytes >= maxBufferedBytes)) {
                    break; // taken again from complete() / the send completion as responses leave
                }
                IoBuf frame = inbound.share(4, size);
                inbound.trimFront(frameBytes);
                endHeadGrant();
                frameStartNs = 0;
                try {
                    if (rawTokens) {
                        handleRawToken(frame, (int) frameBytes);
                    } else {
                        handleFrame(frame, (int) frameBytes);
                    }
                } catch (ProtocolException | IndexOutOfBoundsException e) {
                    warn(ConnectionWarnings.Reason.MALFORMED_REQUEST, "closing " + socket.remoteAddress()
                        + ": malformed request: " + e.getMessage());
                    close();
                } catch (RuntimeException e) {
                    warn(ConnectionWarnings.Reason.DECODER_BUG, "closing " + socket.remoteAddress()
                        + ": a request could not be decoded (a broker bug: decoding errors must be ProtocolException)",
                        e);
                    close();
                } finally {
                    frame.release();
                }
            }
            if (!closed) {
                if (inbound.size() == 0) {
                    frameStartNs = 0;
                } else if (frameStartNs == 0) {
                    frameStartNs = System.nanoTime();
                    if (pausedAtNs != 0) {
                        pausedAtNs = frameStartNs;
                    }
                }
                if ((suspendReasons & GRANT) != 0 && !(inbound.size() >= 4 && headGrantEnd == 0 && !headComplete())) {
                    // The frame it waited for completed from bytes already taken, or was taken: nothing to wait for.
                    waitingFrameBytes = 0;
                    resume(GRANT);
                }
                syncCharge();
                updateReceive();
            }
        } finally {
            parsing = false;
        }
    }

    /** Asks the shard for memory for the whole of the head frame; stops reading until it is granted. */
    private void grantHead(long frameBytes) {
        syncCharge();
        long extra = Math.max(0, frameBytes - inbound.size());
        ReceiveMemory.Grant g = memory.grant(frameBytes, extra, charged, pendingRequestBytes,
            (suspendReasons & GRANT) != 0);
        switch (g) {
            case GRANTED -> {
                headGrantEnd = frameBytes;
                waitingFrameBytes = 0;
                if (frameBytes > ReceiveMemory.SMALL_FRAME_BYTES) {
                    memory.largeFrame(1);
                }
                syncCharge();
                resume(GRANT);
            }
            case WAIT -> {
                waitingFrameBytes = frameBytes;
                suspend(GRANT);
                memory.await(this);
            }
            case NEVER -> {
                warn(ConnectionWarnings.Reason.FRAME_ABOVE_RECEIVE_MEMORY, "closing " + socket.remoteAddress()
                    + ": its request of " + frameBytes + " bytes is larger than this shard's receive memory can take ("
                    + memory.maxFrameBytes() + " bytes, from a quarter of the shard's share of --memory); raise"
                    + " --memory or lower --max-request-bytes");
                close();
            }
        }
    }

    /** The head frame was taken (or the connection closes): its grant becomes the request's own charge. */
    private void endHeadGrant() {
        if (headGrantEnd > ReceiveMemory.SMALL_FRAME_BYTES) {
            memory.largeFrame(-1);
        }
        headGrantEnd = 0;
    }

    /** What this connection holds or was promised in receive memory (see {@link ReceiveMemory}). */
    private long receiveCharge() {
        return pendingRequestBytes + Math.max(closed ? 0 : inbound.size(), headGrantEnd);
    }

    private void syncCharge() {
        long c = receiveCharge();
        if (c != charged) {
            long delta = c - charged;
            charged = c;
            memory.charge(delta);
        }
    }

    private void suspend(int reason) {
        if ((suspendReasons & reason) != 0) {
            return;
        }
        boolean reading = suspendReasons == 0;
        if ((reason & PAUSING) != 0 && (suspendReasons & PAUSING) == 0) {
            pausedAtNs = System.nanoTime();
        }
        if ((reason & (GRANT | MEMORY)) != 0 && (suspendReasons & (GRANT | MEMORY)) == 0) {
            waitingSinceNs = System.nanoTime();
        }
        suspendReasons |= reason;
        if (reason == BOUND) {
            limits.receiveSuspensions.incrementAndGet();
            limits.receiveSuspended.incrementAndGet();
        }
        if (reading) {
            socket.suspendReceive();
        }
    }

    private void resume(int reason) {
        if ((suspendReasons & reason) == 0) {
            return;
        }
        suspendReasons &= ~reason;
        if ((suspendReasons & (GRANT | MEMORY)) == 0) {
            waitingSinceNs = 0;
        }
        if (reason == BOUND) {
            limits.receiveSuspended.decrementAndGet();
        }
        if ((suspendReasons & PAUSING) == 0 && pausedAtNs != 0) {
            if (frameStartNs != 0) {
                frameStartNs += System.nanoTime() - pausedAtNs; // the broker's wait does not count
            }
            pausedAtNs = 0;
        }
        if (suspendReasons == 0 && !closed) {
            socket.resumeReceive();
        }
    }

    /**
     * Stops reading while the connection holds more than its share of the shard's receive memory in requests that
     * still run (until it is back under three quarters of the share, or none runs), or once buffered bytes reach
     * the bound: the bytes held (requests whose handlers run, responses not sent, received bytes not parsed), not
     * what started requests may still produce, which only stops requests from being started. Reads again once
     * buffered bytes are below three quarters of the bound, or nothing is pending: then the unparsed bytes cannot
     * make up a whole frame (it would have been taken), and reading must go on for the request to complete.
     * Reading on while requests wait to be started lets the connection see its client go away. Called at the end
     * of every {@link #parseFrames()}, which runs after each receive, each handler completion and each send.
     */
    private void updateReceive() {
        long share = memory.shareBytes();
        if ((suspendReasons & SHARE) == 0) {
            if (charged > share && pendingRequestBytes > 0) {
                suspend(SHARE);
            }
        } else if (pendingRequestBytes == 0 || charged <= share - share / 4) {
            resume(SHARE);
        }
        long buffered = inFlightBytes - reservedBytes + inbound.size();
        boolean nothingPending = inFlight.isEmpty() && sending == null;
        if ((suspendReasons & BOUND) == 0) {
            if (buffered >= maxBufferedBytes && !nothingPending) {
                suspend(BOUND);
            }
        } else if (nothingPending || buffered < maxBufferedBytes - maxBufferedBytes / 4) {
            resume(BOUND);
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
                    started++;
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
        slot.request = request;
        slot.header = header;
        slot.reservedBytes = responseEstimate(api, request);
        admit(slot);
        deferred = slot;
        startDeferred();
    }

    /**
     * The most a request may produce, counted against the bound before it starts: a Fetch's max_bytes (Kafka's
     * bound on the response, which may pass it by one batch); 0 for the rest, whose responses are counted once
     * they exist (they are small, or proportional to the request).
     */
    private static long responseEstimate(ApiKeys api, ProtocolMessage request) {
        if (api == ApiKeys.FETCH) {
            int max = ((FetchRequestData) request).maxBytes;
            return max <= 0 ? Integer.MAX_VALUE : max;
        }
        return 0;
    }

    /** Queues a decoded request in response order; its bytes are pending from now on. */
    private void admit(Slot slot) {
        inFlight.addLast(slot);
        limits.pending.incrementAndGet();
        pendingRequestBytes += slot.requestBytes;
        grow(slot.requestBytes);
    }

    /**
     * Starts the deferred request if what it may produce fits under the bound, or it is all that is pending.
     * Returns whether it started (or nothing was deferred).
     */
    private boolean startDeferred() {
        Slot slot = deferred;
        if (slot == null) {
            return true;
        }
        boolean alone = inFlight.size() == 1 && sending == null;
        if (!alone && inFlightBytes + slot.reservedBytes > maxBufferedBytes) {
            return false;
        }
        deferred = null;
        ProtocolMessage request = slot.request;
        RequestHeaderData header = slot.header;
        slot.request = null;
        slot.header = null;
        grow(slot.reservedBytes);
        reservedBytes += slot.reservedBytes;
        started++;
        if (started > startedHighWater) {
            startedHighWater = started;
            limits.startedHighWater.accumulateAndGet(started, Math::max);
        }
        Promise<ProtocolMessage> response;
        try {
            response = saslGate(slot.api, slot.version, request);
            if (response == null) {
                if (closed) {
                    // Refused by the gate: closed without a response; the request never ran.
                    release(slot.slices);
                    finished(slot);
                    return true;
                }
                response = broker.handlers().handle(state, slot.api, slot.version, request, header, clientHost(), this);
            }
        } catch (RuntimeException e) {
            response = Promise.failed(e);
        }
        response.whenComplete((msg, failure) -> {
            if (failure != null) {
                // The request's slices stay with whatever the handler started: freeing them could pull memory
                // from under work still running on another shard.
                warn(ConnectionWarnings.Reason.HANDLER_FAILED, "handling " + slot.api + " v" + slot.version
                    + " failed; closing the connection", failure);
                finished(slot);
                close();
                return;
            }
            complete(slot, msg);
        });
        return true;
    }

    // ====================================================================================== SASL

    /**
     * Kafka's SASL rules for the request about to start ({@code SaslServerAuthenticator}): before authentication only
     * ApiVersions and SaslHandshake, then SaslAuthenticate, may come; anything else closes the connection without a
     * response. SaslHandshake and SaslAuthenticate are answered here, on every listener: on one without SASL with
     * ILLEGAL_SASL_STATE, so a client configured for SASL against a PLAINTEXT listener fails with that error instead
     * of reconnecting forever (what Kafka's KafkaApis answers). An authenticated session past its lifetime
     * (KIP-368) is closed at its next request other than SaslHandshake. Returns the response, or null to hand the
     * request to the handlers (or when the connection was closed).
     */
    private Promise<ProtocolMessage> saslGate(ApiKeys api, short version, ProtocolMessage request) {
        if (api == ApiKeys.SASL_HANDSHAKE) {
            return Promise.completed(saslHandshake(version, (SaslHandshakeRequestData) request));
        }
        if (api == ApiKeys.SASL_AUTHENTICATE) {
            return saslAuthenticate(version, (SaslAuthenticateRequestData) request);
        }
        switch (saslState) {
            case AUTHENTICATED -> {
                if (sessionExpiryNs != 0 && System.nanoTime() - sessionExpiryNs > 0 && !reauthenticating) {
                    refuse(api + " on a SASL session that expired (connections.max.reauth.ms) without"
                        + " re-authentication");
                    return null;
                }
                return null;
            }
            case HANDSHAKE -> {
                if (api == ApiKeys.API_VERSIONS) {
                    return null;
                }
                refuse(api + " before SASL authentication (only ApiVersions and SaslHandshake may come first)");
                return null;
            }
            default -> {
                refuse(api + " while SASL authentication is " + (saslState == SaslState.FAILED ? "failed"
                    : "under way"));
                return null;
            }
        }
    }

    /** Closes without a response: an IllegalSaslStateException in Kafka. */
    private void refuse(String why) {
        warn(ConnectionWarnings.Reason.AUTHENTICATION_FAILED, "closing " + socket.remoteAddress() + " (listener "
            + listener.name() + "): " + why);
        close();
    }

    private SaslHandshakeResponseData saslHandshake(short version, SaslHandshakeRequestData req) {
        SaslHandshakeResponseData r = new SaslHandshakeResponseData();
        if (!listener.protocol().sasl()) {
            r.errorCode = ErrorCodes.ILLEGAL_SASL_STATE; // Kafka: SaslHandshake on a listener without SASL
            return r;
        }
        java.util.List<String> enabled = broker.config().security().sasl().enabledMechanisms();
        r.mechanisms.addAll(enabled);
        String mechanism = req.mechanism;
        boolean reauth = saslState == SaslState.AUTHENTICATED;
        if (reauth && (sessionExpiryNs == 0 || version < 1)) {
            r.errorCode = ErrorCodes.ILLEGAL_SASL_STATE; // authenticated, and no session to renew
            return r;
        }
        if (!reauth && saslState != SaslState.HANDSHAKE) {
            r.errorCode = ErrorCodes.ILLEGAL_SASL_STATE;
            closeAfterFailure("SaslHandshake while authentication is under way");
            return r;
        }
        if (mechanism == null || !enabled.contains(mechanism)
            || reauth && !mechanism.equals(saslMechanism)) {
            r.errorCode = ErrorCodes.UNSUPPORTED_SASL_MECHANISM;
            closeAfterFailure(reauth ? "re-authentication with mechanism " + mechanism + " differs from "
                + saslMechanism : "SASL mechanism " + mechanism + " is not enabled " + enabled);
            return r;
        }
        exchange = new SaslServerExchange(mechanism, broker.credentials(state.shard.id()));
        if (reauth) {
            reauthenticating = true;
        } else {
            saslState = SaslState.AUTHENTICATE;
            rawTokens = version == 0;
        }
        return r;
    }

    /**
     * A bare SASL token after SaslHandshake v0: evaluated like a SaslAuthenticate request's, answered with the bare
     * server token in request order. A failure closes the connection (v0 has no way to carry an error).
     */
    private void handleRawToken(IoBuf frame, int frameBytes) {
        byte[] token = frame.toByteArray();
        Slot slot = new Slot(-1, ApiKeys.SASL_AUTHENTICATE, (short) 0, false, frameBytes, null);
        slot.raw = true;
        admit(slot);
        started++;
        SaslAuthenticateRequestData req = new SaslAuthenticateRequestData();
        req.authBytes = dev.isthmus.gateway.protocol.ByteSlice.of(token);
        saslAuthenticate((short) 0, req).whenComplete((msg, failure) -> {
            SaslAuthenticateResponseData r = (SaslAuthenticateResponseData) msg;
            if (failure != null || r.errorCode != ErrorCodes.NONE) {
                finished(slot);
                close();
                return;
            }
            if (saslState == SaslState.AUTHENTICATED) {
                rawTokens = false; // the exchange is over: Kafka requests from now on
            }
            complete(slot, r);
        });
    }

    private Promise<ProtocolMessage> saslAuthenticate(short version, SaslAuthenticateRequestData req) {
        SaslAuthenticateResponseData r = new SaslAuthenticateResponseData();
        if (!listener.protocol().sasl() || saslState == SaslState.AUTHENTICATED && !reauthenticating) {
            r.errorCode = ErrorCodes.ILLEGAL_SASL_STATE;
            r.errorMessage = listener.protocol().sasl() ? "SaslAuthenticate request received after successful"
                + " authentication" : "this listener (" + listener.name() + ") does not use SASL";
            return Promise.completed(r);
        }
        if (exchange == null || saslState == SaslState.FAILED) {
            refuse("SaslAuthenticate before SaslHandshake");
            return Promise.completed(r);
        }
        byte[] token = req.authBytes.toArray();
        int max = broker.config().security().sasl().maxReceiveBytes();
        if (token.length > max) {
            return Promise.completed(authFailed(r, "SASL token of " + token.length + " bytes is above"
                + " sasl.server.max.receive.size " + max));
        }
        SaslServerExchange ex = exchange;
        if (!ex.heavy()) {
            return Promise.completed(saslStep(version, r, ex, ex.evaluate(token)));
        }
        // PLAIN derives the salted password (thousands of HMACs): off the shard, then back to it.
        Promise<ProtocolMessage> p = new Promise<>();
        int shardId = state.shard.id();
        var group = state.shard.group();
        try {
            broker.securityWorkers().execute(() -> {
                SaslServerExchange.Step step = ex.evaluate(token);
                group.execute(shardId, () -> p.complete(saslStep(version, r, ex, step)));
            });
        } catch (java.util.concurrent.RejectedExecutionException e) {
            return Promise.failed(new IllegalStateException("the broker is stopping"));
        }
        return p;
    }

    /** On the shard: turns one exchange step into the SaslAuthenticate response and the connection's new state. */
    private SaslAuthenticateResponseData saslStep(short version, SaslAuthenticateResponseData r, SaslServerExchange ex,
                                                  SaslServerExchange.Step step) {
        if (closed || ex != exchange) {
            r.errorCode = ErrorCodes.ILLEGAL_SASL_STATE;
            return r;
        }
        switch (step) {
            case SaslServerExchange.Challenge c -> r.authBytes = dev.isthmus.gateway.protocol.ByteSlice.of(c.response());
            case SaslServerExchange.Failure f -> authFailed(r, f.message());
            case SaslServerExchange.Success ok -> {
                if (reauthenticating && !ok.principal().equals(principal)) {
                    return authFailed(r, "Cannot change principals during re-authentication from " + principal
                        + " to " + ok.principal());
                }
                r.authBytes = dev.isthmus.gateway.protocol.ByteSlice.of(ok.response());
                (reauthenticating ? limits.reauthentications : limits.authentications).incrementAndGet();
                principal = ok.principal();
                saslMechanism = ex.mechanism();
                saslState = SaslState.AUTHENTICATED;
                reauthenticating = false;
                exchange = null;
                long reauthMs = broker.config().security().sasl().reauthMs();
                if (reauthMs > 0) {
                    sessionExpiryNs = System.nanoTime() + reauthMs * 1_000_000L;
                    if (sessionExpiryNs == 0) {
                        sessionExpiryNs = 1;
                    }
                    if (version >= 1) {
                        r.sessionLifetimeMs = reauthMs;
                    }
                }
            }
        }
        return r;
    }

    /** SASL_AUTHENTICATION_FAILED with {@code message}; the connection closes after the failed-authentication delay. */
    private SaslAuthenticateResponseData authFailed(SaslAuthenticateResponseData r, String message) {
        r.errorCode = ErrorCodes.SASL_AUTHENTICATION_FAILED;
        r.errorMessage = message;
        r.authBytes = dev.isthmus.gateway.protocol.ByteSlice.EMPTY;
        closeAfterFailure("SASL authentication failed (" + (exchange == null ? "?" : exchange.mechanism()) + "): "
            + message);
        return r;
    }

    /** Fails the authentication: no more requests are served; the connection closes after the delay. */
    private void closeAfterFailure(String why) {
        saslState = SaslState.FAILED;
        exchange = null;
        reauthenticating = false;
        warn(ConnectionWarnings.Reason.AUTHENTICATION_FAILED, "closing " + socket.remoteAddress() + " (listener "
            + listener.name() + "): " + why);
        long delayNs = broker.config().security().sasl().failedAuthDelayMs() * 1_000_000L;
        // The response goes out first (it is queued before the delay runs out); then the connection closes.
        state.shard.schedule(Math.max(1, delayNs), this::close);
    }

    /** A started request's handler is done: its request bytes and reservation no longer count. */
    private void finished(Slot slot) {
        inFlightBytes -= slot.requestBytes + slot.reservedBytes;
        reservedBytes -= slot.reservedBytes;
        slot.reservedBytes = 0;
        pendingRequestBytes -= slot.requestBytes;
        started--;
        limits.pending.decrementAndGet();
        syncCharge();
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
        finished(slot);
        if (closed) {
            Broker.releaseSlices(body);
            return;
        }
        if (!slot.noResponse) {
            IoBuf out = IoBuf.empty(state.arena, Subsystem.OTHER);
            try {
                long sizeAt = out.reserve(4);
                if (slot.raw) {
                    byte[] token = ((SaslAuthenticateResponseData) body).authBytes.toArray();
                    out.append(token);
                } else {
                    IoBufProtocolWriter w = new IoBufProtocolWriter(out);
                    ResponseHeaderData h = new ResponseHeaderData();
                    h.correlationId = slot.correlationId;
                    h.write(w, slot.api.responseHeaderVersion(slot.version));
                    body.write(w, slot.version);
                }
                out.setInt(sizeAt, (int) (out.size() - 4));
            } catch (RuntimeException e) {
                out.release();
                warn(ConnectionWarnings.Reason.ENCODE_FAILED, "encoding " + slot.api + " v" + slot.version
                    + " failed; closing the connection", e);
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
        if (tls != null) {
            sendingFrom = sending.fragmentCount();
            tls.send(sending, () -> {
                sent();
                flush();
                parseFrames();
            });
            return;
        }
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

    private void warn(ConnectionWarnings.Reason reason, String message) {
        limits.warnings.warn(reason, message);
    }

    private void warn(ConnectionWarnings.Reason reason, String message, Throwable thrown) {
        limits.warnings.warn(reason, message, thrown);
    }

    /** The client's address as Kafka shows it ("/127.0.0.1"), made once per connection. */
    private String clientHost() {
        if (clientHost == null) {
            java.net.InetSocketAddress a = socket.remoteAddress();
            clientHost = a == null ? "" : "/" + a.getAddress().getHostAddress();
        }
        return clientHost;
    }

    /** Owner shard: one line on this connection's receive state (diagnostics, test failure messages). */
    String describe() {
        return socket.remoteAddress() + ": charged " + charged + ", inbound " + (closed ? -1 : inbound.size())
            + ", grant " + headGrantEnd + ", waiting for " + waitingFrameBytes + ", suspended " + suspendReasons
            + ", parked " + (parked == null ? 0 : parked.size()) + ", pending " + inFlight.size() + " ("
            + pendingRequestBytes + " request bytes), deferred " + (deferred != null) + ", sending " + (sending != null);
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
        if ((suspendReasons & BOUND) != 0) {
            limits.receiveSuspended.decrementAndGet();
        }
        suspendReasons = 0;
        pausedAtNs = 0;
        frameStartNs = 0;
        endHeadGrant();
        broker.connectionClosed(state, this);
        memory.unregister(this);
        for (Slot s : inFlight) {
            if (s.response != null) {
                s.response.release();
            }
            if (s == deferred) {
                // Decoded, never started: nothing else holds its slices.
                release(s.slices);
                inFlightBytes -= s.requestBytes;
                pendingRequestBytes -= s.requestBytes;
                limits.pending.decrementAndGet();
            }
            // Slices of requests whose handlers still run are released when those complete.
        }
        deferred = null;
        inFlight.clear();
        // A response being sent is released by its send completion, once the kernel no longer reads it; under TLS
        // the kernel reads only the channel's own block, so it goes now.
        if (tls != null) {
            sent();
        }
        inbound.release();
        parked = null;
        syncCharge(); // what is left is the requests whose handlers still run, released as they complete
        if (tls != null) {
            tls.close(); // close_notify when the socket is free, then the socket
        } else {
            socket.close();
        }
        if (counted) {
            // Last: another thread that sees the count drop also sees this connection's receive memory freed.
            limits.open.decrementAndGet();
        }
    }
}
