package dev.isthmus.raft.sim;

import dev.isthmus.log.RecordBatch;
import dev.isthmus.raft.Entry;
import dev.isthmus.raft.RaftLog;
import dev.isthmus.raft.storage.LogEngineRaftLog;
import dev.isthmus.raft.storage.RaftBatches;
import dev.isthmus.uring.sim.SimDisk;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What {@link SimChecker} reads of a node's log: its offsets, terms and entries, synchronously. For
 * {@link MemoryRaftLog} that is its entry list. For {@link LogEngineRaftLog}, whose older entries are only on disk,
 * it is the log's tail cache (every entry not yet durable is there) and, for the rest, the segment files as the
 * simulated disk holds them now, parsed batch by batch (CRC-checked) without going through the log: the checker
 * reads what the storage really holds, and reading costs the simulated node nothing (no I/O, no callbacks).
 */
interface SimLogView {
    long startOffset();

    long lastOffset();

    long termAt(long offset);

    /** See {@link RaftLog#lastOffsetAtOrBeforeTerm(long)}. */
    long lastOffsetAtOrBeforeTerm(long term);

    /** The entry holding {@code offset}, or null when the log holds none there. */
    Entry entryAt(long offset);

    static SimLogView of(MemoryRaftLog log) {
        return new SimLogView() {
            /** The index the last lookup found: walks go entry by entry, so the next one is usually right after it. */
            private int last;

            @Override
            public long startOffset() {
                return log.startOffset();
            }

            @Override
            public long lastOffset() {
                return log.lastOffset();
            }

            @Override
            public long termAt(long offset) {
                return log.termAt(offset);
            }

            @Override
            public long lastOffsetAtOrBeforeTerm(long term) {
                return log.lastOffsetAtOrBeforeTerm(term);
            }

            @Override
            public Entry entryAt(long offset) {
                List<Entry> es = log.entries();
                for (int i = last; i <= last + 1 && i < es.size(); i++) {
                    Entry e = es.get(i);
                    if (e.baseOffset() <= offset && offset <= e.lastOffset()) {
                        last = i;
                        return e;
                    }
                }
                int i = SimChecker.indexOf(es, offset);
                last = Math.max(0, i);
                if (i < 0) {
                    return null;
                }
                Entry e = es.get(i);
                return e.baseOffset() <= offset ? e : null;
            }
        };
    }

    static SimLogView of(LogEngineRaftLog log, SimDisk disk, Path dir) {
        return new EngineView(log, disk, dir);
    }

    /** A {@link LogEngineRaftLog}: its cache, else its segment files on the simulated disk. */
    final class EngineView implements SimLogView {
        private final LogEngineRaftLog log;
        private final SimDisk disk;
        private final Path dir;
        private TreeMap<Long, Entry> onDisk = new TreeMap<>();
        private long parsedAt = -1;

        EngineView(LogEngineRaftLog log, SimDisk disk, Path dir) {
            this.log = log;
            this.disk = disk;
            this.dir = dir;
        }

        @Override
        public long startOffset() {
            return log.startOffset();
        }

        @Override
        public long lastOffset() {
            return log.lastOffset();
        }

        @Override
        public long termAt(long offset) {
            return log.termAt(offset);
        }

        @Override
        public long lastOffsetAtOrBeforeTerm(long term) {
            return log.lastOffsetAtOrBeforeTerm(term);
        }

        @Override
        public Entry entryAt(long offset) {
            if (offset < log.startOffset() || offset > log.lastOffset()) {
                return null;
            }
            Entry cached = log.cachedEntry(offset);
            if (cached != null) {
                return cached;
            }
            if (parsedAt != disk.modifications()) {
                onDisk = parse();
                parsedAt = disk.modifications();
            }
            Map.Entry<Long, Entry> e = onDisk.floorEntry(offset);
            return e != null && e.getValue().lastOffset() >= offset ? e.getValue() : null;
        }

        /** Every valid batch of the group's segment files, by base offset (later files win). */
        private TreeMap<Long, Entry> parse() {
            TreeMap<Long, Entry> out = new TreeMap<>();
            RecordBatch b = new RecordBatch();
            for (Path p : disk.filesUnder(dir)) {
                String name = p.getFileName().toString();
                if (!name.endsWith(".log") || name.length() != 24 || !p.getParent().equals(dir)) {
                    continue;
                }
                byte[] bytes = disk.contents(p);
                MemorySegment seg = MemorySegment.ofArray(bytes);
                long pos = 0;
                // As the log-engine's own reader (SegmentReader): a batch must follow the one before it, offsets
                // never go back. The CRC-32C does not cover baseOffset: where chunk writes complete out of order,
                // the zero padding of an earlier tail write can still head a batch whose rest is already written
                // (not yet durable, and still in the tail cache), and would read as a valid batch at offset 0.
                long prevLast = Long.parseLong(name.substring(0, 20)) - 1;
                while (pos + RecordBatch.HEADER_BYTES <= bytes.length) {
                    b.wrap(seg, pos);
                    int size = b.sizeInBytes();
                    if (size < RecordBatch.HEADER_BYTES || pos + size > bytes.length
                        || b.check(bytes.length - pos, false) != RecordBatch.Check.OK || b.partitionLeaderEpoch() < 1
                        || b.baseOffset() <= prevLast) {
                        break;
                    }
                    prevLast = b.lastOffset();
                    out.put(b.baseOffset(), RaftBatches.decodeOne(b));
                    pos += size;
                }
            }
            return out;
        }
    }

    /** A view for whichever implementation {@code log} is. */
    static SimLogView of(RaftLog log, SimDisk disk, Path dir) {
        if (log instanceof MemoryRaftLog m) {
            return of(m);
        }
        return of((LogEngineRaftLog) log, disk, dir);
    }
}
