import * as fs from 'node:fs';
import Redis, { Cluster, type RedisOptions } from 'ioredis';
import { TributaryError } from './errors';
import { createLogger } from './logger';
import { redactUrlCredentials } from './redact';

/**
 * One way to open Redis everywhere, so security and timeouts are uniform:
 * - the URL may carry credentials (`redis://user:pass@host:port`, `rediss://` for TLS);
 * - otherwise REDIS_USERNAME and REDIS_PASSWORD or REDIS_PASSWORD_FILE supply AUTH (secrets stay out of files in the repo);
 * - REDIS_TLS_CA_FILE adds a CA for `rediss://` servers;
 * - a command timeout turns a stalled server into an error, so a batch fails and is retried instead of hanging.
 */
export function redisOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): RedisOptions {
  const options: RedisOptions = { maxRetriesPerRequest: 3, commandTimeout: Number(env.TRIBUTARY_REDIS_COMMAND_TIMEOUT_MS ?? 5000) };
  if (env.REDIS_USERNAME) options.username = env.REDIS_USERNAME;
  const password = env.REDIS_PASSWORD_FILE ? fs.readFileSync(env.REDIS_PASSWORD_FILE, 'utf8').trim() : env.REDIS_PASSWORD;
  if (password) options.password = password;
  if (env.REDIS_TLS_CA_FILE) options.tls = { ca: [fs.readFileSync(env.REDIS_TLS_CA_FILE, 'utf8')] };
  return options;
}

export function createRedis(url: string, overrides: RedisOptions = {}, env: NodeJS.ProcessEnv = process.env): Redis {
  const fromUrl = new URL(url);
  const options = redisOptionsFromEnv(env);
  // Credentials in the URL win over the environment.
  if (fromUrl.password) delete options.password;
  if (fromUrl.username) delete options.username;
  return new Redis(url, { ...options, ...overrides });
}

const CLUSTER_SCHEME = /^redis(s?)\+cluster:\/\//;

/**
 * A Redis Cluster client from `redis+cluster://[user:pass@]host:port,host:port,...`
 * (`rediss+cluster://` for TLS): the listed nodes are seeds, the client discovers the rest and
 * routes each command by its key's slot. Same security options and timeouts as createRedis.
 */
export function createRedisCluster(url: string, overrides: RedisOptions = {}, env: NodeJS.ProcessEnv = process.env): Cluster {
  const { nodes, username, password, tls } = parseClusterUrl(url);
  const options = redisOptionsFromEnv(env);
  // Credentials in the URL win over the environment.
  if (username) options.username = username;
  if (password) options.password = password;
  if (tls && !options.tls) options.tls = {};
  const cluster = new Cluster(nodes, {
    redisOptions: { ...options, ...overrides },
    enableAutoPipelining: true,
    // Reconnect to a node that went away, as a single-node client does. ioredis' default (null)
    // drops a lost node and waits for a MOVED to rediscover it; found by the outage tests in
    // test/faults/redis.test.ts, that made a Redis restart lose records or hang:
    // - one master down: commands for its slots went to another node and came back as MOVED to
    //   the lost one; an auto-pipeline mixing several such slots does not retry and hands the
    //   MOVED to the caller, which the engine takes for a bad record (dead-lettered);
    // - every node down: the pool empties, the client reconnects as a whole and queues commands
    //   with no deadline (the command timeout starts only when a command reaches a node), so a
    //   batch hung through the outage and /readyz stayed 200.
    // A node kept and reconnecting instead fails its commands after maxRetriesPerRequest attempts
    // (MaxRetriesPerRequestError) or the command timeout: the engine retries the batch with backoff
    // and reports not-ready until the node is back. A node that leaves the Cluster for good drops
    // out at the next slot refresh.
    clusterNodeRetryStrategy: clusterNodeRetryDelay,
    // A node kept reconnecting no longer triggers a MOVED, which was how the client learned of a
    // replica promoted in a failed master's place; re-read the slot map every 5 s instead (one
    // CLUSTER SLOTS per client), so commands find the new master within seconds.
    slotsRefreshInterval: 5000,
  });
  logClusterErrors(cluster);
  return cluster;
}

/** Delay before a Cluster client reconnects to a node it lost: 100 ms more per attempt, at most 2 s. */
export function clusterNodeRetryDelay(times: number): number {
  return Math.min(100 * times, 2000);
}

/**
 * Without a listener ioredis prints every failed slot refresh to stderr (several a second while the
 * Cluster is down); the engine reports the outage itself, so one structured line per 10 s is enough.
 */
function logClusterErrors(cluster: Cluster): void {
  const log = createLogger('redis-cluster');
  let lastLog = 0;
  cluster.on('error', (err: Error) => {
    if (Date.now() - lastLog < 10_000) return;
    lastLog = Date.now();
    log.warn({ err: `${err.name}: ${err.message}` }, 'Redis Cluster client error (it keeps reconnecting)');
  });
}

/** The seed nodes and credentials of a `redis+cluster://` URL; throws on anything else. */
export function parseClusterUrl(url: string): { nodes: Array<{ host: string; port: number }>; username?: string; password?: string; tls: boolean } {
  const m = CLUSTER_SCHEME.exec(url);
  if (!m) throw new Error(`not a cluster URL (redis+cluster://host:port,...): ${url}`);
  let rest = url.slice(m[0].length).replace(/\/.*$/, '');
  let username: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const [user, pass] = rest.slice(0, at).split(':').map(decodeURIComponent);
    username = user || undefined;
    password = pass || undefined;
    rest = rest.slice(at + 1);
  }
  const nodes = rest.split(',').map((hp) => {
    const i = hp.lastIndexOf(':');
    return { host: i > 0 ? hp.slice(0, i) : '', port: Number(hp.slice(i + 1)) };
  });
  if (nodes.some((n) => !n.host || !Number.isInteger(n.port) || n.port <= 0)) throw new Error(`bad cluster URL (want host:port,host:port,...): ${url}`);
  return { nodes, username, password, tls: m[1] === 's' };
}

/** createRedis for `redis://` / `rediss://`, createRedisCluster for `redis+cluster://` / `rediss+cluster://`. */
export function createRedisClient(url: string, overrides: RedisOptions = {}, env: NodeJS.ProcessEnv = process.env): Redis | Cluster {
  return CLUSTER_SCHEME.test(url) ? createRedisCluster(url, overrides, env) : createRedis(url, overrides, env);
}

/** How long a process waits at start for Redis to answer (TRIBUTARY_REDIS_CONNECT_TIMEOUT_MS; default 30 s, as for topics the broker must serve). */
export function redisConnectTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const ms = Number(env.TRIBUTARY_REDIS_CONNECT_TIMEOUT_MS ?? 30_000);
  return Number.isFinite(ms) && ms > 0 ? ms : 30_000;
}

/** Redis (or a Redis Cluster: every seed node) could not be reached at start within the deadline. */
export class RedisUnreachableError extends TributaryError {}

/**
 * Resolves once the client is ready (a Cluster: the slot map read from a seed node), or disconnects
 * it and throws a RedisUnreachableError naming the URL (credentials redacted), the nodes tried and
 * the last error each gave. Only for the start: a Cluster client queues commands until it has a
 * slot map, with no deadline (the command timeout starts when a command reaches a node), so an
 * unreachable Cluster would otherwise hang the start silently. Once ready, an outage is retried
 * as before (the engine retries batches and reports not-ready).
 */
export async function waitUntilRedisReady(client: Redis | Cluster, url: string, timeoutMs = redisConnectTimeoutMs()): Promise<void> {
  if (client.status === 'ready') return;
  const errors = new Map<string, string>();
  const cluster = client.isCluster;
  const seeds = cluster ? parseClusterUrl(url).nodes.map((n) => `${n.host}:${n.port}`) : [new URL(url).host];
  const onNodeError = (err: Error, address?: string) => errors.set(address ?? seeds[0], err.message);
  const onError = (err: Error & { lastNodeError?: Error }) => {
    if (!cluster) errors.set(seeds[0], err.message);
    else if (err.lastNodeError) errors.set('last', err.lastNodeError.message);
  };
  client.on('node error', onNodeError);
  client.on('error', onError);
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      timer = setTimeout(() => reject(new Error('deadline')), timeoutMs);
    });
  } catch {
    client.disconnect();
    const what = cluster ? `Redis Cluster ${redactUrlCredentials(url)}` : `Redis ${redactUrlCredentials(url)}`;
    const tried = cluster ? `tried seed nodes ${seeds.join(', ')} for the slot map (CLUSTER SLOTS), reconnecting until the deadline` : `tried ${seeds[0]}, reconnecting until the deadline`;
    const last = [...errors].map(([node, msg]) => (node === 'last' ? msg : `${node}: ${msg}`));
    throw new RedisUnreachableError(`${what} not reachable within ${timeoutMs} ms (TRIBUTARY_REDIS_CONNECT_TIMEOUT_MS): ${tried}; last errors: ${last.length > 0 ? [...new Set(last)].join('; ') : 'none reported'}`);
  } finally {
    clearTimeout(timer);
    client.off('node error', onNodeError);
    client.off('error', onError);
  }
}

/** createRedisClient, then waitUntilRedisReady: for a process's start, which must fail clearly rather than hang. */
export async function connectRedisClient(url: string, overrides: RedisOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<Redis | Cluster> {
  const client = createRedisClient(url, overrides, env);
  await waitUntilRedisReady(client, url, redisConnectTimeoutMs(env));
  return client;
}
