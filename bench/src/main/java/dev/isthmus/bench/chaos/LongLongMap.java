package dev.isthmus.bench.chaos;

import java.util.Arrays;

/**
 * An open-addressing map from long to long without boxing, for the checker's offset and value indexes (a
 * 30-minute history holds millions of them). Keys may be any long but {@link Long#MIN_VALUE}. Not thread-safe.
 */
final class LongLongMap {
    static final long MISSING = Long.MIN_VALUE;
    private static final long EMPTY = Long.MIN_VALUE;

    private long[] keys;
    private long[] values;
    private int size;

    LongLongMap() {
        keys = new long[64];
        values = new long[64];
        Arrays.fill(keys, EMPTY);
    }

    int size() {
        return size;
    }

    long get(long key) {
        int i = find(keys, key);
        return keys[i] == EMPTY ? MISSING : values[i];
    }

    /** Puts {@code value} unless {@code key} is present; returns the value now stored. */
    long putIfAbsent(long key, long value) {
        if (key == EMPTY) {
            throw new IllegalArgumentException("key " + key + " is reserved");
        }
        int i = find(keys, key);
        if (keys[i] != EMPTY) {
            return values[i];
        }
        keys[i] = key;
        values[i] = value;
        if (++size * 2 > keys.length) {
            grow();
        }
        return value;
    }

    void put(long key, long value) {
        if (key == EMPTY) {
            throw new IllegalArgumentException("key " + key + " is reserved");
        }
        int i = find(keys, key);
        if (keys[i] == EMPTY) {
            keys[i] = key;
            if (++size * 2 > keys.length) {
                values[i] = value;
                grow();
                return;
            }
        }
        values[i] = value;
    }

    private static int find(long[] keys, long key) {
        int mask = keys.length - 1;
        int i = (int) (mix(key) & mask);
        while (keys[i] != EMPTY && keys[i] != key) {
            i = (i + 1) & mask;
        }
        return i;
    }

    private static long mix(long k) {
        k ^= k >>> 33;
        k *= 0xff51afd7ed558ccdL;
        k ^= k >>> 33;
        return k;
    }

    private void grow() {
        long[] ok = keys;
        long[] ov = values;
        keys = new long[ok.length * 2];
        values = new long[ok.length * 2];
        Arrays.fill(keys, EMPTY);
        for (int j = 0; j < ok.length; j++) {
            if (ok[j] != EMPTY) {
                int i = find(keys, ok[j]);
                keys[i] = ok[j];
                values[i] = ov[j];
            }
        }
    }

    /** Calls {@code c} for every entry, in no particular order. */
    void forEach(Entry c) {
        for (int j = 0; j < keys.length; j++) {
            if (keys[j] != EMPTY) {
                c.accept(keys[j], values[j]);
            }
        }
    }

    interface Entry {
        void accept(long key, long value);
    }
}
