package dev.isthmus.gateway.cluster;

import java.util.Arrays;

/**
 * Where one partition lives: its Raft group id, its replicas (brokers; the first is the preferred leader) and,
 * per replica, the shard of that broker hosting it.
 *
 * <p>While a reassignment runs (Kafka's {@code PartitionReassignmentReplicas}), {@code replicas} is the union
 * {@code target ++ removing} (target order first), {@code adding} the target replicas that were not replicas when
 * the move started and {@code removing} the replicas not in the target; both are empty otherwise. Every broker in
 * {@code replicas} hosts the partition during the move (the adding ones catch up as Raft learners, the removing
 * ones stay until the group's configuration without them is committed). See {@link Reassignment}.
 */
public record PartitionInfo(int partition, long groupId, int[] replicas, int[] shards, int[] adding, int[] removing) {
    private static final int[] NONE = new int[0];

    public PartitionInfo {
        if (partition < 0 || groupId <= 0 || replicas.length == 0 || replicas.length != shards.length) {
            throw new IllegalArgumentException("bad partition " + partition + " (group " + groupId + ", replicas "
                + Arrays.toString(replicas) + ", shards " + Arrays.toString(shards) + ")");
        }
        replicas = replicas.clone();
        shards = shards.clone();
        adding = adding.clone();
        removing = removing.clone();
        for (int b : adding) {
            if (!contains(replicas, b) || contains(removing, b)) {
                throw new IllegalArgumentException("partition " + partition + " adds replica " + b + " that is not a"
                    + " target replica of " + Arrays.toString(replicas) + " (removing " + Arrays.toString(removing) + ")");
            }
        }
        for (int b : removing) {
            if (!contains(replicas, b)) {
                throw new IllegalArgumentException("partition " + partition + " removes replica " + b + " that is not"
                    + " in " + Arrays.toString(replicas));
            }
        }
        if (removing.length >= replicas.length) {
            throw new IllegalArgumentException("partition " + partition + " would keep no replica of "
                + Arrays.toString(replicas));
        }
    }

    /** A partition with no reassignment under way. */
    public PartitionInfo(int partition, long groupId, int[] replicas, int[] shards) {
        this(partition, groupId, replicas, shards, NONE, NONE);
    }

    @Override
    public int[] adding() {
        return adding.clone();
    }

    @Override
    public int[] removing() {
        return removing.clone();
    }

    /** Whether a reassignment is under way (some replica is being added or removed). */
    public boolean reassigning() {
        return adding.length > 0 || removing.length > 0;
    }

    /** The replicas the partition moves to: {@code replicas} minus {@code removing}, in order (= replicas when idle). */
    public int[] target() {
        return Arrays.stream(replicas).filter(b -> !contains(removing, b)).toArray();
    }

    /** The replicas before the move began: {@code replicas} minus {@code adding}, in order. */
    public int[] original() {
        return Arrays.stream(replicas).filter(b -> !contains(adding, b)).toArray();
    }

    /** Whether {@code broker} is a replica being added by the running reassignment. */
    public boolean isAdding(int broker) {
        return contains(adding, broker);
    }

    static boolean contains(int[] a, int v) {
        for (int x : a) {
            if (x == v) {
                return true;
            }
        }
        return false;
    }

    @Override
    public int[] replicas() {
        return replicas.clone();
    }

    @Override
    public int[] shards() {
        return shards.clone();
    }

    /** The preferred leader (the first replica). */
    public int preferredLeader() {
        return replicas[0];
    }

    /** The shard of {@code broker}'s replica, or -1 when it holds none. */
    public int shardOn(int broker) {
        for (int i = 0; i < replicas.length; i++) {
            if (replicas[i] == broker) {
                return shards[i];
            }
        }
        return -1;
    }

    public boolean hasReplicaOn(int broker) {
        return shardOn(broker) >= 0;
    }

    int replicaAt(int i) {
        return replicas[i];
    }

    int shardAt(int i) {
        return shards[i];
    }

    int replicationFactor() {
        return replicas.length;
    }

    void write(Wire.Writer w) {
        w.i32(partition).i64(groupId).ints(replicas).ints(shards);
    }

    static PartitionInfo read(Wire.Reader r) {
        try {
            return new PartitionInfo(r.i32(), r.i64(), r.ints(), r.ints());
        } catch (IllegalArgumentException e) {
            throw new ControllerFormatException(e.getMessage());
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PartitionInfo p && p.partition == partition && p.groupId == groupId
            && Arrays.equals(p.replicas, replicas) && Arrays.equals(p.shards, shards)
            && Arrays.equals(p.adding, adding) && Arrays.equals(p.removing, removing);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(groupId) * 31 + partition;
    }

    @Override
    public String toString() {
        return "P" + partition + "[group " + groupId + ", replicas " + Arrays.toString(replicas) + ", shards "
            + Arrays.toString(shards) + (reassigning() ? ", adding " + Arrays.toString(adding) + ", removing "
            + Arrays.toString(removing) : "") + "]";
    }
}
