package dev.isthmus.gateway;

import dev.isthmus.log.LogConfig;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The topic-level settings a topic may override (Kafka's names), their defaults, validation with one sentence
 * per bad value, and the mapping onto the log engine's {@link LogConfig}. A topic stores only its overrides;
 * everything else is the default, described as such.
 */
final class TopicConfigs {
    /** Kafka's ConfigType codes for DescribeConfigs v3+. */
    static final byte STRING = 2;
    static final byte INT = 3;
    static final byte LONG = 5;
    static final byte BOOLEAN = 1;
    static final byte LIST = 7;

    record Definition(String name, String brokerName, String defaultValue, byte type, String documentation) {
    }

    static final Map<String, Definition> DEFINITIONS = new LinkedHashMap<>();
    /** Kafka's broker-level name of each topic config's default. */
    private static final Map<String, String> BROKER_NAMES = Map.ofEntries(
        Map.entry("cleanup.policy", "log.cleanup.policy"), Map.entry("retention.ms", "log.retention.ms"),
        Map.entry("retention.bytes", "log.retention.bytes"), Map.entry("segment.bytes", "log.segment.bytes"),
        Map.entry("segment.ms", "log.roll.ms"), Map.entry("max.message.bytes", "message.max.bytes"),
        Map.entry("delete.retention.ms", "log.cleaner.delete.retention.ms"),
        Map.entry("message.timestamp.type", "log.message.timestamp.type"),
        Map.entry("message.timestamp.before.max.ms", "log.message.timestamp.before.max.ms"),
        Map.entry("message.timestamp.after.max.ms", "log.message.timestamp.after.max.ms"),
        Map.entry("flush.messages", "log.flush.interval.messages"), Map.entry("flush.ms", "log.flush.interval.ms"));

    static {
        LogConfig d = LogConfig.defaults();
        define("cleanup.policy", "delete", LIST, "delete (retention by size and time) or compact (last value per key)");
        define("retention.ms", Long.toString(d.retentionMs()), LONG, "delete segments older than this (-1: never)");
        define("retention.bytes", Long.toString(d.retentionBytes()), LONG, "delete oldest segments while larger (-1: no limit)");
        define("segment.bytes", Long.toString(d.segmentBytes()), INT, "roll to a new segment past this size");
        define("segment.ms", Long.toString(d.segmentMs()), LONG, "roll a segment older than this");
        define("max.message.bytes", Integer.toString(d.maxBatchBytes()), INT, "largest record batch accepted");
        define("delete.retention.ms", Long.toString(d.deleteRetentionMs()), LONG, "how long compaction keeps tombstones");
        define("min.insync.replicas", "1", INT, "replicas that must have a record for acks=all");
        define("compression.type", "producer", STRING, "producer keeps batches as sent; uncompressed, gzip, snappy,"
            + " lz4 or zstd recompresses batches of another codec on append");
        define("message.timestamp.type", "CreateTime", STRING, "CreateTime keeps the producer's timestamps;"
            + " LogAppendTime stamps each batch with the time the broker appended it");
        define("message.timestamp.before.max.ms", Long.toString(Long.MAX_VALUE), LONG, "CreateTime topics refuse"
            + " records whose timestamp is more than this before the broker's clock (INVALID_TIMESTAMP)");
        define("message.timestamp.after.max.ms", "3600000", LONG, "CreateTime topics refuse records whose"
            + " timestamp is more than this after the broker's clock (INVALID_TIMESTAMP)");
        define("flush.messages", Long.toString(Long.MAX_VALUE), LONG,
            "informational: every acknowledged batch is fdatasynced before acks=all is answered");
        define("flush.ms", Long.toString(Long.MAX_VALUE), LONG,
            "informational: every acknowledged batch is fdatasynced before acks=all is answered");
    }

    private TopicConfigs() {
    }

    private static void define(String name, String def, byte type, String doc) {
        DEFINITIONS.put(name, new Definition(name, BROKER_NAMES.getOrDefault(name, name), def, type, doc));
    }

    /** Null if {@code value} is acceptable for {@code name}, else one sentence naming the problem. */
    static String invalid(String name, String value, int maxBatchBytesLimit) {
        Definition d = DEFINITIONS.get(name);
        if (d == null) {
            return "unknown topic config '" + name + "'; supported: " + String.join(", ", DEFINITIONS.keySet());
        }
        if (value == null) {
            return "config " + name + " needs a value";
        }
        String v = value.trim();
        switch (name) {
            case "cleanup.policy" -> {
                for (String p : v.toLowerCase(Locale.ROOT).split(",")) {
                    if (!p.trim().equals("delete") && !p.trim().equals("compact")) {
                        return "cleanup.policy must be delete, compact or both, got '" + value + "'";
                    }
                }
            }
            case "compression.type" -> {
                if (!v.equals("producer") && dev.isthmus.log.Compression.ofName(v) == null) {
                    return "compression.type must be producer, uncompressed, gzip, snappy, lz4 or zstd, got '"
                        + value + "'";
                }
            }
            case "message.timestamp.type" -> {
                if (!v.equals("CreateTime") && !v.equals("LogAppendTime")) {
                    return "message.timestamp.type must be CreateTime or LogAppendTime, got '" + value + "'";
                }
            }
            case "message.timestamp.before.max.ms", "message.timestamp.after.max.ms" -> {
                Long n = number(v);
                if (n == null || n < 0) {
                    return name + " must be a number >= 0, got '" + value + "'";
                }
            }
            case "min.insync.replicas" -> {
                Long n = number(v);
                if (n == null || n != 1) {
                    return "min.insync.replicas must be 1 on this single-replica broker, got '" + value + "'";
                }
            }
            case "segment.bytes" -> {
                Long n = number(v);
                if (n == null || n < 64 * 1024 || n > Integer.MAX_VALUE) {
                    return "segment.bytes must be a number in [65536, 2147483647], got '" + value + "'";
                }
            }
            case "max.message.bytes" -> {
                Long n = number(v);
                if (n == null || n < 61 || n > maxBatchBytesLimit) {
                    return "max.message.bytes must be a number in [61, " + maxBatchBytesLimit + "], got '" + value + "'";
                }
            }
            case "retention.ms", "retention.bytes" -> {
                Long n = number(v);
                if (n == null || n < -1) {
                    return name + " must be a number >= -1, got '" + value + "'";
                }
            }
            default -> {
                Long n = number(v);
                if (n == null || n < (name.equals("delete.retention.ms") ? 0 : 1)) {
                    return name + " must be a positive number, got '" + value + "'";
                }
            }
        }
        return null;
    }

    /** Checks that the overrides fit together (segment.bytes >= max.message.bytes); null if they do. */
    static String inconsistent(Map<String, String> overrides) {
        try {
            logConfig(overrides);
            return null;
        } catch (IllegalArgumentException e) {
            return e.getMessage();
        }
    }

    private static Long number(String v) {
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            return null;
        }
    }

    static String value(Map<String, String> overrides, String name) {
        String v = overrides.get(name);
        return v != null ? v : DEFINITIONS.get(name).defaultValue();
    }

    /** The produce-path settings of a topic with these overrides (see {@link TopicSettings}). */
    static TopicSettings topicSettings(Map<String, String> overrides) {
        return TopicSettings.of(overrides, logConfig(overrides));
    }

    /** The log settings of a topic with these overrides. */
    static LogConfig logConfig(Map<String, String> overrides) {
        LogConfig d = LogConfig.defaults();
        if (overrides.isEmpty()) {
            return d;
        }
        long segmentBytes = Long.parseLong(value(overrides, "segment.bytes"));
        int maxBatch = Integer.parseInt(value(overrides, "max.message.bytes"));
        if (!overrides.containsKey("max.message.bytes")) {
            maxBatch = (int) Math.min(maxBatch, segmentBytes);
        }
        boolean compact = value(overrides, "cleanup.policy").toLowerCase(Locale.ROOT).contains("compact");
        long retentionMs = Long.parseLong(value(overrides, "retention.ms"));
        long retentionBytes = Long.parseLong(value(overrides, "retention.bytes"));
        boolean delete = value(overrides, "cleanup.policy").toLowerCase(Locale.ROOT).contains("delete");
        if (!delete) {
            retentionMs = -1;
            retentionBytes = -1;
        }
        return new LogConfig(segmentBytes, Long.parseLong(value(overrides, "segment.ms")), maxBatch,
            d.indexIntervalBytes(), retentionBytes, retentionMs, d.fallocateStepBytes(), compact,
            Long.parseLong(value(overrides, "delete.retention.ms")));
    }
}
