import type { Prediction } from '../../src/client/generated/avro-types';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { TopicProducer } from '../../src/client/topic-producer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { SliceLayout } from '../../src/routing/canary';
import { Pipeline } from '../../src/stages/pipeline';
import { tempModelRepo, v1Topology, stage } from '../helpers/model-repo';
import { testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { fraudSchemas } from '../../examples/fraud/schemas';

const endpoints = testEndpoints();

describe('canary routing between versions in the onnx_inference stage (real Kafka)', () => {
  it('routes each key to its sticky arm, records the route and the arm\'s version in every prediction', async () => {
    const suffix = uniqueSuffix();
    const repo = tempModelRepo({ '1': null, '2': null });
    const arms = [{ name: 'stable', version: '1' }, { name: 'candidate', version: '2', weight: 30 }];
    const topology = v1Topology(suffix, repo, (spec) => {
      stage(spec, 'score').config.routing = { experiment: 'canary-test', arms };
    });
    const pipeline = await Pipeline.start({ topology, endpoints });
    const predictions: Prediction[] = [];
    const consumer = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: `fraud.predictions.${suffix}`, schema: 'prediction', groupId: `verify-${suffix}` });
    try {
      await consumer.run((p) => void predictions.push(p));
      const producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: `fraud.transactions.${suffix}`, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
      await producer.connect();
      const generator = new TransactionGenerator({ seed: 3 });
      await producer.send(Array.from({ length: 400 }, () => generator.next().tx));
      await producer.disconnect();
      await waitFor(() => predictions.length >= 400, 40000, () => `${predictions.length}/400`);
      await new Promise((r) => setTimeout(r, 1000));
      expect(predictions).toHaveLength(400);
      const layout = new SliceLayout(arms);
      for (const p of predictions) {
        const arm = layout.route('canary-test', p.key);
        expect(p.route).toBe(`canary:${arm}`);
        expect(p.modelVersion).toBe(arm === 'candidate' ? '2' : '1');
      }
      const share = predictions.filter((p) => p.route === 'canary:candidate').length / predictions.length;
      expect(share).toBeGreaterThan(0.22);
      expect(share).toBeLessThan(0.38);
    } finally {
      await consumer.stop();
      await pipeline.stop();
    }
  });
});
