package dev.isthmus.gateway.cluster;

import java.util.Arrays;

/**
 * The operator's per-node modes held in the {@link ClusterState} (snapshot version 8, commands
 * {@link ControllerCommand.SetMaintenance} and {@link ControllerCommand.SetDecommission}):
 *
 * <ul>
 *   <li><b>maintenance</b>: the node's partition leaders hand leadership to in-sync followers by Raft leadership
 *       transfer (no elections), its members stop campaigning, and no node hands leadership to it (preferred-leader
 *       balancing skips it) until maintenance is disabled, when preferred-leader balancing gives its leaderships back.
 *       It keeps its replicas and keeps replicating as a follower. At most one node at a time (Redpanda's rule): two
 *       nodes that may not lead could leave a partition whose remaining voter is down with no eligible leader.</li>
 *   <li><b>decommissioning</b>: the node gets no new replica (automatic placement skips it, an explicit assignment or
 *       a reassignment that adds it is refused), and the controller leader moves every replica it holds to other
 *       nodes through reassignments, a bounded number at a time ({@link Decommission}). It stays decommissioning once
 *       it holds nothing (so it gets nothing new) until it is recommissioned, which also cancels the moves off it that
 *       still run.</li>
 * </ul>
 * Immutable; node ids ascending, each at most once.
 *
 * <pre>
 *   snapshot (version 8, after the ACLs): maintenance (i32 n, n x node i32), decommissioning (i32 n, n x node i32)
 * </pre>
 */
public record NodeModes(int[] maintenance, int[] decommissioning) {
    public static final NodeModes NONE = new NodeModes(new int[0], new int[0]);

    public NodeModes {
        maintenance = Arrays.stream(maintenance).sorted().distinct().toArray();
        decommissioning = Arrays.stream(decommissioning).sorted().distinct().toArray();
    }

    @Override
    public int[] maintenance() {
        return maintenance.clone();
    }

    @Override
    public int[] decommissioning() {
        return decommissioning.clone();
    }

    public boolean inMaintenance(int node) {
        return Arrays.binarySearch(maintenance, node) >= 0;
    }

    public boolean decommissioning(int node) {
        return Arrays.binarySearch(decommissioning, node) >= 0;
    }

    NodeModes withMaintenance(int node, boolean on) {
        return new NodeModes(with(maintenance, node, on), decommissioning);
    }

    NodeModes withDecommissioning(int node, boolean on) {
        return new NodeModes(maintenance, with(decommissioning, node, on));
    }

    private static int[] with(int[] a, int node, boolean on) {
        if (on) {
            int[] b = Arrays.copyOf(a, a.length + 1);
            b[a.length] = node;
            return b;
        }
        return Arrays.stream(a).filter(n -> n != node).toArray();
    }

    void write(Wire.Writer w) {
        w.ints(maintenance).ints(decommissioning);
    }

    static NodeModes read(Wire.Reader r) {
        return new NodeModes(r.ints(), r.ints());
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof NodeModes m && Arrays.equals(m.maintenance, maintenance)
            && Arrays.equals(m.decommissioning, decommissioning);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(maintenance) * 31 + Arrays.hashCode(decommissioning);
    }

    @Override
    public String toString() {
        return "NodeModes[maintenance " + Arrays.toString(maintenance) + ", decommissioning "
            + Arrays.toString(decommissioning) + "]";
    }
}
