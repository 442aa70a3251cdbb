package dev.isthmus.bench.compare;

/** A failure of a {@link Compare} run, with one sentence that says what went wrong and where to look. */
final class CompareException extends RuntimeException {

    CompareException(String sentence) {
        super(sentence);
    }

    CompareException(String sentence, Throwable cause) {
        super(sentence, cause);
    }
}
