package dev.isthmus.bench.chaos;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The replica moves of the {@code admin} workload (see {@link AdminWorkload}): from its {@code move},
 * {@code move-done} and final {@code moves} events, each acknowledged move must have completed (the partition's
 * replicas became the target and ListPartitionReassignments stopped listing it) or still be reported as moving.
 * Only each partition's last move is judged against the end state (an earlier one was superseded, and completed
 * before the next began, as the workload moves one at a time):
 *
 * <ul>
 *   <li><b>move-lost</b>: an acknowledged move that never completed and, at the end, is neither at its target nor
 *       listed as ongoing; or a partition whose replicas at the end are neither its last move's target nor (for a
 *       move refused or of unknown outcome) where it started;</li>
 *   <li><b>move-unfinished</b>: an acknowledged move still listed as ongoing at the end, after every fault was undone
 *       and the run waited 90 s for it (reported, but it never completed on a whole cluster).</li>
 * </ul>
 *
 * <p>The data written to the moved partitions meanwhile is checked by {@link AppendCheck}. One thread.
 */
final class MoveCheck implements HistoryCheck {

    private static final class Move {
        final int part;
        final List<Long> from;
        final List<Long> to;
        final long line;
        final long t;
        String type; // ok, fail, info; null while pending
        boolean done;
        long ms = -1;

        Move(int part, List<Long> from, List<Long> to, long line, long t) {
            this.part = part;
            this.from = from;
            this.to = to;
            this.line = line;
            this.t = t;
        }

        String describe() {
            return String.format(Locale.ROOT, "move of %s-%d from %s to %s at t=%.3fs (line %d, %s)",
                AdminWorkload.MOVES_TOPIC, part, from, to, t / 1e9, line, type == null ? "never answered" : type);
        }
    }

    private final Map<Integer, Move> last = new HashMap<>();
    private final List<Move> all = new ArrayList<>();
    private Map<String, Object> finalParts;
    private boolean finalSeen;

    @SuppressWarnings("unchecked")
    private static List<Long> longs(Object o) {
        List<Long> out = new ArrayList<>();
        if (o instanceof List<?> l) {
            for (Object x : l) {
                out.add(((Number) x).longValue());
            }
        }
        return out;
    }

    @Override
    public void accept(Event e) {
        switch (e.f()) {
            case "move" -> {
                int part = (int) e.num("part");
                if (e.invoke()) {
                    Move m = new Move(part, longs(e.fields().get("from")), longs(e.fields().get("to")), e.line(), e.t());
                    last.put(part, m);
                    all.add(m);
                } else {
                    Move m = last.get(part);
                    if (m != null && m.type == null) {
                        m.type = e.type();
                    }
                }
            }
            case "move-done" -> {
                Move m = last.get((int) e.num("part"));
                if (m != null && e.ok()) {
                    m.done = true;
                    m.ms = e.num("ms", -1);
                }
            }
            case "moves" -> {
                finalSeen = true;
                if (e.ok()) {
                    finalParts = e.map("parts");
                }
            }
            default -> {
            }
        }
    }

    @Override
    public void finish(CheckResult r) {
        r.declare("move-lost");
        r.declare("move-unfinished");
        if (all.isEmpty()) {
            return;
        }
        long acked = 0;
        long done = 0;
        long maxMs = 0;
        for (Move m : all) {
            if ("ok".equals(m.type)) {
                acked++;
            }
            if (m.done) {
                done++;
                maxMs = Math.max(maxMs, m.ms);
            }
        }
        r.stat("moves", all.size());
        r.stat("moves acknowledged", acked);
        r.stat("moves completed", done);
        r.stat("longest move ms", maxMs);
        if (!finalSeen || finalParts == null) {
            for (Move m : last.values()) {
                if ("ok".equals(m.type) && !m.done) {
                    r.count("move-lost", m.describe() + ": never completed, and the end state is unknown (no final "
                        + "description of the moved topic)");
                }
            }
            return;
        }
        for (Move m : last.values()) {
            Object o = finalParts.get(Integer.toString(m.part));
            if (!(o instanceof Map<?, ?> x)) {
                r.count("move-lost", m.describe() + ": the partition is missing from the final description");
                continue;
            }
            List<Long> replicas = longs(x.get("replicas"));
            boolean listed = x.get("adding") != null || x.get("removing") != null;
            boolean atTarget = new HashSet<>(replicas).equals(new HashSet<>(m.to));
            boolean atStart = new HashSet<>(replicas).equals(new HashSet<>(m.from));
            if ("ok".equals(m.type) || "info".equals(m.type) || m.type == null) {
                if (listed) {
                    if ("ok".equals(m.type)) {
                        r.count("move-unfinished", m.describe() + ": still listed at the end (replicas " + replicas
                            + ", adding " + x.get("adding") + ", removing " + x.get("removing") + ")");
                    }
                } else if (!atTarget && !("ok".equals(m.type) ? false : atStart)) {
                    r.count("move-lost", m.describe() + ": replicas " + replicas + " at the end, not the target"
                        + ("ok".equals(m.type) ? "" : " nor the start") + ", and no reassignment listed");
                }
            } else if (!listed && !atStart && !atTarget) {
                r.count("move-lost", m.describe() + ": refused, yet replicas " + replicas + " at the end");
            }
        }
    }
}
