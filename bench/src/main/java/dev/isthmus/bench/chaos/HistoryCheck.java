package dev.isthmus.bench.chaos;

/**
 * One part of the {@link Checker}: it sees every event of the history in file order, then adds its counts to
 * the result. Each workload has the checks of what it records, listed in {@link Checker#allChecks()}; a check
 * ignores the events that are not its own. A new workload (transactions, replica moves) adds its own check
 * here and its counts join the summary; every count must be 0 for the run to pass.
 *
 * <p>Lifecycle: made for one check of one history, fed on one thread, then finished once.
 */
interface HistoryCheck {

    /** One event, in the order of the file. */
    void accept(Event e);

    /** All events seen: add the counts (every one of them, zeros included) and examples to {@code result}. */
    void finish(CheckResult result);
}
