package dev.isthmus.raft;

import org.agrona.collections.Int2ObjectHashMap;
import org.agrona.collections.Long2ObjectHashMap;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.LongSupplier;
import java.util.random.RandomGenerator;

/**
 * The Raft groups one node hosts on one shard, multiplexed over one {@link Transport}: it routes messages to
 * groups by id, ticks their timers, and sends one coalesced {@link Heartbeat} per peer node per heartbeat
 * interval carrying an item for every group this node leads and the peer replicates (CockroachDB's and
 * Redpanda's heartbeat coalescing: heartbeat messages grow with node pairs, not with groups).
 *
 * <h2>Driving it</h2>
 * <pre>
 *   every loop turn:   node.receive(msg) for each message that arrived
 *                      (storage completions call the groups' RaftLog.Callbacks directly)
 *                      group.propose(...) from request handlers
 *                      node.tick()   (cheap when no timer is due; call at least every few milliseconds)
 *                      node.flush()  (sends batched AppendEntries, applies commits: once per turn)
 * </pre>
 * {@link #tick()} and {@link #receive} flush at their end; proposals and storage completions only mark
 * their group, so a burst of them becomes one AppendEntries per follower at the next {@link #flush()}.
 *
 * <h2>Clock and randomness</h2>
 * Time comes only from the injected nanosecond clock (read once per call) and randomness only from the
 * injected generator, so a simulator that controls both, the transport and the storage replays a run exactly.
 *
 * <h2>Threads</h2>
 * Owned by one shard thread; not thread-safe. Nothing blocks.
 */
public final class RaftNode implements RaftGroup.Host {
    private final int nodeId;
    private final RaftConfig config;
    private final Transport transport;
    private final LongSupplier clockNs;
    private final RandomGenerator random;
    private final NodeMetrics metrics = new NodeMetrics();
    private final Long2ObjectHashMap<RaftGroup> groups = new Long2ObjectHashMap<>();
    private final List<RaftGroup> groupList = new ArrayList<>();
    private List<RaftGroup> dirty = new ArrayList<>();
    private List<RaftGroup> flushing = new ArrayList<>();
    private final Int2ObjectHashMap<HeartbeatBuilder> heartbeats = new Int2ObjectHashMap<>();
    private final long[] reply = new long[3];
    private long nowMs;
    private long lastHeartbeatMs = Long.MIN_VALUE / 4;
    private boolean flushingNow;
    private boolean mayLead = true;
    private long catchUpBytesPerSec;
    private long catchUpTokens;
    private long catchUpRefillMs;

    /**
     * @param nodeId    this node's id (>= 0), unique in the cluster
     * @param transport where messages go
     * @param clockNs   a monotonic nanosecond clock ({@link System#nanoTime()} in production)
     * @param random    seeded generator for election timeouts
     */
    public RaftNode(int nodeId, RaftConfig config, Transport transport, LongSupplier clockNs, RandomGenerator random) {
        if (nodeId < 0) {
            throw new IllegalArgumentException("node id must be >= 0, not " + nodeId);
        }
        this.nodeId = nodeId;
        this.config = config;
        this.transport = transport;
        this.clockNs = clockNs;
        this.random = random;
        this.nowMs = clockNs.getAsLong() / 1_000_000L;
    }

    public int nodeId() {
        return nodeId;
    }

    public RaftConfig config() {
        return config;
    }

    public NodeMetrics metrics() {
        return metrics;
    }

    /**
     * Whether this node's members may lead: false makes them stop campaigning (election timeouts and TimeoutNow
     * are ignored; they still vote and replicate), so that leaderships handed away before a shutdown or for
     * maintenance are not taken back. Members that lead keep leading until they hand leadership away.
     */
    public void setMayLead(boolean allowed) {
        this.mayLead = allowed;
    }

    @Override
    public boolean mayLead() {
        return mayLead;
    }

    /**
     * Limits what the leaders on this node send to learners (members catching up before they vote, e.g. the new
     * replicas of a reassignment) to {@code bytesPerSec} bytes per second, entries and snapshot chunks together,
     * as Kafka's {@code leader.replication.throttled.rate} limits a leader's replication to throttled replicas.
     * 0 removes the limit. Voters are never limited: their traffic is what commits writes. A token bucket holding
     * at most one second's worth; a send may overdraw it (an append larger than the rate still goes, and the debt is
     * paid before the next), so the rate holds on average and catch-up always progresses.
     */
    public void setCatchUpRate(long bytesPerSec) {
        if (bytesPerSec < 0) {
            throw new IllegalArgumentException("catch-up rate must be >= 0, not " + bytesPerSec);
        }
        catchUpBytesPerSec = bytesPerSec;
        catchUpTokens = bytesPerSec;
        catchUpRefillMs = nowMs;
    }

    /** The catch-up rate in bytes per second (0: unlimited). */
    public long catchUpRate() {
        return catchUpBytesPerSec;
    }

    @Override
    public long catchUpAllowance() {
        long rate = catchUpBytesPerSec;
        if (rate <= 0) {
            return Long.MAX_VALUE;
        }
        long elapsedMs = Math.min(1000, nowMs - catchUpRefillMs);
        long add = elapsedMs <= 0 ? 0 : elapsedMs == 1000 || rate > Long.MAX_VALUE / 1000 ? rate
            : rate * elapsedMs / 1000;
        if (add > 0) { // the clock moves on only with what it added, so slow rates do not lose their fractions
            catchUpRefillMs = nowMs;
            catchUpTokens = Math.min(rate, catchUpTokens + add);
        }
        if (catchUpTokens <= 0) {
            metrics.catchUpDelays++;
        }
        return catchUpTokens;
    }

    @Override
    public void catchUpSent(long bytes) {
        if (catchUpBytesPerSec > 0) {
            catchUpTokens -= bytes;
            metrics.catchUpBytes += bytes;
        }
    }

    /**
     * Hosts group {@code groupId} on this node, recovering it from {@code log}. {@code bootstrap} is the
     * membership used when neither the log nor its snapshot records one: every initial member of a new group
     * gets the same; a node joining an existing group passes {@link Configuration#EMPTY} and learns the
     * membership from the leader.
     */
    public RaftGroup addGroup(long groupId, RaftLog log, Configuration bootstrap, StateMachine stateMachine,
                              GroupListener listener) {
        if (groups.containsKey(groupId)) {
            throw new IllegalArgumentException("group " + groupId + " already exists on node " + nodeId);
        }
        refreshClock();
        RaftGroup g = new RaftGroup(this, nodeId, groupId, config, log, bootstrap, stateMachine, listener);
        groups.put(groupId, g);
        groupList.add(g);
        return g;
    }

    /** Stops hosting {@code groupId} (its storage is the caller's to close). Messages for it are then dropped. */
    public void removeGroup(long groupId) {
        RaftGroup g = groups.remove(groupId);
        if (g != null) {
            g.stop();
            groupList.remove(g);
            dirty.remove(g);
        }
    }

    /** The group, or null when not hosted here. */
    public RaftGroup group(long groupId) {
        return groups.get(groupId);
    }

    /** The hosted groups in creation order (do not modify). */
    public List<RaftGroup> groups() {
        return groupList;
    }

    /** Runs every group's timers and, once per heartbeat interval, sends the coalesced heartbeats. */
    public void tick() {
        refreshClock();
        for (int i = 0; i < groupList.size(); i++) {
            groupList.get(i).tick();
        }
        if (nowMs - lastHeartbeatMs >= config.heartbeatIntervalMs()) {
            lastHeartbeatMs = nowMs;
            sendHeartbeats();
        }
        flush();
    }

    /** Delivers one message addressed to this node. */
    public void receive(RaftMessage m) {
        refreshClock();
        metrics.messagesReceived++;
        if (m.to() != nodeId) {
            metrics.unknownGroupMessages++;
            return;
        }
        switch (m) {
            case GroupMessage gm -> {
                RaftGroup g = groups.get(gm.groupId());
                if (g == null) {
                    metrics.unknownGroupMessages++;
                } else {
                    g.receive(gm);
                }
            }
            case Heartbeat hb -> onHeartbeat(hb);
            case HeartbeatResponse hr -> onHeartbeatResponse(hr);
        }
        flush();
    }

    /** Sends what groups have ready (batched AppendEntries), applies commits. Call once per loop turn. */
    public void flush() {
        if (flushingNow) {
            return;
        }
        flushingNow = true;
        try {
            refreshClock();
            for (int round = 0; round < 4 && !dirty.isEmpty(); round++) {
                List<RaftGroup> l = dirty;
                dirty = flushing;
                flushing = l;
                for (int i = 0; i < l.size(); i++) {
                    RaftGroup g = l.get(i);
                    g.flush();
                }
                l.clear();
            }
        } finally {
            flushingNow = false;
        }
    }

    private void refreshClock() {
        long ms = clockNs.getAsLong() / 1_000_000L;
        // A clock that steps back is treated as standing still: timers never run backwards.
        if (ms > nowMs) {
            nowMs = ms;
        }
    }

    // ------------------------------------------------------------------------------- coalesced heartbeats

    private void sendHeartbeats() {
        for (int i = 0; i < groupList.size(); i++) {
            RaftGroup g = groupList.get(i);
            if (!g.isLeader()) {
                continue;
            }
            for (int peer : g.configuration().members()) {
                if (peer == nodeId) {
                    continue;
                }
                long commit = g.heartbeatItem(peer);
                if (commit != Long.MIN_VALUE) {
                    builder(peer).add(g.groupId(), g.term(), commit, 0);
                }
            }
        }
        heartbeats.forEach((peer, b) -> {
            if (b.size > 0) {
                metrics.heartbeatMessagesSent++;
                metrics.heartbeatItemsSent += b.size;
                send(new Heartbeat(nodeId, peer, b.ids(), b.a(), b.b()));
                b.clear();
            }
        });
    }

    private HeartbeatBuilder builder(int peer) {
        HeartbeatBuilder b = heartbeats.get(peer);
        if (b == null) {
            b = new HeartbeatBuilder();
            heartbeats.put(peer, b);
        }
        return b;
    }

    private void onHeartbeat(Heartbeat hb) {
        HeartbeatBuilder out = new HeartbeatBuilder();
        for (int i = 0; i < hb.size(); i++) {
            RaftGroup g = groups.get(hb.groupIds()[i]);
            if (g == null) {
                metrics.unknownGroupMessages++;
                continue;
            }
            if (g.onHeartbeat(hb.from(), hb.terms()[i], hb.commitOffsets()[i], reply)) {
                out.add(g.groupId(), reply[0], reply[1], reply[2]);
            }
        }
        if (out.size > 0) {
            metrics.heartbeatResponsesSent++;
            metrics.heartbeatResponseItemsSent += out.size;
            send(new HeartbeatResponse(nodeId, hb.from(), out.ids(), out.a(), out.b(), out.c()));
        }
    }

    private void onHeartbeatResponse(HeartbeatResponse hr) {
        for (int i = 0; i < hr.size(); i++) {
            RaftGroup g = groups.get(hr.groupIds()[i]);
            if (g == null) {
                metrics.unknownGroupMessages++;
                continue;
            }
            g.onHeartbeatResponse(hr.from(), hr.terms()[i], hr.matchOffsets()[i], hr.lastOffsets()[i]);
        }
    }

    /** Growable columns of (group id, three longs). */
    private static final class HeartbeatBuilder {
        long[] ids = new long[16];
        long[] a = new long[16];
        long[] b = new long[16];
        long[] c = new long[16];
        int size;

        void add(long id, long x, long y, long z) {
            if (size == ids.length) {
                ids = Arrays.copyOf(ids, size * 2);
                a = Arrays.copyOf(a, size * 2);
                b = Arrays.copyOf(b, size * 2);
                c = Arrays.copyOf(c, size * 2);
            }
            ids[size] = id;
            a[size] = x;
            b[size] = y;
            c[size] = z;
            size++;
        }

        long[] ids() {
            return Arrays.copyOf(ids, size);
        }

        long[] a() {
            return Arrays.copyOf(a, size);
        }

        long[] b() {
            return Arrays.copyOf(b, size);
        }

        long[] c() {
            return Arrays.copyOf(c, size);
        }

        void clear() {
            size = 0;
        }
    }

    // ------------------------------------------------------------------------------- Host

    @Override
    public long nowMs() {
        return nowMs;
    }

    @Override
    public RandomGenerator random() {
        return random;
    }

    @Override
    public void send(RaftMessage message) {
        metrics.messagesSent++;
        transport.send(message);
    }

    @Override
    public void markDirty(RaftGroup group) {
        dirty.add(group);
    }

    @Override
    public NodeMetrics nodeMetrics() {
        return metrics;
    }

    @Override
    public String toString() {
        return "RaftNode[" + nodeId + ", " + groupList.size() + " groups]";
    }
}
