package dev.isthmus.bench.compare;

/**
 * One workload of a run: its {@link Suite}, the shape of its topic and clients, and its rate. Immutable.
 *
 * @param suite      the family it belongs to
 * @param shape      partitions, replication, producers and consumers
 * @param ratePerSec records per second across all producers, 0 for saturation
 */
record Spec(Suite suite, Workload.Shape shape, long ratePerSec) {

    /**
     * The table's name: {@code 20000/s} for the single-partition suite, {@code 64p 20000/s}, {@code txn 20000/s},
     * {@code sasl-ssl 20000/s}, {@code 3-node saturation}.
     */
    String name() {
        String rate = CompareOptions.workloadName(ratePerSec);
        return switch (suite) {
            case SINGLE -> rate;
            case MANY_PARTITIONS -> shape.partitions() + "p " + rate;
            case TXN -> "txn " + rate;
            case SASL_SSL -> "sasl-ssl " + rate;
            case CLUSTER -> Suite.CLUSTER_NODES + "-node " + rate;
        };
    }

    /** The name in file and topic names: {@code 20000}, {@code 64p-saturation}, {@code txn-20000}, {@code 3node-20000}. */
    String fileId() {
        String rate = ratePerSec == 0 ? "saturation" : Long.toString(ratePerSec);
        return switch (suite) {
            case SINGLE -> rate;
            case MANY_PARTITIONS -> shape.partitions() + "p-" + rate;
            case TXN -> "txn-" + rate;
            case SASL_SSL -> "sasl-ssl-" + rate;
            case CLUSTER -> Suite.CLUSTER_NODES + "node-" + rate;
        };
    }

    /** The topic this workload creates and writes. */
    String topic() {
        return "compare-" + fileId();
    }
}
