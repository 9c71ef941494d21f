/**
 * The IoT example against the real stack (Kafka, registry, Redis), on the unchanged engine:
 * - the Python golden stream replayed through the real feature code (declarative stateless
 *   definitions, batch sets loaded into Redis with the `features load` loader, Lua streaming state):
 *   identical vectors, same scores;
 * - end to end: the topology runs in-process, the golden readings and one malformed reading of each
 *   kind are produced to its input topic; every reading gets exactly one prediction carrying the
 *   golden score (and its feature vector on the side output), every malformed one is dead-lettered
 *   with its kind and a reason.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Redis from 'ioredis';
import * as ort from 'onnxruntime-node';
import type { DeadLetter, FeatureVector, Prediction } from '../../../../src/client/generated/avro-types';
import { TopicConsumer } from '../../../../src/client/topic-consumer';
import { Enricher, describeVector } from '../../../../src/features/enricher';
import { loadFeatureFile } from '../../../../src/features/load-file';
import { prepareFeatureSets } from '../../../../src/features/prepare';
import type { BatchFeatureSetSpec } from '../../../../src/features/spec';
import { SchemaRegistryClient, registryAuthFromEnv } from '../../../../src/kafka/schema-registry';
import { createKafka, idempotentProducer } from '../../../../src/kafka/client';
import { Pipeline } from '../../../../src/stages/pipeline';
import { extractionBase, type ExtractionConfig } from '../../../../src/stages/extraction';
import { repoRoot } from '../../../../src/stack/paths';
import { testEndpoints, uniqueSuffix, waitFor } from '../../../../test/helpers/topology';
import type { SensorReading } from '../../generator';
import { malformedReadings } from '../../malformed';
import { produceReadings, readingSchema } from '../../produce';
import { iotRoles, loadIotTopology } from '../../topology';
import { vectorDifferences } from '../vectors';

const endpoints = testEndpoints();
const MODEL_DIR = path.resolve(__dirname, '..', '..', 'models', 'sensor_anomaly', '1');
const golden = fs.readFileSync(path.join(MODEL_DIR, 'golden.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: SensorReading; features: number[]; score: number });

function collect<T>(topic: string, schema: 'feature-vector' | 'prediction' | 'dead-letter') {
  const records: T[] = [];
  const consumer = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic, schema, groupId: `test-${topic}-${uniqueSuffix()}`, fromBeginning: true });
  return consumer.run((v) => void records.push(v as T)).then(() => ({ records, stop: () => consumer.stop() }));
}

describe('IoT example on the real stack', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(endpoints.redisUrl!);
  });
  afterAll(() => redis.disconnect());

  it('replays the Python golden stream through the real feature code: identical vectors (1 ulp for libm values), same scores', async () => {
    const topology = loadIotTopology({ suffix: `golden${uniqueSuffix()}` });
    const config = topology.spec.stages[0].config as unknown as ExtractionConfig;
    for (const s of topology.spec.features!.sets.filter((x): x is BatchFeatureSetSpec => x.kind === 'redis_batch')) {
      await loadFeatureFile(redis, s, { file: path.resolve(repoRoot(), s.config.file!) });
    }
    const vector = describeVector(config, topology.spec.features, extractionBase(config, { topology }));
    const enricher = new Enricher(vector, { redis, namespace: `iot-golden-${uniqueSuffix()}` });
    await enricher.init();
    const got: number[][] = [];
    for (let i = 0; i < golden.length; i += 64) {
      const res = await enricher.enrich(golden.slice(i, i + 64).map((g, k) => ({ event: g.event, eventTime: g.event.eventTime, topic: 'golden', partition: 0, offset: i + k })));
      for (const r of res) got.push('values' in r ? r.values : [NaN]);
    }
    expect(golden.flatMap((g, i) => vectorDifferences(got[i], g.features, vector.names).map((d) => `${g.event.readingId} ${d}`))).toEqual([]);
    // The stream exercises every source: batch rows found, streaming windows non-empty.
    expect(got.some((v) => v[vector.names.indexOf('dev_readings_1h')] > 0)).toBe(true);
    expect(got.some((v) => v[vector.names.indexOf('device_profile_missing')] === 1)).toBe(true);
    expect(got.some((v) => v[vector.names.indexOf('device_profile_missing')] === 0)).toBe(true);
    const session = await ort.InferenceSession.create(path.join(MODEL_DIR, 'model.onnx'));
    const out = await session.run({ float_input: new ort.Tensor('float32', Float32Array.from(got.flat()), [got.length, vector.names.length]) });
    const probs = out.probabilities.data as Float32Array;
    golden.forEach((g, i) => expect(Math.abs(probs[i * 2 + 1] - g.score)).toBeLessThan(1e-5));
    await session.release();
    enricher.close();
    await enricher.streaming!.reset();
  });

  it('end to end: a prediction with the golden score for every reading, malformed readings dead-lettered with a reason', async () => {
    const suffix = uniqueSuffix();
    const topology = loadIotTopology({ suffix });
    const roles = iotRoles(topology);
    await prepareFeatureSets(topology, endpoints.redisUrl!, { resetStreaming: true });
    const pipeline = await Pipeline.start({ topology, endpoints });
    const predictions = await collect<Prediction>(roles.predictions, 'prediction');
    const vectors = await collect<FeatureVector>(roles.features, 'feature-vector');
    const dead = await collect<DeadLetter>(roles.dlq, 'dead-letter');
    try {
      const registry = new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl, auth: registryAuthFromEnv() });
      const bad = await malformedReadings(registry, readingSchema(), golden[0].event, `bad-${suffix}-`);
      await produceReadings(golden.map((g) => g.event), { brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: roles.input, rate: 0 });
      const producer = idempotentProducer(createKafka({ clientId: 'iot-test-malformed', brokers: endpoints.brokers }));
      await producer.connect();
      await producer.send({ topic: roles.input, messages: bad.map((b) => ({ key: b.key, value: b.value })) });
      await producer.disconnect();

      await waitFor(() => predictions.records.length >= golden.length && dead.records.length >= bad.length && vectors.records.length >= golden.length, 120000,
        () => `${predictions.records.length}/${golden.length} predictions, ${vectors.records.length} vectors, ${dead.records.length}/${bad.length} dead letters`);
      await new Promise((r) => setTimeout(r, 1000)); // nothing more may arrive: exactly one prediction each
      expect(predictions.records.length).toBe(golden.length);
      expect(dead.records.length).toBe(bad.length);

      const byKey = new Map(predictions.records.map((p) => [p.key, p]));
      const vecByKey = new Map(vectors.records.map((v) => [v.key, v]));
      for (const g of golden) {
        const p = byKey.get(g.event.readingId);
        expect(p).toBeDefined();
        expect(p!.modelName).toBe('sensor_anomaly');
        expect(p!.modelVersion).toBe('1');
        expect(Math.abs(p!.score - g.score)).toBeLessThan(1e-5);
        expect(p!.label).toBe(p!.score >= 0.5);
        expect(p!.eventTime).toBe(g.event.eventTime);
        expect(p!.lineage.topic).toBe(roles.input); // the original position, across the repartition hop
        expect(Object.keys(p!.featureSetVersions ?? {}).sort()).toEqual(['device_profile', 'site_climate']);
        expect(vectorDifferences(vecByKey.get(g.event.readingId)!.values, g.features)).toEqual([]);
      }
      expect(predictions.records.filter((p) => p.label).length).toBeGreaterThan(0);

      const kinds = Object.fromEntries(dead.records.map((d) => [d.key?.toString(), d]));
      for (const b of bad) {
        const d = kinds[b.key];
        expect(d).toBeDefined();
        expect(d.errorKind).toBe(b.expectedKind);
        expect(d.errorMessage.length).toBeGreaterThan(0);
        expect(d.stage).toBe('extract-repartition'); // the hop implied by device_activity's entity decodes first
        expect(d.lineage.topic).toBe(roles.input);
        expect(Buffer.from(d.value!).equals(b.value)).toBe(true);
      }
    } finally {
      await Promise.allSettled([predictions.stop(), vectors.stop(), dead.stop()]);
      await pipeline.stop();
    }
  });
});
