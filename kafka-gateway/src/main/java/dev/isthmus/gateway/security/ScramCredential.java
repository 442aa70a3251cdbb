package dev.isthmus.gateway.security;

import java.util.Arrays;

/**
 * What the broker keeps of one user's password for one SCRAM mechanism (RFC 5802 §3): salt, StoredKey, ServerKey
 * and the iteration count; never the password. Immutable (the arrays are copied in and out). The same record as
 * Kafka's {@code UserScramCredentialRecord} less the name and mechanism.
 */
public record ScramCredential(byte[] salt, byte[] storedKey, byte[] serverKey, int iterations) {
    public ScramCredential {
        if (salt == null || salt.length == 0 || storedKey == null || serverKey == null) {
            throw new IllegalArgumentException("a SCRAM credential needs a salt, a stored key and a server key");
        }
        if (iterations < ScramMechanism.MIN_ITERATIONS || iterations > ScramMechanism.MAX_ITERATIONS) {
            throw new IllegalArgumentException("SCRAM iterations must be in [" + ScramMechanism.MIN_ITERATIONS + ", "
                + ScramMechanism.MAX_ITERATIONS + "], got " + iterations);
        }
        salt = salt.clone();
        storedKey = storedKey.clone();
        serverKey = serverKey.clone();
    }

    @Override
    public byte[] salt() {
        return salt.clone();
    }

    @Override
    public byte[] storedKey() {
        return storedKey.clone();
    }

    @Override
    public byte[] serverKey() {
        return serverKey.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ScramCredential c && c.iterations == iterations && Arrays.equals(c.salt, salt)
            && Arrays.equals(c.storedKey, storedKey) && Arrays.equals(c.serverKey, serverKey);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(storedKey) * 31 + iterations;
    }

    @Override
    public String toString() {
        return "ScramCredential[" + iterations + " iterations]"; // no key material in logs
    }
}
