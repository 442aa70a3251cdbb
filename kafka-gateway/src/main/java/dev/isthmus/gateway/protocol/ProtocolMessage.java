package dev.isthmus.gateway.protocol;

/** A generated Kafka request, response or header. */
public interface ProtocolMessage extends ProtocolStruct {
    short apiKey();

    short lowestVersion();

    short highestVersion();
}
