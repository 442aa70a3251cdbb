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

    // --- the txn workload's checks (TxnCheck) ---

    /** A transaction's invocation: writes as partition, value pairs. */
    private static void txnInvoke(H h, String tid, long id, String intent, long... writes) {
        Map<String, Object> m = h.ev(tid, "invoke", "txn");
        m.put("id", id);
        m.put("tid", tid);
        m.put("intent", intent);
        List<Object> w = new ArrayList<>();
        for (int i = 0; i < writes.length; i += 2) {
            w.add(List.of(writes[i], writes[i + 1]));
        }
        m.put("writes", w);
        h.add(m);
    }

    private static void txnEnd(H h, String tid, long id, String action) {
        Map<String, Object> m = h.ev(tid, "invoke", "txn-end");
        m.put("id", id);
        m.put("action", action);
        h.add(m);
    }

    /** A transaction's outcome: offsets as partition, value, offset triples. */
    private static void txnDone(H h, String tid, long id, String outcome, long... offsets) {
        Map<String, Object> m = h.ev(tid, switch (outcome) {
            case "committed" -> "ok";
            case "aborted" -> "fail";
            default -> "info";
        }, "txn");
        m.put("id", id);
        m.put("tid", tid);
        m.put("outcome", outcome);
        List<Object> o = new ArrayList<>();
        for (int i = 0; i < offsets.length; i += 3) {
            o.add(List.of(offsets[i], offsets[i + 1], offsets[i + 2]));
        }
        m.put("offsets", o);
        h.add(m);
    }

    private static void txnPoll(H h, String reader, String isolation, long... reads) {
        Map<String, Object> m = h.ev(reader, "ok", "txn-poll");
        m.put("topic", TxnWorkload.TOPIC);
        m.put("reader", reader);
        m.put("isolation", isolation);
        m.put("t0", h.t - 500_000);
        List<Object> rs = new ArrayList<>();
        for (int i = 0; i < reads.length; i += 3) {
            rs.add(List.of(reads[i], reads[i + 1], reads[i + 2]));
        }
        m.put("reads", rs);
        h.add(m);
    }

    private static void txnReaderStart(H h, String reader, String isolation) {
        Map<String, Object> m = h.ev(reader, "info", "txn-reader-start");
        m.put("reader", reader);
        m.put("isolation", isolation);
        m.put("topic", TxnWorkload.TOPIC);
        h.add(m);
    }

    /** ends and high watermarks of partitions 0 and 1. */
    private static void txnFinalEnd(H h, long lso0, long hw0, long lso1, long hw1) {
        Map<String, Object> m = h.ev(TxnWorkload.FINAL, "ok", "txn-final-end");
        m.put("topic", TxnWorkload.TOPIC);
        m.put("ends", Map.of("0", lso0, "1", lso1));
        m.put("hw", Map.of("0", hw0, "1", hw1));
        m.put("complete", true);
        h.add(m);
    }

    private static final String RC = TxnWorkload.READ_COMMITTED;
    private static final String RU = TxnWorkload.READ_UNCOMMITTED;

    /**
     * Transaction 0 commits values 100 (partition 0, offset 0) and 101 (partition 1, offset 0), markers at offset 1;
     * transaction 1 is aborted (102 at partition 0 offset 2, marker 3); transaction 2's commit times out (103 at
     * partition 1 offset 2, marker 3) but it did commit. The read_uncommitted reader sees 102 while it is open.
     */
    private static H cleanTxn() {
        H h = new H();
        txnReaderStart(h, "txn-rc-0", RC);
        txnReaderStart(h, "txn-ru", RU);
        txnInvoke(h, "chaos-txn-0", 0, "commit", 0, 100, 1, 101);
        txnEnd(h, "chaos-txn-0", 0, "commit");
        txnDone(h, "chaos-txn-0", 0, "committed", 0, 100, 0, 1, 101, 0);
        txnInvoke(h, "chaos-txn-0", 1, "abort", 0, 102);
        txnPoll(h, "txn-ru", RU, 0, 0, 100, 1, 0, 101, 0, 2, 102);
        txnEnd(h, "chaos-txn-0", 1, "abort");
        txnDone(h, "chaos-txn-0", 1, "aborted", 0, 102, 2);
        txnInvoke(h, "chaos-txn-1", 2, "commit", 1, 103);
        txnEnd(h, "chaos-txn-1", 2, "commit");
        txnDone(h, "chaos-txn-1", 2, "unknown", 1, 103, 2);
        txnPoll(h, "txn-rc-0", RC, 0, 0, 100, 1, 0, 101, 1, 2, 103);
        txnPoll(h, TxnWorkload.FINAL, RC, 0, 0, 100, 1, 0, 101, 1, 2, 103);
        txnFinalEnd(h, 4, 4, 4, 4);
        return h;
    }

    @Test
    void shouldPassACleanTransactionalHistory() throws Exception {
        CheckResult r = check(cleanTxn());
        assertTrue(r.clean(), r.render());
        assertTrue(r.counts().keySet().containsAll(TxnCheck.ANOMALIES), r.counts().toString());
        assertEquals(3, r.stats().get("transactions"));
        assertEquals(1, r.stats().get("txn committed"));
        assertEquals(1, r.stats().get("txn unknown and visible"));
        assertEquals(1, r.stats().get("txn read_uncommitted reads of aborted data"));
    }

    @Test
    void shouldCountAReadCommittedReadOfAbortedData() throws Exception {
        H h = cleanTxn();
        txnPoll(h, "txn-rc-0", RC, 0, 2, 102);
        CheckResult r = check(h);
        assertOnly(r, "txn-aborted-read", 1);
        assertTrue(r.examples().get("txn-aborted-read").get(0).contains("value 102"), r.render());
    }

    @Test
    void shouldCountAReadCommittedReadBeforeTheCommitWasAskedFor() throws Exception {
        H h = new H();
        txnReaderStart(h, "txn-rc-0", RC);
        txnInvoke(h, "chaos-txn-0", 0, "commit", 0, 100);
        txnPoll(h, "txn-rc-0", RC, 0, 0, 100); // visible before the commit was even asked for
        txnEnd(h, "chaos-txn-0", 0, "commit");
        txnDone(h, "chaos-txn-0", 0, "committed", 0, 100, 0);
        txnPoll(h, TxnWorkload.FINAL, RC, 0, 0, 100);
        txnFinalEnd(h, 2, 2, 0, 0);
        assertOnly(check(h), "txn-uncommitted-read", 1);
    }

    @Test
    void shouldCountACommittedValueMissingFromTheFinalRead() throws Exception {
        H h = new H();
        txnInvoke(h, "chaos-txn-0", 0, "commit", 0, 100, 0, 101);
        txnEnd(h, "chaos-txn-0", 0, "commit");
        txnDone(h, "chaos-txn-0", 0, "committed", 0, 100, 0, 0, 101, 1);
        txnPoll(h, TxnWorkload.FINAL, RC, 0, 0, 100);
        txnFinalEnd(h, 3, 3, 0, 0);
        CheckResult r = check(h);
        assertOnly(r, "txn-lost", 1);
        assertTrue(r.examples().get("txn-lost").get(0).contains("value 101"), r.render());
    }

    @Test
    void shouldCountAnUnknownTransactionThatIsOnlyPartlyVisible() throws Exception {
        H h = new H();
        txnInvoke(h, "chaos-txn-0", 0, "commit", 0, 100, 1, 101);
        txnEnd(h, "chaos-txn-0", 0, "commit");
        txnDone(h, "chaos-txn-0", 0, "unknown", 0, 100, 0, 1, 101, 0);
        txnPoll(h, TxnWorkload.FINAL, RC, 0, 0, 100); // partition 1's write never became visible
        txnFinalEnd(h, 2, 2, 2, 2);
        assertOnly(check(h), "txn-partial", 1);
        H none = new H(); // none of it visible: aborted after all, allowed
        txnInvoke(none, "chaos-txn-0", 0, "commit", 0, 100, 1, 101);
        txnEnd(none, "chaos-txn-0", 0, "commit");
        txnDone(none, "chaos-txn-0", 0, "unknown", 0, 100, 0, 1, 101, 0);
        txnFinalEnd(none, 2, 2, 2, 2);
        assertTrue(check(none).clean(), check(none).render());
    }

    @Test
    void shouldCountATransactionalIdsValuesOutOfOrderAndALastStableOffsetStuckAtTheEnd() throws Exception {
        H h = new H();
        txnInvoke(h, "chaos-txn-0", 0, "commit", 0, 100);
        txnEnd(h, "chaos-txn-0", 0, "commit");
        txnDone(h, "chaos-txn-0", 0, "committed", 0, 100, 2);
        txnInvoke(h, "chaos-txn-0", 1, "commit", 0, 101);
        txnEnd(h, "chaos-txn-0", 1, "commit");
        txnDone(h, "chaos-txn-0", 1, "committed", 0, 101, 0); // the later transaction's value before the earlier's
        txnPoll(h, TxnWorkload.FINAL, RC, 0, 0, 101, 0, 2, 100);
        txnFinalEnd(h, 4, 4, 0, 5); // partition 1: an open transaction holds the last stable offset at 0
        CheckResult r = check(h);
        assertEquals(1, r.count("txn-reordered"), r.render());
        assertEquals(1, r.count("txn-hanging"), r.render());
        assertEquals(2, r.total(), r.render());
    }

    @Test
    void shouldCountAVisibleValueAReadCommittedReaderNeverReadAndOffsetsThatDisagree() throws Exception {
        H h = cleanTxn();
        txnReaderStart(h, "txn-rc-1", RC);
        txnPoll(h, "txn-rc-1", RC, 0, 0, 100, 1, 2, 103); // never read 101
        txnPoll(h, "txn-ru", RU, 1, 2, 999); // offset 2 of partition 1 holds 103
        CheckResult r = check(h);
        assertEquals(1, r.count("txn-unseen"), r.render());
        assertEquals(1, r.count("txn-inconsistent-offset"), r.render());
        assertEquals(2, r.total(), r.render());
    }

    // --- replica moves (MoveCheck) ---

    private static void move(H h, String type, int part, List<Integer> from, List<Integer> to) {
        Map<String, Object> m = h.ev("admin", type, "move");
        m.put("topic", AdminWorkload.MOVES_TOPIC);
        m.put("part", part);
        m.put("from", from);
        m.put("to", to);
        h.add(m);
    }

    private static void moveDone(H h, int part) {
        Map<String, Object> m = h.ev("admin", "ok", "move-done");
        m.put("topic", AdminWorkload.MOVES_TOPIC);
        m.put("part", part);
        m.put("ms", 1234);
        h.add(m);
    }

    /** The final description: per partition its replicas, and for a listed move, adding and removing. */
    private static void moves(H h, Map<String, Object> parts) {
        Map<String, Object> m = h.ev("final", "ok", "moves");
        m.put("topic", AdminWorkload.MOVES_TOPIC);
        m.put("parts", parts);
        h.add(m);
    }

    @Test
    void shouldPassMovesThatCompletedOrWereRefused() throws Exception {
        H h = new H();
        move(h, "invoke", 0, List.of(0, 1), List.of(2, 1));
        move(h, "ok", 0, List.of(0, 1), List.of(2, 1));
        moveDone(h, 0);
        move(h, "invoke", 1, List.of(1, 2), List.of(0, 2));
        move(h, "fail", 1, List.of(1, 2), List.of(0, 2));
        move(h, "invoke", 2, List.of(2, 0), List.of(1, 0));
        move(h, "info", 2, List.of(2, 0), List.of(1, 0)); // timed out; it happened
        moves(h, Map.of("0", Map.of("replicas", List.of(1, 2)), "1", Map.of("replicas", List.of(2, 1)),
            "2", Map.of("replicas", List.of(0, 1))));
        CheckResult r = check(h);
        assertTrue(r.clean(), r.render());
        assertEquals(3, r.stats().get("moves"));
        assertEquals(1, r.stats().get("moves completed"));
    }

    @Test
    void shouldCountAMoveNeitherCompletedNorListedAndOneStillListedAtTheEnd() throws Exception {
        H h = new H();
        move(h, "invoke", 0, List.of(0, 1), List.of(2, 1));
        move(h, "ok", 0, List.of(0, 1), List.of(2, 1)); // acknowledged, then forgotten: back at {0, 1}
        move(h, "invoke", 1, List.of(1, 2), List.of(0, 2));
        move(h, "ok", 1, List.of(1, 2), List.of(0, 2)); // still moving at the end
        moves(h, Map.of("0", Map.of("replicas", List.of(0, 1)),
            "1", Map.of("replicas", List.of(0, 2, 1), "adding", List.of(0), "removing", List.of(1))));
        CheckResult r = check(h);
        assertEquals(1, r.count("move-lost"), r.render());
        assertEquals(1, r.count("move-unfinished"), r.render());
        assertEquals(2, r.total(), r.render());
    }
}
