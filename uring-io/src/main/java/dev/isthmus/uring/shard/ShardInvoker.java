package dev.isthmus.uring.shard;

import dev.isthmus.uring.IoEngine;

import java.util.function.Consumer;
import java.util.function.IntFunction;

/**
 * Runs a group of shards without threads: the caller steps each shard one loop turn at a time
 * ({@link #invoke(int)}, Agrona's {@code AgentInvoker.invoke()}), so single-shard logic is tested without threads
 * and a simulator interleaves many shards (of many simulated nodes) deterministically on its own thread.
 *
 * <pre>{@code
 * try (ShardInvoker shards = ShardInvoker.start(ShardGroupConfig.of(2).withPin(false),
 *         id -> simDisk.newEngine(), shard -> { ... per-shard set-up ... })) {
 *     shards.runOn(0, () -> ...);          // work on shard 0, as a task of its loop would
 *     while (shards.invoke(0) > 0) { }     // turns until it is idle
 * }
 * }</pre>
 *
 * <h2>Threads</h2>
 * The thread that calls {@link #start} owns every shard (their {@code checkOwner} accepts it); all calls must come
 * from it. While a turn or {@link #runOn} runs, {@link Shard#current()} answers the shard being stepped. A turn
 * never blocks: with nothing to do it returns 0, and the caller decides when to step again (after the engine's
 * next completion is due, or the shard's {@link Shard#nextTimerDeadlineNs() next timer}).
 *
 * <h2>Lifecycle</h2>
 * {@link #start} makes the engines (on the calling thread) and runs {@code init} on each shard. {@link #close}
 * runs the stop hooks and steps every shard until all are quiescent (bounded by a number of turns), then closes
 * the engines; {@link #abandon} drops everything at once (a simulated crash: nothing more completes).
 */
public final class ShardInvoker implements AutoCloseable {
    private static final int CLOSE_TURNS_MAX = 1_000_000;

    private final ShardGroup group;
    private final Thread owner = Thread.currentThread();
    private boolean closed;

    private ShardInvoker(ShardGroup group) {
        this.group = group;
    }

    /**
     * Makes {@code config.shards()} threadless shards, each with the engine {@code engines} makes for its id, and runs
     * {@code init} on each in id order.
     */
    public static ShardInvoker start(ShardGroupConfig config, IntFunction<IoEngine> engines, Consumer<Shard> init) {
        ShardGroup g = ShardGroup.threadless(config);
        ShardInvoker inv = new ShardInvoker(g);
        for (int i = 0; i < g.size(); i++) {
            g.shard(i).bind(Thread.currentThread(), engines.apply(i));
        }
        if (init != null) {
            for (int i = 0; i < g.size(); i++) {
                Shard s = g.shard(i);
                inv.runOn(i, () -> init.accept(s));
            }
        }
        return inv;
    }

    public ShardGroup group() {
        return group;
    }

    public Shard shard(int id) {
        return group.shard(id);
    }

    public int size() {
        return group.size();
    }

    private void checkOwner() {
        if (Thread.currentThread() != owner) {
            throw new IllegalStateException("stepped shards are owned by " + owner.getName() + ", called from "
                + Thread.currentThread().getName());
        }
    }

    /** One loop turn of shard {@code id} (see {@link Shard#doWork()}); returns its work count. */
    public int invoke(int id) {
        checkOwner();
        Shard s = group.shard(id);
        Shard prev = Shard.enterStepped(s);
        try {
            return s.doWork();
        } finally {
            Shard.leaveStepped(prev);
        }
    }

    /** One turn of every shard, in id order; returns the total work count. */
    public int invokeAll() {
        int work = 0;
        for (int i = 0; i < group.size(); i++) {
            work += invoke(i);
        }
        return work;
    }

    /**
     * Turns of shard {@code id} until one does no work and nothing is handed to it (at most {@code maxTurns});
     * returns the turns run.
     */
    public int invokeUntilIdle(int id, int maxTurns) {
        int turns = 0;
        while (turns < maxTurns) {
            turns++;
            if (invoke(id) == 0 && !group.shard(id).hasWorkNow()) {
                break;
            }
        }
        return turns;
    }

    /**
     * Runs {@code work} on shard {@code id} now, as a task of its loop would run (the shard is current meanwhile);
     * what it queues runs in the shard's next turns.
     */
    public void runOn(int id, Runnable work) {
        checkOwner();
        Shard s = group.shard(id);
        Shard prev = Shard.enterStepped(s);
        try {
            work.run();
        } finally {
            Shard.leaveStepped(prev);
        }
    }

    /**
     * Stops the group as {@link ShardGroup#close()} does for threads: stop hooks, turns of every shard until all are
     * quiescent (at most a million turns each), then each shard's engine closes.
     */
    @Override
    public void close() {
        checkOwner();
        if (closed) {
            return;
        }
        closed = true;
        group.markStopping();
        boolean quiet = false;
        for (int turn = 0; turn < CLOSE_TURNS_MAX && !quiet; turn++) {
            invokeAll();
            quiet = true;
            for (int i = 0; i < group.size(); i++) {
                quiet &= group.shard(i).isQuiescent();
            }
        }
        group.markTerminated();
        for (int i = 0; i < group.size(); i++) {
            int id = i;
            runOn(id, () -> group.shard(id).closeOnThread());
        }
    }

    /** Drops the shards without stopping them (their engines are crashed or thrown away by the caller). */
    public void abandon() {
        closed = true;
        group.markTerminated();
    }

    @Override
    public String toString() {
        return "ShardInvoker" + group;
    }
}
