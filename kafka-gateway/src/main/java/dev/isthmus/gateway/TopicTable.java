package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.Uuid;

import dev.isthmus.gateway.cluster.ClusterState;
import dev.isthmus.gateway.cluster.PartitionInfo;
import dev.isthmus.gateway.cluster.TopicInfo;

import java.util.Collections;
import java.util.List;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * An immutable view of the cluster's topics, derived from the controller's {@link ClusterState} (the
 * replicated metadata of the controller Raft group). The controller shard builds one per applied state and
 * hands the object to every shard through the cross-shard queues; shards read only their own reference, never
 * a shared mutable map.
 */
public final class TopicTable {
    /**
     * One topic: {@code configs} holds only its overrides of the defaults ({@link TopicConfigs}); {@code placement}
     * has, per partition, its Raft group, replicas (the first is the preferred leader) and their shards.
     */
    public record Topic(String name, Uuid id, int partitions, Map<String, String> configs,
                        List<PartitionInfo> placement) {
        public Topic {
            configs = Collections.unmodifiableMap(new LinkedHashMap<>(configs));
            placement = List.copyOf(placement);
            if (placement.size() != partitions) {
                throw new IllegalArgumentException("topic " + name + " has " + partitions + " partitions but "
                    + placement.size() + " placements");
            }
        }

        /** Partition {@code p}'s placement. */
        public PartitionInfo partition(int p) {
            return placement.get(p);
        }

        /** Replication factor (replicas of the first partition; the target's while it is being reassigned). */
        public int replicationFactor() {
            return placement.isEmpty() ? 0 : placement.get(0).target().length;
        }
    }

    public static final TopicTable EMPTY = new TopicTable(-1, Map.of());

    private final long version;
    private final Map<String, Topic> byName;
    private final Map<Uuid, Topic> byId;

    private TopicTable(long version, Map<String, Topic> byName) {
        this.version = version;
        this.byName = Collections.unmodifiableMap(new LinkedHashMap<>(byName));
        Map<Uuid, Topic> ids = new LinkedHashMap<>();
        for (Topic t : byName.values()) {
            ids.put(t.id(), t);
        }
        this.byId = Collections.unmodifiableMap(ids);
    }

    /** The topics of a controller state; the version is the controller log offset it reflects. */
    static TopicTable of(ClusterState state) {
        Map<String, Topic> m = new LinkedHashMap<>();
        for (TopicInfo t : state.topics()) {
            m.put(t.name(), new Topic(t.name(), new Uuid(t.id().getMostSignificantBits(), t.id().getLeastSignificantBits()),
                t.partitions().size(), t.configs(), t.partitions()));
        }
        return new TopicTable(state.appliedOffset(), m);
    }

    public long version() {
        return version;
    }

    public Topic get(String name) {
        return byName.get(name);
    }

    public Topic get(Uuid id) {
        return byId.get(id);
    }

    public Iterable<Topic> topics() {
        return byName.values();
    }

    /** Kafka's topic name rule: 1..249 of [a-zA-Z0-9._-], not "." or "..". Returns null if valid. */
    public static String invalidName(String name) {
        if (name == null || name.isEmpty()) {
            return "topic name is empty";
        }
        if (name.equals(".") || name.equals("..")) {
            return "topic name cannot be \".\" or \"..\"";
        }
        if (name.length() > 249) {
            return "topic name is longer than 249 characters";
        }
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (!(Character.isLetterOrDigit(c) && c < 128) && c != '.' && c != '_' && c != '-') {
                return "topic name " + name + " contains '" + c + "'; only [a-zA-Z0-9._-] are allowed";
            }
        }
        return null;
    }
}
