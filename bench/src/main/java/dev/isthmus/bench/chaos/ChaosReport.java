package dev.isthmus.bench.chaos;

import dev.isthmus.bench.compare.HtmlReport;

import java.util.List;
import java.util.Locale;

/**
 * The chaos run's HTML page (self-contained: inline SVG, no scripts), drawn as {@code bench/compare} draws its
 * charts: the settings, then per cluster the checker's summary, the recovery table and the fault list, and three
 * charts over time (acknowledged writes per second; produce-to-ack latency p50, p99 and max on a log scale;
 * errors per second) with every fault's window shaded and numbered. Stateless.
 */
final class ChaosReport {
    private static final int W = 1100;
    private static final int H = 260;
    private static final int LEFT = 70;
    private static final int RIGHT = 150;
    private static final int TOP = 30;
    private static final int BOTTOM = 40;
    private static final String[] COLORS = {"#1f6fb4", "#c0392b", "#e67e22", "#27ae60"};

    /** One cluster's part of the page. */
    record Section(String title, String summary, String recovery, String faults, String notes, Timeline timeline) {
    }

    private ChaosReport() {
    }

    static String render(String title, List<String> meta, List<Section> sections) {
        StringBuilder sb = new StringBuilder();
        sb.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").append(esc(title))
            .append("</title>\n<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1300px}"
                + "pre{font-size:12px;background:#f6f6f6;padding:1em;overflow-x:auto}"
                + "svg{background:#fff;border:1px solid #ddd;margin:0.5em 0}.pass{color:#1a7f37}.fail{color:#b00020}"
                + "</style></head><body>\n");
        sb.append("<h1>").append(esc(title)).append("</h1>\n<ul>\n");
        for (String m : meta) {
            sb.append("<li>").append(esc(m)).append("</li>\n");
        }
        sb.append("</ul>\n");
        for (Section s : sections) {
            sb.append("<h2>").append(esc(s.title())).append("</h2>\n");
            sb.append("<h3>Checker</h3>\n<pre>").append(esc(s.summary())).append("</pre>\n");
            if (s.timeline() != null) {
                Timeline t = s.timeline();
                sb.append("<h3>Over time</h3>\n<p>Shaded: fault windows (from the fault to its undoing: restart, "
                    + "SIGCONT, healed network, freed disk), numbered as in the fault list.</p>\n");
                double[] x = new double[t.seconds.size()];
                for (int i = 0; i < x.length; i++) {
                    x[i] = i + 0.5;
                }
                sb.append(chart("acknowledged writes per second", t, x, List.of("acks/s"),
                    List.of(t.column(Timeline.Second::acks)), false));
                sb.append(chart("produce -> ack latency of the writes acknowledged each second (ms, log)", t, x,
                    List.of("p50", "p99", "max"), List.of(t.column(Timeline.Second::p50Ms), t.column(Timeline.Second::p99Ms),
                        t.column(Timeline.Second::maxMs)), true));
                sb.append(chart("errors per second", t, x, List.of("failed/indefinite sends", "poll/commit errors"),
                    List.of(t.column(Timeline.Second::sendErrors), t.column(Timeline.Second::clientErrors)), false));
                sb.append("<h3>Recovery</h3>\n<pre>").append(esc(s.recovery())).append("</pre>\n");
            }
            sb.append("<h3>Faults</h3>\n<pre>").append(esc(s.faults())).append("</pre>\n");
            if (!s.notes().isEmpty()) {
                sb.append("<h3>Notes</h3>\n<pre>").append(esc(s.notes())).append("</pre>\n");
            }
        }
        sb.append("</body></html>\n");
        return sb.toString();
    }

    /** One time-series chart: x in seconds, one polyline per series, fault windows shaded. */
    static String chart(String title, Timeline t, double[] x, List<String> names, List<double[]> ys, boolean logY) {
        double xMax = Math.max(1, t.endNs / 1e9);
        double yMax = 0;
        double yMin = Double.MAX_VALUE;
        for (double[] y : ys) {
            for (double v : y) {
                if (!Double.isNaN(v)) {
                    yMax = Math.max(yMax, v);
                    if (v > 0) {
                        yMin = Math.min(yMin, v);
                    }
                }
            }
        }
        double lo;
        double hi;
        if (logY) {
            lo = Math.floor(Math.log10(yMin == Double.MAX_VALUE ? 1 : yMin));
            hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(yMax, 1e-3))));
        } else {
            lo = 0;
            hi = yMax <= 0 ? 1 : niceCeil(yMax);
        }
        int pw = W - LEFT - RIGHT;
        int ph = H - TOP - BOTTOM;
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            + "viewBox=\"0 0 %d %d\" font-size=\"12\">\n", W, H, W, H));
        sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"18\" font-weight=\"bold\">%s</text>\n", LEFT, esc(title)));
        for (Timeline.FaultWindow f : t.faults) {
            double x0 = LEFT + pw * (f.startNs() / 1e9) / xMax;
            double x1 = LEFT + pw * (Math.max(f.endNs(), f.startNs() + 200_000_000L) / 1e9) / xMax;
            sb.append(String.format(Locale.ROOT, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"#f4b6b6\" "
                + "fill-opacity=\"0.5\"><title>#%d %s: %s</title></rect>\n", x0, TOP, Math.max(1, x1 - x0), ph,
                f.index(), esc(f.fault()), esc(f.detail() == null ? "" : f.detail())));
            sb.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" font-size=\"9\" fill=\"#b00020\">%d</text>\n",
                x0 + 1, TOP + 10, f.index()));
        }
        int xStep = niceStep(xMax / 10);
        for (int s = 0; s <= xMax; s += xStep) {
            double px = LEFT + pw * s / xMax;
            sb.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eee\"/>"
                + "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", px, TOP, px, TOP + ph, px, TOP + ph + 14, s));
        }
        sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">seconds since the start</text>\n",
            LEFT + pw / 2, H - 6));
        int ticks = logY ? (int) (hi - lo) : 4;
        for (int i = 0; i <= ticks; i++) {
            double v = logY ? Math.pow(10, lo + i) : hi * i / ticks;
            double py = TOP + ph - ph * (double) i / ticks;
            sb.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>"
                + "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", LEFT, py, LEFT + pw, py, LEFT - 6, py + 4,
                label(v)));
        }
        sb.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>\n",
            LEFT, TOP, pw, ph));
        int legendY = TOP + 10;
        for (int k = 0; k < ys.size(); k++) {
            String color = COLORS[k % COLORS.length];
            StringBuilder pts = new StringBuilder();
            double[] y = ys.get(k);
            for (int i = 0; i < y.length && i < x.length; i++) {
                if (Double.isNaN(y[i]) || (logY && y[i] <= 0)) {
                    if (pts.length() > 0) {
                        sb.append(polyline(pts, color));
                        pts.setLength(0);
                    }
                    continue;
                }
                double f = logY ? (Math.log10(y[i]) - lo) / (hi - lo) : y[i] / hi;
                double px = LEFT + pw * x[i] / xMax;
                double py = TOP + ph - ph * Math.max(0, Math.min(1, f));
                pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", px, py));
            }
            if (pts.length() > 0) {
                sb.append(polyline(pts, color));
            }
            sb.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>"
                + "<text x=\"%d\" y=\"%d\">%s</text>\n", LEFT + pw + 10, legendY, LEFT + pw + 30, legendY, color,
                LEFT + pw + 36, legendY + 4, esc(names.get(k))));
            legendY += 18;
        }
        sb.append("</svg>\n");
        return sb.toString();
    }

    private static String polyline(StringBuilder pts, String color) {
        return "<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"" + color + "\" points=\"" + pts.toString().strip()
            + "\"/>\n";
    }

    private static double niceCeil(double v) {
        double p = Math.pow(10, Math.floor(Math.log10(v)));
        for (double m : new double[] {1, 2, 2.5, 5, 10}) {
            if (m * p >= v) {
                return m * p;
            }
        }
        return 10 * p;
    }

    private static int niceStep(double v) {
        for (int s : new int[] {1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600}) {
            if (s >= v) {
                return s;
            }
        }
        return 7200;
    }

    private static String label(double v) {
        if (v >= 1) {
            return String.format(Locale.ROOT, "%,.0f", v);
        }
        return String.format(Locale.ROOT, "%.3f", v).replaceAll("0+$", "");
    }

    static String esc(String s) {
        return HtmlReport.esc(s);
    }
}
