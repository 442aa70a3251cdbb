package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.uring.shard.Shard;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A shard's following of the topic table ({@link ShardState#install}) on a live one-shard broker. */
@ExtendWith(ArenaLeakCheck.class)
class ShardStateTest {
    private static final int PARTITIONS = 16;

    /**
     * bench/chaos soak seed 2231: after a kill of every node, each node's first state opened its 57 replicas in one
     * shard task, 7-8 s at load ~40, and the controller leader on that shard, sending no heartbeat meanwhile, lost
     * its leadership three times in 22 s. An install now opens one replica per task and other tasks run between two
     * opens. A probe task that queues itself again each time it runs must see every count of opens, one by one.
     */
    @Test
    void shouldRunOtherTasksBetweenTheReplicaOpensOfAnInstall(@TempDir Path dir) throws Exception {
        BrokerConfig config = BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(1)
            .memoryBytes(256L << 20).build();
        try (Broker b = Broker.start(config);
             Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port()))) {
            ShardState st = b.state(0);
            ConcurrentSkipListSet<Long> seen = new ConcurrentSkipListSet<>();
            AtomicBoolean stop = new AtomicBoolean();
            long before = b.group().call(0, s -> {
                Runnable[] probe = new Runnable[1];
                probe[0] = () -> {
                    seen.add(st.opensStarted);
                    if (!stop.get()) {
                        s.execute(probe[0]);
                    }
                };
                s.execute(probe[0]);
                return st.opensStarted;
            }).get(30, TimeUnit.SECONDS);

            admin.createTopics(List.of(new NewTopic("many", PARTITIONS, (short) 1))).all().get(60, TimeUnit.SECONDS);
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (b.group().call(0, s -> st.partitions.keySet().stream().filter(k -> k.startsWith("many-")).count())
                    .get(30, TimeUnit.SECONDS) < PARTITIONS) {
                assertTrue(System.nanoTime() < end, "the install opened " + PARTITIONS + " replicas within 60 s");
                Thread.sleep(10);
            }
            stop.set(true);
            b.group().call(0, (Shard s) -> null).get(30, TimeUnit.SECONDS); // the probe's last run is over

            assertEquals(before + PARTITIONS, b.group().call(0, s -> st.opensStarted).get(30, TimeUnit.SECONDS),
                "one open per replica");
            TreeSet<Long> expected = new TreeSet<>();
            for (long n = before; n <= before + PARTITIONS; n++) {
                expected.add(n);
            }
            assertTrue(seen.containsAll(expected), "the probe ran between every two opens; it saw " + seen
                + ", opens " + before + ".." + (before + PARTITIONS));
        }
    }
}
