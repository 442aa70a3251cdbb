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
 * <p>First measures the device's own fdatasync latency ({@link FsyncProbe}). Then starts each broker of
 * {@code --brokers} in turn on 127.0.0.1 with a fresh data directory ({@link BrokerProcess}), runs the
 * single-partition and many-partitions workloads against it with the same kafka-clients producers and
 * consumers ({@link Workload}: 1 KiB records, acks=all; fixed rates, then saturation; warm-up, then a
 * steady-state window), stops it, starts three of it as a cluster ({@link Brokers}) for the cluster workloads,
 * and moves on ({@link Suite}). Then prints one side-by-side table ({@link Table}) with throughput,
 * produce-to-ack and end-to-end latency percentiles, broker CPU (also per record), heap allocated per record
 * ({@link HeapMeter}), peak RSS and JVM pauses, checks issue 8's and issue 18's targets, and writes into the
 * results directory: {@code table.txt}, {@code report.html} (charts, {@link HtmlReport}), one HdrHistogram log
 * per broker and workload ({@code BROKER-WORKLOAD.hlog}) and percentile distributions ({@code .hgrm}), the
 * brokers' output and their JVM logs.
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
     * @param exitCode       0 when every broker ran every workload (see the rows' notes for client-side errors),
     *                       1 when a broker failed or could not be run, 2 for bad options
     * @param outDir         the results directory, or null when options were bad
     * @param rows           the table's rows
     * @param targets        issue 8's targets, one line each
     * @param issue18Targets issue 18's targets, one line each
     * @param fsync          the device's fdatasync latency measured before the brokers, or null
     * @param issue19And20Targets issue 19's (transactions) and issue 20's (SASL_SSL) targets, one line each
     */
    public record Outcome(int exitCode, Path outDir, List<Row> rows, List<String> targets, List<String> issue18Targets,
                          FsyncProbe.Result fsync, List<String> issue19And20Targets) {
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
            return new Outcome(2, null, List.of(), List.of(), List.of(), null, List.of());
        }
        if (o == null) {
            out.print(CompareOptions.USAGE);
            return new Outcome(0, null, List.of(), List.of(), List.of(), null, List.of());
        }
        silenceClientLogging();
        List<Row> rows = new ArrayList<>();
        List<String> meta = new ArrayList<>();
        List<String> failures = new ArrayList<>();
        FsyncProbe.Result[] fsync = new FsyncProbe.Result[1];
        try (Cleanup cleanup = new Cleanup(); CpuGaps gaps = CpuGaps.start()) {
            try {
                runAll(o, out, cleanup, gaps, rows, meta, failures, fsync);
            } catch (CompareException e) {
                failures.add(e.getMessage());
            }
        }
        if (rows.isEmpty()) {
            out.println();
            failures.forEach(f -> out.println("compare: " + f));
            return new Outcome(1, o.outDir(), rows, List.of(), List.of(), fsync[0], List.of());
        }
        long memoryBytes = Table.parseSizeBytes(o.isthmusMemory());
        long heapBytes = Table.parseSizeBytes(BrokerProcess.launcherHeap(o.isthmusLauncher()));
        List<String> targets = Table.targets(rows, memoryBytes, heapBytes);
        List<String> targets18 = Table.issue18Targets(rows, fsync[0]);
        List<String> targets1920 = Table.issue19And20Targets(rows);
        String table = Table.render(rows);
        out.println();
        out.print(table);
        out.println();
        out.println("Issue 8 targets:");
        targets.forEach(t -> out.println("  " + t));
        out.println("Issue 18 targets:");
        targets18.forEach(t -> out.println("  " + t));
        if (!targets1920.isEmpty()) {
            out.println("Issue 19 and 20 targets:");
            targets1920.forEach(t -> out.println("  " + t));
        }
        if (!failures.isEmpty()) {
            out.println();
            failures.forEach(f -> out.println("compare: " + f));
            meta.add("Failed: " + String.join(" / ", failures));
        }
        StringBuilder txt = new StringBuilder();
        meta.forEach(m -> txt.append(m).append('\n'));
        txt.append('\n').append(table).append("\nIssue 8 targets:\n");
        targets.forEach(t -> txt.append("  ").append(t).append('\n'));
        txt.append("Issue 18 targets:\n");
        targets18.forEach(t -> txt.append("  ").append(t).append('\n'));
        if (!targets1920.isEmpty()) {
            txt.append("Issue 19 and 20 targets:\n");
            targets1920.forEach(t -> txt.append("  ").append(t).append('\n'));
        }
        try {
            Files.writeString(o.outDir().resolve("table.txt"), txt);
            Files.writeString(o.outDir().resolve("report.html"),
                HtmlReport.render("Isthmus vs Apache Kafka 4.3", meta, table, targets, targets18, targets1920, rows));
        } catch (IOException e) {
            out.println("compare: cannot write the results into " + o.outDir() + ": " + e.getMessage());
            return new Outcome(1, o.outDir(), rows, targets, targets18, fsync[0], targets1920);
        }
        out.println();
        out.println("Results: " + o.outDir() + " (report.html, table.txt, *.hlog, broker logs)");
        return new Outcome(failures.isEmpty() ? 0 : 1, o.outDir(), rows, targets, targets18, fsync[0], targets1920);
    }

    /**
     * Measures the device, then runs every broker in turn: first as a single node for the single-partition
     * and many-partitions suites, then as a cluster for the cluster suite. A broker (or cluster) that fails
     * (exits, does not come up, refuses a topic) is reported in {@code failures} and the run goes on with the
     * next one, unless the failure is fatal.
     */
    private static void runAll(CompareOptions o, PrintStream out, Cleanup cleanup, CpuGaps gaps, List<Row> rows,
                               List<String> meta, List<String> failures, FsyncProbe.Result[] fsync) {
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
        meta.add("Workloads: " + o.recordBytes() + " B records, acks=all, kafka-clients 4.3 producers with their "
            + "defaults otherwise (linger.ms=5, batch.size=16384, idempotent) and consumers with theirs, all in one "
            + "JVM on the same machine; warm-up " + seconds(o.warmupNs()) + " s, measurement "
            + seconds(o.durationNs()) + " s each");
        for (Suite s : o.suites()) {
            List<Spec> specs = o.specs(s);
            if (specs.isEmpty()) {
                continue;
            }
            meta.add("  " + s.id + ": " + specs.getFirst().shape().describe()
                + (s == Suite.MANY_PARTITIONS ? " (each producer's records round-robin over the partitions)" : "")
                + (s == Suite.TXN ? " (each transactional producer on its own partition, transactions of "
                    + o.txnRecords() + " records, commitTransaction on the sender thread; the consumer read_committed)"
                    : "")
                + (s == Suite.SASL_SSL ? " over SASL_SSL" : "")
                + (s.onCluster() ? ", on a " + Suite.CLUSTER_NODES + "-node cluster" : ", on one broker") + "; "
                + String.join(", ", specs.stream().map(sp -> CompareOptions.workloadName(sp.ratePerSec())).toList()));
        }
        meta.add("Brokers: Isthmus (./isthmus start --smp " + o.isthmusSmp() + " --memory " + o.isthmusMemory()
            + ", fdatasync before every ack); Apache Kafka 4.3.0 KRaft single node with defaults; Kafka fsync = "
            + "log.flush.interval.messages=1. JVM heap -Xms" + heap + " -Xmx" + heap + " for each");
        if (o.suites().contains(Suite.CLUSTER)) {
            meta.add("Cluster: " + Suite.CLUSTER_NODES + " Isthmus nodes (--smp " + o.clusterSmp() + " --memory "
                + o.clusterMemory() + " each, every node a controller voter; acks=all answered once a majority has "
                + "the batch on disk) or " + Suite.CLUSTER_NODES + " Apache Kafka 4.3.0 nodes in KRaft combined mode "
                + "(broker and controller in each process, static voters; acks=all answered once every in-sync "
                + "replica has the batch, in its page cache), every JVM -Xms" + heap + " -Xmx" + heap + ", all "
                + "sharing this machine's " + Runtime.getRuntime().availableProcessors() + " CPUs with the client; "
                + "a cluster row's CPU, RSS, heap and pauses are the three brokers'");
        }
        if (o.suites().contains(Suite.SASL_SSL)) {
            meta.add(Security.describe());
        }
        meta.add("Broker CPU per record: the broker's utime + stime over the window / records acknowledged in it "
            + "(s/Mrec: CPU-seconds per million records); heap per record: bytes allocated by every thread of the "
            + "broker JVM over the window (ThreadMXBean.getTotalThreadAllocatedBytes, read through the attach API "
            + "and JMX) / records acknowledged in it (B/rec)");
        out.println("compare: results go to " + o.outDir());
        out.println("compare: " + meta.get(1));
        if (ProcStats.loadAverage1m() > 0.5) {
            out.println("compare: the machine is busy (" + ProcStats.loadAverages() + "); numbers may be noisy, the "
                + "'other' column shows how much CPU others used during each measurement");
        }
        if (o.fsyncProbeNs() > 0) {
            out.println("compare: measuring the device's 4 KiB write + fdatasync latency in " + workDir + " for "
                + seconds(o.fsyncProbeNs()) + " s...");
            try {
                fsync[0] = FsyncProbe.run(workDir, o.fsyncProbeNs(), o.fsyncTool());
                meta.add("Device: " + fsync[0].describe(o.fsyncProbeNs()) + ", in " + o.tmpDir()
                    + " before the brokers");
                out.println("compare: " + fsync[0].describe(o.fsyncProbeNs()));
            } catch (CompareException e) {
                meta.add("Device: not measured: " + e.getMessage());
                out.println("compare: the device's fdatasync latency was not measured: " + e.getMessage());
            }
        }
        List<Spec> onOne = new ArrayList<>();
        for (Suite s : List.of(Suite.SINGLE, Suite.MANY_PARTITIONS, Suite.TXN)) {
            if (o.suites().contains(s)) {
                onOne.addAll(o.specs(s));
            }
        }
        List<Spec> secured = o.suites().contains(Suite.SASL_SSL) ? o.specs(Suite.SASL_SSL) : List.of();
        List<Spec> onCluster = o.suites().contains(Suite.CLUSTER) ? o.specs(Suite.CLUSTER) : List.of();
        int phases = o.brokers().size() * ((onOne.isEmpty() ? 0 : 1) + (secured.isEmpty() ? 0 : 1)
            + (onCluster.isEmpty() ? 0 : 1));
        Security security = secured.isEmpty() ? null : Security.create(workDir.resolve("tls"), o.javaHome());
        int n = 0;
        for (BrokerKind kind : o.brokers()) {
            if (!onOne.isEmpty()) {
                n++;
                runPhase(o, out, cleanup, gaps, rows, failures, workDir, kind, false, null, onOne,
                    "[" + n + "/" + phases + " " + kind.label + "]");
            }
            if (!secured.isEmpty()) {
                n++;
                runPhase(o, out, cleanup, gaps, rows, failures, workDir, kind, false, security, secured,
                    "[" + n + "/" + phases + " " + kind.label + " SASL_SSL]");
            }
            if (!onCluster.isEmpty()) {
                n++;
                runPhase(o, out, cleanup, gaps, rows, failures, workDir, kind, true, null, onCluster,
                    "[" + n + "/" + phases + " " + kind.label + " x" + Suite.CLUSTER_NODES + "]");
            }
        }
    }

    /**
     * Starts one broker or cluster of {@code kind} (a single broker with SASL_SSL when {@code security} is not
     * null), runs {@code specs} against it, stops it.
     */
    private static void runPhase(CompareOptions o, PrintStream out, Cleanup cleanup, CpuGaps gaps, List<Row> rows,
                                 List<String> failures, Path workDir, BrokerKind kind, boolean cluster,
                                 Security security, List<Spec> specs, String prefix) {
        out.println(prefix + " starting " + (cluster ? "a " + Suite.CLUSTER_NODES + "-node cluster on "
            + BrokerProcess.HOST + ":" + o.port() + "-" + (o.port() + 2 * Suite.CLUSTER_NODES - 1)
            : "on " + BrokerProcess.HOST + ":" + o.port()) + " (" + ProcStats.loadAverages() + ")");
        Brokers brokers;
        try {
            brokers = cluster ? Brokers.cluster(kind, o, workDir, cleanup)
                : Brokers.single(kind, o, workDir, cleanup, security);
        } catch (CompareException e) {
            if (e.isFatal()) {
                throw e;
            }
            out.println(prefix + " FAILED: " + e.getMessage());
            failures.add(e.getMessage());
            return;
        }
        out.printf(Locale.ROOT, "%s up in %.1f s (%s, log %s)%n", prefix, brokers.startupNs / 1e9,
            brokers.describePids(), brokers.logs());
        List<HeapMeter> meters = new ArrayList<>();
        for (long pid : brokers.pids()) {
            try {
                meters.add(HeapMeter.attach(pid));
            } catch (CompareException e) {
                out.println(prefix + " heap allocation not measured: " + e.getMessage());
                meters.forEach(HeapMeter::close);
                meters = List.of();
                break;
            }
        }
        List<Row> phaseRows = new ArrayList<>();
        Map<String, Object> adminConfig = new java.util.HashMap<>(brokers.clientConfig);
        adminConfig.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokers.bootstrap);
        try (Admin admin = Admin.create(adminConfig)) {
            if (o.primeNs() > 0) {
                prime(o, out, prefix, brokers, admin, cluster ? o.clusterShape() : Workload.Shape.SINGLE);
            }
            for (Spec spec : specs) {
                phaseRows.add(runWorkload(o, out, prefix, brokers, admin, spec, gaps, meters));
            }
        } catch (CompareException e) {
            if (e.isFatal()) {
                throw e;
            }
            out.println(prefix + " FAILED: " + e.getMessage());
            failures.add(e.getMessage());
        } finally {
            meters.forEach(HeapMeter::close);
            int exit = brokers.stop();
            out.println(prefix + " stopped (exit " + exit + ")");
            if (kind == BrokerKind.ISTHMUS && exit != 0) {
                out.println(prefix + " WARNING: Isthmus did not stop cleanly (exit " + exit + "); see " + brokers.logs());
            }
        }
        // The JVM logs are complete once the brokers have exited: place their pauses in each window.
        for (Row r : phaseRows) {
            rows.add(r.withPauses(brokers.pauses(r.result().measureStartNs(), r.result().measureEndNs())));
        }
    }

    /**
     * An unmeasured saturation run before a broker's workloads. The benchmark client is one JVM for every
     * broker: without this, its JIT warm-up (more than a core for several seconds) would fall on the first
     * broker's first workloads and on no other broker's. The broker warms up too; every broker gets the same.
     */
    private static void prime(CompareOptions o, PrintStream out, String prefix, Brokers brokers, Admin admin,
                              Workload.Shape shape) {
        String topic = brokers.isCluster() ? "compare-" + Suite.CLUSTER_NODES + "node-prime" : "compare-prime";
        String secured = brokers.clientConfig.isEmpty() ? "" : "-sasl-ssl";
        createTopic(admin, topic, shape, brokers);
        String label = prefix + " priming (unmeasured): ";
        Progress progress = new Progress(out, label);
        Workload w = new Workload(brokers.bootstrap, topic, shape, 0, o.recordBytes(), o.primeNs(),
            TimeUnit.MILLISECONDS.toNanos(1), o.drainTimeoutNs(), o.startupTimeoutNs(),
            o.outDir().resolve(brokers.kind.id + (brokers.isCluster() ? "-" + Suite.CLUSTER_NODES + "node" : "")
                + secured + "-prime.hlog"), progress, brokers.clientConfig, 0);
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
            throw new CompareException("interrupted while priming " + brokers.kind.label);
        }
        progress.finish();
        requireAlive(brokers, "while priming");
        out.printf(Locale.ROOT, "%s%,d records acknowledged in %s s%n", label, result.acked(), seconds(o.primeNs()));
    }

    private static void requireAlive(Brokers brokers, String when) {
        BrokerProcess dead = brokers.firstDead();
        if (dead != null) {
            throw new CompareException(brokers.kind.label + (brokers.isCluster() ? " " + brokers.name(dead) : "")
                + " exited with code " + dead.process.exitValue() + " " + when + ": "
                + BrokerProcess.lastLine(dead.logFile) + " (see " + dead.logFile + ")");
        }
    }

    private static Row runWorkload(CompareOptions o, PrintStream out, String prefix, Brokers brokers, Admin admin,
                                   Spec spec, CpuGaps gaps, List<HeapMeter> meters) {
        String topic = spec.topic();
        createTopic(admin, topic, spec.shape(), brokers);
        String hlogName = brokers.kind.id + "-" + spec.fileId() + ".hlog";
        String label = prefix + " " + spec.name() + ": ";
        Progress progress = new Progress(out, label);
        long self = ProcessHandle.current().pid();
        long[] pids = brokers.pids();
        ProcStats.Sample[] broker0 = new ProcStats.Sample[1];
        ProcStats.Sample[] broker1 = new ProcStats.Sample[1];
        long[] selfCpu = new long[2];
        long[] heap0 = new long[meters.size()];
        long[] heapBytes = {meters.isEmpty() ? -1 : 0};
        int[] cpuStalls = {0, 0}; // [0]: inside the window (0/1), [1]: stalled seconds counted there
        Workload w = new Workload(brokers.bootstrap, topic, spec.shape(), spec.ratePerSec(), o.recordBytes(),
            o.warmupNs(), o.durationNs(), o.drainTimeoutNs(), o.startupTimeoutNs(), o.outDir().resolve(hlogName), progress,
            brokers.clientConfig, spec.suite() == Suite.TXN ? o.txnRecords() : 0);
        Workload.Result result;
        try {
            result = w.run(new Workload.Window() {
                @Override
                public void measurementStarted() {
                    broker0[0] = ProcStats.sample(pids);
                    selfCpu[0] = ProcStats.processCpuNs(self);
                    gaps.takeMax(); // the window's first second starts here
                    cpuStalls[0] = 1;
                    try {
                        for (int i = 0; i < meters.size(); i++) {
                            heap0[i] = meters.get(i).allocatedBytes();
                        }
                    } catch (RuntimeException e) {
                        heapBytes[0] = -1; // a broker gone, or JMX refused: the column reads "-"
                    }
                }

                @Override
                public void measurementEnded() {
                    broker1[0] = ProcStats.sample(pids);
                    selfCpu[1] = ProcStats.processCpuNs(self);
                    if (gaps.takeMax().ns() >= CpuGaps.STALL_NS) {
                        cpuStalls[1]++;
                    }
                    cpuStalls[0] = 0;
                    if (heapBytes[0] >= 0) {
                        try {
                            long sum = 0;
                            for (int i = 0; i < meters.size(); i++) {
                                sum += meters.get(i).allocatedSince(heap0[i]);
                            }
                            heapBytes[0] = sum;
                        } catch (RuntimeException e) {
                            heapBytes[0] = -1;
                        }
                    }
                }

                private ProcStats.Sample lastBroker = ProcStats.sample(pids);
                private long lastSelf = ProcStats.processCpuNs(self);
                private ProcStats.Disk lastDisk = ProcStats.disk(brokers.dataDir());

                @Override
                public String secondElapsed() {
                    ProcStats.Sample b = ProcStats.sample(pids);
                    long selfNs = ProcStats.processCpuNs(self);
                    long wallNs = Math.max(1, b.atNs() - lastBroker.atNs());
                    long brokerNs = b.processCpuNs() - lastBroker.processCpuNs();
                    long clientNs = selfNs - lastSelf;
                    long otherNs = Math.max(0, b.machineBusyNs() - lastBroker.machineBusyNs() - brokerNs - clientNs);
                    ProcStats.Disk disk = ProcStats.disk(brokers.dataDir());
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
            throw new CompareException("interrupted during " + spec.name() + " on " + brokers.kind.label);
        }
        progress.finish();
        requireAlive(brokers, "during the " + spec.name() + " workload");
        long wallNs = broker1[0].atNs() - broker0[0].atNs();
        double cpu = broker1[0].cpuPercentSince(broker0[0]);
        long brokerCpuNs = broker1[0].processCpuNs() - broker0[0].processCpuNs();
        long othersNs = (broker1[0].machineBusyNs() - broker0[0].machineBusyNs()) - brokerCpuNs
            - (selfCpu[1] - selfCpu[0]);
        double other = Math.max(0, 100.0 * othersNs / wallNs);
        long peakRss = 0;
        for (long pid : pids) {
            peakRss += ProcStats.statusKb(pid, "VmHWM:") * 1024;
        }
        String base = brokers.kind.id + "-" + spec.fileId();
        writePercentiles(o.outDir().resolve(base + "-ack.hgrm"), result.ack());
        writePercentiles(o.outDir().resolve(base + "-e2e.hgrm"), result.e2e());
        if (spec.suite() == Suite.TXN) {
            writePercentiles(o.outDir().resolve(base + "-commit.hgrm"), result.commit());
            out.printf(Locale.ROOT, "%s%,.0f transactions/s, commit p50 %s p99 %s p99.9 %s max %s ms%n", label,
                result.commitsPerSec(), pct(result.commit(), 50), pct(result.commit(), 99), pct(result.commit(), 99.9),
                Table.ms(result.commit().getMaxValue()));
        }
        Row row = new Row(brokers.kind, spec, result, cpu, other, peakRss, GcLog.Pauses.NONE, hlogName, cpuStalls[1],
            brokerCpuNs, heapBytes[0]);
        out.printf(Locale.ROOT, "%s%,.0f rec/s, e2e p50 %s p99 %s p99.9 %s max %s ms, broker CPU %.0f%% (%s s/Mrec), "
                + "heap %s B/rec, RSS %,d MiB%s%n",
            label, result.throughputPerSec(), pct(result.e2e(), 50), pct(result.e2e(), 99), pct(result.e2e(), 99.9),
            Table.ms(result.e2e().getMaxValue()), cpu, Table.cpuPerMillion(row.cpuSecondsPerMillion()),
            Double.isNaN(row.heapBytesPerRecord()) ? "-" : String.format(Locale.ROOT, "%,.0f", row.heapBytesPerRecord()),
            peakRss >> 20, row.notes().isEmpty() ? "" : "; " + row.notes());
        return row;
    }

    private static String pct(Histogram h, double p) {
        return h.getTotalCount() == 0 ? "-" : Table.ms(h.getValueAtPercentile(p));
    }

    private static void createTopic(Admin admin, String topic, Workload.Shape shape, Brokers brokers) {
        try {
            admin.createTopics(List.of(new NewTopic(topic, shape.partitions(), shape.replication()))).all()
                .get(60, TimeUnit.SECONDS);
        } catch (ExecutionException | TimeoutException e) {
            Throwable c = e instanceof ExecutionException ? e.getCause() : e;
            throw new CompareException(brokers.kind.label + " did not create topic " + topic + ": "
                + c.getClass().getSimpleName() + ": " + c.getMessage() + " (see " + brokers.logs() + ")", e);
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
