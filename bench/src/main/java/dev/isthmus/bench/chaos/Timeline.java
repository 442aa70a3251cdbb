package dev.isthmus.bench.chaos;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The run over time, from its history: per second the acknowledged writes, the produce-to-ack latency of the
 * writes acknowledged in that second (p50, p99, max) and the errors (failed or indefinite sends, failed polls
 * and commits); the fault windows; and per fault its recovery time.
 *
 * <p><b>Recovery time</b> of a fault: from the fault's start to the moment every partition of the append topic
 * has acknowledged a write sent after the start (for each partition, the first acknowledgement of a write
 * invoked at or after the start; the fault's recovery is the latest of them). <b>Restart to ack</b>: the same
 * from the fault's end (the node restarted, resumed, the network healed): for kill faults, restart to the
 * first acknowledged produce. Faults after which some partition never acknowledged a write again count as not
 * recovered. Also the longest stretch without any acknowledgement.
 *
 * <p>Built once from a file; immutable after. Any thread.
 */
final class Timeline {

    /** One second of the run. */
    record Second(long acks, long sendErrors, long clientErrors, double p50Ms, double p99Ms, double maxMs) {
    }

    /** One fault: its window, and how long the cluster took to acknowledge writes again. */
    record FaultWindow(int index, String fault, String detail, long startNs, long endNs, double recoverySec,
                       double restartToAckSec, double restartToReadySec, String steps) {
    }

    final List<Second> seconds;
    final List<FaultWindow> faults;
    final long longestNoAckNs;
    final long longestNoAckAtNs;
    final long endNs;

    private Timeline(List<Second> seconds, List<FaultWindow> faults, long longestNoAckNs, long longestNoAckAtNs, long endNs) {
        this.seconds = seconds;
        this.faults = faults;
        this.longestNoAckNs = longestNoAckNs;
        this.longestNoAckAtNs = longestNoAckAtNs;
        this.endNs = endNs;
    }

    static Timeline read(Path history) {
        Map<Long, long[]> invoked = new HashMap<>(); // value -> {t, partition}
        Map<Integer, List<long[]>> acksByPart = new TreeMap<>(); // partition -> {invokeT, okT}
        Map<Integer, List<Double>> latencies = new HashMap<>();
        Map<Integer, long[]> counts = new HashMap<>(); // second -> {acks, sendErrors, clientErrors}
        List<long[]> ackTimes = new ArrayList<>();
        List<Object[]> starts = new ArrayList<>(); // {index, fault, detail, t}
        Map<Long, Long> ends = new HashMap<>();
        List<Long> readyTimes = new ArrayList<>();
        Map<Long, Map<String, Long>> steps = new HashMap<>(); // fault index -> recovery step -> ms after the restart
        long last = 0;
        try (BufferedReader r = Files.newBufferedReader(history, StandardCharsets.UTF_8)) {
            String line;
            long n = 0;
            while ((line = r.readLine()) != null) {
                n++;
                if (line.isBlank()) {
                    continue;
                }
                Event e = Event.parse(line, n);
                last = Math.max(last, e.t());
                int sec = (int) (e.t() / 1_000_000_000L);
                switch (e.f()) {
                    case "send" -> {
                        if (!Workloads.APPEND_TOPIC.equals(e.str("topic"))) {
                            break;
                        }
                        long v = e.num("value");
                        if (e.invoke()) {
                            invoked.put(v, new long[] {e.t(), e.num("part")});
                        } else {
                            long[] inv = invoked.remove(v);
                            if (inv == null) {
                                break;
                            }
                            if (e.ok()) {
                                counts.computeIfAbsent(sec, k -> new long[3])[0]++;
                                latencies.computeIfAbsent(sec, k -> new ArrayList<>()).add((e.t() - inv[0]) / 1e6);
                                acksByPart.computeIfAbsent((int) inv[1], k -> new ArrayList<>()).add(new long[] {inv[0], e.t()});
                                ackTimes.add(new long[] {e.t()});
                            } else {
                                counts.computeIfAbsent(sec, k -> new long[3])[1]++;
                            }
                        }
                    }
                    case "poll", "commit", "txn-poll" -> {
                        if (e.has("error") || e.type().equals("fail")) {
                            counts.computeIfAbsent(sec, k -> new long[3])[2]++;
                        }
                    }
                    case "fault-start" -> starts.add(new Object[] {e.num("index"), e.str("fault"), e.str("detail"), e.t(),
                        (long) e.list("nodes").size()});
                    case "recovery-step" -> steps.computeIfAbsent(e.num("index"), k -> new LinkedHashMap<>())
                        .put(e.str("step"), e.num("ms"));
                    case "fault-end" -> ends.put(e.num("index"), e.t());
                    case "node-ready" -> readyTimes.add(e.t());
                    default -> {
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the history " + history + ": " + e.getMessage(), e);
        }
        int secs = (int) (last / 1_000_000_000L) + 1;
        List<Second> seconds = new ArrayList<>();
        for (int s = 0; s < secs; s++) {
            long[] c = counts.getOrDefault(s, new long[3]);
            List<Double> l = latencies.getOrDefault(s, List.of());
            double[] a = l.stream().mapToDouble(Double::doubleValue).sorted().toArray();
            seconds.add(new Second(c[0], c[1], c[2], pct(a, 50), pct(a, 99), a.length == 0 ? Double.NaN : a[a.length - 1]));
        }
        List<FaultWindow> faults = new ArrayList<>();
        for (Object[] s : starts) {
            long index = (Long) s[0];
            long t = (Long) s[3];
            Long end = ends.get(index);
            long e = end == null ? t : end;
            double ready = Double.NaN;
            double allReady = Double.NaN;
            if (((String) s[1]).contains("kill") || ((String) s[1]).equals("torn-write")) {
                int n = 0;
                for (long r : readyTimes) {
                    if (r >= e) {
                        if (n == 0) {
                            ready = (r - e) / 1e9;
                        }
                        if (++n == (Long) s[4]) {
                            allReady = (r - e) / 1e9;
                            break;
                        }
                    }
                }
            }
            double back = recovery(acksByPart, e);
            Map<String, Long> st = steps.get(index);
            String stepText = "";
            if (st != null || !Double.isNaN(allReady)) {
                StringBuilder sb = new StringBuilder("restart ->");
                if (!Double.isNaN(allReady)) {
                    sb.append(String.format(Locale.ROOT, " %s ready %.2f s,", (Long) s[4] > 1 ? "all" : "node", allReady));
                }
                if (st != null) {
                    st.entrySet().stream().sorted(Map.Entry.comparingByValue())
                        .forEach(x -> sb.append(String.format(Locale.ROOT, " %s %.2f s,", x.getKey(), x.getValue() / 1e3)));
                }
                sb.append(" acked ").append(s(back)).append(" s");
                stepText = sb.toString();
            }
            faults.add(new FaultWindow((int) index, (String) s[1], (String) s[2], t, e, recovery(acksByPart, t),
                back, ready, stepText));
        }
        ackTimes.sort((x, y) -> Long.compare(x[0], y[0]));
        long gap = 0;
        long gapAt = 0;
        for (int i = 1; i < ackTimes.size(); i++) {
            long g = ackTimes.get(i)[0] - ackTimes.get(i - 1)[0];
            if (g > gap) {
                gap = g;
                gapAt = ackTimes.get(i - 1)[0];
            }
        }
        return new Timeline(seconds, faults, gap, gapAt, last);
    }

    /** Seconds from {@code t} until every partition acknowledged a write invoked at or after {@code t}; NaN if never. */
    private static double recovery(Map<Integer, List<long[]>> acksByPart, long t) {
        if (acksByPart.isEmpty()) {
            return Double.NaN;
        }
        long latest = t;
        for (List<long[]> acks : acksByPart.values()) {
            long first = Long.MAX_VALUE;
            for (long[] a : acks) { // in completion order
                if (a[1] >= t && a[0] >= t) {
                    first = a[1];
                    break;
                }
            }
            if (first == Long.MAX_VALUE) {
                return Double.NaN;
            }
            latest = Math.max(latest, first);
        }
        return (latest - t) / 1e9;
    }

    static double pct(double[] sorted, double p) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        int i = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    /** Recovery percentiles per fault kind and over all: kind -> "n p50 p90 p99 max" of fault->ack and restart->ack. */
    Map<String, double[][]> recoveryStats() {
        Map<String, List<double[]>> byKind = new LinkedHashMap<>();
        for (FaultWindow f : faults) {
            double[] row = {f.recoverySec(), f.restartToAckSec(), f.restartToReadySec()};
            byKind.computeIfAbsent(f.fault(), k -> new ArrayList<>()).add(row);
            byKind.computeIfAbsent("all", k -> new ArrayList<>()).add(row);
        }
        Map<String, double[][]> out = new LinkedHashMap<>();
        for (Map.Entry<String, List<double[]>> e : byKind.entrySet()) {
            out.put(e.getKey(), new double[][] {stats(e.getValue(), 0), stats(e.getValue(), 1), stats(e.getValue(), 2)});
        }
        return out;
    }

    /** {count, not recovered, p50, p90, p99, max} of column {@code col}. */
    private static double[] stats(List<double[]> rows, int col) {
        double[] v = rows.stream().mapToDouble(r -> r[col]).filter(d -> !Double.isNaN(d)).sorted().toArray();
        return new double[] {rows.size(), rows.size() - v.length, pct(v, 50), pct(v, 90), pct(v, 99),
            v.length == 0 ? Double.NaN : v[v.length - 1]};
    }

    /**
     * The recovery table, one line per fault kind and one for all: fault to first ack, restart (or heal) to first
     * ack, and for faults that restart a node, restart to the node's /ready.
     */
    String recoveryTable() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%-17s %4s %4s | %-28s | %-28s | %-20s%n", "", "", "not",
            "fault -> first ack (s)", "restart/heal -> first ack (s)", "restart -> ready (s)"));
        sb.append(String.format(Locale.ROOT, "%-17s %4s %4s | %6s %6s %6s %7s | %6s %6s %6s %7s | %6s %6s %6s%n", "fault",
            "n", "rec.", "p50", "p90", "p99", "max", "p50", "p90", "p99", "max", "p50", "p99", "max"));
        for (Map.Entry<String, double[][]> e : recoveryStats().entrySet()) {
            double[] a = e.getValue()[0];
            double[] b = e.getValue()[1];
            double[] c = e.getValue()[2];
            sb.append(String.format(Locale.ROOT, "%-17s %4d %4d | %6s %6s %6s %7s | %6s %6s %6s %7s | %6s %6s %6s%n",
                e.getKey(), (long) a[0], (long) a[1], s(a[2]), s(a[3]), s(a[4]), s(a[5]), s(b[2]), s(b[3]), s(b[4]),
                s(b[5]), s(c[2]), s(c[4]), s(c[5])));
        }
        sb.append(String.format(Locale.ROOT, "longest stretch without any acknowledged write: %.1f s (from t=%.1f s)%n",
            longestNoAckNs / 1e9, longestNoAckAtNs / 1e9));
        return sb.toString();
    }

    /** The faults one per line: when, what, and its recovery. */
    String faultList() {
        StringBuilder sb = new StringBuilder();
        for (FaultWindow f : faults) {
            sb.append(String.format(Locale.ROOT, "#%-3d t=%7.1f-%7.1f s %-17s fault->ack %6s s, restart->ack %6s s%s  %s%n",
                f.index(), f.startNs() / 1e9, f.endNs() / 1e9, f.fault(), s(f.recoverySec()), s(f.restartToAckSec()),
                Double.isNaN(f.restartToReadySec()) ? "" : " (ready after " + s(f.restartToReadySec()) + " s)", f.detail()));
            if (!f.steps().isEmpty()) {
                sb.append("     ").append(f.steps()).append('\n');
            }
        }
        return sb.toString();
    }

    static String s(double v) {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.2f", v);
    }

    double[] column(java.util.function.ToDoubleFunction<Second> f) {
        return seconds.stream().mapToDouble(f).toArray();
    }

    static double max(double[] a) {
        return Arrays.stream(a).filter(d -> !Double.isNaN(d)).max().orElse(0);
    }
}
