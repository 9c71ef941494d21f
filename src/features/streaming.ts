/**
 * Streaming (windowed-aggregation) features: incremental window state computed in the process,
 * made durable and fenced in Redis.
 *
 * Semantics — "as of" an event e at event time t, for one entity and one aggregation:
 *   the aggregation runs over the entity's events that were applied *before* e, were not late,
 *   have event time <= t and lie in the aggregation's window ending at t — at the set's bucket
 *   resolution R (see WindowSpec and bucketMsOf in spec.ts: a sliding window is the sizeMs / R
 *   buckets ending with t's bucket, up to t; hopping and tumbling windows are exact). So an event
 *   with a later event time that was processed earlier never leaks into an earlier event's vector,
 *   and e itself is not counted (`count` = events before this one; `time_since_prev` = t minus the
 *   latest such event's time). Ties on event time: `last`/`time_since_prev` take the latest
 *   applied. Sums (and means) are the correctly rounded exact sum of the values, whatever the
 *   order they were added in.
 * Where it runs: in this process, like a Kafka Streams task's state store. Each entity's window
 *   state (window-state.ts) is loaded from Redis on first touch, kept in an LRU
 *   (`cacheEntities`) and updated in memory; Redis is the durable, fenced store, written once per
 *   consumed batch and slot group. No aggregation runs in Redis.
 * Cost per event (window-state.ts has the detail): an entity with at most `smallEntityEvents`
 *   events (default 4,096; 128 while its events mostly come in event-time order) holds them as
 *   number columns sorted by time, a window a range of them scanned along contiguous numbers —
 *   bounded, and out of order cheaper than the summaries below up to ~4,000 events and beyond.
 *   Past that its events are held in typed-array columns linked per bucket (no object per
 *   event, so the heap the garbage collector traces does not grow with the windows),
 *   with a summary per block of `bucketsPerBlock` buckets and per window an accumulator of the
 *   buckets in it. The LRU of entities is bounded by entities and by estimated bytes. An event in event-time order for
 *   its entity (t >= every time applied to it) is scored from the accumulators: O(1) amortised,
 *   O(log n) for min/max — flat in the number of events in the window. An out-of-order or late
 *   event is scored from the summaries of its window: whole blocks inside it and buckets at its
 *   edges, O(window / (R * F) + 2 F) summaries (24 + up to 118 for 24 h at 1 min, F = 60; a block
 *   of fewer than 8 events is read as its events, not kept as a summary), plus
 *   O(min(events in the window, distinct values x log n)) for distinct counts and the events of its own bucket (it counts
 *   only up to t): bounded by the window, not by the events. Distinct counts are exact.
 *   Redis per batch and group: at most one read-only load (stream-load.lua: checkpoint, stored
 *   vectors of replayed offsets, entities not held; none for a warm batch without replays, nor
 *   while entities not held keep turning out new — the commit's check catches a wrong guess) and
 *   one commit (stream-commit.lua) writing only the changed buckets' new events.
 * Lateness: an event is late when t < (the entity's greatest event time applied so far) -
 *   allowedLatenessMs. A late event is scored (as of t) but not added to the aggregations; it is
 *   counted (stats hash, `late:<set>`) and, with onLate: dead_letter, dead-lettered.
 * Retention: per entity, buckets and events older than (greatest event time - (largest window +
 *   allowed lateness + replayRetentionMs)) are evicted, which never changes a non-late event's
 *   vector (nor a late one's within replayRetentionMs past the lateness).
 * Idempotence and fencing: the commit (scripts/stream-commit.lua) of one batch of one partition and
 *   slot group is atomic. It refuses a caller whose fencing epoch (raised on partition assignment)
 *   is not current. It refuses (STALE) a batch computed from a checkpoint or an entity version
 *   that is no longer the stored one: the process then reloads and computes the batch again
 *   (optimistic concurrency: another process may have applied events of the same entity from a
 *   partition it owns, when producers do not key by the entity). Otherwise it writes the changed
 *   entities with new version stamps, the batch's vectors as one member keyed by its last offset,
 *   and the new checkpoint. Offsets at or below the checkpoint are replays: their vectors are read
 *   back, not recomputed, and nothing is counted twice — so a crash between the commit and the
 *   Kafka offset commit, or a restart, replays identically. Limit: vectors are kept for at least
 *   the last `replayRetentionOffsets` offsets of a partition (default 100,000; trimmed in whole
 *   batches); an older replayed event is scored from the current state (best effort) and counted
 *   (`replay_missed`, tributary_streaming_replay_missed_total).
 * Determinism: vectors depend on the order events are applied. Within a partition that is the
 *   offset order; across partitions it is the interleaving of batches, so for runs to be
 *   reproducible (kill/restart = uninterrupted run, backfills) key the input topic by the entity.
 *
 * Key layout (namespace N = the stage's consumer group). Every key carries the hash tag of its
 * slot group {N:g}, g = hash(entity) mod slotGroups, so on a Redis Cluster a script's keys share
 * one slot and the groups spread over the shards; no key is shared by all groups.
 *   tributary:st:{N:g}:epoch:<topic>:<p>  tributary:st:{N:g}:ckpt:<topic>:<p>
 *   tributary:st:{N:g}:res:<topic>:<p> (stored vectors: sorted set, score = a batch's last offset,
 *     member = JSON [offsets, per event the sets' stored vectors joined by ';', stored-vector.ts])  tributary:st:{N:g}:stats
 *   tributary:st:{N:g}:e:<set>:<len>:<entity> (hash: `v` version stamp, `b<bucket>:<first seq>`
 *     JSON rows [time, seq, values...] of that bucket's events, in fragments)
 *   tributary:st:{N}:epochs:<topic>:<p> (epoch counter)  tributary:st:{N}:layout (format, slot groups)
 */
import { randomBytes } from 'node:crypto';
import { getHeapStatistics } from 'node:v8';
import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';
import { ConfigError, RerunBatchError, TransientError, TributaryError } from '../util/errors';
import { createLogger } from '../util/logger';
import { redisKeySlot } from '../util/redis-slot';
import { LruCache } from './lru';
import { PackWriter } from './pack-writer';
import { decodeStoredVector, writeStoredVectorAt } from './stored-vector';
import { defineFeatureScripts, type FeatureScripts, type RedisClient } from './scripts';
import { DEFAULT_DURABILITY_TIMEOUT_MS, effectiveWindow, numericDefault, type AggregationFieldSpec, type StateDurability, type StreamingFeatureSetSpec } from './spec';
import type { StreamingBatchReport, StreamingMetrics } from './streaming-metrics';
import { EntityWindowState, numericValue, padd, psum, setPlan, type SetPlan, type SlotValue } from './window-state';

export class FencedError extends TributaryError {
  override readonly name = 'FencedError';
}

/** A state write fewer replicas acknowledged than the durability asks for: transient, the batch is retried and not committed. */
export class DurabilityTimeoutError extends TransientError {}

const log = createLogger('streaming-state');

/**
 * The durability of a stage's state: its sets share every write, so the strictest set decides
 * (most replicas, longest timeout). Undefined when no set asks for any.
 */
export function stateDurability(sets: readonly StreamingFeatureSetSpec[]): Required<StateDurability> | undefined {
  const asked = sets.map((s) => s.config.durability).filter((d): d is StateDurability => d !== undefined);
  if (asked.length === 0) return undefined;
  return { replicas: Math.max(...asked.map((d) => d.replicas)), timeoutMs: Math.max(...asked.map((d) => d.timeoutMs ?? DEFAULT_DURABILITY_TIMEOUT_MS)) };
}

const DEFAULT_REPLAY_RETENTION_MS = 3_600_000;
const DEFAULT_REPLAY_RETENTION_OFFSETS = 100_000;
const DEFAULT_CACHE_ENTITIES = 100_000;
export const DEFAULT_SMALL_ENTITY_EVENTS = 4096;
const DEFAULT_BUCKETS_PER_BLOCK = 60;
/** Slot groups per namespace when the client is a Redis Cluster (a single Redis needs only one). */
const DEFAULT_CLUSTER_SLOT_GROUPS = 16;

const ckptKey = (topic: string, p: number, g: number) => `${topic}\u0000${p}\u0000${g}`;
const prefix = (ns: string, g: number) => `tributary:st:{${ns}:${g}}`;

export const streamKeys = {
  epoch: (ns: string, g: number, topic: string, p: number) => `${prefix(ns, g)}:epoch:${topic}:${p}`,
  ckpt: (ns: string, g: number, topic: string, p: number) => `${prefix(ns, g)}:ckpt:${topic}:${p}`,
  results: (ns: string, g: number, topic: string, p: number) => `${prefix(ns, g)}:res:${topic}:${p}`,
  stats: (ns: string, g: number) => `${prefix(ns, g)}:stats`,
  /** The length prefix keeps an entity's derived keys (`:z`, `:r`, ...) from colliding with another entity's key. */
  entity: (ns: string, g: number, set: string, entity: string) => `${prefix(ns, g)}:e:${set}:${entity.length}:${entity}`,
  epochCounter: (ns: string, topic: string, p: number) => `tributary:st:{${ns}}:epochs:${topic}:${p}`,
  layout: (ns: string) => `tributary:st:{${ns}}:layout`,
  /** Every key of the namespace (its groups' tags and its own). */
  pattern: (ns: string) => `tributary:st:{${ns}[:}]*`,
};

/** FNV-1a (32 bit) of a string: the entity's slot group. Stable across processes and versions. */
export function slotGroupOf(entity: string, groups: number): number {
  if (groups === 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < entity.length; i++) {
    h ^= entity.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % groups;
}

/** One event of a batch, per set the entity (null = none) and the aggregated values: `apply`'s input (the enricher hands `applyFlat` a StreamBatch in columns instead). */
export interface StreamEvent {
  offset: number;
  eventTime: number;
  entities: Array<string | null>;
  /** Per set, per value slot (`valueNames(set)`), the value: a string, or a number (the same as its String()). */
  values: SlotValue[][];
}

export interface StreamResult {
  /** Per set, the aggregation values in field order. */
  values: number[][];
  /** Per set, whether the event was late for that entity. */
  late: boolean[];
}

/** The distinct `of` inputs a set's aggregations read, in first-use order (value slots). */
export function valueNames(set: StreamingFeatureSetSpec): string[] {
  const out: string[] = [];
  for (const f of set.fields) if (f.of && !out.includes(f.of)) out.push(f.of);
  return out;
}

/** Bounds of the in-memory entity cache, as a stage declares them (`stateCache`). */
export interface StateCacheBounds {
  /** Entities held (default 100,000): StreamingStateOptions.cacheEntities. */
  maxEntities?: number;
  /** Estimated bytes held (default a quarter of the V8 heap limit): StreamingStateOptions.cacheBytes. */
  maxBytes?: number;
}

export interface StreamingStateOptions {
  /**
   * Slot groups (hash tags) the namespace's entities are spread over; fixed for the namespace's
   * life (checked by `init`). Default 1 on a single Redis, 16 on a Redis Cluster.
   */
  slotGroups?: number;
  /**
   * An entity holding at most this many events is kept in memory as its events' columns sorted by
   * time and scored by scanning its window's events (the cheapest for few events, and for events
   * out of event-time order up to ~4,000 and beyond: BENCHMARKS.md item 36); past it, or past 128
   * while its events mostly come in event-time order, as bucket summaries and window accumulators
   * (flat cost per event in order). Default 4,096. Vectors are the same either way, and so is what
   * Redis stores.
   */
  smallEntityEvents?: number;
  /**
   * Buckets summarised together in a block (default 60: an hour of one-minute buckets): an
   * out-of-order event reads the whole blocks inside its window and buckets only at its edges.
   */
  bucketsPerBlock?: number;
  /** Stored vectors kept per partition for replays: at least this many offsets behind the checkpoint, in whole chunks (default 100,000). */
  replayRetentionOffsets?: number;
  /** Entities kept in memory (least recently used dropped first; reloaded from Redis when touched again). Default 100,000. */
  cacheEntities?: number;
  /**
   * Estimated heap bytes of the entities kept in memory (EntityWindowState.approxBytes): the cache
   * drops least recently used entities past it, so memory stays bounded however many events the
   * windows hold. Default a quarter of the V8 heap limit (`--max-old-space-size`).
   */
  cacheBytes?: number;
  /** Late events, evictions and missed replays are counted here; the state size is reported on scrape. */
  metrics?: StreamingMetrics;
  /** Replicas each state write waits for (WAIT); default from the sets' `config.durability` (stateDurability). */
  durability?: Required<StateDurability>;
}

/** The entities (per set) and events of one batch that fall in one slot group. */
interface GroupChunk {
  g: number;
  /**
   * Per entity of the chunk (parallel arrays): its set, its value, and its key in the in-memory
   * cache (cacheKey). The Redis key (entityKey) is built only for a load, and written as bytes by
   * the commit: a key string per event was most of the batch split's allocations.
   */
  setOf: number[];
  entities: string[];
  cacheKeys: string[];
  /**
   * Per event of the chunk (parallel arrays, no object per event; the first evCount entries): its
   * index in the batch, whether this group counts it (1), and per set (`ent[x * sets + si]`) the
   * index of its entity (-1: none here).
   */
  ev: Int32Array;
  evCount: number;
  counts: Uint8Array;
  ent: Int32Array;
}

/** chunks' index: entries past this many keys are dropped at the next batch's start. */
const CHUNK_INDEX_KEYS = 65_536;
/**
 * chunks' index: its values stay below this, so that V8 keeps them as small integers in the Map.
 * A value past 2^31 is a heap number of its own, allocated per set and kept alive by the Map
 * until the next scavenge copies and promotes it (~1 MB of survivors per scavenge at batch 100).
 */
const CHUNK_INDEX_MAX = 2 ** 31 - 1;

/**
 * A batch as the streaming state reads it, in columns (no object or arrays per event): what the
 * enricher fills from its records. `StreamingState.batch(n)` makes one of the right widths;
 * `StreamingState.batchOf` turns StreamEvents into one.
 */
export interface StreamBatch {
  readonly length: number;
  readonly offsets: Float64Array;
  readonly eventTimes: Float64Array;
  /** Per event and set at `i * sets + si`: the entity (null = none). */
  readonly entities: Array<string | null>;
  /**
   * Per event, every set's value slots one after another: set si's slot j at
   * `i * slotWidth + slotBase[si] + j` — a string, or a number (the same as its String()).
   */
  readonly values: SlotValue[];
}

/** BatchOut.state per event and set. */
export const SCORED = 1;
export const SCORED_LATE = 2;

/**
 * What a batch's chunks compute, per event and set: `state[i * sets + si]` 0 when the set's entity
 * is absent (its defaults apply), else SCORED or SCORED_LATE, and the set's values in field order
 * at `values[i * fieldWidth + fieldBase[si] ...]`. Each chunk writes its own events' entries.
 * `applyFlat` returns it as it is (no object or arrays per event).
 */
export interface BatchOut {
  state: Uint8Array;
  values: Float64Array;
}

const MAX_ATTEMPTS = 8;
const OPTIMISTIC_AFTER = 8;

/**
 * Client of the streaming state of one stage (namespace) for a list of sets. Aggregations run in
 * this process over an in-memory copy of each entity's window state (window-state.ts); Redis is
 * the durable, fenced store, written once per chunk (stream-commit.lua) with optimistic checks.
 */
export class StreamingState {
  private readonly plans: SetPlan[];
  /** Per set, its stats hash fields (built once, not per event). */
  private readonly statFields: Array<{ late: string; sr: string; sb: string }>;
  /** Per set, its fields' defaults (the values of an event without that set's entity). */
  private readonly defaults: number[][];
  /** A batch's value slots per event (StreamBatch.values), and where each set's begin. */
  readonly slotWidth: number;
  readonly slotBase: readonly number[];
  /** A batch's fields per event (BatchOut.values), and where each set's begin. */
  readonly fieldWidth: number;
  readonly fieldBase: readonly number[];
  readonly redis: RedisClient & FeatureScripts;
  readonly slotGroups: number;
  private readonly metrics?: StreamingMetrics;
  private readonly keep: number;
  private readonly small: number;
  private readonly cache: LruCache<EntityWindowState>;
  /** Checkpoints as of this process's last load or commit, per topic/partition/group. */
  private readonly ckpts = new Map<string, number>();
  /**
   * The highest checkpoint this process has seen stored (loaded or committed), per
   * topic/partition/group. Checkpoints only grow (until `reset`), so a load below it means Redis
   * lost acknowledged writes (a failover to a replica that had not received them).
   */
  private readonly highest = new Map<string, number>();
  /** Partitions whose state was found behind already (logged once each, counted every time). */
  private readonly behindLogged = new Set<string>();
  readonly durability?: Required<StateDurability>;
  /** Version stamps: unique per process and write, so a changed entity never matches an old stamp. */
  private readonly stamp = randomBytes(6).toString('base64url');
  private writes = 0;
  /** The commit message's writer: its buffer is reused (each message is copied out before the script is called). */
  private readonly packer = new PackWriter();
  /** compute's stored vectors and storedMember's message (reused; each member is copied out). */
  private readonly partsWriter = new PackWriter();
  private readonly memberWriter = new PackWriter();
  /**
   * Entities not held are assumed new (absent from Redis) and the load is skipped, after
   * `OPTIMISTIC_AFTER` loads in a row found none of them: the commit's version check catches a
   * wrong guess (the batch is then loaded and computed again, and loads resume).
   */
  private emptyLoads = 0;
  /** Chunks computed again because the stored state had moved on (another process, or a stale copy here). */
  staleRetries = 0;
  /** Redis calls made (loads and commits; a chunk makes one or two, one after the other). */
  calls = 0;
  /** Commit scripts sent (one per computed chunk, retries included). */
  commits = 0;

  constructor(
    redis: Redis | Cluster,
    readonly namespace: string,
    readonly sets: readonly StreamingFeatureSetSpec[],
    options: StreamingStateOptions = {},
  ) {
    this.redis = defineFeatureScripts(redis);
    this.slotGroups = options.slotGroups ?? (redis.isCluster ? DEFAULT_CLUSTER_SLOT_GROUPS : 1);
    if (!Number.isInteger(this.slotGroups) || this.slotGroups < 1) throw new ConfigError('slotGroups', `must be a positive integer, got ${this.slotGroups}`);
    if (options.bucketsPerBlock !== undefined && (!Number.isInteger(options.bucketsPerBlock) || options.bucketsPerBlock < 1)) throw new ConfigError('bucketsPerBlock', `must be a positive integer, got ${options.bucketsPerBlock}`);
    const cacheEntities = options.cacheEntities ?? DEFAULT_CACHE_ENTITIES;
    if (!Number.isInteger(cacheEntities) || cacheEntities < 1) throw new ConfigError('cacheEntities', `must be a positive integer, got ${cacheEntities}`);
    this.plans = sets.map((s) => setPlan(s, valueNames(s), options.bucketsPerBlock ?? DEFAULT_BUCKETS_PER_BLOCK, DEFAULT_REPLAY_RETENTION_MS));
    this.statFields = sets.map((s) => ({ late: `late:${s.name}`, sr: `sr:${s.name}`, sb: `sb:${s.name}` }));
    this.defaults = sets.map((s) => s.fields.map(numericDefault));
    const slotBase: number[] = [];
    const fieldBase: number[] = [];
    let slots = 0;
    let fields = 0;
    sets.forEach((s, si) => {
      slotBase.push(slots);
      fieldBase.push(fields);
      slots += this.plans[si].slots;
      fields += s.fields.length;
    });
    this.slotWidth = slots;
    this.slotBase = slotBase;
    this.fieldWidth = fields;
    this.fieldBase = fieldBase;
    this.keep = options.replayRetentionOffsets ?? DEFAULT_REPLAY_RETENTION_OFFSETS;
    this.small = options.smallEntityEvents ?? DEFAULT_SMALL_ENTITY_EVENTS;
    const cacheBytes = options.cacheBytes ?? Math.floor(getHeapStatistics().heap_size_limit / 4);
    if (!Number.isInteger(cacheBytes) || cacheBytes < 1) throw new ConfigError('cacheBytes', `must be a positive integer, got ${cacheBytes}`);
    this.cache = new LruCache(cacheEntities, Infinity, Date.now, cacheBytes);
    this.metrics = options.metrics;
    this.durability = options.durability ?? stateDurability(sets);
    this.metrics?.track(this);
  }

  get isCluster(): boolean {
    return this.redis.isCluster;
  }

  /**
   * Records the namespace's layout (format and slot-group count) on first use and refuses another
   * one later: entities would land in other groups, or be read in another format.
   */
  async init(): Promise<void> {
    const key = streamKeys.layout(this.namespace);
    const want = `incremental-v3 slotGroups=${this.slotGroups}`;
    await this.redis.set(key, want, 'NX');
    const have = await this.redis.get(key);
    if (have !== want) throw new ConfigError('slotGroups', `streaming state ${this.namespace} was created with '${have}', not '${want}' (reset the namespace to change it)`);
  }

  /**
   * Takes the fencing epoch of a partition (call on assignment): a new epoch from the partition's
   * counter, raised into every slot group, so any holder of an older epoch is fenced off.
   */
  async takeEpoch(topic: string, partition: number): Promise<number> {
    for (let g = 0; g < this.slotGroups; g++) this.ckpts.delete(ckptKey(topic, partition, g));
    const epoch = await this.redis.incr(streamKeys.epochCounter(this.namespace, topic, partition));
    await Promise.all(Array.from({ length: this.slotGroups }, (_, g) => this.redis.tribEpochRaise(streamKeys.epoch(this.namespace, g, topic, partition), String(epoch))));
    return epoch;
  }

  /** The last offset applied in the partition (over all slot groups; -1 = none). */
  async checkpoint(topic: string, partition: number): Promise<number> {
    const all = await Promise.all(Array.from({ length: this.slotGroups }, (_, g) => this.redis.get(streamKeys.ckpt(this.namespace, g, topic, partition))));
    return Math.max(-1, ...all.map((x) => Number(x ?? -1)));
  }

  /** Counters summed over the slot groups: applied, replayed, replay_missed, late:<set>, sb:<set> (buckets), sr:<set> (events). */
  async stats(): Promise<Record<string, number>> {
    const all = await Promise.all(Array.from({ length: this.slotGroups }, (_, g) => this.redis.hgetall(streamKeys.stats(this.namespace, g))));
    const out: Record<string, number> = {};
    for (const raw of all) for (const [k, v] of Object.entries(raw)) out[k] = (out[k] ?? 0) + Number(v);
    return out;
  }

  /** The in-memory entity cache (metrics). */
  cacheSize(): { entities: number; bytes: number; evictions: number } {
    return { entities: this.cache.size, bytes: this.cache.weight, evictions: this.cache.evictions };
  }

  /** Per set, the bucket summaries and stored events the state holds (metrics). */
  async stateSize(): Promise<Record<string, { buckets: number; events: number }>> {
    const st = await this.stats();
    return Object.fromEntries(this.sets.map((s) => [s.name, { buckets: st[`sb:${s.name}`] ?? 0, events: st[`sr:${s.name}`] ?? 0 }]));
  }

  /** Per slot group and set, the entity key up to the entity's length (streamKeys.entity without its last parts), built once. */
  private readonly keyPrefixes: string[][] = [];

  private keyPrefix(g: number, si: number): string {
    let row = this.keyPrefixes[g];
    if (!row) row = this.keyPrefixes[g] = this.sets.map((s) => `${prefix(this.namespace, g)}:e:${s.name}:`);
    return row[si];
  }

  /** The entity's Redis hash key (streamKeys.entity). */
  private entityKey(g: number, si: number, entity: string): string {
    return `${this.keyPrefix(g, si)}${entity.length}:${entity}`;
  }

  /** The same key as entityKey, written as a MessagePack string without making it. */
  private writeEntityKey(w: PackWriter, g: number, si: number, entity: string): void {
    const m = w.openStr();
    w.text(this.keyPrefix(g, si));
    w.number(entity.length);
    w.byte(0x3a); // ':'
    w.text(entity);
    w.closeStr(m);
  }

  /**
   * An entity's key in the in-memory cache: the entity itself for the first set (no string made
   * per event), the set's index and a NUL before it otherwise — or when it holds a NUL itself, so
   * that no two (set, entity) pairs share a key.
   */
  private cacheKey(si: number, entity: string): string {
    return si === 0 && entity.indexOf('\u0000') < 0 ? entity : `${si}\u0000${entity}`;
  }

  /**
   * chunks' index of a batch's entities, kept from batch to batch: cache key -> the batch's base +
   * the entity's index in its group's chunk. The base moves past every value a batch can write
   * (by its events x sets), so an entry is this batch's exactly when its value is at least the
   * base. A Map made per batch (or cleared: that allocates a new table) grew its table again every
   * batch. Emptied when it passes CHUNK_INDEX_KEYS keys or the base nears CHUNK_INDEX_MAX.
   */
  private readonly chunkIndex = new Map<string, number>();
  /** The next batch's base. */
  private chunkNext = 0;

  /** Splits a batch by slot group. */
  private chunks(events: StreamBatch): { list: GroupChunk[] } {
    const groups = new Map<number, GroupChunk>();
    const nSets = this.sets.length;
    const n = events.length;
    const index = this.chunkIndex;
    const span = n * nSets;
    if (index.size > CHUNK_INDEX_KEYS || this.chunkNext > CHUNK_INDEX_MAX - span) {
      index.clear();
      this.chunkNext = 0;
    }
    const base = this.chunkNext;
    this.chunkNext = base + span;
    // Per event, the groups it touches and where its row of entity indexes starts in each (few sets:
    // arrays, not maps, reused with a count).
    const gs: number[] = [];
    const rows: number[] = [];
    for (let i = 0; i < n; i++) {
      let ng = 0;
      for (let si = 0; si < nSets; si++) {
        const entity = events.entities[i * nSets + si];
        if (entity === null) continue;
        const g = slotGroupOf(entity, this.slotGroups);
        let c = groups.get(g);
        if (!c) {
          // Sized for the whole batch (a chunk holds at most its events): no regrowth as it fills.
          c = { g, setOf: [], entities: [], cacheKeys: [], ev: new Int32Array(n), evCount: 0, counts: new Uint8Array(n), ent: new Int32Array(n * nSets).fill(-1) };
          groups.set(g, c);
        }
        const key = this.cacheKey(si, entity);
        const held = index.get(key);
        let ki: number;
        if (held !== undefined && held >= base) ki = held - base;
        else {
          ki = c.entities.push(entity) - 1;
          c.setOf.push(si);
          c.cacheKeys.push(key);
          index.set(key, base + ki);
        }
        let at = 0;
        while (at < ng && gs[at] !== g) at++;
        if (at === ng) {
          gs[ng] = g;
          rows[ng] = c.evCount * nSets;
          ng++;
          // The event is counted (applied / replayed) by the group of its first entity only.
          c.ev[c.evCount] = i;
          c.counts[c.evCount] = at === 0 ? 1 : 0;
          c.evCount++;
        }
        c.ent[rows[at] + si] = ki;
      }
    }
    return { list: [...groups.values()] };
  }

  /** Forgets the in-memory copies of a chunk's entities and its checkpoint (they are reloaded next time). */
  private forget(keys: readonly string[], ck: string): void {
    for (const k of keys) this.cache.delete(k);
    this.ckpts.delete(ck);
  }

  /**
   * Loads what a chunk needs and is not held (checkpoint, stored vectors of replayed offsets,
   * entities), computes it in memory and commits it; on a stale copy, reloads and computes again.
   */
  private async applyChunk(topic: string, partition: number, epoch: number, events: StreamBatch, c: GroupChunk, out: BatchOut, defer: ((landed: Promise<void>) => void) | undefined): Promise<void> {
    const ckId = ckptKey(topic, partition, c.g);
    const k = {
      epoch: streamKeys.epoch(this.namespace, c.g, topic, partition),
      ckpt: streamKeys.ckpt(this.namespace, c.g, topic, partition),
      results: streamKeys.results(this.namespace, c.g, topic, partition),
      stats: streamKeys.stats(this.namespace, c.g),
    };
    let minOffset = Infinity;
    for (let x = 0; x < c.evCount; x++) minOffset = Math.min(minOffset, events.offsets[c.ev[x]]);
    for (let attempt = 1; ; attempt++) {
      // 1. Load (only what is not held; nothing at all for a warm chunk without replays).
      let ck = this.ckpts.get(ckId);
      const needCk = ck === undefined || minOffset <= ck;
      const states: Array<EntityWindowState | undefined> = c.cacheKeys.map((key) => this.cache.get(key));
      const missing: number[] = [];
      states.forEach((st, j) => st === undefined && missing.push(j));
      const stored = new Map<number, string>();
      // Skipping the load is a guess only on a first attempt: a retry always reads what it lacks.
      const guessNew = attempt === 1 && !needCk && this.emptyLoads >= OPTIMISTIC_AFTER;
      if (needCk || (missing.length > 0 && !guessNew)) {
        this.calls++;
        const reply = (await this.redis.tribStreamLoad(2, k.ckpt, k.results, needCk ? '1' : '0', String(minOffset), JSON.stringify(missing.map((j) => this.entityKey(c.g, c.setOf[j], c.entities[j]))))) as unknown[];
        if (needCk) {
          ck = reply[0] === null ? -1 : Number(reply[0]);
          this.noteCheckpoint(ckId, ck, topic, partition, c.g);
          this.ckpts.set(ckId, ck);
          for (const member of reply[1] as string[]) {
            const [offsets, parts] = JSON.parse(member) as [number[], string[]];
            offsets.forEach((o, x) => stored.set(o, parts[x]));
          }
        }
        const found = new Map<number, string[]>();
        for (let x = 2; x < reply.length; x += 2) found.set(reply[x] as number, reply[x + 1] as string[]);
        if (missing.length > 0) this.emptyLoads = found.size === 0 ? this.emptyLoads + 1 : 0;
        missing.forEach((j, x) => {
          // Another chunk of this process may have loaded (and advanced) it meanwhile: keep that one.
          const held = this.cache.get(c.cacheKeys[j]);
          states[j] = held ?? EntityWindowState.load(this.plans[c.setOf[j]], this.small, found.get(x + 1) ?? []);
          if (!held) this.cache.set(c.cacheKeys[j], states[j]!, states[j]!.approxBytes);
        });
      } else {
        for (const j of missing) {
          states[j] = EntityWindowState.load(this.plans[c.setOf[j]], this.small, []);
          this.cache.set(c.cacheKeys[j], states[j]!, states[j]!.approxBytes);
        }
      }
      const ckNow = ck!;
      const expected = states.map((st) => st!.version ?? '');
      // 2. Compute in memory.
      let computed: ReturnType<StreamingState['compute']>;
      try {
        computed = this.compute(events, c, states as EntityWindowState[], ckNow, stored, out);
      } catch (err) {
        this.forget(c.cacheKeys, ckId);
        throw err;
      }
      // The states grew (or shrank) in place: the cache's byte bound sees their new sizes.
      for (let j = 0; j < states.length; j++) this.cache.reweigh(c.cacheKeys[j], states[j]!.approxBytes);
      // 3. Commit: fenced, checked against the checkpoint and versions it was computed from.
      // Entity writes as MessagePack (stream-commit.lua decodes it in C), written as bytes: per
      // entity [key, expected version, new version ('' = unchanged), [fields to delete], [field,
      // fragment JSON, ...]].
      const w = this.packer;
      w.reset();
      w.array(states.length);
      for (let j = 0; j < states.length; j++) {
        const st = states[j]!;
        w.array(5);
        this.writeEntityKey(w, c.g, c.setOf[j], c.entities[j]);
        w.str(expected[j]);
        if (!st.changed) {
          w.str('');
          w.array(0);
          w.array(0);
          continue;
        }
        st.version = `${this.stamp}.${++this.writes}`;
        w.str(st.version);
        st.writeWrites(w);
      }
      const packed = w.take();
      const applied = computed.lastOffset >= 0;
      const stats = Object.fromEntries(Object.entries(computed.stats).filter(([, n]) => n !== 0));
      const args: Array<string | Buffer> = [k.epoch, k.ckpt, k.results, k.stats, String(epoch), String(ckNow), applied ? String(computed.lastOffset) : '', applied ? this.storedMember(computed.offsets) : '', String(this.keep), JSON.stringify(stats), packed];
      const landed = this.land(args, k.ckpt, topic, partition, c, ckId, computed);
      if (defer) {
        // Written behind the results: the caller awaits it before the batch's outputs commit. A
        // stale copy cannot be computed again here (the values have gone on): the batch is run again.
        defer(
          landed.then((stale) => {
            if (!stale) return;
            this.noteStale(c, ckId, guessNew && missing.length > 0, 'rerun');
            throw new RerunBatchError(`stage state ${this.namespace}: ${topic}[${partition}] group ${c.g} changed under the batch (checkpoint ${stale[1]}, entities ${stale.slice(2).join(',')}); the batch is run again`);
          }),
        );
        return;
      }
      const stale = await landed;
      if (!stale) return;
      // Stale: another process (or an older copy here) changed the checkpoint or an entity.
      this.noteStale(c, ckId, guessNew && missing.length > 0, 'recomputed');
      if (attempt >= MAX_ATTEMPTS) throw new TributaryError(`stage state ${this.namespace}: ${topic}[${partition}] stayed stale over ${MAX_ATTEMPTS} attempts (checkpoint ${stale[1]}, entities ${stale.slice(2).join(',')})`);
    }
  }

  /**
   * Sends a chunk's commit and settles it: undefined once it is written (and, with durability,
   * acknowledged), its checkpoint noted; the script's STALE reply when the chunk was computed from a
   * copy that is no longer the stored one. Throws (the chunk's copies forgotten) when refused or failed.
   */
  private async land(args: Array<string | Buffer>, ckptKeyName: string, topic: string, partition: number, c: GroupChunk, ckId: string, computed: { lastOffset: number; report: StreamingBatchReport }): Promise<Array<string | number> | undefined> {
    let reply: 'OK' | Array<string | number>;
    // The node serving the group's slot before the write (a Cluster): WAIT must go to the one that ran it.
    const owner = this.durability ? this.slotOwner(ckptKeyName) : undefined;
    const sent = this.metrics ? process.hrtime.bigint() : 0n;
    try {
      this.calls++;
      this.commits++;
      reply = await this.redis.tribStreamCommit(4, ...args);
      if (reply === 'OK' && this.durability) await this.waitForReplicas(ckptKeyName, owner, `${topic}[${partition}] group ${c.g}`);
      this.metrics?.commitSeconds.observe({ namespace: this.namespace }, Number(process.hrtime.bigint() - sent) / 1e9);
    } catch (err) {
      this.forget(c.cacheKeys, ckId);
      const msg = (err as Error).message;
      if (/FENCED/.test(msg)) throw new FencedError(`stage state ${this.namespace}: ${topic}[${partition}] ${msg.replace(/^.*FENCED /, '')}`);
      throw err;
    }
    if (reply !== 'OK') return reply;
    if (computed.lastOffset >= 0) {
      this.ckpts.set(ckId, computed.lastOffset);
      this.highest.set(ckId, Math.max(this.highest.get(ckId) ?? -1, computed.lastOffset));
    }
    this.metrics?.record(this.namespace, computed.report, (name) => this.sets.find((s) => s.name === name)?.config.onLate ?? 'ignore');
    return undefined;
  }

  /** A chunk found stale: counted, its copies forgotten; after a skipped load (a guess that entities were new), loads resume for a while. */
  private noteStale(c: GroupChunk, ckId: string, guessed: boolean, outcome: 'recomputed' | 'rerun'): void {
    this.staleRetries++;
    this.metrics?.staleCommits.inc({ namespace: this.namespace, outcome });
    if (guessed) this.emptyLoads = 0;
    this.forget(c.cacheKeys, ckId);
  }

  /** Scores (and applies the new offsets of) a chunk over the in-memory states; its events' values and states go to `out`. */
  private compute(events: StreamBatch, c: GroupChunk, states: EntityWindowState[], ck: number, stored: ReadonlyMap<number, string>, out: BatchOut) {
    const offsets: number[] = [];
    // The applied events' stored vectors as the JSON strings of the chunk's stored member, written
    // as bytes (storedMember puts them after the offsets): no string per event.
    const parts = this.partsWriter;
    parts.reset();
    const stats: Record<string, number> = {};
    const bump = (f: string, n: number) => (stats[f] = (stats[f] ?? 0) + n);
    const report: StreamingBatchReport = { late: {}, evictedBuckets: {}, evictedEvents: {}, replayMissed: 0 };
    let lastOffset = -1;
    const nSets = this.sets.length;
    const { fieldWidth, fieldBase, slotWidth, slotBase } = this;
    const vals = out.values;
    for (let x = 0; x < c.evCount; x++) {
      const i = c.ev[x];
      const row = x * nSets;
      const at = i * nSets;
      const offset = events.offsets[i];
      const t = events.eventTimes[i];
      if (offset <= ck) {
        if (c.counts[x] === 1) bump('replayed', 1);
        const part = stored.get(offset);
        if (part !== undefined) {
          part.split(';').forEach((text, si) => {
            if (c.ent[row + si] < 0) return;
            const v = decodeStoredVector(text);
            const want = this.sets[si].fields.length;
            if (v.values.length !== want) throw new TributaryError(`stored vector of offset ${offset} holds ${v.values.length} values for set ${this.sets[si].name}, which has ${want} fields`);
            vals.set(v.values, i * fieldWidth + fieldBase[si]);
            out.state[at + si] = v.late ? SCORED_LATE : SCORED;
          });
        } else {
          // Its stored vector was trimmed: best effort, from the current state (counted).
          report.replayMissed++;
          bump('replay_missed', 1);
          for (let si = 0; si < nSets; si++) {
            const ki = c.ent[row + si];
            if (ki < 0) continue;
            out.state[at + si] = states[ki].isLate(t) ? SCORED_LATE : SCORED;
            states[ki].scoreReadOnlyInto(t, vals, i * fieldWidth + fieldBase[si]);
          }
        }
        continue;
      }
      if (c.counts[x] === 1) bump('applied', 1);
      // The stored vector: per set its stored text (stored-vector.ts), sets joined by ';' ('' for a
      // set whose entity is elsewhere), as a JSON string (its characters need no escapes).
      if (offsets.length > 0) parts.byte(0x2c); // ','
      parts.byte(0x22); // '"'
      for (let si = 0; si < nSets; si++) {
        if (si > 0) parts.byte(0x3b); // ';'
        const ki = c.ent[row + si];
        if (ki < 0) continue;
        const st = states[ki];
        const late = st.isLate(t);
        const vAt = i * fieldWidth + fieldBase[si];
        st.scoreInto(t, vals, vAt);
        out.state[at + si] = late ? SCORED_LATE : SCORED;
        writeStoredVectorAt(parts, late, vals, vAt, this.sets[si].fields.length);
        const name = this.sets[si].name;
        if (late) {
          report.late[name] = (report.late[name] ?? 0) + 1;
          bump(this.statFields[si].late, 1);
          continue;
        }
        const eff = st.apply(t, events.values, i * slotWidth + slotBase[si]);
        bump(this.statFields[si].sr, 1 - eff.evictedEvents);
        bump(this.statFields[si].sb, (eff.newBucket ? 1 : 0) - eff.evictedBuckets);
        if (eff.evictedBuckets > 0) report.evictedBuckets[name] = (report.evictedBuckets[name] ?? 0) + eff.evictedBuckets;
        if (eff.evictedEvents > 0) report.evictedEvents[name] = (report.evictedEvents[name] ?? 0) + eff.evictedEvents;
      }
      parts.byte(0x22);
      offsets.push(offset);
      if (offset > lastOffset) lastOffset = offset;
    }
    return { offsets, stats, report, lastOffset: lastOffset > ck ? lastOffset : -1 };
  }

  /**
   * A chunk's stored member, the text JSON.stringify([offsets, parts]) gives, as bytes: the offsets,
   * then the stored vectors compute wrote (call it before anything else writes partsWriter).
   */
  private storedMember(offsets: readonly number[]): Buffer {
    const m = this.memberWriter;
    m.reset();
    m.byte(0x5b); // '['
    m.byte(0x5b);
    for (let x = 0; x < offsets.length; x++) {
      if (x > 0) m.byte(0x2c);
      m.number(offsets[x]);
    }
    m.byte(0x5d); // ']'
    m.byte(0x2c);
    m.byte(0x5b);
    m.append(this.partsWriter);
    m.byte(0x5d);
    m.byte(0x5d);
    return m.take();
  }

  /** An empty batch of n events (every entity none) for the enricher to fill. */
  batch(n: number): StreamBatch {
    return { length: n, offsets: new Float64Array(n), eventTimes: new Float64Array(n), entities: new Array<string | null>(n * this.sets.length).fill(null), values: new Array<SlotValue>(n * this.slotWidth) };
  }

  /** StreamEvents as a batch. */
  batchOf(events: readonly StreamEvent[]): StreamBatch {
    const b = this.batch(events.length);
    const n = this.sets.length;
    events.forEach((e, i) => {
      b.offsets[i] = e.offset;
      b.eventTimes[i] = e.eventTime;
      for (let si = 0; si < n; si++) {
        b.entities[i * n + si] = e.entities[si] ?? null;
        const v = e.values[si] ?? [];
        for (let j = 0; j < v.length; j++) b.values[i * this.slotWidth + this.slotBase[si] + j] = v[j];
      }
    });
    return b;
  }

  /**
   * Applies one batch: per slot group present, a load of what is not held (when needed) and one
   * commit script; the groups run concurrently (on a Cluster each on its own shard).
   */
  async apply(topic: string, partition: number, epoch: number, events: readonly StreamEvent[]): Promise<StreamResult[]> {
    const got = await this.applyFlat(topic, partition, epoch, this.batchOf(events));
    const n = this.sets.length;
    const out: StreamResult[] = new Array(events.length);
    for (let i = 0; i < events.length; i++) {
      const values: number[][] = new Array(n);
      const late: boolean[] = new Array(n);
      for (let si = 0; si < n; si++) {
        this.copyValues(got, i, si, (values[si] = new Array<number>(this.sets[si].fields.length)), 0);
        late[si] = got.state[i * n + si] === SCORED_LATE;
      }
      out[i] = { values, late };
    }
    return out;
  }

  /**
   * apply's results as computed, flat (see BatchOut; the enricher reads them so). With `defer`, the
   * results come back once computed and each slot group's commit is handed to `defer` instead of
   * awaited (write-behind: the caller must not commit the batch's outputs before it lands; a stale
   * copy rejects it with RerunBatchError, the batch to be run again without `defer`).
   */
  async applyFlat(topic: string, partition: number, epoch: number, events: StreamBatch, defer?: (landed: Promise<void>) => void): Promise<BatchOut> {
    const { list } = this.chunks(events);
    const got: BatchOut = { state: new Uint8Array(events.length * this.sets.length), values: new Float64Array(events.length * this.fieldWidth) };
    await Promise.all(list.map((chunk) => this.applyChunk(topic, partition, epoch, events, chunk, got, defer)));
    return got;
  }

  /**
   * Copies event i's values of set si from a batch's results into `into` from index w (its
   * defaults when the event has no entity of the set); returns the index after them.
   */
  copyValues(got: BatchOut, i: number, si: number, into: number[], w: number): number {
    const n = this.sets[si].fields.length;
    if (got.state[i * this.sets.length + si] === 0) {
      const d = this.defaults[si];
      for (let x = 0; x < n; x++) into[w++] = d[x];
      return w;
    }
    const at = i * this.fieldWidth + this.fieldBase[si];
    const v = got.values;
    for (let x = 0; x < n; x++) into[w++] = v[at + x];
    return w;
  }

  /**
   * Records a checkpoint read from Redis; one below what this process saw stored before means the
   * state went backwards: events between the two were applied, acknowledged and then lost, while
   * Kafka may have committed their offsets — they will not be applied again, and windows lack them.
   * Counted every time, logged at ERROR once per partition and group; processing goes on (the lost
   * events cannot be recovered from here; `durability` prevents it).
   */
  private noteCheckpoint(ckId: string, ck: number, topic: string, partition: number, g: number): void {
    // Only committed checkpoints count (with durability, once replicas acknowledged them): a load may read a write whose WAIT failed, which a failover may rightly undo.
    const high = this.highest.get(ckId) ?? -1;
    if (ck >= high) return;
    this.metrics?.stateBehind.inc({ namespace: this.namespace });
    this.stateBehindCount++;
    if (!this.behindLogged.has(ckId)) {
      this.behindLogged.add(ckId);
      log.error(
        { namespace: this.namespace, topic, partition, slotGroup: g, storedCheckpoint: ck, committedBefore: high, durability: this.durability ?? 'none' },
        'streaming state went backwards: Redis lost acknowledged state writes (a failover to a replica that had not received them?); events after the stored checkpoint up to the one committed before are missing from the windows and, their offsets committed, will not be applied again. Set the streaming sets\' config.durability to wait for replicas (README "Redis Cluster")',
      );
    }
    this.highest.set(ckId, ck);
  }

  /** Times a load found a checkpoint below one committed before (see noteCheckpoint). */
  stateBehindCount = 0;

  /** The node (host:port) serving a key's slot as this client knows it; undefined on a single Redis. */
  private slotOwner(key: string): string | undefined {
    return this.redis.isCluster ? (this.redis as Cluster).slots[redisKeySlot(key)]?.[0] : undefined;
  }

  /**
   * WAIT on the connection that ran the write: Redis counts the replicas that acknowledged this
   * connection's latest write. On a Cluster that is the client's connection to the node serving
   * the key's slot; if the slot moved between the write and now (a failover, a MOVED), the write
   * went elsewhere and the batch is retried (transient) rather than trusting another node's count.
   */
  private async waitForReplicas(key: string, before: string | undefined, where: string): Promise<void> {
    const { replicas, timeoutMs } = this.durability!;
    let node: Redis;
    if (this.redis.isCluster) {
      const now = this.slotOwner(key);
      const found = now === before ? (this.redis as Cluster).nodes('master').find((n) => `${n.options.host}:${n.options.port}` === now) : undefined;
      if (!found) throw new DurabilityTimeoutError(`stage state ${this.namespace}: ${where}: the slot's node changed during the write (${before ?? 'none'} -> ${now ?? 'none'}); retrying the batch`);
      node = found;
    } else {
      node = this.redis as Redis;
    }
    const acked = Number(await node.call('WAIT', String(replicas), String(timeoutMs)));
    if (acked < replicas) {
      this.metrics?.durabilityTimeouts.inc({ namespace: this.namespace });
      throw new DurabilityTimeoutError(`stage state ${this.namespace}: ${where}: ${acked} of ${replicas} replicas acknowledged the state write within ${timeoutMs} ms (durability); the batch is retried, not committed`);
    }
  }

  /** Each node that holds keys (the masters of a Cluster, or the single Redis). */
  private nodes(): Redis[] {
    return this.redis.isCluster ? (this.redis as Cluster).nodes('master') : [this.redis as Redis];
  }

  private async keys(): Promise<string[]> {
    const out: string[] = [];
    for (const node of this.nodes()) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', streamKeys.pattern(this.namespace), 'COUNT', 1000);
        cursor = next;
        out.push(...keys);
      } while (cursor !== '0');
    }
    return out.sort();
  }

  /** A snapshot of all state keys but the stats counters and the epochs (tests: replay must leave it identical). */
  async dump(): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const k of await this.keys()) {
      if (/:stats$|:epochs?:/.test(k)) continue;
      const type = await this.redis.type(k);
      if (type === 'zset') out[k] = await this.redis.zrange(k, 0, -1, 'WITHSCORES');
      else if (type === 'hash') out[k] = Object.fromEntries(Object.entries(await this.redis.hgetallBuffer(k)).map(([f, v]) => [f, v.toString('hex')]));
      else out[k] = await this.redis.get(k);
    }
    return out;
  }

  /** Deletes all state of this namespace (and this process's copies of it). */
  async reset(): Promise<void> {
    this.cache.clear();
    this.ckpts.clear();
    this.highest.clear();
    const keys = await this.keys();
    // One key per command: on a Cluster a multi-key UNLINK must stay within one slot.
    for (let i = 0; i < keys.length; i += 500) await Promise.all(keys.slice(i, i + 500).map((k) => this.redis.unlink(k)));
  }

  /** Stops reporting this state's size. */
  close(): void {
    this.metrics?.untrack(this);
  }
}

/**
 * Brute-force reference of the same semantics, in memory: keeps every applied event forever and
 * recomputes each aggregation from scratch (the property tests compare the Redis state to it).
 */
export class ReferenceStreamingState {
  private seq = 0;
  private readonly log = new Map<string, Array<{ t: number; seq: number; late: boolean; values: SlotValue[]; tag: string }>>();
  private readonly checkpoints = new Map<string, number>();
  readonly lateCounts = new Map<string, number>();

  constructor(readonly sets: readonly StreamingFeatureSetSpec[]) {}

  apply(topic: string, partition: number, events: readonly StreamEvent[]): StreamResult[] {
    const ck = this.checkpoints.get(`${topic}:${partition}`) ?? -1;
    const out = events.map((e) => {
      const replay = e.offset <= ck;
      const seq = replay ? undefined : ++this.seq;
      const tag = `${partition}:${e.offset}`;
      const res: StreamResult = { values: [], late: [] };
      this.sets.forEach((set, si) => {
        const entity = e.entities[si];
        if (entity === null) {
          res.values.push(set.fields.map(numericDefault));
          res.late.push(false);
          return;
        }
        const key = `${set.name}\u0000${entity}`;
        const log = this.log.get(key) ?? [];
        this.log.set(key, log);
        const maxT = log.length > 0 ? Math.max(...log.map((x) => x.t)) : undefined;
        let own = seq ?? Infinity;
        let late = maxT !== undefined && e.eventTime < maxT - set.config.allowedLatenessMs;
        if (replay) {
          const mine = log.find((x) => x.tag === tag);
          if (mine) {
            own = mine.seq;
            late = mine.late;
          }
        }
        res.late.push(late);
        res.values.push(set.fields.map((f) => referenceAggregate(f, set, log, e.eventTime, own, valueNames(set))));
        if (!replay) {
          log.push({ t: e.eventTime, seq: seq!, late, values: e.values[si], tag });
          if (late) this.lateCounts.set(set.name, (this.lateCounts.get(set.name) ?? 0) + 1);
        }
      });
      return res;
    });
    const last = events.reduce((m, e) => Math.max(m, e.offset), ck);
    this.checkpoints.set(`${topic}:${partition}`, last);
    return out;
  }
}

/** One aggregation as of t over a full event log (brute force, sorted by (time, seq) like the script). */
export function referenceAggregate(f: AggregationFieldSpec, set: StreamingFeatureSetSpec, log: ReadonlyArray<{ t: number; seq: number; late: boolean; values: SlotValue[] }>, t: number, ownSeq: number, slots: string[]): number {
  const w = effectiveWindow(f, set);
  const start = w.start(t);
  const slot = f.of ? slots.indexOf(f.of) : -1;
  const rows = log.filter((x) => !x.late && x.seq < ownSeq && x.t >= start && x.t <= t).sort((a, b) => a.t - b.t || a.seq - b.seq);
  const d = numericDefault(f);
  const nums = slot >= 0 && f.aggregation !== 'distinct_count' ? rows.map((r) => numericValue(r.values[slot])) : [];
  const sum = exactSum(nums);
  switch (f.aggregation) {
    case 'count':
      return rows.length;
    case 'sum':
      return sum;
    case 'mean':
      return rows.length > 0 ? sum / rows.length : d;
    case 'min':
      return nums.length > 0 ? nums.reduce((a, b) => (b < a ? b : a)) : d;
    case 'max':
      return nums.length > 0 ? nums.reduce((a, b) => (b > a ? b : a)) : d;
    case 'distinct_count':
      return new Set(rows.map((r) => String(r.values[slot]))).size;
    case 'last':
      return nums.length > 0 ? nums[nums.length - 1] : d;
    case 'time_since_prev':
      return rows.length > 0 ? t - rows[rows.length - 1].t : d;
  }
}

export { numericValue, type SlotValue };

/**
 * The correctly rounded sum of `xs` (Shewchuk's partials, as Python's math.fsum), which does not
 * depend on their order: the state keeps its sums this way, so evicting a bucket subtracts exactly.
 */
export function exactSum(xs: readonly number[]): number {
  const p: number[] = [];
  for (const x of xs) padd(p, x);
  return psum(p);
}
