package dev.isthmus.raft.server;

import dev.isthmus.arena.IoBuf;
import dev.isthmus.log.BatchBuilder;
import dev.isthmus.log.BatchCache;
import dev.isthmus.log.Log;
import dev.isthmus.log.LogConfig;
import dev.isthmus.log.LogException;
import dev.isthmus.log.RecordBatch;
import dev.isthmus.log.Records;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.GroupListener;
import dev.isthmus.raft.RaftConfig;
import dev.isthmus.raft.RaftErrors;
import dev.isthmus.raft.StateMachine;
import dev.isthmus.raft.net.TransportConfig;
import dev.isthmus.raft.storage.KafkaBatchPayload;
import dev.isthmus.raft.storage.LogEngineRaftLog;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.ShardGroup;
import dev.isthmus.uring.shard.ShardGroupConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the gateway needs from a hosted group beyond replication, on real {@link RaftServer}s (1 or 3 nodes in one
 * JVM, two shards each, real sockets on 127.0.0.1, real io_uring and files): acks=1 offsets at proposal time,
 * zero-copy reads from the shard's batch cache, prefix truncation (DeleteRecords) on every replica with a
 * restarted follower catching up through a snapshot.
 */
class ReplicatedLogTest {
    static final long DEADLINE_NS = TimeUnit.SECONDS.toNanos(60);
    static final RaftConfig RAFT = RaftConfig.builder().heartbeatIntervalMs(50).electionTimeoutMs(300, 600)
        .retransmitTimeoutMs(200).build();
    static final LogConfig LOG = LogConfig.defaults().withSegmentBytes(64 * 1024).withFallocateStep(64 * 1024)
        .withMaxBatchBytes(16 * 1024);

    @TempDir
    Path dir;
    Node[] nodes;

    final class Node {
        final int id;
        ShardGroup shards;
        RaftServer server;
        int port;

        Node(int id) {
            this.id = id;
        }

        void start(Map<Integer, InetSocketAddress> peers) {
            shards = ShardGroup.start(ShardGroupConfig.of(2).withPin(false), null);
            RaftServerConfig c = config(RaftServerConfig.of(id, "rl-test", new InetSocketAddress("127.0.0.1", port),
                    peers, Set.of(), dir.resolve("node" + id))
                .withRaft(RAFT)
                .withTransport(TransportConfig.defaults("rl-test").withTimeouts(1000, 50, 2000).withBackoff(20, 200))
                .withLog(LOG, LogEngineRaftLog.Options.defaults()));
            server = RaftServer.start(shards, c, StoragePools.allocate(2, 32, 64 * 1024, 4, LOG.readWindowBytes(),
                32L << 20));
            port = server.rpcAddress().getPort();
        }

        void stop() {
            if (server != null) {
                server.close();
                server = null;
            }
            if (shards != null) {
                shards.close();
                shards = null;
            }
        }

        <T> T on(long g, Function<ReplicatedLog, Promise<T>> fn) throws Exception {
            return server.onShard(shardOf(g, id), s -> fn.apply(s.group(g))).get(30, TimeUnit.SECONDS);
        }

        <T> T read(long g, Function<ReplicatedLog, T> fn) {
            try {
                return server.onShard(shardOf(g, id), s -> Promise.completed(s.group(g) == null ? null
                    : fn.apply(s.group(g)))).get(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }

        void addGroup(long g) throws Exception {
            Configuration voters = Configuration.ofVoters(Arrays.stream(nodes).mapToInt(n -> n.id).toArray());
            server.onShard(shardOf(g, id), s -> s.addGroup(g, voters, StateMachine.NONE, GroupListener.NONE))
                .get(30, TimeUnit.SECONDS);
        }
    }

    /** Server settings of the tests (subclasses tighten them). */
    RaftServerConfig config(RaftServerConfig c) {
        return c;
    }

    void startCluster(int size) {
        nodes = new Node[size];
        for (int i = 0; i < size; i++) {
            nodes[i] = new Node(i);
            nodes[i].start(Map.of());
        }
        for (Node n : nodes) {
            for (Node p : nodes) {
                if (p != n) {
                    n.server.transport().addPeer(p.id, addr(p)).join();
                }
            }
        }
    }

    Map<Integer, InetSocketAddress> peersOf(Node n) {
        Map<Integer, InetSocketAddress> m = new java.util.HashMap<>();
        for (Node p : nodes) {
            if (p != n) {
                m.put(p.id, addr(p));
            }
        }
        return m;
    }

    static InetSocketAddress addr(Node n) {
        return new InetSocketAddress("127.0.0.1", n.port);
    }

    @AfterEach
    void tearDown() {
        if (nodes != null) {
            for (Node n : nodes) {
                if (n != null) {
                    n.stop();
                }
            }
        }
    }

    /** The shard of group {@code g} on node {@code n}: different across nodes. */
    static int shardOf(long g, int n) {
        return (int) ((g + n) % 2);
    }

    static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + DEADLINE_NS;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(10);
        }
    }

    void addGroup(long g) throws Exception {
        for (Node n : nodes) {
            n.addGroup(g);
        }
    }

    Node leader(long g) throws InterruptedException {
        Node[] found = new Node[1];
        await("a leader of group " + g, () -> {
            for (Node n : nodes) {
                if (n.server != null && Boolean.TRUE.equals(n.read(g, ReplicatedLog::isLeader))) {
                    found[0] = n;
                    return true;
                }
            }
            return false;
        });
        return found[0];
    }

    static KafkaBatchPayload batch(String tag, int records) {
        byte[][] values = new byte[records][];
        for (int i = 0; i < records; i++) {
            values[i] = (tag + "-" + i).getBytes(StandardCharsets.UTF_8);
        }
        return KafkaBatchPayload.ofValues(System.currentTimeMillis(), values);
    }

    /** Replicates {@code count} batches of {@code records} records through the leader; returns the high watermark. */
    long replicate(long g, int count, int records, String tag) throws Exception {
        int done = 0;
        long end = System.nanoTime() + DEADLINE_NS;
        while (done < count) {
            assertTrue(System.nanoTime() < end, "could not replicate to group " + g);
            Node l = leader(g);
            int from = done;
            int k = Math.min(40, count - done);
            List<Long> offsets;
            try {
                offsets = l.on(g, rl -> {
                    List<Promise<Long>> ps = new ArrayList<>();
                    for (int i = 0; i < k; i++) {
                        ps.add(rl.replicate(batch(tag + (from + i), records)));
                    }
                    Promise<List<Long>> all = new Promise<>();
                    List<Long> out = new ArrayList<>();
                    Promise.whenAllSettled(ps).whenComplete((v, t) -> {
                        for (Promise<Long> p : ps) {
                            if (!p.isSucceeded()) {
                                all.fail(p.failure());
                                return;
                            }
                            out.add(p.value());
                        }
                        all.complete(out);
                    });
                    return all;
                });
            } catch (ExecutionException e) {
                Thread.sleep(20); // leadership moved: retry (duplicates are fine here)
                continue;
            }
            assertEquals(k, offsets.size());
            done += k;
        }
        return leader(g).read(g, ReplicatedLog::highWatermark);
    }

    // ------------------------------------------------------------------------------------------------ acks=1

    @Test
    void shouldHandOutTheOffsetWhenTheLeaderAcceptsTheProposal() throws Exception {
        startCluster(3);
        long g = 1;
        addGroup(g);
        replicate(g, 5, 1, "warm");
        Node l = leader(g);
        long[][] seen = new long[1][];
        List<Long> committed = l.on(g, rl -> {
            long[] proposed = new long[10];
            List<Promise<Long>> ps = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                int k = i;
                proposed[k] = -1;
                ps.add(rl.replicate(batch("acks1-" + i, 2), o -> proposed[k] = o));
                assertTrue(proposed[k] >= 0, "onProposed ran before replicate returned");
                assertTrue(!ps.get(k).isDone(), "not committed yet at proposal time");
            }
            seen[0] = proposed;
            Promise<List<Long>> all = new Promise<>();
            Promise.whenAllSettled(ps).whenComplete((v, t) -> {
                List<Long> out = new ArrayList<>();
                for (Promise<Long> p : ps) {
                    out.add(p.isSucceeded() ? p.value() : -1L);
                }
                all.complete(out);
            });
            return all;
        });
        for (int i = 0; i < 10; i++) {
            assertEquals(seen[0][i], committed.get(i), "the committed offset is the one handed out at proposal");
            if (i > 0) {
                assertEquals(seen[0][i - 1] + 2, seen[0][i]);
            }
        }
        // A follower refuses at once and does not call back.
        Node f = nodes[(l.id + 1) % 3];
        boolean[] called = {false};
        Throwable refused = assertThrows(ExecutionException.class,
            () -> f.on(g, rl -> rl.replicate(batch("nope", 1), o -> called[0] = true))).getCause();
        assertInstanceOf(RaftException.class, refused);
        assertEquals(RaftErrors.NOT_LEADER, ((RaftException) refused).code());
        assertTrue(!called[0]);
    }

    // ------------------------------------------------------------------------------------------------ cached reads

    /** What a chain read returned: its batches' first offsets, record values and whether it was non-empty. */
    record ChainRead(long first, long last, List<Long> batchOffsets, List<String> values) {
    }

    static Promise<ChainRead> readChain(ReplicatedLog rl, long from, long bound, int maxBytes) {
        Promise<ChainRead> p = new Promise<>();
        rl.log().read(from, bound, maxBytes, new Log.ChainReadHandler() {
            @Override
            public void onRead(IoBuf batches, long firstOffset, long lastOffset) {
                try {
                    byte[] bytes = new byte[(int) batches.size()];
                    batches.copyTo(0, bytes, 0, bytes.length);
                    List<Long> offsets = new ArrayList<>();
                    List<String> values = new ArrayList<>();
                    MemorySegment seg = MemorySegment.ofArray(bytes);
                    RecordBatch b = new RecordBatch();
                    Records r = new Records();
                    long pos = 0;
                    while (pos < bytes.length) {
                        b.wrap(seg, pos);
                        offsets.add(b.baseOffset());
                        if (!b.isControl() && r.wrap(b)) {
                            while (r.next()) {
                                values.add(new String(r.value().toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8));
                            }
                        }
                        pos += b.sizeInBytes();
                    }
                    p.complete(new ChainRead(firstOffset, lastOffset, offsets, values));
                } finally {
                    batches.release();
                }
            }

            @Override
            public void onError(LogException error) {
                p.fail(error);
            }
        });
        return p;
    }

    @Test
    void shouldServeZeroCopyReadsFromTheBatchCacheBoundedByTheHighWatermark() throws Exception {
        startCluster(1);
        long g = 2;
        addGroup(g);
        long hw = replicate(g, 200, 3, "cached");
        Node l = leader(g);
        BatchCache cache = l.read(g, rl -> rl.storage().log().batchCache());
        assertTrue(cache != null, "the group's log was opened with the shard's batch cache");
        long hitsBefore = l.read(g, rl -> rl.storage().log().batchCache().hits());
        long missesBefore = l.read(g, rl -> rl.storage().log().batchCache().misses());
        List<String> values = new ArrayList<>();
        long next = l.read(g, ReplicatedLog::logStartOffset);
        while (next < hw) {
            long from = next;
            ChainRead r = l.on(g, rl -> readChain(rl, from, rl.highWatermark(), 4096));
            assertTrue(r.last() < hw, "never past the high watermark");
            assertTrue(!r.batchOffsets().isEmpty());
            values.addAll(r.values());
            next = r.last() + 1;
        }
        assertEquals(600, values.size());
        assertEquals("cached0-0", values.get(0));
        assertEquals("cached199-2", values.get(599));
        assertTrue(l.read(g, rl -> rl.storage().log().batchCache().hits()) > hitsBefore, "reads hit the cache");
        long missesAfter = l.read(g, rl -> rl.storage().log().batchCache().misses());
        assertEquals(missesBefore, missesAfter, "appended batches were cached: no disk read");
        ChainRead empty = l.on(g, rl -> readChain(rl, rl.highWatermark(), rl.highWatermark(), 4096));
        assertTrue(empty.batchOffsets().isEmpty(), "nothing readable at the high watermark");
    }

    // ------------------------------------------------------------------------------------------------ truncation

    @Test
    void shouldTruncateThePrefixOfASingleNodeGroupExactlyAndKeepItAcrossARestart() throws Exception {
        startCluster(1);
        long g = 3;
        addGroup(g);
        long hw = replicate(g, 100, 3, "t"); // batches of three records
        Node n = nodes[0];
        long target = hw / 2;
        while (true) { // an offset inside a batch, not its first
            long o = target;
            if (n.on(g, rl -> readChain(rl, o, rl.highWatermark(), 1)).batchOffsets().get(0) < o) {
                break;
            }
            target++;
        }
        long t = target;
        assertEquals(t, (long) n.on(g, rl -> rl.truncatePrefix(t)));
        assertEquals(t, (long) n.read(g, ReplicatedLog::logStartOffset));
        assertEquals(t, (long) n.read(g, rl -> rl.log().logStartOffset()));
        long raftStart = n.read(g, rl -> rl.raft().startOffset());
        assertTrue(raftStart < t && t - raftStart < 3, "the Raft log starts at the batch holding " + t + ": " + raftStart);
        ChainRead first = n.on(g, rl -> readChain(rl, t, rl.highWatermark(), 1));
        assertEquals(raftStart, (long) first.batchOffsets().get(0), "the batch holding the start is served whole");
        Throwable below = assertThrows(ExecutionException.class,
            () -> n.on(g, rl -> readChain(rl, t - 1, rl.highWatermark(), 1))).getCause();
        assertEquals(LogException.Kind.OFFSET_OUT_OF_RANGE, ((LogException) below).kind());

        // Beyond the high watermark: refused, naming both offsets.
        long hwNow = n.read(g, ReplicatedLog::highWatermark); // the truncation entry took an offset too
        long tooFar = hwNow + 5;
        Throwable err = assertThrows(ExecutionException.class, () -> n.on(g, rl -> rl.truncatePrefix(tooFar)))
            .getCause();
        assertInstanceOf(IllegalArgumentException.class, err);
        assertTrue(err.getMessage().contains(Long.toString(tooFar)) && err.getMessage().contains(Long.toString(hwNow)),
            err.getMessage());
        // Below the current start: nothing to do, the start is answered.
        assertEquals(t, (long) n.on(g, rl -> rl.truncatePrefix(1)));

        n.stop();
        n.start(Map.of());
        n.addGroup(g);
        await("the restarted node leads again", () -> Boolean.TRUE.equals(n.read(g, ReplicatedLog::isLeader)));
        assertEquals(t, (long) n.read(g, ReplicatedLog::logStartOffset), "the exact start survives a restart");
        long hw2 = replicate(g, 20, 3, "after");
        assertTrue(hw2 > hw);
        // The whole log: the start becomes the high watermark, appends go on.
        assertEquals(hw2, (long) n.on(g, rl -> rl.truncatePrefix(rl.highWatermark())));
        assertEquals(hw2, (long) n.read(g, ReplicatedLog::logStartOffset));
        long hw3 = replicate(g, 5, 1, "later");
        ChainRead later = n.on(g, rl -> readChain(rl, rl.logStartOffset(), rl.highWatermark(), 1 << 20));
        assertTrue(later.values().containsAll(List.of("later0-0", "later4-0")), later.values().toString());
        assertTrue(hw3 > hw2);
    }

    @Test
    void shouldTruncateEveryReplicaAndCatchUpAFollowerRestartedBehindTheNewStart() throws Exception {
        startCluster(3);
        long g = 4;
        addGroup(g);
        long hw = replicate(g, 100, 2, "a");
        Node l = leader(g);
        long target = hw - 7;
        assertEquals(target, (long) l.on(g, rl -> rl.truncatePrefix(target)));
        for (Node n : nodes) {
            await("node " + n.id + " moves its log start to " + target,
                () -> n.read(g, ReplicatedLog::logStartOffset) == target);
        }
        // A follower stops; the others write on and drop everything it has.
        Node lagging = nodes[(l.id + 1) % 3];
        lagging.stop();
        long hw2 = replicate(g, 200, 2, "b");
        Node l2 = leader(g);
        long target2 = hw2 - 1;
        assertEquals(target2, (long) l2.on(g, rl -> rl.truncatePrefix(target2)));
        lagging.start(peersOf(lagging));
        lagging.addGroup(g);
        await("the restarted follower catches up", () -> {
            Long h = lagging.read(g, ReplicatedLog::highWatermark);
            return h != null && h >= hw2 && lagging.read(g, ReplicatedLog::logStartOffset) >= target2;
        });
        assertTrue(lagging.read(g, rl -> rl.raft().metrics().snapshotsInstalled()) >= 1,
            "the follower behind the new start got a snapshot");
        assertEquals(target2, (long) lagging.read(g, ReplicatedLog::logStartOffset));
        long hw3 = replicate(g, 20, 2, "c");
        for (Node n : nodes) {
            await("node " + n.id + " commits after the catch-up", () -> n.read(g, ReplicatedLog::highWatermark) >= hw3);
        }
        ChainRead tail = lagging.on(g, rl -> readChain(rl, rl.logStartOffset(), rl.highWatermark(), 1 << 20));
        assertTrue(tail.values().contains("c19-1"), "the follower serves what came after the snapshot");
    }

    @Test
    void shouldFailATruncationProposedOnAFollower() throws Exception {
        startCluster(3);
        long g = 5;
        addGroup(g);
        replicate(g, 10, 1, "x");
        Node l = leader(g);
        Node f = nodes[(l.id + 2) % 3];
        await("the follower knows the high watermark", () -> f.read(g, ReplicatedLog::highWatermark) > 2);
        Throwable err = assertThrows(ExecutionException.class, () -> f.on(g, rl -> rl.truncatePrefix(2))).getCause();
        assertInstanceOf(RaftException.class, err);
        assertEquals(RaftErrors.NOT_LEADER, ((RaftException) err).code());
        assertTrue(l.read(g, ReplicatedLog::logStartOffset) < 2, "nothing was truncated");
    }
}
