package dev.isthmus.raft.sim;

import dev.isthmus.raft.Entry;
import dev.isthmus.raft.EntryKind;
import dev.isthmus.raft.SnapshotMeta;
import dev.isthmus.raft.StateMachine;

import java.nio.ByteBuffer;

/**
 * The simulator's replicated state: a running hash over every applied data entry (offset, term, bytes) and a
 * count. Each applied entry is checked against the cluster-wide record of committed entries, and the hash at
 * each offset is recorded so that snapshots installed on other nodes can be compared too.
 */
final class SimStateMachine implements StateMachine {
    private final SimChecker checker;
    private final int node;
    private final long group;
    private long appliedOffset = -1;
    private long hash = 17;
    private long dataEntries;

    SimStateMachine(SimChecker checker, int node, long group) {
        this.checker = checker;
        this.node = node;
        this.group = group;
    }

    @Override
    public void apply(Entry entry) {
        if (entry.baseOffset() != appliedOffset + 1) {
            throw new AssertionError("node " + node + " group " + group + " applies " + entry + " after "
                + appliedOffset);
        }
        checker.onApply(node, group, entry);
        if (entry.kind() == EntryKind.DATA) {
            // The payload's own hash: for a Kafka batch it leaves out the fields the log stamps (baseOffset, epoch).
            hash = mix(hash, entry.baseOffset(), entry.term(), entry.payload().hashCode());
            dataEntries++;
        }
        appliedOffset = entry.lastOffset();
        checker.onAppliedHash(node, group, appliedOffset, hash);
    }

    static long mix(long h, long offset, long term, int bytesHash) {
        h = h * 0x9E3779B97F4A7C15L + offset;
        h = h * 0x9E3779B97F4A7C15L + term;
        return h * 0x9E3779B97F4A7C15L + bytesHash;
    }

    @Override
    public byte[] snapshot() {
        return ByteBuffer.allocate(24).putLong(appliedOffset).putLong(hash).putLong(dataEntries).array();
    }

    @Override
    public void restore(SnapshotMeta meta, byte[] data) {
        ByteBuffer b = ByteBuffer.wrap(data);
        appliedOffset = b.getLong();
        hash = b.getLong();
        dataEntries = b.getLong();
        if (appliedOffset != meta.lastOffset()) {
            throw new AssertionError("snapshot at " + meta.lastOffset() + " holds state as of " + appliedOffset);
        }
        checker.onAppliedHash(node, group, appliedOffset, hash);
    }

    long appliedOffset() {
        return appliedOffset;
    }

    long hash() {
        return hash;
    }
}
