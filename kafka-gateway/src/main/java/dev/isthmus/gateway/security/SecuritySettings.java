package dev.isthmus.gateway.security;

import java.util.List;

/**
 * A broker's connection security: its named listeners (empty = the single PLAINTEXT listener of
 * {@code --listen}/{@code --advertise}), the TLS settings of its SSL and SASL_SSL listeners, the SASL settings
 * of its SASL listeners, and the TLS of its node-to-node RPC port ({@code rpcTls}; null = plaintext RPC).
 * Immutable.
 */
public record SecuritySettings(List<ListenerConfig> listeners, TlsSettings tls, SaslSettings sasl,
                               RpcTlsSettings rpcTls) {
    public static final SecuritySettings DEFAULTS = new SecuritySettings(List.of(), TlsSettings.DEFAULTS,
        SaslSettings.DEFAULTS);

    /** Plaintext RPC. */
    public SecuritySettings(List<ListenerConfig> listeners, TlsSettings tls, SaslSettings sasl) {
        this(listeners, tls, sasl, null);
    }

    public SecuritySettings {
        listeners = List.copyOf(listeners);
        boolean tlsUsed = listeners.stream().anyMatch(l -> l.protocol().tls());
        if (tlsUsed && tls.keystoreLocation() == null) {
            throw new IllegalArgumentException("an SSL or SASL_SSL listener needs ssl.keystore.location (the broker's"
                + " key and certificate)");
        }
        java.util.Set<String> names = new java.util.HashSet<>();
        for (ListenerConfig l : listeners) {
            if (!names.add(l.name())) {
                throw new IllegalArgumentException("listener " + l.name() + " is named twice");
            }
        }
    }

    public SecuritySettings withListeners(List<ListenerConfig> l) {
        return new SecuritySettings(l, tls, sasl, rpcTls);
    }

    public SecuritySettings withTls(TlsSettings t) {
        return new SecuritySettings(listeners, t, sasl, rpcTls);
    }

    public SecuritySettings withSasl(SaslSettings s) {
        return new SecuritySettings(listeners, tls, s, rpcTls);
    }

    public SecuritySettings withRpcTls(RpcTlsSettings r) {
        return new SecuritySettings(listeners, tls, sasl, r);
    }
}
