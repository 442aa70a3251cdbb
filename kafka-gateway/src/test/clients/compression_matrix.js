// kafkajs in the client x codec matrix, run by CompressionMatrixTest:
//   node compression_matrix.js produce BROKER TOPIC COUNT
//   node compression_matrix.js consume BROKER TOPIC[,TOPIC...] TOTAL [SECONDS]
// with KAFKAJS_PATH pointing at an installed kafkajs package; the codec plug-ins are loaded from the same
// node_modules: kafkajs-snappy, @2l/kafkajs-lz4 and @mongodb-js/zstd (wrapped here as kafkajs's zstd codec, the
// way @kafkajs/zstd wraps cppzst, which does not build on Node 20). gzip is built into kafkajs.
// produce: for each codec i of CODECS, one send() with that compression of COUNT values to partition i of TOPIC,
// value(TOPIC, codec, n) for n in 0..COUNT-1 (acks=all, idempotent); prints one JSON line per codec.
// consume: reads every TOPIC from the beginning in a consumer group until TOTAL records came back (or SECONDS
// passed, default 60) and prints each as a line "R topic partition offset value".
// Exits 0 on success, 1 with an "error" JSON line otherwise.
'use strict';
const path = require('path');
const kafkajsPath = process.env.KAFKAJS_PATH || 'kafkajs';
const { Kafka, logLevel, CompressionTypes, CompressionCodecs } = require(kafkajsPath);
const nodeModules = path.dirname(path.dirname(require.resolve(kafkajsPath + '/package.json')));
const fromModules = name => require(path.join(nodeModules, name));

CompressionCodecs[CompressionTypes.Snappy] = fromModules('kafkajs-snappy');
const LZ4Codec = fromModules('@2l/kafkajs-lz4');
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec;
const zstd = fromModules('@mongodb-js/zstd');
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  compress: async encoder => zstd.compress(encoder.buffer, 3),
  decompress: async buffer => zstd.decompress(buffer),
});

const CODECS = [
  ['none', CompressionTypes.None],
  ['gzip', CompressionTypes.GZIP],
  ['snappy', CompressionTypes.Snappy],
  ['lz4', CompressionTypes.LZ4],
  ['zstd', CompressionTypes.ZSTD],
];
const PAD = 'compressible-'.repeat(8);
const value = (topic, codec, n) => `${topic}/${codec}/${n}/${PAD}`;
const say = (step, fields) => console.log(JSON.stringify({ step, ...fields }));

const [mode, broker, topicArg, countArg, secondsArg] = process.argv.slice(2);
const kafka = new Kafka({
  clientId: 'isthmus-compression-matrix',
  brokers: [broker],
  logLevel: logLevel.ERROR,
  retry: { retries: 5, initialRetryTime: 100 },
});

async function produce(topic, count) {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let partition = 0; partition < CODECS.length; partition++) {
    const [codec, type] = CODECS[partition];
    const messages = [];
    for (let n = 0; n < count; n++) {
      messages.push({ partition, value: value(topic, codec, n) });
    }
    const acks = await producer.send({ topic, acks: -1, compression: type, messages });
    const failed = acks.filter(a => a.errorCode !== 0);
    if (failed.length > 0) {
      throw new Error(`codec ${codec}: produce errors ${JSON.stringify(failed)}`);
    }
    say('produce', { codec, partition, messages: count });
  }
  await producer.disconnect();
}

async function consume(topics, total, seconds) {
  const consumer = kafka.consumer({ groupId: 'compression-matrix-js', sessionTimeout: 10000, rebalanceTimeout: 10000,
    heartbeatInterval: 1000 });
  await consumer.connect();
  for (const topic of topics) {
    await consumer.subscribe({ topic, fromBeginning: true });
  }
  let got = 0;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out with ${got} of ${total} records`)), seconds * 1000);
    consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        console.log(`R ${topic} ${partition} ${message.offset} ${message.value.toString()}`);
        got++;
        if (got === total) {
          clearTimeout(timer);
          resolve();
        }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  say('consume', { records: got });
}

async function main() {
  if (mode === 'produce') {
    await produce(topicArg, parseInt(countArg, 10));
  } else {
    await consume(topicArg.split(','), parseInt(countArg, 10), parseInt(secondsArg || '60', 10));
  }
}

main().then(() => process.exit(0), (e) => {
  say('error', { message: String(e && e.stack || e) });
  process.exit(1);
});
