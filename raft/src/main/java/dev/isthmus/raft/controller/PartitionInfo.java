package dev.isthmus.raft.controller;

import java.util.Arrays;

/**
 * Where one partition lives: its Raft group id, its replicas (brokers; the first is the preferred leader) and,
 * per replica, the shard of that broker hosting it.
 */
public record PartitionInfo(int partition, long groupId, int[] replicas, int[] shards) {
    public PartitionInfo {
        if (partition < 0 || groupId <= 0 || replicas.length == 0 || replicas.length != shards.length) {
            throw new IllegalArgumentException("bad partition " + partition + " (group " + groupId + ", replicas "
                + Arrays.toString(replicas) + ", shards " + Arrays.toString(shards) + ")");
        }
        replicas = replicas.clone();
        shards = shards.clone();
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
            && Arrays.equals(p.replicas, replicas) && Arrays.equals(p.shards, shards);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(groupId) * 31 + partition;
    }

    @Override
    public String toString() {
        return "P" + partition + "[group " + groupId + ", replicas " + Arrays.toString(replicas) + ", shards "
            + Arrays.toString(shards) + "]";
    }
}
