package dev.isthmus.gateway.protocol;

import dev.isthmus.arena.IoBuf;

/** A {@link ByteSlice} that is a zero-copy share of arena memory; release it when the message is done. */
public record IoBufSlice(IoBuf buf) implements ByteSlice, AutoCloseable {
    @Override
    public int length() {
        return (int) buf.size();
    }

    @Override
    public void copyTo(int srcOffset, byte[] dst, int dstOffset, int length) {
        buf.copyTo(srcOffset, dst, dstOffset, length);
    }

    @Override
    public void close() {
        buf.release();
    }
}
