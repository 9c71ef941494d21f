import fc from 'fast-check';
import { ExactScan, padd, psum, sumRange } from '../../src/features/window-state';

/** x as an exact integer multiple of 2^-1074 (every finite double is one). */
function scaled(x: number): bigint {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const exp = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & ((1n << 52n) - 1n);
  if (exp !== 0) mant |= 1n << 52n;
  const v = mant << BigInt(exp === 0 ? 0 : exp - 1);
  return bits >> 63n ? -v : v;
}

/** The double nearest to s x 2^-1074 (ties to even), computed with integers only: the judge of psum. */
function rounded(s: bigint): number {
  if (s === 0n) return 0;
  const neg = s < 0n;
  const a = neg ? -s : s;
  const n = a.toString(2).length;
  let out: number;
  if (n <= 53) out = Number(a) * 2 ** -1074; // exact: at most 53 significant bits
  else {
    const shift = n - 53;
    let q = a >> BigInt(shift);
    const rem = a - (q << BigInt(shift));
    const half = 1n << BigInt(shift - 1);
    if (rem > half || (rem === half && (q & 1n) === 1n)) q += 1n;
    out = Number(q) * 2 ** (shift - 1074); // exact: a normal double
  }
  return neg ? -out : out;
}

/** Doubles of very different magnitudes, so partial sums cancel and carry (what makes summing exactly hard). */
const value = fc.oneof(
  fc.double({ min: -1e6, max: 1e6, noNaN: true }),
  fc.integer({ min: -1000, max: 1000 }),
  fc.double({ min: -1e16, max: 1e16, noNaN: true }),
  fc.constantFrom(0.1, 0.2, 0.3, 1e-9, 1e16, -1e16, 2 ** 53, 1 + 2 ** -52),
);

describe('exact sums (Shewchuk partials: what makes sums and means bit-identical in any order)', () => {
  it('psum of the partials is the correctly rounded exact sum', () => {
    fc.assert(
      fc.property(fc.array(value, { maxLength: 60, size: '+1' }), (xs) => {
        const p: number[] = [];
        for (const x of xs) padd(p, x);
        expect(psum(p)).toBe(rounded(xs.reduce((s, x) => s + scaled(x), 0n)) + 0);
      }),
      { numRuns: 2000 },
    );
  });

  it('adding the negation of some values removes them exactly (how a window drops what leaves it)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(value, fc.boolean()), { maxLength: 60, size: '+1' }), (xs) => {
        const p: number[] = [];
        for (const [x] of xs) padd(p, x);
        for (const [x, drop] of xs) if (drop) padd(p, -x);
        const kept = xs.filter(([, drop]) => !drop).reduce((s, [x]) => s + scaled(x), 0n);
        expect(psum(p)).toBe(rounded(kept) + 0);
      }),
      { numRuns: 2000 },
    );
  });

  it('a scan\'s exact sum (ExactScan, reused) is the same correctly rounded sum', () => {
    const scan = new ExactScan();
    fc.assert(
      fc.property(fc.array(value, { maxLength: 60, size: '+1' }), (xs) => {
        scan.reset();
        for (const x of xs) scan.add(x);
        expect(scan.sum()).toBe(rounded(xs.reduce((s, x) => s + scaled(x), 0n)) + 0);
      }),
      { numRuns: 2000 },
    );
  });

  it('a range\'s sum (sumRange: compensated, certified, else exact) is the same correctly rounded sum, never -0', () => {
    // Besides the values above: sums that land on or next to a rounding boundary (a tie between two
    // doubles, one unit of the last place off it), near the subnormal range, and past the largest double.
    const edge = fc.constantFrom(1, -1, 2, 2 ** -53, -(2 ** -53), 2 ** -52, 2 ** -54, -(2 ** -54), 3 * 2 ** -54, 2 ** -80, -(2 ** -80), 2 ** -1070, -(2 ** -1074), 1e308, -1e308, 0, -0);
    const scan = new ExactScan();
    fc.assert(
      fc.property(fc.array(fc.oneof(value, edge), { maxLength: 80, size: '+1' }), fc.nat(3), (xs, pad) => {
        const X = new Float64Array(xs.length + 2 * pad).fill(7);
        X.set(xs, pad);
        const got = sumRange(X, pad, pad + xs.length, scan);
        scan.reset();
        for (const x of xs) scan.add(x);
        // Always ExactScan's answer (where partial sums pass the largest double, its overflow too)...
        expect(Object.is(got, scan.sum())).toBe(true);
        // ... which is the correctly rounded exact sum while no partial sum can overflow.
        if (xs.every((x) => Math.abs(x) <= 1e300)) expect(Object.is(got, rounded(xs.reduce((s, x) => s + scaled(x), 0n)) + 0)).toBe(true);
      }),
      { numRuns: 5000 },
    );
    // Ties and near-ties decided exactly (the compensated sum alone would round these wrongly or could not tell).
    const cases: number[][] = [[1, 2 ** -53], [1, 2 ** -53, 2 ** -106], [1, 2 ** -53, -(2 ** -106)], [1e16, 1, -1e16], [2 ** 53, 1, 1], [0.1, 0.2, -0.3], [-0, -0],
      // just past, just short of, half the (halved) gap below a power of two
      [1, -(2 ** -54), -(2 ** -80)], [1, -(2 ** -54), 2 ** -80], [-1, 2 ** -54, 2 ** -80], [-1, 2 ** -54, -(2 ** -80)], [2, -(2 ** -53), -(2 ** -79)], [1, -(2 ** -55), -(2 ** -56), -(2 ** -80)]];
    for (const xs of cases) {
      expect(Object.is(sumRange(Float64Array.from(xs), 0, xs.length, scan), rounded(xs.reduce((s, x) => s + scaled(x), 0n)) + 0)).toBe(true);
    }
  });

  it('a scan keeps more partials than its first 64 when it must (ascending powers of two: about one partial per value)', () => {
    const scan = new ExactScan();
    const p: number[] = [];
    const xs = Array.from({ length: 120 }, (_, i) => 2 ** (i * 8 - 480));
    for (const x of xs) {
      scan.add(x);
      padd(p, x);
    }
    expect(p.length).toBeGreaterThan(64);
    expect(scan.sum()).toBe(psum(p));
    expect(scan.sum()).toBe(rounded(xs.reduce((s, x) => s + scaled(x), 0n)));
  });
});
