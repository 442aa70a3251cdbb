package dev.isthmus.gateway.cluster;

/**
 * Selects ACL bindings, as Kafka's {@code AclBindingFilter} (DescribeAcls and DeleteAcls): a null string
 * matches any value, {@link AclBinding#RESOURCE_ANY}, {@link AclBinding#OP_ANY} and
 * {@link AclBinding#PERMISSION_ANY} match any code. The pattern type selects how the name is compared:
 * LITERAL or PREFIXED match bindings of that type with exactly the name; ANY matches bindings of any type with
 * exactly the name; MATCH matches every binding that would apply to a resource of that literal name (the
 * literal name, the {@code *} wildcard, and every prefix of it). Immutable.
 */
public record AclFilter(byte resourceType, String resourceName, byte patternType, String principal, String host,
                        byte operation, byte permission) {

    /** Null when this filter can select bindings, else why not (UNKNOWN codes: Kafka answers INVALID_REQUEST). */
    public String problem() {
        if (resourceType < AclBinding.RESOURCE_ANY || resourceType > AclBinding.USER) {
            return "Invalid resourceType " + resourceType + " in the filter";
        }
        if (patternType < AclBinding.PATTERN_ANY || patternType > AclBinding.PREFIXED) {
            return "Invalid patternType " + patternType + " in the filter";
        }
        if (operation < AclBinding.OP_ANY || operation > AclBinding.DESCRIBE_TOKENS) {
            return "Invalid operation " + operation + " in the filter";
        }
        if (permission < AclBinding.PERMISSION_ANY || permission > AclBinding.ALLOW) {
            return "Invalid permissionType " + permission + " in the filter";
        }
        return null;
    }

    /** Kafka's {@code AclBindingFilter.matches}: the resource pattern filter, then the entry filter. */
    public boolean matches(AclBinding b) {
        return matchesPattern(b) && (principal == null || principal.equals(b.principal()))
            && (host == null || host.equals(b.host()))
            && (operation == AclBinding.OP_ANY || operation == b.operation())
            && (permission == AclBinding.PERMISSION_ANY || permission == b.permission());
    }

    private boolean matchesPattern(AclBinding b) {
        if (resourceType != AclBinding.RESOURCE_ANY && resourceType != b.resourceType()) {
            return false;
        }
        if (patternType != AclBinding.PATTERN_ANY && patternType != AclBinding.MATCH && patternType != b.patternType()) {
            return false;
        }
        if (resourceName == null) {
            return true;
        }
        if (patternType == AclBinding.PATTERN_ANY || patternType == b.patternType()) {
            return resourceName.equals(b.resourceName());
        }
        // MATCH: what applies to the literal resource named resourceName.
        return b.patternType() == AclBinding.LITERAL
            ? resourceName.equals(b.resourceName()) || b.resourceName().equals(AclBinding.WILDCARD)
            : resourceName.startsWith(b.resourceName());
    }
}
