package dev.isthmus.gateway;

import dev.isthmus.gateway.security.ListenerConfig;
import dev.isthmus.gateway.security.SecurityProtocol;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** kafka-clients round trips over a secured listener: admin, producer, consumer with a group. */
final class SecureClients {
    private SecureClients() {
    }

    static ListenerConfig listener(String name, SecurityProtocol p) {
        return new ListenerConfig(name, "127.0.0.1", 0, null, 0, p);
    }

    /** Client properties for {@code listener} of {@code b} with {@code security} added. */
    static Properties props(Broker b, String listener, Properties security) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port(listener));
        p.putAll(security);
        return p;
    }

    static Properties scram(String mechanism, String user, String password, String protocol) {
        Properties p = new Properties();
        p.put("security.protocol", protocol);
        p.put("sasl.mechanism", mechanism);
        p.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
            + user + "\" password=\"" + password + "\";");
        return p;
    }

    static Properties plain(String user, String password, String protocol) {
        Properties p = new Properties();
        p.put("security.protocol", protocol);
        p.put("sasl.mechanism", "PLAIN");
        p.put("sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required username=\""
            + user + "\" password=\"" + password + "\";");
        return p;
    }

    /** Trust of the test CA (PEM), with hostname verification on (the broker's certificate names 127.0.0.1). */
    static Properties trust(TestCertificates certs) {
        Properties p = new Properties();
        p.put("ssl.truststore.type", "PEM");
        p.put("ssl.truststore.location", certs.caPem.toString());
        return p;
    }

    /**
     * Creates {@code topic} with the admin client, produces {@code records} records (acks=all) and reads them all
     * back with a consumer in a group; asserts every value arrived in order.
     */
    static void roundTrip(Properties client, String topic, int records) throws Exception {
        try (Admin admin = Admin.create(client)) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
            assertEquals(1, admin.describeCluster().nodes().get().size());
        }
        Properties pp = new Properties();
        pp.putAll(client);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        List<String> sent = new ArrayList<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            for (int i = 0; i < records; i++) {
                String v = "value-" + i + "-" + "x".repeat(i % 300);
                sent.add(v);
                acks.add(producer.send(new ProducerRecord<>(topic, "k" + i, v)));
            }
            for (Future<RecordMetadata> f : acks) {
                f.get();
            }
        }
        Properties cp = new Properties();
        cp.putAll(client);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, "group-" + topic);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        List<String> got = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            consumer.subscribe(List.of(topic));
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (got.size() < records && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    got.add(r.value());
                }
            }
            consumer.commitSync();
        }
        assertEquals(sent, got, "every record, in order");
    }
}
