/**
 * A short transactional produce loop through createKafka (compiled dist/), run as its own process
 * so a test can read every log line it writes. Args: <brokers> <topic> <transactions>.
 * Then a few sends through idempotentProducer. Prints one JSON line on stdout at the end:
 * { committed, sent, retriable: { TYPE: n } } where
 * `retriable` is what kafkaRetriableCounter counted.
 */
const { Registry } = require('prom-client');
const { connectTransactionalProducer, createKafka, idempotentProducer, kafkaRetriableCounter } = require('../../dist/kafka/client');

async function main() {
  const [brokers, topic, count] = process.argv.slice(2);
  const registry = new Registry();
  const counter = kafkaRetriableCounter(registry);
  const kafka = createKafka({ clientId: 'transaction-loop', brokers: brokers.split(',') });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = await connectTransactionalProducer(kafka, { transactionalId: `${topic}.txn` });
  let committed = 0;
  for (let i = 0; i < Number(count); i++) {
    // Back to back: the next transaction starts while the broker still writes the last one's markers.
    const txn = await producer.transaction();
    await txn.send({ topic, messages: [{ key: `k${i}`, value: `v${i}` }, { key: `j${i}`, value: `w${i}` }] });
    await txn.commit();
    committed += 1;
  }
  await producer.disconnect();
  // The at-least-once path: an idempotent producer made by the helper, a few sends.
  const plain = idempotentProducer(kafka, { name: 'transaction-loop' });
  await plain.connect();
  let sent = 0;
  for (let i = 0; i < 5; i++) {
    await plain.send({ topic, messages: [{ key: `p${i}`, value: `p${i}` }] });
    sent += 1;
  }
  await plain.disconnect();
  const retriable = {};
  for (const v of (await counter.get()).values) retriable[v.labels.type] = v.value;
  process.stdout.write(`${JSON.stringify({ committed, sent, retriable })}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
