package dev.isthmus.bench.chaos;

/**
 * A failure of the chaos run itself (not an anomaly of the broker): a command of the suite that failed, a
 * cluster that did not form, a broker that did not come back. Its message is one sentence naming the problem
 * and where to look; the run stops, reports what it has, and exits 1.
 */
final class ChaosException extends RuntimeException {

    ChaosException(String sentence) {
        super(sentence);
    }

    ChaosException(String sentence, Throwable cause) {
        super(sentence, cause);
    }
}
