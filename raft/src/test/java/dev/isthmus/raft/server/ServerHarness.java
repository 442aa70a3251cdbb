package dev.isthmus.raft.server;

import dev.isthmus.arena.IoBuf;
import dev.isthmus.log.BatchBuilder;
import dev.isthmus.log.Log;
import dev.isthmus.log.LogConfig;
import dev.isthmus.log.LogException;
import dev.isthmus.log.RecordBatch;
import dev.isthmus.log.Records;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.GroupListener;
import dev.isthmus.raft.RaftConfig;
import dev.isthmus.raft.StateMachine;
import dev.isthmus.raft.net.TransportConfig;
import dev.isthmus.raft.storage.KafkaBatchPayload;
import dev.isthmus.raft.storage.LogEngineRaftLog;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.ShardGroup;
import dev.isthmus.uring.shard.ShardGroupConfig;
import org.junit.jupiter.api.AfterEach;
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
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Real {@link RaftServer}s for the tests of hosted groups: 1 or 3 nodes in one JVM, two shards each, real sockets on
 * 127.0.0.1, real io_uring and files, each shard with a batch cache; helpers to replicate, find the leader and read
 * a group's log as Kafka batches.
 */
abstract class ServerHarness {
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
            server = RaftServer.start(shards, c, pools());
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
            addGroup(g, null);
        }

        /** Hosts group {@code g} (all nodes voters) with {@code logConfig}, or the server's when null. */
        void addGroup(long g, LogConfig logConfig) throws Exception {
            Configuration voters = Configuration.ofVoters(Arrays.stream(nodes).mapToInt(n -> n.id).toArray());
            server.onShard(shardOf(g, id), s -> s.addGroup(g, server.config().groupDir(g), voters,
                logConfig == null ? server.config().logConfig() : logConfig, StateMachine.NONE, GroupListener.NONE))
                .get(30, TimeUnit.SECONDS);
        }
    }

    /** Each node's storage pools: 32 write-behind chunks of 64 KiB a shard (subclasses change them). */
    StoragePools pools() {
        return StoragePools.allocate(2, 32, 64 * 1024, 4, LOG.readWindowBytes(), 32L << 20);
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

    /** What a chain read returned: its batches' first offsets, record values and whether it was non-empty. */
    record ChainRead(long first, long last, List<Long> batchOffsets, List<String> values, List<String> batches,
                     List<String> keys) {
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
                    List<String> descriptors = new ArrayList<>();
                    List<String> keys = new ArrayList<>();
                    MemorySegment seg = MemorySegment.ofArray(bytes);
                    RecordBatch b = new RecordBatch();
                    Records r = new Records();
                    long pos = 0;
                    while (pos < bytes.length) {
                        b.wrap(seg, pos);
                        offsets.add(b.baseOffset());
                        descriptors.add(b.baseOffset() + ".." + b.lastOffset() + "@" + b.partitionLeaderEpoch());
                        if (!b.isControl() && r.wrap(b)) {
                            while (r.next()) {
                                values.add(r.valueLength() < 0 ? null
                                    : new String(r.value().toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8));
                                keys.add(r.keyLength() < 0 ? null
                                    : new String(r.key().toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8));
                            }
                        }
                        pos += b.sizeInBytes();
                    }
                    p.complete(new ChainRead(firstOffset, lastOffset, offsets, values, descriptors, keys));
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


    /** Everything node {@code n} holds of group {@code g} from its log start to its high watermark. */
    ChainRead readAll(Node n, long g) throws Exception {
        List<Long> offsets = new ArrayList<>();
        List<String> values = new ArrayList<>();
        List<String> batches = new ArrayList<>();
        List<String> keys = new ArrayList<>();
        long next = n.read(g, ReplicatedLog::logStartOffset);
        long hw = n.read(g, ReplicatedLog::highWatermark);
        long first = next;
        while (next < hw) {
            long from = next;
            ChainRead r = n.on(g, rl -> readChain(rl, from, hw, 1 << 20));
            assertTrue(!r.batchOffsets().isEmpty(), "no batch at " + from + " below " + hw);
            offsets.addAll(r.batchOffsets());
            values.addAll(r.values());
            batches.addAll(r.batches());
            keys.addAll(r.keys());
            next = r.last() + 1;
        }
        return new ChainRead(first, next - 1, offsets, values, batches, keys);
    }

    /** One batch of records {@code (timestamp, key, value)} ({@code keys[i]} null for no key). */
    static KafkaBatchPayload keyed(long timestampMs, String[] keys, String[] values) {
        int size = RecordBatch.HEADER_BYTES;
        for (int i = 0; i < values.length; i++) {
            size += 40 + (keys[i] == null ? 0 : keys[i].length() * 3) + (values[i] == null ? 0 : values[i].length() * 3);
        }
        byte[] buf = new byte[size];
        BatchBuilder b = new BatchBuilder(MemorySegment.ofArray(buf), 0, 0);
        for (int i = 0; i < values.length; i++) {
            b.add(timestampMs, keys[i] == null ? null : keys[i].getBytes(StandardCharsets.UTF_8),
                values[i] == null ? null : values[i].getBytes(StandardCharsets.UTF_8));
        }
        return new KafkaBatchPayload(Arrays.copyOf(buf, b.build()));
    }
}
