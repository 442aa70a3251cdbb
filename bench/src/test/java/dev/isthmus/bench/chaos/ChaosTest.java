package dev.isthmus.bench.chaos;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code bench/chaos --quick} as CI runs it: a 1-node then a 3-node cluster of real {@code ./isthmus}
 * processes (network namespaces and loop-mounted disks where this machine allows, else loopback with the
 * partition and disk faults skipped and said so), every workload (transactions and replica moves included), faults from a random seed (printed; replay
 * with {@code -Disthmus.seed=N}); the run must end with every anomaly count 0 (exit 0). Then what it leaves:
 * the summary and the HTML page with the charts and fault windows, one history per cluster, and nothing of
 * its namespaces, mounts and data directories. About two minutes.
 */
class ChaosTest {

    private static final Path ROOT = Path.of("").toAbsolutePath().getParent();

    @Test
    void shouldFindNoAnomalyInTheQuickRunAndCleanUpAfterIt(@TempDir Path tmp) throws Exception {
        long seed = Long.getLong("isthmus.seed", ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE));
        String runId = Long.toString(ThreadLocalRandom.current().nextInt(36 * 36 * 36, 36 * 36 * 36 * 36), 36);
        System.out.println("ChaosTest seed " + seed + " (replay: -Disthmus.seed=" + seed + ")");
        // The results stay in bench/target for a look after a failure (node logs, histories, the page).
        Path out = ROOT.resolve("bench/target/chaos-test").resolve(seed + "-" + runId);
        Path work = Files.createDirectory(tmp.resolve("work"));
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream print = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        Chaos.Outcome outcome = Chaos.run(new String[] {"--quick", "--seed", Long.toString(seed), "--out", out.toString(),
            "--tmp-dir", work.toString(), "--root", ROOT.toString(), "--run-id", runId}, print);
        String text = bytes.toString(StandardCharsets.UTF_8);
        System.out.println(text);
        // The exit code is 0 only when every count is 0; a run whose only anomalies are known open broker bugs
        // (KNOWN_BUGS) is reported and passes, every other anomaly fails it.
        for (Object r : outcome.results()) {
            reportKnown((CheckResult) r, seed);
        }
        assertTrue(outcome.exitCode() == 0 || outcome.results().stream().allMatch(r -> onlyKnown((CheckResult) r)),
            "seed " + seed + ":\n" + text);

        assertEquals(2, outcome.results().size());
        for (Object r : outcome.results()) {
            CheckResult c = (CheckResult) r;
            assertTrue(onlyKnown(c), c.render());
            assertTrue(c.counts().keySet().containsAll(CheckResult.DESCRIPTIONS.keySet()), c.counts().toString());
            assertTrue(c.stats().get("acknowledged") > 0, c.renderStats());
            assertTrue(c.stats().getOrDefault("transactions", 0L) > 0, "the txn workload ran: " + c.renderStats());
            // The final read holds every acknowledged write and may hold writes whose outcome the client never
            // learned (indefinite: a timeout or a dropped connection after the append), nothing else.
            long acked = c.stats().get("acknowledged");
            long finalRead = c.stats().get("final read records");
            assertTrue(finalRead >= acked && finalRead <= acked + c.stats().get("indefinite"), c.renderStats());
        }
        for (String nodes : List.of("nodes-1", "nodes-3")) {
            Path history = out.resolve(nodes).resolve("history.jsonl");
            assertTrue(Files.size(history) > 0, history.toString());
            assertTrue(onlyKnown(Checker.check(history)), "the history alone checks clean too");
        }
        String summary = Files.readString(out.resolve("summary.txt"));
        for (String s : List.of("Seed: " + seed, "lost", "duplicate", "commit-backwards", "fault -> first ack")) {
            assertTrue(summary.contains(s), "summary.txt lacks '" + s + "'");
        }
        String html = Files.readString(out.resolve("report.html"));
        assertEquals(6, count(html, "<svg"), "three charts per cluster");
        assertTrue(count(html, "fill=\"#f4b6b6\"") > 0, "fault windows shaded");
        assertFalse(html.contains("<script") || html.contains("src=\"http"), "no scripts, nothing external");

        // Nothing left behind: no namespace or link of this run, no mount under the work directory, no data.
        if (Sys.has("ip")) {
            assertFalse(Sys.run("ip", "netns", "list").output().contains("chaos-" + runId), "namespaces left");
            assertFalse(Sys.run("ip", "-o", "link", "show").output().contains("cx" + runId), "links left");
        }
        assertFalse(Files.readString(Path.of("/proc/mounts")).contains(work.toString()), "mounts left");
        try (var files = Files.list(work)) {
            assertEquals(List.of(), files.toList(), "data directories left");
        }
    }

    private static int count(String s, String needle) {
        int n = 0;
        for (int i = s.indexOf(needle); i >= 0; i = s.indexOf(needle, i + 1)) {
            n++;
        }
        return n;
    }

    /**
     * Anomalies of open broker bugs, each with the reason it is tolerated here; drop an entry once it is fixed.
     * None is open: stuck-replica was a forwarded controller command whose late answer was dropped (a restarted
     * node's registration, hence its replicas, waited for minutes) and the check's own replica list read once
     * while the admin workload moved replicas.
     */
    private static final java.util.Set<String> KNOWN_BUGS = java.util.Set.of();

    private static boolean onlyKnown(CheckResult c) {
        return c.counts().entrySet().stream().allMatch(e -> e.getValue() == 0 || KNOWN_BUGS.contains(e.getKey()));
    }

    private static void reportKnown(CheckResult c, long seed) {
        c.counts().forEach((k, v) -> {
            if (v > 0 && KNOWN_BUGS.contains(k)) {
                System.out.println("KNOWN BROKER BUG (open, drop it from KNOWN_BUGS once fixed): " + k + " " + v
                    + " (seed " + seed + ")");
            }
        });
    }
}
