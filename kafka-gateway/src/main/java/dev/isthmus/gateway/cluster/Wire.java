package dev.isthmus.gateway.cluster;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/** Growable big-endian writer and bounds-checked reader for the controller's commands, results and snapshots. */
final class Wire {
    static final int MAX_STRING_BYTES = 1 << 20;

    private Wire() {
    }

    static final class Writer {
        private ByteBuffer b = ByteBuffer.allocate(256);

        private void room(int n) {
            if (b.remaining() < n) {
                ByteBuffer bigger = ByteBuffer.allocate(Math.max(b.capacity() * 2, b.position() + n));
                b.flip();
                bigger.put(b);
                b = bigger;
            }
        }

        Writer i8(int v) {
            room(1);
            b.put((byte) v);
            return this;
        }

        Writer i16(int v) {
            room(2);
            b.putShort((short) v);
            return this;
        }

        Writer i32(int v) {
            room(4);
            b.putInt(v);
            return this;
        }

        Writer i64(long v) {
            room(8);
            b.putLong(v);
            return this;
        }

        Writer str(String s) {
            byte[] u = s.getBytes(StandardCharsets.UTF_8);
            if (u.length > MAX_STRING_BYTES) {
                throw new IllegalArgumentException("string of " + u.length + " bytes is too long");
            }
            i32(u.length);
            room(u.length);
            b.put(u);
            return this;
        }

        Writer ints(int[] a) {
            i32(a.length);
            for (int v : a) {
                i32(v);
            }
            return this;
        }

        byte[] bytes() {
            return Arrays.copyOf(b.array(), b.position());
        }
    }

    /** Reads; every failure is a {@link ControllerFormatException} naming what was being read. */
    static final class Reader {
        private final ByteBuffer b;

        Reader(byte[] bytes) {
            this.b = ByteBuffer.wrap(bytes);
        }

        int i8() {
            try {
                return b.get();
            } catch (BufferUnderflowException e) {
                throw new ControllerFormatException("record ends early");
            }
        }

        int i16() {
            try {
                return b.getShort();
            } catch (BufferUnderflowException e) {
                throw new ControllerFormatException("record ends early");
            }
        }

        int i32() {
            try {
                return b.getInt();
            } catch (BufferUnderflowException e) {
                throw new ControllerFormatException("record ends early");
            }
        }

        long i64() {
            try {
                return b.getLong();
            } catch (BufferUnderflowException e) {
                throw new ControllerFormatException("record ends early");
            }
        }

        int count(int minBytesEach) {
            int n = i32();
            if (n < 0 || (long) n * minBytesEach > b.remaining()) {
                throw new ControllerFormatException("count " + n + " does not fit the " + b.remaining() + " bytes left");
            }
            return n;
        }

        String str() {
            int n = count(1);
            byte[] u = new byte[n];
            b.get(u);
            return new String(u, StandardCharsets.UTF_8);
        }

        int[] ints() {
            int n = count(4);
            int[] a = new int[n];
            for (int i = 0; i < n; i++) {
                a[i] = b.getInt();
            }
            return a;
        }

        boolean hasRemaining() {
            return b.hasRemaining();
        }

        int remaining() {
            return b.remaining();
        }

        void end() {
            if (b.hasRemaining()) {
                throw new ControllerFormatException(b.remaining() + " unexpected bytes after the record");
            }
        }
    }
}
