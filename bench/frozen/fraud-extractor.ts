/**
 * FROZEN copy of the hand-written `fraud_txn` extractor (feature definitions version 1) as it was
 * before the features became declarative (models/fraud/features/fraud_txn.yaml). Kept only as the
 * benchmark baseline (bench/src/features-bench.ts) and as a test oracle
 * (test/unit/declarative-fraud.test.ts). Do not change it: it is what "at least as fast" and
 * "the same vectors" are measured against.
 */

import { FRAUD_BASE_FEATURES, validateGeneratorSpec, type GeneratorSpec } from '../../examples/fraud/generator-spec';
import type { Transaction } from '../../examples/fraud/schemas';

const MS_PER_HOUR = 3_600_000;
const NIGHT_END_HOUR = 6;

/** Anything indexable the extractor can write feature values into. */
export type FeatureBuffer = number[] | Float32Array | Float64Array;

interface CountryInfo {
  readonly currency: string;
  readonly highRisk: number;
}

/**
 * Stateless, pure feature extractor (see the module comment for the definitions). After
 * construction, `extract` allocates only its output array and `extractInto` allocates nothing.
 */
export class FraudFeatureExtractor {
  /** Ordered feature names (= spec.features = the model card's features.names). */
  readonly names: readonly string[];
  /** Feature-definitions version (= spec.featureVersion). */
  readonly version: number;
  readonly featureSet: string = 'fraud_txn';

  private readonly width: number;
  private readonly nCategories: number;
  private readonly categoryIndex: ReadonlyMap<string, number>;
  private readonly countries: ReadonlyMap<string, CountryInfo>;
  private readonly toUsd: ReadonlyMap<string, number>;

  constructor(spec: GeneratorSpec) {
    validateGeneratorSpec(spec);
    this.names = Object.freeze(spec.features.slice());
    this.version = spec.featureVersion;
    this.width = this.names.length;
    this.nCategories = spec.categories.length;
    this.categoryIndex = new Map(spec.categories.map((c, i) => [c.name, i]));
    this.countries = new Map(
      spec.countries.map((c) => [c.code, Object.freeze({ currency: c.currency, highRisk: c.highRisk ? 1 : 0 })]),
    );
    this.toUsd = new Map(spec.currencies.map((c) => [c.code, c.toUsd]));
  }

  /** Number of features (= names.length). */
  get size(): number {
    return this.width;
  }

  /** Features of one event, in `names` order. Does not modify `tx`. */
  extract(tx: Transaction): number[] {
    const out = new Array<number>(this.width).fill(0);
    this.extractInto(tx, out, 0);
    return out;
  }

  /**
   * Writes the features of `tx` to `out[offset .. offset + size)` (e.g. row i of a batch
   * Float32Array at offset i * size). Every slot of that range is written. Returns `out`.
   */
  extractInto<T extends FeatureBuffer>(tx: Transaction, out: T, offset = 0): T {
    const rate = this.toUsd.get(tx.currency);
    const usd = tx.amount * (rate === undefined ? 1 : rate);
    out[offset] = usd;
    out[offset + 1] = usd > 0 ? Math.log1p(usd) : 0;
    let hour = Math.floor(tx.eventTime / MS_PER_HOUR) % 24;
    if (hour < 0) hour += 24;
    out[offset + 2] = hour;
    out[offset + 3] = hour < NIGHT_END_HOUR ? 1 : 0;
    const country = this.countries.get(tx.country);
    out[offset + 4] = country === undefined ? 0 : country.highRisk;
    out[offset + 5] =
      country !== undefined && rate !== undefined && tx.currency === country.currency ? 0 : 1;
    const base = offset + FRAUD_BASE_FEATURES.length;
    for (let i = 0; i < this.nCategories; i++) out[base + i] = 0;
    const ci = this.categoryIndex.get(tx.merchantCategory);
    if (ci !== undefined) out[base + ci] = 1;
    return out;
  }
}
