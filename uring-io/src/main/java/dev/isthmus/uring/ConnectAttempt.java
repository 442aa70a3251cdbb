package dev.isthmus.uring;

/**
 * An outgoing connect started by {@link IoEngine#connect}. Owner: the engine's thread.
 *
 * <p>Its {@link TcpConnection.ConnectHandler} runs exactly once — with the connection, with -errno, or with
 * -ETIMEDOUT when the attempt's timeout elapsed first — unless {@link #cancel()} got there before. A timed
 * out or cancelled attempt closes its socket as soon as the kernel has let go of it (on io_uring: when the
 * cancelled connect completes, normally within the next loop turn), so no descriptor outlives the attempt.
 */
public interface ConnectAttempt {

    /**
     * Abandons the attempt unless its handler has run: the handler is then never called, the socket is closed,
     * and true is returned. False when the handler has run already or the attempt was cancelled before;
     * calling it from the handler itself is harmless (false).
     */
    boolean cancel();

    /** Whether the handler has run or the attempt was cancelled. */
    boolean isDone();
}
