package dev.isthmus.bench.chaos;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The checks of the {@code append} workload (and of every consumer that reads its topic): from the producers'
 * {@code send} invocations and acknowledgements, every consumer's {@code poll} results, the consumers' position
 * resets ({@code assigned}, {@code revoked}, {@code assign}, {@code seek}) and the final read ({@code proc}
 * "final": {@code poll} results, then one {@code final-end} per topic with the end offset it read up to).
 *
 * <ul>
 *   <li><b>lost</b>: an acknowledged value absent from the final read of its partition (which covered its offset);</li>
 *   <li><b>duplicate</b>: a value seen (read or acknowledged) at two different places;</li>
 *   <li><b>reordered</b>: a producer's acknowledged value at an offset at or below that of a value it sent to the same
 *       partition before;</li>
 *   <li><b>inconsistent-offset</b>: one offset seen with two different values (by two readers, or a reader and an
 *       acknowledgement);</li>
 *   <li><b>poll-skip</b>: one consumer's consecutive reads of a partition jump from offset a to b while some reader or
 *       acknowledgement places data in between (control batches, which take an offset and are never returned, are
 *       not data);</li>
 *   <li><b>nonmonotonic-read</b>: one consumer reads offset b after a with b at or below a, without a reset between;</li>
 *   <li><b>unseen</b>: an acknowledged value that a reader set (the assigned reader, a group's members together) never
 *       saw, counted once per set; a set exists from its first {@code reader-start} or {@code member-up} event, so a
 *       set that never read anything at all counts every value;</li>
 *   <li><b>out-of-range</b>: a consumer was answered OFFSET_OUT_OF_RANGE (no retention or deletion runs on these topics,
 *       so a position a consumer reached is always in range);</li>
 *   <li><b>final-read-incomplete</b>: an acknowledged value the final read could not reach (its partition unreadable at
 *       the end): the run cannot say whether it was lost.</li>
 * </ul>
 *
 * <p>Values must be whole numbers in [0, 2^31) (the workload numbers them from 0). One thread.
 */
final class AppendCheck implements HistoryCheck {
    private static final String FINAL = "final";
    private static final int OK = 1;
    private static final int INFO = 2;
    private static final int FAIL = 3;

    private final Map<String, Integer> tpIndex = new HashMap<>();
    private final List<String> tpNames = new ArrayList<>();
    private final List<LongLongMap> offsetValue = new ArrayList<>();
    private final List<long[]> dataOffsets = new ArrayList<>();
    private final List<int[]> dataOffsetCount = new ArrayList<>();
    private final List<LongLongMap> finalValues = new ArrayList<>();
    private final Map<Integer, long[]> finalEnd = new HashMap<>(); // tp -> {end, complete 0/1}

    private final LongLongMap placement = new LongLongMap(); // value -> tp << 40 | offset
    private final BitSet duplicateCounted = new BitSet();
    private final LongLongMap inconsistentCounted = new LongLongMap();

    private final LongLongMap sendIndex = new LongLongMap(); // value -> index
    private int sends;
    private int[] sendTp = new int[1024];
    private long[] sendInvokeT = new long[1024];
    private byte[] sendStatus = new byte[1024];
    private long[] sendOffset = new long[1024];
    private long[] sendValue = new long[1024];
    private final Map<String, LongList> producerOrder = new LinkedHashMap<>();

    private final Map<String, BitSet> seenBySet = new LinkedHashMap<>();
    private final Map<String, BitSet> topicsBySet = new HashMap<>();
    private final Map<String, Long> lastRead = new HashMap<>(); // proc + '\0' + tp -> offset
    private final List<long[]> jumps = new ArrayList<>(); // {tp, from, to}
    private final List<String> jumpWhere = new ArrayList<>();
    private final Map<String, Integer> topicIndex = new HashMap<>();

    private long polls;
    private long recordsRead;
    private long finalRecords;

    private final List<String[]> pendingCounts = new ArrayList<>();

    @Override
    public void accept(Event e) {
        switch (e.f()) {
            case "send" -> send(e);
            case "poll" -> {
                if (e.ok()) {
                    poll(e);
                }
            }
            case "assigned", "revoked", "assign" -> {
                String topic = e.str("topic");
                for (Object p : e.list("parts")) {
                    lastRead.remove(streamKey(e.proc(), tp(topic, ((Long) p).intValue())));
                }
            }
            case "reader-start", "member-up" -> {
                // A reader set exists from its first member's start, whether or not it ever reads anything.
                String set = e.str("reader");
                if (set != null && e.str("topic") != null) {
                    tp(e.str("topic"), 0);
                    seenBySet.computeIfAbsent(set, k -> new BitSet());
                    topicsBySet.computeIfAbsent(set, k -> new BitSet()).set(topicIndex.get(e.str("topic")));
                }
            }
            case "seek" -> lastRead.remove(streamKey(e.proc(), tp(e.str("topic"), (int) e.num("part"))));
            case "out-of-range" -> {
                int tp = tp(e.str("topic"), (int) e.num("part"));
                lastRead.remove(streamKey(e.proc(), tp));
                pendingCounts.add(new String[] {"out-of-range", e.where() + ": " + tpNames.get(tp) + " offset "
                    + e.num("offset", -1) + " out of range"});
            }
            case "final-end" -> {
                String topic = e.str("topic");
                boolean complete = !Boolean.FALSE.equals(e.fields().get("complete"));
                for (Map.Entry<String, Object> en : e.map("ends").entrySet()) {
                    int tp = tp(topic, Integer.parseInt(en.getKey()));
                    finalEnd.put(tp, new long[] {((Number) en.getValue()).longValue(), complete ? 1 : 0});
                }
            }
            default -> {
            }
        }
    }

    private static String streamKey(String proc, int tp) {
        return proc + '\0' + tp;
    }

    private int tp(String topic, int part) {
        String name = topic + "-" + part;
        Integer i = tpIndex.get(name);
        if (i == null) {
            i = tpNames.size();
            tpIndex.put(name, i);
            tpNames.add(name);
            offsetValue.add(new LongLongMap());
            dataOffsets.add(new long[16]);
            dataOffsetCount.add(new int[1]);
            finalValues.add(new LongLongMap());
            topicIndex.computeIfAbsent(topic, k -> topicIndex.size());
        }
        return i;
    }

    private static long value(Object v, Event e) {
        long x = v instanceof Long l ? l : Long.parseLong(v.toString());
        if (x < 0 || x > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("line " + e.line() + ": value " + x + " outside [0, 2^31)");
        }
        return x;
    }

    private void send(Event e) {
        long v = value(e.fields().get("value"), e);
        if (e.invoke()) {
            int tp = tp(e.str("topic"), (int) e.num("part"));
            if (sendIndex.get(v) != LongLongMap.MISSING) {
                throw new IllegalArgumentException("line " + e.line() + ": value " + v + " sent twice");
            }
            if (sends == sendTp.length) {
                int n = sends * 2;
                sendTp = Arrays.copyOf(sendTp, n);
                sendInvokeT = Arrays.copyOf(sendInvokeT, n);
                sendStatus = Arrays.copyOf(sendStatus, n);
                sendOffset = Arrays.copyOf(sendOffset, n);
                sendValue = Arrays.copyOf(sendValue, n);
            }
            sendIndex.put(v, sends);
            sendTp[sends] = tp;
            sendInvokeT[sends] = e.t();
            sendOffset[sends] = -1;
            sendValue[sends] = v;
            producerOrder.computeIfAbsent(e.proc(), k -> new LongList()).add(sends);
            sends++;
            return;
        }
        long idx = sendIndex.get(v);
        if (idx == LongLongMap.MISSING) {
            throw new IllegalArgumentException("line " + e.line() + ": completion of value " + v + " never invoked");
        }
        int i = (int) idx;
        if (e.ok()) {
            sendStatus[i] = OK;
            long off = e.num("offset");
            sendOffset[i] = off;
            observe(sendTp[i], off, v, e, "acknowledged");
        } else {
            sendStatus[i] = (byte) (e.type().equals("fail") ? FAIL : INFO);
        }
    }

    private void poll(Event e) {
        String topic = e.str("topic");
        String set = e.proc().equals(FINAL) ? null : e.str("reader");
        if (set == null && !e.proc().equals(FINAL)) {
            set = e.proc();
        }
        polls++;
        for (Object o : e.list("reads")) {
            List<?> r = (List<?>) o;
            int tp = tp(topic, ((Long) r.get(0)).intValue());
            long off = (Long) r.get(1);
            if (r.get(2) instanceof Long raw && raw < 0) {
                continue; // a record that holds no value of the workload's
            }
            long v = value(r.get(2), e);
            observe(tp, off, v, e, "read by " + e.proc());
            if (set == null) {
                finalRecords++;
                finalValues.get(tp).putIfAbsent(v, off);
                continue;
            }
            recordsRead++;
            seenBySet.computeIfAbsent(set, k -> new BitSet()).set((int) v);
            topicsBySet.computeIfAbsent(set, k -> new BitSet()).set(topicIndex.get(topic));
            String key = streamKey(e.proc(), tp);
            Long last = lastRead.get(key);
            if (last != null) {
                if (off <= last) {
                    pendingCounts.add(new String[] {"nonmonotonic-read", e.where() + ": " + tpNames.get(tp)
                        + " offset " + off + " after " + last});
                } else if (off > last + 1) {
                    jumps.add(new long[] {tp, last, off});
                    jumpWhere.add(e.where());
                }
            }
            lastRead.put(key, off);
        }
    }

    /** Value {@code v} is at {@code off} of {@code tp}, as a read or acknowledgement says. */
    private void observe(int tp, long off, long v, Event e, String how) {
        LongLongMap ov = offsetValue.get(tp);
        long had = ov.get(off);
        if (had == LongLongMap.MISSING) {
            ov.put(off, v);
            addDataOffset(tp, off);
        } else if (had != v) {
            long key = ((long) tp << 40) | off;
            if (inconsistentCounted.get(key) == LongLongMap.MISSING) {
                inconsistentCounted.put(key, 1);
                pendingCounts.add(new String[] {"inconsistent-offset", e.where() + ": " + tpNames.get(tp) + " offset "
                    + off + " " + how + " holds " + v + ", seen before holding " + had});
            }
        }
        long place = ((long) tp << 40) | off;
        long first = placement.putIfAbsent(v, place);
        if (first != place && !duplicateCounted.get((int) v)) {
            duplicateCounted.set((int) v);
            pendingCounts.add(new String[] {"duplicate", e.where() + ": value " + v + " " + how + " at "
                + tpNames.get(tp) + " offset " + off + ", seen before at " + tpNames.get((int) (first >>> 40))
                + " offset " + (first & ((1L << 40) - 1))});
        }
    }

    private void addDataOffset(int tp, long off) {
        long[] a = dataOffsets.get(tp);
        int[] n = dataOffsetCount.get(tp);
        if (n[0] == a.length) {
            a = Arrays.copyOf(a, a.length * 2);
            dataOffsets.set(tp, a);
        }
        a[n[0]++] = off;
    }

    @Override
    public void finish(CheckResult r) {
        for (String k : List.of("lost", "duplicate", "reordered", "inconsistent-offset", "poll-skip",
                "nonmonotonic-read", "unseen", "out-of-range", "final-read-incomplete")) {
            r.declare(k);
        }
        for (String[] c : pendingCounts) {
            r.count(c[0], c[1]);
        }
        // Sorted, distinct data offsets per partition, for the skip check.
        for (int tp = 0; tp < tpNames.size(); tp++) {
            long[] a = Arrays.copyOf(dataOffsets.get(tp), dataOffsetCount.get(tp)[0]);
            Arrays.sort(a);
            int w = 0;
            for (int i = 0; i < a.length; i++) {
                if (w == 0 || a[i] != a[w - 1]) {
                    a[w++] = a[i];
                }
            }
            dataOffsets.set(tp, Arrays.copyOf(a, w));
        }
        for (int j = 0; j < jumps.size(); j++) {
            long[] jump = jumps.get(j);
            long[] a = dataOffsets.get((int) jump[0]);
            int i = Arrays.binarySearch(a, jump[1] + 1);
            int at = i >= 0 ? i : -i - 1;
            if (at < a.length && a[at] < jump[2]) {
                r.count("poll-skip", jumpWhere.get(j) + ": " + tpNames.get((int) jump[0]) + " read offset " + jump[2]
                    + " right after " + jump[1] + ", skipping data at offset " + a[at]);
            }
        }
        long acked = 0;
        long info = 0;
        long failed = 0;
        long open = 0;
        for (int i = 0; i < sends; i++) {
            switch (sendStatus[i]) {
                case OK -> acked++;
                case INFO -> info++;
                case FAIL -> failed++;
                default -> open++;
            }
            if (sendStatus[i] != OK) {
                continue;
            }
            int tp = sendTp[i];
            long v = sendValue[i];
            long[] end = finalEnd.get(tp);
            String what = String.format(Locale.ROOT, "value %d acknowledged at %s offset %d (sent at t=%.3fs)", v,
                tpNames.get(tp), sendOffset[i], sendInvokeT[i] / 1e9);
            if (finalValues.get(tp).get(v) == LongLongMap.MISSING) {
                if (end == null || end[1] == 0 || end[0] <= sendOffset[i]) {
                    r.count("final-read-incomplete", what + (end == null ? ": the final read never read it"
                        : ": the final read reached offset " + end[0] + (end[1] == 0 ? " (incomplete)" : "")));
                } else {
                    r.count("lost", what + ": not in the final read (which read up to offset " + end[0] + ")");
                }
            }
            int topic = topicIndex.get(tpNames.get(tp).substring(0, tpNames.get(tp).lastIndexOf('-')));
            for (Map.Entry<String, BitSet> s : seenBySet.entrySet()) {
                BitSet topics = topicsBySet.get(s.getKey());
                if (topics != null && topics.get(topic) && !s.getValue().get((int) v)) {
                    r.count("unseen", what + ": never seen by " + s.getKey());
                }
            }
        }
        for (Map.Entry<String, LongList> p : producerOrder.entrySet()) {
            Map<Integer, Long> last = new HashMap<>();
            Map<Integer, Long> lastValue = new HashMap<>();
            LongList l = p.getValue();
            for (int k = 0; k < l.size(); k++) {
                int i = (int) l.get(k);
                if (sendStatus[i] != OK) {
                    continue;
                }
                Long prev = last.get(sendTp[i]);
                if (prev != null && sendOffset[i] <= prev) {
                    r.count("reordered", String.format(Locale.ROOT, "%s: value %d acknowledged at %s offset %d, but "
                        + "value %d sent before it is at offset %d", p.getKey(), sendValue[i], tpNames.get(sendTp[i]),
                        sendOffset[i], lastValue.get(sendTp[i]), prev));
                }
                if (prev == null || sendOffset[i] > prev) {
                    last.put(sendTp[i], sendOffset[i]);
                    lastValue.put(sendTp[i], sendValue[i]);
                }
            }
        }
        r.stat("sends", sends);
        r.stat("acknowledged", acked);
        r.stat("indefinite", info);
        r.stat("failed", failed);
        r.stat("never completed", open);
        r.stat("polls", polls);
        r.stat("records read", recordsRead);
        r.stat("final read records", finalRecords);
    }

    /** A growable list of longs. */
    static final class LongList {
        private long[] a = new long[16];
        private int n;

        void add(long v) {
            if (n == a.length) {
                a = Arrays.copyOf(a, n * 2);
            }
            a[n++] = v;
        }

        long get(int i) {
            return a[i];
        }

        int size() {
            return n;
        }
    }
}
