package dev.isthmus.bench.compare;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.Uuid;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One broker under test, as a child process on 127.0.0.1 with a fresh data directory: Isthmus through its
 * launcher ({@code ./isthmus start --listen ... --data-dir ... --smp N --memory SIZE}), or Apache Kafka as a
 * KRaft single node (broker and controller in one process; {@code kafka.tools.StorageTool format --standalone},
 * then {@code kafka.Kafka server.properties}) from the jars in {@code --kafka-lib}.
 *
 * <p>Both JVMs get the same heap (the launcher's {@code -Xmx}, as {@code -Xms} and {@code -Xmx}) and log
 * every safepoint for {@link GcLog}. Isthmus keeps its launcher's GC (ZGC); Kafka gets the flags of
 * its own {@code kafka-run-class.sh} (G1, 20 ms pause goal). The broker's output goes to
 * {@code OUT/broker-ID.log}.
 *
 * <p>Lifecycle: {@link #start} returns once the broker answers a DescribeCluster request, or throws a
 * {@link CompareException} (port taken, process exited, timeout) after stopping what it started;
 * {@link #stop} stops it and removes its data directory. Used by the run's thread only.
 */
public final class BrokerProcess {

    static final String HOST = "127.0.0.1";

    /** Kafka's own JVM flags from bin/kafka-run-class.sh (KAFKA_JVM_PERFORMANCE_OPTS). */
    private static final List<String> KAFKA_JVM_FLAGS = List.of("-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true");

    private static final long FORMAT_TIMEOUT_SEC = 120;

    final BrokerKind kind;
    final Process process;
    final String bootstrap;
    final Path logFile;
    final Path gcLog;
    final String heap;
    /** System.nanoTime() when the process was started. */
    final long launchedNs;
    /** How long it took to come up (set once it has). */
    long startupNs;
    /** The broker's directory (data, and Kafka's configuration); removed by {@link #stop}. */
    final Path dataDir;
    /** What a client adds to its configuration to talk to this broker: empty for PLAINTEXT ({@link Security}). */
    final Map<String, Object> clientConfig;
    private final Cleanup cleanup;

    private BrokerProcess(BrokerKind kind, Process process, String bootstrap, Path logFile, Path gcLog, String heap,
                          long launchedNs, Path dataDir, Map<String, Object> clientConfig, Cleanup cleanup) {
        this.kind = kind;
        this.process = process;
        this.bootstrap = bootstrap;
        this.logFile = logFile;
        this.gcLog = gcLog;
        this.heap = heap;
        this.launchedNs = launchedNs;
        this.dataDir = dataDir;
        this.clientConfig = clientConfig;
        this.cleanup = cleanup;
    }

    long pid() {
        return process.pid();
    }

    /**
     * Starts {@code kind} in a new directory under {@code workDir} and waits until it serves requests: with its
     * one PLAINTEXT listener, or with {@code security} (not null) its one SASL_SSL listener.
     */
    static BrokerProcess start(BrokerKind kind, CompareOptions o, Path workDir, Cleanup cleanup, Security security) {
        requirePortFree(o.port(), "the Kafka listener of " + kind.label);
        if (kind.isKafka()) {
            requirePortFree(o.port() + 1, "Apache Kafka's controller listener");
        }
        BrokerProcess b = launch(kind, o, workDir, cleanup, 0, 1, null, security);
        try {
            b.awaitUp(System.nanoTime() + o.startupTimeoutNs(), o.startupTimeoutNs());
        } catch (RuntimeException e) {
            cleanup.stop(b.process);
            throw e;
        }
        b.startupNs = System.nanoTime() - b.launchedNs;
        return b;
    }

    /**
     * Starts node {@code node} of {@code nodes} (1: a single broker) without waiting for it: a cluster's nodes
     * must all be started before any of them can come up (each needs a majority of the controllers).
     *
     * <p>Ports, from {@code --port} P: a single broker listens on P (Kafka's controller on P + 1); node i of a
     * cluster listens on P + i, and its node-to-node listener (Isthmus's Raft RPC, Kafka's controller) is
     * P + nodes + i.
     *
     * @param clusterId Kafka's cluster id, the same for every node of a cluster (null for a single broker)
     * @param security  a single broker's SASL_SSL set-up, or null for PLAINTEXT (a cluster is always PLAINTEXT)
     */
    static BrokerProcess launch(BrokerKind kind, CompareOptions o, Path workDir, Cleanup cleanup, int node, int nodes,
                                String clusterId, Security security) {
        if (security != null && nodes != 1) {
            throw new IllegalArgumentException("SASL_SSL is set up for a single broker only");
        }
        String heap = launcherHeap(o.isthmusLauncher());
        String name = (nodes == 1 ? kind.id : kind.id + "-node" + node) + (security == null ? "" : "-sasl-ssl");
        Path dataDir = workDir.resolve(name);
        Path logFile = o.outDir().resolve("broker-" + name + ".log");
        Path gcLog = o.outDir().resolve("gc-" + name + ".log");
        if (gcLog.toString().contains(" ")) {
            throw new CompareException("the results directory " + o.outDir() + " has a space in its path, which the "
                + "JVM's -Xlog option cannot take; pass --out with a path without spaces");
        }
        try {
            Files.createDirectories(dataDir);
            cleanup.add(dataDir);
            Files.deleteIfExists(gcLog);
            Files.writeString(logFile, "");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        String gcOption = String.format(GcLog.JVM_OPTION, gcLog);
        String bootstrap = HOST + ":" + (o.port() + node);
        long t0 = System.nanoTime();
        ProcessBuilder pb;
        if (kind == BrokerKind.ISTHMUS) {
            if (!Files.isExecutable(o.isthmusLauncher())) {
                throw new CompareException("the Isthmus launcher " + o.isthmusLauncher() + " is missing or not executable");
            }
            List<String> cmd = new ArrayList<>(List.of(o.isthmusLauncher().toString(), "start"));
            if (security == null) {
                cmd.addAll(List.of("--listen", bootstrap));
            } else {
                Path config = dataDir.resolve("secure.properties");
                try {
                    Files.writeString(config, security.isthmusConfig(bootstrap));
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                cmd.addAll(List.of("--config", config.toString()));
            }
            cmd.addAll(List.of("--data-dir", dataDir.resolve("data").toString()));
            if (nodes == 1) {
                cmd.addAll(List.of("--smp", Integer.toString(o.isthmusSmp()), "--memory", o.isthmusMemory()));
            } else {
                cmd.addAll(List.of("--smp", Integer.toString(o.clusterSmp()), "--memory", o.clusterMemory(),
                    "--node-id", Integer.toString(node), "--rpc-listen", HOST + ":" + (o.port() + nodes + node),
                    "--seeds", isthmusSeeds(o.port(), nodes)));
            }
            pb = new ProcessBuilder(cmd);
            // The launcher fixes -Xmx and the GC on its command line; -Xms and GC logging come in this way.
            String inherited = System.getenv("JAVA_TOOL_OPTIONS");
            pb.environment().put("JAVA_TOOL_OPTIONS",
                (inherited == null ? "" : inherited + " ") + "-Xms" + heap + " " + gcOption);
        } else {
            requireKafkaJars(o.kafkaLib());
            Path props = dataDir.resolve("server.properties");
            Path log4j = dataDir.resolve("log4j2.properties");
            try {
                Files.writeString(props, nodes == 1 ? serverProperties(kind, o.port(), dataDir.resolve("data"), security)
                    : clusterServerProperties(kind, o.port(), dataDir.resolve("data"), node, nodes));
                Files.writeString(log4j, LOG4J2);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            List<String> java = new ArrayList<>();
            java.add(o.javaHome().resolve("bin/java").toString());
            java.add("-Dlog4j2.configurationFile=" + log4j);
            java.add("-cp");
            java.add(o.kafkaLib() + "/*");
            format(java, props, logFile, cleanup, kind, clusterId, security);
            List<String> cmd = new ArrayList<>(java.subList(0, 1));
            cmd.add("-Xms" + heap);
            cmd.add("-Xmx" + heap);
            cmd.addAll(KAFKA_JVM_FLAGS);
            cmd.add(gcOption);
            cmd.addAll(java.subList(1, java.size()));
            cmd.add("kafka.Kafka");
            cmd.add(props.toString());
            pb = new ProcessBuilder(cmd);
        }
        pb.redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()))
            .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new CompareException("cannot start " + kind.label + ": " + e.getMessage(), e);
        }
        cleanup.add(p);
        recordPid(o.pidFile(), p.pid());
        return new BrokerProcess(kind, p, bootstrap, logFile, gcLog, heap, t0, dataDir,
            security == null ? Map.of() : security.clientConfig(), cleanup);
    }

    /**
     * Waits until this broker accepts a connection and answers DescribeCluster (or fails with one sentence
     * when it exits first or {@code deadlineNs} passes).
     */
    void awaitUp(long deadlineNs, long timeoutNs) {
        waitUntilUp(kind, process, bootstrap, clientConfig, logFile, deadlineNs, timeoutNs);
    }

    /** Isthmus's {@code --seeds} for a cluster of {@code nodes} on this machine: ID@HOST:RPC_PORT, ... */
    static String isthmusSeeds(int port, int nodes) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < nodes; i++) {
            sb.append(i == 0 ? "" : ",").append(i).append('@').append(HOST).append(':').append(port + nodes + i);
        }
        return sb.toString();
    }

    /** Stops the broker (SIGTERM, SIGKILL after a grace period), removes its data; returns its exit code. */
    int stop() {
        cleanup.stop(process);
        cleanup.delete(dataDir);
        return process.exitValue();
    }

    /** Fails with one sentence when something already listens on (or holds) HOST:port. */
    static void requirePortFree(int port, String what) {
        try (ServerSocket s = new ServerSocket()) {
            s.setReuseAddress(true);
            s.bind(new InetSocketAddress(InetAddress.getByName(HOST), port));
        } catch (IOException e) {
            throw CompareException.fatal("port " + port + " on " + HOST + " (" + what + ") is taken by another "
                + "process; stop it or pick another with --port");
        }
    }

    /**
     * The broker's -Xmx in the launcher (e.g. 512m), which both brokers get; 512m if it names none. The last one
     * in the file: the broker's {@code exec} ends the launcher, after the small heap of {@code ./isthmus admin}.
     */
    static String launcherHeap(Path launcher) {
        try {
            Matcher m = Pattern.compile("-Xmx(\\d+[kKmMgG]?)\\b").matcher(Files.readString(launcher));
            String last = "512m";
            while (m.find()) {
                last = m.group(1);
            }
            return last;
        } catch (IOException e) {
            return "512m";
        }
    }

    /** Apache Kafka's configuration: its defaults, a single KRaft node, plus fsync per batch for KAFKA_FSYNC. */
    static String serverProperties(BrokerKind kind, int port, Path logDir) {
        return serverProperties(kind, port, logDir, null);
    }

    /** The same, with {@code security} (not null) its client listener SASL_SSL instead of PLAINTEXT. */
    static String serverProperties(BrokerKind kind, int port, Path logDir, Security security) {
        StringBuilder sb = new StringBuilder();
        sb.append("# Written by bench/compare: a single-node KRaft broker+controller with Kafka's defaults.\n");
        sb.append("process.roles=broker,controller\n");
        sb.append("node.id=1\n");
        sb.append("controller.quorum.bootstrap.servers=").append(HOST).append(':').append(port + 1).append('\n');
        if (security == null) {
            sb.append("listeners=PLAINTEXT://").append(HOST).append(':').append(port)
                .append(",CONTROLLER://").append(HOST).append(':').append(port + 1).append('\n');
            sb.append("advertised.listeners=PLAINTEXT://").append(HOST).append(':').append(port).append('\n');
            sb.append("controller.listener.names=CONTROLLER\n");
            sb.append("inter.broker.listener.name=PLAINTEXT\n");
            sb.append("listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n");
        } else {
            sb.append("# SASL_SSL, as the Isthmus broker it is compared with\n");
            sb.append(security.kafkaServerProperties(port));
        }
        sb.append("log.dirs=").append(logDir).append('\n');
        sb.append("num.partitions=1\n");
        sb.append("offsets.topic.replication.factor=1\n");
        sb.append("transaction.state.log.replication.factor=1\n");
        sb.append("transaction.state.log.min.isr=1\n");
        sb.append("share.coordinator.state.topic.replication.factor=1\n");
        sb.append("share.coordinator.state.topic.min.isr=1\n");
        sb.append("group.initial.rebalance.delay.ms=0\n");
        if (kind == BrokerKind.KAFKA_FSYNC) {
            sb.append("# fsync after every appended batch (the topic-level name flush.messages is ignored here)\n");
            sb.append("log.flush.interval.messages=1\n");
        }
        return sb.toString();
    }

    /**
     * Node {@code node} of a Kafka cluster of {@code nodes} in KRaft combined mode: every node is a broker and a
     * controller (as every Isthmus node of the cluster is a controller voter), with a static voter set
     * ({@code controller.quorum.voters}); Kafka's defaults otherwise, internal topics replicated to every node.
     */
    static String clusterServerProperties(BrokerKind kind, int port, Path logDir, int node, int nodes) {
        StringBuilder voters = new StringBuilder();
        for (int i = 0; i < nodes; i++) {
            voters.append(i == 0 ? "" : ",").append(i).append('@').append(HOST).append(':').append(port + nodes + i);
        }
        StringBuilder sb = new StringBuilder();
        sb.append("# Written by bench/compare: node ").append(node).append(" of a ").append(nodes)
            .append("-node KRaft cluster, each node broker and controller, with Kafka's defaults.\n");
        sb.append("process.roles=broker,controller\n");
        sb.append("node.id=").append(node).append('\n');
        sb.append("controller.quorum.voters=").append(voters).append('\n');
        sb.append("listeners=PLAINTEXT://").append(HOST).append(':').append(port + node)
            .append(",CONTROLLER://").append(HOST).append(':').append(port + nodes + node).append('\n');
        sb.append("advertised.listeners=PLAINTEXT://").append(HOST).append(':').append(port + node).append('\n');
        sb.append("controller.listener.names=CONTROLLER\n");
        sb.append("inter.broker.listener.name=PLAINTEXT\n");
        sb.append("listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n");
        sb.append("log.dirs=").append(logDir).append('\n');
        sb.append("num.partitions=1\n");
        sb.append("offsets.topic.replication.factor=").append(nodes).append('\n');
        sb.append("transaction.state.log.replication.factor=").append(nodes).append('\n');
        sb.append("share.coordinator.state.topic.replication.factor=").append(nodes).append('\n');
        sb.append("group.initial.rebalance.delay.ms=0\n");
        if (kind == BrokerKind.KAFKA_FSYNC) {
            sb.append("# fsync after every appended batch (the topic-level name flush.messages is ignored here)\n");
            sb.append("log.flush.interval.messages=1\n");
        }
        return sb.toString();
    }

    private static final String LOG4J2 = """
        status = warn
        appender.console.type = Console
        appender.console.name = STDOUT
        appender.console.layout.type = PatternLayout
        appender.console.layout.pattern = [%d] %p %m (%c)%n
        rootLogger.level = info
        rootLogger.appenderRef.stdout.ref = STDOUT
        """;

    private static void requireKafkaJars(Path lib) {
        if (!Files.isRegularFile(lib.resolve("kafka_2.13-4.3.0.jar"))) {
            throw CompareException.fatal("Apache Kafka 4.3.0's jars are not in " + lib + "; fetch them with "
                + "./mvnw -f bench/kafka-dist/pom.xml dependency:copy-dependencies (bench/compare does this itself)");
        }
    }

    /**
     * kafka.tools.StorageTool format, output appended to the broker log: {@code --standalone} with a new cluster
     * id for a single node, or with the cluster's id for a node of a cluster (whose voters are static).
     */
    private static void format(List<String> java, Path props, Path logFile, Cleanup cleanup, BrokerKind kind,
                               String clusterId, Security security) {
        List<String> cmd = new ArrayList<>(java);
        cmd.addAll(List.of("kafka.tools.StorageTool", "format"));
        if (clusterId == null) {
            cmd.add("--standalone");
        }
        cmd.addAll(List.of("-t", clusterId == null ? Uuid.randomUuid().toString() : clusterId, "-c", props.toString()));
        if (security != null) {
            cmd.addAll(security.kafkaAddScram());
        }
        Process p;
        try {
            p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()))
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .start();
        } catch (IOException e) {
            throw new CompareException("cannot run Kafka's StorageTool: " + e.getMessage(), e);
        }
        cleanup.add(p);
        try {
            if (!p.waitFor(FORMAT_TIMEOUT_SEC, TimeUnit.SECONDS)) {
                throw new CompareException("Kafka's StorageTool format did not finish within " + FORMAT_TIMEOUT_SEC
                    + " s; see " + logFile);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CompareException("interrupted while formatting " + kind.label + "'s storage");
        } finally {
            cleanup.stop(p);
        }
        if (p.exitValue() != 0) {
            throw new CompareException("Kafka's StorageTool format failed (exit " + p.exitValue() + "): "
                + lastLine(logFile) + " (see " + logFile + ")");
        }
    }

    /**
     * Polls until the broker accepts a connection and answers DescribeCluster; fails when it exits first or
     * the timeout passes.
     */
    private static void waitUntilUp(BrokerKind kind, Process p, String bootstrap, Map<String, Object> clientConfig,
                                    Path logFile, long deadline, long timeoutNs) {
        while (true) {
            if (!p.isAlive()) {
                throw new CompareException(kind.label + " exited with code " + p.exitValue() + " before it came up: "
                    + lastLine(logFile) + " (see " + logFile + ")");
            }
            long remainingNs = deadline - System.nanoTime();
            if (remainingNs <= 0) {
                throw new CompareException(kind.label + " did not come up on " + bootstrap + " within "
                    + TimeUnit.NANOSECONDS.toSeconds(timeoutNs) + " s (see " + logFile + ")");
            }
            if (accepts(bootstrap)
                    && describedNodes(bootstrap, clientConfig, Math.min(remainingNs, TimeUnit.SECONDS.toNanos(5))) > 0) {
                return;
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
        }
    }

    private static boolean accepts(String bootstrap) {
        int colon = bootstrap.lastIndexOf(':');
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(bootstrap.substring(0, colon), Integer.parseInt(bootstrap.substring(colon + 1))), 500);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * How many brokers a DescribeCluster request to {@code bootstrap} lists; 0 when it is not answered in time.
     * {@code clientConfig}: the security settings, empty for PLAINTEXT.
     */
    static int describedNodes(String bootstrap, Map<String, Object> clientConfig, long timeoutNs) {
        int timeoutMs = (int) Math.max(1, TimeUnit.NANOSECONDS.toMillis(timeoutNs));
        Map<String, Object> config = new java.util.HashMap<>(clientConfig);
        config.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        config.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, timeoutMs);
        config.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, timeoutMs);
        try (Admin admin = Admin.create(config)) {
            return admin.describeCluster().nodes().get(timeoutMs, TimeUnit.MILLISECONDS).size();
        } catch (ExecutionException | TimeoutException e) {
            return 0;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CompareException("interrupted while waiting for the broker on " + bootstrap);
        }
    }

    private static void recordPid(Path pidFile, long pid) {
        if (pidFile == null) {
            return;
        }
        try {
            Files.writeString(pidFile, pid + "\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * The last informative line of a log, for error sentences: the last non-blank line that is not a stack
     * frame ("at ...", "... 3 more") nor the JVM's note about JAVA_TOOL_OPTIONS.
     */
    public static String lastLine(Path log) {
        try {
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
            for (int i = lines.size() - 1; i >= 0; i--) {
                String l = lines.get(i).strip();
                if (!l.isEmpty() && !l.startsWith("at ") && !(l.startsWith("...") && l.endsWith("more"))
                        && !l.startsWith("Picked up JAVA_TOOL_OPTIONS")) {
                    return l.length() > 300 ? l.substring(0, 300) + "..." : l;
                }
            }
        } catch (IOException e) {
            return "(no log)";
        }
        return "(empty log)";
    }
}
