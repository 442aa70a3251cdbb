package dev.isthmus.uring;

/**
 * Where a shard reads time: a monotonic nanosecond clock for deadlines and durations, and the wall clock in
 * milliseconds for timestamps (segment ages, retention, record timestamps of control batches).
 *
 * <p>Production reads {@link System#nanoTime()} and {@link System#currentTimeMillis()} ({@link #SYSTEM}); the
 * simulator ({@link dev.isthmus.uring.sim.SimClock}) reads virtual time that moves only when it says, so a run
 * replays exactly from its seed (TigerBeetle keeps time behind an interface for the same reason). Storage and
 * the shard loop take their clock from their engine ({@link IoEngine#clock()}), so whatever drives the engine's
 * completions also drives time.
 *
 * <p>Implementations are safe to read from any thread.
 */
public interface Clock {
    /** The clock of the machine. */
    Clock SYSTEM = new Clock() {
        @Override
        public long nanoTime() {
            return System.nanoTime();
        }

        @Override
        public long currentTimeMillis() {
            return System.currentTimeMillis();
        }

        @Override
        public String toString() {
            return "Clock.SYSTEM";
        }
    };

    /** Monotonic nanoseconds from an arbitrary origin (deadlines, durations). */
    long nanoTime();

    /** Wall-clock milliseconds since the epoch (timestamps). */
    long currentTimeMillis();
}
