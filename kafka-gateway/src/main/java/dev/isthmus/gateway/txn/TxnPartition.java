package dev.isthmus.gateway.txn;

/** A partition taking part in a transaction: a topic name and a partition index, ordered by both. */
public record TxnPartition(String topic, int partition) implements Comparable<TxnPartition> {
    public TxnPartition {
        if (topic == null) {
            throw new IllegalArgumentException("a transaction partition needs a topic name");
        }
    }

    @Override
    public int compareTo(TxnPartition o) {
        int c = topic.compareTo(o.topic);
        return c != 0 ? c : Integer.compare(partition, o.partition);
    }

    @Override
    public String toString() {
        return topic + "-" + partition;
    }
}
