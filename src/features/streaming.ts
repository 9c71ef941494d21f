/**
 * Streaming (windowed-aggregation) features with incremental state in Redis.
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
 * Cost: an entity with at most `smallEntityEvents` events in its widest window (default 32) is
 *   scored by scanning them — bounded, and the cheapest for few events. Past that, the state keeps
 *   one summary per non-empty bucket (count, exact sum, min, max, last, distinct values with
 *   counts) and, per window, an accumulator of the buckets in it, built once from the events. An
 *   event in event-time order for its entity (t >= every time applied to it) is then scored from
 *   the accumulators: O(1) amortised plus O(log n) for min/max (sorted sets of bucket extremes) —
 *   flat in the number of events in the window. An out-of-order or late event is scored from the
 *   summaries of its window: whole blocks of `bucketsPerBlock` buckets inside it and buckets at
 *   its edges — O(window / (R * F) + 2 F) summaries (24 + up to 118 for 24 h at 1 min, F = 60)
 *   plus O(log n + events in its own bucket), since its own bucket counts only up to t: bounded by
 *   the window, not by the events, but not flat. Distinct counts are exact.
 * Lateness: an event is late when t < (the entity's greatest event time applied so far) -
 *   allowedLatenessMs. A late event is scored (as of t) but not added to the aggregations; it is
 *   counted (stats hash, `late:<set>`) and, with onLate: dead_letter, dead-lettered.
 * Retention: per entity, buckets and events older than (greatest event time - (largest window +
 *   allowed lateness + replayRetentionMs)) are evicted, which never changes a non-late event's
 *   vector (nor a late one's within replayRetentionMs past the lateness).
 * Idempotence: one atomic script (scripts/stream-apply.lua) per consumed batch of one partition
 *   and slot group. It refuses a caller whose fencing epoch (raised on partition assignment) is
 *   not current, skips applying offsets at or below the (partition, group) checkpoint, applies the
 *   rest, stores each applied event's vector under its offset and advances the checkpoint. A crash
 *   between the script and the Kafka offset commit thus replays the batch with the same vectors
 *   (read back from the stored ones) and without counting anything twice. Limit: vectors are kept
 *   for the last `replayRetentionOffsets` offsets of a partition (default 100,000) behind its
 *   checkpoint; an older replayed event is scored from the current state (best effort) and
 *   counted (`replay_missed`, tributary_streaming_replay_missed_total).
 * Determinism: vectors depend on the order events are applied. Within a partition that is the
 *   offset order; across partitions it is the interleaving of batches, so for runs to be
 *   reproducible (kill/restart = uninterrupted run, backfills) key the input topic by the entity.
 *
 * Key layout (namespace N = the stage's consumer group). Every key carries the hash tag of its
 * slot group {N:g}, g = hash(entity) mod slotGroups, so on a Redis Cluster a script's keys share
 * one slot and the groups spread over the shards; no key is shared by all groups.
 *   tributary:st:{N:g}:epoch:<topic>:<p>  tributary:st:{N:g}:ckpt:<topic>:<p>
 *   tributary:st:{N:g}:res:<topic>:<p> (stored vectors)  tributary:st:{N:g}:stats
 *   tributary:st:{N:g}:e:<set>:<len>:<entity> (+ :z :r :x<w>:<slot> :n<w>:<slot> :d<w>:<slot>)
 *   tributary:st:{N}:epochs:<topic>:<p> (epoch counter)  tributary:st:{N}:layout (slot groups)
 */
import type { ChainableCommander, Cluster } from 'ioredis';
import type Redis from 'ioredis';
import { ConfigError, TributaryError } from '../util/errors';
import { defineFeatureScripts, type FeatureScripts, type RedisClient } from './scripts';
import { bucketMsOf, effectiveWindow, numericDefault, type AggregationFieldSpec, type StreamingFeatureSetSpec } from './spec';
import type { StreamingBatchReport, StreamingMetrics } from './streaming-metrics';

export class FencedError extends TributaryError {
  override readonly name = 'FencedError';
}

const DEFAULT_REPLAY_RETENTION_MS = 3_600_000;
const DEFAULT_REPLAY_RETENTION_OFFSETS = 100_000;
const DEFAULT_SMALL_ENTITY_EVENTS = 32;
const DEFAULT_BUCKETS_PER_BLOCK = 60;
/** Slot groups per namespace when the client is a Redis Cluster (a single Redis needs only one). */
const DEFAULT_CLUSTER_SLOT_GROUPS = 16;

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

/** One event of a batch as the state sees it: per set, the entity (null = none) and the aggregated values. */
export interface StreamEvent {
  offset: number;
  eventTime: number;
  entities: Array<string | null>;
  /** Per set, per value slot (`valueNames(set)`), the value as a string (numbers via String()). */
  values: string[][];
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

const NUMERIC = new Set(['sum', 'mean', 'min', 'max', 'last']);
const POINT = new Set(['last', 'time_since_prev']);

/** The script's static description of a set: bucket resolution, windows and what each accumulates. */
function setRequest(set: StreamingFeatureSetSpec, small: number, bucketsPerBlock: number) {
  const slots = valueNames(set);
  const R = bucketMsOf(set);
  const wins: Array<{ t: 's' | 'h'; sz: number; hop: number; acc: boolean; mn: number[]; mx: number[]; ds: number[]; sm: number[]; key: string }> = [];
  const num = slots.map(() => false);
  const dis = slots.map(() => false);
  const aggs = set.fields.map((f: AggregationFieldSpec) => {
    const w = effectiveWindow(f, set);
    const t = w.type === 'sliding' ? ('s' as const) : ('h' as const);
    const key = `${t}:${w.sizeMs}:${w.hopMs}`;
    let wi = wins.findIndex((x) => x.key === key);
    if (wi < 0) wins.push({ t, sz: w.sizeMs, hop: w.hopMs, acc: false, mn: [], mx: [], ds: [], sm: [], key });
    wi = wins.findIndex((x) => x.key === key);
    const win = wins[wi];
    const slot = f.of ? slots.indexOf(f.of) + 1 : 0; // Lua arrays are 1-based
    if (!POINT.has(f.aggregation)) win.acc = true;
    if (slot > 0 && NUMERIC.has(f.aggregation)) num[slot - 1] = true;
    if (slot > 0 && f.aggregation === 'distinct_count') dis[slot - 1] = true;
    const add = (list: number[]) => !list.includes(slot) && list.push(slot);
    if (slot > 0 && (f.aggregation === 'sum' || f.aggregation === 'mean')) add(win.sm);
    if (slot > 0 && f.aggregation === 'min') add(win.mn);
    if (slot > 0 && f.aggregation === 'max') add(win.mx);
    if (slot > 0 && f.aggregation === 'distinct_count') add(win.ds);
    return { k: f.aggregation, f: f.aggregation === 'count' || f.aggregation === 'time_since_prev' ? 0 : slot, w: wi + 1, d: numericDefault(f) };
  });
  const maxW = Math.max(...wins.map((w) => w.sz));
  return {
    R,
    F: bucketsPerBlock,
    small,
    lat: set.config.allowedLatenessMs,
    ret: maxW + set.config.allowedLatenessMs + (set.config.replayRetentionMs ?? DEFAULT_REPLAY_RETENTION_MS),
    num,
    dis,
    wins: wins.map(({ key: _key, ...w }) => w),
    aggs,
  };
}

export interface StreamingStateOptions {
  /**
   * Slot groups (hash tags) the namespace's entities are spread over; fixed for the namespace's
   * life (checked by `init`). Default 1 on a single Redis, 16 on a Redis Cluster.
   */
  slotGroups?: number;
  /**
   * An entity with at most this many events in its widest window is scored by scanning them
   * (cheapest for the many entities with few events); past it, its bucket summaries and window
   * accumulators are built once and kept (flat cost per event). Default 32. Vectors are the same
   * either way.
   */
  smallEntityEvents?: number;
  /**
   * Buckets summarised together in a block (default 60: an hour of one-minute buckets): an
   * out-of-order event reads the whole blocks inside its window and buckets only at its edges.
   */
  bucketsPerBlock?: number;
  /** Stored vectors kept per partition for replays, in offsets behind the checkpoint (default 100,000). */
  replayRetentionOffsets?: number;
  /** Late events, evictions and missed replays are counted here; the state size is reported on scrape. */
  metrics?: StreamingMetrics;
}

type Reply = [Error | null, unknown];

/** What `plan` queued on a pipeline: how many replies it takes, and how to read them. */
export interface StreamPlan {
  commands: number;
  finish(replies: readonly Reply[]): StreamResult[];
}

/** Client of the streaming state of one stage (namespace) for a list of sets. */
export class StreamingState {
  private readonly request: ReturnType<typeof setRequest>[];
  private readonly staticRequest: string;
  readonly redis: RedisClient & FeatureScripts;
  readonly slotGroups: number;
  private readonly metrics?: StreamingMetrics;

  constructor(
    redis: Redis | Cluster,
    readonly namespace: string,
    readonly sets: readonly StreamingFeatureSetSpec[],
    options: StreamingStateOptions = {},
  ) {
    this.redis = defineFeatureScripts(redis);
    this.request = sets.map((s) => setRequest(s, options.smallEntityEvents ?? DEFAULT_SMALL_ENTITY_EVENTS, options.bucketsPerBlock ?? DEFAULT_BUCKETS_PER_BLOCK));
    this.slotGroups = options.slotGroups ?? (redis.isCluster ? DEFAULT_CLUSTER_SLOT_GROUPS : 1);
    if (!Number.isInteger(this.slotGroups) || this.slotGroups < 1) throw new ConfigError('slotGroups', `must be a positive integer, got ${this.slotGroups}`);
    if (options.bucketsPerBlock !== undefined && (!Number.isInteger(options.bucketsPerBlock) || options.bucketsPerBlock < 1)) throw new ConfigError('bucketsPerBlock', `must be a positive integer, got ${options.bucketsPerBlock}`);
    const keep = options.replayRetentionOffsets ?? DEFAULT_REPLAY_RETENTION_OFFSETS;
    this.staticRequest = JSON.stringify({ names: sets.map((s) => s.name), sets: this.request, keep }).slice(0, -1);
    this.metrics = options.metrics;
    this.metrics?.track(this);
  }

  get isCluster(): boolean {
    return this.redis.isCluster;
  }

  /**
   * Records the namespace's slot-group count on first use and refuses another one later: entities
   * would land in other groups and their state would be lost.
   */
  async init(): Promise<void> {
    const key = streamKeys.layout(this.namespace);
    const want = `incremental-v2 slotGroups=${this.slotGroups}`;
    await this.redis.set(key, want, 'NX');
    const have = await this.redis.get(key);
    if (have !== want) throw new ConfigError('slotGroups', `streaming state ${this.namespace} was created with '${have}', not '${want}' (reset the namespace to change it)`);
  }

  /**
   * Takes the fencing epoch of a partition (call on assignment): a new epoch from the partition's
   * counter, raised into every slot group, so any holder of an older epoch is fenced off.
   */
  async takeEpoch(topic: string, partition: number): Promise<number> {
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
    for (const raw of all) for (const [k, v] of Object.entries(raw)) if (k !== 'seq') out[k] = (out[k] ?? 0) + Number(v);
    return out;
  }

  /** Per set, the bucket summaries and stored events the state holds (metrics). */
  async stateSize(): Promise<Record<string, { buckets: number; events: number }>> {
    const st = await this.stats();
    return Object.fromEntries(this.sets.map((s) => [s.name, { buckets: st[`sb:${s.name}`] ?? 0, events: st[`sr:${s.name}`] ?? 0 }]));
  }

  /** The script calls of a batch: one per slot group holding an entity of the batch. */
  private calls(topic: string, partition: number, epoch: number, events: readonly StreamEvent[]) {
    const groups = new Map<number, { keys: string[]; index: Map<string, number>; ev: string[]; at: number[] }>();
    const where: Array<Array<number | undefined>> = events.map(() => []);
    events.forEach((e, i) => {
      const k: Array<Map<number, number>> = [];
      this.sets.forEach((s, si) => {
        const entity = e.entities[si];
        if (entity === null) return;
        const g = slotGroupOf(entity, this.slotGroups);
        let call = groups.get(g);
        if (!call) {
          call = { keys: [streamKeys.epoch(this.namespace, g, topic, partition), streamKeys.ckpt(this.namespace, g, topic, partition), streamKeys.results(this.namespace, g, topic, partition), streamKeys.stats(this.namespace, g)], index: new Map(), ev: [], at: [] };
          groups.set(g, call);
        }
        const key = streamKeys.entity(this.namespace, g, s.name, entity);
        let ki = call.index.get(key);
        if (ki === undefined) {
          call.keys.push(key);
          ki = call.keys.length; // Lua KEYS are 1-based
          call.index.set(key, ki);
        }
        (k[g] ??= new Map()).set(si, ki);
        where[i][si] = g;
      });
      // The event is counted (applied / replayed) by the group of its first entity only.
      const counter = where[i].find((g) => g !== undefined);
      for (const [g, bySet] of k.entries()) {
        if (!bySet) continue;
        const call = groups.get(g)!;
        call.at.push(i);
        call.ev.push(JSON.stringify({ o: e.offset, t: e.eventTime, c: g === counter ? 1 : 0, k: this.sets.map((_, si) => bySet.get(si) ?? 0), v: this.sets.map((_, si) => (bySet.has(si) ? e.values[si] : [])) }));
      }
    });
    const list = [...groups.entries()].map(([g, c]) => ({ g, at: c.at, args: [c.keys.length, ...c.keys, String(epoch), `${this.staticRequest},"ev":[${c.ev.join(',')}]}`] as Array<string | number> }));
    return { list, where };
  }

  private merge(topic: string, partition: number, events: readonly StreamEvent[], calls: ReturnType<StreamingState['calls']>, replies: readonly Reply[]): StreamResult[] {
    const parsed = new Map<number, string[][]>(); // group -> per event of the call, per set "late:values"
    calls.list.forEach((c, j) => {
      const [err, reply] = replies[j];
      if (err) {
        if (/FENCED/.test(err.message)) throw new FencedError(`stage state ${this.namespace}: ${topic}[${partition}] ${err.message.replace(/^.*FENCED /, '')}`);
        throw err;
      }
      const lines = reply as string[];
      const report = JSON.parse(lines[lines.length - 1]) as { late: Record<string, number> | unknown[]; evb: Record<string, number> | unknown[]; evr: Record<string, number> | unknown[]; missed: number };
      const obj = (x: Record<string, number> | unknown[]) => (Array.isArray(x) ? {} : x); // cjson writes an empty table as []
      const batch: StreamingBatchReport = { late: obj(report.late), evictedBuckets: obj(report.evb), evictedEvents: obj(report.evr), replayMissed: report.missed };
      this.metrics?.record(this.namespace, batch, (name) => this.sets.find((s) => s.name === name)?.config.onLate ?? 'ignore');
      const byEvent: string[][] = new Array(events.length);
      c.at.forEach((i, k) => (byEvent[i] = lines[k].split(';')));
      parsed.set(c.g, byEvent);
    });
    return events.map((_, i) => {
      const res: StreamResult = { values: [], late: [] };
      this.sets.forEach((s, si) => {
        const g = calls.where[i][si];
        if (g === undefined) {
          res.values.push(s.fields.map(numericDefault));
          res.late.push(false);
          return;
        }
        const part = parsed.get(g)![i][si];
        res.late.push(part[0] === '1');
        res.values.push(part.slice(2).split(',').map(Number));
      });
      return res;
    });
  }

  /**
   * Queues the batch's script calls (one per slot group present) on `p`, which must reach every
   * group's slot: a single Redis's pipeline. On a Cluster use `apply`.
   */
  plan(p: ChainableCommander, topic: string, partition: number, epoch: number, events: readonly StreamEvent[]): StreamPlan {
    const calls = this.calls(topic, partition, epoch, events);
    for (const c of calls.list) (p as unknown as { tribStreamApply(...a: Array<string | number>): void }).tribStreamApply(...c.args);
    return { commands: calls.list.length, finish: (replies) => this.merge(topic, partition, events, calls, replies) };
  }

  /** Applies one batch: one pipeline on a single Redis; on a Cluster one call per slot group, concurrently. */
  async apply(topic: string, partition: number, epoch: number, events: readonly StreamEvent[]): Promise<StreamResult[]> {
    const calls = this.calls(topic, partition, epoch, events);
    let replies: Reply[];
    if (this.isCluster) {
      replies = await Promise.all(calls.list.map((c) => this.redis.tribStreamApply(...c.args).then((r): Reply => [null, r], (err: Error): Reply => [err, null])));
    } else {
      const p = this.redis.pipeline();
      for (const c of calls.list) (p as unknown as { tribStreamApply(...a: Array<string | number>): void }).tribStreamApply(...c.args);
      replies = calls.list.length > 0 ? ((await p.exec()) as Reply[]) : [];
    }
    return this.merge(topic, partition, events, calls, replies);
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

  /** Deletes all state of this namespace. */
  async reset(): Promise<void> {
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
  private readonly log = new Map<string, Array<{ t: number; seq: number; late: boolean; values: string[]; tag: string }>>();
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
export function referenceAggregate(f: AggregationFieldSpec, set: StreamingFeatureSetSpec, log: ReadonlyArray<{ t: number; seq: number; late: boolean; values: string[] }>, t: number, ownSeq: number, slots: string[]): number {
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
      return new Set(rows.map((r) => r.values[slot])).size;
    case 'last':
      return nums.length > 0 ? nums[nums.length - 1] : d;
    case 'time_since_prev':
      return rows.length > 0 ? t - rows[rows.length - 1].t : d;
  }
}

/** A value slot as a number, as the script reads it: not a number -> 0, and never -0. */
function numericValue(raw: string): number {
  const x = Number(raw);
  return Number.isNaN(x) ? 0 : x + 0;
}

/**
 * The correctly rounded sum of `xs` (Shewchuk's partials, as Python's math.fsum), which does not
 * depend on their order: the script keeps its sums this way, so evicting a bucket subtracts exactly.
 */
export function exactSum(xs: readonly number[]): number {
  const p: number[] = [];
  for (let x of xs) {
    let i = 0;
    for (let j = 0; j < p.length; j++) {
      let y = p[j];
      if (Math.abs(x) < Math.abs(y)) [x, y] = [y, x];
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) p[i++] = lo;
      x = hi;
    }
    p.length = i;
    p.push(x);
  }
  let n = p.length;
  if (n === 0) return 0;
  let hi = p[--n];
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = p[--n];
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  if (n > 0 && ((lo < 0 && p[n - 1] < 0) || (lo > 0 && p[n - 1] > 0))) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  return hi + 0;
}
