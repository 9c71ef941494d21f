/**
 * kafkajs (patched, scripts/patch-kafkajs.js) remembers coordinators: against the real broker, a
 * transactional producer committing outputs and two groups' offsets sends FindCoordinator
 * (`GroupCoordinator`) requests for its first transaction only, where unpatched kafkajs 2.2.4 sent
 * one before every AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit and EndTxn; a coordination
 * error empties the cache and the next transaction looks its coordinators up again.
 */
import type { Producer } from 'kafkajs';
import { createKafka } from '../../src/kafka/client';
import { testEndpoints, uniqueSuffix } from '../helpers/topology';

// The module the patch adds to kafkajs (plain JS, no types).
const coordinators = require('kafkajs/src/cluster/coordinatorCache') as { observe(e: { type: string }): void };

const endpoints = testEndpoints();

describe('kafkajs coordinator cache (patched) on the real broker', () => {
  it('looks coordinators up for the first transaction only, and again after a coordination error', async () => {
    const kafka = createKafka({ clientId: 'coordinator-cache-test', brokers: endpoints.brokers });
    const topic = `test.coordinators.${uniqueSuffix()}`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }, { topic: `${topic}.in`, numPartitions: 3 }], waitForLeaders: true });
    let producer: Producer | undefined;
    try {
      producer = kafka.producer({ transactionalId: `${topic}.txn`, idempotent: true, maxInFlightRequests: 1, retry: { retries: 20, initialRetryTime: 20 } });
      const requests: string[] = [];
      producer.on(producer.events.REQUEST, (e: { payload: { apiName: string } }) => void requests.push(e.payload.apiName));
      await producer.connect();
      let offset = 0;
      const transaction = async () => {
        const before = requests.length;
        const txn = await producer!.transaction();
        await txn.send({ topic, messages: [0, 1, 2].map((partition) => ({ partition, value: `v${offset}` })) });
        offset += 1;
        for (const group of ['a', 'b']) await txn.sendOffsets({ consumerGroupId: `${topic}.${group}`, topics: [{ topic: `${topic}.in`, partitions: [0, 1, 2].map((partition) => ({ partition, offset: String(offset) })) }] });
        await txn.commit();
        const sent = requests.slice(before);
        return { lookups: sent.filter((n) => n === 'GroupCoordinator').length, sent };
      };
      const first = await transaction();
      // The transaction coordinator and the two groups' coordinators.
      expect(first.lookups).toBeGreaterThanOrEqual(3);
      for (let i = 0; i < 5; i++) {
        const next = await transaction();
        expect(next.lookups).toBe(0);
        // The transaction itself still runs every request it needs.
        for (const api of ['AddPartitionsToTxn', 'Produce', 'AddOffsetsToTxn', 'TxnOffsetCommit', 'EndTxn']) expect(next.sent).toContain(api);
      }
      // A broker answering that coordination moved empties the cache (the patched broker request path reports it).
      coordinators.observe({ type: 'NOT_COORDINATOR_FOR_GROUP' });
      expect((await transaction()).lookups).toBeGreaterThanOrEqual(3);
      expect((await transaction()).lookups).toBe(0);
      // Errors of other kinds leave it alone.
      coordinators.observe({ type: 'CONCURRENT_TRANSACTIONS' });
      expect((await transaction()).lookups).toBe(0);
    } finally {
      await producer?.disconnect();
      await admin.deleteTopics({ topics: [topic, `${topic}.in`] }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});
