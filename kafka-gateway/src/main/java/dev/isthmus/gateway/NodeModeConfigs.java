package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.message.IncrementalAlterConfigsRequestData;
import dev.isthmus.gateway.cluster.ClusterState;
import dev.isthmus.gateway.cluster.Controller;
import dev.isthmus.gateway.cluster.ControllerCommand;
import dev.isthmus.gateway.cluster.NodeModes;
import dev.isthmus.uring.shard.Promise;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * How clients reach maintenance mode and decommissioning: two cluster-wide broker configs, read with DescribeConfigs
 * and changed with IncrementalAlterConfigs on the BROKER resource with the empty name (Kafka's cluster-wide default,
 * {@code kafka-configs.sh --entity-type brokers --entity-default}):
 *
 * <ul>
 *   <li>{@value #MAINTENANCE}: the nodes in maintenance (a list of node ids; at most one). APPEND {@code 3} puts node
 *       3 into maintenance, SUBTRACT {@code 3} takes it out, SET replaces the list, DELETE empties it.</li>
 *   <li>{@value #DECOMMISSION}: the nodes being decommissioned. APPEND decommissions, SUBTRACT recommissions
 *       (cancelling the moves off the node that still run), SET and DELETE as above.</li>
 *   <li>{@value #CONTROLLER_VOTERS}: the nodes that vote in the controller group (KRaft's add-controller and
 *       remove-controller). Reads as the wanted voters ({@link Controller#wantedVoters()}: the seeds until first
 *       changed). APPEND {@code 3} makes node 3 a voter, SUBTRACT {@code 2} removes node 2, SET replaces the list;
 *       DELETE is refused (the controller needs voters). A new voter must be up, and a majority of the resulting
 *       voters must be up, as this broker sees them: otherwise the change is refused before it reaches the
 *       controller. It becomes {@link ControllerCommand.SetControllerVoters}; the controller leader then changes the
 *       group's Raft membership (the new voter catches up as a learner first, then one joint-consensus change), which
 *       DescribeQuorum ({@code kafka-metadata-quorum.sh describe --status}) shows once done.</li>
 * </ul>
 * Each change becomes {@link ControllerCommand.SetMaintenance} / {@link ControllerCommand.SetDecommission} commands
 * (recommissions and disables first), answered once applied; the controller's refusal (an unknown node, a second node
 * in maintenance, too few nodes left for a partition) comes back as the resource's error with its sentence.
 * {@code validateOnly} checks the values and the node ids and changes nothing. Progress is read through Kafka's own
 * APIs: Metadata (the replicas and leaders each node still holds) and ListPartitionReassignments (the moves running).
 *
 * <h2>Why configs</h2>
 * Kafka has no API for either (its operators move replicas with kafka-reassign-partitions and use controlled
 * shutdown). A new API key would be invisible to every Kafka client and tool and need its own client; an endpoint on
 * the metrics HTTP server would need its own authentication and TLS, and that server may listen on another
 * interface than clients use. A config is a desired state the controller keeps (repeating a command is harmless,
 * like these modes), rides the Kafka listeners with their TLS, SASL and ACLs, works from any Kafka admin client and
 * from {@code kafka-configs.sh}, and the cluster-wide resource is answered by any broker, which matters because the
 * node being decommissioned may be down. A change needs ALTER on the CLUSTER resource, as Kafka's
 * AlterPartitionReassignments and ElectLeaders do ({@link RequestAuthorization}); reading them needs DESCRIBE_CONFIGS
 * on the cluster, as any broker config.
 *
 * <p>Stateless; used on the connection's shard.
 */
final class NodeModeConfigs {
    static final String MAINTENANCE = "isthmus.maintenance.nodes";
    static final String DECOMMISSION = "isthmus.decommission.nodes";
    static final String CONTROLLER_VOTERS = "isthmus.controller.voters";
    static final Set<String> NAMES = Set.of(MAINTENANCE, DECOMMISSION, CONTROLLER_VOTERS);
    private static final long CONTROLLER_TIMEOUT_MS = 30_000;
    private static final byte OP_SET = 0;
    private static final byte OP_DELETE = 1;
    private static final byte OP_APPEND = 2;
    private static final byte OP_SUBTRACT = 3;

    private NodeModeConfigs() {
    }

    /** Whether the broker resource names either config. */
    static boolean names(IncrementalAlterConfigsRequestData.AlterConfigsResource res) {
        for (var c : res.configs) {
            if (NAMES.contains(c.name)) {
                return true;
            }
        }
        return false;
    }

    /** Whether the broker resource names these configs only. */
    static boolean only(IncrementalAlterConfigsRequestData.AlterConfigsResource res) {
        for (var c : res.configs) {
            if (!NAMES.contains(c.name)) {
                return false;
            }
        }
        return true;
    }

    /** The value DescribeConfigs reports: node ids, ascending, comma-separated ("" for none). */
    static String value(Broker broker, NodeModes modes, String name) {
        int[] nodes = switch (name) {
            case MAINTENANCE -> modes.maintenance();
            case DECOMMISSION -> modes.decommissioning();
            default -> wantedVoters(broker, modes);
        };
        StringBuilder sb = new StringBuilder();
        for (int n : nodes) {
            sb.append(sb.isEmpty() ? "" : ",").append(n);
        }
        return sb.toString();
    }

    /** The controller voters wanted now: those set in the state, else the controller's view of the group. */
    private static int[] wantedVoters(Broker broker, NodeModes modes) {
        int[] set = modes.controllerVoters();
        Controller c = broker.controller();
        return set.length > 0 || c == null ? set : c.wantedVoters();
    }

    static String documentation(String name) {
        if (name.equals(CONTROLLER_VOTERS)) {
            return "Nodes that vote in the controller group. APPEND a node id to make it a voter (it must be up; it"
                + " catches up as a learner, then joins by joint consensus), SUBTRACT one to remove it (e.g. a dead"
                + " controller node once another took its seat). A majority of the voters must stay up.";
        }
        return name.equals(MAINTENANCE)
            ? "Nodes in maintenance (at most one): their leaderships move to in-sync followers by Raft leadership transfer"
                + " and they take no leadership until removed from the list. APPEND a node id to enable, SUBTRACT it to"
                + " disable."
            : "Nodes being decommissioned: they take no new replica and the controller moves every replica they hold to"
                + " other nodes, a bounded number at a time. APPEND a node id to decommission, SUBTRACT it to recommission"
                + " (cancels the moves still running).";
    }

    /**
     * IncrementalAlterConfigs of the broker resource {@code res} naming these configs; completes with null or the
     * refusal. Called on the connection's shard.
     */
    static Promise<Broker.Failure> alter(Broker broker, ShardState st,
                                         IncrementalAlterConfigsRequestData.AlterConfigsResource res, boolean validateOnly) {
        if (!only(res)) {
            return failed(ErrorCodes.INVALID_REQUEST, String.join(", ", new TreeSet<>(NAMES)) + " are altered in a"
                + " resource of their own, without other broker configs");
        }
        if (!res.resourceName.isEmpty()) {
            return failed(ErrorCodes.INVALID_REQUEST, String.join(", ", new TreeSet<>(NAMES)) + " are cluster-wide:"
                + " alter them on the broker resource with the empty name (kafka-configs.sh --entity-type brokers"
                + " --entity-default), not on broker " + res.resourceName);
        }
        if (!broker.config().clusterMode()) {
            return failed(ErrorCodes.INVALID_REQUEST, "maintenance and decommissioning need a cluster (--seeds); this"
                + " is a single node");
        }
        ClusterState cs = st.cluster;
        if (cs == null) {
            return failed(ErrorCodes.NOT_CONTROLLER, "this node has no cluster metadata yet; retry");
        }
        TreeSet<Integer> maintenance = set(cs.modes().maintenance());
        TreeSet<Integer> decommission = set(cs.modes().decommissioning());
        TreeSet<Integer> votersBefore = set(wantedVoters(broker, cs.modes()));
        TreeSet<Integer> voters = new TreeSet<>(votersBefore);
        Set<String> seen = new java.util.HashSet<>();
        for (var op : res.configs) {
            if (!seen.add(op.name)) {
                return failed(ErrorCodes.INVALID_REQUEST, "Error due to duplicate config keys: " + op.name);
            }
            if (op.name.equals(CONTROLLER_VOTERS) && op.configOperation == OP_DELETE) {
                return failed(ErrorCodes.INVALID_CONFIG, CONTROLLER_VOTERS + " cannot be deleted: the controller needs"
                    + " voters (SET the list, APPEND or SUBTRACT a node)");
            }
            TreeSet<Integer> target = switch (op.name) {
                case MAINTENANCE -> maintenance;
                case DECOMMISSION -> decommission;
                default -> voters;
            };
            TreeSet<Integer> items = new TreeSet<>();
            if (op.configOperation != OP_DELETE) {
                // A voter may be removed whether or not it ever registered (a seed that never started).
                boolean registered = !(op.name.equals(CONTROLLER_VOTERS) && op.configOperation == OP_SUBTRACT);
                String bad = parse(op.value, items, cs, registered);
                if (bad != null) {
                    return failed(ErrorCodes.INVALID_CONFIG, op.name + ": " + bad);
                }
            }
            switch (op.configOperation) {
                case OP_SET -> {
                    target.clear();
                    target.addAll(items);
                }
                case OP_DELETE -> target.clear();
                case OP_APPEND -> target.addAll(items);
                case OP_SUBTRACT -> target.removeAll(items);
                default -> {
                    return failed(ErrorCodes.INVALID_REQUEST, "unknown config operation " + op.configOperation + " for "
                        + op.name + " (SET 0, DELETE 1, APPEND 2, SUBTRACT 3)");
                }
            }
        }
        if (maintenance.size() > 1) {
            return failed(ErrorCodes.INVALID_CONFIG, MAINTENANCE + ": at most one node may be in maintenance at a time,"
                + " not " + maintenance);
        }
        if (!voters.equals(votersBefore)) {
            String bad = votersProblem(st, votersBefore, voters);
            if (bad != null) {
                return failed(ErrorCodes.INVALID_CONFIG, CONTROLLER_VOTERS + ": " + bad);
            }
        }
        List<ControllerCommand> commands = new ArrayList<>();
        for (int n : cs.modes().decommissioning()) {
            if (!decommission.contains(n)) {
                commands.add(new ControllerCommand.SetDecommission(n, false));
            }
        }
        for (int n : cs.modes().maintenance()) {
            if (!maintenance.contains(n)) {
                commands.add(new ControllerCommand.SetMaintenance(n, false));
            }
        }
        for (int n : maintenance) {
            if (!cs.modes().inMaintenance(n)) {
                commands.add(new ControllerCommand.SetMaintenance(n, true));
            }
        }
        for (int n : decommission) {
            if (!cs.modes().decommissioning(n)) {
                commands.add(new ControllerCommand.SetDecommission(n, true));
            }
        }
        if (!voters.equals(votersBefore)) {
            commands.add(new ControllerCommand.SetControllerVoters(voters.stream().mapToInt(Integer::intValue).toArray()));
        }
        if (validateOnly || commands.isEmpty()) {
            return Promise.completed(null);
        }
        return submit(broker, st, commands, 0);
    }

    /**
     * Why the controller voters cannot go from {@code before} to {@code after} now, or null: a new voter that is down
     * could not catch up, and without a live majority of the new voters the controller could commit nothing once the
     * change begins (the leader checks the same again before it starts, with its own view).
     */
    private static String votersProblem(ShardState st, TreeSet<Integer> before, TreeSet<Integer> after) {
        if (after.isEmpty()) {
            return "the controller needs at least one voter";
        }
        for (int n : after) {
            if (!before.contains(n) && !st.alive(n)) {
                return "node " + n + " is down: a new voter must be up to catch up with the controller log";
            }
        }
        List<Integer> down = new ArrayList<>();
        for (int n : after) {
            if (!st.alive(n)) {
                down.add(n);
            }
        }
        if (after.size() - down.size() <= after.size() / 2) {
            return "only " + (after.size() - down.size()) + " of the voters " + after + " would be up (down: " + down
                + "): the controller would stop; start nodes or keep voters that are up";
        }
        return null;
    }

    /** Submits {@code commands} from {@code i} on, in order, stopping at the first refusal. */
    private static Promise<Broker.Failure> submit(Broker broker, ShardState st, List<ControllerCommand> commands, int i) {
        if (i == commands.size()) {
            return Promise.completed(null);
        }
        return broker.controllerCall(st.shard, commands.get(i), table -> table).flatMap(o -> o instanceof Broker.Failure f
            ? Promise.completed(f) : submit(broker, st, commands, i + 1));
    }

    /** Parses a list of registered node ids into {@code out}; the problem, or null. */
    private static String parse(String value, TreeSet<Integer> out, ClusterState cs, boolean registered) {
        if (value == null || value.isBlank()) {
            return null;
        }
        for (String item : value.split(",")) {
            String t = item.trim();
            if (t.startsWith("[")) {
                t = t.substring(1);
            }
            if (t.endsWith("]")) {
                t = t.substring(0, t.length() - 1);
            }
            t = t.trim();
            if (t.isEmpty()) {
                continue;
            }
            int n;
            try {
                n = Integer.parseInt(t);
            } catch (NumberFormatException e) {
                return "'" + t + "' is not a node id (a list of node ids, e.g. 1,3)";
            }
            if (registered && cs.broker(n) == null) {
                return "node " + n + " is not a registered broker";
            }
            out.add(n);
        }
        return null;
    }

    private static TreeSet<Integer> set(int[] a) {
        TreeSet<Integer> s = new TreeSet<>();
        for (int v : a) {
            s.add(v);
        }
        return s;
    }

    private static Promise<Broker.Failure> failed(short code, String message) {
        return Promise.completed(new Broker.Failure(code, message));
    }
}
