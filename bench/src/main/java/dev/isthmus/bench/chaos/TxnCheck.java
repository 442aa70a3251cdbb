package dev.isthmus.bench.chaos;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The checks of the {@code txn} workload ({@link TxnWorkload}), from its {@code txn}, {@code txn-end},
 * {@code txn-poll}, {@code txn-assign}, {@code txn-reader-start} and {@code txn-final-end} events:
 *
 * <ul>
 *   <li><b>txn-aborted-read</b>: a read_committed reader (the final read included) returned a value of an aborted
 *       transaction (one whose producer never asked for a commit);</li>
 *   <li><b>txn-uncommitted-read</b>: a read_committed poll returned a value of a transaction before its producer
 *       asked for the commit (the poll's event is stamped after it returned, the commit's before it was called, so
 *       a read counted here surely came first);</li>
 *   <li><b>txn-lost</b>: a value of a committed transaction missing from the final read, which reached past its
 *       acknowledged offset;</li>
 *   <li><b>txn-partial</b>: a transaction whose outcome is unknown (the commit was asked for and did not return)
 *       with some but not all of its values in the final read: it must be all or nothing;</li>
 *   <li><b>txn-duplicate</b>: a value seen (read or acknowledged) at two different places;</li>
 *   <li><b>txn-inconsistent-offset</b>: one offset seen holding two different values;</li>
 *   <li><b>txn-reordered</b>: within a partition, a transactional id's values in the final read in another order than
 *       it sent them (transactions in turn, a transaction's writes in turn), or a read_committed reader going back to
 *       an offset at or below one it read, without a reset between;</li>
 *   <li><b>txn-unseen</b>: a visible value (of a committed transaction, or of an unknown one the final read holds)
 *       that a read_committed reader never read by the end;</li>
 *   <li><b>txn-hanging</b>: a partition whose last stable offset was still below its high watermark at the end (a
 *       transaction left open after every producer stopped and the transaction timeout passed);</li>
 *   <li><b>txn-final-incomplete</b>: a committed value the final read could not reach (its partition unreadable at
 *       the end, or the last stable offset below it): the run cannot say whether it was lost.</li>
 * </ul>
 *
 * <p>One thread.
 */
final class TxnCheck implements HistoryCheck {
    static final List<String> ANOMALIES = List.of("txn-aborted-read", "txn-uncommitted-read", "txn-lost",
        "txn-partial", "txn-duplicate", "txn-inconsistent-offset", "txn-reordered", "txn-unseen", "txn-hanging",
        "txn-final-incomplete");

    /** One transaction as the history tells it. */
    private static final class Txn {
        final long id;
        final String tid;
        final String proc;
        final boolean abortIntent;
        final int[] parts;
        final long[] values;
        final long invokeT;
        long commitAskedT = -1;
        String outcome; // committed, aborted, unknown; null when it never completed
        final Map<Long, Long> ackOffset = new HashMap<>();

        Txn(long id, String tid, String proc, boolean abortIntent, int[] parts, long[] values, long invokeT) {
            this.id = id;
            this.tid = tid;
            this.proc = proc;
            this.abortIntent = abortIntent;
            this.parts = parts;
            this.values = values;
            this.invokeT = invokeT;
        }

        String describe() {
            return String.format(Locale.ROOT, "transaction %d of %s (%s, %s, began t=%.3fs)", id, tid, proc,
                outcome == null ? "never completed" : outcome, invokeT / 1e9);
        }
    }

    /** A read by a read_committed reader, judged once every outcome is known. */
    private record Read(String reader, int part, long offset, long value, long t, String where) {
    }

    private final Map<Long, Txn> txns = new LinkedHashMap<>();
    private final Map<Long, Txn> byValue = new HashMap<>();
    private final Map<Long, Long> offsetValue = new HashMap<>(); // part << 40 | offset -> value
    private final Map<Long, Long> placement = new HashMap<>(); // value -> part << 40 | offset
    private final Set<Long> duplicateCounted = new HashSet<>();
    private final Set<Long> inconsistentCounted = new HashSet<>();
    private final List<Read> committedReads = new ArrayList<>();
    private final Map<String, Set<Long>> seenBy = new LinkedHashMap<>();
    private final Map<String, Long> lastRead = new HashMap<>();
    private final Map<Long, Long> finalOffset = new HashMap<>(); // value -> offset in the final read
    private final Map<Integer, long[]> finalEnds = new HashMap<>(); // part -> {lso, hw}
    private boolean finalSeen;
    private boolean finalComplete;
    private final List<String[]> pending = new ArrayList<>();
    private long uncommittedReads;
    private long openReadsUncommitted;
    private long abortedReadsUncommitted;

    @Override
    public void accept(Event e) {
        switch (e.f()) {
            case "txn" -> txn(e);
            case "txn-end" -> {
                Txn x = txns.get(e.num("id"));
                if (x != null && e.invoke() && "commit".equals(e.str("action")) && x.commitAskedT < 0) {
                    x.commitAskedT = e.t();
                }
            }
            case "txn-reader-start" -> {
                if (TxnWorkload.READ_COMMITTED.equals(e.str("isolation"))) {
                    seenBy.computeIfAbsent(e.str("reader"), k -> new HashSet<>());
                }
            }
            case "txn-assign" -> {
                for (Object p : e.list("parts")) {
                    lastRead.remove(e.proc() + '\0' + p);
                }
            }
            case "txn-poll" -> {
                if (e.ok()) {
                    poll(e);
                }
            }
            case "txn-final-end" -> {
                finalSeen = true;
                finalComplete = Boolean.TRUE.equals(e.fields().get("complete"));
                Map<String, Object> hw = e.map("hw");
                for (Map.Entry<String, Object> en : e.map("ends").entrySet()) {
                    Object h = hw.get(en.getKey());
                    long lso = ((Number) en.getValue()).longValue();
                    finalEnds.put(Integer.parseInt(en.getKey()), new long[] {lso, h == null ? lso : ((Number) h).longValue()});
                }
            }
            default -> {
            }
        }
    }

    private void txn(Event e) {
        long id = e.num("id");
        if (e.invoke()) {
            List<Object> w = e.list("writes");
            int[] parts = new int[w.size()];
            long[] values = new long[w.size()];
            for (int i = 0; i < w.size(); i++) {
                List<?> pv = (List<?>) w.get(i);
                parts[i] = ((Long) pv.get(0)).intValue();
                values[i] = (Long) pv.get(1);
            }
            Txn x = new Txn(id, e.str("tid"), e.proc(), "abort".equals(e.str("intent")), parts, values, e.t());
            if (txns.putIfAbsent(id, x) != null) {
                throw new IllegalArgumentException("line " + e.line() + ": transaction " + id + " invoked twice");
            }
            for (long v : values) {
                if (byValue.putIfAbsent(v, x) != null) {
                    throw new IllegalArgumentException("line " + e.line() + ": value " + v + " written twice");
                }
            }
            return;
        }
        Txn x = txns.get(id);
        if (x == null) {
            throw new IllegalArgumentException("line " + e.line() + ": completion of transaction " + id + " never invoked");
        }
        String outcome = e.str("outcome");
        x.outcome = outcome == null ? "unknown" : outcome;
        for (Object o : e.list("offsets")) {
            List<?> a = (List<?>) o;
            int part = ((Long) a.get(0)).intValue();
            long v = (Long) a.get(1);
            long off = (Long) a.get(2);
            x.ackOffset.put(v, off);
            observe(part, off, v, e, "acknowledged");
        }
    }

    private void poll(Event e) {
        String reader = e.str("reader");
        boolean committed = TxnWorkload.READ_COMMITTED.equals(e.str("isolation"));
        boolean isFinal = TxnWorkload.FINAL.equals(e.proc());
        for (Object o : e.list("reads")) {
            List<?> r = (List<?>) o;
            int part = ((Long) r.get(0)).intValue();
            long off = (Long) r.get(1);
            long v = (Long) r.get(2);
            if (v < 0) {
                continue;
            }
            observe(part, off, v, e, "read by " + e.proc());
            if (isFinal) {
                finalOffset.putIfAbsent(v, off);
            }
            if (!committed) {
                Txn x = byValue.get(v);
                if (x != null && (x.commitAskedT < 0 || x.commitAskedT > e.t())) {
                    // Read before any commit was asked for: open data (or aborted data) as read_uncommitted allows.
                    if (x.abortIntent) {
                        abortedReadsUncommitted++;
                    } else {
                        openReadsUncommitted++;
                    }
                }
                uncommittedReads++;
                continue;
            }
            committedReads.add(new Read(reader, part, off, v, e.t(), e.where()));
            if (!isFinal) {
                seenBy.computeIfAbsent(reader, k -> new HashSet<>()).add(v);
                String key = e.proc() + '\0' + part;
                Long last = lastRead.get(key);
                if (last != null && off <= last) {
                    pending.add(new String[] {"txn-reordered", e.where() + ": " + TxnWorkload.TOPIC + "-" + part
                        + " offset " + off + " read after " + last});
                }
                lastRead.put(key, off);
            }
        }
    }

    private void observe(int part, long off, long v, Event e, String how) {
        long key = ((long) part << 40) | off;
        Long had = offsetValue.putIfAbsent(key, v);
        if (had != null && had != v && inconsistentCounted.add(key)) {
            pending.add(new String[] {"txn-inconsistent-offset", e.where() + ": " + TxnWorkload.TOPIC + "-" + part
                + " offset " + off + " " + how + " holds " + v + ", seen before holding " + had});
        }
        Long first = placement.putIfAbsent(v, key);
        if (first != null && first != key && duplicateCounted.add(v)) {
            pending.add(new String[] {"txn-duplicate", e.where() + ": value " + v + " " + how + " at "
                + TxnWorkload.TOPIC + "-" + part + " offset " + off + ", seen before at " + TxnWorkload.TOPIC + "-"
                + (first >>> 40) + " offset " + (first & ((1L << 40) - 1))});
        }
    }

    @Override
    public void finish(CheckResult r) {
        for (String k : ANOMALIES) {
            r.declare(k);
        }
        if (txns.isEmpty()) {
            return;
        }
        for (String[] p : pending) {
            r.count(p[0], p[1]);
        }
        Set<String> abortedCounted = new HashSet<>();
        Set<String> uncommittedCounted = new HashSet<>();
        for (Read rd : committedReads) {
            Txn x = byValue.get(rd.value());
            if (x == null) {
                continue; // not a value of this workload's
            }
            String key = rd.reader() + '\0' + rd.value();
            if ("aborted".equals(x.outcome)) {
                if (abortedCounted.add(key)) {
                    r.count("txn-aborted-read", rd.where() + ": value " + rd.value() + " at " + TxnWorkload.TOPIC + "-"
                        + rd.part() + " offset " + rd.offset() + " of " + x.describe());
                }
            } else if (x.commitAskedT < 0 || x.commitAskedT > rd.t()) {
                if (uncommittedCounted.add(key)) {
                    r.count("txn-uncommitted-read", rd.where() + ": value " + rd.value() + " at " + TxnWorkload.TOPIC
                        + "-" + rd.part() + " offset " + rd.offset() + " of " + x.describe() + (x.commitAskedT < 0
                        ? ", whose commit was never asked for" : String.format(Locale.ROOT,
                        ", whose commit was asked for only at t=%.3fs", x.commitAskedT / 1e9)));
                }
            }
        }
        long committed = 0;
        long aborted = 0;
        long unknown = 0;
        long open = 0;
        long visibleUnknown = 0;
        Map<String, Map<Integer, long[]>> order = new HashMap<>(); // tid -> part -> {last offset, last value}
        for (Txn x : txns.values()) {
            switch (x.outcome == null ? "open" : x.outcome) {
                case "committed" -> committed++;
                case "aborted" -> aborted++;
                case "unknown" -> unknown++;
                default -> open++;
            }
            int present = 0;
            for (long v : x.values) {
                if (finalOffset.containsKey(v)) {
                    present++;
                }
            }
            boolean visible;
            if ("committed".equals(x.outcome)) {
                visible = true;
                for (int i = 0; i < x.values.length; i++) {
                    long v = x.values[i];
                    if (finalOffset.containsKey(v)) {
                        continue;
                    }
                    Long ack = x.ackOffset.get(v);
                    long[] end = finalEnds.get(x.parts[i]);
                    String what = "value " + v + " of " + x.describe() + " at " + TxnWorkload.TOPIC + "-" + x.parts[i]
                        + (ack == null ? "" : " offset " + ack);
                    if (!finalSeen || !finalComplete || end == null || ack == null || end[0] <= ack) {
                        r.count("txn-final-incomplete", what + ": the final read "
                            + (end == null ? "never read the partition" : "reached offset " + end[0]
                            + (finalComplete ? "" : " (incomplete)")));
                    } else {
                        r.count("txn-lost", what + ": not in the final read (which read up to offset " + end[0] + ")");
                    }
                }
            } else if (!"aborted".equals(x.outcome)) {
                visible = present > 0;
                if (present > 0) {
                    visibleUnknown++;
                }
                if (present > 0 && present < x.values.length && finalSeen && finalComplete) {
                    r.count("txn-partial", x.describe() + ": " + present + " of its " + x.values.length
                        + " values in the final read");
                }
            } else {
                visible = false;
            }
            if (visible) {
                for (Map.Entry<String, Set<Long>> s : seenBy.entrySet()) {
                    for (long v : x.values) {
                        if (finalOffset.containsKey(v) && !s.getValue().contains(v)) {
                            r.count("txn-unseen", "value " + v + " of " + x.describe() + ": never read by "
                                + s.getKey());
                        }
                    }
                }
            }
            Map<Integer, long[]> last = order.computeIfAbsent(x.tid, k -> new HashMap<>());
            for (int i = 0; i < x.values.length; i++) {
                Long off = finalOffset.get(x.values[i]);
                if (off == null) {
                    continue;
                }
                long[] prev = last.get(x.parts[i]);
                if (prev != null && off <= prev[0]) {
                    r.count("txn-reordered", String.format(Locale.ROOT, "%s: value %d of %s at %s-%d offset %d in the "
                        + "final read, but value %d sent before it is at offset %d", x.tid, x.values[i], x.describe(),
                        TxnWorkload.TOPIC, x.parts[i], off, prev[1], prev[0]));
                } else {
                    last.put(x.parts[i], new long[] {off, x.values[i]});
                }
            }
        }
        for (Map.Entry<Integer, long[]> en : finalEnds.entrySet()) {
            long[] e = en.getValue();
            if (e[0] < e[1]) {
                r.count("txn-hanging", String.format(Locale.ROOT, "%s-%d: last stable offset %d below the high "
                    + "watermark %d at the end", TxnWorkload.TOPIC, en.getKey(), e[0], e[1]));
            }
        }
        if (!finalSeen) {
            r.count("txn-final-incomplete", "no final read of " + TxnWorkload.TOPIC + " in the history");
        }
        r.stat("transactions", txns.size());
        r.stat("txn committed", committed);
        r.stat("txn aborted", aborted);
        r.stat("txn unknown outcome", unknown);
        r.stat("txn unknown and visible", visibleUnknown);
        r.stat("txn never completed", open);
        r.stat("txn read_committed reads", committedReads.size());
        r.stat("txn read_uncommitted reads", uncommittedReads);
        r.stat("txn read_uncommitted reads of open data", openReadsUncommitted);
        r.stat("txn read_uncommitted reads of aborted data", abortedReadsUncommitted);
        r.stat("txn final read values", finalOffset.size());
    }
}
