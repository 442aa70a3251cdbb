package dev.isthmus.gateway;

import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.WriteTxnMarkersRequestData;
import dev.isthmus.gateway.protocol.message.WriteTxnMarkersResponseData;
import dev.isthmus.gateway.txn.TransactionLog;
import dev.isthmus.gateway.txn.TxnConfig;
import dev.isthmus.gateway.txn.TxnErrors;
import dev.isthmus.gateway.txn.TxnPartition;
import dev.isthmus.gateway.txn.TxnStateMachine;
import dev.isthmus.log.BatchBuilder;
import dev.isthmus.log.Log;
import dev.isthmus.log.LogException;
import dev.isthmus.log.RecordBatch;
import dev.isthmus.log.Records;
import dev.isthmus.uring.shard.Promise;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * The transaction coordinators of one shard: for every {@code __transaction_state} partition whose replica on this
 * shard leads, a {@link TxnStateMachine} stepped here, with what it needs carried out: its records appended to the
 * partition (answered once committed), its markers written (WriteTxnMarkers to each partition's leader, batched
 * per broker, retried), its timers (timed-out transactions, expired ids), producer ids ({@link ProducerIdBlocks}).
 *
 * <h2>Lifecycle</h2>
 * A coordinator follows its partition's Raft leadership: when the replica here becomes leader in term T, a
 * coordinator of epoch T is created; once the leader has committed its first entry (so every record earlier
 * leaders committed is below its high watermark) the partition is replayed into the machine and markers of
 * transactions found deciding are sent again. Until then requests get COORDINATOR_LOAD_IN_PROGRESS; on another
 * broker or shard, NOT_COORDINATOR. On losing leadership the coordinator is dropped: waiting requests get
 * NOT_COORDINATOR, its markers stop, late completions are ignored; the next leader replays what was committed.
 *
 * <h2>Threads</h2>
 * Owned by its shard: every method runs on the shard thread; requests reach it by cross-shard calls from the
 * connection's shard ({@link TxnHandlers}).
 */
final class TxnCoordinator {
    static final String TOPIC = "__transaction_state";
    private static final System.Logger LOG = System.getLogger(TxnCoordinator.class.getName());
    private static final long LOAD_POLL_NS = 5_000_000L;
    private static final long LOAD_RETRY_NS = 1_000_000_000L;
    private static final long APPEND_RETRY_NS = 100_000_000L;
    /** Backoff of a marker that must be retried (no leader known, leader moved, timeout). */
    static final long MARKER_RETRY_NS = 100_000_000L;
    /** Markers in one WriteTxnMarkers request at most. */
    static final int MAX_MARKERS_PER_REQUEST = 1000;

    private final Broker broker;
    private final ShardState st;
    private final TxnConfig config;
    final ProducerIdBlocks producerIds;
    private final Map<Integer, Coordinated> coordinated = new HashMap<>();
    private long abortTimer = -1;
    private long expireTimer = -1;
    private boolean closed;
    // Marker sending: queued markers by destination node, and destinations with a request in flight.
    private final Map<Integer, ArrayDeque<MarkerJob>> queued = new LinkedHashMap<>();
    private final Set<Integer> inFlight = new HashSet<>();
    private boolean drainScheduled;
    private long lastMarkerWarningNs;
    /** Markers written (acknowledged by their partition), retried, given up (metrics). */
    long markersWritten;
    long markerRetries;
    long markersAbandoned;

    /** One partition coordinated here in one term: {@code machine} is null while it loads. */
    final class Coordinated {
        final int index;
        final long term;
        final Partition part;
        TxnStateMachine machine;
        boolean dropped;
        final Set<Promise<TxnStateMachine.Reply>> waiting = new HashSet<>();

        Coordinated(int index, long term, Partition part) {
            this.index = index;
            this.term = term;
            this.part = part;
        }
    }

    /** One partition's marker of one transaction on its way. */
    private record MarkerJob(Coordinated owner, TxnStateMachine.Markers markers, TxnPartition partition) {
    }

    /** What a request gets when this shard does not coordinate the partition now. */
    record Unavailable(short code, String message) {
    }

    TxnCoordinator(Broker broker, ShardState st) {
        this.broker = broker;
        this.st = st;
        this.config = broker.config().transactions();
        this.producerIds = new ProducerIdBlocks(broker, st.shard);
    }

    // ------------------------------------------------------------------ leadership and loading

    /** This shard's replica of {@code __transaction_state-p} gained ({@code leader}) or lost leadership. */
    void leadershipChanged(Partition p, boolean leader, long term) {
        Coordinated old = coordinated.get(p.index);
        if (old != null && leader && old.term == term && old.part == p) {
            return;
        }
        if (old != null) {
            coordinated.remove(p.index);
            drop(old, leader ? "re-elected in term " + term : "no longer the leader");
        }
        if (leader && !closed) {
            Coordinated c = new Coordinated(p.index, term, p);
            coordinated.put(p.index, c);
            load(c);
            scheduleTimers();
        }
    }

    private void drop(Coordinated c, String why) {
        c.dropped = true;
        for (Promise<TxnStateMachine.Reply> w : new ArrayList<>(c.waiting)) {
            w.complete(new TxnStateMachine.Reply(w, TxnErrors.NOT_COORDINATOR, -1, (short) -1));
        }
        c.waiting.clear();
        for (ArrayDeque<MarkerJob> q : queued.values()) {
            q.removeIf(j -> j.owner == c);
        }
        if (c.machine != null) {
            LOG.log(System.Logger.Level.INFO, "transaction coordinator of " + TOPIC + "-" + c.index + " (epoch "
                + c.term + ") on shard " + st.shard.id() + " unloaded: " + why);
        }
    }

    private void load(Coordinated c) {
        if (c.dropped || closed) {
            return;
        }
        if (!c.part.isLeader() || c.part.replica.term() != c.term) {
            return; // a leadership change is on its way
        }
        if (!c.part.leaderReady()) {
            st.shard.schedule(LOAD_POLL_NS, () -> load(c));
            return;
        }
        long t0 = System.nanoTime();
        TxnStateMachine m = new TxnStateMachine(c.index, (int) c.term, config);
        Promise<Void> done = new Promise<>();
        replay(c, m, c.part.logStartOffset(), c.part.highWatermark(), done, new long[1]);
        done.whenComplete((x, f) -> {
            if (c.dropped) {
                return;
            }
            if (f != null) {
                LOG.log(System.Logger.Level.ERROR, "cannot load " + TOPIC + "-" + c.index + ": " + f.getMessage()
                    + "; trying again in 1 s");
                st.shard.schedule(LOAD_RETRY_NS, () -> load(c));
                return;
            }
            c.machine = m;
            LOG.log(System.Logger.Level.INFO, "transaction coordinator of " + TOPIC + "-" + c.index + " (epoch "
                + c.term + ") loaded " + m.size() + " transactional ids on shard " + st.shard.id() + " in "
                + (System.nanoTime() - t0) / 1_000_000 + " ms");
            run(c, m.loaded(System.currentTimeMillis()));
        });
    }

    private void replay(Coordinated c, TxnStateMachine m, long from, long hw, Promise<Void> done, long[] records) {
        if (from >= hw) {
            done.complete(null);
            return;
        }
        Log log = c.part.log();
        if (log == null) {
            done.fail(new IllegalStateException("the log of " + TOPIC + "-" + c.index + " is being replaced"));
            return;
        }
        log.read(from, hw, 1 << 20, new Log.ReadHandler() {
            @Override
            public void onRead(MemorySegment bytes, long firstOffset, long lastOffset) {
                if (c.dropped) {
                    done.fail(new IllegalStateException("unloaded"));
                    return;
                }
                if (bytes.byteSize() == 0) {
                    done.complete(null);
                    return;
                }
                long next;
                try {
                    next = Math.max(applyBatches(m, bytes, hw, records), lastOffset + 1);
                } catch (RuntimeException e) {
                    done.fail(new IllegalStateException("record near offset " + firstOffset + ": " + e.getMessage(),
                        e));
                    return;
                }
                replay(c, m, next, hw, done, records);
            }

            @Override
            public void onError(LogException error) {
                done.fail(error);
            }
        });
    }

    /** Replays every record of the batches in {@code bytes} below {@code hw}; returns the offset after the last. */
    private static long applyBatches(TxnStateMachine m, MemorySegment bytes, long hw, long[] records) {
        RecordBatch batch = new RecordBatch();
        Records recs = new Records();
        long pos = 0;
        long next = -1;
        while (pos + RecordBatch.HEADER_BYTES <= bytes.byteSize()) {
            batch.wrap(bytes, pos);
            int size = batch.sizeInBytes();
            if (size <= 0 || pos + size > bytes.byteSize()) {
                break;
            }
            next = batch.baseOffset() + batch.lastOffsetDelta() + 1;
            if (!batch.isControl() && recs.wrap(batch)) {
                while (recs.next()) {
                    if (recs.offset() >= hw) {
                        break;
                    }
                    MemorySegment k = recs.key();
                    if (k == null) {
                        continue;
                    }
                    String id = TransactionLog.readKey(ByteBuffer.wrap(k.toArray(ValueLayout.JAVA_BYTE)));
                    if (id == null) {
                        continue; // a key version this broker does not know
                    }
                    MemorySegment v = recs.value();
                    m.replay(id, v == null ? null
                        : TransactionLog.readValue(ByteBuffer.wrap(v.toArray(ValueLayout.JAVA_BYTE))));
                    records[0]++;
                }
            } else if (!batch.isControl()) {
                throw new IllegalStateException("a compressed batch at offset " + batch.baseOffset()
                    + " (the transaction log is written uncompressed)");
            }
            pos += size;
        }
        return next;
    }

    /**
     * The coordinator of partition {@code p} here, ready; or an {@link Unavailable}: NOT_COORDINATOR when this
     * shard does not lead it, COORDINATOR_LOAD_IN_PROGRESS while it loads.
     */
    Object ready(int p) {
        Coordinated c = coordinated.get(p);
        if (c == null || closed || !c.part.isLeader() || c.part.replica.term() != c.term) {
            return new Unavailable(TxnErrors.NOT_COORDINATOR, "this broker does not lead " + TOPIC + "-" + p);
        }
        if (c.machine == null) {
            return new Unavailable(TxnErrors.COORDINATOR_LOAD_IN_PROGRESS, TOPIC + "-" + p + " is loading");
        }
        return c;
    }

    // ------------------------------------------------------------------ requests (this shard)

    /** Runs one request on the machine of partition {@code p}; NEED_PRODUCER_ID waits for a block and asks again. */
    private Promise<TxnStateMachine.Reply> call(int p,
                                                Function<Promise<TxnStateMachine.Reply>, TxnStateMachine.Output> step,
                                                boolean mayNeedId) {
        Object r = ready(p);
        if (r instanceof Unavailable u) {
            return Promise.completed(new TxnStateMachine.Reply(null, u.code(), -1, (short) -1));
        }
        Coordinated c = (Coordinated) r;
        Promise<TxnStateMachine.Reply> waiter = new Promise<>();
        c.waiting.add(waiter);
        TxnStateMachine.Output out = step.apply(waiter);
        TxnStateMachine.Reply now = out.reply();
        if (now != null && now.error() == TxnErrors.NEED_PRODUCER_ID) {
            c.waiting.remove(waiter);
            if (!mayNeedId) {
                return Promise.completed(new TxnStateMachine.Reply(null, TxnErrors.COORDINATOR_LOAD_IN_PROGRESS, -1,
                    (short) -1));
            }
            return producerIds.ready().flatMap(x -> call(p, step, false))
                .recover(f -> new TxnStateMachine.Reply(null, TxnErrors.COORDINATOR_LOAD_IN_PROGRESS, -1, (short) -1));
        }
        run(c, out);
        return waiter;
    }

    Promise<TxnStateMachine.Reply> initProducerId(int p, String txnId, int timeoutMs, long producerId, short epoch) {
        return call(p, w -> machine(p).initProducerId(w, txnId, timeoutMs, producerId, epoch,
            System.currentTimeMillis(), producerIds::tryNext), true);
    }

    Promise<TxnStateMachine.Reply> addPartitions(int p, String txnId, long producerId, short epoch,
                                                 List<TxnPartition> partitions, boolean tv2) {
        return call(p, w -> machine(p).addPartitions(w, txnId, producerId, epoch, partitions, tv2,
            System.currentTimeMillis()), false);
    }

    Promise<TxnStateMachine.Reply> endTxn(int p, String txnId, long producerId, short epoch, boolean commit,
                                          boolean tv2) {
        return call(p, w -> machine(p).endTxn(w, txnId, producerId, epoch, commit, tv2, System.currentTimeMillis(),
            producerIds::tryNext), true);
    }

    /** KIP-890 verification; an {@link Unavailable} or the per-partition codes. */
    Object verify(int p, String txnId, long producerId, short epoch, List<TxnPartition> partitions) {
        Object r = ready(p);
        if (r instanceof Unavailable) {
            return r;
        }
        return ((Coordinated) r).machine.verifyPartitions(txnId, producerId, epoch, partitions);
    }

    /** DescribeTransactions: an {@link Unavailable}, a description, or null (unknown id). */
    Object describe(int p, String txnId) {
        Object r = ready(p);
        if (r instanceof Unavailable) {
            return r;
        }
        return ((Coordinated) r).machine.describe(txnId);
    }

    /** ListTransactions over the partitions this shard coordinates: the listings, and whether one is loading. */
    record Listed(List<TxnStateMachine.Listing> listings, boolean loading) {
    }

    Listed list(java.util.Collection<dev.isthmus.gateway.txn.TxnState> states, java.util.Collection<Long> producerIds,
                long minDurationMs, java.util.regex.Pattern pattern) {
        List<TxnStateMachine.Listing> out = new ArrayList<>();
        boolean loading = false;
        long now = System.currentTimeMillis();
        for (Coordinated c : coordinated.values()) {
            if (!c.part.isLeader()) {
                continue;
            }
            if (c.machine == null) {
                loading = true;
                continue;
            }
            out.addAll(c.machine.list(states, producerIds, minDurationMs, pattern, now));
        }
        return new Listed(out, loading);
    }

    private TxnStateMachine machine(int p) {
        return coordinated.get(p).machine;
    }

    // ------------------------------------------------------------------ carrying out outputs

    /** Carries out a machine's output for coordinator {@code c}: replies, appends, markers. */
    private void run(Coordinated c, TxnStateMachine.Output out) {
        for (TxnStateMachine.Reply r : out.replies()) {
            if (r.waiter() instanceof Promise<?> p) {
                @SuppressWarnings("unchecked")
                Promise<TxnStateMachine.Reply> w = (Promise<TxnStateMachine.Reply>) p;
                c.waiting.remove(w);
                w.complete(r);
            }
        }
        for (TxnStateMachine.Append a : out.appends()) {
            append(c, a);
        }
        for (TxnStateMachine.Markers m : out.markers()) {
            for (TxnPartition tp : m.partitions()) {
                enqueue(new MarkerJob(c, m, tp));
            }
        }
    }

    private void append(Coordinated c, TxnStateMachine.Append a) {
        if (c.dropped) {
            return;
        }
        long size = RecordBatch.HEADER_BYTES + 32L + a.key().length + (a.value() == null ? 0 : a.value().length);
        MemoryArena arena = st.arena;
        long block = arena.allocate(size, Subsystem.OTHER);
        Promise<Partition.AppendResult> appended;
        if (block == MemoryArena.NO_MEMORY) {
            appended = Promise.completed(new Partition.AppendResult(TxnErrors.COORDINATOR_NOT_AVAILABLE, -1, -1,
                "no memory for the record"));
        } else {
            try {
                MemorySegment seg = arena.segment(block, size);
                BatchBuilder b = new BatchBuilder(seg, 0, 0);
                b.add(System.currentTimeMillis(), a.key(), a.value());
                appended = c.part.appendInternal(seg, b.build());
            } finally {
                arena.free(block);
            }
        }
        appended.whenComplete((res, f) -> {
            if (c.dropped) {
                return;
            }
            short code = f != null ? TxnErrors.COORDINATOR_NOT_AVAILABLE : appendError(res.errorCode());
            TxnStateMachine.Output next = c.machine.appended(a.id(), code, System.currentTimeMillis());
            if (code == TxnErrors.NONE) {
                run(c, next);
            } else {
                st.shard.schedule(APPEND_RETRY_NS, () -> {
                    if (!c.dropped) {
                        run(c, next);
                    } else {
                        next.replies().forEach(r -> {
                            if (r.waiter() instanceof Promise<?> p) {
                                @SuppressWarnings("unchecked")
                                Promise<TxnStateMachine.Reply> w = (Promise<TxnStateMachine.Reply>) p;
                                w.complete(new TxnStateMachine.Reply(w, TxnErrors.NOT_COORDINATOR, -1, (short) -1));
                            }
                        });
                    }
                });
            }
        });
    }

    /** Kafka's mapping of a transaction log append's error to the coordinator's answer. */
    private static short appendError(short code) {
        return switch (code) {
            case TxnErrors.NONE -> TxnErrors.NONE;
            case TxnErrors.NOT_LEADER_OR_FOLLOWER, TxnErrors.KAFKA_STORAGE_ERROR -> TxnErrors.NOT_COORDINATOR;
            default -> TxnErrors.COORDINATOR_NOT_AVAILABLE;
        };
    }

    // ------------------------------------------------------------------ markers

    private void enqueue(MarkerJob j) {
        TopicTable.Topic t = st.topics.get(j.partition.topic());
        if (t == null || j.partition.partition() < 0 || j.partition.partition() >= t.partitions()) {
            // The partition is gone (topic deleted): it needs no marker, as Kafka drops it.
            markerDone(j);
            return;
        }
        int[] leader = st.leaders.get(t.partition(j.partition.partition()).groupId());
        if (leader == null || leader[0] < 0) {
            retry(j);
            return;
        }
        queued.computeIfAbsent(leader[0], n -> new ArrayDeque<>()).add(j);
        scheduleDrain();
    }

    private void retry(MarkerJob j) {
        markerRetries++;
        st.shard.schedule(MARKER_RETRY_NS, () -> {
            if (!j.owner.dropped && !closed) {
                enqueue(j);
            }
        });
    }

    private void markerDone(MarkerJob j) {
        if (j.owner.dropped || j.owner.machine == null) {
            return;
        }
        markersWritten++;
        run(j.owner, j.owner.machine.markerWritten(j.markers.transactionalId(), j.markers.producerId(),
            j.markers.producerEpoch(), j.partition));
    }

    private void scheduleDrain() {
        if (drainScheduled) {
            return;
        }
        drainScheduled = true;
        // On the next loop turn, so that markers of the transactions decided in this one share requests.
        st.shard.execute(() -> {
            drainScheduled = false;
            drain();
        });
    }

    private void drain() {
        if (closed) {
            return;
        }
        for (Map.Entry<Integer, ArrayDeque<MarkerJob>> e : queued.entrySet()) {
            int node = e.getKey();
            ArrayDeque<MarkerJob> q = e.getValue();
            if (q.isEmpty() || inFlight.contains(node)) {
                continue;
            }
            List<MarkerJob> batch = new ArrayList<>();
            while (!q.isEmpty() && batch.size() < MAX_MARKERS_PER_REQUEST) {
                MarkerJob j = q.poll();
                if (!j.owner.dropped) {
                    batch.add(j);
                }
            }
            if (!batch.isEmpty()) {
                send(node, batch);
            }
        }
    }

    /** Key of one WritableTxnMarker: the jobs of one transaction decision share it. */
    private record MarkerKey(long producerId, short epoch, boolean commit, int coordinatorEpoch) {
    }

    private void send(int node, List<MarkerJob> batch) {
        if (!broker.handlers().supports(ApiKeys.WRITE_TXN_MARKERS)) {
            long now = System.nanoTime();
            if (lastMarkerWarningNs == 0 || now - lastMarkerWarningNs > 60_000_000_000L) {
                lastMarkerWarningNs = now;
                LOG.log(System.Logger.Level.WARNING, "transaction markers cannot be written: partition leaders do not"
                    + " take WriteTxnMarkers in this build; " + batch.size() + " marker(s) wait");
            }
            batch.forEach(this::retry);
            return;
        }
        WriteTxnMarkersRequestData req = new WriteTxnMarkersRequestData();
        Map<MarkerKey, WriteTxnMarkersRequestData.WritableTxnMarker> markers = new LinkedHashMap<>();
        for (MarkerJob j : batch) {
            TxnStateMachine.Markers m = j.markers;
            WriteTxnMarkersRequestData.WritableTxnMarker w = markers.computeIfAbsent(
                new MarkerKey(m.producerId(), m.producerEpoch(), m.commit(), m.coordinatorEpoch()), k -> {
                    WriteTxnMarkersRequestData.WritableTxnMarker x = new WriteTxnMarkersRequestData.WritableTxnMarker();
                    x.producerId = k.producerId;
                    x.producerEpoch = k.epoch;
                    x.transactionResult = k.commit;
                    x.coordinatorEpoch = k.coordinatorEpoch;
                    req.markers.add(x);
                    return x;
                });
            WriteTxnMarkersRequestData.WritableTxnMarkerTopic topic = null;
            for (WriteTxnMarkersRequestData.WritableTxnMarkerTopic t : w.topics) {
                if (t.name.equals(j.partition.topic())) {
                    topic = t;
                }
            }
            if (topic == null) {
                topic = new WriteTxnMarkersRequestData.WritableTxnMarkerTopic();
                topic.name = j.partition.topic();
                w.topics.add(topic);
            }
            topic.partitionIndexes.add(j.partition.partition());
        }
        inFlight.add(node);
        broker.handlers().transactions().requests().send(st, node, ApiKeys.WRITE_TXN_MARKERS, (short) 1, req)
            .whenComplete((resp, f) -> {
                inFlight.remove(node);
                if (f != null || !(resp instanceof WriteTxnMarkersResponseData r)) {
                    LOG.log(System.Logger.Level.DEBUG, () -> "WriteTxnMarkers to node " + node + " failed: " + f);
                    batch.forEach(this::retry);
                } else {
                    answered(batch, r);
                }
                if (queued.containsKey(node) && !queued.get(node).isEmpty()) {
                    scheduleDrain();
                }
            });
    }

    /** Sorts a WriteTxnMarkers response's per-partition codes out to the jobs it answers. */
    private void answered(List<MarkerJob> batch, WriteTxnMarkersResponseData r) {
        Map<String, Short> codes = new HashMap<>();
        for (WriteTxnMarkersResponseData.WritableTxnMarkerResult m : r.markers) {
            for (WriteTxnMarkersResponseData.WritableTxnMarkerTopicResult t : m.topics) {
                for (WriteTxnMarkersResponseData.WritableTxnMarkerPartitionResult p : t.partitions) {
                    codes.put(m.producerId + "/" + t.name + "/" + p.partitionIndex, p.errorCode);
                }
            }
        }
        Set<String> abandoned = new HashSet<>();
        for (MarkerJob j : batch) {
            Short code = codes.get(j.markers.producerId() + "/" + j.partition.topic() + "/" + j.partition.partition());
            if (abandoned.contains(j.markers.transactionalId())) {
                continue;
            }
            if (code == null) {
                retry(j);
                continue;
            }
            switch (code) {
                case TxnErrors.NONE, TxnErrors.UNSUPPORTED_FOR_MESSAGE_FORMAT, TxnErrors.UNSUPPORTED_VERSION ->
                    markerDone(j);
                case TxnErrors.INVALID_PRODUCER_EPOCH, TxnErrors.TRANSACTION_COORDINATOR_FENCED -> {
                    // A newer producer epoch or coordinator exists: stop, as Kafka stops (the next coordinator of
                    // the partition resends whatever it finds deciding).
                    markersAbandoned++;
                    abandoned.add(j.markers.transactionalId());
                    LOG.log(System.Logger.Level.WARNING, "markers of transactional id " + j.markers.transactionalId()
                        + " (producer " + j.markers.producerId() + " epoch " + j.markers.producerEpoch()
                        + ") stopped: " + j.partition + " answered " + code);
                    if (!j.owner.dropped && j.owner.machine != null) {
                        j.owner.machine.markersAbandoned(j.markers.transactionalId(), j.markers.producerId(),
                            j.markers.producerEpoch());
                    }
                    for (ArrayDeque<MarkerJob> q : queued.values()) {
                        q.removeIf(x -> x.markers == j.markers);
                    }
                }
                default -> retry(j); // NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, NOT_ENOUGH_REPLICAS, ...
            }
        }
    }

    // ------------------------------------------------------------------ timers

    private void scheduleTimers() {
        if (abortTimer < 0 && !closed) {
            abortTimer = st.shard.schedule(config.abortTimedOutIntervalMs() * 1_000_000L, () -> {
                abortTimer = -1;
                long now = System.currentTimeMillis();
                for (Coordinated c : new ArrayList<>(coordinated.values())) {
                    if (c.machine != null && !c.dropped) {
                        run(c, c.machine.abortTimedOut(now));
                    }
                }
                if (!coordinated.isEmpty()) {
                    scheduleTimers();
                }
            });
        }
        if (expireTimer < 0 && !closed) {
            expireTimer = st.shard.schedule(config.removeExpiredIntervalMs() * 1_000_000L, () -> {
                expireTimer = -1;
                long now = System.currentTimeMillis();
                for (Coordinated c : new ArrayList<>(coordinated.values())) {
                    if (c.machine != null && !c.dropped) {
                        run(c, c.machine.expire(now));
                    }
                }
                if (!coordinated.isEmpty()) {
                    scheduleTimers();
                }
            });
        }
    }

    /** The broker stops: every coordinator is dropped, timers stop. */
    void close() {
        closed = true;
        for (Coordinated c : new ArrayList<>(coordinated.values())) {
            drop(c, "the broker stops");
        }
        coordinated.clear();
        if (abortTimer >= 0) {
            st.shard.cancelTimer(abortTimer);
        }
        if (expireTimer >= 0) {
            st.shard.cancelTimer(expireTimer);
        }
    }

    // ------------------------------------------------------------------ metrics

    /** This shard's transaction gauges, copied for the metrics endpoint. */
    record Stats(int coordinatedPartitions, int loadingPartitions, int transactionalIds, int openTransactions,
                 long oldestOpenAgeMs, int markersPending, int markersQueued, long markersWritten, long markerRetries,
                 long markersAbandoned, long producerIdBlocks) {
    }

    Stats stats() {
        int loading = 0;
        int ids = 0;
        int open = 0;
        long oldest = -1;
        int pending = 0;
        for (Coordinated c : coordinated.values()) {
            if (c.machine == null) {
                loading++;
                continue;
            }
            ids += c.machine.size();
            open += c.machine.openTransactions();
            long o = c.machine.oldestOpenStartMs();
            if (o >= 0 && (oldest < 0 || o < oldest)) {
                oldest = o;
            }
            pending += c.machine.markersPending();
        }
        int q = 0;
        for (ArrayDeque<MarkerJob> d : queued.values()) {
            q += d.size();
        }
        return new Stats(coordinated.size(), loading, ids, open, oldest < 0 ? 0
            : Math.max(0, System.currentTimeMillis() - oldest), pending, q, markersWritten, markerRetries,
            markersAbandoned, producerIds.blocks);
    }

    /** The machine of partition {@code p} if it is loaded here (tests). */
    TxnStateMachine machineIfLoaded(int p) {
        Coordinated c = coordinated.get(p);
        return c == null ? null : c.machine;
    }

    @Override
    public String toString() {
        return "TxnCoordinator[shard " + st.shard.id() + ", partitions " + coordinated.keySet() + "]";
    }
}
