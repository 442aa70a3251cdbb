package dev.isthmus.gateway.protocol.message;

import dev.isthmus.gateway.protocol.ByteSlice;

import java.util.Random;

/** Random field values for the generated {@code RandomMessages}. */
final class RandomValues {
    private static final String ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-äé€𝄞";

    private RandomValues() {
    }

    static String string(Random rnd) {
        int n = rnd.nextInt(12);
        StringBuilder sb = new StringBuilder(n);
        int[] cps = ALPHABET.codePoints().toArray();
        for (int i = 0; i < n; i++) {
            sb.appendCodePoint(cps[rnd.nextInt(cps.length)]);
        }
        return sb.toString();
    }

    static ByteSlice bytes(Random rnd) {
        byte[] b = new byte[rnd.nextInt(40)];
        rnd.nextBytes(b);
        return ByteSlice.of(b);
    }
}
