package dev.isthmus.uring;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;

/**
 * The file-system calls storage makes beside its {@link DmaFile}s: listing a directory, reading and writing small
 * files (checkpoints, indexes, markers), renames, deletes, directory fsyncs, and the blocking work it moves off
 * the shard loop ({@link #submitBackground}).
 *
 * <p>Production uses {@link #JDK} (java.nio.file, and one JVM-wide worker thread for background work). The
 * simulator's in-memory engine implements the same calls over its simulated disk
 * ({@link dev.isthmus.uring.sim.SimDisk}), so a simulated node's whole storage is in memory and crash-consistent:
 * a crash keeps exactly what the fsyncs and directory syncs below made durable. Storage reaches it through its
 * engine ({@link IoEngine#fileOps()}), never through {@code java.nio.file.Files} directly.
 *
 * <h2>Durability (what the simulator enforces and POSIX promises)</h2>
 * <ul>
 *   <li>File contents and size are durable after {@link Writer#sync()} (fdatasync) or a {@link DmaFile#datasync}
 *       of the file; before that a crash may keep any part of them, block by block.</li>
 *   <li>A create, rename or delete is durable after {@link #syncDirectory} of its directory; before that a crash
 *       may undo it (a rename is atomic: the old name or the new one).</li>
 * </ul>
 *
 * <h2>Threads</h2>
 * The synchronous calls are short and run on the calling thread (a shard thread only where the class using them
 * says so: opening a log, rare maintenance). Background tasks run on the implementation's worker, in the order
 * they were queued. Implementations are safe for use by several shards at once.
 */
public interface FileOps {
    /** The machine's file system through java.nio.file. */
    FileOps JDK = new JdkFileOps();

    /** Blocking work on a directory's files, run by {@link #submitBackground}. */
    @FunctionalInterface
    interface BackgroundTask {
        void run() throws IOException;
    }

    /** A file opened for writing from the start (created or truncated). Not thread-safe. */
    interface Writer extends AutoCloseable {
        /** Writes all of {@code src} at the current position. */
        void write(ByteBuffer src) throws IOException;

        /** fdatasync: everything written so far is durable when this returns. */
        void sync() throws IOException;

        @Override
        void close() throws IOException;
    }

    /** Creates {@code dir} and any missing parents (as {@code Files.createDirectories}). */
    void createDirectories(Path dir) throws IOException;

    /**
     * Creates {@code dir} and any missing parents and makes their creation durable (a sync of the parent of each
     * directory made): a log directory whose entry a power loss could undo would take its fdatasynced files with it.
     * Does nothing when {@code dir} exists.
     */
    default void createDirectoriesDurably(Path dir) throws IOException {
        java.util.ArrayDeque<Path> missing = new java.util.ArrayDeque<>();
        for (Path p = dir.toAbsolutePath().normalize(); p != null && !exists(p); p = p.getParent()) {
            missing.push(p);
        }
        if (missing.isEmpty()) {
            return;
        }
        createDirectories(dir);
        for (Path p : missing) {
            syncDirectory(p.getParent());
        }
    }

    /** The entries of {@code dir}, sorted by name. */
    List<Path> list(Path dir) throws IOException;

    boolean exists(Path path);

    boolean isRegularFile(Path path);

    /** The size of the file {@code path} in bytes. */
    long size(Path path) throws IOException;

    /** When {@code path} was last written, in wall-clock milliseconds. */
    long lastModifiedMillis(Path path) throws IOException;

    byte[] readAllBytes(Path path) throws IOException;

    /** Opens {@code path} for writing from offset 0, creating it or cutting it to empty. */
    Writer create(Path path) throws IOException;

    /** Sets the size of the existing file {@code path} (ftruncate). */
    void truncate(Path path, long sizeBytes) throws IOException;

    /** Deletes {@code path} if it exists; returns whether it did. */
    boolean deleteIfExists(Path path) throws IOException;

    /** Renames {@code from} to {@code to} atomically; {@code replace}: an existing {@code to} is replaced. */
    void move(Path from, Path to, boolean replace) throws IOException;

    /** fsync(2) of the directory {@code dir}: creates, renames and deletes in it are durable when this returns. */
    void syncDirectory(Path dir) throws IOException;

    /**
     * Queues {@code task} on {@code dir}'s files, to run off the calling thread after every task queued for the same
     * directory before it; {@code what} names it in a failure's warning. A failing task is logged and changes
     * nothing else (see the log-engine's use: everything a task does is redone or found undone at the next open).
     */
    void submitBackground(Path dir, String what, BackgroundTask task);

    /** Waits until every task queued for {@code dir} has run (at once when none is queued). */
    void awaitBackground(Path dir);

    /** Background tasks queued and not finished, all directories together (tests, diagnostics). */
    int backgroundQueued();

    /**
     * Writes {@code bytes} to {@code target} atomically: a temporary file beside it, fdatasync, rename over the
     * target. The rename is durable only after a {@link #syncDirectory} of the directory.
     */
    default void writeAtomically(Path target, byte[] bytes) throws IOException {
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
        try (Writer w = create(tmp)) {
            w.write(ByteBuffer.wrap(bytes));
            w.sync();
        }
        move(tmp, target, true);
    }
}
