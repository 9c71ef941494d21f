#!/usr/bin/env node
/**
 * What encoding one produce request costs the event loop, kafkajs' nested encoders against the
 * one-buffer encoding of scripts/patch-kafkajs.js (14), alternated in rounds in one process:
 *   node --expose-gc bench/tools/produce-encode.js
 * A request shaped like one lane's commit in the live bench at 8,000 events/s: RECORDS (default 60)
 * per topic, a feature vector (VECTOR bytes, 520) and a prediction (PREDICTION, 180) per event,
 * three headers each. Prints µs per request and per record, and the buffers allocated per request
 * (calls of Buffer.allocUnsafe, counted in one extra encoding of each).
 */
'use strict';
const Encoder = require('kafkajs/src/protocol/encoder');
const produceV7 = require('kafkajs/src/protocol/requests/produce/v7/request');
const createRequest = require('kafkajs/src/protocol/request');
const Long = require('kafkajs/src/utils/long');

const RECORDS = Number(process.env.RECORDS ?? 60);
const VECTOR = Number(process.env.VECTOR ?? 520);
const PREDICTION = Number(process.env.PREDICTION ?? 180);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const REQUESTS = Number(process.env.REQUESTS ?? 4000);

const messages = (size) =>
  Array.from({ length: RECORDS }, (_, i) => ({
    key: Buffer.from(`card-${1000 + i}`),
    value: Buffer.alloc(size, i),
    timestamp: String(1733000000000 + i * 3),
    headers: { 'tributary-lineage': Buffer.alloc(16, 1), traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'tributary-done': 'score' },
  }));
const topicData = [
  { topic: 'fraud-features', partitions: [{ partition: 1, firstSequence: 0, messages: messages(VECTOR) }] },
  { topic: 'fraud-predictions', partitions: [{ partition: 1, firstSequence: 0, messages: messages(PREDICTION) }] },
];
const request = produceV7({ acks: -1, timeout: 30000, transactionalId: 'tributary-fraud-1', producerId: Long.fromInt(4001), producerEpoch: 2, topicData });

/** protocol/request.js as kafkajs wrote it: the nested payload, the header, then the size in front. */
async function nested(correlationId) {
  const payload = await request.encode({ nested: true });
  const framed = new Encoder().writeInt16(request.apiKey).writeInt16(request.apiVersion).writeInt32(correlationId).writeString('tributary').writeEncoder(payload);
  return new Encoder().writeInt32(framed.size()).writeEncoder(framed).buffer;
}
async function oneBuffer(correlationId) {
  return (await createRequest({ correlationId, clientId: 'tributary', request })).buffer;
}

async function buffersPerRequest(encode) {
  const allocUnsafe = Buffer.allocUnsafe;
  let calls = 0;
  Buffer.allocUnsafe = (n) => (calls++, allocUnsafe(n));
  try {
    await encode(0);
  } finally {
    Buffer.allocUnsafe = allocUnsafe;
  }
  return calls;
}

async function round(name, encode) {
  global.gc();
  const t0 = process.hrtime.bigint();
  let bytes = 0;
  for (let i = 0; i < REQUESTS; i++) bytes += (await encode(i)).length;
  const ns = Number(process.hrtime.bigint() - t0);
  return { name, usPerRequest: ns / REQUESTS / 1000, usPerRecord: ns / REQUESTS / (2 * RECORDS) / 1000, requestBytes: bytes / REQUESTS, buffers: await buffersPerRequest(encode) };
}

(async () => {
  if ((await nested(0)).equals(await oneBuffer(0)) !== true) throw new Error('the two encodings differ');
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, encode] of r % 2 === 0 ? [['nested', nested], ['one-buffer', oneBuffer]] : [['one-buffer', oneBuffer], ['nested', nested]]) {
      const x = await round(name, encode);
      console.log(`round ${r} ${x.name.padEnd(10)} ${x.usPerRequest.toFixed(1)} µs/request  ${x.usPerRecord.toFixed(3)} µs/record  request ${x.requestBytes} B  ${x.buffers} buffers allocated`);
    }
  }
})();
