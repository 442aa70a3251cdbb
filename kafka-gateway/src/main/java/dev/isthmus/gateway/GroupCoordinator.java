package dev.isthmus.gateway;

import dev.isthmus.gateway.group.GroupApi;
import dev.isthmus.gateway.group.GroupConfig;
import dev.isthmus.gateway.group.GroupErrors;
import dev.isthmus.gateway.group.GroupState;
import dev.isthmus.gateway.group.GroupStateMachine;
import dev.isthmus.gateway.group.Outbox;
import dev.isthmus.gateway.group.TopicPartition;
import dev.isthmus.uring.Verify;
import dev.isthmus.uring.shard.Promise;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The group coordinator of one shard: a thin shell that runs a {@link GroupStateMachine} for each
 * {@code __consumer_offsets} partition this shard leads, on the shard's thread. It routes each group request to
 * the machine of its group's partition ({@link #partitionFor}, Kafka's hash) under a fresh request id and keeps
 * the request's promise until the machine answers that id; it appends what the machine asks to persist through
 * the {@link GroupStore} and reports the outcome back ({@link GroupStateMachine#written}); it arms one shard timer
 * per group for the group's next deadline (session, pending member, join, sync) and one per partition for the
 * offset-expiry run, and steps the machine when they fire. The clock is read here, once per step.
 *
 * <p>Loading: the first request for a partition this replica leads replays the partition into a fresh machine
 * (requests wait on the same promise; COORDINATOR_LOAD_IN_PROGRESS until the new leader has committed an entry of
 * its own term, NOT_COORDINATOR on a follower). Losing leadership unloads it: parked requests and requests waiting
 * for a write answer NOT_COORDINATOR, timers stop, and the members find the new coordinator. Owner-shard only:
 * every method runs on this shard's thread.
 */
final class GroupCoordinator {
    static final String OFFSETS_TOPIC = "__consumer_offsets";
    private static final System.Logger LOG = System.getLogger(GroupCoordinator.class.getName());
    private static final long NS_PER_MS = 1_000_000L;
    private static final long NEVER = Long.MAX_VALUE;
    private static final int DRAIN_ROUNDS_MAX = 1_000_000;

    /** Group, topic, partition, committed offset: for the lag metric. */
    record LagSnapshot(String group, String topic, int partition, long committedOffset) {
    }

    /** Why a group request cannot be served here: a Kafka error code the client acts on. */
    static final class Unavailable extends RuntimeException {
        final short code;

        Unavailable(short code, String message) {
            super(message, null, false, false);
            this.code = code;
        }
    }

    /** One offsets partition this shard leads: its machine (once replayed), its timers. */
    private static final class Loaded {
        final int partition;
        final Partition part;
        final Promise<Partition> ready = new Promise<>();
        final Outbox out = new Outbox();
        /** Group id -> {shard timer id, the deadline it was armed for}. */
        final Map<String, long[]> timers = new HashMap<>();
        GroupStateMachine machine;
        long cleanupTimer = -1;
        long cleanupDeadlineMs = NEVER;
        boolean draining;
        boolean unloaded;

        Loaded(int partition, Partition part) {
            this.partition = partition;
            this.part = part;
        }
    }

    /** A request step on a machine: {@code requestId} is the id its reply will carry. */
    @FunctionalInterface
    private interface Step {
        void run(GroupStateMachine machine, long nowMs, long requestId, Outbox out);
    }

    private final Broker broker;
    private final ShardState st;
    private final GroupStore store = new GroupStore();
    private final Map<Integer, Loaded> partitions = new HashMap<>();
    private final Map<Long, Promise<Object>> waiting = new HashMap<>();
    private long nextRequestId;

    GroupCoordinator(Broker broker, ShardState st) {
        this.broker = broker;
        this.st = st;
    }

    /** Kafka's placement of a group on the offsets topic. */
    static int partitionFor(String groupId, int partitions) {
        return (groupId.hashCode() & 0x7fffffff) % partitions;
    }

    private GroupConfig groupConfig() {
        BrokerConfig c = broker.config();
        GroupConfig d = GroupConfig.defaults();
        return new GroupConfig(c.groupMinSessionTimeoutMs(), c.groupMaxSessionTimeoutMs(),
            c.groupInitialRebalanceDelayMs(), d.newMemberJoinTimeoutMs(), d.maxSize(), c.offsetsRetentionMs(),
            GroupConfig.checkIntervalFor(c.offsetsRetentionMs()), d.offsetMetadataMaxBytes());
    }

    private static long nowMs() {
        return System.currentTimeMillis();
    }

    // ------------------------------------------------------------------ loading

    /**
     * The offsets partition {@code p}, replayed into its machine the first time it is used while this replica
     * leads it (and again after each leadership change). Fails with {@link Unavailable} NOT_COORDINATOR on a
     * follower and COORDINATOR_LOAD_IN_PROGRESS until the new leader has committed an entry of its own term (so
     * every earlier commit is replayed). Requests for its groups wait on the same promise.
     */
    Promise<Partition> ready(int p) {
        Loaded existing = partitions.get(p);
        if (existing != null) {
            return existing.ready;
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
            Loaded again = partitions.get(p);
            return again != null ? again.ready : load(p, part);
        });
    }

    private Promise<Partition> load(int p, Partition part) {
        Loaded l = new Loaded(p, part);
        partitions.put(p, l);
        GroupStateMachine machine = new GroupStateMachine(groupConfig(), GroupStateMachine.MemberIds.RANDOM);
        long t0 = System.nanoTime();
        store.replay(part, machine).whenComplete((records, failure) -> {
            if (partitions.get(p) != l) {
                return; // unloaded meanwhile: its promise has failed already
            }
            if (failure != null) {
                partitions.remove(p);
                l.ready.fail(failure);
                return;
            }
            l.machine = machine;
            machine.loaded(nowMs(), l.out);
            drain(l);
            LOG.log(System.Logger.Level.DEBUG, () -> "loaded " + OFFSETS_TOPIC + "-" + p + " on shard " + st.shard.id()
                + ": " + records + " records, " + machine.groupCount() + " groups in "
                + (System.nanoTime() - t0) / 1000 + " us");
            l.ready.complete(part);
        });
        return l.ready;
    }

    /**
     * This shard's replica of offsets partition {@code p} gained or lost leadership. Its groups are unloaded:
     * waiting requests answer NOT_COORDINATOR and timers stop; on a gain nothing more happens until a request
     * arrives (then the partition loads).
     */
    void leadershipChanged(int p, boolean leader) {
        Loaded l = partitions.remove(p);
        if (l == null) {
            return;
        }
        l.unloaded = true;
        l.ready.fail(new Unavailable(ErrorCodes.NOT_COORDINATOR, "leadership of " + OFFSETS_TOPIC + "-" + p + " moved"));
        for (long[] t : l.timers.values()) {
            st.shard.cancelTimer(t[0]);
        }
        l.timers.clear();
        if (l.cleanupTimer >= 0) {
            st.shard.cancelTimer(l.cleanupTimer);
        }
        if (l.machine != null) {
            l.machine.unload(l.out);
            for (Outbox.Reply r : List.copyOf(l.out.replies())) {
                complete(r);
            }
            l.out.clear();
        }
        LOG.log(System.Logger.Level.INFO, "unloaded the groups of " + OFFSETS_TOPIC + "-" + p + " on shard "
            + st.shard.id() + (leader ? " (re-elected: they load again on the next request)" : ": no longer the leader"));
    }

    // ------------------------------------------------------------------ stepping the machine

    /** Runs {@code step} on partition {@code p}'s machine (loaded: callers wait on {@link #ready} first). */
    @SuppressWarnings("unchecked")
    private <T> Promise<T> call(int p, Step step) {
        Loaded l = partitions.get(p);
        if (l == null || l.machine == null) {
            return Promise.failed(new Unavailable(ErrorCodes.NOT_COORDINATOR, OFFSETS_TOPIC + "-" + p
                + " is not loaded on this shard"));
        }
        long id = nextRequestId++;
        Promise<T> promise = new Promise<>();
        waiting.put(id, (Promise<Object>) promise);
        step.run(l.machine, nowMs(), id, l.out);
        drain(l);
        return promise;
    }

    private GroupStateMachine machine(int p) {
        Loaded l = partitions.get(p);
        if (l == null || l.machine == null) {
            throw new Unavailable(ErrorCodes.NOT_COORDINATOR, OFFSETS_TOPIC + "-" + p + " is not loaded on this shard");
        }
        return l.machine;
    }

    /**
     * Carries out what the machine asked: completes replies, appends writes (whose outcome steps the machine
     * again), re-arms the timers of touched groups and the expiry timer. Re-entrant calls (a write answered at
     * once, a promise listener calling back) leave their work to the loop already running.
     */
    private void drain(Loaded l) {
        if (l.draining || l.unloaded) {
            return;
        }
        l.draining = true;
        try {
            for (int round = 0; !l.out.isEmpty(); round++) {
                Verify.that(round < DRAIN_ROUNDS_MAX, "group outbox of partition %d never drains", l.partition);
                List<Outbox.Reply> replies = List.copyOf(l.out.replies());
                List<Outbox.Write> writes = List.copyOf(l.out.writes());
                List<String> touched = List.copyOf(l.out.touched());
                l.out.clear();
                for (Outbox.Reply r : replies) {
                    complete(r);
                }
                for (Outbox.Write w : writes) {
                    persist(l, w);
                }
                for (String groupId : touched) {
                    arm(l, groupId);
                }
                armCleanup(l);
                if (l.unloaded) {
                    return;
                }
            }
        } finally {
            l.draining = false;
        }
    }

    private void complete(Outbox.Reply r) {
        Promise<Object> p = waiting.remove(r.requestId());
        if (p != null) {
            p.complete(r.response());
        }
    }

    private void persist(Loaded l, Outbox.Write w) {
        Promise<Partition.AppendResult> appended;
        try {
            appended = store.append(st.arena, l.part, w, nowMs());
        } catch (RuntimeException e) {
            // A record that cannot be encoded (a bug, or a value beyond the format's limits) fails its write alone.
            appended = Promise.failed(e);
        }
        appended.whenComplete((res, failure) -> {
            if (l.unloaded) {
                return; // the machine answered everything waiting for it when it was unloaded
            }
            short code = failure != null ? GroupErrors.COORDINATOR_NOT_AVAILABLE : res.errorCode();
            if (failure != null) {
                LOG.log(System.Logger.Level.WARNING, "group write to " + OFFSETS_TOPIC + "-" + l.partition
                    + " failed: " + failure);
            }
            l.machine.written(nowMs(), w.writeId(), code, failure != null ? -1 : res.baseOffset(), l.out);
            drain(l);
        });
    }

    /** Arms (or keeps, when one fires no later) the group's timer for its next deadline. */
    private void arm(Loaded l, String groupId) {
        long deadline = l.machine.nextDeadlineMs(groupId);
        long[] t = l.timers.get(groupId);
        if (deadline == NEVER) {
            if (t != null) {
                st.shard.cancelTimer(t[0]);
                l.timers.remove(groupId);
            }
            return;
        }
        if (t != null && t[1] <= deadline) {
            return; // fires first; the tick then re-arms for the real deadline
        }
        if (t != null) {
            st.shard.cancelTimer(t[0]);
        }
        long delayMs = Math.max(0, deadline - nowMs());
        long id = st.shard.schedule(delayMs * NS_PER_MS, () -> {
            l.timers.remove(groupId);
            if (!l.unloaded) {
                l.machine.tickGroup(nowMs(), groupId, l.out);
                drain(l);
            }
        });
        l.timers.put(groupId, new long[] {id, deadline});
    }

    private void armCleanup(Loaded l) {
        long deadline = l.machine.nextCleanupMs();
        if (deadline == l.cleanupDeadlineMs) {
            return;
        }
        if (l.cleanupTimer >= 0) {
            st.shard.cancelTimer(l.cleanupTimer);
            l.cleanupTimer = -1;
        }
        l.cleanupDeadlineMs = deadline;
        if (deadline == NEVER) {
            return;
        }
        l.cleanupTimer = st.shard.schedule(Math.max(0, deadline - nowMs()) * NS_PER_MS, () -> {
            l.cleanupTimer = -1;
            l.cleanupDeadlineMs = NEVER;
            if (!l.unloaded) {
                l.machine.cleanup(nowMs(), l.out);
                drain(l);
            }
        });
    }

    // ------------------------------------------------------------------ requests (on the partition's shard)

    Promise<GroupApi.JoinResponse> join(int p, GroupApi.JoinRequest r) {
        return call(p, (m, now, id, out) -> m.join(now, id, r, out));
    }

    Promise<GroupApi.SyncResponse> sync(int p, GroupApi.SyncRequest r) {
        return call(p, (m, now, id, out) -> m.sync(now, id, r, out));
    }

    Promise<Short> heartbeat(int p, GroupApi.HeartbeatRequest r) {
        return this.<GroupApi.HeartbeatResponse>call(p, (m, now, id, out) -> m.heartbeat(now, id, r, out))
            .map(GroupApi.HeartbeatResponse::errorCode);
    }

    Promise<GroupApi.LeaveResponse> leave(int p, GroupApi.LeaveRequest r) {
        return call(p, (m, now, id, out) -> m.leave(now, id, r, out));
    }

    Promise<GroupApi.OffsetCommitResponse> commit(int p, GroupApi.OffsetCommitRequest r) {
        return call(p, (m, now, id, out) -> m.commitOffsets(now, id, r, out));
    }

    /** TxnOffsetCommit: the offsets are written in the producer's transaction and stay pending until its marker. */
    Promise<GroupApi.OffsetCommitResponse> commitTransactional(int p, GroupApi.TxnOffsetCommitRequest r) {
        return call(p, (m, now, id, out) -> m.commitTransactionalOffsets(now, id, r, out));
    }

    /**
     * A transaction marker of {@code producerId} is durable in offsets partition {@code p}: on commit the producer's
     * pending offsets there become the committed ones, on abort they go. Idempotent. The partition side's
     * WriteTxnMarkers handler calls it on this shard once the marker's append on a {@code __consumer_offsets}
     * partition answers NONE, before the transaction coordinator hears so. When the partition is not loaded here,
     * nothing to do: its next load replays the marker from the log (and a load under way reads it, as the marker is
     * below the high watermark by now).
     */
    void markerWritten(int p, long producerId, boolean commit) {
        Loaded l = partitions.get(p);
        if (l == null || l.machine == null || l.unloaded) {
            return;
        }
        l.machine.replayMarker(producerId, commit);
        drain(l);
    }

    Map<TopicPartition, GroupApi.FetchedOffset> fetchOffsets(int p, String groupId, List<TopicPartition> partitions,
                                                             boolean requireStable) {
        return machine(p).fetchOffsets(groupId, partitions, requireStable);
    }

    Promise<GroupApi.OffsetDeleteResponse> deleteOffsets(int p, GroupApi.OffsetDeleteRequest r) {
        return call(p, (m, now, id, out) -> m.deleteOffsets(now, id, r, out));
    }

    Promise<GroupApi.DeleteGroupResponse> delete(int p, String groupId) {
        return call(p, (m, now, id, out) -> m.deleteGroup(now, id, groupId, out));
    }

    GroupApi.DescribedGroup describe(int p, String groupId) {
        return machine(p).describe(groupId);
    }

    /** Loads every offsets partition this shard owns, then lists their groups (those the filters keep). */
    Promise<List<GroupApi.ListedGroup>> list(List<Integer> ownedPartitions, List<String> statesFilter,
                                             List<String> typesFilter) {
        List<Promise<Partition>> all = new ArrayList<>();
        for (int p : ownedPartitions) {
            all.add(ready(p));
        }
        return Promise.whenAllSettled(all).map(x -> {
            List<GroupApi.ListedGroup> out = new ArrayList<>();
            if (typesFilter != null && !typesFilter.isEmpty()
                && typesFilter.stream().noneMatch(s -> s.equalsIgnoreCase("classic"))) {
                return out;
            }
            for (int p : ownedPartitions) {
                Loaded l = partitions.get(p);
                if (l == null || l.machine == null) {
                    continue;
                }
                for (GroupApi.ListedGroup g : l.machine.list()) {
                    if (statesFilter == null || statesFilter.isEmpty()
                        || statesFilter.stream().anyMatch(s -> s.equalsIgnoreCase(g.state().kafkaName))) {
                        out.add(g);
                    }
                }
            }
            return out;
        });
    }

    /** The topic was deleted: every loaded group drops its offsets of it. */
    void topicDeleted(String topic) {
        for (Loaded l : List.copyOf(partitions.values())) {
            if (l.machine != null && !l.unloaded) {
                l.machine.topicDeleted(nowMs(), topic, l.out);
                drain(l);
            }
        }
    }

    List<LagSnapshot> lagSnapshot() {
        List<LagSnapshot> out = new ArrayList<>();
        for (Loaded l : partitions.values()) {
            if (l.machine != null) {
                l.machine.forEachCommittedOffset((group, tp, offset) ->
                    out.add(new LagSnapshot(group, tp.topic(), tp.partition(), offset)));
            }
        }
        return out;
    }

    /** The state Kafka names for an unknown group in DescribeGroups. */
    static final String DEAD = GroupState.DEAD.kafkaName;
}
