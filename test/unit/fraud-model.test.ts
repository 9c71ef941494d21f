import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../../src/stack/paths';

import { fraudFeatures } from '../helpers/fraud-features';

import * as ort from 'onnxruntime-node'; // typed arrays shared by test/helpers/node-environment.js
import type { Transaction } from '../../examples/fraud/schemas';
import { readGolden } from '../helpers/golden';

interface ModelCard {
  name: string;
  version: string;
  sha256: string;
  threshold: number;
  features: { set: string; version: number; names: string[] };
  inputs: { name: string; type: string; shape: number[] }[];
  outputs: { name: string; type: string; shape: number[] }[];
  score: { output: string; index: number };
}

const MODEL_DIR = path.join(repoRoot(), 'models', 'fraud', '1');
const MODEL_PATH = path.join(MODEL_DIR, 'model.onnx');
const card = JSON.parse(fs.readFileSync(path.join(MODEL_DIR, 'model.json'), 'utf8')) as ModelCard;
const golden = readGolden<Transaction>(MODEL_DIR);

describe('fraud model v1', () => {
  let session: ort.InferenceSession;
  beforeAll(async () => {
    session = await ort.InferenceSession.create(MODEL_PATH);
  });
  afterAll(async () => {
    await session?.release();
  });

  it('model.onnx matches the card (sha256, size < 1 MB, signature)', () => {
    const bytes = fs.readFileSync(MODEL_PATH);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(card.sha256);
    expect(bytes.length).toBeLessThan(1024 * 1024);
    expect(card.name).toBe('fraud');
    expect(card.version).toBe('1');
    expect(session.inputNames).toEqual(card.inputs.map((i) => i.name));
    expect(session.inputNames).toEqual(['float_input']);
    expect(session.outputNames).toEqual(card.outputs.map((o) => o.name));
    expect(card.score).toEqual({ output: 'probabilities', index: 1 });
    expect(card.inputs[0].shape).toEqual([-1, card.features.names.length]);
  });

  it('reproduces every golden score from TypeScript-extracted features in one batch', async () => {
    const fx = fraudFeatures();
    expect([...fx.names]).toEqual(card.features.names);
    const n = golden.length;
    const width = fx.size;
    const data = new Float32Array(n * width);
    golden.forEach((row, i) => fx.extractInto(row.event, data, i * width));
    const result = await session.run({ float_input: new ort.Tensor('float32', data, [n, width]) });
    const probs = result[card.score.output];
    const labels = result.label;
    expect(probs.dims).toEqual([n, 2]);
    expect(labels.dims).toEqual([n]);
    const p = probs.data as Float32Array;
    const l = labels.data as BigInt64Array;
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const score = p[i * 2 + card.score.index];
      worst = Math.max(worst, Math.abs(score - golden[i].score));
      if (!(Math.abs(score - golden[i].score) <= 1e-6)) {
        throw new Error(`${golden[i].event.transactionId}: score ${score}, Python ${golden[i].score}`);
      }
      expect(p[i * 2] + p[i * 2 + 1]).toBeCloseTo(1, 5);
      if (Math.abs(score - card.threshold) > 1e-6) expect(l[i]).toBe(score > card.threshold ? 1n : 0n);
    }
    expect(worst).toBeLessThanOrEqual(1e-6);
    // the set exercises both sides of the threshold
    expect(golden.some((g) => g.score > card.threshold)).toBe(true);
    expect(golden.some((g) => g.score < card.threshold)).toBe(true);
  });
});
