package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.KafkaTool.Run;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterClientQuotasOptions;
import org.apache.kafka.common.errors.InvalidRequestException;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.quota.ClientQuotaFilter;
import org.apache.kafka.common.quota.ClientQuotaFilterComponent;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Client quotas managed with Kafka 4.3's {@code kafka-configs.sh} ({@code kafka.admin.ConfigCommand}, in-process,
 * its exit hooked) for users, client ids, both, and defaults; what DescribeClientQuotas then returns for Kafka's
 * filters (exact, default, any; strict or not); and AlterClientQuotas' refusals with Kafka's errors.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(180)
class KafkaConfigsQuotasTest {
    /** kafka-configs.sh --bootstrap-server BROKER ARGS: what it printed and the status it exited with. */
    private static Run configs(Broker b, String... args) throws Exception {
        String[] all = KafkaTool.withBootstrap("127.0.0.1:" + b.port(), args);
        return KafkaTool.run("kafka-configs " + String.join(" ", all), () -> kafka.admin.ConfigCommand.main(all));
    }

    private static ClientQuotaEntity entity(String... typeName) {
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i < typeName.length; i += 2) {
            m.put(typeName[i], typeName[i + 1]);
        }
        return new ClientQuotaEntity(m);
    }

    private static Map<ClientQuotaEntity, Map<String, Double>> describe(Admin admin, ClientQuotaFilter f)
        throws Exception {
        return admin.describeClientQuotas(f).entities().get();
    }

    @Test
    void shouldAlterAndDescribeQuotasOfUsersClientsAndDefaultsWithKafkaConfigs(@TempDir Path dir) throws Exception {
        BrokerConfig c = BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2).memoryBytes(256L << 20)
            .pin(false).build();
        try (Broker b = Broker.start(c)) {
            Run r = configs(b, "--alter", "--add-config", "producer_byte_rate=1048576", "--entity-type", "users",
                "--entity-name", "alice");
            assertEquals(0, r.code(), r.err());
            assertTrue(r.out().contains("Completed updating config"), r.out());
            assertEquals(0, configs(b, "--alter", "--add-config", "consumer_byte_rate=2097152,request_percentage=50",
                "--entity-type", "clients", "--entity-name", "c1").code());
            assertEquals(0, configs(b, "--alter", "--add-config", "producer_byte_rate=4096", "--entity-type", "users",
                "--entity-name", "alice", "--entity-type", "clients", "--entity-name", "c1").code());
            assertEquals(0, configs(b, "--alter", "--add-config", "producer_byte_rate=100000", "--entity-type", "users",
                "--entity-default").code());
            assertEquals(0, configs(b, "--alter", "--add-config", "consumer_byte_rate=500000", "--entity-type",
                "clients", "--entity-default").code());

            Run d = configs(b, "--describe", "--entity-type", "clients", "--entity-name", "c1");
            assertEquals(0, d.code(), d.err());
            assertTrue(d.out().contains("consumer_byte_rate=2097152.0"), d.out());
            assertTrue(d.out().contains("request_percentage=50.0"), d.out());
            Run both = configs(b, "--describe", "--entity-type", "users", "--entity-name", "alice", "--entity-type",
                "clients", "--entity-name", "c1");
            assertEquals(0, both.code(), both.err());
            assertTrue(both.out().contains("producer_byte_rate=4096.0"), both.out());
            Run defaults = configs(b, "--describe", "--entity-type", "clients", "--entity-default");
            assertTrue(defaults.out().contains("consumer_byte_rate=500000.0"), defaults.out());

            Properties ap = new Properties();
            ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
            try (Admin admin = Admin.create(ap)) {
                ClientQuotaEntity alice = entity(ClientQuotaEntity.USER, "alice");
                ClientQuotaEntity c1 = entity(ClientQuotaEntity.CLIENT_ID, "c1");
                ClientQuotaEntity aliceC1 = entity(ClientQuotaEntity.USER, "alice", ClientQuotaEntity.CLIENT_ID, "c1");
                ClientQuotaEntity defaultUser = entity(ClientQuotaEntity.USER, null);
                ClientQuotaEntity defaultClient = entity(ClientQuotaEntity.CLIENT_ID, null);
                Map<ClientQuotaEntity, Map<String, Double>> everything = describe(admin, ClientQuotaFilter.all());
                assertEquals(Map.of(alice, Map.of("producer_byte_rate", 1048576.0),
                    c1, Map.of("consumer_byte_rate", 2097152.0, "request_percentage", 50.0),
                    aliceC1, Map.of("producer_byte_rate", 4096.0),
                    defaultUser, Map.of("producer_byte_rate", 100000.0),
                    defaultClient, Map.of("consumer_byte_rate", 500000.0)), everything);

                assertEquals(Set.of(alice), describe(admin, ClientQuotaFilter.containsOnly(List.of(
                    ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.USER, "alice")))).keySet(), "exact, strict");
                assertEquals(Set.of(alice, aliceC1), describe(admin, ClientQuotaFilter.contains(List.of(
                    ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.USER, "alice")))).keySet(), "exact");
                assertEquals(Set.of(defaultUser), describe(admin, ClientQuotaFilter.containsOnly(List.of(
                    ClientQuotaFilterComponent.ofDefaultEntity(ClientQuotaEntity.USER)))).keySet(), "default, strict");
                assertEquals(Set.of(c1, aliceC1, defaultClient), describe(admin, ClientQuotaFilter.contains(List.of(
                    ClientQuotaFilterComponent.ofEntityType(ClientQuotaEntity.CLIENT_ID)))).keySet(), "any client id");
                assertEquals(Set.of(c1, defaultClient), describe(admin, ClientQuotaFilter.containsOnly(List.of(
                    ClientQuotaFilterComponent.ofEntityType(ClientQuotaEntity.CLIENT_ID)))).keySet(),
                    "any client id, strict");
                assertEquals(Set.of(aliceC1), describe(admin, ClientQuotaFilter.contains(List.of(
                    ClientQuotaFilterComponent.ofEntityType(ClientQuotaEntity.USER),
                    ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.CLIENT_ID, "c1")))).keySet());
                assertEquals(Map.of(), describe(admin, ClientQuotaFilter.containsOnly(List.of())), "strict, empty");
                assertEquals(Map.of(), describe(admin, ClientQuotaFilter.contains(List.of(
                    ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.USER, "nobody")))));

                // Deleting the only key of an entity removes the entity.
                assertEquals(0, configs(b, "--alter", "--delete-config", "producer_byte_rate", "--entity-type", "users",
                    "--entity-name", "alice").code());
                assertEquals(Map.of(), describe(admin, ClientQuotaFilter.containsOnly(List.of(
                    ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.USER, "alice")))));
                assertEquals(4, describe(admin, ClientQuotaFilter.all()).size());
            }
        }
    }

    @Test
    void shouldRefuseInvalidQuotasWithKafkasErrorsAndStoreNothingOfThem(@TempDir Path dir) throws Exception {
        BrokerConfig c = BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(1).memoryBytes(256L << 20)
            .pin(false).build();
        try (Broker b = Broker.start(c)) {
            Run bad = configs(b, "--alter", "--add-config", "producer_byte_rate=1.5", "--entity-type", "users",
                "--entity-name", "bob");
            assertNotEquals(0, bad.code());
            assertTrue(bad.printed().contains("producer_byte_rate must be a Long value"), bad.printed());

            Properties ap = new Properties();
            ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
            try (Admin admin = Admin.create(ap)) {
                ClientQuotaEntity bob = entity(ClientQuotaEntity.USER, "bob");
                ClientQuotaEntity carol = entity(ClientQuotaEntity.USER, "carol");
                ClientQuotaEntity ip = entity(ClientQuotaEntity.IP, "127.0.0.1");
                var result = admin.alterClientQuotas(List.of(
                    new ClientQuotaAlteration(bob, List.of(new ClientQuotaAlteration.Op("no_such_rate", 5.0))),
                    new ClientQuotaAlteration(ip, List.of(new ClientQuotaAlteration.Op("connection_creation_rate", 5.0))),
                    new ClientQuotaAlteration(carol, List.of(new ClientQuotaAlteration.Op("producer_byte_rate", 1e6)))))
                    .values();
                ExecutionException unknown = assertThrows(ExecutionException.class, () -> result.get(bob).get());
                assertInstanceOf(InvalidRequestException.class, unknown.getCause());
                assertEquals("Invalid configuration key no_such_rate", unknown.getCause().getMessage());
                ExecutionException ipRefused = assertThrows(ExecutionException.class, () -> result.get(ip).get());
                assertInstanceOf(InvalidRequestException.class, ipRefused.getCause());
                result.get(carol).get(); // the valid entry of the same request is stored
                assertEquals(Map.of(carol, Map.of("producer_byte_rate", 1e6)), describe(admin, ClientQuotaFilter.all()));

                // validate_only checks and stores nothing.
                admin.alterClientQuotas(List.of(new ClientQuotaAlteration(bob, List.of(new ClientQuotaAlteration.Op(
                    "consumer_byte_rate", 1e6)))), new AlterClientQuotasOptions().validateOnly(true)).all().get();
                assertEquals(Set.of(carol), describe(admin, ClientQuotaFilter.all()).keySet());
                // A filter naming a type twice is refused.
                ExecutionException twice = assertThrows(ExecutionException.class, () -> describe(admin,
                    ClientQuotaFilter.contains(List.of(ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.USER, "a"),
                        ClientQuotaFilterComponent.ofDefaultEntity(ClientQuotaEntity.USER)))));
                assertInstanceOf(InvalidRequestException.class, twice.getCause());
                assertTrue(twice.getCause().getMessage().contains("cannot appear more than once"),
                    twice.getCause().getMessage());
                assertEquals(Collections.emptyMap(), describe(admin, ClientQuotaFilter.contains(List.of(
                    ClientQuotaFilterComponent.ofEntityType(ClientQuotaEntity.IP)))), "no ip quota is stored");
            }
        }
    }
}
