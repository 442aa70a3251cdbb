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
 * <li>{@link #TXN}: transactions (issue 19): {@code --txn-producers} transactional producers (4), each writing
 *     its own partition of a topic of as many partitions in transactions of {@code --txn-records} records (100),
 *     and one read_committed consumer assigned every partition, on the same single-node broker; commit latency
 *     (commitTransaction's call to its return) is measured as well.</li>
 * <li>{@link #SASL_SSL}: issue 8's shape (one partition, one producer, one consumer) over SASL_SSL (TLS 1.3,
 *     SCRAM-SHA-512) on a single-node broker started with that one listener ({@link Security}) (issue 20).</li>
 * <li>{@link #CLUSTER}: a three-node cluster on this machine (three Isthmus nodes, or three Kafka brokers in
 *     KRaft combined mode), a topic of {@code --cluster-partitions} partitions (3) with replication factor 3,
 *     one producer and one assigned consumer.</li>
 * </ul>
 */
enum Suite {
    SINGLE("single"),
    MANY_PARTITIONS("many-partitions"),
    TXN("txn"),
    SASL_SSL("sasl-ssl"),
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

    /** Whether the workloads run on a broker whose only listener is SASL_SSL ({@link Security}). */
    boolean secured() {
        return this == SASL_SSL;
    }

    static Suite parse(String id) {
        for (Suite s : values()) {
            if (s.id.equals(id.trim().toLowerCase(Locale.ROOT))) {
                return s;
            }
        }
        throw new IllegalArgumentException("unknown workload '" + id + "' in --workloads; choose from single, "
            + "many-partitions, txn, sasl-ssl, cluster");
    }
}
