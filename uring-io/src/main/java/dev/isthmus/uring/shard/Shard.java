package dev.isthmus.uring.shard;

import dev.isthmus.uring.Clock;
import dev.isthmus.uring.IoEngine;
import dev.isthmus.uring.Verify;
import org.jctools.queues.atomic.MpscAtomicArrayQueue;
import org.jctools.queues.atomic.SpscAtomicArrayQueue;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.function.BooleanSupplier;
import java.util.function.Function;
import java.util.function.LongSupplier;

/**
 * One shard: a pinned platform thread that owns an {@link IoEngine} (its io_uring), a run queue of tasks, a
 * timer queue, and its ends of the cross-shard queues. Everything here is owner-thread only unless a method
 * says otherwise; code running on the shard reaches it with {@link #current()}.
 *
 * <h2>A loop turn</h2>
 * <ol>
 *   <li>reap completions already in the CQ (no system call);</li>
 *   <li>run tasks handed over by non-shard threads and cross-shard calls and replies;</li>
 *   <li>fire expired timers in deadline order;</li>
 *   <li>run local tasks until the run queue is empty or the turn's task quota
 *       ({@link ShardGroupConfig#taskQuotaNs()}) is used up, so one burst of tasks cannot starve I/O;</li>
 *   <li>run the pollers upper layers registered (the log manager's one-flush-per-turn, arena remote frees);</li>
 *   <li>submit everything queued and, only when there is nothing to do, wait in {@code io_uring_enter} with
 *       a timeout set by the next timer (busy-poll mode never waits). One kernel entry per turn.</li>
 * </ol>
 *
 * <h2>Cross-shard calls</h2>
 * Each ordered pair of shards has its own bounded SPSC queue; no locks, no shared counters. A sender marks
 * the target, and at the end of its turn (after a full fence) wakes any marked target that announced it is
 * about to sleep, with IORING_OP_MSG_RING batched into its own submission. A sleeping shard announces it,
 * fences, and re-checks its queues before it blocks, so no wakeup is lost. Back-pressure: at most
 * {@link ShardGroupConfig#crossShardDepth()} calls in flight from one shard to another; {@link #trySend}
 * refuses beyond that. Replies always fit (each queue holds twice the depth).
 *
 * <h2>Stepping</h2>
 * A shard's thread runs {@link #doWork()}-sized turns in a loop and sleeps in the kernel between them when idle.
 * A {@link ShardInvoker} (Agrona's AgentInvoker) instead runs the turns of threadless shards from a test or a
 * simulator, one at a time ({@link #doWork()} never blocks), so single-shard logic is tested without threads.
 * Time comes from the engine's {@link Clock}: the simulated engine's virtual time drives timers and deadlines.
 */
public final class Shard {

    /** Per-turn work an upper layer hooks into the loop. */
    @FunctionalInterface
    public interface Poller {
        /** Does this turn's share of work; returns how much was done (0 = nothing, the loop may sleep). */
        int poll();
    }

    private static final System.Logger LOG = System.getLogger(Shard.class.getName());
    private static final VarHandle SLEEPING;
    private static final VarHandle TASK_START;
    private static final int INBOUND_BUDGET = 256;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            SLEEPING = l.findVarHandle(Shard.class, "sleeping", int.class);
            TASK_START = l.findVarHandle(Shard.class, "taskStartNs", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final int id;
    private final ShardGroup group;
    private final ShardGroupConfig config;
    private final int shardCount;
    private final ShardStats stats = new ShardStats();

    /** The shard being stepped on this (non-shard) thread by a {@link ShardInvoker}, if any. */
    private static final ThreadLocal<Shard> STEPPED = new ThreadLocal<>();

    // Owner-thread state.
    private IoEngine engine;
    private Clock clock = Clock.SYSTEM;
    private Thread thread;
    private final ArrayDeque<Runnable> tasks = new ArrayDeque<>(1024);
    private final ArrayDeque<ShardCall> selfCalls = new ArrayDeque<>();
    private final SpscAtomicArrayQueue<ShardCall>[] inbound;
    private final SpscAtomicArrayQueue<ShardCall>[] outbound;
    private final int[] inFlightTo;
    private int callsInFlight;
    private final MpscAtomicArrayQueue<Runnable> external;
    private final RemoteView[] views;
    private final LongSupplier[] piggybackSources = new LongSupplier[RemoteView.SLOTS];
    private final boolean[] signalMarked;
    private final int[] signalList;
    private int signalCount;
    private final ArrayList<Poller> pollers = new ArrayList<>();
    private final ArrayList<Runnable> stopHooks = new ArrayList<>();
    private final ArrayList<BooleanSupplier> drainChecks = new ArrayList<>();
    private boolean stopHooksRan;
    private final TimerQueue timers = new TimerQueue();
    private long windowStartNs;
    private long windowBusyNs;
    private long busyPermille;
    private long longestTaskNs;
    private long lastInboundBatch;
    /**
     * Idle {@link FunctionCall}s of {@link #submitTo}/{@link #submitToAsync}, owner thread only. A call is taken
     * when sent and comes back here in its {@link FunctionCall#onReply} on this (its origin) shard, after its
     * last use and before the caller's promise completes: from then on neither shard references it (the
     * target's promise that it listened to has fired, and fires once), so reusing it needs no lock.
     */
    private final ArrayDeque<FunctionCall<?>> idleCalls = new ArrayDeque<>();
    /** At most this many idle calls are kept (the rest are left to the GC). */
    private static final int IDLE_CALLS_MAX = 1024;

    // Shared with other threads.
    @SuppressWarnings("unused")
    private volatile int sleeping;
    @SuppressWarnings("unused")
    private volatile long taskStartNs;
    private volatile boolean quiescent;
    private volatile long activity;
    private volatile ShardGroup.StallReport lastReport;
    final java.util.concurrent.atomic.AtomicLong blockingDetected = new java.util.concurrent.atomic.AtomicLong();
    long watchdogReportedStart;

    @SuppressWarnings("unchecked")
    Shard(int id, ShardGroup group, ShardGroupConfig config) {
        this.id = id;
        this.group = group;
        this.config = config;
        this.shardCount = config.shards();
        this.inbound = new SpscAtomicArrayQueue[shardCount];
        this.outbound = new SpscAtomicArrayQueue[shardCount];
        this.inFlightTo = new int[shardCount];
        this.views = new RemoteView[shardCount];
        for (int i = 0; i < shardCount; i++) {
            views[i] = new RemoteView();
        }
        this.signalMarked = new boolean[shardCount];
        this.signalList = new int[shardCount];
        this.external = new MpscAtomicArrayQueue<>(config.externalDepth());
    }

    void connect(int from, SpscAtomicArrayQueue<ShardCall> queue) {
        inbound[from] = queue;
    }

    void connectOut(int to, SpscAtomicArrayQueue<ShardCall> queue) {
        outbound[to] = queue;
    }

    void bind(Thread thread, IoEngine engine) {
        this.thread = thread;
        this.engine = engine;
        this.clock = engine.clock();
        long now = clock.nanoTime();
        this.windowStartNs = now;
    }

    // ------------------------------------------------------------------ identity

    /**
     * The shard running the calling thread, or null on a non-shard thread (on a thread stepping shards with a
     * {@link ShardInvoker}: the shard it is stepping, or null between steps).
     */
    public static Shard currentOrNull() {
        return Thread.currentThread() instanceof ShardGroup.ShardThread t ? t.shard() : STEPPED.get();
    }

    /** Makes {@code shard} the current one of this (stepping) thread; returns the previous one. */
    static Shard enterStepped(Shard shard) {
        Shard prev = STEPPED.get();
        STEPPED.set(shard);
        return prev;
    }

    static void leaveStepped(Shard previous) {
        if (previous == null) {
            STEPPED.remove();
        } else {
            STEPPED.set(previous);
        }
    }

    /** The shard running the calling thread. */
    public static Shard current() {
        Shard s = currentOrNull();
        if (s == null) {
            throw new IllegalStateException("not on a shard thread: " + Thread.currentThread().getName());
        }
        return s;
    }

    public int id() {
        return id;
    }

    public ShardGroup group() {
        return group;
    }

    /** This shard's I/O engine (owner thread only). */
    public IoEngine engine() {
        return engine;
    }

    /** The clock this shard's loop, timers and storage read (its engine's). */
    public Clock clock() {
        return clock;
    }

    /** Any thread: this shard's counters. */
    public ShardStats stats() {
        return stats;
    }

    /** Any thread: true when the calling thread is this shard's thread. */
    public boolean isOwnerThread() {
        return Thread.currentThread() == thread;
    }

    /** Throws unless called on this shard's thread. */
    public void checkOwner() {
        if (Thread.currentThread() != thread) {
            throw new IllegalStateException("shard " + id + " touched from " + Thread.currentThread().getName());
        }
    }

    // ------------------------------------------------------------------ tasks and timers

    /** Owner thread: runs {@code task} later on this shard, in FIFO order with other tasks. */
    public void execute(Runnable task) {
        checkOwner();
        tasks.add(task);
    }

    /** Owner thread: runs {@code task} after {@code delayNs}; returns a timer id for {@link #cancelTimer}. */
    public long schedule(long delayNs, Runnable task) {
        checkOwner();
        long timerId = timers.schedule(clock.nanoTime() + Math.max(0, delayNs), task);
        stats.set(ShardStats.TIMERS_PENDING, timers.size());
        return timerId;
    }

    /** Owner thread: cancels a timer; returns false if it already fired or was cancelled. */
    public boolean cancelTimer(long timerId) {
        checkOwner();
        boolean cancelled = timers.cancel(timerId);
        stats.set(ShardStats.TIMERS_PENDING, timers.size());
        return cancelled;
    }

    /** Owner thread: a promise completed (with null) after {@code delayNs}. */
    public Promise<Void> sleep(long delayNs) {
        Promise<Void> p = new Promise<>();
        schedule(delayNs, () -> p.complete(null));
        return p;
    }

    /** Owner thread: adds per-turn work (e.g. one flush for all logs dirtied this turn). */
    public void addPoller(Poller poller) {
        checkOwner();
        pollers.add(poller);
    }

    public boolean removePoller(Poller poller) {
        checkOwner();
        return pollers.remove(poller);
    }

    /**
     * Owner thread: {@code hook} runs on this shard when the group starts stopping (hooks run last-added
     * first). Hooks stop accepting new work (close listeners, stop recurring timers) and may start
     * asynchronous closes; the loop keeps running until the whole group is quiescent.
     */
    public void onStop(Runnable hook) {
        checkOwner();
        stopHooks.add(hook);
    }

    /** Owner thread: while stopping, the shard is not quiescent until {@code drained} answers true. */
    public void addDrainCheck(BooleanSupplier drained) {
        checkOwner();
        drainChecks.add(drained);
    }

    /**
     * Owner thread: publishes {@code source} in piggyback slot {@code slot} (>= {@link RemoteView#FIRST_USER_SLOT})
     * of every reply this shard sends.
     */
    public void publishPiggyback(int slot, LongSupplier source) {
        checkOwner();
        if (slot < RemoteView.FIRST_USER_SLOT || slot >= RemoteView.SLOTS) {
            throw new IllegalArgumentException("piggyback slot must be in [" + RemoteView.FIRST_USER_SLOT + ", "
                + RemoteView.SLOTS + "), got " + slot);
        }
        piggybackSources[slot] = source;
    }

    /** Owner thread: this shard's possibly-stale view of shard {@code other}, from its replies. */
    public RemoteView view(int other) {
        return views[other];
    }

    // ------------------------------------------------------------------ cross-shard calls

    /**
     * Owner thread: sends {@code call} to shard {@code target} (which may be this shard). Returns false,
     * without sending, when {@link ShardGroupConfig#crossShardDepth()} calls to that shard are already in
     * flight: the caller decides whether to retry later, shed load or fail its request.
     */
    public boolean trySend(int target, ShardCall call) {
        checkOwner();
        Verify.that(!call.inFlight, "a ShardCall is sent again before its reply arrived");
        if (target < 0 || target >= shardCount) {
            throw new IllegalArgumentException("no shard " + target + " in a group of " + shardCount);
        }
        if (inFlightTo[target] >= config.crossShardDepth()) {
            stats.add(ShardStats.SENDS_REFUSED, 1);
            return false;
        }
        call.origin = id;
        call.target = target;
        call.replying = false;
        call.inFlight = true;
        inFlightTo[target]++;
        callsInFlight++;
        stats.add(ShardStats.CALLS_SENT, 1);
        if (target == id) {
            selfCalls.add(call);
        } else {
            Verify.that(outbound[target].offer(call), "cross-shard queue overflow despite the in-flight bound");
            markSignal(target);
        }
        return true;
    }

    /** Owner thread: true if a call to {@code target} would be accepted now. */
    public boolean canSend(int target) {
        return inFlightTo[target] < config.crossShardDepth();
    }

    /** Owner thread: calls in flight to {@code target}. */
    public int inFlightTo(int target) {
        return inFlightTo[target];
    }

    /**
     * Target-shard thread: sends the reply of a call whose {@link ShardCall#onTarget} returned false. Also
     * stamps this shard's piggybacked metadata into the call.
     */
    public void reply(ShardCall call) {
        checkOwner();
        Verify.that(call.target == id && call.inFlight && !call.replying, "reply to a call not in flight here");
        call.replying = true;
        long[] pb = call.piggyback;
        pb[RemoteView.TASK_QUEUE_DEPTH] = tasks.size();
        pb[RemoteView.INBOUND_DEPTH] = lastInboundBatch;
        pb[RemoteView.LOOP_BUSY_PERMILLE] = busyPermille;
        for (int s = RemoteView.FIRST_USER_SLOT; s < RemoteView.SLOTS; s++) {
            LongSupplier src = piggybackSources[s];
            pb[s] = src == null ? 0 : src.getAsLong();
        }
        if (call.origin == id) {
            selfCalls.add(call);
        } else {
            Verify.that(outbound[call.origin].offer(call), "reply queue overflow despite the in-flight bound");
            markSignal(call.origin);
        }
    }

    /**
     * Owner thread: runs {@code fn} on shard {@code target} and completes the returned promise with its result
     * (or what it threw) back on this shard. Fails at once with {@link ShardBusyException} when the target's
     * in-flight bound is reached.
     */
    public <T> Promise<T> submitTo(int target, Function<Shard, T> fn) {
        return send(target, fn, null);
    }

    /** Like {@link #submitTo} for work that is itself asynchronous on the target shard. */
    public <T> Promise<T> submitToAsync(int target, Function<Shard, Promise<T>> fn) {
        return send(target, null, fn);
    }

    @SuppressWarnings("unchecked")
    private <T> Promise<T> send(int target, Function<Shard, T> syncFn, Function<Shard, Promise<T>> asyncFn) {
        checkOwner();
        FunctionCall<T> call = (FunctionCall<T>) idleCalls.pollLast();
        if (call == null) {
            call = new FunctionCall<>();
        }
        Promise<T> promise = new Promise<>();
        call.arm(syncFn, asyncFn, promise);
        if (!trySend(target, call)) {
            call.disarm();
            recycle(call);
            return Promise.failed(new ShardBusyException(id, target, config.crossShardDepth()));
        }
        return promise;
    }

    /** Owner (origin) thread: keeps a call whose last use is over for the next {@link #send}. */
    private void recycle(FunctionCall<?> call) {
        if (idleCalls.size() < IDLE_CALLS_MAX) {
            idleCalls.addLast(call);
        }
    }

    /**
     * The call object of {@link #submitTo}/{@link #submitToAsync}, pooled by its origin shard ({@link #idleCalls}).
     *
     * <p>Ownership: the origin shard takes it from its pool in {@link #send} and arms it; from {@link #trySend}
     * until its reply is dispatched the target shard owns it (for asynchronous work it is also the listener of
     * the target's promise, which fires once and is then done with it); {@link #onReply} runs on the origin,
     * copies the outcome and the caller's promise to locals, clears every field and returns the call to the
     * pool before it completes the promise, so a continuation that sends a new call may reuse this very object.
     * Nothing else keeps a reference to it: the caller only ever sees the promise.
     */
    private static final class FunctionCall<T> extends ShardCall implements Promise.Listener<T> {
        Function<Shard, T> syncFn;
        Function<Shard, Promise<T>> asyncFn;
        Promise<T> promise;
        /** The target shard, while the asynchronous work runs there. */
        Shard targetShard;
        T value;
        Throwable failure;

        void arm(Function<Shard, T> syncFn, Function<Shard, Promise<T>> asyncFn, Promise<T> promise) {
            this.syncFn = syncFn;
            this.asyncFn = asyncFn;
            this.promise = promise;
        }

        void disarm() {
            syncFn = null;
            asyncFn = null;
            promise = null;
            targetShard = null;
            value = null;
            failure = null;
        }

        @Override
        protected boolean onTarget(Shard shard) {
            try {
                if (syncFn != null) {
                    value = syncFn.apply(shard);
                    return true;
                }
                Promise<T> p = asyncFn.apply(shard);
                if (p.isDone()) {
                    value = p.isSucceeded() ? p.value() : null;
                    failure = p.failure();
                    return true;
                }
                targetShard = shard;
                p.whenComplete(this);
                return false;
            } catch (Throwable t) {
                failure = t;
                return true;
            }
        }

        /** Target thread: the asynchronous work completed. */
        @Override
        public void onComplete(T v, Throwable f) {
            value = v;
            failure = f;
            Shard shard = targetShard;
            targetShard = null;
            shard.reply(this);
        }

        @Override
        protected void onReply(Shard shard) {
            Promise<T> p = promise;
            T v = value;
            Throwable f = failure;
            disarm();
            shard.recycle(this);
            p.completeWith(v, f);
        }
    }

    // ------------------------------------------------------------------ non-shard threads

    /** Any thread: queues {@code task} for this shard; false if its external queue is full or it has stopped. */
    boolean offerExternal(Runnable task) {
        if (group.isTerminated() || !external.offer(task)) {
            return false;
        }
        VarHandle.fullFence();
        if ((int) SLEEPING.getVolatile(this) != 0) {
            engine.wakeup();
        }
        return true;
    }

    /** Any thread: wakes the loop if it sleeps. */
    void wake() {
        IoEngine e = engine;
        if (e != null && !group.isTerminated()) {
            e.wakeup();
        }
    }

    // ------------------------------------------------------------------ the loop

    void run() {
        while (!group.isTerminated()) {
            long t0 = clock.nanoTime();
            int completions = engine.reap();
            int handed = turn(t0, completions);
            int work = handed + completions;
            long idle = 0;
            if (work > 0 || !tasks.isEmpty() || !selfCalls.isEmpty() || config.busyPoll()) {
                completions += engine.submitAndWait(0);
            } else {
                long waitNs = idleWaitNs(t0);
                SLEEPING.setVolatile(this, 1);
                VarHandle.fullFence();
                if (hasHandedWork() || group.isTerminated()) {
                    SLEEPING.setVolatile(this, 0);
                    completions += engine.submitAndWait(0);
                } else {
                    long w0 = clock.nanoTime();
                    completions += engine.submitAndWait(waitNs);
                    idle = clock.nanoTime() - w0;
                    SLEEPING.setVolatile(this, 0);
                    stats.add(ShardStats.KERNEL_WAITS, 1);
                }
            }
            endTurn(t0, completions, idle);
        }
    }

    /**
     * One loop turn without waiting (Agrona's {@code Agent.doWork}): reap completions, run handed-over work, due
     * timers, tasks within the quota and the pollers, then submit what they queued. Never blocks; for a shard
     * stepped by a {@link ShardInvoker} (on the invoker's thread), not for one running its own thread.
     *
     * @return the work done (0: the shard was idle; a stepping caller may stop stepping it until something is due)
     */
    public int doWork() {
        checkOwner();
        long t0 = clock.nanoTime();
        int completions = engine.reap();
        int work = turn(t0, completions) + completions;
        int submitted = engine.submitAndWait(0);
        endTurn(t0, completions + submitted, 0);
        return work + submitted;
    }

    /** The part of a turn before the kernel entry; returns the work done besides the reaped completions. */
    private int turn(long t0, int completions) {
        int work = 0;
        int handed = drainExternal() + drainInbound();
        work += handed;
        work += pollTimers();
        int ran = runTasks(t0);
        work += ran;
        for (int i = 0; i < pollers.size(); i++) {
            try {
                work += pollers.get(i).poll();
            } catch (Throwable t) {
                reportUncaught(t); // a poller's bug is reported like a task's; the loop goes on
            }
        }
        if (group.isStopping()) {
            work += stopping(handed + ran);
        }
        flushSignals();
        stats.set(ShardStats.TASK_QUEUE_DEPTH, tasks.size());
        stats.set(ShardStats.CALLS_IN_FLIGHT, callsInFlight);
        stats.set(ShardStats.BLOCKING_DETECTED, blockingDetected.getOpaque());
        stats.add(ShardStats.LOOP_TURNS, 1);
        return work;
    }

    private void endTurn(long t0, int completions, long idle) {
        long t1 = clock.nanoTime();
        stats.add(ShardStats.COMPLETIONS, completions);
        stats.add(ShardStats.BUSY_NS, t1 - t0 - idle);
        stats.add(ShardStats.IDLE_NS, idle);
        windowBusyNs += t1 - t0 - idle;
        if (t1 - windowStartNs >= 10_000_000L) {
            busyPermille = windowBusyNs * 1000 / (t1 - windowStartNs);
            windowBusyNs = 0;
            windowStartNs = t1;
        }
    }

    /** Whether the shard has work it could do now without waiting for anything (a stepping caller steps again). */
    public boolean hasWorkNow() {
        return !tasks.isEmpty() || hasHandedWork() || (timers.size() > 0 && timers.nextDeadline() <= clock.nanoTime());
    }

    /** The deadline of the earliest timer ({@link Clock#nanoTime()} of this shard's clock), or Long.MAX_VALUE. */
    public long nextTimerDeadlineNs() {
        return timers.size() > 0 ? timers.nextDeadline() : Long.MAX_VALUE;
    }

    /** The shutdown tail on the shard thread: drop timers, close the engine (in-flight I/O is cancelled). */
    void closeOnThread() {
        // Tasks handed over just before the end still run, so callers waiting on them are answered.
        Runnable r;
        while ((r = external.poll()) != null) {
            runTask(r);
        }
        timers.clear();
        if (engine != null) {
            engine.close();
        }
    }

    private int stopping(int handedOrRan) {
        int work = 0;
        if (!stopHooksRan) {
            stopHooksRan = true;
            for (int i = stopHooks.size() - 1; i >= 0; i--) {
                runTask(stopHooks.get(i));
            }
            work++;
        }
        if (handedOrRan > 0) {
            activity = activity + 1;
        }
        boolean q = tasks.isEmpty() && selfCalls.isEmpty() && callsInFlight == 0 && !hasHandedWork();
        for (int i = 0; q && i < drainChecks.size(); i++) {
            q = drainChecks.get(i).getAsBoolean();
        }
        quiescent = q;
        return work;
    }

    boolean isQuiescent() {
        return quiescent;
    }

    long activity() {
        return activity;
    }

    private boolean hasHandedWork() {
        if (!external.isEmpty() || !selfCalls.isEmpty()) {
            return true;
        }
        for (int s = 0; s < shardCount; s++) {
            if (s != id && !inbound[s].isEmpty()) {
                return true;
            }
        }
        return false;
    }

    private long idleWaitNs(long nowNs) {
        long wait = config.maxIdleWaitNs();
        if (timers.size() > 0) {
            wait = Math.min(wait, Math.max(1_000L, timers.nextDeadline() - clock.nanoTime()));
        }
        if (group.isStopping()) {
            wait = Math.min(wait, 1_000_000L);
        }
        return wait;
    }

    private int drainExternal() {
        int n = 0;
        Runnable r;
        while (n < INBOUND_BUDGET && (r = external.poll()) != null) {
            runTask(r);
            n++;
        }
        if (n > 0) {
            stats.add(ShardStats.EXTERNAL_TASKS, n);
        }
        return n;
    }

    private int drainInbound() {
        int n = 0;
        long now = clock.nanoTime();
        for (int s = 0; s < shardCount; s++) {
            if (s == id) {
                continue;
            }
            SpscAtomicArrayQueue<ShardCall> q = inbound[s];
            ShardCall c;
            int budget = INBOUND_BUDGET;
            while (budget-- > 0 && (c = q.relaxedPoll()) != null) {
                dispatch(c, now);
                n++;
            }
        }
        lastInboundBatch = n;
        int self = selfCalls.size();
        for (int i = 0; i < self; i++) {
            dispatch(selfCalls.poll(), now);
            n++;
        }
        return n;
    }

    private void dispatch(ShardCall c, long nowNs) {
        if (c.replying) {
            int from = c.target;
            inFlightTo[from]--;
            callsInFlight--;
            c.inFlight = false;
            views[from].update(c.piggyback, nowNs);
            stats.add(ShardStats.REPLIES_RECEIVED, 1);
            long start = beginTask();
            try {
                c.onReply(this);
            } catch (Throwable t) {
                reportUncaught(t);
            }
            endTask(start, c);
        } else {
            stats.add(ShardStats.CALLS_RECEIVED, 1);
            boolean replyNow;
            long start = beginTask();
            try {
                replyNow = c.onTarget(this);
            } catch (Throwable t) {
                reportUncaught(t);
                replyNow = true;
            }
            endTask(start, c);
            if (replyNow) {
                reply(c);
            }
        }
    }

    private int runTasks(long turnStartNs) {
        int n = 0;
        Runnable r;
        while ((r = tasks.poll()) != null) {
            runTask(r);
            n++;
            if (clock.nanoTime() - turnStartNs >= config.taskQuotaNs()) {
                break;
            }
        }
        return n;
    }

    private void runTask(Runnable r) {
        long start = beginTask();
        try {
            r.run();
        } catch (Throwable t) {
            reportUncaught(t);
        }
        endTask(start, r);
    }

    private long beginTask() {
        long start = clock.nanoTime();
        TASK_START.setOpaque(this, start);
        return start;
    }

    /** A stall the watchdog reported is reported again at its end when it ran this many stall thresholds longer. */
    static final long LONG_STALL_FACTOR = 50;

    private void endTask(long startNs, Object what) {
        long d = clock.nanoTime() - startNs;
        TASK_START.setOpaque(this, 0L);
        stats.add(ShardStats.TASKS_RUN, 1);
        if (d > longestTaskNs) {
            longestTaskNs = d;
            stats.set(ShardStats.LONGEST_TASK_NS, d);
        }
        if (d > config.taskQuotaNs()) {
            stats.add(ShardStats.QUOTA_VIOLATIONS, 1);
            if (d > config.stallReportNs()) {
                stats.add(ShardStats.STALLS, 1);
                ShardGroup.StallReport seen = lastReport;
                // Reported after the fact unless the watchdog saw it running; again if it went on far longer than
                // the watchdog saw (it reports a task once, early: a 7-8 s task that opened a node's replicas showed
                // as one 21 ms line in bench/chaos logs).
                if (seen == null || seen.taskStartNs() != startNs
                    || d - seen.durationNs() >= LONG_STALL_FACTOR * config.stallReportNs()) {
                    report(new ShardGroup.StallReport(id, ShardGroup.StallKind.STALL, startNs, d,
                        what.getClass().getName(), null));
                }
            }
        }
    }

    /** Any thread: the start time of the task running now, or 0 between tasks. */
    long taskStartNs() {
        return (long) TASK_START.getOpaque(this);
    }

    Thread thread() {
        return thread;
    }

    void report(ShardGroup.StallReport r) {
        lastReport = r;
        group.stallListener().accept(r);
    }

    /** Any thread: the last stall, quota or blocking report of this shard, or null. */
    public ShardGroup.StallReport lastReport() {
        return lastReport;
    }

    /** Owner thread: a throwable escaped a task or a listener: a bug, reported and counted, the loop goes on. */
    public void reportUncaught(Throwable t) {
        stats.add(ShardStats.UNCAUGHT_ERRORS, 1);
        group.uncaughtHandler().uncaughtException(thread, t);
    }

    private int pollTimers() {
        if (timers.size() == 0) {
            return 0;
        }
        long now = clock.nanoTime();
        int fired = 0;
        Runnable task;
        // Only timers due at the start of this pass fire now; ones their tasks schedule wait for the next turn.
        while ((task = timers.pollExpired(now)) != null) {
            runTask(task);
            fired++;
        }
        if (fired > 0) {
            stats.add(ShardStats.TIMERS_FIRED, fired);
            stats.set(ShardStats.TIMERS_PENDING, timers.size());
        }
        return fired;
    }

    private void markSignal(int target) {
        if (!signalMarked[target]) {
            signalMarked[target] = true;
            signalList[signalCount++] = target;
        }
    }

    private void flushSignals() {
        if (signalCount == 0) {
            return;
        }
        VarHandle.fullFence();
        for (int i = 0; i < signalCount; i++) {
            int t = signalList[i];
            signalMarked[t] = false;
            Shard target = group.shard(t);
            if ((int) SLEEPING.getVolatile(target) != 0) {
                engine.signal(target.engine);
            }
        }
        signalCount = 0;
    }

    @Override
    public String toString() {
        return "Shard{" + id + ", tasks=" + stats.get(ShardStats.TASKS_RUN) + ", turns="
            + stats.get(ShardStats.LOOP_TURNS) + "}";
    }
}
