import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { TributaryError } from '../util/errors';
import { createLogger } from '../util/logger';
import { modelDir, readModelCard, type ModelCard } from './model-card';

const log = createLogger('onnx-model');

export class ModelIntegrityError extends TributaryError {}

export interface OnnxModelOptions {
  /** Execution providers in order of preference, e.g. ['cuda', 'cpu']. */
  executionProviders?: string[];
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
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
    private readonly session: ort.InferenceSession,
  ) {}

  get width(): number {
    return this.card.features.names.length;
  }

  static async load(repository: string, name: string, version: string, options: OnnxModelOptions = {}): Promise<OnnxModel> {
    const dir = modelDir(repository, name, version);
    const card = readModelCard(dir);
    const weights = path.join(dir, 'model.onnx');
    const actual = sha256File(weights);
    if (actual !== card.sha256) {
      throw new ModelIntegrityError(`${weights}: sha256 ${actual} does not match the card's ${card.sha256}; refusing to load`);
    }
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders: options.executionProviders ?? ['cpu'],
      graphOptimizationLevel: 'all',
    };
    // onnxruntime rejects keys present with an undefined value: set only what was configured.
    if (options.intraOpNumThreads !== undefined) sessionOptions.intraOpNumThreads = options.intraOpNumThreads;
    if (options.interOpNumThreads !== undefined) sessionOptions.interOpNumThreads = options.interOpNumThreads;
    const session = await ort.InferenceSession.create(weights, sessionOptions);
    log.info({ model: card.name, version: card.version, inputs: session.inputNames, outputs: session.outputNames }, 'model loaded');
    return new OnnxModel(card, dir, session);
  }

  /** Scores `rows` feature vectors (row-major, width = card.features.names.length). */
  async score(rows: Float32Array, count: number): Promise<Float32Array> {
    if (rows.length !== count * this.width) {
      throw new TributaryError(`feature matrix has ${rows.length} values, expected ${count} x ${this.width}`);
    }
    if (count === 0) return new Float32Array(0);
    const input = new ort.Tensor('float32', rows, [count, this.width]);
    const out = await this.session.run({ [this.card.inputs[0].name]: input }, [this.card.score.output]);
    const probs = out[this.card.score.output].data as Float32Array;
    const columns = probs.length / count;
    const scores = new Float32Array(count);
    for (let i = 0; i < count; i++) scores[i] = probs[i * columns + this.card.score.index];
    return scores;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
