package dev.isthmus.bench.chaos;

import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;

/**
 * Injects the faults of the {@link Schedule} one at a time: waits the step's quiet time, picks the victims,
 * injects the fault ({@code fault-start} event with the nodes and what was done), waits its duration, undoes
 * it ({@code fault-end}: the node restarted, resumed, the network healed, the disk freed), then restores
 * anything still off and waits until restarted nodes have caught up ({@code recovered}, with whether they did
 * and how long it took). Faults never overlap. Runs until its deadline, or for {@code cycles} faults.
 *
 * <p>A fault whose undoing fails (a node that does not come back, a cluster that does not re-form) is recorded
 * as {@code recovered} with {@code ok: false} and the reason, which the checker counts; the nemesis then stops,
 * since later faults would only pile on an unknown state.
 *
 * <p>Threads: its own (started by {@link #start}); {@link #stop} asks it to finish the current fault and end.
 */
final class Nemesis {
    private static final long CATCH_UP_NS = TimeUnit.SECONDS.toNanos(60);

    private final Workloads.Context ctx;
    private final Cluster cluster;
    private final Schedule schedule;
    private final long deadlineNs;
    private final int cycles;
    private final PrintStream out;
    private final long startupTimeoutNs;
    private final AtomicBoolean stopping = new AtomicBoolean();
    private final List<String> log = new ArrayList<>();
    private volatile int injected;
    private volatile boolean broken;
    private Thread thread;
    private RecoveryProbe probe;

    /**
     * @param deadlineNs System.nanoTime() by which the last fault must have ended (time mode)
     * @param cycles     faults to inject, or 0 to run until the deadline
     */
    Nemesis(Workloads.Context ctx, Schedule schedule, long deadlineNs, int cycles, PrintStream out) {
        this.ctx = ctx;
        this.cluster = ctx.cluster;
        this.schedule = schedule;
        this.deadlineNs = deadlineNs;
        this.cycles = cycles;
        this.out = out;
        this.startupTimeoutNs = ctx.options.startupTimeoutNs();
    }

    void start() {
        probe = new RecoveryProbe(ctx);
        thread = new Thread(() -> {
            try {
                run();
            } finally {
                probe.close();
            }
        }, "chaos-nemesis");
        thread.setDaemon(true);
        thread.start();
    }

    /** Whether the nemesis is done (cycles injected, deadline reached, or broken). */
    boolean done() {
        return thread == null || !thread.isAlive();
    }

    /** Asks it to end after the current fault, and waits. */
    void stop() {
        stopping.set(true);
        if (thread != null) {
            LockSupport.unpark(thread);
            try {
                thread.join(TimeUnit.MINUTES.toMillis(5));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    int injected() {
        return injected;
    }

    boolean broken() {
        return broken;
    }

    synchronized List<String> log() {
        return List.copyOf(log);
    }

    private synchronized void say(String s) {
        log.add(s);
        out.println("chaos: " + s);
    }

    /** Sleeps {@code ns} unless stopping; returns false when it was asked to stop. */
    private boolean sleep(long ns) {
        long end = System.nanoTime() + ns;
        while (!stopping.get()) {
            long left = end - System.nanoTime();
            if (left <= 0) {
                return true;
            }
            LockSupport.parkNanos(Math.min(left, TimeUnit.MILLISECONDS.toNanos(200)));
        }
        return false;
    }

    /** Sleeps {@code ns} even when stopping (a fault once started runs its course, short as it is). */
    private static void hold(long ns) {
        long end = System.nanoTime() + ns;
        long left;
        while ((left = end - System.nanoTime()) > 0) {
            LockSupport.parkNanos(left);
        }
    }

    private void run() {
        if (schedule.empty()) {
            return;
        }
        while (!stopping.get() && (cycles == 0 || injected < cycles)) {
            Schedule.Step step = schedule.next();
            if (cycles == 0 && System.nanoTime() + step.quietNs() + step.durationNs() > deadlineNs) {
                return;
            }
            if (!sleep(step.quietNs())) {
                return;
            }
            try {
                inject(step);
            } catch (RuntimeException e) {
                broken = true;
                Map<String, Object> ev = History.event("nemesis", "info", "recovered");
                ev.put("fault", step.fault().id);
                ev.put("index", step.index());
                ev.put("ok", false);
                ev.put("error", e.getMessage());
                ctx.history.write(ev);
                say("fault #" + step.index() + " (" + step.fault().id + ") left the cluster broken: " + e.getMessage()
                    + "; no more faults");
                return;
            }
            injected++;
        }
    }

    private void recordStart(Schedule.Step step, List<Integer> nodes, String detail) {
        Map<String, Object> e = History.event("nemesis", "info", "fault-start");
        e.put("fault", step.fault().id);
        e.put("index", step.index());
        e.put("nodes", nodes);
        e.put("detail", detail);
        ctx.history.write(e);
        say(String.format(Locale.ROOT, "fault #%d %s: %s", step.index(), step.fault().id, detail));
    }

    private void recordEnd(Schedule.Step step, List<Integer> nodes, String detail) {
        Map<String, Object> e = History.event("nemesis", "info", "fault-end");
        e.put("fault", step.fault().id);
        e.put("index", step.index());
        e.put("nodes", nodes);
        e.put("detail", detail);
        ctx.history.write(e);
    }

    private int randomNode(long pick) {
        return (int) (pick % cluster.size);
    }

    private List<Integer> shuffled(long pick) {
        List<Integer> all = new ArrayList<>();
        for (int i = 0; i < cluster.size; i++) {
            all.add(i);
        }
        Collections.shuffle(all, new Random(pick));
        return all;
    }

    private int leaderOrRandom(long pick, StringBuilder detail) {
        int partition = (int) (pick % ctx.options.partitions());
        int leader = cluster.leaderOf(Workloads.APPEND_TOPIC, partition);
        if (leader < 0 || leader >= cluster.size) {
            leader = randomNode(pick >>> 8);
            detail.append("leader of partition ").append(partition).append(" unknown, node ").append(leader);
        } else {
            detail.append("node ").append(leader).append(", leader of ").append(Workloads.APPEND_TOPIC).append('-')
                .append(partition);
        }
        return leader;
    }

    void inject(Schedule.Step step) {
        long pick = step.pick();
        long t0 = System.nanoTime();
        List<Integer> victims = new ArrayList<>();
        StringBuilder detail = new StringBuilder();
        String end;
        switch (step.fault()) {
            case KILL, KILL_LEADER, KILL_CONTROLLER -> {
                int n;
                if (step.fault() == Fault.KILL) {
                    n = randomNode(pick);
                    detail.append("node ").append(n);
                } else if (step.fault() == Fault.KILL_LEADER) {
                    n = leaderOrRandom(pick, detail);
                } else {
                    n = cluster.controller();
                    if (n < 0 || n >= cluster.size) {
                        n = randomNode(pick);
                        detail.append("controller unknown, node ").append(n);
                    } else {
                        detail.append("node ").append(n).append(", the controller leader");
                    }
                }
                victims.add(n);
                cluster.kill(n);
                detail.append(": kill -9");
                recordStart(step, victims, detail.toString());
                hold(step.durationNs());
                cluster.startNode(n);
                recordEnd(step, victims, "node " + n + " restarted");
                probe.follow(step.index(), step.fault().id, System.nanoTime());
                cluster.awaitReady(n, startupTimeoutNs);
            }
            case KILL_ALL -> {
                for (int i = 0; i < cluster.size; i++) {
                    victims.add(i);
                }
                for (int i : victims) {
                    cluster.kill(i);
                }
                recordStart(step, victims, "every node: kill -9");
                hold(step.durationNs());
                for (int i : victims) {
                    cluster.startNode(i);
                }
                recordEnd(step, victims, "every node restarted");
                probe.follow(step.index(), step.fault().id, System.nanoTime());
                for (int i : victims) {
                    cluster.awaitReady(i, startupTimeoutNs);
                }
            }
            case PAUSE -> {
                int n = randomNode(pick);
                victims.add(n);
                cluster.pause(n);
                recordStart(step, victims, "node " + n + ": SIGSTOP");
                hold(step.durationNs());
                cluster.resume(n);
                recordEnd(step, victims, "node " + n + ": SIGCONT");
            }
            case PARTITION_HALF, PARTITION_LEADER, PARTITION_BRIDGE -> {
                List<Set<Integer>> sides = new ArrayList<>();
                if (step.fault() == Fault.PARTITION_LEADER) {
                    int leader = leaderOrRandom(pick, detail);
                    Set<Integer> rest = new HashSet<>();
                    for (int i = 0; i < cluster.size; i++) {
                        if (i != leader) {
                            rest.add(i);
                        }
                    }
                    sides.add(Set.of(leader));
                    sides.add(rest);
                    victims.add(leader);
                    detail.append(" isolated from ").append(rest);
                } else if (step.fault() == Fault.PARTITION_HALF) {
                    List<Integer> s = shuffled(pick);
                    Set<Integer> minority = new HashSet<>(s.subList(0, cluster.size / 2));
                    Set<Integer> majority = new HashSet<>(s.subList(cluster.size / 2, cluster.size));
                    sides.add(minority);
                    sides.add(majority);
                    victims.addAll(minority);
                    detail.append("minority ").append(minority).append(" | majority ").append(majority);
                } else {
                    List<Integer> s = shuffled(pick);
                    int half = cluster.size / 2;
                    int bridge = s.get(half);
                    Set<Integer> a = new HashSet<>(s.subList(0, half));
                    Set<Integer> b = new HashSet<>(s.subList(half + 1, cluster.size));
                    sides.add(a);
                    sides.add(b);
                    victims.add(bridge);
                    detail.append(a).append(" | ").append(b).append(", node ").append(bridge).append(" talks to both");
                }
                cluster.net.partition(sides);
                recordStart(step, victims, detail + " (dropped: " + cluster.net.cuts() + ")");
                hold(step.durationNs());
                cluster.net.heal();
                recordEnd(step, victims, "network healed");
            }
            case DISK_FULL -> {
                int n = randomNode(pick);
                victims.add(n);
                LoopDisk disk = cluster.disks.get(n);
                long[] before = cluster.node(n).noSpaceLines();
                long took = disk.fill();
                recordStart(step, victims, String.format(Locale.ROOT, "node %d: its %s filled (%,d MiB hog, %,d bytes "
                    + "left)", n, disk.mountPoint(), took >> 20, disk.freeBytes()));
                hold(step.durationNs());
                disk.free();
                long[] after = cluster.node(n).noSpaceLines();
                long severe = after[1] - before[1];
                String what = "disk freed; the node logged " + (after[0] - before[0]) + " line(s) about no space";
                if (severe > 0 && cluster.node(n).alive()) {
                    // Isthmus fails a log or Raft group for good on a storage error (as Kafka takes a log directory
                    // offline); what brings it back is a restart, as an operator would do once space is free.
                    List<String> lines = cluster.node(n).severeNoSpace(before[1]);
                    cluster.stopNode(n);
                    cluster.startNode(n);
                    what += ", " + severe + " of them SEVERE (storage failed: " + String.join(" | ", lines)
                        + "); restarted the node, as an operator would";
                    Map<String, Object> ev = History.event("nemesis", "info", "storage-restart");
                    ev.put("node", n);
                    ev.put("detail", String.join(" | ", lines));
                    ctx.history.write(ev);
                    say("fault #" + step.index() + ": node " + n + " failed storage on the full disk; restarting it");
                }
                recordEnd(step, victims, what);
                if (!cluster.node(n).ready()) {
                    cluster.awaitReady(n, startupTimeoutNs);
                }
            }
            case TORN_WRITE -> {
                int n = randomNode(pick);
                victims.add(n);
                cluster.kill(n);
                // Acknowledgements of what the node had replicated before it died arrive within moments: wait,
                // so that only what can never be acknowledged through this node is torn.
                hold(TimeUnit.SECONDS.toNanos(2));
                String what;
                try {
                    what = TornWrite.tear(cluster.node(n).dataDir, Workloads.APPEND_TOPIC, ctx::isAcked, new Random(pick));
                } catch (IOException e) {
                    what = "could not tear: " + e.getMessage();
                }
                recordStart(step, victims, "node " + n + ": kill -9, then " + what);
                hold(Math.max(0, step.durationNs() - TimeUnit.SECONDS.toNanos(2)));
                cluster.startNode(n);
                recordEnd(step, victims, "node " + n + " restarted");
                probe.follow(step.index(), step.fault().id, System.nanoTime());
                cluster.awaitReady(n, startupTimeoutNs);
            }
            case ROLLING_RESTART -> {
                List<Integer> order = shuffled(pick);
                victims.addAll(order);
                recordStart(step, victims, "nodes " + order + " stopped (SIGTERM) and restarted in turn");
                List<String> exits = new ArrayList<>();
                for (int n : order) {
                    int exit = cluster.stopNode(n);
                    if (exit != 0) {
                        exits.add("node " + n + " exited with " + exit + " on SIGTERM");
                    }
                    cluster.startNode(n);
                    cluster.awaitReady(n, startupTimeoutNs);
                    if (cluster.size > 1) {
                        if (!cluster.awaitFormed(startupTimeoutNs)) {
                            throw new ChaosException("node " + n + " did not rejoin the cluster within "
                                + TimeUnit.NANOSECONDS.toSeconds(startupTimeoutNs) + " s of its restart");
                        }
                        cluster.awaitCaughtUp(CATCH_UP_NS);
                    }
                }
                recordEnd(step, victims, exits.isEmpty() ? "every node restarted" : String.join("; ", exits));
            }
        }
        end = cluster.restoreAll(startupTimeoutNs);
        String lag = cluster.size > 1 ? cluster.awaitCaughtUp(CATCH_UP_NS) : null;
        Map<String, Object> e = History.event("nemesis", "info", "recovered");
        e.put("fault", step.fault().id);
        e.put("index", step.index());
        e.put("ok", true);
        e.put("caught_up", lag == null);
        if (lag != null) {
            e.put("lag", lag);
        }
        if (!end.isEmpty()) {
            e.put("restored", end);
        }
        ctx.history.write(e);
        if (lag != null) {
            say(String.format(Locale.ROOT, "fault #%d: replicas had not caught up %.0f s after it: %s", step.index(),
                CATCH_UP_NS / 1e9, lag));
        }
        if (!end.isEmpty()) {
            say("fault #" + step.index() + ": also " + end);
        }
        long took = System.nanoTime() - t0;
        if (took > TimeUnit.MINUTES.toNanos(2)) {
            say(String.format(Locale.ROOT, "fault #%d took %.0f s with its recovery", step.index(), took / 1e9));
        }
    }
}
