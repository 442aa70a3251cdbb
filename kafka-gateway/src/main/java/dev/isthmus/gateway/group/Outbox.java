package dev.isthmus.gateway.group;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * What one step of a {@link GroupStateMachine} asks of the world, as values: replies to complete (by the request
 * id the caller gave), records to append to the offsets partition (each answered later through
 * {@link GroupStateMachine#written}), and the groups whose next deadline may have moved (the shell re-arms their
 * timers). The caller drains it after every step; one outbox serves one machine, on one thread.
 */
public final class Outbox {
    /** The answer to request {@code requestId}: one of {@link GroupApi}'s response values. */
    public record Reply(long requestId, Object response) {
    }

    /**
     * Records to append, in order, to the machine's offsets partition as one batch; {@code producerId} is -1, or
     * the transactional producer whose marker will later commit or abort them.
     */
    public record Write(long writeId, List<GroupRecord> records, long producerId, short producerEpoch) {
    }

    private final List<Reply> replies = new ArrayList<>();
    private final List<Write> writes = new ArrayList<>();
    private final Set<String> touched = new LinkedHashSet<>();

    void reply(long requestId, Object response) {
        replies.add(new Reply(requestId, response));
    }

    void write(Write w) {
        writes.add(w);
    }

    void touch(String groupId) {
        touched.add(groupId);
    }

    public List<Reply> replies() {
        return replies;
    }

    public List<Write> writes() {
        return writes;
    }

    /** Groups whose deadline may have changed (including groups that no longer exist). */
    public Set<String> touched() {
        return touched;
    }

    public boolean isEmpty() {
        return replies.isEmpty() && writes.isEmpty() && touched.isEmpty();
    }

    public void clear() {
        replies.clear();
        writes.clear();
        touched.clear();
    }
}
