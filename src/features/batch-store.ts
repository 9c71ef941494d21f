/**
 * Batch features in Redis: versioned namespaces, an atomically flipped "current" pointer, and
 * pipelined online reads with an in-process LRU.
 *
 * Key layout (set `S`, version `N`, entity `E`):
 *   tributary:fs:{S}:current          string  current version N (flipped by scripts/flip.lua)
 *   tributary:fs:{S}:versions         hash    N -> JSON meta {rows, loadedAt, status, retiredAt}
 *   tributary:fs:{S}:seq              string  INCR -> next version number
 *   tributary:fs:S:vN:{E}             hash    field -> value, plus `__ts` (ms the row's values are as of)
 * The entity hash carries the entity as its Redis Cluster hash tag, so entity rows spread over the
 * cluster and every set's row for one entity shares a slot; the per-set keys share the set's tag.
 * On a Cluster a pipeline must stay on one node, so the row writes and a batch's reads are sent as
 * single commands that the client auto-pipelines per node (`commandsFor`), and a version is
 * deleted key by key on each primary.
 * A reader uses one version per set for a whole batch (the version is part of every key it reads),
 * so a flip during a run gives each batch either the old or the new version entirely, never a mix.
 */
import type Redis from 'ioredis';
import type { Cluster } from 'ioredis';
import { LruCache } from './lru';
import { defineFeatureScripts, type RedisClient } from './scripts';
import { numericDefault, type BatchFeatureSetSpec } from './spec';

export const TS_FIELD = '__ts';
const PREFIX = 'tributary:fs';

export const batchKeys = {
  pointer: (set: string) => `${PREFIX}:{${set}}:current`,
  versions: (set: string) => `${PREFIX}:{${set}}:versions`,
  seq: (set: string) => `${PREFIX}:{${set}}:seq`,
  entity: (set: string, version: string, entity: string) => `${PREFIX}:${set}:v${version}:{${entity}}`,
  entityPattern: (set: string, version: string) => `${PREFIX}:${set}:v${version}:{*}`,
};

export interface VersionMeta {
  rows: number;
  loadedAt: number;
  status: 'loading' | 'current' | 'retired' | 'aborted';
  retiredAt?: number;
  source?: string;
}

/** One parsed row: entity id, as-of time and the field values (already typed). */
export interface FeatureRow {
  entity: string;
  ts: number;
  values: Record<string, number>;
}

/** The commands a batch read queues: a pipeline on a single Redis, direct commands on a Cluster. */
export interface BatchCommands {
  get(key: string): unknown;
  hexists(key: string, field: string): unknown;
  hmget(key: string, ...fields: string[]): unknown;
  /**
   * scripts/batch-read.lua (numkeys, keys, args): on a single Redis's pipeline, where one script
   * may read keys of any slot; absent on a Cluster, whose entity keys span slots.
   */
  tribBatchRead?(...args: string[]): unknown;
  /** Replies in queue order, as `[error, value]` pairs (a pipeline's `exec` shape). */
  exec(): Promise<Array<[Error | null, unknown]> | null>;
}

/**
 * A pipeline on a single Redis (one round trip). On a Cluster each command goes out alone and the
 * client's auto-pipelining groups them per node: keys of different entities live on different
 * shards, which one Cluster pipeline refuses.
 */
export function commandsFor(redis: RedisClient): BatchCommands {
  if (!redis.isCluster) return (redis as Redis).pipeline() as unknown as BatchCommands;
  const cluster = redis as Cluster;
  const sent: Array<Promise<unknown>> = [];
  const settle = (p: Promise<unknown>): Promise<[Error | null, unknown]> => p.then((v): [null, unknown] => [null, v], (e: Error): [Error, null] => [e, null]);
  return {
    get: (key) => sent.push(cluster.get(key)),
    hexists: (key, field) => sent.push(cluster.hexists(key, field)),
    hmget: (key, ...fields) => sent.push(cluster.hmget(key, ...fields)),
    exec: () => Promise.all(sent.map(settle)),
  };
}

/** Starts a new version: allocates its number and marks it loading. */
export async function beginVersion(redis: RedisClient, set: string, source?: string): Promise<string> {
  const version = String(await redis.incr(batchKeys.seq(set)));
  const meta: VersionMeta = { rows: 0, loadedAt: Date.now(), status: 'loading', source };
  await redis.hset(batchKeys.versions(set), version, JSON.stringify(meta));
  return version;
}

/** Writes rows of a version: one pipeline (one round trip) per call on a single Redis, auto-pipelined single commands on a Cluster. */
export async function writeRows(redis: RedisClient, set: string, version: string, rows: readonly FeatureRow[]): Promise<void> {
  if (rows.length === 0) return;
  const args = rows.map((r) => {
    const a: Array<string | number> = [TS_FIELD, r.ts];
    for (const [k, v] of Object.entries(r.values)) a.push(k, String(v));
    return a;
  });
  if (redis.isCluster) {
    // Rows hash to different shards: single commands, auto-pipelined per node by the client.
    await Promise.all(rows.map((r, i) => redis.hset(batchKeys.entity(set, version, r.entity), ...args[i])));
    return;
  }
  const p = (redis as Redis).pipeline();
  rows.forEach((r, i) => p.hset(batchKeys.entity(set, version, r.entity), ...args[i]));
  const res = await p.exec();
  const failed = res?.find(([err]) => err);
  if (failed) throw failed[0];
}

/** Makes `version` current atomically; returns the previous version ('' if none). */
export async function flipVersion(redis: RedisClient, set: string, version: string, rows: number, source?: string): Promise<string> {
  const r = defineFeatureScripts(redis);
  const meta: VersionMeta = { rows, loadedAt: Date.now(), status: 'current', source };
  return r.tribFlip(batchKeys.pointer(set), batchKeys.versions(set), version, String(Date.now()), JSON.stringify(meta));
}

export async function currentVersion(redis: RedisClient, set: string): Promise<string | null> {
  return redis.get(batchKeys.pointer(set));
}

export async function listVersions(redis: RedisClient, set: string): Promise<Record<string, VersionMeta>> {
  const all = await redis.hgetall(batchKeys.versions(set));
  return Object.fromEntries(Object.entries(all).map(([k, v]) => [k, JSON.parse(v) as VersionMeta]));
}

/** Deletes every key of one version (SCAN + UNLINK on each primary of a Cluster, or the single Redis). */
export async function deleteVersion(redis: RedisClient, set: string, version: string): Promise<number> {
  const nodes = redis.isCluster ? (redis as Cluster).nodes('master') : [redis as Redis];
  let deleted = 0;
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', batchKeys.entityPattern(set, version), 'COUNT', 1000);
      cursor = next;
      if (keys.length === 0) continue;
      // On a Cluster one UNLINK must stay within a slot, and every entity has its own.
      deleted += redis.isCluster ? (await Promise.all(keys.map((k) => node.unlink(k)))).reduce((a, b) => a + b, 0) : await node.unlink(...keys);
    } while (cursor !== '0');
  }
  await redis.hdel(batchKeys.versions(set), version);
  return deleted;
}

/**
 * Deletes versions retired more than `graceMs` ago and aborted loads. The current version and
 * recently retired ones (readers may still be finishing a batch on them) are kept.
 */
export async function collectGarbage(redis: RedisClient, set: string, graceMs: number, now = Date.now()): Promise<string[]> {
  const cur = await currentVersion(redis, set);
  const removed: string[] = [];
  for (const [v, meta] of Object.entries(await listVersions(redis, set))) {
    if (v === cur) continue;
    const expired = meta.status === 'aborted' || (meta.status === 'retired' && (meta.retiredAt ?? 0) + graceMs <= now);
    if (expired) {
      await deleteVersion(redis, set, v);
      removed.push(v);
    }
  }
  return removed;
}

export async function abortVersion(redis: RedisClient, set: string, version: string): Promise<void> {
  const meta: VersionMeta = { rows: 0, loadedAt: Date.now(), status: 'aborted' };
  await redis.hset(batchKeys.versions(set), version, JSON.stringify(meta));
  await deleteVersion(redis, set, version);
}

/** Result of reading one set for one event. */
export interface BatchLookup {
  /** Shared with other events' lookups of the same row: read, never change. */
  readonly values: readonly number[];
  /** Entity absent from the version, or its row older than the set's stalenessMs at the event's time. */
  readonly missing: boolean;
  readonly stale: boolean;
}

interface CachedRow {
  ts: number;
  values: number[];
  /** false: the entity is absent from that version (negative caching). */
  present: boolean;
  /** The lookup of a present, fresh row, made once (the same object for every event that reads it). */
  hit: BatchLookup;
}

export interface BatchReaderOptions {
  cacheMaxEntries?: number;
  cacheTtlMs?: number;
}

/**
 * Online reads of one batch set. For a consumed batch the enricher calls `plan` (adds a pointer
 * GET and the HMGETs of cache misses to a shared pipeline) and then `finish` with the pipeline's
 * replies: one round trip per batch for all sets. The set version used for the batch is the one
 * this reader last saw; a flip seen in the replies applies from the next batch.
 */
export class BatchSetReader {
  /**
   * Rows of one version (cacheVersion), keyed by the entity text itself: a key made per lookup
   * (version + entity) was a string allocated and hashed per event and set. A batch read on
   * another version empties it first. Its hit and miss counts are per event looked up.
   */
  readonly cache: LruCache<CachedRow>;
  private cacheVersion = '';
  /** Version used for the next batch ('' = nothing loaded yet). */
  version = '';
  /**
   * Batches planned so far, and the latest of them whose replies set `version`: the replies of a
   * batch planned earlier (still in flight, e.g. its reads sent at plan time on a Cluster) may
   * show an older pointer and must not move the version back.
   */
  private planned = 0;
  private pointerFrom = 0;
  private readonly fields: string[];
  private readonly defaults: number[];
  private readonly missingLookup: BatchLookup;
  private readonly staleLookup: BatchLookup;

  constructor(
    readonly set: BatchFeatureSetSpec,
    options: BatchReaderOptions = {},
  ) {
    this.cache = new LruCache(options.cacheMaxEntries ?? 100_000, options.cacheTtlMs ?? 30_000);
    this.fields = set.fields.map((f) => f.name);
    this.defaults = set.fields.map(numericDefault);
    this.missingLookup = Object.freeze({ values: this.defaults, missing: true, stale: false });
    this.staleLookup = Object.freeze({ values: this.defaults, missing: true, stale: true });
  }

  async init(redis: RedisClient): Promise<void> {
    defineFeatureScripts(redis); // batch-read.lua, used on a single Redis
    this.version = (await currentVersion(redis, this.set.name)) ?? '';
  }

  /**
   * Queues the reads of `entities` on `p` and returns a function that turns the replies into
   * lookups. On a single Redis that is one command: the pointer, the version check and the HMGET of
   * each cache miss in one read-only script (scripts/batch-read.lua), which keeps the client's
   * per-command cost off the per-entity path; on a Cluster, a GET, an HEXISTS and one HMGET per miss.
   */
  plan(p: BatchCommands, entities: readonly (string | null)[], eventTimes: readonly number[]): { commands: number; finish: (replies: unknown[]) => { lookups: BatchLookup[]; version: string; retry: boolean } } {
    const version = this.version;
    const seq = ++this.planned;
    if (version !== this.cacheVersion) {
      this.cache.clear();
      this.cacheVersion = version;
    }
    // Per event its cached row, or the index of its entity among the misses (read once per batch).
    const n = entities.length;
    const hits: Array<CachedRow | undefined> = new Array(n);
    const misses: string[] = [];
    let missOf: number[] | undefined;
    let missIndex: Map<string, number> | undefined;
    if (version) {
      for (let i = 0; i < n; i++) {
        const e = entities[i];
        if (e === null) continue;
        const hit = this.cache.get(e);
        if (hit) {
          hits[i] = hit;
          continue;
        }
        missIndex ??= new Map();
        missOf ??= new Array<number>(n).fill(-1);
        let m = missIndex.get(e);
        if (m === undefined) {
          m = misses.push(e) - 1;
          missIndex.set(e, m);
        }
        missOf[i] = m;
      }
    }
    const scripted = p.tribBatchRead !== undefined;
    if (scripted) {
      const keys: string[] = new Array(2 + misses.length);
      keys[0] = batchKeys.pointer(this.set.name);
      keys[1] = batchKeys.versions(this.set.name);
      for (let i = 0; i < misses.length; i++) keys[2 + i] = batchKeys.entity(this.set.name, version, misses[i]);
      p.tribBatchRead!(String(keys.length), ...keys, version || '-', TS_FIELD, ...this.fields);
    } else {
      p.get(batchKeys.pointer(this.set.name));
      p.hexists(batchKeys.versions(this.set.name), version || '-');
      for (const e of misses) p.hmget(batchKeys.entity(this.set.name, version, e), TS_FIELD, ...this.fields);
    }
    const commands = scripted ? 1 : 2 + misses.length;
    return {
      commands,
      finish: (results) => {
        // The script's reply has the shape of the separate commands' replies.
        const replies = scripted ? (results[0] as unknown[]) : results;
        const pointer = (replies[0] as string | null) ?? '';
        const versionExists = replies[1] === 1;
        if (version && !versionExists && pointer !== version) {
          // Our version was cleaned up under us (a stall longer than the grace period): re-read with the current one.
          this.version = pointer;
          return { lookups: [], version, retry: true };
        }
        const missRows: CachedRow[] = new Array(misses.length);
        // Cached only while the cache still holds this batch's version (another batch may have moved it on meanwhile).
        const cacheable = this.cacheVersion === version;
        misses.forEach((e, i) => {
          const raw = replies[2 + i] as Array<string | null>;
          const present = raw[0] !== null;
          const values = this.set.fields.map((f, j) => (raw[j + 1] === null ? numericDefault(f) : Number(raw[j + 1])));
          const row: CachedRow = { present, ts: present ? Number(raw[0]) : 0, values, hit: { values, missing: false, stale: false } };
          missRows[i] = row;
          if (cacheable) this.cache.set(e, row);
        });
        if (seq > this.pointerFrom) {
          this.pointerFrom = seq;
          if (pointer !== this.version) this.version = pointer; // a flip: the next batch reads the new version
        }
        // Lookups are shared, read-only objects: no object per event.
        const lookups = entities.map((e, i): BatchLookup => {
          const row = hits[i] ?? (missOf !== undefined && missOf[i] >= 0 ? missRows[missOf[i]] : undefined);
          if (!row || !row.present) return this.missingLookup;
          const stale = this.set.stalenessMs !== undefined && eventTimes[i] - row.ts > this.set.stalenessMs;
          return stale ? this.staleLookup : row.hit;
        });
        return { lookups, version, retry: false };
      },
    };
  }
}
