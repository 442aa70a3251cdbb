/**
 * Connection security: named listeners and their security protocols, TLS material and principal mapping, SASL
 * (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) server exchanges, principals and the credential lookup.
 *
 * <p>Everything here is either an immutable value (settings, credentials, principals, the mapper), a per-connection
 * object owned by the connection's shard (a {@link dev.isthmus.gateway.security.SaslServerExchange}), or the
 * {@link dev.isthmus.gateway.security.TlsContexts} holder, which builds {@code SSLContext}s off the shard threads
 * and publishes them through a volatile field. Files are read only off the shard threads.
 */
package dev.isthmus.gateway.security;
