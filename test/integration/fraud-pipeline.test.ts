import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { DeadLetter, FeatureVector, Prediction } from '../../src/client/generated/avro-types';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { TopicProducer } from '../../src/client/topic-producer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { malformedTransactions } from '../../examples/fraud/malformed';
import { SchemaCatalog } from '../../src/kafka/avro-schemas';
import { createKafka, idempotentProducer } from '../../src/kafka/client';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import { readModelCard } from '../../src/inference/model-card';
import { Pipeline } from '../../src/stages/pipeline';
import { repoRoot } from '../../src/stack/paths';
import { isolatedTopology, testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { repartitionStepName } from '../../src/engine/repartition';
import { FRAUD_SCHEMAS_DIR, fraudSchemas, type Transaction } from '../../examples/fraud/schemas';

const endpoints = testEndpoints();
const catalog = new SchemaCatalog(FRAUD_SCHEMAS_DIR);

/** Collects every record of a topic (decoded) under its key until stopped. */
async function collect<S extends 'prediction' | 'dead-letter' | 'feature-vector'>(topic: string, schema: S) {
  const records: { key: string | null; value: S extends 'prediction' ? Prediction : S extends 'dead-letter' ? DeadLetter : FeatureVector }[] = [];
  const consumer = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic, schema, groupId: `test-${topic}-${uniqueSuffix()}` });
  await consumer.run((value, meta) => {
    records.push({ key: meta.key, value: value as never });
  });
  return { records, stop: () => consumer.stop() };
}

describe('fraud-detection topology end to end (real Kafka, registry, onnxruntime)', () => {
  const suffix = uniqueSuffix();
  const topology = isolatedTopology('topologies/fraud-detection.yaml', suffix);
  const topic = (base: string) => `${base}.${suffix}`;
  let pipeline: Pipeline;

  beforeAll(async () => {
    pipeline = await Pipeline.start({ topology, endpoints });
  });
  afterAll(async () => {
    await pipeline?.stop();
  });

  it('turns 500 Avro events into exactly 500 predictions whose scores match onnxruntime on the same features, and dead-letters 5 malformed ones by kind', async () => {
    const predictions = await collect(topic('fraud.predictions'), 'prediction');
    const features = await collect(topic('fraud.features'), 'feature-vector');
    const deadLetters = await collect(topic('fraud.dlq'), 'dead-letter');

    const generator = new TransactionGenerator({ seed: 7 });
    const events: Transaction[] = Array.from({ length: 500 }, () => generator.next().tx);
    const producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: topic('fraud.transactions'), schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
    await producer.connect();
    const registry = new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl });
    const bad = await malformedTransactions(registry, catalog.get('transaction'), `bad-${suffix}-`);
    const raw = idempotentProducer(createKafka({ clientId: 'test-raw', brokers: endpoints.brokers }));
    await raw.connect();
    // Malformed records interleaved with good ones, across the same partitions.
    for (let i = 0; i < 5; i++) {
      await producer.send(events.slice(i * 100, i * 100 + 100));
      await raw.send({ topic: topic('fraud.transactions'), messages: [{ key: bad[i].key, value: bad[i].value }] });
    }
    await producer.disconnect();
    await raw.disconnect();

    await waitFor(() => predictions.records.length >= 500 && deadLetters.records.length >= 5, 120000, () => `${predictions.records.length} predictions, ${deadLetters.records.length} dead letters`);
    await new Promise((r) => setTimeout(r, 1500)); // anything extra (duplicates) would show up now
    await Promise.all([predictions.stop(), features.stop(), deadLetters.stop()]);

    // Exactly 500 predictions, with the same keys as the events.
    expect(predictions.records).toHaveLength(500);
    expect(new Set(predictions.records.map((p) => p.key))).toEqual(new Set(events.map((e) => e.transactionId)));

    // Each score equals onnxruntime run directly on the feature vector the pipeline used.
    const card = readModelCard(path.join(repoRoot(), 'models/fraud/2'));
    const session = await ort.InferenceSession.create(path.join(repoRoot(), 'models/fraud/2/model.onnx'));
    const byKey = new Map(features.records.map((f) => [f.key, f.value]));
    const rows = predictions.records.map((p) => byKey.get(p.key)!);
    expect(rows.every((r) => r !== undefined && r.values.length === card.features.names.length)).toBe(true);
    const input = new ort.Tensor('float32', Float32Array.from(rows.flatMap((r) => r.values)), [rows.length, card.features.names.length]);
    const out = await session.run({ [card.inputs[0].name]: input });
    const probs = out[card.score.output].data as Float32Array;
    predictions.records.forEach((p, i) => {
      expect(Math.abs(p.value.score - probs[i * 2 + card.score.index])).toBeLessThanOrEqual(1e-6);
      expect(p.value.modelName).toBe('fraud');
      expect(p.value.modelVersion).toBe('2');
      expect(p.value.label).toBe(p.value.score >= 0.5);
      expect(p.value.lineage.topic).toBe(topic('fraud.transactions'));
    });
    await session.release();

    // The 5 malformed events are dead-lettered with the right kinds and their original bytes.
    expect(deadLetters.records).toHaveLength(5);
    const kinds = new Map(deadLetters.records.map((d) => [d.key, d.value.errorKind]));
    for (const b of bad) expect(kinds.get(b.key)).toBe(b.expectedKind);
    for (const d of deadLetters.records) {
      const original = bad.find((b) => b.key === d.key)!;
      expect(Buffer.compare(d.value.value as Buffer, original.value)).toBe(0);
      // The demo's extract stage is repartitioned by card: its hop decodes first, so it dead-letters them.
      expect(d.value.stage).toBe(repartitionStepName('extract'));
      expect(d.value.lineage.topic).toBe(topic('fraud.transactions'));
    }
  });
});

describe('produce failures go to the dead-letter topic', () => {
  it('dead-letters a record too large for the feature topic as TOO_LARGE while the rest flows', async () => {
    const suffix = uniqueSuffix();
    const topology = isolatedTopology('topologies/fraud-detection.yaml', suffix, (spec) => {
      spec.topics.find((t) => t.name.startsWith('fraud.features'))!.config = { 'max.message.bytes': '4096' };
    });
    const pipeline = await Pipeline.start({ topology, endpoints });
    try {
      const predictions = await collect(`fraud.predictions.${suffix}`, 'prediction');
      const deadLetters = await collect(`fraud.dlq.${suffix}`, 'dead-letter');
      const generator = new TransactionGenerator({ seed: 11 });
      const events = Array.from({ length: 50 }, () => generator.next().tx);
      events[20] = { ...events[20], transactionId: `huge-${'x'.repeat(6000)}` };
      const producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: `fraud.transactions.${suffix}`, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
      await producer.connect();
      await producer.send(events);
      await producer.disconnect();
      await waitFor(() => predictions.records.length >= 49 && deadLetters.records.length >= 1, 60000, () => `${predictions.records.length} predictions, ${deadLetters.records.length} dead letters`);
      await new Promise((r) => setTimeout(r, 1000));
      await Promise.all([predictions.stop(), deadLetters.stop()]);
      expect(predictions.records).toHaveLength(49);
      expect(deadLetters.records).toHaveLength(1);
      expect(deadLetters.records[0].value.errorKind).toBe('TOO_LARGE');
      expect(deadLetters.records[0].value.errorMessage).toContain('max.message.bytes');
      expect(deadLetters.records[0].key).toBe(events[20].transactionId);
    } finally {
      await pipeline.stop();
    }
  });
});

describe('input limits', () => {
  it('dead-letters an input record over the stage limit as TOO_LARGE without decoding it; the rest flows', async () => {
    const suffix = uniqueSuffix();
    const topology = isolatedTopology('topologies/fraud-detection.yaml', suffix, (spec) => {
      spec.stages[0].limits = { maxMessageBytes: 400, maxBatchBytes: 64 * 1024 };
    });
    const pipeline = await Pipeline.start({ topology, endpoints });
    try {
      const predictions = await collect(`fraud.predictions.${suffix}`, 'prediction');
      const deadLetters = await collect(`fraud.dlq.${suffix}`, 'dead-letter');
      const generator = new TransactionGenerator({ seed: 12 });
      const events = Array.from({ length: 30 }, () => generator.next().tx);
      events[7] = { ...events[7], merchantId: `m-${'z'.repeat(600)}` };
      const producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: `fraud.transactions.${suffix}`, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
      await producer.connect();
      await producer.send(events);
      await producer.disconnect();
      await waitFor(() => predictions.records.length >= 29 && deadLetters.records.length >= 1, 60000, () => `${predictions.records.length} predictions, ${deadLetters.records.length} dead letters`);
      await new Promise((r) => setTimeout(r, 1000));
      await Promise.all([predictions.stop(), deadLetters.stop()]);
      expect(predictions.records).toHaveLength(29);
      expect(deadLetters.records).toHaveLength(1);
      expect(deadLetters.records[0].value.errorKind).toBe('TOO_LARGE');
      expect(deadLetters.records[0].value.errorMessage).toContain('limits.maxMessageBytes');
      expect(deadLetters.records[0].key).toBe(events[7].transactionId);
    } finally {
      await pipeline.stop();
    }
  });
});
