package dev.isthmus.bench.chaos;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Where the nodes of a cluster live on the network, and the network partitions between them.
 *
 * <p>With namespaces (root, and {@code ip netns add} works), each node runs in its own network namespace
 * {@code chaos-RUN-nI} with one address, {@code SUBNET.I.2}, on a veth link to a hub namespace
 * {@code chaos-RUN-hub}, which routes between the nodes (IP forwarding on in the hub only) and to the suite's
 * own namespace through one more veth pair (the suite's side {@code SUBNET.250.1}, a route to
 * {@code SUBNET.0.0/16} through it). Every node listens on the same ports of its own address.
 *
 * <pre>
 *   suite (root namespace) --veth-- hub --veth-- node 0 (SUBNET.0.2)
 *                                       --veth-- node 1 (SUBNET.1.2)
 *                                       --veth-- node 2 (SUBNET.2.2)
 * </pre>
 *
 * A partition is a set of policy rules in the hub, {@code ip rule add from A to B blackhole}: the hub drops
 * the packets between those nodes silently, as a failed switch does (no reset, no ICMP; no iptables needed),
 * in the directions given, while every node stays reachable from the clients. Healing deletes the rules.
 *
 * <p>Without namespaces (not root, or {@code ip} missing or refused) the nodes listen on 127.0.0.1 on ports
 * {@code base + 10 * I} (Kafka), {@code + 1} (RPC), {@code + 2} (metrics), and {@link #reason()} says why
 * partitions are skipped.
 *
 * <p>Lifecycle: made before the nodes start, closed (namespaces and links deleted) after they have stopped;
 * registered with the run's cleanup. Used by the run's thread and the nemesis thread, one at a time
 * (synchronized).
 */
final class Network implements AutoCloseable {
    static final int KAFKA_PORT = 9092;
    static final int RPC_PORT = 33145;
    static final int METRICS_PORT = 9644;
    private static final int FIRST_RULE_PREF = 1000;

    private final int nodes;
    private final boolean namespaces;
    private final String reason;
    private final String runId;
    private final String subnet; // null without namespaces
    private final int basePort;
    private final List<String> made = new ArrayList<>();
    private final List<Integer> rules = new ArrayList<>();
    private final List<int[]> blocked = new ArrayList<>();
    private String rootLink;
    private boolean closed;

    private Network(int nodes, boolean namespaces, String reason, String runId, String subnet, int basePort) {
        this.nodes = nodes;
        this.namespaces = namespaces;
        this.reason = reason;
        this.runId = runId;
        this.subnet = subnet;
        this.basePort = basePort;
    }

    /** Why namespaces cannot be made here, or null when they can. */
    static String namespacesUnavailable() {
        if (!Sys.root()) {
            return "network namespaces need root (running as " + System.getProperty("user.name") + ")";
        }
        if (!Sys.has("ip")) {
            return "the ip command (iproute2) is missing";
        }
        return null;
    }

    /**
     * Makes the network for {@code nodes} nodes: namespaces when {@code wantNamespaces} and possible, else
     * loopback with the reason. {@code subnet} null picks a free 10.X (200 to 254). Fails only when namespaces
     * were made halfway and could not be completed, or no private network is free.
     */
    static Network create(int nodes, boolean wantNamespaces, String runId, String subnet, int basePort) {
        String why = wantNamespaces ? namespacesUnavailable() : "--no-netns was given";
        if (why == null) {
            if (subnet == null) {
                subnet = freeSubnet(runId);
                if (subnet == null) {
                    throw new ChaosException("every private network 10.200.0.0/16 to 10.254.0.0/16 is in use on this "
                        + "machine; pick one with --subnet A.B, or --no-netns");
                }
            }
            String used = subnetInUse(subnet);
            if (used != null) {
                throw new ChaosException("the private network " + subnet + ".0.0/16 is already in use on this "
                    + "machine (" + used + "); pick another with --subnet A.B, or --no-netns");
            }
            Network n = new Network(nodes, true, null, runId, subnet, basePort);
            try {
                n.build();
                return n;
            } catch (ChaosException e) {
                n.close();
                String probe = e.getMessage();
                if (n.made.isEmpty() || probe.contains("netns add")) {
                    why = "network namespaces cannot be made here: " + probe;
                } else {
                    throw e;
                }
            }
        }
        return new Network(nodes, false, why, runId, subnet, basePort);
    }

    /** A 10.X of 10.200-10.254 with no address or route on this machine, starting at a place given by {@code runId}. */
    private static String freeSubnet(String runId) {
        String all = Sys.run("ip", "-4", "addr").output() + "\n" + Sys.run("ip", "-4", "route").output();
        int start = Math.floorMod(runId.hashCode(), 55);
        for (int i = 0; i < 55; i++) {
            String candidate = "10." + (200 + (start + i) % 55);
            if (!all.contains(" " + candidate + ".") && !all.contains("\n" + candidate + ".") && !all.startsWith(candidate + ".")) {
                return candidate;
            }
        }
        return null;
    }

    private static String subnetInUse(String subnet) {
        String prefix = subnet + ".";
        for (String line : (Sys.run("ip", "-4", "addr").output() + "\n" + Sys.run("ip", "-4", "route").output()).split("\n")) {
            if (line.contains(" " + prefix) || line.startsWith(prefix)) {
                return line.strip();
            }
        }
        return null;
    }

    private String ns(int node) {
        return "chaos-" + runId + "-n" + node;
    }

    private String hub() {
        return "chaos-" + runId + "-hub";
    }

    private void build() {
        String hub = hub();
        Sys.must("ip", "netns", "add", hub);
        made.add(hub);
        Sys.must("ip", "netns", "exec", hub, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward");
        Sys.must("ip", "-n", hub, "link", "set", "lo", "up");
        rootLink = "cx" + runId + "r";
        Sys.must("ip", "link", "add", rootLink, "type", "veth", "peer", "name", "cx" + runId + "rh", "netns", hub);
        Sys.must("ip", "addr", "add", subnet + ".250.1/24", "dev", rootLink);
        Sys.must("ip", "link", "set", rootLink, "up");
        Sys.must("ip", "-n", hub, "addr", "add", subnet + ".250.2/24", "dev", "cx" + runId + "rh");
        Sys.must("ip", "-n", hub, "link", "set", "cx" + runId + "rh", "up");
        Sys.must("ip", "route", "add", subnet + ".0.0/16", "via", subnet + ".250.2", "dev", rootLink);
        for (int i = 0; i < nodes; i++) {
            String ns = ns(i);
            Sys.must("ip", "netns", "add", ns);
            made.add(ns);
            Sys.must("ip", "-n", ns, "link", "set", "lo", "up");
            String hubSide = "cx" + runId + "h" + i;
            Sys.must("ip", "link", "add", hubSide, "netns", hub, "type", "veth", "peer", "name", "eth0", "netns", ns);
            Sys.must("ip", "-n", hub, "addr", "add", subnet + "." + i + ".1/24", "dev", hubSide);
            Sys.must("ip", "-n", hub, "link", "set", hubSide, "up");
            Sys.must("ip", "-n", ns, "addr", "add", host(i) + "/24", "dev", "eth0");
            Sys.must("ip", "-n", ns, "link", "set", "eth0", "up");
            Sys.must("ip", "-n", ns, "route", "add", "default", "via", subnet + "." + i + ".1");
        }
    }

    boolean namespaces() {
        return namespaces;
    }

    /** Why partitions are not possible (null when they are). */
    String reason() {
        return reason;
    }

    String host(int node) {
        return namespaces ? subnet + "." + node + ".2" : "127.0.0.1";
    }

    int kafkaPort(int node) {
        return namespaces ? KAFKA_PORT : basePort + 10 * node;
    }

    int rpcPort(int node) {
        return namespaces ? RPC_PORT : basePort + 10 * node + 1;
    }

    int metricsPort(int node) {
        return namespaces ? METRICS_PORT : basePort + 10 * node + 2;
    }

    /** The command that runs {@code cmd} in the node's namespace (unchanged without namespaces). */
    List<String> wrap(int node, List<String> cmd) {
        if (!namespaces) {
            return cmd;
        }
        List<String> w = new ArrayList<>(List.of("ip", "netns", "exec", ns(node)));
        w.addAll(cmd);
        return w;
    }

    /** The namespace names, for the record. */
    String describe() {
        if (!namespaces) {
            return "loopback 127.0.0.1, ports from " + basePort + " (no partitions: " + reason + ")";
        }
        return String.format(Locale.ROOT, "namespaces chaos-%s-n0..n%d on %s.0.0/16 through hub chaos-%s-hub",
            runId, nodes - 1, subnet, runId);
    }

    /**
     * Drops every packet between the nodes of different {@code sides} (both directions). A node in no side
     * keeps talking to everyone.
     */
    synchronized void partition(List<Set<Integer>> sides) {
        for (int a = 0; a < sides.size(); a++) {
            for (int b = a + 1; b < sides.size(); b++) {
                for (int x : sides.get(a)) {
                    for (int y : sides.get(b)) {
                        block(x, y);
                        block(y, x);
                    }
                }
            }
        }
    }

    /** Drops packets from {@code from} to {@code to}. */
    synchronized void block(int from, int to) {
        requireNamespaces();
        int pref = FIRST_RULE_PREF + rules.size();
        Sys.must("ip", "-n", hub(), "rule", "add", "from", host(from), "to", host(to), "blackhole", "pref",
            Integer.toString(pref));
        rules.add(pref);
        blocked.add(new int[] {from, to});
    }

    /** The links cut now, as "0->1 1->0 ...". */
    synchronized String cuts() {
        StringBuilder sb = new StringBuilder();
        for (int[] b : blocked) {
            sb.append(sb.length() == 0 ? "" : " ").append(b[0]).append("->").append(b[1]);
        }
        return sb.toString();
    }

    synchronized boolean partitioned() {
        return !rules.isEmpty();
    }

    /** Removes every partition rule. */
    synchronized void heal() {
        if (!namespaces) {
            return;
        }
        List<String> failures = new ArrayList<>();
        for (int pref : rules) {
            Sys.Result r = Sys.run("ip", "-n", hub(), "rule", "del", "pref", Integer.toString(pref));
            if (!r.ok()) {
                failures.add(r.output());
            }
        }
        rules.clear();
        blocked.clear();
        if (!failures.isEmpty()) {
            throw new ChaosException("could not heal the network partition: " + String.join("; ", failures));
        }
    }

    private void requireNamespaces() {
        if (!namespaces) {
            throw new IllegalStateException("network partitions need namespaces: " + reason);
        }
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        List<String> failures = new ArrayList<>();
        for (int i = made.size() - 1; i >= 0; i--) {
            Sys.Result r = Sys.run("ip", "netns", "del", made.get(i));
            if (!r.ok()) {
                failures.add(r.output());
            }
        }
        made.clear();
        if (rootLink != null && Sys.run("ip", "link", "show", rootLink).ok()) {
            Sys.run("ip", "link", "del", rootLink);
        }
        if (!failures.isEmpty()) {
            throw new ChaosException("could not delete the network namespaces: " + String.join("; ", failures));
        }
    }
}
