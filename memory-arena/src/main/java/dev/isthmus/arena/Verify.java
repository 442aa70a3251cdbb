package dev.isthmus.arena;

final class Verify {
    private Verify() {
    }

    static void index(int i, int count) {
        if (i < 0 || i >= count) {
            throw new IndexOutOfBoundsException("index " + i + " outside [0, " + count + ")");
        }
    }
}
