import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DeadLetter, FeatureVector, Feedback, Prediction } from '../../src/client/generated/avro-types';
import { TopicProducer } from '../../src/client/topic-producer';
import { readJobPredictions, readTopicNow } from '../../src/backfill/feedback';
import { JobStore } from '../../src/backfill/job-store';
import { evaluate } from '../../src/backfill/metrics';
import { liveNamespace, runBackfill } from '../../src/backfill/runner';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { malformedTransactions } from '../../examples/fraud/malformed';
import { prepareFeatureSets } from '../../src/features/prepare';
import { SchemaCatalog } from '../../src/kafka/avro-schemas';
import { AvroDecoder } from '../../src/kafka/avro-serde';
import { createKafka } from '../../src/kafka/client';
import { ensureTopics } from '../../src/kafka/admin';
import { RecordRejection } from '../../src/kafka/dead-letter';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import { Pipeline, provisionTopology } from '../../src/stages/pipeline';
import { tributaryHome } from '../../src/stack/paths';
import { tempModelRepo, v1Topology } from '../helpers/model-repo';
import { isolatedTopology, testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { FRAUD_SCHEMAS_DIR, fraudSchemas, type Transaction } from '../../examples/fraud/schemas';
import { sendRaw } from '../helpers/send-raw';

const endpoints = testEndpoints();
const catalog = new SchemaCatalog(FRAUD_SCHEMAS_DIR);
const registry = new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl });
const kafka = createKafka({ clientId: 'test-backfill', brokers: endpoints.brokers });

async function produce<T extends Transaction | Feedback>(topic: string, schema: 'transaction' | 'feedback', events: T[], key: (e: T) => string): Promise<void> {
  const producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic, schema, schemas: fraudSchemas, key: key as never });
  await producer.connect();
  for (let i = 0; i < events.length; i += 1000) await producer.send(events.slice(i, i + 1000) as never);
  await producer.disconnect();
}

/** Every record of a topic as it is now, decoded. */
async function readAll<T>(topic: string, schema: 'prediction' | 'feature-vector'): Promise<T[]> {
  const decoder = new AvroDecoder<T>(registry, catalog.get(schema).type);
  const out: T[] = [];
  await readTopicNow(kafka, topic, `test-read-${uniqueSuffix()}`, async (m) => {
    const v = await decoder.decode(m.value);
    if (!(v instanceof RecordRejection)) out.push(v);
  });
  return out;
}

async function readAllDeadLetters(topic: string): Promise<DeadLetter[]> {
  const decoder = new AvroDecoder<DeadLetter>(registry, catalog.get('dead-letter').type);
  const out: DeadLetter[] = [];
  await readTopicNow(kafka, topic, `test-read-${uniqueSuffix()}`, async (m) => {
    const v = await decoder.decode(m.value);
    if (!(v instanceof RecordRejection)) out.push(v);
  });
  return out;
}

const at = (l: { partition: number; offset: number }) => `${l.partition}:${l.offset}`;

describe('backfill against the real stack', () => {
  it('replaying a range a live run processed gives the same features and scores for every event', async () => {
    const suffix = uniqueSuffix();
    // Bit-identical scores need a batch-invariant session: with several intra-op threads onnxruntime
    // sums a tree ensemble in an order that depends on the batch, and live batches differ from the backfill's.
    const topology = isolatedTopology('topologies/fraud-detection.yaml', suffix, (spec) => {
      (spec.stages[1].config as { intraOpNumThreads?: number }).intraOpNumThreads = 1;
    });
    await prepareFeatureSets(topology, endpoints.redisUrl!);
    await provisionTopology(topology, kafka, registry);
    const N = Number(process.env.TRIBUTARY_BACKFILL_TEST_EVENTS ?? 6000);
    // Keyed by the streaming entity: each card's events are in one partition, in one order, for both runs.
    const events = new TransactionGenerator({ seed: 21 }).take(N).map((g) => g.tx);
    await produce(`fraud.transactions.${suffix}`, 'transaction', events, (tx) => tx.cardId);

    // The live run, over the backlog: both stages, through the features topic.
    const pipeline = await Pipeline.start({ topology, endpoints });
    const liveStart = Date.now();
    const score = pipeline.stageCounters('score');
    try {
      await waitFor(() => score.consumed >= N, 180000, () => `${score.consumed} scored`);
    } finally {
      await pipeline.stop();
    }
    const liveMs = Date.now() - liveStart;
    const liveFeatures = await readAll<FeatureVector>(`fraud.features.${suffix}`, 'feature-vector');
    const livePredictions = await readAll<Prediction>(`fraud.predictions.${suffix}`, 'prediction');
    expect(livePredictions).toHaveLength(N);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-backfill-'));
    const file = path.join(dir, 'predictions.jsonl');
    const summary = await runBackfill({ topology, endpoints, from: 'earliest', to: 'latest', output: file, includeFeatures: true, stateDir: dir, job: 'identity' });
    expect(summary).toMatchObject({ complete: true, events: N, predictions: N, deadLettered: 0 });
    expect(summary.stateNamespace).not.toBe(liveNamespace(topology, topology.spec.stages[0]));

    const rows = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Prediction & { features: Record<string, number> });
    expect(rows).toHaveLength(N);
    const featuresAt = new Map(liveFeatures.map((f) => [at(f.lineage), f]));
    const backfilled = new Map(rows.map((r) => [at(r.lineage), r]));
    let compared = 0;
    for (const live of livePredictions) {
      const b = backfilled.get(at(live.lineage))!;
      const fv = featuresAt.get(at(live.lineage))!;
      expect(b).toBeDefined();
      expect(fv.names.map((n) => b.features[n])).toEqual(fv.values); // same features, bit for bit
      expect(b.score).toBe(live.score); // same score
      expect(b.label).toBe(live.label);
      expect(b.featureSetVersions).toEqual(live.featureSetVersions);
      expect(b.key).toBe(live.key);
      compared++;
    }
    expect(compared).toBe(N);

    const livePerSecond = N / (liveMs / 1000);
    const report = { events: N, liveEventsPerSecond: Math.round(livePerSecond), liveMs, backfillEventsPerSecond: Math.round(summary.processing.eventsPerSecond), backfillProcessingMs: summary.processing.ms, backfillWallMs: summary.durationMs };
    console.log(`backfill throughput: ${JSON.stringify(report)}`);
    fs.mkdirSync(tributaryHome(), { recursive: true });
    fs.appendFileSync(path.join(tributaryHome(), 'backfill-throughput.jsonl'), `${JSON.stringify({ ...report, at: new Date().toISOString() })}\n`);
    // Throughput is recorded, not asserted: over 6,000 events on a shared machine one run's ratio
    // swings (a loaded CI run measured 0.82x). `npm run bench:backfill` measures the claim over rounds.

    // A sub-range scored alone starts from empty entity state (features differ from the live run's);
    // with --warmup-from the records before it rebuild that state first, and the features match again.
    const ends = new Map(summary.ranges.map((r) => [r.partition, r.end]));
    const mid = summary.ranges.map((r) => `${r.partition}:${Math.floor(r.end / 2)}`).join(',');
    const sub = async (job: string, warmupFrom?: string) => {
      const out = path.join(dir, `${job}.jsonl`);
      const s = await runBackfill({ topology, endpoints, from: mid, to: summary.ranges.map((r) => `${r.partition}:${r.end}`).join(','), warmupFrom, output: out, includeFeatures: true, stateDir: dir, job });
      return { s, rows: fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Prediction & { features: Record<string, number> }) };
    };
    const warm = await sub('warm', 'earliest');
    const expectedSub = summary.ranges.reduce((n, r) => n + (ends.get(r.partition)! - Math.floor(r.end / 2)), 0);
    expect(warm.s).toMatchObject({ complete: true, events: expectedSub, warmupEvents: N - expectedSub, predictions: expectedSub });
    for (const r of warm.rows) {
      const fv = featuresAt.get(at(r.lineage))!;
      expect(fv.names.map((n) => r.features[n])).toEqual(fv.values);
      expect(r.score).toBe(backfilled.get(at(r.lineage))!.score);
    }
    const cold = await sub('cold');
    expect(cold.rows.some((r) => featuresAt.get(at(r.lineage))!.names.some((n, i) => r.features[n] !== featuresAt.get(at(r.lineage))!.values[i]))).toBe(true);

    // Running the same job again prints its summary without doing anything.
    const again = await runBackfill({ topology, endpoints, from: 'earliest', to: 'latest', output: file, includeFeatures: true, stateDir: dir, job: 'identity' });
    expect(again).toMatchObject({ alreadyComplete: true, predictions: N });
    expect(fs.readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(N);
  });

  it('scores with a chosen (candidate) model version to a topic and evaluates it against a feedback topic', async () => {
    const suffix = uniqueSuffix();
    const repo = tempModelRepo({ '1': null, '7': null });
    const topology = v1Topology(suffix, repo);
    await provisionTopology(topology, kafka, registry);
    const generated = new TransactionGenerator({ seed: 33 }).take(1500);
    await produce(`fraud.transactions.${suffix}`, 'transaction', generated.map((g) => g.tx), (tx) => tx.transactionId);
    const bad = (await malformedTransactions(registry, catalog.get('transaction'), `bad-${suffix}-`)).slice(0, 2);
    await sendRaw(kafka, { topic: `fraud.transactions.${suffix}`, messages: bad.map((b) => ({ key: b.key, value: b.value })) });
    const feedbackTopic = `fraud.feedback.${suffix}`;
    await ensureTopics(kafka, [{ name: feedbackTopic, partitions: 2, schema: 'feedback' }]);
    // Labels for 1200 of the 1500 events: the generator's ground truth.
    const labels: Feedback[] = generated.slice(0, 1200).map((g) => ({ key: g.tx.transactionId, label: g.isFraud, source: 'test', labelTime: Date.now() }));
    await produce(feedbackTopic, 'feedback', labels, (f) => f.key);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-backfill-'));
    const output = `fraud.predictions.backfill.${suffix}`;
    const summary = await runBackfill({ topology, endpoints, from: 'earliest', output: `topic:${output}`, modelVersion: '7', stateDir: dir, feedbackTopic });
    expect(summary).toMatchObject({ complete: true, events: 1502, predictions: 1500, deadLettered: 2, model: 'fraud@7' });
    const dlq = await readAllDeadLetters(`fraud.dlq.${suffix}`);
    expect(dlq.map((d) => d.key?.toString()).sort()).toEqual(bad.map((b) => b.key).sort());
    expect(dlq.map((d) => d.stage)).toEqual(['backfill.extract', 'backfill.extract']);
    expect(dlq.map((d) => d.errorKind).sort()).toEqual(bad.map((b) => b.expectedKind).sort());
    const predictions = await readAll<Prediction>(output, 'prediction');
    expect(predictions).toHaveLength(1500);
    expect(new Set(predictions.map((p) => p.modelVersion))).toEqual(new Set(['7']));

    const truth = new Map(labels.map((l) => [l.key, l.label]));
    const joined = predictions.filter((p) => truth.has(p.key)).map((p) => ({ score: p.score, predicted: p.label, actual: truth.get(p.key)! }));
    const want = evaluate(joined);
    expect(summary.feedback).toMatchObject({ topic: feedbackTopic, labeled: 1200, predictions: 1500, rocAuc: want.rocAuc, precision: want.precision, recall: want.recall });
    expect(want.rocAuc!).toBeGreaterThan(0.8);
    const plan = new JobStore(dir, summary.job).plan()!;
    expect(await readJobPredictions({ kafka, registry, catalog, plan, groupPrefix: `test-${suffix}` })).toHaveLength(1500);
  });
});
