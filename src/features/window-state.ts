/**
 * The in-memory window state of one entity of one streaming set. A small entity (SmallWindow: up to
 * `small` events, 4,096 by default, or 128 while its events mostly come in event-time order) holds
 * its events as number columns sorted by time in one Float64Array; a big one (BigWindow) holds
 * them in typed-array columns grouped in buckets of R ms, with summaries of blocks of F buckets
 * and per window an accumulator of the buckets in it. No object per event either way. Pure
 * computation, no I/O: StreamingState (streaming.ts) loads an entity from Redis, scores and
 * applies a chunk's events here and writes back what changed (`writeWrites`). The semantics are
 * stated at the top of streaming.ts; ReferenceStreamingState there is the brute-force judge.
 *
 * Cost per event of a big entity, n = events in the entity's retention:
 * - in event-time order (t >= every time applied): O(1) amortised for count, sum, mean, distinct,
 *   last and time since previous, O(log n) for min/max (heaps of bucket extremes);
 * - out of order or late: the summaries of the dense blocks inside the window plus the buckets of
 *   its edges and of its sparse blocks, O(window / (R F) x BLOCK_SUMMARY_EVENTS + 2 F) summaries or
 *   events (a bucket of fewer than BUCKET_SUMMARY_EVENTS events is read as its events), plus for
 *   distinct counts O(min(events in the window, distinct values x log n)) — a window's events are
 *   counted where their value's previous occurrence is before the window, numbers only — and the events of its
 *   own bucket (it counts only up to t) — bounded by the window in buckets, not by the events in
 *   it.
 * A small entity reads a window as a range of its time-sorted columns: count, last and time since
 * previous in O(log n), the others in O(events in the window) over contiguous numbers, and an
 * insert moves the later events' numbers (O(n) memory moves, n <= `small`). Out of order, that is
 * cheaper than a big entity's summaries and sparse blocks: for one entity alone up to ~4,000 events
 * (BENCHMARKS.md item 30), and for the demo's 5,000 cards at once (their states out of the CPU's
 * caches: a big entity's summaries are reached through pointers, a small one's numbers lie
 * together) ~15-20 µs per event from 1,000 to 4,000 events per card against 57-69 µs for big
 * entities at 1,000-1,300 (item 36; the demo's stream: 89 % of its events out of order for their
 * card); in order, only up to ~128-256 (a big entity's accumulators cost ~3 µs whatever the window
 * holds) — hence the two limits.
 * Persistence: a bucket's events are stored in fragments (hash fields `b<bucket>:<first seq>`),
 * appended per chunk and merged like a binary counter (a fragment absorbs the next when it is not
 * larger), so a chunk writes O(its events x log n) bytes, never the whole window.
 */
import { bucketMsOf, effectiveWindow, numericDefault, type AggregationKind, type StreamingFeatureSetSpec } from './spec';
import { TextInterner } from './text-interner';
import { PackWriter } from './pack-writer';
import { decode } from '@msgpack/msgpack';

/** One window (by size and hop) of a set and the slots its accumulating aggregations read. */
export interface WindowPlan {
  sliding: boolean;
  sz: number;
  hop: number;
  /** Whether any count/sum/mean/min/max/distinct aggregation reads it (last and time_since_prev need no accumulator). */
  acc: boolean;
  sm: number[];
  mn: number[];
  mx: number[];
  ds: number[];
}

export interface AggPlan {
  k: AggregationKind;
  /** Value slot (valueNames order), -1 for count and time_since_prev. */
  f: number;
  w: number;
  d: number;
}

/** The static description of a set the state works from. */
export interface SetPlan {
  name: string;
  R: number;
  F: number;
  lat: number;
  /** Retention behind the greatest applied time (largest window + lateness + replay retention). */
  ret: number;
  slots: number;
  /** Slots read as numbers (sum, mean, min, max, last). */
  num: number[];
  /** Slots read as distinct values. */
  dis: number[];
  /** Per slot: read only as a number (held as one, not as its text). */
  numOnly: boolean[];
  /** Slots a big entity keeps a number column for: read as numbers, or held only as numbers. */
  xs: number[];
  /**
   * A small entity's number columns (SmallWindow): per slot of xs its numbers' column (-1 for the
   * other slots); per distinct slot the column of each event's previous occurrence time, then its
   * value's hash and the index of its text (-1 for the other slots); and the count of columns
   * (time, sequence and fragment id first).
   */
  xc: number[];
  pc: number[];
  /**
   * Per distinct slot: the largest window a distinct count of it reads (sz; -1 for the other
   * slots). A window [lo, t] that holds an event at time T starts after T - sz (startBucket), so a
   * previous occurrence at or before T - sz counts the event as new exactly as none does: a small
   * entity looks for an event's previous and next occurrences only that far (its time ± sz), not
   * through every event held — the held events reach back the whole retention (largest window +
   * lateness + replay retention), a day's distinct window only one day.
   */
  reach: number[];
  cols: number;
  wins: WindowPlan[];
  aggs: AggPlan[];
  /**
   * The set's shared texts: every entity's held distinct values go through it (valuesOf), so equal
   * texts are one string object (src/features/text-interner.ts). The plan's one mutable part.
   */
  texts: TextInterner;
}

const NUMERIC = new Set<AggregationKind>(['sum', 'mean', 'min', 'max', 'last']);
const POINT = new Set<AggregationKind>(['last', 'time_since_prev']);
/** Aggregations read from a window's totals (count, exact sums, min, max); the others look at single events or values. */
const TOTALS = new Set<AggregationKind>(['count', 'sum', 'mean', 'min', 'max']);

export function setPlan(set: StreamingFeatureSetSpec, slotNames: string[], bucketsPerBlock: number, replayRetentionMs: number): SetPlan {
  const wins: Array<WindowPlan & { key: string }> = [];
  const num = new Set<number>();
  const dis = new Set<number>();
  const add = (list: number[], slot: number) => !list.includes(slot) && list.push(slot);
  const aggs = set.fields.map((f): AggPlan => {
    const w = effectiveWindow(f, set);
    const sliding = w.type === 'sliding';
    const key = `${sliding ? 's' : 'h'}:${w.sizeMs}:${w.hopMs}`;
    let wi = wins.findIndex((x) => x.key === key);
    if (wi < 0) wi = wins.push({ key, sliding, sz: w.sizeMs, hop: w.hopMs, acc: false, sm: [], mn: [], mx: [], ds: [] }) - 1;
    const win = wins[wi];
    const slot = f.of && f.aggregation !== 'count' && f.aggregation !== 'time_since_prev' ? slotNames.indexOf(f.of) : -1;
    if (!POINT.has(f.aggregation)) win.acc = true;
    if (slot >= 0 && NUMERIC.has(f.aggregation)) num.add(slot);
    if (slot >= 0 && f.aggregation === 'distinct_count') dis.add(slot);
    if (slot >= 0 && (f.aggregation === 'sum' || f.aggregation === 'mean')) add(win.sm, slot);
    if (slot >= 0 && f.aggregation === 'min') add(win.mn, slot);
    if (slot >= 0 && f.aggregation === 'max') add(win.mx, slot);
    if (slot >= 0 && f.aggregation === 'distinct_count') add(win.ds, slot);
    return { k: f.aggregation, f: slot, w: wi, d: numericDefault(f) };
  });
  const maxW = Math.max(...wins.map((w) => w.sz));
  const xs = slotNames.map((_, slot) => slot).filter((slot) => num.has(slot) || !dis.has(slot));
  return {
    name: set.name,
    R: bucketMsOf(set),
    F: bucketsPerBlock,
    lat: set.config.allowedLatenessMs,
    ret: maxW + set.config.allowedLatenessMs + (set.config.replayRetentionMs ?? replayRetentionMs),
    slots: slotNames.length,
    num: [...num],
    dis: [...dis],
    numOnly: slotNames.map((_, slot) => !dis.has(slot)),
    xs,
    xc: slotNames.map((_, slot) => (xs.includes(slot) ? 3 + xs.indexOf(slot) : -1)),
    pc: slotNames.map((_, slot) => (dis.has(slot) ? 3 + xs.length + 3 * [...dis].indexOf(slot) : -1)),
    reach: slotNames.map((_, slot) => (dis.has(slot) ? Math.max(...wins.filter((w) => w.ds.includes(slot)).map((w) => w.sz)) : -1)),
    cols: 3 + xs.length + 3 * dis.size,
    wins: wins.map(({ key: _key, ...w }) => w),
    aggs,
    texts: new TextInterner(),
  };
}

/** First bucket of window w for an event at time t. */
export function startBucket(w: WindowPlan, t: number, R: number): number {
  if (w.sliding) return Math.floor(t / R) - w.sz / R + 1;
  return (Math.floor(t / w.hop) * w.hop + w.hop - w.sz) / R;
}

// ---- exact sums: non-overlapping partials whose exact sum is the running total (Shewchuk) ----

export function padd(p: number[], x: number): void {
  let i = 0;
  const n = p.length;
  for (let j = 0; j < n; j++) {
    let y = p[j];
    if (Math.abs(x) < Math.abs(y)) {
      const tmp = x;
      x = y;
      y = tmp;
    }
    const hi = x + y;
    const lo = y - (hi - x);
    if (lo !== 0) p[i++] = lo;
    x = hi;
  }
  // p[i] = x, then drop what is past it: no length store when nothing shrinks (the usual case), a
  // store that goes through a runtime call (3-4 % of the window state's time when done every time).
  p[i] = x;
  if (i + 1 < n) p.length = i + 1;
}

/**
 * An exact sum built by one scan (sumRange's fallback for a small entity's window, when its
 * compensated sum cannot certify the rounding): padd's arithmetic on a Float64Array
 * with its own count, so a scan stores no array length (a runtime call each time the partials
 * shrink: 5 % of a small entity's time with a plain array). The loop repeats padd's on purpose: one
 * function over both plain arrays (of small integers or doubles) and Float64Arrays would make its
 * element accesses megamorphic, which measured 2.5x slower in this file's column inserts.
 */
export class ExactScan {
  private p = new Float64Array(64);
  private n = 0;

  reset(): void {
    this.n = 0;
  }

  add(x: number): void {
    const p = this.p;
    const n = this.n;
    let i = 0;
    for (let j = 0; j < n; j++) {
      let y = p[j];
      if (Math.abs(x) < Math.abs(y)) {
        const tmp = x;
        x = y;
        y = tmp;
      }
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) p[i++] = lo;
      x = hi;
    }
    // Usually a few partials; values spread over many magnitudes (and infinities, NaN) keep more: grow.
    if (i === p.length) {
      const q = new Float64Array(p.length * 2);
      q.set(p);
      this.p = q;
    }
    this.p[i] = x;
    this.n = i + 1;
  }

  sum(): number {
    return psum(this.p, this.n);
  }
}

/** sumRange's view of a double's bits (which 32-bit word holds the sign and exponent depends on the platform's byte order). */
const SUM_BITS = new Float64Array(1);
const SUM_WORDS = new Uint32Array(SUM_BITS.buffer);
SUM_BITS[0] = 1;
const HIGH_WORD = SUM_WORDS[1] === 0x3ff00000 ? 1 : 0;

/**
 * The correctly rounded exact sum of X[from..to) (what ExactScan gives: psum of exact partials),
 * never -0. First a compensated sum — each addition's exact error by a branch-free two-sum,
 * the errors summed, and the sum of their magnitudes for a bound — which is the answer whenever
 * that bound puts the exact sum strictly inside the rounding interval of the result: the usual
 * case, at a few flops per value without the data-dependent branches that made ExactScan's loop
 * the largest cost of a small entity's score. Otherwise (a sum within the bound of a rounding
 * boundary — a tie —, near the subnormal range, or past the largest double) `exact` scans the
 * range again.
 */
export function sumRange(X: Float64Array, from: number, to: number, exact: ExactScan): number {
  let s = 0;
  let c = 0;
  let a = 0;
  for (let i = from; i < to; i++) {
    const x = X[i];
    const t = s + x;
    const z = t - s;
    const e = s - (t - z) + (x - z);
    c += e;
    a += Math.abs(e);
    s = t;
  }
  // s + c = r + e exactly (a two-sum); the exact sum is s + (the errors' exact sum) = r + e + d,
  // where |d| = |errors' sum - c| <= (n - 1) 2^-53 x (sum of |errors|) (recursive summation):
  // bounded by n 2^-52 x a, which leaves room for a's own rounding.
  const r = s + c;
  const z = r - s;
  const e = s - (r - z) + (c - z);
  if (a === 0 && e === 0 && Number.isFinite(r)) return r + 0; // every addition was exact
  // The exact sum rounds to r when r + e + d lies strictly inside r's rounding interval: half the
  // gap to each neighbour (the one toward zero is half as far at a power of two). From r's bits.
  SUM_BITS[0] = r;
  const high = SUM_WORDS[HIGH_WORD];
  const exp = (high >>> 20) & 0x7ff;
  if (exp > 24 && exp < 2047) {
    const half = 2 ** (exp - 1076); // half of r's ulp, 2^(exp - 1075)
    const towardZero = (high & 0xfffff) === 0 && SUM_WORDS[1 - HIGH_WORD] === 0 ? half / 2 : half;
    const b = (to - from) * 2 ** -52 * a * (1 + 2 ** -20);
    const up = (r > 0 ? half : towardZero) * (1 - 2 ** -20);
    const down = (r > 0 ? towardZero : half) * (1 - 2 ** -20);
    if (e + b < up && e - b > -down) return r;
  }
  exact.reset();
  for (let i = from; i < to; i++) exact.add(X[i]);
  return exact.sum();
}

/** The correctly rounded value of partials (the first `len`; as Python's math.fsum); never -0. */
export function psum(p: ArrayLike<number>, len = p.length): number {
  let n = len;
  if (n === 0) return 0;
  let hi = p[--n];
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = p[--n];
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  if (n > 0 && ((lo < 0 && p[n - 1] < 0) || (lo > 0 && p[n - 1] > 0))) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  return hi + 0;
}

/**
 * An event's value for one slot as the state receives it: a text, or a number where the caller has
 * one (a base feature) — the same as its String(), without the round trip through a text.
 */
export type SlotValue = string | number;

/** A value slot as a number: not a number -> 0, and never -0. */
export function numericValue(raw: SlotValue): number {
  const x = Number(raw);
  return Number.isNaN(x) ? 0 : x + 0;
}

// ---- state ----

/**
 * An event on its way into a window state (applied, loaded, or handed from a small entity to a big
 * one; neither keeps the object): time, apply sequence (orders ties), its values per slot and the
 * stored fragment holding it (0: not stored yet). A slot read only as a number holds the number; a
 * slot read as a distinct value holds the text (`num` parses it where it is also read as a number).
 */
interface Ev {
  t: number;
  s: number;
  v: Vals;
  fid: number;
}

type Vals = Array<string | number>;

/** A slot's value as a number. */
function num(v: Vals, slot: number): number {
  const x = v[slot];
  return typeof x === 'number' ? x : numericValue(x);
}

/** A distinct slot's value (always held as text). */
function str(v: Vals, slot: number): string {
  return v[slot] as string;
}

/** Count, exact sums, min and max of some events (a block of buckets). */
class Summary {
  n = 0;
  // Slot-indexed, sized once (an array grown by assignment reserves 17 elements).
  readonly s: number[][];
  readonly mn: number[];
  readonly mx: number[];

  constructor(plan: SetPlan) {
    this.s = new Array<number[]>(plan.slots);
    this.mn = new Array<number>(plan.slots);
    this.mx = new Array<number>(plan.slots);
    for (const slot of plan.num) {
      this.s[slot] = [];
      this.mn[slot] = Infinity;
      this.mx[slot] = -Infinity;
    }
  }

  /** Adds the event at column index i of a BigWindow's number columns. */
  addAt(plan: SetPlan, X: readonly Float64Array[], i: number): void {
    this.n++;
    for (const slot of plan.num) {
      const x = X[slot][i];
      padd(this.s[slot], x);
      if (x < this.mn[slot]) this.mn[slot] = x;
      if (x > this.mx[slot]) this.mx[slot] = x;
    }
  }
}

/** BigWindow.scoreRange's scratch: one window's count, exact sums, min and max (slot-indexed). */
const RANGE: { n: number; s: number[][]; mn: number[]; mx: number[] } = { n: 0, s: [], mn: [], mx: [] };
/** BigWindow.scoreRange's scratch: per window, the events in it (chooses how a distinct count is read). */
const RANGE_N: number[] = [];
/**
 * A distinct count reads the window's events while they are at most this many times the values
 * held, else each value's times (a binary search each): a scan compares two numbers per event.
 */
const SCAN_PER_VALUE = 8;

/** Binary heap of (value, bucket) pairs, max or min first; entries of buckets below `lo` are dropped lazily. */
class BucketHeap {
  private v: number[] = [];
  private b: number[] = [];
  constructor(private readonly max: boolean) {}

  get size(): number {
    return this.v.length;
  }

  clear(): void {
    this.v = [];
    this.b = [];
  }

  private above(i: number, j: number): boolean {
    return this.max ? this.v[i] > this.v[j] : this.v[i] < this.v[j];
  }

  private swap(i: number, j: number): void {
    const v = this.v[i];
    this.v[i] = this.v[j];
    this.v[j] = v;
    const b = this.b[i];
    this.b[i] = this.b[j];
    this.b[j] = b;
  }

  push(x: number, bucket: number): void {
    this.v.push(x);
    this.b.push(bucket);
    let i = this.v.length - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (!this.above(i, up)) break;
      this.swap(i, up);
      i = up;
    }
  }

  private pop(): void {
    const last = this.v.length - 1;
    this.swap(0, last);
    this.v.pop();
    this.b.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.v.length && this.above(l, m)) m = l;
      if (r < this.v.length && this.above(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
  }

  /** The extreme over buckets >= lo (undefined when none). */
  top(lo: number): number | undefined {
    while (this.v.length > 0 && this.b[0] < lo) this.pop();
    return this.v.length > 0 ? this.v[0] : undefined;
  }
}

/** A window's running aggregate over buckets [lo, newest]: valid for events in event-time order. */
interface Acc {
  lo: number;
  n: number;
  s: number[][];
  mn: BucketHeap[];
  mx: BucketHeap[];
  d: Array<Map<string, number>>;
}

/** What applying one event did to the state's size. */
export interface ApplyEffect {
  newBucket: boolean;
  evictedBuckets: number;
  evictedEvents: number;
}

/**
 * The effect an apply returns: one object, reused by every apply (its caller reads it before the
 * next one) — an object per applied event was a tenth of what enrichment allocated.
 */
const EFFECT: ApplyEffect = { newBucket: false, evictedBuckets: 0, evictedEvents: 0 };

function effectOf(newBucket: boolean): ApplyEffect {
  EFFECT.newBucket = newBucket;
  EFFECT.evictedBuckets = 0;
  EFFECT.evictedEvents = 0;
  return EFFECT;
}

/** Lower bound: first index in the ascending array with a[i] >= x. */
function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Upper bound: first index in the ascending array with a[i] > x. */
function upperBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const fieldOf = (bucket: number, id: number) => `b${bucket}:${id}`;

/** Events from which a bucket of a big entity keeps a summary (BigWindow.bsum). */
const BUCKET_SUMMARY_EVENTS = 4;
/**
 * Events from which a block of F buckets keeps a summary (BigWindow.blocks). A sparse block (a
 * card with a few events an hour) is read as its buckets instead: a summary holds four arrays
 * (~700 bytes) and costs a scan about what its few events cost, so summarising every block made
 * summaries the largest part of a grown demo stage's heap (72,700 of them for 200,000 events).
 */
const BLOCK_SUMMARY_EVENTS = 8;

/**
 * A small entity whose events mostly come in event-time order becomes a big one from this many
 * events (whatever `small` is): in order, a big entity scores from its running accumulators at
 * ~3 µs whatever its window holds, while a small one's scans cost about as much at 128-256 events
 * (measured with the demo's set: 4 against 2.5-4 µs at 256, 18-20 against 3-4 µs at 1,024). Out of
 * order, a big entity reads summaries and sparse blocks' events, and a small one's scans of
 * contiguous numbers stay cheaper up to ~4,000 events and beyond (the default `small` is 4,096).
 */
const IN_ORDER_BIG_EVENTS = 128;

/** See EntityWindowState.approxBytes. */
const ENTITY_BYTES = 2048;
const EVENT_BYTES = 250;
const SLOT_BYTES = 60;
/** A distinct slot's text per held event: its pointer (texts are shared per set, TextInterner) and a share of the text. */
const SMALL_TEXT_BYTES = 16;

/** An event's held values from its raw text: numbers for the slots read only as numbers. */
function valuesOf(plan: SetPlan, raw: readonly SlotValue[]): Vals {
  return slotValuesInto(plan, raw, 0, raw.length, new Array<string | number>(raw.length));
}

/** raw[at .. at + n) as held values (numbers for numeric-only slots, interned texts otherwise), written into v. */
function slotValuesInto(plan: SetPlan, raw: readonly SlotValue[], at: number, n: number, v: Vals): Vals {
  for (let slot = 0; slot < n; slot++) {
    const x = raw[at + slot];
    v[slot] = plan.numOnly[slot] ? numericValue(x) : plan.texts.intern(String(x));
  }
  return v;
}

/**
 * The event an apply hands its window: one object and, per set plan, one values array, reused by
 * every apply (neither window keeps them: they copy the numbers and texts into their columns).
 */
const APPLY_EV: Ev = { t: 0, s: 0, v: [], fid: 0 };
const APPLY_VALS = new WeakMap<SetPlan, Vals>();

/** APPLY_EV holding an event at t whose slot values are raw[at ...] (plan.slots of them). */
function applyEvent(plan: SetPlan, t: number, s: number, raw: readonly SlotValue[], at: number): Ev {
  let v = APPLY_VALS.get(plan);
  if (!v) APPLY_VALS.set(plan, (v = new Array<string | number>(plan.slots)));
  slotValuesInto(plan, raw, at, plan.slots, v);
  APPLY_EV.t = t;
  APPLY_EV.s = s;
  APPLY_EV.v = v;
  APPLY_EV.fid = 0;
  return APPLY_EV;
}

/**
 * A 32-bit hash of a text (FNV-1a over its UTF-16 units). A small entity compares its events'
 * values by this number first: the numbers sit in one contiguous array, while each text is an
 * object of its own (a cache miss per event compared).
 */
function textHash(x: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < x.length; i++) h = Math.imul(h ^ x.charCodeAt(i), 0x01000193);
  return h | 0;
}

/**
 * The buckets an entity changed since its last write: up to DIRTY_INLINE numbers held in an array
 * of its own, a Set past that. A Set per entity was emptied by every write, and Set#clear
 * allocates a new table: one allocation per entity and batch written.
 */
const DIRTY_INLINE = 8;
class DirtyBuckets {
  private readonly a: number[] = [];
  private n = 0;
  private more: Set<number> | undefined;

  get size(): number {
    return this.n + (this.more === undefined ? 0 : this.more.size);
  }

  add(B: number): void {
    for (let k = 0; k < this.n; k++) if (this.a[k] === B) return;
    if (this.more !== undefined) this.more.add(B);
    else if (this.n < DIRTY_INLINE) this.a[this.n++] = B;
    else this.more = new Set([B]);
  }

  delete(B: number): void {
    for (let k = 0; k < this.n; k++) {
      if (this.a[k] === B) {
        this.a[k] = this.a[--this.n];
        return;
      }
    }
    this.more?.delete(B);
  }

  /** Moves the buckets into `out` (from index 0) and empties; returns how many. */
  takeInto(out: number[]): number {
    let c = 0;
    for (let k = 0; k < this.n; k++) out[c++] = this.a[k];
    if (this.more !== undefined) for (const B of this.more) out[c++] = B;
    this.n = 0;
    this.more = undefined;
    return c;
  }
}

/** writeWrites' scratch: the dirty buckets of the entity being written. */
const DIRTY_LIST: number[] = [];

/**
 * A window's columns as the fragment writer reads one bucket's events (BigWindow and SmallWindow
 * implement it with methods: no closures or row arrays per bucket written).
 */
interface FragmentColumns {
  fidAt(i: number): number;
  setFidAt(i: number, id: number): void;
  seqAt(i: number): number;
  timeAt(i: number): number;
  /** Slot `slot`'s number (a numeric-only slot) or text of column index i. */
  numAt(slot: number, i: number): number;
  textAt(slot: number, i: number): string;
}

/** planFragment's scratch: the runs of one bucket (fid and length), newest last. */
const RUN_ID: number[] = [];
const RUN_N: number[] = [];
/**
 * writeWrites' scratch: one bucket's column indexes in apply order, its first BUCKET_N entries
 * (reused with a count: `length = 0` would drop the array's storage and the next push allocate it again).
 */
const BUCKET_AT: number[] = [];
let BUCKET_N = 0;

/** Sorts BUCKET_AT's first BUCKET_N column indexes by their sequence (apply order). */
function sortBucketBySeq(cols: FragmentColumns): void {
  const at = BUCKET_AT;
  const n = BUCKET_N;
  if (n > 16) {
    // A large bucket (rare): the library sort (it allocates a work copy), on an array of just these.
    const part = at.slice(0, n).sort((a, b) => cols.seqAt(a) - cols.seqAt(b));
    for (let x = 0; x < n; x++) at[x] = part[x];
    return;
  }
  for (let x = 1; x < n; x++) {
    const v = at[x];
    const sv = cols.seqAt(v);
    let y = x - 1;
    while (y >= 0 && cols.seqAt(at[y]) > sv) {
      at[y + 1] = at[y];
      y--;
    }
    at[y + 1] = v;
  }
}

/**
 * The fragments an entity writes this commit, planned before any is written (the fields they
 * merge away are deleted first, and the message lists deletions before writes): fragment k is
 * field b<FRAG_B[k]>:<FRAG_ID[k]> holding the rows FRAG_ROWS[FRAG_AT[k] .. FRAG_AT[k + 1]).
 */
const FRAG_B: number[] = [];
const FRAG_ID: number[] = [];
const FRAG_AT: number[] = [0];
const FRAG_ROWS: number[] = [];
let FRAGS = 0;

/**
 * Plans the store of one bucket's new events: its events in apply order (`at`: column indexes)
 * end with the ones not stored yet; stored ones form fragments (runs of one fid). The new events
 * become a fragment, merged with the previous ones while those are not larger (a binary counter:
 * O(log n) fragments per bucket and O(log n) rewrites per event). Pushes the fields merged away
 * to `del` and the fragment to write to the FRAG_ scratch.
 */
function planFragment(B: number, cols: FragmentColumns, del: string[]): void {
  const at = BUCKET_AT;
  const n = BUCKET_N;
  let runs = 0;
  for (let x = 0; x < n; x++) {
    const fid = cols.fidAt(at[x]);
    if (runs > 0 && RUN_ID[runs - 1] === fid) RUN_N[runs - 1]++;
    else {
      RUN_ID[runs] = fid;
      RUN_N[runs] = 1;
      runs++;
    }
  }
  if (runs === 0 || RUN_ID[runs - 1] !== 0) return; // nothing new
  while (runs >= 2 && RUN_N[runs - 2] <= RUN_N[runs - 1]) {
    runs--;
    if (RUN_ID[runs] !== 0) del.push(fieldOf(B, RUN_ID[runs]));
    RUN_N[runs - 1] += RUN_N[runs];
  }
  const from = n - RUN_N[runs - 1];
  const id = RUN_ID[runs - 1] !== 0 ? RUN_ID[runs - 1] : cols.seqAt(at[from]);
  let r = FRAG_AT[FRAGS];
  for (let x = from; x < n; x++) {
    cols.setFidAt(at[x], id);
    FRAG_ROWS[r++] = at[x];
  }
  FRAG_B[FRAGS] = B;
  FRAG_ID[FRAGS] = id;
  FRAG_AT[++FRAGS] = r;
}

/**
 * Writes the stored row of column index i into the open string: `[time,seq,"num"|"text",...]`,
 * the text JSON.stringify gives the row (a number is stored as its text, quoted).
 */
function writeRow(w: PackWriter, plan: SetPlan, cols: FragmentColumns, i: number): void {
  w.byte(0x5b); // '['
  w.number(cols.timeAt(i));
  w.byte(0x2c); // ','
  w.number(cols.seqAt(i));
  for (let slot = 0; slot < plan.slots; slot++) {
    w.byte(0x2c);
    if (plan.numOnly[slot]) {
      w.byte(0x22);
      w.number(cols.numAt(slot, i));
      w.byte(0x22);
    } else w.jsonString(cols.textAt(slot, i));
  }
  w.byte(0x5d); // ']'
}

/**
 * Writes an entity's planned changes as stream-commit.lua reads them: [fields to delete] then
 * [field, value, ...], each value a fragment's rows as one JSON array (the same text as
 * JSON.stringify of the rows), written as bytes.
 */
function writePlanned(w: PackWriter, plan: SetPlan, cols: FragmentColumns, del: readonly string[]): void {
  w.array(del.length);
  for (const f of del) w.str(f);
  w.array(2 * FRAGS);
  for (let k = 0; k < FRAGS; k++) {
    let m = w.openStr();
    w.byte(0x62); // 'b'
    w.number(FRAG_B[k]);
    w.byte(0x3a); // ':'
    w.number(FRAG_ID[k]);
    w.closeStr(m);
    m = w.openStr();
    w.byte(0x5b); // '['
    for (let r = FRAG_AT[k]; r < FRAG_AT[k + 1]; r++) {
      if (r > FRAG_AT[k]) w.byte(0x2c); // ','
      writeRow(w, plan, cols, FRAG_ROWS[r]);
    }
    w.byte(0x5d); // ']'
    w.closeStr(m);
  }
  FRAGS = 0;
}

/**
 * Bucket summaries, blocks and window accumulators: flat cost per event whatever the window holds.
 *
 * Storage: the held events live in columns — typed arrays of times, sequences, fragment ids and
 * numbers per numeric slot, an array of texts per distinct slot — in apply order; a bucket is a
 * linked list of its events (`NX`: next event of the same bucket, `bhead`/`btail` per bucket, `bid`
 * ascending), so an event lands in any bucket in O(1) and a bucket lists its events in apply
 * order. There is no object per event or per bucket, so the garbage collector traces O(entities)
 * however many events the windows hold (the distinct slots' texts aside), and an event costs 8
 * bytes per column (a retained heap of ~1.6 kB per event with an object per event and per bucket
 * made a grown demo stage spend seconds in full collections). Evicted events leave dead slots;
 * the columns are compacted when the dead outnumber the live (amortised O(1) per event).
 */
class BigWindow {
  private cap: number;
  /** Column slots used (live and dead). */
  private len = 0;
  /** Dead (evicted) slots among them. */
  private dead = 0;
  private T: Float64Array;
  private S: Float64Array;
  private FID: Float64Array;
  /** Next event of the same bucket, in apply order (-1: last). */
  private NX: Int32Array;
  /** Per slot read as a number (or only stored): its numbers. */
  private X: Float64Array[] = [];
  /** Per distinct slot: its texts, aligned with the columns (length len). */
  private D: string[][] = [];
  /**
   * Per distinct slot: the time of the previous event (by time, then sequence) with the same value,
   * -Infinity when none is held. A window [lo, t] holds as many distinct values as it holds events
   * whose previous occurrence is before lo — a count of numbers, with no set of values to build
   * (the distinct count was the largest cost of an out-of-order event).
   */
  private PV: Float64Array[] = [];
  /** Bucket ids present, ascending; per bucket its first and last event (column index) and count. */
  private bid: number[] = [];
  private bhead: number[] = [];
  private btail: number[] = [];
  private bcount: number[] = [];
  /**
   * Per bucket, a summary once it holds BUCKET_SUMMARY_EVENTS events (undefined before): an
   * out-of-order event reads the buckets at its window's edges, and a busy bucket is then one
   * summary instead of its events. Few buckets are busy when events are spread out (no summary
   * per event), and a busy one spreads its summary over many events.
   */
  private bsum: Array<Summary | undefined> = [];
  /**
   * Per block of F buckets with events: its summary once it holds BLOCK_SUMMARY_EVENTS events,
   * before that its event count (a sparse block is read as its buckets).
   */
  private readonly blocks = new Map<number, Summary | number>();
  /** Greatest event time applied (-Infinity: none). */
  mt = -Infinity;
  /** The latest applied event (by time, then sequence): time, sequence, numbers by slot. */
  private lt = -Infinity;
  private ls = -1;
  private readonly lvx: number[] = [];
  seq = 0;
  private readonly accs: Array<Acc | undefined>;
  /**
   * Per distinct slot: value -> ascending times of its applied events (out-of-order distinct
   * counts); a value seen once holds its time as a number (most do: no array per event).
   */
  private readonly dvals: Array<Map<string, number | number[]>> = [];
  /** The block the retention cut lies in: partly evicted, so never read whole. */
  private cutBlock = -Infinity;
  /** Buckets holding events not stored yet. */
  private readonly dirty = new DirtyBuckets();
  removed: string[] = [];

  constructor(
    private readonly plan: SetPlan,
    capacity = 64,
  ) {
    this.accs = plan.wins.map(() => undefined);
    for (const slot of plan.dis) this.dvals[slot] = new Map();
    this.cap = capacity;
    this.T = new Float64Array(capacity);
    this.S = new Float64Array(capacity);
    this.FID = new Float64Array(capacity);
    this.NX = new Int32Array(capacity);
    for (const slot of this.plan.xs) this.X[slot] = new Float64Array(capacity);
    for (const slot of plan.dis) {
      this.D[slot] = [];
      this.PV[slot] = new Float64Array(capacity);
    }
  }

  /** Events held (applied, not evicted). */
  get held(): number {
    return this.len - this.dead;
  }

  /** Builds the state from events in apply (sequence) order. */
  static build(plan: SetPlan, events: readonly Ev[]): BigWindow {
    let cap = 64;
    while (cap < events.length) cap *= 2;
    const st = new BigWindow(plan, cap);
    const R = plan.R;
    for (const e of events) {
      const B = Math.floor(e.t / R);
      const i = st.push(e);
      st.link(i, B);
      if (e.fid === 0) st.dirty.add(B);
      if (e.s > st.seq) st.seq = e.s;
      st.addToBlock(B, i);
      st.noteLatest(i);
      for (const slot of plan.dis) st.indexValue(slot, i);
      if (e.t > st.mt) st.mt = e.t;
    }
    if (events.length > 0) {
      st.cutBlock = Math.floor(Math.floor((st.mt - plan.ret) / R) / plan.F);
      plan.wins.forEach((w, wi) => {
        if (!w.acc) return;
        const acc = st.newAcc(wi, startBucket(w, st.mt, R));
        for (let bi = lowerBound(st.bid, acc.lo); bi < st.bid.length; bi++) st.accAddBucket(wi, acc, bi);
      });
    }
    return st;
  }

  /** Appends event e to the columns (not to a bucket yet: `link`); returns its column index. */
  private push(e: Ev): number {
    if (this.len === this.cap) this.relayout(this.dead * 2 >= this.cap ? this.cap : this.cap * 2);
    const i = this.len++;
    this.T[i] = e.t;
    this.S[i] = e.s;
    this.FID[i] = e.fid;
    this.NX[i] = -1;
    for (const slot of this.plan.xs) this.X[slot][i] = num(e.v, slot);
    for (const slot of this.plan.dis) this.D[slot][i] = str(e.v, slot);
    return i;
  }

  /** Puts column index i at the end of bucket B's list; true when that made a new bucket. */
  private link(i: number, B: number): boolean {
    const n = this.bid.length;
    // Events mostly arrive in time order: the newest bucket first, then a binary search.
    const bi = n > 0 && this.bid[n - 1] === B ? n - 1 : n > 0 && this.bid[n - 1] < B ? n : lowerBound(this.bid, B);
    if (bi < n && this.bid[bi] === B) {
      this.NX[this.btail[bi]] = i;
      this.btail[bi] = i;
      const count = ++this.bcount[bi];
      const sum = this.bsum[bi];
      if (sum) sum.addAt(this.plan, this.X, i);
      else if (count >= BUCKET_SUMMARY_EVENTS) {
        const k = new Summary(this.plan);
        for (let j = this.bhead[bi]; j >= 0; j = this.NX[j]) k.addAt(this.plan, this.X, j);
        this.bsum[bi] = k;
      }
      return false;
    }
    if (bi === n) {
      this.bid.push(B);
      this.bhead.push(i);
      this.btail.push(i);
      this.bcount.push(1);
      this.bsum.push(undefined);
    } else {
      this.bid.splice(bi, 0, B);
      this.bhead.splice(bi, 0, i);
      this.btail.splice(bi, 0, i);
      this.bcount.splice(bi, 0, 1);
      this.bsum.splice(bi, 0, undefined);
    }
    return true;
  }

  /**
   * Moves the live events (bucket by bucket, each in apply order) to the start of columns of
   * capacity cap, dropping the dead slots.
   */
  private relayout(cap: number): void {
    const T = new Float64Array(cap);
    const S = new Float64Array(cap);
    const FID = new Float64Array(cap);
    const NX = new Int32Array(cap);
    const X: Float64Array[] = [];
    for (const slot of this.plan.xs) X[slot] = new Float64Array(cap);
    const D: string[][] = [];
    const PV: Float64Array[] = [];
    for (const slot of this.plan.dis) {
      D[slot] = [];
      PV[slot] = new Float64Array(cap);
    }
    let j = 0;
    for (let bi = 0; bi < this.bid.length; bi++) {
      const first = this.bhead[bi];
      this.bhead[bi] = j;
      for (let i = first; i >= 0; i = this.NX[i]) {
        T[j] = this.T[i];
        S[j] = this.S[i];
        FID[j] = this.FID[i];
        NX[j] = j + 1;
        for (const slot of this.plan.xs) X[slot][j] = this.X[slot][i];
        for (const slot of this.plan.dis) {
          D[slot][j] = this.D[slot][i];
          PV[slot][j] = this.PV[slot][i];
        }
        j++;
      }
      NX[j - 1] = -1;
      this.btail[bi] = j - 1;
    }
    this.T = T;
    this.S = S;
    this.FID = FID;
    this.NX = NX;
    this.X = X;
    this.D = D;
    this.PV = PV;
    this.len = j;
    this.dead = 0;
    this.cap = cap;
  }

  private noteLatest(i: number): void {
    const t = this.T[i];
    const s = this.S[i];
    if (t > this.lt || (t === this.lt && s > this.ls)) {
      this.lt = t;
      this.ls = s;
      for (const slot of this.plan.xs) this.lvx[slot] = this.X[slot][i];
    }
  }

  /** Counts the event at column index i (linked in bucket B already) in its block; summarises a block that became dense. */
  private addToBlock(B: number, i: number): void {
    const { plan } = this;
    const K = Math.floor(B / plan.F);
    const k = this.blocks.get(K);
    if (typeof k === 'object') {
      k.addAt(plan, this.X, i);
      return;
    }
    const n = (k ?? 0) + 1;
    if (n < BLOCK_SUMMARY_EVENTS) {
      this.blocks.set(K, n);
      return;
    }
    // Dense now: a summary of the block's held events (i among them).
    const sum = new Summary(plan);
    const end = (K + 1) * plan.F;
    for (let bi = lowerBound(this.bid, K * plan.F); bi < this.bid.length && this.bid[bi] < end; bi++) {
      for (let j = this.bhead[bi]; j >= 0; j = this.NX[j]) sum.addAt(plan, this.X, j);
    }
    this.blocks.set(K, sum);
  }

  /**
   * Indexes the distinct value of the event at column index i (linked in its bucket already, the
   * greatest sequence applied): its time among the value's times, its previous occurrence, and
   * the next occurrence's previous one, which is now this event. O(log n) plus one bucket's events.
   */
  private indexValue(slot: number, i: number): void {
    const v = this.D[slot][i];
    const t = this.T[i];
    const m = this.dvals[slot];
    const times = m.get(v);
    // i has the greatest sequence: it comes after every event of its value at its time.
    let prev = -Infinity;
    let next = Infinity;
    if (times === undefined) m.set(v, t);
    else if (typeof times === 'number') {
      if (times <= t) prev = times;
      else next = times;
      m.set(v, times <= t ? [times, t] : [t, times]);
    } else {
      const at = upperBound(times, t);
      if (at > 0) prev = times[at - 1];
      if (at < times.length) next = times[at];
      times.splice(at, 0, t);
    }
    this.PV[slot][i] = prev;
    if (next === Infinity) return;
    // The next occurrence: the first applied event of the value at time `next` (a bucket's list is in apply order).
    const bi = lowerBound(this.bid, Math.floor(next / this.plan.R));
    const D = this.D[slot];
    for (let j = this.bhead[bi]; j >= 0; j = this.NX[j]) {
      if (this.T[j] === next && D[j] === v) {
        this.PV[slot][j] = t;
        return;
      }
    }
  }

  private newAcc(wi: number, lo: number): Acc {
    const w = this.plan.wins[wi];
    const acc: Acc = { lo, n: 0, s: [], mn: [], mx: [], d: [] };
    for (const slot of w.sm) acc.s[slot] = [];
    for (const slot of w.mn) acc.mn[slot] = new BucketHeap(false);
    for (const slot of w.mx) acc.mx[slot] = new BucketHeap(true);
    for (const slot of w.ds) acc.d[slot] = new Map();
    this.accs[wi] = acc;
    return acc;
  }

  /** The extreme of a slot over bucket index bi's events (min or max). */
  private extreme(slot: number, bi: number, max: boolean): number {
    const sum = this.bsum[bi];
    if (sum) return max ? sum.mx[slot] : sum.mn[slot];
    const X = this.X[slot];
    let i = this.bhead[bi];
    let v = X[i];
    for (i = this.NX[i]; i >= 0; i = this.NX[i]) if (max ? X[i] > v : X[i] < v) v = X[i];
    return v;
  }

  /** Adds a whole bucket (index bi) to an accumulator (rebuilds). */
  private accAddBucket(wi: number, acc: Acc, bi: number): void {
    const w = this.plan.wins[wi];
    const B = this.bid[bi];
    acc.n += this.bcount[bi];
    const sum = this.bsum[bi];
    for (const slot of w.sm) {
      if (sum) for (const x of sum.s[slot]) padd(acc.s[slot], x);
      else for (let i = this.bhead[bi]; i >= 0; i = this.NX[i]) padd(acc.s[slot], this.X[slot][i]);
    }
    for (const slot of w.mn) acc.mn[slot].push(this.extreme(slot, bi, false), B);
    for (const slot of w.mx) acc.mx[slot].push(this.extreme(slot, bi, true), B);
    for (const slot of w.ds) {
      const d = acc.d[slot];
      const D = this.D[slot];
      for (let i = this.bhead[bi]; i >= 0; i = this.NX[i]) d.set(D[i], (d.get(D[i]) ?? 0) + 1);
    }
  }

  /** Moves an accumulator forward to start at bucket newLo (whole buckets leave it). */
  private accEvict(wi: number, acc: Acc, newLo: number): void {
    const w = this.plan.wins[wi];
    for (let bi = lowerBound(this.bid, acc.lo); bi < this.bid.length && this.bid[bi] < newLo; bi++) {
      acc.n -= this.bcount[bi];
      const sum = this.bsum[bi];
      for (const slot of w.sm) {
        if (sum) for (const x of sum.s[slot]) padd(acc.s[slot], -x);
        else for (let i = this.bhead[bi]; i >= 0; i = this.NX[i]) padd(acc.s[slot], -this.X[slot][i]);
      }
      for (const slot of w.ds) {
        const d = acc.d[slot];
        const D = this.D[slot];
        for (let i = this.bhead[bi]; i >= 0; i = this.NX[i]) {
          const c = d.get(D[i])! - 1;
          if (c <= 0) d.delete(D[i]);
          else d.set(D[i], c);
        }
      }
    }
    acc.lo = newLo;
    // Heaps keep stale entries until they surface; rebuild when they dominate (amortised O(1)).
    if (w.mn.length + w.mx.length > 0 && this.heapSize(acc) > 4 * acc.n + 64) {
      for (const slot of w.mn) acc.mn[slot].clear();
      for (const slot of w.mx) acc.mx[slot].clear();
      for (let bi = lowerBound(this.bid, acc.lo); bi < this.bid.length; bi++) {
        for (const slot of w.mn) acc.mn[slot].push(this.extreme(slot, bi, false), this.bid[bi]);
        for (const slot of w.mx) acc.mx[slot].push(this.extreme(slot, bi, true), this.bid[bi]);
      }
    }
  }

  private heapSize(acc: Acc): number {
    let n = 0;
    for (const h of acc.mn) if (h) n = Math.max(n, h.size);
    for (const h of acc.mx) if (h) n = Math.max(n, h.size);
    return n;
  }

  /** The aggregations as of an event at t (not applied yet), written to out[at ...]. */
  scoreInto(t: number, out: Float64Array, at: number): void {
    if (t >= this.mt) this.scoreInOrder(t, out, at);
    else this.scoreRange(t, out, at);
  }

  /** In event-time order: every accumulator moved to t's window holds exactly its window. */
  private scoreInOrder(t: number, out: Float64Array, at: number): void {
    const { plan } = this;
    const R = plan.R;
    for (let wi = 0; wi < plan.wins.length; wi++) {
      const w = plan.wins[wi];
      if (!w.acc) continue;
      const sb = startBucket(w, t, R);
      const acc = this.accs[wi];
      if (acc === undefined) this.newAcc(wi, sb);
      else if (sb > acc.lo) this.accEvict(wi, acc, sb);
    }
    for (let ai = 0; ai < plan.aggs.length; ai++) {
      const a = plan.aggs[ai];
      const acc = this.accs[a.w]!;
      let v: number;
      switch (a.k) {
        case 'count':
          v = acc.n;
          break;
        case 'sum':
          v = psum(acc.s[a.f]);
          break;
        case 'mean':
          v = acc.n > 0 ? psum(acc.s[a.f]) / acc.n : a.d;
          break;
        case 'min':
          v = acc.n > 0 ? acc.mn[a.f].top(acc.lo)! : a.d;
          break;
        case 'max':
          v = acc.n > 0 ? acc.mx[a.f].top(acc.lo)! : a.d;
          break;
        case 'distinct_count':
          v = acc.n > 0 ? acc.d[a.f].size : 0;
          break;
        default: // last, time_since_prev: the latest applied event, if its bucket is in the window
          if (Math.floor(this.lt / R) >= startBucket(plan.wins[a.w], t, R)) v = a.k === 'last' ? this.lvx[a.f] : t - this.lt;
          else v = a.d;
      }
      out[at + ai] = v;
    }
  }

  /** The aggregations as of t without touching the state (a replay whose stored vector is gone). */
  scoreReadOnlyInto(t: number, out: Float64Array, at: number): void {
    this.scoreRange(t, out, at);
  }

  /**
   * Any event time (read only): summaries of the window's buckets before t's, and t's bucket up to
   * t. Runs for every out-of-order event, so it allocates nothing: each window's count, exact
   * sums, min and max gather in one scratch (RANGE), read out before the next window.
   */
  private scoreRange(t: number, out: Float64Array, at: number): void {
    const { plan } = this;
    const R = plan.R;
    const B = Math.floor(t / R);
    const obi = lowerBound(this.bid, B);
    const own = obi < this.bid.length && this.bid[obi] === B;
    const g = RANGE;
    for (let wi = 0; wi < plan.wins.length; wi++) {
      const w = plan.wins[wi];
      if (!w.acc) continue;
      const sb = startBucket(w, t, R);
      g.n = 0;
      for (const slot of w.sm) (g.s[slot] ??= []).length = 0;
      for (const slot of w.mn) g.mn[slot] = Infinity;
      for (const slot of w.mx) g.mx[slot] = -Infinity;
      this.rangeInto(w, sb, B - 1);
      // t's own bucket counts its events up to t.
      if (own && B >= sb) for (let i = this.bhead[obi]; i >= 0; i = this.NX[i]) if (this.T[i] <= t) this.takeEvent(w, i);
      RANGE_N[wi] = g.n;
      for (let ai = 0; ai < plan.aggs.length; ai++) {
        const a = plan.aggs[ai];
        if (a.w !== wi || !TOTALS.has(a.k)) continue;
        switch (a.k) {
          case 'count':
            out[at + ai] = g.n;
            break;
          case 'sum':
            out[at + ai] = psum(g.s[a.f]);
            break;
          case 'mean':
            out[at + ai] = g.n > 0 ? psum(g.s[a.f]) / g.n : a.d;
            break;
          case 'min':
            out[at + ai] = g.n > 0 ? g.mn[a.f] : a.d;
            break;
          case 'max':
            out[at + ai] = g.n > 0 ? g.mx[a.f] : a.d;
            break;
        }
      }
    }
    for (let ai = 0; ai < plan.aggs.length; ai++) {
      const a = plan.aggs[ai];
      if (TOTALS.has(a.k)) continue;
      const sb = startBucket(plan.wins[a.w], t, R);
      if (a.k === 'distinct_count') {
        out[at + ai] = RANGE_N[a.w] <= SCAN_PER_VALUE * this.dvals[a.f].size ? this.distinctScan(a.f, sb, B, t) : this.distinctIn(a.f, sb * R, t);
        continue;
      }
      // last, time_since_prev: the latest event (time, then sequence) of t's bucket up to t, else of
      // the newest bucket before it in the window.
      let li = -1;
      if (own) for (let i = this.bhead[obi]; i >= 0; i = this.NX[i]) if (this.T[i] <= t && this.later(i, li)) li = i;
      if (li < 0 && sb <= B - 1) {
        const bi = obi - 1; // the newest bucket before B
        if (bi >= 0 && this.bid[bi] >= sb) for (let i = this.bhead[bi]; i >= 0; i = this.NX[i]) if (this.later(i, li)) li = i;
      }
      if (li < 0) out[at + ai] = a.d;
      else out[at + ai] = a.k === 'last' ? this.X[a.f][li] : t - this.T[li];
    }
  }

  /** Whether the event at column index i is later (time, then sequence) than the one at li (none: -1). */
  private later(i: number, li: number): boolean {
    return li < 0 || this.T[i] > this.T[li] || (this.T[i] === this.T[li] && this.S[i] > this.S[li]);
  }

  /** Adds a summary to RANGE (window w's slots). */
  private takeSummary(w: WindowPlan, r: Summary): void {
    const g = RANGE;
    g.n += r.n;
    for (const slot of w.sm) {
      const p = g.s[slot];
      for (const x of r.s[slot]) padd(p, x);
    }
    for (const slot of w.mn) if (r.mn[slot] < g.mn[slot]) g.mn[slot] = r.mn[slot];
    for (const slot of w.mx) if (r.mx[slot] > g.mx[slot]) g.mx[slot] = r.mx[slot];
  }

  /** Adds the event at column index i to RANGE (window w's slots). */
  private takeEvent(w: WindowPlan, i: number): void {
    const g = RANGE;
    g.n++;
    for (const slot of w.sm) padd(g.s[slot], this.X[slot][i]);
    for (const slot of w.mn) g.mn[slot] = Math.min(g.mn[slot], this.X[slot][i]);
    for (const slot of w.mx) g.mx[slot] = Math.max(g.mx[slot], this.X[slot][i]);
  }

  /** Adds bucket index bi to RANGE: its summary where it has one, else its events. */
  private takeBucket(w: WindowPlan, bi: number): void {
    const sum = this.bsum[bi];
    if (sum) this.takeSummary(w, sum);
    else for (let i = this.bhead[bi]; i >= 0; i = this.NX[i]) this.takeEvent(w, i);
  }

  /**
   * Adds buckets [lo, hi] to RANGE: the summaries of the dense blocks wholly inside, the other
   * buckets by index — the edges (up to 2 F buckets) and the sparse blocks (fewer than
   * BLOCK_SUMMARY_EVENTS events each).
   */
  private rangeInto(w: WindowPlan, lo: number, hi: number): void {
    if (lo > hi) return;
    const F = this.plan.F;
    const kl = Math.floor(lo / F);
    const kh = Math.floor(hi / F);
    let k0 = kl + 1;
    if (k0 <= this.cutBlock) k0 = this.cutBlock + 1;
    let from = lo; // buckets from here on are not taken yet
    if (F > 1) {
      for (let K = k0; K < kh; K++) {
        const k = this.blocks.get(K);
        if (typeof k !== 'object') continue; // empty or sparse: read with the buckets around it
        this.bucketsInto(w, from, K * F - 1);
        this.takeSummary(w, k);
        from = (K + 1) * F;
      }
    }
    this.bucketsInto(w, from, hi);
  }

  private bucketsInto(w: WindowPlan, lo: number, hi: number): void {
    if (lo > hi) return;
    for (let bi = lowerBound(this.bid, lo); bi < this.bid.length && this.bid[bi] <= hi; bi++) this.takeBucket(w, bi);
  }

  /**
   * Values of a slot among the events of buckets [sb, B) and of bucket B up to time t: the events
   * there whose previous occurrence of their value is before the window. O(those events), numbers only.
   */
  private distinctScan(slot: number, sb: number, B: number, t: number): number {
    const loMs = sb * this.plan.R;
    const PV = this.PV[slot];
    const T = this.T;
    let n = 0;
    for (let bi = lowerBound(this.bid, sb); bi < this.bid.length && this.bid[bi] <= B; bi++) {
      if (this.bid[bi] === B) {
        for (let i = this.bhead[bi]; i >= 0; i = this.NX[i]) if (T[i] <= t && PV[i] < loMs) n++;
      } else {
        for (let i = this.bhead[bi]; i >= 0; i = this.NX[i]) if (PV[i] < loMs) n++;
      }
    }
    return n;
  }

  /** Values of a slot with an applied event in [loMs, hiMs]: O(values held x log n). */
  private distinctIn(slot: number, loMs: number, hiMs: number): number {
    let n = 0;
    for (const times of this.dvals[slot].values()) {
      if (typeof times === 'number') {
        if (times >= loMs && times <= hiMs) n++;
        continue;
      }
      const i = lowerBound(times, loMs);
      if (i < times.length && times[i] <= hiMs) n++;
    }
    return n;
  }

  /** Applies a (non-late) event: columns, bucket, block, accumulators, indexes; then evicts by event time. */
  apply(e: Ev): ApplyEffect {
    const { plan } = this;
    const R = plan.R;
    const { t } = e;
    if (e.s > this.seq) this.seq = e.s;
    const B = Math.floor(t / R);
    for (let wi = 0; wi < plan.wins.length; wi++) {
      const acc = this.accs[wi];
      if (acc === undefined || B < acc.lo) continue;
      const w = plan.wins[wi];
      acc.n++;
      for (const slot of w.sm) padd(acc.s[slot], num(e.v, slot));
      // A heap entry per event (no bucket extreme is kept to compare with); stale and dominated
      // entries are dropped lazily or by the rebuild in accEvict, so the heap stays O(events).
      for (const slot of w.mn) acc.mn[slot].push(num(e.v, slot), B);
      for (const slot of w.mx) acc.mx[slot].push(num(e.v, slot), B);
      for (const slot of w.ds) {
        const key = str(e.v, slot);
        acc.d[slot].set(key, (acc.d[slot].get(key) ?? 0) + 1);
      }
    }
    const p = this.push(e);
    const newBucket = this.link(p, B);
    this.dirty.add(B);
    this.addToBlock(B, p);
    this.noteLatest(p);
    for (const slot of plan.dis) this.indexValue(slot, p);
    if (t > this.mt) this.mt = t;
    const effect = effectOf(newBucket);
    const cut = Math.floor((this.mt - plan.ret) / R);
    if (this.bid[0] < cut) this.evict(cut, effect);
    return effect;
  }

  /** Drops buckets below `cut` (event-time retention), their events and the blocks wholly below it. */
  private evict(cut: number, effect: ApplyEffect): void {
    const { F } = this.plan;
    const dropK = new Set<number>();
    if (this.cutBlock !== -Infinity && (this.cutBlock + 1) * F <= cut) dropK.add(this.cutBlock);
    let k = 0;
    while (k < this.bid.length && this.bid[k] < cut) {
      const B = this.bid[k];
      effect.evictedEvents += this.bcount[k];
      this.dead += this.bcount[k];
      let fid = 0;
      for (let i = this.bhead[k]; i >= 0; i = this.NX[i]) if (this.FID[i] !== 0 && this.FID[i] !== fid) this.removed.push(fieldOf(B, (fid = this.FID[i])));
      this.dirty.delete(B);
      const K = Math.floor(B / F);
      if ((K + 1) * F <= cut) dropK.add(K);
      k++;
    }
    this.bid.splice(0, k);
    this.bhead.splice(0, k);
    this.btail.splice(0, k);
    this.bcount.splice(0, k);
    this.bsum.splice(0, k);
    effect.evictedBuckets += k;
    if (this.dead > 1024 && this.dead * 2 > this.len) this.relayout(this.cap);
    for (const K of dropK) this.blocks.delete(K);
    this.cutBlock = Math.floor(cut / F);
    const cutMs = cut * this.plan.R;
    for (const slot of this.plan.dis) {
      const m = this.dvals[slot];
      for (const [v, times] of m) {
        if (typeof times === 'number') {
          if (times < cutMs) m.delete(v);
          continue;
        }
        if (times[0] >= cutMs) continue;
        const i = lowerBound(times, cutMs);
        if (i >= times.length) m.delete(v);
        else if (i === times.length - 1) m.set(v, times[i]);
        else times.splice(0, i);
      }
    }
  }

  /** Whether the state changed since the last `writeWrites`. */
  get changed(): boolean {
    return this.dirty.size > 0 || this.removed.length > 0;
  }

  /** Writes the hash fields to delete and to write (field, value, ...) since the last call (see writePlanned). */
  writeWrites(w: PackWriter): void {
    const del = this.removed;
    const at = BUCKET_AT;
    const nd = this.dirty.takeInto(DIRTY_LIST);
    for (let d = 0; d < nd; d++) {
      const B = DIRTY_LIST[d];
      const bi = lowerBound(this.bid, B);
      // The bucket's column indexes in apply order (usually a few).
      let k = 0;
      for (let i = this.bhead[bi]; i >= 0; i = this.NX[i]) at[k++] = i;
      BUCKET_N = k;
      planFragment(B, this, del);
    }
    writePlanned(w, this.plan, this, del);
    if (del.length > 0) del.length = 0;
  }

  fidAt(i: number): number {
    return this.FID[i];
  }

  setFidAt(i: number, id: number): void {
    this.FID[i] = id;
  }

  seqAt(i: number): number {
    return this.S[i];
  }

  timeAt(i: number): number {
    return this.T[i];
  }

  numAt(slot: number, i: number): number {
    return this.X[slot][i];
  }

  textAt(slot: number, i: number): string {
    return this.D[slot][i];
  }
}

/** SmallWindow.score's scratch: per window, the index of its first event; an exact sum. */
const SMALL_LO: number[] = [];
const SMALL_SUM = new ExactScan();

/**
 * A small entity (at most `small` events held): its events as columns sorted by time, then
 * sequence (ties: the later applied last) — a window is a range of them (two binary searches):
 * count, last and time since previous read its ends, sums, extremes and distinct counts scan only
 * the events in it, along contiguous numbers (a distinct count as the events whose value's previous
 * occurrence, kept per event, is before the window: no set of values per score). All number
 * columns share one Float64Array (column c at [c x cap, (c + 1) x cap)): one buffer per entity, not
 * one per column, and an event lands at its place in time order with a memory move per column
 * (copyWithin) of the later events. Same vectors as BigWindow.
 */
class SmallWindow {
  mt = -Infinity;
  seq = 0;
  removed: string[] = [];
  private n = 0;
  private cap: number;
  /**
   * Columns: 0 time, 1 sequence, 2 fragment id, then per slot of plan.xs its numbers, then per
   * distinct slot the previous occurrence's time, the value's hash and the index of its text in D.
   */
  private C: Float64Array;
  /**
   * Per distinct slot: its texts in the order they came (an event's text by the index in its
   * column: an insert moves numbers only; moving the texts' array was 11 % of a small entity's time).
   */
  private readonly D: string[][] = [];
  /**
   * The buckets of the events applied since the last writeWrites, as BigWindow keeps them:
   * writeWrites reads only those buckets' ranges, not every event held.
   */
  private readonly dirty = new DirtyBuckets();
  /**
   * The share of recent applied events that came in event-time order (t >= every time applied
   * before), an exponential average over ~64 events (long enough that a stream a quarter in order
   * does not reach a half by chance: the change to a big entity is for good): an entity mostly in
   * order is cheaper as a BigWindow (its running accumulators) from IN_ORDER_BIG_EVENTS events on.
   */
  inOrder = 0;

  constructor(
    private readonly plan: SetPlan,
    /** Applied events in apply (sequence) order. */
    events: readonly Ev[],
  ) {
    this.cap = Math.max(4, events.length);
    this.C = new Float64Array(this.cap * plan.cols);
    for (const slot of plan.dis) this.D[slot] = [];
    const byTime = events.slice().sort((a, b) => a.t - b.t || a.s - b.s);
    const C = this.C;
    const cap = this.cap;
    for (let i = 0; i < byTime.length; i++) {
      const e = byTime[i];
      if (e.t > this.mt) this.mt = e.t;
      if (e.s > this.seq) this.seq = e.s;
      C[i] = e.t;
      C[cap + i] = e.s;
      C[2 * cap + i] = e.fid;
      if (e.fid === 0) this.dirty.add(Math.floor(e.t / plan.R));
      for (const slot of plan.xs) C[plan.xc[slot] * cap + i] = num(e.v, slot);
      for (const slot of plan.dis) {
        const v = str(e.v, slot);
        C[(plan.pc[slot] + 1) * cap + i] = textHash(v);
        C[(plan.pc[slot] + 2) * cap + i] = this.D[slot].push(v) - 1;
      }
    }
    this.n = byTime.length;
    // Each event's previous occurrence of its value: the last one before it in time order.
    for (const slot of plan.dis) {
      const last = new Map<string, number>();
      const D = this.D[slot];
      const base = plan.pc[slot] * cap;
      for (let i = 0; i < D.length; i++) {
        C[base + i] = last.get(D[i]) ?? -Infinity;
        last.set(D[i], C[i]);
      }
    }
  }

  get held(): number {
    return this.n;
  }

  /** The events in apply (sequence) order, as BigWindow.build takes them. */
  events(): Ev[] {
    const { plan, C, cap } = this;
    const out: Ev[] = [];
    for (let i = 0; i < this.n; i++) {
      const v: Vals = new Array<string | number>(plan.slots);
      for (let slot = 0; slot < plan.slots; slot++) v[slot] = plan.numOnly[slot] ? C[plan.xc[slot] * cap + i] : this.text(slot, i);
      out.push({ t: C[i], s: C[cap + i], v, fid: C[2 * cap + i] });
    }
    return out.sort((a, b) => a.s - b.s);
  }

  /** The text of distinct slot `slot` of event i (time order). */
  private text(slot: number, i: number): string {
    return this.D[slot][this.C[(this.plan.pc[slot] + 2) * this.cap + i]];
  }

  /** First index whose time is >= t (`strict`: > t). */
  private timeBound(t: number, strict: boolean): number {
    const C = this.C;
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (C[mid] < t || (strict && C[mid] === t)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The aggregations as of an event at t (not applied yet), written to out[at ...]. */
  scoreInto(t: number, out: Float64Array, at: number): void {
    const { plan, C, cap } = this;
    // Events up to t: [lo of the window, hi); the last of them is the latest (time, then sequence).
    const hi = this.timeBound(t, true);
    for (let wi = 0; wi < plan.wins.length; wi++) SMALL_LO[wi] = this.timeBound(startBucket(plan.wins[wi], t, plan.R) * plan.R, false);
    for (let ai = 0; ai < plan.aggs.length; ai++) {
      const a = plan.aggs[ai];
      const lo = SMALL_LO[a.w];
      const n = hi > lo ? hi - lo : 0;
      let v: number;
      switch (a.k) {
        case 'count':
          v = n;
          break;
        case 'last':
          v = n > 0 ? C[plan.xc[a.f] * cap + hi - 1] : a.d;
          break;
        case 'time_since_prev':
          v = n > 0 ? t - C[hi - 1] : a.d;
          break;
        case 'sum':
        case 'mean': {
          const base = plan.xc[a.f] * cap;
          const sum = sumRange(C, base + lo, base + hi, SMALL_SUM); // 0 for an empty window (hi <= lo)
          v = a.k === 'sum' ? sum : n > 0 ? sum / n : a.d;
          break;
        }
        case 'min': {
          const base = plan.xc[a.f] * cap;
          let x = Infinity;
          for (let i = lo; i < hi; i++) if (C[base + i] < x) x = C[base + i];
          v = n > 0 ? x : a.d;
          break;
        }
        case 'max': {
          const base = plan.xc[a.f] * cap;
          let x = -Infinity;
          for (let i = lo; i < hi; i++) if (C[base + i] > x) x = C[base + i];
          v = n > 0 ? x : a.d;
          break;
        }
        default: {
          // distinct_count: the events whose value's previous occurrence is before the window
          const base = plan.pc[a.f] * cap;
          const loMs = startBucket(plan.wins[a.w], t, plan.R) * plan.R;
          v = 0;
          for (let i = lo; i < hi; i++) if (C[base + i] < loMs) v++;
        }
      }
      out[at + ai] = v;
    }
  }

  /** Doubles the columns' capacity. */
  private grow(): void {
    const cols = this.plan.cols;
    const cap = this.cap * 2;
    const C = new Float64Array(cap * cols);
    const old = this.C;
    const n = this.n;
    // Copied by index, not through a subarray per column (an object each, per grow of every entity).
    for (let c = 0; c < cols; c++) for (let i = 0, from = c * this.cap, to = c * cap; i < n; i++) C[to + i] = old[from + i];
    this.C = C;
    this.cap = cap;
  }

  apply(e: Ev): ApplyEffect {
    const { plan } = this;
    const R = plan.R;
    const B = Math.floor(e.t / R);
    if (this.n === this.cap) this.grow();
    const { C, cap, n } = this;
    // e has the greatest sequence: it goes after every event at its time; a bucket's events are adjacent.
    const at = this.timeBound(e.t, true);
    const newBucket = !((at > 0 && Math.floor(C[at - 1] / R) === B) || (at < n && Math.floor(C[at] / R) === B));
    // Make room at `at` in every column (a no-op for an event in time order).
    if (at < n) for (let c = 0, cols = plan.cols; c < cols; c++) C.copyWithin(c * cap + at + 1, c * cap + at, c * cap + n);
    C[at] = e.t;
    C[cap + at] = e.s;
    C[2 * cap + at] = e.fid;
    for (const slot of plan.xs) C[plan.xc[slot] * cap + at] = num(e.v, slot);
    for (const slot of plan.dis) {
      const v = str(e.v, slot);
      const h = textHash(v);
      const D = this.D[slot];
      const pv = plan.pc[slot] * cap;
      const hc = pv + cap;
      const tc = hc + cap;
      // Its previous occurrence (the last event of its value before it), and it is the next one's —
      // within `reach` of its time: one further away counts as none (see SetPlan.reach).
      const oldest = e.t - plan.reach[slot];
      const newest = e.t + plan.reach[slot];
      let prev = -Infinity;
      for (let j = at - 1; j >= 0 && C[j] > oldest; j--) {
        if (C[hc + j] === h && D[C[tc + j]] === v) {
          prev = C[j];
          break;
        }
      }
      for (let j = at + 1; j <= n && C[j] < newest; j++) {
        if (C[hc + j] === h && D[C[tc + j]] === v) {
          C[pv + j] = e.t;
          break;
        }
      }
      C[pv + at] = prev;
      C[hc + at] = h;
      C[tc + at] = D.push(v) - 1;
    }
    this.n = n + 1;
    this.dirty.add(B);
    this.inOrder += ((e.t >= this.mt ? 1 : 0) - this.inOrder) / 64;
    if (e.t > this.mt) this.mt = e.t;
    if (e.s > this.seq) this.seq = e.s;
    const effect = effectOf(newBucket);
    const cutMs = Math.floor((this.mt - plan.ret) / R) * R;
    if (C[0] < cutMs) this.evict(this.timeBound(cutMs, false), effect);
    return effect;
  }

  /** Drops the first k events (time order): all those before the retention cut. */
  private evict(k: number, effect: ApplyEffect): void {
    const { plan, C, cap, n } = this;
    const R = plan.R;
    const fields = new Set<string>();
    let buckets = 0;
    let lastB = NaN;
    for (let i = 0; i < k; i++) {
      const B = Math.floor(C[i] / R);
      if (B !== lastB) buckets++;
      lastB = B;
      const fid = C[2 * cap + i];
      if (fid !== 0) fields.add(fieldOf(B, fid));
    }
    effect.evictedEvents = k;
    effect.evictedBuckets = buckets;
    for (let c = 0, cols = plan.cols; c < cols; c++) C.copyWithin(c * cap, c * cap + k, c * cap + n);
    this.n = n - k;
    // The texts of the events left, renumbered in time order.
    for (const slot of plan.dis) {
      const tc = (plan.pc[slot] + 2) * cap;
      const D = this.D[slot];
      const kept: string[] = [];
      for (let i = 0; i < this.n; i++) C[tc + i] = kept.push(D[C[tc + i]]) - 1;
      this.D[slot] = kept;
    }
    this.removed.push(...fields);
  }

  get changed(): boolean {
    return this.removed.length > 0 || this.dirty.size > 0;
  }

  /** Writes the hash fields to delete and to write (field, value, ...) since the last call (see writePlanned). */
  writeWrites(w: PackWriter): void {
    const del = this.removed;
    const R = this.plan.R;
    const { C, n } = this;
    const at = BUCKET_AT;
    // A bucket's events are adjacent in time order: per bucket with an event not stored yet (one
    // evicted since holds none), its events in apply (sequence) order.
    const nd = this.dirty.takeInto(DIRTY_LIST);
    for (let d = 0; d < nd; d++) {
      const B = DIRTY_LIST[d];
      // The bucket's range by its bounds' times, settled by the same floor(t / R) that placed its events.
      let i = this.timeBound(B * R, false);
      while (i > 0 && Math.floor(C[i - 1] / R) === B) i--;
      while (i < n && Math.floor(C[i] / R) < B) i++;
      let j = i;
      while (j < n && Math.floor(C[j] / R) === B) j++;
      if (i === j) continue;
      let k = 0;
      for (let x = i; x < j; x++) at[k++] = x;
      BUCKET_N = k;
      sortBucketBySeq(this);
      planFragment(B, this, del);
    }
    writePlanned(w, this.plan, this, del);
    if (del.length > 0) del.length = 0;
  }

  fidAt(i: number): number {
    return this.C[2 * this.cap + i];
  }

  setFidAt(i: number, id: number): void {
    this.C[2 * this.cap + i] = id;
  }

  seqAt(i: number): number {
    return this.C[this.cap + i];
  }

  timeAt(i: number): number {
    return this.C[i];
  }

  numAt(slot: number, i: number): number {
    return this.C[this.plan.xc[slot] * this.cap + i];
  }

  textAt(slot: number, i: number): string {
    return this.text(slot, i);
  }
}

/**
 * One entity's window state: small (a scan of its few events) until it holds more than `small`
 * events, then bucket summaries and accumulators (BigWindow). Both give the same vectors.
 */
export class EntityWindowState {
  /** Version stamp of the stored entity this state matches (null: none stored). */
  version: string | null = null;
  private w: SmallWindow | BigWindow;

  constructor(
    private readonly plan: SetPlan,
    private readonly small: number,
    events: Ev[] = [],
  ) {
    this.w = events.length > small ? BigWindow.build(plan, events) : new SmallWindow(plan, events);
  }

  /** Rebuilds the state from the stored fields of its hash (`v` and `b<bucket>:<first seq>` fragments). */
  static load(plan: SetPlan, small: number, fields: readonly string[]): EntityWindowState {
    let version: string | null = null;
    const events: Ev[] = [];
    for (let i = 0; i < fields.length; i += 2) {
      const f = fields[i];
      if (f === 'v') version = fields[i + 1];
      else if (f.charCodeAt(0) === 98 /* b */) {
        const fid = Number(f.slice(f.indexOf(':') + 1));
        for (const r of JSON.parse(fields[i + 1]) as Array<Array<number | string>>) {
          events.push({ t: r[0] as number, s: r[1] as number, v: valuesOf(plan, r.slice(2).map(String)), fid });
        }
      }
    }
    events.sort((a, b) => a.s - b.s);
    const st = new EntityWindowState(plan, small, events);
    st.version = version;
    return st;
  }

  get mt(): number {
    return this.w.mt;
  }

  /** Whether the entity is held as a big one (bucket summaries and accumulators), not as a small one's scanned columns. */
  get big(): boolean {
    return this.w instanceof BigWindow;
  }

  /** Events held in memory (applied, not evicted). */
  get heldEvents(): number {
    return this.w.held;
  }

  /**
   * Estimated bytes of this state, heap and typed arrays (for a cache bounded by bytes): a fixed
   * part plus a part per held event. A big entity's is rounded up from the demo's card windows
   * (5,000 cards, ~100 events each in columns: ~350 bytes per event with two slots); a small one's
   * is its number columns at up to twice their length (capacity doubles) plus, per distinct slot,
   * a pointer to a shared text.
   */
  get approxBytes(): number {
    const perEvent = this.w instanceof BigWindow ? EVENT_BYTES + SLOT_BYTES * this.plan.slots : 16 * this.plan.cols + SMALL_TEXT_BYTES * this.plan.dis.length;
    return ENTITY_BYTES + this.w.held * perEvent;
  }

  /** Whether t is late for this entity (before the greatest applied time by more than the lateness). */
  isLate(t: number): boolean {
    return t < this.w.mt - this.plan.lat;
  }

  /** The aggregations as of an event at t (not applied yet), in field order. */
  score(t: number): number[] {
    const out = new Float64Array(this.plan.aggs.length);
    this.w.scoreInto(t, out, 0);
    return Array.from(out);
  }

  /** The aggregations as of an event at t written to out[at ...] (what the streaming state's batch reads; no array per event). */
  scoreInto(t: number, out: Float64Array, at: number): void {
    this.w.scoreInto(t, out, at);
  }

  /** The aggregations as of t without changing the state (a replay whose stored vector is gone). */
  scoreReadOnly(t: number): number[] {
    const out = new Float64Array(this.plan.aggs.length);
    this.scoreReadOnlyInto(t, out, 0);
    return Array.from(out);
  }

  /** scoreReadOnly written to out[at ...]. */
  scoreReadOnlyInto(t: number, out: Float64Array, at: number): void {
    if (this.w instanceof BigWindow) this.w.scoreReadOnlyInto(t, out, at);
    else this.w.scoreInto(t, out, at);
  }

  /**
   * Applies a (non-late) event at t whose slot values are raw[at ...] (one per value slot); a small
   * entity becomes a big one past `small` events, or past IN_ORDER_BIG_EVENTS while its events mostly
   * come in event-time order. The effect returned is shared: read it before the next apply.
   */
  apply(t: number, raw: readonly SlotValue[], at = 0): ApplyEffect {
    const effect = this.w.apply(applyEvent(this.plan, t, this.w.seq + 1, raw, at));
    if (this.w instanceof SmallWindow && (this.w.held > this.small || (this.w.held > IN_ORDER_BIG_EVENTS && this.w.inOrder >= 0.5))) {
      const removed = this.w.removed;
      this.w = BigWindow.build(this.plan, this.w.events());
      this.w.removed = removed;
    }
    return effect;
  }

  get changed(): boolean {
    return this.w.changed;
  }

  /**
   * Writes what changed since the last call as the commit message's two arrays: [fields to
   * delete], [field, value, ...] (stream-commit.lua's entity entry after its key and versions).
   */
  writeWrites(w: PackWriter): void {
    this.w.writeWrites(w);
  }

  /** writeWrites as strings (tests and tools read them; the commit writes bytes). */
  takeWrites(): { set: string[]; del: string[] } {
    const w = new PackWriter(1024);
    w.array(2);
    this.w.writeWrites(w);
    const [del, set] = decode(w.take()) as [string[], string[]];
    return { set, del };
  }
}
