import { connectRedisClient } from '../util/redis';
import type { Cluster, Redis } from 'ioredis';
import type { FeatureVector } from '../engine/records';
import { createExtractor, type FeatureExtractor, type InputSchemaRef } from '../features/extractors';
import { Enricher, describeVector, type EnrichInput, type EnrichOutput, type VectorConfig, type VectorDescription } from '../features/enricher';
import type { StateCacheBounds } from '../features/streaming';
import { setFeatureNames, type FeatureSetSpec } from '../features/spec';
import { FeatureDefinitionsError } from '../features/declarative/load';
import { topologySchemas } from '../kafka/avro-schemas';
import { RecordRejection } from '../kafka/dead-letter';
import type { EntityStepSpec, LoadedTopology } from '../topology/spec';
import { resolveEndpoints } from '../util/endpoints';
import { ConfigError } from '../util/errors';
import { featureFunctionsFor } from './plugin-loader';
import { entityKey, parseFieldPath } from '../util/field-path';
import type { BatchScope, InputRecord, PartialValues, Processor, ProcessorContext, ProcessorDefinition, ProcessResult } from './processor';

export interface ExtractionConfig extends VectorConfig {
  /** In-process LRU of batch-set rows (defaults: 100000 entries, 30 s). */
  cache?: { maxEntries?: number; ttlMs?: number };
  /** Namespace of the streaming state in Redis; default the stage's consumer group. */
  stateNamespace?: string;
  /**
   * In-memory window state of the streaming sets' entities (an LRU; Redis holds the durable copy):
   * at most maxEntities entities (default 100000) and maxBytes estimated heap bytes (default a
   * quarter of the V8 heap limit).
   */
  stateCache?: StateCacheBounds;
}

/** An extraction processor; `enricher` is set when the stage uses feature sets from the topology. */
export interface ExtractionProcessor extends Processor<Record<string, unknown>, FeatureVector> {
  readonly enricher?: Enricher;
}

/**
 * The Avro schema of the input topic of the extraction stage whose config is `config` (the stage
 * holding this very config object, else the first extraction stage naming the same definitions file).
 * The definitions are checked against it: nothing here knows a particular event type.
 */
export function extractionInputSchema(topology: LoadedTopology, config: ExtractionConfig): InputSchemaRef {
  const stages = topology.spec.stages.filter((s) => s.processor === 'feature_extraction');
  const stage = stages.find((s) => s.config === (config as unknown)) ?? stages.find((s) => (s.config as Partial<ExtractionConfig>).featureSet?.file === config.featureSet?.file);
  // A per-entity step after the first reads partial records: the events are its stage's input topic's.
  const eventTopic = stage?.entityStep?.eventTopic ?? stage?.input.topic;
  const topic = eventTopic && topology.spec.topics.find((t) => t.name === eventTopic);
  if (!topic) throw new Error('no input topic for this extraction stage');
  const catalog = topologySchemas(topology);
  return { name: topic.schema, type: catalog.get(topic.schema).type };
}

/** The stage's compiled stateless definitions. Throws FeatureDefinitionsError (problems with their paths in the file). */
export function extractionBase(config: ExtractionConfig, ctx: Pick<ProcessorContext, 'topology'>): FeatureExtractor {
  return createExtractor(config.featureSet, ctx.topology.baseDir, extractionInputSchema(ctx.topology, config), featureFunctionsFor(ctx.topology));
}

/** What the stage outputs (set, version, names, per-feature definitions); used by onnx_inference's version sync. */
export function extractionVector(config: ExtractionConfig, ctx: Pick<ProcessorContext, 'topology'>) {
  return describeVector(config, ctx.topology.spec.features, extractionBase(config, ctx));
}

/**
 * The sets one per-entity step of a chained extraction stage computes (README "Two entities on one
 * input"): the windowed sets of its entity, and — the first step — the batch sets, which need no
 * order and are read once, with the base features.
 */
export function entityStepSets(sets: readonly FeatureSetSpec[], step: Pick<EntityStepSpec, 'entity' | 'index'>): FeatureSetSpec[] {
  return sets.filter((s) => (s.kind === 'windowed_aggregation' ? s.entity === step.entity : step.index === 0));
}

/** The features the steps before `step` have computed, in the vector's order (what its partial records must carry). */
export function featuresBefore(vector: Pick<VectorDescription, 'names' | 'base' | 'sets'>, step: EntityStepSpec): string[] {
  const done = new Set(vector.base.names);
  for (let k = 0; k < step.index; k++) for (const s of entityStepSets(vector.sets, { entity: step.entities[k], index: k })) for (const n of setFeatureNames(s)) done.add(n);
  return vector.names.filter((n) => done.has(n));
}

/** input events -> feature vectors, one per event, keyed by the event's key. */
export const featureExtraction: ProcessorDefinition<ExtractionConfig> = {
  name: 'feature_extraction',
  summary: 'Turns input events (any Avro record) into named feature vectors: declarative stateless features from a definitions file, plus batch (Redis) and streaming feature sets declared in the topology.',
  inputSchema: '*',
  outputSchema: 'feature-vector',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['featureSet'],
    properties: {
      featureSet: {
        type: 'object',
        additionalProperties: false,
        required: ['file'],
        description: 'Declarative stateless feature definitions (YAML; format in README "Declarative features", semantics in src/features/declarative/SEMANTICS.md), checked against the input topic\'s Avro schema.',
        properties: { file: { type: 'string', minLength: 1, description: 'Definitions file, relative to the repository root, e.g. models/fraud/features/fraud_txn.yaml.' } },
      },
      vector: {
        type: 'object',
        additionalProperties: false,
        required: ['set', 'version'],
        properties: { set: { type: 'string', minLength: 1 }, version: { type: 'integer', minimum: 1 } },
      },
      features: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
      cache: {
        type: 'object',
        additionalProperties: false,
        properties: { maxEntries: { type: 'integer', minimum: 0 }, ttlMs: { type: 'integer', minimum: 0 } },
      },
      stateNamespace: { type: 'string', pattern: '^[A-Za-z0-9._-]+$' },
      stateCache: {
        type: 'object',
        additionalProperties: false,
        description: 'In-memory window state of the streaming sets (LRU over entities; Redis keeps the durable copy). Past either bound the least recently used entities are dropped and reloaded from Redis when touched again.',
        properties: {
          maxEntities: { type: 'integer', minimum: 1, description: 'Entities held (default 100000).' },
          maxBytes: { type: 'integer', minimum: 1, description: 'Estimated heap bytes held (default a quarter of the V8 heap limit).' },
        },
      },
    },
  },
  validate(config, ctx) {
    try {
      extractionBase(config, ctx);
    } catch (err) {
      if (err instanceof FeatureDefinitionsError) return err.problems.map((p) => new ConfigError('featureSet.file', `${config.featureSet.file}: ${p.path || '(root)'}: ${p.message}`));
      return [new ConfigError('featureSet.file', (err as Error).message)];
    }
    try {
      extractionVector(config, ctx);
      return [];
    } catch (err) {
      return [new ConfigError(config.vector || !config.features ? 'features' : 'vector', (err as Error).message)];
    }
  },
  partitionKeys(config, ctx) {
    // Windowed aggregations are order-dependent per entity; batch sets are not.
    const sets = ctx.topology.spec.features?.sets ?? [];
    const entities = (config.features ?? []).map((n) => sets.find((s) => s.name === n)).filter((s) => s?.kind === 'windowed_aggregation').map((s) => s!.entity);
    return [...new Set(entities)];
  },
  // Windowed sets on several entities: one step per entity, chained (see entityStepSets).
  entitySteps: true,
  async create(config, ctx): Promise<ExtractionProcessor> {
    const vector = extractionVector(config, ctx);
    // Frozen: the same names go out with every vector, and the Avro encoder writes a frozen array once (avro-repeated-arrays.ts).
    const names = Object.freeze([...vector.names]) as string[];
    const step = ctx.stage.entityStep;
    // A per-entity step computes its own sets only; the rest comes from (or goes to) the other steps.
    const own: VectorDescription = step ? { ...vector, sets: entityStepSets(vector.sets, step) } : vector;
    // Each step is a consumer group of its own, and so is its state; an explicit namespace is the stage's, its earlier steps' suffixed.
    const explicit = config.stateNamespace && step && ctx.stage.internalOf ? `${config.stateNamespace}-${step.entity}` : config.stateNamespace;
    let enricher: Enricher | undefined;
    let redis: Redis | Cluster | undefined;
    if (own.sets.length > 0) {
      const url = ctx.redisUrl ?? process.env.REDIS_URL ?? resolveEndpoints().redisUrl;
      // Bounded: an unreachable Redis (Cluster) fails the start with the URL and nodes tried, instead of hanging it.
      redis = await connectRedisClient(url);
      enricher = new Enricher(own, {
        redis,
        namespace: explicit ?? ctx.groupId ?? `${ctx.topology.spec.name}.${ctx.stage.name}`,
        cache: config.cache,
        stateCache: config.stateCache,
        metricsRegistry: ctx.metricsRegistry,
      });
      await enricher.init();
    }
    const base = vector.base;
    const definitions = { definitionsSet: base.set, definitionsVersion: base.version, definitionsHash: base.hash };
    const eventTime = (r: InputRecord<Record<string, unknown>>) => base.eventTimeOf(r.value) ?? r.timestamp;
    const toVector = (r: InputRecord<Record<string, unknown>>, values: number[], setVersions: Record<string, string>): ProcessResult<FeatureVector> => {
      const key = r.key?.toString() ?? base.keyOf(r.value) ?? `${r.lineage.topic}-${r.lineage.partition}-${r.lineage.offset}`;
      return {
        key,
        value: { key, featureSet: vector.set, featureVersion: vector.version, names, values, eventTime: eventTime(r), ingestTime: r.timestamp, lineage: r.lineage, featureSetVersions: setVersions, ...definitions },
      };
    };
    const stepBatch = step ? entityStepProcessor({ step, vector, own, enricher, eventTime, toVector }) : undefined;
    return {
      enricher,
      onAssignment: enricher ? (assignment) => enricher!.onAssignment(assignment) : undefined,
      async processBatch(records: readonly InputRecord<Record<string, unknown>>[], scope?: BatchScope): Promise<ProcessResult<FeatureVector>[]> {
        if (stepBatch) return (await stepBatch(records, scope)) as ProcessResult<FeatureVector>[];
        if (enricher) {
          // The streaming checkpoint and fencing epoch follow the consumed position (the repartition topic behind a hop).
          const res = await enricher.enrich(records.map((r) => ({ event: r.value, eventTime: eventTime(r), topic: (r.source ?? r.lineage).topic, partition: (r.source ?? r.lineage).partition, offset: (r.source ?? r.lineage).offset })), scope);
          return res.map((x, i) => ('error' in x ? new RecordRejection('PROCESSING_ERROR', x.error) : toVector(records[i], x.values, x.setVersions)));
        }
        return records.map((r) => {
          let values: number[];
          try {
            values = base.extract(r.value);
          } catch (err) {
            return new RecordRejection('PROCESSING_ERROR', `feature extraction failed: ${(err as Error).message}`);
          }
          if (values.some((v) => !Number.isFinite(v))) {
            return new RecordRejection('PROCESSING_ERROR', `feature extraction produced a non-finite value for ${nonFinite(names, values)}`);
          }
          return toVector(r, values, {});
        });
      },
      async close() {
        enricher?.close();
        redis?.disconnect();
      },
    };
  },
};

/**
 * One per-entity step of a chained extraction stage. It computes its own sets for each event (the
 * first step also the base features and the batch sets; later ones take the base features from the
 * partial record instead of extracting them again), adds them to the features so far, and returns
 * either the partial values, keyed by the next step's entity (the engine wraps them with the event),
 * or — the last step — the finished vector in the vector's (the model's) order.
 */
function entityStepProcessor(opts: {
  step: EntityStepSpec;
  vector: VectorDescription;
  own: VectorDescription;
  enricher?: Enricher;
  eventTime: (r: InputRecord<Record<string, unknown>>) => number;
  toVector: (r: InputRecord<Record<string, unknown>>, values: number[], setVersions: Record<string, string>) => ProcessResult<FeatureVector>;
}): (records: readonly InputRecord<Record<string, unknown>>[], scope?: BatchScope) => Promise<ProcessResult<FeatureVector | PartialValues>[]> {
  const { step, vector, own, enricher, eventTime, toVector } = opts;
  const last = step.index === step.entities.length - 1;
  const nextEntity = last ? undefined : parseFieldPath(step.entities[step.index + 1]);
  const before = featuresBefore(vector, step);
  const ownNames = [...vector.base.names, ...own.sets.flatMap((s) => setFeatureNames(s))];
  const baseCount = vector.base.names.length;
  return async (records, scope) => {
    const out: ProcessResult<FeatureVector | PartialValues>[] = new Array(records.length);
    const todo: number[] = [];
    const inputs: EnrichInput[] = [];
    records.forEach((r, i) => {
      let base: number[] | undefined;
      if (step.index > 0) {
        // The partial record must be what the steps before compute now: one written by another
        // configuration (a deploy while records were in flight) cannot be completed correctly.
        if (!r.partial) return void (out[i] = new RecordRejection('PROCESSING_ERROR', `step ${step.index + 1} of ${step.entities.length} (entity ${step.entity}) got no partial record from the step before`));
        if (r.partial.names.join('\u0000') !== before.join('\u0000')) {
          return void (out[i] = new RecordRejection('PROCESSING_ERROR', `the partial record carries features [${r.partial.names.join(', ')}], but the steps before entity ${step.entity} compute [${before.join(', ')}] (configuration changed while records were in flight)`));
        }
        base = r.partial.values.slice(0, baseCount);
      }
      const at = r.source ?? r.lineage;
      todo.push(i);
      inputs.push({ event: r.value, eventTime: eventTime(r), topic: at.topic, partition: at.partition, offset: at.offset, base });
    });
    const results: EnrichOutput[] = enricher ? await enricher.enrich(inputs, scope) : inputs.map((x) => ({ values: x.base ?? vector.base.extract(x.event), setVersions: {} }));
    results.forEach((x, j) => {
      const i = todo[j];
      const r = records[i];
      if ('error' in x) return void (out[i] = new RecordRejection('PROCESSING_ERROR', x.error));
      const have = new Map<string, number>();
      r.partial?.names.forEach((n, k) => have.set(n, r.partial!.values[k]));
      ownNames.forEach((n, k) => have.set(n, x.values[k]));
      const setVersions = { ...(r.partial?.featureSetVersions ?? {}), ...x.setVersions };
      if (last) return void (out[i] = toVector(r, vector.names.map((n) => have.get(n)!), setVersions));
      const names = vector.names.filter((n) => have.has(n));
      // Keyed by the next step's entity; a record without it keeps its original key (it touches no per-entity state there).
      out[i] = { key: entityKey(r.value, nextEntity!) ?? r.key?.toString() ?? '', value: { names, values: names.map((n) => have.get(n)!), featureSetVersions: setVersions } };
    });
    return out;
  };
}

/** Names of the non-finite features of a vector (the dead-letter reason). */
export function nonFinite(names: readonly string[], values: readonly number[]): string {
  return names.filter((_, i) => !Number.isFinite(values[i])).join(', ');
}
