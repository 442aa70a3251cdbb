package dev.isthmus.gateway.security;

import java.util.List;

/**
 * A broker's connection security: its named listeners (empty = the single PLAINTEXT listener of
 * {@code --listen}/{@code --advertise}), the TLS settings of its SSL and SASL_SSL listeners and the SASL settings
 * of its SASL listeners. Immutable.
 */
public record SecuritySettings(List<ListenerConfig> listeners, TlsSettings tls, SaslSettings sasl) {
    public static final SecuritySettings DEFAULTS = new SecuritySettings(List.of(), TlsSettings.DEFAULTS,
        SaslSettings.DEFAULTS);

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
        return new SecuritySettings(l, tls, sasl);
    }

    public SecuritySettings withTls(TlsSettings t) {
        return new SecuritySettings(listeners, t, sasl);
    }

    public SecuritySettings withSasl(SaslSettings s) {
        return new SecuritySettings(listeners, tls, s);
    }
}
