package dev.isthmus.gateway;

import dev.isthmus.arena.IoBuf;
import dev.isthmus.log.Log;
import dev.isthmus.log.LogException;
import dev.isthmus.log.TransactionIndex;
import dev.isthmus.raft.server.ReplicatedLog;
import dev.isthmus.uring.shard.Shard;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The producer and transaction state of one partition replica: the two {@link ProducerStateManager} views (the
 * <em>committed</em> one on every replica, the <em>tail</em> one on the leader), the aborted-transaction index
 * ({@link TransactionIndex}, Kafka's {@code .txnindex}), the last stable offset, and the snapshots that make a
 * restart quick.
 *
 * <h2>Lifecycle</h2>
 * <pre>
 *  open ──> loading ──(snapshot + .txnindex read off the shard, checked against the log)──> loaded
 *  loaded: every commit applies the newly committed entries to the committed view, in order (a zero-copy read of
 *          the shard's batch cache); ABORT markers that end a transaction add to the index; the last stable offset
 *          follows. On gaining leadership in term T the tail view is built: a copy of the committed view plus the
 *          rest of the leader's log; produces and markers with a producer id wait for it ({@link #tail}).
 *  snapshots: the committed view at its applied offset, every 30 s (with producer expiry), every
 *          {@link #SNAPSHOT_EVERY_OFFSETS} offsets applied, and at a clean close, once that offset is durable in the
 *          local log; the index files are made durable first and the snapshot counts their entries.
 * </pre>
 * A missing or damaged snapshot, one that does not match the log (older than the log start, past the log end, or
 * written before a suffix of the log was replaced) or a {@code .txnindex} file it counted that is missing or short
 * all lead to the same recovery: the committed view and the index are rebuilt from the log start.
 *
 * <h2>Why committed entries</h2>
 * A committed entry is never truncated, so the committed view and the index never go back: there is nothing to
 * undo on a leader change, followers keep the same state (a new leader serves the last stable offset at once), and
 * the last stable offset ({@code min(first open transaction, applied offset, high watermark)}, never below the log
 * start) is exactly Kafka's: a transaction whose marker is not committed is still open.
 *
 * <p>Threads: the partition's shard only, except the file work ({@link TransactionIndex}'s worker), which posts its
 * results back to the shard.
 */
final class PartitionProducers {
    private static final System.Logger LOG = System.getLogger(PartitionProducers.class.getName());
    /** Kafka's producer.id.expiration.ms: the state of a producer silent this long is dropped (unless in a transaction). */
    static final long PRODUCER_EXPIRY_MS = 24L * 3600 * 1000;
    static final String SNAPSHOT = "producers.snapshot";
    /**
     * A snapshot is also taken once this many offsets, or {@link #SNAPSHOT_EVERY_BYTES} bytes, were applied since the
     * last one, and once a rebuild from the log has caught up: a restart after a crash replays the log from the last
     * snapshot, so this bounds what it replays whatever the log's size and however short the broker's lives (issue
     * 22: with only the 30 s timer, a broker killed sooner never wrote one and replayed its whole log each restart).
     */
    static final long SNAPSHOT_EVERY_OFFSETS = 100_000;
    static final long SNAPSHOT_EVERY_BYTES = 32L << 20;
    private static final int APPLY_READ_BYTES = 1 << 20;
    private static final long APPLY_RETRY_NS = 100_000_000L;

    private final Partition part;
    private final ReplicatedLog replica;
    private final Shard shard;
    /** Called when the last stable offset may have moved (after entries were applied). */
    private final Runnable stableAdvanced;
    final ProducerStateManager committed = new ProducerStateManager(0);
    final TransactionIndex txnIndex;
    private ProducerStateManager tail;
    private long tailTerm = -1;
    private long buildingTerm = -1;
    /** The term the tail is wanted for while loading, or -1. */
    private long wantedTerm = -1;
    private Runnable tailReady;
    private boolean loaded;
    private boolean closed;
    // The committed applier: one read at a time.
    private boolean applying;
    private boolean inRead;
    private boolean retryScheduled;
    private final Applier applier = new Applier();
    // Snapshots.
    private long snapshotOffset = -1;
    private boolean snapshotWriting;
    private boolean expiredSinceSnapshot;
    /** Bytes of entries applied since the last snapshot. */
    private long bytesSinceSnapshot;
    /** A rebuild from the log is under way: a snapshot follows once it has caught up with the high watermark. */
    private boolean rebuilt;
    /** Full rebuilds from the log start (tests, metrics). */
    long rebuilds;

    PartitionProducers(Partition part, ReplicatedLog replica, Shard shard, Runnable stableAdvanced) {
        this.part = part;
        this.replica = replica;
        this.shard = shard;
        this.stableAdvanced = stableAdvanced;
        this.txnIndex = new TransactionIndex(replica.dir(), replica.log().fileOps());
        // Compaction of the partition (cleanup.policy=compact) stays below the last stable offset and removes aborted
        // records and, once no longer needed, markers, with the index kept in step (Kafka's transactional cleaner).
        replica.boundCompaction(new ReplicatedLog.CompactionBound() {
            @Override
            public long endOffset() {
                return loaded && !closed ? lastStableOffset() : -1;
            }

            @Override
            public TransactionIndex transactions() {
                return txnIndex;
            }
        });
    }

    /** Starts loading the snapshot and the index files (in the background). */
    void start() {
        txnIndex.readState(SNAPSHOT, (snapshot, files, problem) ->
            post(() -> restore(snapshot, files, problem)));
    }

    private void post(Runnable r) {
        try {
            shard.group().execute(shard.id(), r);
        } catch (RuntimeException stopped) {
            // the shards have stopped: nothing waits for this any more
        }
    }

    boolean loaded() {
        return loaded;
    }

    private void restore(byte[] snapshot, TreeMap<Long, byte[]> files, String problem) {
        if (closed || loaded) {
            return;
        }
        long start = replica.logStartOffset();
        long end = replica.logEndOffset();
        String why = problem;
        if (why == null && snapshot == null) {
            why = "there is no producer snapshot";
        }
        if (why == null) {
            try {
                ProducerStateManager.Loaded l = committed.load(snapshot);
                if (l.offset() < start) {
                    why = "the producer snapshot at offset " + l.offset() + " is older than the log start " + start;
                } else if (l.offset() > end) {
                    why = "the producer snapshot at offset " + l.offset() + " is past the log end " + end;
                } else if (l.offset() > start && termAt(l.offset() - 1) != l.termBeforeOffset()) {
                    why = "the producer snapshot at offset " + l.offset() + " was written before the log's suffix was"
                        + " replaced";
                } else {
                    why = txnIndex.restore(l.extra(), files, start);
                }
            } catch (IllegalArgumentException e) {
                why = e.getMessage();
            }
        }
        if (why != null) {
            committed.reset(start);
            txnIndex.clear(files.keySet());
            rebuilt = end > start;
            if (snapshot != null || !files.isEmpty()) {
                rebuilds++;
                LOG.log(System.Logger.Level.WARNING, "the producer state of " + part.topic + "-" + part.index
                    + " is rebuilt from the log start " + start + ": " + why);
            } else if (end > start) {
                rebuilds++;
                LOG.log(System.Logger.Level.INFO, "the producer state of " + part.topic + "-" + part.index
                    + " is built from the log (" + why + ")");
            }
        } else {
            snapshotOffset = committed.appliedOffset();
        }
        loaded = true;
        apply();
        if (wantedTerm >= 0) {
            buildTail(wantedTerm);
        }
    }

    private long termAt(long offset) {
        try {
            return replica.raft().termAt(offset);
        } catch (RuntimeException e) {
            return -1;
        }
    }

    // ------------------------------------------------------------------ the committed view

    /** The commit offset advanced: applies what was committed (the last stable offset may move). */
    void onCommit() {
        apply();
    }

    /** The log start moved: entries below it are gone (a truncation, or a snapshot that replaced the log). */
    void onLogStartChange(long start) {
        if (!loaded) {
            return;
        }
        if (committed.appliedOffset() < start) {
            // Entries this replica never applied are gone: what was open or aborted before them is unknown.
            committed.reset(start);
            txnIndex.clearAll();
            rebuilds++;
            LOG.log(System.Logger.Level.INFO, "the producer state of " + part.topic + "-" + part.index
                + " starts again at " + start + " (the log now starts past what was applied)");
        } else {
            txnIndex.truncateBelow(start);
        }
        apply();
    }

    private void apply() {
        if (!loaded || closed || applying) {
            return;
        }
        while (true) {
            long from = committed.appliedOffset();
            long start = replica.logStartOffset();
            if (from < start) {
                onLogStartChange(start);
                return;
            }
            long hw = replica.highWatermark();
            Log log = replica.log();
            if (from >= hw || log == null) {
                break;
            }
            applying = true;
            inRead = true;
            applier.from = from;
            log.read(from, hw, APPLY_READ_BYTES, applier);
            inRead = false;
            if (applying) {
                return; // a disk read: the applier goes on from its completion
            }
            if (committed.appliedOffset() <= from) {
                break; // nothing readable (an error was logged and a retry scheduled)
            }
        }
        afterApply();
    }

    private void afterApply() {
        long since = committed.appliedOffset() - Math.max(snapshotOffset, replica.logStartOffset());
        boolean caughtUp = rebuilt && committed.appliedOffset() >= replica.highWatermark();
        if (since >= SNAPSHOT_EVERY_OFFSETS || bytesSinceSnapshot >= SNAPSHOT_EVERY_BYTES || caughtUp) {
            if (caughtUp) {
                rebuilt = false;
            }
            snapshot(false, false);
        }
        stableAdvanced.run();
    }

    /** Reads committed entries for the committed view (its own handler: nothing allocated per read). */
    private final class Applier implements Log.ChainReadHandler {
        long from;
        /** Adds an aborted transaction to the index file of the segment holding its marker. */
        private final java.util.function.Consumer<ProducerStateManager.AbortedTxn> index = a -> {
            Log log = replica.log();
            long base = log == null ? -1 : log.segmentBaseFor(a.lastOffset());
            txnIndex.append(Math.max(0, base), a.producerId(), a.firstOffset(), a.lastOffset(), a.lastStableOffset());
        };

        @Override
        public void onRead(IoBuf batches, long firstOffset, long lastOffset) {
            try {
                if (!closed && !batches.isEmpty()) {
                    bytesSinceSnapshot += batches.size();
                    committed.applyAll(batches, System.currentTimeMillis(), index);
                }
            } finally {
                batches.release();
            }
            done();
        }

        @Override
        public void onError(LogException error) {
            if (!closed && error.kind() != LogException.Kind.OFFSET_OUT_OF_RANGE) {
                LOG.log(System.Logger.Level.WARNING, "cannot read committed entries of " + part.topic + "-"
                    + part.index + " from " + from + " for the producer state: " + error.getMessage()
                    + "; trying again");
            }
            scheduleRetry();
            done();
        }

        private void done() {
            applying = false;
            if (!inRead) {
                apply();
                if (!applying) {
                    afterApply();
                }
            }
        }
    }

    private void scheduleRetry() {
        if (retryScheduled || closed) {
            return;
        }
        retryScheduled = true;
        shard.schedule(APPLY_RETRY_NS, () -> {
            retryScheduled = false;
            apply();
        });
    }

    /**
     * The last stable offset: below every open transaction, below what was applied and the high watermark, never
     * below the log start.
     */
    long lastStableOffset() {
        long hw = replica.highWatermark();
        long lso = loaded ? Math.min(committed.lastStableOffset(), hw) : Math.min(committed.appliedOffset(), hw);
        return Math.max(replica.logStartOffset(), lso);
    }

    /** Aborted transactions overlapping {@code [fetchOffset, upperBound)} (Kafka's collectAbortedTransactions). */
    int collectAborted(long fetchOffset, long upperBound, TransactionIndex.Collector out) {
        return txnIndex.collect(fetchOffset, upperBound, out);
    }

    // ------------------------------------------------------------------ the tail view (leader)

    /**
     * This replica leads in {@code term}: builds the tail view (once loaded); {@code ready} runs once it is in place
     * (not when leadership is lost first).
     */
    void lead(long term, Runnable ready) {
        if (tailTerm == term && tail != null) {
            return;
        }
        wantedTerm = term;
        tailReady = ready;
        if (loaded) {
            buildTail(term);
        }
    }

    /** This replica no longer leads: the tail view goes. */
    void follow() {
        tail = null;
        tailTerm = -1;
        buildingTerm = -1;
        wantedTerm = -1;
        tailReady = null;
    }

    /** The tail view for {@code term}, or null while it is being built (or this replica does not lead in it). */
    ProducerStateManager tail(long term) {
        return tailTerm == term ? tail : null;
    }

    private void buildTail(long term) {
        if (tailTerm == term || buildingTerm == term || closed) {
            return;
        }
        buildingTerm = term;
        new TailScan(committed.copy(), term).run();
    }

    /** Applies the rest of the leader's log (past what the committed view applied) to a new tail view. */
    private final class TailScan implements Log.ChainReadHandler {
        final ProducerStateManager t;
        final long term;
        long from;
        boolean pending;
        boolean inRead;
        boolean failed;

        TailScan(ProducerStateManager t, long term) {
            this.t = t;
            this.term = term;
        }

        void run() {
            while (true) {
                if (buildingTerm != term || closed) {
                    return;
                }
                long at = t.appliedOffset();
                long end = replica.logEndOffset();
                Log log = replica.log();
                if (at >= end || log == null) {
                    break;
                }
                if (at < replica.logStartOffset()) {
                    t.skipTo(replica.logStartOffset());
                    continue;
                }
                from = at;
                pending = true;
                failed = false;
                inRead = true;
                log.read(at, end, APPLY_READ_BYTES, this);
                inRead = false;
                if (pending || failed) {
                    return; // continues from the read's completion, or from the retry
                }
            }
            finish();
        }

        @Override
        public void onRead(IoBuf batches, long firstOffset, long lastOffset) {
            try {
                t.applyAll(batches, System.currentTimeMillis(), a -> {
                });
            } finally {
                batches.release();
            }
            pending = false;
            if (t.appliedOffset() <= from) {
                failed = true;
                shard.schedule(APPLY_RETRY_NS, this::run); // nothing readable yet: look again soon
                return;
            }
            if (!inRead) {
                run();
            }
        }

        @Override
        public void onError(LogException error) {
            LOG.log(System.Logger.Level.WARNING, "cannot read the log of " + part.topic + "-" + part.index + " from "
                + from + " for the producer state: " + error.getMessage() + "; trying again");
            pending = false;
            failed = true;
            shard.schedule(APPLY_RETRY_NS, this::run);
        }

        private void finish() {
            if (buildingTerm != term || closed || !replica.isLeader() || replica.term() != term) {
                return;
            }
            buildingTerm = -1;
            tail = t;
            tailTerm = term;
            Runnable r = tailReady;
            tailReady = null;
            if (r != null) {
                r.run();
            }
        }
    }

    // ------------------------------------------------------------------ snapshots

    /**
     * Takes a snapshot of the committed view ({@code expire}: drop expired producers first) once its offset is durable
     * in the local log; with {@code wait} (a clean close) writes it before returning, whatever its durability.
     */
    void snapshot(boolean expire, boolean wait) {
        if (!loaded || snapshotWriting && !wait) {
            return; // (at close the one being written is followed by this one, in the file worker's order)
        }
        long now = System.currentTimeMillis();
        if (expire) {
            expiredSinceSnapshot |= committed.expire(now, PRODUCER_EXPIRY_MS) > 0;
            if (tail != null) {
                tail.expire(now, PRODUCER_EXPIRY_MS);
            }
        }
        long at = committed.appliedOffset();
        if (at == snapshotOffset && !expiredSinceSnapshot) {
            return;
        }
        Log log = replica.log();
        if (log == null || !wait && at > log.durableEndOffset()) {
            return; // not on this replica's disk yet: a crash could leave the log shorter than the snapshot
        }
        long term = at > replica.logStartOffset() ? termAt(at - 1) : -1;
        byte[] bytes = committed.snapshot(term, txnIndex.manifest());
        snapshotWriting = true;
        bytesSinceSnapshot = 0;
        expiredSinceSnapshot = false;
        txnIndex.checkpoint(replica.dir().resolve(SNAPSHOT), bytes, wait, problem -> post(() -> {
            snapshotWriting = false;
            if (problem == null) {
                snapshotOffset = Math.max(snapshotOffset, at);
            } else {
                LOG.log(System.Logger.Level.WARNING, "cannot write the producer snapshot of " + part.topic + "-"
                    + part.index + ": " + problem);
            }
        }));
        if (wait) {
            snapshotWriting = false;
            snapshotOffset = at;
        }
    }

    // ------------------------------------------------------------------ reads for tools and metrics

    /** The view a leader answers from: the tail when it is in place, else the committed one. */
    private ProducerStateManager view() {
        return tail != null ? tail : committed;
    }

    /**
     * DescribeProducers: {producerId, epoch, lastSequence, lastSeenMs, coordinatorEpoch, txnStartOffset} per producer
     * (lastSequence, coordinatorEpoch and txnStartOffset -1 when unknown or none).
     */
    List<long[]> describe() {
        ProducerStateManager v = view();
        List<long[]> out = new ArrayList<>(v.size());
        for (Map.Entry<Long, ProducerStateManager.Producer> e : v.producers().entrySet()) {
            ProducerStateManager.Producer p = e.getValue();
            out.add(new long[] {e.getKey(), p.epoch, p.lastSequence(), p.lastSeenMs, p.coordinatorEpoch,
                p.txnFirstOffset});
        }
        return out;
    }

    /** The largest record timestamp known (ListOffsets MAX_TIMESTAMP), or -1. */
    long maxTimestamp() {
        return Math.max(committed.maxTimestamp(), tail != null ? tail.maxTimestamp() : -1);
    }

    /** Open transactions in the committed view (metrics). */
    int openTransactions() {
        return committed.openTransactions();
    }

    /** The partition stops being served here. */
    void close() {
        closed = true;
        tail = null;
        tailTerm = -1;
        tailReady = null;
    }
}
