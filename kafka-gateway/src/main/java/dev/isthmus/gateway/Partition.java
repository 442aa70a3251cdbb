package dev.isthmus.gateway;

import dev.isthmus.arena.ArenaExhaustedException;
import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.gateway.protocol.IoBufSlice;
import dev.isthmus.log.BatchValidator;
import dev.isthmus.log.Compression;
import dev.isthmus.log.Log;
import dev.isthmus.log.LogConfig;
import dev.isthmus.log.LogException;
import dev.isthmus.log.RecordBatch;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.EpochEndOffset;
import dev.isthmus.raft.GroupListener;
import dev.isthmus.raft.RaftErrors;
import dev.isthmus.raft.Role;
import dev.isthmus.raft.server.RaftException;
import dev.isthmus.raft.server.ReplicatedLog;
import dev.isthmus.raft.storage.KafkaBatchPayload;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.Shard;
import org.HdrHistogram.Histogram;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One partition replica on its shard: a Raft group ({@link ReplicatedLog}) whose log is the partition's log.
 * Every produce goes through the group (on a single node a one-member group: one produce path); the high
 * watermark is the group's commit offset + 1; the leader epoch is the Raft term. Only the leader serves
 * Produce, Fetch and ListOffsets; followers answer NOT_LEADER_OR_FOLLOWER. The leader keeps the idempotent
 * producers' sequence state, rebuilt from the log (and the last snapshot) each time it gains leadership.
 * Owner-shard only.
 */
final class Partition implements GroupListener {
    /**
     * Outcome of an append for the Produce response: {@code logAppendTimeMs} is the time the broker stamped on a
     * LogAppendTime topic (-1 otherwise), {@code recordErrors} KIP-467's per-record errors of a refused batch.
     */
    record AppendResult(short errorCode, long baseOffset, long logStartOffset, String message, long logAppendTimeMs,
                        List<RecordError> recordErrors) {
        AppendResult(short errorCode, long baseOffset, long logStartOffset, String message) {
            this(errorCode, baseOffset, logStartOffset, message, -1, List.of());
        }
    }

    /** One record a batch was refused for: its index in the batch and why. */
    record RecordError(int batchIndex, String message) {
    }

    /** Last batches of one producer (Kafka keeps 5 for duplicate detection). */
    private static final class ProducerState {
        short epoch;
        long lastSeenMs;
        final ArrayDeque<long[]> batches = new ArrayDeque<>(); // {firstSeq, lastSeq, baseOffset}

        void record(short batchEpoch, int firstSeq, int lastSeq, long baseOffset, long nowMs) {
            if (batchEpoch > epoch) {
                epoch = batchEpoch;
                batches.clear();
            }
            batches.addLast(new long[] {firstSeq, lastSeq, baseOffset});
            if (batches.size() > 5) {
                batches.pollFirst();
            }
            lastSeenMs = Math.max(lastSeenMs, nowMs);
        }
    }

    /** Kafka's producer.id.expiration.ms: idempotence state of a producer silent this long is dropped. */
    static final long PRODUCER_EXPIRY_MS = 24L * 3600 * 1000;
    static final String PRODUCER_SNAPSHOT = "producers.snapshot";
    private static final int SNAPSHOT_MAGIC = 0x49535053; // "ISPS"
    private static final int SNAPSHOT_VERSION = 3;
    /**
     * Besides every 30 s (and at close), a producer snapshot is taken once the log has grown this many offsets or
     * bytes past the last one, and right after a leader has rebuilt the state: after a crash the rebuild replays
     * the log from the last snapshot, so this bounds what it replays whatever the log's size and however short the
     * broker's lives (issue 22: with only the 30 s timer, a broker killed sooner never wrote one and replayed
     * 167 M records from offset 0 on every restart).
     */
    static final long SNAPSHOT_EVERY_OFFSETS = 100_000;
    static final long SNAPSHOT_EVERY_BYTES = 32L << 20;
    private boolean producersChanged;
    /** The log offset the last snapshot taken covers up to (written, being written or waiting), or -1. */
    private long snapshotOffset = -1;
    /** Bytes appended since the last snapshot was taken. */
    private long bytesSinceSnapshot;
    /** A snapshot taken and waiting for the high watermark to reach {@link #snapshotWaitingAt}, or null. */
    private byte[] snapshotWaiting;
    private long snapshotWaitingAt = -1;
    /** A snapshot is being written by {@link ProducerSnapshots}; another request waits for it. */
    private boolean snapshotWriting;
    private boolean snapshotAgain;
    /** The largest record timestamp appended (ListOffsets MAX_TIMESTAMP); -1 while empty. */
    private long maxTimestamp = -1;

    final String topic;
    final int index;
    final ReplicatedLog replica;
    private final Shard shard;
    private final MemoryArena arena;
    private final Leadership leadership;
    /** Fetches parked until the high watermark passes their offset: an intrusive list (no allocation per park). */
    private PartitionFetch parkedHead;
    private int parkedCount;
    private final Map<Long, ProducerState> producers = new HashMap<>();
    private final RecordBatch batch = new RecordBatch();
    /** The header of the batch being appended, copied out of the request for {@link #batch} to read. */
    private final MemorySegment header = MemorySegment.ofArray(new byte[RecordBatch.HEADER_BYTES]);
    /** Produced batches copied to the heap because the shard's Raft memory budget was short (see appendBatch). */
    long heapPayloads;
    /** Produced batches refused by validation (any Kafka error of {@link BatchValidator}). Owner shard. */
    long rejectedBatches;
    /** Appends that failed on an unexpected exception (a broker bug), each answered with a Kafka error. */
    long appendFailures;
    /** Batches recompressed for the topic's compression.type. */
    long recompressedBatches;
    private long lastFailureLogNs;
    private long failuresNotLogged;
    /** The shard's validator (shared by its partitions; used only inside an append on this shard). */
    private final BatchValidator validator;
    private LogConfig config;
    /** The topic's produce-path settings (validation, compression, timestamps, min.insync.replicas). */
    private TopicSettings settings;
    /** The term whose producer state is loaded (produce with a producer id waits for it), or -1. */
    private long producersTerm = -1;
    /** The term a producer-state rebuild is running for, or -1. */
    private long rebuildingTerm = -1;
    private boolean closed;
    /** Append-to-commit latency of acks=all produces (µs). Owner shard; copied for metrics. */
    final Histogram durableLatencyMicros = new Histogram(60_000_000L, 2);

    /** Where leadership changes go: the broker's leader table, and the group coordinator for the offsets topic. */
    interface Leadership {
        void changed(Partition p, boolean leader, long term, int leaderId);
    }

    Partition(String topic, int index, ReplicatedLog replica, LogConfig config, TopicSettings settings,
              BatchValidator validator, Shard shard, MemoryArena arena, Leadership leadership) {
        this.topic = topic;
        this.index = index;
        this.replica = replica;
        this.config = config;
        this.settings = settings;
        this.validator = validator;
        this.shard = shard;
        this.arena = arena;
        this.leadership = leadership;
    }

    /**
     * The replica's log now: a follower that installs a snapshot reopens its log, so never keep the object
     * (null for a moment during such an install).
     */
    Log log() {
        return replica.log();
    }

    long groupId() {
        return replica.groupId();
    }

    long highWatermark() {
        return replica.highWatermark();
    }

    long logStartOffset() {
        return replica.logStartOffset();
    }

    boolean isLeader() {
        return !closed && replica.isLeader();
    }

    /**
     * Whether this replica leads and every entry of earlier terms in its log is committed, so everything earlier
     * leaders committed is below its high watermark (what the group coordinator waits for before replaying offsets).
     */
    boolean leaderReady() {
        return isLeader() && replica.raft().leaderCommittedPriorTerms();
    }

    /** Leads, and idempotent producers are served (their state is loaded for this term). */
    boolean readyToProduce() {
        return isLeader() && (producersTerm == replica.term() || topic.equals(GroupCoordinator.OFFSETS_TOPIC));
    }

    /** The leader epoch: the Raft term. */
    int leaderEpoch() {
        return (int) replica.term();
    }

    LogConfig config() {
        return config;
    }

    TopicSettings settings() {
        return settings;
    }

    /** A config change of the topic: the log's settings and the produce path's. */
    void updateConfig(LogConfig next, TopicSettings nextSettings) {
        this.config = next;
        this.settings = nextSettings;
        replica.updateConfig(next);
    }

    // ------------------------------------------------------------------ Raft events (this shard)

    @Override
    public void onCommit(long groupId, long commitOffset) {
        wakeDataWaiters();
        if (snapshotWaiting != null) {
            writeWaitingSnapshot();
        }
    }

    @Override
    public void onRoleChange(long groupId, Role role, long term, int leaderId) {
        if (role == Role.LEADER) {
            rebuildProducers(term);
        } else {
            producersTerm = -1;
            snapshotWaiting = null; // its offset may never be committed in this replica's log
            wakeDataWaiters(); // long polls answer NOT_LEADER_OR_FOLLOWER at once
        }
        leadership.changed(this, role == Role.LEADER, term, leaderId);
    }

    @Override
    public void onConfigurationChange(long groupId, Configuration configuration) {
    }

    /**
     * Wakes the parked fetches that now have something to read: all of them when this replica stopped leading or
     * serving, else those whose offset is below the high watermark. They are unlinked first and told afterwards,
     * so a woken fetch may unpark or park others (even on this partition) while the list is walked.
     */
    private void wakeDataWaiters() {
        if (parkedHead == null) {
            return;
        }
        boolean all = closed || !replica.isLeader();
        long hw = replica.highWatermark();
        PartitionFetch woken = null;
        PartitionFetch last = null;
        for (PartitionFetch f = parkedHead; f != null; ) {
            PartitionFetch next = f.nextParked;
            if (all || f.fetchOffset < hw) {
                unlink(f);
                if (last == null) {
                    woken = f;
                } else {
                    last.nextWoken = f;
                }
                last = f;
            }
            f = next;
        }
        while (woken != null) {
            PartitionFetch next = woken.nextWoken;
            woken.nextWoken = null;
            woken.dataAvailable();
            woken = next;
        }
    }

    /** On gaining leadership in {@code term}: loads the producers' state before idempotent produces are taken. */
    private void rebuildProducers(long term) {
        if (rebuildingTerm == term || producersTerm == term) {
            return;
        }
        rebuildingTerm = term;
        recoverProducers(error -> {
            if (rebuildingTerm != term) {
                return;
            }
            rebuildingTerm = -1;
            if (error != null) {
                System.getLogger(Partition.class.getName()).log(System.Logger.Level.ERROR, "cannot rebuild the"
                    + " producer state of " + topic + "-" + index + ": " + error.getMessage());
                return;
            }
            if (!closed && replica.isLeader() && replica.term() == term) {
                producersTerm = term;
                takeSnapshot(false); // the next rebuild starts here, not where this one did
            }
        });
    }

    // ------------------------------------------------------------------ producer state across restarts

    /**
     * Rebuilds the idempotent producers' state: loads the snapshot written at the last clean close or periodic
     * snapshot (when it is not ahead of the log), then replays the batch headers from its offset to the log end.
     * {@code done} runs on this shard, with null or the error.
     */
    void recoverProducers(java.util.function.Consumer<RuntimeException> done) {
        long from = replica.logStartOffset();
        try {
            long loaded = loadSnapshot();
            if (loaded >= from && loaded <= replica.logEndOffset()) {
                from = loaded;
            } else {
                producers.clear();
            }
        } catch (java.io.IOException | RuntimeException e) {
            producers.clear(); // a damaged snapshot is only a shortcut: rebuild from the log
        }
        snapshotOffset = from;
        bytesSinceSnapshot = 0;
        scanProducers(from, done);
    }

    private void scanProducers(long from, java.util.function.Consumer<RuntimeException> done) {
        long end = replica.logEndOffset();
        if (from >= end) {
            done.accept(null);
            return;
        }
        log().read(from, end, 1 << 20, new Log.ReadHandler() {
            @Override
            public void onRead(MemorySegment bytes, long firstOffset, long lastOffset) {
                if (bytes.byteSize() == 0) {
                    done.accept(null);
                    return;
                }
                long pos = 0;
                long next = lastOffset + 1;
                while (pos + RecordBatch.HEADER_BYTES <= bytes.byteSize()) {
                    batch.wrap(bytes, pos);
                    int size = batch.sizeInBytes();
                    if (size <= 0 || pos + size > bytes.byteSize()) {
                        break;
                    }
                    next = Math.max(next, batch.baseOffset() + batch.lastOffsetDelta() + 1);
                    long pid = batch.producerId();
                    if (!batch.isControl()) {
                        maxTimestamp = Math.max(maxTimestamp, batch.maxTimestamp());
                    }
                    if (pid >= 0 && !batch.isControl() && batch.baseOffset() >= from) {
                        int first = batch.baseSequence();
                        producers.computeIfAbsent(pid, k -> new ProducerState()).record(batch.producerEpoch(), first,
                            first + batch.lastOffsetDelta(), batch.baseOffset(), batch.maxTimestamp());
                    }
                    pos += size;
                }
                scanProducers(next, done);
            }

            @Override
            public void onError(LogException error) {
                done.accept(error);
            }
        });
    }

    /**
     * Takes a snapshot of the producer state if it changed or the log grew since the last one (every 30 s, past
     * {@link #SNAPSHOT_EVERY_OFFSETS} or {@link #SNAPSHOT_EVERY_BYTES}, after a rebuild): the bytes are made here
     * and written by {@link ProducerSnapshots} off this shard, once the high watermark covers the snapshot's
     * offset (a snapshot must describe a prefix of the log that a restart finds: one past what survives a crash
     * would be ignored and the whole log replayed). One at a time per partition; a request meanwhile is taken
     * after it. Leader only.
     */
    void snapshotProducers() {
        takeSnapshot(true);
    }

    /**
     * {@code expire}: drop producers silent for {@link #PRODUCER_EXPIRY_MS} first, as the 30 s snapshots always
     * have (by the batches' timestamps after a rebuild); the snapshots taken for the log's growth and after a
     * rebuild keep the state as it is.
     */
    private void takeSnapshot(boolean expire) {
        if (closed || !replica.isLeader()) {
            return;
        }
        if (!producersChanged && replica.logEndOffset() <= snapshotOffset) {
            return;
        }
        if (snapshotWriting || snapshotWaiting != null) {
            snapshotAgain = true;
            return;
        }
        long at = replica.logEndOffset();
        snapshotWaiting = snapshotBytes(at, expire);
        snapshotWaitingAt = at;
        writeWaitingSnapshot();
    }

    /** After an append: takes a snapshot when the log has grown far enough past the last one. */
    private void snapshotIfGrown(long appendedBytes) {
        bytesSinceSnapshot += appendedBytes;
        if (bytesSinceSnapshot >= SNAPSHOT_EVERY_BYTES
                || replica.logEndOffset() - Math.max(snapshotOffset, replica.logStartOffset()) >= SNAPSHOT_EVERY_OFFSETS) {
            takeSnapshot(false);
        }
    }

    private void writeWaitingSnapshot() {
        if (snapshotWaiting == null || snapshotWriting || replica.highWatermark() < snapshotWaitingAt) {
            return;
        }
        byte[] bytes = snapshotWaiting;
        snapshotWaiting = null;
        snapshotWriting = true;
        ProducerSnapshots.write(replica.dir(), bytes).whenComplete((error, t) -> {
            String problem = t != null ? t.toString() : error;
            try {
                shard.group().call(shard.id(), s -> {
                    snapshotWritten(problem);
                    return null;
                });
            } catch (RuntimeException stopped) {
                // the shard group has stopped: nothing waits for this snapshot
            }
        });
    }

    private void snapshotWritten(String problem) {
        snapshotWriting = false;
        if (problem != null) {
            producersChanged = true; // taken again by the next timer or append
            System.getLogger(Partition.class.getName()).log(System.Logger.Level.WARNING,
                "cannot write the producer snapshot of " + topic + "-" + index + ": " + problem);
        }
        if (snapshotAgain) {
            snapshotAgain = false;
            takeSnapshot(false);
        }
    }

    /**
     * At a clean close: the producer state as of the log end, written before returning (after any snapshot
     * still queued, so it is the last one). The close path, not the data path, is the one place this shard waits
     * for a snapshot: the log is closed next, and a restart should find the state without replaying anything.
     */
    void snapshotProducersAtClose() {
        if (!replica.isLeader() || (!producersChanged && replica.logEndOffset() <= snapshotOffset)) {
            return;
        }
        long at = replica.logEndOffset();
        byte[] bytes = snapshotBytes(at, true);
        snapshotWaiting = null;
        try {
            String problem = ProducerSnapshots.write(replica.dir(), bytes).get(30, java.util.concurrent.TimeUnit.SECONDS);
            if (problem != null) {
                throw new java.io.IOException(problem);
            }
        } catch (Exception e) {
            System.getLogger(Partition.class.getName()).log(System.Logger.Level.WARNING,
                "cannot write the producer snapshot of " + topic + "-" + index + " at close: " + e.getMessage());
        }
    }

    /** The snapshot file's bytes for the producer state as of log offset {@code at} (this shard). */
    private byte[] snapshotBytes(long at, boolean expire) {
        if (expire) {
            long now = System.currentTimeMillis();
            producers.values().removeIf(ps -> now - ps.lastSeenMs > PRODUCER_EXPIRY_MS);
        }
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(40 + producers.size() * (8 + 2 + 8 + 4 + 5 * 16) + 8);
        long termAt = at > replica.logStartOffset() ? termAtOrMinus(at - 1) : -1;
        b.putInt(SNAPSHOT_MAGIC).putInt(SNAPSHOT_VERSION).putLong(at).putLong(termAt).putLong(maxTimestamp)
            .putInt(producers.size());
        for (Map.Entry<Long, ProducerState> e : producers.entrySet()) {
            ProducerState ps = e.getValue();
            b.putLong(e.getKey()).putShort(ps.epoch).putLong(ps.lastSeenMs).putInt(ps.batches.size());
            for (long[] x : ps.batches) {
                b.putInt((int) x[0]).putInt((int) x[1]).putLong(x[2]);
            }
        }
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(b.array(), 0, b.position());
        b.putLong(crc.getValue());
        producersChanged = false;
        snapshotOffset = at;
        bytesSinceSnapshot = 0;
        return java.util.Arrays.copyOf(b.array(), b.position());
    }

    private long termAtOrMinus(long offset) {
        try {
            return replica.raft().termAt(offset);
        } catch (RuntimeException e) {
            return -1;
        }
    }

    /** Loads the snapshot into {@code producers}; returns its offset, or -1 when there is none. */
    private long loadSnapshot() throws java.io.IOException {
        java.nio.file.Path file = replica.dir().resolve(PRODUCER_SNAPSHOT);
        if (!java.nio.file.Files.exists(file)) {
            return -1;
        }
        byte[] all = java.nio.file.Files.readAllBytes(file);
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(all);
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(all, 0, all.length - 8);
        if (all.length < 36 || b.getLong(all.length - 8) != crc.getValue() || b.getInt() != SNAPSHOT_MAGIC
            || b.getInt() != SNAPSHOT_VERSION) {
            throw new java.io.IOException("damaged or old producer snapshot " + file);
        }
        long offset = b.getLong();
        long termAt = b.getLong();
        if (offset > replica.logStartOffset() && termAtOrMinus(offset - 1) != termAt) {
            return -1; // written before a suffix truncation replaced that part of the log: rebuild from the log
        }
        maxTimestamp = b.getLong();
        int n = b.getInt();
        producers.clear();
        for (int i = 0; i < n; i++) {
            long pid = b.getLong();
            ProducerState ps = new ProducerState();
            ps.epoch = b.getShort();
            ps.lastSeenMs = b.getLong();
            int k = b.getInt();
            for (int j = 0; j < k; j++) {
                ps.batches.addLast(new long[] {b.getInt(), b.getInt(), b.getLong()});
            }
            producers.put(pid, ps);
        }
        return offset;
    }

    /**
     * DescribeProducers: a copy of the idempotent producers' state, one {producerId, epoch, lastSequence, lastSeenMs}
     * each (lastSequence -1 when no batch is kept). Meaningful on the leader once {@link #readyToProduce()}.
     */
    List<long[]> producerStates() {
        List<long[]> out = new ArrayList<>(producers.size());
        for (Map.Entry<Long, ProducerState> e : producers.entrySet()) {
            ProducerState ps = e.getValue();
            long[] last = ps.batches.peekLast();
            out.add(new long[] {e.getKey(), ps.epoch, last == null ? -1 : (int) last[1], ps.lastSeenMs});
        }
        return out;
    }

    /** The largest record timestamp in the log (-1 when empty). */
    long maxTimestamp() {
        return maxTimestamp;
    }

    /**
     * OffsetForLeaderEpoch on this partition: {errorCode, epoch, endOffset} for the largest epoch <= {@code wanted}
     * and the offset where the next epoch starts (the log end for the current epoch); fences a client whose
     * {@code current} epoch is stale or from the future, as Kafka does. Leader only.
     */
    long[] epochEndOffset(int current, int wanted) {
        if (!isLeader()) {
            return new long[] {ErrorCodes.NOT_LEADER_OR_FOLLOWER, -1, -1};
        }
        int epoch = leaderEpoch();
        if (current >= 0 && current < epoch) {
            return new long[] {ErrorCodes.FENCED_LEADER_EPOCH, -1, -1};
        }
        if (current > epoch) {
            return new long[] {ErrorCodes.UNKNOWN_LEADER_EPOCH, -1, -1};
        }
        EpochEndOffset e = replica.raft().epochEndOffset(wanted);
        return new long[] {ErrorCodes.NONE, e.epoch(), e.endOffset()};
    }

    /**
     * DeleteRecords on the leader: moves the log start to {@code target} (<= the high watermark) through the
     * Raft group; completes with {errorCode, lowWatermark}.
     */
    Promise<long[]> deleteRecordsBefore(long target) {
        if (target <= replica.logStartOffset()) {
            return Promise.completed(new long[] {ErrorCodes.NONE, replica.logStartOffset()});
        }
        return replica.truncatePrefix(target).map(start -> new long[] {ErrorCodes.NONE, (long) start})
            .recover(f -> new long[] {f instanceof RaftException ? kafkaCode(f) : ErrorCodes.KAFKA_STORAGE_ERROR,
                replica.logStartOffset()});
    }

    /** The partition stops being served here (topic deleted or broker closing): waiting fetches wake. */
    void closed() {
        closed = true;
        producersTerm = -1;
        wakeDataWaiters();
    }

    /** The error answering a produce, fetch or offsets request on a replica that does not lead. */
    private String notLeader() {
        int leader = replica.leaderId();
        return "this broker is not the leader of " + topic + "-" + index + (leader >= 0 ? " (node " + leader
            + " is)" : " (no leader is known yet)");
    }

    static short kafkaCode(Throwable f) {
        if (f instanceof RaftException r) {
            return switch (r.code()) {
                case RaftErrors.BACKPRESSURE -> ErrorCodes.REQUEST_TIMED_OUT;
                default -> ErrorCodes.NOT_LEADER_OR_FOLLOWER;
            };
        }
        return ErrorCodes.UNKNOWN_SERVER_ERROR;
    }

    /**
     * Appends the batch of a Produce request through the Raft group. acks=all completes once the batch is
     * committed (on a majority's disks); acks 1 and 0 once the leader accepted it into its log (the connection
     * sends nothing for acks 0). The batch is validated first ({@link BatchValidator}): nothing of a refused batch
     * is stored.
     */
    Promise<AppendResult> append(IoBufSlice records, short acks) {
        int len = records.length();
        if (len == 0) {
            rejectedBatches++;
            return Promise.completed(new AppendResult(ErrorCodes.CORRUPT_MESSAGE, -1, -1, "empty record set"));
        }
        if (acks == -1 && settings.minInsyncReplicas() > 1 && replica.isLeader()) {
            int live = replica.raft().liveVoters();
            if (live >= 0 && live < settings.minInsyncReplicas()) {
                // Kafka's check before appending: nothing is written, the producer retries.
                return Promise.completed(new AppendResult(ErrorCodes.NOT_ENOUGH_REPLICAS, -1, -1, topic + "-" + index
                    + " has " + live + " live replica(s) of " + replica.configuration().voters().length
                    + " in its Raft group; min.insync.replicas is " + settings.minInsyncReplicas() + " for acks=all"));
            }
        }
        return appendBatch(records.buf(), len, acks, false);
    }

    /**
     * Internal writers (the group coordinator): appends one batch it built and completes once it is committed.
     * Such batches are checked for their framing and CRC only (they are ours: control batches and keyed records).
     */
    Promise<AppendResult> appendInternal(MemorySegment seg, int len) {
        return appendBatch(IoBuf.wrap(seg.asSlice(0, len)), len, (short) -1, true);
    }

    /**
     * Validates the batch in {@code src} (the request's fragments, read where they lie), applies the topic's
     * compression.type and timestamp type, and proposes it. An exception anywhere on this path (a broker bug) fails
     * this request alone with a Kafka error, is logged (at most every {@link #FAILURE_LOG_INTERVAL_NS}) and counted
     * in {@link #appendFailures}; the partition keeps serving.
     */
    private Promise<AppendResult> appendBatch(IoBuf src, int len, short acks, boolean internal) {
        if (closed) {
            return Promise.completed(new AppendResult(ErrorCodes.NOT_LEADER_OR_FOLLOWER, -1, -1, topic + "-" + index
                + " is no longer served by this broker"));
        }
        proposing = false;
        try {
            return appendValidated(src, len, acks, internal);
        } catch (RuntimeException | AssertionError e) {
            return Promise.completed(appendFailed(e, proposing));
        } finally {
            proposing = false;
        }
    }

    /** Set while the batch is being proposed: an exception then leaves the outcome unknown. */
    private boolean proposing;
    static final long FAILURE_LOG_INTERVAL_NS = 10_000_000_000L;

    private AppendResult appendFailed(Throwable e, boolean outcomeUnknown) {
        appendFailures++;
        long now = System.nanoTime();
        if (lastFailureLogNs == 0 || now - lastFailureLogNs >= FAILURE_LOG_INTERVAL_NS) {
            System.getLogger(Partition.class.getName()).log(System.Logger.Level.ERROR, "append to " + topic + "-"
                + index + " failed on an internal error" + (failuresNotLogged > 0 ? " (" + failuresNotLogged
                + " more since the last report)" : "") + "; the request was answered with a Kafka error and the"
                + " partition keeps serving", e);
            lastFailureLogNs = now;
            failuresNotLogged = 0;
        } else {
            failuresNotLogged++;
        }
        // A Java exception's text never reaches the client; the broker's log has it.
        if (outcomeUnknown) {
            return new AppendResult(ErrorCodes.REQUEST_TIMED_OUT, -1, -1, "the broker hit an internal error while"
                + " appending to " + topic + "-" + index + "; whether the batch was stored is unknown (see the"
                + " broker's log)");
        }
        return new AppendResult(ErrorCodes.KAFKA_STORAGE_ERROR, -1, -1, "the broker hit an internal error while"
            + " appending to " + topic + "-" + index + "; nothing was stored (see the broker's log)");
    }

    private AppendResult refused(short code, String message) {
        rejectedBatches++;
        return new AppendResult(code, -1, -1, message);
    }

    private Promise<AppendResult> appendValidated(IoBuf src, int len, short acks, boolean internal) {
        long nowMs = System.currentTimeMillis();
        TopicSettings rules = settings;
        if (internal) {
            if (len < RecordBatch.HEADER_BYTES || RecordBatch.check(src, 0, len, true) != RecordBatch.Check.OK) {
                return Promise.completed(refused(ErrorCodes.CORRUPT_MESSAGE, "internal batch of " + len
                    + " bytes is malformed"));
            }
        } else {
            short code = validator.validate(src, 0, len, rules.rules(), nowMs);
            if (code != ErrorCodes.NONE) {
                rejectedBatches++;
                List<RecordError> errors = List.of();
                int kept = validator.recordErrorsKept();
                if (kept > 0) {
                    RecordError[] e = new RecordError[kept];
                    for (int k = 0; k < kept; k++) {
                        e[k] = new RecordError(validator.recordErrorIndex(k), validator.recordErrorMessage(k));
                    }
                    errors = List.of(e);
                }
                return Promise.completed(new AppendResult(code, -1, -1, validator.message() + " (" + topic + "-"
                    + index + ")", -1, errors));
            }
        }
        src.copyTo(0, header, 0, RecordBatch.HEADER_BYTES);
        batch.wrap(header, 0);
        if (!replica.isLeader()) {
            return Promise.completed(new AppendResult(ErrorCodes.NOT_LEADER_OR_FOLLOWER, -1, -1, notLeader()));
        }
        long producerId = batch.producerId();
        ProducerState ps = null;
        int firstSeq = batch.baseSequence();
        int lastSeq = firstSeq + batch.lastOffsetDelta();
        short epoch = batch.producerEpoch();
        if (producerId >= 0) {
            if (producersTerm != replica.term()) {
                return Promise.completed(new AppendResult(ErrorCodes.NOT_LEADER_OR_FOLLOWER, -1, -1, "the new leader of "
                    + topic + "-" + index + " is still loading the producers' state; retry"));
            }
            ps = producers.computeIfAbsent(producerId, k -> new ProducerState());
            if (epoch < ps.epoch) {
                return Promise.completed(new AppendResult(ErrorCodes.INVALID_PRODUCER_EPOCH, -1, -1,
                    "producer " + producerId + " epoch " + epoch + " is older than " + ps.epoch));
            }
            if (epoch > ps.epoch && firstSeq != 0) {
                return Promise.completed(new AppendResult(ErrorCodes.OUT_OF_ORDER_SEQUENCE_NUMBER, -1, -1,
                    "producer " + producerId + " started epoch " + epoch + " at sequence " + firstSeq + ", not 0"));
            }
            if (epoch == ps.epoch) {
                for (long[] b : ps.batches) {
                    if (b[0] == firstSeq && b[1] == lastSeq) {
                        // A retry of a batch we already have: answer with its offset, append nothing.
                        return Promise.completed(new AppendResult(ErrorCodes.NONE, b[2], replica.logStartOffset(), null));
                    }
                }
            }
            long[] last = epoch > ps.epoch ? null : ps.batches.peekLast();
            boolean inOrder = last == null || firstSeq == (int) (last[1] + 1);
            if (!inOrder) {
                return Promise.completed(new AppendResult(ErrorCodes.OUT_OF_ORDER_SEQUENCE_NUMBER, -1, -1,
                    "producer " + producerId + " sent sequence " + firstSeq + " after " + last[1]));
            }
        }
        // What is stored: the batch as sent, or rebuilt with the topic's codec; then the timestamp type and max
        // timestamp the broker decides (Kafka's setMaxTimestamp), with the CRC redone when either changed.
        IoBuf stored = src;
        int storedLen = len;
        long logAppendTimeMs = -1;
        long maxTs = batch.maxTimestamp();
        if (!internal) {
            Compression target = rules.compression();
            if (target != null && target.id != validator.codec()) {
                Compression.Output rebuilt = validator.recompress(src, 0, target);
                if (rebuilt.size() > config.maxBatchBytes()) {
                    return Promise.completed(refused(ErrorCodes.MESSAGE_TOO_LARGE, "the batch is " + rebuilt.size()
                        + " bytes once recompressed with " + target.configName + " (compression.type of " + topic
                        + "), more than max.message.bytes " + config.maxBatchBytes()));
                }
                stored = IoBuf.wrap(rebuilt.segment());
                storedLen = rebuilt.size();
                recompressedBatches++;
            }
            if (rules.logAppendTime()) {
                logAppendTimeMs = nowMs;
                maxTs = nowMs;
            } else {
                maxTs = validator.maxTimestamp();
            }
            BatchValidator.stampTimestamps(stored, 0, rules.logAppendTime(), maxTs);
        }
        // Offset arithmetic before anything reaches Raft: the batch's offsets must fit the log's range.
        long span = batch.lastOffsetDelta() + 1L;
        if (replica.logEndOffset() > Long.MAX_VALUE - span) {
            return Promise.completed(refused(ErrorCodes.INVALID_RECORD, "a batch of " + span + " offsets at "
                + replica.logEndOffset() + " would pass the largest offset"));
        }
        long startNs = System.nanoTime();
        long[] proposedAt = {-1};
        KafkaBatchPayload payload;
        try {
            payload = KafkaBatchPayload.copyOf(stored, 0, storedLen, arena);
        } catch (ArenaExhaustedException e) {
            heapPayloads++;
            payload = new KafkaBatchPayload(stored.toByteArray());
        }
        Promise<Long> committed;
        proposing = true;
        try {
            committed = replica.replicate(payload, at -> proposedAt[0] = at);
        } finally {
            payload.release(); // the Raft log and the transport took their own references
        }
        proposing = false;
        long base = proposedAt[0];
        if (committed.isFailed()) {
            return Promise.completed(commitFailure(committed.failure()));
        }
        if (ps != null) {
            ps.record(epoch, firstSeq, lastSeq, base, System.currentTimeMillis());
            producersChanged = true;
        }
        if (maxTs > maxTimestamp) {
            maxTimestamp = maxTs;
        }
        snapshotIfGrown(storedLen);
        long appendTime = logAppendTimeMs;
        if (acks == 1 || acks == 0) {
            return Promise.completed(new AppendResult(ErrorCodes.NONE, base, replica.logStartOffset(), null,
                appendTime, List.of()));
        }
        return committed.map(b -> {
            durableLatencyMicros.recordValue(Math.min(60_000_000L, Math.max(0, (System.nanoTime() - startNs) / 1000)));
            return new AppendResult(ErrorCodes.NONE, b, replica.logStartOffset(), null, appendTime, List.of());
        }).recover(this::commitFailure);
    }

    /** A proposal Raft refused or lost (its own message names why), or an unexpected failure (logged, counted). */
    private AppendResult commitFailure(Throwable f) {
        if (f instanceof RaftException) {
            return new AppendResult(kafkaCode(f), -1, -1, f.getMessage());
        }
        return appendFailed(f, true);
    }

    /**
     * Fetch, on this shard: reads whole batches of {@code f} from {@link PartitionFetch#fetchOffset} below the
     * bound its isolation level allows, at least one batch when any is readable and then more while the total
     * stays within {@code maxBytes} (none when {@code maxBytes} is 0: then only the metadata), as zero-copy shares of the batch cache (filled by direct-I/O reads with
     * read-ahead on a miss). Sets the outcome fields of {@code f} (its error, high watermark, last stable offset,
     * log start, and the batches, which {@code f}'s owner then owns) and calls {@link PartitionFetch#readDone()},
     * before returning on a cache hit or when there is nothing to read, else from the read's completion. Only
     * the leader serves fetches.
     */
    void read(PartitionFetch f, int maxBytes) {
        f.resetOutcome();
        if (!isLeader()) {
            f.errorCode = ErrorCodes.NOT_LEADER_OR_FOLLOWER;
            f.highWatermark = -1;
            f.lastStableOffset = -1;
            f.logStartOffset = -1;
            f.readDone();
            return;
        }
        long hw = replica.highWatermark();
        long bound = fetchBound(f.isolationLevel);
        f.highWatermark = hw;
        f.lastStableOffset = bound;
        f.logStartOffset = replica.logStartOffset();
        long offset = f.fetchOffset;
        if (outOfRange(offset, hw)) {
            f.errorCode = ErrorCodes.OFFSET_OUT_OF_RANGE;
            f.readDone();
            return;
        }
        if (offset >= bound || maxBytes <= 0) {
            f.readDone();
            return;
        }
        log().read(offset, bound, maxBytes, f);
    }

    /**
     * The offset a fetch at {@code isolationLevel} may read up to (exclusive): the high watermark. This is the
     * seam for READ_COMMITTED (issue 19): it will answer the last stable offset, the first offset of the
     * earliest open transaction, and {@link #read} will report the aborted transactions of what it returns.
     */
    private long fetchBound(byte isolationLevel) {
        return replica.highWatermark();
    }

    /**
     * Whether a fetch from {@code offset} would get anything now: batches (the high watermark is past it) or an
     * error (this replica does not lead or no longer serves, or the offset is out of range).
     */
    boolean hasFetchable(long offset) {
        if (!isLeader()) {
            return true;
        }
        long hw = replica.highWatermark();
        return offset < hw || outOfRange(offset, hw);
    }

    /**
     * Whether a fetch from {@code offset} is answered OFFSET_OUT_OF_RANGE: below the log start, or past the log
     * end. Between the high watermark and the log end there is nothing committed to read yet and the fetch waits,
     * as Kafka answers: a leader that just took over (or restarted) knows its high watermark only once it commits
     * its first entry, and OFFSET_OUT_OF_RANGE there made consumers at valid positions reset (auto.offset.reset)
     * and read their partitions again (StreamsTest counted words twice).
     */
    private boolean outOfRange(long offset, long hw) {
        return offset < replica.logStartOffset() || offset > Math.max(hw, replica.logEndOffset());
    }

    /**
     * Parks {@code f} until this partition has something for it ({@link #hasFetchable} of its offset turns
     * true), then calls {@link PartitionFetch#dataAvailable()} once, from the commit or leadership change that
     * woke it. Returns false, parking nothing, when there is something already. A fetch is parked on at most one
     * partition at a time.
     */
    boolean park(PartitionFetch f) {
        if (f.parkedOn != null) {
            throw new IllegalStateException("a fetch of " + f.topic + "-" + f.partition + " is parked twice");
        }
        if (hasFetchable(f.fetchOffset)) {
            return false;
        }
        f.parkedOn = this;
        f.prevParked = null;
        f.nextParked = parkedHead;
        if (parkedHead != null) {
            parkedHead.prevParked = f;
        }
        parkedHead = f;
        parkedCount++;
        return true;
    }

    /** Unparks {@code f} if it is parked here (a fetch that completed or was cancelled). */
    void unpark(PartitionFetch f) {
        if (f.parkedOn == this) {
            unlink(f);
        }
    }

    private void unlink(PartitionFetch f) {
        if (f.prevParked != null) {
            f.prevParked.nextParked = f.nextParked;
        } else {
            parkedHead = f.nextParked;
        }
        if (f.nextParked != null) {
            f.nextParked.prevParked = f.prevParked;
        }
        f.prevParked = null;
        f.nextParked = null;
        f.parkedOn = null;
        parkedCount--;
    }

    /** Fetches parked here now (tests, metrics). */
    int parkedFetches() {
        return parkedCount;
    }
}
