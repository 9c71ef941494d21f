import { rng } from '../util/stats';
/**
 * Thompson sampling over Beta-Bernoulli arms: the share of traffic an arm gets is the probability
 * that its success rate is the highest, estimated by sampling the posteriors, with a floor so every
 * arm keeps being explored.
 */

export interface ArmPosterior {
  arm: string;
  successes: number;
  failures: number;
}

/** A seedable PRNG (mulberry32) so tests can be exact; Math.random in production. */
export const seededRandom = rng;

function standardNormal(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** Gamma(shape, 1) by Marsaglia and Tsang (with the shape < 1 boost). */
export function sampleGamma(shape: number, rand: () => number): number {
  if (shape < 1) return sampleGamma(shape + 1, rand) * Math.pow(Math.max(rand(), 1e-12), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = standardNormal(rand);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rand();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

export function sampleBeta(alpha: number, beta: number, rand: () => number): number {
  const x = sampleGamma(alpha, rand);
  const y = sampleGamma(beta, rand);
  return x / (x + y);
}

export interface ThompsonOptions {
  /** Minimum share of each arm (0..1/arms), default 0.05. */
  floor?: number;
  /** Posterior draws used to estimate the probabilities, default 2000. */
  draws?: number;
  /** Beta prior, default (1, 1). */
  priorAlpha?: number;
  priorBeta?: number;
  random?: () => number;
}

/** Share of traffic per arm (sums to 1): P(arm is best) under the posteriors, floored. */
export function thompsonShares(arms: ArmPosterior[], options: ThompsonOptions = {}): Record<string, number> {
  const { draws = 2000, priorAlpha = 1, priorBeta = 1, random = Math.random } = options;
  const floor = Math.min(options.floor ?? 0.05, 1 / arms.length);
  const wins = new Array<number>(arms.length).fill(0);
  for (let d = 0; d < draws; d++) {
    let best = 0;
    let bestValue = -1;
    arms.forEach((a, i) => {
      const v = sampleBeta(priorAlpha + a.successes, priorBeta + a.failures, random);
      if (v > bestValue) {
        bestValue = v;
        best = i;
      }
    });
    wins[best] += 1;
  }
  // Floor every arm, then spread what remains in proportion to the wins.
  const rest = 1 - floor * arms.length;
  const out: Record<string, number> = {};
  arms.forEach((a, i) => (out[a.arm] = floor + rest * (wins[i] / draws)));
  return out;
}
