package dev.isthmus.gateway;

import dev.isthmus.uring.shard.Promise;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The per-partition work of one request, fanned out to the shards that own the partitions and gathered back on
 * the request's shard. ListOffsets, DeleteRecords, OffsetForLeaderEpoch, DescribeProducers and WriteTxnMarkers
 * each build their response on the connection's shard, start one piece of work per partition on the partition's
 * owner ({@link Handlers#onPartition}), write each outcome into the response when it comes back, and answer once
 * every partition has: this class is that pattern, once.
 *
 * <pre>
 *   PartitionFanOut fan = new PartitionFanOut(handlers, st);
 *   for (each partition p of the request) {
 *       Entry e = new Entry(p); response.add(e);                         // defaults: what a failure leaves
 *       if (!PartitionFanOut.exists(topic, p)) { e.errorCode = UNKNOWN_TOPIC_OR_PARTITION; continue; }
 *       fan.submit(topic, p, part -> work(part), MISSING, NOT_HERE, v -> e.fill(v));
 *   }
 *   return fan.gather(response);
 * </pre>
 *
 * <h2>Lifecycle and threads</h2>
 * One per request, made by its handler on the request's shard; {@link #submit} is called there once per partition
 * while the response is built, then {@link #gather} once. The work runs on the partition's owner shard; the
 * {@code answer} callbacks run back on the request's shard (the cross-shard reply completes there), so only that
 * shard's thread touches the response, and {@code gather}'s promise completes after the last of them ran. Not
 * thread-safe; nothing here blocks.
 *
 * <h2>Outcomes</h2>
 * The work's value goes to {@code answer}; a partition the owner shard does not have answers {@code missing}, one
 * this node holds no open replica of answers {@code notHere}. A failed cross-shard call goes to {@code onFailure}
 * when one is given (its value then to {@code answer}); without one the partition keeps what the handler wrote into
 * its entry before submitting. {@link #gather} never fails.
 */
final class PartitionFanOut {
    private final Handlers handlers;
    private final ShardState st;
    private final List<Promise<?>> pending = new ArrayList<>();

    /** @param st the request's shard (where the response is built and answered) */
    PartitionFanOut(Handlers handlers, ShardState st) {
        this.handlers = handlers;
        this.st = st;
    }

    /** Whether {@code topic} (null: unknown) has partition {@code index} in this shard's topic table. */
    static boolean exists(TopicTable.Topic topic, int index) {
        return topic != null && index >= 0 && index < topic.partitions();
    }

    /**
     * Runs {@code work} on the shard owning partition {@code index} of {@code topic}; {@code answer} gets its value
     * (or {@code missing}/{@code notHere}) on the request's shard. A failed call leaves the entry as it is.
     */
    <T> void submit(TopicTable.Topic topic, int index, Function<Partition, Promise<T>> work, T missing, T notHere,
                    Consumer<? super T> answer) {
        pending.add(handlers.onPartition(st, topic, index, work, missing, notHere).map(v -> {
            answer.accept(v);
            return null;
        }));
    }

    /** {@link #submit(TopicTable.Topic, int, Function, Object, Object, Consumer)}, a failed call answered by {@code onFailure}. */
    <T> void submit(TopicTable.Topic topic, int index, Function<Partition, Promise<T>> work, T missing, T notHere,
                    Function<? super Throwable, ? extends T> onFailure, Consumer<? super T> answer) {
        pending.add(handlers.onPartition(st, topic, index, work, missing, notHere).recover(onFailure).map(v -> {
            answer.accept(v);
            return null;
        }));
    }

    /** Completes with {@code response} on the request's shard once every submitted partition answered or failed. */
    <R> Promise<R> gather(R response) {
        return Promise.whenAllSettled(pending).map(x -> response);
    }
}
