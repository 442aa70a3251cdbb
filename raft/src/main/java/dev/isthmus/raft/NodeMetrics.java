package dev.isthmus.raft;

import org.HdrHistogram.Histogram;

/**
 * Counters and latency histograms of one {@link RaftNode} across all its groups. Written by the node's shard
 * only. The heartbeat counters make the coalescing measurable: {@link #heartbeatMessagesSent()} grows with
 * node pairs and time, never with the number of groups, while {@link #heartbeatItemsSent()} counts the
 * per-group entries inside them.
 *
 * <p>Latencies are in the node's clock units (milliseconds; simulator milliseconds in tests):
 * {@link #commitLatencyMs()} from proposal to commit on the leader, {@link #appendDurableLatencyMs()} from
 * proposal to the leader's own flush.
 */
public final class NodeMetrics {
    long messagesSent;
    long messagesReceived;
    long heartbeatMessagesSent;
    long heartbeatItemsSent;
    long heartbeatResponsesSent;
    long heartbeatResponseItemsSent;
    long unknownGroupMessages;
    long transferCampaigns;
    long timeoutCampaigns;
    long catchUpBytes;
    long catchUpDelays;
    private final Histogram commitLatencyMs = new Histogram(3_600_000L, 2);
    private final Histogram appendDurableLatencyMs = new Histogram(3_600_000L, 2);

    /** Bytes this node's leaders sent to learners (entries and snapshot chunks) while a catch-up rate was set. */
    public long catchUpBytes() {
        return catchUpBytes;
    }

    /** Sends to learners this node's leaders put off because the catch-up rate was spent ({@link RaftNode#setCatchUpRate}). */
    public long catchUpDelays() {
        return catchUpDelays;
    }

    public long messagesSent() {
        return messagesSent;
    }

    public long messagesReceived() {
        return messagesReceived;
    }

    /** Coalesced heartbeat messages sent (one per peer node per heartbeat interval at most). */
    public long heartbeatMessagesSent() {
        return heartbeatMessagesSent;
    }

    /** Group entries carried inside those heartbeat messages. */
    public long heartbeatItemsSent() {
        return heartbeatItemsSent;
    }

    public long heartbeatResponsesSent() {
        return heartbeatResponsesSent;
    }

    public long heartbeatResponseItemsSent() {
        return heartbeatResponseItemsSent;
    }

    /** Messages for groups this node does not host (dropped). */
    public long unknownGroupMessages() {
        return unknownGroupMessages;
    }

    /** Campaigns members of this node started on a leader's TimeoutNow: leaderships handed to them. */
    public long transferCampaigns() {
        return transferCampaigns;
    }

    /** Campaigns (pre-vote or vote) members of this node started because their election timeout passed. */
    public long timeoutCampaigns() {
        return timeoutCampaigns;
    }

    /** Proposal-to-commit latency on leaders. */
    public Histogram commitLatencyMs() {
        return commitLatencyMs;
    }

    /** Proposal-to-local-durability latency on leaders. */
    public Histogram appendDurableLatencyMs() {
        return appendDurableLatencyMs;
    }

    void recordCommitLatency(long ms) {
        commitLatencyMs.recordValue(Math.min(Math.max(ms, 0), commitLatencyMs.getHighestTrackableValue()));
    }

    void recordAppendDurableLatency(long ms) {
        appendDurableLatencyMs.recordValue(Math.min(Math.max(ms, 0), appendDurableLatencyMs.getHighestTrackableValue()));
    }

    @Override
    public String toString() {
        return "NodeMetrics[sent=" + messagesSent + ", received=" + messagesReceived + ", heartbeats="
            + heartbeatMessagesSent + " carrying " + heartbeatItemsSent + " group items, commit p50/p99="
            + commitLatencyMs.getValueAtPercentile(50) + "/" + commitLatencyMs.getValueAtPercentile(99) + "ms]";
    }
}
