package dev.isthmus.gateway;

import dev.isthmus.arena.test.ArenaLeakCheck;
import dev.isthmus.gateway.protocol.message.FetchRequestData;
import dev.isthmus.gateway.protocol.message.FetchResponseData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import static dev.isthmus.gateway.FetchWire.add;
import static dev.isthmus.gateway.FetchWire.awaitTrue;
import static dev.isthmus.gateway.FetchWire.batches;
import static dev.isthmus.gateway.FetchWire.length;
import static dev.isthmus.gateway.FetchWire.parked;
import static dev.isthmus.gateway.FetchWire.partition;
import static dev.isthmus.gateway.FetchWire.partitionReads;
import static dev.isthmus.gateway.FetchWire.request;
import static dev.isthmus.gateway.FetchWire.shardOf;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fetch on the wire with raw frames against a real broker: the response's byte limits (KIP-74) against a model
 * of Kafka's rule, long polls parked on the partitions' shards (one read per partition per wake-up), and long
 * polls that end with their connection.
 */
@ExtendWith(ArenaLeakCheck.class)
@Timeout(180)
class FetchHandlerTest {
    private static final short V12 = 12;

    static BrokerConfig config(Path dir, int shards) {
        return BrokerConfig.defaults().withPort(0).withDataDir(dir).withShards(shards).withMemory(shards * (128L << 20))
            .withPin(false);
    }

    /** Kafka's rule for the bytes of each partition, from the log's batch sizes (the model the broker must match). */
    private static long[] expectedBytes(List<List<long[]>> logs, int[] order, long[] offsets, int[] partMax, int maxBytes) {
        long[] out = new long[order.length];
        long remaining = maxBytes;
        boolean first = true;
        for (int i = 0; i < order.length; i++) {
            List<long[]> log = logs.get(order[i]);
            long limit = Math.min(partMax[i], remaining);
            long taken = 0;
            for (long[] b : log) {
                if (b[1] < offsets[i]) {
                    continue; // before the batch holding the fetch offset
                }
                if (taken + b[2] > limit && !(first && taken == 0)) {
                    break;
                }
                taken += b[2];
            }
            if (taken > 0) {
                first = false;
            }
            out[i] = taken;
            remaining = Math.max(0, remaining - taken);
        }
        return out;
    }

    @ParameterizedTest(name = "{0} shards")
    @ValueSource(ints = {1, 3})
    void shouldFillPartitionsInRequestOrderWithinMaxBytesAsKafkaDoes(int shards, @TempDir Path dir) throws Exception {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("FetchHandlerTest budget seed: " + seed + " (replay with -Disthmus.seed=" + seed + ")");
        Random rnd = new Random(seed);
        int partitions = 6;
        try (Broker b = Broker.start(config(dir, shards)); WireClient c = new WireClient(b.port(), 30_000)) {
            FetchWire.createTopic(b, "budget", partitions);
            for (int p = 0; p < partitions; p++) {
                int n = rnd.nextInt(5);
                for (int i = 0; i < n; i++) {
                    FetchWire.produce(c, "budget", p, FetchWire.batch(rnd, 1 + rnd.nextInt(3), 20 + rnd.nextInt(1500)));
                }
            }
            // The log as stored (Raft's control batches included): every batch, from one unlimited fetch.
            FetchRequestData all = request(0, 0, Integer.MAX_VALUE, 0, -1);
            for (int p = 0; p < partitions; p++) {
                add(all, "budget", null, p, 0, Integer.MAX_VALUE);
            }
            FetchResponseData whole = FetchWire.fetch(c, V12, all);
            FetchWire.assertNoError(whole);
            List<List<long[]>> logs = new ArrayList<>();
            long[] hw = new long[partitions];
            for (int p = 0; p < partitions; p++) {
                FetchResponseData.PartitionData pd = partition(whole, p);
                logs.add(batches(pd.records));
                hw[p] = pd.highWatermark;
            }
            for (int trial = 0; trial < 80; trial++) {
                List<Integer> ids = new ArrayList<>();
                for (int p = 0; p < partitions; p++) {
                    ids.add(p);
                }
                Collections.shuffle(ids, rnd);
                int[] order = ids.subList(0, 1 + rnd.nextInt(partitions)).stream().mapToInt(Integer::intValue).toArray();
                long[] offsets = new long[order.length];
                int[] partMax = new int[order.length];
                FetchRequestData r = request(0, 0, rnd.nextInt(10) == 0 ? 0 : 1 + rnd.nextInt(9000), 0, -1);
                for (int i = 0; i < order.length; i++) {
                    List<long[]> log = logs.get(order[i]);
                    offsets[i] = log.isEmpty() || rnd.nextInt(5) == 0 ? hw[order[i]]
                        : log.get(rnd.nextInt(log.size()))[rnd.nextBoolean() ? 0 : 1];
                    partMax[i] = rnd.nextInt(10) == 0 ? 0 : 1 + rnd.nextInt(5000);
                    add(r, "budget", null, order[i], offsets[i], partMax[i]);
                }
                long[] want = expectedBytes(logs, order, offsets, partMax, r.maxBytes);
                FetchResponseData got = FetchWire.fetch(c, V12, r);
                FetchWire.assertNoError(got);
                long total = 0;
                int nonEmpty = 0;
                long firstBatch = 0;
                for (int i = 0; i < order.length; i++) {
                    FetchResponseData.PartitionData pd = partition(got, order[i]);
                    List<long[]> bs = batches(pd.records);
                    String where = "seed " + seed + " trial " + trial + ": partition " + order[i] + " (position " + i
                        + ", offset " + offsets[i] + ", partition max " + partMax[i] + ", max " + r.maxBytes + ")";
                    assertEquals(want[i], length(pd), where);
                    if (!bs.isEmpty()) {
                        long holding = -1;
                        for (long[] lb : logs.get(order[i])) {
                            if (lb[1] >= offsets[i]) {
                                holding = lb[0];
                                break;
                            }
                        }
                        assertEquals(holding, bs.get(0)[0], where + ": starts with the batch holding the offset");
                        if (nonEmpty++ == 0) {
                            firstBatch = bs.get(0)[2];
                        }
                    }
                    total += length(pd);
                }
                // The wire contract: never above max_bytes, except one whole batch that is larger on its own.
                assertTrue(total <= r.maxBytes || total == firstBatch, "seed " + seed + " trial " + trial + ": "
                    + total + " bytes for max_bytes " + r.maxBytes);
            }
        }
    }

    /**
     * A partition read by its shard within the shard's own budget can be given away by the response's order to
     * another shard's partition; what the shard skipped then fits and must be read again: B (shard X) takes
     * the first bytes, A (shard Y) no longer fits, and both batches of C (shard Y, after A) do.
     */
    @Test
    void shouldReadAgainWhatAShardCutShortWhenTheResponseOrderLeavesRoomForIt(@TempDir Path dir) throws Exception {
        Random rnd = new Random(1);
        try (Broker b = Broker.start(config(dir, 2)); WireClient c = new WireClient(b.port(), 30_000)) {
            FetchWire.createTopic(b, "order", 4);
            int bp = -1;
            int ap = -1;
            int cp = -1;
            for (int p = 0; p < 4; p++) {
                if (shardOf(b, "order", p) == 0 && bp < 0) {
                    bp = p;
                } else if (shardOf(b, "order", p) == 1) {
                    if (ap < 0) {
                        ap = p;
                    } else if (cp < 0) {
                        cp = p;
                    }
                }
            }
            if (bp < 0 || ap < 0 || cp < 0) {
                org.junit.jupiter.api.Assumptions.abort("placement of 4 partitions on 2 shards left no 1 + 2 split");
            }
            byte[] bBatch = FetchWire.batch(rnd, 1, 530);
            byte[] aBatch = FetchWire.batch(rnd, 1, 730);
            byte[] c1 = FetchWire.batch(rnd, 1, 230);
            byte[] c2 = FetchWire.batch(rnd, 1, 10);
            long bOff = FetchWire.produce(c, "order", bp, bBatch);
            long aOff = FetchWire.produce(c, "order", ap, aBatch);
            long cOff = FetchWire.produce(c, "order", cp, c1);
            FetchWire.produce(c, "order", cp, c2);
            int maxBytes = bBatch.length + c1.length + c2.length;
            assertTrue(aBatch.length > c1.length + c2.length && aBatch.length <= maxBytes);
            long rereadsBefore = FetchWire.rereads(b);
            FetchRequestData r = request(0, 0, maxBytes, 0, -1);
            add(r, "order", null, bp, bOff, 1 << 20);
            add(r, "order", null, ap, aOff, 1 << 20);
            add(r, "order", null, cp, cOff, 1 << 20);
            FetchResponseData got = FetchWire.fetch(c, V12, r);
            FetchWire.assertNoError(got);
            assertEquals(bBatch.length, length(partition(got, bp)));
            assertEquals(0, length(partition(got, ap)), "A does not fit after B");
            assertEquals(c1.length + c2.length, length(partition(got, cp)), "both of C's batches fit after B");
            assertEquals(maxBytes, length(partition(got, bp)) + length(partition(got, cp)));
            assertTrue(FetchWire.rereads(b) > rereadsBefore, "C was read again with what the walk left");
        }
    }

    @Test
    void shouldReturnOneWholeBatchLargerThanBothLimitsFromTheFirstPartitionWithData(@TempDir Path dir)
        throws Exception {
        Random rnd = new Random(2);
        try (Broker b = Broker.start(config(dir, 2)); WireClient c = new WireClient(b.port(), 30_000)) {
            FetchWire.createTopic(b, "big", 3);
            byte[] big = FetchWire.batch(rnd, 3, 2000);
            long o0 = FetchWire.produce(c, "big", 0, big);
            FetchWire.produce(c, "big", 0, big);
            long o1 = FetchWire.produce(c, "big", 1, FetchWire.batch(rnd, 1, 10));
            long hw2 = FetchWire.produce(c, "big", 2, FetchWire.batch(rnd, 1, 10)) + 1;
            // Partition 2 first, at its end: empty. Partition 0 is the first with data: one batch, above both limits.
            FetchRequestData r = request(0, 0, 1000, 0, -1);
            add(r, "big", null, 2, hw2, 500);
            add(r, "big", null, 0, o0, 500);
            add(r, "big", null, 1, o1, 500);
            FetchResponseData got = FetchWire.fetch(c, V12, r);
            FetchWire.assertNoError(got);
            assertEquals(0, length(partition(got, 2)));
            assertEquals(big.length, length(partition(got, 0)), "exactly one whole batch");
            assertEquals(0, length(partition(got, 1)), "the budget is spent");
        }
    }

    @Test
    void shouldAnswerAParkedFetchWithOneReadOfTheWokenPartition(@TempDir Path dir) throws Exception {
        Random rnd = new Random(3);
        try (Broker b = Broker.start(config(dir, 2)); WireClient c = new WireClient(b.port(), 60_000);
             WireClient producer = new WireClient(b.port(), 30_000)) {
            FetchWire.createTopic(b, "poll", 2);
            assertNotEquals(shardOf(b, "poll", 0), shardOf(b, "poll", 1), "the two partitions sit on two shards");
            long end0 = FetchWire.produce(producer, "poll", 0, FetchWire.batch(rnd, 1, 10)) + 1;
            long end1 = FetchWire.produce(producer, "poll", 1, FetchWire.batch(rnd, 1, 10)) + 1;
            byte[] one = FetchWire.batch(rnd, 2, 100);
            byte[] two = FetchWire.batch(rnd, 2, 100);
            long before = partitionReads(b);
            FetchRequestData r = request(60_000, one.length + two.length, 1 << 20, 0, -1);
            add(r, "poll", null, 0, end0, 1 << 20);
            add(r, "poll", null, 1, end1, 1 << 20);
            FetchWire.sendFetch(c, V12, 11, r);
            awaitTrue(() -> parked(b, "poll", 0) == 1 && parked(b, "poll", 1) == 1, "both partitions parked");
            assertEquals(2, partitionReads(b) - before, "one first read per partition");

            FetchWire.produce(producer, "poll", 1, one);
            // Woken: partition 1 is read once, its batch kept (below min_bytes), and it parks again after it.
            awaitTrue(() -> partitionReads(b) - before == 3 && parked(b, "poll", 1) == 1, "partition 1 parked again");
            assertEquals(1, parked(b, "poll", 0), "partition 0 stayed parked");

            FetchWire.produce(producer, "poll", 1, two);
            FetchResponseData got = FetchWire.readFetch(c, V12);
            FetchWire.assertNoError(got);
            assertEquals(0, length(partition(got, 0)));
            List<long[]> bs = batches(partition(got, 1).records);
            assertEquals(2, bs.size(), "both batches, each read once");
            assertEquals(end1, bs.get(0)[0]);
            assertArrayEquals(new long[] {one.length, two.length}, new long[] {bs.get(0)[2], bs.get(1)[2]});
            assertEquals(4, partitionReads(b) - before, "2 first reads + 1 read per wake-up, none redone");
            awaitTrue(() -> parked(b, "poll", 0) == 0 && parked(b, "poll", 1) == 0, "no fetch left parked");
        }
    }

    @Test
    void shouldAnswerAtTheDeadlineWithWhatItHas(@TempDir Path dir) throws Exception {
        Random rnd = new Random(4);
        try (Broker b = Broker.start(config(dir, 2)); WireClient c = new WireClient(b.port(), 60_000)) {
            FetchWire.createTopic(b, "deadline", 2);
            byte[] batch = FetchWire.batch(rnd, 1, 100);
            long off = FetchWire.produce(c, "deadline", 0, batch);
            long end1 = FetchWire.produce(c, "deadline", 1, batch) + 1;
            FetchRequestData r = request(300, 1 << 20, 1 << 20, 0, -1);
            add(r, "deadline", null, 0, off, 1 << 20);
            add(r, "deadline", null, 1, end1, 1 << 20);
            FetchResponseData got = FetchWire.fetch(c, V12, r);
            FetchWire.assertNoError(got);
            assertEquals(batch.length, length(partition(got, 0)), "the batch read first is kept through the wait");
            assertEquals(0, length(partition(got, 1)));
            awaitTrue(() -> parked(b, "deadline", 0) == 0 && parked(b, "deadline", 1) == 0, "nothing left parked");
        }
    }

    @ParameterizedTest(name = "holding read batches: {0}")
    @ValueSource(booleans = {false, true})
    void shouldEndALongPollWhenItsConnectionCloses(boolean holding, @TempDir Path dir) throws Exception {
        Random rnd = new Random(5);
        try (Broker b = Broker.start(config(dir, 2)); WireClient producer = new WireClient(b.port(), 30_000)) {
            FetchWire.createTopic(b, "gone", 2);
            long off0 = FetchWire.produce(producer, "gone", 0, FetchWire.batch(rnd, 1, 500));
            long end1 = FetchWire.produce(producer, "gone", 1, FetchWire.batch(rnd, 1, 10)) + 1;
            WireClient c = new WireClient(b.port(), 30_000);
            // max_wait 2^31-1 ms: only the connection's end can end this fetch. With holding, the first read
            // keeps partition 0's batch while it waits for a min_bytes that never comes.
            FetchRequestData r = request(Integer.MAX_VALUE, 64 << 20, 128 << 20, 0, -1);
            add(r, "gone", null, 0, holding ? off0 : off0 + 1, 1 << 20);
            add(r, "gone", null, 1, end1, 1 << 20);
            FetchWire.sendFetch(c, V12, 3, r);
            awaitTrue(() -> parked(b, "gone", 1) == 1, "the fetch is parked");
            assertEquals(1, Connection.pendingRequests(b));
            c.close();
            awaitTrue(() -> Connection.pendingRequests(b) == 0, "the closed connection's fetch completed");
            assertEquals(0, parked(b, "gone", 0));
            assertEquals(0, parked(b, "gone", 1), "its waiter left the partition's shard");
            // The partitions serve the next fetch as before.
            FetchRequestData again = request(0, 0, 1 << 20, 0, -1);
            add(again, "gone", null, 0, off0, 1 << 20);
            FetchResponseData got = FetchWire.fetch(producer, V12, again);
            FetchWire.assertNoError(got);
            assertTrue(length(partition(got, 0)) > 0);
        }
    }

    /**
     * Many clients long-poll random partitions while a producer appends; some disconnect right after sending. At
     * the end no fetch is pending or parked anywhere, and the arena leak check finds every batch given back.
     */
    @Test
    void shouldLeaveNoWaiterOrBatchBehindWhenLongPollsWakeTimeOutAndDisconnect(@TempDir Path dir) throws Exception {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("FetchHandlerTest storm seed: " + seed + " (replay with -Disthmus.seed=" + seed + ")");
        int partitions = 4;
        try (Broker b = Broker.start(config(dir, 2))) {
            FetchWire.createTopic(b, "storm", partitions);
            java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
            java.util.concurrent.ConcurrentLinkedQueue<Throwable> failures = new java.util.concurrent.ConcurrentLinkedQueue<>();
            Thread producer = new Thread(() -> {
                Random rnd = new Random(seed);
                try (WireClient c = new WireClient(b.port(), 30_000)) {
                    while (!stop.get()) {
                        FetchWire.produce(c, "storm", rnd.nextInt(partitions), FetchWire.batch(rnd, 1 + rnd.nextInt(3),
                            10 + rnd.nextInt(400)));
                        FetchWire.sleep(rnd.nextInt(20));
                    }
                } catch (Throwable t) {
                    failures.add(t);
                }
            }, "storm-producer");
            List<Thread> clients = new ArrayList<>();
            for (int k = 0; k < 8; k++) {
                long clientSeed = seed + 1 + k;
                clients.add(new Thread(() -> {
                    Random rnd = new Random(clientSeed);
                    long[] next = new long[partitions];
                    try {
                        WireClient c = new WireClient(b.port(), 30_000);
                        for (int i = 0; i < 25; i++) {
                            FetchRequestData r = request(rnd.nextInt(300), 1 + rnd.nextInt(3000), 1 + rnd.nextInt(4000),
                                0, -1);
                            for (int p = 0; p < partitions; p++) {
                                if (rnd.nextInt(3) > 0) {
                                    add(r, "storm", null, p, next[p], 1 + rnd.nextInt(2000));
                                }
                            }
                            if (r.topics.isEmpty()) {
                                add(r, "storm", null, 0, next[0], 1000);
                            }
                            FetchWire.sendFetch(c, V12, i, r);
                            if (rnd.nextInt(5) == 0) {
                                c.close(); // gone while its fetch may be parked
                                c = new WireClient(b.port(), 30_000);
                                continue;
                            }
                            FetchResponseData got = FetchWire.readFetch(c, V12);
                            FetchWire.assertNoError(got);
                            long total = 0;
                            long firstBatch = -1;
                            for (FetchResponseData.FetchableTopicResponse t : got.responses) {
                                for (FetchResponseData.PartitionData pd : t.partitions) {
                                    List<long[]> bs = batches(pd.records);
                                    if (!bs.isEmpty()) {
                                        if (firstBatch < 0) {
                                            firstBatch = bs.get(0)[2];
                                        }
                                        next[pd.partitionIndex] = bs.get(bs.size() - 1)[1] + 1;
                                    }
                                    total += length(pd);
                                }
                            }
                            assertTrue(total <= r.maxBytes || total == firstBatch, "seed " + seed + ": " + total
                                + " bytes for max_bytes " + r.maxBytes);
                        }
                        c.close();
                    } catch (Throwable t) {
                        failures.add(t);
                    }
                }, "storm-client-" + k));
            }
            producer.start();
            clients.forEach(Thread::start);
            for (Thread t : clients) {
                t.join();
            }
            stop.set(true);
            producer.join();
            if (!failures.isEmpty()) {
                AssertionError e = new AssertionError("seed " + seed + ": " + failures.size() + " failure(s)");
                failures.forEach(e::addSuppressed);
                throw e;
            }
            awaitTrue(() -> Connection.pendingRequests(b) == 0, "every fetch completed");
            for (int p = 0; p < partitions; p++) {
                assertEquals(0, parked(b, "storm", p), "no waiter left on partition " + p);
            }
        }
    }
}
