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
 *   <li><b>controller voters</b> (snapshot version 10, command {@link ControllerCommand.SetControllerVoters}): the
 *       nodes that should vote in the controller group. Empty until an operator first changes them: the group then
 *       keeps the voters it was bootstrapped with (the {@code --seeds}). Once set, the controller leader drives the
 *       controller group's Raft membership towards them (new voters join as learners and catch up, then a joint
 *       consensus change), and every node, whatever its {@code --seeds}, keeps that membership across restarts
 *       (see {@link Controller}).</li>
 * </ul>
 * Immutable; node ids ascending, each at most once.
 *
 * <pre>
 *   snapshot (version 8, after the ACLs): maintenance (i32 n, n x node i32), decommissioning (i32 n, n x node i32)
 *            (version 10 adds): controller voters (i32 n, n x node i32; 0 = never set)
 * </pre>
 */
public record NodeModes(int[] maintenance, int[] decommissioning, int[] controllerVoters) {
    public static final NodeModes NONE = new NodeModes(new int[0], new int[0], new int[0]);

    public NodeModes {
        maintenance = Arrays.stream(maintenance).sorted().distinct().toArray();
        decommissioning = Arrays.stream(decommissioning).sorted().distinct().toArray();
        controllerVoters = Arrays.stream(controllerVoters).sorted().distinct().toArray();
    }

    public NodeModes(int[] maintenance, int[] decommissioning) {
        this(maintenance, decommissioning, new int[0]);
    }

    /** The controller voters an operator set, ascending; empty when never set (the bootstrap voters stand). */
    @Override
    public int[] controllerVoters() {
        return controllerVoters.clone();
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
        return new NodeModes(with(maintenance, node, on), decommissioning, controllerVoters);
    }

    NodeModes withDecommissioning(int node, boolean on) {
        return new NodeModes(maintenance, with(decommissioning, node, on), controllerVoters);
    }

    NodeModes withControllerVoters(int[] voters) {
        return new NodeModes(maintenance, decommissioning, voters);
    }

    private static int[] with(int[] a, int node, boolean on) {
        if (on) {
            int[] b = Arrays.copyOf(a, a.length + 1);
            b[a.length] = node;
            return b;
        }
        return Arrays.stream(a).filter(n -> n != node).toArray();
    }

    /** Writes the version 10 form. */
    void write(Wire.Writer w) {
        w.ints(maintenance).ints(decommissioning).ints(controllerVoters);
    }

    /** Reads what snapshot {@code version} (8 or later) wrote. */
    static NodeModes read(Wire.Reader r, int version) {
        int[] m = r.ints();
        int[] d = r.ints();
        return new NodeModes(m, d, version >= 10 ? r.ints() : new int[0]);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof NodeModes m && Arrays.equals(m.maintenance, maintenance)
            && Arrays.equals(m.decommissioning, decommissioning) && Arrays.equals(m.controllerVoters, controllerVoters);
    }

    @Override
    public int hashCode() {
        return (Arrays.hashCode(maintenance) * 31 + Arrays.hashCode(decommissioning)) * 31
            + Arrays.hashCode(controllerVoters);
    }

    @Override
    public String toString() {
        return "NodeModes[maintenance " + Arrays.toString(maintenance) + ", decommissioning "
            + Arrays.toString(decommissioning) + ", controller voters " + Arrays.toString(controllerVoters) + "]";
    }
}
