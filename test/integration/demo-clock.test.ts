import Redis from 'ioredis';
import * as path from 'node:path';
import type { Feedback } from '../../src/client/generated/avro-types';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { batchAsOf, produceDemoEvents, startOfUtcDay } from '../../examples/fraud/produce';
import { batchKeys, TS_FIELD } from '../../src/features/batch-store';
import { loadFeatureFile } from '../../src/features/load-file';
import type { BatchFeatureSetSpec } from '../../src/features/spec';
import { createKafka } from '../../src/kafka/client';
import { repoRoot } from '../../src/stack/paths';
import { isolatedTopology, testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { fraudSchemas, type Transaction } from '../../examples/fraud/schemas';

/**
 * The demo's clock (issue 15): events dated by the run's clock, batch feature rows re-dated to the
 * day before it (as the training data's were), input partitioned by the streaming entity, and the
 * planted labels published to a feedback topic.
 */
const endpoints = testEndpoints();

describe('demo clock, keying and labels', () => {
  const suffix = uniqueSuffix();
  const topology = isolatedTopology('topologies/fraud-demo.yaml', suffix);
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(endpoints.redisUrl!);
  });
  afterAll(() => redis.disconnect());

  it('re-dates a batch file so its newest row is the given time, shifting every row alike', async () => {
    const set = { ...(topology.spec.features!.sets.find((s) => s.name === 'card_profile') as BatchFeatureSetSpec), name: `card_profile_${suffix}` };
    const asOf = batchAsOf(Date.now());
    expect(asOf).toBe(startOfUtcDay(Date.now()) - 86_400_000);
    const res = await loadFeatureFile(redis, set, { file: path.join(repoRoot(), set.config.file!), redateTo: asOf });
    expect(res.rows).toBeGreaterThan(4000);
    // The file's rows are all dated 2024-12-31 (the day before the generator spec's start): now the day before today.
    const ts = Number(await redis.hget(batchKeys.entity(set.name, res.version, 'card-000001'), TS_FIELD));
    expect(ts).toBe(asOf);
  });

  it('dates events by the run clock, partitions them by card, keys them by transaction and publishes their labels', async () => {
    const admin = createKafka({ clientId: `demo-clock-${suffix}`, brokers: endpoints.brokers }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: `fraud-demo.transactions.${suffix}`, numPartitions: 3 }, { topic: `fraud-demo.feedback.${suffix}`, numPartitions: 3 }] });
    await admin.disconnect();
    const startTime = Date.UTC(2026, 5, 15, 12);
    const planted = new Map<string, boolean>();
    const res = await produceDemoEvents({
      brokers: endpoints.brokers,
      schemaRegistryUrl: endpoints.schemaRegistryUrl,
      topic: `fraud-demo.transactions.${suffix}`,
      count: 300,
      rate: 0,
      seed: 99,
      startTime,
      feedbackTopic: `fraud-demo.feedback.${suffix}`,
      onEvent: (tx, isFraud) => planted.set(tx.transactionId, isFraud),
    });
    expect(res).toMatchObject({ produced: 300, labels: 300, startTime });

    const events: { partition: number; key: string | null; value: Transaction }[] = [];
    const labels: Feedback[] = [];
    const ev = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: `fraud-demo.transactions.${suffix}`, schema: 'transaction', schemas: fraudSchemas, groupId: `verify-ev-${suffix}`, fromBeginning: true });
    const fb = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: `fraud-demo.feedback.${suffix}`, schema: 'feedback', groupId: `verify-fb-${suffix}`, fromBeginning: true });
    await ev.run((value, meta) => void events.push({ partition: meta.partition, key: meta.key, value }));
    await fb.run((f) => void labels.push(f));
    try {
      await waitFor(() => events.length >= 300 && labels.length >= 300, 60000, () => `${events.length} events, ${labels.length} labels`);
    } finally {
      await Promise.all([ev.stop(), fb.stop()]);
    }
    // Every event on the run clock's day; records keyed by their transaction id.
    expect(new Set(events.map((e) => new Date(e.value.eventTime).toISOString().slice(0, 10)))).toEqual(new Set(['2026-06-15']));
    expect(events.every((e) => e.key === e.value.transactionId)).toBe(true);
    // One partition per card: its events are applied in one order, live and in a backfill.
    const partitionOf = new Map<string, Set<number>>();
    for (const e of events) partitionOf.set(e.value.cardId, (partitionOf.get(e.value.cardId) ?? new Set()).add(e.partition));
    expect([...partitionOf.values()].every((p) => p.size === 1)).toBe(true);
    expect(new Set(events.map((e) => e.partition)).size).toBe(3);
    // Labels: one per event, the planted truth, keyed like the event.
    expect(new Map(labels.map((l) => [l.key, l.label]))).toEqual(planted);
  });
});
