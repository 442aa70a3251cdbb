package dev.isthmus.ffi;

import dev.isthmus.ffi.gen.uring.IoUring;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;

/**
 * Entry to liburing's raw system-call wrappers ({@code io_uring_setup}, {@code io_uring_enter2},
 * {@code io_uring_register}), which return {@code -errno} rather than setting errno.
 *
 * <p>liburing.so.2 comes from Debian's {@code liburing2} package. {@link #ensureAvailable()} fails with a
 * message naming that package instead of the JVM's bare linkage error. Everything else that liburing
 * offers (the prep/cqe helpers) is {@code static inline} in its header and is done in Java by
 * {@code dev.isthmus.uring.Ring}.
 *
 * <p>Thread-safe.
 */
public final class LibUring {
    /** The shared object we bind. */
    public static final String LIBRARY = "liburing.so.2";

    private static final String LOAD_FAILURE = probeLoad();

    private LibUring() {
    }

    private static String probeLoad() {
        try {
            SymbolLookup lookup = SymbolLookup.libraryLookup(LIBRARY, Arena.global());
            for (String symbol : new String[] {"io_uring_setup", "io_uring_enter2", "io_uring_register"}) {
                if (lookup.find(symbol).isEmpty()) {
                    return LIBRARY + " has no symbol " + symbol + ": liburing 2.3 or newer is needed"
                        + " (Debian: apt-get install liburing2)";
                }
            }
            return null;
        } catch (IllegalArgumentException | UnsatisfiedLinkError e) {
            return "cannot load " + LIBRARY + " (" + e.getMessage() + "): install liburing"
                + " (Debian/Ubuntu: apt-get install liburing2; Fedora: dnf install liburing)";
        }
    }

    /** Whether liburing.so.2 loaded. */
    public static boolean isAvailable() {
        return LOAD_FAILURE == null;
    }

    /** Why liburing is unavailable, or null. */
    public static String unavailableReason() {
        return LOAD_FAILURE;
    }

    /** Throws {@link UnsatisfiedLinkError} with a message naming the missing package when liburing is absent. */
    public static void ensureAvailable() {
        if (LOAD_FAILURE != null) {
            throw new UnsatisfiedLinkError(LOAD_FAILURE);
        }
    }

    /** io_uring_setup(2): the ring fd or -errno. {@code params} is a {@code struct io_uring_params}. */
    public static int setup(int entries, MemorySegment params) {
        ensureAvailable();
        return IoUring.io_uring_setup(entries, params);
    }

    /**
     * io_uring_enter2(2): submits and/or waits. Returns the number of SQEs consumed, or -errno. This call
     * may block; it is deliberately not a critical downcall.
     */
    public static int enter(int fd, int toSubmit, int minComplete, int flags, MemorySegment arg, long argSize) {
        return IoUring.io_uring_enter2(fd, toSubmit, minComplete, flags, arg, argSize);
    }

    /** io_uring_register(2): 0 or a positive result, or -errno. */
    public static int register(int fd, int opcode, MemorySegment arg, int count) {
        ensureAvailable();
        return IoUring.io_uring_register(fd, opcode, arg, count);
    }
}
