package dev.isthmus.arena;

import java.lang.foreign.MemorySegment;

/**
 * A read-only view of a byte chain, as the Kafka codec and the log engine consume it: absolute reads across
 * fragment boundaries, zero-copy slices, and the fragments themselves for vectored I/O. Positions are from
 * the view's start; reads outside {@code [0, size())} throw {@link IndexOutOfBoundsException}.
 */
public interface IoBufView {
    long size();

    byte getByte(long pos);

    short getShort(long pos);

    int getInt(long pos);

    long getLong(long pos);

    /** Copies {@code length} bytes at {@code pos} to {@code dst} at {@code dstOffset}. */
    void copyTo(long pos, MemorySegment dst, long dstOffset, long length);

    /** Copies {@code length} bytes at {@code pos} to {@code dst} at {@code dstOffset}. */
    void copyTo(long pos, byte[] dst, int dstOffset, int length);

    /** CRC-32C (Castagnoli, Kafka's batch checksum) of {@code length} bytes at {@code pos}. */
    int crc32c(long pos, long length);

    /** A zero-copy chain of {@code length} bytes at {@code pos}; the caller releases it. */
    IoBuf share(long pos, long length);

    /** Number of fragments. */
    int fragmentCount();

    /** The bytes of fragment {@code i} (a view; no copy). */
    MemorySegment fragment(int i);

    /** A sequential reader from position 0. */
    IoBufReader reader();
}
