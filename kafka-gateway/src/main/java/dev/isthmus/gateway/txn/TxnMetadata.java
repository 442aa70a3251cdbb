package dev.isthmus.gateway.txn;

import java.util.SortedSet;
import java.util.TreeSet;

/**
 * One transactional id's state at its coordinator (Kafka's {@code TransactionMetadata}): the producer id and epoch
 * handed to it, its transaction's state, partitions and timestamps, and the transition being written, if any.
 * Owned by one {@link TxnStateMachine}; never shared.
 *
 * <p>The fields change only in {@link TxnStateMachine}: a transition is prepared as a {@link Transit} (the state
 * to be), kept as {@link #pending} while its record is appended, and applied once the append is durable. So the
 * fields are always what the log says, never ahead of it (which is why a failed fence append cannot leave a bumped
 * epoch behind, KAFKA-9666).
 */
final class TxnMetadata {
    /** What the pending transition is for: decides what happens once its record is durable. */
    enum Kind {
        /** InitProducerId: a new epoch (or producer id), Empty. */
        INIT,
        /** AddPartitionsToTxn / AddOffsetsToTxn: Ongoing with more partitions. */
        ADD,
        /** EndTxn from the client: PrepareCommit or PrepareAbort. */
        END,
        /** InitProducerId found an open transaction: fence (bump the epoch) and abort it; the caller retries. */
        FENCE,
        /** The transaction ran past its timeout: fence and abort it, nobody waits. */
        TIMEOUT,
        /** Markers are being written (no append yet), then CompleteCommit or CompleteAbort is appended. */
        COMPLETE,
        /** The id expired: a tombstone. */
        DEAD
    }

    /** A prepared transition: the whole state the record will carry. */
    record Transit(long producerId, long previousProducerId, long nextProducerId, short epoch, short lastEpoch,
                   int timeoutMs, TxnState state, SortedSet<TxnPartition> partitions, long startMs, long lastUpdateMs,
                   short clientTransactionVersion) {
        TransactionLog.Value value() {
            return new TransactionLog.Value(producerId, previousProducerId, nextProducerId, epoch, timeoutMs, state,
                new java.util.ArrayList<>(partitions), lastUpdateMs, startMs, clientTransactionVersion);
        }
    }

    /** The transition in flight: its kind, target, who waits for the answer, and its append (-1 while none). */
    static final class Pending {
        final Kind kind;
        final Transit transit;
        final Object waiter;
        long appendId = -1;

        Pending(Kind kind, Transit transit, Object waiter) {
            this.kind = kind;
            this.transit = transit;
            this.waiter = waiter;
        }
    }

    final String transactionalId;
    long producerId;
    long previousProducerId = -1;
    long nextProducerId = -1;
    short epoch = -1;
    /** The epoch before the last bump (KIP-360 retry detection); not in the log, -1 after a load. */
    short lastEpoch = -1;
    int timeoutMs;
    TxnState state = TxnState.EMPTY;
    /** The transaction's partitions; while markers are written, those still without one. */
    final TreeSet<TxnPartition> partitions = new TreeSet<>();
    long startMs = -1;
    long lastUpdateMs;
    short clientTransactionVersion;
    Pending pending;
    /** Markers of the current PrepareX were refused for good (a newer coordinator or epoch): not retried. */
    boolean markersAbandoned;

    TxnMetadata(String transactionalId, long producerId, int timeoutMs, long nowMs) {
        this.transactionalId = transactionalId;
        this.producerId = producerId;
        this.timeoutMs = timeoutMs;
        this.lastUpdateMs = nowMs;
    }

    /** Loaded from a record. */
    TxnMetadata(String transactionalId, TransactionLog.Value v) {
        this.transactionalId = transactionalId;
        this.producerId = v.producerId();
        this.previousProducerId = v.previousProducerId();
        this.nextProducerId = v.nextProducerId();
        this.epoch = v.producerEpoch();
        this.timeoutMs = v.timeoutMs();
        this.state = v.state();
        this.partitions.addAll(v.partitions());
        this.startMs = v.startMs();
        this.lastUpdateMs = v.lastUpdateMs();
        this.clientTransactionVersion = v.clientTransactionVersion();
    }

    boolean epochExhausted() {
        return epoch >= TxnConfig.MAX_EPOCH;
    }

    /** A transition this one may prepare now, from {@code state} to {@code transit}'s. */
    Transit transit(long pid, long nextPid, short newEpoch, short newLastEpoch, int newTimeoutMs, TxnState to,
                    SortedSet<TxnPartition> newPartitions, long newStartMs, long nowMs, short tv) {
        if (pending != null) {
            throw new IllegalStateException("transactional id " + transactionalId + " prepares " + to + " while "
                + pending.transit.state() + " is pending");
        }
        if (!to.validPrevious().contains(state)) {
            throw new IllegalStateException("transactional id " + transactionalId + " cannot go from " + state + " to "
                + to);
        }
        if (pid < 0 || (to != TxnState.DEAD && newEpoch < 0)) {
            throw new IllegalStateException("transactional id " + transactionalId + ": producer id " + pid + " epoch "
                + newEpoch + " is not valid for " + to);
        }
        return new Transit(pid, producerId, nextPid, newEpoch, newLastEpoch, newTimeoutMs, to,
            java.util.Collections.unmodifiableSortedSet(new TreeSet<>(newPartitions)), newStartMs,
            Math.max(nowMs, lastUpdateMs), tv);
    }

    @Override
    public String toString() {
        return "TxnMetadata[" + transactionalId + " pid " + producerId + " epoch " + epoch + " " + state.kafkaName
            + " " + partitions + (pending != null ? " pending " + pending.kind + "->" + pending.transit.state() : "")
            + "]";
    }
}
