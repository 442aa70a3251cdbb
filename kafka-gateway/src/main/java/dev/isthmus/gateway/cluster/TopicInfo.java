package dev.isthmus.gateway.cluster;

import java.util.Collections;
import java.util.List;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.UUID;

/** A topic: name, id (Kafka's topic UUID), config overrides and partitions (index = partition number). */
public record TopicInfo(String name, UUID id, SortedMap<String, String> configs, List<PartitionInfo> partitions) {
    public TopicInfo {
        configs = Collections.unmodifiableSortedMap(new TreeMap<>(configs));
        partitions = List.copyOf(partitions);
        for (int i = 0; i < partitions.size(); i++) {
            if (partitions.get(i).partition() != i) {
                throw new IllegalArgumentException("topic " + name + " lists partition "
                    + partitions.get(i).partition() + " at index " + i);
            }
        }
    }

    public PartitionInfo partition(int p) {
        return p >= 0 && p < partitions.size() ? partitions.get(p) : null;
    }

    void write(Wire.Writer w) {
        w.str(name).i64(id.getMostSignificantBits()).i64(id.getLeastSignificantBits());
        w.i32(configs.size());
        configs.forEach((k, v) -> w.str(k).str(v));
        w.i32(partitions.size());
        partitions.forEach(p -> p.write(w));
    }

    static TopicInfo read(Wire.Reader r) {
        String name = r.str();
        UUID id = new UUID(r.i64(), r.i64());
        int n = r.count(8);
        TreeMap<String, String> configs = new TreeMap<>();
        for (int i = 0; i < n; i++) {
            configs.put(r.str(), r.str());
        }
        int np = r.count(20);
        PartitionInfo[] parts = new PartitionInfo[np];
        for (int i = 0; i < np; i++) {
            parts[i] = PartitionInfo.read(r);
        }
        try {
            return new TopicInfo(name, id, configs, List.of(parts));
        } catch (IllegalArgumentException e) {
            throw new ControllerFormatException(e.getMessage());
        }
    }
}
