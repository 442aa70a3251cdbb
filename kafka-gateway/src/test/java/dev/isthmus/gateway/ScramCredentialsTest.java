package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.KafkaTool.Run;
import dev.isthmus.gateway.security.SaslSettings;
import dev.isthmus.gateway.security.SecurityProtocol;
import dev.isthmus.gateway.cluster.UserScramCredential;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.UserScramCredentialsDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.ResourceNotFoundException;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.message.AlterUserScramCredentialsRequestData;
import org.apache.kafka.common.message.AlterUserScramCredentialsResponseData;
import org.apache.kafka.common.message.DescribeUserScramCredentialsRequestData;
import org.apache.kafka.common.message.DescribeUserScramCredentialsResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.requests.AlterUserScramCredentialsResponse;
import org.apache.kafka.common.requests.DescribeUserScramCredentialsResponse;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import javax.crypto.Mac;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.crypto.spec.SecretKeySpec;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SCRAM users managed through the cluster: Kafka 4.3's {@code kafka-configs.sh} ({@code kafka.admin.ConfigCommand},
 * run in-process) adds and deletes a user's credential (AlterUserScramCredentials), the AdminClient describes it
 * (DescribeUserScramCredentials), the controller's state holds the salt and keys Kafka would derive (never the
 * password or the salted password), and a kafka-clients producer authenticates as that user over SASL_PLAINTEXT
 * until the credential is deleted; the bootstrap user of the configuration keeps working throughout. Raw requests
 * (parsed by kafka-clients) show Kafka's error codes and texts, and a restart keeps the credentials.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(180)
class ScramCredentialsTest {
    static final String ADMIN = "admin";
    static final String ADMIN_PASSWORD = "admin-secret";

    static BrokerConfig config(Path dir) {
        SaslSettings sasl = new SaslSettings(List.of("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), 0, 512 * 1024, 100,
            ADMIN, ADMIN_PASSWORD, 4096);
        return BrokerConfig.defaults().toBuilder().dataDir(dir).shards(2).memoryBytes(256L << 20).pin(false)
            .listeners(List.of(SecureClients.listener("SASL_PLAINTEXT", SecurityProtocol.SASL_PLAINTEXT),
                SecureClients.listener("PLAINTEXT", SecurityProtocol.PLAINTEXT)))
            .sasl(sasl).build();
    }

    /** kafka-configs.sh --bootstrap-server BROKER ARGS: what it printed and the status it exited with. */
    private static Run configs(String bootstrap, String... args) throws Exception {
        String[] all = KafkaTool.withBootstrap(bootstrap, args);
        return KafkaTool.run("kafka-configs " + String.join(" ", all).replaceAll("password=[^\\],]*", "password=***"),
            () -> kafka.admin.ConfigCommand.main(all));
    }

    /** Produces {@code n} records to {@code topic} as the client {@code security} describes (acks=all). */
    static void produce(Properties client, String topic, int n) throws Exception {
        Properties p = new Properties();
        p.putAll(client);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            for (int i = 0; i < n; i++) {
                producer.send(new ProducerRecord<>(topic, "k" + i, "v" + i)).get(30, TimeUnit.SECONDS);
            }
        }
    }

    /** Asserts that a client authenticating as {@code client} is refused with SASL_AUTHENTICATION_FAILED. */
    static void assertRefused(Properties client) {
        Properties p = new Properties();
        p.putAll(client);
        p.put("default.api.timeout.ms", "15000");
        p.put("request.timeout.ms", "10000");
        try (Admin admin = Admin.create(p)) {
            ExecutionException e = assertThrows(ExecutionException.class, () -> admin.describeCluster().nodes().get());
            assertInstanceOf(SaslAuthenticationException.class, e.getCause(), e.toString());
        }
    }

    /** RFC 5802's StoredKey and ServerKey for {@code password}, computed here with the JDK alone. */
    static byte[][] keys(String password, byte[] salt, int iterations, String sha) throws Exception {
        String bits = sha.equals("SHA-256") ? "256" : "512";
        byte[] salted = SecretKeyFactory.getInstance("PBKDF2WithHmac" + sha.replace("-", ""))
            .generateSecret(new PBEKeySpec(password.toCharArray(), salt, iterations, Integer.parseInt(bits)))
            .getEncoded();
        Mac mac = Mac.getInstance("Hmac" + sha.replace("-", ""));
        mac.init(new SecretKeySpec(salted, mac.getAlgorithm()));
        byte[] clientKey = mac.doFinal("Client Key".getBytes(StandardCharsets.US_ASCII));
        byte[] serverKey = mac.doFinal("Server Key".getBytes(StandardCharsets.US_ASCII));
        return new byte[][] {MessageDigest.getInstance(sha).digest(clientKey), serverKey, salted};
    }

    @Test
    void shouldManageAUserWithKafkaConfigsAndAuthenticateAProducerAsThem(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir))) {
            String plaintext = "127.0.0.1:" + b.port("PLAINTEXT");
            Properties alice = SecureClients.props(b, "SASL_PLAINTEXT",
                SecureClients.scram("SCRAM-SHA-256", "alice", "alice-secret", "SASL_PLAINTEXT"));
            assertRefused(alice);

            Run add = configs(plaintext, "--alter", "--add-config", "SCRAM-SHA-256=[iterations=8192,password=alice-secret]",
                "--entity-type", "users", "--entity-name", "alice");
            assertEquals(0, add.code(), add.err());
            assertTrue(add.out().contains("Completed updating config for user alice."), add.out());

            // What the controller stores: the salt the tool chose, Kafka's StoredKey and ServerKey, 8192 iterations;
            // neither the password nor the salted password.
            UserScramCredential stored = b.controllerState().scramCredentials().get(new UserScramCredential.Key("alice",
                UserScramCredential.SCRAM_SHA_256));
            assertNotNull(stored);
            assertEquals(8192, stored.iterations());
            byte[][] expected = keys("alice-secret", stored.salt(), 8192, "SHA-256");
            assertArrayEquals(expected[0], stored.storedKey());
            assertArrayEquals(expected[1], stored.serverKey());
            byte[] snapshot = b.controllerState().encode();
            assertFalse(contains(snapshot, expected[2]), "the salted password is not in the state");
            assertFalse(contains(snapshot, "alice-secret".getBytes(StandardCharsets.UTF_8)), "nor the password");

            Properties plain = new Properties();
            plain.put("bootstrap.servers", plaintext);
            try (Admin admin = Admin.create(plain)) {
                UserScramCredentialsDescription d = admin.describeUserScramCredentials(List.of("alice"))
                    .description("alice").get(30, TimeUnit.SECONDS);
                assertEquals(List.of(new ScramCredentialInfo(org.apache.kafka.clients.admin.ScramMechanism.SCRAM_SHA_256,
                    8192)), d.credentialInfos());
            }

            long before = Connection.authentications(b)[0];
            produce(alice, "orders", 20);
            assertTrue(Connection.authentications(b)[0] > before, "alice authenticated");
            assertRefused(SecureClients.props(b, "SASL_PLAINTEXT",
                SecureClients.scram("SCRAM-SHA-512", "alice", "alice-secret", "SASL_PLAINTEXT")));
            assertRefused(SecureClients.props(b, "SASL_PLAINTEXT",
                SecureClients.scram("SCRAM-SHA-256", "alice", "wrong", "SASL_PLAINTEXT")));
            // PLAIN checks its password against the same stored credential.
            produce(SecureClients.props(b, "SASL_PLAINTEXT", SecureClients.plain("alice", "alice-secret",
                "SASL_PLAINTEXT")), "orders", 1);

            Run delete = configs(plaintext, "--alter", "--delete-config", "SCRAM-SHA-256", "--entity-type", "users",
                "--entity-name", "alice");
            assertEquals(0, delete.code(), delete.err());
            assertTrue(b.controllerState().scramCredentials().isEmpty());
            try (Admin admin = Admin.create(plain)) {
                ExecutionException e = assertThrows(ExecutionException.class, () -> admin.describeUserScramCredentials(
                    List.of("alice")).description("alice").get(30, TimeUnit.SECONDS));
                assertInstanceOf(ResourceNotFoundException.class, e.getCause());
            }
            assertRefused(alice);
            Run again = configs(plaintext, "--alter", "--delete-config", "SCRAM-SHA-256", "--entity-type", "users",
                "--entity-name", "alice");
            assertEquals(1, again.code());
            assertTrue(again.err().contains("Attempt to delete a user credential that does not exist"), again.err());
            // The bootstrap user of the configuration kept working throughout.
            produce(SecureClients.props(b, "SASL_PLAINTEXT", SecureClients.scram("SCRAM-SHA-512", ADMIN, ADMIN_PASSWORD,
                "SASL_PLAINTEXT")), "orders", 1);
        }
    }

    private static boolean contains(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return true;
        }
        return false;
    }

    private static AlterUserScramCredentialsRequestData.ScramCredentialUpsertion upsert(String name, int mechanism,
                                                                                        int iterations) {
        return new AlterUserScramCredentialsRequestData.ScramCredentialUpsertion().setName(name)
            .setMechanism((byte) mechanism).setIterations(iterations).setSalt("salt-of-16-bytes".getBytes())
            .setSaltedPassword(new byte[32]);
    }

    private static Map<String, AlterUserScramCredentialsResponseData.AlterUserScramCredentialsResult> alter(int port,
        AlterUserScramCredentialsRequestData req) throws Exception {
        AlterUserScramCredentialsResponse r = (AlterUserScramCredentialsResponse) KafkaRequests.send(port,
            ApiKeys.ALTER_USER_SCRAM_CREDENTIALS, (short) 0, req);
        Map<String, AlterUserScramCredentialsResponseData.AlterUserScramCredentialsResult> byUser = new HashMap<>();
        r.data().results().forEach(x -> assertNull(byUser.put(x.user(), x), "one result per user"));
        return byUser;
    }

    @Test
    void shouldAnswerKafkasErrorsForBadAlterationsAndDescriptionsAndKeepCredentialsAcrossARestart(@TempDir Path dir)
        throws Exception {
        try (Broker b = Broker.start(config(dir))) {
            int port = b.port("PLAINTEXT");
            AlterUserScramCredentialsRequestData req = new AlterUserScramCredentialsRequestData();
            req.upsertions().add(upsert("few", 1, 4095));
            req.upsertions().add(upsert("many", 2, 16385));
            req.upsertions().add(upsert("", 1, 4096));
            req.upsertions().add(upsert("unknown-mechanism", 3, 4096));
            req.upsertions().add(upsert("twice", 1, 4096));
            req.upsertions().add(upsert("twice", 2, 4096)); // KRaft: one alteration per user, whatever the mechanism
            req.upsertions().add(upsert("dave", 2, 4096));
            req.deletions().add(new AlterUserScramCredentialsRequestData.ScramCredentialDeletion().setName("carol")
                .setMechanism((byte) 1));
            var r = alter(port, req);
            assertEquals(7, r.size(), r.toString());
            assertEquals(93, r.get("few").errorCode());
            assertEquals("Too few iterations", r.get("few").errorMessage());
            assertEquals(93, r.get("many").errorCode());
            assertEquals("Too many iterations", r.get("many").errorMessage());
            assertEquals(93, r.get("").errorCode());
            assertEquals("Username must not be empty", r.get("").errorMessage());
            assertEquals(33, r.get("unknown-mechanism").errorCode());
            assertEquals(92, r.get("twice").errorCode());
            assertEquals("A user credential cannot be altered twice in the same request", r.get("twice").errorMessage());
            assertEquals(91, r.get("carol").errorCode());
            assertEquals("Attempt to delete a user credential that does not exist", r.get("carol").errorMessage());
            assertEquals(0, r.get("dave").errorCode());
            assertNull(r.get("dave").errorMessage());
            assertEquals(List.of("dave"), b.controllerState().scramCredentials().keySet().stream()
                .map(UserScramCredential.Key::name).toList(), "only the valid alteration is stored");

            DescribeUserScramCredentialsResponse d = (DescribeUserScramCredentialsResponse) KafkaRequests.send(port,
                ApiKeys.DESCRIBE_USER_SCRAM_CREDENTIALS, (short) 0, new DescribeUserScramCredentialsRequestData()
                    .setUsers(List.of(new DescribeUserScramCredentialsRequestData.UserName().setName("dave"),
                        new DescribeUserScramCredentialsRequestData.UserName().setName("zed"),
                        new DescribeUserScramCredentialsRequestData.UserName().setName("zed"))));
            assertEquals(0, d.data().errorCode());
            Map<String, DescribeUserScramCredentialsResponseData.DescribeUserScramCredentialsResult> byUser =
                new HashMap<>();
            d.data().results().forEach(x -> byUser.put(x.user(), x));
            assertEquals(2, d.data().results().size(), "a user named twice is answered once");
            assertEquals(0, byUser.get("dave").errorCode());
            assertEquals(1, byUser.get("dave").credentialInfos().size());
            assertEquals(2, byUser.get("dave").credentialInfos().get(0).mechanism());
            assertEquals(4096, byUser.get("dave").credentialInfos().get(0).iterations());
            assertEquals(92, byUser.get("zed").errorCode());
            assertEquals("Cannot describe SCRAM credentials for the same user twice in a single request: zed",
                byUser.get("zed").errorMessage());
            DescribeUserScramCredentialsResponse missing = (DescribeUserScramCredentialsResponse) KafkaRequests.send(
                port, ApiKeys.DESCRIBE_USER_SCRAM_CREDENTIALS, (short) 0, new DescribeUserScramCredentialsRequestData()
                    .setUsers(List.of(new DescribeUserScramCredentialsRequestData.UserName().setName("zed"))));
            assertEquals(91, missing.data().results().get(0).errorCode());
            assertEquals("Attempt to describe a user credential that does not exist: zed",
                missing.data().results().get(0).errorMessage());
        }
        // A restart replays the controller's log (or snapshot): the credential is still there and authenticates.
        try (Broker b = Broker.start(config(dir))) {
            DescribeUserScramCredentialsResponse all = (DescribeUserScramCredentialsResponse) KafkaRequests.send(
                b.port("PLAINTEXT"), ApiKeys.DESCRIBE_USER_SCRAM_CREDENTIALS, (short) 0,
                new DescribeUserScramCredentialsRequestData().setUsers(null));
            assertEquals(List.of("dave"), all.data().results().stream().map(x -> x.user()).toList());
            assertTrue(Files.isDirectory(dir));
        }
    }
}
