package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.security.SaslSettings;
import dev.isthmus.gateway.security.SecurityProtocol;
import dev.isthmus.gateway.security.TlsSettings;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.errors.SslAuthenticationException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * TLS listeners with unmodified kafka-clients: SSL with PKCS12 and PEM key material, TLS 1.2 and 1.3, mTLS with
 * the client certificate's principal through ssl.principal.mapping.rules, a missing client certificate refused, a
 * plaintext client on a TLS listener closed, SASL_SSL with SCRAM-SHA-512, and the certificate reloaded from its
 * file without a restart. Certificates are made by keytool at test time.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(180)
class TlsTest {
    private static TestCertificates certs;

    @BeforeAll
    static void makeCertificates(@TempDir Path dir) throws Exception {
        certs = TestCertificates.create(dir);
    }

    private static TlsSettings tls(Path keystore, String type, TlsSettings.ClientAuth auth, String rules,
                                   long reloadMs) {
        return new TlsSettings(keystore, type, type.equals("PEM") ? null : TestCertificates.PASSWORD, null,
            certs.truststore, "PKCS12", TestCertificates.PASSWORD, auth, List.of("TLSv1.2", "TLSv1.3"), List.of(),
            rules, reloadMs, false, false);
    }

    private static BrokerConfig.Builder config(Path dir, SecurityProtocol protocol, TlsSettings tls) {
        return BrokerConfig.defaults().toBuilder().dataDir(dir).shards(2).memoryBytes(256L << 20).pin(false)
            .listeners(List.of(SecureClients.listener(protocol.name(), protocol))).tls(tls);
    }

    private static Properties ssl() {
        Properties p = SecureClients.trust(certs);
        p.put("security.protocol", "SSL");
        return p;
    }

    @Test
    void shouldServeKafkaClientsOverSslWithPkcs12KeyStore(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, SecurityProtocol.SSL, tls(certs.serverP12, "PKCS12",
            TlsSettings.ClientAuth.NONE, "DEFAULT", 0)).build())) {
            SecureClients.roundTrip(SecureClients.props(b, "SSL", ssl()), "tls-p12", 300);
            assertTrue(b.connectionPrincipals().stream().allMatch(p -> p.equals("User:ANONYMOUS@SSL")),
                "no client certificate: " + b.connectionPrincipals());
        }
    }

    @Test
    void shouldServeKafkaClientsOverTls12WithPemKeyStore(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, SecurityProtocol.SSL, tls(certs.serverPem, "PEM",
            TlsSettings.ClientAuth.NONE, "DEFAULT", 0)).build())) {
            Properties p = ssl();
            p.put("ssl.enabled.protocols", "TLSv1.2");
            p.put("ssl.protocol", "TLSv1.2");
            SecureClients.roundTrip(SecureClients.props(b, "SSL", p), "tls12-pem", 300);
        }
    }

    @Test
    void shouldTakeThePrincipalFromTheClientCertificateWithMtls(@TempDir Path dir) throws Exception {
        Path client = certs.signed("alice", "CN=Alice,OU=eng,O=acme", null);
        try (Broker b = Broker.start(config(dir, SecurityProtocol.SSL, tls(certs.serverP12, "PKCS12",
            TlsSettings.ClientAuth.REQUIRED, "RULE:^CN=(.*?),OU=eng,.*$/$1/L,DEFAULT", 0)).build())) {
            Properties p = ssl();
            p.put("ssl.keystore.location", client.toString());
            p.put("ssl.keystore.type", "PKCS12");
            p.put("ssl.keystore.password", TestCertificates.PASSWORD);
            try (Admin admin = Admin.create(SecureClients.props(b, "SSL", p))) {
                assertEquals(1, admin.describeCluster().nodes().get().size());
                List<String> principals = b.connectionPrincipals();
                assertTrue(!principals.isEmpty() && principals.stream().allMatch(x -> x.equals("User:alice@SSL")),
                    "every connection of the admin client is User:alice: " + principals);
            }
            // Without a client certificate the handshake fails: the client reports an SSL authentication error.
            Properties none = ssl();
            none.put("default.api.timeout.ms", "15000");
            none.put("request.timeout.ms", "5000");
            try (Admin admin = Admin.create(SecureClients.props(b, "SSL", none))) {
                ExecutionException e = assertThrows(ExecutionException.class,
                    () -> admin.describeCluster().nodes().get());
                assertInstanceOf(SslAuthenticationException.class, e.getCause());
            }
        }
    }

    @Test
    void shouldCloseAPlaintextClientOnATlsListenerAndKeepServing(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, SecurityProtocol.SSL, tls(certs.serverP12, "PKCS12",
            TlsSettings.ClientAuth.NONE, "DEFAULT", 0)).build())) {
            long before = Connection.warnings(b).count(ConnectionWarnings.Reason.TLS_FAILED);
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", b.port("SSL"))) {
                s.setSoTimeout(30_000);
                s.getOutputStream().write(WireClient.apiVersions(1));
                // The broker answers with a TLS alert record (content type 21), never a Kafka response, and closes.
                byte[] got = s.getInputStream().readAllBytes();
                assertTrue(got.length == 0 || got[0] == 21, "a TLS alert or nothing, got "
                    + java.util.HexFormat.of().formatHex(got));
            }
            assertEquals(before + 1, Connection.warnings(b).count(ConnectionWarnings.Reason.TLS_FAILED));
            try (Admin admin = Admin.create(SecureClients.props(b, "SSL", ssl()))) {
                assertEquals(1, admin.describeCluster().nodes().get().size());
            }
        }
    }

    @Test
    void shouldServeSaslSslWithScramSha512(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, SecurityProtocol.SASL_SSL, tls(certs.serverP12, "PKCS12",
            TlsSettings.ClientAuth.NONE, "DEFAULT", 0)).sasl(SaslSettings.DEFAULTS.withAdmin("admin", "admin-secret"))
            .build())) {
            Properties p = SecureClients.scram("SCRAM-SHA-512", "admin", "admin-secret", "SASL_SSL");
            p.putAll(SecureClients.trust(certs));
            SecureClients.roundTrip(SecureClients.props(b, "SASL_SSL", p), "sasl-ssl", 200);
            try (Admin admin = Admin.create(SecureClients.props(b, "SASL_SSL", p))) {
                admin.describeCluster().nodes().get();
                assertTrue(b.connectionPrincipals().contains("User:admin@SASL_SSL"), b.connectionPrincipals().toString());
            }
        }
    }

    @Test
    void shouldStartSecuredFromAKafkaStyleConfigFile(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("secure.properties");
        Files.writeString(file, String.join("\n",
            "# a SASL_SSL listener for clients, a PLAINTEXT one on loopback",
            "listeners = SASL_SSL://127.0.0.1:0,PLAINTEXT://127.0.0.1:0",
            "ssl.keystore.location = " + certs.serverP12,
            "ssl.keystore.type = PKCS12",
            "ssl.keystore.password = " + TestCertificates.PASSWORD,
            "sasl.enabled.mechanisms = SCRAM-SHA-512,PLAIN",
            "sasl.admin.user = admin",
            "sasl.admin.password = admin-secret",
            "data-dir = " + dir.resolve("data"),
            "smp = 2",
            "memory = 256M"));
        BrokerConfig c = Main.parse(new String[] {"--config", file.toString()});
        assertEquals(List.of(SecurityProtocol.SASL_SSL, SecurityProtocol.PLAINTEXT),
            c.listeners().stream().map(l -> l.protocol()).toList());
        try (Broker b = Broker.start(c.toBuilder().pin(false).build())) {
            Properties p = SecureClients.scram("SCRAM-SHA-512", "admin", "admin-secret", "SASL_SSL");
            p.putAll(SecureClients.trust(certs));
            SecureClients.roundTrip(SecureClients.props(b, "SASL_SSL", p), "from-file", 20);
            // SCRAM-SHA-256 is not enabled: the handshake names the enabled ones and the client fails.
            Properties off = SecureClients.scram("SCRAM-SHA-256", "admin", "admin-secret", "SASL_SSL");
            off.putAll(SecureClients.trust(certs));
            off.put("default.api.timeout.ms", "15000");
            off.put("request.timeout.ms", "10000");
            try (Admin admin = Admin.create(SecureClients.props(b, "SASL_SSL", off))) {
                ExecutionException e = assertThrows(ExecutionException.class,
                    () -> admin.describeCluster().nodes().get());
                assertInstanceOf(org.apache.kafka.common.errors.UnsupportedSaslMechanismException.class,
                    e.getCause(), e.toString());
            }
        }
    }

    @Test
    void shouldReloadTheCertificateFromItsFileWithoutRestart(@TempDir Path dir) throws Exception {
        Path live = dir.resolve("live-server.p12");
        Files.copy(certs.serverP12, live);
        try (Broker b = Broker.start(config(dir.resolve("data"), SecurityProtocol.SSL, tls(live, "PKCS12",
            TlsSettings.ClientAuth.NONE, "DEFAULT", 100)).build())) {
            X509Certificate first = peerCertificate(b.port("SSL"));
            // A new key and certificate for the same names, written over the file.
            Path next = certs.signed("server2", "CN=localhost,O=isthmus", "SAN=dns:localhost,ip:127.0.0.1");
            Files.copy(next, live, StandardCopyOption.REPLACE_EXISTING);
            Files.setLastModifiedTime(live, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis()
                + 2000));
            while (b.tls().reloads() == 0) {
                Thread.sleep(20);
            }
            X509Certificate second = peerCertificate(b.port("SSL"));
            assertNotEquals(first.getPublicKey(), second.getPublicKey(), "new connections get the new key");
            assertEquals(first.getSubjectX500Principal(), second.getSubjectX500Principal());
            SecureClients.roundTrip(SecureClients.props(b, "SSL", ssl()), "after-reload", 20);
        }
    }

    @Test
    void shouldCarryManyRequestsInOneRecordAndOneRequestOverManyAndRefuseRenegotiation(@TempDir Path dir)
        throws Exception {
        try (Broker b = Broker.start(config(dir, SecurityProtocol.SSL, tls(certs.serverP12, "PKCS12",
            TlsSettings.ClientAuth.NONE, "DEFAULT", 0)).build())) {
            try (SSLSocket s = clientSocket(b.port("SSL"), "TLSv1.2")) {
                s.setSoTimeout(30_000);
                java.io.DataInputStream in = new java.io.DataInputStream(s.getInputStream());
                // 50 requests in one write: one TLS record holds them all.
                java.io.ByteArrayOutputStream many = new java.io.ByteArrayOutputStream();
                for (int i = 0; i < 50; i++) {
                    many.write(WireClient.apiVersions(i));
                }
                s.getOutputStream().write(many.toByteArray());
                s.getOutputStream().flush();
                for (int i = 0; i < 50; i++) {
                    assertEquals(i, WireClient.correlationId(readFrame(in)), "responses in request order");
                }
                // One request of 100 KB: it spans seven TLS records.
                dev.isthmus.gateway.protocol.message.ApiVersionsRequestData big =
                    new dev.isthmus.gateway.protocol.message.ApiVersionsRequestData();
                big.clientSoftwareName = "a".repeat(100_000);
                big.clientSoftwareVersion = "1.0";
                s.getOutputStream().write(WireClient.frame(dev.isthmus.gateway.protocol.message.ApiKeys.API_VERSIONS,
                    (short) 3, 77, big));
                s.getOutputStream().flush();
                assertEquals(77, WireClient.correlationId(readFrame(in)));
                // A second handshake on the established TLS 1.2 connection is refused: the broker closes it.
                assertThrows(java.io.IOException.class, () -> {
                    s.startHandshake();
                    s.getOutputStream().write(WireClient.apiVersions(99));
                    s.getOutputStream().flush();
                    readFrame(in);
                });
            }
            // The broker serves on.
            try (SSLSocket s = clientSocket(b.port("SSL"), "TLSv1.3")) {
                s.setSoTimeout(30_000);
                s.getOutputStream().write(WireClient.apiVersions(5));
                assertEquals(5, WireClient.correlationId(readFrame(new java.io.DataInputStream(s.getInputStream()))));
            }
        }
    }

    private static byte[] readFrame(java.io.DataInputStream in) throws java.io.IOException {
        int size = in.readInt();
        byte[] b = new byte[size];
        in.readFully(b);
        return b;
    }

    private static SSLSocket clientSocket(int port, String protocol) throws Exception {
        KeyStore ts = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(certs.truststore)) {
            ts.load(in, TestCertificates.PASSWORD.toCharArray());
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ts);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket("127.0.0.1", port);
        s.setEnabledProtocols(new String[] {protocol});
        s.startHandshake();
        return s;
    }

    /** The certificate the broker presents to a new TLS connection. */
    private static X509Certificate peerCertificate(int port) throws Exception {
        KeyStore ts = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(certs.truststore)) {
            ts.load(in, TestCertificates.PASSWORD.toCharArray());
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ts);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        try (SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket("127.0.0.1", port)) {
            s.startHandshake();
            return (X509Certificate) s.getSession().getPeerCertificates()[0];
        }
    }
}
