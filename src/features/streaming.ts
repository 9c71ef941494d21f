/**
 * Streaming (windowed-aggregation) features with state in Redis.
 *
 * Semantics — "as of" an event e at event time t, for one entity and one aggregation:
 *   the aggregation runs over the entity's events that were applied *before* e (a lower apply
 *   sequence number), were not late, and whose event time lies in the aggregation's window ending
 *   at t (see WindowSpec in spec.ts; never after t). So an event with a later event time that was
 *   processed earlier never leaks into an earlier event's vector, and e itself is not counted
 *   (`count` = events before this one; `time_since_prev` = t minus the latest such event's time).
 *   Ties on event time: `last`/`time_since_prev` take the latest applied.
 * Lateness: an event is late when t < (the entity's greatest event time applied so far) -
 *   allowedLatenessMs. A late event is scored (as of t) but not added to the aggregations; it is
 *   counted (stats hash, `late:<set>`) and, with onLate: dead_letter, dead-lettered.
 * Retention: per entity, events older than (greatest event time - (largest window + allowed
 *   lateness + replayRetentionMs)) are trimmed, which never changes a non-late event's vector.
 * Idempotence: one atomic script (scripts/stream-apply.lua) per consumed batch of one partition.
 *   It refuses a caller whose fencing epoch (INCR on partition assignment) is not current, skips
 *   applying offsets at or below the partition's checkpoint (but still scores them, exactly as the
 *   first time: their apply sequence is stored with them), applies the rest and advances the
 *   checkpoint. A crash between the script and the Kafka offset commit thus replays the batch with
 *   the same vectors and without counting anything twice.
 * Determinism: vectors depend on the order events are applied. Within a partition that is the
 *   offset order; across partitions it is the interleaving of batches, so for runs to be
 *   reproducible (kill/restart = uninterrupted run, backfills) key the input topic by the entity.
 *
 * Key layout (namespace N = the stage's consumer group; one Redis Cluster hash tag for all of it,
 * since a batch's script touches many entities):
 *   tributary:st:{N}:epoch:<topic>:<p>  tributary:st:{N}:ckpt:<topic>:<p>
 *   tributary:st:{N}:seq  tributary:st:{N}:stats  tributary:st:{N}:<set>:<entity> (sorted set)
 */
import type Redis from 'ioredis';
import type { ChainableCommander } from 'ioredis';
import { TributaryError } from '../util/errors';
import { defineFeatureScripts } from './scripts';
import { effectiveWindow, numericDefault, type AggregationFieldSpec, type StreamingFeatureSetSpec } from './spec';

export class FencedError extends TributaryError {
  override readonly name = 'FencedError';
}

const DEFAULT_REPLAY_RETENTION_MS = 3_600_000;

export const streamKeys = {
  epoch: (ns: string, topic: string, p: number) => `tributary:st:{${ns}}:epoch:${topic}:${p}`,
  ckpt: (ns: string, topic: string, p: number) => `tributary:st:{${ns}}:ckpt:${topic}:${p}`,
  seq: (ns: string) => `tributary:st:{${ns}}:seq`,
  stats: (ns: string) => `tributary:st:{${ns}}:stats`,
  entity: (ns: string, set: string, entity: string) => `tributary:st:{${ns}}:${set}:${entity}`,
  pattern: (ns: string) => `tributary:st:{${ns}}:*`,
};

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

function setRequest(set: StreamingFeatureSetSpec) {
  const slots = valueNames(set);
  const aggs = set.fields.map((f: AggregationFieldSpec) => {
    const w = effectiveWindow(f, set);
    return { k: f.aggregation, f: f.of ? slots.indexOf(f.of) + 1 : 0, wt: w.type === 'sliding' ? 's' : 'h', sz: w.sizeMs, hop: w.hopMs, d: String(numericDefault(f)) };
  });
  const maxW = Math.max(...aggs.map((a) => a.sz));
  return { lat: set.config.allowedLatenessMs, ret: maxW + set.config.allowedLatenessMs + (set.config.replayRetentionMs ?? DEFAULT_REPLAY_RETENTION_MS), maxW, aggs };
}

/** Client of the streaming state of one stage (namespace) for a list of sets. */
export class StreamingState {
  private readonly request: ReturnType<typeof setRequest>[];
  readonly redis: ReturnType<typeof defineFeatureScripts>;

  constructor(
    redis: Redis,
    readonly namespace: string,
    readonly sets: readonly StreamingFeatureSetSpec[],
  ) {
    this.redis = defineFeatureScripts(redis);
    this.request = sets.map(setRequest);
  }

  /** Takes the fencing epoch of a partition (call on assignment): any holder of an older epoch is fenced off. */
  async takeEpoch(topic: string, partition: number): Promise<number> {
    return this.redis.incr(streamKeys.epoch(this.namespace, topic, partition));
  }

  async checkpoint(topic: string, partition: number): Promise<number> {
    return Number((await this.redis.get(streamKeys.ckpt(this.namespace, topic, partition))) ?? -1);
  }

  async stats(): Promise<Record<string, number>> {
    const raw = await this.redis.hgetall(streamKeys.stats(this.namespace));
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }

  /** Queues the batch's script call on `p`; `finish` parses its reply (throws FencedError when fenced). */
  plan(p: ChainableCommander, topic: string, partition: number, epoch: number, events: readonly StreamEvent[]): (reply: [Error | null, unknown]) => StreamResult[] {
    const keys = [streamKeys.epoch(this.namespace, topic, partition), streamKeys.ckpt(this.namespace, topic, partition), streamKeys.seq(this.namespace), streamKeys.stats(this.namespace)];
    const index = new Map<string, number>();
    const ev = events.map((e) => ({
      o: e.offset,
      t: e.eventTime,
      k: this.sets.map((s, si) => {
        const entity = e.entities[si];
        if (entity === null) return 0;
        const key = streamKeys.entity(this.namespace, s.name, entity);
        let i = index.get(key);
        if (i === undefined) {
          keys.push(key);
          i = keys.length; // Lua KEYS are 1-based
          index.set(key, i);
        }
        return i;
      }),
      v: e.values,
    }));
    const req = JSON.stringify({ p: partition, names: this.sets.map((s) => s.name), sets: this.request, ev });
    (p as unknown as { tribStreamApply(...a: Array<string | number>): void }).tribStreamApply(keys.length, ...keys, String(epoch), req);
    return ([err, reply]) => {
      if (err) {
        if (/FENCED/.test(err.message)) throw new FencedError(`stage state ${this.namespace}: ${topic}[${partition}] ${err.message.replace(/^.*FENCED /, '')}`);
        throw err;
      }
      return (reply as string[]).map((line) => {
        const parts = line.split(';');
        return { late: parts.map((s) => s[0] === '1'), values: parts.map((s) => s.slice(2).split(',').map(Number)) };
      });
    };
  }

  /** Applies one batch in its own round trip (tests, tools). */
  async apply(topic: string, partition: number, epoch: number, events: readonly StreamEvent[]): Promise<StreamResult[]> {
    const p = this.redis.pipeline();
    const finish = this.plan(p, topic, partition, epoch, events);
    const res = await p.exec();
    return finish(res![0] as [Error | null, unknown]);
  }

  /** A snapshot of all state keys but the stats counters (tests: replay must leave it identical). */
  async dump(): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', streamKeys.pattern(this.namespace), 'COUNT', 1000);
      cursor = next;
      for (const k of keys) {
        if (k === streamKeys.stats(this.namespace)) continue;
        const type = await this.redis.type(k);
        out[k] = type === 'zset' ? await this.redis.zrange(k, 0, -1, 'WITHSCORES') : type === 'hash' ? await this.redis.hgetall(k) : await this.redis.get(k);
      }
    } while (cursor !== '0');
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  /** Deletes all state of this namespace. */
  async reset(): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', streamKeys.pattern(this.namespace), 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await this.redis.unlink(...keys);
    } while (cursor !== '0');
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
  const nums = slot >= 0 && f.aggregation !== 'distinct_count' ? rows.map((r) => Number(r.values[slot])) : [];
  let sum = 0;
  for (const x of nums) sum += x;
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
