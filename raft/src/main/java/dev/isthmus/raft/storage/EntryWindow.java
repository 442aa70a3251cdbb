package dev.isthmus.raft.storage;

import dev.isthmus.raft.Entry;
import dev.isthmus.uring.Verify;

import java.util.Arrays;

/**
 * The entries a {@link LogEngineRaftLog} holds in memory, sorted by base offset, never two with the same base: the
 * entries not durable yet (a contiguous suffix of the log, appended in order), and the few a disk read brought in
 * (below them). Not a cache of the log's bytes: that is the shard's batch cache; this is Raft's window of what the
 * log cannot serve back yet.
 *
 * <p>An array with a live range {@code [from, to)}: appends go to the end and durable entries leave from the front,
 * both without moving anything or allocating (the array grows by doubling, and is compacted when the end reaches
 * its capacity with room at the front); the rare insertions below the end and removals in the middle shift.
 * Replaces a {@code TreeMap} that allocated a node per appended batch.
 *
 * <p>Owner: the log's shard thread. Holds no references of its own: the log retains and releases payloads.
 */
final class EntryWindow {
    private Entry[] entries = new Entry[64];
    private int from;
    private int to;

    int size() {
        return to - from;
    }

    boolean isEmpty() {
        return to == from;
    }

    /** The {@code i}-th entry in offset order. */
    Entry get(int i) {
        return entries[from + i];
    }

    Entry last() {
        return entries[to - 1];
    }

    /** Index of the entry with the greatest base offset at or below {@code offset}, or -1. */
    int floorIndex(long offset) {
        int lo = from;
        int hi = to - 1;
        if (hi < lo || entries[lo].baseOffset() > offset) {
            return -1;
        }
        if (entries[hi].baseOffset() <= offset) {
            return hi - from; // the common case: at or past the newest entry
        }
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (entries[mid].baseOffset() <= offset) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        return lo - from;
    }

    /** The entry holding {@code offset}, or null. */
    Entry containing(long offset) {
        int i = floorIndex(offset);
        if (i < 0) {
            return null;
        }
        Entry e = get(i);
        return e.lastOffset() >= offset ? e : null;
    }

    boolean containsBase(long base) {
        int i = floorIndex(base);
        return i >= 0 && get(i).baseOffset() == base;
    }

    /** Adds {@code e} in offset order (at the end, normally); no entry with its base offset may be there. */
    void put(Entry e) {
        int i = floorIndex(e.baseOffset());
        Verify.that(i < 0 || get(i).baseOffset() != e.baseOffset(), "entry window holds offset %d twice",
            e.baseOffset());
        int at = from + i + 1;
        if (to == entries.length) {
            makeRoom();
            at = from + i + 1;
        }
        if (at < to) {
            System.arraycopy(entries, at, entries, at + 1, to - at);
        }
        entries[at] = e;
        to++;
    }

    /** Removes the {@code i}-th entry. */
    void removeAt(int i) {
        int at = from + i;
        if (at == from) {
            entries[from++] = null;
        } else {
            System.arraycopy(entries, at + 1, entries, at, to - at - 1);
            entries[--to] = null;
        }
        if (from == to) {
            from = 0;
            to = 0;
        }
    }

    /** Removes entries {@code [i, size())}. */
    void truncate(int i) {
        int at = from + i;
        Arrays.fill(entries, at, to, null);
        to = at;
        if (from == to) {
            from = 0;
            to = 0;
        }
    }

    private void makeRoom() {
        int n = to - from;
        if (from > 0 && n < entries.length / 2) {
            System.arraycopy(entries, from, entries, 0, n);
            Arrays.fill(entries, n, to, null);
        } else {
            Entry[] bigger = new Entry[entries.length * 2];
            System.arraycopy(entries, from, bigger, 0, n);
            entries = bigger;
        }
        from = 0;
        to = n;
    }
}
