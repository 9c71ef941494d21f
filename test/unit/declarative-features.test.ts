/**
 * Declarative features in TypeScript: validation against the input schema (paths of the bad node
 * and the field), pinned semantics (SEMANTICS.md), generated code that never contains user text,
 * the extraction stage over a schema that is not a transaction, and the model card's hash pin.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as avro from 'avsc';
import { stringify } from 'yaml';
import { cardProblems } from '../../src/features/enricher';
import { fieldPaths } from '../../src/features/validate';
import { buildFeatureSet, FeatureDefinitionsError, loadFeatureDefinitions, parseDefinitions } from '../../src/features/declarative/load';
import type { FeatureDefinitions } from '../../src/features/declarative/spec';
import { featureExtraction, type ExtractionConfig } from '../../src/stages/extraction';
import { repoRoot } from '../../src/stack/paths';
import { validateTopology } from '../../src/stages/load-topology';
import { createLogger } from '../../src/util/logger';
import { ConfigErrors } from '../../src/util/errors';
import { topologyErrorFor } from '../helpers/topology-errors';
import { randomDefinitions, randomEvent, rng, SCHEMA as RANDOM_SCHEMA } from '../helpers/random-definitions';

const CLICK = {
  type: 'record', name: 'Click', namespace: 'test.clicks',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'price', type: ['null', 'double'], default: null },
    { name: 'page', type: { type: 'enum', name: 'Page', symbols: ['home', 'search', 'item'] } },
    { name: 'mobile', type: 'boolean' },
    { name: 'user', type: ['null', { type: 'record', name: 'User', fields: [{ name: 'country', type: ['null', 'string'], default: null }, { name: 'age', type: 'int' }, { name: 'tags', type: { type: 'array', items: 'string' } }] }], default: null },
  ],
};
const type = avro.Type.forSchema(CLICK as avro.Schema);
const defs = (features: FeatureDefinitions['features'], extra: Partial<FeatureDefinitions> = {}): FeatureDefinitions => ({ featureSet: 'clicks', version: 1, features, ...extra });
const build = (d: FeatureDefinitions) => buildFeatureSet(d, type, 'test.yaml', '0'.repeat(16));
const problemsOf = (d: FeatureDefinitions): string[] => {
  try {
    build(d);
  } catch (err) {
    if (err instanceof FeatureDefinitionsError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
  throw new Error('expected the definitions to be rejected');
};
const click = (over: Record<string, unknown> = {}) => ({ id: 'c1', at: Date.UTC(2025, 2, 30, 0, 30), price: 10, page: 'item', mobile: true, user: { country: 'FR', age: 30, tags: [] }, ...over });

describe('validation against the input schema', () => {
  it('names the definition path and the field path of a missing field', () => {
    expect(problemsOf(defs([{ name: 'a', expr: { mul: ['price', 'user.cuntry'] } }]))).toEqual([
      "features[0].expr.mul[1]: event has no field 'user.cuntry' (fields of user: country, age, tags)",
    ]);
  });

  it('rejects type mismatches, with the path', () => {
    expect(problemsOf(defs([{ name: 'a', expr: { add: ['price', 'page'] } }]))).toEqual(["features[0].expr.add[1]: is a string; 'add' needs a number"]);
    expect(problemsOf(defs([{ name: 'a', expr: { hash: 'price', buckets: 8 } }]))[0]).toMatch(/^features\[0\]\.expr\.hash: is a number; 'hash' needs a string/);
    expect(problemsOf(defs([{ name: 'a', expr: 'user.tags' }]))[0]).toBe("features[0].expr: field 'user.tags' is array; features read numbers, booleans, strings and enums");
    expect(problemsOf(defs([{ name: 'a', expr: { lt: ['page', { str: 'x' }] } }]))[0]).toMatch(/features\[0\]\.expr\.lt\[0\]: strings are compared with eq\/ne\/in only/);
    expect(problemsOf(defs([{ name: 'a', expr: { eq: ['page', 1] } }]))[0]).toBe('features[0].expr.eq: compares a string with a number');
    expect(problemsOf(defs([{ name: 'a', expr: 'page' }]))[0]).toMatch(/features\[0\]\.expr: is a string; a feature is a number/);
  });

  it('rejects unknown operators, options, tables, zones, forward references and duplicate names', () => {
    expect(problemsOf(defs([{ name: 'a', expr: { pow: [1, 2] } }]))[0]).toMatch(/^features\[0\]\.expr: no operator/);
    expect(problemsOf(defs([{ name: 'a', expr: { clip: 'price', lower: 0, top: 1 } }]))[0]).toBe("features[0].expr.top: is not an option of 'clip' (options: lower, upper)");
    expect(problemsOf(defs([{ name: 'a', expr: { clip: 'price', lower: 0, max: 1 } }]))[0]).toBe('features[0].expr: more than one operator: clip, max');
    expect(problemsOf(defs([{ name: 'a', expr: { lookup: 'nope', key: 'page' } }]))[0]).toMatch(/features\[0\]\.expr\.lookup: no table 'nope'/);
    expect(problemsOf(defs([{ name: 'a', expr: { hour: 'at', timeZone: 'Mars/Olympus' } }]))[0]).toMatch(/features\[0\]\.expr\.timeZone: unknown time zone 'Mars\/Olympus'/);
    expect(problemsOf(defs([{ name: 'a', expr: { feature: 'b' } }, { name: 'b', expr: 1 }]))[0]).toMatch(/features\[0\]\.expr\.feature: no earlier feature 'b'/);
    expect(problemsOf(defs([{ name: 'a', expr: 1 }, { name: 'a', expr: 2 }]))[0]).toMatch(/duplicate feature name 'a'/);
    expect(problemsOf(defs([{ name: 'a', expr: { bucketize: 'price', edges: [1, 1] } }]))[0]).toBe('features[0].expr.edges: must be strictly increasing');
    expect(problemsOf(defs([{ name: 'p', oneHot: { of: 'page', vocabulary: ['a b'] } }]))[0]).toMatch(/column name 'p_a b' is not a feature name/);
  });

  it('checks the file structure with paths (JSON Schema)', () => {
    expect(() => parseDefinitions('featureSet: x\nversion: 0\nfeatures: []\n', 'f.yaml')).toThrow(/f\.yaml: version: must be >= 1; features: must NOT have fewer than 1 items/);
    expect(() => parseDefinitions('featureSet: x\nversion: 1\nfeatures: [{ name: a, expr: 1, oneHot: { of: b, vocabulary: [x] } }]\n', 'f.yaml')).toThrow(/features\[0\]: a feature has either expr/);
  });

  it('a topology whose definitions name a missing field fails to load with the stage path, the file and the field', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'defs-'));
    const bad = path.join(dir, 'bad.yaml');
    const text = fs.readFileSync(path.join(repoRoot(), 'models/fraud/features/fraud_txn.yaml'), 'utf8').replace('mul: [amount,', 'mul: [amout,');
    fs.writeFileSync(bad, text);
    const msg = topologyErrorFor((d) => (d.stages[0].config.featureSet = { file: bad }));
    expect(msg).toContain(`stages[0].config.featureSet.file: ${bad}: features[0].expr.mul[0]: event has no field 'amout'`);
  });
});

describe('pinned semantics (SEMANTICS.md)', () => {
  it('null propagates to the feature default; -0 is written +0; booleans are 0/1', () => {
    const fs1 = build(defs([
      { name: 'p', expr: { mul: ['price', -1] }, default: -7 },
      { name: 'z', expr: { mul: [0, -1] } },
      { name: 'm', expr: 'mobile' },
      { name: 'c', expr: { eq: ['user.country', { str: 'FR' }] } },
      { name: 'n', expr: { isNull: 'user.country' } },
      { name: 'd', expr: { coalesce: ['price', { field: 'user.age' }] } },
    ]));
    expect(fs1.extract(click())).toEqual([-10, 0, 1, 1, 0, 10]);
    expect(Object.is(fs1.extract(click())[1], 0)).toBe(true);
    expect(fs1.extract(click({ price: null, user: null }))).toEqual([-7, 0, 1, 0, 1, 0]);
  });

  it('bucketize counts the edges <= x (left-closed buckets), NaN -> default; clip; floored mod', () => {
    const f = build(defs([
      { name: 'b', expr: { bucketize: 'price', edges: [0, 10, 100] }, default: -1 },
      { name: 'c', expr: { clip: 'price', lower: 0, upper: 50 } },
      { name: 'm', expr: { mod: ['price', 3] } },
    ]));
    expect(f.extract(click({ price: 10 }))).toEqual([2, 10, 1]);
    expect(f.extract(click({ price: 9.999 }))[0]).toBe(1);
    expect(f.extract(click({ price: -0.5 }))).toEqual([0, 0, 2.5]);
    expect(f.extract(click({ price: 1e9 }))).toEqual([3, 50, 1e9 % 3]);
    expect(f.extract(click({ price: NaN })).map(String)).toEqual(['-1', 'NaN', 'NaN']);
    expect(f.extract(click({ price: Infinity }))).toEqual([3, 50, NaN]);
  });

  it('hashes UTF-8 bytes with murmur3 x86 32', () => {
    const f = build(defs([{ name: 'h', expr: { hash: { str: 'hello' }, buckets: 2 ** 31 } }, { name: 'u', expr: { hash: 'user.country', buckets: 16, seed: 7 } }]));
    expect(f.extract(click())[0]).toBe(0x248bfa47 % 2 ** 31); // murmur3_32("hello", 0)
    expect(f.extract(click({ user: null }))[1]).toBe(0);
  });

  it('time parts in a declared zone across a DST change (Europe/Paris, 2025-03-30 01:00Z)', () => {
    const f = build(defs([{ name: 'h', expr: { hour: 'at' } }, { name: 'd', expr: { dayOfWeek: 'at' } }, { name: 'u', expr: { hour: 'at', timeZone: 'UTC' } }], { timeZone: 'Europe/Paris' }));
    expect(f.extract(click({ at: Date.UTC(2025, 2, 30, 0, 59, 59, 999) }))).toEqual([1, 6, 0]); // 01:59:59 CET, Sunday
    expect(f.extract(click({ at: Date.UTC(2025, 2, 30, 1) }))).toEqual([3, 6, 1]); // 03:00 CEST
    expect(f.extract(click({ at: Date.UTC(2025, 2, 30, 22) }))).toEqual([0, 0, 22]); // Monday 00:00 CEST
    expect(f.extract(click({ at: -1 }))).toEqual([0, 3, 23]); // 1970-01-01 00:59:59 CET, Thursday
  });

  it('one-hot with an unknown bucket, ordinal, lookup, in, if', () => {
    const f = build(defs([
      { name: 'pg', oneHot: { of: 'page', vocabulary: ['home', 'item'], unknown: 'bucket' } },
      { name: 'o', expr: { ordinal: 'user.country', vocabulary: ['DE', 'FR'], unknown: 9 } },
      { name: 'l', expr: { lookup: 'rate', key: 'user.country' }, default: -1 },
      { name: 'i', expr: { in: 'page', values: ['home', 'search'] } },
      { name: 'x', expr: { if: { and: ['mobile', { gt: [{ feature: 'pg_item' }, 0] }] }, then: 2, else: { feature: 'o' } } },
    ], { tables: { rate: { values: { FR: 0.5 } } } }));
    expect(f.names).toEqual(['pg_home', 'pg_item', 'pg__unknown', 'o', 'l', 'i', 'x']);
    expect(f.extract(click())).toEqual([0, 1, 0, 1, 0.5, 0, 2]);
    expect(f.extract(click({ page: 'search', user: { country: 'US', age: 1, tags: [] } }))).toEqual([0, 0, 1, 9, -1, 1, 9]);
  });

  it('generated code holds no text from the definitions (strings are data)', () => {
    const evil = '"); process.exit(1); ("';
    const f = build(defs([{ name: 'e', expr: { eq: ['user.country', { str: evil }] } }, { name: 'v', oneHot: { of: 'page', vocabulary: [evil], names: ['v0'] } }], { tables: { t: { values: { [evil]: 1 } } } }));
    expect(f.source).not.toContain('process');
    expect(f.extract(click({ user: { country: evil, age: 1, tags: [] } }))).toEqual([1, 0]);
  });
});

describe('one field-path syntax for streaming and batch sets too', () => {
  it('lists nested paths (through nullable unions) as event fields a set may key or aggregate on', () => {
    expect(fieldPaths(type)).toEqual(['id', 'at', 'price', 'page', 'mobile', 'user', 'user.country', 'user.age', 'user.tags']);
  });
});

describe('the README example', () => {
  it('validates and computes against a click schema', () => {
    const readme = fs.readFileSync(path.join(repoRoot(), 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Declarative features'));
    const yamlText = /```yaml\n([\s\S]*?)```/.exec(section)![1];
    const userType = { type: 'record', name: 'U', fields: [{ name: 'id', type: 'string' }, { name: 'country', type: ['null', 'string'], default: null }] };
    const schema = avro.Type.forSchema({ ...CLICK, name: 'ReadmeClick', fields: [...CLICK.fields.filter((f) => f.name !== 'user'), { name: 'user', type: ['null', userType], default: null }] } as avro.Schema);
    const set = buildFeatureSet(parseDefinitions(yamlText, 'README.md'), schema, 'README.md', '0'.repeat(16));
    expect(set.names).toEqual(['log_price', 'price_bucket', 'evening', 'risk', 'user_bucket', 'page_home', 'page_search', 'page__unknown']);
    const v = set.extract(click({ page: 'item', price: 10, at: Date.UTC(2025, 5, 1, 17), user: { id: 'u1', country: 'NG' } }));
    expect(v.slice(0, 4)).toEqual([Math.log1p(10), 2, 1, 0.9]); // 19:00 in Paris (CEST)
    expect(v.slice(5)).toEqual([0, 0, 1]);
  });
});

describe('extraction stage over any Avro schema', () => {
  it('builds vectors of a click schema, records the definitions version and hash, no Transaction anywhere', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'clicks-'));
    fs.mkdirSync(path.join(base, 'schemas'));
    for (const s of ['feature-vector', 'dead-letter']) fs.copyFileSync(path.join(repoRoot(), 'schemas', `${s}.avsc`), path.join(base, 'schemas', `${s}.avsc`));
    fs.writeFileSync(path.join(base, 'schemas', 'click.avsc'), JSON.stringify(CLICK));
    fs.writeFileSync(path.join(base, 'clicks.yaml'), stringify(defs([{ name: 'price', expr: { log1p: { clip: 'price', lower: 0 } } }, { name: 'pg', oneHot: { of: 'page', vocabulary: ['home', 'item'] } }], { input: 'click', eventTime: 'at', key: 'id' })));
    const raw = {
      name: 'clicks',
      topics: [{ name: 'clicks', partitions: 1, schema: 'click' }, { name: 'click.features', partitions: 1, schema: 'feature-vector' }, { name: 'dlq', partitions: 1, schema: 'dead-letter' }],
      deadLetter: { topic: 'dlq' },
      stages: [{ name: 'extract', processor: 'feature_extraction', input: { topic: 'clicks' }, output: { topic: 'click.features' }, config: { featureSet: { file: 'clicks.yaml' } } }],
    };
    const topology = validateTopology(raw, path.join(base, 'clicks.topology.yaml'), { baseDir: base });
    const config = topology.spec.stages[0].config as unknown as ExtractionConfig;
    const p = await featureExtraction.create(config, { topology, stage: topology.spec.stages[0], logger: createLogger('test') });
    const lineage = { topic: 'clicks', partition: 0, offset: 5 };
    const [out] = await p.processBatch([{ value: click(), key: null, timestamp: 1, lineage }]);
    await p.close();
    const hash = loadFeatureDefinitions(path.join(base, 'clicks.yaml'), { schema: type }).hash;
    expect(out).toEqual({ key: 'c1', value: expect.objectContaining({ key: 'c1', featureSet: 'clicks', featureVersion: 1, names: ['price', 'pg_home', 'pg_item'], values: [Math.log1p(10), 0, 1], eventTime: click().at, definitionsSet: 'clicks', definitionsVersion: 1, definitionsHash: hash }) });
    // The same definitions on a topic of another schema are refused at load, naming the field.
    const wrong = { ...raw, topics: raw.topics.map((t) => (t.name === 'clicks' ? { ...t, schema: 'feature-vector' } : t)) };
    expect(() => validateTopology(wrong, 'x.yaml', { baseDir: base })).toThrow(ConfigErrors);
    expect(() => validateTopology(wrong, 'x.yaml', { baseDir: base })).toThrow(/stages\[0\]\.config\.featureSet\.file: clicks\.yaml: input: definitions are for schema 'click', the input topic carries 'feature-vector'/);
  });

  it('the loader refuses a model whose card pins other definitions (definitionsHash)', () => {
    const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'models-'));
    fs.cpSync(path.join(repoRoot(), 'models/fraud/2'), path.join(repo, 'fraud/2'), { recursive: true });
    const cardFile = path.join(repo, 'fraud/2/model.json');
    const card = JSON.parse(fs.readFileSync(cardFile, 'utf8'));
    card.features.definitionsHash = '0123456789abcdef';
    fs.writeFileSync(cardFile, JSON.stringify(card));
    const msg = topologyErrorFor((d) => (d.stages[1].config.model.repository = repo));
    expect(msg).toMatch(/stages\[1\]\.config\.model: model fraud@2 cannot be fed by stage 'extract': definitions .*fraud_txn\.yaml have hash [0-9a-f]{16}, the card was trained with 0123456789abcdef/);
  });

  it('a model card may pin the definitions hash', () => {
    const v = { set: 's', version: 1, names: ['a'], definitions: {}, base: { hash: 'abc', file: 'f.yaml' } };
    expect(cardProblems({ set: 's', version: 1, names: ['a'], definitionsHash: 'abc' }, v)).toEqual([]);
    expect(cardProblems({ set: 's', version: 1, names: ['a'], definitionsHash: 'def' }, v)).toEqual(['definitions f.yaml have hash abc, the card was trained with def']);
  });
});

describe('the two compiled functions agree', () => {
  it('extract (array literal) and extractInto (a buffer at an offset) give the same bits for random definitions and edge events', () => {
    const randomType = avro.Type.forSchema(RANDOM_SCHEMA as avro.Schema);
    const r = rng(77);
    let compared = 0;
    for (let k = 0; k < 30; k++) {
      const set = buildFeatureSet(randomDefinitions(r, k), randomType, `random-${k}`, '0'.repeat(16));
      const buf = new Float64Array(set.size + 3).fill(-5);
      for (let i = 0; i < 100; i++) {
        const ev = randomEvent(r);
        const a = set.extract(ev);
        set.extractInto(ev, buf, 3);
        expect(a).toHaveLength(set.size);
        for (let j = 0; j < set.size; j++) {
          if (!Object.is(a[j], buf[3 + j])) throw new Error(`random-${k} ${set.names[j]}: extract ${a[j]}, extractInto ${buf[3 + j]}`);
          compared++;
        }
        expect([...buf.slice(0, 3)]).toEqual([-5, -5, -5]);
      }
    }
    expect(compared).toBeGreaterThan(10_000);
  });
});
