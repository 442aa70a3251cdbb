package dev.isthmus.raft;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConfigurationTest {
    @Test
    void shouldNeedAMajorityOfBothHalvesWhenJoint() {
        Configuration joint = Configuration.ofVoters(1, 2, 3).enterJoint(Configuration.ofVoters(4, 5, 6));
        assertTrue(joint.isJoint());
        assertFalse(joint.hasQuorum(id -> id == 1 || id == 2), "old majority alone is not enough");
        assertTrue(joint.hasQuorum(id -> id == 1 || id == 2 || id == 4 || id == 5));
        long[] match = {0, 10, 9, 8, 3, 2, 1};
        assertEquals(2, joint.quorumOffset(id -> match[id]), "min of each half's majority offset");
        assertEquals(Configuration.VoteResult.PENDING, joint.voteResult(id -> id <= 3, id -> false));
        assertEquals(Configuration.VoteResult.LOST, joint.voteResult(id -> id <= 3, id -> id >= 5));
        assertEquals(Configuration.ofVoters(4, 5, 6), joint.leaveJoint());
    }

    @Test
    void shouldDemoteOldVotersToLearnersOnlyWhenLeavingJoint() {
        Configuration c = Configuration.ofVoters(1, 2, 3);
        Configuration joint = c.enterJoint(Configuration.of(new int[] {2, 3, 4}, new int[] {1}));
        assertTrue(joint.isVoter(1), "still an outgoing voter");
        assertArrayEquals(new int[] {1}, joint.learnersNext());
        Configuration done = joint.leaveJoint();
        assertTrue(done.isLearner(1));
        assertFalse(done.isVoter(1));
    }

    @Test
    void shouldRejectInvalidMemberships() {
        assertThrows(IllegalArgumentException.class, () -> Configuration.of(new int[] {1, 2}, new int[] {2}));
        assertThrows(IllegalArgumentException.class, () -> Configuration.ofVoters(1, 1));
        assertThrows(IllegalArgumentException.class, () -> Configuration.ofVoters(-3));
        assertThrows(IllegalArgumentException.class, () -> Configuration.of(new int[0], new int[] {1}));
    }

    @Test
    void shouldPickTheMedianMatchAsCommit() {
        Configuration c = Configuration.ofVoters(0, 1, 2, 3, 4);
        long[] m = {9, 3, 7, 1, 5};
        assertEquals(5, c.quorumOffset(id -> m[id]));
    }
}
