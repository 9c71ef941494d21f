/**
 * Exactly-once v2 (KIP-447) on the real broker, through the kafkajs requests scripts/patch-kafkajs.js
 * adds: the group coordinator refuses a stale member's transactional offsets, and a partition whose
 * offset a pending transaction holds reads as unstable until that transaction ends.
 */
import type { Consumer, Kafka, Producer } from 'kafkajs';
import { Partitioners } from 'kafkajs';
import { createKafka } from '../../src/kafka/client';
import { fetchStableOffset, groupMetadataOf, isGenerationError, sendOffsets, type ConsumerGroupMetadata } from '../../src/kafka/eos-v2';
import { kafkaErrorType } from '../../src/kafka/errors';
import { testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';

const endpoints = testEndpoints();

async function member(kafka: Kafka, groupId: string, topic: string, joins: ConsumerGroupMetadata[]): Promise<Consumer> {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500, rebalanceTimeout: 10000 });
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    const m = groupMetadataOf(payload);
    if (m) joins.push(m);
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async () => undefined });
  return consumer;
}

async function transactional(kafka: Kafka, id: string): Promise<Producer> {
  const p = kafka.producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 10000, createPartitioner: Partitioners.DefaultPartitioner });
  await p.connect();
  return p;
}

describe('exactly-once v2 protocol (TxnOffsetCommit v3, OffsetFetch v7 require_stable)', () => {
  const suffix = uniqueSuffix();
  const topic = `eosv2-in.${suffix}`;
  const groupId = `eosv2-group-${suffix}`;
  const kafka = createKafka({ clientId: 'eosv2-protocol-test', brokers: endpoints.brokers });
  const admin = kafka.admin();
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true });
  });
  afterAll(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await admin.disconnect();
  });

  it('a stale generation\'s TxnOffsetCommit is refused (ILLEGAL_GENERATION), an unknown member\'s too; the current member\'s commits', async () => {
    const joinsA: ConsumerGroupMetadata[] = [];
    const a = await member(kafka, groupId, topic, joinsA);
    closers.push(() => a.disconnect());
    await waitFor(() => joinsA.length >= 1, 30000, () => 'first member never joined');
    const stale = joinsA[joinsA.length - 1];
    expect(stale.memberId).not.toBe('');
    // A second member joins: the group rebalances into a new generation, which the first member joins too.
    const joinsB: ConsumerGroupMetadata[] = [];
    const b = await member(kafka, groupId, topic, joinsB);
    closers.push(() => b.disconnect());
    await waitFor(() => joinsB.length >= 1 && joinsA.some((m) => m.generationId > stale.generationId), 30000, () => `rebalance: A ${JSON.stringify(joinsA)}, B ${JSON.stringify(joinsB)}`);
    const current = joinsA.find((m) => m.generationId > stale.generationId)!;

    const producer = await transactional(kafka, `${groupId}.t1`);
    closers.push(() => producer.disconnect());
    const offsets = (offset: string, meta: ConsumerGroupMetadata) => ({ consumerGroupId: groupId, topics: [{ topic, partitions: [{ partition: 0, offset }] }], consumerGroupMetadata: meta });

    let txn = await producer.transaction();
    const refused = await sendOffsets(txn, offsets('5', stale)).catch((e: unknown) => e);
    expect(kafkaErrorType(refused)).toBe('ILLEGAL_GENERATION');
    expect(isGenerationError(refused)).toBe(true);
    await txn.abort();

    txn = await producer.transaction();
    const unknown = await sendOffsets(txn, offsets('5', { ...current, memberId: `${current.memberId}-not-a-member` })).catch((e: unknown) => e);
    expect(kafkaErrorType(unknown)).toBe('UNKNOWN_MEMBER_ID');
    await txn.abort();

    txn = await producer.transaction();
    await sendOffsets(txn, offsets('7', current));
    await txn.commit();
    expect(await fetchStableOffset(admin, groupId, topic, 0)).toBe('7');
  });

  it('an offset held by an open transaction reads as unstable (require_stable) until the transaction commits or aborts; other partitions answer at once', async () => {
    const group = `${groupId}-stable`;
    const producer = await transactional(kafka, `${group}.t2`);
    closers.push(() => producer.disconnect());
    const offsets = (partition: number, offset: string) => ({ consumerGroupId: group, topics: [{ topic, partitions: [{ partition, offset }] }] });
    // Committed: p0 at 3, p1 at 4.
    let txn = await producer.transaction();
    await sendOffsets(txn, { consumerGroupId: group, topics: [{ topic, partitions: [{ partition: 0, offset: '3' }, { partition: 1, offset: '4' }] }] });
    await txn.commit();
    expect(await fetchStableOffset(admin, group, topic, 0)).toBe('3');

    // Pending: p0 at 10 in an open transaction.
    txn = await producer.transaction();
    await sendOffsets(txn, offsets(0, '10'));
    await expect(fetchStableOffset(admin, group, topic, 0, { timeoutMs: 1500 })).rejects.toThrow(/stayed unstable/);
    expect(await fetchStableOffset(admin, group, topic, 1, { timeoutMs: 1500 })).toBe('4');
    // kafkajs' own read (OffsetFetch v4, no require_stable) answers the last committed offset meanwhile.
    const plain = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    expect(plain[0].partitions.find((p) => p.partition === 0)!.offset).toBe('3');
    const read = fetchStableOffset(admin, group, topic, 0, { timeoutMs: 20000 });
    await new Promise((r) => setTimeout(r, 300));
    await txn.commit();
    expect(await read).toBe('10');

    // Pending again, then aborted: the stable read waits, then answers the committed 10.
    txn = await producer.transaction();
    await sendOffsets(txn, offsets(0, '20'));
    const read2 = fetchStableOffset(admin, group, topic, 0, { timeoutMs: 20000 });
    await new Promise((r) => setTimeout(r, 300));
    await txn.abort();
    expect(await read2).toBe('10');
  });
});
