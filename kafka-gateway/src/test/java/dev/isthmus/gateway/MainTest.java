package dev.isthmus.gateway;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The command line and config file of {@code isthmus start}. */
class MainTest {

    @Test
    void shouldParseEveryDocumentedFlag() {
        BrokerConfig c = Main.parse(new String[] {"--listen", "127.0.0.2:9093", "--advertise", "broker.local:19093",
            "--data-dir", "/tmp/x", "--smp", "2", "--memory", "512M", "--node-id", "3", "--metrics-listen",
            "127.0.0.1:9644", "--default-partitions", "3", "--auto-create-topics", "false", "--max-connections", "50",
            "--pin", "--portable"});
        assertEquals("127.0.0.2", c.host());
        assertEquals(9093, c.port());
        assertEquals("broker.local", c.advertisedHostOrListen());
        assertEquals(19093, c.advertisedPort());
        assertEquals(Path.of("/tmp/x"), c.dataDir());
        assertEquals(2, c.shards());
        assertEquals(512L << 20, c.memoryBytes());
        assertEquals(3, c.nodeId());
        assertEquals(9644, c.metricsPort());
        assertEquals(3, c.defaultPartitions());
        assertEquals(false, c.autoCreateTopics());
        assertEquals(50, c.maxConnections());
        assertTrue(c.pin());
    }

    @Test
    void shouldReadAConfigFileAndLetFlagsWin(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("isthmus.conf");
        Files.write(f, List.of("# a comment", "listen = 127.0.0.1:9999", "smp = 1", "memory = 256M", "seeds = a:1, 7@b:2",
            "rpc-listen = 127.0.0.1:9998"));
        BrokerConfig c = Main.parse(new String[] {"--config", f.toString(), "--smp", "2"});
        assertEquals(9999, c.port());
        assertEquals(2, c.shards());
        assertEquals(256L << 20, c.memoryBytes());
        assertEquals(List.of("0@a:1", "7@b:2"), c.seeds(), "a seed without an id is node <its position>");
        assertEquals(9998, c.rpcPort());
        assertNull(Main.parse(new String[] {"--help"}));
    }

    @Test
    void shouldRejectBadConfigurationWithOneSentence(@TempDir Path dir) {
        assertMessage("unknown option --lisen (see isthmus --help)", "--lisen", "x:1");
        assertMessage("--listen expects HOST:PORT, got '9092'", "--listen", "9092");
        assertMessage("--smp expects a whole number, got 'two'", "--smp", "two");
        assertMessage("--memory expects a size like 512M or 2G, got 'lots'", "--memory", "lots");
        assertMessage("--listen port must be in [0, 65535], got 70000", "--listen", "h:70000");
        assertMessage("--smp needs a value", "--smp");
        assertMessage("--seeds does not list node 5 (--node-id): give its --rpc-listen HOST:PORT, the address other"
            + " nodes reach it at", "--node-id", "5", "--seeds", "127.0.0.1:9100");
        assertEquals(9101, Main.parse(new String[] {"--node-id", "1", "--seeds", "127.0.0.1:9100,127.0.0.1:9101"})
            .rpcPort(), "a seed node listens for RPC on its seed address");
        assertMessage("--seeds names node 1 twice", "--seeds", "1@a:1,1@b:2", "--rpc-listen", "127.0.0.1:9100");
        assertTrue(assertThrows(IllegalArgumentException.class,
            () -> Main.parse(new String[] {"--config", dir.resolve("missing").toString()})).getMessage()
            .startsWith("cannot read config file"));
        assertTrue(assertThrows(IllegalArgumentException.class,
            () -> Main.parse(new String[] {"--smp", "4", "--memory", "64M"})).getMessage()
            .contains("less than 64 MiB"));
    }

    @Test
    void shouldTakeRpcTlsSettingsFromRpcSslNamesElseTheListenersSslNames() {
        assertNull(Main.parse(new String[0]).security().rpcTls(), "plaintext RPC by default");
        BrokerConfig c = Main.parse(new String[] {"--rpc.security.protocol", "ssl", "--ssl.keystore.location",
            "/k/broker.p12", "--ssl.keystore.password", "kp", "--ssl.truststore.location", "/k/trust.p12",
            "--rpc.ssl.truststore.location", "/k/nodes-ca.pem", "--ssl.client.auth", "none",
            "--ssl.enabled.protocols", "TLSv1.3"});
        var rpc = c.security().rpcTls();
        assertEquals(Path.of("/k/broker.p12"), rpc.tls().keystoreLocation(), "ssl.keystore.location by default");
        assertEquals("kp", rpc.tls().keystorePassword());
        assertEquals(Path.of("/k/nodes-ca.pem"), rpc.tls().truststoreLocation(), "rpc.ssl.* wins");
        assertEquals(dev.isthmus.gateway.security.TlsSettings.ClientAuth.REQUIRED, rpc.tls().clientAuth(),
            "mutual TLS between nodes unless rpc.ssl.client.auth says otherwise");
        assertEquals(List.of("TLSv1.3"), rpc.tls().enabledProtocols());
        assertTrue(rpc.verifyHostname(), "https endpoint identification by default");
        assertEquals(false, Main.parse(new String[] {"--rpc.security.protocol", "SSL", "--rpc.ssl.keystore.location",
            "/k/n.pem", "--rpc.ssl.endpoint.identification.algorithm", "", "--rpc.ssl.client.auth", "requested"})
            .security().rpcTls().verifyHostname());
        assertMessage("rpc.security.protocol must be PLAINTEXT or SSL, got 'SASL_SSL'", "--rpc.security.protocol",
            "SASL_SSL");
        assertMessage("rpc.security.protocol=SSL needs rpc.ssl.keystore.location or ssl.keystore.location (the node's"
            + " key and certificate)", "--rpc.security.protocol", "SSL");
        assertMessage("rpc.ssl.keystore.location is set but rpc.security.protocol is PLAINTEXT (set"
            + " rpc.security.protocol=SSL for TLS between nodes)", "--rpc.ssl.keystore.location", "/k/n.pem");
    }

    @Test
    void shouldTakeAnHttpsOrFileKeySetForOauthBearer() {
        var https = Main.parse(new String[] {"--sasl.oauthbearer.jwks.endpoint.url", "https://issuer.example/keys"})
            .security().sasl().oauthBearer();
        assertEquals(java.net.URI.create("https://issuer.example/keys"), https.jwksUrl());
        assertNull(https.jwksFile());
        var file = Main.parse(new String[] {"--sasl.oauthbearer.jwks.endpoint.url", "file:/etc/jwks.json"})
            .security().sasl().oauthBearer();
        assertEquals(Path.of("/etc/jwks.json"), file.jwksFile());
        assertNull(file.jwksUrl());
        assertMessage("sasl.oauthbearer.jwks.endpoint.url http://issuer.example/keys: only https: and file: URLs are"
            + " served", "--sasl.oauthbearer.jwks.endpoint.url", "http://issuer.example/keys");
    }

    @Test
    void shouldParseTheReceiveLimits() {
        BrokerConfig defaults = Main.parse(new String[0]);
        assertEquals(30_000, defaults.requestReceiveTimeoutMs());
        assertEquals(50, defaults.connectionReceiveSharePercent());
        assertEquals(defaults, Main.parse(new String[] {"--request-receive-timeout", "30s",
            "--connection-receive-share", "50"}), "the documented defaults change nothing");
        assertEquals(500, Main.parse(new String[] {"--request-receive-timeout", "500ms"}).requestReceiveTimeoutMs());
        assertEquals(120_000, Main.parse(new String[] {"--request-receive-timeout", "2m"}).requestReceiveTimeoutMs());
        assertEquals(1_500, Main.parse(new String[] {"--request-receive-timeout=1500"}).requestReceiveTimeoutMs());
        assertEquals(25, Main.parse(new String[] {"--connection-receive-share", "25%"}).connectionReceiveSharePercent());
        assertMessage("--request-receive-timeout expects a duration like 30s or 500ms, got 'soon'",
            "--request-receive-timeout", "soon");
        assertMessage("--request-receive-timeout must be positive, got '0s'", "--request-receive-timeout", "0s");
        assertMessage("--connection-receive-share must be a percentage in [1, 100], got 101",
            "--connection-receive-share", "101");
    }

    private static void assertMessage(String expected, String... args) {
        assertEquals(expected, assertThrows(IllegalArgumentException.class, () -> Main.parse(args)).getMessage());
    }
}
