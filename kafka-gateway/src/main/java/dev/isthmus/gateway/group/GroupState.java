package dev.isthmus.gateway.group;

import java.util.EnumSet;
import java.util.Set;

/**
 * The states of a classic group (Kafka's {@code ClassicGroupState}), with the transitions Kafka allows:
 *
 * <pre>
 *            join                    all joined / timeout          leader's SyncGroup persisted
 *   Empty ---------> PreparingRebalance -------------> CompletingRebalance -------------> Stable
 *     ^                  |    ^     ^                         |                             |
 *     | last member gone |    |     +---- join, leave, expiry +                             |
 *     +------------------+    +------------------- join (leader or new metadata), leave, expiry
 *   any state -> Dead (deleted or expired; a failed delete returns to Empty)
 * </pre>
 */
public enum GroupState {
    EMPTY("Empty"),
    PREPARING_REBALANCE("PreparingRebalance"),
    COMPLETING_REBALANCE("CompletingRebalance"),
    STABLE("Stable"),
    DEAD("Dead");

    /** The name Kafka's DescribeGroups and ListGroups answer with. */
    public final String kafkaName;

    GroupState(String kafkaName) {
        this.kafkaName = kafkaName;
    }

    /** The states a group may move to this one from. */
    Set<GroupState> validPrevious() {
        return switch (this) {
            case EMPTY -> EnumSet.of(PREPARING_REBALANCE);
            case PREPARING_REBALANCE -> EnumSet.of(STABLE, COMPLETING_REBALANCE, EMPTY);
            case COMPLETING_REBALANCE -> EnumSet.of(PREPARING_REBALANCE);
            case STABLE -> EnumSet.of(COMPLETING_REBALANCE);
            case DEAD -> EnumSet.allOf(GroupState.class);
        };
    }
}
