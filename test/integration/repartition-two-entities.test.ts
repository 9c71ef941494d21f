/**
 * Two entities in one vector against the real stack (Kafka, registry, Redis): card windows and
 * merchant windows in one extraction stage, chained re-keying (README "Two entities on one input").
 *
 * The same event stream is produced three times, concurrently by three producers per topic into
 * three partitions: keyed by transaction id into the two-entity topology (a hop by card, the card
 * step writing partial records keyed by merchant, the merchant step = the stage), and — as the
 * reference — keyed by card into a card-only stage and keyed by merchant into a merchant-only stage,
 * both `partitionBy: none`. Each card's and each merchant's events are sent in event-time order and
 * at least 50 ms apart (waves: no card or merchant twice in a wave). Every event must give exactly
 * one vector, in the model's order, whose card windows equal the card-keyed reference's and whose
 * merchant windows equal the merchant-keyed one's (the test also reports the merchants whose
 * records reached the merchant step out of order); lineage, timestamp and headers (reply-to
 * included: one reply copy per user stage, none from the internal steps; tributary-done for the
 * fused stage after it) are the original ones; both internal topics are purged.
 *
 * Size: TWO_ENTITY_EVENTS (default 2000), REPART_WAVE (40), REPART_GAP_MS (50); TWO_ENTITY_DEBUG=1
 * prints how far each internal topic's partitions are from the send order.
 */
import type { KafkaMessage } from 'kafkajs';
import type { FeatureVector } from '../../src/client/generated/avro-types';
import { fraudSchemas, type Transaction } from '../../examples/fraud/schemas';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { TopicProducer } from '../../src/client/topic-producer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { DONE_HEADER } from '../../src/engine/chain';
import { KEY_HEADER, LINEAGE_HEADER, entityTopicName, repartitionTopicName } from '../../src/engine/repartition';
import { CORRELATION_HEADER, REPLY_PARTITION_HEADER, REPLY_STAGE_HEADER, REPLY_TOPIC_HEADER, replyTopicName } from '../../src/engine/replies';
import { describeVector } from '../../src/features/enricher';
import { createKafka } from '../../src/kafka/client';
import { builtinProcessors } from '../../src/stages/builtin';
import { defineProcessor } from '../../src/stages/define';
import { extractionBase, type ExtractionConfig } from '../../src/stages/extraction';
import { Pipeline } from '../../src/stages/pipeline';
import type { LoadedTopology, StageSpec } from '../../src/topology/spec';
import { isolatedTopology, testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { entityWaves, merchantActivitySet, twoEntityExtract } from '../helpers/two-entities';

const endpoints = testEndpoints();
const EVENTS = Number(process.env.TWO_ENTITY_EVENTS ?? 2000);
const WAVE = Number(process.env.REPART_WAVE ?? 40);
const GAP_MS = Number(process.env.REPART_GAP_MS ?? 50);
/**
 * The first entity (card) is checked strictly: no card reordered, no card window different. For the
 * second (merchant), every difference must be explained by a merchant the hops reordered, and the
 * reordered merchants must stay rare: at most 1 % of the merchants with several events. What keeps
 * them in order: the hop and the card step write their internal topics' partitions in processing
 * order across entities (ChainRunnerOptions.orderAcrossEntities) — keyed per entity only, 49-93 of
 * ~520 merchants were swapped per run, so the bound fails if that ordering breaks. It is not zero
 * by guarantee: like one hop, a step orders only the records it has fetched, and a merchant's events
 * reach the second hop through different card partitions (one of ~520 merchants was swapped once in a
 * CI run on a loaded machine; README, "Two entities"). TWO_ENTITY_STRICT=1 demands none.
 */
const STRICT = process.env.TWO_ENTITY_STRICT === '1';
/** TWO_ENTITY_TRANSACTIONS=shared: the hop, the per-entity step and the stage in one process-wide shared transaction per interval. */
const TRANSACTIONS = process.env.TWO_ENTITY_TRANSACTIONS as 'per-partition' | 'shared' | undefined;

/** A stage after the extraction (fused with it): forwards the vectors, so the features topic carries tributary-done. */
const vectorTap = defineProcessor({
  name: 'vector_tap',
  summary: 'Test: forwards feature vectors unchanged.',
  inputSchema: 'feature-vector',
  outputSchema: 'feature-vector',
  configSchema: { type: 'object' },
  deterministic: true,
  sideEffects: false,
  async create() {
    return { processBatch: async (rs) => rs.map((r) => ({ key: r.key?.toString() ?? '', value: r.value })), close: async () => {} };
  },
});

interface Seen<T> {
  key: string | null;
  value: T;
  headers: Record<string, string>;
  partition: number;
  offset: number;
  timestamp: number;
}

async function collect<T>(topic: string, schema: 'feature-vector' | 'transaction') {
  const records: Seen<T>[] = [];
  const seen = new Set<string>(); // at-least-once reader: one per position, so a written duplicate still counts
  const consumer = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic, schema, schemas: fraudSchemas, groupId: `two-entity-test-${topic}-${uniqueSuffix()}` });
  await consumer.run((value, meta) => {
    const at = `${meta.partition}:${meta.offset}`;
    if (seen.has(at)) return;
    seen.add(at);
    records.push({ key: meta.key, value: value as T, headers: meta.headers, partition: meta.partition, offset: meta.offset, timestamp: meta.timestamp });
  });
  return { records, stop: () => consumer.stop() };
}

async function rawRecords(topic: string, minimum: number): Promise<KafkaMessage[]> {
  const consumer = createKafka({ clientId: 'two-entity-test-raw', brokers: endpoints.brokers }).consumer({ groupId: `two-entity-raw-${uniqueSuffix()}`, readUncommitted: false, maxWaitTimeInMs: 100 });
  const out: KafkaMessage[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ partition, message }) => void out.push(Object.assign(message, { partition })) });
  await waitFor(() => out.length >= minimum, 60000, () => `${out.length} of ${minimum} raw records of ${topic}`);
  await new Promise((r) => setTimeout(r, 1000)); // more than expected would arrive now
  await consumer.disconnect();
  return out;
}

/** The two-entity topology (input keyed by transaction id; a fused tap stage after the extraction). */
function twoEntityTopology(suffix: string): LoadedTopology {
  const t = isolatedTopology('topologies/fraud-detection.yaml', suffix, (spec) => {
    twoEntityExtract(spec);
    spec.stages[0].repartition = { purgeIntervalMs: 3_600_000 }; // purged explicitly by the test
    if (TRANSACTIONS) spec.stages[0].transactions = TRANSACTIONS;
  });
  const extract = t.spec.stages[0];
  const tapped = `${extract.output.topic}-tapped`;
  t.spec.topics.push({ name: tapped, partitions: 3, schema: 'feature-vector' });
  t.spec.stages.push({ name: 'tap', processor: 'vector_tap', input: { topic: extract.output.topic }, output: { topic: tapped }, config: {} });
  return t;
}

/** The reference: the same sets, one stage per entity, each reading a topic its producer keys by that entity. */
function referenceTopology(suffix: string): LoadedTopology {
  return isolatedTopology('topologies/fraud-detection.yaml', suffix, (spec) => {
    (spec as unknown as { features: { sets: unknown[] } }).features.sets.push(merchantActivitySet());
    const extract = spec.stages.find((s) => s.name === 'extract')!;
    const byMerchant = `${extract.input.topic}-by-merchant`;
    const merchantOut = `${extract.output.topic}-merchant`;
    spec.topics.push({ name: byMerchant, partitions: 3, schema: 'transaction' }, { name: merchantOut, partitions: 3, schema: 'feature-vector' });
    const card: StageSpec = { ...extract, name: 'extract-card', partitionBy: 'none', config: { ...extract.config, vector: { set: 'ref_card', version: 1 }, features: ['card_activity'] } };
    const merchant: StageSpec = { ...extract, name: 'extract-merchant', partitionBy: 'none', input: { topic: byMerchant }, output: { topic: merchantOut }, config: { ...extract.config, vector: { set: 'ref_merchant', version: 1 }, features: ['merchant_activity'] } };
    spec.stages = [card, merchant];
  });
}

describe('two entities in one vector: chained re-keying (real stack)', () => {
  it(`${EVENTS} events keyed by transaction id give one vector each, in the model's order, whose card and merchant windows equal those of the same events keyed by card and by merchant; lineage, timestamps, headers and replies are the original ones; both internal topics are purged`, async () => {
    const events = new TransactionGenerator({ seed: 1314 }).take(EVENTS).map((g) => g.tx);
    const plan = entityWaves(events, WAVE, (tx) => tx.eventTime, [(tx) => tx.cardId, (tx) => tx.merchantId]);
    const two = twoEntityTopology(uniqueSuffix());
    const ref = referenceTopology(uniqueSuffix());
    const stage = (t: LoadedTopology, name: string) => t.spec.stages.find((s) => s.name === name)!;
    const extract = stage(two, 'extract');
    const vector = describeVector(extract.config as unknown as ExtractionConfig, two.spec.features, extractionBase(extract.config as unknown as ExtractionConfig, { topology: two }));
    const processors = builtinProcessors();
    processors.register(vectorTap);
    const replies = replyTopicName(two.spec.name);

    const [p2, pr] = [await Pipeline.start({ topology: two, endpoints, processors }), await Pipeline.start({ topology: ref, endpoints })];
    const sinks = {
      features: await collect<FeatureVector>(extract.output.topic, 'feature-vector'),
      input: await collect<Transaction>(extract.input.topic, 'transaction'),
      card: await collect<FeatureVector>(stage(ref, 'extract-card').output.topic, 'feature-vector'),
      merchant: await collect<FeatureVector>(stage(ref, 'extract-merchant').output.topic, 'feature-vector'),
    };
    try {
      // Each internal step is a chain (consumer group, transactions, readiness check) of its own; the stage after is fused as usual.
      expect(p2.runners.map((r) => r.chainName)).toEqual(['extract-repartition', 'extract-cardId', 'extract+tap']);
      expect((p2.readiness().checks.stages as { stage: string; ready: boolean }[]).map((s) => [s.stage, s.ready])).toEqual([['extract-repartition', true], ['extract-cardId', true], ['extract', true], ['tap', true]]);

      const producers = [
        { topic: extract.input.topic, key: (tx: Transaction) => tx.transactionId, headers: (tx: Transaction) => ({ 'x-trace': tx.transactionId, [CORRELATION_HEADER]: tx.transactionId, [REPLY_TOPIC_HEADER]: replies, [REPLY_PARTITION_HEADER]: '1' }) },
        { topic: stage(ref, 'extract-card').input.topic, key: (tx: Transaction) => tx.cardId, headers: (tx: Transaction) => ({ 'x-trace': tx.transactionId }) },
        { topic: stage(ref, 'extract-merchant').input.topic, key: (tx: Transaction) => tx.merchantId, headers: (tx: Transaction) => ({ 'x-trace': tx.transactionId }) },
      ].flatMap((t) => [0, 1, 2].map(() => new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: t.topic, schema: 'transaction', schemas: fraudSchemas, key: t.key, headers: t.headers })));
      await Promise.all(producers.map((p) => p.connect()));
      try {
        for (const wave of plan) {
          await Promise.all(producers.map((p, i) => {
            const share = wave.filter((_, j) => j % 3 === i % 3);
            return share.length > 0 ? p.send(share) : Promise.resolve();
          }));
          await new Promise((r) => setTimeout(r, GAP_MS));
        }
      } finally {
        await Promise.all(producers.map((p) => p.disconnect()));
      }
      await waitFor(() => Object.values(sinks).every((s) => s.records.length >= EVENTS), 300000, () => Object.entries(sinks).map(([k, s]) => `${k}=${s.records.length}`).join(' '));
      await new Promise((r) => setTimeout(r, 1500)); // duplicates, if any, would arrive now
      expect(Object.fromEntries(Object.entries(sinks).map(([k, s]) => [k, s.records.length]))).toEqual({ features: EVENTS, input: EVENTS, card: EVENTS, merchant: EVENTS });

      // Exactly one vector per event, pointing at the original input record, keyed and stamped as it.
      const inputAt = new Map(sinks.input.records.map((r) => [`${r.partition}:${r.offset}`, r]));
      const txOf = (v: FeatureVector, topic: string, m: Map<string, Seen<Transaction>>) => {
        expect(v.lineage.topic).toBe(topic);
        return m.get(`${v.lineage.partition}:${v.lineage.offset}`)!.value.transactionId;
      };
      const vectors = new Map<string, Seen<FeatureVector>>();
      for (const f of sinks.features.records) {
        const tx = txOf(f.value, extract.input.topic, inputAt);
        expect(vectors.has(tx)).toBe(false);
        vectors.set(tx, f);
        expect([f.key, f.value.key, f.headers['x-trace']]).toEqual([tx, tx, tx]);
        expect(f.value.ingestTime).toBe(inputAt.get(`${f.value.lineage.partition}:${f.value.lineage.offset}`)!.timestamp);
        expect(f.headers[DONE_HEADER]).toBe('tap'); // written by the chain extract+tap: a split-mode tap would skip it
        expect(f.headers[LINEAGE_HEADER]).toBeUndefined();
        expect(f.headers[KEY_HEADER]).toBeUndefined();
        // The model's order (what a model card's features.names lists), not the steps' order.
        expect(f.value.names).toEqual(vector.names);
        expect(f.value.featureSet).toBe('fraud_two_entities');
      }
      expect(vectors.size).toBe(EVENTS);

      // Per entity, the streaming values equal those of the same events keyed by that entity.
      const byTrace = (rows: Seen<FeatureVector>[]) => new Map(rows.map((r) => [r.headers['x-trace'], r.value]));
      const cardRef = byTrace(sinks.card.records);
      const merchantRef = byTrace(sinks.merchant.records);
      const valueOf = (v: FeatureVector, name: string) => v.values[v.names.indexOf(name)];
      const cardNames = ['card_txn_count_24h', 'card_amount_sum_24h', 'card_amount_max_24h', 'card_distinct_merchants_24h', 'card_ms_since_prev'];
      const merchantNames = merchantActivitySet().fields.map((f) => f.name);
      const baseNames = vector.base.names;
      const differing: string[] = [];
      for (const [tx, f] of vectors) {
        const c = cardRef.get(tx)!;
        const m = merchantRef.get(tx)!;
        for (const n of [...cardNames, ...baseNames]) if (valueOf(f.value, n) !== valueOf(c, n)) differing.push(`${tx} ${n}: ${valueOf(f.value, n)} != card-keyed ${valueOf(c, n)}`);
        for (const n of merchantNames) if (valueOf(f.value, n) !== valueOf(m, n)) differing.push(`${tx} ${n}: ${valueOf(f.value, n)} != merchant-keyed ${valueOf(m, n)}`);
      }
      // Not trivially equal: the windows saw earlier events of their entity.
      const nonZero = (names: string[]) => [...vectors.values()].filter((f) => valueOf(f.value, names[0]) > 0).length;
      // The internal topics' per-entity order against the send order (the hops' only way to differ).
      const t1 = repartitionTopicName(two.spec.name, 'extract');
      const t2 = entityTopicName(two.spec.name, 'extract', 'merchantId');
      const [rep1, rep2] = [await rawRecords(t1, EVENTS), await rawRecords(t2, EVENTS)];
      const sentWave = new Map(plan.flatMap((w, i) => w.map((tx) => [tx.transactionId, i] as const)));
      const inversions = (rows: KafkaMessage[]) => {
        const last = new Map<string, number>();
        const out = new Set<string>();
        for (const m of rows) {
          const entity = m.key!.toString();
          const w = sentWave.get(m.headers![KEY_HEADER]!.toString())!;
          if ((last.get(entity) ?? -1) > w) out.add(entity);
          last.set(entity, Math.max(w, last.get(entity) ?? -1));
        }
        return out;
      };
      const [cardsReordered, merchantsReordered] = [inversions(rep1), inversions(rep2)];
      process.stdout.write(`two-entity test: ${EVENTS} events in ${plan.length} waves; ${differing.length} differing values (${differing.slice(0, 5).join('; ')}); vectors with earlier events of their card ${nonZero(cardNames)}, of their merchant ${nonZero(merchantNames)}; reordered by the hops: ${cardsReordered.size} cards, ${merchantsReordered.size} merchants\n`);
      if (process.env.TWO_ENTITY_DEBUG) {
        // Is each internal topic's partition in send (wave) order across entities?
        for (const [name, rows] of [['T1', rep1], ['T2', rep2]] as const) {
          const maxWave = new Map<number, number>();
          let late = 0;
          const examples: string[] = [];
          for (const m of rows) {
            const p = (m as unknown as { partition: number }).partition;
            const w = sentWave.get(m.headers![KEY_HEADER]!.toString())!;
            if ((maxWave.get(p) ?? -1) > w) {
              late++;
              if (examples.length < 8) examples.push(`p${p}@${m.offset} wave ${w} after wave ${maxWave.get(p)} (from ${m.headers![LINEAGE_HEADER]})`);
            }
            maxWave.set(p, Math.max(w, maxWave.get(p) ?? -1));
          }
          process.stdout.write(`two-entity debug: ${name}: ${late} records behind a newer wave in their partition; ${examples.join('; ')}\n`);
        }
        const t1At = new Map(rep1.map((m) => [m.headers![KEY_HEADER]!.toString(), `T1 p${(m as unknown as { partition: number }).partition}@${m.offset}`]));
        for (const merchant of [...merchantsReordered].slice(0, 6)) {
          const rows = rep2.filter((m) => m.key!.toString() === merchant).map((m) => `wave ${sentWave.get(m.headers![KEY_HEADER]!.toString())} ${t1At.get(m.headers![KEY_HEADER]!.toString())} -> T2 p${(m as unknown as { partition: number }).partition}@${m.offset}`);
          process.stdout.write(`two-entity debug: ${merchant}: ${rows.join(', ')}\n`);
        }
      }
      for (const merchant of [...merchantsReordered].slice(0, 3)) {
        const rows = rep2.filter((m) => m.key!.toString() === merchant).map((m) => ({ wave: sentWave.get(m.headers![KEY_HEADER]!.toString()), from: m.headers![LINEAGE_HEADER]!.toString(), ts: Number(m.timestamp), at: m.offset }));
        process.stdout.write(`two-entity test: merchant ${merchant} in ${t2}: ${JSON.stringify(rows)}\n`);
      }
      // The first entity: exactly as keyed by card (the first hop's guarantee, as for one entity).
      expect([...cardsReordered]).toEqual([]);
      expect(differing.filter((d) => !d.includes(' merchant_'))).toEqual([]);
      // The second: exactly as keyed by merchant (every difference would be explained by a merchant
      // the hops reordered).
      const txs = new Map(events.map((tx) => [tx.transactionId, tx]));
      expect(differing.filter((d) => !merchantsReordered.has(txs.get(d.split(' ')[0])!.merchantId))).toEqual([]);
      const merchantsWithSeveral = new Set(events.map((tx) => tx.merchantId).filter((m, i, all) => all.indexOf(m) !== i));
      process.stdout.write(`two-entity test: ${merchantsReordered.size} of ${merchantsWithSeveral.size} merchants with several events reordered by the hops; ${new Set(differing.map((d) => d.split(' ')[0])).size} of ${EVENTS} vectors differ in merchant windows\n`);
      if (STRICT) expect([...merchantsReordered]).toEqual([]);
      else expect(merchantsReordered.size).toBeLessThanOrEqual(Math.max(1, Math.floor(merchantsWithSeveral.size / 100)));
      expect(nonZero(merchantNames)).toBeGreaterThan(EVENTS / 4);

      // The internal topics: keyed by card (the event bytes) then by merchant (partial records), original timestamps.
      const sentAt = new Map(sinks.input.records.map((r) => [r.value.transactionId, r.timestamp]));
      expect([rep1.length, rep2.length]).toEqual([EVENTS, EVENTS]);
      for (const [rows, entity] of [[rep1, 'cardId'], [rep2, 'merchantId']] as const) {
        for (const m of rows) {
          const tx = m.headers![KEY_HEADER]!.toString();
          expect(m.key!.toString()).toBe(txs.get(tx)![entity]);
          expect(Number(m.timestamp)).toBe(sentAt.get(tx));
        }
      }
      // Replies: one copy per user stage (extract, tap), none from the internal steps.
      const replyStages = new Map<string, number>();
      for (const m of await rawRecords(replies, 2 * EVENTS)) {
        const s = m.headers![REPLY_STAGE_HEADER]!.toString();
        replyStages.set(s, (replyStages.get(s) ?? 0) + 1);
      }
      expect(Object.fromEntries(replyStages)).toEqual({ extract: EVENTS, tap: EVENTS });

      // Counters and metrics name each internal step.
      expect(['extract-repartition', 'extract-cardId', 'extract'].map((s) => [p2.stageCounters(s).consumed, p2.stageCounters(s).produced])).toEqual([[EVENTS, EVENTS], [EVENTS, EVENTS], [EVENTS, EVENTS]]);
      const metrics = await p2.metrics.registry.metrics();
      expect(metrics).toMatch(new RegExp(`tributary_stage_events_out_total\\{stage="extract-cardId",topic="${t2.replace(/\./g, '\\.')}"\\} ${EVENTS}`));

      // The cost, end to end: vector written (Kafka timestamp) minus input written, against the card-keyed reference's one stage.
      const latency = (rows: Seen<FeatureVector>[], sent: (r: Seen<FeatureVector>) => number) => {
        const ms = rows.map((r) => r.timestamp - sent(r)).sort((x, y) => x - y);
        return `p50 ${ms[Math.floor(ms.length * 0.5)]} ms, p99 ${ms[Math.floor(ms.length * 0.99)]} ms`;
      };
      const sentByTx = new Map(sinks.input.records.map((r) => [r.value.transactionId, r.timestamp]));
      process.stdout.write(`two-entity test: input -> vector through two hops ${latency(sinks.features.records, (r) => sentByTx.get(r.key!)!)}; card-keyed reference without a hop ${latency(sinks.card.records, (r) => r.value.ingestTime)}\n`);

      // Purge: both internal topics, up to what their reading step committed.
      const deleted = await p2.purgeRepartitions();
      expect(deleted).toBeGreaterThanOrEqual(2 * EVENTS);
      const admin = createKafka({ clientId: 'two-entity-test-admin', brokers: endpoints.brokers }).admin();
      await admin.connect();
      for (const [topic, group] of [[t1, `${two.spec.name}.extract-cardId`], [t2, `${two.spec.name}.extract`]]) {
        const [offsets, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: group, topics: [topic] })]);
        const committedBy = new Map(committed[0].partitions.map((p) => [p.partition, p.offset]));
        for (const o of offsets) expect([topic, o.low]).toEqual([topic, committedBy.get(o.partition)]);
      }
      await admin.disconnect();
    } finally {
      await Promise.allSettled(Object.values(sinks).map((s) => s.stop()));
      await Promise.allSettled([p2.stop(), pr.stop()]);
    }
  }, 900_000);
});
