package dev.isthmus.raft;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class TermIndexTest {
    @Test
    void shouldAnswerTermAndEpochEndQueries() {
        TermIndex t = new TermIndex();
        t.append(0, 0, 1);
        t.append(1, 9, 1);
        t.append(10, 10, 3);
        t.append(11, 20, 4);
        assertEquals(1, t.termAt(5));
        assertEquals(3, t.termAt(10));
        assertEquals(4, t.termAt(20));
        assertEquals(-1, t.termAt(21));
        assertEquals(0, t.termAt(-1));
        assertEquals(9, t.lastOffsetAtOrBeforeTerm(2));
        assertEquals(10, t.lastOffsetAtOrBeforeTerm(3));
        assertEquals(20, t.lastOffsetAtOrBeforeTerm(9));
        assertEquals(-1, t.lastOffsetAtOrBeforeTerm(0));
        t.truncateSuffix(11);
        assertEquals(10, t.lastOffset());
        assertEquals(3, t.lastTerm());
        t.truncatePrefix(5);
        assertEquals(1, t.termAt(5));
        assertEquals(-1, t.termAt(4));
        assertEquals(6, t.startOffset());
    }

    @Test
    void shouldMatchABruteForceModel() {
        long seed = Long.getLong("isthmus.seed", new SplittableRandom().nextLong());
        SplittableRandom r = new SplittableRandom(seed);
        for (int round = 0; round < 200; round++) {
            TermIndex t = new TermIndex();
            long[] terms = new long[400];
            long floor = -1;
            long last = -1;
            long term = 1;
            for (int op = 0; op < 60; op++) {
                int k = r.nextInt(10);
                if (k < 6 && last < 390) {
                    term += r.nextInt(3) == 0 ? r.nextInt(1, 3) : 0;
                    int n = r.nextInt(1, 6);
                    n = (int) Math.min(n, 399 - last);
                    t.append(last + 1, last + n, term);
                    for (long o = last + 1; o <= last + n; o++) {
                        terms[(int) o] = term;
                    }
                    last += n;
                } else if (k < 8 && last > floor + 1) {
                    long from = r.nextLong(floor + 2, last + 1);
                    // only at a term boundary or anywhere: TermIndex itself is per offset
                    t.truncateSuffix(from);
                    last = from - 1;
                    term = Math.max(term, last >= 0 ? terms[(int) last] : 1);
                } else if (last > floor) {
                    long to = r.nextLong(floor + 1, last + 1);
                    t.truncatePrefix(to);
                    floor = to;
                }
                for (long o = floor; o <= last; o++) {
                    long expect = o < 0 ? 0 : terms[(int) o];
                    assertEquals(expect, t.termAt(o), "seed " + seed + " offset " + o);
                }
                for (long q = 0; q <= term + 1; q++) {
                    long expect = -1;
                    for (long o = last; o >= floor; o--) {
                        if ((o < 0 ? 0 : terms[(int) o]) <= q) {
                            expect = o;
                            break;
                        }
                    }
                    assertEquals(expect, t.lastOffsetAtOrBeforeTerm(q), "seed " + seed + " term " + q);
                }
                TermIndex copy = TermIndex.decode(t.encode());
                assertEquals(t.toString(), copy.toString(), "seed " + seed);
            }
        }
    }

    @Test
    void shouldRejectADamagedImage() {
        TermIndex t = new TermIndex();
        t.append(0, 4, 2);
        byte[] image = t.encode();
        image[5] ^= 1;
        assertThrows(IllegalArgumentException.class, () -> TermIndex.decode(image));
    }
}
