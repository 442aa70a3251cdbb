package dev.isthmus.bench.chaos;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The nemesis's schedule is a function of the seed (a replay repeats it), deals every enabled fault once before
 * repeating any, and keeps its timings within the options; the command line refuses what it cannot run with one
 * sentence and exit status 2.
 */
class ScheduleTest {
    private static final long S = TimeUnit.SECONDS.toNanos(1);

    @Test
    void shouldDrawTheSameStepsFromTheSameSeed() {
        List<Fault> all = List.of(Fault.values());
        List<Schedule.Step> a = Schedule.preview(42, 3, all, 3 * S, 10 * S, 5 * S, 15 * S, 40);
        List<Schedule.Step> b = Schedule.preview(42, 3, all, 3 * S, 10 * S, 5 * S, 15 * S, 40);
        assertEquals(a, b);
        assertNotEquals(a, Schedule.preview(43, 3, all, 3 * S, 10 * S, 5 * S, 15 * S, 40));
        assertNotEquals(a, Schedule.preview(42, 1, all, 3 * S, 10 * S, 5 * S, 15 * S, 40), "each cluster size its own");
    }

    @Test
    void shouldDealEveryFaultOnceBeforeRepeatingAny() {
        List<Fault> all = List.of(Fault.values());
        List<Schedule.Step> steps = Schedule.preview(7, 3, all, 3 * S, 10 * S, 5 * S, 15 * S, all.size() * 3);
        for (int deck = 0; deck < 3; deck++) {
            Set<Fault> seen = EnumSet.noneOf(Fault.class);
            for (Schedule.Step s : steps.subList(deck * all.size(), (deck + 1) * all.size())) {
                seen.add(s.fault());
            }
            assertEquals(EnumSet.allOf(Fault.class), seen, "deck " + deck);
        }
        for (Schedule.Step s : steps) {
            assertTrue(s.quietNs() >= 5 * S && s.quietNs() <= 15 * S, s.describe());
            assertTrue(s.durationNs() >= 3 * S && s.durationNs() <= 10 * S, s.describe());
            assertTrue(s.pick() >= 0, s.describe());
        }
    }

    @Test
    void shouldSkipPartitionsOnOneNodeAndSayWhyOtherwise() {
        assertTrue(Fault.PARTITION_HALF.skipReason(1, null, null).contains("single node"));
        assertEquals("no namespaces", Fault.PARTITION_BRIDGE.skipReason(3, "no namespaces", null));
        assertEquals(null, Fault.PARTITION_LEADER.skipReason(3, null, "no loop devices"));
        assertEquals("no loop devices", Fault.DISK_FULL.skipReason(3, null, "no loop devices"));
        assertEquals(null, Fault.KILL.skipReason(1, "x", "y"));
    }

    @Test
    void shouldRefuseBadOptionsWithOneSentenceAndExit2() {
        for (String[] args : List.of(new String[] {"--nodes", "2"}, new String[] {"--nemesis", "meteor"},
                new String[] {"--workload", "transactions"}, new String[] {"--time", "soon"}, new String[] {"--bogus"},
                new String[] {"--fault-duration", "5s..1s"}, new String[] {"--subnet", "8.8"})) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            Chaos.Outcome o = Chaos.run(args, new PrintStream(out, true, StandardCharsets.UTF_8));
            String text = out.toString(StandardCharsets.UTF_8);
            assertEquals(2, o.exitCode(), String.join(" ", args) + ": " + text);
            assertTrue(text.startsWith("chaos: ") && text.strip().lines().count() == 1, text);
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        assertEquals(0, Chaos.run(new String[] {"--help"}, new PrintStream(out, true, StandardCharsets.UTF_8)).exitCode());
        for (Fault f : Fault.values()) {
            assertTrue(out.toString(StandardCharsets.UTF_8).contains(f.id), f.id + " in the usage");
        }
    }

    @Test
    void shouldReplayWithEveryWorkloadOptionAndTheSeedButNotThePlaces() {
        String[] args = {"--nodes", "1", "--rate", "2000", "--fault-duration", "0s..1s", "--quiet", "2s..10s",
            "--out", "/tmp/x", "--tmp-dir", "/tmp", "--seed", "7", "--nemesis", "kill", "--cycles", "100"};
        ChaosOptions o = ChaosOptions.parse(args);
        assertEquals("--nodes 1 --rate 2000 --fault-duration 0s..1s --quiet 2s..10s --nemesis kill --cycles 100 --seed 7",
            Chaos.replayArgs(args, o));
        // A random seed is named too: the replay repeats the run.
        ChaosOptions random = ChaosOptions.parse(new String[] {"--quick"});
        assertEquals("--quick --seed " + random.seed(), Chaos.replayArgs(new String[] {"--quick"}, random));
    }
}
