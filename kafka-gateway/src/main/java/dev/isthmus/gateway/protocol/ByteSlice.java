package dev.isthmus.gateway.protocol;

import java.nio.ByteBuffer;

/**
 * The bytes of a {@code bytes} or {@code records} field, not copied out of the frame they arrived in: a view
 * of a {@link ByteBuffer} here, of an arena {@code IoBuf} on the server path. Writers that understand the
 * concrete type share it; others copy through {@link #copyTo}.
 */
public interface ByteSlice {
    ByteSlice EMPTY = of(new byte[0]);

    int length();

    void copyTo(int srcOffset, byte[] dst, int dstOffset, int length);

    /** A copy of the bytes (tests, small values). */
    default byte[] toArray() {
        byte[] b = new byte[length()];
        copyTo(0, b, 0, b.length);
        return b;
    }

    static ByteSlice of(byte[] bytes) {
        return new BufferSlice(ByteBuffer.wrap(bytes));
    }

    /** A slice over a ByteBuffer's remaining bytes (the buffer's position and limit are not changed later). */
    record BufferSlice(ByteBuffer buffer) implements ByteSlice {
        @Override
        public int length() {
            return buffer.remaining();
        }

        @Override
        public void copyTo(int srcOffset, byte[] dst, int dstOffset, int length) {
            buffer.get(buffer.position() + srcOffset, dst, dstOffset, length);
        }
    }
}
