package dev.isthmus.gateway.security;

import java.nio.file.Path;
import java.util.List;

/**
 * How the OAUTHBEARER mechanism validates tokens (Kafka's {@code sasl.oauthbearer.*} broker settings). Immutable.
 *
 * @param jwksFile          the JSON Web Key Set whose keys sign valid tokens: {@code sasl.oauthbearer.jwks.endpoint.url}
 *                          as a {@code file:} URL (Kafka accepts those too); null = none
 * @param jwksRefreshMs     {@code sasl.oauthbearer.jwks.endpoint.refresh.ms}: how often the file is checked for new keys
 *                          (3600000); a token naming an unknown key id also makes it be checked, at most once a second
 * @param expectedAudience  {@code sasl.oauthbearer.expected.audience}: the token's {@code aud} must name one of them;
 *                          empty = not checked
 * @param expectedIssuer    {@code sasl.oauthbearer.expected.issuer}: the token's {@code iss}; null = not checked
 * @param subClaimName      {@code sasl.oauthbearer.sub.claim.name}: the claim naming the principal ({@code sub})
 * @param clockSkewSeconds  {@code sasl.oauthbearer.clock.skew.seconds}: allowance on {@code exp} and {@code nbf} (30)
 * @param allowUnsecured    {@code sasl.oauthbearer.allow.unsecured.tokens}: accept unsigned ({@code alg: none}) tokens,
 *                          as Kafka's OAuthBearerUnsecuredValidatorCallbackHandler does; for tests only (false)
 */
public record OAuthBearerSettings(Path jwksFile, long jwksRefreshMs, List<String> expectedAudience,
                                  String expectedIssuer, String subClaimName, int clockSkewSeconds,
                                  boolean allowUnsecured) {
    public static final OAuthBearerSettings DEFAULTS = new OAuthBearerSettings(null, 3_600_000, List.of(), null, "sub",
        30, false);

    public OAuthBearerSettings {
        expectedAudience = List.copyOf(expectedAudience);
        if (jwksRefreshMs < 1000) {
            throw new IllegalArgumentException("sasl.oauthbearer.jwks.endpoint.refresh.ms must be at least 1000");
        }
        if (clockSkewSeconds < 0) {
            throw new IllegalArgumentException("sasl.oauthbearer.clock.skew.seconds must be >= 0");
        }
        if (subClaimName == null || subClaimName.isBlank()) {
            throw new IllegalArgumentException("sasl.oauthbearer.sub.claim.name must name a claim");
        }
    }

    /** Whether tokens can be validated at all (a key set, or unsecured tokens allowed). */
    public boolean usable() {
        return jwksFile != null || allowUnsecured;
    }

    /**
     * The key file of {@code sasl.oauthbearer.jwks.endpoint.url}: only {@code file:} URLs are served (fetching an
     * issuer's keys over HTTPS is not implemented: the broker would need an HTTP client off its shards).
     */
    public static Path jwksFile(String url) {
        String u = url.trim();
        if (!u.startsWith("file:")) {
            throw new IllegalArgumentException("sasl.oauthbearer.jwks.endpoint.url " + u + ": only file: URLs are"
                + " served (put the issuer's JWKS in a file)");
        }
        try {
            return Path.of(java.net.URI.create(u));
        } catch (IllegalArgumentException e) {
            return Path.of(u.substring("file:".length()));
        }
    }
}
