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
import { TransactionGenerator } from '../../examples/fraud/generator';
import { loadFeatureDefinitions, type DeclarativeFeatureSet } from '../../src/features/declarative/load';
import type { FeatureDefinitions } from '../../src/features/declarative/spec';
import { SchemaCatalog, packageSchemasDir } from '../../src/kafka/avro-schemas';
import { ensurePythonEnv } from '../../src/stack/python-env';
import { FRAUD_TXN_FILE } from '../helpers/fraud-features';
import { randomDefinitions, randomEvent, rng, SCHEMA, TIMES, ZONES } from '../helpers/random-definitions';
import { FRAUD_SCHEMAS_DIR, transactionSchema } from '../../examples/fraud/schemas';

jest.setTimeout(600_000);

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
    const txSchema = transactionSchema().file;
    cases.push({ label: 'fraud_txn', set: loadFeatureDefinitions(FRAUD_TXN_FILE, { schemaSources: [FRAUD_SCHEMAS_DIR] }), events: fraudEvents, definitionsFile: FRAUD_TXN_FILE, schemaFile: txSchema });

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

  it('the fraud input schema is the example\'s, not the package\'s (definitions name it with input:)', () => {
    const set = loadFeatureDefinitions(FRAUD_TXN_FILE, { schemaSources: [FRAUD_SCHEMAS_DIR] });
    expect(set.definitions.input).toBe('transaction');
    expect(new SchemaCatalog(FRAUD_SCHEMAS_DIR, []).has('transaction')).toBe(true);
    expect(new SchemaCatalog(packageSchemasDir(), []).has('transaction')).toBe(false);
    // Without the example's folder the name is unknown, and the error says where it looked.
    expect(() => loadFeatureDefinitions(FRAUD_TXN_FILE)).toThrow(/input: no schema 'transaction' \(no transaction\.avsc in .*schemas/);
  });
});
