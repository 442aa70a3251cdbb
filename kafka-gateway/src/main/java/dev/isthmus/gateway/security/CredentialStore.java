package dev.isthmus.gateway.security;

import java.util.Map;
import java.util.TreeMap;

/**
 * Where a SASL exchange looks up a user's SCRAM credential (PLAIN passwords are checked against the same
 * credentials). Implementations are immutable snapshots: each shard holds one and replaces it as a whole when
 * credentials change (no lock, no cross-shard call per authentication), as the ACLs are.
 *
 * <p>Each shard looks up a {@link #layered} store: first the credentials of the controller's replicated state
 * (AlterUserScramCredentials, replicated as Kafka's {@code UserScramCredentialRecord}; rebuilt on shard 0 when they
 * change and handed to every shard with the topic table), then the bootstrap user of the configuration
 * ({@code sasl.admin.user}), which therefore keeps working until a credential of the same user and mechanism is
 * stored in the cluster.
 */
public interface CredentialStore {
    CredentialStore EMPTY = of(Map.of());

    /** The user's credential for {@code mechanism}, or null when the user has none. */
    ScramCredential lookup(String user, ScramMechanism mechanism);

    /** {@code first}'s credential of a user and mechanism, else {@code then}'s. */
    static CredentialStore layered(CredentialStore first, CredentialStore then) {
        if (then == EMPTY) {
            return first;
        }
        if (first == EMPTY) {
            return then;
        }
        return (user, mechanism) -> {
            ScramCredential c = first.lookup(user, mechanism);
            return c != null ? c : then.lookup(user, mechanism);
        };
    }

    /** An immutable store: user -> mechanism -> credential. */
    static CredentialStore of(Map<String, Map<ScramMechanism, ScramCredential>> users) {
        Map<String, Map<ScramMechanism, ScramCredential>> copy = new TreeMap<>();
        users.forEach((u, m) -> copy.put(u, Map.copyOf(m)));
        Map<String, Map<ScramMechanism, ScramCredential>> frozen = Map.copyOf(copy);
        return (user, mechanism) -> {
            Map<ScramMechanism, ScramCredential> m = frozen.get(user);
            return m == null ? null : m.get(mechanism);
        };
    }

    /** Credentials of both SCRAM mechanisms for each {@code user -> password} (a fresh salt each). CPU-heavy. */
    static CredentialStore ofPasswords(Map<String, String> passwords, int iterations) {
        Map<String, Map<ScramMechanism, ScramCredential>> users = new TreeMap<>();
        passwords.forEach((u, p) -> {
            Map<ScramMechanism, ScramCredential> m = new java.util.EnumMap<>(ScramMechanism.class);
            for (ScramMechanism sm : ScramMechanism.values()) {
                m.put(sm, sm.credential(p, iterations));
            }
            users.put(u, m);
        });
        return of(users);
    }
}
