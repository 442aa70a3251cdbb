package dev.isthmus.gateway.cluster;

/**
 * The outcome of a controller command: a Kafka error code ({@link ControllerErrors}), a sentence for the
 * client when it failed, the controller log offset at which it was applied (wait for the local
 * {@link ClusterState#appliedOffset()} to reach it before reading the change back; -1 when not applied), and a
 * command's own answer where it has one ({@link ControllerCommand.AllocateProducerIds}: the first id of the block;
 * else -1).
 *
 * <pre>
 *   wire: errorCode i16, message, appliedOffset i64, [value i64]  (value absent: -1, as older nodes sent it)
 * </pre>
 */
public record ControllerResult(int errorCode, String message, long appliedOffset, long value) {
    public ControllerResult(int errorCode, String message, long appliedOffset) {
        this(errorCode, message, appliedOffset, -1);
    }

    public static ControllerResult ok(long appliedOffset) {
        return new ControllerResult(ControllerErrors.NONE, null, appliedOffset);
    }

    /** Success carrying the command's answer. */
    public static ControllerResult ok(long appliedOffset, long value) {
        return new ControllerResult(ControllerErrors.NONE, null, appliedOffset, value);
    }

    public static ControllerResult error(int code, String message, long appliedOffset) {
        return new ControllerResult(code, message, appliedOffset);
    }

    public boolean isOk() {
        return errorCode == ControllerErrors.NONE;
    }

    byte[] encode() {
        return new Wire.Writer().i16(errorCode).str(message == null ? "" : message).i64(appliedOffset).i64(value)
            .bytes();
    }

    static ControllerResult decode(byte[] bytes) {
        Wire.Reader r = new Wire.Reader(bytes);
        int code = r.i16();
        String m = r.str();
        long offset = r.i64();
        long value = r.remaining() >= 8 ? r.i64() : -1;
        r.end();
        return new ControllerResult(code, m.isEmpty() ? null : m, offset, value);
    }

    @Override
    public String toString() {
        return isOk() ? "ok@" + appliedOffset + (value >= 0 ? " value " + value : "") : "error " + errorCode + ": "
            + message;
    }
}
