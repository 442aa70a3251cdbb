package dev.isthmus.gateway.security;

import java.util.Locale;

/** Kafka's listener security protocols: whether a listener speaks TLS, SASL, both or neither. */
public enum SecurityProtocol {
    PLAINTEXT(false, false),
    SSL(true, false),
    SASL_PLAINTEXT(false, true),
    SASL_SSL(true, true);

    private final boolean tls;
    private final boolean sasl;

    SecurityProtocol(boolean tls, boolean sasl) {
        this.tls = tls;
        this.sasl = sasl;
    }

    /** Whether the listener's bytes travel in TLS records. */
    public boolean tls() {
        return tls;
    }

    /** Whether clients authenticate with SaslHandshake/SaslAuthenticate before any other request. */
    public boolean sasl() {
        return sasl;
    }

    /** @throws IllegalArgumentException naming the accepted values */
    public static SecurityProtocol parse(String s) {
        try {
            return valueOf(s.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown security protocol '" + s
                + "'; expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL");
        }
    }
}
