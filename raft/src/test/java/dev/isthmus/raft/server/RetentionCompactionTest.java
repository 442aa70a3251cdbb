package dev.isthmus.raft.server;

import dev.isthmus.log.LogConfig;
import dev.isthmus.log.LogManager;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Retention and compaction of hosted groups, per shard, on real {@link RaftServer}s: retention.bytes and
 * retention.ms (turned on at runtime with {@link ReplicatedLog#updateConfig}) move every replica's log start
 * by whole segments through replicated prefix truncations; a {@code cleanup.policy=compact} group keeps the last
 * value per key, every replica's batches keep their offsets and epochs, and a follower that was away copies the
 * compacted batches from the leader and serves the same data.
 */
class RetentionCompactionTest extends ServerHarness {
    static final int SEGMENT_BYTES = 64 * 1024;

    @Override
    RaftServerConfig config(RaftServerConfig c) {
        return c.withRetentionCheckIntervalMs(100)
            .withCompaction(new LogManager.CompactionSettings(1L << 20, 256 * 1024, 100, 0.2, 0));
    }

    static String filler(String tag, int bytes) {
        StringBuilder b = new StringBuilder(tag).append(':');
        while (b.length() < bytes) {
            b.append((char) ('a' + b.length() % 26));
        }
        return b.toString();
    }

    /** Replicates {@code count} batches of two records of about 1 KiB each, stamped {@code timestampMs}. */
    void replicateSized(long g, int count, String tag, long timestampMs) throws Exception {
        int done = 0;
        while (done < count) {
            Node l = leader(g);
            int from = done;
            int k = Math.min(20, count - done);
            try {
                l.on(g, rl -> {
                    List<dev.isthmus.uring.shard.Promise<Long>> ps = new ArrayList<>();
                    for (int i = 0; i < k; i++) {
                        String v = filler(tag + (from + i), 1000);
                        ps.add(rl.replicate(keyed(timestampMs, new String[] {null, null}, new String[] {v + "a", v + "b"})));
                    }
                    return ps.get(ps.size() - 1);
                });
                done += k;
            } catch (java.util.concurrent.ExecutionException e) {
                Thread.sleep(20);
            }
        }
    }

    @Test
    void shouldDropWholeSegmentsPastRetentionBytesOnEveryReplica() throws Exception {
        startCluster(3);
        long g = 11;
        addGroup(g);
        replicateSized(g, 200, "r", System.currentTimeMillis()); // about 400 KiB: several 64 KiB segments
        Node l = leader(g);
        long hw = l.read(g, ReplicatedLog::highWatermark);
        assertEquals(0, (long) l.read(g, ReplicatedLog::logStartOffset), "no retention configured yet");
        long retentionBytes = 128 * 1024;
        for (Node n : nodes) {
            n.read(g, rl -> {
                rl.updateConfig(rl.config().withRetention(retentionBytes, -1));
                return null;
            });
        }
        await("the leader applies retention.bytes", () -> l.read(g, ReplicatedLog::logStartOffset) > 0
            && l.read(g, rl -> rl.log().sizeBytes()) <= retentionBytes + SEGMENT_BYTES);
        long start = l.read(g, ReplicatedLog::logStartOffset);
        assertTrue(start < hw);
        assertEquals(start, (long) l.read(g, rl -> rl.raft().startOffset()), "whole segments: a batch boundary");
        for (Node n : nodes) {
            await("node " + n.id + " drops the same prefix", () -> n.read(g, ReplicatedLog::logStartOffset) >= start);
            long size = n.read(g, rl -> rl.log().sizeBytes());
            assertTrue(size <= retentionBytes + 2L * SEGMENT_BYTES, "node " + n.id + " keeps " + size + " bytes");
        }
        ChainRead kept = readAll(l, g);
        assertEquals(start, kept.first());
        assertTrue(kept.values().get(kept.values().size() - 1).startsWith("r199:"), "the newest records stay");
        replicateSized(g, 10, "more", System.currentTimeMillis());
        long hw2 = leader(g).read(g, ReplicatedLog::highWatermark);
        for (Node n : nodes) {
            await("node " + n.id + " replicates after retention", () -> n.read(g, ReplicatedLog::highWatermark) >= hw2);
        }
    }

    @Test
    void shouldDropWholeSegmentsOlderThanRetentionMs() throws Exception {
        startCluster(1);
        long g = 12;
        addGroup(g);
        long now = System.currentTimeMillis();
        replicateSized(g, 150, "old", now - 2 * 3_600_000L); // two hours old: several segments
        long firstNew = leader(g).read(g, ReplicatedLog::highWatermark);
        replicateSized(g, 40, "new", now);
        Node n = nodes[0];
        n.read(g, rl -> {
            rl.updateConfig(rl.config().withRetention(-1, 3_600_000L));
            return null;
        });
        await("segments older than an hour go", () -> n.read(g, ReplicatedLog::logStartOffset) > 0);
        long start = n.read(g, ReplicatedLog::logStartOffset);
        assertTrue(start <= firstNew, "a segment holding new records stays (start " + start + ", first new " + firstNew
            + ")");
        ChainRead kept = readAll(n, g);
        long newKept = kept.values().stream().filter(v -> v.startsWith("new")).count();
        assertEquals(80, newKept, "every new record stays");
        long oldKept = kept.values().stream().filter(v -> v.startsWith("old")).count();
        assertTrue(oldKept < 300 && oldKept * 1000 < 2L * SEGMENT_BYTES,
            "only old records sharing a segment with new ones stay: " + oldKept);
    }

    @Test
    void shouldCompactACompactGroupKeepingTheLastValuePerKeyAndItsBatchesOnEveryReplica() throws Exception {
        startCluster(3);
        long g = 13;
        LogConfig compact = new LogConfig(SEGMENT_BYTES, 7L * 24 * 3600 * 1000, 16 * 1024, 4096, -1, -1,
            64 * 1024, true, 24L * 3600 * 1000);
        for (Node n : nodes) {
            n.addGroup(g, compact);
        }
        Map<String, String> last = new HashMap<>();
        int written = 0;
        // A follower is away while the others write and compact: it copies the compacted log later.
        writeKeyed(g, 0, 10, last);
        written += 20;
        Node away = nodes[(leader(g).id + 1) % 3];
        away.stop();
        writeKeyed(g, 10, 300, last);
        written += 600;
        Node l = leader(g);
        await("the leader's shard compacts the group", () -> {
            try {
                return l.server.onShard(shardOf(g, l.id), s -> dev.isthmus.uring.shard.Promise.completed(
                    s.cleaner().compactions())).get() > 0;
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        ChainRead leaderLog = readAll(l, g);
        assertTrue(leaderLog.values().size() < written, "compaction removed superseded records: "
            + leaderLog.values().size() + " of " + written);
        assertEquals(last, lastValues(leaderLog), "the last value of every key stays");
        Node other = nodes[3 - l.id - away.id];
        await("the other follower commits everything", () -> other.read(g, ReplicatedLog::highWatermark)
            >= l.read(g, ReplicatedLog::highWatermark));
        assertBatchesMatch(leaderLog, readAll(other, g));

        away.start(peersOf(away));
        away.addGroup(g, compact);
        long hw = l.read(g, ReplicatedLog::highWatermark);
        await("the follower that was away catches up", () -> away.read(g, ReplicatedLog::highWatermark) >= hw);
        ChainRead copied = readAll(away, g);
        assertEquals(0, (long) away.read(g, rl -> rl.raft().metrics().snapshotsInstalled()), "by AppendEntries");
        assertTrue(copied.values().size() < written, "it copied compacted batches");
        assertEquals(last, lastValues(copied));
        assertBatchesMatch(readAll(l, g), copied);

        writeKeyed(g, 300, 320, last);
        long hw2 = leader(g).read(g, ReplicatedLog::highWatermark);
        for (Node n : nodes) {
            await("node " + n.id + " replicates after compaction", () -> n.read(g, ReplicatedLog::highWatermark) >= hw2);
            assertEquals(last, lastValues(readAll(n, g)));
        }
    }

    /** Writes batches {@code from..to-1}, two records each with keys k0..k9 and 1 KiB values. */
    void writeKeyed(long g, int from, int to, Map<String, String> last) throws Exception {
        int i = from;
        while (i < to) {
            Node l = leader(g);
            int first = i;
            int k = Math.min(20, to - i);
            String[][] keys = new String[k][];
            String[][] values = new String[k][];
            for (int j = 0; j < k; j++) {
                int b = first + j;
                keys[j] = new String[] {"k" + (b % 10), "k" + ((b + 5) % 10)};
                values[j] = new String[] {filler("v" + b + "a", 1000), filler("v" + b + "b", 1000)};
            }
            try {
                l.on(g, rl -> {
                    dev.isthmus.uring.shard.Promise<Long> p = null;
                    for (int j = 0; j < k; j++) {
                        p = rl.replicate(keyed(System.currentTimeMillis(), keys[j], values[j]));
                    }
                    return p;
                });
            } catch (java.util.concurrent.ExecutionException e) {
                Thread.sleep(20);
                continue;
            }
            for (int j = 0; j < k; j++) {
                last.put(keys[j][0], values[j][0]);
                last.put(keys[j][1], values[j][1]);
            }
            i += k;
        }
    }

    static Map<String, String> lastValues(ChainRead r) {
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i < r.keys().size(); i++) {
            if (r.keys().get(i) != null) {
                m.put(r.keys().get(i), r.values().get(i));
            }
        }
        return m;
    }

    /** Same batches (offsets and epochs) over the offsets both logs hold. */
    static void assertBatchesMatch(ChainRead a, ChainRead b) {
        List<String> x = new ArrayList<>(a.batches());
        List<String> y = new ArrayList<>(b.batches());
        int n = Math.min(x.size(), y.size());
        assertTrue(n > 10, "enough batches to compare");
        assertEquals(x.subList(0, n), y.subList(0, n), "batch boundaries and epochs agree across replicas");
    }
}
