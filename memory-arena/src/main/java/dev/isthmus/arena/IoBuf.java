package dev.isthmus.arena;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.zip.CRC32C;

/**
 * A chain of fragments of arena memory that reads and writes as if it were contiguous and never is: large
 * data stays in pieces of at most {@link #MAX_FRAGMENT_BYTES}, slices and appends of other chains share
 * fragments by reference count instead of copying, and the chain turns into an iovec array for vectored
 * socket and O_DIRECT I/O (Seastar's {@code iobuf}, Redpanda's {@code iobuf}).
 *
 * <h2>Byte order</h2>
 * Multi-byte integers are big-endian (Kafka's wire order); varints are Kafka's: unsigned LEB128 and zigzag.
 *
 * <h2>Threads</h2>
 * An IoBuf object is used by one thread at a time. The fragments it references may be shared with chains on
 * other shards; the last {@link #release()} frees a fragment on its owner shard. Writing ({@code set*}) into
 * bytes that are shared is visible to every sharer: chains write only bytes they appended themselves. Appends
 * extend a tail fragment in place only when this chain allocated it, past every byte written so far: a receive
 * chain keeps filling its fragment while slices cut from it are held elsewhere (Raft, the batch cache), which
 * never see those new bytes. There is no copy-on-write.
 */
public final class IoBuf implements IoBufView, AutoCloseable {
    /** The largest fragment a chain allocates for appends. */
    public static final int MAX_FRAGMENT_BYTES = 128 * 1024;
    private static final int FIRST_FRAGMENT_BYTES = 4096;
    /** The smallest fragment a chain allocates between shared fragments (the arena's smallest size class). */
    private static final int SMALLEST_FRAGMENT_BYTES = 512;
    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);

    private final MemoryArena arena;
    private final Subsystem subsystem;
    private static final Fragment[] NO_FRAGMENTS = new Fragment[0];
    private static final long[] NO_LONGS = new long[0];
    /**
     * Fragment i is {@code frags[i]} from {@code starts[i]} for {@code lens[i]} bytes, for i below {@link #count}.
     * The arrays start empty (shared constants of length 0, never written) and are sized on the first insert to
     * one slot, then doubled: most chains on the produce path (request slices, a response, one batch) hold one
     * fragment, and a chain that never gets one allocates no arrays.
     */
    private Fragment[] frags = NO_FRAGMENTS;
    private long[] starts = NO_LONGS;
    private long[] lens = NO_LONGS;
    private int count;
    private long size;
    /** Bytes copied in since the last shared append (or the start), and in the run of copies before that one. */
    private long runBytes;
    private long lastRunBytes;
    /** Another chain's fragments were appended (shared) to this one. */
    private boolean shared;
    private boolean released;
    // Cache of the last random-access lookup.
    private int lastIndex;
    private long lastBase;

    private IoBuf(MemoryArena arena, Subsystem subsystem) {
        this.arena = arena;
        this.subsystem = subsystem;
    }

    /** An empty chain whose appends allocate from {@code arena} for {@code subsystem} (owner thread). */
    public static IoBuf empty(MemoryArena arena, Subsystem subsystem) {
        return new IoBuf(arena, subsystem);
    }

    /**
     * A chain of {@code size} uninitialised bytes in fragments of at most {@link #MAX_FRAGMENT_BYTES}, each
     * 4096-aligned when it is 4 KiB or more.
     *
     * @throws ArenaExhaustedException the budget or the arena cannot serve it (nothing stays allocated)
     */
    public static IoBuf allocate(MemoryArena arena, Subsystem subsystem, long size) {
        IoBuf b = new IoBuf(arena, subsystem);
        try {
            long left = size;
            while (left > 0) {
                int n = (int) Math.min(left, MAX_FRAGMENT_BYTES);
                Fragment f = b.newFragment(n);
                f.written = n;
                b.add(f, 0, n);
                left -= n;
            }
        } catch (RuntimeException e) {
            b.release();
            throw e;
        }
        return b;
    }

    /** A chain over foreign memory (heap or native) that is never freed by the chain. */
    public static IoBuf wrap(MemorySegment memory) {
        IoBuf b = new IoBuf(null, Subsystem.OTHER);
        Fragment f = new Fragment(null, -1, memory);
        f.written = memory.byteSize();
        if (memory.byteSize() > 0) {
            b.add(f, 0, memory.byteSize());
        }
        return b;
    }

    /** A chain over a copy of {@code bytes} on the heap (tests, small constants). */
    public static IoBuf copyOf(byte[] bytes) {
        return wrap(MemorySegment.ofArray(bytes.clone()));
    }

    // ------------------------------------------------------------------ shape

    @Override
    public long size() {
        return size;
    }

    public boolean isEmpty() {
        return size == 0;
    }

    @Override
    public int fragmentCount() {
        return count;
    }

    @Override
    public MemorySegment fragment(int i) {
        java.util.Objects.checkIndex(i, count);
        return frags[i].memory.asSlice(starts[i], lens[i]);
    }

    /** The arena appends allocate from (null for a wrapped chain). */
    public MemoryArena arena() {
        return arena;
    }

    private void add(Fragment f, long start, long len) {
        insert(count, f, start, len);
    }

    private void insert(int at, Fragment f, long start, long len) {
        if (count == frags.length) {
            int n = count == 0 ? 1 : count * 2;
            frags = Arrays.copyOf(frags, n);
            starts = Arrays.copyOf(starts, n);
            lens = Arrays.copyOf(lens, n);
        }
        System.arraycopy(frags, at, frags, at + 1, count - at);
        System.arraycopy(starts, at, starts, at + 1, count - at);
        System.arraycopy(lens, at, lens, at + 1, count - at);
        frags[at] = f;
        starts[at] = start;
        lens[at] = len;
        count++;
        size += len;
        lastIndex = 0;
        lastBase = 0;
    }

    private Fragment newFragment(int bytes) {
        checkLive();
        Fragment f;
        if (arena == null) {
            f = new Fragment(null, -1, MemorySegment.ofArray(new byte[bytes]));
        } else {
            long offset = arena.allocateOrThrow(bytes, subsystem);
            f = new Fragment(arena, offset, arena.segment(offset, MemoryArena.roundedSize(bytes)));
        }
        f.appender = this;
        return f;
    }

    // ------------------------------------------------------------------ append / prepend

    /** Appends a copy of {@code length} bytes of {@code src} at {@code offset}, filling the tail in place first. */
    public IoBuf append(MemorySegment src, long offset, long length) {
        return appendCopy(src, offset, length);
    }

    public IoBuf append(byte[] src, int offset, int length) {
        return appendCopy(src, offset, length);
    }

    /** {@code src} is a MemorySegment or a byte[] (a branch, so the heap path allocates no segment view). */
    private IoBuf appendCopy(Object src, long offset, long length) {
        checkLive();
        long done = 0;
        while (done < length) {
            long n = Math.min(tailRoomOrGrow(length - done), length - done);
            int last = count - 1;
            MemorySegment dst = frags[last].memory;
            long at = starts[last] + lens[last];
            if (src instanceof byte[] bytes) {
                MemorySegment.copy(bytes, (int) (offset + done), dst, ValueLayout.JAVA_BYTE, at, (int) n);
            } else {
                MemorySegment.copy((MemorySegment) src, offset + done, dst, at, n);
            }
            grow(n);
            done += n;
        }
        return this;
    }

    public IoBuf append(byte[] src) {
        return append(src, 0, src.length);
    }

    /** Appends {@code other}'s bytes by sharing its fragments (no copy); {@code other} stays valid. */
    public IoBuf append(IoBufView other) {
        checkLive();
        IoBuf o = (IoBuf) other;
        o.checkLive();
        for (int i = 0; i < o.count; i++) {
            o.frags[i].retain();
            add(o.frags[i], o.starts[i], o.lens[i]);
        }
        if (o.count > 0) {
            shared = true;
            lastRunBytes = runBytes;
            runBytes = 0;
        }
        return this;
    }

    /** Prepends {@code other}'s bytes by sharing its fragments (no copy); {@code other} stays valid. */
    public IoBuf prepend(IoBufView other) {
        checkLive();
        IoBuf o = (IoBuf) other;
        o.checkLive();
        for (int i = o.count - 1; i >= 0; i--) {
            o.frags[i].retain();
            insert(0, o.frags[i], o.starts[i], o.lens[i]);
        }
        return this;
    }

    /**
     * Free bytes after the tail that this chain may write in place: the tail fragment must be one this chain allocated
     * for its appends and end where its written bytes end. Other chains may share its written bytes (slices cut from a
     * receive chain, held by Raft or the cache): appends write only past them.
     */
    private long tailRoom() {
        if (count == 0) {
            return 0;
        }
        int last = count - 1;
        Fragment f = frags[last];
        long end = starts[last] + lens[last];
        if (f.appender != this || f.written != end) {
            return 0;
        }
        return f.memory.byteSize() - end;
    }

    public IoBuf appendByte(int v) {
        ensureTail(1);
        int last = count - 1;
        frags[last].memory.set(ValueLayout.JAVA_BYTE, starts[last] + lens[last], (byte) v);
        grow(1);
        return this;
    }

    public IoBuf appendShort(int v) {
        if (ensureTail(2)) {
            int last = count - 1;
            frags[last].memory.set(SHORT, starts[last] + lens[last], (short) v);
            grow(2);
            return this;
        }
        return appendByte(v >>> 8).appendByte(v);
    }

    public IoBuf appendInt(int v) {
        if (ensureTail(4)) {
            int last = count - 1;
            frags[last].memory.set(INT, starts[last] + lens[last], v);
            grow(4);
            return this;
        }
        return appendShort(v >>> 16).appendShort(v);
    }

    public IoBuf appendLong(long v) {
        if (ensureTail(8)) {
            int last = count - 1;
            frags[last].memory.set(LONG, starts[last] + lens[last], v);
            grow(8);
            return this;
        }
        return appendInt((int) (v >>> 32)).appendInt((int) v);
    }

    /** Kafka's unsigned varint (LEB128). */
    public IoBuf appendUnsignedVarint(int v) {
        while ((v & ~0x7F) != 0) {
            appendByte((v & 0x7F) | 0x80);
            v >>>= 7;
        }
        return appendByte(v);
    }

    /** Kafka's zigzag varint. */
    public IoBuf appendVarint(int v) {
        return appendUnsignedVarint((v << 1) ^ (v >> 31));
    }

    /** Kafka's zigzag varlong. */
    public IoBuf appendVarlong(long v) {
        long z = (v << 1) ^ (v >> 63);
        while ((z & ~0x7FL) != 0) {
            appendByte((int) ((z & 0x7F) | 0x80));
            z >>>= 7;
        }
        return appendByte((int) z);
    }

    /**
     * Appends {@code n} bytes to fill in later (a length prefix, a CRC) and returns their position, for
     * {@link #setInt} and friends.
     */
    public long reserve(int n) {
        long pos = size;
        for (int i = 0; i < n; i++) {
            appendByte(0);
        }
        return pos;
    }

    /** Makes sure there is a tail with room; returns true when {@code n} bytes fit contiguously in it. */
    private boolean ensureTail(int n) {
        checkLive();
        return tailRoomOrGrow(n) >= n;
    }

    /**
     * Room after the tail this chain may fill in place; when there is none, a new fragment sized for
     * {@code wanted} bytes becomes the tail. A chain of copies grows with itself (4 KiB to
     * {@link #MAX_FRAGMENT_BYTES}); between shared fragments (a Fetch response: a few dozen bytes of fields, then a
     * partition's batches shared from the cache, and so on for every partition), a new fragment is sized by the
     * copies around it, from 512 bytes, not by the shared bytes: sized by the chain, each of a thousand partitions
     * would take up to 128 KiB for its few bytes of fields.
     */
    private long tailRoomOrGrow(long wanted) {
        long room = tailRoom();
        if (room == 0) {
            long basis = !shared ? Math.max(FIRST_FRAGMENT_BYTES, size)
                : Math.max(SMALLEST_FRAGMENT_BYTES, Math.max(runBytes, lastRunBytes));
            long bytes = Math.min(MAX_FRAGMENT_BYTES, Math.max(wanted, basis));
            add(newFragment((int) bytes), 0, 0);
            room = tailRoom();
        }
        return room;
    }

    private void grow(long n) {
        int last = count - 1;
        lens[last] += n;
        frags[last].written = starts[last] + lens[last];
        size += n;
        runBytes += n;
    }

    // ------------------------------------------------------------------ slice / trim / release

    @Override
    public IoBuf share(long pos, long length) {
        checkLive();
        checkRange(pos, length);
        IoBuf b = new IoBuf(arena, subsystem);
        long base = 0;
        for (int i = 0; i < count && length > 0; i++) {
            long l = lens[i];
            if (pos < base + l) {
                long from = Math.max(pos, base) - base;
                long n = Math.min(l - from, length);
                frags[i].retain();
                b.add(frags[i], starts[i] + from, n);
                length -= n;
                pos += n;
            }
            base += l;
        }
        return b;
    }

    /** A zero-copy copy of the whole chain. */
    public IoBuf share() {
        return share(0, size);
    }

    /** Drops the first {@code n} bytes, releasing fragments that fall out entirely. */
    public void trimFront(long n) {
        checkLive();
        checkRange(0, n);
        int drop = 0;
        while (n > 0) {
            if (lens[drop] <= n) {
                n -= lens[drop];
                size -= lens[drop];
                frags[drop].release();
                frags[drop] = null;
                drop++;
            } else {
                starts[drop] += n;
                lens[drop] -= n;
                size -= n;
                n = 0;
            }
        }
        if (drop > 0) {
            System.arraycopy(frags, drop, frags, 0, count - drop);
            System.arraycopy(starts, drop, starts, 0, count - drop);
            System.arraycopy(lens, drop, lens, 0, count - drop);
            Arrays.fill(frags, count - drop, count, null);
            count -= drop;
        }
        lastIndex = 0;
        lastBase = 0;
    }

    /** Drops the last {@code n} bytes, releasing fragments that fall out entirely. */
    public void trimBack(long n) {
        checkLive();
        checkRange(0, n);
        while (n > 0) {
            int last = count - 1;
            if (lens[last] <= n) {
                n -= lens[last];
                size -= lens[last];
                frags[last].release();
                frags[last] = null;
                count--;
            } else {
                lens[last] -= n;
                size -= n;
                n = 0;
            }
        }
        lastIndex = 0;
        lastBase = 0;
    }

    /** Releases every fragment reference; the chain is empty and unusable afterwards. Idempotent. */
    public void release() {
        if (released) {
            return;
        }
        released = true;
        for (int i = 0; i < count; i++) {
            frags[i].release();
            frags[i] = null;
        }
        count = 0;
        size = 0;
    }

    @Override
    public void close() {
        release();
    }

    public boolean isReleased() {
        return released;
    }

    // ------------------------------------------------------------------ random access

    /** Index of the fragment holding {@code pos}; sets {@link #lastBase} to that fragment's first position. */
    private int locate(long pos) {
        int i;
        long base;
        if (pos >= lastBase && lastIndex < count) {
            i = lastIndex;
            base = lastBase;
        } else {
            i = 0;
            base = 0;
        }
        while (pos >= base + lens[i]) {
            base += lens[i];
            i++;
        }
        lastIndex = i;
        lastBase = base;
        return i;
    }

    private void checkRange(long pos, long length) {
        checkLive();
        if (pos < 0 || length < 0 || pos + length > size) {
            throw new IndexOutOfBoundsException("range [" + pos + ", " + (pos + length) + ") outside a chain of "
                + size + " bytes");
        }
    }

    private void checkLive() {
        if (released) {
            throw new IllegalStateException("IoBuf used after release");
        }
    }

    @Override
    public byte getByte(long pos) {
        checkRange(pos, 1);
        int i = locate(pos);
        return frags[i].memory.get(ValueLayout.JAVA_BYTE, starts[i] + pos - lastBase);
    }

    @Override
    public short getShort(long pos) {
        checkRange(pos, 2);
        int i = locate(pos);
        long within = pos - lastBase;
        if (within + 2 <= lens[i]) {
            return frags[i].memory.get(SHORT, starts[i] + within);
        }
        return (short) (((getByte(pos) & 0xFF) << 8) | (getByte(pos + 1) & 0xFF));
    }

    @Override
    public int getInt(long pos) {
        checkRange(pos, 4);
        int i = locate(pos);
        long within = pos - lastBase;
        if (within + 4 <= lens[i]) {
            return frags[i].memory.get(INT, starts[i] + within);
        }
        return ((getShort(pos) & 0xFFFF) << 16) | (getShort(pos + 2) & 0xFFFF);
    }

    @Override
    public long getLong(long pos) {
        checkRange(pos, 8);
        int i = locate(pos);
        long within = pos - lastBase;
        if (within + 8 <= lens[i]) {
            return frags[i].memory.get(LONG, starts[i] + within);
        }
        return ((long) getInt(pos) << 32) | (getInt(pos + 4) & 0xFFFFFFFFL);
    }

    public void setByte(long pos, int v) {
        checkRange(pos, 1);
        int i = locate(pos);
        frags[i].memory.set(ValueLayout.JAVA_BYTE, starts[i] + pos - lastBase, (byte) v);
    }

    public void setShort(long pos, int v) {
        setByte(pos, v >>> 8);
        setByte(pos + 1, v);
    }

    public void setInt(long pos, int v) {
        checkRange(pos, 4);
        int i = locate(pos);
        long within = pos - lastBase;
        if (within + 4 <= lens[i]) {
            frags[i].memory.set(INT, starts[i] + within, v);
            return;
        }
        setShort(pos, v >>> 16);
        setShort(pos + 2, v);
    }

    public void setLong(long pos, long v) {
        setInt(pos, (int) (v >>> 32));
        setInt(pos + 4, (int) v);
    }

    @Override
    public void copyTo(long pos, MemorySegment dst, long dstOffset, long length) {
        checkRange(pos, length);
        while (length > 0) {
            int i = locate(pos);
            long within = pos - lastBase;
            long n = Math.min(lens[i] - within, length);
            MemorySegment.copy(frags[i].memory, starts[i] + within, dst, dstOffset, n);
            pos += n;
            dstOffset += n;
            length -= n;
        }
    }

    @Override
    public void copyTo(long pos, byte[] dst, int dstOffset, int length) {
        copyTo(pos, MemorySegment.ofArray(dst), dstOffset, length);
    }

    /** A heap copy of the whole chain (tests and small values only: this is the linearisation IoBuf avoids). */
    public byte[] toByteArray() {
        if (size > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("chain of " + size + " bytes does not fit a byte[]");
        }
        byte[] out = new byte[(int) size];
        copyTo(0, out, 0, out.length);
        return out;
    }

    @Override
    public int crc32c(long pos, long length) {
        checkRange(pos, length);
        CRC32C crc = new CRC32C();
        while (length > 0) {
            int i = locate(pos);
            long within = pos - lastBase;
            long n = Math.min(lens[i] - within, length);
            crc.update(frags[i].memory.asSlice(starts[i] + within, n).asByteBuffer());
            pos += n;
            length -= n;
        }
        return (int) crc.getValue();
    }

    /**
     * Writes one {@code struct iovec} (16 bytes: base, length) per fragment into {@code iovecs}, at most
     * {@code max} of them, and returns how many it wrote (for writev/sendmsg and O_DIRECT writes; only native
     * fragments have addresses: a heap-wrapped fragment throws).
     */
    public int fillIovecs(MemorySegment iovecs, int max) {
        int n = Math.min(max, count);
        for (int i = 0; i < n; i++) {
            MemorySegment m = frags[i].memory;
            if (!m.isNative()) {
                throw new IllegalStateException("fragment " + i + " is heap memory and has no address for an iovec");
            }
            iovecs.set(ValueLayout.JAVA_LONG, 16L * i, m.address() + starts[i]);
            iovecs.set(ValueLayout.JAVA_LONG, 16L * i + 8, lens[i]);
        }
        return n;
    }

    @Override
    public IoBufReader reader() {
        checkLive();
        return new IoBufReader(this);
    }

    // Package access for the reader's cursor.
    Fragment frag(int i) {
        return frags[i];
    }

    long start(int i) {
        return starts[i];
    }

    long len(int i) {
        return lens[i];
    }

    @Override
    public String toString() {
        return "IoBuf{" + size + " bytes in " + count + " fragments" + (released ? ", released" : "") + "}";
    }
}
