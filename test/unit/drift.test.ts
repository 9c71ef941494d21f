import * as path from 'node:path';
import { Registry } from 'prom-client';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { fraudFeatures } from '../helpers/fraud-features';
import { readModelCard } from '../../src/inference/model-card';
import { DriftMonitor, binOf, readBaseline, type NumericProfile } from '../../src/monitoring/drift-monitor';
import { adjustPValues, chiSquareSurvival, jsDivergence, ksPValue, normalSurvival, percentileCdf, psi } from '../../src/monitoring/drift-stats';
import { FeedbackMonitor, rocAuc } from '../../src/monitoring/feedback-monitor';
import { QuantileSketch } from '../../src/monitoring/quantile-sketch';
import { repoRoot } from '../../src/stack/paths';

const card1 = readModelCard(path.join(repoRoot(), 'models/fraud/1'));
const card2 = readModelCard(path.join(repoRoot(), 'models/fraud/2'));

describe('drift statistics', () => {
  it('PSI and JS are 0 for identical distributions and grow with the shift', () => {
    const e = [0.25, 0.25, 0.25, 0.25];
    expect(psi(e, e)).toBe(0);
    expect(jsDivergence(e, e)).toBe(0);
    const a = [0.4, 0.3, 0.2, 0.1];
    const b = [0.7, 0.1, 0.1, 0.1];
    expect(psi(a, e)).toBeGreaterThan(0);
    expect(psi(b, e)).toBeGreaterThan(psi(a, e));
    expect(jsDivergence([1, 0], [0, 1])).toBeCloseTo(1, 10);
  });

  it('normal and chi-square tails match tabulated values', () => {
    expect(normalSurvival(1.959964)).toBeCloseTo(0.025, 5);
    expect(chiSquareSurvival(3.841, 1)).toBeCloseTo(0.05, 2);
    expect(chiSquareSurvival(16.919, 9)).toBeCloseTo(0.05, 3);
    expect(chiSquareSurvival(21.666, 9)).toBeCloseTo(0.01, 3);
    expect(ksPValue(0.0192, 5000, 1e9)).toBeCloseTo(0.05, 2); // 1.358 / sqrt(5000)
  });

  it('Benjamini-Hochberg and Bonferroni adjust in input order', () => {
    const p = [0.01, 0.04, 0.03, 0.005];
    expect(adjustPValues(p, 'bonferroni')).toEqual([0.04, 0.16, 0.12, 0.02]);
    const bh = adjustPValues(p, 'benjamini-hochberg');
    // sorted 0.005,0.01,0.03,0.04 -> 0.02, 0.02, 0.04, 0.04
    expect(bh.map((x) => +x.toFixed(6))).toEqual([0.02, 0.04, 0.04, 0.02]);
    expect(adjustPValues(p, 'none')).toEqual(p);
  });

  it('the quantile sketch keeps its CDF within 2% of the exact one over 200k values, in bounded memory', () => {
    const s = new QuantileSketch(200);
    const xs: number[] = [];
    let seed = 1;
    for (let i = 0; i < 200000; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const x = Math.exp((seed / 2 ** 31) * 6); // skewed
      xs.push(x);
      s.add(x);
    }
    xs.sort((a, b) => a - b);
    let worst = 0;
    for (let q = 0.01; q < 1; q += 0.01) {
      const x = xs[Math.floor(q * xs.length)];
      worst = Math.max(worst, Math.abs(s.cdf(x) - (Math.floor(q * xs.length) + 1) / xs.length));
    }
    expect(worst).toBeLessThan(0.02);
    expect(s.points().length).toBeLessThan(2000);
    expect(s.n).toBe(200000);
  });

  it('the reference CDF interpolates the baseline percentiles', () => {
    const pct = Array.from({ length: 101 }, (_, i) => i); // uniform on [0, 100]
    expect(percentileCdf(pct, -1)).toBe(0);
    expect(percentileCdf(pct, 50)).toBeCloseTo(0.5, 10);
    expect(percentileCdf(pct, 25.5)).toBeCloseTo(0.255, 10);
    expect(percentileCdf(pct, 100)).toBe(1);
  });
});

describe('model card baselines', () => {
  it('cover every feature and the score; bins follow (-inf,e1],...,(ek,+inf)', () => {
    for (const card of [card1, card2]) {
      const b = readBaseline(card);
      expect(b.rows).toBe(160000);
      for (const name of card.features.names) {
        const p = b.features[name];
        const freq = p.kind === 'numeric' ? p.frequencies : [...p.frequencies, p.otherFrequency];
        expect(freq.reduce((a, x) => a + x, 0)).toBeCloseTo(1, 4);
        if (p.kind === 'numeric') expect(freq).toHaveLength(p.edges.length + 1);
      }
      expect(b.score.kind).toBe('numeric');
    }
    const amount = readBaseline(card2).features.amount_usd as NumericProfile;
    expect(amount.edges).toHaveLength(9); // deciles
    expect(binOf(amount, amount.edges[0])).toBe(0);
    expect(binOf(amount, amount.edges[0] + 1e-9)).toBe(1);
    expect(binOf(amount, 1e9)).toBe(9);
  });

  it('the TypeScript generator and extractor reproduce the v1 training distribution (baseline written by Python)', () => {
    const monitor = new DriftMonitor(card1, { windowEvents: 5000 });
    const fx = fraudFeatures();
    const gen = new TransactionGenerator({ seed: 99 });
    let report;
    for (let i = 0; i < 5000; i++) report = monitor.observeVector(fx.names, fx.extract(gen.next().tx));
    expect(report).toBeTruthy();
    const worst = Math.max(...report!.features.map((f) => f.psi));
    expect(worst).toBeLessThan(0.02);
    expect(report!.level).toBe('OK');
  });
});

describe('DriftMonitor windows', () => {
  function windowOf(shift: (tx: ReturnType<TransactionGenerator['next']>['tx']) => void, seed: number) {
    const registry = new Registry();
    const monitor = new DriftMonitor(card1, { windowEvents: 3000 }, registry);
    const fx = fraudFeatures();
    const gen = new TransactionGenerator({ seed });
    let report;
    for (let i = 0; i < 3000; i++) {
      const { tx } = gen.next();
      shift(tx);
      report = monitor.observeVector(fx.names, fx.extract(tx));
    }
    return { report: report!, registry };
  }

  it('flags a shifted amount distribution and nothing on an unshifted stream of the same size', async () => {
    const clean = windowOf(() => {}, 5);
    expect(clean.report.level).toBe('OK');
    expect(clean.report.driftedFeatures).toEqual([]);

    const shifted = windowOf((tx) => (tx.amount *= 3), 5);
    expect(shifted.report.level).toBe('ALERT');
    expect(shifted.report.driftedFeatures).toEqual(expect.arrayContaining(['amount_usd', 'log_amount_usd']));
    const amount = shifted.report.features.find((f) => f.feature === 'amount_usd')!;
    expect(amount.psi).toBeGreaterThan(0.25);
    expect(amount.ks).toBeGreaterThan(0.2);
    expect(amount.adjustedPValue).toBeLessThan(0.01);
    // categorical features of the same window are untouched
    expect(shifted.report.features.find((f) => f.feature === 'cat_grocery')!.level).toBe('OK');
    const text = await shifted.registry.metrics();
    expect(text).toMatch(/tributary_drift_psi\{model="fraud",version="1",feature="amount_usd"\} (\d|\.)+/);
    expect(text).toMatch(/tributary_drift_level\{model="fraud",version="1",feature="amount_usd"\} 2/);
    expect(text).toMatch(/tributary_drift_windows_total\{model="fraud",version="1",scope="FEATURES",level="ALERT"\} 1/);
  });

  it('closes by time only with enough events, and reorders named vectors to the card order', () => {
    const monitor = new DriftMonitor(card1, { windowEvents: 100000, windowMs: 1000, minEvents: 10 }, undefined, 0);
    const fx = fraudFeatures();
    const gen = new TransactionGenerator({ seed: 1 });
    const names = [...fx.names].reverse();
    for (let i = 0; i < 5; i++) monitor.observeVector(names, fx.extract(gen.next().tx).reverse(), 0);
    expect(monitor.tick(5000)).toEqual([]);
    for (let i = 0; i < 5; i++) monitor.observeVector(names, fx.extract(gen.next().tx).reverse(), 0);
    const [r] = monitor.tick(5000);
    expect(r.windowEvents).toBe(10);
    expect(monitor.observeVector(['nope'], [1])).toBeNull();
  });
});

describe('FeedbackMonitor', () => {
  it('computes AUC by ranks, ties averaged', () => {
    expect(rocAuc([0.1, 0.4, 0.35, 0.8], [false, false, true, true])).toBeCloseTo(0.75, 10);
    expect(rocAuc([0.5, 0.5], [false, true])).toBeCloseTo(0.5, 10);
    expect(rocAuc([0.2, 0.3], [true, true])).toBeNull();
  });

  it('joins labels with predictions in either order over a rolling window', async () => {
    const registry = new Registry();
    const m = new FeedbackMonitor('fraud', '1', { labelledWindow: 3, confidentLow: 0.1, confidentHigh: 0.9 }, registry);
    m.observeFeedback('a', true); // label first
    m.observePrediction('a', 0.95, true);
    m.observePrediction('b', 0.2, false);
    m.observeFeedback('b', true); // missed fraud: corrected
    m.observePrediction('c', 0.05, false);
    m.observeFeedback('c', false);
    m.observePrediction('d', 0.6, true);
    expect(m.snapshot()).toEqual({ labelled: 3, precision: 1, recall: 0.5, rocAuc: 1, confidentShare: 0.5, correctedShare: 1 / 3 });
    m.observeFeedback('d', false); // window keeps the latest 3: b, c, d
    expect(m.snapshot()).toMatchObject({ labelled: 3, precision: 0, recall: 0, correctedShare: 2 / 3 });
    m.flush();
    expect(await registry.metrics()).toMatch(/tributary_feedback_corrected_ratio\{model="fraud",version="1"\} 0\.66/);
  });
});
