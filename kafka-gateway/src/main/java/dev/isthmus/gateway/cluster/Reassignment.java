package dev.isthmus.gateway.cluster;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The controller's side of moving a partition's replicas (Kafka's AlterPartitionReassignments, KIP-455): how a
 * {@link ControllerCommand.ReassignPartition} or {@link ControllerCommand.CompleteReassignment} changes one
 * {@link PartitionInfo}. Pure functions of the state, applied on every controller replica alike.
 *
 * <h2>States (Kafka's {@code PartitionReassignmentReplicas})</h2>
 * <pre>
 *   idle:    replicas R, adding [], removing []
 *   moving:  replicas T ++ (U - T), adding T - original, removing U - T     (U = the replicas before the command,
 *            original = U - adding: the replicas before the first move)
 *   done:    the partition's group committed voters = T  ->  replicas T, adding [], removing []
 * </pre>
 * A new target while a move runs is computed against the union, so every replica that may hold data stays
 * listed until the group no longer needs it. A cancel is a move back to {@code original}: the replicas that were
 * being added become the ones being removed, and the group's leader drives its configuration back (a joint
 * configuration first completes, then reverses: Raft cannot drop the new half of C_old,new safely). Nothing here
 * touches a log: the brokers follow the state (a listed replica is hosted, an unlisted one is deleted) and the
 * partition's Raft leader drives the group's membership towards {@link PartitionInfo#target()}.
 *
 * <p>Shards: a broker that already hosts the partition keeps its shard; a new one gets the least loaded shard of
 * its broker ({@link Placement}).
 */
final class Reassignment {
    private Reassignment() {
    }

    /** A partition's next state, or the error (Kafka code and sentence) when the command does not apply. */
    record Outcome(PartitionInfo next, int error, String message) {
        static Outcome fail(int code, String message) {
            return new Outcome(null, code, message);
        }
    }

    /**
     * The state after {@code target} (null = cancel) is asked for {@code p} of {@code topic}; {@code placement}
     * knows the registered brokers and the shard loads.
     */
    static Outcome reassign(String topic, PartitionInfo p, int[] target, Placement placement) {
        String name = topic + "-" + p.partition();
        if (target == null) {
            if (!p.reassigning()) {
                return Outcome.fail(ControllerErrors.NO_REASSIGNMENT_IN_PROGRESS, "partition " + name
                    + " has no reassignment in progress");
            }
            target = p.original();
        } else {
            String problem = placement.checkAssignment(p.partition(), target, 0);
            if (problem != null) {
                return Outcome.fail(ControllerErrors.INVALID_REPLICA_ASSIGNMENT, "cannot reassign " + topic + ": "
                    + problem);
            }
        }
        int[] union = p.replicas();
        int[] original = p.original();
        List<Integer> replicas = new ArrayList<>();
        for (int b : target) {
            replicas.add(b);
        }
        List<Integer> removing = new ArrayList<>();
        for (int b : union) {
            if (!PartitionInfo.contains(target, b)) {
                replicas.add(b);
                removing.add(b);
            }
        }
        int[] adding = Arrays.stream(target).filter(b -> !PartitionInfo.contains(original, b)).toArray();
        int[] next = replicas.stream().mapToInt(Integer::intValue).toArray();
        int[] shards = new int[next.length];
        for (int i = 0; i < next.length; i++) {
            int s = p.shardOn(next[i]);
            shards[i] = s >= 0 ? s : placement.shardFor(next[i]);
        }
        int[] rem = removing.stream().mapToInt(Integer::intValue).toArray();
        return new Outcome(new PartitionInfo(p.partition(), p.groupId(), next, shards, adding, rem), 0, null);
    }

    /** The state once the group committed voters = {@code target}; an error when the move changed meanwhile. */
    static Outcome complete(String topic, PartitionInfo p, ControllerCommand.CompleteReassignment c) {
        String name = topic + "-" + p.partition();
        if (p.groupId() != c.groupId()) {
            return Outcome.fail(ControllerErrors.UNKNOWN_TOPIC_OR_PARTITION, "partition " + name + " is group "
                + p.groupId() + ", not " + c.groupId());
        }
        if (!p.reassigning()) {
            return Outcome.fail(ControllerErrors.NO_REASSIGNMENT_IN_PROGRESS, "partition " + name
                + " has no reassignment in progress");
        }
        int[] target = p.target();
        if (!Arrays.equals(sortedCopy(target), sortedCopy(c.target()))) {
            return Outcome.fail(ControllerErrors.INVALID_REPLICA_ASSIGNMENT, "partition " + name + " now moves to "
                + Arrays.toString(target) + ", not " + Arrays.toString(c.target()));
        }
        int[] shards = new int[target.length];
        for (int i = 0; i < target.length; i++) {
            shards[i] = p.shardOn(target[i]);
        }
        return new Outcome(new PartitionInfo(p.partition(), p.groupId(), target, shards), 0, null);
    }

    static int[] sortedCopy(int[] a) {
        int[] c = a.clone();
        Arrays.sort(c);
        return c;
    }
}
