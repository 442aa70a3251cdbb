package dev.isthmus.bench.chaos;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A node's data directory on a small file system of its own, so that the disk can be filled: a sparse image
 * file formatted as ext4 (no blocks reserved for root, since the broker runs as root here) and mounted through
 * a loop device. {@link #fill()} takes every free block with a hog file ({@code fallocate}, then writes until
 * ENOSPC for the last blocks), {@link #free()} deletes it. The image is sparse and the hog only allocates, so
 * the disk under it grows by what the broker writes, not by the image's size.
 *
 * <p>Lifecycle: mounted before the node first starts, unmounted (and the image removed) after it has stopped;
 * registered with the run's cleanup. Used by the nemesis thread and the run's thread, one at a time.
 */
final class LoopDisk implements AutoCloseable {
    private static final String HOG = "chaos-disk-hog";

    private final Path image;
    private final Path mountPoint;
    private boolean mounted;
    private boolean full;

    private LoopDisk(Path image, Path mountPoint) {
        this.image = image;
        this.mountPoint = mountPoint;
    }

    /** Why loop-mounted file systems cannot be made here, or null when they can. */
    static String unavailableReason() {
        if (!Sys.root()) {
            return "mounting a loop device needs root (running as " + System.getProperty("user.name") + ")";
        }
        for (String p : new String[] {"mkfs.ext4", "mount", "umount", "fallocate", "losetup"}) {
            if (!Sys.has(p)) {
                return p + " is missing";
            }
        }
        if (!Files.exists(Path.of("/dev/loop-control")) && !Files.exists(Path.of("/dev/loop0"))) {
            return "there are no loop devices (/dev/loop-control)";
        }
        return null;
    }

    /** Makes an image of {@code sizeBytes} next to {@code mountPoint}, formats it and mounts it there. */
    static LoopDisk mount(Path image, Path mountPoint, long sizeBytes) {
        LoopDisk d = new LoopDisk(image, mountPoint);
        try {
            Files.createDirectories(mountPoint);
            try (FileChannel c = FileChannel.open(image, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                c.truncate(0);
                c.write(ByteBuffer.wrap(new byte[1]), sizeBytes - 1); // sparse
            }
        } catch (IOException e) {
            throw new ChaosException("cannot make the disk image " + image + ": " + e.getMessage(), e);
        }
        Sys.must("mkfs.ext4", "-q", "-F", "-m", "0", "-E", "nodiscard", image.toString());
        Sys.must("mount", "-o", "loop", image.toString(), mountPoint.toString());
        d.mounted = true;
        return d;
    }

    Path mountPoint() {
        return mountPoint;
    }

    boolean full() {
        return full;
    }

    /** Free bytes of the file system now. */
    long freeBytes() {
        try {
            return Files.getFileStore(mountPoint).getUsableSpace();
        } catch (IOException e) {
            return -1;
        }
    }

    /** Takes every free block; returns the bytes the hog took. */
    long fill() {
        Path hog = mountPoint.resolve(HOG);
        long free = freeBytes();
        long took = 0;
        if (free > 0 && Sys.run("fallocate", "-l", Long.toString(free), hog.toString()).ok()) {
            took = free;
        } else {
            // fallocate wants a few blocks for the extent tree: take a little less, then write the rest.
            Sys.run("fallocate", "-l", Long.toString(Math.max(0, free - (4L << 20))), hog.toString());
            took = hog.toFile().length();
        }
        full = true;
        Path rest = mountPoint.resolve(HOG + "-tail");
        try (FileChannel c = FileChannel.open(rest, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.APPEND)) {
            ByteBuffer b = ByteBuffer.allocate(64 * 1024);
            for (int i = 0; i < 4096; i++) { // at most 256 MiB: the fallocate above took all but a few MiB
                b.clear();
                took += c.write(b);
            }
        } catch (IOException e) {
            // ENOSPC: the file system is full now.
        }
        return took;
    }

    /** Deletes the hog: the space is free again. */
    void free() {
        try {
            Files.deleteIfExists(mountPoint.resolve(HOG));
            Files.deleteIfExists(mountPoint.resolve(HOG + "-tail"));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete the disk hog in " + mountPoint + ": " + e.getMessage(), e);
        }
        full = false;
    }

    @Override
    public void close() {
        if (mounted) {
            Sys.Result r = Sys.run("umount", mountPoint.toString());
            if (!r.ok()) {
                r = Sys.run("umount", "-l", mountPoint.toString());
            }
            mounted = false;
            if (!r.ok()) {
                throw new ChaosException("cannot unmount " + mountPoint + ": " + r.output());
            }
        }
        try {
            Files.deleteIfExists(image);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
