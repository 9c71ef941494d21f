import * as path from 'node:path';
import type { FeatureVector, Prediction } from '../client/generated/avro-types';
import { readModelCard, modelDir } from '../inference/model-card';
import { OnnxModel } from '../inference/onnx-model';
import { createExtractor } from '../features/extractors';
import { RecordRejection } from '../kafka/dead-letter';
import { ConfigError, ConfigErrors } from '../util/errors';
import type { InputRecord, ProcessorContext, ProcessorDefinition, ProcessResult } from './processor';

export interface InferenceConfig {
  model: { repository: string; name: string; version: string };
  /** Decision threshold for `label`; defaults to the model card's. */
  threshold?: number;
  executionProviders?: string[];
  intraOpNumThreads?: number;
}

function repositoryDir(config: InferenceConfig, ctx: ProcessorContext): string {
  return path.resolve(ctx.topology.baseDir, config.model.repository);
}

/** The extraction stage (if any) feeding this stage's input topic. */
function upstreamExtraction(ctx: ProcessorContext) {
  return ctx.topology.spec.stages.find((s) => s.output.topic === ctx.stage.input.topic && s.processor === 'feature_extraction');
}

/** feature vectors -> predictions, scoring each consumed batch with one onnxruntime call. */
export const onnxInference: ProcessorDefinition<InferenceConfig> = {
  name: 'onnx_inference',
  summary: 'Scores feature vectors with an ONNX model version from the model repository.',
  inputSchema: 'feature-vector',
  outputSchema: 'prediction',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['model'],
    properties: {
      model: {
        type: 'object',
        additionalProperties: false,
        required: ['repository', 'name', 'version'],
        properties: {
          repository: { type: 'string', minLength: 1 },
          name: { type: 'string', minLength: 1 },
          version: { type: 'string', pattern: '^[0-9A-Za-z._-]+$' },
        },
      },
      threshold: { type: 'number', minimum: 0, maximum: 1 },
      executionProviders: { type: 'array', items: { enum: ['cpu', 'cuda', 'tensorrt', 'webgpu'] }, minItems: 1 },
      intraOpNumThreads: { type: 'integer', minimum: 0 },
    },
  },
  /** Version sync: the model must get exactly the features, in the order and version, its card asks for. */
  validate(config, ctx) {
    const dir = modelDir(repositoryDir(config, ctx), config.model.name, config.model.version);
    let card;
    try {
      card = readModelCard(dir);
    } catch (err) {
      if (err instanceof ConfigErrors) return err.errors.map((e) => new ConfigError('model', e.message));
      return [new ConfigError('model', (err as Error).message)];
    }
    const upstream = upstreamExtraction(ctx);
    if (!upstream) return [];
    const up = upstream.config as { featureSet: string; spec?: string };
    let extractor;
    try {
      extractor = createExtractor(up.featureSet, { specFile: up.spec && path.resolve(ctx.topology.baseDir, up.spec) });
    } catch {
      return []; // reported on the extraction stage itself
    }
    const problems: string[] = [];
    if (card.features.set !== extractor.set) problems.push(`feature set '${extractor.set}' != card's '${card.features.set}'`);
    if (card.features.version !== extractor.version) problems.push(`feature version ${extractor.version} != card's ${card.features.version}`);
    const missing = card.features.names.filter((n) => !extractor.names.includes(n));
    if (missing.length > 0) problems.push(`missing features: ${missing.join(', ')}`);
    else if (card.features.names.join() !== extractor.names.join()) problems.push('feature order differs from the card');
    return problems.length > 0
      ? [new ConfigError('model', `model ${card.name}@${card.version} cannot be fed by stage '${upstream.name}': ${problems.join('; ')}`)]
      : [];
  },
  async create(config, ctx) {
    const model = await OnnxModel.load(repositoryDir(config, ctx), config.model.name, config.model.version, {
      executionProviders: config.executionProviders,
      intraOpNumThreads: config.intraOpNumThreads,
    });
    const card = model.card;
    const threshold = config.threshold ?? card.threshold;
    const expectedNames = card.features.names.join('\u0000');
    return {
      async processBatch(records: readonly InputRecord<FeatureVector>[]): Promise<ProcessResult<Prediction>[]> {
        const results: ProcessResult<Prediction>[] = new Array(records.length);
        const rows = new Float32Array(records.length * model.width);
        const scored: number[] = [];
        records.forEach((r, i) => {
          const fv = r.value;
          if (fv.featureSet !== card.features.set || fv.featureVersion !== card.features.version) {
            results[i] = new RecordRejection('PROCESSING_ERROR', `feature vector ${fv.featureSet}@${fv.featureVersion} does not match model ${card.name}@${card.version} (needs ${card.features.set}@${card.features.version})`);
          } else if (fv.values.length !== model.width || fv.names.join('\u0000') !== expectedNames) {
            results[i] = new RecordRejection('PROCESSING_ERROR', `feature vector names/width do not match model ${card.name}@${card.version}`);
          } else {
            rows.set(fv.values, scored.length * model.width);
            scored.push(i);
          }
        });
        const scores = await model.score(rows.subarray(0, scored.length * model.width), scored.length);
        const producedTime = Date.now();
        scored.forEach((i, j) => {
          const fv = records[i].value;
          const score = scores[j];
          results[i] = {
            key: fv.key,
            value: {
              key: fv.key,
              modelName: card.name,
              modelVersion: card.version,
              score,
              label: score >= threshold,
              threshold,
              eventTime: fv.eventTime,
              ingestTime: fv.ingestTime,
              producedTime,
              lineage: fv.lineage,
            },
          };
        });
        return results;
      },
      close: () => model.close(),
    };
  },
};
