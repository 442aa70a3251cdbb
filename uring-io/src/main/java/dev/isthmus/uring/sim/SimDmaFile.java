package dev.isthmus.uring.sim;

import dev.isthmus.ffi.Errno;
import dev.isthmus.uring.CompletionHandler;
import dev.isthmus.uring.DmaFile;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Objects;

/**
 * A {@link DmaFile} of a {@link SimDisk}: the same alignment rules as O_DIRECT (misaligned requests are rejected
 * before they are queued), operations completing through its {@link SimEngine}. Owner: the engine's thread.
 */
final class SimDmaFile implements DmaFile {
    private final SimEngine engine;
    private final Path path;
    final SimDisk.Inode inode;
    private final int alignment;
    private boolean closed;

    SimDmaFile(SimEngine engine, Path path, SimDisk.Inode inode, int alignment) {
        this.engine = engine;
        this.path = path;
        this.inode = inode;
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
        return write(buffer, 0, buffer.byteSize(), position, handler, attachment);
    }

    @Override
    public long write(MemorySegment region, long offset, long length, long position, CompletionHandler handler,
                      long attachment) {
        checkOpen();
        Objects.checkFromIndexSize(offset, length, region.byteSize());
        DmaFile.checkAligned(this, position, length, region.address() + offset);
        SimEngine.Op o = engine.newOp(SimEngine.Kind.WRITE, SimFaults.Kind.WRITE);
        if (o == null) {
            return -Errno.EBUSY;
        }
        MemorySegment src = region.asSlice(offset, length);
        byte[] now = src.toArray(ValueLayout.JAVA_BYTE);
        o.file = this;
        o.position = position;
        o.length = length;
        if (engine.random().nextDouble() < engine.diskOf().faults.lateBufferReadRate) {
            o.buffer = src; // taken again at completion: whatever the buffer holds then lands
        }
        o.data = engine.diskOf().begin(inode, new SimDisk.DataOp(SimDisk.DataOp.Kind.WRITE, position, now, 0));
        o.handler = handler;
        o.attachment = attachment;
        return engine.submit(o);
    }

    @Override
    public long read(MemorySegment buffer, long position, CompletionHandler handler, long attachment) {
        checkOpen();
        DmaFile.checkAligned(this, position, buffer.byteSize(), buffer.address());
        SimEngine.Op o = engine.newOp(SimEngine.Kind.READ, SimFaults.Kind.READ);
        if (o == null) {
            return -Errno.EBUSY;
        }
        o.file = this;
        o.buffer = buffer;
        o.position = position;
        o.length = buffer.byteSize();
        o.handler = handler;
        o.attachment = attachment;
        return engine.submit(o);
    }

    @Override
    public long allocate(long position, long length, boolean keepSize, CompletionHandler handler, long attachment) {
        checkOpen();
        if (position < 0 || length <= 0) {
            throw new IllegalArgumentException("fallocate of " + path + ": bad range [" + position + ", +" + length + ")");
        }
        SimEngine.Op o = engine.newOp(SimEngine.Kind.ALLOCATE, SimFaults.Kind.ALLOCATE);
        if (o == null) {
            return -Errno.EBUSY;
        }
        o.file = this;
        o.position = position;
        o.length = length;
        o.keepSize = keepSize;
        // Reserving blocks changes nothing readable; growing the file is a size change like any other.
        o.data = engine.diskOf().begin(inode, new SimDisk.DataOp(SimDisk.DataOp.Kind.GROW, 0, null,
            keepSize ? 0 : position + length));
        o.handler = handler;
        o.attachment = attachment;
        return engine.submit(o);
    }

    @Override
    public long datasync(CompletionHandler handler, long attachment) {
        checkOpen();
        SimEngine.Op o = engine.newOp(SimEngine.Kind.DATASYNC, SimFaults.Kind.DATASYNC);
        if (o == null) {
            return -Errno.EBUSY;
        }
        o.file = this;
        o.watermark = engine.diskOf().completionWatermark();
        o.handler = handler;
        o.attachment = attachment;
        return engine.submit(o);
    }

    @Override
    public long size() {
        checkOpen();
        return inode.size;
    }

    @Override
    public void truncate(long sizeBytes) {
        checkOpen();
        if (engine.isCrashed()) {
            throw new IllegalStateException("the simulated machine crashed under " + path);
        }
        engine.diskOf().applyNow(inode, new SimDisk.DataOp(SimDisk.DataOp.Kind.SET_SIZE, 0, null, sizeBytes));
    }

    @Override
    public void close() {
        closed = true;
    }

    @Override
    public String toString() {
        return "SimDmaFile{" + path + ", " + inode + "}";
    }
}
