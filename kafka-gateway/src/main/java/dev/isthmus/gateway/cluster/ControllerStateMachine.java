package dev.isthmus.gateway.cluster;

import dev.isthmus.log.RecordBatch;
import dev.isthmus.log.Records;
import dev.isthmus.raft.Entry;
import dev.isthmus.raft.EntryKind;
import dev.isthmus.raft.SnapshotMeta;
import dev.isthmus.raft.StateMachine;
import dev.isthmus.raft.storage.KafkaBatchPayload;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The controller group's {@link StateMachine}: applies committed commands to the {@link ClusterState} and
 * reports each outcome to a {@link Sink} (the {@link Controller}, which answers whoever proposed it). A
 * command is one record of a {@link KafkaBatchPayload} entry (uncompressed, the value is
 * {@link ControllerCommand#encode()}); a batch may hold several, applied in order at the entry's last offset.
 *
 * <p>Owned by the controller shard. {@link #state()} may be read from any thread (a volatile reference to an
 * immutable state).
 */
final class ControllerStateMachine implements StateMachine {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.gateway.cluster");

    /** Where outcomes go. */
    interface Sink {
        /** The entry at {@code baseOffset} of {@code term} was applied with {@code result} (one per command). */
        void onApplied(long baseOffset, long term, ControllerResult result, ClusterState state);
    }

    private final Sink sink;
    private volatile ClusterState state = ClusterState.EMPTY;
    private long appliedSinceSnapshot;

    ControllerStateMachine(Sink sink) {
        this.sink = sink;
    }

    ClusterState state() {
        return state;
    }

    long appliedSinceSnapshot() {
        return appliedSinceSnapshot;
    }

    @Override
    public void apply(Entry entry) {
        appliedSinceSnapshot++;
        if (entry.kind() != EntryKind.DATA) {
            state = state.withOffset(entry.lastOffset());
            return;
        }
        if (!(entry.payload() instanceof KafkaBatchPayload p)) {
            throw new IllegalStateException("controller entry at " + entry.baseOffset() + " holds "
                + entry.payload().getClass().getSimpleName() + ", not a record batch");
        }
        RecordBatch batch = new RecordBatch().wrap(MemorySegment.ofArray(p.bytes()), 0);
        Records records = new Records();
        ClusterState s = state;
        if (!records.wrap(batch)) {
            report(entry, s, ControllerResult.error(ControllerErrors.INVALID_REQUEST,
                "controller entry at " + entry.baseOffset() + " is compressed", entry.lastOffset()));
            return;
        }
        boolean any = false;
        while (records.next()) {
            any = true;
            MemorySegment v = records.value();
            ControllerResult result;
            try {
                if (v == null) {
                    throw new ControllerFormatException("null command");
                }
                ControllerCommand c = ControllerCommand.decode(v.toArray(ValueLayout.JAVA_BYTE));
                ClusterState.Applied a = s.apply(c, entry.lastOffset());
                s = a.state();
                result = a.result();
            } catch (ControllerFormatException e) {
                // Deterministic on every replica of this version: the entry is consumed and changes nothing.
                LOG.log(System.Logger.Level.ERROR, "skipping controller entry at " + entry.baseOffset() + ": "
                    + e.getMessage());
                s = s.withOffset(entry.lastOffset());
                result = ControllerResult.error(ControllerErrors.INVALID_REQUEST, e.getMessage(), entry.lastOffset());
            }
            state = s;
            sink.onApplied(entry.baseOffset(), entry.term(), result, s);
        }
        if (!any) {
            report(entry, s, ControllerResult.error(ControllerErrors.INVALID_REQUEST, "controller entry at "
                + entry.baseOffset() + " holds no record", entry.lastOffset()));
        }
    }

    private void report(Entry entry, ClusterState s, ControllerResult r) {
        state = s.withOffset(entry.lastOffset());
        sink.onApplied(entry.baseOffset(), entry.term(), r, state);
    }

    @Override
    public byte[] snapshot() {
        appliedSinceSnapshot = 0;
        return state.encode();
    }

    @Override
    public void restore(SnapshotMeta meta, byte[] data) {
        ClusterState s = data.length == 0 ? ClusterState.EMPTY : ClusterState.decode(data);
        if (s.appliedOffset() != meta.lastOffset() && meta.exists()) {
            s = s.withOffset(meta.lastOffset());
        }
        state = s;
        appliedSinceSnapshot = 0;
        sink.onApplied(-1, 0, null, s);
    }
}
