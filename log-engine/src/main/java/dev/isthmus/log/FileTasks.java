package dev.isthmus.log;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * Blocking file-system work taken off the shard loops: trimming a sealed segment's preallocated space and
 * writing its indexes (with their fdatasyncs), deleting the files of segments that retention or DeleteRecords
 * dropped, recording the log start and the cleaner checkpoint. Each of these can take milliseconds, tens of
 * them when the file system's journal is busy (an fdatasync waits for a journal commit; unlinking a 1 GiB
 * segment frees its extents), and a shard loop must not wait for any of it.
 *
 * <h2>Order</h2>
 * One daemon thread per JVM runs the tasks of every log directory in the order they were queued, so a log's
 * tasks happen in its order (an index is written before the segment is deleted, a log start is recorded
 * after the one before it). Anything that touches a log's files on its shard thread first waits for that
 * directory's queued tasks ({@link #await(Path)}): opening, closing, suffix truncation and installing a
 * compacted segment. Only those rare operations can wait, and only when tasks of their log are queued.
 *
 * <h2>Failures</h2>
 * A task that fails is logged as a warning and changes nothing the log relies on: indexes are rebuilt on the
 * next open, a file left behind by a failed delete is below the log start and deleted again by the next
 * retention pass or open, a log start that was not recorded is recomputed from the segments.
 *
 * <p>Threads: {@link #submit} and {@link #await} are called by shard threads; the tasks run on the worker.
 */
final class FileTasks {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.log");

    /** A blocking piece of work on a log's files. */
    @FunctionalInterface
    interface Task {
        void run() throws IOException;
    }

    private record Queued(Path dir, String what, Task task) {
    }

    /** Tasks queued and not finished for one directory. */
    private static final class Pending {
        private int count;
    }

    private static final LinkedBlockingQueue<Queued> QUEUE = new LinkedBlockingQueue<>();
    private static final ConcurrentHashMap<Path, Pending> PENDING = new ConcurrentHashMap<>();
    private static Thread worker;

    private FileTasks() {
    }

    /** Queues {@code task} on {@code dir}'s files; {@code what} names it in a failure's warning. */
    static void submit(Path dir, String what, Task task) {
        Path key = dir.toAbsolutePath().normalize();
        PENDING.compute(key, (k, v) -> {
            Pending q = v == null ? new Pending() : v;
            synchronized (q) {
                q.count++;
            }
            return q;
        });
        startWorker();
        QUEUE.add(new Queued(key, what, task));
    }

    /** Waits until every task queued for {@code dir} has run (at once when none is queued). */
    static void await(Path dir) {
        Pending p = PENDING.get(dir.toAbsolutePath().normalize());
        if (p == null) {
            return;
        }
        boolean interrupted = false;
        synchronized (p) {
            while (p.count > 0) {
                try {
                    p.wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** Tasks queued and not finished, all directories together (tests, diagnostics). */
    static int queued() {
        int n = 0;
        for (Pending p : PENDING.values()) {
            synchronized (p) {
                n += p.count;
            }
        }
        return n;
    }

    private static synchronized void startWorker() {
        if (worker != null) {
            return;
        }
        Thread t = new Thread(FileTasks::runTasks, "isthmus-log-files");
        t.setDaemon(true);
        t.start();
        worker = t;
    }

    private static void runTasks() {
        while (true) {
            Queued q;
            try {
                q = QUEUE.take();
            } catch (InterruptedException e) {
                continue; // a daemon: it ends with the JVM
            }
            try {
                q.task().run();
            } catch (IOException | RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "log " + q.dir() + ": could not " + q.what() + ": " + e);
            } finally {
                // The directory's entry goes once its last task ran (no map entry per directory ever used).
                PENDING.computeIfPresent(q.dir(), (k, p) -> {
                    synchronized (p) {
                        if (--p.count == 0) {
                            p.notifyAll();
                            return null;
                        }
                    }
                    return p;
                });
            }
        }
    }
}
