package dev.isthmus.raft.codec;

/** A frame that cannot be decoded (corrupt, foreign, inconsistent) or a message that cannot be encoded. */
public final class RaftCodecException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public RaftCodecException(String message) {
        super(message);
    }
}
