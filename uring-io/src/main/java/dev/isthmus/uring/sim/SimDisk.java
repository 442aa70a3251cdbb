package dev.isthmus.uring.sim;

import dev.isthmus.uring.FileOps;

import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.LongConsumer;

/**
 * The storage of one simulated machine, in memory: its files and directories as the running system sees them,
 * and, separately, what a power loss would leave. Engines ({@link SimEngine}, one per shard) and the file-system
 * calls ({@link #fileOps()}) of the machine's storage work on it; {@link #crash} ends every engine and keeps what
 * the fault model says survives.
 *
 * <h2>Model</h2>
 * <pre>
 *   file (inode)   volatile bytes + size      what reads return now
 *                  durable bytes + size       what a power loss keeps for sure
 *                  completed ops, in flight   writes, truncations and size changes not yet durable
 *   namespace      volatile path -&gt; inode     what lookups see now
 *                  durable path -&gt; inode      what a power loss keeps for sure
 *                  metadata ops               creates, renames, deletes, mkdirs not yet durable (in order)
 * </pre>
 * A write changes the volatile bytes when it completes. An fdatasync makes durable the operations of its file
 * that had completed when it was queued; a directory sync the metadata operations of that directory queued before
 * it (in journal mode, any sync commits every earlier metadata operation: {@link SimFaults#strictDirectories}).
 *
 * <h2>Crashes</h2>
 * A <b>power loss</b> keeps the durable state, plus for each operation not made durable a random fate (whole, none,
 * block by block with perhaps a torn last block; see {@link SimFaults}), plus a random prefix of the metadata
 * operations (a journal commits in order). A <b>process crash</b> (kill -9) keeps everything that completed (the
 * kernel and the device still have it) and decides only the operations in flight; nothing becomes durable by it.
 * Either way queued background work is lost, and every engine of the machine stops: its operations never
 * complete, and a new engine must be made to go on (a restarted process).
 *
 * <p>Owner: the simulation's one thread. Deterministic: every random choice comes from the seed's generator, and
 * files and directories are visited in name order.
 */
public final class SimDisk {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.uring.sim");
    private static final int BLOCK = 4096;
    private static final int SECTOR = 512;

    final SimClock clock;
    final SimFaults faults;
    final SplittableRandom random;
    private final SimFileOps fileOps = new SimFileOps(this);
    private final TreeMap<Path, Inode> files = new TreeMap<>();
    private final TreeSet<Path> dirs = new TreeSet<>();
    private final TreeMap<Path, Inode> durableFiles = new TreeMap<>();
    private final TreeSet<Path> durableDirs = new TreeSet<>();
    private final ArrayList<MetaOp> metaOps = new ArrayList<>();
    private final ArrayDeque<Background> background = new ArrayDeque<>();
    private final List<SimEngine> engines = new ArrayList<>();
    private long metaSeq;
    private long completionSeq;
    private long inodeIds;
    private long crashes;
    private long modifications;
    private long lastBackgroundDueNs;
    private LongConsumer dueListener = t -> { };
    /** The last {@link #TRACE_EVENTS} namespace changes, syncs and crashes, for failure reports. */
    private final ArrayDeque<String> trace = new ArrayDeque<>();
    private static final int TRACE_EVENTS = Integer.getInteger("isthmus.sim.traceEvents", 300);

    /**
     * A new, empty disk (only the root directory).
     *
     * @param seed the seed of every random choice the disk and its engines make
     */
    public SimDisk(SimClock clock, SimFaults faults, long seed) {
        this.clock = clock;
        this.faults = faults;
        this.random = new SplittableRandom(seed);
        Path root = Path.of("/");
        dirs.add(root);
        durableDirs.add(root);
    }

    /** The disk's fault knobs (mutable: a simulator may change them while it runs). */
    public SimFaults faults() {
        return faults;
    }

    public SimClock clock() {
        return clock;
    }

    /** The machine's file-system calls over this disk. */
    public FileOps fileOps() {
        return fileOps;
    }

    /**
     * Tells {@code listener} the virtual time at which something queued on this disk (an operation of one of its
     * engines, a background task) becomes due, each time one is queued: the simulator steps the machine then.
     */
    public void onDue(LongConsumer listener) {
        this.dueListener = listener;
    }

    /** A new engine of this machine (one per shard), drawing its randomness from the disk's generator. */
    public SimEngine newEngine() {
        SimEngine e = new SimEngine(this, random.split());
        engines.add(e);
        return e;
    }

    /** Power losses and process crashes so far. */
    public long crashes() {
        return crashes;
    }

    /** Changes to the files' bytes, sizes or names so far (a checker re-reads the disk only when it moved). */
    public long modifications() {
        return modifications;
    }

    /** Notes an event in the trace (bounded). */
    public void note(String event) {
        if (trace.size() == TRACE_EVENTS) {
            trace.poll();
        }
        trace.add(String.format("%10.3fms %s", clock.nanoTime() / 1e6, event));
    }

    /** The recent namespace changes, directory syncs and crashes, oldest first (for a failure's report). */
    public String recentTrace() {
        return String.join("\n", trace);
    }

    void due(long timeNs) {
        dueListener.accept(timeNs);
    }

    static Path key(Path p) {
        return p.toAbsolutePath().normalize();
    }

    // ============================================================================================ files

    /** One file: its volatile and durable bytes and the operations between them. */
    static final class Inode {
        final long id;
        byte[] data = new byte[0];
        long size;
        byte[] durableData = new byte[0];
        long durableSize;
        long mtimeMs;
        /** Completed operations not yet durable, in completion order. */
        final ArrayList<DataOp> completed = new ArrayList<>();
        /** Operations queued and not completed, in queue order. */
        final ArrayList<DataOp> inFlight = new ArrayList<>();

        Inode(long id) {
            this.id = id;
        }

        @Override
        public String toString() {
            return "inode " + id + " (" + size + " bytes, " + durableSize + " durable)";
        }
    }

    /** A change to a file's bytes or size. */
    static final class DataOp {
        enum Kind { WRITE, SET_SIZE, GROW }

        final Kind kind;
        long position;
        byte[] bytes;
        final long size;
        long completedSeq = -1;

        DataOp(Kind kind, long position, byte[] bytes, long size) {
            this.kind = kind;
            this.position = position;
            this.bytes = bytes;
            this.size = size;
        }
    }

    Inode lookup(Path path) {
        return files.get(key(path));
    }

    boolean isDirectory(Path path) {
        return dirs.contains(key(path));
    }

    /** The names under {@code dir}, sorted (files and directories). */
    List<Path> list(Path dir) {
        Path d = key(dir);
        List<Path> out = new ArrayList<>();
        for (Path p : files.keySet()) {
            if (d.equals(p.getParent())) {
                out.add(p);
            }
        }
        for (Path p : dirs) {
            if (d.equals(p.getParent())) {
                out.add(p);
            }
        }
        out.sort(null);
        return out;
    }

    /** Opens {@code path}, creating it when {@code create}; null when it does not exist (or its parent does not). */
    Inode open(Path path, boolean create) {
        Path p = key(path);
        Inode i = files.get(p);
        if (i != null || !create) {
            return i;
        }
        if (!dirs.contains(p.getParent()) || dirs.contains(p)) {
            return null;
        }
        i = new Inode(inodeIds++);
        i.mtimeMs = clock.currentTimeMillis();
        files.put(p, i);
        meta(MetaOp.Kind.CREATE, p, null, i);
        return i;
    }

    /** Creates {@code dir} and its missing parents; false when a file is in the way. */
    boolean mkdirs(Path dir) {
        Path d = key(dir);
        if (dirs.contains(d)) {
            return true;
        }
        if (files.containsKey(d) || (d.getParent() != null && !mkdirs(d.getParent()))) {
            return false;
        }
        dirs.add(d);
        meta(MetaOp.Kind.MKDIR, d, null, null);
        return true;
    }

    boolean unlink(Path path) {
        Path p = key(path);
        if (files.remove(p) == null) {
            return false;
        }
        meta(MetaOp.Kind.UNLINK, p, null, null);
        return true;
    }

    /** Renames; returns null or what is wrong ("missing", "exists"). */
    String rename(Path from, Path to, boolean replace) {
        Path f = key(from);
        Path t = key(to);
        Inode i = files.get(f);
        if (i == null) {
            return "missing";
        }
        if (!dirs.contains(t.getParent())) {
            return "missing";
        }
        if (files.containsKey(t) && !replace) {
            return "exists";
        }
        if (f.equals(t)) {
            return null;
        }
        files.remove(f);
        files.put(t, i);
        meta(MetaOp.Kind.RENAME, f, t, i);
        return null;
    }

    // ---------------------------------------------------------------------------------- data operations

    /** Queues a data operation of {@code inode} (in flight until {@link #complete}). */
    DataOp begin(Inode inode, DataOp op) {
        inode.inFlight.add(op);
        return op;
    }

    /** Completes {@code op}: it changes the volatile bytes now. */
    void complete(Inode inode, DataOp op) {
        modifications++;
        inode.inFlight.remove(op);
        op.completedSeq = completionSeq++;
        inode.completed.add(op);
        applyTo(inode, op, false);
        inode.mtimeMs = clock.currentTimeMillis();
    }

    /** Drops an operation that failed (it changed nothing the model keeps). */
    void abandon(Inode inode, DataOp op) {
        inode.inFlight.remove(op);
    }

    /** A synchronous change (ftruncate, a buffered write): queued and completed at once. */
    void applyNow(Inode inode, DataOp op) {
        begin(inode, op);
        complete(inode, op);
    }

    long completionWatermark() {
        return completionSeq;
    }

    /** fdatasync of {@code inode} queued when the completion counter read {@code watermark} completed now. */
    void datasync(Inode inode, long watermark) {
        var it = inode.completed.iterator();
        while (it.hasNext()) {
            DataOp op = it.next();
            if (op.completedSeq >= watermark) {
                break;
            }
            applyTo(inode, op, true);
            it.remove();
        }
        if (!faults.strictDirectories) {
            commitAllMeta(); // a journal commit carries every earlier metadata change
        }
    }

    private static void applyTo(Inode i, DataOp op, boolean durable) {
        switch (op.kind) {
            case WRITE -> write(i, durable, op.position, op.bytes, 0, op.bytes.length);
            case SET_SIZE -> setSize(i, durable, op.size);
            case GROW -> {
                if (op.size > (durable ? i.durableSize : i.size)) {
                    setSize(i, durable, op.size);
                }
            }
        }
    }

    private static void write(Inode i, boolean durable, long position, byte[] src, int from, int length) {
        long end = position + length;
        byte[] a = durable ? i.durableData : i.data;
        if (end > a.length) {
            a = Arrays.copyOf(a, (int) Math.max(end, Math.min(Integer.MAX_VALUE - 8, 2L * a.length)));
            if (durable) {
                i.durableData = a;
            } else {
                i.data = a;
            }
        }
        System.arraycopy(src, from, a, (int) position, length);
        if (durable) {
            i.durableSize = Math.max(i.durableSize, end);
        } else {
            i.size = Math.max(i.size, end);
        }
    }

    private static void setSize(Inode i, boolean durable, long size) {
        byte[] a = durable ? i.durableData : i.data;
        long old = durable ? i.durableSize : i.size;
        if (size < old) {
            Arrays.fill(a, (int) size, (int) Math.min(old, a.length), (byte) 0); // growing again reads zeros
        }
        if (size > a.length) {
            a = Arrays.copyOf(a, (int) size);
            if (durable) {
                i.durableData = a;
            } else {
                i.data = a;
            }
        }
        if (durable) {
            i.durableSize = size;
        } else {
            i.size = size;
        }
    }

    /** Copies up to {@code length} volatile bytes of {@code inode} from {@code position}; returns how many. */
    static int read(Inode i, long position, byte[] dst, int length) {
        long n = Math.max(0, Math.min(length, i.size - position));
        if (n > 0) {
            System.arraycopy(i.data, (int) position, dst, 0, (int) n);
        }
        return (int) n;
    }

    long usedBytes() {
        long n = 0;
        for (Inode i : files.values()) {
            n += i.size;
        }
        return n;
    }

    // ---------------------------------------------------------------------------------- metadata

    /** A namespace change not yet durable. */
    private static final class MetaOp {
        enum Kind { MKDIR, CREATE, UNLINK, RENAME }

        final Kind kind;
        final Path a;
        final Path b;
        Inode inode;
        final long seq;
        final Set<Path> unsynced = new HashSet<>();

        MetaOp(Kind kind, Path a, Path b, Inode inode, long seq) {
            this.kind = kind;
            this.a = a;
            this.b = b;
            this.inode = inode;
            this.seq = seq;
            unsynced.add(a.getParent());
            if (b != null) {
                unsynced.add(b.getParent());
            }
        }
    }

    private void meta(MetaOp.Kind kind, Path a, Path b, Inode inode) {
        modifications++;
        note(kind + " " + a + (b != null ? " -> " + b : "") + " #" + metaSeq);
        metaOps.add(new MetaOp(kind, a, b, inode, metaSeq++));
    }

    long metaWatermark() {
        return metaSeq;
    }

    /** A sync of {@code dir} queued when the metadata counter read {@code watermark} completed now. */
    void syncDirectory(Path dir, long watermark) {
        if (!faults.strictDirectories) {
            commitAllMeta();
            return;
        }
        Path d = key(dir);
        note("SYNC " + d + " up to #" + watermark);
        for (MetaOp op : metaOps) {
            if (op.seq >= watermark) {
                break;
            }
            op.unsynced.remove(d);
        }
        foldDurableMeta();
    }

    private void commitAllMeta() {
        for (MetaOp op : metaOps) {
            op.unsynced.clear();
        }
        foldDurableMeta();
    }

    /** Applies the leading run of synced metadata operations to the durable namespace. */
    private void foldDurableMeta() {
        int n = 0;
        while (n < metaOps.size() && metaOps.get(n).unsynced.isEmpty()) {
            applyDurable(metaOps.get(n));
            n++;
        }
        metaOps.subList(0, n).clear();
    }

    private void applyDurable(MetaOp op) {
        switch (op.kind) {
            case MKDIR -> durableDirs.add(op.a);
            case CREATE -> durableFiles.put(op.a, op.inode);
            case UNLINK -> durableFiles.remove(op.a);
            case RENAME -> {
                durableFiles.remove(op.a);
                durableFiles.put(op.b, op.inode);
            }
        }
    }

    // ============================================================================================ background

    private record Background(Path dir, String what, FileOps.BackgroundTask task, long dueNs) {
    }

    void submitBackground(Path dir, String what, FileOps.BackgroundTask task) {
        long due = Math.max(lastBackgroundDueNs, clock.nanoTime() + faults.latencyNs(SimFaults.Kind.BACKGROUND, random));
        lastBackgroundDueNs = due;
        background.add(new Background(key(dir), what, task, due));
        due(due);
    }

    /** Runs the background tasks due by now, in queue order; returns how many ran. */
    int runBackground() {
        int n = 0;
        while (!background.isEmpty() && background.peek().dueNs() <= clock.nanoTime()) {
            run(background.poll());
            n++;
        }
        return n;
    }

    /** Runs queued tasks, in order, until none of {@code dir}'s is left. */
    void awaitBackground(Path dir) {
        Path d = key(dir);
        boolean any = false;
        for (Background b : background) {
            any |= b.dir().equals(d);
        }
        while (any) {
            Background b = background.poll();
            run(b);
            any = false;
            for (Background o : background) {
                any |= o.dir().equals(d);
            }
        }
    }

    int backgroundQueued() {
        return background.size();
    }

    private static void run(Background b) {
        try {
            b.task().run();
        } catch (java.io.IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "log " + b.dir() + ": could not " + b.what() + ": " + e);
        }
    }

    // ============================================================================================ crashes

    /**
     * Crashes the machine: every engine stops (its operations never complete), queued background work is lost,
     * and the files keep what the model says (see the class comment). Make new engines to restart.
     *
     * @param powerLoss true for a power loss (only what was made durable is sure to survive), false for a
     *                  process crash (everything completed survives)
     */
    public void crash(boolean powerLoss) {
        crashes++;
        modifications++;
        for (SimEngine e : engines) {
            e.crashed();
        }
        engines.clear();
        background.clear();
        lastBackgroundDueNs = 0;
        TreeMap<Path, Inode> survivors = new TreeMap<>();
        if (powerLoss) {
            int keep = metaOps.isEmpty() ? 0 : random.nextInt(metaOps.size() + 1);
            note("POWER LOSS: " + metaOps.size() + " metadata ops not synced, the first " + keep + " kept"
                + (metaOps.isEmpty() ? "" : " (#" + metaOps.get(0).seq + ".." + metaOps.get(metaOps.size() - 1).seq + ")"));
            for (int k = 0; k < metaOps.size(); k++) {
                MetaOp op = metaOps.get(k);
                if (k < keep || op.unsynced.isEmpty()) {
                    applyDurable(op);
                }
            }
            metaOps.clear();
            dirs.clear();
            dirs.addAll(durableDirs);
            // Each inode once, in name order (deterministic), even when two names reach it.
            Map<Long, Inode> fresh = new TreeMap<>();
            for (Map.Entry<Path, Inode> e : durableFiles.entrySet()) {
                Inode i = e.getValue();
                Inode n = fresh.get(i.id);
                if (n == null) {
                    n = afterPowerLoss(i);
                    fresh.put(i.id, n);
                }
                survivors.put(e.getKey(), n);
            }
            durableFiles.clear();
            durableFiles.putAll(survivors);
        } else {
            note("PROCESS CRASH");
            Map<Long, Inode> fresh = new TreeMap<>();
            for (Map.Entry<Path, Inode> e : files.entrySet()) {
                Inode i = e.getValue();
                Inode n = fresh.get(i.id);
                if (n == null) {
                    n = afterProcessCrash(i);
                    fresh.put(i.id, n);
                }
                survivors.put(e.getKey(), n);
            }
            // The durable namespace refers to the same files under their new objects.
            for (Map.Entry<Path, Inode> e : durableFiles.entrySet()) {
                Inode n = fresh.get(e.getValue().id);
                e.setValue(n != null ? n : copyDurableOnly(e.getValue()));
            }
            for (MetaOp op : metaOps) {
                // Pending metadata keeps referring to live files (a later power loss may still undo it).
                if (op.inode != null && fresh.containsKey(op.inode.id)) {
                    op.inode = fresh.get(op.inode.id);
                }
            }
        }
        files.clear();
        files.putAll(survivors);
    }

    /** The file after a power loss: its durable state plus a random fate for each operation not made durable. */
    private Inode afterPowerLoss(Inode old) {
        Inode n = new Inode(old.id);
        n.durableData = Arrays.copyOf(old.durableData, (int) Math.max(old.durableSize, 0));
        n.durableSize = old.durableSize;
        n.mtimeMs = old.mtimeMs;
        List<DataOp> undecided = new ArrayList<>(old.completed);
        undecided.addAll(old.inFlight);
        for (DataOp op : undecided) {
            decide(n, op, true);
        }
        n.data = Arrays.copyOf(n.durableData, (int) n.durableSize);
        n.size = n.durableSize;
        return n;
    }

    /** The file after a process crash: everything completed stays (not durable yet); in-flight operations decided. */
    private Inode afterProcessCrash(Inode old) {
        Inode n = new Inode(old.id);
        n.durableData = Arrays.copyOf(old.durableData, (int) old.durableSize);
        n.durableSize = old.durableSize;
        n.data = Arrays.copyOf(old.data, (int) old.size);
        n.size = old.size;
        n.mtimeMs = old.mtimeMs;
        n.completed.addAll(old.completed);
        for (DataOp op : old.inFlight) {
            DataOp landed = decide(n, op, false);
            if (landed != null) {
                landed.completedSeq = completionSeq++;
                n.completed.add(landed);
            }
        }
        return n;
    }

    private static Inode copyDurableOnly(Inode old) {
        Inode n = new Inode(old.id);
        n.durableData = Arrays.copyOf(old.durableData, (int) old.durableSize);
        n.durableSize = old.durableSize;
        n.data = Arrays.copyOf(old.data, (int) old.size);
        n.size = old.size;
        n.mtimeMs = old.mtimeMs;
        return n;
    }

    /**
     * Applies a random fate of {@code op} to {@code n} (its durable bytes after a power loss, its volatile bytes
     * after a process crash): whole, none, or block by block with perhaps a torn last block. Returns the part that
     * landed as one operation (null when nothing did).
     */
    private DataOp decide(Inode n, DataOp op, boolean durable) {
        double r = random.nextDouble();
        if (op.kind != DataOp.Kind.WRITE) {
            if (r < 0.5) {
                applyTo(n, op, durable);
                return op;
            }
            return null;
        }
        if (r < faults.crashKeepRate) {
            applyTo(n, op, durable);
            return op;
        }
        if (r < faults.crashKeepRate + faults.crashLoseRate) {
            return null;
        }
        // Block by block: each block of the write lands or not; the last one that lands may be torn.
        int len = op.bytes.length;
        int blocks = (len + BLOCK - 1) / BLOCK;
        boolean[] lands = new boolean[blocks];
        int last = -1;
        for (int b = 0; b < blocks; b++) {
            lands[b] = random.nextBoolean();
            if (lands[b]) {
                last = b;
            }
        }
        if (last < 0) {
            return null;
        }
        byte[] landed = new byte[(last + 1) * BLOCK > len ? len : (last + 1) * BLOCK];
        byte[] base = durable ? n.durableData : n.data;
        long baseSize = durable ? n.durableSize : n.size;
        // Start from what the file held there, so blocks that do not land keep their old bytes.
        for (int k = 0; k < landed.length; k++) {
            long at = op.position + k;
            landed[k] = at < baseSize && at < base.length ? base[(int) at] : 0;
        }
        for (int b = 0; b <= last; b++) {
            if (!lands[b]) {
                continue;
            }
            int from = b * BLOCK;
            int to = Math.min(len, from + BLOCK);
            if (b == last && random.nextDouble() < faults.tornBlockRate && to - from > SECTOR) {
                to = from + SECTOR * random.nextInt(1, (to - from) / SECTOR);
            }
            System.arraycopy(op.bytes, from, landed, from, to - from);
        }
        DataOp part = new DataOp(DataOp.Kind.WRITE, op.position, landed, 0);
        applyTo(n, part, durable);
        return part;
    }

    // ============================================================================================ inspection

    /** The bytes of {@code path} as reads see them now (tests and checkers), or null when it does not exist. */
    public byte[] contents(Path path) {
        Inode i = lookup(path);
        return i == null ? null : Arrays.copyOf(i.data, (int) i.size);
    }

    /** The bytes of {@code path} a power loss now would keep for sure, or null when its name is not durable. */
    public byte[] durableContents(Path path) {
        Inode i = durableFiles.get(key(path));
        return i == null ? null : Arrays.copyOf(i.durableData, (int) i.durableSize);
    }

    /** The files under {@code dir} (recursively), sorted. */
    public List<Path> filesUnder(Path dir) {
        Path d = key(dir);
        List<Path> out = new ArrayList<>();
        for (Path p : files.keySet()) {
            if (p.startsWith(d)) {
                out.add(p);
            }
        }
        return out;
    }

    @Override
    public String toString() {
        return "SimDisk{" + files.size() + " files, " + metaOps.size() + " metadata ops pending, " + crashes
            + " crashes}";
    }
}
