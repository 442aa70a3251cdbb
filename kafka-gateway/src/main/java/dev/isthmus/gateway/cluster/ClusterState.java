package dev.isthmus.gateway.cluster;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.SortedMap;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;
import java.util.regex.Pattern;

/**
 * The cluster metadata the controller group replicates: brokers, topics with their ids, configs and
 * partitions (replicas and shards), the next Raft group id to hand out, and the ACLs (Kafka's
 * {@link AclBinding}s, which the gateway's authorizer reads). Immutable: each applied command
 * yields a new state, so any thread may read a published state without locks.
 *
 * <p>{@link #apply} is the state machine's transition: deterministic, validating every command against this
 * state and answering a Kafka error code and sentence when it does not apply (the state is then unchanged).
 *
 * <pre>
 *   snapshot: version i16 (5), appliedOffset i64, nextGroupId i64, nextProducerId i64 (from version 2),
 *             brokers (i32 n, n x broker), topics (i32 n, n x (name, uuid, configs, partitions)),
 *             reassignments (from version 3: i32 n, n x (topic, partition i32, adding int[], removing int[])),
 *             acls (i32 n, n x binding; from version 4)
 *             (version 5 adds each broker's listeners after its fields: i32 n, n x (name, host, port i32);
 *             version 9 adds each broker's rack after its listeners: i8 0 = none, or i8 1 + name)
 * </pre>
 * Versions 1 to 5 (no reassignments before 3, no ACLs before 4, no broker listeners before 5, no racks before 9)
 * are still read. (Versions 6 to 8 belong to other branches' state; this branch never wrote them.)
 */
public final class ClusterState {
    /** Group id of the controller group itself; partition groups are numbered from 1. */
    public static final long CONTROLLER_GROUP_ID = 0;
    public static final int MAX_PARTITIONS_PER_TOPIC = 100_000;
    private static final int SNAPSHOT_VERSION = 9;
    /** The oldest snapshot version this node reads. */
    private static final int SNAPSHOT_VERSION_MIN = 1;
    /** The most ACL bindings the cluster holds (a bound on the state's size and every shard's copy). */
    public static final int MAX_ACLS = 100_000;
    /** The largest block of producer ids one AllocateProducerIds may take (Kafka hands out 1000 at a time). */
    public static final int MAX_PRODUCER_ID_BLOCK = 1_000_000;
    private static final Pattern TOPIC_NAME = Pattern.compile("[a-zA-Z0-9._-]{1,249}");
    private static final Pattern CONFIG_NAME = Pattern.compile("[a-zA-Z0-9._-]{1,255}");
    private static final int MAX_CONFIG_VALUE_CHARS = 32 * 1024;

    public static final ClusterState EMPTY = new ClusterState(-1, 1, 0, new TreeMap<>(), new TreeMap<>(), new TreeSet<>());

    private final long appliedOffset;
    private final long nextGroupId;
    /** The first producer id not handed out yet ({@link ControllerCommand.AllocateProducerIds}). */
    private final long nextProducerId;
    private final SortedMap<Integer, BrokerInfo> brokers;
    private final SortedMap<String, TopicInfo> topics;
    /** Unmodifiable; shared by successive states until an ACL command changes it (readers may compare identity). */
    private final SortedSet<AclBinding> acls;

    private ClusterState(long appliedOffset, long nextGroupId, long nextProducerId, SortedMap<Integer, BrokerInfo> brokers,
                         SortedMap<String, TopicInfo> topics, SortedSet<AclBinding> acls) {
        this.appliedOffset = appliedOffset;
        this.nextGroupId = nextGroupId;
        this.nextProducerId = nextProducerId;
        this.brokers = Collections.unmodifiableSortedMap(brokers);
        this.topics = Collections.unmodifiableSortedMap(topics);
        this.acls = acls instanceof TreeSet<AclBinding> t ? Collections.unmodifiableSortedSet(t) : acls;
    }

    /**
     * Every ACL binding, in {@link AclBinding}'s order. The same object while no ACL command applies, so a reader
     * may rebuild what it derives from the ACLs only when the identity changes.
     */
    public SortedSet<AclBinding> acls() {
        return acls;
    }

    /** The controller log offset this state reflects (-1 for none). */
    public long appliedOffset() {
        return appliedOffset;
    }

    public long nextGroupId() {
        return nextGroupId;
    }

    /** The first producer id no broker has been given yet. */
    public long nextProducerId() {
        return nextProducerId;
    }

    public Collection<BrokerInfo> brokers() {
        return brokers.values();
    }

    public BrokerInfo broker(int id) {
        return brokers.get(id);
    }

    public Collection<TopicInfo> topics() {
        return topics.values();
    }

    public TopicInfo topic(String name) {
        return topics.get(name);
    }

    /** The topic with Kafka topic id {@code id}, or null. */
    public TopicInfo topic(UUID id) {
        for (TopicInfo t : topics.values()) {
            if (t.id().equals(id)) {
                return t;
            }
        }
        return null;
    }

    /** A replica a broker hosts: what the gateway opens on the given shard. */
    public record Replica(String topic, UUID topicId, PartitionInfo partition, int shard) {
    }

    /** Every replica placed on {@code broker}, in topic and partition order. */
    public List<Replica> replicasOn(int broker) {
        List<Replica> out = new ArrayList<>();
        for (TopicInfo t : topics.values()) {
            for (PartitionInfo p : t.partitions()) {
                int s = p.shardOn(broker);
                if (s >= 0) {
                    out.add(new Replica(t.name(), t.id(), p, s));
                }
            }
        }
        return out;
    }

    /** Result of {@link #apply}: the next state (this one when the command failed) and the outcome. */
    public record Applied(ClusterState state, ControllerResult result) {
    }

    /** Applies {@code c}, committed at controller log offset {@code offset}. */
    public Applied apply(ControllerCommand c, long offset) {
        return switch (c) {
            case ControllerCommand.RegisterBroker r -> {
                TreeMap<Integer, BrokerInfo> b = new TreeMap<>(brokers);
                b.put(r.broker().id(), r.broker());
                yield ok(new ClusterState(offset, nextGroupId, nextProducerId, b, new TreeMap<>(topics), acls));
            }
            case ControllerCommand.CreateTopic t -> createTopic(t, offset);
            case ControllerCommand.DeleteTopic d -> {
                if (!topics.containsKey(d.name())) {
                    yield fail(offset, ControllerErrors.UNKNOWN_TOPIC_OR_PARTITION, "topic '" + d.name()
                        + "' does not exist");
                }
                TreeMap<String, TopicInfo> t = new TreeMap<>(topics);
                t.remove(d.name());
                yield ok(new ClusterState(offset, nextGroupId, nextProducerId, new TreeMap<>(brokers), t, acls));
            }
            case ControllerCommand.CreatePartitions p -> createPartitions(p, offset);
            case ControllerCommand.AlterConfigs a -> alterConfigs(a, offset);
            case ControllerCommand.ReassignPartition r -> reassign(r.topic(), r.partition(), offset,
                (t, p) -> Reassignment.reassign(t, p, r.target(), new Placement(brokers.values(), topics.values())));
            case ControllerCommand.CompleteReassignment r -> reassign(r.topic(), r.partition(), offset,
                (t, p) -> Reassignment.complete(t, p, r));
            case ControllerCommand.AllocateProducerIds a -> allocateProducerIds(a, offset);
            case ControllerCommand.CreateAcls a -> createAcls(a, offset);
            case ControllerCommand.DeleteAcls d -> deleteAcls(d, offset);
        };
    }

    /** Replaces partition {@code index} of {@code topic} with what {@code change} makes of it (see {@link Reassignment}). */
    private Applied reassign(String topic, int index, long offset,
                             java.util.function.BiFunction<String, PartitionInfo, Reassignment.Outcome> change) {
        TopicInfo t = topics.get(topic);
        PartitionInfo p = t == null ? null : t.partition(index);
        if (p == null) {
            return fail(offset, ControllerErrors.UNKNOWN_TOPIC_OR_PARTITION, t == null ? "topic '" + topic
                + "' does not exist" : "topic '" + topic + "' has no partition " + index);
        }
        Reassignment.Outcome o = change.apply(topic, p);
        if (o.next() == null) {
            return fail(offset, o.error(), o.message());
        }
        List<PartitionInfo> parts = new ArrayList<>(t.partitions());
        parts.set(index, o.next());
        TreeMap<String, TopicInfo> next = new TreeMap<>(topics);
        next.put(topic, new TopicInfo(t.name(), t.id(), t.configs(), parts));
        return ok(new ClusterState(offset, nextGroupId, nextProducerId, new TreeMap<>(brokers), next, acls));
    }

    private Applied ok(ClusterState next) {
        return new Applied(next, ControllerResult.ok(next.appliedOffset));
    }

    /** A failed command still advances the applied offset (the entry is consumed). */
    private Applied fail(long offset, int code, String message) {
        return new Applied(withOffset(offset), ControllerResult.error(code, message, offset));
    }

    /** This state as of {@code offset} (for entries that change nothing, e.g. Raft's own). */
    public ClusterState withOffset(long offset) {
        return offset == appliedOffset ? this : new ClusterState(offset, nextGroupId, nextProducerId, new TreeMap<>(brokers),
            new TreeMap<>(topics), acls);
    }

    private static String checkConfigs(SortedMap<String, String> configs) {
        for (var e : configs.entrySet()) {
            if (!CONFIG_NAME.matcher(e.getKey()).matches()) {
                return "config name '" + e.getKey() + "' is not valid";
            }
            if (e.getValue().length() > MAX_CONFIG_VALUE_CHARS) {
                return "config '" + e.getKey() + "' has a value of " + e.getValue().length() + " characters (limit "
                    + MAX_CONFIG_VALUE_CHARS + ")";
            }
        }
        return null;
    }

    private Applied createTopic(ControllerCommand.CreateTopic t, long offset) {
        if (!TOPIC_NAME.matcher(t.name()).matches() || t.name().equals(".") || t.name().equals("..")) {
            return fail(offset, ControllerErrors.INVALID_TOPIC_EXCEPTION, "topic name '" + t.name()
                + "' is not valid: 1 to 249 characters of [a-zA-Z0-9._-], not '.' or '..'");
        }
        if (topics.containsKey(t.name())) {
            return fail(offset, ControllerErrors.TOPIC_ALREADY_EXISTS, "topic '" + t.name() + "' already exists");
        }
        if (topic(t.id()) != null) {
            return fail(offset, ControllerErrors.INVALID_REQUEST, "topic id " + t.id() + " is already in use");
        }
        String bad = checkConfigs(t.configs());
        if (bad != null) {
            return fail(offset, ControllerErrors.INVALID_CONFIG, bad);
        }
        Placement placement = new Placement(brokers.values(), topics.values());
        List<PartitionInfo> parts = new ArrayList<>();
        long groupId = nextGroupId;
        if (t.assignment().isEmpty()) {
            if (t.partitions() < 1 || t.partitions() > MAX_PARTITIONS_PER_TOPIC) {
                return fail(offset, ControllerErrors.INVALID_PARTITIONS, "topic '" + t.name() + "' needs 1 to "
                    + MAX_PARTITIONS_PER_TOPIC + " partitions, not " + t.partitions());
            }
            if (t.replicationFactor() < 1) {
                return fail(offset, ControllerErrors.INVALID_REPLICATION_FACTOR, "replication factor must be at least 1,"
                    + " not " + t.replicationFactor());
            }
            if (t.replicationFactor() > placement.brokerCount()) {
                return fail(offset, ControllerErrors.INVALID_REPLICATION_FACTOR, "replication factor "
                    + t.replicationFactor() + " is larger than the " + placement.brokerCount() + " registered brokers");
            }
            for (int p = 0; p < t.partitions(); p++) {
                parts.add(placement.place(p, groupId++, placement.chooseReplicas(t.replicationFactor())));
            }
        } else {
            if (t.assignment().size() > MAX_PARTITIONS_PER_TOPIC) {
                return fail(offset, ControllerErrors.INVALID_PARTITIONS, "topic '" + t.name() + "' cannot have "
                    + t.assignment().size() + " partitions");
            }
            int rf = t.assignment().get(0).length;
            for (int p = 0; p < t.assignment().size(); p++) {
                String problem = placement.checkAssignment(p, t.assignment().get(p), rf);
                if (problem != null) {
                    return fail(offset, ControllerErrors.INVALID_REPLICA_ASSIGNMENT, problem);
                }
                parts.add(placement.place(p, groupId++, t.assignment().get(p)));
            }
        }
        TreeMap<String, TopicInfo> next = new TreeMap<>(topics);
        next.put(t.name(), new TopicInfo(t.name(), t.id(), t.configs(), parts));
        return ok(new ClusterState(offset, groupId, nextProducerId, new TreeMap<>(brokers), next, acls));
    }

    private Applied createPartitions(ControllerCommand.CreatePartitions c, long offset) {
        TopicInfo t = topics.get(c.name());
        if (t == null) {
            return fail(offset, ControllerErrors.UNKNOWN_TOPIC_OR_PARTITION, "topic '" + c.name() + "' does not exist");
        }
        int have = t.partitions().size();
        if (c.totalCount() <= have) {
            return fail(offset, ControllerErrors.INVALID_PARTITIONS, "topic '" + c.name() + "' has " + have
                + " partitions; the new count must be larger, not " + c.totalCount());
        }
        if (c.totalCount() > MAX_PARTITIONS_PER_TOPIC) {
            return fail(offset, ControllerErrors.INVALID_PARTITIONS, "topic '" + c.name() + "' cannot have "
                + c.totalCount() + " partitions (limit " + MAX_PARTITIONS_PER_TOPIC + ")");
        }
        int rf = t.partitions().get(0).target().length; // a move of partition 0 counts with its target
        if (!c.assignment().isEmpty() && c.assignment().size() != c.totalCount() - have) {
            return fail(offset, ControllerErrors.INVALID_REPLICA_ASSIGNMENT, "the assignment lists "
                + c.assignment().size() + " partitions for " + (c.totalCount() - have) + " new ones");
        }
        Placement placement = new Placement(brokers.values(), topics.values());
        if (c.assignment().isEmpty() && rf > placement.brokerCount()) {
            return fail(offset, ControllerErrors.INVALID_REPLICATION_FACTOR, "topic '" + c.name()
                + "' has replication factor " + rf + " but only " + placement.brokerCount() + " brokers are registered");
        }
        List<PartitionInfo> parts = new ArrayList<>(t.partitions());
        long groupId = nextGroupId;
        for (int p = have; p < c.totalCount(); p++) {
            int[] replicas;
            if (c.assignment().isEmpty()) {
                replicas = placement.chooseReplicas(rf);
            } else {
                replicas = c.assignment().get(p - have);
                String problem = placement.checkAssignment(p, replicas, rf);
                if (problem != null) {
                    return fail(offset, ControllerErrors.INVALID_REPLICA_ASSIGNMENT, problem);
                }
            }
            parts.add(placement.place(p, groupId++, replicas));
        }
        TreeMap<String, TopicInfo> next = new TreeMap<>(topics);
        next.put(t.name(), new TopicInfo(t.name(), t.id(), t.configs(), parts));
        return ok(new ClusterState(offset, groupId, nextProducerId, new TreeMap<>(brokers), next, acls));
    }

    private Applied alterConfigs(ControllerCommand.AlterConfigs a, long offset) {
        TopicInfo t = topics.get(a.name());
        if (t == null) {
            return fail(offset, ControllerErrors.UNKNOWN_TOPIC_OR_PARTITION, "topic '" + a.name() + "' does not exist");
        }
        String bad = checkConfigs(a.set());
        if (bad != null) {
            return fail(offset, ControllerErrors.INVALID_CONFIG, bad);
        }
        for (String k : a.delete()) {
            if (a.set().containsKey(k)) {
                return fail(offset, ControllerErrors.INVALID_CONFIG, "config '" + k + "' is both set and deleted");
            }
        }
        TreeMap<String, String> configs = new TreeMap<>(t.configs());
        configs.putAll(a.set());
        a.delete().forEach(configs::remove);
        TreeMap<String, TopicInfo> next = new TreeMap<>(topics);
        next.put(t.name(), new TopicInfo(t.name(), t.id(), configs, t.partitions()));
        return ok(new ClusterState(offset, nextGroupId, nextProducerId, new TreeMap<>(brokers), next, acls));
    }

    private Applied allocateProducerIds(ControllerCommand.AllocateProducerIds a, long offset) {
        if (a.count() < 1 || a.count() > MAX_PRODUCER_ID_BLOCK) {
            return fail(offset, ControllerErrors.INVALID_REQUEST, "a block of producer ids holds 1 to "
                + MAX_PRODUCER_ID_BLOCK + " ids, not " + a.count());
        }
        if (nextProducerId > Long.MAX_VALUE - a.count()) {
            return fail(offset, ControllerErrors.UNKNOWN_SERVER_ERROR, "the producer id space is exhausted");
        }
        ClusterState next = new ClusterState(offset, nextGroupId, nextProducerId + a.count(), new TreeMap<>(brokers),
            new TreeMap<>(topics), acls);
        return new Applied(next, ControllerResult.ok(offset, nextProducerId));
    }

    /** Adds bindings (one already present is kept once); the result's value is how many were new. */
    private Applied createAcls(ControllerCommand.CreateAcls c, long offset) {
        for (AclBinding b : c.bindings()) {
            String problem = b.problem();
            if (problem != null) {
                return fail(offset, ControllerErrors.INVALID_REQUEST, problem);
            }
        }
        TreeSet<AclBinding> next = new TreeSet<>(acls);
        next.addAll(c.bindings());
        if (next.size() > MAX_ACLS) {
            return fail(offset, ControllerErrors.INVALID_REQUEST, "the cluster holds " + acls.size() + " ACLs; "
                + (next.size() - acls.size()) + " more would pass the limit of " + MAX_ACLS);
        }
        int added = next.size() - acls.size();
        ClusterState s = new ClusterState(offset, nextGroupId, nextProducerId, new TreeMap<>(brokers),
            new TreeMap<>(topics), added == 0 ? acls : next);
        return new Applied(s, ControllerResult.ok(offset, added));
    }

    /** Removes exactly the bindings listed (those absent are ignored); the result's value is how many were removed. */
    private Applied deleteAcls(ControllerCommand.DeleteAcls d, long offset) {
        TreeSet<AclBinding> next = new TreeSet<>(acls);
        next.removeAll(d.bindings());
        int removed = acls.size() - next.size();
        ClusterState s = new ClusterState(offset, nextGroupId, nextProducerId, new TreeMap<>(brokers),
            new TreeMap<>(topics), removed == 0 ? acls : next);
        return new Applied(s, ControllerResult.ok(offset, removed));
    }

    // ================================================================================== snapshots

    public byte[] encode() {
        Wire.Writer w = new Wire.Writer().i16(SNAPSHOT_VERSION).i64(appliedOffset).i64(nextGroupId).i64(nextProducerId);
        w.i32(brokers.size());
        brokers.values().forEach(b -> {
            b.write(w);
            b.writeListeners(w);
            b.writeRack(w);
        });
        w.i32(topics.size());
        topics.values().forEach(t -> t.write(w));
        List<String> moving = new ArrayList<>();
        List<PartitionInfo> movingParts = new ArrayList<>();
        for (TopicInfo t : topics.values()) {
            for (PartitionInfo p : t.partitions()) {
                if (p.reassigning()) {
                    moving.add(t.name());
                    movingParts.add(p);
                }
            }
        }
        w.i32(moving.size());
        for (int i = 0; i < moving.size(); i++) {
            PartitionInfo p = movingParts.get(i);
            w.str(moving.get(i)).i32(p.partition()).ints(p.adding()).ints(p.removing());
        }
        w.i32(acls.size());
        acls.forEach(a -> a.write(w));
        return w.bytes();
    }

    /** @throws ControllerFormatException naming the problem */
    public static ClusterState decode(byte[] bytes) {
        Wire.Reader r = new Wire.Reader(bytes);
        int version = r.i16();
        if (version < SNAPSHOT_VERSION_MIN || version > SNAPSHOT_VERSION) {
            throw new ControllerFormatException("controller snapshot has version " + version + "; this node reads "
                + SNAPSHOT_VERSION_MIN + " to " + SNAPSHOT_VERSION);
        }
        long applied = r.i64();
        long next = r.i64();
        long nextProducerId = version >= 2 ? r.i64() : 0; // version 1 predates producer id blocks
        int nb = r.count(20);
        TreeMap<Integer, BrokerInfo> brokers = new TreeMap<>();
        for (int i = 0; i < nb; i++) {
            BrokerInfo b = BrokerInfo.read(r, version >= 5);
            if (version >= 9) {
                try {
                    b = b.withRack(BrokerInfo.readRack(r));
                } catch (IllegalArgumentException e) {
                    throw new ControllerFormatException(e.getMessage());
                }
            }
            brokers.put(b.id(), b);
        }
        int nt = r.count(24);
        TreeMap<String, TopicInfo> topics = new TreeMap<>();
        for (int i = 0; i < nt; i++) {
            TopicInfo t = TopicInfo.read(r);
            topics.put(t.name(), t);
        }
        if (version >= 3) {
            int nr = r.count(16);
            for (int i = 0; i < nr; i++) {
                String name = r.str();
                int index = r.i32();
                int[] adding = r.ints();
                int[] removing = r.ints();
                TopicInfo t = topics.get(name);
                PartitionInfo p = t == null ? null : t.partition(index);
                if (p == null) {
                    throw new ControllerFormatException("controller snapshot lists a reassignment of " + name + "-"
                        + index + ", which it does not hold");
                }
                List<PartitionInfo> parts = new ArrayList<>(t.partitions());
                try {
                    parts.set(index, new PartitionInfo(index, p.groupId(), p.replicas(), p.shards(), adding, removing));
                } catch (IllegalArgumentException e) {
                    throw new ControllerFormatException(e.getMessage());
                }
                topics.put(name, new TopicInfo(t.name(), t.id(), t.configs(), parts));
            }
        }
        TreeSet<AclBinding> acls = new TreeSet<>();
        if (version >= 4) { // versions 1 to 3 predate ACLs
            int na = r.count(16);
            for (int i = 0; i < na; i++) {
                acls.add(AclBinding.read(r));
            }
        }
        r.end();
        return new ClusterState(applied, next, nextProducerId, brokers, topics, acls);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ClusterState s && s.appliedOffset == appliedOffset && s.nextGroupId == nextGroupId
            && s.nextProducerId == nextProducerId && s.brokers.equals(brokers) && s.topics.equals(topics)
            && s.acls.equals(acls);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(appliedOffset) * 31 + topics.hashCode();
    }

    @Override
    public String toString() {
        return "ClusterState[@" + appliedOffset + ", " + brokers.size() + " brokers, " + topics.size() + " topics, next group "
            + nextGroupId + "]";
    }
}
