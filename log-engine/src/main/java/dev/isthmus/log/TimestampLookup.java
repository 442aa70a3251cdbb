package dev.isthmus.log;

import java.lang.foreign.MemorySegment;

/** One {@link Log#offsetForTimestamp} search: reads runs of batches until one reaches the timestamp. */
final class TimestampLookup implements Log.ReadHandler {
    private static final int READ_BYTES = 256 * 1024;
    private final Log log;
    private final long timestamp;
    private final long bound;
    private final Log.TimestampHandler handler;
    private final RecordBatch batch = new RecordBatch();
    private final Records records = new Records();
    private long next;

    TimestampLookup(Log log, long timestamp, long bound, Log.TimestampHandler handler) {
        this.log = log;
        this.timestamp = timestamp;
        this.bound = bound;
        this.handler = handler;
    }

    void from(long offset) {
        next = offset;
        if (next >= bound) {
            handler.onOffset(-1, -1);
            return;
        }
        log.read(next, bound, READ_BYTES, this);
    }

    @Override
    public void onRead(MemorySegment bytes, long firstOffset, long lastOffset) {
        if (bytes.byteSize() == 0) {
            handler.onOffset(-1, -1);
            return;
        }
        long pos = 0;
        while (pos < bytes.byteSize()) {
            batch.wrap(bytes, pos);
            if (batch.maxTimestamp() >= timestamp && batch.lastOffset() >= next) {
                if (records.wrap(batch)) {
                    while (records.next()) {
                        if (records.offset() >= next && records.timestamp() >= timestamp) {
                            handler.onOffset(records.offset(), records.timestamp());
                            return;
                        }
                    }
                } else {
                    handler.onOffset(Math.max(next, batch.baseOffset()), batch.maxTimestamp());
                    return;
                }
            }
            pos += batch.sizeInBytes();
        }
        from(lastOffset + 1);
    }

    @Override
    public void onError(LogException error) {
        handler.onError(error);
    }
}
