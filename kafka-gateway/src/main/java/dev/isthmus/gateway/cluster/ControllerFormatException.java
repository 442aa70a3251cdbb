package dev.isthmus.gateway.cluster;

/** A controller command, result or snapshot that does not parse; the message names the problem. */
public final class ControllerFormatException extends RuntimeException {
    public ControllerFormatException(String message) {
        super(message);
    }
}
