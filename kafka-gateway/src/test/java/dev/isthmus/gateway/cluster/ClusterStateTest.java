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
            ControllerCommand c = switch (r.nextInt(12)) {
                case 9 -> new ControllerCommand.SetControllerVoters(r.ints(1 + r.nextInt(3), 0, 6).toArray());
                case 10 -> new ControllerCommand.AlterBrokerConfigs(r.nextInt(6),
                    new TreeMap<>(Map.of("leader.replication.throttled.rate", Integer.toString(r.nextInt(1000)))),
                    r.nextBoolean() ? new TreeSet<>(java.util.Set.of("follower.replication.throttled.rate"))
                        : new TreeSet<>());
                case 11 -> new ControllerCommand.SetBalancing(r.nextBoolean());
                case 7 -> new ControllerCommand.SetMaintenance(r.nextInt(6), r.nextBoolean());
                case 8 -> new ControllerCommand.SetDecommission(r.nextInt(6), r.nextInt(4) == 0);
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
    void shouldReadVersionTwoToFiveSnapshots() {
        ClusterState s = brokers(2, 2);
        s = apply(s, ControllerCommand.CreateTopic.of("t", 2, 1, Map.of()), 0);
        s = s.apply(new ControllerCommand.AllocateProducerIds(0, 1000), ++offset).state();
        // Versions 2 to 5, written field by field: no SCRAM count (before 6), no listeners after each broker
        // (before 5), no ACL count (before 4), no reassignments count (before 3).
        for (int version = 2; version <= 5; version++) {
            int v = version;
            Wire.Writer w = new Wire.Writer().i16(version).i64(s.appliedOffset()).i64(s.nextGroupId())
                .i64(s.nextProducerId());
            w.i32(s.brokers().size());
            s.brokers().forEach(b -> {
                b.write(w);
                if (v >= 5) {
                    b.writeListeners(w);
                }
            });
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
            assertTrue(back.scramCredentials().isEmpty());
        }
        byte[] future = s.encode();
        future[1] = 99;
        assertThrows(ControllerFormatException.class, () -> ClusterState.decode(future), "a newer layout is refused");
    }

    static UserScramCredential scram(String name, byte mechanism, int iterations, int seed) {
        int n = UserScramCredential.keyBytes(mechanism) < 0 ? 32 : UserScramCredential.keyBytes(mechanism);
        byte[] salt = new byte[16];
        byte[] stored = new byte[n];
        byte[] server = new byte[n];
        new SplittableRandom(seed).nextBytes(salt);
        new SplittableRandom(seed + 1).nextBytes(stored);
        new SplittableRandom(seed + 2).nextBytes(server);
        return new UserScramCredential(name, mechanism, salt, stored, server, iterations);
    }

    @Test
    void shouldStoreReplaceAndDeleteScramCredentialsWithKafkasErrors() {
        ClusterState s = brokers(1, 1);
        UserScramCredential alice256 = scram("alice", UserScramCredential.SCRAM_SHA_256, 8192, 1);
        UserScramCredential alice512 = scram("alice", UserScramCredential.SCRAM_SHA_512, 4096, 2);
        s = apply(s, new ControllerCommand.UpsertUserScramCredential(alice256), 0);
        s = apply(s, new ControllerCommand.UpsertUserScramCredential(alice512), 0);
        var acls = s.acls();
        var creds = s.scramCredentials();
        assertEquals(List.of(alice256, alice512), List.copyOf(creds.values()));
        // Other commands keep the very same map (the gateway rebuilds its stores only on a change of identity).
        s = apply(s, ControllerCommand.CreateTopic.of("t", 1, 1, Map.of()), 0);
        assertTrue(creds == s.scramCredentials());
        assertTrue(acls == s.acls());
        // A replacement: the new salt and keys, never two credentials of one user and mechanism.
        UserScramCredential again = scram("alice", UserScramCredential.SCRAM_SHA_256, 16384, 7);
        s = apply(s, new ControllerCommand.UpsertUserScramCredential(again), 0);
        assertEquals(again, s.scramCredentials().get(again.key()));
        assertEquals(2, s.scramCredentials().size());
        // The command's wire form and the snapshot keep every byte.
        ControllerCommand c = new ControllerCommand.UpsertUserScramCredential(again);
        assertEquals(c, ControllerCommand.decode(c.encode()));
        assertEquals(s, ClusterState.decode(s.encode()));
        assertArrayEquals(again.storedKey(), ClusterState.decode(s.encode()).scramCredentials().get(again.key())
            .storedKey());
        // Kafka's errors, and a refused command changes nothing.
        ClusterState before = s;
        s = apply(s, new ControllerCommand.UpsertUserScramCredential(scram("bob", UserScramCredential.SCRAM_SHA_256,
            4095, 3)), ControllerErrors.UNACCEPTABLE_CREDENTIAL);
        s = apply(s, new ControllerCommand.UpsertUserScramCredential(scram("bob", UserScramCredential.SCRAM_SHA_256,
            16385, 3)), ControllerErrors.UNACCEPTABLE_CREDENTIAL);
        s = apply(s, new ControllerCommand.UpsertUserScramCredential(scram("", UserScramCredential.SCRAM_SHA_256,
            4096, 3)), ControllerErrors.UNACCEPTABLE_CREDENTIAL);
        s = apply(s, new ControllerCommand.UpsertUserScramCredential(scram("bob", (byte) 3, 4096, 3)),
            ControllerErrors.UNSUPPORTED_SASL_MECHANISM);
        s = apply(s, new ControllerCommand.DeleteUserScramCredential("bob", UserScramCredential.SCRAM_SHA_256),
            ControllerErrors.RESOURCE_NOT_FOUND);
        s = apply(s, new ControllerCommand.DeleteUserScramCredential("alice", (byte) 0),
            ControllerErrors.UNSUPPORTED_SASL_MECHANISM);
        assertTrue(before.scramCredentials() == s.scramCredentials());
        s = apply(s, new ControllerCommand.DeleteUserScramCredential("alice", UserScramCredential.SCRAM_SHA_512), 0);
        assertEquals(List.of(again), List.copyOf(s.scramCredentials().values()));
        ControllerCommand d = new ControllerCommand.DeleteUserScramCredential("alice",
            UserScramCredential.SCRAM_SHA_512);
        assertEquals(d, ControllerCommand.decode(d.encode()));
        s = apply(s, d, ControllerErrors.RESOURCE_NOT_FOUND);
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
        assertEquals(10, (snap[0] << 8) | (snap[1] & 0xff), "this branch writes version 10");
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

    // ------------------------------------------------------------------ client quotas (snapshot version 7)

    static ClientQuotaAlteration set(ClientQuotaEntity e, String key, double value) {
        return ClientQuotaAlteration.of(e, Map.of(key, value), java.util.Set.of());
    }

    @Test
    void shouldStoreClientQuotasPerEntityAndKeepThemInSnapshots() {
        ClusterState s = brokers(1, 1);
        ClientQuotaEntity alice = ClientQuotaEntity.user("alice");
        ClientQuotaEntity defaultClient = ClientQuotaEntity.clientId(null);
        ClientQuotaEntity aliceC1 = ClientQuotaEntity.userClientId("alice", "c1");
        ClientQuotaEntity anyUserDefaultClient = ClientQuotaEntity.userClientId(null, null);
        s = apply(s, new ControllerCommand.AlterClientQuotas(List.of(
            ClientQuotaAlteration.of(alice, Map.of("producer_byte_rate", 1048576.0, "request_percentage", 12.5),
                java.util.Set.of()),
            set(defaultClient, "consumer_byte_rate", 2097152.0),
            set(aliceC1, "producer_byte_rate", 4096.0),
            set(anyUserDefaultClient, "consumer_byte_rate", 1000.0))), 0);
        assertEquals(4, s.quotas().size());
        assertEquals(Map.of("producer_byte_rate", 1048576.0, "request_percentage", 12.5), s.quotas().get(alice));
        assertEquals(Map.of("consumer_byte_rate", 2097152.0), s.quotas().get(defaultClient));
        assertEquals(Map.of("consumer_byte_rate", 1000.0), s.quotas().get(anyUserDefaultClient));
        assertEquals(s, ClusterState.decode(s.encode()), "the quotas survive a snapshot (version 7)");
        assertEquals(s.quotas(), ClusterState.decode(s.encode()).quotas());

        // Removing one key keeps the other; removing the last removes the entity; a key absent is no error.
        ClusterState.Applied a = s.apply(new ControllerCommand.AlterClientQuotas(List.of(
            ClientQuotaAlteration.of(alice, Map.of(), java.util.Set.of("request_percentage")),
            ClientQuotaAlteration.of(aliceC1, Map.of(), java.util.Set.of("producer_byte_rate", "consumer_byte_rate")))),
            ++offset);
        assertTrue(a.result().isOk(), a.result().toString());
        assertEquals(2, a.result().value(), "two entities changed");
        s = a.state();
        assertEquals(Map.of("producer_byte_rate", 1048576.0), s.quotas().get(alice));
        assertNull(s.quotas().get(aliceC1));
        assertEquals(3, s.quotas().size());

        // Setting what is already set changes nothing: the same map, so shards need not rebuild.
        var before = s.quotas();
        a = s.apply(new ControllerCommand.AlterClientQuotas(List.of(set(alice, "producer_byte_rate", 1048576.0))),
            ++offset);
        assertEquals(0, a.result().value());
        assertTrue(before == a.state().quotas(), "unchanged quotas keep their identity");
        // Another command keeps them too.
        s = apply(a.state(), ControllerCommand.CreateTopic.of("t", 1, 1, Map.of()), 0);
        assertTrue(before == s.quotas());
    }

    @Test
    void shouldRefuseAnInvalidQuotaAlterationWithoutApplyingAnyOfTheCommand() {
        ClusterState s = brokers(1, 1);
        ClientQuotaEntity bob = ClientQuotaEntity.user("bob");
        List<ClientQuotaAlteration> bad = List.of(
            set(ClientQuotaEntity.user("x"), "producer_byte_rate", 1.5), // not a whole number of bytes
            set(ClientQuotaEntity.user("x"), "no_such_quota", 1),
            set(ClientQuotaEntity.user(""), "producer_byte_rate", 10),
            set(new ClientQuotaEntity(false, null, false, null), "producer_byte_rate", 10),
            set(ClientQuotaEntity.user("x"), "producer_byte_rate", 0),
            set(ClientQuotaEntity.user("x"), "request_percentage", Double.NaN),
            set(ClientQuotaEntity.user("x"), "controller_mutation_rate", 10));
        for (ClientQuotaAlteration b : bad) {
            ClusterState.Applied a = s.apply(new ControllerCommand.AlterClientQuotas(List.of(set(bob, "producer_byte_rate",
                100), b)), ++offset);
            assertEquals(ControllerErrors.INVALID_REQUEST, a.result().errorCode(), b.toString());
            assertNotNull(a.result().message());
            assertTrue(a.state().quotas().isEmpty(), "nothing of a refused command is stored: " + b);
        }
        ClusterState.Applied dup = s.apply(new ControllerCommand.AlterClientQuotas(List.of(set(bob, "producer_byte_rate",
            100), set(bob, "consumer_byte_rate", 100))), ++offset);
        assertEquals(ControllerErrors.INVALID_REQUEST, dup.result().errorCode());
        assertTrue(dup.result().message().contains("duplicate entity"), dup.result().message());
        assertEquals("Invalid configuration key no_such_quota", bad.get(1).problem());
        assertEquals("Configuration producer_byte_rate must be a Long value", bad.get(0).problem());
    }

    @Test
    void shouldEncodeAndDecodeQuotaCommands() {
        ControllerCommand c = new ControllerCommand.AlterClientQuotas(List.of(
            ClientQuotaAlteration.of(ClientQuotaEntity.userClientId(null, "c-1"), Map.of("producer_byte_rate", 1e6,
                "request_percentage", 0.25), java.util.Set.of("consumer_byte_rate")),
            ClientQuotaAlteration.of(ClientQuotaEntity.clientId(null), Map.of(), java.util.Set.of("producer_byte_rate")),
            set(ClientQuotaEntity.user("\u00e9l\u00e8ve"), "consumer_byte_rate", 1)));
        assertEquals(c, ControllerCommand.decode(c.encode()));
        byte[] damaged = c.encode();
        damaged[6] = 0x10; // the first entity's flags: no component
        assertThrows(ControllerFormatException.class, () -> ControllerCommand.decode(damaged));
    }

    @Test
    void shouldReadVersionFiveSnapshotsWithoutQuotasAndRefuseQuotasCutShort() {
        ClusterState s = brokers(2, 1);
        s = apply(s, new ControllerCommand.AlterClientQuotas(List.of(set(ClientQuotaEntity.user("a"),
            "producer_byte_rate", 5))), 0);
        byte[] v7 = s.encode();
        // Version 5, written field by field (brokers with listeners, topics, reassignments, ACLs): no quotas.
        ClusterState withoutQuotas = brokers(2, 1);
        Wire.Writer w = new Wire.Writer().i16(5).i64(withoutQuotas.appliedOffset()).i64(withoutQuotas.nextGroupId())
            .i64(withoutQuotas.nextProducerId());
        w.i32(withoutQuotas.brokers().size());
        withoutQuotas.brokers().forEach(b -> {
            b.write(w);
            b.writeListeners(w);
        });
        w.i32(withoutQuotas.topics().size());
        withoutQuotas.topics().forEach(t -> t.write(w));
        w.i32(0).i32(0);
        ClusterState back = ClusterState.decode(w.bytes());
        assertTrue(back.quotas().isEmpty());
        assertEquals(withoutQuotas.brokers().size(), back.brokers().size());
        assertEquals(withoutQuotas, back);
        assertEquals(s.quotas(), ClusterState.decode(v7).quotas());
        assertThrows(ControllerFormatException.class, () -> ClusterState.decode(java.util.Arrays.copyOf(v7,
            v7.length - 3)));
    }

    @Test
    void shouldReadVersionFiveSnapshotsWithoutNodeModesAndKeepThemFromVersionEight() {
        ClusterState s = brokers(3, 1);
        s = apply(s, ControllerCommand.CreateTopic.of("t", 2, 2, Map.of()), 0);
        // Version 5, written field by field: brokers with listeners, topics, reassignments, ACLs; no node modes.
        Wire.Writer w = new Wire.Writer().i16(5).i64(s.appliedOffset()).i64(s.nextGroupId()).i64(s.nextProducerId());
        w.i32(s.brokers().size());
        s.brokers().forEach(b -> {
            b.write(w);
            b.writeListeners(w);
        });
        w.i32(s.topics().size());
        s.topics().forEach(t -> t.write(w));
        w.i32(0);
        w.i32(0);
        ClusterState five = ClusterState.decode(w.bytes());
        assertEquals(s, five);
        assertEquals(NodeModes.NONE, five.modes());

        s = apply(s, new ControllerCommand.SetMaintenance(1, true), 0);
        s = apply(s, new ControllerCommand.SetDecommission(2, true), 0);
        ClusterState eight = ClusterState.decode(s.encode());
        assertEquals(s, eight);
        assertTrue(eight.modes().inMaintenance(1));
        assertTrue(eight.modes().decommissioning(2));
        assertFalse(eight.modes().inMaintenance(2));
        assertTrue(java.nio.ByteBuffer.wrap(s.encode()).getShort() >= 8, "the snapshot is written as version 8 or later");
    }

    @Test
    void shouldSetControllerVotersAndKeepThemInVersionTenAndReadVersionNineWithout() {
        ClusterState s = brokers(4, 1);
        assertArrayEquals(new int[0], s.modes().controllerVoters(), "never set: the bootstrap voters stand");
        s = apply(s, new ControllerCommand.SetControllerVoters(new int[0]), ControllerErrors.INVALID_REQUEST);
        ClusterState.Applied unknown = s.apply(new ControllerCommand.SetControllerVoters(new int[] {0, 1, 7}), ++offset);
        assertEquals(ControllerErrors.INVALID_REQUEST, unknown.result().errorCode());
        assertTrue(unknown.result().message().contains("node 7 is not a registered broker"), unknown.result().message());
        s = apply(unknown.state(), new ControllerCommand.SetDecommission(3, true), 0);
        ClusterState.Applied decommissioning = s.apply(new ControllerCommand.SetControllerVoters(new int[] {0, 1, 3}),
            ++offset);
        assertEquals(ControllerErrors.INVALID_REQUEST, decommissioning.result().errorCode());
        assertTrue(decommissioning.result().message().contains("decommissioned"), decommissioning.result().message());
        s = apply(decommissioning.state(), new ControllerCommand.SetDecommission(3, false), 0);
        s = apply(s, new ControllerCommand.SetControllerVoters(new int[] {3, 1, 0, 1}), 0);
        assertArrayEquals(new int[] {0, 1, 3}, s.modes().controllerVoters(), "ascending, each once");
        ClusterState same = apply(s, new ControllerCommand.SetControllerVoters(new int[] {0, 1, 3}), 0);
        assertEquals(s.modes(), same.modes(), "setting what is set changes nothing");
        // A voter that is decommissioned later may stay a voter (the operator removes it when a node takes its seat).
        s = apply(same, new ControllerCommand.SetDecommission(3, true), 0);
        s = apply(s, new ControllerCommand.SetControllerVoters(new int[] {0, 1, 2, 3}), 0);
        ControllerCommand c = new ControllerCommand.SetControllerVoters(new int[] {2, 0});
        assertEquals(c, ControllerCommand.decode(c.encode()));

        byte[] ten = s.encode();
        assertEquals(10, java.nio.ByteBuffer.wrap(ten).getShort());
        ClusterState back = ClusterState.decode(ten);
        assertEquals(s, back);
        assertArrayEquals(new int[] {0, 1, 2, 3}, back.modes().controllerVoters());
        // Version 9: the same fields up to the node modes, which end with decommissioning (no controller voters, and
        // none of what follows them in version 10: broker configs, here none (i32 0), and the balancing flag (i8)).
        int votersBytes = 4 + 4 * s.modes().controllerVoters().length;
        byte[] nine = java.util.Arrays.copyOf(ten, ten.length - votersBytes - 4 - 1);
        java.nio.ByteBuffer.wrap(nine).putShort((short) 9);
        ClusterState v9 = ClusterState.decode(nine);
        assertArrayEquals(new int[0], v9.modes().controllerVoters(), "version 9 predates controller voters");
        assertArrayEquals(s.modes().decommissioning(), v9.modes().decommissioning());
        assertEquals(s.brokers().size(), v9.brokers().size());
        assertEquals(s.appliedOffset(), v9.appliedOffset());
    }

    @Test
    void shouldKeepBrokerThrottlesAndTheBalancingFlagInVersionTen() {
        ClusterState s = brokers(3, 1);
        String rate = "leader.replication.throttled.rate";
        ControllerCommand set = new ControllerCommand.AlterBrokerConfigs(1, new TreeMap<>(Map.of(rate, "100000",
            "follower.replication.throttled.rate", "5")), new TreeSet<>());
        assertEquals(set, ControllerCommand.decode(set.encode()));
        s = apply(s, set, 0);
        assertEquals(Map.of(rate, "100000", "follower.replication.throttled.rate", "5"), s.brokerConfigs(1));
        assertEquals(Map.of(), s.brokerConfigs(0));
        s = apply(s, new ControllerCommand.AlterBrokerConfigs(7, new TreeMap<>(Map.of(rate, "1")), new TreeSet<>()),
            ControllerErrors.INVALID_REQUEST);
        s = apply(s, new ControllerCommand.AlterBrokerConfigs(1, new TreeMap<>(Map.of("num.io.threads", "8")),
            new TreeSet<>()), ControllerErrors.INVALID_CONFIG);
        s = apply(s, new ControllerCommand.AlterBrokerConfigs(1, new TreeMap<>(Map.of(rate, "-1")), new TreeSet<>()),
            ControllerErrors.INVALID_CONFIG);
        s = apply(s, new ControllerCommand.SetBalancing(true), 0);
        assertTrue(s.balancing());
        ClusterState back = ClusterState.decode(s.encode());
        assertEquals(s, back);
        assertEquals("100000", back.brokerConfigs(1).get(rate), "the throttle survives a snapshot");
        assertTrue(back.balancing(), "the balancer's flag survives a snapshot");
        s = apply(s, new ControllerCommand.AlterBrokerConfigs(1, new TreeMap<>(), new TreeSet<>(java.util.Set.of(rate,
            "follower.replication.throttled.rate"))), 0);
        assertEquals(Map.of(), s.brokerConfigs(1), "deleted");
        s = apply(s, new ControllerCommand.SetBalancing(false), 0);
        assertFalse(ClusterState.decode(s.encode()).balancing());
        assertEquals(new ControllerCommand.SetBalancing(true), ControllerCommand.decode(
            new ControllerCommand.SetBalancing(true).encode()));
    }

    @Test
    void shouldAllowOneNodeAtATimeInMaintenance() {
        ClusterState s = brokers(3, 1);
        s = apply(s, new ControllerCommand.SetMaintenance(7, true), ControllerErrors.INVALID_REQUEST);
        s = apply(s, new ControllerCommand.SetMaintenance(1, true), 0);
        s = apply(s, new ControllerCommand.SetMaintenance(1, true), 0); // the desired state: repeating it is fine
        ClusterState.Applied second = s.apply(new ControllerCommand.SetMaintenance(2, true), ++offset);
        assertEquals(ControllerErrors.INVALID_REQUEST, second.result().errorCode());
        assertTrue(second.result().message().contains("node 1 is in maintenance"), second.result().message());
        s = apply(second.state(), new ControllerCommand.SetMaintenance(1, false), 0);
        s = apply(s, new ControllerCommand.SetMaintenance(2, true), 0);
        assertArrayEquals(new int[] {2}, s.modes().maintenance());
    }

    @Test
    void shouldGiveADecommissioningNodeNoNewReplicasAndCancelItsMovesOnRecommission() {
        ClusterState s = brokers(4, 2);
        s = apply(s, ControllerCommand.CreateTopic.of("t", 4, 3, Map.of()), 0);
        s = apply(s, new ControllerCommand.SetDecommission(3, true), 0);
        s = apply(s, ControllerCommand.CreateTopic.of("u", 6, 3, Map.of()), 0);
        for (PartitionInfo p : s.topic("u").partitions()) {
            assertFalse(p.hasReplicaOn(3), "automatic placement skips the decommissioning node: " + p);
        }
        s = apply(s, ControllerCommand.CreateTopic.of("v", 1, 4, Map.of()), ControllerErrors.INVALID_REPLICATION_FACTOR);
        s = apply(s, new ControllerCommand.CreateTopic("v", UUID.randomUUID(), 0, 0, new TreeMap<>(),
            List.of(new int[] {3, 0})), ControllerErrors.INVALID_REPLICA_ASSIGNMENT);
        s = apply(s, new ControllerCommand.CreatePartitions("u", 7, List.of(new int[] {0, 1, 3})),
            ControllerErrors.INVALID_REPLICA_ASSIGNMENT);
        PartitionInfo u0 = s.topic("u").partition(0);
        s = apply(s, new ControllerCommand.ReassignPartition("u", 0, new int[] {3, u0.replicas()[1], u0.replicas()[2]}),
            ControllerErrors.INVALID_REPLICA_ASSIGNMENT);

        // Every partition of t with a replica on node 3 moves it to node... the least loaded, at most 2 at a time.
        List<Decommission.Move> moves = Decommission.nextMoves(s, 2, n -> true);
        assertEquals(2, moves.size(), moves.toString());
        for (Decommission.Move m : moves) {
            int[] before = s.topic(m.topic()).partition(m.partition()).replicas();
            int at = java.util.Arrays.stream(before).boxed().toList().indexOf(3);
            assertTrue(at >= 0);
            assertFalse(java.util.Arrays.stream(m.target()).anyMatch(b -> b == 3), java.util.Arrays.toString(m.target()));
            for (int i = 0; i < before.length; i++) {
                if (i != at) {
                    assertEquals(before[i], m.target()[i], "the other replicas keep their places");
                }
            }
            s = apply(s, new ControllerCommand.ReassignPartition(m.topic(), m.partition(), m.target()), 0);
        }
        assertEquals(2, Decommission.running(s));
        assertEquals(List.of(), Decommission.nextMoves(s, 2, n -> true), "no more than 2 run at a time");
        Decommission.Progress pr = Decommission.progress(s, 3, n -> true);
        assertEquals(2, pr.movesRunning());
        assertTrue(pr.replicasLeft() >= 2);
        assertFalse(pr.done());
        assertEquals(List.of(), Decommission.nextMoves(s, 4, n -> n == 3), "no usable node: nothing to move to");

        // Recommission cancels the running moves: both partitions list node 3 again and nothing moves.
        ClusterState back = apply(s, new ControllerCommand.SetDecommission(3, false), 0);
        assertEquals(0, Decommission.running(back));
        for (Decommission.Move m : moves) {
            PartitionInfo p = back.topic(m.topic()).partition(m.partition());
            assertTrue(p.reassigning() && PartitionInfo.contains(p.target(), 3), "moving back onto node 3: " + p);
        }
        assertEquals(List.of(), Decommission.nextMoves(back, 4, n -> true));

        // Completing every move (as the groups' leaders report it) empties node 3.
        for (int round = 0; round < 10 && !Decommission.progress(s, 3, n -> true).done(); round++) {
            for (TopicInfo t : s.topics()) {
                for (PartitionInfo p : t.partitions()) {
                    if (p.reassigning()) {
                        s = apply(s, new ControllerCommand.CompleteReassignment(t.name(), p.partition(), p.groupId(),
                            p.target()), 0);
                    }
                }
            }
            for (Decommission.Move m : Decommission.nextMoves(s, 2, n -> true)) {
                s = apply(s, new ControllerCommand.ReassignPartition(m.topic(), m.partition(), m.target()), 0);
            }
        }
        assertTrue(Decommission.progress(s, 3, n -> true).done());
        assertEquals(0, s.replicasOn(3).size());
        for (TopicInfo t : s.topics()) {
            for (PartitionInfo p : t.partitions()) {
                assertEquals(3, p.replicas().length, "the replication factor is kept: " + p);
            }
        }
        // Too few nodes left for a 3-replica partition: refused.
        s = apply(s, new ControllerCommand.SetDecommission(0, true), ControllerErrors.INVALID_REPLICATION_FACTOR);
    }
}
