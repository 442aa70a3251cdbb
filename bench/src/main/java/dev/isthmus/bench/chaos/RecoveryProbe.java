package dev.isthmus.bench.chaos;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartitionInfo;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Where a restart's time goes, seen from outside: after a fault that restarts nodes, polls the cluster every
 * 200 ms through an AdminClient of its own and records, once each, when DescribeCluster first names a controller
 * ({@code controller}), when it first lists every node ({@code registered}), and when Metadata first gives every
 * partition of the append topic a leader ({@code leaders}), as {@code recovery-step} events ({@code index},
 * {@code fault}, {@code step}, {@code ms} since the restart). With the nodes' {@code node-ready} events and the
 * first acknowledgement per partition, {@link Timeline} splits each restart into its steps: the process starting,
 * the controller's election, the brokers' registration, the partitions' elections, the clients finding the leaders.
 *
 * <p>Threads: one per probe, ending when every step was seen, after two minutes, or on {@link #stop}. The admin
 * client is the probe's own (a shared one's requests would queue behind the nemesis's).
 */
final class RecoveryProbe implements AutoCloseable {
    private static final long LIMIT_NS = TimeUnit.MINUTES.toNanos(2);

    private final Workloads.Context ctx;
    private final Admin admin;
    private volatile boolean stopping;
    private Thread thread;

    RecoveryProbe(Workloads.Context ctx) {
        this.ctx = ctx;
        this.admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, ctx.cluster.bootstrap,
            AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 2000,
            AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 2000,
            AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, 100,
            AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, 50,
            AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 200));
    }

    /** Starts following fault {@code index}'s restart, which happened at {@code restartNs} (System.nanoTime()). */
    synchronized void follow(int index, String fault, long restartNs) {
        stopCurrent();
        stopping = false;
        thread = new Thread(() -> run(index, fault, restartNs), "chaos-recovery-probe");
        thread.setDaemon(true);
        thread.start();
    }

    private void run(int index, String fault, long restartNs) {
        Map<String, Boolean> seen = new LinkedHashMap<>();
        for (String s : List.of("controller", "registered", "leaders")) {
            seen.put(s, false);
        }
        while (!stopping && seen.containsValue(false) && System.nanoTime() - restartNs < LIMIT_NS) {
            try {
                if (!seen.get("controller") || !seen.get("registered")) {
                    var d = admin.describeCluster();
                    Node c = d.controller().get(2, TimeUnit.SECONDS);
                    if (!seen.get("controller") && c != null && c.id() >= 0) {
                        step(seen, "controller", index, fault, restartNs);
                    }
                    if (!seen.get("registered") && d.nodes().get(2, TimeUnit.SECONDS).size() >= ctx.cluster.size) {
                        step(seen, "registered", index, fault, restartNs);
                    }
                }
                if (!seen.get("leaders")) {
                    TopicDescription t = admin.describeTopics(List.of(Workloads.APPEND_TOPIC)).allTopicNames()
                        .get(2, TimeUnit.SECONDS).get(Workloads.APPEND_TOPIC);
                    boolean all = !t.partitions().isEmpty();
                    for (TopicPartitionInfo p : t.partitions()) {
                        if (p.leader() == null || p.leader().id() < 0) {
                            all = false;
                        }
                    }
                    if (all) {
                        step(seen, "leaders", index, fault, restartNs);
                    }
                }
            } catch (Exception e) {
                // not yet: the cluster does not answer
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
        }
    }

    private void step(Map<String, Boolean> seen, String step, int index, String fault, long restartNs) {
        seen.put(step, true);
        Map<String, Object> e = History.event("nemesis", "info", "recovery-step");
        e.put("index", index);
        e.put("fault", fault);
        e.put("step", step);
        e.put("ms", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - restartNs));
        ctx.history.write(e);
    }

    private void stopCurrent() {
        stopping = true;
        if (thread != null) {
            try {
                thread.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            thread = null;
        }
    }

    @Override
    public synchronized void close() {
        stopCurrent();
        admin.close(java.time.Duration.ofSeconds(2));
    }
}
