package dev.isthmus.gateway;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Writes partitions' producer-state snapshots ({@link Partition#PRODUCER_SNAPSHOT}) off the shard threads: the
 * bytes are made on the partition's shard, then written to a temporary file, fdatasynced and renamed over the
 * snapshot here, which can take milliseconds (tens of them when the file system's journal is busy) that a
 * shard loop must not wait for.
 *
 * <p>One daemon thread per JVM writes every partition's snapshots in the order they were submitted, so a
 * partition's later snapshot never lands before an earlier one. The result is a future completed on that
 * thread; the partition hands it back to its shard. Thread-safe.
 */
final class ProducerSnapshots {
    private static final ExecutorService WRITER = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "isthmus-producer-snapshots");
        t.setDaemon(true);
        return t;
    });

    private ProducerSnapshots() {
    }

    /**
     * Queues a write of {@code bytes} as {@code dir}/producers.snapshot; the future completes with null when it
     * is durable, or with the error's message.
     */
    static CompletableFuture<String> write(Path dir, byte[] bytes) {
        return CompletableFuture.supplyAsync(() -> {
            try {
                writeNow(dir, bytes);
                return null;
            } catch (IOException | RuntimeException e) {
                return e.getMessage() == null ? e.toString() : e.getMessage();
            }
        }, WRITER);
    }

    /** Writes {@code bytes} durably as the snapshot of {@code dir}: temporary file, fdatasync, atomic rename. */
    static void writeNow(Path dir, byte[] bytes) throws IOException {
        Path file = dir.resolve(Partition.PRODUCER_SNAPSHOT);
        Path tmp = dir.resolve(Partition.PRODUCER_SNAPSHOT + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer b = ByteBuffer.wrap(bytes);
            while (b.hasRemaining()) {
                ch.write(b);
            }
            ch.force(false);
        }
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }
}
