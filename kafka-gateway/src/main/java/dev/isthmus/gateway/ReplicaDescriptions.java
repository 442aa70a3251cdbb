package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.Uuid;
import dev.isthmus.gateway.protocol.message.DescribeLogDirsRequestData;
import dev.isthmus.gateway.protocol.message.DescribeLogDirsResponseData;
import dev.isthmus.gateway.protocol.message.DescribeProducersRequestData;
import dev.isthmus.gateway.protocol.message.DescribeProducersResponseData;
import dev.isthmus.gateway.protocol.message.DescribeTopicPartitionsRequestData;
import dev.isthmus.gateway.protocol.message.DescribeTopicPartitionsResponseData;
import dev.isthmus.gateway.protocol.message.MetadataResponseData;
import dev.isthmus.log.Log;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.Shard;

import java.io.IOException;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.RejectedExecutionException;

/**
 * What the replicas of this broker hold, for the tools that ask at start-up: DescribeLogDirs (kafka-log-dirs.sh,
 * kafka-ui, AKHQ, Cruise Control), DescribeProducers ({@code kafka-transactions.sh describe-producers}) and
 * DescribeTopicPartitions (KIP-966; Admin#describeTopics and kafka-topics.sh --describe in Kafka 4.x).
 *
 * <h2>Threads</h2>
 * One instance per broker, called on the connection's shard. Partition state is read on the shard owning the
 * partition (one cross-shard call per shard or per partition, the values copied into the reply); the data
 * directory's file-system totals (statvfs) are read on a virtual thread, never on a shard thread, and handed back
 * to the connection's shard through its external queue.
 */
final class ReplicaDescriptions {
    /** Kafka's max.request.partition.size.limit default: the most partitions one DescribeTopicPartitions answers. */
    static final int MAX_RESPONSE_PARTITIONS = 2000;
    /**
     * What no authorizer allows on a topic, as Kafka reports it without one (every operation a topic supports):
     * READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11.
     */
    static final int TOPIC_OPERATIONS = (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10)
        | (1 << 11);

    private final Broker broker;

    ReplicaDescriptions(Broker broker) {
        this.broker = broker;
    }

    // ------------------------------------------------------------------ DescribeLogDirs

    /** One replica's log as its shard saw it. */
    private record ReplicaLog(String topic, int partition, long sizeBytes, long offsetLag) {
    }

    /**
     * The data directory with every replica this broker hosts (leaders and followers; or those asked for), each
     * with its log's size in bytes and Kafka's offset lag (high watermark minus log end, at least 0), never a
     * future replica (no AlterReplicaLogDirs here); total and usable bytes of the directory's file system.
     */
    Promise<ProtocolMessage> describeLogDirs(ShardState st, DescribeLogDirsRequestData req) {
        Map<String, Set<Integer>> wanted = null;
        if (req.topics != null) {
            wanted = new HashMap<>();
            for (DescribeLogDirsRequestData.DescribableLogDirTopic t : req.topics) {
                wanted.computeIfAbsent(t.topic, k -> new HashSet<>()).addAll(t.partitions);
            }
        }
        Map<String, Set<Integer>> filter = wanted;
        List<Promise<List<ReplicaLog>>> perShard = new ArrayList<>();
        for (int i = 0; i < broker.shardCount(); i++) {
            perShard.add(st.shard.submitTo(i, s -> replicaLogs(broker.state(s.id()), filter)));
        }
        Promise<long[]> space = fileSystemSpace(st.shard, broker.config().dataDir().toAbsolutePath());
        return Promise.whenAll(perShard).flatMap(lists -> space.map(totals -> {
            DescribeLogDirsResponseData r = new DescribeLogDirsResponseData();
            DescribeLogDirsResponseData.DescribeLogDirsResult dir = new DescribeLogDirsResponseData.DescribeLogDirsResult();
            dir.logDir = broker.config().dataDir().toAbsolutePath().toString();
            r.results.add(dir);
            if (totals == null) {
                dir.errorCode = ErrorCodes.KAFKA_STORAGE_ERROR; // Kafka's answer for a directory it cannot read
                return r;
            }
            dir.totalBytes = totals[0];
            dir.usableBytes = totals[1];
            TreeMap<String, List<ReplicaLog>> byTopic = new TreeMap<>();
            for (List<ReplicaLog> l : lists) {
                for (ReplicaLog rl : l) {
                    byTopic.computeIfAbsent(rl.topic(), k -> new ArrayList<>()).add(rl);
                }
            }
            for (Map.Entry<String, List<ReplicaLog>> e : byTopic.entrySet()) {
                DescribeLogDirsResponseData.DescribeLogDirsTopic t = new DescribeLogDirsResponseData.DescribeLogDirsTopic();
                t.name = e.getKey();
                e.getValue().sort(Comparator.comparingInt(ReplicaLog::partition));
                for (ReplicaLog rl : e.getValue()) {
                    DescribeLogDirsResponseData.DescribeLogDirsPartition p = new DescribeLogDirsResponseData.DescribeLogDirsPartition();
                    p.partitionIndex = rl.partition();
                    p.partitionSize = rl.sizeBytes();
                    p.offsetLag = rl.offsetLag();
                    p.isFutureKey = false;
                    t.partitions.add(p);
                }
                dir.topics.add(t);
            }
            return (ProtocolMessage) r;
        }));
    }

    /** On a shard: its open replicas (those in {@code filter}, or all when null). */
    private static List<ReplicaLog> replicaLogs(ShardState st, Map<String, Set<Integer>> filter) {
        List<ReplicaLog> out = new ArrayList<>();
        for (Partition p : st.partitions.values()) {
            if (filter != null && !filter.getOrDefault(p.topic, Set.of()).contains(p.index)) {
                continue;
            }
            Log log = p.log();
            if (log == null) {
                continue; // a follower swapping in a snapshot's log this moment: no size to report
            }
            out.add(new ReplicaLog(p.topic, p.index, log.sizeBytes(),
                Math.max(0, p.highWatermark() - p.replica.logEndOffset())));
        }
        return out;
    }

    /**
     * {total, usable} bytes of the file system holding {@code dir} (Kafka's FileStore values, negative ones, a
     * JDK quirk on huge file systems, as Long.MAX_VALUE), or null when it cannot be read. statvfs is file-system
     * I/O: it runs on a virtual thread and the promise completes back on {@code shard}.
     */
    private static Promise<long[]> fileSystemSpace(Shard shard, Path dir) {
        Promise<long[]> p = new Promise<>();
        ShardHop hop = new ShardHop(shard);
        Thread.ofVirtual().name("isthmus-statvfs").start(() -> {
            long[] v;
            try {
                FileStore fs = Files.getFileStore(dir);
                v = new long[] {positive(fs.getTotalSpace()), positive(fs.getUsableSpace())};
            } catch (IOException | RuntimeException e) {
                System.getLogger(ReplicaDescriptions.class.getName()).log(System.Logger.Level.WARNING,
                    "cannot read the file-system totals of " + dir + ": " + e.getMessage());
                v = null;
            }
            long[] result = v;
            hop.run(() -> p.complete(result));
        });
        return p;
    }

    /** Runs a task on a shard from any thread (dropped when the shard group is stopping). */
    private record ShardHop(Shard shard) {
        void run(Runnable task) {
            try {
                shard.group().execute(shard.id(), task);
            } catch (RejectedExecutionException e) {
                // the broker is stopping; the connection waiting for this answer closes with it
            }
        }
    }

    private static long positive(long space) {
        return space < 0 ? Long.MAX_VALUE : space;
    }

    // ------------------------------------------------------------------ DescribeProducers

    /**
     * The idempotent producers the leader of each partition keeps state for: producer id, epoch, last sequence and
     * when it last wrote; coordinator epoch and transaction start offset where the partition's state has them (-1
     * otherwise). Followers
     * answer NOT_LEADER_OR_FOLLOWER, as a leader still loading the state after an election does.
     */
    Promise<ProtocolMessage> describeProducers(ShardState st, DescribeProducersRequestData req) {
        DescribeProducersResponseData r = new DescribeProducersResponseData();
        PartitionFanOut fan = new PartitionFanOut(broker.handlers(), st);
        for (DescribeProducersRequestData.TopicRequest tq : req.topics) {
            DescribeProducersResponseData.TopicResponse tr = new DescribeProducersResponseData.TopicResponse();
            tr.name = tq.name;
            r.topics.add(tr);
            TopicTable.Topic t = tq.name == null ? null : st.topics.get(tq.name);
            for (Integer index : tq.partitionIndexes) {
                DescribeProducersResponseData.PartitionResponse pr = new DescribeProducersResponseData.PartitionResponse();
                pr.partitionIndex = index;
                tr.partitions.add(pr);
                if (!PartitionFanOut.exists(t, index)) {
                    pr.errorCode = ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION;
                    pr.errorMessage = "no partition " + tq.name + "-" + index;
                    continue;
                }
                String name = t.name();
                fan.submit(t, index, part -> Promise.completed(producersOf(part)),
                    (Object) unknown(name, index), notLeader(name, index),
                    // A failed cross-shard call is a retriable error, never NONE with no producers (a wrong answer).
                    f -> timedOut(name, index), res -> {
                        if (res instanceof List<?> states) {
                            for (Object o : states) {
                                pr.activeProducers.add((DescribeProducersResponseData.ProducerState) o);
                            }
                        } else {
                            String[] err = (String[]) res;
                            pr.errorCode = Short.parseShort(err[0]);
                            pr.errorMessage = err[1];
                        }
                    });
            }
        }
        return fan.gather(r);
    }

    private static String[] unknown(String topic, int index) {
        return new String[] {Short.toString(ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION), "no partition " + topic + "-" + index};
    }

    private static String[] timedOut(String topic, int index) {
        return new String[] {Short.toString(ErrorCodes.REQUEST_TIMED_OUT), "the call to the shard owning " + topic
            + "-" + index + " failed; retry"};
    }

    private static String[] notLeader(String topic, int index) {
        return new String[] {Short.toString(ErrorCodes.NOT_LEADER_OR_FOLLOWER), "this broker does not lead " + topic
            + "-" + index};
    }

    /** On the partition's shard: its producers sorted by id, or an {code, message} pair. */
    private static Object producersOf(Partition part) {
        if (!part.isLeader()) {
            return notLeader(part.topic, part.index);
        }
        if (!part.readyToProduce()) {
            return new String[] {Short.toString(ErrorCodes.NOT_LEADER_OR_FOLLOWER), "the new leader of " + part.topic
                + "-" + part.index + " is still loading the producers' state; retry"};
        }
        long oldest = System.currentTimeMillis() - Partition.PRODUCER_EXPIRY_MS;
        List<long[]> states = part.producerStates();
        states.sort(Comparator.comparingLong(s -> s[0]));
        List<DescribeProducersResponseData.ProducerState> out = new ArrayList<>(states.size());
        for (long[] s : states) {
            if (s[3] < oldest) {
                continue; // expired (producer.id.expiration.ms); dropped at the next snapshot
            }
            DescribeProducersResponseData.ProducerState ps = new DescribeProducersResponseData.ProducerState();
            ps.producerId = s[0];
            ps.producerEpoch = (int) s[1];
            ps.lastSequence = (int) s[2];
            ps.lastTimestamp = s[3];
            // Where the partition tracks transactions (its state carries {.., coordinatorEpoch, txnFirstOffset}):
            // the last marker's coordinator epoch and the open transaction's first offset, which
            // kafka-transactions.sh abort needs; else none.
            ps.coordinatorEpoch = s.length > 5 ? (int) s[4] : -1;
            ps.currentTxnStartOffset = s.length > 5 ? s[5] : -1;
            out.add(ps);
        }
        return out;
    }

    // ------------------------------------------------------------------ DescribeTopicPartitions

    /**
     * KIP-966's paged topic description, as Kafka's DescribeTopicPartitionsRequestHandler answers: the topics asked
     * for (all when none) in name order from the cursor, at most {@code min(responsePartitionLimit, 2000)} partitions
     * (at least 1), and a next cursor where the answer stopped. Leaders, epochs, replicas, ISR and offline replicas
     * are Metadata's ({@link Handlers#topicMetadata}); eligible leader replicas and the last known ELR are empty
     * (Raft's quorum rule needs no ELR). Unknown topics asked by name answer UNKNOWN_TOPIC_OR_PARTITION (or
     * INVALID_TOPIC_EXCEPTION for a bad name).
     */
    ProtocolMessage describeTopicPartitions(ShardState st, DescribeTopicPartitionsRequestData req) {
        DescribeTopicPartitionsResponseData r = new DescribeTopicPartitionsResponseData();
        boolean fetchAll = req.topics == null || req.topics.isEmpty();
        DescribeTopicPartitionsRequestData.Cursor cursor = req.cursor;
        String cursorTopic = cursor != null && cursor.topicName != null ? cursor.topicName : "";
        TreeSet<String> names = new TreeSet<>();
        if (fetchAll) {
            for (TopicTable.Topic t : st.topics.topics()) {
                if (t.name().compareTo(cursorTopic) >= 0) {
                    names.add(t.name());
                }
            }
        } else {
            for (DescribeTopicPartitionsRequestData.TopicRequest t : req.topics) {
                if (t.name != null && t.name.compareTo(cursorTopic) >= 0) {
                    names.add(t.name);
                }
            }
        }
        String bad = null;
        if (cursor != null && !fetchAll && !names.contains(cursorTopic)) {
            bad = "the topic list must contain the cursor topic " + cursorTopic;
        } else if (cursor != null && cursor.partitionIndex < 0) {
            bad = "the cursor's partition index must be >= 0, got " + cursor.partitionIndex;
        }
        if (bad != null) {
            // Kafka's error response for an InvalidRequestException: every requested topic with the error.
            for (DescribeTopicPartitionsRequestData.TopicRequest t : fetchAll ? List.<DescribeTopicPartitionsRequestData.TopicRequest>of() : req.topics) {
                DescribeTopicPartitionsResponseData.DescribeTopicPartitionsResponseTopic out =
                    new DescribeTopicPartitionsResponseData.DescribeTopicPartitionsResponseTopic();
                out.name = t.name;
                out.errorCode = ErrorCodes.INVALID_REQUEST;
                r.topics.add(out);
            }
            return r;
        }
        int remaining = Math.max(Math.min(MAX_RESPONSE_PARTITIONS, req.responsePartitionLimit), 1);
        for (String name : names) {
            if (remaining == 0) {
                r.nextCursor = cursor(name, 0); // the partitions of earlier topics filled the answer
                break;
            }
            TopicTable.Topic t = st.topics.get(name);
            if (t == null) {
                if (!fetchAll) {
                    DescribeTopicPartitionsResponseData.DescribeTopicPartitionsResponseTopic out =
                        new DescribeTopicPartitionsResponseData.DescribeTopicPartitionsResponseTopic();
                    out.name = name;
                    out.topicId = Uuid.ZERO;
                    out.isInternal = name.equals(GroupCoordinator.OFFSETS_TOPIC);
                    out.errorCode = TopicTable.invalidName(name) != null ? ErrorCodes.INVALID_TOPIC_EXCEPTION
                        : ErrorCodes.UNKNOWN_TOPIC_OR_PARTITION;
                    r.topics.add(out);
                }
                continue;
            }
            int start = name.equals(cursorTopic) ? cursor.partitionIndex : 0;
            int upper = (int) Math.min(t.partitions(), (long) start + remaining);
            MetadataResponseData.MetadataResponseTopic mt = broker.handlers().topicMetadata(st, t, name);
            DescribeTopicPartitionsResponseData.DescribeTopicPartitionsResponseTopic out =
                new DescribeTopicPartitionsResponseData.DescribeTopicPartitionsResponseTopic();
            out.name = name;
            out.topicId = t.id();
            out.isInternal = mt.isInternal;
            out.topicAuthorizedOperations = TOPIC_OPERATIONS;
            for (int p = start; p < upper; p++) {
                out.partitions.add(partition(mt.partitions.get(p)));
            }
            r.topics.add(out);
            if (upper < t.partitions()) {
                r.nextCursor = cursor(name, upper);
                break;
            }
            remaining -= Math.max(0, upper - start);
        }
        return r;
    }

    private static DescribeTopicPartitionsResponseData.Cursor cursor(String topic, int partition) {
        DescribeTopicPartitionsResponseData.Cursor c = new DescribeTopicPartitionsResponseData.Cursor();
        c.topicName = topic;
        c.partitionIndex = partition;
        return c;
    }

    private static DescribeTopicPartitionsResponseData.DescribeTopicPartitionsResponsePartition partition(
        MetadataResponseData.MetadataResponsePartition mp) {
        DescribeTopicPartitionsResponseData.DescribeTopicPartitionsResponsePartition p =
            new DescribeTopicPartitionsResponseData.DescribeTopicPartitionsResponsePartition();
        p.partitionIndex = mp.partitionIndex;
        p.errorCode = ErrorCodes.NONE; // Kafka sets no partition errors here; no leader is leaderId -1
        p.leaderId = mp.leaderId;
        p.leaderEpoch = mp.leaderEpoch;
        p.replicaNodes = new ArrayList<>(mp.replicaNodes);
        p.isrNodes = new ArrayList<>(mp.isrNodes);
        p.eligibleLeaderReplicas = new ArrayList<>();
        p.lastKnownElr = new ArrayList<>();
        p.offlineReplicas = mp.offlineReplicas == null ? new ArrayList<>() : new ArrayList<>(mp.offlineReplicas);
        return p;
    }
}
