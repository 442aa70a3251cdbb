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

    /**
     * Two nodes in one JVM: node 0 has INTERNAL and EXTERNAL listeners, node 1 only INTERNAL. Through node 0's
     * INTERNAL listener a client sees both nodes at their INTERNAL addresses; through EXTERNAL only node 0, and the
     * partitions node 1 leads answer LISTENER_NOT_FOUND, as Kafka does.
     */
    @Test
    void shouldAnswerEachListenerWithItsOwnEndpointsAcrossNodes(@TempDir Path dir) throws Exception {
        int[] rpc = {freePort(), freePort()};
        int[] internal = {freePort(), freePort()};
        int external = freePort();
        List<String> seeds = List.of("0@127.0.0.1:" + rpc[0], "1@127.0.0.1:" + rpc[1]);
        String map = "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT";
        BrokerConfig[] configs = {
            node(dir, 0, rpc[0], seeds, ListenerConfig.parse("INTERNAL://127.0.0.1:" + internal[0]
                + ",EXTERNAL://127.0.0.1:" + external, "EXTERNAL://node0.external:19092", map)),
            node(dir, 1, rpc[1], seeds, ListenerConfig.parse("INTERNAL://127.0.0.1:" + internal[1], null, map))};
        Broker[] brokers = new Broker[2];
        try {
            brokers[0] = Broker.start(configs[0]);
            brokers[1] = Broker.start(configs[1]);
            MetadataResponseData viaInternal;
            while (true) {
                viaInternal = metadata(internal[0], null);
                if (viaInternal.brokers.size() == 2) {
                    break;
                }
                Thread.sleep(50);
            }
            viaInternal.brokers.sort(java.util.Comparator.comparingInt(b -> b.nodeId));
            assertEquals(internal[0], viaInternal.brokers.get(0).port);
            assertEquals(internal[1], viaInternal.brokers.get(1).port);
            try (org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(
                java.util.Map.of("bootstrap.servers", "127.0.0.1:" + internal[0]))) {
                admin.createTopics(List.of(new org.apache.kafka.clients.admin.NewTopic("spread", 4, (short) 1)))
                    .all().get();
            }
            MetadataResponseData viaExternal;
            while (true) {
                viaExternal = metadata(external, "spread");
                boolean settled = viaExternal.topics.get(0).partitions.stream()
                    .noneMatch(p -> p.errorCode == ErrorCodes.LEADER_NOT_AVAILABLE);
                if (settled && metadata(internal[0], "spread").topics.get(0).partitions.stream()
                    .allMatch(p -> p.leaderId >= 0)) {
                    viaExternal = metadata(external, "spread");
                    break;
                }
                Thread.sleep(50);
            }
            assertEquals(1, viaExternal.brokers.size(), "node 1 has no EXTERNAL listener");
            assertEquals("node0.external", viaExternal.brokers.get(0).host);
            assertEquals(19092, viaExternal.brokers.get(0).port);
            MetadataResponseData led = metadata(internal[0], "spread");
            int onNode1 = 0;
            for (int p = 0; p < 4; p++) {
                int leader = led.topics.get(0).partitions.get(p).leaderId;
                MetadataResponseData.MetadataResponsePartition ext = viaExternal.topics.get(0).partitions.get(p);
                if (leader == 1) {
                    onNode1++;
                    assertEquals(ErrorCodes.LISTENER_NOT_FOUND, ext.errorCode, "partition " + p);
                    assertEquals(-1, ext.leaderId);
                } else {
                    assertEquals(0, ext.errorCode, "partition " + p);
                    assertEquals(0, ext.leaderId);
                }
            }
            assertTrue(onNode1 > 0, "placement spreads the leaders over both nodes: " + led.topics);
        } finally {
            for (Broker b : brokers) {
                if (b != null) {
                    b.close();
                }
            }
        }
    }

    private static BrokerConfig node(Path dir, int id, int rpc, List<String> seeds, List<ListenerConfig> listeners) {
        return BrokerConfig.defaults().toBuilder().nodeId(id).rpc("127.0.0.1", rpc).seeds(seeds)
            .dataDir(dir.resolve("node-" + id)).shards(1).memoryBytes(192L << 20).pin(false).listeners(listeners)
            .build();
    }

    private static int freePort() throws Exception {
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private static MetadataResponseData metadata(int port, String topic) throws Exception {
        try (WireClient w = new WireClient(port, 30_000)) {
            MetadataRequestData req = new MetadataRequestData();
            if (topic != null) {
                MetadataRequestData.MetadataRequestTopic t = new MetadataRequestData.MetadataRequestTopic();
                t.name = topic;
                req.topics = new java.util.ArrayList<>(List.of(t));
            }
            w.send(WireClient.frame(ApiKeys.METADATA, (short) 12, 1, req));
            return WireClient.body(w.readFrame(), ApiKeys.METADATA, (short) 12);
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
