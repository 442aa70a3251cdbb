package dev.isthmus.bench.compare;

import java.util.Locale;

/**
 * The families of workloads {@link Compare} runs, in run order, chosen with {@code --workloads}.
 *
 * <ul>
 * <li>{@link #SINGLE}: one partition, one producer, one assigned consumer, on a single-node broker (issue 8's
 *     workloads).</li>
 * <li>{@link #MANY_PARTITIONS}: {@code --partitions} partitions (64), {@code --producers} producers (4), each
 *     spreading its records round-robin over every partition, and a consumer group of {@code --consumers}
 *     members (4), on the same single-node broker.</li>
 * <li>{@link #CLUSTER}: a three-node cluster on this machine (three Isthmus nodes, or three Kafka brokers in
 *     KRaft combined mode), a topic of {@code --cluster-partitions} partitions (3) with replication factor 3,
 *     one producer and one assigned consumer.</li>
 * </ul>
 */
enum Suite {
    SINGLE("single"),
    MANY_PARTITIONS("many-partitions"),
    CLUSTER("cluster");

    /** Nodes of the cluster the {@link #CLUSTER} workloads run on. */
    static final int CLUSTER_NODES = 3;

    /** The name on the command line. */
    final String id;

    Suite(String id) {
        this.id = id;
    }

    /** Whether the workloads run on a {@link #CLUSTER_NODES}-node cluster rather than one broker. */
    boolean onCluster() {
        return this == CLUSTER;
    }

    static Suite parse(String id) {
        for (Suite s : values()) {
            if (s.id.equals(id.trim().toLowerCase(Locale.ROOT))) {
                return s;
            }
        }
        throw new IllegalArgumentException("unknown workload '" + id + "' in --workloads; choose from single, "
            + "many-partitions, cluster");
    }
}
