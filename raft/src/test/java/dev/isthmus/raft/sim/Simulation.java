package dev.isthmus.raft.sim;

import dev.isthmus.raft.BytesPayload;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.GroupListener;
import dev.isthmus.raft.RaftConfig;
import dev.isthmus.raft.RaftErrors;
import dev.isthmus.raft.RaftGroup;
import dev.isthmus.raft.RaftMessage;
import dev.isthmus.raft.RaftNode;
import dev.isthmus.raft.Role;
import dev.isthmus.raft.StateMachine;

import dev.isthmus.log.ChunkPool;
import dev.isthmus.log.LogConfig;
import dev.isthmus.log.LogManager;
import dev.isthmus.raft.Payload;
import dev.isthmus.raft.RaftLog;
import dev.isthmus.raft.storage.KafkaBatchPayload;
import dev.isthmus.raft.storage.LogEngineRaftLog;
import dev.isthmus.uring.shard.Shard;
import dev.isthmus.uring.shard.ShardGroupConfig;
import dev.isthmus.uring.shard.ShardInvoker;
import dev.isthmus.uring.sim.SimClock;
import dev.isthmus.uring.sim.SimDisk;
import dev.isthmus.uring.sim.SimEngine;
import dev.isthmus.uring.sim.SimFaults;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * A deterministic simulation of a Raft cluster (TigerBeetle's VOPR, FoundationDB's simulator): several
 * {@link RaftNode}s hosting many groups run in one thread on a virtual clock, against simulated storage and a
 * simulated network, all driven from one seed. Everything random (fault schedule, latencies, message fates,
 * disk faults, the nodes' own election timeouts) comes from that seed, so a failing run replays exactly.
 *
 * <h2>Storage</h2>
 * With {@link Options#engineStorage} each node runs the production storage: a {@link LogEngineRaftLog} (log-engine
 * segments, state file) per group on a {@link SimDisk} (the node's disk, in memory, crash-consistent) through
 * {@link SimEngine}s, one per shard, whose loops a {@link ShardInvoker} steps: a node's shards turn whenever the
 * simulator touches the node (a tick, a message, a proposal) and whenever one of its disk operations falls due.
 * A crash is a power loss or a process crash of the disk ({@link SimDisk#crash}), and the restart recovers from
 * whatever the disk kept. Without it, nodes run the in-memory {@link MemoryRaftLog}, whose crash keeps a random
 * prefix of the unflushed journal.
 *
 * <h2>Phases</h2>
 * <ol>
 *   <li>Faults, for {@link Options#faultMs}: clients propose to whoever leads; the network loses, delays,
 *       duplicates and reorders messages; partitions come and go; nodes crash (losing unflushed writes) and
 *       restart; disks stall; clocks jump; leaders are asked to transfer leadership; groups are reassigned to
 *       other nodes (learners, then joint consensus); snapshots compact logs; the leaders of log groups
 *       (StateMachine.NONE, like partitions) truncate their prefix to random committed offsets (retention,
 *       DeleteRecords), often inside an entry.</li>
 *   <li>Heal: every node up, the network reliable. Within {@link Options#healDeadlineMs} (plus 1 ms per offset a
 *       lagging member must copy) each group must elect
 *       a leader and commit a fresh proposal, and every member must catch up (and have carried out every
 *       committed prefix truncation).</li>
 * </ol>
 * {@link SimChecker} checks safety on every event; {@link #run()} returns a summary.
 */
final class Simulation {
    /** Knobs of one run (derived from the seed, then overridable). */
    static final class Options {
        int nodes = 5;
        int groups = 6;
        int replicas = 3;
        long faultMs = 12_000;
        long healDeadlineMs = 30_000;
        double lossRate;
        double duplicateRate;
        long maxDelayUs;
        double longDelayRate;
        long meanFaultGapMs;
        long proposalGapUs;
        boolean snapshots;
        boolean reassignments;
        /**
         * Membership changes as the controller group makes them (see {@link #controllerMembershipFromSeed}): every node
         * that does not vote is a learner, reassignments change the number of voters too (promoting learners, demoting
         * voters to learners through the joint state), and a change under way is sometimes replaced by another (a
         * cancel, or an operator's second command).
         */
        boolean controllerMembership;
        /** Groups whose log is their state (StateMachine.NONE, like partitions), which get prefix truncations. */
        boolean[] logGroups = new boolean[0];
        long tickUs = 5_000;
        /** Production storage on simulated disks instead of {@link MemoryRaftLog} (see the class comment). */
        boolean engineStorage;
        /** Shards per node (engine storage): group g lives on shard g % shards. */
        int shards = 1;
        /** The share of crashes that are power losses rather than process crashes (engine storage). */
        double powerLossRate = 0.5;
        /** The Raft tail cache of each log (engine storage): small ones send catch-up reads to the disk. */
        long tailCacheBytes = 64 * 1024;
        double diskSpikeRate;
        double tornBlockRate = 0.2;
        boolean strictDirectories = true;
        /**
         * Disk errors (engine storage): operations fail with EIO at this rate, and some disk stalls are full disks
         * instead (ENOSPC for a while). A node whose storage fails crashes and restarts, as a broker would.
         */
        double ioErrorRate;
        boolean fullDisks;

        static Options fromSeed(SplittableRandom r) {
            Options o = new Options();
            o.nodes = r.nextInt(3, 6);
            o.replicas = Math.min(o.nodes, r.nextBoolean() ? 3 : r.nextInt(1, o.nodes + 1));
            o.groups = r.nextInt(1, 9);
            o.lossRate = r.nextDouble() < 0.3 ? 0 : r.nextDouble(0, 0.2);
            o.duplicateRate = r.nextDouble(0, 0.05);
            o.maxDelayUs = r.nextLong(500, 20_000);
            o.longDelayRate = r.nextDouble(0, 0.05);
            o.meanFaultGapMs = r.nextLong(100, 2_000);
            o.proposalGapUs = r.nextLong(200, 5_000);
            o.snapshots = r.nextBoolean();
            o.reassignments = o.nodes > o.replicas && r.nextBoolean();
            o.logGroups = new boolean[o.groups];
            for (int g = 0; g < o.groups; g++) {
                o.logGroups[g] = r.nextBoolean();
            }
            return o;
        }

        /**
         * Options for a run on production storage: as {@link #fromSeed}, plus the storage knobs, with a shorter fault
         * phase and at most four groups (each node's storage is real code on a simulated disk, so a run costs more).
         */
        static Options engineFromSeed(SplittableRandom r) {
            Options o = fromSeed(r);
            o.engineStorage = true;
            o.faultMs = 4_000;
            o.groups = Math.min(o.groups, 4);
            o.logGroups = Arrays.copyOf(o.logGroups, o.groups);
            o.shards = r.nextInt(1, 3);
            o.powerLossRate = r.nextDouble(0, 1);
            o.tailCacheBytes = r.nextBoolean() ? 1024 : 64 * 1024;
            o.diskSpikeRate = r.nextDouble(0, 0.02);
            o.tornBlockRate = r.nextDouble(0, 0.5);
            o.strictDirectories = r.nextInt(4) != 0;
            return o;
        }

        @Override
        public String toString() {
            return "nodes=" + nodes + " groups=" + groups + " replicas=" + replicas + " loss=" + String.format("%.3f",
                lossRate) + " dup=" + String.format("%.3f", duplicateRate) + " maxDelayUs=" + maxDelayUs
                + " faultGapMs=" + meanFaultGapMs + " proposalGapUs=" + proposalGapUs + " snapshots=" + snapshots
                + " reassign=" + reassignments + (controllerMembership ? " controllerMembership" : "") + " logGroups=" + Arrays.toString(logGroups)
                + (engineStorage ? " engineStorage shards=" + shards + " powerLoss=" + String.format("%.2f", powerLossRate)
                + " tailCache=" + tailCacheBytes + " diskSpikes=" + String.format("%.3f", diskSpikeRate) + " torn="
                + String.format("%.2f", tornBlockRate) + " strictDirs=" + strictDirectories
                + (ioErrorRate > 0 ? " eio=" + String.format("%.4f", ioErrorRate) : "") + (fullDisks ? " fullDisks" : "")
                : "");
        }
    }

    /** What a run did. */
    record Result(long seed, long events, long messages, long committedEntries, long proposalsCommitted,
                  long leadersElected, long crashes, long partitions, long reassignmentsDone, long snapshotsInstalled,
                  long transfers, long heartbeatMessages, long heartbeatItems, long fingerprint, long healMs,
                  long prefixTruncationsProposed, long prefixTruncationsDone, long diskReopens, long storageFailures) {
    }

    private static final boolean VERBOSE = Boolean.getBoolean("isthmus.sim.verbose");
    private final long seed;
    private final SplittableRandom random;
    final Options options;
    private final RaftConfig raftConfig;
    private final PriorityQueue<Event> events = new PriorityQueue<>();
    private final SimChecker checker = new SimChecker();
    private final SimNode[] nodes;
    private final Map<Long, Configuration> bootstrap = new HashMap<>();
    private final Set<Long> blocked = new HashSet<>();
    private final ArrayDeque<String> trace = new ArrayDeque<>();
    private final dev.isthmus.raft.codec.RaftCodec codec = dev.isthmus.raft.codec.RaftCodec.defaults();
    private long nowUs;
    /** Virtual time of the simulated disks and shards (nanoseconds; follows {@link #nowUs}). */
    private final SimClock simClock = new SimClock();
    private final LogConfig logConfig = LogConfig.defaults().withSegmentBytes(64 * 1024).withMaxBatchBytes(8 * 1024)
        .withFallocateStep(16 * 1024);
    private long diskReopens;
    private long storageFailures;
    private long seq;
    private long eventCount;
    private long messagesDelivered;
    private long fingerprint = 1;
    private boolean healing;
    private long proposalSeq;
    private long proposalsCommitted;
    private long crashes;
    private long partitions;
    private long reassignmentsDone;
    private long transfers;
    private long truncationsProposed;
    private final Map<Long, Configuration> reassigning = new HashMap<>();
    private final List<long[]> pendingProposals = new ArrayList<>();

    Simulation(long seed, Options options) {
        this.seed = seed;
        this.random = new SplittableRandom(seed ^ 0x5DEECE66DL);
        this.options = options;
        this.raftConfig = RaftConfig.builder()
            .heartbeatIntervalMs(20)
            .electionTimeoutMs(200, 400)
            .retransmitTimeoutMs(100)
            .maxInflightAppends(4)
            .maxInflightBytes(4096)
            .maxAppendBytes(600)
            .snapshotChunkBytes(16)
            .snapshotIntervalOffsets(options.snapshots ? 40 : 0)
            .snapshotTrailingOffsets(options.snapshots ? 8 : 0)
            .maxUncommittedBytes(64 << 10)
            .build();
        this.nodes = new SimNode[options.nodes];
        for (int g = 0; g < options.groups; g++) {
            int[] ids = pickNodes(options.replicas);
            bootstrap.put((long) g, options.controllerMembership ? withLearners(ids) : Configuration.ofVoters(ids));
        }
        for (int n = 0; n < options.nodes; n++) {
            nodes[n] = new SimNode(n);
            nodes[n].start();
        }
    }

    static Simulation fromSeed(long seed) {
        return new Simulation(seed, Options.fromSeed(new SplittableRandom(seed)));
    }

    /**
     * A run whose groups change membership as the controller group does ({@link Options#controllerMembership}): every
     * other option as {@link #fromSeed}, with reassignments on (at least two nodes), the new knob's draws from a
     * stream of the seed of their own.
     */
    static Simulation controllerMembershipFromSeed(long seed) {
        Options o = Options.fromSeed(new SplittableRandom(seed));
        SplittableRandom r = new SplittableRandom(seed ^ 0x3C0A_7E11_E7B0_0017L);
        o.nodes = Math.max(o.nodes, 3);
        o.replicas = Math.min(o.nodes - 1, Math.max(1, o.replicas));
        o.reassignments = true;
        o.controllerMembership = true;
        o.faultMs = r.nextLong(6_000, 12_000);
        return new Simulation(seed, o);
    }

    /** A configuration of {@code voters} with every other node a learner (the controller group's shape). */
    private Configuration withLearners(int[] voters) {
        int[] learners = java.util.stream.IntStream.range(0, options.nodes)
            .filter(i -> Arrays.binarySearch(voters, i) < 0).toArray();
        return Configuration.of(voters, learners);
    }

    /** A run on production storage ({@link Options#engineFromSeed}). */
    static Simulation onStorageFromSeed(long seed) {
        return new Simulation(seed, Options.engineFromSeed(new SplittableRandom(seed)));
    }

    /**
     * A run on production storage with disk errors too (EIO, full disks), their rates from a stream of the seed of
     * their own (so the runs without them replay as before).
     */
    static Simulation onFailingStorageFromSeed(long seed) {
        Options o = Options.engineFromSeed(new SplittableRandom(seed));
        SplittableRandom r = new SplittableRandom(seed ^ 0x6E10_4C1D_E4A5_E1A5L);
        o.ioErrorRate = r.nextDouble(0.0001, 0.002);
        o.fullDisks = true;
        return new Simulation(seed, o);
    }

    private int[] pickNodes(int count) {
        List<Integer> all = new ArrayList<>();
        for (int i = 0; i < options.nodes; i++) {
            all.add(i);
        }
        int[] out = new int[count];
        for (int i = 0; i < count; i++) {
            out[i] = all.remove(random.nextInt(all.size()));
        }
        Arrays.sort(out);
        return out;
    }

    // ============================================================================================ events

    private record Event(long timeUs, long seq, Runnable action) implements Comparable<Event> {
        @Override
        public int compareTo(Event o) {
            int c = Long.compare(timeUs, o.timeUs);
            return c != 0 ? c : Long.compare(seq, o.seq);
        }
    }

    private void at(long timeUs, Runnable action) {
        events.add(new Event(timeUs, seq++, action));
    }

    private void after(long delayUs, Runnable action) {
        at(nowUs + delayUs, action);
    }

    private void note(String s) {
        if (trace.size() == 400) {
            trace.poll();
        }
        trace.add(String.format("%10.3fms %s", nowUs / 1000.0, s));
    }

    String recentTrace() {
        return String.join("\n", trace);
    }

    // ============================================================================================ nodes

    final class SimNode implements MemoryRaftLog.Disk {
        final int id;
        RaftNode raft;
        boolean up;
        /** Engine storage: the node's logs are being opened (recovered); it is not up yet. */
        boolean starting;
        int incarnation;
        long clockOffsetUs;
        long slowDiskUntilUs;
        final SplittableRandom nodeRandom;
        final Map<Long, RaftLog> logs = new HashMap<>();
        final Map<Long, SimLogView> views = new HashMap<>();
        final Map<Long, MemoryRaftLog.Image> images = new HashMap<>();
        final Map<Long, SimStateMachine> machines = new HashMap<>();
        // engine storage
        SimDisk disk;
        ShardInvoker shards;
        SimEngine[] engines;
        ChunkPool[] writePools;
        ChunkPool[] readPools;
        /** Each shard's log housekeeper (as RaftShard has one): opens the groups' logs and flushes them each turn. */
        LogManager[] logManagers;
        List<List<LogEngineRaftLog>> toPoll;
        Throwable shardFailure;
        final Set<Long> stepTimes = new HashSet<>();

        SimNode(int id) {
            this.id = id;
            this.nodeRandom = random.split();
            for (long g = 0; g < options.groups; g++) {
                images.put(g, new MemoryRaftLog.Image());
            }
            if (options.engineStorage) {
                SimFaults f = new SimFaults();
                f.spikeRate = options.diskSpikeRate;
                f.tornBlockRate = options.tornBlockRate;
                f.strictDirectories = options.strictDirectories;
                f.ioErrorRate = options.ioErrorRate;
                disk = new SimDisk(simClock, f, nodeRandom.nextLong());
                disk.onDue(this::stepAt);
            }
        }

        long clockNs() {
            return Math.max(0, nowUs + clockOffsetUs) * 1_000L;
        }

        Path dir(long group) {
            return Path.of("/node" + id, "group-" + group);
        }

        int shardOf(long group) {
            return (int) (group % options.shards);
        }

        void start() {
            incarnation++;
            if (options.engineStorage) {
                startStorage();
                return;
            }
            for (long g = 0; g < options.groups; g++) {
                MemoryRaftLog log = new MemoryRaftLog(images.remove(g), this);
                logs.put(g, log);
                views.put(g, SimLogView.of(log));
            }
            startRaft();
        }

        /** Engine storage: opens (recovers) every group's log on the node's disk; the node comes up once all are open. */
        private void startStorage() {
            starting = true;
            int inc = incarnation;
            int n = options.shards;
            engines = new SimEngine[n];
            writePools = new ChunkPool[n];
            readPools = new ChunkPool[n];
            logManagers = new LogManager[n];
            toPoll = new ArrayList<>();
            for (int s = 0; s < n; s++) {
                writePools[s] = ChunkPool.allocate(32, 16 * 1024);
                readPools[s] = ChunkPool.allocate(2, logConfig.readWindowBytes());
                toPoll.add(new ArrayList<>());
            }
            shardFailure = null;
            shards = ShardInvoker.start(ShardGroupConfig.of(n).withPin(false), s -> {
                engines[s] = disk.newEngine();
                return engines[s];
            }, shard -> shard.addPoller(() -> pollShard(shard.id())));
            shards.group().onUncaught((t, e) -> {
                if (shardFailure == null) {
                    shardFailure = e;
                }
            });
            LogEngineRaftLog.Options logOptions = new LogEngineRaftLog.Options(options.tailCacheBytes, 16 * 1024, 1024);
            Map<Long, LogEngineRaftLog> opened = new HashMap<>();
            for (long g = 0; g < options.groups; g++) {
                long group = g;
                int s = shardOf(g);
                List<LogEngineRaftLog> polls = toPoll.get(s);
                shards.runOn(s, () -> LogEngineRaftLog.open(logManager(s), dir(group), logConfig, logOptions, polls::add,
                    (log, error) -> {
                        if (inc != incarnation) {
                            return;
                        }
                        if (error != null) {
                            if (options.ioErrorRate > 0 || options.fullDisks) {
                                // an injected disk error during recovery: the process gives up and is restarted
                                note("n" + id + " cannot recover g" + group + ": " + error.getMessage());
                                storageFailed();
                                return;
                            }
                            throw new AssertionError("node " + id + " cannot recover group " + group + ": " + error, error);
                        }
                        opened.put(group, log);
                        if (opened.size() == options.groups) {
                            starting = false;
                            diskReopens++;
                            for (Map.Entry<Long, LogEngineRaftLog> e : opened.entrySet()) {
                                logs.put(e.getKey(), e.getValue());
                                views.put(e.getKey(), SimLogView.of(e.getValue(), disk, dir(e.getKey())));
                            }
                            startRaft();
                        }
                    }));
            }
            settle();
        }

        private void startRaft() {
            up = true;
            int inc = incarnation;
            raft = new RaftNode(id, raftConfig, this::send, this::clockNs, nodeRandom.split());
            for (long g = 0; g < options.groups; g++) {
                long group = g;
                RaftLog log = logs.get(g);
                SimLogView view = views.get(g);
                StateMachine sm;
                if (isLogGroup(g)) {
                    sm = StateMachine.NONE;
                } else {
                    SimStateMachine m = new SimStateMachine(checker, id, g);
                    machines.put(g, m);
                    sm = m;
                }
                checker.onRestart(id, g);
                Configuration boot = bootstrap.get(g).isMember(id) ? bootstrap.get(g) : Configuration.EMPTY;
                raft.addGroup(g, log, boot, sm, new GroupListener() {
                    @Override
                    public void onRoleChange(long groupId, Role role, long term, int leaderId) {
                        note("n" + id + " g" + group + " " + role + " t" + term + " leader=" + leaderId);
                        checker.onRole(id, group, role, term, view);
                    }

                    @Override
                    public void onCommit(long groupId, long commitOffset) {
                        checker.onCommit(id, group, commitOffset, view);
                    }

                    @Override
                    public void onLogStartChange(long groupId, long logStartOffset) {
                        checker.onLogStart(id, group, logStartOffset, view, !options.snapshots && isLogGroup(group));
                    }
                });
            }
            long firstTick = nodeRandom.nextLong(options.tickUs);
            after(firstTick, () -> tick(inc));
        }

        /** Shard {@code s}'s log housekeeper, made on the shard once its engine exists. */
        private LogManager logManager(int s) {
            if (logManagers[s] == null) {
                logManagers[s] = new LogManager(engines[s], Path.of("/node" + id), writePools[s], readPools[s]);
            }
            return logManagers[s];
        }

        /**
         * Engine storage, once per shard loop turn: flush the node, then the logs that asked, then the shard's log
         * housekeeping (one flush per log appended to), as RaftShard does.
         */
        private int pollShard(int shard) {
            int work = 0;
            if (raft != null) {
                raft.flush();
            }
            List<LogEngineRaftLog> polls = toPoll.get(shard);
            for (int round = 0; round < 2 && !polls.isEmpty(); round++) {
                List<LogEngineRaftLog> l = new ArrayList<>(polls);
                polls.clear();
                LogEngineRaftLog prev = null;
                for (LogEngineRaftLog log : l) {
                    if (log != prev) {
                        work += log.poll();
                    }
                    prev = log;
                }
            }
            if (logManagers != null && logManagers[shard] != null) {
                work += logManagers[shard].poll();
            }
            if (work > 0 && raft != null) {
                raft.flush();
            }
            return work;
        }

        /**
         * Engine storage: turns of the node's shards until none has work (what a tick, a message or a completion
         * set off runs to its end, as it would within the loop turns right after it). A no-op otherwise.
         */
        void settle() {
            if (!options.engineStorage || shards == null || (!up && !starting)) {
                return;
            }
            for (int round = 0; round < 10_000; round++) {
                int work = 0;
                boolean more = false;
                for (int s = 0; s < options.shards; s++) {
                    work += shards.invoke(s);
                    if (shardFailure != null) {
                        throw new AssertionError("node " + id + ": " + shardFailure, shardFailure);
                    }
                    if (shards == null) {
                        return; // the node crashed in this turn (its storage failed)
                    }
                    more |= shards.shard(s).hasWorkNow();
                }
                if (work == 0 && !more) {
                    checkStorage();
                    return;
                }
                if (round >= 100 && ioInFlight()) {
                    // Still busy while waiting for I/O (a log polling for write-behind memory spins until a write
                    // completes): virtual time does not pass inside a step, so go on when the I/O completes.
                    return;
                }
            }
            throw new AssertionError("node " + id + ": its shards never went idle, with no I/O in flight");
        }

        /** A log whose storage failed stops its group: the process is restarted (a broker stops on a failed disk). */
        private void checkStorage() {
            if (!up || !(options.ioErrorRate > 0 || options.fullDisks)) {
                return;
            }
            for (RaftLog l : logs.values()) {
                if (((LogEngineRaftLog) l).isFailed()) {
                    note("n" + id + " storage failed");
                    storageFailed();
                    return;
                }
            }
        }

        /** The node crashes (its process exits) after a storage failure and restarts a little later. */
        private void storageFailed() {
            if (!up && !starting) {
                return;
            }
            storageFailures++;
            boolean wasStarting = starting;
            up = true; // crash() expects a live node
            crash();
            if (wasStarting) {
                note("n" + id + " gave up recovering");
            }
            after(random.nextLong(10_000, 300_000), () -> {
                if (!up && !starting) {
                    restart(this);
                }
            });
        }

        private boolean ioInFlight() {
            for (SimEngine e : engines) {
                if (e.inFlight() > 0) {
                    return true;
                }
            }
            return disk.fileOps().backgroundQueued() > 0;
        }

        /** Runs {@code action} on the node (on the shard of {@code group}) and settles it. */
        void run(long group, Runnable action) {
            if (options.engineStorage && shards != null) {
                shards.runOn(shardOf(group), action);
                if (shardFailure != null) {
                    throw new AssertionError("node " + id + ": " + shardFailure, shardFailure);
                }
                settle();
            } else {
                action.run();
            }
        }

        /** The disk says something falls due at {@code timeNs}: step the node then. */
        private void stepAt(long timeNs) {
            long us = (timeNs + 999) / 1000;
            if (stepTimes.add(us)) {
                at(Math.max(us, nowUs), () -> {
                    stepTimes.remove(us);
                    settle();
                });
            }
        }

        void tick(int inc) {
            if (!up || inc != incarnation) {
                return;
            }
            run(0, raft::tick);
            after(options.tickUs, () -> tick(inc));
        }

        void crash() {
            note("n" + id + " CRASH");
            crashes++;
            up = false;
            if (options.engineStorage) {
                boolean powerLoss = random.nextDouble() < options.powerLossRate;
                note("n" + id + (powerLoss ? " power loss" : " process crash"));
                disk.crash(powerLoss);
                shards.abandon();
                shards = null;
                for (int s = 0; s < options.shards; s++) {
                    writePools[s].close();
                    readPools[s].close();
                }
                starting = false;
            } else {
                for (Map.Entry<Long, RaftLog> e : logs.entrySet()) {
                    images.put(e.getKey(), ((MemoryRaftLog) e.getValue()).crash(random));
                }
            }
            logs.clear();
            views.clear();
            machines.clear();
            raft = null;
        }

        /** Releases the node's storage memory at the end of a run. */
        void release() {
            if (options.engineStorage && shards != null) {
                shards.abandon();
                shards = null;
                for (int s = 0; s < options.shards; s++) {
                    writePools[s].close();
                    readPools[s].close();
                }
            }
        }

        void send(RaftMessage m) {
            network(m);
        }

        @Override
        public void flush(Runnable completion) {
            long latency = random.nextLong(50, 2_000);
            if (nowUs < slowDiskUntilUs) {
                latency += random.nextLong(5_000, 150_000);
            } else if (random.nextDouble() < 0.01) {
                latency += random.nextLong(10_000, 60_000);
            }
            int inc = incarnation;
            after(latency, () -> {
                if (up && inc == incarnation) {
                    completion.run();
                    raft.flush();
                }
            });
        }

        @Override
        public boolean readMiss(Runnable completion) {
            if (random.nextDouble() >= 0.02) {
                return false;
            }
            int inc = incarnation;
            after(random.nextLong(100, 3_000), () -> {
                if (up && inc == incarnation) {
                    completion.run();
                    raft.flush();
                }
            });
            return true;
        }
    }

    // ============================================================================================ network

    private static long link(int a, int b) {
        return ((long) a << 32) | b;
    }

    private void network(RaftMessage sent) {
        // Every message crosses the wire format, so the codec is exercised by every schedule.
        RaftMessage m = codec.decode(java.nio.ByteBuffer.wrap(codec.encode(sent)));
        if (!healing) {
            if (blocked.contains(link(m.from(), m.to())) || random.nextDouble() < options.lossRate) {
                return;
            }
        }
        int copies = !healing && random.nextDouble() < options.duplicateRate ? 2 : 1;
        for (int i = 0; i < copies; i++) {
            long delay = random.nextLong(50, options.maxDelayUs + 51);
            if (!healing && random.nextDouble() < options.longDelayRate) {
                delay += random.nextLong(10_000, 300_000); // reordered far behind later messages
            }
            after(delay, () -> deliver(m));
        }
    }

    private void deliver(RaftMessage m) {
        SimNode to = nodes[m.to()];
        if (!to.up || (!healing && blocked.contains(link(m.from(), m.to())))) {
            return;
        }
        messagesDelivered++;
        fingerprint = fingerprint * 31 + m.getClass().getSimpleName().hashCode() + m.from() * 7L + m.to();
        to.run(0, () -> to.raft.receive(m));
    }

    // ============================================================================================ clients

    private void scheduleProposals() {
        after(random.nextLong(options.proposalGapUs) + 1, () -> {
            if (!healing) {
                proposeSomewhere((long) random.nextInt(options.groups));
                scheduleProposals();
            }
        });
    }

    /** A client that finds the leader the way a Kafka producer does: asks around, retries on NOT_LEADER. */
    private long proposeSomewhere(long group) {
        RaftGroup leader = currentLeader(group);
        if (leader == null) {
            return -1;
        }
        int records = 1 + random.nextInt(4);
        byte[] bytes = ("g" + group + "-p" + proposalSeq++).getBytes(StandardCharsets.US_ASCII);
        Payload payload;
        if (options.engineStorage) {
            byte[][] values = new byte[records][];
            for (int i = 0; i < records; i++) {
                values[i] = (new String(bytes, StandardCharsets.US_ASCII) + "-" + i).getBytes(StandardCharsets.US_ASCII);
            }
            payload = KafkaBatchPayload.ofValues(simClock.currentTimeMillis(), values);
        } else {
            payload = new BytesPayload(bytes, records);
        }
        SimNode node = nodes[leader.nodeId()];
        long[] offset = {-1};
        node.run(group, () -> {
            offset[0] = leader.propose(payload);
            if (offset[0] >= 0) {
                node.raft.flush();
            }
        });
        if (offset[0] >= 0) {
            pendingProposals.add(new long[] {group, offset[0], leader.term(), leader.nodeId()});
        }
        return offset[0];
    }

    private RaftGroup currentLeader(long group) {
        RaftGroup best = null;
        for (SimNode n : nodes) {
            if (n.up) {
                RaftGroup g = n.raft.group(group);
                if (g != null && g.isLeader() && (best == null || g.term() > best.term())) {
                    best = g;
                }
            }
        }
        return best;
    }

    private void settleProposals() {
        pendingProposals.removeIf(p -> {
            long group = p[0];
            RaftGroup leader = currentLeader(group);
            if (leader == null) {
                return false;
            }
            return switch (leader.proposalOutcome(p[1], p[2])) {
                case COMMITTED -> {
                    proposalsCommitted++;
                    var e = checker.committed(group).get(p[1]);
                    if (e == null || e.term() != p[2]) {
                        throw new AssertionError("proposal at " + p[1] + " t" + p[2] + " reported committed but the"
                            + " cluster committed " + e);
                    }
                    yield true;
                }
                case LOST, UNKNOWN -> true;
                case PENDING -> false;
            };
        });
    }

    // ============================================================================================ faults

    private void scheduleFault() {
        long gapUs = (long) (-Math.log(1 - random.nextDouble()) * options.meanFaultGapMs * 1000) + 1;
        after(gapUs, () -> {
            if (healing) {
                return;
            }
            injectFault();
            scheduleFault();
        });
    }

    private void injectFault() {
        int kind = random.nextInt(100);
        if (kind < 22) {
            SimNode n = nodes[random.nextInt(nodes.length)];
            if (n.up && liveNodes() > 1) {
                n.crash();
                after(random.nextLong(20_000, 2_000_000), () -> {
                    if (!n.up && !n.starting) {
                        restart(n);
                    }
                });
            }
        } else if (kind < 40) {
            partition();
        } else if (kind < 48) {
            blocked.clear();
            note("partition healed");
        } else if (kind < 56) {
            SimNode n = nodes[random.nextInt(nodes.length)];
            long jump = random.nextLong(-100_000, 900_000);
            n.clockOffsetUs += jump;
            note("n" + n.id + " clock jumps " + jump / 1000 + "ms");
        } else if (kind < 64) {
            SimNode n = nodes[random.nextInt(nodes.length)];
            if (options.fullDisks && random.nextBoolean()) {
                long untilUs = nowUs + random.nextLong(20_000, 500_000);
                n.disk.faults().fullUntilNs = untilUs * 1000;
                note("n" + n.id + " disk full until " + untilUs / 1000 + "ms");
            } else {
                n.slowDiskUntilUs = nowUs + random.nextLong(50_000, 1_500_000);
                if (n.disk != null) {
                    n.disk.faults().stallUntilNs = n.slowDiskUntilUs * 1000;
                }
                note("n" + n.id + " disk stalls");
            }
        } else if (kind < 74) {
            long group = random.nextInt(options.groups);
            RaftGroup leader = currentLeader(group);
            if (leader != null) {
                int[] voters = leader.configuration().voters();
                int target = voters[random.nextInt(voters.length)];
                int[] rc = {0};
                nodes[leader.nodeId()].run(group, () -> rc[0] = leader.transferLeadership(target));
                if (rc[0] == RaftErrors.OK) {
                    transfers++;
                    note("g" + group + " transfer " + leader.nodeId() + " -> " + target);
                }
            }
        } else if (kind < 84) {
            if (options.reassignments) {
                long group = random.nextInt(options.groups);
                if (options.controllerMembership) {
                    // Voters grow or shrink by one, or keep their number with other members; a change still under way
                    // is replaced by this one (the leader's changeMembership takes the newer target once it can).
                    int count = Math.clamp(options.replicas + random.nextInt(-1, 2), 1, options.nodes);
                    Configuration target = withLearners(pickNodes(count));
                    Configuration before = reassigning.put(group, target);
                    note("g" + group + " membership to " + target + (before != null ? " (replacing " + before + ")" : ""));
                } else if (!reassigning.containsKey(group)) {
                    Configuration target = Configuration.ofVoters(pickNodes(options.replicas));
                    reassigning.put(group, target);
                    note("g" + group + " reassign to " + target);
                }
            }
        } else if (kind < 92) {
            SimNode n = nodes[random.nextInt(nodes.length)];
            long group = random.nextInt(options.groups);
            // Without the snapshots option, only prefix truncations move a log group's start (the checker holds
            // it to that); with it, snapshots race the truncations.
            if (n.up && (options.snapshots || !isLogGroup(group))) {
                n.run(group, () -> n.raft.group(group).takeSnapshot());
            }
        } else {
            truncateSomewhere((long) random.nextInt(options.groups));
        }
    }

    /** Retention and DeleteRecords come on their own schedule too, so every log group sees several. */
    private void scheduleTruncations() {
        after(random.nextLong(50_000, 800_000), () -> {
            if (!healing) {
                truncateSomewhere((long) random.nextInt(options.groups));
                scheduleTruncations();
            }
        });
    }

    boolean isLogGroup(long group) {
        return options.logGroups.length > group && options.logGroups[(int) group];
    }

    /**
     * Retention or DeleteRecords on a log group: its leader moves the log start to a random committed offset
     * (often inside an entry, sometimes the high watermark itself).
     */
    private void truncateSomewhere(long group) {
        if (!isLogGroup(group)) {
            return;
        }
        RaftGroup leader = currentLeader(group);
        if (leader == null) {
            return;
        }
        long from = leader.logStartOffset();
        long hw = leader.commitOffset() + 1;
        if (hw <= from) {
            return;
        }
        long target = random.nextInt(4) == 0 ? hw : from + 1 + random.nextLong(hw - from);
        SimNode node = nodes[leader.nodeId()];
        long[] offset = {-1};
        node.run(group, () -> {
            offset[0] = leader.proposePrefixTruncation(target);
            if (offset[0] >= 0) {
                node.raft.flush();
            }
        });
        if (offset[0] >= 0) {
            truncationsProposed++;
            note("g" + group + " truncate to " + target + " at " + offset[0] + " by n" + leader.nodeId());
        }
    }

    private int liveNodes() {
        int n = 0;
        for (SimNode s : nodes) {
            if (s.up) {
                n++;
            }
        }
        return n;
    }

    private void restart(SimNode n) {
        note("n" + n.id + " RESTART");
        n.start();
    }

    private void partition() {
        blocked.clear();
        partitions++;
        int style = random.nextInt(3);
        if (style == 0) {
            // isolate one node both ways
            int x = random.nextInt(nodes.length);
            for (int i = 0; i < nodes.length; i++) {
                if (i != x) {
                    blocked.add(link(x, i));
                    blocked.add(link(i, x));
                }
            }
            note("partition: n" + x + " isolated");
        } else if (style == 1) {
            // random split into two sides
            boolean[] side = new boolean[nodes.length];
            for (int i = 0; i < nodes.length; i++) {
                side[i] = random.nextBoolean();
            }
            for (int i = 0; i < nodes.length; i++) {
                for (int j = 0; j < nodes.length; j++) {
                    if (side[i] != side[j]) {
                        blocked.add(link(i, j));
                    }
                }
            }
            note("partition: split " + Arrays.toString(side));
        } else {
            // asymmetric: some one-way links cut
            for (int k = 0; k < nodes.length; k++) {
                int a = random.nextInt(nodes.length);
                int b = random.nextInt(nodes.length);
                if (a != b) {
                    blocked.add(link(a, b));
                }
            }
            note("partition: one-way links " + blocked.size());
        }
    }

    private void driveReassignments() {
        if (reassigning.isEmpty()) {
            return;
        }
        reassigning.entrySet().removeIf(e -> {
            RaftGroup leader = currentLeader(e.getKey());
            if (leader == null) {
                return false;
            }
            int[] result = {0};
            nodes[leader.nodeId()].run(e.getKey(), () -> result[0] = leader.changeMembership(e.getValue().voters(),
                e.getValue().learners()));
            int rc = result[0];
            if (rc == RaftErrors.OK) {
                reassignmentsDone++;
                note("g" + e.getKey() + " now " + e.getValue());
                return true;
            }
            return rc == RaftErrors.INVALID_CONFIGURATION;
        });
    }

    private void schedulePeriodicChecks() {
        after(50_000, () -> {
            driveReassignments();
            settleProposals();
            checkLogMatching();
            for (SimNode n : nodes) {
                n.settle(); // a safety net: nothing waits on a node the simulator did not touch
            }
            schedulePeriodicChecks();
        });
    }

    private void checkLogMatching() {
        for (long g = 0; g < options.groups; g++) {
            for (int a = 0; a < nodes.length; a++) {
                for (int b = a + 1; b < nodes.length; b++) {
                    if (nodes[a].up && nodes[b].up) {
                        SimChecker.checkLogMatching(g, a, nodes[a].views.get(g), b, nodes[b].views.get(g));
                    }
                }
            }
        }
    }

    // ============================================================================================ run

    private void runUntil(long endUs, java.util.function.BooleanSupplier done) {
        while (!events.isEmpty()) {
            Event e = events.peek();
            if (e.timeUs > endUs || (done != null && done.getAsBoolean())) {
                return;
            }
            events.poll();
            nowUs = e.timeUs;
            simClock.advanceTo(Math.max(simClock.nanoTime(), nowUs * 1000));
            eventCount++;
            e.action.run();
        }
    }

    Result run() {
        try {
            return runPhases();
        } finally {
            for (SimNode n : nodes) {
                n.release();
            }
        }
    }

    private Result runPhases() {
        scheduleProposals();
        scheduleTruncations();
        scheduleFault();
        schedulePeriodicChecks();
        runUntil(options.faultMs * 1000, null);

        // ---- heal: everyone up, reliable network, no more faults
        healing = true;
        blocked.clear();
        note("HEAL");
        for (SimNode n : nodes) {
            if (!n.up && !n.starting) {
                restart(n);
            }
            n.slowDiskUntilUs = 0;
            if (n.disk != null) {
                n.disk.faults().stallUntilNs = 0;
                n.disk.faults().fullUntilNs = 0;
                n.disk.faults().ioErrorRate = 0;
            }
        }
        // Engine storage: restarted nodes come up once their logs are recovered (a few disk operations later).
        runUntil(nowUs + 60_000_000L, () -> {
            for (SimNode n : nodes) {
                if (!n.up) {
                    return false;
                }
            }
            return true;
        });
        for (SimNode n : nodes) {
            if (!n.up) {
                throw new AssertionError("node " + n.id + " did not recover its logs within a minute of healing");
            }
        }
        long healStartUs = nowUs;
        // Liveness, not bandwidth: the deadline grows with the backlog a lagging member must copy (the
        // simulated windows are tiny on purpose), assuming at least 1000 offsets per second.
        long backlog = 0;
        for (long g = 0; g < options.groups; g++) {
            long max = -1;
            long min = Long.MAX_VALUE;
            for (SimNode n : nodes) {
                RaftGroup rg = n.raft.group(g);
                max = Math.max(max, rg.lastOffset());
                min = Math.min(min, rg.lastOffset());
            }
            backlog = Math.max(backlog, max - min);
        }
        long deadlineMs = options.healDeadlineMs + backlog;
        long deadlineUs = nowUs + deadlineMs * 1000;
        long[] marker = new long[options.groups];
        long[] markerTerm = new long[options.groups];
        Arrays.fill(marker, -1);
        boolean[] healed = {false};
        Runnable[] check = new Runnable[1];
        check[0] = () -> {
            driveReassignments();
            boolean all = reassigning.isEmpty();
            for (int g = 0; g < options.groups; g++) {
                RaftGroup leader = currentLeader(g);
                if (leader == null) {
                    all = false;
                    continue;
                }
                boolean committed = marker[g] >= 0 && leader.term() == markerTerm[g]
                    && leader.proposalOutcome(marker[g], markerTerm[g]) == RaftGroup.Outcome.COMMITTED;
                if (!committed && (marker[g] < 0 || leader.term() != markerTerm[g])) {
                    // a fresh proposal in the current leader's term
                    long o = proposeSomewhere(g);
                    if (o >= 0) {
                        marker[g] = o;
                        markerTerm[g] = leader.term();
                    }
                }
                if (!committed || !converged(g, leader)) {
                    all = false;
                }
            }
            if (VERBOSE && !all && (nowUs - healStartUs) % 1_000_000 < 10_000) {
                StringBuilder sb = new StringBuilder("heal +" + (nowUs - healStartUs) / 1000 + "ms:");
                for (int g = 0; g < options.groups; g++) {
                    sb.append("\n  g").append(g).append(" marker=").append(marker[g]).append("@t").append(markerTerm[g])
                        .append(" pending reassign=").append(reassigning.get((long) g));
                    for (SimNode n : nodes) {
                        sb.append("\n    ").append(n.raft.group(g));
                    }
                }
                System.out.println(sb);
            }
            if (all) {
                healed[0] = true;
            } else {
                after(10_000, check[0]);
            }
        };
        after(1, check[0]);
        runUntil(deadlineUs, () -> healed[0]);
        long healMs = (nowUs - healStartUs) / 1000;
        StringBuilder stuck = new StringBuilder();
        for (int g = 0; g < options.groups; g++) {
            RaftGroup leader = currentLeader(g);
            if (leader == null || marker[g] < 0
                || leader.proposalOutcome(marker[g], markerTerm[g]) != RaftGroup.Outcome.COMMITTED
                || !converged(g, leader)) {
                stuck.append("\n  group ").append(g).append(": leader ").append(leader);
                for (SimNode n : nodes) {
                    stuck.append("\n    ").append(n.raft.group(g));
                }
            }
        }
        if (!reassigning.isEmpty()) {
            stuck.append("\n  reassignments unfinished: ").append(reassigning);
        }
        if (!stuck.isEmpty()) {
            throw new AssertionError("liveness: no progress " + deadlineMs + "ms after healing (backlog " + backlog
                + " offsets):" + stuck);
        }
        checkLogMatching();
        settleProposals();
        long committedEntries = 0;
        for (long g = 0; g < options.groups; g++) {
            committedEntries += checker.committed(g).size();
            RaftGroup leader = currentLeader(g);
            for (int id : leader.configuration().members()) {
                checker.checkNothingLost(g, id, nodes[id].views.get(g), nodes[id].raft.group(g));
            }
        }
        long hbMessages = 0;
        long hbItems = 0;
        long snapshotsInstalled = 0;
        long truncationsDone = 0;
        for (SimNode n : nodes) {
            hbMessages += n.raft.metrics().heartbeatMessagesSent();
            hbItems += n.raft.metrics().heartbeatItemsSent();
            for (RaftGroup g : n.raft.groups()) {
                snapshotsInstalled += g.metrics().snapshotsInstalled();
                truncationsDone += g.metrics().prefixTruncations();
            }
        }
        return new Result(seed, eventCount, messagesDelivered, committedEntries, proposalsCommitted,
            checker.leadersElected, crashes, partitions, reassignmentsDone, snapshotsInstalled, transfers, hbMessages,
            hbItems, fingerprint * 31 + checker.commitsChecked, healMs, truncationsProposed, truncationsDone, diskReopens, storageFailures);
    }

    /** Every member of the leader's configuration has caught up with the leader's commit offset. */
    private boolean converged(long group, RaftGroup leader) {
        for (int id : leader.configuration().members()) {
            RaftGroup g = nodes[id].raft.group(group);
            if (g.commitOffset() < leader.commitOffset() || g.lastOffset() != leader.lastOffset()) {
                return false;
            }
            if (isLogGroup(group) && g.logStartOffset() < checker.committedTruncationTarget(group)) {
                return false; // a committed prefix truncation not yet carried out by this member
            }
        }
        return true;
    }
}
