package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.message.IncrementalAlterConfigsRequestData;
import dev.isthmus.gateway.cluster.ClusterState;
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
    static final Set<String> NAMES = Set.of(MAINTENANCE, DECOMMISSION);
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
    static String value(NodeModes modes, String name) {
        int[] nodes = name.equals(MAINTENANCE) ? modes.maintenance() : modes.decommissioning();
        StringBuilder sb = new StringBuilder();
        for (int n : nodes) {
            sb.append(sb.isEmpty() ? "" : ",").append(n);
        }
        return sb.toString();
    }

    static String documentation(String name) {
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
            return failed(ErrorCodes.INVALID_REQUEST, MAINTENANCE + " and " + DECOMMISSION + " are altered in a resource"
                + " of their own, without other broker configs");
        }
        if (!res.resourceName.isEmpty()) {
            return failed(ErrorCodes.INVALID_REQUEST, MAINTENANCE + " and " + DECOMMISSION + " are cluster-wide: alter"
                + " them on the broker resource with the empty name (kafka-configs.sh --entity-type brokers"
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
        Set<String> seen = new java.util.HashSet<>();
        for (var op : res.configs) {
            if (!seen.add(op.name)) {
                return failed(ErrorCodes.INVALID_REQUEST, "Error due to duplicate config keys: " + op.name);
            }
            TreeSet<Integer> target = op.name.equals(MAINTENANCE) ? maintenance : decommission;
            TreeSet<Integer> items = new TreeSet<>();
            if (op.configOperation != OP_DELETE) {
                String bad = parse(op.value, items, cs);
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
        if (validateOnly || commands.isEmpty()) {
            return Promise.completed(null);
        }
        return submit(broker, st, commands, 0);
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
    private static String parse(String value, TreeSet<Integer> out, ClusterState cs) {
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
            if (cs.broker(n) == null) {
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
