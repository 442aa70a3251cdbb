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

    StartupPhases() {
        long now = System.currentTimeMillis();
        processMs = ProcessHandle.current().info().startInstant().map(i -> now - i.toEpochMilli()).orElse(-1L);
        if (processMs >= 0) {
            text.append("process start to main's broker start ").append(processMs).append(" ms");
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
        return text + "; ready " + (processMs >= 0 ? (processMs + sinceMs) + " ms after the process started"
            : sinceMs + " ms after the broker's start began");
    }
}
