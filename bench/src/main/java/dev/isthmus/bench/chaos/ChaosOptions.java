package dev.isthmus.bench.chaos;

import dev.isthmus.bench.compare.CompareOptions;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * The command line of {@link Chaos}, parsed and checked. Immutable.
 *
 * @param quick          the CI run: a 1-node then a 3-node cluster, every workload and every fault that fits
 * @param clusterSizes   the clusters to run, one after the other (1, 3 or 5 nodes each)
 * @param timeNs         length of each cluster's run (faults are scheduled within it)
 * @param cycles         stop after this many faults instead (0: run for {@code timeNs})
 * @param workloads      the workloads
 * @param faults         the faults the nemesis may schedule (those that do not fit a cluster are skipped there)
 * @param seed           the schedule's seed
 * @param ratePerSec     writes per second of the append workload, over all its producers
 * @param producers      producers of the append workload
 * @param partitions     partitions of the append topic
 * @param valueBytes     size of each record value
 * @param faultMinNs     shortest fault
 * @param faultMaxNs     longest fault
 * @param quietMinNs     shortest quiet time between faults
 * @param quietMaxNs     longest quiet time between faults
 * @param smp            shards per broker
 * @param memory         --memory of each broker
 * @param segmentBytes   segment.bytes of the append topic (small: segments roll, so a full disk bites)
 * @param txnPartitions  the brokers' transaction.state.log.num.partitions (with the txn workload)
 * @param netns          whether to try network namespaces
 * @param subnet         first two octets of the namespaces' private /16, or null to pick a free one
 * @param basePort       first port without namespaces
 * @param diskBytes      size of each node's loop-mounted file system (when disk-full is scheduled)
 * @param startupTimeoutNs how long a node may take to come up
 * @param outDir         results directory
 * @param tmpDir         where data directories go (removed at the end)
 * @param pidFile        broker pids for bench/chaos's trap, or null
 * @param root           repository root
 * @param runId          short id in the names of namespaces and links
 * @param checkFile      --check: only check this history, or null
 */
record ChaosOptions(boolean quick, List<Integer> clusterSizes, long timeNs, int cycles, List<String> workloads,
                    List<Fault> faults, long seed, int ratePerSec, int producers, int partitions, int valueBytes,
                    long faultMinNs, long faultMaxNs, long quietMinNs, long quietMaxNs, int smp, String memory,
                    int segmentBytes, int txnPartitions, boolean netns, String subnet, int basePort, long diskBytes,
                    long startupTimeoutNs, Path outDir, Path tmpDir, Path pidFile, Path root, String runId,
                    Path checkFile) {

    static final String USAGE = """
        usage: bench/chaos [options]
          Starts Isthmus clusters on this machine, runs workloads that record every operation into a history,
          injects faults on a seeded schedule, then checks the history and reports anomalies and recovery times.
          Exit 0 only when every anomaly count is 0.
          --quick                  the CI run (about 2 minutes): a 1-node then a 3-node cluster
          --time DURATION          length of each cluster's run, e.g. 30m (default 5m; --quick: 20s and 40s)
          --nodes N[,N...]         cluster sizes, run one after the other: 1, 3 or 5 (default 3; --quick: 1,3)
          --workload W[,W...]      append, group, txn, admin (default all)
          --nemesis F[,F...]       faults to schedule (default all; 'none' for none):
                                   kill, kill-leader, kill-controller, kill-all, pause, partition-half,
                                   partition-leader, partition-bridge, disk-full, torn-write, rolling-restart
          --cycles N               stop after N faults instead of after --time
          --seed N                 the schedule's seed (default random; printed, replay with it)
          --rate N                 writes per second over all producers (default 200)
          --producers N            idempotent producers of the append workload (default 2)
          --partitions N           partitions of the append topic (default 6)
          --value-bytes N          size of each value (default 64)
          --fault-duration A..B    how long each fault lasts, drawn uniformly (default 3s..10s)
          --quiet A..B             time between faults, drawn uniformly (default 5s..15s)
          --smp N                  shards per broker (default 1)
          --memory SIZE            --memory of each broker (default 256M)
          --segment-bytes N        segment.bytes of the append topic (default 1048576)
          --txn-partitions N       the brokers' transaction.state.log.num.partitions when the txn workload
                                   runs (default 16, as many as __consumer_offsets has; Kafka's 50 is
                                   150 Raft groups on 3 nodes of one shard each)
          --no-netns               run every node on 127.0.0.1 (network partitions are then skipped)
          --subnet A.B             private /16 of the namespaces (default: a free one of 10.200 to 10.254)
          --port N                 first port without namespaces (default 19300)
          --disk-size SIZE         each node's loop-mounted file system for disk-full (default 1G)
          --startup-timeout DURATION  a node must be ready within this (default 90s)
          --out DIR                results directory (default bench/target/chaos/<date-time>)
          --tmp-dir DIR            where data directories are made and removed (default java.io.tmpdir)
          --check FILE             check an existing history file and print the summary (no cluster)
          --root DIR               repository root (default: found from the working directory)
        """;

    static final List<String> WORKLOADS = List.of("append", "group", "txn", "admin");

    static ChaosOptions parse(String[] args) {
        boolean quick = false;
        List<Integer> sizes = null;
        Long timeNs = null;
        int cycles = 0;
        List<String> workloads = WORKLOADS;
        List<Fault> faults = List.of(Fault.values());
        Long seed = null;
        int rate = 200;
        int producers = 2;
        int partitions = 6;
        int valueBytes = 64;
        long[] fault = {TimeUnit.SECONDS.toNanos(3), TimeUnit.SECONDS.toNanos(10)};
        long[] quiet = {TimeUnit.SECONDS.toNanos(5), TimeUnit.SECONDS.toNanos(15)};
        boolean faultGiven = false;
        boolean quietGiven = false;
        int smp = 1;
        String memory = "256M";
        int segmentBytes = 1 << 20;
        int txnPartitions = 16;
        boolean netns = true;
        String subnet = null;
        int port = 19300;
        long diskBytes = 1L << 30;
        long startupNs = TimeUnit.SECONDS.toNanos(90);
        Path out = null;
        Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
        Path pidFile = null;
        Path root = null;
        String runId = null;
        Path check = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "-h", "--help" -> {
                    return null;
                }
                case "--quick" -> quick = true;
                case "--time" -> timeNs = CompareOptions.parseDurationNs(value(args, ++i, a), a);
                case "--nodes" -> {
                    sizes = new ArrayList<>();
                    for (String s : value(args, ++i, a).split(",")) {
                        int n = parseInt(s, a, 1, 5);
                        if (n != 1 && n != 3 && n != 5) {
                            throw new IllegalArgumentException("--nodes takes cluster sizes 1, 3 or 5; '" + s + "' is not one");
                        }
                        sizes.add(n);
                    }
                }
                case "--workload", "--workloads" -> {
                    workloads = new ArrayList<>();
                    for (String s : value(args, ++i, a).split(",")) {
                        String w = s.trim().toLowerCase(Locale.ROOT);
                        if (!WORKLOADS.contains(w)) {
                            throw new IllegalArgumentException("--workload takes " + String.join(", ", WORKLOADS)
                                + "; '" + s + "' is not one");
                        }
                        if (!workloads.contains(w)) {
                            workloads.add(w);
                        }
                    }
                    if (!workloads.contains("append")) {
                        workloads.add(0, "append"); // the others read or run beside its topic
                    }
                }
                case "--nemesis" -> faults = Fault.parseList(value(args, ++i, a));
                case "--cycles" -> cycles = parseInt(value(args, ++i, a), a, 1, 1_000_000);
                case "--seed" -> {
                    String s = value(args, ++i, a);
                    try {
                        seed = Long.parseLong(s.trim());
                    } catch (NumberFormatException e) {
                        throw new IllegalArgumentException("--seed takes a whole number; '" + s + "' is not one");
                    }
                }
                case "--rate" -> rate = parseInt(value(args, ++i, a), a, 1, 1_000_000);
                case "--producers" -> producers = parseInt(value(args, ++i, a), a, 1, 64);
                case "--partitions" -> partitions = parseInt(value(args, ++i, a), a, 1, 1000);
                case "--value-bytes" -> valueBytes = parseInt(value(args, ++i, a), a, 12, 1 << 20);
                case "--fault-duration" -> {
                    fault = range(value(args, ++i, a), a);
                    faultGiven = true;
                }
                case "--quiet" -> {
                    quiet = range(value(args, ++i, a), a);
                    quietGiven = true;
                }
                case "--smp" -> smp = parseInt(value(args, ++i, a), a, 1, 64);
                case "--memory" -> memory = value(args, ++i, a);
                case "--segment-bytes" -> segmentBytes = parseInt(value(args, ++i, a), a, 14, Integer.MAX_VALUE);
                case "--txn-partitions" -> txnPartitions = parseInt(value(args, ++i, a), a, 1, 1000);
                case "--no-netns" -> netns = false;
                case "--subnet" -> {
                    subnet = value(args, ++i, a);
                    if (!subnet.matches("10\\.(\\d{1,3})|192\\.168|172\\.(1[6-9]|2\\d|3[01])")
                            || (subnet.startsWith("10.") && Integer.parseInt(subnet.substring(3)) > 255)) {
                        throw new IllegalArgumentException("--subnet takes the first two octets of a private /16, "
                            + "e.g. 10.213 or 192.168; '" + subnet + "' is not one");
                    }
                }
                case "--port" -> port = parseInt(value(args, ++i, a), a, 1024, 65000);
                case "--disk-size" -> diskBytes = parseSize(value(args, ++i, a), a);
                case "--startup-timeout" -> startupNs = CompareOptions.parseDurationNs(value(args, ++i, a), a);
                case "--out" -> out = Path.of(value(args, ++i, a));
                case "--tmp-dir" -> tmp = Path.of(value(args, ++i, a));
                case "--pid-file" -> pidFile = Path.of(value(args, ++i, a));
                case "--root" -> root = Path.of(value(args, ++i, a));
                case "--run-id" -> {
                    runId = value(args, ++i, a);
                    if (!runId.matches("[0-9a-z]{1,6}")) {
                        throw new IllegalArgumentException("--run-id takes 1 to 6 lower-case letters or digits");
                    }
                }
                case "--check" -> check = Path.of(value(args, ++i, a));
                default -> throw new IllegalArgumentException("unknown option " + a + "; bench/chaos --help lists them");
            }
        }
        if (sizes == null) {
            sizes = quick ? List.of(1, 3) : List.of(3);
        }
        if (timeNs == null) {
            timeNs = quick ? 0L : TimeUnit.MINUTES.toNanos(5); // 0: per cluster size, see runNs
        }
        if (quick && !faultGiven) {
            fault = new long[] {TimeUnit.SECONDS.toNanos(2), TimeUnit.SECONDS.toNanos(5)};
        }
        if (quick && !quietGiven) {
            quiet = new long[] {TimeUnit.SECONDS.toNanos(2), TimeUnit.SECONDS.toNanos(5)};
        }
        if (seed == null) {
            seed = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
        }
        if (root == null) {
            root = findRoot();
        }
        if (out == null) {
            out = root.resolve("bench/target/chaos")
                .resolve(LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
        }
        if (runId == null) {
            runId = Long.toString(ThreadLocalRandom.current().nextInt(36 * 36 * 36, 36 * 36 * 36 * 36), 36);
        }
        return new ChaosOptions(quick, List.copyOf(sizes), timeNs, cycles, List.copyOf(workloads), List.copyOf(faults),
            seed, rate, producers, partitions, valueBytes, fault[0], fault[1], quiet[0], quiet[1], smp, memory,
            segmentBytes, txnPartitions, netns, subnet, port, diskBytes, startupNs, out, tmp, pidFile, root, runId, check);
    }

    /** The run time of a cluster of {@code nodes}: --time, or for --quick 20 s (1 node) and 40 s (more). */
    long runNs(int nodes) {
        if (timeNs > 0) {
            return timeNs;
        }
        return TimeUnit.SECONDS.toNanos(nodes == 1 ? 20 : 40);
    }

    boolean has(String workload) {
        return workloads.contains(workload);
    }

    Path launcher() {
        return root.resolve("isthmus");
    }

    private static String value(String[] args, int i, String option) {
        if (i >= args.length) {
            throw new IllegalArgumentException(option + " needs a value");
        }
        return args[i];
    }

    private static long[] range(String s, String option) {
        String[] parts = s.split("\\.\\.");
        if (parts.length != 2) {
            throw new IllegalArgumentException(option + " takes a range like 3s..10s; '" + s + "' is not one");
        }
        long lo = CompareOptions.parseDurationNs(parts[0], option);
        long hi = CompareOptions.parseDurationNs(parts[1], option);
        if (hi < lo) {
            throw new IllegalArgumentException(option + ": " + parts[1] + " is shorter than " + parts[0]);
        }
        return new long[] {lo, hi};
    }

    static int parseInt(String s, String option, int min, int max) {
        try {
            int v = Integer.parseInt(s.trim());
            if (v < min || v > max) {
                throw new NumberFormatException();
            }
            return v;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " takes a whole number from " + min + " to " + max + "; '" + s
                + "' is not one");
        }
    }

    static long parseSize(String s, String option) {
        String t = s.trim().toUpperCase(Locale.ROOT);
        long mult = 1;
        if (t.endsWith("K")) {
            mult = 1L << 10;
        } else if (t.endsWith("M")) {
            mult = 1L << 20;
        } else if (t.endsWith("G")) {
            mult = 1L << 30;
        }
        if (mult > 1) {
            t = t.substring(0, t.length() - 1);
        }
        try {
            long v = Long.parseLong(t) * mult;
            if (v < (64L << 20)) {
                throw new NumberFormatException();
            }
            return v;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " takes a size of at least 64M, like 512M or 2G; '" + s
                + "' is not one");
        }
    }

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
