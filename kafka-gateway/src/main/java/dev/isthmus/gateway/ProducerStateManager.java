package dev.isthmus.gateway;

import dev.isthmus.arena.IoBufView;
import dev.isthmus.log.ControlBatch;
import dev.isthmus.log.RecordBatch;

import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * The producer state of one partition replica, Kafka's {@code ProducerStateManager} and {@code ProducerAppendInfo}:
 * per producer id its epoch, its last {@link #MAX_BATCHES} batches (duplicate detection and sequence order), the
 * first offset of its open transaction and the last coordinator epoch of its markers; and the open transactions by
 * first offset, from which the last stable offset follows.
 *
 * <h2>Two views of one partition</h2>
 * A {@link Partition} keeps two instances, fed the same way (batch by batch, in log order, {@link #apply}):
 * <ul>
 *   <li>the <em>committed</em> view, on every replica, applies the entries the Raft group committed, in order, up to
 *       {@link #appliedOffset()}. Committed entries are never truncated, so this view never goes back: the last
 *       stable offset, the aborted-transaction index and the snapshots come from it, and a follower that becomes
 *       leader has it at once;</li>
 *   <li>the <em>tail</em> view, on the leader only, is a copy of the committed view with the rest of the leader's log
 *       applied and then each batch the leader proposes: it is what produced batches and markers are checked
 *       against ({@link #checkData}, {@link #checkMarker}), as Kafka checks against its log end.</li>
 * </ul>
 *
 * <h2>Rules (Kafka's)</h2>
 * Data batch: an epoch older than the producer's is INVALID_PRODUCER_EPOCH; a batch equal to one of the last five of
 * the same epoch is a duplicate (answered with its offset, not appended); a new epoch starts at sequence 0 (unless
 * the producer is unknown here); otherwise the first sequence follows the last one. A non-transactional batch from a
 * producer with an open transaction is INVALID_TXN_STATE; a transactional batch from a producer without one starts a
 * transaction at its base offset. Marker: an epoch older than the producer's is INVALID_PRODUCER_EPOCH, a coordinator
 * epoch older than the last one seen for the producer is TRANSACTION_COORDINATOR_FENCED; a marker ends the open
 * transaction (an ABORT of a non-empty one yields an {@link AbortedTxn} for the index) or, when none is open, only
 * records its epochs. A producer with an open transaction never expires.
 *
 * <p>Beyond Kafka's rules (issue 22): the first batches of an idempotent producer's new epoch may be its batches in
 * flight sent again by kafka-clients after an epoch bump, with only the header's epoch, sequence and CRC rewritten;
 * an error answered by a leader that stepped down does not mean the first copy was not stored. {@link #matchResent}
 * recognises such a batch by its stored bytes among the producer's kept batches of earlier epochs, and the leader
 * answers it with the stored batch's offset instead of storing it twice.
 *
 * <p>Threads: the partition's shard only. Not thread-safe.
 */
final class ProducerStateManager {
    /** Batches kept per producer for duplicate detection (Kafka's NUM_BATCHES_TO_RETAIN). */
    static final int MAX_BATCHES = 5;
    /** Outcome of {@link #checkData} besides Kafka error codes: a retried batch that is already in the log. */
    static final short DUPLICATE = Short.MIN_VALUE;
    static final int SNAPSHOT_MAGIC = 0x49535053; // "ISPS"
    static final int SNAPSHOT_VERSION = 4;

    /**
     * One producer id's state. Its last batches are a ring of {@link #MAX_BATCHES} slots in three arrays, so that
     * recording a batch allocates nothing.
     */
    static final class Producer {
        /** -1 until a batch or marker names one. */
        short epoch = -1;
        /** The coordinator epoch of the last marker, or -1. */
        int coordinatorEpoch = -1;
        /** First offset of the open transaction, or -1. */
        long txnFirstOffset = -1;
        /** Largest of the batches' max timestamps and the append times (producer.id.expiration.ms). */
        long lastSeenMs;
        // The last batches, oldest first from head: first and last sequence, base offset; and what identifies the
        // stored bytes for {@link #matchResent}: the batch's CRC-32C, its size (0: unknown, as after a snapshot) and
        // max timestamp.
        private final int[] firstSeqs = new int[MAX_BATCHES];
        private final int[] lastSeqs = new int[MAX_BATCHES];
        private final long[] baseOffsets = new long[MAX_BATCHES];
        private final int[] crcs = new int[MAX_BATCHES];
        private final int[] sizes = new int[MAX_BATCHES];
        private final long[] maxTimestamps = new long[MAX_BATCHES];
        private int head;
        private int count;
        /**
         * The batches of the epoch before this one (null until a bump): the batches a client may re-send under the new
         * epoch. Not in snapshots.
         */
        Producer previous;
        /** The batches taken since the bump all are earlier epochs' batches re-sent (see {@link #applyResent}). */
        boolean resending;

        Producer copy() {
            Producer p = new Producer();
            p.epoch = epoch;
            p.coordinatorEpoch = coordinatorEpoch;
            p.txnFirstOffset = txnFirstOffset;
            p.lastSeenMs = lastSeenMs;
            System.arraycopy(firstSeqs, 0, p.firstSeqs, 0, MAX_BATCHES);
            System.arraycopy(lastSeqs, 0, p.lastSeqs, 0, MAX_BATCHES);
            System.arraycopy(baseOffsets, 0, p.baseOffsets, 0, MAX_BATCHES);
            System.arraycopy(crcs, 0, p.crcs, 0, MAX_BATCHES);
            System.arraycopy(sizes, 0, p.sizes, 0, MAX_BATCHES);
            System.arraycopy(maxTimestamps, 0, p.maxTimestamps, 0, MAX_BATCHES);
            p.head = head;
            p.count = count;
            p.previous = previous == null ? null : previous.copy();
            p.resending = resending;
            return p;
        }

        /** Batches kept. */
        int batchCount() {
            return count;
        }

        /** The {@code i}-th batch kept, oldest first: its ring slot. */
        private int slot(int i) {
            return (head + i) % MAX_BATCHES;
        }

        int firstSequence(int i) {
            return firstSeqs[slot(i)];
        }

        int lastSequence(int i) {
            return lastSeqs[slot(i)];
        }

        long baseOffset(int i) {
            return baseOffsets[slot(i)];
        }

        /** Keeps a batch whose stored bytes are not known, dropping the oldest when {@link #MAX_BATCHES} are kept. */
        void addBatch(int firstSeq, int lastSeq, long baseOffset) {
            addBatch(firstSeq, lastSeq, baseOffset, 0, 0, -1);
        }

        /**
         * Keeps a batch, dropping the oldest when {@link #MAX_BATCHES} are kept; {@code crc}, {@code sizeBytes} and
         * {@code maxTimestamp} are the stored batch's (size 0 when unknown).
         */
        void addBatch(int firstSeq, int lastSeq, long baseOffset, int crc, int sizeBytes, long maxTimestamp) {
            int at;
            if (count == MAX_BATCHES) {
                at = head;
                head = (head + 1) % MAX_BATCHES;
            } else {
                at = slot(count);
                count++;
            }
            firstSeqs[at] = firstSeq;
            lastSeqs[at] = lastSeq;
            baseOffsets[at] = baseOffset;
            crcs[at] = crc;
            sizes[at] = sizeBytes;
            maxTimestamps[at] = maxTimestamp;
        }

        /** The last sequence number kept, or -1. */
        int lastSequence() {
            return count == 0 ? -1 : lastSeqs[slot(count - 1)];
        }

        private void bumpEpoch(short e) {
            if (e != epoch) {
                if (count > 0 && epoch >= 0) {
                    Producer before = new Producer();
                    before.epoch = epoch;
                    System.arraycopy(firstSeqs, 0, before.firstSeqs, 0, MAX_BATCHES);
                    System.arraycopy(lastSeqs, 0, before.lastSeqs, 0, MAX_BATCHES);
                    System.arraycopy(baseOffsets, 0, before.baseOffsets, 0, MAX_BATCHES);
                    System.arraycopy(crcs, 0, before.crcs, 0, MAX_BATCHES);
                    System.arraycopy(sizes, 0, before.sizes, 0, MAX_BATCHES);
                    System.arraycopy(maxTimestamps, 0, before.maxTimestamps, 0, MAX_BATCHES);
                    before.head = head;
                    before.count = count;
                    previous = before;
                }
                epoch = e;
                head = 0;
                count = 0;
                resending = false;
            }
        }
    }

    /** An aborted transaction for the index (Kafka's AbortedTxn; {@code lastOffset} is the marker's offset). */
    record AbortedTxn(long producerId, long firstOffset, long lastOffset, long lastStableOffset) {
    }

    private final Map<Long, Producer> producers = new HashMap<>();
    /** The producer looked up last (a produce checks then applies the same one): no boxed key on a repeat. */
    private long cachedId = -1;
    private Producer cached;
    /** Open transactions: first offset -> producer id. */
    private final TreeMap<Long, Long> open = new TreeMap<>();
    /** The next offset to apply (everything below was applied). */
    private long appliedOffset;
    /** Largest record timestamp of the data batches applied (ListOffsets MAX_TIMESTAMP), or -1. */
    private long maxTimestamp = -1;
    /** Offset of a duplicate found by the last {@link #checkData}, and of its last record. */
    private long duplicateOffset = -1;
    private long duplicateLastOffset = -1;
    /** Where the batch found by the last {@link #matchResent} is: its base and last offsets. */
    private long resentOffset = -1;
    private long resentLastOffset = -1;
    /** Scratch for {@link #matchResent}. */
    private final java.util.zip.CRC32C crc32c = new java.util.zip.CRC32C();
    private String problem;

    ProducerStateManager(long appliedOffset) {
        this.appliedOffset = appliedOffset;
    }

    /** A copy (the tail view starts as a copy of the committed one). */
    ProducerStateManager copy() {
        ProducerStateManager c = new ProducerStateManager(appliedOffset);
        for (Map.Entry<Long, Producer> e : producers.entrySet()) {
            c.producers.put(e.getKey(), e.getValue().copy());
        }
        c.open.putAll(open);
        c.maxTimestamp = maxTimestamp;
        return c;
    }

    long appliedOffset() {
        return appliedOffset;
    }

    /** Everything applied is forgotten and applying starts again at {@code offset} (the log was replaced). */
    void reset(long offset) {
        forgetCached();
        producers.clear();
        open.clear();
        appliedOffset = offset;
        maxTimestamp = -1;
    }

    /** Skips to {@code offset} without applying (the log starts later than what was applied). */
    void skipTo(long offset) {
        appliedOffset = Math.max(appliedOffset, offset);
    }

    long maxTimestamp() {
        return maxTimestamp;
    }

    Producer producer(long producerId) {
        if (producerId == cachedId && cached != null) {
            return cached;
        }
        Producer p = producers.get(producerId);
        if (p != null) {
            cachedId = producerId;
            cached = p;
        }
        return p;
    }

    /** The state of {@code producerId}, created when it has none. */
    private Producer producerOrNew(long producerId) {
        Producer p = producer(producerId);
        if (p == null) {
            p = new Producer();
            producers.put(producerId, p);
            cachedId = producerId;
            cached = p;
        }
        return p;
    }

    private void forgetCached() {
        cachedId = -1;
        cached = null;
    }

    Map<Long, Producer> producers() {
        return producers;
    }

    int size() {
        return producers.size();
    }

    /** Open transactions. */
    int openTransactions() {
        return open.size();
    }

    /** First offset of the earliest open transaction, or {@link Long#MAX_VALUE} when none is open. */
    long firstUnstableOffset() {
        return open.isEmpty() ? Long.MAX_VALUE : open.firstKey();
    }

    /**
     * The last stable offset of this view: below the first open transaction and below what was applied (nothing
     * unapplied is known to be stable).
     */
    long lastStableOffset() {
        return Math.min(firstUnstableOffset(), appliedOffset);
    }

    /** The open transactions' {producerId, firstOffset}, by first offset. */
    Iterable<Map.Entry<Long, Long>> openByFirstOffset() {
        return open.entrySet();
    }

    // ------------------------------------------------------------------ checks (tail view)

    /**
     * Checks a produced data batch: {@link ErrorCodes#NONE}, {@link #DUPLICATE} (then {@link #duplicateOffset()} is
     * where it is), or a Kafka error (then {@link #problem()} names it).
     */
    short checkData(long producerId, short epoch, int firstSeq, int lastSeq, boolean transactional) {
        return checkData(producerId, epoch, firstSeq, lastSeq, transactional, false);
    }

    /**
     * As {@link #checkData(long, short, int, int, boolean)}; {@code logComplete} says that nothing of the log was
     * ever removed, so a producer without state here has never stored a batch in it. Such a producer cannot start
     * at sequence N > 0: its batches 0..N-1 are still on their way (a retry after a leader change, a batch that
     * timed out), and taking this one first would store it ahead of them (bench/chaos, ChaosTest seed
     * 6976184099440299723: 'reordered'). The client retries a batch that is not the next of its sequence, in
     * order, or bumps its epoch when the gap is real.
     */
    short checkData(long producerId, short epoch, int firstSeq, int lastSeq, boolean transactional,
                    boolean logComplete) {
        Producer p = producer(producerId);
        if (p == null) {
            if (logComplete && firstSeq > 0) {
                problem = "producer " + producerId + " has no batch in this partition and sent sequence " + firstSeq
                    + ", not 0";
                return ErrorCodes.OUT_OF_ORDER_SEQUENCE_NUMBER;
            }
            return ErrorCodes.NONE;
        }
        if (epoch < p.epoch) {
            problem = "producer " + producerId + " epoch " + epoch + " is older than " + p.epoch;
            return ErrorCodes.INVALID_PRODUCER_EPOCH;
        }
        // A batch without a sequence (the group coordinator's transactional offsets) is checked for its epoch only.
        if (firstSeq >= 0 && epoch == p.epoch) {
            for (int i = 0; i < p.batchCount(); i++) {
                if (p.firstSequence(i) == firstSeq && p.lastSequence(i) == lastSeq) {
                    duplicateOffset = p.baseOffset(i);
                    duplicateLastOffset = duplicateOffset + (lastSeq - firstSeq);
                    return DUPLICATE;
                }
            }
        }
        if (firstSeq >= 0 && epoch > p.epoch) {
            if (firstSeq != 0 && p.epoch >= 0) {
                problem = "producer " + producerId + " started epoch " + epoch + " at sequence " + firstSeq + ", not 0";
                return ErrorCodes.OUT_OF_ORDER_SEQUENCE_NUMBER;
            }
        } else if (firstSeq >= 0) {
            int last = p.lastSequence();
            if (p.batchCount() > 0 && firstSeq != last + 1 && !(firstSeq == 0 && last == Integer.MAX_VALUE)) {
                problem = "producer " + producerId + " sent sequence " + firstSeq + " after " + last;
                return ErrorCodes.OUT_OF_ORDER_SEQUENCE_NUMBER;
            }
        }
        if (!transactional && p.txnFirstOffset >= 0) {
            problem = "producer " + producerId + " sent a non-transactional batch while its transaction from offset "
                + p.txnFirstOffset + " is open";
            return ErrorCodes.INVALID_TXN_STATE;
        }
        return ErrorCodes.NONE;
    }

    /**
     * Whether {@code producerId} has a transaction open here at {@code epoch} (Kafka's hasOngoingTransaction): a
     * transactional batch without one starts a transaction, and is verified with the coordinator first.
     */
    boolean hasOngoingTransaction(long producerId, short epoch) {
        Producer p = producer(producerId);
        return p != null && p.txnFirstOffset >= 0 && p.epoch == epoch;
    }

    /** Where the duplicate found by the last {@link #checkData} is. */
    long duplicateOffset() {
        return duplicateOffset;
    }

    /** The offset of the last record of the duplicate found by the last {@link #checkData}. */
    long duplicateLastOffset() {
        return duplicateLastOffset;
    }

    /**
     * Whether a non-transactional batch of {@code producerId} at {@code epoch} from {@code firstSeq}, which
     * {@link #checkData} accepted, may be a batch of an earlier epoch sent again ({@link #matchResent} then decides):
     * the first batch of a new epoch (sequence 0), or a batch following such re-sent ones.
     */
    boolean mayBeResent(long producerId, short epoch, int firstSeq) {
        Producer p = producer(producerId);
        if (p == null || firstSeq < 0) {
            return false;
        }
        if (epoch > p.epoch) {
            return firstSeq == 0 && (p.batchCount() > 0 || p.previous != null);
        }
        return epoch == p.epoch && p.resending && p.previous != null;
    }

    /**
     * Whether {@code batch} (the whole batch of {@code size} bytes, as it would be stored, from {@code producerId} at
     * {@code epoch}, sequences {@code firstSeq..lastSeq}) is one of the producer's kept batches of an earlier epoch
     * sent again with its epoch and sequence rewritten: what kafka-clients does to the batches in flight when it bumps
     * an idempotent producer's epoch after a batch failed past its delivery.timeout.ms (Sender.completeBatch ->
     * TransactionManager.handleFailedBatch -> bumpIdempotentProducerEpoch -> startSequencesAtBeginning: only the
     * header's epoch, base sequence and CRC change). An error answered for an entry of a leader that stepped down does
     * not say it was not stored: the next leader may commit it (bench/chaos seed 2231, issue 22), and the rewritten
     * copy is then a duplicate no sequence check can see. The batch matches a kept one of an earlier epoch when their
     * stored bytes are the same but for the epoch, the base sequence and the max timestamp (a LogAppendTime topic
     * stamps it at each append): the CRC-32C of this batch with those three fields set to the kept batch's equals the
     * kept batch's CRC, the sizes and record counts agree. On a match {@link #resentOffset()} and
     * {@link #resentLastOffset()} say where it is.
     */
    boolean matchResent(long producerId, short epoch, int firstSeq, int lastSeq, byte[] batch, int size) {
        Producer p = producer(producerId);
        if (p == null || size < RecordBatch.HEADER_BYTES) {
            return false;
        }
        if (epoch > p.epoch && matchIn(p, epoch, lastSeq - firstSeq, batch, size)) {
            return true;
        }
        return p.previous != null && matchIn(p.previous, epoch, lastSeq - firstSeq, batch, size);
    }

    private boolean matchIn(Producer kept, short epoch, int span, byte[] batch, int size) {
        if (kept.epoch < 0 || kept.epoch >= epoch) {
            return false;
        }
        ByteBuffer b = ByteBuffer.wrap(batch, 0, size);
        short sentEpoch = b.getShort(RecordBatch.PRODUCER_EPOCH);
        int sentSeq = b.getInt(RecordBatch.BASE_SEQUENCE);
        long sentMaxTs = b.getLong(RecordBatch.MAX_TIMESTAMP);
        try {
            for (int i = 0; i < kept.batchCount(); i++) {
                int at = kept.slot(i);
                if (kept.sizes[at] != size || kept.lastSeqs[at] - kept.firstSeqs[at] != span) {
                    continue;
                }
                b.putShort(RecordBatch.PRODUCER_EPOCH, kept.epoch);
                b.putInt(RecordBatch.BASE_SEQUENCE, kept.firstSeqs[at]);
                b.putLong(RecordBatch.MAX_TIMESTAMP, kept.maxTimestamps[at]);
                crc32c.reset();
                crc32c.update(batch, RecordBatch.ATTRIBUTES, size - RecordBatch.ATTRIBUTES);
                if ((int) crc32c.getValue() == kept.crcs[at]) {
                    resentOffset = kept.baseOffsets[at];
                    resentLastOffset = resentOffset + span;
                    return true;
                }
            }
            return false;
        } finally {
            b.putShort(RecordBatch.PRODUCER_EPOCH, sentEpoch);
            b.putInt(RecordBatch.BASE_SEQUENCE, sentSeq);
            b.putLong(RecordBatch.MAX_TIMESTAMP, sentMaxTs);
        }
    }

    /** The base offset of the batch the last {@link #matchResent} found. */
    long resentOffset() {
        return resentOffset;
    }

    /** The last offset of the batch the last {@link #matchResent} found. */
    long resentLastOffset() {
        return resentLastOffset;
    }

    /**
     * Takes a batch {@link #matchResent} found, not appended: the producer moves to {@code epoch} (when newer) and
     * keeps {@code firstSeq..lastSeq} at the found batch's offsets, so that a retry of it is a duplicate and its next batch
     * follows it. The log holds the earlier epoch's batch only: a leader that rebuilds this state from the log sees the
     * earlier epoch, and refuses the producer's next batch with OUT_OF_ORDER_SEQUENCE_NUMBER (a new epoch starts at 0),
     * after which kafka-clients bumps the epoch again and sends from 0: nothing is stored twice.
     */
    void applyResent(long producerId, short epoch, int firstSeq, int lastSeq, long baseOffset, long timestampMs) {
        Producer p = producerOrNew(producerId);
        if (epoch > p.epoch) {
            p.bumpEpoch(epoch);
        }
        p.addBatch(firstSeq, lastSeq, baseOffset);
        p.resending = true;
        p.lastSeenMs = Math.max(p.lastSeenMs, timestampMs);
    }

    /** Why the last check refused. */
    String problem() {
        return problem;
    }

    /** Checks a transaction marker: {@link ErrorCodes#NONE} or a Kafka error ({@link #problem()} names it). */
    short checkMarker(long producerId, short epoch, int coordinatorEpoch) {
        Producer p = producer(producerId);
        if (p == null) {
            return ErrorCodes.NONE;
        }
        if (epoch < p.epoch) {
            problem = "marker of producer " + producerId + " at epoch " + epoch + " is older than its epoch " + p.epoch;
            return ErrorCodes.INVALID_PRODUCER_EPOCH;
        }
        if (coordinatorEpoch < p.coordinatorEpoch) {
            problem = "marker of producer " + producerId + " from coordinator epoch " + coordinatorEpoch
                + ", older than " + p.coordinatorEpoch;
            return ErrorCodes.TRANSACTION_COORDINATOR_FENCED;
        }
        return ErrorCodes.NONE;
    }

    // ------------------------------------------------------------------ applying

    /** Applies a data batch at {@code [baseOffset, lastOffset]}. */
    void applyData(long producerId, short epoch, int firstSeq, int lastSeq, long baseOffset, long lastOffset,
                   boolean transactional, long timestampMs) {
        applyData(producerId, epoch, firstSeq, lastSeq, baseOffset, lastOffset, transactional, timestampMs, 0, 0, -1);
    }

    /**
     * {@link #applyData(long, short, int, int, long, long, boolean, long)} for a batch whose stored bytes are known:
     * their CRC-32C, size and max timestamp (what {@link #matchResent} compares).
     */
    void applyData(long producerId, short epoch, int firstSeq, int lastSeq, long baseOffset, long lastOffset,
                   boolean transactional, long timestampMs, int crc, int sizeBytes, long batchMaxTimestamp) {
        if (producerId >= 0) {
            Producer p = producerOrNew(producerId);
            if (epoch > p.epoch) {
                p.bumpEpoch(epoch);
            }
            p.resending = false;
            if (firstSeq >= 0) {
                p.addBatch(firstSeq, lastSeq, baseOffset, crc, sizeBytes, batchMaxTimestamp);
            }
            p.lastSeenMs = Math.max(p.lastSeenMs, timestampMs);
            if (transactional && p.txnFirstOffset < 0) {
                p.txnFirstOffset = baseOffset;
                open.put(baseOffset, producerId);
            }
        }
        appliedOffset = Math.max(appliedOffset, lastOffset + 1);
    }

    /**
     * Applies a COMMIT ({@code commit}) or ABORT marker at {@code offset}; returns the aborted transaction it ends
     * (for the index), or null.
     */
    AbortedTxn applyMarker(long producerId, short epoch, boolean commit, int coordinatorEpoch, long offset,
                           long timestampMs) {
        Producer p = producerOrNew(producerId);
        if (epoch > p.epoch) {
            p.bumpEpoch(epoch);
        }
        p.coordinatorEpoch = Math.max(p.coordinatorEpoch, coordinatorEpoch);
        p.lastSeenMs = Math.max(p.lastSeenMs, timestampMs);
        appliedOffset = Math.max(appliedOffset, offset + 1);
        if (p.txnFirstOffset < 0) {
            return null; // no open transaction here: nothing to end (Kafka accepts such a marker)
        }
        long first = p.txnFirstOffset;
        p.txnFirstOffset = -1;
        open.remove(first);
        if (commit) {
            return null;
        }
        // Kafka's lastStableOffset(completedTxn): the first transaction still open, else just past the marker.
        long lso = open.isEmpty() ? offset + 1 : Math.min(open.firstKey(), offset + 1);
        return new AbortedTxn(producerId, first, offset, lso);
    }

    /**
     * Applies the batch at {@code pos} of {@code v} (a whole batch, checked by the caller), data or control; batches
     * wholly below {@link #appliedOffset()} are skipped. Returns the aborted transaction a marker ended, or null. A
     * batch without timestamps (-1, as a raw client may send) counts as seen at {@code nowMs} for expiry.
     */
    AbortedTxn apply(IoBufView v, long pos, long nowMs) {
        long base = v.getLong(pos + RecordBatch.BASE_OFFSET);
        long last = base + v.getInt(pos + RecordBatch.LAST_OFFSET_DELTA);
        if (last < appliedOffset) {
            return null;
        }
        int attributes = v.getShort(pos + RecordBatch.ATTRIBUTES);
        long pid = v.getLong(pos + RecordBatch.PRODUCER_ID);
        short epoch = v.getShort(pos + RecordBatch.PRODUCER_EPOCH);
        long ts = v.getLong(pos + RecordBatch.MAX_TIMESTAMP);
        boolean transactional = (attributes & RecordBatch.TRANSACTIONAL_BIT) != 0;
        if ((attributes & RecordBatch.CONTROL_BIT) != 0) {
            int type = pid >= 0 && transactional ? ControlBatch.type(v, pos) : ControlBatch.UNKNOWN;
            if (type == ControlBatch.ABORT || type == ControlBatch.COMMIT) {
                return applyMarker(pid, epoch, type == ControlBatch.COMMIT, ControlBatch.coordinatorEpoch(v, pos),
                    last, ts < 0 ? nowMs : ts);
            }
            appliedOffset = Math.max(appliedOffset, last + 1); // another control batch (or an emptied marker)
            return null;
        }
        maxTimestamp = Math.max(maxTimestamp, ts);
        int first = v.getInt(pos + RecordBatch.BASE_SEQUENCE);
        int delta = (int) (last - base);
        // A batch without records is what compaction left of one (producers cannot send it): it keeps the producer's
        // sequence and epoch but opens no transaction, whose marker compaction may have removed with its records.
        boolean opens = transactional && pid >= 0 && v.getInt(pos + RecordBatch.RECORDS_COUNT) > 0;
        int size = (int) (RecordBatch.LOG_OVERHEAD + (v.getInt(pos + RecordBatch.BATCH_LENGTH) & 0xFFFFFFFFL));
        applyData(pid, epoch, first, first < 0 ? -1 : first + delta, base, last, opens, ts < 0 ? nowMs : ts,
            v.getInt(pos + RecordBatch.CRC), size, ts);
        return null;
    }

    /** Notes a larger max timestamp (the leader stamps it before the batch reaches the log). */
    void noteTimestamp(long ts) {
        maxTimestamp = Math.max(maxTimestamp, ts);
    }

    /** Drops producers silent for {@code expiryMs} (producer.id.expiration.ms), never one with an open transaction. */
    int expire(long nowMs, long expiryMs) {
        int before = producers.size();
        forgetCached();
        producers.values().removeIf(p -> p.txnFirstOffset < 0 && nowMs - p.lastSeenMs > expiryMs);
        return before - producers.size();
    }

    // ------------------------------------------------------------------ snapshots

    /**
     * The snapshot of this view at {@link #appliedOffset()}:
     * <pre>
     *  magic i32 "ISPS" | version i32 = 4 | offset i64 | termBeforeOffset i64 | maxTimestamp i64 | producers i32
     *  per producer: id i64 | epoch i16 | lastSeenMs i64 | coordinatorEpoch i32 | txnFirstOffset i64 | batches i32
     *                per batch: firstSeq i32 | lastSeq i32 | baseOffset i64
     *  extra i32 (bytes of the owner's section) | owner's section (the aborted-transaction index manifest)
     *  crc i64 (CRC-32C of everything before it)
     * </pre>
     */
    byte[] snapshot(long termBeforeOffset, byte[] extra) {
        int size = 4 + 4 + 8 + 8 + 8 + 4 + 4 + extra.length + 8;
        for (Producer p : producers.values()) {
            size += 8 + 2 + 8 + 4 + 8 + 4 + p.batchCount() * 16;
        }
        ByteBuffer b = ByteBuffer.allocate(size);
        b.putInt(SNAPSHOT_MAGIC).putInt(SNAPSHOT_VERSION).putLong(appliedOffset).putLong(termBeforeOffset)
            .putLong(maxTimestamp).putInt(producers.size());
        for (Map.Entry<Long, Producer> e : producers.entrySet()) {
            Producer p = e.getValue();
            b.putLong(e.getKey()).putShort(p.epoch).putLong(p.lastSeenMs).putInt(p.coordinatorEpoch)
                .putLong(p.txnFirstOffset).putInt(p.batchCount());
            for (int i = 0; i < p.batchCount(); i++) {
                b.putInt(p.firstSequence(i)).putInt(p.lastSequence(i)).putLong(p.baseOffset(i));
            }
        }
        b.putInt(extra.length).put(extra);
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(b.array(), 0, b.position());
        b.putLong(crc.getValue());
        return b.array();
    }

    /** What {@link #load} read besides the producers. */
    record Loaded(long offset, long termBeforeOffset, byte[] extra) {
    }

    /**
     * Replaces this view's state with a snapshot's; throws {@link IllegalArgumentException} naming the problem when the
     * bytes are damaged or of another version (a snapshot is a shortcut: the caller then replays the log).
     */
    Loaded load(byte[] all) {
        if (all.length < 48) {
            throw new IllegalArgumentException("producer snapshot of " + all.length + " bytes is too short");
        }
        ByteBuffer b = ByteBuffer.wrap(all);
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(all, 0, all.length - 8);
        if (b.getLong(all.length - 8) != crc.getValue()) {
            throw new IllegalArgumentException("producer snapshot checksum mismatch");
        }
        int magic = b.getInt();
        int version = b.getInt();
        if (magic != SNAPSHOT_MAGIC || version != SNAPSHOT_VERSION) {
            throw new IllegalArgumentException("producer snapshot version " + version + " (magic 0x"
                + Integer.toHexString(magic) + ") is not version " + SNAPSHOT_VERSION);
        }
        long offset = b.getLong();
        long term = b.getLong();
        long maxTs = b.getLong();
        int n = b.getInt();
        if (n < 0 || n > (all.length - 48) / 34) {
            throw new IllegalArgumentException("producer snapshot claims " + n + " producers");
        }
        Map<Long, Producer> read = new HashMap<>(n * 2);
        TreeMap<Long, Long> txns = new TreeMap<>();
        for (int i = 0; i < n; i++) {
            long pid = b.getLong();
            Producer p = new Producer();
            p.epoch = b.getShort();
            p.lastSeenMs = b.getLong();
            p.coordinatorEpoch = b.getInt();
            p.txnFirstOffset = b.getLong();
            int k = b.getInt();
            if (k < 0 || k > MAX_BATCHES) {
                throw new IllegalArgumentException("producer snapshot claims " + k + " batches of producer " + pid);
            }
            for (int j = 0; j < k; j++) {
                p.addBatch(b.getInt(), b.getInt(), b.getLong());
            }
            read.put(pid, p);
            if (p.txnFirstOffset >= 0) {
                txns.put(p.txnFirstOffset, pid);
            }
        }
        int extraLength = b.getInt();
        if (extraLength < 0 || extraLength > b.remaining() - 8) {
            throw new IllegalArgumentException("producer snapshot's index section of " + extraLength + " bytes");
        }
        byte[] extra = new byte[extraLength];
        b.get(extra);
        forgetCached();
        producers.clear();
        producers.putAll(read);
        open.clear();
        open.putAll(txns);
        appliedOffset = offset;
        maxTimestamp = maxTs;
        return new Loaded(offset, term, extra);
    }

    /**
     * Applies every batch of {@code v} (whole batches back to back) at {@code nowMs}; {@code aborted} gets the aborted
     * transactions.
     */
    long applyAll(IoBufView v, long nowMs, Consumer<AbortedTxn> aborted) {
        long pos = 0;
        long size = v.size();
        while (pos + RecordBatch.HEADER_BYTES <= size) {
            long batchSize = RecordBatch.LOG_OVERHEAD + (v.getInt(pos + RecordBatch.BATCH_LENGTH) & 0xFFFFFFFFL);
            if (batchSize < RecordBatch.HEADER_BYTES || pos + batchSize > size) {
                break;
            }
            AbortedTxn a = apply(v, pos, nowMs);
            if (a != null) {
                aborted.accept(a);
            }
            pos += batchSize;
        }
        return pos;
    }
}
