import { spawn, type ChildProcess } from 'node:child_process';
import { findFreePort } from '../../src/stack/ports';
import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';
import { LocalRedisCluster as DedicatedRedisCluster } from '../../src/stack/redis-cluster';
import { createRedis, createRedisClient } from '../../src/util/redis';

/** A redis-server of its own (optionally with AUTH) for tests that pause or reconfigure Redis. */
export class DedicatedRedis {
  private constructor(
    readonly port: number,
    readonly child: ChildProcess,
    readonly password?: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(password?: string): Promise<DedicatedRedis> {
    const port = await findFreePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    if (password) args.push('--requirepass', password);
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    const redis = new DedicatedRedis(port, child, password);
    const deadline = Date.now() + 15000;
    for (;;) {
      const client = createRedis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null }, password ? { REDIS_PASSWORD: password } : {});
      try {
        await client.connect();
        if ((await client.ping()) === 'PONG') return redis;
      } catch {
        if (Date.now() > deadline) throw new Error('dedicated redis-server did not start');
      } finally {
        client.disconnect();
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  pause(): void {
    this.child.kill('SIGSTOP');
  }

  resume(): void {
    this.child.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    this.child.kill('SIGCONT');
    this.child.kill('SIGTERM');
    await new Promise((r) => this.child.once('exit', r));
  }
}

export { DedicatedRedisCluster };

/** A Redis a test runs against: its URL, a client on it, and how to let it go. */
export interface RedisTarget {
  url: string;
  /** True for a server started for this test (empty: batch sets must be loaded into it). */
  dedicated: boolean;
  client(): Redis | Cluster;
  stop(): Promise<void>;
}

/**
 * The Redis targets state-bearing tests run on (`describe.each`): the stack's single Redis and a
 * 3-node Redis Cluster of the test's own (keys spread over shards, scripts per slot group).
 */
export function redisTargets(): Array<[string, () => Promise<RedisTarget>]> {
  /** A target whose clients are all disconnected by its stop (before the servers go). */
  const target = (url: string, dedicated: boolean, stopServers: () => Promise<void>): RedisTarget => {
    const clients: Array<Redis | Cluster> = [];
    return {
      url,
      dedicated,
      client: () => {
        const c = createRedisClient(url);
        clients.push(c);
        return c;
      },
      stop: async () => {
        clients.splice(0).forEach((c) => c.disconnect());
        await stopServers();
      },
    };
  };
  return [
    ['a single Redis', async () => {
      const url = process.env.REDIS_URL;
      if (!url) throw new Error("REDIS_URL is not set: the integration global setup publishes the stack's Redis");
      return target(url, false, async () => undefined);
    }],
    ['a 3-node Redis Cluster', async () => {
      const cluster = await DedicatedRedisCluster.start();
      return target(cluster.url, true, () => cluster.stop());
    }],
  ];
}
