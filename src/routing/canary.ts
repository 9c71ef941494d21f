import { TributaryError } from '../util/errors';
import { murmur3 } from './murmur3';

/** Buckets of the hash space: a weight resolution of 0.01%. */
export const BUCKETS = 10000;

export interface ArmSpec {
  name: string;
  /** Share of keys in percent (0..100, resolution 0.01). The first arm (control) takes whatever the others leave. */
  weight?: number;
  /** Treatment arms only: the most this arm may ever get (percent); fixes its slice of the bucket space. Default: an equal share of 100 among the treatment arms. */
  maxWeight?: number;
}

export interface Slice {
  arm: string;
  /** First bucket of the arm's fixed region and the end of its used part: buckets [start, start + used) route to it. */
  start: number;
  used: number;
  capacity: number;
}

/** The bucket of a key in an experiment: murmur3(experiment + ':' + key) mod 10,000. */
export function bucketOf(experiment: string, key: string): number {
  return murmur3(`${experiment}:${key}`) % BUCKETS;
}

/**
 * Sticky slices: each treatment arm owns a fixed region of the bucket space (sized by its
 * maxWeight, laid out in declaration order) and routes the first `weight` of it; every other
 * bucket goes to the control arm (the first). So raising an arm's weight only adds keys to it
 * (taken from control), and changing one arm's weight moves only keys between that arm and
 * control — never between two treatments.
 */
export class SliceLayout {
  readonly slices: Slice[];
  readonly control: string;
  private readonly table: Uint16Array;

  constructor(readonly arms: ArmSpec[]) {
    if (arms.length < 1) throw new TributaryError('routing needs at least one arm');
    if (new Set(arms.map((a) => a.name)).size !== arms.length) throw new TributaryError('routing arm names must be unique');
    this.control = arms[0].name;
    const treatments = arms.slice(1);
    const defaultCap = treatments.length ? 100 / treatments.length : 0;
    let start = 0;
    this.slices = treatments.map((a) => {
      const capacity = Math.round((a.maxWeight ?? defaultCap) * (BUCKETS / 100));
      const used = Math.round((a.weight ?? 0) * (BUCKETS / 100));
      if (used < 0 || used > capacity) throw new TributaryError(`arm '${a.name}': weight ${a.weight}% exceeds its maxWeight ${capacity / 100}%`);
      const s = { arm: a.name, start, used, capacity };
      start += capacity;
      return s;
    });
    if (start > BUCKETS) throw new TributaryError(`routing: treatment arms' maxWeight add up to ${start / 100}% > 100%`);
    // bucket -> arm index (0 = control)
    this.table = new Uint16Array(BUCKETS);
    this.slices.forEach((s, i) => this.table.fill(i + 1, s.start, s.start + s.used));
  }

  /** The arm of a bucket. */
  armOfBucket(bucket: number): string {
    const i = this.table[bucket];
    return i === 0 ? this.control : this.slices[i - 1].arm;
  }

  route(experiment: string, key: string): string {
    return this.armOfBucket(bucketOf(experiment, key));
  }

  /** Effective share of each arm (percent). */
  shares(): Record<string, number> {
    const out: Record<string, number> = { [this.control]: 100 };
    for (const s of this.slices) {
      out[s.arm] = (s.used / BUCKETS) * 100;
      out[this.control] -= out[s.arm];
    }
    return out;
  }
}
