package dev.isthmus.log;

import dev.isthmus.uring.Verify;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The compaction key map: record key -> the last offset holding that key, in a fixed block of memory that
 * never grows (Kafka's dedupe buffer). Keys are reduced to a 128-bit MurmurHash3 (x64) digest, so a map of
 * {@code N} bytes holds {@code N / 24} slots whatever the key sizes; with 2^128 digests a collision between
 * two live keys is not a practical concern (Kafka keys its map with 128-bit MD5 for the same reason).
 *
 * <pre>
 *  slot (24 bytes): | h1 i64 | h2 i64 | offset + 1 i64 (0 = empty) |      open addressing, linear probing
 * </pre>
 *
 * It is considered full at 3/4 of its slots, where probe sequences are still short. Owner: the shard thread
 * running the compaction.
 */
final class KeyOffsetMap {
    static final int SLOT_BYTES = 24;
    private static final ValueLayout.OfLong SLOT_LONG = ValueLayout.JAVA_LONG_UNALIGNED;
    private static final ValueLayout.OfLong LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long C1 = 0x87c37b91114253d5L;
    private static final long C2 = 0x4cf5ad432745937fL;

    private final MemorySegment memory;
    private final long slots;
    private final long mask;
    private final long maxEntries;
    private long size;
    // The digest of the last key hashed.
    private long h1;
    private long h2;

    /** A map over {@code memory} (at least 16 slots' worth); its contents are cleared. */
    KeyOffsetMap(MemorySegment memory) {
        long n = Long.highestOneBit(memory.byteSize() / SLOT_BYTES);
        if (n < 16) {
            throw new IllegalArgumentException("a compaction key map needs at least " + 16 * SLOT_BYTES + " bytes, got "
                + memory.byteSize());
        }
        this.memory = memory;
        this.slots = n;
        this.mask = n - 1;
        this.maxEntries = n / 4 * 3;
        clear();
    }

    void clear() {
        memory.asSlice(0, slots * SLOT_BYTES).fill((byte) 0);
        size = 0;
    }

    long size() {
        return size;
    }

    /** Keys the map holds before it counts as full. */
    long maxEntries() {
        return maxEntries;
    }

    /** Whether {@code more} keys still fit. */
    boolean hasRoomFor(long more) {
        return size + more <= maxEntries;
    }

    /** Records that the key at {@code key[pos, pos + length)} is at {@code offset} (keeping the larger offset). */
    void put(MemorySegment key, long pos, int length, long offset) {
        hash(key, pos, length);
        long slot = h1 & mask;
        for (long probe = 0; probe < slots; probe++) {
            long at = slot * SLOT_BYTES;
            long stored = memory.get(SLOT_LONG, at + 16);
            if (stored == 0) {
                Verify.that(size < slots, "key map overfull");
                memory.set(SLOT_LONG, at, h1);
                memory.set(SLOT_LONG, at + 8, h2);
                memory.set(SLOT_LONG, at + 16, offset + 1);
                size++;
                return;
            }
            if (memory.get(SLOT_LONG, at) == h1 && memory.get(SLOT_LONG, at + 8) == h2) {
                if (offset + 1 > stored) {
                    memory.set(SLOT_LONG, at + 16, offset + 1);
                }
                return;
            }
            slot = (slot + 1) & mask;
        }
        throw new IllegalStateException("key map has no free slot");
    }

    /** The last offset recorded for the key, or -1. */
    long get(MemorySegment key, long pos, int length) {
        hash(key, pos, length);
        long slot = h1 & mask;
        for (long probe = 0; probe < slots; probe++) {
            long at = slot * SLOT_BYTES;
            long stored = memory.get(SLOT_LONG, at + 16);
            if (stored == 0) {
                return -1;
            }
            if (memory.get(SLOT_LONG, at) == h1 && memory.get(SLOT_LONG, at + 8) == h2) {
                return stored - 1;
            }
            slot = (slot + 1) & mask;
        }
        return -1;
    }

    /** MurmurHash3 x64 128 (seed 0) of {@code length} bytes at {@code pos}, into {@link #h1} and {@link #h2}. */
    private void hash(MemorySegment data, long pos, int length) {
        long a = 0;
        long b = 0;
        int blocks = length >>> 4;
        for (int i = 0; i < blocks; i++) {
            long k1 = data.get(LE, pos + i * 16L);
            long k2 = data.get(LE, pos + i * 16L + 8);
            k1 *= C1;
            k1 = Long.rotateLeft(k1, 31);
            k1 *= C2;
            a ^= k1;
            a = Long.rotateLeft(a, 27);
            a += b;
            a = a * 5 + 0x52dce729;
            k2 *= C2;
            k2 = Long.rotateLeft(k2, 33);
            k2 *= C1;
            b ^= k2;
            b = Long.rotateLeft(b, 31);
            b += a;
            b = b * 5 + 0x38495ab5;
        }
        long tail = pos + blocks * 16L;
        int rest = length & 15;
        long k1 = 0;
        long k2 = 0;
        for (int i = rest - 1; i >= 8; i--) {
            k2 ^= (data.get(ValueLayout.JAVA_BYTE, tail + i) & 0xFFL) << ((i - 8) * 8);
        }
        for (int i = Math.min(rest, 8) - 1; i >= 0; i--) {
            k1 ^= (data.get(ValueLayout.JAVA_BYTE, tail + i) & 0xFFL) << (i * 8);
        }
        if (rest > 8) {
            k2 *= C2;
            k2 = Long.rotateLeft(k2, 33);
            k2 *= C1;
            b ^= k2;
        }
        if (rest > 0) {
            k1 *= C1;
            k1 = Long.rotateLeft(k1, 31);
            k1 *= C2;
            a ^= k1;
        }
        a ^= length;
        b ^= length;
        a += b;
        b += a;
        a = fmix(a);
        b = fmix(b);
        a += b;
        b += a;
        h1 = a;
        h2 = b;
    }

    private static long fmix(long k) {
        k ^= k >>> 33;
        k *= 0xff51afd7ed558ccdL;
        k ^= k >>> 33;
        k *= 0xc4ceb9fe1a85ec53L;
        k ^= k >>> 33;
        return k;
    }

    /** The digest of {@code data} (tests). */
    long[] digest(MemorySegment data) {
        hash(data, 0, (int) data.byteSize());
        return new long[] {h1, h2};
    }
}
