// kafkajs against an Isthmus broker, run by OtherClientsTest:
//   node kafkajs_roundtrip.js BROKER TOPIC GROUP COUNT [SECONDS]
// with KAFKAJS_PATH pointing at an installed kafkajs package. Over TLS and SASL when KAFKAJS_SSL_CA (a PEM file of
// the CAs to trust; the broker's host name is checked) and KAFKAJS_SASL_MECHANISM (plain, scram-sha-256 or
// scram-sha-512, with KAFKAJS_SASL_USERNAME and KAFKAJS_SASL_PASSWORD) are set. Creates TOPIC (2 partitions) with the admin
// client, produces COUNT messages (acks=all, idempotent, keys spread over both partitions), then consumes them
// in consumer group GROUP (for at most SECONDS, default 60) and commits. Prints one JSON line per step and exits 0 when every message came back
// exactly once, 1 otherwise (with the error).
'use strict';
const { Kafka, logLevel, CompressionTypes } = require(process.env.KAFKAJS_PATH || 'kafkajs');

const [broker, topic, groupId, countArg, secondsArg] = process.argv.slice(2);
const seconds = parseInt(secondsArg || '60', 10);
const count = parseInt(countArg, 10);
const say = (step, fields) => console.log(JSON.stringify({ step, ...fields }));

const security = {};
if (process.env.KAFKAJS_SSL_CA) {
  security.ssl = { ca: [require('fs').readFileSync(process.env.KAFKAJS_SSL_CA, 'utf8')], rejectUnauthorized: true };
}
if (process.env.KAFKAJS_SASL_MECHANISM) {
  security.sasl = {
    mechanism: process.env.KAFKAJS_SASL_MECHANISM,
    username: process.env.KAFKAJS_SASL_USERNAME,
    password: process.env.KAFKAJS_SASL_PASSWORD,
  };
}

const kafka = new Kafka({
  clientId: 'isthmus-kafkajs-test',
  brokers: [broker],
  ...security,
  logLevel: logLevel.ERROR,
  retry: { retries: 5, initialRetryTime: 100 },
});

async function main() {
  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true });
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
  say('admin', { created, partitions: metadata.topics[0].partitions.length });
  await admin.disconnect();

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < count; i++) {
    messages.push({ key: 'k' + (i % 7), value: 'v' + i });
  }
  const acks = await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages });
  say('produce', { acks: acks.map(a => ({ partition: a.partition, baseOffset: a.baseOffset, errorCode: a.errorCode })) });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, rebalanceTimeout: 10000, heartbeatInterval: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = new Map();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out with ' + seen.size + ' of ' + count + ' messages')), seconds * 1000);
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        const v = message.value.toString();
        seen.set(v, (seen.get(v) || 0) + 1);
        if (seen.size === count) {
          clearTimeout(timer);
          resolve();
        }
      },
    }).catch(reject);
  });
  await consumer.commitOffsets([]).catch(() => {});
  await consumer.disconnect();
  const duplicates = [...seen.values()].filter(n => n > 1).length;
  say('consume', { distinct: seen.size, duplicates });

  const admin2 = kafka.admin();
  await admin2.connect();
  const offsets = await admin2.fetchOffsets({ groupId, topics: [topic] });
  say('offsets', { committed: offsets[0].partitions.map(p => ({ partition: p.partition, offset: p.offset })) });
  await admin2.disconnect();
  if (seen.size !== count || duplicates !== 0) {
    throw new Error('expected ' + count + ' distinct messages once each');
  }
}

main().then(() => process.exit(0), (e) => {
  say('error', { message: String(e && e.stack || e) });
  process.exit(1);
});
