package dev.isthmus.bench.compare;

/**
 * A failure of a {@link Compare} run, with one sentence that says what went wrong and where to look. A
 * {@linkplain #fatal fatal} one (a taken port, missing Kafka jars) ends the run; any other ends only the current
 * broker's part of it, and the run goes on with the next broker.
 */
final class CompareException extends RuntimeException {

    private final boolean fatal;

    CompareException(String sentence) {
        this(sentence, null, false);
    }

    CompareException(String sentence, Throwable cause) {
        this(sentence, cause, false);
    }

    private CompareException(String sentence, Throwable cause, boolean fatal) {
        super(sentence, cause);
        this.fatal = fatal;
    }

    /** A failure that every following broker would meet too. */
    static CompareException fatal(String sentence) {
        return new CompareException(sentence, null, true);
    }

    boolean isFatal() {
        return fatal;
    }
}
