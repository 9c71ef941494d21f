import * as path from 'node:path';
import type { FeatureVector, Transaction } from '../client/generated/avro-types';
import { createExtractor, featureSetNames } from '../features/extractors';
import { RecordRejection } from '../kafka/dead-letter';
import { ConfigError } from '../util/errors';
import type { InputRecord, ProcessorDefinition, ProcessResult } from './processor';

export interface ExtractionConfig {
  /** Registered feature set, e.g. `fraud_txn`. */
  featureSet: string;
  /** Data/feature spec file the extractor reads (relative to the repo root). */
  spec?: string;
}

/** input events -> feature vectors, one per event, keyed by the event's key. */
export const featureExtraction: ProcessorDefinition<ExtractionConfig> = {
  name: 'feature_extraction',
  summary: 'Turns input events into named feature vectors with a registered feature set.',
  inputSchema: 'transaction',
  outputSchema: 'feature-vector',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['featureSet'],
    properties: {
      featureSet: { type: 'string', enum: featureSetNames() },
      spec: { type: 'string', minLength: 1 },
    },
  },
  validate(config, ctx) {
    try {
      createExtractor(config.featureSet, { specFile: config.spec && path.resolve(ctx.topology.baseDir, config.spec) });
      return [];
    } catch (err) {
      return [new ConfigError(config.spec ? 'spec' : 'featureSet', (err as Error).message)];
    }
  },
  async create(config, ctx) {
    const extractor = createExtractor(config.featureSet, { specFile: config.spec && path.resolve(ctx.topology.baseDir, config.spec) });
    const names = [...extractor.names];
    return {
      async processBatch(records: readonly InputRecord<Transaction>[]): Promise<ProcessResult<FeatureVector>[]> {
        return records.map((r) => {
          let values: number[];
          try {
            values = extractor.extract(r.value);
          } catch (err) {
            return new RecordRejection('PROCESSING_ERROR', `feature extraction failed: ${(err as Error).message}`);
          }
          if (values.some((v) => !Number.isFinite(v))) {
            return new RecordRejection('PROCESSING_ERROR', `feature extraction produced a non-finite value for ${r.value.transactionId}`);
          }
          return {
            key: r.key?.toString() ?? r.value.transactionId,
            value: {
              key: r.key?.toString() ?? r.value.transactionId,
              featureSet: extractor.set,
              featureVersion: extractor.version,
              names,
              values,
              eventTime: r.value.eventTime,
              ingestTime: r.timestamp,
              lineage: r.lineage,
            },
          };
        });
      },
      async close() {},
    };
  },
};
