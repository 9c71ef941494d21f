/**
 * The fraud demo's generator spec (models/fraud/generator-spec.json): distributions and planted
 * fraud patterns the TypeScript generator (generator.ts) and the Python trainer share. The features
 * the models read are declared in models/fraud/features/fraud_txn.yaml (declarative definitions);
 * `features` here must list their names (checked against the spec's categories).
 */
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../../src/util/paths';

/** Name of the feature set these features belong to (the model card's `features.set`). */
export const FRAUD_FEATURE_SET = 'fraud_txn';
/** The feature-definitions version this module implements (the model card's `features.version`). */
export const FRAUD_FEATURE_VERSION = 1;
/** Spec location relative to the repository root. */
export const DEFAULT_GENERATOR_SPEC_PATH = 'models/fraud/generator-spec.json';

/** Features that precede the category one-hots, in order. */
export const FRAUD_BASE_FEATURES: readonly string[] = Object.freeze([
  'amount_usd',
  'log_amount_usd',
  'hour_of_day',
  'is_night',
  'is_high_risk_country',
  'currency_mismatch',
]);


export interface CategorySpec {
  name: string;
  /** Relative weight among legitimate transactions. */
  weight: number;
  /** Relative weight among fraudulent transactions. */
  fraudWeight: number;
  /** Lognormal amount in USD: exp(mu + sigma * z). */
  amount: { mu: number; sigma: number };
}

export interface CountrySpec {
  /** ISO 3166-1 alpha-2. */
  code: string;
  /** ISO 4217 code of the country's currency (must be in `currencies`). */
  currency: string;
  weight: number;
  fraudWeight: number;
  highRisk: boolean;
}

export interface CurrencySpec {
  /** ISO 4217. */
  code: string;
  /** USD value of one unit of this currency. */
  toUsd: number;
  /** Minor-unit digits amounts are rounded to. */
  decimals: number;
}

/** models/fraud/generator-spec.json (keys starting with `$` are comments). */
export interface GeneratorSpec {
  name: string;
  specVersion: number;
  featureSet: string;
  featureVersion: number;
  /** Ordered model input features. */
  features: string[];
  cards: number;
  merchants: number;
  /** ms since epoch; used when a generator is given no startTime. */
  defaultStartTime: number;
  defaultEventsPerSecond: number;
  amountUsd: { min: number; max: number };
  categories: CategorySpec[];
  countries: CountrySpec[];
  currencies: CurrencySpec[];
  /** 24 relative weights of the UTC hour of legitimate transactions. */
  hourProfile: number[];
  legit: { currencyMismatchRate: number };
  fraud: {
    baseRate: number;
    amountMuShift: number;
    amountSigmaScale: number;
    currencyMismatchRate: number;
    compromisedCardFraction: number;
    /** 24 relative weights of the UTC hour of fraudulent transactions. */
    hourProfile: number[];
  };
}

/** The ordered feature names implied by the v1 definitions and the spec's categories. */
export function fraudFeatureNames(spec: Pick<GeneratorSpec, 'categories'>): string[] {
  return [...FRAUD_BASE_FEATURES, ...spec.categories.map((c) => `cat_${c.name}`)];
}

function fail(msg: string): never {
  throw new Error(`invalid generator spec: ${msg}`);
}

function num(v: unknown, where: string, min = -Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) fail(`${where} must be a finite number >= ${min}`);
  return v;
}

function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || v.length === 0) fail(`${where} must be a non-empty string`);
  return v;
}

function obj(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${where} must be an object`);
  return v as Record<string, unknown>;
}

function arr(v: unknown, where: string): unknown[] {
  if (!Array.isArray(v) || v.length === 0) fail(`${where} must be a non-empty array`);
  return v;
}

function weights(v: unknown, where: string, length?: number): number[] {
  const a = arr(v, where).map((w, i) => num(w, `${where}[${i}]`, 0));
  if (length !== undefined && a.length !== length) fail(`${where} must have ${length} entries`);
  if (!(a.reduce((s, w) => s + w, 0) > 0)) fail(`${where} must have a positive sum`);
  return a;
}

/**
 * Checks the structure and the cross references of a parsed spec and returns it typed. Throws
 * `Error('invalid generator spec: ...')` on the first problem, including a feature list that is not
 * exactly `fraudFeatureNames(spec)` or a feature set/version this code does not implement.
 */
export function validateGeneratorSpec(raw: unknown): GeneratorSpec {
  const s = obj(raw, 'spec');
  if (s.featureSet !== FRAUD_FEATURE_SET) fail(`featureSet must be "${FRAUD_FEATURE_SET}"`);
  if (s.featureVersion !== FRAUD_FEATURE_VERSION) {
    fail(`featureVersion ${String(s.featureVersion)} is not implemented (this code implements ${FRAUD_FEATURE_VERSION})`);
  }
  const categories = arr(s.categories, 'categories').map((c, i) => {
    const o = obj(c, `categories[${i}]`);
    const a = obj(o.amount, `categories[${i}].amount`);
    str(o.name, `categories[${i}].name`);
    num(o.weight, `categories[${i}].weight`, 0);
    num(o.fraudWeight, `categories[${i}].fraudWeight`, 0);
    num(a.mu, `categories[${i}].amount.mu`);
    num(a.sigma, `categories[${i}].amount.sigma`, 0);
    return o as unknown as CategorySpec;
  });
  weights(categories.map((c) => c.weight), 'categories[].weight');
  weights(categories.map((c) => c.fraudWeight), 'categories[].fraudWeight');
  const currencies = arr(s.currencies, 'currencies').map((c, i) => {
    const o = obj(c, `currencies[${i}]`);
    str(o.code, `currencies[${i}].code`);
    if (num(o.toUsd, `currencies[${i}].toUsd`, 0) === 0) fail(`currencies[${i}].toUsd must be > 0`);
    const d = num(o.decimals, `currencies[${i}].decimals`, 0);
    if (!Number.isInteger(d) || d > 6) fail(`currencies[${i}].decimals must be an integer 0..6`);
    return o as unknown as CurrencySpec;
  });
  const codes = new Set(currencies.map((c) => c.code));
  const countries = arr(s.countries, 'countries').map((c, i) => {
    const o = obj(c, `countries[${i}]`);
    str(o.code, `countries[${i}].code`);
    if (!codes.has(str(o.currency, `countries[${i}].currency`))) {
      fail(`countries[${i}].currency ${String(o.currency)} is not in currencies`);
    }
    num(o.weight, `countries[${i}].weight`, 0);
    num(o.fraudWeight, `countries[${i}].fraudWeight`, 0);
    if (typeof o.highRisk !== 'boolean') fail(`countries[${i}].highRisk must be a boolean`);
    return o as unknown as CountrySpec;
  });
  weights(countries.map((c) => c.weight), 'countries[].weight');
  weights(countries.map((c) => c.fraudWeight), 'countries[].fraudWeight');
  for (const [list, what] of [
    [categories.map((c) => c.name), 'category names'],
    [countries.map((c) => c.code), 'country codes'],
    [currencies.map((c) => c.code), 'currency codes'],
  ] as const) {
    if (new Set(list).size !== list.length) fail(`${what} must be unique`);
  }
  weights(s.hourProfile, 'hourProfile', 24);
  const legit = obj(s.legit, 'legit');
  num(legit.currencyMismatchRate, 'legit.currencyMismatchRate', 0);
  const fraud = obj(s.fraud, 'fraud');
  const baseRate = num(fraud.baseRate, 'fraud.baseRate', 0);
  if (baseRate > 1) fail('fraud.baseRate must be <= 1');
  num(fraud.amountMuShift, 'fraud.amountMuShift');
  num(fraud.amountSigmaScale, 'fraud.amountSigmaScale', 0);
  num(fraud.currencyMismatchRate, 'fraud.currencyMismatchRate', 0);
  num(fraud.compromisedCardFraction, 'fraud.compromisedCardFraction', 0);
  weights(fraud.hourProfile, 'fraud.hourProfile', 24);
  const cards = num(s.cards, 'cards', 1);
  const merchants = num(s.merchants, 'merchants', 1);
  if (!Number.isInteger(cards) || !Number.isInteger(merchants)) fail('cards and merchants must be integers');
  if (Math.floor(merchants / categories.length) < 1) fail('merchants must be at least the number of categories');
  num(s.defaultStartTime, 'defaultStartTime');
  num(s.defaultEventsPerSecond, 'defaultEventsPerSecond', Number.MIN_VALUE);
  const amountUsd = obj(s.amountUsd, 'amountUsd');
  if (num(amountUsd.min, 'amountUsd.min', 0) > num(amountUsd.max, 'amountUsd.max', 0)) fail('amountUsd.min > amountUsd.max');
  const features = arr(s.features, 'features');
  const expected = fraudFeatureNames({ categories });
  if (features.length !== expected.length || features.some((f, i) => f !== expected[i])) {
    fail(`features must be exactly [${expected.join(', ')}] (v${FRAUD_FEATURE_VERSION} definitions in category order)`);
  }
  return s as unknown as GeneratorSpec;
}

/**
 * Reads and validates the generator spec. Without `specPath` it reads
 * `<repo root>/models/fraud/generator-spec.json`; a relative `specPath` is resolved against the
 * repository root (`repoRoot()` in src/stack/paths.ts), an absolute one is used as is.
 */
export function loadGeneratorSpec(specPath: string = DEFAULT_GENERATOR_SPEC_PATH): GeneratorSpec {
  const file = path.isAbsolute(specPath) ? specPath : path.join(repoRoot(), specPath);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read generator spec ${file}: ${(err as Error).message}`);
  }
  return validateGeneratorSpec(parsed);
}

