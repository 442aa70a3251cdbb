package dev.isthmus.uring;

import dev.isthmus.ffi.Libc;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/** {@link DmaFile} on io_uring. Owner: the ring's thread. */
final class UringDmaFile implements DmaFile {
    private final Ring ring;
    private final int fd;
    private final Path path;
    private final int alignment;
    private boolean closed;

    UringDmaFile(Ring ring, int fd, Path path, int alignment) {
        this.ring = ring;
        this.fd = fd;
        this.path = path;
        this.alignment = alignment;
    }

    @Override
    public Path path() {
        return path;
    }

    @Override
    public int alignment() {
        return alignment;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException(path + " is closed");
        }
    }

    @Override
    public long write(MemorySegment buffer, long position, CompletionHandler handler, long attachment) {
        checkOpen();
        DmaFile.checkAligned(this, position, buffer.byteSize(), buffer.address());
        return ring.write(fd, buffer, position, alignment, handler, attachment);
    }

    @Override
    public long write(MemorySegment region, long offset, long length, long position, CompletionHandler handler,
                      long attachment) {
        checkOpen();
        java.util.Objects.checkFromIndexSize(offset, length, region.byteSize());
        DmaFile.checkAligned(this, position, length, region.address() + offset);
        return ring.write(fd, region.address() + offset, length, position, alignment, handler, attachment);
    }

    @Override
    public long read(MemorySegment buffer, long position, CompletionHandler handler, long attachment) {
        checkOpen();
        DmaFile.checkAligned(this, position, buffer.byteSize(), buffer.address());
        return ring.read(fd, buffer, position, alignment, handler, attachment);
    }

    @Override
    public long allocate(long position, long length, boolean keepSize, CompletionHandler handler, long attachment) {
        checkOpen();
        if (position < 0 || length <= 0) {
            throw new IllegalArgumentException("fallocate of " + path + ": bad range [" + position + ", +" + length + ")");
        }
        return ring.fallocate(fd, keepSize ? Libc.FALLOC_FL_KEEP_SIZE : 0, position, length, handler, attachment);
    }

    @Override
    public long datasync(CompletionHandler handler, long attachment) {
        checkOpen();
        return ring.fsync(fd, true, handler, attachment);
    }

    @Override
    public long size() {
        checkOpen();
        return UringEngine.fileSize(fd, path);
    }

    @Override
    public void truncate(long sizeBytes) {
        checkOpen();
        Libc.check(Libc.ftruncate(fd, sizeBytes), "ftruncate(" + path + ", " + sizeBytes + ")");
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            Libc.close(fd);
        }
    }

    @Override
    public String toString() {
        return "DmaFile{" + path + ", fd=" + fd + ", align=" + alignment + "}";
    }
}
