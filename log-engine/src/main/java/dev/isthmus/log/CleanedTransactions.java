package dev.isthmus.log;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The transaction state one compaction pass keeps while it walks a log in offset order, Kafka's
 * {@code CleanedTransactionMetadata}: which data batches belong to aborted transactions (their records go, and their
 * keys never enter the key map, so an aborted value cannot shadow a committed one), and when a transaction marker
 * is no longer needed.
 *
 * <h2>Markers</h2>
 * A marker stays while a batch of its transaction with records was seen in this pass (a consumer reading those
 * records needs the marker to place them, and read_committed the index entry of an aborted one). A marker whose
 * transaction has no record left is <em>discardable</em>: compaction then gives it a delete horizon
 * (now + {@code delete.retention.ms}, Kafka's delete-horizon batch attribute, as for tombstones) and removes its
 * record once the horizon has passed, so a consumer that was reading the transaction when its data went still sees
 * the marker. An ABORT marker that stays keeps its {@code .txnindex} entry ({@link #retained()}); a discardable one
 * loses it (no record of the transaction is left to hide). Batches that compaction kept empty (a replicated log
 * keeps every batch boundary) count as gone: they hold no record.
 *
 * <p>Fed the aborted transactions of the walked range up front (from the {@link TransactionIndex}); entries are
 * taken in first-offset order as the walk reaches them. Owner: the compaction's shard thread; one instance per walk.
 */
final class CleanedTransactions {
    /** What {@link #onMarker} decided. */
    static final int KEEP = 0;
    static final int DISCARDABLE = 1;

    /** Aborted transactions not reached yet: {producerId, firstOffset, lastOffset, lastStableOffset}, by first offset. */
    private final ArrayDeque<long[]> pending;
    /** Aborted transactions reached whose marker was not seen yet, by producer id. */
    private final Map<Long, Aborted> ongoingAborted = new HashMap<>();
    /** Producers with a batch holding records in a transaction not known aborted, since their last marker. */
    private final Set<Long> ongoingCommitted = new HashSet<>();
    /** Index entries of the ABORT markers kept since the last {@link #takeRetained()}. */
    private List<long[]> retained = new ArrayList<>();

    private static final class Aborted {
        final long[] entry;
        boolean recordsSeen;

        Aborted(long[] entry) {
            this.entry = entry;
        }
    }

    /** {@code aborted}: every aborted transaction that may overlap the walked range, in any order. */
    CleanedTransactions(List<long[]> aborted) {
        List<long[]> sorted = new ArrayList<>(aborted);
        sorted.sort((a, b) -> Long.compare(a[1], b[1]));
        this.pending = new ArrayDeque<>(sorted);
    }

    private void reach(long offset) {
        while (!pending.isEmpty() && pending.peekFirst()[1] <= offset) {
            long[] e = pending.pollFirst();
            ongoingAborted.putIfAbsent(e[0], new Aborted(e));
        }
    }

    /**
     * A data batch {@code [.., lastOffset]} of producer {@code producerId} ({@code -1}: none); true when it belongs
     * to an aborted transaction, so its records can all go.
     */
    boolean onData(long producerId, boolean transactional, long lastOffset, boolean hasRecords) {
        reach(lastOffset);
        if (!transactional || producerId < 0) {
            return false;
        }
        Aborted a = ongoingAborted.get(producerId);
        if (a != null) {
            a.recordsSeen |= hasRecords;
            return true;
        }
        if (hasRecords) {
            ongoingCommitted.add(producerId);
        }
        return false;
    }

    /**
     * A transaction marker ({@link ControlBatch#ABORT} or {@link ControlBatch#COMMIT}, or {@link ControlBatch#UNKNOWN}
     * for one compaction already emptied) of producer {@code producerId} at {@code offset}: {@link #KEEP} or
     * {@link #DISCARDABLE}.
     */
    int onMarker(long producerId, int type, long offset) {
        reach(offset);
        // Records of the transaction taken for committed: for an ABORT, ones the index does not list (kept visible
        // by it, so the marker that ends them stays too).
        boolean seen = ongoingCommitted.remove(producerId);
        if (type == ControlBatch.ABORT) {
            Aborted a = ongoingAborted.remove(producerId);
            if (a != null && a.recordsSeen) {
                retained.add(a.entry);
                return KEEP;
            }
            return seen ? KEEP : DISCARDABLE;
        }
        if (type == ControlBatch.COMMIT) {
            return seen ? KEEP : DISCARDABLE;
        }
        return DISCARDABLE; // emptied before: nothing of it is left to keep
    }

    /** The index entries of the ABORT markers kept since the last call, in marker order; starts a new list. */
    List<long[]> takeRetained() {
        List<long[]> out = retained;
        retained = new ArrayList<>();
        return out;
    }
}
