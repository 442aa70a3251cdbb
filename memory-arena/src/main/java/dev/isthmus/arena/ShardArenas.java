package dev.isthmus.arena;

import dev.isthmus.uring.shard.Shard;
import dev.isthmus.uring.shard.ShardCall;
import dev.isthmus.uring.shard.ShardGroup;

import java.util.concurrent.ExecutionException;
import java.util.function.IntFunction;

/**
 * Gives every shard of a {@link ShardGroup} its own {@link MemoryArena} and wires it into the loop: each turn
 * the shard applies frees queued by non-shard threads, and frees of another shard's memory made on this shard
 * are batched (up to {@value #BATCH} per message) and sent to the owner through the shard runtime's
 * cross-shard queues, once per turn, instead of one message per fragment. When the target's queue refuses
 * (back-pressure) the batch waits for the next turn; it never blocks and never frees on the wrong shard.
 *
 * <p>Shutdown: a drain check keeps each shard running until its outgoing batches are delivered, and the
 * arenas are closed on their shards after the group stops ({@link #close()}).
 */
public final class ShardArenas implements AutoCloseable {
    static final int BATCH = 512;

    private final ShardGroup group;
    private final MemoryArena[] arenas;
    private final PerShard[] perShard;

    private ShardArenas(ShardGroup group) {
        this.group = group;
        this.arenas = new MemoryArena[group.size()];
        this.perShard = new PerShard[group.size()];
    }

    /**
     * Creates each shard's arena on its own thread ({@code config.apply(shardId)}) and registers the pollers.
     * Call from a non-shard thread after the group started.
     */
    public static ShardArenas install(ShardGroup group, IntFunction<ArenaConfig> config) {
        ShardArenas sa = new ShardArenas(group);
        try {
            for (int i = 0; i < group.size(); i++) {
                int id = i;
                group.call(i, s -> {
                    MemoryArena a = MemoryArena.create(config.apply(id));
                    a.shardId = id;
                    a.shardArenas = sa;
                    sa.arenas[id] = a;
                    PerShard p = new PerShard(sa, s);
                    sa.perShard[id] = p;
                    s.addPoller(p.poller);
                    s.addDrainCheck(p::drained);
                    return null;
                }).get();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while creating shard arenas", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException("could not create shard arenas: " + e.getCause().getMessage(), e.getCause());
        }
        return sa;
    }

    public MemoryArena arena(int shard) {
        return arenas[shard];
    }

    /** The calling shard's arena. */
    public MemoryArena current() {
        return arenas[Shard.current().id()];
    }

    /**
     * Called by {@link MemoryArena#free} for a free on a thread that is not the owner: batches it on the
     * calling shard if it is a shard of this group; false means the caller uses the arena's own queue.
     */
    boolean batchRemoteFree(MemoryArena owner, long offset) {
        Shard s = Shard.currentOrNull();
        if (s == null || s.group() != group || owner.shardId < 0) {
            return false;
        }
        PerShard p = perShard[s.id()];
        return p != null && p.add(owner.shardId, offset);
    }

    /** Frees of one shard's memory made on another, travelling back in one cross-shard message. */
    static final class FreeBatch extends ShardCall {
        final long[] offsets = new long[BATCH];
        int n;
        final ShardArenas owner;

        FreeBatch(ShardArenas owner) {
            this.owner = owner;
        }

        @Override
        protected boolean onTarget(Shard shard) {
            MemoryArena a = owner.arenas[shard.id()];
            for (int i = 0; i < n; i++) {
                a.free(offsets[i]);
            }
            return true;
        }

        @Override
        protected void onReply(Shard shard) {
            n = 0;
        }
    }

    private static final class PerShard {
        final ShardArenas sa;
        final Shard shard;
        final FreeBatch[] filling;
        final FreeBatch[] spare;
        final Shard.Poller poller = this::poll;
        boolean closed;

        PerShard(ShardArenas sa, Shard shard) {
            this.sa = sa;
            this.shard = shard;
            int n = sa.group.size();
            filling = new FreeBatch[n];
            spare = new FreeBatch[n];
        }

        boolean add(int target, long offset) {
            FreeBatch b = filling[target];
            if (b == null) {
                b = spare[target] != null && !spare[target].isInFlight() ? spare[target] : new FreeBatch(sa);
                spare[target] = null;
                filling[target] = b;
            }
            if (b.n == BATCH) {
                return false; // full and not yet sent: the arena's own queue takes it
            }
            b.offsets[b.n++] = offset;
            return true;
        }

        int poll() {
            if (closed) {
                return 0;
            }
            int work = sa.arenas[shard.id()].drainRemoteFrees();
            for (int t = 0; t < filling.length; t++) {
                FreeBatch b = filling[t];
                if (b != null && b.n > 0 && shard.trySend(t, b)) {
                    filling[t] = null;
                    spare[t] = b;
                    work++;
                }
            }
            return work;
        }

        boolean drained() {
            for (FreeBatch b : filling) {
                if (b != null && b.n > 0) {
                    return false;
                }
            }
            return true;
        }
    }

    /** Closes every arena on its shard (call after the group's work is done, before or after it stops). */
    @Override
    public void close() {
        for (int i = 0; i < arenas.length; i++) {
            MemoryArena a = arenas[i];
            if (a == null || a.isClosed()) {
                continue;
            }
            PerShard p = perShard[i];
            try {
                group.call(i, s -> {
                    p.poll(); // send what is still batched for other shards
                    p.closed = true;
                    s.removePoller(p.poller);
                    a.close();
                    return null;
                }).get(10, java.util.concurrent.TimeUnit.SECONDS);
            } catch (Exception e) {
                if (!group.isTerminated()) {
                    // The shard did not answer (stuck, or this thread was interrupted) and may still use its arena:
                    // freeing the memory under it would be a use after free. Leave it; the process ends it.
                    System.getLogger(ShardArenas.class.getName()).log(System.Logger.Level.WARNING, "the arena of"
                        + " shard " + i + " is left open: its shard runs and did not close it (" + e + ")");
                    continue;
                }
                if (p != null) {
                    p.closed = true;
                }
                // The group has stopped: no shard will use the arena again, close it here.
                a.bindOwner(Thread.currentThread());
                a.close();
            }
        }
    }
}
