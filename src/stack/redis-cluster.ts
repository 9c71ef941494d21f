import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { findFreePorts, LOCALHOST } from './ports';

const run = promisify(execFile);

export interface RedisClusterOptions {
  /** Master nodes; default 3, the least `redis-cli --cluster create` accepts. */
  nodes?: number;
  /**
   * Replicas per master (`--cluster-replicas`); default 0. With replicas the Cluster fails over:
   * a replica of a master that stays unreachable past nodeTimeoutMs is promoted in its place.
   */
  replicas?: number;
  /** Working dir for the nodes' cluster config files; default a fresh temp dir (removed on stop). */
  dir?: string;
  redisServerPath?: string;
  redisCliPath?: string;
  /**
   * Keep each node's data across a stop and start (an append-only file per node, fsynced every
   * second and on a clean shutdown): fault tests restart nodes, and a Redis restarted without
   * persistence comes back empty, which no client can recover from. Default false.
   */
  persistent?: boolean;
  /** cluster-node-timeout: how long a node is unreachable before the others mark it failed (Redis default 15000). */
  nodeTimeoutMs?: number;
}

/** A node's place in the Cluster, as CLUSTER NODES reports it. */
export interface ClusterNodeRole {
  port: number;
  id: string;
  role: 'master' | 'replica';
  /** A replica's master (its port); undefined for a master. */
  masterPort?: number;
  /** Whether the others consider it failed. */
  failed: boolean;
}

/**
 * A local Redis Cluster of `nodes` masters (and `replicas` replicas of each) on free loopback
 * ports: `redis-server --cluster-enabled yes` per node (client and cluster-bus ports both chosen
 * free), joined by `redis-cli --cluster create ... --cluster-replicas R --cluster-yes`, ready once
 * every node reports cluster_state:ok and every replica's link to its master is up.
 */
export class LocalRedisCluster {
  private constructor(
    readonly ports: number[],
    private readonly children: ChildProcess[],
    /** Each node's redis-server command line (the same one restarts it: same node id, slots and data). */
    private readonly commands: Array<{ path: string; args: string[] }>,
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
    const n = (opts.nodes ?? 3) * (1 + (opts.replicas ?? 0));
    const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-redis-cluster-'));
    fs.mkdirSync(dir, { recursive: true });
    const free = await findFreePorts(2 * n);
    const ports = free.slice(0, n);
    const commands = ports.map((port, i) => ({
      path: opts.redisServerPath ?? 'redis-server',
      args: [
        ...['--port', String(port), '--cluster-port', String(free[n + i]), '--bind', LOCALHOST, '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--save', '', '--dir', dir],
        // One append-only dir per node: they share `dir`, and Redis 7's default dir name would collide.
        ...(opts.persistent ? ['--appendonly', 'yes', '--appendfsync', 'everysec', '--appenddirname', `appendonly-${port}`] : ['--appendonly', 'no']),
        ...(opts.nodeTimeoutMs ? ['--cluster-node-timeout', String(opts.nodeTimeoutMs)] : []),
      ],
    }));
    const children = commands.map((c) => spawn(c.path, c.args, { stdio: 'ignore' }));
    const cluster = new LocalRedisCluster(ports, children, commands, dir, opts.dir === undefined);
    try {
      await cluster.waitFor(async (c) => (await c.ping()) === 'PONG', 'answer PING');
      await run(opts.redisCliPath ?? 'redis-cli', ['--cluster', 'create', ...ports.map((p) => `${LOCALHOST}:${p}`), '--cluster-replicas', String(opts.replicas ?? 0), '--cluster-yes']);
      await cluster.waitFor(async (c) => /cluster_state:ok/.test(await c.cluster('INFO')), 'reach cluster_state:ok');
      // A replica counts once it has synced with its master (writes are replicated from then on).
      await cluster.waitFor(async (c) => {
        const info = await c.info('replication');
        return /role:master/.test(info) || /master_link_status:up/.test(info);
      }, 'sync with its master');
      // Gossip has converged: every node's CLUSTER NODES lists every node, with the masters and
      // replicas `create` assigned (a node may still list fewer, or a replica as a master, for a
      // moment after the syncs above; callers and fault tests read roles from any one node).
      const masters = opts.nodes ?? 3;
      await cluster.waitFor(async (c) => {
        const rows = nodeRows((await c.cluster('NODES')) as string);
        return rows.length === n && rows.filter(isMasterRow).length === masters;
      }, `list all ${n} nodes with ${masters} masters`);
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  private async waitFor(check: (client: Redis) => Promise<boolean>, what: string, timeoutMs = 20_000, ports = this.ports): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const port of ports) {
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

  /** Every node's role and master, as the node on `askPort` (default the first live one) sees them. */
  async roles(askPort?: number): Promise<ClusterNodeRole[]> {
    const ports = askPort ? [askPort] : this.ports.filter((p) => this.running(p));
    const client = new Redis({ host: LOCALHOST, port: ports[0], lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const rows = nodeRows((await client.cluster('NODES')) as string);
      const portOf = (addr: string) => Number(/:(\d+)@/.exec(addr)?.[1]);
      const byId = new Map(rows.map((r) => [r[0], portOf(r[1])]));
      return rows.map((r) => {
        const master = isMasterRow(r);
        return { port: portOf(r[1]), id: r[0], role: master ? 'master' : 'replica', masterPort: master ? undefined : byId.get(r[3]), failed: r[2].split(',').includes('fail') };
      });
    } finally {
      client.disconnect();
    }
  }

  /** Kills a node at once (SIGKILL: nothing flushed, no goodbye to the others), as a crashed host would. */
  async killNode(port: number): Promise<void> {
    const c = this.child(port);
    if (c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  }

  /** The process of the node on `port` (fault tests). */
  child(port: number): ChildProcess {
    return this.children[this.ports.indexOf(port)];
  }

  /** Stops one node cleanly (SIGTERM: with `persistent`, its data is flushed) and waits for it to exit. */
  async stopNode(port: number): Promise<void> {
    await stopChild(this.child(port));
  }

  /**
   * Starts a stopped node again with its own command line: it reloads its node id and slots from
   * its cluster config file (and its data with `persistent`) and rejoins; resolves once it answers
   * PING (the cluster may still report fail until the others clear its failure; see waitUntilOk).
   */
  async startNode(port: number): Promise<void> {
    const i = this.ports.indexOf(port);
    if (i < 0) throw new Error(`no node on port ${port}`);
    const old = this.children[i];
    if (old.exitCode === null && old.signalCode === null) throw new Error(`node ${LOCALHOST}:${port} is still running`);
    this.children[i] = spawn(this.commands[i].path, this.commands[i].args, { stdio: 'ignore' });
    await this.waitFor(async (c) => (await c.ping()) === 'PONG', 'answer PING', 20_000, [port]);
  }

  /** cluster_state as the node on `port` reports it: 'ok' (all slots served) or 'fail'. */
  async clusterState(port: number): Promise<string> {
    const client = new Redis({ host: LOCALHOST, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return /cluster_state:(\w+)/.exec(await client.cluster('INFO'))?.[1] ?? 'unknown';
    } finally {
      client.disconnect();
    }
  }

  /** Resolves once every running node reports cluster_state:ok (all slots served; a killed node is not asked). */
  async waitUntilOk(timeoutMs = 60_000): Promise<void> {
    await this.waitFor(async (c) => /cluster_state:ok/.test(await c.cluster('INFO')), 'reach cluster_state:ok', timeoutMs, this.ports.filter((p) => this.running(p)));
  }

  private running(port: number): boolean {
    const c = this.child(port);
    return c.exitCode === null && c.signalCode === null;
  }

  async stop(): Promise<void> {
    await Promise.all(this.children.map(stopChild));
    if (this.ownDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** CLUSTER NODES as rows of fields (id, address, flags, master id, ...), one per node. */
function nodeRows(text: string): string[][] {
  return text.trim().split('\n').map((l) => l.split(' '));
}

/** Whether a CLUSTER NODES row is a master (its flags name it). */
function isMasterRow(row: string[]): boolean {
  return row[2].split(',').includes('master');
}

/** SIGTERM (after SIGCONT, in case a test paused it) and wait for the exit; nothing for a process already gone. */
function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise<void>((resolve) => {
    c.once('exit', () => resolve());
    c.kill('SIGCONT');
    c.kill('SIGTERM');
  });
}
