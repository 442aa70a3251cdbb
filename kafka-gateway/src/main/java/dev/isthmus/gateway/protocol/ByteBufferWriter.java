package dev.isthmus.gateway.protocol;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** A {@link ProtocolWriter} into a heap ByteBuffer sized with {@code size(version)}; slices are copied. */
public final class ByteBufferWriter implements ProtocolWriter {
    private final ByteBuffer buf;

    public ByteBufferWriter(ByteBuffer buf) {
        this.buf = buf;
    }

    public ByteBuffer buffer() {
        return buf;
    }

    @Override
    public void writeByte(byte v) {
        buf.put(v);
    }

    @Override
    public void writeShort(short v) {
        buf.putShort(v);
    }

    @Override
    public void writeInt(int v) {
        buf.putInt(v);
    }

    @Override
    public void writeLong(long v) {
        buf.putLong(v);
    }

    @Override
    public void writeUnsignedVarint(int v) {
        while ((v & ~0x7F) != 0) {
            buf.put((byte) ((v & 0x7F) | 0x80));
            v >>>= 7;
        }
        buf.put((byte) v);
    }

    @Override
    public void writeUtf8(String s, int utf8Length) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        if (b.length != utf8Length) {
            throw new IllegalStateException("UTF-8 length mismatch for a string: " + b.length + " != " + utf8Length);
        }
        buf.put(b);
    }

    @Override
    public void writeSlice(ByteSlice slice) {
        int n = slice.length();
        byte[] tmp = new byte[n];
        slice.copyTo(0, tmp, 0, n);
        buf.put(tmp);
    }

    @Override
    public void writeBytes(byte[] bytes) {
        buf.put(bytes);
    }

    /** Encodes {@code m} in {@code version} into a new buffer of exactly its size. */
    public static ByteBuffer encode(ProtocolStruct m, short version) {
        ByteBuffer b = ByteBuffer.allocate(m.size(version));
        m.write(new ByteBufferWriter(b), version);
        if (b.hasRemaining()) {
            throw new IllegalStateException(m.getClass().getSimpleName() + " v" + version + " wrote " + b.position()
                + " bytes but sized itself at " + b.capacity());
        }
        return b.flip();
    }
}
