/**
 * Repartitioning by entity against the real stack (Kafka, registry, Redis).
 *
 * The ordering defect: the demo producer keys by transaction id, so one card's events land on
 * several partitions and the windowed per-card features depended on how partitions interleaved.
 * Here the same event stream is produced twice, concurrently by three producers per topic into
 * three partitions: keyed by transaction id into a topology that repartitions by card (the
 * default, implied by the card_activity set), and keyed by card id into one that declares
 * `partitionBy: none`. Each card's events are sent in event-time order and at least 50 ms apart
 * (waves: no card twice in a wave, a wave starts 50 ms after the previous one was acknowledged).
 * Both must give identical streaming feature values and scores.
 *
 * Size: REPART_EVENTS (default 2000, a couple of minutes in CI; the acceptance run of issue 13
 * uses REPART_EVENTS=50000), REPART_WAVE (events per wave, default 40) and REPART_GAP_MS (the
 * minimum time between two events of one card, default 50).
 */
import type { KafkaMessage } from 'kafkajs';
import type { FeatureVector, Prediction } from '../../src/client/generated/avro-types';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { TopicProducer } from '../../src/client/topic-producer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { KEY_HEADER, LINEAGE_HEADER, repartitionTopicName } from '../../src/engine/repartition';
import { createKafka } from '../../src/kafka/client';
import { Pipeline } from '../../src/stages/pipeline';
import type { LoadedTopology } from '../../src/topology/spec';
import { isolatedTopology, testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { fraudSchemas, type Transaction } from '../../examples/fraud/schemas';

const endpoints = testEndpoints();
const EVENTS = Number(process.env.REPART_EVENTS ?? 2000);
const WAVE = Number(process.env.REPART_WAVE ?? 40);
/** Minimum time between two sends of one card's events (the acceptance says 50 ms; REPART_GAP_MS overrides). */
const GAP_MS = Number(process.env.REPART_GAP_MS ?? 50);
/**
 * Strict (default): no card reordered by the hop and no vector different at all — the acceptance
 * check of issue 13. What makes it hold: the hop writes each record as it is processed, with no
 * wait behind its lane's commit (PipelinedTransactions), and one entity's records from several
 * lanes in processing order (SendGate). Sent at commit time instead, 0.25-0.8% of cards were
 * swapped on the loaded dev box. REPART_STRICT=0 only demands identical values for the cards the
 * hop kept in order (to measure a variant of the hop).
 */
const STRICT = process.env.REPART_STRICT !== '0';
/** `per-partition` or `shared` (exactly-once v2: the hop and the chain behind it in one transaction per interval); default: each mode in turn. */
const MODES = (process.env.REPART_TRANSACTIONS ?? 'per-partition,shared').split(',') as ('per-partition' | 'shared')[];

interface Seen<T> {
  key: string | null;
  value: T;
  headers: Record<string, string>;
  partition: number;
  offset: number;
  timestamp: number;
}

async function collect<T>(topic: string, schema: 'prediction' | 'feature-vector' | 'transaction') {
  const records: Seen<T>[] = [];
  // The reader is at-least-once (a rebalance re-delivers): a record is counted once per position,
  // so a duplicate written by the pipeline (another offset) is still seen.
  const seen = new Set<string>();
  const consumer = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic, schema, schemas: fraudSchemas, groupId: `repart-test-${topic}-${uniqueSuffix()}` });
  await consumer.run((value, meta) => {
    const at = `${meta.partition}:${meta.offset}`;
    if (seen.has(at)) return;
    seen.add(at);
    records.push({ key: meta.key, value: value as T, headers: meta.headers, partition: meta.partition, offset: meta.offset, timestamp: meta.timestamp });
  });
  return { records, stop: () => consumer.stop() };
}

/**
 * Waves of events: taken in event-time order, no card twice in one wave and a card's next event
 * in a later wave, so each card's events are sent in event-time order, one wave apart.
 */
export function waves(events: Transaction[], size: number): Transaction[][] {
  const sorted = [...events].sort((a, b) => a.eventTime - b.eventTime);
  const out: Transaction[][] = [];
  const lastWave = new Map<string, number>();
  let open = 0;
  for (const tx of sorted) {
    let w = Math.max(open, (lastWave.get(tx.cardId) ?? -1) + 1);
    while ((out[w]?.length ?? 0) >= size) w++;
    (out[w] ??= []).push(tx);
    lastWave.set(tx.cardId, w);
    while ((out[open]?.length ?? 0) >= size) open++;
  }
  return out.filter((w) => w.length > 0);
}

/** Three producers per topic, each sending its share of a wave concurrently; the next wave 50 ms after the previous was acknowledged. */
async function produceWaves(targets: { topic: string; key: (tx: Transaction) => string }[], plan: Transaction[][]): Promise<void> {
  const producers = targets.flatMap((t) => [0, 1, 2].map(() => ({ target: t, p: new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: t.topic, schema: 'transaction', schemas: fraudSchemas, key: t.key, headers: (tx) => ({ 'x-trace': tx.transactionId }) }) })));
  await Promise.all(producers.map((x) => x.p.connect()));
  try {
    for (const wave of plan) {
      await Promise.all(producers.map((x, i) => {
        const share = wave.filter((_, j) => j % 3 === i % 3);
        return share.length > 0 ? x.p.send(share) : Promise.resolve();
      }));
      await new Promise((r) => setTimeout(r, GAP_MS));
    }
  } finally {
    await Promise.all(producers.map((x) => x.p.disconnect()));
  }
}

function topologyFor(suffix: string, transactions: 'per-partition' | 'shared', partitionBy?: 'none'): LoadedTopology {
  return isolatedTopology('topologies/fraud-detection.yaml', suffix, (spec) => {
    const extract = spec.stages.find((s) => s.name === 'extract')!;
    extract.transactions = transactions;
    if (partitionBy) extract.partitionBy = partitionBy;
    else extract.repartition = { purgeIntervalMs: 3_600_000 }; // purged explicitly by the test
  });
}

async function rawRecords(topic: string, minimum: number): Promise<KafkaMessage[]> {
  const consumer = createKafka({ clientId: 'repart-test-raw', brokers: endpoints.brokers }).consumer({ groupId: `repart-raw-${uniqueSuffix()}`, readUncommitted: false, maxWaitTimeInMs: 100 });
  const out: KafkaMessage[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void out.push(message) });
  await waitFor(() => out.length >= minimum, 60000, () => `${out.length} of ${minimum} raw records of ${topic}`);
  await consumer.disconnect();
  return out;
}

describe.each(MODES)('repartitioning by entity (real stack), %s transactions', (mode) => {
  it(`${EVENTS} events keyed by transaction id and repartitioned by card give the same streaming features and scores as the same events keyed by card id; lineage, timestamps and headers are the original ones; consumed records are purged`, async () => {
    const gen = new TransactionGenerator({ seed: 1313 });
    const events = gen.take(EVENTS).map((g) => g.tx);
    const plan = waves(events, WAVE);
    const repart = topologyFor(uniqueSuffix(), mode);
    const keyed = topologyFor(uniqueSuffix(), mode, 'none');
    const input = (t: LoadedTopology) => t.spec.stages[0].input.topic;
    const out = (t: LoadedTopology, stage: string) => t.spec.stages.find((s) => s.name === stage)!.output.topic;

    const [pr, pk] = [await Pipeline.start({ topology: repart, endpoints }), await Pipeline.start({ topology: keyed, endpoints })];
    const sinks = {
      rf: await collect<FeatureVector>(out(repart, 'extract'), 'feature-vector'),
      rp: await collect<Prediction>(out(repart, 'score'), 'prediction'),
      kf: await collect<FeatureVector>(out(keyed, 'extract'), 'feature-vector'),
      kp: await collect<Prediction>(out(keyed, 'score'), 'prediction'),
      ri: await collect<Transaction>(input(repart), 'transaction'),
      ki: await collect<Transaction>(input(keyed), 'transaction'),
    };
    try {
      expect(pr.runners.map((r) => r.chainName)).toEqual(['extract-repartition', 'extract+score']);
      expect(pk.runners.map((r) => r.chainName)).toEqual(['extract+score']);
      // Shared: one sink for the hop and the chain behind it (one transaction per interval for the process).
      if (mode === 'shared') expect(pr.shared).toBeDefined();
      else expect(pr.shared).toBeUndefined();
      const started = Date.now();
      await produceWaves([{ topic: input(repart), key: (tx) => tx.transactionId }, { topic: input(keyed), key: (tx) => tx.cardId }], plan);
      const produceSeconds = (Date.now() - started) / 1000;
      const all = () => Object.values(sinks).every((s) => s.records.length >= EVENTS);
      await waitFor(all, 300000, () => Object.entries(sinks).map(([k, s]) => `${k}=${s.records.length}`).join(' '));
      await new Promise((r) => setTimeout(r, 1500)); // duplicates, if any, would arrive now
      const counts = Object.fromEntries(Object.entries(sinks).map(([k, s]) => [k, s.records.length]));
      if (Object.values(counts).some((n) => n !== EVENTS)) {
        const lineageOf = (v: unknown) => { const l = (v as { lineage?: { topic: string; partition: number; offset: number } }).lineage; return l ? `${l.topic}/${l.partition}/${l.offset}` : ''; };
        for (const [k, s] of Object.entries(sinks)) {
          const by = new Map<string, Seen<unknown>[]>();
          for (const r of s.records as Seen<unknown>[]) by.set(lineageOf(r.value) || `${r.partition}:${r.offset}`, [...(by.get(lineageOf(r.value) || `${r.partition}:${r.offset}`) ?? []), r]);
          const dups = [...by.values()].filter((x) => x.length > 1);
          if (dups.length > 0) process.stdout.write(`repartition test: ${k} has ${dups.length} duplicated lineages, e.g. ${JSON.stringify(dups.slice(0, 3).map((d) => d.map((r) => ({ p: r.partition, o: r.offset, key: r.key, ts: r.timestamp }))))}\n`);
        }
      }
      expect(counts).toEqual(Object.fromEntries(Object.keys(sinks).map((k) => [k, EVENTS])));

      // Original lineage: every output points at the input record of its transaction.
      const byPos = (rows: Seen<Transaction>[]) => new Map(rows.map((r) => [`${r.partition}:${r.offset}`, r]));
      const rIn = byPos(sinks.ri.records);
      const kIn = byPos(sinks.ki.records);
      const txOf = (m: Map<string, Seen<Transaction>>, topic: string, l: { topic: string; partition: number; offset: number }) => {
        expect(l.topic).toBe(topic);
        return m.get(`${l.partition}:${l.offset}`)!.value.transactionId;
      };
      for (const p of sinks.rp.records) {
        expect(txOf(rIn, input(repart), p.value.lineage)).toBe(p.key); // the original key (the transaction id) too
        expect(p.headers['x-trace']).toBe(p.key);
        expect(p.headers[LINEAGE_HEADER]).toBeUndefined();
        expect(p.headers[KEY_HEADER]).toBeUndefined();
      }
      for (const f of sinks.rf.records) expect(f.value.ingestTime).toBe(rIn.get(`${f.value.lineage.partition}:${f.value.lineage.offset}`)!.timestamp);

      // The repartition log's per-card order against the send order (the hop's only way to differ).
      const repTopic = repartitionTopicName(repart.spec.name, 'extract');
      const rep = await rawRecords(repTopic, EVENTS);
      const sentWave = new Map(plan.flatMap((w, i) => w.map((tx) => [tx.transactionId, i] as const)));
      const lastWaveOf = new Map<string, number>();
      const inverted: string[] = [];
      for (const m of rep) {
        const card = m.key!.toString();
        const w = sentWave.get(m.headers![KEY_HEADER]!.toString())!;
        if ((lastWaveOf.get(card) ?? -1) > w) inverted.push(card);
        lastWaveOf.set(card, Math.max(w, lastWaveOf.get(card) ?? -1));
      }

      // Identical streaming features (the card_activity set) and scores, per transaction.
      const names = sinks.rf.records[0].value.names;
      const streaming = names.map((n, i) => [n, i] as const).filter(([n]) => n.startsWith('card_') && /_(24h|prev)$/.test(n)).map(([, i]) => i);
      expect(streaming).toHaveLength(5);
      const vectors = (rows: Seen<FeatureVector>[], m: Map<string, Seen<Transaction>>, topic: string) => new Map(rows.map((r) => [txOf(m, topic, r.value.lineage), r.value]));
      const rv = vectors(sinks.rf.records, rIn, input(repart));
      const kv = vectors(sinks.kf.records, kIn, input(keyed));
      const reordered = new Set(inverted);
      const cardOfTx = new Map(events.map((tx) => [tx.transactionId, tx.cardId]));
      const differing = [...rv].filter(([tx, v]) => streaming.some((i) => v.values[i] !== kv.get(tx)!.values[i])).map(([tx]) => tx);
      process.stdout.write(`repartition test: ${differing.length} of ${EVENTS} vectors differ; ${reordered.size} cards reordered by the hop (${[...reordered].slice(0, 10).join(', ')})\n`);
      for (const card of [...reordered].slice(0, 5)) {
        const rows = rep.filter((m) => m.key!.toString() === card).map((m) => ({ wave: sentWave.get(m.headers![KEY_HEADER]!.toString()), from: m.headers![LINEAGE_HEADER]!.toString(), ts: Number(m.timestamp), at: m.offset }));
        process.stdout.write(`repartition test: card ${card} in the repartition log: ${JSON.stringify(rows)}\n`);
      }
      if (STRICT) expect({ inverted, differing }).toEqual({ inverted: [], differing: [] });
      // Every difference is explained by the hop's order: none for the cards it kept in order.
      expect(differing.filter((tx) => !reordered.has(cardOfTx.get(tx)!))).toEqual([]);
      // Scores: equal wherever both runs read the same batch-set versions (another test may flip a version meanwhile).
      const scores = (rows: Seen<Prediction>[], m: Map<string, Seen<Transaction>>, topic: string) => new Map(rows.map((r) => [txOf(m, topic, r.value.lineage), r.value]));
      const rs = scores(sinks.rp.records, rIn, input(repart));
      const ks = scores(sinks.kp.records, kIn, input(keyed));
      let compared = 0;
      for (const [tx, p] of rs) {
        if (reordered.has(cardOfTx.get(tx)!)) continue;
        if (JSON.stringify(p.featureSetVersions) !== JSON.stringify(ks.get(tx)!.featureSetVersions)) continue;
        compared++;
        expect([tx, p.score]).toEqual([tx, ks.get(tx)!.score]);
      }
      expect(compared).toBeGreaterThan(EVENTS * 0.8);

      // The repartition topic: keyed by card, value bytes and timestamp of the original record.
      const rawIn = new Map((await rawRecords(input(repart), EVENTS)).map((m) => [m.key!.toString(), m]));
      for (const m of rep) {
        const orig = rawIn.get(m.headers![KEY_HEADER]!.toString())!;
        expect(m.value!.equals(orig.value!)).toBe(true);
        expect(m.timestamp).toBe(orig.timestamp);
      }
      expect(rep.every((m) => m.key!.toString() === cardOfTx.get(m.headers![KEY_HEADER]!.toString()))).toBe(true);

      // Purge: everything the extract stage committed is deleted from the repartition topic.
      const deleted = await pr.purgeRepartitions();
      const admin = createKafka({ clientId: 'repart-test-admin', brokers: endpoints.brokers }).admin();
      await admin.connect();
      const [offsets, committed] = await Promise.all([admin.fetchTopicOffsets(repTopic), admin.fetchOffsets({ groupId: `${repart.spec.name}.extract`, topics: [repTopic] })]);
      await admin.disconnect();
      const committedBy = new Map(committed[0].partitions.map((p) => [p.partition, p.offset]));
      for (const o of offsets) expect(o.low).toBe(committedBy.get(o.partition));
      expect(deleted).toBeGreaterThanOrEqual(EVENTS);
      expect(pk.keyMismatches.total).toBe(0);
      // The hop's cost, end to end: prediction written (Kafka timestamp) minus input written.
      const latency = (rows: Seen<Prediction>[], m: Map<string, Seen<Transaction>>) => {
        const ms = rows.map((r) => r.timestamp - m.get(`${r.value.lineage.partition}:${r.value.lineage.offset}`)!.timestamp).sort((x, y) => x - y);
        return `p50 ${ms[Math.floor(ms.length * 0.5)]} ms, p99 ${ms[Math.floor(ms.length * 0.99)]} ms`;
      };
      if (pr.shared) process.stdout.write(`repartition test (shared): ${JSON.stringify(pr.shared.counters)}\n`);
      process.stdout.write(`repartition test (${mode}): ${EVENTS} events in ${plan.length} waves of <= ${WAVE}, produced in ${produceSeconds.toFixed(1)} s; ${compared} scores compared; ${deleted} repartition records purged; input -> prediction with the hop ${latency(sinks.rp.records, rIn)}, keyed by card without it ${latency(sinks.kp.records, kIn)}\n`);
    } finally {
      await Promise.allSettled(Object.values(sinks).map((s) => s.stop()));
      await Promise.allSettled([pr.stop(), pk.stop()]);
    }
  }, 900_000);
});
