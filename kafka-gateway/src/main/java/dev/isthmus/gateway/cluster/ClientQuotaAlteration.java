package dev.isthmus.gateway.cluster;

import java.util.Collections;
import java.util.Map;
import java.util.SortedMap;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * One entry of Kafka's AlterClientQuotas: for one {@link ClientQuotaEntity}, the quota keys to set (key to value)
 * and those to remove. Immutable; carried by {@link ControllerCommand.AlterClientQuotas}.
 *
 * <p>The keys are Kafka's quota configs for user and client-id entities ({@code QuotaConfigs}), each with its
 * type: {@link #PRODUCER_BYTE_RATE} and {@link #CONSUMER_BYTE_RATE} (bytes per second per broker, whole numbers),
 * {@link #REQUEST_PERCENTAGE} (KIP-124: percent of one thread's time). Kafka's fourth key,
 * {@code controller_mutation_rate} (KIP-599), is refused with a sentence saying this broker does not enforce it:
 * accepting a quota that nothing enforces would mislead the operator.
 *
 * <pre>
 *   wire: entity (see ClientQuotaEntity), set (i32 n, n x (key, value f64 as i64 bits)), remove (i32 n, n x key)
 * </pre>
 */
public record ClientQuotaAlteration(ClientQuotaEntity entity, SortedMap<String, Double> set, SortedSet<String> remove) {
    public static final String PRODUCER_BYTE_RATE = "producer_byte_rate";
    public static final String CONSUMER_BYTE_RATE = "consumer_byte_rate";
    public static final String REQUEST_PERCENTAGE = "request_percentage";
    /** Kafka's key for the partition mutation rate (KIP-599); not enforced here, so refused. */
    public static final String CONTROLLER_MUTATION_RATE = "controller_mutation_rate";
    /** The ip entity's only key (KIP-612); not enforced here. */
    public static final String CONNECTION_CREATION_RATE = "connection_creation_rate";

    public ClientQuotaAlteration {
        set = Collections.unmodifiableSortedMap(new TreeMap<>(set));
        remove = Collections.unmodifiableSortedSet(new TreeSet<>(remove));
    }

    public static ClientQuotaAlteration of(ClientQuotaEntity entity, Map<String, Double> set, java.util.Set<String> remove) {
        return new ClientQuotaAlteration(entity, new TreeMap<>(set), new TreeSet<>(remove));
    }

    /** Whether {@code key} is a quota key this broker stores and enforces. */
    public static boolean isKnownKey(String key) {
        return PRODUCER_BYTE_RATE.equals(key) || CONSUMER_BYTE_RATE.equals(key) || REQUEST_PERCENTAGE.equals(key);
    }

    /**
     * Why {@code value} cannot be the value of {@code key}, or null. The messages are Kafka's where Kafka refuses
     * the same thing ({@code ClientQuotaControlManager}); Kafka also takes zero and negative values, which would make
     * every request of the entity wait forever (the throttle time divides by the quota), so they are refused here.
     */
    public static String valueProblem(String key, double value) {
        if (!isKnownKey(key)) {
            if (CONTROLLER_MUTATION_RATE.equals(key) || CONNECTION_CREATION_RATE.equals(key)) {
                return "Quota " + key + " is not supported by this broker: it would not be enforced";
            }
            return "Invalid configuration key " + key;
        }
        if (Double.isNaN(value) || Double.isInfinite(value)) {
            return "Configuration " + key + " must be a finite number, not " + value;
        }
        if (!REQUEST_PERCENTAGE.equals(key)) {
            double epsilon = 1e-6;
            long whole = (long) (value + epsilon);
            if (Math.abs((double) whole - value) > epsilon) {
                return "Configuration " + key + " must be a Long value";
            }
        }
        if (value <= 0) {
            return "Configuration " + key + " must be greater than 0, not " + value;
        }
        return null;
    }

    /** Why this alteration cannot apply, or null. */
    public String problem() {
        String p = entity.problem();
        if (p != null) {
            return p;
        }
        for (var e : set.entrySet()) {
            p = valueProblem(e.getKey(), e.getValue());
            if (p != null) {
                return p;
            }
            if (remove.contains(e.getKey())) {
                return "Duplicate quota key " + e.getKey() + " not updating quota for this entity " + entity;
            }
        }
        return null; // removing a key the entity does not have is no error (Kafka's rule)
    }

    void write(Wire.Writer w) {
        entity.write(w);
        w.i32(set.size());
        set.forEach((k, v) -> w.str(k).i64(Double.doubleToLongBits(v)));
        w.i32(remove.size());
        remove.forEach(w::str);
    }

    static ClientQuotaAlteration read(Wire.Reader r) {
        ClientQuotaEntity entity = ClientQuotaEntity.read(r);
        int n = r.count(12);
        TreeMap<String, Double> set = new TreeMap<>();
        for (int i = 0; i < n; i++) {
            set.put(r.str(), Double.longBitsToDouble(r.i64()));
        }
        int m = r.count(4);
        TreeSet<String> remove = new TreeSet<>();
        for (int i = 0; i < m; i++) {
            remove.add(r.str());
        }
        return new ClientQuotaAlteration(entity, set, remove);
    }
}
