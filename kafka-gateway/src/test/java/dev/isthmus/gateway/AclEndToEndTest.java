package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.KafkaTool.Run;
import dev.isthmus.gateway.auth.AuthorizerConfig;
import dev.isthmus.gateway.cluster.AclBinding;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.CreateAclsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.GroupAuthorizationException;
import org.apache.kafka.common.errors.InvalidRequestException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.message.CreateAclsRequestData;
import org.apache.kafka.common.message.DescribeAclsRequestData;
import org.apache.kafka.common.message.MetadataRequestData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.requests.CreateAclsResponse;
import org.apache.kafka.common.requests.DescribeAclsResponse;
import org.apache.kafka.common.requests.MetadataResponse;
import org.apache.kafka.common.requests.ProduceResponse;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.tools.AclCommand;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ACLs end to end against a live broker with {@code authorizer.class.name} set: kafka-clients' Admin
 * createAcls/describeAcls/deleteAcls and Kafka 4.3's {@code kafka-acls.sh} ({@link AclCommand}, run in-process)
 * manage them; producers, consumers and raw requests (parsed by kafka-clients) show them enforced with Kafka's error
 * codes on the wire. Every connection is {@code User:ANONYMOUS} (no authentication yet), so the principals under
 * test are ANONYMOUS as a super user (to manage ACLs) and ANONYMOUS with ACLs of its own; the decision for other
 * principals is {@code AuthorizerTest}'s.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(240)
class AclEndToEndTest {
    private static final String ANON = "User:ANONYMOUS";

    private static BrokerConfig config(Path dir, Set<String> superUsers) {
        return BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2).memoryBytes(256L << 20).pin(false)
            .authorizer(new AuthorizerConfig(true, superUsers, false)).build();
    }

    private static Properties props(Broker b) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "10000");
        return p;
    }

    private static Throwable cause(org.junit.jupiter.api.function.Executable e) {
        return assertThrows(ExecutionException.class, e).getCause();
    }

    /** The ACLs every shard of {@code b} holds (its installed copy of the controller state). */
    private static SortedSet<AclBinding> stored(Broker b) throws Exception {
        List<SortedSet<AclBinding>> perShard = new ArrayList<>();
        for (int i = 0; i < b.group().size(); i++) {
            int id = i;
            perShard.add(b.group().call(i, s -> new TreeSet<>(b.state(id).cluster.acls())).get(10, TimeUnit.SECONDS));
        }
        for (SortedSet<AclBinding> s : perShard) {
            assertEquals(perShard.get(0), s, "every shard holds the same ACLs");
        }
        return perShard.get(0);
    }

    private static boolean exists(Broker b, String topic) throws Exception {
        return b.group().call(0, s -> b.state(0).topics.get(topic) != null).get(10, TimeUnit.SECONDS);
    }

    private static org.apache.kafka.common.acl.AclBinding binding(ResourceType type, String name, PatternType pattern,
                                                                   String principal, AclOperation op,
                                                                   AclPermissionType permission) {
        return new org.apache.kafka.common.acl.AclBinding(new ResourcePattern(type, name, pattern),
            new AccessControlEntry(principal, "*", op, permission));
    }

    private static AclBinding stored(byte type, String name, byte pattern, String principal, byte op, byte permission) {
        return new AclBinding(type, name, pattern, principal, "*", op, permission);
    }

    // ------------------------------------------------------------------ Admin: create, describe, delete

    @Test
    void shouldCreateDescribeAndDeleteAclsWithTheAdminClient(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, Set.of(ANON))); Admin admin = Admin.create(props(b))) {
            org.apache.kafka.common.acl.AclBinding readOrders = binding(ResourceType.TOPIC, "orders", PatternType.LITERAL,
                "User:alice", AclOperation.READ, AclPermissionType.ALLOW);
            org.apache.kafka.common.acl.AclBinding writePrefix = binding(ResourceType.TOPIC, "ord", PatternType.PREFIXED,
                "User:bob", AclOperation.WRITE, AclPermissionType.ALLOW);
            org.apache.kafka.common.acl.AclBinding denyAll = binding(ResourceType.TOPIC, "*", PatternType.LITERAL,
                "User:*", AclOperation.DELETE, AclPermissionType.DENY);
            org.apache.kafka.common.acl.AclBinding group = binding(ResourceType.GROUP, "g", PatternType.LITERAL,
                "User:alice", AclOperation.READ, AclPermissionType.ALLOW);
            org.apache.kafka.common.acl.AclBinding badCluster = binding(ResourceType.CLUSTER, "my-cluster",
                PatternType.LITERAL, "User:alice", AclOperation.ALTER, AclPermissionType.ALLOW);
            CreateAclsResult created = admin.createAcls(List.of(readOrders, writePrefix, denyAll, group, badCluster));
            created.values().get(readOrders).get();
            created.values().get(writePrefix).get();
            created.values().get(denyAll).get();
            created.values().get(group).get();
            Throwable bad = cause(() -> created.values().get(badCluster).get());
            assertInstanceOf(InvalidRequestException.class, bad);
            assertTrue(bad.getMessage().contains("kafka-cluster"), bad.getMessage());

            assertEquals(new TreeSet<>(List.of(
                stored(AclBinding.TOPIC, "orders", AclBinding.LITERAL, "User:alice", AclBinding.READ, AclBinding.ALLOW),
                stored(AclBinding.TOPIC, "ord", AclBinding.PREFIXED, "User:bob", AclBinding.WRITE, AclBinding.ALLOW),
                stored(AclBinding.TOPIC, "*", AclBinding.LITERAL, "User:*", AclBinding.DELETE, AclBinding.DENY),
                stored(AclBinding.GROUP, "g", AclBinding.LITERAL, "User:alice", AclBinding.READ, AclBinding.ALLOW))),
                stored(b), "what the controller stored, on every shard");

            assertEquals(Set.of(readOrders, writePrefix, denyAll, group),
                Set.copyOf(admin.describeAcls(AclBindingFilter.ANY).values().get()));
            // MATCH: everything that applies to the topic 'orders' (literal, wildcard, prefix 'ord').
            AclBindingFilter match = new AclBindingFilter(new ResourcePatternFilter(ResourceType.TOPIC, "orders",
                PatternType.MATCH), AccessControlEntryFilter.ANY);
            assertEquals(Set.of(readOrders, writePrefix, denyAll), Set.copyOf(admin.describeAcls(match).values().get()));
            AclBindingFilter literal = new AclBindingFilter(new ResourcePatternFilter(ResourceType.TOPIC, "orders",
                PatternType.LITERAL), AccessControlEntryFilter.ANY);
            assertEquals(Set.of(readOrders), Set.copyOf(admin.describeAcls(literal).values().get()));
            AclBindingFilter alice = new AclBindingFilter(ResourcePatternFilter.ANY, new AccessControlEntryFilter(
                "User:alice", null, AclOperation.ANY, AclPermissionType.ANY));
            assertEquals(Set.of(readOrders, group), Set.copyOf(admin.describeAcls(alice).values().get()));

            Collection<org.apache.kafka.common.acl.AclBinding> deleted = admin.deleteAcls(List.of(alice)).all().get();
            assertEquals(Set.of(readOrders, group), Set.copyOf(deleted), "DeleteAcls answers the bindings it removed");
            assertEquals(Set.of(writePrefix, denyAll), Set.copyOf(admin.describeAcls(AclBindingFilter.ANY).values().get()));
            assertEquals(2, stored(b).size());
            assertTrue(admin.deleteAcls(List.of(alice)).all().get().isEmpty(), "nothing left to match");
        }
        // The ACLs are controller state: they survive a restart.
        try (Broker b = Broker.start(config(dir, Set.of(ANON))); Admin admin = Admin.create(props(b))) {
            assertEquals(2, admin.describeAcls(AclBindingFilter.ANY).values().get().size());
            assertEquals(2, stored(b).size());
        }
    }

    // ------------------------------------------------------------------ enforcement

    /** Sets up topics and ACLs for ANONYMOUS as a super user, then restarts without super users. */
    private static void prepare(Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, Set.of(ANON))); Admin admin = Admin.create(props(b))) {
            admin.createTopics(List.of(new NewTopic("allowed", 1, (short) 1), new NewTopic("secret", 1, (short) 1),
                new NewTopic("pub-ok", 1, (short) 1), new NewTopic("pub-denied", 1, (short) 1))).all().get();
            admin.createAcls(List.of(
                binding(ResourceType.TOPIC, "allowed", PatternType.LITERAL, ANON, AclOperation.WRITE, AclPermissionType.ALLOW),
                binding(ResourceType.TOPIC, "pub-", PatternType.PREFIXED, ANON, AclOperation.ALL, AclPermissionType.ALLOW),
                binding(ResourceType.TOPIC, "pub-denied", PatternType.LITERAL, ANON, AclOperation.READ,
                    AclPermissionType.DENY),
                binding(ResourceType.GROUP, "g-", PatternType.PREFIXED, "User:*", AclOperation.READ,
                    AclPermissionType.ALLOW))).all().get();
            admin.alterConsumerGroupOffsets("hidden-group", Map.of(new TopicPartition("secret", 0),
                new OffsetAndMetadata(0))).all().get();
        }
    }

    @Test
    void shouldEnforceAclsOnProduceConsumeGroupsAndMetadata(@TempDir Path dir) throws Exception {
        prepare(dir);
        try (Broker b = Broker.start(config(dir, Set.of())); Admin admin = Admin.create(props(b))) {
            assertEquals(4, stored(b).size(), "the ACLs came back from the controller's log");
            // Metadata hides what ANONYMOUS may not describe; named topics it may not describe are refused whether
            // or not they exist.
            assertEquals(Set.of("allowed", "pub-ok", "pub-denied"), admin.listTopics().names().get());
            assertInstanceOf(TopicAuthorizationException.class,
                cause(() -> admin.describeTopics(List.of("secret")).allTopicNames().get()));
            assertInstanceOf(TopicAuthorizationException.class,
                cause(() -> admin.describeTopics(List.of("no-such-topic")).allTopicNames().get()));
            // Managing ACLs needs ALTER / DESCRIBE on the cluster.
            assertInstanceOf(ClusterAuthorizationException.class,
                cause(() -> admin.describeAcls(AclBindingFilter.ANY).values().get()));
            assertInstanceOf(ClusterAuthorizationException.class, cause(() -> admin.createAcls(List.of(binding(
                ResourceType.TOPIC, "secret", PatternType.LITERAL, ANON, AclOperation.ALL, AclPermissionType.ALLOW)))
                .all().get()));
            assertInstanceOf(TopicAuthorizationException.class, cause(() -> admin.createTopics(List.of(
                new NewTopic("new-topic", 1, (short) 1))).all().get()));
            assertFalse(exists(b, "new-topic"), "not created");

            Properties pp = props(b);
            try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
                // Idempotent by default: WRITE on some topic is enough for InitProducerId (KIP-679).
                p.send(new ProducerRecord<>("allowed", "k", "v")).get();
                p.send(new ProducerRecord<>("pub-ok", "k", "v1")).get();
                p.send(new ProducerRecord<>("pub-ok", "k", "v2")).get();
                assertInstanceOf(TopicAuthorizationException.class,
                    cause(() -> p.send(new ProducerRecord<>("secret", "k", "v")).get()));
            }

            Properties cp = props(b);
            cp.put(ConsumerConfig.GROUP_ID_CONFIG, "g-1");
            cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
                c.subscribe(List.of("pub-ok"));
                List<String> seen = new ArrayList<>();
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (seen.size() < 2 && System.nanoTime() < deadline) {
                    ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(200));
                    rs.forEach(r -> seen.add(r.value()));
                }
                assertEquals(List.of("v1", "v2"), seen);
                c.commitSync();
                assertEquals(2, c.committed(Set.of(new TopicPartition("pub-ok", 0))).get(new TopicPartition("pub-ok", 0))
                    .offset());
            }
            // READ on pub-denied is denied although ALL on pub-* is allowed: DENY wins.
            cp.put(ConsumerConfig.GROUP_ID_CONFIG, "g-2");
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
                c.assign(List.of(new TopicPartition("pub-denied", 0)));
                assertThrows(TopicAuthorizationException.class, () -> {
                    for (int i = 0; i < 100; i++) {
                        c.poll(Duration.ofMillis(100));
                    }
                });
            }
            // ListGroups without DESCRIBE on the cluster lists only the groups ANONYMOUS may describe.
            Set<String> groups = new java.util.HashSet<>();
            admin.listGroups().all().get().forEach(g -> groups.add(g.groupId()));
            assertTrue(groups.contains("g-1") && !groups.contains("hidden-group"), groups.toString());
            // OffsetCommit needs READ on the topic too: 'allowed' has WRITE only.
            assertInstanceOf(TopicAuthorizationException.class, cause(() -> admin.alterConsumerGroupOffsets("g-3",
                Map.of(new TopicPartition("allowed", 0), new OffsetAndMetadata(0))).all().get()));
            // A group without an ACL.
            cp.put(ConsumerConfig.GROUP_ID_CONFIG, "other");
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
                c.assign(List.of(new TopicPartition("pub-ok", 0)));
                assertThrows(GroupAuthorizationException.class, () -> c.commitSync(Map.of(new TopicPartition("pub-ok", 0),
                    new OffsetAndMetadata(1))));
            }
        }
    }

    @Test
    void shouldAnswerKafkasErrorCodesOnTheWire(@TempDir Path dir) throws Exception {
        prepare(dir);
        try (Broker b = Broker.start(config(dir, Set.of()))) {
            int port = b.port();
            // Metadata v12: named topics without DESCRIBE are TOPIC_AUTHORIZATION_FAILED, existing or not.
            MetadataRequestData md = new MetadataRequestData().setAllowAutoTopicCreation(true)
                .setIncludeTopicAuthorizedOperations(true);
            for (String t : List.of("secret", "missing", "allowed")) {
                md.topics().add(new MetadataRequestData.MetadataRequestTopic().setName(t));
            }
            MetadataResponse mr = (MetadataResponse) KafkaRequests.send(port, ApiKeys.METADATA, (short) 12, md);
            Map<String, Short> codes = new HashMap<>();
            Map<String, Integer> ops = new HashMap<>();
            mr.data().topics().forEach(t -> {
                codes.put(t.name(), t.errorCode());
                ops.put(t.name(), t.topicAuthorizedOperations());
            });
            assertEquals(Map.of("secret", (short) 29, "missing", (short) 29, "allowed", (short) 0), codes);
            assertEquals((1 << AclBinding.WRITE) | (1 << AclBinding.DESCRIBE), ops.get("allowed"),
                "authorized operations: WRITE and the DESCRIBE it implies");
            assertFalse(exists(b, "missing"), "not auto-created without CREATE");

            MetadataResponse all = (MetadataResponse) KafkaRequests.send(port, ApiKeys.METADATA, (short) 12,
                new MetadataRequestData().setTopics(null));
            Set<String> listed = new java.util.HashSet<>();
            all.data().topics().forEach(t -> listed.add(t.name()));
            assertEquals(Set.of("allowed", "pub-ok", "pub-denied"), listed);

            // Produce v9 to an allowed and a refused topic: per-partition errors, the allowed one appended.
            ProduceRequestData pd = new ProduceRequestData().setAcks((short) 1).setTimeoutMs(10_000);
            for (String t : List.of("secret", "allowed")) {
                ProduceRequestData.TopicProduceData td = new ProduceRequestData.TopicProduceData().setName(t);
                td.partitionData().add(new ProduceRequestData.PartitionProduceData().setIndex(0)
                    .setRecords(MemoryRecords.withRecords(Compression.NONE, new SimpleRecord("x".getBytes()))));
                pd.topicData().add(td);
            }
            ProduceResponse pr = (ProduceResponse) KafkaRequests.send(port, ApiKeys.PRODUCE, (short) 9, pd);
            Map<String, Short> produced = new HashMap<>();
            pr.data().responses().forEach(t -> produced.put(t.name(), t.partitionResponses().get(0).errorCode()));
            assertEquals(Map.of("secret", (short) 29, "allowed", (short) 0), produced);

            // FindCoordinator v4: DESCRIBE on each group or transactional id.
            org.apache.kafka.common.requests.FindCoordinatorResponse fg = (org.apache.kafka.common.requests.FindCoordinatorResponse)
                KafkaRequests.send(port, ApiKeys.FIND_COORDINATOR, (short) 4,
                    new org.apache.kafka.common.message.FindCoordinatorRequestData().setKeyType((byte) 0)
                        .setCoordinatorKeys(List.of("g-x", "nope")));
            Map<String, Short> coordinators = new HashMap<>();
            fg.data().coordinators().forEach(co -> coordinators.put(co.key(), co.errorCode()));
            assertEquals(Map.of("g-x", (short) 0, "nope", (short) 30), coordinators);
            org.apache.kafka.common.requests.FindCoordinatorResponse ft = (org.apache.kafka.common.requests.FindCoordinatorResponse)
                KafkaRequests.send(port, ApiKeys.FIND_COORDINATOR, (short) 4,
                    new org.apache.kafka.common.message.FindCoordinatorRequestData().setKeyType((byte) 1)
                        .setCoordinatorKeys(List.of("tx")));
            assertEquals(53, ft.data().coordinators().get(0).errorCode());
            // InitProducerId for a transactional id without WRITE on it.
            org.apache.kafka.common.requests.InitProducerIdResponse ip = (org.apache.kafka.common.requests.InitProducerIdResponse)
                KafkaRequests.send(port, ApiKeys.INIT_PRODUCER_ID, (short) 4,
                    new org.apache.kafka.common.message.InitProducerIdRequestData().setTransactionalId("tx")
                        .setTransactionTimeoutMs(60_000).setProducerId(-1).setProducerEpoch((short) -1));
            assertEquals(53, ip.data().errorCode());
            // DescribeCluster reports the operations allowed on the cluster: none.
            org.apache.kafka.common.requests.DescribeClusterResponse dc = (org.apache.kafka.common.requests.DescribeClusterResponse)
                KafkaRequests.send(port, ApiKeys.DESCRIBE_CLUSTER, (short) 1,
                    new org.apache.kafka.common.message.DescribeClusterRequestData().setIncludeClusterAuthorizedOperations(true));
            assertEquals(0, dc.data().errorCode());
            assertEquals(0, dc.data().clusterAuthorizedOperations());
            // The ACL APIs need the cluster: CLUSTER_AUTHORIZATION_FAILED (31).
            DescribeAclsResponse da = (DescribeAclsResponse) KafkaRequests.send(port, ApiKeys.DESCRIBE_ACLS, (short) 3,
                new DescribeAclsRequestData().setResourceTypeFilter((byte) 1).setPatternTypeFilter((byte) 1)
                    .setOperation((byte) 1).setPermissionType((byte) 1).setResourceNameFilter(null)
                    .setPrincipalFilter(null).setHostFilter(null));
            assertEquals(31, da.data().errorCode());
            CreateAclsResponse ca = (CreateAclsResponse) KafkaRequests.send(port, ApiKeys.CREATE_ACLS, (short) 3,
                new CreateAclsRequestData().setCreations(List.of(new CreateAclsRequestData.AclCreation()
                    .setResourceType((byte) 2).setResourceName("secret").setResourcePatternType((byte) 3)
                    .setPrincipal(ANON).setHost("*").setOperation((byte) 2).setPermissionType((byte) 3))));
            assertEquals(31, ca.data().results().get(0).errorCode());
            assertEquals(4, stored(b).size(), "nothing was added");
        }
    }

    @Test
    void shouldApplyARevokedReadToAConsumerInAnIncrementalFetchSession(@TempDir Path dir) throws Exception {
        BrokerConfig c = BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2).memoryBytes(256L << 20)
            .pin(false).authorizer(new AuthorizerConfig(true, Set.of(), true)).build();
        try (Broker b = Broker.start(c); Admin admin = Admin.create(props(b))) {
            admin.createTopics(List.of(new NewTopic("rev", 1, (short) 1))).all().get();
            try (KafkaProducer<String, String> p = new KafkaProducer<>(props(b))) {
                p.send(new ProducerRecord<>("rev", "k", "v")).get();
            }
            // allow.everyone.if.no.acl.found is on: ANONYMOUS keeps ALTER on the cluster to manage ACLs, and READ
            // on 'rev' until it is revoked (someone else's ACL keeps 'rev' named afterwards).
            admin.createAcls(List.of(
                binding(ResourceType.CLUSTER, "kafka-cluster", PatternType.LITERAL, ANON, AclOperation.ALTER,
                    AclPermissionType.ALLOW),
                binding(ResourceType.TOPIC, "rev", PatternType.LITERAL, ANON, AclOperation.READ, AclPermissionType.ALLOW),
                binding(ResourceType.TOPIC, "rev", PatternType.LITERAL, "User:other", AclOperation.READ,
                    AclPermissionType.ALLOW))).all().get();
            TopicPartition tp = new TopicPartition("rev", 0);
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props(b))) {
                consumer.assign(List.of(tp));
                consumer.seekToBeginning(List.of(tp));
                int got = 0;
                for (int i = 0; i < 100 && got == 0; i++) {
                    got += consumer.poll(Duration.ofMillis(100)).count();
                }
                assertEquals(1, got);
                for (int i = 0; i < 5; i++) {
                    consumer.poll(Duration.ofMillis(100)); // incremental fetches of the session
                }
                admin.deleteAcls(List.of(new AclBindingFilter(new ResourcePatternFilter(ResourceType.TOPIC, "rev",
                    PatternType.LITERAL), new AccessControlEntryFilter(ANON, null, AclOperation.READ,
                    AclPermissionType.ALLOW)))).all().get();
                assertThrows(TopicAuthorizationException.class, () -> {
                    for (int i = 0; i < 100; i++) {
                        consumer.poll(Duration.ofMillis(100));
                    }
                }, "the consumer's session held 'rev' before READ was revoked");
            }
        }
    }

    // ------------------------------------------------------------------ kafka-acls.sh

    /** kafka-acls.sh --bootstrap-server BROKER ARGS. */
    private static Run acls(Broker b, String... args) throws Exception {
        String[] all = KafkaTool.withBootstrap("127.0.0.1:" + b.port(), args);
        return KafkaTool.run("kafka-acls " + String.join(" ", all), () -> AclCommand.main(all));
    }

    @Test
    void shouldAddListAndRemoveAclsWithKafkaAcls(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir, Set.of(ANON)))) {
            Run add = acls(b, "--add", "--allow-principal", "User:bob", "--operation", "Read", "--topic", "t",
                "--group", "g");
            assertEquals(0, add.code(), add.err());
            Run producer = acls(b, "--add", "--producer", "--allow-principal", "User:carol", "--topic", "logs-",
                "--resource-pattern-type", "prefixed");
            assertEquals(0, producer.code(), producer.err());
            Run deny = acls(b, "--add", "--deny-principal", "User:eve", "--deny-host", "10.1.2.3", "--operation", "All",
                "--topic", "*");
            assertEquals(0, deny.code(), deny.err());
            SortedSet<AclBinding> s = stored(b);
            assertTrue(s.contains(stored(AclBinding.TOPIC, "t", AclBinding.LITERAL, "User:bob", AclBinding.READ,
                AclBinding.ALLOW)), s.toString());
            assertTrue(s.contains(stored(AclBinding.GROUP, "g", AclBinding.LITERAL, "User:bob", AclBinding.READ,
                AclBinding.ALLOW)), s.toString());
            for (byte op : new byte[] {AclBinding.WRITE, AclBinding.DESCRIBE, AclBinding.CREATE}) {
                assertTrue(s.contains(stored(AclBinding.TOPIC, "logs-", AclBinding.PREFIXED, "User:carol", op,
                    AclBinding.ALLOW)), "producer op " + op + " in " + s);
            }
            assertTrue(s.contains(new AclBinding(AclBinding.TOPIC, "*", AclBinding.LITERAL, "User:eve", "10.1.2.3",
                AclBinding.ALL, AclBinding.DENY)), s.toString());

            Run list = acls(b, "--list", "--topic", "t");
            assertEquals(0, list.code(), list.err());
            assertTrue(list.out().contains("(principal=User:bob, host=*, operation=READ, permissionType=ALLOW)"),
                list.out());
            assertFalse(list.out().contains("User:carol"), list.out());
            Run listPrefixed = acls(b, "--list", "--topic", "logs-", "--resource-pattern-type", "prefixed");
            assertTrue(listPrefixed.out().contains("User:carol"), listPrefixed.out());
            Run listAll = acls(b, "--list");
            for (String p : List.of("User:bob", "User:carol", "User:eve")) {
                assertTrue(listAll.out().contains(p), p + " in " + listAll.out());
            }

            Run remove = acls(b, "--remove", "--force", "--allow-principal", "User:bob", "--operation", "Read",
                "--topic", "t");
            assertEquals(0, remove.code(), remove.err());
            s = stored(b);
            assertFalse(s.contains(stored(AclBinding.TOPIC, "t", AclBinding.LITERAL, "User:bob", AclBinding.READ,
                AclBinding.ALLOW)), s.toString());
            assertTrue(s.contains(stored(AclBinding.GROUP, "g", AclBinding.LITERAL, "User:bob", AclBinding.READ,
                AclBinding.ALLOW)), "only the topic's ACL went: " + s);
            Run after = acls(b, "--list", "--topic", "t");
            assertFalse(after.out().contains("User:bob"), after.out());
        }
    }
}
