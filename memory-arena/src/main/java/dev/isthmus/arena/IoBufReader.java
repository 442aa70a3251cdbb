package dev.isthmus.arena;

import java.lang.foreign.ValueLayout;

/**
 * A sequential reader over an {@link IoBuf} with a cursor (fragment, offset), so each read is a bounds check
 * and a memory access except when a value straddles two fragments. Reads past the end throw
 * {@link IndexOutOfBoundsException} (a decoder maps it to Kafka's CORRUPT_MESSAGE / INVALID_REQUEST). Used by
 * one thread; the chain must not change shape while read.
 */
public final class IoBufReader {
    private final IoBuf buf;
    private int frag;
    private long within;
    private long position;

    IoBufReader(IoBuf buf) {
        this.buf = buf;
    }

    public long position() {
        return position;
    }

    public long remaining() {
        return buf.size() - position;
    }

    public boolean hasRemaining() {
        return position < buf.size();
    }

    /** Moves to absolute {@code pos}. */
    public IoBufReader position(long pos) {
        if (pos < 0 || pos > buf.size()) {
            throw new IndexOutOfBoundsException("position " + pos + " outside [0, " + buf.size() + "]");
        }
        position = pos;
        frag = 0;
        within = pos;
        normalize();
        return this;
    }

    public IoBufReader skip(long n) {
        return position(position + n);
    }

    private void normalize() {
        while (frag < buf.fragmentCount() && within >= buf.len(frag)) {
            within -= buf.len(frag);
            frag++;
        }
    }

    private void need(long n) {
        if (position + n > buf.size()) {
            throw new IndexOutOfBoundsException("read of " + n + " bytes at " + position + " past the end of "
                + buf.size() + " bytes");
        }
    }

    private void advance(long n) {
        position += n;
        within += n;
        normalize();
    }

    public byte readByte() {
        need(1);
        byte b = buf.frag(frag).memory.get(ValueLayout.JAVA_BYTE, buf.start(frag) + within);
        advance(1);
        return b;
    }

    public short readShort() {
        need(2);
        short v = buf.getShort(position);
        advance(2);
        return v;
    }

    public int readInt() {
        need(4);
        int v = buf.getInt(position);
        advance(4);
        return v;
    }

    public long readLong() {
        need(8);
        long v = buf.getLong(position);
        advance(8);
        return v;
    }

    /** Kafka's unsigned varint; throws IllegalArgumentException when it runs over 5 bytes. */
    public int readUnsignedVarint() {
        int value = 0;
        for (int shift = 0; shift < 35; shift += 7) {
            int b = readByte();
            value |= (b & 0x7F) << shift;
            if ((b & 0x80) == 0) {
                return value;
            }
        }
        throw new IllegalArgumentException("varint longer than 5 bytes at " + (position - 5));
    }

    /** Kafka's zigzag varint. */
    public int readVarint() {
        int raw = readUnsignedVarint();
        return (raw >>> 1) ^ -(raw & 1);
    }

    /** Kafka's zigzag varlong; throws IllegalArgumentException when it runs over 10 bytes. */
    public long readVarlong() {
        long value = 0;
        for (int shift = 0; shift < 70; shift += 7) {
            int b = readByte();
            value |= (long) (b & 0x7F) << shift;
            if ((b & 0x80) == 0) {
                return (value >>> 1) ^ -(value & 1);
            }
        }
        throw new IllegalArgumentException("varlong longer than 10 bytes at " + (position - 10));
    }

    public void readBytes(byte[] dst, int offset, int length) {
        need(length);
        buf.copyTo(position, dst, offset, length);
        advance(length);
    }

    /** The next {@code length} bytes as a zero-copy chain (released by the caller). */
    public IoBuf readSlice(long length) {
        need(length);
        IoBuf s = buf.share(position, length);
        advance(length);
        return s;
    }
}
