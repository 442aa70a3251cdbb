package dev.isthmus.raft.controller;

/**
 * The outcome of a controller command: a Kafka error code ({@link ControllerErrors}), a sentence for the
 * client when it failed, and the controller log offset at which it was applied (wait for the local
 * {@link ClusterState#appliedOffset()} to reach it before reading the change back; -1 when not applied).
 */
public record ControllerResult(int errorCode, String message, long appliedOffset) {
    public static ControllerResult ok(long appliedOffset) {
        return new ControllerResult(ControllerErrors.NONE, null, appliedOffset);
    }

    public static ControllerResult error(int code, String message, long appliedOffset) {
        return new ControllerResult(code, message, appliedOffset);
    }

    public boolean isOk() {
        return errorCode == ControllerErrors.NONE;
    }

    byte[] encode() {
        return new Wire.Writer().i16(errorCode).str(message == null ? "" : message).i64(appliedOffset).bytes();
    }

    static ControllerResult decode(byte[] bytes) {
        Wire.Reader r = new Wire.Reader(bytes);
        int code = r.i16();
        String m = r.str();
        long offset = r.i64();
        r.end();
        return new ControllerResult(code, m.isEmpty() ? null : m, offset);
    }

    @Override
    public String toString() {
        return isOk() ? "ok@" + appliedOffset : "error " + errorCode + ": " + message;
    }
}
