package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.security.SaslSettings;
import dev.isthmus.gateway.security.SecurityProtocol;
import dev.isthmus.gateway.security.TlsSettings;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * kcat (librdkafka 2.0.2) and kafkajs 2.2.4 over SASL_SSL with SCRAM, against a broker whose only listener is
 * SASL_SSL (the clients verify its certificate and host name against the test CA). The users are SCRAM credentials
 * made by the bootstrap admin through AlterUserScramCredentials: kcat authenticates with SCRAM-SHA-256, kafkajs with
 * SCRAM-SHA-512 (librdkafka 2.0.2 repeats its client nonce in its final SCRAM message, which the broker accepts as
 * Kafka 3.8.1-3.9 do; see {@code SaslServerExchange}). kcat produces to two partitions and reads them back; a wrong
 * password is refused. kafkajs creates its
 * topic, produces (idempotent, acks=all, gzip), consumes in a group and commits. Then kafka-clients, as the admin,
 * checks what the broker stored: every record once, in the order sent per partition, and the group's committed
 * offsets at the end of the log. A missing client skips locally and fails under CI ({@link ExternalClients}).
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(240)
class OtherClientsSaslSslTest {
    private final List<Broker> brokers = new ArrayList<>();

    @AfterEach
    void idleThenClose() throws InterruptedException {
        for (Broker b : brokers) {
            OtherClientsTest.awaitIdle(b);
            b.close();
        }
        brokers.clear();
    }

    /** A broker with one SASL_SSL listener, and {@code user} holding a {@code mechanism} credential. */
    private Broker started(Path dir, TestCertificates certs, ScramMechanism mechanism, String user, String password)
        throws Exception {
        TlsSettings tls = new TlsSettings(certs.serverP12, "PKCS12", TestCertificates.PASSWORD, null, certs.truststore,
            "PKCS12", TestCertificates.PASSWORD, TlsSettings.ClientAuth.NONE, List.of("TLSv1.2", "TLSv1.3"), List.of(),
            "DEFAULT", 0, false, false);
        Broker b = Broker.start(BrokerConfig.defaults().toBuilder().dataDir(dir.resolve("data")).shards(2)
            .memoryBytes(256L << 20).pin(false).groupInitialRebalanceDelayMs(0)
            .listeners(List.of(SecureClients.listener("SASL_SSL", SecurityProtocol.SASL_SSL))).tls(tls)
            .sasl(SaslSettings.DEFAULTS.withAdmin("admin", "admin-secret")).build());
        brokers.add(b);
        try (Admin a = Admin.create(admin(b, certs))) {
            a.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(user,
                new ScramCredentialInfo(mechanism, 8192), password))).all().get(30, TimeUnit.SECONDS);
        }
        return b;
    }

    private static Properties admin(Broker b, TestCertificates certs) {
        Properties p = SecureClients.props(b, "SASL_SSL", SecureClients.scram("SCRAM-SHA-512", "admin", "admin-secret",
            "SASL_SSL"));
        p.putAll(SecureClients.trust(certs));
        p.put("default.api.timeout.ms", "30000");
        return p;
    }

    /** Every record of {@code topic} read by the admin with kafka-clients: partition -> values in log order. */
    private static Map<Integer, List<String>> stored(Broker b, TestCertificates certs, String topic, int partitions,
                                                     int expected) {
        Properties cp = admin(b, certs);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        Map<Integer, List<String>> out = new HashMap<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < partitions; p++) {
                tps.add(new TopicPartition(topic, p));
                out.put(p, new ArrayList<>());
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            int got = 0;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (got < expected && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    assertEquals(out.get(r.partition()).size(), r.offset(), "offsets in the log are dense");
                    out.get(r.partition()).add(r.value());
                    got++;
                }
            }
        }
        return out;
    }

    // ------------------------------------------------------------------------------------ kcat

    private static List<String> kcatSecurity(TestCertificates certs, String user, String password) {
        return List.of("-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-256", "-X",
            "sasl.username=" + user, "-X", "sasl.password=" + password, "-X", "ssl.ca.location=" + certs.caPem);
    }

    private static List<String> cmd(String kcat, String broker, List<String> security, String... args) {
        List<String> c = new ArrayList<>(List.of(kcat, "-b", broker));
        c.addAll(security);
        c.addAll(List.of(args));
        return c;
    }

    @Test
    void kcatShouldProduceAndConsumeOverSaslSslWithScramSha256(@TempDir Path dir) throws Exception {
        String kcat = ExternalClients.kcat();
        ExternalClients.require(kcat != null, "kcat", "apt-get install kcat");
        TestCertificates certs = TestCertificates.create(Files.createDirectories(dir.resolve("certs")));
        Broker b = started(dir, certs, ScramMechanism.SCRAM_SHA_256, "kc-user", "kc-secret");
        try (Admin a = Admin.create(admin(b, certs))) {
            a.createTopics(List.of(new NewTopic("kc-tls", 2, (short) 1))).all().get(30, TimeUnit.SECONDS);
        }
        String broker = "127.0.0.1:" + b.port("SASL_SSL");
        List<String> security = kcatSecurity(certs, "kc-user", "kc-secret");
        Map<Integer, List<String>> sent = new HashMap<>();
        for (int p = 0; p < 2; p++) {
            List<String> lines = new ArrayList<>();
            for (int i = 0; i < 40; i++) {
                lines.add("p" + p + "-record-" + i + "-" + "z".repeat(i * 37 % 500));
            }
            sent.put(p, lines);
            ExternalClients.Result r = ExternalClients.exec(120, dir, String.join("\n", lines) + "\n", Map.of(),
                cmd(kcat, broker, security, "-P", "-t", "kc-tls", "-p", Integer.toString(p)));
            assertEquals(0, r.exit(), "kcat -P over SASL_SSL: " + r.both());
        }
        for (int p = 0; p < 2; p++) {
            ExternalClients.Result r = ExternalClients.exec(120, dir, "", Map.of(),
                cmd(kcat, broker, security, "-C", "-t", "kc-tls", "-p", Integer.toString(p), "-o", "beginning", "-e",
                    "-q"));
            assertEquals(0, r.exit(), "kcat -C over SASL_SSL: " + r.both());
            assertEquals(sent.get(p), List.of(r.out().strip().split("\n")), "what kcat read back from partition " + p);
        }
        assertEquals(sent, stored(b, certs, "kc-tls", 2, 80), "what the broker stored");
        // A wrong password: librdkafka reports the broker's SASL_AUTHENTICATION_FAILED and kcat exits non-zero.
        ExternalClients.Result wrong = ExternalClients.exec(60, dir, "", Map.of(),
            cmd(kcat, broker, kcatSecurity(certs, "kc-user", "not-the-secret"), "-L", "-m", "10"));
        assertNotEquals(0, wrong.exit(), wrong.both());
        assertTrue((wrong.out() + wrong.err()).contains("Authentication failed"), wrong.both());
    }

    // ------------------------------------------------------------------------------------ kafkajs

    @Test
    void kafkajsShouldProduceAndConsumeInAGroupOverSaslSslWithScramSha512(@TempDir Path dir) throws Exception {
        Path kafkajs = ExternalClients.kafkajs();
        ExternalClients.require(kafkajs != null, "kafkajs", ExternalClients.kafkajsInstall());
        TestCertificates certs = TestCertificates.create(Files.createDirectories(dir.resolve("certs")));
        Broker b = started(dir, certs, ScramMechanism.SCRAM_SHA_512, "js-user", "js-secret");
        int count = 100;
        ExternalClients.Result r = ExternalClients.exec(180, dir, "", Map.of("KAFKAJS_PATH", kafkajs.toString(),
                "KAFKAJS_SSL_CA", certs.caPem.toString(), "KAFKAJS_SASL_MECHANISM", "scram-sha-512",
                "KAFKAJS_SASL_USERNAME", "js-user", "KAFKAJS_SASL_PASSWORD", "js-secret"),
            List.of(ExternalClients.onPath("node"), ExternalClients.SCRIPTS.resolve("kafkajs_roundtrip.js").toString(),
                "127.0.0.1:" + b.port("SASL_SSL"), "js-tls", "js-tls-group", Integer.toString(count), "60"));
        assertEquals(0, r.exit(), "kafkajs over SASL_SSL: " + r.both());
        Map<Integer, List<String>> stored = stored(b, certs, "js-tls", 2, count);
        List<String> all = new ArrayList<>();
        stored.values().forEach(all::addAll);
        assertEquals(count, all.size(), "records stored: " + stored);
        for (int i = 0; i < count; i++) {
            assertTrue(all.contains("v" + i), "v" + i + " stored");
        }
        // Per partition in the order sent (one key's values keep their order).
        for (List<String> values : stored.values()) {
            List<Integer> order = values.stream().map(v -> Integer.parseInt(v.substring(1))).toList();
            assertEquals(order.stream().sorted().toList(), order, "log order is send order");
        }
        try (Admin a = Admin.create(admin(b, certs))) {
            Map<TopicPartition, OffsetAndMetadata> committed = a.listConsumerGroupOffsets("js-tls-group")
                .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            for (int p = 0; p < 2; p++) {
                TopicPartition tp = new TopicPartition("js-tls", p);
                long end = a.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp).get(30, TimeUnit.SECONDS)
                    .offset();
                assertEquals(stored.get(p).size(), end, "log end of " + tp);
                if (end > 0) {
                    assertEquals(end, committed.get(tp).offset(), "the group's committed offset of " + tp);
                }
            }
        }
    }
}
