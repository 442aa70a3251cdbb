package dev.isthmus.log;

/** Closes a {@link Log} once every write and fdatasync completed. Owner: the log's thread. */
final class LogCloser {
    private final Log log;
    private final Runnable done;

    LogCloser(Log log, Runnable done) {
        this.log = log;
        this.done = done;
    }

    void start() {
        log.whenQuiescent(this::check);
    }

    private void check() {
        for (Segment s : log.segments) {
            if (s.appender != null && !log.isFailed() && s.appender.durable() < s.size) {
                // The last fdatasync is still to come (its writes just completed): wait for it.
                s.appender.flush();
                log.whenQuiescent(this::check);
                return;
            }
        }
        log.finishClose();
        done.run();
    }
}
