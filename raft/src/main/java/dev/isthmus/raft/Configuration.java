package dev.isthmus.raft;

import dev.isthmus.uring.Verify;

import java.util.Arrays;
import java.util.function.IntPredicate;
import java.util.function.IntToLongFunction;

/**
 * The membership of one Raft group: who votes, who only replicates.
 *
 * <h2>Joint consensus</h2>
 * Isthmus changes voters with joint consensus (Raft paper §6, thesis §4.3), not single-server steps
 * (thesis §4.1). Partition reassignment moves a replica set to an arbitrary new one ({1,2,3} to {4,5,6} when
 * a broker is drained); joint consensus does that in two log entries whatever the size of the change, keeps
 * the old majority in charge until the new one has caught up, has none of the single-server scheme's
 * corner cases (its safety needs a committed entry of the leader's term before each change), and is what
 * Redpanda uses for the same job. A configuration is therefore either simple ({@link #voters()} only) or
 * joint ({@link #voters()} = C_new and {@link #votersOutgoing()} = C_old): in a joint configuration every
 * decision (election, commit, check-quorum) needs a majority of each.
 *
 * <h2>Learners</h2>
 * Learners receive the log but do not vote (thesis §4.2.1: new servers catch up before they count). A node
 * demoted from voter to learner by a change sits in {@link #learnersNext()} while the configuration is joint
 * (it still votes as a member of C_old) and becomes a learner when the group leaves the joint state.
 *
 * <p>Immutable; id arrays are sorted and never exposed (accessors copy).
 */
public final class Configuration {
    /** No members: a replica that joins an existing group and learns its membership from the leader. */
    public static final Configuration EMPTY = new Configuration(new int[0], new int[0], new int[0], new int[0]);

    /** Outcome of counting votes. */
    public enum VoteResult { WON, LOST, PENDING }

    private final int[] voters;
    private final int[] votersOutgoing;
    private final int[] learners;
    private final int[] learnersNext;

    /**
     * @param voters         C_new (or the only voter set); may be empty only for {@link #EMPTY}
     * @param votersOutgoing C_old while joint, else empty
     * @param learners       non-voting members
     * @param learnersNext   C_old voters that become learners when the joint state ends; only while joint
     */
    public Configuration(int[] voters, int[] votersOutgoing, int[] learners, int[] learnersNext) {
        this.voters = sortedUnique(voters, "voters");
        this.votersOutgoing = sortedUnique(votersOutgoing, "outgoing voters");
        this.learners = sortedUnique(learners, "learners");
        this.learnersNext = sortedUnique(learnersNext, "next learners");
        if (this.voters.length == 0 && (this.votersOutgoing.length > 0 || this.learners.length > 0
            || this.learnersNext.length > 0)) {
            throw new IllegalArgumentException("a configuration with members needs at least one voter: " + this);
        }
        if (this.votersOutgoing.length == 0 && this.learnersNext.length > 0) {
            throw new IllegalArgumentException("next learners exist only in a joint configuration: " + this);
        }
        for (int l : this.learners) {
            if (contains(this.voters, l) || contains(this.votersOutgoing, l)) {
                throw new IllegalArgumentException("node " + l + " cannot be both voter and learner: " + this);
            }
        }
        for (int l : this.learnersNext) {
            if (contains(this.voters, l) || !contains(this.votersOutgoing, l) || contains(this.learners, l)) {
                throw new IllegalArgumentException("next learner " + l + " must be an outgoing voter only: " + this);
            }
        }
    }

    /** A simple configuration of voters. */
    public static Configuration ofVoters(int... voters) {
        return new Configuration(voters, new int[0], new int[0], new int[0]);
    }

    /** A simple configuration of voters and learners. */
    public static Configuration of(int[] voters, int[] learners) {
        return new Configuration(voters, new int[0], learners, new int[0]);
    }

    /**
     * The joint configuration that moves this (simple) configuration to {@code target} (paper §6): C_old is
     * this configuration's voters, C_new the target's; target learners that are old voters wait in
     * {@link #learnersNext()}.
     */
    public Configuration enterJoint(Configuration target) {
        if (isJoint() || target.isJoint()) {
            throw new IllegalArgumentException("joint configurations do not nest: " + this + " -> " + target);
        }
        int[] learnersNow = filter(target.learners, id -> !contains(voters, id));
        int[] next = filter(target.learners, id -> contains(voters, id));
        return new Configuration(target.voters, voters, learnersNow, next);
    }

    /** The simple configuration C_new that ends this joint one. */
    public Configuration leaveJoint() {
        if (!isJoint()) {
            throw new IllegalStateException("not a joint configuration: " + this);
        }
        return new Configuration(voters, new int[0], union(learners, learnersNext), new int[0]);
    }

    public boolean isJoint() {
        return votersOutgoing.length > 0;
    }

    public boolean isEmpty() {
        return voters.length == 0;
    }

    /** True when {@code id} votes (in C_new or, while joint, C_old). */
    public boolean isVoter(int id) {
        return contains(voters, id) || contains(votersOutgoing, id);
    }

    /** True when {@code id} replicates without voting (next learners still vote as outgoing voters). */
    public boolean isLearner(int id) {
        return contains(learners, id);
    }

    /** True when {@code id} receives the log (voter or learner). */
    public boolean isMember(int id) {
        return isVoter(id) || contains(learners, id) || contains(learnersNext, id);
    }

    public int[] voters() {
        return voters.clone();
    }

    public int[] votersOutgoing() {
        return votersOutgoing.clone();
    }

    public int[] learners() {
        return learners.clone();
    }

    public int[] learnersNext() {
        return learnersNext.clone();
    }

    /** Every member, sorted: the nodes a leader replicates to (plus itself). */
    public int[] members() {
        return union(union(voters, votersOutgoing), union(learners, learnersNext));
    }

    /** Every voter of either half, sorted: the nodes a candidate asks. */
    public int[] allVoters() {
        return union(voters, votersOutgoing);
    }

    /** True when the nodes for which {@code active} holds form a majority (of each half, when joint). */
    public boolean hasQuorum(IntPredicate active) {
        return majority(voters, active) && (votersOutgoing.length == 0 || majority(votersOutgoing, active));
    }

    /** Counts an election (paper §5.2); joint configurations need both halves (paper §6). */
    public VoteResult voteResult(IntPredicate granted, IntPredicate rejected) {
        VoteResult a = vote(voters, granted, rejected);
        if (votersOutgoing.length == 0) {
            return a;
        }
        VoteResult b = vote(votersOutgoing, granted, rejected);
        if (a == VoteResult.LOST || b == VoteResult.LOST) {
            return VoteResult.LOST;
        }
        return a == VoteResult.WON && b == VoteResult.WON ? VoteResult.WON : VoteResult.PENDING;
    }

    /**
     * The highest offset a majority (of each half, when joint) has at or beyond, given each voter's match
     * offset: the commit candidate of paper §5.3 / §6. -1 when nothing is replicated to a majority.
     */
    public long quorumOffset(IntToLongFunction match) {
        long q = quorumOffset(voters, match);
        return votersOutgoing.length == 0 ? q : Math.min(q, quorumOffset(votersOutgoing, match));
    }

    private static long quorumOffset(int[] ids, IntToLongFunction match) {
        Verify.that(ids.length > 0, "quorum of an empty voter set");
        if (ids.length == 1) {
            return match.applyAsLong(ids[0]); // a one-voter group: its voter is the majority (no array to sort)
        }
        long[] m = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            m[i] = match.applyAsLong(ids[i]);
        }
        Arrays.sort(m);
        // ascending: the value at index n - majority is held by at least a majority
        return m[ids.length - (ids.length / 2 + 1)];
    }

    private static boolean majority(int[] ids, IntPredicate active) {
        int n = 0;
        for (int id : ids) {
            if (active.test(id)) {
                n++;
            }
        }
        return n >= ids.length / 2 + 1;
    }

    private static VoteResult vote(int[] ids, IntPredicate granted, IntPredicate rejected) {
        int yes = 0;
        int no = 0;
        for (int id : ids) {
            if (granted.test(id)) {
                yes++;
            } else if (rejected.test(id)) {
                no++;
            }
        }
        int need = ids.length / 2 + 1;
        if (yes >= need) {
            return VoteResult.WON;
        }
        return ids.length - no < need ? VoteResult.LOST : VoteResult.PENDING;
    }

    static boolean contains(int[] sorted, int id) {
        return Arrays.binarySearch(sorted, id) >= 0;
    }

    private static int[] sortedUnique(int[] ids, String what) {
        if (ids == null) {
            throw new IllegalArgumentException(what + " must not be null");
        }
        int[] s = ids.clone();
        Arrays.sort(s);
        for (int i = 0; i < s.length; i++) {
            if (s[i] < 0) {
                throw new IllegalArgumentException(what + " contain the invalid node id " + s[i]);
            }
            if (i > 0 && s[i] == s[i - 1]) {
                throw new IllegalArgumentException(what + " list node " + s[i] + " twice");
            }
        }
        return s;
    }

    static int[] union(int[] a, int[] b) {
        return Arrays.stream(concat(a, b)).distinct().sorted().toArray();
    }

    private static int[] concat(int[] a, int[] b) {
        int[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    private static int[] filter(int[] ids, IntPredicate keep) {
        return Arrays.stream(ids).filter(keep).toArray();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Configuration c && Arrays.equals(voters, c.voters)
            && Arrays.equals(votersOutgoing, c.votersOutgoing) && Arrays.equals(learners, c.learners)
            && Arrays.equals(learnersNext, c.learnersNext);
    }

    @Override
    public int hashCode() {
        int h = Arrays.hashCode(voters);
        h = 31 * h + Arrays.hashCode(votersOutgoing);
        h = 31 * h + Arrays.hashCode(learners);
        return 31 * h + Arrays.hashCode(learnersNext);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("Configuration[voters=").append(Arrays.toString(voters));
        if (isJoint()) {
            sb.append(", outgoing=").append(Arrays.toString(votersOutgoing));
        }
        if (learners.length > 0) {
            sb.append(", learners=").append(Arrays.toString(learners));
        }
        if (learnersNext.length > 0) {
            sb.append(", learnersNext=").append(Arrays.toString(learnersNext));
        }
        return sb.append(']').toString();
    }
}
