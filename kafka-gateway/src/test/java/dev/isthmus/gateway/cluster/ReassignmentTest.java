package dev.isthmus.gateway.cluster;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The controller's reassignment states (Kafka's PartitionReassignmentReplicas), their commands and snapshots. */
class ReassignmentTest {
    long offset;

    ClusterState apply(ClusterState s, ControllerCommand c, int expectedError) {
        ClusterState.Applied a = s.apply(c, ++offset);
        assertEquals(expectedError, a.result().errorCode(), String.valueOf(a.result()));
        if (expectedError != 0) {
            assertTrue(a.result().message() != null && !a.result().message().isEmpty());
            assertEquals(s.withOffset(offset), a.state(), "a refused command changes nothing");
        }
        return a.state();
    }

    ClusterState cluster(int brokers, int shards, int[]... assignment) {
        ClusterState s = ClusterState.EMPTY;
        for (int i = 1; i <= brokers; i++) {
            s = apply(s, new ControllerCommand.RegisterBroker(new BrokerInfo(i, "127.0.0.1", 9092 + i, "127.0.0.1",
                19092 + i, shards)), 0);
        }
        return apply(s, new ControllerCommand.CreateTopic("t", java.util.UUID.randomUUID(), 0, 0, new java.util.TreeMap<>(),
            List.of(assignment)), 0);
    }

    static PartitionInfo p0(ClusterState s) {
        return s.topic("t").partition(0);
    }

    @Test
    void shouldListTargetThenRemovingAndCompleteToTheTarget() {
        ClusterState s = cluster(3, 2, new int[] {1, 2});
        int shardOf2 = p0(s).shardOn(2);
        s = apply(s, new ControllerCommand.ReassignPartition("t", 0, new int[] {2, 3}), 0);
        PartitionInfo p = p0(s);
        assertArrayEquals(new int[] {2, 3, 1}, p.replicas(), "target order first, then the removing replicas");
        assertArrayEquals(new int[] {3}, p.adding());
        assertArrayEquals(new int[] {1}, p.removing());
        assertArrayEquals(new int[] {2, 3}, p.target());
        assertArrayEquals(new int[] {2, 1}, p.original());
        assertEquals(shardOf2, p.shardOn(2), "a replica that stays keeps its shard");
        assertTrue(p.shardOn(3) >= 0 && p.shardOn(3) < 2);
        assertTrue(p.reassigning());

        // A completion for another target is stale and refused.
        apply(s, new ControllerCommand.CompleteReassignment("t", 0, p.groupId(), new int[] {1, 3}),
            ControllerErrors.INVALID_REPLICA_ASSIGNMENT);
        apply(s, new ControllerCommand.CompleteReassignment("t", 0, p.groupId() + 100, new int[] {2, 3}),
            ControllerErrors.UNKNOWN_TOPIC_OR_PARTITION);
        s = apply(s, new ControllerCommand.CompleteReassignment("t", 0, p.groupId(), new int[] {3, 2}), 0);
        PartitionInfo done = p0(s);
        assertArrayEquals(new int[] {2, 3}, done.replicas());
        assertFalse(done.reassigning());
        assertEquals(p.shardOn(3), done.shardOn(3));
        assertEquals(-1, done.shardOn(1));
        apply(s, new ControllerCommand.CompleteReassignment("t", 0, p.groupId(), new int[] {2, 3}),
            ControllerErrors.NO_REASSIGNMENT_IN_PROGRESS);
    }

    @Test
    void shouldGrowTheReplicationFactorWithNothingToRemove() {
        ClusterState s = cluster(3, 1, new int[] {1});
        s = apply(s, new ControllerCommand.ReassignPartition("t", 0, new int[] {1, 2, 3}), 0);
        PartitionInfo p = p0(s);
        assertArrayEquals(new int[] {1, 2, 3}, p.replicas());
        assertArrayEquals(new int[] {2, 3}, p.adding());
        assertArrayEquals(new int[0], p.removing());
        assertTrue(p.reassigning());
        // The same target again keeps the move running.
        s = apply(s, new ControllerCommand.ReassignPartition("t", 0, new int[] {1, 2, 3}), 0);
        assertEquals(p, p0(s));
    }

    @Test
    void shouldCancelByMovingBackToTheOriginalReplicas() {
        ClusterState s = cluster(3, 1, new int[] {1, 2});
        s = apply(s, new ControllerCommand.ReassignPartition("t", 0, null), ControllerErrors.NO_REASSIGNMENT_IN_PROGRESS);
        s = apply(s, new ControllerCommand.ReassignPartition("t", 0, new int[] {2, 3}), 0);
        s = apply(s, new ControllerCommand.ReassignPartition("t", 0, null), 0);
        PartitionInfo p = p0(s);
        assertArrayEquals(new int[] {2, 1}, p.target(), "back to the replicas before the move");
        assertArrayEquals(new int[] {2, 1, 3}, p.replicas(), "the replica that was being added stays until the group "
            + "no longer has it");
        assertArrayEquals(new int[0], p.adding());
        assertArrayEquals(new int[] {3}, p.removing());
        s = apply(s, new ControllerCommand.CompleteReassignment("t", 0, p.groupId(), new int[] {1, 2}), 0);
        assertArrayEquals(new int[] {2, 1}, p0(s).replicas());
        assertFalse(p0(s).reassigning());
    }

    @Test
    void shouldComputeANewTargetAgainstTheUnion() {
        ClusterState s = cluster(4, 1, new int[] {1, 2});
        s = apply(s, new ControllerCommand.ReassignPartition("t", 0, new int[] {2, 3}), 0);
        s = apply(s, new ControllerCommand.ReassignPartition("t", 0, new int[] {3, 4}), 0);
        PartitionInfo p = p0(s);
        assertArrayEquals(new int[] {3, 4, 2, 1}, p.replicas());
        assertArrayEquals(new int[] {3, 4}, p.adding());
        assertArrayEquals(new int[] {2, 1}, p.removing());
        // Reordering the current replicas only changes the preferred leader.
        ClusterState idle = cluster(3, 1, new int[] {1, 2, 3});
        idle = apply(idle, new ControllerCommand.ReassignPartition("t", 0, new int[] {3, 1, 2}), 0);
        assertArrayEquals(new int[] {3, 1, 2}, p0(idle).replicas());
        assertFalse(p0(idle).reassigning());
    }

    @Test
    void shouldRefuseBadTargetsWithKafkaErrorCodes() {
        ClusterState s = cluster(3, 1, new int[] {1, 2});
        apply(s, new ControllerCommand.ReassignPartition("t", 0, new int[] {2, 9}), ControllerErrors.INVALID_REPLICA_ASSIGNMENT);
        apply(s, new ControllerCommand.ReassignPartition("t", 0, new int[] {2, 2}), ControllerErrors.INVALID_REPLICA_ASSIGNMENT);
        apply(s, new ControllerCommand.ReassignPartition("t", 0, new int[0]), ControllerErrors.INVALID_REPLICA_ASSIGNMENT);
        apply(s, new ControllerCommand.ReassignPartition("t", 1, new int[] {1}), ControllerErrors.UNKNOWN_TOPIC_OR_PARTITION);
        apply(s, new ControllerCommand.ReassignPartition("nope", 0, new int[] {1}), ControllerErrors.UNKNOWN_TOPIC_OR_PARTITION);
    }

    @Test
    void shouldRoundTripCommandsAndSnapshotsAndReadVersionOneSnapshots() {
        ControllerCommand c = ControllerCommand.decode(new ControllerCommand.ReassignPartition("t", 3, new int[] {4, 5}).encode());
        ControllerCommand.ReassignPartition r = assertInstanceOf(ControllerCommand.ReassignPartition.class, c);
        assertEquals("t", r.topic());
        assertEquals(3, r.partition());
        assertArrayEquals(new int[] {4, 5}, r.target());
        r = assertInstanceOf(ControllerCommand.ReassignPartition.class,
            ControllerCommand.decode(new ControllerCommand.ReassignPartition("t", 0, null).encode()));
        assertNull(r.target());
        ControllerCommand.CompleteReassignment d = assertInstanceOf(ControllerCommand.CompleteReassignment.class,
            ControllerCommand.decode(new ControllerCommand.CompleteReassignment("u", 1, 77, new int[] {2}).encode()));
        assertEquals(77, d.groupId());
        assertArrayEquals(new int[] {2}, d.target());
        byte[] bad = new ControllerCommand.ReassignPartition("t", 0, null).encode();
        bad[bad.length - 1] = 7;
        assertThrows(ControllerFormatException.class, () -> ControllerCommand.decode(bad));

        ClusterState s = cluster(3, 2, new int[] {1, 2}, new int[] {2, 3});
        s = apply(s, new ControllerCommand.ReassignPartition("t", 1, new int[] {1}), 0);
        ClusterState back = ClusterState.decode(s.encode());
        assertEquals(s, back);
        assertArrayEquals(new int[] {2, 3}, back.topic("t").partition(1).removing());

        // Older layouts (without the reassignments section before version 3) are read: ClusterStateTest writes
        // each version field by field. A newer one is refused.
        ClusterState idle = cluster(3, 2, new int[] {1, 2});
        byte[] current = idle.encode();
        assertEquals(9, current[1]);
        assertEquals(idle, ClusterState.decode(current));
        byte[] newer = current.clone();
        newer[1] = 10;
        assertThrows(ControllerFormatException.class, () -> ClusterState.decode(newer));
    }

    @Test
    void shouldRejectInconsistentPartitionStates() {
        assertThrows(IllegalArgumentException.class, () -> new PartitionInfo(0, 1, new int[] {1, 2}, new int[] {0, 0},
            new int[] {3}, new int[0]));
        assertThrows(IllegalArgumentException.class, () -> new PartitionInfo(0, 1, new int[] {1, 2}, new int[] {0, 0},
            new int[0], new int[] {1, 2}));
    }
}
