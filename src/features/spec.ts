/**
 * Feature declarations (the topology file's `features:` section): pure description, validated by
 * JSON Schema before anything runs. The runtime lives in batch-store.ts (Redis batch sets),
 * streaming.ts (windowed aggregations) and enricher.ts (assembling a model's vector).
 *
 * Like processors, every feature source *kind* declares its own config and field specs (the Benthos
 * way), so a topology is checked field by field with the path of the bad value.
 */

/** Value types a feature may declare; all become doubles in the vector (boolean -> 0/1). */
export type FeatureType = 'double' | 'long' | 'int' | 'boolean';
export const FEATURE_TYPES: readonly FeatureType[] = ['double', 'long', 'int', 'boolean'];

export type AggregationKind = 'count' | 'sum' | 'mean' | 'min' | 'max' | 'distinct_count' | 'last' | 'time_since_prev';
export const AGGREGATIONS: readonly AggregationKind[] = ['count', 'sum', 'mean', 'min', 'max', 'distinct_count', 'last', 'time_since_prev'];

/**
 * Windows, all in event time and relative to the event `t` being scored, at the set's bucket
 * resolution R (`config.bucketMs`; every window size and hop is a multiple of R):
 * - `sliding` (sizeMs): the sizeMs / R buckets ending with t's bucket, up to t:
 *   [floor(t / R) * R + R - sizeMs, t]. So the window spans between sizeMs - R + 1 and sizeMs ms
 *   (with R = 1 it is exactly (t - sizeMs, t]).
 * - `hopping` (sizeMs, hopMs): the most recent hop-aligned window holding t,
 *   [end - sizeMs, t] with end = floor(t / hopMs) * hopMs + hopMs (exact at any R).
 * - `tumbling` (sizeMs): hopping with hopMs = sizeMs, i.e. [floor(t / sizeMs) * sizeMs, t].
 */
export interface WindowSpec {
  type: 'sliding' | 'hopping' | 'tumbling';
  sizeMs: number;
  hopMs?: number;
}

export interface FeatureFieldSpec {
  name: string;
  type: FeatureType;
  /** Value used when the entity is missing/stale (batch) or the window is empty (streaming). */
  default: number | boolean;
}

export interface AggregationFieldSpec extends FeatureFieldSpec {
  aggregation: AggregationKind;
  /** Event field or base (stateless) feature the aggregation reads; not needed for count/time_since_prev. */
  of?: string;
  /** Defaults to a sliding window of the set's stalenessMs. */
  window?: WindowSpec;
}

export interface BatchSetConfig {
  /** `default`: defaults (+ missing indicator); `dead_letter`: the event is dead-lettered. */
  onMissing?: 'default' | 'dead_letter';
  /** Name of a 0/1 feature set to 1 when the entity is missing or stale. */
  missingIndicator?: string;
  /** Old versions are deleted this long after a newer one became current (default 10 min). */
  gracePeriodMs?: number;
  /** Default file (relative to the repo root) for `tributary features load --set NAME` without --file; the demo loads it. */
  file?: string;
}

export interface StreamingSetConfig {
  /** Events whose time is more than this behind the entity's latest event time are late. */
  allowedLatenessMs: number;
  /** `ignore`: not added to the state, still scored; `dead_letter`: dead-lettered. Counted either way. */
  onLate?: 'ignore' | 'dead_letter';
  /**
   * Extra event-time retention beyond the largest window + allowedLatenessMs (default 1 h): late
   * events up to this much later than the lateness are still scored exactly.
   */
  replayRetentionMs?: number;
  /**
   * Bucket resolution R of the state (ms): per entity, events are summarised per bucket of R ms of
   * event time, so the cost of an event does not grow with the events in its window. Every window
   * size and hop must be a multiple of it. Default: the greatest common divisor of 60000 and every
   * window size and hop of the set (one minute for minute-aligned windows).
   */
  bucketMs?: number;
  /**
   * Make the state durable on Redis replicas before the Kafka transaction commits: after each
   * state write (one script per batch and slot group) the same connection sends `WAIT replicas
   * timeoutMs` to the node that ran it; fewer acknowledgements within timeoutMs fail the batch as a
   * transient error (retried, nothing committed to Kafka). Without it, a master that dies before
   * replicating and a promoted replica lose acknowledged state while Kafka keeps the offsets (the
   * events are never applied again). Costs one replication round trip per batch and slot group, and
   * blocks that node's connection meanwhile. Sets of one stage share their writes: the stage waits
   * for the most replicas (and longest timeout) any of its sets asks for. README "Redis Cluster".
   */
  durability?: StateDurability;
}

/** See StreamingSetConfig.durability. */
export interface StateDurability {
  /** Replicas that must acknowledge each state write (WAIT numreplicas); at least 1. */
  replicas: number;
  /** How long to wait for them (WAIT timeout, ms; default 100); below TRIBUTARY_REDIS_COMMAND_TIMEOUT_MS. */
  timeoutMs?: number;
}

/** WAIT timeout when a set's durability names none. */
export const DEFAULT_DURABILITY_TIMEOUT_MS = 100;

interface FeatureSetBase {
  name: string;
  /** Version of this set's definitions; the model card names the version it was trained with. */
  version: number;
  /** Event field holding the entity key, e.g. `cardId`. */
  entity: string;
  /** Batch: rows older than this (vs the event time) count as missing. Streaming: default window of last/time_since_prev. */
  stalenessMs?: number;
  description?: string;
}

export interface BatchFeatureSetSpec extends FeatureSetBase {
  kind: 'redis_batch';
  config: BatchSetConfig;
  fields: FeatureFieldSpec[];
}

export interface StreamingFeatureSetSpec extends FeatureSetBase {
  kind: 'windowed_aggregation';
  config: StreamingSetConfig;
  fields: AggregationFieldSpec[];
}

export type FeatureSetSpec = BatchFeatureSetSpec | StreamingFeatureSetSpec;

export interface FeaturesSpec {
  sets: FeatureSetSpec[];
}

const NAME = '^[A-Za-z][A-Za-z0-9_]*$';

const fieldBase = {
  name: { type: 'string', pattern: NAME },
  type: { enum: FEATURE_TYPES },
  default: { type: ['number', 'boolean'] },
};

const windowSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'sizeMs'],
  properties: {
    type: { enum: ['sliding', 'hopping', 'tumbling'] },
    sizeMs: { type: 'integer', minimum: 1 },
    hopMs: { type: 'integer', minimum: 1 },
  },
};

/** A feature source kind: its declared config and field specs (JSON Schema). */
export interface FeatureSourceKind {
  kind: FeatureSetSpec['kind'];
  summary: string;
  configSchema: Record<string, unknown>;
  fieldSchema: Record<string, unknown>;
}

export const featureSourceKinds: readonly FeatureSourceKind[] = [
  {
    kind: 'redis_batch',
    summary: 'Features computed by batch jobs, bulk-loaded into Redis (`tributary features load`), read per consumed batch.',
    configSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        onMissing: { enum: ['default', 'dead_letter'], default: 'default' },
        missingIndicator: { type: 'string', pattern: NAME },
        gracePeriodMs: { type: 'integer', minimum: 0 },
        file: { type: 'string', minLength: 1 },
      },
    },
    fieldSchema: { type: 'object', additionalProperties: false, required: ['name', 'type', 'default'], properties: fieldBase },
  },
  {
    kind: 'windowed_aggregation',
    summary: 'Event-time windowed aggregations per entity over the stage input, state in Redis (idempotent on replay).',
    configSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['allowedLatenessMs'],
      properties: {
        allowedLatenessMs: { type: 'integer', minimum: 0 },
        onLate: { enum: ['ignore', 'dead_letter'], default: 'ignore' },
        replayRetentionMs: { type: 'integer', minimum: 0 },
        bucketMs: { type: 'integer', minimum: 1 },
        durability: {
          type: 'object',
          additionalProperties: false,
          required: ['replicas'],
          properties: {
            replicas: { type: 'integer', minimum: 1 },
            // 0 would make WAIT block forever; the client's command timeout (5 s by default) caps it anyway.
            timeoutMs: { type: 'integer', minimum: 1, maximum: 60000 },
          },
        },
      },
    },
    fieldSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'type', 'default', 'aggregation'],
      properties: { ...fieldBase, aggregation: { enum: AGGREGATIONS }, of: { type: 'string', minLength: 1 }, window: windowSchema },
    },
  },
];

/** JSON Schema of the `features:` section (per-kind config/fields applied with if/then). */
export const featuresSectionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['sets'],
  properties: {
    sets: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'kind', 'version', 'entity', 'fields'],
        properties: {
          name: { type: 'string', pattern: NAME },
          kind: { enum: featureSourceKinds.map((k) => k.kind) },
          version: { type: 'integer', minimum: 1 },
          entity: { type: 'string', minLength: 1 },
          stalenessMs: { type: 'integer', minimum: 1 },
          description: { type: 'string' },
          config: { type: 'object', default: {} },
          fields: { type: 'array', minItems: 1, items: { type: 'object' } },
        },
        allOf: featureSourceKinds.map((k) => ({
          if: { properties: { kind: { const: k.kind } }, required: ['kind'] },
          then: { properties: { config: k.configSchema, fields: { items: k.fieldSchema } } },
        })),
      },
    },
  },
} as const;

const DEFAULT_BUCKET_MS = 60_000;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

function declaredWindow(field: AggregationFieldSpec, set: StreamingFeatureSetSpec): WindowSpec {
  return field.window ?? { type: 'sliding', sizeMs: set.stalenessMs ?? 0 };
}

/** The window sizes and hops (ms) of a streaming set's fields. */
function windowLengths(set: StreamingFeatureSetSpec): number[] {
  return set.fields.flatMap((f) => {
    const w = declaredWindow(f, set);
    return w.type === 'hopping' && w.hopMs ? [w.sizeMs, w.hopMs] : [w.sizeMs];
  });
}

/** Bucket resolution R of a streaming set: `config.bucketMs`, else gcd(60000, every window size and hop). */
export function bucketMsOf(set: StreamingFeatureSetSpec): number {
  return set.config.bucketMs ?? windowLengths(set).filter((x) => x > 0).reduce(gcd, DEFAULT_BUCKET_MS);
}

/** Window of an aggregation field after defaults (sliding over the set's stalenessMs), at the set's bucket resolution. */
export function effectiveWindow(field: AggregationFieldSpec, set: StreamingFeatureSetSpec): { start: (t: number) => number; sizeMs: number; type: WindowSpec['type']; hopMs: number } {
  const w = declaredWindow(field, set);
  const hop = w.type === 'tumbling' ? w.sizeMs : w.type === 'hopping' ? w.hopMs ?? w.sizeMs : 0;
  const r = bucketMsOf(set);
  return {
    type: w.type,
    sizeMs: w.sizeMs,
    hopMs: hop,
    start: (t) => (w.type === 'sliding' ? Math.floor(t / r) * r + r - w.sizeMs : Math.floor(t / hop) * hop + hop - w.sizeMs),
  };
}

/** Checks that need more than structure; returns [path relative to features.sets[i], message]. */
export function featureSetProblems(set: FeatureSetSpec, available: { eventFields: string[]; baseFeatures: string[] }): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (!available.eventFields.includes(set.entity)) out.push(['entity', `event has no field '${set.entity}' (fields: ${available.eventFields.join(', ')})`]);
  const names = set.fields.map((f) => f.name);
  names.forEach((n, i) => {
    if (names.indexOf(n) !== i) out.push([`fields[${i}].name`, `duplicate feature '${n}'`]);
  });
  if (set.kind === 'redis_batch') {
    if (set.config.missingIndicator && names.includes(set.config.missingIndicator)) out.push(['config.missingIndicator', `'${set.config.missingIndicator}' is also a field`]);
  } else {
    set.fields.forEach((f, i) => {
      const needsOf = !['count', 'time_since_prev'].includes(f.aggregation);
      if (needsOf && !f.of) out.push([`fields[${i}].of`, `aggregation '${f.aggregation}' needs 'of'`]);
      if (f.of && !available.eventFields.includes(f.of) && !available.baseFeatures.includes(f.of)) {
        out.push([`fields[${i}].of`, `'${f.of}' is neither an event field nor a base feature`]);
      }
      if (!f.window && !set.stalenessMs) out.push([`fields[${i}].window`, 'is required when the set has no stalenessMs']);
      if (f.window?.type === 'hopping' && !f.window.hopMs) out.push([`fields[${i}].window.hopMs`, 'is required for hopping windows']);
      if (f.window?.type === 'hopping' && f.window.hopMs && f.window.hopMs > f.window.sizeMs) out.push([`fields[${i}].window.hopMs`, 'must be <= sizeMs']);
      const r = set.config.bucketMs;
      if (r !== undefined) {
        const w = declaredWindow(f, set);
        const where = f.window ? `fields[${i}].window` : 'stalenessMs';
        if (w.sizeMs % r !== 0) out.push([f.window ? `${where}.sizeMs` : where, `${w.sizeMs} is not a multiple of config.bucketMs (${r}): windows are whole buckets`]);
        if (w.type === 'hopping' && w.hopMs && w.hopMs % r !== 0) out.push([`${where}.hopMs`, `${w.hopMs} is not a multiple of config.bucketMs (${r}): windows are whole buckets`]);
      }
    });
  }
  return out;
}

/** Feature names a set contributes to a vector, in order (batch: fields, then the missing indicator). */
export function setFeatureNames(set: FeatureSetSpec): string[] {
  const names = set.fields.map((f) => f.name);
  if (set.kind === 'redis_batch' && set.config.missingIndicator) names.push(set.config.missingIndicator);
  return names;
}

/** Declared type of each feature a set contributes. */
export function setFeatureTypes(set: FeatureSetSpec): Record<string, FeatureType> {
  const out: Record<string, FeatureType> = {};
  for (const f of set.fields) out[f.name] = f.type;
  if (set.kind === 'redis_batch' && set.config.missingIndicator) out[set.config.missingIndicator] = 'boolean';
  return out;
}

export function numericDefault(f: FeatureFieldSpec): number {
  return typeof f.default === 'boolean' ? (f.default ? 1 : 0) : f.default;
}

/** The topology's `features:` section: declared here so the spec layer (src/topology) imports no feature code. */
declare module '../topology/spec' {
  interface TopologySections {
    /** Feature sets (batch from Redis, streaming windowed aggregations) extraction stages may use. */
    features?: FeaturesSpec;
  }
}
