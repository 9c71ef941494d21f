import * as fs from 'fs';
import * as path from 'path';
import Redis from 'ioredis';
import { pollUntilAnswering, type LaunchedServer } from './launched';
import { LOCALHOST } from './ports';
import { spawnDetached, wholeArg } from './process';
import type { RedisState } from './state';

export interface RedisServerOptions {
  /** Server dir (created if missing): working dir and log file. */
  dataDir: string;
  port: number;
  /** Default `redis-server`. */
  redisServerPath?: string;
}

export type RedisServerInfo = RedisState;

export function redisUrl(port: number): string {
  return `redis://${LOCALHOST}:${port}`;
}

/** Command-line fragments that identify this Redis (redis-server rewrites its title to `redis-server 127.0.0.1:PORT`). */
export function redisProcessMarkers(port: number): string[] {
  return ['redis-server', wholeArg(`${LOCALHOST}:${port}`)];
}

export function redisLogFile(dataDir: string): string {
  return path.join(dataDir, 'redis.log');
}

/** True when PING answers PONG. */
export async function redisAnswers(url: string, timeoutMs = 3_000): Promise<boolean> {
  const client = new Redis(url, {
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
    ['--port', String(opts.port), '--bind', LOCALHOST, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', opts.dataDir],
    { cwd: opts.dataDir, logFile },
  );
  const url = redisUrl(opts.port);
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
        answers: () => redisAnswers(url, 1_000),
      }),
  };
}

export async function startRedisServer(opts: RedisServerOptions, timeoutMs = 30_000): Promise<RedisServerInfo> {
  const launched = await launchRedisServer(opts);
  await launched.waitUntilReady(timeoutMs);
  return launched.info;
}
