"""confluent-kafka-python (librdkafka) against an Isthmus broker, run by OtherClientsTest:

    python3 confluent_roundtrip.py BROKER TOPIC GROUP COUNT MODE [SECONDS]

MODE "assign": creates TOPIC (2 partitions) with the admin client, produces COUNT messages per compression
codec (none, gzip, snappy, lz4, zstd; acks=all, idempotent), then reads both partitions by explicit assignment
from the beginning until every message came back, checking order within each partition.
MODE "group": consumes TOPIC in consumer group GROUP (subscribe), commits, and reads the committed offsets back.
SECONDS bounds each consuming phase (default 60). Prints one JSON line per step; exits 0 on success, 1 with an "error" line otherwise.
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def say(step, **fields):
    print(json.dumps(dict(step=step, **fields)), flush=True)


def produce(broker, topic, count):
    admin = AdminClient({"bootstrap.servers": broker})
    futures = admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    futures[topic].result(30)
    md = admin.list_topics(topic, timeout=30)
    say("admin", partitions=len(md.topics[topic].partitions))
    sent = []
    for codec in CODECS:
        errors = []
        p = Producer({"bootstrap.servers": broker, "acks": "all", "enable.idempotence": True,
                      "compression.codec": codec, "linger.ms": 5})
        for i in range(count):
            value = "%s-%d" % (codec, i)
            p.produce(topic, key=("k%d" % (i % 7)).encode(), value=value.encode(),
                      on_delivery=lambda err, msg: errors.append(str(err)) if err else None)
            sent.append(value)
        left = p.flush(30)
        if left or errors:
            raise RuntimeError("codec %s: %d undelivered, errors %s" % (codec, left, errors[:3]))
        say("produce", codec=codec, messages=count)
    return sent


def drain(consumer, expected, deadline_s):
    seen = {}
    per_partition = {}
    problems = []
    deadline = time.time() + deadline_s
    while len(seen) < expected and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() != KafkaError._PARTITION_EOF:
                problems.append(str(m.error()))
            continue
        v = m.value().decode()
        seen[v] = seen.get(v, 0) + 1
        per_partition.setdefault(m.partition(), []).append(m.offset())
    for part, offsets in per_partition.items():
        if offsets != sorted(offsets):
            problems.append("partition %d out of order" % part)
    return seen, problems


def main():
    broker, topic, group, count, mode = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    seconds = int(sys.argv[6]) if len(sys.argv) > 6 else 60
    total = count * len(CODECS)
    if mode == "assign":
        sent = produce(broker, topic, count)
        c = Consumer({"bootstrap.servers": broker, "group.id": group + "-unused", "enable.auto.commit": False,
                      "enable.partition.eof": True})
        c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
        seen, problems = drain(c, total, seconds)
        c.close()
        say("consume-assign", distinct=len(seen), duplicates=sum(1 for n in seen.values() if n > 1),
            problems=problems[:5])
        if set(seen) != set(sent) or problems:
            raise RuntimeError("assigned consumer got %d of %d distinct messages; problems %s"
                               % (len(seen), total, problems[:5]))
    else:
        c = Consumer({"bootstrap.servers": broker, "group.id": group, "auto.offset.reset": "earliest",
                      "enable.auto.commit": False, "session.timeout.ms": 10000})
        c.subscribe([topic])
        seen, problems = drain(c, total, seconds)
        c.commit(asynchronous=False)
        committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=30)
        c.close()
        say("consume-group", distinct=len(seen), problems=problems[:5],
            committed=[(tp.partition, tp.offset) for tp in committed])
        if len(seen) != total or problems:
            raise RuntimeError("group consumer got %d of %d distinct messages; problems %s"
                               % (len(seen), total, problems[:5]))
        if sum(tp.offset for tp in committed) != total:
            raise RuntimeError("committed offsets %s do not add up to %d"
                               % ([(tp.partition, tp.offset) for tp in committed], total))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - the test reads this line
        say("error", message="%s: %s" % (type(e).__name__, e))
        sys.exit(1)
