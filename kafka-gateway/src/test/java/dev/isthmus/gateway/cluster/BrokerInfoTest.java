package dev.isthmus.gateway.cluster;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * A broker's named listeners survive the RegisterBroker command and the snapshot; records written before listeners
 * existed (command without them, snapshot version 1) still read, as one unnamed listener.
 */
class BrokerInfoTest {
    private static final BrokerInfo WITH_LISTENERS = new BrokerInfo(3, "a.example", 9092, "10.0.0.3", 9990, 4,
        List.of(new BrokerInfo.Endpoint("INTERNAL", "a.internal", 9092),
            new BrokerInfo.Endpoint("EXTERNAL", "a.example", 19092)));

    @Test
    void shouldKeepListenersThroughCommandsAndSnapshots() {
        ControllerCommand c = new ControllerCommand.RegisterBroker(WITH_LISTENERS);
        assertEquals(c, ControllerCommand.decode(c.encode()));
        ClusterState s = ClusterState.EMPTY.apply(c, 0).state();
        ClusterState back = ClusterState.decode(s.encode());
        assertEquals(s, back);
        BrokerInfo b = back.brokers().iterator().next();
        assertEquals(new BrokerInfo.Endpoint("EXTERNAL", "a.example", 19092), b.endpoint("EXTERNAL"));
        assertEquals(new BrokerInfo.Endpoint("INTERNAL", "a.internal", 9092), b.endpoint("INTERNAL"));
        assertNull(b.endpoint("OTHER"), "a listener the broker does not have");
    }

    @Test
    void shouldReadRecordsWrittenBeforeListeners() {
        BrokerInfo old = new BrokerInfo(1, "h", 9092, "h", 9990, 2);
        Wire.Writer w = new Wire.Writer().i8(1).i8(ControllerCommand.VERSION);
        old.write(w); // the old command layout: no listener count
        ControllerCommand c = ControllerCommand.decode(w.bytes());
        assertEquals(new ControllerCommand.RegisterBroker(old), c);
        assertEquals(new BrokerInfo.Endpoint("ANY", "h", 9092), old.endpoint("ANY"), "one address for every name");
        // A version 1 snapshot with that broker.
        Wire.Writer sw = new Wire.Writer().i16(1).i64(5).i64(1).i32(1);
        old.write(sw);
        sw.i32(0);
        ClusterState s = ClusterState.decode(sw.bytes());
        assertEquals(List.of(old), List.copyOf(s.brokers()));
    }

    @Test
    void shouldAllowASingleNodeWithoutRpcPort() {
        BrokerInfo b = new BrokerInfo(0, "h", 9092, "-", 0, 1, List.of());
        assertEquals(false, b.hasRpc());
    }
}
