package dev.isthmus.uring;

import dev.isthmus.ffi.ErrnoException;
import dev.isthmus.ffi.Libc;
import dev.isthmus.ffi.gen.uring.IoUring;
import dev.isthmus.ffi.gen.uring.io_uring_buf_reg;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

/**
 * A provided-buffer ring (IORING_REGISTER_PBUF_RING) for multishot receives: {@code count} buffers of
 * {@code bufferSize} bytes that the kernel picks from as data arrives, so a shard with thousands of idle
 * connections pins no per-connection receive buffer.
 * <pre>
 *  ring (count x struct io_uring_buf, 16 bytes each; the u16 tail overlays bytes 14..15 of entry 0)
 *  +------------------+-----+-----+-------+      buffers: one region, buffer i at i x bufferSize
 *  | addr | len | bid | ... | ... | tail  |
 *  +------------------+-----+-----+-------+
 * </pre>
 * A receive completion names the buffer id ({@code flags >>> Ring.CQE_BUFFER_SHIFT}); the consumer reads
 * {@link #address(int)} .. + result, then {@link #recycle(int)}s it. When every buffer is out, multishot
 * receives end with -ENOBUFS: the owner recycles and re-arms (that is the back-pressure).
 *
 * <p>Owner: the ring's thread.
 */
public final class BufferRing implements AutoCloseable {
    private static final VarHandle SHORT = ValueLayout.JAVA_SHORT.varHandle();
    private static final long TAIL_OFFSET = 14;
    private static final int ENTRY_BYTES = 16;

    private final Ring ring;
    private final int groupId;
    private final int count;
    private final int bufferSize;
    private final int mask;
    private final MemorySegment entries;
    private final MemorySegment buffers;
    private final boolean ownsBuffers;
    private short tail;
    private int outstanding;
    private boolean closed;

    private BufferRing(Ring ring, int groupId, int count, int bufferSize, MemorySegment buffers, boolean owns) {
        this.ring = ring;
        this.groupId = groupId;
        this.count = count;
        this.bufferSize = bufferSize;
        this.mask = count - 1;
        this.buffers = buffers;
        this.ownsBuffers = owns;
        long ringBytes = Math.max((long) count * ENTRY_BYTES, Libc.PAGE_SIZE);
        this.entries = Libc.mmapAnonymous(ringBytes, true);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment reg = a.allocate(io_uring_buf_reg.layout());
            io_uring_buf_reg.ring_addr(reg, entries.address());
            io_uring_buf_reg.ring_entries(reg, count);
            io_uring_buf_reg.bgid(reg, (short) groupId);
            int r = Libc.ioUringRegister(ring.ringFd(), IoUring.IORING_REGISTER_PBUF_RING(), reg, 1);
            if (r < 0) {
                Libc.munmap(entries);
                if (owns) {
                    Libc.munmap(buffers);
                }
                throw new ErrnoException("io_uring_register(PBUF_RING, group " + groupId + ")", -r);
            }
        }
        for (int bid = 0; bid < count; bid++) {
            put(bid);
        }
        SHORT.setRelease(entries, TAIL_OFFSET, tail);
    }

    /**
     * Registers {@code count} (a power of two, at most 32768) buffers of {@code bufferSize} bytes as buffer
     * group {@code groupId} of {@code ring}, in memory taken from {@code backing} (at least count x bufferSize
     * bytes, owned by the caller and kept alive until {@link #close()}).
     */
    public static BufferRing create(Ring ring, int groupId, int count, int bufferSize, MemorySegment backing) {
        validate(groupId, count, bufferSize);
        if (backing.byteSize() < (long) count * bufferSize) {
            throw new IllegalArgumentException("backing memory of " + backing.byteSize() + " bytes is smaller than "
                + count + " x " + bufferSize);
        }
        return new BufferRing(ring, groupId, count, bufferSize, backing, false);
    }

    /** As {@link #create(Ring, int, int, int, MemorySegment)}, with its own mmapped memory. */
    public static BufferRing create(Ring ring, int groupId, int count, int bufferSize) {
        validate(groupId, count, bufferSize);
        return new BufferRing(ring, groupId, count, bufferSize, Libc.mmapAnonymous((long) count * bufferSize, true),
            true);
    }

    private static void validate(int groupId, int count, int bufferSize) {
        if (count < 1 || count > 32768 || Integer.bitCount(count) != 1) {
            throw new IllegalArgumentException("buffer count must be a power of two in [1, 32768], got " + count);
        }
        if (bufferSize < 1) {
            throw new IllegalArgumentException("buffer size must be positive, got " + bufferSize);
        }
        if (groupId < 0 || groupId > 0xFFFF) {
            throw new IllegalArgumentException("buffer group id must fit 16 bits, got " + groupId);
        }
    }

    private void put(int bid) {
        long e = (long) ((tail & 0xFFFF) & mask) * ENTRY_BYTES;
        entries.set(ValueLayout.JAVA_LONG, e, buffers.address() + (long) bid * bufferSize);
        entries.set(ValueLayout.JAVA_INT, e + 8, bufferSize);
        entries.set(ValueLayout.JAVA_SHORT, e + 12, (short) bid);
        tail++;
    }

    /** The buffer id carried by a receive completion's flags, or -1 if it used no provided buffer. */
    public static int bufferId(int cqeFlags) {
        return (cqeFlags & Ring.CQE_F_BUFFER) != 0 ? cqeFlags >>> Ring.CQE_BUFFER_SHIFT : -1;
    }

    /** Marks buffer {@code bid} as handed to the consumer (for the outstanding count). */
    public void taken(int bid) {
        Verify.that(bid >= 0 && bid < count, "buffer id %d out of range", bid);
        outstanding++;
    }

    /** Gives buffer {@code bid} back to the kernel. */
    public void recycle(int bid) {
        Verify.that(bid >= 0 && bid < count, "buffer id %d out of range", bid);
        put(bid);
        if (outstanding > 0) {
            outstanding--;
        }
        SHORT.setRelease(entries, TAIL_OFFSET, tail);
    }

    /** The address of buffer {@code bid}. */
    public long address(int bid) {
        return buffers.address() + (long) bid * bufferSize;
    }

    /** The memory of all buffers; buffer {@code bid} starts at {@code bid * bufferSize()}. */
    public MemorySegment memory() {
        return buffers;
    }

    public int groupId() {
        return groupId;
    }

    public int bufferSize() {
        return bufferSize;
    }

    public int count() {
        return count;
    }

    /** Buffers handed to consumers and not yet recycled. */
    public int outstanding() {
        return outstanding;
    }

    /** Unregisters the group and unmaps its ring (and its buffers when it owns them). */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment reg = a.allocate(io_uring_buf_reg.layout());
            io_uring_buf_reg.bgid(reg, (short) groupId);
            Libc.ioUringRegister(ring.ringFd(), IoUring.IORING_UNREGISTER_PBUF_RING(), reg, 1);
        }
        Libc.munmap(entries);
        if (ownsBuffers) {
            Libc.munmap(buffers);
        }
    }
}
