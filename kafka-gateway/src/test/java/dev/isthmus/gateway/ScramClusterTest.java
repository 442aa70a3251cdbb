package dev.isthmus.gateway;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialDeletion;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

/**
 * SCRAM credentials in a three-node cluster of broker processes, each with a PLAINTEXT and a SASL_PLAINTEXT listener:
 * a credential created through node 0 (AdminClient, AlterUserScramCredentials) is stored by the controller and
 * installed on every node, each of which then authenticates the user (a kafka-clients admin and producer connecting to
 * that node first); deleted through node 2, every node refuses it again.
 */
@Timeout(300)
class ScramClusterTest {
    private static void await(BrokerProcesses cluster, String what, Callable<Boolean> c) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!c.call()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what + "; the nodes said:\n" + cluster.tail(200));
            }
            Thread.sleep(200);
        }
    }

    /** Whether node {@code port}'s SASL listener authenticates {@code user} with SCRAM-SHA-512. */
    private static boolean authenticates(int port, String user, String password) {
        Properties p = SecureClients.scram("SCRAM-SHA-512", user, password, "SASL_PLAINTEXT");
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + port);
        p.put("default.api.timeout.ms", "15000");
        p.put("request.timeout.ms", "10000");
        try (Admin admin = Admin.create(p)) {
            return admin.describeCluster().nodes().get(20, TimeUnit.SECONDS).size() == 3;
        } catch (Exception e) {
            System.out.println("authenticating " + user + " on port " + port + ": " + e);
            return false;
        }
    }

    @Test
    void shouldAuthenticateOnEveryNodeAUserCreatedThroughOne(@TempDir Path dir) throws Exception {
        try (BrokerProcesses cluster = new BrokerProcesses(3, dir, List.of("--listeners",
            "PLAINTEXT://127.0.0.1:{kafkaPort},SASL_PLAINTEXT://127.0.0.1:{sparePort}"))) {
            Properties p = new Properties();
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap());
            try (Admin admin = Admin.create(p)) {
                await(cluster, "the cluster to take topics", () -> {
                    try {
                        admin.createTopics(List.of(new NewTopic("scram", 1, (short) 3))).all().get(20, TimeUnit.SECONDS);
                        return true;
                    } catch (Exception e) {
                        System.out.println("creating the topic: " + e);
                        return e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException;
                    }
                });
            }
            for (int i = 0; i < 3; i++) {
                if (authenticates(cluster.node(i).sparePort(), "alice", "alice-secret")) {
                    throw new AssertionError("node " + i + " authenticated alice before she had a credential");
                }
            }
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + cluster.node(0).kafkaPort());
            try (Admin admin = Admin.create(p)) {
                admin.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion("alice",
                    new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), "alice-secret"))).all()
                    .get(30, TimeUnit.SECONDS);
            }
            for (int i = 0; i < 3; i++) {
                int port = cluster.node(i).sparePort();
                await(cluster, "node " + i + " to authenticate alice", () -> authenticates(port, "alice", "alice-secret"));
            }
            Properties alice = SecureClients.scram("SCRAM-SHA-512", "alice", "alice-secret", "SASL_PLAINTEXT");
            alice.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + cluster.node(1).sparePort());
            ScramCredentialsTest.produce(alice, "scram", 10);

            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + cluster.node(2).kafkaPort());
            try (Admin admin = Admin.create(p)) {
                admin.alterUserScramCredentials(List.of(new UserScramCredentialDeletion("alice",
                    ScramMechanism.SCRAM_SHA_512))).all().get(30, TimeUnit.SECONDS);
            }
            for (int i = 0; i < 3; i++) {
                int port = cluster.node(i).sparePort();
                await(cluster, "node " + i + " to refuse alice", () -> !authenticates(port, "alice", "alice-secret"));
            }
        }
    }
}
