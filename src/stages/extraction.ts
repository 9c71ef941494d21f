import { createRedisClient } from '../util/redis';
import * as path from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import type { FeatureVector } from '../engine/records';
import { createExtractor, type FeatureExtractor, type InputSchemaRef } from '../features/extractors';
import { Enricher, describeVector, type VectorConfig } from '../features/enricher';
import { FeatureDefinitionsError } from '../features/declarative/load';
import { SchemaCatalog } from '../kafka/avro-schemas';
import { RecordRejection } from '../kafka/dead-letter';
import type { LoadedTopology } from '../topology/spec';
import { resolveEndpoints } from '../util/endpoints';
import { ConfigError } from '../util/errors';
import { featureFunctionsFor } from './plugin-loader';
import type { InputRecord, Processor, ProcessorContext, ProcessorDefinition, ProcessResult } from './processor';

export interface ExtractionConfig extends VectorConfig {
  /** In-process LRU of batch-set rows (defaults: 100000 entries, 30 s). */
  cache?: { maxEntries?: number; ttlMs?: number };
  /** Namespace of the streaming state in Redis; default the stage's consumer group. */
  stateNamespace?: string;
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
  const topic = stage && topology.spec.topics.find((t) => t.name === stage.input.topic);
  if (!topic) throw new Error('no input topic for this extraction stage');
  const catalog = new SchemaCatalog(path.join(topology.baseDir, 'schemas'));
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
  async create(config, ctx): Promise<ExtractionProcessor> {
    const vector = extractionVector(config, ctx);
    const names = [...vector.names];
    let enricher: Enricher | undefined;
    let redis: Redis | Cluster | undefined;
    if (vector.sets.length > 0) {
      const url = ctx.redisUrl ?? process.env.REDIS_URL ?? resolveEndpoints().redisUrl;
      redis = createRedisClient(url);
      enricher = new Enricher(vector, {
        redis,
        namespace: config.stateNamespace ?? ctx.groupId ?? `${ctx.topology.spec.name}.${ctx.stage.name}`,
        cache: config.cache,
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
    return {
      enricher,
      onAssignment: enricher ? (assignment) => enricher!.onAssignment(assignment) : undefined,
      async processBatch(records: readonly InputRecord<Record<string, unknown>>[]): Promise<ProcessResult<FeatureVector>[]> {
        if (enricher) {
          // The streaming checkpoint and fencing epoch follow the consumed position (the repartition topic behind a hop).
          const res = await enricher.enrich(records.map((r) => ({ event: r.value, eventTime: eventTime(r), topic: (r.source ?? r.lineage).topic, partition: (r.source ?? r.lineage).partition, offset: (r.source ?? r.lineage).offset })));
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

/** Names of the non-finite features of a vector (the dead-letter reason). */
export function nonFinite(names: readonly string[], values: readonly number[]): string {
  return names.filter((_, i) => !Number.isFinite(values[i])).join(', ');
}
