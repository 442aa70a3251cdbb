package dev.isthmus.raft.storage;

import dev.isthmus.raft.BytesPayload;
import dev.isthmus.raft.Entry;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

class EntryWindowTest {

    private static Entry entry(long base, int records) {
        return Entry.data(base, 1, new BytesPayload(new byte[1], records));
    }

    /**
     * Random appends at the end, insertions below it (disk reads), removals at the front and in the middle and
     * truncations, checked after every step against a TreeMap, the structure it replaces.
     */
    @Test
    void shouldBehaveAsASortedMapOfEntriesUnderRandomOperations() {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("EntryWindowTest seed " + seed + " (replay with -Disthmus.seed=" + seed + ")");
        SplittableRandom r = new SplittableRandom(seed);
        EntryWindow w = new EntryWindow();
        TreeMap<Long, Entry> model = new TreeMap<>();
        long next = 1_000;
        for (int step = 0; step < 4_000; step++) {
            int op = r.nextInt(10);
            if (op < 5) {
                Entry e = entry(next, 1 + r.nextInt(4));
                next = e.lastOffset() + 1 + (r.nextInt(8) == 0 ? r.nextInt(1, 5) : 0);
                w.put(e);
                model.put(e.baseOffset(), e);
            } else if (op == 5 && !model.isEmpty()) {
                // An insertion below the end, into a gap (as a disk read pins entries below the window).
                long base = model.firstKey() - 1 - r.nextInt(3);
                if (base >= 0 && !model.containsKey(base) && (model.floorEntry(base) == null
                    || model.floorEntry(base).getValue().lastOffset() < base)) {
                    Entry e = entry(base, 1);
                    w.put(e);
                    model.put(base, e);
                }
            } else if (op == 6 && !model.isEmpty()) {
                int i = r.nextInt(model.size());
                long key = new ArrayList<>(model.keySet()).get(i);
                w.removeAt(i);
                model.remove(key);
            } else if (op == 7 && !model.isEmpty()) {
                w.removeAt(0);
                model.pollFirstEntry();
            } else if (op == 8 && !model.isEmpty() && r.nextInt(20) == 0) {
                int i = r.nextInt(model.size() + 1);
                List<Long> keys = new ArrayList<>(model.keySet());
                w.truncate(i);
                for (int k = i; k < keys.size(); k++) {
                    model.remove(keys.get(k));
                }
            } else {
                long probe = next - r.nextInt(200);
                Map.Entry<Long, Entry> floor = model.floorEntry(probe);
                int i = w.floorIndex(probe);
                assertEquals(floor == null ? null : floor.getValue(), i < 0 ? null : w.get(i), "floor of " + probe);
                Entry holding = floor != null && floor.getValue().lastOffset() >= probe ? floor.getValue() : null;
                assertEquals(holding, w.containing(probe));
                assertEquals(model.containsKey(probe), w.containsBase(probe));
            }
            assertEquals(model.size(), w.size(), "size after step " + step);
            int k = 0;
            for (Entry e : model.values()) {
                assertEquals(e, w.get(k++), "entry " + k + " after step " + step);
            }
        }
        w.truncate(0);
        assertEquals(0, w.size());
        assertNull(w.containing(next));
    }
}
