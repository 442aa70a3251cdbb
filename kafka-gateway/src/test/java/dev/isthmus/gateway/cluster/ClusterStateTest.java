package dev.isthmus.gateway.cluster;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ClusterStateTest {
    long offset;

    ClusterState apply(ClusterState s, ControllerCommand c, int expectedError) {
        ClusterState.Applied a = s.apply(c, ++offset);
        assertEquals(expectedError, a.result().errorCode(), String.valueOf(a.result()));
        assertEquals(offset, a.state().appliedOffset());
        if (expectedError != 0) {
            assertNotNull(a.result().message());
        }
        return a.state();
    }

    ClusterState brokers(int n, int shards) {
        ClusterState s = ClusterState.EMPTY;
        for (int i = 0; i < n; i++) {
            s = apply(s, new ControllerCommand.RegisterBroker(new BrokerInfo(i, "127.0.0.1", 9092 + i, "127.0.0.1",
                19092 + i, shards)), 0);
        }
        return s;
    }

    @Test
    void shouldSpreadLeadersReplicasAndShardsEvenly() {
        ClusterState s = brokers(3, 2);
        s = apply(s, ControllerCommand.CreateTopic.of("a", 6, 3, Map.of()), 0);
        s = apply(s, ControllerCommand.CreateTopic.of("b", 3, 2, Map.of()), 0);
        s = apply(s, ControllerCommand.CreateTopic.of("c", 1, 1, Map.of()), 0);
        int[] leaders = new int[3];
        int[] replicas = new int[3];
        int[][] shards = new int[3][2];
        TreeSet<Long> groups = new TreeSet<>();
        for (TopicInfo t : s.topics()) {
            for (PartitionInfo p : t.partitions()) {
                assertTrue(groups.add(p.groupId()), "group ids are unique");
                leaders[p.preferredLeader()]++;
                for (int i = 0; i < p.replicas().length; i++) {
                    replicas[p.replicas()[i]]++;
                    shards[p.replicas()[i]][p.shards()[i]]++;
                    for (int j = 0; j < i; j++) {
                        assertTrue(p.replicas()[j] != p.replicas()[i], "distinct replicas in " + p);
                    }
                }
            }
        }
        // 10 partitions, 25 replicas over 3 brokers with 2 shards each
        for (int b = 0; b < 3; b++) {
            assertTrue(leaders[b] == 3 || leaders[b] == 4, "leaders " + java.util.Arrays.toString(leaders));
            assertTrue(replicas[b] == 8 || replicas[b] == 9, "replicas " + java.util.Arrays.toString(replicas));
            assertTrue(Math.abs(shards[b][0] - shards[b][1]) <= 1, "shards of broker " + b + ": "
                + java.util.Arrays.toString(shards[b]));
        }
        assertEquals(11, s.nextGroupId());
        assertEquals(groups.first(), 1L);
    }

    @Test
    void shouldRefuseBadCommandsWithKafkaErrorCodes() {
        ClusterState s = brokers(2, 1);
        s = apply(s, ControllerCommand.CreateTopic.of("t", 2, 2, Map.of("retention.ms", "1000")), 0);
        long groupsBefore = s.nextGroupId();
        s = apply(s, ControllerCommand.CreateTopic.of("t", 1, 1, Map.of()), ControllerErrors.TOPIC_ALREADY_EXISTS);
        s = apply(s, ControllerCommand.CreateTopic.of("bad name", 1, 1, Map.of()), ControllerErrors.INVALID_TOPIC_EXCEPTION);
        s = apply(s, ControllerCommand.CreateTopic.of("..", 1, 1, Map.of()), ControllerErrors.INVALID_TOPIC_EXCEPTION);
        s = apply(s, ControllerCommand.CreateTopic.of("u", 1, 3, Map.of()), ControllerErrors.INVALID_REPLICATION_FACTOR);
        s = apply(s, ControllerCommand.CreateTopic.of("u", 0, 1, Map.of()), ControllerErrors.INVALID_PARTITIONS);
        s = apply(s, ControllerCommand.CreateTopic.of("u", 1, 1, Map.of("bad key!", "x")), ControllerErrors.INVALID_CONFIG);
        s = apply(s, new ControllerCommand.CreateTopic("u", UUID.randomUUID(), 0, 0, new TreeMap<>(),
            List.of(new int[]{0, 0})), ControllerErrors.INVALID_REPLICA_ASSIGNMENT);
        s = apply(s, new ControllerCommand.CreateTopic("u", UUID.randomUUID(), 0, 0, new TreeMap<>(),
            List.of(new int[]{0, 7})), ControllerErrors.INVALID_REPLICA_ASSIGNMENT);
        s = apply(s, new ControllerCommand.DeleteTopic("nope"), ControllerErrors.UNKNOWN_TOPIC_OR_PARTITION);
        s = apply(s, new ControllerCommand.CreatePartitions("t", 2, List.of()), ControllerErrors.INVALID_PARTITIONS);
        s = apply(s, new ControllerCommand.CreatePartitions("nope", 5, List.of()), ControllerErrors.UNKNOWN_TOPIC_OR_PARTITION);
        s = apply(s, ControllerCommand.AlterConfigs.of("nope", Map.of("a", "b"), java.util.Set.of()),
            ControllerErrors.UNKNOWN_TOPIC_OR_PARTITION);
        s = apply(s, ControllerCommand.AlterConfigs.of("t", Map.of("a", "b"), java.util.Set.of("a")),
            ControllerErrors.INVALID_CONFIG);
        assertEquals(groupsBefore, s.nextGroupId(), "failed commands allocate no group ids");
        assertEquals(1, s.topics().size());
    }

    @Test
    void shouldCreatePartitionsAlterConfigsAndDeleteTopics() {
        ClusterState s = brokers(3, 4);
        s = apply(s, ControllerCommand.CreateTopic.of("t", 2, 3, Map.of("cleanup.policy", "delete")), 0);
        UUID id = s.topic("t").id();
        s = apply(s, new ControllerCommand.CreatePartitions("t", 5, List.of()), 0);
        assertEquals(5, s.topic("t").partitions().size());
        assertEquals(id, s.topic("t").id());
        assertEquals(3, s.topic("t").partition(4).replicas().length);
        s = apply(s, new ControllerCommand.CreatePartitions("t", 6, List.of(new int[]{2, 1, 0})), 0);
        assertArrayEquals(new int[]{2, 1, 0}, s.topic("t").partition(5).replicas());
        s = apply(s, ControllerCommand.AlterConfigs.of("t", Map.of("retention.ms", "5"), java.util.Set.of("cleanup.policy")), 0);
        assertEquals(Map.of("retention.ms", "5"), s.topic("t").configs());
        assertEquals(s.topic(id), s.topic("t"));
        assertEquals(6, s.replicasOn(0).size());
        s = apply(s, new ControllerCommand.DeleteTopic("t"), 0);
        assertNull(s.topic("t"));
        assertNull(s.topic(id));
        assertEquals(0, s.replicasOn(0).size());
    }

    @Test
    void shouldRoundTripCommandsAndSnapshots() {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("ClusterStateTest seed " + seed);
        SplittableRandom r = new SplittableRandom(seed);
        ClusterState s = brokers(1 + r.nextInt(5), 1 + r.nextInt(4));
        for (int i = 0; i < 200; i++) {
            ControllerCommand c = switch (r.nextInt(7)) {
                case 4 -> new ControllerCommand.AllocateProducerIds(r.nextInt(5), 1 + r.nextInt(2000));
                case 5 -> new ControllerCommand.CreateAcls(List.of(randomAcl(r), randomAcl(r)));
                case 6 -> new ControllerCommand.DeleteAcls(List.of(randomAcl(r)));
                case 0 -> ControllerCommand.CreateTopic.of("t" + r.nextInt(20), 1 + r.nextInt(8), 1 + r.nextInt(3),
                    Map.of("k" + r.nextInt(3), "v" + r.nextInt(100)));
                case 1 -> new ControllerCommand.DeleteTopic("t" + r.nextInt(20));
                case 2 -> new ControllerCommand.CreatePartitions("t" + r.nextInt(20), 1 + r.nextInt(12), List.of());
                default -> ControllerCommand.AlterConfigs.of("t" + r.nextInt(20), Map.of("x", "y" + i),
                    java.util.Set.of("k" + r.nextInt(3)));
            };
            ControllerCommand back = ControllerCommand.decode(c.encode());
            assertArrayEquals(c.encode(), back.encode(), "command round trip (seed " + seed + ")");
            ClusterState.Applied a1 = s.apply(c, ++offset);
            ClusterState.Applied a2 = s.apply(back, offset);
            assertEquals(a1.state(), a2.state(), "deterministic apply (seed " + seed + ")");
            s = a1.state();
            assertEquals(s, ClusterState.decode(s.encode()), "snapshot round trip (seed " + seed + ")");
        }
    }

    private static AclBinding randomAcl(SplittableRandom r) {
        return new AclBinding(AclBinding.TOPIC, "t" + r.nextInt(4), r.nextBoolean() ? AclBinding.LITERAL
            : AclBinding.PREFIXED, "User:u" + r.nextInt(3), "*", AclBinding.READ, AclBinding.ALLOW);
    }

    @Test
    void shouldStoreAclsOnceAndKeepThemAcrossSnapshots() {
        ClusterState s = brokers(1, 1);
        AclBinding read = new AclBinding(AclBinding.TOPIC, "orders", AclBinding.LITERAL, "User:alice", "*",
            AclBinding.READ, AclBinding.ALLOW);
        AclBinding deny = new AclBinding(AclBinding.GROUP, "g-", AclBinding.PREFIXED, "User:*", "10.0.0.1",
            AclBinding.ALL, AclBinding.DENY);
        ClusterState.Applied a = s.apply(new ControllerCommand.CreateAcls(List.of(read, deny, read)), ++offset);
        assertTrue(a.result().isOk(), a.result().toString());
        assertEquals(2, a.result().value(), "a binding listed twice is stored once");
        s = a.state();
        assertEquals(new TreeSet<>(List.of(read, deny)), s.acls());
        java.util.SortedSet<AclBinding> before = s.acls();
        s = apply(s, ControllerCommand.CreateTopic.of("orders", 1, 1, Map.of()), 0);
        assertTrue(before == s.acls(), "other commands keep the same ACL set object (shards skip rebuilding)");
        ClusterState.Applied again = s.apply(new ControllerCommand.CreateAcls(List.of(read)), ++offset);
        assertEquals(0, again.result().value());
        assertTrue(before == again.state().acls(), "nothing new: the same set");
        s = again.state();
        assertEquals(s, ClusterState.decode(s.encode()), "ACLs survive a snapshot");
        assertEquals(2, ClusterState.decode(s.encode()).acls().size());
        ClusterState.Applied del = s.apply(new ControllerCommand.DeleteAcls(List.of(deny, deny,
            new AclBinding(AclBinding.TOPIC, "absent", AclBinding.LITERAL, "User:x", "*", AclBinding.READ,
                AclBinding.ALLOW))), ++offset);
        assertTrue(del.result().isOk());
        assertEquals(1, del.result().value(), "only the present binding counts as removed");
        assertEquals(new TreeSet<>(List.of(read)), del.state().acls());
    }

    @Test
    void shouldRefuseAnInvalidAclWithoutStoringAnyOfTheCommand() {
        ClusterState s = brokers(1, 1);
        AclBinding good = new AclBinding(AclBinding.TOPIC, "t", AclBinding.LITERAL, "User:a", "*", AclBinding.READ,
            AclBinding.ALLOW);
        AclBinding bad = new AclBinding(AclBinding.CLUSTER, "not-the-cluster", AclBinding.LITERAL, "User:a", "*",
            AclBinding.ALTER, AclBinding.ALLOW);
        s = apply(s, new ControllerCommand.CreateAcls(List.of(good, bad)), ControllerErrors.INVALID_REQUEST);
        assertTrue(s.acls().isEmpty());
    }

    @Test
    void shouldReadVersionTwoToFourSnapshots() {
        ClusterState s = brokers(2, 2);
        s = apply(s, ControllerCommand.CreateTopic.of("t", 2, 1, Map.of()), 0);
        s = s.apply(new ControllerCommand.AllocateProducerIds(0, 1000), ++offset).state();
        // Versions 2 to 4, written field by field: no listeners after each broker (before 5), no ACL count
        // (before 4), no reassignments count (before 3).
        for (int version = 2; version <= 4; version++) {
            Wire.Writer w = new Wire.Writer().i16(version).i64(s.appliedOffset()).i64(s.nextGroupId())
                .i64(s.nextProducerId());
            w.i32(s.brokers().size());
            s.brokers().forEach(b -> b.write(w));
            w.i32(s.topics().size());
            s.topics().forEach(t -> t.write(w));
            if (version >= 3) {
                w.i32(0);
            }
            if (version >= 4) {
                w.i32(0);
            }
            ClusterState back = ClusterState.decode(w.bytes());
            assertEquals(s, back, "version " + version);
            assertTrue(back.acls().isEmpty());
        }
        byte[] v10 = s.encode();
        v10[1] = 10;
        assertThrows(ControllerFormatException.class, () -> ClusterState.decode(v10), "a newer layout is refused");
    }

    ClusterState racked(String... racks) {
        ClusterState s = ClusterState.EMPTY;
        for (int i = 0; i < racks.length; i++) {
            s = apply(s, new ControllerCommand.RegisterBroker(new BrokerInfo(i, "127.0.0.1", 9092 + i, "127.0.0.1",
                19092 + i, 2, List.of(), racks[i])), 0);
        }
        return s;
    }

    @Test
    void shouldKeepRacksInVersionNineAndReadVersionFiveWithout() {
        ClusterState s = racked("a", "b", null);
        s = apply(s, ControllerCommand.CreateTopic.of("t", 3, 2, Map.of()), 0);
        ClusterState back = ClusterState.decode(s.encode());
        assertEquals(s, back);
        assertEquals("a", back.broker(0).rack());
        assertEquals("b", back.broker(1).rack());
        assertNull(back.broker(2).rack());
        byte[] snap = s.encode();
        assertEquals(9, (snap[0] << 8) | (snap[1] & 0xff), "this branch writes version 9");
        // Version 5, field by field: listeners after each broker, no rack; reassignments and ACL counts.
        Wire.Writer w = new Wire.Writer().i16(5).i64(s.appliedOffset()).i64(s.nextGroupId()).i64(s.nextProducerId());
        w.i32(s.brokers().size());
        s.brokers().forEach(b -> {
            b.write(w);
            b.writeListeners(w);
        });
        w.i32(s.topics().size());
        s.topics().forEach(t -> t.write(w));
        w.i32(0).i32(0);
        ClusterState v5 = ClusterState.decode(w.bytes());
        assertEquals(s.topics().size(), v5.topics().size());
        for (BrokerInfo b : v5.brokers()) {
            assertNull(b.rack(), "version 5 has no racks");
            assertEquals(s.broker(b.id()).withRack(null), b);
        }
        // A RegisterBroker written before racks (listeners, no rack flag) reads as a broker without a rack.
        BrokerInfo old = new BrokerInfo(7, "h", 9092, "h", 9990, 2);
        Wire.Writer c = new Wire.Writer().i8(1).i8(ControllerCommand.VERSION);
        old.write(c);
        old.writeListeners(c);
        assertEquals(new ControllerCommand.RegisterBroker(old), ControllerCommand.decode(c.bytes()));
        ControllerCommand withRack = new ControllerCommand.RegisterBroker(old.withRack("rack-7"));
        assertEquals(withRack, ControllerCommand.decode(withRack.encode()));
    }

    @Test
    void shouldRefuseABadRackName() {
        assertThrows(IllegalArgumentException.class, () -> new BrokerInfo(0, "h", 1, "h", 2, 1, List.of(), ""));
        assertThrows(IllegalArgumentException.class, () -> new BrokerInfo(0, "h", 1, "h", 2, 1, List.of(), "a\nb"));
        assertThrows(IllegalArgumentException.class, () -> new BrokerInfo(0, "h", 1, "h", 2, 1, List.of(),
            "r".repeat(BrokerInfo.MAX_RACK_CHARS + 1)));
    }

    @Test
    void shouldPutEachPartitionsReplicasOnDistinctRacksAndSpreadLoad() {
        // Six brokers in three racks (two each): every RF-3 partition has one replica per rack.
        ClusterState s = racked("a", "a", "b", "b", "c", "c");
        s = apply(s, ControllerCommand.CreateTopic.of("t", 12, 3, Map.of()), 0);
        int[] replicas = new int[6];
        int[] leaders = new int[6];
        for (PartitionInfo p : s.topic("t").partitions()) {
            TreeSet<String> racks = new TreeSet<>();
            for (int b : p.replicas()) {
                racks.add(s.broker(b).rack());
                replicas[b]++;
            }
            leaders[p.preferredLeader()]++;
            assertEquals(3, racks.size(), "one replica per rack: " + p);
        }
        for (int b = 0; b < 6; b++) {
            assertEquals(6, replicas[b], "replicas " + java.util.Arrays.toString(replicas));
            assertEquals(2, leaders[b], "leaders " + java.util.Arrays.toString(leaders));
        }
        // Two racks for RF 3: no rack holds more than two of a partition's replicas, and each holds at least one.
        ClusterState two = racked("x", "x", "x", "y", "y", "y");
        two = apply(two, ControllerCommand.CreateTopic.of("u", 6, 3, Map.of()), 0);
        for (PartitionInfo p : two.topic("u").partitions()) {
            int inX = 0;
            for (int b : p.replicas()) {
                inX += two.broker(b).rack().equals("x") ? 1 : 0;
            }
            assertTrue(inX == 1 || inX == 2, "spread over both racks: " + p);
        }
        // More replicas than racks with one broker short of a rack: still distinct brokers, evenly spread.
        ClusterState few = racked("a", "b", "a", "b");
        few = apply(few, ControllerCommand.CreateTopic.of("v", 4, 4, Map.of()), 0);
        for (PartitionInfo p : few.topic("v").partitions()) {
            assertEquals(4, java.util.Arrays.stream(p.replicas()).distinct().count());
        }
    }

    @Test
    void shouldHandOutEachProducerIdOnceInBlocks() {
        ClusterState s = brokers(3, 2);
        long expected = 0;
        for (int i = 0; i < 5; i++) {
            ClusterState.Applied a = s.apply(new ControllerCommand.AllocateProducerIds(i % 3, 1000), ++offset);
            assertTrue(a.result().isOk(), a.result().toString());
            assertEquals(expected, a.result().value(), "block " + i + " starts where the previous one ended");
            expected += 1000;
            s = a.state();
            assertEquals(expected, s.nextProducerId());
            assertEquals(s, ClusterState.decode(s.encode()), "the counter survives a snapshot");
        }
        ClusterState.Applied bad = s.apply(new ControllerCommand.AllocateProducerIds(0, 0), ++offset);
        assertFalse(bad.result().isOk());
        assertEquals(expected, bad.state().nextProducerId(), "a refused allocation hands out nothing");
        ControllerResult r = ControllerResult.ok(7, 4000);
        assertEquals(r, ControllerResult.decode(r.encode()));
    }

    @Test
    void shouldReadVersionOneSnapshotsWithoutAProducerIdCounter() {
        ClusterState s = brokers(2, 2);
        // Version 1: no producer id counter after nextGroupId, and (as version 2) no listeners after each broker.
        Wire.Writer v1 = new Wire.Writer().i16(1).i64(s.appliedOffset()).i64(s.nextGroupId());
        v1.i32(s.brokers().size());
        s.brokers().forEach(b -> b.write(v1));
        v1.i32(s.topics().size());
        s.topics().forEach(t -> t.write(v1));
        ClusterState back = ClusterState.decode(v1.bytes());
        assertEquals(0, back.nextProducerId());
        assertEquals(s.brokers().size(), back.brokers().size());
        assertEquals(s.appliedOffset(), back.appliedOffset());
    }

    @Test
    void shouldRejectDamagedRecords() {
        byte[] good = ControllerCommand.CreateTopic.of("t", 1, 1, Map.of()).encode();
        assertThrows(ControllerFormatException.class, () -> ControllerCommand.decode(java.util.Arrays.copyOf(good, 10)));
        byte[] future = good.clone();
        future[1] = 9;
        assertTrue(assertThrows(ControllerFormatException.class, () -> ControllerCommand.decode(future)).getMessage()
            .contains("version 9"));
        byte[] unknown = good.clone();
        unknown[0] = 99;
        assertThrows(ControllerFormatException.class, () -> ControllerCommand.decode(unknown));
        byte[] snap = brokers(2, 2).encode();
        assertThrows(ControllerFormatException.class, () -> ClusterState.decode(java.util.Arrays.copyOf(snap, snap.length - 3)));
    }
}
