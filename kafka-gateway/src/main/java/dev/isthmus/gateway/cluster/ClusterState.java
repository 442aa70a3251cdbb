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
 * partitions (replicas and shards), the next Raft group id to hand out, the ACLs (Kafka's
 * {@link AclBinding}s, which the gateway's authorizer reads), the users' SCRAM credentials
 * ({@link UserScramCredential}s, which the gateway's SASL SCRAM server reads) and the client quotas (per
 * {@link ClientQuotaEntity}, which the gateway's quota enforcement reads). Immutable: each applied command
 * yields a new state, so any thread may read a published state without locks.
 *
 * <p>{@link #apply} is the state machine's transition: deterministic, validating every command against this
 * state and answering a Kafka error code and sentence when it does not apply (the state is then unchanged).
 *
 * <pre>
 *   snapshot: version i16 (5), appliedOffset i64, nextGroupId i64, nextProducerId i64 (from version 2),
 *             brokers (i32 n, n x broker), topics (i32 n, n x (name, uuid, configs, partitions)),
 *             reassignments (from version 3: i32 n, n x (topic, partition i32, adding int[], removing int[])),
 *             acls (i32 n, n x binding; from version 4),
 *             SCRAM credentials (from version 6: i32 n, n x {@link UserScramCredential}),
 *             client quotas (from version 7: i32 n, n x (ClientQuotaEntity, i32 m, m x (key, value f64 as i64 bits)))
 *             node modes (from version 8: maintenance int[], decommissioning int[]; see {@link NodeModes})
 *             (version 5 adds each broker's listeners after its fields: i32 n, n x (name, host, port i32);
 *             version 9 adds each broker's rack after its listeners: i8 0 = none, or i8 1 + name)
 * </pre>
 * Versions 1 to 8 (no reassignments before 3, no ACLs before 4, no broker listeners before 5, no SCRAM credentials
 * before 6, no client quotas before 7,
 * no node modes before 8, no racks before 9) are still read.
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
    /** The most SCRAM credentials (user and mechanism pairs) the cluster holds. */
    public static final int MAX_SCRAM_CREDENTIALS = 100_000;
    /** The most client quota entities the cluster holds (a bound on the state and every shard's resolver). */
    public static final int MAX_QUOTA_ENTITIES = 100_000;
    /** The largest block of producer ids one AllocateProducerIds may take (Kafka hands out 1000 at a time). */
    public static final int MAX_PRODUCER_ID_BLOCK = 1_000_000;
    private static final Pattern TOPIC_NAME = Pattern.compile("[a-zA-Z0-9._-]{1,249}");
    private static final Pattern CONFIG_NAME = Pattern.compile("[a-zA-Z0-9._-]{1,255}");
    private static final int MAX_CONFIG_VALUE_CHARS = 32 * 1024;

    public static final ClusterState EMPTY = new Builder().build();

    private final long appliedOffset;
    private final long nextGroupId;
    /** The first producer id not handed out yet ({@link ControllerCommand.AllocateProducerIds}). */
    private final long nextProducerId;
    private final SortedMap<Integer, BrokerInfo> brokers;
    private final SortedMap<String, TopicInfo> topics;
    /** Unmodifiable; shared by successive states until an ACL command changes it (readers may compare identity). */
    private final SortedSet<AclBinding> acls;
    /** Unmodifiable; shared by successive states until a SCRAM command changes it (as {@link #acls}). */
    private final SortedMap<UserScramCredential.Key, UserScramCredential> scram;

    /** Unmodifiable (values too); shared by successive states until a quota command changes it. */
    private final SortedMap<ClientQuotaEntity, SortedMap<String, Double>> quotas;

    /** Which nodes are in maintenance or being decommissioned. */
    private final NodeModes modes;

    /**
     * A state from {@code b}'s fields. A collection given as a {@link TreeMap} or {@link TreeSet} (a new one the caller
     * built and no longer changes) is wrapped unmodifiable; any other is one an existing state holds (already
     * unmodifiable) and is shared as it is, so successive states share what a command did not change.
     */
    private ClusterState(Builder b) {
        this.appliedOffset = b.appliedOffset;
        this.nextGroupId = b.nextGroupId;
        this.nextProducerId = b.nextProducerId;
        this.brokers = b.brokers instanceof TreeMap<Integer, BrokerInfo> m ? Collections.unmodifiableSortedMap(m) : b.brokers;
        this.topics = b.topics instanceof TreeMap<String, TopicInfo> m ? Collections.unmodifiableSortedMap(m) : b.topics;
        this.acls = b.acls instanceof TreeSet<AclBinding> t ? Collections.unmodifiableSortedSet(t) : b.acls;
        this.scram = b.scram instanceof TreeMap<UserScramCredential.Key, UserScramCredential> m
            ? Collections.unmodifiableSortedMap(m) : b.scram;
        this.quotas = b.quotas instanceof TreeMap<ClientQuotaEntity, SortedMap<String, Double>> q
            ? Collections.unmodifiableSortedMap(q) : b.quotas;
        this.modes = b.modes;
    }

    /** A builder holding this state's fields, to change some and {@link Builder#build} the next state. */
    private Builder toBuilder() {
        return new Builder(this);
    }

    /**
     * The fields of a state to be: {@link #EMPTY}'s to start with, or an existing state's ({@link #toBuilder}), each
     * settable. Every command builds its next state by copying this one and setting what it changes, so a new field
     * touches only the field list, this builder, {@link #encode}, {@link #decode} and {@link #equals}. Not thread-safe;
     * used on the applying thread only and dropped after {@link #build}.
     */
    private static final class Builder {
        private long appliedOffset = -1;
        private long nextGroupId = 1;
        private long nextProducerId;
        private SortedMap<Integer, BrokerInfo> brokers = new TreeMap<>();
        private SortedMap<String, TopicInfo> topics = new TreeMap<>();
        private SortedSet<AclBinding> acls = new TreeSet<>();
        private SortedMap<UserScramCredential.Key, UserScramCredential> scram = new TreeMap<>();
        private SortedMap<ClientQuotaEntity, SortedMap<String, Double>> quotas = Collections.emptySortedMap();
        private NodeModes modes = NodeModes.NONE;

        private Builder() {
        }

        private Builder(ClusterState s) {
            appliedOffset = s.appliedOffset;
            nextGroupId = s.nextGroupId;
            nextProducerId = s.nextProducerId;
            brokers = s.brokers;
            topics = s.topics;
            acls = s.acls;
            scram = s.scram;
            quotas = s.quotas;
            modes = s.modes;
        }

        Builder appliedOffset(long v) {
            appliedOffset = v;
            return this;
        }

        Builder nextGroupId(long v) {
            nextGroupId = v;
            return this;
        }

        Builder nextProducerId(long v) {
            nextProducerId = v;
            return this;
        }

        /** A new map the caller no longer changes, or an existing state's. */
        Builder brokers(SortedMap<Integer, BrokerInfo> v) {
            brokers = v;
            return this;
        }

        /** A new map the caller no longer changes, or an existing state's. */
        Builder topics(SortedMap<String, TopicInfo> v) {
            topics = v;
            return this;
        }

        /** A new set the caller no longer changes, or an existing state's. */
        Builder acls(SortedSet<AclBinding> v) {
            acls = v;
            return this;
        }

        /** A new map the caller no longer changes, or an existing state's. */
        Builder scram(SortedMap<UserScramCredential.Key, UserScramCredential> v) {
            scram = v;
            return this;
        }

        /** A new map (its values unmodifiable) the caller no longer changes, or an existing state's. */
        Builder quotas(SortedMap<ClientQuotaEntity, SortedMap<String, Double>> v) {
            quotas = v;
            return this;
        }

        Builder modes(NodeModes v) {
            modes = v;
            return this;
        }

        ClusterState build() {
            return new ClusterState(this);
        }
    }

    /**
     * Every user's SCRAM credentials by user and mechanism. The same object while no SCRAM command applies, so a
     * reader may rebuild what it derives from them (every shard's credential store) only when the identity changes.
     */
    public SortedMap<UserScramCredential.Key, UserScramCredential> scramCredentials() {
        return scram;
    }

    /**
     * Every client quota: entity to its keys and values (at least one each), in {@link ClientQuotaEntity}'s order.
     * The same object while no quota command applies, so a reader may rebuild what it derives from the quotas only
     * when the identity changes.
     */
    public SortedMap<ClientQuotaEntity, SortedMap<String, Double>> quotas() {
        return quotas;
    }

    /**
     * Every ACL binding, in {@link AclBinding}'s order. The same object while no ACL command applies, so a reader
     * may rebuild what it derives from the ACLs only when the identity changes.
     */
    public SortedSet<AclBinding> acls() {
        return acls;
    }

    /** Which nodes are in maintenance and which are being decommissioned. */
    public NodeModes modes() {
        return modes;
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
                yield ok(toBuilder().appliedOffset(offset).brokers(b).build());
            }
            case ControllerCommand.CreateTopic t -> createTopic(t, offset);
            case ControllerCommand.DeleteTopic d -> {
                if (!topics.containsKey(d.name())) {
                    yield fail(offset, ControllerErrors.UNKNOWN_TOPIC_OR_PARTITION, "topic '" + d.name()
                        + "' does not exist");
                }
                TreeMap<String, TopicInfo> t = new TreeMap<>(topics);
                t.remove(d.name());
                yield ok(toBuilder().appliedOffset(offset).topics(t).build());
            }
            case ControllerCommand.CreatePartitions p -> createPartitions(p, offset);
            case ControllerCommand.AlterConfigs a -> alterConfigs(a, offset);
            case ControllerCommand.ReassignPartition r -> reassign(r.topic(), r.partition(), offset, (t, p) -> {
                String adds = addsDecommissioning(r.target(), p.replicas());
                return adds != null ? Reassignment.Outcome.fail(ControllerErrors.INVALID_REPLICA_ASSIGNMENT, "cannot reassign "
                    + t + "-" + p.partition() + ": " + adds)
                    : Reassignment.reassign(t, p, r.target(), new Placement(brokers.values(), topics.values()));
            });
            case ControllerCommand.CompleteReassignment r -> reassign(r.topic(), r.partition(), offset,
                (t, p) -> Reassignment.complete(t, p, r));
            case ControllerCommand.AllocateProducerIds a -> allocateProducerIds(a, offset);
            case ControllerCommand.CreateAcls a -> createAcls(a, offset);
            case ControllerCommand.DeleteAcls d -> deleteAcls(d, offset);
            case ControllerCommand.UpsertUserScramCredential u -> upsertScram(u.credential(), offset);
            case ControllerCommand.DeleteUserScramCredential d -> deleteScram(d, offset);
            case ControllerCommand.AlterClientQuotas q -> alterClientQuotas(q, offset);
            case ControllerCommand.SetMaintenance m -> setMaintenance(m, offset);
            case ControllerCommand.SetDecommission d -> setDecommission(d, offset);
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
        return ok(toBuilder().appliedOffset(offset).topics(next).build());
    }

    /** The brokers new replicas may go to: the registered ones not being decommissioned. */
    private List<BrokerInfo> placeable() {
        List<BrokerInfo> out = new ArrayList<>();
        for (BrokerInfo b : brokers.values()) {
            if (!modes.decommissioning(b.id())) {
                out.add(b);
            }
        }
        return out;
    }

    /** The problem when {@code replicas} names a decommissioning node that is not in {@code existing}; else null. */
    private String addsDecommissioning(int[] replicas, int[] existing) {
        if (replicas == null) {
            return null;
        }
        for (int b : replicas) {
            if (modes.decommissioning(b) && !PartitionInfo.contains(existing, b)) {
                return "node " + b + " is being decommissioned and takes no new replicas (recommission it first)";
            }
        }
        return null;
    }

    /**
     * Maintenance on or off for a registered node; at most one node at a time (see {@link NodeModes}). Turning on what
     * is on, or off what is off, changes nothing and succeeds (the operator's command is a desired state).
     */
    private Applied setMaintenance(ControllerCommand.SetMaintenance m, long offset) {
        if (!brokers.containsKey(m.node())) {
            return fail(offset, ControllerErrors.INVALID_REQUEST, "node " + m.node() + " is not a registered broker");
        }
        if (m.enabled() == modes.inMaintenance(m.node())) {
            return ok(withOffset(offset));
        }
        if (m.enabled() && modes.maintenance().length > 0) {
            return fail(offset, ControllerErrors.INVALID_REQUEST, "node " + modes.maintenance()[0] + " is in maintenance;"
                + " one node at a time may be (two nodes that may not lead could leave a partition without an eligible"
                + " leader): disable it first");
        }
        return ok(toBuilder().appliedOffset(offset).modes(modes.withMaintenance(m.node(), m.enabled())).build());
    }

    /**
     * Decommissions (marks; the controller leader then moves the replicas off, {@link Decommission}) or recommissions a
     * registered node. Decommissioning is refused when the nodes left could not hold some partition of the node with
     * its replication factor. Recommissioning clears the mark and cancels every running reassignment that removes the
     * node (each partition goes back to the replicas it had before its move, as a Kafka cancel does); moves that
     * already completed stay. Repeating either is a success that changes nothing.
     */
    private Applied setDecommission(ControllerCommand.SetDecommission d, long offset) {
        int node = d.node();
        if (!brokers.containsKey(node)) {
            return fail(offset, ControllerErrors.INVALID_REQUEST, "node " + node + " is not a registered broker");
        }
        if (d.decommission() == modes.decommissioning(node)) {
            return ok(withOffset(offset));
        }
        if (d.decommission()) {
            int left = 0;
            for (BrokerInfo b : brokers.values()) {
                if (b.id() != node && !modes.decommissioning(b.id())) {
                    left++;
                }
            }
            for (TopicInfo t : topics.values()) {
                for (PartitionInfo p : t.partitions()) {
                    int rf = p.target().length;
                    if (p.hasReplicaOn(node) && rf > left) {
                        return fail(offset, ControllerErrors.INVALID_REPLICATION_FACTOR, "cannot decommission node "
                            + node + ": " + t.name() + "-" + p.partition() + " has " + rf + " replicas and only " + left
                            + " other node(s) would be left to hold them");
                    }
                }
            }
            return ok(toBuilder().appliedOffset(offset).modes(modes.withDecommissioning(node, true)).build());
        }
        TreeMap<String, TopicInfo> next = new TreeMap<>(topics);
        Placement placement = new Placement(brokers.values(), topics.values());
        for (TopicInfo t : topics.values()) {
            List<PartitionInfo> parts = null;
            for (PartitionInfo p : t.partitions()) {
                if (!PartitionInfo.contains(p.removing(), node)) {
                    continue;
                }
                Reassignment.Outcome o = Reassignment.reassign(t.name(), p, null, placement);
                if (o.next() == null) {
                    continue; // cannot happen: the partition is reassigning
                }
                if (parts == null) {
                    parts = new ArrayList<>(t.partitions());
                }
                parts.set(p.partition(), o.next());
            }
            if (parts != null) {
                next.put(t.name(), new TopicInfo(t.name(), t.id(), t.configs(), parts));
            }
        }
        return ok(toBuilder().appliedOffset(offset).topics(next).modes(modes.withDecommissioning(node, false)).build());
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
        return offset == appliedOffset ? this : toBuilder().appliedOffset(offset).build();
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
        for (int[] replicas : t.assignment()) {
            String adds = addsDecommissioning(replicas, new int[0]);
            if (adds != null) {
                return fail(offset, ControllerErrors.INVALID_REPLICA_ASSIGNMENT, adds);
            }
        }
        Placement placement = new Placement(placeable(), topics.values());
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
                    + t.replicationFactor() + " is larger than the " + placement.brokerCount() + " registered brokers"
                    + (modes.decommissioning().length > 0 ? " not being decommissioned" : ""));
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
        return ok(toBuilder().appliedOffset(offset).nextGroupId(groupId).topics(next).build());
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
        for (int[] replicas : c.assignment()) {
            String adds = addsDecommissioning(replicas, new int[0]);
            if (adds != null) {
                return fail(offset, ControllerErrors.INVALID_REPLICA_ASSIGNMENT, adds);
            }
        }
        Placement placement = new Placement(placeable(), topics.values());
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
        return ok(toBuilder().appliedOffset(offset).nextGroupId(groupId).topics(next).build());
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
        return ok(toBuilder().appliedOffset(offset).topics(next).build());
    }

    private Applied allocateProducerIds(ControllerCommand.AllocateProducerIds a, long offset) {
        if (a.count() < 1 || a.count() > MAX_PRODUCER_ID_BLOCK) {
            return fail(offset, ControllerErrors.INVALID_REQUEST, "a block of producer ids holds 1 to "
                + MAX_PRODUCER_ID_BLOCK + " ids, not " + a.count());
        }
        if (nextProducerId > Long.MAX_VALUE - a.count()) {
            return fail(offset, ControllerErrors.UNKNOWN_SERVER_ERROR, "the producer id space is exhausted");
        }
        ClusterState next = toBuilder().appliedOffset(offset).nextProducerId(nextProducerId + a.count()).build();
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
        ClusterState s = toBuilder().appliedOffset(offset).acls(added == 0 ? acls : next).build();
        return new Applied(s, ControllerResult.ok(offset, added));
    }

    /** Removes exactly the bindings listed (those absent are ignored); the result's value is how many were removed. */
    private Applied deleteAcls(ControllerCommand.DeleteAcls d, long offset) {
        TreeSet<AclBinding> next = new TreeSet<>(acls);
        next.removeAll(d.bindings());
        int removed = acls.size() - next.size();
        ClusterState s = toBuilder().appliedOffset(offset).acls(removed == 0 ? acls : next).build();
        return new Applied(s, ControllerResult.ok(offset, removed));
    }

    /** Creates or replaces one credential (Kafka's UserScramCredentialRecord). */
    private Applied upsertScram(UserScramCredential c, long offset) {
        UserScramCredential.Problem p = c.problem();
        if (p != null) {
            return fail(offset, p.errorCode(), p.message());
        }
        if (!scram.containsKey(c.key()) && scram.size() >= MAX_SCRAM_CREDENTIALS) {
            return fail(offset, ControllerErrors.INVALID_REQUEST, "the cluster holds " + scram.size()
                + " SCRAM credentials, the limit");
        }
        TreeMap<UserScramCredential.Key, UserScramCredential> next = new TreeMap<>(scram);
        next.put(c.key(), c);
        return ok(toBuilder().appliedOffset(offset).scram(next).build());
    }

    /** Removes one credential (Kafka's RemoveUserScramCredentialRecord); RESOURCE_NOT_FOUND when absent. */
    private Applied deleteScram(ControllerCommand.DeleteUserScramCredential d, long offset) {
        UserScramCredential.Problem p = UserScramCredential.problem(d.name(), d.mechanism());
        if (p != null) {
            return fail(offset, p.errorCode(), p.message());
        }
        UserScramCredential.Key key = new UserScramCredential.Key(d.name(), d.mechanism());
        if (!scram.containsKey(key)) {
            return fail(offset, ControllerErrors.RESOURCE_NOT_FOUND,
                "Attempt to delete a user credential that does not exist");
        }
        TreeMap<UserScramCredential.Key, UserScramCredential> next = new TreeMap<>(scram);
        next.remove(key);
        return ok(toBuilder().appliedOffset(offset).scram(next).build());
    }

    /**
     * Sets and removes quota keys of each entity listed (Kafka's AlterClientQuotas, its entries validated by the
     * submitting broker and again here): all of them, or none when one is not valid. An entity left without keys is
     * removed. The result's value counts the entities whose quotas changed.
     */
    private Applied alterClientQuotas(ControllerCommand.AlterClientQuotas c, long offset) {
        TreeMap<ClientQuotaEntity, SortedMap<String, Double>> next = new TreeMap<>(quotas);
        java.util.Set<ClientQuotaEntity> seen = new java.util.HashSet<>();
        int changed = 0;
        for (ClientQuotaAlteration a : c.alterations()) {
            String problem = a.problem();
            if (problem == null && !seen.add(a.entity())) {
                problem = "Ignoring duplicate entity " + a.entity();
            }
            if (problem != null) {
                return fail(offset, ControllerErrors.INVALID_REQUEST, problem);
            }
            SortedMap<String, Double> had = quotas.getOrDefault(a.entity(), Collections.emptySortedMap());
            TreeMap<String, Double> values = new TreeMap<>(had);
            values.putAll(a.set());
            a.remove().forEach(values::remove);
            if (values.equals(had)) {
                continue;
            }
            changed++;
            if (values.isEmpty()) {
                next.remove(a.entity());
            } else {
                next.put(a.entity(), Collections.unmodifiableSortedMap(values));
            }
        }
        if (next.size() > MAX_QUOTA_ENTITIES) {
            return fail(offset, ControllerErrors.INVALID_REQUEST, "the cluster holds quotas for " + quotas.size()
                + " entities; " + (next.size() - quotas.size()) + " more would pass the limit of " + MAX_QUOTA_ENTITIES);
        }
        ClusterState s = toBuilder().appliedOffset(offset).quotas(changed == 0 ? quotas : next).build();
        return new Applied(s, ControllerResult.ok(offset, changed));
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
        w.i32(scram.size());
        scram.values().forEach(c -> c.write(w));
        w.i32(quotas.size());
        quotas.forEach((entity, values) -> {
            entity.write(w);
            w.i32(values.size());
            values.forEach((k, v) -> w.str(k).i64(Double.doubleToLongBits(v)));
        });
        modes.write(w);
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
        TreeMap<UserScramCredential.Key, UserScramCredential> scram = new TreeMap<>();
        if (version >= 6) { // versions 1 to 5 predate SCRAM credentials
            int nc = r.count(21);
            for (int i = 0; i < nc; i++) {
                UserScramCredential c = UserScramCredential.read(r);
                if (scram.put(c.key(), c) != null) {
                    throw new ControllerFormatException("controller snapshot lists the " + c + " twice");
                }
            }
        }
        TreeMap<ClientQuotaEntity, SortedMap<String, Double>> quotas = new TreeMap<>();
        if (version >= 7) { // client quotas (versions 1 to 5 predate them; 6 is the SCRAM credentials' version)
            int nq = r.count(5);
            for (int i = 0; i < nq; i++) {
                ClientQuotaEntity entity = ClientQuotaEntity.read(r);
                int nv = r.count(12);
                TreeMap<String, Double> values = new TreeMap<>();
                for (int j = 0; j < nv; j++) {
                    values.put(r.str(), Double.longBitsToDouble(r.i64()));
                }
                quotas.put(entity, Collections.unmodifiableSortedMap(values));
            }
        }
        NodeModes modes = NodeModes.NONE;
        if (version >= 8) { // versions before 8 predate maintenance and decommissioning
            modes = NodeModes.read(r);
        }
        r.end();
        return new Builder().appliedOffset(applied).nextGroupId(next).nextProducerId(nextProducerId).brokers(brokers)
            .topics(topics).acls(acls).scram(scram).quotas(quotas).modes(modes).build();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ClusterState s && s.appliedOffset == appliedOffset && s.nextGroupId == nextGroupId
            && s.nextProducerId == nextProducerId && s.brokers.equals(brokers) && s.topics.equals(topics)
            && s.acls.equals(acls) && s.scram.equals(scram) && s.quotas.equals(quotas) && s.modes.equals(modes);
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
