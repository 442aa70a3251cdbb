package dev.isthmus.gateway.cluster;

import java.util.Comparator;
import java.util.Objects;

/**
 * Whom a client quota applies to, as Kafka's {@code ClientQuotaEntity}: a user (the principal's name), a client id,
 * or both; each component either names one user or client id, or is the default ({@code <default>} in
 * {@code kafka-configs.sh}, a null name on the wire) that applies to every user or client id without a quota of its
 * own. Kafka's third entity type, {@code ip}, carries only {@code connection_creation_rate} (KIP-612), which this
 * broker does not enforce, so it is refused when altering ({@link ClientQuotaAlteration#problem()}).
 *
 * <p>Immutable; part of the controller's replicated {@link ClusterState}.
 *
 * <pre>
 *   wire: flags i8 (bit 0 has user, bit 1 user is the default, bit 2 has client id, bit 3 client id is the default),
 *         then the user's name if named, then the client id if named
 * </pre>
 *
 * @param hasUser     whether the entity has a user component
 * @param user        the user's name; null for the default user (or when {@code hasUser} is false)
 * @param hasClientId whether the entity has a client-id component
 * @param clientId    the client id; null for the default client id (or when {@code hasClientId} is false)
 */
public record ClientQuotaEntity(boolean hasUser, String user, boolean hasClientId, String clientId)
    implements Comparable<ClientQuotaEntity> {
    /** Kafka's entity type names (DescribeClientQuotas, AlterClientQuotas). */
    public static final String USER = "user";
    public static final String CLIENT_ID = "client-id";
    public static final String IP = "ip";

    private static final Comparator<String> NAME = Comparator.nullsFirst(Comparator.naturalOrder());
    private static final Comparator<ClientQuotaEntity> ORDER = Comparator.comparing(ClientQuotaEntity::hasUser)
        .thenComparing(ClientQuotaEntity::user, NAME).thenComparing(ClientQuotaEntity::hasClientId)
        .thenComparing(ClientQuotaEntity::clientId, NAME);

    public ClientQuotaEntity {
        if (!hasUser) {
            user = null;
        }
        if (!hasClientId) {
            clientId = null;
        }
    }

    /** The entity of one user ({@code name} null: the default user). */
    public static ClientQuotaEntity user(String name) {
        return new ClientQuotaEntity(true, name, false, null);
    }

    /** The entity of one client id ({@code name} null: the default client id). */
    public static ClientQuotaEntity clientId(String name) {
        return new ClientQuotaEntity(false, null, true, name);
    }

    /** The entity of one user's client id (either null: that component's default). */
    public static ClientQuotaEntity userClientId(String user, String clientId) {
        return new ClientQuotaEntity(true, user, true, clientId);
    }

    /** How many components the entity has (1 or 2). */
    public int size() {
        return (hasUser ? 1 : 0) + (hasClientId ? 1 : 0);
    }

    /** Whether the entity has a component of {@code type} ({@link #USER} or {@link #CLIENT_ID}). */
    public boolean has(String type) {
        return USER.equals(type) ? hasUser : CLIENT_ID.equals(type) && hasClientId;
    }

    /** The name of the component of {@code type} (null: the default); only when {@link #has} it. */
    public String name(String type) {
        return USER.equals(type) ? user : clientId;
    }

    /** Why this entity cannot hold quotas, or null (Kafka's ClientQuotaControlManager messages). */
    public String problem() {
        if (!hasUser && !hasClientId) {
            return "Invalid empty client quota entity";
        }
        if (hasUser && user != null && user.isEmpty()) {
            return "Empty user not supported";
        }
        if (hasClientId && clientId != null && clientId.isEmpty()) {
            return "Empty client-id not supported";
        }
        return null;
    }

    @Override
    public int compareTo(ClientQuotaEntity o) {
        return ORDER.compare(this, o);
    }

    void write(Wire.Writer w) {
        int flags = (hasUser ? 1 : 0) | (hasUser && user == null ? 2 : 0) | (hasClientId ? 4 : 0)
            | (hasClientId && clientId == null ? 8 : 0);
        w.i8(flags);
        if (hasUser && user != null) {
            w.str(user);
        }
        if (hasClientId && clientId != null) {
            w.str(clientId);
        }
    }

    static ClientQuotaEntity read(Wire.Reader r) {
        int flags = r.i8();
        if ((flags & ~15) != 0 || (flags & 5) == 0 || ((flags & 2) != 0 && (flags & 1) == 0)
            || ((flags & 8) != 0 && (flags & 4) == 0)) {
            throw new ControllerFormatException("client quota entity has flags " + flags);
        }
        String user = (flags & 1) != 0 && (flags & 2) == 0 ? r.str() : null;
        String clientId = (flags & 4) != 0 && (flags & 8) == 0 ? r.str() : null;
        return new ClientQuotaEntity((flags & 1) != 0, user, (flags & 4) != 0, clientId);
    }

    /** As kafka-configs.sh prints it: {@code user=alice, client-id=<default>}. */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        if (hasUser) {
            sb.append("user=").append(Objects.requireNonNullElse(user, "<default>"));
        }
        if (hasClientId) {
            sb.append(hasUser ? ", " : "").append("client-id=").append(Objects.requireNonNullElse(clientId, "<default>"));
        }
        return sb.toString();
    }
}
