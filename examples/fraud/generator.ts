/**
 * Seeded, deterministic synthetic card-transaction stream for the fraud demo.
 *
 * Draws from models/fraud/generator-spec.json with the same mechanism as `FraudGenerator` in
 * models/train/train_fraud.py (the data the model was trained on): same PRNG (mulberry32), same
 * draw order (see the spec's "$mechanism"), so a seed gives the same events in both languages,
 * which the unit tests check against the golden set.
 *
 * Event times: the generator keeps a pacing clock, `startTime + floor(n * 1000 / eventsPerSecond)`
 * for the n-th event (0-based). The event's UTC *date* is the clock's; its *time of day* is drawn
 * from the spec's hour profile (legit or fraud), so the hour-of-day pattern the model learned is
 * present at any rate. Consequence: within a day, eventTime is not monotonic in n (an event may
 * carry a time up to ~24 h before or after the clock).
 */

import { loadGeneratorSpec, validateGeneratorSpec, type GeneratorSpec } from './generator-spec';
import type { Transaction } from './schemas';

const MS_PER_HOUR = 3_600_000;
const MS_PER_DAY = 86_400_000;
const TWO_TO_32 = 4294967296;

/** mulberry32: 32-bit state PRNG, `next()` in [0, 1) with 32 random bits. */
export class Mulberry32 {
  private state: number;

  /** Uses the low 32 bits of the (integer part of the) seed. */
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / TWO_TO_32;
  }
}

export interface TransactionGeneratorOptions {
  /** Integer seed; the stream is a pure function of (seed, spec, startTime, eventsPerSecond). */
  seed: number;
  /** Defaults to `loadGeneratorSpec()` (models/fraud/generator-spec.json). */
  spec?: GeneratorSpec;
  /** ms since epoch of the pacing clock at event 0; defaults to `spec.defaultStartTime` (fixed, for determinism). */
  startTime?: number;
  /** Pacing clock rate; defaults to `spec.defaultEventsPerSecond`. Does not sleep: it only shapes eventTime. */
  eventsPerSecond?: number;
}

export interface GeneratedTransaction {
  tx: Transaction;
  /** Ground truth: drawn from the fraud distribution. Not part of the event. */
  isFraud: boolean;
}

function cumulative(weights: readonly number[]): Float64Array {
  const out = new Float64Array(weights.length);
  let acc = 0;
  for (let i = 0; i < weights.length; i++) {
    acc += weights[i];
    out[i] = acc;
  }
  return out;
}

/** First index whose running weight exceeds u * total (spec order), else the last. */
function pick(cum: Float64Array, u: number): number {
  const target = u * cum[cum.length - 1];
  for (let i = 0; i < cum.length; i++) if (target < cum[i]) return i;
  return cum.length - 1;
}

export class TransactionGenerator {
  readonly seed: number;
  readonly spec: GeneratorSpec;
  readonly startTime: number;
  readonly eventsPerSecond: number;

  private readonly rng: Mulberry32;
  private n = 0;
  private readonly catCum: readonly [Float64Array, Float64Array];
  private readonly countryCum: readonly [Float64Array, Float64Array];
  private readonly hourCum: readonly [Float64Array, Float64Array];
  private readonly countryCurrency: readonly number[];
  private readonly countryOthers: readonly (readonly number[])[];
  private readonly mismatchRate: readonly [number, number];
  private readonly compromised: number;
  private readonly compromisedStride: number;
  private readonly merchantsPerCategory: number;

  constructor(opts: TransactionGeneratorOptions) {
    if (!Number.isInteger(opts.seed)) throw new Error(`seed must be an integer, got ${opts.seed}`);
    const spec = opts.spec === undefined ? loadGeneratorSpec() : validateGeneratorSpec(opts.spec);
    const startTime = opts.startTime ?? spec.defaultStartTime;
    const eps = opts.eventsPerSecond ?? spec.defaultEventsPerSecond;
    if (!Number.isFinite(startTime)) throw new Error(`startTime must be finite, got ${startTime}`);
    if (!(Number.isFinite(eps) && eps > 0)) throw new Error(`eventsPerSecond must be > 0, got ${eps}`);
    this.seed = opts.seed;
    this.spec = spec;
    this.startTime = startTime;
    this.eventsPerSecond = eps;
    this.rng = new Mulberry32(opts.seed);

    const cats = spec.categories;
    const ctys = spec.countries;
    this.catCum = [cumulative(cats.map((c) => c.weight)), cumulative(cats.map((c) => c.fraudWeight))];
    this.countryCum = [cumulative(ctys.map((c) => c.weight)), cumulative(ctys.map((c) => c.fraudWeight))];
    this.hourCum = [cumulative(spec.hourProfile), cumulative(spec.fraud.hourProfile)];
    const codes = spec.currencies.map((c) => c.code);
    this.countryCurrency = ctys.map((c) => codes.indexOf(c.currency));
    this.countryOthers = ctys.map((c) =>
      codes.map((_, i) => i).filter((i) => codes[i] !== c.currency),
    );
    this.mismatchRate = [spec.legit.currencyMismatchRate, spec.fraud.currencyMismatchRate];
    this.compromised = Math.max(1, Math.floor(spec.cards * spec.fraud.compromisedCardFraction));
    this.compromisedStride = Math.floor(spec.cards / this.compromised);
    this.merchantsPerCategory = Math.floor(spec.merchants / cats.length);
  }

  /** Number of events generated so far (the index of the next one). */
  get count(): number {
    return this.n;
  }

  next(): GeneratedTransaction {
    const spec = this.spec;
    const rng = this.rng;
    const n = this.n++;

    const isFraud = rng.next() < spec.fraud.baseRate;
    const k = isFraud ? 1 : 0;
    const ci = pick(this.catCum[k], rng.next());
    const cat = spec.categories[ci];
    const yi = pick(this.countryCum[k], rng.next());
    let curIndex = this.countryCurrency[yi];
    if (rng.next() < this.mismatchRate[k]) {
      const others = this.countryOthers[yi];
      curIndex = others[Math.floor(rng.next() * others.length)];
    }
    const cur = spec.currencies[curIndex];

    // Box-Muller (cosine branch only; both uniforms are consumed every event)
    const u1 = 1 - rng.next();
    const u2 = rng.next();
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    const mu = cat.amount.mu + (isFraud ? spec.fraud.amountMuShift : 0);
    const sigma = cat.amount.sigma * (isFraud ? spec.fraud.amountSigmaScale : 1);
    const usd = Math.min(Math.max(Math.exp(mu + sigma * z), spec.amountUsd.min), spec.amountUsd.max);
    const scale = 10 ** cur.decimals;
    let amount = Math.floor((usd / cur.toUsd) * scale + 0.5) / scale;
    if (amount < 1 / scale) amount = 1 / scale;

    const hour = pick(this.hourCum[k], rng.next());
    const msInHour = Math.floor(rng.next() * MS_PER_HOUR);
    const clock = this.startTime + Math.floor((n * 1000) / this.eventsPerSecond);
    const eventTime = Math.floor(clock / MS_PER_DAY) * MS_PER_DAY + hour * MS_PER_HOUR + msInHour;

    const card = isFraud
      ? Math.floor(rng.next() * this.compromised) * this.compromisedStride
      : Math.floor(rng.next() * spec.cards);
    const merchant = ci * this.merchantsPerCategory + Math.floor(rng.next() * this.merchantsPerCategory);

    return {
      tx: {
        transactionId: `tx-${this.seed}-${n}`,
        cardId: `card-${String(card).padStart(6, '0')}`,
        merchantId: `m-${String(merchant).padStart(5, '0')}`,
        amount,
        currency: cur.code,
        merchantCategory: cat.name,
        country: spec.countries[yi].code,
        eventTime,
      },
      isFraud,
    };
  }

  /** The next `count` events. */
  take(count: number): GeneratedTransaction[] {
    const out: GeneratedTransaction[] = [];
    for (let i = 0; i < count; i++) out.push(this.next());
    return out;
  }
}
