package dev.isthmus.bench.chaos;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Reads a history file and runs every {@link HistoryCheck} over it: {@link AppendCheck} (lost, duplicated,
 * reordered writes; inconsistent offsets; skipping, non-monotonic and out-of-range reads; values never seen),
 * {@link CommitCheck} (committed offsets going backwards) and {@link AdminCheck} (the topics' end state), {@link ClusterCheck} (brokers exiting, not recovering), plus
 * the check of any workload added later (see {@link Workload}). The same history always gives the same result;
 * {@code bench/chaos --check FILE} runs it alone. Stateless; any thread.
 */
final class Checker {

    private Checker() {
    }

    /** The checks of every workload this suite knows: run on a history file whatever wrote it. */
    static List<HistoryCheck> allChecks() {
        return List.of(new AppendCheck(), new CommitCheck(), new TxnCheck(), new AdminCheck(), new MoveCheck(), new ClusterCheck());
    }

    static CheckResult check(Path history) {
        return check(history, allChecks());
    }

    static CheckResult check(Path history, List<HistoryCheck> checks) {
        try (BufferedReader r = Files.newBufferedReader(history, StandardCharsets.UTF_8)) {
            String line;
            long n = 0;
            while ((line = r.readLine()) != null) {
                n++;
                if (line.isBlank()) {
                    continue;
                }
                Event e = Event.parse(line, n);
                for (HistoryCheck c : checks) {
                    c.accept(e);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the history " + history + ": " + e.getMessage(), e);
        }
        CheckResult result = new CheckResult();
        for (HistoryCheck c : checks) {
            c.finish(result);
        }
        return result;
    }
}
