package dev.isthmus.gateway.protocol.message;

import dev.isthmus.gateway.protocol.ByteBufferReader;
import dev.isthmus.gateway.protocol.ByteBufferWriter;
import dev.isthmus.gateway.protocol.ProtocolException;
import dev.isthmus.gateway.protocol.ProtocolMessage;
import org.apache.kafka.common.message.ApiMessageType;
import org.apache.kafka.common.message.RequestHeaderData;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.Message;
import org.apache.kafka.common.protocol.MessageUtil;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.Random;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Our generated codecs against kafka-clients' own message classes, for every version of every API: a seeded
 * random message encoded by us is read by Kafka and written back byte for byte, and decoded by us from
 * Kafka's bytes and re-encoded identically.
 */
class CodecRoundTripTest {
    private static final int MESSAGES_PER_VERSION = 8;

    private static long seed() {
        long seed = Long.getLong("isthmus.seed", System.nanoTime());
        System.out.println("CodecRoundTripTest seed=" + seed + " (replay with -Disthmus.seed=" + seed + ")");
        return seed;
    }

    @Test
    void shouldMatchKafkaForEveryVersionOfEveryApi() {
        Random rnd = new Random(seed());
        int checked = 0;
        for (ApiKeys key : ApiKeys.values()) {
            ApiMessageType kafkaType = ApiMessageType.fromApiKey(key.id);
            // The schema's full range; Kafka's classes may deprecate the oldest versions of internal APIs.
            short lo = (short) Math.max(key.lowestVersion, kafkaType.lowestSupportedVersion());
            short hi = (short) Math.min(key.highestVersion, kafkaType.highestSupportedVersion(true));
            for (short v = lo; v <= hi; v++) {
                for (int i = 0; i < MESSAGES_PER_VERSION; i++) {
                    roundTrip(key + " request", key.newRequest(), kafkaType::newRequest, v, rnd);
                    roundTrip(key + " response", key.newResponse(), kafkaType::newResponse, v, rnd);
                    checked += 2;
                }
            }
        }
        System.out.println("round-tripped " + checked + " messages over " + ApiKeys.values().length + " APIs");
        assertTrue(checked > 1000);
    }

    @Test
    void shouldMatchKafkaForHeaders() {
        Random rnd = new Random(seed());
        for (short v = 1; v <= 2; v++) {
            for (int i = 0; i < 50; i++) {
                roundTrip("request header", new RequestHeaderData_(), RequestHeaderData::new, v, rnd);
            }
        }
        for (short v = 0; v <= 1; v++) {
            for (int i = 0; i < 50; i++) {
                roundTrip("response header", new ResponseHeaderData_(), ResponseHeaderData::new, v, rnd);
            }
        }
    }

    // The generated header classes share their simple names with Kafka's; alias them.
    private static final class RequestHeaderData_ {
    }

    private static final class ResponseHeaderData_ {
    }

    private static void roundTrip(String what, Object ours0, Supplier<? extends Message> kafka, short v, Random rnd) {
        ProtocolMessage ours = ours0 instanceof RequestHeaderData_ ? new dev.isthmus.gateway.protocol.message.RequestHeaderData()
            : ours0 instanceof ResponseHeaderData_ ? new dev.isthmus.gateway.protocol.message.ResponseHeaderData()
            : (ProtocolMessage) ours0;
        RandomMessages.fill(ours, rnd, v, 0);
        ByteBuffer ourBytes = ByteBufferWriter.encode(ours, v);
        Message theirs = kafka.get();
        try {
            theirs.read(new ByteBufferAccessor(ourBytes.duplicate()), v);
        } catch (RuntimeException e) {
            throw new AssertionError(what + " v" + v + ": Kafka cannot read our encoding: " + e, e);
        }
        ByteBuffer kafkaBytes = MessageUtil.toByteBufferAccessor(theirs, v).buffer();
        kafkaBytes.rewind();
        assertEquals(ourBytes.duplicate().rewind(), kafkaBytes.duplicate(), what + " v" + v
            + ": Kafka re-encodes our message differently");
        // Decode Kafka's bytes with ours and encode again.
        ProtocolMessage back = (ProtocolMessage) newLike(ours);
        ByteBufferReader r = new ByteBufferReader(kafkaBytes.duplicate());
        back.read(r, v);
        assertEquals(0, r.remaining(), what + " v" + v + ": bytes left after decoding");
        assertEquals(ourBytes.duplicate().rewind(), ByteBufferWriter.encode(back, v), what + " v" + v
            + ": our decode+encode of Kafka's bytes differs");
    }

    private static Object newLike(ProtocolMessage m) {
        try {
            return m.getClass().getDeclaredConstructor().newInstance();
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void shouldRejectTruncatedAndOversizedInputWithAProtocolError() {
        MetadataRequestData m = new MetadataRequestData();
        m.topics = new java.util.ArrayList<>();
        MetadataRequestData.MetadataRequestTopic t = new MetadataRequestData.MetadataRequestTopic();
        t.name = "orders";
        m.topics.add(t);
        ByteBuffer b = ByteBufferWriter.encode(m, (short) 12);
        ByteBuffer truncated = b.slice(0, b.limit() - 3);
        assertThrows(ProtocolException.class, () -> new MetadataRequestData().read(new ByteBufferReader(truncated), (short) 12));
        // An array count far beyond the frame is refused before anything is allocated.
        ByteBuffer huge = ByteBuffer.allocate(8).put((byte) 0xFF).put((byte) 0xFF).put((byte) 0xFF).put((byte) 0x7F).flip();
        ProtocolException e = assertThrows(ProtocolException.class,
            () -> new MetadataRequestData().read(new ByteBufferReader(huge), (short) 12));
        assertTrue(e.getMessage().contains("Topics"), e.getMessage());
        assertThrows(ProtocolException.class, () -> new MetadataRequestData().read(new ByteBufferReader(b.duplicate()), (short) 99));
    }
}
