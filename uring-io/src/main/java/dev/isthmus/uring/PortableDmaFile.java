package dev.isthmus.uring;

import dev.isthmus.ffi.Libc;

import dev.isthmus.ffi.Errno;

import com.sun.nio.file.ExtendedOpenOption;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * {@link DmaFile} through {@link FileChannel} with {@link ExtendedOpenOption#DIRECT}; operations run on the
 * portable engine's worker threads. fallocate has no FileChannel equivalent: it is the fallocate(2) system call
 * on a second descriptor of the same file (FFM still works where io_uring is blocked).
 */
final class PortableDmaFile implements DmaFile {

    private final PortableEngine engine;
    private final FileChannel channel;
    private final Path path;
    private final int alignment;
    private boolean closed;

    private PortableDmaFile(PortableEngine engine, FileChannel channel, Path path, int alignment) {
        this.engine = engine;
        this.channel = channel;
        this.path = path;
        this.alignment = alignment;
    }

    static PortableDmaFile open(PortableEngine engine, Path path, boolean create) {
        List<OpenOption> options = new ArrayList<>(List.of(StandardOpenOption.READ, StandardOpenOption.WRITE,
            ExtendedOpenOption.DIRECT));
        if (create) {
            options.add(StandardOpenOption.CREATE);
        }
        try {
            FileChannel ch = FileChannel.open(path, options.toArray(new OpenOption[0]));
            // The JDK demands the file store's block size for DIRECT; never less than 4096 here.
            int align = (int) Math.max(4096, Files.getFileStore(path).getBlockSize());
            return new PortableDmaFile(engine, ch, path, align);
        } catch (IOException e) {
            throw new dev.isthmus.ffi.ErrnoException("open(" + path + ", DIRECT): " + e.getMessage(),
                -PortableEngine.errnoOf(e));
        }
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
        return engine.submitFileOp(() -> {
            try {
                ByteBuffer bb = unconfined(buffer).asByteBuffer();
                long pos = position;
                while (bb.hasRemaining()) {
                    pos += channel.write(bb, pos);
                }
                return (int) buffer.byteSize();
            } catch (IOException e) {
                return PortableEngine.errnoOf(e);
            }
        }, handler, attachment);
    }

    @Override
    public long read(MemorySegment buffer, long position, CompletionHandler handler, long attachment) {
        checkOpen();
        DmaFile.checkAligned(this, position, buffer.byteSize(), buffer.address());
        return engine.submitFileOp(() -> {
            try {
                ByteBuffer bb = unconfined(buffer).asByteBuffer();
                long pos = position;
                while (bb.hasRemaining()) {
                    int n = channel.read(bb, pos);
                    if (n <= 0) {
                        break;
                    }
                    pos += n;
                    if ((bb.position() & (alignment - 1)) != 0) {
                        // A direct read that stops short of a block boundary reached the end of the file (as on
                        // io_uring); reading on from an unaligned position would fail with EINVAL.
                        break;
                    }
                }
                return bb.position();
            } catch (IOException e) {
                return PortableEngine.errnoOf(e);
            }
        }, handler, attachment);
    }

    /**
     * The worker thread may not touch a segment confined to the owner; the contract (the buffer stays valid
     * and untouched until the completion) makes a global view of the same memory safe.
     */
    private static MemorySegment unconfined(MemorySegment buffer) {
        return buffer.isNative() ? MemorySegment.ofAddress(buffer.address()).reinterpret(buffer.byteSize()) : buffer;
    }

    @Override
    public long allocate(long position, long length, boolean keepSize, CompletionHandler handler, long attachment) {
        checkOpen();
        if (position < 0 || length <= 0) {
            throw new IllegalArgumentException("fallocate of " + path + ": bad range [" + position + ", +" + length + ")");
        }
        return engine.submitFileOp(() -> {
            // The real fallocate(2) through a second descriptor: it only allocates, it never writes zeros over
            // data. (An earlier emulation wrote zero blocks from the current size, which raced with data
            // writes in flight on other workers and zeroed acknowledged records.)
            int fd = Libc.open(path.toString(), Libc.O_RDWR | Libc.O_CLOEXEC, 0);
            if (fd < 0) {
                return fd;
            }
            try {
                int r = Libc.fallocate(fd, keepSize ? Libc.FALLOC_FL_KEEP_SIZE : 0, position, length);
                return r == -Errno.EOPNOTSUPP && keepSize ? 0 : r;
            } finally {
                Libc.close(fd);
            }
        }, handler, attachment);
    }

    @Override
    public long datasync(CompletionHandler handler, long attachment) {
        checkOpen();
        return engine.submitFileOp(() -> {
            try {
                channel.force(false);
                return 0;
            } catch (IOException e) {
                return PortableEngine.errnoOf(e);
            }
        }, handler, attachment);
    }

    @Override
    public long size() {
        checkOpen();
        try {
            return channel.size();
        } catch (IOException e) {
            throw new dev.isthmus.ffi.ErrnoException("size(" + path + "): " + e.getMessage(), -PortableEngine.errnoOf(e));
        }
    }

    @Override
    public void truncate(long sizeBytes) {
        checkOpen();
        try (java.io.RandomAccessFile raf = new java.io.RandomAccessFile(path.toFile(), "rw")) {
            raf.setLength(sizeBytes);
        } catch (IOException e) {
            throw new dev.isthmus.ffi.ErrnoException("truncate(" + path + ", " + sizeBytes + "): " + e.getMessage(),
                -PortableEngine.errnoOf(e));
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            PortableEngine.closeQuietly(channel);
        }
    }
}
