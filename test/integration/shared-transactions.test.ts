/**
 * Exactly-once v2 (`transactions: shared`) through the real stack: a fused chain over 3 input
 * partitions commits its lanes' batches in shared transactions with the group generation; every
 * event is predicted exactly once (read_committed), offsets are committed, and fewer transactions
 * than lane batches were needed. A dead letter (undecodable record) rides in the same transactions.
 * The shared sink's Prometheus metrics (scraped from the pipeline's registry) agree with its counters.
 * Behind a repartition hop in the same process, a transaction that wrote the hop's records is
 * followed by one that waits for the chain to process them (commit.readerWaitMs), or not when 0;
 * that chain fetches with minBytes 1.
 */
import { fraudSchemas, type Transaction } from '../../examples/fraud/schemas';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { TopicProducer } from '../../src/client/topic-producer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { createKafka } from '../../src/kafka/client';
import { Pipeline } from '../../src/stages/pipeline';
import type { TopologySpec } from '../../src/topology/spec';
import { isolatedTopology, testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { sendRaw } from '../helpers/send-raw';

const endpoints = testEndpoints();

/** The value of one series in a Prometheus text exposition, picked by metric name and one label (`group="…"`, `sink="…"`; NaN: absent). */
function sample(text: string, name: string, label: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(label));
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** The demo topology without Redis: extract with the base feature set only, scored by model 1; then `edit`. */
function statelessTopology(edit: (spec: TopologySpec) => void) {
  return isolatedTopology('topologies/fraud-detection.yaml', uniqueSuffix(), (spec) => {
    delete spec.features;
    const extract = spec.stages.find((s) => s.name === 'extract')!;
    extract.config = { featureSet: { file: 'models/fraud/features/fraud_txn.yaml' } };
    const score = spec.stages.find((s) => s.name === 'score')!;
    score.config = { ...score.config, model: { repository: 'models', name: 'fraud', version: '1' } };
    edit(spec);
  });
}

describe('shared transactions (exactly-once v2) in the stage engine', () => {
  it('every event is predicted once, read_committed, offsets committed, several lanes per transaction; undecodable records dead-lettered; the shared-transaction metrics move with the traffic and match the sink\'s counters', async () => {
    const topology = statelessTopology((spec) => {
      for (const s of spec.stages) s.transactions = 'shared';
    });
    const input = topology.spec.stages[0].input.topic;
    const g = new TransactionGenerator({ seed: 91 });
    const events: Transaction[] = Array.from({ length: 900 }, () => g.next().tx);
    const pipeline = await Pipeline.start({ topology, endpoints, instanceId: `it-${uniqueSuffix()}` });
    // The chain's group; its process-wide sink is named by it too (the first shared group).
    const group = `group="${topology.spec.name}.extract"`;
    const sink = `sink="${topology.spec.name}.extract"`;
    const before = await pipeline.metrics.registry.metrics();
    const predictions: string[] = [];
    const deadLetters: string[] = [];
    const consumers = [
      new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: topology.spec.stages[1].output.topic, schema: 'prediction', groupId: `shared-verify-${uniqueSuffix()}` }),
      new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: topology.spec.deadLetter.topic, schema: 'dead-letter', groupId: `shared-verify-dlq-${uniqueSuffix()}` }),
    ];
    try {
      expect(pipeline.runners.map((r) => r.chainName)).toEqual(['extract+score']);
      await consumers[0].run((_v, meta) => void predictions.push(String(meta.key)));
      await consumers[1].run((v) => void deadLetters.push((v as { errorKind: string }).errorKind));
      const producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: input, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
      await producer.connect();
      for (let i = 0; i < events.length; i += 100) {
        await producer.send(events.slice(i, i + 100));
        await new Promise((r) => setTimeout(r, 50));
      }
      await producer.disconnect();
      await sendRaw(createKafka({ clientId: 'shared-test-raw', brokers: endpoints.brokers }), { topic: input, messages: [{ key: 'junk', value: Buffer.from('not avro') }] });
      await waitFor(() => predictions.length >= events.length && deadLetters.length >= 1, 90000, () => `${predictions.length} predictions, ${deadLetters.length} dead letters`);
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      await Promise.all(consumers.map((c) => c.stop()));
      await pipeline.stop();
    }
    // Exported from the start at 0 (alerts see the series), moved by the traffic.
    expect(sample(before, 'tributary_engine_shared_transactions_total', sink)).toBe(0);
    expect(sample(before, 'tributary_engine_shared_transaction_generation_refusals_total', group)).toBe(0);
    expect(predictions).toHaveLength(events.length);
    expect(new Set(predictions)).toEqual(new Set(events.map((e) => e.transactionId)));
    expect(deadLetters).toEqual(['NOT_AVRO']);
    const counters = pipeline.runners[0].sharedCounters!;
    expect(counters.generationRefusals).toBe(0);
    expect(counters.batches).toBeGreaterThan(counters.transactions); // lanes shared transactions
    const text = await pipeline.metrics.registry.metrics();
    expect(pipeline.runners[0].sharedCounters).toBeDefined();
    expect(text).toContain(`tributary_engine_shared_transaction_batches_total{chain="extract+score",${group}}`);
    expect(sample(text, 'tributary_engine_shared_transactions_total', sink)).toBe(counters.transactions);
    expect(sample(text, 'tributary_engine_shared_transaction_batches_total', group)).toBe(counters.batches);
    expect(sample(text, 'tributary_engine_shared_transaction_concurrent_retries_total', sink)).toBe(counters.concurrentRetries);
    expect(sample(text, 'tributary_engine_shared_transaction_generation_refusals_total', group)).toBe(0);
    // Every consumed record (the dead letter's included) was committed in exactly one transaction.
    expect(sample(text, 'tributary_engine_shared_transaction_records_count', sink)).toBe(counters.transactions);
    expect(sample(text, 'tributary_engine_shared_transaction_records_sum', sink)).toBe(events.length + 1);
    expect(sample(text, 'tributary_engine_shared_transaction_seconds_count', sink)).toBe(counters.transactions);
    expect(sample(text, 'tributary_engine_shared_transaction_seconds_sum', sink)).toBeGreaterThan(0);
    const admin = createKafka({ clientId: 'shared-test', brokers: endpoints.brokers }).admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchOffsets({ groupId: `${topology.spec.name}.extract`, topics: [input] });
      expect(offsets[0].partitions.reduce((n, p) => n + Number(p.offset), 0)).toBe(events.length + 1);
    } finally {
      await admin.disconnect();
    }
  });

  /** The stateless topology behind a hop (partitionBy: cardId): the hop and extract+score in one process, one shared sink. */
  async function throughHop(readerWaitMs: number | undefined) {
    const topology = statelessTopology((spec) => {
      (spec.stages.find((s) => s.name === 'extract') as { partitionBy?: string }).partitionBy = 'cardId';
      if (readerWaitMs !== undefined) for (const s of spec.stages) s.commit = { readerWaitMs };
    });
    const input = topology.spec.stages[0].input.topic;
    const g = new TransactionGenerator({ seed: 92 });
    const events: Transaction[] = Array.from({ length: 600 }, () => g.next().tx);
    const pipeline = await Pipeline.start({ topology, endpoints, instanceId: `it-${uniqueSuffix()}` });
    const predictions: string[] = [];
    const consumer = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: topology.spec.stages[1].output.topic, schema: 'prediction', groupId: `shared-hop-verify-${uniqueSuffix()}` });
    try {
      expect(pipeline.runners.map((r) => r.chainName).sort()).toEqual(['extract+score', 'extract-repartition']);
      // The chain behind the exactly-once hop fetches at once (its input comes a transaction at a
      // time) and waits long between commits; the hop keeps the default wait for 32 KiB on the
      // producers' topic.
      const fetchOf = (name: string) => pipeline.runners.find((r) => r.chainName === name)!.fetchSettings();
      expect(fetchOf('extract+score')).toEqual({ minBytes: 1, maxWaitTimeMs: 100 });
      expect(fetchOf('extract-repartition')).toEqual({ minBytes: 32 * 1024, maxWaitTimeMs: 5 });
      await consumer.run((_v, meta) => void predictions.push(String(meta.key)));
      const producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: input, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
      await producer.connect();
      // A trickle (20 events every 40 ms), as live traffic: each hop transaction is followed by the chain's.
      for (let i = 0; i < events.length; i += 20) {
        await producer.send(events.slice(i, i + 20));
        await new Promise((r) => setTimeout(r, 40));
      }
      await producer.disconnect();
      await waitFor(() => predictions.length >= events.length, 90000, () => `${predictions.length} predictions`);
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      await consumer.stop();
      await pipeline.stop();
    }
    expect(predictions).toHaveLength(events.length);
    expect(new Set(predictions)).toEqual(new Set(events.map((e) => e.transactionId)));
    // The process has one sink (whichever chain created it names it): its series by outcome, 0 when never observed.
    const text = await pipeline.metrics.registry.metrics();
    const count = (outcome: string) => {
      const n = sample(text, 'tributary_engine_shared_transaction_reader_wait_seconds_count', `outcome="${outcome}"`);
      return Number.isNaN(n) ? 0 : n;
    };
    const counters = pipeline.runners[0].sharedCounters!;
    // One sink for both chains: its counters, whichever runner is asked.
    expect(pipeline.runners[1].sharedCounters).toBe(counters);
    return { counters, caughtUp: count('caught_up'), timedOut: count('timed_out') };
  }

  it('behind a repartition hop in the same process, the transaction after one that wrote hop records waits for the chain to process them (readerWaitMs); readerWaitMs 0 never waits', async () => {
    const waiting = await throughHop(undefined);
    expect(waiting.counters.readerWaits).toBe(waiting.caughtUp + waiting.timedOut);
    expect(waiting.counters.readerWaitTimeouts).toBe(waiting.timedOut);
    // The chain processed the hop's records before the next cut, many times over (the wait is what lets it).
    expect(waiting.caughtUp).toBeGreaterThan(5);
    const off = await throughHop(0);
    expect(off.counters.readerWaits).toBe(0);
    expect(off.caughtUp + off.timedOut).toBe(0);
  }, 240_000);
});
