package dev.isthmus.bench.chaos;

/**
 * The cluster's own health through the run, from the nemesis's events: brokers that exited although no fault
 * killed them ({@code node-exit}: <b>node-exit</b>), faults after which the cluster did not come back (a node
 * not ready, the cluster not re-formed: {@code recovered} with {@code ok} false: <b>no-recovery</b>), and
 * replicas that had not caught up with their leader a minute after a fault ended ({@code recovered} with
 * {@code caught_up} false: <b>stuck-replica</b>). One thread.
 */
final class ClusterCheck implements HistoryCheck {
    private long faults;
    private long storageRestarts;

    @Override
    public void accept(Event e) {
        if (!e.proc().equals("nemesis")) {
            return;
        }
        switch (e.f()) {
            case "storage-restart" -> storageRestarts++;
            case "node-exit" -> pending.add(new String[] {"node-exit", e.where() + ": " + e.str("detail")});
            case "recovered" -> {
                faults++;
                if (Boolean.FALSE.equals(e.fields().get("ok"))) {
                    pending.add(new String[] {"no-recovery", e.where() + ": fault #" + e.num("index", -1) + " ("
                        + e.str("fault") + "): " + e.str("error")});
                } else if (Boolean.FALSE.equals(e.fields().get("caught_up"))) {
                    pending.add(new String[] {"stuck-replica", e.where() + ": after fault #" + e.num("index", -1) + " ("
                        + e.str("fault") + "): " + e.str("lag")});
                }
            }
            default -> {
            }
        }
    }

    private final java.util.List<String[]> pending = new java.util.ArrayList<>();

    @Override
    public void finish(CheckResult r) {
        r.declare("node-exit");
        r.declare("no-recovery");
        r.declare("stuck-replica");
        for (String[] p : pending) {
            r.count(p[0], p[1]);
        }
        r.stat("faults", faults);
        r.stat("restarts after a storage failure on a full disk", storageRestarts);
    }
}
