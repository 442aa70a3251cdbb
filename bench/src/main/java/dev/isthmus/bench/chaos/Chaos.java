package dev.isthmus.bench.chaos;

import dev.isthmus.bench.compare.Cleanup;
import dev.isthmus.bench.compare.Compare;
import dev.isthmus.bench.compare.CpuGaps;
import dev.isthmus.bench.compare.ProcStats;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * {@code bench/chaos}: the project's chaos suite, in the style of Jepsen's Kafka workloads. For each cluster
 * size asked for (1, 3 or 5 nodes) it starts a cluster of {@code ./isthmus} processes on this machine
 * ({@link Cluster}: network namespaces for partitions, loop-mounted file systems for full disks, where the
 * machine allows), runs the workloads ({@link Workload}: append, group, admin), which record every operation
 * into a history file ({@link History}), while the {@link Nemesis} injects faults on a seeded
 * {@link Schedule}; then undoes every fault, lets the readers catch up, takes a final read, stops the cluster,
 * and checks the history ({@link Checker}). It prints the anomaly counts, the recovery time per fault
 * ({@link Timeline}) and writes an HTML page with throughput, latency and errors over time, fault windows
 * shaded ({@link ChaosReport}).
 *
 * <p>Exit code: 0 when every anomaly count of every cluster is 0; 1 when one is not, or the run itself failed
 * (a cluster that did not form: one sentence says why); 2 for bad options. Everything it starts and makes
 * (processes, namespaces, mounts, directories) is registered with a {@link Cleanup} that runs at the end, on
 * failure and on Ctrl-C. Single-threaded apart from the workloads' and the nemesis's threads.
 */
public final class Chaos {

    /**
     * What a run gave.
     *
     * @param exitCode 0 clean, 1 anomalies or a failed run, 2 bad options
     * @param outDir   the results directory, or null
     * @param results  the checker's result per cluster, in order
     */
    public record Outcome(int exitCode, Path outDir, List<Object> results) {
    }

    private Chaos() {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out).exitCode());
    }

    public static Outcome run(String[] args, PrintStream out) {
        ChaosOptions o;
        try {
            o = ChaosOptions.parse(args);
        } catch (IllegalArgumentException e) {
            out.println("chaos: " + e.getMessage());
            return new Outcome(2, null, List.of());
        }
        if (o == null) {
            out.print(ChaosOptions.USAGE);
            return new Outcome(0, null, List.of());
        }
        if (o.checkFile() != null) {
            return checkOnly(o.checkFile(), out);
        }
        Compare.silenceClientLogging();
        try {
            Files.createDirectories(o.outDir());
        } catch (IOException e) {
            out.println("chaos: cannot create " + o.outDir() + ": " + e.getMessage());
            return new Outcome(1, o.outDir(), List.of());
        }
        List<String> meta = new ArrayList<>();
        meta.add("Date: " + ZonedDateTime.now().format(DateTimeFormatter.ISO_OFFSET_DATE_TIME));
        meta.add("Seed: " + o.seed() + " (replay: bench/chaos " + replayArgs(args, o) + ")");
        meta.add("Machine: " + ProcStats.machine() + "; " + ProcStats.loadAverages() + " at the start");
        meta.add("Clusters: " + o.clusterSizes() + " node(s), each broker --smp " + o.smp() + " --memory " + o.memory()
            + "; workloads " + o.workloads() + "; " + o.ratePerSec() + " writes/s from " + o.producers()
            + " idempotent acks=all producers over " + o.partitions() + " partitions, " + o.valueBytes() + " B values"
            + (o.has("txn") ? "; transaction.state.log.num.partitions " + o.txnPartitions() : ""));
        meta.add(String.format(Locale.ROOT, "Faults: %s; each %.0f-%.0f s, %.0f-%.0f s apart; %s", o.faults().isEmpty()
            ? "none" : String.join(", ", o.faults().stream().map(f -> f.id).toList()), o.faultMinNs() / 1e9,
            o.faultMaxNs() / 1e9, o.quietMinNs() / 1e9, o.quietMaxNs() / 1e9,
            o.cycles() > 0 ? o.cycles() + " faults per cluster" : "for " + seconds(o.runNs(3)) + " per cluster"
                + (o.quick() ? " (1 node: " + seconds(o.runNs(1)) + ")" : "")));
        out.println("chaos: seed " + o.seed() + " (replay with --seed " + o.seed() + "); results in " + o.outDir());
        List<ChaosReport.Section> sections = new ArrayList<>();
        List<Object> results = new ArrayList<>();
        boolean failed = false;
        StringBuilder summary = new StringBuilder();
        meta.forEach(m -> summary.append(m).append('\n'));
        try (Cleanup cleanup = new Cleanup("chaos"); CpuGaps gaps = CpuGaps.start()) {
            for (int size : o.clusterSizes()) {
                ClusterRun run = new ClusterRun(o, size, cleanup, gaps, out);
                String title = size + "-node cluster";
                try {
                    run.run();
                } catch (ChaosException e) {
                    failed = true;
                    run.failed = true;
                    run.notes.add("the run failed: " + e.getMessage());
                    out.println("chaos: [" + title + "] FAILED: " + e.getMessage());
                } finally {
                    run.stopCluster();
                }
                CheckResult r = null;
                Timeline t = null;
                if (Files.exists(run.historyFile)) {
                    try {
                        r = Checker.check(run.historyFile);
                        t = Timeline.read(run.historyFile);
                    } catch (RuntimeException e) {
                        failed = true;
                        run.notes.add("the history could not be checked: " + e.getMessage());
                    }
                }
                results.add(r);
                String checker = r == null ? "(no history)\n" : r.render() + "\n" + r.renderStats() + "\n";
                String recovery = t == null ? "" : t.recoveryTable();
                String faults = t == null ? "" : t.faultList();
                String notes = String.join("\n", run.notes);
                out.println();
                out.println("=== " + title + ": " + (r != null && r.clean() && !run.failed() ? "PASS" : "FAIL")
                    + " (history " + run.historyFile + ")");
                out.print(checker);
                if (t != null) {
                    out.println();
                    out.print(recovery);
                    out.println();
                    out.print(faults);
                }
                if (!notes.isEmpty()) {
                    out.println(notes);
                }
                if (r == null || !r.clean()) {
                    failed = true;
                }
                summary.append("\n=== ").append(title).append('\n').append(checker).append('\n').append(recovery)
                    .append('\n').append(faults).append(notes.isEmpty() ? "" : notes + "\n");
                sections.add(new ChaosReport.Section(title + (r != null && r.clean() && !run.failed() ? ": pass" : ": FAIL"),
                    checker, recovery, faults, notes, t));
            }
        }
        try {
            Files.writeString(o.outDir().resolve("summary.txt"), summary);
            Files.writeString(o.outDir().resolve("report.html"), ChaosReport.render("Isthmus chaos run", meta, sections));
        } catch (IOException e) {
            out.println("chaos: cannot write the results: " + e.getMessage());
            failed = true;
        }
        out.println();
        out.println("chaos: " + (failed ? "FAIL" : "PASS") + "; seed " + o.seed() + "; results in " + o.outDir()
            + " (report.html, summary.txt, histories, node logs)");
        return new Outcome(failed ? 1 : 0, o.outDir(), results);
    }

    private static Outcome checkOnly(Path file, PrintStream out) {
        try {
            CheckResult r = Checker.check(file);
            Timeline t = Timeline.read(file);
            out.print(r.render());
            out.println(r.renderStats());
            out.println();
            out.print(t.recoveryTable());
            out.println();
            out.print(t.faultList());
            out.println("chaos: " + (r.clean() ? "PASS" : "FAIL") + " (" + file + ")");
            return new Outcome(r.clean() ? 0 : 1, null, List.of(r));
        } catch (RuntimeException e) {
            out.println("chaos: cannot check " + file + ": " + e.getMessage());
            return new Outcome(1, null, List.of());
        }
    }

    /** Options that name this run's places, not its workload: a replay leaves them out. */
    private static final java.util.Set<String> LOCAL_OPTIONS = java.util.Set.of("--seed", "--out", "--tmp-dir", "--root",
        "--pid-file", "--run-id", "--subnet", "--port");

    /**
     * The options of a replay: every option this run was given (rate, durations, sizes: a replay with the seed alone
     * ran a different workload), less where it ran, with the seed.
     */
    static String replayArgs(String[] args, ChaosOptions o) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < args.length; i++) {
            if (LOCAL_OPTIONS.contains(args[i])) {
                i++; // and its value
                continue;
            }
            sb.append(args[i].isEmpty() || args[i].matches("[A-Za-z0-9_.,:/=@%+-]+") ? args[i]
                : "'" + args[i].replace("'", "'\\''") + "'").append(' ');
        }
        return sb.append("--seed ").append(o.seed()).toString();
    }

    static String seconds(long ns) {
        double s = ns / 1e9;
        return s == Math.rint(s) ? (long) s + "s" : String.format(Locale.ROOT, "%.1fs", s);
    }

    /** One cluster's part of the run. Run's thread. */
    private static final class ClusterRun {
        private final ChaosOptions o;
        private final int size;
        private final Cleanup cleanup;
        private final CpuGaps gaps;
        private final PrintStream out;
        private final String prefix;
        final Path dir;
        final Path historyFile;
        final List<String> notes = new ArrayList<>();
        private Cluster cluster;
        private Path work;
        private History history;
        private final List<Workload> workloads = new ArrayList<>();
        private boolean failed;

        ClusterRun(ChaosOptions o, int size, Cleanup cleanup, CpuGaps gaps, PrintStream out) {
            this.o = o;
            this.size = size;
            this.cleanup = cleanup;
            this.gaps = gaps;
            this.out = out;
            this.prefix = "chaos: [" + size + " node" + (size == 1 ? "" : "s") + "] ";
            this.dir = o.outDir().resolve("nodes-" + size);
            this.historyFile = dir.resolve("history.jsonl");
        }

        boolean failed() {
            return failed;
        }

        private void say(String s) {
            out.println(prefix + s);
        }

        void run() {
            try {
                Files.createDirectories(dir);
            } catch (IOException e) {
                throw new ChaosException("cannot create " + dir + ": " + e.getMessage(), e);
            }
            String netReason = !o.netns() ? "--no-netns was given" : Network.namespacesUnavailable();
            String diskReason = o.faults().contains(Fault.DISK_FULL) ? LoopDisk.unavailableReason() : "not asked for";
            List<Fault> faults = new ArrayList<>();
            for (Fault f : o.faults()) {
                String why = f.skipReason(size, netReason, diskReason);
                if (why == null) {
                    faults.add(f);
                } else if (!(f.partition() && size == 1)) {
                    notes.add("skipped " + f.id + ": " + why);
                    say("skipping " + f.id + ": " + why);
                }
            }
            try {
                work = Files.createTempDirectory(o.tmpDir(), "isthmus-chaos-" + size + "-");
            } catch (IOException e) {
                throw new ChaosException("cannot create a directory in " + o.tmpDir() + ": " + e.getMessage(), e);
            }
            cleanup.add(work);
            long origin = System.nanoTime();
            history = new History(historyFile, origin);
            cleanup.add(history);
            history.note("run-start", Map.of("nodes", size, "seed", o.seed(), "faults",
                faults.stream().map(f -> f.id).toList()));
            say("starting " + size + " node(s)" + (faults.contains(Fault.DISK_FULL) ? " on loop-mounted file systems" : ""));
            long t0 = System.nanoTime();
            cluster = Cluster.start(o, size, work, dir, cleanup, history, out, faults.contains(Fault.DISK_FULL));
            say(String.format(Locale.ROOT, "up in %.1f s: %s", (System.nanoTime() - t0) / 1e9, cluster.net.describe()));
            if (!cluster.net.namespaces()) {
                if (faults.removeIf(Fault::partition) && size > 1) {
                    notes.add("skipped network partitions: " + cluster.net.reason());
                    say("skipping network partitions: " + cluster.net.reason());
                }
            }
            Workloads.Context ctx = new Workloads.Context(o, cluster, history, o.seed() * 7 + size, dir, out);
            AppendWorkload.createTopic(ctx);
            for (String w : o.workloads()) {
                workloads.add(Workloads.create(w, ctx));
            }
            for (Workload w : workloads) {
                w.start();
            }
            Schedule schedule = new Schedule(o.seed(), size, faults, o.faultMinNs(), o.faultMaxNs(), o.quietMinNs(),
                o.quietMaxNs());
            long runNs = o.runNs(size);
            long start = System.nanoTime();
            long deadline = start + runNs;
            Nemesis nemesis = new Nemesis(ctx, schedule, deadline, o.cycles(), out);
            history.note("faults-start", Map.of());
            say((o.cycles() > 0 ? "running " + o.cycles() + " faults" : "running for " + seconds(runNs)) + " ("
                + (faults.isEmpty() ? "no faults" : faults.stream().map(f -> f.id).toList()) + ")");
            nemesis.start();
            long nextProgress = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            int stalledSeconds = 0;
            while (true) {
                LockSupport.parkNanos(TimeUnit.SECONDS.toNanos(1));
                CpuGaps.Gap gap = gaps.takeMax();
                if (gap.ns() >= CpuGaps.STALL_NS) {
                    stalledSeconds++;
                    history.note("cpu-stall", Map.of("cpu", gap.cpu(), "ms", gap.ns() / 1_000_000));
                }
                cluster.checkUnexpectedExits();
                long now = System.nanoTime();
                boolean over = o.cycles() > 0 ? nemesis.done() : now >= deadline;
                if (now >= nextProgress || over) {
                    nextProgress = now + TimeUnit.SECONDS.toNanos(o.quick() ? 10 : 30);
                    StringBuilder p = new StringBuilder(String.format(Locale.ROOT, "t=%.0fs faults %d", (now - start) / 1e9,
                        nemesis.injected()));
                    for (Workload w : workloads) {
                        String s = w.progress();
                        if (!s.isEmpty()) {
                            p.append("; ").append(s);
                        }
                    }
                    if (gap.ns() >= CpuGaps.NOTE_NS) {
                        p.append("; ").append(gap.describe());
                    }
                    say(p.toString());
                }
                if (over) {
                    break;
                }
            }
            nemesis.stop();
            failed |= nemesis.broken();
            if (stalledSeconds > 0) {
                notes.add(stalledSeconds + " second(s) with a CPU that ran nothing for 50 ms or more (the machine "
                    + "stalled, not the broker; see cpu-stall events in the history)");
            }
            history.note("faults-end", Map.of("injected", nemesis.injected()));
            String restored = cluster.restoreAll(o.startupTimeoutNs());
            if (!restored.isEmpty()) {
                say("restored: " + restored);
            }
            if (size > 1) {
                String lag = cluster.awaitCaughtUp(TimeUnit.SECONDS.toNanos(60));
                if (lag != null) {
                    notes.add("at the end, replicas had not caught up within 60 s: " + lag);
                }
            }
            say("stopping the workloads; waiting for the readers");
            for (Workload w : workloads) {
                w.quiesce();
            }
            long drainNs = TimeUnit.SECONDS.toNanos(o.quick() ? 30 : 120);
            for (Workload w : workloads) {
                String d = w.drain(drainNs);
                if (!d.isEmpty()) {
                    say(d);
                }
            }
            say("final read");
            for (Workload w : workloads) {
                w.finish();
            }
            for (Workload w : workloads) {
                w.close();
            }
            workloads.clear();
            history.note("run-end", Map.of());
        }

        /** Stops the workloads and the cluster (cleanly), closes the history. */
        void stopCluster() {
            for (Workload w : workloads) {
                try {
                    w.close();
                } catch (RuntimeException e) {
                    notes.add("closing " + w.name() + ": " + e.getMessage());
                }
            }
            if (cluster != null) {
                try {
                    for (String u : cluster.unexpectedExits()) {
                        if (!notes.contains(u)) {
                            notes.add(u);
                        }
                    }
                    cluster.close();
                } catch (RuntimeException e) {
                    notes.add("stopping the cluster: " + e.getMessage());
                }
            }
            if (history != null) {
                history.close();
                cleanup.forget(history);
            }
            if (work != null) {
                try {
                    cleanup.delete(work);
                } catch (RuntimeException e) {
                    notes.add("removing " + work + ": " + e.getMessage());
                }
            }
        }
    }

    private static final class LockSupport {
        static void parkNanos(long ns) {
            java.util.concurrent.locks.LockSupport.parkNanos(ns);
        }
    }
}
