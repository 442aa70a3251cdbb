package dev.isthmus.bench.compare;

import org.HdrHistogram.Histogram;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

/**
 * {@code bench/compare}: Isthmus next to Apache Kafka 4.3 on this machine, with one command.
 *
 * <p>Starts each broker of {@code --brokers} in turn on 127.0.0.1 with a fresh data directory
 * ({@link BrokerProcess}), runs every workload against it with the same kafka-clients producer and consumer
 * ({@link Workload}: 1 KiB records, acks=all, one partition; fixed rates, then saturation; warm-up, then a
 * steady-state window), stops it, and moves on. Then prints one side-by-side table ({@link Table}) with
 * throughput, produce-to-ack and end-to-end latency percentiles, broker CPU, peak RSS and JVM pauses, checks
 * issue 8's targets, and writes into the results directory: {@code table.txt}, {@code report.html} (charts,
 * {@link HtmlReport}), one HdrHistogram log per broker and workload ({@code BROKER-WORKLOAD.hlog}) and
 * percentile distributions ({@code .hgrm}), the brokers' output and their JVM logs.
 *
 * <p>Everything it starts or makes (broker processes, data directories) is registered with a {@link Cleanup}
 * that runs at the end, on failure, and from a shutdown hook on Ctrl-C or SIGTERM. A taken port or missing
 * Kafka jars end the run with one sentence; a broker that exits, or does not answer within
 * {@code --startup-timeout}, is stopped and reported in one sentence and the run goes on with the next broker
 * (exit 1 at the end, with the table of what did run); bad options exit 2. Single-threaded apart from
 * {@link Workload}'s client threads.
 */
public final class Compare {

    /**
     * What a run produced.
     *
     * @param exitCode 0 when every broker ran every workload (see the rows' notes for client-side errors),
     *                 1 when a broker failed or could not be run, 2 for bad options
     * @param outDir   the results directory, or null when options were bad
     * @param rows     the table's rows
     * @param targets  issue 8's targets, one line each
     */
    public record Outcome(int exitCode, Path outDir, List<Row> rows, List<String> targets) {
    }

    private Compare() {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out).exitCode());
    }

    /** Runs the comparison described by {@code args}, printing progress and the table on {@code out}. */
    public static Outcome run(String[] args, PrintStream out) {
        CompareOptions o;
        try {
            o = CompareOptions.parse(args);
        } catch (IllegalArgumentException e) {
            out.println("compare: " + e.getMessage());
            return new Outcome(2, null, List.of(), List.of());
        }
        if (o == null) {
            out.print(CompareOptions.USAGE);
            return new Outcome(0, null, List.of(), List.of());
        }
        silenceClientLogging();
        List<Row> rows = new ArrayList<>();
        List<String> meta = new ArrayList<>();
        List<String> failures = new ArrayList<>();
        try (Cleanup cleanup = new Cleanup(); CpuGaps gaps = CpuGaps.start()) {
            try {
                runAll(o, out, cleanup, gaps, rows, meta, failures);
            } catch (CompareException e) {
                failures.add(e.getMessage());
            }
        }
        if (rows.isEmpty()) {
            out.println();
            failures.forEach(f -> out.println("compare: " + f));
            return new Outcome(1, o.outDir(), rows, List.of());
        }
        long memoryBytes = Table.parseSizeBytes(o.isthmusMemory());
        long heapBytes = Table.parseSizeBytes(BrokerProcess.launcherHeap(o.isthmusLauncher()));
        List<String> targets = Table.targets(rows, memoryBytes, heapBytes);
        String table = Table.render(rows);
        out.println();
        out.print(table);
        out.println();
        out.println("Issue 8 targets:");
        targets.forEach(t -> out.println("  " + t));
        if (!failures.isEmpty()) {
            out.println();
            failures.forEach(f -> out.println("compare: " + f));
            meta.add("Failed: " + String.join(" / ", failures));
        }
        StringBuilder txt = new StringBuilder();
        meta.forEach(m -> txt.append(m).append('\n'));
        txt.append('\n').append(table).append("\nIssue 8 targets:\n");
        targets.forEach(t -> txt.append("  ").append(t).append('\n'));
        try {
            Files.writeString(o.outDir().resolve("table.txt"), txt);
            Files.writeString(o.outDir().resolve("report.html"),
                HtmlReport.render("Isthmus vs Apache Kafka 4.3", meta, table, targets, rows));
        } catch (IOException e) {
            out.println("compare: cannot write the results into " + o.outDir() + ": " + e.getMessage());
            return new Outcome(1, o.outDir(), rows, targets);
        }
        out.println();
        out.println("Results: " + o.outDir() + " (report.html, table.txt, *.hlog, broker logs)");
        return new Outcome(failures.isEmpty() ? 0 : 1, o.outDir(), rows, targets);
    }

    /**
     * Runs every broker in turn; a broker that fails (exits, does not come up, refuses a topic) is reported in
     * {@code failures} and the run goes on with the next one, unless the failure is fatal.
     */
    private static void runAll(CompareOptions o, PrintStream out, Cleanup cleanup, CpuGaps gaps, List<Row> rows,
                               List<String> meta, List<String> failures) {
        if (o.brokers().stream().anyMatch(BrokerKind::isKafka)
                && !Files.isRegularFile(o.kafkaLib().resolve("kafka_2.13-4.3.0.jar"))) {
            throw CompareException.fatal("Apache Kafka 4.3.0's jars are not in " + o.kafkaLib() + "; fetch them with "
                + "./mvnw -f bench/kafka-dist/pom.xml dependency:copy-dependencies (bench/compare does this itself)");
        }
        Path workDir;
        try {
            Files.createDirectories(o.outDir());
            workDir = Files.createTempDirectory(o.tmpDir(), "isthmus-compare-");
        } catch (IOException e) {
            throw new CompareException("cannot create " + o.outDir() + " or a directory in " + o.tmpDir() + ": "
                + e.getMessage(), e);
        }
        cleanup.add(workDir);
        String heap = BrokerProcess.launcherHeap(o.isthmusLauncher());
        meta.add("Date: " + ZonedDateTime.now().format(DateTimeFormatter.ISO_OFFSET_DATE_TIME));
        meta.add("Machine: " + ProcStats.machine() + "; " + ProcStats.loadAverages() + " at the start");
        meta.add("Workloads: " + o.recordBytes() + " B records, acks=all, 1 partition, one kafka-clients 4.3 producer "
            + "(its defaults otherwise: linger.ms=5, batch.size=16384, idempotent) and one consumer (assigned, "
            + "defaults) on the same machine; " + String.join(", ", o.workloads().stream()
            .map(CompareOptions::workloadName).toList()) + "; warm-up " + seconds(o.warmupNs()) + " s, measurement "
            + seconds(o.durationNs()) + " s each");
        meta.add("Brokers: Isthmus (./isthmus start --smp " + o.isthmusSmp() + " --memory " + o.isthmusMemory()
            + ", fdatasync before every ack); Apache Kafka 4.3.0 KRaft single node with defaults; Kafka fsync = "
            + "log.flush.interval.messages=1. JVM heap -Xms" + heap + " -Xmx" + heap + " for each");
        out.println("compare: results go to " + o.outDir());
        out.println("compare: " + meta.get(1));
        if (ProcStats.loadAverage1m() > 0.5) {
            out.println("compare: the machine is busy (" + ProcStats.loadAverages() + "); numbers may be noisy, the "
                + "'other' column shows how much CPU others used during each measurement");
        }
        int n = 0;
        for (BrokerKind kind : o.brokers()) {
            n++;
            String prefix = "[" + n + "/" + o.brokers().size() + " " + kind.label + "]";
            out.println(prefix + " starting on " + BrokerProcess.HOST + ":" + o.port() + " ("
                + ProcStats.loadAverages() + ")");
            BrokerProcess broker;
            try {
                broker = BrokerProcess.start(kind, o, workDir, cleanup);
            } catch (CompareException e) {
                if (e.isFatal()) {
                    throw e;
                }
                out.println(prefix + " FAILED: " + e.getMessage());
                failures.add(e.getMessage());
                continue;
            }
            out.printf(Locale.ROOT, "%s up in %.1f s (pid %d, log %s)%n", prefix, broker.startupNs / 1e9, broker.pid(),
                broker.logFile);
            List<Row> brokerRows = new ArrayList<>();
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap))) {
                if (o.primeNs() > 0) {
                    prime(o, out, prefix, broker, admin);
                }
                for (long rate : o.workloads()) {
                    brokerRows.add(runWorkload(o, out, prefix, broker, admin, rate, gaps));
                }
            } catch (CompareException e) {
                if (e.isFatal()) {
                    throw e;
                }
                out.println(prefix + " FAILED: " + e.getMessage());
                failures.add(e.getMessage());
            } finally {
                int exit = broker.stop();
                out.println(prefix + " stopped (exit " + exit + ")");
                if (kind == BrokerKind.ISTHMUS && exit != 0) {
                    out.println(prefix + " WARNING: Isthmus did not stop cleanly (exit " + exit + "); see " + broker.logFile);
                }
            }
            // The JVM log is complete once the broker has exited: place its pauses in each window.
            for (Row r : brokerRows) {
                rows.add(new Row(r.broker(), r.ratePerSec(), r.result(), r.cpuPercent(), r.otherCpuPercent(),
                    r.peakRssBytes(), GcLog.pauses(broker.gcLog, r.result().measureStartNs(), r.result().measureEndNs()),
                    r.hlogName(), r.cpuStallSeconds()));
            }
        }
    }

    /**
     * An unmeasured saturation run before a broker's workloads. The benchmark client is one JVM for every
     * broker: without this, its JIT warm-up (more than a core for several seconds) would fall on the first
     * broker's first workloads and on no other broker's. The broker warms up too; every broker gets the same.
     */
    private static void prime(CompareOptions o, PrintStream out, String prefix, BrokerProcess broker, Admin admin) {
        String topic = "compare-prime";
        createTopic(admin, topic, broker);
        String label = prefix + " priming (unmeasured): ";
        Progress progress = new Progress(out, label);
        Workload w = new Workload(broker.bootstrap, topic, 0, o.recordBytes(), o.primeNs(),
            TimeUnit.MILLISECONDS.toNanos(1), o.drainTimeoutNs(), o.outDir().resolve(broker.kind.id + "-prime.hlog"),
            progress);
        Workload.Result result;
        try {
            result = w.run(new Workload.Window() {
                @Override
                public void measurementStarted() {
                }

                @Override
                public void measurementEnded() {
                }

                @Override
                public String secondElapsed() {
                    return "unmeasured";
                }
            });
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CompareException("interrupted while priming " + broker.kind.label);
        }
        progress.finish();
        if (!broker.process.isAlive()) {
            throw new CompareException(broker.kind.label + " exited with code " + broker.process.exitValue()
                + " while priming: " + BrokerProcess.lastLine(broker.logFile) + " (see " + broker.logFile + ")");
        }
        out.printf(Locale.ROOT, "%s%,d records acknowledged in %s s%n", label, result.acked(), seconds(o.primeNs()));
    }

    private static Row runWorkload(CompareOptions o, PrintStream out, String prefix, BrokerProcess broker, Admin admin,
                                   long rate, CpuGaps gaps) {
        String wl = rate == 0 ? "saturation" : Long.toString(rate);
        String topic = "compare-" + wl;
        createTopic(admin, topic, broker);
        String hlogName = broker.kind.id + "-" + wl + ".hlog";
        String label = prefix + " " + CompareOptions.workloadName(rate) + ": ";
        Progress progress = new Progress(out, label);
        long self = ProcessHandle.current().pid();
        ProcStats.Sample[] broker0 = new ProcStats.Sample[1];
        ProcStats.Sample[] broker1 = new ProcStats.Sample[1];
        long[] selfCpu = new long[2];
        int[] cpuStalls = {0, 0}; // [0]: inside the window (0/1), [1]: stalled seconds counted there
        Workload w = new Workload(broker.bootstrap, topic, rate, o.recordBytes(), o.warmupNs(), o.durationNs(),
            o.drainTimeoutNs(), o.outDir().resolve(hlogName), progress);
        Workload.Result result;
        try {
            result = w.run(new Workload.Window() {
                @Override
                public void measurementStarted() {
                    broker0[0] = ProcStats.sample(broker.pid());
                    selfCpu[0] = ProcStats.processCpuNs(self);
                    gaps.takeMax(); // the window's first second starts here
                    cpuStalls[0] = 1;
                }

                @Override
                public void measurementEnded() {
                    broker1[0] = ProcStats.sample(broker.pid());
                    selfCpu[1] = ProcStats.processCpuNs(self);
                    if (gaps.takeMax().ns() >= CpuGaps.STALL_NS) {
                        cpuStalls[1]++;
                    }
                    cpuStalls[0] = 0;
                }

                private ProcStats.Sample lastBroker = ProcStats.sample(broker.pid());
                private long lastSelf = ProcStats.processCpuNs(self);
                private ProcStats.Disk lastDisk = ProcStats.disk(broker.dataDir);

                @Override
                public String secondElapsed() {
                    ProcStats.Sample b = ProcStats.sample(broker.pid());
                    long selfNs = ProcStats.processCpuNs(self);
                    long wallNs = Math.max(1, b.atNs() - lastBroker.atNs());
                    long brokerNs = b.processCpuNs() - lastBroker.processCpuNs();
                    long clientNs = selfNs - lastSelf;
                    long otherNs = Math.max(0, b.machineBusyNs() - lastBroker.machineBusyNs() - brokerNs - clientNs);
                    ProcStats.Disk disk = ProcStats.disk(broker.dataDir);
                    String note = String.format(Locale.ROOT, "CPU broker %.0f%% client %.0f%% other %.0f%%; %s",
                        100.0 * brokerNs / wallNs, 100.0 * clientNs / wallNs, 100.0 * otherNs / wallNs,
                        disk.describeSince(lastDisk, wallNs));
                    CpuGaps.Gap gap = gaps.takeMax();
                    if (gap.ns() >= CpuGaps.NOTE_NS) {
                        note += "; " + gap.describe();
                    }
                    if (cpuStalls[0] == 1 && gap.ns() >= CpuGaps.STALL_NS) {
                        cpuStalls[1]++;
                    }
                    lastBroker = b;
                    lastSelf = selfNs;
                    lastDisk = disk;
                    return note;
                }
            });
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CompareException("interrupted during " + CompareOptions.workloadName(rate) + " on " + broker.kind.label);
        }
        progress.finish();
        if (!broker.process.isAlive()) {
            throw new CompareException(broker.kind.label + " exited with code " + broker.process.exitValue()
                + " during the " + CompareOptions.workloadName(rate) + " workload: "
                + BrokerProcess.lastLine(broker.logFile) + " (see " + broker.logFile + ")");
        }
        long wallNs = broker1[0].atNs() - broker0[0].atNs();
        double cpu = broker1[0].cpuPercentSince(broker0[0]);
        long othersNs = (broker1[0].machineBusyNs() - broker0[0].machineBusyNs())
            - (broker1[0].processCpuNs() - broker0[0].processCpuNs()) - (selfCpu[1] - selfCpu[0]);
        double other = Math.max(0, 100.0 * othersNs / wallNs);
        long peakRss = ProcStats.statusKb(broker.pid(), "VmHWM:") * 1024;
        writePercentiles(o.outDir().resolve(broker.kind.id + "-" + wl + "-ack.hgrm"), result.ack());
        writePercentiles(o.outDir().resolve(broker.kind.id + "-" + wl + "-e2e.hgrm"), result.e2e());
        Row row = new Row(broker.kind, rate, result, cpu, other, peakRss, GcLog.Pauses.NONE, hlogName, cpuStalls[1]);
        out.printf(Locale.ROOT, "%s%,.0f rec/s, e2e p50 %s p99 %s p99.9 %s max %s ms, broker CPU %.0f%%, RSS %,d MiB%s%n",
            label, result.throughputPerSec(), pct(result.e2e(), 50), pct(result.e2e(), 99), pct(result.e2e(), 99.9),
            Table.ms(result.e2e().getMaxValue()), cpu, peakRss >> 20, row.notes().isEmpty() ? "" : "; " + row.notes());
        return row;
    }

    private static String pct(Histogram h, double p) {
        return h.getTotalCount() == 0 ? "-" : Table.ms(h.getValueAtPercentile(p));
    }

    private static void createTopic(Admin admin, String topic, BrokerProcess broker) {
        try {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(60, TimeUnit.SECONDS);
        } catch (ExecutionException | TimeoutException e) {
            Throwable c = e instanceof ExecutionException ? e.getCause() : e;
            throw new CompareException(broker.kind.label + " did not create topic " + topic + ": "
                + c.getClass().getSimpleName() + ": " + c.getMessage() + " (see " + broker.logFile + ")", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CompareException("interrupted while creating topic " + topic);
        }
    }

    private static void writePercentiles(Path file, Histogram h) {
        try (PrintStream ps = new PrintStream(Files.newOutputStream(file))) {
            h.outputPercentileDistribution(ps, 1e6); // values in ms
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String seconds(long ns) {
        double s = ns / 1e9;
        return s == Math.rint(s) ? Long.toString((long) s) : String.format(Locale.ROOT, "%.1f", s);
    }

    /**
     * kafka-clients logs through slf4j 1.7, which finds no binding here and says so on stderr; binding it
     * now, with stderr muted, leaves the client silent (its failures reach the callbacks and the table).
     */
    public static void silenceClientLogging() {
        PrintStream saved = System.err;
        System.setErr(new PrintStream(OutputStream.nullOutputStream()));
        try {
            Class.forName("org.slf4j.LoggerFactory").getMethod("getILoggerFactory").invoke(null);
        } catch (ReflectiveOperationException | LinkageError e) {
            // no slf4j: nothing to silence
        } finally {
            System.setErr(saved);
        }
    }

    /**
     * Progress of one workload: on a terminal one line rewritten in place every second; otherwise a line
     * every five seconds.
     */
    private static final class Progress implements Consumer<String> {
        private static final int EVERY_NTH_LINE = 5;
        private final PrintStream out;
        private final String label;
        private final boolean terminal;
        private int lines;
        private int width;

        Progress(PrintStream out, String label) {
            this.out = out;
            this.label = label;
            java.io.Console c = System.console();
            this.terminal = out == System.out && c != null && c.isTerminal();
        }

        @Override
        public void accept(String status) {
            String line = label + status;
            if (terminal) {
                out.print('\r' + line + " ".repeat(Math.max(0, width - line.length())));
                width = line.length();
                out.flush();
            } else if (lines++ % EVERY_NTH_LINE == 0) {
                out.println(line);
            }
        }

        void finish() {
            if (terminal && width > 0) {
                out.print('\r' + " ".repeat(width) + '\r');
                out.flush();
            }
        }
    }
}
