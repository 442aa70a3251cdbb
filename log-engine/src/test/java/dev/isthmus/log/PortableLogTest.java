package dev.isthmus.log;

import dev.isthmus.uring.IoBackend;

/** Every {@link LogTest} again on the portable backend (FileChannel with O_DIRECT on worker threads). */
class PortableLogTest extends LogTest {
    @Override
    IoBackend backend() {
        return IoBackend.PORTABLE;
    }
}
