package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.uring.IoBackend;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
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
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Consumer groups with unmodified kafka-clients: rebalances, commits, admin, and offsets across restarts. */
@ExtendWith(ArenaLeakCheck.class)
class ConsumerGroupTest {
    private static final Duration DEADLINE = Duration.ofSeconds(90);

    private static BrokerConfig config(Path dir, int shards) {
        return BrokerConfig.defaults().toBuilder().port(0).dataDir(dir).shards(shards).memoryBytes(shards * (128L << 20))
            .pin(false).backend(IoBackend.AUTO).groupInitialRebalanceDelayMs(0).offsetsTopicPartitions(4).build();
    }

    private static Properties common(Broker b) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + b.port());
        return p;
    }

    private static Properties consumerProps(Broker b, String group) {
        Properties cp = common(b);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "50");
        return cp;
    }

    private static KafkaProducer<String, String> producer(Broker b) {
        Properties pp = common(b);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        return new KafkaProducer<>(pp);
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + DEADLINE.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(50);
        }
    }

    /** A group member polling and committing synchronously on its own thread until stopped. */
    private static final class Member implements AutoCloseable {
        final AtomicBoolean stop = new AtomicBoolean();
        final Set<Integer> assigned = ConcurrentHashMap.newKeySet();
        final Thread thread;
        volatile Throwable failure;

        Member(Properties props, String topic, Set<String> seen) {
            thread = new Thread(() -> {
                try (KafkaConsumer<String, String> c = new KafkaConsumer<>(props)) {
                    c.subscribe(List.of(topic), new org.apache.kafka.clients.consumer.ConsumerRebalanceListener() {
                        @Override
                        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                            partitions.forEach(tp -> assigned.remove(tp.partition()));
                        }

                        @Override
                        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                            partitions.forEach(tp -> assigned.add(tp.partition()));
                        }
                    });
                    while (!stop.get()) {
                        for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(100))) {
                            seen.add(r.value());
                        }
                        c.commitSync();
                    }
                } catch (Throwable t) {
                    failure = t;
                }
            }, "group-member");
            thread.start();
        }

        @Override
        public void close() throws InterruptedException {
            stop.set(true);
            thread.join(DEADLINE.toMillis());
            if (failure != null) {
                throw new AssertionError("member failed", failure);
            }
        }
    }

    @Test
    void shouldRebalanceThreeMembersWhileConsumingAndCommitEverything(@TempDir Path dir) throws Exception {
        String topic = "events";
        int partitions = 6;
        try (Broker broker = Broker.start(config(dir, 2)); Admin admin = Admin.create(common(broker));
             KafkaProducer<String, String> producer = producer(broker)) {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
            Set<String> seen = ConcurrentHashMap.newKeySet();
            Set<String> sent = ConcurrentHashMap.newKeySet();
            AtomicBoolean producing = new AtomicBoolean(true);
            Thread load = new Thread(() -> {
                int i = 0;
                while (producing.get()) {
                    String v = "v" + i++;
                    try {
                        producer.send(new ProducerRecord<>(topic, "k" + (i % 31), v)).get();
                        sent.add(v);
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                }
            }, "load");
            load.start();
            Properties cp = consumerProps(broker, "g1");
            Member a = new Member(cp, topic, seen);
            await("the first member to own every partition", () -> a.assigned.size() == partitions);
            Member b = new Member(cp, topic, seen);
            await("two members sharing the partitions", () -> !b.assigned.isEmpty()
                && a.assigned.size() + b.assigned.size() == partitions);
            Member c = new Member(cp, topic, seen);
            await("three members sharing the partitions", () -> !c.assigned.isEmpty() && !b.assigned.isEmpty()
                && !a.assigned.isEmpty() && a.assigned.size() + b.assigned.size() + c.assigned.size() == partitions);

            ConsumerGroupDescription d = admin.describeConsumerGroups(List.of("g1")).all().get().get("g1");
            assertEquals(3, d.members().size(), d.toString());
            assertEquals(GroupState.STABLE, d.groupState());
            Collection<GroupListing> listed = admin.listGroups().all().get();
            assertTrue(listed.stream().anyMatch(g -> g.groupId().equals("g1")), listed.toString());
            ExecutionException busy = assertThrows(ExecutionException.class,
                () -> admin.deleteConsumerGroups(List.of("g1")).all().get());
            assertInstanceOf(GroupNotEmptyException.class, busy.getCause());

            c.close(); // leaves the group: the other two take its partitions over
            await("two members after a leave", () -> a.assigned.size() + b.assigned.size() == partitions);
            producing.set(false);
            load.join();
            await("every acknowledged record consumed", () -> seen.containsAll(sent));
            Map<TopicPartition, Long> ends = new HashMap<>();
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < partitions; p++) {
                tps.add(new TopicPartition(topic, p));
            }
            try (KafkaConsumer<String, String> probe = new KafkaConsumer<>(consumerProps(broker, "probe"))) {
                ends.putAll(probe.endOffsets(tps));
            }
            await("committed offsets reaching the log ends", () -> {
                try {
                    Map<TopicPartition, OffsetAndMetadata> committed =
                        admin.listConsumerGroupOffsets("g1").partitionsToOffsetAndMetadata().get();
                    for (TopicPartition tp : tps) {
                        OffsetAndMetadata o = committed.get(tp);
                        if (ends.get(tp) > 0 && (o == null || o.offset() != ends.get(tp))) {
                            return false;
                        }
                    }
                    return true;
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            a.close();
            b.close();
            await("an empty group", () -> {
                try {
                    return admin.describeConsumerGroups(List.of("g1")).all().get().get("g1").groupState()
                        == GroupState.EMPTY;
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            admin.deleteConsumerGroups(List.of("g1")).all().get();
            assertTrue(admin.listConsumerGroupOffsets("g1").partitionsToOffsetAndMetadata().get().isEmpty());
        }
    }

    @Test
    void shouldKeepStaticMembersAcrossRestartsAndExpireSilentOnes(@TempDir Path dir) throws Exception {
        String topic = "static";
        int partitions = 4;
        BrokerConfig cfg = config(dir, 2).toBuilder().groupSessionTimeoutBoundsMs(500, 60_000).build();
        try (Broker broker = Broker.start(cfg); Admin admin = Admin.create(common(broker))) {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
            Set<String> seen = ConcurrentHashMap.newKeySet();
            Properties a = consumerProps(broker, "statics");
            a.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "instance-a");
            a.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "3000");
            a.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "300");
            Properties b = new Properties();
            b.putAll(a);
            b.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "instance-b");
            Member ma = new Member(a, topic, seen);
            Member mb = new Member(b, topic, seen);
            await("two static members sharing the partitions", () -> !ma.assigned.isEmpty() && !mb.assigned.isEmpty()
                && ma.assigned.size() + mb.assigned.size() == partitions);
            ConsumerGroupDescription d = admin.describeConsumerGroups(List.of("statics")).all().get().get("statics");
            assertTrue(d.members().stream().anyMatch(m -> m.groupInstanceId().orElse("").equals("instance-a")),
                d.toString());
            // A static member that closes does not leave: its partitions wait for its session to expire.
            mb.close();
            await("the silent static member expired and its partitions moved", () -> ma.assigned.size() == partitions);
            Member again = new Member(b, topic, seen);
            await("the static member back with its share", () -> !again.assigned.isEmpty()
                && ma.assigned.size() + again.assigned.size() == partitions);
            again.close();
            ma.close();
        }
    }

    @Test
    void shouldResumeFromCommittedOffsetsAfterARestart(@TempDir Path dir) throws Exception {
        String topic = "resume";
        Properties cp;
        try (Broker broker = Broker.start(config(dir, 2));
             KafkaProducer<String, String> producer = producer(broker)) {
            for (int i = 0; i < 100; i++) {
                producer.send(new ProducerRecord<>(topic, "v" + i)).get();
            }
            cp = consumerProps(broker, "resumer");
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
                c.subscribe(List.of(topic));
                int got = 0;
                long end = System.nanoTime() + DEADLINE.toNanos();
                while (got < 60 && System.nanoTime() < end) {
                    got += c.poll(Duration.ofMillis(200)).count();
                }
                c.commitSync(Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(60, "checkpoint")));
            }
        }
        try (Broker broker = Broker.start(config(dir, 2).withPort(0))) {
            Properties again = consumerProps(broker, "resumer");
            again.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none"); // fail unless the committed offset exists
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(again);
                 Admin admin = Admin.create(common(broker))) {
                OffsetAndMetadata o = admin.listConsumerGroupOffsets("resumer").partitionsToOffsetAndMetadata().get()
                    .get(new TopicPartition(topic, 0));
                assertEquals(60, o.offset());
                assertEquals("checkpoint", o.metadata());
                c.subscribe(List.of(topic));
                List<String> values = new ArrayList<>();
                long end = System.nanoTime() + DEADLINE.toNanos();
                while (values.size() < 40 && System.nanoTime() < end) {
                    c.poll(Duration.ofMillis(200)).forEach(r -> values.add(r.value()));
                }
                assertEquals("v60", values.get(0));
                assertEquals(40, values.size());
                assertTrue(admin.listGroups().all().get().stream().anyMatch(g -> g.groupId().equals("resumer")));
            }
        }
    }
}
