package dev.isthmus.gateway.security;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
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

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The checks of {@link OAuthBearerValidator}, each with the reason it gives (the end-to-end path with kafka-clients is
 * {@code OAuthBearerTest}'s), the key set's reload on an unknown key id, and the strictness of {@link Json}.
 */
class OAuthBearerValidatorTest {
    static KeyPair rsa;
    static KeyPair rsa2;
    static KeyPair ec;
    static final long NOW_S = 2_000_000_000L;

    @BeforeAll
    static void keys() throws Exception {
        KeyPairGenerator r = KeyPairGenerator.getInstance("RSA");
        r.initialize(2048);
        rsa = r.generateKeyPair();
        rsa2 = r.generateKeyPair();
        KeyPairGenerator e = KeyPairGenerator.getInstance("EC");
        e.initialize(new ECGenParameterSpec("secp256r1"));
        ec = e.generateKeyPair();
    }

    static String b64(byte[] b) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    }

    static String fixed(BigInteger v) {
        byte[] a = v.toByteArray();
        byte[] out = new byte[32];
        int n = Math.min(a.length, 32);
        System.arraycopy(a, a.length - n, out, 32 - n, n);
        return b64(out);
    }

    static String rsaJwk(String kid, KeyPair k) {
        RSAPublicKey p = (RSAPublicKey) k.getPublic();
        return "{\"kty\":\"RSA\",\"kid\":\"" + kid + "\",\"n\":\"" + b64(p.getModulus().toByteArray()) + "\",\"e\":\""
            + b64(p.getPublicExponent().toByteArray()) + "\"}";
    }

    static String ecJwk(String kid, KeyPair k) {
        ECPublicKey p = (ECPublicKey) k.getPublic();
        return "{\"kty\":\"EC\",\"kid\":\"" + kid + "\",\"crv\":\"P-256\",\"x\":\"" + fixed(p.getW().getAffineX())
            + "\",\"y\":\"" + fixed(p.getW().getAffineY()) + "\"}";
    }

    static String jwt(String alg, String kid, PrivateKey key, String claims) throws Exception {
        String input = b64(("{\"alg\":\"" + alg + "\",\"kid\":\"" + kid + "\"}").getBytes(StandardCharsets.UTF_8)) + "."
            + b64(claims.getBytes(StandardCharsets.UTF_8));
        if (key == null) {
            return input + ".";
        }
        Signature s = Signature.getInstance(alg.equals("RS256") ? "SHA256withRSA" : "SHA256withECDSAinP1363Format");
        s.initSign(key);
        s.update(input.getBytes(StandardCharsets.US_ASCII));
        return input + "." + b64(s.sign());
    }

    static OAuthBearerValidator validator(Path jwks, boolean unsecured) throws Exception {
        return OAuthBearerValidator.load(new OAuthBearerSettings(jwks, 3_600_000, List.of("isthmus"),
            "https://issuer.test", "sub", 30, unsecured));
    }

    static String reason(OAuthBearerValidator v, String token) {
        return assertInstanceOf(OAuthBearerValidator.Invalid.class, v.validate(token, NOW_S * 1000)).reason();
    }

    static final String GOOD = "{\"sub\":\"alice\",\"iat\":" + NOW_S + ",\"exp\":" + (NOW_S + 600)
        + ",\"iss\":\"https://issuer.test\",\"aud\":\"isthmus\"}";

    @Test
    void shouldAcceptOnlyTokensSignedByAKeyOfTheSetWithValidClaims(@TempDir Path dir) throws Exception {
        Path jwks = dir.resolve("jwks.json");
        Files.writeString(jwks, "{\"keys\":[" + rsaJwk("r1", rsa) + "," + ecJwk("e1", ec)
            + ",{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}");
        OAuthBearerValidator v = validator(jwks, false);
        long now = NOW_S * 1000;
        assertEquals(new OAuthBearerValidator.Valid("alice", (NOW_S + 600) * 1000),
            v.validate(jwt("RS256", "r1", rsa.getPrivate(), GOOD), now));
        assertEquals(new OAuthBearerValidator.Valid("alice", (NOW_S + 600) * 1000),
            v.validate(jwt("ES256", "e1", ec.getPrivate(), GOOD), now));
        assertTrue(reason(v, jwt("RS256", "r1", rsa2.getPrivate(), GOOD)).contains("signature does not verify"));
        assertTrue(reason(v, jwt("ES256", "r1", ec.getPrivate(), GOOD)).contains("no key with kid r1 for ES256"));
        assertTrue(reason(v, jwt("HS256", "r1", null, GOOD)).contains("not accepted"));
        assertTrue(reason(v, jwt("none", "r1", null, GOOD)).contains("unsecured tokens"));
        assertTrue(reason(v, jwt("RS256", "r1", rsa.getPrivate(), GOOD.replace("\"exp\":" + (NOW_S + 600),
            "\"exp\":" + (NOW_S - 31)))).contains("expired"));
        // Within the clock skew (30 s) an expired token still passes, as Kafka's validator lets it.
        assertInstanceOf(OAuthBearerValidator.Valid.class, v.validate(jwt("RS256", "r1", rsa.getPrivate(),
            GOOD.replace("\"exp\":" + (NOW_S + 600), "\"exp\":" + (NOW_S - 29))), now));
        assertTrue(reason(v, jwt("RS256", "r1", rsa.getPrivate(), GOOD.replace("}", ",\"nbf\":" + (NOW_S + 60) + "}")))
            .contains("not valid before"));
        assertTrue(reason(v, jwt("RS256", "r1", rsa.getPrivate(), GOOD.replace("issuer.test", "elsewhere.test")))
            .contains("issuer"));
        assertTrue(reason(v, jwt("RS256", "r1", rsa.getPrivate(), GOOD.replace("\"isthmus\"", "[\"a\",\"b\"]")))
            .contains("audience"));
        assertTrue(reason(v, jwt("RS256", "r1", rsa.getPrivate(), GOOD.replace("\"sub\":\"alice\",", "")))
            .contains("no sub claim"));
        assertTrue(reason(v, jwt("RS256", "r1", rsa.getPrivate(), GOOD.replace("\"iat\":" + NOW_S + ",", "")))
            .contains("no iat"));
        assertTrue(reason(v, "a.b").contains("three parts"));
        assertTrue(reason(v, "e30.e30.").contains("no alg"));
        assertTrue(reason(v, "!!.e30.").contains("malformed"));
    }

    @Test
    void shouldReloadTheKeySetForAnUnknownKeyId(@TempDir Path dir) throws Exception {
        Path jwks = dir.resolve("jwks.json");
        Files.writeString(jwks, "{\"keys\":[" + rsaJwk("r1", rsa) + "]}");
        OAuthBearerValidator v = validator(jwks, false);
        String rotated = jwt("RS256", "r2", rsa2.getPrivate(), GOOD);
        assertTrue(reason(v, rotated).contains("no key with kid r2"));
        Files.writeString(jwks, "{\"keys\":[" + rsaJwk("r1", rsa) + "," + rsaJwk("r2", rsa2) + "]}");
        Files.setLastModifiedTime(jwks, FileTime.fromMillis(System.currentTimeMillis() + 5000));
        // The check of an unknown kid happens at most once a second: a second later, the new key is found.
        assertInstanceOf(OAuthBearerValidator.Valid.class, v.validate(rotated, NOW_S * 1000 + 60_000));
    }

    /**
     * An issuer's key set over HTTPS (a local HTTPS server with a self-signed certificate the validator is told to
     * trust): fetched at load, fetched again for an unknown key id (rotation), kept when the endpoint fails; not
     * fetched at all from a server the trust does not cover.
     */
    @Test
    void shouldFetchTheKeySetOverHttpsAndAgainForAnUnknownKeyId(@TempDir Path dir) throws Exception {
        Path ks = dir.resolve("jwks-server.p12");
        Process kt = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "keytool").toString(),
            "-genkeypair", "-alias", "jwks", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=issuer",
            "-ext", "SAN=ip:127.0.0.1", "-validity", "2", "-keystore", ks.toString(), "-storetype", "PKCS12",
            "-storepass", "test-only").redirectErrorStream(true).start();
        String out = new String(kt.getInputStream().readAllBytes());
        assertTrue(kt.waitFor(60, java.util.concurrent.TimeUnit.SECONDS) && kt.exitValue() == 0, out);
        java.security.KeyStore store = java.security.KeyStore.getInstance("PKCS12");
        try (var in = Files.newInputStream(ks)) {
            store.load(in, "test-only".toCharArray());
        }
        javax.net.ssl.KeyManagerFactory kmf = javax.net.ssl.KeyManagerFactory.getInstance(
            javax.net.ssl.KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(store, "test-only".toCharArray());
        javax.net.ssl.SSLContext serverCtx = javax.net.ssl.SSLContext.getInstance("TLS");
        serverCtx.init(kmf.getKeyManagers(), null, null);
        javax.net.ssl.TrustManagerFactory tmf = javax.net.ssl.TrustManagerFactory.getInstance(
            javax.net.ssl.TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(store);
        javax.net.ssl.SSLContext trust = javax.net.ssl.SSLContext.getInstance("TLS");
        trust.init(null, tmf.getTrustManagers(), null);

        java.util.concurrent.atomic.AtomicReference<String> body = new java.util.concurrent.atomic.AtomicReference<>(
            "{\"keys\":[" + rsaJwk("r1", rsa) + "]}");
        java.util.concurrent.atomic.AtomicInteger status = new java.util.concurrent.atomic.AtomicInteger(200);
        java.util.concurrent.atomic.AtomicInteger fetches = new java.util.concurrent.atomic.AtomicInteger();
        com.sun.net.httpserver.HttpsServer server = com.sun.net.httpserver.HttpsServer.create(
            new java.net.InetSocketAddress("127.0.0.1", 0), 0);
        server.setHttpsConfigurator(new com.sun.net.httpserver.HttpsConfigurator(serverCtx));
        server.createContext("/jwks", ex -> {
            fetches.incrementAndGet();
            byte[] b = body.get().getBytes(StandardCharsets.UTF_8);
            ex.getResponseHeaders().add("Content-Type", "application/json");
            ex.sendResponseHeaders(status.get(), b.length);
            ex.getResponseBody().write(b);
            ex.close();
        });
        server.start();
        try {
            java.net.URI url = OAuthBearerSettings.jwksUrl("https://127.0.0.1:" + server.getAddress().getPort() + "/jwks");
            OAuthBearerSettings settings = new OAuthBearerSettings(null, 3_600_000, List.of("isthmus"),
                "https://issuer.test", "sub", 30, false, url);
            OAuthBearerValidator v = OAuthBearerValidator.load(settings, trust);
            assertEquals(1, fetches.get(), "fetched once at load");
            long now = System.currentTimeMillis();
            String good = GOOD.replace(Long.toString(NOW_S + 600), Long.toString(now / 1000 + 7200)) // past a refresh
                .replace("\"iat\":" + NOW_S, "\"iat\":" + now / 1000);
            assertInstanceOf(OAuthBearerValidator.Valid.class, v.validate(jwt("RS256", "r1", rsa.getPrivate(), good),
                now));
            assertEquals(1, fetches.get(), "no fetch while the key set is fresh and the key known");
            String rotated = jwt("RS256", "r2", rsa2.getPrivate(), good);
            body.set("{\"keys\":[" + rsaJwk("r1", rsa) + "," + rsaJwk("r2", rsa2) + "]}");
            assertInstanceOf(OAuthBearerValidator.Valid.class, v.validate(rotated, now + 2_000),
                "an unknown key id fetches the key set again");
            assertEquals(2, fetches.get());
            status.set(500);
            assertInstanceOf(OAuthBearerValidator.Valid.class, v.validate(rotated, now + 3_600_000 + 5_000),
                "a failed refresh keeps the keys fetched before");
            assertEquals(3, fetches.get(), "the refresh was due");
            status.set(200);
            // Without the trust the server's certificate is refused: no keys, every token invalid.
            OAuthBearerValidator untrusting = OAuthBearerValidator.load(settings, null);
            assertTrue(assertInstanceOf(OAuthBearerValidator.Invalid.class, untrusting.validate(jwt("RS256", "r1",
                rsa.getPrivate(), good), now)).reason().contains("no key with kid r1"));
        } finally {
            server.stop(0);
        }
        assertThrows(IllegalArgumentException.class, () -> new OAuthBearerSettings(null, 3_600_000, List.of(), null,
            "sub", 30, false, java.net.URI.create("http://issuer.test/jwks")), "plain http is refused");
    }

    @Test
    void shouldTakeUnsecuredTokensOnlyWhenAllowed() throws Exception {
        OAuthBearerValidator v = OAuthBearerValidator.load(new OAuthBearerSettings(null, 3_600_000, List.of(), null,
            "sub", 30, true));
        String claims = "{\"sub\":\"carol\",\"exp\":" + (NOW_S + 60) + "}";
        assertEquals(new OAuthBearerValidator.Valid("carol", (NOW_S + 60) * 1000), v.validate(jwt("none", "x", null,
            claims), NOW_S * 1000));
        assertTrue(reason(v, jwt("none", "x", null, claims) + "c2ln").contains("no signature"));
        assertEquals(null, OAuthBearerValidator.load(OAuthBearerSettings.DEFAULTS), "nothing to validate with");
        assertThrows(IllegalArgumentException.class, () -> OAuthBearerSettings.jwksFile("https://issuer.test/jwks"));
    }

    @Test
    void shouldParseJsonStrictly() {
        assertEquals(Map.of("a", List.of(new java.math.BigDecimal("1.5e3"), "x\u00e9\n", true), "b", Map.of()),
            Json.parse(" {\"a\":[1.5e3,\"x\\u00e9\\n\",true],\"b\":{}} "));
        for (String bad : List.of("{\"a\":1,\"a\":2}", "{\"a\":1,}", "[01]", "\"\u0001\"", "{\"a\" 1}", "[1] x",
            "[".repeat(40) + "]".repeat(40), "\"\\q\"", "tru", "-", "1.", "{a:1}")) {
            assertThrows(IllegalArgumentException.class, () -> Json.parse(bad), bad);
        }
    }
}
