package dev.isthmus.uring.shard;

import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Counters and gauges of one shard loop. Written only by the shard's thread (opaque stores, no CAS), readable
 * from any thread without locks (for metrics and tests); values read together are not an atomic snapshot.
 */
public final class ShardStats {
    public static final int LOOP_TURNS = 0;
    public static final int TASKS_RUN = 1;
    public static final int BUSY_NS = 2;
    public static final int IDLE_NS = 3;
    public static final int QUOTA_VIOLATIONS = 4;
    public static final int STALLS = 5;
    public static final int BLOCKING_DETECTED = 6;
    public static final int CALLS_SENT = 7;
    public static final int CALLS_RECEIVED = 8;
    public static final int REPLIES_RECEIVED = 9;
    public static final int SENDS_REFUSED = 10;
    public static final int TIMERS_FIRED = 11;
    public static final int EXTERNAL_TASKS = 12;
    public static final int UNCAUGHT_ERRORS = 13;
    public static final int KERNEL_WAITS = 14;
    public static final int COMPLETIONS = 15;
    /** Gauge: tasks waiting in the local run queue at the end of the last turn. */
    public static final int TASK_QUEUE_DEPTH = 16;
    /** Gauge: calls this shard has in flight to other shards. */
    public static final int CALLS_IN_FLIGHT = 17;
    /** Gauge: the longest single task seen, in ns. */
    public static final int LONGEST_TASK_NS = 18;
    /** Gauge: timers scheduled. */
    public static final int TIMERS_PENDING = 19;
    static final int COUNT = 20;

    private static final String[] NAMES = {"loop_turns", "tasks_run", "busy_ns", "idle_ns", "quota_violations",
        "stalls", "blocking_detected", "calls_sent", "calls_received", "replies_received", "sends_refused",
        "timers_fired", "external_tasks", "uncaught_errors", "kernel_waits", "completions", "task_queue_depth",
        "calls_in_flight", "longest_task_ns", "timers_pending"};

    private final AtomicLongArray values = new AtomicLongArray(COUNT);

    void add(int counter, long delta) {
        values.setOpaque(counter, values.getPlain(counter) + delta);
    }

    void set(int gauge, long value) {
        values.setOpaque(gauge, value);
    }

    /** Any thread: the current value of {@code counter}. */
    public long get(int counter) {
        return values.getOpaque(counter);
    }

    /** The metric name of {@code counter} (snake_case, for exporters). */
    public static String name(int counter) {
        return NAMES[counter];
    }

    public static int count() {
        return COUNT;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("ShardStats{");
        for (int i = 0; i < COUNT; i++) {
            sb.append(i == 0 ? "" : ", ").append(NAMES[i]).append('=').append(get(i));
        }
        return sb.append('}').toString();
    }
}
