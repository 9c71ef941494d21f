import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Feedback } from '../../src/client/generated/avro-types';
import { TopicProducer } from '../../src/client/topic-producer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { createKafka } from '../../src/kafka/client';
import { ensureTopics } from '../../src/kafka/admin';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import { BanditRewarder } from '../../src/routing/bandit-rewarder';
import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';
import { BanditStore, banditKeys } from '../../src/routing/bandit-store';
import { Pipeline } from '../../src/stages/pipeline';
import { stage, tempModelRepo, v1Topology } from '../helpers/model-repo';
import { redisTargets, type RedisTarget } from '../helpers/dedicated-redis';
import { testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';
import { fraudSchemas } from '../../examples/fraud/schemas';

const endpoints = testEndpoints();

/** The posteriors on the stack's single Redis, then on a 3-node Cluster of the test's own (routes spread over its shards). */
describe.each(redisTargets())('bandit routing (Thompson sampling, posteriors in Redis) on %s', (_label, connect) => {
  let target: RedisTarget;
  beforeAll(async () => {
    target = await connect();
  }, 60_000);
  afterAll(async () => target?.stop());

  it('counts rewards atomically and once per feedback record, from concurrent writers', async () => {
    const experiment = `atomic-${uniqueSuffix()}`;
    const [r1, r2, r3] = [target.client(), target.client(), target.client()];
    const [a, b] = [new BanditStore(r1, experiment), new BanditStore(r2, experiment)];
    const writes: Promise<boolean>[] = [];
    for (let i = 0; i < 400; i++) {
      writes.push(a.reward(`fb-${i}`, 'x', i % 4 !== 0)); // 300 successes, 100 failures
      writes.push(b.reward(`fb-${i}`, 'x', i % 4 !== 0)); // the same feedback again, racing: counted once
    }
    const counted = (await Promise.all(writes)).filter(Boolean).length;
    expect(counted).toBe(400);
    // A new instance (a restart) sees the same posterior.
    const c = new BanditStore(r3, experiment);
    expect(await c.posteriors(['x'])).toEqual([{ arm: 'x', successes: 300, failures: 100 }]);
  });

  it('records and reads back routes of many keys in one call (spread over the shards on a Cluster); a route in the pre-issue-13 layout is still read on a single Redis', async () => {
    const experiment = `routes-${uniqueSuffix()}`;
    const redis = target.client();
    const store = new BanditStore(redis, experiment);
    const routes = Array.from({ length: 300 }, (_, i) => ({ key: `tx-${i}`, arm: i % 3 === 0 ? 'bad' : 'stable', label: i % 2 === 0 }));
    await store.recordRoutes(routes);
    const read = await store.routesOf([...routes.map((r) => r.key), 'never-routed']);
    expect(read).toEqual([...routes.map(({ arm, label }) => ({ arm, label })), null]);
    if (redis.isCluster) {
      // Every master holds some of the experiment's routes (before issue 13 they all sat on one).
      const perNode = await Promise.all((redis as Cluster).nodes('master').map(async (node) => (await Promise.all(routes.map((r) => node.exists(banditKeys(experiment).route(r.key)).catch(() => 0)))).reduce((a, b) => a + b, 0)));
      expect(perNode).toHaveLength(3);
      expect(perNode.every((n) => n > 0)).toBe(true);
      expect(perNode.reduce((a, b) => a + b, 0)).toBe(routes.length);
    } else {
      await (redis as Redis).set(banditKeys(experiment).legacyRoute('old-key'), 'bad|1', 'EX', 60);
      expect(await store.routesOf(['old-key', 'tx-1'])).toEqual([{ arm: 'bad', label: true }, { arm: 'stable', label: false }]);
    }
  });

  it('shifts traffic away from the worse version as feedback arrives, keeping keys sticky', async () => {
    const suffix = uniqueSuffix();
    const experiment = `bandit-${suffix}`;
    // 'bad' is v1 with a decision threshold of 0: it flags everything, so its decisions are mostly wrong.
    const repo = tempModelRepo({
      '1': null,
      bad: (dir) => {
        const card = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
        card.threshold = 0;
        fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(card, null, 2));
      },
    });
    const topology = v1Topology(suffix, repo, (spec) => {
      const score = stage(spec, 'score');
      delete score.config.threshold; // each arm decides with its own card's threshold
      score.config.gate = false;
      score.config.routing = { experiment, arms: [{ name: 'stable', version: '1' }, { name: 'bad', version: 'bad', weight: 50, maxWeight: 50 }], bandit: { floor: 0.05, reweightIntervalMs: 500 } };
    });
    const feedbackTopic = `fraud.feedback.${suffix}`;
    const kafka = createKafka({ clientId: 'bandit-test', brokers: endpoints.brokers });
    await ensureTopics(kafka, [{ name: feedbackTopic, partitions: 1, schema: 'feedback' }]);
    const redis = target.client();
    const pipeline = await Pipeline.start({ topology, endpoints: { ...endpoints, redisUrl: target.url } });
    const rewarder = new BanditRewarder({ kafka, registry: new SchemaRegistryClient({ url: endpoints.schemaRegistryUrl }), redis, experiment, predictionsTopic: `fraud.predictions.${suffix}`, feedbackTopic, groupId: `bandit-${suffix}` });
    await rewarder.start();
    try {
      const store = new BanditStore(redis, experiment);
      const before = await store.posteriors(['stable', 'bad']);
      expect(before.every((p) => p.successes + p.failures === 0)).toBe(true);

      const g = new TransactionGenerator({ seed: 31 });
      const generated = Array.from({ length: 600 }, () => g.next());
      const producer = new TopicProducer({ ...endpoints, topic: `fraud.transactions.${suffix}`, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
      await producer.connect();
      await producer.send(generated.map((x) => x.tx));
      await producer.disconnect();
      await waitFor(() => rewarder.counters.routesRecorded >= 600, 60000, () => JSON.stringify(rewarder.counters));

      // Labels arrive later, keyed like the predictions.
      const labels = new TopicProducer({ ...endpoints, topic: feedbackTopic, schema: 'feedback', key: (f: Feedback) => f.key });
      await labels.connect();
      await labels.send(generated.map((x) => ({ key: x.tx.transactionId, label: x.isFraud, source: 'chargeback', labelTime: Date.now() })));
      await labels.disconnect();
      await waitFor(() => rewarder.counters.rewards >= 600, 60000, () => JSON.stringify(rewarder.counters));

      const [stable, bad] = await store.posteriors(['stable', 'bad']);
      expect(stable.successes + stable.failures + bad.successes + bad.failures).toBe(600);
      expect(stable.successes / (stable.successes + stable.failures)).toBeGreaterThan(bad.successes / (bad.successes + bad.failures) + 0.5);

      // After the next reweight the bad arm is down to about the exploration floor.
      const shareOfBad = async () => {
        const text = await pipeline.metrics.registry.getSingleMetricAsString('tributary_routing_share_ratio');
        const m = new RegExp(`tributary_routing_share_ratio\\{experiment="${experiment}",arm="bad"\\} ([0-9.e-]+)`).exec(text);
        return m ? Number(m[1]) : NaN;
      };
      await new Promise((r) => setTimeout(r, 1500)); // at least two reweight periods
      expect(await shareOfBad()).toBeLessThan(0.1);
      expect(await shareOfBad()).toBeGreaterThanOrEqual(0.04);
    } finally {
      await rewarder.stop();
      await pipeline.stop();
    }
  });
});
