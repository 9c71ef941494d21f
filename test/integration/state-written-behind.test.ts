/**
 * The streaming state written behind the vectors (BatchScope, src/engine/chain.ts), against the
 * real stack: two pipelines of one stage share the input's partitions, and producers key by
 * transaction id into `partitionBy: none`, so each card's events arrive on every partition and both
 * processes keep copies of the same cards. A process whose copy the other changed has its commit
 * refused as stale after its vectors went on: the chain runs the chunk again (RerunBatchError).
 * Asserted end to end: every event gets exactly one committed vector, the reruns happened, and the
 * state applied every event once (its `applied` count over all slot groups).
 */
import Redis from 'ioredis';
import type { FeatureVector } from '../../src/client/generated/avro-types';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { TopicProducer } from '../../src/client/topic-producer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { fraudSchemas } from '../../examples/fraud/schemas';
import { StreamingState } from '../../src/features/streaming';
import type { StreamingFeatureSetSpec } from '../../src/features/spec';
import { Pipeline } from '../../src/stages/pipeline';
import { isolatedTopology, testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';

const endpoints = testEndpoints();
const CARDS = 6;
const WAVES = 8;
const PER_WAVE = 45;

describe('streaming state written behind the vectors (real stack)', () => {
  it('two processes sharing cards across partitions: stale commits rerun their chunks, every event gets one committed vector, and the state applies every event once', async () => {
    const suffix = uniqueSuffix();
    const ns = `behind-${suffix}`;
    const topology = isolatedTopology('topologies/fraud-detection.yaml', suffix, (spec) => {
      const extract = spec.stages.find((s) => s.name === 'extract')!;
      extract.partitionBy = 'none';
      extract.config = { ...extract.config, vector: { set: 'behind_card', version: 1 }, features: ['card_activity'], stateNamespace: ns };
      spec.stages = [extract];
    });
    const extract = topology.spec.stages[0];
    const first = await Pipeline.start({ topology, endpoints });
    const second = await Pipeline.start({ topology, endpoints });
    const vectors: string[] = [];
    const consumer = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: extract.output.topic, schema: 'feature-vector', groupId: `behind-out-${suffix}` });
    const producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: extract.input.topic, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
    const redis = new Redis(endpoints.redisUrl!);
    try {
      await consumer.run((v: FeatureVector) => void vectors.push(v.key));
      await producer.connect();
      // Both members hold partitions before anything is sent: each card is then on both sides.
      await waitFor(() => first.runners[0].lanesHeld > 0 && second.runners[0].lanesHeld > 0, 60000, () => `lanes held: ${first.runners[0].lanesHeld} / ${second.runners[0].lanesHeld}`);
      const gen = new TransactionGenerator({ seed: 2718 });
      const sent: string[] = [];
      // Waves: each one processed before the next, so every wave finds copies the other process changed.
      for (let w = 0; w < WAVES; w++) {
        const wave = Array.from({ length: PER_WAVE }, (_, k) => ({ ...gen.next().tx, cardId: `card-${k % CARDS}` }));
        await producer.send(wave);
        sent.push(...wave.map((tx) => tx.transactionId));
        await waitFor(() => vectors.length >= sent.length, 60000, () => `${vectors.length} of ${sent.length} vectors`);
      }
      await new Promise((r) => setTimeout(r, 1000)); // a duplicate would arrive now
      expect(vectors).toHaveLength(sent.length);
      expect(new Set(vectors)).toEqual(new Set(sent));
      // The reruns happened (the test would prove nothing without them) ...
      const reruns = async (p: Pipeline) => ((await p.metrics.registry.getSingleMetric('tributary_streaming_stale_commits_total')?.get())?.values ?? []).filter((v) => v.labels.outcome === 'rerun').reduce((n, v) => n + v.value, 0);
      expect((await reruns(first)) + (await reruns(second))).toBeGreaterThan(0);
      // ... and the state applied each event once: a rerun's refused commit wrote nothing.
      const set = topology.spec.features!.sets.find((s) => s.name === 'card_activity') as StreamingFeatureSetSpec;
      const stats = await new StreamingState(redis, ns, [set]).stats();
      expect(stats.applied).toBe(sent.length);
    } finally {
      await producer.disconnect();
      await consumer.stop();
      await Promise.all([first.stop(), second.stop()]);
      await new StreamingState(redis, ns, []).reset().catch(() => undefined);
      redis.disconnect();
    }
  }, 180000);
});
