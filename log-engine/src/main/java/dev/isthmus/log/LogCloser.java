package dev.isthmus.log;

import dev.isthmus.ffi.Errno;
import dev.isthmus.uring.CompletionHandler;

import java.util.ArrayList;
import java.util.List;

/**
 * Closes a {@link Log} once every write and fdatasync completed: trims each active segment's preallocated space and
 * makes that trim durable (one more fdatasync) before the log writes its clean-shutdown marker. Without that, a
 * power loss could keep the marker and lose the trim: the next open would trust the marker, take the preallocated
 * zeros for data and append after them, and the open after that would cut the log at the zeros, acknowledged
 * records and all. Owner: the log's thread.
 */
final class LogCloser implements CompletionHandler {
    private final Log log;
    private final Runnable done;
    private int syncsInFlight;
    private boolean syncFailed;

    LogCloser(Log log, Runnable done) {
        this.log = log;
        this.done = done;
    }

    void start() {
        log.whenQuiescent(this::check);
    }

    private void check() {
        for (Segment s : log.segments()) {
            if (s.appender != null && !log.isFailed() && s.appender.durable() < s.size) {
                // The last fdatasync is still to come (its writes just completed): wait for it.
                s.appender.flush();
                log.whenQuiescent(this::check);
                return;
            }
        }
        if (log.isFailed()) {
            finish();
            return;
        }
        List<Segment> active = new ArrayList<>();
        for (Segment s : log.segments()) {
            if (s.appender != null) {
                active.add(s);
            }
        }
        syncsInFlight = active.size() + 1; // + 1 until every fdatasync is queued
        for (Segment s : active) {
            s.file.truncate(s.size);
            long r = s.file.datasync(this, 0);
            if (r < 0) {
                onComplete((int) r, 0, 0);
            }
        }
        onComplete(0, 0, 0);
    }

    @Override
    public void onComplete(int result, int flags, long attachment) {
        if (result < 0 && !syncFailed) {
            syncFailed = true;
            log.onStorageFailure(null, "fdatasync at close: " + Errno.describe(result), -result);
        }
        if (--syncsInFlight == 0) {
            finish();
        }
    }

    private void finish() {
        log.finishClose();
        done.run();
    }
}
