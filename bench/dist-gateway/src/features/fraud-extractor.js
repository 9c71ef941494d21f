"use strict";
var __createBinding = (this && this.__createBinding) || (Object.create ? (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    var desc = Object.getOwnPropertyDescriptor(m, k);
    if (!desc || ("get" in desc ? !m.__esModule : desc.writable || desc.configurable)) {
      desc = { enumerable: true, get: function() { return m[k]; } };
    }
    Object.defineProperty(o, k2, desc);
}) : (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    o[k2] = m[k];
}));
var __setModuleDefault = (this && this.__setModuleDefault) || (Object.create ? (function(o, v) {
    Object.defineProperty(o, "default", { enumerable: true, value: v });
}) : function(o, v) {
    o["default"] = v;
});
var __importStar = (this && this.__importStar) || (function () {
    var ownKeys = function(o) {
        ownKeys = Object.getOwnPropertyNames || function (o) {
            var ar = [];
            for (var k in o) if (Object.prototype.hasOwnProperty.call(o, k)) ar[ar.length] = k;
            return ar;
        };
        return ownKeys(o);
    };
    return function (mod) {
        if (mod && mod.__esModule) return mod;
        var result = {};
        if (mod != null) for (var k = ownKeys(mod), i = 0; i < k.length; i++) if (k[i] !== "default") __createBinding(result, mod, k[i]);
        __setModuleDefault(result, mod);
        return result;
    };
})();
Object.defineProperty(exports, "__esModule", { value: true });
exports.FraudFeatureExtractor = exports.FRAUD_BASE_FEATURES = exports.DEFAULT_GENERATOR_SPEC_PATH = exports.FRAUD_FEATURE_VERSION = exports.FRAUD_FEATURE_SET = void 0;
exports.fraudFeatureNames = fraudFeatureNames;
exports.validateGeneratorSpec = validateGeneratorSpec;
exports.loadGeneratorSpec = loadGeneratorSpec;
/**
 * Fraud demo features (feature set `fraud_txn`, definitions version 1): the TypeScript twin of
 * `FeatureExtractor` in models/train/train_fraud.py. Both read the ordered feature list, the
 * categories, the countries and the FX rates from models/fraud/generator-spec.json, and the golden
 * set models/fraud/<v>/golden.jsonl (features computed in Python) keeps the two identical.
 *
 * Features, all computed from the one event (stateless), in this order:
 *
 * | name                   | definition                                                                  |
 * |------------------------|-----------------------------------------------------------------------------|
 * | `amount_usd`           | `amount * toUsd[currency]`; unknown currency: rate 1.0                       |
 * | `log_amount_usd`       | `ln(1 + amount_usd)` if `amount_usd > 0`, else 0 (negative, zero, NaN -> 0)  |
 * | `hour_of_day`          | `floor(eventTime / 3600000) mod 24`, UTC, 0..23 (also for negative times)    |
 * | `is_night`             | 1 if `hour_of_day < 6`, else 0                                               |
 * | `is_high_risk_country` | 1 if `country` is in the spec and marked `highRisk`, else 0 (unknown -> 0)   |
 * | `currency_mismatch`    | 0 only if country and currency are both known and the currency is the       |
 * |                        | country's; else 1 (unknown currency or unknown country -> 1)                 |
 * | `cat_<category>`       | one-hot over the spec's categories in spec order; unknown category -> all 0 |
 *
 * Strings are matched exactly (case-sensitive, untrimmed): `usd` is an unknown currency. A
 * non-finite `eventTime` gives NaN for `hour_of_day` (and `is_night` 0); the schema makes it a long,
 * so that only happens to hand-built events.
 */
const fs = __importStar(require("fs"));
const path = __importStar(require("path"));
const paths_1 = require("../stack/paths");
/** Name of the feature set these features belong to (the model card's `features.set`). */
exports.FRAUD_FEATURE_SET = 'fraud_txn';
/** The feature-definitions version this module implements (the model card's `features.version`). */
exports.FRAUD_FEATURE_VERSION = 1;
/** Spec location relative to the repository root. */
exports.DEFAULT_GENERATOR_SPEC_PATH = 'models/fraud/generator-spec.json';
/** Features that precede the category one-hots, in order. */
exports.FRAUD_BASE_FEATURES = Object.freeze([
    'amount_usd',
    'log_amount_usd',
    'hour_of_day',
    'is_night',
    'is_high_risk_country',
    'currency_mismatch',
]);
const MS_PER_HOUR = 3_600_000;
const NIGHT_END_HOUR = 6;
/** The ordered feature names implied by the v1 definitions and the spec's categories. */
function fraudFeatureNames(spec) {
    return [...exports.FRAUD_BASE_FEATURES, ...spec.categories.map((c) => `cat_${c.name}`)];
}
function fail(msg) {
    throw new Error(`invalid generator spec: ${msg}`);
}
function num(v, where, min = -Infinity) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min)
        fail(`${where} must be a finite number >= ${min}`);
    return v;
}
function str(v, where) {
    if (typeof v !== 'string' || v.length === 0)
        fail(`${where} must be a non-empty string`);
    return v;
}
function obj(v, where) {
    if (typeof v !== 'object' || v === null || Array.isArray(v))
        fail(`${where} must be an object`);
    return v;
}
function arr(v, where) {
    if (!Array.isArray(v) || v.length === 0)
        fail(`${where} must be a non-empty array`);
    return v;
}
function weights(v, where, length) {
    const a = arr(v, where).map((w, i) => num(w, `${where}[${i}]`, 0));
    if (length !== undefined && a.length !== length)
        fail(`${where} must have ${length} entries`);
    if (!(a.reduce((s, w) => s + w, 0) > 0))
        fail(`${where} must have a positive sum`);
    return a;
}
/**
 * Checks the structure and the cross references of a parsed spec and returns it typed. Throws
 * `Error('invalid generator spec: ...')` on the first problem, including a feature list that is not
 * exactly `fraudFeatureNames(spec)` or a feature set/version this code does not implement.
 */
function validateGeneratorSpec(raw) {
    const s = obj(raw, 'spec');
    if (s.featureSet !== exports.FRAUD_FEATURE_SET)
        fail(`featureSet must be "${exports.FRAUD_FEATURE_SET}"`);
    if (s.featureVersion !== exports.FRAUD_FEATURE_VERSION) {
        fail(`featureVersion ${String(s.featureVersion)} is not implemented (this code implements ${exports.FRAUD_FEATURE_VERSION})`);
    }
    const categories = arr(s.categories, 'categories').map((c, i) => {
        const o = obj(c, `categories[${i}]`);
        const a = obj(o.amount, `categories[${i}].amount`);
        str(o.name, `categories[${i}].name`);
        num(o.weight, `categories[${i}].weight`, 0);
        num(o.fraudWeight, `categories[${i}].fraudWeight`, 0);
        num(a.mu, `categories[${i}].amount.mu`);
        num(a.sigma, `categories[${i}].amount.sigma`, 0);
        return o;
    });
    weights(categories.map((c) => c.weight), 'categories[].weight');
    weights(categories.map((c) => c.fraudWeight), 'categories[].fraudWeight');
    const currencies = arr(s.currencies, 'currencies').map((c, i) => {
        const o = obj(c, `currencies[${i}]`);
        str(o.code, `currencies[${i}].code`);
        if (num(o.toUsd, `currencies[${i}].toUsd`, 0) === 0)
            fail(`currencies[${i}].toUsd must be > 0`);
        const d = num(o.decimals, `currencies[${i}].decimals`, 0);
        if (!Number.isInteger(d) || d > 6)
            fail(`currencies[${i}].decimals must be an integer 0..6`);
        return o;
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
        if (typeof o.highRisk !== 'boolean')
            fail(`countries[${i}].highRisk must be a boolean`);
        return o;
    });
    weights(countries.map((c) => c.weight), 'countries[].weight');
    weights(countries.map((c) => c.fraudWeight), 'countries[].fraudWeight');
    for (const [list, what] of [
        [categories.map((c) => c.name), 'category names'],
        [countries.map((c) => c.code), 'country codes'],
        [currencies.map((c) => c.code), 'currency codes'],
    ]) {
        if (new Set(list).size !== list.length)
            fail(`${what} must be unique`);
    }
    weights(s.hourProfile, 'hourProfile', 24);
    const legit = obj(s.legit, 'legit');
    num(legit.currencyMismatchRate, 'legit.currencyMismatchRate', 0);
    const fraud = obj(s.fraud, 'fraud');
    const baseRate = num(fraud.baseRate, 'fraud.baseRate', 0);
    if (baseRate > 1)
        fail('fraud.baseRate must be <= 1');
    num(fraud.amountMuShift, 'fraud.amountMuShift');
    num(fraud.amountSigmaScale, 'fraud.amountSigmaScale', 0);
    num(fraud.currencyMismatchRate, 'fraud.currencyMismatchRate', 0);
    num(fraud.compromisedCardFraction, 'fraud.compromisedCardFraction', 0);
    weights(fraud.hourProfile, 'fraud.hourProfile', 24);
    const cards = num(s.cards, 'cards', 1);
    const merchants = num(s.merchants, 'merchants', 1);
    if (!Number.isInteger(cards) || !Number.isInteger(merchants))
        fail('cards and merchants must be integers');
    if (Math.floor(merchants / categories.length) < 1)
        fail('merchants must be at least the number of categories');
    num(s.defaultStartTime, 'defaultStartTime');
    num(s.defaultEventsPerSecond, 'defaultEventsPerSecond', Number.MIN_VALUE);
    const amountUsd = obj(s.amountUsd, 'amountUsd');
    if (num(amountUsd.min, 'amountUsd.min', 0) > num(amountUsd.max, 'amountUsd.max', 0))
        fail('amountUsd.min > amountUsd.max');
    const features = arr(s.features, 'features');
    const expected = fraudFeatureNames({ categories });
    if (features.length !== expected.length || features.some((f, i) => f !== expected[i])) {
        fail(`features must be exactly [${expected.join(', ')}] (v${exports.FRAUD_FEATURE_VERSION} definitions in category order)`);
    }
    return s;
}
/**
 * Reads and validates the generator spec. Without `specPath` it reads
 * `<repo root>/models/fraud/generator-spec.json`; a relative `specPath` is resolved against the
 * repository root (`repoRoot()` in src/stack/paths.ts), an absolute one is used as is.
 */
function loadGeneratorSpec(specPath = exports.DEFAULT_GENERATOR_SPEC_PATH) {
    const file = path.isAbsolute(specPath) ? specPath : path.join((0, paths_1.repoRoot)(), specPath);
    let parsed;
    try {
        parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
    }
    catch (err) {
        throw new Error(`cannot read generator spec ${file}: ${err.message}`);
    }
    return validateGeneratorSpec(parsed);
}
/**
 * Stateless, pure feature extractor (see the module comment for the definitions). After
 * construction, `extract` allocates only its output array and `extractInto` allocates nothing.
 */
class FraudFeatureExtractor {
    /** Ordered feature names (= spec.features = the model card's features.names). */
    names;
    /** Feature-definitions version (= spec.featureVersion). */
    version;
    featureSet = exports.FRAUD_FEATURE_SET;
    width;
    nCategories;
    categoryIndex;
    countries;
    toUsd;
    constructor(spec) {
        validateGeneratorSpec(spec);
        this.names = Object.freeze(spec.features.slice());
        this.version = spec.featureVersion;
        this.width = this.names.length;
        this.nCategories = spec.categories.length;
        this.categoryIndex = new Map(spec.categories.map((c, i) => [c.name, i]));
        this.countries = new Map(spec.countries.map((c) => [c.code, Object.freeze({ currency: c.currency, highRisk: c.highRisk ? 1 : 0 })]));
        this.toUsd = new Map(spec.currencies.map((c) => [c.code, c.toUsd]));
    }
    /** Number of features (= names.length). */
    get size() {
        return this.width;
    }
    /** Features of one event, in `names` order. Does not modify `tx`. */
    extract(tx) {
        const out = new Array(this.width).fill(0);
        this.extractInto(tx, out, 0);
        return out;
    }
    /**
     * Writes the features of `tx` to `out[offset .. offset + size)` (e.g. row i of a batch
     * Float32Array at offset i * size). Every slot of that range is written. Returns `out`.
     */
    extractInto(tx, out, offset = 0) {
        const rate = this.toUsd.get(tx.currency);
        const usd = tx.amount * (rate === undefined ? 1 : rate);
        out[offset] = usd;
        out[offset + 1] = usd > 0 ? Math.log1p(usd) : 0;
        let hour = Math.floor(tx.eventTime / MS_PER_HOUR) % 24;
        if (hour < 0)
            hour += 24;
        out[offset + 2] = hour;
        out[offset + 3] = hour < NIGHT_END_HOUR ? 1 : 0;
        const country = this.countries.get(tx.country);
        out[offset + 4] = country === undefined ? 0 : country.highRisk;
        out[offset + 5] =
            country !== undefined && rate !== undefined && tx.currency === country.currency ? 0 : 1;
        const base = offset + exports.FRAUD_BASE_FEATURES.length;
        for (let i = 0; i < this.nCategories; i++)
            out[base + i] = 0;
        const ci = this.categoryIndex.get(tx.merchantCategory);
        if (ci !== undefined)
            out[base + ci] = 1;
        return out;
    }
}
exports.FraudFeatureExtractor = FraudFeatureExtractor;
