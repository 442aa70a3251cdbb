package dev.isthmus.gateway;

import dev.isthmus.arena.ArenaConfig;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.ShardArenas;
import dev.isthmus.gateway.protocol.IoBufSlice;
import dev.isthmus.gateway.security.CredentialStore;
import dev.isthmus.gateway.security.ListenerConfig;
import dev.isthmus.gateway.security.SaslSettings;
import dev.isthmus.gateway.security.SecuritySettings;
import dev.isthmus.gateway.security.TlsContexts;
import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.Uuid;
import dev.isthmus.gateway.protocol.message.FetchResponseData;
import dev.isthmus.log.ChunkPool;
import dev.isthmus.gateway.cluster.BrokerInfo;
import dev.isthmus.gateway.cluster.ClusterState;
import dev.isthmus.gateway.cluster.Controller;
import dev.isthmus.gateway.cluster.ControllerCommand;
import dev.isthmus.gateway.cluster.PartitionInfo;
import dev.isthmus.raft.server.RaftServer;
import dev.isthmus.raft.server.RaftServerConfig;
import dev.isthmus.raft.server.StoragePools;
import dev.isthmus.uring.TcpListener;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.Shard;
import dev.isthmus.uring.shard.ShardGroup;
import dev.isthmus.uring.shard.ShardGroupConfig;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * An Isthmus broker node: a {@link ShardGroup}, one arena per shard, a Kafka listener on every shard
 * (SO_REUSEPORT: the kernel spreads connections), and a {@link RaftServer} hosting every partition replica
 * placed on this node as a Raft group on the shard the controller chose, plus the controller group on shard 0
 * (alone on a single node, with the seed nodes in a cluster). Topic metadata is the controller's replicated
 * {@link ClusterState}; shard 0 turns each applied state into a {@link TopicTable} and hands it to every shard.
 * Requests are handled on the connection's shard; work for partitions of other shards travels as cross-shard
 * calls (techniques 7 and 8), and leadership changes are announced to every shard's leader table.
 */
public final class Broker implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(Broker.class.getName());
    /** How long a topic operation waits for the controller. */
    static final long CONTROLLER_TIMEOUT_MS = 30_000;

    private final BrokerConfig config;
    private final ShardGroup group;
    private final ShardArenas arenas;
    private final ShardState[] states;
    /** Each shard's receive memory, shared fairly by its connections (owned by that shard). */
    private final ReceiveMemory[] receiveMemory;
    private final List<Set<Connection>> connections = new ArrayList<>();
    /** Per shard, one acceptor per Kafka listener (in the order of {@link BrokerConfig#listeners()}). */
    private final TcpListener[][] listeners;
    /** The Kafka listeners with their bound ports (0 replaced by the port chosen). */
    private volatile List<ListenerConfig> boundListeners = List.of();
    /** OAUTHBEARER's token validator; null when the mechanism is not enabled. */
    private volatile dev.isthmus.gateway.security.OAuthBearerValidator oauthBearer;
    /** The TLS material of the SSL and SASL_SSL listeners; null when the broker has none. */
    private volatile TlsContexts tls;
    /** The RPC port's TLS material (null: plaintext RPC); reloaded as the listeners' is. */
    private volatile TlsContexts rpcTls;
    /**
     * Per shard, the SCRAM credentials SASL exchanges look up (an immutable snapshot, replaced as a whole): the
     * controller's, then the bootstrap user's ({@link CredentialStore#layered}). Owned by each shard.
     */
    private final CredentialStore[] credentials;
    /** Per shard, the controller's credentials alone (the first layer of {@link #credentials}). Owned by each shard. */
    private final CredentialStore[] replicatedCredentials;
    /** The credentials of the configuration (the bootstrap admin user), or those a test installed. */
    private volatile CredentialStore bootstrapCredentials = CredentialStore.EMPTY;
    /** Shard 0 only: the controller's credentials handed to the shards last, and the map they were built from. */
    private CredentialStore replicatedStore = CredentialStore.EMPTY;
    private java.util.SortedMap<dev.isthmus.gateway.cluster.UserScramCredential.Key,
        dev.isthmus.gateway.cluster.UserScramCredential> replicatedSource = java.util.Collections.emptySortedMap();
    /** Worker threads for CPU-heavy security work off the shards: TLS handshake tasks, PLAIN key derivation. */
    private final java.util.concurrent.ExecutorService securityWorkers = java.util.concurrent.Executors
        .newFixedThreadPool(2, r -> {
            Thread t = new Thread(r, "isthmus-security");
            t.setDaemon(true);
            return t;
        });
    private final Handlers handlers;
    private final String clusterId;
    /** The broker's defaults of topic configs and its batch limit (from the static configuration). */
    private final TopicConfigs.Defaults topicDefaults;
    /** Slow file work off the shard threads: removing the directories of deleted partitions. */
    private final java.util.concurrent.ExecutorService background = java.util.concurrent.Executors
        .newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "isthmus-background");
            t.setDaemon(true);
            return t;
        });
    private volatile int port;
    private volatile MetricsServer metrics;
    private volatile RaftServer raft;
    private volatile Controller controller;
    private volatile boolean registered;
    /**
     * The controller offset of this start's own registration, once applied here (Long.MAX_VALUE before): a shard whose
     * installed state is older knows nothing current of the cluster (see {@link #caughtUp}). Written once by the
     * registration's completion, read by every shard.
     */
    private volatile long registeredOffset = Long.MAX_VALUE;
    /** Set when the broker starts closing: periodic tasks stop rescheduling. */
    private volatile boolean closing;
    /** The background thread faulting the arenas in after start ({@link #populateArenasInBackground}), or null. */
    private volatile Thread populating;
    private static final long POPULATE_STEP_BYTES = 64L << 20;
    /** Set once a shutdown started handing the leaderships away (maintenance then leaves campaigning off). */
    private volatile boolean handingOffForShutdown;
    /** Leaders, epochs and in-sync replicas published by the leaders, between shards and nodes. */
    private final ReplicaStates replicaStates = new ReplicaStates(this);
    /** Partition moves: the reassignment APIs and each shard's loop driving its groups' membership. */
    private final Reassignments reassignments;
    private final NodeOperations nodeOperations;
    // Shard 0 only: the table handed to the shards last, the version every shard has installed, and waiters.
    private TopicTable published = TopicTable.EMPTY;
    /** Shard 0: the newest controller state published before this start caught up (see {@link #onClusterState}). */
    private ClusterState deferredState;
    private long installedVersion = -1;
    private final List<Map.Entry<Long, Promise<Void>>> installWaiters = new ArrayList<>();
    private final java.util.ArrayDeque<Install> pendingInstalls = new java.util.ArrayDeque<>();
    private final Partition.Leadership leadership = this::leadershipChanged;
    /** Shard 0 only: the authorizer handed to the shards last (rebuilt only when the ACLs change). */
    private dev.isthmus.gateway.auth.Authorizer authorizer = dev.isthmus.gateway.auth.Authorizer.ALLOW_ALL;
    /** Client quota enforcement, shared by the shards (lock-free sensors; see its class comment). */
    private final ClientQuotas quotas;

    /** The broker's client quota enforcement (any thread). */
    ClientQuotas quotas() {
        return quotas;
    }

    /**
     * Runs a security command (ACLs, SCRAM credentials) through the controller from {@code caller}'s shard and
     * completes there, once every shard of this node installed the change, with the
     * {@link dev.isthmus.gateway.cluster.ControllerResult} or a
     * {@link Failure}.
     */
    Promise<Object> aclCommand(Shard caller, ControllerCommand command) {
        Controller c = controller;
        if (c == null) {
            return Promise.completed(new Failure(ErrorCodes.NOT_CONTROLLER, "the controller is not running"));
        }
        return caller.submitToAsync(0, s -> c.submitHere(command, CONTROLLER_TIMEOUT_MS).flatMap(res -> {
            if (!res.isOk()) {
                return Promise.completed((Object) new Failure((short) res.errorCode(), res.message()));
            }
            return awaitInstalled(res.appliedOffset()).map(x -> (Object) res);
        }));
    }

    private Broker(BrokerConfig config, ShardGroup group, ShardArenas arenas, String clusterId) {
        this.config = config;
        this.quotas = new ClientQuotas(config.quotaWindowSamples(), config.quotaWindowSeconds());
        this.group = group;
        this.arenas = arenas;
        this.states = new ShardState[group.size()];
        this.receiveMemory = new ReceiveMemory[group.size()];
        this.listeners = new TcpListener[group.size()][];
        this.credentials = new CredentialStore[group.size()];
        java.util.Arrays.fill(credentials, CredentialStore.EMPTY);
        this.replicatedCredentials = new CredentialStore[group.size()];
        java.util.Arrays.fill(replicatedCredentials, CredentialStore.EMPTY);
        this.clusterId = clusterId;
        this.topicDefaults = config.topicConfigDefaults();
        this.reassignments = new Reassignments(this, group.size());
        this.nodeOperations = new NodeOperations(this, group.size());
        this.handlers = new Handlers(this);
        for (int i = 0; i < group.size(); i++) {
            connections.add(new HashSet<>());
        }
    }

    /**
     * Starts the broker and returns once every shard listens. A single node waits until it is registered with
     * its own controller; a cluster node registers in the background (the controller needs a majority of the
     * seeds up).
     */
    public static Broker start(BrokerConfig config) throws IOException {
        StartupPhases phases = new StartupPhases();
        Path data = config.dataDir().toAbsolutePath();
        Path logs = data.resolve("logs");
        Files.createDirectories(logs);
        ShardState.removeDeletedDirectories(logs);
        removeUnusedZeroedSegments(data.resolve("zeroed-segments"), config.zeroedSegments() > 0 ? config.shards() : 0);
        String clusterId = clusterId(config, data);
        ShardGroup group = ShardGroup.start(ShardGroupConfig.of(config.shards()).withPin(config.pin())
            .withBackend(config.backend()), null);
        phases.end("shard threads");
        Broker b = null;
        try {
            // Each shard's memory is mapped in full now (the kernel's commit charge is taken for all of it), on
            // transparent huge pages where the kernel gives them. Its pages are faulted in right after the listeners
            // open, by a background thread (populateArenasInBackground), so no first-touch page fault lands on the
            // data path (they cost 10-15 us per 4 KiB page on a VM) and start-up does not wait for it. A kernel
            // without MADV_POPULATE_WRITE faults them in here, before serving, as only a write can do it there.
            boolean populateNow = !MemoryArena.canPopulateConcurrently();
            ShardArenas arenas = ShardArenas.install(group,
                id -> ArenaConfig.of(config.memoryPerShard()).withPopulate(populateNow, true));
            phases.end(populateNow ? "arenas (faulted in)" : "arenas");
            b = new Broker(config, group, arenas, clusterId);
            Broker broker = b;
            for (int i = 0; i < group.size(); i++) {
                int id = i;
                group.call(i, s -> {
                    ShardState st = new ShardState(s, arenas.current(), config.nodeId(), logs,
                        config.writeBehindBytesPerShard(), broker.topicDefaults);
                    if (config.zeroedSegments() > 0) {
                        st.installZeroedSegments(data.resolve("zeroed-segments").resolve("shard-" + id),
                            config.zeroedSegments());
                    }
                    st.groups = new GroupCoordinator(broker, st);
                    st.txn = new TxnCoordinator(broker, st);
                    st.txnVerifier = new TxnVerifier(broker, st);
                    st.autoLeaderRebalance = config.autoLeaderRebalance();
                    // Until the controller's ACLs arrive, only super users (or allow.everyone.if.no.acl.found) pass.
                    st.authorizer = dev.isthmus.gateway.auth.Authorizer.of(config.authorizer(), List.of());
                    broker.states[id] = st;
                    broker.receiveMemory[id] = new ReceiveMemory(s, st.arena,
                        TimeUnit.MILLISECONDS.toNanos(config.requestReceiveTimeoutMs()),
                        config.connectionReceiveSharePercent());
                    return null;
                }).get(30, TimeUnit.SECONDS);
            }
            ReceiveMemory rm = b.receiveMemory[0];
            if (4L + config.maxRequestBytes() > rm.maxFrameBytes()) {
                LOG.log(System.Logger.Level.WARNING, "requests above " + (rm.maxFrameBytes() - 4) + " bytes will be"
                    + " refused: that is what each shard's receive memory (a quarter of its " + config.memoryPerShard()
                    + "-byte arena, less room kept for small requests) can take, below --max-request-bytes "
                    + config.maxRequestBytes() + "; raise --memory or lower --max-request-bytes");
            }
            phases.end("shard state");
            b.startSecurity();
            phases.end("security");
            b.startRaft(data);
            phases.end("raft and controller log");
            b.listenAll();
            phases.end("listeners");
            b.register();
            phases.end(config.clusterMode() ? "registration started" : "registration and partitions led");
            if (config.metricsHost() != null) {
                b.metrics = MetricsServer.start(b, config.metricsHost(), config.metricsPort());
                phases.end("metrics");
            }
            if (!populateNow) {
                b.populateArenasInBackground();
            }
        } catch (Exception e) {
            if (b != null) {
                b.close();
            } else {
                group.close();
            }
            throw new IOException("broker failed to start: " + e.getMessage(), e);
        }
        LOG.log(System.Logger.Level.INFO, "Isthmus node " + config.nodeId() + " listening on " + config.host() + ":"
            + b.port + " with " + group.size() + " shard(s), " + (config.memoryBytes() >> 20) + " MiB, data in " + data
            + (config.clusterMode() ? ", RPC on " + b.raft.rpcAddress() + ", seeds " + config.seeds() : ""));
        LOG.log(System.Logger.Level.INFO, "node " + config.nodeId() + " start-up: " + phases);
        return b;
    }

    /**
     * Faults in every shard's arena on one background platform thread, 64 MiB at a time, shard after shard (see
     * {@link MemoryArena#populate}: it leaves the contents alone, so the shards serve meanwhile). Runs once, after
     * the listeners opened; {@link #close()} stops it and waits for it before the arenas are unmapped.
     */
    private void populateArenasInBackground() {
        populating = Thread.ofPlatform().daemon().name("isthmus-arena-populate").start(() -> {
            long startNs = System.nanoTime();
            long bytes = 0;
            for (int i = 0; i < group.size(); i++) {
                MemoryArena a = arenas.arena(i);
                long size = a.config().bytes();
                for (long at = 0; at < size && !closing; at += POPULATE_STEP_BYTES) {
                    int rc = a.populate(at, Math.min(POPULATE_STEP_BYTES, size - at));
                    if (rc != 0) {
                        LOG.log(System.Logger.Level.WARNING, "faulting in shard " + i + "'s memory stopped at "
                            + (at >> 20) + " MiB of " + (size >> 20) + " (errno " + -rc + "): the rest is faulted in"
                            + " by its first use");
                        break;
                    }
                    bytes += Math.min(POPULATE_STEP_BYTES, size - at);
                }
            }
            LOG.log(System.Logger.Level.INFO, "node " + config.nodeId() + ": " + (bytes >> 20) + " MiB of shard memory"
                + " faulted in, in the background, in " + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNs)
                + " ms");
        });
    }

    /**
     * Deletes the zeroed segment files of shards this start does not have (fewer shards than before, or
     * {@code --zeroed-segments 0}): each is a segment's size of disk.
     */
    private static void removeUnusedZeroedSegments(Path dir, int shards) throws IOException {
        if (!Files.isDirectory(dir)) {
            return;
        }
        try (var list = Files.list(dir)) {
            for (Path shardDir : list.toList()) {
                String name = shardDir.getFileName().toString();
                int id;
                try {
                    id = name.startsWith("shard-") ? Integer.parseInt(name.substring(6)) : -1;
                } catch (NumberFormatException e) {
                    id = -1;
                }
                if (id >= shards && Files.isDirectory(shardDir)) {
                    try (var files = Files.list(shardDir)) {
                        for (Path f : files.toList()) {
                            Files.deleteIfExists(f);
                        }
                    }
                    Files.deleteIfExists(shardDir);
                }
            }
        }
    }

    /**
     * The cluster id, kept in {@code cluster.id}: random for a single node; for a cluster derived from the seed
     * list, so every node started with the same seeds agrees without another round of configuration.
     */
    private static String clusterId(BrokerConfig config, Path data) throws IOException {
        Path idFile = data.resolve("cluster.id");
        if (Files.exists(idFile)) {
            return Files.readString(idFile, StandardCharsets.UTF_8).trim();
        }
        String id;
        if (config.clusterMode()) {
            java.util.UUID u = java.util.UUID.nameUUIDFromBytes(("isthmus-cluster " + config.seedAddresses())
                .getBytes(StandardCharsets.UTF_8));
            id = new Uuid(u.getMostSignificantBits(), u.getLeastSignificantBits()).toString();
        } else {
            id = Uuid.random().toString();
        }
        Files.writeString(idFile, id, StandardCharsets.UTF_8);
        return id;
    }

    private void startRaft(Path data) throws Exception {
        Map<Integer, InetSocketAddress> seeds = config.seedAddresses();
        Map<Integer, InetSocketAddress> peers = new java.util.TreeMap<>(seeds);
        peers.remove(config.nodeId());
        Set<Integer> voters = config.clusterMode() ? seeds.keySet() : Set.of(config.nodeId());
        // A single node opens no RPC port unless --rpc-listen names one: it has no peer to talk to.
        InetSocketAddress rpc = config.rpcHost() != null ? new InetSocketAddress(config.rpcHost(), config.rpcPort())
            : null;
        RaftServerConfig rc = RaftServerConfig.of(config.nodeId(), clusterId, rpc, peers, voters, data);
        // A Raft entry is one produced batch: the bounds on uncommitted bytes, queued bytes per peer and frames
        // must each take the largest batch this broker accepts, or such a batch could never commit.
        long batch = config.maxMessageBytesLimit() + (1L << 20);
        rc = rc.withRaft(rc.raft().toBuilder().maxUncommittedBytes(Math.max(rc.raft().maxUncommittedBytes(), 2 * batch))
            .build());
        rc = rc.withTransport(rc.transport().withBuffers(Math.max(rc.transport().maxPeerBufferBytes(), batch),
            rc.transport().sendBufferBytes(), (int) Math.min(Integer.MAX_VALUE,
                Math.max(rc.transport().maxFrameBytes(), batch))));
        StoragePools pools = new StoragePools() {
            @Override
            public ChunkPool writePool(int shard) {
                return states[shard].writePool;
            }

            @Override
            public ChunkPool readPool(int shard) {
                return states[shard].readPool;
            }

            @Override
            public dev.isthmus.log.BatchCache batchCache(int shard) {
                return states[shard].batchCache;
            }

            @Override
            public dev.isthmus.log.ZeroedSegments zeroedSegments(int shard) {
                return states[shard].zeroedSegments(); // wired explicitly (no longer found through the engine)
            }
        };
        try {
            raft = RaftServer.start(group, rc, pools, rpcTransportTls());
        } catch (IllegalStateException e) {
            throw new IOException(e.getMessage(), e);
        }
        // The controller (cluster metadata) is this layer's: it opens its group on Raft's controller shard
        // through the same API as a partition, and is stopped before Raft (see close()).
        Controller started;
        try {
            started = group.callAsync(RaftServer.CONTROLLER_SHARD, s -> Controller.start(raft)).get(60, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IOException("cannot start the controller: " + e.getCause().getMessage(), e.getCause());
        } catch (java.util.concurrent.TimeoutException e) {
            throw new IOException("cannot start the controller: no answer in 60 s", e);
        }
        for (int i = 0; i < group.size(); i++) {
            int id = i;
            group.call(i, s -> {
                states[id].raft = raft.shard(id);
                if (id == 0) {
                    handlers.admin().elections().register(raft.shard(0).transport()); // ElectLeaders between nodes
                    handlers.transactions().requests().register(raft.shard(0).transport()); // markers between nodes
                    replicaStates.register(raft.shard(0).transport()); // replica states between nodes
                }
                replicaStates.startChecks(states[id]);
                reassignments.start(states[id]);
                nodeOperations.start(states[id]); // maintenance and decommission
                return null;
            }).get(30, TimeUnit.SECONDS);
        }
        controller = started;
        controller.balancer().setEnabled(config.partitionBalancer());
        controller.addListener(this::onClusterState);
    }

    /** Registers this broker (its Kafka and RPC addresses) with the controller; waits on a single node. */
    private void register() throws Exception {
        InetSocketAddress rpc = raft.rpcAddress();
        String rpcHost = config.rpcHost() != null ? config.rpcHost() : rpc != null ? rpc.getHostString() : "-";
        List<BrokerInfo.Endpoint> endpoints = new ArrayList<>();
        for (ListenerConfig l : boundListeners) {
            endpoints.add(new BrokerInfo.Endpoint(l.name(), l.advertisedHostOrBind(),
                l.advertisedPort() != 0 ? l.advertisedPort() : l.port()));
        }
        BrokerInfo.Endpoint first = endpoints.get(0);
        BrokerInfo self = new BrokerInfo(config.nodeId(), first.host(), first.port(), rpcHost,
            rpc != null ? rpc.getPort() : 0, group.size(), endpoints, config.rack());
        java.util.concurrent.CompletableFuture<?> done = controller.register(self).whenComplete((st, f) -> {
            if (f == null) {
                // On the controller's shard, where onClusterState runs: from this offset on states are installed,
                // starting with the newest one held back while the log replayed.
                group.call(RaftServer.CONTROLLER_SHARD, s -> {
                    registeredOffset = st.appliedOffset();
                    ClusterState held = deferredState;
                    deferredState = null;
                    if (held != null && held.appliedOffset() >= st.appliedOffset()) {
                        onClusterState(held);
                    }
                    return null;
                });
                registered = true;
                LOG.log(System.Logger.Level.INFO, "node " + config.nodeId() + " registered with the controller (offset "
                    + st.appliedOffset() + ")");
            } else {
                LOG.log(System.Logger.Level.WARNING, "node " + config.nodeId() + " could not register: " + f);
            }
        });
        if (!config.clusterMode()) {
            done.get(60, TimeUnit.SECONDS);
            awaitLocalLeaders(TimeUnit.SECONDS.toNanos(60));
        }
    }

    /**
     * Single node: waits until the controller's state is installed on every shard and every partition leads
     * with its producer state loaded, so the first request after start is served instead of told to retry.
     */
    private void awaitLocalLeaders(long timeoutNs) throws Exception {
        long deadline = System.nanoTime() + timeoutNs;
        long applied = controller.state().appliedOffset();
        try {
            group.callAsync(0, s -> awaitInstalled(applied)).get(timeoutNs, TimeUnit.NANOSECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            // A TimeoutException has no message: say what did not happen (bench/chaos saw "failed to start: null").
            throw new IOException("the controller's state (applied offset " + applied + ") was not installed on every"
                + " shard within " + TimeUnit.NANOSECONDS.toSeconds(timeoutNs) + " s", e);
        }
        for (int i = 0; i < group.size(); i++) {
            int id = i;
            while (!group.call(i, s -> states[id].allLeading()).get(30, TimeUnit.SECONDS)) {
                if (System.nanoTime() > deadline) {
                    LOG.log(System.Logger.Level.WARNING, "some partitions of shard " + id + " have no leader yet");
                    break;
                }
                Thread.sleep(5);
            }
        }
    }

    /** Whether the broker started closing (periodic tasks stop). */
    boolean isClosing() {
        return closing;
    }

    /** Whether the controller has this node's registration (ready to take topics). */
    boolean registered() {
        return registered;
    }

    /**
     * Any shard, about its own {@code st}: whether the shard holds the controller's state as of this node's registration
     * of this start, which follows every command committed before the node started. Until then what the shard holds
     * is nothing, or a replay of the log still short of the cluster's present (topics created since missing), and
     * Metadata must not present it as the cluster: Kafka's brokers do not serve before they have replayed the
     * metadata log to the high watermark they learn at registration.
     */
    boolean caughtUp(ShardState st) {
        ClusterState cs = st.cluster;
        return cs != null && cs.appliedOffset() >= registeredOffset;
    }

    /**
     * Shard 0: a new controller state: hand its topic table to every shard. Every applied controller command comes
     * here, also one that changed no metadata (its install finds nothing to do but still counts): a start or a
     * command's caller waiting for offset N must not wait for a later change that may never come.
     */
    private void onClusterState(ClusterState cs) {
        if (cs.appliedOffset() < registeredOffset) {
            // A state from the replay of the controller log after a start, older than this start's registration: the
            // cluster's past, not its present. Installing it would open replicas of topics deleted since, and stop and
            // delete the files of replicas that a later move put back on this node (bench/chaos: after kill -9 of every
            // node, both replicas of a moved partition deleted their data replaying a state from before the move and
            // the partition restarted empty at offset 0). Held back; the registration installs the newest.
            deferredState = cs;
            return;
        }
        deferredState = null;
        TopicTable next = TopicTable.of(cs);
        if (next.version() <= published.version()) {
            return;
        }
        TopicTable previous = published;
        published = next;
        dev.isthmus.gateway.auth.Authorizer az = authorizer = authorizer.refreshed(config.authorizer(), cs.acls());
        if (cs.scramCredentials() != replicatedSource) { // rebuilt only when a SCRAM command changed them
            replicatedSource = cs.scramCredentials();
            replicatedStore = replicatedStore(replicatedSource);
        }
        CredentialStore creds = replicatedStore;
        quotas.install(cs.quotas()); // before the installs: a command's caller answered after them sees it in force
        List<Promise<Void>> installs = new ArrayList<>();
        Shard s0 = Shard.current();
        for (int i = 0; i < group.size(); i++) {
            int id = i;
            installs.add(s0.submitToAsync(i, x -> {
                states[id].cluster = cs;
                states[id].authorizer = az;
                if (replicatedCredentials[id] != creds) {
                    replicatedCredentials[id] = creds;
                    credentials[id] = CredentialStore.layered(creds, bootstrapCredentials);
                }
                nodeOperations.follow(states[id], cs); // maintenance first: the groups it opens must not campaign
                return states[id].install(previous, next, leadership, background);
            }));
        }
        Install install = new Install(next.version());
        pendingInstalls.add(install);
        Promise.whenAllSettled(installs).whenComplete((x, f) -> {
            install.settled = true;
            // In version order: a later install can settle first (it skips the partitions an earlier one is still
            // opening), but offset N is installed only once every install up to N has settled.
            while (!pendingInstalls.isEmpty() && pendingInstalls.peekFirst().settled) {
                installedVersion = Math.max(installedVersion, pendingInstalls.pollFirst().version);
            }
            installWaiters.removeIf(w -> {
                if (w.getKey() <= installedVersion) {
                    w.getValue().complete(null);
                    return true;
                }
                return false;
            });
        });
    }

    /** Shard 0: one topic table handed to the shards, settled once every shard has installed it. */
    private static final class Install {
        final long version;
        boolean settled;

        Install(long version) {
            this.version = version;
        }
    }

    /** Shard 0: completes once every shard installed the topic table of controller offset {@code version}. */
    private Promise<Void> awaitInstalled(long version) {
        if (installedVersion >= version) {
            return Promise.completed(null);
        }
        Promise<Void> p = new Promise<>();
        installWaiters.add(Map.entry(version, p));
        return p;
    }

    /** On a partition's shard: announces its leader and epoch to every shard's leader table. */
    private void leadershipChanged(Partition p, boolean leader, long term, int leaderId) {
        Shard here = Shard.current();
        if (leader && p.replica.leaderId() == config.nodeId()) {
            // One line per election won (a restart's recovery is read off these): Kafka logs leader changes too.
            LOG.log(System.Logger.Level.INFO, "node " + config.nodeId() + " leads " + p.topic + "-" + p.index + " in term "
                + term);
        }
        long groupId = p.groupId();
        int[] entry = {p.replica.leaderId(), (int) term};
        for (int i = 0; i < group.size(); i++) {
            int id = i;
            if (i == here.id()) {
                states[i].announceLeader(groupId, entry);
            } else {
                here.submitTo(i, x -> {
                    states[id].announceLeader(groupId, entry);
                    return null;
                });
            }
        }
        replicaStates.leadershipChanged(states[here.id()], p, leader, term);
        if (p.topic.equals(GroupCoordinator.OFFSETS_TOPIC)) {
            states[here.id()].groups.leadershipChanged(p.index, leader);
        } else if (p.topic.equals(TxnCoordinator.TOPIC)) {
            states[here.id()].txn.leadershipChanged(p, leader, term);
        }
    }

    /**
     * Loads the TLS material when a listener speaks TLS, and the bootstrap SASL user's credentials; both read files
     * or derive keys, so they happen here, before the shards serve anyone.
     */
    private void startSecurity() throws Exception {
        SecuritySettings sec = config.security();
        if (config.listeners().stream().anyMatch(l -> l.protocol().tls())) {
            tls = TlsContexts.load(sec.tls());
        }
        if (sec.rpcTls() != null) {
            rpcTls = TlsContexts.load(sec.rpcTls().tls());
        }
        SaslSettings sasl = sec.sasl();
        if (sasl.enabledMechanisms().contains(dev.isthmus.gateway.security.SaslServerExchange.OAUTHBEARER)) {
            // An https: key set's certificate is checked against the listeners' trust store when one is set.
            oauthBearer = dev.isthmus.gateway.security.OAuthBearerValidator.load(sasl.oauthBearer(),
                sasl.oauthBearer().jwksUrl() != null ? TlsContexts.trustContext(sec.tls()) : null);
        }
        if (sasl.adminUser() != null) {
            installCredentials(CredentialStore.ofPasswords(Map.of(sasl.adminUser(), sasl.adminPassword()),
                sasl.adminIterations()));
        }
    }

    /**
     * Any non-shard thread: installs {@code store} as the bootstrap credentials (under the controller's) on every
     * shard; connections authenticating from then on look credentials up there.
     */
    public void installCredentials(CredentialStore store) throws Exception {
        bootstrapCredentials = store;
        for (int i = 0; i < group.size(); i++) {
            int id = i;
            group.call(i, s -> {
                credentials[id] = CredentialStore.layered(replicatedCredentials[id], bootstrapCredentials);
                return null;
            }).get(30, TimeUnit.SECONDS);
        }
    }

    /** An immutable store of the controller's SCRAM credentials, in the form the SASL server reads. */
    private static CredentialStore replicatedStore(java.util.SortedMap<dev.isthmus.gateway.cluster.UserScramCredential.Key,
        dev.isthmus.gateway.cluster.UserScramCredential> source) {
        if (source.isEmpty()) {
            return CredentialStore.EMPTY;
        }
        Map<String, Map<dev.isthmus.gateway.security.ScramMechanism, dev.isthmus.gateway.security.ScramCredential>> users =
            new java.util.HashMap<>();
        for (dev.isthmus.gateway.cluster.UserScramCredential c : source.values()) {
            dev.isthmus.gateway.security.ScramMechanism m = dev.isthmus.gateway.security.ScramMechanism.forId(
                c.mechanism());
            if (m != null) { // the controller stores known mechanisms only
                users.computeIfAbsent(c.name(), u -> new java.util.EnumMap<>(
                    dev.isthmus.gateway.security.ScramMechanism.class)).put(m, ScramApis.toScram(c));
            }
        }
        return CredentialStore.of(users);
    }

    /** Any thread: the controller state this node applied last (tests: what is stored). */
    ClusterState controllerState() {
        Controller c = controller;
        return c == null ? ClusterState.EMPTY : c.state();
    }

    /** Owner shard: the credentials SASL exchanges of shard {@code shard} look up. */
    CredentialStore credentials(int shard) {
        return credentials[shard];
    }

    /** The OAUTHBEARER token validator (null when OAUTHBEARER is not enabled); thread-safe. */
    dev.isthmus.gateway.security.OAuthBearerValidator oauthBearer() {
        return oauthBearer;
    }

    /**
     * The RPC transport's TLS (null: plaintext): engines from {@link #rpcTls} (server side with the configured client
     * auth, required by default; client side checking the dialed host when endpoint identification is on), handshake
     * tasks on the security workers.
     */
    private dev.isthmus.raft.net.TransportTls rpcTransportTls() {
        TlsContexts contexts = rpcTls;
        if (contexts == null) {
            return null;
        }
        boolean verifyHostname = config.security().rpcTls().verifyHostname();
        return new dev.isthmus.raft.net.TransportTls() {
            @Override
            public javax.net.ssl.SSLEngine serverEngine() {
                return contexts.newServerEngine();
            }

            @Override
            public javax.net.ssl.SSLEngine clientEngine(InetSocketAddress peer) {
                return contexts.newClientEngine(peer, verifyHostname);
            }

            @Override
            public java.util.concurrent.Executor tasks() {
                return securityWorkers;
            }
        };
    }

    /** The TLS material (null when no listener speaks TLS). */
    TlsContexts tls() {
        return tls;
    }

    /** Where CPU-heavy security work runs, off the shards. */
    java.util.concurrent.Executor securityWorkers() {
        return securityWorkers;
    }

    /** Binds every Kafka listener on every shard (SO_REUSEPORT: the kernel spreads each listener's connections). */
    private void listenAll() throws Exception {
        List<ListenerConfig> configured = config.listeners();
        List<ListenerConfig> bound = new ArrayList<>();
        for (int i = 0; i < group.size(); i++) {
            listeners[i] = new TcpListener[configured.size()];
        }
        for (int li = 0; li < configured.size(); li++) {
            int index = li;
            ListenerConfig lc = configured.get(li);
            int p = lc.port();
            for (int i = 0; i < group.size(); i++) {
                int id = i;
                int bindPort = p;
                ListenerConfig withPort = lc.withPort(bindPort);
                InetSocketAddress addr = group.call(i, s -> {
                    TcpListener l = s.engine().listen(new InetSocketAddress(lc.host(), bindPort), true, 1024,
                        (conn, res) -> {
                            if (conn == null) {
                                return;
                            }
                            Connection c = new Connection(this, states[id], conn, boundListener(index, withPort));
                            connections.get(id).add(c);
                            c.start();
                        });
                    listeners[id][index] = l;
                    return l.localAddress();
                }).get(30, TimeUnit.SECONDS);
                p = addr.getPort();
            }
            bound.add(lc.withPort(p));
        }
        this.boundListeners = List.copyOf(bound);
        this.port = bound.get(0).port();
    }

    /** The listener with its bound port (once every shard bound it; before, the configured one). */
    private ListenerConfig boundListener(int index, ListenerConfig fallback) {
        List<ListenerConfig> b = boundListeners;
        return index < b.size() ? b.get(index) : fallback;
    }

    /**
     * Any non-shard thread: the principal and listener of every open connection ("User:alice@SASL_SSL"), across the
     * shards (tests, diagnostics). Blocks.
     */
    List<String> connectionPrincipals() throws Exception {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < group.size(); i++) {
            int id = i;
            out.addAll(group.call(i, s -> {
                List<String> l = new ArrayList<>();
                for (Connection c : connections.get(id)) {
                    l.add(c.principal() + "@" + c.listenerName());
                }
                return l;
            }).get(30, TimeUnit.SECONDS));
        }
        return out;
    }

    /** The Kafka listeners with their bound ports. */
    public List<ListenerConfig> listeners() {
        return boundListeners;
    }

    /** The bound port of listener {@code name}; -1 when there is none of that name. */
    public int port(String name) {
        for (ListenerConfig l : boundListeners) {
            if (l.name().equals(name)) {
                return l.port();
            }
        }
        return -1;
    }

    public BrokerConfig config() {
        return config;
    }

    /** The first Kafka listener's port (the chosen one when configured as 0). */
    public int port() {
        return port;
    }

    /** The node-to-node RPC address. */
    public InetSocketAddress rpcAddress() {
        return raft.rpcAddress();
    }

    /** The broker's defaults of topic configs, with the largest batch it takes (see {@link BrokerConfig}). */
    TopicConfigs.Defaults topicDefaults() {
        return topicDefaults;
    }

    /** The metrics HTTP port, or 0 when metrics are off. */
    public int metricsPort() {
        MetricsServer m = metrics;
        return m == null ? 0 : m.port();
    }

    public String clusterId() {
        return clusterId;
    }

    public ShardGroup group() {
        return group;
    }

    NodeOperations nodeOperations() {
        return nodeOperations;
    }

    /** Whether a shutdown started handing this node's leaderships away. */
    boolean handingOffForShutdown() {
        return handingOffForShutdown;
    }

    Reassignments reassignments() {
        return reassignments;
    }

    Handlers handlers() {
        return handlers;
    }

    int shardCount() {
        return group.size();
    }

    /** The controller leader as clients should see it: the controller's leader, else this node. */
    /**
     * The partition balancer's status (any thread; {@code balancer status} of the admin CLI and the metrics), or null
     * before the controller started. Only the controller leader's is {@code active}.
     */
    dev.isthmus.gateway.cluster.PartitionBalancer.Status balancerStatus() {
        Controller c = controller;
        return c == null ? null : c.balancer().status();
    }

    int controllerId() {
        Controller c = controller;
        int leader = c == null ? -1 : c.leaderId();
        return leader >= 0 ? leader : config.nodeId();
    }

    /** The shard of this node hosting partition {@code index} of {@code t}, or -1 when this node holds no replica. */
    int shardOf(TopicTable.Topic t, int index) {
        return t.partition(index).shardOn(config.nodeId());
    }

    /** The receive memory of shard {@code shard} (that shard's thread only; its gauges: any thread). */
    ReceiveMemory receiveMemory(int shard) {
        return receiveMemory[shard];
    }

    void connectionClosed(ShardState st, Connection c) {
        connections.get(st.shard.id()).remove(c);
    }

    /** A controller operation's refusal: a Kafka error code and one sentence. */
    record Failure(short code, String message) {
    }

    /** The default replication factor: 1 on a single node, else up to 3 (as many brokers as are registered). */
    int defaultReplicationFactor(ShardState st) {
        if (!config.clusterMode()) {
            return 1;
        }
        ClusterState cs = st.cluster;
        int brokers = cs == null ? 1 : cs.brokers().size();
        return Math.max(1, Math.min(3, brokers));
    }

    /**
     * Runs {@code command} through the controller (from the caller's shard via shard 0) and completes on the
     * calling shard, once every shard of this node installed the change, with {@code result} computed on
     * shard 0 from the new table, or a {@link Failure}.
     */
    Promise<Object> controllerCall(Shard caller, ControllerCommand command,
                                           java.util.function.Function<TopicTable, Object> result) {
        Controller c = controller;
        if (c == null) {
            return Promise.completed(new Failure(ErrorCodes.NOT_CONTROLLER, "the controller is not running"));
        }
        return caller.submitToAsync(0, s -> c.submitHere(command, CONTROLLER_TIMEOUT_MS).flatMap(res -> {
            if (!res.isOk()) {
                return Promise.completed((Object) new Failure((short) res.errorCode(), res.message()));
            }
            return awaitInstalled(res.appliedOffset()).map(x -> result.apply(states[0].topics));
        }));
    }

    /**
     * A Failure when {@code added} more partition replicas would pass {@link BrokerConfig#maxPartitionsPerShard()}
     * x shards x brokers in the cluster (as Redpanda's {@code topic_partitions_per_shard}); else null. Each replica
     * is a Raft group, a log with its open files and, once written, a 32 MiB step of disk: without this limit a
     * client asking for ten thousand partitions ran the broker out of file descriptors.
     */
    private Failure overPartitionLimit(ShardState st, long added) {
        long hosted = 0;
        for (TopicTable.Topic t : st.topics.topics()) {
            hosted += (long) t.partitions() * t.replicationFactor();
        }
        int brokers = config.clusterMode() && st.cluster != null ? Math.max(1, st.cluster.brokers().size()) : 1;
        int perShard = config.maxPartitionsPerShard();
        long limit = (long) perShard * shardCount() * brokers;
        if (hosted + added <= limit) {
            return null;
        }
        return new Failure(ErrorCodes.INVALID_PARTITIONS, "the cluster hosts " + hosted + " partition replicas and "
            + "can host at most " + limit + " (" + perShard + " per shard x " + shardCount()
            + " shards x " + brokers + " brokers); " + added + " more were asked for");
    }

    /** Creates a topic through the controller; completes with the {@link TopicTable.Topic} or a {@link Failure}. */
    Promise<Object> createTopic(Shard caller, String name, int partitions) {
        return createTopic(caller, name, partitions, -1, Map.of(), List.of());
    }

    /**
     * Creates a topic ({@code replicationFactor} -1: the default; {@code assignment} empty: placed by the
     * controller) and waits, up to a few seconds, until its partitions hosted here have leaders, so the client
     * that created it can produce at once.
     */
    Promise<Object> createTopic(Shard caller, String name, int partitions, int replicationFactor,
                                Map<String, String> configs, List<int[]> assignment) {
        return createTopic(caller, name, partitions, replicationFactor, configs, assignment, false);
    }

    /**
     * Creates a topic, or with {@code validateOnly} checks that it could be created without creating it. Both run
     * the same checks: this node's (the name, the partitions-per-shard limit) and then the controller's own
     * ({@link ClusterState#apply}, which a real create runs through Raft and a validation runs on this shard's
     * copy of the controller state, keeping the result). Completes with the {@link TopicTable.Topic} (for a
     * validation: as it would be created, with a zero id) or a {@link Failure}.
     */
    Promise<Object> createTopic(Shard caller, String name, int partitions, int replicationFactor,
                                Map<String, String> configs, List<int[]> assignment, boolean validateOnly) {
        ShardState st = states[caller.id()];
        String bad = TopicTable.invalidName(name);
        if (bad != null) {
            return Promise.completed(new Failure(ErrorCodes.INVALID_TOPIC_EXCEPTION, bad));
        }
        int rf = replicationFactor > 0 ? replicationFactor : defaultReplicationFactor(st);
        Failure full = overPartitionLimit(st, assignment.isEmpty() ? (long) Math.max(0, partitions) * rf
            : (long) assignment.size() * assignment.get(0).length);
        if (full != null) {
            return Promise.completed(full);
        }
        ControllerCommand.CreateTopic cmd = new ControllerCommand.CreateTopic(name, java.util.UUID.randomUUID(),
            assignment.isEmpty() ? partitions : assignment.size(), assignment.isEmpty() ? rf : assignment.get(0).length,
            new java.util.TreeMap<>(configs), assignment);
        if (validateOnly) {
            return Promise.completed(validateHere(st, cmd));
        }
        return controllerCall(caller, cmd, table -> table.get(name)).flatMap(o -> {
            if (!(o instanceof TopicTable.Topic t)) {
                return Promise.completed(o);
            }
            return awaitLeaders(caller, t, System.nanoTime() + 5_000_000_000L).map(x -> o);
        });
    }

    /**
     * The controller's verdict on {@code cmd} against this shard's copy of the controller state: the state
     * machine's own transition, its result kept and the new state dropped. The copy may trail the controller by
     * the commands still on their way (as any broker's metadata cache does in Kafka).
     */
    private static Object validateHere(ShardState st, ControllerCommand.CreateTopic cmd) {
        ClusterState cs = st.cluster;
        if (cs == null) {
            return new Failure(ErrorCodes.NOT_CONTROLLER, "this node has no controller state yet");
        }
        ClusterState.Applied applied = cs.apply(cmd, cs.appliedOffset());
        if (!applied.result().isOk()) {
            return new Failure((short) applied.result().errorCode(), applied.result().message());
        }
        dev.isthmus.gateway.cluster.TopicInfo t = applied.state().topic(cmd.name());
        return new TopicTable.Topic(t.name(), Uuid.ZERO, t.partitions().size(), t.configs(), t.partitions());
    }

    /** Completes (on {@code caller}) once every partition of {@code t} hosted on this node knows its leader, or at the deadline. */
    private Promise<Void> awaitLeaders(Shard caller, TopicTable.Topic t, long deadlineNs) {
        ShardState st = states[caller.id()];
        boolean all = true;
        for (int p = 0; p < t.partitions() && all; p++) {
            PartitionInfo info = t.partition(p);
            if (info.hasReplicaOn(config.nodeId())) {
                int[] l = st.leaders.get(info.groupId());
                all = l != null && l[0] >= 0;
            }
        }
        if (all || System.nanoTime() >= deadlineNs) {
            return Promise.completed(null);
        }
        return caller.sleep(5_000_000L).flatMap(x -> awaitLeaders(caller, t, deadlineNs));
    }

    /** Any thread: creates a topic and waits (tests and tools). */
    TopicTable.Topic createTopicBlocking(String name, int partitions) throws Exception {
        Object o = group.callAsync(0, s -> createTopic(s, name, partitions)).get(60, TimeUnit.SECONDS);
        if (o instanceof Failure f) {
            throw new IllegalStateException(f.message());
        }
        return (TopicTable.Topic) o;
    }

    /** Deletes a topic (by name, or by id when name is null); completes with the deleted topic or a Failure. */
    Promise<Object> deleteTopic(Shard caller, String name, Uuid id) {
        TopicTable table = states[caller.id()].topics;
        TopicTable.Topic t = name != null ? table.get(name) : table.get(id);
        if (t == null) {
            return Promise.completed(new Failure(name != null ? ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION
                : ErrorCodes.UNKNOWN_TOPIC_ID, "topic " + (name != null ? name : id) + " does not exist"));
        }
        if (t.name().equals(GroupCoordinator.OFFSETS_TOPIC) || t.name().equals(TxnCoordinator.TOPIC)) {
            return Promise.completed(new Failure(ErrorCodes.INVALID_TOPIC_EXCEPTION, "the internal topic " + t.name()
                + " cannot be deleted"));
        }
        return controllerCall(caller, new ControllerCommand.DeleteTopic(t.name()), table2 -> t);
    }

    /** Grows a topic to {@code count} partitions; completes with the topic or a Failure. */
    Promise<Object> createPartitions(Shard caller, String name, int count, List<int[]> assignment, boolean validateOnly) {
        TopicTable.Topic t = states[caller.id()].topics.get(name);
        if (t == null) {
            return Promise.completed(new Failure(ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION, "topic " + name + " does not exist"));
        }
        if (count <= t.partitions()) {
            return Promise.completed(new Failure(ErrorCodes.INVALID_PARTITIONS, "topic " + name + " has "
                + t.partitions() + " partitions; the new count must be larger, got " + count));
        }
        if (count > ClusterState.MAX_PARTITIONS_PER_TOPIC) {
            return Promise.completed(new Failure(ErrorCodes.INVALID_PARTITIONS, "number of partitions must be at most "
                + ClusterState.MAX_PARTITIONS_PER_TOPIC));
        }
        Failure full = overPartitionLimit(states[caller.id()], (long) (count - t.partitions()) * t.replicationFactor());
        if (full != null) {
            return Promise.completed(full);
        }
        if (!assignment.isEmpty() && assignment.size() != count - t.partitions()) {
            return Promise.completed(new Failure(ErrorCodes.INVALID_REPLICA_ASSIGNMENT, "the assignment lists "
                + assignment.size() + " partitions for " + (count - t.partitions()) + " new ones"));
        }
        if (validateOnly) {
            return Promise.completed(t);
        }
        return controllerCall(caller, new ControllerCommand.CreatePartitions(name, count, assignment),
            table -> table.get(name)).flatMap(o -> o instanceof TopicTable.Topic grown
            ? awaitLeaders(caller, grown, System.nanoTime() + 5_000_000_000L).map(x -> o) : Promise.completed(o));
    }

    /**
     * Replaces a topic's config overrides: {@code edit} sees the current overrides and returns the new map (already
     * validated), the unchanged topic (validate-only) or a Failure; completes with the topic or a Failure.
     */
    Promise<Object> alterTopicConfigs(Shard caller, String name,
                                      java.util.function.Function<Map<String, String>, Object> edit) {
        TopicTable.Topic t = states[caller.id()].topics.get(name);
        if (t == null) {
            return Promise.completed(new Failure(ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION, "topic " + name + " does not exist"));
        }
        Object edited = edit.apply(t.configs());
        if (!(edited instanceof Map<?, ?> m)) {
            return Promise.completed(edited); // a Failure, or the unchanged topic for validate-only requests
        }
        Map<String, String> set = new java.util.TreeMap<>();
        Set<String> delete = new java.util.TreeSet<>();
        for (Map.Entry<?, ?> e : m.entrySet()) {
            if (!e.getValue().equals(t.configs().get((String) e.getKey()))) {
                set.put((String) e.getKey(), (String) e.getValue());
            }
        }
        for (String k : t.configs().keySet()) {
            if (!m.containsKey(k)) {
                delete.add(k);
            }
        }
        if (set.isEmpty() && delete.isEmpty()) {
            return Promise.completed(t);
        }
        return controllerCall(caller, ControllerCommand.AlterConfigs.of(name, set, delete), table -> table.get(name));
    }

    /** Releases zero-copy record slices a response still holds (after encoding or on an abandoned request). */
    static void releaseSlices(ProtocolMessage body) {
        if (body instanceof FetchResponseData f && f.responses != null) {
            for (FetchResponseData.FetchableTopicResponse t : f.responses) {
                for (FetchResponseData.PartitionData p : t.partitions) {
                    if (p.records instanceof IoBufSlice s) {
                        s.close();
                        p.records = null;
                    }
                }
            }
        }
    }

    /** Any thread: the arena counters of a shard. */
    dev.isthmus.arena.ArenaStats arenaStats(int shard) {
        return arenas.arena(shard).stats();
    }

    ShardState state(int shard) {
        return states[shard];
    }

    /** Any thread: the Raft host (tests, metrics). */
    /** The controller once Raft started, else null. */
    Controller controller() {
        return controller;
    }

    RaftServer raft() {
        return raft;
    }

    /**
     * Stops the node as SIGTERM does: in a cluster, first hands the leadership of every partition and of the
     * controller it leads to in-sync followers ({@link #handOffLeadership}, at most
     * {@link BrokerConfig#shutdownHandoffMs()}), so clients move to the new leaders without waiting for an election
     * timeout (Kafka's controlled shutdown); then {@link #close()}. Any non-shard thread.
     */
    public void shutdown() {
        if (config.clusterMode() && config.shutdownHandoffMs() > 0 && raft != null && !closing) {
            try {
                handOffLeadership(config.shutdownHandoffMs());
            } catch (Exception e) {
                LOG.log(System.Logger.Level.WARNING, "node " + config.nodeId() + " could not hand its leaderships"
                    + " over before stopping: " + e);
            }
        }
        close();
    }

    /** What {@link #handOffLeadership} did: groups led at its start, groups still led at its end, its duration. */
    record HandOff(int led, int stillLed, long millis) {
    }

    /**
     * Hands the leadership of every Raft group this node leads (partitions and the controller) to in-sync followers,
     * for at most {@code timeoutMs}, and keeps this node from leading again (its members stop campaigning, and the
     * other nodes stop handing leadership back to it, {@link ReplicaStates#announceDraining}). Each group goes to the
     * preferred replica when it is in sync, else to the follower holding the most of the log, by a Raft leadership
     * transfer (thesis §3.10: proposals pause until the target holds the whole log, then it campaigns at once);
     * a transfer that does not finish is retried. Groups whose followers are all down or behind stay led here. The
     * node keeps serving meanwhile (requests for what it no longer leads answer NOT_LEADER_OR_FOLLOWER). Blocks:
     * any non-shard thread. Maintenance mode does the same per round on each shard ({@link NodeOperations}).
     */
    HandOff handOffLeadership(long timeoutMs) throws Exception {
        long start = System.nanoTime();
        long deadline = start + timeoutMs * 1_000_000L;
        handingOffForShutdown = true;
        for (int i = 0; i < group.size(); i++) {
            int id = i;
            group.call(i, s -> {
                raft.shard(id).node().setMayLead(false);
                return null;
            }).get(30, TimeUnit.SECONDS);
        }
        long ackWaitNs = Math.min(1_000_000_000L, Math.max(0, deadline - System.nanoTime()));
        group.callAsync(0, s -> replicaStates.announceDraining(ackWaitNs)).get(ackWaitNs / 1_000_000 + 5_000,
            TimeUnit.MILLISECONDS);
        int led = -1;
        int leading;
        List<Set<Long>> handed = new ArrayList<>(); // per shard, touched on that shard only
        for (int i = 0; i < group.size(); i++) {
            handed.add(new HashSet<>());
        }
        while (true) {
            int[] counts = new int[2]; // {groups led here with other voters, groups still to wait for}
            for (int i = 0; i < group.size(); i++) {
                int id = i;
                int[] c = group.call(i, s -> handOffOnShard(id, handed.get(id))).get(30, TimeUnit.SECONDS);
                counts[0] += c[0];
                counts[1] += c[1];
            }
            leading = counts[0];
            if (led < 0) {
                led = leading;
            }
            if (counts[1] == 0 || System.nanoTime() >= deadline) {
                break;
            }
            Thread.sleep(5);
        }
        long ms = (System.nanoTime() - start) / 1_000_000;
        LOG.log(System.Logger.Level.INFO, "node " + config.nodeId() + " handed the leadership of " + (led - leading)
            + " of " + led + " Raft group(s) (partitions and the controller) to in-sync followers in " + ms + " ms"
            + (leading > 0 ? "; " + leading + " stay led here (no live in-sync follower could take them)" : ""));
        return new HandOff(led, leading, ms);
    }

    /**
     * On shard {@code id}: starts or continues the hand-off of every group it leads; returns {groups led, groups to
     * wait for}: those with a follower to take over, and those handed over whose new leader this replica does not
     * know yet (until it does, Metadata from this node would name no leader).
     */
    private int[] handOffOnShard(int id, Set<Long> handed) {
        int[] c = new int[2];
        ShardState st = states[id];
        for (dev.isthmus.raft.server.ReplicatedLog rl : raft.shard(id).groups()) {
            if (!rl.isLeader()) {
                if (handed.contains(rl.groupId()) && rl.leaderId() < 0) {
                    c[1]++;
                }
                continue;
            }
            if (rl.configuration().allVoters().length < 2) {
                continue;
            }
            c[0]++;
            handed.add(rl.groupId());
            if (rl.handOffLeadership(n -> st.alive(n) && !raft.isLeadershipExcluded(n)) >= 0) {
                c[1]++;
            }
        }
        return c;
    }

    /**
     * Stops listening, closes connections, stops serving partitions, stops Raft (closing every log cleanly, so
     * the next start skips recovery), then the shards.
     */
    @Override
    public void close() {
        closing = true;
        // An interrupt (a test's timeout, say) must not cut the orderly close short: each of its waits is bounded, and
        // skipping them would free shard memory and stop Raft under shards still running. It is kept for the caller.
        boolean interrupted = Thread.interrupted();
        try {
            closeInOrder();
        } finally {
            if (interrupted || Thread.interrupted()) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private void closeInOrder() {
        MetricsServer m = metrics;
        if (m != null) {
            m.close();
        }
        try {
            // First every shard stops accepting and drops its connections, so no request from any shard can
            // reach a partition once the logs start closing; then the partitions stop and Raft closes the logs.
            for (int i = 0; i < group.size(); i++) {
                int id = i;
                group.call(i, s -> {
                    if (listeners[id] != null) {
                        for (TcpListener l : listeners[id]) {
                            if (l != null) {
                                l.close();
                            }
                        }
                    }
                    for (Connection c : new ArrayList<>(connections.get(id))) {
                        c.close();
                    }
                    if (states[id] != null) {
                        if (states[id].txn != null) {
                            states[id].txn.close();
                        }
                        states[id].stopServing();
                    }
                    return null;
                }).get(30, TimeUnit.SECONDS);
            }
            Controller c = controller;
            if (c != null) {
                try {
                    group.call(RaftServer.CONTROLLER_SHARD, s -> {
                        c.close();
                        return null;
                    }).get(30, TimeUnit.SECONDS);
                } catch (Exception e) {
                    LOG.log(System.Logger.Level.WARNING, "stopping the controller failed: " + e);
                }
            }
            if (raft != null) {
                raft.close();
            }
            for (int i = 0; i < group.size(); i++) {
                int id = i;
                group.call(i, s -> {
                    if (states[id] != null) {
                        states[id].release();
                    }
                    return null;
                }).get(30, TimeUnit.SECONDS);
            }
        } catch (Exception e) {
            LOG.log(System.Logger.Level.WARNING, "broker shutdown: " + e.getMessage());
        } finally {
            Thread p = populating;
            if (p != null) {
                try {
                    p.join(10_000); // `closing` is set: it stops after its current 64 MiB step
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            arenas.close();
            group.close();
            background.shutdown();
            securityWorkers.shutdownNow();
            if (tls != null) {
                tls.close();
            }
            if (rpcTls != null) {
                rpcTls.close();
            }
        }
    }
}
