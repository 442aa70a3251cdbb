package dev.isthmus.uring.sim;

import dev.isthmus.uring.FileOps;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

/**
 * {@link FileOps} over a {@link SimDisk}: the same calls and the same exceptions as {@link FileOps#JDK}
 * (NoSuchFileException, FileAlreadyExistsException), on the simulated files. Buffered writes complete at once
 * (they are in the page cache) and are durable after {@link Writer#sync()}; renames, creates and deletes after
 * {@link #syncDirectory}. Background tasks run on the simulation's thread when they fall due (the disk's engines
 * run them as they reap), or at once for {@link #awaitBackground}; a crash loses the queued ones.
 *
 * <p>Owner: the simulation's thread.
 */
final class SimFileOps implements FileOps {
    private final SimDisk disk;

    SimFileOps(SimDisk disk) {
        this.disk = disk;
    }

    @Override
    public void createDirectories(Path dir) throws IOException {
        if (!disk.mkdirs(dir)) {
            throw new FileAlreadyExistsException(dir.toString(), null, "a file is in the way");
        }
    }

    @Override
    public List<Path> list(Path dir) throws IOException {
        if (!disk.isDirectory(dir)) {
            throw new NoSuchFileException(dir.toString());
        }
        List<Path> out = disk.list(dir);
        // Answer in the caller's terms: entries resolved against the directory as given.
        for (int i = 0; i < out.size(); i++) {
            out.set(i, dir.resolve(out.get(i).getFileName()));
        }
        return out;
    }

    @Override
    public boolean exists(Path path) {
        return disk.lookup(path) != null || disk.isDirectory(path);
    }

    @Override
    public boolean isRegularFile(Path path) {
        return disk.lookup(path) != null;
    }

    private SimDisk.Inode file(Path path) throws NoSuchFileException {
        SimDisk.Inode i = disk.lookup(path);
        if (i == null) {
            throw new NoSuchFileException(path.toString());
        }
        return i;
    }

    @Override
    public long size(Path path) throws IOException {
        return file(path).size;
    }

    @Override
    public long lastModifiedMillis(Path path) throws IOException {
        return file(path).mtimeMs;
    }

    @Override
    public byte[] readAllBytes(Path path) throws IOException {
        SimDisk.Inode i = file(path);
        byte[] out = new byte[(int) i.size];
        SimDisk.read(i, 0, out, out.length);
        return out;
    }

    @Override
    public Writer create(Path path) throws IOException {
        SimDisk.Inode inode = disk.open(path, true);
        if (inode == null) {
            throw new NoSuchFileException(path.toString(), null, "no such directory");
        }
        if (inode.size > 0) {
            disk.applyNow(inode, new SimDisk.DataOp(SimDisk.DataOp.Kind.SET_SIZE, 0, null, 0));
        }
        return new Writer() {
            private long position;
            private boolean closed;

            @Override
            public void write(ByteBuffer src) throws IOException {
                check();
                byte[] b = new byte[src.remaining()];
                src.get(b);
                disk.applyNow(inode, new SimDisk.DataOp(SimDisk.DataOp.Kind.WRITE, position, b, 0));
                position += b.length;
            }

            @Override
            public void sync() throws IOException {
                check();
                disk.datasync(inode, disk.completionWatermark());
            }

            private void check() throws IOException {
                if (closed) {
                    throw new IOException(path + " is closed");
                }
            }

            @Override
            public void close() {
                closed = true;
            }
        };
    }

    @Override
    public void truncate(Path path, long sizeBytes) throws IOException {
        disk.applyNow(file(path), new SimDisk.DataOp(SimDisk.DataOp.Kind.SET_SIZE, 0, null, sizeBytes));
    }

    @Override
    public boolean deleteIfExists(Path path) {
        return disk.unlink(path);
    }

    @Override
    public void move(Path from, Path to, boolean replace) throws IOException {
        String wrong = disk.rename(from, to, replace);
        if ("missing".equals(wrong)) {
            throw new NoSuchFileException(from.toString(), to.toString(), null);
        }
        if ("exists".equals(wrong)) {
            throw new FileAlreadyExistsException(to.toString());
        }
    }

    @Override
    public void syncDirectory(Path dir) throws IOException {
        if (!disk.isDirectory(dir)) {
            throw new NoSuchFileException(dir.toString());
        }
        disk.syncDirectory(dir, disk.metaWatermark());
    }

    @Override
    public void submitBackground(Path dir, String what, BackgroundTask task) {
        disk.submitBackground(dir, what, task);
    }

    @Override
    public void awaitBackground(Path dir) {
        disk.awaitBackground(dir);
    }

    @Override
    public int backgroundQueued() {
        return disk.backgroundQueued();
    }

    @Override
    public String toString() {
        return "SimFileOps{" + disk + "}";
    }
}
