package dev.isthmus.gateway;

import dev.isthmus.arena.Subsystem;
import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.protocol.ByteSlice;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.MetadataRequestData;
import dev.isthmus.gateway.protocol.message.SaslAuthenticateRequestData;
import dev.isthmus.gateway.protocol.message.SaslHandshakeRequestData;
import dev.isthmus.gateway.security.SaslSettings;
import dev.isthmus.gateway.security.SecurityProtocol;
import dev.isthmus.gateway.security.TlsSettings;
import org.apache.kafka.clients.admin.Admin;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The protocol fuzzer against the secured listeners (issue 20): a broker with SASL_PLAINTEXT, SSL and SASL_SSL
 * listeners gets seeded hostile connections, and must never serve a request before authentication, never crash or
 * log an internal error, and give back every connection's memory. The cases, chosen at random per connection:
 * <ul>
 *   <li>SASL listeners (plain and inside TLS): a request other than ApiVersions/SaslHandshake first (fuzzed frames
 *   from {@link FrameFuzzer}); SaslHandshake with random mechanism names; SCRAM messages out of order (client-final
 *   first, client-first twice, garbage after a valid client-first); PLAIN with malformed tokens; v0 raw tokens of
 *   random bytes; an oversized SaslAuthenticate token (over {@code sasl.server.max.receive.size}). Every one ends
 *   with a Metadata request that would auto-create a topic if it were served.</li>
 *   <li>The SSL listener: random bytes instead of a ClientHello, a real ClientHello with bytes flipped, and fuzzed
 *   Kafka frames after a completed handshake.</li>
 * </ul>
 * The rules: on an unauthenticated connection only ApiVersions, SaslHandshake and SaslAuthenticate are ever
 * answered, and the broker closes the connection; no "sneak" topic exists afterwards; nothing is logged at SEVERE;
 * with every connection gone no receive memory is held; the broker still serves an authenticated kafka-clients
 * admin. The seed is printed; {@code -Disthmus.seed=N} replays the cases (not the broker's thread interleavings);
 * {@code -Disthmus.fuzz.secure.connections=N} runs more.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(300)
class SecureListenerFuzzTest {
    private static final int CONNECTIONS = Integer.getInteger("isthmus.fuzz.secure.connections", 160);
    private static final int READ_MS = 5_000;
    private static final int MAX_TOKEN = 64 * 1024;
    private static final String SNEAK = "fuzz-sneak";
    private static final Set<Short> PRE_AUTH_APIS = Set.of(ApiKeys.API_VERSIONS.id, ApiKeys.SASL_HANDSHAKE.id,
        ApiKeys.SASL_AUTHENTICATE.id);

    private record Sent(int correlationId, short apiKey) {
    }

    @Test
    void shouldServeNothingBeforeAuthenticationAndSurviveHostileSaslAndTlsConnections(@TempDir Path dir)
        throws Exception {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("SecureListenerFuzzTest seed=" + seed + " connections=" + CONNECTIONS
            + " (replay with -Disthmus.seed=" + seed + ")");
        Random rnd = new Random(seed);
        TestCertificates certs = TestCertificates.create(Files.createDirectories(dir.resolve("certs")));
        TlsSettings tls = new TlsSettings(certs.serverP12, "PKCS12", TestCertificates.PASSWORD, null, certs.truststore,
            "PKCS12", TestCertificates.PASSWORD, TlsSettings.ClientAuth.NONE, List.of("TLSv1.2", "TLSv1.3"), List.of(),
            "DEFAULT", 0, false, false);
        SaslSettings sasl = new SaslSettings(List.of("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), 0, MAX_TOKEN, 1,
            "admin", "admin-secret", 4096);
        BrokerConfig config = BrokerConfig.defaults().toBuilder().dataDir(dir.resolve("data")).shards(2)
            .memoryBytes(256L << 20).pin(false).autoCreateTopics(true)
            .listeners(List.of(SecureClients.listener("SASL_PLAINTEXT", SecurityProtocol.SASL_PLAINTEXT),
                SecureClients.listener("SSL", SecurityProtocol.SSL),
                SecureClients.listener("SASL_SSL", SecurityProtocol.SASL_SSL)))
            .tls(tls).sasl(sasl).build();
        SSLContext trusting = trusting(certs);
        java.util.logging.Logger isthmus = java.util.logging.Logger.getLogger("dev.isthmus");
        List<java.util.logging.LogRecord> severe = Collections.synchronizedList(new ArrayList<>());
        java.util.logging.Handler capture = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                if (r.getLevel().intValue() >= java.util.logging.Level.SEVERE.intValue()) {
                    severe.add(r);
                }
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        List<String> problems = new ArrayList<>();
        Map<String, Integer> counts = new TreeMap<>();
        try (Broker b = Broker.start(config)) {
            isthmus.addHandler(capture);
            FrameFuzzer frames = new FrameFuzzer(rnd, api -> b.handlers().supports(api)
                ? new short[] {b.handlers().lowest(api), b.handlers().highest(api)} : null);
            try {
                for (int c = 0; c < CONNECTIONS && problems.size() < 5; c++) {
                    int kind = rnd.nextInt(10);
                    String name;
                    try {
                        if (kind < 7) {
                            boolean overTls = rnd.nextBoolean();
                            int port = b.port(overTls ? "SASL_SSL" : "SASL_PLAINTEXT");
                            name = (overTls ? "SASL_SSL " : "SASL_PLAINTEXT ") + saslCase(rnd, kind, frames,
                                () -> overTls ? tlsSocket(trusting, port) : plainSocket(port), problems, c);
                        } else {
                            name = "SSL " + tlsCase(rnd, kind, frames, trusting, b.port("SSL"), problems, c);
                        }
                    } catch (IOException e) {
                        name = "connection failed";
                        problems.add("connection " + c + ": " + e);
                    }
                    counts.merge(name, 1, Integer::sum);
                }
            } finally {
                isthmus.removeHandler(capture);
            }
            System.out.println("secure listener fuzz: " + CONNECTIONS + " connections: " + counts);
            for (java.util.logging.LogRecord r : severe) {
                problems.add("the broker logged an internal error: " + r.getLoggerName() + ": " + r.getMessage()
                    + (r.getThrown() == null ? "" : " " + r.getThrown()));
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (Connection.openConnections(b) > 0 && System.nanoTime() < deadline) {
                Thread.sleep(10); // polling an observable condition
            }
            assertEquals(0, Connection.openConnections(b), "connections still counted open");
            for (int s = 0; s < 2; s++) {
                long receive = b.arenaStats(s).used(Subsystem.NETWORK_RECEIVE);
                if (receive != 0) {
                    problems.add("shard " + s + " still holds " + receive + " bytes of receive memory");
                }
            }
            Properties admin = SecureClients.props(b, "SASL_SSL", SecureClients.scram("SCRAM-SHA-512", "admin",
                "admin-secret", "SASL_SSL"));
            admin.putAll(SecureClients.trust(certs));
            try (Admin a = Admin.create(admin)) {
                Set<String> topics = a.listTopics().names().get(30, TimeUnit.SECONDS);
                for (String t : topics) {
                    if (t.startsWith(SNEAK)) {
                        problems.add("an unauthenticated Metadata request created topic " + t);
                    }
                }
                assertEquals(1, a.describeCluster().nodes().get(30, TimeUnit.SECONDS).size(),
                    "the broker still serves an authenticated client");
            }
            if (!problems.isEmpty()) {
                fail("seed " + seed + ":\n  " + String.join("\n  ", problems));
            }
        }
    }

    @FunctionalInterface
    private interface Connector {
        Socket open() throws IOException;
    }

    private static Socket plainSocket(int port) throws IOException {
        Socket s = new Socket();
        s.connect(new java.net.InetSocketAddress("127.0.0.1", port), 10_000);
        return s;
    }

    private static SSLSocket tlsSocket(SSLContext ctx, int port) throws IOException {
        SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket("127.0.0.1", port);
        javax.net.ssl.SSLParameters p = s.getSSLParameters();
        p.setEndpointIdentificationAlgorithm("HTTPS");
        s.setSSLParameters(p);
        return s;
    }

    private static SSLContext trusting(TestCertificates certs) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(certs.truststore)) {
            ks.load(in, TestCertificates.PASSWORD.toCharArray());
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ks);
        SSLContext c = SSLContext.getInstance("TLS");
        c.init(null, tmf.getTrustManagers(), null);
        return c;
    }

    private static byte[] randomBytes(Random rnd, int max) {
        byte[] b = new byte[rnd.nextInt(max + 1)];
        rnd.nextBytes(b);
        return b;
    }

    private static String randomMechanism(Random rnd) {
        String[] known = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI", "plain", "", "SCRAM-SHA-1"};
        return rnd.nextInt(3) == 0 ? new String(randomBytes(rnd, 40), StandardCharsets.ISO_8859_1)
            : known[rnd.nextInt(known.length)];
    }

    private static byte[] handshake(int id, short version, String mechanism) {
        SaslHandshakeRequestData h = new SaslHandshakeRequestData();
        h.mechanism = mechanism;
        return WireClient.frame(ApiKeys.SASL_HANDSHAKE, version, id, h);
    }

    private static byte[] authenticate(int id, short version, byte[] token) {
        SaslAuthenticateRequestData a = new SaslAuthenticateRequestData();
        a.authBytes = ByteSlice.of(token);
        return WireClient.frame(ApiKeys.SASL_AUTHENTICATE, version, id, a);
    }

    /**
     * A fuzzed frame whose length prefix does not claim more bytes than it has (such a frame makes the broker wait
     * for the rest, which the plaintext fuzzer covers; here it would only stall the connection).
     */
    private static byte[] whole(FrameFuzzer frames, int id) {
        FrameFuzzer.Fuzzed f = frames.next(id);
        while (f.lengthLiesUp()) {
            f = frames.next(id);
        }
        return f.bytes();
    }

    /** A Metadata request that auto-creates {@code SNEAK-n} if served. */
    private static byte[] sneak(int id, int n) {
        MetadataRequestData m = new MetadataRequestData();
        MetadataRequestData.MetadataRequestTopic t = new MetadataRequestData.MetadataRequestTopic();
        t.name = SNEAK + "-" + n;
        m.topics = new ArrayList<>(List.of(t));
        m.allowAutoTopicCreation = true;
        return WireClient.frame(ApiKeys.METADATA, (short) 12, id, m);
    }

    /**
     * One hostile connection to a SASL listener; returns the case's name. Frames are sent in order (what the broker
     * closes under us stops the sending); every response must answer an ApiVersions, SaslHandshake or
     * SaslAuthenticate request we sent, and the broker must close the connection.
     */
    private static String saslCase(Random rnd, int kind, FrameFuzzer frames, Connector connector, List<String> problems,
                                   int index) throws IOException {
        List<byte[]> send = new ArrayList<>();
        List<Sent> sent = new ArrayList<>();
        int id = 1;
        String name;
        short v = (short) (rnd.nextBoolean() ? 1 : 0);
        switch (kind) {
            case 0 -> {
                name = "request before authentication";
                if (rnd.nextBoolean()) {
                    send.add(WireClient.apiVersions(id++));
                }
                send.add(whole(frames, id++));
            }
            case 1 -> {
                name = "handshake with a random mechanism";
                send.add(handshake(id++, v, randomMechanism(rnd)));
                send.add(authenticate(id++, (short) rnd.nextInt(3), randomBytes(rnd, 200)));
            }
            case 2 -> {
                name = "SCRAM out of order";
                String mech = rnd.nextBoolean() ? "SCRAM-SHA-256" : "SCRAM-SHA-512";
                send.add(handshake(id++, (short) 1, mech));
                String first = "n,,n=admin,r=" + Long.toHexString(rnd.nextLong());
                String finalLike = "c=biws,r=" + Long.toHexString(rnd.nextLong()) + ",p="
                    + java.util.Base64.getEncoder().encodeToString(randomBytes(rnd, 64));
                switch (rnd.nextInt(4)) {
                    case 0 -> send.add(authenticate(id++, (short) rnd.nextInt(3), finalLike.getBytes()));
                    case 1 -> {
                        send.add(authenticate(id++, (short) 1, first.getBytes()));
                        send.add(authenticate(id++, (short) 1, first.getBytes()));
                    }
                    case 2 -> {
                        send.add(authenticate(id++, (short) 1, first.getBytes()));
                        send.add(authenticate(id++, (short) 1, randomBytes(rnd, 300)));
                    }
                    default -> {
                        send.add(authenticate(id++, (short) 1, first.getBytes()));
                        send.add(authenticate(id++, (short) 1, finalLike.getBytes()));
                    }
                }
            }
            case 3 -> {
                name = "PLAIN malformed";
                send.add(handshake(id++, (short) 1, "PLAIN"));
                byte[] token = switch (rnd.nextInt(4)) {
                    case 0 -> randomBytes(rnd, 100);
                    case 1 -> "\0admin\0".getBytes();
                    case 2 -> "other\0admin\0admin-secret".getBytes();
                    default -> ("\0admin\0" + Long.toHexString(rnd.nextLong())).getBytes();
                };
                send.add(authenticate(id++, (short) rnd.nextInt(3), token));
            }
            case 4 -> {
                name = "v0 raw token";
                send.add(handshake(id++, (short) 0, rnd.nextBoolean() ? "PLAIN" : "SCRAM-SHA-256"));
                byte[] token = randomBytes(rnd, 200);
                ByteBuffer raw = ByteBuffer.allocate(4 + token.length).putInt(token.length).put(token);
                send.add(raw.array());
            }
            case 5 -> {
                name = "oversized token";
                send.add(handshake(id++, (short) 1, rnd.nextBoolean() ? "PLAIN" : "SCRAM-SHA-512"));
                byte[] token = new byte[MAX_TOKEN + 1 + rnd.nextInt(MAX_TOKEN)];
                rnd.nextBytes(token);
                send.add(authenticate(id++, (short) 1, token));
            }
            default -> {
                name = "fuzzed frames after a handshake";
                send.add(handshake(id++, (short) 1, "SCRAM-SHA-256"));
                for (int k = 0; k < 1 + rnd.nextInt(3); k++) {
                    send.add(whole(frames, id++));
                }
            }
        }
        send.add(sneak(id++, index));
        // What the broker answers can be told apart only up to the first frame whose length prefix is wrong (after
        // it the broker cuts frames elsewhere); v0 raw tokens are not Kafka frames either.
        boolean framingKnown = true;
        for (byte[] f : send) {
            ByteBuffer b = ByteBuffer.wrap(f);
            framingKnown &= f.length >= 12 && b.getInt(0) == f.length - 4 && kind != 4;
            if (framingKnown) {
                sent.add(new Sent(b.getInt(8), b.getShort(4)));
            }
        }
        try (Socket s = connector.open(); WireClient c = new WireClient(s, READ_MS)) {
            try {
                for (byte[] f : send) {
                    c.send(f);
                }
            } catch (IOException closedUnderUs) {
                // the broker closed the connection while we were sending: what came before still counts
            }
            readUntilClosed(c, sent, framingKnown, problems, name + " (connection " + index + ")");
        }
        return name;
    }

    /** Reads responses until the broker closes; a response to anything but a pre-auth API is a problem. */
    private static void readUntilClosed(WireClient c, List<Sent> sent, boolean framingKnown, List<String> problems,
                                        String what) throws IOException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            byte[] r;
            try {
                r = c.readFrame();
            } catch (SocketTimeoutException e) {
                if (System.nanoTime() > deadline) {
                    problems.add("the broker kept an unauthenticated connection open: " + what);
                    return;
                }
                continue;
            } catch (IOException e) {
                return; // a reset or a TLS alert while reading: closed
            }
            if (r == null) {
                return;
            }
            int id = WireClient.correlationId(r);
            Sent match = sent.stream().filter(x -> x.correlationId() == id).findFirst().orElse(null);
            if (match == null && !framingKnown) {
                continue; // an answer to bytes the broker framed differently: cannot be attributed
            }
            if (match == null || !PRE_AUTH_APIS.contains(match.apiKey())) {
                problems.add("a response (correlation id " + id + ", api " + (match == null ? "?" : match.apiKey())
                    + ") on an unauthenticated connection: " + what);
                return;
            }
        }
    }

    /** One hostile connection to the SSL listener; returns the case's name. */
    private static String tlsCase(Random rnd, int kind, FrameFuzzer frames, SSLContext trusting, int port,
                                  List<String> problems, int index) throws IOException {
        String name;
        if (kind == 7) {
            name = "random bytes for a ClientHello";
            rawTls(port, randomBytes(rnd, 2000), problems, name + " (connection " + index + ")");
        } else if (kind == 8) {
            name = "damaged ClientHello";
            byte[] hello = clientHello(trusting);
            for (int k = 0; k < 1 + rnd.nextInt(6); k++) {
                hello[rnd.nextInt(hello.length)] ^= (byte) (1 + rnd.nextInt(255));
            }
            if (rnd.nextInt(4) == 0) {
                hello = java.util.Arrays.copyOf(hello, rnd.nextInt(hello.length));
            }
            rawTls(port, hello, problems, name + " (connection " + index + ")");
        } else {
            name = "fuzzed frames over TLS";
            try (SSLSocket s = tlsSocket(trusting, port); WireClient c = new WireClient(s, READ_MS)) {
                s.startHandshake();
                try {
                    for (int k = 0; k < 1 + rnd.nextInt(4); k++) {
                        c.send(whole(frames, k + 1));
                    }
                    c.send(WireClient.apiVersions(Integer.MAX_VALUE));
                } catch (IOException closedUnderUs) {
                    // closed by the broker: fine
                }
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (System.nanoTime() < deadline) {
                    byte[] r;
                    try {
                        r = c.readFrame();
                    } catch (SocketTimeoutException e) {
                        break; // the broker waits for the rest of a frame whose length lies: we go away
                    } catch (IOException e) {
                        break;
                    }
                    if (r == null || WireClient.correlationId(r) == Integer.MAX_VALUE) {
                        break;
                    }
                }
            }
        }
        return name;
    }

    /** The first flight of a real TLS client (its ClientHello record). */
    private static byte[] clientHello(SSLContext ctx) throws IOException {
        SSLEngine e = ctx.createSSLEngine("127.0.0.1", 1);
        e.setUseClientMode(true);
        ByteBuffer out = ByteBuffer.allocate(e.getSession().getPacketBufferSize());
        e.wrap(ByteBuffer.allocate(0), out);
        out.flip();
        byte[] b = new byte[out.remaining()];
        out.get(b);
        return b;
    }

    /** Sends {@code bytes} on a plain socket to a TLS port: the broker may answer a TLS alert, then must close. */
    private static void rawTls(int port, byte[] bytes, List<String> problems, String what) throws IOException {
        try (Socket s = plainSocket(port)) {
            s.setSoTimeout(READ_MS);
            try {
                s.getOutputStream().write(bytes);
                s.shutdownOutput(); // nothing more comes: a partial record must not hold the connection
            } catch (IOException closedUnderUs) {
                return;
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            byte[] buf = new byte[4096];
            while (true) {
                try {
                    if (s.getInputStream().read(buf) < 0) {
                        return;
                    }
                } catch (SocketTimeoutException e) {
                    if (System.nanoTime() > deadline) {
                        problems.add("the broker kept a connection open after non-TLS bytes and end of stream: " + what);
                        return;
                    }
                } catch (IOException e) {
                    return; // reset
                }
            }
        }
    }
}
