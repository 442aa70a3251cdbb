package dev.isthmus.gateway;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.DescribeAclsRequestData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.requests.DescribeAclsResponse;
import org.apache.kafka.common.requests.ProduceResponse;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * ACLs in a three-node cluster of broker processes started with {@code --authorizer} and
 * {@code allow.everyone.if.no.acl.found=true} (so ANONYMOUS may manage ACLs while none names the cluster): an ACL
 * created through node 0 is stored by the controller, installed on every node and enforced there, and still there
 * after a node restarts. Requests are sent to each node directly and parsed by kafka-clients.
 */
@Timeout(300)
class AclClusterTest {
    private static DescribeAclsRequestData anyFilter() {
        return new DescribeAclsRequestData().setResourceTypeFilter((byte) 1).setPatternTypeFilter((byte) 1)
            .setOperation((byte) 1).setPermissionType((byte) 1).setResourceNameFilter(null).setPrincipalFilter(null)
            .setHostFilter(null);
    }

    /** DescribeAcls v3 on one node: the number of bindings it answers, or -1 on an error. */
    private static int aclsOn(int port) throws Exception {
        DescribeAclsResponse r = (DescribeAclsResponse) KafkaRequests.send(port, ApiKeys.DESCRIBE_ACLS, (short) 3,
            anyFilter());
        if (r.data().errorCode() != 0) {
            return -1;
        }
        return r.data().resources().stream().mapToInt(res -> res.acls().size()).sum();
    }

    /** Produce v9 of one record to partition 0 of each topic through one node: the error code per topic. */
    private static Map<String, Short> produce(int port, String... topics) throws Exception {
        ProduceRequestData pd = new ProduceRequestData().setAcks((short) 1).setTimeoutMs(10_000);
        for (String t : topics) {
            ProduceRequestData.TopicProduceData td = new ProduceRequestData.TopicProduceData().setName(t);
            td.partitionData().add(new ProduceRequestData.PartitionProduceData().setIndex(0)
                .setRecords(MemoryRecords.withRecords(Compression.NONE, new SimpleRecord("x".getBytes()))));
            pd.topicData().add(td);
        }
        ProduceResponse pr = (ProduceResponse) KafkaRequests.send(port, ApiKeys.PRODUCE, (short) 9, pd);
        Map<String, Short> out = new HashMap<>();
        pr.data().responses().forEach(t -> out.put(t.name(), t.partitionResponses().get(0).errorCode()));
        return out;
    }

    private static void await(BrokerProcesses cluster, String what, java.util.concurrent.Callable<Boolean> c)
        throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!c.call()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what + "; the nodes said:\n"
                    + String.join("\n", cluster.output()));
            }
            Thread.sleep(100);
        }
    }

    @Test
    void shouldEnforceAnAclCreatedOnOneNodeOnEveryNode(@TempDir Path dir) throws Exception {
        try (BrokerProcesses cluster = new BrokerProcesses(3, dir, List.of("--authorizer",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer", "--allow-everyone-if-no-acl-found", "true"))) {
            Properties p = new Properties();
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, cluster.bootstrap());
            try (Admin admin = Admin.create(p)) {
                await(cluster, "the cluster to take topics", () -> {
                    try {
                        admin.createTopics(List.of(new NewTopic("open", 1, (short) 3), new NewTopic("closed", 1, (short) 3)))
                            .all().get(20, TimeUnit.SECONDS);
                        return true;
                    } catch (Exception e) {
                        System.out.println("creating the topics: " + e);
                        return e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException;
                    }
                });
            }
            int port0 = cluster.node(0).kafkaPort();
            for (int i = 0; i < 3; i++) {
                assertEquals(0, aclsOn(cluster.node(i).kafkaPort()), "node " + i + " starts with no ACL");
            }
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + port0);
            try (Admin admin = Admin.create(p)) {
                admin.createAcls(List.of(new AclBinding(new ResourcePattern(ResourceType.TOPIC, "closed",
                    PatternType.LITERAL), new AccessControlEntry("User:ANONYMOUS", "*", AclOperation.WRITE,
                    AclPermissionType.DENY)))).all().get(30, TimeUnit.SECONDS);
            }
            for (int i = 0; i < 3; i++) {
                int port = cluster.node(i).kafkaPort();
                await(cluster, "node " + i + " to hold the ACL", () -> aclsOn(port) == 1);
                // The leader of each partition may be on any node; the DENY is answered by whichever node is asked,
                // before any leadership question.
                assertEquals((short) 29, produce(port, "closed").get("closed"), "node " + i);
            }
            cluster.terminate(2);
            cluster.start(2);
            int port2 = cluster.node(2).kafkaPort();
            await(cluster, "node 2 to serve again with the ACL", () -> {
                try {
                    return aclsOn(port2) == 1;
                } catch (java.io.IOException e) {
                    return false;
                }
            });
            assertEquals((short) 29, produce(port2, "closed").get("closed"), "after a restart");
        }
    }
}
