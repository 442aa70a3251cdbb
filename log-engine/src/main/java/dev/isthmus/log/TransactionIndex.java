package dev.isthmus.log;

import dev.isthmus.uring.FileOps;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * The aborted-transaction index of one log: Kafka's {@code .txnindex} (one file per segment, named by the segment's
 * base offset, holding the transactions whose ABORT marker lies in that segment) and, for reads, all its entries in
 * memory ordered by marker offset.
 * <pre>
 *  entry (34 bytes, big-endian, Kafka's AbortedTxn)
 *  0  version          i16 = 0
 *  2  producerId       i64
 *  10 firstOffset      i64   the transaction's first offset in this partition
 *  18 lastOffset       i64   its ABORT marker's offset
 *  26 lastStableOffset i64   the last stable offset just after the abort
 * </pre>
 *
 * <h2>Who writes what</h2>
 * The owner (a partition replica) {@link #append appends} an entry each time it applies an ABORT marker that ends a
 * non-empty transaction, in marker order, only for committed entries (which no suffix truncation removes). Memory
 * is updated at once; the files follow at the owner's next {@link #checkpoint}, which rewrites each file that gained
 * entries (temporary file, fdatasync, rename) in the background, in the log directory's {@link FileOps} order,
 * before it writes the owner's snapshot, so a snapshot never claims entries a crash lost (aborts are rare: a file
 * rewritten once per checkpoint costs less than an fdatasync per marker). {@link #manifest()} tells the snapshot how many entries each file had; {@link #restore}
 * takes the files back on open and says when a file the snapshot counted is missing or short (the owner then
 * rebuilds the index from the log). Segments deleted by retention take their {@code .txnindex} with them
 * ({@link Log}); entries below the log start are dropped from memory by {@link #truncateBelow}.
 *
 * <h2>Memory</h2>
 * 32 bytes per aborted transaction still in the log (four parallel arrays); reads ({@link #collect}) binary-search by
 * marker offset.
 *
 * <p>Threads: the log's shard thread; file work on the {@link FileOps#submitBackground} worker (the engine's: the
 * machine's file system or the simulator's).
 */
public final class TransactionIndex {
    public static final String SUFFIX = ".txnindex";
    public static final int ENTRY_BYTES = 34;
    public static final short VERSION = 0;

    /** Receives the entries {@link #collect} finds. */
    public interface Collector {
        void aborted(long producerId, long firstOffset);
    }

    private final Path dir;
    private final FileOps fs;
    private long[] producerIds = new long[16];
    private long[] firstOffsets = new long[16];
    private long[] lastOffsets = new long[16];
    private long[] lastStableOffsets = new long[16];
    private int size;
    /** Entries per file (segment base offset -> {count, largest marker offset}), as appended. */
    private final TreeMap<Long, long[]> files = new TreeMap<>();
    /** Files appended to since the last checkpoint (made durable by the next). */
    private final Set<Long> dirty = new HashSet<>();

    public TransactionIndex(Path dir, FileOps fs) {
        this.dir = dir;
        this.fs = fs;
    }

    public int size() {
        return size;
    }

    /** Path of the index of the segment based at {@code segmentBase}. */
    public static Path path(Path dir, long segmentBase) {
        return dir.resolve(Segment.fileName(segmentBase, SUFFIX));
    }

    /**
     * Adds an aborted transaction whose marker at {@code lastOffset} lies in the segment based at {@code segmentBase}
     * (markers come in offset order). Memory now; the file at the next {@link #checkpoint}.
     */
    public void append(long segmentBase, long producerId, long firstOffset, long lastOffset, long lastStableOffset) {
        if (size > 0 && lastOffset <= lastOffsets[size - 1]) {
            throw new IllegalStateException("aborted transaction at " + lastOffset + " is not after the last one at "
                + lastOffsets[size - 1] + " in " + dir);
        }
        add(producerId, firstOffset, lastOffset, lastStableOffset);
        long[] f = files.computeIfAbsent(segmentBase, b -> new long[2]);
        f[0]++;
        f[1] = lastOffset;
        dirty.add(segmentBase);
    }

    private void add(long producerId, long firstOffset, long lastOffset, long lastStableOffset) {
        if (size == producerIds.length) {
            int n = size * 2;
            producerIds = java.util.Arrays.copyOf(producerIds, n);
            firstOffsets = java.util.Arrays.copyOf(firstOffsets, n);
            lastOffsets = java.util.Arrays.copyOf(lastOffsets, n);
            lastStableOffsets = java.util.Arrays.copyOf(lastStableOffsets, n);
        }
        producerIds[size] = producerId;
        firstOffsets[size] = firstOffset;
        lastOffsets[size] = lastOffset;
        lastStableOffsets[size] = lastStableOffset;
        size++;
    }

    /**
     * Kafka's {@code collectAbortedTxns}: every aborted transaction whose range overlaps {@code [fetchOffset,
     * upperBound)} (its marker at or after {@code fetchOffset}, its first offset below {@code upperBound}), in marker
     * order; the search ends at the first entry whose last stable offset reaches {@code upperBound} (no later abort
     * can reach below it). Returns how many were found.
     */
    public int collect(long fetchOffset, long upperBound, Collector out) {
        int lo = 0;
        int hi = size;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (lastOffsets[mid] < fetchOffset) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        int found = 0;
        for (int i = lo; i < size; i++) {
            if (firstOffsets[i] < upperBound) {
                out.aborted(producerIds[i], firstOffsets[i]);
                found++;
            }
            if (lastStableOffsets[i] >= upperBound) {
                break;
            }
        }
        return found;
    }

    /** Every entry, in marker order: {producerId, firstOffset, lastOffset, lastStableOffset} (tests, compaction). */
    public List<long[]> entries() {
        List<long[]> out = new ArrayList<>(size);
        for (int i = 0; i < size; i++) {
            out.add(new long[] {producerIds[i], firstOffsets[i], lastOffsets[i], lastStableOffsets[i]});
        }
        return out;
    }

    /** Entries whose marker lies in {@code [from, to)}, in marker order (compaction of that range). */
    public List<long[]> entries(long from, long to) {
        List<long[]> out = new ArrayList<>();
        for (int i = 0; i < size; i++) {
            if (lastOffsets[i] >= from && lastOffsets[i] < to) {
                out.add(new long[] {producerIds[i], firstOffsets[i], lastOffsets[i], lastStableOffsets[i]});
            }
        }
        return out;
    }

    /**
     * Aborted transactions whose first offset is below {@code offset} and whose marker is at or after it, in marker
     * order (compaction: the aborted transactions a range of the log starts inside of).
     */
    public List<long[]> spanning(long offset) {
        List<long[]> out = new ArrayList<>();
        for (int i = 0; i < size; i++) {
            if (firstOffsets[i] < offset && lastOffsets[i] >= offset) {
                out.add(new long[] {producerIds[i], firstOffsets[i], lastOffsets[i], lastStableOffsets[i]});
            }
        }
        return out;
    }

    /**
     * Compaction rewrote the segments holding offsets {@code [from, to)} into one segment based at {@code from}: its
     * entries (markers in that range) become {@code kept} (a subset, in marker order: the ABORT markers compaction kept
     * with records of their transactions), filed under {@code from}. The files of the old segments went with them;
     * the new one is written at the next {@link #checkpoint}.
     */
    public void compacted(long from, long to, List<long[]> kept) {
        int lo = 0;
        while (lo < size && lastOffsets[lo] < from) {
            lo++;
        }
        int hi = lo;
        while (hi < size && lastOffsets[hi] < to) {
            hi++;
        }
        for (int i = 0; i < kept.size(); i++) {
            long[] e = kept.get(i);
            dev.isthmus.uring.Verify.that(e[2] >= from && e[2] < to && (i == 0 || e[2] > kept.get(i - 1)[2]),
                "a kept aborted transaction lies outside the compacted range or out of order");
        }
        int tail = size - hi;
        long[][] rest = {
            java.util.Arrays.copyOfRange(producerIds, hi, size), java.util.Arrays.copyOfRange(firstOffsets, hi, size),
            java.util.Arrays.copyOfRange(lastOffsets, hi, size), java.util.Arrays.copyOfRange(lastStableOffsets, hi, size)};
        size = lo;
        for (long[] e : kept) {
            add(e[0], e[1], e[2], e[3]);
        }
        for (int i = 0; i < tail; i++) {
            add(rest[0][i], rest[1][i], rest[2][i], rest[3][i]);
        }
        files.subMap(from, true, to, false).clear();
        dirty.removeIf(base -> base >= from && base < to);
        if (!kept.isEmpty()) {
            files.put(from, new long[] {kept.size(), kept.get(kept.size() - 1)[2]});
            dirty.add(from);
        }
    }

    /**
     * Drops the files whose every marker is below {@code logStart} (their segments went or are going) and their
     * entries from memory. A file that still has a marker at or past the log start keeps all its entries (its next
     * rewrite and the snapshot's count stay whole); reads never look below the log start.
     */
    public void truncateBelow(long logStart) {
        files.headMap(logStart).entrySet().removeIf(e -> e.getValue()[1] < logStart);
        long keepFrom = files.isEmpty() ? Long.MAX_VALUE : files.firstKey();
        int k = 0;
        while (k < size && lastOffsets[k] < keepFrom) {
            k++;
        }
        if (k == 0) {
            return;
        }
        System.arraycopy(producerIds, k, producerIds, 0, size - k);
        System.arraycopy(firstOffsets, k, firstOffsets, 0, size - k);
        System.arraycopy(lastOffsets, k, lastOffsets, 0, size - k);
        System.arraycopy(lastStableOffsets, k, lastStableOffsets, 0, size - k);
        size -= k;
    }

    // ------------------------------------------------------------------ snapshots and recovery

    /**
     * The manifest a snapshot carries: per file {segmentBase i64, entries i32, largest marker offset i64}, preceded by
     * the count (i32).
     */
    public byte[] manifest() {
        ByteBuffer b = ByteBuffer.allocate(4 + files.size() * 20);
        b.putInt(files.size());
        for (var e : files.entrySet()) {
            b.putLong(e.getKey()).putInt((int) e.getValue()[0]).putLong(e.getValue()[1]);
        }
        return b.array();
    }

    /** The entries of the file of the segment based at {@code base}, encoded (the shard thread). */
    private byte[] fileBytes(long base) {
        Long next = files.higherKey(base);
        int from = 0;
        while (from < size && lastOffsets[from] < base) {
            from++;
        }
        int to = from;
        while (to < size && (next == null || lastOffsets[to] < next)) {
            to++;
        }
        ByteBuffer b = ByteBuffer.allocate((to - from) * ENTRY_BYTES);
        for (int i = from; i < to; i++) {
            b.putShort(VERSION).putLong(producerIds[i]).putLong(firstOffsets[i]).putLong(lastOffsets[i])
                .putLong(lastStableOffsets[i]);
        }
        return b.array();
    }

    /**
     * Queues, after the file work queued so far for the directory: each file that gained entries since the last
     * checkpoint rewritten whole (temporary file, fdatasync, rename) and the directory synced, then {@code snapshot}
     * written the same way to {@code file} and the directory synced again; {@code done} runs on the worker with null
     * or the problem. With {@code wait} the calling thread waits for it (a clean close).
     */
    public void checkpoint(Path file, byte[] snapshot, boolean wait, Consumer<String> done) {
        Map<Path, byte[]> write = new TreeMap<>();
        for (long base : dirty) {
            if (files.containsKey(base)) {
                write.put(path(dir, base), fileBytes(base));
            }
        }
        dirty.clear();
        fs.submitBackground(dir, "write the producer snapshot " + file.getFileName(), () -> {
            String problem = null;
            try {
                for (Map.Entry<Path, byte[]> e : write.entrySet()) {
                    fs.writeAtomically(e.getKey(), e.getValue());
                }
                if (!write.isEmpty()) {
                    fs.syncDirectory(dir);
                }
                fs.writeAtomically(file, snapshot);
                fs.syncDirectory(dir);
            } catch (IOException | RuntimeException e) {
                problem = e.toString();
            }
            done.accept(problem);
        });
        if (wait) {
            fs.awaitBackground(dir);
        }
    }

    /** Receives what {@link #readState} found. */
    public interface StateHandler {
        /**
         * On the file worker: {@code snapshot} the owner's snapshot file (null when there is none), {@code files}
         * every {@code .txnindex} file by segment base, {@code problem} null or why they could not be read.
         */
        void loaded(byte[] snapshot, TreeMap<Long, byte[]> files, String problem);
    }

    /**
     * Reads, in the background after the directory's queued file work, the owner's snapshot file {@code snapshotName}
     * and every {@code .txnindex} file of the directory, and hands them to {@code handler} on the file worker.
     */
    public void readState(String snapshotName, StateHandler handler) {
        fs.submitBackground(dir, "read the producer snapshot and transaction indexes", () -> {
            byte[] snapshot = null;
            TreeMap<Long, byte[]> files = new TreeMap<>();
            String problem = null;
            try {
                Path f = dir.resolve(snapshotName);
                if (fs.exists(f)) {
                    snapshot = fs.readAllBytes(f);
                }
                files = readFiles();
            } catch (IOException | RuntimeException e) {
                problem = e.toString();
            }
            handler.loaded(snapshot, files, problem);
        });
    }

    /** Reads every {@code .txnindex} file of the directory (blocking: run it off the shard loop). */
    private TreeMap<Long, byte[]> readFiles() throws IOException {
        TreeMap<Long, byte[]> out = new TreeMap<>();
        if (!fs.exists(dir)) {
            return out;
        }
        for (Path p : fs.list(dir)) {
            long base = baseOf(p);
            if (base >= 0) {
                out.put(base, fs.readAllBytes(p));
            }
        }
        return out;
    }

    /** The segment base a {@code .txnindex} file is named by, or -1 for another file. */
    private static long baseOf(Path p) {
        String name = p.getFileName().toString();
        if (!name.endsWith(SUFFIX)) {
            return -1;
        }
        String digits = name.substring(0, name.length() - SUFFIX.length());
        if (digits.length() != 20 || !digits.chars().allMatch(Character::isDigit)) {
            return -1;
        }
        return Long.parseLong(digits);
    }

    /**
     * Takes back the entries a snapshot's {@code manifest} counted from the files {@link #readFiles} found, ignoring
     * files wholly below {@code logStart}. Returns null when they are all there, else a sentence naming the file that
     * is missing or short or damaged: then nothing was taken and the owner rebuilds the index from the log
     * ({@link #clear}). Entries appended after the snapshot (past what the manifest counted) are cut off the files
     * and files the manifest does not know are deleted, in the background: the owner replays the log from the
     * snapshot and appends them again.
     */
    public String restore(byte[] manifest, TreeMap<Long, byte[]> found, long logStart) {
        dev.isthmus.uring.Verify.that(size == 0, "restore into a non-empty index");
        ByteBuffer m = ByteBuffer.wrap(manifest);
        int n = manifest.length >= 4 ? m.getInt() : -1;
        if (n < 0 || manifest.length != 4 + n * 20) {
            return "the snapshot's transaction index manifest is damaged";
        }
        TreeMap<Long, long[]> counted = new TreeMap<>();
        for (int i = 0; i < n; i++) {
            long base = m.getLong();
            int count = m.getInt();
            long maxLast = m.getLong();
            if (maxLast >= logStart) {
                counted.put(base, new long[] {count, maxLast});
            }
        }
        List<long[]> taken = new ArrayList<>();
        for (var e : counted.entrySet()) {
            byte[] bytes = found.get(e.getKey());
            long count = e.getValue()[0];
            if (bytes == null) {
                return "the transaction index " + path(dir, e.getKey()).getFileName() + " is missing";
            }
            if (bytes.length < count * ENTRY_BYTES) {
                return "the transaction index " + path(dir, e.getKey()).getFileName() + " holds " + bytes.length
                    + " bytes, not the " + count * ENTRY_BYTES + " the producer snapshot counted";
            }
            ByteBuffer b = ByteBuffer.wrap(bytes);
            for (int i = 0; i < count; i++) {
                short version = b.getShort();
                long[] x = {b.getLong(), b.getLong(), b.getLong(), b.getLong()};
                if (version != VERSION || x[2] < x[1] || x[2] > e.getValue()[1]) {
                    return "the transaction index " + path(dir, e.getKey()).getFileName() + " has a damaged entry "
                        + i;
                }
                taken.add(x);
            }
        }
        taken.sort((a, b) -> Long.compare(a[2], b[2]));
        for (long[] x : taken) {
            if (size > 0 && x[2] <= lastOffsets[size - 1]) {
                continue; // the same entry in two files (a compaction merged segments): once is enough
            }
            add(x[0], x[1], x[2], x[3]);
        }
        files.putAll(counted);
        // Cut what the snapshot did not count; delete what it does not know.
        for (var e : found.entrySet()) {
            long base = e.getKey();
            long[] c = counted.get(base);
            Path p = path(dir, base);
            if (c == null) {
                fs.submitBackground(dir, "delete " + p.getFileName(), () -> fs.deleteIfExists(p));
            } else if (e.getValue().length != c[0] * ENTRY_BYTES) {
                long keep = c[0] * ENTRY_BYTES;
                fs.submitBackground(dir, "cut " + p.getFileName() + " to " + keep + " bytes",
                    () -> fs.truncate(p, keep));
            }
        }
        return null;
    }

    /** Forgets every entry and deletes every {@code .txnindex} file of the directory (in the background). */
    public void clearAll() {
        size = 0;
        files.clear();
        dirty.clear();
        fs.submitBackground(dir, "delete the transaction indexes", () -> {
            for (Path p : fs.list(dir)) {
                if (baseOf(p) >= 0) {
                    fs.deleteIfExists(p);
                }
            }
        });
    }

    /** Forgets every entry and deletes the given {@code .txnindex} files (in the background): the owner rebuilds them. */
    public void clear(Iterable<Long> fileBases) {
        size = 0;
        files.clear();
        dirty.clear();
        for (long base : fileBases) {
            Path p = path(dir, base);
            fs.submitBackground(dir, "delete " + p.getFileName(), () -> fs.deleteIfExists(p));
        }
    }
}
