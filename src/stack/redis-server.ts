import * as fs from 'fs';
import * as path from 'path';
import Redis, { type RedisOptions } from 'ioredis';
import { pollUntilAnswering, type LaunchedServer } from './launched';
import { LOCALHOST } from './ports';
import { spawnDetached, wholeArg } from './process';
import type { RedisState } from '../util/stack-state';
import type { TlsMaterial } from './tls';

export interface RedisServerOptions {
  /** Server dir (created if missing): working dir and log file. */
  dataDir: string;
  port: number;
  /** Default `redis-server`. */
  redisServerPath?: string;
  /**
   * When given, Redis serves TLS only (`--tls-port`, plain port closed) with this certificate; clients
   * use `rediss://` and REDIS_TLS_CA_FILE=`tls.caFile`. Client certificates are not required.
   */
  tls?: Pick<TlsMaterial, 'caFile' | 'certFile' | 'keyFile'>;
}

export type RedisServerInfo = RedisState;

export function redisUrl(port: number, tls = false): string {
  return `${tls ? 'rediss' : 'redis'}://${LOCALHOST}:${port}`;
}

/** redis-server arguments that move it to TLS on `port` (Debian's and the official image's builds include TLS). */
export function redisTlsArgs(port: number, tls: NonNullable<RedisServerOptions['tls']>): string[] {
  return ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile, '--tls-ca-cert-file', tls.caFile, '--tls-auth-clients', 'no'];
}

/** Command-line fragments that identify this Redis (redis-server rewrites its title to `redis-server 127.0.0.1:PORT`). */
export function redisProcessMarkers(port: number): string[] {
  return ['redis-server', wholeArg(`${LOCALHOST}:${port}`)];
}

export function redisLogFile(dataDir: string): string {
  return path.join(dataDir, 'redis.log');
}

/** True when PING answers PONG. `tls` for a `rediss://` server (e.g. `{ ca: [pem] }`). */
export async function redisAnswers(url: string, timeoutMs = 3_000, tls?: RedisOptions['tls']): Promise<boolean> {
  const client = new Redis(url, {
    tls,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** Spawns redis-server (no persistence, loopback only) detached. Does not wait for it to answer. */
export async function launchRedisServer(opts: RedisServerOptions): Promise<LaunchedServer<RedisServerInfo>> {
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const logFile = redisLogFile(opts.dataDir);
  const proc = await spawnDetached(
    opts.redisServerPath ?? 'redis-server',
    [
      '--port',
      String(opts.port),
      '--bind',
      LOCALHOST,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--dir',
      opts.dataDir,
      // Later arguments win: with TLS the plain port is closed and the same port number serves TLS.
      ...(opts.tls ? redisTlsArgs(opts.port, opts.tls) : []),
    ],
    { cwd: opts.dataDir, logFile },
  );
  const url = redisUrl(opts.port, opts.tls !== undefined);
  const probeTls = opts.tls ? { ca: [fs.readFileSync(opts.tls.caFile, 'utf8')] } : undefined;
  const info: RedisServerInfo = { url, pid: proc.pid, port: opts.port, dataDir: opts.dataDir, logFile };
  return {
    info,
    waitUntilReady: (timeoutMs) =>
      pollUntilAnswering({
        server: 'redis',
        what: `PING on ${url}`,
        proc,
        logFile,
        timeoutMs,
        intervalMs: 100,
        answers: () => redisAnswers(url, 1_000, probeTls),
      }),
  };
}

export async function startRedisServer(opts: RedisServerOptions, timeoutMs = 30_000): Promise<RedisServerInfo> {
  const launched = await launchRedisServer(opts);
  await launched.waitUntilReady(timeoutMs);
  return launched.info;
}
