package dev.isthmus.bench.compare;

import org.apache.kafka.common.Uuid;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Collectors;

/**
 * What one part of a run talks to: a single broker ({@link #single}), or a cluster of {@link Suite#CLUSTER_NODES}
 * brokers of one kind on this machine ({@link #cluster}), as child processes ({@link BrokerProcess}). The
 * clients bootstrap from every node; CPU, RSS, heap allocation and pauses are summed (or taken worst) over the
 * nodes.
 *
 * <p>A cluster of Isthmus is three {@code ./isthmus start} processes with {@code --node-id}, {@code --rpc-listen}
 * and the same {@code --seeds} (every node a controller voter), each with {@code --cluster-smp} shards (1) and
 * {@code --cluster-memory} (512M) since they share the machine; a cluster of Kafka is three KRaft nodes in
 * combined mode (broker and controller in each process, static voters), formatted with one cluster id. Every
 * JVM gets the launcher's heap. Lifecycle: the factories return once every node answers and DescribeCluster
 * lists them all, or throw a {@link CompareException} after stopping what they started; {@link #stop} stops
 * every node and removes its data. Used by the run's thread only.
 */
final class Brokers {

    final BrokerKind kind;
    final List<BrokerProcess> nodes;
    /** Every node's listener, comma-separated: the clients' bootstrap.servers. */
    final String bootstrap;
    final long startupNs;
    /** What a client adds to its configuration to talk to these brokers (empty for PLAINTEXT). */
    final Map<String, Object> clientConfig;

    private Brokers(BrokerKind kind, List<BrokerProcess> nodes, long startupNs) {
        this.kind = kind;
        this.nodes = List.copyOf(nodes);
        this.bootstrap = nodes.stream().map(n -> n.bootstrap).collect(Collectors.joining(","));
        this.startupNs = startupNs;
        this.clientConfig = nodes.getFirst().clientConfig;
    }

    /** One broker: PLAINTEXT, or SASL_SSL with {@code security} (not null). */
    static Brokers single(BrokerKind kind, CompareOptions o, Path workDir, Cleanup cleanup, Security security) {
        BrokerProcess b = BrokerProcess.start(kind, o, workDir, cleanup, security);
        return new Brokers(kind, List.of(b), b.startupNs);
    }

    static Brokers cluster(BrokerKind kind, CompareOptions o, Path workDir, Cleanup cleanup) {
        int n = Suite.CLUSTER_NODES;
        for (int i = 0; i < n; i++) {
            BrokerProcess.requirePortFree(o.port() + i, "the Kafka listener of " + kind.label + " node " + i);
            BrokerProcess.requirePortFree(o.port() + n + i, (kind.isKafka() ? "Apache Kafka's controller listener"
                : "Isthmus's node-to-node listener") + " of node " + i);
        }
        String clusterId = kind.isKafka() ? Uuid.randomUuid().toString() : null;
        long t0 = System.nanoTime();
        long deadline = t0 + o.startupTimeoutNs();
        List<BrokerProcess> started = new ArrayList<>();
        try {
            for (int i = 0; i < n; i++) {
                started.add(BrokerProcess.launch(kind, o, workDir, cleanup, i, n, clusterId, null));
            }
            for (BrokerProcess b : started) {
                b.awaitUp(deadline, o.startupTimeoutNs());
                b.startupNs = System.nanoTime() - b.launchedNs;
            }
            Brokers c = new Brokers(kind, started, 0);
            c.awaitMembers(deadline, o.startupTimeoutNs());
            return new Brokers(kind, started, System.nanoTime() - t0);
        } catch (RuntimeException e) {
            started.forEach(b -> cleanup.stop(b.process));
            throw e;
        }
    }

    /** Waits until DescribeCluster lists every node (an Isthmus node registers with the controller in the background). */
    private void awaitMembers(long deadlineNs, long timeoutNs) {
        while (true) {
            BrokerProcess dead = firstDead();
            if (dead != null) {
                throw new CompareException(dead.kind.label + " " + name(dead) + " exited with code "
                    + dead.process.exitValue() + " before the cluster formed: " + BrokerProcess.lastLine(dead.logFile)
                    + " (see " + dead.logFile + ")");
            }
            long remaining = deadlineNs - System.nanoTime();
            if (remaining <= 0) {
                throw new CompareException("the " + nodes.size() + "-node " + kind.label + " cluster did not list all "
                    + "its nodes within " + TimeUnit.NANOSECONDS.toSeconds(timeoutNs) + " s (see " + logs() + ")");
            }
            if (BrokerProcess.describedNodes(bootstrap, clientConfig, Math.min(remaining, TimeUnit.SECONDS.toNanos(5))) >= nodes.size()) {
                return;
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
        }
    }

    boolean isCluster() {
        return nodes.size() > 1;
    }

    long[] pids() {
        return nodes.stream().mapToLong(BrokerProcess::pid).toArray();
    }

    /** The first node whose process has exited, or null. */
    BrokerProcess firstDead() {
        return nodes.stream().filter(b -> !b.process.isAlive()).findFirst().orElse(null);
    }

    /** "node 1" in a cluster, "" for a single broker. */
    String name(BrokerProcess b) {
        return isCluster() ? "node " + nodes.indexOf(b) : "";
    }

    /** The data directory of the first node (every node's is on the same file system). */
    Path dataDir() {
        return nodes.getFirst().dataDir;
    }

    /** "pid 123" or "pids 1, 2, 3". */
    String describePids() {
        return (isCluster() ? "pids " : "pid ") + nodes.stream().map(b -> Long.toString(b.pid()))
            .collect(Collectors.joining(", "));
    }

    /** The log file, or the cluster's logs as a glob. */
    String logs() {
        return isCluster() ? nodes.getFirst().logFile.getParent().resolve("broker-" + kind.id + "-node*.log").toString()
            : nodes.getFirst().logFile.toString();
    }

    /** The worst of the nodes' pauses in [fromNs, toNs): counts summed, the longest pause. */
    GcLog.Pauses pauses(long fromNs, long toNs) {
        int count = 0;
        int over = 0;
        long max = 0;
        long total = 0;
        String cause = "";
        for (BrokerProcess b : nodes) {
            GcLog.Pauses p = GcLog.pauses(b.gcLog, fromNs, toNs);
            count += p.count();
            over += p.over1msCount();
            total += p.totalNs();
            if (p.maxNs() > max) {
                max = p.maxNs();
                cause = p.maxCause() + (isCluster() ? " on node " + nodes.indexOf(b) : "");
            }
        }
        return new GcLog.Pauses(count, over, max, cause, total);
    }

    /** Stops every node and removes its data; returns the first non-zero exit code (0 when all stopped cleanly). */
    int stop() {
        int worst = 0;
        for (BrokerProcess b : nodes) {
            int exit = b.stop();
            if (worst == 0) {
                worst = exit;
            }
        }
        return worst;
    }
}
