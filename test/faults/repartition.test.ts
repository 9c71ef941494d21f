import Redis from 'ioredis';
import type { FeatureVector } from '../../src/client/generated/avro-types';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { produceDemoEvents } from '../../examples/fraud/produce';
import { KEY_HEADER, LINEAGE_HEADER, parseLineageHeader } from '../../src/engine/repartition';
import { Enricher, describeVector } from '../../src/features/enricher';
import { extractionBase, type ExtractionConfig } from '../../src/stages/extraction';
import { AvroDecoder } from '../../src/kafka/avro-serde';
import { SchemaCatalog } from '../../src/kafka/avro-schemas';
import { createKafka } from '../../src/kafka/client';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import { committedKeys, faultTopologyFile, generatedKeys, lossAndDuplicates, recordFault, StageProcess } from '../helpers/processes';
import { isolatedTopology, testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { FRAUD_SCHEMAS_DIR, type Transaction } from '../../examples/fraud/schemas';

const endpoints = testEndpoints();

describe('repartitioning by entity through crashes (real processes, real broker, real Redis)', () => {
  it('kill -9 of the pipeline (repartition hop + extract+score) 4 times under load: 0 lost, 0 duplicated, original lineage, and every streaming vector equals an uninterrupted replay of the repartition log', async () => {
    const suffix = uniqueSuffix();
    const file = faultTopologyFile(suffix, (doc) => {
      doc.stages[0].repartition = { purgeIntervalMs: 3_600_000 }; // kept for the replay below
    });
    const count = 1500;
    const seed = 1717;
    const topic = `fraud.transactions.${suffix}`;
    const producing = produceDemoEvents({ ...endpoints, topic, count, rate: 150, seed });
    let proc = new StageProcess(file);
    for (let kill = 0; kill < 4; kill++) {
      await new Promise((r) => setTimeout(r, 1500 + Math.random() * 2500));
      proc.kill('SIGKILL');
      await proc.exited;
      proc = new StageProcess(file);
    }
    await producing;
    const expected = generatedKeys(seed, count);
    const predictions = await committedKeys(endpoints, `fraud.predictions.${suffix}`, count, 150000, suffix);
    expect((await proc.stop()).code).toBe(0);
    const { lost, duplicated } = lossAndDuplicates(expected, predictions);
    recordFault({ scenario: 'kill -9 x4 with a repartition hop', events: count, lost, duplicated, recoverySeconds: 'n/a' });
    expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });

    // Every feature vector: original lineage (the input topic), key = transaction id.
    const vectors: FeatureVector[] = [];
    const fc = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: `fraud.features.${suffix}`, schema: 'feature-vector', groupId: `verify-fv-${suffix}` });
    await fc.run((v) => void vectors.push(v));
    await waitFor(() => vectors.length >= count, 60000, () => `${vectors.length} vectors`);
    await new Promise((r) => setTimeout(r, 1500));
    await fc.stop();
    expect(vectors).toHaveLength(count);
    for (const v of vectors) expect(v.lineage.topic).toBe(topic);

    // Uninterrupted reference: the repartition log, partition by partition in offset order, through a fresh enricher.
    const repTopic = `fraud-detection-${suffix}.extract-repartition`;
    const kafka = createKafka({ clientId: 'verify-repart', brokers: endpoints.brokers });
    const consumer = kafka.consumer({ groupId: `verify-rep-${suffix}`, readUncommitted: false, maxWaitTimeInMs: 100 });
    const rows: { partition: number; offset: number; value: Buffer; key: string; lineage: string }[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic: repTopic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ partition, message }) => void rows.push({ partition, offset: Number(message.offset), value: message.value!, key: message.headers![KEY_HEADER]!.toString(), lineage: message.headers![LINEAGE_HEADER]!.toString() }) });
    await waitFor(() => rows.length >= count, 60000, () => `${rows.length} repartition records`);
    await new Promise((r) => setTimeout(r, 1500));
    await consumer.disconnect();
    expect(rows).toHaveLength(count); // exactly once through the hop as well
    for (const r of rows) expect(parseLineageHeader(r.lineage)!.topic).toBe(topic);

    const demo = isolatedTopology('topologies/fraud-detection.yaml', suffix);
    const config = demo.spec.stages[0].config as unknown as ExtractionConfig;
    const vector = describeVector(config, demo.spec.features, extractionBase(config, { topology: demo }));
    const redis = new Redis(endpoints.redisUrl!);
    const ref = new Enricher(vector, { redis, namespace: `ref-${suffix}` });
    const decoder = new AvroDecoder<Transaction>(new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl }), new SchemaCatalog(FRAUD_SCHEMAS_DIR).get('transaction').type);
    try {
      await ref.init();
      const want = new Map<string, number[]>();
      rows.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
      for (let i = 0; i < rows.length; i += 100) {
        const chunk = rows.slice(i, i + 100);
        const txs = await Promise.all(chunk.map(async (r) => (await decoder.decode(r.value)) as Transaction));
        // One call per partition (the enricher checkpoints per partition).
        for (const p of new Set(chunk.map((r) => r.partition))) {
          const idx = chunk.map((r, k) => k).filter((k) => chunk[k].partition === p);
          const res = await ref.enrich(idx.map((k) => ({ event: txs[k], eventTime: txs[k].eventTime, topic: repTopic, partition: p, offset: chunk[k].offset })));
          idx.forEach((k, j) => want.set(chunk[k].key, (res[j] as { values: number[] }).values));
        }
      }
      const streaming = vectors[0].names.map((n, i) => [n, i] as const).filter(([n]) => n.startsWith('card_') && /_(24h|prev)$/.test(n)).map(([, i]) => i);
      expect(streaming).toHaveLength(5);
      const differing = vectors.filter((v) => streaming.some((i) => v.values[i] !== want.get(v.key)![i])).map((v) => v.key);
      expect(differing).toEqual([]);
    } finally {
      await ref.streaming?.reset();
      redis.disconnect();
    }
  });
});
