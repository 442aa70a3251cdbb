package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.auth.AuthorizerConfig;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.GroupAuthorizationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
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
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The authorization matrix with kafka-clients against one broker: for each API, the operation Kafka checks on the
 * resource Kafka checks, first with an ACL that names the resource for someone else (ANONYMOUS is refused with the
 * right exception, i.e. the right error code), then with exactly that operation granted to ANONYMOUS (the call is
 * no longer refused for authorization). The broker runs with {@code allow.everyone.if.no.acl.found=true}, so every
 * resource a case does not name is open; ANONYMOUS holds ALTER on the cluster to manage the ACLs.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(300)
class AclMatrixTest {
    private static final String ANON = "User:ANONYMOUS";

    interface Action {
        void run() throws Exception;
    }

    private record Case(String api, ResourceType type, String name, AclOperation op,
                        Class<? extends AuthorizationException> denied, Action action) {
    }

    private static AclBinding acl(ResourceType type, String name, String principal, AclOperation op,
                                  AclPermissionType permission) {
        return new AclBinding(new ResourcePattern(type, name, PatternType.LITERAL),
            new AccessControlEntry(principal, "*", op, permission));
    }

    /** The authorization failure {@code a} ended with, or null when it succeeded or failed for another reason. */
    private static Throwable authFailure(Action a) {
        try {
            a.run();
            return null;
        } catch (Throwable t) {
            for (Throwable c = t; c != null; c = c.getCause()) {
                if (c instanceof AuthorizationException) {
                    return c;
                }
            }
            System.out.println("  (not an authorization failure: " + t + ")");
            return null;
        }
    }

    @Test
    void shouldCheckExactlyTheOperationKafkaChecksForEachApi(@TempDir Path dir) throws Exception {
        BrokerConfig config = BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2)
            .memoryBytes(256L << 20).pin(false).authorizer(new AuthorizerConfig(true, Set.of(), true)).build();
        try (Broker b = Broker.start(config)) {
            Properties p = new Properties();
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
            p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "5000");
            try (Admin admin = Admin.create(p)) {
                admin.createTopics(List.of(new NewTopic("m-describe", 1, (short) 1), new NewTopic("m-delete", 1, (short) 1),
                    new NewTopic("m-alter", 1, (short) 1), new NewTopic("m-records", 1, (short) 1),
                    new NewTopic("m-configs", 1, (short) 1), new NewTopic("m-write", 1, (short) 1),
                    new NewTopic("m-read", 1, (short) 1))).all().get();
                try (KafkaProducer<String, String> pr = new KafkaProducer<>(p)) {
                    pr.send(new ProducerRecord<>("m-records", "k", "v")).get();
                    pr.send(new ProducerRecord<>("m-read", "k", "v")).get();
                }
                TopicPartition read0 = new TopicPartition("m-read", 0);
                // From here the cluster is named: ANONYMOUS keeps ALTER on it (to manage ACLs, and the DESCRIBE it
                // implies) and nothing else, so the topic-level fallbacks of cluster checks are what is tested.
                admin.createAcls(List.of(acl(ResourceType.CLUSTER, "kafka-cluster", ANON, AclOperation.ALTER,
                    AclPermissionType.ALLOW))).all().get();
                List<Case> cases = List.of(
                    new Case("Metadata", ResourceType.TOPIC, "m-describe", AclOperation.DESCRIBE,
                        TopicAuthorizationException.class,
                        () -> admin.describeTopics(List.of("m-describe")).allTopicNames().get()),
                    new Case("ListOffsets", ResourceType.TOPIC, "m-describe", AclOperation.DESCRIBE,
                        TopicAuthorizationException.class, () -> admin.listOffsets(Map.of(
                            new TopicPartition("m-describe", 0), OffsetSpec.latest())).all().get()),
                    new Case("CreateTopics", ResourceType.TOPIC, "m-created", AclOperation.CREATE,
                        TopicAuthorizationException.class,
                        () -> admin.createTopics(List.of(new NewTopic("m-created", 1, (short) 1))).all().get()),
                    new Case("DeleteTopics", ResourceType.TOPIC, "m-delete", AclOperation.DELETE,
                        TopicAuthorizationException.class, () -> admin.deleteTopics(List.of("m-delete")).all().get()),
                    new Case("CreatePartitions", ResourceType.TOPIC, "m-alter", AclOperation.ALTER,
                        TopicAuthorizationException.class,
                        () -> admin.createPartitions(Map.of("m-alter", NewPartitions.increaseTo(2))).all().get()),
                    new Case("DeleteRecords", ResourceType.TOPIC, "m-records", AclOperation.DELETE,
                        TopicAuthorizationException.class, () -> admin.deleteRecords(Map.of(
                            new TopicPartition("m-records", 0), RecordsToDelete.beforeOffset(1))).all().get()),
                    new Case("DescribeConfigs", ResourceType.TOPIC, "m-configs", AclOperation.DESCRIBE_CONFIGS,
                        TopicAuthorizationException.class, () -> admin.describeConfigs(List.of(
                            new ConfigResource(ConfigResource.Type.TOPIC, "m-configs"))).all().get()),
                    new Case("IncrementalAlterConfigs", ResourceType.TOPIC, "m-configs", AclOperation.ALTER_CONFIGS,
                        TopicAuthorizationException.class, () -> admin.incrementalAlterConfigs(Map.of(
                            new ConfigResource(ConfigResource.Type.TOPIC, "m-configs"), List.of(new AlterConfigOp(
                                new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET)))).all().get()),
                    new Case("DescribeProducers", ResourceType.TOPIC, "m-read", AclOperation.READ,
                        TopicAuthorizationException.class,
                        () -> admin.describeProducers(List.of(read0)).all().get()),
                    new Case("Produce", ResourceType.TOPIC, "m-write", AclOperation.WRITE,
                        TopicAuthorizationException.class, () -> {
                            try (KafkaProducer<String, String> pr = new KafkaProducer<>(p)) {
                                pr.send(new ProducerRecord<>("m-write", "k", "v")).get(10, TimeUnit.SECONDS);
                            }
                        }),
                    new Case("Fetch", ResourceType.TOPIC, "m-read", AclOperation.READ,
                        TopicAuthorizationException.class, () -> {
                            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
                                c.assign(List.of(read0));
                                c.seekToBeginning(List.of(read0));
                                int got = 0;
                                for (int i = 0; i < 100 && got == 0; i++) {
                                    got += c.poll(Duration.ofMillis(100)).count();
                                }
                                assertEquals(1, got);
                            }
                        }),
                    new Case("OffsetCommit", ResourceType.GROUP, "m-group", AclOperation.READ,
                        GroupAuthorizationException.class, () -> admin.alterConsumerGroupOffsets("m-group",
                            Map.of(read0, new OffsetAndMetadata(1))).all().get()),
                    new Case("OffsetFetch", ResourceType.GROUP, "m-group", AclOperation.DESCRIBE,
                        GroupAuthorizationException.class,
                        () -> admin.listConsumerGroupOffsets("m-group").partitionsToOffsetAndMetadata().get()),
                    new Case("DescribeGroups", ResourceType.GROUP, "m-group", AclOperation.DESCRIBE,
                        GroupAuthorizationException.class,
                        () -> admin.describeConsumerGroups(List.of("m-group")).all().get()),
                    new Case("JoinGroup", ResourceType.GROUP, "m-join", AclOperation.READ,
                        GroupAuthorizationException.class, () -> {
                            Properties cp = new Properties();
                            cp.putAll(p);
                            cp.put(ConsumerConfig.GROUP_ID_CONFIG, "m-join");
                            cp.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
                            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
                                c.subscribe(List.of("m-read"));
                                for (int i = 0; i < 100 && c.assignment().isEmpty(); i++) {
                                    c.poll(Duration.ofMillis(100));
                                }
                                assertEquals(Set.of(read0), c.assignment());
                            }
                        }),
                    new Case("DeleteGroups", ResourceType.GROUP, "m-group", AclOperation.DELETE,
                        GroupAuthorizationException.class,
                        () -> admin.deleteConsumerGroups(List.of("m-group")).all().get()),
                    new Case("DescribeConfigs (broker)", ResourceType.CLUSTER, "kafka-cluster",
                        AclOperation.DESCRIBE_CONFIGS, ClusterAuthorizationException.class,
                        () -> admin.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.BROKER, "0"))).all().get()),
                    new Case("DescribeLogDirs", ResourceType.CLUSTER, "kafka-cluster", AclOperation.DESCRIBE,
                        ClusterAuthorizationException.class,
                        () -> admin.describeLogDirs(List.of(0)).allDescriptions().get()),
                    new Case("DescribeClientQuotas", ResourceType.CLUSTER, "kafka-cluster", AclOperation.DESCRIBE_CONFIGS,
                        ClusterAuthorizationException.class, () -> admin.describeClientQuotas(
                            org.apache.kafka.common.quota.ClientQuotaFilter.all()).entities().get()),
                    new Case("AlterClientQuotas", ResourceType.CLUSTER, "kafka-cluster", AclOperation.ALTER_CONFIGS,
                        ClusterAuthorizationException.class, () -> admin.alterClientQuotas(List.of(
                            new org.apache.kafka.common.quota.ClientQuotaAlteration(
                                new org.apache.kafka.common.quota.ClientQuotaEntity(Map.of("user", "m-user")),
                                List.of(new org.apache.kafka.common.quota.ClientQuotaAlteration.Op("producer_byte_rate",
                                    1e6))))).all().get()));
                List<String> report = new ArrayList<>();
                for (Case c : cases) {
                    System.out.println(c.api + ": " + c.op + " on " + c.type + " " + c.name);
                    boolean cluster = c.type == ResourceType.CLUSTER;
                    // Refused: the resource is named (for someone else), or for the cluster, the operation denied
                    // to ANONYMOUS while it keeps ALTER to manage ACLs.
                    List<AclBinding> deny = cluster ? List.of(acl(c.type, c.name, ANON, c.op, AclPermissionType.DENY))
                        : List.of(acl(c.type, c.name, "User:someone-else", c.op, AclPermissionType.ALLOW));
                    admin.createAcls(deny).all().get();
                    Throwable refused = authFailure(c.action);
                    report.add(c.api + " without " + c.op + ": " + (refused == null ? "not refused"
                        : refused.getClass().getSimpleName()));
                    assertTrue(c.denied.isInstance(refused), c.api + " without " + c.op + " on " + c.name + ": " + refused);
                    admin.deleteAcls(List.of(new AclBindingFilter(new ResourcePatternFilter(c.type, c.name,
                        PatternType.LITERAL), new AccessControlEntryFilter(ANON, null, c.op, AclPermissionType.DENY))))
                        .all().get();
                    admin.createAcls(List.of(acl(c.type, c.name, ANON, c.op, AclPermissionType.ALLOW))).all().get();
                    Throwable allowed = authFailure(c.action);
                    report.add(c.api + " with " + c.op + ": " + (allowed == null ? "allowed" : allowed.toString()));
                    assertEquals(null, allowed, c.api + " with exactly " + c.op + " on " + c.name);
                    admin.deleteAcls(List.of(new AclBindingFilter(new ResourcePatternFilter(c.type, c.name,
                        PatternType.LITERAL), cluster ? new AccessControlEntryFilter(null, null, c.op,
                        AclPermissionType.ANY) : AccessControlEntryFilter.ANY))).all().get();
                }
                report.forEach(System.out::println);
                // Last, as it locks ANONYMOUS out of the ACL APIs: ALTER on the cluster denied.
                admin.createAcls(List.of(acl(ResourceType.CLUSTER, "kafka-cluster", ANON, AclOperation.ALTER,
                    AclPermissionType.DENY))).all().get();
                assertTrue(authFailure(() -> admin.createAcls(List.of(acl(ResourceType.TOPIC, "x", ANON,
                    AclOperation.ALL, AclPermissionType.ALLOW))).all().get()) instanceof ClusterAuthorizationException);
                assertTrue(authFailure(() -> admin.electLeaders(org.apache.kafka.common.ElectionType.PREFERRED,
                    Set.of(read0)).all().get()) instanceof ClusterAuthorizationException);
            }
        }
    }
}
