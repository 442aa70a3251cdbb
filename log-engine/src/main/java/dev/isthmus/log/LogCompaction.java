package dev.isthmus.log;

import dev.isthmus.ffi.Errno;
import dev.isthmus.uring.DmaFile;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * One key-based compaction of one log ({@code cleanup.policy=compact}), Kafka's cleaner made incremental:
 *
 * <ol>
 * <li><b>Map.</b> The dirty part of the sealed segments (from the cleaner checkpoint on) is read batch by
 *     batch and every record key is put in the {@link KeyOffsetMap} with its offset, so the map ends up with
 *     the last offset of each key. A full map ends the dirty part early, at a batch boundary ({@code mapEnd});
 *     the next compaction goes on from there.</li>
 * <li><b>Clean.</b> Every sealed segment below {@code mapEnd} is rewritten, consecutive segments grouped
 *     while their total fits segment.bytes, into {@code <base>.log.cleaned}: a record is kept when it is the
 *     last of its key (or at/after {@code mapEnd}, or keyless); a tombstone (null value) is kept until its
 *     batch's delete horizon (Kafka's delete-horizon batch attribute, set to now + delete.retention.ms the
 *     first time a batch with a tombstone is cleaned) has passed. Each batch keeps its base and last offset,
 *     partition leader epoch and producer id, epoch and base sequence; a batch that loses every record is
 *     dropped unless it is the last of its producer in what was mapped or the last of its group (so the
 *     group's offsets end where they did), in which case it stays as an empty batch. Control batches and
 *     compressed batches are kept whole (compressed records are not rewritten: the broker has no codecs).</li>
 * <li><b>Swap</b>, crash-safe: the cleaned file is fdatasynced, renamed to
 *     {@code <base>-<nextOffset>.log.swap} (the commit point; the directory is fsynced), the group's old
 *     segments and indexes are deleted, the swap file is renamed to {@code <base>.log}, and the new indexes
 *     are written. {@link LogRecovery} finishes a swap interrupted at any point and deletes stray
 *     {@code .cleaned} files.</li>
 * </ol>
 *
 * <h2>Budget</h2>
 * Runs on the shard loop without ever holding it: {@link #step(long)} handles batches up to a byte budget per
 * loop turn and returns; reads and writes are asynchronous direct I/O. Memory is fixed: the key map, one read
 * window and one scratch batch buffer, plus write-behind chunks taken only while at least half the shard's
 * write-behind pool is free (producers come first). The log stays fully available: appends go to the active
 * segment, which is never compacted; reads of old segments continue on their open files until they finish.
 * A suffix truncation, retention or close that touches the segments being compacted abandons the compaction
 * (the cleaned file is deleted; nothing of the log changed).
 *
 * <h2>Transactions</h2>
 * Given the log's aborted-transaction index ({@link TransactionIndex}, Kafka's {@code .txnindex}), compaction follows
 * Kafka's cleaner ({@link CleanedTransactions}): the records of aborted transactions are removed and never enter
 * the key map (an aborted value must not shadow a committed one); a transaction marker stays while records of its
 * transaction remain, then gets a delete horizon (now + {@code delete.retention.ms}) and loses its record once the
 * horizon has passed; each compacted group's {@code .txnindex} entries become those of the ABORT markers that stay.
 * The owner bounds such a compaction by its last stable offset: nothing is looked at whose transaction is still
 * open. Other control batches (Raft's) are kept whole.
 *
 * <h2>Replicated logs</h2>
 * A log replicated by Raft (compacted on each replica independently) is compacted only below an end offset its
 * owner gives (the commit offset: nothing that may still be truncated is looked at), and with
 * {@code keepBatches} no batch is dropped: one that loses every record stays as an empty batch with its base
 * and last offset and leader epoch, so every replica keeps the same batch boundaries and terms at every offset
 * (Raft's log matching) whatever each one compacted.
 *
 * <p>Owner: the shard thread.
 */
final class LogCompaction implements SegmentAppender.Listener {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.log");
    static final String CLEANED_SUFFIX = ".log.cleaned";
    static final String SWAP_SUFFIX = ".log.swap";
    /** Kafka's delete-horizon batch attribute (bit 6): baseTimestamp holds the horizon. */
    static final int DELETE_HORIZON_BIT = 0x40;
    /** Largest growth of one record re-encoded against a new base timestamp (a varlong of up to 10 bytes). */
    private static final int MAX_RECORD_GROWTH = 9;

    private enum Phase { MAP, CLEAN, SEAL, ABORTING, DONE }

    final Log log;
    private final long nowMs;
    private final Consumer<RuntimeException> done;
    private final KeyOffsetMap map;
    private final SegmentReader in;
    private final MemorySegment scratch;
    private final Records records = new Records();
    private final RecordBatch outBatch = new RecordBatch();
    private final Map<Long, Long> producerLast = new HashMap<>();
    private final List<Segment> cleanable;
    private final long firstDirty;
    private final long cleanableEnd;
    private final int truncationsAtStart;
    private final boolean keepBatches;
    /** The log's aborted-transaction index (consulted, and updated after each swap), or null: no transactions. */
    private final TransactionIndex txns;
    private CleanedTransactions mapTxns;
    private CleanedTransactions cleanTxns;
    /** Aborted records were removed under a marker that stays: the next pass can drop its index entry. */
    private boolean passAgain;
    private long mapEnd;
    private Phase phase = Phase.MAP;
    private int segIndex;
    private final List<List<Segment>> groups = new ArrayList<>();
    private int groupIndex;
    // The output of the current group.
    private Path cleanedPath;
    private DmaFile outFile;
    private SegmentAppender appender;
    private SegmentIndex outIndex;
    private long outSize;
    private long outMaxTimestamp;
    private String outFailure;
    private boolean[] keep = new boolean[64];
    private long horizonMin = Long.MAX_VALUE;
    private RuntimeException abortCause;
    // What it did, for the log line and tests.
    private long bytesIn;
    private long bytesOut;
    private long recordsRemoved;
    private long abortedRecordsRemoved;
    private long markersRemoved;

    private LogCompaction(Log log, long nowMs, KeyOffsetMap map, MemorySegment window, MemorySegment scratch,
                          List<Segment> cleanable, long firstDirty, boolean keepBatches, TransactionIndex txns,
                          Consumer<RuntimeException> done) {
        this.log = log;
        this.nowMs = nowMs;
        this.map = map;
        this.in = SegmentReader.windowed(window, true, null, SegmentReader.Hold.WHILE_READING, null);
        this.scratch = scratch;
        this.cleanable = cleanable;
        this.firstDirty = firstDirty;
        Segment last = cleanable.get(cleanable.size() - 1);
        this.cleanableEnd = last.lastOffset + 1;
        this.truncationsAtStart = log.truncationCount();
        this.keepBatches = keepBatches;
        this.txns = txns;
        this.done = done;
    }

    /**
     * The segments of {@code log} compaction may rewrite now: from the first, while sealed (never the active
     * segment), with a newest record at least {@code minLagMs} old (Kafka's min.compaction.lag.ms) and wholly
     * below {@code endOffset}.
     */
    static List<Segment> cleanableSegments(Log log, long nowMs, long minLagMs, long endOffset) {
        List<Segment> out = new ArrayList<>();
        for (int i = 0; i < log.segments().size() - 1; i++) {
            Segment s = log.segments().get(i);
            if (s.appender != null || s.sealing || s.deleted || s.isEmpty() || s.lastOffset >= endOffset) {
                break;
            }
            if (minLagMs > 0 && s.maxTimestamp >= 0 && nowMs - s.maxTimestamp < minLagMs) {
                break;
            }
            out.add(s);
        }
        return out;
    }

    /**
     * Plans a compaction of {@code log}, or returns null when nothing is cleanable (no sealed segment, or
     * nothing dirty and no tombstone due, unless {@code force}).
     */
    static LogCompaction plan(Log log, long nowMs, long minLagMs, boolean force, KeyOffsetMap map, MemorySegment window,
                              MemorySegment scratch, Consumer<RuntimeException> done) {
        return plan(log, nowMs, minLagMs, force, Long.MAX_VALUE, false, map, window, scratch, done);
    }

    /**
     * {@link #plan(Log, long, long, boolean, KeyOffsetMap, MemorySegment, MemorySegment, Consumer)} of the segments
     * wholly below {@code endOffset}, keeping every batch when {@code keepBatches} (see the class comment).
     */
    static LogCompaction plan(Log log, long nowMs, long minLagMs, boolean force, long endOffset, boolean keepBatches,
                              KeyOffsetMap map, MemorySegment window, MemorySegment scratch,
                              Consumer<RuntimeException> done) {
        return plan(log, nowMs, minLagMs, force, endOffset, keepBatches, null, map, window, scratch, done);
    }

    /**
     * {@link #plan(Log, long, long, boolean, long, boolean, KeyOffsetMap, MemorySegment, MemorySegment, Consumer)}
     * of a log with transactions: {@code txns} is its aborted-transaction index (see the class comment), and
     * {@code endOffset} must be at most its last stable offset.
     */
    static LogCompaction plan(Log log, long nowMs, long minLagMs, boolean force, long endOffset, boolean keepBatches,
                              TransactionIndex txns, KeyOffsetMap map, MemorySegment window, MemorySegment scratch,
                              Consumer<RuntimeException> done) {
        List<Segment> cleanable = cleanableSegments(log, nowMs, minLagMs, endOffset);
        if (cleanable.isEmpty()) {
            return null;
        }
        long firstDirty = Math.max(log.cleanerCheckpoint(), cleanable.get(0).baseOffset);
        long end = cleanable.get(cleanable.size() - 1).lastOffset + 1;
        boolean tombstonesDue = log.tombstoneHorizonMs() <= nowMs;
        if (firstDirty >= end && !force && !tombstonesDue) {
            return null;
        }
        return new LogCompaction(log, nowMs, map, window, scratch, cleanable, Math.min(firstDirty, end), keepBatches,
            txns, done);
    }

    /**
     * Whether {@code log}'s max.compaction.lag.ms ({@link LogConfig#maxCompactionLagMs()}) has passed for its
     * first dirty sealed segment wholly below {@code endOffset}: its newest record is at least that old, so it is
     * compacted whatever the dirty ratio (Kafka measures from the earliest dirty record; the newest record of
     * the segment holding it is later, so the guarantee here is that lag after the segment's last write).
     */
    static boolean maxLagPassed(Log log, long nowMs, long endOffset) {
        long maxLag = log.config().maxCompactionLagMs();
        if (maxLag == Long.MAX_VALUE) {
            return false;
        }
        for (Segment s : cleanableSegments(log, nowMs, 0, endOffset)) {
            if (s.lastOffset >= log.cleanerCheckpoint()) {
                return s.maxTimestamp >= 0 && nowMs - s.maxTimestamp >= maxLag;
            }
        }
        return false;
    }

    /** Dirty bytes over cleanable bytes of {@code log} (Kafka's cleanable ratio), 0 when nothing is cleanable. */
    static double dirtyRatio(Log log, long nowMs, long minLagMs) {
        return dirtyRatio(log, nowMs, minLagMs, Long.MAX_VALUE);
    }

    /** {@link #dirtyRatio(Log, long, long)} of the segments wholly below {@code endOffset}. */
    static double dirtyRatio(Log log, long nowMs, long minLagMs, long endOffset) {
        List<Segment> cleanable = cleanableSegments(log, nowMs, minLagMs, endOffset);
        long total = 0;
        long dirty = 0;
        for (Segment s : cleanable) {
            total += s.size;
            if (s.lastOffset >= log.cleanerCheckpoint()) {
                dirty += s.size;
            }
        }
        return total == 0 ? 0 : (double) dirty / total;
    }

    void start() {
        map.clear();
        log.compactionStarted(this);
        segIndex = 0;
        while (segIndex < cleanable.size() - 1 && cleanable.get(segIndex).lastOffset < firstDirty) {
            segIndex++;
        }
        if (firstDirty >= cleanableEnd) {
            mapEnd = cleanableEnd; // nothing new to map: a pass for tombstones whose horizon passed
            startClean();
            return;
        }
        if (txns != null) {
            mapTxns = new CleanedTransactions(aborted(cleanable.get(segIndex).baseOffset));
        }
        readSegment(cleanable.get(segIndex));
    }

    boolean isDone() {
        return phase == Phase.DONE;
    }

    /**
     * Does up to about {@code budgetBytes} of work (bytes of batches handled) and returns the bytes handled;
     * 0 when waiting for I/O.
     */
    long step(long budgetBytes) {
        long work = 0;
        while (work < budgetBytes) {
            if ((phase == Phase.MAP || phase == Phase.CLEAN) && !in.reading()) {
                String stale = log.isClosed() ? "the log closed" : log.truncationCount() != truncationsAtStart
                    ? "the log was truncated" : in.segment() != null && in.segment().deleted ? "its segments were deleted" : null;
                if (stale != null) {
                    abort(new IllegalStateException("compaction of " + log.dir() + " abandoned: " + stale));
                }
            }
            switch (phase) {
                case MAP -> {
                    int r = in.nextOrRead();
                    if (r == SegmentReader.WAIT) {
                        return work;
                    }
                    if (r == SegmentReader.END) {
                        if (++segIndex < cleanable.size()) {
                            readSegment(cleanable.get(segIndex));
                        } else {
                            mapEnd = cleanableEnd;
                            startClean();
                        }
                        continue;
                    }
                    if (r != SegmentReader.BATCH) {
                        abort(streamProblem(r));
                        continue;
                    }
                    work += mapBatch();
                }
                case CLEAN -> {
                    int r = in.nextOrRead();
                    if (r == SegmentReader.WAIT) {
                        return work;
                    }
                    List<Segment> group = groups.get(groupIndex);
                    if (r == SegmentReader.END) {
                        if (++segIndex < group.size()) {
                            readSegment(group.get(segIndex));
                        } else {
                            appender.flush();
                            phase = Phase.SEAL;
                        }
                        continue;
                    }
                    if (r != SegmentReader.BATCH) {
                        abort(streamProblem(r));
                        continue;
                    }
                    long handled = cleanBatch(group);
                    if (handled < 0) {
                        return work; // waiting for write-behind memory
                    }
                    work += handled;
                }
                case SEAL -> {
                    if (outFailure != null) {
                        abort(new UncheckedIOException(new IOException("compaction of " + log.dir() + " failed: " + outFailure)));
                        continue;
                    }
                    if (appender.inFlight() > 0 || appender.durable() < appender.position()) {
                        appender.flush();
                        return work;
                    }
                    if (log.isTruncating()) {
                        return work; // a suffix truncation is reading the log: swap after it
                    }
                    if (!swap()) {
                        continue; // aborted
                    }
                    if (++groupIndex < groups.size()) {
                        openGroup();
                    } else {
                        finish();
                    }
                }
                case ABORTING -> {
                    if (in.reading() || (appender != null && appender.inFlight() > 0)) {
                        return work;
                    }
                    dropOutput();
                    phase = Phase.DONE;
                    log.compactionEnded(this);
                    LOG.log(System.Logger.Level.INFO, abortCause.getMessage());
                    done.accept(abortCause);
                    return work;
                }
                case DONE -> {
                    return work;
                }
            }
        }
        return work;
    }

    /** Starts reading the sealed segment {@code s} from its start. */
    private void readSegment(Segment s) {
        in.start(log, s, 0, -1, s.size);
    }

    private RuntimeException streamProblem(int r) {
        Segment s = in.segment();
        if (r == SegmentReader.ERROR) {
            return new LogException(LogException.Kind.STORAGE_ERROR, "compaction read of " + s.path + " failed: "
                + Errno.describe(in.errno()));
        }
        if (r == SegmentReader.NO_MEMORY) {
            return new LogException(LogException.Kind.NO_MEMORY, "compaction of " + log.dir() + " stopped: "
                + in.failure() + "; the segment is left as it is");
        }
        // INVALID, and for a sealed segment (trimmed to its data) also zeros or a file shorter than recorded.
        return new LogException(LogException.Kind.CORRUPT_MESSAGE, "compaction of " + log.dir() + " stopped: "
            + s.path.getFileName() + " has an invalid batch at position " + in.position() + "; the segment is left as it is");
    }

    /** Abandons the compaction (the log is untouched); completes once no I/O of it is in flight. */
    void abort(RuntimeException cause) {
        if (phase == Phase.DONE || phase == Phase.ABORTING) {
            return;
        }
        abortCause = cause;
        phase = Phase.ABORTING;
    }

    // ------------------------------------------------------------------ map

    /**
     * The aborted transactions a walk from {@code from} to the cleanable end may meet: marker at or after
     * {@code from}, first offset below the end.
     */
    private List<long[]> aborted(long from) {
        List<long[]> out = new ArrayList<>();
        for (long[] e : txns.entries()) {
            if (e[2] >= from && e[1] < cleanableEnd) {
                out.add(e);
            }
        }
        return out;
    }

    /** The control type of the transactional control batch {@code b} ({@link ControlBatch}'s ids), or UNKNOWN. */
    private int markerType(RecordBatch b) {
        if (b.recordsCount() == 0 || b.compression() != 0 || !records.wrap(b) || !records.next()
            || records.keyLength() < 4) {
            return ControlBatch.UNKNOWN;
        }
        return records.memory().get(RecordBatch.SHORT, records.keyPosition() + 2);
    }

    private long mapBatch() {
        RecordBatch b = in.batch();
        int size = b.sizeInBytes();
        boolean aborted = false;
        if (mapTxns != null) {
            if (!b.isControl()) {
                aborted = mapTxns.onData(b.producerId(), b.isTransactional(), b.lastOffset(), b.recordsCount() > 0);
            } else if (b.isTransactional() && b.producerId() >= 0) {
                int type = markerType(b);
                if (type == ControlBatch.ABORT || type == ControlBatch.COMMIT || b.recordsCount() == 0) {
                    mapTxns.onMarker(b.producerId(), type, b.lastOffset());
                }
            }
        }
        if (b.lastOffset() >= firstDirty) {
            long pid = b.producerId();
            if (pid >= 0) {
                producerLast.put(pid, b.baseOffset());
            }
            if (!b.isControl() && b.compression() == 0 && !aborted) { // aborted records never shadow others
                int n = b.recordsCount();
                if (!map.hasRoomFor(n)) {
                    mapEnd = b.baseOffset();
                    if (mapEnd <= firstDirty) {
                        abort(new IllegalStateException("compaction of " + log.dir() + ": the key map (" + map.maxEntries()
                            + " keys) cannot hold one batch of " + n + " records; give it more memory"));
                        return size;
                    }
                    startClean();
                    return size;
                }
                records.wrap(b);
                while (records.next()) {
                    if (records.offset() >= firstDirty && records.keyLength() >= 0) {
                        map.put(records.memory(), records.keyPosition(), records.keyLength(), records.offset());
                    }
                }
            }
        }
        in.advance();
        return size;
    }

    // ------------------------------------------------------------------ clean

    private void startClean() {
        if (txns != null) {
            cleanTxns = new CleanedTransactions(aborted(cleanable.get(0).baseOffset));
        }
        int k = 0;
        while (k < cleanable.size() && cleanable.get(k).baseOffset < mapEnd) {
            k++;
        }
        int i = 0;
        while (i < k) {
            List<Segment> g = new ArrayList<>();
            Segment first = cleanable.get(i);
            long bytes = 0;
            int j = i;
            while (j < k && (g.isEmpty() || (bytes + cleanable.get(j).size <= log.config().segmentBytes()
                && cleanable.get(j).lastOffset - first.baseOffset < Integer.MAX_VALUE - 1))) {
                g.add(cleanable.get(j));
                bytes += cleanable.get(j).size;
                j++;
            }
            groups.add(g);
            i = j;
        }
        if (groups.isEmpty()) {
            finish();
            return;
        }
        groupIndex = 0;
        openGroup();
    }

    private void openGroup() {
        List<Segment> g = groups.get(groupIndex);
        Segment first = g.get(0);
        cleanedPath = log.dir().resolve(Segment.fileName(first.baseOffset, CLEANED_SUFFIX));
        try {
            log.fs().deleteIfExists(cleanedPath);
        } catch (IOException e) {
            abort(new UncheckedIOException("cannot remove " + cleanedPath, e));
            return;
        }
        outFile = log.engine().openDmaFile(cleanedPath, true);
        long bytes = 0;
        for (Segment s : g) {
            bytes += s.size;
        }
        appender = new SegmentAppender(outFile, log.writePool(), this, 0, MemorySegment.NULL, 0,
            Math.min(log.config().fallocateStepBytes(), (bytes + 4095) / 4096 * 4096), log.config().segmentBytes());
        outIndex = new SegmentIndex(first.baseOffset, log.config().indexIntervalBytes());
        outSize = 0;
        outMaxTimestamp = -1;
        outFailure = null;
        segIndex = 0;
        readSegment(first);
        phase = Phase.CLEAN;
    }

    /**
     * Writes the current batch's survivors; returns the input bytes handled, or -1 when write-behind memory is
     * short (the batch is handled again on the next step).
     */
    private long cleanBatch(List<Segment> group) {
        RecordBatch b = in.batch();
        int size = b.sizeInBytes();
        long bound = (long) size + RecordBatch.HEADER_BYTES + (long) MAX_RECORD_GROWTH * Math.max(0, b.recordsCount());
        if (log.writePool().hasWaiters()) {
            // Logs wait for write-behind memory: they go first. Writing out what is buffered lends the tail too.
            appender.flush();
            return -1;
        }
        if (log.writePool().available() <= log.writePool().capacity() / 2 || !appender.canAppend(bound)) {
            return -1;
        }
        Segment seg = in.segment();
        boolean lastOfGroup = seg == group.get(group.size() - 1) && in.position() + size == seg.size;
        int written = filter(b, lastOfGroup);
        if (written != 0) {
            MemorySegment src = written < 0 ? b.segment() : scratch;
            long from = written < 0 ? b.position() : 0;
            int length = written < 0 ? size : written;
            outBatch.wrap(src, from);
            appender.append(src, from, length);
            outIndex.onBatch(outBatch.lastOffset(), outSize, length, outBatch.maxTimestamp());
            outMaxTimestamp = Math.max(outMaxTimestamp, outBatch.maxTimestamp());
            outSize += length;
            bytesOut += length;
        }
        bytesIn += size;
        in.advance();
        return size;
    }

    /**
     * Decides the fate of batch {@code b}: -1 = keep it byte for byte, 0 = drop it, n > 0 = the rewritten batch
     * is the first n bytes of {@link #scratch}.
     */
    private int filter(RecordBatch b, boolean lastOfGroup) {
        if (cleanTxns != null) {
            if (b.isControl()) {
                return b.isTransactional() && b.producerId() >= 0 ? filterMarker(b, lastOfGroup) : -1;
            }
            if (cleanTxns.onData(b.producerId(), b.isTransactional(), b.lastOffset(), b.recordsCount() > 0)) {
                return filterAborted(b, lastOfGroup);
            }
        }
        if (b.isControl() || b.compression() != 0 || b.baseOffset() >= mapEnd) {
            return -1;
        }
        int count = b.recordsCount();
        if (keep.length < count) {
            keep = new boolean[Math.max(count, keep.length * 2)];
        }
        boolean horizonSet = (b.attributes() & DELETE_HORIZON_BIT) != 0;
        long horizon = horizonSet ? b.baseTimestamp() : -1;
        boolean tombstoneKept = false;
        int kept = 0;
        records.wrap(b);
        int i = 0;
        while (records.next()) {
            boolean k = true;
            if (records.keyLength() >= 0) {
                long latest = map.get(records.memory(), records.keyPosition(), records.keyLength());
                if (latest > records.offset()) {
                    k = false; // a later record has this key
                } else if (records.valueLength() < 0) {
                    if (horizonSet && nowMs >= horizon) {
                        k = false; // a tombstone past its delete horizon
                    } else {
                        tombstoneKept = true;
                    }
                }
            }
            keep[i++] = k;
            if (k) {
                kept++;
            }
        }
        boolean setHorizon = tombstoneKept && !horizonSet;
        if (tombstoneKept) {
            horizonMin = Math.min(horizonMin, setHorizon ? nowMs + log.config().deleteRetentionMs() : horizon);
        }
        recordsRemoved += count - kept;
        if (kept == count && !setHorizon) {
            return -1;
        }
        if (kept == 0 && !keepBatches) {
            long pid = b.producerId();
            boolean lastOfProducer = pid >= 0 && producerLast.getOrDefault(pid, -1L) <= b.baseOffset();
            if (!lastOfGroup && !lastOfProducer) {
                return 0;
            }
        }
        return rewrite(b, kept, setHorizon);
    }

    /** Whether {@code b} is the last batch of its producer in what was mapped (it keeps the producer's state). */
    private boolean lastOfProducer(RecordBatch b) {
        long pid = b.producerId();
        return pid >= 0 && producerLast.getOrDefault(pid, -1L) <= b.baseOffset();
    }

    /** A data batch of an aborted transaction: every record goes (the batch stays empty where it must stay). */
    private int filterAborted(RecordBatch b, boolean lastOfGroup) {
        boolean stays = keepBatches || lastOfGroup || lastOfProducer(b);
        int count = b.recordsCount();
        if (count == 0) {
            return stays ? -1 : 0;
        }
        recordsRemoved += count;
        abortedRecordsRemoved += count;
        passAgain = true;
        return stays ? writeEmpty(b) : 0;
    }

    /**
     * A transaction marker: kept while its transaction has records; otherwise given a delete horizon, and emptied
     * once the horizon has passed (see {@link CleanedTransactions}).
     */
    private int filterMarker(RecordBatch b, boolean lastOfGroup) {
        int count = b.recordsCount();
        int type = markerType(b);
        if (count > 0 && type != ControlBatch.ABORT && type != ControlBatch.COMMIT) {
            return -1; // a transactional control batch of another kind: not ours to remove
        }
        int fate = cleanTxns.onMarker(b.producerId(), type, b.lastOffset());
        if (count == 0) {
            return keepBatches || lastOfGroup || lastOfProducer(b) ? -1 : 0;
        }
        if (fate == CleanedTransactions.KEEP) {
            return -1;
        }
        if ((b.attributes() & DELETE_HORIZON_BIT) == 0) {
            if (keep.length < count) {
                keep = new boolean[Math.max(count, keep.length * 2)];
            }
            java.util.Arrays.fill(keep, 0, count, true);
            horizonMin = Math.min(horizonMin, nowMs + log.config().deleteRetentionMs());
            return rewrite(b, count, true);
        }
        long horizon = b.baseTimestamp();
        if (nowMs < horizon) {
            horizonMin = Math.min(horizonMin, horizon);
            return -1;
        }
        recordsRemoved += count;
        markersRemoved++;
        return keepBatches || lastOfGroup || lastOfProducer(b) ? writeEmpty(b) : 0;
    }

    /**
     * Writes into {@link #scratch} the batch {@code b} without records (uncompressed, as Kafka writes an empty
     * batch): its offsets, leader epoch, producer id, epoch and sequence stay.
     */
    private int writeEmpty(RecordBatch b) {
        MemorySegment.copy(b.segment(), b.position(), scratch, 0, RecordBatch.HEADER_BYTES);
        scratch.set(RecordBatch.INT, RecordBatch.BATCH_LENGTH, RecordBatch.HEADER_BYTES - RecordBatch.LOG_OVERHEAD);
        scratch.set(RecordBatch.INT, RecordBatch.RECORDS_COUNT, 0);
        scratch.set(RecordBatch.SHORT, RecordBatch.ATTRIBUTES, (short) (b.attributes() & ~0x07));
        outBatch.wrap(scratch, 0).updateCrc();
        return RecordBatch.HEADER_BYTES;
    }

    /** Writes into {@link #scratch} the batch {@code b} with only its records marked in {@link #keep}. */
    private int rewrite(RecordBatch b, int kept, boolean setHorizon) {
        MemorySegment src = b.segment();
        long start = b.position();
        MemorySegment.copy(src, start, scratch, 0, RecordBatch.HEADER_BYTES);
        long base = b.baseTimestamp();
        long newBase = setHorizon ? nowMs + log.config().deleteRetentionMs() : base;
        long pos = RecordBatch.HEADER_BYTES;
        records.wrap(b);
        int i = 0;
        while (records.next()) {
            if (!keep[i++]) {
                continue;
            }
            if (newBase == base) {
                long n = records.recordEnd() - records.recordStart();
                MemorySegment.copy(src, records.recordStart(), scratch, pos, n);
                pos += n;
            } else {
                long delta = base + records.timestampDelta() - newBase;
                long tail = records.recordEnd() - records.tailPosition();
                int body = 1 + BatchBuilder.varlongSize(delta) + BatchBuilder.varintSize(records.offsetDelta()) + (int) tail;
                pos = putVarlong(pos, body);
                scratch.set(ValueLayout.JAVA_BYTE, pos++, records.attributes());
                pos = putVarlong(pos, delta);
                pos = putVarlong(pos, records.offsetDelta());
                MemorySegment.copy(src, records.tailPosition(), scratch, pos, tail);
                pos += tail;
            }
        }
        int size = (int) pos;
        scratch.set(RecordBatch.INT, RecordBatch.BATCH_LENGTH, size - RecordBatch.LOG_OVERHEAD);
        scratch.set(RecordBatch.INT, RecordBatch.RECORDS_COUNT, kept);
        if (newBase != base) {
            short attributes = (short) (b.attributes() | DELETE_HORIZON_BIT);
            scratch.set(RecordBatch.SHORT, RecordBatch.ATTRIBUTES, attributes);
            scratch.set(RecordBatch.LONG, RecordBatch.BASE_TIMESTAMP, newBase);
        }
        outBatch.wrap(scratch, 0).updateCrc();
        return size;
    }

    /** Kafka's zigzag varlong (varints are the same encoding for values in int range). */
    private long putVarlong(long pos, long v) {
        long z = (v << 1) ^ (v >> 63);
        while ((z & ~0x7FL) != 0) {
            scratch.set(ValueLayout.JAVA_BYTE, pos++, (byte) ((z & 0x7F) | 0x80));
            z >>>= 7;
        }
        scratch.set(ValueLayout.JAVA_BYTE, pos++, (byte) z);
        return pos;
    }

    // ------------------------------------------------------------------ swap

    /** Puts the cleaned file in place of the group's segments; false when the compaction was abandoned. */
    private boolean swap() {
        List<Segment> group = groups.get(groupIndex);
        String stale = log.staleGroup(group, truncationsAtStart);
        if (stale != null) {
            abort(new IllegalStateException("compaction of " + log.dir() + " abandoned: " + stale));
            return false;
        }
        appender.releaseTail();
        appender = null;
        outFile.truncate(outSize);
        outFile.close();
        outFile = null;
        Segment first = group.get(0);
        Segment last = group.get(group.size() - 1);
        try {
            Path swapPath = log.dir().resolve(swapName(first.baseOffset, last.lastOffset + 1));
            log.fs().move(cleanedPath, swapPath, false);
            log.fs().syncDirectory(log.dir());
            log.installCompacted(group, swapPath, outIndex, outSize, outMaxTimestamp);
            if (txns != null) {
                txns.compacted(first.baseOffset, last.lastOffset + 1, cleanTxns.takeRetained());
            }
        } catch (IOException e) {
            abort(new UncheckedIOException("compaction of " + log.dir() + " could not swap " + cleanedPath.getFileName()
                + " in (finished at the next open): " + e.getMessage(), e));
            return false;
        }
        cleanedPath = null;
        return true;
    }

    static String swapName(long base, long next) {
        return String.format("%020d-%020d%s", base, next, SWAP_SUFFIX);
    }

    private void finish() {
        // Aborted records went under markers that stay: the next pass (due at once) finds their transactions empty,
        // drops their index entries and starts the markers' delete horizons.
        log.compactionFinished(mapEnd, passAgain ? Math.min(horizonMin, nowMs) : horizonMin);
        phase = Phase.DONE;
        log.compactionEnded(this);
        LOG.log(System.Logger.Level.INFO, "compacted " + log.dir() + " up to offset " + mapEnd + ": " + groups.size()
            + " segment group(s), " + bytesIn + " -> " + bytesOut + " bytes, " + recordsRemoved + " record(s) removed"
            + (txns == null ? "" : " (" + abortedRecordsRemoved + " aborted, " + markersRemoved + " marker(s))"));
        done.accept(null);
    }

    private void dropOutput() {
        if (appender != null) {
            appender.releaseTail();
            appender = null;
        }
        if (outFile != null) {
            outFile.close();
            outFile = null;
        }
        if (cleanedPath != null) {
            try {
                log.fs().deleteIfExists(cleanedPath);
            } catch (IOException e) {
                LOG.log(System.Logger.Level.WARNING, "could not delete " + cleanedPath + " (removed at the next open)");
            }
        }
    }

    long bytesIn() {
        return bytesIn;
    }

    long bytesOut() {
        return bytesOut;
    }

    long recordsRemoved() {
        return recordsRemoved;
    }

    long abortedRecordsRemoved() {
        return abortedRecordsRemoved;
    }

    long markersRemoved() {
        return markersRemoved;
    }

    // ------------------------------------------------------------------ appender listener

    @Override
    public void onDurable(long durable) {
    }

    @Override
    public void onFailure(String what, int errno) {
        if (!what.startsWith("fallocate")) {
            outFailure = what;
        }
    }

    @Override
    public void onSpaceAvailable() {
    }

    @Override
    public String toString() {
        return "LogCompaction{" + log.dir() + ", " + phase + ", firstDirty " + firstDirty + ", mapEnd " + mapEnd + "}";
    }
}
