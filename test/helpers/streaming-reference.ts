import * as path from 'node:path';
import Redis from 'ioredis';
import type { FeatureVector } from '../../src/client/generated/avro-types';
import { FRAUD_SCHEMAS_DIR, type Transaction } from '../../examples/fraud/schemas';
import { KEY_HEADER, LINEAGE_HEADER, parseLineageHeader } from '../../src/engine/repartition';
import { Enricher, describeVector } from '../../src/features/enricher';
import { extractionBase, type ExtractionConfig } from '../../src/stages/extraction';
import { AvroDecoder } from '../../src/kafka/avro-serde';
import { SchemaCatalog } from '../../src/kafka/avro-schemas';
import { createKafka } from '../../src/kafka/client';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import { repoRoot } from '../../src/stack/paths';
import { isolatedTopology, testEndpoints, waitFor } from './topology';

/**
 * The uninterrupted reference of the fault tests with a repartition hop: the committed feature
 * vectors of a run, and the streaming values a fresh enricher on the stack's single Redis computes
 * from the repartition log, partition by partition in offset order (what a run without any crash
 * gives). Shared by test/faults/repartition.test.ts and test/faults/redis-failover.test.ts.
 */

export interface Row {
  partition: number;
  offset: number;
  value: Buffer;
  headers: Record<string, string>;
}

/**
 * The rows of a repartition topic its reader keeps behind a deduplicated hop (LineageDedup): per
 * partition in offset order, those above the highest original offset seen per source partition.
 * Behind a transactional hop (no copies) all of them.
 */
export function firstCopies(rows: Row[]): Row[] {
  const highest = new Map<string, number>();
  return [...rows]
    .sort((a, b) => a.partition - b.partition || a.offset - b.offset)
    .filter((r) => {
      const l = parseLineageHeader(r.headers[LINEAGE_HEADER]);
      if (!l) return true;
      const key = `${r.partition}/${l.topic}/${l.partition}`;
      if ((highest.get(key) ?? -1) >= l.offset) return false;
      highest.set(key, l.offset);
      return true;
    });
}

/** Every record of a topic, read_committed or (to see what crashed transactions wrote) read_uncommitted. */
export async function readTopic(topic: string, minimum: number, readUncommitted: boolean): Promise<Row[]> {
  const kafka = createKafka({ clientId: 'verify-repart', brokers: testEndpoints().brokers });
  const consumer = kafka.consumer({ groupId: `verify-${topic}-${readUncommitted}-${Date.now()}`, readUncommitted, maxWaitTimeInMs: 100 });
  const rows: Row[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) =>
      void rows.push({ partition, offset: Number(message.offset), value: message.value!, headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])) }),
  });
  await waitFor(() => rows.length >= minimum, 60000, () => `${rows.length} records of ${topic}`);
  await new Promise((r) => setTimeout(r, 1500));
  await consumer.disconnect();
  return rows;
}

/** Decodes feature-vector records (the stage output). */
export function vectorDecoder(): (rows: Row[]) => Promise<FeatureVector[]> {
  const registry = new SchemaRegistryClient({ url: testEndpoints().schemaRegistryUrl });
  const decoder = new AvroDecoder<FeatureVector>(registry, new SchemaCatalog(path.join(repoRoot(), 'schemas')).get('feature-vector').type);
  return (rows) => Promise.all(rows.map(async (r) => (await decoder.decode(r.value)) as FeatureVector));
}

/** Indexes of the demo vector's five streaming features (card_*_24h, card_ms_since_prev). */
export function streamingIndexes(v: FeatureVector): number[] {
  return v.names.map((n, i) => [n, i] as const).filter(([n]) => n.startsWith('card_') && /_(24h|prev)$/.test(n)).map(([, i]) => i);
}

/**
 * The vector values (by transaction id) an uninterrupted run gives for the suffixed demo topology's
 * repartition log `rows` of `repTopic`, computed by a fresh enricher in namespace `ref-<suffix>` on
 * the stack's single Redis (state deleted afterwards).
 */
export async function referenceValues(suffix: string, repTopic: string, rows: Row[]): Promise<Map<string, number[]>> {
  const endpoints = testEndpoints();
  const demo = isolatedTopology('topologies/fraud-detection.yaml', suffix);
  const config = demo.spec.stages[0].config as unknown as ExtractionConfig;
  const vector = describeVector(config, demo.spec.features, extractionBase(config, { topology: demo }));
  const redis = new Redis(endpoints.redisUrl!);
  const ref = new Enricher(vector, { redis, namespace: `ref-${suffix}` });
  const registry = new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl });
  const decoder = new AvroDecoder<Transaction>(registry, new SchemaCatalog(FRAUD_SCHEMAS_DIR).get('transaction').type);
  try {
    await ref.init();
    const want = new Map<string, number[]>();
    const sorted = [...rows].sort((a, b) => a.partition - b.partition || a.offset - b.offset);
    for (let i = 0; i < sorted.length; i += 100) {
      const chunk = sorted.slice(i, i + 100);
      const txs = await Promise.all(chunk.map(async (r) => (await decoder.decode(r.value)) as Transaction));
      // One call per partition (the enricher checkpoints per partition).
      for (const p of new Set(chunk.map((r) => r.partition))) {
        const idx = chunk.map((_, k) => k).filter((k) => chunk[k].partition === p);
        const res = await ref.enrich(idx.map((k) => ({ event: txs[k], eventTime: txs[k].eventTime, topic: repTopic, partition: p, offset: chunk[k].offset })));
        idx.forEach((k, j) => want.set(chunk[k].headers[KEY_HEADER], (res[j] as { values: number[] }).values));
      }
    }
    return want;
  } finally {
    await ref.streaming?.reset();
    redis.disconnect();
  }
}
