package dev.isthmus.uring.shard;

import org.agrona.collections.Long2LongHashMap;

import java.util.Arrays;

/**
 * A shard's timers: a 4-ary min-heap of deadlines in parallel arrays, the structure Seastar's timer set and
 * the kernel's hrtimers play the same role with. Compared with a hashed wheel it gives the exact next deadline
 * (which becomes the io_uring wait timeout, so an idle shard sleeps exactly until its next timer), fires in
 * strict deadline order, and never reuses an id: ids are a sequence, so cancelling a timer that already fired
 * can never cancel another one. Schedule, cancel and expire are O(log n); no allocation per timer beyond the
 * task itself once the arrays have grown.
 *
 * <p>Owner-thread only.
 */
final class TimerQueue {
    private long[] deadlines = new long[64];
    private long[] ids = new long[64];
    private Runnable[] tasks = new Runnable[64];
    private int size;
    private long nextId = 1;
    private final Long2LongHashMap indexById = new Long2LongHashMap(-1L);

    int size() {
        return size;
    }

    /** The earliest deadline, or Long.MAX_VALUE when empty. */
    long nextDeadline() {
        return size == 0 ? Long.MAX_VALUE : deadlines[0];
    }

    long schedule(long deadlineNs, Runnable task) {
        if (size == deadlines.length) {
            int n = size * 2;
            deadlines = Arrays.copyOf(deadlines, n);
            ids = Arrays.copyOf(ids, n);
            tasks = Arrays.copyOf(tasks, n);
        }
        long id = nextId++;
        int i = size++;
        deadlines[i] = deadlineNs;
        ids[i] = id;
        tasks[i] = task;
        indexById.put(id, i);
        siftUp(i);
        return id;
    }

    boolean cancel(long id) {
        long index = indexById.get(id);
        if (index < 0) {
            return false;
        }
        removeAt((int) index);
        return true;
    }

    /** Removes and returns the task of the earliest timer if its deadline is at or before {@code nowNs}. */
    Runnable pollExpired(long nowNs) {
        if (size == 0 || deadlines[0] > nowNs) {
            return null;
        }
        Runnable task = tasks[0];
        removeAt(0);
        return task;
    }

    void clear() {
        Arrays.fill(tasks, 0, size, null);
        size = 0;
        indexById.clear();
    }

    private void removeAt(int i) {
        indexById.remove(ids[i]);
        int last = --size;
        if (i != last) {
            move(last, i);
            tasks[last] = null;
            if (i > 0 && deadlines[i] < deadlines[(i - 1) >>> 2]) {
                siftUp(i);
            } else {
                siftDown(i);
            }
        } else {
            tasks[last] = null;
        }
    }

    private void move(int from, int to) {
        deadlines[to] = deadlines[from];
        ids[to] = ids[from];
        tasks[to] = tasks[from];
        indexById.put(ids[to], to);
    }

    private void siftUp(int i) {
        long d = deadlines[i];
        long id = ids[i];
        Runnable t = tasks[i];
        while (i > 0) {
            int parent = (i - 1) >>> 2;
            if (deadlines[parent] <= d) {
                break;
            }
            move(parent, i);
            i = parent;
        }
        deadlines[i] = d;
        ids[i] = id;
        tasks[i] = t;
        indexById.put(id, i);
    }

    private void siftDown(int i) {
        long d = deadlines[i];
        long id = ids[i];
        Runnable t = tasks[i];
        while (true) {
            int first = 4 * i + 1;
            if (first >= size) {
                break;
            }
            int min = first;
            int end = Math.min(first + 4, size);
            for (int c = first + 1; c < end; c++) {
                if (deadlines[c] < deadlines[min]) {
                    min = c;
                }
            }
            if (deadlines[min] >= d) {
                break;
            }
            move(min, i);
            i = min;
        }
        deadlines[i] = d;
        ids[i] = id;
        tasks[i] = t;
        indexById.put(id, i);
    }
}
