package dev.isthmus.gateway.group;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Drives one {@link GroupStateMachine} as the shard's shell does, with a clock the test moves and an in-memory
 * offsets partition: every write is encoded with {@link OffsetsRecords} into that log (or failed, or held back),
 * and a restart replays the log into a fresh machine. It checks on every step that each request is answered
 * exactly once and that the machine's invariants hold.
 */
final class GroupHarness {
    /** A durable record of the simulated offsets partition (value null: tombstone; marker: a control record). */
    record LogEntry(long offset, byte[] key, byte[] value, long producerId, Boolean markerCommit) {
    }

    final GroupConfig config;
    long now = 1_000_000;
    GroupStateMachine m;
    final Outbox out = new Outbox();
    final Map<Long, Object> replies = new HashMap<>();
    /** Request ids in the order they were answered. */
    final List<Long> replyOrder = new ArrayList<>();
    final Set<Long> issued = new HashSet<>();
    final List<Outbox.Write> heldWrites = new ArrayList<>();
    final List<LogEntry> log = new ArrayList<>();
    /** Writes complete at once with success unless false (then they wait in {@link #heldWrites}). */
    boolean autoPersist = true;
    /** Called with each write as the machine emits it (model checks hook in here). */
    java.util.function.Consumer<Outbox.Write> onEmit = w -> { };
    /** Incarnations of the machine: 0 at start, +1 per restart. */
    int incarnation;
    private long nextRequestId = 1;
    private int memberIds;

    GroupHarness(GroupConfig config) {
        this.config = config;
        m = newMachine();
        m.loaded(now, out);
        drain();
    }

    static GroupConfig config() {
        return new GroupConfig(1_000, 600_000, 0, 300_000, Integer.MAX_VALUE, 24 * 3600_000L, 60_000, 4096);
    }

    private GroupStateMachine newMachine() {
        return new GroupStateMachine(config, prefix -> prefix + "-m" + (++memberIds));
    }

    // ------------------------------------------------------------------ requests

    long join(GroupApi.JoinRequest r) {
        long id = issue();
        m.join(now, id, r, out);
        drain();
        return id;
    }

    long sync(GroupApi.SyncRequest r) {
        long id = issue();
        m.sync(now, id, r, out);
        drain();
        return id;
    }

    short heartbeat(String group, String memberId, String instanceId, int generation) {
        long id = issue();
        m.heartbeat(now, id, new GroupApi.HeartbeatRequest(group, memberId, instanceId, generation), out);
        drain();
        return ((GroupApi.HeartbeatResponse) reply(id)).errorCode();
    }

    GroupApi.LeaveResponse leave(String group, GroupApi.LeavingMember... who) {
        long id = issue();
        m.leave(now, id, new GroupApi.LeaveRequest(group, List.of(who)), out);
        drain();
        return (GroupApi.LeaveResponse) reply(id);
    }

    long commit(String group, int generation, String memberId, String instanceId, GroupApi.OffsetEntry... entries) {
        long id = issue();
        m.commitOffsets(now, id, new GroupApi.OffsetCommitRequest(group, generation, memberId, instanceId,
            List.of(entries), (short) 8), out);
        drain();
        return id;
    }

    long commitAt(short version, String group, int generation, String memberId, GroupApi.OffsetEntry... entries) {
        long id = issue();
        m.commitOffsets(now, id, new GroupApi.OffsetCommitRequest(group, generation, memberId, null, List.of(entries),
            version), out);
        drain();
        return id;
    }

    /** Collects what an unload answered (the machine is dead: no invariant check). */
    void collectAfterUnload() {
        collectReplies();
        out.clear();
    }

    long commitTxn(String group, long producerId, GroupApi.OffsetEntry... entries) {
        long id = issue();
        m.commitTransactionalOffsets(now, id, new GroupApi.TxnOffsetCommitRequest(group, producerId, (short) 0, -1, "",
            null, List.of(entries)), out);
        drain();
        return id;
    }

    long deleteGroup(String group) {
        long id = issue();
        m.deleteGroup(now, id, group, out);
        drain();
        return id;
    }

    long deleteOffsets(String group, TopicPartition... tps) {
        long id = issue();
        m.deleteOffsets(now, id, new GroupApi.OffsetDeleteRequest(group, List.of(tps)), out);
        drain();
        return id;
    }

    private long issue() {
        long id = nextRequestId++;
        issued.add(id);
        return id;
    }

    /** The answer to {@code id}, which must have been given. */
    Object reply(long id) {
        Object r = replies.get(id);
        assertNotNull(r, "request " + id + " not answered");
        return r;
    }

    boolean answered(long id) {
        return replies.containsKey(id);
    }

    GroupApi.JoinResponse joinReply(long id) {
        return (GroupApi.JoinResponse) reply(id);
    }

    GroupApi.SyncResponse syncReply(long id) {
        return (GroupApi.SyncResponse) reply(id);
    }

    short[] commitReply(long id) {
        return ((GroupApi.OffsetCommitResponse) reply(id)).errorCodes();
    }

    void assertParked(long id) {
        assertNull(replies.get(id), "request " + id + " should still wait");
    }

    // ------------------------------------------------------------------ time, writes, restarts

    void advance(long ms) {
        now += ms;
        m.tick(now, out);
        drain();
    }

    /** Completes the oldest held write with {@code error}. */
    void completeHeldWrite(short error) {
        Outbox.Write w = heldWrites.removeFirst();
        persist(w, error);
    }

    void completeHeldWrites() {
        while (!heldWrites.isEmpty()) {
            completeHeldWrite(GroupErrors.NONE);
        }
    }

    /** Unloads the machine (answering what waits) and replays the log into a new one. */
    void restart() {
        m.unload(out);
        heldWrites.clear(); // lost with the old leader: never durable
        collectReplies();
        m = newMachine();
        incarnation++;
        for (LogEntry e : log) {
            if (e.markerCommit() != null) {
                m.replayMarker(e.producerId(), e.markerCommit());
            } else {
                m.replay(OffsetsRecords.decode(ByteBuffer.wrap(e.key()), e.value() == null ? null
                    : ByteBuffer.wrap(e.value())), e.offset(), e.producerId());
            }
        }
        m.loaded(now, out);
        drain();
    }

    /** Appends a transaction marker to the log and applies it, as WriteTxnMarkers will. */
    void marker(long producerId, boolean commit) {
        log.add(new LogEntry(log.size(), null, null, producerId, commit));
        m.replayMarker(producerId, commit);
        m.verify();
    }

    void drain() {
        for (int round = 0; !out.isEmpty(); round++) {
            assertTrue(round < 10_000, "outbox never drains");
            collectReplies();
            List<Outbox.Write> writes = List.copyOf(out.writes());
            out.clear();
            for (Outbox.Write w : writes) {
                onEmit.accept(w);
                if (autoPersist) {
                    persist(w, GroupErrors.NONE);
                } else {
                    heldWrites.add(w);
                }
            }
        }
        m.verify();
    }

    private void collectReplies() {
        for (Outbox.Reply r : out.replies()) {
            assertTrue(issued.contains(r.requestId()), "reply to a request never issued: " + r);
            assertNull(replies.put(r.requestId(), r.response()), "request " + r.requestId() + " answered twice");
            replyOrder.add(r.requestId());
        }
        out.replies().clear();
    }

    private void persist(Outbox.Write w, short error) {
        long base = log.size();
        if (error == GroupErrors.NONE) {
            for (GroupRecord r : w.records()) {
                log.add(new LogEntry(log.size(), OffsetsRecords.key(r), OffsetsRecords.value(r), w.producerId(), null));
            }
        }
        m.written(now, w.writeId(), error, error == GroupErrors.NONE ? base : -1, out);
        drain();
    }

    // ------------------------------------------------------------------ values

    static byte[] subscription(String... topics) {
        int n = 2 + 4;
        for (String t : topics) {
            n += 2 + t.getBytes(StandardCharsets.UTF_8).length;
        }
        ByteBuffer b = ByteBuffer.allocate(n + 4);
        b.putShort((short) 0).putInt(topics.length);
        for (String t : topics) {
            byte[] u = t.getBytes(StandardCharsets.UTF_8);
            b.putShort((short) u.length).put(u);
        }
        b.putInt(-1); // user data: null
        return b.array();
    }

    static List<GroupApi.Protocol> protocols(String... names) {
        List<GroupApi.Protocol> out = new ArrayList<>();
        for (String n : names) {
            out.add(new GroupApi.Protocol(n, subscription("t")));
        }
        return out;
    }

    static GroupApi.JoinRequest joinRequest(String group, String memberId, String instanceId, short version) {
        return new GroupApi.JoinRequest(group, memberId, instanceId, "client", "/127.0.0.1", 10_000, 30_000, "consumer",
            protocols("range"), version);
    }

    static GroupApi.JoinRequest joinRequest(String group, String memberId, String instanceId, short version,
                                            int sessionTimeoutMs, int rebalanceTimeoutMs, List<GroupApi.Protocol> protocols) {
        return new GroupApi.JoinRequest(group, memberId, instanceId, "client", "/127.0.0.1", sessionTimeoutMs,
            rebalanceTimeoutMs, "consumer", protocols, version);
    }

    static GroupApi.SyncRequest syncRequest(String group, String memberId, String instanceId, int generation,
                                            Map<String, byte[]> assignments) {
        return new GroupApi.SyncRequest(group, memberId, instanceId, generation, "consumer", null, assignments);
    }

    static GroupApi.OffsetEntry offset(String topic, int partition, long offset) {
        return new GroupApi.OffsetEntry(new TopicPartition(topic, partition), offset, 3, "meta");
    }

    /** A member id fully joined: the two-step join at v5 and the rebalance completed by the caller. */
    String memberIdRequired(String group) {
        long first = join(joinRequest(group, "", null, (short) 5));
        GroupApi.JoinResponse r = joinReply(first);
        assertEquals(GroupErrors.MEMBER_ID_REQUIRED, r.errorCode());
        return r.memberId();
    }

    GroupApi.DescribedGroup describe(String group) {
        return m.describe(group);
    }

    long committed(String group, String topic, int partition) {
        return m.fetchOffsets(group, List.of(new TopicPartition(topic, partition)), false)
            .get(new TopicPartition(topic, partition)).offset();
    }
}
