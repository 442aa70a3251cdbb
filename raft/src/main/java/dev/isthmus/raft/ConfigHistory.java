package dev.isthmus.raft;

import dev.isthmus.uring.Verify;

import java.util.ArrayList;
import java.util.List;

/**
 * The configurations a group's log holds, by offset: the one in force is the latest, committed or not
 * (thesis §4.1), and truncating the log's suffix falls back to the previous one. The first element is the
 * base: the snapshot's configuration at its last offset, or the bootstrap configuration at offset -1.
 * Owned by the group's shard.
 */
final class ConfigHistory {
    private final List<Long> offsets = new ArrayList<>();
    private final List<Configuration> configs = new ArrayList<>();
    private boolean fromLog;

    ConfigHistory(long baseOffset, Configuration base, boolean fromLog) {
        offsets.add(baseOffset);
        configs.add(base);
        this.fromLog = fromLog;
    }

    Configuration latest() {
        return configs.get(configs.size() - 1);
    }

    long latestOffset() {
        return offsets.get(offsets.size() - 1);
    }

    /** False while the only configuration is the bootstrap one (never written to the log). */
    boolean fromLog() {
        return fromLog;
    }

    /** The configuration in force at {@code offset}. */
    Configuration at(long offset) {
        for (int i = offsets.size() - 1; i > 0; i--) {
            if (offsets.get(i) <= offset) {
                return configs.get(i);
            }
        }
        return configs.get(0);
    }

    void add(long offset, Configuration c) {
        Verify.that(offset > latestOffset(), "configuration at %d not after %d", offset, latestOffset());
        offsets.add(offset);
        configs.add(c);
        fromLog = true;
    }

    /** Forgets configurations at or after {@code fromOffset} (the base stays). */
    void truncateSuffix(long fromOffset) {
        while (offsets.size() > 1 && offsets.get(offsets.size() - 1) >= fromOffset) {
            offsets.remove(offsets.size() - 1);
            configs.remove(configs.size() - 1);
        }
    }

    /** Makes {@code (offset, c)} the base, dropping everything at or below {@code offset}. */
    void rebase(long offset, Configuration c) {
        while (offsets.size() > 0 && offsets.get(0) <= offset) {
            offsets.remove(0);
            configs.remove(0);
        }
        offsets.add(0, offset);
        configs.add(0, c);
        fromLog = true;
    }

    int size() {
        return offsets.size();
    }
}
