package dev.isthmus.raft.storage;

import dev.isthmus.log.ChunkPool;
import dev.isthmus.log.LogConfig;
import dev.isthmus.log.LogManager;
import dev.isthmus.raft.Payload;
import dev.isthmus.raft.RaftLog;
import dev.isthmus.raft.RaftLogContractTest;
import dev.isthmus.uring.sim.SimClock;
import dev.isthmus.uring.sim.SimDisk;
import dev.isthmus.uring.sim.SimEngine;
import dev.isthmus.uring.sim.SimFaults;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The {@link RaftLog} contract on the production {@link LogEngineRaftLog} (log-engine segments and the state file)
 * over the simulated disk: latencies and out-of-order completions from a fixed seed, crashes that keep only what
 * fdatasync and directory syncs made durable. A small tail cache sends reads to the disk.
 */
class LogEngineRaftLogContractTest extends RaftLogContractTest {
    static final Path DIR = Path.of("/sim/group-0");

    @Override
    protected Storage newStorage() {
        return new Storage() {
            final SimClock clock = new SimClock();
            final SimDisk disk = new SimDisk(clock, new SimFaults(), 11);
            final LogConfig config = LogConfig.defaults().withSegmentBytes(64 * 1024).withMaxBatchBytes(8 * 1024)
                .withFallocateStep(16 * 1024);
            final LinkedHashSet<LogEngineRaftLog> toPoll = new LinkedHashSet<>();
            final List<ChunkPool> pools = new ArrayList<>();
            SimEngine engine;
            LogManager logs;
            LogEngineRaftLog log;

            @Override
            public RaftLog open() {
                engine = disk.newEngine();
                engine.autoAdvance(true);
                ChunkPool writes = ChunkPool.allocate(8, 16 * 1024);
                ChunkPool reads = ChunkPool.allocate(2, config.readWindowBytes());
                pools.add(writes);
                pools.add(reads);
                LogEngineRaftLog[] out = {null};
                RuntimeException[] error = {null};
                boolean[] called = {false};
                logs = new LogManager(engine, DIR.getParent(), writes, reads);
                LogEngineRaftLog.open(logs, DIR, config,
                    new LogEngineRaftLog.Options(256, 1 << 20, 4096), toPoll::add, (l, e) -> {
                        out[0] = l;
                        error[0] = e;
                        called[0] = true;
                    });
                drive(() -> called[0], "open");
                if (error[0] != null) {
                    throw error[0];
                }
                log = out[0];
                return log;
            }

            private void pollAll() {
                List<LogEngineRaftLog> l = new ArrayList<>(toPoll);
                toPoll.clear();
                for (LogEngineRaftLog x : l) {
                    x.poll();
                }
                if (logs != null) {
                    logs.poll(); // the shard's log housekeeping flushes what the turn appended
                }
            }

            @Override
            public void drive(BooleanSupplier done, String what) {
                for (int i = 0; i < 100_000 && !done.getAsBoolean(); i++) {
                    pollAll();
                    engine.submitAndWait(1_000_000L);
                    pollAll();
                }
                assertTrue(done.getAsBoolean(), "never: " + what + "\n" + disk.recentTrace());
            }

            @Override
            public void crash(boolean powerLoss) {
                disk.crash(powerLoss);
                toPoll.clear();
                log = null;
            }

            @Override
            public void closeLog(RaftLog l) {
                boolean[] closed = {false};
                ((LogEngineRaftLog) l).close(() -> closed[0] = true);
                drive(() -> closed[0], "close");
                log = null;
            }

            @Override
            public Payload payload(int tag, int records) {
                byte[][] values = new byte[records][];
                for (int i = 0; i < records; i++) {
                    values[i] = ("v" + tag + "-" + i).getBytes();
                }
                return KafkaBatchPayload.ofValues(1_700_000_000_000L + tag, values);
            }

            @Override
            public void close() {
                if (log != null) {
                    closeLog(log);
                }
                for (ChunkPool p : pools) {
                    p.close();
                }
            }
        };
    }
}
