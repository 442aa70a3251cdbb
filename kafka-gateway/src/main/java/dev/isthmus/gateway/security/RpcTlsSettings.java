package dev.isthmus.gateway.security;

import java.util.Locale;

/**
 * TLS of the node-to-node RPC port (Raft replication, the controller's RPC, replica states, transaction markers):
 * {@code rpc.security.protocol=SSL} with the {@code rpc.ssl.*} settings, each of which defaults to the same
 * {@code ssl.*} setting of the Kafka listeners (so one key store and trust store can serve both), except
 * {@code rpc.ssl.client.auth}, which defaults to {@code required}: both ends of an RPC connection are nodes of the
 * cluster, and each proves it with a certificate its peer trusts (mutual TLS). Immutable; null in
 * {@link SecuritySettings#rpcTls()} means plaintext RPC.
 *
 * @param tls                             key and trust material, protocols, ciphers and client auth
 * @param endpointIdentificationAlgorithm {@code rpc.ssl.endpoint.identification.algorithm}: {@code https} (default,
 *                                        as Kafka's clients) checks that the certificate of a dialed node names the
 *                                        host of its RPC address (a subject alternative name); empty turns the check off
 */
public record RpcTlsSettings(TlsSettings tls, String endpointIdentificationAlgorithm) {
    public RpcTlsSettings {
        if (tls == null || tls.keystoreLocation() == null) {
            throw new IllegalArgumentException("rpc.security.protocol=SSL needs rpc.ssl.keystore.location or"
                + " ssl.keystore.location (the node's key and certificate)");
        }
        endpointIdentificationAlgorithm = endpointIdentificationAlgorithm == null ? ""
            : endpointIdentificationAlgorithm.trim();
        if (!endpointIdentificationAlgorithm.isEmpty()
            && !endpointIdentificationAlgorithm.toLowerCase(Locale.ROOT).equals("https")) {
            throw new IllegalArgumentException("rpc.ssl.endpoint.identification.algorithm must be https or empty, got '"
                + endpointIdentificationAlgorithm + "'");
        }
    }

    /** Whether a dialing node checks the peer's certificate against the host it dialed. */
    public boolean verifyHostname() {
        return !endpointIdentificationAlgorithm.isEmpty();
    }
}
