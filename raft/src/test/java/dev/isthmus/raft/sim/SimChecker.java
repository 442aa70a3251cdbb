package dev.isthmus.raft.sim;

import dev.isthmus.raft.Entry;
import dev.isthmus.raft.EntryKind;
import dev.isthmus.raft.RaftGroup;
import dev.isthmus.raft.Role;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The simulator's safety checks, fed by every node's listener and state machine:
 * <ul>
 *   <li>election safety: at most one leader per term per group;</li>
 *   <li>leader completeness: a new leader's log holds every entry committed so far (from its log start);</li>
 *   <li>state machine safety: every entry any node commits or applies equals the one the cluster committed
 *       at that offset first (a committed entry is never lost or changed), and applied-state hashes agree at
 *       every offset;</li>
 *   <li>log matching (checked by {@link #checkLogMatching}): two logs holding an entry of the same term at an
 *       offset are identical up to it;</li>
 *   <li>prefix truncation: a replica's log start never moves back and never passes what the cluster committed
 *       (only committed data is dropped); after healing every member has carried out every committed
 *       truncation ({@link #committedTruncationTarget}, checked by the simulation).</li>
 * </ul>
 * Violations throw {@link AssertionError} at once, so the failing event is on the stack.
 */
final class SimChecker {
    private final Map<Long, TreeMap<Long, Entry>> committed = new HashMap<>();
    private final Map<Long, Map<Long, Integer>> leaders = new HashMap<>();
    private final Map<Long, Map<Long, Long>> hashes = new HashMap<>();
    private final Map<String, Long> checkedUpTo = new HashMap<>();
    private final Map<String, Long> logStarts = new HashMap<>();
    private final Map<Long, Long> truncationTargets = new HashMap<>();
    long commitsChecked;
    long leadersElected;
    long appliesChecked;

    /** The committed entries of {@code group}, by base offset. */
    TreeMap<Long, Entry> committed(long group) {
        return committed.computeIfAbsent(group, g -> new TreeMap<>());
    }

    long committedEnd(long group) {
        TreeMap<Long, Entry> c = committed(group);
        return c.isEmpty() ? -1 : c.lastEntry().getValue().lastOffset();
    }

    void onRole(int node, long group, Role role, long term, SimLogView log) {
        if (role != Role.LEADER) {
            return;
        }
        leadersElected++;
        Integer prev = leaders.computeIfAbsent(group, g -> new HashMap<>()).putIfAbsent(term, node);
        if (prev != null && prev != node) {
            throw new AssertionError("election safety: group " + group + " has leaders " + prev + " and " + node
                + " in term " + term);
        }
        // Leader completeness (paper §5.4): every committed entry the log still holds is there.
        for (Entry e : committed(group).tailMap(log.startOffset(), true).values()) {
            Entry mine = entryAt(log, e.baseOffset());
            if (!e.equals(mine)) {
                throw new AssertionError("leader completeness: node " + node + " leads group " + group + " in term "
                    + term + " without committed " + e + " (has " + mine + ")");
            }
        }
    }

    /** Called when {@code node}'s commit offset of {@code group} reaches {@code commit}. */
    void onCommit(int node, long group, long commit, SimLogView log) {
        String key = node + "/" + group;
        long from = Math.max(checkedUpTo.getOrDefault(key, -1L) + 1, log.startOffset());
        for (long o = from; o <= commit && o <= log.lastOffset(); ) {
            Entry e = log.entryAt(o);
            if (e == null) {
                throw new AssertionError("node " + node + " group " + group + " commits " + commit + " but holds no entry"
                    + " at " + o + " (log [" + log.startOffset() + ", " + log.lastOffset() + "])");
            }
            if (e.lastOffset() > commit) {
                break;
            }
            record(node, group, e);
            o = e.lastOffset() + 1;
        }
        checkedUpTo.put(key, Math.max(commit, checkedUpTo.getOrDefault(key, -1L)));
    }

    /**
     * {@code node}'s log start of {@code group} became {@code start} (durably). {@code onlyByTruncations}: the
     * group takes no snapshots of its own, so only committed prefix truncations may move its start.
     */
    void onLogStart(int node, long group, long start, SimLogView log, boolean onlyByTruncations) {
        String key = node + "/" + group;
        Long prev = logStarts.put(key, start);
        if (prev != null && start < prev) {
            throw new AssertionError("prefix truncation: node " + node + " group " + group + " log start moved back from "
                + prev + " to " + start);
        }
        if (start > committedEnd(group) + 1) {
            throw new AssertionError("prefix truncation: node " + node + " group " + group + " starts its log at " + start
                + " past the cluster's committed end " + committedEnd(group));
        }
        if (onlyByTruncations && start > 0 && start > committedTruncationTarget(group)) {
            throw new AssertionError("prefix truncation: node " + node + " group " + group + " starts its log at " + start
                + " though the committed truncations ask for " + committedTruncationTarget(group) + " at most");
        }
        if (start > log.lastOffset() + 1) {
            throw new AssertionError("prefix truncation: node " + node + " group " + group + " starts at " + start
                + " past its log end " + (log.lastOffset() + 1));
        }
    }

    /** The highest log start a committed prefix truncation of {@code group} asks for, or -1. */
    long committedTruncationTarget(long group) {
        return truncationTargets.getOrDefault(group, -1L);
    }

    /** A restarted node re-learns its commit from scratch. */
    void onRestart(int node, long group) {
        checkedUpTo.remove(node + "/" + group);
    }

    void onApply(int node, long group, Entry e) {
        appliesChecked++;
        Entry c = committed(group).get(e.baseOffset());
        if (c == null) {
            record(node, group, e);
        } else if (!c.equals(e)) {
            throw new AssertionError("state machine safety: node " + node + " applies " + e + " in group " + group
                + " where " + c + " was committed");
        }
    }

    void onAppliedHash(int node, long group, long offset, long hash) {
        Long prev = hashes.computeIfAbsent(group, g -> new HashMap<>()).putIfAbsent(offset, hash);
        if (prev != null && prev != hash) {
            throw new AssertionError("state machine safety: node " + node + " group " + group + " state at offset "
                + offset + " differs from another replica's");
        }
    }

    private void record(int node, long group, Entry e) {
        commitsChecked++;
        TreeMap<Long, Entry> c = committed(group);
        Entry prev = c.get(e.baseOffset());
        if (prev == null) {
            Map.Entry<Long, Entry> floor = c.floorEntry(e.baseOffset());
            if (floor != null && floor.getValue().lastOffset() >= e.baseOffset()) {
                throw new AssertionError("state machine safety: node " + node + " commits " + e + " in group " + group
                    + " overlapping committed " + floor.getValue());
            }
            c.put(e.baseOffset(), e);
            if (e.kind() == EntryKind.PREFIX_TRUNCATION) {
                truncationTargets.merge(group, e.newStartOffset(), Math::max);
            }
        } else if (!prev.equals(e)) {
            throw new AssertionError("state machine safety: node " + node + " commits " + e + " in group " + group
                + " where " + prev + " was committed");
        }
    }

    /** Log matching between two logs of one group. */
    static void checkLogMatching(long group, int a, SimLogView la, int b, SimLogView lb) {
        long lastMatch = Long.MIN_VALUE;
        // The last offset where b has a's term (walked by term runs: terms never decrease along a log).
        long o = la.lastOffset();
        while (o >= la.startOffset()) {
            long t = la.termAt(o);
            long tb = lb.termAt(o);
            if (t >= 0 && tb == t) {
                lastMatch = o;
                break;
            }
            if (tb < 0) {
                if (o > lb.lastOffset()) {
                    o = lb.lastOffset(); // past b's end
                    continue;
                }
                break; // below b's start
            }
            if (tb < t) {
                o = la.lastOffsetAtOrBeforeTerm(t - 1); // b has no term t below here: a's previous run
            } else {
                o = Math.min(o - 1, lb.lastOffsetAtOrBeforeTerm(t)); // b's terms up to t end there
            }
        }
        if (lastMatch == Long.MIN_VALUE) {
            return;
        }
        long from = Math.max(la.startOffset(), lb.startOffset());
        for (long at = from; at <= lastMatch; ) {
            Entry e = la.entryAt(at);
            if (e == null) {
                throw new AssertionError("log matching: group " + group + " node " + a + " holds no entry at " + at
                    + " below its last offset " + la.lastOffset());
            }
            at = e.lastOffset() + 1;
            if (e.lastOffset() > lastMatch) {
                break;
            }
            if (e.baseOffset() < from) {
                continue;
            }
            Entry other = lb.entryAt(e.baseOffset());
            Entry oEntry = other;
            if (!e.equals(oEntry)) {
                throw new AssertionError("log matching: group " + group + " nodes " + a + " and " + b + " agree at "
                    + lastMatch + " but differ at " + e.baseOffset() + ": " + e + " vs " + oEntry);
            }
        }
    }

    static Entry entryAt(SimLogView log, long offset) {
        return log.entryAt(offset);
    }

    /** Index of the entry containing {@code offset} or, when before the first, 0; -1 when past the end. */
    static int indexOf(List<Entry> es, long offset) {
        int lo = 0;
        int hi = es.size() - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            Entry e = es.get(mid);
            if (e.lastOffset() < offset) {
                lo = mid + 1;
            } else if (e.baseOffset() > offset) {
                hi = mid - 1;
            } else {
                return mid;
            }
        }
        return lo < es.size() ? lo : -1;
    }

    /** Final check after healing: every member's log holds the committed entries it should. */
    void checkNothingLost(long group, int node, SimLogView log, RaftGroup g) {
        for (Entry e : committed(group).tailMap(log.startOffset(), true).values()) {
            if (e.lastOffset() > g.commitOffset()) {
                break;
            }
            Entry mine = entryAt(log, e.baseOffset());
            if (!e.equals(mine)) {
                throw new AssertionError("committed entry lost: node " + node + " group " + group + " holds " + mine
                    + " where " + e + " was committed");
            }
        }
    }
}
