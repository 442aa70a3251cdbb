package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.MetadataRequestData;
import dev.isthmus.gateway.protocol.message.MetadataResponseData;
import dev.isthmus.gateway.security.ListenerConfig;
import dev.isthmus.gateway.security.SecurityProtocol;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Named listeners: each binds its own port; Metadata answers with the advertised address of the listener the
 * request came in on; the configuration's parsing and errors; the single-flag default unchanged; a single node opens
 * no port its configuration does not name.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(120)
class ListenerTest {
    @Test
    void shouldAnswerMetadataWithTheAddressesOfTheListenerTheClientCameIn(@TempDir Path dir) throws Exception {
        List<ListenerConfig> listeners = ListenerConfig.parse("INTERNAL://127.0.0.1:0,EXTERNAL://127.0.0.1:0",
            "INTERNAL://internal.example:1111,EXTERNAL://external.example:2222",
            "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT");
        BrokerConfig c = BrokerConfig.defaults().toBuilder().dataDir(dir).shards(2).memoryBytes(256L << 20).pin(false)
            .listeners(listeners).build();
        try (Broker b = Broker.start(c)) {
            assertTrue(b.port("INTERNAL") > 0 && b.port("EXTERNAL") > 0 && b.port("INTERNAL") != b.port("EXTERNAL"));
            assertEquals(b.port("INTERNAL"), b.port(), "the first listener's port");
            for (String[] l : new String[][] {{"INTERNAL", "internal.example", "1111"},
                {"EXTERNAL", "external.example", "2222"}}) {
                try (WireClient w = new WireClient(b.port(l[0]), 30_000)) {
                    MetadataRequestData req = new MetadataRequestData();
                    w.send(WireClient.frame(ApiKeys.METADATA, (short) 12, 1, req));
                    MetadataResponseData r = WireClient.body(w.readFrame(), ApiKeys.METADATA, (short) 12);
                    assertEquals(1, r.brokers.size());
                    assertEquals(l[1], r.brokers.get(0).host, "advertised host of " + l[0]);
                    assertEquals(Integer.parseInt(l[2]), r.brokers.get(0).port, "advertised port of " + l[0]);
                }
            }
        }
    }

    @Test
    void shouldKeepTheSingleFlagDefaultAndOpenNoRpcPortOnASingleNode(@TempDir Path dir) throws Exception {
        BrokerConfig c = BrokerConfig.defaults().withPort(0).withDataDir(dir).withShards(1).withMemory(128L << 20)
            .withPin(false);
        assertEquals(List.of(new ListenerConfig("PLAINTEXT", "127.0.0.1", 0, null, 0, SecurityProtocol.PLAINTEXT)),
            c.listeners());
        try (Broker b = Broker.start(c)) {
            assertNull(b.rpcAddress(), "a single node without --rpc-listen opens no RPC port");
            assertEquals(b.port(), b.port("PLAINTEXT"));
            try (WireClient w = new WireClient(b.port(), 30_000)) {
                w.send(WireClient.frame(ApiKeys.METADATA, (short) 12, 1, new MetadataRequestData()));
                MetadataResponseData r = WireClient.body(w.readFrame(), ApiKeys.METADATA, (short) 12);
                assertEquals("127.0.0.1", r.brokers.get(0).host);
                assertEquals(b.port(), r.brokers.get(0).port);
            }
        }
    }

    @Test
    void shouldParseListenersFromTheCommandLineAndRefuseBadOnes() {
        BrokerConfig c = Main.parse(new String[] {"--listeners", "PLAINTEXT://:9092,CLIENTS://127.0.0.1:9093",
            "--listener-security-protocol-map", "CLIENTS:SASL_PLAINTEXT", "--advertised-listeners",
            "CLIENTS://kafka.example:19093"});
        assertEquals(List.of(new ListenerConfig("PLAINTEXT", "0.0.0.0", 9092, null, 0, SecurityProtocol.PLAINTEXT),
            new ListenerConfig("CLIENTS", "127.0.0.1", 9093, "kafka.example", 19093, SecurityProtocol.SASL_PLAINTEXT)),
            c.listeners());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Main.parse(new String[] {"--listeners",
            "CLIENTS://127.0.0.1:9093"})).getMessage().contains("listener.security.protocol.map"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Main.parse(new String[] {"--listeners",
            "SSL://127.0.0.1:9093"})).getMessage().contains("ssl.keystore.location"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Main.parse(new String[] {"--listeners",
            "PLAINTEXT://127.0.0.1:9093", "--advertised-listeners", "OTHER://x:1"})).getMessage()
            .contains("not one of the listeners"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Main.parse(new String[] {"--listeners",
            "PLAINTEXT://127.0.0.1:9093,PLAINTEXT://127.0.0.1:9094"})).getMessage().contains("twice"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Main.parse(new String[] {"--listeners",
            "PLAINTEXT://127.0.0.1:9093,SASL_PLAINTEXT://127.0.0.1:9093"})).getMessage().contains("port 9093"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Main.parse(new String[] {"--listeners",
            "PLAINTEXT:/127.0.0.1:9093"})).getMessage().contains("NAME://HOST:PORT"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Main.parse(new String[] {
            "--sasl.admin.user", "admin"})).getMessage().contains("ISTHMUS_SASL_ADMIN_PASSWORD")
            || System.getenv(Main.ADMIN_PASSWORD_ENV) != null);
    }
}
