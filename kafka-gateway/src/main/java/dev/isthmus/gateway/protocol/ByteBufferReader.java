package dev.isthmus.gateway.protocol;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** A {@link ProtocolReader} over a ByteBuffer's remaining bytes; slices share the buffer. */
public final class ByteBufferReader implements ProtocolReader {
    private final ByteBuffer buf;

    public ByteBufferReader(ByteBuffer buf) {
        this.buf = buf;
    }

    private void need(int n) {
        if (buf.remaining() < n) {
            throw new ProtocolException("read of " + n + " bytes with only " + buf.remaining() + " left in the frame");
        }
    }

    @Override
    public byte readByte() {
        need(1);
        return buf.get();
    }

    @Override
    public short readShort() {
        need(2);
        return buf.getShort();
    }

    @Override
    public int readInt() {
        need(4);
        return buf.getInt();
    }

    @Override
    public long readLong() {
        need(8);
        return buf.getLong();
    }

    @Override
    public int readUnsignedVarint() {
        int value = 0;
        for (int shift = 0; shift < 35; shift += 7) {
            byte b = readByte();
            value |= (b & 0x7F) << shift;
            if ((b & 0x80) == 0) {
                return value;
            }
        }
        throw new ProtocolException("unsigned varint longer than 5 bytes");
    }

    @Override
    public String readUtf8(int length) {
        need(length);
        String s = new String(buf.array(), buf.arrayOffset() + buf.position(), length, StandardCharsets.UTF_8);
        buf.position(buf.position() + length);
        return s;
    }

    @Override
    public ByteSlice readSlice(int length) {
        need(length);
        ByteBuffer s = buf.slice(buf.position(), length);
        buf.position(buf.position() + length);
        return new ByteSlice.BufferSlice(s);
    }

    @Override
    public byte[] readBytes(int length) {
        need(length);
        byte[] b = new byte[length];
        try {
            buf.get(b);
        } catch (BufferUnderflowException e) {
            throw new ProtocolException("frame too short");
        }
        return b;
    }

    @Override
    public int remaining() {
        return buf.remaining();
    }
}
