package dev.isthmus.gateway.txn;

import java.util.EnumSet;
import java.util.Set;

/**
 * The states of a transactional id at its coordinator, with Kafka's ids (the {@code TransactionStatus} of the
 * {@code __transaction_state} record) and names (what DescribeTransactions and ListTransactions show), and the
 * states each may be entered from.
 *
 * <pre>
 *   Empty ---add---> Ongoing ---EndTxn---> PrepareCommit ---markers---> CompleteCommit --add--> Ongoing ...
 *     ^  \                 \                PrepareAbort  ---markers---> CompleteAbort
 *     |   InitProducerId    InitProducerId / timeout: PrepareEpochFence (memory only) -> PrepareAbort
 *     +-- CompleteX, Empty                                  Empty, CompleteX ---expiry---> Dead (tombstone)
 * </pre>
 * Transaction version 2 adds PrepareAbort from Empty and CompleteX: an EndTxn(abort) of a transaction that added
 * nothing still bumps the epoch (KAFKA-18464).
 */
public enum TxnState {
    EMPTY(0, "Empty"),
    ONGOING(1, "Ongoing"),
    PREPARE_COMMIT(2, "PrepareCommit"),
    PREPARE_ABORT(3, "PrepareAbort"),
    COMPLETE_COMMIT(4, "CompleteCommit"),
    COMPLETE_ABORT(5, "CompleteAbort"),
    DEAD(6, "Dead"),
    PREPARE_EPOCH_FENCE(7, "PrepareEpochFence");

    /** The TransactionStatus written in the log. */
    public final byte id;
    /** Kafka's name of the state. */
    public final String kafkaName;

    TxnState(int id, String kafkaName) {
        this.id = (byte) id;
        this.kafkaName = kafkaName;
    }

    /** The states this one may be entered from. */
    public Set<TxnState> validPrevious() {
        return switch (this) {
            case EMPTY -> EnumSet.of(EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT);
            case ONGOING -> EnumSet.of(ONGOING, EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT);
            case PREPARE_COMMIT -> EnumSet.of(ONGOING);
            case PREPARE_ABORT -> EnumSet.of(ONGOING, PREPARE_EPOCH_FENCE, EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT);
            case COMPLETE_COMMIT -> EnumSet.of(PREPARE_COMMIT);
            case COMPLETE_ABORT -> EnumSet.of(PREPARE_ABORT);
            case DEAD -> EnumSet.of(EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT);
            case PREPARE_EPOCH_FENCE -> EnumSet.of(ONGOING);
        };
    }

    /** Whether an id in this state may expire after {@code transactional.id.expiration.ms} of silence. */
    public boolean expirationAllowed() {
        return this == EMPTY || this == COMPLETE_COMMIT || this == COMPLETE_ABORT;
    }

    /** PrepareCommit or PrepareAbort: the outcome is decided and markers are being written. */
    public boolean preparing() {
        return this == PREPARE_COMMIT || this == PREPARE_ABORT;
    }

    /** CompleteCommit or CompleteAbort. */
    public boolean complete() {
        return this == COMPLETE_COMMIT || this == COMPLETE_ABORT;
    }

    /** The state with log id {@code id}. */
    public static TxnState fromId(int id) {
        for (TxnState s : values()) {
            if (s.id == id) {
                return s;
            }
        }
        throw new IllegalArgumentException("unknown transaction state id " + id);
    }

    /** The state named {@code name} (Kafka's name, exact case), or null. */
    public static TxnState fromName(String name) {
        for (TxnState s : values()) {
            if (s.kafkaName.equals(name)) {
                return s;
            }
        }
        return null;
    }
}
