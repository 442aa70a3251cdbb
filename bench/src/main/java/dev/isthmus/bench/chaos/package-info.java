/**
 * {@code bench/chaos}: the chaos suite. Clusters of Isthmus processes on this machine
 * ({@link dev.isthmus.bench.chaos.Cluster}, {@code Network}, {@code LoopDisk}), workloads that record every
 * operation into a history ({@code Workload}, {@code History}), a seeded nemesis ({@code Schedule},
 * {@code Nemesis}, {@code Fault}, {@code TornWrite}), the checker ({@code Checker} and its
 * {@code HistoryCheck}s) and the report ({@code Timeline}, {@code ChaosReport}). {@link dev.isthmus.bench.chaos.Chaos}
 * is the entry point; {@code bench/README.md} documents the options and the history format.
 */
package dev.isthmus.bench.chaos;
