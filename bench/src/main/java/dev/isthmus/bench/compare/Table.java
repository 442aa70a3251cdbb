package dev.isthmus.bench.compare;

import org.HdrHistogram.Histogram;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * The side-by-side table (rows grouped by workload: suite, then rate; brokers in run order) and the checks of
 * issue 8's and issue 18's targets, as plain text. Stateless.
 */
final class Table {

    static final double[] PERCENTILES = {50, 99, 99.9, 99.99};

    /** Issue 8: Isthmus's p99.9 at this rate is compared with both Kafkas'; issue 18's per-record targets too. */
    static final long TARGET_RATE_PER_SEC = 20_000;

    /** Issue 18: heap allocated per record at most 0.05 KB. */
    static final double HEAP_TARGET_BYTES_PER_RECORD = 0.05 * 1024;

    private static final String TXN_ROW = "%-17s %-11s %8s %7s |%7s%7s%7s%8s |%7s%7s%8s%n";

    private static final String ROW =
        "%-17s %-11s %8s |%7s%7s%7s%7s%8s |%7s%7s%7s%7s%8s |%6s%8s%9s%8s%13s |%6s  %s%n";

    private Table() {
    }

    /** Milliseconds from nanoseconds, with about three significant digits. */
    static String ms(long ns) {
        double v = ns / 1e6;
        if (v < 10) {
            return String.format(Locale.ROOT, "%.2f", v);
        }
        if (v < 100) {
            return String.format(Locale.ROOT, "%.1f", v);
        }
        return String.format(Locale.ROOT, "%.0f", v);
    }

    static List<Row> sorted(List<Row> rows) {
        List<Row> s = new ArrayList<>(rows);
        s.sort(Comparator.comparing(Row::suite)
            .thenComparingLong((Row r) -> r.ratePerSec() == 0 ? Long.MAX_VALUE : r.ratePerSec())
            .thenComparing(Row::broker));
        return s;
    }

    static String render(List<Row> rows) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%-38s |%-36s |%-36s |%-44s |%n", "",
            " produce -> ack (ms)", " produce -> consume, end to end (ms)", " broker"));
        sb.append(String.format(Locale.ROOT, ROW, "workload", "broker", "rec/s", "p50", "p99", "p99.9", "p99.99",
            "max", "p50", "p99", "p99.9", "p99.99", "max", "CPU%", "s/Mrec", "B/rec", "RSS MiB", "pause ms >1",
            "other", "notes"));
        Spec last = null;
        for (Row r : sorted(rows)) {
            if (last != null && !r.spec().equals(last)) {
                sb.append('\n');
            }
            last = r.spec();
            Histogram a = r.result().ack();
            Histogram e = r.result().e2e();
            sb.append(String.format(Locale.ROOT, ROW, r.workload(), r.broker().label,
                String.format(Locale.ROOT, "%,.0f", r.result().throughputPerSec()),
                pct(a, 50), pct(a, 99), pct(a, 99.9), pct(a, 99.99), ms(a.getMaxValue()),
                pct(e, 50), pct(e, 99), pct(e, 99.9), pct(e, 99.99), ms(e.getMaxValue()),
                String.format(Locale.ROOT, "%.0f", r.cpuPercent()),
                cpuPerMillion(r.cpuSecondsPerMillion()),
                Double.isNaN(r.heapBytesPerRecord()) ? "-" : String.format(Locale.ROOT, "%,.0f", r.heapBytesPerRecord()),
                String.format(Locale.ROOT, "%,d", r.peakRssBytes() >> 20),
                r.pauses().count() == 0 ? "none" : ms(r.pauses().maxNs()) + " " + r.pauses().over1msCount(),
                String.format(Locale.ROOT, "%.0f%%", r.otherCpuPercent()), r.notes()));
        }
        List<Row> txn = sorted(rows).stream().filter(r -> r.suite() == Suite.TXN).toList();
        if (!txn.isEmpty()) {
            sb.append('\n').append("Transactions: commit = commitTransaction's call to its return (ms), of the commits "
                + "started in the window; end to end = send to a read_committed consumer's poll (ms)\n");
            sb.append(String.format(Locale.ROOT, "%-38s %7s |%-29s |%-22s%n", "", "", " commit (ms)",
                " end to end (ms)"));
            sb.append(String.format(Locale.ROOT, TXN_ROW, "workload", "broker", "rec/s", "txn/s", "p50", "p99",
                "p99.9", "max", "p50", "p99", "p99.9"));
            for (Row r : txn) {
                Histogram c = r.result().commit();
                Histogram e = r.result().e2e();
                sb.append(String.format(Locale.ROOT, TXN_ROW, r.workload(), r.broker().label,
                    String.format(Locale.ROOT, "%,.0f", r.result().throughputPerSec()),
                    String.format(Locale.ROOT, "%,.0f", r.result().commitsPerSec()),
                    pct(c, 50), pct(c, 99), pct(c, 99.9), c.getTotalCount() == 0 ? "-" : ms(c.getMaxValue()),
                    pct(e, 50), pct(e, 99), pct(e, 99.9)));
            }
        }
        return sb.toString();
    }

    /**
     * Issue 19's targets (transactions at 20k/s: commit p99 and read_committed end-to-end p99.9 at or below default
     * Kafka's) and issue 20's (SASL_SSL: saturation at least default Kafka's, 20k/s end-to-end p99.9 below it), each
     * on one line ending in MET or MISSED; only those whose workloads ran (an empty list when none did).
     */
    static List<String> issue19And20Targets(List<Row> rows) {
        List<String> out = new ArrayList<>();
        Optional<Row> it = find(rows, BrokerKind.ISTHMUS, Suite.TXN, TARGET_RATE_PER_SEC);
        Optional<Row> kt = find(rows, BrokerKind.KAFKA, Suite.TXN, TARGET_RATE_PER_SEC);
        Optional<Row> noCommit = it.isPresent() && kt.isPresent() ? Stream.of(it.get(), kt.get())
            .filter(r -> r.result().commit().getTotalCount() == 0 || r.result().e2e().getTotalCount() == 0).findFirst()
            : Optional.empty();
        if (noCommit.isPresent()) {
            out.add("txn 20k/s: commit p99 and read_committed end-to-end p99.9 at or below default Kafka's: not judged ("
                + noCommit.get().broker().label + " committed or delivered no transaction intended in the window: "
                + noCommit.get().notes() + ")");
        } else if (it.isPresent() && kt.isPresent()) {
            long a = it.get().result().commit().getValueAtPercentile(99);
            long b = kt.get().result().commit().getValueAtPercentile(99);
            out.add(verdict(String.format(Locale.ROOT, "txn 20k/s: commit p99 at or below default Kafka's: Isthmus %s "
                + "ms vs %s ms", ms(a), ms(b)), a <= b));
            a = p999(it.get(), "e2e");
            b = p999(kt.get(), "e2e");
            out.add(verdict(String.format(Locale.ROOT, "txn 20k/s: read_committed end-to-end p99.9 at or below default "
                + "Kafka's: Isthmus %s ms vs %s ms", ms(a), ms(b)), a <= b));
        } else if (rows.stream().anyMatch(r -> r.suite() == Suite.TXN)) {
            out.add("txn 20k/s: commit p99 and read_committed end-to-end p99.9 at or below default Kafka's: not "
                + "measured (needs isthmus and kafka on txn at 20000/s)");
        }
        if (rows.stream().anyMatch(r -> r.suite() == Suite.SASL_SSL)) {
            Optional<Row> is = find(rows, BrokerKind.ISTHMUS, Suite.SASL_SSL, 0);
            Optional<Row> ks = find(rows, BrokerKind.KAFKA, Suite.SASL_SSL, 0);
            if (is.isPresent() && ks.isPresent()) {
                double a = is.get().result().throughputPerSec();
                double b = ks.get().result().throughputPerSec();
                out.add(verdict(String.format(Locale.ROOT, "sasl-ssl: saturation at least default Kafka's: Isthmus "
                    + "%,.0f vs %,.0f records/s", a, b), a >= b));
            } else {
                out.add("sasl-ssl: saturation at least default Kafka's: not measured (needs isthmus and kafka on "
                    + "sasl-ssl at saturation)");
            }
            Optional<Row> i20 = find(rows, BrokerKind.ISTHMUS, Suite.SASL_SSL, TARGET_RATE_PER_SEC);
            Optional<Row> k20 = find(rows, BrokerKind.KAFKA, Suite.SASL_SSL, TARGET_RATE_PER_SEC);
            if (i20.isPresent() && k20.isPresent()
                    && (i20.get().result().e2e().getTotalCount() == 0 || k20.get().result().e2e().getTotalCount() == 0)) {
                out.add("sasl-ssl 20k/s: end-to-end p99.9 below default Kafka's: not judged (a broker delivered no record "
                    + "intended in the window)");
            } else if (i20.isPresent() && k20.isPresent()) {
                long a = p999(i20.get(), "e2e");
                long b = p999(k20.get(), "e2e");
                out.add(verdict(String.format(Locale.ROOT, "sasl-ssl 20k/s: end-to-end p99.9 below default Kafka's: "
                    + "Isthmus %s ms vs %s ms", ms(a), ms(b)), a < b));
            } else {
                out.add("sasl-ssl 20k/s: end-to-end p99.9 below default Kafka's: not measured (needs isthmus and kafka "
                    + "on sasl-ssl at 20000/s)");
            }
        }
        return out;
    }

    /** CPU-seconds per million records with about three significant digits, "-" when unknown. */
    static String cpuPerMillion(double v) {
        if (Double.isNaN(v)) {
            return "-";
        }
        return v < 10 ? String.format(Locale.ROOT, "%.2f", v) : v < 100 ? String.format(Locale.ROOT, "%.1f", v)
            : String.format(Locale.ROOT, "%,.0f", v);
    }

    private static String pct(Histogram h, double p) {
        return h.getTotalCount() == 0 ? "-" : ms(h.getValueAtPercentile(p));
    }

    /**
     * Issue 8's targets (the single-partition suite), each on one line ending in MET, MISSED or "not measured".
     * Latency targets are checked on both latencies (end to end, and produce to ack); the e2e line comes first.
     */
    static List<String> targets(List<Row> rows, long isthmusMemoryBytes, long heapBytes) {
        List<String> out = new ArrayList<>();
        Optional<Row> i20 = find(rows, BrokerKind.ISTHMUS, Suite.SINGLE, TARGET_RATE_PER_SEC);
        Optional<Row> k20 = find(rows, BrokerKind.KAFKA, Suite.SINGLE, TARGET_RATE_PER_SEC);
        Optional<Row> f20 = find(rows, BrokerKind.KAFKA_FSYNC, Suite.SINGLE, TARGET_RATE_PER_SEC);
        for (String kind : List.of("e2e", "ack")) {
            String name = kind.equals("e2e") ? "end-to-end" : "produce->ack";
            if (i20.isPresent() && f20.isPresent()) {
                long is = p999(i20.get(), kind);
                long fs = p999(f20.get(), kind);
                out.add(verdict(String.format(Locale.ROOT, "p99.9 %s at 20k/s <= 1/10 of Kafka fsync's: Isthmus %s ms vs %s ms / 10 = %s ms",
                    name, ms(is), ms(fs), ms(fs / 10)), is <= fs / 10));
            } else {
                out.add("p99.9 " + name + " at 20k/s <= 1/10 of Kafka fsync's: not measured (needs isthmus and kafka-fsync at 20000/s)");
            }
            if (i20.isPresent() && k20.isPresent()) {
                long is = p999(i20.get(), kind);
                long ks = p999(k20.get(), kind);
                out.add(verdict(String.format(Locale.ROOT, "p99.9 %s at 20k/s below default Kafka's: Isthmus %s ms vs %s ms",
                    name, ms(is), ms(ks)), is < ks));
            } else {
                out.add("p99.9 " + name + " at 20k/s below default Kafka's: not measured (needs isthmus and kafka at 20000/s)");
            }
        }
        Optional<Row> is = find(rows, BrokerKind.ISTHMUS, Suite.SINGLE, 0);
        Optional<Row> ks = find(rows, BrokerKind.KAFKA, Suite.SINGLE, 0);
        Optional<Row> fs = find(rows, BrokerKind.KAFKA_FSYNC, Suite.SINGLE, 0);
        if (is.isPresent() && fs.isPresent()) {
            double a = is.get().result().throughputPerSec();
            double b = fs.get().result().throughputPerSec();
            out.add(verdict(String.format(Locale.ROOT, "saturation >= 2x Kafka fsync's: Isthmus %,.0f vs 2 x %,.0f = %,.0f records/s",
                a, b, 2 * b), a >= 2 * b));
        } else {
            out.add("saturation >= 2x Kafka fsync's: not measured (needs isthmus and kafka-fsync at saturation)");
        }
        if (is.isPresent() && ks.isPresent()) {
            double a = is.get().result().throughputPerSec();
            double b = ks.get().result().throughputPerSec();
            out.add(verdict(String.format(Locale.ROOT, "saturation >= default Kafka's: Isthmus %,.0f vs %,.0f records/s", a, b), a >= b));
        } else {
            out.add("saturation >= default Kafka's: not measured (needs isthmus and kafka at saturation)");
        }
        List<Row> isthmus = rows.stream().filter(r -> r.broker() == BrokerKind.ISTHMUS && !r.suite().onCluster()).toList();
        if (!isthmus.isEmpty()) {
            long peak = isthmus.stream().mapToLong(Row::peakRssBytes).max().orElse(0);
            long bound = isthmusMemoryBytes + heapBytes;
            out.add(verdict(String.format(Locale.ROOT, "Isthmus peak RSS within --memory + heap: %,d MiB vs %,d + %,d = %,d MiB",
                peak >> 20, isthmusMemoryBytes >> 20, heapBytes >> 20, bound >> 20), peak <= bound));
            Row worst = isthmus.stream().max(Comparator.comparingLong(r -> r.pauses().maxNs())).orElseThrow();
            long over = isthmus.stream().mapToLong(r -> r.pauses().over1msCount()).sum();
            long all = isthmus.stream().mapToLong(r -> r.pauses().count()).sum();
            out.add(verdict(all == 0
                ? "Isthmus: no JVM pause over 1 ms in steady state: no safepoint at all in the measurement windows"
                : String.format(Locale.ROOT, "Isthmus: no JVM pause over 1 ms in steady state: %d safepoints, longest %s ms (%s, at %s), %d over 1 ms",
                    all, ms(worst.pauses().maxNs()), worst.pauses().maxCause(), worst.workload(), over), over == 0));
        }
        return out;
    }

    /**
     * Issue 18's targets, each on one line ending in MET, MISSED, "not judged" or "not measured", then a line
     * counting the windows with no stalled-CPU second.
     *
     * @param fsync the device's fdatasync latency measured in the same run, or null when it was not
     */
    static List<String> issue18Targets(List<Row> rows, FsyncProbe.Result fsync) {
        List<String> out = new ArrayList<>();
        Optional<Row> i20 = find(rows, BrokerKind.ISTHMUS, Suite.SINGLE, TARGET_RATE_PER_SEC);
        Optional<Row> k20 = find(rows, BrokerKind.KAFKA, Suite.SINGLE, TARGET_RATE_PER_SEC);
        if (i20.isPresent() && k20.isPresent() && !Double.isNaN(i20.get().cpuSecondsPerMillion())
                && !Double.isNaN(k20.get().cpuSecondsPerMillion())) {
            double a = i20.get().cpuSecondsPerMillion();
            double b = k20.get().cpuSecondsPerMillion();
            out.add(verdict(String.format(Locale.ROOT, "broker CPU per record at 20k/s <= 1/3 of default Kafka's: "
                + "Isthmus %s vs %s / 3 = %s CPU-s per million records", cpuPerMillion(a), cpuPerMillion(b),
                cpuPerMillion(b / 3)), a <= b / 3));
        } else {
            out.add("broker CPU per record at 20k/s <= 1/3 of default Kafka's: not measured (needs isthmus and kafka at 20000/s)");
        }
        if (i20.isPresent() && !Double.isNaN(i20.get().heapBytesPerRecord())) {
            double b = i20.get().heapBytesPerRecord();
            out.add(verdict(String.format(Locale.ROOT, "Isthmus heap allocated per record at 20k/s <= 0.05 KB (%.0f B): "
                + "%,.0f B (%.2f KB)", HEAP_TARGET_BYTES_PER_RECORD, b, b / 1024), b <= HEAP_TARGET_BYTES_PER_RECORD));
        } else {
            out.add("Isthmus heap allocated per record at 20k/s <= 0.05 KB: not measured (needs isthmus at 20000/s and "
                + "its heap counter)");
        }
        if (i20.isPresent() && fsync != null) {
            Row r = i20.get();
            long e2e = p999(r, "e2e");
            String line = String.format(Locale.ROOT, "p99.9 end-to-end at 20k/s <= 2x the device's fdatasync p99.9 "
                + "(same run, %s): Isthmus %s ms vs 2 x %s = %s ms", fsync.tool(), ms(e2e), ms(fsync.p999Ns()),
                ms(2 * fsync.p999Ns()));
            out.add(r.cleanWindow() ? verdict(line, e2e <= 2 * fsync.p999Ns())
                : line + ": not judged (" + r.cpuStallSeconds() + " s of the window had a stalled CPU)");
        } else {
            out.add("p99.9 end-to-end at 20k/s <= 2x the device's fdatasync p99.9: not measured (needs isthmus at "
                + "20000/s and --fsync-probe)");
        }
        Optional<Row> im = find(rows, BrokerKind.ISTHMUS, Suite.MANY_PARTITIONS, 0);
        Optional<Row> km = find(rows, BrokerKind.KAFKA, Suite.MANY_PARTITIONS, 0);
        if (im.isPresent() && km.isPresent()) {
            double a = im.get().result().throughputPerSec();
            double b = km.get().result().throughputPerSec();
            out.add(verdict(String.format(Locale.ROOT, "many partitions: saturation >= 2x default Kafka's: Isthmus "
                + "%,.0f vs 2 x %,.0f = %,.0f records/s", a, b, 2 * b), a >= 2 * b));
        } else {
            out.add("many partitions: saturation >= 2x default Kafka's: not measured (needs isthmus and kafka on "
                + "many-partitions at saturation)");
        }
        Optional<Row> ic = find(rows, BrokerKind.ISTHMUS, Suite.CLUSTER, TARGET_RATE_PER_SEC);
        Optional<Row> kc = find(rows, BrokerKind.KAFKA, Suite.CLUSTER, TARGET_RATE_PER_SEC);
        if (ic.isPresent() && kc.isPresent()) {
            long a = p999(ic.get(), "e2e");
            long b = p999(kc.get(), "e2e");
            out.add(verdict(String.format(Locale.ROOT, "cluster: p99.9 end-to-end at 20k/s below Kafka's: Isthmus %s "
                + "ms vs %s ms", ms(a), ms(b)), a < b));
        } else {
            out.add("cluster: p99.9 end-to-end at 20k/s below Kafka's: not measured (needs isthmus and kafka on "
                + "cluster at 20000/s)");
        }
        if (!rows.isEmpty()) {
            long clean = rows.stream().filter(Row::cleanWindow).count();
            List<Row> isthmus = rows.stream().filter(r -> r.broker() == BrokerKind.ISTHMUS).toList();
            out.add(String.format(Locale.ROOT, "measurement windows with no stalled-CPU second: %d of %d (Isthmus %d of %d)",
                clean, rows.size(), isthmus.stream().filter(Row::cleanWindow).count(), isthmus.size()));
        }
        return out;
    }

    private static String verdict(String line, boolean met) {
        return line + ": " + (met ? "MET" : "MISSED");
    }

    private static long p999(Row r, String kind) {
        Histogram h = kind.equals("e2e") ? r.result().e2e() : r.result().ack();
        return h.getValueAtPercentile(99.9);
    }

    private static Optional<Row> find(List<Row> rows, BrokerKind b, Suite suite, long rate) {
        return rows.stream().filter(r -> r.broker() == b && r.suite() == suite && r.ratePerSec() == rate).findFirst();
    }

    /** Bytes from a size like 512m, 2G, 1024k or 4096. */
    static long parseSizeBytes(String s) {
        String t = s.trim().toLowerCase(Locale.ROOT);
        if (t.endsWith("b")) {
            t = t.substring(0, t.length() - 1);
        }
        long mult = 1;
        char last = t.isEmpty() ? ' ' : t.charAt(t.length() - 1);
        switch (last) {
            case 'k' -> mult = 1L << 10;
            case 'm' -> mult = 1L << 20;
            case 'g' -> mult = 1L << 30;
            case 't' -> mult = 1L << 40;
            default -> {
            }
        }
        if (mult != 1) {
            t = t.substring(0, t.length() - 1);
        }
        try {
            return Long.parseLong(t) * mult;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + s + "' is not a size like 512M or 2G");
        }
    }
}
