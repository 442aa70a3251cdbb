package dev.isthmus.gateway.protocol;

import dev.isthmus.arena.IoBuf;
import dev.isthmus.arena.IoBufReader;

import java.nio.charset.StandardCharsets;

/**
 * A {@link ProtocolReader} over an arena {@link IoBuf} frame (the server path): values that straddle
 * fragments are read in place, {@code bytes}/{@code records} fields become {@link IoBufSlice}s that share
 * the frame's fragments (no copy; the slice holds its own reference until released).
 */
public final class IoBufProtocolReader implements ProtocolReader {
    private final IoBuf frame;
    private final IoBufReader r;

    public IoBufProtocolReader(IoBuf frame) {
        this.frame = frame;
        this.r = frame.reader();
    }

    private void need(long n) {
        if (r.remaining() < n) {
            throw new ProtocolException("read of " + n + " bytes with only " + r.remaining() + " left in the frame");
        }
    }

    @Override
    public byte readByte() {
        need(1);
        return r.readByte();
    }

    @Override
    public short readShort() {
        need(2);
        return r.readShort();
    }

    @Override
    public int readInt() {
        need(4);
        return r.readInt();
    }

    @Override
    public long readLong() {
        need(8);
        return r.readLong();
    }

    @Override
    public int readUnsignedVarint() {
        try {
            need(1);
            return r.readUnsignedVarint();
        } catch (IllegalArgumentException | IndexOutOfBoundsException e) {
            throw new ProtocolException("bad unsigned varint: " + e.getMessage());
        }
    }

    @Override
    public String readUtf8(int length) {
        need(length);
        byte[] b = new byte[length];
        r.readBytes(b, 0, length);
        return new String(b, StandardCharsets.UTF_8);
    }

    @Override
    public ByteSlice readSlice(int length) {
        need(length);
        return new IoBufSlice(r.readSlice(length));
    }

    @Override
    public byte[] readBytes(int length) {
        need(length);
        byte[] b = new byte[length];
        r.readBytes(b, 0, length);
        return b;
    }

    @Override
    public int remaining() {
        return (int) Math.min(Integer.MAX_VALUE, r.remaining());
    }

    /** The frame being read. */
    public IoBuf frame() {
        return frame;
    }
}
