package dev.isthmus.gateway;

import dev.isthmus.gateway.cluster.Controller;
import dev.isthmus.gateway.cluster.ControllerCommand;
import dev.isthmus.gateway.cluster.ControllerResult;
import dev.isthmus.uring.shard.Promise;
import dev.isthmus.uring.shard.Shard;

import java.util.ArrayList;
import java.util.List;

/**
 * One shard's producer ids: blocks of {@link #BLOCK_SIZE} ids that the controller hands out
 * ({@link ControllerCommand.AllocateProducerIds}, Kafka's KIP-730), each id used once. The controller's counter is
 * replicated and snapshotted, so no id is given twice in the cluster's life, across restarts (a restarted broker
 * takes a new block; what was left of the old one is never used) and controller failovers. Like Kafka's
 * {@code RPCProducerIdManager}, the next block is asked for when 90% of the current one is used, so InitProducerId
 * rarely waits.
 *
 * <p>Owned by its shard: every method runs on that shard's thread. The controller is reached on its shard
 * ({@code RaftServer.CONTROLLER_SHARD}) by a cross-shard call.
 */
final class ProducerIdBlocks {
    /** Ids per block (Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE). */
    static final int BLOCK_SIZE = 1000;
    private static final System.Logger LOG = System.getLogger(ProducerIdBlocks.class.getName());
    private static final long ALLOCATE_TIMEOUT_MS = 10_000;

    private final Broker broker;
    private final Shard shard;
    private long next = -1;
    private long end = -1;
    /** The next block, once the controller gave it: its first id, or -1. */
    private long prefetched = -1;
    private boolean fetching;
    private final List<Promise<Void>> waiters = new ArrayList<>();
    /** Blocks received (metrics, tests). */
    long blocks;

    ProducerIdBlocks(Broker broker, Shard shard) {
        this.broker = broker;
        this.shard = shard;
    }

    /** The next unused id, or -1 when this shard has none at hand now (a block is then on its way). */
    long tryNext() {
        if (next < 0 || next >= end) {
            if (prefetched < 0) {
                fetch();
                return -1;
            }
            next = prefetched;
            end = prefetched + BLOCK_SIZE;
            prefetched = -1;
        }
        long id = next++;
        if (prefetched < 0 && end - next <= BLOCK_SIZE / 10) {
            fetch();
        }
        return id;
    }

    /** Completes once an id is at hand (the next {@link #tryNext} answers one), or fails naming why not. */
    Promise<Void> ready() {
        if ((next >= 0 && next < end) || prefetched >= 0) {
            return Promise.completed(null);
        }
        Promise<Void> p = new Promise<>();
        waiters.add(p);
        fetch();
        return p;
    }

    /** A new id, waiting for a block if needed. */
    Promise<Long> next() {
        long id = tryNext();
        if (id >= 0) {
            return Promise.completed(id);
        }
        return ready().flatMap(x -> {
            long again = tryNext();
            return again >= 0 ? Promise.completed(again)
                : Promise.failed(new IllegalStateException("no producer id is available on shard " + shard.id()));
        });
    }

    private void fetch() {
        if (fetching) {
            return;
        }
        Controller c = broker.controller();
        if (c == null) {
            failWaiters(new IllegalStateException("the controller is not running"));
            return;
        }
        fetching = true;
        int node = broker.config().nodeId();
        Promise<ControllerResult> res = shard.submitToAsync(dev.isthmus.raft.server.RaftServer.CONTROLLER_SHARD,
            s -> c.submitHere(new ControllerCommand.AllocateProducerIds(node, BLOCK_SIZE), ALLOCATE_TIMEOUT_MS));
        res.whenComplete((r, f) -> {
            fetching = false;
            if (f != null || !r.isOk() || r.value() < 0) {
                String why = f != null ? f.toString() : r.toString();
                LOG.log(System.Logger.Level.WARNING, "shard " + shard.id() + " could not get a block of producer ids"
                    + " from the controller: " + why);
                failWaiters(new IllegalStateException("no block of producer ids from the controller: " + why));
                return;
            }
            blocks++;
            if (next < 0 || next >= end) {
                next = r.value();
                end = r.value() + BLOCK_SIZE;
            } else {
                prefetched = r.value();
            }
            List<Promise<Void>> ws = new ArrayList<>(waiters);
            waiters.clear();
            ws.forEach(w -> w.complete(null));
        });
    }

    private void failWaiters(Throwable t) {
        List<Promise<Void>> ws = new ArrayList<>(waiters);
        waiters.clear();
        ws.forEach(w -> w.fail(t));
    }
}
