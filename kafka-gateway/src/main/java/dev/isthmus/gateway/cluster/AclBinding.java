package dev.isthmus.gateway.cluster;

import java.util.Comparator;

/**
 * One access control entry bound to a resource pattern, as Kafka's {@code AclBinding}: "principal P from host H
 * is ALLOWed (or DENYed) operation O on resources of type T whose name is N (LITERAL, {@code *} for all) or
 * starts with N (PREFIXED)". The codes are Kafka's wire codes (CreateAcls/DescribeAcls/DeleteAcls), so the
 * gateway passes them through unchanged. Immutable; part of the controller's replicated {@link ClusterState}.
 *
 * <pre>
 *   wire: resourceType i8, resourceName, patternType i8, principal, host, operation i8, permission i8
 * </pre>
 */
public record AclBinding(byte resourceType, String resourceName, byte patternType, String principal, String host,
                         byte operation, byte permission) implements Comparable<AclBinding> {
    // Resource types (Kafka's ResourceType codes).
    public static final byte RESOURCE_ANY = 1;
    public static final byte TOPIC = 2;
    public static final byte GROUP = 3;
    public static final byte CLUSTER = 4;
    public static final byte TRANSACTIONAL_ID = 5;
    public static final byte DELEGATION_TOKEN = 6;
    public static final byte USER = 7;
    // Pattern types (PatternType codes): ANY and MATCH only in filters.
    public static final byte PATTERN_ANY = 1;
    public static final byte MATCH = 2;
    public static final byte LITERAL = 3;
    public static final byte PREFIXED = 4;
    // Operations (AclOperation codes).
    public static final byte OP_ANY = 1;
    public static final byte ALL = 2;
    public static final byte READ = 3;
    public static final byte WRITE = 4;
    public static final byte CREATE = 5;
    public static final byte DELETE = 6;
    public static final byte ALTER = 7;
    public static final byte DESCRIBE = 8;
    public static final byte CLUSTER_ACTION = 9;
    public static final byte DESCRIBE_CONFIGS = 10;
    public static final byte ALTER_CONFIGS = 11;
    public static final byte IDEMPOTENT_WRITE = 12;
    public static final byte CREATE_TOKENS = 13;
    public static final byte DESCRIBE_TOKENS = 14;
    // Permission types (AclPermissionType codes).
    public static final byte PERMISSION_ANY = 1;
    public static final byte DENY = 2;
    public static final byte ALLOW = 3;

    /** The one name a CLUSTER resource has. */
    public static final String CLUSTER_NAME = "kafka-cluster";
    /** A LITERAL name, principal name or host that stands for all. */
    public static final String WILDCARD = "*";
    public static final String WILDCARD_PRINCIPAL = "User:*";

    private static final Comparator<AclBinding> ORDER = Comparator.comparingInt(AclBinding::resourceType)
        .thenComparing(AclBinding::resourceName).thenComparingInt(AclBinding::patternType)
        .thenComparing(AclBinding::principal).thenComparing(AclBinding::host).thenComparingInt(AclBinding::operation)
        .thenComparingInt(AclBinding::permission);

    public AclBinding {
        if (resourceName == null || principal == null || host == null) {
            throw new IllegalArgumentException("an ACL binding needs a resource name, a principal and a host");
        }
    }

    /**
     * Null when this binding may be stored, else why not, in Kafka's words (AclControlManager.validateNewAcl and
     * AclApis): a concrete resource type, LITERAL or PREFIXED, a concrete operation and permission, a
     * {@code Type:name} principal, a host, a non-empty name, and {@code kafka-cluster} for the CLUSTER resource.
     */
    public String problem() {
        if (resourceType < TOPIC || resourceType > USER) {
            return "Invalid resourceType " + resourceType;
        }
        if (patternType != LITERAL && patternType != PREFIXED) {
            return "Invalid patternType " + patternType;
        }
        if (operation < ALL || operation > DESCRIBE_TOKENS) {
            return "Invalid operation " + operation;
        }
        if (permission != DENY && permission != ALLOW) {
            return "Invalid permissionType " + permission;
        }
        int colon = principal.indexOf(':');
        if (colon <= 0 || colon == principal.length() - 1) {
            return "Could not parse principal from `" + principal + "` (no colon is present separating the principal"
                + " type from the principal name)";
        }
        if (host.isEmpty()) {
            return "Invalid empty host";
        }
        if (resourceName.isEmpty()) {
            return "Invalid empty resource name specified";
        }
        if (resourceType == CLUSTER && !resourceName.equals(CLUSTER_NAME)) {
            return "The only valid name for the CLUSTER resource is " + CLUSTER_NAME;
        }
        return null;
    }

    void write(Wire.Writer w) {
        w.i8(resourceType).str(resourceName).i8(patternType).str(principal).str(host).i8(operation).i8(permission);
    }

    static AclBinding read(Wire.Reader r) {
        return new AclBinding((byte) r.i8(), r.str(), (byte) r.i8(), r.str(), r.str(), (byte) r.i8(), (byte) r.i8());
    }

    @Override
    public int compareTo(AclBinding o) {
        return ORDER.compare(this, o);
    }
}
