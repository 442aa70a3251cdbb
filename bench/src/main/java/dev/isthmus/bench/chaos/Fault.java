package dev.isthmus.bench.chaos;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The faults the nemesis can inject, by their {@code --nemesis} names. Each says when it cannot run on a
 * cluster ({@link #skipReason}); the run prints that and leaves it out of the schedule. A new fault (replica
 * moves of issue 21, for one) is a new constant here and a case in {@link Nemesis#inject}.
 */
enum Fault {
    KILL("kill", "kill -9 of a random node; restarted when the fault ends"),
    KILL_LEADER("kill-leader", "kill -9 of the leader of a random partition of the append topic; restarted at the end"),
    KILL_CONTROLLER("kill-controller", "kill -9 of the controller leader; restarted at the end"),
    KILL_ALL("kill-all", "kill -9 of every node at once; all restarted at the end"),
    PAUSE("pause", "SIGSTOP of a random node; SIGCONT at the end"),
    PARTITION_HALF("partition-half", "the nodes split at random into a majority and a minority that cannot talk"),
    PARTITION_LEADER("partition-leader", "the leader of a random partition cut off from every other node"),
    PARTITION_BRIDGE("partition-bridge", "two halves that cannot talk, and one node that talks to both"),
    DISK_FULL("disk-full", "a random node's file system filled by a hog file; freed at the end"),
    TORN_WRITE("torn-write", "kill -9 of a random node, its last segment's unacknowledged tail cut at a random byte, restarted"),
    ROLLING_RESTART("rolling-restart", "every node stopped cleanly (SIGTERM) and restarted in turn");

    final String id;
    final String description;

    Fault(String id, String description) {
        this.id = id;
        this.description = description;
    }

    static Fault parse(String s) {
        String t = s.trim().toLowerCase(Locale.ROOT);
        for (Fault f : values()) {
            if (f.id.equals(t)) {
                return f;
            }
        }
        List<String> ids = new ArrayList<>();
        for (Fault f : values()) {
            ids.add(f.id);
        }
        throw new IllegalArgumentException("--nemesis takes " + String.join(", ", ids) + " or none; '" + s + "' is not one");
    }

    static List<Fault> parseList(String s) {
        if (s.trim().equalsIgnoreCase("none")) {
            return List.of();
        }
        if (s.trim().equalsIgnoreCase("all")) {
            return List.of(values());
        }
        List<Fault> out = new ArrayList<>();
        for (String p : s.split(",")) {
            Fault f = parse(p);
            if (!out.contains(f)) {
                out.add(f);
            }
        }
        return out;
    }

    boolean partition() {
        return this == PARTITION_HALF || this == PARTITION_LEADER || this == PARTITION_BRIDGE;
    }

    /** Why this fault cannot run on {@code nodes} nodes with this network and disk, or null when it can. */
    String skipReason(int nodes, String networkReason, String diskReason) {
        if (partition()) {
            if (nodes < 3) {
                return "a single node has no other node to be cut off from";
            }
            if (networkReason != null) {
                return networkReason;
            }
        }
        if (this == DISK_FULL && diskReason != null) {
            return diskReason;
        }
        return null;
    }
}
