package dev.isthmus.gateway;

import dev.isthmus.ffi.Libc;
import dev.isthmus.gateway.security.ListenerConfig;
import dev.isthmus.gateway.security.SaslSettings;
import dev.isthmus.gateway.security.SecurityProtocol;
import dev.isthmus.gateway.security.SecuritySettings;
import dev.isthmus.gateway.security.TlsSettings;
import dev.isthmus.gateway.txn.TxnConfig;
import dev.isthmus.uring.IoBackend;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Start-up settings of a broker: an immutable value, built with {@link #builder()} or {@link #defaults()} and
 * the {@code with...} shorthands. Validation happens in the constructor so a bad value fails before any
 * resource is taken, with one sentence naming the setting.
 *
 * @param host                       listener address ({@code --listen HOST:PORT})
 * @param port                       Kafka listener port (0 picks a free one: tests)
 * @param advertisedHost             the host clients are told to connect to ({@code --advertise}); null = host
 * @param advertisedPort             the port clients are told to connect to; 0 = the bound port
 * @param nodeId                     this node's id ({@code --node-id})
 * @param shards                     shard threads ({@code --smp}); default the CPUs this process may use
 * @param memoryBytes                the broker's native memory ({@code --memory}): the shards' arenas, split evenly,
 *                                   after a reserve for the JVM's own native memory (1/8, 16 to 256 MiB)
 * @param dataDir                    where logs and metadata live ({@code --data-dir})
 * @param pin                        pin shards to CPUs
 * @param backend                    io_uring or portable
 * @param maxRequestBytes            largest request frame accepted (Kafka's socket.request.max.bytes)
 * @param maxConnections             connections accepted per broker; more are closed at once
 * @param maxConnectionBufferedBytes bytes of requests and responses one connection may hold unanswered before
 *                                   the broker stops reading from it (back-pressure)
 * @param defaultPartitions          partitions of auto-created topics (num.partitions)
 * @param autoCreateTopics           create unknown topics named in Metadata requests (auto.create.topics.enable)
 * @param groupMinSessionTimeoutMs   smallest consumer session timeout accepted (group.min.session.timeout.ms)
 * @param groupMaxSessionTimeoutMs   largest consumer session timeout accepted (group.max.session.timeout.ms)
 * @param groupInitialRebalanceDelayMs how long a new group waits for more members before its first rebalance
 * @param offsetsTopicPartitions     partitions of the internal {@code __consumer_offsets} topic
 * @param offsetsRetentionMs         committed offsets of an empty group expire after this long (-1 never)
 * @param metricsHost                Prometheus/health HTTP address ({@code --metrics-listen}); null = off
 * @param metricsPort                its port (0 picks a free one)
 * @param rpcHost                    node-to-node RPC address ({@code --rpc-listen}); null = single node
 * @param rpcPort                    its port
 * @param seeds                      {@code id@host:port} RPC addresses of the controller voters ({@code --seeds});
 *                                   empty = a single node whose controller group has this node as its only voter
 * @param zeroedSegments             segment files each shard keeps written with zeros for its busy logs
 *                                   ({@code --zeroed-segments}; 0 = none): their fdatasyncs then write no extent
 *                                   metadata (see {@link dev.isthmus.log.ZeroedSegments}); each is a default
 *                                   segment (1 GiB) of disk, made only once a log of the shard writes in volume
 * @param maxPartitionsPerShard      partition replicas each shard may host ({@code --max-partitions-per-shard},
 *                                   Redpanda's {@code topic_partitions_per_shard}); CreateTopics and
 *                                   CreatePartitions beyond this x shards x brokers are refused
 * @param replicaLagTimeMaxMs        a follower that has not held its leader's whole log within this long leaves
 *                                   the partition's in-sync replicas ({@code --replica-lag-time-max-ms}, Kafka's
 *                                   {@code replica.lag.time.max.ms}, 30 s)
 * @param shutdownHandoffMs          the longest a node stopped with SIGTERM spends handing the leadership of its
 *                                   partitions and of the controller to in-sync followers before it closes anyway
 *                                   ({@code --shutdown-handoff-ms}; 0 = close at once, as Kafka's
 *                                   {@code controlled.shutdown.enable=false})
 * @param maxConcurrentMoves         the most replica moves off decommissioning nodes the controller leader runs at
 *                                   a time ({@code --max-concurrent-moves}, 8; Redpanda's
 *                                   {@code partition_autobalancing_concurrent_moves}); each is a learner catching up
 *                                   from its partition's leader, so this bounds the disk and network a decommission takes
 * @param requestReceiveTimeoutMs    how long a client may take to send the whole of a request once its first byte
 *                                   arrived ({@code --request-receive-timeout}); time the broker kept it from
 *                                   sending (back-pressure) does not count; beyond it the connection is closed
 * @param connectionReceiveSharePercent the part of its shard's receive memory for large requests (the NETWORK_RECEIVE
 *                                   budget, a quarter of the shard's arena, less a headroom kept for small
 *                                   requests) one connection may hold in requests it sent
 *                                   ({@code --connection-receive-share}); a connection with no other request
 *                                   pending may always send one request up to the maximum request size
 * @param autoLeaderRebalance        hand each partition's leadership back to its preferred replica whenever that
 *                                   replica is caught up ({@code --auto-leader-rebalance}, Kafka's
 *                                   auto.leader.rebalance.enable); when off, leadership stays where elections put
 *                                   it until kafka-leader-election.sh (ElectLeaders) moves it
 * @param topicDefaults              the broker's defaults of topic configs, by Kafka's broker setting names
 *                                   ({@code log.retention.hours = 24}, {@code message.max.bytes},
 *                                   {@code compression.type}, {@code min.insync.replicas}, ...; see
 *                                   {@link TopicConfigs#BY_BROKER_NAME}), as given in a {@code --config} file;
 *                                   DescribeConfigs reports them with source STATIC_BROKER_CONFIG
 * @param security                   named listeners ({@code --listeners}), TLS and SASL settings; with no named
 *                                   listener the broker has one PLAINTEXT listener on {@code host}/{@code port}
 *                                   advertised as {@code advertisedHost}/{@code advertisedPort}
 * @param transactions               the transaction coordinator's settings, by Kafka's names
 *                                   ({@code transaction.state.log.num.partitions}, {@code transaction.max.timeout.ms},
 *                                   {@code transactional.id.expiration.ms}, ...; see {@link TxnConfig})
 * @param authorizer                 ACL enforcement ({@code --authorizer}, Kafka's {@code authorizer.class.name},
 *                                   {@code super.users}, {@code allow.everyone.if.no.acl.found}); off by default
 * @param rack                       this node's rack ({@code --rack}, Kafka's {@code broker.rack}); null = none.
 *                                   Registered with the controller: replica placement spreads partitions over
 *                                   racks, Metadata reports it, and consumers with a matching {@code client.rack}
 *                                   are pointed at this node's in-sync replicas to fetch from (KIP-392)
 * @param partitionBalancer          once a node joins, the controller leader moves replicas from the fullest nodes
 *                                   to the emptiest until their counts are within one, a few moves at a time
 *                                   ({@code --partition-balancer}, default true; see
 *                                   {@link dev.isthmus.gateway.cluster.PartitionBalancer})
 * @param quotaWindowSamples         client quotas measure rates over this many samples (Kafka's
 *                                   {@code quota.window.num}, 11; at least 2)
 * @param quotaWindowSeconds         of this many seconds each (Kafka's {@code quota.window.size.seconds}, 1)
 */
public record BrokerConfig(String host, int port, String advertisedHost, int advertisedPort, int nodeId, int shards,
                           long memoryBytes, Path dataDir, boolean pin, IoBackend backend, int maxRequestBytes,
                           int maxConnections, long maxConnectionBufferedBytes, int defaultPartitions,
                           boolean autoCreateTopics, int groupMinSessionTimeoutMs, int groupMaxSessionTimeoutMs,
                           int groupInitialRebalanceDelayMs, int offsetsTopicPartitions, long offsetsRetentionMs,
                           String metricsHost, int metricsPort, String rpcHost, int rpcPort, List<String> seeds,
                           int zeroedSegments, int maxPartitionsPerShard, boolean autoLeaderRebalance,
                           long replicaLagTimeMaxMs, long shutdownHandoffMs, int maxConcurrentMoves,
                           Map<String, String> topicDefaults,
                           long requestReceiveTimeoutMs, int connectionReceiveSharePercent, TxnConfig transactions,
                           dev.isthmus.gateway.auth.AuthorizerConfig authorizer, SecuritySettings security,
                           String rack, boolean partitionBalancer, int quotaWindowSamples,
                           long quotaWindowSeconds) {
    /** Room a produce request needs around its one batch: header, client id, topic name, partition fields. */
    static final int PRODUCE_REQUEST_OVERHEAD_BYTES = 64 * 1024;

    public BrokerConfig {
        if (security == null) {
            security = SecuritySettings.DEFAULTS;
        }
        if (shards < 1) {
            throw new IllegalArgumentException("--smp must be >= 1, got " + shards);
        }
        long perShard = arenaBytes(memoryBytes) / shards;
        if (perShard < (64L << 20)) {
            throw new IllegalArgumentException("--memory " + memoryBytes + " gives each of " + shards
                + " shards less than 64 MiB after the JVM's native reserve of " + jvmNativeReserve(memoryBytes)
                + " bytes; give at least " + minimumMemory(shards) + " bytes");
        }
        checkPort("listen", port);
        checkPort("advertise", advertisedPort);
        checkPort("metrics-listen", metricsPort);
        checkPort("rpc-listen", rpcPort);
        if (host == null || host.isBlank()) {
            throw new IllegalArgumentException("--listen needs a host");
        }
        if (nodeId < 0) {
            throw new IllegalArgumentException("--node-id must be >= 0, got " + nodeId);
        }
        if (maxRequestBytes < 1024) {
            throw new IllegalArgumentException("max request bytes must be >= 1024, got " + maxRequestBytes);
        }
        if (maxConnections < 1) {
            throw new IllegalArgumentException("max connections must be >= 1, got " + maxConnections);
        }
        if (maxConnectionBufferedBytes < maxRequestBytes) {
            throw new IllegalArgumentException("per-connection buffered bytes (" + maxConnectionBufferedBytes
                + ") must be at least the max request size (" + maxRequestBytes + ")");
        }
        if (defaultPartitions < 1) {
            throw new IllegalArgumentException("default partitions must be >= 1, got " + defaultPartitions);
        }
        if (groupMinSessionTimeoutMs < 1 || groupMaxSessionTimeoutMs < groupMinSessionTimeoutMs) {
            throw new IllegalArgumentException("group session timeout bounds [" + groupMinSessionTimeoutMs + ", "
                + groupMaxSessionTimeoutMs + "] are not a valid range");
        }
        if (groupInitialRebalanceDelayMs < 0) {
            throw new IllegalArgumentException("group initial rebalance delay must be >= 0");
        }
        if (zeroedSegments < 0 || zeroedSegments > 16) {
            throw new IllegalArgumentException("--zeroed-segments must be in [0, 16], got " + zeroedSegments);
        }
        if (maxPartitionsPerShard < 1) {
            throw new IllegalArgumentException("--max-partitions-per-shard must be >= 1, got " + maxPartitionsPerShard);
        }
        if (replicaLagTimeMaxMs < 1) {
            throw new IllegalArgumentException("--replica-lag-time-max-ms must be >= 1, got " + replicaLagTimeMaxMs);
        }
        if (shutdownHandoffMs < 0) {
            throw new IllegalArgumentException("--shutdown-handoff-ms must be >= 0, got " + shutdownHandoffMs);
        }
        if (maxConcurrentMoves < 1 || maxConcurrentMoves > 10_000) {
            throw new IllegalArgumentException("--max-concurrent-moves must be 1 to 10000, got " + maxConcurrentMoves);
        }
        if (requestReceiveTimeoutMs < 1) {
            throw new IllegalArgumentException("--request-receive-timeout must be at least 1 ms, got "
                + requestReceiveTimeoutMs + " ms");
        }
        if (connectionReceiveSharePercent < 1 || connectionReceiveSharePercent > 100) {
            throw new IllegalArgumentException("--connection-receive-share must be a percentage in [1, 100], got "
                + connectionReceiveSharePercent);
        }
        if (offsetsTopicPartitions < 1) {
            throw new IllegalArgumentException("offsets topic partitions must be >= 1, got " + offsetsTopicPartitions);
        }
        if (quotaWindowSamples < 2 || quotaWindowSamples > 1000) {
            throw new IllegalArgumentException("quota.window.num must be 2 to 1000, got " + quotaWindowSamples);
        }
        if (quotaWindowSeconds < 1 || quotaWindowSeconds > 3600) {
            throw new IllegalArgumentException("quota.window.size.seconds must be 1 to 3600, got " + quotaWindowSeconds);
        }
        if (transactions == null) {
            throw new IllegalArgumentException("the transaction settings are missing");
        }
        String badRack = dev.isthmus.gateway.cluster.BrokerInfo.rackProblem(rack);
        if (badRack != null) {
            throw new IllegalArgumentException("--rack: " + badRack);
        }
        seeds = List.copyOf(seeds);
        java.util.Set<Integer> ids = new java.util.HashSet<>();
        for (String seed : seeds) {
            int id = seedId(seed);
            if (!ids.add(id)) {
                throw new IllegalArgumentException("--seeds names node " + id + " twice");
            }
            if (id == nodeId && rpcHost == null) {
                // This node is a seed: its RPC listener is its seed address unless --rpc-listen says otherwise.
                rpcHost = seed.substring(seed.indexOf('@') + 1, seed.lastIndexOf(':'));
                rpcPort = Integer.parseInt(seed.substring(seed.lastIndexOf(':') + 1));
            }
        }
        if (!seeds.isEmpty() && rpcHost == null) {
            throw new IllegalArgumentException("--seeds does not list node " + nodeId + " (--node-id): give its"
                + " --rpc-listen HOST:PORT, the address other nodes reach it at");
        }
        dataDir = dataDir.normalize();
        topicDefaults = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(topicDefaults));
        long writeBehind = writeBehindBytes(memoryPerShard(memoryBytes, shards), topicDefaults);
        long writeBlock = dev.isthmus.arena.MemoryArena.roundedSize(writeBehind);
        if (writeBlock > memoryPerShard(memoryBytes, shards) / 4) {
            long needed = writeBlock * 4 * shards;
            throw new IllegalArgumentException("message.max.bytes " + topicDefaults.get("message.max.bytes")
                + " needs a " + (writeBlock >> 20) + " MiB block of write-behind memory per shard (a whole batch plus"
                + " two chunks, in the arena's power-of-two blocks), more than a quarter of each shard's "
                + (memoryPerShard(memoryBytes, shards) >> 20) + " MiB: give --memory at least "
                + ((needed + jvmNativeReserve(needed * 8 / 7) + (1 << 20) - 1) >> 20) + "M or fewer shards (--smp)");
        }
        TopicConfigs.Defaults.of(topicDefaults, maxMessageBytesLimit(maxRequestBytes, memoryPerShard(memoryBytes,
            shards), writeBehind), "");
    }

    /**
     * Each shard's write-behind memory (the chunks appends are copied into before they reach the disk): an eighth
     * of its arena, between 8 and 64 MiB, and more when the broker's message.max.bytes needs it: a batch is copied
     * whole, so the chunks must hold the largest batch plus a partly filled tail chunk. Such a larger pool takes
     * the whole power-of-two block the arena gives for it.
     */
    public long writeBehindBytesPerShard() {
        return writeBehindBytes(memoryPerShard(), topicDefaults);
    }

    private static long writeBehindBytes(long perShard, Map<String, String> topicDefaults) {
        long chunk = ShardState.WRITE_CHUNK_BYTES;
        long base = Math.max(8L << 20, Math.min(64L << 20, perShard / 8)) / chunk * chunk;
        String brokerMax = topicDefaults.get("message.max.bytes");
        long wanted = 0;
        if (brokerMax != null) {
            try {
                wanted = (Long.parseLong(brokerMax.trim()) + 3 * chunk - 1) / chunk * chunk;
            } catch (NumberFormatException e) {
                wanted = 0; // reported by the topic defaults' own check
            }
        }
        return wanted > base ? dev.isthmus.arena.MemoryArena.roundedSize(wanted) : base;
    }

    /**
     * The largest record batch this broker takes (the highest max.message.bytes a topic may set): the least of
     * what a produce request may carry ({@code --max-request-bytes} less {@link #PRODUCE_REQUEST_OVERHEAD_BYTES}),
     * what a shard's write-behind memory holds beside a tail chunk ({@link #writeBehindBytesPerShard()}), and what
     * a shard may hold of received requests (a quarter of its arena, less the same overhead).
     */
    public int maxMessageBytesLimit() {
        return maxMessageBytesLimit(maxRequestBytes, memoryPerShard(), writeBehindBytesPerShard());
    }

    private static int maxMessageBytesLimit(int maxRequestBytes, long perShard, long writeBehind) {
        long byRequest = (long) maxRequestBytes - PRODUCE_REQUEST_OVERHEAD_BYTES;
        long byWriteBehind = writeBehind - 2L * ShardState.WRITE_CHUNK_BYTES;
        long byReceive = perShard / 4 - PRODUCE_REQUEST_OVERHEAD_BYTES;
        return (int) Math.max(0, Math.min(Integer.MAX_VALUE, Math.min(byRequest, Math.min(byWriteBehind, byReceive))));
    }

    /** What sets {@link #maxMessageBytesLimit()}, and how to raise it: one sentence. */
    public String maxMessageBytesLimitReason() {
        int limit = maxMessageBytesLimit();
        long byRequest = (long) maxRequestBytes - PRODUCE_REQUEST_OVERHEAD_BYTES;
        if (limit == byRequest) {
            return "a produce request carries a whole batch and --max-request-bytes is " + maxRequestBytes
                + "; raise it to at least max.message.bytes + " + PRODUCE_REQUEST_OVERHEAD_BYTES;
        }
        if (limit == writeBehindBytesPerShard() - 2L * ShardState.WRITE_CHUNK_BYTES) {
            return "each shard copies a batch whole into its " + (writeBehindBytesPerShard() >> 20) + " MiB of"
                + " write-behind memory; set message.max.bytes in the broker's --config file to the largest batch"
                + " wanted (it sizes that memory) with enough --memory per shard";
        }
        return "each shard holds received requests in a quarter of its " + (memoryPerShard() >> 20)
            + " MiB arena; give more --memory per shard (--memory / --smp)";
    }

    /** The topic config defaults this broker's settings give, with its batch limit. */
    public TopicConfigs.Defaults topicConfigDefaults() {
        return TopicConfigs.Defaults.of(topicDefaults, maxMessageBytesLimit(), maxMessageBytesLimitReason());
    }

    private static int seedId(String seed) {
        int at = seed.indexOf('@');
        int colon = seed.lastIndexOf(':');
        if (at <= 0 || colon < at) {
            throw new IllegalArgumentException("seed '" + seed + "' is not ID@HOST:PORT");
        }
        try {
            int id = Integer.parseInt(seed.substring(0, at));
            Integer.parseInt(seed.substring(colon + 1));
            if (id < 0) {
                throw new NumberFormatException();
            }
            return id;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("seed '" + seed + "' is not ID@HOST:PORT with a node id >= 0 and a port");
        }
    }

    /** Whether this node runs as part of a cluster (seeds given). */
    public boolean clusterMode() {
        return !seeds.isEmpty();
    }

    /** The seeds as node id -> RPC address (unresolved host names are resolved here). */
    public java.util.Map<Integer, java.net.InetSocketAddress> seedAddresses() {
        java.util.Map<Integer, java.net.InetSocketAddress> m = new java.util.TreeMap<>();
        for (String seed : seeds) {
            int at = seed.indexOf('@');
            int colon = seed.lastIndexOf(':');
            m.put(Integer.parseInt(seed.substring(0, at)), new java.net.InetSocketAddress(seed.substring(at + 1, colon),
                Integer.parseInt(seed.substring(colon + 1))));
        }
        return m;
    }

    private static void checkPort(String option, int port) {
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("--" + option + " port must be in [0, 65535], got " + port);
        }
    }

    /** The laptop defaults of {@code isthmus start}: 127.0.0.1:9092, ./data, 1 GiB, one shard per CPU. */
    public static BrokerConfig defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        return new Builder(this);
    }

    /** The host written into Metadata responses. */
    /**
     * The Kafka listeners: the named ones, or the one PLAINTEXT listener of {@code --listen}/{@code --advertise}
     * (named PLAINTEXT) when none is named.
     */
    public List<ListenerConfig> listeners() {
        if (!security.listeners().isEmpty()) {
            return security.listeners();
        }
        return List.of(new ListenerConfig("PLAINTEXT", host, port, advertisedHost, advertisedPort,
            SecurityProtocol.PLAINTEXT));
    }

    public String advertisedHostOrListen() {
        return advertisedHost != null ? advertisedHost : host;
    }

    /**
     * Each shard's arena: {@code --memory} less the JVM's native reserve, split evenly, in 64 KiB units. The
     * arenas are mapped at start-up and faulted in by a background thread once the broker serves (see
     * {@code Broker.populateArenasInBackground}), so the broker's resident memory is its {@code --memory} (arenas, plus
     * the JVM's own native memory: code cache, metaspace, thread stacks, GC structures, within the reserve)
     * and the fixed Java heap of the launcher.
     */
    public long memoryPerShard() {
        return memoryPerShard(memoryBytes, shards);
    }

    private static long memoryPerShard(long memoryBytes, int shards) {
        return arenaBytes(memoryBytes) / shards / (64 * 1024) * (64 * 1024);
    }

    /** What of {@code --memory} is left to the JVM's native memory: 1/8, at least 16 MiB, at most 256 MiB. */
    static long jvmNativeReserve(long memoryBytes) {
        return Math.min(256L << 20, Math.max(16L << 20, memoryBytes / 8));
    }

    private static long arenaBytes(long memoryBytes) {
        return Math.max(0, memoryBytes - jvmNativeReserve(memoryBytes));
    }

    /** The smallest --memory (whole MiB) that gives every one of {@code shards} at least 64 MiB. */
    static long minimumMemory(int shards) {
        long m = (64L << 20) * shards;
        while (arenaBytes(m) < (64L << 20) * shards) {
            m = (64L << 20) * shards + jvmNativeReserve(m);
            m = (m + (1 << 20) - 1) >> 20 << 20;
        }
        return m;
    }

    public BrokerConfig withPort(int p) {
        return toBuilder().port(p).build();
    }

    public BrokerConfig withShards(int n) {
        return toBuilder().shards(n).build();
    }

    public BrokerConfig withMemory(long bytes) {
        return toBuilder().memoryBytes(bytes).build();
    }

    public BrokerConfig withDataDir(Path dir) {
        return toBuilder().dataDir(dir).build();
    }

    public BrokerConfig withNodeId(int id) {
        return toBuilder().nodeId(id).build();
    }

    public BrokerConfig withPin(boolean p) {
        return toBuilder().pin(p).build();
    }

    public BrokerConfig withBackend(IoBackend b) {
        return toBuilder().backend(b).build();
    }

    /** Mutable builder; {@link #build()} validates. Defaults are those of {@link #defaults()}. */
    public static final class Builder {
        String host = "127.0.0.1";
        int port = 9092;
        String advertisedHost;
        int advertisedPort;
        int nodeId;
        int shards = Libc.allowedCpus().length;
        long memoryBytes = 1L << 30;
        Path dataDir = Path.of("data");
        boolean pin;
        IoBackend backend = IoBackend.AUTO;
        int maxRequestBytes = 100 << 20;
        int maxConnections = 10_000;
        long maxConnectionBufferedBytes = 128L << 20;
        int defaultPartitions = 1;
        boolean autoCreateTopics = true;
        int groupMinSessionTimeoutMs = 6_000;
        int groupMaxSessionTimeoutMs = 1_800_000;
        int groupInitialRebalanceDelayMs = 3_000;
        int offsetsTopicPartitions = 16;
        long offsetsRetentionMs = 7L * 24 * 3600 * 1000;
        String metricsHost;
        int metricsPort;
        String rpcHost;
        int rpcPort;
        List<String> seeds = List.of();
        int zeroedSegments = 1;
        int maxPartitionsPerShard = 1000;
        long replicaLagTimeMaxMs = 30_000;
        long shutdownHandoffMs = 10_000;
        int maxConcurrentMoves = 8;
        boolean autoLeaderRebalance = true;
        Map<String, String> topicDefaults = new java.util.LinkedHashMap<>();
        long requestReceiveTimeoutMs = 30_000;
        int connectionReceiveSharePercent = 50;
        // Kept apart until build(): a listener needing TLS may be set before the TLS settings.
        List<ListenerConfig> listeners = List.of();
        TlsSettings tls = TlsSettings.DEFAULTS;
        SaslSettings sasl = SaslSettings.DEFAULTS;
        dev.isthmus.gateway.security.RpcTlsSettings rpcTls;
        TxnConfig transactions = TxnConfig.DEFAULTS;
        dev.isthmus.gateway.auth.AuthorizerConfig authorizer = dev.isthmus.gateway.auth.AuthorizerConfig.OFF;
        String rack;
        boolean partitionBalancer = true;
        int quotaWindowSamples = 11;
        long quotaWindowSeconds = 1;

        Builder() {
        }

        Builder(BrokerConfig c) {
            host = c.host;
            port = c.port;
            advertisedHost = c.advertisedHost;
            advertisedPort = c.advertisedPort;
            nodeId = c.nodeId;
            shards = c.shards;
            memoryBytes = c.memoryBytes;
            dataDir = c.dataDir;
            pin = c.pin;
            backend = c.backend;
            maxRequestBytes = c.maxRequestBytes;
            maxConnections = c.maxConnections;
            maxConnectionBufferedBytes = c.maxConnectionBufferedBytes;
            defaultPartitions = c.defaultPartitions;
            autoCreateTopics = c.autoCreateTopics;
            groupMinSessionTimeoutMs = c.groupMinSessionTimeoutMs;
            groupMaxSessionTimeoutMs = c.groupMaxSessionTimeoutMs;
            groupInitialRebalanceDelayMs = c.groupInitialRebalanceDelayMs;
            offsetsTopicPartitions = c.offsetsTopicPartitions;
            offsetsRetentionMs = c.offsetsRetentionMs;
            metricsHost = c.metricsHost;
            metricsPort = c.metricsPort;
            rpcHost = c.rpcHost;
            rpcPort = c.rpcPort;
            seeds = c.seeds;
            zeroedSegments = c.zeroedSegments;
            maxPartitionsPerShard = c.maxPartitionsPerShard;
            replicaLagTimeMaxMs = c.replicaLagTimeMaxMs;
            shutdownHandoffMs = c.shutdownHandoffMs;
            maxConcurrentMoves = c.maxConcurrentMoves;
            autoLeaderRebalance = c.autoLeaderRebalance;
            topicDefaults = new java.util.LinkedHashMap<>(c.topicDefaults);
            requestReceiveTimeoutMs = c.requestReceiveTimeoutMs;
            connectionReceiveSharePercent = c.connectionReceiveSharePercent;
            transactions = c.transactions;
            authorizer = c.authorizer;
            listeners = c.security.listeners();
            tls = c.security.tls();
            sasl = c.security.sasl();
            rpcTls = c.security.rpcTls();
            rack = c.rack;
            partitionBalancer = c.partitionBalancer;
            quotaWindowSamples = c.quotaWindowSamples;
            quotaWindowSeconds = c.quotaWindowSeconds;
        }

        /** Client quota measurement: {@code samples} samples of {@code seconds} each (Kafka's quota.window.*). */
        public Builder quotaWindows(int samples, long seconds) {
            quotaWindowSamples = samples;
            quotaWindowSeconds = seconds;
            return this;
        }

        /** {@code quota.window.num}. */
        public Builder quotaWindowSamples(int v) {
            quotaWindowSamples = v;
            return this;
        }

        /** {@code quota.window.size.seconds}. */
        public Builder quotaWindowSeconds(long v) {
            quotaWindowSeconds = v;
            return this;
        }

        /** Whether the controller leader moves replicas onto nodes that join (default true). */
        public Builder partitionBalancer(boolean v) {
            partitionBalancer = v;
            return this;
        }

        /** This node's rack (null: none). */
        public Builder rack(String v) {
            rack = v;
            return this;
        }

        public Builder transactions(TxnConfig v) {
            transactions = v;
            return this;
        }

        /** A transaction coordinator setting by Kafka's name (one of {@link TxnConfig#NAMES}). */
        public Builder transactionSetting(String name, String value) {
            transactions = transactions.with(name, value);
            return this;
        }

        public Builder authorizer(dev.isthmus.gateway.auth.AuthorizerConfig v) {
            authorizer = v;
            return this;
        }

        /** Named listeners, TLS and SASL settings (see {@link SecuritySettings}). */
        public Builder security(SecuritySettings v) {
            listeners = v.listeners();
            tls = v.tls();
            sasl = v.sasl();
            rpcTls = v.rpcTls();
            return this;
        }

        /** TLS of the node-to-node RPC port (null: plaintext). */
        public Builder rpcTls(dev.isthmus.gateway.security.RpcTlsSettings v) {
            rpcTls = v;
            return this;
        }

        public Builder listeners(List<ListenerConfig> v) {
            listeners = v;
            return this;
        }

        public Builder tls(TlsSettings v) {
            tls = v;
            return this;
        }

        public Builder sasl(SaslSettings v) {
            sasl = v;
            return this;
        }

        public Builder autoLeaderRebalance(boolean v) {
            autoLeaderRebalance = v;
            return this;
        }

        public Builder replicaLagTimeMaxMs(long v) {
            replicaLagTimeMaxMs = v;
            return this;
        }

        public Builder shutdownHandoffMs(long v) {
            shutdownHandoffMs = v;
            return this;
        }

        public Builder maxConcurrentMoves(int v) {
            maxConcurrentMoves = v;
            return this;
        }

        /**
         * A broker default of a topic config, by its Kafka broker setting name ({@code log.retention.ms},
         * {@code message.max.bytes}, ...); validated by {@link #build()}.
         */
        public Builder topicDefault(String brokerSetting, String value) {
            topicDefaults.put(brokerSetting, value);
            return this;
        }

        public Builder requestReceiveTimeoutMs(long v) {
            requestReceiveTimeoutMs = v;
            return this;
        }

        public Builder connectionReceiveSharePercent(int v) {
            connectionReceiveSharePercent = v;
            return this;
        }

        public Builder maxPartitionsPerShard(int v) {
            maxPartitionsPerShard = v;
            return this;
        }

        public Builder zeroedSegments(int v) {
            zeroedSegments = v;
            return this;
        }

        public Builder host(String v) {
            host = v;
            return this;
        }

        public Builder port(int v) {
            port = v;
            return this;
        }

        public Builder advertised(String h, int p) {
            advertisedHost = h;
            advertisedPort = p;
            return this;
        }

        public Builder nodeId(int v) {
            nodeId = v;
            return this;
        }

        public Builder shards(int v) {
            shards = v;
            return this;
        }

        public Builder memoryBytes(long v) {
            memoryBytes = v;
            return this;
        }

        public Builder dataDir(Path v) {
            dataDir = v;
            return this;
        }

        public Builder pin(boolean v) {
            pin = v;
            return this;
        }

        public Builder backend(IoBackend v) {
            backend = v;
            return this;
        }

        public Builder maxRequestBytes(int v) {
            maxRequestBytes = v;
            return this;
        }

        public Builder maxConnections(int v) {
            maxConnections = v;
            return this;
        }

        public Builder maxConnectionBufferedBytes(long v) {
            maxConnectionBufferedBytes = v;
            return this;
        }

        public Builder defaultPartitions(int v) {
            defaultPartitions = v;
            return this;
        }

        public Builder autoCreateTopics(boolean v) {
            autoCreateTopics = v;
            return this;
        }

        public Builder groupSessionTimeoutBoundsMs(int min, int max) {
            groupMinSessionTimeoutMs = min;
            groupMaxSessionTimeoutMs = max;
            return this;
        }

        public Builder groupInitialRebalanceDelayMs(int v) {
            groupInitialRebalanceDelayMs = v;
            return this;
        }

        public Builder offsetsTopicPartitions(int v) {
            offsetsTopicPartitions = v;
            return this;
        }

        public Builder offsetsRetentionMs(long v) {
            offsetsRetentionMs = v;
            return this;
        }

        public Builder metrics(String h, int p) {
            metricsHost = h;
            metricsPort = p;
            return this;
        }

        public Builder rpc(String h, int p) {
            rpcHost = h;
            rpcPort = p;
            return this;
        }

        public Builder seeds(List<String> v) {
            seeds = v;
            return this;
        }

        public BrokerConfig build() {
            return new BrokerConfig(host, port, advertisedHost, advertisedPort, nodeId, shards, memoryBytes, dataDir,
                pin, backend, maxRequestBytes, maxConnections, maxConnectionBufferedBytes, defaultPartitions,
                autoCreateTopics, groupMinSessionTimeoutMs, groupMaxSessionTimeoutMs, groupInitialRebalanceDelayMs,
                offsetsTopicPartitions, offsetsRetentionMs, metricsHost, metricsPort, rpcHost, rpcPort, seeds,
                zeroedSegments, maxPartitionsPerShard, autoLeaderRebalance, replicaLagTimeMaxMs, shutdownHandoffMs,
                maxConcurrentMoves, topicDefaults, requestReceiveTimeoutMs, connectionReceiveSharePercent, transactions, authorizer,
                new SecuritySettings(listeners, tls, sasl, rpcTls), rack, partitionBalancer, quotaWindowSamples,
                quotaWindowSeconds);
        }
    }
}
