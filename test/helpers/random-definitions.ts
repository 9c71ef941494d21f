/**
 * Random feature definitions over a random event schema, and random events with edge values
 * (nulls, unknown categories, NaN/±∞, -0, huge/tiny numbers, non-ASCII strings, instants at DST
 * transitions): the parity test (test/unit/declarative-parity.test.ts) and the features
 * microbenchmark (bench/src/features.ts) use them.
 */
import type { Expr, FeatureDefinitions, FeatureSpec } from '../../src/features/declarative/spec';

/** mulberry32: a seeded PRNG in [0, 1). */
export function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t = (t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const SCHEMA = {
  type: 'record', name: 'RandomEvent', namespace: 'test.parity',
  fields: [
    { name: 'x', type: 'double' },
    { name: 'y', type: ['null', 'double'], default: null },
    { name: 'n', type: 'long' },
    { name: 'f', type: 'float' },
    { name: 'flag', type: ['null', 'boolean'], default: null },
    { name: 's', type: 'string' },
    { name: 'e', type: { type: 'enum', name: 'Colour', symbols: ['red', 'green', 'blue'] } },
    { name: 'ts', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'inner', type: ['null', { type: 'record', name: 'Inner', fields: [{ name: 'code', type: ['null', 'string'], default: null }, { name: 'v', type: 'double' }] }], default: null },
  ],
};
export const VOCAB = ['a', 'b', 'c', 'é', '日本', '😀', 'yes', 'null', 'NO', '1e3', ''];
export const ZONES = ['UTC', 'Europe/Paris', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata', 'America/St_Johns', 'Pacific/Chatham'];
/** Instants around DST transitions (and other edges) in the zones above. */
export const TIMES = [
  Date.UTC(2025, 2, 30, 0, 59, 59, 999), Date.UTC(2025, 2, 30, 1), Date.UTC(2025, 9, 26, 0, 59, 59, 999), Date.UTC(2025, 9, 26, 1), // Paris
  Date.UTC(2025, 2, 9, 6, 59, 59, 999), Date.UTC(2025, 2, 9, 7), Date.UTC(2025, 10, 2, 5, 59, 59, 999), Date.UTC(2025, 10, 2, 6), // New York
  Date.UTC(2025, 3, 5, 14, 59, 59, 999), Date.UTC(2025, 3, 5, 15), Date.UTC(2025, 9, 4, 15, 29, 59, 999), Date.UTC(2025, 9, 4, 15, 30), // Lord Howe (30 min DST)
  0, -1, 86_399_999, -62135596800000, 253402300799999, 253402300800000, Date.UTC(1900, 0, 1), Date.UTC(1850, 6, 1), Date.UTC(2100, 5, 1, 12),
];
const NUMS = [0, -0, 1, -1, 0.5, 2.5, -2.5, 1e-300, 5e-324, 1e300, -1e300, 3.141592653589793, 42, 1e21, NaN, Infinity, -Infinity, 0.1, 7, -7];

export function randomEvent(r: () => number): Record<string, unknown> {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  const num = () => (r() < 0.5 ? pick(NUMS) : (r() - 0.5) * 10 ** Math.floor(r() * 12 - 4));
  return {
    x: num(),
    y: r() < 0.3 ? null : num(),
    n: Math.floor((r() - 0.5) * 2 ** 40),
    f: Math.fround(num()),
    flag: r() < 0.3 ? null : r() < 0.5,
    s: r() < 0.8 ? pick(VOCAB) : `z${Math.floor(r() * 1000)}`,
    e: pick(['red', 'green', 'blue']),
    ts: r() < 0.5 ? pick(TIMES) + Math.floor((r() - 0.5) * 4) * 900_000 : Math.floor((r() - 0.3) * 4e12),
    inner: r() < 0.3 ? null : { code: r() < 0.3 ? null : pick(VOCAB), v: num() },
  };
}

export function randomDefinitions(r: () => number, k: number): FeatureDefinitions {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  const scalars: string[] = [];
  const lit = () => pick([0, 1, 2, -3, 0.5, 1e-3, 100, 1e300, 2.5, -0.25]);
  const numE = (d: number): Expr => {
    if (d <= 0 || r() < 0.2) return pick<() => Expr>([lit, () => pick(['x', 'y', 'n', 'f', 'inner.v', 'ts']), () => (scalars.length ? { feature: pick(scalars) } : 'x'), () => ({ field: 'y', default: lit() })])();
    switch (Math.floor(r() * 17)) {
      case 0: return { add: [numE(d - 1), numE(d - 1), ...(r() < 0.3 ? [numE(d - 1)] : [])] };
      case 1: return { sub: [numE(d - 1), numE(d - 1)] };
      case 2: return { mul: [numE(d - 1), numE(d - 1)] };
      case 3: return { div: [numE(d - 1), numE(d - 1)] };
      case 4: return { mod: [numE(d - 1), numE(d - 1)] };
      case 5: return { [pick(['min', 'max'])]: [numE(d - 1), numE(d - 1)] };
      case 6: return { [pick(['neg', 'abs', 'floor', 'ceil', 'sqrt'])]: numE(d - 1) };
      case 7: return { clip: numE(d - 1), lower: -1, upper: pick([1, 10, 1e6]) };
      case 8: return { bucketize: numE(d - 1), edges: [-1, 0, 0.5, 1, 10, 1e6] };
      case 9: return { hash: strE(d - 1), buckets: pick([1, 7, 1024, 2 ** 31]), seed: pick([0, 42, 0xffffffff]) };
      case 10: return { [pick(['hour', 'dayOfWeek'])]: pick(['ts', 'n', 'x']), timeZone: pick(ZONES) };
      case 11: return { lookup: 'weights', key: strE(d - 1) };
      case 12: return { ordinal: strE(d - 1), vocabulary: VOCAB.slice(0, 5), unknown: pick([-1, 99]) };
      case 13: return { if: boolE(d - 1), then: numE(d - 1), else: r() < 0.3 ? boolE(d - 1) : numE(d - 1) };
      case 14: return { coalesce: [numE(d - 1), numE(d - 1)] };
      case 15: return { if: boolE(d - 1), then: null, else: numE(d - 1) };
      default: return boolE(d - 1);
    }
  };
  const strE = (d: number): Expr => {
    if (d <= 0 || r() < 0.4) return pick<Expr>(['s', 'e', 'inner.code', { str: pick(VOCAB) }, { field: 'inner.code', default: 'b' }]);
    return pick<() => Expr>([() => ({ lookup: 'names', key: strE(d - 1) }), () => ({ if: boolE(d - 1), then: strE(d - 1), else: strE(d - 1) }), () => ({ coalesce: [strE(d - 1), strE(d - 1)] })])();
  };
  const boolE = (d: number): Expr => {
    if (d <= 0 || r() < 0.2) return pick<Expr>(['flag', true, false, { field: 'flag', default: true }]);
    switch (Math.floor(r() * 7)) {
      case 0: return { [pick(['eq', 'ne', 'lt', 'le', 'gt', 'ge'])]: [numE(d - 1), numE(d - 1)] };
      case 1: return { [pick(['eq', 'ne'])]: [strE(d - 1), r() < 0.2 ? null : strE(d - 1)] };
      case 2: return { [pick(['and', 'or'])]: [boolE(d - 1), boolE(d - 1)] };
      case 3: return { not: boolE(d - 1) };
      case 4: return r() < 0.5 ? { in: strE(d - 1), values: VOCAB.slice(2, 7) } : { in: { add: [numE(d - 1), 0] }, values: [0, 1, 7, -7] };
      case 5: return { isNull: r() < 0.5 ? 'y' : strE(d - 1) };
      default: return { isFinite: numE(d - 1) };
    }
  };
  const features: FeatureSpec[] = [];
  const n = 4 + Math.floor(r() * 6);
  for (let i = 0; i < n; i++) {
    if (i === 2) {
      const bucket = r() < 0.5;
      // Vocabulary values that are not identifiers need explicit column names.
      features.push(r() < 0.5
        ? { name: `oh${i}`, oneHot: { of: strE(2), vocabulary: ['a', 'b', 'c', 'é', '😀'], unknown: bucket ? 'bucket' : 'ignore', names: ['va', 'vb', 'vc', 've', 'vs', ...(bucket ? ['vunk'] : [])] } }
        : { name: `oh${i}`, oneHot: { of: strE(2), vocabulary: ['a', 'b', 'c'], unknown: bucket ? 'bucket' : 'ignore' } });
      continue;
    }
    const name = `f${i}`;
    // libm functions (≤ 1 ulp apart between runtimes) only outermost: composed further, one ulp can grow (SEMANTICS.md).
    if (r() < 0.25) {
      features.push({ name, expr: { [pick(['log1p', 'log', 'exp'])]: numE(3) } });
      continue;
    }
    features.push({ name, expr: r() < 0.2 ? boolE(3) : numE(4), ...(r() < 0.5 ? { default: pick([0, -1, 0.5]) } : {}) });
    scalars.push(name);
  }
  return {
    featureSet: `random_${k}`, version: 1, timeZone: pick(ZONES),
    tables: {
      weights: { values: { a: 1.5, b: -2, é: 1e-9, '😀': 3 }, ...(r() < 0.5 ? { default: 0.25 } : {}) },
      names: { values: { a: 'b', b: '日本', c: 'zz' }, ...(r() < 0.5 ? { default: 'a' } : {}) },
    },
    features,
  };
}

