import * as path from 'node:path';
import type { FeatureVector, Prediction } from '../engine/records';
import { readModelCard, modelDir } from '../inference/model-card';
import { connectRedisClient, createRedisClient } from '../util/redis';
import { InferencePool } from '../inference/pool';
import { HotSwapper, type HotSwapConfig, type ServingVersion } from '../inference/hot-swap';
import { SliceLayout } from '../routing/canary';
import { BanditStore } from '../routing/bandit-store';
import { thompsonShares } from '../routing/thompson';
import { Gauge } from 'prom-client';
import { resolveEndpoints } from '../util/endpoints';
import { InferenceMetrics } from '../inference/metrics';
import { ModelGateError, readGateSpec, runGate } from '../inference/gate';
import { cardProblems } from '../features/enricher';
import { extractionVector, type ExtractionConfig } from './extraction';
import { RecordRejection } from '../kafka/dead-letter';
import { ConfigError, ConfigErrors } from '../util/errors';
import type { InputRecord, Processor, ProcessorContext, ProcessorDefinition, ProcessResult } from './processor';

export interface InferenceConfig {
  model: { repository: string; name: string; version: string };
  /** Decision threshold for `label`; defaults to the model card's. */
  threshold?: number;
  /** Tried in order; the first available is used (logged); none available fails the stage start. */
  executionProviders?: string[];
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  /** Run the version's gate (gate.json: golden, confidence set, latency) before serving it; default true. A failing version is refused. */
  gate?: boolean;
  /** Worker threads and dynamic batching (defaults: 1 worker, batches of <= 256 rows, 1 ms delay, 4096 queued rows). */
  pool?: {
    /** Worker threads (default 1); 0 scores on the stage's own thread (InferencePoolOptions.workers). */
    workers?: number;
    maxBatchSize?: number;
    maxQueueDelayMs?: number;
    maxQueueRows?: number;
    /** Longest one scoring request may take, queue wait included, ms (default 30000; 0: no limit); then it fails with InferenceTimeoutError. */
    requestTimeoutMs?: number;
    /** GPU ordinals workers are pinned to (cuda/tensorrt deviceId); workers default to devices x workersPerDevice. */
    devices?: number[];
    workersPerDevice?: number;
  };
  /** Switch versions without stopping (`tributary models promote|rollback`, or the latest approved version in the repository). */
  hotSwap?: HotSwapConfig;
  /** Tests only: every inference batch takes this much longer (a slow model). */
  simulateDelayMs?: number;
  /** Canary / A/B between versions: sticky by key hash (murmur3 of experiment + key, 10,000 buckets); the first arm is control. */
  routing?: {
    experiment: string;
    arms: { name: string; version?: string; weight?: number; maxWeight?: number }[];
    /** Thompson sampling: arm weights are re-derived from the feedback-fed posteriors in Redis (see src/routing/bandit-*.ts). */
    bandit?: { floor?: number; reweightIntervalMs?: number; draws?: number };
  };
}

/** A created onnx_inference processor: scores through a worker pool, exposes it for stats and backpressure. */
export interface InferenceProcessor extends Processor<FeatureVector, Prediction> {
  /** The live version's pool. */
  readonly pool: InferencePool;
  /** Present with `hotSwap`: switches versions without stopping. */
  readonly swapper?: HotSwapper<ServedVersion>;
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
      interOpNumThreads: { type: 'integer', minimum: 0 },
      gate: { type: 'boolean' },
      pool: {
        type: 'object',
        additionalProperties: false,
        properties: {
          workers: { type: 'integer', minimum: 0, maximum: 256, description: "Worker threads (default 1; devices x workersPerDevice with devices). 0: score on the stage's own thread (no hand-over per batch; for models whose batch runs in well under a millisecond)." },
          maxBatchSize: { type: 'integer', minimum: 1 },
          maxQueueDelayMs: { type: 'number', minimum: 0 },
          maxQueueRows: { type: 'integer', minimum: 1 },
          requestTimeoutMs: { type: 'integer', minimum: 0 },
          devices: { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 1, uniqueItems: true },
          workersPerDevice: { type: 'integer', minimum: 1 },
        },
      },
      hotSwap: {
        type: 'object',
        additionalProperties: false,
        description: 'Switch model versions without stopping: each candidate is gated against the live version, swapped between batches, or refused.',
        properties: {
          policy: { enum: ['explicit', 'latest-approved'], description: 'explicit (default): `tributary models promote NAME@VERSION` / `rollback`; latest-approved: the highest approved version in the repository' },
          pollIntervalMs: { type: 'integer', minimum: 100 },
        },
      },
      simulateDelayMs: { type: 'number', minimum: 0, description: 'Tests only: extra time per inference batch.' },
      routing: {
        type: 'object',
        additionalProperties: false,
        required: ['experiment', 'arms'],
        description: 'Canary / A/B: each key goes to one arm, sticky by murmur3(experiment:key) over 10,000 buckets. The first arm is control (model.version unless given) and takes what the others leave.',
        properties: {
          experiment: { type: 'string', minLength: 1 },
          arms: {
            type: 'array',
            minItems: 2,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['name'],
              properties: {
                name: { type: 'string', pattern: '^[A-Za-z0-9._-]+$' },
                version: { type: 'string', pattern: '^[0-9A-Za-z._-]+$' },
                weight: { type: 'number', minimum: 0, maximum: 100, description: 'percent of keys (treatment arms)' },
                maxWeight: { type: 'number', minimum: 0, maximum: 100, description: 'the fixed slice this arm may grow to (default: an equal share among treatments)' },
              },
            },
          },
          bandit: {
            type: 'object',
            additionalProperties: false,
            description: 'Multi-armed bandit: every reweightIntervalMs the arm weights become P(arm is best) under Beta posteriors fed by `tributary bandit reward` (floored for exploration, capped by each arm\'s slice, so keys stay sticky).',
            properties: {
              floor: { type: 'number', minimum: 0, maximum: 0.5 },
              reweightIntervalMs: { type: 'integer', minimum: 100 },
              draws: { type: 'integer', minimum: 100, maximum: 100000 },
            },
          },
        },
      },
    },
  },
  /** Version sync: the model must get exactly the features, in the order and version, its card asks for. */
  validate(config, ctx) {
    if (config.routing) {
      if (config.hotSwap) return [new ConfigError('routing', 'routing and hotSwap cannot be combined (promote by changing the arms)')];
      try {
        new SliceLayout(config.routing.arms);
      } catch (err) {
        return [new ConfigError('routing.arms', (err as Error).message)];
      }
      for (const [i, arm] of config.routing.arms.entries()) {
        const armDir = modelDir(repositoryDir(config, ctx), config.model.name, arm.version ?? config.model.version);
        try {
          readModelCard(armDir);
        } catch (err) {
          return [new ConfigError(`routing.arms[${i}].version`, (err as Error).message)];
        }
      }
    }
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
    const up = upstream.config;
    let vector;
    try {
      vector = extractionVector(up as unknown as ExtractionConfig, ctx);
    } catch {
      return []; // reported on the extraction stage itself
    }
    const problems = cardProblems(card.features as Parameters<typeof cardProblems>[0], vector);
    return problems.length > 0
      ? [new ConfigError('model', `model ${card.name}@${card.version} cannot be fed by stage '${upstream.name}': ${problems.join('; ')}`)]
      : [];
  },
  async create(config, ctx): Promise<InferenceProcessor> {
    if (config.routing) return createRouted(config, ctx);
    const metrics = InferenceMetrics.for(ctx.metricsRegistry);
    const first = await loadServedVersion(modelDir(repositoryDir(config, ctx), config.model.name, config.model.version), config, ctx);
    let swapper: HotSwapper<ServedVersion> | undefined;
    if (config.hotSwap) {
      const group = ctx.groupId ?? `${ctx.topology.spec.name}.${ctx.stage.name}`;
      const redisUrl = ctx.redisUrl ?? process.env.REDIS_URL;
      if (!redisUrl && (config.hotSwap.policy ?? 'explicit') === 'explicit') throw new ConfigError('hotSwap', 'the explicit hot swap policy needs Redis (REDIS_URL or the stack)');
      swapper = new HotSwapper(first, {
        repository: repositoryDir(config, ctx),
        model: config.model.name,
        stage: ctx.stage.name,
        group,
        config: config.hotSwap,
        load: (dir, liveDir) => loadServedVersion(dir, config, ctx, liveDir),
        logger: ctx.logger,
        metrics,
        // Bounded at start: an unreachable Redis (Cluster) fails it clearly instead of hanging it.
        redis: redisUrl ? await connectRedisClient(redisUrl) : undefined,
        subscriber: redisUrl ? await connectRedisClient(redisUrl, { maxRetriesPerRequest: null }) : undefined,
      });
      try {
        await swapper.start();
        // A version promoted before this instance started is served from the first batch.
        await swapper.check();
      } catch (err) {
        await swapper.close();
        throw err;
      }
    } else {
      metrics.liveVersion.set({ model: first.card.name, stage: ctx.stage.name, version: first.card.version }, 1);
    }
    const served = () => swapper?.current ?? first;
    return {
      get pool() {
        return served().pool;
      },
      swapper,
      backpressure: { saturated: () => served().pool.saturated(), whenDrained: () => served().pool.whenDrained() },
      processBatch: (records: readonly InputRecord<FeatureVector>[]) => (swapper ? swapper.use((v) => scoreBatch(v, records)) : scoreBatch(first, records)),
      close: () => (swapper ? swapper.close() : first.close()),
    };
  },
};

/** A version the stage can serve: gated, its pool warm. */
export interface ServedVersion extends ServingVersion {
  pool: InferencePool;
  threshold: number;
  width: number;
  expectedNames: string;
  /** Frozen names arrays already found equal to the model's (extraction shares one per vector description). */
  matchedNames: WeakSet<readonly string[]>;
}

/**
 * Loads one version for serving: runs its gate (gate.json; `liveDir` is the change-bound baseline)
 * unless `gate: false`, then starts its worker pool. Throws ModelGateError for a failing version.
 */
export async function loadServedVersion(dir: string, config: InferenceConfig, ctx: ProcessorContext, liveDir?: string): Promise<ServedVersion> {
  const session = { executionProviders: config.executionProviders, intraOpNumThreads: config.intraOpNumThreads, interOpNumThreads: config.interOpNumThreads };
  const metrics = InferenceMetrics.for(ctx.metricsRegistry);
  if (config.gate !== false && readGateSpec(dir)) {
    // The gate decides whether this version may be served at all: a failure refuses the load.
    const report = await runGate(dir, { session, logger: ctx.logger, liveDir });
    const labels = { model: report.model, version: report.version };
    metrics.gateRuns.inc({ ...labels, result: report.passed ? 'pass' : 'fail' });
    for (const c of report.checks) if (c.status === 'fail') metrics.gateFailedChecks.inc({ ...labels, check: c.name });
    if (!report.passed) throw new ModelGateError(report);
  }
  const pool = await InferencePool.start({
    dir,
    ...config.pool,
    executionProviders: config.executionProviders,
    intraOpNumThreads: config.intraOpNumThreads,
    interOpNumThreads: config.interOpNumThreads,
    logger: ctx.logger,
    registry: ctx.metricsRegistry,
    testHooks: config.simulateDelayMs ? { delayMs: config.simulateDelayMs } : undefined,
  });
  const card = pool.card;
  return { dir, card, pool, threshold: config.threshold ?? card.threshold, width: card.features.names.length, expectedNames: card.features.names.join('\u0000'), matchedNames: new WeakSet(), close: () => pool.close() };
}

/** True when a vector's names are the model's, in order; a frozen array (the same for every vector of a description) is compared once. */
function namesMatch(v: ServedVersion, names: string[]): boolean {
  if (v.matchedNames.has(names)) return true;
  const ok = names.join('\u0000') === v.expectedNames;
  if (ok && Object.isFrozen(names)) v.matchedNames.add(names);
  return ok;
}

/** Scores a batch on one version: one pool request; records that do not fit the model are rejected. */
export async function scoreBatch(v: ServedVersion, records: readonly InputRecord<FeatureVector>[], route = 'live'): Promise<ProcessResult<Prediction>[]> {
  const { card, width, threshold } = v;
  const results: ProcessResult<Prediction>[] = new Array(records.length);
  const rows = new Float32Array(records.length * width);
  const scored: number[] = [];
  records.forEach((r, i) => {
    const fv = r.value;
    if (fv.featureSet !== card.features.set || fv.featureVersion !== card.features.version) {
      results[i] = new RecordRejection('PROCESSING_ERROR', `feature vector ${fv.featureSet}@${fv.featureVersion} does not match model ${card.name}@${card.version} (needs ${card.features.set}@${card.features.version})`);
    } else if (fv.values.length !== width || !namesMatch(v, fv.names)) {
      results[i] = new RecordRejection('PROCESSING_ERROR', `feature vector names/width do not match model ${card.name}@${card.version}`);
    } else {
      rows.set(fv.values, scored.length * width);
      scored.push(i);
    }
  });
  const started = performance.now();
  const scores = await v.pool.submit(rows.subarray(0, scored.length * width), scored.length);
  const latencyMs = performance.now() - started;
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
        featureSetVersions: fv.featureSetVersions ?? {},
        route,
        latencyMs,
      },
    };
  });
  return results;
}

/**
 * Canary / A/B: one served version per arm; each record goes to its key's arm (sticky slices, see
 * src/routing/canary.ts) and its prediction records the route `canary:<arm>`. Treatment arms are
 * gated with the control arm as the change baseline.
 */
async function createRouted(config: InferenceConfig, ctx: ProcessorContext): Promise<InferenceProcessor> {
  const routing = config.routing!;
  let layout = new SliceLayout(routing.arms);
  const metrics = InferenceMetrics.for(ctx.metricsRegistry);
  const dirOf = (version?: string) => modelDir(repositoryDir(config, ctx), config.model.name, version ?? config.model.version);
  const arms = new Map<string, ServedVersion>();
  try {
    const controlDir = dirOf(routing.arms[0].version);
    for (const [i, arm] of routing.arms.entries()) arms.set(arm.name, await loadServedVersion(dirOf(arm.version), config, ctx, i === 0 ? undefined : controlDir));
  } catch (err) {
    await Promise.allSettled([...arms.values()].map((v) => v.close()));
    throw err;
  }
  for (const v of new Set(arms.values())) metrics.liveVersion.set({ model: v.card.name, stage: ctx.stage.name, version: v.card.version }, 1);
  ctx.logger.info({ experiment: routing.experiment, shares: layout.shares(), versions: Object.fromEntries([...arms].map(([a, v]) => [a, v.card.version])) }, 'routing between versions');
  const control = arms.get(layout.control)!;
  const all = [...arms.values()];
  const stopBandit = routing.bandit ? startBanditReweighting(routing, ctx, (next) => (layout = next)) : async () => undefined;
  return {
    get pool() {
      return control.pool;
    },
    backpressure: { saturated: () => all.some((v) => v.pool.saturated()), whenDrained: () => Promise.all(all.map((v) => v.pool.whenDrained())).then(() => undefined) },
    async processBatch(records) {
      const byArm = new Map<string, number[]>();
      records.forEach((r, i) => {
        const arm = layout.route(routing.experiment, r.value.key);
        (byArm.get(arm) ?? byArm.set(arm, []).get(arm)!).push(i);
      });
      const results: ProcessResult<Prediction>[] = new Array(records.length);
      await Promise.all(
        [...byArm].map(async ([arm, idx]) => {
          const out = await scoreBatch(arms.get(arm)!, idx.map((i) => records[i]), `canary:${arm}`);
          idx.forEach((i, j) => (results[i] = out[j]));
        }),
      );
      return results;
    },
    close: async () => {
      await stopBandit();
      await Promise.all(all.map((v) => v.close()));
    },
  };
}

/**
 * Bandit on top of sticky slices: periodically turns the posteriors into arm weights
 * (Thompson sampling with an exploration floor), caps each treatment at its slice and lets control
 * take the rest — so a key only ever moves between its treatment arm and control.
 */
function startBanditReweighting(routing: NonNullable<InferenceConfig['routing']>, ctx: ProcessorContext, apply: (layout: SliceLayout) => void): () => Promise<void> {
  const bandit = routing.bandit!;
  const url = ctx.redisUrl ?? process.env.REDIS_URL ?? resolveEndpoints().redisUrl;
  const redis = createRedisClient(url);
  const store = new BanditStore(redis, routing.experiment);
  const names = routing.arms.map((a) => a.name);
  const shareName = 'tributary_routing_share_ratio';
  const share =
    (ctx.metricsRegistry?.getSingleMetric(shareName) as Gauge<'experiment' | 'arm'> | undefined) ??
    new Gauge({ name: shareName, help: 'Share of keys routed to each arm', labelNames: ['experiment', 'arm'], registers: ctx.metricsRegistry ? [ctx.metricsRegistry] : [] });
  const reweight = async () => {
    const shares = thompsonShares(await store.posteriors(names), { floor: bandit.floor, draws: bandit.draws });
    const arms = routing.arms.map((a, i) => (i === 0 ? a : { ...a, weight: Math.min(shares[a.name] * 100, a.maxWeight ?? 100 / (routing.arms.length - 1)) }));
    const next = new SliceLayout(arms);
    apply(next);
    for (const [arm, pct] of Object.entries(next.shares())) share.set({ experiment: routing.experiment, arm }, pct / 100);
    ctx.logger.info({ experiment: routing.experiment, thompson: shares, shares: next.shares() }, 'bandit re-derived arm weights');
  };
  let running = true;
  let pending: Promise<void> = reweight().catch((err: unknown) => ctx.logger.warn({ err: (err as Error).message }, 'bandit reweight failed; keeping the current weights'));
  const timer = setInterval(() => {
    if (!running) return;
    pending = reweight().catch((err: unknown) => ctx.logger.warn({ err: (err as Error).message }, 'bandit reweight failed; keeping the current weights'));
  }, bandit.reweightIntervalMs ?? 30000);
  return async () => {
    running = false;
    clearInterval(timer);
    await pending;
    redis.disconnect();
  };
}
