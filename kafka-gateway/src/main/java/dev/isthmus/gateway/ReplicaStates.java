package dev.isthmus.gateway;

import dev.isthmus.raft.net.RpcMessage;
import dev.isthmus.raft.net.ShardTransport;
import dev.isthmus.raft.server.RaftServer;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.Shard;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Who leads each partition, in which epoch, and which of its replicas are in sync, as the leaders publish it, on
 * every shard of every node: what Metadata, DescribeTopicPartitions, FindCoordinator and the metrics report.
 *
 * <h2>Where the state comes from</h2>
 * Only a partition's leader knows its followers' progress (Raft's match index, {@link
 * dev.isthmus.raft.RaftGroup#inSyncMembers}). The shard hosting the leader computes the in-sync set when it gains
 * leadership and every {@link #CHECK_INTERVAL_NS} after, and publishes an {@link Entry} whenever it changes:
 * to every shard of its node through cross-shard calls (one batch per shard per loop turn), and to the other
 * nodes through shard 0, which sends the batch as an RPC of service {@link #SERVICE} on the Raft transport to
 * every connected node, and everything this node leads again every {@link #FULL_SYNC_INTERVAL_MS} and to a node
 * as soon as it connects (so a node that restarts or missed a message catches up). This is Redpanda's
 * metadata dissemination (leaders gossiped between nodes), not Kafka's controller-held ISR: an in-sync change
 * costs no controller write, and a node that hosts no replica of a partition still learns its leader.
 *
 * <h2>Ordering</h2>
 * An entry replaces another of the same partition when its epoch (the Raft term) is higher, or the epoch is the
 * same and its version (a counter of the publishing shard) is higher: a term has one leader, whose shard
 * publishes in order, so every shard converges on the newest state whatever order messages from different
 * leaders arrive in. The leader table ({@link ShardState#leaders}) takes an entry's leader when its epoch is
 * newer than what the shard knows (a local replica's own announcements keep updating it as before).
 *
 * <h2>Liveness and leadership hand-off</h2>
 * A node is live, for this node, while the Raft transport holds a connection to it (pings every 150 ms, closed
 * after 5 s of silence or at once when the process dies). Every message carries whether its sender is handing
 * its leaderships away before stopping ({@link #announceDraining}); receivers then give it no leadership back by
 * preferred-leader balancing ({@link RaftServer#setLeadershipExcluded}) until a message from it says otherwise
 * (its next start).
 *
 * <h2>Threads</h2>
 * One instance per broker. {@link #publish} and {@link #checkInSync} run on the shard hosting the partitions
 * (their buffers live in that shard's {@link ShardState}); the RPC side, {@link #ledHere} and the peers' view run
 * on shard 0 only. Entries are immutable and shared between shards.
 */
final class ReplicaStates implements ShardTransport.RpcHandler {
    private static final System.Logger LOG = System.getLogger(ReplicaStates.class.getName());
    /** The RPC service number of replica state messages between brokers (the controller's is 1, elections 2). */
    static final int SERVICE = 3;
    /** How often each shard recomputes the in-sync replicas of the partitions it leads (Kafka: half the lag). */
    static final long CHECK_INTERVAL_NS = 250_000_000L;
    /** How often shard 0 sends everything this node leads to every connected node. */
    static final long FULL_SYNC_INTERVAL_MS = 5_000;
    /** How often shard 0 looks for newly connected nodes (they get everything at once). */
    static final long PEER_CHECK_INTERVAL_MS = 200;
    /** Entries per RPC message (a message of 4096 entries of 3 replicas is about 150 KiB). */
    static final int MAX_ENTRIES_PER_MESSAGE = 4096;
    private static final byte FORMAT = 1;
    private static final byte FLAG_DRAINING = 1;
    private static final byte FLAG_ACK = 2;

    /**
     * One partition's state as its leader published it.
     *
     * @param groupId  the partition's Raft group
     * @param leaderId the leader (the publishing node)
     * @param epoch    the leader epoch (Raft term)
     * @param version  orders the entries of one epoch (the publishing shard's counter)
     * @param isr      the in-sync replicas, ascending node ids
     */
    record Entry(long groupId, int leaderId, int epoch, long version, int[] isr) {
        boolean newerThan(Entry o) {
            return o == null || epoch > o.epoch || (epoch == o.epoch && version > o.version);
        }
    }

    private final Broker broker;
    // Shard 0 only.
    private final Map<Long, Entry> ledHere = new HashMap<>();
    private final List<Entry> unsent = new ArrayList<>();
    private final Set<Integer> connected = new HashSet<>();
    private final Map<Long, Promise<Void>> acks = new HashMap<>();
    private ShardTransport transport;
    private boolean sendScheduled;
    private boolean draining;
    private long nextRequestId = 1;
    private long lastFullSyncMs;

    ReplicaStates(Broker broker) {
        this.broker = broker;
    }

    /** Shard 0: serves replica state messages from other nodes and starts the periodic sends. */
    void register(ShardTransport shard0) {
        this.transport = shard0;
        shard0.registerService(SERVICE, this, true);
        lastFullSyncMs = System.nanoTime() / 1_000_000;
        schedulePeerCheck(Shard.current());
    }

    // ------------------------------------------------------------------ the leaders' side (partition shards)

    /** On shard {@code st}: recomputes the in-sync replicas of the partitions it leads every check interval. */
    void startChecks(ShardState st) {
        st.shard.schedule(CHECK_INTERVAL_NS, () -> {
            if (broker.isClosing()) {
                return;
            }
            for (Partition p : st.partitions.values()) {
                if (p.isLeader()) {
                    checkInSync(st, p, false);
                }
            }
            startChecks(st);
        });
    }

    /**
     * On the shard hosting {@code p}, whose replica just became leader or stopped leading: a new leader starts from
     * the in-sync set the previous leader published (a replica that was out stays out until it catches up) and
     * publishes its own; a former leader stops publishing.
     */
    void leadershipChanged(ShardState st, Partition p, boolean leader, long term) {
        if (!leader) {
            stoppedLeading(st, p.groupId());
            return;
        }
        Entry previous = st.isr.get(p.groupId());
        if (previous != null && previous.epoch() < term) {
            int[] was = previous.isr();
            p.replica.raft().assumeOutOfSync(id -> Arrays.binarySearch(was, id) >= 0);
        }
        checkInSync(st, p, true);
    }

    /**
     * On the shard hosting partition {@code p}, which leads: recomputes its in-sync replicas and publishes them
     * when they changed since the last publication (or {@code force}, on gaining leadership). Returns whether it
     * published.
     */
    boolean checkInSync(ShardState st, Partition p, boolean force) {
        int[] isr = p.replica.raft().inSyncMembers(broker.config().replicaLagTimeMaxMs(), st::alive);
        if (isr == null) {
            return false;
        }
        int epoch = (int) p.replica.term();
        Entry last = st.publishedIsr.get(p.groupId());
        if (!force && last != null && last.epoch() == epoch && Arrays.equals(last.isr(), isr)) {
            return false;
        }
        if (last != null && last.epoch() == epoch) {
            if (isr.length < last.isr().length) {
                st.isrShrinks++;
            } else if (isr.length > last.isr().length) {
                st.isrExpands++;
            }
        }
        Entry e = new Entry(p.groupId(), broker.config().nodeId(), epoch, ++st.publishVersion, isr);
        st.publishedIsr.put(p.groupId(), e);
        publish(st, e);
        return true;
    }

    /** On a shard that stopped leading {@code groupId}: it no longer publishes it. */
    void stoppedLeading(ShardState st, long groupId) {
        if (st.publishedIsr.remove(groupId) != null) {
            st.unpublished.add(groupId);
            scheduleFlush(st);
        }
    }

    /** Queues {@code e} for every shard of this node and for the other nodes; sent once per loop turn. */
    private void publish(ShardState st, Entry e) {
        st.toPublish.add(e);
        scheduleFlush(st);
    }

    private void scheduleFlush(ShardState st) {
        if (!st.publishScheduled) {
            st.publishScheduled = true;
            st.shard.execute(() -> flush(st));
        }
    }

    /** Sends the shard's queued entries: one cross-shard call per shard (retried while a queue is full). */
    private void flush(ShardState st) {
        st.publishScheduled = false;
        if (st.toPublish.isEmpty() && st.unpublished.isEmpty()) {
            return;
        }
        List<Entry> batch = List.copyOf(st.toPublish);
        List<Long> dropped = List.copyOf(st.unpublished);
        st.toPublish.clear();
        st.unpublished.clear();
        Shard here = st.shard;
        for (int i = 0; i < broker.shardCount(); i++) {
            deliver(here, i, batch, i == 0 ? dropped : List.of(), 0);
        }
    }

    private void deliver(Shard here, int target, List<Entry> batch, List<Long> dropped, int attempt) {
        if (target == here.id()) {
            receiveLocal(target, batch, dropped);
            return;
        }
        here.submitTo(target, x -> {
            receiveLocal(target, batch, dropped);
            return null;
        }).whenComplete((v, f) -> {
            if (f != null && attempt < 1000) {
                // The target's queue is full: the entries must not be lost (they change only on the next change).
                here.schedule(1_000_000L, () -> deliver(here, target, batch, dropped, attempt + 1));
            }
        });
    }

    /** On shard {@code id}: learns local publications; shard 0 also forwards them to the other nodes. */
    private void receiveLocal(int id, List<Entry> batch, List<Long> dropped) {
        ShardState st = broker.state(id);
        for (Entry e : batch) {
            st.learn(e);
        }
        if (id == 0) {
            for (long g : dropped) {
                ledHere.remove(g);
            }
            for (Entry e : batch) {
                Entry cur = ledHere.get(e.groupId());
                if (e.newerThan(cur)) {
                    ledHere.put(e.groupId(), e);
                }
            }
            if (!batch.isEmpty()) {
                unsent.addAll(batch);
                scheduleSend();
            }
        }
    }

    // ------------------------------------------------------------------ between nodes (shard 0)

    private void scheduleSend() {
        if (!sendScheduled && transport != null) {
            sendScheduled = true;
            Shard.current().execute(() -> {
                sendScheduled = false;
                List<Entry> es = new ArrayList<>(unsent);
                unsent.clear();
                for (int peer : peers()) {
                    if (transport.isConnected(peer)) {
                        send(peer, es, (byte) 0);
                    }
                }
            });
        }
    }

    /** The other registered brokers and controller voters. */
    private Set<Integer> peers() {
        Set<Integer> ids = new HashSet<>(broker.config().seedAddresses().keySet());
        ShardState st = broker.state(0);
        if (st.cluster != null) {
            for (dev.isthmus.gateway.cluster.BrokerInfo b : st.cluster.brokers()) {
                ids.add(b.id());
            }
        }
        ids.remove(broker.config().nodeId());
        return ids;
    }

    private void schedulePeerCheck(Shard shard) {
        shard.schedule(PEER_CHECK_INTERVAL_MS * 1_000_000L, () -> {
            if (broker.isClosing()) {
                return;
            }
            long now = System.nanoTime() / 1_000_000;
            boolean full = now - lastFullSyncMs >= FULL_SYNC_INTERVAL_MS;
            if (full) {
                lastFullSyncMs = now;
            }
            List<Entry> all = null;
            for (int peer : peers()) {
                boolean up = transport.isConnected(peer);
                boolean fresh = up && connected.add(peer);
                if (!up) {
                    connected.remove(peer);
                }
                if (up && (full || fresh)) {
                    if (all == null) {
                        all = new ArrayList<>(ledHere.values());
                    }
                    send(peer, all, (byte) 0);
                }
            }
            schedulePeerCheck(shard);
        });
    }

    /** Sends {@code entries} to {@code peer} in messages of at most {@link #MAX_ENTRIES_PER_MESSAGE} (at least one). */
    private void send(int peer, List<Entry> entries, byte flags) {
        int from = 0;
        do {
            int to = Math.min(entries.size(), from + MAX_ENTRIES_PER_MESSAGE);
            transport.sendRpc(new RpcMessage(broker.config().nodeId(), peer, false, SERVICE, 0, 0, 0,
                encode(entries.subList(from, to), (byte) (flags | (draining ? FLAG_DRAINING : 0)))));
            from = to;
        } while (from < entries.size());
    }

    /**
     * Shard 0: tells every connected node that this node is handing its leaderships away (they stop giving it
     * leadership back); completes when each has acknowledged, or after {@code timeoutNs}.
     */
    Promise<Void> announceDraining(long timeoutNs) {
        draining = true;
        List<Promise<Void>> waits = new ArrayList<>();
        if (transport != null) {
            for (int peer : peers()) {
                if (transport.isConnected(peer)) {
                    long id = nextRequestId++;
                    Promise<Void> p = new Promise<>();
                    acks.put(id, p);
                    waits.add(p);
                    transport.sendRpc(new RpcMessage(broker.config().nodeId(), peer, false, SERVICE, 0, id, 0,
                        encode(List.of(), (byte) (FLAG_ACK | FLAG_DRAINING))));
                }
            }
        }
        Promise<Void> all = new Promise<>();
        Shard shard = Shard.current();
        long timer = shard.schedule(timeoutNs, () -> all.complete(null));
        Promise.whenAllSettled(waits).whenComplete((v, f) -> {
            shard.cancelTimer(timer);
            all.complete(null);
        });
        return all.whenComplete((v, f) -> acks.clear());
    }

    @Override
    public void onRequest(RpcMessage request) {
        ByteBuffer b = ByteBuffer.wrap(request.body());
        byte flags;
        List<Entry> entries;
        try {
            if (b.get() != FORMAT) {
                LOG.log(System.Logger.Level.WARNING, "replica states from node " + request.from()
                    + " in an unknown format; ignored");
                return;
            }
            flags = b.get();
            int n = b.getInt();
            if (n < 0 || n > MAX_ENTRIES_PER_MESSAGE) {
                throw new BufferUnderflowException();
            }
            entries = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                long group = b.getLong();
                int leader = b.getInt();
                int epoch = b.getInt();
                long version = b.getLong();
                int count = b.get() & 0xFF;
                int[] isr = new int[count];
                for (int j = 0; j < count; j++) {
                    isr[j] = b.getInt();
                }
                entries.add(new Entry(group, leader, epoch, version, isr));
            }
        } catch (BufferUnderflowException e) {
            LOG.log(System.Logger.Level.WARNING, "malformed replica states from node " + request.from() + "; ignored");
            return;
        }
        broker.raft().setLeadershipExcluded(request.from(), (flags & FLAG_DRAINING) != 0);
        if (!entries.isEmpty()) {
            List<Entry> batch = List.copyOf(entries);
            Shard here = Shard.current();
            for (int i = 0; i < broker.shardCount(); i++) {
                int id = i;
                if (i == here.id()) {
                    learnAll(broker.state(i), batch);
                } else {
                    deliverRemote(here, id, batch, 0);
                }
            }
        }
        if ((flags & FLAG_ACK) != 0) {
            transport.sendRpc(request.reply(0, new byte[0]));
        }
    }

    private void deliverRemote(Shard here, int target, List<Entry> batch, int attempt) {
        here.submitTo(target, x -> {
            learnAll(broker.state(target), batch);
            return null;
        }).whenComplete((v, f) -> {
            if (f != null && attempt < 1000) {
                here.schedule(1_000_000L, () -> deliverRemote(here, target, batch, attempt + 1));
            }
        });
    }

    private static void learnAll(ShardState st, List<Entry> batch) {
        for (Entry e : batch) {
            st.learn(e);
        }
    }

    @Override
    public void onResponse(RpcMessage response) {
        Promise<Void> p = acks.remove(response.requestId());
        if (p != null) {
            p.complete(null);
        }
    }

    static byte[] encode(List<Entry> entries, byte flags) {
        int size = 1 + 1 + 4;
        for (Entry e : entries) {
            size += 8 + 4 + 4 + 8 + 1 + 4 * e.isr().length;
        }
        ByteBuffer b = ByteBuffer.allocate(size).put(FORMAT).put(flags).putInt(entries.size());
        for (Entry e : entries) {
            b.putLong(e.groupId()).putInt(e.leaderId()).putInt(e.epoch()).putLong(e.version())
                .put((byte) e.isr().length);
            for (int id : e.isr()) {
                b.putInt(id);
            }
        }
        return b.array();
    }
}
