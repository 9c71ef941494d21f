import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../../src/stack/paths';

import {
  FRAUD_FEATURE_SET,
  fraudFeatureNames,
  loadGeneratorSpec,
  validateGeneratorSpec,
  type GeneratorSpec,
} from '../../examples/fraud/generator-spec';
import type { DeclarativeFeatureSet } from '../../src/features/declarative/load';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { FraudFeatureExtractor } from '../../bench/frozen/fraud-extractor';
import { fraudFeatures } from '../helpers/fraud-features';
import type { Transaction } from '../../examples/fraud/schemas';
import { modelDir, readGolden } from '../helpers/golden';

const MODEL_DIR = path.join(repoRoot(), 'models', 'fraud', '1');
const card = JSON.parse(fs.readFileSync(path.join(MODEL_DIR, 'model.json'), 'utf8')) as {
  features: { set: string; version: number; names: string[] };
  inputs: { name: string; shape: number[] }[];
};
const golden = readGolden<Transaction>(MODEL_DIR);

describe('repo root and spec loading', () => {
  it('resolves the repository root (src/stack/paths.ts)', () => {
    expect(JSON.parse(fs.readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')).name).toBe('tributary');
  });

  it('loads the default spec, by relative and by absolute path', () => {
    const spec = loadGeneratorSpec();
    expect(spec.featureSet).toBe(FRAUD_FEATURE_SET);
    expect(loadGeneratorSpec('models/fraud/generator-spec.json')).toEqual(spec);
    expect(loadGeneratorSpec(path.join(repoRoot(), 'models/fraud/generator-spec.json'))).toEqual(spec);
    expect(() => loadGeneratorSpec('models/fraud/nope.json')).toThrow(/cannot read generator spec/);
  });

  it('rejects a spec whose feature list does not follow the definitions', () => {
    const spec = loadGeneratorSpec();
    const swapped = { ...spec, features: [spec.features[1], spec.features[0], ...spec.features.slice(2)] };
    expect(() => validateGeneratorSpec(swapped)).toThrow(/features must be exactly/);
    expect(() => validateGeneratorSpec({ ...spec, featureVersion: 2 })).toThrow(/not implemented/);
    const badCountry = { ...spec, countries: [{ ...spec.countries[0], currency: 'ZZZ' }] };
    expect(() => validateGeneratorSpec(badCountry)).toThrow(/not in currencies/);
    expect(() => validateGeneratorSpec({ ...spec, hourProfile: [1, 2, 3] })).toThrow(/24 entries/);
  });
});

describe('fraud_txn, declarative (models/fraud/features/fraud_txn.yaml)', () => {
  let spec: GeneratorSpec;
  let fx: DeclarativeFeatureSet;
  beforeAll(() => {
    spec = loadGeneratorSpec();
    fx = fraudFeatures();
  });

  it('its tables and vocabulary are the generator spec\'s', () => {
    const t = fx.definitions.tables!;
    expect(t.usdPerUnit.values).toEqual(Object.fromEntries(spec.currencies.map((c) => [c.code, c.toUsd])));
    expect(t.countryCurrency.values).toEqual(Object.fromEntries(spec.countries.map((c) => [c.code, c.currency])));
    expect(Object.keys(t.highRiskCountry.values).sort()).toEqual(spec.countries.filter((c) => c.highRisk).map((c) => c.code).sort());
    const cat = fx.definitions.features.find((f) => f.name === 'cat') as { oneHot: { vocabulary: string[] } };
    expect(cat.oneHot.vocabulary).toEqual(spec.categories.map((c) => c.name));
    expect(fx.hash).toMatch(/^[0-9a-f]{16}$/);
  });

  it('computes bit-identical vectors to the frozen hand-written extractor (20,000 generated events + edge cases)', () => {
    const frozen = new FraudFeatureExtractor(spec);
    const events: Transaction[] = new TransactionGenerator({ seed: 31 }).take(20000).map((g) => g.tx);
    for (const row of golden) events.push(row.event);
    for (const amount of [0, -0, -1, 1e-300, 1e300, -12.5]) events.push({ ...golden[0].event, amount });
    for (const eventTime of [0, -1, -3600001, 86399999, 253402214399999, -62135510400000]) events.push({ ...golden[0].event, eventTime });
    for (const e of events) {
      const a = fx.extract(e);
      const b = frozen.extract(e);
      for (let j = 0; j < a.length; j++) {
        if (!Object.is(a[j], b[j] + 0)) throw new Error(`${JSON.stringify(e)}: ${fx.names[j]} declarative ${a[j]} != frozen ${b[j]}`);
      }
    }
  });

  it('differs from the frozen extractor only where time parts are undefined (SEMANTICS.md): hour 0 (default), is_night 1', () => {
    const frozen = new FraudFeatureExtractor(spec);
    for (const eventTime of [253402300799999, NaN]) {
      const e = { ...golden[0].event, eventTime };
      const got = fx.extract(e);
      expect([got[2], got[3]]).toEqual([0, 1]);
      expect(frozen.extract(e).slice(0, 2)).toEqual(got.slice(0, 2));
    }
  });

  it('reproduces the base features of the model 2 and 3 golden sets', () => {
    for (const v of ['2', '3']) {
      const rows = readGolden<Transaction>(modelDir('fraud', v));
      expect(rows.length).toBeGreaterThan(50);
      for (const row of rows) {
        const got = fx.extract(row.event);
        got.forEach((x, j) => expect(Math.abs(x - row.features[j])).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(x))));
      }
    }
  });

  it('names and version equal the spec and the model card', () => {
    expect([...fx.names]).toEqual(spec.features);
    expect([...fx.names]).toEqual(card.features.names);
    expect([...fx.names]).toEqual(fraudFeatureNames(spec));
    expect(fx.version).toBe(card.features.version);
    expect(fx.version).toBe(1);
    expect(FRAUD_FEATURE_SET).toBe(card.features.set);
    expect(fx.size).toBe(card.inputs[0].shape[1]);
    expect(fx.names.length).toBeGreaterThanOrEqual(12);
    expect(fx.names.length).toBeLessThanOrEqual(16);
  });

  it(`reproduces the Python features on every golden event`, () => {
    expect(golden.length).toBeGreaterThanOrEqual(150);
    const logIndex = fx.names.indexOf('log_amount_usd');
    for (const row of golden) {
      const got = fx.extract(row.event);
      expect(got).toHaveLength(row.features.length);
      for (let j = 0; j < got.length; j++) {
        const want = row.features[j];
        // log1p may differ in the last bit between libms; everything else is exact arithmetic.
        const tol = j === logIndex ? 1e-12 * Math.max(1, Math.abs(want)) : 1e-9;
        if (!(Math.abs(got[j] - want) <= tol)) {
          throw new Error(
            `${row.event.transactionId}: feature ${fx.names[j]} = ${got[j]}, Python ${want}`,
          );
        }
      }
    }
  });

  it('covers the edge cases in the golden set', () => {
    const cases = golden.filter((r) => r.source.case !== undefined).map((r) => r.source.case);
    expect(cases).toEqual(
      expect.arrayContaining(['unknown category', 'unknown country', 'unknown currency', 'negative eventTime']),
    );
  });

  it('handles unknown category, country and currency deterministically', () => {
    const base: Transaction = {
      transactionId: 't',
      cardId: 'card-000001',
      merchantId: 'm-00001',
      amount: 100,
      currency: 'EUR',
      merchantCategory: 'electronics',
      country: 'DE',
      eventTime: Date.UTC(2025, 0, 2, 3, 4, 5),
    };
    const f = (tx: Partial<Transaction>) => {
      const out = fx.extract({ ...base, ...tx });
      return Object.fromEntries(fx.names.map((n, i) => [n, out[i]]));
    };
    const known = f({});
    expect(known.amount_usd).toBeCloseTo(108, 12);
    expect(known.log_amount_usd).toBeCloseTo(Math.log(109), 12);
    expect(known.hour_of_day).toBe(3);
    expect(known.is_night).toBe(1);
    expect(known.is_high_risk_country).toBe(0);
    expect(known.currency_mismatch).toBe(0);
    expect(known.cat_electronics).toBe(1);

    const unknownCat = f({ merchantCategory: 'pets' });
    expect(fx.names.filter((n) => n.startsWith('cat_')).map((n) => unknownCat[n])).toEqual(
      new Array(spec.categories.length).fill(0),
    );
    const unknownCur = f({ currency: 'XXX' });
    expect(unknownCur.amount_usd).toBe(100);
    expect(unknownCur.currency_mismatch).toBe(1);
    const unknownCountry = f({ country: 'ZZ' });
    expect(unknownCountry.is_high_risk_country).toBe(0);
    expect(unknownCountry.currency_mismatch).toBe(1);
    expect(f({ country: 'NG', currency: 'NGN' }).is_high_risk_country).toBe(1);
    expect(f({ country: 'US', currency: 'EUR' }).currency_mismatch).toBe(1);
    expect(f({ amount: -5 }).log_amount_usd).toBe(0);
    expect(f({ eventTime: -1 }).hour_of_day).toBe(23);
    expect(f({ eventTime: Date.UTC(2025, 0, 1, 6) }).is_night).toBe(0);
    expect(f({ eventTime: Date.UTC(2025, 0, 1, 6) - 1 }).is_night).toBe(1);
  });

  it('is pure and extractInto writes a full row at an offset', () => {
    const tx = Object.freeze({ ...golden[0].event });
    const a = fx.extract(tx);
    expect(fx.extract(tx)).toEqual(a);
    const batch = new Float32Array(fx.size * 3).fill(7);
    fx.extractInto(tx, batch, fx.size);
    expect(Array.from(batch.subarray(0, fx.size))).toEqual(new Array(fx.size).fill(7));
    expect(Array.from(batch.subarray(fx.size, 2 * fx.size))).toEqual(Array.from(Float32Array.from(a)));
    expect(Array.from(batch.subarray(2 * fx.size))).toEqual(new Array(fx.size).fill(7));
  });
});
