import type { FeatureVector, Prediction } from '../../src/client/generated/avro-types';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { TopicProducer } from '../../src/client/topic-producer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { DONE_HEADER } from '../../src/engine/chain';
import { createKafka } from '../../src/kafka/client';
import { Pipeline } from '../../src/stages/pipeline';
import type { LoadedTopology, TopologySpec } from '../../src/topology/spec';
import { isolatedTopology, testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { fraudSchemas, type Transaction } from '../../examples/fraud/schemas';
import { sendRaw } from '../helpers/send-raw';

const endpoints = testEndpoints();

interface Seen<T> {
  key: string | null;
  value: T;
  headers: Record<string, string>;
}

/** Collects every committed record of a topic with its headers. */
async function collect<T>(topic: string, schema: 'prediction' | 'feature-vector' | 'dead-letter') {
  const records: Seen<T>[] = [];
  const consumer = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic, schema, groupId: `engine-test-${topic}-${uniqueSuffix()}` });
  await consumer.run((value, meta) => {
    const headers = Object.fromEntries(Object.entries(meta.headers ?? {}).map(([k, v]) => [k, String(v)]));
    records.push({ key: meta.key, value: value as T, headers });
  });
  return { records, stop: () => consumer.stop() };
}

async function produce(topology: LoadedTopology, events: Transaction[], headers?: Record<string, string>) {
  const producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: topology.spec.stages[0].input.topic, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId, headers: headers ? () => headers : undefined });
  await producer.connect();
  await producer.send(events);
  await producer.disconnect();
}

/**
 * The group's committed offsets, summed over the topic's partitions, once they reach `expected` (or
 * what they are after `timeoutMs`). Offsets committed in a transaction become readable only when the
 * broker has written the commit's markers, a moment after the commit returned: read too soon, the
 * fetch answers the previous offsets. A stop that did not commit never reaches `expected`.
 */
async function committedEventually(groupId: string, topic: string, expected: number, timeoutMs = 15000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const total = await committedTotal(groupId, topic);
    if (total === expected || Date.now() > deadline) return total;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function committedTotal(groupId: string, topic: string): Promise<number> {
  const admin = createKafka({ clientId: 'engine-test', brokers: endpoints.brokers }).admin();
  await admin.connect();
  try {
    const res = await admin.fetchOffsets({ groupId, topics: [topic] });
    return res[0].partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
  } finally {
    await admin.disconnect();
  }
}

function events(seed: number, n: number): Transaction[] {
  const g = new TransactionGenerator({ seed });
  return Array.from({ length: n }, () => g.next().tx);
}

/** The stateless topology (model 1): no Redis needed, so the engine is what is tested. */
function stateless(suffix: string, edit?: (spec: TopologySpec) => void): LoadedTopology {
  return isolatedTopology('topologies/fraud-detection.yaml', suffix, (spec) => {
    delete spec.features;
    const extract = spec.stages.find((s) => s.name === 'extract')!;
    extract.config = { featureSet: { file: 'models/fraud/features/fraud_txn.yaml' } };
    const score = spec.stages.find((s) => s.name === 'score')!;
    score.config = { ...score.config, model: { repository: 'models', name: 'fraud', version: '1' } };
    edit?.(spec);
  });
}

describe('stage engine: fused and split chains', () => {
  it('fused and split runs of the same events give identical feature vectors and predictions; headers survive both hops; the side output names the stage that already consumed it', async () => {
    const input = events(31, 300);
    const results: Record<'fused' | 'split', { features: Seen<FeatureVector>[]; predictions: Seen<Prediction>[] }> = {} as never;
    for (const mode of ['fused', 'split'] as const) {
      const topology = stateless(uniqueSuffix());
      const topic = (s: string) => topology.spec.stages.find((x) => x.name === s)!.output.topic;
      const pipeline = await Pipeline.start({ topology, endpoints, fuse: mode === 'fused' });
      const features = await collect<FeatureVector>(topic('extract'), 'feature-vector');
      const predictions = await collect<Prediction>(topic('score'), 'prediction');
      try {
        expect(pipeline.runners.map((r) => r.chainName)).toEqual(mode === 'fused' ? ['extract+score'] : ['extract', 'score']);
        await produce(topology, input, { 'x-request-id': 'req-42' });
        await waitFor(() => predictions.records.length >= input.length && features.records.length >= input.length, 90000, () => `${mode}: ${features.records.length} features, ${predictions.records.length} predictions`);
        await new Promise((r) => setTimeout(r, 1000));
      } finally {
        await Promise.all([features.stop(), predictions.stop()]);
        await pipeline.stop();
      }
      results[mode] = { features: features.records, predictions: predictions.records };
    }
    for (const mode of ['fused', 'split'] as const) {
      expect(results[mode].predictions).toHaveLength(input.length);
      expect(results[mode].features).toHaveLength(input.length);
      for (const r of [...results[mode].predictions, ...results[mode].features]) expect(r.headers['x-request-id']).toBe('req-42');
    }
    const byKey = <T>(rows: Seen<T>[], f: (v: T) => unknown) => new Map(rows.map((r) => [r.key, f(r.value)]));
    const score = (p: Prediction) => [p.score, p.label, p.lineage.offset, p.lineage.partition];
    expect(byKey(results.fused.predictions, score)).toEqual(byKey(results.split.predictions, score));
    expect(byKey(results.fused.features, (v) => v.values)).toEqual(byKey(results.split.features, (v) => v.values));
    expect(results.fused.features.every((r) => r.headers[DONE_HEADER] === 'score')).toBe(true);
    expect(results.split.features.some((r) => DONE_HEADER in r.headers)).toBe(false);
  });

  // Exactly-once without `transactions` is the default (shared); per-partition is set explicitly.
  for (const [delivery, transactions] of [['exactly-once', undefined], ['at-least-once', undefined], ['exactly-once', 'per-partition']] as const) {
    it(`graceful stop in the middle of a chunk finishes and commits it (${delivery}${transactions ? `, ${transactions} transactions` : delivery === 'exactly-once' ? ', default (shared) transactions' : ''})`, async () => {
      const topology = stateless(uniqueSuffix(), (spec) => {
        for (const s of spec.stages) {
          s.delivery = delivery;
          if (transactions) s.transactions = transactions;
        }
        const score = spec.stages.find((s) => s.name === 'score')!;
        (score.config as { simulateDelayMs?: number }).simulateDelayMs = 2500;
      });
      const input = events(57, 120);
      const pipeline = await Pipeline.start({ topology, endpoints });
      // The default for exactly-once is the process's shared sink; per-partition and at-least-once have none.
      expect(pipeline.shared !== undefined).toBe(delivery === 'exactly-once' && transactions === undefined);
      await produce(topology, input);
      // The first chunks are now inside the (slow) inference: stop while they are in flight.
      await new Promise((r) => setTimeout(r, 1200));
      await pipeline.stop();
      const extract = pipeline.stageCounters('extract');
      const score = pipeline.stageCounters('score');
      expect(extract.consumed).toBeGreaterThan(0);
      expect(score.produced).toBe(extract.consumed);
      const group = `${topology.spec.name}.extract`;
      expect(await committedEventually(group, topology.spec.stages[0].input.topic, extract.consumed)).toBe(extract.consumed);
      const predictions = await collect<Prediction>(topology.spec.stages[1].output.topic, 'prediction');
      await waitFor(() => predictions.records.length >= score.produced, 30000, () => `${predictions.records.length} of ${score.produced}`);
      await new Promise((r) => setTimeout(r, 1000));
      await predictions.stop();
      expect(predictions.records).toHaveLength(score.produced);
    });
  }

  it('a member joining while another stops: the stopping one builds no lanes for the new assignment and every event is predicted once', async () => {
    // A chunk stays 6 s in the (slow) inference, so the first pipeline's graceful stop is still
    // draining when the second one joins the group and the group rebalances.
    const topology = stateless(uniqueSuffix(), (spec) => {
      const score = spec.stages.find((s) => s.name === 'score')!;
      (score.config as { simulateDelayMs?: number }).simulateDelayMs = 6000;
    });
    const input = events(58, 90);
    const first = await Pipeline.start({ topology, endpoints });
    await produce(topology, input);
    await new Promise((r) => setTimeout(r, 1200));
    const stopping = first.stop();
    const second = await Pipeline.start({ topology, endpoints });
    await stopping;
    try {
      // The rebalance reached the first pipeline while it stopped (or the test proves nothing).
      expect(first.runners.reduce((n, r) => n + r.counters.assignmentsWhileStopping, 0)).toBeGreaterThan(0);
      // ... and built no lanes for it: lanes taking ownership then go through clients the stop is
      // closing (the likely path of a CI run's "commits are failing" ERROR in a clean stop).
      expect(first.runners.map((r) => r.lanesHeld)).toEqual(first.runners.map(() => 0));
      const predictions = await collect<Prediction>(topology.spec.stages[1].output.topic, 'prediction');
      await waitFor(() => predictions.records.length >= input.length, 60000, () => `${predictions.records.length} of ${input.length}`);
      await new Promise((r) => setTimeout(r, 1000));
      await predictions.stop();
      const keys = predictions.records.map((r) => r.key);
      expect(new Set(keys).size).toBe(input.length);
      expect(keys).toHaveLength(input.length);
      // A clean stop, also after the chunks the second pipeline took over were done: no batch of the
      // first one failed (lanes built during its stop commit through its closing sink: "commits are
      // failing", counted here and logged as an error).
      const failed = (await first.metrics.batchErrors.get()).values.reduce((n, v) => n + v.value, 0);
      expect(failed).toBe(0);
    } finally {
      await second.stop();
    }
  }, 120000);

  it('several large dead letters in one chunk are written in requests under the dead-letter topic\'s own max.message.bytes', async () => {
    const topology = stateless(uniqueSuffix(), (spec) => {
      for (const s of spec.stages) s.consumer = { ...(s.consumer ?? {}), maxBytesPerPartition: 16 * 1024 * 1024, maxBytes: 32 * 1024 * 1024 };
    });
    const pipeline = await Pipeline.start({ topology, endpoints });
    const dlq = await collect<{ errorKind: string }>(topology.spec.deadLetter.topic, 'dead-letter');
    const predictions = await collect<Prediction>(topology.spec.stages[1].output.topic, 'prediction');
    try {
      // Six 700 KB records that are not Avro, one key (one partition, one chunk): each dead letter
      // keeps 512 KB of its value, 3 MB together against the DLQ's 2 MB max.message.bytes.
      const big = Array.from({ length: 6 }, (_, i) => ({ topic: topology.spec.stages[0].input.topic, messages: [{ key: 'big', value: Buffer.alloc(700 * 1024, 1 + i) }] }));
      await sendRaw(createKafka({ clientId: 'engine-test-raw', brokers: endpoints.brokers }), ...big);
      await produce(topology, events(77, 20));
      await waitFor(() => dlq.records.length >= 6 && predictions.records.length >= 20, 90000, () => `${dlq.records.length} dead letters, ${predictions.records.length} predictions`);
      expect(dlq.records.map((r) => r.value.errorKind)).toEqual(Array(6).fill('NOT_AVRO'));
      expect(predictions.records).toHaveLength(20);
    } finally {
      await Promise.all([dlq.stop(), predictions.stop()]);
      await pipeline.stop();
    }
  });
});
