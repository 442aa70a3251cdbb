package dev.isthmus.gateway.security;

import java.util.List;
import java.util.Locale;

/**
 * SASL settings of the SASL_PLAINTEXT and SASL_SSL listeners. Immutable.
 *
 * @param enabledMechanisms  {@code sasl.enabled.mechanisms}: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (default all three
 *                           here; Kafka's default is GSSAPI, which Isthmus does not serve)
 * @param reauthMs           {@code connections.max.reauth.ms}: session lifetime (KIP-368); 0 = sessions never end
 * @param maxReceiveBytes    {@code sasl.server.max.receive.size}: the largest SASL token (512 KiB)
 * @param failedAuthDelayMs  {@code connection.failed.authentication.delay.ms}: how long a failed connection stays
 *                           open after its error response before it is closed (100 ms, as Kafka)
 * @param adminUser          the bootstrap user created from the configuration ({@code sasl.admin.user}); null = none
 * @param adminPassword      its password ({@code sasl.admin.password}, or the environment variable
 *                           {@code ISTHMUS_SASL_ADMIN_PASSWORD}); never logged
 * @param adminIterations    SCRAM iterations of the bootstrap user's credentials (4096 to 16384)
 * @param oauthBearer        how OAUTHBEARER tokens are validated (when OAUTHBEARER is enabled, which needs a key set
 *                           or unsecured tokens allowed)
 */
public record SaslSettings(List<String> enabledMechanisms, long reauthMs, int maxReceiveBytes, long failedAuthDelayMs,
                           String adminUser, String adminPassword, int adminIterations,
                           OAuthBearerSettings oauthBearer) {
    public static final SaslSettings DEFAULTS = new SaslSettings(List.of("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
        0, 512 * 1024, 100, null, null, 4096);

    /** Settings without OAUTHBEARER's ({@link OAuthBearerSettings#DEFAULTS}). */
    public SaslSettings(List<String> enabledMechanisms, long reauthMs, int maxReceiveBytes, long failedAuthDelayMs,
                        String adminUser, String adminPassword, int adminIterations) {
        this(enabledMechanisms, reauthMs, maxReceiveBytes, failedAuthDelayMs, adminUser, adminPassword, adminIterations,
            OAuthBearerSettings.DEFAULTS);
    }

    public SaslSettings {
        enabledMechanisms = enabledMechanisms.stream().map(m -> m.trim().toUpperCase(Locale.ROOT)).toList();
        if (oauthBearer == null) {
            oauthBearer = OAuthBearerSettings.DEFAULTS;
        }
        for (String m : enabledMechanisms) {
            if (!m.equals("PLAIN") && !m.equals(SaslServerExchange.OAUTHBEARER) && ScramMechanism.forName(m) == null) {
                throw new IllegalArgumentException("sasl.enabled.mechanisms: " + m + " is not served; use PLAIN,"
                    + " SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER");
            }
            if (m.equals(SaslServerExchange.OAUTHBEARER) && !oauthBearer.usable()) {
                throw new IllegalArgumentException("sasl.enabled.mechanisms: OAUTHBEARER needs"
                    + " sasl.oauthbearer.jwks.endpoint.url (a file: URL of the issuer's JSON Web Key Set) or, for"
                    + " tests only, sasl.oauthbearer.allow.unsecured.tokens=true");
            }
        }
        if (reauthMs < 0) {
            throw new IllegalArgumentException("connections.max.reauth.ms must be >= 0");
        }
        if (maxReceiveBytes < 1024) {
            throw new IllegalArgumentException("sasl.server.max.receive.size must be at least 1024 bytes");
        }
        if (failedAuthDelayMs < 0) {
            throw new IllegalArgumentException("connection.failed.authentication.delay.ms must be >= 0");
        }
        if (adminUser != null && (adminUser.isEmpty() || adminPassword == null || adminPassword.isEmpty())) {
            throw new IllegalArgumentException("sasl.admin.user " + adminUser + " needs a password: sasl.admin.password"
                + " or the environment variable ISTHMUS_SASL_ADMIN_PASSWORD");
        }
        if (adminIterations < ScramMechanism.MIN_ITERATIONS || adminIterations > ScramMechanism.MAX_ITERATIONS) {
            throw new IllegalArgumentException("sasl.admin.iterations must be in [" + ScramMechanism.MIN_ITERATIONS
                + ", " + ScramMechanism.MAX_ITERATIONS + "]");
        }
    }

    public SaslSettings withAdmin(String user, String password) {
        return new SaslSettings(enabledMechanisms, reauthMs, maxReceiveBytes, failedAuthDelayMs, user, password,
            adminIterations, oauthBearer);
    }

    /** These settings with OAUTHBEARER's {@code o} and {@code mechanisms} enabled. */
    public SaslSettings withOAuthBearer(List<String> mechanisms, OAuthBearerSettings o) {
        return new SaslSettings(mechanisms, reauthMs, maxReceiveBytes, failedAuthDelayMs, adminUser, adminPassword,
            adminIterations, o);
    }

    @Override
    public String toString() {
        return "SaslSettings[" + enabledMechanisms + ", reauth " + reauthMs + " ms, admin " + adminUser + "]";
    }
}
