import { produceDemoEvents } from '../../examples/fraud/produce';
import { prepareFeatureSets } from '../../src/features/prepare';
import { DedicatedRedisCluster } from '../helpers/dedicated-redis';
import { committedKeys, faultTopologyFile, generatedKeys, lossAndDuplicates, recordFault, StageProcess } from '../helpers/processes';
import { readTopic, referenceValues, streamingIndexes, vectorDecoder } from '../helpers/streaming-reference';
import { isolatedTopology, testEndpoints, uniqueSuffix } from '../helpers/topology';

const endpoints = testEndpoints();

/** Sum of a counter's samples in a Prometheus exposition whose labels include `label` (e.g. stage="score"). */
async function counterSum(metricsUrl: string, name: string, label: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) && line.includes(label)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

/** Polls an async check (an error counts as not yet) every 100 ms until it holds. */
async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A master of the Cluster holding the window state is killed (kill -9: no goodbye, nothing flushed)
 * while events flow; its replica is promoted by the Cluster (node timeout 3 s). The streaming sets
 * ask for durability (WAIT for 1 replica after every state write, before the Kafka commit), so no
 * write the pipeline committed can be lost with the dead master. A promoted replica has no replica
 * of its own, so durable writes to its slots wait until one is attached: the dead node is started
 * again once the promotion is seen, and rejoins as the new master's replica (as an operator or an
 * orchestrator would bring it back).
 */
describe('Redis Cluster failover (3 masters + 3 replicas) with durable window state', () => {
  let cluster: DedicatedRedisCluster;
  beforeAll(async () => {
    cluster = await DedicatedRedisCluster.start({ replicas: 1, nodeTimeoutMs: 3000 });
  }, 60_000);
  afterAll(async () => cluster?.stop());

  it('kill -9 of a master mid-stream, its replica promoted: 0 lost, 0 duplicated, and every committed streaming vector equals an uninterrupted replay of the repartition log', async () => {
    const suffix = uniqueSuffix();
    const file = faultTopologyFile(suffix, (doc) => {
      doc.stages[0].repartition = { purgeIntervalMs: 3_600_000 }; // kept for the reference below
      for (const set of doc.features.sets) if (set.kind === 'windowed_aggregation') set.config = { ...set.config, durability: { replicas: 1, timeoutMs: 200 } };
    });
    await prepareFeatureSets(isolatedTopology('topologies/fraud-detection.yaml', suffix), cluster.url);
    const count = 1500;
    const seed = 1919;
    const topic = `fraud.transactions.${suffix}`;
    const proc = new StageProcess(file, [], { REDIS_URL: cluster.url });
    try {
      await proc.waitForLog('pipeline running', 90000);
      const metricsUrl = `${/"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(proc.output)![1]}/metrics`;
      const producing = produceDemoEvents({ ...endpoints, topic, count, rate: 100, seed });
      // Predictions over time (the score stage; the repartition hop before it needs no Redis), to measure the stall the failover causes.
      const samples: Array<{ at: number; out: number }> = [];
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          samples.push({ at: Date.now(), out: await counterSum(metricsUrl, 'tributary_stage_events_out_total', 'stage="score"').catch(() => NaN) });
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      await new Promise((r) => setTimeout(r, 4000));
      const before = await cluster.roles();
      const victim = before.find((r) => r.role === 'master')!;
      const heir = before.find((r) => r.role === 'replica' && r.masterPort === victim.port)!;
      const killedAt = Date.now();
      await cluster.killNode(victim.port);
      await until(async () => (await cluster.roles(heir.port)).find((r) => r.port === heir.port)?.role === 'master', 60000, `replica ${heir.port} promoted`);
      const promotionSeconds = (Date.now() - killedAt) / 1000;
      await cluster.waitUntilOk();
      // The dead node comes back and becomes the new master's replica (durable writes to its slots resume once it has synced).
      await cluster.startNode(victim.port);
      await until(async () => (await cluster.roles(heir.port)).some((r) => r.port === victim.port && r.role === 'replica' && r.masterPort === heir.port), 60000, `${victim.port} rejoined as a replica of ${heir.port}`);
      const rejoinedSeconds = (Date.now() - killedAt) / 1000;
      await producing;
      const seen = await committedKeys(endpoints, `fraud.predictions.${suffix}`, count, 150000, suffix);
      sampling = false;
      await sampler;
      // Stall: the longest time without a new prediction after the kill.
      expect(samples.filter((x) => x.at >= killedAt).some((x) => x.out > 0)).toBe(true);
      let last = samples.find((s) => s.at >= killedAt)?.out ?? 0;
      let since = killedAt;
      let stall = 0;
      for (const s of samples.filter((x) => x.at >= killedAt && Number.isFinite(x.out))) {
        if (s.out > last) {
          stall = Math.max(stall, s.at - since);
          last = s.out;
          since = s.at;
        }
      }
      const { lost, duplicated } = lossAndDuplicates(generatedKeys(seed, count), seen);
      recordFault({
        scenario: `Redis Cluster 3+3, durability {replicas: 1}: kill -9 of a master mid-stream; replica promoted ${promotionSeconds.toFixed(1)} s after the kill (node timeout 3 s), dead node back as its replica at ${rejoinedSeconds.toFixed(1)} s; pipeline stalled ${(stall / 1000).toFixed(1)} s`,
        events: count,
        lost,
        duplicated,
        recoverySeconds: stall / 1000,
      });
      expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
      expect(proc.output).not.toContain('streaming state went backwards');

      const decodeAll = vectorDecoder();
      const vectors = await decodeAll(await readTopic(`fraud.features.${suffix}`, count, false));
      expect(vectors).toHaveLength(count);
      const repTopic = `fraud-detection-${suffix}.extract-repartition`;
      const rows = await readTopic(repTopic, count, false);
      expect(rows).toHaveLength(count);
      const want = await referenceValues(suffix, repTopic, rows);
      const streaming = streamingIndexes(vectors[0]);
      expect(streaming).toHaveLength(5);
      const differing = vectors.filter((v) => streaming.some((i) => v.values[i] !== want.get(v.key)![i])).map((v) => v.key);
      expect(differing).toEqual([]);
      expect((await proc.stop()).code).toBe(0);
    } finally {
      await proc.stop();
    }
  });
});
