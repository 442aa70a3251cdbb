package dev.isthmus.uring;

import dev.isthmus.ffi.Errno;
import dev.isthmus.ffi.Libc;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RingTest {
    @TempDir
    Path dir;
    Ring ring;
    final List<long[]> completions = new ArrayList<>();
    final CompletionHandler record = (res, flags, att) -> completions.add(new long[] {res, flags, att});

    @BeforeEach
    void open() {
        ring = Ring.create(RingConfig.defaults().withEntries(32));
    }

    @AfterEach
    void close() {
        ring.close();
    }

    private void awaitCompletions(int n) {
        for (int i = 0; i < 10_000 && completions.size() < n; i++) {
            ring.submitAndWait(100_000_000L);
        }
        assertEquals(n, completions.size(), "completions");
    }

    @Test
    void shouldCompleteNopsWithTheirAttachments() {
        for (int i = 0; i < 100; i++) {
            assertTrue(ring.nop(record, i) >= 0);
        }
        awaitCompletions(100);
        long sum = 0;
        for (long[] c : completions) {
            assertEquals(0, c[0]);
            sum += c[2];
        }
        assertEquals(99 * 100 / 2, sum);
        assertEquals(0, ring.inFlight());
    }

    @Test
    void shouldRunWithoutLiburingMapped() throws Exception {
        // The three io_uring system calls go through libc's syscall(2): set up, enter, register.
        assertTrue(ring.nop(record, 1) >= 0);
        awaitCompletions(1);
        try (Arena a = Arena.ofConfined()) {
            ring.registerBuffers(a.allocate(4096, 4096));
            ring.unregisterBuffers();
        }
        for (String line : java.nio.file.Files.readAllLines(Path.of("/proc/self/maps"))) {
            assertFalse(line.contains("liburing"), "liburing is mapped: " + line);
        }
    }

    @Test
    void shouldFireTimeoutWithEtime() {
        ring.timeout(1_000_000L, record, 7);
        awaitCompletions(1);
        assertEquals(-Errno.ETIME, completions.get(0)[0]);
    }

    @Test
    void shouldCancelTimeout() {
        long ud = ring.timeout(60_000_000_000L, record, 1);
        ring.submitAndWait(0);
        ring.cancel(ud, record, 2);
        awaitCompletions(2);
        boolean sawCancelled = completions.stream().anyMatch(c -> c[2] == 1 && c[0] == -Errno.ECANCELED);
        assertTrue(sawCancelled);
    }

    @Test
    void shouldReportBadFdAsNegativeErrno() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(4096, 4096);
            ring.write(12345, buf, 0, 1, record, 0);
            awaitCompletions(1);
            assertEquals(-Errno.EBADF, completions.get(0)[0]);
        }
    }

    @Test
    void shouldWakeFromAnotherThread() throws Exception {
        Thread t = new Thread(ring::wakeup);
        t.start();
        t.join();
        // A blocking wait returns because of the wakeup, not the (one minute) timeout.
        ring.submitAndWait(60_000_000_000L);
        assertTrue(ring.stats().get(RingStats.WAKEUPS) >= 1);
    }

    @Test
    void shouldRejectUseFromAnotherThread() throws Exception {
        Throwable[] thrown = new Throwable[1];
        Thread t = new Thread(() -> {
            try {
                ring.nop(record, 0);
            } catch (Throwable e) {
                thrown[0] = e;
            }
        });
        t.start();
        t.join();
        assertTrue(thrown[0] instanceof IllegalStateException);
    }

    @Test
    void shouldWriteAndReadFileThroughRing() {
        int fd = Libc.check(Libc.open(dir.resolve("f").toString(), Libc.O_RDWR | Libc.O_CREAT | Libc.O_DIRECT, 0644), "open");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(1 << 16, 4096);
            for (int i = 0; i < buf.byteSize(); i++) {
                buf.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 31));
            }
            ring.write(fd, buf, 4096, 4096, record, 1);
            ring.linkNext();
            ring.fsync(fd, true, record, 2);
            awaitCompletions(2);
            assertEquals(1 << 16, completions.get(0)[0]);
            assertEquals(0, completions.get(1)[0]);
            MemorySegment back = a.allocate(1 << 16, 4096);
            ring.read(fd, back, 4096, 4096, record, 3);
            awaitCompletions(3);
            assertEquals(1 << 16, completions.get(2)[0]);
            assertEquals(-1L, buf.mismatch(back));
            // Reading past the end returns what is there.
            ring.read(fd, back, 4096 + 32768, 4096, record, 4);
            awaitCompletions(4);
            assertEquals(32768, completions.get(3)[0]);
        } finally {
            Libc.close(fd);
        }
    }

    @Test
    void shouldCompleteADirectReadAtAnUnalignedEndOfFile() throws Exception {
        java.nio.file.Path p = dir.resolve("short");
        byte[] content = new byte[10_000];
        new java.util.Random(5).nextBytes(content);
        java.nio.file.Files.write(p, content);
        int fd = Libc.check(Libc.open(p.toString(), Libc.O_RDONLY | Libc.O_DIRECT, 0), "open");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(16384, 4096);
            ring.read(fd, buf, 0, 512, record, 1);
            awaitCompletions(1);
            assertEquals(10_000, completions.get(0)[0]);
            assertEquals(-1L, MemorySegment.ofArray(content).mismatch(buf.asSlice(0, 10_000)));
        } finally {
            Libc.close(fd);
        }
    }

    @Test
    void shouldFailOperationsAfterClose() {
        ring.close();
        assertThrows(IllegalStateException.class, () -> ring.nop(record, 0));
    }
}
