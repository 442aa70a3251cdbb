package dev.isthmus.raft.server;

import dev.isthmus.log.LogConfig;
import dev.isthmus.log.LogManager;
import dev.isthmus.raft.RaftConfig;
import dev.isthmus.raft.net.TransportConfig;
import dev.isthmus.raft.storage.LogEngineRaftLog;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Settings of a {@link RaftServer}. Immutable; {@link #of} gives the defaults, {@code with*} change one part.
 *
 * @param nodeId           this node's id (>= 0), unique in the cluster; also its broker id
 * @param rpcListen        where the RPC port listens (port 0 picks a free one); null = no RPC port (a single node
 *                         with no peers: it opens no port its configuration does not name)
 * @param rpcAdvertised    the address peers dial (sent in hellos and broker registrations); null = the bound one
 * @param peers            known peers' RPC addresses (at least the controller seeds); more are learned from
 *                         hellos and broker registrations
 * @param controllerVoters the seed nodes that vote in the controller group (the same set on every node); a
 *                         node outside it joins the controller group as a learner after it registers. The group
 *                         itself is the embedding application's (kafka-gateway's {@code Controller}); this server
 *                         only carries the set. Empty = no controller (a plain replication host)
 * @param dataDir          groups live in {@code dataDir/groups/<groupId>} unless given a directory
 * @param raft             protocol timing and flow control (shared by all groups of the node)
 * @param transport        connection settings
 * @param logConfig        segment settings of the controller's log and the default for groups
 * @param logOptions       tail cache and checkpoint spacing of each group's log
 * @param tickIntervalMs   how often each shard runs its Raft timers
 * @param retentionCheckIntervalMs how often each shard checks its groups' logs against their retention.ms and
 *                         retention.bytes (the leader of a group past them moves its log start, see
 *                         {@link ReplicatedLog#enforceRetention})
 * @param compaction       how each shard compacts its {@code cleanup.policy=compact} groups (key map, budget per
 *                         loop turn, check interval, dirty ratio, lag)
 */
public record RaftServerConfig(int nodeId, InetSocketAddress rpcListen, InetSocketAddress rpcAdvertised,
                               Map<Integer, InetSocketAddress> peers, Set<Integer> controllerVoters, Path dataDir,
                               RaftConfig raft, TransportConfig transport, LogConfig logConfig,
                               LogEngineRaftLog.Options logOptions, long tickIntervalMs, long retentionCheckIntervalMs,
                               LogManager.CompactionSettings compaction) {
    public RaftServerConfig {
        if (nodeId < 0) {
            throw new IllegalArgumentException("node id must be >= 0, not " + nodeId);
        }
        if (rpcListen == null && !peers.isEmpty()) {
            throw new IllegalArgumentException("a node with peers needs an RPC listen address");
        }
        if (dataDir == null || raft == null || transport == null || logConfig == null
            || logOptions == null || compaction == null) {
            throw new IllegalArgumentException("dataDir, raft, transport, logConfig, logOptions and compaction"
                + " are required");
        }
        if (retentionCheckIntervalMs <= 0) {
            throw new IllegalArgumentException("retentionCheckIntervalMs must be positive, not " + retentionCheckIntervalMs);
        }
        peers = Map.copyOf(peers);
        controllerVoters = Set.copyOf(new TreeSet<>(controllerVoters));
        for (int v : controllerVoters) {
            if (v != nodeId && !peers.containsKey(v)) {
                throw new IllegalArgumentException("controller voter " + v + " has no address in the peers map");
            }
        }
        if (tickIntervalMs <= 0 || tickIntervalMs > raft.heartbeatIntervalMs()) {
            throw new IllegalArgumentException("tickIntervalMs must be in [1, heartbeatIntervalMs], not " + tickIntervalMs);
        }
    }

    /** Default interval of the retention checks: 30 s. */
    public static final long DEFAULT_RETENTION_CHECK_INTERVAL_MS = 30_000;

    /**
     * Defaults: Raft's defaults (150 ms heartbeats, 1.5-3 s elections), the transport's defaults for cluster
     * {@code clusterId}, 256 MiB segments, 10 ms ticks, retention checks every 30 s, the log-engine's compaction
     * defaults.
     */
    public static RaftServerConfig of(int nodeId, String clusterId, InetSocketAddress rpcListen,
                                      Map<Integer, InetSocketAddress> peers, Set<Integer> controllerVoters,
                                      Path dataDir) {
        return new RaftServerConfig(nodeId, rpcListen, null, peers, controllerVoters, dataDir, RaftConfig.defaults(),
            TransportConfig.defaults(clusterId), LogConfig.defaults().withSegmentBytes(256L << 20),
            LogEngineRaftLog.Options.defaults(), 10, DEFAULT_RETENTION_CHECK_INTERVAL_MS,
            LogManager.CompactionSettings.defaults());
    }

    public RaftServerConfig withRaft(RaftConfig raft) {
        return new RaftServerConfig(nodeId, rpcListen, rpcAdvertised, peers, controllerVoters, dataDir, raft, transport,
            logConfig, logOptions, Math.min(tickIntervalMs, raft.heartbeatIntervalMs()), retentionCheckIntervalMs,
            compaction);
    }

    public RaftServerConfig withTransport(TransportConfig transport) {
        return new RaftServerConfig(nodeId, rpcListen, rpcAdvertised, peers, controllerVoters, dataDir, raft, transport,
            logConfig, logOptions, tickIntervalMs, retentionCheckIntervalMs, compaction);
    }

    public RaftServerConfig withLog(LogConfig logConfig, LogEngineRaftLog.Options logOptions) {
        return new RaftServerConfig(nodeId, rpcListen, rpcAdvertised, peers, controllerVoters, dataDir, raft, transport,
            logConfig, logOptions, tickIntervalMs, retentionCheckIntervalMs, compaction);
    }

    public RaftServerConfig withAdvertised(InetSocketAddress rpcAdvertised) {
        return new RaftServerConfig(nodeId, rpcListen, rpcAdvertised, peers, controllerVoters, dataDir, raft, transport,
            logConfig, logOptions, tickIntervalMs, retentionCheckIntervalMs, compaction);
    }

    public RaftServerConfig withTickIntervalMs(long tickIntervalMs) {
        return new RaftServerConfig(nodeId, rpcListen, rpcAdvertised, peers, controllerVoters, dataDir, raft, transport,
            logConfig, logOptions, tickIntervalMs, retentionCheckIntervalMs, compaction);
    }

    public RaftServerConfig withRetentionCheckIntervalMs(long retentionCheckIntervalMs) {
        return new RaftServerConfig(nodeId, rpcListen, rpcAdvertised, peers, controllerVoters, dataDir, raft, transport,
            logConfig, logOptions, tickIntervalMs, retentionCheckIntervalMs, compaction);
    }

    public RaftServerConfig withCompaction(LogManager.CompactionSettings compaction) {
        return new RaftServerConfig(nodeId, rpcListen, rpcAdvertised, peers, controllerVoters, dataDir, raft, transport,
            logConfig, logOptions, tickIntervalMs, retentionCheckIntervalMs, compaction);
    }

    /** The directory of group {@code groupId} when none is given. */
    public Path groupDir(long groupId) {
        return dataDir.resolve("groups").resolve(Long.toString(groupId));
    }
}
