package dev.isthmus.bench.compare;

/**
 * The brokers {@link Compare} can run, in the order it runs them.
 *
 * <ul>
 * <li>{@link #ISTHMUS}: {@code ./isthmus start}; it makes every batch durable (fdatasync) before it
 *     acknowledges it.</li>
 * <li>{@link #KAFKA}: Apache Kafka with its defaults: acknowledged when in the page cache, flushed by the
 *     OS later.</li>
 * <li>{@link #KAFKA_FSYNC}: Apache Kafka with {@code log.flush.interval.messages=1}, so it fsyncs every
 *     appended batch before acknowledging it (the broker-level name; the topic-level {@code flush.messages}
 *     is silently ignored in server.properties).</li>
 * </ul>
 */
enum BrokerKind {
    ISTHMUS("isthmus", "Isthmus"),
    KAFKA("kafka", "Kafka"),
    KAFKA_FSYNC("kafka-fsync", "Kafka fsync");

    /** The name on the command line and in file names. */
    final String id;
    /** The name in the table and the charts. */
    final String label;

    BrokerKind(String id, String label) {
        this.id = id;
        this.label = label;
    }

    boolean isKafka() {
        return this != ISTHMUS;
    }

    static BrokerKind parse(String id) {
        for (BrokerKind k : values()) {
            if (k.id.equals(id)) {
                return k;
            }
        }
        throw new IllegalArgumentException("unknown broker '" + id + "' in --brokers; choose from isthmus, kafka, kafka-fsync");
    }
}
