import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { findFreePorts, LOCALHOST } from './ports';

const run = promisify(execFile);

export interface RedisClusterOptions {
  /** Master nodes (no replicas); default 3, the least `redis-cli --cluster create` accepts. */
  nodes?: number;
  /** Working dir for the nodes' cluster config files; default a fresh temp dir (removed on stop). */
  dir?: string;
  redisServerPath?: string;
  redisCliPath?: string;
}

/**
 * A local Redis Cluster of `nodes` masters on free loopback ports: `redis-server --cluster-enabled
 * yes` per node (client and cluster-bus ports both chosen free), joined by `redis-cli --cluster
 * create ... --cluster-replicas 0 --cluster-yes`, ready once every node reports cluster_state:ok.
 */
export class LocalRedisCluster {
  private constructor(
    readonly ports: number[],
    private readonly children: ChildProcess[],
    private readonly dir: string,
    private readonly ownDir: boolean,
  ) {}

  /** Seed nodes for an ioredis Cluster client. */
  get startupNodes(): Array<{ host: string; port: number }> {
    return this.ports.map((port) => ({ host: LOCALHOST, port }));
  }

  /** `redis+cluster://host:port,host:port,...` (what createRedisClient accepts). */
  get url(): string {
    return `redis+cluster://${this.ports.map((p) => `${LOCALHOST}:${p}`).join(',')}`;
  }

  static async start(opts: RedisClusterOptions = {}): Promise<LocalRedisCluster> {
    const n = opts.nodes ?? 3;
    const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-redis-cluster-'));
    fs.mkdirSync(dir, { recursive: true });
    const free = await findFreePorts(2 * n);
    const ports = free.slice(0, n);
    const children = ports.map((port, i) =>
      spawn(
        opts.redisServerPath ?? 'redis-server',
        ['--port', String(port), '--cluster-port', String(free[n + i]), '--bind', LOCALHOST, '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--save', '', '--appendonly', 'no', '--dir', dir],
        { stdio: 'ignore' },
      ),
    );
    const cluster = new LocalRedisCluster(ports, children, dir, opts.dir === undefined);
    try {
      await cluster.waitFor(async (c) => (await c.ping()) === 'PONG', 'answer PING');
      await run(opts.redisCliPath ?? 'redis-cli', ['--cluster', 'create', ...ports.map((p) => `${LOCALHOST}:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
      await cluster.waitFor(async (c) => /cluster_state:ok/.test(await c.cluster('INFO')), 'reach cluster_state:ok');
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  private async waitFor(check: (client: Redis) => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const port of this.ports) {
      for (;;) {
        const client = new Redis({ host: LOCALHOST, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        client.on('error', () => undefined);
        let ok = false;
        try {
          await client.connect();
          ok = await check(client);
        } catch {
          ok = false;
        } finally {
          client.disconnect();
        }
        if (ok) break;
        if (Date.now() > deadline) throw new Error(`redis cluster node ${LOCALHOST}:${port} did not ${what} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** The process of the node on `port` (fault tests). */
  child(port: number): ChildProcess {
    return this.children[this.ports.indexOf(port)];
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map((c) =>
        c.exitCode !== null || c.signalCode !== null
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              c.once('exit', () => resolve());
              c.kill('SIGCONT');
              c.kill('SIGTERM');
            }),
      ),
    );
    if (this.ownDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
