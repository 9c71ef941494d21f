import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';
import { repoRoot } from '../util/paths';

/**
 * Redis Lua scripts kept in src/features/scripts/*.lua. They are read relative to the repository
 * root, so the same files serve ts-jest (src/) and the compiled dist/ build.
 */
export function readScript(name: string): string {
  return fs.readFileSync(path.join(repoRoot(), 'src', 'features', 'scripts', `${name}.lua`), 'utf8');
}

export interface FeatureScripts {
  tribFlip(pointer: string, versions: string, version: string, now: string, meta: string): Promise<string>;
  tribStreamLoad(...args: Array<string | number>): Promise<[string | null, string[], ...string[][]]>;
  tribStreamCommit(...args: Array<string | number | Buffer>): Promise<'OK' | Array<string | number>>;
  tribEpochRaise(key: string, epoch: string): Promise<number>;
  tribBatchRead(...args: string[]): Promise<[string | null, number, ...Array<Array<string | null>>]>;
}

/** A single Redis or a Redis Cluster client (both take the same commands; a Cluster routes by key slot). */
export type RedisClient = Redis | Cluster;

/** Defines the scripts as ioredis commands (EVALSHA, falling back to EVAL once per connection). */
export function defineFeatureScripts<R extends RedisClient>(redis: R): R & FeatureScripts {
  const r = redis as R & FeatureScripts & { __tribScripts?: boolean };
  if (!r.__tribScripts) {
    redis.defineCommand('tribFlip', { numberOfKeys: 2, lua: readScript('flip') });
    redis.defineCommand('tribStreamLoad', { lua: readScript('stream-load') });
    redis.defineCommand('tribStreamCommit', { lua: readScript('stream-commit') });
    redis.defineCommand('tribEpochRaise', { numberOfKeys: 1, lua: readScript('epoch-raise') });
    redis.defineCommand('tribBatchRead', { lua: readScript('batch-read') });
    // ioredis' auto-pipelining routes a script by its first argument, taken as its key; the stream
    // scripts' first argument is their key count, so on a Cluster they would be queued for the
    // wrong node (and the pipeline refused: keys of another slot group). They go out on their own.
    const ignored = new Set(redis.options.autoPipeliningIgnoredCommands ?? []);
    for (const name of ['tribStreamLoad', 'tribStreamCommit']) ignored.add(name);
    redis.options.autoPipeliningIgnoredCommands = [...ignored]; // a fresh array: the client's default one is shared
    r.__tribScripts = true;
  }
  return r;
}
