import * as path from 'node:path';
import { readJsonl } from '../../src/util/jsonl';
import { repoRoot } from '../../src/stack/paths';

/**
 * One row of a model version's golden set (models/<name>/<version>/golden.jsonl, written by the
 * model's training script): the event, the features Python computed for it, the score of the
 * exported model, and where the event came from (a generator index, or a hand-made edge case).
 */
export interface GoldenRow<E = unknown> {
  event: E;
  features: number[];
  score: number;
  source: { seed?: number; index?: number; isFraud?: boolean; case?: string };
}

/** A model version's folder in the repository's models/ (e.g. modelDir('fraud', '2')). */
export function modelDir(model: string, version: string): string {
  return path.join(repoRoot(), 'models', model, version);
}

/** The golden rows of the model version in `dir`, in file order. */
export function readGolden<E = unknown>(dir: string): GoldenRow<E>[] {
  return readJsonl<GoldenRow<E>>(path.join(dir, 'golden.jsonl'));
}

/** The golden rows' features as one row-major matrix (the shape a model session takes). */
export function goldenMatrix(rows: ReadonlyArray<{ features: number[] }>): Float32Array {
  return Float32Array.from(rows.flatMap((r) => r.features));
}
