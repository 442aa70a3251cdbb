package dev.isthmus.raft;

import java.util.List;

/**
 * The storage of one Raft group: its log of {@link Entry}s, its {@link HardState} and its latest snapshot.
 * Production implements it over the log-engine (entries as Kafka v2 batches, the term stamped into
 * partitionLeaderEpoch, configuration and leader-change entries as control batches); the simulator implements
 * it in memory with injected disk latency and crashes.
 *
 * <h2>Visibility now, durability later</h2>
 * Every mutation ({@link #append}, {@link #truncateSuffix}, {@link #truncatePrefix}) takes effect for the
 * queries of this interface at once, and returns at once. Durability follows asynchronously: the storage
 * flushes on its own schedule (many appends, one fdatasync: flush debouncing) and reports the new durable end
 * through {@link Callbacks#onAppendDurable(long)}. The durable offset always refers to the current visible
 * log: after a suffix truncation it drops to at most the truncation point at once, and entries appended after
 * a truncation may become durable only when the truncation itself is (the log-engine gives that by cutting
 * the file before writing after the cut; an adapter queues appends behind a truncation in flight).
 * After a crash the log is any prefix of the sequence of mutations that includes every acknowledged one.
 *
 * <p>{@link #persistHardState}, {@link #saveSnapshot} and {@link #installSnapshot} are also asynchronous;
 * {@link #hardState()} and {@link #snapshotMeta()} report the durable values, and a saved or installed
 * snapshot becomes visible only with its completion callback.
 *
 * <h2>Threads and callbacks</h2>
 * Owned by the group's shard. Callbacks run on that shard, later, never inside a call of this interface,
 * and may arrive coalesced (one {@code onAppendDurable} for many appends, one {@code onHardStateDurable}
 * for several writes, naming the latest).
 *
 * <h2>Offsets</h2>
 * The log holds entries covering {@code [startOffset(), lastOffset()]} without gaps; an empty log has
 * {@code lastOffset() == startOffset() - 1}. The term of {@code startOffset() - 1} is always known (it is the
 * snapshot's last term or that of a compacted entry), so {@link #termAt} answers for every offset in
 * {@code [startOffset() - 1, lastOffset()]}. A {@link TermIndex} provides all term queries.
 */
public interface RaftLog {
    /** {@link #read} returned entries (possibly none when {@code fromOffset > lastOffset()}). */
    int READ_OK = 0;
    /** {@link #read} must fetch from disk first; {@link Callbacks#onReadable()} follows. */
    int READ_PENDING = 1;
    /** {@link #read} was asked for an offset below {@link #startOffset()}: a snapshot is needed. */
    int READ_BELOW_START = 2;

    /** Completions, implemented by {@link RaftGroup}. */
    interface Callbacks {
        /** Every entry up to {@code durableOffset} (inclusive) of the current log is on stable storage. */
        void onAppendDurable(long durableOffset);

        /** {@code state} (the latest requested) is on stable storage. */
        void onHardStateDurable(HardState state);

        /** A {@link #saveSnapshot} is durable and now the current snapshot. */
        void onSnapshotSaved(SnapshotMeta meta);

        /** An {@link #installSnapshot} is durable and in effect. */
        void onSnapshotInstalled(SnapshotMeta meta);

        /** Data a {@link #read} answered {@link #READ_PENDING} for is now in memory: read again. */
        void onReadable();

        /** The disk failed; the log takes no more writes. The group stops participating. */
        void onStorageFailure(String what);
    }

    /** Installs the callbacks; called once, by the group's constructor, before anything else. */
    void bind(Callbacks callbacks);

    // ------------------------------------------------------------------ recovered and current state

    /** The durable term and vote. */
    HardState hardState();

    /** The current (durable) snapshot, or {@link SnapshotMeta#NONE}. */
    SnapshotMeta snapshotMeta();

    /** The state-machine bytes of {@link #snapshotMeta()} (empty when there is none). Do not modify. */
    byte[] snapshotData();

    /** The first offset held in the log; at most {@code snapshotMeta().lastOffset() + 1}. */
    long startOffset();

    /** The last offset in the log, or {@code startOffset() - 1} when empty. */
    long lastOffset();

    /** The last offset of the current log known to be durable, >= {@code startOffset() - 1}. */
    long durableOffset();

    /**
     * The term of the entry holding {@code offset}; for {@code startOffset() - 1} the term of that compacted
     * or snapshotted offset (0 for -1); -1 when unknown (below that, or past {@link #lastOffset()}).
     */
    long termAt(long offset);

    /** See {@link TermIndex#lastOffsetAtOrBeforeTerm(long)}. */
    long lastOffsetAtOrBeforeTerm(long term);

    /**
     * The {@link EntryKind#CONFIGURATION} entries after {@code snapshotMeta().lastOffset()}, in offset order.
     * Used once, on recovery.
     */
    List<Entry> configurationEntries();

    /**
     * The {@link EntryKind#PREFIX_TRUNCATION} entries still in the log, in offset order. Used on recovery and after
     * an install: one that is committed but was not carried out durably before a crash is carried out again.
     */
    List<Entry> prefixTruncationEntries();

    /**
     * The first offset readers may see (Kafka's log start offset), durably: at least the durable log start, and
     * more after {@link #advanceRecordStart} once that is on disk. It may lie inside the log's first entry (a
     * Kafka log start is not bound to batch boundaries); entries are still read whole.
     */
    long recordStartOffset();

    // ------------------------------------------------------------------ mutations

    /**
     * Appends entries that continue the log exactly ({@code entries.get(0).baseOffset() == lastOffset() + 1},
     * contiguous, terms not decreasing). Visible at once, durable later.
     */
    void append(List<Entry> entries);

    /**
     * Removes every entry at or after {@code fromOffset}, a batch boundary in {@code (startOffset() - 1,
     * lastOffset()]}. Raft only removes uncommitted entries.
     */
    void truncateSuffix(long fromOffset);

    /**
     * Drops the entries wholly below {@code newStartOffset} (a batch boundary, at most
     * {@code snapshotMeta().lastOffset() + 1}): log compaction after a snapshot (thesis §5.1).
     */
    void truncatePrefix(long newStartOffset);

    /**
     * Moves {@link #recordStartOffset()} forward to {@code offset} (never back), after the prefix truncation that
     * made the entry containing it the first one: {@code startOffset() <= offset <= lastOffset() + 1} and no entry
     * starts in {@code (startOffset(), offset]}. Visible in {@code recordStartOffset()} once durable.
     */
    void advanceRecordStart(long offset);

    /** Writes term and vote; {@link Callbacks#onHardStateDurable} reports when they are durable. */
    void persistHardState(HardState state);

    // ------------------------------------------------------------------ reads

    /**
     * Whole entries from the one containing {@code fromOffset}: at least one when any exists, then more while
     * their total {@link Entry#sizeBytes()} stays within {@code maxBytes}, never past {@link #lastOffset()}.
     *
     * @return {@link #READ_OK}, {@link #READ_PENDING} (nothing added; {@link Callbacks#onReadable()} later) or
     *         {@link #READ_BELOW_START}
     */
    int read(long fromOffset, int maxBytes, List<Entry> out);

    // ------------------------------------------------------------------ snapshots

    /**
     * Stores a snapshot of the state machine taken at {@code meta.lastOffset()} (an entry of this log);
     * {@link Callbacks#onSnapshotSaved} follows once it is durable. The log itself is unchanged; the group then
     * compacts with {@link #truncatePrefix}.
     */
    void saveSnapshot(SnapshotMeta meta, byte[] data);

    /**
     * Replaces the log's prefix with a snapshot received from the leader (thesis §5.1, Figure 5.3): if the log
     * holds the entry at {@code meta.lastOffset()} with {@code meta.lastTerm()}, the entries after it stay;
     * otherwise the whole log is discarded. Atomic across crashes; in effect (for every query) only when
     * {@link Callbacks#onSnapshotInstalled} runs, after everything written before it is durable.
     */
    void installSnapshot(SnapshotMeta meta, byte[] data);
}
