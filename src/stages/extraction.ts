import { createRedisClient } from '../util/redis';
import * as path from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import type { FeatureVector, Transaction } from '../client/generated/avro-types';
import { createExtractor, featureSetNames } from '../features/extractors';
import { Enricher, describeVector, type VectorConfig } from '../features/enricher';
import { RecordRejection } from '../kafka/dead-letter';
import { resolveEndpoints } from '../stack/endpoints';
import { ConfigError } from '../util/errors';
import type { InputRecord, Processor, ProcessorContext, ProcessorDefinition, ProcessResult } from './processor';

export interface ExtractionConfig extends VectorConfig {
  /** Registered (stateless) feature set, e.g. `fraud_txn`: the base of the vector. */
  featureSet: string;
  /** Data/feature spec file the extractor reads (relative to the repo root). */
  spec?: string;
  /** In-process LRU of batch-set rows (defaults: 100000 entries, 30 s). */
  cache?: { maxEntries?: number; ttlMs?: number };
  /** Namespace of the streaming state in Redis; default the stage's consumer group. */
  stateNamespace?: string;
}

/** An extraction processor; `enricher` is set when the stage uses feature sets from the topology. */
export interface ExtractionProcessor extends Processor<Transaction, FeatureVector> {
  readonly enricher?: Enricher;
}

function specFile(config: ExtractionConfig, ctx: Pick<ProcessorContext, 'topology'>): string | undefined {
  return config.spec && path.resolve(ctx.topology.baseDir, config.spec);
}

/** What the stage outputs (set, version, names, per-feature definitions); used by onnx_inference's version sync. */
export function extractionVector(config: ExtractionConfig, ctx: Pick<ProcessorContext, 'topology'>) {
  return describeVector(config, ctx.topology.spec.features, specFile(config, ctx));
}

/** input events -> feature vectors, one per event, keyed by the event's key. */
export const featureExtraction: ProcessorDefinition<ExtractionConfig> = {
  name: 'feature_extraction',
  summary: 'Turns input events into named feature vectors: a registered stateless feature set, plus batch (Redis) and streaming feature sets declared in the topology.',
  inputSchema: 'transaction',
  outputSchema: 'feature-vector',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['featureSet'],
    properties: {
      featureSet: { type: 'string', enum: featureSetNames() },
      spec: { type: 'string', minLength: 1 },
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
      createExtractor(config.featureSet, { specFile: specFile(config, ctx) });
    } catch (err) {
      return [new ConfigError(config.spec ? 'spec' : 'featureSet', (err as Error).message)];
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
    const toVector = (r: InputRecord<Transaction>, values: number[], setVersions: Record<string, string>): ProcessResult<FeatureVector> => {
      const key = r.key?.toString() ?? r.value.transactionId;
      return {
        key,
        value: { key, featureSet: vector.set, featureVersion: vector.version, names, values, eventTime: r.value.eventTime, ingestTime: r.timestamp, lineage: r.lineage, featureSetVersions: setVersions },
      };
    };
    return {
      enricher,
      onAssignment: enricher ? (assignment) => enricher!.onAssignment(assignment) : undefined,
      async processBatch(records: readonly InputRecord<Transaction>[]): Promise<ProcessResult<FeatureVector>[]> {
        if (enricher) {
          // The streaming checkpoint and fencing epoch follow the consumed position (the repartition topic behind a hop).
          const res = await enricher.enrich(records.map((r) => ({ tx: r.value, topic: (r.source ?? r.lineage).topic, partition: (r.source ?? r.lineage).partition, offset: (r.source ?? r.lineage).offset })));
          return res.map((x, i) => ('error' in x ? new RecordRejection('PROCESSING_ERROR', x.error) : toVector(records[i], x.values, x.setVersions)));
        }
        return records.map((r) => {
          let values: number[];
          try {
            values = vector.base.extract(r.value);
          } catch (err) {
            return new RecordRejection('PROCESSING_ERROR', `feature extraction failed: ${(err as Error).message}`);
          }
          if (values.some((v) => !Number.isFinite(v))) {
            return new RecordRejection('PROCESSING_ERROR', `feature extraction produced a non-finite value for ${r.value.transactionId}`);
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
