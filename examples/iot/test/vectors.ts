/**
 * Vector comparison with the tolerance the declarative-features semantics pin: identical bits,
 * except ≤ 1 ulp for non-integer values (libm log1p/log/exp may differ by one ulp between Node and
 * Python; a streaming max over such a value inherits it).
 */
export function ulps(a: number, b: number): number {
  if (Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b))) return 0;
  if (!Number.isFinite(a) || !Number.isFinite(b) || Math.sign(a) !== Math.sign(b)) return Infinity;
  const buf = Buffer.alloc(16);
  buf.writeDoubleLE(a, 0);
  buf.writeDoubleLE(b, 8);
  const d = buf.readBigInt64LE(0) - buf.readBigInt64LE(8);
  return Number(d < 0n ? -d : d);
}

/** Positions where `got` and `want` differ beyond the pinned tolerance ("name: got vs want"). */
export function vectorDifferences(got: readonly number[], want: readonly number[], names: readonly string[] = []): string[] {
  const out: string[] = [];
  if (got.length !== want.length) return [`length ${got.length} vs ${want.length}`];
  got.forEach((g, j) => {
    const d = ulps(g, want[j]);
    if (d === 0 || (d === 1 && !Number.isInteger(g) && !Number.isInteger(want[j]))) return;
    out.push(`${names[j] ?? j}: ${g} vs ${want[j]}`);
  });
  return out;
}
