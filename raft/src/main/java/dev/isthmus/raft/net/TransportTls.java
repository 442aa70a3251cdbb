package dev.isthmus.raft.net;

import javax.net.ssl.SSLEngine;
import java.net.InetSocketAddress;
import java.util.concurrent.Executor;

/**
 * TLS of the node-to-node transport, supplied by the embedding application (the broker builds it from its
 * {@code rpc.ssl.*} settings): when a {@link RaftTransport} is given one, every connection it accepts runs a TLS
 * server handshake and every connection it dials a TLS client handshake before the hello exchange, and all frames
 * travel encrypted ({@link TlsTcpConnection}). Whether peers must present certificates (mutual TLS) and which
 * certificates are trusted is the engines' configuration; the transport only drives them.
 *
 * <p>Threads: {@link #serverEngine} and {@link #clientEngine} are called on the shard that owns the new connection
 * and must not block (the implementation keeps its built {@code SSLContext} in memory and reloads files elsewhere);
 * the engines' delegated tasks (key exchange, signatures, certificate checks: CPU work) run on {@link #tasks()},
 * never on a shard.
 */
public interface TransportTls {
    /** A server-side engine for an accepted connection. */
    SSLEngine serverEngine();

    /** A client-side engine for a connection dialed to {@code peer} (its host is checked against the certificate). */
    SSLEngine clientEngine(InetSocketAddress peer);

    /** Where the engines' delegated tasks run (not a shard thread). */
    Executor tasks();

    /**
     * How long a connection may take from its TCP connect to the end of the TLS handshake and the hello exchange,
     * beyond the transport's connect timeout (a cold JVM's first handshake loads and compiles JSSE's code).
     */
    default long handshakeAllowanceMs() {
        return 5_000;
    }
}
