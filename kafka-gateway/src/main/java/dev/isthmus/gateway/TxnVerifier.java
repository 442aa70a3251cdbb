package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.message.AddPartitionsToTxnRequestData;
import dev.isthmus.gateway.protocol.message.AddPartitionsToTxnResponseData;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.txn.TxnConfig;
import dev.isthmus.uring.shard.Promise;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * KIP-890 part 1 on the partition leader's side (Kafka's {@code AddPartitionsToTxnManager}): before the first
 * transactional batch of a transaction is appended to a partition, its transaction coordinator is asked whether the
 * partition is in the transaction ({@code AddPartitionsToTxn} v5, {@code VerifyOnly=true}) or, for a Produce v12
 * (transaction version 2, KIP-890 part 2), to add it ({@code VerifyOnly=false}).
 *
 * <h2>Batching</h2>
 * Requests go per coordinator node, one in flight per node; verifications that arrive meanwhile wait and leave
 * together in the next request, one entry per transactional id (partitions of the same producer and epoch merged).
 * A second verification for a transactional id that waits with another producer id or epoch replaces the older
 * one, which is answered INVALID_PRODUCER_EPOCH (a newer epoch fenced it), or is itself answered so when it is
 * the older, as Kafka does.
 *
 * <h2>Answers</h2>
 * Each verification completes with the coordinator's code for its partition (NONE when the response does not name
 * it, as Kafka reads it), the top-level error for all, COORDINATOR_NOT_AVAILABLE when no coordinator is known, or
 * NETWORK_EXCEPTION when the request failed (no route, no answer in time). The partition maps them to its Produce
 * answer ({@link Partition}).
 *
 * <h2>Retry of an add</h2>
 * An add (transaction version 2) answered CONCURRENT_TRANSACTIONS (the producer's last transaction is still being
 * completed: its markers written) is asked again by the partition after {@code add.partitions.to.txn.retry.backoff.ms}
 * for up to {@code add.partitions.to.txn.retry.backoff.max.ms} ({@link #retryAfterNs}, a timer on this shard), as
 * Kafka's ReplicaManager does, so the Produce does not come back with a retriable error the client backs off from.
 *
 * <p>Threads: one per shard, used by that shard's partitions on its thread; the inter-broker request
 * ({@link BrokerRequests}) completes on the same shard.
 */
final class TxnVerifier {
    private static final short REQUEST_VERSION = 5;
    private final Broker broker;
    private final ShardState st;
    /** Verifications waiting for their coordinator node's next request, by node, one entry per transactional id. */
    private final Map<Integer, LinkedHashMap<String, Entry>> waiting = new HashMap<>();
    private final Set<Integer> inFlight = new HashSet<>();
    private final Set<Integer> sendScheduled = new HashSet<>();
    /** Requests sent and verifications answered (metrics, tests). */
    long requests;
    long verifications;
    /** Adds asked again after CONCURRENT_TRANSACTIONS, and adds answered CONCURRENT_TRANSACTIONS after the retry window. */
    long concurrentRetries;
    long concurrentRefused;
    private final long retryBackoffNs;
    private final long retryMaxNs;

    /** One transactional id's verification in a request. */
    private static final class Entry {
        final String transactionalId;
        final long producerId;
        final short epoch;
        final boolean add;
        final Map<String, List<Integer>> topics = new LinkedHashMap<>();
        final List<Waiter> waiters = new ArrayList<>(1);

        Entry(String transactionalId, long producerId, short epoch, boolean add) {
            this.transactionalId = transactionalId;
            this.producerId = producerId;
            this.epoch = epoch;
            this.add = add;
        }
    }

    private record Waiter(String topic, int partition, Promise<Short> promise) {
    }

    TxnVerifier(Broker broker, ShardState st) {
        this.broker = broker;
        this.st = st;
        dev.isthmus.gateway.txn.TxnConfig c = broker.config().transactions();
        this.retryBackoffNs = java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(c.addRetryBackoffMs());
        this.retryMaxNs = java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(c.addRetryBackoffMaxMs());
    }

    /**
     * Whether an add first asked at {@code firstAskedNs} ({@link System#nanoTime}) and answered {@code code} is asked
     * again ({@code add.partitions.to.txn.retry.backoff.max.ms} not passed yet), counted; else, if the answer was
     * CONCURRENT_TRANSACTIONS, counted as refused.
     */
    boolean retryAdd(short code, long firstAskedNs) {
        if (code != ErrorCodes.CONCURRENT_TRANSACTIONS) {
            return false;
        }
        if (System.nanoTime() - firstAskedNs < retryMaxNs) {
            concurrentRetries++;
            return true;
        }
        concurrentRefused++;
        return false;
    }

    /** Runs {@code retry} on this shard after {@code add.partitions.to.txn.retry.backoff.ms} (a timer, no wait). */
    void retryAfterNs(Runnable retry) {
        st.shard.schedule(retryBackoffNs, retry);
    }

    /**
     * Asks the coordinator of {@code transactionalId} whether {@code topic-partition} is in the transaction of
     * producer {@code producerId} at {@code epoch} ({@code add}: adds it, transaction version 2). Completes on this
     * shard with the coordinator's answer for it (see the class comment).
     */
    Promise<Short> verify(String transactionalId, long producerId, short epoch, String topic, int partition,
                          boolean add) {
        TopicTable.Topic t = st.topics.get(TxnCoordinator.TOPIC);
        if (t == null) {
            return Promise.completed(ErrorCodes.COORDINATOR_NOT_AVAILABLE); // no transaction was ever started
        }
        int p = TxnConfig.partitionFor(transactionalId, t.partitions());
        int[] leader = st.leaders.get(t.partition(p).groupId());
        if (leader == null || leader[0] < 0) {
            return Promise.completed(ErrorCodes.COORDINATOR_NOT_AVAILABLE);
        }
        int node = leader[0];
        LinkedHashMap<String, Entry> q = waiting.computeIfAbsent(node, n -> new LinkedHashMap<>());
        Entry e = q.get(transactionalId);
        if (e != null && (e.producerId != producerId || e.epoch != epoch || e.add != add)) {
            if (e.producerId == producerId && e.epoch > epoch) {
                return Promise.completed(ErrorCodes.INVALID_PRODUCER_EPOCH);
            }
            q.remove(transactionalId);
            answer(e, e.producerId == producerId && e.epoch == epoch ? ErrorCodes.NETWORK_EXCEPTION
                : ErrorCodes.INVALID_PRODUCER_EPOCH);
            e = null;
        }
        if (e == null) {
            e = new Entry(transactionalId, producerId, epoch, add);
            q.put(transactionalId, e);
        }
        List<Integer> parts = e.topics.computeIfAbsent(topic, x -> new ArrayList<>(1));
        if (!parts.contains(partition)) {
            parts.add(partition);
        }
        Promise<Short> promise = new Promise<>();
        e.waiters.add(new Waiter(topic, partition, promise));
        scheduleSend(node);
        return promise;
    }

    private void scheduleSend(int node) {
        if (inFlight.contains(node) || !sendScheduled.add(node)) {
            return;
        }
        // On the next loop turn: verifications of the batches of this turn share the request.
        st.shard.execute(() -> {
            sendScheduled.remove(node);
            send(node);
        });
    }

    private void send(int node) {
        if (inFlight.contains(node)) {
            return;
        }
        LinkedHashMap<String, Entry> q = waiting.remove(node);
        if (q == null || q.isEmpty()) {
            return;
        }
        AddPartitionsToTxnRequestData req = new AddPartitionsToTxnRequestData();
        for (Entry e : q.values()) {
            AddPartitionsToTxnRequestData.AddPartitionsToTxnTransaction tx =
                new AddPartitionsToTxnRequestData.AddPartitionsToTxnTransaction();
            tx.transactionalId = e.transactionalId;
            tx.producerId = e.producerId;
            tx.producerEpoch = e.epoch;
            tx.verifyOnly = !e.add;
            for (Map.Entry<String, List<Integer>> topic : e.topics.entrySet()) {
                AddPartitionsToTxnRequestData.AddPartitionsToTxnTopic tt =
                    new AddPartitionsToTxnRequestData.AddPartitionsToTxnTopic();
                tt.name = topic.getKey();
                tt.partitions.addAll(topic.getValue());
                tx.topics.add(tt);
            }
            req.transactions.add(tx);
        }
        inFlight.add(node);
        requests++;
        broker.handlers().transactions().requests().send(st, node, ApiKeys.ADD_PARTITIONS_TO_TXN, REQUEST_VERSION, req)
            .whenComplete((resp, f) -> {
                inFlight.remove(node);
                if (f != null || !(resp instanceof AddPartitionsToTxnResponseData r)) {
                    for (Entry e : q.values()) {
                        answer(e, ErrorCodes.NETWORK_EXCEPTION);
                    }
                } else if (r.errorCode != ErrorCodes.NONE) {
                    for (Entry e : q.values()) {
                        answer(e, r.errorCode);
                    }
                } else {
                    answered(q, r);
                }
                LinkedHashMap<String, Entry> next = waiting.get(node);
                if (next != null && !next.isEmpty()) {
                    scheduleSend(node);
                }
            });
    }

    private void answered(LinkedHashMap<String, Entry> q, AddPartitionsToTxnResponseData r) {
        Map<String, Map<String, Short>> codes = new HashMap<>();
        for (AddPartitionsToTxnResponseData.AddPartitionsToTxnResult tr : r.resultsByTransaction) {
            Map<String, Short> byPartition = codes.computeIfAbsent(tr.transactionalId, x -> new HashMap<>());
            for (AddPartitionsToTxnResponseData.AddPartitionsToTxnTopicResult topic : tr.topicResults) {
                for (AddPartitionsToTxnResponseData.AddPartitionsToTxnPartitionResult pr : topic.resultsByPartition) {
                    byPartition.put(topic.name + "-" + pr.partitionIndex, pr.partitionErrorCode);
                }
            }
        }
        for (Entry e : q.values()) {
            Map<String, Short> byPartition = codes.getOrDefault(e.transactionalId, Map.of());
            for (Waiter w : e.waiters) {
                verifications++;
                w.promise.complete(byPartition.getOrDefault(w.topic + "-" + w.partition, ErrorCodes.NONE));
            }
        }
    }

    private void answer(Entry e, short code) {
        for (Waiter w : e.waiters) {
            verifications++;
            w.promise.complete(code);
        }
    }
}
