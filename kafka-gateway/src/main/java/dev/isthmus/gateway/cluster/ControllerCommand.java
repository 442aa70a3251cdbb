package dev.isthmus.gateway.cluster;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;

/**
 * A change to the cluster metadata, replicated through the controller group. Every command is validated when
 * it is applied (on every replica, deterministically, against the state at its offset), so a command that
 * raced with another (two creates of one name) fails on all replicas alike.
 *
 * <pre>
 *   wire: type i8, version i8 (1), then the fields below; strings are i32 length + UTF-8
 *   1 RegisterBroker    broker: id i32, host, kafkaPort i32, rpcHost, rpcPort i32, shards i32,
 *                       listeners (i32 n, n x (name, host, port i32); absent in records written before them),
 *                       rack (i8 0 = none, or i8 1 + name; absent in records written before racks)
 *   2 CreateTopic       name, uuid (2 x i64), partitions i32, replicationFactor i32, configs (i32 n, n x (k, v)),
 *                       assignment (i32 n, n x int[]: empty = the controller places replicas)
 *   3 DeleteTopic       name
 *   4 CreatePartitions  name, totalCount i32, assignment of the new partitions (as above)
 *   5 AlterConfigs      name, set (i32 n, n x (k, v)), delete (i32 n, n x k)
 *   6 AllocateProducerIds  brokerId i32, count i32
 *  20 ReassignPartition     topic, partition i32, target (i8 0 = null (cancel), or i8 1 + int[])
 *  21 CompleteReassignment  topic, partition i32, groupId i64, target int[]
 *   7 CreateAcls        bindings (i32 n, n x AclBinding)
 *   8 DeleteAcls        bindings (i32 n, n x AclBinding)
 *  30 UpsertUserScramCredential  credential (UserScramCredential)
 *  31 DeleteUserScramCredential  name, mechanism i8
 *  32 AlterClientQuotas alterations (i32 n, n x ClientQuotaAlteration)
 *  34 SetMaintenance    node i32, enabled i8 (0/1)
 *  35 SetDecommission   node i32, decommission i8 (1 = decommission, 0 = recommission)
 *  40 SetControllerVoters  voters int[]
 *  41 AlterBrokerConfigs   node i32, set (i32 n, n x (k, v)), delete (i32 n, n x k)
 *  42 SetBalancing         balancing i8 (0/1)
 * </pre>
 * Type ids 36 and 37 are reserved for node operations, 43 to 47 for controller membership, balancer and throttles.
 */
public sealed interface ControllerCommand {
    int VERSION = 1;

    /** Adds or updates a broker (a restart may change its addresses). */
    record RegisterBroker(BrokerInfo broker) implements ControllerCommand {
    }

    /**
     * Creates a topic. {@code id} is chosen by the submitter (random), so every replica applies the same.
     *
     * @param assignment empty for automatic placement, else one replica list per partition (the first replica
     *                   is the preferred leader)
     */
    record CreateTopic(String name, UUID id, int partitions, int replicationFactor, SortedMap<String, String> configs,
                       List<int[]> assignment) implements ControllerCommand {
        public CreateTopic {
            configs = Collections.unmodifiableSortedMap(new TreeMap<>(configs));
            assignment = List.copyOf(assignment);
        }

        /** A topic with automatic placement and a random id. */
        public static CreateTopic of(String name, int partitions, int replicationFactor, Map<String, String> configs) {
            return new CreateTopic(name, UUID.randomUUID(), partitions, replicationFactor, new TreeMap<>(configs),
                List.of());
        }
    }

    record DeleteTopic(String name) implements ControllerCommand {
    }

    /** Grows a topic to {@code totalCount} partitions. */
    record CreatePartitions(String name, int totalCount, List<int[]> assignment) implements ControllerCommand {
        public CreatePartitions {
            assignment = List.copyOf(assignment);
        }
    }

    /** Sets and removes config overrides of a topic. */
    record AlterConfigs(String name, SortedMap<String, String> set, SortedSet<String> delete) implements ControllerCommand {
        public AlterConfigs {
            set = Collections.unmodifiableSortedMap(new TreeMap<>(set));
            delete = Collections.unmodifiableSortedSet(new TreeSet<>(delete));
        }

        public static AlterConfigs of(String name, Map<String, String> set, Set<String> delete) {
            return new AlterConfigs(name, new TreeMap<>(set), new TreeSet<>(delete));
        }
    }

    /**
     * Starts, replaces or, with a null {@code target}, cancels the reassignment of one partition (Kafka's
     * AlterPartitionReassignments for one partition). See {@link Reassignment} for the resulting state.
     */
    record ReassignPartition(String topic, int partition, int[] target) implements ControllerCommand {
        public ReassignPartition {
            target = target == null ? null : target.clone();
        }

        @Override
        public int[] target() {
            return target == null ? null : target.clone();
        }
    }

    /**
     * The Raft group of a partition committed the configuration whose voters are exactly {@code target}: the
     * reassignment towards {@code target} is complete (submitted by the group's leader). Refused when the
     * partition's reassignment changed meanwhile.
     */
    record CompleteReassignment(String topic, int partition, long groupId, int[] target) implements ControllerCommand {
        public CompleteReassignment {
            target = target.clone();
        }

        @Override
        public int[] target() {
            return target.clone();
        }
    }

    /**
     * Hands broker {@code brokerId} the next {@code count} producer ids (Kafka's AllocateProducerIds, KIP-730): the
     * result's {@link ControllerResult#value()} is the first. The counter is part of the replicated state and its
     * snapshots, so an id is handed out once in the cluster's life, across restarts and controller failovers.
     */
    record AllocateProducerIds(int brokerId, int count) implements ControllerCommand {
    }

    /**
     * Adds ACL bindings (Kafka's CreateAcls). Every binding must be valid ({@link AclBinding#problem()}) or the
     * whole command fails with INVALID_REQUEST; the result's {@link ControllerResult#value()} counts the new ones.
     */
    record CreateAcls(List<AclBinding> bindings) implements ControllerCommand {
        public CreateAcls {
            bindings = List.copyOf(bindings);
        }
    }

    /**
     * Removes exactly these ACL bindings (Kafka's DeleteAcls, its filters resolved by the submitting broker);
     * bindings no longer present are ignored. The result's {@link ControllerResult#value()} counts the removed.
     */
    record DeleteAcls(List<AclBinding> bindings) implements ControllerCommand {
        public DeleteAcls {
            bindings = List.copyOf(bindings);
        }
    }

    /**
     * Creates or replaces one user's credential for one mechanism (one upsertion of Kafka's
     * AlterUserScramCredentials, its StoredKey and ServerKey derived by the submitting broker from the salted password
     * the client sent). Refused with Kafka's code when {@link UserScramCredential#problem()} says so.
     */
    record UpsertUserScramCredential(UserScramCredential credential) implements ControllerCommand {
    }

    /**
     * Removes one user's credential for one mechanism (one deletion of AlterUserScramCredentials); RESOURCE_NOT_FOUND
     * when the user has none for it.
     */
    record DeleteUserScramCredential(String name, byte mechanism) implements ControllerCommand {
    }

    /**
     * Sets and removes client quotas (Kafka's AlterClientQuotas, the entries the submitting broker found valid):
     * applied all together or, when one is not valid, not at all (INVALID_REQUEST naming it). The result's
     * {@link ControllerResult#value()} counts the entities whose quotas changed.
     */
    record AlterClientQuotas(List<ClientQuotaAlteration> alterations) implements ControllerCommand {
        public AlterClientQuotas {
            alterations = List.copyOf(alterations);
        }
    }

    /**
     * Puts node {@code node} into maintenance or takes it out (see {@link NodeModes}): its leaderships move to in-sync
     * followers and it is not chosen as leader while it is set. At most one node at a time.
     */
    record SetMaintenance(int node, boolean enabled) implements ControllerCommand {
    }

    /**
     * Decommissions node {@code node} (true: it gets no new replica, and the controller leader moves its replicas off,
     * {@link Decommission}) or recommissions it (false: the mark goes and the running moves off it are cancelled).
     */
    record SetDecommission(int node, boolean decommission) implements ControllerCommand {
    }

    /**
     * Sets the nodes that vote in the controller group (see {@link NodeModes#controllerVoters()}); the controller leader
     * then changes the group's Raft membership to them.
     */
    record SetControllerVoters(int[] voters) implements ControllerCommand {
        public SetControllerVoters {
            voters = voters.clone();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof SetControllerVoters c && java.util.Arrays.equals(c.voters, voters);
        }

        @Override
        public int hashCode() {
            return java.util.Arrays.hashCode(voters);
        }

        @Override
        public String toString() {
            return "SetControllerVoters" + java.util.Arrays.toString(voters);
        }
    }

    /**
     * Sets and removes dynamic configs of broker {@code node} that the cluster keeps for it across restarts: its
     * replication throttles ({@link ClusterState#BROKER_DYNAMIC_CONFIGS}), as Kafka's controller keeps them.
     */
    record AlterBrokerConfigs(int node, SortedMap<String, String> set, SortedSet<String> delete)
            implements ControllerCommand {
        public AlterBrokerConfigs {
            set = Collections.unmodifiableSortedMap(new TreeMap<>(set));
            delete = Collections.unmodifiableSortedSet(new TreeSet<>(delete));
        }
    }

    /**
     * The partition balancer started (true: a node joined) or finished (false) rebalancing replicas; kept in the state
     * so that the next controller leader's balancer carries on after a failover ({@link PartitionBalancer}).
     */
    record SetBalancing(boolean balancing) implements ControllerCommand {
    }

    /** The command's wire form. */
    default byte[] encode() {
        Wire.Writer w = new Wire.Writer();
        switch (this) {
            case RegisterBroker c -> {
                w.i8(1).i8(VERSION);
                c.broker().write(w);
                c.broker().writeListeners(w);
                c.broker().writeRack(w);
            }
            case CreateTopic c -> {
                w.i8(2).i8(VERSION).str(c.name()).i64(c.id().getMostSignificantBits())
                    .i64(c.id().getLeastSignificantBits()).i32(c.partitions()).i32(c.replicationFactor());
                writeMap(w, c.configs());
                writeAssignment(w, c.assignment());
            }
            case DeleteTopic c -> w.i8(3).i8(VERSION).str(c.name());
            case CreatePartitions c -> {
                w.i8(4).i8(VERSION).str(c.name()).i32(c.totalCount());
                writeAssignment(w, c.assignment());
            }
            case AlterConfigs c -> {
                w.i8(5).i8(VERSION).str(c.name());
                writeMap(w, c.set());
                w.i32(c.delete().size());
                c.delete().forEach(w::str);
            }
            case AllocateProducerIds c -> w.i8(6).i8(VERSION).i32(c.brokerId()).i32(c.count());
            case ReassignPartition c -> {
                w.i8(20).i8(VERSION).str(c.topic()).i32(c.partition());
                if (c.target == null) {
                    w.i8(0);
                } else {
                    w.i8(1).ints(c.target);
                }
            }
            case CompleteReassignment c -> w.i8(21).i8(VERSION).str(c.topic()).i32(c.partition()).i64(c.groupId())
                .ints(c.target);
            case CreateAcls c -> {
                w.i8(7).i8(VERSION).i32(c.bindings().size());
                c.bindings().forEach(b -> b.write(w));
            }
            case DeleteAcls c -> {
                w.i8(8).i8(VERSION).i32(c.bindings().size());
                c.bindings().forEach(b -> b.write(w));
            }
            case UpsertUserScramCredential c -> {
                w.i8(30).i8(VERSION);
                c.credential().write(w);
            }
            case DeleteUserScramCredential c -> w.i8(31).i8(VERSION).str(c.name()).i8(c.mechanism());
            case AlterClientQuotas c -> {
                w.i8(32).i8(VERSION).i32(c.alterations().size());
                c.alterations().forEach(a -> a.write(w));
            }
            case SetMaintenance c -> w.i8(34).i8(VERSION).i32(c.node()).i8(c.enabled() ? 1 : 0);
            case SetDecommission c -> w.i8(35).i8(VERSION).i32(c.node()).i8(c.decommission() ? 1 : 0);
            case SetControllerVoters c -> w.i8(40).i8(VERSION).ints(c.voters);
            case AlterBrokerConfigs c -> {
                w.i8(41).i8(VERSION).i32(c.node());
                writeMap(w, c.set());
                w.i32(c.delete().size());
                c.delete().forEach(w::str);
            }
            case SetBalancing c -> w.i8(42).i8(VERSION).i8(c.balancing() ? 1 : 0);
        }
        return w.bytes();
    }

    /**
     * Parses a command.
     *
     * @throws ControllerFormatException naming the problem (unknown type or version, truncated record)
     */
    static ControllerCommand decode(byte[] bytes) {
        Wire.Reader r = new Wire.Reader(bytes);
        int type = r.i8();
        int version = r.i8();
        if (version != VERSION) {
            throw new ControllerFormatException("controller command of type " + type + " has version " + version
                + "; this node reads version " + VERSION);
        }
        ControllerCommand c = switch (type) {
            case 1 -> new RegisterBroker(BrokerInfo.readCommand(r));
            case 2 -> new CreateTopic(r.str(), new UUID(r.i64(), r.i64()), r.i32(), r.i32(), readMap(r),
                readAssignment(r));
            case 3 -> new DeleteTopic(r.str());
            case 4 -> new CreatePartitions(r.str(), r.i32(), readAssignment(r));
            case 5 -> {
                String name = r.str();
                SortedMap<String, String> set = readMap(r);
                int n = r.count(4);
                TreeSet<String> delete = new TreeSet<>();
                for (int i = 0; i < n; i++) {
                    delete.add(r.str());
                }
                yield new AlterConfigs(name, set, delete);
            }
            case 6 -> new AllocateProducerIds(r.i32(), r.i32());
            case 20 -> {
                String topic = r.str();
                int partition = r.i32();
                int has = r.i8();
                if (has != 0 && has != 1) {
                    throw new ControllerFormatException("reassignment of " + topic + "-" + partition
                        + " has target flag " + has);
                }
                yield new ReassignPartition(topic, partition, has == 1 ? r.ints() : null);
            }
            case 21 -> new CompleteReassignment(r.str(), r.i32(), r.i64(), r.ints());
            case 7 -> new CreateAcls(readBindings(r));
            case 8 -> new DeleteAcls(readBindings(r));
            case 30 -> new UpsertUserScramCredential(UserScramCredential.read(r));
            case 31 -> new DeleteUserScramCredential(r.str(), (byte) r.i8());
            case 32 -> {
                int n = r.count(9);
                List<ClientQuotaAlteration> alterations = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                    alterations.add(ClientQuotaAlteration.read(r));
                }
                yield new AlterClientQuotas(alterations);
            }
            case 34 -> new SetMaintenance(r.i32(), flag(r, "maintenance"));
            case 35 -> new SetDecommission(r.i32(), flag(r, "decommission"));
            case 40 -> new SetControllerVoters(r.ints());
            case 41 -> {
                int node = r.i32();
                SortedMap<String, String> set = readMap(r);
                int n = r.count(4);
                TreeSet<String> delete = new TreeSet<>();
                for (int i = 0; i < n; i++) {
                    delete.add(r.str());
                }
                yield new AlterBrokerConfigs(node, set, delete);
            }
            case 42 -> new SetBalancing(flag(r, "balancing"));
            default -> throw new ControllerFormatException("unknown controller command type " + type);
        };
        r.end();
        return c;
    }

    private static boolean flag(Wire.Reader r, String what) {
        int v = r.i8();
        if (v != 0 && v != 1) {
            throw new ControllerFormatException(what + " flag is " + v + ", not 0 or 1");
        }
        return v == 1;
    }

    private static List<AclBinding> readBindings(Wire.Reader r) {
        int n = r.count(16);
        List<AclBinding> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(AclBinding.read(r));
        }
        return out;
    }

    private static void writeMap(Wire.Writer w, Map<String, String> m) {
        w.i32(m.size());
        m.forEach((k, v) -> w.str(k).str(v));
    }

    private static SortedMap<String, String> readMap(Wire.Reader r) {
        int n = r.count(8);
        TreeMap<String, String> m = new TreeMap<>();
        for (int i = 0; i < n; i++) {
            m.put(r.str(), r.str());
        }
        return m;
    }

    private static void writeAssignment(Wire.Writer w, List<int[]> a) {
        w.i32(a.size());
        a.forEach(w::ints);
    }

    private static List<int[]> readAssignment(Wire.Reader r) {
        int n = r.count(4);
        List<int[]> a = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            a.add(r.ints());
        }
        return a;
    }
}
