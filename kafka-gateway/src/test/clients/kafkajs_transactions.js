// kafkajs transactions against an Isthmus broker, run by OtherClientsTransactionTest:
//   node kafkajs_transactions.js BROKER TOPIC INPUT GROUP TXN_ID
// with KAFKAJS_PATH pointing at an installed kafkajs package. TOPIC (2 partitions) and INPUT (1 partition) must
// exist. With transactional id TXN_ID, in this order:
//   c1  6 records over both partitions of TOPIC, offset 5 of INPUT partition 0 for GROUP sent to the transaction
//       (the group's committed offset must still be unset before the commit), committed; the offset must become 5;
//   a1  6 records (acknowledged: in the log), offset 9 sent to the transaction, aborted;
//   c2  6 records, committed; the group's offset must still be 5;
//   z1  6 records; then a second producer with the same TXN_ID initialises (fencing the first and aborting z1),
//       and the first producer's commit must fail with the broker's fencing error;
//   c3  6 records from the second producer, committed;
// then kafkajs's own read_committed consumer must read c1, c2 and c3 once each and nothing of a1 or z1.
// Record values are "<txn>-<i>". What the broker stored is checked by the Java test. Prints one JSON line per
// step; exits 0 on success, 1 with an "error" line otherwise.
'use strict';
const { Kafka, logLevel } = require(process.env.KAFKAJS_PATH || 'kafkajs');

const [broker, topic, input, groupId, transactionalId] = process.argv.slice(2);
const PER_TXN = 6;
const say = (step, fields) => console.log(JSON.stringify({ step, ...fields }));

const kafka = new Kafka({
  clientId: 'isthmus-kafkajs-txn-test',
  brokers: [broker],
  logLevel: logLevel.NOTHING,
  retry: { retries: 8, initialRetryTime: 100 },
});

function producer() {
  return kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 60000 });
}

async function send(txn, name) {
  const messages = [];
  for (let i = 0; i < PER_TXN; i++) {
    messages.push({ partition: i % 2, key: 'k' + i, value: name + '-' + i });
  }
  const acks = await txn.send({ topic, acks: -1, messages });
  for (const a of acks) {
    if (a.errorCode !== 0) {
      throw new Error(name + ': produce error ' + JSON.stringify(a));
    }
  }
}

/** The group's committed offset of INPUT partition 0 (OffsetFetch), or null when there is none. */
async function committed(admin) {
  const offsets = await admin.fetchOffsets({ groupId, topics: [input] });
  const p = offsets[0].partitions.find(x => x.partition === 0);
  const o = parseInt(p.offset, 10);
  return o < 0 ? null : o;
}

const offsetsOf = offset => ({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: 0, offset: String(offset) }] }] });

async function main() {
  const admin = kafka.admin();
  await admin.connect();
  const p1 = producer();
  await p1.connect();

  let txn = await p1.transaction();
  await send(txn, 'c1');
  await txn.sendOffsets(offsetsOf(5));
  const before = await committed(admin);
  say('c1-pending', { committed: before });
  if (before !== null) {
    throw new Error('offset visible before the commit: ' + before);
  }
  await txn.commit();
  const deadline = Date.now() + 30000;
  let after = await committed(admin);
  while (after !== 5 && Date.now() < deadline) {
    await new Promise(r => setTimeout(r, 50));
    after = await committed(admin);
  }
  say('c1-committed', { committed: after });
  if (after !== 5) {
    throw new Error('the committed transaction\'s offset is ' + after + ', not 5');
  }

  txn = await p1.transaction();
  await send(txn, 'a1');
  await txn.sendOffsets(offsetsOf(9));
  await txn.abort();
  say('a1-aborted', {});

  txn = await p1.transaction();
  await send(txn, 'c2');
  await txn.commit();
  const afterAbort = await committed(admin);
  say('c2-committed', { committed: afterAbort });
  if (afterAbort !== 5) {
    throw new Error('after the aborted transaction the offset is ' + afterAbort + ', not 5');
  }

  const zombie = await p1.transaction();
  await send(zombie, 'z1');
  const p2 = producer();
  await p2.connect();
  const txn2 = await p2.transaction(); // InitProducerId: bumps the epoch, aborts z1
  say('z1-second-producer-initialised', {});
  try {
    await zombie.commit();
    throw new Error('the fenced producer\'s commit succeeded');
  } catch (e) {
    say('z1-fenced', { name: e.name, type: e.type, code: e.code, message: e.message });
    if (e.name !== 'KafkaJSProtocolError' || (e.type !== 'INVALID_PRODUCER_EPOCH' && e.type !== 'PRODUCER_FENCED')) {
      throw e;
    }
  }
  await p1.disconnect();

  await send(txn2, 'c3');
  await txn2.commit();
  say('c3-committed', {});
  await p2.disconnect();
  await admin.disconnect();
  await readCommitted();
}

/** kafkajs's own read_committed consumer (it drops aborted records by the fetch's aborted list). */
async function readCommitted() {
  const expected = [];
  for (const t of ['c1', 'c2', 'c3']) {
    for (let i = 0; i < PER_TXN; i++) {
      expected.push(t + '-' + i);
    }
  }
  const consumer = kafka.consumer({ groupId: groupId + '-reader', readUncommitted: false, sessionTimeout: 10000,
    rebalanceTimeout: 10000, heartbeatInterval: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = [];
  // c3 is last on both partitions: once all of it arrived, anything aborted (earlier in the log) would have too.
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('read_committed consumer timed out with ' + JSON.stringify(seen))), 60000);
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value.toString());
        if (expected.every(v => seen.includes(v))) {
          clearTimeout(timer);
          resolve();
        }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  seen.sort();
  say('read-committed', { values: seen });
  if (JSON.stringify(seen) !== JSON.stringify(expected.sort())) {
    throw new Error('read_committed consumer read ' + JSON.stringify(seen));
  }
}

main().then(() => process.exit(0), (e) => {
  say('error', { message: String(e && e.stack || e) });
  process.exit(1);
});
