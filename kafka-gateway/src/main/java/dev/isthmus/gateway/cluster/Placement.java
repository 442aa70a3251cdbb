package dev.isthmus.gateway.cluster;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.TreeMap;

/**
 * Deterministic replica placement: spreads each partition's replicas over racks, preferred leaders and replicas
 * evenly over brokers, and each broker's replicas evenly over its shards, counting every partition already placed
 * (of every topic).
 *
 * <ul>
 *   <li>The preferred leader (first replica) of each new partition is the broker with the fewest preferred
 *       leaders, then the fewest replicas, then the lowest id.</li>
 *   <li>Each further replica is, among the brokers not chosen yet, one whose rack holds the fewest of the
 *       partition's replicas chosen so far (so replicas land on distinct racks while there are racks left, and
 *       spread evenly over the racks beyond that), then the one with the fewest replicas, then fewest leaders,
 *       then the lowest id. A broker without a rack counts as a rack of its own, so a cluster without racks is
 *       placed by load alone (Kafka's {@code StripedReplicaPlacer} spreads over racks first as well).</li>
 *   <li>On each chosen broker, the replica goes to the shard holding the fewest replicas (lowest index on ties).</li>
 * </ul>
 * Every replica of the controller group applies the same commands to the same state, so they all compute the
 * same placement. Not thread-safe; one instance per command.
 */
final class Placement {
    private final TreeMap<Integer, BrokerInfo> brokers;
    private final TreeMap<Integer, int[]> shardLoad = new TreeMap<>();
    private final TreeMap<Integer, Integer> replicaLoad = new TreeMap<>();
    private final TreeMap<Integer, Integer> leaderLoad = new TreeMap<>();
    /** Per broker, its rack key: the rack, or a key of its own for a broker without one. */
    private final TreeMap<Integer, String> rackOf = new TreeMap<>();

    Placement(Collection<BrokerInfo> brokers, Collection<TopicInfo> topics) {
        this.brokers = new TreeMap<>();
        for (BrokerInfo b : brokers) {
            this.brokers.put(b.id(), b);
            shardLoad.put(b.id(), new int[b.shards()]);
            replicaLoad.put(b.id(), 0);
            leaderLoad.put(b.id(), 0);
            rackOf.put(b.id(), b.rack() != null ? "r:" + b.rack() : "b:" + b.id());
        }
        for (TopicInfo t : topics) {
            for (PartitionInfo p : t.partitions()) {
                count(p);
            }
        }
    }

    private void count(PartitionInfo p) {
        for (int i = 0; i < p.replicationFactor(); i++) {
            int b = p.replicaAt(i);
            if (!brokers.containsKey(b)) {
                continue; // a replica on a broker that is not registered (any more): counts for nothing
            }
            replicaLoad.merge(b, 1, Integer::sum);
            int[] shards = shardLoad.get(b);
            int s = p.shardAt(i);
            if (s >= 0 && s < shards.length) {
                shards[s]++;
            }
            if (i == 0) {
                leaderLoad.merge(b, 1, Integer::sum);
            }
        }
    }

    int brokerCount() {
        return brokers.size();
    }

    /** Chooses replicas for a new partition; the caller checked {@code rf <= brokerCount()}. */
    int[] chooseReplicas(int rf) {
        int[] replicas = new int[rf];
        List<Integer> candidates = new ArrayList<>(brokers.keySet());
        int leader = candidates.get(0);
        for (int b : candidates) {
            if (better(b, leader, true)) {
                leader = b;
            }
        }
        replicas[0] = leader;
        candidates.remove(Integer.valueOf(leader));
        TreeMap<String, Integer> chosenPerRack = new TreeMap<>();
        chosenPerRack.merge(rackOf.get(leader), 1, Integer::sum);
        for (int i = 1; i < rf; i++) {
            int best = candidates.get(0);
            for (int b : candidates) {
                int rb = chosenPerRack.getOrDefault(rackOf.get(b), 0);
                int rbest = chosenPerRack.getOrDefault(rackOf.get(best), 0);
                if (rb < rbest || rb == rbest && better(b, best, false)) {
                    best = b;
                }
            }
            replicas[i] = best;
            candidates.remove(Integer.valueOf(best));
            chosenPerRack.merge(rackOf.get(best), 1, Integer::sum);
        }
        return replicas;
    }

    private boolean better(int a, int b, boolean forLeader) {
        int la = leaderLoad.get(a);
        int lb = leaderLoad.get(b);
        int ra = replicaLoad.get(a);
        int rb = replicaLoad.get(b);
        if (forLeader) {
            if (la != lb) {
                return la < lb;
            }
            if (ra != rb) {
                return ra < rb;
            }
        } else {
            if (ra != rb) {
                return ra < rb;
            }
            if (la != lb) {
                return la < lb;
            }
        }
        return a < b;
    }

    /** The least loaded shard of registered broker {@code broker} (lowest index on ties), for a replica moving there. */
    int shardFor(int broker) {
        int[] load = shardLoad.get(broker);
        int best = 0;
        for (int s = 1; s < load.length; s++) {
            if (load[s] < load[best]) {
                best = s;
            }
        }
        return best;
    }

    /** Places {@code replicas} (already chosen) on shards, records the partition's load and returns it. */
    PartitionInfo place(int partition, long groupId, int[] replicas) {
        int[] shards = new int[replicas.length];
        for (int i = 0; i < replicas.length; i++) {
            int[] load = shardLoad.get(replicas[i]);
            int best = 0;
            for (int s = 1; s < load.length; s++) {
                if (load[s] < load[best]) {
                    best = s;
                }
            }
            shards[i] = best;
        }
        PartitionInfo p = new PartitionInfo(partition, groupId, replicas, shards);
        count(p);
        return p;
    }

    /** Null when {@code replicas} is a valid explicit assignment of size {@code rf}, else the problem. */
    String checkAssignment(int partition, int[] replicas, int rf) {
        if (replicas.length == 0) {
            return "partition " + partition + " has no replicas";
        }
        if (rf > 0 && replicas.length != rf) {
            return "partition " + partition + " has " + replicas.length + " replicas, others have " + rf;
        }
        for (int i = 0; i < replicas.length; i++) {
            if (!brokers.containsKey(replicas[i])) {
                return "partition " + partition + " names broker " + replicas[i] + ", which is not registered";
            }
            for (int j = 0; j < i; j++) {
                if (replicas[j] == replicas[i]) {
                    return "partition " + partition + " names broker " + replicas[i] + " twice";
                }
            }
        }
        return null;
    }
}
