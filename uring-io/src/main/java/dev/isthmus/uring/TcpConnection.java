package dev.isthmus.uring;

import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;

/**
 * A connected TCP socket on one engine. Owner: the engine's thread; all callbacks run there.
 *
 * <h2>Receiving</h2>
 * {@link #startReceiving(ReceiveHandler)} delivers data as it arrives in buffers owned by the engine (a
 * provided-buffer ring on io_uring), without a per-connection receive buffer. The handler releases each
 * buffer with {@link #releaseBuffer(int)} when it has consumed or copied the bytes; while the engine is out
 * of buffers, receiving pauses (back-pressure) and resumes as buffers are released.
 *
 * <h2>Flow control</h2>
 * {@link #suspendReceive()} stops taking bytes from the socket: the kernel's receive queue fills, the TCP
 * window closes and the peer's sends block, as with a server that stops calling read(2). Bytes the engine
 * had already taken from the socket when it was asked to stop are still delivered (on io_uring: the
 * completions already posted for the multishot receive, before its cancellation lands); after that nothing
 * reaches the handler, neither data nor {@link ReceiveHandler#onClosed} for a peer that closes, until
 * {@link #resumeReceive()}. {@link #isReceiveSuspended()} tells when that point is reached. Resuming
 * delivers what queued up meanwhile, in order; no byte is lost or reordered across any sequence of
 * suspends and resumes (an engine never has two receives armed on one socket). Closing a suspended
 * connection still ends with {@link ReceiveHandler#onClosed}.
 *
 * <h2>Sending</h2>
 * {@link #send} transmits every byte of its parts (short sends are continued internally) and completes with
 * the total or -errno. One send at a time per connection: queue the next from the completion.
 */
public interface TcpConnection extends AutoCloseable {

    /** Receives the outcome of {@link IoEngine#connect}. */
    @FunctionalInterface
    interface ConnectHandler {
        /** @param connection the connection, or null when {@code result} is -errno */
        void onConnect(TcpConnection connection, int result);
    }

    /** Receives data and the end of the stream. */
    interface ReceiveHandler {
        /**
         * {@code length} bytes arrived at {@code memory[offset, offset + length)}; call
         * {@link #releaseBuffer(int)} with {@code bufferId} once they are consumed.
         */
        void onReceive(TcpConnection connection, MemorySegment memory, long offset, int length, int bufferId);

        /** The stream ended: 0 when the peer closed it, -errno on an error. No more data follows. */
        void onClosed(TcpConnection connection, int result);
    }

    /** Starts delivering received data to {@code handler}. Once per connection. */
    void startReceiving(ReceiveHandler handler);

    /** Returns a receive buffer to the engine. */
    void releaseBuffer(int bufferId);

    /**
     * Stops receiving (see <em>Flow control</em> above); idempotent, callable from any callback of this
     * connection (a {@link ReceiveHandler#onReceive} included), also before {@link #startReceiving}. Costs one
     * cancellation on io_uring, nothing on the portable engine.
     */
    void suspendReceive();

    /**
     * Receives again after {@link #suspendReceive()}; idempotent. The next delivery is the byte following the
     * last one delivered. On io_uring the receive is re-armed at once, or, while the suspended receive is
     * still winding down, when its last completion arrives.
     */
    void resumeReceive();

    /**
     * Whether {@link #suspendReceive()} is in full effect: suspended and not resumed, and nothing taken from
     * the socket is still on its way to the handler, so no callback comes until {@link #resumeReceive()}.
     */
    boolean isReceiveSuspended();

    /**
     * Sends {@code parts[0..count)} in order (gather; nothing is copied). The parts must stay untouched until
     * the completion, which carries the total bytes sent or -errno. Returns an operation id or -EBUSY.
     *
     * @throws IllegalStateException a send is already in flight on this connection
     */
    long send(MemorySegment[] parts, int count, CompletionHandler handler, long attachment);

    /** Sends one buffer; see {@link #send(MemorySegment[], int, CompletionHandler, long)}. */
    long send(MemorySegment data, CompletionHandler handler, long attachment);

    /** Shuts down the sending side (the peer reads end of stream). */
    void shutdownOutput();

    InetSocketAddress remoteAddress();

    InetSocketAddress localAddress();

    boolean isOpen();

    /**
     * Closes the socket. Once receiving has started, the handler hears {@link ReceiveHandler#onClosed} exactly
     * once (0 or -errno), normally from a later completion, also when receiving was suspended or starved.
     */
    @Override
    void close();
}
