package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeProducersResult;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.SecurityDisabledException;
import org.apache.kafka.common.message.AlterConfigsRequestData;
import org.apache.kafka.common.message.AlterConfigsResponseData;
import org.apache.kafka.common.message.DescribeTopicPartitionsRequestData;
import org.apache.kafka.common.message.DescribeTopicPartitionsResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.requests.AlterConfigsResponse;
import org.apache.kafka.common.requests.DescribeTopicPartitionsResponse;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The admin APIs tools call at start-up, with kafka-clients' AdminClient and, for what it no longer sends (the legacy
 * AlterConfigs) or to check exact paging, with kafka-clients' own request classes on a socket: AlterConfigs,
 * DescribeLogDirs, DescribeProducers, the ACL APIs without an authorizer, DescribeTopicPartitions.
 */
@ExtendWith(ArenaLeakCheck.class)
class ToolAdminApiTest {

    private static BrokerConfig config(Path dir) {
        return BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2).memoryBytes(256L << 20).build();
    }

    private static Admin admin(Broker b) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        return Admin.create(p);
    }

    private static KafkaProducer<String, String> idempotentProducer(Broker b) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        return new KafkaProducer<>(p);
    }

    private static Throwable cause(ThrowingRunnable r) {
        return assertThrows(ExecutionException.class, r::run).getCause();
    }

    @FunctionalInterface
    private interface ThrowingRunnable {
        void run() throws Exception;
    }

    // ------------------------------------------------------------------ AlterConfigs (legacy)

    private static AlterConfigsRequestData.AlterConfigsResource resource(byte type, String name, String... kv) {
        AlterConfigsRequestData.AlterConfigsResource r = new AlterConfigsRequestData.AlterConfigsResource()
            .setResourceType(type).setResourceName(name);
        for (int i = 0; i < kv.length; i += 2) {
            r.configs().add(new AlterConfigsRequestData.AlterableConfig().setName(kv[i]).setValue(kv[i + 1]));
        }
        return r;
    }

    /** Sends a legacy AlterConfigs at {@code version}; the results in request order. */
    private static List<AlterConfigsResponseData.AlterConfigsResourceResponse> alterConfigs(Broker b, short version,
        boolean validateOnly, AlterConfigsRequestData.AlterConfigsResource... resources) throws Exception {
        AlterConfigsRequestData req = new AlterConfigsRequestData().setValidateOnly(validateOnly);
        for (AlterConfigsRequestData.AlterConfigsResource r : resources) {
            req.resources().add(r);
        }
        AlterConfigsResponse resp = (AlterConfigsResponse) KafkaRequests.send(b.port(), ApiKeys.ALTER_CONFIGS, version, req);
        return resp.data().responses();
    }

    private static Map<String, ConfigEntry> overrides(Admin admin, String topic) throws Exception {
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config c = admin.describeConfigs(List.of(res)).all().get().get(res);
        Map<String, ConfigEntry> out = new LinkedHashMap<>();
        for (ConfigEntry e : c.entries()) {
            if (e.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG) {
                out.put(e.name(), e);
            }
        }
        return out;
    }

    @Test
    void shouldReplaceEveryTopicConfigWithTheLegacyAlterConfigs(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir)); Admin admin = admin(b)) {
            admin.createTopics(List.of(new NewTopic("legacy", 1, (short) 1).configs(Map.of("retention.ms", "60000",
                "segment.bytes", "1048576")))).all().get();
            assertEquals(Set.of("retention.ms", "segment.bytes"), overrides(admin, "legacy").keySet());

            // Replace-all: cleanup.policy is set, retention.ms and segment.bytes (not named) go back to defaults.
            for (short version = 0; version <= 2; version++) {
                var res = alterConfigs(b, version, false, resource((byte) 2, "legacy", "cleanup.policy", "compact",
                    "max.message.bytes", "65536"));
                assertEquals(Errors.NONE.code(), res.get(0).errorCode(), "v" + version + ": " + res.get(0).errorMessage());
                Map<String, ConfigEntry> now = overrides(admin, "legacy");
                assertEquals(Set.of("cleanup.policy", "max.message.bytes"), now.keySet(), "v" + version);
                assertEquals("compact", now.get("cleanup.policy").value());
            }
            // validateOnly: checked, nothing changes.
            var checked = alterConfigs(b, (short) 2, true, resource((byte) 2, "legacy", "retention.ms", "1000"));
            assertEquals(Errors.NONE.code(), checked.get(0).errorCode(), checked.get(0).errorMessage());
            assertEquals(Set.of("cleanup.policy", "max.message.bytes"), overrides(admin, "legacy").keySet());

            // Bad values answer INVALID_CONFIG with IncrementalAlterConfigs' sentence, and change nothing.
            var bad = alterConfigs(b, (short) 2, false, resource((byte) 2, "legacy", "retention.ms", "soon"));
            assertEquals(Errors.INVALID_CONFIG.code(), bad.get(0).errorCode());
            assertTrue(bad.get(0).errorMessage().contains("Invalid value soon for configuration retention.ms"),
                bad.get(0).errorMessage());
            var unknownKey = alterConfigs(b, (short) 2, false, resource((byte) 2, "legacy", "no.such.config", "1"));
            assertEquals(Errors.INVALID_CONFIG.code(), unknownKey.get(0).errorCode());
            assertEquals(Set.of("cleanup.policy", "max.message.bytes"), overrides(admin, "legacy").keySet());

            // Request errors, per resource, as Kafka's broker answers them.
            var unknownTopic = alterConfigs(b, (short) 2, false, resource((byte) 2, "nope", "retention.ms", "1000"));
            assertEquals(Errors.UNKNOWN_TOPIC_OR_PARTITION.code(), unknownTopic.get(0).errorCode());
            var dupKey = alterConfigs(b, (short) 2, false, resource((byte) 2, "legacy", "retention.ms", "1000",
                "retention.ms", "2000"));
            assertEquals(Errors.INVALID_REQUEST.code(), dupKey.get(0).errorCode());
            assertEquals("Error due to duplicate config keys", dupKey.get(0).errorMessage());
            var twice = alterConfigs(b, (short) 2, false, resource((byte) 2, "legacy"), resource((byte) 2, "legacy"));
            assertEquals(List.of(Errors.INVALID_REQUEST.code(), Errors.INVALID_REQUEST.code()),
                twice.stream().map(AlterConfigsResponseData.AlterConfigsResourceResponse::errorCode).toList());
            var logger = alterConfigs(b, (short) 2, false, resource((byte) 8, "0", "kafka.server", "DEBUG"));
            assertEquals(Errors.INVALID_REQUEST.code(), logger.get(0).errorCode());

            // Broker configs are start-up settings: a config to set is refused by name; none to set is a no-op.
            var brokerSet = alterConfigs(b, (short) 2, false, resource((byte) 4, "0", "log.retention.ms", "1000"));
            assertEquals(Errors.INVALID_REQUEST.code(), brokerSet.get(0).errorCode());
            assertTrue(brokerSet.get(0).errorMessage().startsWith("Cannot update these configs dynamically: [log.retention.ms]"),
                brokerSet.get(0).errorMessage());
            var otherBroker = alterConfigs(b, (short) 2, false, resource((byte) 4, "7"));
            assertEquals(Errors.INVALID_REQUEST.code(), otherBroker.get(0).errorCode());
            assertEquals("Unexpected broker id, expected 0, but received 7", otherBroker.get(0).errorMessage());
            var brokerNone = alterConfigs(b, (short) 2, false, resource((byte) 4, "0"));
            assertEquals(Errors.NONE.code(), brokerNone.get(0).errorCode());

            // An empty list clears every override.
            var clear = alterConfigs(b, (short) 1, false, resource((byte) 2, "legacy"));
            assertEquals(Errors.NONE.code(), clear.get(0).errorCode());
            assertTrue(overrides(admin, "legacy").isEmpty());
        }
    }

    // ------------------------------------------------------------------ DescribeLogDirs, DescribeProducers

    @Test
    void shouldDescribeLogDirsAndIdempotentProducersWithTheAdminClient(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir)); Admin admin = admin(b)) {
            admin.createTopics(List.of(new NewTopic("disk", 3, (short) 1))).all().get();
            long before = System.currentTimeMillis();
            try (KafkaProducer<String, String> producer = idempotentProducer(b)) {
                for (int i = 0; i < 40; i++) {
                    producer.send(new ProducerRecord<>("disk", i % 2, "k" + i, "value " + i)).get();
                }
            }
            long after = System.currentTimeMillis();

            Map<String, LogDirDescription> dirs = admin.describeLogDirs(List.of(0)).allDescriptions().get().get(0);
            assertEquals(Set.of(dir.toAbsolutePath().toString()), dirs.keySet());
            LogDirDescription d = dirs.get(dir.toAbsolutePath().toString());
            assertNull(d.error());
            long total = Files.getFileStore(dir).getTotalSpace();
            assertEquals(total, d.totalBytes().getAsLong(), "statvfs of the data directory");
            assertTrue(d.usableBytes().getAsLong() > 0 && d.usableBytes().getAsLong() <= total);
            for (int p = 0; p < 3; p++) {
                ReplicaInfo info = d.replicaInfos().get(new TopicPartition("disk", p));
                long stored = KafkaRequests.storedBytes(b.port(), "disk", p);
                assertEquals(stored, info.size(), "disk-" + p);
                assertEquals(0, info.offsetLag());
                assertFalse(info.isFuture());
            }
            assertTrue(d.replicaInfos().get(new TopicPartition("disk", 0)).size() > 0);
            assertEquals(0, d.replicaInfos().get(new TopicPartition("disk", 2)).size(), "nothing written to disk-2");

            for (int p = 0; p < 2; p++) {
                TopicPartition tp = new TopicPartition("disk", p);
                List<RecordBatch> batches = KafkaRequests.batches(b.port(), "disk", p);
                RecordBatch last = batches.get(batches.size() - 1);
                DescribeProducersResult.PartitionProducerState state = admin.describeProducers(List.of(tp))
                    .partitionResult(tp).get();
                assertEquals(1, state.activeProducers().size(), tp.toString());
                ProducerState ps = state.activeProducers().get(0);
                assertEquals(last.producerId(), ps.producerId(), "the producer id its batches carry");
                assertEquals(last.producerEpoch(), ps.producerEpoch());
                assertEquals(19, ps.lastSequence(), "20 one-record batches on each partition, from sequence 0");
                assertEquals(last.lastSequence(), ps.lastSequence());
                assertTrue(ps.lastTimestamp() >= before && ps.lastTimestamp() <= after, "" + ps.lastTimestamp());
                assertTrue(ps.coordinatorEpoch().isEmpty());
                assertTrue(ps.currentTransactionStartOffset().isEmpty());
            }
            TopicPartition empty = new TopicPartition("disk", 2);
            assertTrue(admin.describeProducers(List.of(empty)).partitionResult(empty).get().activeProducers().isEmpty());
        }
    }

    // ------------------------------------------------------------------ ACLs

    @Test
    void shouldAnswerSecurityDisabledToTheAclApisWithoutAnAuthorizer(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir)); Admin admin = admin(b)) {
            Throwable describe = cause(() -> admin.describeAcls(AclBindingFilter.ANY).values().get());
            assertInstanceOf(SecurityDisabledException.class, describe);
            assertEquals("No Authorizer is configured on the broker", describe.getMessage());
            AclBinding binding = new AclBinding(new ResourcePattern(ResourceType.TOPIC, "orders", PatternType.LITERAL),
                new AccessControlEntry("User:alice", "*", AclOperation.READ, AclPermissionType.ALLOW));
            Throwable create = cause(() -> admin.createAcls(List.of(binding)).all().get());
            assertInstanceOf(SecurityDisabledException.class, create);
            assertEquals("No Authorizer is configured.", create.getMessage());
            Throwable delete = cause(() -> admin.deleteAcls(List.of(AclBindingFilter.ANY)).all().get());
            assertInstanceOf(SecurityDisabledException.class, delete);
        }
    }

    // ------------------------------------------------------------------ DescribeTopicPartitions

    private static DescribeTopicPartitionsResponseData describeTopicPartitions(Broker b, int limit, String cursorTopic,
                                                                              int cursorPartition, String... topics)
        throws Exception {
        DescribeTopicPartitionsRequestData req = new DescribeTopicPartitionsRequestData().setResponsePartitionLimit(limit);
        for (String t : topics) {
            req.topics().add(new DescribeTopicPartitionsRequestData.TopicRequest().setName(t));
        }
        if (cursorTopic != null) {
            req.setCursor(new DescribeTopicPartitionsRequestData.Cursor().setTopicName(cursorTopic)
                .setPartitionIndex(cursorPartition));
        }
        return ((DescribeTopicPartitionsResponse) KafkaRequests.send(b.port(), ApiKeys.DESCRIBE_TOPIC_PARTITIONS,
            (short) 0, req)).data();
    }

    /** "topic:first..last" for each topic of a page, then "-> topic:partition" for the next cursor. */
    private static List<String> page(DescribeTopicPartitionsResponseData r) {
        List<String> out = new ArrayList<>();
        for (var t : r.topics()) {
            var ps = t.partitions();
            out.add(t.name() + (t.errorCode() != 0 ? " " + Errors.forCode(t.errorCode())
                : ":" + (ps.isEmpty() ? "none" : ps.get(0).partitionIndex() + ".." + ps.get(ps.size() - 1).partitionIndex())));
        }
        if (r.nextCursor() != null) {
            out.add("-> " + r.nextCursor().topicName() + ":" + r.nextCursor().partitionIndex());
        }
        return out;
    }

    @Test
    void shouldPageDescribeTopicPartitionsByCursorAsKafkaDoes(@TempDir Path dir) throws Exception {
        try (Broker b = Broker.start(config(dir)); Admin admin = admin(b)) {
            admin.createTopics(List.of(new NewTopic("alpha", 5, (short) 1), new NewTopic("beta", 1, (short) 1),
                new NewTopic("gamma", 3, (short) 1))).all().get();

            // All topics, three partitions a page, in name order.
            assertEquals(List.of("alpha:0..2", "-> alpha:3"), page(describeTopicPartitions(b, 3, null, 0)));
            assertEquals(List.of("alpha:3..4", "beta:0..0", "-> gamma:0"),
                page(describeTopicPartitions(b, 3, "alpha", 3)));
            assertEquals(List.of("gamma:0..2"), page(describeTopicPartitions(b, 3, "gamma", 0)));
            // Named topics (any order asked, answered sorted), an unknown and a malformed name answered by error.
            assertEquals(List.of("alpha:0..4", "bad/name INVALID_TOPIC_EXCEPTION", "beta:0..0", "gamma:0..2",
                    "missing UNKNOWN_TOPIC_OR_PARTITION"),
                page(describeTopicPartitions(b, 2000, null, 0, "gamma", "missing", "alpha", "bad/name", "beta")));
            // The cursor topic must be among the named topics.
            assertEquals(List.of("gamma INVALID_REQUEST"), page(describeTopicPartitions(b, 10, "alpha", 0, "gamma")));

            DescribeTopicPartitionsResponseData one = describeTopicPartitions(b, 10, null, 0, "beta");
            var topic = one.topics().iterator().next();
            assertEquals(admin.describeTopics(List.of("beta")).allTopicNames().get().get("beta").topicId(), topic.topicId());
            var p0 = topic.partitions().get(0);
            assertEquals(0, p0.leaderId());
            assertEquals(List.of(0), p0.replicaNodes());
            assertEquals(List.of(0), p0.isrNodes());
            assertEquals(List.of(), p0.eligibleLeaderReplicas());
            assertEquals(List.of(), p0.lastKnownElr());
            assertEquals(List.of(), p0.offlineReplicas());

            // The Admin client pages through it (two partitions a request) and gets every partition.
            Map<String, TopicDescription> all = admin.describeTopics(List.of("alpha", "beta", "gamma"),
                new DescribeTopicsOptions().partitionSizeLimitPerResponse(2).includeAuthorizedOperations(true))
                .allTopicNames().get();
            assertEquals(List.of(0, 1, 2, 3, 4), all.get("alpha").partitions().stream().map(TopicPartitionInfo::partition).toList());
            assertEquals(3, all.get("gamma").partitions().size());
            assertEquals(Set.of(AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DELETE,
                    AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS),
                all.get("alpha").authorizedOperations(), "no authorizer: every topic operation");
        }
    }
}
