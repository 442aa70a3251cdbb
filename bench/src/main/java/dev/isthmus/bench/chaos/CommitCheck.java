package dev.isthmus.bench.chaos;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Committed group offsets never go backwards: from the members' {@code commit} invocations and
 * acknowledgements and the observer's {@code committed} reads ({@code t0} its invocation, {@code t} its
 * completion), per group and partition. An acknowledged commit or an observation is an anomaly
 * (<b>commit-backwards</b>) when it holds an offset below one that an acknowledged commit or an observation
 * completed before it was invoked. Members commit the positions they consumed; a new owner of a partition
 * starts at the committed offset and only moves forward; a commit from a member that lost the partition is
 * refused by its generation: so in a correct group the committed offset of a partition only grows.
 *
 * <p>Concurrent operations (one invoked before the other completed) are not ordered and not compared. One thread.
 */
final class CommitCheck implements HistoryCheck {

    /** One committed offset known at some time: invoked at {@code ti}, completed at {@code tc}. */
    private record Item(long ti, long tc, long offset, String where) {
    }

    private final Map<String, List<Item>> items = new LinkedHashMap<>();
    private final Map<String, Event> pending = new HashMap<>();
    private long commits;
    private long observations;

    @Override
    public void accept(Event e) {
        if (e.f().equals("commit")) {
            if (e.invoke()) {
                pending.put(e.proc(), e);
            } else {
                Event inv = pending.remove(e.proc());
                if (e.ok() && inv != null) {
                    commits++;
                    add(inv, inv.t(), e.t(), "commit acknowledged to " + e.proc());
                }
            }
        } else if (e.f().equals("committed") && e.ok()) {
            observations++;
            add(e, e.num("t0", e.t()), e.t(), "committed offsets read by " + e.proc());
        }
    }

    private void add(Event e, long ti, long tc, String how) {
        String group = e.str("group");
        String topic = e.str("topic");
        for (Map.Entry<String, Object> o : e.map("offsets").entrySet()) {
            long off = ((Number) o.getValue()).longValue();
            if (off < 0) {
                continue; // no committed offset
            }
            items.computeIfAbsent(group + " " + topic + "-" + o.getKey(), k -> new ArrayList<>())
                .add(new Item(ti, tc, off, String.format(Locale.ROOT, "%s at t=%.3fs (line %d)", how, tc / 1e9, e.line())));
        }
    }

    @Override
    public void finish(CheckResult r) {
        r.declare("commit-backwards");
        for (Map.Entry<String, List<Item>> en : items.entrySet()) {
            List<Item> byCompletion = new ArrayList<>(en.getValue());
            byCompletion.sort(Comparator.comparingLong(Item::tc));
            long[] tc = new long[byCompletion.size()];
            long[] prefixMax = new long[byCompletion.size()];
            int[] prefixArg = new int[byCompletion.size()];
            for (int i = 0; i < tc.length; i++) {
                tc[i] = byCompletion.get(i).tc();
                boolean higher = i == 0 || byCompletion.get(i).offset() > prefixMax[i - 1];
                prefixMax[i] = higher ? byCompletion.get(i).offset() : prefixMax[i - 1];
                prefixArg[i] = higher ? i : prefixArg[i - 1];
            }
            for (Item x : en.getValue()) {
                // The last item that completed strictly before x was invoked.
                int lo = 0;
                int hi = tc.length - 1;
                int at = -1;
                while (lo <= hi) {
                    int mid = (lo + hi) >>> 1;
                    if (tc[mid] < x.ti()) {
                        at = mid;
                        lo = mid + 1;
                    } else {
                        hi = mid - 1;
                    }
                }
                if (at >= 0 && x.offset() < prefixMax[at]) {
                    Item before = byCompletion.get(prefixArg[at]);
                    r.count("commit-backwards", en.getKey() + ": " + x.where() + " holds offset " + x.offset()
                        + ", below " + before.offset() + " from " + before.where());
                }
            }
        }
        r.stat("commits acknowledged", commits);
        r.stat("committed-offset reads", observations);
    }
}
