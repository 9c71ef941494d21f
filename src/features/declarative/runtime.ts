/**
 * Run-time helpers of compiled feature definitions whose semantics are pinned in SEMANTICS.md:
 * floored modulo, NaN-propagating min/max, string hashing (MurmurHash3 x86 32 of the UTF-8 bytes)
 * and calendar parts of an instant in an IANA time zone. The Python package implements the same
 * functions (python/tributary_features/ops.py).
 */
import { murmur3 } from '../../routing/murmur3';
import { FeatureFunctionResultError } from './functions';

/** 0001-01-02T00:00:00Z and 9999-12-30T23:59:59.999Z: outside, time parts are null (Python's datetime range, less a day for any offset). */
export const MIN_TIME_MS = -62135510400000;
export const MAX_TIME_MS = 253402214399999;
const MS_PER_DAY = 86_400_000;
const MS_PER_HOUR = 3_600_000;
/** Offsets are cached per 15 minutes of UTC time; a slice holding a transition is computed per instant. */
const SLICE_MS = 900_000;
const MAX_CACHED_SLICES = 200_000;

/** Floored modulo: the result has the sign of `b` (fmod, then add `b` when the signs differ). */
export function fmod(a: number, b: number): number {
  const r = a % b;
  return r !== 0 && r < 0 !== b < 0 ? r + b : r;
}

export function min2(a: number, b: number): number {
  return a !== a || b !== b ? NaN : b < a ? b : a;
}

export function max2(a: number, b: number): number {
  return a !== a || b !== b ? NaN : b > a ? b : a;
}

/** Bucket of `x` for strictly increasing `edges`: the number of edges <= x (0..edges.length); null for NaN. */
export function bucketize(edges: readonly number[], x: number): number | null {
  if (x !== x) return null;
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Bucket of a string: murmur3_32(UTF-8 bytes, seed) mod buckets. */
export function hashBucket(s: string, seed: number, buckets: number): number {
  return murmur3(s, seed) % buckets;
}

/** A plugin function's result that is not a number: null/undefined are null, anything else throws (the event is dead-lettered). */
export function fnResult(name: string, r: unknown): number | null {
  if (r === null || r === undefined) return null;
  throw new FeatureFunctionResultError(name, r);
}

/** UTC offset (ms) of IANA zones at an instant, from the runtime's (ICU) time-zone database. */
export class ZoneClock {
  private readonly fmt: Intl.DateTimeFormat | null;
  private readonly slices = new Map<number, number>();

  constructor(readonly zone: string) {
    this.fmt = zone === 'UTC' ? null : new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', era: 'short' });
  }

  /** Offset at instant t (integer ms in range). */
  offset(t: number): number {
    if (this.fmt === null) return 0;
    const slice = Math.floor(t / SLICE_MS);
    let off = this.slices.get(slice);
    if (off === undefined) {
      const a = this.exact(slice * SLICE_MS);
      const b = this.exact(slice * SLICE_MS + SLICE_MS - 1);
      off = a === b ? a : NaN;
      if (this.slices.size >= MAX_CACHED_SLICES) this.slices.clear();
      this.slices.set(slice, off);
    }
    return off === off ? off : this.exact(t);
  }

  private exact(t: number): number {
    const parts = this.fmt!.formatToParts(new Date(t));
    let y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, bc = false;
    for (const p of parts) {
      switch (p.type) {
        case 'year': y = Number(p.value); break;
        case 'month': mo = Number(p.value); break;
        case 'day': d = Number(p.value); break;
        case 'hour': h = Number(p.value); break;
        case 'minute': mi = Number(p.value); break;
        case 'second': s = Number(p.value); break;
        case 'era': bc = p.value.startsWith('B'); break;
      }
    }
    const wall = new Date(0);
    wall.setUTCFullYear(bc ? 1 - y : y, mo - 1, d);
    wall.setUTCHours(h, mi, s, 0);
    return wall.getTime() - (t - fmod(t, 1000));
  }

  /** Local wall time of `t` as ms since the epoch, or null when t is not finite or out of range. */
  local(t: number): number | null {
    if (!(t >= MIN_TIME_MS && t <= MAX_TIME_MS)) return null;
    const ti = Math.floor(t);
    return ti + this.offset(ti);
  }

  hour(t: number): number | null {
    const l = this.local(t);
    // + 0: fmod of an exact negative multiple is -0, and the Python twin computes with integers (+0).
    // = floor(mod(l, 86400000) / 3600000): floor(l / 3600000) is exact for |l| < 4.5e15.
    if (l === null) return null;
    // floor(l / 3600000) is within ±7.1e7 in range: int32, so the remainder is an integer one (= fmod).
    let h = (Math.floor(l / MS_PER_HOUR) | 0) % 24;
    if (h < 0) h += 24;
    return h + 0;
  }

  /** Day of the week, Monday 0 .. Sunday 6 (1970-01-01 was a Thursday). */
  dayOfWeek(t: number): number | null {
    const l = this.local(t);
    if (l === null) return null;
    let d = ((Math.floor(l / MS_PER_DAY) | 0) + 3) % 7;
    if (d < 0) d += 7;
    return d + 0;
  }
}

/** The time-zone database version of this runtime (ICU's IANA tz data), e.g. `2025c`. */
export function tzdbVersion(): string {
  return process.versions.tz ?? 'unknown';
}
