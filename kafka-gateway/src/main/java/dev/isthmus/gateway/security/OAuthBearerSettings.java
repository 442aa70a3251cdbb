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
 * @param jwksUrl           {@code sasl.oauthbearer.jwks.endpoint.url} as an {@code https:} URL: the issuer's key set,
 *                          fetched off the shards, cached, and fetched again every {@code jwksRefreshMs} and on an
 *                          unknown key id; null = none (at most one of this and {@code jwksFile})
 */
public record OAuthBearerSettings(Path jwksFile, long jwksRefreshMs, List<String> expectedAudience,
                                  String expectedIssuer, String subClaimName, int clockSkewSeconds,
                                  boolean allowUnsecured, java.net.URI jwksUrl) {
    public static final OAuthBearerSettings DEFAULTS = new OAuthBearerSettings(null, 3_600_000, List.of(), null, "sub",
        30, false);

    /** A key set from a file (or none). */
    public OAuthBearerSettings(Path jwksFile, long jwksRefreshMs, List<String> expectedAudience, String expectedIssuer,
                               String subClaimName, int clockSkewSeconds, boolean allowUnsecured) {
        this(jwksFile, jwksRefreshMs, expectedAudience, expectedIssuer, subClaimName, clockSkewSeconds, allowUnsecured,
            null);
    }

    public OAuthBearerSettings {
        expectedAudience = List.copyOf(expectedAudience);
        if (jwksRefreshMs < 1000) {
            throw new IllegalArgumentException("sasl.oauthbearer.jwks.endpoint.refresh.ms must be at least 1000");
        }
        if (clockSkewSeconds < 0) {
            throw new IllegalArgumentException("sasl.oauthbearer.clock.skew.seconds must be >= 0");
        }
        if (jwksFile != null && jwksUrl != null) {
            throw new IllegalArgumentException("a key set from a file or from a URL, not both");
        }
        if (jwksUrl != null && !"https".equalsIgnoreCase(jwksUrl.getScheme())) {
            throw new IllegalArgumentException("sasl.oauthbearer.jwks.endpoint.url " + jwksUrl + ": only https: and file:"
                + " URLs are served");
        }
        if (subClaimName == null || subClaimName.isBlank()) {
            throw new IllegalArgumentException("sasl.oauthbearer.sub.claim.name must name a claim");
        }
    }

    /** Whether tokens can be validated at all (a key set, or unsecured tokens allowed). */
    public boolean usable() {
        return jwksFile != null || jwksUrl != null || allowUnsecured;
    }

    /** Whether {@code sasl.oauthbearer.jwks.endpoint.url} names an issuer's HTTPS endpoint (else a file). */
    public static boolean isHttps(String url) {
        return url.trim().regionMatches(true, 0, "https:", 0, 6);
    }

    /** The issuer's HTTPS key set endpoint of {@code sasl.oauthbearer.jwks.endpoint.url}. */
    public static java.net.URI jwksUrl(String url) {
        try {
            java.net.URI u = new java.net.URI(url.trim());
            if (u.getHost() == null) {
                throw new IllegalArgumentException("sasl.oauthbearer.jwks.endpoint.url " + url + " names no host");
            }
            return u;
        } catch (java.net.URISyntaxException e) {
            throw new IllegalArgumentException("sasl.oauthbearer.jwks.endpoint.url " + url + " is not a URL: "
                + e.getReason());
        }
    }

    /** The key file of {@code sasl.oauthbearer.jwks.endpoint.url} as a {@code file:} URL. */
    public static Path jwksFile(String url) {
        String u = url.trim();
        if (!u.startsWith("file:")) {
            throw new IllegalArgumentException("sasl.oauthbearer.jwks.endpoint.url " + u + ": only https: and file: URLs"
                + " are served");
        }
        try {
            return Path.of(java.net.URI.create(u));
        } catch (IllegalArgumentException e) {
            return Path.of(u.substring("file:".length()));
        }
    }
}
