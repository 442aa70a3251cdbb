package dev.isthmus.gateway.auth;

import java.util.LinkedHashSet;
import java.util.Set;

/**
 * How requests are authorized, from the broker's start-up configuration. Immutable.
 *
 * @param enabled                     whether ACLs are enforced (Kafka's {@code authorizer.class.name} naming
 *                                    {@code StandardAuthorizer}; {@code --authorizer acl}). When off, every request
 *                                    is allowed and the ACL APIs answer SECURITY_DISABLED, as Kafka without an
 *                                    authorizer
 * @param superUsers                  principals ({@code User:admin}) allowed everything ({@code super.users},
 *                                    semicolon-separated as in Kafka)
 * @param allowEveryoneIfNoAclFound   allow a request on a resource no ACL names at all
 *                                    ({@code allow.everyone.if.no.acl.found}, default false)
 */
public record AuthorizerConfig(boolean enabled, Set<String> superUsers, boolean allowEveryoneIfNoAclFound) {
    /** No authorizer: everything is allowed. */
    public static final AuthorizerConfig OFF = new AuthorizerConfig(false, Set.of(), false);

    /** The authorizer class names Kafka users write (KRaft's, and ZooKeeper-era's that 4.0 removed). */
    public static final Set<String> KAFKA_CLASS_NAMES = Set.of("org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "kafka.security.authorizer.AclAuthorizer", "kafka.security.auth.SimpleAclAuthorizer");

    public AuthorizerConfig {
        superUsers = Set.copyOf(superUsers);
        for (String p : superUsers) {
            String bad = principalProblem(p);
            if (bad != null) {
                throw new IllegalArgumentException("super.users: " + bad);
            }
        }
    }

    public AuthorizerConfig withEnabled(boolean v) {
        return new AuthorizerConfig(v, superUsers, allowEveryoneIfNoAclFound);
    }

    public AuthorizerConfig withSuperUsers(Set<String> v) {
        return new AuthorizerConfig(enabled, v, allowEveryoneIfNoAclFound);
    }

    public AuthorizerConfig withAllowEveryoneIfNoAclFound(boolean v) {
        return new AuthorizerConfig(enabled, superUsers, v);
    }

    /**
     * Whether an authorizer setting turns ACLs on: {@code acl}, {@code standard} or one of Kafka's class names
     * ({@link #KAFKA_CLASS_NAMES}) do; empty or {@code none} do not.
     *
     * @throws IllegalArgumentException for any other value, naming the accepted ones
     */
    public static boolean parseAuthorizer(String option, String value) {
        String v = value.strip();
        if (v.isEmpty() || v.equalsIgnoreCase("none")) {
            return false;
        }
        if (v.equalsIgnoreCase("acl") || v.equalsIgnoreCase("standard") || KAFKA_CLASS_NAMES.contains(v)) {
            return true;
        }
        throw new IllegalArgumentException("--" + option + " '" + value + "' is not an authorizer this broker has: use"
            + " org.apache.kafka.metadata.authorizer.StandardAuthorizer (or 'acl') for Kafka's ACLs, or none");
    }

    /** {@code User:admin;User:broker} (Kafka's separator is the semicolon) as a set of principals. */
    public static Set<String> parseSuperUsers(String value) {
        Set<String> out = new LinkedHashSet<>();
        for (String s : value.split(";")) {
            String p = s.strip();
            if (p.isEmpty()) {
                continue;
            }
            String bad = principalProblem(p);
            if (bad != null) {
                throw new IllegalArgumentException("super.users: " + bad);
            }
            out.add(p);
        }
        return out;
    }

    /** Null for a {@code Type:name} principal, else why it is not one. */
    static String principalProblem(String p) {
        int colon = p.indexOf(':');
        if (colon <= 0 || colon == p.length() - 1) {
            return "'" + p + "' is not a principal of the form Type:name (User:alice); separate several with ';'";
        }
        return null;
    }
}
