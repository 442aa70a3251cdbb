package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.KafkaTool.Run;
import org.apache.kafka.common.utils.Exit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Kafka 4.3's {@code kafka-configs.sh} ({@code kafka.admin.ConfigCommand} of the core jar, run in-process as the
 * script runs it, with Kafka's {@link Exit} hook turned into an exception): altering, describing and deleting
 * topic configs, describing every config of a topic and of the broker with its source, and a bad value refused
 * with the key and the reason on the tool's error output.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(180)
class KafkaConfigsToolTest {
    /** kafka-configs.sh --bootstrap-server BROKER ARGS: what it printed and the status it exited with. */
    private static Run configs(Broker b, String... args) throws Exception {
        String[] all = KafkaTool.withBootstrap("127.0.0.1:" + b.port(), args);
        return KafkaTool.run("kafka-configs " + String.join(" ", all), () -> kafka.admin.ConfigCommand.main(all));
    }

    @Test
    void shouldAlterDescribeAndDeleteTopicConfigsWithKafkaConfigs(@TempDir Path dir) throws Exception {
        BrokerConfig c = BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2).memoryBytes(256L << 20)
            .pin(false).topicDefault("log.retention.hours", "48").build();
        try (Broker b = Broker.start(c)) {
            b.createTopicBlocking("orders", 1);
            Run alter = configs(b, "--alter", "--entity-type", "topics", "--entity-name", "orders", "--add-config",
                "retention.ms=3600000,cleanup.policy=[compact,delete],max.message.bytes=2097152,"
                    + "message.timestamp.type=CreateTime,unclean.leader.election.enable=false");
            assertEquals(0, alter.code(), alter.err());
            assertTrue(alter.out().contains("Completed updating config for topic orders."), alter.out());

            Run dynamic = configs(b, "--describe", "--entity-type", "topics", "--entity-name", "orders");
            assertEquals(0, dynamic.code(), dynamic.err());
            assertTrue(dynamic.out().contains("retention.ms=3600000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:"
                + "retention.ms=3600000, STATIC_BROKER_CONFIG:log.retention.hours=48, DEFAULT_CONFIG:"
                + "log.retention.hours=168}"), dynamic.out());
            assertTrue(dynamic.out().contains("cleanup.policy=compact,delete"), dynamic.out());
            assertTrue(dynamic.out().contains("max.message.bytes=2097152"), dynamic.out());
            assertFalse(dynamic.out().contains("segment.bytes="), "only the topic's own configs: " + dynamic.out());

            Run all = configs(b, "--describe", "--all", "--entity-type", "topics", "--entity-name", "orders");
            assertEquals(0, all.code(), all.err());
            for (String name : TopicConfigs.DEFINITIONS.keySet()) {
                assertTrue(all.out().contains("  " + name + "="), name + " in " + all.out());
            }
            assertTrue(all.out().contains("segment.bytes=1073741824 sensitive=false synonyms={DEFAULT_CONFIG:"
                + "log.segment.bytes=1073741824}"), all.out());

            Run delete = configs(b, "--alter", "--entity-type", "topics", "--entity-name", "orders", "--delete-config",
                "retention.ms");
            assertEquals(0, delete.code(), delete.err());
            Run after = configs(b, "--describe", "--all", "--entity-type", "topics", "--entity-name", "orders");
            assertTrue(after.out().contains("retention.ms=172800000 sensitive=false synonyms={STATIC_BROKER_CONFIG:"
                + "log.retention.hours=48, DEFAULT_CONFIG:log.retention.hours=168}"), after.out());

            Run bad = configs(b, "--alter", "--entity-type", "topics", "--entity-name", "orders", "--add-config",
                "retention.ms=soon");
            assertEquals(1, bad.code());
            assertTrue(bad.err().contains("Invalid value soon for configuration retention.ms: Not a number of type LONG"),
                bad.err());
            Run unknown = configs(b, "--alter", "--entity-type", "topics", "--entity-name", "orders", "--add-config",
                "retention.msec=5");
            assertEquals(1, unknown.code());
            assertTrue(unknown.err().contains("Unknown topic config name: retention.msec"), unknown.err());

            Run broker = configs(b, "--describe", "--all", "--entity-type", "brokers", "--entity-name", "0");
            assertEquals(0, broker.code(), broker.err());
            assertTrue(broker.out().contains("log.retention.hours=48 sensitive=false synonyms={STATIC_BROKER_CONFIG:"
                + "log.retention.hours=48}"), broker.out());
            assertTrue(broker.out().contains("isthmus.max.message.bytes.limit=" + c.maxMessageBytesLimit()), broker.out());
            assertTrue(Arrays.stream(broker.out().split("\n")).anyMatch(l -> l.strip().startsWith("message.max.bytes=")),
                broker.out());
        }
    }
}
