/**
 * Assembles a model's feature vector for a consumed batch: stateless base features (declarative
 * definitions, e.g. models/fraud/features/fraud_txn.yaml), batch sets read from Redis and streaming windowed aggregations —
 * all Redis work of a batch in ONE pipelined round trip (pointer GETs + HMGETs of cache misses +
 * one EVALSHA per partition).
 */
import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';
import type { Registry } from 'prom-client';
import { fieldGetter } from '../util/field-path';
import type { FeatureExtractor } from './extractors';
import type { FeatureSetRef } from './declarative/spec';
import { BatchSetReader, commandsFor, type BatchLookup } from './batch-store';
import { FencedError, SCORED_LATE, StreamingState, valueNames, type StateCacheBounds, type StreamBatch, type BatchOut } from './streaming';
import { StreamingMetrics } from './streaming-metrics';
import type { BatchScope } from '../stages/processor';
import { setFeatureNames, setFeatureTypes, type BatchFeatureSetSpec, type FeatureSetSpec, type FeatureType, type FeaturesSpec, type StreamingFeatureSetSpec } from './spec';

/** The extraction stage's feature-related config (see src/stages/extraction.ts). */
export interface VectorConfig {
  /** Declarative stateless definitions: the base of the vector. */
  featureSet: FeatureSetRef;
  /** Name and definitions version of the assembled vector (the model card's features.set/version). */
  vector?: { set: string; version: number };
  /** Feature sets from the topology's `features:` section, in vector order after the base features. */
  features?: string[];
}

/** Where each feature of a vector comes from; what the model card's `features.definitions` is checked against. */
export interface FeatureDefinition {
  set: string;
  setVersion: number;
  type: FeatureType;
}

export interface VectorDescription {
  set: string;
  version: number;
  names: string[];
  definitions: Record<string, FeatureDefinition>;
  base: FeatureExtractor;
  sets: FeatureSetSpec[];
}

/** What an extraction stage produces, from its config, its compiled base definitions and the topology's feature declarations. Throws on unknown names. */
export function describeVector(config: VectorConfig, features: FeaturesSpec | undefined, base: FeatureExtractor): VectorDescription {
  const definitions: Record<string, FeatureDefinition> = {};
  for (const n of base.names) definitions[n] = { set: base.set, setVersion: base.version, type: 'double' };
  const sets = (config.features ?? []).map((name) => {
    const s = features?.sets.find((x) => x.name === name);
    if (!s) throw new Error(`no feature set '${name}' in the topology's features.sets (declared: ${(features?.sets ?? []).map((x) => x.name).join(', ') || 'none'})`);
    return s;
  });
  const names = [...base.names];
  for (const s of sets) {
    const types = setFeatureTypes(s);
    for (const n of setFeatureNames(s)) {
      if (definitions[n]) throw new Error(`feature '${n}' of set '${s.name}' clashes with one of set '${definitions[n].set}'`);
      definitions[n] = { set: s.name, setVersion: s.version, type: types[n] };
      names.push(n);
    }
  }
  const set = config.vector?.set ?? base.set;
  const version = config.vector?.version ?? base.version;
  if (sets.length > 0 && !config.vector) throw new Error(`'vector' (set and version of the assembled vector) is required with 'features'`);
  return { set, version, names, definitions, base, sets };
}

/**
 * Problems feeding a model whose card lists `card` with a vector `v`: missing names, other set or
 * definitions version, other type, other order. Empty when they fit.
 */
export function cardProblems(card: { set: string; version: number; names: string[]; definitions?: Record<string, Partial<FeatureDefinition>>; definitionsHash?: string }, v: Pick<VectorDescription, 'set' | 'version' | 'names' | 'definitions'> & { base?: Pick<FeatureExtractor, 'hash' | 'file'> }): string[] {
  const problems: string[] = [];
  if (card.definitionsHash !== undefined && v.base && card.definitionsHash !== v.base.hash) {
    problems.push(`definitions ${v.base.file} have hash ${v.base.hash}, the card was trained with ${card.definitionsHash}`);
  }
  if (card.set !== v.set) problems.push(`feature set '${v.set}' != card's '${card.set}'`);
  if (card.version !== v.version) problems.push(`feature version ${v.version} != card's ${card.version}`);
  const missing = card.names.filter((n) => !v.names.includes(n));
  if (missing.length > 0) problems.push(`missing features: ${missing.join(', ')}`);
  for (const [name, want] of Object.entries(card.definitions ?? {})) {
    const have = v.definitions[name];
    if (!have) continue;
    if (want.set !== undefined && want.set !== have.set) problems.push(`feature '${name}' comes from set '${have.set}', card wants '${want.set}'`);
    if (want.setVersion !== undefined && want.setVersion !== have.setVersion) problems.push(`feature '${name}': set '${have.set}' is version ${have.setVersion}, card wants ${want.setVersion}`);
    if (want.type !== undefined && want.type !== have.type) problems.push(`feature '${name}' has type ${have.type}, card wants ${want.type}`);
  }
  if (missing.length === 0 && card.names.join() !== v.names.join()) problems.push('feature order differs from the card');
  return problems;
}

export interface EnrichInput {
  /** The decoded input event (any Avro record). */
  event: unknown;
  /** Its event time (ms): the definitions' `eventTime` field, else the Kafka timestamp. */
  eventTime: number;
  topic: string;
  partition: number;
  offset: number;
  /**
   * The base features, already computed (a later per-entity step of a chained stage gets them from
   * the step before): used as they are instead of extracting them from the event again.
   */
  base?: number[];
}

export type EnrichOutput = { values: number[]; setVersions: Record<string, string> } | { error: string };

export interface EnricherStats {
  batches: number;
  roundTrips: number;
  cacheHits: number;
  cacheMisses: number;
  missing: Record<string, number>;
  late: Record<string, number>;
}

export interface EnricherOptions {
  /**
   * A single Redis, or a Redis Cluster client: then the streaming state's slot groups are spread
   * over the shards and each group's script is its own call, and a batch's batch-set reads are
   * single commands auto-pipelined per node (their entity keys span slots).
   */
  redis: Redis | Cluster;
  /** Streaming state namespace (the stage's consumer group). */
  namespace: string;
  cache?: { maxEntries?: number; ttlMs?: number };
  /** Streaming-state metrics (Redis time per batch, state size, evictions, late events) go here, e.g. the processor context's `metricsRegistry`. */
  metricsRegistry?: Registry;
  /** Slot groups of the streaming state (default 1 on a single Redis, 16 on a Cluster); see StreamingStateOptions. */
  slotGroups?: number;
  /** Bounds of the streaming state's in-memory entity cache (StreamingStateOptions cacheEntities / cacheBytes). */
  stateCache?: StateCacheBounds;
}

export class Enricher {
  readonly batchReaders: BatchSetReader[];
  readonly streaming: StreamingState | undefined;
  readonly stats: EnricherStats = { batches: 0, roundTrips: 0, cacheHits: 0, cacheMisses: 0, missing: {}, late: {} };
  private readonly streamingSets: StreamingFeatureSetSpec[];
  private readonly epochs = new Map<string, Promise<number>>();
  private readonly metrics?: StreamingMetrics;
  /** Per streaming set: its entity's getter and, per value slot, a base feature's index or a field getter (built once, not per event). */
  private readonly streamPlan: Array<{ entity: (v: unknown) => unknown; slots: Array<number | ((v: unknown) => unknown)> }>;
  /**
   * Values per vector this enricher assembles: the base features and its own sets'. Not
   * `vector.names.length`: a per-entity step of a chained stage computes a part of the names.
   */
  private readonly width: number;

  constructor(
    readonly vector: VectorDescription,
    private readonly opts: EnricherOptions,
  ) {
    this.batchReaders = vector.sets.filter((s): s is BatchFeatureSetSpec => s.kind === 'redis_batch').map((s) => new BatchSetReader(s, { cacheMaxEntries: opts.cache?.maxEntries, cacheTtlMs: opts.cache?.ttlMs }));
    this.streamingSets = vector.sets.filter((s): s is StreamingFeatureSetSpec => s.kind === 'windowed_aggregation');
    this.metrics = opts.metricsRegistry ? StreamingMetrics.for(opts.metricsRegistry) : undefined;
    const baseNames = vector.base.names;
    this.width = vector.sets.reduce((n, s) => n + setFeatureNames(s).length, baseNames.length);
    this.streamPlan = this.streamingSets.map((s) => ({
      entity: this.getter(s.entity),
      // A base feature of that name wins over an event field (the last one, as a name -> value map would give).
      slots: valueNames(s).map((n) => (baseNames.lastIndexOf(n) >= 0 ? baseNames.lastIndexOf(n) : this.getter(n))),
    }));
    this.streaming = this.streamingSets.length > 0 ? new StreamingState(opts.redis, opts.namespace, this.streamingSets, { metrics: this.metrics, slotGroups: opts.slotGroups, cacheEntities: opts.stateCache?.maxEntities, cacheBytes: opts.stateCache?.maxBytes }) : undefined;
  }

  async init(): Promise<void> {
    await Promise.all(this.batchReaders.map((r) => r.init(this.opts.redis)));
    await this.streaming?.init();
  }

  /** Stops reporting the streaming state's size. */
  close(): void {
    this.streaming?.close();
  }

  /** Partition assignment: takes a new fencing epoch for each assigned partition (older holders are fenced off). */
  onAssignment(assignment: Record<string, number[]>): void {
    if (!this.streaming) return;
    this.epochs.clear();
    for (const [topic, parts] of Object.entries(assignment)) {
      for (const p of parts) {
        const e = this.streaming.takeEpoch(topic, p);
        e.catch(() => undefined);
        this.epochs.set(`${topic}\u0000${p}`, e);
      }
    }
  }

  private epoch(topic: string, partition: number): Promise<number> {
    const k = `${topic}\u0000${partition}`;
    let e = this.epochs.get(k);
    if (!e) {
      e = this.streaming!.takeEpoch(topic, partition);
      this.epochs.set(k, e);
    }
    return e;
  }

  private readonly getters = new Map<string, (v: unknown) => unknown>();

  /** The getter of a field path (cached per path). */
  private getter(field: string): (v: unknown) => unknown {
    let get = this.getters.get(field);
    if (!get) {
      get = fieldGetter(field);
      this.getters.set(field, get);
    }
    return get;
  }

  /** An event's entity for a set (a field path): null when absent, empty or holding braces (batch keys hash-tag the entity). */
  private readonly entityOf = (event: unknown, field: string): string | null => entityValue(this.getter(field)(event));

  /** A partition's records as the streaming state reads them: per set the entity and the values its aggregations read (columns, no object per event). */
  private streamBatch(inputs: readonly EnrichInput[], idx: readonly number[], base: ReadonlyArray<number[] | undefined>): StreamBatch {
    const state = this.streaming!;
    const plan = this.streamPlan;
    const nSets = plan.length;
    const b = state.batch(idx.length);
    const { slotWidth, slotBase } = state;
    for (let k = 0; k < idx.length; k++) {
      const input = inputs[idx[k]];
      const event = input.event;
      const fv = base[idx[k]]!;
      b.offsets[k] = input.offset;
      b.eventTimes[k] = input.eventTime;
      for (let si = 0; si < nSets; si++) {
        const { entity, slots } = plan[si];
        b.entities[k * nSets + si] = entityValue(entity(event));
        const at = k * slotWidth + slotBase[si];
        for (let j = 0; j < slots.length; j++) {
          const src = slots[j];
          // A base feature goes as its number: the state would parse its String() back to it.
          b.values[at + j] = typeof src === 'number' ? fv[src] : String(src(event) ?? '');
        }
      }
    }
    return b;
  }

  /**
   * The batch sets' reads of a batch, planned and sent as one pipeline (one round trip); undefined
   * without batch sets. Its reply is awaited by the caller.
   */
  private sendBatchReads(inputs: readonly EnrichInput[], ok: readonly number[]) {
    if (this.batchReaders.length === 0) return undefined;
    const p = commandsFor(this.opts.redis);
    const entityOf = this.entityOf;
    const times = ok.map((i) => inputs[i].eventTime);
    const readers = this.batchReaders.map((r) => ({ r, plan: r.plan(p, ok.map((i) => entityOf(inputs[i].event, r.set.entity)), times) }));
    const exec = p.exec();
    exec.catch(() => undefined); // awaited by the caller; a streaming error first must not leave it unhandled
    return { readers, exec };
  }

  /**
   * The vectors of a batch, in order; per-record problems come back as `{ error }`. With a `scope`
   * (the engine's chain), the streaming state's commits are handed to `scope.beforeCommit` and the
   * vectors come back once computed; without one they come back once the state is committed.
   */
  async enrich(inputs: readonly EnrichInput[], scope?: BatchScope): Promise<EnrichOutput[]> {
    const { vector } = this;
    this.stats.batches++;
    const out: EnrichOutput[] = new Array(inputs.length);
    const base: Array<number[] | undefined> = inputs.map((r, i) => {
      try {
        const v = r.base ?? vector.base.extract(r.event);
        if (!allFinite(v)) throw new Error(`non-finite value for ${vector.base.names.filter((_, k) => !Number.isFinite(v[k])).join(', ')}`);
        return v;
      } catch (err) {
        out[i] = { error: `feature extraction failed: ${(err as Error).message}` };
        return undefined;
      }
    });
    const ok = inputs.map((_, i) => i).filter((i) => base[i] !== undefined);
    const entityOf = this.entityOf;

    // Streaming: the batch grouped by partition (each has its own checkpoint and epoch).
    const byPartition = groupByPartition(inputs, ok);
    const epochs = this.streaming ? await Promise.all([...byPartition.values()].map((idx) => this.epoch(inputs[idx[0]].topic, inputs[idx[0]].partition))) : [];

    // Per input, its partition group's flat results and its place in them (-1: not streamed).
    let streamOut: BatchOut[] = [];
    const streamAt: Int32Array = new Int32Array(inputs.length).fill(-1);
    const streamPos: Int32Array = new Int32Array(inputs.length);
    let batchResults: Array<{ lookups: BatchLookup[]; version: string }> = [];
    const cluster = this.opts.redis.isCluster;
    const started = process.hrtime.bigint();
    // With the state written behind (a scope), the batch-set reads go out first: their round trip
    // overlaps the state's compute below (on one connection, replies come in the order sent — sent
    // after the state's commit, the reads' reply would wait behind it). Without one the batch waits
    // for the commit anyway: the commit goes first and the reads' planning overlaps its round trip.
    let reads = scope ? this.sendBatchReads(inputs, ok) : undefined;
    // Streaming: per partition, the state computes in memory and commits once per slot group; with
    // a scope the commits are written behind the vectors (the chain awaits them before the batch commits).
    const defer = scope ? (landed: Promise<void>) => scope.beforeCommit(landed) : undefined;
    const streaming = this.streaming
      ? Promise.all([...byPartition.values()].map((idx, j) => this.streaming!.applyFlat(inputs[idx[0]].topic, inputs[idx[0]].partition, epochs[j], this.streamBatch(inputs, idx, base), defer)))
      : undefined;
    streaming?.catch(() => undefined); // awaited below; a batch-set error must not leave it unhandled
    reads ??= this.sendBatchReads(inputs, ok);
    for (let attempt = 0; reads; attempt++) {
      const replies = (await reads.exec) ?? [];
      this.stats.roundTrips++;
      let at = 0;
      const finished = reads.readers.map(({ plan }) => {
        const slice = replies.slice(at, at + plan.commands).map(([err, v]) => {
          if (err) throw err;
          return v;
        });
        at += plan.commands;
        return plan.finish(slice);
      });
      if (finished.some((f) => f.retry) && attempt < 3) {
        reads = this.sendBatchReads(inputs, ok); // a batch set's version vanished under us: read again with the current one
        continue;
      }
      batchResults = finished;
      break;
    }
    if (streaming) {
      streamOut = await streaming;
      let j = 0;
      for (const idx of byPartition.values()) {
        for (let k = 0; k < idx.length; k++) {
          streamAt[idx[k]] = j;
          streamPos[idx[k]] = k;
        }
        j++;
      }
      // On a Cluster the scripts are their own calls, apart from the batch-set reads.
      if (cluster || this.batchReaders.length === 0) this.stats.roundTrips++;
    }
    this.metrics?.redisSeconds.observe({ namespace: this.opts.namespace }, Number(process.hrtime.bigint() - started) / 1e9);
    this.stats.cacheHits = this.batchReaders.reduce((n, r) => n + r.cache.hits, 0);
    this.stats.cacheMisses = this.batchReaders.reduce((n, r) => n + r.cache.misses, 0);

    const setVersions: Record<string, string> = {};
    this.batchReaders.forEach((r, j) => (setVersions[r.set.name] = batchResults[j].version || 'none'));
    const width = this.width;
    ok.forEach((i, k) => {
      // The vector written in place (one array of its final length, no spreads or regrowth).
      const values: number[] = new Array(width);
      const b = base[i]!;
      let w = 0;
      for (let x = 0; x < b.length; x++) values[w++] = b[x];
      let error: string | undefined;
      let bi = 0;
      let si = 0;
      for (const s of vector.sets) {
        if (s.kind === 'redis_batch') {
          const look = batchResults[bi++].lookups[k];
          for (let x = 0; x < look.values.length; x++) values[w++] = look.values[x];
          if (s.config.missingIndicator) values[w++] = look.missing ? 1 : 0;
          if (look.missing) {
            this.stats.missing[s.name] = (this.stats.missing[s.name] ?? 0) + 1;
            if (s.config.onMissing === 'dead_letter') error ??= `feature set ${s.name}: entity ${s.entity}=${entityOf(inputs[i].event, s.entity) ?? '(none)'} ${look.stale ? 'is stale' : 'is missing'} in version ${batchResults[bi - 1].version || 'none'}`;
          }
        } else {
          const r = streamOut[streamAt[i]];
          w = this.streaming!.copyValues(r, streamPos[i], si, values, w);
          if (r.state[streamPos[i] * this.streamPlan.length + si] === SCORED_LATE) {
            this.stats.late[s.name] = (this.stats.late[s.name] ?? 0) + 1;
            if (s.config.onLate === 'dead_letter') error ??= `feature set ${s.name}: event time ${inputs[i].eventTime} is later than the allowed lateness of ${s.config.allowedLatenessMs} ms`;
          }
          si++;
        }
      }
      if (w !== width) throw new Error(`vector of ${w} values, ${width} declared by its sets`); // a set gave other values than it declares
      out[i] = error ? { error } : { values, setVersions };
    });
    return out;
  }
}

/** Whether every value is a finite number (a loop: a closure per event for `some` was an allocation per event). */
function allFinite(v: readonly number[]): boolean {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return false;
  return true;
}

/**
 * The indexes `ok` of the inputs grouped by (topic, partition), in first-seen order. A consumed
 * batch is usually one partition's: that case is checked first and makes no key per event.
 */
function groupByPartition(inputs: readonly EnrichInput[], ok: readonly number[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  if (ok.length === 0) return out;
  const { topic, partition } = inputs[ok[0]];
  let one = true;
  for (let x = 1; x < ok.length && one; x++) one = inputs[ok[x]].partition === partition && inputs[ok[x]].topic === topic;
  if (one) {
    out.set(`${topic}\u0000${partition}`, ok.slice());
    return out;
  }
  for (const i of ok) {
    const k = `${inputs[i].topic}\u0000${inputs[i].partition}`;
    const list = out.get(k);
    if (list) list.push(i);
    else out.set(k, [i]);
  }
  return out;
}

/** An entity value as a string key: null when absent, empty or holding braces (batch keys hash-tag the entity). */
function entityValue(v: unknown): string | null {
  if (v === undefined || v === null || v === '') return null;
  const s = String(v);
  return s.includes('{') || s.includes('}') ? null : s;
}

export { FencedError };
