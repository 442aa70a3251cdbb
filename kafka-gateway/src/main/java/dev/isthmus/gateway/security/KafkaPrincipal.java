package dev.isthmus.gateway.security;

/**
 * Who a connection acts for, as Kafka writes it: {@code type:name}, normally {@code User:alice}. A connection
 * that did not authenticate (PLAINTEXT, or TLS without a client certificate) is {@link #ANONYMOUS}. Immutable.
 * The ACL authorizer compares principals by {@link #equals} and the wildcard {@code User:*}.
 */
public record KafkaPrincipal(String type, String name) {
    public static final String USER_TYPE = "User";
    public static final KafkaPrincipal ANONYMOUS = new KafkaPrincipal(USER_TYPE, "ANONYMOUS");

    public KafkaPrincipal {
        if (type == null || type.isEmpty() || name == null) {
            throw new IllegalArgumentException("a principal needs a type and a name");
        }
    }

    public static KafkaPrincipal user(String name) {
        return new KafkaPrincipal(USER_TYPE, name);
    }

    /** Parses {@code type:name} (the type up to the first colon). */
    public static KafkaPrincipal parse(String s) {
        int colon = s.indexOf(':');
        if (colon <= 0) {
            throw new IllegalArgumentException("principal '" + s + "' is not of the form Type:name (User:alice)");
        }
        return new KafkaPrincipal(s.substring(0, colon), s.substring(colon + 1));
    }

    @Override
    public String toString() {
        return type + ":" + name;
    }
}
