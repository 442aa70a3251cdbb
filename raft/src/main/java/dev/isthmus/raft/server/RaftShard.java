package dev.isthmus.raft.server;

import dev.isthmus.arena.Subsystem;
import dev.isthmus.log.BatchCache;
import dev.isthmus.log.LogCleaner;
import dev.isthmus.log.LogConfig;
import dev.isthmus.log.LogManager;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.GroupListener;
import dev.isthmus.raft.RaftErrors;
import dev.isthmus.raft.RaftGroup;
import dev.isthmus.raft.RaftMessage;
import dev.isthmus.raft.RaftNode;
import dev.isthmus.raft.StateMachine;
import dev.isthmus.raft.net.ShardTransport;
import dev.isthmus.raft.storage.LogEngineRaftLog;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.Shard;
import org.agrona.collections.Long2ObjectHashMap;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The Raft groups of one node on one shard: a {@link RaftNode} (their protocol state, timers and coalesced
 * heartbeats), its {@link ShardTransport}, and the groups' {@link LogEngineRaftLog}s in the shard's storage pools.
 *
 * <h2>The loop</h2>
 * A timer ticks the node every {@link RaftServerConfig#tickIntervalMs()}; received messages are stepped as
 * they arrive; a shard poller, once per loop turn after the turn's proposals, flushes the node (one batched
 * AppendEntries per follower for everything proposed this turn) and then every log that asked for it (one
 * fdatasync per log per turn, in parallel with the sends: the flush debouncing of the design). The
 * transport's poller, registered after this one, then encodes and sends what the flush produced.
 *
 * <h2>Housekeeping: the shard's {@link LogManager}</h2>
 * The groups' logs are opened through one {@link LogManager} per shard over the shard's pools, batch cache and
 * zeroed segment stock ({@link StoragePools}): it flushes every log appended to once per loop turn, serves the
 * write-behind waiters and steps the shard's {@link LogCleaner}, so none of that is written twice. What stays here is
 * what is replicated: every
 * {@link RaftServerConfig#retentionCheckIntervalMs()} the leader of each group past its retention.ms or
 * retention.bytes moves the log start with a replicated prefix truncation ({@link ReplicatedLog#enforceRetention});
 * every compaction check interval each {@code cleanup.policy=compact} group is handed to the shard's
 * {@link LogCleaner}, which the poller steps within its per-turn budget (one log at a time, below the commit
 * offset, every batch kept with its offsets and epoch).
 *
 * <h2>Threads</h2>
 * Owned by its shard's thread: every method must be called there (from another thread use
 * {@link RaftServer#onShard}). Groups live here for their whole life; the owner (the gateway) places each
 * partition's group on the shard that owns the partition.
 */
public final class RaftShard implements ShardTransport.Inbox {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.raft");

    private final RaftServer server;
    private final Shard shard;
    private final RaftServerConfig config;
    private final RaftNode node;
    private final BatchCache batchCache;
    /** The shard's log housekeeping: the groups' logs open, flush and compact through it. */
    private final LogManager logs;
    private final Long2ObjectHashMap<ReplicatedLog> groups = new Long2ObjectHashMap<>();
    private final Long2ObjectHashMap<Promise<ReplicatedLog>> opening = new Long2ObjectHashMap<>();
    private List<LogEngineRaftLog> toPoll = new ArrayList<>();
    private List<LogEngineRaftLog> polling = new ArrayList<>();
    private ShardTransport transport;
    private long tickTimer = -1;
    private long balanceTimer = -1;
    private long retentionTimer = -1;
    private long compactionTimer = -1;
    private boolean closing;

    RaftShard(RaftServer server, Shard shard, RaftServerConfig config, StoragePools pools) {
        this.server = server;
        this.shard = shard;
        this.config = config;
        this.batchCache = pools.batchCache(shard.id());
        this.logs = new LogManager(shard.engine(), config.groupDir(0).getParent(), pools.writePool(shard.id()),
            pools.readPool(shard.id()), batchCache, config.compaction());
        logs.useZeroedSegments(pools.zeroedSegments(shard.id()));
        if (batchCache != null) {
            // Batches proposed and received here live in this arena's RAFT budget (KafkaBatchPayload); when it is
            // short, the tail caches of this shard's logs give back what is durable before anyone fails.
            batchCache.arena().registerReclaimer(Subsystem.RAFT, this::shedTailCaches);
        }
        this.node = new RaftNode(config.nodeId(), config.raft(), m -> {
            if (transport != null) {
                transport.send(m);
            }
        }, shard.clock()::nanoTime, new SplittableRandom(System.nanoTime() ^ ((long) config.nodeId() << 40) ^ shard.id()));
        shard.addPoller(this::poll);
        scheduleTick();
        scheduleBalance();
        scheduleRetention();
        scheduleCompaction();
    }

    /** The RAFT budget's reclaim hook: durable arena entries leave the groups' tail caches until enough went. */
    private long shedTailCaches(long wanted) {
        // An allocation anywhere on this shard may ask (when the whole arena is short), possibly in the middle of an
        // iteration of groups.values(), whose iterator agrona reuses: walk the map without one.
        long[] got = {0};
        groups.forEachLong((id, g) -> {
            if (got[0] < wanted) {
                got[0] += g.storage().shedArenaEntries(wanted - got[0]);
            }
        });
        return got[0];
    }

    void bind(ShardTransport transport) {
        this.transport = transport;
        if (batchCache != null) {
            // Followers' batches land in this shard's arena, like the leader's (see KafkaBatchPayload).
            transport.usePayloadArena(batchCache.arena());
        }
    }

    public Shard shard() {
        return shard;
    }

    public RaftServer server() {
        return server;
    }

    public RaftNode node() {
        return node;
    }

    public ShardTransport transport() {
        return transport;
    }

    /** The group hosted here, or null. */
    public ReplicatedLog group(long groupId) {
        return groups.get(groupId);
    }

    /** The shard's batch cache the groups' logs use, or null (see {@link StoragePools#batchCache}). */
    public BatchCache batchCache() {
        return batchCache;
    }

    /** The groups hosted here (do not modify). */
    public java.util.Collection<ReplicatedLog> groups() {
        return groups.values();
    }

    /**
     * Hosts group {@code groupId} here with its log in {@code dir} (created if missing, recovered otherwise).
     *
     * @param bootstrap the membership when the log records none: every initial member of a new group passes
     *                  the same voters; a node added to an existing group passes {@link Configuration#EMPTY}
     *                  and learns the membership from the leader
     * @param stateMachine {@link StateMachine#NONE} for a partition (its log is its state)
     * @param listener  role, commit (high watermark) and configuration events, on this shard
     * @return a promise of the group once its log is open and recovered; failed with a message naming the
     *         problem when the log cannot be opened or the group is already here
     */
    public Promise<ReplicatedLog> addGroup(long groupId, Path dir, Configuration bootstrap, LogConfig logConfig,
                                           StateMachine stateMachine, GroupListener listener) {
        shard.checkOwner();
        if (closing) {
            return Promise.failed(new IllegalStateException("the Raft server of node " + config.nodeId() + " is stopping"));
        }
        if (groups.containsKey(groupId) || opening.containsKey(groupId)) {
            return Promise.failed(new IllegalArgumentException("group " + groupId + " is already hosted on shard "
                + shard.id() + " of node " + config.nodeId()));
        }
        Promise<ReplicatedLog> p = new Promise<>();
        opening.put(groupId, p);
        LogEngineRaftLog.open(logs, dir, logConfig, config.logOptions(), l -> toPoll.add(l),
            (log, error) -> {
                opening.remove(groupId);
                if (error != null) {
                    p.fail(new IllegalStateException("cannot open the log of group " + groupId + " in " + dir + ": "
                        + error.getMessage(), error));
                    return;
                }
                if (closing) {
                    log.close(() -> p.fail(new IllegalStateException("the Raft server of node " + config.nodeId()
                        + " stopped while group " + groupId + " was opening")));
                    return;
                }
                ReplicatedLog rl = new ReplicatedLog(this, groupId, dir, log, listener);
                RaftGroup g;
                try {
                    g = node.addGroup(groupId, log, bootstrap, stateMachine, rl);
                } catch (RuntimeException e) {
                    log.close(() -> p.fail(e));
                    return;
                }
                rl.bind(g);
                groups.put(groupId, rl);
                transport.announceGroup(groupId);
                p.complete(rl);
            });
        return p;
    }

    /** {@link #addGroup} in {@link RaftServerConfig#groupDir} with the server's log settings. */
    public Promise<ReplicatedLog> addGroup(long groupId, Configuration bootstrap, StateMachine stateMachine,
                                           GroupListener listener) {
        return addGroup(groupId, config.groupDir(groupId), bootstrap, config.logConfig(), stateMachine, listener);
    }

    /**
     * Stops hosting {@code groupId}: the member stops (pending replications fail with STOPPED), messages for
     * it are dropped, and its log is closed. The files stay; the caller deletes the directory if the replica
     * is gone for good. Completes once the log is closed (at once when the group is not here).
     */
    public Promise<Void> removeGroup(long groupId) {
        shard.checkOwner();
        ReplicatedLog rl = groups.remove(groupId);
        if (rl == null) {
            return Promise.completed(null);
        }
        transport.withdrawGroup(groupId);
        node.removeGroup(groupId);
        rl.failAll(RaftErrors.STOPPED, "group " + groupId + " was removed from node " + config.nodeId());
        if (rl.storage().log() != null) {
            logs.cleaner().abort(rl.storage().log());
        }
        Promise<Void> p = new Promise<>();
        rl.storage().close(() -> p.complete(null));
        return p;
    }

    @Override
    public void onRaftMessage(RaftMessage message) {
        if (!closing) {
            node.receive(message);
        }
    }

    private void scheduleTick() {
        tickTimer = shard.schedule(config.tickIntervalMs() * 1_000_000L, () -> {
            tickTimer = -1;
            if (closing) {
                return;
            }
            node.tick();
            scheduleTick();
        });
    }

    /** Interval of preferred-leader checks: two maximum election timeouts (a new leader settles first). */
    private long balanceIntervalMs() {
        return Math.max(1000, 2 * config.raft().electionTimeoutMaxMs());
    }

    private void scheduleBalance() {
        balanceTimer = shard.schedule(balanceIntervalMs() * 1_000_000L, () -> {
            balanceTimer = -1;
            if (closing) {
                return;
            }
            int started = 0;
            for (ReplicatedLog rl : groups.values()) {
                if (started >= MAX_TRANSFERS_PER_ROUND) {
                    break;
                }
                if (rl.balanceLeadership()) {
                    started++;
                }
            }
            scheduleBalance();
        });
    }

    private static final int MAX_TRANSFERS_PER_ROUND = 64;

    /**
     * Every {@link RaftServerConfig#retentionCheckIntervalMs()}: each group this node leads whose log exceeds its
     * retention.ms or retention.bytes (whole segments, as the log-engine decides) moves its log start through a
     * replicated prefix truncation, never past the high watermark (what LogManager's retention does for plain logs).
     */
    private void scheduleRetention() {
        retentionTimer = shard.schedule(config.retentionCheckIntervalMs() * 1_000_000L, () -> {
            retentionTimer = -1;
            if (closing) {
                return;
            }
            long now = shard.clock().currentTimeMillis();
            for (ReplicatedLog rl : groups.values()) {
                rl.enforceRetention(now).whenComplete((start, error) -> {
                    if (error != null) {
                        LOG.log(System.Logger.Level.DEBUG, "retention of group " + rl.groupId() + " on node "
                            + config.nodeId() + " not applied now: " + error.getMessage());
                    }
                });
            }
            scheduleRetention();
        });
    }

    /**
     * Every compaction check interval: each {@code cleanup.policy=compact} group's log is handed to the shard's
     * cleaner, which compacts it in the background (within its per-turn budget, one log at a time) when its dirty
     * ratio calls for it, only below the commit offset and keeping every batch's offsets and epoch.
     */
    private void scheduleCompaction() {
        long intervalMs = Math.max(1, config.compaction().checkIntervalMs());
        compactionTimer = shard.schedule(intervalMs * 1_000_000L, () -> {
            compactionTimer = -1;
            if (closing) {
                return;
            }
            for (ReplicatedLog rl : groups.values()) {
                rl.compact(logs.cleaner());
            }
            scheduleCompaction();
        });
    }

    /** The shard's cleaner of compacted groups (for metrics and tests). */
    public LogCleaner cleaner() {
        return logs.cleaner();
    }

    /** The shard's log housekeeper (its disk statistics, compactions, pools). */
    public LogManager logs() {
        return logs;
    }

    /**
     * Once per loop turn: flush the node (sends, applies), then the groups' storage that asked (appends waiting for
     * memory, callbacks), then the shard's log housekeeping (one fdatasync per log appended to, the write-behind
     * waiters, a compaction step).
     */
    private int poll() {
        int work = 0;
        if (!closing) {
            node.flush();
        }
        for (int round = 0; round < 2 && !toPoll.isEmpty(); round++) {
            List<LogEngineRaftLog> l = toPoll;
            toPoll = polling;
            polling = l;
            for (int i = 0; i < l.size(); i++) {
                LogEngineRaftLog log = l.get(i);
                if (i > 0 && log == l.get(i - 1)) {
                    continue;
                }
                work += log.poll();
            }
            l.clear();
        }
        work += logs.poll();
        if (work > 0 && !closing) {
            node.flush();
        }
        if (batchCache != null && batchCache.arena().isOwnerThread() && !batchCache.arena().isClosed()) {
            // Chains read from the cache and released on other threads come back here (cheap when none did).
            work += batchCache.arena().drainRemoteFrees();
        }
        return work;
    }

    /** Stops every group and closes their logs; completes when all are closed. */
    Promise<Void> close() {
        closing = true;
        if (tickTimer >= 0) {
            shard.cancelTimer(tickTimer);
            tickTimer = -1;
        }
        if (balanceTimer >= 0) {
            shard.cancelTimer(balanceTimer);
            balanceTimer = -1;
        }
        if (retentionTimer >= 0) {
            shard.cancelTimer(retentionTimer);
            retentionTimer = -1;
        }
        if (compactionTimer >= 0) {
            shard.cancelTimer(compactionTimer);
            compactionTimer = -1;
        }
        List<Promise<Void>> closes = new ArrayList<>();
        for (long id : new ArrayList<>(groups.keySet())) {
            ReplicatedLog rl = groups.remove(id);
            node.removeGroup(id);
            rl.failAll(RaftErrors.STOPPED, "node " + config.nodeId() + " is stopping");
            if (rl.storage().log() != null) {
                logs.cleaner().abort(rl.storage().log());
            }
            Promise<Void> p = new Promise<>();
            rl.storage().close(() -> p.complete(null));
            closes.add(p);
        }
        Promise<Void> all = new Promise<>();
        Promise.whenAllSettled(closes).whenComplete((v, t) -> {
            // Deferred log callbacks may still want a poll to finish closing; the logs are closed now.
            LOG.log(System.Logger.Level.DEBUG, "node " + config.nodeId() + " shard " + shard.id() + ": groups closed");
            // No log is open by name here: this closes the cleaner (its key map and buffers go back before the pools,
            // and a cache's arena, are released).
            logs.closeAll(() -> all.complete(null));
        });
        return all;
    }

    @Override
    public String toString() {
        return "RaftShard[node " + config.nodeId() + ", shard " + shard.id() + ", " + groups.size() + " groups]";
    }
}
