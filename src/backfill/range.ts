/**
 * Backfill ranges: `--from` / `--to` / `--warmup-from` specs and their resolution to per-partition
 * offsets, once, at the start of a job (the plan), so a job ends even while producers keep writing.
 *
 * Spec forms:
 *   earliest | latest            the partition's log start / end offset at resolution time
 *   2026-11-29T05:00:00Z         ISO-8601 (anything Date.parse reads): the first offset whose record
 *                                timestamp is >= that time (the end offset when there is none)
 *   1764392400000                epoch milliseconds, same meaning
 *   0:120,1:98,2:143             explicit offsets, one per partition (every partition must be listed)
 * `--from` is inclusive, `--to` exclusive: the range of a partition is [start, end).
 */
import type { Admin } from 'kafkajs';
import { TributaryError } from '../util/errors';

export type RangeSpec =
  | { kind: 'earliest' }
  | { kind: 'latest' }
  | { kind: 'time'; ms: number }
  | { kind: 'offsets'; offsets: Map<number, number> };

export class RangeSpecError extends TributaryError {}

/** Parses a `--from`/`--to` value. Throws RangeSpecError with what was expected. */
export function parseRangeSpec(text: string, flag = '--from'): RangeSpec {
  const s = text.trim();
  if (s === 'earliest' || s === 'beginning') return { kind: 'earliest' };
  if (s === 'latest' || s === 'end' || s === 'now') return { kind: 'latest' };
  if (/^\d+:\d+(\s*,\s*\d+:\d+)*$/.test(s)) {
    const offsets = new Map<number, number>();
    for (const part of s.split(',')) {
      const [p, o] = part.trim().split(':').map(Number);
      if (offsets.has(p)) throw new RangeSpecError(`${flag} '${text}': partition ${p} is listed twice`);
      if (!Number.isSafeInteger(o)) throw new RangeSpecError(`${flag} '${text}': offset ${o} is too large`);
      offsets.set(p, o);
    }
    return { kind: 'offsets', offsets };
  }
  if (/^\d{9,}$/.test(s)) return { kind: 'time', ms: Number(s) };
  const ms = Date.parse(s);
  if (Number.isFinite(ms) && /\d{4}-\d{2}-\d{2}/.test(s)) return { kind: 'time', ms };
  throw new RangeSpecError(`${flag} '${text}': expected earliest, latest, an ISO-8601 time, epoch milliseconds, or partition:offset pairs like 0:120,1:98`);
}

/** Log start / end offsets of one partition (end = the next offset to be written). */
export interface PartitionBounds {
  partition: number;
  low: number;
  high: number;
}

/** One partition of a plan: warmup events [warmupStart, start) only update streaming state; [start, end) are scored. */
export interface PartitionRange {
  partition: number;
  warmupStart: number;
  start: number;
  end: number;
}

/** Resolves a spec to an offset per partition, given the bounds and (for times) the offsets by timestamp. */
export function specOffsets(spec: RangeSpec, bounds: readonly PartitionBounds[], byTime: Map<number, number> | undefined, flag: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const b of bounds) {
    let o: number;
    switch (spec.kind) {
      case 'earliest':
        o = b.low;
        break;
      case 'latest':
        o = b.high;
        break;
      case 'time': {
        const t = byTime?.get(b.partition);
        if (t === undefined) throw new RangeSpecError(`${flag}: no offset for partition ${b.partition} at ${new Date(spec.ms).toISOString()}`);
        o = t < 0 ? b.high : t;
        break;
      }
      case 'offsets': {
        const v = spec.offsets.get(b.partition);
        if (v === undefined) throw new RangeSpecError(`${flag}: partition ${b.partition} is not listed (list every partition: ${bounds.map((x) => `${x.partition}:OFFSET`).join(',')})`);
        o = v;
        break;
      }
    }
    out.set(b.partition, Math.min(Math.max(o, b.low), b.high));
  }
  if (spec.kind === 'offsets') {
    const unknown = [...spec.offsets.keys()].filter((p) => !bounds.some((b) => b.partition === p));
    if (unknown.length > 0) throw new RangeSpecError(`${flag}: the topic has no partition ${unknown.join(', ')} (partitions: ${bounds.map((b) => b.partition).join(', ')})`);
  }
  return out;
}

/** Combines resolved offsets into [start, end) per partition (an end before its start gives an empty range). */
export function buildRanges(bounds: readonly PartitionBounds[], from: Map<number, number>, to: Map<number, number>, warmup?: Map<number, number>): PartitionRange[] {
  return bounds
    .map((b) => {
      const start = from.get(b.partition)!;
      const end = Math.max(start, to.get(b.partition)!);
      const warmupStart = Math.min(start, warmup?.get(b.partition) ?? start);
      return { partition: b.partition, warmupStart, start, end };
    })
    .sort((a, b) => a.partition - b.partition);
}

/** Reads the topic's bounds and resolves the specs against the broker (offsets by timestamp). */
export async function resolveRanges(admin: Admin, topic: string, specs: { from: RangeSpec; to: RangeSpec; warmupFrom?: RangeSpec }): Promise<PartitionRange[]> {
  const offsets = await admin.fetchTopicOffsets(topic);
  const bounds: PartitionBounds[] = offsets.map((o) => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) }));
  const resolve = async (spec: RangeSpec, flag: string) => {
    let byTime: Map<number, number> | undefined;
    if (spec.kind === 'time') {
      const res = await admin.fetchTopicOffsetsByTimestamp(topic, spec.ms);
      byTime = new Map(res.map((r) => [r.partition, Number(r.offset)]));
    }
    return specOffsets(spec, bounds, byTime, flag);
  };
  const from = await resolve(specs.from, '--from');
  const to = await resolve(specs.to, '--to');
  const warmup = specs.warmupFrom ? await resolve(specs.warmupFrom, '--warmup-from') : undefined;
  return buildRanges(bounds, from, to, warmup);
}

/** `p:offset,...` of a map or of one field of ranges (for printing and for repeating a plan exactly). */
export function formatOffsets(entries: Iterable<[number, number]>): string {
  return [...entries].map(([p, o]) => `${p}:${o}`).join(',');
}
