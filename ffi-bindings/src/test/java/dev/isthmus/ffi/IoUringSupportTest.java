package dev.isthmus.ffi;

import dev.isthmus.ffi.gen.uring.IoUring;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class IoUringSupportTest {
    @Test
    void shouldProbeWithoutThrowingAndExplainTheOutcome() {
        IoUringSupport s = IoUringSupport.probe();
        assertNotNull(s.reason());
        if (s.usable()) {
            assertEquals("ok", s.reason());
            assertTrue(s.supports(IoUring.IORING_OP_MSG_RING()));
            assertTrue((s.features() & IoUring.IORING_FEAT_EXT_ARG()) != 0);
        } else {
            assertFalse(s.reason().isBlank());
        }
    }

    @Test
    void shouldFindLiburing() {
        // CI installs liburing2; the loader's message names the package if it is missing.
        assertTrue(LibUring.isAvailable(), String.valueOf(LibUring.unavailableReason()));
    }
}
