package dev.isthmus.gateway;

import dev.isthmus.log.LogConfig;
import dev.isthmus.log.RecordBatch;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The catalog of topic configs: every topic config of Apache Kafka 4.3 with its type, default, Kafka's range,
 * the broker settings that give it a default ({@code log.retention.hours} for {@code retention.ms}, ...), whether
 * it has an effect on this broker, and one paragraph of documentation saying what it does here. Values are
 * checked as Kafka's {@code LogConfig} checks them (same types, same ranges, same unknown-name refusal), plus the
 * bounds this broker really has ({@link Defaults#maxMessageBytesLimit()}); a topic stores only its overrides,
 * and everything else is the broker's default or Kafka's.
 *
 * <p>Configs that mean nothing here (no tiered storage, no replication throttles, Raft instead of ISR elections,
 * every batch fdatasynced before acks=all is answered) are accepted, stored, reported and documented as having no
 * effect, so Terraform, Strimzi, Kafka Streams and MirrorMaker 2 topic specs pass unchanged. Three configs Kafka
 * 4.0 removed ({@link #LEGACY}) are accepted the same way for specs written for Kafka 3.x.
 *
 * <p>Entry points for request handlers: {@link #invalid} (one key), {@link #validate} (a whole set of overrides,
 * per-key reasons, cross-key rules included), {@link #effective}, {@link #source}, {@link #logConfig},
 * {@link #minInsyncReplicas}. Immutable and stateless: safe from any thread.
 */
final class TopicConfigs {
    /** Kafka's ConfigType codes (DescribeConfigs v3+). */
    enum Type {
        BOOLEAN(1), STRING(2), INT(3), SHORT(4), LONG(5), DOUBLE(6), LIST(7), CLASS(8), PASSWORD(9);

        final byte code;

        Type(int code) {
            this.code = (byte) code;
        }
    }

    /** Kafka's ConfigSource codes (DescribeConfigs). */
    static final byte SOURCE_TOPIC = 1;
    static final byte SOURCE_STATIC_BROKER = 4;
    static final byte SOURCE_DEFAULT = 5;

    /** Kafka's default max.message.bytes: 1 MiB plus the 12-byte log overhead of a batch. */
    static final int KAFKA_DEFAULT_MAX_MESSAGE_BYTES = (1 << 20) + 12;

    /** A value's range or form beyond its type: null when fine, else what is wrong (Kafka's phrasing). */
    @FunctionalInterface
    interface Check {
        String problem(Object parsed);
    }

    /**
     * A broker setting giving a topic config its default, in {@code unitMs} milliseconds per unit (hours and
     * minutes settings) or 1.
     */
    record BrokerName(String name, long unit) {
    }

    /**
     * One topic config.
     *
     * @param brokerNames   broker settings that default it, highest precedence first (Kafka's synonyms)
     * @param applied       whether the setting changes anything on this broker
     * @param documentation what it does here, for DescribeConfigs
     */
    record Definition(String name, Type type, String defaultValue, List<BrokerName> brokerNames, Check check,
                      boolean applied, String documentation) {
        /** The broker setting Kafka reports the default under (the last, coarsest synonym, as Kafka does). */
        String brokerName() {
            return brokerNames.isEmpty() ? name : brokerNames.get(brokerNames.size() - 1).name();
        }
    }

    /** Kafka 4.3's topic configs, in Kafka's order. */
    static final Map<String, Definition> DEFINITIONS;
    /** Topic configs Kafka 4.0 removed: accepted, stored and reported when set, with no effect. */
    static final Map<String, Definition> LEGACY;
    /** Broker setting name -> the topic config it defaults. */
    static final Map<String, String> BY_BROKER_NAME;

    private static final String NO_EFFECT = " Stored and reported; it has no effect on this broker: ";
    private static final long HOUR_MS = 3_600_000L;
    private static final long MINUTE_MS = 60_000L;

    static {
        Map<String, Definition> d = new LinkedHashMap<>();
        put(d, "segment.bytes", Type.INT, "1073741824", atLeast(1L << 20), true,
            "A partition's log rolls to a new segment file once the next batch would take it past this size; retention"
                + " and compaction work on whole sealed segments. A batch must fit in one segment, so max.message.bytes"
                + " may not exceed it.", b("log.segment.bytes"));
        put(d, "segment.ms", Type.LONG, "604800000", atLeast(1), true,
            "The active segment rolls once it is this old, even if not full, so time retention and compaction can reach"
                + " its records.", b("log.roll.ms"), h("log.roll.hours"));
        put(d, "segment.jitter.ms", Type.LONG, "0", atLeast(0), false,
            "Kafka subtracts a random jitter of up to this much from segment.ms to spread segment rolls." + NO_EFFECT
                + "segments roll at segment.ms exactly (each partition's segments started at its own first write).",
            b("log.roll.jitter.ms"), h("log.roll.jitter.hours"));
        put(d, "segment.index.bytes", Type.INT, "10485760", atLeast(4), false,
            "Kafka preallocates each segment's offset index to this size and rolls when it is full." + NO_EFFECT
                + "the sparse offset and time indexes grow with the segment and are written when it is sealed.",
            b("log.index.size.max.bytes"));
        put(d, "flush.messages", Type.LONG, Long.toString(Long.MAX_VALUE), atLeast(1), false,
            "Kafka forces an fsync after this many records." + NO_EFFECT
                + "every appended batch is fdatasynced (debounced once per shard loop turn) before acks=all is answered.",
            b("log.flush.interval.messages"));
        put(d, "flush.ms", Type.LONG, Long.toString(Long.MAX_VALUE), atLeast(0), false,
            "Kafka forces an fsync after this long." + NO_EFFECT
                + "every appended batch is fdatasynced (debounced once per shard loop turn) before acks=all is answered.",
            b("log.flush.interval.ms"), b("log.flush.scheduler.interval.ms"));
        put(d, "retention.bytes", Type.LONG, "-1", null, true,
            "With cleanup.policy delete, the oldest sealed segments of a partition are deleted while the partition is"
                + " larger than this (-1: no size limit).", b("log.retention.bytes"));
        put(d, "retention.ms", Type.LONG, "604800000", atLeast(-1), true,
            "With cleanup.policy delete, a sealed segment is deleted once its newest record is older than this"
                + " (-1: kept forever).", b("log.retention.ms"), m("log.retention.minutes"), h("log.retention.hours"));
        put(d, "max.message.bytes", Type.INT, Integer.toString(KAFKA_DEFAULT_MAX_MESSAGE_BYTES), atLeast(0), true,
            "The largest record batch (after compression) a producer may append; larger ones answer MESSAGE_TOO_LARGE."
                + " Bounded on this broker by segment.bytes (a batch must fit in one segment) and by the broker's"
                + " batch limit: a produce request must carry the batch (--max-request-bytes at least this plus 64 KiB),"
                + " and each shard's write-behind memory must hold it (see the broker config message.max.bytes).",
            b("message.max.bytes"));
        put(d, "index.interval.bytes", Type.INT, "4096", atLeast(0), true,
            "Bytes of batches between two entries of a segment's sparse offset and time indexes (0: an entry per"
                + " batch).", b("log.index.interval.bytes"));
        put(d, "delete.retention.ms", Type.LONG, "86400000", atLeast(0), true,
            "On a compacted topic, how long a tombstone (a record with a null value) survives after compaction first"
                + " reached it, so consumers can see the delete.", b("log.cleaner.delete.retention.ms"));
        put(d, "min.compaction.lag.ms", Type.LONG, "0", atLeast(0), true,
            "On a compacted topic, a segment is compacted only once its newest record is at least this old.",
            b("log.cleaner.min.compaction.lag.ms"));
        put(d, "max.compaction.lag.ms", Type.LONG, Long.toString(Long.MAX_VALUE), atLeast(1), true,
            "On a compacted topic, a sealed segment whose newest record is older than this is compacted even when the"
                + " log's dirty ratio is below min.cleanable.dirty.ratio (the active segment first rolls at segment.ms).",
            b("log.cleaner.max.compaction.lag.ms"));
        put(d, "file.delete.delay.ms", Type.LONG, "60000", atLeast(0), false,
            "Kafka waits this long before deleting a segment file it dropped." + NO_EFFECT
                + "a dropped segment's files are deleted once no read of them is in flight.",
            b("log.segment.delete.delay.ms"));
        put(d, "min.cleanable.dirty.ratio", Type.DOUBLE, "0.5", between(0, 1), true,
            "On a compacted topic, compaction starts once at least this share of the sealed segments' bytes was"
                + " written since the last compaction.", b("log.cleaner.min.cleanable.ratio"));
        put(d, "cleanup.policy", Type.LIST, "delete", listOf("compact", "delete"), true,
            "delete: sealed segments are deleted by retention.ms and retention.bytes. compact: key-based compaction"
                + " keeps the last record of each key. Both may be given (compact,delete); an empty list keeps every"
                + " segment and compacts nothing.", b("log.cleanup.policy"));
        put(d, "unclean.leader.election.enable", Type.BOOLEAN, "false", null, false,
            "Kafka may elect a leader that lacks committed records to regain availability." + NO_EFFECT
                + "each partition is a Raft group, and Raft never elects a replica missing a committed record.",
            b("unclean.leader.election.enable"));
        put(d, "min.insync.replicas", Type.INT, "1", atLeast(1), true,
            "An acks=all produce answers NOT_ENOUGH_REPLICAS (and appends nothing) while fewer than this many of the"
                + " partition's replicas, the leader included, are live in its Raft group (heard from by the leader"
                + " within an election timeout). acks=0 and acks=1 are not affected. It may exceed the replication"
                + " factor; then every acks=all produce fails, as in Kafka.", b("min.insync.replicas"));
        put(d, "compression.type", Type.STRING, "producer",
            oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"), true,
            "producer: batches are stored as the producer compressed them. uncompressed, gzip, snappy, lz4, zstd: the"
                + " broker recompresses each batch with that codec when it is appended (offsets, sequence numbers and"
                + " timestamps kept).", b("compression.type"));
        put(d, "compression.gzip.level", Type.INT, "-1", gzipLevel(), false,
            "The gzip level Kafka uses when compression.type is gzip (1 to 9, or -1 for the codec's default)."
                + NO_EFFECT + "recompression writes gzip at the codec's default level.", b("compression.gzip.level"));
        put(d, "compression.lz4.level", Type.INT, "9", between(1, 17), false,
            "The lz4 level Kafka uses when compression.type is lz4 (1 to 17)." + NO_EFFECT
                + "recompression writes lz4 frames with the fast compressor.", b("compression.lz4.level"));
        put(d, "compression.zstd.level", Type.INT, "3", between(-131072, 22), false,
            "The zstd level Kafka uses when compression.type is zstd (-131072 to 22)." + NO_EFFECT
                + "recompression writes zstd at level 3, Kafka's default.", b("compression.zstd.level"));
        put(d, "preallocate", Type.BOOLEAN, "false", null, false,
            "Kafka creates each segment file at its full size." + NO_EFFECT
                + "segment files always grow ahead of the writer in 32 MiB fallocate steps (a sealed segment is trimmed).",
            b("log.preallocate"));
        put(d, "message.timestamp.type", Type.STRING, "CreateTime", oneOf("CreateTime", "LogAppendTime"), true,
            "CreateTime: records keep the producer's timestamps. LogAppendTime: the broker stamps each batch with the"
                + " time it is appended (the batch's LOG_APPEND_TIME attribute and max timestamp).",
            b("log.message.timestamp.type"));
        put(d, "message.timestamp.before.max.ms", Type.LONG, Long.toString(Long.MAX_VALUE), atLeast(0), true,
            "With CreateTime, a batch whose record timestamps lie more than this far before the broker's clock is"
                + " refused with INVALID_TIMESTAMP.", b("log.message.timestamp.before.max.ms"));
        put(d, "message.timestamp.after.max.ms", Type.LONG, "3600000", atLeast(0), true,
            "With CreateTime, a batch whose record timestamps lie more than this far after the broker's clock is"
                + " refused with INVALID_TIMESTAMP.", b("log.message.timestamp.after.max.ms"));
        put(d, "leader.replication.throttled.replicas", Type.LIST, "", replicaList("leader.replication.throttled.replicas"),
            false, "Kafka throttles replication from these leader replicas (partition:broker pairs, or *)." + NO_EFFECT
                + "Raft replication has no rate throttle; its own flow control bounds the bytes in flight per follower.");
        put(d, "follower.replication.throttled.replicas", Type.LIST, "",
            replicaList("follower.replication.throttled.replicas"), false,
            "Kafka throttles replication to these follower replicas (partition:broker pairs, or *)." + NO_EFFECT
                + "Raft replication has no rate throttle; its own flow control bounds the bytes in flight per follower.");
        put(d, "remote.storage.enable", Type.BOOLEAN, "false", remoteStorage(), false,
            "Tiered storage: copy sealed segments to remote storage." + NO_EFFECT + "there is no tiered storage, so"
                + " only false is accepted (as by a Kafka broker with remote.log.storage.system.enable=false).");
        put(d, "local.retention.ms", Type.LONG, "-2", atLeast(-2), false,
            "With tiered storage, how long segments stay on local disk (-2: retention.ms)." + NO_EFFECT
                + "there is no tiered storage; retention.ms governs.", b("log.local.retention.ms"));
        put(d, "local.retention.bytes", Type.LONG, "-2", atLeast(-2), false,
            "With tiered storage, how many bytes stay on local disk (-2: retention.bytes)." + NO_EFFECT
                + "there is no tiered storage; retention.bytes governs.", b("log.local.retention.bytes"));
        put(d, "remote.log.copy.disable", Type.BOOLEAN, "false", null, false,
            "With tiered storage, stops copying segments to remote storage." + NO_EFFECT + "there is no tiered storage.");
        put(d, "remote.log.delete.on.disable", Type.BOOLEAN, "false", null, false,
            "With tiered storage, deletes the remote segments when tiered storage is turned off for the topic."
                + NO_EFFECT + "there is no tiered storage.");
        DEFINITIONS = Collections.unmodifiableMap(d);

        Map<String, Definition> legacy = new LinkedHashMap<>();
        put(legacy, "message.format.version", Type.STRING, "3.0-IV1", null, false,
            "Removed in Kafka 4.0 (every batch is format v2); accepted so specs written for Kafka 3.x pass." + NO_EFFECT
                + "batches are stored in format v2 (magic 2) only.");
        put(legacy, "message.downconversion.enable", Type.BOOLEAN, "true", null, false,
            "Removed in Kafka 4.0; accepted so specs written for Kafka 3.x pass." + NO_EFFECT
                + "batches are never converted to older formats (Fetch below version 4 is not served).");
        put(legacy, "message.timestamp.difference.max.ms", Type.LONG, Long.toString(Long.MAX_VALUE), atLeast(0), false,
            "Removed in Kafka 4.0 in favour of message.timestamp.before.max.ms and message.timestamp.after.max.ms;"
                + " accepted so specs written for Kafka 3.x pass." + NO_EFFECT + "set the two newer configs instead.");
        LEGACY = Collections.unmodifiableMap(legacy);

        Map<String, String> byBroker = new LinkedHashMap<>();
        for (Definition def : DEFINITIONS.values()) {
            for (BrokerName n : def.brokerNames()) {
                byBroker.put(n.name(), def.name());
            }
        }
        BY_BROKER_NAME = Collections.unmodifiableMap(byBroker);
    }

    private TopicConfigs() {
    }

    private static BrokerName b(String name) {
        return new BrokerName(name, 1);
    }

    private static BrokerName h(String name) {
        return new BrokerName(name, HOUR_MS);
    }

    private static BrokerName m(String name) {
        return new BrokerName(name, MINUTE_MS);
    }

    private static void put(Map<String, Definition> into, String name, Type type, String def, Check check,
                            boolean applied, String doc, BrokerName... brokerNames) {
        into.put(name, new Definition(name, type, def, List.of(brokerNames), check, applied, doc));
    }

    // ------------------------------------------------------------------ checks (Kafka's ranges)

    private static Check atLeast(long min) {
        return v -> ((Number) v).doubleValue() < min ? "Value must be at least " + min : null;
    }

    private static Check between(long min, long max) {
        return v -> {
            double x = ((Number) v).doubleValue();
            return x < min || x > max ? "Value must be between " + min + " and " + max : null;
        };
    }

    private static Check gzipLevel() {
        return v -> {
            int x = (Integer) v;
            return x == -1 || (x >= 1 && x <= 9) ? null : "Value must be between 1 and 9 or equal to -1";
        };
    }

    private static Check oneOf(String... allowed) {
        List<String> ok = List.of(allowed);
        return v -> ok.contains((String) v) ? null : "String must be one of: " + String.join(", ", ok);
    }

    @SuppressWarnings("unchecked")
    private static Check listOf(String... allowed) {
        List<String> ok = List.of(allowed);
        return v -> {
            for (String item : (List<String>) v) {
                if (!ok.contains(item)) {
                    return "String must be one of: " + String.join(", ", ok);
                }
            }
            return null;
        };
    }

    @SuppressWarnings("unchecked")
    private static Check replicaList(String name) {
        return v -> {
            List<String> items = (List<String>) v;
            if (items.size() == 1 && items.get(0).equals("*")) {
                return null;
            }
            for (String item : items) {
                if (!item.matches("[0-9]+:[0-9]+")) {
                    return name + " must be the literal '*' or a list of replicas in the form"
                        + " [partitionId]:[brokerId],[partitionId]:[brokerId],...";
                }
            }
            return null;
        };
    }

    private static Check remoteStorage() {
        return v -> (Boolean) v ? "Tiered storage is not available on this broker (as a Kafka broker with"
            + " remote.log.storage.system.enable=false); remote.storage.enable must be false" : null;
    }

    // ------------------------------------------------------------------ the broker's defaults

    /**
     * What a broker contributes to topic configs: the defaults its static configuration sets (topic config name
     * -> value in the topic config's units, and the broker settings as given), and the largest batch its buffers
     * and requests can carry. Immutable.
     *
     * @param values                topic config name -> the broker's default for it
     * @param settings              broker setting name -> value, as configured (for DescribeConfigs and synonyms)
     * @param maxMessageBytesLimit  the largest max.message.bytes a topic may have here
     * @param limitReason           what sets that limit, one sentence for error messages
     */
    record Defaults(Map<String, String> values, Map<String, String> settings, int maxMessageBytesLimit,
                    String limitReason) {
        static final Defaults KAFKA = new Defaults(Map.of(), Map.of(), Integer.MAX_VALUE, "");

        Defaults {
            values = Collections.unmodifiableMap(new LinkedHashMap<>(values));
            settings = Collections.unmodifiableMap(new LinkedHashMap<>(settings));
        }

        /**
         * The defaults from broker settings named as in Kafka (e.g. {@code log.retention.hours = 24}); a setting of
         * higher precedence wins (log.retention.ms over log.retention.minutes over log.retention.hours).
         *
         * @throws IllegalArgumentException naming the setting whose value is not valid
         */
        static Defaults of(Map<String, String> brokerSettings, int maxMessageBytesLimit, String limitReason) {
            Map<String, String> values = new LinkedHashMap<>();
            for (Definition def : DEFINITIONS.values()) {
                for (BrokerName n : def.brokerNames()) {
                    String v = brokerSettings.get(n.name());
                    if (v == null) {
                        continue;
                    }
                    String value = v.trim();
                    if (n.unit() != 1) {
                        Long units = parseLong(value);
                        if (units == null) {
                            throw new IllegalArgumentException("Invalid value " + v + " for configuration " + n.name()
                                + ": Not a number of type LONG");
                        }
                        try {
                            value = Long.toString(Math.multiplyExact(units, n.unit()));
                        } catch (ArithmeticException e) {
                            throw new IllegalArgumentException("Invalid value " + v + " for configuration " + n.name()
                                + ": too large");
                        }
                    }
                    String bad = problem(def, value);
                    if (bad != null) {
                        throw new IllegalArgumentException("Invalid value " + v + " for configuration " + n.name() + ": "
                            + bad);
                    }
                    values.put(def.name(), value);
                    break; // the first one set wins
                }
            }
            for (String k : brokerSettings.keySet()) {
                if (!BY_BROKER_NAME.containsKey(k)) {
                    throw new IllegalArgumentException(k + " is not a broker default of a topic config");
                }
            }
            Defaults d = new Defaults(values, brokerSettings, maxMessageBytesLimit, limitReason);
            String inconsistent = d.crossCheck(Map.of());
            if (inconsistent != null) {
                throw new IllegalArgumentException("the broker's topic defaults do not fit together: " + inconsistent);
            }
            String tooLarge = d.limitProblem(Map.of());
            if (tooLarge != null) {
                throw new IllegalArgumentException(tooLarge);
            }
            return d;
        }

        /** The cross-key rules over {@code overrides} on top of these defaults; null when they hold. */
        private String crossCheck(Map<String, String> overrides) {
            long minLag = Long.parseLong(effective(overrides, "min.compaction.lag.ms", this));
            long maxLag = Long.parseLong(effective(overrides, "max.compaction.lag.ms", this));
            if (minLag > maxLag) {
                return "conflict topic config setting min.compaction.lag.ms (" + minLag + ") > max.compaction.lag.ms ("
                    + maxLag + ")";
            }
            boolean maxSet = overrides.containsKey("max.message.bytes") || values.containsKey("max.message.bytes");
            boolean segmentSet = overrides.containsKey("segment.bytes") || values.containsKey("segment.bytes");
            long max = Long.parseLong(effective(overrides, "max.message.bytes", this));
            long segment = Long.parseLong(effective(overrides, "segment.bytes", this));
            if (maxSet && segmentSet && max > segment) {
                return "max.message.bytes (" + max + ") exceeds segment.bytes (" + segment + "): a batch must fit in one"
                    + " segment here; raise segment.bytes or lower max.message.bytes";
            }
            return null;
        }

        /**
         * A sentence when a max.message.bytes set on the topic or the broker is beyond this broker's limit; else
         * null. Kafka's own default is never refused: a request smaller than it cannot carry a larger batch anyway.
         */
        private String limitProblem(Map<String, String> overrides) {
            if (!overrides.containsKey("max.message.bytes") && !values.containsKey("max.message.bytes")) {
                return null;
            }
            long max = Long.parseLong(effective(overrides, "max.message.bytes", this));
            if (max > maxMessageBytesLimit) {
                return "Invalid value " + max + " for configuration max.message.bytes: this broker takes batches of at"
                    + " most " + maxMessageBytesLimit + " bytes (" + limitReason + ")";
            }
            return null;
        }
    }

    // ------------------------------------------------------------------ validation

    private static Definition definition(String name) {
        Definition d = DEFINITIONS.get(name);
        return d != null ? d : LEGACY.get(name);
    }

    /** Whether {@code name} is a topic config here (Kafka 4.3's, or one Kafka 4.0 removed). */
    static boolean known(String name) {
        return definition(name) != null;
    }

    static Type type(String name) {
        return definition(name).type();
    }

    /**
     * Null if {@code value} is acceptable for topic config {@code name} on its own, else one sentence naming the
     * key and the reason (Kafka's wording): unknown names, a value not of the config's type, out of Kafka's range,
     * or beyond this broker's limits ({@code defaults}).
     */
    static String invalid(String name, String value, Defaults defaults) {
        Definition d = definition(name);
        if (d == null) {
            return "Unknown topic config name: " + name;
        }
        if (value == null) {
            return "Invalid value null for configuration " + name + ": a value is required";
        }
        String bad = problem(d, value);
        if (bad != null) {
            return "Invalid value " + value + " for configuration " + name + ": " + bad;
        }
        if (name.equals("max.message.bytes") && Long.parseLong(value.trim()) > defaults.maxMessageBytesLimit()) {
            return defaults.limitProblem(Map.of(name, value.trim()));
        }
        return null;
    }

    /**
     * Every problem of a topic's complete set of overrides on top of {@code defaults}: config name -> one sentence
     * naming it (unknown names, types, ranges, this broker's limits, then the rules between configs, reported under
     * the later of the two). Empty when the set is acceptable. This is the one validation entry point of
     * CreateTopics, AlterConfigs and IncrementalAlterConfigs.
     */
    static Map<String, String> validate(Map<String, String> overrides, Defaults defaults) {
        Map<String, String> problems = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : overrides.entrySet()) {
            String bad = invalid(e.getKey(), e.getValue(), defaults);
            if (bad != null) {
                problems.put(e.getKey(), bad);
            }
        }
        if (problems.isEmpty()) {
            Map<String, String> trimmed = normalized(overrides);
            String cross = defaults.crossCheck(trimmed);
            if (cross != null) {
                problems.put(cross.startsWith("conflict") ? "max.compaction.lag.ms" : "max.message.bytes", cross);
            }
            String limit = defaults.limitProblem(trimmed);
            if (limit != null) {
                problems.put("max.message.bytes", limit);
            }
        }
        return problems;
    }

    /** The first problem {@link #validate} finds, or null. */
    static String firstProblem(Map<String, String> overrides, Defaults defaults) {
        Map<String, String> p = validate(overrides, defaults);
        return p.isEmpty() ? null : p.values().iterator().next();
    }

    /** The overrides as stored: values trimmed (Kafka trims every config value it parses). */
    static Map<String, String> normalized(Map<String, String> overrides) {
        Map<String, String> m = new TreeMap<>();
        overrides.forEach((k, v) -> m.put(k, v == null ? null : v.trim()));
        return m;
    }

    /** Null if {@code value} has {@code d}'s type and passes its check, else why not. */
    private static String problem(Definition d, String value) {
        Object parsed = parse(d.type(), value);
        if (parsed == null) {
            return switch (d.type()) {
                case BOOLEAN -> "Expected value to be either true or false";
                default -> "Not a number of type " + d.type();
            };
        }
        return d.check() == null ? null : d.check().problem(parsed);
    }

    /** Kafka's parsing of a config value of {@code type}; null when it does not parse. */
    static Object parse(Type type, String value) {
        String v = value.trim();
        return switch (type) {
            case BOOLEAN -> v.equalsIgnoreCase("true") ? Boolean.TRUE : v.equalsIgnoreCase("false") ? Boolean.FALSE : null;
            case INT -> {
                try {
                    yield Integer.parseInt(v);
                } catch (NumberFormatException e) {
                    yield null;
                }
            }
            case SHORT -> {
                try {
                    yield Short.parseShort(v);
                } catch (NumberFormatException e) {
                    yield null;
                }
            }
            case LONG -> parseLong(v);
            case DOUBLE -> {
                try {
                    double x = Double.parseDouble(v);
                    yield Double.isNaN(x) ? null : x;
                } catch (NumberFormatException e) {
                    yield null;
                }
            }
            case LIST -> v.isEmpty() ? List.of() : List.of(v.split("\\s*,\\s*", -1));
            default -> v;
        };
    }

    private static Long parseLong(String v) {
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            return null;
        }
    }

    // ------------------------------------------------------------------ effective values

    /** The value of {@code name} for a topic with these overrides: its own, else the broker's, else Kafka's default. */
    static String effective(Map<String, String> overrides, String name, Defaults defaults) {
        String v = overrides.get(name);
        if (v != null) {
            return v.trim();
        }
        v = defaults.values().get(name);
        return v != null ? v : definition(name).defaultValue();
    }

    /** Where the effective value of {@code name} comes from: Kafka's ConfigSource code. */
    static byte source(Map<String, String> overrides, String name, Defaults defaults) {
        if (overrides.containsKey(name)) {
            return SOURCE_TOPIC;
        }
        return defaults.values().containsKey(name) ? SOURCE_STATIC_BROKER : SOURCE_DEFAULT;
    }

    /** One synonym of a config as DescribeConfigs lists them: name, value, source. */
    record Synonym(String name, String value, byte source) {
    }

    /**
     * Kafka's synonym list for a topic config, most specific first: the topic's override, then every broker setting
     * of it that is configured (in the setting's own units), then the default under the broker setting's name.
     */
    static List<Synonym> synonyms(Map<String, String> overrides, String name, Defaults defaults) {
        Definition d = definition(name);
        List<Synonym> out = new ArrayList<>();
        if (overrides.containsKey(name)) {
            out.add(new Synonym(name, overrides.get(name).trim(), SOURCE_TOPIC));
        }
        for (BrokerName n : d.brokerNames()) {
            String v = defaults.settings().get(n.name());
            if (v != null) {
                out.add(new Synonym(n.name(), v.trim(), SOURCE_STATIC_BROKER));
            }
        }
        out.add(new Synonym(d.brokerName(), brokerDefault(d), SOURCE_DEFAULT));
        return out;
    }

    /** Kafka's default of {@code d} in the units of its reported broker setting (e.g. 168 for log.retention.hours). */
    static String brokerDefault(Definition d) {
        if (d.brokerNames().isEmpty()) {
            return d.defaultValue();
        }
        BrokerName n = d.brokerNames().get(d.brokerNames().size() - 1);
        return n.unit() == 1 ? d.defaultValue() : Long.toString(Long.parseLong(d.defaultValue()) / n.unit());
    }

    /** The documentation DescribeConfigs reports for {@code name}. */
    static String documentation(String name) {
        return definition(name).documentation();
    }

    /** Whether {@code name} changes anything on this broker. */
    static boolean applied(String name) {
        return definition(name).applied();
    }

    /** The cleanup.policy items of a topic. */
    @SuppressWarnings("unchecked")
    private static List<String> policies(Map<String, String> overrides, Defaults defaults) {
        return (List<String>) parse(Type.LIST, effective(overrides, "cleanup.policy", defaults));
    }

    /** The topic's min.insync.replicas. */
    static int minInsyncReplicas(Map<String, String> overrides, Defaults defaults) {
        return Integer.parseInt(effective(overrides, "min.insync.replicas", defaults));
    }

    /** The produce-path settings of a topic with these overrides on top of {@code defaults} ({@link TopicSettings}). */
    static TopicSettings topicSettings(Map<String, String> overrides, Defaults defaults) {
        return TopicSettings.of(overrides, defaults, logConfig(overrides, defaults));
    }

    /**
     * The log settings of a topic with these overrides on top of {@code defaults}: segment size and age, the
     * largest batch (max.message.bytes, at most segment.bytes, at least a batch header: a batch of no records is
     * larger), index spacing, retention (off unless cleanup.policy has delete), compaction and its tombstone
     * retention, lags and dirty ratio.
     */
    static LogConfig logConfig(Map<String, String> overrides, Defaults defaults) {
        LogConfig base = LogConfig.defaults();
        long segmentBytes = Long.parseLong(effective(overrides, "segment.bytes", defaults));
        long maxBatch = Long.parseLong(effective(overrides, "max.message.bytes", defaults));
        maxBatch = Math.max(RecordBatch.HEADER_BYTES, Math.min(maxBatch, segmentBytes));
        List<String> policy = policies(overrides, defaults);
        boolean compact = policy.contains("compact");
        boolean delete = policy.contains("delete");
        long retentionMs = delete ? Long.parseLong(effective(overrides, "retention.ms", defaults)) : -1;
        long retentionBytes = delete ? Long.parseLong(effective(overrides, "retention.bytes", defaults)) : -1;
        if (retentionBytes < -1) {
            retentionBytes = -1; // Kafka takes any negative size as "no limit"
        }
        int indexInterval = Math.max(1, Integer.parseInt(effective(overrides, "index.interval.bytes", defaults)));
        return new LogConfig(segmentBytes, Long.parseLong(effective(overrides, "segment.ms", defaults)), (int) maxBatch,
            indexInterval, retentionBytes, retentionMs, base.fallocateStepBytes(), compact,
            Long.parseLong(effective(overrides, "delete.retention.ms", defaults)),
            Long.parseLong(effective(overrides, "min.compaction.lag.ms", defaults)),
            Long.parseLong(effective(overrides, "max.compaction.lag.ms", defaults)),
            Double.parseDouble(effective(overrides, "min.cleanable.dirty.ratio", defaults)));
    }
}
