import fc from 'fast-check';
import { BUCKETS, SliceLayout, bucketOf } from '../../src/routing/canary';
import { murmur3 } from '../../src/routing/murmur3';

describe('murmur3 (x86, 32 bit)', () => {
  it('matches the reference vectors', () => {
    expect(murmur3('', 0)).toBe(0);
    expect(murmur3('', 1)).toBe(0x514e28b7);
    expect(murmur3('', 0xffffffff)).toBe(0x81f16f39);
    expect(murmur3('hello', 0)).toBe(0x248bfa47);
    expect(murmur3('The quick brown fox jumps over the lazy dog', 0)).toBe(0x2e4ff723);
    expect(murmur3(new Uint8Array([0x21, 0x43, 0x65, 0x87]), 0)).toBe(0xf55b516b);
    expect(murmur3(new Uint8Array([0x21, 0x43, 0x65]), 0)).toBe(0x7e4a8634);
    expect(murmur3(new Uint8Array([0x21, 0x43]), 0)).toBe(0xa0f7b07a);
    expect(murmur3(new Uint8Array([0x21]), 0)).toBe(0x72661cf4);
  });
});

const keys = Array.from({ length: 3000 }, (_, i) => `card-${i}`);
const routeAll = (layout: SliceLayout, experiment = 'exp-1') => keys.map((k) => layout.route(experiment, k));

describe('canary: sticky slices of 10,000 buckets', () => {
  it('buckets are uniform enough and each arm gets exactly its weight of the bucket space', () => {
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 20000; i++) counts[Math.floor(bucketOf('e', `k${i}`) / (BUCKETS / 10))]++;
    for (const c of counts) expect(Math.abs(c - 2000)).toBeLessThan(200);
    const layout = new SliceLayout([{ name: 'stable' }, { name: 'candidate', weight: 12.34 }]);
    expect(layout.shares()).toEqual({ stable: 87.66, candidate: 12.34 });
  });

  it('raising a percentage only adds keys to that arm (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10000 }), fc.integer({ min: 0, max: 10000 }), (a, b) => {
        const [lo, hi] = a <= b ? [a / 100, b / 100] : [b / 100, a / 100];
        const before = routeAll(new SliceLayout([{ name: 'stable' }, { name: 'canary', weight: lo }]));
        const after = routeAll(new SliceLayout([{ name: 'stable' }, { name: 'canary', weight: hi }]));
        return before.every((arm, i) => arm !== 'canary' || after[i] === 'canary');
      }),
      { numRuns: 40 },
    );
  });

  it('changing one arm\'s weight moves only that arm\'s keys (property, three treatments)', () => {
    const weight = fc.integer({ min: 0, max: 3333 }).map((x) => x / 100);
    fc.assert(
      fc.property(fc.tuple(weight, weight, weight), fc.integer({ min: 0, max: 2 }), weight, (ws, which, w2) => {
        const arms = (w: number[]) => [{ name: 'control' }, ...w.map((x, i) => ({ name: `t${i}`, weight: x }))];
        const changed = [...ws];
        changed[which] = w2;
        const before = routeAll(new SliceLayout(arms(ws)));
        const after = routeAll(new SliceLayout(arms(changed)));
        return before.every((arm, i) => arm === after[i] || ((arm === `t${which}` || after[i] === `t${which}`) && (arm === 'control' || after[i] === 'control')));
      }),
      { numRuns: 40 },
    );
  });

  it('is sticky per experiment: same key same arm; another experiment id reshuffles', () => {
    const layout = new SliceLayout([{ name: 'a' }, { name: 'b', weight: 50 }]);
    expect(routeAll(layout)).toEqual(routeAll(layout));
    const other = routeAll(layout, 'exp-2');
    const same = routeAll(layout).filter((arm, i) => arm === other[i]).length;
    expect(same / keys.length).toBeGreaterThan(0.4);
    expect(same / keys.length).toBeLessThan(0.6);
  });

  it('refuses weights beyond an arm\'s fixed slice', () => {
    expect(() => new SliceLayout([{ name: 'a' }, { name: 'b', weight: 60 }, { name: 'c', weight: 10 }])).toThrow(/exceeds its maxWeight 50%/);
    expect(() => new SliceLayout([{ name: 'a' }, { name: 'b', weight: 60, maxWeight: 80 }, { name: 'c', weight: 10, maxWeight: 30 }])).toThrow(/add up to 110%/);
  });
});
