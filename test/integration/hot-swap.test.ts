import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';
import type { Prediction } from '../../src/client/generated/avro-types';
import { TopicConsumer } from '../../src/client/topic-consumer';
import { TopicProducer } from '../../src/client/topic-producer';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { readControl, setDesiredVersion } from '../../src/inference/model-control';
import { Pipeline } from '../../src/stages/pipeline';
import { repoRoot } from '../../src/stack/paths';
import { corruptWeights, impossibleGate, tempModelRepo, v1Topology, stage } from '../helpers/model-repo';
import { redisTargets, type RedisTarget } from '../helpers/dedicated-redis';
import { fraudSchemas, type FraudSchemaTypes, type Transaction } from '../../examples/fraud/schemas';
import { CLI } from '../helpers/processes';
import { testEndpoints, uniqueSuffix, waitFor } from '../helpers/topology';

const endpoints = testEndpoints();
const run = promisify(execFile);

/** The control plane (desired version, pub/sub notice, instance status) on the stack's single Redis and on a 3-node Redis Cluster. */
describe.each(redisTargets())('hot swap of model versions through real Kafka (onnx_inference hotSwap), control in %s', (_label, connect) => {
  const suffix = uniqueSuffix();
  // 1: live; 2: a good candidate; 3: gate bound v1 cannot meet; 4: corrupted weights.
  const repo = tempModelRepo({ '1': null, '2': null, '3': impossibleGate, '4': corruptWeights });
  const topology = v1Topology(suffix, repo, (spec) => {
    stage(spec, 'score').config.hotSwap = { policy: 'explicit', pollIntervalMs: 300 };
  });
  const group = `${topology.spec.name}.score`;
  let target: RedisTarget;
  let redis: Redis | Cluster;
  /** The CLI talks to the same Redis as the pipeline. */
  let cliEnv: NodeJS.ProcessEnv;
  let pipeline: Pipeline;
  const predictions: Prediction[] = [];
  let consumer: TopicConsumer<'prediction'>;
  let producer: TopicProducer<'transaction', FraudSchemaTypes>;
  const generator = new TransactionGenerator({ seed: 41 });
  const sent: Transaction[] = [];

  const send = async (n: number) => {
    const events = Array.from({ length: n }, () => generator.next().tx);
    sent.push(...events);
    await producer.send(events);
  };
  const live = async () => (await readControl(redis, group)).instances.map((i) => i.live);

  beforeAll(async () => {
    target = await connect();
    redis = target.client();
    cliEnv = { ...process.env, REDIS_URL: target.url };
    pipeline = await Pipeline.start({ topology, endpoints: { ...endpoints, redisUrl: target.url } });
    consumer = new TopicConsumer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: `fraud.predictions.${suffix}`, schema: 'prediction', groupId: `verify-${suffix}` });
    await consumer.run((p) => {
      predictions.push(p);
    });
    producer = new TopicProducer({ brokers: endpoints.brokers, schemaRegistryUrl: endpoints.schemaRegistryUrl, topic: `fraud.transactions.${suffix}`, schema: 'transaction', schemas: fraudSchemas, key: (tx) => tx.transactionId });
    await producer.connect();
  });
  afterAll(async () => {
    await producer?.disconnect();
    await consumer?.stop();
    await pipeline?.stop();
    await target?.stop();
  });

  it('refuses a candidate with a failing gate bound and one with corrupted weights while v1 keeps serving; the reasons show in metrics and `models status`', async () => {
    await send(200);
    await waitFor(() => predictions.length >= 200, 40000, () => `${predictions.length}/200 predictions`);
    expect(await live()).toEqual(['1']);

    await setDesiredVersion(redis, group, '3');
    await send(100); // traffic keeps flowing during the (refused) candidate's gate
    const refused3 = async () => (await readControl(redis, group)).instances[0]?.refused['3'];
    await waitUntil(refused3, 20000, 'v3 refused');
    expect(await refused3()).toMatch(/gate failed: confidence\.rocAuc: rocAuc 0\.94\d+ outside 0\.999/);

    await setDesiredVersion(redis, group, '4');
    const refused4 = async () => (await readControl(redis, group)).instances[0]?.refused['4'];
    await waitUntil(refused4, 20000, 'v4 refused');
    expect(await refused4()).toMatch(/gate failed: load: .*sha256 .* does not match/);
    expect(await live()).toEqual(['1']);

    await waitFor(() => predictions.length >= 300, 30000, () => `${predictions.length}/300 predictions`);
    expect(predictions.every((p) => p.modelVersion === '1')).toBe(true);

    const metrics = await pipeline.metrics.registry.metrics();
    expect(metrics).toMatch(new RegExp(`tributary_model_swap_total\\{model="fraud",stage="score",result="refused"\\} 2`));
    expect(metrics).toMatch(/tributary_model_live_version_info\{model="fraud",stage="score",version="1"\} 1/);

    const { stdout } = await run(process.execPath, [CLI, 'models', 'status', '--group', group], { cwd: repoRoot(), env: cliEnv });
    expect(stdout).toContain('fraud@1 live');
    expect(stdout).toMatch(/refused 3: gate failed/);
    expect(stdout).toMatch(/refused 4: gate failed: load: .*sha256/);
  });

  it('swaps to v2 under load between batches: earlier predictions carry v1, later ones v2, none lost or duplicated; rollback is one command', async () => {
    // Promote in the middle of a stream of events.
    const streaming = (async () => {
      for (let i = 0; i < 10; i++) {
        await send(30);
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    await new Promise((r) => setTimeout(r, 500));
    const { stdout } = await run(process.execPath, [CLI, 'models', 'promote', 'fraud@2', '--group', group, '--wait', '20000'], { cwd: repoRoot(), env: cliEnv });
    expect(stdout).toContain('fraud@2 live, previous 1');
    await streaming;
    await send(100); // certainly after the swap
    const total = sent.length;
    await waitFor(() => predictions.length >= total, 40000, () => `${predictions.length}/${total} predictions`);
    await new Promise((r) => setTimeout(r, 1500)); // duplicates, if any, would show now

    // None lost, none duplicated.
    expect(predictions).toHaveLength(total);
    expect(new Set(predictions.map((p) => p.key))).toEqual(new Set(sent.map((e) => e.transactionId)));
    // Per input partition, in offset order: v1 ... v1 then v2 ... v2 (the switch happens between batches).
    const byPartition = new Map<number, Prediction[]>();
    for (const p of predictions) byPartition.set(p.lineage.partition, [...(byPartition.get(p.lineage.partition) ?? []), p]);
    for (const list of byPartition.values()) {
      const versions = list.sort((a, b) => a.lineage.offset - b.lineage.offset).map((p) => p.modelVersion).join('');
      expect(versions).toMatch(/^1*2*$/);
    }
    const last100 = new Set(sent.slice(-100).map((e) => e.transactionId));
    expect(predictions.filter((p) => last100.has(p.key)).every((p) => p.modelVersion === '2')).toBe(true);
    expect(predictions.filter((p) => p.modelVersion === '1').length).toBeGreaterThanOrEqual(300);
    expect(predictions.every((p) => p.route === 'live' && typeof p.latencyMs === 'number')).toBe(true);
    const metrics = await pipeline.metrics.registry.metrics();
    expect(metrics).toMatch(/tributary_model_swap_total\{model="fraud",stage="score",result="swapped"\} 1/);
    expect(metrics).toMatch(/tributary_model_live_version_info\{model="fraud",stage="score",version="2"\} 1/);
    expect(metrics).toMatch(/tributary_model_live_version_info\{model="fraud",stage="score",version="1"\} 0/);

    // Rollback: one command back to the previous version.
    const back = await run(process.execPath, [CLI, 'models', 'rollback', '--group', group, '--wait', '20000'], { cwd: repoRoot(), env: cliEnv });
    expect(back.stdout).toContain('fraud@1 live, previous 2');
    const before = predictions.length;
    await send(50);
    await waitFor(() => predictions.length >= before + 50, 30000, () => `${predictions.length - before}/50 after rollback`);
    expect(predictions.slice(before).every((p) => p.modelVersion === '1')).toBe(true);
  });
});

async function waitUntil(probe: () => Promise<unknown>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
