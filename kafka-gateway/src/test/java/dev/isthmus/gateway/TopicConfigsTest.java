package dev.isthmus.gateway;

import dev.isthmus.log.LogConfig;
import org.apache.kafka.common.config.ConfigDef;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The topic config catalog against Kafka 4.3's own definitions (kafka-storage's {@code LogConfig}, on the test
 * class path through kafka-tools): the same names, types and defaults, and the same verdict on a battery of
 * values for every config; then what Kafka leaves to the broker (limits, rules between configs, broker defaults).
 */
class TopicConfigsTest {
    private static final TopicConfigs.Defaults KAFKA = TopicConfigs.Defaults.KAFKA;

    @Test
    void shouldDefineEveryTopicConfigOfKafkaWithItsTypeAndDefault() {
        Map<String, ConfigDef.ConfigKey> kafka = org.apache.kafka.storage.internals.log.LogConfig.configKeys();
        TreeSet<String> theirs = new TreeSet<>(org.apache.kafka.storage.internals.log.LogConfig.nonInternalConfigNames());
        assertEquals(theirs, new TreeSet<>(TopicConfigs.DEFINITIONS.keySet()));
        for (TopicConfigs.Definition d : TopicConfigs.DEFINITIONS.values()) {
            ConfigDef.ConfigKey k = kafka.get(d.name());
            assertEquals(k.type.name(), d.type().name(), d.name());
            assertEquals(ConfigDef.convertToString(k.defaultValue, k.type), d.defaultValue(), d.name());
            assertFalse(d.documentation().isBlank(), d.name());
        }
    }

    @Test
    void shouldJudgeEveryValueAsKafkaDoes() {
        String[] values = {"", " ", "-131073", "-131072", "-3", "-2", "-1", "0", "1", "3", "4", "9", "10", "17", "18",
            "22", "23", "61", "4096", "1048575", "1048576", "2147483647", "2147483648", "9223372036854775807",
            "9223372036854775808", "0.0", "0.5", "1", "1.5", "1e3", "abc", " 100 ", "true", "TRUE", "false", "yes",
            "delete", "compact", "compact,delete", "delete, compact", "Compact", "delete,delete", "shred", "producer",
            "gzip", "zstd", "uncompressed", "none", "GZIP", "CreateTime", "LogAppendTime", "logappendtime", "*",
            "0:1,1:2", "0:1, 1:2", "x", "1:x"};
        List<String> disagreements = new ArrayList<>();
        int compared = 0;
        for (String name : TopicConfigs.DEFINITIONS.keySet()) {
            for (String v : values) {
                if (name.equals("remote.storage.enable") && v.trim().equalsIgnoreCase("true")) {
                    continue; // refused here on purpose: there is no tiered storage (as Kafka with it disabled)
                }
                String ours = TopicConfigs.invalid(name, v, KAFKA);
                String theirs;
                try {
                    org.apache.kafka.storage.internals.log.LogConfig.validate(Map.of(name, v));
                    theirs = null;
                } catch (RuntimeException e) {
                    theirs = e.getMessage();
                }
                compared++;
                if ((ours == null) != (theirs == null)) {
                    disagreements.add(name + "=" + v + ": ours " + ours + ", Kafka's " + theirs);
                }
            }
        }
        assertEquals(List.of(), disagreements);
        assertTrue(compared > 1500, "compared " + compared);
    }

    @Test
    void shouldNameTheKeyAndTheReasonOfABadValue() {
        assertEquals("Invalid value soon for configuration retention.ms: Not a number of type LONG",
            TopicConfigs.invalid("retention.ms", "soon", KAFKA));
        assertEquals("Invalid value -2 for configuration retention.ms: Value must be at least -1",
            TopicConfigs.invalid("retention.ms", "-2", KAFKA));
        assertEquals("Invalid value shred for configuration cleanup.policy: String must be one of: compact, delete",
            TopicConfigs.invalid("cleanup.policy", "shred", KAFKA));
        assertEquals("Unknown topic config name: no.such.config", TopicConfigs.invalid("no.such.config", "1", KAFKA));
        String remote = TopicConfigs.invalid("remote.storage.enable", "true", KAFKA);
        assertTrue(remote.contains("remote.storage.enable") && remote.contains("Tiered storage"), remote);
        assertNull(TopicConfigs.invalid("remote.storage.enable", "false", KAFKA));
    }

    @Test
    void shouldAcceptTheConfigsKafka4RemovedForSpecsWrittenForKafka3() {
        assertNull(TopicConfigs.invalid("message.format.version", "2.8-IV1", KAFKA));
        assertNull(TopicConfigs.invalid("message.downconversion.enable", "false", KAFKA));
        assertNull(TopicConfigs.invalid("message.timestamp.difference.max.ms", "86400000", KAFKA));
        assertNotNull(TopicConfigs.invalid("message.downconversion.enable", "sometimes", KAFKA));
        assertFalse(TopicConfigs.applied("message.format.version"));
        assertTrue(TopicConfigs.documentation("message.downconversion.enable").contains("no effect"));
    }

    @Test
    void shouldCheckConfigsTogetherAndAgainstTheBrokersLimit() {
        assertEquals(Map.of("max.compaction.lag.ms", "conflict topic config setting min.compaction.lag.ms (10) >"
                + " max.compaction.lag.ms (5)"),
            TopicConfigs.validate(Map.of("min.compaction.lag.ms", "10", "max.compaction.lag.ms", "5"), KAFKA));
        Map<String, String> tooBig = TopicConfigs.validate(Map.of("segment.bytes", "1048576", "max.message.bytes",
            "2000000"), KAFKA);
        assertTrue(tooBig.get("max.message.bytes").contains("exceeds segment.bytes"), tooBig.toString());
        // Only segment.bytes set: the default max.message.bytes is bounded by it, nothing to refuse.
        assertEquals(Map.of(), TopicConfigs.validate(Map.of("segment.bytes", "1048576"), KAFKA));
        assertEquals(1048576, TopicConfigs.logConfig(Map.of("segment.bytes", "1048576"), KAFKA).maxBatchBytes());

        TopicConfigs.Defaults small = TopicConfigs.Defaults.of(Map.of(), 8 << 20, "test limit");
        assertEquals(Map.of(), TopicConfigs.validate(Map.of("max.message.bytes", Integer.toString(8 << 20)), small));
        String over = TopicConfigs.invalid("max.message.bytes", Integer.toString((8 << 20) + 1), small);
        assertEquals("Invalid value 8388609 for configuration max.message.bytes: this broker takes batches of at most"
            + " 8388608 bytes (test limit)", over);
        assertEquals(over, TopicConfigs.validate(Map.of("max.message.bytes", "8388609"), small).get("max.message.bytes"));
        // Kafka's default is never refused: a limit below it only means larger batches cannot arrive.
        TopicConfigs.Defaults tiny = TopicConfigs.Defaults.of(Map.of(), 512 << 10, "tiny");
        assertEquals(Map.of(), TopicConfigs.validate(Map.of("retention.ms", "1"), tiny));
    }

    @Test
    void shouldTakeBrokerDefaultsWithKafkasPrecedenceAndReportTheirSource() {
        Map<String, String> settings = new LinkedHashMap<>();
        settings.put("log.retention.hours", "48");
        settings.put("log.retention.minutes", "30");
        settings.put("log.roll.hours", "2");
        settings.put("message.max.bytes", "2097152");
        settings.put("min.insync.replicas", "2");
        settings.put("log.cleanup.policy", "compact");
        TopicConfigs.Defaults d = TopicConfigs.Defaults.of(settings, 64 << 20, "test");
        assertEquals("1800000", TopicConfigs.effective(Map.of(), "retention.ms", d), "minutes win over hours");
        assertEquals(TopicConfigs.SOURCE_STATIC_BROKER, TopicConfigs.source(Map.of(), "retention.ms", d));
        assertEquals(List.of(new TopicConfigs.Synonym("log.retention.minutes", "30", TopicConfigs.SOURCE_STATIC_BROKER),
                new TopicConfigs.Synonym("log.retention.hours", "48", TopicConfigs.SOURCE_STATIC_BROKER),
                new TopicConfigs.Synonym("log.retention.hours", "168", TopicConfigs.SOURCE_DEFAULT)),
            TopicConfigs.synonyms(Map.of(), "retention.ms", d));
        assertEquals(List.of(new TopicConfigs.Synonym("retention.ms", "5000", TopicConfigs.SOURCE_TOPIC),
                new TopicConfigs.Synonym("log.retention.minutes", "30", TopicConfigs.SOURCE_STATIC_BROKER),
                new TopicConfigs.Synonym("log.retention.hours", "48", TopicConfigs.SOURCE_STATIC_BROKER),
                new TopicConfigs.Synonym("log.retention.hours", "168", TopicConfigs.SOURCE_DEFAULT)),
            TopicConfigs.synonyms(Map.of("retention.ms", "5000"), "retention.ms", d));
        assertEquals(TopicConfigs.SOURCE_TOPIC, TopicConfigs.source(Map.of("retention.ms", "5000"), "retention.ms", d));
        assertEquals(TopicConfigs.SOURCE_DEFAULT, TopicConfigs.source(Map.of(), "delete.retention.ms", d));
        assertEquals(2, TopicConfigs.minInsyncReplicas(Map.of(), d));
        assertEquals(1, TopicConfigs.minInsyncReplicas(Map.of("min.insync.replicas", "1"), d));

        LogConfig lc = TopicConfigs.logConfig(Map.of(), d);
        assertEquals(2 * 3_600_000L, lc.segmentMs());
        assertEquals(2097152, lc.maxBatchBytes());
        assertTrue(lc.compact());
        assertEquals(-1, lc.retentionMs(), "no delete policy: no time retention");
        LogConfig both = TopicConfigs.logConfig(Map.of("cleanup.policy", "compact,delete"), d);
        assertEquals(1_800_000L, both.retentionMs());

        assertThrows(IllegalArgumentException.class, () -> TopicConfigs.Defaults.of(Map.of("log.retention.hours",
            "a day"), 1 << 20, ""));
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> TopicConfigs.Defaults.of(
            Map.of("log.cleanup.policy", "shred"), 1 << 20, ""));
        assertTrue(bad.getMessage().contains("log.cleanup.policy"), bad.getMessage());
        IllegalArgumentException tooLarge = assertThrows(IllegalArgumentException.class, () -> TopicConfigs.Defaults.of(
            Map.of("message.max.bytes", "2097152"), 1 << 20, "small"));
        assertTrue(tooLarge.getMessage().contains("max.message.bytes"), tooLarge.getMessage());
    }

    @Test
    void shouldMapTheTopicsConfigsOntoItsLog() {
        LogConfig plain = TopicConfigs.logConfig(Map.of(), KAFKA);
        assertEquals(1L << 30, plain.segmentBytes());
        assertEquals(TopicConfigs.KAFKA_DEFAULT_MAX_MESSAGE_BYTES, plain.maxBatchBytes());
        assertEquals(604_800_000L, plain.retentionMs());
        assertEquals(-1, plain.retentionBytes());
        assertFalse(plain.compact());

        LogConfig none = TopicConfigs.logConfig(Map.of("cleanup.policy", ""), KAFKA);
        assertFalse(none.compact());
        assertEquals(-1, none.retentionMs(), "an empty policy keeps every segment");
        LogConfig sized = TopicConfigs.logConfig(Map.of("retention.bytes", "-5", "index.interval.bytes", "0",
            "max.message.bytes", "0"), KAFKA);
        assertEquals(-1, sized.retentionBytes(), "any negative size is no limit, as in Kafka");
        assertEquals(1, sized.indexIntervalBytes(), "0: an index entry per batch");
        assertEquals(61, sized.maxBatchBytes(), "0: every batch is too large (none is smaller than its header)");
    }

    @Test
    void shouldDocumentEveryConfigInTheModuleReadmeTable() throws Exception {
        List<String> lines = java.nio.file.Files.readAllLines(java.nio.file.Path.of("README.md"));
        int start = -1;
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).startsWith("| config | here |")) {
                start = i + 2;
                break;
            }
        }
        assertTrue(start > 0, "the topic config table in kafka-gateway/README.md");
        Map<String, Boolean> documented = new LinkedHashMap<>();
        for (int i = start; i < lines.size() && lines.get(i).startsWith("|"); i++) {
            String[] cells = lines.get(i).split("\\|");
            boolean applied = cells[2].strip().startsWith("applied");
            assertTrue(applied || cells[2].strip().startsWith("no effect"), lines.get(i));
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("`([a-z.0-9]+)`").matcher(cells[1]);
            while (m.find()) {
                documented.put(m.group(1), applied);
            }
        }
        Map<String, Boolean> catalog = new LinkedHashMap<>();
        TopicConfigs.DEFINITIONS.values().forEach(d -> catalog.put(d.name(), d.applied()));
        assertEquals(new java.util.TreeMap<>(catalog), new java.util.TreeMap<>(documented));
    }
}
