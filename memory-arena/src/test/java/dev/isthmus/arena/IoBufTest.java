package dev.isthmus.arena;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.uring.shard.ShardGroup;
import dev.isthmus.uring.shard.ShardGroupConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@ExtendWith(ArenaLeakCheck.class)
class IoBufTest {
    private static final long MiB = 1024 * 1024;

    private static long seed(String name) {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println(name + " seed=" + seed + " (replay with -Disthmus.seed=" + seed + ")");
        return seed;
    }

    private static byte[] randomBytes(Random rnd, int n) {
        byte[] b = new byte[n];
        rnd.nextBytes(b);
        return b;
    }

    /**
     * A Fetch response's shape: a few dozen bytes of fields, then a partition's batches appended by sharing, for a
     * thousand partitions. The fields' fragments are sized by the copies, not by the shared bytes (sized by the
     * chain, each partition's fields took up to 128 KiB: a response of 1000 partitions exhausted a 64 MiB shard's
     * OTHER budget). Contents stay exact.
     */
    @Test
    void shouldKeepFieldsBetweenSharedFragmentsInSmallFragments() {
        try (MemoryArena arena = MemoryArena.create(ArenaConfig.of(256 * MiB).withUnlimitedBudgets())) {
            IoBuf batches = IoBuf.empty(arena, Subsystem.BATCH_CACHE);
            byte[] data = randomBytes(new Random(7), 64 * 1024);
            batches.append(data);
            IoBuf out = IoBuf.empty(arena, Subsystem.OTHER);
            ByteArrayOutputStream model = new ByteArrayOutputStream();
            for (int p = 0; p < 1000; p++) {
                for (int i = 0; i < 10; i++) {
                    out.appendInt(p * 10 + i);
                    model.writeBytes(ByteBuffer.allocate(4).putInt(p * 10 + i).array());
                }
                out.append(batches);
                model.writeBytes(data);
            }
            long owned = arena.used(Subsystem.OTHER);
            assertTrue(owned <= 1000 * 1024, owned + " bytes of OTHER for 40 KB of fields");
            byte[] all = new byte[(int) out.size()];
            out.copyTo(0, MemorySegment.ofArray(all), 0, all.length);
            assertArrayEquals(model.toByteArray(), all);
            // A chain of copies only still grows with itself (few large fragments).
            IoBuf copies = IoBuf.empty(arena, Subsystem.NETWORK_RECEIVE);
            for (int i = 0; i < 1000; i++) {
                copies.append(data, 0, 1000);
            }
            assertTrue(copies.fragmentCount() <= 16, copies.fragmentCount() + " fragments for 1 MB of copies");
            copies.release();
            out.release();
            batches.release();
        }
    }

    /** Every operation on a chain is mirrored on a byte[]; contents and reads must always agree. */
    @Test
    void shouldMatchAByteArrayModel() {
        Random rnd = new Random(seed("shouldMatchAByteArrayModel"));
        try (MemoryArena arena = MemoryArena.create(ArenaConfig.of(256 * MiB).withUnlimitedBudgets())) {
            IoBuf buf = IoBuf.empty(arena, Subsystem.OTHER);
            byte[] model = new byte[0];
            List<IoBuf> shares = new ArrayList<>();
            List<byte[]> shareModels = new ArrayList<>();
            for (int step = 0; step < 3_000; step++) {
                int op = rnd.nextInt(12);
                switch (op) {
                    case 0, 1 -> {
                        byte[] b = randomBytes(rnd, rnd.nextInt(rnd.nextBoolean() ? 100 : 200_000));
                        buf.append(b);
                        model = concat(model, b);
                    }
                    case 2 -> {
                        int v = rnd.nextInt();
                        buf.appendInt(v);
                        model = concat(model, ByteBuffer.allocate(4).putInt(v).array());
                    }
                    case 3 -> {
                        long v = rnd.nextLong();
                        buf.appendLong(v);
                        model = concat(model, ByteBuffer.allocate(8).putLong(v).array());
                    }
                    case 4 -> {
                        // Append a separately built chain by sharing, then release the original.
                        IoBuf other = IoBuf.empty(arena, Subsystem.OTHER);
                        byte[] b = randomBytes(rnd, rnd.nextInt(50_000));
                        other.append(b);
                        if (rnd.nextBoolean()) {
                            buf.append(other);
                            model = concat(model, b);
                        } else {
                            buf.prepend(other);
                            model = concat(b, model);
                        }
                        other.release();
                    }
                    case 5 -> {
                        long n = model.length == 0 ? 0 : rnd.nextInt(model.length + 1) / 3;
                        buf.trimFront(n);
                        model = Arrays.copyOfRange(model, (int) n, model.length);
                    }
                    case 6 -> {
                        long n = model.length == 0 ? 0 : rnd.nextInt(model.length + 1) / 3;
                        buf.trimBack(n);
                        model = Arrays.copyOf(model, model.length - (int) n);
                    }
                    case 7 -> {
                        if (model.length > 0) {
                            int pos = rnd.nextInt(model.length);
                            int len = rnd.nextInt(model.length - pos + 1);
                            shares.add(buf.share(pos, len));
                            shareModels.add(Arrays.copyOfRange(model, pos, pos + len));
                        }
                    }
                    case 8 -> {
                        if (model.length >= 8) {
                            int pos = rnd.nextInt(model.length - 7);
                            ByteBuffer bb = ByteBuffer.wrap(model);
                            assertEquals(bb.getLong(pos), buf.getLong(pos));
                            assertEquals(bb.getInt(pos), buf.getInt(pos));
                            assertEquals(bb.getShort(pos), buf.getShort(pos));
                            assertEquals(model[pos], buf.getByte(pos));
                        }
                    }
                    case 9 -> {
                        if (model.length > 0) {
                            int pos = rnd.nextInt(model.length);
                            int len = rnd.nextInt(model.length - pos + 1);
                            CRC32C crc = new CRC32C();
                            crc.update(model, pos, len);
                            assertEquals((int) crc.getValue(), buf.crc32c(pos, len));
                        }
                    }
                    case 10 -> {
                        int v = rnd.nextInt();
                        long lv = rnd.nextLong();
                        IoBuf vb = IoBuf.empty(arena, Subsystem.OTHER);
                        vb.appendVarint(v).appendUnsignedVarint(v).appendVarlong(lv);
                        IoBufReader r = vb.reader();
                        assertEquals(v, r.readVarint());
                        assertEquals(v, r.readUnsignedVarint());
                        assertEquals(lv, r.readVarlong());
                        assertTrue(!r.hasRemaining());
                        vb.release();
                    }
                    default -> {
                        // Shares must be unaffected by later changes of the source chain's shape.
                        for (int i = 0; i < shares.size(); i++) {
                            assertArrayEquals(shareModels.get(i), shares.get(i).toByteArray());
                        }
                        if (shares.size() > 20) {
                            shares.remove(0).release();
                            shareModels.remove(0);
                        }
                    }
                }
                assertEquals(model.length, buf.size());
                if (step % 50 == 0) {
                    assertArrayEquals(model, buf.toByteArray());
                }
            }
            assertArrayEquals(model, buf.toByteArray());
            buf.release();
            shares.forEach(IoBuf::release);
            arena.checkNoLeaks();
        }
    }

    @Test
    void shouldReadIntegersAndVarintsAcrossFragmentBoundaries() {
        try (MemoryArena arena = MemoryArena.create(ArenaConfig.of(8 * MiB))) {
            // Build a chain whose fragments are 1..7 bytes long so every value straddles a boundary.
            ByteArrayOutputStream model = new ByteArrayOutputStream();
            ByteBuffer bb = ByteBuffer.allocate(4096);
            bb.putLong(0x0102030405060708L).putInt(0xCAFEBABE).putShort((short) -2);
            for (int i = 0; i < 100; i++) {
                int z = (i * 7919) ^ -(i & 1);
                int zz = (z << 1) ^ (z >> 31);
                while ((zz & ~0x7F) != 0) {
                    bb.put((byte) ((zz & 0x7F) | 0x80));
                    zz >>>= 7;
                }
                bb.put((byte) zz);
            }
            byte[] all = Arrays.copyOf(bb.array(), bb.position());
            IoBuf chain = IoBuf.empty(arena, Subsystem.OTHER);
            int pos = 0;
            int piece = 1;
            while (pos < all.length) {
                int n = Math.min(piece, all.length - pos);
                IoBuf part = IoBuf.empty(arena, Subsystem.OTHER);
                part.append(all, pos, n);
                chain.append(part);
                part.release();
                pos += n;
                piece = piece % 7 + 1;
            }
            model.writeBytes(all);
            assertTrue(chain.fragmentCount() > 40, "fragments: " + chain.fragmentCount());
            IoBufReader r = chain.reader();
            assertEquals(0x0102030405060708L, r.readLong());
            assertEquals(0xCAFEBABE, r.readInt());
            assertEquals(-2, r.readShort());
            for (int i = 0; i < 100; i++) {
                assertEquals((i * 7919) ^ -(i & 1), r.readVarint());
            }
            assertThrows(IndexOutOfBoundsException.class, r::readByte);
            // A slice read zero-copy shares the fragments.
            r.position(8);
            IoBuf slice = r.readSlice(4);
            assertEquals(0xCAFEBABE, slice.getInt(0));
            slice.release();
            // Backfilled length prefix.
            IoBuf out = IoBuf.empty(arena, Subsystem.OTHER);
            long at = out.reserve(4);
            out.append(new byte[10_000]);
            out.setInt(at, 10_000);
            assertEquals(10_000, out.getInt(0));
            out.release();
            chain.release();
            assertEquals(model.size(), all.length);
        }
    }

    @Test
    void shouldNeverMakeFragmentsLargerThanTheLimitAndFillIovecs() {
        try (MemoryArena arena = MemoryArena.create(ArenaConfig.of(16 * MiB));
             Arena scratch = Arena.ofConfined()) {
            IoBuf big = IoBuf.allocate(arena, Subsystem.WRITE_BEHIND, 3 * MiB + 5);
            assertEquals(3 * MiB + 5, big.size());
            for (int i = 0; i < big.fragmentCount(); i++) {
                assertTrue(big.fragment(i).byteSize() <= IoBuf.MAX_FRAGMENT_BYTES);
                assertEquals(0, big.fragment(i).address() % 4096, "fragment " + i + " is 4096-aligned");
            }
            MemorySegment iov = scratch.allocate(16L * 64, 8);
            int n = big.fillIovecs(iov, 64);
            long total = 0;
            for (int i = 0; i < n; i++) {
                total += iov.get(ValueLayout.JAVA_LONG, 16L * i + 8);
            }
            assertEquals(big.size(), total);
            big.release();
            assertThrows(IllegalStateException.class, () -> big.getByte(0));
            ArenaExhaustedException e = assertThrows(ArenaExhaustedException.class,
                () -> IoBuf.allocate(arena, Subsystem.NETWORK_RECEIVE, 15 * MiB));
            assertTrue(e.getMessage().contains("NETWORK_RECEIVE"), e.getMessage());
            assertEquals(0, arena.liveAllocations(), "a failed allocate releases what it took");
        }
    }

    /** Chains built on one shard and released on another: the frees travel back in batches. */
    @Test
    void shouldReturnFragmentsReleasedOnAnotherShardToTheirOwner() throws Exception {
        try (ShardGroup group = ShardGroup.start(ShardGroupConfig.of(2).withPin(false), null)) {
            ShardArenas arenas = ShardArenas.install(group, id -> ArenaConfig.of(32 * MiB));
            int chains = 2_000;
            List<IoBuf> built = group.call(0, s -> {
                List<IoBuf> out = new ArrayList<>();
                for (int i = 0; i < chains; i++) {
                    IoBuf b = IoBuf.empty(arenas.current(), Subsystem.NETWORK_RECEIVE);
                    b.append(new byte[100 + i % 5000]);
                    out.add(b);
                }
                return out;
            }).get(10, TimeUnit.SECONDS);
            assertEquals(chains, group.call(0, s -> arenas.current().liveAllocations()).get(10, TimeUnit.SECONDS));
            group.call(1, s -> {
                built.forEach(IoBuf::release);
                return null;
            }).get(10, TimeUnit.SECONDS);
            long live;
            do {
                live = group.call(0, s -> arenas.current().liveAllocations()).get(10, TimeUnit.SECONDS);
            } while (live > 0);
            assertEquals(chains, arenas.arena(0).stats().remoteFrees());
            assertTrue(group.shard(1).stats().get(dev.isthmus.uring.shard.ShardStats.CALLS_SENT) < chains,
                "frees were batched, not sent one by one");
            arenas.close();
        }
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
