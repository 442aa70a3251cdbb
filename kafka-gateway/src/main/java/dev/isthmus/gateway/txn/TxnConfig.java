package dev.isthmus.gateway.txn;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The transaction coordinator's broker settings, by Kafka's names (each may be given in a broker's
 * {@code --config} file or as {@code --name=value}). Immutable; validated when built.
 *
 * @param stateLogPartitions          {@code transaction.state.log.num.partitions} (50): partitions of
 *                                    {@code __transaction_state}, fixed once the topic exists
 * @param maxTimeoutMs                {@code transaction.max.timeout.ms} (15 min): InitProducerId with a larger
 *                                    {@code transaction.timeout.ms} gets INVALID_TRANSACTION_TIMEOUT
 * @param idExpirationMs              {@code transactional.id.expiration.ms} (7 d): an id idle this long, with no
 *                                    transaction open, is removed (a tombstone in the log)
 * @param abortTimedOutIntervalMs     {@code transaction.abort.timed.out.transaction.cleanup.interval.ms} (10 s):
 *                                    how often open transactions past their timeout are looked for and aborted
 * @param removeExpiredIntervalMs     {@code transaction.remove.expired.transaction.cleanup.interval.ms} (1 h):
 *                                    how often expired ids are looked for
 * @param transactionVersion          {@code transaction.version} (2): the finalized feature level advertised in
 *                                    ApiVersions; 2 lets Kafka 4.x clients use KIP-890's epoch bump per
 *                                    transaction, 1 and 0 keep them on the first protocol; 0 also writes the
 *                                    log's values in version 0
 * @param addRetryBackoffMs           {@code add.partitions.to.txn.retry.backoff.ms} (20): a partition leader whose
 *                                    request to add its partition to a transaction (Produce v12, KIP-890 part 2) gets
 *                                    CONCURRENT_TRANSACTIONS (the producer's last transaction still completing) asks
 *                                    again after this long
 * @param addRetryBackoffMaxMs        {@code add.partitions.to.txn.retry.backoff.max.ms} (1000; Kafka's is 100): it
 *                                    asks again while less than this has passed since its first request, then
 *                                    answers the Produce (0: no retry); as Kafka, only the add, not the verification
 *                                    of transaction version 1. Longer than Kafka's because here the previous
 *                                    transaction's completion (markers, then CompleteCommit, each durable) often
 *                                    outlasts 100 ms under load: the Produce was then answered NOT_ENOUGH_REPLICAS
 *                                    and the client backed off retry.backoff.ms (100 ms, doubling to 1 s), which made
 *                                    commits of back-to-back transactions take 10-20 times Kafka's (bench txn)
 */
public record TxnConfig(int stateLogPartitions, int maxTimeoutMs, long idExpirationMs, long abortTimedOutIntervalMs,
                        long removeExpiredIntervalMs, int transactionVersion, int addRetryBackoffMs,
                        int addRetryBackoffMaxMs) {
    public static final String STATE_LOG_PARTITIONS = "transaction.state.log.num.partitions";
    public static final String MAX_TIMEOUT_MS = "transaction.max.timeout.ms";
    public static final String ID_EXPIRATION_MS = "transactional.id.expiration.ms";
    public static final String ABORT_INTERVAL_MS = "transaction.abort.timed.out.transaction.cleanup.interval.ms";
    public static final String REMOVE_INTERVAL_MS = "transaction.remove.expired.transaction.cleanup.interval.ms";
    public static final String TRANSACTION_VERSION = "transaction.version";
    public static final String ADD_RETRY_BACKOFF_MS = "add.partitions.to.txn.retry.backoff.ms";
    public static final String ADD_RETRY_BACKOFF_MAX_MS = "add.partitions.to.txn.retry.backoff.max.ms";
    /** The setting names this record takes. */
    public static final Set<String> NAMES = Set.of(STATE_LOG_PARTITIONS, MAX_TIMEOUT_MS, ID_EXPIRATION_MS,
        ABORT_INTERVAL_MS, REMOVE_INTERVAL_MS, TRANSACTION_VERSION, ADD_RETRY_BACKOFF_MS, ADD_RETRY_BACKOFF_MAX_MS);
    /** The highest transaction.version this broker implements. */
    public static final int MAX_TRANSACTION_VERSION = 2;
    /** Kafka's epoch limit: an epoch at or above Short.MAX_VALUE - 1 is exhausted (the last one is kept for fencing). */
    public static final short MAX_EPOCH = Short.MAX_VALUE - 1;

    public static final TxnConfig DEFAULTS = new TxnConfig(50, 900_000, 7L * 24 * 3600 * 1000, 10_000, 3_600_000,
        MAX_TRANSACTION_VERSION, 20, 1000);

    public TxnConfig {
        if (stateLogPartitions < 1) {
            throw new IllegalArgumentException(STATE_LOG_PARTITIONS + " must be at least 1, got " + stateLogPartitions);
        }
        if (maxTimeoutMs < 1) {
            throw new IllegalArgumentException(MAX_TIMEOUT_MS + " must be at least 1, got " + maxTimeoutMs);
        }
        if (idExpirationMs < 1) {
            throw new IllegalArgumentException(ID_EXPIRATION_MS + " must be at least 1, got " + idExpirationMs);
        }
        if (abortTimedOutIntervalMs < 1) {
            throw new IllegalArgumentException(ABORT_INTERVAL_MS + " must be at least 1, got " + abortTimedOutIntervalMs);
        }
        if (removeExpiredIntervalMs < 1) {
            throw new IllegalArgumentException(REMOVE_INTERVAL_MS + " must be at least 1, got " + removeExpiredIntervalMs);
        }
        if (transactionVersion < 0 || transactionVersion > MAX_TRANSACTION_VERSION) {
            throw new IllegalArgumentException(TRANSACTION_VERSION + " must be 0, 1 or 2, got " + transactionVersion);
        }
        if (addRetryBackoffMs < 1) {
            throw new IllegalArgumentException(ADD_RETRY_BACKOFF_MS + " must be at least 1, got " + addRetryBackoffMs);
        }
        if (addRetryBackoffMaxMs < 0) {
            throw new IllegalArgumentException(ADD_RETRY_BACKOFF_MAX_MS + " must be at least 0, got "
                + addRetryBackoffMaxMs);
        }
    }

    /** This config with setting {@code name} (one of {@link #NAMES}) set from its text. */
    public TxnConfig with(String name, String value) {
        String v = value.trim();
        try {
            return switch (name) {
                case STATE_LOG_PARTITIONS -> new TxnConfig(Integer.parseInt(v), maxTimeoutMs, idExpirationMs,
                    abortTimedOutIntervalMs, removeExpiredIntervalMs, transactionVersion, addRetryBackoffMs,
                    addRetryBackoffMaxMs);
                case MAX_TIMEOUT_MS -> new TxnConfig(stateLogPartitions, Integer.parseInt(v), idExpirationMs,
                    abortTimedOutIntervalMs, removeExpiredIntervalMs, transactionVersion, addRetryBackoffMs,
                    addRetryBackoffMaxMs);
                case ID_EXPIRATION_MS -> new TxnConfig(stateLogPartitions, maxTimeoutMs, Long.parseLong(v),
                    abortTimedOutIntervalMs, removeExpiredIntervalMs, transactionVersion, addRetryBackoffMs,
                    addRetryBackoffMaxMs);
                case ABORT_INTERVAL_MS -> new TxnConfig(stateLogPartitions, maxTimeoutMs, idExpirationMs,
                    Long.parseLong(v), removeExpiredIntervalMs, transactionVersion, addRetryBackoffMs,
                    addRetryBackoffMaxMs);
                case REMOVE_INTERVAL_MS -> new TxnConfig(stateLogPartitions, maxTimeoutMs, idExpirationMs,
                    abortTimedOutIntervalMs, Long.parseLong(v), transactionVersion, addRetryBackoffMs,
                    addRetryBackoffMaxMs);
                case TRANSACTION_VERSION -> new TxnConfig(stateLogPartitions, maxTimeoutMs, idExpirationMs,
                    abortTimedOutIntervalMs, removeExpiredIntervalMs, Integer.parseInt(v), addRetryBackoffMs,
                    addRetryBackoffMaxMs);
                case ADD_RETRY_BACKOFF_MS -> new TxnConfig(stateLogPartitions, maxTimeoutMs, idExpirationMs,
                    abortTimedOutIntervalMs, removeExpiredIntervalMs, transactionVersion, Integer.parseInt(v),
                    addRetryBackoffMaxMs);
                case ADD_RETRY_BACKOFF_MAX_MS -> new TxnConfig(stateLogPartitions, maxTimeoutMs, idExpirationMs,
                    abortTimedOutIntervalMs, removeExpiredIntervalMs, transactionVersion, addRetryBackoffMs,
                    Integer.parseInt(v));
                default -> throw new IllegalArgumentException("unknown transaction setting " + name);
            };
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + " must be a whole number, got '" + value + "'");
        }
    }

    /** The settings by Kafka's names with their values (DescribeConfigs of the broker). */
    public Map<String, String> asMap() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put(STATE_LOG_PARTITIONS, Integer.toString(stateLogPartitions));
        m.put(MAX_TIMEOUT_MS, Integer.toString(maxTimeoutMs));
        m.put(ID_EXPIRATION_MS, Long.toString(idExpirationMs));
        m.put(ABORT_INTERVAL_MS, Long.toString(abortTimedOutIntervalMs));
        m.put(REMOVE_INTERVAL_MS, Long.toString(removeExpiredIntervalMs));
        m.put(TRANSACTION_VERSION, Integer.toString(transactionVersion));
        m.put(ADD_RETRY_BACKOFF_MS, Integer.toString(addRetryBackoffMs));
        m.put(ADD_RETRY_BACKOFF_MAX_MS, Integer.toString(addRetryBackoffMaxMs));
        return m;
    }

    /** Kafka's placement of a transactional id: {@code Utils.abs(id.hashCode()) % partitions}. */
    public static int partitionFor(String transactionalId, int partitions) {
        int h = transactionalId.hashCode();
        return (h == Integer.MIN_VALUE ? 0 : Math.abs(h)) % partitions;
    }
}
