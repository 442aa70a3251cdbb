package dev.isthmus.gateway;

import dev.isthmus.arena.ArenaExhaustedException;
import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.gateway.protocol.IoBufSlice;
import dev.isthmus.gateway.protocol.message.FetchResponseData;
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
 * Produce, Fetch and ListOffsets; followers answer NOT_LEADER_OR_FOLLOWER, except to consumers' Fetch v11+ (KIP-392
 * follower fetching), which they serve up to their own high watermark. The producer and transaction state
 * (idempotence, open transactions, the last stable offset, the aborted-transaction index) is kept by
 * {@link PartitionProducers}: applied from committed entries on every replica, plus the leader's own log tail, which
 * produced batches and transaction markers are checked against. Transactional batches that start a transaction here
 * are first verified with the transaction coordinator (KIP-890, {@link TxnVerifier}). Owner-shard only.
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

    /** Kafka's producer.id.expiration.ms (see {@link PartitionProducers}). */
    static final long PRODUCER_EXPIRY_MS = PartitionProducers.PRODUCER_EXPIRY_MS;
    static final String PRODUCER_SNAPSHOT = PartitionProducers.SNAPSHOT;

    final String topic;
    final int index;
    final ReplicatedLog replica;
    private final Shard shard;
    private final MemoryArena arena;
    private final Leadership leadership;
    /** Fetches parked until the high watermark passes their offset: an intrusive list (no allocation per park). */
    private PartitionFetch parkedHead;
    private int parkedCount;
    /** Producer and transaction state: the committed view, the leader's tail view, the index, snapshots. */
    final PartitionProducers producers;
    /** Where transactional batches that start a transaction are verified (KIP-890); null: not verified. */
    private TxnVerifier verifier;
    /** Producers whose first transactional batch is being verified, with the batches queued behind it. */
    private final Map<Long, Verification> verifying = new HashMap<>();
    /**
     * Kafka's verification guard (VerificationStateEntry's lowest sequence): per producer, the epoch and the lowest
     * sequence of the batches that asked to start its transaction here and were verified, or are being, without the
     * transaction starting yet. A later batch of that epoch may not start the transaction ahead of it (see
     * {@link #outOfOrderStart}). Dropped once the transaction starts here and when this replica stops leading; a guard
     * of an older epoch is replaced.
     */
    private final Map<Long, long[]> startGuards = new HashMap<>();
    /** A bound on {@link #startGuards} (producers that never came back); past it the guards start over. */
    static final int MAX_START_GUARDS = 10_000;
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
        this.producers = new PartitionProducers(this, replica, shard, this::wakeDataWaiters);
        producers.start();
    }

    /** The shard this replica lives on. */
    int shardId() {
        return shard.id();
    }

    /** Sets where transactional batches are verified (the shard's {@link TxnVerifier}). */
    void verifier(TxnVerifier v) {
        this.verifier = v;
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
        return isLeader() && (producers.tail(replica.term()) != null || topic.equals(GroupCoordinator.OFFSETS_TOPIC));
    }

    /** The tail view of this leader's term, or null while it loads (or this replica does not lead). */
    private ProducerStateManager tail() {
        return closed || !replica.isLeader() ? null : producers.tail(replica.term());
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
        producers.onCommit(); // wakes the waiters once the committed entries are applied
        wakeDataWaiters();
    }

    @Override
    public void onRoleChange(long groupId, Role role, long term, int leaderId) {
        if (role == Role.LEADER) {
            producers.lead(term, () -> {
            });
        } else {
            producers.follow();
            failVerifications(ErrorCodes.NOT_LEADER_OR_FOLLOWER, "this broker no longer leads " + topic + "-" + index);
        }
        wakeDataWaiters(true); // long polls answer NOT_LEADER_OR_FOLLOWER (or check their epoch again) at once
        leadership.changed(this, role == Role.LEADER, term, leaderId);
    }

    @Override
    public void onLogStartChange(long groupId, long logStartOffset) {
        producers.onLogStartChange(logStartOffset);
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
        wakeDataWaiters(false);
    }

    /**
     * @param wakeAll wake every parked fetch (a leadership change: a follower-served one checks its leader epoch
     *                again, a leader-only one answers NOT_LEADER_OR_FOLLOWER)
     */
    private void wakeDataWaiters(boolean wakeAll) {
        if (parkedHead == null) {
            return;
        }
        boolean all = closed || wakeAll;
        boolean leader = replica.isLeader();
        long hw = replica.highWatermark();
        long lso = producers.lastStableOffset();
        PartitionFetch woken = null;
        PartitionFetch last = null;
        for (PartitionFetch f = parkedHead; f != null; ) {
            PartitionFetch next = f.nextParked;
            if (all || !leader && !f.followerMayServe
                || f.fetchOffset < (f.isolationLevel == PartitionFetch.READ_COMMITTED ? lso : hw)) {
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

    // ------------------------------------------------------------------ producer state

    /** Snapshot of the producer state (every 30 s with expiry, and at close). */
    void snapshotProducers() {
        producers.snapshot(true, false);
    }

    /** At a clean close: the last snapshot, written before returning. */
    void snapshotProducersAtClose() {
        producers.snapshot(true, true);
    }

    /**
     * DescribeProducers: {producerId, epoch, lastSequence, lastSeenMs, coordinatorEpoch, txnStartOffset} per producer.
     * Meaningful on the leader once {@link #readyToProduce()}.
     */
    List<long[]> producerStates() {
        return producers.describe();
    }

    /** The largest record timestamp in the log (-1 when empty). */
    long maxTimestamp() {
        return producers.maxTimestamp();
    }

    /** The last stable offset (Kafka's LSO): below every open transaction and the high watermark. */
    long lastStableOffset() {
        return producers.lastStableOffset();
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
        producers.close();
        failVerifications(ErrorCodes.NOT_LEADER_OR_FOLLOWER, topic + "-" + index + " is no longer served by this broker");
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
        return append(records, acks, null, (short) 11);
    }

    /**
     * {@link #append(IoBufSlice, short)} for a Produce of version {@code produceVersion} carrying
     * {@code transactionalId} (null when none): a transactional batch that starts a transaction on this partition is
     * verified with its transaction coordinator first (KIP-890; from v12 the coordinator adds the partition), and
     * held until then, with the producer's later transactional batches queued behind it in order.
     */
    Promise<AppendResult> append(IoBufSlice records, short acks, String transactionalId, short produceVersion) {
        int len = records.length();
        if (len == 0) {
            rejectedBatches++;
            return Promise.completed(new AppendResult(ErrorCodes.CORRUPT_MESSAGE, -1, -1, "empty record set"));
        }
        AppendResult few = tooFewReplicas(acks);
        if (few != null) {
            return Promise.completed(few);
        }
        return appendBatch(records.buf(), len, acks, false, transactionalId, produceVersion);
    }

    /** Kafka's check before an acks=all append: NOT_ENOUGH_REPLICAS while fewer than min.insync.replicas are live. */
    private AppendResult tooFewReplicas(short acks) {
        if (acks == -1 && settings.minInsyncReplicas() > 1 && replica.isLeader()) {
            int live = replica.raft().liveVoters();
            if (live >= 0 && live < settings.minInsyncReplicas()) {
                // Nothing is written, the producer retries.
                return new AppendResult(ErrorCodes.NOT_ENOUGH_REPLICAS, -1, -1, topic + "-" + index
                    + " has " + live + " live replica(s) of " + replica.configuration().voters().length
                    + " in its Raft group; min.insync.replicas is " + settings.minInsyncReplicas() + " for acks=all");
            }
        }
        return null;
    }

    /**
     * Internal writers (the group coordinator): appends one batch it built and completes once it is committed.
     * Such batches are checked for their framing and CRC only (they are ours: control batches and keyed records).
     * A transactional batch (TxnOffsetCommit's offsets) is checked against the producer's epoch and its open
     * transaction, not its sequence (it has none).
     */
    Promise<AppendResult> appendInternal(MemorySegment seg, int len) {
        return appendBatch(IoBuf.wrap(seg.asSlice(0, len)), len, (short) -1, true, null, (short) 11);
    }

    /**
     * Validates the batch in {@code src} (the request's fragments, read where they lie), applies the topic's
     * compression.type and timestamp type, and proposes it. An exception anywhere on this path (a broker bug) fails
     * this request alone with a Kafka error, is logged (at most every {@link #FAILURE_LOG_INTERVAL_NS}) and counted
     * in {@link #appendFailures}; the partition keeps serving.
     */
    private Promise<AppendResult> appendBatch(IoBuf src, int len, short acks, boolean internal, String transactionalId,
                                              short produceVersion) {
        if (closed) {
            return Promise.completed(new AppendResult(ErrorCodes.NOT_LEADER_OR_FOLLOWER, -1, -1, topic + "-" + index
                + " is no longer served by this broker"));
        }
        long nowMs = System.currentTimeMillis();
        if (internal) {
            if (len < RecordBatch.HEADER_BYTES || RecordBatch.check(src, 0, len, true) != RecordBatch.Check.OK) {
                return Promise.completed(refused(ErrorCodes.CORRUPT_MESSAGE, "internal batch of " + len
                    + " bytes is malformed"));
            }
        } else {
            short code = validator.validate(src, 0, len, settings.rules(), nowMs);
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
        return appendChecked(src, len, acks, internal, transactionalId, produceVersion, null, true, nowMs);
    }

    /**
     * The append after validation: producer checks against the tail view (or verification first), then the proposal.
     * {@code verified} is the verification this batch passed (null when none); a batch queued behind a verification
     * comes back here once it is done. {@code fresh}: the batch was validated just before, so {@link #validator}'s
     * results (codec, max timestamp) are its own; a batch coming back from a wait is validated again for them.
     */
    private Promise<AppendResult> appendChecked(IoBuf src, int len, short acks, boolean internal,
                                                String transactionalId, short produceVersion, Verification verified,
                                                boolean fresh, long nowMs) {
        proposing = false;
        try {
            return appendProposed(src, len, acks, internal, transactionalId, produceVersion, verified, fresh, nowMs);
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

    private Promise<AppendResult> appendProposed(IoBuf src, int len, short acks, boolean internal,
                                                 String transactionalId, short produceVersion, Verification verified,
                                                 boolean fresh, long nowMs) {
        TopicSettings rules = settings;
        src.copyTo(0, header, 0, RecordBatch.HEADER_BYTES);
        batch.wrap(header, 0);
        if (!replica.isLeader()) {
            return Promise.completed(new AppendResult(ErrorCodes.NOT_LEADER_OR_FOLLOWER, -1, -1, notLeader()));
        }
        long producerId = batch.producerId();
        int firstSeq = batch.baseSequence();
        int lastSeq = firstSeq < 0 ? -1 : firstSeq + batch.lastOffsetDelta();
        short epoch = batch.producerEpoch();
        boolean transactional = (batch.attributes() & RecordBatch.TRANSACTIONAL_BIT) != 0;
        ProducerStateManager tail = null;
        if (producerId >= 0 && !batch.isControl()) {
            tail = tail();
            if (tail == null) {
                return Promise.completed(new AppendResult(ErrorCodes.NOT_LEADER_OR_FOLLOWER, -1, -1, "the new leader"
                    + " of " + topic + "-" + index + " is still loading the producers' state; retry"));
            }
            Verification pending = transactional && !verifying.isEmpty() ? verifying.get(producerId) : null;
            if (pending != null && pending != verified) {
                // Behind the producer's verification in progress: in order, after it.
                Promise<AppendResult> p = new Promise<>();
                pending.queued.add(new Deferred(src, len, acks, internal, transactionalId, produceVersion, p));
                return p;
            }
            short code = tail.checkData(producerId, epoch, firstSeq, lastSeq, transactional, replica.logStartOffset() == 0);
            if (code == ProducerStateManager.DUPLICATE) {
                // A retry of a batch we already have: answer with its offset, append nothing.
                return Promise.completed(new AppendResult(ErrorCodes.NONE, tail.duplicateOffset(),
                    replica.logStartOffset(), null));
            }
            if (code != ErrorCodes.NONE) {
                return Promise.completed(code == ErrorCodes.INVALID_PRODUCER_EPOCH
                    ? new AppendResult(code, -1, -1, tail.problem()) : refused(code, tail.problem()));
            }
            if (transactional && !tail.hasOngoingTransaction(producerId, epoch)) {
                AppendResult early = outOfOrderStart(producerId, epoch, firstSeq);
                if (early != null) {
                    return Promise.completed(early);
                }
                if (verified != null) {
                    if (verified.invalidated) {
                        // A marker for this producer landed while the coordinator was asked: its answer is stale.
                        return Promise.completed(refused(abortable(produceVersion), "the transaction of producer "
                            + producerId + " ended while its first batch on " + topic + "-" + index
                            + " was being verified"));
                    }
                } else if (transactionalId != null && verifier != null && !internal) {
                    return verify(src, len, acks, transactionalId, produceVersion, producerId, epoch, firstSeq);
                }
            }
        }
        // What is stored: the batch as sent, or rebuilt with the topic's codec; then the timestamp type and max
        // timestamp the broker decides (Kafka's setMaxTimestamp), with the CRC redone when either changed.
        IoBuf stored = src;
        int storedLen = len;
        long logAppendTimeMs = -1;
        long maxTs = batch.maxTimestamp();
        if (!internal) {
            if (!fresh) {
                // Back from a wait: the validator has moved on to other batches; validate this one again (cheap
                // against a coordinator round trip) for its codec and timestamps.
                short code = validator.validate(src, 0, len, rules.rules(), nowMs);
                if (code != ErrorCodes.NONE) {
                    return Promise.completed(refused(code, validator.message() + " (" + topic + "-" + index + ")"));
                }
                src.copyTo(0, header, 0, RecordBatch.HEADER_BYTES);
                batch.wrap(header, 0);
            }
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
        KafkaBatchPayload payload;
        try {
            // The chain the request was received into is what Raft replicates and the log writes (no copy): its
            // fragments are the connection shard's receive memory, freed on that shard when the last holder (Raft
            // until durable and sent, the batch cache when it is the same shard's) lets go. A batch rebuilt on the
            // heap (recompression) or an internal writer's is copied into this shard's arena once.
            payload = stored.arena() != null ? KafkaBatchPayload.shareOf(stored, 0, storedLen)
                : KafkaBatchPayload.copyOf(stored, 0, storedLen, arena);
        } catch (ArenaExhaustedException e) {
            heapPayloads++;
            payload = new KafkaBatchPayload(stored.toByteArray());
        }
        // Validated in full above (the validator's CRC-32C, or an internal batch's check; the CRC redone by
        // stampTimestamps or the recompression when they changed the bytes): below, headers only.
        payload.markChecked();
        Promise<Long> committed;
        proposing = true;
        try {
            committed = replica.replicate(payload);
        } finally {
            payload.release(); // the Raft log and the transport took their own references
        }
        proposing = false;
        if (committed.isFailed()) {
            return Promise.completed(commitFailure(committed.failure()));
        }
        long base = replica.lastProposedOffset();
        ProducerStateManager view = tail != null ? tail : tail();
        if (view != null) {
            view.applyData(producerId, epoch, firstSeq, lastSeq, base, base + span - 1, transactional && !batch.isControl(),
                System.currentTimeMillis());
            if (transactional && !startGuards.isEmpty()) {
                startGuards.remove(producerId); // its transaction started here
            }
            view.noteTimestamp(maxTs);
        }
        long appendTime = logAppendTimeMs;
        if (acks == 1 || acks == 0) {
            return Promise.completed(new AppendResult(ErrorCodes.NONE, base, replica.logStartOffset(), null,
                appendTime, List.of()));
        }
        // One stage for the outcome (Promise.handle): one promise and one lambda per batch.
        return committed.handle((b, f) -> {
            if (f != null) {
                return commitFailure(f);
            }
            durableLatencyMicros.recordValue(Math.min(60_000_000L, Math.max(0, (System.nanoTime() - startNs) / 1000)));
            return new AppendResult(ErrorCodes.NONE, b, replica.logStartOffset(), null, appendTime, List.of());
        });
    }

    // ------------------------------------------------------------------ KIP-890 verification

    /** A batch waiting behind a verification: re-run once it is done. */
    private record Deferred(IoBuf src, int len, short acks, boolean internal, String transactionalId,
                            short produceVersion, Promise<AppendResult> promise) {
    }

    /**
     * A producer's first transactional batch on this partition being verified with its coordinator (Kafka's
     * VerificationStateEntry): the guard is this object; a marker for the producer meanwhile invalidates it, so the
     * coordinator's answer cannot start a transaction the marker already ended.
     */
    private static final class Verification {
        final long producerId;
        final short epoch;
        final int sequence;
        boolean invalidated;
        final java.util.ArrayDeque<Deferred> queued = new java.util.ArrayDeque<>();

        Verification(long producerId, short epoch, int sequence) {
            this.producerId = producerId;
            this.epoch = epoch;
            this.sequence = sequence;
        }
    }

    /** TRANSACTION_ABORTABLE for clients that know it (Produce v11+), INVALID_TXN_STATE before. */
    private static short abortable(short produceVersion) {
        return produceVersion >= 11 ? ErrorCodes.TRANSACTION_ABORTABLE : ErrorCodes.INVALID_TXN_STATE;
    }

    private Promise<AppendResult> verify(IoBuf src, int len, short acks, String transactionalId, short produceVersion,
                                         long producerId, short epoch, int sequence) {
        Verification v = new Verification(producerId, epoch, sequence);
        verifying.put(producerId, v);
        long[] guard = startGuards.get(producerId);
        if (guard == null || guard[0] != epoch) {
            if (guard == null && startGuards.size() >= MAX_START_GUARDS) {
                startGuards.clear();
            }
            startGuards.put(producerId, new long[] {epoch, sequence});
        } else {
            guard[1] = Math.min(guard[1], sequence);
        }
        Promise<AppendResult> first = new Promise<>();
        // Produce v12 is transaction version 2: the coordinator adds the partition (KIP-890 part 2).
        boolean add = produceVersion >= 12;
        verifier.verify(transactionalId, producerId, epoch, topic, index, add).whenComplete((code, f) -> {
            short c = f != null ? ErrorCodes.NOT_ENOUGH_REPLICAS : code;
            if (verifying.get(producerId) == v) {
                verifying.remove(producerId);
            }
            if (c == ErrorCodes.NONE && !closed) {
                appendChecked(src, len, acks, false, transactionalId, produceVersion, v, false,
                    System.currentTimeMillis()).whenComplete((res, g) -> first.complete(g == null ? res
                    : appendFailed(g, true)));
            } else {
                first.complete(refused(verificationError(c, produceVersion), verificationMessage(c, f, producerId)));
            }
            // Then the batches that waited behind it, in their order (each may start its own verification).
            while (!v.queued.isEmpty()) {
                Deferred d = v.queued.poll();
                Promise<AppendResult> r = closed ? Promise.completed(new AppendResult(ErrorCodes.NOT_LEADER_OR_FOLLOWER,
                    -1, -1, topic + "-" + index + " is no longer served by this broker"))
                    : appendChecked(d.src, d.len, d.acks, d.internal, d.transactionalId, d.produceVersion, null,
                        false, System.currentTimeMillis());
                r.whenComplete((res, g) -> d.promise.complete(g == null ? res : appendFailed(g, true)));
            }
        });
        return first;
    }

    /**
     * OUT_OF_ORDER_SEQUENCE_NUMBER for a batch that would start the transaction of {@code producerId} here ahead of a
     * lower sequence of the same epoch that asked first (its verification failed, e.g. CONCURRENT_TRANSACTIONS while
     * the coordinator still completes the previous transaction, or is still running); else null. Without it the batch
     * queued behind a failed verification was verified on its own and stored first: its producer's retry of the
     * lower sequence was then out of order for good, until the transaction timed out and the producer was fenced
     * (StreamsExactlyOnceClusterTest, Streams' first transactions after a commit). Kafka refuses the same
     * (ProducerAppendInfo.checkSequence against VerificationStateEntry.lowestSequence); the client retries the batch
     * after the lower one, in order.
     */
    private AppendResult outOfOrderStart(long producerId, short epoch, int firstSeq) {
        long[] guard = startGuards.isEmpty() ? null : startGuards.get(producerId);
        if (guard == null || guard[0] != epoch || firstSeq < 0 || firstSeq <= guard[1]) {
            return null;
        }
        return refused(ErrorCodes.OUT_OF_ORDER_SEQUENCE_NUMBER, "producer " + producerId + " starts its transaction on "
            + topic + "-" + index + " at sequence " + guard[1] + ", not stored yet; sequence " + firstSeq
            + " comes after it");
    }

    /** Kafka's mapping of a verification answer to the Produce error (ReplicaManager, AddPartitionsToTxnManager). */
    private static short verificationError(short code, short produceVersion) {
        return switch (code) {
            case ErrorCodes.PRODUCER_FENCED -> ErrorCodes.INVALID_PRODUCER_EPOCH;
            case ErrorCodes.TRANSACTION_ABORTABLE -> abortable(produceVersion);
            case ErrorCodes.CLUSTER_AUTHORIZATION_FAILED -> ErrorCodes.INVALID_TXN_STATE;
            // Retriable for every client without a metadata refresh (Kafka picks NOT_ENOUGH_REPLICAS too).
            case ErrorCodes.CONCURRENT_TRANSACTIONS, ErrorCodes.COORDINATOR_LOAD_IN_PROGRESS,
                 ErrorCodes.COORDINATOR_NOT_AVAILABLE, ErrorCodes.NOT_COORDINATOR, ErrorCodes.NETWORK_EXCEPTION,
                 ErrorCodes.REQUEST_TIMED_OUT, ErrorCodes.NOT_ENOUGH_REPLICAS -> ErrorCodes.NOT_ENOUGH_REPLICAS;
            default -> code;
        };
    }

    private String verificationMessage(short code, Throwable f, long producerId) {
        if (f != null) {
            return "cannot verify the transaction of producer " + producerId + " on " + topic + "-" + index
                + " with its coordinator now; retry";
        }
        return switch (code) {
            case ErrorCodes.TRANSACTION_ABORTABLE, ErrorCodes.INVALID_TXN_STATE -> topic + "-" + index
                + " is not part of the transaction of producer " + producerId + " at its coordinator";
            case ErrorCodes.PRODUCER_FENCED, ErrorCodes.INVALID_PRODUCER_EPOCH -> "producer " + producerId
                + " was fenced by its transaction coordinator";
            default -> "unable to verify that " + topic + "-" + index + " is part of the transaction of producer "
                + producerId + " (coordinator answered error " + code + "); retry";
        };
    }

    /** Answers every batch waiting for a verification (this replica stopped leading or serving). */
    private void failVerifications(short code, String message) {
        startGuards.clear();
        if (verifying.isEmpty()) {
            return;
        }
        for (Verification v : verifying.values()) {
            v.invalidated = true;
            while (!v.queued.isEmpty()) {
                v.queued.poll().promise.complete(new AppendResult(code, -1, -1, message));
            }
        }
        verifying.clear();
    }

    // ------------------------------------------------------------------ transaction markers

    /**
     * WriteTxnMarkers on the leader: appends the COMMIT ({@code commit}) or ABORT marker of producer
     * {@code producerId} at {@code epoch} from coordinator epoch {@code coordinatorEpoch} through the Raft group and
     * completes with NONE once it is committed, or with Kafka's error: NOT_LEADER_OR_FOLLOWER (not the leader, or its
     * producer state still loading: the coordinator retries), NOT_ENOUGH_REPLICAS, INVALID_PRODUCER_EPOCH (older than
     * the producer's epoch), TRANSACTION_COORDINATOR_FENCED (older than the coordinator epoch of the producer's last
     * marker). A marker for a producer with no open transaction here is appended all the same and ends nothing.
     */
    Promise<Short> appendMarker(long producerId, short epoch, boolean commit, int coordinatorEpoch) {
        if (closed || !replica.isLeader()) {
            return Promise.completed(ErrorCodes.NOT_LEADER_OR_FOLLOWER);
        }
        ProducerStateManager tail = tail();
        if (tail == null) {
            return Promise.completed(ErrorCodes.NOT_LEADER_OR_FOLLOWER);
        }
        if (tooFewReplicas((short) -1) != null) {
            return Promise.completed(ErrorCodes.NOT_ENOUGH_REPLICAS);
        }
        short code = tail.checkMarker(producerId, epoch, coordinatorEpoch);
        if (code != ErrorCodes.NONE) {
            markersRefused++;
            return Promise.completed(code);
        }
        long nowMs = System.currentTimeMillis();
        byte[] bytes = new byte[dev.isthmus.log.ControlBatch.MARKER_BYTES];
        dev.isthmus.log.ControlBatch.writeMarker(MemorySegment.ofArray(bytes), 0, producerId, epoch, commit,
            coordinatorEpoch, nowMs);
        long[] proposedAt = {-1};
        KafkaBatchPayload payload = new KafkaBatchPayload(bytes);
        Promise<Long> committed;
        try {
            committed = replica.replicate(payload, at -> proposedAt[0] = at);
        } catch (RuntimeException e) {
            appendFailed(e, true);
            return Promise.completed(ErrorCodes.REQUEST_TIMED_OUT);
        } finally {
            payload.release();
        }
        if (committed.isFailed()) {
            return Promise.completed(kafkaCode(committed.failure()));
        }
        tail.applyMarker(producerId, epoch, commit, coordinatorEpoch, proposedAt[0], nowMs);
        Verification v = verifying.get(producerId);
        if (v != null) {
            v.invalidated = true; // Kafka clears the verification guard on a marker
        }
        // The start guard stays: the marker may be the previous transaction's (under transaction version 2 at the
        // epoch the next one uses), landing between a refused verification of the next one and its retry.
        markersWritten++;
        return committed.map(b -> ErrorCodes.NONE).recover(Partition::kafkaCode);
    }

    /** Markers appended here as leader, and refused for a stale epoch (metrics). */
    long markersWritten;
    long markersRefused;

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
     * before returning on a cache hit or when there is nothing to read, else from the read's completion. The
     * leader serves every fetch, below its high watermark; a follower serves consumers' Fetch v11+ (KIP-392) below
     * its own high watermark, the commit offset its leader last sent it (Raft never lets a follower's commit offset
     * pass what it holds matching the leader's log, so a follower never serves uncommitted data). A leader asked by a
     * consumer with a rack may answer with a preferred read replica and no records ({@link ReadReplicaSelector}).
     */
    void read(PartitionFetch f, int maxBytes) {
        f.resetOutcome();
        boolean leader = isLeader();
        short refused = leader ? ErrorCodes.NONE : followerRefusal(f);
        if (refused != ErrorCodes.NONE) {
            f.errorCode = refused;
            f.highWatermark = -1;
            f.lastStableOffset = -1;
            f.logStartOffset = -1;
            f.readDone();
            return;
        }
        long hw = replica.highWatermark();
        long lso = producers.lastStableOffset();
        long bound = f.isolationLevel == PartitionFetch.READ_COMMITTED ? lso : hw;
        f.highWatermark = hw;
        f.lastStableOffset = lso;
        f.bound = bound;
        f.logStartOffset = replica.logStartOffset();
        long offset = f.fetchOffset;
        if (outOfRange(offset, hw)) {
            f.errorCode = ErrorCodes.OFFSET_OUT_OF_RANGE;
            f.readDone();
            return;
        }
        if (leader && f.clientRack != null && f.readerShard != null) {
            // KIP-392: a follower in the consumer's rack serves it; this answer carries no records.
            int preferred = ReadReplicaSelector.choose(f.readerShard, this, offset, f.clientRack);
            if (preferred >= 0) {
                f.preferredReadReplica = preferred;
                f.readDone();
                return;
            }
        }
        if (offset >= bound || maxBytes <= 0) {
            f.readDone();
            return;
        }
        f.servedByFollower = !leader;
        f.readFrom = this;
        log().read(offset, bound, maxBytes, f);
    }

    /**
     * Whether this follower replica refuses {@code f} (Kafka's checks before a follower serves a consumer): NONE when
     * it may serve it up to its high watermark, else the error. Only consumers' Fetch v11+ are served by followers
     * (NOT_LEADER_OR_FOLLOWER for the others, and while the replica closes or reopens its log for a snapshot); the
     * client's leader epoch must be this replica's term: older is FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH
     * (the client refreshes its metadata and goes back to the leader on either).
     */
    private short followerRefusal(PartitionFetch f) {
        if (closed || !f.followerMayServe || replica.log() == null) {
            return ErrorCodes.NOT_LEADER_OR_FOLLOWER;
        }
        if (f.currentLeaderEpoch >= 0) {
            long term = replica.term();
            if (f.currentLeaderEpoch < term) {
                return ErrorCodes.FENCED_LEADER_EPOCH;
            }
            if (f.currentLeaderEpoch > term) {
                return ErrorCodes.UNKNOWN_LEADER_EPOCH;
            }
        }
        return ErrorCodes.NONE;
    }

    /**
     * READ_COMMITTED, once {@code f}'s read returned batches: the aborted transactions overlapping what it returned,
     * {@code [fetchOffset, last offset read]} (Kafka's collectAbortedTransactions with the end of the fetched data as
     * the upper bound), left null when there are none.
     */
    void collectAborted(PartitionFetch f) {
        long upper = f.lastOffset + 1;
        producers.collectAborted(f.fetchOffset, upper, (producerId, firstOffset) -> {
            if (f.abortedTransactions == null) {
                f.abortedTransactions = new ArrayList<>(2);
            }
            FetchResponseData.AbortedTransaction a = new FetchResponseData.AbortedTransaction();
            a.producerId = producerId;
            a.firstOffset = firstOffset;
            f.abortedTransactions.add(a);
        });
    }

    /**
     * Whether a fetch from {@code offset} at {@code isolationLevel} would get anything now: batches (the high
     * watermark, or for READ_COMMITTED the last stable offset, is past it) or an error (this replica does not lead or
     * no longer serves, or the offset is out of range).
     */
    boolean hasFetchable(long offset, byte isolationLevel) {
        if (!isLeader()) {
            return true;
        }
        long hw = replica.highWatermark();
        long bound = isolationLevel == PartitionFetch.READ_COMMITTED ? producers.lastStableOffset() : hw;
        return offset < bound || outOfRange(offset, hw);
    }

    /**
     * {@link #hasFetchable(long, byte)} for {@code f}, which a follower replica may serve (KIP-392): on a follower
     * that serves it, whether its high watermark (or last stable offset) is past the offset or it would answer an
     * error.
     */
    boolean hasFetchable(PartitionFetch f) {
        if (isLeader() || !f.followerMayServe) {
            return hasFetchable(f.fetchOffset, f.isolationLevel);
        }
        if (followerRefusal(f) != ErrorCodes.NONE) {
            return true;
        }
        long hw = replica.highWatermark();
        long bound = f.isolationLevel == PartitionFetch.READ_COMMITTED ? producers.lastStableOffset() : hw;
        return f.fetchOffset < bound || outOfRange(f.fetchOffset, hw);
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
        if (hasFetchable(f)) {
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
