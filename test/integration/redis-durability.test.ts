import { spawnSync } from 'node:child_process';
import { Registry } from 'prom-client';
import { isTransientError } from '../../src/engine/transient';
import { StreamingMetrics } from '../../src/features/streaming-metrics';
import { DurabilityTimeoutError, ReferenceStreamingState, StreamingState, streamKeys, type StreamEvent } from '../../src/features/streaming';
import { findFreePorts } from '../../src/stack/ports';
import { repoRoot } from '../../src/stack/paths';
import { createRedis, createRedisClient } from '../../src/util/redis';
import { redisKeySlot } from '../../src/util/redis-slot';
import { DedicatedRedisCluster } from '../helpers/dedicated-redis';
import { CLI, faultTopologyFile } from '../helpers/processes';
import { activitySet } from '../helpers/streaming-sets';
import { uniqueSuffix } from '../helpers/topology';

/** `n` events of a few cards from `from` on, 1 ms apart (event time = offset). */
function events(from: number, n: number): StreamEvent[] {
  return Array.from({ length: n }, (_, i) => ({ offset: from + i, eventTime: from + i, entities: [`card-${(from + i) % 7}`], values: [[String((from + i) % 13), `m${(from + i) % 3}`]] }));
}

const durable = { ...activitySet(5), config: { ...activitySet(5).config, durability: { replicas: 1, timeoutMs: 150 } } };

describe('streaming state durability on a Redis Cluster with replicas (3 masters + 3 replicas)', () => {
  let cluster: DedicatedRedisCluster;
  beforeAll(async () => {
    cluster = await DedicatedRedisCluster.start({ replicas: 1 });
  }, 60_000);
  afterAll(async () => cluster?.stop());

  it('starts 3 masters, each with one synced replica', async () => {
    const roles = await cluster.roles();
    expect(roles.filter((r) => r.role === 'master')).toHaveLength(3);
    const replicas = roles.filter((r) => r.role === 'replica');
    expect(replicas).toHaveLength(3);
    expect(new Set(replicas.map((r) => r.masterPort)).size).toBe(3);
  });

  it('computes the slot of a key as the Cluster does (CLUSTER KEYSLOT), hash tags included', async () => {
    const client = createRedis(`redis://127.0.0.1:${cluster.ports[0]}`);
    try {
      const keys = [...Array.from({ length: 150 }, (_, i) => `k${i}:${'x'.repeat(i % 9)}`), streamKeys.ckpt('ns', 3, 't', 1), '{}a', 'a{}b{c}', '{a}{b}', 'é{ü}', ''];
      for (const k of keys) expect([k, redisKeySlot(k)]).toEqual([k, Number(await client.cluster('KEYSLOT', k))]);
    } finally {
      client.disconnect();
    }
  });

  it('waits for a replica after each state write; with a replica stopped the batch fails as a transient error, and its retry returns the reference vectors', async () => {
    const registry = new Registry();
    const redis = createRedisClient(cluster.url);
    const state = new StreamingState(redis, `dur-${uniqueSuffix()}`, [durable], { metrics: StreamingMetrics.for(registry) });
    const ref = new ReferenceStreamingState([durable]);
    const stopped: number[] = [];
    try {
      expect(state.durability).toEqual({ replicas: 1, timeoutMs: 150 });
      await state.init();
      const epoch = await state.takeEpoch('t', 0);
      expect(await state.apply('t', 0, epoch, events(0, 40))).toEqual(ref.apply('t', 0, events(0, 40)));
      // Every replica already holds what its master acknowledged (WAIT returned).
      const roles = await cluster.roles();
      for (let g = 0; g < state.slotGroups; g++) {
        const key = streamKeys.ckpt(state.namespace, g, 't', 0);
        const master = (redis as unknown as { slots: string[][] }).slots[redisKeySlot(key)][0];
        const replica = roles.find((r) => r.role === 'replica' && `127.0.0.1:${r.masterPort}` === master)!;
        const onReplica = createRedis(`redis://127.0.0.1:${replica.port}`);
        await onReplica.call('READONLY');
        expect([g, await onReplica.get(key)]).toEqual([g, await redis.get(key)]);
        onReplica.disconnect();
      }
      // Replicas frozen: writes are acknowledged by the masters only.
      for (const r of roles.filter((x) => x.role === 'replica')) {
        cluster.child(r.port).kill('SIGSTOP');
        stopped.push(r.port);
      }
      const started = Date.now();
      const failed = await state.apply('t', 0, epoch, events(40, 40)).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(DurabilityTimeoutError);
      expect(isTransientError(failed)).toBe(true);
      expect((failed as Error).message).toMatch(/0 of 1 replicas acknowledged the state write within 150 ms/);
      expect(Date.now() - started).toBeLessThan(3000);
      expect((await registry.getSingleMetricAsString('tributary_streaming_durability_timeouts_total')).match(/ (\d+)$/m)![1]).not.toBe('0');
      for (const p of stopped.splice(0)) cluster.child(p).kill('SIGCONT');
      // The engine retries the batch: the same events, now replays of what the masters hold, give the same vectors.
      expect(await state.apply('t', 0, epoch, events(40, 40))).toEqual(ref.apply('t', 0, events(40, 40)));
      expect(state.stateBehindCount).toBe(0);
    } finally {
      for (const p of stopped) cluster.child(p).kill('SIGCONT');
      await state.reset();
      state.close();
      redis.disconnect();
    }
  });
});

describe('streaming state on a single Redis', () => {
  const url = () => process.env.REDIS_URL!;

  it('durability on a Redis without replicas: every write times out (transient), counted', async () => {
    const redis = createRedis(url());
    const registry = new Registry();
    const state = new StreamingState(redis, `dur1-${uniqueSuffix()}`, [durable], { metrics: StreamingMetrics.for(registry) });
    try {
      await state.init();
      const epoch = await state.takeEpoch('t', 0);
      const err = await state.apply('t', 0, epoch, events(0, 10)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DurabilityTimeoutError);
      expect(isTransientError(err)).toBe(true);
      expect(await registry.getSingleMetricAsString('tributary_streaming_durability_timeouts_total')).toMatch(/ 1$/m);
    } finally {
      await state.reset();
      state.close();
      redis.disconnect();
    }
  });

  it('state found behind a checkpoint committed before (Redis lost acknowledged writes): counted, reported, processing goes on', async () => {
    const redis = createRedis(url());
    const registry = new Registry();
    const set = activitySet(5);
    const state = new StreamingState(redis, `behind-${uniqueSuffix()}`, [set], { metrics: StreamingMetrics.for(registry) });
    try {
      await state.init();
      const epoch = await state.takeEpoch('t', 0);
      await state.apply('t', 0, epoch, events(0, 20));
      // What a replica that missed the next batch would hold: the state as of offset 19.
      const snapshot = new Map<string, Buffer>();
      for (const k of await redis.keys(`tributary:st:{${state.namespace}*`)) snapshot.set(k, (await redis.dumpBuffer(k))!);
      await state.apply('t', 0, epoch, events(20, 20));
      expect(await state.checkpoint('t', 0)).toBe(39);
      // The failover: the state goes back to the snapshot (keys created since are gone).
      for (const k of await redis.keys(`tributary:st:{${state.namespace}*`)) await redis.del(k);
      for (const [k, v] of snapshot) await redis.restore(k, 0, v, 'REPLACE');
      expect(await state.checkpoint('t', 0)).toBe(19);
      const lost = new ReferenceStreamingState([set]);
      lost.apply('t', 0, events(0, 20));
      // Offsets 20-39 were committed in Kafka: the next batch starts at 40 and the windows lack 20-39 (what the reference without them gives).
      expect(await state.apply('t', 0, epoch, events(40, 10))).toEqual(lost.apply('t', 0, events(40, 10)));
      expect(state.stateBehindCount).toBe(1);
      expect(await registry.getSingleMetricAsString('tributary_streaming_state_behind_total')).toMatch(/ 1$/m);
      // Reported once: further batches go on without counting again.
      await state.apply('t', 0, epoch, events(50, 10));
      expect(state.stateBehindCount).toBe(1);
    } finally {
      await state.reset();
      state.close();
      redis.disconnect();
    }
  });
});

describe('a Redis Cluster unreachable at start', () => {
  it('`tributary run` exits non-zero within the connect deadline, naming the URL (credentials redacted) and the nodes tried', async () => {
    const ports = await findFreePorts(3);
    const url = `redis+cluster://ops:s3cret-pw@${ports.map((p) => `127.0.0.1:${p}`).join(',')}`;
    const file = faultTopologyFile(uniqueSuffix());
    const started = Date.now();
    const res = spawnSync(process.execPath, [CLI, 'run', file, '--metrics-port', '0'], {
      cwd: repoRoot(),
      encoding: 'utf8',
      timeout: 90_000,
      env: { ...process.env, REDIS_URL: url, TRIBUTARY_REDIS_CONNECT_TIMEOUT_MS: '3000', TRIBUTARY_LOG_LEVEL: 'info' },
    });
    const seconds = (Date.now() - started) / 1000;
    const out = `${res.stdout}${res.stderr}`;
    expect(res.signal).toBeNull(); // exited by itself, not killed by the timeout above
    expect(res.status).not.toBe(0);
    expect(out).toMatch(/Redis Cluster redis\+cluster:\/\/ops:\[redacted\]@127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+ not reachable within 3000 ms/);
    for (const p of ports) expect(out).toContain(`127.0.0.1:${p}`);
    expect(out).toMatch(/tried seed nodes .* for the slot map/);
    expect(out).not.toContain('s3cret-pw');
    // The deadline plus the start before it (topics, model load), far below a hang.
    expect(seconds).toBeLessThan(60);
  });

  // The operator commands that talk to Redis connect the same bounded way: an unreachable Redis is
  // a clear error after the deadline, not a Cluster client queueing commands forever (or a single
  // node retrying each command 20 times).
  it.each([
    ['features versions', ['features', 'versions', '--set', 'card_profile'], 'cluster'],
    ['models status', ['models', 'status'], 'cluster'],
    ['features gc (single node)', ['features', 'gc', '--set', 'card_profile'], 'single'],
  ])('`tributary %s` fails within the connect deadline, naming the URL with credentials redacted', async (_name, args, kind) => {
    const ports = await findFreePorts(3);
    const url = kind === 'cluster' ? `redis+cluster://ops:s3cret-pw@${ports.map((p) => `127.0.0.1:${p}`).join(',')}` : `redis://ops:s3cret-pw@127.0.0.1:${ports[0]}`;
    const started = Date.now();
    const res = spawnSync(process.execPath, [CLI, ...args], {
      cwd: repoRoot(),
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, REDIS_URL: url, TRIBUTARY_REDIS_CONNECT_TIMEOUT_MS: '2000' },
    });
    const seconds = (Date.now() - started) / 1000;
    const out = `${res.stdout}${res.stderr}`;
    expect(res.signal).toBeNull();
    expect(res.status).not.toBe(0);
    expect(out).toMatch(kind === 'cluster' ? /Redis Cluster redis\+cluster:\/\/ops:\[redacted\]@127\.0\.0\.1:\d+,.* not reachable within 2000 ms/ : /Redis redis:\/\/ops:\[redacted\]@127\.0\.0\.1:\d+ not reachable within 2000 ms/);
    expect(out).not.toContain('s3cret-pw');
    expect(seconds).toBeLessThan(30);
  });
});
