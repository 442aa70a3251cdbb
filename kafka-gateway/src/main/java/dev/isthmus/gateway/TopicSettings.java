package dev.isthmus.gateway;

import dev.isthmus.log.BatchValidator;
import dev.isthmus.log.Compression;
import dev.isthmus.log.LogConfig;

import java.util.Map;

/**
 * What a topic's configs mean for its produce path, next to the {@link LogConfig} the log engine takes: how
 * batches are validated, compressed and timestamped on append, and how many replicas acks=all needs. Built from a
 * topic's config overrides by {@link TopicConfigs#topicSettings} (wherever a topic's {@code LogConfig} is built)
 * and handed to each of its {@link Partition}s, again on every config change. An immutable value: any thread.
 *
 * @param compression          compression.type: the codec batches are stored with, or null for {@code producer}
 *                             (batches are kept as sent)
 * @param logAppendTime        message.timestamp.type=LogAppendTime: the broker stamps each batch with its append
 *                             time
 * @param timestampBeforeMaxMs message.timestamp.before.max.ms (CreateTime topics)
 * @param timestampAfterMaxMs  message.timestamp.after.max.ms (CreateTime topics)
 * @param minInsyncReplicas    min.insync.replicas: replicas that must hold a batch before acks=all succeeds
 * @param maxMessageBytes      max.message.bytes: the largest batch, as sent and as stored
 * @param rules                the validator's rules derived from the above
 */
record TopicSettings(Compression compression, boolean logAppendTime, long timestampBeforeMaxMs,
                     long timestampAfterMaxMs, int minInsyncReplicas, int maxMessageBytes, BatchValidator.Rules rules) {
    /**
     * How far a compressed batch's records may inflate: 16 times max.message.bytes, at least 32 MiB. Kafka sets
     * no bound (it decompresses as it walks); a bound keeps a "zip bomb" from costing a shard more memory and time
     * than this, while real producers' batches (whose compressed size batch.size and max.request.size cap) stay
     * well inside it.
     */
    static int maxUncompressedBytes(int maxMessageBytes) {
        return (int) Math.min(Integer.MAX_VALUE - 64, Math.max(32L << 20, 16L * maxMessageBytes));
    }

    /** The settings of a topic with these config overrides (and no broker defaults) and log settings. */
    static TopicSettings of(Map<String, String> overrides, LogConfig log) {
        return of(overrides, TopicConfigs.Defaults.KAFKA, log);
    }

    /** The settings of a topic with these config overrides on top of the broker's {@code defaults}. */
    static TopicSettings of(Map<String, String> overrides, TopicConfigs.Defaults defaults, LogConfig log) {
        String codec = TopicConfigs.effective(overrides, "compression.type", defaults);
        Compression compression = codec.equals("producer") ? null : Compression.ofName(codec);
        boolean logAppendTime = TopicConfigs.effective(overrides, "message.timestamp.type", defaults)
            .equals("LogAppendTime");
        long before = Long.parseLong(TopicConfigs.effective(overrides, "message.timestamp.before.max.ms", defaults));
        long after = Long.parseLong(TopicConfigs.effective(overrides, "message.timestamp.after.max.ms", defaults));
        int minIsr = TopicConfigs.minInsyncReplicas(overrides, defaults);
        int maxMessageBytes = log.maxBatchBytes();
        BatchValidator.Rules rules = new BatchValidator.Rules(maxMessageBytes, maxUncompressedBytes(maxMessageBytes),
            log.compact(), logAppendTime, before, after, false);
        return new TopicSettings(compression, logAppendTime, before, after, minIsr, maxMessageBytes, rules);
    }

    /** The settings of a topic without overrides. */
    static TopicSettings defaults() {
        return of(Map.of(), LogConfig.defaults());
    }
}
