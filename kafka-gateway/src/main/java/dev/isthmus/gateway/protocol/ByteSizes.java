package dev.isthmus.gateway.protocol;

/** Encoded sizes of varints and UTF-8 strings, without encoding them. */
public final class ByteSizes {
    private ByteSizes() {
    }

    public static int unsignedVarint(int v) {
        int bits = 32 - Integer.numberOfLeadingZeros(v);
        return bits == 0 ? 1 : (bits + 6) / 7;
    }

    /** The UTF-8 length of {@code s} (unpaired surrogates count as '?', as String.getBytes does). */
    public static int utf8(String s) {
        int n = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                n++;
            } else if (c < 0x800) {
                n += 2;
            } else if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                n += 4;
                i++;
            } else if (Character.isSurrogate(c)) {
                n++;
            } else {
                n += 3;
            }
        }
        return n;
    }
}
