import { produceDemoEvents } from '../../examples/fraud/produce';
import * as path from 'node:path';
import { FRAUD_SCHEMAS_DIR } from '../../examples/fraud/schemas';
import { malformedTransactions } from '../../examples/fraud/malformed';
import { KEY_HEADER, LINEAGE_HEADER, parseLineageHeader } from '../../src/engine/repartition';
import type { DeadLetter } from '../../src/engine/records';
import { SchemaCatalog } from '../../src/kafka/avro-schemas';
import { AvroDecoder } from '../../src/kafka/avro-serde';
import { createKafka } from '../../src/kafka/client';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import { repoRoot } from '../../src/stack/paths';
import { prepareFeatureSets } from '../../src/features/prepare';
import { redisTargets, type RedisTarget } from '../helpers/dedicated-redis';
import { committedKeys, faultTopologyFile, generatedKeys, lossAndDuplicates, recordFault, StageProcess } from '../helpers/processes';
import { firstCopies, readTopic, referenceValues, streamingIndexes, vectorDecoder } from '../helpers/streaming-reference';
import { isolatedTopology, testEndpoints, uniqueSuffix } from '../helpers/topology';
import { sendRaw } from '../helpers/send-raw';

const endpoints = testEndpoints();

/**
 * The pipeline's Redis is the stack's single node, then a 3-node Cluster of the test's own (window
 * state per (partition, slot group) over three shards; batch sets and model control there too).
 * The uninterrupted reference always runs on the single node, so on the Cluster it also checks
 * that both give the same values.
 */
/**
 * Per-partition transactions on a single Redis and on a Cluster; shared transactions (exactly-once
 * v2: the hop and extract+score in one transaction per interval for the process) on a single Redis;
 * and a deduplicated hop (`repartition.delivery: deduplicated`: the hop writes without
 * transactions, extract+score skip what it wrote twice) with shared transactions on a single Redis.
 */
type Mode = 'per-partition' | 'shared' | 'deduplicated hop, shared';
const single = redisTargets()[0];
const cases: Array<[string, Mode, () => Promise<RedisTarget>]> = [...redisTargets().map(([label, connect]) => [label, 'per-partition', connect] as [string, Mode, () => Promise<RedisTarget>]), [single[0], 'shared', single[1]], [single[0], 'deduplicated hop, shared', single[1]]];

/** Sends raw messages to a topic once the pipeline has created it. */
async function sendOnceCreated(topic: string, messages: { key: string; value: Buffer }[]): Promise<void> {
  const kafka = createKafka({ clientId: 'bad-events', brokers: endpoints.brokers });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const deadline = Date.now() + 60000;
    while (!(await admin.listTopics()).includes(topic)) {
      if (Date.now() > deadline) throw new Error(`${topic} was never created`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await admin.disconnect();
  }
  await sendRaw(kafka, { topic, messages });
}

describe.each(cases)('repartitioning by entity through crashes on %s (real processes, real broker), %s transactions', (_label, mode, connect) => {
  let target: RedisTarget;
  beforeAll(async () => {
    target = await connect();
  }, 60_000);
  afterAll(async () => target?.stop());

  it('kill -9 of the pipeline (repartition hop + extract+score) at a fixed point inside a transaction, then 4 times at random under load: 0 lost, 0 duplicated, original lineage, every streaming vector equals an uninterrupted replay of the repartition log, and every vector recomputed after a crash equals the one the crashed transaction wrote', async () => {
    const dedup = mode === 'deduplicated hop, shared';
    const suffix = uniqueSuffix();
    const file = faultTopologyFile(suffix, (doc) => {
      doc.stages[0].repartition = { purgeIntervalMs: 3_600_000, ...(dedup ? { delivery: 'deduplicated' } : {}) }; // kept for the replay below
      doc.stages[0].transactions = dedup ? 'shared' : mode;
    });
    // A dedicated server starts empty: the batch sets the vector reads are loaded into it first.
    if (target.dedicated) await prepareFeatureSets(isolatedTopology('topologies/fraud-detection.yaml', suffix), target.url);
    const env = { REDIS_URL: target.url };
    const count = 1500;
    const seed = 1717;
    const topic = `fraud.transactions.${suffix}`;
    const producing = produceDemoEvents({ ...endpoints, topic, count, rate: 150, seed });
    // Deduplicated hop: malformed events too. The hop forwards them (its writes are not transactional)
    // and extract dead-letters each exactly once, copies written again after the hop's crash included.
    const registry = new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl });
    const bad = dedup ? await malformedTransactions(registry, new SchemaCatalog(FRAUD_SCHEMAS_DIR).get('transaction'), `bad-${suffix}-`) : [];
    // The first process dies in its 3rd extract+score transaction (group <topology>.extract, not the
    // hop's), after the vectors and predictions were sent, before the commit: those vectors are in
    // the log, aborted, and computed again by the next process.
    let proc: StageProcess;
    if (dedup) {
      // First, the deduplicated hop dies after its 3rd commit's records were acknowledged, before
      // its input offsets were committed: the next process writes them again.
      proc = new StageProcess(file, [], { ...env, TRIBUTARY_FAULT_CRASH_AT: `hop-sent@fraud-detection-${suffix}.extract-repartition:3` });
      await sendOnceCreated(topic, bad.map((b) => ({ key: b.key, value: b.value })));
      expect((await proc.exited).signal).toBe('SIGKILL');
    }
    proc = new StageProcess(file, [], { ...env, TRIBUTARY_FAULT_CRASH_AT: `txn-sent@fraud-detection-${suffix}.extract:3` });
    expect((await proc.exited).signal).toBe('SIGKILL');
    expect(proc.output).toContain('chain started');
    proc = new StageProcess(file, [], env);
    for (let kill = 0; kill < 4; kill++) {
      await new Promise((r) => setTimeout(r, 1500 + Math.random() * 2500));
      proc.kill('SIGKILL');
      await proc.exited;
      proc = new StageProcess(file, [], env);
    }
    await producing;
    const expected = generatedKeys(seed, count);
    const predictions = await committedKeys(endpoints, `fraud.predictions.${suffix}`, count, 150000, suffix);
    expect((await proc.stop()).code).toBe(0);
    const { lost, duplicated } = lossAndDuplicates(expected, predictions);
    if (mode !== 'per-partition') expect(proc.output).toContain('"transactions":"shared"');
    recordFault({ scenario: `kill -9 x5 (1 fixed, 4 random) with a repartition hop, on ${_label}, ${mode} transactions`, events: count, lost, duplicated, recoverySeconds: 'n/a' });
    expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });

    if (dedup) {
      const deadLetters = new AvroDecoder<DeadLetter>(registry, new SchemaCatalog(path.join(repoRoot(), 'schemas')).get('dead-letter').type);
      const letters = await Promise.all((await readTopic(`fraud.dlq.${suffix}`, bad.length, false)).map(async (r) => (await deadLetters.decode(r.value)) as DeadLetter));
      expect(letters.map((d) => [d.key?.toString(), d.stage, d.errorKind, d.lineage.topic]).sort()).toEqual(bad.map((b) => [b.key, 'extract', b.expectedKind, topic]).sort());
    }

    const decodeAll = vectorDecoder();

    // Every committed feature vector: original lineage (the input topic), key = transaction id.
    const vectors = await decodeAll(await readTopic(`fraud.features.${suffix}`, count, false));
    expect(vectors).toHaveLength(count);
    for (const v of vectors) expect(v.lineage.topic).toBe(topic);

    // Replay after a crash: a vector the crashed (aborted) transactions wrote and the one the next
    // process committed for the same event are bit for bit the same.
    const written = await decodeAll(await readTopic(`fraud.features.${suffix}`, count, true));
    const copies = new Map<string, number[][]>();
    for (const v of written) copies.set(v.key, [...(copies.get(v.key) ?? []), v.values]);
    const recomputed = [...copies.values()].filter((c) => c.length > 1);
    expect(recomputed.length).toBeGreaterThan(0); // at least the crashed 3rd transaction's
    expect(recomputed.filter((c) => c.some((v) => v.some((x, i) => x !== c[0][i])))).toEqual([]);

    // Uninterrupted reference: the repartition log, partition by partition in offset order, through a fresh enricher on the single Redis.
    const repTopic = `fraud-detection-${suffix}.extract-repartition`;
    const hopRecords = await readTopic(repTopic, count, false);
    for (const r of hopRecords) expect(parseLineageHeader(r.headers[LINEAGE_HEADER])!.topic).toBe(topic);
    let rows = hopRecords;
    if (dedup) {
      // Written again after the crashes (at least the crashed hop's 3rd commit), each a copy the reader
      // skipped; the forwarded malformed events aside (dead-lettered above).
      const badKeys = new Set(bad.map((b) => b.key));
      rows = firstCopies(hopRecords).filter((r) => !badKeys.has(r.headers[KEY_HEADER]));
      expect(hopRecords.length).toBeGreaterThan(count + bad.length);
      expect(new Set(rows.map((r) => r.headers[LINEAGE_HEADER])).size).toBe(count);
    }
    expect(rows).toHaveLength(count); // exactly once through the hop as well

    const want = await referenceValues(suffix, repTopic, rows);
    const streaming = streamingIndexes(vectors[0]);
    expect(streaming).toHaveLength(5);
    const differing = vectors.filter((v) => streaming.some((i) => v.values[i] !== want.get(v.key)![i])).map((v) => v.key);
    expect(differing).toEqual([]);
  });
});
