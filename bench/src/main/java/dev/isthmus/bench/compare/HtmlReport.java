package dev.isthmus.bench.compare;

import org.HdrHistogram.Histogram;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * One self-contained HTML page (inline SVG, no scripts, no external files): the settings, the table, the
 * targets, and for every workload two latency-by-percentile charts (produce-to-ack and end-to-end) with one
 * line per broker. Axes: percentile on a log scale of 1/(1-p) (50%, 90%, 99%, 99.9%, ...), latency in ms on a
 * log scale. Stateless.
 */
public final class HtmlReport {

    private static final int W = 720;
    private static final int H = 400;
    private static final int LEFT = 70;
    private static final int RIGHT = 150;
    private static final int TOP = 30;
    private static final int BOTTOM = 50;
    private static final double X_STEP = 0.02;
    private static final String[] COLORS = {"#1f6fb4", "#c0392b", "#e67e22"};

    private HtmlReport() {
    }

    static String render(String title, List<String> meta, String table, List<String> targets, List<String> targets18,
                         List<String> targets1920, List<Row> rows) {
        StringBuilder sb = new StringBuilder();
        sb.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").append(esc(title))
            .append("</title>\n<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1500px}"
                + "pre{font-size:12px;background:#f6f6f6;padding:1em;overflow-x:auto}"
                + ".charts{display:flex;flex-wrap:wrap;gap:1em}svg{background:#fff;border:1px solid #ddd}"
                + ".met{color:#1a7f37}.missed{color:#b00020}</style></head><body>\n");
        sb.append("<h1>").append(esc(title)).append("</h1>\n<ul>\n");
        for (String m : meta) {
            sb.append("<li>").append(esc(m)).append("</li>\n");
        }
        sb.append("</ul>\n<h2>Side by side</h2>\n<pre>").append(esc(table)).append("</pre>\n");
        sb.append("<p>Latencies in ms from each record's intended send time (no coordinated omission), over the "
            + "steady-state window. rec/s: acknowledgements per second in the window. CPU%: broker CPU in % of one "
            + "core. s/Mrec: broker CPU-seconds per million records. B/rec: heap bytes the broker JVM allocated per "
            + "record. RSS: broker peak resident set (VmHWM). pause: the broker JVM's longest safepoint pause in the "
            + "window and how many exceeded 1 ms. other: CPU used by other processes on the machine. Cluster rows: "
            + "the three brokers summed.</p>\n");
        if (!targets.isEmpty()) {
            sb.append("<h2>Issue 8 targets</h2>\n<ul>\n");
            for (String t : targets) {
                String cls = t.endsWith("MET") ? "met" : t.endsWith("MISSED") ? "missed" : "";
                sb.append("<li class=\"").append(cls).append("\">").append(esc(t)).append("</li>\n");
            }
            sb.append("</ul>\n");
        }
        if (!targets18.isEmpty()) {
            sb.append("<h2>Issue 18 targets</h2>\n<ul>\n");
            for (String t : targets18) {
                String cls = t.endsWith("MET") ? "met" : t.endsWith("MISSED") ? "missed" : "";
                sb.append("<li class=\"").append(cls).append("\">").append(esc(t)).append("</li>\n");
            }
            sb.append("</ul>\n");
        }
        if (!targets1920.isEmpty()) {
            sb.append("<h2>Issue 19 and 20 targets</h2>\n<ul>\n");
            for (String t : targets1920) {
                String cls = t.endsWith("MET") ? "met" : t.endsWith("MISSED") ? "missed" : "";
                sb.append("<li class=\"").append(cls).append("\">").append(esc(t)).append("</li>\n");
            }
            sb.append("</ul>\n");
        }
        List<Spec> specs = new ArrayList<>();
        for (Row r : Table.sorted(rows)) {
            if (!specs.contains(r.spec())) {
                specs.add(r.spec());
            }
        }
        for (Spec spec : specs) {
            List<Row> group = Table.sorted(rows).stream().filter(r -> r.spec().equals(spec)).toList();
            sb.append("<h2>").append(esc(spec.name())).append("</h2>\n<p>").append(esc(spec.shape().describe()))
                .append(spec.suite().onCluster() ? ", on a " + Suite.CLUSTER_NODES + "-node cluster" : "")
                .append(spec.suite() == Suite.TXN ? ", transactional producers, a read_committed consumer" : "")
                .append(spec.suite() == Suite.SASL_SSL ? ", over SASL_SSL (TLS 1.3, SCRAM-SHA-512)" : "")
                .append("</p>\n<div class=\"charts\">\n");
            sb.append(chart("produce -> ack, " + spec.name(), group, Kind.ACK));
            sb.append(chart("produce -> consume (end to end" + (spec.suite() == Suite.TXN ? ", read_committed" : "")
                + "), " + spec.name(), group, Kind.E2E));
            if (spec.suite() == Suite.TXN) {
                sb.append(chart("commitTransaction call -> return, " + spec.name(), group, Kind.COMMIT));
            }
            sb.append("</div>\n<p>Histogram logs: ");
            for (Row r : group) {
                sb.append("<a href=\"").append(esc(r.hlogName())).append("\">").append(esc(r.hlogName())).append("</a> ");
            }
            sb.append("</p>\n");
        }
        sb.append("</body></html>\n");
        return sb.toString();
    }

    /** Which latency a chart shows. */
    enum Kind {
        ACK, E2E, COMMIT;

        Histogram of(Row r) {
            return switch (this) {
                case ACK -> r.result().ack();
                case E2E -> r.result().e2e();
                case COMMIT -> r.result().commit();
            };
        }
    }

    /** One SVG chart: latency by percentile, one polyline per broker. */
    static String chart(String title, List<Row> rows, Kind kind) {
        double xMax = 1;
        double minMs = Double.MAX_VALUE;
        double maxMs = 0;
        for (Row r : rows) {
            Histogram h = kind.of(r);
            if (h.getTotalCount() == 0) {
                continue;
            }
            xMax = Math.max(xMax, Math.min(6, Math.log10(h.getTotalCount())));
            minMs = Math.min(minMs, Math.max(0.001, h.getValueAtPercentile(0) / 1e6));
            maxMs = Math.max(maxMs, h.getMaxValue() / 1e6);
        }
        xMax = Math.ceil(xMax);
        if (maxMs == 0) {
            minMs = 0.1;
            maxMs = 1;
        }
        double yLo = Math.floor(Math.log10(minMs));
        double yHi = Math.max(yLo + 1, Math.ceil(Math.log10(maxMs)));
        int pw = W - LEFT - RIGHT;
        int ph = H - TOP - BOTTOM;
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            + "viewBox=\"0 0 %d %d\" font-size=\"12\">\n", W, H, W, H));
        sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"18\" font-weight=\"bold\">%s</text>\n", LEFT, esc(title)));
        for (int d = 0; d <= (int) xMax; d++) {
            double x = LEFT + pw * d / xMax;
            sb.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n",
                x, TOP, x, TOP + ph));
            sb.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                x, TOP + ph + 16, percentileLabel(d)));
        }
        sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">percentile</text>\n",
            LEFT + pw / 2, H - 8));
        for (int d = (int) yLo; d <= (int) yHi; d++) {
            double y = TOP + ph - ph * (d - yLo) / (yHi - yLo);
            sb.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                LEFT, y, LEFT + pw, y));
            sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                LEFT - 6, y + 4, msLabel(d)));
        }
        sb.append(String.format(Locale.ROOT, "<text x=\"14\" y=\"%d\" transform=\"rotate(-90 14 %d)\" "
            + "text-anchor=\"middle\">latency, ms (log)</text>\n", TOP + ph / 2, TOP + ph / 2));
        sb.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>\n",
            LEFT, TOP, pw, ph));
        int legendY = TOP + 10;
        for (Row r : rows) {
            Histogram h = kind.of(r);
            String color = COLORS[r.broker().ordinal() % COLORS.length];
            if (h.getTotalCount() > 0) {
                StringBuilder pts = new StringBuilder();
                double xEnd = Math.min(xMax, Math.log10(h.getTotalCount()));
                for (double x = 0; x < xEnd; x += X_STEP) {
                    double p = 100 * (1 - Math.pow(10, -x));
                    point(pts, x, h.getValueAtPercentile(p), xMax, yLo, yHi, pw, ph);
                }
                point(pts, xEnd, h.getMaxValue(), xMax, yLo, yHi, pw, ph);
                sb.append("<polyline fill=\"none\" stroke-width=\"2\" stroke=\"").append(color)
                    .append("\" points=\"").append(pts.toString().strip()).append("\"/>\n");
            }
            sb.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>"
                + "<text x=\"%d\" y=\"%d\">%s</text>\n", LEFT + pw + 10, legendY, LEFT + pw + 30, legendY, color,
                LEFT + pw + 36, legendY + 4, esc(r.broker().label)));
            legendY += 18;
        }
        sb.append("</svg>\n");
        return sb.toString();
    }

    private static void point(StringBuilder pts, double x, long ns, double xMax, double yLo, double yHi, int pw, int ph) {
        double ms = Math.max(Math.pow(10, yLo), ns / 1e6);
        double px = LEFT + pw * x / xMax;
        double py = TOP + ph - ph * (Math.log10(ms) - yLo) / (yHi - yLo);
        pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", px, py));
    }

    private static String percentileLabel(int decade) {
        return switch (decade) {
            case 0 -> "0%";
            case 1 -> "90%";
            case 2 -> "99%";
            default -> "99." + "9".repeat(decade - 2) + "%";
        };
    }

    private static String msLabel(int decade) {
        double v = Math.pow(10, decade);
        return decade >= 0 ? String.format(Locale.ROOT, "%.0f", v) : String.format(Locale.ROOT, "%." + (-decade) + "f", v);
    }

    public static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
