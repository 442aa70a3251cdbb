/**
 * {@code bench/compare}: Isthmus side by side with Apache Kafka 4.3 on the user's machine.
 *
 * <p>{@link dev.isthmus.bench.compare.Compare} is the entry point; it starts each broker as a child process
 * ({@code BrokerProcess}), drives the same kafka-clients producer and consumer at fixed rates and at
 * saturation ({@code Workload}, latencies from the intended send time into HdrHistogram), samples the broker's
 * CPU and RSS from /proc ({@code ProcStats}) and its JVM pauses from its safepoint log ({@code GcLog}), and
 * prints and writes the table ({@code Table}) and an HTML page with charts ({@code HtmlReport}).
 * {@code Cleanup} owns every process and directory a run makes.
 */
package dev.isthmus.bench.compare;
