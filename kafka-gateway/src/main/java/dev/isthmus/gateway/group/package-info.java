/**
 * The classic consumer-group protocol as a pure state machine, apart from the shard that runs it and the partition
 * that stores it.
 *
 * <ul>
 *   <li>{@link dev.isthmus.gateway.group.GroupStateMachine}: the groups of one {@code __consumer_offsets} partition
 *       (Kafka's {@code GroupMetadataManager} and {@code OffsetMetadataManager} for classic groups). No threads, no
 *       I/O, no clock: it is stepped by requests, by {@code tick(nowMs)} and by write completions, and answers with
 *       values in an {@link dev.isthmus.gateway.group.Outbox}.</li>
 *   <li>{@link dev.isthmus.gateway.group.ClassicGroup} and {@code GroupMember}: one group's state, members, timers
 *       (as deadlines) and offsets.</li>
 *   <li>{@link dev.isthmus.gateway.group.GroupRecord} and {@link dev.isthmus.gateway.group.OffsetsRecords}: the
 *       records of the offsets partition and their on-disk layout.</li>
 *   <li>{@link dev.isthmus.gateway.group.GroupApi}: requests and responses as plain values.</li>
 * </ul>
 *
 * The shell is {@code dev.isthmus.gateway.GroupCoordinator} (one per shard: routes requests, arms one timer per
 * group, completes promises) with {@code GroupStore} (appends writes, replays the partition). This package depends
 * on nothing of the gateway. Tests: {@code GroupStateMachineTest} (one per protocol rule) and
 * {@code GroupStateMachineModelTest} (seeded random schedules against a reference model).
 */
package dev.isthmus.gateway.group;
