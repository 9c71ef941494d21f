/**
 * Golden parity: the TypeScript compiler (src/features/declarative) and the Python package
 * (python/tributary_features) recompute the same vectors from the same raw events, here and now
 * (no stored file): fraud_txn over 10,000 generated transactions (+ edge cases), randomly generated
 * definitions over random events with edge values (nulls, unknown categories, NaN/±∞, -0, huge and
 * tiny numbers, non-ASCII strings), and time parts across DST transitions in several zones.
 * Identical bits are required, except ≤ 1 ulp for non-integer values (libm log/exp/log1p).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as avro from 'avsc';
import { stringify } from 'yaml';
import { TransactionGenerator } from '../../src/demo/generator';
import { loadFeatureDefinitions, type DeclarativeFeatureSet } from '../../src/features/declarative/load';
import type { Expr, FeatureDefinitions, FeatureSpec } from '../../src/features/declarative/spec';
import { SchemaCatalog } from '../../src/kafka/avro-schemas';
import { ensurePythonEnv } from '../../src/stack/python-env';
import { repoRoot } from '../../src/stack/paths';
import { FRAUD_TXN_FILE } from '../helpers/fraud-features';

jest.setTimeout(600_000);

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t = (t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** JSON with the numbers JSON cannot write (NaN, ±∞, -0) as {"$num": ...}. */
function encodeEvents(events: unknown[]): string {
  return JSON.stringify(events, (_k, v) => {
    if (typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0))) return { $num: Object.is(v, -0) ? '-0' : String(v) };
    return v;
  });
}

const bits = (x: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return b.readBigInt64LE();
};
/** Distance in ulps between two finite doubles of the same sign; Infinity otherwise. */
function ulps(a: number, b: number): number {
  if (Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b))) return 0;
  if (!Number.isFinite(a) || !Number.isFinite(b) || Math.sign(a) !== Math.sign(b)) return Infinity;
  const d = bits(a) - bits(b);
  return Number(d < 0n ? -d : d);
}

const smallInteger = (x: number) => Number.isInteger(x) && Math.abs(x) < 2 ** 53;

// ---- random schema, events and definitions ------------------------------------------------------
const SCHEMA = {
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
const VOCAB = ['a', 'b', 'c', 'é', '日本', '😀', 'yes', 'null', 'NO', '1e3', ''];
const ZONES = ['UTC', 'Europe/Paris', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata', 'America/St_Johns', 'Pacific/Chatham'];
/** Instants around DST transitions (and other edges) in the zones above. */
const TIMES = [
  Date.UTC(2025, 2, 30, 0, 59, 59, 999), Date.UTC(2025, 2, 30, 1), Date.UTC(2025, 9, 26, 0, 59, 59, 999), Date.UTC(2025, 9, 26, 1), // Paris
  Date.UTC(2025, 2, 9, 6, 59, 59, 999), Date.UTC(2025, 2, 9, 7), Date.UTC(2025, 10, 2, 5, 59, 59, 999), Date.UTC(2025, 10, 2, 6), // New York
  Date.UTC(2025, 3, 5, 14, 59, 59, 999), Date.UTC(2025, 3, 5, 15), Date.UTC(2025, 9, 4, 15, 29, 59, 999), Date.UTC(2025, 9, 4, 15, 30), // Lord Howe (30 min DST)
  0, -1, 86_399_999, -62135596800000, 253402300799999, 253402300800000, Date.UTC(1900, 0, 1), Date.UTC(1850, 6, 1), Date.UTC(2100, 5, 1, 12),
];
const NUMS = [0, -0, 1, -1, 0.5, 2.5, -2.5, 1e-300, 5e-324, 1e300, -1e300, 3.141592653589793, 42, 1e21, NaN, Infinity, -Infinity, 0.1, 7, -7];

function randomEvent(r: () => number): Record<string, unknown> {
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

function randomDefinitions(r: () => number, k: number): FeatureDefinitions {
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

interface Case {
  label: string;
  set: DeclarativeFeatureSet;
  events: unknown[];
  definitionsFile: string;
  schemaFile: string;
}

describe('TypeScript ⇄ Python parity of declarative features (computed in this run)', () => {
  let dir: string;
  let py: { python: string; pythonPath: string };
  const cases: Case[] = [];

  beforeAll(() => {
    py = ensurePythonEnv();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-parity-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('recomputes every vector identically (fraud_txn: 10,000 events; 40 random definitions × 250 random events; DST edges)', () => {
    // fraud_txn over generated transactions plus edge values.
    const fraudEvents: Record<string, unknown>[] = new TransactionGenerator({ seed: 2026 }).take(10_000).map((g) => ({ ...g.tx }));
    const base = fraudEvents[0];
    for (const amount of [NaN, Infinity, -Infinity, -0, 0, -1, 1e308]) fraudEvents.push({ ...base, amount });
    for (const c of ['', 'pets', 'usd', 'é']) fraudEvents.push({ ...base, merchantCategory: c, currency: c, country: c });
    for (const eventTime of TIMES) fraudEvents.push({ ...base, eventTime });
    const txSchema = path.join(repoRoot(), 'schemas/transaction.avsc');
    cases.push({ label: 'fraud_txn', set: loadFeatureDefinitions(FRAUD_TXN_FILE), events: fraudEvents, definitionsFile: FRAUD_TXN_FILE, schemaFile: txSchema });

    const type = avro.Type.forSchema(SCHEMA as avro.Schema);
    const schemaFile = path.join(dir, 'random.avsc');
    fs.writeFileSync(schemaFile, JSON.stringify(SCHEMA));
    const r = rng(Number(process.env.TRIBUTARY_PARITY_SEED ?? 14)); // other seeds: TRIBUTARY_PARITY_SEED=N
    for (let k = 0; k < 40; k++) {
      const defs = randomDefinitions(r, k);
      const file = path.join(dir, `random-${k}.yaml`);
      fs.writeFileSync(file, stringify(defs));
      const events = Array.from({ length: 250 }, () => randomEvent(r));
      cases.push({ label: `random_${k}`, set: loadFeatureDefinitions(file, { schema: type }), events, definitionsFile: file, schemaFile });
    }
    // Time parts in every zone across its transitions, minute by minute.
    const dst: FeatureDefinitions = { featureSet: 'dst', version: 1, features: ZONES.flatMap((z, i) => [{ name: `h${i}`, expr: { hour: 'ts', timeZone: z } }, { name: `d${i}`, expr: { dayOfWeek: 'ts', timeZone: z } }]) };
    const dstFile = path.join(dir, 'dst.yaml');
    fs.writeFileSync(dstFile, stringify(dst));
    const dstEvents = TIMES.flatMap((t) => Array.from({ length: 121 }, (_, m) => ({ ...randomEvent(r), ts: t + (m - 60) * 60_000 + (m % 7) })));
    cases.push({ label: 'dst', set: loadFeatureDefinitions(dstFile, { schema: type }), events: dstEvents, definitionsFile: dstFile, schemaFile });

    const manifest = {
      cases: cases.map((c, i) => {
        fs.writeFileSync(path.join(dir, `events-${i}.json`), encodeEvents(c.events));
        return { definitions: path.relative(dir, c.definitionsFile), schema: path.relative(dir, c.schemaFile), events: `events-${i}.json`, out: `out-${i}.bin` };
      }),
    };
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
    execFileSync(py.python, ['-m', 'tributary_features.parity', dir], { env: { ...process.env, PYTHONPATH: py.pythonPath }, stdio: 'pipe' });
    const result = JSON.parse(fs.readFileSync(path.join(dir, 'result.json'), 'utf8')) as { tzdb: string; cases: Array<{ hash: string; names: string[]; rows: number }> };

    // The two time-zone databases are the same IANA release (python/requirements.txt pins tzdata).
    expect(result.tzdb).toBe(process.versions.tz);
    let compared = 0;
    let oneUlp = 0;
    const problems: string[] = [];
    cases.forEach((c, i) => {
      expect(result.cases[i].hash).toBe(c.set.hash);
      expect(result.cases[i].names).toEqual([...c.set.names]);
      const buf = fs.readFileSync(path.join(dir, `out-${i}.bin`));
      const py64 = new Float64Array(buf.buffer, buf.byteOffset, buf.length / 8);
      const w = c.set.size;
      expect(py64.length).toBe(c.events.length * w);
      c.events.forEach((ev, row) => {
        const ts = c.set.extract(ev);
        for (let j = 0; j < w; j++) {
          const a = ts[j];
          const b = py64[row * w + j];
          compared++;
          const d = ulps(a, b);
          if (d === 0) continue;
          // Integers (counts, buckets, one-hots, hours) must be exact; doubles from 2^53 on are all integers, so only small ones count.
          if (d === 1 && !smallInteger(a) && !smallInteger(b)) {
            oneUlp++;
            continue;
          }
          if (problems.length < 4) problems.push(`${c.label} row ${row} ${c.set.names[j]}: ts ${a} py ${b} event ${encodeEvents([ev])} def ${JSON.stringify(c.set.definitions.features.find((f) => f.name === c.set.names[j]))}`);
        }
      });
    });
    expect(problems).toEqual([]);
    expect(compared).toBeGreaterThan(150_000);
    // Most of the random definitions' columns are exactly equal; the 1-ulp cases come from libm log/exp.
    expect(oneUlp).toBeLessThan(compared / 100);
    process.stdout.write(`parity: ${compared} values compared, ${oneUlp} one ulp apart (libm), tzdb ${result.tzdb}\n`);
  });

  it('the fraud input schema is the topology\'s (definitions name it with input:)', () => {
    const set = loadFeatureDefinitions(FRAUD_TXN_FILE);
    expect(set.definitions.input).toBe('transaction');
    expect(new SchemaCatalog(path.join(repoRoot(), 'schemas')).has('transaction')).toBe(true);
  });
});
