package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.message.AlterClientQuotasRequestData;
import dev.isthmus.gateway.protocol.message.AlterClientQuotasResponseData;
import dev.isthmus.gateway.protocol.message.DescribeClientQuotasRequestData;
import dev.isthmus.gateway.protocol.message.DescribeClientQuotasResponseData;
import dev.isthmus.gateway.cluster.ClientQuotaAlteration;
import dev.isthmus.gateway.cluster.ClientQuotaEntity;
import dev.isthmus.gateway.cluster.ControllerCommand;
import dev.isthmus.uring.shard.Promise;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * DescribeClientQuotas (48) and AlterClientQuotas (49), as a KRaft broker answers them (Kafka's
 * {@code ClientQuotasImage.describe} and {@code ClientQuotaControlManager}). The quotas live in the controller's
 * replicated state ({@link dev.isthmus.gateway.cluster.ClusterState#quotas()}): alterations are one controller
 * command per request, answered once every shard of this node has installed the result (so the next request on any
 * connection of this node is measured against it); describing reads the connection shard's copy. Whether the caller
 * may use these APIs (DESCRIBE_CONFIGS or ALTER_CONFIGS on the cluster) is checked before, by
 * {@link RequestAuthorization}.
 *
 * <h2>Describe's filter</h2>
 * Components per entity type ({@code user}, {@code client-id}; {@code ip} is accepted in filters and matches
 * nothing, as no ip quota can be stored): match type 0 (exact: that name), 1 (default: the default entity of that
 * type), 2 (specified: any entity with that type). Without {@code strict}, entities with further components also
 * match; with it, only entities with exactly the filtered types. No component and not strict: every entity. A bad
 * filter (an empty or repeated type, an unknown match type, a match name where none belongs) is INVALID_REQUEST
 * and an unknown entity type UNSUPPORTED_VERSION, both with Kafka's sentences.
 *
 * <h2>Alter</h2>
 * Each entry is checked alone (entity types, keys, values; Kafka's errors and sentences, INVALID_REQUEST); the valid
 * ones go to the controller together and succeed or fail together. {@code validate_only} checks and stores nothing.
 *
 * <p>One instance per broker; runs on the connection's shard.
 */
final class ClientQuotaApis {
    static final byte MATCH_EXACT = 0;
    static final byte MATCH_DEFAULT = 1;
    static final byte MATCH_SPECIFIED = 2;

    private final Broker broker;

    ClientQuotaApis(Broker broker) {
        this.broker = broker;
    }

    // ------------------------------------------------------------------ DescribeClientQuotas

    ProtocolMessage describe(ShardState st, DescribeClientQuotasRequestData req) {
        DescribeClientQuotasResponseData r = new DescribeClientQuotasResponseData();
        r.errorMessage = null;
        Map<String, String> exact = new TreeMap<>();
        Set<String> specified = new TreeSet<>();
        for (DescribeClientQuotasRequestData.ComponentData c : req.components) {
            String type = c.entityType;
            String problem = null;
            short code = ErrorCodes.INVALID_REQUEST;
            if (type == null || type.isEmpty()) {
                problem = "Invalid empty entity type.";
            } else if (exact.containsKey(type) || specified.contains(type)) {
                problem = "Entity type " + type + " cannot appear more than once in the filter.";
            } else if (!type.equals(ClientQuotaEntity.USER) && !type.equals(ClientQuotaEntity.CLIENT_ID)
                && !type.equals(ClientQuotaEntity.IP)) {
                problem = "Unsupported entity type " + type;
                code = ErrorCodes.UNSUPPORTED_VERSION;
            } else {
                switch (c.matchType) {
                    case MATCH_EXACT -> {
                        if (c.match == null) {
                            problem = "Request specified MATCH_TYPE_EXACT, but set match string to null.";
                        } else {
                            exact.put(type, c.match);
                        }
                    }
                    case MATCH_DEFAULT -> {
                        if (c.match != null) {
                            problem = "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.";
                        } else {
                            exact.put(type, null);
                        }
                    }
                    case MATCH_SPECIFIED -> {
                        if (c.match != null) {
                            problem = "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.";
                        } else {
                            specified.add(type);
                        }
                    }
                    default -> problem = "Unknown match type " + c.matchType;
                }
            }
            if (problem != null) {
                return failed(r, code, problem);
            }
        }
        boolean ip = exact.containsKey(ClientQuotaEntity.IP) || specified.contains(ClientQuotaEntity.IP);
        if (ip && (exact.size() + specified.size() > 1)) {
            return failed(r, ErrorCodes.INVALID_REQUEST, "Invalid entity filter component combination. IP filter"
                + " component should not be used with user or clientId filter component.");
        }
        SortedMap<ClientQuotaEntity, SortedMap<String, Double>> quotas = st.cluster == null
            ? java.util.Collections.emptySortedMap() : st.cluster.quotas();
        if (ip) {
            return r; // no ip quota is ever stored
        }
        boolean all = exact.isEmpty() && specified.isEmpty();
        if (all && req.strict) {
            return r; // Kafka: a strict empty filter matches nothing
        }
        for (var e : quotas.entrySet()) {
            ClientQuotaEntity entity = e.getKey();
            if (!all && !matches(entity, exact, specified, req.strict)) {
                continue;
            }
            DescribeClientQuotasResponseData.EntryData entry = new DescribeClientQuotasResponseData.EntryData();
            if (entity.hasUser()) {
                entry.entity.add(entity(ClientQuotaEntity.USER, entity.user()));
            }
            if (entity.hasClientId()) {
                entry.entity.add(entity(ClientQuotaEntity.CLIENT_ID, entity.clientId()));
            }
            e.getValue().forEach((k, v) -> {
                DescribeClientQuotasResponseData.ValueData value = new DescribeClientQuotasResponseData.ValueData();
                value.key = k;
                value.value = v;
                entry.values.add(value);
            });
            r.entries.add(entry);
        }
        return r;
    }

    /** Kafka's rule: every exact (or default) component names the entity's component, every specified type is there. */
    static boolean matches(ClientQuotaEntity entity, Map<String, String> exact, Set<String> specified, boolean strict) {
        for (var x : exact.entrySet()) {
            if (!entity.has(x.getKey()) || !java.util.Objects.equals(entity.name(x.getKey()), x.getValue())) {
                return false;
            }
        }
        for (String type : specified) {
            if (!entity.has(type)) {
                return false;
            }
        }
        return !strict || entity.size() == exact.size() + specified.size();
    }

    private static DescribeClientQuotasResponseData.EntityData entity(String type, String name) {
        DescribeClientQuotasResponseData.EntityData d = new DescribeClientQuotasResponseData.EntityData();
        d.entityType = type;
        d.entityName = name;
        return d;
    }

    private static DescribeClientQuotasResponseData failed(DescribeClientQuotasResponseData r, short code, String message) {
        r.errorCode = code;
        r.errorMessage = message;
        r.entries = null;
        return r;
    }

    // ------------------------------------------------------------------ AlterClientQuotas

    Promise<ProtocolMessage> alter(ShardState st, AlterClientQuotasRequestData req) {
        AlterClientQuotasResponseData r = new AlterClientQuotasResponseData();
        List<ClientQuotaAlteration> valid = new ArrayList<>();
        List<AlterClientQuotasResponseData.EntryData> pending = new ArrayList<>();
        Set<ClientQuotaEntity> seen = new HashSet<>();
        for (AlterClientQuotasRequestData.EntryData e : req.entries) {
            AlterClientQuotasResponseData.EntryData res = new AlterClientQuotasResponseData.EntryData();
            res.errorMessage = null;
            for (AlterClientQuotasRequestData.EntityData en : e.entity) {
                AlterClientQuotasResponseData.EntityData ed = new AlterClientQuotasResponseData.EntityData();
                ed.entityType = en.entityType;
                ed.entityName = en.entityName;
                res.entity.add(ed);
            }
            r.entries.add(res);
            Object parsed = alteration(e);
            String problem = parsed instanceof String s ? s : null;
            ClientQuotaAlteration a = parsed instanceof ClientQuotaAlteration x ? x : null;
            if (a != null && !seen.add(a.entity())) {
                problem = "Ignoring duplicate entity " + a.entity();
            }
            if (problem != null) {
                res.errorCode = ErrorCodes.INVALID_REQUEST;
                res.errorMessage = problem;
                continue;
            }
            valid.add(a);
            pending.add(res);
        }
        if (valid.isEmpty() || req.validateOnly) {
            return Promise.completed(r);
        }
        return broker.aclCommand(st.shard, new ControllerCommand.AlterClientQuotas(valid)).map(outcome -> {
            if (outcome instanceof Broker.Failure f) {
                for (AlterClientQuotasResponseData.EntryData res : pending) {
                    res.errorCode = f.code();
                    res.errorMessage = f.message();
                }
            }
            return r;
        });
    }

    /** The entry as an alteration, or a sentence saying why it is not valid (Kafka's sentences). */
    static Object alteration(AlterClientQuotasRequestData.EntryData e) {
        if (e.entity.isEmpty()) {
            return "Invalid empty client quota entity";
        }
        boolean hasUser = false;
        boolean hasClient = false;
        String user = null;
        String client = null;
        for (AlterClientQuotasRequestData.EntityData en : e.entity) {
            String type = en.entityType;
            if (ClientQuotaEntity.USER.equals(type)) {
                if (hasUser) {
                    return "Invalid empty client quota entity, duplicate entity entry " + type;
                }
                hasUser = true;
                user = en.entityName;
            } else if (ClientQuotaEntity.CLIENT_ID.equals(type)) {
                if (hasClient) {
                    return "Invalid empty client quota entity, duplicate entity entry " + type;
                }
                hasClient = true;
                client = en.entityName;
            } else if (ClientQuotaEntity.IP.equals(type)) {
                return "Quotas of ip entities (connection_creation_rate) are not supported by this broker: they would"
                    + " not be enforced";
            } else {
                return "Unhandled client quota entity type: " + type;
            }
            if (en.entityName != null && en.entityName.isEmpty()) {
                return "Empty " + type + " not supported";
            }
        }
        TreeMap<String, Double> set = new TreeMap<>();
        TreeSet<String> remove = new TreeSet<>();
        ClientQuotaEntity entity = new ClientQuotaEntity(hasUser, user, hasClient, client);
        for (AlterClientQuotasRequestData.OpData op : e.ops) {
            if (set.containsKey(op.key) || remove.contains(op.key)) {
                return "Duplicate quota key " + op.key + " not updating quota for this entity " + entity;
            }
            if (op.remove) {
                remove.add(op.key);
            } else {
                String p = ClientQuotaAlteration.valueProblem(op.key, op.value);
                if (p != null) {
                    return p;
                }
                set.put(op.key, op.value);
            }
        }
        ClientQuotaAlteration a = new ClientQuotaAlteration(entity, set, remove);
        String p = a.problem();
        return p != null ? p : a;
    }
}
