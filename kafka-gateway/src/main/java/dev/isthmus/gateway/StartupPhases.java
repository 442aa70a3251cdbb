package dev.isthmus.gateway;

import java.util.concurrent.TimeUnit;

/**
 * The time each step of a broker's start took, for the one line {@link Broker#start} logs once it serves (issue 22's
 * restart-to-first-write budget is spent here: this line says where). The first entry is the process's own start
 * to this object's creation, which is the JVM's start-up and the loading of the classes {@code main} needed, read
 * from {@link ProcessHandle.Info#startInstant()} (clock-tick precision, 10 ms on Linux).
 *
 * <p>Lifecycle: made at the top of {@link Broker#start}, then {@link #end} after each step, then printed. Used by
 * the starting thread only; not thread-safe.
 */
final class StartupPhases {
    private final StringBuilder text = new StringBuilder();
    private final long startNs = System.nanoTime();
    private long lastNs = startNs;
    private final long processMs;

    /** System.nanoTime when {@link Main#main} began, or 0 (the broker was started some other way). */
    private static volatile long mainEnteredNs;

    /** Called first thing by {@link Main#main}: splits the JVM's start from what main does before the broker starts. */
    static void mainEntered() {
        mainEnteredNs = System.nanoTime();
    }

    StartupPhases() {
        long now = System.currentTimeMillis();
        processMs = ProcessHandle.current().info().startInstant().map(i -> now - i.toEpochMilli()).orElse(-1L);
        long mainNs = mainEnteredNs;
        if (processMs >= 0 && mainNs != 0) {
            long sinceMainMs = TimeUnit.NANOSECONDS.toMillis(startNs - mainNs);
            text.append("process start (launcher and JVM) to main ").append(processMs - sinceMainMs)
                .append(" ms, options and I/O probe ").append(sinceMainMs).append(" ms");
        } else if (processMs >= 0) {
            text.append("process start to the broker's start ").append(processMs).append(" ms");
        }
    }

    /** Ends the step under way, named {@code step}, and starts the next one. */
    void end(String step) {
        long now = System.nanoTime();
        if (!text.isEmpty()) {
            text.append(", ");
        }
        text.append(step).append(' ').append(TimeUnit.NANOSECONDS.toMillis(now - lastNs)).append(" ms");
        lastNs = now;
    }

    /** The steps so far and the total since the process started (or since this object, when that is unknown). */
    @Override
    public String toString() {
        long sinceMs = TimeUnit.NANOSECONDS.toMillis(lastNs - startNs);
        // The process's CPU time (every thread: JIT compilers and GC included) says what the start cost whatever the
        // machine's load, which stretches the wall-clock steps above.
        String cpu = ProcessHandle.current().info().totalCpuDuration()
            .map(d -> ", " + d.toMillis() + " ms of CPU").orElse("");
        return text + "; ready " + (processMs >= 0 ? (processMs + sinceMs) + " ms after the process started"
            : sinceMs + " ms after the broker's start began") + cpu;
    }
}
