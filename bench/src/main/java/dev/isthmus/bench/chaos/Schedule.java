package dev.isthmus.bench.chaos;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * The nemesis's plan, a pure function of the seed: which fault comes next, after how long a quiet time, for
 * how long, and a number that picks its victims (a node, a partition, a split of the nodes). Faults are dealt
 * from a shuffled deck of every enabled fault, reshuffled when it runs out, so a short run still sees each
 * fault once before any repeats. The same seed and
 * options always give the same steps; which node is a partition's leader at that moment is the cluster's doing,
 * so a replay repeats the schedule exactly and the cluster's answers to it closely.
 *
 * <p>Each cluster of a run gets its own stream ({@code seed} mixed with the cluster's size). Not thread-safe:
 * the nemesis thread draws from it.
 */
final class Schedule {

    /**
     * One fault of the plan.
     *
     * @param index     its place in the plan, from 1
     * @param quietNs   the quiet time before it
     * @param fault     what
     * @param durationNs how long it lasts
     * @param pick      a random number that picks its victims
     */
    record Step(int index, long quietNs, Fault fault, long durationNs, long pick) {
        String describe() {
            return String.format(Locale.ROOT, "#%d after %.1f s quiet: %s for %.1f s (pick %d)", index, quietNs / 1e9,
                fault.id, durationNs / 1e9, pick & 0xffff);
        }
    }

    private final Random random;
    private final List<Fault> faults;
    private final long faultMinNs;
    private final long faultMaxNs;
    private final long quietMinNs;
    private final long quietMaxNs;
    private final List<Fault> deck = new ArrayList<>();
    private int drawn;

    Schedule(long seed, int nodes, List<Fault> faults, long faultMinNs, long faultMaxNs, long quietMinNs, long quietMaxNs) {
        this.random = new Random(seed * 31 + nodes);
        this.faults = List.copyOf(faults);
        this.faultMinNs = faultMinNs;
        this.faultMaxNs = faultMaxNs;
        this.quietMinNs = quietMinNs;
        this.quietMaxNs = quietMaxNs;
    }

    boolean empty() {
        return faults.isEmpty();
    }

    /** The next step; always the same sequence for the same seed, nodes and options. */
    Step next() {
        long quiet = between(quietMinNs, quietMaxNs);
        if (deck.isEmpty()) {
            deck.addAll(faults);
            java.util.Collections.shuffle(deck, random);
        }
        Fault f = deck.remove(deck.size() - 1);
        long duration = between(faultMinNs, faultMaxNs);
        long pick = random.nextLong() & Long.MAX_VALUE;
        return new Step(++drawn, quiet, f, duration, pick);
    }

    private long between(long lo, long hi) {
        return hi <= lo ? lo : lo + (long) (random.nextDouble() * (hi - lo));
    }

    /** The first {@code n} steps, for the record (a fresh schedule with the same seed draws the same). */
    static List<Step> preview(long seed, int nodes, List<Fault> faults, long faultMinNs, long faultMaxNs,
                              long quietMinNs, long quietMaxNs, int n) {
        Schedule s = new Schedule(seed, nodes, faults, faultMinNs, faultMaxNs, quietMinNs, quietMaxNs);
        List<Step> out = new ArrayList<>();
        for (int i = 0; i < n && !s.empty(); i++) {
            out.add(s.next());
        }
        return out;
    }
}
