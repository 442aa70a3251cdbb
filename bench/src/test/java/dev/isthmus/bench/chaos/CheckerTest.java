package dev.isthmus.bench.chaos;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The checker on hand-made histories: a clean one passes with every count 0, and each anomaly, planted alone
 * into an otherwise clean history, is counted exactly where it is and nowhere else.
 */
class CheckerTest {

    @TempDir
    Path dir;

    /** Writes history lines with increasing timestamps. */
    private static final class H {
        final List<String> lines = new ArrayList<>();
        long t;

        Map<String, Object> ev(String proc, String type, String f) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("t", t += 1_000_000);
            m.put("proc", proc);
            m.put("type", type);
            m.put("f", f);
            return m;
        }

        H add(Map<String, Object> m) {
            lines.add(Json.write(m));
            return this;
        }

        H send(String proc, int part, long value, long offset) {
            Map<String, Object> inv = ev(proc, "invoke", "send");
            inv.put("topic", "a");
            inv.put("part", part);
            inv.put("value", value);
            add(inv);
            Map<String, Object> ok = ev(proc, offset < 0 ? "info" : "ok", "send");
            ok.put("topic", "a");
            ok.put("part", part);
            ok.put("value", value);
            if (offset >= 0) {
                ok.put("offset", offset);
            } else {
                ok.put("error", "TimeoutException");
            }
            return add(ok);
        }

        /** reads: part, offset, value triples. */
        H poll(String proc, String reader, long... reads) {
            Map<String, Object> m = ev(proc, "ok", "poll");
            m.put("topic", "a");
            if (reader != null) {
                m.put("reader", reader);
            }
            List<Object> rs = new ArrayList<>();
            for (int i = 0; i < reads.length; i += 3) {
                rs.add(List.of(reads[i], reads[i + 1], reads[i + 2]));
            }
            m.put("reads", rs);
            m.put("t0", t - 500_000);
            return add(m);
        }

        H finalEnd(long... ends) {
            Map<String, Object> m = ev("final", "ok", "final-end");
            m.put("topic", "a");
            Map<String, Object> e = new LinkedHashMap<>();
            for (int p = 0; p < ends.length; p++) {
                e.put(Integer.toString(p), ends[p]);
            }
            m.put("ends", e);
            m.put("complete", true);
            return add(m);
        }

        H reset(String proc, String f, int part) {
            Map<String, Object> m = ev(proc, "ok", f);
            m.put("topic", "a");
            m.put("parts", List.of(part));
            return add(m);
        }

        H commit(String proc, String type, long offset) {
            Map<String, Object> m = ev(proc, type, "commit");
            m.put("group", "g");
            m.put("topic", "a");
            m.put("offsets", Map.of("0", offset));
            return add(m);
        }

        H committed(long t0, long offset) {
            Map<String, Object> m = ev("observer", "ok", "committed");
            m.put("group", "g");
            m.put("topic", "a");
            m.put("offsets", Map.of("0", offset));
            m.put("t0", t0);
            return add(m);
        }

        H admin(String f, String type, String topic, int partitions) {
            Map<String, Object> m = ev("admin", type, f);
            m.put("topic", topic);
            m.put("partitions", partitions);
            return add(m);
        }

        H topics(Map<String, Object> topics) {
            Map<String, Object> m = ev("final", "ok", "topics");
            m.put("topics", topics);
            return add(m);
        }
    }

    private CheckResult check(H h) throws Exception {
        Path f = dir.resolve("history-" + System.nanoTime() + ".jsonl");
        Files.write(f, h.lines);
        return Checker.check(f);
    }

    /** Two producers, two partitions, an assigned reader, a group reader, the final read: all consistent. */
    private static H clean() {
        H h = new H();
        h.send("producer-0", 0, 0, 0).send("producer-0", 1, 1, 0).send("producer-1", 0, 2, 1)
            .send("producer-1", 1, 3, 1).send("producer-0", 0, 4, -1); // value 4: indefinite, never stored
        h.poll("reader", "assigned", 0, 0, 0, 0, 1, 2, 1, 0, 1, 1, 1, 3);
        h.reset("member-0", "assigned", 0).reset("member-0", "assigned", 1);
        h.poll("member-0", "group:g", 0, 0, 0, 1, 0, 1).poll("member-0", "group:g", 0, 1, 2, 1, 1, 3);
        h.poll("final", null, 0, 0, 0, 0, 1, 2, 1, 0, 1, 1, 1, 3).finalEnd(2, 2);
        h.commit("member-0", "invoke", 1).commit("member-0", "ok", 1);
        h.committed(h.t, 1);
        h.commit("member-0", "invoke", 2).commit("member-0", "ok", 2);
        h.committed(h.t, 2);
        h.admin("create-topic", "invoke", "x", 1).admin("create-topic", "ok", "x", 1);
        h.admin("grow-topic", "invoke", "x", 3).admin("grow-topic", "ok", "x", 3);
        h.admin("create-topic", "invoke", "y", 1).admin("create-topic", "ok", "y", 1);
        h.admin("delete-topic", "invoke", "y", 0).admin("delete-topic", "ok", "y", 0);
        h.topics(Map.of("a", 2L, "x", 3L));
        return h;
    }

    private static void assertOnly(CheckResult r, String anomaly, long count) {
        for (Map.Entry<String, Long> e : r.counts().entrySet()) {
            assertEquals(e.getKey().equals(anomaly) ? count : 0, e.getValue(), e.getKey() + ":\n" + r.render());
        }
    }

    @Test
    void shouldPassACleanHistoryWithEveryCountZero() throws Exception {
        CheckResult r = check(clean());
        assertTrue(r.clean(), r.render());
        assertTrue(r.counts().keySet().containsAll(CheckResult.DESCRIPTIONS.keySet()), r.counts().toString());
        assertEquals(5, r.stats().get("sends"));
        assertEquals(4, r.stats().get("acknowledged"));
        assertEquals(1, r.stats().get("indefinite"));
    }

    @Test
    void shouldCountALostAcknowledgedWrite() throws Exception {
        H h = new H();
        h.send("producer-0", 0, 0, 0).send("producer-0", 0, 1, 1);
        h.poll("reader", "assigned", 0, 0, 0, 0, 1, 1);
        h.poll("final", null, 0, 0, 0).finalEnd(2); // offset 1 ends up holding nothing the final read saw
        CheckResult r = check(h);
        assertOnly(r, "lost", 1);
        assertTrue(r.examples().get("lost").get(0).contains("value 1"), r.render());
    }

    @Test
    void shouldCountAValueWrittenTwice() throws Exception {
        H h = new H();
        h.send("producer-0", 0, 0, 0).send("producer-0", 0, 1, 1);
        h.poll("reader", "assigned", 0, 0, 0, 0, 1, 1, 0, 2, 0);
        h.poll("final", null, 0, 0, 0, 0, 1, 1, 0, 2, 0).finalEnd(3);
        assertOnly(check(h), "duplicate", 1);
    }

    @Test
    void shouldCountAProducersLaterWriteAtALowerOffset() throws Exception {
        H h = new H();
        h.send("producer-0", 0, 0, 1).send("producer-0", 0, 1, 0);
        h.poll("reader", "assigned", 0, 0, 1, 0, 1, 0);
        h.poll("final", null, 0, 0, 1, 0, 1, 0).finalEnd(2);
        assertOnly(check(h), "reordered", 1);
    }

    @Test
    void shouldCountAnOffsetTwoReadersSawWithDifferentValues() throws Exception {
        H h = new H();
        h.send("producer-0", 0, 0, -1).send("producer-0", 0, 1, -1).send("producer-0", 0, 2, 0);
        h.poll("reader", "assigned", 0, 0, 0); // the assigned reader saw value 0 at offset 0
        h.poll("final", null, 0, 0, 1).finalEnd(1); // the final read saw value 1 there
        CheckResult r = check(h);
        // Offset 0 was also acknowledged for value 2: one inconsistent offset, counted once; value 2 is lost (the
        // final read has 1 at its offset) and the assigned reader never saw it.
        assertEquals(1, r.count("inconsistent-offset"), r.render());
        assertEquals(1, r.count("lost"), r.render());
        assertEquals(1, r.count("unseen"), r.render());
        assertEquals(0, r.count("duplicate"), r.render());
    }

    @Test
    void shouldCountAConsumerSkippingOverData() throws Exception {
        H h = new H();
        h.send("producer-0", 0, 0, 0).send("producer-0", 0, 1, 1).send("producer-0", 0, 2, 2);
        h.poll("reader", "assigned", 0, 0, 0).poll("reader", "assigned", 0, 2, 2); // jumped over offset 1
        h.poll("member-0", "group:g", 0, 0, 0, 0, 1, 1, 0, 2, 2);
        h.poll("final", null, 0, 0, 0, 0, 1, 1, 0, 2, 2).finalEnd(3);
        CheckResult r = check(h);
        assertEquals(1, r.count("poll-skip"), r.render());
        assertEquals(1, r.count("unseen"), r.render()); // the assigned reader never saw value 1
        r.counts().forEach((k, v) -> assertEquals(k.equals("poll-skip") || k.equals("unseen") ? 1 : 0, v, k));
    }

    @Test
    void shouldNotCountAJumpOverAControlRecordAsASkip() throws Exception {
        H h = new H();
        h.send("producer-0", 0, 0, 0).send("producer-0", 0, 1, 2); // offset 1: a Raft LEADER_CHANGE batch
        h.poll("reader", "assigned", 0, 0, 0).poll("reader", "assigned", 0, 2, 1);
        h.poll("final", null, 0, 0, 0, 0, 2, 1).finalEnd(3);
        assertTrue(check(h).clean());
    }

    @Test
    void shouldCountANonMonotonicReadButNotARereadAfterAReset() throws Exception {
        H h = new H();
        h.send("producer-0", 0, 0, 0).send("producer-0", 0, 1, 1);
        h.poll("reader", "assigned", 0, 0, 0, 0, 1, 1).poll("reader", "assigned", 0, 0, 0); // back to 0: anomaly
        h.poll("member-0", "group:g", 0, 0, 0, 0, 1, 1);
        h.reset("member-0", "assigned", 0).poll("member-0", "group:g", 0, 0, 0, 0, 1, 1); // after a rebalance: fine
        h.poll("final", null, 0, 0, 0, 0, 1, 1).finalEnd(2);
        assertOnly(check(h), "nonmonotonic-read", 1);
    }

    @Test
    void shouldCountCommittedOffsetsGoingBackwards() throws Exception {
        H h = clean();
        long before = h.t;
        h.committed(before + 1, 1); // invoked after the commit of 2 completed, reads 1
        CheckResult r = check(h);
        assertOnly(r, "commit-backwards", 1);
        H h2 = clean();
        h2.commit("member-1", "invoke", 0).commit("member-1", "ok", 0); // a commit acknowledged below 2
        assertOnly(check(h2), "commit-backwards", 1);
    }

    @Test
    void shouldNotOrderAnObservationConcurrentWithACommit() throws Exception {
        H h = new H();
        h.commit("member-0", "invoke", 5);
        long t0 = h.t; // the observation starts before the commit completes
        h.commit("member-0", "ok", 5);
        h.committed(t0, 3);
        assertTrue(check(h).clean(), check(h).render());
    }

    @Test
    void shouldCountAnAcknowledgedValueAReaderSetNeverSaw() throws Exception {
        H h = new H();
        h.send("producer-0", 0, 0, 0).send("producer-0", 0, 1, 1);
        h.poll("reader", "assigned", 0, 0, 0, 0, 1, 1);
        h.poll("member-0", "group:g", 0, 0, 0); // the group stopped short of offset 1
        h.poll("final", null, 0, 0, 0, 0, 1, 1).finalEnd(2);
        CheckResult r = check(h);
        assertOnly(r, "unseen", 1);
        assertTrue(r.examples().get("unseen").get(0).contains("group:g"), r.render());
    }

    @Test
    void shouldCountEveryValueForAReaderSetThatNeverReadAnything() throws Exception {
        H h = new H();
        Map<String, Object> start = h.ev("group-reader-0", "info", "reader-start");
        start.put("reader", "group:stuck");
        start.put("topic", "a");
        h.add(start);
        h.send("producer-0", 0, 0, 0).send("producer-0", 0, 1, 1);
        h.poll("reader", "assigned", 0, 0, 0, 0, 1, 1);
        h.poll("final", null, 0, 0, 0, 0, 1, 1).finalEnd(2);
        CheckResult r = check(h);
        assertOnly(r, "unseen", 2);
        assertTrue(r.examples().get("unseen").get(0).contains("group:stuck"), r.render());
    }

    @Test
    void shouldCountOutOfRangeAnswers() throws Exception {
        H h = clean();
        Map<String, Object> m = h.ev("reader", "info", "out-of-range");
        m.put("topic", "a");
        m.put("part", 0);
        m.put("offset", 2);
        h.add(m);
        assertOnly(check(h), "out-of-range", 1);
    }

    @Test
    void shouldCountWritesTheFinalReadDidNotReach() throws Exception {
        H h = new H();
        h.send("producer-0", 0, 0, 0).send("producer-0", 1, 1, 0);
        h.poll("final", null, 0, 0, 0);
        Map<String, Object> m = h.ev("final", "ok", "final-end");
        m.put("topic", "a");
        m.put("ends", Map.of("0", 1L));
        m.put("complete", false);
        h.add(m);
        assertOnly(check(h), "final-read-incomplete", 1); // value 1: partition 1 was never read; value 0 was

    }

    @Test
    void shouldCountAdminEndStatesThatContradictAcknowledgedOperations() throws Exception {
        H h = new H();
        h.admin("create-topic", "invoke", "x", 2).admin("create-topic", "ok", "x", 2);
        h.admin("create-topic", "invoke", "y", 1).admin("create-topic", "ok", "y", 1);
        h.admin("grow-topic", "invoke", "y", 4).admin("grow-topic", "ok", "y", 4);
        h.admin("create-topic", "invoke", "z", 1).admin("create-topic", "ok", "z", 1);
        h.admin("delete-topic", "invoke", "z", 0).admin("delete-topic", "ok", "z", 0);
        h.admin("create-topic", "invoke", "w", 1).admin("create-topic", "info", "w", 1); // unknown: not checked
        h.topics(Map.of("y", 3L, "z", 1L)); // x missing, y not grown, z not deleted
        CheckResult r = check(h);
        assertOnly(r, "admin-mismatch", 3);
    }
}
