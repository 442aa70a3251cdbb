package dev.isthmus.raft.sim;

import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.Entry;
import dev.isthmus.raft.EntryKind;
import dev.isthmus.raft.HardState;
import dev.isthmus.raft.RaftLog;
import dev.isthmus.raft.SnapshotMeta;
import dev.isthmus.raft.TermIndex;
import dev.isthmus.uring.Verify;

import java.util.ArrayList;
import java.util.List;
import java.util.random.RandomGenerator;

/**
 * A {@link RaftLog} in memory for the deterministic simulator and for tests of code above Raft: it keeps the
 * visible log and, separately, the image a crash would leave, and moves mutations from one to the other only
 * through flushes whose latency the injected {@link Disk} decides.
 *
 * <h2>Model</h2>
 * Every mutation ({@code append}, {@code truncateSuffix}, {@code truncatePrefix}, {@code persistHardState},
 * {@code saveSnapshot}, {@code installSnapshot}) is recorded in a journal and applied at once to the visible
 * log (snapshots only when durable). One flush at a time covers the journal up to where it was when the
 * flush started (flush debouncing: appends made while a flush is in flight wait for the next one); its
 * completion applies those operations to the durable image in order and reports them through the
 * callbacks. {@link #crash(RandomGenerator)} returns the image plus a random prefix of the not-yet-durable
 * journal (a disk may have written some of it), which is exactly the guarantee of {@link RaftLog}: any prefix
 * of the mutations that includes every acknowledged one.
 *
 * <p>Owned by one thread (the simulator's); callbacks run from {@link Disk} completions, never inside a call.
 */
public final class MemoryRaftLog implements RaftLog {
    /** The simulated disk: decides when flushes (and cache-missing reads) complete. */
    public interface Disk {
        /** Runs {@code completion} once the flush is durable (later, never inside this call). */
        void flush(Runnable completion);

        /**
         * Whether a read misses the cache; if so, {@code completion} must run later (the log then answers
         * {@link RaftLog#READ_PENDING}).
         */
        default boolean readMiss(Runnable completion) {
            return false;
        }
    }

    /** What survives a crash: the durable log, hard state and snapshot. Hand it to a new {@link MemoryRaftLog}. */
    public static final class Image {
        final LogState log = new LogState();
        HardState hardState = HardState.INITIAL;
        SnapshotMeta snapshot = SnapshotMeta.NONE;
        byte[] snapshotData = new byte[0];
        long recordStart;

        /** An empty image: a new member. */
        public Image() {
        }

        Image copy() {
            Image i = new Image();
            i.log.copyFrom(log);
            i.hardState = hardState;
            i.snapshot = snapshot;
            i.snapshotData = snapshotData;
            i.recordStart = recordStart;
            return i;
        }

        void apply(Op op) {
            switch (op.kind) {
                case APPEND -> log.append(op.entries);
                case TRUNCATE_SUFFIX -> log.truncateSuffix(op.offset);
                case TRUNCATE_PREFIX -> log.truncatePrefix(op.offset);
                case RECORD_START -> recordStart = Math.max(recordStart, op.offset);
                case HARD_STATE -> hardState = op.hardState;
                case SAVE_SNAPSHOT -> {
                    snapshot = op.meta;
                    snapshotData = op.data;
                }
                case INSTALL_SNAPSHOT -> {
                    snapshot = op.meta;
                    snapshotData = op.data;
                    log.install(op.meta);
                }
            }
        }

        public HardState hardState() {
            return hardState;
        }

        public long lastOffset() {
            return log.terms.lastOffset();
        }

        /** The durable first readable offset (see {@link RaftLog#recordStartOffset()}). */
        long recordStartOffset() {
            return Math.max(recordStart, log.terms.startOffset());
        }
    }

    private enum Kind { APPEND, TRUNCATE_SUFFIX, TRUNCATE_PREFIX, RECORD_START, HARD_STATE, SAVE_SNAPSHOT,
        INSTALL_SNAPSHOT }

    private record Op(Kind kind, List<Entry> entries, long offset, HardState hardState, SnapshotMeta meta,
                      byte[] data) {
    }

    /** Entries plus their term index; used for both the visible log and the durable image. */
    static final class LogState {
        final ArrayList<Entry> entries = new ArrayList<>();
        final TermIndex terms = new TermIndex();

        void copyFrom(LogState o) {
            entries.clear();
            entries.addAll(o.entries);
            terms.reset(o.terms.floorOffset(), o.terms.floorTerm());
            for (Entry e : entries) {
                terms.append(e.baseOffset(), e.lastOffset(), e.term());
            }
        }

        long lastOffset() {
            return terms.lastOffset();
        }

        void append(List<Entry> es) {
            for (Entry e : es) {
                terms.append(e.baseOffset(), e.lastOffset(), e.term());
                entries.add(e);
            }
        }

        /** Index of the entry containing {@code offset}, or -1. */
        int indexOf(long offset) {
            int lo = 0;
            int hi = entries.size() - 1;
            while (lo <= hi) {
                int mid = (lo + hi) >>> 1;
                Entry e = entries.get(mid);
                if (e.lastOffset() < offset) {
                    lo = mid + 1;
                } else if (e.baseOffset() > offset) {
                    hi = mid - 1;
                } else {
                    return mid;
                }
            }
            return -1;
        }

        void truncateSuffix(long from) {
            if (from > terms.lastOffset()) {
                return;
            }
            int i = indexOf(from);
            Verify.that(i >= 0 && entries.get(i).baseOffset() == from, "suffix truncation at %d is not an entry start",
                from);
            entries.subList(i, entries.size()).clear();
            terms.truncateSuffix(from);
        }

        void truncatePrefix(long newStart) {
            int keep = 0;
            while (keep < entries.size() && entries.get(keep).lastOffset() < newStart) {
                keep++;
            }
            if (keep == 0) {
                return;
            }
            long floor = entries.get(keep - 1).lastOffset();
            entries.subList(0, keep).clear();
            terms.truncatePrefix(floor);
        }

        void install(SnapshotMeta meta) {
            long last = meta.lastOffset();
            if (last <= terms.lastOffset() && last > terms.floorOffset() && terms.termAt(last) == meta.lastTerm()) {
                int i = indexOf(last);
                Verify.that(i >= 0 && entries.get(i).lastOffset() == last, "snapshot end %d is not an entry end", last);
                entries.subList(0, i + 1).clear();
                terms.truncatePrefix(last);
            } else {
                entries.clear();
                terms.reset(last, meta.lastTerm());
            }
        }
    }

    private final Disk disk;
    private final Image image;
    private final LogState visible = new LogState();
    private final List<Op> journal = new ArrayList<>();
    private Callbacks callbacks;
    private long durableOffset;
    private boolean flushInFlight;
    private int flushUpTo;
    private long truncatedSinceFlushStart = Long.MAX_VALUE;
    private boolean installPending;
    private boolean dead;
    private boolean failed;
    private HardState latestHardState;

    /** Opens a log over {@code image} (a new {@link Image} for a fresh member, or what a crash returned). */
    public MemoryRaftLog(Image image, Disk disk) {
        this.disk = disk;
        this.image = image;
        this.visible.copyFrom(image.log);
        this.durableOffset = visible.lastOffset();
        this.latestHardState = image.hardState;
    }

    @Override
    public void bind(Callbacks callbacks) {
        Verify.that(this.callbacks == null, "MemoryRaftLog bound twice");
        this.callbacks = callbacks;
    }

    /**
     * Simulates power loss: this log stops (pending completions are ignored) and the returned image holds the
     * durable state plus a random prefix of the operations not yet acknowledged.
     */
    public Image crash(RandomGenerator random) {
        Verify.that(!dead, "log crashed twice");
        dead = true;
        Image survivor = image.copy();
        int pending = journal.size();
        int keep = pending == 0 ? 0 : random.nextInt(pending + 1);
        for (int i = 0; i < keep; i++) {
            survivor.apply(journal.get(i));
        }
        return survivor;
    }

    /** A clean shutdown: everything written is kept (as if flushed). */
    public Image close() {
        dead = true;
        Image survivor = image.copy();
        for (Op op : journal) {
            survivor.apply(op);
        }
        return survivor;
    }

    /** Makes every later write fail as a broken disk would: reports {@link Callbacks#onStorageFailure}. */
    public void fail(String what) {
        if (!failed && !dead) {
            failed = true;
            callbacks.onStorageFailure(what);
        }
    }

    /** Operations written but not yet durable. */
    public int pendingOperations() {
        return journal.size();
    }

    // ------------------------------------------------------------------------------- queries

    @Override
    public HardState hardState() {
        return image.hardState;
    }

    @Override
    public SnapshotMeta snapshotMeta() {
        return image.snapshot;
    }

    @Override
    public byte[] snapshotData() {
        return image.snapshotData;
    }

    @Override
    public long startOffset() {
        return visible.terms.startOffset();
    }

    @Override
    public long lastOffset() {
        return visible.lastOffset();
    }

    @Override
    public long durableOffset() {
        return Math.max(durableOffset, startOffset() - 1);
    }

    @Override
    public long termAt(long offset) {
        return visible.terms.termAt(offset);
    }

    @Override
    public long lastOffsetAtOrBeforeTerm(long term) {
        return visible.terms.lastOffsetAtOrBeforeTerm(term);
    }

    @Override
    public List<Entry> configurationEntries() {
        List<Entry> out = new ArrayList<>();
        long after = image.snapshot.lastOffset();
        for (Entry e : visible.entries) {
            if (e.kind() == EntryKind.CONFIGURATION && e.baseOffset() > after) {
                out.add(e);
            }
        }
        return out;
    }

    @Override
    public List<Entry> prefixTruncationEntries() {
        List<Entry> out = new ArrayList<>();
        for (Entry e : visible.entries) {
            if (e.kind() == EntryKind.PREFIX_TRUNCATION) {
                out.add(e);
            }
        }
        return out;
    }

    @Override
    public long recordStartOffset() {
        return image.recordStartOffset();
    }

    /** The visible configuration entries' configurations (for checks). */
    public Configuration lastConfiguration() {
        List<Entry> c = configurationEntries();
        return c.isEmpty() ? image.snapshot.configuration() : c.get(c.size() - 1).configuration();
    }

    @Override
    public int read(long fromOffset, int maxBytes, List<Entry> out) {
        if (fromOffset < startOffset()) {
            return READ_BELOW_START;
        }
        if (fromOffset > lastOffset()) {
            return READ_OK;
        }
        if (disk.readMiss(this::readable)) {
            return READ_PENDING;
        }
        int i = visible.indexOf(fromOffset);
        Verify.that(i >= 0, "offset %d inside the log has no entry", fromOffset);
        long bytes = 0;
        for (; i < visible.entries.size(); i++) {
            Entry e = visible.entries.get(i);
            if (bytes > 0 && bytes + e.sizeBytes() > maxBytes) {
                break;
            }
            out.add(e);
            bytes += e.sizeBytes();
        }
        return READ_OK;
    }

    /** The visible entries (for the simulator's checks; do not modify). */
    public List<Entry> entries() {
        return visible.entries;
    }

    private void readable() {
        if (!dead && !failed) {
            callbacks.onReadable();
        }
    }

    // ------------------------------------------------------------------------------- mutations

    @Override
    public void append(List<Entry> entries) {
        checkWritable();
        Verify.that(!installPending, "append while a snapshot install is pending");
        List<Entry> copy = List.copyOf(entries);
        if (copy.isEmpty()) {
            return;
        }
        Verify.that(copy.get(0).baseOffset() == lastOffset() + 1, "append at %d does not follow %d",
            copy.get(0).baseOffset(), lastOffset());
        visible.append(copy);
        record(new Op(Kind.APPEND, copy, 0, null, null, null));
    }

    @Override
    public void truncateSuffix(long fromOffset) {
        checkWritable();
        Verify.that(!installPending, "truncation while a snapshot install is pending");
        Verify.that(fromOffset > startOffset() - 1 && fromOffset <= lastOffset(),
            "suffix truncation at %d outside (%d, %d]", fromOffset, startOffset() - 1, lastOffset());
        visible.truncateSuffix(fromOffset);
        durableOffset = Math.min(durableOffset, fromOffset - 1);
        truncatedSinceFlushStart = Math.min(truncatedSinceFlushStart, fromOffset - 1);
        record(new Op(Kind.TRUNCATE_SUFFIX, null, fromOffset, null, null, null));
    }

    @Override
    public void truncatePrefix(long newStartOffset) {
        checkWritable();
        Verify.that(newStartOffset <= image.snapshot.lastOffset() + 1, "prefix truncation to %d past the snapshot %d",
            newStartOffset, image.snapshot.lastOffset());
        if (newStartOffset <= startOffset()) {
            return;
        }
        visible.truncatePrefix(newStartOffset);
        record(new Op(Kind.TRUNCATE_PREFIX, null, newStartOffset, null, null, null));
    }

    @Override
    public void advanceRecordStart(long offset) {
        checkWritable();
        Verify.that(offset == startOffset() || (offset > startOffset() && visible.indexOf(offset) == 0),
            "record start %d is not inside the first entry of the log [%d, %d]", offset, startOffset(), lastOffset());
        record(new Op(Kind.RECORD_START, null, offset, null, null, null));
    }

    @Override
    public void persistHardState(HardState state) {
        checkWritable();
        latestHardState = state;
        record(new Op(Kind.HARD_STATE, null, 0, state, null, null));
    }

    @Override
    public void saveSnapshot(SnapshotMeta meta, byte[] data) {
        checkWritable();
        Verify.that(meta.lastOffset() <= lastOffset() && termAt(meta.lastOffset()) == meta.lastTerm(),
            "snapshot at %d (term %d) is not an entry of this log", meta.lastOffset(), meta.lastTerm());
        record(new Op(Kind.SAVE_SNAPSHOT, null, 0, null, meta, data));
    }

    @Override
    public void installSnapshot(SnapshotMeta meta, byte[] data) {
        checkWritable();
        Verify.that(!installPending, "two snapshot installs at once");
        installPending = true;
        record(new Op(Kind.INSTALL_SNAPSHOT, null, 0, null, meta, data));
    }

    private void checkWritable() {
        Verify.that(!dead, "write to a crashed MemoryRaftLog");
        if (failed) {
            throw new IllegalStateException("write to a failed log");
        }
    }

    private void record(Op op) {
        journal.add(op);
        if (!flushInFlight) {
            startFlush();
        }
    }

    private void startFlush() {
        flushInFlight = true;
        flushUpTo = journal.size();
        truncatedSinceFlushStart = Long.MAX_VALUE;
        disk.flush(this::flushed);
    }

    private void flushed() {
        if (dead || failed) {
            return;
        }
        flushInFlight = false;
        int n = flushUpTo;
        HardState hs = null;
        List<Op> snapshots = new ArrayList<>(0);
        for (int i = 0; i < n; i++) {
            Op op = journal.get(i);
            image.apply(op);
            if (op.kind == Kind.HARD_STATE) {
                hs = op.hardState;
            } else if (op.kind == Kind.SAVE_SNAPSHOT || op.kind == Kind.INSTALL_SNAPSHOT) {
                snapshots.add(op);
            }
        }
        journal.subList(0, n).clear();
        long before = durableOffset;
        for (Op op : snapshots) {
            if (op.kind == Kind.INSTALL_SNAPSHOT) {
                visible.install(op.meta);
                installPending = false;
                durableOffset = Math.max(Math.min(durableOffset, lastOffset()), op.meta.lastOffset());
            }
        }
        long newDurable = Math.min(image.lastOffset(), truncatedSinceFlushStart);
        if (newDurable > durableOffset) {
            durableOffset = newDurable;
        }
        Verify.that(durableOffset <= lastOffset(), "durable offset %d past the last offset %d", durableOffset,
            lastOffset());
        if (!journal.isEmpty()) {
            startFlush();
        }
        if (durableOffset > before) {
            callbacks.onAppendDurable(durableOffset);
        }
        if (hs != null && !dead) {
            callbacks.onHardStateDurable(hs);
        }
        for (Op op : snapshots) {
            if (dead) {
                break;
            }
            if (op.kind == Kind.SAVE_SNAPSHOT) {
                callbacks.onSnapshotSaved(op.meta);
            } else {
                callbacks.onSnapshotInstalled(op.meta);
            }
        }
    }

    @Override
    public String toString() {
        return "MemoryRaftLog[" + startOffset() + ".." + lastOffset() + ", durable " + durableOffset + ", "
            + journal.size() + " pending ops, " + latestHardState + "]";
    }
}
