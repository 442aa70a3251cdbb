package dev.isthmus.uring.shard;

import dev.isthmus.ffi.Libc;
import dev.isthmus.uring.IoBackend;
import dev.isthmus.uring.RingConfig;

/**
 * How a {@link ShardGroup} runs.
 *
 * @param shards            number of shard threads ({@code --smp}); defaults to the CPUs this process may use
 * @param pin               pin shard {@code i} to the {@code i}-th allowed CPU (sched_setaffinity); turn off on
 *                          over-provisioned hosts (more shards than CPUs, shared CI machines)
 * @param busyPoll          never block in the kernel when idle: spin on the rings and queues (lowest latency,
 *                          one full core per shard)
 * @param backend           io_uring or the portable backend
 * @param ring              ring sizes for each shard
 * @param taskQuotaNs       a loop turn stops running tasks after this long so I/O is reaped and submitted
 *                          (Seastar's task quota, 0.5 ms by default); a single task longer than this is a quota
 *                          violation
 * @param stallReportNs     a task running longer than this is reported as a stall, with the shard thread's stack
 *                          taken by the watchdog while it runs
 * @param maxIdleWaitNs     longest single wait in the kernel when idle (timers shorten it)
 * @param crossShardDepth   most calls in flight from one shard to another; beyond it {@link Shard#trySend}
 *                          refuses (back-pressure) instead of queueing without bound
 * @param externalDepth     capacity of each shard's queue for tasks from non-shard threads
 * @param detectBlocking    debug mode: the watchdog samples every shard thread and reports one that is parked,
 *                          waiting or blocked on a monitor inside a task (a blocking call on a shard)
 * @param drainTimeoutNs    how long {@link ShardGroup#close()} lets in-flight work finish before closing anyway
 */
public record ShardGroupConfig(int shards, boolean pin, boolean busyPoll, IoBackend backend, RingConfig ring,
                               long taskQuotaNs, long stallReportNs, long maxIdleWaitNs, int crossShardDepth,
                               int externalDepth, boolean detectBlocking, long drainTimeoutNs) {

    public ShardGroupConfig {
        if (shards < 1 || shards > 1024) {
            throw new IllegalArgumentException("shards must be in [1, 1024], got " + shards);
        }
        if (taskQuotaNs < 1_000 || stallReportNs < taskQuotaNs) {
            throw new IllegalArgumentException("need taskQuotaNs >= 1 us and stallReportNs >= taskQuotaNs, got "
                + taskQuotaNs + " and " + stallReportNs);
        }
        if (maxIdleWaitNs < 1_000) {
            throw new IllegalArgumentException("maxIdleWaitNs must be >= 1 us, got " + maxIdleWaitNs);
        }
        if (crossShardDepth < 1 || externalDepth < 2) {
            throw new IllegalArgumentException("crossShardDepth must be >= 1 and externalDepth >= 2, got "
                + crossShardDepth + " and " + externalDepth);
        }
        if (drainTimeoutNs < 0) {
            throw new IllegalArgumentException("drainTimeoutNs must be >= 0");
        }
        if (backend == null || ring == null) {
            throw new NullPointerException("backend and ring are required");
        }
    }

    /** One shard per CPU this process may use, pinned, blocking when idle, io_uring when usable. */
    public static ShardGroupConfig defaults() {
        return of(Libc.allowedCpus().length);
    }

    /** {@code shards} shards with the default settings (pinned only when there are enough CPUs). */
    public static ShardGroupConfig of(int shards) {
        boolean enoughCpus = shards <= Libc.allowedCpus().length;
        return new ShardGroupConfig(shards, enoughCpus, false, IoBackend.AUTO, RingConfig.defaults(), 500_000L,
            20_000_000L, 100_000_000L, 1024, 4096, Boolean.getBoolean("isthmus.shard.detectBlocking"),
            10_000_000_000L);
    }

    public ShardGroupConfig withPin(boolean pin) {
        return new ShardGroupConfig(shards, pin, busyPoll, backend, ring, taskQuotaNs, stallReportNs, maxIdleWaitNs,
            crossShardDepth, externalDepth, detectBlocking, drainTimeoutNs);
    }

    public ShardGroupConfig withBusyPoll(boolean busyPoll) {
        return new ShardGroupConfig(shards, pin, busyPoll, backend, ring, taskQuotaNs, stallReportNs, maxIdleWaitNs,
            crossShardDepth, externalDepth, detectBlocking, drainTimeoutNs);
    }

    public ShardGroupConfig withBackend(IoBackend backend) {
        return new ShardGroupConfig(shards, pin, busyPoll, backend, ring, taskQuotaNs, stallReportNs, maxIdleWaitNs,
            crossShardDepth, externalDepth, detectBlocking, drainTimeoutNs);
    }

    public ShardGroupConfig withRing(RingConfig ring) {
        return new ShardGroupConfig(shards, pin, busyPoll, backend, ring, taskQuotaNs, stallReportNs, maxIdleWaitNs,
            crossShardDepth, externalDepth, detectBlocking, drainTimeoutNs);
    }

    public ShardGroupConfig withQuota(long taskQuotaNs, long stallReportNs) {
        return new ShardGroupConfig(shards, pin, busyPoll, backend, ring, taskQuotaNs, stallReportNs, maxIdleWaitNs,
            crossShardDepth, externalDepth, detectBlocking, drainTimeoutNs);
    }

    public ShardGroupConfig withCrossShardDepth(int depth) {
        return new ShardGroupConfig(shards, pin, busyPoll, backend, ring, taskQuotaNs, stallReportNs, maxIdleWaitNs,
            depth, externalDepth, detectBlocking, drainTimeoutNs);
    }

    public ShardGroupConfig withDetectBlocking(boolean detect) {
        return new ShardGroupConfig(shards, pin, busyPoll, backend, ring, taskQuotaNs, stallReportNs, maxIdleWaitNs,
            crossShardDepth, externalDepth, detect, drainTimeoutNs);
    }

    public ShardGroupConfig withMaxIdleWait(long ns) {
        return new ShardGroupConfig(shards, pin, busyPoll, backend, ring, taskQuotaNs, stallReportNs, ns,
            crossShardDepth, externalDepth, detectBlocking, drainTimeoutNs);
    }

    public ShardGroupConfig withDrainTimeout(long ns) {
        return new ShardGroupConfig(shards, pin, busyPoll, backend, ring, taskQuotaNs, stallReportNs, maxIdleWaitNs,
            crossShardDepth, externalDepth, detectBlocking, ns);
    }
}
