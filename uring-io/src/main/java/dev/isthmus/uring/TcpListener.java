package dev.isthmus.uring;

import java.net.InetSocketAddress;

/** A listening TCP socket on one engine. Owner: the engine's thread. */
public interface TcpListener extends AutoCloseable {

    /** Receives accepted connections on the engine's thread. */
    @FunctionalInterface
    interface AcceptHandler {
        /**
         * @param connection the new connection (TCP_NODELAY set), or null when {@code result} is an error
         * @param result     0, or -errno for a failed accept (EMFILE, ENFILE, ...); the listener keeps accepting
         */
        void onAccept(TcpConnection connection, int result);
    }

    /** The bound address (with the real port when 0 was asked for). */
    InetSocketAddress localAddress();

    /** Stops accepting and closes the socket; connections already accepted stay open. */
    @Override
    void close();
}
