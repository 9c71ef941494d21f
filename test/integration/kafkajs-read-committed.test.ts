/**
 * kafkajs read_committed against the real broker: a transaction that began first but was aborted
 * last (two producers on one partition, as after a crash of a pipeline with several transactional
 * producers per output partition) stays invisible. The broker lists a fetch's aborted transactions
 * in the order they were aborted; unpatched kafkajs walks that list as if it were in first-offset
 * order and delivered the first transaction's record (scripts/patch-kafkajs.js sorts it).
 */
import type { Producer } from 'kafkajs';
import { createKafka } from '../../src/kafka/client';
import { testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';

const endpoints = testEndpoints();

describe('kafkajs read_committed (patched) on the real broker', () => {
  it('hides an aborted transaction that began before another aborted one but ended after it', async () => {
    const kafka = createKafka({ clientId: 'read-committed-test', brokers: endpoints.brokers });
    const topic = `test.read-committed.${uniqueSuffix()}`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const producers: Producer[] = [];
    const producer = async (id: string) => {
      const p = kafka.producer({ transactionalId: `${topic}.${id}`, idempotent: true, maxInFlightRequests: 1, retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 50 } });
      producers.push(p);
      await p.connect();
      return p;
    };
    const consumer = kafka.consumer({ groupId: `${topic}.reader`, readUncommitted: false, maxWaitTimeInMs: 100 });
    try {
      const [a, b, c] = [await producer('a'), await producer('b'), await producer('c')];
      const ta = await a.transaction();
      await ta.send({ topic, messages: [{ key: 'a', value: 'aborted-first-offset-0' }] });
      const tb = await b.transaction();
      await tb.send({ topic, messages: [{ key: 'b', value: 'aborted-first-offset-1' }] });
      await ta.send({ topic, messages: [{ key: 'a', value: 'aborted-offset-2' }] });
      await tb.abort(); // b (began second) ends first ...
      await ta.abort(); // ... a (began first) ends last: listed after b
      const tc = await c.transaction();
      await tc.send({ topic, messages: [{ key: 'c', value: 'committed' }] });
      await tc.commit();

      const seen: string[] = [];
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({ eachMessage: async ({ message }) => void seen.push(message.value!.toString()) });
      await waitFor(() => seen.includes('committed'), 30000, () => `seen ${seen.join(', ')}`);
      expect(seen).toEqual(['committed']);
    } finally {
      await consumer.disconnect().catch(() => undefined);
      await Promise.allSettled(producers.map((p) => p.disconnect()));
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});
