package dev.isthmus.raft.sim;

import dev.isthmus.raft.BytesPayload;
import dev.isthmus.raft.Payload;
import dev.isthmus.raft.RaftLog;
import dev.isthmus.raft.RaftLogContractTest;

import java.util.ArrayDeque;
import java.util.SplittableRandom;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The {@link RaftLog} contract on {@link MemoryRaftLog}: flushes complete one at a time as the test drives them. */
class MemoryRaftLogContractTest extends RaftLogContractTest {
    @Override
    protected Storage newStorage() {
        return new Storage() {
            final ArrayDeque<Runnable> flushes = new ArrayDeque<>();
            final SplittableRandom random = new SplittableRandom(1);
            MemoryRaftLog.Image image = new MemoryRaftLog.Image();
            MemoryRaftLog log;

            @Override
            public RaftLog open() {
                log = new MemoryRaftLog(image, flushes::add);
                return log;
            }

            @Override
            public void drive(BooleanSupplier done, String what) {
                for (int i = 0; i < 10_000 && !done.getAsBoolean(); i++) {
                    Runnable r = flushes.poll();
                    if (r != null) {
                        r.run();
                    }
                }
                assertTrue(done.getAsBoolean(), "never: " + what);
            }

            @Override
            public void crash(boolean powerLoss) {
                image = log.crash(random);
                flushes.clear();
                log = null;
            }

            @Override
            public void closeLog(RaftLog l) {
                image = log.close();
                flushes.clear();
                log = null;
            }

            @Override
            public Payload payload(int tag, int records) {
                return new BytesPayload(("v" + tag + "x" + records).getBytes(), records);
            }

            @Override
            public void close() {
            }
        };
    }
}
