package dev.isthmus.gateway;

import dev.isthmus.gateway.protocol.ProtocolMessage;
import dev.isthmus.gateway.protocol.message.AlterUserScramCredentialsRequestData;
import dev.isthmus.gateway.protocol.message.AlterUserScramCredentialsResponseData;
import dev.isthmus.gateway.protocol.message.DescribeUserScramCredentialsRequestData;
import dev.isthmus.gateway.protocol.message.DescribeUserScramCredentialsResponseData;
import dev.isthmus.gateway.security.ScramCredential;
import dev.isthmus.gateway.security.ScramMechanism;
import dev.isthmus.gateway.cluster.ControllerCommand;
import dev.isthmus.gateway.cluster.ControllerResult;
import dev.isthmus.gateway.cluster.UserScramCredential;
import dev.isthmus.uring.shard.Promise;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;

/**
 * DescribeUserScramCredentials (50) and AlterUserScramCredentials (51), with the semantics and error texts of Kafka's
 * KRaft code ({@code ScramImage.describe}, {@code ScramControlManager.alterCredentials}). The credentials live in the
 * controller's replicated state ({@link dev.isthmus.gateway.cluster.ClusterState#scramCredentials()}); every node
 * installs them on each of its shards as an immutable credential store, which the SASL SCRAM (and PLAIN) server
 * reads without a lock or a cross-shard call.
 *
 * <p>Alter: one alteration per user per request (a second one for the same user, even of another mechanism, makes
 * that user DUPLICATE_RESOURCE, as KRaft answers); a user with an empty name or an unknown mechanism is refused with
 * UNACCEPTABLE_CREDENTIAL or UNSUPPORTED_SASL_MECHANISM, iterations outside 4096..16384 with UNACCEPTABLE_CREDENTIAL.
 * The client sends the salt and the salted password; this broker derives StoredKey and ServerKey (two HMACs and a
 * hash: cheap enough for the shard) and submits one controller command per user, so only the salt and the keys are
 * replicated, never the salted password. Deleting a credential the user does not have is RESOURCE_NOT_FOUND, decided
 * by the controller at the command's place in the log. Each user's result is answered once every shard of this node
 * has installed the change, so the next authentication on this node sees it.
 *
 * <p>Whether the caller may use these APIs (DESCRIBE or ALTER on the cluster) is checked before, by
 * {@link RequestAuthorization}. One instance per broker; runs on the connection's shard.
 */
final class ScramApis {
    static final String DUPLICATE_ALTERATION = "A user credential cannot be altered twice in the same request";
    static final String DESCRIBE_MISSING = "Attempt to describe a user credential that does not exist: ";
    static final String DESCRIBE_DUPLICATE = "Cannot describe SCRAM credentials for the same user twice in a single"
        + " request: ";

    private final Broker broker;

    ScramApis(Broker broker) {
        this.broker = broker;
    }

    // ------------------------------------------------------------------ DescribeUserScramCredentials

    ProtocolMessage describe(ShardState st, DescribeUserScramCredentialsRequestData req) {
        SortedMap<UserScramCredential.Key, UserScramCredential> all = st.cluster == null ? java.util.Collections
            .emptySortedMap() : st.cluster.scramCredentials();
        // User -> named twice; null or empty = every user that has a credential, in name order.
        Map<String, Boolean> users = new LinkedHashMap<>();
        if (req.users == null || req.users.isEmpty()) {
            all.keySet().forEach(k -> users.put(k.name(), false));
        } else {
            req.users.forEach(u -> users.merge(u.name, false, (a, b) -> true));
        }
        DescribeUserScramCredentialsResponseData r = new DescribeUserScramCredentialsResponseData();
        r.errorMessage = null;
        for (Map.Entry<String, Boolean> u : users.entrySet()) {
            DescribeUserScramCredentialsResponseData.DescribeUserScramCredentialsResult res =
                new DescribeUserScramCredentialsResponseData.DescribeUserScramCredentialsResult();
            res.user = u.getKey();
            res.errorMessage = null;
            r.results.add(res);
            if (u.getValue()) {
                res.errorCode = ErrorCodes.DUPLICATE_RESOURCE;
                res.errorMessage = DESCRIBE_DUPLICATE + u.getKey();
                continue;
            }
            for (UserScramCredential c : all.subMap(new UserScramCredential.Key(u.getKey(), Byte.MIN_VALUE),
                new UserScramCredential.Key(u.getKey(), Byte.MAX_VALUE)).values()) {
                DescribeUserScramCredentialsResponseData.CredentialInfo info =
                    new DescribeUserScramCredentialsResponseData.CredentialInfo();
                info.mechanism = c.mechanism();
                info.iterations = c.iterations();
                res.credentialInfos.add(info);
            }
            if (res.credentialInfos.isEmpty()) {
                res.errorCode = ErrorCodes.RESOURCE_NOT_FOUND;
                res.errorMessage = DESCRIBE_MISSING + u.getKey();
            }
        }
        return r;
    }

    // ------------------------------------------------------------------ AlterUserScramCredentials

    /** One user's accepted alteration: the controller command that makes it. */
    private record Alteration(String user, ControllerCommand command) {
    }

    Promise<ProtocolMessage> alter(ShardState st, AlterUserScramCredentialsRequestData req) {
        Map<String, Alteration> accepted = new LinkedHashMap<>();
        Map<String, short[]> errorCodes = new LinkedHashMap<>();
        Map<String, String> errorMessages = new LinkedHashMap<>();
        java.util.function.BiConsumer<String, UserScramCredential.Problem> refuse = (user, p) -> {
            errorCodes.put(user, new short[] {(short) p.errorCode()});
            errorMessages.put(user, p.message());
        };
        UserScramCredential.Problem duplicate = new UserScramCredential.Problem(ErrorCodes.DUPLICATE_RESOURCE,
            DUPLICATE_ALTERATION);
        for (AlterUserScramCredentialsRequestData.ScramCredentialDeletion d : req.deletions) {
            if (errorCodes.containsKey(d.name)) {
                continue;
            }
            if (accepted.remove(d.name) != null) {
                refuse.accept(d.name, duplicate);
                continue;
            }
            UserScramCredential.Problem p = UserScramCredential.problem(d.name, d.mechanism);
            if (p != null) {
                refuse.accept(d.name, p);
            } else {
                accepted.put(d.name, new Alteration(d.name, new ControllerCommand.DeleteUserScramCredential(d.name,
                    d.mechanism)));
            }
        }
        for (AlterUserScramCredentialsRequestData.ScramCredentialUpsertion u : req.upsertions) {
            if (errorCodes.containsKey(u.name)) {
                continue;
            }
            if (accepted.remove(u.name) != null) {
                refuse.accept(u.name, duplicate);
                continue;
            }
            UserScramCredential.Problem p = UserScramCredential.problem(u.name, u.mechanism);
            UserScramCredential c = null;
            if (p == null && u.saltedPassword.length() == 0) {
                p = new UserScramCredential.Problem(ErrorCodes.UNACCEPTABLE_CREDENTIAL,
                    "The salted password must not be empty");
            }
            if (p == null) {
                c = credential(u);
                p = c.problem();
            }
            if (p != null) {
                refuse.accept(u.name, p);
            } else {
                accepted.put(u.name, new Alteration(u.name, new ControllerCommand.UpsertUserScramCredential(c)));
            }
        }
        AlterUserScramCredentialsResponseData r = new AlterUserScramCredentialsResponseData();
        List<Promise<Object>> outcomes = new ArrayList<>();
        List<AlterUserScramCredentialsResponseData.AlterUserScramCredentialsResult> pending = new ArrayList<>();
        for (Alteration a : accepted.values()) {
            AlterUserScramCredentialsResponseData.AlterUserScramCredentialsResult res = result(r, a.user());
            pending.add(res);
            outcomes.add(broker.aclCommand(st.shard, a.command()));
        }
        errorCodes.forEach((user, code) -> {
            AlterUserScramCredentialsResponseData.AlterUserScramCredentialsResult res = result(r, user);
            res.errorCode = code[0];
            res.errorMessage = errorMessages.get(user);
        });
        if (outcomes.isEmpty()) {
            return Promise.completed(r);
        }
        return Promise.whenAllSettled(outcomes).map(x -> {
            for (int i = 0; i < outcomes.size(); i++) {
                AlterUserScramCredentialsResponseData.AlterUserScramCredentialsResult res = pending.get(i);
                Promise<Object> o = outcomes.get(i);
                Object v = o.isSucceeded() ? o.value() : new Broker.Failure(ErrorCodes.UNKNOWN_SERVER_ERROR,
                    "the controller did not answer");
                if (v instanceof Broker.Failure f) {
                    res.errorCode = f.code();
                    res.errorMessage = f.message();
                } else if (v instanceof ControllerResult cr && !cr.isOk()) {
                    res.errorCode = (short) cr.errorCode();
                    res.errorMessage = cr.message();
                }
            }
            return r;
        });
    }

    private static AlterUserScramCredentialsResponseData.AlterUserScramCredentialsResult result(
        AlterUserScramCredentialsResponseData r, String user) {
        AlterUserScramCredentialsResponseData.AlterUserScramCredentialsResult res =
            new AlterUserScramCredentialsResponseData.AlterUserScramCredentialsResult();
        res.user = user;
        res.errorMessage = null;
        r.results.add(res);
        return res;
    }

    /**
     * The credential to store for an upsertion: StoredKey and ServerKey derived from the salted password the client
     * computed (Kafka's ScramFormatter); the salted password itself goes no further.
     */
    private static UserScramCredential credential(AlterUserScramCredentialsRequestData.ScramCredentialUpsertion u) {
        ScramMechanism m = ScramMechanism.forId(u.mechanism);
        byte[] salted = u.saltedPassword.toArray();
        byte[] clientKey = m.hmac(salted, "Client Key".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        byte[] serverKey = m.hmac(salted, "Server Key".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        java.util.Arrays.fill(salted, (byte) 0);
        return new UserScramCredential(u.name, u.mechanism, u.salt.toArray(), m.hash(clientKey), serverKey,
            u.iterations);
    }

    /** The gateway's form of a replicated credential, for the SASL server. */
    static ScramCredential toScram(UserScramCredential c) {
        return new ScramCredential(c.salt(), c.storedKey(), c.serverKey(), c.iterations());
    }
}
