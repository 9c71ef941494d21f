import { sampleBeta, seededRandom, thompsonShares } from '../../src/routing/thompson';

describe('Thompson sampling', () => {
  it('samples Beta distributions with the right mean', () => {
    const rand = seededRandom(1);
    for (const [a, b] of [[2, 8], [30, 10], [1, 1], [0.5, 0.5]]) {
      let sum = 0;
      const n = 20000;
      for (let i = 0; i < n; i++) sum += sampleBeta(a, b, rand);
      expect(Math.abs(sum / n - a / (a + b))).toBeLessThan(0.01);
    }
  });

  it('gives the clearly better arm most of the traffic, keeps every arm at or above the floor, and sums to 1', () => {
    const shares = thompsonShares(
      [
        { arm: 'control', successes: 900, failures: 100 },
        { arm: 'worse', successes: 500, failures: 500 },
        { arm: 'unknown', successes: 0, failures: 0 },
      ],
      { floor: 0.05, random: seededRandom(7) },
    );
    expect(shares.control).toBeGreaterThan(0.8);
    expect(shares.worse).toBeGreaterThanOrEqual(0.05);
    expect(shares.worse).toBeLessThan(0.06);
    expect(shares.unknown).toBeGreaterThanOrEqual(0.05);
    expect(Object.values(shares).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
  });

  it('splits evenly between arms it knows nothing about', () => {
    const shares = thompsonShares([{ arm: 'a', successes: 0, failures: 0 }, { arm: 'b', successes: 0, failures: 0 }], { random: seededRandom(3), draws: 20000 });
    expect(Math.abs(shares.a - 0.5)).toBeLessThan(0.02);
  });
});
