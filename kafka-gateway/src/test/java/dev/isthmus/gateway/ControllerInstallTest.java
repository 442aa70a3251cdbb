package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.config.ConfigResource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A controller entry that changes no metadata (the controller tells listeners only of states whose metadata
 * changed) must not leave the broker waiting for a topic table that will never come: an AdminClient change
 * that changes nothing is answered, and (what bench/chaos found after kill -9: a restart whose last controller
 * entry changed nothing waited 60 s for it and exited 1, "the controller's state was not installed") a broker
 * restarts whatever its controller log ends with.
 */
@ExtendWith(ArenaLeakCheck.class)
class ControllerInstallTest {

    private static BrokerConfig config(Path dir) {
        return BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(2).memoryBytes(256L << 20).build();
    }

    @Test
    void shouldAnswerAConfigChangeThatChangesNothingAndRestartAfterIt(@TempDir Path dir) throws Exception {
        ConfigResource topic = new ConfigResource(ConfigResource.Type.TOPIC, "same");
        AlterConfigOp set = new AlterConfigOp(new ConfigEntry("retention.ms", "60000"), AlterConfigOp.OpType.SET);
        try (Broker broker = Broker.start(config(dir));
             Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + broker.port(),
                 AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 120_000))) {
            admin.createTopics(List.of(new NewTopic("same", 1, (short) 1))).all().get();
            admin.incrementalAlterConfigs(Map.of(topic, List.of(set))).all().get();
            // The same value again: a controller entry whose state has the same metadata. The limit only turns a
            // hang into a failure.
            admin.incrementalAlterConfigs(Map.of(topic, List.of(set))).all().get(90, TimeUnit.SECONDS);
        }
        // The controller log now ends with that entry: the restart waits for what was published, not for it.
        try (Broker broker = Broker.start(config(dir));
             Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + broker.port()))) {
            assertEquals("60000", admin.describeConfigs(List.of(topic)).all().get().get(topic).get("retention.ms").value());
        }
    }
}
