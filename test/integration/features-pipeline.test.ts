import * as fs from 'node:fs';
import * as path from 'node:path';
import Redis, { type Cluster } from 'ioredis';
import * as ort from 'onnxruntime-node';
import type { FeatureVector, Prediction } from '../../src/client/generated/avro-types';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { TopicProducer } from '../../src/client/topic-producer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { Enricher, describeVector } from '../../src/features/enricher';
import { extractionBase, type ExtractionConfig } from '../../src/stages/extraction';
import { BatchSetReader, batchKeys, commandsFor, listVersions } from '../../src/features/batch-store';
import { LoadRejectedError, loadFeatureFile } from '../../src/features/load-file';
import type { BatchFeatureSetSpec } from '../../src/features/spec';
import { readModelCard } from '../../src/inference/model-card';
import { Pipeline } from '../../src/stages/pipeline';
import { repoRoot } from '../../src/stack/paths';
import { redisTargets, type RedisTarget } from '../helpers/dedicated-redis';
import { faultTopologyFile, StageProcess } from '../helpers/processes';
import { isolatedTopology, testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { fraudSchemas, type Transaction } from '../../examples/fraud/schemas';
import { readGolden } from '../helpers/golden';

const endpoints = testEndpoints();
const root = repoRoot();
const demo = isolatedTopology('topologies/fraud-detection.yaml', 'shape');
const extractConfig = demo.spec.stages[0].config as unknown as ExtractionConfig;
const setSpec = (name: string) => demo.spec.features!.sets.find((s) => s.name === name)! as BatchFeatureSetSpec;
const featureFile = (name: string) => path.join(root, setSpec(name).config.file!);

async function loadDemoSets(redis: Redis | Cluster): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of ['card_profile', 'merchant_risk']) out[name] = (await loadFeatureFile(redis, setSpec(name), { file: featureFile(name) })).version;
  return out;
}

function collect<T>(topic: string, schema: 'feature-vector' | 'prediction') {
  const records: T[] = [];
  const consumer = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic, schema, groupId: `test-${topic}-${uniqueSuffix()}` });
  return consumer.run((v) => void records.push(v as T)).then(() => ({ records, stop: () => consumer.stop() }));
}

async function produce(topic: string, events: Transaction[]): Promise<void> {
  const producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
  await producer.connect();
  await producer.send(events);
  await producer.disconnect();
}

/** Batch sets (load, versions, reads) and the enricher on the stack's single Redis and on a 3-node Redis Cluster. */
describe.each(redisTargets())('batch feature sets and the enricher on %s', (_label, connect) => {
  let redis: Redis | Cluster;
  let target: RedisTarget;
  beforeAll(async () => {
    target = await connect();
    redis = target.client();
  }, 60_000);
  afterAll(async () => target.stop());

  it('reproduces the Python golden stream of model 2: same vectors (batch sets from Redis + streaming state) and scores', async () => {
    await loadDemoSets(redis);
    const vector = describeVector(extractConfig, demo.spec.features, extractionBase(extractConfig, { topology: demo }));
    const enricher = new Enricher(vector, { redis, namespace: `golden-${uniqueSuffix()}` });
    await enricher.init();
    const golden = readGolden<Transaction>(path.join(root, 'models/fraud/2'));
    const got: number[][] = [];
    for (let i = 0; i < golden.length; i += 64) {
      const res = await enricher.enrich(golden.slice(i, i + 64).map((g, k) => ({ event: g.event, eventTime: g.event.eventTime, topic: 'golden', partition: 0, offset: i + k })));
      for (const r of res) got.push('values' in r ? r.values : [NaN]);
    }
    golden.forEach((g, i) => expect(got[i]).toEqual(g.features));
    const batches = Math.ceil(golden.length / 64);
    // One pipeline of batch-set reads per batch; on a Cluster the state's scripts are their own calls.
    expect(enricher.stats.roundTrips).toBe(redis.isCluster ? 2 * batches : batches);
    // Alongside it, the streaming state: one commit per batch and slot group it touches (one group on
    // a single Redis, 16 on a Cluster), plus a load when it touches entities it does not hold.
    expect(enricher.streaming!.calls).toBeGreaterThanOrEqual(batches);
    expect(enricher.streaming!.calls).toBeLessThanOrEqual(2 * batches * enricher.streaming!.slotGroups);
    const card = readModelCard(path.join(root, 'models/fraud/2'));
    const session = await ort.InferenceSession.create(path.join(root, 'models/fraud/2/model.onnx'));
    const out = await session.run({ float_input: new ort.Tensor('float32', Float32Array.from(got.flat()), [got.length, card.features.names.length]) });
    const probs = out.probabilities.data as Float32Array;
    golden.forEach((g, i) => expect(Math.abs(probs[i * 2 + 1] - g.score)).toBeLessThan(1e-5));
    await session.release();
    await enricher.streaming!.reset();
  });

  it('loads CSV with bad rows reported by line number: skipped, or the whole load rejected with nothing visible', async () => {
    const set: BatchFeatureSetSpec = { ...setSpec('card_profile'), name: `cp_${uniqueSuffix()}` };
    const file = path.join(fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'feat-')), 'rows.csv');
    fs.writeFileSync(file, 'cardId,ts,card_age_days,card_avg_amount_usd,card_prior_chargebacks\nc1,1000,10,20.5,1\nc2,1000,abc,1,0\n,1000,1,1,1\nc3,2000,5,5,1.5\nc4,2025-01-01T00:00:00Z,7,8,2\n');
    const res = await loadFeatureFile(redis, set, { file });
    expect(res.rows).toBe(2);
    expect(res.bad.map((b) => b.line)).toEqual([3, 4, 5]);
    expect(res.bad[0].reason).toContain('card_age_days');
    expect(await redis.hgetall(batchKeys.entity(set.name, res.version, 'c4'))).toEqual({ __ts: String(Date.parse('2025-01-01T00:00:00Z')), card_age_days: '7', card_avg_amount_usd: '8', card_prior_chargebacks: '2' });
    await expect(loadFeatureFile(redis, set, { file, onBadRow: 'reject' })).rejects.toBeInstanceOf(LoadRejectedError);
    expect(await redis.get(batchKeys.pointer(set.name))).toBe(res.version); // the rejected load never became current
    const versions = await listVersions(redis, set.name);
    expect(Object.keys(versions)).toEqual([res.version]); // and its partial rows are gone
  });

  it('a batch read on a version another batch has moved past leaves nothing of that version in the cache', async () => {
    const set: BatchFeatureSetSpec = { ...setSpec('card_profile'), name: `cp_${uniqueSuffix()}` };
    const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'feat-'));
    const csv = (age: number) => `cardId,ts,card_age_days,card_avg_amount_usd,card_prior_chargebacks\nx,1000,${age},1,0\ny,1000,${age},2,0\nz,1000,${age},3,0\n`;
    fs.writeFileSync(path.join(dir, 'v1.csv'), csv(10));
    fs.writeFileSync(path.join(dir, 'v2.csv'), csv(20));
    const v1 = (await loadFeatureFile(redis, set, { file: path.join(dir, 'v1.csv') })).version;
    const reader = new BatchSetReader(set);
    await reader.init(redis);
    const read = async (entities: string[]) => {
      const p = commandsFor(redis);
      const planned = reader.plan(p, entities, entities.map(() => 1000));
      const replies = async () => ((await p.exec()) ?? []).map(([err, v]) => {
        if (err) throw err;
        return v;
      });
      return { commands: planned.commands, finish: async () => planned.finish(await replies()) };
    };
    // A plans on v1 and is still in flight when C sees v2 become current and B reads on v2.
    const a = await read(['x']);
    const v2 = (await loadFeatureFile(redis, set, { file: path.join(dir, 'v2.csv') })).version;
    expect((await (await read(['z'])).finish()).version).toBe(v1); // C: read on v1, sees the flip
    const b = await read(['y']);
    const bDone = await b.finish();
    expect([bDone.version, bDone.lookups[0].values[0]]).toEqual([v2, 20]);
    const aDone = await a.finish();
    expect([aDone.version, aDone.lookups[0].values[0]]).toEqual([v1, 10]); // A's batch: v1 entirely
    // The next read of x is on v2: from Redis (A's v1 row was not cached), with v2's values.
    const next = await (await read(['x', 'y'])).finish();
    expect(next.version).toBe(v2);
    expect(next.lookups.map((l) => l.values[0])).toEqual([20, 20]);
    expect(reader.cache.misses).toBe(4); // x (A), z (C), y (B), x again; y was cached by B
  });

  it('a newer version replaces the old one, whose rows are deleted from every node once its grace period is over', async () => {
    const set: BatchFeatureSetSpec = { ...setSpec('merchant_risk'), name: `mr_${uniqueSuffix()}` };
    const first = await loadFeatureFile(redis, set, { file: featureFile('merchant_risk') });
    const second = await loadFeatureFile(redis, set, { file: featureFile('merchant_risk'), gracePeriodMs: 0 });
    expect(second.previous).toBe(first.version);
    expect(second.removedVersions).toEqual([first.version]);
    const nodes = redis.isCluster ? (redis as Cluster).nodes('master') : [redis as Redis];
    const keysOf = async (version: string) => (await Promise.all(nodes.map((n) => n.keys(batchKeys.entityPattern(set.name, version))))).map((k) => k.length);
    const current = await keysOf(second.version);
    expect(current.reduce((x, y) => x + y, 0)).toBe(second.rows);
    if (redis.isCluster) expect(current.every((n) => n > 0)).toBe(true); // the rows are spread over the shards
    expect(await keysOf(first.version)).toEqual(nodes.map(() => 0));
    expect(Object.keys(await listVersions(redis, set.name))).toEqual([second.version]);
  });
});

describe('online features against the real stack', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(endpoints.redisUrl!);
  });
  afterAll(() => redis.disconnect());

  it('a feature-set version flip during a live run: every prediction used the old or the new version entirely, recorded in the prediction', async () => {
    const suffix = uniqueSuffix();
    const topology = isolatedTopology('topologies/fraud-detection.yaml', suffix, (spec) => {
      (spec.stages[0].config as { cache?: unknown }).cache = { maxEntries: 10000, ttlMs: 60000 };
    });
    const before = await loadDemoSets(redis);
    // The new card_profile version: every card 10000 days older, so a vector shows which version it read.
    const shifted = path.join(fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'feat-')), 'card_profile.csv');
    const lines = fs.readFileSync(featureFile('card_profile'), 'utf8').trim().split('\n');
    fs.writeFileSync(shifted, [lines[0], ...lines.slice(1).map((l) => l.split(',').map((c, i) => (i === 2 ? String(Number(c) + 10000) : c)).join(','))].join('\n'));
    const pipeline = await Pipeline.start({ topology, endpoints });
    const features = await collect<FeatureVector>(`fraud.features.${suffix}`, 'feature-vector');
    const predictions = await collect<Prediction>(`fraud.predictions.${suffix}`, 'prediction');
    try {
      const gen = new TransactionGenerator({ seed: 99 });
      const events = gen.take(600).map((g) => g.tx);
      let after = '';
      for (let i = 0; i < 12; i++) {
        await produce(`fraud.transactions.${suffix}`, events.slice(i * 50, i * 50 + 50));
        if (i === 5) after = (await loadFeatureFile(redis, setSpec('card_profile'), { file: shifted })).version;
        await new Promise((r) => setTimeout(r, 150));
      }
      await waitFor(() => predictions.records.length >= 600 && features.records.length >= 600, 120000, () => `${predictions.records.length} predictions`);
      const ageIdx = features.records[0].names.indexOf('card_age_days');
      const missingIdx = features.records[0].names.indexOf('card_profile_missing');
      const versionsSeen = new Set<string>();
      for (const fv of features.records) {
        const v = fv.featureSetVersions!.card_profile;
        expect([before.card_profile, after]).toContain(v);
        versionsSeen.add(v);
        if (fv.values[missingIdx] === 0) expect(fv.values[ageIdx] >= 10000).toBe(v === after); // the values are that version's
      }
      expect(versionsSeen).toEqual(new Set([before.card_profile, after]));
      const byKey = new Map(features.records.map((f) => [f.key, f.featureSetVersions]));
      for (const p of predictions.records) {
        expect(p.featureSetVersions).toEqual(byKey.get(p.key));
        expect(p.modelVersion).toBe('2');
      }
    } finally {
      await Promise.allSettled([features.stop(), predictions.stop()]);
      await pipeline.stop();
    }
  });

  it('killing the extract stage (SIGKILL) mid-stream and restarting gives the same features as an uninterrupted run', async () => {
    await loadDemoSets(redis);
    const suffix = uniqueSuffix();
    // One input partition: the apply order is the offset order, as in an uninterrupted run.
    const file = faultTopologyFile(suffix, (doc) => {
      doc.topics[0].partitions = 1;
      doc.stages[0].consumer.maxBytesPerPartition = 4096; // small batches: the kill lands between them
    });
    const events = new TransactionGenerator({ seed: 5 }).take(400).map((g) => g.tx);
    // Uninterrupted reference: the same enricher code over the same offsets in one go.
    const vector = describeVector(extractConfig, demo.spec.features, extractionBase(extractConfig, { topology: demo }));
    const ref = new Enricher(vector, { redis, namespace: `ref-${suffix}` });
    await ref.init();
    const expected = await ref.enrich(events.map((tx, i) => ({ event: tx, eventTime: tx.eventTime, topic: 't', partition: 0, offset: i })));
    await ref.streaming!.reset();

    let stage = new StageProcess(file, ['--stage', 'extract']);
    let features: Awaited<ReturnType<typeof collect<FeatureVector>>> | undefined;
    try {
      await stage.waitForLog('pipeline running', 60000); // topics exist now
      features = await collect<FeatureVector>(`fraud.features.${suffix}`, 'feature-vector');
      const seen = features.records;
      await produce(`fraud.transactions.${suffix}`, events.slice(0, 250));
      await waitFor(() => seen.length >= 60, 60000, () => `${seen.length} vectors before the kill`);
      stage.kill('SIGKILL');
      await stage.exited;
      await produce(`fraud.transactions.${suffix}`, events.slice(250));
      stage = new StageProcess(file, ['--stage', 'extract']);
      await waitFor(() => new Set(seen.map((f) => f.key)).size >= 400, 120000, () => `${new Set(seen.map((f) => f.key)).size} distinct vectors after restart`);
      await new Promise((r) => setTimeout(r, 1500));
      const want = new Map(events.map((tx, i) => [tx.transactionId, (expected[i] as { values: number[] }).values]));
      for (const fv of seen) expect(fv.values).toEqual(want.get(fv.key)); // duplicates (if any) too
    } finally {
      await stage.stop();
      await features?.stop();
    }
  });
});
