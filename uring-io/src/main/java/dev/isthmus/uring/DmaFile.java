package dev.isthmus.uring;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * A file opened for direct I/O (O_DIRECT): positional reads and writes that bypass the page cache, many in
 * flight at once and completing in any order, plus preallocation and fdatasync.
 *
 * <p>Every position, length and buffer address must be a multiple of {@link #alignment()} (taken from
 * statx's STATX_DIOALIGN, 4096 when the file system does not say). A misaligned request is rejected with
 * an {@link IllegalArgumentException} naming the file and the offending value before it reaches the
 * kernel. Buffers must stay untouched until their completion.
 *
 * <p>Owner: the engine's thread. Completions carry bytes transferred (always the full length for writes;
 * for reads fewer only at end of file) or -errno.
 */
public interface DmaFile extends AutoCloseable {

    Path path();

    /** Alignment of positions, lengths and buffer addresses, in bytes (a power of two). */
    int alignment();

    /** Queues a write of all of {@code buffer} at {@code position}. Returns an operation id or -EBUSY. */
    long write(MemorySegment buffer, long position, CompletionHandler handler, long attachment);

    /**
     * Queues a write of {@code length} bytes of {@code region} from {@code offset} at {@code position}: the same as
     * {@code write(region.asSlice(offset, length), ...)}, without making the slice where the engine can avoid it
     * (a log rewriting the end of a partly written chunk does this on every flush).
     */
    default long write(MemorySegment region, long offset, long length, long position, CompletionHandler handler,
                       long attachment) {
        return write(region.asSlice(offset, length), position, handler, attachment);
    }

    /** Queues a read filling {@code buffer} from {@code position}. Returns an operation id or -EBUSY. */
    long read(MemorySegment buffer, long position, CompletionHandler handler, long attachment);

    /**
     * Queues fallocate(2) of [position, position + length): with {@code keepSize} the file's size does not
     * change (the blocks are reserved ahead of the writer), otherwise the file grows to cover the range.
     */
    long allocate(long position, long length, boolean keepSize, CompletionHandler handler, long attachment);

    /** Queues fdatasync(2): completes when every write completed before it is durable. */
    long datasync(CompletionHandler handler, long attachment);

    /** The file's size in bytes (a short synchronous statx). */
    long size();

    /** Sets the file's size (ftruncate; synchronous, rare: segment truncation and close). */
    void truncate(long sizeBytes);

    /** Closes the file. Operations still in flight must have completed. */
    @Override
    void close();

    /** Rejects a misaligned request with a message naming the file and the value. */
    static void checkAligned(DmaFile f, long position, long length, long address) {
        int a = f.alignment();
        if ((position & (a - 1)) != 0) {
            throw new IllegalArgumentException("misaligned direct I/O on " + f.path() + ": position " + position
                + " is not a multiple of " + a);
        }
        if ((length & (a - 1)) != 0) {
            throw new IllegalArgumentException("misaligned direct I/O on " + f.path() + ": length " + length
                + " is not a multiple of " + a);
        }
        if ((address & (a - 1)) != 0) {
            throw new IllegalArgumentException("misaligned direct I/O on " + f.path() + ": buffer address 0x"
                + Long.toHexString(address) + " is not a multiple of " + a);
        }
    }
}
