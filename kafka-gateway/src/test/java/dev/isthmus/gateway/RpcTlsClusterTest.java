package dev.isthmus.gateway;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Callable;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Node-to-node RPC over mutual TLS in a three-node cluster of broker processes ({@code rpc.security.protocol=SSL}
 * from a {@code --config} file; each node its own certificate signed by the test CA, nodes 0 and 1 as PKCS12 stores,
 * node 2 as PEM files): a topic with replication factor 3 takes an idempotent acks=all producer's records (each
 * acknowledged only once the followers hold it, which they learn over the TLS RPC), a consumer group reads every one
 * exactly once, and the RPC port speaks only TLS: a plaintext connection gets a TLS alert and is closed, a TLS client without
 * a certificate is refused, one with a node certificate completes its handshake.
 */
@Timeout(300)
class RpcTlsClusterTest {
    private static final String TOPIC = "over-tls";
    private static final int RECORDS = 600;

    private static void await(BrokerProcesses cluster, String what, Callable<Boolean> c) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(150);
        while (!c.call()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what + "; the nodes said:\n" + cluster.tail(200));
            }
            Thread.sleep(200);
        }
    }

    @Test
    void shouldReplicateOverMutualTlsBetweenNodesAndRefusePlaintextOnTheRpcPort(@TempDir Path dir) throws Exception {
        TestCertificates certs = TestCertificates.create(Files.createDirectories(dir.resolve("certs")));
        List<Path> nodeStores = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            nodeStores.add(certs.signed("node-" + i, "CN=node-" + i + ",O=isthmus", "SAN=dns:localhost,ip:127.0.0.1"));
        }
        Path node2Pem = certs.dir.resolve("node-2.pem");
        certs.toPem(nodeStores.get(2), node2Pem);
        Path config = dir.resolve("rpc-tls.properties");
        Files.writeString(config, String.join("\n",
            "# TLS between nodes; the Kafka listener stays PLAINTEXT",
            "rpc.security.protocol = SSL",
            "rpc.ssl.keystore.password = " + TestCertificates.PASSWORD,
            "rpc.ssl.truststore.location = " + certs.truststore,
            "rpc.ssl.truststore.password = " + TestCertificates.PASSWORD,
            ""));
        try (BrokerProcesses cluster = new BrokerProcesses(3, dir, List.of("--config", config.toString()), id -> id < 2
            ? List.of("--rpc.ssl.keystore.location", nodeStores.get(id).toString())
            : List.of("--rpc.ssl.keystore.location", node2Pem.toString(), "--rpc.ssl.truststore.location",
                certs.caPem.toString()))) {
            Properties admin = new Properties();
            admin.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap());
            try (Admin a = Admin.create(admin)) {
                await(cluster, "the cluster to create a topic with 3 replicas", () -> {
                    try {
                        a.createTopics(List.of(new NewTopic(TOPIC, 3, (short) 3))).all().get(20, TimeUnit.SECONDS);
                        return true;
                    } catch (Exception e) {
                        return e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException;
                    }
                });
                await(cluster, "every partition to have 3 in-sync replicas", () -> {
                    TopicDescription d = a.describeTopics(List.of(TOPIC)).allTopicNames().get(20, TimeUnit.SECONDS)
                        .get(TOPIC);
                    return d.partitions().stream().allMatch(p -> p.leader() != null && p.isr().size() == 3);
                });
            }
            for (String line : cluster.output()) {
                assertTrue(!line.contains("listening for RPC on"), "a node listens for RPC without TLS: " + line);
            }
            assertTrue(cluster.output().stream().filter(l -> l.contains("listening for RPC over TLS")).count() == 3,
                "every node says its RPC port speaks TLS:\n" + cluster.tail(100));

            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap());
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            Map<String, Integer> sent = new HashMap<>();
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                List<Future<RecordMetadata>> acks = new ArrayList<>();
                for (int i = 0; i < RECORDS; i++) {
                    String v = "value-" + i + "-" + "x".repeat(i % 2000);
                    sent.put(v, 0);
                    acks.add(producer.send(new ProducerRecord<>(TOPIC, "k" + i, v)));
                }
                for (Future<RecordMetadata> f : acks) {
                    f.get(120, TimeUnit.SECONDS);
                }
            }
            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap());
            cp.put(ConsumerConfig.GROUP_ID_CONFIG, "tls-readers");
            cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            int got = 0;
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
                consumer.subscribe(List.of(TOPIC));
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
                while (got < RECORDS && System.nanoTime() < deadline) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(300))) {
                        Integer seen = sent.get(r.value());
                        assertTrue(seen != null, "a record nobody sent: " + r.value());
                        assertEquals(0, seen, "read twice: " + r.value());
                        sent.put(r.value(), 1);
                        got++;
                    }
                }
            }
            assertEquals(RECORDS, got, "every acknowledged record read once");

            int rpcPort = cluster.node(0).rpcPort();
            // A plaintext peer: its bytes are not a TLS record, so the node answers a TLS alert at most, and closes.
            try (Socket s = new Socket("127.0.0.1", rpcPort)) {
                s.setSoTimeout(30_000);
                byte[] helloLike = new byte[64];
                java.nio.ByteBuffer.wrap(helloLike).putInt(60).putInt(0x15F1A5E7);
                s.getOutputStream().write(helloLike);
                byte[] answer = s.getInputStream().readAllBytes(); // until the node closes
                assertTrue(answer.length == 0 || answer[0] == 21, "at most a TLS alert record (type 21): "
                    + java.util.Arrays.toString(answer));
            } catch (java.net.SocketException reset) {
                // closed with a reset: refused as well
            }
            // A TLS client that trusts the CA but shows no certificate is refused (mutual TLS).
            try (SSLSocket s = (SSLSocket) context(certs, null).getSocketFactory().createSocket("127.0.0.1", rpcPort)) {
                s.setSoTimeout(30_000);
                assertThrows(IOException.class, () -> {
                    s.startHandshake();
                    s.getOutputStream().write(new byte[] {0, 0, 0, 0}); // TLS 1.3: the refusal follows the Finished
                    s.getOutputStream().flush();
                    if (s.getInputStream().read() == -1) {
                        throw new IOException("closed by the node"); // refused without an alert
                    }
                    throw new AssertionError("the RPC port answered a client without a certificate");
                });
            }
            // With a certificate signed by the CA the handshake completes.
            try (SSLSocket s = (SSLSocket) context(certs, nodeStores.get(1)).getSocketFactory()
                .createSocket("127.0.0.1", rpcPort)) {
                s.setSoTimeout(30_000);
                s.startHandshake();
                assertEquals("TLSv1.3", s.getSession().getProtocol());
                assertEquals("CN=node-0,O=isthmus", s.getSession().getPeerPrincipal().getName());
            }
        }
    }

    /** A client context trusting the test CA, presenting {@code keyStore}'s key when not null. */
    private static SSLContext context(TestCertificates certs, Path keyStore) throws Exception {
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(load(certs.truststore));
        KeyManagerFactory kmf = null;
        if (keyStore != null) {
            kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(load(keyStore), TestCertificates.PASSWORD.toCharArray());
        }
        SSLContext c = SSLContext.getInstance("TLS");
        c.init(kmf == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        return c;
    }

    private static KeyStore load(Path p) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(p)) {
            ks.load(in, TestCertificates.PASSWORD.toCharArray());
        }
        return ks;
    }
}
