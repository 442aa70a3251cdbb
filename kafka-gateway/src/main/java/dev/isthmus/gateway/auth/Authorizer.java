package dev.isthmus.gateway.auth;

import dev.isthmus.gateway.cluster.AclBinding;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Kafka's ACL decision ({@code StandardAuthorizerData.authorize}) over an immutable index of the cluster's ACL
 * bindings.
 *
 * <p>Lifecycle and threads: shard 0 builds one instance from each controller state whose ACLs changed
 * ({@link #of}) and hands the same instance to every shard with the topic table; a shard reads only the instance
 * it was handed, so a check takes no lock and makes no cross-shard call. The instance never changes after
 * construction (safe publication through the cross-shard queue), and it is dropped when the next one arrives.
 *
 * <p>The decision, for principal P from host H asking operation O on resource (type T, name N):
 * <ol>
 *   <li>a super user ({@code super.users}) is allowed;</li>
 *   <li>the bindings that apply to the resource are those of type T that are LITERAL N, LITERAL {@code *}, or
 *       PREFIXED by any prefix of N; of those, the ones for P or {@code User:*}, from H or {@code *}, count;</li>
 *   <li>a counting DENY of O or ALL denies (DENY wins);</li>
 *   <li>else a counting ALLOW of O or ALL allows, and so do the implied ones: READ, WRITE, DELETE or ALTER allow
 *       DESCRIBE, ALTER_CONFIGS allows DESCRIBE_CONFIGS (ALLOW only: a DENY of READ does not deny DESCRIBE);</li>
 *   <li>else, when no binding at all applies to the resource (whatever its principal, host or operation),
 *       {@code allow.everyone.if.no.acl.found} decides; else the request is denied.</li>
 * </ol>
 */
public final class Authorizer {
    /** Allows everything: no authorizer is configured. */
    public static final Authorizer ALLOW_ALL = new Authorizer(null, AuthorizerConfig.OFF, List.of());

    private static final AclBinding[] NONE = new AclBinding[0];

    private final AuthorizerConfig config;
    /** The bindings this index was built from (identity: to skip rebuilding an unchanged set). */
    private final Collection<AclBinding> source;
    /** Per resource type (index = the type's code): LITERAL bindings by name, {@code *} included. */
    private final Map<String, AclBinding[]>[] literal;
    /** Per resource type: PREFIXED bindings by prefix. */
    private final Map<String, AclBinding[]>[] prefixed;
    /** Per resource type: the lengths of its prefixes, ascending, so a check looks up only lengths that exist. */
    private final int[][] prefixLengths;

    @SuppressWarnings("unchecked")
    private Authorizer(Collection<AclBinding> source, AuthorizerConfig config, Collection<AclBinding> acls) {
        this.config = config;
        this.source = source;
        this.literal = new Map[AclBinding.USER + 1];
        this.prefixed = new Map[AclBinding.USER + 1];
        this.prefixLengths = new int[AclBinding.USER + 1][];
        Map<String, List<AclBinding>>[] lit = new Map[AclBinding.USER + 1];
        Map<String, List<AclBinding>>[] pre = new Map[AclBinding.USER + 1];
        for (int t = 0; t <= AclBinding.USER; t++) {
            lit[t] = new HashMap<>();
            pre[t] = new HashMap<>();
        }
        for (AclBinding b : acls) {
            if (b.resourceType() < 0 || b.resourceType() > AclBinding.USER) {
                continue; // not stored by the controller (validated there); never applies
            }
            (b.patternType() == AclBinding.PREFIXED ? pre : lit)[b.resourceType()]
                .computeIfAbsent(b.resourceName(), k -> new ArrayList<>()).add(b);
        }
        for (int t = 0; t <= AclBinding.USER; t++) {
            literal[t] = freeze(lit[t]);
            prefixed[t] = freeze(pre[t]);
            TreeSet<Integer> lengths = new TreeSet<>();
            pre[t].keySet().forEach(k -> lengths.add(k.length()));
            prefixLengths[t] = lengths.stream().mapToInt(Integer::intValue).toArray();
        }
    }

    private static Map<String, AclBinding[]> freeze(Map<String, List<AclBinding>> m) {
        Map<String, AclBinding[]> out = new HashMap<>(Math.max(4, m.size() * 2));
        m.forEach((k, v) -> out.put(k, v.toArray(NONE)));
        return out;
    }

    /** The authorizer for {@code acls} under {@code config}; {@link #ALLOW_ALL} when the config turns ACLs off. */
    public static Authorizer of(AuthorizerConfig config, Collection<AclBinding> acls) {
        return config.enabled() ? new Authorizer(acls, config, acls) : ALLOW_ALL;
    }

    /** This instance when it was built from the very same ACL set, else a new one (shard 0, per controller state). */
    public Authorizer refreshed(AuthorizerConfig config, Collection<AclBinding> acls) {
        if (!config.enabled()) {
            return ALLOW_ALL;
        }
        return acls == source && config.equals(this.config) ? this : new Authorizer(acls, config, acls);
    }

    /** Whether ACLs are enforced (an authorizer is configured). */
    public boolean enabled() {
        return config.enabled();
    }

    public boolean isSuperUser(String principal) {
        return config.superUsers().contains(principal);
    }

    /**
     * Kafka's decision (see the class comment) for {@code principal} from {@code host} (an IP address string)
     * asking {@code operation} on the resource of {@code resourceType} named {@code name}.
     */
    public boolean authorize(String principal, String host, byte operation, byte resourceType, String name) {
        if (!config.enabled() || isSuperUser(principal)) {
            return true;
        }
        if (resourceType < 0 || resourceType > AclBinding.USER || name == null) {
            return false;
        }
        int verdict = 0; // bit 0: some binding names the resource; bit 1: allowed
        verdict = check(literal[resourceType].get(name), principal, host, operation, verdict);
        if (verdict < 0) {
            return false;
        }
        if (!name.equals(AclBinding.WILDCARD)) {
            verdict = check(literal[resourceType].get(AclBinding.WILDCARD), principal, host, operation, verdict);
            if (verdict < 0) {
                return false;
            }
        }
        int[] lengths = prefixLengths[resourceType];
        Map<String, AclBinding[]> pre = prefixed[resourceType];
        for (int len : lengths) {
            if (len > name.length()) {
                break;
            }
            verdict = check(pre.get(name.substring(0, len)), principal, host, operation, verdict);
            if (verdict < 0) {
                return false;
            }
        }
        if ((verdict & 2) != 0) {
            return true;
        }
        return (verdict & 1) == 0 && config.allowEveryoneIfNoAclFound();
    }

    /** Folds {@code bindings} into {@code verdict}; -1 when one of them denies. */
    private static int check(AclBinding[] bindings, String principal, String host, byte op, int verdict) {
        if (bindings == null) {
            return verdict;
        }
        verdict |= 1;
        for (AclBinding b : bindings) {
            if (!matchesPrincipal(b, principal) || !matchesHost(b, host)) {
                continue;
            }
            if (b.permission() == AclBinding.DENY) {
                if (b.operation() == op || b.operation() == AclBinding.ALL) {
                    return -1;
                }
            } else if (allows(b.operation(), op)) {
                verdict |= 2;
            }
        }
        return verdict;
    }

    private static boolean matchesPrincipal(AclBinding b, String principal) {
        return b.principal().equals(principal) || b.principal().equals(AclBinding.WILDCARD_PRINCIPAL);
    }

    private static boolean matchesHost(AclBinding b, String host) {
        return b.host().equals(AclBinding.WILDCARD) || b.host().equals(host);
    }

    /** Whether an ALLOW of {@code granted} allows {@code asked}: itself, ALL, and Kafka's implied operations. */
    static boolean allows(byte granted, byte asked) {
        if (granted == asked || granted == AclBinding.ALL) {
            return true;
        }
        if (asked == AclBinding.DESCRIBE) {
            return granted == AclBinding.READ || granted == AclBinding.WRITE || granted == AclBinding.DELETE
                || granted == AclBinding.ALTER;
        }
        return asked == AclBinding.DESCRIBE_CONFIGS && granted == AclBinding.ALTER_CONFIGS;
    }

    /**
     * Kafka's {@code authorizeByResourceType} (KIP-679: an idempotent producer needs IDEMPOTENT_WRITE on the
     * cluster or WRITE on some topic): whether {@code operation} is allowed on at least one resource of the type.
     * True for a super user or when a resource no binding names would be allowed; false when a LITERAL {@code *}
     * DENY applies; else true when some ALLOW (of the operation or ALL) for the principal is neither a literal
     * name denied as such nor covered by a PREFIXED DENY.
     */
    public boolean authorizeAny(String principal, String host, byte operation, byte resourceType) {
        if (!config.enabled() || isSuperUser(principal)) {
            return true;
        }
        if (authorize(principal, host, operation, resourceType, "hardcode")) {
            return true; // Kafka's own probe: wildcard allows and allow.everyone.if.no.acl.found
        }
        List<String> denyLiterals = new ArrayList<>();
        List<String> denyPrefixes = new ArrayList<>();
        List<String> allowLiterals = new ArrayList<>();
        List<String> allowPrefixes = new ArrayList<>();
        collect(literal[resourceType], principal, host, operation, denyLiterals, allowLiterals);
        collect(prefixed[resourceType], principal, host, operation, denyPrefixes, allowPrefixes);
        if (denyLiterals.contains(AclBinding.WILDCARD)) {
            return false;
        }
        for (String p : allowPrefixes) {
            if (!dominated(denyPrefixes, p)) {
                return true;
            }
        }
        for (String l : allowLiterals) {
            if (l.equals(AclBinding.WILDCARD) || denyLiterals.contains(l) || dominated(denyPrefixes, l)) {
                continue;
            }
            return true;
        }
        return false;
    }

    private static void collect(Map<String, AclBinding[]> m, String principal, String host, byte op, List<String> deny,
                                List<String> allow) {
        for (AclBinding[] bs : m.values()) {
            for (AclBinding b : bs) {
                if (matchesPrincipal(b, principal) && matchesHost(b, host)
                    && (b.operation() == op || b.operation() == AclBinding.ALL)) {
                    (b.permission() == AclBinding.DENY ? deny : allow).add(b.resourceName());
                }
            }
        }
    }

    private static boolean dominated(List<String> denyPrefixes, String name) {
        for (String d : denyPrefixes) {
            if (name.startsWith(d)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Kafka's "authorized operations" bitfield (Metadata v8+, DescribeGroups v3+, DescribeCluster): bit n is set
     * when operation code n of {@code supported} is allowed on the resource.
     */
    public int authorizedOperations(String principal, String host, byte resourceType, String name, byte[] supported) {
        int bits = 0;
        for (byte op : supported) {
            if (authorize(principal, host, op, resourceType, name)) {
                bits |= 1 << op;
            }
        }
        return bits;
    }

    /** The operations Kafka reports for a topic, a group and the cluster. */
    public static final byte[] TOPIC_OPERATIONS = {AclBinding.READ, AclBinding.WRITE, AclBinding.CREATE,
        AclBinding.DELETE, AclBinding.ALTER, AclBinding.DESCRIBE, AclBinding.DESCRIBE_CONFIGS, AclBinding.ALTER_CONFIGS};
    public static final byte[] GROUP_OPERATIONS = {AclBinding.READ, AclBinding.DESCRIBE, AclBinding.DELETE};
    public static final byte[] CLUSTER_OPERATIONS = {AclBinding.CREATE, AclBinding.CLUSTER_ACTION,
        AclBinding.DESCRIBE_CONFIGS, AclBinding.ALTER_CONFIGS, AclBinding.IDEMPOTENT_WRITE, AclBinding.ALTER,
        AclBinding.DESCRIBE};

    @Override
    public String toString() {
        return config.enabled() ? "Authorizer[" + (source == null ? 0 : source.size()) + " ACLs, super users "
            + config.superUsers() + "]" : "Authorizer[off]";
    }
}
