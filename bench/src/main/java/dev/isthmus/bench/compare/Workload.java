package dev.isthmus.bench.compare;

import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramLogWriter;
import org.HdrHistogram.Recorder;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.io.FileNotFoundException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;

/**
 * One workload against one broker: a kafka-clients producer writes records of {@code recordBytes} to a
 * one-partition topic with acks=all, and a kafka-clients consumer reads them back as they arrive.
 *
 * <pre>
 *   start        start + warm-up                         end                        (drained)
 *     |--- warm-up ---|---------- measurement ------------|--- acks and deliveries ---|
 *     sends on schedule (fixed rate) or as fast as send() returns (saturation)
 * </pre>
 *
 * <p>Latency is measured from the record's <em>intended</em> send time, which is written into its first 8
 * bytes: at a fixed rate R, record i is due at start + i/R whether or not the client or broker kept up, so a
 * stall delays every record behind it and all of that delay is counted (no coordinated omission). At
 * saturation there is no schedule; the intended time is when send() was called, so the time a record waits
 * for room in the producer's buffer before send() returns is not counted, but the time it waits inside the
 * buffer is. Two latencies per record: produce-to-ack (the producer's callback) and end-to-end
 * produce-to-consume (the consumer's poll that returns it). A record counts toward the steady-state
 * histograms when its intended time lies in the measurement window; every record goes into the per-second
 * interval histograms of the .hlog file (tags "ack" and "e2e", values in nanoseconds).
 *
 * <p>Threads: the caller's thread runs {@link #run} (progress, interval logging, /proc samples at the window's
 * edges); one sender thread; the producer's I/O thread runs the callbacks; one consumer thread. The producer
 * and consumer settings are the same for every broker ({@link #producerConfig}, {@link #consumerConfig}).
 */
final class Workload {

    /** Hooks called by {@link #run} on the caller's thread at the edges of the measurement window and every second. */
    interface Window {
        void measurementStarted();

        void measurementEnded();

        /** A note on the last second (e.g. CPU use), added to the progress line and to the .hlog as a comment. */
        String secondElapsed();
    }

    /**
     * What one workload measured.
     *
     * @param ack             produce-to-ack latency of records intended in the window, ns
     * @param e2e             produce-to-consume latency of records intended in the window, ns
     * @param windowNs        measurement window length
     * @param ackedInWindow   acknowledgements received during the window (throughput numerator)
     * @param sent            records handed to send()
     * @param acked           records acknowledged
     * @param consumed        records the consumer returned
     * @param errors          sends that failed
     * @param reordered       records the consumer saw out of sequence (a repeat or a step back)
     * @param firstError      the first failure, or null
     * @param measureStartNs  System.nanoTime() at the start of the window
     * @param measureEndNs    System.nanoTime() at its end
     */
    record Result(Histogram ack, Histogram e2e, long windowNs, long ackedInWindow, long sent, long acked,
                  long consumed, long errors, long reordered, String firstError, long measureStartNs, long measureEndNs) {

        double throughputPerSec() {
            return ackedInWindow * 1e9 / windowNs;
        }

        /** Acknowledged but never delivered within the drain timeout. */
        long undelivered() {
            return Math.max(0, acked - consumed);
        }

        /** Sent but neither acknowledged nor failed within the drain timeout. */
        long unacked() {
            return Math.max(0, sent - acked - errors);
        }

        boolean clean() {
            return errors == 0 && reordered == 0 && undelivered() == 0 && unacked() == 0;
        }
    }

    private static final int SIGNIFICANT_DIGITS = 3;
    private static final long LEAD_NS = TimeUnit.MILLISECONDS.toNanos(200);
    private static final long PROGRESS_INTERVAL_NS = TimeUnit.SECONDS.toNanos(1);
    private static final long DRAIN_POLL_NS = TimeUnit.MILLISECONDS.toNanos(10);

    private final String bootstrap;
    private final String topic;
    private final long ratePerSec;
    private final int recordBytes;
    private final long warmupNs;
    private final long durationNs;
    private final long drainTimeoutNs;
    private final Path hlog;
    private final Consumer<String> progress;

    private final Recorder ackInterval = new Recorder(SIGNIFICANT_DIGITS);
    private final Recorder e2eInterval = new Recorder(SIGNIFICANT_DIGITS);
    private final Recorder ackMeasured = new Recorder(SIGNIFICANT_DIGITS);
    private final Histogram e2eMeasured = new Histogram(SIGNIFICANT_DIGITS); // consumer thread only
    private final AtomicLong sent = new AtomicLong();
    private final AtomicLong acked = new AtomicLong();
    private final AtomicLong ackedInWindow = new AtomicLong();
    private final AtomicLong errors = new AtomicLong();
    private final AtomicLong consumed = new AtomicLong();
    private final AtomicLong reordered = new AtomicLong();
    private final AtomicReference<Throwable> firstError = new AtomicReference<>();
    private volatile boolean stopConsumer;
    private volatile boolean senderDone;

    private long startNs;
    private long measureStartNs;
    private long endNs;

    /**
     * @param ratePerSec records per second, or 0 for saturation
     * @param progress   receives one status line about once a second
     */
    Workload(String bootstrap, String topic, long ratePerSec, int recordBytes, long warmupNs, long durationNs,
             long drainTimeoutNs, Path hlog, Consumer<String> progress) {
        this.bootstrap = bootstrap;
        this.topic = topic;
        this.ratePerSec = ratePerSec;
        this.recordBytes = recordBytes;
        this.warmupNs = warmupNs;
        this.durationNs = durationNs;
        this.drainTimeoutNs = drainTimeoutNs;
        this.hlog = hlog;
        this.progress = progress;
    }

    /** The producer every broker gets: kafka-clients' defaults (linger.ms=5, batch.size=16384, idempotence) and acks=all. */
    static Map<String, Object> producerConfig(String bootstrap) {
        return Map.of(
            ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
            ProducerConfig.ACKS_CONFIG, "all",
            ProducerConfig.CLIENT_ID_CONFIG, "compare-producer",
            ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName(),
            ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    }

    /** The consumer every broker gets: kafka-clients' defaults, assigned the partition (no group). */
    static Map<String, Object> consumerConfig(String bootstrap) {
        return Map.of(
            ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
            ConsumerConfig.CLIENT_ID_CONFIG, "compare-consumer",
            ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false,
            ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName(),
            ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    }

    Result run(Window window) throws InterruptedException {
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerConfig(bootstrap));
             KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(consumerConfig(bootstrap));
             PrintStream hlogOut = new PrintStream(hlog.toFile())) {
            // Metadata and connections before the clock starts; the consumer reads from the first offset.
            producer.partitionsFor(topic);
            consumer.assign(List.of(tp));
            consumer.seek(tp, 0);
            consumer.poll(Duration.ZERO);

            HistogramLogWriter log = new HistogramLogWriter(hlogOut);
            long startEpochMs = System.currentTimeMillis() + TimeUnit.NANOSECONDS.toMillis(LEAD_NS);
            log.outputComment("bench/compare " + topic + ": " + CompareOptions.workloadName(ratePerSec) + ", " + recordBytes
                + " B records, acks=all; values in ns from the intended send time; tags ack (produce->ack), e2e (produce->consume)");
            log.outputComment("warm-up " + TimeUnit.NANOSECONDS.toMillis(warmupNs) + " ms, then measurement "
                + TimeUnit.NANOSECONDS.toMillis(durationNs) + " ms");
            log.outputLogFormatVersion();
            log.outputStartTime(startEpochMs);
            log.setBaseTime(startEpochMs);
            log.outputLegend();

            startNs = System.nanoTime() + LEAD_NS;
            measureStartNs = startNs + warmupNs;
            endNs = measureStartNs + durationNs;

            Thread consumerThread = Thread.ofPlatform().name("compare-consumer").start(() -> consume(consumer));
            Thread sender = Thread.ofPlatform().name("compare-sender").start(() -> send(producer));

            long intervalStartMs = startEpochMs;
            Histogram ackReuse = null;
            Histogram e2eReuse = null;
            boolean measuring = false;
            boolean ended = false;
            long drainDeadline = Long.MAX_VALUE;
            long nextTickNs = startNs + PROGRESS_INTERVAL_NS;
            long nextDrainCheckNs = 0;
            while (true) {
                long now = System.nanoTime();
                long wakeNs = nextTickNs;
                if (!measuring) {
                    wakeNs = Math.min(wakeNs, measureStartNs);
                } else if (!ended) {
                    wakeNs = Math.min(wakeNs, endNs);
                } else {
                    wakeNs = Math.min(wakeNs, nextDrainCheckNs);
                }
                if (now < wakeNs) {
                    LockSupport.parkNanos(wakeNs - now);
                    continue;
                }
                if (!measuring && now >= measureStartNs) {
                    measuring = true;
                    window.measurementStarted();
                    log.outputComment("measurement starts");
                }
                if (measuring && !ended && now >= endNs) {
                    ended = true;
                    window.measurementEnded();
                    log.outputComment("measurement ends; draining");
                    drainDeadline = now + drainTimeoutNs;
                }
                if (now >= nextTickNs) {
                    nextTickNs += PROGRESS_INTERVAL_NS;
                    long nowMs = System.currentTimeMillis();
                    ackReuse = ackInterval.getIntervalHistogram(ackReuse);
                    e2eReuse = e2eInterval.getIntervalHistogram(e2eReuse);
                    String note = window.secondElapsed();
                    log.outputComment(String.format(Locale.ROOT, "%.3f: %s", (nowMs - startEpochMs) / 1e3, note));
                    writeInterval(log, ackReuse, "ack", intervalStartMs, nowMs);
                    writeInterval(log, e2eReuse, "e2e", intervalStartMs, nowMs);
                    intervalStartMs = nowMs;
                    progress.accept(status(now, ackReuse, e2eReuse) + ", " + note);
                }
                nextDrainCheckNs = now + DRAIN_POLL_NS;
                if (ended && senderDone && drained()) {
                    break;
                }
                if (ended && now >= drainDeadline) {
                    log.outputComment("drain timeout: " + status(now, ackInterval.getIntervalHistogram(),
                        e2eInterval.getIntervalHistogram()));
                    break;
                }
            }
            stopConsumer = true;
            consumer.wakeup();
            sender.join(TimeUnit.NANOSECONDS.toMillis(drainTimeoutNs) + 1);
            consumerThread.join();
            long nowMs = System.currentTimeMillis();
            writeInterval(log, ackInterval.getIntervalHistogram(), "ack", intervalStartMs, nowMs);
            writeInterval(log, e2eInterval.getIntervalHistogram(), "e2e", intervalStartMs, nowMs);
            producer.close(Duration.ofSeconds(5));
            Throwable err = firstError.get();
            return new Result(ackMeasured.getIntervalHistogram(), e2eMeasured.copy(), durationNs, ackedInWindow.get(),
                sent.get(), acked.get(), consumed.get(), errors.get(), reordered.get(),
                err == null ? null : err.getClass().getSimpleName() + ": " + err.getMessage(), measureStartNs, endNs);
        } catch (FileNotFoundException e) {
            throw new CompareException("cannot write " + hlog + ": " + e.getMessage(), e);
        }
    }

    private boolean drained() {
        long a = acked.get();
        return a + errors.get() >= sent.get() && consumed.get() >= a;
    }

    private static void writeInterval(HistogramLogWriter log, Histogram h, String tag, long fromMs, long toMs) {
        h.setTag(tag);
        h.setStartTimeStamp(fromMs);
        h.setEndTimeStamp(toMs);
        log.outputIntervalHistogram(h);
    }

    private String status(long now, Histogram ack, Histogram e2e) {
        String phase;
        if (now < measureStartNs) {
            phase = String.format("warm-up %3d/%d s", TimeUnit.NANOSECONDS.toSeconds(now - startNs),
                TimeUnit.NANOSECONDS.toSeconds(warmupNs));
        } else if (now < endNs) {
            phase = String.format("measure %3d/%d s", TimeUnit.NANOSECONDS.toSeconds(now - measureStartNs),
                TimeUnit.NANOSECONDS.toSeconds(durationNs));
        } else {
            phase = "draining     ";
        }
        return String.format("%s  sent %,d  acked %,d  consumed %,d%s  last 1 s: %,d acks, ack p99 %s ms, e2e p99 %s ms",
            phase, sent.get(), acked.get(), consumed.get(), errors.get() == 0 ? "" : "  ERRORS " + errors.get(),
            ack.getTotalCount(), Table.ms(ack.getValueAtPercentile(99)), Table.ms(e2e.getValueAtPercentile(99)));
    }

    /** The sender thread: on schedule at a fixed rate (in bursts of what is due, parked in between), or flat out. */
    private void send(KafkaProducer<byte[], byte[]> producer) {
        try {
            double periodNs = ratePerSec == 0 ? 0 : 1e9 / ratePerSec;
            for (long i = 0; ; i++) {
                long intended;
                if (ratePerSec == 0) {
                    intended = System.nanoTime();
                    if (i == 0 && intended < startNs) {
                        LockSupport.parkNanos(startNs - intended);
                        intended = System.nanoTime();
                    }
                } else {
                    intended = startNs + (long) (i * periodNs);
                    long now = System.nanoTime();
                    while (now < intended) {
                        LockSupport.parkNanos(intended - now);
                        now = System.nanoTime();
                    }
                }
                if (intended >= endNs) {
                    break;
                }
                byte[] value = new byte[recordBytes];
                ByteBuffer.wrap(value).putLong(0, intended).putLong(8, i);
                sent.incrementAndGet();
                producer.send(new ProducerRecord<>(topic, 0, null, value), new AckCallback(intended));
            }
        } catch (RuntimeException e) {
            errors.incrementAndGet();
            firstError.compareAndSet(null, e);
        } finally {
            senderDone = true;
        }
    }

    /** Records produce-to-ack latency; runs on the producer's I/O thread (or the sender's, for a send that fails at once). */
    private final class AckCallback implements Callback {
        private final long intendedNs;

        AckCallback(long intendedNs) {
            this.intendedNs = intendedNs;
        }

        @Override
        public void onCompletion(org.apache.kafka.clients.producer.RecordMetadata metadata, Exception e) {
            long now = System.nanoTime();
            if (e != null) {
                errors.incrementAndGet();
                firstError.compareAndSet(null, e);
                return;
            }
            long latencyNs = now - intendedNs;
            ackInterval.recordValue(latencyNs);
            if (intendedNs >= measureStartNs && intendedNs < endNs) {
                ackMeasured.recordValue(latencyNs);
            }
            if (now >= measureStartNs && now < endNs) {
                ackedInWindow.incrementAndGet();
            }
            acked.incrementAndGet();
        }
    }

    /** The consumer thread: one clock reading per poll, since that is when the application gets the records. */
    private void consume(KafkaConsumer<byte[], byte[]> consumer) {
        long expectedSeq = 0;
        try {
            while (!stopConsumer) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                long now = System.nanoTime();
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    ByteBuffer v = ByteBuffer.wrap(r.value());
                    long intended = v.getLong(0);
                    long seq = v.getLong(8);
                    if (seq < expectedSeq) {
                        reordered.incrementAndGet();
                    }
                    expectedSeq = seq + 1;
                    long latencyNs = now - intended;
                    e2eInterval.recordValue(latencyNs);
                    if (intended >= measureStartNs && intended < endNs) {
                        e2eMeasured.recordValue(latencyNs);
                    }
                }
                consumed.addAndGet(records.count());
            }
        } catch (org.apache.kafka.common.errors.WakeupException e) {
            // stop requested
        } catch (RuntimeException e) {
            errors.incrementAndGet();
            firstError.compareAndSet(null, e);
        }
    }
}
