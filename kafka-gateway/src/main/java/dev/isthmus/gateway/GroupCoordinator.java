package dev.isthmus.gateway;

import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.gateway.protocol.ByteSlice;
import dev.isthmus.gateway.protocol.message.DescribeGroupsResponseData;
import dev.isthmus.gateway.protocol.message.HeartbeatRequestData;
import dev.isthmus.gateway.protocol.message.JoinGroupRequestData;
import dev.isthmus.gateway.protocol.message.JoinGroupResponseData;
import dev.isthmus.gateway.protocol.message.LeaveGroupRequestData;
import dev.isthmus.gateway.protocol.message.LeaveGroupResponseData;
import dev.isthmus.gateway.protocol.message.ListGroupsResponseData;
import dev.isthmus.gateway.protocol.message.SyncGroupRequestData;
import dev.isthmus.gateway.protocol.message.SyncGroupResponseData;
import dev.isthmus.log.BatchBuilder;
import dev.isthmus.log.Log;
import dev.isthmus.log.LogException;
import dev.isthmus.log.RecordBatch;
import dev.isthmus.log.Records;
import dev.isthmus.uring.shard.Promise;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * The classic-protocol group coordinator of one shard: the consumer groups whose {@code __consumer_offsets}
 * partition ({@link #partitionFor}) this shard owns, their membership state machines (join, sync, heartbeat,
 * leave, session and rebalance timeouts, static membership, the two-step member-id join) and their committed
 * offsets. Offsets and group metadata are written to the offsets partition as compacted key/value records
 * ({@link OffsetsRecords}) and answered only once durable; when a shard first serves a group of a partition it
 * replays that partition, so offsets survive restarts. Owner-shard only: every method runs on the shard thread.
 *
 * <p>States follow Kafka's classic coordinator: Empty -> PreparingRebalance -> CompletingRebalance -> Stable,
 * Dead once deleted. A rebalance completes when every known member has re-sent JoinGroup (and no member is
 * between the two steps of its first join) or at the longest rebalance timeout, dropping those that did not.
 */
final class GroupCoordinator {
    static final String OFFSETS_TOPIC = "__consumer_offsets";
    static final int MAX_METADATA_BYTES = 4096;
    private static final System.Logger LOG = System.getLogger(GroupCoordinator.class.getName());
    private static final byte[] EMPTY = new byte[0];
    private static final long MS = 1_000_000L;

    enum State {
        EMPTY("Empty"), PREPARING_REBALANCE("PreparingRebalance"), COMPLETING_REBALANCE("CompletingRebalance"),
        STABLE("Stable"), DEAD("Dead");

        final String kafkaName;

        State(String kafkaName) {
            this.kafkaName = kafkaName;
        }
    }

    record Protocol(String name, byte[] metadata) {
    }

    /** A committed offset. */
    record Committed(long offset, int leaderEpoch, String metadata, long commitTimestampMs) {
    }

    record TopicPartition(String topic, int partition) implements Comparable<TopicPartition> {
        @Override
        public int compareTo(TopicPartition o) {
            int c = topic.compareTo(o.topic);
            return c != 0 ? c : Integer.compare(partition, o.partition);
        }
    }

    /** Group, topic, partition, committed offset: for the lag metric. */
    record LagSnapshot(String group, String topic, int partition, long committedOffset) {
    }

    static final class Member {
        final String memberId;
        final String groupInstanceId;
        final String clientId;
        final String clientHost;
        int sessionTimeoutMs;
        int rebalanceTimeoutMs;
        List<Protocol> protocols;
        byte[] assignment = EMPTY;
        Promise<JoinGroupResponseData> awaitingJoin;
        short joinVersion;
        Promise<SyncGroupResponseData> awaitingSync;
        long sessionTimer = -1;
        boolean isNew;

        Member(String memberId, String groupInstanceId, String clientId, String clientHost) {
            this.memberId = memberId;
            this.groupInstanceId = groupInstanceId;
            this.clientId = clientId;
            this.clientHost = clientHost;
        }

        byte[] metadata(String protocol) {
            for (Protocol p : protocols) {
                if (p.name.equals(protocol)) {
                    return p.metadata;
                }
            }
            return EMPTY;
        }

        boolean sameProtocols(List<Protocol> other) {
            if (other.size() != protocols.size()) {
                return false;
            }
            for (int i = 0; i < other.size(); i++) {
                if (!other.get(i).name.equals(protocols.get(i).name)
                    || !java.util.Arrays.equals(other.get(i).metadata, protocols.get(i).metadata)) {
                    return false;
                }
            }
            return true;
        }
    }

    static final class Group {
        final String id;
        final int offsetsPartition;
        State state = State.EMPTY;
        int generation;
        String protocolType;
        String protocol;
        String leader;
        long stateTimestampMs = System.currentTimeMillis();
        final LinkedHashMap<String, Member> members = new LinkedHashMap<>();
        final Map<String, Long> pending = new HashMap<>(); // member id -> expiry timer of a two-step join
        final Map<String, String> staticMembers = new HashMap<>(); // group.instance.id -> member id
        final TreeMap<TopicPartition, Committed> offsets = new TreeMap<>();
        long rebalanceTimer = -1;
        long syncTimer = -1;
        boolean inInitialDelay;
        boolean newMemberDuringDelay;
        int initialDelayBudgetMs;

        Group(String id, int offsetsPartition) {
            this.id = id;
            this.offsetsPartition = offsetsPartition;
        }

        void transition(State s) {
            state = s;
            stateTimestampMs = System.currentTimeMillis();
        }

        boolean allJoined() {
            if (!pending.isEmpty()) {
                return false;
            }
            for (Member m : members.values()) {
                if (m.awaitingJoin == null) {
                    return false;
                }
            }
            return true;
        }

        int rebalanceTimeoutMs() {
            int t = 0;
            for (Member m : members.values()) {
                t = Math.max(t, m.rebalanceTimeoutMs);
            }
            return t;
        }
    }

    private final Broker broker;
    private final ShardState st;
    private final Map<String, Group> groups = new HashMap<>();
    private final Map<Integer, Promise<Partition>> loads = new HashMap<>();
    private final RecordBatch batchView = new RecordBatch();
    private final Records recordsView = new Records();
    private long expiryTimer = -1;

    GroupCoordinator(Broker broker, ShardState st) {
        this.broker = broker;
        this.st = st;
    }

    /** Kafka's placement of a group on the offsets topic. */
    static int partitionFor(String groupId, int partitions) {
        return (groupId.hashCode() & 0x7fffffff) % partitions;
    }

    private BrokerConfig config() {
        return broker.config();
    }

    // ------------------------------------------------------------------ loading

    /** Why a group request cannot be served here: a Kafka error code the client acts on. */
    static final class Unavailable extends RuntimeException {
        final short code;

        Unavailable(short code, String message) {
            super(message, null, false, false);
            this.code = code;
        }
    }

    /**
     * The offsets partition {@code p}, replayed into memory the first time it is used while this replica leads
     * it (and again after each leadership change: the coordinator of a group is the leader of its offsets
     * partition). Fails with {@link Unavailable} NOT_COORDINATOR on a follower and COORDINATOR_LOAD_IN_PROGRESS
     * until the new leader has committed an entry of its own term (so every earlier commit is replayed).
     * Requests for its groups wait on the same promise (no request sees a half-loaded partition).
     */
    Promise<Partition> ready(int p) {
        Promise<Partition> existing = loads.get(p);
        if (existing != null) {
            return existing;
        }
        return st.partition(OFFSETS_TOPIC, p).flatMap(part -> {
            if (part == null || !part.isLeader()) {
                return Promise.failed(new Unavailable(ErrorCodes.NOT_COORDINATOR, "this broker does not lead "
                    + OFFSETS_TOPIC + "-" + p));
            }
            if (!part.leaderReady()) {
                return Promise.failed(new Unavailable(ErrorCodes.COORDINATOR_LOAD_IN_PROGRESS, OFFSETS_TOPIC + "-" + p
                    + " has a new leader that has not committed its first entry yet"));
            }
            Promise<Partition> again = loads.get(p);
            return again != null ? again : load(p, part);
        });
    }

    private Promise<Partition> load(int p, Partition part) {
        Promise<Partition> loaded = new Promise<>();
        loads.put(p, loaded);
        {
            long t0 = System.nanoTime();
            replay(part, p, part.logStartOffset(), loaded, new int[1]);
            loaded.whenComplete((x, f) -> {
                if (f == null) {
                    LOG.log(System.Logger.Level.DEBUG, () -> "loaded " + OFFSETS_TOPIC + "-" + p + " in "
                        + (System.nanoTime() - t0) / 1000 + " us");
                    scheduleExpiry();
                } else if (loads.get(p) == loaded) {
                    loads.remove(p);
                }
            });
        }
        return loaded;
    }

    /**
     * This shard's replica of offsets partition {@code p} gained or lost leadership. On a loss its groups are
     * unloaded: waiting joins and syncs answer NOT_COORDINATOR, timers stop, and the members find the new
     * coordinator; on a gain nothing happens until a request arrives (then it loads).
     */
    void leadershipChanged(int p, boolean leader) {
        Promise<Partition> loaded = loads.remove(p);
        if (loaded == null) {
            return;
        }
        loaded.fail(new Unavailable(ErrorCodes.NOT_COORDINATOR, "leadership of " + OFFSETS_TOPIC + "-" + p + " moved"));
        for (Group g : new ArrayList<>(groups.values())) {
            if (g.offsetsPartition != p) {
                continue;
            }
            groups.remove(g.id);
            cancel(g.rebalanceTimer);
            cancel(g.syncTimer);
            for (long timer : g.pending.values()) {
                cancel(timer);
            }
            for (Member m : g.members.values()) {
                cancel(m.sessionTimer);
                if (m.awaitingJoin != null) {
                    m.awaitingJoin.complete(joinError(ErrorCodes.NOT_COORDINATOR, m.memberId));
                    m.awaitingJoin = null;
                }
                if (m.awaitingSync != null) {
                    m.awaitingSync.complete(syncError(ErrorCodes.NOT_COORDINATOR));
                    m.awaitingSync = null;
                }
            }
        }
        LOG.log(System.Logger.Level.INFO, "unloaded the groups of " + OFFSETS_TOPIC + "-" + p + " on shard "
            + st.shard.id() + (leader ? " (re-elected: they load again on the next request)" : ": no longer the leader"));
    }

    private void cancel(long timer) {
        if (timer >= 0) {
            st.shard.cancelTimer(timer);
        }
    }

    private void replay(Partition part, int p, long from, Promise<Partition> done, int[] records) {
        long hw = part.highWatermark();
        if (from >= hw) {
            done.complete(part);
            return;
        }
        part.log().read(from, hw, 1 << 20, new Log.ReadHandler() {
            @Override
            public void onRead(MemorySegment bytes, long firstOffset, long lastOffset) {
                if (bytes.byteSize() == 0) {
                    done.complete(part);
                    return;
                }
                try {
                    long next = apply(bytes, p, records);
                    replay(part, p, Math.max(next, lastOffset + 1), done, records);
                } catch (RuntimeException e) {
                    done.fail(new IllegalStateException("cannot replay " + OFFSETS_TOPIC + "-" + p + " at offset "
                        + from + ": " + e.getMessage(), e));
                }
            }

            @Override
            public void onError(LogException error) {
                done.fail(error);
            }
        });
    }

    /** Applies every record of the batches in {@code bytes}; returns the offset after the last one. */
    private long apply(MemorySegment bytes, int p, int[] records) {
        long pos = 0;
        long next = -1;
        while (pos + RecordBatch.HEADER_BYTES <= bytes.byteSize()) {
            batchView.wrap(bytes, pos);
            int size = batchView.sizeInBytes();
            if (size <= 0 || pos + size > bytes.byteSize()) {
                break;
            }
            next = batchView.baseOffset() + batchView.lastOffsetDelta() + 1;
            if (!batchView.isControl() && recordsView.wrap(batchView)) {
                while (recordsView.next()) {
                    MemorySegment k = recordsView.key();
                    if (k == null) {
                        continue;
                    }
                    MemorySegment v = recordsView.value();
                    applyRecord(ByteBuffer.wrap(k.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)),
                        v == null ? null : ByteBuffer.wrap(v.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)), p);
                    records[0]++;
                }
            }
            pos += size;
        }
        return next;
    }

    private void applyRecord(ByteBuffer key, ByteBuffer value, int p) {
        OffsetsRecords.Key k = OffsetsRecords.key(key);
        if (k.version() == OffsetsRecords.OFFSET_KEY) {
            TopicPartition tp = new TopicPartition(k.topic(), k.partition());
            if (value == null) {
                Group g = groups.get(k.group());
                if (g != null) {
                    g.offsets.remove(tp);
                    if (g.offsets.isEmpty() && g.protocolType == null && g.members.isEmpty()) {
                        groups.remove(g.id);
                    }
                }
                return;
            }
            OffsetsRecords.OffsetValue v = OffsetsRecords.offsetValue(value);
            groups.computeIfAbsent(k.group(), id -> new Group(id, p)).offsets.put(tp,
                new Committed(v.offset(), v.leaderEpoch(), v.metadata(), v.commitTimestampMs()));
        } else {
            if (value == null) {
                groups.remove(k.group());
                return;
            }
            OffsetsRecords.GroupValue v = OffsetsRecords.groupValue(value);
            Group g = groups.computeIfAbsent(k.group(), id -> new Group(id, p));
            g.protocolType = v.protocolType();
            g.generation = v.generation();
            g.protocol = null; // no members survive a restart: the group is Empty until they rejoin
            g.leader = null;
            g.stateTimestampMs = v.stateTimestampMs();
        }
    }

    // ------------------------------------------------------------------ writing

    private record Entry(byte[] key, byte[] value) {
    }

    /** Appends records to the group's offsets partition; completes with an error code once durable (or not). */
    private Promise<Short> write(int p, List<Entry> entries) {
        Promise<Partition> loaded = loads.get(p);
        if (loaded == null || !loaded.isDone()) {
            return Promise.completed(ErrorCodes.COORDINATOR_LOAD_IN_PROGRESS);
        }
        return loaded.flatMap(part -> {
            long size = RecordBatch.HEADER_BYTES;
            for (Entry e : entries) {
                size += 24 + e.key.length + (e.value == null ? 0 : e.value.length);
            }
            MemoryArena arena = st.arena;
            long block = arena.allocate(size, Subsystem.OTHER);
            if (block == MemoryArena.NO_MEMORY) {
                return Promise.completed(ErrorCodes.COORDINATOR_NOT_AVAILABLE);
            }
            try {
                MemorySegment seg = arena.segment(block, size);
                BatchBuilder b = new BatchBuilder(seg, 0, 0);
                long now = System.currentTimeMillis();
                for (Entry e : entries) {
                    b.add(now, e.key, e.value);
                }
                int len = b.build();
                return part.appendInternal(seg, len).map(r -> r.errorCode() == ErrorCodes.NONE ? ErrorCodes.NONE
                    : r.errorCode() == ErrorCodes.REQUEST_TIMED_OUT ? ErrorCodes.REQUEST_TIMED_OUT
                    : ErrorCodes.COORDINATOR_NOT_AVAILABLE);
            } finally {
                arena.free(block);
            }
        });
    }

    private Promise<Short> persistGroup(Group g) {
        byte[] value = OffsetsRecords.groupValue(new OffsetsRecords.GroupValue(g.protocolType == null ? "" : g.protocolType,
            g.generation, g.protocol, g.leader, g.stateTimestampMs));
        return write(g.offsetsPartition, List.of(new Entry(OffsetsRecords.groupKey(g.id), value)));
    }

    // ------------------------------------------------------------------ JoinGroup

    Promise<JoinGroupResponseData> join(JoinGroupRequestData req, short version, int p, String clientId,
                                        String clientHost) {
        if (req.groupId == null || req.groupId.isEmpty()) {
            return Promise.completed(joinError(ErrorCodes.INVALID_GROUP_ID, req.memberId));
        }
        if (req.sessionTimeoutMs < config().groupMinSessionTimeoutMs()
            || req.sessionTimeoutMs > config().groupMaxSessionTimeoutMs()) {
            return Promise.completed(joinError(ErrorCodes.INVALID_SESSION_TIMEOUT, req.memberId));
        }
        int rebalanceTimeoutMs = version == 0 || req.rebalanceTimeoutMs <= 0 ? req.sessionTimeoutMs : req.rebalanceTimeoutMs;
        List<Protocol> protocols = new ArrayList<>();
        for (JoinGroupRequestData.JoinGroupRequestProtocol jp : req.protocols) {
            protocols.add(new Protocol(jp.name, jp.metadata.toArray()));
        }
        boolean unknownMember = req.memberId == null || req.memberId.isEmpty();
        Group g = groups.get(req.groupId);
        if (g == null) {
            if (!unknownMember) {
                return Promise.completed(joinError(ErrorCodes.UNKNOWN_MEMBER_ID, req.memberId));
            }
            g = new Group(req.groupId, p);
            groups.put(g.id, g);
        }
        if (g.state == State.DEAD) {
            return Promise.completed(joinError(ErrorCodes.COORDINATOR_NOT_AVAILABLE, req.memberId));
        }
        if (!supportsProtocols(g, req.protocolType, protocols)) {
            return Promise.completed(joinError(ErrorCodes.INCONSISTENT_GROUP_PROTOCOL, req.memberId));
        }
        if (unknownMember) {
            String newId = (clientId == null ? "" : clientId) + "-" + UUID.randomUUID();
            if (req.groupInstanceId != null) {
                String old = g.staticMembers.get(req.groupInstanceId);
                if (old != null && g.members.containsKey(old)) {
                    return replaceStaticMember(g, old, newId, req, version, protocols, clientId, clientHost);
                }
                return addMemberAndRebalance(g, newId, req, version, rebalanceTimeoutMs, protocols, clientId, clientHost);
            }
            if (version >= 4) {
                // Two-step join (KIP-394): hand out the id; the member must come back with it.
                Group grp = g;
                long timer = st.shard.schedule(req.sessionTimeoutMs * MS, () -> {
                    if (grp.pending.remove(newId) != null) {
                        tryCompleteJoin(grp);
                        maybeForget(grp);
                    }
                });
                g.pending.put(newId, timer);
                return Promise.completed(joinError(ErrorCodes.MEMBER_ID_REQUIRED, newId));
            }
            return addMemberAndRebalance(g, newId, req, version, rebalanceTimeoutMs, protocols, clientId, clientHost);
        }
        Long pendingTimer = g.pending.remove(req.memberId);
        if (pendingTimer != null) {
            st.shard.cancelTimer(pendingTimer);
            return addMemberAndRebalance(g, req.memberId, req, version, rebalanceTimeoutMs, protocols, clientId,
                clientHost);
        }
        Member m = g.members.get(req.memberId);
        if (m == null) {
            if (req.groupInstanceId != null && g.staticMembers.containsKey(req.groupInstanceId)) {
                return Promise.completed(joinError(ErrorCodes.FENCED_INSTANCE_ID, req.memberId));
            }
            return Promise.completed(joinError(ErrorCodes.UNKNOWN_MEMBER_ID, req.memberId));
        }
        if (req.groupInstanceId != null && !req.groupInstanceId.equals(m.groupInstanceId)) {
            return Promise.completed(joinError(ErrorCodes.FENCED_INSTANCE_ID, req.memberId));
        }
        m.sessionTimeoutMs = req.sessionTimeoutMs;
        m.rebalanceTimeoutMs = rebalanceTimeoutMs;
        switch (g.state) {
            case PREPARING_REBALANCE -> {
                return updateMemberAndRebalance(g, m, protocols, version);
            }
            case COMPLETING_REBALANCE -> {
                if (m.sameProtocols(protocols)) {
                    rescheduleSession(g, m);
                    return Promise.completed(joinResponse(g, m));
                }
                return updateMemberAndRebalance(g, m, protocols, version);
            }
            case STABLE -> {
                if (m.memberId.equals(g.leader) || !m.sameProtocols(protocols)) {
                    return updateMemberAndRebalance(g, m, protocols, version);
                }
                rescheduleSession(g, m);
                return Promise.completed(joinResponse(g, m));
            }
            default -> {
                return Promise.completed(joinError(ErrorCodes.UNKNOWN_MEMBER_ID, req.memberId));
            }
        }
    }

    private static boolean supportsProtocols(Group g, String protocolType, List<Protocol> protocols) {
        if (protocolType == null || protocolType.isEmpty() || protocols.isEmpty()) {
            return false;
        }
        if (g.members.isEmpty()) {
            return true;
        }
        if (!protocolType.equals(g.protocolType)) {
            return false;
        }
        for (Protocol p : protocols) {
            boolean all = true;
            for (Member m : g.members.values()) {
                if (m.protocols.stream().noneMatch(x -> x.name.equals(p.name))) {
                    all = false;
                    break;
                }
            }
            if (all) {
                return true;
            }
        }
        return false;
    }

    private Promise<JoinGroupResponseData> addMemberAndRebalance(Group g, String memberId, JoinGroupRequestData req,
                                                                  short version, int rebalanceTimeoutMs,
                                                                  List<Protocol> protocols, String clientId,
                                                                  String clientHost) {
        Member m = new Member(memberId, req.groupInstanceId, clientId, clientHost);
        m.sessionTimeoutMs = req.sessionTimeoutMs;
        m.rebalanceTimeoutMs = rebalanceTimeoutMs;
        m.protocols = protocols;
        m.isNew = true;
        m.joinVersion = version;
        if (g.members.isEmpty()) {
            g.protocolType = req.protocolType;
        }
        g.members.put(memberId, m);
        if (m.groupInstanceId != null) {
            g.staticMembers.put(m.groupInstanceId, memberId);
        }
        if (g.leader == null) {
            g.leader = memberId;
        }
        m.awaitingJoin = new Promise<>();
        Promise<JoinGroupResponseData> result = m.awaitingJoin;
        if (g.inInitialDelay) {
            g.newMemberDuringDelay = true;
        }
        rescheduleSession(g, m);
        if (g.state == State.PREPARING_REBALANCE) {
            tryCompleteJoin(g);
        } else {
            prepareRebalance(g);
        }
        return result;
    }

    private Promise<JoinGroupResponseData> updateMemberAndRebalance(Group g, Member m, List<Protocol> protocols,
                                                                     short version) {
        m.protocols = protocols;
        m.joinVersion = version;
        if (m.awaitingJoin != null) {
            // A duplicate join while one is pending: the older request gets the same answer as Kafka gives it.
            m.awaitingJoin.complete(joinError(ErrorCodes.REBALANCE_IN_PROGRESS, m.memberId));
        }
        m.awaitingJoin = new Promise<>();
        Promise<JoinGroupResponseData> result = m.awaitingJoin;
        rescheduleSession(g, m);
        if (g.state == State.PREPARING_REBALANCE) {
            tryCompleteJoin(g);
        } else {
            prepareRebalance(g);
        }
        return result;
    }

    private Promise<JoinGroupResponseData> replaceStaticMember(Group g, String oldId, String newId,
                                                                JoinGroupRequestData req, short version,
                                                                List<Protocol> protocols, String clientId,
                                                                String clientHost) {
        Member old = g.members.remove(oldId);
        cancelSession(old);
        if (old.awaitingJoin != null) {
            old.awaitingJoin.complete(joinError(ErrorCodes.FENCED_INSTANCE_ID, oldId));
        }
        if (old.awaitingSync != null) {
            old.awaitingSync.complete(syncError(ErrorCodes.FENCED_INSTANCE_ID));
        }
        Member m = new Member(newId, req.groupInstanceId, clientId, clientHost);
        m.sessionTimeoutMs = req.sessionTimeoutMs;
        m.rebalanceTimeoutMs = old.rebalanceTimeoutMs;
        m.protocols = protocols;
        m.assignment = old.assignment;
        m.joinVersion = version;
        g.members.put(newId, m);
        g.staticMembers.put(req.groupInstanceId, newId);
        if (oldId.equals(g.leader)) {
            g.leader = newId;
        }
        if (g.state == State.STABLE && old.sameProtocols(protocols)) {
            // A restarted static member takes its place without a rebalance and keeps its assignment.
            rescheduleSession(g, m);
            return Promise.completed(joinResponse(g, m));
        }
        m.awaitingJoin = new Promise<>();
        Promise<JoinGroupResponseData> result = m.awaitingJoin;
        rescheduleSession(g, m);
        if (g.state == State.PREPARING_REBALANCE) {
            tryCompleteJoin(g);
        } else {
            prepareRebalance(g);
        }
        return result;
    }

    private void prepareRebalance(Group g) {
        if (g.state == State.COMPLETING_REBALANCE) {
            failPendingSyncs(g, ErrorCodes.REBALANCE_IN_PROGRESS);
        }
        cancelTimer(g.syncTimer);
        g.syncTimer = -1;
        boolean initial = g.state == State.EMPTY;
        g.transition(State.PREPARING_REBALANCE);
        cancelTimer(g.rebalanceTimer);
        int delay = config().groupInitialRebalanceDelayMs();
        if (initial && delay > 0) {
            g.inInitialDelay = true;
            g.newMemberDuringDelay = false;
            g.initialDelayBudgetMs = Math.max(0, g.rebalanceTimeoutMs() - delay);
            g.rebalanceTimer = st.shard.schedule(delay * MS, () -> initialDelayExpired(g, delay));
            return;
        }
        g.inInitialDelay = false;
        g.rebalanceTimer = st.shard.schedule(Math.max(1, g.rebalanceTimeoutMs()) * MS, () -> {
            g.rebalanceTimer = -1;
            completeJoin(g);
        });
        tryCompleteJoin(g);
    }

    private void initialDelayExpired(Group g, int delay) {
        g.rebalanceTimer = -1;
        if (g.state != State.PREPARING_REBALANCE) {
            return;
        }
        if (g.newMemberDuringDelay && g.initialDelayBudgetMs > 0) {
            int next = Math.min(delay, g.initialDelayBudgetMs);
            g.initialDelayBudgetMs -= next;
            g.newMemberDuringDelay = false;
            g.rebalanceTimer = st.shard.schedule(next * MS, () -> initialDelayExpired(g, delay));
            return;
        }
        g.inInitialDelay = false;
        completeJoin(g);
    }

    private void tryCompleteJoin(Group g) {
        if (g.state == State.PREPARING_REBALANCE && !g.inInitialDelay && g.allJoined()) {
            completeJoin(g);
        }
    }

    private void completeJoin(Group g) {
        if (g.state != State.PREPARING_REBALANCE) {
            return;
        }
        cancelTimer(g.rebalanceTimer);
        g.rebalanceTimer = -1;
        g.inInitialDelay = false;
        for (Iterator<Member> it = g.members.values().iterator(); it.hasNext(); ) {
            Member m = it.next();
            if (m.awaitingJoin == null) {
                it.remove();
                removeMemberState(g, m);
            }
        }
        g.generation++;
        if (g.members.isEmpty()) {
            g.protocol = null;
            g.leader = null;
            g.transition(State.EMPTY);
            persistGroup(g);
            maybeForget(g);
            return;
        }
        g.protocol = selectProtocol(g);
        if (g.leader == null || !g.members.containsKey(g.leader)) {
            g.leader = g.members.keySet().iterator().next();
        }
        g.transition(State.COMPLETING_REBALANCE);
        for (Member m : g.members.values()) {
            Promise<JoinGroupResponseData> p = m.awaitingJoin;
            m.awaitingJoin = null;
            m.isNew = false;
            rescheduleSession(g, m);
            p.complete(joinResponse(g, m));
        }
        int generation = g.generation;
        g.syncTimer = st.shard.schedule(Math.max(1, g.rebalanceTimeoutMs()) * MS, () -> {
            g.syncTimer = -1;
            if (g.state == State.COMPLETING_REBALANCE && g.generation == generation) {
                // The leader never sent its assignment: drop members that did not sync and start over.
                for (Iterator<Member> it = g.members.values().iterator(); it.hasNext(); ) {
                    Member m = it.next();
                    if (m.awaitingSync == null) {
                        it.remove();
                        removeMemberState(g, m);
                    }
                }
                prepareRebalance(g);
            }
        });
    }

    private static String selectProtocol(Group g) {
        Map<String, Integer> votes = new LinkedHashMap<>();
        Member first = g.members.values().iterator().next();
        for (Protocol p : first.protocols) {
            boolean all = true;
            for (Member m : g.members.values()) {
                if (m.protocols.stream().noneMatch(x -> x.name.equals(p.name))) {
                    all = false;
                    break;
                }
            }
            if (all) {
                votes.put(p.name, 0);
            }
        }
        for (Member m : g.members.values()) {
            for (Protocol p : m.protocols) {
                if (votes.containsKey(p.name)) {
                    votes.merge(p.name, 1, Integer::sum);
                    break;
                }
            }
        }
        String best = null;
        int bestVotes = -1;
        for (Map.Entry<String, Integer> e : votes.entrySet()) {
            if (e.getValue() > bestVotes) {
                best = e.getKey();
                bestVotes = e.getValue();
            }
        }
        return best;
    }

    private JoinGroupResponseData joinResponse(Group g, Member m) {
        JoinGroupResponseData r = new JoinGroupResponseData();
        r.generationId = g.generation;
        r.protocolType = g.protocolType;
        r.protocolName = g.protocol;
        r.leader = g.leader;
        r.memberId = m.memberId;
        if (m.memberId.equals(g.leader)) {
            for (Member x : g.members.values()) {
                JoinGroupResponseData.JoinGroupResponseMember jm = new JoinGroupResponseData.JoinGroupResponseMember();
                jm.memberId = x.memberId;
                jm.groupInstanceId = x.groupInstanceId;
                jm.metadata = ByteSlice.of(x.metadata(g.protocol));
                r.members.add(jm);
            }
        }
        return r;
    }

    private static JoinGroupResponseData joinError(short code, String memberId) {
        JoinGroupResponseData r = new JoinGroupResponseData();
        r.errorCode = code;
        r.generationId = -1;
        r.memberId = memberId == null ? "" : memberId;
        r.protocolName = null;
        return r;
    }

    // ------------------------------------------------------------------ SyncGroup

    Promise<SyncGroupResponseData> sync(SyncGroupRequestData req) {
        Group g = groups.get(req.groupId);
        if (g == null || g.state == State.EMPTY) {
            return Promise.completed(syncError(ErrorCodes.UNKNOWN_MEMBER_ID));
        }
        if (g.state == State.DEAD) {
            return Promise.completed(syncError(ErrorCodes.COORDINATOR_NOT_AVAILABLE));
        }
        Member m = g.members.get(req.memberId);
        if (m == null) {
            return Promise.completed(syncError(fencedOr(g, req.groupInstanceId, req.memberId, ErrorCodes.UNKNOWN_MEMBER_ID)));
        }
        if (req.groupInstanceId != null && !req.groupInstanceId.equals(m.groupInstanceId)) {
            return Promise.completed(syncError(ErrorCodes.FENCED_INSTANCE_ID));
        }
        if (req.generationId != g.generation) {
            return Promise.completed(syncError(ErrorCodes.ILLEGAL_GENERATION));
        }
        if ((req.protocolType != null && !req.protocolType.equals(g.protocolType))
            || (req.protocolName != null && !req.protocolName.equals(g.protocol))) {
            return Promise.completed(syncError(ErrorCodes.INCONSISTENT_GROUP_PROTOCOL));
        }
        switch (g.state) {
            case PREPARING_REBALANCE -> {
                return Promise.completed(syncError(ErrorCodes.REBALANCE_IN_PROGRESS));
            }
            case STABLE -> {
                rescheduleSession(g, m);
                return Promise.completed(syncOk(g, m.assignment));
            }
            case COMPLETING_REBALANCE -> {
                if (m.awaitingSync != null) {
                    m.awaitingSync.complete(syncError(ErrorCodes.REBALANCE_IN_PROGRESS));
                }
                m.awaitingSync = new Promise<>();
                Promise<SyncGroupResponseData> result = m.awaitingSync;
                rescheduleSession(g, m);
                if (m.memberId.equals(g.leader)) {
                    Map<String, byte[]> assignments = new HashMap<>();
                    for (SyncGroupRequestData.SyncGroupRequestAssignment a : req.assignments) {
                        assignments.put(a.memberId, a.assignment.toArray());
                    }
                    int generation = g.generation;
                    persistGroup(g).whenComplete((code, failure) -> {
                        if (g.state != State.COMPLETING_REBALANCE || g.generation != generation) {
                            return; // a new rebalance started meanwhile; its syncs were already answered
                        }
                        short error = failure != null ? ErrorCodes.COORDINATOR_NOT_AVAILABLE : code;
                        if (error != ErrorCodes.NONE) {
                            failPendingSyncs(g, error);
                            prepareRebalance(g);
                            return;
                        }
                        for (Member x : g.members.values()) {
                            x.assignment = assignments.getOrDefault(x.memberId, EMPTY);
                        }
                        cancelTimer(g.syncTimer);
                        g.syncTimer = -1;
                        g.transition(State.STABLE);
                        for (Member x : g.members.values()) {
                            if (x.awaitingSync != null) {
                                Promise<SyncGroupResponseData> p = x.awaitingSync;
                                x.awaitingSync = null;
                                p.complete(syncOk(g, x.assignment));
                            }
                        }
                    });
                }
                return result;
            }
            default -> {
                return Promise.completed(syncError(ErrorCodes.UNKNOWN_MEMBER_ID));
            }
        }
    }

    private void failPendingSyncs(Group g, short error) {
        for (Member x : g.members.values()) {
            x.assignment = EMPTY;
            if (x.awaitingSync != null) {
                Promise<SyncGroupResponseData> p = x.awaitingSync;
                x.awaitingSync = null;
                p.complete(syncError(error));
            }
        }
    }

    private static SyncGroupResponseData syncOk(Group g, byte[] assignment) {
        SyncGroupResponseData r = new SyncGroupResponseData();
        r.protocolType = g.protocolType;
        r.protocolName = g.protocol;
        r.assignment = ByteSlice.of(assignment);
        return r;
    }

    private static SyncGroupResponseData syncError(short code) {
        SyncGroupResponseData r = new SyncGroupResponseData();
        r.errorCode = code;
        return r;
    }

    private static short fencedOr(Group g, String instanceId, String memberId, short otherwise) {
        if (instanceId != null) {
            String current = g.staticMembers.get(instanceId);
            if (current != null && !current.equals(memberId)) {
                return ErrorCodes.FENCED_INSTANCE_ID;
            }
        }
        return otherwise;
    }

    // ------------------------------------------------------------------ Heartbeat and LeaveGroup

    short heartbeat(HeartbeatRequestData req) {
        Group g = groups.get(req.groupId);
        if (g == null || g.state == State.EMPTY) {
            return ErrorCodes.UNKNOWN_MEMBER_ID;
        }
        if (g.state == State.DEAD) {
            return ErrorCodes.COORDINATOR_NOT_AVAILABLE;
        }
        Member m = g.members.get(req.memberId);
        if (m == null) {
            return fencedOr(g, req.groupInstanceId, req.memberId, ErrorCodes.UNKNOWN_MEMBER_ID);
        }
        if (req.groupInstanceId != null && !req.groupInstanceId.equals(m.groupInstanceId)) {
            return ErrorCodes.FENCED_INSTANCE_ID;
        }
        if (req.generationId != g.generation) {
            return ErrorCodes.ILLEGAL_GENERATION;
        }
        rescheduleSession(g, m);
        return switch (g.state) {
            case PREPARING_REBALANCE -> ErrorCodes.REBALANCE_IN_PROGRESS;
            case COMPLETING_REBALANCE, STABLE -> ErrorCodes.NONE;
            default -> ErrorCodes.UNKNOWN_MEMBER_ID;
        };
    }

    LeaveGroupResponseData leave(LeaveGroupRequestData req, short version) {
        LeaveGroupResponseData r = new LeaveGroupResponseData();
        List<LeaveGroupRequestData.MemberIdentity> who = new ArrayList<>();
        if (version < 3) {
            LeaveGroupRequestData.MemberIdentity id = new LeaveGroupRequestData.MemberIdentity();
            id.memberId = req.memberId;
            who.add(id);
        } else {
            who.addAll(req.members);
        }
        Group g = groups.get(req.groupId);
        if (g == null || g.state == State.DEAD) {
            r.errorCode = g == null ? ErrorCodes.UNKNOWN_MEMBER_ID : ErrorCodes.COORDINATOR_NOT_AVAILABLE;
            return r;
        }
        boolean removed = false;
        for (LeaveGroupRequestData.MemberIdentity id : who) {
            LeaveGroupResponseData.MemberResponse mr = new LeaveGroupResponseData.MemberResponse();
            mr.memberId = id.memberId;
            mr.groupInstanceId = id.groupInstanceId;
            r.members.add(mr);
            String memberId = id.memberId;
            if ((memberId == null || memberId.isEmpty()) && id.groupInstanceId != null) {
                memberId = g.staticMembers.get(id.groupInstanceId);
            }
            if (memberId != null && g.pending.containsKey(memberId)) {
                cancelTimer(g.pending.remove(memberId));
                removed = true;
                continue;
            }
            Member m = memberId == null ? null : g.members.get(memberId);
            if (m == null) {
                mr.errorCode = ErrorCodes.UNKNOWN_MEMBER_ID;
                continue;
            }
            if (id.groupInstanceId != null && !id.groupInstanceId.equals(m.groupInstanceId)) {
                mr.errorCode = ErrorCodes.FENCED_INSTANCE_ID;
                continue;
            }
            removeMember(g, m);
            removed = true;
        }
        if (version < 3 && !r.members.isEmpty()) {
            r.errorCode = r.members.get(0).errorCode;
            r.members.clear();
        }
        if (removed) {
            afterMembershipChange(g);
        }
        return r;
    }

    private void removeMember(Group g, Member m) {
        g.members.remove(m.memberId);
        removeMemberState(g, m);
        if (m.awaitingJoin != null) {
            m.awaitingJoin.complete(joinError(ErrorCodes.UNKNOWN_MEMBER_ID, m.memberId));
            m.awaitingJoin = null;
        }
        if (m.awaitingSync != null) {
            m.awaitingSync.complete(syncError(ErrorCodes.UNKNOWN_MEMBER_ID));
            m.awaitingSync = null;
        }
    }

    private void removeMemberState(Group g, Member m) {
        cancelSession(m);
        if (m.groupInstanceId != null && m.memberId.equals(g.staticMembers.get(m.groupInstanceId))) {
            g.staticMembers.remove(m.groupInstanceId);
        }
        if (m.memberId.equals(g.leader)) {
            g.leader = g.members.isEmpty() ? null : g.members.keySet().iterator().next();
        }
    }

    private void afterMembershipChange(Group g) {
        switch (g.state) {
            case STABLE, COMPLETING_REBALANCE -> prepareRebalance(g);
            case PREPARING_REBALANCE -> {
                if (g.members.isEmpty() && g.pending.isEmpty()) {
                    completeJoin(g);
                } else {
                    tryCompleteJoin(g);
                }
            }
            default -> maybeForget(g);
        }
    }

    private void rescheduleSession(Group g, Member m) {
        cancelSession(m);
        m.sessionTimer = st.shard.schedule(m.sessionTimeoutMs * MS, () -> sessionExpired(g, m));
    }

    private void sessionExpired(Group g, Member m) {
        m.sessionTimer = -1;
        if (g.members.get(m.memberId) != m) {
            return;
        }
        if (m.awaitingJoin != null || m.awaitingSync != null) {
            // Waiting for the rebalance itself: the rebalance timeout, not the session, governs it.
            rescheduleSession(g, m);
            return;
        }
        LOG.log(System.Logger.Level.INFO, "group " + g.id + ": member " + m.memberId + " missed its "
            + m.sessionTimeoutMs + " ms session timeout; removing it");
        removeMember(g, m);
        afterMembershipChange(g);
    }

    private void cancelSession(Member m) {
        cancelTimer(m.sessionTimer);
        m.sessionTimer = -1;
    }

    private void cancelTimer(long id) {
        if (id >= 0) {
            st.shard.cancelTimer(id);
        }
    }

    /** Drops a group from memory when nothing is left of it (no members, offsets or persisted metadata). */
    private void maybeForget(Group g) {
        if (g.state == State.EMPTY && g.members.isEmpty() && g.pending.isEmpty() && g.offsets.isEmpty()
            && g.protocolType == null) {
            groups.remove(g.id);
        }
    }

    // ------------------------------------------------------------------ offsets

    /** One partition's commit request. */
    record CommitRequest(String topic, int partition, long offset, int leaderEpoch, String metadata) {
    }

    /**
     * Validates and stores offsets; completes with one error code per request entry (same order), or with a
     * single group-level code repeated for all.
     */
    Promise<short[]> commit(String groupId, int generation, String memberId, String instanceId,
                            List<CommitRequest> entries, int p) {
        short[] codes = new short[entries.size()];
        Group g = groups.get(groupId);
        short groupError = ErrorCodes.NONE;
        if (g != null && g.state == State.DEAD) {
            groupError = ErrorCodes.COORDINATOR_NOT_AVAILABLE;
        } else if (generation < 0) {
            // A standalone commit (no group membership): allowed only when no members are active.
            if (g != null && !g.members.isEmpty()) {
                groupError = ErrorCodes.UNKNOWN_MEMBER_ID;
            }
        } else if (g == null) {
            groupError = ErrorCodes.ILLEGAL_GENERATION;
        } else {
            Member m = g.members.get(memberId);
            if (m == null) {
                groupError = fencedOr(g, instanceId, memberId, ErrorCodes.UNKNOWN_MEMBER_ID);
            } else if (instanceId != null && !instanceId.equals(m.groupInstanceId)) {
                groupError = ErrorCodes.FENCED_INSTANCE_ID;
            } else if (generation != g.generation) {
                groupError = ErrorCodes.ILLEGAL_GENERATION;
            } else if (g.state == State.COMPLETING_REBALANCE) {
                groupError = ErrorCodes.REBALANCE_IN_PROGRESS;
            } else {
                rescheduleSession(g, m);
            }
        }
        if (groupError != ErrorCodes.NONE) {
            java.util.Arrays.fill(codes, groupError);
            return Promise.completed(codes);
        }
        List<Entry> records = new ArrayList<>();
        List<Integer> written = new ArrayList<>();
        long now = System.currentTimeMillis();
        for (int i = 0; i < entries.size(); i++) {
            CommitRequest c = entries.get(i);
            if (c.metadata != null && c.metadata.length() > MAX_METADATA_BYTES) {
                codes[i] = ErrorCodes.OFFSET_METADATA_TOO_LARGE;
                continue;
            }
            if (c.topic == null || st.topics.get(c.topic) == null || c.partition < 0
                || c.partition >= st.topics.get(c.topic).partitions()) {
                codes[i] = ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            records.add(new Entry(OffsetsRecords.offsetKey(groupId, c.topic, c.partition),
                OffsetsRecords.offsetValue(new OffsetsRecords.OffsetValue(c.offset, c.leaderEpoch,
                    c.metadata == null ? "" : c.metadata, now))));
            written.add(i);
        }
        if (records.isEmpty()) {
            return Promise.completed(codes);
        }
        return write(p, records).map(code -> {
            if (code == ErrorCodes.NONE) {
                Group grp = groups.computeIfAbsent(groupId, id -> new Group(id, p));
                for (int i : written) {
                    CommitRequest c = entries.get(i);
                    grp.offsets.put(new TopicPartition(c.topic, c.partition),
                        new Committed(c.offset, c.leaderEpoch, c.metadata == null ? "" : c.metadata, now));
                }
            }
            for (int i : written) {
                codes[i] = code;
            }
            return codes;
        });
    }

    /** The committed offsets of a group: all of them ({@code wanted} null) or those named. */
    Map<TopicPartition, Committed> fetchOffsets(String groupId, List<TopicPartition> wanted) {
        Group g = groups.get(groupId);
        Map<TopicPartition, Committed> out = new LinkedHashMap<>();
        if (wanted == null) {
            if (g != null) {
                out.putAll(g.offsets);
            }
            return out;
        }
        for (TopicPartition tp : wanted) {
            out.put(tp, g == null ? null : g.offsets.get(tp));
        }
        return out;
    }

    /** OffsetDelete: removes offsets of partitions the group is not subscribed to; per-partition codes. */
    Promise<Object> deleteOffsets(String groupId, List<TopicPartition> partitions) {
        Group g = groups.get(groupId);
        if (g == null) {
            return Promise.completed(ErrorCodes.GROUP_ID_NOT_FOUND);
        }
        if (g.state == State.DEAD) {
            return Promise.completed(ErrorCodes.COORDINATOR_NOT_AVAILABLE);
        }
        Set<String> subscribed = g.members.isEmpty() ? Set.of() : subscribedTopics(g);
        short[] codes = new short[partitions.size()];
        List<Entry> tombstones = new ArrayList<>();
        for (int i = 0; i < partitions.size(); i++) {
            TopicPartition tp = partitions.get(i);
            if (subscribed.contains(tp.topic)) {
                codes[i] = ErrorCodes.GROUP_SUBSCRIBED_TO_TOPIC;
            } else if (g.offsets.containsKey(tp)) {
                tombstones.add(new Entry(OffsetsRecords.offsetKey(groupId, tp.topic, tp.partition), null));
            }
        }
        if (tombstones.isEmpty()) {
            return Promise.completed(codes);
        }
        return write(g.offsetsPartition, tombstones).map(code -> {
            for (int i = 0; i < partitions.size(); i++) {
                if (codes[i] == ErrorCodes.NONE) {
                    if (code == ErrorCodes.NONE) {
                        g.offsets.remove(partitions.get(i));
                    } else {
                        codes[i] = code;
                    }
                }
            }
            maybeForget(g);
            return codes;
        });
    }

    /**
     * The topics the members' consumer-protocol subscriptions name (when the group speaks the "consumer"
     * protocol type, whose subscription starts: i16 version, i32 topic count, topics as i16-length strings).
     */
    private static Set<String> subscribedTopics(Group g) {
        Set<String> topics = new HashSet<>();
        if (!"consumer".equals(g.protocolType)) {
            return topics;
        }
        for (Member m : g.members.values()) {
            byte[] md = g.protocol == null ? (m.protocols.isEmpty() ? EMPTY : m.protocols.get(0).metadata)
                : m.metadata(g.protocol);
            try {
                ByteBuffer b = ByteBuffer.wrap(md);
                b.getShort();
                int n = b.getInt();
                for (int i = 0; i < n; i++) {
                    byte[] s = new byte[b.getShort()];
                    b.get(s);
                    topics.add(new String(s, java.nio.charset.StandardCharsets.UTF_8));
                }
            } catch (RuntimeException e) {
                // Not a subscription we can read: assume nothing (Kafka would treat it as opaque too).
            }
        }
        return topics;
    }

    // ------------------------------------------------------------------ admin: describe, list, delete

    DescribeGroupsResponseData.DescribedGroup describe(String groupId, short version) {
        DescribeGroupsResponseData.DescribedGroup d = new DescribeGroupsResponseData.DescribedGroup();
        d.groupId = groupId;
        Group g = groups.get(groupId);
        if (g == null) {
            d.groupState = State.DEAD.kafkaName;
            d.protocolType = "";
            d.protocolData = "";
            if (version >= 6) {
                d.errorCode = ErrorCodes.GROUP_ID_NOT_FOUND;
                d.errorMessage = "Group " + groupId + " not found.";
            }
            return d;
        }
        d.groupState = g.state.kafkaName;
        d.protocolType = g.protocolType == null ? "" : g.protocolType;
        d.protocolData = g.state == State.STABLE && g.protocol != null ? g.protocol : "";
        for (Member m : g.members.values()) {
            DescribeGroupsResponseData.DescribedGroupMember dm = new DescribeGroupsResponseData.DescribedGroupMember();
            dm.memberId = m.memberId;
            dm.groupInstanceId = m.groupInstanceId;
            dm.clientId = m.clientId == null ? "" : m.clientId;
            dm.clientHost = m.clientHost;
            if (g.state == State.STABLE) {
                dm.memberMetadata = ByteSlice.of(m.metadata(g.protocol));
                dm.memberAssignment = ByteSlice.of(m.assignment);
            }
            d.members.add(dm);
        }
        return d;
    }

    /** Loads every offsets partition this shard owns, then lists its groups. */
    Promise<List<ListGroupsResponseData.ListedGroup>> list(List<Integer> ownedPartitions, List<String> statesFilter,
                                                         List<String> typesFilter) {
        List<Promise<Partition>> all = new ArrayList<>();
        for (int p : ownedPartitions) {
            all.add(ready(p));
        }
        return Promise.whenAllSettled(all).map(x -> {
            List<ListGroupsResponseData.ListedGroup> out = new ArrayList<>();
            for (Group g : groups.values()) {
                if (g.state == State.DEAD) {
                    continue;
                }
                if (statesFilter != null && !statesFilter.isEmpty() && statesFilter.stream()
                    .noneMatch(s -> s.equalsIgnoreCase(g.state.kafkaName))) {
                    continue;
                }
                if (typesFilter != null && !typesFilter.isEmpty() && typesFilter.stream()
                    .noneMatch(s -> s.equalsIgnoreCase("classic"))) {
                    continue;
                }
                ListGroupsResponseData.ListedGroup lg = new ListGroupsResponseData.ListedGroup();
                lg.groupId = g.id;
                lg.protocolType = g.protocolType == null ? "" : g.protocolType;
                lg.groupState = g.state.kafkaName;
                lg.groupType = "classic";
                out.add(lg);
            }
            return out;
        });
    }

    /** DeleteGroups for one group: only empty groups; writes tombstones for its metadata and offsets. */
    Promise<Short> delete(String groupId) {
        Group g = groups.get(groupId);
        if (g == null || g.state == State.DEAD) {
            return Promise.completed(ErrorCodes.GROUP_ID_NOT_FOUND);
        }
        if (!g.members.isEmpty() || g.state != State.EMPTY) {
            return Promise.completed(ErrorCodes.NON_EMPTY_GROUP);
        }
        List<Entry> tombstones = new ArrayList<>();
        tombstones.add(new Entry(OffsetsRecords.groupKey(groupId), null));
        for (TopicPartition tp : g.offsets.keySet()) {
            tombstones.add(new Entry(OffsetsRecords.offsetKey(groupId, tp.topic, tp.partition), null));
        }
        g.transition(State.DEAD);
        return write(g.offsetsPartition, tombstones).map(code -> {
            if (code == ErrorCodes.NONE) {
                groups.remove(groupId);
            } else {
                g.transition(State.EMPTY);
            }
            return code;
        });
    }

    /** Removes every offset of {@code topic} (the topic was deleted). */
    void topicDeleted(String topic) {
        for (Group g : new ArrayList<>(groups.values())) {
            List<Entry> tombstones = new ArrayList<>();
            for (TopicPartition tp : g.offsets.keySet()) {
                if (tp.topic.equals(topic)) {
                    tombstones.add(new Entry(OffsetsRecords.offsetKey(g.id, tp.topic, tp.partition), null));
                }
            }
            if (!tombstones.isEmpty()) {
                write(g.offsetsPartition, tombstones).whenComplete((code, f) -> {
                    if (f == null && code == ErrorCodes.NONE) {
                        g.offsets.keySet().removeIf(tp -> tp.topic.equals(topic));
                        maybeForget(g);
                    }
                });
            }
        }
    }

    List<LagSnapshot> lagSnapshot() {
        List<LagSnapshot> out = new ArrayList<>();
        for (Group g : groups.values()) {
            for (Map.Entry<TopicPartition, Committed> e : g.offsets.entrySet()) {
                out.add(new LagSnapshot(g.id, e.getKey().topic, e.getKey().partition, e.getValue().offset));
            }
        }
        return out;
    }

    // ------------------------------------------------------------------ offset expiry

    private void scheduleExpiry() {
        if (expiryTimer >= 0 || config().offsetsRetentionMs() < 0) {
            return;
        }
        long everyMs = Math.max(1_000, Math.min(600_000, config().offsetsRetentionMs() / 10));
        expiryTimer = st.shard.schedule(TimeUnit.MILLISECONDS.toNanos(everyMs), () -> {
            expiryTimer = -1;
            expireOffsets();
            scheduleExpiry();
        });
    }

    /**
     * Kafka's rule (KIP-211): offsets of a group expire {@code offsetsRetentionMs} after the group became
     * empty; offsets committed without a group (standalone commits) expire that long after their commit.
     */
    private void expireOffsets() {
        long now = System.currentTimeMillis();
        long retention = config().offsetsRetentionMs();
        for (Group g : new ArrayList<>(groups.values())) {
            if (g.state != State.EMPTY || !g.members.isEmpty()) {
                continue;
            }
            List<Entry> tombstones = new ArrayList<>();
            List<TopicPartition> expired = new ArrayList<>();
            for (Map.Entry<TopicPartition, Committed> e : g.offsets.entrySet()) {
                long since = g.protocolType != null ? g.stateTimestampMs : e.getValue().commitTimestampMs;
                if (now - since >= retention) {
                    expired.add(e.getKey());
                    tombstones.add(new Entry(OffsetsRecords.offsetKey(g.id, e.getKey().topic, e.getKey().partition),
                        null));
                }
            }
            boolean dropGroup = expired.size() == g.offsets.size() && now - g.stateTimestampMs >= retention;
            if (dropGroup && g.protocolType != null) {
                tombstones.add(new Entry(OffsetsRecords.groupKey(g.id), null));
            }
            if (tombstones.isEmpty()) {
                continue;
            }
            write(g.offsetsPartition, tombstones).whenComplete((code, f) -> {
                if (f == null && code == ErrorCodes.NONE) {
                    expired.forEach(g.offsets::remove);
                    if (dropGroup && g.members.isEmpty() && g.state == State.EMPTY) {
                        groups.remove(g.id);
                    }
                }
            });
        }
    }
}
