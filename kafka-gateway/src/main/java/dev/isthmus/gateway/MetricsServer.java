package dev.isthmus.gateway;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.isthmus.arena.ArenaStats;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.uring.shard.ShardStats;
import org.HdrHistogram.Histogram;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * Prometheus text metrics ({@code GET /metrics}) and health ({@code GET /health}, {@code GET /ready}) over
 * HTTP, served by one platform thread of its own, never by a shard. Lock-free counters (shard loop and arena
 * stats) are read directly; shard-owned state (partitions, disk histograms, groups) is copied on each shard by
 * a cross-shard call and rendered here, so a scrape costs each shard one short task.
 */
final class MetricsServer implements AutoCloseable {
    private static final long SHARD_ANSWER_MS = 2_000;

    private final Broker broker;
    private final HttpServer server;
    private final ExecutorService executor;

    private MetricsServer(Broker broker, HttpServer server, ExecutorService executor) {
        this.broker = broker;
        this.server = server;
        this.executor = executor;
    }

    static MetricsServer start(Broker broker, String host, int port) throws IOException {
        HttpServer server;
        try {
            server = HttpServer.create(new InetSocketAddress(host, port), 64);
        } catch (IOException e) {
            throw new IOException("cannot listen for metrics on " + host + ":" + port + ": " + e.getMessage(), e);
        }
        ExecutorService ex = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "isthmus-metrics");
            t.setDaemon(true);
            return t;
        });
        MetricsServer m = new MetricsServer(broker, server, ex);
        server.setExecutor(ex);
        server.createContext("/metrics", m::metrics);
        server.createContext("/health", x -> m.health(x, false));
        server.createContext("/ready", x -> m.health(x, true));
        server.start();
        return m;
    }

    int port() {
        return server.getAddress().getPort();
    }

    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
    }

    private void health(HttpExchange x, boolean ready) throws IOException {
        int status = 200;
        StringBuilder body = new StringBuilder();
        int shards = broker.group().size();
        for (int i = 0; i < shards; i++) {
            try {
                broker.group().call(i, s -> null).get(SHARD_ANSWER_MS, TimeUnit.MILLISECONDS);
            } catch (Exception e) {
                status = 503;
                body.append("shard ").append(i).append(" did not answer within ").append(SHARD_ANSWER_MS)
                    .append(" ms\n");
            }
        }
        if (ready && broker.port() == 0) {
            status = 503;
            body.append("not listening yet\n");
        }
        if (status == 200) {
            body.append(ready ? "ready\n" : "ok\n");
        }
        reply(x, status, "text/plain; charset=utf-8", body.toString());
    }

    /** What one shard copies for a scrape (built on the shard thread). */
    private record ShardSnapshot(Histogram sync, Histogram write, List<PartitionSnapshot> partitions,
                                 List<GroupCoordinator.LagSnapshot> groups, long[] zeroed, List<ReplicaEnd> replicas) {
    }

    /** Every replica this shard hosts, leader or follower, with its log end (how far it has caught up). */
    private record ReplicaEnd(String topic, int partition, boolean leader, long logEnd) {
    }

    private record PartitionSnapshot(String topic, int partition, long logStart, long logEnd, long highWatermark,
                                     Histogram durableLatency, long heapPayloads, long rejectedBatches,
                                     long appendFailures, long recompressedBatches) {
    }

    private void metrics(HttpExchange x) throws IOException {
        StringBuilder sb = new StringBuilder(16 * 1024);
        int shards = broker.group().size();
        for (int c = 0; c < ShardStats.count(); c++) {
            String name = "isthmus_shard_" + ShardStats.name(c);
            boolean gauge = c >= ShardStats.TASK_QUEUE_DEPTH;
            sb.append("# TYPE ").append(name).append(gauge ? " gauge\n" : " counter\n");
            for (int i = 0; i < shards; i++) {
                sb.append(name).append("{shard=\"").append(i).append("\"} ")
                    .append(broker.group().shard(i).stats().get(c)).append('\n');
            }
        }
        sb.append("# TYPE isthmus_memory_bytes gauge\n");
        for (int i = 0; i < shards; i++) {
            ArenaStats a = broker.arenaStats(i);
            line(sb, "isthmus_memory_total_bytes", "shard=\"" + i + "\"", a.totalBytes());
            line(sb, "isthmus_memory_used_bytes", "shard=\"" + i + "\"", a.usedBytes());
            line(sb, "isthmus_memory_high_water_bytes", "shard=\"" + i + "\"", a.highWaterBytes());
            line(sb, "isthmus_memory_largest_free_block_bytes", "shard=\"" + i + "\"", a.largestFreeBlockBytes());
            line(sb, "isthmus_memory_allocation_failures_total", "shard=\"" + i + "\"", a.failures());
            for (Subsystem s : Subsystem.values()) {
                String labels = "shard=\"" + i + "\",subsystem=\"" + s.name().toLowerCase(Locale.ROOT) + "\"";
                line(sb, "isthmus_memory_subsystem_used_bytes", labels, a.used(s));
                line(sb, "isthmus_memory_subsystem_limit_bytes", labels, a.limit(s));
            }
        }
        sb.append("# TYPE isthmus_connections_open gauge\n");
        line(sb, "isthmus_connections_open", "", Connection.openConnections(broker));
        line(sb, "isthmus_connections_refused_total", "", Connection.refusedConnections(broker));
        line(sb, "isthmus_connections_receive_suspended", "", Connection.receiveSuspendedConnections(broker));
        line(sb, "isthmus_connection_receive_suspensions_total", "", Connection.receiveSuspensions(broker));
        line(sb, "isthmus_connection_held_high_water_bytes", "", Connection.heldHighWaterBytes(broker));
        line(sb, "isthmus_requests_pending", "", Connection.pendingRequests(broker));
        List<ShardSnapshot> snaps = new ArrayList<>();
        for (int i = 0; i < shards; i++) {
            int id = i;
            try {
                snaps.add(broker.group().call(i, s -> snapshot(broker.state(id)))
                    .get(SHARD_ANSWER_MS, TimeUnit.MILLISECONDS));
            } catch (Exception e) {
                snaps.add(null);
                line(sb, "isthmus_shard_scrape_failed", "shard=\"" + i + "\"", 1);
            }
        }
        for (int i = 0; i < shards; i++) {
            ShardSnapshot s = snaps.get(i);
            if (s == null) {
                continue;
            }
            summary(sb, "isthmus_disk_fdatasync_micros", "shard=\"" + i + "\"", s.sync);
            summary(sb, "isthmus_disk_write_micros", "shard=\"" + i + "\"", s.write);
            if (s.zeroed != null) {
                line(sb, "isthmus_zeroed_segments_ready", "shard=\"" + i + "\"", s.zeroed[0]);
                line(sb, "isthmus_zeroed_segments_made_total", "shard=\"" + i + "\"", s.zeroed[1]);
                line(sb, "isthmus_zeroed_segments_taken_total", "shard=\"" + i + "\"", s.zeroed[2]);
            }
            for (ReplicaEnd r : s.replicas) {
                // Every replica on this node, followers too: how far each has caught up with its leader.
                line(sb, "isthmus_replica_log_end_offset", "topic=\"" + escape(r.topic) + "\",partition=\""
                    + r.partition + "\",role=\"" + (r.leader ? "leader" : "follower") + "\"", r.logEnd);
            }
            for (PartitionSnapshot p : s.partitions) {
                String labels = "topic=\"" + escape(p.topic) + "\",partition=\"" + p.partition + "\"";
                line(sb, "isthmus_partition_log_start_offset", labels, p.logStart);
                line(sb, "isthmus_partition_log_end_offset", labels, p.logEnd);
                line(sb, "isthmus_partition_high_watermark", labels, p.highWatermark);
                summary(sb, "isthmus_partition_append_to_durable_micros", labels, p.durableLatency);
                line(sb, "isthmus_partition_produce_heap_copies_total", labels, p.heapPayloads);
                line(sb, "isthmus_partition_produce_rejected_batches_total", labels, p.rejectedBatches);
                line(sb, "isthmus_partition_produce_append_failures_total", labels, p.appendFailures);
                line(sb, "isthmus_partition_produce_recompressed_batches_total", labels, p.recompressedBatches);
            }
            for (GroupCoordinator.LagSnapshot g : s.groups) {
                String labels = "group=\"" + escape(g.group()) + "\",topic=\"" + escape(g.topic())
                    + "\",partition=\"" + g.partition() + "\"";
                line(sb, "isthmus_group_committed_offset", labels, g.committedOffset());
                long hw = highWatermark(snaps, g.topic(), g.partition());
                if (hw >= 0) {
                    line(sb, "isthmus_group_lag", labels, Math.max(0, hw - g.committedOffset()));
                }
            }
        }
        reply(x, 200, "text/plain; version=0.0.4; charset=utf-8", sb.toString());
    }

    private static long highWatermark(List<ShardSnapshot> snaps, String topic, int partition) {
        for (ShardSnapshot s : snaps) {
            if (s == null) {
                continue;
            }
            for (PartitionSnapshot p : s.partitions) {
                if (p.partition == partition && p.topic.equals(topic)) {
                    return p.highWatermark;
                }
            }
        }
        return -1;
    }

    private static ShardSnapshot snapshot(ShardState st) {
        Histogram[] disk = st.diskStats.snapshot();
        List<PartitionSnapshot> parts = new ArrayList<>();
        List<ReplicaEnd> replicas = new ArrayList<>();
        for (Partition p : st.partitions.values()) {
            replicas.add(new ReplicaEnd(p.topic, p.index, p.isLeader(), p.replica.logEndOffset()));
            if (!p.isLeader()) {
                continue; // the leader reports a partition
            }
            parts.add(new PartitionSnapshot(p.topic, p.index, p.logStartOffset(), p.replica.logEndOffset(),
                p.highWatermark(), p.durableLatencyMicros.copy(), p.heapPayloads, p.rejectedBatches, p.appendFailures,
                p.recompressedBatches));
        }
        dev.isthmus.log.ZeroedSegments z = st.zeroedSegments();
        long[] zeroed = z == null ? null : new long[] {z.ready(), z.filesMade(), z.filesTaken()};
        return new ShardSnapshot(disk[0], disk[1], parts, st.groups.lagSnapshot(), zeroed, replicas);
    }

    private static void line(StringBuilder sb, String name, String labels, long value) {
        sb.append(name);
        if (!labels.isEmpty()) {
            sb.append('{').append(labels).append('}');
        }
        sb.append(' ').append(value).append('\n');
    }

    private static void summary(StringBuilder sb, String name, String labels, Histogram h) {
        for (double q : new double[] {0.5, 0.99, 0.999}) {
            sb.append(name).append('{').append(labels).append(",quantile=\"").append(q).append("\"} ")
                .append(h.getTotalCount() == 0 ? 0 : h.getValueAtPercentile(q * 100)).append('\n');
        }
        sb.append(name).append("_max{").append(labels).append("} ").append(h.getMaxValue()).append('\n');
        sb.append(name).append("_count{").append(labels).append("} ").append(h.getTotalCount()).append('\n');
    }

    private static String escape(String s) {
        return s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n");
    }

    private static void reply(HttpExchange x, int status, String type, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        x.getResponseHeaders().set("Content-Type", type);
        x.sendResponseHeaders(status, b.length);
        try (OutputStream o = x.getResponseBody()) {
            o.write(b);
        }
    }
}
