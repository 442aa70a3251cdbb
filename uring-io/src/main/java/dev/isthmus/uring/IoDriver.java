package dev.isthmus.uring;

/**
 * The I/O engine one shard loop drives: an io_uring ({@code Ring}) or the portable backend for hosts
 * where io_uring is blocked. A shard loop turn is
 * <pre>
 *   reap()                 dispatch completions that are ready, without entering the kernel
 *   ... run tasks, which queue new operations on the driver ...
 *   submitAndWait(t)       submit queued operations and, if t &gt; 0, wait up to t ns for a completion
 * </pre>
 *
 * <p>Owner: one thread (the thread that created it), except {@link #wakeup()}, which any thread may call,
 * and {@link #signal(IoDriver)}, which the owner calls to wake another shard's driver through its own
 * ring (IORING_OP_MSG_RING on io_uring; a direct {@link #wakeup()} on the portable backend).
 */
public interface IoDriver extends AutoCloseable {

    /**
     * Dispatches every completion already available, without a system call where the backend allows it.
     *
     * @return the number of completions dispatched.
     */
    int reap();

    /**
     * Submits queued operations and waits up to {@code timeoutNs} for at least one completion (or a wakeup),
     * then dispatches what completed. One kernel entry on io_uring.
     *
     * @param timeoutNs 0 to submit without waiting; otherwise the longest time to block.
     * @return the number of completions dispatched.
     */
    int submitAndWait(long timeoutNs);

    /** Any thread: makes a blocked or the next {@link #submitAndWait(long)} of this driver return promptly. */
    void wakeup();

    /**
     * Owner thread only: wakes {@code target} (another shard's driver) from this driver, batched with this
     * driver's next submission where the backend allows it.
     */
    void signal(IoDriver target);

    /** A short name for logs: "io_uring" or "portable". */
    String backendName();

    /** Owner thread: releases the kernel resources. Operations still in flight complete with -ECANCELED. */
    @Override
    void close();
}
