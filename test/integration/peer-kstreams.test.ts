/**
 * The Kafka Streams reference peer (bench/peers/kstreams) against the shared stack: it must score
 * every event exactly once, with the same score Tributary's own extractor + onnxruntime give, and
 * carry ingestTime / lineage the way Tributary's stateless topology does, so the benchmark compares
 * like with like — also behind its repartition step (`--repartition-by`), the counterpart of
 * Tributary's hop. Skipped (the describe name says why) when java or mvn is not on PATH.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { Partitioners } from 'kafkajs';
import * as ort from 'onnxruntime-node';
import type { Prediction } from '../../src/client/generated/avro-types';
import { TopicConsumer, type ConsumedMeta } from '../../src/client/topic-consumer';
import { TopicProducer } from '../../src/client/topic-producer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { fraudFeatures } from '../helpers/fraud-features';
import { readModelCard } from '../../src/inference/model-card';
import { createKafka } from '../../src/kafka/client';
import { repoRoot } from '../../src/stack/paths';
import { testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { fraudSchemas, type Transaction } from '../../examples/fraud/schemas';
import { readGolden } from '../helpers/golden';

const PEER_DIR = path.join(repoRoot(), 'bench/peers/kstreams');
const MODEL_DIR = 'models/fraud/1';
const GENERATED = 200;

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

const missing = ['java', 'mvn'].filter((t) => !onPath(t));
const describePeer = missing.length === 0 ? describe : describe.skip;
const title = missing.length === 0
  ? 'Kafka Streams reference peer (real Kafka, registry, ONNX Runtime Java)'
  : `Kafka Streams reference peer: SKIPPED, ${missing.join(' and ')} not on PATH (needs JDK 17+ and Maven)`;

/** The golden set's hand-made edge cases (unknown currency/country/category, negative times, ...). */
function goldenEdgeCases(): Transaction[] {
  return readGolden<Transaction>(path.join(repoRoot(), MODEL_DIR))
    .filter((r) => r.source.case !== undefined)
    .map((r) => r.event);
}

/** Collects every record of a topic (read_committed) with its metadata until stopped. */
async function collect<S extends 'prediction' | 'transaction'>(topic: string, schema: S) {
  const endpoints = testEndpoints();
  const records: { value: S extends 'prediction' ? Prediction : Transaction; meta: ConsumedMeta }[] = [];
  const consumer = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic, schema, schemas: fraudSchemas, groupId: `test-${topic}-${uniqueSuffix()}` });
  await consumer.run((value, meta) => {
    records.push({ value: value as never, meta });
  });
  return { records, stop: () => consumer.stop() };
}

/** Tributary's own scoring of the events: the TypeScript extractor, float32 rows, onnxruntime-node. */
async function tributaryScores(events: Transaction[]): Promise<Map<string, number>> {
  const card = readModelCard(path.join(repoRoot(), MODEL_DIR));
  const extractor = fraudFeatures();
  const width = extractor.size;
  const rows = new Float32Array(events.length * width);
  events.forEach((e, i) => extractor.extractInto(e, rows, i * width));
  const session = await ort.InferenceSession.create(path.join(repoRoot(), MODEL_DIR, 'model.onnx'));
  const out = await session.run({ [card.inputs[0].name]: new ort.Tensor('float32', rows, [events.length, width]) });
  const probs = out[card.score.output].data as Float32Array;
  const columns = probs.length / events.length;
  return new Map(events.map((e, i) => [e.transactionId, probs[i * columns + card.score.index]]));
}

interface PeerProcess {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startPeer(jar: string, args: Record<string, string>): PeerProcess {
  const argv = ['-jar', jar, ...Object.entries(args).flatMap(([k, v]) => [`--${k}`, v])];
  const child = spawn('java', argv, { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const lines = (into: string[]) => {
    let rest = '';
    return (chunk: Buffer) => {
      const parts = (rest + chunk.toString('utf8')).split('\n');
      rest = parts.pop() ?? '';
      into.push(...parts);
    };
  };
  child.stdout!.on('data', lines(stdout));
  child.stderr!.on('data', lines(stderr));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, stdout, stderr, exited };
}

describePeer(title, () => {
  const endpoints = testEndpoints();
  const suffix = uniqueSuffix();
  let jar: string;
  const peers: PeerProcess[] = [];

  beforeAll(async () => {
    // Idempotent: a no-op when the jar is newer than its sources (the first build fetches from Maven Central).
    const build = spawnSync('bash', [path.join(PEER_DIR, 'build.sh')], { encoding: 'utf8', timeout: 600_000 });
    if (build.status !== 0) throw new Error(`bench/peers/kstreams/build.sh failed (${build.status}): ${build.stderr}${build.stdout}`);
    jar = build.stdout.trim().split('\n').pop()!;
  }, 660_000);

  afterAll(async () => {
    for (const p of peers) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGKILL');
        await p.exited;
      }
    }
  });

  /**
   * Produces the generated events and the golden edge cases, runs the peer on them with `extra`
   * options and checks every prediction: exactly once, keyed like its event, Tributary's score,
   * ingestTime and lineage of the input record; then SIGTERM and a clean exit.
   */
  async function scoreWithPeer(name: string, extra: Record<string, string>): Promise<{ events: Transaction[]; appId: string }> {
    const input = `peer.transactions.${name}.${suffix}`;
    const output = `peer.predictions.${name}.${suffix}`;
    const appId = `peer-test-${name}-${suffix}`;
    const admin = createKafka({ clientId: 'test-peer-admin', brokers: endpoints.brokers }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: input, numPartitions: 3 }, { topic: output, numPartitions: 3 }], waitForLeaders: true });
    await admin.disconnect();

    const generator = new TransactionGenerator({ seed: 4242 });
    const events = [...Array.from({ length: GENERATED }, () => generator.next().tx), ...goldenEdgeCases()];
    expect(events.length).toBeGreaterThan(GENERATED); // the golden edge cases are there
    const expected = await tributaryScores(events);

    const producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: input, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
    await producer.connect();
    for (let i = 0; i < events.length; i += 50) await producer.send(events.slice(i, i + 50));
    await producer.disconnect();

    const inputs = await collect(input, 'transaction');
    const predictions = await collect(output, 'prediction');
    const running = startPeer(jar, {
      bootstrap: endpoints.brokers.join(','),
      registry: endpoints.schemaRegistryUrl,
      input,
      output,
      'app-id': appId,
      model: `${MODEL_DIR}/model.onnx`,
      card: `${MODEL_DIR}/model.json`,
      spec: 'models/fraud/generator-spec.json',
      'commit-interval-ms': '20',
      'linger-ms': '1',
      ...extra,
    });
    peers.push(running);
    await waitFor(() => running.stdout.includes('{"event":"running"}') || running.child.exitCode !== null, 120_000, () => `peer not running; stderr: ${running.stderr.join('\n')}`);
    // An early exit says why (its stderr), not only its code.
    if (running.child.exitCode !== null) throw new Error(`peer exited with ${running.child.exitCode} before running; stderr: ${running.stderr.join('\n')}`);

    await waitFor(() => predictions.records.length >= events.length && inputs.records.length >= events.length, 120_000, () => `${predictions.records.length}/${events.length} predictions; stderr: ${running.stderr.join('\n')}`);
    await new Promise((r) => setTimeout(r, 1500)); // anything extra (duplicates) would show up now
    await Promise.all([predictions.stop(), inputs.stop()]);

    // Exactly one prediction per event, keyed like the event.
    expect(predictions.records).toHaveLength(events.length);
    expect(new Set(predictions.records.map((p) => p.value.key)).size).toBe(events.length);
    const inputByKey = new Map(inputs.records.map((r) => [r.value.transactionId, r]));
    const worst = { diff: 0, key: '' };
    for (const { value: p, meta } of predictions.records) {
      const source = inputByKey.get(p.key);
      expect(source).toBeDefined();
      expect(meta.key).toBe(p.key);
      const diff = Math.abs(p.score - expected.get(p.key)!);
      if (diff > worst.diff) Object.assign(worst, { diff, key: p.key });
      expect({ key: p.key, modelName: p.modelName, modelVersion: p.modelVersion, label: p.label, threshold: p.threshold, eventTime: p.eventTime, ingestTime: p.ingestTime, lineage: p.lineage, route: p.route, featureSetVersions: p.featureSetVersions }).toEqual({
        key: p.key,
        modelName: 'fraud',
        modelVersion: '1',
        label: p.score >= 0.5,
        threshold: 0.5,
        eventTime: source!.value.eventTime,
        ingestTime: source!.meta.timestamp,
        lineage: { topic: input, partition: source!.meta.partition, offset: source!.meta.offset },
        route: 'live',
        featureSetVersions: {},
      });
      expect(p.producedTime).toBeGreaterThanOrEqual(p.ingestTime);
      expect(p.latencyMs).toBeGreaterThanOrEqual(0);
    }
    expect(worst.diff).toBeLessThanOrEqual(1e-5);

    // SIGTERM: streams closed cleanly (the JVM's exit after its shutdown hook), nothing logged at ERROR or WARN.
    running.child.kill('SIGTERM');
    const exit = await Promise.race([running.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 45_000))]);
    expect(exit).not.toBe('timeout');
    expect(running.stdout.filter((l) => l.trim() !== '')).toEqual(['{"event":"running"}']);
    // With --repartition-by, Kafka Streams' consumer may ask for the metadata of the repartition
    // topic it is creating before the broker has it (a recoverable UNKNOWN_TOPIC_OR_PARTITION, logged
    // at WARN by its NetworkClient during start-up): that one line is expected, nothing else.
    const internalTopicRace = (l: string) => extra['repartition-by'] !== undefined && l.includes('NetworkClient') && l.includes(`${appId}-by-${extra['repartition-by']}-repartition=UNKNOWN_TOPIC_OR_PARTITION`);
    expect(running.stderr.filter((l) => /\b(ERROR|WARN)\b/.test(l) && !internalTopicRace(l))).toEqual([]);
    return { events, appId };
  }

  it('predicts every event exactly once with the score Tributary computes, ingestTime = the input record timestamp, and stops cleanly on SIGTERM', async () => {
    await scoreWithPeer('direct', {});
  }, 300_000);

  it('with --repartition-by cardId: every event goes through the repartition topic, keyed by its card, and its prediction keeps the original key and lineage', async () => {
    const { events, appId } = await scoreWithPeer('hop', { 'repartition-by': 'cardId' });
    // The records on the peer's repartition topic: each keyed by its event's card, on the partition
    // Kafka's default partitioner gives that card, carrying the original key; every event there once
    // (unless Kafka Streams already purged consumed records: then those that are left).
    const topic = `${appId}-by-cardId-repartition`;
    const partitionOf = Partitioners.DefaultPartitioner();
    const partitionMetadata = [0, 1, 2].map((partitionId) => ({ partitionId, partitionErrorCode: 0, leader: 0, replicas: [0], isr: [0] }));
    const expectedPartition = (cardId: string) => partitionOf({ topic, partitionMetadata, message: { key: cardId, value: null } });
    expect(new Set(events.map((e) => expectedPartition(e.cardId))).size).toBeGreaterThan(1); // the cards spread: the check can fail
    const byKey = new Map(events.map((e) => [e.transactionId, e]));
    const kafka = createKafka({ clientId: 'test-peer-repartition', brokers: endpoints.brokers });
    const admin = kafka.admin();
    await admin.connect();
    const ranges = await admin.fetchTopicOffsets(topic);
    await admin.disconnect();
    const purged = ranges.some((r) => Number(r.low) > 0);
    const seen: Array<{ key: string; card: string; partition: number }> = [];
    const consumer = kafka.consumer({ groupId: `test-peer-repartition-${uniqueSuffix()}`, readUncommitted: false });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        const original = message.headers?.['peer-key'];
        seen.push({ key: String(original), card: String(message.key), partition });
      },
    });
    const present = purged ? 1 : events.length;
    try {
      await waitFor(() => seen.length >= present, 60_000, () => `${seen.length} records read from ${topic}`);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await consumer.disconnect();
    }
    if (!purged) expect(seen).toHaveLength(events.length);
    expect(new Set(seen.map((r) => r.key)).size).toBe(seen.length);
    for (const r of seen) {
      const event = byKey.get(r.key);
      expect(event).toBeDefined();
      expect({ card: r.card, partition: r.partition }).toEqual({ card: event!.cardId, partition: expectedPartition(event!.cardId) });
    }
  }, 300_000);
});
