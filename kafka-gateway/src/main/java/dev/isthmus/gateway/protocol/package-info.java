/**
 * The Kafka wire protocol: hand-written readers/writers ({@link dev.isthmus.gateway.protocol.ProtocolReader},
 * {@link dev.isthmus.gateway.protocol.ProtocolWriter}, zero-copy {@link dev.isthmus.gateway.protocol.ByteSlice})
 * under codecs generated at build time from Kafka's own JSON schemas into
 * {@code dev.isthmus.gateway.protocol.message} (see {@code kafka-gateway/codegen/KafkaCodegen.java}).
 */
package dev.isthmus.gateway.protocol;
