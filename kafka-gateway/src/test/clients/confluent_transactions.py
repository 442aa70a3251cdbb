"""confluent-kafka-python (librdkafka) transactions against an Isthmus broker, run by OtherClientsTransactionTest:

    python3 confluent_transactions.py BROKER TOPIC INPUT GROUP TXN_ID

TOPIC (2 partitions) and INPUT (1 partition) must exist. A consumer joins GROUP on INPUT (its group metadata goes
with the offsets, as in a consume-transform-produce loop). With transactional id TXN_ID, in this order:
  c1  6 records over both partitions of TOPIC, offset 5 of INPUT partition 0 for GROUP sent to the transaction
      (the group's committed offset must still be unset before the commit), committed; the offset must become 5;
  a1  6 records, flushed (delivered to the log), offset 9 sent to the transaction, aborted;
  c2  6 records, committed; the group's offset must still be 5;
  z1  6 records, flushed; then a second producer with the same TXN_ID initialises (fencing the first and
      aborting z1), and the first producer's commit must fail, fatally, as fenced;
  c3  6 records from the second producer, committed;
then librdkafka's own read_committed consumer must read c1, c2 and c3 once each and nothing of a1 or z1.
Record values are "<txn>-<i>". What the broker stored is checked by the Java test. Prints one JSON line per step;
exits 0 on success, 1 with an "error" line otherwise.
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

PER_TXN = 6


def say(step, **fields):
    print(json.dumps(dict(step=step, **fields)), flush=True)


def producer(broker, txn_id):
    p = Producer({"bootstrap.servers": broker, "transactional.id": txn_id, "transaction.timeout.ms": 60000,
                  "linger.ms": 5})
    p.init_transactions(30)
    return p


def send(p, topic, txn):
    errors = []
    for i in range(PER_TXN):
        p.produce(topic, partition=i % 2, key=("k%d" % i).encode(), value=("%s-%d" % (txn, i)).encode(),
                  on_delivery=lambda err, msg: errors.append(str(err)) if err else None)
    left = p.flush(30)
    if left or errors:
        raise RuntimeError("%s: %d undelivered, errors %s" % (txn, left, errors[:3]))


def committed(reader, tp):
    """The group's committed offset of tp, or None; read_uncommitted so OffsetFetch does not require stability."""
    got = reader.committed([tp], timeout=30)[0]
    if got.error:
        raise RuntimeError("committed(%s): %s" % (tp, got.error))
    return None if got.offset < 0 else got.offset


def main():
    broker, topic, input_topic, group, txn_id = sys.argv[1:6]
    tp_in = TopicPartition(input_topic, 0)
    # A member of GROUP, as in a consume-transform-produce loop: its group metadata (generation, member id) goes
    # with the offsets (TxnOffsetCommit v3), and the group coordinator checks them.
    member = Consumer({"bootstrap.servers": broker, "group.id": group, "enable.auto.commit": False,
                       "session.timeout.ms": 10000})
    assigned = []
    member.subscribe([input_topic], on_assign=lambda c, parts: assigned.extend(parts))
    deadline = time.time() + 30
    while not assigned and time.time() < deadline:
        member.poll(0.2)
    say("member-joined", assigned=[(tp.topic, tp.partition) for tp in assigned])
    if not assigned:
        raise RuntimeError("the consumer never got its assignment in group %s" % group)
    reader = Consumer({"bootstrap.servers": broker, "group.id": group, "enable.auto.commit": False,
                       "isolation.level": "read_uncommitted"})
    metadata = member.consumer_group_metadata()

    p1 = producer(broker, txn_id)
    p1.begin_transaction()
    send(p1, topic, "c1")
    p1.send_offsets_to_transaction([TopicPartition(input_topic, 0, 5)], metadata, 30)
    before = committed(reader, tp_in)
    say("c1-pending", committed=before)
    if before is not None:
        raise RuntimeError("offset visible before the commit: %s" % before)
    p1.commit_transaction(30)
    deadline = time.time() + 30
    after = committed(reader, tp_in)
    while after != 5 and time.time() < deadline:
        time.sleep(0.05)
        after = committed(reader, tp_in)
    say("c1-committed", committed=after)
    if after != 5:
        raise RuntimeError("the committed transaction's offset is %s, not 5" % after)

    p1.begin_transaction()
    send(p1, topic, "a1")
    p1.send_offsets_to_transaction([TopicPartition(input_topic, 0, 9)], metadata, 30)
    p1.abort_transaction(30)
    say("a1-aborted")

    p1.begin_transaction()
    send(p1, topic, "c2")
    p1.commit_transaction(30)
    after_abort = committed(reader, tp_in)
    say("c2-committed", committed=after_abort)
    if after_abort != 5:
        raise RuntimeError("after the aborted transaction the offset is %s, not 5" % after_abort)

    p1.begin_transaction()
    send(p1, topic, "z1")
    p2 = producer(broker, txn_id)
    say("z1-second-producer-initialised")
    try:
        p1.commit_transaction(30)
        raise RuntimeError("the fenced producer's commit succeeded")
    except KafkaException as e:
        err = e.args[0]
        say("z1-fenced", code=err.code(), name=err.name(), fatal=err.fatal(), message=err.str())
        if not err.fatal() or err.code() != KafkaError._FENCED:
            raise RuntimeError("expected a fatal _FENCED error, got %s" % err)

    p2.begin_transaction()
    send(p2, topic, "c3")
    p2.commit_transaction(30)
    say("c3-committed")
    p2.flush(10)
    member.close()
    reader.close()
    read_committed(broker, topic, group)


def read_committed(broker, topic, group):
    """librdkafka's own read_committed consumer (it drops aborted records by the fetch's aborted list)."""
    expected = {"%s-%d" % (t, i) for t in ("c1", "c2", "c3") for i in range(PER_TXN)}
    c = Consumer({"bootstrap.servers": broker, "group.id": group + "-reader", "enable.auto.commit": False,
                  "isolation.level": "read_committed", "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
    seen = []
    eof = set()
    deadline = time.time() + 60
    # c3 is last on both partitions, so once all of it arrived and both partitions are at their end, anything
    # aborted (earlier in the log) would have arrived too.
    while not (expected <= set(seen) and len(eof) == 2) and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                eof.add(m.partition())
                continue
            raise RuntimeError("read_committed consumer: %s" % m.error())
        eof.discard(m.partition())
        seen.append(m.value().decode())
    c.close()
    say("read-committed", values=sorted(seen))
    if sorted(seen) != sorted(expected):
        raise RuntimeError("read_committed consumer read %s" % sorted(seen))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - the test reads this line
        say("error", message="%s: %s" % (type(e).__name__, e))
        sys.exit(1)
