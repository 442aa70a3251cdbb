package dev.isthmus.raft;

import dev.isthmus.raft.sim.MemoryRaftLog;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.Predicate;

/**
 * A hand-driven cluster for unit tests: the test moves the clock, delivers messages and completes disk
 * flushes explicitly, so each protocol step can be observed. Nodes host the same groups over
 * {@link MemoryRaftLog}s whose flushes wait for {@link #flush(int)}.
 */
final class TestCluster {
    final RaftConfig config;
    final Node[] nodes;
    final ArrayDeque<RaftMessage> network = new ArrayDeque<>();
    final List<RaftMessage> sent = new ArrayList<>();
    final Set<Integer> isolated = new HashSet<>();
    long nowNs = 1_000_000_000L;

    final class Node implements MemoryRaftLog.Disk {
        final int id;
        RaftNode raft;
        final List<Runnable> pendingFlushes = new ArrayList<>();
        final List<MemoryRaftLog> logs = new ArrayList<>();
        final List<MemoryRaftLog.Image> images = new ArrayList<>();
        final List<List<Entry>> applied = new ArrayList<>();

        Node(int id, long seed) {
            this.id = id;
            this.raft = new RaftNode(id, config, this::send, () -> nowNs, new SplittableRandom(seed));
        }

        void send(RaftMessage m) {
            sent.add(m);
            if (!isolated.contains(m.from()) && !isolated.contains(m.to())) {
                network.add(m);
            }
        }

        @Override
        public void flush(Runnable completion) {
            pendingFlushes.add(completion);
        }

        RaftGroup group(int i) {
            return raft.group(i);
        }

        MemoryRaftLog log(int i) {
            return logs.get(i);
        }
    }

    TestCluster(int nodeCount, int groups, RaftConfig config) {
        this(nodeCount, groups, config, null);
    }

    /** {@code voters} null: every node votes in every group. */
    TestCluster(int nodeCount, int groups, RaftConfig config, int[] voters) {
        this.config = config;
        this.nodes = new Node[nodeCount];
        int[] all = new int[nodeCount];
        for (int i = 0; i < nodeCount; i++) {
            all[i] = i;
        }
        Configuration boot = Configuration.ofVoters(voters == null ? all : voters);
        for (int i = 0; i < nodeCount; i++) {
            nodes[i] = new Node(i, 1000 + i);
            for (int g = 0; g < groups; g++) {
                nodes[i].images.add(new MemoryRaftLog.Image());
                addGroup(nodes[i], g, boot.isMember(i) ? boot : Configuration.EMPTY);
            }
        }
    }

    void addGroup(Node n, int g, Configuration boot) {
        MemoryRaftLog log = new MemoryRaftLog(n.images.get(g), n);
        while (n.logs.size() <= g) {
            n.logs.add(null);
            n.applied.add(new ArrayList<>());
        }
        n.logs.set(g, log);
        List<Entry> applied = n.applied.get(g);
        applied.clear();
        n.raft.addGroup(g, log, boot, new StateMachine() {
            @Override
            public void apply(Entry entry) {
                applied.add(entry);
            }

            @Override
            public byte[] snapshot() {
                return new byte[] {(byte) applied.size()};
            }

            @Override
            public void restore(SnapshotMeta meta, byte[] data) {
                applied.clear();
            }
        }, GroupListener.NONE);
    }

    /** Simulates a crash of node {@code i}: unflushed writes are lost, the node restarts from its disk. */
    void crashAndRestart(int i, int groups) {
        Node old = nodes[i];
        Node n = new Node(i, 5000 + i);
        for (int g = 0; g < groups; g++) {
            n.images.add(old.logs.get(g).crash(new SplittableRandom(0)));
            addGroup(n, g, Configuration.EMPTY);
        }
        nodes[i] = n;
        network.removeIf(m -> m.to() == i);
    }

    /** Restarts node {@code i} with group 0 recovered from {@code image} (a hand-built disk). */
    void restartWith(int i, MemoryRaftLog.Image image, Configuration boot) {
        Node n = new Node(i, 7000 + i);
        n.images.add(image);
        addGroup(n, 0, boot);
        nodes[i] = n;
        network.removeIf(m -> m.to() == i);
    }

    /** A disk image holding {@code entries} and {@code hardState}, as if written and flushed earlier. */
    static MemoryRaftLog.Image image(List<Entry> entries, HardState hardState) {
        List<Runnable> flushes = new ArrayList<>();
        MemoryRaftLog log = new MemoryRaftLog(new MemoryRaftLog.Image(), flushes::add);
        log.bind(new RaftLog.Callbacks() {
            @Override
            public void onAppendDurable(long durableOffset) {
            }

            @Override
            public void onHardStateDurable(HardState state) {
            }

            @Override
            public void onSnapshotSaved(SnapshotMeta meta) {
            }

            @Override
            public void onSnapshotInstalled(SnapshotMeta meta) {
            }

            @Override
            public void onReadable() {
            }

            @Override
            public void onStorageFailure(String what) {
            }
        });
        log.append(entries);
        log.persistHardState(hardState);
        return log.close();
    }

    void advanceMs(long ms) {
        nowNs += ms * 1_000_000L;
    }

    void tickAll() {
        for (Node n : nodes) {
            n.raft.tick();
        }
    }

    /** Completes node {@code i}'s flushes (including those the completions start). */
    void flush(int i) {
        Node n = nodes[i];
        for (int rounds = 0; rounds < 100 && !n.pendingFlushes.isEmpty(); rounds++) {
            List<Runnable> l = new ArrayList<>(n.pendingFlushes);
            n.pendingFlushes.clear();
            l.forEach(Runnable::run);
            n.raft.flush();
        }
    }

    void flushAll() {
        for (int i = 0; i < nodes.length; i++) {
            flush(i);
        }
    }

    /** Delivers queued messages (and those they cause) until none is left; returns how many. */
    int deliverAll() {
        return deliver(m -> true);
    }

    int deliver(Predicate<RaftMessage> which) {
        int n = 0;
        for (int guard = 0; guard < 100_000 && !network.isEmpty(); guard++) {
            RaftMessage m = network.poll();
            if (which.test(m)) {
                nodes[m.to()].raft.receive(m);
                n++;
            }
        }
        return n;
    }

    /** Delivers and flushes everything repeatedly until the cluster is quiet. */
    void settle() {
        for (int i = 0; i < 1000; i++) {
            int moved = deliverAll();
            boolean flushed = false;
            for (Node n : nodes) {
                if (!n.pendingFlushes.isEmpty()) {
                    flushed = true;
                }
            }
            flushAll();
            if (moved == 0 && !flushed) {
                return;
            }
        }
        throw new AssertionError("cluster does not settle");
    }

    /** Ticks in steps of {@code stepMs} (settling each time) until {@code done} or {@code maxMs} pass. */
    boolean runUntil(long maxMs, long stepMs, java.util.function.BooleanSupplier done) {
        for (long t = 0; t < maxMs; t += stepMs) {
            if (done.getAsBoolean()) {
                return true;
            }
            advanceMs(stepMs);
            tickAll();
            settle();
        }
        return done.getAsBoolean();
    }

    RaftGroup leader(int group) {
        RaftGroup best = null;
        for (Node n : nodes) {
            RaftGroup g = n.raft.group(group);
            if (g != null && g.isLeader() && (best == null || g.term() > best.term())) {
                best = g;
            }
        }
        return best;
    }

    static BytesPayload payload(String s) {
        return new BytesPayload(s.getBytes(java.nio.charset.StandardCharsets.US_ASCII), 1);
    }
}
