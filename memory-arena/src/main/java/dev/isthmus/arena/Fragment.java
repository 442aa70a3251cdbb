package dev.isthmus.arena;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * One piece of memory in {@link IoBuf} chains: a block of a shard's {@link MemoryArena} (or wrapped foreign
 * memory) with a reference count. Chains that share it ({@link IoBuf#share}, {@link IoBuf#append(IoBuf)})
 * each hold a reference; the last release frees the block — on the owner shard: a release on another thread
 * travels back to the owner (see {@link MemoryArena#free}). The count is atomic because shared fragments may
 * be released from several shards; everything else is immutable or owner-only.
 */
public final class Fragment {
    private static final VarHandle REFS;

    static {
        try {
            REFS = MethodHandles.lookup().findVarHandle(Fragment.class, "refs", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    final MemoryArena arena;
    final long offset;
    final MemorySegment memory;
    /** Bytes written from the start: the {@link #appender} extends the fragment in place from here, never below. */
    long written;
    /**
     * The chain that allocated this fragment for its appends, the only one that may write past {@link #written} (null
     * for wrapped memory). Other chains sharing the fragment hold bytes below {@code written}, which appends never
     * touch: a receive chain keeps filling its tail while requests it cut from it are still held (by Raft, by the
     * batch cache) instead of starting a new fragment each time. Owner thread of that chain only.
     */
    IoBuf appender;
    @SuppressWarnings("unused")
    private volatile int refs = 1;

    Fragment(MemoryArena arena, long offset, MemorySegment memory) {
        this.arena = arena;
        this.offset = offset;
        this.memory = memory;
    }

    /** The fragment's whole memory. */
    public MemorySegment memory() {
        return memory;
    }

    public long capacity() {
        return memory.byteSize();
    }

    /** The arena it belongs to, or null for wrapped memory. */
    public MemoryArena arena() {
        return arena;
    }

    int refCount() {
        return (int) REFS.getVolatile(this);
    }

    void retain() {
        int before = (int) REFS.getAndAdd(this, 1);
        if (before <= 0) {
            REFS.getAndAdd(this, -1);
            throw new IllegalStateException("retain of a released fragment (use after free)");
        }
    }

    void release() {
        int after = (int) REFS.getAndAdd(this, -1) - 1;
        if (after == 0) {
            if (arena != null) {
                arena.free(offset);
            }
        } else if (after < 0) {
            throw new IllegalStateException("fragment released more often than retained (double free)");
        }
    }
}
