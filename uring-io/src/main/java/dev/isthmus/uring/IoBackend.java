package dev.isthmus.uring;

import dev.isthmus.ffi.IoUringSupport;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Which I/O engine shards use. {@link #AUTO} probes io_uring once ({@link IoUringSupport#probe()}, a value that
 * never throws) and falls back to {@link #PORTABLE} when io_uring cannot be used, with one line that names the
 * reason and how to enable io_uring.
 *
 * <p>Who says it: {@link #choose()} returns the choice and its line for a caller that reports it itself (the
 * broker's {@code Main} prints it); otherwise the first {@link #resolve()} of {@link #AUTO} in the process logs
 * it. Either way the line appears once per process. Thread-safe.
 */
public enum IoBackend {
    /** io_uring when the probe says it is usable, else portable. */
    AUTO,
    /** io_uring; creation fails with the probe's reason when it is not usable. */
    IO_URING,
    /** FileChannel with O_DIRECT and NIO sockets, for hosts where io_uring is blocked. */
    PORTABLE;

    private static final System.Logger LOG = System.getLogger("dev.isthmus.uring");
    private static final AtomicBoolean AUTO_REPORTED = new AtomicBoolean();

    /**
     * What a backend setting resolves to, and why.
     *
     * @param backend   {@link #IO_URING} or {@link #PORTABLE}
     * @param fellBack  {@link #AUTO} found io_uring unusable and chose the portable backend
     * @param support   the io_uring probe's result (for {@link #AUTO}; null when the setting was explicit)
     * @param line      one line for a log: the backend, and for a fallback the reason and how to enable io_uring
     */
    public record Choice(IoBackend backend, boolean fellBack, IoUringSupport support, String line) {
    }

    /**
     * Resolves {@link #AUTO} to a concrete backend. The first resolution of {@link #AUTO} in the process logs
     * the choice (INFO for io_uring, WARNING with the reason for a fallback), unless {@link #choose()} was
     * called first, whose caller reports it.
     */
    public IoBackend resolve() {
        if (this != AUTO) {
            return this;
        }
        Choice c = choice();
        if (AUTO_REPORTED.compareAndSet(false, true)) {
            LOG.log(c.fellBack() ? System.Logger.Level.WARNING : System.Logger.Level.INFO, c.line());
        }
        return c.backend();
    }

    /**
     * The choice and its line, for a caller that reports it itself: later {@link #resolve()} calls in this
     * process do not log it again. Never throws.
     */
    public Choice choose() {
        Choice c = choice();
        if (this == AUTO) {
            AUTO_REPORTED.set(true);
        }
        return c;
    }

    private Choice choice() {
        return switch (this) {
            case IO_URING -> new Choice(IO_URING, false, null, "I/O backend: io_uring (as configured)");
            case PORTABLE -> new Choice(PORTABLE, false, null, "I/O backend: portable (FileChannel + NIO sockets),"
                + " as configured");
            case AUTO -> {
                IoUringSupport s = IoUringSupport.probe();
                yield s.usable()
                    ? new Choice(IO_URING, false, s, "I/O backend: io_uring")
                    : new Choice(PORTABLE, true, s, "I/O backend: portable (FileChannel + NIO sockets), because "
                        + s.explanation());
            }
        };
    }

    /** Parses "auto", "io_uring"/"uring", "portable" (case-insensitive), naming the accepted values on error. */
    public static IoBackend parse(String s) {
        return switch (s.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "auto" -> AUTO;
            case "io_uring", "uring", "io-uring" -> IO_URING;
            case "portable", "nio" -> PORTABLE;
            default -> throw new IllegalArgumentException("unknown I/O backend '" + s
                + "': expected auto, io_uring or portable");
        };
    }
}
