package dev.isthmus.gateway.txn;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The records of {@code __transaction_state}, byte for byte as Kafka writes them ({@code TransactionLogKey} and
 * {@code TransactionLogValue} of Kafka's transaction coordinator, each prefixed by its int16 version), so Kafka's
 * tools ({@code kafka-console-consumer --formatter ...TransactionLogMessageFormatter}, {@code kafka-dump-log
 * --transaction-log-decoder}) read ours and a copied Kafka log replays here.
 *
 * <pre>
 *   key   : int16 version (0) | TransactionalId: int16 length + UTF-8
 *   value : int16 version (0, or 1 = flexible: compact strings and arrays, tagged fields)
 *           ProducerId int64 | ProducerEpoch int16 | TransactionTimeoutMs int32 | TransactionStatus int8 |
 *           TransactionPartitions: nullable array of {Topic string, PartitionIds []int32} (null when Empty) |
 *           TransactionLastUpdateTimestampMs int64 | TransactionStartTimestampMs int64 |
 *           v1 tagged fields: 0 PreviousProducerId int64 (-1), 1 NextProducerId int64 (-1),
 *                             2 ClientTransactionVersion int16 (0); written only when not the default;
 *                             others (3 NextProducerEpoch of KIP-939's two-phase commit) are read past
 *   tombstone: a null value (the id expired)
 * </pre>
 * Stateless; any thread.
 */
public final class TransactionLog {
    private TransactionLog() {
    }

    /** The value's version for a finalized transaction.version: flexible (1) from transaction version 1. */
    public static short valueVersion(int transactionVersion) {
        return (short) (transactionVersion >= 1 ? 1 : 0);
    }

    /** One value: a transactional id's state as written. {@code partitions} is empty (written null) when Empty. */
    public record Value(long producerId, long previousProducerId, long nextProducerId, short producerEpoch,
                        int timeoutMs, TxnState state, List<TxnPartition> partitions, long lastUpdateMs,
                        long startMs, short clientTransactionVersion) {
        public Value {
            partitions = List.copyOf(partitions);
        }
    }

    public static byte[] key(String transactionalId) {
        byte[] id = transactionalId.getBytes(StandardCharsets.UTF_8);
        if (id.length > Short.MAX_VALUE) {
            throw new IllegalArgumentException("transactional id of " + id.length + " bytes is too long");
        }
        return ByteBuffer.allocate(4 + id.length).putShort((short) 0).putShort((short) id.length).put(id).array();
    }

    /** The transactional id of a key, or null for a key version this broker does not know (to be skipped). */
    public static String readKey(ByteBuffer b) {
        short version = b.getShort();
        if (version != 0) {
            return null;
        }
        int len = b.getShort();
        if (len < 0 || len > b.remaining()) {
            throw new IllegalArgumentException("transaction log key with a string of " + len + " bytes in "
                + b.remaining());
        }
        byte[] s = new byte[len];
        b.get(s);
        return new String(s, StandardCharsets.UTF_8);
    }

    /** Partitions grouped by topic in order, as Kafka writes {@code TransactionPartitions}. */
    private static Map<String, List<Integer>> byTopic(Collection<TxnPartition> partitions) {
        Map<String, List<Integer>> m = new TreeMap<>();
        for (TxnPartition tp : partitions) {
            m.computeIfAbsent(tp.topic(), t -> new ArrayList<>()).add(tp.partition());
        }
        return m;
    }

    public static byte[] value(Value v, short version) {
        if (version != 0 && version != 1) {
            throw new IllegalArgumentException("transaction log value version " + version + " does not exist");
        }
        boolean flexible = version >= 1;
        boolean nullPartitions = v.state() == TxnState.EMPTY;
        if (nullPartitions && !v.partitions().isEmpty()) {
            throw new IllegalStateException("an Empty transaction has no partitions, got " + v.partitions());
        }
        Map<String, List<Integer>> topics = byTopic(v.partitions());
        List<byte[]> names = new ArrayList<>();
        int size = 2 + 8 + 2 + 4 + 1 + 8 + 8;
        if (flexible) {
            size += varintSize(nullPartitions ? 0 : topics.size() + 1);
        } else {
            size += 4;
        }
        for (Map.Entry<String, List<Integer>> e : topics.entrySet()) {
            byte[] n = e.getKey().getBytes(StandardCharsets.UTF_8);
            names.add(n);
            int count = e.getValue().size();
            size += flexible ? varintSize(n.length + 1) + n.length + varintSize(count + 1) + 4 * count + 1
                : 2 + n.length + 4 + 4 * count;
        }
        int tags = 0;
        int tagBytes = 0;
        if (flexible) {
            if (v.previousProducerId() != -1) {
                tags++;
                tagBytes += 2 + 8;
            }
            if (v.nextProducerId() != -1) {
                tags++;
                tagBytes += 2 + 8;
            }
            if (v.clientTransactionVersion() != 0) {
                tags++;
                tagBytes += 2 + 2;
            }
            size += varintSize(tags) + tagBytes;
        }
        ByteBuffer b = ByteBuffer.allocate(size);
        b.putShort(version).putLong(v.producerId()).putShort(v.producerEpoch()).putInt(v.timeoutMs()).put(v.state().id);
        if (nullPartitions) {
            if (flexible) {
                putVarint(b, 0);
            } else {
                b.putInt(-1);
            }
        } else {
            if (flexible) {
                putVarint(b, topics.size() + 1);
            } else {
                b.putInt(topics.size());
            }
            int i = 0;
            for (List<Integer> parts : topics.values()) {
                byte[] n = names.get(i++);
                if (flexible) {
                    putVarint(b, n.length + 1);
                    b.put(n);
                    putVarint(b, parts.size() + 1);
                } else {
                    b.putShort((short) n.length).put(n).putInt(parts.size());
                }
                for (int p : parts) {
                    b.putInt(p);
                }
                if (flexible) {
                    putVarint(b, 0); // the struct's tagged fields: none
                }
            }
        }
        b.putLong(v.lastUpdateMs()).putLong(v.startMs());
        if (flexible) {
            putVarint(b, tags);
            if (v.previousProducerId() != -1) {
                putVarint(b, 0);
                putVarint(b, 8);
                b.putLong(v.previousProducerId());
            }
            if (v.nextProducerId() != -1) {
                putVarint(b, 1);
                putVarint(b, 8);
                b.putLong(v.nextProducerId());
            }
            if (v.clientTransactionVersion() != 0) {
                putVarint(b, 2);
                putVarint(b, 2);
                b.putShort(v.clientTransactionVersion());
            }
        }
        if (b.hasRemaining()) {
            throw new IllegalStateException("transaction log value sized " + size + " bytes but wrote " + b.position());
        }
        return b.array();
    }

    /**
     * Reads a value (versions 0 and 1).
     *
     * @throws IllegalArgumentException naming the problem: an unknown version or a damaged record
     */
    public static Value readValue(ByteBuffer b) {
        try {
            short version = b.getShort();
            if (version != 0 && version != 1) {
                throw new IllegalArgumentException("transaction log value version " + version + " is not 0 or 1");
            }
            boolean flexible = version == 1;
            long pid = b.getLong();
            short epoch = b.getShort();
            int timeout = b.getInt();
            TxnState state = TxnState.fromId(b.get());
            int topics = flexible ? readVarint(b) - 1 : b.getInt();
            List<TxnPartition> partitions = new ArrayList<>();
            for (int t = 0; t < topics; t++) {
                int len = flexible ? readVarint(b) - 1 : b.getShort();
                if (len < 0 || len > b.remaining()) {
                    throw new IllegalArgumentException("topic name of " + len + " bytes in " + b.remaining());
                }
                byte[] n = new byte[len];
                b.get(n);
                String topic = new String(n, StandardCharsets.UTF_8);
                int count = flexible ? readVarint(b) - 1 : b.getInt();
                if (count < 0 || (long) count * 4 > b.remaining()) {
                    throw new IllegalArgumentException(count + " partition ids in " + b.remaining() + " bytes");
                }
                for (int i = 0; i < count; i++) {
                    partitions.add(new TxnPartition(topic, b.getInt()));
                }
                if (flexible) {
                    skipTaggedFields(b);
                }
            }
            long lastUpdate = b.getLong();
            long start = b.getLong();
            long previous = -1;
            long next = -1;
            short tv = 0;
            if (flexible) {
                int n = readVarint(b);
                for (int i = 0; i < n; i++) {
                    int tag = readVarint(b);
                    int size = readVarint(b);
                    if (size < 0 || size > b.remaining()) {
                        throw new IllegalArgumentException("tagged field " + tag + " of " + size + " bytes in "
                            + b.remaining());
                    }
                    switch (tag) {
                        case 0 -> previous = b.getLong();
                        case 1 -> next = b.getLong();
                        case 2 -> tv = b.getShort();
                        default -> b.position(b.position() + size);
                    }
                }
            }
            if (state == TxnState.EMPTY) {
                partitions.clear(); // Kafka ignores partitions of an Empty record
            }
            return new Value(pid, previous, next, epoch, timeout, state, partitions, lastUpdate, start, tv);
        } catch (java.nio.BufferUnderflowException e) {
            throw new IllegalArgumentException("transaction log value ends early");
        }
    }

    private static void skipTaggedFields(ByteBuffer b) {
        int n = readVarint(b);
        for (int i = 0; i < n; i++) {
            readVarint(b);
            int size = readVarint(b);
            if (size < 0 || size > b.remaining()) {
                throw new IllegalArgumentException("tagged field of " + size + " bytes in " + b.remaining());
            }
            b.position(b.position() + size);
        }
    }

    static int varintSize(int v) {
        int n = 1;
        while ((v & ~0x7F) != 0) {
            v >>>= 7;
            n++;
        }
        return n;
    }

    static void putVarint(ByteBuffer b, int v) {
        while ((v & ~0x7F) != 0) {
            b.put((byte) ((v & 0x7F) | 0x80));
            v >>>= 7;
        }
        b.put((byte) v);
    }

    static int readVarint(ByteBuffer b) {
        int value = 0;
        for (int shift = 0; shift < 35; shift += 7) {
            byte x = b.get();
            value |= (x & 0x7F) << shift;
            if ((x & 0x80) == 0) {
                return value;
            }
        }
        throw new IllegalArgumentException("a varint runs over 5 bytes");
    }
}
