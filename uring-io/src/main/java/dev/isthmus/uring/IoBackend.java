package dev.isthmus.uring;

import dev.isthmus.ffi.IoUringSupport;

/**
 * Which I/O engine shards use. {@link #AUTO} probes io_uring once ({@link IoUringSupport#probe()}) and falls
 * back to {@link #PORTABLE} with a log line saying why.
 */
public enum IoBackend {
    /** io_uring when the probe says it is usable, else portable. */
    AUTO,
    /** io_uring; creation fails with the probe's reason when it is not usable. */
    IO_URING,
    /** FileChannel with O_DIRECT and NIO sockets, for hosts where io_uring is blocked. */
    PORTABLE;

    private static final System.Logger LOG = System.getLogger("dev.isthmus.uring");

    /** Resolves {@link #AUTO} to a concrete backend; logs the choice once per process. */
    public IoBackend resolve() {
        if (this != AUTO) {
            return this;
        }
        return Resolved.CHOICE;
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

    private static final class Resolved {
        static final IoBackend CHOICE = choose();

        private static IoBackend choose() {
            IoUringSupport s = IoUringSupport.probe();
            if (s.usable()) {
                LOG.log(System.Logger.Level.INFO, "I/O backend: io_uring");
                return IO_URING;
            }
            LOG.log(System.Logger.Level.WARNING, "I/O backend: portable (FileChannel + NIO), because " + s.reason());
            return PORTABLE;
        }
    }
}
