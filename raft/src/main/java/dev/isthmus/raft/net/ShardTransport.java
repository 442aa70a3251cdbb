package dev.isthmus.raft.net;

import dev.isthmus.arena.MemoryArena;
import dev.isthmus.ffi.Errno;
import dev.isthmus.raft.AppendRequest;
import dev.isthmus.raft.GroupMessage;
import dev.isthmus.raft.Heartbeat;
import dev.isthmus.raft.HeartbeatResponse;
import dev.isthmus.raft.RaftMessage;
import dev.isthmus.raft.Transport;
import dev.isthmus.raft.codec.RaftCodec;
import dev.isthmus.raft.codec.RaftCodecException;
import dev.isthmus.uring.TcpConnection;
import dev.isthmus.uring.TcpListener;
import dev.isthmus.uring.shard.Shard;
import dev.isthmus.uring.shard.ShardCall;
import org.agrona.collections.Int2IntHashMap;
import org.agrona.collections.Int2ObjectHashMap;
import org.agrona.collections.Long2LongHashMap;

import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One shard's part of the node's {@link RaftTransport}: the {@link Transport} of the shard's
 * {@link dev.isthmus.raft.RaftNode}, the connections this shard owns, and the routing that moves messages
 * between shards.
 *
 * <h2>Connections and routes</h2>
 * Each pair of nodes shares one TCP connection. It lives on whichever shard made it: the dialer dials from
 * shard {@code peer % shards}; the acceptor's kernel picks the shard (every shard listens on the RPC port
 * with SO_REUSEPORT). When a connection finishes its hello exchange, its shard announces
 * {@code (peer -> shard, rank)} to every shard, so any shard can hand a message for that peer to the owner.
 * Both nodes dial a peer they know when no connection to it exists (a node that joins learns its peers'
 * addresses, and they learn its address from its hello); if both dial at once, the connection dialed by the
 * lower node id wins (its rank is higher) and the other is closed on both sides, so one connection remains.
 *
 * <h2>TLS</h2>
 * With a {@link TransportTls} every connection runs a TLS handshake first (server mode when accepted, client mode
 * when dialed, checking the peer address against its certificate as the engine is configured), then the hello
 * exchange and all frames inside TLS ({@link TlsTcpConnection}); a peer speaking plaintext fails the handshake and
 * is closed. The hello deadline grows by {@link TransportTls#handshakeAllowanceMs()}.
 *
 * <h2>Routing</h2>
 * <pre>
 *   shard s (RaftNode) --send--> route[peer] == s ? connection queue : batch to owner shard --ShardCall-->
 *   owner shard: connection queue --encode, one send per buffer--> TCP --> peer's connection shard:
 *   cut + decode --> group id -> shard (groups announce where they live) --> that shard's RaftNode
 * </pre>
 * Coalesced heartbeats are split by destination shard on arrival (one item per group), so a node with
 * several shards still exchanges a number of heartbeat frames per interval that depends on shards, never on
 * the number of groups. Messages between two shards travel in batches: one {@link ShardCall} in flight per
 * target shard, the next batch gathering meanwhile, which keeps per-peer order.
 *
 * <h2>Bounds</h2>
 * Everything is dropped rather than queued without limit, and counted: no route (no connection yet), a full
 * peer queue, a full queue towards another shard, a group not hosted here. Raft retries all of them.
 *
 * <h2>Threads</h2>
 * Owned by its shard's thread; every method is owner-thread only. Route and group announcements between
 * shards go through per-target FIFO control queues, so their order per origin shard is kept.
 */
public final class ShardTransport implements Transport {
    /** Receives the Raft messages addressed to groups on this shard. */
    @FunctionalInterface
    public interface Inbox {
        void onRaftMessage(RaftMessage message);
    }

    /** Serves one RPC service on a shard: requests (on the serving shard) and responses (on the origin shard). */
    public interface RpcHandler {
        /** A request arrived; answer with {@link #sendRpc} of {@link RpcMessage#reply}. */
        default void onRequest(RpcMessage request) {
        }

        /** A response to a request this shard sent arrived. */
        default void onResponse(RpcMessage response) {
        }
    }

    private static final System.Logger LOG = System.getLogger("dev.isthmus.raft.net");
    private static final long FAILURE_LOG_INTERVAL_MS = 30_000;
    private static final long RANK_LOWER_DIALER = 1L << 62;

    private record Route(int shard, long rank) {
    }

    private final RaftTransport node;
    private final Shard shard;
    private final int shardId;
    private final int shardCount;
    private final int nodeId;
    private final TransportConfig config;
    private RaftCodec codec;
    private MemoryArena payloadArena;
    private final TransportMetrics metrics = new TransportMetrics();
    private final SplittableRandom random;
    private Inbox inbox;

    private final Int2ObjectHashMap<InetSocketAddress> peerAddresses = new Int2ObjectHashMap<>();
    private final Int2ObjectHashMap<Route> routes = new Int2ObjectHashMap<>();
    private final Long2LongHashMap groupShards = new Long2LongHashMap(-1);
    private final Int2IntHashMap serviceShards = new Int2IntHashMap(-1);
    private final Int2ObjectHashMap<RpcHandler> services = new Int2ObjectHashMap<>();

    private final Int2ObjectHashMap<PeerConnection> established = new Int2ObjectHashMap<>();
    private final List<PeerConnection> connections = new ArrayList<>();
    private final Int2ObjectHashMap<Dialer> dialers = new Int2ObjectHashMap<>();
    private List<PeerConnection> toFlush = new ArrayList<>();
    private List<PeerConnection> flushing = new ArrayList<>();
    private final Outbox[] outboxes;
    private final ControlQueue[] control;
    private TcpListener listener;
    private long maintenanceTimer = -1;
    private boolean closing;
    private int[] splitShards = new int[16];

    ShardTransport(RaftTransport node, Shard shard) {
        this.node = node;
        this.shard = shard;
        this.shardId = shard.id();
        this.shardCount = shard.group().size();
        this.nodeId = node.nodeId();
        this.config = node.config();
        this.codec = new RaftCodec(config.maxFrameBytes());
        this.random = new SplittableRandom(System.nanoTime() ^ ((long) nodeId << 32) ^ shardId);
        this.outboxes = new Outbox[shardCount];
        this.control = new ControlQueue[shardCount];
        for (int i = 0; i < shardCount; i++) {
            if (i != shardId) {
                outboxes[i] = new Outbox(i);
                control[i] = new ControlQueue(i);
            }
        }
        shard.addPoller(this::poll);
        scheduleMaintenance();
    }

    // =================================================================================== identity, settings

    public int nodeId() {
        return nodeId;
    }

    public int shardId() {
        return shardId;
    }

    TransportConfig config() {
        return config;
    }

    /**
     * Decodes the record batches of incoming AppendRequests into {@code arena} (this shard's; its RAFT budget) rather
     * than into heap arrays. A received message holds its payloads until the Raft node has handled it (the log
     * takes its own references) or it is dropped. Call on this shard.
     */
    public void usePayloadArena(MemoryArena arena) {
        shard.checkOwner();
        this.codec = new RaftCodec(config.maxFrameBytes(), arena);
        this.payloadArena = arena;
    }

    /**
     * The arena connections receive into and decoded batches live in ({@link #usePayloadArena}), or null: then frames
     * are received into a connection's own buffer and batches decoded to the heap.
     */
    MemoryArena payloadArena() {
        return payloadArena;
    }

    RaftCodec codec() {
        return codec;
    }

    /** This shard's counters (owner thread). */
    public TransportMetrics metrics() {
        return metrics;
    }

    long nowMs() {
        return System.nanoTime() / 1_000_000L;
    }

    /** Where received Raft messages for groups on this shard go. */
    public void setInbox(Inbox inbox) {
        shard.checkOwner();
        this.inbox = inbox;
    }

    /** True when a connection to {@code peer} is established (on any shard of this node). */
    public boolean isConnected(int peer) {
        return routes.containsKey(peer);
    }

    /** The address this node knows for {@code peer}, or null. */
    public InetSocketAddress peerAddress(int peer) {
        return peerAddresses.get(peer);
    }

    // =================================================================================== sending

    /** Sends a Raft message towards its destination node (never blocks; may drop, see the class comment). */
    @Override
    public void send(RaftMessage m) {
        if (m.from() != nodeId) {
            throw new IllegalArgumentException("message from node " + m.from() + " sent by node " + nodeId);
        }
        route(m, m.to());
    }

    /** Sends an RPC request or response (requests: {@code originShard} must be this shard). */
    public void sendRpc(RpcMessage m) {
        if (m.from() != nodeId) {
            throw new IllegalArgumentException("rpc from node " + m.from() + " sent by node " + nodeId);
        }
        route(m, m.to());
    }

    private void route(Object m, int to) {
        if (closing) {
            return;
        }
        Route r = routes.get(to);
        if (r == null) {
            metrics.droppedNoRoute++;
            return;
        }
        int size;
        try {
            size = m instanceof RaftMessage rm ? codec.frameBytes(rm) : TransportFrames.frameBytes(m);
        } catch (RaftCodecException e) {
            LOG.log(System.Logger.Level.ERROR, "dropping a message to node " + to + ": " + e.getMessage());
            return;
        }
        // Queued beyond this call: the message's arena payloads stay alive until it is encoded or dropped.
        hold(m);
        if (r.shard == shardId) {
            enqueueLocal(m, to, size);
        } else {
            outboxes[r.shard].add(m, size, true);
        }
    }

    /** Takes references to an outgoing message's payloads (see {@link dev.isthmus.raft.Payload}). */
    static void hold(Object m) {
        if (m instanceof AppendRequest ar) {
            ar.retainPayloads();
        }
    }

    /** Gives back what {@link #hold} took: the message was encoded or dropped. Any shard. */
    static void unhold(Object m) {
        if (m instanceof AppendRequest ar) {
            ar.releasePayloads();
        }
    }

    private void enqueueLocal(Object m, int to, int size) {
        PeerConnection c = established.get(to);
        if (c == null) {
            metrics.droppedNoRoute++;
            unhold(m);
        } else if (!c.enqueue(m, size, false)) {
            metrics.droppedPeerBufferFull++;
            unhold(m);
        }
    }

    void markFlush(PeerConnection c) {
        toFlush.add(c);
    }

    /** The per-turn poller: hands batches to other shards, then starts one send per connection with data. */
    private int poll() {
        int work = 0;
        for (int i = 0; i < shardCount; i++) {
            if (i != shardId) {
                work += outboxes[i].flush();
            }
        }
        for (int round = 0; round < 2 && !toFlush.isEmpty(); round++) {
            List<PeerConnection> l = toFlush;
            toFlush = flushing;
            flushing = l;
            for (int i = 0; i < l.size(); i++) {
                work += l.get(i).flush();
            }
            l.clear();
        }
        return work;
    }

    /** Messages from one shard to another: gathered per turn, one {@link ShardCall} in flight per target. */
    private final class Outbox {
        final int target;
        final TransferCall call;
        ArrayList<Object> sends = new ArrayList<>();
        ArrayList<Object> deliveries = new ArrayList<>();
        long bytes;

        Outbox(int target) {
            this.target = target;
            this.call = new TransferCall(ShardTransport.this);
        }

        void add(Object m, int size, boolean send) {
            if (bytes + size > config.maxPeerBufferBytes()) {
                metrics.droppedShardBufferFull++;
                unhold(m);
                return;
            }
            bytes += size;
            (send ? sends : deliveries).add(m);
        }

        int flush() {
            if (bytes == 0 || call.isInFlight() || !shard.canSend(target)) {
                return 0;
            }
            ArrayList<Object> s = call.sends;
            ArrayList<Object> d = call.deliveries;
            call.sends = sends;
            call.deliveries = deliveries;
            sends = s;
            deliveries = d;
            bytes = 0;
            if (!shard.trySend(target, call)) {
                // canSend said yes; keep the invariant anyway
                sends = call.sends;
                deliveries = call.deliveries;
                call.sends = s;
                call.deliveries = d;
                return 0;
            }
            metrics.crossShardBatches++;
            return 1;
        }
    }

    /** A batch of messages for the connections (sends) and the Raft node (deliveries) of another shard. */
    private static final class TransferCall extends ShardCall {
        final ShardTransport origin;
        ArrayList<Object> sends = new ArrayList<>();
        ArrayList<Object> deliveries = new ArrayList<>();

        TransferCall(ShardTransport origin) {
            this.origin = origin;
        }

        @Override
        protected boolean onTarget(Shard s) {
            origin.node.onShard(s.id()).acceptTransfer(sends, deliveries);
            return true;
        }

        @Override
        protected void onReply(Shard s) {
            sends.clear();
            deliveries.clear();
        }
    }

    private void acceptTransfer(List<Object> sends, List<Object> deliveries) {
        for (int i = 0; i < sends.size(); i++) {
            Object m = sends.get(i);
            int to = m instanceof RaftMessage rm ? rm.to() : ((RpcMessage) m).to();
            int size = m instanceof RaftMessage rm ? codec.frameBytes(rm) : TransportFrames.frameBytes(m);
            if (closing) {
                unhold(m);
                continue;
            }
            enqueueLocal(m, to, size);
        }
        for (int i = 0; i < deliveries.size(); i++) {
            deliverLocal(deliveries.get(i));
        }
    }

    // =================================================================================== receiving

    void onRaftFrame(PeerConnection c, RaftMessage m) {
        if (m.to() != nodeId || m.from() != c.peer) {
            metrics.droppedMisaddressed++;
            unhold(m);
            return;
        }
        switch (m) {
            case GroupMessage gm -> {
                int s = (int) groupShards.get(gm.groupId());
                if (s < 0) {
                    metrics.droppedUnknownGroup++;
                    unhold(m);
                } else {
                    deliver(s, m);
                }
            }
            case Heartbeat hb -> splitHeartbeat(hb);
            case HeartbeatResponse hr -> splitHeartbeatResponse(hr);
        }
    }

    void onRpcFrame(PeerConnection c, RpcMessage m) {
        if (m.to() != nodeId || m.from() != c.peer) {
            metrics.droppedMisaddressed++;
            return;
        }
        int s = m.response() ? m.originShard() : serviceShards.get(m.service());
        if (s < 0 || s >= shardCount) {
            metrics.droppedUnknownGroup++;
            return;
        }
        deliver(s, m);
    }

    private void deliver(int s, Object m) {
        if (s == shardId) {
            deliverLocal(m);
        } else {
            int size = m instanceof RaftMessage rm ? codec.frameBytes(rm) : TransportFrames.frameBytes(m);
            outboxes[s].add(m, size, false);
        }
    }

    private void deliverLocal(Object m) {
        if (closing) {
            unhold(m);
            return;
        }
        if (m instanceof RaftMessage rm) {
            try {
                if (rm instanceof GroupMessage gm && groupShards.get(gm.groupId()) != shardId) {
                    metrics.droppedUnknownGroup++;
                } else if (inbox != null) {
                    inbox.onRaftMessage(rm); // the log takes its own references to what it keeps
                }
            } finally {
                unhold(m);
            }
            return;
        }
        RpcMessage r = (RpcMessage) m;
        RpcHandler h = services.get(r.service());
        if (h == null) {
            metrics.droppedUnknownGroup++;
        } else if (r.response()) {
            h.onResponse(r);
        } else {
            h.onRequest(r);
        }
    }

    /** Fills {@link #splitShards} with each item's shard (-1 unknown); returns the common shard or -2 if mixed. */
    private int shardsOf(long[] groupIds) {
        if (splitShards.length < groupIds.length) {
            splitShards = new int[Math.max(groupIds.length, splitShards.length * 2)];
        }
        int common = Integer.MIN_VALUE;
        for (int i = 0; i < groupIds.length; i++) {
            int s = (int) groupShards.get(groupIds[i]);
            splitShards[i] = s;
            if (s < 0) {
                metrics.droppedUnknownGroup++;
                common = -2;
            } else if (common == Integer.MIN_VALUE) {
                common = s;
            } else if (common != s) {
                common = -2;
            }
        }
        return common == Integer.MIN_VALUE ? -1 : common;
    }

    private void splitHeartbeat(Heartbeat hb) {
        int common = shardsOf(hb.groupIds());
        if (common >= 0) {
            deliver(common, hb);
            return;
        }
        if (common == -1) {
            return;
        }
        int[] shards = Arrays.copyOf(splitShards, hb.size());
        for (int s = 0; s < shardCount; s++) {
            int n = count(shards, s);
            if (n == 0) {
                continue;
            }
            long[] ids = new long[n];
            long[] terms = new long[n];
            long[] commits = new long[n];
            for (int i = 0, j = 0; i < shards.length; i++) {
                if (shards[i] == s) {
                    ids[j] = hb.groupIds()[i];
                    terms[j] = hb.terms()[i];
                    commits[j] = hb.commitOffsets()[i];
                    j++;
                }
            }
            deliver(s, new Heartbeat(hb.from(), hb.to(), ids, terms, commits));
        }
    }

    private void splitHeartbeatResponse(HeartbeatResponse hr) {
        int common = shardsOf(hr.groupIds());
        if (common >= 0) {
            deliver(common, hr);
            return;
        }
        if (common == -1) {
            return;
        }
        int[] shards = Arrays.copyOf(splitShards, hr.size());
        for (int s = 0; s < shardCount; s++) {
            int n = count(shards, s);
            if (n == 0) {
                continue;
            }
            long[] ids = new long[n];
            long[] terms = new long[n];
            long[] match = new long[n];
            long[] last = new long[n];
            for (int i = 0, j = 0; i < shards.length; i++) {
                if (shards[i] == s) {
                    ids[j] = hr.groupIds()[i];
                    terms[j] = hr.terms()[i];
                    match[j] = hr.matchOffsets()[i];
                    last[j] = hr.lastOffsets()[i];
                    j++;
                }
            }
            deliver(s, new HeartbeatResponse(hr.from(), hr.to(), ids, terms, match, last));
        }
    }

    private static int count(int[] a, int v) {
        int n = 0;
        for (int x : a) {
            if (x == v) {
                n++;
            }
        }
        return n;
    }

    // =================================================================================== groups and services

    /** Announces to every shard that group {@code groupId} lives on this shard (call when it is added here). */
    public void announceGroup(long groupId) {
        broadcast(t -> t.groupShards.put(groupId, shardId));
    }

    /** Announces that group {@code groupId} left this shard. */
    public void withdrawGroup(long groupId) {
        broadcast(t -> {
            if (t.groupShards.get(groupId) == shardId) {
                t.groupShards.remove(groupId);
            }
        });
    }

    /**
     * Registers {@code handler} for {@code service} on this shard: it gets the responses to requests this
     * shard sends, and, with {@code serveRequests}, every request for the service arriving at this node.
     */
    public void registerService(int service, RpcHandler handler, boolean serveRequests) {
        shard.checkOwner();
        services.put(service, handler);
        if (serveRequests) {
            broadcast(t -> t.serviceShards.put(service, shardId));
        }
    }

    /** Learns (or changes) the RPC address of {@code peer}, on every shard; its dialer starts if needed. */
    public void addPeer(int peer, InetSocketAddress address) {
        broadcast(t -> t.learnPeer(peer, address, false));
    }

    /**
     * @param connected the address came from the peer's hello: a connection exists, so the dialer only
     *                  starts watching (it dials if that connection is lost)
     */
    private void learnPeer(int peer, InetSocketAddress address, boolean connected) {
        if (peer == nodeId) {
            return;
        }
        InetSocketAddress old = peerAddresses.put(peer, address);
        if (peer % shardCount != shardId || closing) {
            return;
        }
        Dialer d = dialers.get(peer);
        if (d == null) {
            d = new Dialer(peer, address);
            dialers.put(peer, d);
            // The lower id dials first; the other waits a little, so that simultaneous dials are rare.
            d.scheduleDial(connected ? config.backoffMaxMs()
                : nodeId < peer ? 0 : config.backoffMinMs() + random.nextLong(config.backoffMinMs()));
        } else if (!address.equals(old)) {
            d.address = address;
            d.scheduleDial(connected ? config.backoffMaxMs() : 0);
        }
    }

    /** Runs {@code fn} on every shard's transport: here at once, elsewhere in order through the control queues. */
    private void broadcast(java.util.function.Consumer<ShardTransport> fn) {
        shard.checkOwner();
        for (int i = 0; i < shardCount; i++) {
            if (i == shardId) {
                fn.accept(this);
            } else {
                control[i].add(fn);
            }
        }
    }

    /** Control messages to one other shard, kept in order (retried when the cross-shard queue is busy). */
    private final class ControlQueue {
        final int target;
        final ArrayList<java.util.function.Consumer<ShardTransport>> queued = new ArrayList<>();
        boolean inFlight;

        ControlQueue(int target) {
            this.target = target;
        }

        void add(java.util.function.Consumer<ShardTransport> fn) {
            queued.add(fn);
            pump();
        }

        void pump() {
            if (inFlight || queued.isEmpty()) {
                return;
            }
            List<java.util.function.Consumer<ShardTransport>> batch = List.copyOf(queued);
            queued.clear();
            inFlight = true;
            shard.submitTo(target, s -> {
                ShardTransport t = node.onShard(s.id());
                for (var f : batch) {
                    f.accept(t);
                }
                return null;
            }).whenComplete((v, err) -> {
                inFlight = false;
                if (err instanceof dev.isthmus.uring.shard.ShardBusyException) {
                    queued.addAll(0, batch);
                    shard.schedule(1_000_000L, this::pump);
                } else {
                    if (err != null) {
                        LOG.log(System.Logger.Level.ERROR, "transport control message to shard " + target
                            + " failed", err);
                    }
                    pump();
                }
            });
        }
    }

    // =================================================================================== listening

    void listen(InetSocketAddress address) {
        listener = shard.engine().listen(address, true, 128, this::onAccept);
    }

    InetSocketAddress listenAddress() {
        return listener == null ? null : listener.localAddress();
    }

    private void onAccept(TcpConnection tcp, int result) {
        if (tcp == null) {
            LOG.log(System.Logger.Level.WARNING, "RPC accept failed on shard " + shardId + ": "
                + Errno.describe(-result));
            return;
        }
        if (closing) {
            tcp.close();
            return;
        }
        TransportTls tls = node.tls();
        TcpConnection socket = tls == null ? tcp : new TlsTcpConnection(tcp, tls.serverEngine(), shard, tls.tasks(),
            String.valueOf(tcp.remoteAddress()));
        PeerConnection c = new PeerConnection(this, socket, false, -1, 0, nowMs());
        connections.add(c);
        c.start();
    }

    // =================================================================================== handshake

    void onHello(PeerConnection c, TransportFrames.Hello h) {
        String problem = null;
        if (!h.clusterId().equals(config.clusterId())) {
            problem = "node " + h.from() + " at " + c.tcp.remoteAddress() + " belongs to cluster '" + h.clusterId()
                + "', this node to '" + config.clusterId() + "'";
        } else if (h.to() != nodeId) {
            problem = "node " + h.from() + " at " + c.tcp.remoteAddress() + " expected node " + h.to()
                + " at this address, but this is node " + nodeId + " (check the peer addresses)";
        } else if (h.from() == nodeId) {
            problem = "a connection from this node to itself (node " + nodeId + ")";
        } else if (c.dialed && h.from() != c.peer) {
            problem = "dialed node " + c.peer + " at " + c.tcp.remoteAddress() + " but node " + h.from() + " answered";
        } else if (c.dialed && h.connectionId() != c.connectionId) {
            problem = "node " + h.from() + " answered with connection id " + h.connectionId() + ", not "
                + c.connectionId;
        }
        if (problem != null) {
            metrics.handshakeFailures++;
            logHandshakeProblem(problem);
            c.close(problem);
            return;
        }
        if (!c.dialed) {
            c.peer = h.from();
            c.connectionId = h.connectionId();
            InetSocketAddress advertised = new InetSocketAddress(h.host(), h.port());
            if (!advertised.equals(peerAddresses.get(h.from()))) {
                int from = h.from();
                broadcast(t -> t.learnPeer(from, advertised, true));
            }
            TransportFrames.Hello reply = new TransportFrames.Hello(nodeId, h.from(), h.connectionId(),
                config.clusterId(), node.advertised().getHostString(), node.advertised().getPort());
            c.enqueue(reply, TransportFrames.frameBytes(reply), true);
        }
        int dialer = c.dialed ? nodeId : c.peer;
        int other = c.dialed ? c.peer : nodeId;
        c.rank = (dialer < other ? RANK_LOWER_DIALER : 0) | (c.connectionId & (RANK_LOWER_DIALER - 1));
        establish(c);
    }

    private long lastHandshakeLogMs = Long.MIN_VALUE / 2;

    private void logHandshakeProblem(String problem) {
        long now = nowMs();
        if (now - lastHandshakeLogMs >= 1000) {
            lastHandshakeLogMs = now;
            LOG.log(System.Logger.Level.WARNING, "refusing an RPC connection: " + problem);
        }
    }

    private void establish(PeerConnection c) {
        Route r = routes.get(c.peer);
        if (r != null && r.rank > c.rank) {
            metrics.duplicateConnectionsClosed++;
            c.close("node " + c.peer + " already has a connection with this node (both dialed)");
            return;
        }
        c.state = PeerConnection.State.ESTABLISHED;
        metrics.connectionsEstablished++;
        PeerConnection old = established.put(c.peer, c);
        if (old != null && old != c) {
            metrics.duplicateConnectionsClosed++;
            old.close("replaced by a newer connection with node " + c.peer);
        }
        if (c.dialed) {
            Dialer d = dialers.get(c.peer);
            if (d != null) {
                d.onEstablished();
            }
        }
        LOG.log(System.Logger.Level.INFO, "node " + nodeId + " connected to node " + c.peer + " ("
            + (c.dialed ? "dialed" : "accepted") + " on shard " + shardId + ", " + c.tcp.remoteAddress() + ")");
        int peer = c.peer;
        long rank = c.rank;
        broadcast(t -> t.routeUp(peer, shardId, rank));
    }

    private void routeUp(int peer, int owner, long rank) {
        Route cur = routes.get(peer);
        if (cur != null && cur.rank >= rank) {
            return;
        }
        routes.put(peer, new Route(owner, rank));
        PeerConnection mine = established.get(peer);
        if (mine != null && mine.rank < rank) {
            metrics.duplicateConnectionsClosed++;
            mine.close("node " + peer + " has a preferred connection with this node");
        }
    }

    private void routeDown(int peer, long rank) {
        Route cur = routes.get(peer);
        if (cur != null && cur.rank == rank) {
            routes.remove(peer);
            Dialer d = dialers.get(peer);
            if (d != null && d.current == null) {
                d.scheduleDial(random.nextLong(config.backoffMinMs()));
            }
        }
    }

    void onConnectionClosed(PeerConnection c, PeerConnection.State was, String reason) {
        connections.remove(c);
        metrics.connectionsClosed++;
        if (was == PeerConnection.State.ESTABLISHED && established.get(c.peer) == c) {
            established.remove(c.peer);
            int peer = c.peer;
            long rank = c.rank;
            broadcast(t -> t.routeDown(peer, rank));
            if (!closing) {
                LOG.log(System.Logger.Level.INFO, "node " + nodeId + ": connection with node " + peer
                    + " closed: " + reason);
            }
        } else if (was == PeerConnection.State.HANDSHAKE) {
            metrics.handshakeFailures++;
        }
        if (c.dialed) {
            Dialer d = dialers.get(c.peer);
            if (d != null && d.current == c) {
                d.current = null;
                if (!closing) {
                    d.onFailure(was == PeerConnection.State.ESTABLISHED ? null : reason);
                }
            }
        }
    }

    // =================================================================================== dialing

    /** Keeps one dialed connection to a peer while no connection with it exists. */
    private final class Dialer {
        final int peer;
        InetSocketAddress address;
        PeerConnection current;
        boolean connecting;
        boolean dialWhenDone;
        long attempt;
        /** The connect in flight (its own timeout closes the socket), or null. */
        dev.isthmus.uring.ConnectAttempt pendingConnect;
        long retryTimer = -1;
        long backoffMs = config.backoffMinMs();
        long lastFailureLogMs = Long.MIN_VALUE / 2;
        boolean failing;

        Dialer(int peer, InetSocketAddress address) {
            this.peer = peer;
            this.address = address;
        }

        void scheduleDial(long delayMs) {
            if (closing || retryTimer >= 0) {
                return;
            }
            retryTimer = shard.schedule(delayMs * 1_000_000L, () -> {
                retryTimer = -1;
                dial();
            });
        }

        void dial() {
            if (closing || current != null) {
                return;
            }
            if (connecting) {
                dialWhenDone = true;
                return;
            }
            if (routes.containsKey(peer)) {
                scheduleDial(config.backoffMaxMs()); // connected through the peer's dial: check again later
                return;
            }
            connecting = true;
            long a = ++attempt;
            metrics.connectAttempts++;
            // The attempt's own timeout closes the socket and answers -ETIMEDOUT: a peer that drops SYNs (a
            // partition) holds no attempt for the kernel's two minutes of retries, so the next dial can start.
            dev.isthmus.uring.ConnectAttempt c = shard.engine().connect(address,
                config.connectTimeoutMs() * 1_000_000L, (tcp, result) -> onConnect(a, tcp, result));
            if (connecting && attempt == a) {
                pendingConnect = c; // not when the handler already ran (could not even be queued)
            }
        }

        private void onConnect(long a, TcpConnection tcp, int result) {
            connecting = false;
            pendingConnect = null;
            if (closing || a != attempt) {
                if (tcp != null) {
                    tcp.close();
                }
                if (dialWhenDone && !closing) {
                    dialWhenDone = false;
                    dial();
                }
                return;
            }
            if (tcp == null) {
                onFailure(result == -Errno.ETIMEDOUT
                    ? "connect to node " + peer + " at " + address + " timed out after " + config.connectTimeoutMs() + " ms"
                    : "connect to node " + peer + " at " + address + " failed: " + Errno.describe(-result));
                return;
            }
            long id = node.nextConnectionId();
            TransportTls tls = node.tls();
            TcpConnection socket = tcp;
            if (tls != null) {
                javax.net.ssl.SSLEngine engine;
                try {
                    engine = tls.clientEngine(address);
                } catch (RuntimeException e) {
                    tcp.close();
                    onFailure("cannot make a TLS engine for node " + peer + " at " + address + ": " + e.getMessage());
                    return;
                }
                socket = new TlsTcpConnection(tcp, engine, shard, tls.tasks(), "node " + peer + " at " + address);
            }
            PeerConnection c = new PeerConnection(ShardTransport.this, socket, true, peer, id, nowMs());
            current = c;
            connections.add(c);
            c.start();
            TransportFrames.Hello hello = new TransportFrames.Hello(nodeId, peer, id, config.clusterId(),
                node.advertised().getHostString(), node.advertised().getPort());
            c.enqueue(hello, TransportFrames.frameBytes(hello), true);
        }

        void onEstablished() {
            backoffMs = config.backoffMinMs();
            failing = false;
        }

        /** A failed attempt (reason != null) or a lost connection (null): dial again after the back-off. */
        void onFailure(String reason) {
            if (reason == null) {
                scheduleDial(random.nextLong(config.backoffMinMs()) + 1);
                return;
            }
            metrics.connectFailures++;
            long now = nowMs();
            if (!failing || now - lastFailureLogMs >= FAILURE_LOG_INTERVAL_MS) {
                failing = true;
                lastFailureLogMs = now;
                LOG.log(System.Logger.Level.INFO, "node " + nodeId + ": " + reason + "; retrying every "
                    + config.backoffMinMs() + ".." + config.backoffMaxMs() + " ms");
            }
            long jitter = random.nextLong(backoffMs / 4 + 1);
            scheduleDial(backoffMs + jitter);
            backoffMs = Math.min(config.backoffMaxMs(), backoffMs * 2);
        }

        void stop() {
            if (retryTimer >= 0) {
                shard.cancelTimer(retryTimer);
                retryTimer = -1;
            }
            if (pendingConnect != null) {
                pendingConnect.cancel(); // no callback follows; the socket is closed
                pendingConnect = null;
                connecting = false;
            }
        }
    }

    // =================================================================================== maintenance

    private void scheduleMaintenance() {
        long periodMs = Math.max(5, Math.min(config.pingIntervalMs(), config.connectTimeoutMs()) / 2);
        maintenanceTimer = shard.schedule(periodMs * 1_000_000L, () -> {
            maintenanceTimer = -1;
            maintain();
            if (!closing) {
                scheduleMaintenance();
            }
        });
    }

    private void maintain() {
        long now = nowMs();
        long helloTimeoutMs = config.connectTimeoutMs() + (node.tls() != null ? node.tls().handshakeAllowanceMs() : 0);
        for (int i = connections.size() - 1; i >= 0; i--) {
            if (i >= connections.size()) {
                continue;
            }
            PeerConnection c = connections.get(i);
            if (c.state == PeerConnection.State.HANDSHAKE) {
                if (now - c.createdMs > helloTimeoutMs) {
                    c.close("no hello from " + c.describePeer() + " within " + helloTimeoutMs + " ms"
                        + (node.tls() != null ? " (TLS handshake included)" : ""));
                }
            } else if (c.state == PeerConnection.State.ESTABLISHED) {
                if (now - c.lastReceiveMs > config.idleTimeoutMs()) {
                    metrics.idleTimeouts++;
                    c.close("nothing received from node " + c.peer + " for " + (now - c.lastReceiveMs) + " ms");
                } else if (now - c.lastSendMs >= config.pingIntervalMs() && !c.hasQueued()) {
                    TransportFrames.Ping p = new TransportFrames.Ping(nodeId, c.peer, now);
                    c.enqueue(p, TransportFrames.frameBytes(p), true);
                }
            }
        }
    }

    // =================================================================================== shutdown

    /** Stops listening and dialing and closes every connection. Queued messages are dropped. */
    void close() {
        if (closing) {
            return;
        }
        closing = true;
        if (listener != null) {
            listener.close();
        }
        if (maintenanceTimer >= 0) {
            shard.cancelTimer(maintenanceTimer);
        }
        dialers.values().forEach(Dialer::stop);
        for (PeerConnection c : new ArrayList<>(connections)) {
            c.close("node " + nodeId + " is stopping");
        }
    }

    @Override
    public String toString() {
        return "ShardTransport[node " + nodeId + ", shard " + shardId + ", " + established.size()
            + " connections established here, routes " + routes.size() + "]";
    }
}
