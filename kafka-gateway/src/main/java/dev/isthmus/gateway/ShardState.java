package dev.isthmus.gateway;

import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.log.ChunkPool;
import dev.isthmus.log.DiskStats;
import dev.isthmus.log.LogConfig;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.StateMachine;
import dev.isthmus.gateway.cluster.PartitionInfo;
import dev.isthmus.raft.server.RaftShard;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.Shard;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What one shard owns in the broker: its arena, the write-behind and read-window pools its partition logs
 * share (carved from the arena's WRITE_BEHIND and READ_AHEAD budgets), the partition replicas placed on it
 * (each a Raft group hosted by this shard's {@link RaftShard}), its copy of the topic table, and its copy of the
 * leader table (who leads every partition, and in which epoch, as the hosting shards announced it). Owner-shard
 * only.
 */
final class ShardState {
    static final int WRITE_CHUNK_BYTES = 256 * 1024;
    static final String METADATA_FILE = "partition.metadata";
    final Shard shard;
    final MemoryArena arena;
    final int nodeId;
    final Path logsDir;
    final ChunkPool writePool;
    final ChunkPool readPool;
    final DiskStats diskStats = new DiskStats();
    /** Batches ready for the wire (appended and read), bounded by the arena's BATCH_CACHE budget. */
    final dev.isthmus.log.BatchCache batchCache;
    final Map<String, Partition> partitions = new HashMap<>();
    final Map<String, Promise<Partition>> opening = new HashMap<>();
    /**
     * Partitions whose directory a drop is still moving away (their group stopping first). A partition of the same
     * name opened meanwhile (a topic deleted and created again) waits for it: else it would open the old log's files
     * and then lose its directory under it when the move lands (ProtocolFuzzTest seed 27670401467251).
     */
    private final Map<String, Promise<Void>> dropping = new HashMap<>();
    /** Replica opens waiting for their task ({@link #openLater}), in install order. */
    private final java.util.ArrayDeque<Runnable> toOpen = new java.util.ArrayDeque<>();
    /** Whether {@link #openNext} is queued on the shard. */
    private boolean openPumpQueued;
    /** Opens run by {@link #openNext} since the start (tests read it to see other tasks run between opens). */
    long opensStarted;
    /**
     * Sizes the read windows: each holds a batch of Kafka's default max.message.bytes; a read of a larger batch
     * borrows batch-cache memory for it (the log engine's large reads).
     */
    final LogConfig logConfig = LogConfig.defaults().withMaxBatchBytes(TopicConfigs.KAFKA_DEFAULT_MAX_MESSAGE_BYTES);
    /** The broker's defaults of topic configs (its static configuration). */
    final TopicConfigs.Defaults topicDefaults;
    /** Validates produced batches for every partition of this shard (one at a time: scratch reused). */
    final dev.isthmus.log.BatchValidator validator = new dev.isthmus.log.BatchValidator();
    TopicTable topics = TopicTable.EMPTY;
    /** The controller state {@link #topics} came from (brokers for Metadata); null until the first arrives. */
    dev.isthmus.gateway.cluster.ClusterState cluster;
    /** The ACLs of {@link #cluster} as an immutable index, installed with it (allows everything when ACLs are off). */
    dev.isthmus.gateway.auth.Authorizer authorizer = dev.isthmus.gateway.auth.Authorizer.ALLOW_ALL;
    /** Leader and epoch of every partition group announced by the shards hosting them: {leaderId, epoch}. */
    final Map<Long, int[]> leaders = new HashMap<>();
    /** Every partition group's leader, epoch and in-sync replicas as its leader published them ({@link ReplicaStates}). */
    final Map<Long, ReplicaStates.Entry> isr = new HashMap<>();
    // The partitions led here: what this shard published last for each, and what waits to be sent (ReplicaStates).
    final Map<Long, ReplicaStates.Entry> publishedIsr = new HashMap<>();
    final List<ReplicaStates.Entry> toPublish = new ArrayList<>();
    final List<Long> unpublished = new ArrayList<>();
    boolean publishScheduled;
    long publishVersion;
    /** In-sync sets of partitions led here that lost or gained members (Kafka's IsrShrinksPerSec, IsrExpandsPerSec). */
    long isrShrinks;
    long isrExpands;
    /** Request, latency and topic byte counters of the requests handled here. */
    final ShardMetrics metrics = new ShardMetrics();
    /** Groups whose offsets partition this shard owns; set right after construction by the broker. */
    GroupCoordinator groups;
    /** Transaction coordinators of the __transaction_state partitions this shard leads; set with {@link #groups}. */
    TxnCoordinator txn;
    /** KIP-890 verification of this shard's partitions' transactional batches; set with {@link #groups}. */
    TxnVerifier txnVerifier;
    /** Whether replicas hand leadership back to their preferred replica (--auto-leader-rebalance); set at start. */
    boolean autoLeaderRebalance = true;
    /** This shard's part of the Raft host; set once the broker started it. */
    RaftShard raft;
    /** Set when the broker closes this shard's logs: nothing may open a partition afterwards. */
    private boolean closed;
    private final long writeRegion;
    private final long readRegion;

    /** This shard's stock of zeroed segment files, or null (--zeroed-segments 0). */
    private dev.isthmus.log.ZeroedSegments zeroed;
    private long zerosRegion = -1;
    /** The zero buffer zeroed segment files are written from. */
    static final int ZEROS_BYTES = 256 * 1024;

    ShardState(Shard shard, MemoryArena arena, int nodeId, Path logsDir, long writeBytes,
               TopicConfigs.Defaults topicDefaults) {
        this.shard = shard;
        this.arena = arena;
        this.nodeId = nodeId;
        this.logsDir = logsDir;
        this.topicDefaults = topicDefaults;
        // The read windows' region is a whole power-of-two block of the buddy allocator (what a request is rounded
        // up to and charged for anyway) within the READ_AHEAD budget.
        long readBytes = readRegionBytes(arena.config().budget(Subsystem.READ_AHEAD), logConfig.readWindowBytes());
        writeRegion = arena.allocateOrThrow(writeBytes, Subsystem.WRITE_BEHIND);
        readRegion = arena.allocateOrThrow(readBytes, Subsystem.READ_AHEAD);
        writePool = new ChunkPool(arena.segment(writeRegion, writeBytes), WRITE_CHUNK_BYTES);
        readPool = new ChunkPool(arena.segment(readRegion, readBytes), logConfig.readWindowBytes());
        batchCache = new dev.isthmus.log.BatchCache(arena);
        scheduleSnapshots();
    }

    /**
     * The read windows' region: the block holding 8 windows, or, when that block is over the READ_AHEAD budget (the
     * smallest arenas: 8 windows of a 1 MiB max.message.bytes round up to 16 MiB, and 64 MiB gives READ_AHEAD 9.6
     * MiB), the largest block within the budget, which must still hold 2 windows.
     */
    static long readRegionBytes(long budgetBytes, int windowBytes) {
        long bytes = MemoryArena.roundedSize(8L * windowBytes);
        while (bytes > budgetBytes && bytes / 2 >= 2L * windowBytes) {
            bytes /= 2;
        }
        return bytes;
    }

    static final long SNAPSHOT_INTERVAL_NS = 30_000_000_000L;
    static final String DELETED_SUFFIX = ".deleted";

    private void scheduleSnapshots() {
        shard.schedule(SNAPSHOT_INTERVAL_NS, () -> {
            if (closed) {
                return;
            }
            for (Partition p : partitions.values()) {
                p.snapshotProducers(); // every replica: each one's committed state
            }
            scheduleSnapshots();
        });
    }

    /**
     * Whether node {@code node} is live for this node: itself, or a node the Raft transport holds a connection to
     * (it pings every 150 ms and drops a connection silent for 5 s; a stopped process drops it at once).
     */
    boolean alive(int node) {
        if (node == nodeId) {
            return true;
        }
        RaftShard r = raft;
        return r != null && r.transport() != null && r.transport().isConnected(node);
    }

    /**
     * A local replica's announcement {leaderId, epoch}: it replaces what this shard knows unless that is of a later
     * epoch (learned from the new leader's publication before the local replica caught up with the election).
     */
    void announceLeader(long groupId, int[] entry) {
        int[] cur = leaders.get(groupId);
        if (cur == null || entry[1] >= cur[1]) {
            leaders.put(groupId, entry);
        }
    }

    /** Adopts a published partition state if it is newer than the one known here (see {@link ReplicaStates}). */
    void learn(ReplicaStates.Entry e) {
        ReplicaStates.Entry cur = isr.get(e.groupId());
        if (e.newerThan(cur)) {
            isr.put(e.groupId(), e);
        }
        int[] l = leaders.get(e.groupId());
        if (l == null || e.epoch() > l[1] || (e.epoch() == l[1] && l[0] < 0)) {
            leaders.put(e.groupId(), new int[] {e.leaderId(), e.epoch()});
        }
    }

    /** The log settings of a topic: the broker's defaults with its overrides. */
    LogConfig logConfigFor(TopicTable.Topic t) {
        return TopicConfigs.logConfig(t.configs(), topicDefaults);
    }

    static String key(String topic, int partition) {
        return topic + "-" + partition;
    }

    /** The partition if this shard hosts a replica of it (waiting while it opens), else null. */
    Promise<Partition> partition(String topic, int index) {
        if (closed) {
            return Promise.completed(null);
        }
        String key = key(topic, index);
        Partition p = partitions.get(key);
        if (p != null) {
            return Promise.completed(p);
        }
        Promise<Partition> pending = opening.get(key);
        return pending != null ? pending : Promise.completed(null);
    }

    // ------------------------------------------------------------------ following the topic table

    /**
     * Adopts {@code next} (on this shard): replicas of deleted topics are stopped and their directories moved
     * away (removed on {@code background}); replicas newly placed on this shard are opened as Raft groups;
     * changed topic configs are applied to open logs. Completes when all of that is done.
     */
    Promise<Void> install(TopicTable previous, TopicTable next, Partition.Leadership leadership,
                          java.util.concurrent.Executor background) {
        if (topics.version() < next.version()) {
            topics = next;
        }
        List<Promise<Void>> drops = new ArrayList<>();
        for (TopicTable.Topic old : previous.topics()) {
            TopicTable.Topic now = next.get(old.name());
            boolean gone = now == null || !now.id().equals(old.id());
            for (int p = 0; p < old.partitions(); p++) {
                boolean stays = !gone && p < now.partitions() && now.partition(p).groupId() == old.partition(p).groupId()
                    && now.partition(p).shardOn(nodeId) == shard.id();
                if (!stays && old.partition(p).shardOn(nodeId) == shard.id()) {
                    drops.add(dropPartition(old.name(), p, background));
                }
                long g = old.partition(p).groupId();
                if (gone || p >= now.partitions() || now.partition(p).groupId() != g) {
                    isr.remove(g); // the group is gone from the cluster
                    leaders.remove(g);
                }
            }
            if (gone) {
                groups.topicDeleted(old.name());
            } else if (!now.configs().equals(old.configs())) {
                applyConfigs(now);
            }
        }
        return Promise.whenAll(drops).flatMap(x -> {
            List<Promise<Partition>> opens = new ArrayList<>();
            for (TopicTable.Topic t : next.topics()) {
                for (int p = 0; p < t.partitions(); p++) {
                    PartitionInfo info = t.partition(p);
                    String key = key(t.name(), p);
                    if (info.shardOn(nodeId) == shard.id() && !partitions.containsKey(key) && !opening.containsKey(key)) {
                        opens.add(openLater(t, p, leadership));
                    }
                }
            }
            return Promise.whenAllSettled(opens);
        });
    }

    /**
     * Opens the replica in a task of its own, one open per task with other tasks between: an open does file work
     * (the directory, the metadata file, the start of the log's recovery), and a broker's first state after a restart
     * opens every replica it holds. Opened all in one task, a node's 57 replicas held its shard for 7-8 s at load ~40
     * (bench/chaos soak seed 2231, after a kill of every node): no Raft heartbeat left the node, and the controller
     * leader it hosted lost its leadership three times in 22 s as the nodes came back one after another. Now the loop
     * runs the network, the timers and whatever else is queued between two opens. The replica is in {@link #opening}
     * from now on (a request for it waits; a drop or {@link #stopServing} completes it with null and it is skipped).
     */
    private Promise<Partition> openLater(TopicTable.Topic t, int index, Partition.Leadership leadership) {
        String key = key(t.name(), index);
        Promise<Partition> promise = new Promise<>();
        opening.put(key, promise);
        toOpen.add(() -> {
            if (opening.get(key) != promise) {
                return; // dropped (and completed) meanwhile
            }
            opening.remove(key);
            open(t, index, leadership).whenComplete((part, error) -> promise.completeWith(part, error));
        });
        if (!openPumpQueued) {
            openPumpQueued = true;
            shard.execute(this::openNext);
        }
        return promise;
    }

    /** One queued open, then this again behind the tasks queued meanwhile (see {@link #openLater}). */
    private void openNext() {
        Runnable next = toOpen.poll();
        if (next != null) {
            opensStarted++;
            next.run();
        }
        if (toOpen.isEmpty()) {
            openPumpQueued = false;
        } else {
            shard.execute(this::openNext);
        }
    }

    /** Applies a topic's changed configs to the logs and produce paths of its partitions open here. */
    void applyConfigs(TopicTable.Topic t) {
        LogConfig next = logConfigFor(t);
        TopicSettings settings = TopicConfigs.topicSettings(t.configs(), topicDefaults);
        for (Partition p : partitions.values()) {
            if (p.topic.equals(t.name())) {
                p.updateConfig(next, settings);
            }
        }
    }

    /** Opens this shard's replica of partition {@code index} of {@code t} as a Raft group. */
    private Promise<Partition> open(TopicTable.Topic t, int index, Partition.Leadership leadership) {
        String key = key(t.name(), index);
        PartitionInfo info = t.partition(index);
        Promise<Partition> promise = new Promise<>();
        if (closed) {
            promise.complete(null);
            return promise;
        }
        Promise<Void> drop = dropping.get(key);
        if (drop != null && !drop.isDone()) {
            // A drop of the same name is under way: open once its directory is gone. A drop of this new incarnation
            // while it waits takes the promise out of `opening` and completes it (see dropPartition).
            opening.put(key, promise);
            drop.whenComplete((x, f) -> {
                if (opening.get(key) != promise) {
                    return;
                }
                opening.remove(key);
                open(t, index, leadership).whenComplete((part, error) -> promise.completeWith(part, error));
            });
            return promise;
        }
        opening.put(key, promise);
        Path dir = logsDir.resolve(key);
        try {
            claimDirectory(dir, t, info);
        } catch (IOException e) {
            opening.remove(key);
            promise.fail(new IOException("cannot prepare the directory of " + key + ": " + e.getMessage(), e));
            return promise;
        }
        Partition[] holder = new Partition[1];
        LogConfig config = logConfigFor(t);
        dev.isthmus.raft.GroupListener listener = new dev.isthmus.raft.GroupListener() {
            @Override
            public void onCommit(long groupId, long commitOffset) {
                if (holder[0] != null) {
                    holder[0].onCommit(groupId, commitOffset);
                }
            }

            @Override
            public void onRoleChange(long groupId, dev.isthmus.raft.Role role, long term, int leaderId) {
                if (holder[0] != null) {
                    holder[0].onRoleChange(groupId, role, term, leaderId);
                }
            }

            @Override
            public void onConfigurationChange(long groupId, Configuration configuration) {
            }

            @Override
            public void onLogStartChange(long groupId, long logStartOffset) {
                if (holder[0] != null) {
                    holder[0].onLogStartChange(groupId, logStartOffset);
                }
            }
        };
        // A replica opened while its partition moves (a new one, or one of a move back) starts as an empty member that
        // waits for the leader to add it (Reassignments); a log that has a configuration ignores the bootstrap.
        Configuration bootstrap = info.reassigning() ? Configuration.EMPTY : Configuration.ofVoters(info.replicas());
        raft.addGroup(info.groupId(), dir, bootstrap, config, StateMachine.NONE, listener)
            .whenComplete((rl, error) -> {
                if (opening.get(key) != promise) {
                    // dropped while opening
                    if (rl != null) {
                        raft.removeGroup(info.groupId());
                    }
                    promise.complete(null);
                    return;
                }
                opening.remove(key);
                if (error != null) {
                    System.getLogger(ShardState.class.getName()).log(System.Logger.Level.ERROR,
                        "cannot open partition " + key + ": " + error.getMessage());
                    promise.fail(error);
                    return;
                }
                rl.setPreferredLeader(autoLeaderRebalance ? info.preferredLeader() : -1);
                rl.log().stats(diskStats);
                // The topic as installed now: its configs may have changed while the group opened.
                TopicTable.Topic current = topics.get(t.name()) != null ? topics.get(t.name()) : t;
                Partition part = new Partition(t.name(), index, rl, logConfigFor(current),
                    TopicConfigs.topicSettings(current.configs(), topicDefaults), validator, shard, arena, leadership);
                holder[0] = part;
                part.verifier(txnVerifier);
                partitions.put(key, part);
                if (rl.isLeader()) {
                    part.onRoleChange(info.groupId(), dev.isthmus.raft.Role.LEADER, rl.term(), rl.leaderId());
                }
                promise.complete(part);
            });
        return promise;
    }

    /**
     * Makes {@code dir} the directory of this partition's group: a directory left by an earlier topic of the
     * same name (deleted while this node was down) is moved away first, so the new group starts empty.
     */
    private void claimDirectory(Path dir, TopicTable.Topic t, PartitionInfo info) throws IOException {
        String identity = "topic_id: " + t.id() + "\ngroup_id: " + info.groupId() + "\n";
        Path meta = dir.resolve(METADATA_FILE);
        if (Files.exists(dir)) {
            String existing = Files.exists(meta) ? Files.readString(meta, StandardCharsets.UTF_8) : "";
            if (existing.equals(identity)) {
                return;
            }
            if (!existing.isEmpty()) {
                Path moved = dir.resolveSibling(dir.getFileName() + "." + java.util.UUID.randomUUID() + DELETED_SUFFIX);
                Files.move(dir, moved, StandardCopyOption.ATOMIC_MOVE);
                deleteTree(moved);
            }
        }
        Files.createDirectories(dir);
        Path tmp = dir.resolve(METADATA_FILE + ".tmp");
        Files.writeString(tmp, identity, StandardCharsets.UTF_8);
        Files.move(tmp, meta, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /**
     * Removes this shard's replica of partition {@code index} of a deleted topic: stops its group (closing its
     * log), then renames its directory out of the way at once and deletes the files on {@code background}.
     * Completes on this shard once the rename is done.
     */
    Promise<Void> dropPartition(String topic, int index, java.util.concurrent.Executor background) {
        String key = key(topic, index);
        Promise<Void> done = new Promise<>();
        Promise<Void> earlier = dropping.get(key);
        dropping.put(key, done);
        done.whenComplete((x, f) -> dropping.remove(key, done));
        Promise<Partition> pending = opening.remove(key);
        if (pending != null) {
            pending.complete(null);
        }
        Partition p = partitions.remove(key);
        if (p != null) {
            p.closed();
            leaders.remove(p.groupId());
            publishedIsr.remove(p.groupId());
        }
        Promise<Void> stopped = p != null ? raft.removeGroup(p.groupId())
            : earlier != null ? earlier : Promise.completed(null);
        stopped.whenComplete((x, f) -> {
            Path dir = logsDir.resolve(key);
            try {
                if (Files.exists(dir)) {
                    Path moved = dir.resolveSibling(key + "." + java.util.UUID.randomUUID() + DELETED_SUFFIX);
                    Files.move(dir, moved, StandardCopyOption.ATOMIC_MOVE);
                    background.execute(() -> deleteTree(moved));
                }
            } catch (IOException e) {
                System.getLogger(ShardState.class.getName()).log(System.Logger.Level.ERROR,
                    "cannot move the directory of deleted partition " + key + " away: " + e.getMessage());
            }
            done.complete(null);
        });
        return done;
    }

    static void deleteTree(Path dir) {
        try (var walk = Files.walk(dir)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(f -> {
                try {
                    Files.deleteIfExists(f);
                } catch (IOException e) {
                    System.getLogger(ShardState.class.getName()).log(System.Logger.Level.WARNING,
                        "cannot delete " + f + ": " + e.getMessage());
                }
            });
        } catch (IOException e) {
            System.getLogger(ShardState.class.getName()).log(System.Logger.Level.WARNING,
                "cannot delete " + dir + ": " + e.getMessage());
        }
    }

    /** At start-up: finishes deletions a previous run could not complete. */
    static void removeDeletedDirectories(Path logsDir) throws IOException {
        try (var list = Files.list(logsDir)) {
            list.filter(d -> d.getFileName().toString().endsWith(DELETED_SUFFIX)).forEach(ShardState::deleteTree);
        }
    }

    /** Whether every partition replica here is open, leads, and has its producer state loaded (single node). */
    boolean allLeading() {
        if (!opening.isEmpty()) {
            return false;
        }
        for (Partition p : partitions.values()) {
            if (!p.readyToProduce()) {
                return false;
            }
        }
        return true;
    }

    /** Stops serving (before the Raft host closes the logs): snapshots producer state, wakes waiters. */
    void stopServing() {
        closed = true;
        for (Partition p : partitions.values()) {
            p.snapshotProducersAtClose();
            p.closed();
        }
        for (Promise<Partition> pending : opening.values()) {
            pending.complete(null);
        }
        opening.clear();
    }

    /** After the Raft host closed every log: frees the log memory. */
    /**
     * Keeps {@code count} zeroed segment files (of the default segment size) in {@code dir} for this shard's busy
     * logs (see {@link dev.isthmus.log.ZeroedSegments}).
     */
    void installZeroedSegments(Path dir, int count) {
        zerosRegion = arena.allocateOrThrow(ZEROS_BYTES, Subsystem.WRITE_BEHIND);
        java.lang.foreign.MemorySegment zeros = arena.segment(zerosRegion, ZEROS_BYTES);
        zeros.fill((byte) 0);
        try {
            zeroed = dev.isthmus.log.ZeroedSegments.create(shard.engine(), dir, count, logConfig.segmentBytes(), zeros,
                shard::schedule);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("cannot keep zeroed segments in " + dir + ": " + e.getMessage(), e);
        }
    }

    /** The shard's zeroed segment stock, or null. */
    dev.isthmus.log.ZeroedSegments zeroedSegments() {
        return zeroed;
    }

    void release() {
        if (zeroed != null) {
            zeroed.close();
        }
        if (zerosRegion >= 0 && (zeroed == null || zeroed.idle())) {
            // A zero write still in flight keeps reading the buffer: then it goes with the arena.
            arena.free(zerosRegion);
        }
        partitions.clear();
        arena.free(writeRegion);
        arena.free(readRegion);
    }
}
