import type { FeatureVector, Prediction, ShadowPrediction } from '../engine/records';
import { RecordRejection } from '../kafka/dead-letter';
import { modelDir } from '../inference/model-card';
import { ConfigError } from '../util/errors';
import { onnxInference, loadServedVersion, scoreBatch, type InferenceConfig, type ServedVersion } from './inference';
import type { InputRecord, Processor, ProcessorContext, ProcessorDefinition, ProcessResult } from './processor';
import * as path from 'node:path';

export interface ShadowConfig extends Omit<InferenceConfig, 'hotSwap'> {
  /** The live onnx_inference stage this model shadows: it must read the same input topic. */
  shadowOf: string;
  /** A request not scored within this many ms is logged as TIMEOUT (default 5000). */
  timeoutMs?: number;
}

export interface ShadowProcessor extends Processor<FeatureVector, ShadowPrediction> {
  readonly version: ServedVersion;
}

class ShadowTimeout extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ShadowTimeout(`no score within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const { hotSwap: _hotSwap, ...inferenceProperties } = (onnxInference.configSchema as { properties: Record<string, unknown> }).properties;

/**
 * A shadow model: scores the same feature vectors as a live onnx_inference stage, in its own
 * stage (own consumer group, own process if wanted), and writes every outcome — score, or ERROR,
 * or TIMEOUT — to a shadow log topic (schema shadow-prediction) with the input's lineage, never to
 * the live prediction topic. Its failures are records in its log, not retries that stall it.
 */
export const onnxShadow: ProcessorDefinition<ShadowConfig> = {
  name: 'onnx_shadow',
  runsApart: true,
  summary: 'Shadow model: scores the live stage\'s inputs with another version and logs score, latency and errors to a shadow log topic.',
  inputSchema: 'feature-vector',
  outputSchema: 'shadow-prediction',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['model', 'shadowOf'],
    properties: {
      ...inferenceProperties,
      shadowOf: { type: 'string', minLength: 1, description: 'The live onnx_inference stage shadowed (same input topic).' },
      timeoutMs: { type: 'integer', minimum: 1, description: 'Requests not scored within this are logged as TIMEOUT (default 5000).' },
    },
  },
  validate(config, ctx) {
    const errors: ConfigError[] = [];
    const live = ctx.topology.spec.stages.find((s) => s.name === config.shadowOf);
    if (!live) errors.push(new ConfigError('shadowOf', `no stage '${config.shadowOf}' in the topology`));
    else if (live.processor !== 'onnx_inference') errors.push(new ConfigError('shadowOf', `stage '${config.shadowOf}' is ${live.processor}, not onnx_inference`));
    else if (live.input.topic !== ctx.stage.input.topic) errors.push(new ConfigError('shadowOf', `stage '${config.shadowOf}' reads ${live.input.topic}; the shadow reads ${ctx.stage.input.topic}`));
    const clash = ctx.topology.spec.stages.find((s) => s.processor !== 'onnx_shadow' && s.output.topic === ctx.stage.output.topic);
    if (clash) errors.push(new ConfigError('', `shadow output ${ctx.stage.output.topic} is also stage '${clash.name}'s output: shadow predictions must never reach a live topic`));
    return [...errors, ...(onnxInference.validate?.(config as InferenceConfig, ctx) ?? [])];
  },
  async create(config, ctx: ProcessorContext): Promise<ShadowProcessor> {
    const dir = modelDir(path.resolve(ctx.topology.baseDir, config.model.repository), config.model.name, config.model.version);
    // Shadows are how candidates are evaluated: the gate is opt-in (gate: true).
    const version = await loadServedVersion(dir, { ...config, gate: config.gate ?? false }, ctx);
    const timeoutMs = config.timeoutMs ?? 5000;
    const shadow = ctx.stage.name;
    const toShadow = (r: InputRecord<FeatureVector>, status: ShadowPrediction['status'], latencyMs: number, p?: Prediction, error?: string): ShadowPrediction => ({
      key: r.value.key,
      shadow,
      modelName: version.card.name,
      modelVersion: version.card.version,
      status,
      score: p?.score ?? null,
      label: p?.label ?? null,
      threshold: version.threshold,
      latencyMs,
      error: error ?? null,
      eventTime: r.value.eventTime,
      ingestTime: r.value.ingestTime,
      producedTime: Date.now(),
      lineage: r.value.lineage,
      featureSetVersions: r.value.featureSetVersions ?? {},
    });
    return {
      version,
      backpressure: { saturated: () => version.pool.saturated(), whenDrained: () => version.pool.whenDrained() },
      async processBatch(records: readonly InputRecord<FeatureVector>[]): Promise<ProcessResult<ShadowPrediction>[]> {
        const started = performance.now();
        try {
          const results = await withTimeout(scoreBatch(version, records, 'shadow'), timeoutMs);
          const latencyMs = performance.now() - started;
          return results.map((res, i) => {
            const r = records[i];
            const out = res instanceof RecordRejection ? toShadow(r, 'ERROR', latencyMs, undefined, res.message) : toShadow(r, 'OK', res.value.latencyMs ?? latencyMs, res.value);
            return { key: out.key, value: out };
          });
        } catch (err) {
          const latencyMs = performance.now() - started;
          const status = err instanceof ShadowTimeout ? 'TIMEOUT' : 'ERROR';
          return records.map((r) => {
            const out = toShadow(r, status, latencyMs, undefined, (err as Error).message);
            return { key: out.key, value: out };
          });
        }
      },
      close: () => version.close(),
    };
  },
};
