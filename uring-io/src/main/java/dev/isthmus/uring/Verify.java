package dev.isthmus.uring;

/**
 * Always-on invariant checks (TigerBeetle style): unlike {@code assert}, they run in production. A failed
 * check is a bug in Isthmus (or in a storage or transport plugged into Raft breaking its contract), never bad
 * input, so it throws {@link IllegalStateException} naming what was violated.
 *
 * <p>The one copy for every module: it lives in uring-io, the lowest module with invariants to check, on which
 * memory-arena, log-engine, raft and the gateway all depend (ffi-bindings below it is generated bindings and
 * checks none). The message is formatted only when the check fails; callers pass {@code long}s, never boxed
 * varargs, so a passing check allocates nothing. Stateless; any thread.
 */
public final class Verify {
    private Verify() {
    }

    public static void that(boolean condition, String message) {
        if (!condition) {
            throw new IllegalStateException("invariant violated: " + message);
        }
    }

    public static void that(boolean condition, String format, long a) {
        if (!condition) {
            throw new IllegalStateException("invariant violated: " + String.format(format, a));
        }
    }

    public static void that(boolean condition, String format, long a, long b) {
        if (!condition) {
            throw new IllegalStateException("invariant violated: " + String.format(format, a, b));
        }
    }

    public static void that(boolean condition, String format, long a, long b, long c) {
        if (!condition) {
            throw new IllegalStateException("invariant violated: " + String.format(format, a, b, c));
        }
    }
}
