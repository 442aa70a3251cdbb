/**
 * The transaction coordinator's pure parts: {@link dev.isthmus.gateway.txn.TxnStateMachine} (Kafka's coordinator
 * rules for one {@code __transaction_state} partition, stepped with time and producer ids passed in, every effect
 * returned as a value), {@link dev.isthmus.gateway.txn.TransactionLog} (the partition's records, byte for byte
 * Kafka's), {@link dev.isthmus.gateway.txn.TxnConfig} (the broker settings by Kafka's names) and the state and
 * error vocabulary. Nothing here does I/O or owns a thread; the broker's shell ({@code TxnCoordinator},
 * {@code TxnHandlers} in {@code dev.isthmus.gateway}) runs them on the partition's shard.
 */
package dev.isthmus.gateway.txn;
