package dev.isthmus.log;

import dev.isthmus.uring.IoEngine;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Helpers shared by the log tests: driving an engine until something happened, reading a whole range. */
final class LogTestSupport {
    private LogTestSupport() {
    }

    static void drive(IoEngine engine, BooleanSupplier done, String what) {
        long deadline = System.nanoTime() + 120_000_000_000L; // a bound against hangs, not a timing check
        while (!done.getAsBoolean() && System.nanoTime() < deadline) {
            engine.submitAndWait(10_000_000L);
        }
        assertTrue(done.getAsBoolean(), "timed out: " + what);
    }

    /** The base offset of the first batch a direct-I/O read at {@code from} returns (-1: none). */
    static long firstBatchAt(IoEngine engine, Log log, long from) {
        long[] got = {Long.MIN_VALUE};
        LogException[] err = new LogException[1];
        log.read(from, log.logEndOffset(), 1, new Log.ReadHandler() {
            @Override
            public void onRead(MemorySegment bytes, long firstOffset, long lastOffset) {
                got[0] = bytes.byteSize() == 0 ? -1 : new RecordBatch().wrap(bytes, 0).baseOffset();
            }

            @Override
            public void onError(LogException error) {
                err[0] = error;
            }
        });
        drive(engine, () -> got[0] != Long.MIN_VALUE || err[0] != null, "read at " + from);
        if (err[0] != null) {
            throw err[0];
        }
        return got[0];
    }

    /** Reads [from, end) through the direct-I/O {@link Log.ReadHandler} path; the batches back to back. */
    static byte[] readAll(IoEngine engine, Log log, long from, long end) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        long next = from;
        while (next < end) {
            byte[][] got = new byte[1][];
            long[] last = {-1};
            LogException[] err = new LogException[1];
            log.read(next, end, 8 << 20, new Log.ReadHandler() {
                @Override
                public void onRead(MemorySegment bytes, long firstOffset, long lastOffset) {
                    got[0] = bytes.toArray(ValueLayout.JAVA_BYTE);
                    last[0] = lastOffset;
                }

                @Override
                public void onError(LogException error) {
                    err[0] = error;
                }
            });
            drive(engine, () -> got[0] != null || err[0] != null, "read at " + next);
            if (err[0] != null) {
                throw err[0];
            }
            assertTrue(got[0].length > 0, "no progress at " + next);
            out.writeBytes(got[0]);
            next = last[0] + 1;
        }
        return out.toByteArray();
    }
}
