package dev.isthmus.ffi;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import dev.isthmus.ffi.gen.libc.statx;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LibcTest {
    @TempDir
    Path dir;

    @Test
    void shouldReturnNegativeErrnoForMissingFile() {
        int fd = Libc.open(dir.resolve("missing").toString(), Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
        assertEquals(-Errno.ENOENT, fd);
        ErrnoException e = assertThrows(ErrnoException.class, () -> Libc.check(fd, "open(missing)"));
        assertEquals("open(missing): ENOENT (No such file or directory)", e.getMessage());
        assertEquals(Errno.ENOENT, e.errno());
    }

    @Test
    void shouldWriteAlignedBlockWithDirectIoAndReadItBack() throws Exception {
        Path file = dir.resolve("direct.bin");
        int fd = Libc.check(Libc.open(file.toString(), Libc.O_RDWR | Libc.O_CREAT | Libc.O_DIRECT | Libc.O_CLOEXEC, 0644),
            "open");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(4096, 4096);
            for (int i = 0; i < 4096; i++) {
                buf.set(ValueLayout.JAVA_BYTE, i, (byte) i);
            }
            assertEquals(0, Libc.fallocate(fd, 0, 0, 1 << 20));
            assertEquals(4096, Libc.pwrite(fd, buf, 4096, 8192));
            assertEquals(0, Libc.fdatasync(fd));
            MemorySegment back = arena.allocate(4096, 4096);
            assertEquals(4096, Libc.pread(fd, back, 4096, 8192));
            assertArrayEquals(buf.toArray(ValueLayout.JAVA_BYTE), back.toArray(ValueLayout.JAVA_BYTE));
            // A misaligned file offset is refused by the kernel with EINVAL (memory alignment rules vary by device).
            assertEquals(-Errno.EINVAL, Libc.pwrite(fd, buf, 4096, 1));
        } finally {
            assertEquals(0, Libc.close(fd));
        }
        assertEquals(1 << 20, Files.size(file));
    }

    @Test
    void shouldReportDirectIoAlignmentThroughStatx() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = arena.allocate(statx.layout());
            int r = Libc.statx(Libc.AT_FDCWD, arena.allocateFrom(dir.toString()), 0,
                Libc.STATX_DIOALIGN | Libc.STATX_SIZE, st);
            assertEquals(0, r);
            if ((statx.stx_mask(st) & Libc.STATX_DIOALIGN) != 0) {
                int memAlign = statx.stx_dio_mem_align(st);
                int offAlign = statx.stx_dio_offset_align(st);
                // Directories report 0 (no direct I/O on a directory); files on ext4 report a power of two.
                assertTrue(memAlign == 0 || Integer.bitCount(memAlign) == 1, "mem align " + memAlign);
                assertTrue(offAlign == 0 || Integer.bitCount(offAlign) == 1, "offset align " + offAlign);
            }
        }
    }

    @Test
    void shouldMapAndUnmapAnonymousMemory() {
        MemorySegment m = Libc.mmapAnonymous(1 << 20, true);
        assertEquals(0, m.address() % Libc.PAGE_SIZE);
        m.set(ValueLayout.JAVA_LONG, (1 << 20) - 8, 42L);
        assertEquals(42L, m.get(ValueLayout.JAVA_LONG, (1 << 20) - 8));
        assertEquals(0, Libc.munmap(m));
    }

    @Test
    void shouldListAllowedCpusAndPinToOne() throws Exception {
        int[] cpus = Libc.allowedCpus();
        assertTrue(cpus.length >= 1);
        Thread t = new Thread(() -> assertEquals(0, Libc.pinCurrentThread(cpus[cpus.length - 1])));
        t.start();
        t.join();
        assertEquals(-Errno.EINVAL, Libc.pinCurrentThread(-1));
    }

    @Test
    void shouldDescribeErrnoValues() {
        assertEquals("EAGAIN", Errno.name(-Errno.EAGAIN));
        assertTrue(Errno.text(Errno.ECONNREFUSED).toLowerCase().contains("refused"));
        assertEquals("errno 4000", Errno.name(4000));
    }

    @Test
    void shouldKnowTheIoUringSyscallNumbersOfX8664AndTheGenericTable() {
        assertEquals(425, Libc.ioUringSyscallBase("amd64"));
        assertEquals(425, Libc.ioUringSyscallBase("aarch64"));
        assertEquals(425, Libc.ioUringSyscallBase("riscv64"));
        assertEquals(-1, Libc.ioUringSyscallBase("sparcv9"));
        assertEquals(Libc.SYS_IO_URING_SETUP + 1, Libc.SYS_IO_URING_ENTER);
        assertEquals(Libc.SYS_IO_URING_SETUP + 2, Libc.SYS_IO_URING_REGISTER);
    }

    @Test
    void shouldMakeTheIoUringSystemCallsThroughLibcAndReturnNegativeErrno() {
        int notOpen = 999_999; // (fd -1 means "no ring" to io_uring_register since Linux 6.13)
        assertEquals(-Errno.EBADF, Libc.ioUringEnter(notOpen, 0, 0, 0, MemorySegment.NULL, 0));
        assertEquals(-Errno.EBADF, Libc.ioUringRegister(notOpen, 0, MemorySegment.NULL, 0));
        org.junit.jupiter.api.Assumptions.assumeTrue(IoUringSupport.probe().usable(), IoUringSupport.probe().explanation());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = arena.allocate(dev.isthmus.ffi.gen.uring.io_uring_params.layout());
            assertEquals(-Errno.EINVAL, Libc.ioUringSetup(0, params), "zero entries");
            params.fill((byte) 0);
            int fd = Libc.check(Libc.ioUringSetup(4, params), "io_uring_setup");
            try {
                assertEquals(4, dev.isthmus.ffi.gen.uring.io_uring_params.sq_entries(params));
                // Nothing to submit and nothing to wait for: the kernel consumes zero SQEs.
                assertEquals(0, Libc.ioUringEnter(fd, 0, 0, 0, MemorySegment.NULL, 0));
                // An unknown register opcode is refused with EINVAL, through errno.
                assertEquals(-Errno.EINVAL, Libc.ioUringRegister(fd, 0xffff, MemorySegment.NULL, 0));
            } finally {
                Libc.close(fd);
            }
        }
    }

    @Test
    void shouldUseArm64sOwnODirectAndODirectory() {
        assertEquals(0x4000, Libc.oDirect("amd64"));
        assertEquals(0x10000, Libc.oDirectory("amd64"));
        assertEquals(0x10000, Libc.oDirect("aarch64"));
        assertEquals(0x4000, Libc.oDirectory("aarch64"));
    }
}
