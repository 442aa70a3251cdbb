package dev.isthmus.raft.net;

import dev.isthmus.uring.shard.Shard;
import dev.isthmus.uring.shard.ShardGroup;

import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Node-to-node RPC over TCP on the shard loops: one {@link ShardTransport} per shard of a {@link ShardGroup},
 * one connection per pair of nodes, frames of {@link dev.isthmus.raft.codec.RaftCodec} and
 * {@link TransportFrames} (length, magic, version, type, CRC32C), connect and hello timeouts, reconnect with
 * exponential back-off and jitter, pings on quiet connections and an idle timeout, bounded buffers that drop
 * (Raft retries). See {@link ShardTransport} for connections, routing between shards and bounds.
 *
 * <p>Created by {@link #start} from a non-shard thread; afterwards each shard uses its own part through
 * {@link #onShard(int)} on its thread. The methods returning futures may be called from any non-shard thread.
 */
public final class RaftTransport {
    private final ShardGroup group;
    private final int nodeId;
    private final TransportConfig config;
    private final ShardTransport[] shards;
    private final AtomicLong connectionIds;
    private final TransportTls tls;
    private volatile InetSocketAddress advertised;
    private volatile InetSocketAddress bound;

    private RaftTransport(ShardGroup group, int nodeId, TransportConfig config, TransportTls tls) {
        this.tls = tls;
        this.group = group;
        this.nodeId = nodeId;
        this.config = config;
        this.shards = new ShardTransport[group.size()];
        // Connection ids grow across restarts of this node (they order duplicate connections).
        this.connectionIds = new AtomicLong(System.currentTimeMillis() << 10);
    }

    /**
     * Starts the transport on every shard of {@code group}: listens on {@code listen} (port 0 picks one; every
     * shard binds the same port with SO_REUSEPORT; null: no listener, a single node) and starts dialing
     * {@code peers}. Blocks until every shard
     * listens; call from a non-shard thread.
     *
     * @param advertised the address peers should dial (sent in hellos); null for the bound address
     * @param inboxes    per shard, where received Raft messages go (set before any connection exists)
     * @throws IllegalStateException naming the problem when a shard cannot listen
     */
    public static RaftTransport start(ShardGroup group, int nodeId, TransportConfig config, InetSocketAddress listen,
                                      InetSocketAddress advertised, Map<Integer, InetSocketAddress> peers,
                                      java.util.function.IntFunction<ShardTransport.Inbox> inboxes) {
        return start(group, nodeId, config, listen, advertised, peers, inboxes, null);
    }

    /**
     * As {@link #start(ShardGroup, int, TransportConfig, InetSocketAddress, InetSocketAddress, Map,
     * java.util.function.IntFunction)}, with every connection (accepted and dialed) inside TLS when {@code tls} is
     * not null (see {@link TransportTls}).
     */
    public static RaftTransport start(ShardGroup group, int nodeId, TransportConfig config, InetSocketAddress listen,
                                      InetSocketAddress advertised, Map<Integer, InetSocketAddress> peers,
                                      java.util.function.IntFunction<ShardTransport.Inbox> inboxes,
                                      TransportTls tls) {
        if (nodeId < 0) {
            throw new IllegalArgumentException("node id must be >= 0, not " + nodeId);
        }
        if (Shard.currentOrNull() != null) {
            throw new IllegalStateException("RaftTransport.start blocks; call it from a non-shard thread");
        }
        RaftTransport t = new RaftTransport(group, nodeId, config, tls);
        try {
            for (int i = 0; i < group.size(); i++) {
                int id = i;
                await(group.call(i, s -> {
                    t.shards[id] = new ShardTransport(t, s);
                    t.shards[id].setInbox(inboxes.apply(id));
                    return null;
                }), "start the transport on shard " + i);
            }
            InetSocketAddress first = listen == null ? null : await(group.call(0, s -> {
                t.shards[0].listen(listen);
                return t.shards[0].listenAddress();
            }), "listen on " + listen);
            t.bound = first;
            t.advertised = advertised != null ? advertised : first;
            for (int i = 1; i < group.size() && first != null; i++) {
                int id = i;
                await(group.call(i, s -> {
                    t.shards[id].listen(first);
                    return null;
                }), "listen on " + first + " from shard " + i);
            }
            await(group.call(0, s -> {
                for (Map.Entry<Integer, InetSocketAddress> e : peers.entrySet()) {
                    if (e.getKey() != nodeId) {
                        t.shards[0].addPeer(e.getKey(), e.getValue());
                    }
                }
                return null;
            }), "add peers");
        } catch (RuntimeException e) {
            t.close();
            throw e;
        }
        return t;
    }

    static <T> T await(CompletableFuture<T> f, String what) {
        try {
            return f.get(30, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            throw new IllegalStateException("cannot " + what + ": " + c.getMessage(), c);
        } catch (TimeoutException e) {
            throw new IllegalStateException("cannot " + what + ": no answer from the shard in 30 s", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while trying to " + what, e);
        }
    }

    public int nodeId() {
        return nodeId;
    }

    public TransportConfig config() {
        return config;
    }

    /** The TLS of every connection, or null (plaintext). */
    public TransportTls tls() {
        return tls;
    }

    /** The bound RPC address (the real port when 0 was asked for). */
    public InetSocketAddress boundAddress() {
        return bound;
    }

    /** The address sent to peers in hellos. */
    public InetSocketAddress advertised() {
        return advertised;
    }

    /** The part of shard {@code id} (use it on that shard's thread only). */
    public ShardTransport onShard(int id) {
        return shards[id];
    }

    long nextConnectionId() {
        return connectionIds.incrementAndGet();
    }

    /** Any non-shard thread: learns or changes a peer's address (e.g. a broker registered with the controller). */
    public CompletableFuture<Void> addPeer(int peer, InetSocketAddress address) {
        return group.call(0, s -> {
            shards[0].addPeer(peer, address);
            return null;
        });
    }

    /** Any non-shard thread: every shard's counters, summed. */
    public CompletableFuture<TransportMetrics> metrics() {
        List<CompletableFuture<TransportMetrics>> parts = new ArrayList<>();
        for (int i = 0; i < shards.length; i++) {
            int id = i;
            parts.add(group.call(i, s -> shards[id].metrics().copy()));
        }
        return CompletableFuture.allOf(parts.toArray(CompletableFuture[]::new)).thenApply(v -> {
            TransportMetrics sum = new TransportMetrics();
            parts.forEach(p -> sum.add(p.join()));
            return sum;
        });
    }

    /**
     * Any non-shard thread: stops listening and dialing and closes every connection (blocks until every
     * shard did). Sends in flight complete on their own; their buffers are freed then.
     */
    public void close() {
        for (int i = 0; i < shards.length; i++) {
            if (shards[i] == null) {
                continue;
            }
            int id = i;
            try {
                group.call(i, s -> {
                    shards[id].close();
                    return null;
                }).get(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                System.getLogger("dev.isthmus.raft.net").log(System.Logger.Level.WARNING,
                    "closing the transport on shard " + i + " failed: " + e);
            }
        }
    }

    @Override
    public String toString() {
        return "RaftTransport[node " + nodeId + " at " + bound + ", " + shards.length + " shards]";
    }
}
