package dev.isthmus.bench.compare;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.concurrent.TimeUnit;

/**
 * Everything one {@link Compare} run made that must not outlive it: broker processes and temporary
 * directories. {@link #close()} stops the processes (SIGTERM, then SIGKILL after a grace period) and removes
 * the directories, newest first. It runs at the end of a run, and from a JVM shutdown hook when the run is
 * interrupted (Ctrl-C, SIGTERM) or fails. Thread-safe: the run's thread registers, the hook's thread may
 * close concurrently; close is idempotent.
 */
public final class Cleanup implements AutoCloseable {

    private static final long STOP_GRACE_SEC = 30;

    private final Deque<Object> items = new ArrayDeque<>();
    private final String tool;
    private final Thread hook;
    private boolean hookInstalled;

    Cleanup() {
        this("compare");
    }

    /** {@code tool} names the program in the messages (bench/compare, bench/chaos). */
    public Cleanup(String tool) {
        this.tool = tool;
        this.hook = new Thread(this::interrupted, tool + "-cleanup");
        Runtime.getRuntime().addShutdownHook(hook);
        hookInstalled = true;
    }

    public synchronized void add(Process p) {
        items.push(p);
    }

    public synchronized void add(Path dir) {
        items.push(dir);
    }

    /** Anything else to undo (a network namespace, a mount), closed in the same newest-first order. */
    public synchronized void add(AutoCloseable other) {
        items.push(other);
    }

    /** Forgets {@code item} without closing it (its owner closed it already). */
    public synchronized void forget(Object item) {
        items.remove(item);
    }

    /** Stops {@code p} now (if registered or not) and forgets it. */
    public void stop(Process p) {
        synchronized (this) {
            items.remove(p);
        }
        stopProcess(p);
    }

    /** Removes {@code dir} now and forgets it. */
    public void delete(Path dir) {
        synchronized (this) {
            items.remove(dir);
        }
        deleteTree(dir);
    }

    /** The shutdown hook: the run did not finish (Ctrl-C, SIGTERM, or a failure that ends the JVM). */
    private void interrupted() {
        boolean any;
        synchronized (this) {
            any = !items.isEmpty();
        }
        if (any) {
            System.err.println(tool + ": interrupted; stopping the brokers and removing their data directories");
        }
        close();
    }

    @Override
    public void close() {
        while (true) {
            Object item;
            synchronized (this) {
                item = items.poll();
            }
            if (item == null) {
                break;
            }
            try {
                if (item instanceof Process p) {
                    stopProcess(p);
                } else if (item instanceof AutoCloseable c) {
                    c.close();
                } else {
                    deleteTree((Path) item);
                }
            } catch (Exception e) {
                System.err.println(tool + ": cleanup: " + e.getMessage());
            }
        }
        synchronized (this) {
            if (hookInstalled && Thread.currentThread() != hook) {
                hookInstalled = false;
                try {
                    Runtime.getRuntime().removeShutdownHook(hook);
                } catch (IllegalStateException shuttingDown) {
                    // The hook is running or about to; it will find nothing left to do.
                }
            }
        }
    }

    /** SIGTERM to the process and its descendants, SIGKILL to whatever is left after the grace period. */
    public static void stopProcess(Process p) {
        var descendants = p.descendants().toList();
        p.destroy();
        descendants.forEach(ProcessHandle::destroy);
        try {
            if (!p.waitFor(STOP_GRACE_SEC, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                p.waitFor(STOP_GRACE_SEC, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        descendants.stream().filter(ProcessHandle::isAlive).forEach(ProcessHandle::destroyForcibly);
    }

    public static void deleteTree(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try {
            Files.walkFileTree(dir, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                    Files.deleteIfExists(file);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFileFailed(Path file, IOException e) throws IOException {
                    if (e instanceof NoSuchFileException) {
                        return FileVisitResult.CONTINUE;
                    }
                    throw e;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
                    Files.deleteIfExists(d);
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove " + dir + ": " + e.getMessage(), e);
        }
    }
}
