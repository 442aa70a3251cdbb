package dev.isthmus.log;

import com.github.luben.zstd.ZstdInputStreamNoFinalizer;
import com.github.luben.zstd.ZstdOutputStreamNoFinalizer;
import net.jpountz.lz4.LZ4Compressor;
import net.jpountz.lz4.LZ4Factory;
import net.jpountz.lz4.LZ4SafeDecompressor;
import net.jpountz.xxhash.StreamingXXHash32;
import net.jpountz.xxhash.XXHash32;
import net.jpountz.xxhash.XXHashFactory;
import org.xerial.snappy.Snappy;
import org.xerial.snappy.SnappyOutputStream;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;

/**
 * Kafka's record compression codecs (a v2 batch's attributes bits 0-2): the records area of a batch, everything
 * after its 61-byte header, is one compressed stream in the codec's framing, exactly as Kafka's clients write and
 * read it:
 * <ul>
 *   <li>{@link #GZIP}: a gzip stream (RFC 1952), written by {@link GZIPOutputStream} at the default level as
 *       Kafka's producer does; members may be concatenated.</li>
 *   <li>{@link #SNAPPY}: xerial snappy-java's stream framing ({@link SnappyOutputStream}, as Kafka and librdkafka
 *       use it): a 16-byte header ({@code 0x82 "SNAPPY" 0}, version 1, compatible version 1, big-endian ints), then
 *       chunks of a big-endian i32 length and a raw snappy block of at most 32 KiB of input each. A stream without
 *       the header is one raw snappy block, as snappy-java reads it.</li>
 *   <li>{@link #LZ4}: the LZ4 frame format (magic {@code 0x184D2204}, FLG, BD, header checksum, blocks, end mark)
 *       as Kafka's {@code Lz4BlockOutputStream} writes it: independent 64 KiB blocks, no checksums, the fast
 *       compressor. Reading accepts what Kafka reads: block and content checksums and a content size when flagged,
 *       block sizes up to 4 MiB; dependent blocks and dictionaries are refused, as Kafka refuses them.</li>
 *   <li>{@link #ZSTD}: zstd frames, written at level 3 (Kafka's default) by zstd-jni's stream, flushed before the
 *       frame ends as Kafka's buffered writer does.</li>
 * </ul>
 *
 * <h2>Bounded decompression</h2>
 * {@link #decompress} takes the largest output the caller allows and stops as soon as the stream would exceed
 * it, so a small batch that inflates to gigabytes (a "zip bomb") costs at most that many bytes and the time to
 * produce them, never an {@link OutOfMemoryError}. Snappy and LZ4 blocks are parsed here, so no length read
 * from the input sizes an allocation before it is checked against the bound (snappy-java's own stream trusts
 * its chunk lengths). Malformed input of any codec throws {@link LogException} of kind
 * {@link LogException.Kind#CORRUPT_MESSAGE}; output beyond the bound throws kind
 * {@link LogException.Kind#MESSAGE_TOO_LARGE}. Neither leaks a library's exception.
 *
 * <h2>Threads</h2>
 * The constants are stateless and may be used from any thread at once; each call makes its own codec state
 * (the native zstd and the LZ4 tables live only for the call). An {@link Output} belongs to one thread (the
 * produce path keeps one per shard and reuses it). Compression is CPU work on the caller's thread: the broker
 * does it on the shard that owns the partition, bounded by the batch limits, as Kafka does it on its request
 * handler threads.
 */
public enum Compression {
    NONE(0, "none"),
    GZIP(1, "gzip"),
    SNAPPY(2, "snappy"),
    LZ4(3, "lz4"),
    ZSTD(4, "zstd");

    /** The codec's id in a batch's attributes (bits 0-2). */
    public final int id;
    /** The codec's name in Kafka configs (compression.type; "uncompressed" also names {@link #NONE} there). */
    public final String configName;

    private static final Compression[] BY_ID = values();
    /** Kafka's default zstd level (compression.zstd.level). */
    static final int ZSTD_LEVEL = 3;
    /** The snappy-java block size Kafka's producer writes with (SnappyOutputStream's default). */
    static final int SNAPPY_BLOCK_BYTES = 32 * 1024;
    static final byte[] SNAPPY_MAGIC = {(byte) 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
    static final int SNAPPY_HEADER_BYTES = 16;
    static final int LZ4_MAGIC = 0x184D2204;
    /** Kafka's LZ4 block size id (64 KiB blocks). */
    static final int LZ4_BLOCK_SIZE_ID = 4;
    private static final int LZ4_UNCOMPRESSED_BIT = 0x80000000;
    private static final int GZIP_BUFFER_BYTES = 8 * 1024;
    private static final int STREAM_STEP_BYTES = 16 * 1024;
    private static final ValueLayout.OfInt INT_BE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    Compression(int id, String configName) {
        this.id = id;
        this.configName = configName;
    }

    /** The codec with attributes id {@code id} (0-4), or null for ids Kafka does not define (5-7). */
    public static Compression ofId(int id) {
        return id >= 0 && id < BY_ID.length ? BY_ID[id] : null;
    }

    /**
     * The codec a compression.type value names ({@code none} or {@code uncompressed}, {@code gzip}, {@code snappy},
     * {@code lz4}, {@code zstd}), or null for anything else (including {@code producer}, which names no codec).
     */
    public static Compression ofName(String name) {
        if (name == null) {
            return null;
        }
        if (name.equals("uncompressed")) {
            return NONE;
        }
        for (Compression c : BY_ID) {
            if (c.configName.equals(name)) {
                return c;
            }
        }
        return null;
    }

    // ------------------------------------------------------------------------------------------ decompression

    /**
     * Decompresses the whole stream {@code src} into {@code out} (which is emptied first) and returns the number of
     * bytes produced.
     *
     * @param maxBytes the largest output allowed; the stream is not decoded past it
     * @throws LogException {@link LogException.Kind#CORRUPT_MESSAGE} when {@code src} is not a well-formed stream of
     *                      this codec, {@link LogException.Kind#MESSAGE_TOO_LARGE} when it holds more than
     *                      {@code maxBytes}
     */
    public int decompress(MemorySegment src, Output out, int maxBytes) {
        out.reset();
        try {
            switch (this) {
                case NONE -> {
                    checkBound(src.byteSize(), maxBytes);
                    out.append(src);
                }
                case GZIP -> drain(new GZIPInputStream(new SegmentInputStream(src), GZIP_BUFFER_BYTES), out, maxBytes);
                case SNAPPY -> snappyDecompress(src, out, maxBytes);
                case LZ4 -> lz4Decompress(src, out, maxBytes);
                case ZSTD -> drain(new ZstdInputStreamNoFinalizer(new SegmentInputStream(src)), out, maxBytes);
            }
        } catch (LogException e) {
            out.reset();
            throw e;
        } catch (IOException | RuntimeException e) {
            out.reset();
            throw new LogException(LogException.Kind.CORRUPT_MESSAGE, "records are not a valid " + configName
                + " stream" + describe(e));
        }
        return out.size();
    }

    private static String describe(Throwable e) {
        String m = e.getMessage();
        if (m == null || m.isBlank()) {
            return "";
        }
        // Library messages are short descriptions of the damage ("Corrupt GZIP trailer"); keep the first line only.
        int nl = m.indexOf('\n');
        m = nl < 0 ? m : m.substring(0, nl);
        return " (" + (m.length() > 120 ? m.substring(0, 120) : m) + ")";
    }

    private static void checkBound(long size, int maxBytes) {
        if (size > maxBytes) {
            throw new LogException(LogException.Kind.MESSAGE_TOO_LARGE, "records decompress to more than "
                + maxBytes + " bytes");
        }
    }

    /** Reads {@code in} to its end into {@code out}, refusing to go past {@code maxBytes}. */
    private void drain(InputStream in, Output out, int maxBytes) throws IOException {
        try (in) {
            while (true) {
                int room = maxBytes - out.size();
                // One byte past the bound is read to tell "exactly maxBytes" from "more".
                int step = (int) Math.min(STREAM_STEP_BYTES, (long) room + 1);
                out.ensureRoom(step);
                int n = in.read(out.bytes, out.size, step);
                if (n < 0) {
                    return;
                }
                out.size += n;
                checkBound(out.size, maxBytes);
            }
        }
    }

    private static void snappyDecompress(MemorySegment src, Output out, int maxBytes) throws IOException {
        long len = src.byteSize();
        if (len >= SNAPPY_HEADER_BYTES && startsWithSnappyMagic(src, 0)) {
            int version = src.get(INT_BE, 8);
            if (version < 1) {
                throw new IOException("snappy stream version " + version);
            }
            long pos = SNAPPY_HEADER_BYTES;
            byte[] chunk = null;
            while (pos < len) {
                if (len - pos >= SNAPPY_HEADER_BYTES && startsWithSnappyMagic(src, pos)) {
                    pos += SNAPPY_HEADER_BYTES; // concatenated streams, as snappy-java reads them
                    continue;
                }
                if (len - pos < 4) {
                    throw new IOException("truncated chunk length");
                }
                int chunkBytes = src.get(INT_BE, pos);
                pos += 4;
                if (chunkBytes < 0 || chunkBytes > len - pos) {
                    throw new IOException("chunk of " + chunkBytes + " bytes overruns the stream");
                }
                if (chunk == null || chunk.length < chunkBytes) {
                    chunk = new byte[Math.max(chunkBytes, 1024)];
                }
                MemorySegment.copy(src, ValueLayout.JAVA_BYTE, pos, chunk, 0, chunkBytes);
                pos += chunkBytes;
                snappyBlock(chunk, chunkBytes, out, maxBytes);
            }
        } else {
            byte[] block = src.toArray(ValueLayout.JAVA_BYTE);
            snappyBlock(block, block.length, out, maxBytes);
        }
    }

    private static boolean startsWithSnappyMagic(MemorySegment src, long at) {
        for (int i = 0; i < SNAPPY_MAGIC.length; i++) {
            if (src.get(ValueLayout.JAVA_BYTE, at + i) != SNAPPY_MAGIC[i]) {
                return false;
            }
        }
        return true;
    }

    private static void snappyBlock(byte[] block, int length, Output out, int maxBytes) throws IOException {
        if (length == 0) {
            return;
        }
        if (!Snappy.isValidCompressedBuffer(block, 0, length)) {
            throw new IOException("malformed snappy block");
        }
        int declared = Snappy.uncompressedLength(block, 0, length);
        if (declared < 0) {
            throw new IOException("snappy block declares " + declared + " bytes");
        }
        checkBound((long) out.size() + declared, maxBytes);
        out.ensureRoom(declared);
        int n = Snappy.uncompress(block, 0, length, out.bytes, out.size);
        if (n != declared) {
            throw new IOException("snappy block gave " + n + " bytes, not the " + declared + " it declares");
        }
        out.size += n;
    }

    private static void lz4Decompress(MemorySegment src, Output out, int maxBytes) throws IOException {
        long len = src.byteSize();
        if (len < 7 || src.get(INT_LE, 0) != LZ4_MAGIC) {
            throw new IOException("no LZ4 frame magic");
        }
        int flg = src.get(ValueLayout.JAVA_BYTE, 4) & 0xFF;
        int bd = src.get(ValueLayout.JAVA_BYTE, 5) & 0xFF;
        if ((flg >>> 6) != 1 || (flg & 0x03) != 0) {
            throw new IOException("LZ4 frame version or reserved flags " + flg);
        }
        if ((flg & 0x20) == 0) {
            throw new IOException("LZ4 frames with dependent blocks are not supported (as in Kafka)");
        }
        int sizeId = (bd >>> 4) & 0x07;
        if ((bd & 0x8F) != 0 || sizeId < 4) {
            throw new IOException("LZ4 block descriptor " + bd);
        }
        boolean blockChecksum = (flg & 0x10) != 0;
        boolean contentSize = (flg & 0x08) != 0;
        boolean contentChecksum = (flg & 0x04) != 0;
        int descriptorBytes = 2 + (contentSize ? 8 : 0);
        long pos = 4 + descriptorBytes;
        if (len < pos + 1) {
            throw new IOException("truncated LZ4 frame descriptor");
        }
        byte[] descriptor = src.asSlice(4, descriptorBytes).toArray(ValueLayout.JAVA_BYTE);
        XXHash32 xxhash = XXHashFactory.fastestInstance().hash32();
        int hc = (xxhash.hash(descriptor, 0, descriptorBytes, 0) >> 8) & 0xFF;
        if ((src.get(ValueLayout.JAVA_BYTE, pos) & 0xFF) != hc) {
            throw new IOException("LZ4 frame descriptor checksum mismatch");
        }
        pos++;
        int maxBlock = 1 << (2 * sizeId + 8);
        LZ4SafeDecompressor decompressor = LZ4Factory.fastestInstance().safeDecompressor();
        StreamingXXHash32 content = contentChecksum ? XXHashFactory.fastestInstance().newStreamingHash32(0) : null;
        byte[] block = new byte[(int) Math.min(maxBlock, len)];
        try {
            while (true) {
                if (len - pos < 4) {
                    throw new IOException("truncated LZ4 frame");
                }
                int word = src.get(INT_LE, pos);
                pos += 4;
                if (word == 0) {
                    break;
                }
                boolean stored = (word & LZ4_UNCOMPRESSED_BIT) != 0;
                int size = word & ~LZ4_UNCOMPRESSED_BIT;
                if (size > maxBlock || size > len - pos) {
                    throw new IOException("LZ4 block of " + size + " bytes exceeds its frame or block size");
                }
                MemorySegment.copy(src, ValueLayout.JAVA_BYTE, pos, block, 0, size);
                pos += size;
                if (blockChecksum) {
                    if (len - pos < 4) {
                        throw new IOException("truncated LZ4 block checksum");
                    }
                    if (xxhash.hash(block, 0, size, 0) != src.get(INT_LE, pos)) {
                        throw new IOException("LZ4 block checksum mismatch");
                    }
                    pos += 4;
                }
                int at = out.size();
                if (stored) {
                    checkBound((long) at + size, maxBytes);
                    out.ensureRoom(size);
                    System.arraycopy(block, 0, out.bytes, at, size);
                    out.size += size;
                } else {
                    // A block inflates to at most maxBlock (4 MiB): the output may pass the bound by that much
                    // before the check below refuses it.
                    out.ensureRoom(maxBlock);
                    out.size += decompressor.decompress(block, 0, size, out.bytes, at, maxBlock);
                    checkBound(out.size, maxBytes);
                }
                if (content != null) {
                    content.update(out.bytes, at, out.size - at);
                }
            }
            if (content != null) {
                if (len - pos < 4) {
                    throw new IOException("truncated LZ4 content checksum");
                }
                if (content.getValue() != src.get(INT_LE, pos)) {
                    throw new IOException("LZ4 content checksum mismatch");
                }
                pos += 4;
            }
            if (pos != len) {
                throw new IOException((len - pos) + " bytes after the LZ4 frame");
            }
        } finally {
            if (content != null) {
                content.close();
            }
        }
    }

    // ------------------------------------------------------------------------------------------ compression

    /**
     * Compresses {@code src[offset, offset + length)} into {@code out} (emptied first) in this codec's Kafka framing;
     * returns the compressed size. {@link #NONE} copies.
     */
    public int compress(byte[] src, int offset, int length, Output out) {
        out.reset();
        try {
            switch (this) {
                case NONE -> {
                    out.ensureRoom(length);
                    System.arraycopy(src, offset, out.bytes, 0, length);
                    out.size = length;
                }
                case GZIP -> {
                    try (OutputStream s = new GZIPOutputStream(out.stream(), GZIP_BUFFER_BYTES)) {
                        s.write(src, offset, length);
                    }
                }
                case SNAPPY -> {
                    try (OutputStream s = new SnappyOutputStream(out.stream(), SNAPPY_BLOCK_BYTES)) {
                        s.write(src, offset, length);
                    }
                }
                case LZ4 -> lz4Compress(src, offset, length, out);
                case ZSTD -> {
                    try (OutputStream s = new ZstdOutputStreamNoFinalizer(out.stream(), ZSTD_LEVEL)) {
                        if (length > 0) {
                            s.write(src, offset, length);
                        }
                        s.flush(); // Kafka's buffered stream flushes before it ends the frame: the same bytes
                    }
                }
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("cannot " + configName + "-compress " + length + " bytes", e);
        }
        return out.size();
    }

    /** {@link #compress(byte[], int, int, Output)} of the bytes of {@code src}. */
    public int compress(MemorySegment src, Output out) {
        if (src.heapBase().orElse(null) instanceof byte[] array && src.byteSize() <= Integer.MAX_VALUE) {
            return compress(array, (int) src.address(), (int) src.byteSize(), out);
        }
        return compress(src.toArray(ValueLayout.JAVA_BYTE), 0, (int) src.byteSize(), out);
    }

    private static void lz4Compress(byte[] src, int offset, int length, Output out) {
        LZ4Compressor compressor = LZ4Factory.fastestInstance().fastCompressor();
        int maxBlock = 1 << (2 * LZ4_BLOCK_SIZE_ID + 8);
        byte flg = (byte) 0x60; // version 01, independent blocks, no checksums, no content size
        byte bd = (byte) (LZ4_BLOCK_SIZE_ID << 4);
        byte hc = (byte) ((XXHashFactory.fastestInstance().hash32().hash(new byte[] {flg, bd}, 0, 2, 0) >> 8) & 0xFF);
        out.ensureRoom(7);
        putIntLE(out.bytes, 0, LZ4_MAGIC);
        out.bytes[4] = flg;
        out.bytes[5] = bd;
        out.bytes[6] = hc;
        out.size = 7;
        int bound = compressor.maxCompressedLength(maxBlock);
        for (int at = offset, end = offset + length; at < end; at += maxBlock) {
            int n = Math.min(maxBlock, end - at);
            out.ensureRoom(4 + Math.max(bound, n));
            int c = compressor.compress(src, at, n, out.bytes, out.size + 4, bound);
            if (c >= n) { // incompressible: stored as is, as Kafka does
                putIntLE(out.bytes, out.size, n | LZ4_UNCOMPRESSED_BIT);
                System.arraycopy(src, at, out.bytes, out.size + 4, n);
                c = n;
            } else {
                putIntLE(out.bytes, out.size, c);
            }
            out.size += 4 + c;
        }
        out.ensureRoom(4);
        putIntLE(out.bytes, out.size, 0);
        out.size += 4;
    }

    private static void putIntLE(byte[] b, int at, int v) {
        b[at] = (byte) v;
        b[at + 1] = (byte) (v >>> 8);
        b[at + 2] = (byte) (v >>> 16);
        b[at + 3] = (byte) (v >>> 24);
    }

    // ------------------------------------------------------------------------------------------ buffers

    /**
     * A growable output area reused across calls: {@link #bytes()} holds {@link #size()} valid bytes. One owner
     * thread; the produce path keeps one per shard. {@link #trim} gives back an array grown for an unusually large
     * batch.
     */
    public static final class Output {
        private byte[] bytes;
        private int size;

        public Output() {
            this(64 * 1024);
        }

        public Output(int initialBytes) {
            this.bytes = new byte[Math.max(64, initialBytes)];
        }

        /** The backing array; bytes [0, size()) are the output. Valid until the next call that writes. */
        public byte[] bytes() {
            return bytes;
        }

        public int size() {
            return size;
        }

        /** The output as a segment over the backing array (a new view object; no copy). */
        public MemorySegment segment() {
            return MemorySegment.ofArray(bytes).asSlice(0, size);
        }

        public void reset() {
            size = 0;
        }

        void setSize(int n) {
            size = n;
        }

        /** Drops the backing array for a smaller one when it grew beyond {@code maxRetainedBytes}. */
        public void trim(int maxRetainedBytes) {
            if (bytes.length > maxRetainedBytes) {
                bytes = new byte[Math.max(64, maxRetainedBytes)];
                size = 0;
            }
        }

        void ensureRoom(int n) {
            long need = (long) size + n;
            if (need > bytes.length) {
                if (need > Integer.MAX_VALUE - 16) {
                    throw new LogException(LogException.Kind.MESSAGE_TOO_LARGE, "output beyond 2 GiB");
                }
                bytes = Arrays.copyOf(bytes, (int) Math.min(Integer.MAX_VALUE - 16, Math.max(need, 2L * bytes.length)));
            }
        }

        void append(MemorySegment src) {
            int n = (int) src.byteSize();
            ensureRoom(n);
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, 0, bytes, size, n);
            size += n;
        }

        OutputStream stream() {
            return new OutputStream() {
                @Override
                public void write(int b) {
                    ensureRoom(1);
                    bytes[size++] = (byte) b;
                }

                @Override
                public void write(byte[] b, int off, int len) {
                    ensureRoom(len);
                    System.arraycopy(b, off, bytes, size, len);
                    size += len;
                }
            };
        }
    }

    /** Reads a memory segment as a stream (no copy of the whole). */
    private static final class SegmentInputStream extends InputStream {
        private final MemorySegment src;
        private long pos;

        SegmentInputStream(MemorySegment src) {
            this.src = src;
        }

        @Override
        public int read() {
            return pos < src.byteSize() ? src.get(ValueLayout.JAVA_BYTE, pos++) & 0xFF : -1;
        }

        @Override
        public int read(byte[] b, int off, int len) {
            long left = src.byteSize() - pos;
            if (left <= 0) {
                return len == 0 ? 0 : -1;
            }
            int n = (int) Math.min(len, left);
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, pos, b, off, n);
            pos += n;
            return n;
        }

        @Override
        public int available() {
            return (int) Math.min(Integer.MAX_VALUE, src.byteSize() - pos);
        }
    }
}
