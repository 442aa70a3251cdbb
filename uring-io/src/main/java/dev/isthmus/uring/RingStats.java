package dev.isthmus.uring;

import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Counters of one {@link Ring}. Written only by the owner thread (opaque stores, no read-modify-write
 * contention), readable from any thread without locks; a reader sees each counter's recent value.
 */
public final class RingStats {
    public static final int SUBMITTED = 0;
    public static final int COMPLETED = 1;
    public static final int ENTERS = 2;
    public static final int RESUBMITTED = 3;
    public static final int ERRORS = 4;
    public static final int CQ_OVERFLOWS = 5;
    public static final int EBUSY_RETRIES = 6;
    public static final int STALE_COMPLETIONS = 7;
    public static final int SIGNALS_SENT = 8;
    public static final int WAKEUPS = 9;
    public static final int HANDLER_FAILURES = 10;
    public static final int IN_FLIGHT = 11;
    private static final int COUNT = 12;
    private static final String[] NAMES = {
        "submitted", "completed", "enters", "resubmitted", "errors", "cq_overflows", "ebusy_retries",
        "stale_completions", "signals_sent", "wakeups", "handler_failures", "in_flight",
    };

    private final AtomicLongArray counters = new AtomicLongArray(COUNT);

    void add(int counter, long delta) {
        counters.setOpaque(counter, counters.getPlain(counter) + delta);
    }

    void set(int counter, long value) {
        counters.setOpaque(counter, value);
    }

    /** Any thread. */
    public long get(int counter) {
        return counters.getOpaque(counter);
    }

    public long submitted() {
        return get(SUBMITTED);
    }

    public long completed() {
        return get(COMPLETED);
    }

    public long enters() {
        return get(ENTERS);
    }

    public long inFlight() {
        return get(IN_FLIGHT);
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("RingStats{");
        for (int i = 0; i < COUNT; i++) {
            b.append(i == 0 ? "" : ", ").append(NAMES[i]).append('=').append(get(i));
        }
        return b.append('}').toString();
    }
}
