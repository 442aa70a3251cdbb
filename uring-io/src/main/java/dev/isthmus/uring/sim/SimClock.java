package dev.isthmus.uring.sim;

import dev.isthmus.uring.Clock;

/**
 * Virtual time for a simulation: it moves only when the simulator (or a test) moves it, so every run of a seed
 * sees the same times. The monotonic clock starts at 0; the wall clock is {@code epochMs} plus the virtual time.
 *
 * <p>Owner: the simulation's thread ({@link #advanceTo} and {@link #advanceBy}); reads are plain field reads.
 */
public final class SimClock implements Clock {
    private final long epochMs;
    private long nowNs;

    /** A clock at virtual time 0, whose wall clock reads {@code epochMs} then. */
    public SimClock(long epochMs) {
        this.epochMs = epochMs;
    }

    /** A clock whose wall clock starts at 2024-01-01T00:00:00Z (a fixed, realistic epoch). */
    public SimClock() {
        this(1_704_067_200_000L);
    }

    @Override
    public long nanoTime() {
        return nowNs;
    }

    @Override
    public long currentTimeMillis() {
        return epochMs + nowNs / 1_000_000L;
    }

    /** Moves virtual time to {@code timeNs}; never backwards. */
    public void advanceTo(long timeNs) {
        if (timeNs < nowNs) {
            throw new IllegalArgumentException("virtual time cannot go back from " + nowNs + " to " + timeNs + " ns");
        }
        nowNs = timeNs;
    }

    /** Moves virtual time forward by {@code deltaNs} (>= 0). */
    public void advanceBy(long deltaNs) {
        advanceTo(nowNs + deltaNs);
    }

    @Override
    public String toString() {
        return "SimClock{" + nowNs + " ns}";
    }
}
