package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.protocol.ByteSlice;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.SaslAuthenticateRequestData;
import dev.isthmus.gateway.protocol.message.SaslAuthenticateResponseData;
import dev.isthmus.gateway.protocol.message.SaslHandshakeRequestData;
import dev.isthmus.gateway.protocol.message.SaslHandshakeResponseData;
import dev.isthmus.gateway.security.OAuthBearerSettings;
import dev.isthmus.gateway.security.SaslSettings;
import dev.isthmus.gateway.security.SecurityProtocol;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.security.auth.AuthenticateCallbackHandler;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerToken;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerTokenCallback;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import javax.security.auth.callback.Callback;
import javax.security.auth.callback.UnsupportedCallbackException;
import javax.security.auth.login.AppConfigurationEntry;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.ECGenParameterSpec;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * OAUTHBEARER with JWTs validated against a JSON Web Key Set file: kafka-clients authenticate with tokens from a
 * login callback handler that signs them with keys this test generates (RS256 and ES256; the broker holds only the
 * public halves, in the JWKS); a producer and an admin client work as the token's {@code sub}. Expired, not yet
 * valid, wrongly issued, wrongly addressed, unsigned and foreign-key tokens are refused with
 * SASL_AUTHENTICATION_FAILED, after RFC 7628's error challenge on the wire; the session lifetime answered is the
 * token's remaining life (KIP-368). Unsigned tokens minted by Kafka's own unsecured login handler pass only on a
 * broker started with {@code sasl.oauthbearer.allow.unsecured.tokens}.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(180)
class OAuthBearerTest {
    static KeyPair rsa;
    static KeyPair ec;
    /** A key the JWKS does not hold (published under the RSA key's id by the "foreign" tokens). */
    static KeyPair foreign;

    @BeforeAll
    static void keys() throws Exception {
        KeyPairGenerator r = KeyPairGenerator.getInstance("RSA");
        r.initialize(2048);
        rsa = r.generateKeyPair();
        foreign = r.generateKeyPair();
        KeyPairGenerator e = KeyPairGenerator.getInstance("EC");
        e.initialize(new ECGenParameterSpec("secp256r1"));
        ec = e.generateKeyPair();
    }

    private static String b64(byte[] b) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    }

    private static String unsigned(BigInteger v, int bytes) {
        byte[] a = v.toByteArray();
        byte[] out = new byte[bytes];
        int n = Math.min(a.length, bytes);
        System.arraycopy(a, a.length - n, out, bytes - n, n);
        return b64(out);
    }

    static Path jwks(Path dir) throws Exception {
        RSAPublicKey rp = (RSAPublicKey) rsa.getPublic();
        ECPublicKey ep = (ECPublicKey) ec.getPublic();
        String json = "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"rsa-1\",\"use\":\"sig\",\"alg\":\"RS256\",\"n\":\""
            + b64(rp.getModulus().toByteArray()) + "\",\"e\":\"" + b64(rp.getPublicExponent().toByteArray()) + "\"},"
            + "{\"kty\":\"EC\",\"kid\":\"ec-1\",\"crv\":\"P-256\",\"x\":\"" + unsigned(ep.getW().getAffineX(), 32)
            + "\",\"y\":\"" + unsigned(ep.getW().getAffineY(), 32) + "\"}]}";
        Path f = dir.resolve("jwks.json");
        Files.writeString(f, json);
        return f;
    }

    /** A compact JWS of {@code claims} signed with {@code alg} ("none": unsigned) by {@code key} under {@code kid}. */
    static String jwt(String alg, String kid, PrivateKey key, String claims) throws Exception {
        String header = "{\"alg\":\"" + alg + "\",\"typ\":\"JWT\"" + (kid == null ? "" : ",\"kid\":\"" + kid + "\"")
            + "}";
        String input = b64(header.getBytes(StandardCharsets.UTF_8)) + "." + b64(claims.getBytes(StandardCharsets.UTF_8));
        if (alg.equals("none")) {
            return input + ".";
        }
        Signature s = Signature.getInstance(alg.equals("RS256") ? "SHA256withRSA" : "SHA256withECDSAinP1363Format");
        s.initSign(key);
        s.update(input.getBytes(StandardCharsets.US_ASCII));
        return input + "." + b64(s.sign());
    }

    static String claims(String sub, long iatS, long expS, String iss, String aud, Long nbfS) {
        return "{\"sub\":\"" + sub + "\",\"iat\":" + iatS + ",\"exp\":" + expS + ",\"iss\":\"" + iss + "\",\"aud\":[\""
            + aud + "\",\"other\"]" + (nbfS == null ? "" : ",\"nbf\":" + nbfS) + ",\"scope\":\"kafka\"}";
    }

    /**
     * The login callback handler of the test clients: mints one token from its JAAS options ({@code kind}: rs256,
     * es256, expired, early, issuer, audience, none, foreign; {@code sub}).
     */
    public static final class TestTokens implements AuthenticateCallbackHandler {
        private Map<String, ?> options;

        @Override
        public void configure(Map<String, ?> configs, String mechanism, List<AppConfigurationEntry> entries) {
            options = entries.get(0).getOptions();
        }

        @Override
        public void handle(Callback[] callbacks) throws UnsupportedCallbackException {
            for (Callback c : callbacks) {
                if (!(c instanceof OAuthBearerTokenCallback t)) {
                    throw new UnsupportedCallbackException(c);
                }
                try {
                    t.token(token((String) options.get("kind"), (String) options.get("sub")));
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }
        }

        static OAuthBearerToken token(String kind, String sub) throws Exception {
            long now = System.currentTimeMillis() / 1000;
            long exp = kind.equals("expired") ? now - 3600 : now + 600;
            String iss = kind.equals("issuer") ? "https://elsewhere.test" : "https://issuer.test";
            String aud = kind.equals("audience") ? "someone-else" : "isthmus";
            Long nbf = kind.equals("early") ? now + 3600 : now - 10;
            String c = claims(sub, now, exp, iss, aud, nbf);
            String value = switch (kind) {
                case "es256" -> jwt("ES256", "ec-1", ec.getPrivate(), c);
                case "none" -> jwt("none", null, null, c);
                case "foreign" -> jwt("RS256", "rsa-1", foreign.getPrivate(), c);
                default -> jwt("RS256", "rsa-1", rsa.getPrivate(), c);
            };
            long expMs = exp * 1000;
            return new OAuthBearerToken() {
                public String value() {
                    return value;
                }

                public Set<String> scope() {
                    return Set.of("kafka");
                }

                public long lifetimeMs() {
                    return Math.max(expMs, System.currentTimeMillis() + 1000); // the client refuses a dead token itself
                }

                public String principalName() {
                    return sub;
                }

                public Long startTimeMs() {
                    return now * 1000;
                }
            };
        }

        @Override
        public void close() {
        }
    }

    static BrokerConfig config(Path dir, OAuthBearerSettings o) {
        SaslSettings sasl = SaslSettings.DEFAULTS.withOAuthBearer(List.of("OAUTHBEARER", "SCRAM-SHA-512"), o);
        return BrokerConfig.defaults().toBuilder().dataDir(dir.resolve("data")).shards(2).memoryBytes(256L << 20)
            .pin(false).listeners(List.of(SecureClients.listener("SASL_PLAINTEXT", SecurityProtocol.SASL_PLAINTEXT)))
            .sasl(sasl).build();
    }

    static Properties client(Broker b, String kind, String sub) {
        Properties p = new Properties();
        p.put("security.protocol", "SASL_PLAINTEXT");
        p.put("sasl.mechanism", "OAUTHBEARER");
        p.put("sasl.login.callback.handler.class", TestTokens.class.getName());
        p.put("sasl.jaas.config", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required"
            + " kind=\"" + kind + "\" sub=\"" + sub + "\";");
        p.put("request.timeout.ms", "10000");
        p.put("default.api.timeout.ms", "15000");
        return SecureClients.props(b, "SASL_PLAINTEXT", p);
    }

    @Test
    void shouldAuthenticateSignedTokensAndRefuseBadOnes(@TempDir Path dir) throws Exception {
        OAuthBearerSettings o = new OAuthBearerSettings(jwks(dir), 3_600_000, List.of("isthmus"), "https://issuer.test",
            "sub", 30, false);
        try (Broker b = Broker.start(config(dir, o))) {
            long before = Connection.authentications(b)[0];
            ScramCredentialsTest.produce(client(b, "rs256", "alice"), "oauth", 5);
            assertTrue(Connection.authentications(b)[0] > before);
            try (Admin admin = Admin.create(client(b, "es256", "bob"))) {
                assertEquals(1, admin.describeCluster().nodes().get(30, TimeUnit.SECONDS).size());
                assertTrue(b.connectionPrincipals().contains("User:bob@SASL_PLAINTEXT"), b.connectionPrincipals()
                    .toString());
            }
            for (String kind : List.of("expired", "early", "issuer", "audience", "none", "foreign")) {
                try (Admin admin = Admin.create(client(b, kind, "mallory"))) {
                    ExecutionException e = assertThrows(ExecutionException.class,
                        () -> admin.describeCluster().nodes().get(30, TimeUnit.SECONDS), kind);
                    assertInstanceOf(SaslAuthenticationException.class, e.getCause(), kind + ": " + e);
                }
            }

            // On the wire: a valid token's session lasts what is left of it; a bad one gets RFC 7628's challenge,
            // the client's 0x01, then SASL_AUTHENTICATION_FAILED.
            try (WireClient c = new WireClient(b.port("SASL_PLAINTEXT"), 30_000)) {
                handshake(c);
                String token = TestTokens.token("rs256", "alice").value();
                SaslAuthenticateResponseData a = authenticate(c, 2, ("n,,\u0001auth=Bearer " + token
                    + "\u0001\u0001").getBytes(StandardCharsets.UTF_8));
                assertEquals(0, a.errorCode, a.errorMessage);
                assertTrue(a.sessionLifetimeMs > 500_000 && a.sessionLifetimeMs <= 600_000, "lifetime "
                    + a.sessionLifetimeMs + " ms of a token valid for 600 s");
            }
            try (WireClient c = new WireClient(b.port("SASL_PLAINTEXT"), 30_000)) {
                handshake(c);
                String token = TestTokens.token("foreign", "mallory").value();
                SaslAuthenticateResponseData a = authenticate(c, 3, ("n,,\u0001auth=Bearer " + token
                    + "\u0001\u0001").getBytes(StandardCharsets.UTF_8));
                assertEquals(0, a.errorCode);
                assertEquals("{\"status\":\"invalid_token\"}", new String(a.authBytes.toArray(), StandardCharsets.UTF_8));
                SaslAuthenticateResponseData end = authenticate(c, 4, new byte[] {1});
                assertEquals(ErrorCodes.SASL_AUTHENTICATION_FAILED, end.errorCode);
                assertTrue(c.closedByBroker());
            }
        }
    }

    @Test
    void shouldTakeUnsecuredTokensOnlyWhenAllowed(@TempDir Path dir) throws Exception {
        OAuthBearerSettings o = new OAuthBearerSettings(null, 3_600_000, List.of(), null, "sub", 30, true);
        try (Broker b = Broker.start(config(dir, o))) {
            // Kafka's own unsecured login handler (the default without sasl.login.callback.handler.class).
            Properties p = new Properties();
            p.put("security.protocol", "SASL_PLAINTEXT");
            p.put("sasl.mechanism", "OAUTHBEARER");
            p.put("sasl.jaas.config", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required"
                + " unsecuredLoginStringClaim_sub=\"carol\";");
            try (Admin admin = Admin.create(SecureClients.props(b, "SASL_PLAINTEXT", p))) {
                assertEquals(1, admin.describeCluster().nodes().get(30, TimeUnit.SECONDS).size());
                assertTrue(b.connectionPrincipals().contains("User:carol@SASL_PLAINTEXT"), b.connectionPrincipals()
                    .toString());
            }
        }
        assertThrows(IllegalArgumentException.class, () -> config(dir, OAuthBearerSettings.DEFAULTS),
            "OAUTHBEARER with neither a key set nor unsecured tokens is a configuration error");
    }

    private static void handshake(WireClient c) throws Exception {
        SaslHandshakeRequestData h = new SaslHandshakeRequestData();
        h.mechanism = "OAUTHBEARER";
        c.send(WireClient.frame(ApiKeys.SASL_HANDSHAKE, (short) 1, 1, h));
        SaslHandshakeResponseData r = WireClient.body(c.readFrame(), ApiKeys.SASL_HANDSHAKE, (short) 1);
        assertEquals(0, r.errorCode);
    }

    private static SaslAuthenticateResponseData authenticate(WireClient c, int correlation, byte[] token)
        throws Exception {
        SaslAuthenticateRequestData a = new SaslAuthenticateRequestData();
        a.authBytes = ByteSlice.of(token);
        c.send(WireClient.frame(ApiKeys.SASL_AUTHENTICATE, (short) 2, correlation, a));
        return WireClient.body(c.readFrame(), ApiKeys.SASL_AUTHENTICATE, (short) 2);
    }
}
