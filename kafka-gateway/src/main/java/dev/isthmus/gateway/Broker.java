package dev.isthmus.gateway;

import dev.isthmus.arena.ArenaConfig;
import dev.isthmus.arena.ShardArenas;
import dev.isthmus.gateway.protocol.IoBufSlice;
import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.Uuid;
import dev.isthmus.gateway.protocol.message.FetchResponseData;
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
 * A single-node Isthmus broker: a {@link ShardGroup}, one arena per shard, a Kafka listener on every shard
 * (SO_REUSEPORT: the kernel spreads connections), partitions placed on shards by hash, and shard 0 acting as
 * the controller of the topic table. Requests are handled on the connection's shard; work for partitions of
 * other shards travels as cross-shard calls (techniques 7 and 8).
 */
public final class Broker implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(Broker.class.getName());

    private final BrokerConfig config;
    private final ShardGroup group;
    private final ShardArenas arenas;
    private final ShardState[] states;
    private final List<Set<Connection>> connections = new ArrayList<>();
    private final TcpListener[] listeners;
    private final Handlers handlers;
    private final String clusterId;
    private final Path topicsFile;
    /** Slow file work off the shard threads: removing the directories of deleted partitions. */
    private final java.util.concurrent.ExecutorService background = java.util.concurrent.Executors
        .newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "isthmus-background");
            t.setDaemon(true);
            return t;
        });
    private volatile int port;
    private volatile MetricsServer metrics;
    private long nextProducerId;

    private Broker(BrokerConfig config, ShardGroup group, ShardArenas arenas, String clusterId, Path topicsFile) {
        this.config = config;
        this.group = group;
        this.arenas = arenas;
        this.states = new ShardState[group.size()];
        this.listeners = new TcpListener[group.size()];
        this.clusterId = clusterId;
        this.topicsFile = topicsFile;
        this.handlers = new Handlers(this);
        for (int i = 0; i < group.size(); i++) {
            connections.add(new HashSet<>());
        }
        this.nextProducerId = (System.currentTimeMillis() << 12) & Long.MAX_VALUE;
    }

    /** Starts the broker and returns once every shard listens. */
    public static Broker start(BrokerConfig config) throws IOException {
        if (!config.seeds().isEmpty() || config.rpcHost() != null) {
            throw new IllegalArgumentException("cluster mode (--seeds, --rpc-listen) is not available in this build:"
                + " partitions are replicated by Raft on one node only; start without --seeds and --rpc-listen");
        }
        Path data = config.dataDir().toAbsolutePath();
        Files.createDirectories(data.resolve("logs"));
        ShardState.removeDeletedDirectories(data.resolve("logs"));
        Path idFile = data.resolve("cluster.id");
        if (!Files.exists(idFile)) {
            Files.writeString(idFile, Uuid.random().toString(), StandardCharsets.UTF_8);
        }
        String clusterId = Files.readString(idFile, StandardCharsets.UTF_8).trim();
        Path topicsFile = data.resolve("topics");
        TopicTable topics = TopicTable.load(topicsFile);
        ShardGroup group = ShardGroup.start(ShardGroupConfig.of(config.shards()).withPin(config.pin())
            .withBackend(config.backend()), null);
        Broker b;
        try {
            ShardArenas arenas = ShardArenas.install(group, id -> ArenaConfig.of(config.memoryPerShard()));
            b = new Broker(config, group, arenas, clusterId, topicsFile);
            for (int i = 0; i < group.size(); i++) {
                int id = i;
                group.call(i, s -> {
                    ShardState st = new ShardState(s, arenas.current(), data.resolve("logs"));
                    st.topics = topics;
                    st.groups = new GroupCoordinator(b, st);
                    b.states[id] = st;
                    return null;
                }).get(30, TimeUnit.SECONDS);
            }
            b.listenAll();
            if (config.metricsHost() != null) {
                b.metrics = MetricsServer.start(b, config.metricsHost(), config.metricsPort());
            }
        } catch (Exception e) {
            group.close();
            throw new IOException("broker failed to start: " + e.getMessage(), e);
        }
        LOG.log(System.Logger.Level.INFO, "Isthmus node " + config.nodeId() + " listening on " + config.host() + ":"
            + b.port + " with " + group.size() + " shard(s), " + (config.memoryBytes() >> 20) + " MiB, data in " + data);
        return b;
    }

    private void listenAll() throws Exception {
        int p = config.port();
        for (int i = 0; i < group.size(); i++) {
            int id = i;
            int bindPort = p;
            InetSocketAddress bound = group.call(i, s -> {
                TcpListener l = s.engine().listen(new InetSocketAddress(config.host(), bindPort), true, 1024,
                    (conn, res) -> {
                        if (conn == null) {
                            return;
                        }
                        Connection c = new Connection(this, states[id], conn);
                        connections.get(id).add(c);
                        c.start();
                    });
                listeners[id] = l;
                return l.localAddress();
            }).get(30, TimeUnit.SECONDS);
            p = bound.getPort();
        }
        this.port = p;
    }

    public BrokerConfig config() {
        return config;
    }

    /** The Kafka port (the chosen one when configured as 0). */
    public int port() {
        return port;
    }

    /** The largest max.message.bytes a topic may set: what the shards' read windows were sized for. */
    int maxBatchBytesLimit() {
        return dev.isthmus.log.LogConfig.defaults().maxBatchBytes();
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

    Handlers handlers() {
        return handlers;
    }

    int shardCount() {
        return group.size();
    }

    /** The shard that owns a partition. */
    int shardOf(Uuid topicId, int partition) {
        return Math.floorMod((int) (topicId.msb() ^ topicId.lsb()) * 31 + partition, group.size());
    }

    void connectionClosed(ShardState st, Connection c) {
        connections.get(st.shard.id()).remove(c);
    }

    /** Shard 0 (the controller): a new producer id. */
    long allocateProducerId() {
        return nextProducerId++;
    }

    /** A controller operation's refusal: a Kafka error code and one sentence. */
    record Failure(short code, String message) {
    }

    /** A controller operation's accepted change: the next topic table and what to answer. */
    record Change(TopicTable next, Object result) {
    }

    /**
     * Runs a change of the topic table on the controller (shard 0): {@code fn} sees the current table and
     * returns a {@link Change} or a {@link Failure}; a change is persisted, installed on shard 0 at once (so a
     * concurrent operation sees it) and then on every shard — closing and removing the partitions of deleted
     * topics, applying new topic configs to open logs — and the promise completes on the calling shard with
     * the change's result or the failure.
     */
    Promise<Object> updateTopics(Shard caller, java.util.function.Function<TopicTable, Object> fn) {
        return caller.submitToAsync(0, s -> {
            ShardState st = states[0];
            Object outcome = fn.apply(st.topics);
            if (!(outcome instanceof Change change)) {
                return Promise.completed(outcome);
            }
            TopicTable previous = st.topics;
            try {
                change.next().save(topicsFile);
            } catch (IOException e) {
                LOG.log(System.Logger.Level.ERROR, "cannot persist the topic table", e);
                return Promise.completed((Object) new Failure(ErrorCodes.KAFKA_STORAGE_ERROR,
                    "cannot persist the topic table: " + e.getMessage()));
            }
            st.topics = change.next(); // at once on the controller, so a concurrent change sees it
            List<Promise<Void>> installs = new ArrayList<>();
            for (int i = 0; i < group.size(); i++) {
                int id = i;
                installs.add(s.submitToAsync(i, x -> install(states[id], previous, change.next())));
            }
            return Promise.whenAll(installs).map(ignored -> change.result());
        });
    }

    /** On {@code st}'s shard: adopts {@code next}; completes when deleted partitions are closed and moved away. */
    private Promise<Void> install(ShardState st, TopicTable previous, TopicTable next) {
        if (st.topics.version() < next.version()) {
            st.topics = next;
        }
        List<Promise<Void>> drops = new ArrayList<>();
        for (TopicTable.Topic old : previous.topics()) {
            TopicTable.Topic now = next.get(old.name());
            if (now == null || !now.id().equals(old.id())) {
                for (int p = 0; p < old.partitions(); p++) {
                    if (shardOf(old.id(), p) == st.shard.id()) {
                        drops.add(st.dropPartition(old.name(), p, background));
                    }
                }
                st.groups.topicDeleted(old.name());
            } else if (!now.configs().equals(old.configs())) {
                st.applyConfigs(now);
            }
        }
        return Promise.whenAll(drops).map(x -> null);
    }

    /** Creates a topic through the controller; completes with the {@link TopicTable.Topic} or a {@link Failure}. */
    Promise<Object> createTopic(Shard caller, String name, int partitions) {
        return createTopic(caller, name, partitions, Map.of());
    }

    Promise<Object> createTopic(Shard caller, String name, int partitions, Map<String, String> configs) {
        return updateTopics(caller, table -> {
            String bad = TopicTable.invalidName(name);
            if (bad != null) {
                return new Failure(ErrorCodes.INVALID_TOPIC_EXCEPTION, bad);
            }
            if (partitions < 1 || partitions > 100_000) {
                return new Failure(ErrorCodes.INVALID_PARTITIONS, "number of partitions must be in [1, 100000], got "
                    + partitions);
            }
            if (table.get(name) != null) {
                return new Failure(ErrorCodes.TOPIC_ALREADY_EXISTS, "Topic '" + name + "' already exists.");
            }
            TopicTable.Topic t = new TopicTable.Topic(name, Uuid.random(), partitions, configs);
            return new Change(table.with(t), t);
        });
    }

    /** Any thread: creates a topic and waits (tests and tools). */
    TopicTable.Topic createTopicBlocking(String name, int partitions) throws Exception {
        Object o = group.callAsync(0, s -> createTopic(s, name, partitions)).get(30, TimeUnit.SECONDS);
        if (o instanceof Failure f) {
            throw new IllegalStateException(f.message());
        }
        return (TopicTable.Topic) o;
    }

    /** Deletes a topic (by name, or by id when name is null); completes with the deleted topic or a Failure. */
    Promise<Object> deleteTopic(Shard caller, String name, Uuid id) {
        return updateTopics(caller, table -> {
            TopicTable.Topic t = name != null ? table.get(name) : table.get(id);
            if (t == null) {
                return new Failure(name != null ? ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION : ErrorCodes.UNKNOWN_TOPIC_ID,
                    "topic " + (name != null ? name : id) + " does not exist");
            }
            if (t.name().equals(GroupCoordinator.OFFSETS_TOPIC)) {
                return new Failure(ErrorCodes.INVALID_TOPIC_EXCEPTION, "the internal topic " + t.name()
                    + " cannot be deleted");
            }
            return new Change(table.without(t.name()), t);
        });
    }

    /** Grows a topic to {@code count} partitions; completes with the topic or a Failure. */
    Promise<Object> createPartitions(Shard caller, String name, int count, boolean validateOnly) {
        return updateTopics(caller, table -> {
            TopicTable.Topic t = table.get(name);
            if (t == null) {
                return new Failure(ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION, "topic " + name + " does not exist");
            }
            if (count <= t.partitions()) {
                return new Failure(ErrorCodes.INVALID_PARTITIONS, "topic " + name + " has " + t.partitions()
                    + " partitions; the new count must be larger, got " + count);
            }
            if (count > 100_000) {
                return new Failure(ErrorCodes.INVALID_PARTITIONS, "number of partitions must be at most 100000");
            }
            if (validateOnly) {
                return t;
            }
            TopicTable.Topic grown = t.withPartitions(count);
            return new Change(table.with(grown), grown);
        });
    }

    /** Replaces a topic's config overrides (already validated); completes with the topic or a Failure. */
    Promise<Object> alterTopicConfigs(Shard caller, String name,
                                      java.util.function.Function<Map<String, String>, Object> edit) {
        return updateTopics(caller, table -> {
            TopicTable.Topic t = table.get(name);
            if (t == null) {
                return new Failure(ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION, "topic " + name + " does not exist");
            }
            Object edited = edit.apply(t.configs());
            if (!(edited instanceof Map<?, ?> m)) {
                return edited; // a Failure, or the unchanged topic for validate-only requests
            }
            @SuppressWarnings("unchecked")
            TopicTable.Topic next = t.withConfigs((Map<String, String>) m);
            return new Change(table.with(next), next);
        });
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

    /** Stops listening, closes connections and logs (cleanly: the next start skips recovery), stops the shards. */
    @Override
    public void close() {
        MetricsServer m = metrics;
        if (m != null) {
            m.close();
        }
        try {
            // First every shard stops accepting and drops its connections, so no request from any shard can
            // reach a partition once the shards start closing their logs; then the logs close.
            for (int i = 0; i < group.size(); i++) {
                int id = i;
                group.call(i, s -> {
                    if (listeners[id] != null) {
                        listeners[id].close();
                    }
                    for (Connection c : new ArrayList<>(connections.get(id))) {
                        c.close();
                    }
                    return null;
                }).get(30, TimeUnit.SECONDS);
            }
            for (int i = 0; i < group.size(); i++) {
                int id = i;
                group.callAsync(i, s -> {
                    Promise<Void> done = new Promise<>();
                    if (states[id] != null) {
                        states[id].close(() -> done.complete(null));
                    } else {
                        done.complete(null);
                    }
                    return done;
                }).get(30, TimeUnit.SECONDS);
            }
        } catch (Exception e) {
            LOG.log(System.Logger.Level.WARNING, "broker shutdown: " + e.getMessage());
        } finally {
            arenas.close();
            group.close();
            background.shutdown();
        }
    }
}
