"""confluent-kafka-python (librdkafka) in the client x codec matrix, run by CompressionMatrixTest:

    python3 compression_matrix.py produce BROKER TOPIC COUNT
    python3 compression_matrix.py consume BROKER TOPIC[,TOPIC...] PARTITIONS TOTAL [SECONDS]

produce: for each codec i of CODECS, one producer with compression.type=CODECS[i] (acks=all, idempotent) sends
COUNT values to partition i of TOPIC, value(TOPIC, codec, n) for n in 0..COUNT-1; prints one JSON line per codec.
consume: reads partitions 0..PARTITIONS-1 of every TOPIC by assignment from the beginning until TOTAL records
came back (or SECONDS passed, default 60) and prints each as a line "R topic partition offset value".
Exits 0 on success, 1 with an "error" JSON line otherwise.
"""
import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PAD = "compressible-" * 8


def value(topic, codec, n):
    return "%s/%s/%d/%s" % (topic, codec, n, PAD)


def say(step, **fields):
    print(json.dumps(dict(step=step, **fields)), flush=True)


def produce(broker, topic, count):
    for partition, codec in enumerate(CODECS):
        errors = []
        p = Producer({"bootstrap.servers": broker, "acks": "all", "enable.idempotence": True,
                      "compression.type": codec, "linger.ms": 20})
        for n in range(count):
            p.produce(topic, value=value(topic, codec, n).encode(), partition=partition,
                      on_delivery=lambda err, msg: errors.append(str(err)) if err else None)
        left = p.flush(30)
        if left or errors:
            raise RuntimeError("codec %s: %d undelivered, errors %s" % (codec, left, errors[:3]))
        say("produce", codec=codec, partition=partition, messages=count)


def consume(broker, topics, partitions, total, seconds):
    c = Consumer({"bootstrap.servers": broker, "group.id": "compression-matrix-py", "enable.auto.commit": False})
    c.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in range(partitions)])
    got = 0
    problems = []
    deadline = time.time() + seconds
    while got < total and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() != KafkaError._PARTITION_EOF:
                problems.append(str(m.error()))
            continue
        print("R %s %d %d %s" % (m.topic(), m.partition(), m.offset(), m.value().decode()), flush=True)
        got += 1
    c.close()
    say("consume", records=got, problems=problems[:5])
    if got != total or problems:
        raise RuntimeError("read %d of %d records; problems %s" % (got, total, problems[:5]))


def main():
    mode, broker = sys.argv[1], sys.argv[2]
    if mode == "produce":
        produce(broker, sys.argv[3], int(sys.argv[4]))
    else:
        seconds = int(sys.argv[6]) if len(sys.argv) > 6 else 60
        consume(broker, sys.argv[3].split(","), int(sys.argv[4]), int(sys.argv[5]), seconds)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - the test reads this line
        say("error", message="%s: %s" % (type(e).__name__, e))
        sys.exit(1)
