package dev.isthmus.bench.chaos;

import dev.isthmus.bench.compare.Cleanup;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartitionInfo;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * A cluster of 1, 3 or 5 brokers on this machine: the {@link Network} (namespaces or loopback), a loop-mounted
 * file system per node when the disk can be filled ({@link LoopDisk}), the {@link BrokerNode}
 * processes, and an AdminClient for finding leaders and the controller. One node runs in single-node mode
 * (no seeds); more form a cluster from one {@code --seeds} list.
 *
 * <p>Node events ({@code node-kill}, {@code node-start}, {@code node-ready}, {@code node-stop},
 * {@code node-pause}, {@code node-resume}) go into the history. The cluster remembers which nodes the nemesis
 * took down, so that a node found dead otherwise is reported as an unexpected exit.
 *
 * <p>Lifecycle: {@link #start} makes and starts everything (registered with the run's {@link Cleanup});
 * {@link #close} stops the nodes cleanly. Used by the run's thread and the nemesis thread; node operations are
 * synchronized per node.
 */
final class Cluster implements AutoCloseable {
    private static final long ADMIN_TIMEOUT_MS = 5000;

    final int size;
    final List<BrokerNode> nodes;
    final Network net;
    final List<LoopDisk> disks;
    final String bootstrap;
    private final History history;
    private final PrintStream out;
    private final Admin admin;
    private final Cleanup cleanup;
    private final Set<Integer> downOnPurpose = ConcurrentHashMap.newKeySet();
    private final List<String> unexpectedExits = new ArrayList<>();

    private Cluster(int size, List<BrokerNode> nodes, Network net, List<LoopDisk> disks,
                    History history, PrintStream out, Cleanup cleanup) {
        this.cleanup = cleanup;
        this.size = size;
        this.nodes = nodes;
        this.net = net;
        this.disks = disks;
        this.history = history;
        this.out = out;
        List<String> addrs = new ArrayList<>();
        for (BrokerNode n : nodes) {
            addrs.add(n.bootstrap);
        }
        this.bootstrap = String.join(",", addrs);
        this.admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
            AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) ADMIN_TIMEOUT_MS,
            AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) (2 * ADMIN_TIMEOUT_MS),
            AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, 200));
    }

    /**
     * Makes the network and disks, starts {@code size} nodes and waits until every one is ready and (for more
     * than one) the cluster lists all of them.
     */
    static Cluster start(ChaosOptions o, int size, Path workDir, Path outDir, Cleanup cleanup, History history,
                         PrintStream out, boolean withDisks) {
        Network net = Network.create(size, o.netns(), o.runId() + size, o.subnet(), o.basePort());
        cleanup.add(net);
        List<LoopDisk> disks = new ArrayList<>();
        List<BrokerNode> nodes = new ArrayList<>();
        StringBuilder seeds = new StringBuilder();
        for (int i = 0; i < size; i++) {
            seeds.append(i == 0 ? "" : ",").append(i).append('@').append(net.host(i)).append(':').append(net.rpcPort(i));
        }
        Path config = null;
        if (o.has("txn")) {
            config = workDir.resolve("broker.properties");
            try {
                java.nio.file.Files.writeString(config, "# bench/chaos: fewer coordinator partitions than Kafka's 50\n"
                    + "transaction.state.log.num.partitions = " + o.txnPartitions() + "\n");
            } catch (java.io.IOException e) {
                throw new ChaosException("cannot write " + config + ": " + e.getMessage(), e);
            }
        }
        for (int i = 0; i < size; i++) {
            Path home = workDir.resolve("node-" + i);
            if (withDisks) {
                LoopDisk d = LoopDisk.mount(workDir.resolve("node-" + i + ".img"), home, o.diskBytes());
                cleanup.add(d);
                disks.add(d);
            }
            Path data = home.resolve("data");
            List<String> cmd = BrokerNode.args(o.launcher().toString(), "start",
                "--node-id", Integer.toString(i), "--listen", net.host(i) + ":" + net.kafkaPort(i),
                "--data-dir", data.toString(), "--smp", Integer.toString(o.smp()), "--memory", o.memory(),
                "--metrics-listen", net.host(i) + ":" + net.metricsPort(i));
            if (size > 1) {
                cmd.addAll(List.of("--seeds", seeds.toString(), "--rpc-listen", net.host(i) + ":" + net.rpcPort(i)));
            }
            if (config != null) {
                cmd.addAll(List.of("--config", config.toString()));
            }
            if (withDisks) {
                cmd.addAll(List.of("--zeroed-segments", "0")); // 1 GiB files would not fit the small file system
            }
            nodes.add(new BrokerNode(i, data, outDir.resolve("node-" + size + "-" + i + ".log"),
                net.wrap(i, cmd), cleanup, o.pidFile(), net.host(i), net.kafkaPort(i), net.metricsPort(i)));
        }
        Cluster c = new Cluster(size, nodes, net, disks, history, out, cleanup);
        for (BrokerNode n : nodes) {
            c.startNode(n.id);
        }
        for (BrokerNode n : nodes) {
            c.awaitReady(n.id, o.startupTimeoutNs());
        }
        if (!c.awaitFormed(o.startupTimeoutNs())) {
            StringBuilder last = new StringBuilder();
            for (BrokerNode n : nodes) {
                last.append("; node ").append(n.id).append(n.alive() ? "" : " (exited)").append(": ").append(n.lastLogLine());
            }
            c.close();
            throw new ChaosException("the " + size + " nodes did not form a cluster within "
                + TimeUnit.NANOSECONDS.toSeconds(o.startupTimeoutNs()) + " s (see " + outDir + "/node-" + size + "-*.log)"
                + last);
        }
        return c;
    }

    Admin admin() {
        return admin;
    }

    BrokerNode node(int id) {
        return nodes.get(id);
    }

    private void event(String f, int node, String detail) {
        Map<String, Object> e = History.event("nemesis", "info", f);
        e.put("node", node);
        if (detail != null) {
            e.put("detail", detail);
        }
        history.write(e);
    }

    void startNode(int id) {
        node(id).start();
        downOnPurpose.remove(id);
        event("node-start", id, "pid " + node(id).pid());
    }

    void awaitReady(int id, long timeoutNs) {
        node(id).awaitReady(timeoutNs);
        event("node-ready", id, null);
    }

    void kill(int id) {
        downOnPurpose.add(id);
        node(id).kill();
        event("node-kill", id, null);
    }

    int stopNode(int id) {
        downOnPurpose.add(id);
        int exit = node(id).stop();
        event("node-stop", id, "exit " + exit);
        return exit;
    }

    void pause(int id) {
        node(id).pause();
        event("node-pause", id, null);
    }

    void resume(int id) {
        if (node(id).paused()) {
            node(id).resume();
            event("node-resume", id, null);
        }
    }

    /** Nodes that are down although the nemesis did not take them down; each is reported once. */
    List<Integer> checkUnexpectedExits() {
        List<Integer> dead = new ArrayList<>();
        for (BrokerNode n : nodes) {
            if (!n.alive() && !downOnPurpose.contains(n.id)) {
                dead.add(n.id);
                downOnPurpose.add(n.id); // restarted by the next recovery; not reported again
                String what = "node " + n.id + " exited with code " + n.exitCode() + " without being killed; its log's "
                    + "last line: " + n.lastLogLine() + " (see " + n.logFile + ")";
                synchronized (unexpectedExits) {
                    unexpectedExits.add(what);
                }
                event("node-exit", n.id, what);
                out.println("chaos: " + what);
            }
        }
        return dead;
    }

    List<String> unexpectedExits() {
        synchronized (unexpectedExits) {
            return List.copyOf(unexpectedExits);
        }
    }

    /** The leader of {@code topic}-{@code partition} by the cluster's metadata, or -1 when unknown. */
    int leaderOf(String topic, int partition) {
        try {
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames()
                .get(ADMIN_TIMEOUT_MS, TimeUnit.MILLISECONDS).get(topic);
            for (TopicPartitionInfo p : d.partitions()) {
                if (p.partition() == partition && p.leader() != null) {
                    return p.leader().id();
                }
            }
        } catch (Exception e) {
            // unknown
        }
        return -1;
    }

    /** The controller leader by DescribeCluster, or -1 when unknown. */
    int controller() {
        try {
            Node c = admin.describeCluster().controller().get(ADMIN_TIMEOUT_MS, TimeUnit.MILLISECONDS);
            return c == null ? -1 : c.id();
        } catch (Exception e) {
            return -1;
        }
    }

    /** Waits until DescribeCluster lists every node; false after the timeout. */
    boolean awaitFormed(long timeoutNs) {
        long deadline = System.nanoTime() + timeoutNs;
        while (System.nanoTime() < deadline) {
            try {
                int n = admin.describeCluster().nodes().get(ADMIN_TIMEOUT_MS, TimeUnit.MILLISECONDS).size();
                if (n >= size) {
                    return true;
                }
            } catch (Exception e) {
                // not yet
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(250));
        }
        return false;
    }

    /**
     * Waits until every running node holds, for every partition it hosts, at least what the partition's leader
     * held when the wait began (from each node's {@code isthmus_replica_log_end_offset}): a restarted or
     * reconnected node has caught up. Returns null when it did, else a sentence naming what lagged at the timeout.
     */
    String awaitCaughtUp(long timeoutNs) {
        long deadline = System.nanoTime() + timeoutNs;
        Map<String, Long> target = new TreeMap<>();
        for (BrokerNode n : nodes) {
            Map<String, long[]> ends = n.alive() && !n.paused() ? n.logEnds() : null;
            if (ends != null) {
                ends.forEach((tp, e) -> {
                    if (e[1] == 1) {
                        target.merge(tp, e[0], Math::max);
                    }
                });
            }
        }
        String lag = "no answer";
        while (System.nanoTime() < deadline) {
            // Read again each round: the admin workload moves replicas while this waits, and a node a move took a
            // partition from rightly stops hosting it (seed 8387110508729325388 reported one read a minute before).
            Map<String, List<Integer>> replicas = replicas();
            lag = null;
            for (BrokerNode n : nodes) {
                if (!n.alive()) {
                    continue;
                }
                Map<String, long[]> ends = n.logEnds();
                if (ends == null) {
                    lag = "node " + n.id + " does not answer its metrics";
                    break;
                }
                for (Map.Entry<String, Long> t : target.entrySet()) {
                    List<Integer> r = replicas.get(t.getKey());
                    if (t.getValue() > 0 && r != null && r.contains(n.id) && !ends.containsKey(t.getKey())) {
                        lag = "node " + n.id + " does not host " + t.getKey() + " yet (a replica of it by the metadata)";
                        break;
                    }
                }
                if (lag != null) {
                    break;
                }
                for (Map.Entry<String, long[]> e : ends.entrySet()) {
                    Long want = target.get(e.getKey());
                    List<Integer> r = replicas.get(e.getKey());
                    if (want != null && e.getValue()[0] < want && (r == null || r.contains(n.id))) {
                        lag = String.format(Locale.ROOT, "node %d holds %s up to %d of %d", n.id, e.getKey(),
                            e.getValue()[0], want);
                        break;
                    }
                }
                if (lag != null) {
                    break;
                }
            }
            if (lag == null) {
                return null;
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(500));
        }
        return lag;
    }

    /** "topic-partition" -> replica node ids, for every topic (internal ones too); empty when unknown. */
    Map<String, List<Integer>> replicas() {
        Map<String, List<Integer>> out = new HashMap<>();
        try {
            var names = admin.listTopics(new ListTopicsOptions().listInternal(true)).names()
                .get(ADMIN_TIMEOUT_MS, TimeUnit.MILLISECONDS);
            var d = admin.describeTopics(names).allTopicNames().get(ADMIN_TIMEOUT_MS, TimeUnit.MILLISECONDS);
            for (TopicDescription t : d.values()) {
                for (TopicPartitionInfo p : t.partitions()) {
                    out.put(t.name() + "-" + p.partition(), p.replicas().stream().map(Node::id).toList());
                }
            }
        } catch (Exception e) {
            // unknown: caught-up checks every partition a node reports
        }
        return out;
    }

    /**
     * Undoes every fault: resumes paused nodes, heals the network, frees the disks, starts nodes that are down,
     * and waits until they are ready and the cluster lists all of them. Returns a note of what was done.
     */
    String restoreAll(long timeoutNs) {
        List<String> done = new ArrayList<>();
        for (BrokerNode n : nodes) {
            if (n.paused()) {
                resume(n.id);
                done.add("resumed " + n.id);
            }
        }
        if (net.partitioned()) {
            net.heal();
            done.add("healed the network");
        }
        for (LoopDisk d : disks) {
            if (d.full()) {
                d.free();
                done.add("freed a disk");
            }
        }
        checkUnexpectedExits();
        List<Integer> started = new ArrayList<>();
        for (BrokerNode n : nodes) {
            if (!n.alive()) {
                startNode(n.id);
                started.add(n.id);
            }
        }
        for (int id : started) {
            awaitReady(id, timeoutNs);
            done.add("restarted " + id);
        }
        if (size > 1 && !awaitFormed(timeoutNs)) {
            throw new ChaosException("the cluster did not list all " + size + " nodes within "
                + TimeUnit.NANOSECONDS.toSeconds(timeoutNs) + " s of restoring it");
        }
        return String.join(", ", done);
    }

    @Override
    public void close() {
        admin.close(java.time.Duration.ofSeconds(5));
        for (BrokerNode n : nodes) {
            n.resume();
        }
        for (BrokerNode n : nodes) {
            if (n.alive()) {
                stopNode(n.id);
            }
        }
        // The next cluster of the run makes its own network and disks.
        for (LoopDisk d : disks) {
            cleanup.forget(d);
            d.close();
        }
        cleanup.forget(net);
        net.close();
    }
}
