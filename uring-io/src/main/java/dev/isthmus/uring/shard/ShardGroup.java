package dev.isthmus.uring.shard;

import dev.isthmus.ffi.Errno;
import dev.isthmus.ffi.Libc;
import dev.isthmus.uring.IoEngine;
import org.jctools.queues.atomic.SpscAtomicArrayQueue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The thread-per-core runtime: N shard threads, each pinned to its own CPU (optional), each owning its ring,
 * started together and stopped together.
 *
 * <pre>{@code
 * try (ShardGroup group = ShardGroup.start(ShardGroupConfig.of(4), shard -> { ... per-shard set-up ... })) {
 *     int sum = group.call(0, s -> s.submitTo(1, t -> t.id() + 41)).join().join();
 * }
 * }</pre>
 *
 * <h2>Threads</h2>
 * The start-up and close paths and {@link #execute}/{@link #call} are for non-shard threads (main, tests,
 * admin tools); shard code talks to other shards with {@link Shard#trySend}/{@link Shard#submitTo}. A watchdog
 * thread (not a shard) samples the shards for stalls and, in debug mode, for blocking calls.
 *
 * <h2>Shutdown</h2>
 * {@link #close()} runs every shard's stop hooks on its thread, lets the loops run until every shard is
 * quiescent at once (no tasks, no calls in flight, no queued messages, every drain check satisfied — checked
 * twice with no activity in between), then terminates the loops and closes each ring on its own thread. Work
 * in flight at close therefore finishes; only if it does not within
 * {@link ShardGroupConfig#drainTimeoutNs()} is the rest cancelled (and said so in the log).
 */
public final class ShardGroup implements AutoCloseable {

    /** What the watchdog or the loop reports. */
    public enum StallKind {
        /** A task ran longer than the stall threshold (reported while running, with its stack, or after). */
        STALL,
        /** Debug mode: a shard thread was parked, waiting or blocked on a monitor inside a task. */
        BLOCKING
    }

    /**
     * One report.
     *
     * @param taskStartNs System.nanoTime when the offending task started
     * @param durationNs  how long it had run when reported
     * @param task        the task's class, or the thread state for a blocking report
     * @param stack       the shard thread's stack when the watchdog saw it, or null when reported after the fact
     */
    public record StallReport(int shard, StallKind kind, long taskStartNs, long durationNs, String task,
                              StackTraceElement[] stack) {
        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder("shard ").append(shard).append(' ')
                .append(kind == StallKind.STALL ? "stalled" : "blocked").append(" for ")
                .append(durationNs / 1_000_000.0).append(" ms in ").append(task);
            if (stack != null) {
                for (StackTraceElement e : stack) {
                    sb.append("\n\tat ").append(e);
                }
            }
            return sb.toString();
        }
    }

    /** A shard's platform thread. */
    static final class ShardThread extends Thread {
        private final Shard shard;

        ShardThread(Shard shard, Runnable body) {
            super(null, body, "shard-" + shard.id(), 0, false);
            this.shard = shard;
            setDaemon(true);
        }

        Shard shard() {
            return shard;
        }
    }

    private static final System.Logger LOG = System.getLogger(ShardGroup.class.getName());

    private final ShardGroupConfig config;
    private final Shard[] shards;
    private final ShardThread[] threads;
    private final int[] cpus;
    private volatile boolean stopping;
    private volatile boolean terminated;
    private volatile Consumer<StallReport> stallListener = r -> LOG.log(System.Logger.Level.WARNING, r.toString());
    private volatile Thread.UncaughtExceptionHandler uncaughtHandler = (t, e) ->
        LOG.log(System.Logger.Level.ERROR, "uncaught in a task on " + t.getName(), e);
    private final Thread watchdog;
    private boolean closed;

    private ShardGroup(ShardGroupConfig config) {
        this.config = config;
        int n = config.shards();
        this.shards = new Shard[n];
        this.threads = new ShardThread[n];
        for (int i = 0; i < n; i++) {
            shards[i] = new Shard(i, this, config);
        }
        int capacity = Math.max(2, 2 * config.crossShardDepth());
        for (int from = 0; from < n; from++) {
            for (int to = 0; to < n; to++) {
                if (from != to) {
                    SpscAtomicArrayQueue<ShardCall> q = new SpscAtomicArrayQueue<>(capacity);
                    shards[from].connectOut(to, q);
                    shards[to].connect(from, q);
                }
            }
        }
        int[] allowed = Libc.allowedCpus();
        if (config.pin() && allowed.length < n) {
            throw new IllegalArgumentException("cannot pin " + n + " shards to distinct CPUs: this process may use only "
                + allowed.length + " (" + java.util.Arrays.toString(allowed) + "); use fewer shards or turn pinning off");
        }
        this.cpus = allowed;
        this.watchdog = new Thread(this::watch, "shard-watchdog");
        watchdog.setDaemon(true);
    }

    /**
     * Starts the shards. Each creates its engine on its own thread, then runs {@code init} on that thread before
     * its first loop turn (register pollers, stop hooks, listeners); the call returns once every shard has
     * initialised. Messages other shards send meanwhile wait in the queues until the target's loop starts.
     *
     * @throws IllegalStateException a shard could not pin itself or create its ring (the message says why);
     *                               the shards already started are stopped again
     */
    public static ShardGroup start(ShardGroupConfig config, Consumer<Shard> init) {
        ShardGroup g = new ShardGroup(config);
        g.startThreads(init == null ? s -> { } : init);
        return g;
    }

    private void startThreads(Consumer<Shard> init) {
        int n = shards.length;
        CountDownLatch ready = new CountDownLatch(n);
        CountDownLatch go = new CountDownLatch(1);
        CountDownLatch initialized = new CountDownLatch(n);
        Throwable[] failures = new Throwable[n];
        for (int i = 0; i < n; i++) {
            Shard shard = shards[i];
            int index = i;
            threads[i] = new ShardThread(shard, () -> {
                IoEngine engine;
                try {
                    if (config.pin()) {
                        int rc = Libc.pinCurrentThread(cpus[index]);
                        if (rc < 0) {
                            throw new IllegalStateException("shard " + index + " cannot pin itself to CPU " + cpus[index]
                                + ": " + Errno.describe(rc));
                        }
                    }
                    engine = IoEngine.create(config.backend(), config.ring());
                    shard.bind(Thread.currentThread(), engine);
                } catch (Throwable t) {
                    failures[index] = t;
                    ready.countDown();
                    return;
                }
                ready.countDown();
                try {
                    go.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                try {
                    if (!terminated) {
                        try {
                            init.accept(shard);
                        } catch (Throwable t) {
                            failures[index] = t;
                            terminated = true;
                        } finally {
                            initialized.countDown();
                        }
                        shard.run();
                    }
                } catch (Throwable t) {
                    LOG.log(System.Logger.Level.ERROR, "shard " + index + " loop failed; the group stops", t);
                    terminated = true;
                    for (Shard s : shards) {
                        s.wake();
                    }
                } finally {
                    shard.closeOnThread();
                }
            });
            threads[i].start();
        }
        awaitUninterruptibly(ready);
        Throwable first = null;
        for (Throwable f : failures) {
            if (f != null && first == null) {
                first = f;
            }
        }
        if (first != null) {
            terminated = true;
            go.countDown();
            joinAll();
            throw new IllegalStateException("shard group failed to start: " + first.getMessage(), first);
        }
        go.countDown();
        awaitUninterruptibly(initialized);
        for (Throwable f : failures) {
            if (f != null) {
                for (Shard s : shards) {
                    s.wake();
                }
                joinAll();
                throw new IllegalStateException("shard group failed to initialise: " + f.getMessage(), f);
            }
        }
        watchdog.start();
    }

    private static void awaitUninterruptibly(CountDownLatch latch) {
        boolean interrupted = false;
        while (true) {
            try {
                latch.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    public int size() {
        return shards.length;
    }

    public Shard shard(int id) {
        return shards[id];
    }

    public ShardGroupConfig config() {
        return config;
    }

    /** The CPU shard {@code id} is pinned to, or -1 when pinning is off. */
    public int cpuOf(int id) {
        return config.pin() ? cpus[id] : -1;
    }

    boolean isStopping() {
        return stopping;
    }

    /** Whether the shards stopped (or are stopping their loops): none runs a task of this group again. */
    public boolean isTerminated() {
        return terminated;
    }

    /** A group whose shards run no threads of their own: a {@link ShardInvoker} steps them. */
    static ShardGroup threadless(ShardGroupConfig config) {
        if (config.pin()) {
            throw new IllegalArgumentException("stepped shards run on the invoker's thread; they cannot be pinned");
        }
        return new ShardGroup(config);
    }

    /** Stepped groups: the invoker starts and ends the stop the way {@link #close()} does for threads. */
    void markStopping() {
        stopping = true;
    }

    void markTerminated() {
        terminated = true;
    }

    /** Replaces the receiver of stall and blocking reports (default: a warning in the log). */
    public void onStall(Consumer<StallReport> listener) {
        this.stallListener = listener;
    }

    Consumer<StallReport> stallListener() {
        return stallListener;
    }

    /** Replaces the receiver of throwables that escape tasks (default: an error in the log). */
    public void onUncaught(Thread.UncaughtExceptionHandler handler) {
        this.uncaughtHandler = handler;
    }

    Thread.UncaughtExceptionHandler uncaughtHandler() {
        return uncaughtHandler;
    }

    /**
     * Any thread: queues {@code task} on shard {@code id}.
     *
     * @throws RejectedExecutionException the shard's external queue is full or the group has stopped
     */
    public void execute(int id, Runnable task) {
        if (!shards[id].offerExternal(task)) {
            throw new RejectedExecutionException(terminated ? "shard group is stopped"
                : "shard " + id + " external queue is full (" + config.externalDepth() + " tasks)");
        }
    }

    /**
     * Non-shard threads: runs {@code fn} on shard {@code id} and returns its result as a CompletableFuture
     * completed from the shard thread (a failed future if {@code fn} throws or the task is rejected).
     */
    public <T> CompletableFuture<T> call(int id, Function<Shard, T> fn) {
        CompletableFuture<T> f = new CompletableFuture<>();
        try {
            execute(id, () -> {
                try {
                    f.complete(fn.apply(shards[id]));
                } catch (Throwable t) {
                    f.completeExceptionally(t);
                }
            });
        } catch (RejectedExecutionException e) {
            f.completeExceptionally(e);
        }
        return f;
    }

    /** Non-shard threads: like {@link #call} for asynchronous work; the future follows the returned promise. */
    public <T> CompletableFuture<T> callAsync(int id, Function<Shard, Promise<T>> fn) {
        CompletableFuture<T> f = new CompletableFuture<>();
        try {
            execute(id, () -> {
                try {
                    fn.apply(shards[id]).whenComplete((v, t) -> {
                        if (t != null) {
                            f.completeExceptionally(t);
                        } else {
                            f.complete(v);
                        }
                    });
                } catch (Throwable t) {
                    f.completeExceptionally(t);
                }
            });
        } catch (RejectedExecutionException e) {
            f.completeExceptionally(e);
        }
        return f;
    }

    /** Stops the group as described in the class comment. Idempotent; not callable from a shard thread. */
    @Override
    public void close() {
        if (Shard.currentOrNull() != null) {
            throw new IllegalStateException("ShardGroup.close() called from a shard thread; it waits for the shards");
        }
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
        }
        stopping = true;
        for (Shard s : shards) {
            s.wake();
        }
        long deadline = System.nanoTime() + config.drainTimeoutNs();
        boolean drained = false;
        while (!terminated && System.nanoTime() < deadline) {
            long[] before = new long[shards.length];
            boolean all = true;
            for (int i = 0; i < shards.length; i++) {
                before[i] = shards[i].activity();
                all &= shards[i].isQuiescent();
            }
            if (all) {
                LockSupport.parkNanos(2_000_000L);
                boolean still = true;
                for (int i = 0; i < shards.length; i++) {
                    still &= shards[i].isQuiescent() && shards[i].activity() == before[i];
                }
                if (still) {
                    drained = true;
                    break;
                }
            } else {
                LockSupport.parkNanos(1_000_000L);
            }
        }
        if (!drained && !terminated) {
            LOG.log(System.Logger.Level.WARNING, "shard group did not drain within "
                + TimeUnit.NANOSECONDS.toMillis(config.drainTimeoutNs()) + " ms; closing with work in flight");
        }
        for (Shard s : shards) {
            s.wake();
        }
        // Stopping shards wait at most 1 ms in the kernel, so they see this without a wakeup (a wakeup racing
        // with a shard closing its ring would write to a closed eventfd).
        terminated = true;
        joinAll();
        watchdog.interrupt();
        try {
            watchdog.join(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Waits for every shard thread to end, at most {@link #JOIN_WAIT_NS} in all (interrupts do not cut it short; they
     * are kept). A shard thread still alive then is stuck in a task: its stack is logged and close() returns rather
     * than wait for ever (the threads are daemons, and a test that stops a broker fails instead of hanging).
     */
    private void joinAll() {
        long deadline = System.nanoTime() + JOIN_WAIT_NS;
        boolean interrupted = false;
        for (ShardThread t : threads) {
            if (t == null) {
                continue;
            }
            while (t.isAlive()) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    StringBuilder stack = new StringBuilder();
                    for (StackTraceElement e : t.getStackTrace()) {
                        stack.append("\n\tat ").append(e);
                    }
                    LOG.log(System.Logger.Level.ERROR, "shard thread " + t.getName() + " did not end within "
                        + TimeUnit.NANOSECONDS.toSeconds(JOIN_WAIT_NS) + " s of the group's close; it is left"
                        + " running, stuck in:" + stack);
                    break;
                }
                try {
                    t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** How long {@link #close()} waits for the shard threads to end once they were told to. */
    static final long JOIN_WAIT_NS = TimeUnit.SECONDS.toNanos(60);

    /** The watchdog: samples each shard's running task; never touches shard state beyond opaque reads. */
    private void watch() {
        long periodNs = config.detectBlocking() ? 1_000_000L
            : Math.max(1_000_000L, Math.min(config.stallReportNs() / 4, 10_000_000L));
        while (!terminated && !Thread.currentThread().isInterrupted()) {
            LockSupport.parkNanos(periodNs);
            long now = System.nanoTime();
            for (Shard s : shards) {
                long start = s.taskStartNs();
                if (start == 0 || s.watchdogReportedStart == start) {
                    continue;
                }
                Thread t = s.thread();
                if (config.detectBlocking()) {
                    Thread.State st = t.getState();
                    if (st == Thread.State.WAITING || st == Thread.State.TIMED_WAITING || st == Thread.State.BLOCKED) {
                        StackTraceElement[] stack = t.getStackTrace();
                        if (s.taskStartNs() == start) {
                            s.watchdogReportedStart = start;
                            s.blockingDetected.incrementAndGet();
                            s.report(new StallReport(s.id(), StallKind.BLOCKING, start, now - start, st.name(), stack));
                        }
                        continue;
                    }
                }
                if (now - start > config.stallReportNs()) {
                    StackTraceElement[] stack = t.getStackTrace();
                    if (s.taskStartNs() == start) {
                        s.watchdogReportedStart = start;
                        s.report(new StallReport(s.id(), StallKind.STALL, start, now - start,
                            stack.length > 0 ? stack[0].toString() : "?", stack));
                    }
                }
            }
        }
    }

    /** The shards' ids as a list (for loops in tests and set-up code). */
    public List<Shard> shards() {
        return List.of(shards);
    }

    @Override
    public String toString() {
        List<String> parts = new ArrayList<>();
        for (Shard s : shards) {
            parts.add(s.toString());
        }
        return "ShardGroup" + parts;
    }
}
