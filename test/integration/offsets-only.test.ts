import * as path from 'node:path';
import type { Feedback } from '../../src/client/generated/avro-types';
import { TopicProducer } from '../../src/client/topic-producer';
import { offsetsOnlyConsumer, sideEffectProcessor } from '../../src/engine/offsets-only';
import { RetryLaterError } from '../../src/engine/transient';
import { ensureTopics } from '../../src/kafka/admin';
import { SchemaCatalog } from '../../src/kafka/avro-schemas';
import { AvroDecoder } from '../../src/kafka/avro-serde';
import { createKafka } from '../../src/kafka/client';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import { StageMetrics } from '../../src/monitoring/metrics';
import { repoRoot } from '../../src/stack/paths';
import { testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';

const endpoints = testEndpoints();
const kafka = createKafka({ clientId: 'test-offsets-only', brokers: endpoints.brokers });
const registry = new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl });
const catalog = new SchemaCatalog(path.join(repoRoot(), 'schemas'));

async function produceLabels(topic: string, n: number): Promise<void> {
  await ensureTopics(kafka, [{ name: topic, partitions: 2, schema: 'feedback' }]);
  const producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic, schema: 'feedback', key: (f: Feedback) => f.key });
  await producer.connect();
  await producer.send(Array.from({ length: n }, (_, i) => ({ key: `k${i}`, label: i % 2 === 0, source: 'test', labelTime: Date.now() })));
  await producer.disconnect();
}

async function committedTotal(groupId: string, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [res] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return res.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
  } finally {
    await admin.disconnect();
  }
}

describe('offsets-only consumers on the engine (side effects elsewhere, offsets committed)', () => {
  it('retries records that wait for other data quietly, commits every offset once processed, and a stop does not wait for waiting records', async () => {
    const suffix = uniqueSuffix();
    const topic = `offsets-only.${suffix}`;
    await produceLabels(topic, 200);
    const decoder = new AvroDecoder<unknown>(registry, catalog.get('feedback').type);
    const metrics = new StageMetrics();

    // Phase 1: the first two calls find their data missing (RetryLaterError), then it arrives.
    const seen = new Set<string>();
    let notYet = 2;
    const groupId = `offsets-only-${suffix}`;
    const first = offsetsOnlyConsumer({
      kafka,
      name: 'labels',
      groupId,
      inputs: [{ topic, decoder }],
      fromBeginning: true,
      metrics,
      processor: sideEffectProcessor(async (records) => {
        if (notYet-- > 0) throw new RetryLaterError('not yet');
        for (const r of records) seen.add((r.value as Feedback).key);
      }),
    });
    await Promise.all([first.waitForAssignment(30000), first.start()]);
    await waitFor(() => seen.size === 200, 30000, () => `${seen.size}/200 seen`);
    await first.stop();
    expect(await committedTotal(groupId, topic)).toBe(200);
    // Waiting is not a failure: no batch error counted, the chain was never unready for it.
    expect((await metrics.batchErrors.get()).values.reduce((n, v) => n + v.value, 0)).toBe(0);

    // Phase 2: 50 more records whose data never arrives: stop returns promptly and commits nothing of them.
    await produceLabels(topic, 50);
    const second = offsetsOnlyConsumer({
      kafka,
      name: 'labels',
      groupId,
      inputs: [{ topic, decoder }],
      fromBeginning: true,
      processor: sideEffectProcessor(async () => {
        throw new RetryLaterError('never');
      }),
    });
    await Promise.all([second.waitForAssignment(30000), second.start()]);
    await waitFor(() => Object.values(second.queued()).reduce((a, b) => a + b, 0) > 0, 30000, () => 'records queued');
    const stopping = Date.now();
    await second.stop();
    expect(Date.now() - stopping).toBeLessThan(10000);
    expect(await committedTotal(groupId, topic)).toBe(200);
  });
});
