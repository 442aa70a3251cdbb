package dev.isthmus.gateway.security;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * TLS settings shared by every SSL and SASL_SSL listener, by Kafka's names. Immutable; files are read by
 * {@link TlsContexts}, off the shard threads.
 *
 * @param keystoreLocation    the broker's key and certificate chain ({@code ssl.keystore.location})
 * @param keystoreType        PKCS12, JKS or PEM ({@code ssl.keystore.type}, default JKS as Kafka; a file ending in
 *                            .p12/.pfx is read as PKCS12, .pem as PEM)
 * @param keystorePassword    the store's password ({@code ssl.keystore.password}); null for PEM
 * @param keyPassword         the key's password ({@code ssl.key.password}; PEM: the PKCS#8 encryption password;
 *                            null = the store's)
 * @param truststoreLocation  the certificates trusted for client certificates ({@code ssl.truststore.location});
 *                            null = the JDK's default trust
 * @param truststoreType      PKCS12, JKS or PEM
 * @param truststorePassword  the trust store's password (null for PEM or none)
 * @param clientAuth          none, requested or required ({@code ssl.client.auth}; required = mTLS)
 * @param enabledProtocols    {@code ssl.enabled.protocols} (default TLSv1.2,TLSv1.3)
 * @param cipherSuites        {@code ssl.cipher.suites}; empty = the JDK's defaults
 * @param principalMappingRules {@code ssl.principal.mapping.rules} (default DEFAULT)
 * @param reloadIntervalMs    how often the key and trust files are checked for changes and reloaded
 *                            ({@code ssl.reload.interval.ms}; 0 = never); new connections use the new material
 * @param allowDnChanges      whether a reloaded certificate may change its subject DN ({@code ssl.allow.dn.changes})
 * @param allowSanChanges     whether it may change its subject alternative names ({@code ssl.allow.san.changes})
 */
public record TlsSettings(Path keystoreLocation, String keystoreType, String keystorePassword, String keyPassword,
                          Path truststoreLocation, String truststoreType, String truststorePassword,
                          ClientAuth clientAuth, List<String> enabledProtocols, List<String> cipherSuites,
                          String principalMappingRules, long reloadIntervalMs, boolean allowDnChanges,
                          boolean allowSanChanges) {
    /** {@code ssl.client.auth}. */
    public enum ClientAuth {
        NONE, REQUESTED, REQUIRED;

        public static ClientAuth parse(String s) {
            try {
                return valueOf(s.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("ssl.client.auth must be none, requested or required, got '" + s + "'");
            }
        }
    }

    public static final TlsSettings DEFAULTS = new TlsSettings(null, null, null, null, null, null, null,
        ClientAuth.NONE, List.of("TLSv1.2", "TLSv1.3"), List.of(), "DEFAULT", 60_000, false, false);

    public TlsSettings {
        enabledProtocols = List.copyOf(enabledProtocols);
        cipherSuites = List.copyOf(cipherSuites);
        if (enabledProtocols.isEmpty()) {
            throw new IllegalArgumentException("ssl.enabled.protocols names no protocol");
        }
        for (String p : enabledProtocols) {
            if (!p.equals("TLSv1.2") && !p.equals("TLSv1.3")) {
                throw new IllegalArgumentException("ssl.enabled.protocols: " + p + " is not served; use TLSv1.2 and/or"
                    + " TLSv1.3");
            }
        }
        if (reloadIntervalMs < 0) {
            throw new IllegalArgumentException("ssl.reload.interval.ms must be >= 0");
        }
        SslPrincipalMapper.parse(principalMappingRules); // fails with the bad rule named
    }

    @Override
    public String toString() {
        // No passwords: settings may be logged.
        return "TlsSettings[keystore " + keystoreLocation + " (" + keystoreType + "), truststore " + truststoreLocation
            + " (" + truststoreType + "), client auth " + clientAuth + ", " + enabledProtocols + ", rules "
            + principalMappingRules + ", reload every " + reloadIntervalMs + " ms]";
    }

    /** The store type: the one configured, else from the file name (.p12/.pfx PKCS12, .pem PEM), else JKS. */
    static String typeOf(String configured, Path file) {
        if (configured != null && !configured.isBlank()) {
            return configured.trim().toUpperCase(Locale.ROOT);
        }
        String n = file.getFileName().toString().toLowerCase(Locale.ROOT);
        if (n.endsWith(".p12") || n.endsWith(".pfx")) {
            return "PKCS12";
        }
        if (n.endsWith(".pem") || n.endsWith(".crt")) {
            return "PEM";
        }
        return "JKS";
    }
}
