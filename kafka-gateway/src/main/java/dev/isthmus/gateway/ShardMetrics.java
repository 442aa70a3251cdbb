package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.FetchResponseData;
import dev.isthmus.gateway.protocol.message.ProduceRequestData;
import dev.isthmus.gateway.protocol.message.ProduceResponseData;
import dev.isthmus.gateway.cluster.PartitionInfo;

import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * One shard's request and traffic counters, and the replica gauges a scrape computes from the shard's tables:
 * what {@code /metrics} adds to the shard loop, memory and connection series (Kafka's RequestMetrics,
 * BrokerTopicMetrics, ReplicaManager and controller gauges, under Prometheus names).
 *
 * <ul>
 *   <li>Per API: requests handled, requests whose handler failed, and a latency histogram (from the handler's
 *       start to its response being ready; a Fetch long poll counts its wait) with fixed buckets
 *       ({@link #LATENCY_BUCKETS_S}), rendered as a Prometheus histogram summed over shards.</li>
 *   <li>Per topic: record bytes accepted by produce requests and returned by fetch requests on this node.</li>
 *   <li>Replicas ({@link #snapshot}): partition replicas hosted, partitions led, led partitions whose in-sync set
 *       is smaller than their replica set (Kafka's UnderReplicatedPartitions: summed over nodes, the cluster's
 *       count) or than min.insync.replicas, in-sync shrinks and expansions, Raft campaigns started by a leadership
 *       transfer or by an election timeout; on shard 0 also the cluster's partitions without a live leader
 *       (Kafka's OfflinePartitionsCount) and replicas on nodes that are down, as this node sees them.</li>
 * </ul>
 *
 * <h2>Threads</h2>
 * Owned by its shard: the counters are plain fields written by the shard thread only; a scrape copies them with
 * {@link #snapshot} on the shard (one cross-shard call per shard) and renders the copies on its own thread.
 */
final class ShardMetrics {
    /** Upper bounds, in seconds, of the request latency buckets (Prometheus {@code le}); +Inf follows. */
    static final double[] LATENCY_BUCKETS_S = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
        2.5, 5, 10, 30};
    private static final long[] BUCKET_NS = new long[LATENCY_BUCKETS_S.length];
    private static final ApiKeys[] APIS = ApiKeys.values();

    static {
        for (int i = 0; i < BUCKET_NS.length; i++) {
            BUCKET_NS[i] = Math.round(LATENCY_BUCKETS_S[i] * 1e9);
        }
    }

    private final long[] requests = new long[APIS.length];
    private final long[] failures = new long[APIS.length];
    private final long[] latencySumNs = new long[APIS.length];
    /** [api][bucket]: requests whose latency fell in that bucket (not cumulative; the last is +Inf). */
    private final long[][] buckets = new long[APIS.length][];
    /** Topic name -> {bytes in, bytes out}. */
    private final Map<String, long[]> topicBytes = new HashMap<>();
    /** Record bytes of fetch responses sent from here that follower replicas of this node served (KIP-392). */
    long followerFetchBytes;
    /** Fetch partitions answered from here with a preferred read replica (this node led them; KIP-392). */
    long preferredReadReplicaAnswers;

    /** Counts one request of {@code api} that took {@code ns} (failed: its handler threw or failed). */
    void request(ApiKeys api, long ns, boolean failed) {
        int a = api.ordinal();
        requests[a]++;
        if (failed) {
            failures[a]++;
        }
        latencySumNs[a] += ns;
        long[] b = buckets[a];
        if (b == null) {
            b = buckets[a] = new long[BUCKET_NS.length + 1];
        }
        int i = 0;
        while (i < BUCKET_NS.length && ns > BUCKET_NS[i]) {
            i++;
        }
        b[i]++;
    }

    /**
     * Counts the record bytes a produce request had accepted: {@code lengths} are the request's partitions' record
     * sizes in request order, which is also the order of the response's partitions ({@link Handlers}' produce).
     */
    void produced(ShardState st, ProduceRequestData req, int[] lengths, ProduceResponseData r) {
        int i = 0;
        for (int t = 0; t < r.responses.size() && t < req.topicData.size(); t++) {
            ProduceResponseData.TopicProduceResponse tr = r.responses.get(t);
            String name = topicName(st, tr.name, tr.topicId);
            for (ProduceResponseData.PartitionProduceResponse pr : tr.partitionResponses) {
                if (i < lengths.length && pr.errorCode == ErrorCodes.NONE && name != null) {
                    topicBytes.computeIfAbsent(name, k -> new long[2])[0] += lengths[i];
                }
                i++;
            }
        }
    }

    /** Counts the record bytes of a fetch response. */
    void fetched(ShardState st, FetchResponseData r) {
        for (FetchResponseData.FetchableTopicResponse t : r.responses) {
            String name = null;
            for (FetchResponseData.PartitionData p : t.partitions) {
                long n = p.records == null ? 0 : p.records.length();
                if (n > 0) {
                    if (name == null) {
                        name = topicName(st, t.topic, t.topicId);
                    }
                    if (name != null) {
                        topicBytes.computeIfAbsent(name, k -> new long[2])[1] += n;
                    }
                }
            }
        }
    }

    /** The record sizes of a produce request's partitions in request order (read before the handler consumes them). */
    static int[] produceLengths(ProduceRequestData req) {
        // Indexed loops: no iterator per request.
        int n = 0;
        for (int ti = 0; ti < req.topicData.size(); ti++) {
            n += req.topicData.get(ti).partitionData.size();
        }
        int[] lengths = new int[n];
        int i = 0;
        for (int ti = 0; ti < req.topicData.size(); ti++) {
            List<ProduceRequestData.PartitionProduceData> ps = req.topicData.get(ti).partitionData;
            for (int pi = 0; pi < ps.size(); pi++) {
                ProduceRequestData.PartitionProduceData p = ps.get(pi);
                lengths[i++] = p.records == null ? 0 : p.records.length();
            }
        }
        return lengths;
    }

    private static String topicName(ShardState st, String name, dev.isthmus.gateway.protocol.Uuid id) {
        if (name != null && !name.isEmpty()) {
            return name;
        }
        TopicTable.Topic t = id == null ? null : st.topics.get(id);
        return t == null ? null : t.name();
    }

    /** Counts a handled request for {@code api} once {@code response} is ready (on the connection's shard). */
    static void count(ShardState st, ApiKeys api, long startNs, ProtocolMessage request, int[] produceLengths,
                      ProtocolMessage response, Throwable failure) {
        ShardMetrics m = st.metrics;
        m.request(api, System.nanoTime() - startNs, failure != null);
        if (failure != null) {
            return;
        }
        if (response instanceof FetchResponseData f) {
            m.fetched(st, f);
        } else if (response instanceof ProduceResponseData p && request instanceof ProduceRequestData req
            && produceLengths != null) {
            m.produced(st, req, produceLengths, p);
        }
    }

    // ------------------------------------------------------------------ scrape

    /** What one shard copies for a scrape. */
    record Snapshot(long[] requests, long[] failures, long[] latencySumNs, long[][] buckets, Map<String, long[]> topicBytes,
                    long replicas, long leaders, long underReplicated, long underMinIsr, long atMinIsr,
                    long isrShrinks, long isrExpands, long transferCampaigns, long timeoutCampaigns,
                    long leaderless, long offlineReplicas, long reassigning, long catchUpBytes, long catchUpDelays,
                    long followerFetchBytes, long preferredReadReplicaAnswers) {
    }

    /** On the shard: copies the counters and computes the replica gauges ({@code cluster}: the cluster-wide ones). */
    Snapshot snapshot(ShardState st, boolean cluster) {
        long[][] b = new long[APIS.length][];
        for (int i = 0; i < APIS.length; i++) {
            b[i] = buckets[i] == null ? null : buckets[i].clone();
        }
        Map<String, long[]> bytes = new HashMap<>();
        topicBytes.forEach((k, v) -> bytes.put(k, v.clone()));
        long leaders = 0;
        long under = 0;
        long underMin = 0;
        long atMin = 0;
        long reassigning = 0;
        for (Partition p : st.partitions.values()) {
            if (!p.isLeader()) {
                continue;
            }
            leaders++;
            TopicTable.Topic topic = st.topics.get(p.topic);
            if (topic != null && p.index < topic.partitions() && topic.partition(p.index).reassigning()) {
                reassigning++;
            }
            ReplicaStates.Entry e = st.publishedIsr.get(p.groupId());
            int inSync = e == null ? 1 : e.isr().length;
            if (inSync < p.replica.configuration().members().length) {
                under++;
            }
            int minIsr = p.settings().minInsyncReplicas();
            if (inSync < minIsr) {
                underMin++;
            } else if (inSync == minIsr) {
                atMin++;
            }
        }
        long leaderless = -1;
        long offline = -1;
        if (cluster) {
            leaderless = 0;
            offline = 0;
            int self = st.nodeId;
            for (TopicTable.Topic t : st.topics.topics()) {
                for (PartitionInfo info : t.placement()) {
                    int[] l = st.leaders.get(info.groupId());
                    if (l == null || l[0] < 0 || !st.alive(l[0])) {
                        leaderless++;
                    }
                    for (int r : info.replicas()) {
                        if (r != self && !st.alive(r)) {
                            offline++;
                        }
                    }
                }
            }
        }
        dev.isthmus.raft.NodeMetrics nm = st.raft == null ? null : st.raft.node().metrics();
        return new Snapshot(requests.clone(), failures.clone(), latencySumNs.clone(), b, bytes, st.partitions.size(),
            leaders, under, underMin, atMin, st.isrShrinks, st.isrExpands, nm == null ? 0 : nm.transferCampaigns(),
            nm == null ? 0 : nm.timeoutCampaigns(), leaderless, offline, reassigning, nm == null ? 0 : nm.catchUpBytes(),
            nm == null ? 0 : nm.catchUpDelays(), followerFetchBytes, preferredReadReplicaAnswers);
    }

    /** Renders the shards' snapshots (null for a shard that did not answer) as Prometheus text. */
    static void render(StringBuilder sb, List<Snapshot> snaps) {
        long[] sums = new long[16];
        long leaderless = -1;
        long offline = -1;
        long[] requests = new long[APIS.length];
        long[] failures = new long[APIS.length];
        long[] latency = new long[APIS.length];
        long[][] buckets = new long[APIS.length][];
        Map<String, long[]> bytes = new TreeMap<>();
        for (Snapshot s : snaps) {
            if (s == null) {
                continue;
            }
            long[] v = {s.replicas, s.leaders, s.underReplicated, s.underMinIsr, s.atMinIsr, s.isrShrinks,
                s.isrExpands, s.transferCampaigns, s.timeoutCampaigns, s.reassigning, s.catchUpBytes, s.catchUpDelays,
                s.followerFetchBytes, s.preferredReadReplicaAnswers};
            for (int i = 0; i < v.length; i++) {
                sums[i] += v[i];
            }
            if (s.leaderless >= 0) {
                leaderless = s.leaderless;
                offline = s.offlineReplicas;
            }
            for (int a = 0; a < APIS.length; a++) {
                requests[a] += s.requests[a];
                failures[a] += s.failures[a];
                latency[a] += s.latencySumNs[a];
                if (s.buckets[a] != null) {
                    if (buckets[a] == null) {
                        buckets[a] = new long[BUCKET_NS.length + 1];
                    }
                    for (int i = 0; i < buckets[a].length; i++) {
                        buckets[a][i] += s.buckets[a][i];
                    }
                }
            }
            s.topicBytes.forEach((k, x) -> {
                long[] acc = bytes.computeIfAbsent(k, n -> new long[2]);
                acc[0] += x[0];
                acc[1] += x[1];
            });
        }
        gauge(sb, "isthmus_replica_partitions", "partition replicas this node hosts (Kafka's PartitionCount)", sums[0]);
        gauge(sb, "isthmus_leader_partitions", "partitions this node leads (Kafka's LeaderCount)", sums[1]);
        gauge(sb, "isthmus_under_replicated_partitions", "partitions this node leads with fewer in-sync replicas than"
            + " replicas (Kafka's UnderReplicatedPartitions; summed over nodes, the cluster's)", sums[2]);
        gauge(sb, "isthmus_under_min_isr_partitions", "partitions this node leads with fewer in-sync replicas than"
            + " min.insync.replicas (Kafka's UnderMinIsrPartitionCount)", sums[3]);
        gauge(sb, "isthmus_at_min_isr_partitions", "partitions this node leads with exactly min.insync.replicas"
            + " in-sync replicas (Kafka's AtMinIsrPartitionCount)", sums[4]);
        counter(sb, "isthmus_isr_shrinks_total", "in-sync replica sets of partitions led here that lost members", sums[5]);
        counter(sb, "isthmus_isr_expands_total", "in-sync replica sets of partitions led here that gained members",
            sums[6]);
        counter(sb, "isthmus_raft_leadership_transfers_received_total", "Raft campaigns this node started on a"
            + " leader's TimeoutNow (leaderships handed to it)", sums[7]);
        counter(sb, "isthmus_raft_election_timeouts_total", "Raft campaigns this node started because an election"
            + " timeout passed without a leader", sums[8]);
        gauge(sb, "isthmus_reassigning_partitions", "partitions this node leads whose replicas are being moved"
            + " (Kafka's ReassigningPartitions)", sums[9]);
        counter(sb, "isthmus_catch_up_bytes_total", "bytes this node's leaders sent to learners (replicas being added)"
            + " under leader.replication.throttled.rate", sums[10]);
        counter(sb, "isthmus_catch_up_delays_total", "sends to learners put off because"
            + " leader.replication.throttled.rate was spent", sums[11]);
        counter(sb, "isthmus_follower_fetch_bytes_total", "record bytes this node returned to consumers from replicas"
            + " it follows (KIP-392 follower fetching)", sums[12]);
        counter(sb, "isthmus_preferred_read_replica_answers_total", "fetch partitions this node led and answered with a"
            + " preferred read replica in the consumer's rack (KIP-392)", sums[13]);
        if (leaderless >= 0) {
            gauge(sb, "isthmus_leaderless_partitions", "partitions of the cluster with no live leader as this node sees"
                + " them (Kafka's OfflinePartitionsCount)", leaderless);
            gauge(sb, "isthmus_offline_replicas", "partition replicas of the cluster on nodes this node sees down",
                offline);
        }
        sb.append("# HELP isthmus_topic_bytes_in_total record bytes produced to the topic through this node\n");
        sb.append("# TYPE isthmus_topic_bytes_in_total counter\n");
        bytes.forEach((t, v) -> sb.append("isthmus_topic_bytes_in_total{topic=\"").append(escape(t)).append("\"} ")
            .append(v[0]).append('\n'));
        sb.append("# HELP isthmus_topic_bytes_out_total record bytes fetched from the topic through this node\n");
        sb.append("# TYPE isthmus_topic_bytes_out_total counter\n");
        bytes.forEach((t, v) -> sb.append("isthmus_topic_bytes_out_total{topic=\"").append(escape(t)).append("\"} ")
            .append(v[1]).append('\n'));
        sb.append("# HELP isthmus_requests_total requests handled, by API\n");
        sb.append("# TYPE isthmus_requests_total counter\n");
        for (int a = 0; a < APIS.length; a++) {
            if (requests[a] > 0) {
                sb.append("isthmus_requests_total{api=\"").append(APIS[a].displayName).append("\"} ")
                    .append(requests[a]).append('\n');
            }
        }
        sb.append("# HELP isthmus_request_failures_total requests whose handler failed (answered with an error), by API\n");
        sb.append("# TYPE isthmus_request_failures_total counter\n");
        for (int a = 0; a < APIS.length; a++) {
            if (requests[a] > 0) {
                sb.append("isthmus_request_failures_total{api=\"").append(APIS[a].displayName).append("\"} ")
                    .append(failures[a]).append('\n');
            }
        }
        sb.append("# HELP isthmus_request_latency_seconds time from a request's decoding to its response, by API\n");
        sb.append("# TYPE isthmus_request_latency_seconds histogram\n");
        for (int a = 0; a < APIS.length; a++) {
            if (buckets[a] == null) {
                continue;
            }
            String api = APIS[a].displayName;
            long cumulative = 0;
            for (int i = 0; i < BUCKET_NS.length; i++) {
                cumulative += buckets[a][i];
                sb.append("isthmus_request_latency_seconds_bucket{api=\"").append(api).append("\",le=\"")
                    .append(seconds(LATENCY_BUCKETS_S[i])).append("\"} ").append(cumulative).append('\n');
            }
            cumulative += buckets[a][BUCKET_NS.length];
            sb.append("isthmus_request_latency_seconds_bucket{api=\"").append(api).append("\",le=\"+Inf\"} ")
                .append(cumulative).append('\n');
            sb.append("isthmus_request_latency_seconds_sum{api=\"").append(api).append("\"} ")
                .append(String.format(Locale.ROOT, "%.6f", latency[a] / 1e9)).append('\n');
            sb.append("isthmus_request_latency_seconds_count{api=\"").append(api).append("\"} ").append(cumulative)
                .append('\n');
        }
    }

    private static String seconds(double s) {
        String v = String.format(Locale.ROOT, "%.4f", s);
        while (v.endsWith("0")) {
            v = v.substring(0, v.length() - 1);
        }
        return v.endsWith(".") ? v + "0" : v;
    }

    private static void gauge(StringBuilder sb, String name, String help, long v) {
        sb.append("# HELP ").append(name).append(' ').append(help).append('\n');
        sb.append("# TYPE ").append(name).append(" gauge\n").append(name).append(' ').append(v).append('\n');
    }

    private static void counter(StringBuilder sb, String name, String help, long v) {
        sb.append("# HELP ").append(name).append(' ').append(help).append('\n');
        sb.append("# TYPE ").append(name).append(" counter\n").append(name).append(' ').append(v).append('\n');
    }

    private static String escape(String s) {
        return s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n");
    }
}
