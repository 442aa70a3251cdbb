package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.auth.AuthorizerConfig;
import dev.isthmus.gateway.security.SaslSettings;
import dev.isthmus.gateway.security.SecurityProtocol;
import dev.isthmus.gateway.security.TlsSettings;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * SASL_SSL and ACLs together, end to end with kafka-clients: TLS on the listener (the client verifies the broker's
 * certificate and host name), SCRAM-SHA-512 users created by the bootstrap super user through
 * AlterUserScramCredentials, an ACL letting {@code User:alice} write topic {@code t}; alice's idempotent producer
 * writes (and the records are read back by the super user), bob's gets TOPIC_AUTHORIZATION_FAILED for {@code t} and
 * CLUSTER_AUTHORIZATION_FAILED for the SCRAM APIs.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(180)
class SaslSslAclTest {
    private static Properties client(Broker b, TestCertificates certs, String user, String password) {
        Properties p = SecureClients.props(b, "SASL_SSL", SecureClients.scram("SCRAM-SHA-512", user, password,
            "SASL_SSL"));
        p.putAll(SecureClients.trust(certs));
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "15000");
        p.put("request.timeout.ms", "15000");
        p.put("default.api.timeout.ms", "30000");
        return p;
    }

    @Test
    void shouldLetAliceWriteTopicTAndRefuseBobOverSaslSsl(@TempDir Path dir) throws Exception {
        TestCertificates certs = TestCertificates.create(java.nio.file.Files.createDirectories(dir.resolve("certs")));
        TlsSettings tls = new TlsSettings(certs.serverP12, "PKCS12", TestCertificates.PASSWORD, null, certs.truststore,
            "PKCS12", TestCertificates.PASSWORD, TlsSettings.ClientAuth.NONE, List.of("TLSv1.2", "TLSv1.3"), List.of(),
            "DEFAULT", 0, false, false);
        BrokerConfig config = BrokerConfig.defaults().toBuilder().dataDir(dir.resolve("data")).shards(2)
            .memoryBytes(256L << 20).pin(false)
            .listeners(List.of(SecureClients.listener("SASL_SSL", SecurityProtocol.SASL_SSL))).tls(tls)
            .sasl(SaslSettings.DEFAULTS.withAdmin("admin", "admin-secret"))
            .authorizer(new AuthorizerConfig(true, Set.of("User:admin"), false)).build();
        try (Broker b = Broker.start(config)) {
            Properties admin = client(b, certs, "admin", "admin-secret");
            try (Admin a = Admin.create(admin)) {
                a.alterUserScramCredentials(List.of(
                    new UserScramCredentialUpsertion("alice", new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512,
                        4096), "alice-secret"),
                    new UserScramCredentialUpsertion("bob", new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512,
                        4096), "bob-secret"))).all().get(30, TimeUnit.SECONDS);
                a.createTopics(List.of(new NewTopic("t", 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
                a.createAcls(List.of(new AclBinding(new ResourcePattern(ResourceType.TOPIC, "t", PatternType.LITERAL),
                    new AccessControlEntry("User:alice", "*", AclOperation.WRITE, AclPermissionType.ALLOW))))
                    .all().get(30, TimeUnit.SECONDS);
            }

            List<String> sent = new ArrayList<>();
            try (KafkaProducer<String, String> alice = new KafkaProducer<>(client(b, certs, "alice", "alice-secret"))) {
                for (int i = 0; i < 10; i++) {
                    sent.add("from-alice-" + i);
                    alice.send(new ProducerRecord<>("t", "k", "from-alice-" + i)).get(30, TimeUnit.SECONDS);
                }
            }

            try (KafkaProducer<String, String> bob = new KafkaProducer<>(client(b, certs, "bob", "bob-secret"))) {
                ExecutionException e = assertThrows(ExecutionException.class,
                    () -> bob.send(new ProducerRecord<>("t", "k", "from-bob")).get(30, TimeUnit.SECONDS));
                TopicAuthorizationException denied = assertInstanceOf(TopicAuthorizationException.class, e.getCause(),
                    e.toString());
                assertEquals(Set.of("t"), denied.unauthorizedTopics());
            }
            try (Admin bob = Admin.create(client(b, certs, "bob", "bob-secret"))) {
                ExecutionException alter = assertThrows(ExecutionException.class, () -> bob.alterUserScramCredentials(
                    List.of(new UserScramCredentialUpsertion("bob", new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512,
                        8192), "other"))).all().get(30, TimeUnit.SECONDS));
                assertInstanceOf(ClusterAuthorizationException.class, alter.getCause(), alter.toString());
                ExecutionException describe = assertThrows(ExecutionException.class,
                    () -> bob.describeUserScramCredentials().all().get(30, TimeUnit.SECONDS));
                assertInstanceOf(ClusterAuthorizationException.class, describe.getCause(), describe.toString());
            }

            // What is stored: alice's ten records and nothing of bob's (read by the super user).
            Properties cp = client(b, certs, "admin", "admin-secret");
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            List<String> got = new ArrayList<>();
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
                TopicPartition tp = new TopicPartition("t", 0);
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (c.position(tp) < 10 && System.nanoTime() < deadline) {
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                        got.add(r.value());
                    }
                }
                assertEquals(10, c.endOffsets(List.of(tp)).get(tp));
            }
            assertEquals(sent, got);
        }
    }
}
