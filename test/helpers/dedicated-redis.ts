import { spawn, type ChildProcess } from 'node:child_process';
import { findFreePort } from '../../src/stack/ports';
import { createRedis } from '../../src/util/redis';

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

export { LocalRedisCluster as DedicatedRedisCluster } from '../../src/stack/redis-cluster';
