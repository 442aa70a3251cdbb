package dev.isthmus.gateway.txn;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * The transaction coordinator of one {@code __transaction_state} partition as a pure state machine: Kafka's
 * {@code TransactionCoordinator} and {@code TransactionMetadata} rules with no threads, no clock and no I/O. Time
 * comes in as {@code nowMs}, new producer ids from a {@link ProducerIds}, and every effect goes out as a value in
 * an {@link Output}: records to append to the partition, replies to requests, markers to write. The shell (the
 * broker's {@code TxnCoordinator}) carries them out and reports back: {@link #appended} when a record is durable
 * or refused, {@link #markerWritten} per partition acknowledging its marker.
 *
 * <h2>Transitions</h2>
 * Every change is prepared (the metadata gets a pending transition), its record appended, and applied once the
 * append succeeded; while a transition is pending, the id's requests answer CONCURRENT_TRANSACTIONS (retriable).
 * The metadata therefore never runs ahead of the log.
 * <ul>
 *   <li>InitProducerId: unknown id: a new producer id, epoch 0. Empty/CompleteX: the epoch goes up (KIP-360 checks
 *       of the caller's producer id and epoch when it gives them); an exhausted epoch (32766) takes a new producer
 *       id. Ongoing: the open transaction is fenced (the epoch goes up once, KAFKA-19367) and aborted, and the
 *       caller gets CONCURRENT_TRANSACTIONS: its retry then bumps again. PrepareX: CONCURRENT_TRANSACTIONS.</li>
 *   <li>AddPartitionsToTxn / AddOffsetsToTxn: producer id (INVALID_PRODUCER_ID_MAPPING), epoch (PRODUCER_FENCED),
 *       pending or PrepareX (CONCURRENT_TRANSACTIONS); partitions already in the transaction answer at once.
 *       {@link #verifyPartitions} answers a partition leader's KIP-890 check without changing anything.</li>
 *   <li>EndTxn: Ongoing -> PrepareCommit/PrepareAbort, answered once durable; then markers go out and, once every
 *       partition acknowledged, CompleteCommit/CompleteAbort is appended. Transaction version 2 (EndTxn v5) bumps
 *       the epoch at the prepare (markers carry the bumped epoch; an exhausted epoch takes the NextProducerId,
 *       KAFKA-18660), recognises a retry by stored epoch = request epoch + 1, accepts an abort that added nothing
 *       (KAFKA-18464; the pending check comes before the epoch check), and answers a commit racing a coordinator
 *       abort with PRODUCER_FENCED (KAFKA-20785).</li>
 *   <li>{@link #abortTimedOut}: Ongoing transactions past their timeout are fenced and aborted.
 *       {@link #expire}: ids idle past {@code transactional.id.expiration.ms} are tombstoned.</li>
 * </ul>
 *
 * <h2>Loading</h2>
 * A new coordinator (a new leader of the partition) creates a machine with its coordinator epoch (the Raft term),
 * {@link #replay}s every record of the partition, then calls {@link #loaded}, which resends the markers of every
 * transaction found in PrepareX. Open (Ongoing) transactions are left to time out.
 *
 * <h2>Threads</h2>
 * Not thread-safe: owned by the shard of its partition, like everything the shell gives it.
 */
public final class TxnStateMachine {
    /** Producer ids for new ids and exhausted epochs: the next one, or -1 when none is at hand right now. */
    @FunctionalInterface
    public interface ProducerIds {
        long next();
    }

    /** The answer to a request: its {@code waiter} (as the caller passed it), the error, producer id and epoch. */
    public record Reply(Object waiter, short error, long producerId, short producerEpoch) {
    }

    /** A record to append to the partition ({@code value} null: a tombstone); report it with {@link #appended}. */
    public record Append(long id, String transactionalId, byte[] key, byte[] value) {
    }

    /**
     * Markers to write: {@code commit} or abort for {@code producerId} at {@code producerEpoch} on each partition,
     * stamped with the coordinator epoch. Report each partition's acknowledgement with {@link #markerWritten}.
     */
    public record Markers(String transactionalId, long producerId, short producerEpoch, boolean commit,
                          int coordinatorEpoch, int transactionVersion, List<TxnPartition> partitions) {
    }

    /** What a call produced; lists are empty, never null. */
    public static final class Output {
        final List<Reply> replies = new ArrayList<>(1);
        final List<Append> appends = new ArrayList<>(1);
        final List<Markers> markers = new ArrayList<>(0);

        public List<Reply> replies() {
            return replies;
        }

        public List<Append> appends() {
            return appends;
        }

        public List<Markers> markers() {
            return markers;
        }

        /** The reply of a call that answers at once (null when the answer waits for an append). */
        public Reply reply() {
            return replies.isEmpty() ? null : replies.getFirst();
        }

        @Override
        public String toString() {
            return "Output[replies " + replies + ", appends " + appends.size() + ", markers " + markers + "]";
        }
    }

    /** A transactional id as DescribeTransactions shows it. */
    public record Description(String transactionalId, String state, int timeoutMs, long startMs, long producerId,
                              short producerEpoch, List<TxnPartition> partitions) {
    }

    /** A transactional id as ListTransactions shows it. */
    public record Listing(String transactionalId, long producerId, String state) {
    }

    private final int partition;
    private final int coordinatorEpoch;
    private final TxnConfig config;
    private final Map<String, TxnMetadata> txns = new HashMap<>();
    /** Appends in flight: id -> transactional id. */
    private final Map<Long, String> appending = new HashMap<>();
    private long nextAppendId = 1;
    private boolean loaded;

    public TxnStateMachine(int partition, int coordinatorEpoch, TxnConfig config) {
        this.partition = partition;
        this.coordinatorEpoch = coordinatorEpoch;
        this.config = config;
    }

    public int partition() {
        return partition;
    }

    public int coordinatorEpoch() {
        return coordinatorEpoch;
    }

    // ------------------------------------------------------------------ loading

    /**
     * Applies one record of the partition, in log order: the id's state becomes the record's ({@code value} null,
     * a tombstone: the id is forgotten). Only before {@link #loaded}.
     */
    public void replay(String transactionalId, TransactionLog.Value value) {
        if (loaded) {
            throw new IllegalStateException("replay after the load of " + this);
        }
        if (value == null || value.state() == TxnState.DEAD) {
            txns.remove(transactionalId);
            return;
        }
        if (value.state() == TxnState.PREPARE_EPOCH_FENCE) {
            throw new IllegalArgumentException("transactional id " + transactionalId + " has a PrepareEpochFence record,"
                + " which is never written");
        }
        txns.put(transactionalId, new TxnMetadata(transactionalId, value));
    }

    /** The load is complete: resends the markers of every transaction found deciding (PrepareX). */
    public Output loaded(long nowMs) {
        loaded = true;
        Output out = new Output();
        for (TxnMetadata m : new ArrayList<>(txns.values())) {
            if (m.state.preparing()) {
                startMarkers(m, nowMs, out);
            }
        }
        return out;
    }

    // ------------------------------------------------------------------ InitProducerId

    /**
     * InitProducerId with a transactional id. {@code expectedProducerId}/{@code expectedEpoch} are the caller's
     * (v3+, KIP-360), -1 when it has none.
     */
    public Output initProducerId(Object waiter, String transactionalId, int timeoutMs, long expectedProducerId,
                                 short expectedEpoch, long nowMs, ProducerIds ids) {
        Output out = new Output();
        if (transactionalId == null || transactionalId.isEmpty()) {
            return reply(out, waiter, TxnErrors.INVALID_REQUEST);
        }
        if (timeoutMs <= 0 || timeoutMs > config.maxTimeoutMs()) {
            return reply(out, waiter, TxnErrors.INVALID_TRANSACTION_TIMEOUT);
        }
        TxnMetadata m = txns.get(transactionalId);
        if (m == null) {
            long pid = ids.next();
            if (pid < 0) {
                return reply(out, waiter, TxnErrors.NEED_PRODUCER_ID);
            }
            m = new TxnMetadata(transactionalId, pid, timeoutMs, nowMs);
            txns.put(transactionalId, m);
        }
        if (m.pending != null) {
            return reply(out, waiter, TxnErrors.CONCURRENT_TRANSACTIONS);
        }
        boolean expected = expectedProducerId >= 0;
        if (expected && !(m.epoch < 0 || expectedProducerId == m.producerId
            || (expectedProducerId == m.previousProducerId && expectedEpoch >= TxnConfig.MAX_EPOCH))) {
            return reply(out, waiter, TxnErrors.PRODUCER_FENCED);
        }
        switch (m.state) {
            case PREPARE_COMMIT, PREPARE_ABORT -> {
                return reply(out, waiter, TxnErrors.CONCURRENT_TRANSACTIONS);
            }
            case EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT -> {
                TxnMetadata.Transit t;
                if (m.epochExhausted() && (!expected || expectedEpoch == m.epoch)) {
                    long pid = ids.next();
                    if (pid < 0) {
                        return reply(out, waiter, TxnErrors.NEED_PRODUCER_ID);
                    }
                    // A new producer id at epoch 0; the old one is kept as the previous (a retry names it).
                    t = m.transit(pid, -1, (short) 0, expected ? m.epoch : -1, timeoutMs, TxnState.EMPTY,
                        Collections.emptySortedSet(), -1, nowMs, (short) 0);
                } else {
                    short next;
                    short last;
                    if (!expected || m.epoch < 0 || expectedEpoch == m.epoch) {
                        next = (short) (m.epoch + 1);
                        last = expected ? m.epoch : -1;
                    } else if (expectedEpoch == m.lastEpoch) {
                        next = m.epoch; // a retry of a bump that succeeded: answer the current values
                        last = m.lastEpoch;
                    } else {
                        return reply(out, waiter, TxnErrors.PRODUCER_FENCED);
                    }
                    t = m.transit(m.producerId, -1, next, last, timeoutMs, TxnState.EMPTY,
                        Collections.emptySortedSet(), -1, nowMs, (short) 0);
                }
                begin(m, TxnMetadata.Kind.INIT, t, waiter, out);
                return out;
            }
            case ONGOING -> {
                fenceAndAbort(m, TxnMetadata.Kind.FENCE, waiter, nowMs, out);
                return out;
            }
            default -> throw new IllegalStateException("transactional id " + transactionalId + " is in " + m.state);
        }
    }

    /**
     * Fences the open transaction of {@code m} (one epoch bump, never a second one for the abort: KAFKA-19367) and
     * aborts it with the bumped epoch, written as PrepareAbort.
     */
    private void fenceAndAbort(TxnMetadata m, TxnMetadata.Kind kind, Object waiter, long nowMs, Output out) {
        if (m.epoch == Short.MAX_VALUE) {
            throw new IllegalStateException("transactional id " + m.transactionalId + " cannot be fenced at epoch "
                + m.epoch);
        }
        short tv = (short) (config.transactionVersion() >= 2 ? 2 : 0);
        TxnMetadata.Transit t = m.transit(m.producerId, -1, (short) (m.epoch + 1), (short) -1, m.timeoutMs,
            TxnState.PREPARE_ABORT, m.partitions, m.startMs, nowMs, tv);
        begin(m, kind, t, waiter, out);
    }

    // ------------------------------------------------------------------ AddPartitionsToTxn, AddOffsetsToTxn

    /**
     * Adds partitions to the transaction of {@code transactionalId} (AddPartitionsToTxn, AddOffsetsToTxn with the
     * group's offsets partition, or a partition leader adding for a transaction version 2 producer: {@code tv2}).
     */
    public Output addPartitions(Object waiter, String transactionalId, long producerId, short epoch,
                                Collection<TxnPartition> added, boolean tv2, long nowMs) {
        Output out = new Output();
        if (transactionalId == null || transactionalId.isEmpty()) {
            return reply(out, waiter, TxnErrors.INVALID_REQUEST);
        }
        TxnMetadata m = txns.get(transactionalId);
        if (m == null || m.producerId != producerId) {
            return reply(out, waiter, TxnErrors.INVALID_PRODUCER_ID_MAPPING);
        }
        if (m.epoch != epoch) {
            return reply(out, waiter, TxnErrors.PRODUCER_FENCED);
        }
        if (m.pending != null || m.state.preparing()) {
            return reply(out, waiter, TxnErrors.CONCURRENT_TRANSACTIONS);
        }
        if (m.state == TxnState.ONGOING && m.partitions.containsAll(added)) {
            return reply(out, waiter, TxnErrors.NONE, m.producerId, m.epoch);
        }
        TreeSet<TxnPartition> all = new TreeSet<>(m.partitions);
        all.addAll(added);
        long start = m.state == TxnState.ONGOING ? m.startMs : nowMs;
        TxnMetadata.Transit t = m.transit(m.producerId, -1, m.epoch, m.lastEpoch, m.timeoutMs, TxnState.ONGOING, all,
            start, nowMs, (short) (tv2 ? 2 : 0));
        begin(m, TxnMetadata.Kind.ADD, t, waiter, out);
        return out;
    }

    /**
     * KIP-890 part 1: whether each partition is in the open transaction of ({@code producerId}, {@code epoch}):
     * NONE or TRANSACTION_ABORTABLE per partition, or one error for all (INVALID_PRODUCER_ID_MAPPING,
     * PRODUCER_FENCED, CONCURRENT_TRANSACTIONS while the outcome is being written). Changes nothing.
     */
    public Map<TxnPartition, Short> verifyPartitions(String transactionalId, long producerId, short epoch,
                                                     Collection<TxnPartition> partitions) {
        Map<TxnPartition, Short> out = new java.util.LinkedHashMap<>();
        short all = TxnErrors.NONE;
        TxnMetadata m = transactionalId == null || transactionalId.isEmpty() ? null : txns.get(transactionalId);
        if (transactionalId == null || transactionalId.isEmpty()) {
            all = TxnErrors.INVALID_REQUEST;
        } else if (m == null || m.producerId != producerId) {
            all = TxnErrors.INVALID_PRODUCER_ID_MAPPING;
        } else if (m.epoch != epoch) {
            all = TxnErrors.PRODUCER_FENCED;
        } else if (m.state.preparing()) {
            all = TxnErrors.CONCURRENT_TRANSACTIONS;
        }
        for (TxnPartition tp : partitions) {
            out.put(tp, all != TxnErrors.NONE ? all
                : m.state == TxnState.ONGOING && m.partitions.contains(tp) ? TxnErrors.NONE
                : TxnErrors.TRANSACTION_ABORTABLE);
        }
        return out;
    }

    // ------------------------------------------------------------------ EndTxn

    /**
     * EndTxn: commits or aborts the transaction ({@code tv2}: the client speaks transaction version 2, EndTxn v5).
     * The reply carries the producer id and epoch the client continues with (the bumped ones under version 2).
     */
    public Output endTxn(Object waiter, String transactionalId, long producerId, short epoch, boolean commit,
                         boolean tv2, long nowMs, ProducerIds ids) {
        Output out = new Output();
        if (transactionalId == null || transactionalId.isEmpty()) {
            return reply(out, waiter, TxnErrors.INVALID_REQUEST);
        }
        TxnMetadata m = txns.get(transactionalId);
        if (m == null) {
            return reply(out, waiter, TxnErrors.INVALID_PRODUCER_ID_MAPPING);
        }
        // First, so that a transition completing (markers being written) answers "retry" rather than fencing a
        // producer that already moved to the next epoch (KAFKA-18464).
        if (m.pending != null) {
            return reply(out, waiter, TxnErrors.CONCURRENT_TRANSACTIONS);
        }
        boolean storedTv2 = m.clientTransactionVersion >= 2;
        boolean retryOnOverflow = storedTv2 && m.previousProducerId == producerId && epoch == TxnConfig.MAX_EPOCH
            && m.epoch == 0;
        boolean retryOnBump = storedTv2 && m.epoch == epoch + 1;
        if (m.producerId != producerId && !retryOnOverflow) {
            return reply(out, waiter, TxnErrors.INVALID_PRODUCER_ID_MAPPING);
        }
        boolean validEpoch = !storedTv2 ? epoch == m.epoch : switch (m.state) {
            case PREPARE_COMMIT, PREPARE_ABORT -> retryOnBump;
            case COMPLETE_COMMIT, COMPLETE_ABORT -> retryOnBump || retryOnOverflow || epoch == m.epoch;
            default -> epoch == m.epoch;
        };
        if (!validEpoch) {
            return reply(out, waiter, TxnErrors.PRODUCER_FENCED);
        }
        // Version 2 tells a retry by the epoch; version 1 can only take the same outcome in CompleteX as one.
        boolean retry = storedTv2 ? retryOnBump || retryOnOverflow : true;
        switch (m.state) {
            case ONGOING -> {
                prepareEnd(m, commit, tv2, false, waiter, nowMs, ids, out);
                return out;
            }
            case COMPLETE_COMMIT -> {
                if (commit) {
                    return retry ? retried(out, waiter, m) : reply(out, waiter, TxnErrors.INVALID_TXN_STATE);
                }
                if (storedTv2 && retry || !tv2) {
                    return reply(out, waiter, TxnErrors.INVALID_TXN_STATE);
                }
                prepareEnd(m, false, true, true, waiter, nowMs, ids, out);
                return out;
            }
            case COMPLETE_ABORT -> {
                if (!commit) {
                    if (retry) {
                        return retried(out, waiter, m);
                    }
                    if (!tv2) {
                        return reply(out, waiter, TxnErrors.INVALID_TXN_STATE);
                    }
                    prepareEnd(m, false, true, true, waiter, nowMs, ids, out);
                    return out;
                }
                // A commit whose epoch the coordinator bumped to abort (a timeout or a new producer): fenced, not
                // INVALID_TXN_STATE, which would be fatal to the client for the wrong reason (KAFKA-20785).
                return reply(out, waiter, storedTv2 && retry ? TxnErrors.PRODUCER_FENCED : TxnErrors.INVALID_TXN_STATE);
            }
            case EMPTY -> {
                if (!commit && tv2) {
                    prepareEnd(m, false, true, true, waiter, nowMs, ids, out);
                    return out;
                }
                return reply(out, waiter, TxnErrors.INVALID_TXN_STATE);
            }
            case PREPARE_COMMIT, PREPARE_ABORT -> {
                // Not reached while markers are written (pending above); kept for markers given up on.
                boolean same = commit == (m.state == TxnState.PREPARE_COMMIT);
                return reply(out, waiter, same ? TxnErrors.CONCURRENT_TRANSACTIONS
                    : storedTv2 && retry && commit ? TxnErrors.PRODUCER_FENCED : TxnErrors.INVALID_TXN_STATE);
            }
            default -> throw new IllegalStateException("transactional id " + transactionalId + " is in " + m.state);
        }
    }

    /**
     * The answer to a repeated EndTxn whose outcome is already complete: the producer id and epoch to go on with.
     * An abort by the coordinator at the last epoch (32766 fenced to 32767, Short.MAX_VALUE) leaves no epoch to go
     * on with: that producer is fenced (it must start again with InitProducerId, which takes a new producer id),
     * rather than be handed an epoch whose next bump overflows (the trap of KAFKA-19367).
     */
    private static Output retried(Output out, Object waiter, TxnMetadata m) {
        if (m.epoch > TxnConfig.MAX_EPOCH) {
            return reply(out, waiter, TxnErrors.PRODUCER_FENCED);
        }
        return reply(out, waiter, TxnErrors.NONE, m.producerId, m.epoch);
    }

    /** Prepares PrepareCommit/PrepareAbort ({@code empty}: an abort of a version 2 transaction that added nothing). */
    private void prepareEnd(TxnMetadata m, boolean commit, boolean tv2, boolean empty, Object waiter, long nowMs,
                            ProducerIds ids, Output out) {
        long nextPid = -1;
        if (tv2 && m.epochExhausted()) {
            nextPid = ids.next();
            if (nextPid < 0) {
                reply(out, waiter, TxnErrors.NEED_PRODUCER_ID);
                return;
            }
        }
        short newEpoch = tv2 ? (short) (m.epoch + 1) : m.epoch;
        short lastEpoch = tv2 ? m.epoch : m.lastEpoch;
        TxnMetadata.Transit t = m.transit(m.producerId, nextPid, newEpoch, lastEpoch, m.timeoutMs,
            commit ? TxnState.PREPARE_COMMIT : TxnState.PREPARE_ABORT, empty ? Collections.emptySortedSet()
                : m.partitions, empty ? nowMs : m.startMs, nowMs, (short) (tv2 ? 2 : 0));
        begin(m, TxnMetadata.Kind.END, t, waiter, out);
    }

    // ------------------------------------------------------------------ appends and markers

    private void begin(TxnMetadata m, TxnMetadata.Kind kind, TxnMetadata.Transit t, Object waiter, Output out) {
        TxnMetadata.Pending p = new TxnMetadata.Pending(kind, t, waiter);
        m.pending = p;
        append(m, p, out);
    }

    private void append(TxnMetadata m, TxnMetadata.Pending p, Output out) {
        p.appendId = nextAppendId++;
        appending.put(p.appendId, m.transactionalId);
        byte[] value = p.kind == TxnMetadata.Kind.DEAD ? null
            : TransactionLog.value(p.transit.value(), TransactionLog.valueVersion(config.transactionVersion()));
        out.appends.add(new Append(p.appendId, m.transactionalId, TransactionLog.key(m.transactionalId), value));
    }

    /**
     * Append {@code appendId} is durable ({@code error} NONE) or failed with {@code error}: NOT_COORDINATOR (this
     * coordinator lost its partition: the machine is about to be dropped), COORDINATOR_NOT_AVAILABLE (refused or
     * timed out: nothing was written) or another code.
     */
    public Output appended(long appendId, short error, long nowMs) {
        Output out = new Output();
        String id = appending.remove(appendId);
        TxnMetadata m = id == null ? null : txns.get(id);
        if (m == null || m.pending == null || m.pending.appendId != appendId) {
            return out;
        }
        TxnMetadata.Pending p = m.pending;
        if (error != TxnErrors.NONE) {
            if (p.kind == TxnMetadata.Kind.COMPLETE) {
                // The markers are written; the completion must be recorded: again, unless this coordinator is gone.
                if (error != TxnErrors.NOT_COORDINATOR) {
                    append(m, p, out);
                }
                return out;
            }
            m.pending = null;
            if (p.waiter != null) {
                reply(out, p.waiter, error);
            }
            return out;
        }
        apply(m, p.transit);
        switch (p.kind) {
            case INIT -> reply(out, p.waiter, TxnErrors.NONE, m.producerId, m.epoch);
            case ADD -> reply(out, p.waiter, TxnErrors.NONE, m.producerId, m.epoch);
            case END, FENCE, TIMEOUT -> {
                TxnMetadata.Transit complete = startMarkers(m, nowMs, out);
                if (p.kind == TxnMetadata.Kind.END) {
                    reply(out, p.waiter, TxnErrors.NONE, complete.producerId(), complete.epoch());
                } else if (p.kind == TxnMetadata.Kind.FENCE) {
                    reply(out, p.waiter, TxnErrors.CONCURRENT_TRANSACTIONS); // the producer retries and bumps again
                }
            }
            case COMPLETE -> {
            }
            case DEAD -> txns.remove(m.transactionalId);
        }
        return out;
    }

    /**
     * {@code m} is in PrepareX: prepares CompleteX (pending while markers are written) and sends the markers, or
     * appends CompleteX at once when there is no partition. Returns the CompleteX transition.
     */
    private TxnMetadata.Transit startMarkers(TxnMetadata m, long nowMs, Output out) {
        boolean commit = m.state == TxnState.PREPARE_COMMIT;
        boolean tv2 = m.clientTransactionVersion >= 2;
        long pid = m.producerId;
        short epoch = m.epoch;
        if (tv2 && m.nextProducerId >= 0) {
            pid = m.nextProducerId; // the epoch overflowed: the producer continues with the next id at epoch 0
            epoch = 0;
        }
        TxnMetadata.Transit t = m.transit(pid, -1, epoch, tv2 ? m.epoch : m.lastEpoch, m.timeoutMs,
            commit ? TxnState.COMPLETE_COMMIT : TxnState.COMPLETE_ABORT, Collections.emptySortedSet(), m.startMs,
            nowMs, m.clientTransactionVersion);
        TxnMetadata.Pending p = new TxnMetadata.Pending(TxnMetadata.Kind.COMPLETE, t, null);
        m.pending = p;
        m.markersAbandoned = false;
        if (m.partitions.isEmpty()) {
            append(m, p, out);
        } else {
            out.markers.add(new Markers(m.transactionalId, m.producerId, m.epoch, commit, coordinatorEpoch,
                m.clientTransactionVersion, List.copyOf(m.partitions)));
        }
        return t;
    }

    /**
     * The marker for {@code tp} of the transaction {@code transactionalId} decided at ({@code producerId},
     * {@code epoch}) is written (or the partition no longer exists and needs none); the last one appends CompleteX.
     */
    public Output markerWritten(String transactionalId, long producerId, short epoch, TxnPartition tp) {
        Output out = new Output();
        TxnMetadata m = txns.get(transactionalId);
        if (m == null || !m.state.preparing() || m.producerId != producerId || m.epoch != epoch || m.pending == null
            || m.pending.kind != TxnMetadata.Kind.COMPLETE || m.pending.appendId >= 0) {
            return out; // late: another decision or coordinator has moved on
        }
        if (m.partitions.remove(tp) && m.partitions.isEmpty()) {
            append(m, m.pending, out);
        }
        return out;
    }

    /**
     * A partition refused the marker for good (INVALID_PRODUCER_EPOCH or TRANSACTION_COORDINATOR_FENCED: a newer
     * coordinator or producer epoch exists): the markers of this transaction stop, as Kafka stops them; it stays in
     * PrepareX until its partition is loaded again.
     */
    public void markersAbandoned(String transactionalId, long producerId, short epoch) {
        TxnMetadata m = txns.get(transactionalId);
        if (m != null && m.state.preparing() && m.producerId == producerId && m.epoch == epoch) {
            m.markersAbandoned = true;
        }
    }

    /** Applies a durable transition (Kafka's completeTransitionTo, with its checks). */
    private void apply(TxnMetadata m, TxnMetadata.Transit t) {
        switch (t.state()) {
            case EMPTY -> {
                check(m, t, t.partitions().isEmpty() && t.startMs() == -1 && (t.epoch() == m.epoch
                    || t.epoch() == m.epoch + 1 || (t.epoch() == 0 && t.producerId() != m.producerId)));
                m.timeoutMs = t.timeoutMs();
                m.epoch = t.epoch();
                m.lastEpoch = t.lastEpoch();
                m.producerId = t.producerId();
                m.nextProducerId = -1;
                m.startMs = t.startMs(); // -1, as the record says (Kafka keeps the old start in memory only)
            }
            case ONGOING -> {
                check(m, t, t.producerId() == m.producerId && t.epoch() == m.epoch
                    && t.partitions().containsAll(m.partitions) && t.timeoutMs() == m.timeoutMs);
                m.startMs = t.startMs();
                m.partitions.addAll(t.partitions());
            }
            case PREPARE_COMMIT, PREPARE_ABORT -> {
                check(m, t, t.producerId() == m.producerId && (t.epoch() == m.epoch || t.epoch() == m.epoch + 1)
                    && t.timeoutMs() == m.timeoutMs);
                m.epoch = t.epoch();
                m.lastEpoch = t.lastEpoch();
                m.nextProducerId = t.nextProducerId();
                m.startMs = t.startMs();
                m.partitions.clear();
                m.partitions.addAll(t.partitions());
            }
            case COMPLETE_COMMIT, COMPLETE_ABORT -> {
                check(m, t, (t.producerId() == m.producerId && t.epoch() == m.epoch)
                    || (t.producerId() == m.nextProducerId && t.epoch() == 0));
                m.producerId = t.producerId();
                m.epoch = t.epoch();
                m.lastEpoch = t.lastEpoch();
                m.nextProducerId = -1;
                m.partitions.clear();
            }
            case DEAD -> {
            }
            default -> check(m, t, false);
        }
        // As the record says it: the producer id before this transition (what a retry after a new id names).
        m.previousProducerId = t.previousProducerId();
        m.clientTransactionVersion = t.clientTransactionVersion();
        m.lastUpdateMs = t.lastUpdateMs();
        m.state = t.state();
        m.pending = null;
    }

    private static void check(TxnMetadata m, TxnMetadata.Transit t, boolean ok) {
        if (!ok) {
            throw new IllegalStateException("transactional id " + m.transactionalId + " cannot apply " + t + " to "
                + m);
        }
    }

    // ------------------------------------------------------------------ timeouts and expiry

    /**
     * Fences and aborts every Ongoing transaction with nothing pending whose start plus timeout is before
     * {@code nowMs} (Kafka's {@code abortTimedOutTransactions}).
     */
    public Output abortTimedOut(long nowMs) {
        Output out = new Output();
        for (TxnMetadata m : new ArrayList<>(txns.values())) {
            if (m.state == TxnState.ONGOING && m.pending == null && m.startMs + m.timeoutMs < nowMs) {
                fenceAndAbort(m, TxnMetadata.Kind.TIMEOUT, null, nowMs, out);
            }
        }
        return out;
    }

    /** Tombstones every id with no transaction open and nothing pending, idle longer than the expiration. */
    public Output expire(long nowMs) {
        Output out = new Output();
        for (TxnMetadata m : new ArrayList<>(txns.values())) {
            if (m.state.expirationAllowed() && m.pending == null && m.lastUpdateMs <= nowMs - config.idExpirationMs()) {
                TxnMetadata.Transit t = m.transit(m.producerId, -1, m.epoch, m.lastEpoch, m.timeoutMs, TxnState.DEAD,
                    Collections.emptySortedSet(), m.startMs, nowMs, m.clientTransactionVersion);
                begin(m, TxnMetadata.Kind.DEAD, t, null, out);
            }
        }
        return out;
    }

    // ------------------------------------------------------------------ admin views

    /** DescribeTransactions: the id's state, or null when it is unknown (or being removed). */
    public Description describe(String transactionalId) {
        TxnMetadata m = txns.get(transactionalId);
        if (m == null || m.state == TxnState.DEAD) {
            return null;
        }
        return new Description(m.transactionalId, m.state.kafkaName, m.timeoutMs, m.startMs, m.producerId, m.epoch,
            List.copyOf(m.partitions));
    }

    /**
     * ListTransactions: ids matching every filter given (states by Kafka's name, producer ids, running longer than
     * {@code minDurationMs} when >= 0, the id matching {@code idPattern} when not null).
     */
    public List<Listing> list(Collection<TxnState> states, Collection<Long> producerIds, long minDurationMs,
                              Pattern idPattern, long nowMs) {
        List<Listing> out = new ArrayList<>();
        for (TxnMetadata m : txns.values()) {
            if (m.state == TxnState.DEAD) {
                continue;
            }
            if (!producerIds.isEmpty() && !producerIds.contains(m.producerId)) {
                continue;
            }
            if (!states.isEmpty() && !states.contains(m.state)) {
                continue;
            }
            if (minDurationMs >= 0 && nowMs - m.startMs <= minDurationMs) {
                continue;
            }
            if (idPattern != null && !idPattern.matcher(m.transactionalId).matches()) {
                continue;
            }
            out.add(new Listing(m.transactionalId, m.producerId, m.state.kafkaName));
        }
        return out;
    }

    /** Transactions open (Ongoing, or deciding): for the metrics. */
    public int openTransactions() {
        int n = 0;
        for (TxnMetadata m : txns.values()) {
            if (m.state == TxnState.ONGOING || m.state.preparing()) {
                n++;
            }
        }
        return n;
    }

    /** The start time of the oldest open transaction, or -1 when none is open. */
    public long oldestOpenStartMs() {
        long oldest = -1;
        for (TxnMetadata m : txns.values()) {
            if ((m.state == TxnState.ONGOING || m.state.preparing()) && m.startMs >= 0
                && (oldest < 0 || m.startMs < oldest)) {
                oldest = m.startMs;
            }
        }
        return oldest;
    }

    /** Partitions still waiting for a marker, over all deciding transactions. */
    public int markersPending() {
        int n = 0;
        for (TxnMetadata m : txns.values()) {
            if (m.state.preparing() && !m.markersAbandoned) {
                n += m.partitions.size();
            }
        }
        return n;
    }

    /** Transactional ids known. */
    public int size() {
        return txns.size();
    }

    /** The id's state now (tests): producer id, epoch, state, partitions, pending target or null. */
    public Snapshot snapshot(String transactionalId) {
        TxnMetadata m = txns.get(transactionalId);
        return m == null ? null : new Snapshot(m.producerId, m.previousProducerId, m.nextProducerId, m.epoch, m.state,
            List.copyOf(m.partitions), m.pending == null ? null : m.pending.transit.state(), m.startMs, m.timeoutMs,
            m.clientTransactionVersion);
    }

    /** A copy of one id's state (tests and the shell's logging). */
    public record Snapshot(long producerId, long previousProducerId, long nextProducerId, short epoch, TxnState state,
                           List<TxnPartition> partitions, TxnState pending, long startMs, int timeoutMs,
                           short clientTransactionVersion) {
    }

    /** Every id known (tests). */
    public SortedSet<String> transactionalIds() {
        return new TreeSet<>(txns.keySet());
    }

    // ------------------------------------------------------------------ replies

    private static Output reply(Output out, Object waiter, short error) {
        return reply(out, waiter, error, -1, (short) -1);
    }

    private static Output reply(Output out, Object waiter, short error, long producerId, short epoch) {
        out.replies.add(new Reply(waiter, error, producerId, epoch));
        return out;
    }

    @Override
    public String toString() {
        return "TxnStateMachine[partition " + partition + ", coordinator epoch " + coordinatorEpoch + ", " + txns.size()
            + " ids]";
    }
}
