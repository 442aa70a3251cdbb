package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.CreateTopicsRequestData;
import dev.isthmus.gateway.protocol.message.CreateTopicsResponseData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * CreateTopics with validateOnly runs exactly the checks of a real create (issue 23, finding 5: 0 or -5
 * partitions were answered NONE by a validation and INVALID_PARTITIONS by the create). Each case goes over raw
 * frames twice, validate-only and then for real, and both must carry the same error code, the expected one; a
 * validation never creates anything.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(120)
class CreateTopicsValidateOnlyTest {
    private static final short VERSION = 7;

    private record Case(String what, short expected, Consumer<CreateTopicsRequestData.CreatableTopic> shape) {
    }

    private static CreateTopicsRequestData.CreatableTopic topic(String name, int partitions, int rf) {
        CreateTopicsRequestData.CreatableTopic t = new CreateTopicsRequestData.CreatableTopic();
        t.name = name;
        t.numPartitions = partitions;
        t.replicationFactor = (short) rf;
        return t;
    }

    private static void assign(CreateTopicsRequestData.CreatableTopic t, int partition, int... brokers) {
        CreateTopicsRequestData.CreatableReplicaAssignment a = new CreateTopicsRequestData.CreatableReplicaAssignment();
        a.partitionIndex = partition;
        for (int b : brokers) {
            a.brokerIds.add(b);
        }
        t.assignments.add(a);
    }

    private static void config(CreateTopicsRequestData.CreatableTopic t, String name, String value) {
        CreateTopicsRequestData.CreatableTopicConfig c = new CreateTopicsRequestData.CreatableTopicConfig();
        c.name = name;
        c.value = value;
        t.configs.add(c);
    }

    private static CreateTopicsResponseData.CreatableTopicResult create(WireClient c, int correlationId,
                                                                       CreateTopicsRequestData.CreatableTopic t,
                                                                       boolean validateOnly) throws Exception {
        CreateTopicsRequestData req = new CreateTopicsRequestData();
        req.topics.add(t);
        req.timeoutMs = 30_000;
        req.validateOnly = validateOnly;
        c.send(WireClient.frame(ApiKeys.CREATE_TOPICS, VERSION, correlationId, req));
        byte[] r = c.readFrame();
        assertNotNull(r, "CreateTopics is answered");
        assertEquals(correlationId, WireClient.correlationId(r));
        CreateTopicsResponseData body = WireClient.body(r, ApiKeys.CREATE_TOPICS, VERSION);
        assertEquals(1, body.topics.size());
        return body.topics.get(0);
    }

    @Test
    void shouldAnswerAValidationAsTheRealCreateForEveryKindOfBadTopic(@TempDir Path dir) throws Exception {
        // 2 shards x 4 partitions per shard x 1 broker: at most 8 partition replicas in the cluster.
        BrokerConfig config = BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2)
            .memoryBytes(256L << 20).pin(false).autoCreateTopics(false).maxPartitionsPerShard(4).build();
        try (Broker b = Broker.start(config); WireClient c = new WireClient(b.port(), 60_000)) {
            b.createTopicBlocking("existing", 1);
            List<Case> cases = new ArrayList<>(List.of(
                new Case("0 partitions", ErrorCodes.INVALID_PARTITIONS, t -> t.numPartitions = 0),
                new Case("-5 partitions", ErrorCodes.INVALID_PARTITIONS, t -> t.numPartitions = -5),
                new Case("more partitions than the shards may host", ErrorCodes.INVALID_PARTITIONS,
                    t -> t.numPartitions = 8),
                new Case("more partitions than a topic may have", ErrorCodes.INVALID_PARTITIONS,
                    t -> t.numPartitions = Integer.MAX_VALUE),
                new Case("replication factor 0", ErrorCodes.INVALID_REPLICATION_FACTOR, t -> t.replicationFactor = 0),
                new Case("replication factor -3", ErrorCodes.INVALID_REPLICATION_FACTOR,
                    t -> t.replicationFactor = -3),
                new Case("replication factor above the brokers", ErrorCodes.INVALID_REPLICATION_FACTOR,
                    t -> t.replicationFactor = 2),
                new Case("a name with a space", ErrorCodes.INVALID_TOPIC_EXCEPTION, t -> t.name = "bad name"),
                new Case("the name '..'", ErrorCodes.INVALID_TOPIC_EXCEPTION, t -> t.name = ".."),
                new Case("a 250-character name", ErrorCodes.INVALID_TOPIC_EXCEPTION, t -> t.name = "n".repeat(250)),
                new Case("an existing topic", ErrorCodes.TOPIC_ALREADY_EXISTS, t -> t.name = "existing"),
                new Case("an unknown config", ErrorCodes.INVALID_CONFIG, t -> config(t, "no.such.config", "1")),
                new Case("a bad config value", ErrorCodes.INVALID_CONFIG, t -> config(t, "cleanup.policy", "shred")),
                new Case("an assignment with a gap", ErrorCodes.INVALID_REPLICA_ASSIGNMENT, t -> {
                    t.numPartitions = -1;
                    t.replicationFactor = -1;
                    assign(t, 0, 0);
                    assign(t, 2, 0);
                }),
                new Case("an assignment naming an unknown broker", ErrorCodes.INVALID_REPLICA_ASSIGNMENT, t -> {
                    t.numPartitions = -1;
                    t.replicationFactor = -1;
                    assign(t, 0, 7);
                }),
                new Case("an assignment with numPartitions set", ErrorCodes.INVALID_REQUEST, t -> {
                    t.replicationFactor = -1;
                    assign(t, 0, 0);
                }),
                new Case("an assignment with a replication factor set", ErrorCodes.INVALID_REQUEST, t -> {
                    t.numPartitions = -1;
                    assign(t, 0, 0);
                })));
            int correlation = 0;
            for (Case k : cases) {
                CreateTopicsRequestData.CreatableTopic t = topic("fresh", 1, 1);
                k.shape.accept(t);
                CreateTopicsResponseData.CreatableTopicResult validated = create(c, correlation++, t, true);
                CreateTopicsResponseData.CreatableTopicResult created = create(c, correlation++, t, false);
                assertEquals(k.expected, created.errorCode, k.what + ": the real create (" + created.errorMessage + ")");
                assertEquals(k.expected, validated.errorCode, k.what + ": the validation (" + validated.errorMessage
                    + ") must answer what the real create answers");
                assertNotNull(validated.errorMessage, k.what + ": a validation names the problem");
            }
            // A good topic validates with its shape and is not created by the validation: the real create that
            // follows succeeds (a created topic would make it TOPIC_ALREADY_EXISTS).
            CreateTopicsRequestData.CreatableTopic good = topic("fresh", 3, -1);
            config(good, "retention.ms", "60000");
            CreateTopicsResponseData.CreatableTopicResult validated = create(c, correlation++, good, true);
            assertEquals(ErrorCodes.NONE, validated.errorCode, String.valueOf(validated.errorMessage));
            assertEquals(3, validated.numPartitions);
            assertEquals(1, validated.replicationFactor);
            assertEquals("60000", validated.configs.stream().filter(x -> x.name.equals("retention.ms"))
                .findFirst().orElseThrow().value);
            CreateTopicsResponseData.CreatableTopicResult created = create(c, correlation++, good, false);
            assertEquals(ErrorCodes.NONE, created.errorCode, String.valueOf(created.errorMessage));
            assertEquals(3, created.numPartitions);
            // Now the cluster hosts 4 of its 8 partition replicas: 5 more fail both ways, 4 more pass both ways.
            CreateTopicsResponseData.CreatableTopicResult tooMany = create(c, correlation++, topic("more", 5, 1), true);
            assertEquals(ErrorCodes.INVALID_PARTITIONS, tooMany.errorCode);
            assertEquals(ErrorCodes.INVALID_PARTITIONS, create(c, correlation++, topic("more", 5, 1), false).errorCode);
            assertEquals(ErrorCodes.NONE, create(c, correlation++, topic("more", 4, 1), true).errorCode);
            assertEquals(ErrorCodes.NONE, create(c, correlation++, topic("more", 4, 1), false).errorCode);
        }
    }
}
