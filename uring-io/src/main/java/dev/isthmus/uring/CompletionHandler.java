package dev.isthmus.uring;

/**
 * Receives the completion of one operation queued on a {@link Ring} (or the portable backend), on the
 * ring's owner thread.
 *
 * <p>Handlers are long-lived objects (a connection, a segment appender), not a lambda per operation: the
 * {@code attachment} tells the handler which of its operations completed, so the data path allocates
 * nothing.
 */
@FunctionalInterface
public interface CompletionHandler {
    /**
     * @param result     the operation's result: bytes transferred, a new fd, 0, or {@code -errno}
     *                   ({@link dev.isthmus.ffi.Errno#describe(int)} gives its text)
     * @param flags      the CQE flags (IORING_CQE_F_MORE for multishot, F_BUFFER with the buffer id in the
     *                   upper 16 bits); 0 on the portable backend unless it emulates them
     * @param attachment the value given when the operation was queued
     */
    void onComplete(int result, int flags, long attachment);
}
