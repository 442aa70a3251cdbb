package dev.isthmus.gateway.security;

import java.io.IOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.AlgorithmParameters;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.ECParameterSpec;
import java.security.spec.ECPoint;
import java.security.spec.ECPublicKeySpec;
import java.security.spec.RSAPublicKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/**
 * Validates OAUTHBEARER tokens: JWTs (RFC 7519) signed with RS256/384/512 or ES256/384/512 (RFC 7518) by a key of
 * the configured JSON Web Key Set (RFC 7517), checked as Kafka's broker validator does: a signature by a known key,
 * {@code exp} and {@code iat} present, {@code exp} and {@code nbf} within the clock skew, {@code iss} and {@code aud}
 * when expected values are configured, and the principal's claim ({@code sub}) present. Unsigned tokens
 * ({@code alg: none}) pass only with {@link OAuthBearerSettings#allowUnsecured()}.
 *
 * <p>Threads: {@link #validate} runs on the broker's security workers (signature verification is CPU work, kept off
 * the shards) and is thread-safe; the key set is an immutable list behind a volatile reference, re-read from its file
 * when the file changed, checked every refresh interval and, at most once a second, when a token names an unknown key
 * id (key rotation). Loading happens on those workers or at start, never on a shard. An {@code https:} key set is
 * fetched the same way (Kafka's {@code RefreshingHttpsJwks}): once at start (an unreachable issuer is logged and
 * tried again at the first token), then when a refresh is due or a token names an unknown key id, by one worker at
 * a time with a {@value #FETCH_TIMEOUT_S} s timeout, the keys fetched before staying in use when a fetch fails.
 */
public final class OAuthBearerValidator {
    private static final System.Logger LOG = System.getLogger(OAuthBearerValidator.class.getName());
    private static final long UNKNOWN_KID_RECHECK_MS = 1000;
    static final int FETCH_TIMEOUT_S = 10;
    private static final int MAX_JWKS_BYTES = 1 << 20;

    /** The outcome of one token. */
    public sealed interface Result {
    }

    /** A valid token: its principal name and when it expires (epoch ms). */
    public record Valid(String principal, long expiresAtMs) implements Result {
    }

    /** An invalid token and why (for the broker's log; never the token). */
    public record Invalid(String reason) implements Result {
    }

    /** One verification key of the set. */
    record Jwk(String kid, String alg, PublicKey key) {
    }

    private record Keys(List<Jwk> keys, long modifiedMs, long checkedMs) {
    }

    private final OAuthBearerSettings settings;
    private volatile Keys keys;
    /** The HTTPS key set's client (null for a file); fetches are serialised by {@link #fetchLock}. */
    private final java.net.http.HttpClient http;
    private final Object fetchLock = new Object();

    private OAuthBearerValidator(OAuthBearerSettings settings, Keys keys, java.net.http.HttpClient http) {
        this.settings = settings;
        this.keys = keys;
        this.http = http;
    }

    /** Loads the key set (file I/O: call off the shards). Null when OAUTHBEARER has nothing to validate with. */
    public static OAuthBearerValidator load(OAuthBearerSettings settings) throws IOException {
        return load(settings, null);
    }

    /**
     * As {@link #load(OAuthBearerSettings)}; an {@code https:} key set's server certificate is checked with
     * {@code trust} (null: the JDK's default trust). Fetches it once (blocking, off the shards).
     */
    public static OAuthBearerValidator load(OAuthBearerSettings settings, javax.net.ssl.SSLContext trust)
        throws IOException {
        if (!settings.usable()) {
            return null;
        }
        if (settings.jwksUrl() != null) {
            java.net.http.HttpClient.Builder b = java.net.http.HttpClient.newBuilder()
                .connectTimeout(java.time.Duration.ofSeconds(FETCH_TIMEOUT_S))
                .followRedirects(java.net.http.HttpClient.Redirect.NEVER);
            if (trust != null) {
                b.sslContext(trust);
            }
            OAuthBearerValidator v = new OAuthBearerValidator(settings, new Keys(List.of(), 0, Long.MIN_VALUE / 2),
                b.build());
            v.fetch(System.currentTimeMillis());
            return v;
        }
        Keys k = new Keys(List.of(), 0, System.currentTimeMillis());
        if (settings.jwksFile() != null) {
            Path f = settings.jwksFile();
            k = new Keys(parseJwks(Files.readString(f, StandardCharsets.UTF_8)), Files.getLastModifiedTime(f)
                .toMillis(), System.currentTimeMillis());
            if (k.keys.isEmpty()) {
                throw new IOException("sasl.oauthbearer.jwks.endpoint.url " + f + " holds no RSA or EC signing key");
            }
        }
        return new OAuthBearerValidator(settings, k, null);
    }

    /**
     * Fetches the HTTPS key set now (one caller at a time; a caller that waited finds it fresh and returns). Keeps the
     * keys it had when the fetch fails, and logs why.
     */
    private List<Jwk> fetch(long nowMs) {
        synchronized (fetchLock) {
            Keys k = keys;
            if (nowMs - k.checkedMs < UNKNOWN_KID_RECHECK_MS) {
                return k.keys; // fetched meanwhile by another worker
            }
            java.net.URI url = settings.jwksUrl();
            try {
                java.net.http.HttpResponse<byte[]> r = http.send(java.net.http.HttpRequest.newBuilder(url)
                    .timeout(java.time.Duration.ofSeconds(FETCH_TIMEOUT_S)).header("Accept", "application/json").GET()
                    .build(), java.net.http.HttpResponse.BodyHandlers.ofByteArray());
                if (r.statusCode() != 200) {
                    throw new IOException("HTTP status " + r.statusCode());
                }
                if (r.body().length > MAX_JWKS_BYTES) {
                    throw new IOException("a key set of " + r.body().length + " bytes (at most " + MAX_JWKS_BYTES + ")");
                }
                List<Jwk> loaded = parseJwks(new String(r.body(), StandardCharsets.UTF_8));
                if (loaded.isEmpty()) {
                    throw new IOException("it holds no RSA or EC signing key");
                }
                keys = new Keys(loaded, 0, nowMs);
                LOG.log(System.Logger.Level.INFO, "fetched the OAUTHBEARER key set " + url + ": " + loaded.size()
                    + " key(s)");
                return loaded;
            } catch (IOException | RuntimeException e) {
                keys = new Keys(k.keys, 0, nowMs);
                LOG.log(System.Logger.Level.WARNING, "could not fetch the OAUTHBEARER key set " + url + " (the "
                    + k.keys.size() + " key(s) fetched before stay in use): " + e.getMessage());
                return k.keys;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return k.keys;
            }
        }
    }

    public OAuthBearerSettings settings() {
        return settings;
    }

    /** Validates {@code token} (the compact JWS) at {@code nowMs}. */
    public Result validate(String token, long nowMs) {
        try {
            return check(token, nowMs);
        } catch (RuntimeException e) {
            return new Invalid("malformed token: " + e.getMessage());
        }
    }

    private Result check(String token, long nowMs) {
        String[] parts = token.split("\\.", -1);
        if (parts.length != 3) {
            return new Invalid("a JWT has three parts, this one " + parts.length);
        }
        Base64.Decoder b64 = Base64.getUrlDecoder();
        Map<String, Object> header = Json.parseObject(new String(b64.decode(parts[0]), StandardCharsets.UTF_8));
        Map<String, Object> claims = Json.parseObject(new String(b64.decode(parts[1]), StandardCharsets.UTF_8));
        if (!(header.get("alg") instanceof String alg)) {
            return new Invalid("the header names no alg");
        }
        if (header.containsKey("crit")) {
            return new Invalid("critical header parameters are not understood");
        }
        if (alg.equals("none")) {
            if (!settings.allowUnsecured()) {
                return new Invalid("unsecured tokens (alg none) are not accepted");
            }
            if (!parts[2].isEmpty()) {
                return new Invalid("an unsecured token carries no signature");
            }
        } else {
            String problem = verify(alg, header.get("kid") instanceof String k ? k : null,
                (parts[0] + "." + parts[1]).getBytes(StandardCharsets.US_ASCII), b64.decode(parts[2]), nowMs);
            if (problem != null) {
                return new Invalid(problem);
            }
        }
        long skewMs = settings.clockSkewSeconds() * 1000L;
        Long exp = numericDate(claims, "exp");
        if (exp == null) {
            return new Invalid("no exp claim");
        }
        if (nowMs >= exp + skewMs) {
            return new Invalid("expired at " + java.time.Instant.ofEpochMilli(exp));
        }
        if (!alg.equals("none") && numericDate(claims, "iat") == null) {
            return new Invalid("no iat claim");
        }
        Long nbf = numericDate(claims, "nbf");
        if (nbf != null && nowMs + skewMs < nbf) {
            return new Invalid("not valid before " + java.time.Instant.ofEpochMilli(nbf));
        }
        if (settings.expectedIssuer() != null && !settings.expectedIssuer().equals(claims.get("iss"))) {
            return new Invalid("issuer " + claims.get("iss") + " is not the expected " + settings.expectedIssuer());
        }
        if (!settings.expectedAudience().isEmpty()) {
            Object aud = claims.get("aud");
            List<?> auds = aud instanceof List<?> l ? l : aud == null ? List.of() : List.of(aud);
            if (auds.stream().noneMatch(settings.expectedAudience()::contains)) {
                return new Invalid("audience " + aud + " names none of " + settings.expectedAudience());
            }
        }
        if (!(claims.get(settings.subClaimName()) instanceof String sub) || sub.isBlank()) {
            return new Invalid("no " + settings.subClaimName() + " claim naming the principal");
        }
        return new Valid(sub, exp);
    }

    /** Seconds since the epoch (RFC 7519's NumericDate, possibly fractional) as ms; null when absent. */
    private static Long numericDate(Map<String, Object> claims, String name) {
        Object v = claims.get(name);
        if (v == null) {
            return null;
        }
        if (!(v instanceof BigDecimal d)) {
            throw new IllegalArgumentException("claim " + name + " is not a number");
        }
        return d.movePointRight(3).longValue();
    }

    /** Null when {@code signature} is a valid signature of {@code input} by a key of the set, else why not. */
    private String verify(String alg, String kid, byte[] input, byte[] signature, long nowMs) {
        String jca = switch (alg) {
            case "RS256" -> "SHA256withRSA";
            case "RS384" -> "SHA384withRSA";
            case "RS512" -> "SHA512withRSA";
            case "ES256" -> "SHA256withECDSAinP1363Format";
            case "ES384" -> "SHA384withECDSAinP1363Format";
            case "ES512" -> "SHA512withECDSAinP1363Format";
            default -> null;
        };
        if (jca == null) {
            return "algorithm " + alg + " is not accepted (RS256/384/512, ES256/384/512)";
        }
        List<Jwk> candidates = candidates(alg, kid, refreshed(nowMs, false));
        if (candidates.isEmpty() && kid != null) {
            candidates = candidates(alg, kid, refreshed(nowMs, true)); // a rotated key, perhaps
        }
        if (candidates.isEmpty()) {
            return "no key " + (kid == null ? "" : "with kid " + kid + " ") + "for " + alg + " in the key set";
        }
        for (Jwk k : candidates) {
            try {
                Signature s = Signature.getInstance(jca);
                s.initVerify(k.key());
                s.update(input);
                if (s.verify(signature)) {
                    return null;
                }
            } catch (GeneralSecurityException e) {
                // a signature of the wrong shape for this key: not valid
            }
        }
        return "the signature does not verify";
    }

    private static List<Jwk> candidates(String alg, String kid, List<Jwk> all) {
        List<Jwk> out = new ArrayList<>();
        boolean rsa = alg.startsWith("RS");
        for (Jwk k : all) {
            boolean typeMatches = rsa ? k.key() instanceof RSAPublicKey : k.key() instanceof ECPublicKey;
            if (typeMatches && (kid == null || kid.equals(k.kid())) && (k.alg() == null || k.alg().equals(alg))) {
                out.add(k);
            }
        }
        return out;
    }

    /** The key set, re-read first when its file changed and a check is due (or forced, at most once a second). */
    private List<Jwk> refreshed(long nowMs, boolean unknownKid) {
        Keys k = keys;
        Path f = settings.jwksFile();
        long due = unknownKid ? UNKNOWN_KID_RECHECK_MS : settings.jwksRefreshMs();
        if (http != null && nowMs - k.checkedMs >= due) {
            return fetch(nowMs);
        }
        if (f == null || nowMs - k.checkedMs < due) {
            return k.keys;
        }
        try {
            long modified = Files.getLastModifiedTime(f).toMillis();
            if (modified != k.modifiedMs) {
                List<Jwk> loaded = parseJwks(Files.readString(f, StandardCharsets.UTF_8));
                keys = k = new Keys(loaded, modified, nowMs);
                LOG.log(System.Logger.Level.INFO, "reloaded the OAUTHBEARER key set " + f + ": " + loaded.size()
                    + " key(s)");
            } else {
                keys = k = new Keys(k.keys, k.modifiedMs, nowMs);
            }
        } catch (IOException | RuntimeException e) {
            keys = k = new Keys(k.keys, k.modifiedMs, nowMs);
            LOG.log(System.Logger.Level.WARNING, "could not reload the OAUTHBEARER key set " + f + " (the keys loaded"
                + " before stay): " + e.getMessage());
        }
        return k.keys;
    }

    /** The RSA and EC signature keys of a JWKS document (others, and keys for encryption, are skipped). */
    static List<Jwk> parseJwks(String text) {
        Map<String, Object> doc = Json.parseObject(text);
        if (!(doc.get("keys") instanceof List<?> list)) {
            throw new IllegalArgumentException("a JWKS is an object with a \"keys\" array");
        }
        List<Jwk> out = new ArrayList<>();
        Base64.Decoder b64 = Base64.getUrlDecoder();
        for (Object o : list) {
            if (!(o instanceof Map<?, ?> m) || "enc".equals(m.get("use"))) {
                continue;
            }
            String kid = m.get("kid") instanceof String s ? s : null;
            String alg = m.get("alg") instanceof String s ? s : null;
            try {
                if ("RSA".equals(m.get("kty"))) {
                    BigInteger n = new BigInteger(1, b64.decode((String) m.get("n")));
                    BigInteger e = new BigInteger(1, b64.decode((String) m.get("e")));
                    out.add(new Jwk(kid, alg, KeyFactory.getInstance("RSA").generatePublic(new RSAPublicKeySpec(n, e))));
                } else if ("EC".equals(m.get("kty"))) {
                    String curve = switch (String.valueOf(m.get("crv"))) {
                        case "P-256" -> "secp256r1";
                        case "P-384" -> "secp384r1";
                        case "P-521" -> "secp521r1";
                        default -> throw new IllegalArgumentException("curve " + m.get("crv") + " is not served");
                    };
                    AlgorithmParameters p = AlgorithmParameters.getInstance("EC");
                    p.init(new ECGenParameterSpec(curve));
                    ECPoint w = new ECPoint(new BigInteger(1, b64.decode((String) m.get("x"))),
                        new BigInteger(1, b64.decode((String) m.get("y"))));
                    out.add(new Jwk(kid, alg, KeyFactory.getInstance("EC").generatePublic(new ECPublicKeySpec(w,
                        p.getParameterSpec(ECParameterSpec.class)))));
                }
            } catch (GeneralSecurityException | RuntimeException e) {
                throw new IllegalArgumentException("JWKS key " + kid + ": " + e.getMessage(), e);
            }
        }
        return List.copyOf(out);
    }
}
