import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../../src/stack/paths';
import { Mulberry32, TransactionGenerator, type GeneratedTransaction } from '../../examples/fraud/generator';

import { loadGeneratorSpec, type GeneratorSpec } from '../../examples/fraud/generator-spec';
import { fraudFeatures } from '../helpers/fraud-features';

import * as ort from 'onnxruntime-node'; // typed arrays shared by test/helpers/node-environment.js
import type { Transaction } from '../../examples/fraud/schemas';
import { readGolden } from '../helpers/golden';

const MODEL_DIR = path.join(repoRoot(), 'models', 'fraud', '1');
const N = 20_000;

/** ROC AUC by the rank-sum (Mann-Whitney) statistic, ties get average ranks. */
function rocAuc(scores: ArrayLike<number>, labels: readonly boolean[]): number {
  const idx = Array.from({ length: labels.length }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let rankSumPos = 0;
  let pos = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[idx[k]]) {
        rankSumPos += avgRank;
        pos++;
      }
    }
    i = j + 1;
  }
  const neg = labels.length - pos;
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

function normalized(weights: readonly number[]): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  return weights.map((w) => w / total);
}

describe('Mulberry32', () => {
  it('is deterministic, in [0, 1), and seed-sensitive', () => {
    const a = new Mulberry32(42);
    const b = new Mulberry32(42);
    const c = new Mulberry32(43);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(Array.from({ length: 1000 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 1000 }, () => c.next())).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.05);
  });
});

describe('TransactionGenerator', () => {
  let spec: GeneratorSpec;
  let events: GeneratedTransaction[];
  beforeAll(() => {
    spec = loadGeneratorSpec();
    events = new TransactionGenerator({ seed: 2024, spec }).take(N);
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const again = new TransactionGenerator({ seed: 2024 }).take(500);
    expect(again).toEqual(events.slice(0, 500));
    const other = new TransactionGenerator({ seed: 2025, spec }).take(500);
    const strip = (g: GeneratedTransaction) => ({ ...g.tx, transactionId: '' });
    expect(other.map(strip)).not.toEqual(events.slice(0, 500).map(strip));
    expect(() => new TransactionGenerator({ seed: 1.5, spec })).toThrow(/integer/);
    expect(() => new TransactionGenerator({ seed: 1, spec, eventsPerSecond: 0 })).toThrow(/eventsPerSecond/);
  });

  it('produces well-formed events', () => {
    const ids = new Set<string>();
    const currencies = new Set(spec.currencies.map((c) => c.code));
    const countries = new Set(spec.countries.map((c) => c.code));
    const categories = new Set(spec.categories.map((c) => c.name));
    const g = new TransactionGenerator({ seed: 7, spec, startTime: Date.UTC(2025, 5, 1, 12), eventsPerSecond: 100 });
    for (const { tx } of g.take(2000)) {
      expect(tx.transactionId).toMatch(/^tx-7-\d+$/);
      ids.add(tx.transactionId);
      expect(tx.cardId).toMatch(/^card-\d{6}$/);
      expect(tx.merchantId).toMatch(/^m-\d{5}$/);
      expect(Number(tx.cardId.slice(5))).toBeLessThan(spec.cards);
      expect(Number(tx.merchantId.slice(2))).toBeLessThan(spec.merchants);
      expect(currencies.has(tx.currency)).toBe(true);
      expect(countries.has(tx.country)).toBe(true);
      expect(categories.has(tx.merchantCategory)).toBe(true);
      expect(tx.amount).toBeGreaterThan(0);
      expect(Number.isInteger(tx.eventTime)).toBe(true);
      // 2000 events at 100/s stay within the clock's UTC day
      expect(tx.eventTime).toBeGreaterThanOrEqual(Date.UTC(2025, 5, 1));
      expect(tx.eventTime).toBeLessThan(Date.UTC(2025, 5, 2));
    }
    expect(ids.size).toBe(2000);
    expect(g.count).toBe(2000);
  });

  it('reproduces the Python generator stream recorded in the golden set', () => {
    const card = JSON.parse(fs.readFileSync(path.join(MODEL_DIR, 'model.json'), 'utf8')) as {
      goldenSet: { seed: number; startTime: number; eventsPerSecond: number };
    };
    const rows = readGolden<Transaction>(MODEL_DIR).filter((r) => r.source.index !== undefined);
    expect(rows.length).toBeGreaterThan(100);
    const { seed, startTime, eventsPerSecond } = card.goldenSet;
    const g = new TransactionGenerator({ seed, spec, startTime, eventsPerSecond });
    const maxIndex = Math.max(...rows.map((r) => r.source.index as number));
    const stream = g.take(maxIndex + 1);
    for (const r of rows) {
      const got = stream[r.source.index as number];
      expect(r.source.seed).toBe(seed);
      expect({ tx: got.tx, isFraud: got.isFraud }).toEqual({ tx: r.event, isFraud: r.source.isFraud });
    }
  });

  it('matches the spec: fraud rate and category mix', () => {
    const fraudCount = events.filter((e) => e.isFraud).length;
    const rate = fraudCount / N;
    expect(Math.abs(rate - spec.fraud.baseRate)).toBeLessThan(0.006);

    const p = spec.fraud.baseRate;
    const legitW = normalized(spec.categories.map((c) => c.weight));
    const fraudW = normalized(spec.categories.map((c) => c.fraudWeight));
    spec.categories.forEach((c, i) => {
      const expected = (1 - p) * legitW[i] + p * fraudW[i];
      const share = events.filter((e) => e.tx.merchantCategory === c.name).length / N;
      expect(Math.abs(share - expected)).toBeLessThan(0.015);
    });

    // planted patterns are visible: fraud is far more often at night, high-risk, mismatched
    const fx = fraudFeatures();
    const col = (name: string) => fx.names.indexOf(name);
    const mean = (subset: GeneratedTransaction[], name: string) =>
      subset.reduce((s, e) => s + fx.extract(e.tx)[col(name)], 0) / subset.length;
    const fraud = events.filter((e) => e.isFraud);
    const legit = events.filter((e) => !e.isFraud);
    for (const name of ['is_night', 'is_high_risk_country', 'currency_mismatch']) {
      expect(mean(fraud, name)).toBeGreaterThan(3 * mean(legit, name));
    }
    expect(mean(fraud, 'log_amount_usd')).toBeGreaterThan(mean(legit, 'log_amount_usd') + 0.5);
  });

  it('the model separates TS-generated fraud (ROC AUC > 0.8)', async () => {
    const fx = fraudFeatures();
    const width = fx.size;
    const data = new Float32Array(N * width);
    events.forEach((e, i) => fx.extractInto(e.tx, data, i * width));
    const session = await ort.InferenceSession.create(path.join(MODEL_DIR, 'model.onnx'));
    try {
      const out = await session.run({ float_input: new ort.Tensor('float32', data, [N, width]) }, ['probabilities']);
      const probs = out.probabilities.data as Float32Array;
      const scores = Float64Array.from({ length: N }, (_, i) => probs[i * 2 + 1]);
      const auc = rocAuc(scores, events.map((e) => e.isFraud));
      expect(auc).toBeGreaterThan(0.8);
    } finally {
      await session.release();
    }
  });
});
