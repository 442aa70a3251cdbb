package dev.isthmus.bench.chaos;

import java.util.List;

/**
 * A workload of the suite: clients that run against the cluster while the nemesis injects faults and record
 * every operation into the {@link History}, and the {@link HistoryCheck}s that judge what they recorded.
 *
 * <p>Lifecycle, driven by {@link Chaos} on its own thread: {@link #start} once the cluster is up (and the
 * append topic exists); {@link #quiesce} when the fault period ends and the cluster has been restored (stop
 * issuing new operations: producers stop sending, members stop churning); {@link #drain} until the readers
 * have caught up; {@link #finish} to record the workload's end state (a final read, a topic listing);
 * {@link #close} to stop its threads and clients. Each implementation documents its own threads.
 *
 * <h2>Adding a workload</h2>
 * A new workload is a class implementing this, a name in {@link ChaosOptions#WORKLOADS} and a case in
 * {@link Workloads#create}, and a {@link HistoryCheck} for its anomalies, with their descriptions in
 * {@link CheckResult#DESCRIPTIONS} and the check in {@link Checker#allChecks} ({@link TxnWorkload} and
 * {@link TxnCheck} are an example; events of its own get names of their own, since {@link AppendCheck} reads
 * every {@code send} and {@code poll}). It records with the same event fields (see {@code bench/README.md}) so
 * {@link Timeline} charts it; values it sends through the append topic's conventions (numbers from
 * {@link Workloads.Context#nextValue()}) are covered by {@link AppendCheck} as well.
 */
interface Workload extends AutoCloseable {

    String name();

    /** Starts the workload's threads. */
    void start();

    /** Stops issuing new operations (the fault period is over); outstanding ones complete. */
    void quiesce();

    /** Waits until the workload's readers have seen what was acknowledged, at most {@code timeoutNs}; a note. */
    String drain(long timeoutNs);

    /** Records the end state the checks compare against (a final read, a listing). */
    void finish();

    /** A one-line progress note (operations so far), or "" . */
    String progress();


    @Override
    void close();
}
