/**
 * The in-memory window state of one entity of one streaming set: its applied events grouped in
 * buckets of R ms, summaries of blocks of F buckets, and per window an accumulator of the buckets in
 * it. Pure computation, no I/O: StreamingState (streaming.ts) loads an entity from Redis, scores and
 * applies a chunk's events here and writes back what changed (`takeWrites`). The semantics are
 * stated at the top of streaming.ts; ReferenceStreamingState there is the brute-force judge.
 *
 * Cost per event, n = events in the entity's retention:
 * - in event-time order (t >= every time applied): O(1) amortised for count, sum, mean, distinct,
 *   last and time since previous, O(log n) for min/max (heaps of bucket extremes);
 * - out of order or late: whole blocks inside the window plus buckets at its edges,
 *   O(window / (R F) + 2 F) summaries, plus O(distinct values x log n) for distinct counts and the
 *   events of its own bucket (it counts only up to t) — bounded by the window in buckets, not by
 *   the events in it.
 * Persistence: a bucket's events are stored in fragments (hash fields `b<bucket>:<first seq>`),
 * appended per chunk and merged like a binary counter (a fragment absorbs the next when it is not
 * larger), so a chunk writes O(its events x log n) bytes, never the whole window.
 */
import { bucketMsOf, effectiveWindow, numericDefault, type AggregationKind, type StreamingFeatureSetSpec } from './spec';

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
  wins: WindowPlan[];
  aggs: AggPlan[];
}

const NUMERIC = new Set<AggregationKind>(['sum', 'mean', 'min', 'max', 'last']);
const POINT = new Set<AggregationKind>(['last', 'time_since_prev']);

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
  return {
    name: set.name,
    R: bucketMsOf(set),
    F: bucketsPerBlock,
    lat: set.config.allowedLatenessMs,
    ret: maxW + set.config.allowedLatenessMs + (set.config.replayRetentionMs ?? replayRetentionMs),
    slots: slotNames.length,
    num: [...num],
    dis: [...dis],
    wins: wins.map(({ key: _key, ...w }) => w),
    aggs,
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
  p.length = i;
  p.push(x);
}

/** The correctly rounded value of partials (as Python's math.fsum); never -0. */
export function psum(p: readonly number[]): number {
  let n = p.length;
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

/** A value slot as a number: not a number -> 0, and never -0. */
export function numericValue(raw: string): number {
  const x = Number(raw);
  return Number.isNaN(x) ? 0 : x + 0;
}

// ---- state ----

/** An applied event: time, apply sequence (orders ties), raw values, their numbers, and the stored fragment holding it (0: not stored yet). */
interface Ev {
  t: number;
  s: number;
  raw: string[];
  x: number[];
  fid: number;
}

/** Count, exact sums, min, max and the latest event (by time, then sequence) of some events. */
class Summary {
  n = 0;
  readonly s: number[][] = [];
  readonly mn: number[] = [];
  readonly mx: number[] = [];
  lt = -Infinity;
  ls = -1;
  lv: number[] = [];

  constructor(plan: SetPlan) {
    for (const slot of plan.num) {
      this.s[slot] = [];
      this.mn[slot] = Infinity;
      this.mx[slot] = -Infinity;
    }
  }

  add(plan: SetPlan, e: Ev): void {
    this.n++;
    if (e.t > this.lt || (e.t === this.lt && e.s > this.ls)) {
      this.lt = e.t;
      this.ls = e.s;
      this.lv = e.x;
    }
    for (const slot of plan.num) {
      const x = e.x[slot];
      padd(this.s[slot], x);
      if (x < this.mn[slot]) this.mn[slot] = x;
      if (x > this.mx[slot]) this.mx[slot] = x;
    }
  }
}

/**
 * A bucket is just its events in apply order: no summary object per bucket. With events spread
 * over a day most one-minute buckets hold one or two events, and a summary per bucket (count,
 * partials, extremes, latest) made the retained heap ~1.6 kB per event; whatever needs a bucket's
 * aggregate folds its few events instead (each event enters and leaves an accumulator once, so the
 * amortised cost per event is unchanged). Blocks of F buckets keep summaries.
 */
type Bucket = Ev[];

/** The latest event (by time, then sequence) of a bucket. */
function latestOf(bk: Bucket): Ev {
  let best = bk[0];
  for (let i = 1; i < bk.length; i++) {
    const e = bk[i];
    if (e.t > best.t || (e.t === best.t && e.s > best.s)) best = e;
  }
  return best;
}

/** The extreme of a slot over a bucket's events (min or max). */
function extremeOf(bk: Bucket, slot: number, max: boolean): number {
  let v = bk[0].x[slot];
  for (let i = 1; i < bk.length; i++) {
    const x = bk[i].x[slot];
    if (max ? x > v : x < v) v = x;
  }
  return v;
}

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

function insertSorted(a: number[], x: number): void {
  if (a.length === 0 || a[a.length - 1] <= x) a.push(x);
  else a.splice(lowerBound(a, x), 0, x);
}

const fieldOf = (bucket: number, id: number) => `b${bucket}:${id}`;

/** Numbers of the numeric slots of raw values. */
function numbersOf(plan: SetPlan, raw: readonly string[]): number[] {
  // Sized once (one per applied event is retained: growing an empty array would reserve 17 slots).
  const x = new Array<number>(plan.slots);
  for (const slot of plan.num) x[slot] = numericValue(raw[slot]);
  return x;
}

/**
 * The stores of one bucket's new events: its events in apply order end with the ones not stored
 * yet; stored ones form fragments (runs of one fid). The new events become a fragment, merged with
 * the previous ones while those are not larger (a binary counter: O(log n) fragments per bucket and
 * O(log n) rewrites per event). Pushes the field to write and the fields merged away.
 */
function fragmentWrites(B: number, evs: readonly Ev[], set: string[], del: string[]): void {
  const runs: Array<{ id: number; n: number }> = [];
  for (const e of evs) {
    const last = runs[runs.length - 1];
    if (last && last.id === e.fid) last.n++;
    else runs.push({ id: e.fid, n: 1 });
  }
  if (runs.length === 0 || runs[runs.length - 1].id !== 0) return; // nothing new
  while (runs.length >= 2 && runs[runs.length - 2].n <= runs[runs.length - 1].n) {
    const last = runs.pop()!;
    if (last.id !== 0) del.push(fieldOf(B, last.id));
    runs[runs.length - 1].n += last.n;
  }
  const top = runs[runs.length - 1];
  const from = evs.length - top.n;
  const id = top.id !== 0 ? top.id : evs[from].s;
  const rows: Array<Array<number | string>> = [];
  for (let i = from; i < evs.length; i++) {
    evs[i].fid = id;
    rows.push([evs[i].t, evs[i].s, ...evs[i].raw]);
  }
  set.push(fieldOf(B, id), JSON.stringify(rows));
}

/** Bucket summaries, blocks and window accumulators: flat cost per event whatever the window holds. */
class BigWindow {
  private readonly buckets = new Map<number, Bucket>();
  /** Bucket indexes present, ascending. */
  private readonly order: number[] = [];
  private readonly blocks = new Map<number, Summary>();
  /** Greatest event time applied (-Infinity: none). */
  mt = -Infinity;
  private lt = -Infinity;
  private lv: number[] = [];
  seq = 0;
  private readonly accs: Array<Acc | undefined>;
  /** Per distinct slot: value -> ascending times of its applied events (out-of-order distinct counts). */
  private readonly dvals: Array<Map<string, number[]>> = [];
  /** The block the retention cut lies in: partly evicted, so never read whole. */
  private cutBlock = -Infinity;
  /** Buckets holding events not stored yet. */
  private readonly dirty = new Set<number>();
  removed: string[] = [];

  constructor(private readonly plan: SetPlan) {
    this.accs = plan.wins.map(() => undefined);
    for (const slot of plan.dis) this.dvals[slot] = new Map();
  }

  /** Builds the state from events in apply (sequence) order. */
  static build(plan: SetPlan, events: readonly Ev[]): BigWindow {
    const st = new BigWindow(plan);
    for (const e of events) {
      const B = Math.floor(e.t / plan.R);
      const bk = st.buckets.get(B);
      if (bk) bk.push(e);
      else {
        st.buckets.set(B, [e]);
        st.order.push(B);
      }
      if (e.fid === 0) st.dirty.add(B);
      if (e.s > st.seq) st.seq = e.s;
    }
    st.order.sort((a, b) => a - b);
    // Summaries and indexes in (time, sequence) order, as they were built when applied.
    const all = [...events].sort((a, b) => a.t - b.t || a.s - b.s);
    for (const e of all) {
      st.blockOf(Math.floor(e.t / plan.R)).add(plan, e);
      if (e.t >= st.lt) {
        st.lt = e.t;
        st.lv = e.x;
      }
      for (const slot of plan.dis) st.indexValue(slot, e.raw[slot], e.t);
    }
    if (all.length > 0) {
      st.mt = all[all.length - 1].t;
      st.cutBlock = Math.floor(Math.floor((st.mt - plan.ret) / plan.R) / plan.F);
      plan.wins.forEach((w, wi) => {
        if (!w.acc) return;
        const acc = st.newAcc(wi, startBucket(w, st.mt, plan.R));
        for (let i = lowerBound(st.order, acc.lo); i < st.order.length; i++) st.accAddBucket(wi, acc, st.order[i]);
      });
    }
    return st;
  }

  private blockOf(B: number): Summary {
    const K = Math.floor(B / this.plan.F);
    let k = this.blocks.get(K);
    if (!k) {
      k = new Summary(this.plan);
      this.blocks.set(K, k);
    }
    return k;
  }

  private indexValue(slot: number, v: string, t: number): void {
    const m = this.dvals[slot];
    const times = m.get(v);
    if (times) insertSorted(times, t);
    else m.set(v, [t]);
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

  /** Adds a whole bucket to an accumulator (rebuilds). */
  private accAddBucket(wi: number, acc: Acc, B: number): void {
    const w = this.plan.wins[wi];
    const bk = this.buckets.get(B)!;
    acc.n += bk.length;
    for (const slot of w.sm) for (const e of bk) padd(acc.s[slot], e.x[slot]);
    for (const slot of w.mn) acc.mn[slot].push(extremeOf(bk, slot, false), B);
    for (const slot of w.mx) acc.mx[slot].push(extremeOf(bk, slot, true), B);
    for (const slot of w.ds) {
      const d = acc.d[slot];
      for (const e of bk) d.set(e.raw[slot], (d.get(e.raw[slot]) ?? 0) + 1);
    }
  }

  /** Moves an accumulator forward to start at bucket newLo (whole buckets leave it). */
  private accEvict(wi: number, acc: Acc, newLo: number): void {
    const w = this.plan.wins[wi];
    for (let i = lowerBound(this.order, acc.lo); i < this.order.length && this.order[i] < newLo; i++) {
      const bk = this.buckets.get(this.order[i])!;
      acc.n -= bk.length;
      for (const slot of w.sm) for (const e of bk) padd(acc.s[slot], -e.x[slot]);
      for (const slot of w.ds) {
        const d = acc.d[slot];
        for (const e of bk) {
          const c = d.get(e.raw[slot])! - 1;
          if (c <= 0) d.delete(e.raw[slot]);
          else d.set(e.raw[slot], c);
        }
      }
    }
    acc.lo = newLo;
    // Heaps keep stale entries until they surface; rebuild when they dominate (amortised O(1)).
    if (w.mn.length + w.mx.length > 0 && this.heapSize(acc) > 4 * acc.n + 64) {
      for (const slot of w.mn) acc.mn[slot].clear();
      for (const slot of w.mx) acc.mx[slot].clear();
      for (let i = lowerBound(this.order, acc.lo); i < this.order.length; i++) {
        const B = this.order[i];
        const bk = this.buckets.get(B)!;
        for (const slot of w.mn) acc.mn[slot].push(extremeOf(bk, slot, false), B);
        for (const slot of w.mx) acc.mx[slot].push(extremeOf(bk, slot, true), B);
      }
    }
  }

  private heapSize(acc: Acc): number {
    let n = 0;
    for (const h of acc.mn) if (h) n = Math.max(n, h.size);
    for (const h of acc.mx) if (h) n = Math.max(n, h.size);
    return n;
  }

  /** The aggregations as of an event at t (not applied yet). */
  score(t: number): number[] {
    return t >= this.mt ? this.scoreInOrder(t) : this.scoreRange(t);
  }

  /** In event-time order: every accumulator moved to t's window holds exactly its window. */
  private scoreInOrder(t: number): number[] {
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
    const out: number[] = new Array(plan.aggs.length);
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
          if (Math.floor(this.lt / R) >= startBucket(plan.wins[a.w], t, R)) v = a.k === 'last' ? this.lv[a.f] : t - this.lt;
          else v = a.d;
      }
      out[ai] = v;
    }
    return out;
  }

  /** The aggregations as of t without touching the state (a replay whose stored vector is gone). */
  scoreReadOnly(t: number): number[] {
    return this.scoreRange(t);
  }

  /** Any event time (read only): summaries of the window's buckets before t's, and t's bucket up to t. */
  private scoreRange(t: number): number[] {
    const { plan } = this;
    const R = plan.R;
    const B = Math.floor(t / R);
    const own = this.buckets.get(B);
    const current = own ? own.filter((e) => e.t <= t) : [];
    type Agg = { n: number; s: number[][]; mn: number[]; mx: number[] };
    const perWin: Array<Agg | undefined> = plan.wins.map((w) => {
      if (!w.acc) return undefined;
      const sb = startBucket(w, t, R);
      const agg: Agg = { n: 0, s: [], mn: [], mx: [] };
      const slots = [...w.sm, ...w.mn, ...w.mx];
      for (const slot of slots) {
        agg.s[slot] = [];
        agg.mn[slot] = Infinity;
        agg.mx[slot] = -Infinity;
      }
      const take = (r: Summary) => {
        agg.n += r.n;
        for (const slot of w.sm) for (const x of r.s[slot]) padd(agg.s[slot], x);
        for (const slot of w.mn) if (r.mn[slot] < agg.mn[slot]) agg.mn[slot] = r.mn[slot];
        for (const slot of w.mx) if (r.mx[slot] > agg.mx[slot]) agg.mx[slot] = r.mx[slot];
      };
      const takeEvents = (bk: readonly Ev[]) => {
        for (const e of bk) {
          agg.n++;
          for (const slot of w.sm) padd(agg.s[slot], e.x[slot]);
          for (const slot of w.mn) if (e.x[slot] < agg.mn[slot]) agg.mn[slot] = e.x[slot];
          for (const slot of w.mx) if (e.x[slot] > agg.mx[slot]) agg.mx[slot] = e.x[slot];
        }
      };
      this.forRange(sb, B - 1, take, takeEvents);
      if (B >= sb) takeEvents(current);
      return agg;
    });
    const out: number[] = new Array(plan.aggs.length);
    for (let ai = 0; ai < plan.aggs.length; ai++) {
      const a = plan.aggs[ai];
      const w = plan.wins[a.w];
      const agg = perWin[a.w];
      let v: number;
      switch (a.k) {
        case 'count':
          v = agg!.n;
          break;
        case 'sum':
          v = psum(agg!.s[a.f]);
          break;
        case 'mean':
          v = agg!.n > 0 ? psum(agg!.s[a.f]) / agg!.n : a.d;
          break;
        case 'min':
          v = agg!.n > 0 ? agg!.mn[a.f] : a.d;
          break;
        case 'max':
          v = agg!.n > 0 ? agg!.mx[a.f] : a.d;
          break;
        case 'distinct_count':
          v = this.distinctIn(a.f, startBucket(w, t, R) * R, t);
          break;
        default: {
          const sb = startBucket(w, t, R);
          let lt = -Infinity;
          let ls = -1;
          let lv: number[] = [];
          for (const e of current) {
            if (e.t > lt || (e.t === lt && e.s > ls)) {
              lt = e.t;
              ls = e.s;
              lv = e.x;
            }
          }
          if (lt === -Infinity && sb <= B - 1) {
            const i = lowerBound(this.order, B) - 1; // the newest bucket before B
            if (i >= 0 && this.order[i] >= sb) {
              const latest = latestOf(this.buckets.get(this.order[i])!);
              lt = latest.t;
              lv = latest.x;
            }
          }
          if (lt === -Infinity) v = a.d;
          else v = a.k === 'last' ? lv[a.f] : t - lt;
        }
      }
      out[ai] = v;
    }
    return out;
  }

  /** Summaries covering buckets [lo, hi]: whole blocks where they fit, buckets at the edges. */
  private forRange(lo: number, hi: number, take: (r: Summary) => void, takeEvents: (bk: Bucket) => void): void {
    if (lo > hi) return;
    const F = this.plan.F;
    const kl = Math.floor(lo / F);
    const kh = Math.floor(hi / F);
    let k0 = kl + 1;
    if (k0 <= this.cutBlock) k0 = this.cutBlock + 1;
    if (F > 1 && kh - k0 >= 1) {
      this.forBuckets(lo, k0 * F - 1, takeEvents);
      for (let K = k0; K < kh; K++) {
        const k = this.blocks.get(K);
        if (k) take(k);
      }
      this.forBuckets(kh * F, hi, takeEvents);
    } else {
      this.forBuckets(lo, hi, takeEvents);
    }
  }

  private forBuckets(lo: number, hi: number, take: (bk: Bucket) => void): void {
    for (let i = lowerBound(this.order, lo); i < this.order.length && this.order[i] <= hi; i++) take(this.buckets.get(this.order[i])!);
  }

  /** Values of a slot with an applied event in [loMs, hiMs]. */
  private distinctIn(slot: number, loMs: number, hiMs: number): number {
    let n = 0;
    for (const times of this.dvals[slot].values()) {
      const i = lowerBound(times, loMs);
      if (i < times.length && times[i] <= hiMs) n++;
    }
    return n;
  }

  /** Applies a (non-late) event: bucket, block, accumulators, indexes; then evicts by event time. */
  apply(e: Ev): ApplyEffect {
    const { plan } = this;
    const R = plan.R;
    const { t, raw } = e;
    if (e.s > this.seq) this.seq = e.s;
    const B = Math.floor(t / R);
    const bk = this.buckets.get(B);
    const newBucket = bk === undefined;
    for (let wi = 0; wi < plan.wins.length; wi++) {
      const acc = this.accs[wi];
      if (acc === undefined || B < acc.lo) continue;
      const w = plan.wins[wi];
      acc.n++;
      for (const slot of w.sm) padd(acc.s[slot], e.x[slot]);
      // A heap entry per event (no bucket extreme is kept to compare with); stale and dominated
      // entries are dropped lazily or by the rebuild in accEvict, so the heap stays O(events).
      for (const slot of w.mn) acc.mn[slot].push(e.x[slot], B);
      for (const slot of w.mx) acc.mx[slot].push(e.x[slot], B);
      for (const slot of w.ds) acc.d[slot].set(raw[slot], (acc.d[slot].get(raw[slot]) ?? 0) + 1);
    }
    if (bk) bk.push(e);
    else {
      this.buckets.set(B, [e]);
      if (this.order.length === 0 || this.order[this.order.length - 1] < B) this.order.push(B);
      else this.order.splice(lowerBound(this.order, B), 0, B);
    }
    this.dirty.add(B);
    this.blockOf(B).add(plan, e);
    if (t >= this.lt) {
      this.lt = t;
      this.lv = e.x;
    }
    for (const slot of plan.dis) this.indexValue(slot, raw[slot], t);
    if (t > this.mt) this.mt = t;
    const effect: ApplyEffect = { newBucket, evictedBuckets: 0, evictedEvents: 0 };
    const cut = Math.floor((this.mt - plan.ret) / R);
    if (this.order[0] < cut) this.evict(cut, effect);
    return effect;
  }

  /** Drops buckets below `cut` (event-time retention), their events and the blocks wholly below it. */
  private evict(cut: number, effect: ApplyEffect): void {
    const { F } = this.plan;
    let k = 0;
    const dropK = new Set<number>();
    if (this.cutBlock !== -Infinity && (this.cutBlock + 1) * F <= cut) dropK.add(this.cutBlock);
    while (k < this.order.length && this.order[k] < cut) {
      const B = this.order[k++];
      const bk = this.buckets.get(B)!;
      effect.evictedEvents += bk.length;
      let fid = 0;
      for (const e of bk) if (e.fid !== 0 && e.fid !== fid) this.removed.push(fieldOf(B, (fid = e.fid)));
      this.buckets.delete(B);
      this.dirty.delete(B);
      const K = Math.floor(B / F);
      if ((K + 1) * F <= cut) dropK.add(K);
    }
    this.order.splice(0, k);
    effect.evictedBuckets += k;
    for (const K of dropK) this.blocks.delete(K);
    this.cutBlock = Math.floor(cut / F);
    const cutMs = cut * this.plan.R;
    for (const slot of this.plan.dis) {
      const m = this.dvals[slot];
      for (const [v, times] of m) {
        if (times[0] >= cutMs) continue;
        const i = lowerBound(times, cutMs);
        if (i >= times.length) m.delete(v);
        else times.splice(0, i);
      }
    }
  }

  /** Whether the state changed since the last `takeWrites`. */
  get changed(): boolean {
    return this.dirty.size > 0 || this.removed.length > 0;
  }

  /** The hash fields to write (field, value, ...) and delete since the last call. */
  takeWrites(): { set: string[]; del: string[] } {
    const set: string[] = [];
    const del = this.removed;
    this.removed = [];
    for (const B of this.dirty) fragmentWrites(B, this.buckets.get(B)!, set, del);
    this.dirty.clear();
    return { set, del };
  }
}

/**
 * A small entity (at most `small` events held): just its events, scored by scanning them — the
 * cheapest for the many entities with few events, in memory and per event. Same vectors as BigWindow.
 */
class SmallWindow {
  mt = -Infinity;
  seq = 0;
  removed: string[] = [];

  constructor(
    private readonly plan: SetPlan,
    /** Applied events in apply order. */
    readonly log: Ev[],
  ) {
    for (const e of log) {
      if (e.t > this.mt) this.mt = e.t;
      if (e.s > this.seq) this.seq = e.s;
    }
  }

  score(t: number): number[] {
    const { plan } = this;
    const out: number[] = new Array(plan.aggs.length);
    for (let ai = 0; ai < plan.aggs.length; ai++) {
      const a = plan.aggs[ai];
      const start = startBucket(plan.wins[a.w], t, plan.R) * plan.R;
      let n = 0;
      let mn = Infinity;
      let mx = -Infinity;
      let lt = -Infinity;
      let ls = -1;
      let lv = 0;
      // Only the aggregations that need them get a partials array or a set (this runs per event).
      const p: number[] | undefined = a.k === 'sum' || a.k === 'mean' ? [] : undefined;
      const seen = a.k === 'distinct_count' ? new Set<string>() : undefined;
      for (const e of this.log) {
        if (e.t < start || e.t > t) continue;
        n++;
        if (e.t > lt || (e.t === lt && e.s > ls)) {
          lt = e.t;
          ls = e.s;
          if (a.f >= 0 && a.k === 'last') lv = e.x[a.f];
        }
        if (a.f < 0) continue;
        if (seen) seen.add(e.raw[a.f]);
        else if (p) padd(p, e.x[a.f]);
        else if (a.k === 'min') mn = Math.min(mn, e.x[a.f]);
        else if (a.k === 'max') mx = Math.max(mx, e.x[a.f]);
      }
      let v: number;
      switch (a.k) {
        case 'count':
          v = n;
          break;
        case 'sum':
          v = psum(p!);
          break;
        case 'mean':
          v = n > 0 ? psum(p!) / n : a.d;
          break;
        case 'min':
          v = n > 0 ? mn : a.d;
          break;
        case 'max':
          v = n > 0 ? mx : a.d;
          break;
        case 'distinct_count':
          v = seen!.size;
          break;
        case 'last':
          v = n > 0 ? lv : a.d;
          break;
        default:
          v = n > 0 ? t - lt : a.d;
      }
      out[ai] = v;
    }
    return out;
  }

  apply(e: Ev): ApplyEffect {
    const R = this.plan.R;
    const B = Math.floor(e.t / R);
    let newBucket = true;
    for (const o of this.log) if (Math.floor(o.t / R) === B) newBucket = false;
    this.log.push(e);
    if (e.t > this.mt) this.mt = e.t;
    if (e.s > this.seq) this.seq = e.s;
    const effect: ApplyEffect = { newBucket, evictedBuckets: 0, evictedEvents: 0 };
    const cutMs = Math.floor((this.mt - this.plan.ret) / R) * R;
    if (this.log.some((o) => o.t < cutMs)) {
      const gone = new Set<number>();
      const fields = new Set<string>();
      let k = 0;
      for (const o of this.log) {
        if (o.t >= cutMs) this.log[k++] = o;
        else {
          gone.add(Math.floor(o.t / R));
          if (o.fid !== 0) fields.add(fieldOf(Math.floor(o.t / R), o.fid));
        }
      }
      effect.evictedEvents = this.log.length - k;
      effect.evictedBuckets = gone.size;
      this.log.length = k;
      this.removed.push(...fields);
    }
    return effect;
  }

  get changed(): boolean {
    return this.removed.length > 0 || (this.log.length > 0 && this.log[this.log.length - 1].fid === 0);
  }

  takeWrites(): { set: string[]; del: string[] } {
    const set: string[] = [];
    const del = this.removed;
    this.removed = [];
    const R = this.plan.R;
    // Buckets with events not stored yet, in first-seen order (usually one or two: an array, not a set).
    const fresh: number[] = [];
    for (const e of this.log) {
      if (e.fid !== 0) continue;
      const B = Math.floor(e.t / R);
      if (!fresh.includes(B)) fresh.push(B);
    }
    for (const B of fresh) fragmentWrites(B, fresh.length === 1 && this.log.every((e) => Math.floor(e.t / R) === B) ? this.log : this.log.filter((e) => Math.floor(e.t / R) === B), set, del);
    return { set, del };
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
          const raw = r.slice(2).map(String);
          events.push({ t: r[0] as number, s: r[1] as number, raw, x: numbersOf(plan, raw), fid });
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

  /** Whether t is late for this entity (before the greatest applied time by more than the lateness). */
  isLate(t: number): boolean {
    return t < this.w.mt - this.plan.lat;
  }

  /** The aggregations as of an event at t (not applied yet). */
  score(t: number): number[] {
    return this.w.score(t);
  }

  /** The aggregations as of t without changing the state (a replay whose stored vector is gone). */
  scoreReadOnly(t: number): number[] {
    return this.w instanceof BigWindow ? this.w.scoreReadOnly(t) : this.w.score(t);
  }

  /** Applies a (non-late) event; a small entity past `small` events becomes a big one. */
  apply(t: number, raw: string[]): ApplyEffect {
    const e: Ev = { t, s: this.w.seq + 1, raw, x: numbersOf(this.plan, raw), fid: 0 };
    const effect = this.w.apply(e);
    if (this.w instanceof SmallWindow && this.w.log.length > this.small) {
      const removed = this.w.removed;
      this.w = BigWindow.build(this.plan, this.w.log);
      this.w.removed = removed;
    }
    return effect;
  }

  get changed(): boolean {
    return this.w.changed;
  }

  takeWrites(): { set: string[]; del: string[] } {
    return this.w.takeWrites();
  }
}
