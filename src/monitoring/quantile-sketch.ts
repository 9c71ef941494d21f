/**
 * A KLL-style streaming quantile sketch (Karnin, Lang, Liberty 2016, simplified): a stack of
 * compactors, level h holding items of weight 2^h; a full level is sorted and every other item
 * (random offset) is promoted. Memory O(k log(n/k)); rank error about 1.7/k with high
 * probability (k = 200: ~1%). Deterministic: the coin flips come from a seeded generator.
 */
export class QuantileSketch {
  private levels: number[][] = [[]];
  private count = 0;
  private seed: number;

  constructor(
    private readonly k = 200,
    seed = 0x9e3779b9,
  ) {
    this.seed = seed >>> 0;
  }

  get n(): number {
    return this.count;
  }

  add(x: number): void {
    this.levels[0].push(x);
    this.count += 1;
    if (this.levels[0].length >= this.capacity(0)) this.compress();
  }

  /** Fraction of the stream <= x (estimated). */
  cdf(x: number): number {
    if (this.count === 0) return 0;
    let w = 0;
    this.levels.forEach((items, h) => {
      let c = 0;
      for (const v of items) if (v <= x) c += 1;
      w += c * 2 ** h;
    });
    return Math.min(1, w / this.weight());
  }

  /** Distinct retained items, sorted (the points where the sketch's CDF steps). */
  points(): number[] {
    return [...new Set(this.levels.flat())].sort((a, b) => a - b);
  }

  private weight(): number {
    return this.levels.reduce((s, items, h) => s + items.length * 2 ** h, 0);
  }

  private capacity(h: number): number {
    const depth = this.levels.length - 1 - h;
    return Math.max(2, Math.ceil(this.k * (2 / 3) ** depth));
  }

  private coin(): number {
    // mulberry32
    this.seed = (this.seed + 0x6d2b79f5) >>> 0;
    let t = this.seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) & 1;
  }

  private compress(): void {
    for (let h = 0; h < this.levels.length; h++) {
      if (this.levels[h].length < this.capacity(h)) continue;
      if (h + 1 === this.levels.length) this.levels.push([]);
      const items = this.levels[h].sort((a, b) => a - b);
      // An odd item out stays at this level, so the total weight stays exactly n.
      const keep = items.length % 2 === 1 ? [items.pop()!] : [];
      const offset = this.coin();
      for (let i = offset; i < items.length; i += 2) this.levels[h + 1].push(items[i]);
      this.levels[h] = keep;
      // Promoting may overfill the next level: keep going upwards.
    }
  }
}
