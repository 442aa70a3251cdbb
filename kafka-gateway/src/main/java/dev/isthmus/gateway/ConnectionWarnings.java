package dev.isthmus.gateway;

import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Log lines about misbehaving (or misbehaved-against) client connections, rate-limited per reason and counted:
 * at most one line per {@link Reason} per interval, the next one saying how many were left out meanwhile, and a
 * total per reason that {@link MetricsServer} exports as {@code isthmus_connection_warnings_total{reason=...}}.
 * A client that opens thousands of bad connections thus costs a few log lines, not thousands, and is still
 * visible in the metrics.
 *
 * <p>One per broker, shared by its shards: lock-free (atomics only), callable from any thread. Which thread
 * writes the line of an interval is whichever wins the compare-and-set.
 */
final class ConnectionWarnings {
    private static final System.Logger LOG = System.getLogger(Connection.class.getName());
    static final long DEFAULT_INTERVAL_NS = 10_000_000_000L;

    /** Why a connection was warned about; the metric's {@code reason} label is the lower-case name. */
    enum Reason {
        /** Refused: the broker was at its connection limit. */
        CONNECTION_LIMIT(System.Logger.Level.WARNING),
        /** A frame length below the smallest request or above the maximum request size. */
        BAD_FRAME_LENGTH(System.Logger.Level.WARNING),
        /** A request that does not decode, or names an unknown API or an unsupported version. */
        MALFORMED_REQUEST(System.Logger.Level.WARNING),
        /** A frame started and not completed within the request receive timeout. */
        RECEIVE_TIMEOUT(System.Logger.Level.WARNING),
        /** A frame larger than the shard's receive memory could ever hold. */
        FRAME_ABOVE_RECEIVE_MEMORY(System.Logger.Level.WARNING),
        /** Connections waiting for receive memory held all of it and none could complete: the last one went. */
        RECEIVE_MEMORY_EXHAUSTED(System.Logger.Level.WARNING),
        /** Receiving failed for another reason. */
        RECEIVE_ERROR(System.Logger.Level.WARNING),
        /** A decoder threw something other than a ProtocolException: a broker bug. */
        DECODER_BUG(System.Logger.Level.ERROR),
        /** A request handler failed: a broker bug. */
        HANDLER_FAILED(System.Logger.Level.ERROR),
        /** A response could not be encoded: a broker bug. */
        ENCODE_FAILED(System.Logger.Level.ERROR),
        /** The TLS handshake or a TLS record failed (a plaintext client on a TLS listener, an untrusted certificate). */
        TLS_FAILED(System.Logger.Level.WARNING),
        /** SASL authentication failed or a request came before it (logged without credentials). */
        AUTHENTICATION_FAILED(System.Logger.Level.WARNING);

        final System.Logger.Level level;

        Reason(System.Logger.Level level) {
            this.level = level;
        }

        /** The metric label. */
        String label() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    private static final Reason[] REASONS = Reason.values();

    private final AtomicLongArray total = new AtomicLongArray(REASONS.length);
    private final AtomicLongArray suppressed = new AtomicLongArray(REASONS.length);
    private final AtomicLongArray nextLineNs = new AtomicLongArray(REASONS.length);
    private final AtomicLong intervalNs = new AtomicLong(DEFAULT_INTERVAL_NS);

    ConnectionWarnings() {
        long now = System.nanoTime();
        for (int i = 0; i < REASONS.length; i++) {
            nextLineNs.set(i, now);
        }
    }

    /** Sets the interval between two lines of one reason (tests lengthen it so that the count is exact). */
    void intervalNs(long ns) {
        intervalNs.set(ns);
    }

    /** Counts a warning and logs {@code message} unless a line of this reason was logged within the interval. */
    void warn(Reason reason, String message) {
        warn(reason, message, null);
    }

    /** As {@link #warn(Reason, String)}, with the exception's stack trace on the line that is logged. */
    void warn(Reason reason, String message, Throwable thrown) {
        int r = reason.ordinal();
        total.incrementAndGet(r);
        long now = System.nanoTime();
        long next = nextLineNs.get(r);
        long interval = intervalNs.get();
        if (now - next >= 0 && nextLineNs.compareAndSet(r, next, now + interval)) {
            long left = suppressed.getAndSet(r, 0);
            String line = left == 0 ? message : message + " (" + left + " more " + reason.label()
                + " warnings in the last " + Math.max(1, interval / 1_000_000_000L) + " s were not logged)";
            if (thrown != null) {
                LOG.log(reason.level, line, thrown);
            } else {
                LOG.log(reason.level, line);
            }
        } else {
            suppressed.incrementAndGet(r);
        }
    }

    /** Any thread: the warnings counted for {@code reason} since the broker started. */
    long count(Reason reason) {
        return total.get(reason.ordinal());
    }
}
