package dev.isthmus.raft.codec;

import dev.isthmus.arena.ArenaConfig;
import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.MemoryArena;
import dev.isthmus.arena.Subsystem;
import dev.isthmus.raft.AppendRequest;
import dev.isthmus.raft.AppendResponse;
import dev.isthmus.raft.BytesPayload;
import dev.isthmus.raft.Configuration;
import dev.isthmus.raft.Entry;
import dev.isthmus.raft.Heartbeat;
import dev.isthmus.raft.HeartbeatResponse;
import dev.isthmus.raft.InstallSnapshotRequest;
import dev.isthmus.raft.InstallSnapshotResponse;
import dev.isthmus.raft.RaftMessage;
import dev.isthmus.raft.SnapshotMeta;
import dev.isthmus.raft.TimeoutNow;
import dev.isthmus.raft.VoteRequest;
import dev.isthmus.raft.VoteResponse;
import dev.isthmus.raft.storage.KafkaBatchPayload;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RaftCodecTest {
    final RaftCodec codec = RaftCodec.defaults();

    static List<RaftMessage> samples(SplittableRandom r) {
        List<Entry> entries = new ArrayList<>();
        long o = r.nextLong(0, 1_000_000);
        long t = r.nextLong(1, 100);
        for (int i = 0, n = r.nextInt(0, 6); i < n; i++) {
            Entry e = switch (r.nextInt(4)) {
                case 0 -> Entry.leaderChange(o, t);
                case 1 -> Entry.configuration(o, t, new Configuration(new int[] {1, 2, 3}, new int[] {4, 5},
                    new int[] {6}, new int[] {4}));
                case 2 -> {
                    byte[] b = new byte[r.nextInt(0, 100)];
                    r.nextBytes(b);
                    yield Entry.data(o, t, new BytesPayload(b, r.nextInt(1, 5)));
                }
                default -> Entry.data(o, t, KafkaBatchPayload.ofValues(1_700_000_000_000L, new byte[] {1, 2},
                    new byte[r.nextInt(0, 50)]));
            };
            entries.add(e);
            o = e.lastOffset() + 1;
        }
        byte[] chunk = new byte[r.nextInt(0, 64)];
        r.nextBytes(chunk);
        int hb = r.nextInt(0, 20);
        long[] a = r.longs(hb).toArray();
        long[] b = r.longs(hb).toArray();
        long[] c = r.longs(hb).toArray();
        long[] d = r.longs(hb).toArray();
        long g = r.nextLong();
        return List.of(
            new VoteRequest(g, 1, 2, 7, 100, 6, r.nextBoolean(), r.nextBoolean()),
            new VoteResponse(g, 2, 1, 7, r.nextBoolean(), r.nextBoolean()),
            new AppendRequest(g, 1, 3, t, r.nextLong(-1, 1000), r.nextLong(0, 9), r.nextLong(-1, 1000), entries),
            new AppendResponse(g, 3, 1, t, r.nextBoolean(), r.nextLong(), r.nextLong(), r.nextLong(), r.nextLong(),
                r.nextLong(), r.nextLong()),
            new InstallSnapshotRequest(g, 1, 3, t, new SnapshotMeta(500, 4, Configuration.ofVoters(1, 3)), 9000,
                r.nextLong(0, 9000), chunk, r.nextBoolean()),
            new InstallSnapshotResponse(g, 3, 1, t, 500, r.nextLong(0, 9000), r.nextBoolean(), r.nextLong()),
            new TimeoutNow(g, 1, 2, t),
            new Heartbeat(1, 2, a, b, c),
            new HeartbeatResponse(2, 1, a, b, c, d));
    }

    static void assertSame(RaftMessage expected, RaftMessage actual) {
        assertEquals(expected.getClass(), actual.getClass());
        switch (expected) {
            case Heartbeat h -> {
                Heartbeat x = (Heartbeat) actual;
                assertEquals(h.from(), x.from());
                assertEquals(h.to(), x.to());
                assertArrayEquals(h.groupIds(), x.groupIds());
                assertArrayEquals(h.terms(), x.terms());
                assertArrayEquals(h.commitOffsets(), x.commitOffsets());
            }
            case HeartbeatResponse h -> {
                HeartbeatResponse x = (HeartbeatResponse) actual;
                assertEquals(h.from(), x.from());
                assertArrayEquals(h.groupIds(), x.groupIds());
                assertArrayEquals(h.terms(), x.terms());
                assertArrayEquals(h.matchOffsets(), x.matchOffsets());
                assertArrayEquals(h.lastOffsets(), x.lastOffsets());
            }
            case InstallSnapshotRequest s -> {
                InstallSnapshotRequest x = (InstallSnapshotRequest) actual;
                assertArrayEquals(s.chunk(), x.chunk());
                assertEquals(s.meta(), x.meta());
                assertEquals(new InstallSnapshotRequest(s.groupId(), s.from(), s.to(), s.term(), s.meta(),
                    s.totalBytes(), s.chunkOffset(), x.chunk(), s.done()), x);
            }
            default -> assertEquals(expected, actual);
        }
    }

    @Test
    void shouldRoundTripEveryMessageType() {
        long seed = Long.getLong("isthmus.seed", new SplittableRandom().nextLong());
        SplittableRandom r = new SplittableRandom(seed);
        for (int round = 0; round < 200; round++) {
            for (RaftMessage m : samples(r)) {
                byte[] frame = codec.encode(m);
                assertEquals(codec.frameBytes(m), frame.length);
                ByteBuffer in = ByteBuffer.wrap(frame);
                RaftMessage back = codec.decode(in);
                assertSame(m, back);
                assertEquals(frame.length, in.position(), "seed " + seed);
            }
        }
    }

    @Test
    void shouldCutAStreamOfFramesDeliveredInPieces() {
        SplittableRandom r = new SplittableRandom(7);
        List<RaftMessage> sent = new ArrayList<>();
        ByteBuffer stream = ByteBuffer.allocate(1 << 20);
        for (int i = 0; i < 20; i++) {
            for (RaftMessage m : samples(r)) {
                codec.encode(m, stream);
                sent.add(m);
            }
        }
        stream.flip();
        byte[] all = new byte[stream.remaining()];
        stream.get(all);
        ByteBuffer buf = ByteBuffer.allocate(all.length);
        buf.flip();
        List<RaftMessage> got = new ArrayList<>();
        int pos = 0;
        while (pos < all.length) {
            int n = Math.min(all.length - pos, 1 + r.nextInt(37));
            buf.compact();
            buf.put(all, pos, n);
            buf.flip();
            pos += n;
            RaftMessage m;
            while ((m = codec.decode(buf)) != null) {
                got.add(m);
            }
        }
        assertEquals(sent.size(), got.size());
        for (int i = 0; i < sent.size(); i++) {
            assertSame(sent.get(i), got.get(i));
        }
    }

    @Test
    void shouldRejectCorruptionAnywhereInAFrame() {
        SplittableRandom r = new SplittableRandom(11);
        for (RaftMessage m : samples(r)) {
            byte[] frame = codec.encode(m);
            for (int i = 4; i < frame.length; i++) {
                byte[] bad = frame.clone();
                bad[i] ^= (byte) (1 << r.nextInt(8));
                assertThrows(RaftCodecException.class, () -> codec.decode(ByteBuffer.wrap(bad)),
                    "flip at " + i + " of " + m.getClass().getSimpleName());
            }
        }
    }

    @Test
    void shouldWaitForIncompleteFramesAndRefuseOversizedOnes() {
        byte[] frame = codec.encode(new TimeoutNow(1, 1, 2, 3));
        ByteBuffer partial = ByteBuffer.wrap(Arrays.copyOf(frame, frame.length - 1));
        assertNull(codec.decode(partial));
        assertEquals(0, partial.position());
        assertNull(codec.decode(ByteBuffer.wrap(new byte[3])));
        ByteBuffer huge = ByteBuffer.allocate(8).putInt(Integer.MAX_VALUE).flip();
        RaftCodecException e = assertThrows(RaftCodecException.class, () -> codec.decode(huge));
        assertTrue(e.getMessage().contains("limit"), e.getMessage());
        RaftCodec small = new RaftCodec(64);
        assertThrows(RaftCodecException.class, () -> small.encode(new AppendRequest(1, 1, 2, 1, 0, 1, 0,
            List.of(Entry.data(1, 1, new BytesPayload(new byte[100], 1))))));
    }

    @Test
    void shouldRefuseAnotherVersion() {
        byte[] frame = codec.encode(new TimeoutNow(1, 1, 2, 3));
        frame[6] = 2;
        RaftCodecException e = assertThrows(RaftCodecException.class, () -> codec.decode(ByteBuffer.wrap(frame)));
        assertTrue(e.getMessage().contains("version"), e.getMessage());
    }

    @Test
    void shouldEncodeAnArenaBatchFromItsFragmentsAndRefuseItOnceFreed() {
        MemoryArena arena = MemoryArena.create(ArenaConfig.of(4L << 20).withDebug(true));
        try {
            byte[] value = new byte[300_000]; // three fragments of the chain
            new SplittableRandom(7).nextBytes(value);
            KafkaBatchPayload heap = KafkaBatchPayload.ofValues(1_700_000_000_000L, value, "b".getBytes());
            byte[] b = heap.bytes();
            KafkaBatchPayload arenaBatch = KafkaBatchPayload.copyOf(IoBuf.wrap(MemorySegment.ofArray(b)), 0, b.length,
                arena);
            assertTrue(arenaBatch.inArena());
            assertEquals(heap, arenaBatch);
            RaftCodec codec = new RaftCodec(1 << 20);
            AppendRequest m = new AppendRequest(1, 1, 2, 3, 9, 2, 9, List.of(Entry.data(10, 3, arenaBatch)));
            RaftMessage back = codec.decode(ByteBuffer.wrap(codec.encode(m)));
            assertEquals(new AppendRequest(1, 1, 2, 3, 9, 2, 9, List.of(Entry.data(10, 3, heap))), back);
            assertTrue(arena.used(Subsystem.RAFT) >= b.length, "the copy is in the Raft budget");

            arenaBatch.retain();
            arenaBatch.release();
            arenaBatch.release();
            assertEquals(0, arena.used(Subsystem.RAFT), "the last release frees the chain");
            assertThrows(IllegalStateException.class, arenaBatch::retain, "use after free");
            assertThrows(IllegalStateException.class, () -> codec.encode(m), "use after free");

            byte[] wrongMagic = b.clone();
            wrongMagic[16] = 1;
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () ->
                KafkaBatchPayload.copyOf(IoBuf.wrap(MemorySegment.ofArray(wrongMagic)), 0, b.length, arena));
            assertTrue(e.getMessage().contains("magic 1"), e.getMessage());
            assertEquals(0, arena.used(Subsystem.RAFT), "a refused batch allocates nothing");
            arena.checkNoLeaks();
        } finally {
            arena.close();
        }
    }

    @Test
    void shouldDecodeBatchesIntoThePayloadArenaAndGiveThemBackWhenTheFrameIsBad() {
        MemoryArena arena = MemoryArena.create(ArenaConfig.of(4L << 20).withDebug(true));
        try {
            RaftCodec plain = new RaftCodec(1 << 20);
            RaftCodec codec = new RaftCodec(1 << 20, arena);
            KafkaBatchPayload one = KafkaBatchPayload.ofValues(1_700_000_000_000L, "a".getBytes(), "b".getBytes());
            KafkaBatchPayload two = KafkaBatchPayload.ofValues(1_700_000_000_001L, new byte[200_000]);
            AppendRequest m = new AppendRequest(1, 1, 2, 3, 9, 2, 9, List.of(Entry.data(10, 3, one),
                Entry.leaderChange(12, 3), Entry.data(13, 3, two)));
            byte[] frame = plain.encode(m);
            AppendRequest back = (AppendRequest) codec.decode(ByteBuffer.wrap(frame));
            assertEquals(m, back);
            assertTrue(((KafkaBatchPayload) back.entries().get(0).payload()).inArena());
            assertTrue(((KafkaBatchPayload) back.entries().get(2).payload()).inArena());
            assertTrue(arena.used(Subsystem.RAFT) > 200_000);
            back.releasePayloads();
            assertEquals(0, arena.used(Subsystem.RAFT), "the message's references were the only ones");

            // The second batch claims more records than its entry covers: the frame is refused after the first
            // batch was copied, and that copy goes back.
            AppendRequest lying = new AppendRequest(1, 1, 2, 3, 9, 2, 9, List.of(Entry.data(10, 3, one),
                Entry.data(12, 3, two)));
            byte[] bad = plain.encode(lying);
            ByteBuffer patched = ByteBuffer.wrap(bad);
            // The second entry's lastOffset field: rewrite it and fix the frame's CRC, so only the field is wrong.
            int at = indexOfEntry(bad, 12, 3);
            patched.putLong(at + 1 + 8, 99);
            java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
            crc.update(bad, 12, bad.length - 12);
            patched.putInt(8, (int) crc.getValue());
            RaftCodecException e = assertThrows(RaftCodecException.class, () -> codec.decode(ByteBuffer.wrap(bad)));
            assertTrue(e.getMessage().contains("claims last offset 99"), e.getMessage());
            assertEquals(0, arena.used(Subsystem.RAFT), "nothing of a refused frame stays in the arena");
            arena.checkNoLeaks();
        } finally {
            arena.close();
        }
    }

    /**
     * A follower's one copy: an AppendRequest received into an arena chain (here in pieces, so batches straddle
     * fragments) is decoded with its batches sharing the chain, not copied; a configuration entry between them
     * decodes too. A bad frame leaves nothing referenced.
     */
    @Test
    void shouldDecodeAnAppendFromAReceiveChainSharingItsBatches() {
        MemoryArena arena = MemoryArena.create(ArenaConfig.of(4L << 20).withDebug(true));
        try {
            RaftCodec plain = new RaftCodec(1 << 20);
            RaftCodec codec = new RaftCodec(1 << 20, arena);
            KafkaBatchPayload one = KafkaBatchPayload.ofValues(1_700_000_000_000L, "a".getBytes(), "b".getBytes());
            KafkaBatchPayload two = KafkaBatchPayload.ofValues(1_700_000_000_001L, new byte[200_000]);
            AppendRequest m = new AppendRequest(1, 1, 2, 3, 9, 2, 9, List.of(Entry.data(10, 3, one),
                Entry.configuration(12, 3, Configuration.ofVoters(1, 2, 3)), Entry.data(13, 3, two)));
            byte[] frame = plain.encode(m);
            IoBuf received = IoBuf.empty(arena, Subsystem.RAFT);
            for (int at = 0; at < frame.length; at += 7_000) {
                received.append(frame, at, Math.min(7_000, frame.length - at));
            }
            long chainBytes = arena.used(Subsystem.RAFT);
            AppendRequest back = codec.decodeAppend(received);
            assertEquals(m, back);
            assertTrue(((KafkaBatchPayload) back.entries().get(0).payload()).inArena());
            assertTrue(((KafkaBatchPayload) back.entries().get(2).payload()).inArena());
            assertEquals(chainBytes, arena.used(Subsystem.RAFT), "the batches share the chain: nothing was copied");
            received.release();
            assertTrue(arena.used(Subsystem.RAFT) > 200_000, "the message keeps the fragments its batches lie in");
            back.releasePayloads();
            assertEquals(0, arena.used(Subsystem.RAFT), "the message's references were the last ones");

            byte[] bad = frame.clone();
            bad[bad.length - 3] ^= 1;
            IoBuf corrupt = IoBuf.empty(arena, Subsystem.RAFT).append(bad);
            RaftCodecException e = assertThrows(RaftCodecException.class, () -> codec.decodeAppend(corrupt));
            assertTrue(e.getMessage().contains("CRC32C"), e.getMessage());
            corrupt.release();
            assertEquals(0, arena.used(Subsystem.RAFT), "nothing of a refused frame stays in the arena");
            arena.checkNoLeaks();
        } finally {
            arena.close();
        }
    }

    /** Position in {@code frame} of the DATA entry header with this base offset and term. */
    private static int indexOfEntry(byte[] frame, long base, long term) {
        ByteBuffer b = ByteBuffer.wrap(frame);
        for (int i = 0; i + 25 <= frame.length; i++) {
            if (frame[i] == 0 && b.getLong(i + 1) == base && b.getLong(i + 17) == term) {
                return i;
            }
        }
        throw new AssertionError("entry " + base + " not found");
    }
}
