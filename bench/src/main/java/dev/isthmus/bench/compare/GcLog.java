package dev.isthmus.bench.compare;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Stop-the-world pauses of a broker JVM, read from its unified JVM log. Both brokers run with
 * {@link #JVM_OPTION}: every safepoint (GC pauses and all other VM operations) is logged with a
 * {@code timenanos} decoration, which is the JVM's System.nanoTime(), i.e. CLOCK_MONOTONIC, the same clock
 * this process measures with; so a pause can be placed in a workload's measurement window exactly.
 * Stateless; any thread.
 */
final class GcLog {

    /** The -Xlog option that writes what this reads; {@code %s} is the log file (no spaces). */
    static final String JVM_OPTION = "-Xlog:gc,safepoint:file=%s:timenanos,uptime,tags";

    private static final Pattern SAFEPOINT = Pattern.compile(
        "^\\[[^]]*]\\[(\\d+)ns]\\[safepoint\\s*] Safepoint \"([^\"]+)\".*Total: (\\d+) ns");

    /**
     * The pauses that ended inside a window.
     *
     * @param count       safepoints in the window
     * @param over1msCount safepoints longer than 1 ms
     * @param maxNs       the longest (0 when none)
     * @param maxCause    the VM operation of the longest, e.g. G1CollectForAllocation
     * @param totalNs     time spent paused
     */
    record Pauses(int count, int over1msCount, long maxNs, String maxCause, long totalNs) {
        static final Pauses NONE = new Pauses(0, 0, 0, "", 0);
    }

    private GcLog() {
    }

    /** Pauses in {@code log} whose end lies in [fromNs, toNs); NONE when the log is missing. */
    static Pauses pauses(Path log, long fromNs, long toNs) {
        List<String> lines;
        try {
            lines = Files.readAllLines(log);
        } catch (IOException e) {
            return Pauses.NONE;
        }
        int count = 0;
        int over = 0;
        long max = 0;
        long total = 0;
        String cause = "";
        for (String line : lines) {
            Matcher m = SAFEPOINT.matcher(line);
            if (!m.find()) {
                continue;
            }
            long at = Long.parseLong(m.group(1));
            if (at < fromNs || at >= toNs) {
                continue;
            }
            long ns = Long.parseLong(m.group(3));
            count++;
            total += ns;
            if (ns > 1_000_000) {
                over++;
            }
            if (ns > max) {
                max = ns;
                cause = m.group(2);
            }
        }
        return new Pauses(count, over, max, cause, total);
    }
}
