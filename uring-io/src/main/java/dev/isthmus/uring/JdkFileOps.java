package dev.isthmus.uring;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.stream.Stream;

/**
 * {@link FileOps} on the machine's file system (java.nio.file), with one JVM-wide daemon thread for background
 * work.
 *
 * <h2>Background work</h2>
 * Trimming a sealed segment's preallocated space and writing its indexes (with their fdatasyncs), deleting the
 * files of segments that retention dropped, recording checkpoints: each can take milliseconds, tens of them when
 * the journal is busy (an fdatasync waits for a journal commit; unlinking a 1 GiB segment frees its extents), and
 * a shard loop must not wait for any of it. One worker runs the tasks of every directory in the order they were
 * queued, so a directory's tasks happen in its order; {@link #awaitBackground} lets the rare operations that
 * touch the same files on a shard (opening, closing, suffix truncation, installing a compacted segment) wait for
 * them first.
 *
 * <p>Threads: any; the synchronous calls run on the caller, tasks on the worker.
 */
final class JdkFileOps implements FileOps {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.log");

    private record Queued(Path dir, String what, BackgroundTask task) {
    }

    /** Tasks queued and not finished for one directory. */
    private static final class Pending {
        private int count;
    }

    private final LinkedBlockingQueue<Queued> queue = new LinkedBlockingQueue<>();
    private final ConcurrentHashMap<Path, Pending> pending = new ConcurrentHashMap<>();
    private Thread worker;

    @Override
    public void createDirectories(Path dir) throws IOException {
        Files.createDirectories(dir);
    }

    @Override
    public List<Path> list(Path dir) throws IOException {
        List<Path> out = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            files.forEach(out::add);
        }
        out.sort(null);
        return out;
    }

    @Override
    public boolean exists(Path path) {
        return Files.exists(path);
    }

    @Override
    public boolean isRegularFile(Path path) {
        return Files.isRegularFile(path);
    }

    @Override
    public long size(Path path) throws IOException {
        return Files.size(path);
    }

    @Override
    public long lastModifiedMillis(Path path) throws IOException {
        return Files.getLastModifiedTime(path).toMillis();
    }

    @Override
    public byte[] readAllBytes(Path path) throws IOException {
        return Files.readAllBytes(path);
    }

    @Override
    public Writer create(Path path) throws IOException {
        FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
            StandardOpenOption.TRUNCATE_EXISTING);
        return new Writer() {
            @Override
            public void write(ByteBuffer src) throws IOException {
                while (src.hasRemaining()) {
                    ch.write(src);
                }
            }

            @Override
            public void sync() throws IOException {
                ch.force(false);
            }

            @Override
            public void close() throws IOException {
                ch.close();
            }
        };
    }

    @Override
    public void truncate(Path path, long sizeBytes) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.WRITE)) {
            ch.truncate(sizeBytes);
        }
    }

    @Override
    public boolean deleteIfExists(Path path) throws IOException {
        return Files.deleteIfExists(path);
    }

    @Override
    public void move(Path from, Path to, boolean replace) throws IOException {
        if (replace) {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } else {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
        }
    }

    @Override
    public void syncDirectory(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        }
    }

    // ------------------------------------------------------------------------------------------ background

    @Override
    public void submitBackground(Path dir, String what, BackgroundTask task) {
        Path key = dir.toAbsolutePath().normalize();
        pending.compute(key, (k, v) -> {
            Pending q = v == null ? new Pending() : v;
            synchronized (q) {
                q.count++;
            }
            return q;
        });
        startWorker();
        queue.add(new Queued(key, what, task));
    }

    @Override
    public void awaitBackground(Path dir) {
        Pending p = pending.get(dir.toAbsolutePath().normalize());
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

    @Override
    public int backgroundQueued() {
        int n = 0;
        for (Pending p : pending.values()) {
            synchronized (p) {
                n += p.count;
            }
        }
        return n;
    }

    private synchronized void startWorker() {
        if (worker != null) {
            return;
        }
        Thread t = new Thread(this::runTasks, "isthmus-log-files");
        t.setDaemon(true);
        t.start();
        worker = t;
    }

    private void runTasks() {
        while (true) {
            Queued q;
            try {
                q = queue.take();
            } catch (InterruptedException e) {
                continue; // a daemon: it ends with the JVM
            }
            try {
                q.task().run();
            } catch (IOException | RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "log " + q.dir() + ": could not " + q.what() + ": " + e);
            } finally {
                // The directory's entry goes once its last task ran (no map entry per directory ever used).
                pending.computeIfPresent(q.dir(), (k, p) -> {
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

    @Override
    public String toString() {
        return "FileOps.JDK";
    }
}
