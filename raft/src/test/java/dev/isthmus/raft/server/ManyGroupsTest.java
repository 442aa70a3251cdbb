package dev.isthmus.raft.server;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Many more groups than write-behind chunks on each shard of each node (15 groups a shard, 4 chunks of 64 KiB): a
 * group's log that is not writing must not keep a chunk, so every group commits on every node, followers included,
 * and after every node restarts (recovery takes no chunk for a log's tail) they go on committing.
 */
class ManyGroupsTest extends ServerHarness {
    static final int GROUPS = 30;

    @Override
    StoragePools pools() {
        return StoragePools.allocate(2, 4, 64 * 1024, 2, LOG.readWindowBytes(), 32L << 20);
    }

    @Test
    void shouldCommitOnEveryNodeWhenGroupsOutnumberWriteBehindChunks() throws Exception {
        startCluster(3);
        for (long g = 1; g <= GROUPS; g++) {
            addGroup(g);
        }
        Map<Long, List<String>> expected = new java.util.HashMap<>();
        for (int round = 0; round < 2; round++) {
            // One group after the other: each log appends and goes quiet, so under the old rule each would keep
            // its tail chunk and the fifth group of a shard would never have one.
            for (long g = 1; g <= GROUPS; g++) {
                replicate(g, 3, 2, "g" + g + "r" + round + "-");
                for (int b = 0; b < 3; b++) {
                    for (int r = 0; r < 2; r++) {
                        expected.computeIfAbsent(g, k -> new ArrayList<>()).add("g" + g + "r" + round + "-" + b + "-" + r);
                    }
                }
            }
            if (round == 0) {
                for (Node n : nodes) {
                    n.stop();
                }
                for (Node n : nodes) {
                    n.start(Map.of());
                }
                for (Node n : nodes) {
                    for (Node p : nodes) {
                        if (p != n) {
                            n.server.transport().addPeer(p.id, addr(p)).join();
                        }
                    }
                }
                for (long g = 1; g <= GROUPS; g++) {
                    addGroup(g);
                }
            }
        }
        for (long g = 1; g <= GROUPS; g++) {
            long gid = g;
            long hw = leader(g).read(g, ReplicatedLog::highWatermark);
            for (Node n : nodes) {
                await("node " + n.id + " commits group " + gid, () -> n.read(gid, ReplicatedLog::highWatermark) == hw);
                assertEquals(expected.get(g), readAll(n, g).values(), "group " + g + " on node " + n.id);
            }
        }
    }
}
