package dev.isthmus.arena;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * A bounded many-producer single-consumer queue of longs (Vyukov's sequence-per-slot design): producers claim
 * a slot with one CAS on the tail, write the value, then publish it by a release store of the slot's
 * sequence; the consumer reads with acquire. No allocation, no locks.
 */
final class MpscLongQueue {
    static final long EMPTY = Long.MIN_VALUE;

    private final int mask;
    private final long[] values;
    private final AtomicLongArray sequence;
    private final AtomicLong tail = new AtomicLong();
    private long head;

    MpscLongQueue(int capacity) {
        if (Integer.bitCount(capacity) != 1) {
            throw new IllegalArgumentException("capacity must be a power of two, got " + capacity);
        }
        this.mask = capacity - 1;
        this.values = new long[capacity];
        this.sequence = new AtomicLongArray(capacity);
        for (int i = 0; i < capacity; i++) {
            sequence.setPlain(i, i);
        }
    }

    /** Any thread: false when full. */
    boolean offer(long value) {
        while (true) {
            long t = tail.get();
            int index = (int) (t & mask);
            long seq = sequence.getAcquire(index);
            if (seq == t) {
                if (tail.compareAndSet(t, t + 1)) {
                    values[index] = value;
                    sequence.setRelease(index, t + 1);
                    return true;
                }
            } else if (seq < t) {
                return false;
            }
            Thread.onSpinWait();
        }
    }

    /** Consumer thread: the next value or {@link #EMPTY}. */
    long poll() {
        int index = (int) (head & mask);
        if (sequence.getAcquire(index) != head + 1) {
            return EMPTY;
        }
        long v = values[index];
        sequence.setRelease(index, head + mask + 1);
        head++;
        return v;
    }
}
