package dev.isthmus.bench.compare;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * The command line of {@link Compare}, parsed and checked. Immutable.
 *
 * @param quick              a smoke run: short warm-up and measurement unless given explicitly
 * @param suites             the workload families to run, in run order
 * @param ratesPerSec        the fixed-rate workloads of the single-partition suite, records per second
 * @param manyRatesPerSec    the fixed-rate workloads of the many-partitions suite
 * @param clusterRatesPerSec the fixed-rate workloads of the cluster suite
 * @param txnRatesPerSec     the fixed-rate workloads of the transactions suite
 * @param saslSslRatesPerSec the fixed-rate workloads of the SASL_SSL suite
 * @param saturation         whether to run each suite's saturation workload after its fixed rates
 * @param partitions         partitions of the many-partitions suite's topic
 * @param producers          producers of the many-partitions suite
 * @param consumers          members of the many-partitions suite's consumer group
 * @param clusterPartitions  partitions of the cluster suite's topic (replication factor 3)
 * @param txnProducers       transactional producers of the transactions suite, each with its own partition
 * @param txnRecords         records per transaction in the transactions suite
 * @param brokers            the brokers to run, one after the other
 * @param warmupNs           warm-up of each workload (not measured)
 * @param primeNs            an unmeasured saturation run on each broker (and cluster) before its workloads (0: none)
 * @param durationNs         steady-state measurement of each workload
 * @param drainTimeoutNs     how long to wait after the last send for every acknowledgement and delivery
 * @param startupTimeoutNs   how long a broker (or a cluster) may take to come up
 * @param fsyncProbeNs       how long the device's 4 KiB write + fdatasync latency is measured before the brokers (0: not)
 * @param fsyncTool          {@code auto} (fio when installed, else in-process), {@code fio} or {@code java}
 * @param recordBytes        value size of every record
 * @param port               the Kafka listener of every broker (Apache Kafka's controller takes port + 1; a cluster
 *                           takes port to port + 5)
 * @param outDir             where results go (kept)
 * @param tmpDir             where the data directories go (removed at the end)
 * @param pidFile            where broker pids are appended (read by bench/compare's trap), or null
 * @param root               the repository root (holds the ./isthmus launcher)
 * @param isthmusLauncher    the program started as {@code LAUNCHER start --listen ...}
 * @param isthmusSmp         shard threads of Isthmus
 * @param isthmusMemory      data memory of Isthmus ({@code --memory})
 * @param clusterSmp         shard threads of each Isthmus node of the cluster suite
 * @param clusterMemory      data memory of each Isthmus node of the cluster suite
 * @param kafkaLib           directory of Apache Kafka's broker jars
 * @param javaHome           the JDK that runs Apache Kafka
 */
public record CompareOptions(
    boolean quick,
    List<Suite> suites,
    List<Long> ratesPerSec,
    List<Long> manyRatesPerSec,
    List<Long> clusterRatesPerSec,
    List<Long> txnRatesPerSec,
    List<Long> saslSslRatesPerSec,
    boolean saturation,
    int partitions,
    int producers,
    int consumers,
    int clusterPartitions,
    int txnProducers,
    int txnRecords,
    List<BrokerKind> brokers,
    long warmupNs,
    long primeNs,
    long durationNs,
    long drainTimeoutNs,
    long startupTimeoutNs,
    long fsyncProbeNs,
    String fsyncTool,
    int recordBytes,
    int port,
    Path outDir,
    Path tmpDir,
    Path pidFile,
    Path root,
    Path isthmusLauncher,
    int isthmusSmp,
    String isthmusMemory,
    int clusterSmp,
    String clusterMemory,
    Path kafkaLib,
    Path javaHome) {

    static final String USAGE = """
        usage: bench/compare [options]
          Runs Isthmus and Apache Kafka 4.3 (defaults, then fsync per batch) one after the other on loopback
          with the same kafka-clients producers and consumers, and prints one side-by-side table.
          --quick                  smoke run: 1 s warm-up and 2 s measurement per workload, 2 s fsync probe
          --workloads W1,W2,...    single, many-partitions, txn, sasl-ssl, cluster (default all five, in that
                                   order):
                                   single: 1 partition, 1 producer, 1 consumer on one broker;
                                   many-partitions: --partitions partitions, --producers producers and a
                                   consumer group of --consumers on one broker;
                                   txn: --txn-producers transactional producers, each on its own partition,
                                   committing every --txn-records records, one read_committed consumer;
                                   sasl-ssl: as single, over SASL_SSL (TLS 1.3, SCRAM-SHA-512) on a broker
                                   started with that listener only;
                                   cluster: 3 brokers on this machine, replication factor 3, acks=all
          --rates R1,R2,...        fixed rates of 'single' in records/s (default 5000,20000,50000; 'none' for none)
          --many-partitions-rates R1,...  fixed rates of 'many-partitions' (default 20000,50000; 'none' for none)
          --cluster-rates R1,...   fixed rates of 'cluster' (default 20000; 'none' for none)
          --txn-rates R1,...       fixed rates of 'txn' (default 20000; 'none' for none)
          --sasl-ssl-rates R1,...  fixed rates of 'sasl-ssl' (default 20000; 'none' for none)
          --no-saturation          skip the saturation workloads
          --partitions N           partitions of 'many-partitions' (default 64)
          --producers N            producers of 'many-partitions' (default 4)
          --consumers N            consumer group members of 'many-partitions' (default 4)
          --cluster-partitions N   partitions of 'cluster' (default 3, replication factor 3)
          --txn-producers N        transactional producers of 'txn', one partition each (default 4)
          --txn-records N          records per transaction of 'txn' (default 100)
          --brokers B1,B2,...      isthmus, kafka, kafka-fsync (default all three, in that order)
          --warmup DURATION        warm-up per workload, e.g. 10s (default 10s)
          --prime DURATION         unmeasured saturation run on each broker (and cluster) before its workloads,
                                   so the client JVM is as warm for the first broker as for the others
                                   (default 15s; 0 for none; --quick: none)
          --duration DURATION      measurement per workload, e.g. 60s (default 60s)
          --drain-timeout DURATION wait for outstanding acks and deliveries after the last send (default 60s)
          --startup-timeout DURATION  a broker or cluster must come up within this (default 90s)
          --fsync-probe DURATION   measure the device's 4 KiB write + fdatasync latency in --tmp-dir for this
                                   long before the brokers (default 20s; --quick: 2s; 0 for none)
          --fsync-tool T           auto (fio when installed, else in-process O_DIRECT + fdatasync), fio, java
                                   (default auto)
          --record-bytes N         value size (default 1024)
          --port N                 Kafka listener of every broker; Apache Kafka's controller uses N+1; the
                                   cluster's brokers listen on N to N+2 and talk to each other on N+3 to N+5
                                   (default 19092)
          --out DIR                results directory (default bench/target/compare/<date-time>)
          --tmp-dir DIR            where data directories are made and removed (default java.io.tmpdir)
          --isthmus-smp N          Isthmus shard threads (default 2)
          --isthmus-memory SIZE    Isthmus data memory (default 2G)
          --cluster-smp N          shard threads of each Isthmus node of 'cluster' (default 1)
          --cluster-memory SIZE    data memory of each Isthmus node of 'cluster' (default 512M)
          --kafka-lib DIR          Apache Kafka's jars (default bench/target/kafka-lib, fetched by bench/compare)
          --root DIR               repository root (default: found from the working directory)
          --isthmus-launcher FILE  the Isthmus launcher (default ROOT/isthmus)
          --java-home DIR          JDK that runs Apache Kafka (default: the one running this)
          --pid-file FILE          append each broker's pid here (used by bench/compare to clean up)
        """;

    static final List<Long> DEFAULT_RATES = List.of(5_000L, 20_000L, 50_000L);
    static final List<Long> DEFAULT_MANY_RATES = List.of(20_000L, 50_000L);
    static final List<Long> DEFAULT_CLUSTER_RATES = List.of(20_000L);
    static final List<Long> DEFAULT_TXN_RATES = List.of(20_000L);
    static final List<Long> DEFAULT_SASL_SSL_RATES = List.of(20_000L);

    /** Parses {@code args}; throws IllegalArgumentException with one sentence for bad input, returns null for --help. */
    static CompareOptions parse(String[] args) {
        boolean quick = false;
        boolean saturation = true;
        List<Long> rates = DEFAULT_RATES;
        List<Long> manyRates = DEFAULT_MANY_RATES;
        List<Long> clusterRates = DEFAULT_CLUSTER_RATES;
        List<Long> txnRates = DEFAULT_TXN_RATES;
        List<Long> saslSslRates = DEFAULT_SASL_SSL_RATES;
        int txnProducers = 4;
        int txnRecords = 100;
        List<Suite> suites = List.of(Suite.values());
        int partitions = 64;
        int producers = 4;
        int consumers = 4;
        int clusterPartitions = 3;
        Long fsyncProbeNs = null;
        String fsyncTool = "auto";
        int clusterSmp = 1;
        String clusterMemory = "512M";
        List<BrokerKind> brokers = List.of(BrokerKind.values());
        Long warmupNs = null;
        Long primeNs = null;
        Long durationNs = null;
        long drainNs = TimeUnit.SECONDS.toNanos(60);
        long startupNs = TimeUnit.SECONDS.toNanos(90);
        int recordBytes = 1024;
        int port = 19092;
        Path out = null;
        Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
        Path pidFile = null;
        Path root = null;
        Path launcher = null;
        int smp = 2;
        String memory = "2G";
        Path kafkaLib = null;
        Path javaHome = Path.of(System.getProperty("java.home"));
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "-h", "--help" -> {
                    return null;
                }
                case "--quick" -> quick = true;
                case "--no-saturation" -> saturation = false;
                case "--saturation" -> saturation = true;
                case "--rates" -> rates = parseRates(value(args, ++i, a), a);
                case "--many-partitions-rates" -> manyRates = parseRates(value(args, ++i, a), a);
                case "--cluster-rates" -> clusterRates = parseRates(value(args, ++i, a), a);
                case "--txn-rates" -> txnRates = parseRates(value(args, ++i, a), a);
                case "--sasl-ssl-rates" -> saslSslRates = parseRates(value(args, ++i, a), a);
                case "--txn-producers" -> txnProducers = parseInt(value(args, ++i, a), a, 1, 64);
                case "--txn-records" -> txnRecords = parseInt(value(args, ++i, a), a, 1, 100_000);
                case "--workloads" -> suites = parseSuites(value(args, ++i, a));
                case "--partitions" -> partitions = parseInt(value(args, ++i, a), a, 1, 10_000);
                case "--producers" -> producers = parseInt(value(args, ++i, a), a, 1, 64);
                case "--consumers" -> consumers = parseInt(value(args, ++i, a), a, 1, 64);
                case "--cluster-partitions" -> clusterPartitions = parseInt(value(args, ++i, a), a, 1, 1_000);
                case "--fsync-probe" -> fsyncProbeNs = parseDurationNs(value(args, ++i, a), a);
                case "--fsync-tool" -> fsyncTool = parseFsyncTool(value(args, ++i, a));
                case "--cluster-smp" -> clusterSmp = parseInt(value(args, ++i, a), a, 1, 1024);
                case "--cluster-memory" -> clusterMemory = value(args, ++i, a);
                case "--brokers" -> brokers = parseBrokers(value(args, ++i, a));
                case "--warmup" -> warmupNs = parseDurationNs(value(args, ++i, a), a);
                case "--prime" -> primeNs = parseDurationNs(value(args, ++i, a), a);
                case "--duration" -> durationNs = parseDurationNs(value(args, ++i, a), a);
                case "--drain-timeout" -> drainNs = parseDurationNs(value(args, ++i, a), a);
                case "--startup-timeout" -> startupNs = parseDurationNs(value(args, ++i, a), a);
                case "--record-bytes" -> recordBytes = parseInt(value(args, ++i, a), a, Workload.HEADER_BYTES, 1 << 20);
                case "--port" -> port = parseInt(value(args, ++i, a), a, 1, 65530);
                case "--out" -> out = Path.of(value(args, ++i, a));
                case "--tmp-dir" -> tmp = Path.of(value(args, ++i, a));
                case "--pid-file" -> pidFile = Path.of(value(args, ++i, a));
                case "--root" -> root = Path.of(value(args, ++i, a));
                case "--isthmus-launcher" -> launcher = Path.of(value(args, ++i, a));
                case "--isthmus-smp" -> smp = parseInt(value(args, ++i, a), a, 1, 1024);
                case "--isthmus-memory" -> memory = value(args, ++i, a);
                case "--kafka-lib" -> kafkaLib = Path.of(value(args, ++i, a));
                case "--java-home" -> javaHome = Path.of(value(args, ++i, a));
                default -> throw new IllegalArgumentException("unknown option '" + a + "'; see bench/compare --help");
            }
        }
        if (warmupNs == null) {
            warmupNs = TimeUnit.SECONDS.toNanos(quick ? 1 : 10);
        }
        if (primeNs == null) {
            primeNs = quick ? 0 : TimeUnit.SECONDS.toNanos(15);
        }
        if (durationNs == null) {
            durationNs = TimeUnit.SECONDS.toNanos(quick ? 2 : 60);
        }
        if (fsyncProbeNs == null) {
            fsyncProbeNs = TimeUnit.SECONDS.toNanos(quick ? 2 : 20);
        }
        if (durationNs <= 0) {
            throw new IllegalArgumentException("--duration must be positive");
        }
        if (!saturation) {
            List<String> empty = new ArrayList<>();
            for (Suite s : suites) {
                List<Long> r = switch (s) {
                    case SINGLE -> rates;
                    case MANY_PARTITIONS -> manyRates;
                    case TXN -> txnRates;
                    case SASL_SSL -> saslSslRates;
                    case CLUSTER -> clusterRates;
                };
                if (r.isEmpty()) {
                    empty.add(s.id);
                }
            }
            if (!empty.isEmpty()) {
                throw new IllegalArgumentException("nothing to run for " + String.join(", ", empty)
                    + ": no rates and --no-saturation");
            }
        }
        if (root == null) {
            root = findRoot();
        }
        root = root.toAbsolutePath().normalize();
        if (launcher == null) {
            launcher = root.resolve("isthmus");
        }
        if (kafkaLib == null) {
            kafkaLib = root.resolve("bench/target/kafka-lib");
        }
        if (out == null) {
            out = root.resolve("bench/target/compare")
                .resolve(LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
        }
        if (!Files.isDirectory(tmp)) {
            throw new IllegalArgumentException("--tmp-dir " + tmp + " is not a directory");
        }
        return new CompareOptions(quick, List.copyOf(suites), List.copyOf(rates), List.copyOf(manyRates),
            List.copyOf(clusterRates), List.copyOf(txnRates), List.copyOf(saslSslRates), saturation, partitions,
            producers, consumers, clusterPartitions, txnProducers, txnRecords, List.copyOf(brokers), warmupNs, primeNs, durationNs, drainNs, startupNs, fsyncProbeNs, fsyncTool,
            recordBytes, port, out.toAbsolutePath(), tmp.toAbsolutePath(),
            pidFile == null ? null : pidFile.toAbsolutePath(), root, launcher.toAbsolutePath(), smp, memory,
            clusterSmp, clusterMemory, kafkaLib.toAbsolutePath(), javaHome.toAbsolutePath());
    }

    /** The single-partition suite's rates in run order: the fixed rates ascending, then saturation (rate 0). */
    List<Long> workloads() {
        return ordered(ratesPerSec);
    }

    /** The workloads of {@code suite} in run order: its fixed rates ascending, then saturation. */
    List<Spec> specs(Suite suite) {
        return switch (suite) {
            case SINGLE -> ordered(ratesPerSec).stream().map(r -> new Spec(suite, Workload.Shape.SINGLE, r)).toList();
            case MANY_PARTITIONS -> ordered(manyRatesPerSec).stream().map(r -> new Spec(suite, manyShape(), r)).toList();
            case TXN -> ordered(txnRatesPerSec).stream().map(r -> new Spec(suite, txnShape(), r)).toList();
            case SASL_SSL -> ordered(saslSslRatesPerSec).stream().map(r -> new Spec(suite, Workload.Shape.SINGLE, r)).toList();
            case CLUSTER -> ordered(clusterRatesPerSec).stream().map(r -> new Spec(suite, clusterShape(), r)).toList();
        };
    }

    /** Every workload of the run, suite by suite. */
    List<Spec> specs() {
        List<Spec> all = new ArrayList<>();
        suites.forEach(s -> all.addAll(specs(s)));
        return all;
    }

    Workload.Shape manyShape() {
        return new Workload.Shape(partitions, (short) 1, producers, consumers, true);
    }

    /** The transactions suite: one partition per transactional producer, one consumer assigned them all. */
    Workload.Shape txnShape() {
        return new Workload.Shape(txnProducers, (short) 1, txnProducers, 1, false);
    }

    Workload.Shape clusterShape() {
        return new Workload.Shape(clusterPartitions, (short) Suite.CLUSTER_NODES, 1, 1, false);
    }

    private List<Long> ordered(List<Long> rates) {
        List<Long> w = new ArrayList<>(rates);
        w.sort(Long::compare);
        if (saturation) {
            w.add(0L);
        }
        return w;
    }

    static String workloadName(long ratePerSec) {
        return ratePerSec == 0 ? "saturation" : ratePerSec + "/s";
    }

    private static String value(String[] args, int i, String option) {
        if (i >= args.length) {
            throw new IllegalArgumentException(option + " needs a value; see bench/compare --help");
        }
        return args[i];
    }

    private static List<Suite> parseSuites(String s) {
        List<Suite> picked = new ArrayList<>();
        for (String part : s.split(",")) {
            Suite w = Suite.parse(part);
            if (!picked.contains(w)) {
                picked.add(w);
            }
        }
        picked.sort(null); // always single, many-partitions, txn, sasl-ssl, cluster
        return picked;
    }

    private static String parseFsyncTool(String s) {
        String t = s.trim().toLowerCase(Locale.ROOT);
        if (!List.of("auto", "fio", "java").contains(t)) {
            throw new IllegalArgumentException("--fsync-tool takes auto, fio or java; '" + s + "' is none of them");
        }
        return t;
    }

    private static List<Long> parseRates(String s, String option) {
        if (s.equals("none")) {
            return List.of();
        }
        List<Long> rates = new ArrayList<>();
        for (String part : s.split(",")) {
            String p = part.trim().toLowerCase(Locale.ROOT);
            long mult = 1;
            if (p.endsWith("k")) {
                mult = 1000;
                p = p.substring(0, p.length() - 1);
            }
            long r;
            try {
                r = Long.parseLong(p) * mult;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(option + " takes records/s like 5000,20000,50000; '" + part + "' is not a number");
            }
            if (r <= 0 || r > 10_000_000) {
                throw new IllegalArgumentException(option + ": " + r + " records/s is out of range (1 to 10000000)");
            }
            if (!rates.contains(r)) {
                rates.add(r);
            }
        }
        return rates;
    }

    private static List<BrokerKind> parseBrokers(String s) {
        List<BrokerKind> picked = new ArrayList<>();
        for (String part : s.split(",")) {
            BrokerKind k = BrokerKind.parse(part.trim());
            if (!picked.contains(k)) {
                picked.add(k);
            }
        }
        picked.sort(null); // always isthmus, kafka, kafka-fsync
        return picked;
    }

    public static long parseDurationNs(String s, String option) {
        String t = s.trim().toLowerCase(Locale.ROOT);
        long unitNs;
        String num;
        if (t.endsWith("ms")) {
            unitNs = TimeUnit.MILLISECONDS.toNanos(1);
            num = t.substring(0, t.length() - 2);
        } else if (t.endsWith("s")) {
            unitNs = TimeUnit.SECONDS.toNanos(1);
            num = t.substring(0, t.length() - 1);
        } else if (t.endsWith("m")) {
            unitNs = TimeUnit.MINUTES.toNanos(1);
            num = t.substring(0, t.length() - 1);
        } else {
            unitNs = TimeUnit.SECONDS.toNanos(1);
            num = t;
        }
        try {
            double v = Double.parseDouble(num);
            if (v < 0 || Double.isNaN(v) || v > 86_400) {
                throw new NumberFormatException();
            }
            return (long) (v * unitNs);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " takes a duration like 500ms, 10s or 2m; '" + s + "' is not one");
        }
    }

    private static int parseInt(String s, String option, int min, int max) {
        try {
            int v = Integer.parseInt(s.trim());
            if (v < min || v > max) {
                throw new NumberFormatException();
            }
            return v;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " takes a whole number from " + min + " to " + max + "; '" + s + "' is not one");
        }
    }

    /** The nearest directory at or above the working directory with both the launcher and a pom.xml. */
    private static Path findRoot() {
        String prop = System.getProperty("isthmus.root");
        if (prop != null) {
            return Path.of(prop);
        }
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("isthmus")) && Files.isRegularFile(p.resolve("pom.xml"))) {
                return p;
            }
        }
        throw new IllegalArgumentException("cannot find the repository root (a directory with ./isthmus and pom.xml) "
            + "above " + Path.of("").toAbsolutePath() + "; pass --root DIR");
    }
}
