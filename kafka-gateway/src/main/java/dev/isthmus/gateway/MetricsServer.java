package dev.isthmus.gateway;

import dev.isthmus.arena.ArenaStats;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.uring.shard.ShardStats;
import org.HdrHistogram.Histogram;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Prometheus text metrics ({@code GET /metrics}) and health ({@code GET /health}, {@code GET /ready}) over
 * HTTP, served by an {@link HttpEndpoint}: one platform thread of its own with a non-blocking selector, never a
 * shard, so that a client that stalls (half a request line, a response it does not read) delays nobody else.
 *
 * <p>Lock-free counters (shard loop and arena stats, connection counters) are read directly; shard-owned state
 * (partitions, disk histograms, groups) is copied on each shard by a cross-shard call and rendered on the
 * endpoint's thread. Requests never wait on a shard with a thread: each answer comes back as a task to the
 * endpoint's thread. Requests that arrive while a round of shard calls is running join it (one round of
 * /metrics calls and one of /health calls at a time, however many scrapers), and a round ends when every shard
 * answered or after {@link #SHARD_ANSWER_MS}, reporting the shards that did not answer.
 *
 * <p>Adding a metric: a broker-wide counter goes into {@link #renderCounters}; state a shard owns is copied in
 * {@link #snapshot} (add a field to {@link ShardSnapshot} or {@link PartitionSnapshot}) and rendered in
 * {@link #renderShards}.
 */
final class MetricsServer implements AutoCloseable {
    static final long SHARD_ANSWER_MS = 2_000;

    private final Broker broker;
    private final HttpEndpoint endpoint;
    /** The rounds of shard calls now running, or null; endpoint thread only. */
    private Round healthRound;
    private Round metricsRound;

    private MetricsServer(Broker broker, String host, int port, HttpEndpoint.Limits limits) throws IOException {
        this.broker = broker;
        try {
            this.endpoint = HttpEndpoint.start("isthmus-metrics", new InetSocketAddress(host, port), Map.of(
                "/metrics", this::metrics,
                "/health", x -> health(x, false),
                "/ready", x -> health(x, true)), limits);
        } catch (IOException e) {
            throw new IOException("cannot listen for metrics on " + host + ":" + port + ": " + e.getMessage(), e);
        }
    }

    static MetricsServer start(Broker broker, String host, int port) throws IOException {
        return start(broker, host, port, HttpEndpoint.Limits.DEFAULT);
    }

    /** With other deadlines and sizes (tests shorten them). */
    static MetricsServer start(Broker broker, String host, int port, HttpEndpoint.Limits limits) throws IOException {
        return new MetricsServer(broker, host, port, limits);
    }

    int port() {
        return endpoint.port();
    }

    /** Any thread: HTTP connections answered or closed because a deadline passed. */
    long timedOutConnections() {
        return endpoint.timedOutConnections();
    }

    /** Any thread: stalled HTTP connections closed at the connection limit to make room for a new one. */
    long replacedConnections() {
        return endpoint.replacedConnections();
    }

    @Override
    public void close() {
        endpoint.close();
    }

    /**
     * One round of cross-shard calls, one per shard, shared by the requests that arrive while it runs; endpoint
     * thread only. {@code answers[i]} is shard i's answer, or null when it failed or did not come in time.
     */
    private final class Round {
        final Object[] answers;
        final boolean[] answered;
        int outstanding;
        boolean over;
        /** The response made from this round's answers, shared by its requests (metrics rounds). */
        HttpEndpoint.Response rendered;
        final java.util.List<java.util.function.Consumer<Object[]>> waiters = new ArrayList<>();
        final Runnable onOver;

        Round(java.util.function.IntFunction<java.util.concurrent.CompletableFuture<?>> call, Runnable onOver) {
            int n = broker.group().size();
            this.answers = new Object[n];
            this.answered = new boolean[n];
            this.outstanding = n;
            this.onOver = onOver;
            for (int i = 0; i < n; i++) {
                int id = i;
                java.util.concurrent.CompletableFuture<?> f;
                try {
                    f = call.apply(id);
                } catch (RuntimeException e) {
                    f = java.util.concurrent.CompletableFuture.failedFuture(e);
                }
                f.whenComplete((v, t) -> endpoint.execute(() -> answer(id, t == null ? v : null)));
            }
            endpoint.schedule(TimeUnit.MILLISECONDS.toNanos(SHARD_ANSWER_MS), this::finish);
        }

        void answer(int shard, Object value) {
            if (over || answered[shard]) {
                return;
            }
            answered[shard] = true;
            answers[shard] = value;
            if (--outstanding == 0) {
                finish();
            }
        }

        void finish() {
            if (over) {
                return;
            }
            over = true;
            onOver.run();
            for (java.util.function.Consumer<Object[]> w : waiters) {
                w.accept(answers);
            }
        }
    }

    private void health(HttpEndpoint.Exchange x, boolean ready) {
        if (healthRound == null) {
            healthRound = new Round(i -> broker.group().call(i, s -> Boolean.TRUE), () -> healthRound = null);
        }
        healthRound.waiters.add(answers -> {
            int status = 200;
            StringBuilder body = new StringBuilder();
            for (int i = 0; i < answers.length; i++) {
                if (answers[i] == null) {
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
            x.reply(HttpEndpoint.Response.text(status, body.toString()));
        });
    }

    private void metrics(HttpEndpoint.Exchange x) {
        if (metricsRound == null) {
            metricsRound = new Round(i -> broker.group().call(i, s -> snapshot(broker.state(i))),
                () -> metricsRound = null);
        }
        Round round = metricsRound;
        round.waiters.add(answers -> {
            if (round.rendered == null) { // rendered once per round, for every request that joined it
                round.rendered = new HttpEndpoint.Response(200, "text/plain; version=0.0.4; charset=utf-8",
                    render(answers).getBytes(StandardCharsets.UTF_8));
            }
            x.reply(round.rendered);
        });
    }

    private String render(Object[] answers) {
        StringBuilder sb = new StringBuilder(16 * 1024);
        renderCounters(sb);
        List<ShardSnapshot> snaps = new ArrayList<>();
        for (int i = 0; i < answers.length; i++) {
            snaps.add((ShardSnapshot) answers[i]);
            if (answers[i] == null) {
                line(sb, "isthmus_shard_scrape_failed", "shard=\"" + i + "\"", 1);
            }
        }
        renderShards(sb, snaps);
        return sb.toString();
    }

    /** What one shard copies for a scrape (built on the shard thread). */
    private record ShardSnapshot(Histogram sync, Histogram write, List<PartitionSnapshot> partitions,
                                 List<GroupCoordinator.LagSnapshot> groups, long[] zeroed, long[] writeBehind,
                                 ShardMetrics.Snapshot more, TxnCoordinator.Stats txn, List<ReplicaEnd> replicas,
                                 long[] verify) {
    }

    /** Every replica this shard hosts, leader or follower, with its log end (how far it has caught up). */
    private record ReplicaEnd(String topic, int partition, boolean leader, long logEnd) {
    }

    private record PartitionSnapshot(String topic, int partition, long logStart, long logEnd, long highWatermark,
                                     long lastStableOffset, int openTransactions, Histogram durableLatency,
                                     long heapPayloads, long rejectedBatches, long appendFailures,
                                     long recompressedBatches) {
    }

    /** Broker-wide counters read directly (lock-free): shard loops, arenas, connections. */
    private void renderCounters(StringBuilder sb) {
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
        for (int i = 0; i < shards; i++) {
            ReceiveMemory rm = broker.receiveMemory(i);
            String labels = "shard=\"" + i + "\"";
            line(sb, "isthmus_receive_memory_committed_bytes", labels, rm.committedGauge());
            line(sb, "isthmus_receive_memory_capacity_bytes", labels, rm.capacityBytes());
            line(sb, "isthmus_receive_memory_waiting_connections", labels, rm.waitingGauge());
            line(sb, "isthmus_receive_memory_waits_total", labels, rm.waits());
        }
        dev.isthmus.gateway.cluster.Controller controller = broker.controller();
        if (controller != null) { // the operator's modes of this node (NodeOperations), from the controller state
            dev.isthmus.gateway.cluster.NodeModes modes = controller.state().modes();
            int self = broker.config().nodeId();
            sb.append("# TYPE isthmus_node_maintenance gauge\n");
            line(sb, "isthmus_node_maintenance", "", modes.inMaintenance(self) ? 1 : 0);
            line(sb, "isthmus_node_maintenance_leading_groups", "", broker.nodeOperations().leadingInMaintenance());
            line(sb, "isthmus_node_decommissioning", "", modes.decommissioning(self) ? 1 : 0);
        }
        line(sb, "isthmus_metrics_http_timeouts_total", "", endpoint.timedOutConnections());
        renderQuotas(sb);
        dev.isthmus.gateway.cluster.PartitionBalancer.Status bs = broker.balancerStatus();
        if (bs != null) {
            // The partition balancer (it runs on the controller leader: active 1 there, 0 elsewhere).
            sb.append("# TYPE isthmus_balancer_active gauge\n");
            line(sb, "isthmus_balancer_enabled", "", bs.enabled() ? 1 : 0);
            line(sb, "isthmus_balancer_active", "", bs.active() ? 1 : 0);
            for (String st : new String[] {"off", "idle", "settling", "balancing", "waiting"}) {
                line(sb, "isthmus_balancer_state", "state=\"" + st + "\"", st.equals(bs.state()) ? 1 : 0);
            }
            line(sb, "isthmus_balancer_moves_in_progress", "", bs.movesInProgress());
            line(sb, "isthmus_balancer_own_moves_in_progress", "", bs.ownMoves());
            line(sb, "isthmus_balancer_max_concurrent_moves", "", bs.maxConcurrentMoves());
            line(sb, "isthmus_balancer_moves_started_total", "", bs.movesStarted());
            line(sb, "isthmus_balancer_replica_spread", "", bs.spread());
            bs.replicasPerNode().forEach((node, n) -> line(sb, "isthmus_balancer_node_replicas", "node=\"" + node
                + "\"", n));
        }
        sb.append("# TYPE isthmus_connection_warnings_total counter\n");
        ConnectionWarnings warnings = Connection.warnings(broker);
        for (ConnectionWarnings.Reason r : ConnectionWarnings.Reason.values()) {
            line(sb, "isthmus_connection_warnings_total", "reason=\"" + r.label() + "\"", warnings.count(r));
        }
    }

    /**
     * Client quotas, per quota type and per entity (Kafka's metric tags: user, client-id; "" where the quota is not
     * per user or per client id): bytes produced or fetched (request time in ns), throttle time given and responses
     * throttled; for entities with a quota also the quota and the rate over the window now. Read lock-free from the
     * broker's shared sensors.
     */
    private void renderQuotas(StringBuilder sb) {
        ClientQuotas q = broker.quotas();
        long now = System.nanoTime();
        sb.append("# TYPE isthmus_quota_throttled_responses_total counter\n");
        for (ClientQuotas.Type t : ClientQuotas.Type.values()) {
            line(sb, "isthmus_quota_throttled_responses_total", "type=\"" + t.label + "\"", q.throttledResponses(t));
        }
        sb.append("# TYPE isthmus_quota_bytes_total counter\n");
        sb.append("# TYPE isthmus_quota_request_time_ns_total counter\n");
        sb.append("# TYPE isthmus_quota_throttle_time_ms_total counter\n");
        sb.append("# TYPE isthmus_quota_entity_throttled_responses_total counter\n");
        sb.append("# TYPE isthmus_quota_limit gauge\n");
        sb.append("# TYPE isthmus_quota_rate gauge\n");
        for (ClientQuotas.Type t : ClientQuotas.Type.values()) {
            for (ClientQuotas.Sensor s : q.sensors(t)) {
                String labels = "type=\"" + t.label + "\",user=\"" + escape(s.tags.user()) + "\",client_id=\""
                    + escape(s.tags.clientId()) + "\"";
                line(sb, t == ClientQuotas.Type.REQUEST ? "isthmus_quota_request_time_ns_total" : "isthmus_quota_bytes_total",
                    labels, s.total.get());
                line(sb, "isthmus_quota_throttle_time_ms_total", labels, s.throttleMs.get());
                line(sb, "isthmus_quota_entity_throttled_responses_total", labels, s.throttledResponses.get());
                double limit = q.limit(t, s.tags);
                if (limit < Double.POSITIVE_INFINITY) {
                    sb.append("isthmus_quota_limit{").append(labels).append("} ").append(limit).append('\n');
                    sb.append("isthmus_quota_rate{").append(labels).append("} ").append(s.rate(now)).append('\n');
                }
            }
        }
    }

    /** What the shards copied for this scrape; {@code snaps.get(i)} is null for a shard that did not answer. */
    private static void renderShards(StringBuilder sb, List<ShardSnapshot> snaps) {
        int shards = snaps.size();
        for (int i = 0; i < shards; i++) {
            ShardSnapshot s = snaps.get(i);
            if (s == null) {
                continue;
            }
            summary(sb, "isthmus_disk_fdatasync_micros", "shard=\"" + i + "\"", s.sync);
            summary(sb, "isthmus_disk_write_micros", "shard=\"" + i + "\"", s.write);
            String shard = "shard=\"" + i + "\"";
            // The write-behind chunks the shard's logs share (see ChunkPool): a log waits when none is free or
            // idle; idle ones are taken back from logs that are not writing.
            line(sb, "isthmus_write_behind_chunks", shard, s.writeBehind[0]);
            line(sb, "isthmus_write_behind_chunks_free", shard, s.writeBehind[1]);
            line(sb, "isthmus_write_behind_chunks_idle", shard, s.writeBehind[2]);
            line(sb, "isthmus_write_behind_waiting_logs", shard, s.writeBehind[3]);
            line(sb, "isthmus_write_behind_waits_total", shard, s.writeBehind[4]);
            line(sb, "isthmus_write_behind_wait_micros_total", shard, s.writeBehind[5]);
            line(sb, "isthmus_write_behind_wait_micros_max", shard, s.writeBehind[6]);
            line(sb, "isthmus_write_behind_reclaims_total", shard, s.writeBehind[7]);
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
                // Transactions on the partition: Kafka's LastStableOffsetLag (high watermark - last stable offset,
                // what read_committed consumers cannot read yet) and the transactions open here.
                line(sb, "isthmus_partition_last_stable_offset", labels, p.lastStableOffset);
                line(sb, "isthmus_partition_last_stable_offset_lag", labels,
                    Math.max(0, p.highWatermark - p.lastStableOffset));
                line(sb, "isthmus_partition_open_transactions", labels, p.openTransactions);
                summary(sb, "isthmus_partition_append_to_durable_micros", labels, p.durableLatency);
                line(sb, "isthmus_partition_produce_heap_copies_total", labels, p.heapPayloads);
                line(sb, "isthmus_partition_produce_rejected_batches_total", labels, p.rejectedBatches);
                line(sb, "isthmus_partition_produce_append_failures_total", labels, p.appendFailures);
                line(sb, "isthmus_partition_produce_recompressed_batches_total", labels, p.recompressedBatches);
            }
            TxnCoordinator.Stats t = s.txn;
            line(sb, "isthmus_txn_coordinator_partitions", shard, t.coordinatedPartitions());
            line(sb, "isthmus_txn_coordinator_partitions_loading", shard, t.loadingPartitions());
            line(sb, "isthmus_txn_transactional_ids", shard, t.transactionalIds());
            line(sb, "isthmus_txn_open_transactions", shard, t.openTransactions());
            line(sb, "isthmus_txn_oldest_open_transaction_age_ms", shard, t.oldestOpenAgeMs());
            line(sb, "isthmus_txn_markers_pending", shard, t.markersPending());
            line(sb, "isthmus_txn_markers_queued", shard, t.markersQueued());
            line(sb, "isthmus_txn_markers_written_total", shard, t.markersWritten());
            line(sb, "isthmus_txn_marker_retries_total", shard, t.markerRetries());
            line(sb, "isthmus_txn_markers_abandoned_total", shard, t.markersAbandoned());
            line(sb, "isthmus_producer_id_blocks_total", shard, t.producerIdBlocks());
            // Partition leaders' KIP-890 requests to coordinators, and the adds asked again after
            // CONCURRENT_TRANSACTIONS (add.partitions.to.txn.retry.backoff.ms) or answered it after the retry window.
            line(sb, "isthmus_txn_verify_requests_total", shard, s.verify[0]);
            line(sb, "isthmus_txn_verifications_total", shard, s.verify[1]);
            line(sb, "isthmus_txn_add_concurrent_retries_total", shard, s.verify[2]);
            line(sb, "isthmus_txn_add_concurrent_refused_total", shard, s.verify[3]);
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
        ShardMetrics.render(sb, snaps.stream().map(s -> s == null ? null : s.more).toList());
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
                p.highWatermark(), p.lastStableOffset(), p.producers.openTransactions(), p.durableLatencyMicros.copy(),
                p.heapPayloads, p.rejectedBatches, p.appendFailures, p.recompressedBatches));
        }
        TxnVerifier tv = st.txnVerifier;
        long[] verify = tv == null ? new long[4]
            : new long[] {tv.requests, tv.verifications, tv.concurrentRetries, tv.concurrentRefused};
        dev.isthmus.log.ZeroedSegments z = st.zeroedSegments();
        long[] zeroed = z == null ? null : new long[] {z.ready(), z.filesMade(), z.filesTaken()};
        dev.isthmus.log.ChunkPool w = st.writePool;
        long[] writeBehind = {w.capacity(), w.free(), w.idle(), w.waiting(), w.waitsTotal(), w.waitNsTotal() / 1000,
            w.waitNsMax() / 1000, w.reclaimsTotal()};
        return new ShardSnapshot(disk[0], disk[1], parts, st.groups.lagSnapshot(), zeroed, writeBehind,
            st.metrics.snapshot(st, st.shard.id() == 0), st.txn.stats(), replicas, verify);
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
}
