import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { TributaryError } from '../util/errors';
import { createLogger } from '../util/logger';
import { installedExecutionProviders, providerUnavailableReason } from './execution-providers';
import { modelDir, readModelCard, type ModelCard } from './model-card';
import { directSessionUnavailable, openDirectSession } from './ort-direct';

const log = createLogger('onnx-model');

export class ModelIntegrityError extends TributaryError {}

/** None of the configured execution providers could create a session; the message lists why each failed. */
export class ExecutionProviderError extends TributaryError {}

export interface OnnxModelOptions {
  /** Execution providers in order of preference, e.g. ['cuda', 'cpu']; each is tried alone, the first that works is used. */
  executionProviders?: string[];
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  /** GPU ordinal given to device-bound providers (cuda, tensorrt) as their `deviceId`. */
  deviceId?: number;
  /**
   * Run the model by calling onnxruntime's native session directly (default true), not through the
   * public `session.run`, which defers each run to the event loop's check phase (ort-direct.ts). Falls
   * back to the public API by itself when the native session is not usable.
   */
  directRun?: boolean;
}

/**
 * A loaded model: onnxruntime-node's native session called directly where possible ('direct'), its
 * public InferenceSession otherwise ('deferred': each run waits for a setImmediate first).
 */
export interface ModelSession {
  readonly mode: 'direct' | 'deferred';
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs the model on one input tensor and returns one output's data (at once when direct). */
  run(input: string, tensor: ort.Tensor, output: string): ArrayLike<number> | Promise<ArrayLike<number>>;
  release(): Promise<void>;
}

function deferredSession(session: ort.InferenceSession): ModelSession {
  return {
    mode: 'deferred',
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(input, tensor, output) {
      const out = await session.run({ [input]: tensor }, [output]);
      return out[output].data as ArrayLike<number>;
    },
    release: () => session.release(),
  };
}

/** Opens one session for one provider: direct when asked and possible, the public API otherwise. */
async function openSession(weights: string, sessionOptions: ort.InferenceSession.SessionOptions, direct: boolean): Promise<ModelSession> {
  if (direct) {
    const native = openDirectSession(weights, sessionOptions);
    if (native) {
      return {
        mode: 'direct',
        inputNames: native.inputNames,
        outputNames: native.outputNames,
        run: (input, tensor, output) => native.run(input, tensor, output),
        release: async () => native.release(),
      };
    }
  }
  return deferredSession(await ort.InferenceSession.create(weights, sessionOptions));
}

/** Providers that take a `deviceId` option. */
const DEVICE_PROVIDERS = new Set(['cuda', 'tensorrt']);

/**
 * Creates a session with the first execution provider that works, trying each alone in order
 * (onnxruntime itself fails the whole list when one provider's library is missing). A provider this
 * onnxruntime-node install lacks is skipped with the reason and how to install it; one it has is
 * tried (CUDA still needs a GPU and driver). Logs the active provider; throws ExecutionProviderError
 * naming every provider's failure when none works.
 */
export async function createSession(
  weights: string,
  options: OnnxModelOptions,
  logger = log,
): Promise<{ session: ModelSession; provider: string }> {
  const providers = options.executionProviders && options.executionProviders.length > 0 ? options.executionProviders : ['cpu'];
  const failures: string[] = [];
  const installed = installedExecutionProviders();
  const direct = options.directRun !== false;
  if (direct && directSessionUnavailable()) logger.info({ reason: directSessionUnavailable() }, 'model runs through onnxruntime-node\'s public session.run');
  for (const name of providers) {
    const unavailable = providerUnavailableReason(name, installed);
    if (unavailable) {
      failures.push(`${name}: ${unavailable}`);
      continue;
    }
    const ep: ort.InferenceSession.ExecutionProviderConfig =
      options.deviceId !== undefined && DEVICE_PROVIDERS.has(name) ? ({ name, deviceId: options.deviceId } as ort.InferenceSession.ExecutionProviderConfig) : name;
    const sessionOptions: ort.InferenceSession.SessionOptions = { executionProviders: [ep], graphOptimizationLevel: 'all' };
    // onnxruntime rejects keys present with an undefined value: set only what was configured.
    if (options.intraOpNumThreads !== undefined) sessionOptions.intraOpNumThreads = options.intraOpNumThreads;
    if (options.interOpNumThreads !== undefined) sessionOptions.interOpNumThreads = options.interOpNumThreads;
    try {
      const session = await openSession(weights, sessionOptions, direct);
      if (failures.length > 0) logger.warn({ provider: name, unavailable: failures }, 'preferred execution providers unavailable; falling back');
      logger.info({ provider: name, deviceId: DEVICE_PROVIDERS.has(name) ? options.deviceId : undefined, run: session.mode }, 'execution provider active');
      return { session, provider: name };
    } catch (err) {
      failures.push(`${name}: ${(err as Error).message}`);
    }
  }
  throw new ExecutionProviderError(`${weights}: no configured execution provider is available (tried ${providers.join(', ')}):\n  ${failures.join('\n  ')}`);
}

export function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/**
 * One model version loaded in onnxruntime: checks the weights against the card's sha256,
 * then scores batches of feature rows with one session.run per batch.
 */
export class OnnxModel {
  private constructor(
    readonly card: ModelCard,
    readonly dir: string,
    private readonly session: ModelSession,
    /** The execution provider the session runs on. */
    readonly provider: string,
  ) {}

  get width(): number {
    return this.card.features.names.length;
  }

  static load(repository: string, name: string, version: string, options: OnnxModelOptions = {}): Promise<OnnxModel> {
    return OnnxModel.loadDir(modelDir(repository, name, version), options);
  }

  /** Loads models/<name>/<version> given its directory. */
  static async loadDir(dir: string, options: OnnxModelOptions = {}): Promise<OnnxModel> {
    const card = readModelCard(dir);
    const weights = path.join(dir, 'model.onnx');
    const actual = sha256File(weights);
    if (actual !== card.sha256) {
      throw new ModelIntegrityError(`${weights}: sha256 ${actual} does not match the card's ${card.sha256}; refusing to load`);
    }
    const { session, provider } = await createSession(weights, options, log.child({ model: card.name, version: card.version }));
    log.info({ model: card.name, version: card.version, provider, inputs: session.inputNames, outputs: session.outputNames }, 'model loaded');
    return new OnnxModel(card, dir, session, provider);
  }

  /**
   * Loads a version and warms it up: the first runs allocate and pick kernels, so a pool pays for
   * that before serving (each worker, or the in-thread session). A failed warm-up closes the session.
   */
  static async loadWarm(dir: string, options: OnnxModelOptions, runs: number, batchSize: number): Promise<OnnxModel> {
    const model = await OnnxModel.loadDir(dir, options);
    try {
      const warm = new Float32Array(batchSize * model.width);
      for (let i = 0; i < runs; i++) await model.score(warm, batchSize);
    } catch (err) {
      await model.close();
      throw err;
    }
    return model;
  }

  /** How the model is run: 'direct' (at once) or 'deferred' (onnxruntime-node's public API). */
  get runMode(): ModelSession['mode'] {
    return this.session.mode;
  }

  /**
   * Scores `rows` feature vectors (row-major, width = card.features.names.length). With a direct
   * session the model has run by the time this returns; the promise only carries the result (no
   * wait for another turn of the event loop).
   */
  async score(rows: Float32Array, count: number): Promise<Float32Array> {
    if (rows.length !== count * this.width) {
      throw new TributaryError(`feature matrix has ${rows.length} values, expected ${count} x ${this.width}`);
    }
    if (count === 0) return new Float32Array(0);
    const input = new ort.Tensor('float32', rows, [count, this.width]);
    const ran = this.session.run(this.card.inputs[0].name, input, this.card.score.output);
    const probs = ran instanceof Promise ? await ran : ran;
    const columns = probs.length / count;
    const scores = new Float32Array(count);
    for (let i = 0; i < count; i++) scores[i] = probs[i * columns + this.card.score.index];
    return scores;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
