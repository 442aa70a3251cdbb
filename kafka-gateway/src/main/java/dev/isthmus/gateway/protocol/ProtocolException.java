package dev.isthmus.gateway.protocol;

/**
 * A request or response does not follow the Kafka wire format (a length beyond the frame, a null where the
 * schema forbids it, an unsupported version). The server answers with the protocol's error (INVALID_REQUEST,
 * UNSUPPORTED_VERSION, CORRUPT_MESSAGE) or closes the connection; it never crashes and never reads past the
 * frame.
 */
public final class ProtocolException extends RuntimeException {
    public ProtocolException(String message) {
        super(message, null, false, false);
    }
}
