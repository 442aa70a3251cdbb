package dev.isthmus.raft.server;

import dev.isthmus.raft.net.RaftTransport;
import dev.isthmus.raft.net.TransportMetrics;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.Shard;
import dev.isthmus.uring.shard.ShardGroup;

import java.net.InetSocketAddress;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;

/**
 * An embeddable Raft host: on every shard of a {@link ShardGroup} it runs a {@link RaftShard} (a
 * {@link dev.isthmus.raft.RaftNode} and the logs of the groups placed there) over one {@link RaftTransport}
 * (the node's RPC port).
 *
 * <p>The server knows nothing of what its groups replicate. The embedding application adds its own groups and
 * RPC services through the same API as any group: the Kafka layer's controller (cluster metadata, in
 * kafka-gateway) opens its group on {@link #CONTROLLER_SHARD} with {@link RaftShard#addGroup} and registers
 * its RPC service on that shard's transport, and is stopped by its owner before {@link #close}.
 *
 * <h2>Using it (the gateway)</h2>
 * <pre>
 *   RaftServer raft = RaftServer.start(shards, RaftServerConfig.of(nodeId, clusterId, rpcListen, peers, seeds, dir),
 *                                      pools);
 *   // on the partition's shard:
 *   raft.shard(s).addGroup(groupId, dir, Configuration.ofVoters(replicas), logConfig, StateMachine.NONE, listener)
 *       .whenComplete((log, err) -> ...);
 *   log.replicate(new KafkaBatchPayload(batch))  // Promise of the base offset once committed
 *   log.highWatermark(); log.isLeader(); log.leaderId(); log.term()  // = leader epoch
 *   listener.onCommit / onRoleChange                                   // high watermark, leadership
 * </pre>
 * Messages of a group reach the shard hosting the group on the peer node: every shard announces its groups
 * to the node's other shards, and the shard holding a connection routes arriving messages by group id
 * (see {@link dev.isthmus.raft.net.ShardTransport}). Partition groups on different nodes may sit on
 * different shards.
 *
 * <h2>Threads</h2>
 * {@link #start} and {@link #close} block and must be called from a non-shard thread. {@link #shard(int)}'s
 * object belongs to that shard's thread; {@link #onShard} runs code there from any thread.
 */
public final class RaftServer implements AutoCloseable {
    /**
     * The shard where the embedding application hosts its metadata (controller) group and serves its requests;
     * {@link RaftServerConfig#controllerVoters()} are that group's voters. Fixed so every node agrees.
     */
    public static final int CONTROLLER_SHARD = 0;
    private static final System.Logger LOG = System.getLogger("dev.isthmus.raft");

    private final ShardGroup group;
    private final RaftServerConfig config;
    private final StoragePools pools;
    private final RaftShard[] shards;
    private RaftTransport transport;
    private volatile boolean closed;
    /** Sorted ids of the nodes handing their leaderships away; replaced whole (copy on write), read anywhere. */
    private volatile int[] leadershipExcluded = new int[0];
    private volatile int[] inMaintenance = new int[0];

    private RaftServer(ShardGroup group, RaftServerConfig config, StoragePools pools) {
        this.group = group;
        this.config = config;
        this.pools = pools;
        this.shards = new RaftShard[group.size()];
    }

    /**
     * Starts the host on every shard of {@code group} and returns once the RPC port listens on all of them
     * (connections to peers are made in the background). The caller keeps owning {@code group}.
     *
     * @throws IllegalStateException naming the problem (port in use, a shard not answering, ...)
     */
    public static RaftServer start(ShardGroup group, RaftServerConfig config, StoragePools pools) {
        return start(group, config, pools, null);
    }

    /**
     * As {@link #start(ShardGroup, RaftServerConfig, StoragePools)}, with the RPC connections inside TLS when
     * {@code tls} is not null (see {@link dev.isthmus.raft.net.TransportTls}).
     */
    public static RaftServer start(ShardGroup group, RaftServerConfig config, StoragePools pools,
                                   dev.isthmus.raft.net.TransportTls tls) {
        if (Shard.currentOrNull() != null) {
            throw new IllegalStateException("RaftServer.start blocks; call it from a non-shard thread");
        }
        RaftServer s = new RaftServer(group, config, pools);
        try {
            for (int i = 0; i < group.size(); i++) {
                int id = i;
                await(group.call(i, sh -> {
                    s.shards[id] = new RaftShard(s, sh, config, pools);
                    return null;
                }), "start Raft on shard " + i);
            }
            s.transport = RaftTransport.start(group, config.nodeId(), config.transport(), config.rpcListen(),
                config.rpcAdvertised(), config.peers(), id -> s.shards[id], tls);
            for (int i = 0; i < group.size(); i++) {
                int id = i;
                await(group.call(i, sh -> {
                    s.shards[id].bind(s.transport.onShard(id));
                    return null;
                }), "bind the transport on shard " + i);
            }
        } catch (RuntimeException e) {
            s.close();
            throw e;
        }
        LOG.log(System.Logger.Level.INFO, "Raft node " + config.nodeId() + (s.transport.boundAddress() == null
            ? " with no RPC port (no peers)" : " listening for RPC" + (tls != null ? " over TLS" : "") + " on "
            + s.transport.boundAddress()) + " with "
            + group.size() + " shard(s), data in " + config.dataDir());
        return s;
    }

    static <T> T await(CompletableFuture<T> f, String what) {
        try {
            return f.get(60, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            throw new IllegalStateException("cannot " + what + ": " + c.getMessage(), c);
        } catch (TimeoutException e) {
            throw new IllegalStateException("cannot " + what + ": no answer in 60 s", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while trying to " + what, e);
        }
    }

    public int nodeId() {
        return config.nodeId();
    }

    public RaftServerConfig config() {
        return config;
    }

    public ShardGroup shardGroup() {
        return group;
    }

    /** The bound RPC address. */
    public InetSocketAddress rpcAddress() {
        return transport.boundAddress();
    }

    public RaftTransport transport() {
        return transport;
    }

    /** Shard {@code id}'s part (use it on that shard's thread only). */
    public RaftShard shard(int id) {
        return shards[id];
    }

    /** Any non-shard thread: runs {@code fn} on shard {@code id}'s part and returns its promise's outcome. */
    public <T> CompletableFuture<T> onShard(int id, Function<RaftShard, Promise<T>> fn) {
        return group.callAsync(id, sh -> fn.apply(shards[id]));
    }

    /**
     * Marks node {@code nodeId} as handing its leaderships away (it is stopping, or in maintenance) or not: the
     * preferred-leader balancing of this node's groups gives no leadership to an excluded node. Call from one
     * thread at a time (the broker does it on its first shard); any shard may read it.
     */
    public void setLeadershipExcluded(int nodeId, boolean excluded) {
        int[] cur = leadershipExcluded;
        boolean in = Arrays.binarySearch(cur, nodeId) >= 0;
        if (in == excluded) {
            return;
        }
        int[] next;
        if (excluded) {
            next = Arrays.copyOf(cur, cur.length + 1);
            next[cur.length] = nodeId;
            Arrays.sort(next);
        } else {
            next = Arrays.stream(cur).filter(id -> id != nodeId).toArray();
        }
        leadershipExcluded = next;
    }

    /**
     * The nodes in maintenance (the controller state's {@code NodeModes}, ascending): like the nodes handing their
     * leaderships away before stopping, the preferred-leader balancing of this node's groups gives them no leadership.
     * Any thread; the broker sets it from each new controller state.
     */
    public void setInMaintenance(int[] nodes) {
        int[] sorted = nodes.clone();
        Arrays.sort(sorted);
        inMaintenance = sorted;
    }

    /**
     * Whether node {@code nodeId} is handing its leaderships away ({@link #setLeadershipExcluded}) or is in
     * maintenance ({@link #setInMaintenance}).
     */
    public boolean isLeadershipExcluded(int nodeId) {
        return Arrays.binarySearch(leadershipExcluded, nodeId) >= 0 || Arrays.binarySearch(inMaintenance, nodeId) >= 0;
    }

    /** Any non-shard thread: the transport's counters summed over shards. */
    public CompletableFuture<TransportMetrics> transportMetrics() {
        return transport.metrics();
    }

    /**
     * Stops every group (pending replications fail with STOPPED), closes their logs and the transport. Blocks;
     * call from a non-shard thread. The shard group keeps running.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (int i = 0; i < shards.length; i++) {
            if (shards[i] == null) {
                continue;
            }
            int id = i;
            try {
                group.callAsync(i, sh -> shards[id].close()).get(60, TimeUnit.SECONDS);
            } catch (Exception e) {
                LOG.log(System.Logger.Level.WARNING, "stopping Raft on shard " + i + " failed: " + e);
            }
        }
        if (transport != null) {
            transport.close();
        }
        for (int i = 0; i < shards.length; i++) {
            int id = i;
            try {
                group.call(i, sh -> {
                    pools.release(id);
                    return null;
                }).get(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                LOG.log(System.Logger.Level.WARNING, "releasing the storage pools of shard " + i + " failed: " + e);
            }
        }
    }

    @Override
    public String toString() {
        return "RaftServer[node " + config.nodeId() + ", " + shards.length + " shards, rpc "
            + (transport == null ? "-" : transport.boundAddress()) + "]";
    }
}
