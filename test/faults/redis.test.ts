import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { produceDemoEvents } from '../../examples/fraud/produce';
import { prepareFeatureSets } from '../../src/features/prepare';
import { repoRoot } from '../../src/stack/paths';
import { createRedis } from '../../src/util/redis';
import { DedicatedRedis, DedicatedRedisCluster } from '../helpers/dedicated-redis';
import { CLI, committedKeys, exactlyOnceAgainstInput, faultTopologyFile, inputKeys, recordFault, StageProcess } from '../helpers/processes';
import { isolatedTopology, testEndpoints, uniqueSuffix } from '../helpers/topology';

const endpoints = testEndpoints();

/**
 * GET /readyz's status. A pooled keep-alive connection the server closed while idle can fail one
 * request with "other side closed" (seen once in CI after minutes without a request): that is the
 * HTTP client's race, not a readiness answer, so a socket error is retried (a server that is really
 * gone fails every try and the status is -1).
 */
async function readyStatus(url: string): Promise<number> {
  for (let i = 0; i < 3; i++) {
    try {
      return (await fetch(`${url}/readyz`)).status;
    } catch {
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  return -1;
}

/** What a test does to Redis mid-stream, and how it undoes it. */
interface Outage {
  begin(): Promise<void> | void;
  /** Called about once a second while the outage lasts (to observe what the servers report). */
  during?(): Promise<void>;
  end(): Promise<void> | void;
}

/**
 * The demo topology runs on `redisUrl` while 1200 events are produced at 40/s; 3 s in, `outage`
 * begins and lasts `downMs`, then ends. The pipeline must report not-ready during it, stay up,
 * report ready again, and every input must come out exactly once.
 */
async function outageMidStream(scenario: string, redisUrl: string, outage: Outage, downMs: number, seed: number): Promise<void> {
  const suffix = uniqueSuffix();
  const file = faultTopologyFile(suffix);
  await prepareFeatureSets(isolatedTopology('topologies/fraud-detection.yaml', suffix), redisUrl);
  const local = { ...endpoints, redisUrl };
  const proc = new StageProcess(file, [], { REDIS_URL: redisUrl });
  try {
    await proc.waitForLog('pipeline running', 90000);
    const url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(proc.output)![1];
    const count = 1200;
    const producing = produceDemoEvents({ ...local, topic: `fraud.transactions.${suffix}`, count, rate: 40, seed });
    await new Promise((r) => setTimeout(r, 3000));
    await outage.begin();
    const stoppedAt = Date.now();
    let sawNotReady = false;
    while (Date.now() - stoppedAt < downMs) {
      const res = await fetch(`${url}/readyz`).catch(() => undefined);
      if (res && res.status === 503) sawNotReady = true;
      await outage.during?.();
      await new Promise((r) => setTimeout(r, 1000));
    }
    await outage.end();
    const resumedAt = Date.now();
    await producing;
    const input = await inputKeys(local.brokers, `fraud.transactions.${suffix}`, count);
    const seen = await committedKeys(local, `fraud.predictions.${suffix}`, input.length, 150000, suffix);
    const { lost, duplicated } = exactlyOnceAgainstInput(input, seen);
    recordFault({ scenario, events: input.length, lost, duplicated, recoverySeconds: (Date.now() - resumedAt) / 1000 });
    expect(sawNotReady).toBe(true);
    expect(proc.running()).toBe(true);
    expect(await readyStatus(url)).toBe(200);
    expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
  } finally {
    await proc.stop();
  }
}

describe('Redis outages and security', () => {
  it('Redis stopped for 30 s mid-stream: the pipeline reports not-ready, pauses, recovers by itself, nothing lost or duplicated', async () => {
    const redis = await DedicatedRedis.start();
    try {
      await outageMidStream('Redis stopped 30 s mid-stream', redis.url, { begin: () => redis.pause(), end: () => redis.resume() }, 30000, 707);
    } finally {
      await redis.stop();
    }
  });

  it('Redis AUTH: credentials come from a password file; a wrong password fails clearly and is never printed', async () => {
    const password = `redis-${Math.random().toString(36).slice(2)}`;
    const redis = await DedicatedRedis.start(password);
    try {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-redis-auth-'));
      const passwordFile = path.join(dir, 'password');
      fs.writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
      const file = faultTopologyFile(uniqueSuffix());
      const run = (env: Record<string, string>) =>
        spawnSync(process.execPath, [CLI, 'features', 'load', '--set', 'merchant_risk', '--topology', file], {
          cwd: repoRoot(),
          encoding: 'utf8',
          timeout: 60000,
          env: { ...process.env, REDIS_URL: redis.url, TRIBUTARY_LOG_LEVEL: 'debug', ...env },
        });
      const ok = run({ REDIS_PASSWORD_FILE: passwordFile });
      expect(ok.status).toBe(0);
      const client = createRedis(redis.url, {}, { REDIS_PASSWORD: password });
      expect((await client.keys('*merchant_risk*')).length).toBeGreaterThan(0);
      client.disconnect();
      expect(`${ok.stdout}${ok.stderr}`).not.toContain(password);

      const bad = run({ REDIS_PASSWORD: 'not-the-password' });
      expect(bad.status).not.toBe(0);
      expect(`${bad.stdout}${bad.stderr}`).toMatch(/WRONGPASS|NOAUTH|invalid username-password/i);
      expect(`${bad.stdout}${bad.stderr}`).not.toContain('not-the-password');
    } finally {
      await redis.stop();
    }
  });
});

/**
 * The same outage on a 3-node Redis Cluster (window state per slot group over three shards, batch
 * sets and model control there too). Nodes are really stopped and started again (SIGTERM, then the
 * same command line: same node id and slots, data kept in an append-only file as a production
 * Cluster would), not paused: the client sees refused connections, and with one master gone the
 * others first serve their slots and then, once they mark it failed, answer CLUSTERDOWN for all.
 */
describe('Redis Cluster outages (3 masters, no replicas)', () => {
  let cluster: DedicatedRedisCluster;
  beforeAll(async () => {
    // A 5 s node timeout (Redis' default is 15 s) so the one-master case reaches the Cluster's failed state within the test's 20 s.
    cluster = await DedicatedRedisCluster.start({ persistent: true, nodeTimeoutMs: 5000 });
  }, 60_000);
  afterAll(async () => cluster?.stop());

  it('every node stopped for 30 s mid-stream, then started: not-ready, pauses, recovers by itself, nothing lost or duplicated', async () => {
    const all: Outage = {
      begin: async () => void (await Promise.all(cluster.ports.map((p) => cluster.stopNode(p)))),
      end: async () => void (await Promise.all(cluster.ports.map((p) => cluster.startNode(p)))),
    };
    await outageMidStream('Redis Cluster: all 3 nodes stopped 30 s mid-stream', cluster.url, all, 30000, 708);
  });

  it('one master stopped for 20 s mid-stream while the others serve (its slots down, then the whole Cluster failed), then started: not-ready, recovers, nothing lost or duplicated', async () => {
    await cluster.waitUntilOk();
    const port = cluster.ports[1];
    // The surviving masters' view: first ok (they serve their slots), then fail once they mark the stopped one failed.
    const states = new Set<string>();
    const oneMaster: Outage = {
      begin: () => cluster.stopNode(port),
      during: async () => void states.add(await cluster.clusterState(cluster.ports[0])),
      end: () => cluster.startNode(port),
    };
    await outageMidStream('Redis Cluster: 1 of 3 masters stopped 20 s mid-stream', cluster.url, oneMaster, 20000, 709);
    expect([...states].sort()).toEqual(['fail', 'ok']);
  });
});
