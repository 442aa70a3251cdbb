package dev.isthmus.raft.server;

import dev.isthmus.log.BatchCache;
import dev.isthmus.log.LogException;
import dev.isthmus.raft.RaftErrors;
import dev.isthmus.uring.shard.Promise;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;

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
class ReplicatedLogTest extends ServerHarness {
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

    // ------------------------------------------------------------------------------------------------ awaitCommit

    /**
     * {@link ReplicatedLog#awaitCommit}, what a Kafka leader answers a batch it already has (a retry, or one sent again
     * under a new epoch) with: at once for a committed entry, once committed for one that is not, and NOT_LEADER when
     * the leader steps down first (the entry may still be committed by the next leader; nothing was stored for this
     * request).
     */
    @Test
    void shouldAnswerAWaitForAnEntryOnceItCommitsAndFailItWhenTheLeaderStepsDownFirst() throws Exception {
        startCluster(3);
        long g = 8;
        addGroup(g);
        Node l = leader(g);
        List<Promise<Long>> first = l.on(g, rl -> {
            Promise<Long> p = rl.replicate(batch("first", 2));
            long base = rl.lastProposedOffset();
            return Promise.completed(List.of(p, rl.awaitCommit(base, base + 1)));
        });
        await("the entry commits", () -> l.read(g, rl -> first.get(1).isDone()));
        assertTrue(first.get(1).isSucceeded(), () -> "committed, but: " + first.get(1).failure());
        assertEquals(first.get(0).value(), first.get(1).value(), "answered with the entry's base offset");
        long base0 = first.get(1).value();
        Promise<Long> committed = l.on(g, rl -> Promise.completed(rl.awaitCommit(base0, base0 + 1)));
        assertTrue(committed.isSucceeded(), "a committed entry: at once");

        // Both followers stop, then the leader proposes: its entry cannot commit. Under load the leader may already
        // have stepped down when the proposal arrives (refused): then the followers come back and it is tried again.
        Promise<Long> waiting = null;
        Node alone = null;
        for (int attempt = 0; waiting == null; attempt++) {
            assertTrue(attempt < 5, "the leader kept stepping down before the proposal");
            Node leader = leader(g);
            Node f1 = nodes[(leader.id + 1) % 3];
            Node f2 = nodes[(leader.id + 2) % 3];
            await("the followers hold what was committed", () -> f1.read(g, ReplicatedLog::logEndOffset)
                .equals(leader.read(g, ReplicatedLog::logEndOffset)) && f2.read(g, ReplicatedLog::logEndOffset)
                .equals(leader.read(g, ReplicatedLog::logEndOffset)));
            f1.stop();
            f2.stop();
            Object[] r = leader.on(g, rl -> {
                Promise<Long> p = rl.replicate(batch("alone", 1));
                if (p.isFailed()) {
                    return Promise.completed(new Object[] {null, false});
                }
                long base = rl.lastProposedOffset();
                Promise<Long> w = rl.awaitCommit(base, base);
                return Promise.completed(new Object[] {w, w.isDone()});
            });
            if (r[0] == null) {
                f1.start(peersOf(f1));
                f1.addGroup(g);
                f2.start(peersOf(f2));
                f2.addGroup(g);
                continue;
            }
            assertTrue(!(Boolean) r[1], "not committed: no answer at once");
            @SuppressWarnings("unchecked")
            Promise<Long> w = (Promise<Long>) r[0];
            waiting = w;
            alone = leader;
        }
        Node l2 = alone;
        Promise<Long> answered = waiting;
        await("the leader steps down without a quorum", () -> !l2.read(g, ReplicatedLog::isLeader));
        await("the wait is answered", () -> l2.read(g, rl -> answered.isDone()));
        assertInstanceOf(RaftException.class, answered.failure());
        assertEquals(RaftErrors.NOT_LEADER, ((RaftException) answered.failure()).code());
    }
}
