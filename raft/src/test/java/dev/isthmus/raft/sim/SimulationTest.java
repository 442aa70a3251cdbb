package dev.isthmus.raft.sim;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Runs the deterministic cluster simulation over many seeds.
 *
 * <pre>
 *   ./mvnw -q -B -ntp -pl raft -am verify                                   # the default bounded seed set
 *   ./mvnw -q -B -ntp -pl raft -am verify -Dtest=SimulationTest -Disthmus.seed=1234   # replay one seed
 *   ./mvnw -q -B -ntp -pl raft -am verify -Dtest=SimulationTest -Disthmus.sim.seeds=5000  # soak
 * </pre>
 * Without {@code -Disthmus.seed} the seeds are drawn from a fresh random base that is printed, so every run
 * explores new schedules; every failure prints its seed and the recent trace.
 */
class SimulationTest {
    private static final int DEFAULT_SEEDS = 120;
    private static final int DEFAULT_STORAGE_SEEDS = 4;

    @Test
    void shouldKeepSafetyAndRecoverUnderFaults() {
        String one = System.getProperty("isthmus.seed");
        if (one != null && !one.isBlank()) {
            Simulation.Result r = runSeed(Long.parseLong(one.trim()));
            System.out.println("seed " + one + ": " + r);
            return;
        }
        int seeds = Integer.getInteger("isthmus.sim.seeds", DEFAULT_SEEDS);
        long base = new SplittableRandom().nextLong();
        System.out.println("simulation: " + seeds + " seeds from base " + base
            + " (replay one with -Disthmus.seed=<seed>)");
        long events = 0;
        long committed = 0;
        long proposals = 0;
        long crashes = 0;
        long partitions = 0;
        long reassignments = 0;
        long snapshots = 0;
        long transfers = 0;
        long truncationsProposed = 0;
        long truncationsDone = 0;
        long leaders = 0;
        long maxHealMs = 0;
        SplittableRandom seedSource = new SplittableRandom(base);
        for (int i = 0; i < seeds; i++) {
            long seed = seedSource.nextLong();
            Simulation.Result r = runSeed(seed);
            events += r.events();
            committed += r.committedEntries();
            proposals += r.proposalsCommitted();
            crashes += r.crashes();
            partitions += r.partitions();
            reassignments += r.reassignmentsDone();
            snapshots += r.snapshotsInstalled();
            transfers += r.transfers();
            truncationsProposed += r.prefixTruncationsProposed();
            truncationsDone += r.prefixTruncationsDone();
            leaders += r.leadersElected();
            maxHealMs = Math.max(maxHealMs, r.healMs());
            if (r.healMs() > 5_000) {
                System.out.println("slow heal: seed " + seed + " took " + r.healMs() + " ms");
            }
        }
        System.out.printf("simulation: %d seeds, %d events, %d committed entries, %d proposals confirmed, %d leaders"
                + " elected, %d crashes, %d partitions, %d transfers, %d reassignments, %d snapshot installs, slowest"
                + " heal %d ms, %d prefix truncations proposed, %d carried out by replicas%n", seeds, events, committed,
            proposals, leaders, crashes, partitions, transfers, reassignments, snapshots, maxHealMs, truncationsProposed,
            truncationsDone);
        assertTrue(committed > 0, "the simulation committed nothing");
        if (seeds >= 50) {
            assertTrue(truncationsDone > 0, "no replica carried out a prefix truncation in " + seeds + " seeds");
        }
    }

    /**
     * The same simulation on production storage: every node's groups in {@code LogEngineRaftLog}s on a simulated disk
     * (latencies, torn and lost unsynced writes, power losses and process crashes), its shards stepped by the
     * simulator. A bounded number of seeds here; {@code -Disthmus.sim.seeds=N} soaks.
     */
    @Test
    void shouldKeepSafetyAndRecoverOnRealStorageUnderFaults() {
        String one = System.getProperty("isthmus.seed");
        if (one != null && !one.isBlank()) {
            long seed = Long.parseLong(one.trim());
            System.out.println("storage seed " + one + ": " + (Boolean.getBoolean("isthmus.sim.diskErrors")
                ? runFailingStorageSeed(seed) : runStorageSeed(seed)));
            return;
        }
        int seeds = Integer.getInteger("isthmus.sim.seeds", DEFAULT_STORAGE_SEEDS);
        long base = new SplittableRandom().nextLong();
        System.out.println("simulation on storage: " + seeds + " seeds from base " + base
            + " (replay one with -Dtest=SimulationTest#shouldKeepSafetyAndRecoverOnRealStorageUnderFaults"
            + " -Disthmus.seed=<seed>)");
        SplittableRandom seedSource = new SplittableRandom(base);
        long committed = 0;
        long crashes = 0;
        long reopens = 0;
        long events = 0;
        long failures = 0;
        for (int i = 0; i < seeds; i++) {
            long seed = seedSource.nextLong();
            // every other seed also has disk errors (EIO, full disks)
            Simulation.Result r = i % 2 == 0 ? runStorageSeed(seed) : runFailingStorageSeed(seed);
            failures += r.storageFailures();
            committed += r.committedEntries();
            crashes += r.crashes();
            reopens += r.diskReopens();
            events += r.events();
        }
        System.out.printf("simulation on storage: %d seeds ran clean, %d events, %d committed entries, %d crashes,"
            + " %d nodes recovered from their disks, %d node restarts after disk errors%n", seeds, events, committed,
            crashes, reopens, failures);
        assertTrue(committed > 0, "the simulation committed nothing");
    }

    /**
     * Seeds of the simulation on storage that found bugs (each fixed; they replay their schedule while the simulation
     * draws its random numbers the same way):
     * <ul>
     *   <li>8549071244873725545: a log's recovery failed for want of a read window while the node's other logs
     *       recovered (now it waits for one);</li>
     *   <li>-8019144512459769128: a replica's log start moved back after a power loss (the record start was not
     *       durable);</li>
     *   <li>4272000580538870367: two state-record writes in flight at once.</li>
     * </ul>
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(longs = {8549071244873725545L, -8019144512459769128L,
        4272000580538870367L})
    void shouldReplayTheStorageSeedsThatFoundBugs(long seed) {
        runStorageSeed(seed);
    }

    /**
     * Seeds with disk errors that found bugs: -3178280271737017364 delivered a hard-state callback to a log not bound
     * yet (the state record a reopened log writes at once to make its record start durable); 1784938468733633662
     * found a checker bug: its disk view took the not-yet-written head of a batch straddling two chunk writes
     * (zero padding, so baseOffset 0; the CRC-32C does not cover it) for a batch at offset 0 and reported a log
     * matching violation the log did not have.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(longs = {-3178280271737017364L, 1784938468733633662L})
    void shouldReplayTheFailingStorageSeedsThatFoundBugs(long seed) {
        runFailingStorageSeed(seed);
    }

    @Test
    void shouldReplayAStorageSeedExactly() {
        long seed = Long.getLong("isthmus.seed", 42L);
        assertEquals(runStorageSeed(seed), runStorageSeed(seed), "two runs of storage seed " + seed + " differ");
    }

    static Simulation.Result runStorageSeed(long seed) {
        return runStorage(Simulation.onStorageFromSeed(seed), seed, "");
    }

    static Simulation.Result runFailingStorageSeed(long seed) {
        return runStorage(Simulation.onFailingStorageFromSeed(seed), seed, " -Disthmus.sim.diskErrors=true");
    }

    private static Simulation.Result runStorage(Simulation sim, long seed, String how) {
        try {
            return sim.run();
        } catch (Throwable t) {
            System.out.println("SIMULATION ON STORAGE FAILED: seed " + seed + " (" + sim.options + ")\n"
                + "replay: ./mvnw -q -B -ntp -pl raft -am verify"
                + " -Dtest=SimulationTest#shouldKeepSafetyAndRecoverOnRealStorageUnderFaults -Disthmus.seed=" + seed + how
                + "\nrecent events:\n" + sim.recentTrace());
            throw new AssertionError("simulation on storage, seed " + seed + " failed: " + t, t);
        }
    }

    /**
     * Membership changes as the controller group makes them, under the same faults (crashes, partitions, message loss,
     * clock jumps, transfers, snapshots): every non-voter a learner, voters added from learners and removed to learners
     * through joint consensus, their number changing, a change replaced by another while under way, a voter removed
     * while it is down. Safety on every event, and after healing one configuration that every member holds.
     */
    @Test
    void shouldKeepSafetyWhileTheControllerMembershipChangesUnderFaults() {
        String one = System.getProperty("isthmus.seed");
        int seeds = one != null && !one.isBlank() ? 1 : Integer.getInteger("isthmus.sim.membershipSeeds", 20);
        long base = new SplittableRandom().nextLong();
        System.out.println("controller membership simulation: " + seeds + " seeds from base " + base);
        SplittableRandom seedSource = new SplittableRandom(base);
        long changes = 0;
        long crashes = 0;
        long partitions = 0;
        for (int i = 0; i < seeds; i++) {
            long seed = one != null && !one.isBlank() ? Long.parseLong(one.trim()) : seedSource.nextLong();
            Simulation sim = Simulation.controllerMembershipFromSeed(seed);
            Simulation.Result r;
            try {
                r = sim.run();
            } catch (Throwable t) {
                System.out.println("SIMULATION FAILED: seed " + seed + " (" + sim.options + ")\n"
                    + "replay: ./mvnw -q -B -ntp -pl raft -am verify"
                    + " -Dtest=SimulationTest#shouldKeepSafetyWhileTheControllerMembershipChangesUnderFaults"
                    + " -Disthmus.seed=" + seed + "\nrecent events:\n" + sim.recentTrace());
                throw new AssertionError("controller membership simulation seed " + seed + " failed: " + t, t);
            }
            changes += r.reassignmentsDone();
            crashes += r.crashes();
            partitions += r.partitions();
        }
        System.out.printf("controller membership simulation: %d seeds, %d membership changes completed, %d crashes,"
            + " %d partitions%n", seeds, changes, crashes, partitions);
        if (seeds >= 10) {
            assertTrue(changes > 0, "no membership change completed in " + seeds + " seeds");
        }
    }

    @Test
    void shouldReplayASeedExactly() {
        long seed = Long.getLong("isthmus.seed", 42L);
        Simulation.Result a = runSeed(seed);
        Simulation.Result b = runSeed(seed);
        assertEquals(a, b, "two runs of seed " + seed + " differ");
    }

    static Simulation.Result runSeed(long seed) {
        Simulation sim = Simulation.fromSeed(seed);
        try {
            return sim.run();
        } catch (Throwable t) {
            System.out.println("SIMULATION FAILED: seed " + seed + " (" + sim.options + ")\n"
                + "replay: ./mvnw -q -B -ntp -pl raft -am verify -Dtest=SimulationTest -Disthmus.seed=" + seed
                + "\nrecent events:\n" + sim.recentTrace());
            throw new AssertionError("simulation seed " + seed + " failed: " + t, t);
        }
    }
}
