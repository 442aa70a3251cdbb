package dev.isthmus.bench.chaos;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The {@code admin} workload's end state: from its {@code create-topic}, {@code delete-topic} and
 * {@code grow-topic} operations, what must exist at the end (acknowledged creates and grows not followed by an
 * acknowledged delete) and what must not (acknowledged deletes not followed by a create), compared with the
 * {@code topics} listing the run takes at the end ({@code proc} "final"). An operation with an indefinite
 * outcome ({@code info}) makes its topic's state unknown until a later acknowledged operation. Each topic
 * that contradicts what was acknowledged counts once (<b>admin-mismatch</b>). Metadata may reach brokers a
 * little late, so only the end state is checked, after the run has waited for it to settle. One thread.
 */
final class AdminCheck implements HistoryCheck {

    /** What the acknowledged operations say about a topic: exists with at least {@code partitions}, or not. */
    private record Expect(boolean exists, boolean known, int partitions, String why) {
    }

    private final Map<String, Expect> expected = new LinkedHashMap<>();
    private final Map<String, Event> pending = new LinkedHashMap<>();
    private Map<String, Object> finalTopics;
    private long ops;

    @Override
    public void accept(Event e) {
        switch (e.f()) {
            case "create-topic", "delete-topic", "grow-topic" -> {
                String key = e.proc() + " " + e.str("topic");
                if (e.invoke()) {
                    pending.put(key, e);
                    return;
                }
                Event inv = pending.remove(key);
                if (inv == null) {
                    return;
                }
                ops++;
                String topic = e.str("topic");
                int n = (int) inv.num("partitions", 0);
                String why = String.format(java.util.Locale.ROOT, "%s %s of %s at t=%.3fs (line %d)", e.f(), e.type(),
                    topic, e.t() / 1e9, e.line());
                Expect before = expected.get(topic);
                switch (e.type()) {
                    case "ok" -> {
                        switch (e.f()) {
                            case "create-topic" -> expected.put(topic, new Expect(true, true, n, why));
                            case "delete-topic" -> expected.put(topic, new Expect(false, true, 0, why));
                            default -> expected.put(topic, new Expect(true, before == null || before.known(),
                                Math.max(n, before == null ? 0 : before.partitions()), why));
                        }
                    }
                    case "info" -> {
                        if (!e.f().equals("grow-topic")) { // a grow that may not have happened leaves the rest as it was
                            expected.put(topic, new Expect(false, false, 0, why));
                        }
                    }
                    default -> {
                        // A definite failure changes nothing.
                    }
                }
            }
            case "topics" -> {
                if (e.ok()) {
                    finalTopics = e.map("topics");
                }
            }
            default -> {
            }
        }
    }

    @Override
    public void finish(CheckResult r) {
        r.declare("admin-mismatch");
        r.stat("admin operations", ops);
        if (expected.isEmpty()) {
            return;
        }
        if (finalTopics == null) {
            r.count("admin-mismatch", "no final topic listing in the history: the end state of " + expected.size()
                + " admin topic(s) is unknown");
            return;
        }
        for (Map.Entry<String, Expect> en : expected.entrySet()) {
            Expect x = en.getValue();
            if (!x.known()) {
                continue;
            }
            Object have = finalTopics.get(en.getKey());
            if (x.exists() && have == null) {
                r.count("admin-mismatch", en.getKey() + " is missing at the end, after " + x.why());
            } else if (x.exists() && ((Number) have).intValue() < x.partitions()) {
                r.count("admin-mismatch", en.getKey() + " has " + have + " partitions at the end, fewer than the "
                    + x.partitions() + " after " + x.why());
            } else if (!x.exists() && have != null) {
                r.count("admin-mismatch", en.getKey() + " still exists at the end, after " + x.why());
            }
        }
    }
}
