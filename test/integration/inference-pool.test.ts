import * as path from 'node:path';
import type { Prediction } from '../../src/client/generated/avro-types';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { TopicProducer } from '../../src/client/topic-producer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { featureExtraction } from '../../src/stages/extraction';
import { onnxInference, type InferenceConfig, type InferenceProcessor } from '../../src/stages/inference';
import { Pipeline } from '../../src/stages/pipeline';
import { ProcessorRegistry } from '../../src/stages/registry';
import { isolatedTopology, testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { firstWorkingProvider } from '../helpers/execution-providers';
import { repoRoot } from '../../src/stack/paths';
import { fraudSchemas, type Transaction } from '../../examples/fraud/schemas';

const endpoints = testEndpoints();

/** The built-in processors, with the created onnx_inference processors captured for inspection. */
function capturingRegistry() {
  const created: InferenceProcessor[] = [];
  const registry = new ProcessorRegistry().register(featureExtraction).register({
    ...onnxInference,
    async create(config, ctx) {
      const p = (await onnxInference.create(config, ctx)) as InferenceProcessor;
      created.push(p);
      return p;
    },
  });
  return { registry, created };
}

describe('onnx_inference through the worker pool, on real Kafka', () => {
  it('pauses partitions while the bounded queue is full and resumes when it drains: every event scored once, queue and heap stay bounded', async () => {
    const suffix = uniqueSuffix();
    const maxQueueRows = 64;
    const topology = isolatedTopology('topologies/fraud-detection.yaml', suffix, (spec) => {
      const score = spec.stages.find((s) => s.name === 'score')!;
      (score.config as unknown as InferenceConfig).pool = { workers: 2, maxBatchSize: 32, maxQueueDelayMs: 0, maxQueueRows };
      (score.config as unknown as InferenceConfig).executionProviders = ['cuda', 'cpu'];
      (score.config as unknown as InferenceConfig).intraOpNumThreads = 1;
      // Big consumed batches, three partitions at once: far more rows arrive than the queue holds.
      score.consumer = { ...(score.consumer ?? {}), partitionsConsumedConcurrently: 3 };
    });
    const { registry, created } = capturingRegistry();
    const pipeline = await Pipeline.start({ topology, endpoints, processors: registry });
    const predictions: string[] = [];
    const consumer = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: `fraud.predictions.${suffix}`, schema: 'prediction', groupId: `test-${suffix}` });
    try {
      expect(created).toHaveLength(1);
      const { pool } = created[0];
      // ['cuda', 'cpu'] runs on cpu here, on cuda on a CUDA host.
      const expected = await firstWorkingProvider(path.join(repoRoot(), 'models', pool.card.name, pool.card.version, 'model.onnx'), ['cuda', 'cpu']);
      expect(pool.providers()).toEqual([expected, expected]);
      await consumer.run((p: Prediction) => {
        predictions.push(p.key);
      });

      // Sample the heap while the burst is processed.
      const heap: number[] = [];
      const sampler = setInterval(() => heap.push(process.memoryUsage().heapUsed), 100);
      const generator = new TransactionGenerator({ seed: 21 });
      const N = 12000;
      const events: Transaction[] = Array.from({ length: N }, () => generator.next().tx);
      const producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: `fraud.transactions.${suffix}`, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
      await producer.connect();
      for (let i = 0; i < N; i += 2000) await producer.send(events.slice(i, i + 2000));
      await producer.disconnect();

      await waitFor(() => predictions.length >= N, 150000, () => `${predictions.length}/${N} predictions`);
      clearInterval(sampler);
      await new Promise((r) => setTimeout(r, 1000));

      const scoreRunner = pipeline.runners.find((r) => r.stageNames.includes('score'))!;
      // Exactly once each (no loss, no duplicates without failures).
      expect(predictions).toHaveLength(N);
      expect(new Set(predictions)).toEqual(new Set(events.map((e) => e.transactionId)));
      // The queue never held more than its bound; the stage paused partitions instead.
      expect(pool.batcher.peakQueuedRows).toBeLessThanOrEqual(maxQueueRows);
      expect(scoreRunner.counters.backpressurePauses).toBeGreaterThan(0);
      expect(pool.saturated()).toBe(false);
      const saturations = await pool.metrics.registry.getSingleMetricAsString('tributary_inference_queue_saturated_total');
      expect(saturations).toMatch(new RegExp(`version="${pool.card.version}"} [1-9]`));
      const mb = (b: number) => Math.round(b / 1048576);
      // eslint-disable-next-line no-console
      console.log(`backpressure: ${N} events, pauses=${scoreRunner.counters.backpressurePauses}, peakQueuedRows=${pool.batcher.peakQueuedRows}/${maxQueueRows}, heapUsed min/max=${mb(Math.min(...heap))}/${mb(Math.max(...heap))} MB over ${heap.length} samples`);
    } finally {
      await consumer.stop();
      await pipeline.stop();
    }
  });
});
