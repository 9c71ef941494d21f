/**
 * Drift statistics over binned distributions (PSI, Jensen-Shannon, G-test), the KS statistic of a
 * sample CDF against a reference given by percentiles, and multiple-testing corrections.
 */

/** Smoothing so empty bins on either side keep PSI and the G-test finite. */
const EPS = 1e-4;

/** Reference frequencies, floored at EPS and renormalised. */
export function smoothReference(freq: readonly number[]): number[] {
  const s = freq.map((f) => Math.max(f, EPS));
  const total = s.reduce((a, b) => a + b, 0);
  return s.map((f) => f / total);
}

/** Observed proportions with half a count added per bin (Jeffreys-style), so log terms stay finite. */
export function smoothObserved(counts: readonly number[]): number[] {
  const n = counts.reduce((a, b) => a + b, 0);
  return counts.map((c) => (c + 0.5) / (n + 0.5 * counts.length));
}

/** Population stability index: sum (a - e) ln(a / e). */
export function psi(observed: readonly number[], expected: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < observed.length; i++) s += (observed[i] - expected[i]) * Math.log(observed[i] / expected[i]);
  return s;
}

/** Jensen-Shannon divergence in bits (0..1). */
export function jsDivergence(p: readonly number[], q: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    const m = (p[i] + q[i]) / 2;
    if (p[i] > 0) s += 0.5 * p[i] * Math.log2(p[i] / m);
    if (q[i] > 0) s += 0.5 * q[i] * Math.log2(q[i] / m);
  }
  return Math.max(0, s);
}

/** G-test (likelihood-ratio chi-square) of raw counts against expected proportions: statistic and p-value. */
export function gTest(counts: readonly number[], expected: readonly number[]): { g: number; df: number; pValue: number } {
  const n = counts.reduce((a, b) => a + b, 0);
  let g = 0;
  for (let i = 0; i < counts.length; i++) if (counts[i] > 0) g += 2 * counts[i] * Math.log(counts[i] / (n * expected[i]));
  const df = Math.max(1, counts.length - 1);
  return { g, df, pValue: chiSquareSurvival(Math.max(0, g), df) };
}

/** P(X >= x) for X ~ chi-square(df), via the Wilson-Hilferty normal approximation (good to ~1e-3 for df >= 1 at the tails used here). */
export function chiSquareSurvival(x: number, df: number): number {
  if (x <= 0) return 1;
  const z = (Math.cbrt(x / df) - (1 - 2 / (9 * df))) / Math.sqrt(2 / (9 * df));
  return normalSurvival(z);
}

/** P(Z >= z) for a standard normal (erfc, Numerical Recipes' Chebyshev fit, |error| < 1.2e-7). */
export function normalSurvival(z: number): number {
  const x = z / Math.SQRT2;
  const t = 1 / (1 + 0.5 * Math.abs(x));
  const erfc =
    t *
    Math.exp(
      -x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  const e = x >= 0 ? erfc : 2 - erfc;
  return e / 2;
}

/** Asymptotic two-sample KS p-value: Kolmogorov's Q(lambda) with lambda = (sqrt(ne) + 0.12 + 0.11/sqrt(ne)) D. */
export function ksPValue(d: number, n: number, m: number): number {
  const ne = (n * m) / (n + m);
  const lambda = (Math.sqrt(ne) + 0.12 + 0.11 / Math.sqrt(ne)) * d;
  if (lambda < 0.2) return 1;
  let sum = 0;
  for (let k = 1; k <= 100; k++) {
    const term = 2 * (k % 2 === 1 ? 1 : -1) * Math.exp(-2 * k * k * lambda * lambda);
    sum += term;
    if (Math.abs(term) < 1e-12) break;
  }
  return Math.min(1, Math.max(0, sum));
}

/** Reference CDF from the 0..100th percentiles (linear between them). */
export function percentileCdf(percentiles: readonly number[], x: number): number {
  const k = percentiles.length - 1;
  if (x < percentiles[0]) return 0;
  if (x >= percentiles[k]) return 1;
  // last index with p[i] <= x
  let lo = 0;
  let hi = k;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (percentiles[mid] <= x) lo = mid;
    else hi = mid;
  }
  const a = percentiles[lo];
  const b = percentiles[lo + 1];
  const frac = b > a ? (x - a) / (b - a) : 0;
  return (lo + frac) / k;
}

export type Correction = 'benjamini-hochberg' | 'bonferroni' | 'none';

/** Adjusted p-values (BH step-up with monotone enforcement, or Bonferroni), in input order. */
export function adjustPValues(p: readonly number[], correction: Correction): number[] {
  const m = p.length;
  if (correction === 'none' || m === 0) return [...p];
  if (correction === 'bonferroni') return p.map((x) => Math.min(1, x * m));
  const order = p.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const adj = new Array<number>(m);
  let running = 1;
  for (let r = m - 1; r >= 0; r--) {
    const [x, i] = order[r];
    running = Math.min(running, (x * m) / (r + 1));
    adj[i] = Math.min(1, running);
  }
  return adj;
}
