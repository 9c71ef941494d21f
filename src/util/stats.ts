/**
 * Shared statistics (pure functions; unit-tested against hand-computed values): the model gate, the
 * shadow report, backfill evaluation and the bandit's sampler all use these, so they live in util.
 */

/** Threshold metrics a gate or report can name. */
export type MetricName = 'rocAuc' | 'precision' | 'recall' | 'f1' | 'accuracy';

/** ROC AUC by the rank statistic (Mann-Whitney U), ties counted half. NaN without both classes. */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let pos = 0;
  let rankSumPos = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[idx[k]] === 1) {
        pos++;
        rankSumPos += avgRank;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Threshold metrics (score >= threshold is positive). */
export function classificationMetrics(scores: ArrayLike<number>, labels: ArrayLike<number>, threshold: number): Record<MetricName, number> {
  let tp = 0, fp = 0, fn = 0, tn = 0;
  for (let i = 0; i < scores.length; i++) {
    const p = scores[i] >= threshold;
    if (p && labels[i] === 1) tp++;
    else if (p) fp++;
    else if (labels[i] === 1) fn++;
    else tn++;
  }
  const precision = tp + fp === 0 ? NaN : tp / (tp + fp);
  const recall = tp + fn === 0 ? NaN : tp / (tp + fn);
  return {
    rocAuc: rocAuc(scores, labels),
    precision,
    recall,
    f1: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : NaN,
    accuracy: (tp + tn) / Math.max(1, scores.length),
  };
}

/** Nearest-rank quantile (q in [0,1]) of unsorted values; NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/** Counts of values in `bins` equal-width bins over [lo, hi] (values outside are clamped into the end bins). */
export function histogram(values: readonly number[], bins: number, lo = 0, hi = 1): number[] {
  const counts = new Array<number>(bins).fill(0);
  const width = (hi - lo) / bins;
  for (const v of values) {
    const i = Math.min(bins - 1, Math.max(0, Math.floor((v - lo) / width)));
    counts[i] += 1;
  }
  return counts;
}

/** Proportions with `epsilon` added to empty bins (so logs stay finite), renormalised. */
function smoothed(counts: readonly number[], epsilon: number): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  const p = counts.map((c) => (total === 0 ? 0 : c / total)).map((x) => (x === 0 ? epsilon : x));
  const z = p.reduce((a, b) => a + b, 0);
  return p.map((x) => x / z);
}

/**
 * Population stability index of `actual` against `expected` over the same bins:
 * sum (a - e) * ln(a / e). Rules of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major.
 */
export function psi(expected: readonly number[], actual: readonly number[], epsilon = 1e-4): number {
  const e = smoothed(expected, epsilon);
  const a = smoothed(actual, epsilon);
  return e.reduce((sum, ei, i) => sum + (a[i] - ei) * Math.log(a[i] / ei), 0);
}

/** Jensen-Shannon divergence (base 2, in [0, 1]) between two count vectors over the same bins. */
export function jensenShannon(p: readonly number[], q: readonly number[]): number {
  const tp = p.reduce((a, b) => a + b, 0);
  const tq = q.reduce((a, b) => a + b, 0);
  if (tp === 0 || tq === 0) return NaN;
  const P = p.map((x) => x / tp);
  const Q = q.map((x) => x / tq);
  const kl = (A: number[], M: number[]) => A.reduce((s, a, i) => (a === 0 ? s : s + a * Math.log2(a / M[i])), 0);
  const M = P.map((x, i) => (x + Q[i]) / 2);
  return 0.5 * kl(P, M) + 0.5 * kl(Q, M);
}

/** Deterministic PRNG (mulberry32) so reports are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Interval {
  estimate: number;
  low: number;
  high: number;
  /** Bootstrap resamples whose statistic was computable. */
  resamples: number;
}

/**
 * Paired percentile bootstrap: resamples indexes 0..n-1 with replacement `iterations` times and
 * returns the statistic on the full sample with the (alpha/2, 1 - alpha/2) percentiles.
 */
export function bootstrap(n: number, statistic: (idx: readonly number[]) => number, options: { iterations?: number; alpha?: number; seed?: number } = {}): Interval {
  const all = Array.from({ length: n }, (_, i) => i);
  const estimate = statistic(all);
  const iterations = options.iterations ?? 500;
  const alpha = options.alpha ?? 0.05;
  const random = rng(options.seed ?? 1);
  const values: number[] = [];
  const idx = new Array<number>(n);
  for (let b = 0; b < iterations && n > 0; b++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(random() * n);
    const v = statistic(idx);
    if (Number.isFinite(v)) values.push(v);
  }
  values.sort((a, b) => a - b);
  const at = (q: number) => (values.length === 0 ? NaN : values[Math.min(values.length - 1, Math.max(0, Math.floor(q * values.length)))]);
  return { estimate, low: at(alpha / 2), high: at(1 - alpha / 2), resamples: values.length };
}

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 erf, |error| < 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

export interface ZTest {
  p1: number;
  p2: number;
  n1: number;
  n2: number;
  /** p2 - p1 */
  difference: number;
  z: number;
  /** Two-sided. */
  pValue: number;
  significant: boolean;
  alpha: number;
}

/** Two-proportion z-test with the pooled standard error: x successes of n in each group. */
export function twoProportionZTest(x1: number, n1: number, x2: number, n2: number, alpha = 0.05): ZTest {
  const p1 = n1 > 0 ? x1 / n1 : NaN;
  const p2 = n2 > 0 ? x2 / n2 : NaN;
  const pooled = (x1 + x2) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  const z = se > 0 ? (p2 - p1) / se : 0;
  const pValue = Number.isFinite(z) ? 2 * (1 - normalCdf(Math.abs(z))) : NaN;
  return { p1, p2, n1, n2, difference: p2 - p1, z, pValue, significant: pValue < alpha, alpha };
}

/** ROC curve points (fpr, tpr) from the highest threshold down, with (0,0) and (1,1). */
export function rocCurve(scores: readonly number[], labels: readonly number[]): { fpr: number; tpr: number }[] {
  const idx = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const pos = labels.filter((l) => l === 1).length;
  const neg = labels.length - pos;
  const points = [{ fpr: 0, tpr: 0 }];
  if (pos === 0 || neg === 0) return points;
  let tp = 0, fp = 0;
  for (let i = 0; i < idx.length; i++) {
    if (labels[idx[i]] === 1) tp++;
    else fp++;
    if (i === idx.length - 1 || scores[idx[i + 1]] !== scores[idx[i]]) points.push({ fpr: fp / neg, tpr: tp / pos });
  }
  return points;
}

/** Reliability diagram: per equal-width score bin, mean predicted score and observed positive rate. */
export function calibration(scores: readonly number[], labels: readonly number[], bins = 10): { bin: number; lo: number; hi: number; n: number; meanScore: number; positiveRate: number }[] {
  const out = Array.from({ length: bins }, (_, b) => ({ bin: b, lo: b / bins, hi: (b + 1) / bins, n: 0, sumScore: 0, positives: 0 }));
  scores.forEach((s, i) => {
    const b = Math.min(bins - 1, Math.max(0, Math.floor(s * bins)));
    out[b].n++;
    out[b].sumScore += s;
    out[b].positives += labels[i] === 1 ? 1 : 0;
  });
  return out.map(({ bin, lo, hi, n, sumScore, positives }) => ({ bin, lo, hi, n, meanScore: n ? sumScore / n : NaN, positiveRate: n ? positives / n : NaN }));
}

/** Expected calibration error: bin-size weighted |mean score - positive rate|. */
export function expectedCalibrationError(bins: ReturnType<typeof calibration>): number {
  const n = bins.reduce((a, b) => a + b.n, 0);
  return n === 0 ? NaN : bins.reduce((s, b) => (b.n ? s + (b.n / n) * Math.abs(b.meanScore - b.positiveRate) : s), 0);
}

