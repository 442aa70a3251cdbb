package dev.isthmus.bench.chaos;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What the {@link Checker} found: a count per anomaly (every anomaly the checks know, zeros included), up to
 * {@link #EXAMPLES} examples of each (what, where in the history), and statistics of the run (operations by
 * outcome). The run passes when every count is 0. Filled on one thread, then read.
 */
final class CheckResult {
    static final int EXAMPLES = 5;

    /** The anomalies, each with the sentence the summary table prints next to it. */
    static final Map<String, String> DESCRIPTIONS = new LinkedHashMap<>();

    static {
        DESCRIPTIONS.put("lost", "acknowledged writes missing from the final read of their partition");
        DESCRIPTIONS.put("duplicate", "values stored at more than one offset");
        DESCRIPTIONS.put("reordered", "acknowledged writes of one producer at lower offsets than its earlier ones");
        DESCRIPTIONS.put("inconsistent-offset", "offsets that different readers (or the ack) saw with different values");
        DESCRIPTIONS.put("poll-skip", "a consumer jumped over offsets holding data");
        DESCRIPTIONS.put("nonmonotonic-read", "a consumer read an offset at or below one it had read");
        DESCRIPTIONS.put("unseen", "acknowledged values a live reader set never saw by the end");
        DESCRIPTIONS.put("out-of-range", "fetches answered OFFSET_OUT_OF_RANGE for a position the reader had reached");
        DESCRIPTIONS.put("final-read-incomplete", "acknowledged writes the final read could not cover");
        DESCRIPTIONS.put("commit-backwards", "committed group offsets lower than one committed or observed before");
        DESCRIPTIONS.put("txn-aborted-read", "values of aborted transactions read by a read_committed reader");
        DESCRIPTIONS.put("txn-uncommitted-read", "values a read_committed reader read before their commit was asked for");
        DESCRIPTIONS.put("txn-lost", "values of committed transactions missing from the final read");
        DESCRIPTIONS.put("txn-partial", "transactions of unknown outcome neither all nor none in the final read");
        DESCRIPTIONS.put("txn-duplicate", "transactional values stored at more than one offset");
        DESCRIPTIONS.put("txn-inconsistent-offset", "offsets of the txn topic seen with different values");
        DESCRIPTIONS.put("txn-reordered", "a transactional id's values out of send order in a partition, or a reader going back");
        DESCRIPTIONS.put("txn-unseen", "visible transactional values a read_committed reader never read");
        DESCRIPTIONS.put("txn-hanging", "partitions whose last stable offset stayed below the high watermark at the end");
        DESCRIPTIONS.put("txn-final-incomplete", "committed values the final read could not cover");
        DESCRIPTIONS.put("admin-mismatch", "topics whose end state contradicts acknowledged create/delete/grow");
        DESCRIPTIONS.put("move-lost", "acknowledged replica moves neither completed nor reported as ongoing");
        DESCRIPTIONS.put("move-unfinished", "acknowledged replica moves still ongoing at the end, on a whole cluster");
        DESCRIPTIONS.put("node-exit", "brokers that exited although no fault killed them");
        DESCRIPTIONS.put("no-recovery", "faults after which a node did not come back or the cluster did not re-form");
        DESCRIPTIONS.put("stuck-replica", "replicas not caught up with their leader a minute after a fault");
    }

    private final Map<String, Long> counts = new LinkedHashMap<>();
    private final Map<String, List<String>> examples = new LinkedHashMap<>();
    private final Map<String, Long> stats = new LinkedHashMap<>();

    /** Makes {@code anomaly} appear in the summary even when it never happened. */
    void declare(String anomaly) {
        counts.putIfAbsent(anomaly, 0L);
    }

    void count(String anomaly, String example) {
        counts.merge(anomaly, 1L, Long::sum);
        List<String> l = examples.computeIfAbsent(anomaly, k -> new ArrayList<>());
        if (l.size() < EXAMPLES && example != null) {
            l.add(example);
        }
    }

    void stat(String name, long value) {
        stats.merge(name, value, Long::sum);
    }

    long count(String anomaly) {
        return counts.getOrDefault(anomaly, 0L);
    }

    Map<String, Long> counts() {
        return counts;
    }

    Map<String, List<String>> examples() {
        return examples;
    }

    Map<String, Long> stats() {
        return stats;
    }

    boolean clean() {
        return counts.values().stream().allMatch(c -> c == 0);
    }

    long total() {
        return counts.values().stream().mapToLong(Long::longValue).sum();
    }

    /** The summary table: one line per anomaly, then the examples of those that happened. */
    String render() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%-22s %8s  %s%n", "anomaly", "count", "meaning"));
        for (Map.Entry<String, Long> e : counts.entrySet()) {
            sb.append(String.format(Locale.ROOT, "%-22s %8d  %s%n", e.getKey(), e.getValue(),
                DESCRIPTIONS.getOrDefault(e.getKey(), "")));
        }
        for (Map.Entry<String, List<String>> e : examples.entrySet()) {
            if (e.getValue().isEmpty()) {
                continue;
            }
            sb.append(e.getKey()).append(", first ").append(e.getValue().size()).append(":\n");
            for (String x : e.getValue()) {
                sb.append("  ").append(x).append('\n');
            }
        }
        return sb.toString();
    }

    String renderStats() {
        StringBuilder sb = new StringBuilder();
        stats.forEach((k, v) -> sb.append(String.format(Locale.ROOT, "%s %,d; ", k, v)));
        return sb.length() == 0 ? "" : sb.substring(0, sb.length() - 2);
    }
}
