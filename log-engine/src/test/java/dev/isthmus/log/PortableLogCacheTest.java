package dev.isthmus.log;

import dev.isthmus.uring.IoBackend;

/** Every {@link LogCacheTest} again on the portable backend (FileChannel with O_DIRECT on worker threads). */
class PortableLogCacheTest extends LogCacheTest {
    @Override
    IoBackend backend() {
        return IoBackend.PORTABLE;
    }
}
