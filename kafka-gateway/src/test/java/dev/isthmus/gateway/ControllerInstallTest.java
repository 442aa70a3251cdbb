package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.message.IncrementalAlterConfigsRequestData;
import org.apache.kafka.common.message.IncrementalAlterConfigsRequestData.AlterConfigsResource;
import org.apache.kafka.common.message.IncrementalAlterConfigsRequestData.AlterableConfig;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.requests.IncrementalAlterConfigsResponse;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A controller entry that changes no metadata must not leave the broker waiting for a topic table that will
 * never come. The controller used to tell its listeners only of states whose metadata changed, while a command's
 * caller and a starting broker wait for the state of a given offset: two requests setting the same value each
 * append an entry (each saw the old value), the second changing nothing, and its caller waited forever; and a
 * single node whose controller log ended with such an entry (bench/chaos, after kill -9: a registration proposed
 * twice while the first was being applied) waited 60 s at start and exited 1, "the controller's state (applied
 * offset N) was not installed on every shard".
 */
@ExtendWith(ArenaLeakCheck.class)
class ControllerInstallTest {

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** Fixed Kafka and RPC ports: a restart registers the same addresses, so it appends no controller entry. */
    private static BrokerConfig config(Path dir, int port, int rpcPort) {
        return BrokerConfig.defaults().toBuilder().port(port).rpc("127.0.0.1", rpcPort).dataDir(dir).shards(2)
            .memoryBytes(256L << 20).build();
    }

    private static AlterConfigsResource setRetention(String topic, String ms) {
        AlterConfigsResource r = new AlterConfigsResource().setResourceType(ConfigResource.Type.TOPIC.id())
            .setResourceName(topic);
        r.configs().add(new AlterableConfig().setName("retention.ms").setValue(ms)
            .setConfigOperation((byte) 0 /* SET */));
        return r;
    }

    @Test
    void shouldAnswerAChangeThatChangesNothingAndRestartWithALogEndingInIt(@TempDir Path dir) throws Exception {
        int port = freePort();
        int rpcPort = freePort();
        ConfigResource topic = new ConfigResource(ConfigResource.Type.TOPIC, "same");
        try (Broker broker = Broker.start(config(dir, port, rpcPort));
             Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + port))) {
            admin.createTopics(List.of(new NewTopic("same", 1, (short) 1))).all().get();
            // One request naming the topic twice: both edits read the old value, so each appends a controller
            // entry; the second changes nothing. Its answer used to never come (the socket's 60 s timeout).
            IncrementalAlterConfigsRequestData req = new IncrementalAlterConfigsRequestData();
            req.resources().add(setRetention("same", "60000"));
            req.resources().add(setRetention("same", "60000"));
            IncrementalAlterConfigsResponse resp = (IncrementalAlterConfigsResponse) KafkaRequests.send(port,
                ApiKeys.INCREMENTAL_ALTER_CONFIGS, (short) 1, req);
            assertEquals(2, resp.data().responses().size());
            for (var r : resp.data().responses()) {
                assertEquals(0, r.errorCode(), r.errorMessage());
            }
            assertEquals("60000", admin.describeConfigs(List.of(topic)).all().get().get(topic).get("retention.ms").value());
        }
        // The controller log now ends with that entry (the same addresses register nothing new): the start waits
        // for the state of the log's last entry and gets it.
        try (Broker broker = Broker.start(config(dir, port, rpcPort));
             Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + port))) {
            assertEquals("60000", admin.describeConfigs(List.of(topic)).all().get().get(topic).get("retention.ms").value());
        }
    }
}
