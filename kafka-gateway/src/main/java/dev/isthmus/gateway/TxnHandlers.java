package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.message.AddOffsetsToTxnRequestData;
import dev.isthmus.gateway.protocol.message.AddOffsetsToTxnResponseData;
import dev.isthmus.gateway.protocol.message.AddPartitionsToTxnRequestData;
import dev.isthmus.gateway.protocol.message.AddPartitionsToTxnResponseData;
import dev.isthmus.gateway.protocol.message.ApiKeys;
import dev.isthmus.gateway.protocol.message.DescribeTransactionsRequestData;
import dev.isthmus.gateway.protocol.message.DescribeTransactionsResponseData;
import dev.isthmus.gateway.protocol.message.EndTxnRequestData;
import dev.isthmus.gateway.protocol.message.EndTxnResponseData;
import dev.isthmus.gateway.protocol.message.FindCoordinatorRequestData;
import dev.isthmus.gateway.protocol.message.FindCoordinatorResponseData;
import dev.isthmus.gateway.protocol.message.InitProducerIdRequestData;
import dev.isthmus.gateway.protocol.message.InitProducerIdResponseData;
import dev.isthmus.gateway.protocol.message.ListTransactionsRequestData;
import dev.isthmus.gateway.protocol.message.ListTransactionsResponseData;
import dev.isthmus.gateway.protocol.message.MetadataResponseData;
import dev.isthmus.gateway.txn.TxnConfig;
import dev.isthmus.gateway.txn.TxnErrors;
import dev.isthmus.gateway.txn.TxnPartition;
import dev.isthmus.gateway.txn.TxnState;
import dev.isthmus.gateway.txn.TxnStateMachine;
import dev.isthmus.uring.shard.Promise;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BiFunction;
import java.util.function.Function;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * The transaction APIs on the connection's shard: FindCoordinator for key type TRANSACTION, InitProducerId with a
 * transactional id, AddPartitionsToTxn (v0-3 from clients, v4-5 batched from partition leaders, with
 * VerifyOnly), AddOffsetsToTxn, EndTxn, DescribeTransactions and ListTransactions. Each request for a transactional
 * id goes to the shard owning its {@code __transaction_state} partition ({@link TxnConfig#partitionFor}, created
 * on first use) and is answered by that shard's {@link TxnCoordinator}; on a broker that does not lead the
 * partition it gets NOT_COORDINATOR and the client finds the coordinator again.
 *
 * <p>Answers follow each API version: PRODUCER_FENCED becomes INVALID_PRODUCER_EPOCH before the versions that
 * added it (InitProducerId 4, AddPartitionsToTxn / AddOffsetsToTxn / EndTxn 2), TRANSACTION_ABORTABLE becomes
 * INVALID_TXN_STATE before AddPartitionsToTxn 5.
 *
 * <p>Threads: one instance per broker, its methods run on the connection's shard.
 */
final class TxnHandlers {
    private static final System.Logger LOG = System.getLogger(TxnHandlers.class.getName());
    private final Broker broker;
    private final BrokerRequests requests;

    TxnHandlers(Broker broker) {
        this.broker = broker;
        this.requests = new BrokerRequests(broker);
    }

    /** Kafka requests between brokers (markers, KIP-890 verification). */
    BrokerRequests requests() {
        return requests;
    }

    Promise<ProtocolMessage> handle(ShardState st, ApiKeys api, short version, ProtocolMessage request) {
        return switch (api) {
            case INIT_PRODUCER_ID -> initProducerId(st, (InitProducerIdRequestData) request, version);
            case ADD_PARTITIONS_TO_TXN -> addPartitions(st, (AddPartitionsToTxnRequestData) request, version);
            case ADD_OFFSETS_TO_TXN -> addOffsets(st, (AddOffsetsToTxnRequestData) request, version);
            case END_TXN -> endTxn(st, (EndTxnRequestData) request, version);
            case DESCRIBE_TRANSACTIONS -> describe(st, (DescribeTransactionsRequestData) request);
            case LIST_TRANSACTIONS -> list(st, (ListTransactionsRequestData) request);
            default -> Promise.failed(new IllegalStateException(api + " is not a transaction API"));
        };
    }

    // ------------------------------------------------------------------ routing

    /** {@code __transaction_state}, created through the controller on first use; null if it cannot be. */
    Promise<TopicTable.Topic> stateTopic(ShardState st) {
        TopicTable.Topic t = st.topics.get(TxnCoordinator.TOPIC);
        if (t != null) {
            return Promise.completed(t);
        }
        // Compacted: the latest record of every transactional id must stay; never deleted by retention.
        return broker.createTopic(st.shard, TxnCoordinator.TOPIC, broker.config().transactions().stateLogPartitions(),
                -1, Map.of("cleanup.policy", "compact", "segment.bytes", Long.toString(100L << 20)), List.of())
            .flatMap(o -> o instanceof TopicTable.Topic created ? Promise.completed(created)
                : st.shard.submitTo(0, s -> broker.state(0).topics.get(TxnCoordinator.TOPIC)));
    }

    /**
     * Runs {@code work(coordinator, partition)} on the shard owning {@code txnId}'s partition; {@code error} builds
     * the answer when no coordinator of it is reachable here.
     */
    private <T> Promise<T> onCoordinator(ShardState st, String txnId, boolean create,
                                         BiFunction<TxnCoordinator, Integer, Promise<T>> work,
                                         Function<Short, T> error) {
        Promise<TopicTable.Topic> topic = create ? stateTopic(st)
            : Promise.completed(st.topics.get(TxnCoordinator.TOPIC));
        return topic.flatMap(t -> {
            if (t == null) {
                return Promise.completed(error.apply(create ? TxnErrors.COORDINATOR_NOT_AVAILABLE
                    : TxnErrors.NOT_COORDINATOR));
            }
            int p = TxnConfig.partitionFor(txnId, t.partitions());
            int shard = broker.shardOf(t, p);
            if (shard < 0) {
                return Promise.completed(error.apply(TxnErrors.NOT_COORDINATOR));
            }
            return st.shard.submitToAsync(shard, s -> work.apply(broker.state(s.id()).txn, p));
        }).recover(f -> {
            LOG.log(System.Logger.Level.WARNING, "transactional id " + txnId + ": coordinator unavailable: " + f);
            return error.apply(TxnErrors.COORDINATOR_NOT_AVAILABLE);
        });
    }

    /**
     * Asks the coordinator of {@code txnId}, on whichever broker leads its {@code __transaction_state} partition,
     * to add {@code tp} to the producer's transaction ({@code verifyOnly} false: KIP-890 part 2, transaction version
     * 2) or to check that it is in it ({@code verifyOnly} true: part 1), as a partition leader asks before a
     * transactional write: AddPartitionsToTxn v5 through {@link BrokerRequests}. Completes on {@code st}'s shard with
     * the partition's code (NONE, TRANSACTION_ABORTABLE, PRODUCER_FENCED, INVALID_PRODUCER_ID_MAPPING,
     * CONCURRENT_TRANSACTIONS, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, ...), or COORDINATOR_NOT_AVAILABLE
     * when no coordinator is known or the request went unanswered. Used by the group coordinator for
     * TxnOffsetCommit.
     */
    Promise<Short> addOrVerify(ShardState st, String txnId, long producerId, short producerEpoch, TxnPartition tp,
                               boolean verifyOnly) {
        TopicTable.Topic t = st.topics.get(TxnCoordinator.TOPIC);
        if (t == null) {
            return Promise.completed(TxnErrors.COORDINATOR_NOT_AVAILABLE);
        }
        int p = TxnConfig.partitionFor(txnId, t.partitions());
        int[] leader = st.leaders.get(t.partition(p).groupId());
        if (leader == null || leader[0] < 0) {
            return Promise.completed(TxnErrors.COORDINATOR_NOT_AVAILABLE);
        }
        AddPartitionsToTxnRequestData req = new AddPartitionsToTxnRequestData();
        AddPartitionsToTxnRequestData.AddPartitionsToTxnTransaction x =
            new AddPartitionsToTxnRequestData.AddPartitionsToTxnTransaction();
        x.transactionalId = txnId;
        x.producerId = producerId;
        x.producerEpoch = producerEpoch;
        x.verifyOnly = verifyOnly;
        AddPartitionsToTxnRequestData.AddPartitionsToTxnTopic topic = new AddPartitionsToTxnRequestData.AddPartitionsToTxnTopic();
        topic.name = tp.topic();
        topic.partitions.add(tp.partition());
        x.topics.add(topic);
        req.transactions.add(x);
        return requests.send(st, leader[0], ApiKeys.ADD_PARTITIONS_TO_TXN, (short) 5, req).map(m -> {
            AddPartitionsToTxnResponseData r = (AddPartitionsToTxnResponseData) m;
            if (r.errorCode != TxnErrors.NONE) {
                return r.errorCode;
            }
            for (AddPartitionsToTxnResponseData.AddPartitionsToTxnResult tr : r.resultsByTransaction) {
                for (AddPartitionsToTxnResponseData.AddPartitionsToTxnTopicResult top : tr.topicResults) {
                    for (AddPartitionsToTxnResponseData.AddPartitionsToTxnPartitionResult pr : top.resultsByPartition) {
                        if (top.name.equals(tp.topic()) && pr.partitionIndex == tp.partition()) {
                            return pr.partitionErrorCode;
                        }
                    }
                }
            }
            return TxnErrors.UNKNOWN_SERVER_ERROR; // an answer without our partition
        }).recover(f -> {
            LOG.log(System.Logger.Level.DEBUG, () -> "AddPartitionsToTxn for " + txnId + " to node " + leader[0]
                + " failed: " + f);
            return TxnErrors.COORDINATOR_NOT_AVAILABLE;
        });
    }

    // ------------------------------------------------------------------ FindCoordinator (key type 1)

    Promise<ProtocolMessage> findCoordinator(ShardState st, FindCoordinatorRequestData req, short version,
                                             String listener) {
        List<String> keys = version >= 4 ? req.coordinatorKeys : List.of(req.key == null ? "" : req.key);
        return stateTopic(st).recover(f -> null).map(t -> {
            FindCoordinatorResponseData r = new FindCoordinatorResponseData();
            for (String key : keys) {
                FindCoordinatorResponseData.Coordinator c = new FindCoordinatorResponseData.Coordinator();
                c.key = key;
                c.errorMessage = null;
                c.nodeId = -1;
                c.host = "";
                c.port = -1;
                if (key == null || key.isEmpty()) {
                    c.errorCode = TxnErrors.INVALID_REQUEST;
                    c.errorMessage = "a transactional id is not empty";
                } else if (t == null) {
                    c.errorCode = TxnErrors.COORDINATOR_NOT_AVAILABLE;
                    c.errorMessage = "the " + TxnCoordinator.TOPIC + " topic could not be created";
                } else {
                    // The coordinator of a transactional id is the leader of its partition.
                    int p = TxnConfig.partitionFor(key, t.partitions());
                    int[] leader = st.leaders.get(t.partition(p).groupId());
                    MetadataResponseData.MetadataResponseBroker b = null;
                    if (leader != null && leader[0] >= 0) {
                        for (MetadataResponseData.MetadataResponseBroker mb : broker.handlers().brokers(st, listener)) {
                            if (mb.nodeId == leader[0]) {
                                b = mb;
                            }
                        }
                    }
                    if (b == null) {
                        c.errorCode = TxnErrors.COORDINATOR_NOT_AVAILABLE;
                        c.errorMessage = TxnCoordinator.TOPIC + "-" + p + " has no known leader yet";
                    } else {
                        c.nodeId = b.nodeId;
                        c.host = b.host;
                        c.port = b.port;
                    }
                }
                r.coordinators.add(c);
            }
            if (version < 4) {
                FindCoordinatorResponseData.Coordinator c = r.coordinators.get(0);
                r.errorCode = c.errorCode;
                r.errorMessage = c.errorMessage;
                r.nodeId = c.nodeId;
                r.host = c.host;
                r.port = c.port;
                r.coordinators.clear();
            }
            return r;
        });
    }

    // ------------------------------------------------------------------ InitProducerId

    /** InitProducerId: without a transactional id a fresh producer id at epoch 0; with one, its coordinator's. */
    Promise<ProtocolMessage> initProducerId(ShardState st, InitProducerIdRequestData req, short version) {
        InitProducerIdResponseData r = new InitProducerIdResponseData();
        r.producerId = -1;
        r.producerEpoch = -1;
        if (version >= 3 && (req.producerId < 0) != (req.producerEpoch < 0)) {
            r.errorCode = TxnErrors.INVALID_REQUEST;
            return Promise.completed(r);
        }
        if (req.transactionalId == null) {
            return st.txn.producerIds.next().map(id -> {
                r.producerId = id;
                r.producerEpoch = 0;
                return (ProtocolMessage) r;
            }).recover(f -> {
                r.errorCode = TxnErrors.COORDINATOR_LOAD_IN_PROGRESS;
                return r;
            });
        }
        if (req.transactionalId.isEmpty()) {
            r.errorCode = TxnErrors.INVALID_REQUEST;
            return Promise.completed(r);
        }
        String id = req.transactionalId;
        long pid = version >= 3 ? req.producerId : -1;
        short epoch = version >= 3 ? req.producerEpoch : -1;
        return onCoordinator(st, id, true,
            (c, p) -> c.initProducerId(p, id, req.transactionTimeoutMs, pid, epoch), TxnHandlers::error)
            .map(reply -> {
                r.errorCode = fenced(reply.error(), version, 4);
                if (reply.error() == TxnErrors.NONE) {
                    r.producerId = reply.producerId();
                    r.producerEpoch = reply.producerEpoch();
                }
                return r;
            });
    }

    private static TxnStateMachine.Reply error(short code) {
        return new TxnStateMachine.Reply(null, code, -1, (short) -1);
    }

    /** PRODUCER_FENCED for versions that know it, else INVALID_PRODUCER_EPOCH (as Kafka answers them). */
    private static short fenced(short code, short version, int fencedFrom) {
        return code == TxnErrors.PRODUCER_FENCED && version < fencedFrom ? TxnErrors.INVALID_PRODUCER_EPOCH : code;
    }

    // ------------------------------------------------------------------ AddPartitionsToTxn

    private Promise<ProtocolMessage> addPartitions(ShardState st, AddPartitionsToTxnRequestData req, short version) {
        AddPartitionsToTxnResponseData r = new AddPartitionsToTxnResponseData();
        if (version < 4) {
            AddPartitionsToTxnRequestData.AddPartitionsToTxnTransaction t =
                new AddPartitionsToTxnRequestData.AddPartitionsToTxnTransaction();
            t.transactionalId = req.v3AndBelowTransactionalId;
            t.producerId = req.v3AndBelowProducerId;
            t.producerEpoch = req.v3AndBelowProducerEpoch;
            t.topics = req.v3AndBelowTopics;
            return addOne(st, t, version).map(results -> {
                r.resultsByTopicV3AndBelow = results;
                return r;
            });
        }
        List<Promise<Object>> all = new ArrayList<>();
        Set<String> seen = new LinkedHashSet<>();
        for (AddPartitionsToTxnRequestData.AddPartitionsToTxnTransaction t : req.transactions) {
            AddPartitionsToTxnResponseData.AddPartitionsToTxnResult tr = new AddPartitionsToTxnResponseData.AddPartitionsToTxnResult();
            tr.transactionalId = t.transactionalId;
            r.resultsByTransaction.add(tr);
            if (!seen.add(t.transactionalId)) {
                tr.topicResults = results(t.topics, tp -> TxnErrors.INVALID_REQUEST);
                continue;
            }
            all.add(addOne(st, t, version).map(results -> {
                tr.topicResults = results;
                return null;
            }));
        }
        return Promise.whenAllSettled(all).map(x -> r);
    }

    /** One transaction of an AddPartitionsToTxn: its per-topic results. */
    private Promise<List<AddPartitionsToTxnResponseData.AddPartitionsToTxnTopicResult>> addOne(
        ShardState st, AddPartitionsToTxnRequestData.AddPartitionsToTxnTransaction t, short version) {
        List<TxnPartition> partitions = new ArrayList<>();
        Map<TxnPartition, Short> unknown = new LinkedHashMap<>();
        for (AddPartitionsToTxnRequestData.AddPartitionsToTxnTopic topic : t.topics) {
            TopicTable.Topic known = st.topics.get(topic.name);
            for (int p : topic.partitions) {
                TxnPartition tp = new TxnPartition(topic.name, p);
                partitions.add(tp);
                if (known == null || p < 0 || p >= known.partitions()) {
                    unknown.put(tp, TxnErrors.UNKNOWN_TOPIC_OR_PARTITION);
                }
            }
        }
        if (!unknown.isEmpty()) {
            // Kafka: the unknown partitions say so, the others were not attempted.
            return Promise.completed(results(t.topics, tp -> unknown.getOrDefault(tp, TxnErrors.OPERATION_NOT_ATTEMPTED)));
        }
        String id = t.transactionalId;
        if (id == null || id.isEmpty()) {
            return Promise.completed(results(t.topics, tp -> TxnErrors.INVALID_REQUEST));
        }
        if (version >= 4 && t.verifyOnly) {
            return onCoordinator(st, id, false, (c, p) -> Promise.completed(c.verify(p, id, t.producerId,
                t.producerEpoch, partitions)), code -> (Object) new TxnCoordinator.Unavailable(code, null))
                .map(o -> {
                    if (o instanceof TxnCoordinator.Unavailable u) {
                        return results(t.topics, tp -> u.code());
                    }
                    @SuppressWarnings("unchecked")
                    Map<TxnPartition, Short> codes = (Map<TxnPartition, Short>) o;
                    return results(t.topics, tp -> abortable(codes.getOrDefault(tp, TxnErrors.UNKNOWN_SERVER_ERROR),
                        version));
                });
        }
        // From a client (v0-3) the first transaction version; from a leader adding (v4+, KIP-890 part 2) the second.
        boolean tv2 = version >= 4;
        return onCoordinator(st, id, true, (c, p) -> c.addPartitions(p, id, t.producerId, t.producerEpoch,
            partitions, tv2), TxnHandlers::error)
            .map(reply -> results(t.topics, tp -> abortable(fenced(reply.error(), version, 2), version)));
    }

    private static short abortable(short code, short version) {
        return code == TxnErrors.TRANSACTION_ABORTABLE && version < 5 ? TxnErrors.INVALID_TXN_STATE : code;
    }

    private static List<AddPartitionsToTxnResponseData.AddPartitionsToTxnTopicResult> results(
        List<AddPartitionsToTxnRequestData.AddPartitionsToTxnTopic> topics, Function<TxnPartition, Short> code) {
        List<AddPartitionsToTxnResponseData.AddPartitionsToTxnTopicResult> out = new ArrayList<>();
        for (AddPartitionsToTxnRequestData.AddPartitionsToTxnTopic topic : topics) {
            AddPartitionsToTxnResponseData.AddPartitionsToTxnTopicResult tr =
                new AddPartitionsToTxnResponseData.AddPartitionsToTxnTopicResult();
            tr.name = topic.name;
            for (int p : topic.partitions) {
                AddPartitionsToTxnResponseData.AddPartitionsToTxnPartitionResult pr =
                    new AddPartitionsToTxnResponseData.AddPartitionsToTxnPartitionResult();
                pr.partitionIndex = p;
                pr.partitionErrorCode = code.apply(new TxnPartition(topic.name, p));
                tr.resultsByPartition.add(pr);
            }
            out.add(tr);
        }
        return out;
    }

    // ------------------------------------------------------------------ AddOffsetsToTxn

    private Promise<ProtocolMessage> addOffsets(ShardState st, AddOffsetsToTxnRequestData req, short version) {
        AddOffsetsToTxnResponseData r = new AddOffsetsToTxnResponseData();
        if (req.transactionalId == null || req.transactionalId.isEmpty() || req.groupId == null) {
            r.errorCode = TxnErrors.INVALID_REQUEST;
            return Promise.completed(r);
        }
        // The group's offsets partition joins the transaction, as the group coordinator places the group.
        TopicTable.Topic offsets = st.topics.get(GroupCoordinator.OFFSETS_TOPIC);
        int n = offsets != null ? offsets.partitions() : broker.config().offsetsTopicPartitions();
        TxnPartition tp = new TxnPartition(GroupCoordinator.OFFSETS_TOPIC, GroupCoordinator.partitionFor(req.groupId, n));
        String id = req.transactionalId;
        return onCoordinator(st, id, true, (c, p) -> c.addPartitions(p, id, req.producerId, req.producerEpoch,
            List.of(tp), false), TxnHandlers::error).map(reply -> {
                r.errorCode = fenced(reply.error(), version, 2);
                return r;
            });
    }

    // ------------------------------------------------------------------ EndTxn

    private Promise<ProtocolMessage> endTxn(ShardState st, EndTxnRequestData req, short version) {
        EndTxnResponseData r = new EndTxnResponseData();
        if (req.transactionalId == null || req.transactionalId.isEmpty()) {
            r.errorCode = TxnErrors.INVALID_REQUEST;
            return Promise.completed(r);
        }
        String id = req.transactionalId;
        boolean tv2 = version >= 5;
        return onCoordinator(st, id, true, (c, p) -> c.endTxn(p, id, req.producerId, req.producerEpoch,
            req.committed, tv2), TxnHandlers::error).map(reply -> {
                r.errorCode = fenced(reply.error(), version, 2);
                if (reply.error() == TxnErrors.NONE && tv2) {
                    r.producerId = reply.producerId();
                    r.producerEpoch = reply.producerEpoch();
                }
                return r;
            });
    }

    // ------------------------------------------------------------------ DescribeTransactions, ListTransactions

    private Promise<ProtocolMessage> describe(ShardState st, DescribeTransactionsRequestData req) {
        DescribeTransactionsResponseData r = new DescribeTransactionsResponseData();
        List<Promise<Object>> all = new ArrayList<>();
        for (String id : req.transactionalIds) {
            DescribeTransactionsResponseData.TransactionState ts = new DescribeTransactionsResponseData.TransactionState();
            ts.transactionalId = id;
            ts.transactionStartTimeMs = -1;
            ts.producerId = -1;
            ts.producerEpoch = -1;
            r.transactionStates.add(ts);
            if (id == null || id.isEmpty()) {
                ts.errorCode = TxnErrors.INVALID_REQUEST;
                continue;
            }
            all.add(onCoordinator(st, id, false, (c, p) -> Promise.completed(c.describe(p, id)),
                code -> (Object) new TxnCoordinator.Unavailable(code, null)).map(o -> {
                    if (o instanceof TxnCoordinator.Unavailable u) {
                        ts.errorCode = u.code();
                    } else if (o == null) {
                        ts.errorCode = TxnErrors.TRANSACTIONAL_ID_NOT_FOUND;
                    } else {
                        TxnStateMachine.Description d = (TxnStateMachine.Description) o;
                        ts.transactionState = d.state();
                        ts.transactionTimeoutMs = d.timeoutMs();
                        ts.transactionStartTimeMs = d.startMs();
                        ts.producerId = d.producerId();
                        ts.producerEpoch = d.producerEpoch();
                        Map<String, DescribeTransactionsResponseData.TopicData> topics = new LinkedHashMap<>();
                        for (TxnPartition tp : d.partitions()) {
                            topics.computeIfAbsent(tp.topic(), n -> {
                                DescribeTransactionsResponseData.TopicData td = new DescribeTransactionsResponseData.TopicData();
                                td.topic = n;
                                ts.topics.add(td);
                                return td;
                            }).partitions.add(tp.partition());
                        }
                    }
                    return null;
                }));
        }
        return Promise.whenAllSettled(all).map(x -> r);
    }

    private Promise<ProtocolMessage> list(ShardState st, ListTransactionsRequestData req) {
        ListTransactionsResponseData r = new ListTransactionsResponseData();
        List<TxnState> states = new ArrayList<>();
        boolean anyState = req.stateFilters.isEmpty();
        for (String s : req.stateFilters) {
            TxnState state = TxnState.fromName(s);
            if (state == null) {
                r.unknownStateFilters.add(s);
            } else {
                states.add(state);
            }
        }
        Pattern pattern = null;
        if (req.transactionalIdPattern != null && !req.transactionalIdPattern.isEmpty()) {
            try {
                pattern = Pattern.compile(req.transactionalIdPattern);
            } catch (PatternSyntaxException e) {
                r.errorCode = TxnErrors.INVALID_REGULAR_EXPRESSION;
                return Promise.completed(r);
            }
        }
        if (!anyState && states.isEmpty()) {
            return Promise.completed(r); // only unknown states were asked for: nothing matches
        }
        List<Long> pids = List.copyOf(req.producerIdFilters);
        long duration = req.durationFilter;
        Pattern p = pattern;
        List<Promise<TxnCoordinator.Listed>> shards = new ArrayList<>();
        for (int i = 0; i < broker.shardCount(); i++) {
            shards.add(st.shard.submitTo(i, s -> broker.state(s.id()).txn.list(states, pids, duration, p)));
        }
        return Promise.whenAll(shards).map(all -> {
            for (TxnCoordinator.Listed l : all) {
                if (l.loading()) {
                    r.errorCode = TxnErrors.COORDINATOR_LOAD_IN_PROGRESS;
                }
                for (TxnStateMachine.Listing x : l.listings()) {
                    ListTransactionsResponseData.TransactionState ts = new ListTransactionsResponseData.TransactionState();
                    ts.transactionalId = x.transactionalId();
                    ts.producerId = x.producerId();
                    ts.transactionState = x.state();
                    r.transactionStates.add(ts);
                }
            }
            if (r.errorCode != TxnErrors.NONE) {
                r.transactionStates.clear();
            }
            return (ProtocolMessage) r;
        });
    }
}
