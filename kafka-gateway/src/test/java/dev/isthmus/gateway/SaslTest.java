package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.protocol.ByteSlice;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.MetadataRequestData;
import dev.isthmus.gateway.protocol.message.SaslAuthenticateRequestData;
import dev.isthmus.gateway.protocol.message.SaslAuthenticateResponseData;
import dev.isthmus.gateway.protocol.message.SaslHandshakeRequestData;
import dev.isthmus.gateway.protocol.message.SaslHandshakeResponseData;
import dev.isthmus.gateway.security.SaslSettings;
import dev.isthmus.gateway.security.SecurityProtocol;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.IllegalSaslStateException;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SASL on a SASL_PLAINTEXT listener next to a PLAINTEXT one: PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 with
 * unmodified kafka-clients (produce, consume with a group, admin), wrong passwords and unknown users refused with
 * SASL_AUTHENTICATION_FAILED, an unknown mechanism with UNSUPPORTED_SASL_MECHANISM, requests before
 * authentication closed without a response, a SASL client against the PLAINTEXT listener failing at once with
 * Kafka's ILLEGAL_SASL_STATE, and KIP-368 re-authentication under a steady producer.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(180)
class SaslTest {
    private static final String USER = "admin";
    private static final String PASSWORD = "admin-secret";

    private static BrokerConfig config(Path dir, long reauthMs) {
        SaslSettings sasl = new SaslSettings(List.of("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), reauthMs, 512 * 1024,
            100, USER, PASSWORD, 4096);
        return BrokerConfig.defaults().toBuilder().dataDir(dir).shards(2).memoryBytes(256L << 20).pin(false)
            .listeners(List.of(SecureClients.listener("SASL_PLAINTEXT", SecurityProtocol.SASL_PLAINTEXT),
                SecureClients.listener("PLAINTEXT", SecurityProtocol.PLAINTEXT)))
            .sasl(sasl).build();
    }

    @ParameterizedTest
    @ValueSource(strings = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})
    void shouldServeKafkaClientsAuthenticatedWithEachMechanism(String mechanism, @TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, 0))) {
            Properties p = mechanism.equals("PLAIN") ? SecureClients.plain(USER, PASSWORD, "SASL_PLAINTEXT")
                : SecureClients.scram(mechanism, USER, PASSWORD, "SASL_PLAINTEXT");
            SecureClients.roundTrip(SecureClients.props(b, "SASL_PLAINTEXT", p), "t-" + mechanism.toLowerCase(), 200);
            try (Admin admin = Admin.create(SecureClients.props(b, "SASL_PLAINTEXT", p))) {
                admin.describeCluster().nodes().get();
                assertTrue(b.connectionPrincipals().contains("User:admin@SASL_PLAINTEXT"),
                    b.connectionPrincipals().toString());
            }
            assertTrue(Connection.authentications(b)[0] >= 3, "admin, producer, consumer authenticated");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})
    void shouldRefuseAWrongPasswordAndAnUnknownUserWithSaslAuthenticationFailed(String mechanism, @TempDir Path dir)
        throws Exception {
        try (Broker b = Broker.start(config(dir, 0))) {
            for (String[] cred : new String[][] {{USER, "wrong"}, {"mallory", PASSWORD}}) {
                Properties p = mechanism.equals("PLAIN") ? SecureClients.plain(cred[0], cred[1], "SASL_PLAINTEXT")
                    : SecureClients.scram(mechanism, cred[0], cred[1], "SASL_PLAINTEXT");
                p.put("default.api.timeout.ms", "15000");
                p.put("request.timeout.ms", "10000");
                try (Admin admin = Admin.create(SecureClients.props(b, "SASL_PLAINTEXT", p))) {
                    ExecutionException e = assertThrows(ExecutionException.class,
                        () -> admin.describeCluster().nodes().get());
                    assertInstanceOf(SaslAuthenticationException.class, e.getCause(), e.toString());
                    String msg = e.getCause().getMessage();
                    assertTrue(msg.contains("Authentication failed"), msg);
                    assertTrue(!msg.contains(cred[1]), "no password in the message");
                }
            }
            // On the wire: SASL_AUTHENTICATION_FAILED (58), then the connection closes.
            try (WireClient c = new WireClient(b.port("SASL_PLAINTEXT"), 30_000)) {
                SaslHandshakeResponseData h = handshake(c, "PLAIN");
                assertEquals(0, h.errorCode);
                SaslAuthenticateResponseData a = authenticate(c, (short) 2, plainToken(USER, "nope"));
                assertEquals(ErrorCodes.SASL_AUTHENTICATION_FAILED, a.errorCode);
                assertNotNull(a.errorMessage);
                assertTrue(c.closedByBroker());
            }
        }
    }

    @Test
    void shouldAuthenticateUsersOfACredentialStoreInstalledWhileRunning(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, 0))) {
            Properties bob = SecureClients.scram("SCRAM-SHA-512", "bob", "bob-secret", "SASL_PLAINTEXT");
            bob.put("default.api.timeout.ms", "15000");
            bob.put("request.timeout.ms", "10000");
            try (Admin admin = Admin.create(SecureClients.props(b, "SASL_PLAINTEXT", bob))) {
                ExecutionException e = assertThrows(ExecutionException.class,
                    () -> admin.describeCluster().nodes().get());
                assertInstanceOf(SaslAuthenticationException.class, e.getCause());
            }
            // What the controller-backed store will do on every change: a new immutable snapshot on every shard.
            b.installCredentials(dev.isthmus.gateway.security.CredentialStore.ofPasswords(
                java.util.Map.of("bob", "bob-secret"), 4096));
            try (Admin admin = Admin.create(SecureClients.props(b, "SASL_PLAINTEXT", bob))) {
                assertEquals(1, admin.describeCluster().nodes().get().size());
                assertTrue(b.connectionPrincipals().contains("User:bob@SASL_PLAINTEXT"));
            }
        }
    }

    @Test
    void shouldTakeBareTokensAfterSaslHandshakeV0(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, 0))) {
            for (String password : new String[] {PASSWORD, "wrong"}) {
                try (java.net.Socket s = new java.net.Socket("127.0.0.1", b.port("SASL_PLAINTEXT"))) {
                    s.setSoTimeout(30_000);
                    java.io.DataInputStream in = new java.io.DataInputStream(s.getInputStream());
                    java.io.DataOutputStream out = new java.io.DataOutputStream(s.getOutputStream());
                    SaslHandshakeRequestData h = new SaslHandshakeRequestData();
                    h.mechanism = "PLAIN";
                    out.write(WireClient.frame(ApiKeys.SASL_HANDSHAKE, (short) 0, 1, h));
                    byte[] hr = new byte[in.readInt()];
                    in.readFully(hr);
                    SaslHandshakeResponseData hd = WireClient.body(hr, ApiKeys.SASL_HANDSHAKE, (short) 0);
                    assertEquals(0, hd.errorCode);
                    // The PLAIN token as a bare size-prefixed frame; the answer is a bare (empty) frame.
                    byte[] token = plainToken(USER, password);
                    out.writeInt(token.length);
                    out.write(token);
                    out.flush();
                    if (password.equals("wrong")) {
                        assertEquals(-1, in.read(), "a failed bare exchange closes the connection");
                        continue;
                    }
                    assertEquals(0, in.readInt(), "PLAIN's empty server token");
                    out.write(WireClient.frame(ApiKeys.METADATA, (short) 12, 2, new MetadataRequestData()));
                    byte[] mr = new byte[in.readInt()];
                    in.readFully(mr);
                    assertEquals(2, WireClient.correlationId(mr), "authenticated: Kafka requests are served");
                }
            }
        }
    }

    @Test
    void shouldAnswerAnUnknownMechanismWithTheEnabledOnesAndClose(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, 0))) {
            try (WireClient c = new WireClient(b.port("SASL_PLAINTEXT"), 30_000)) {
                SaslHandshakeResponseData h = handshake(c, "GSSAPI");
                assertEquals(ErrorCodes.UNSUPPORTED_SASL_MECHANISM, h.errorCode);
                assertEquals(List.of("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), h.mechanisms);
                assertTrue(c.closedByBroker());
            }
        }
    }

    @Test
    void shouldCloseWithoutAResponseARequestBeforeAuthentication(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, 0))) {
            try (WireClient c = new WireClient(b.port("SASL_PLAINTEXT"), 30_000)) {
                c.send(WireClient.apiVersions(1)); // allowed before authentication
                assertEquals(1, WireClient.correlationId(c.readFrame()));
                c.send(WireClient.frame(ApiKeys.METADATA, (short) 12, 2, new MetadataRequestData()));
                assertNull(c.readFrame(), "closed, no Metadata response");
            }
            try (WireClient c = new WireClient(b.port("SASL_PLAINTEXT"), 30_000)) {
                handshake(c, "PLAIN");
                c.send(WireClient.frame(ApiKeys.METADATA, (short) 12, 2, new MetadataRequestData()));
                assertNull(c.readFrame(), "closed between handshake and authentication, no Metadata response");
            }
            try (WireClient c = new WireClient(b.port("SASL_PLAINTEXT"), 30_000)) {
                handshake(c, "PLAIN");
                SaslAuthenticateResponseData a = authenticate(c, (short) 1, plainToken(USER, PASSWORD));
                assertEquals(0, a.errorCode);
                assertEquals(0, a.sessionLifetimeMs, "no connections.max.reauth.ms: no session lifetime");
                c.send(WireClient.frame(ApiKeys.METADATA, (short) 12, 3, new MetadataRequestData()));
                assertEquals(3, WireClient.correlationId(c.readFrame()), "authenticated: served");
                // A second authentication on an authenticated connection: ILLEGAL_SASL_STATE, as Kafka answers.
                SaslAuthenticateResponseData again = authenticate(c, (short) 1, plainToken(USER, PASSWORD));
                assertEquals(ErrorCodes.ILLEGAL_SASL_STATE, again.errorCode);
            }
        }
    }

    @Test
    void shouldFailASaslClientOnAPlaintextListenerInsteadOfLooping(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, 0))) {
            try (WireClient c = new WireClient(b.port("PLAINTEXT"), 30_000)) {
                SaslHandshakeResponseData h = handshake(c, "PLAIN");
                assertEquals(ErrorCodes.ILLEGAL_SASL_STATE, h.errorCode);
            }
            Properties p = SecureClients.scram("SCRAM-SHA-256", USER, PASSWORD, "SASL_PLAINTEXT");
            p.put("default.api.timeout.ms", "15000");
            p.put("request.timeout.ms", "10000");
            try (Admin admin = Admin.create(SecureClients.props(b, "PLAINTEXT", p))) {
                ExecutionException e = assertThrows(ExecutionException.class,
                    () -> admin.describeCluster().nodes().get());
                assertInstanceOf(IllegalSaslStateException.class, e.getCause(), e.toString());
            }
        }
    }

    @Test
    void shouldReauthenticateUnderASteadyProducerAndCloseAnExpiredSession(@TempDir Path dir) throws Exception {
        long reauthMs = 1500;
        try (Broker b = Broker.start(config(dir, reauthMs))) {
            Properties p = SecureClients.props(b, "SASL_PLAINTEXT",
                SecureClients.scram("SCRAM-SHA-256", USER, PASSWORD, "SASL_PLAINTEXT"));
            p.put(ProducerConfig.ACKS_CONFIG, "all");
            p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                int i = 0;
                // Until the producer's connections re-authenticated a few times; every send must succeed meanwhile.
                while (Connection.authentications(b)[1] < 3) {
                    producer.send(new ProducerRecord<>("reauth", "k", "v" + i++)).get();
                }
            }
            // A client that does not re-authenticate: its next request after the session ends closes the connection.
            try (WireClient c = new WireClient(b.port("SASL_PLAINTEXT"), 30_000)) {
                handshake(c, "PLAIN");
                SaslAuthenticateResponseData a = authenticate(c, (short) 1, plainToken(USER, PASSWORD));
                assertEquals(0, a.errorCode);
                assertEquals(reauthMs, a.sessionLifetimeMs);
                c.send(WireClient.frame(ApiKeys.METADATA, (short) 12, 7, new MetadataRequestData()));
                assertEquals(7, WireClient.correlationId(c.readFrame()));
                Thread.sleep(reauthMs + 200);
                c.send(WireClient.frame(ApiKeys.METADATA, (short) 12, 8, new MetadataRequestData()));
                assertNull(c.readFrame(), "an expired session is closed without a response");
            }
        }
    }

    /**
     * A seeded fuzzer on the SASL listener (issue 20): random and damaged SASL tokens (garbage, SCRAM messages with
     * fields cut, swapped or repeated, out of order, a bad nonce or proof, tokens above sasl.server.max.receive.size,
     * a second handshake mid-exchange), each followed by a Metadata request that must never be answered: every
     * connection ends closed or still unauthenticated, and the broker keeps serving a real client.
     * {@code -Disthmus.seed=N} replays; {@code -Disthmus.fuzz.iterations=N} scales (100 connections by default).
     */
    @Test
    void shouldNeverServeAnUnauthenticatedRequestWhateverTheTokens(@TempDir Path dir) throws Exception {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        int iterations = Integer.getInteger("isthmus.fuzz.iterations", 100);
        System.out.println("SaslTest fuzz seed " + seed + " (-Disthmus.seed=" + seed + " replays), " + iterations
            + " connections");
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(seed);
        String[] mechanisms = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};
        String[] scramParts = {"n,,n=admin,r=abc", "n,,n=admin,r=", "y,,n=admin,r=abc", "p=tls-unique,,n=admin,r=x",
            "n,a=bob,n=admin,r=abc", "n,,n=admin", "c=biws,r=abc,p=AAAA", "c=biws,r=abc", "n=admin,r=abc",
            "n,,n=admin,r=abc,ext=tokenauth=true", "c=biws,r=abcdef,p=" + "A".repeat(44), "v=AAAA", "", ",,,,",
            "n,,n==2C=3D=ZZ,r=abc", "\0admin\0admin-secret"};
        int answeredSasl = 0;
        int closed = 0;
        try (Broker b = Broker.start(config(dir, 0))) {
            for (int i = 0; i < iterations; i++) {
                try (WireClient c = new WireClient(b.port("SASL_PLAINTEXT"), 30_000)) {
                    SaslHandshakeRequestData h = new SaslHandshakeRequestData();
                    h.mechanism = mechanisms[rnd.nextInt(mechanisms.length)];
                    c.send(WireClient.frame(ApiKeys.SASL_HANDSHAKE, (short) 1, 1, h));
                    int tokens = 1 + rnd.nextInt(3);
                    try {
                        for (int t = 0; t < tokens; t++) {
                            byte[] token;
                            switch (rnd.nextInt(5)) {
                                case 0 -> {
                                    token = new byte[rnd.nextInt(200)];
                                    rnd.nextBytes(token);
                                }
                                case 1 -> token = new byte[512 * 1024 + 1 + rnd.nextInt(1000)]; // above the limit
                                case 2 -> token = plainToken(rnd.nextBoolean() ? USER : "x", "guess" + rnd.nextInt());
                                default -> {
                                    String part = scramParts[rnd.nextInt(scramParts.length)];
                                    if (rnd.nextBoolean() && !part.isEmpty()) {
                                        part = part.substring(0, rnd.nextInt(part.length()));
                                    }
                                    token = part.getBytes(StandardCharsets.UTF_8);
                                }
                            }
                            SaslAuthenticateRequestData a = new SaslAuthenticateRequestData();
                            a.authBytes = ByteSlice.of(token);
                            c.send(WireClient.frame(ApiKeys.SASL_AUTHENTICATE, (short) (rnd.nextInt(3)), 2 + t, a));
                            if (rnd.nextInt(10) == 0) {
                                c.send(WireClient.frame(ApiKeys.SASL_HANDSHAKE, (short) 1, 50, h)); // out of order
                            }
                        }
                        c.send(WireClient.frame(ApiKeys.METADATA, (short) 12, SENTINEL, new MetadataRequestData()));
                    } catch (java.io.IOException e) {
                        // The broker closed the connection while frames were still being sent: what it should do.
                    }
                    while (true) {
                        byte[] r;
                        try {
                            r = c.readFrame();
                        } catch (java.io.IOException e) {
                            r = null; // reset in the middle of a response: the broker closed with unread bytes
                        }
                        if (r == null) {
                            closed++;
                            break;
                        }
                        int id = WireClient.correlationId(r);
                        assertTrue(id != SENTINEL, "an unauthenticated Metadata request was answered (seed " + seed + ")");
                        answeredSasl++;
                    }
                }
            }
            assertEquals(iterations, closed, "every fuzzed connection ends closed (seed " + seed + ")");
            System.out.println("SaslTest fuzz: " + iterations + " connections closed, " + answeredSasl
                + " SASL responses, no unauthenticated request served");
            SecureClients.roundTrip(SecureClients.props(b, "SASL_PLAINTEXT",
                SecureClients.scram("SCRAM-SHA-256", USER, PASSWORD, "SASL_PLAINTEXT")), "after-fuzz", 20);
        }
    }

    private static final int SENTINEL = 1_000_000_007;

    private static byte[] plainToken(String user, String password) {
        return ("\0" + user + "\0" + password).getBytes(StandardCharsets.UTF_8);
    }

    private static SaslHandshakeResponseData handshake(WireClient c, String mechanism) throws Exception {
        SaslHandshakeRequestData h = new SaslHandshakeRequestData();
        h.mechanism = mechanism;
        c.send(WireClient.frame(ApiKeys.SASL_HANDSHAKE, (short) 1, 100, h));
        byte[] r = c.readFrame();
        assertNotNull(r, "a SaslHandshake response");
        return WireClient.body(r, ApiKeys.SASL_HANDSHAKE, (short) 1);
    }

    private static SaslAuthenticateResponseData authenticate(WireClient c, short version, byte[] token)
        throws Exception {
        SaslAuthenticateRequestData a = new SaslAuthenticateRequestData();
        a.authBytes = ByteSlice.of(token);
        c.send(WireClient.frame(ApiKeys.SASL_AUTHENTICATE, version, 101, a));
        byte[] r = c.readFrame();
        assertNotNull(r, "a SaslAuthenticate response");
        return WireClient.body(r, ApiKeys.SASL_AUTHENTICATE, version);
    }
}
