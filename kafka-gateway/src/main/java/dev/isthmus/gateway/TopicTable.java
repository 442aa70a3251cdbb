package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.Uuid;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * An immutable version of the cluster's topics. Shard 0 owns the authoritative copy (the controller role on a
 * single node), persists each new version before it is acknowledged, and hands the new object to every shard
 * through the cross-shard queues; shards read only their own reference, never a shared mutable map.
 */
public final class TopicTable {
    /** One topic; {@code configs} holds only its overrides of the defaults ({@link TopicConfigs}). */
    public record Topic(String name, Uuid id, int partitions, Map<String, String> configs) {
        public Topic {
            configs = Collections.unmodifiableMap(new LinkedHashMap<>(configs));
        }

        public Topic(String name, Uuid id, int partitions) {
            this(name, id, partitions, Map.of());
        }

        Topic withPartitions(int n) {
            return new Topic(name, id, n, configs);
        }

        Topic withConfigs(Map<String, String> c) {
            return new Topic(name, id, partitions, c);
        }
    }

    public static final TopicTable EMPTY = new TopicTable(0, Map.of());

    private final long version;
    private final Map<String, Topic> byName;
    private final Map<Uuid, Topic> byId;

    private TopicTable(long version, Map<String, Topic> byName) {
        this.version = version;
        this.byName = Collections.unmodifiableMap(new LinkedHashMap<>(byName));
        Map<Uuid, Topic> ids = new LinkedHashMap<>();
        for (Topic t : byName.values()) {
            ids.put(t.id(), t);
        }
        this.byId = Collections.unmodifiableMap(ids);
    }

    public long version() {
        return version;
    }

    public Topic get(String name) {
        return byName.get(name);
    }

    public Topic get(Uuid id) {
        return byId.get(id);
    }

    public Iterable<Topic> topics() {
        return byName.values();
    }

    public TopicTable with(Topic t) {
        Map<String, Topic> m = new LinkedHashMap<>(byName);
        m.put(t.name(), t);
        return new TopicTable(version + 1, m);
    }

    public TopicTable without(String name) {
        Map<String, Topic> m = new LinkedHashMap<>(byName);
        m.remove(name);
        return new TopicTable(version + 1, m);
    }

    /** Kafka's topic name rule: 1..249 of [a-zA-Z0-9._-], not "." or "..". Returns null if valid. */
    public static String invalidName(String name) {
        if (name == null || name.isEmpty()) {
            return "topic name is empty";
        }
        if (name.equals(".") || name.equals("..")) {
            return "topic name cannot be \".\" or \"..\"";
        }
        if (name.length() > 249) {
            return "topic name is longer than 249 characters";
        }
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (!(Character.isLetterOrDigit(c) && c < 128) && c != '.' && c != '_' && c != '-') {
                return "topic name " + name + " contains '" + c + "'; only [a-zA-Z0-9._-] are allowed";
            }
        }
        return null;
    }

    // One line per topic: "<name> <uuid msb> <uuid lsb> <partitions>[ <key>=<url-encoded value>...]".
    void save(Path file) throws IOException {
        StringBuilder sb = new StringBuilder("# isthmus topics v1, version ").append(version).append('\n');
        for (Topic t : byName.values()) {
            sb.append(t.name()).append(' ').append(t.id().msb()).append(' ').append(t.id().lsb()).append(' ')
                .append(t.partitions());
            for (Map.Entry<String, String> c : t.configs().entrySet()) {
                sb.append(' ').append(c.getKey()).append('=')
                    .append(java.net.URLEncoder.encode(c.getValue(), StandardCharsets.UTF_8));
            }
            sb.append('\n');
        }
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (var ch = java.nio.channels.FileChannel.open(tmp, java.nio.file.StandardOpenOption.CREATE,
            java.nio.file.StandardOpenOption.WRITE, java.nio.file.StandardOpenOption.TRUNCATE_EXISTING)) {
            ch.write(java.nio.ByteBuffer.wrap(sb.toString().getBytes(StandardCharsets.UTF_8)));
            ch.force(true);
        }
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    static TopicTable load(Path file) throws IOException {
        if (!Files.exists(file)) {
            return EMPTY;
        }
        Map<String, Topic> m = new LinkedHashMap<>();
        long version = 0;
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            if (line.startsWith("#")) {
                int at = line.lastIndexOf(' ');
                version = Long.parseLong(line.substring(at + 1));
                continue;
            }
            if (line.isBlank()) {
                continue;
            }
            String[] p = line.split(" ");
            if (p.length < 4) {
                throw new IOException("corrupt topics file " + file + ": " + line);
            }
            Map<String, String> configs = new LinkedHashMap<>();
            for (int i = 4; i < p.length; i++) {
                int eq = p[i].indexOf('=');
                if (eq <= 0) {
                    throw new IOException("corrupt topics file " + file + ": " + line);
                }
                configs.put(p[i].substring(0, eq), java.net.URLDecoder.decode(p[i].substring(eq + 1), StandardCharsets.UTF_8));
            }
            m.put(p[0], new Topic(p[0], new Uuid(Long.parseLong(p[1]), Long.parseLong(p[2])), Integer.parseInt(p[3]),
                configs));
        }
        return new TopicTable(version, m);
    }
}
