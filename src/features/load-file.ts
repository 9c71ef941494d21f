import { progressText } from '../util/progress';
/**
 * Bulk load of a batch feature set from a CSV or JSON-lines file into a new Redis version, then an
 * atomic pointer flip (readers never see a half-loaded set) and clean-up of versions retired more
 * than the grace period ago. Used by `tributary features load` and by the demo.
 *
 * Rows: the entity column (named as the set's `entity`, e.g. `cardId`), `ts` (ms since epoch or an
 * ISO date: when the values were computed; the staleness limit is checked against it at read time)
 * and the set's fields. A bad row (missing entity/ts, a value that does not fit the field type,
 * malformed line) is reported with its line number and skipped (`onBadRow: 'skip'`) or rejects the
 * whole load (`'reject'`: nothing becomes visible; the partial version is deleted).
 */
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';
import { abortVersion, beginVersion, collectGarbage, flipVersion, writeRows, type FeatureRow } from './batch-store';
import type { BatchFeatureSetSpec, FeatureFieldSpec } from './spec';

export interface BadRow {
  line: number;
  reason: string;
}

export interface LoadProgress {
  rows: number;
  total: number;
  bad: number;
  elapsedMs: number;
}

export interface LoadOptions {
  file: string;
  format?: 'csv' | 'jsonl';
  onBadRow?: 'skip' | 'reject';
  /** Rows per pipeline (one round trip each). */
  batchRows?: number;
  /** Pipelines in flight at once. */
  inFlight?: number;
  gracePeriodMs?: number;
  /**
   * Re-dates the file: every row's `ts` is shifted by the same amount so that the newest row's is
   * this time (ms). For synthetic files replayed at another time: the demo dates the training
   * data's batch-job output to the day before its own clock, so rows are exactly as fresh as in
   * training whatever day it runs.
   */
  redateTo?: number;
  onProgress?: (p: LoadProgress) => void;
}

export interface LoadResult {
  set: string;
  version: string;
  previous: string;
  rows: number;
  bad: BadRow[];
  seconds: number;
  removedVersions: string[];
}

export class LoadRejectedError extends Error {
  override readonly name = 'LoadRejectedError';
  constructor(readonly bad: BadRow[]) {
    super(`load rejected: ${bad.length} bad row(s), first at line ${bad[0].line}: ${bad[0].reason}`);
  }
}

export function detectFormat(file: string): 'csv' | 'jsonl' {
  return /\.(jsonl|ndjson|json)$/i.test(file) ? 'jsonl' : 'csv';
}

/** Splits one CSV line (RFC 4180 quotes, no embedded newlines). */
export function splitCsv(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (quoted) throw new Error('unterminated quote');
  out.push(cur);
  return out;
}

function typed(f: FeatureFieldSpec, raw: unknown): number {
  if (raw === undefined || raw === null || raw === '') return typeof f.default === 'boolean' ? (f.default ? 1 : 0) : f.default;
  if (f.type === 'boolean') {
    if (raw === true || raw === 'true' || raw === 1 || raw === '1') return 1;
    if (raw === false || raw === 'false' || raw === 0 || raw === '0') return 0;
    throw new Error(`${f.name}: '${String(raw)}' is not a boolean`);
  }
  const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
  if (!Number.isFinite(n) || (typeof raw === 'string' && raw.trim() === '')) throw new Error(`${f.name}: '${String(raw)}' is not a number`);
  if ((f.type === 'long' || f.type === 'int') && !Number.isInteger(n)) throw new Error(`${f.name}: ${n} is not an integer`);
  if (f.type === 'int' && (n < -2147483648 || n > 2147483647)) throw new Error(`${f.name}: ${n} is out of int range`);
  return n;
}

function parseTs(raw: unknown): number {
  if (typeof raw === 'number' && Number.isFinite(raw)) return raw;
  const s = String(raw ?? '').trim();
  if (/^-?\d+$/.test(s)) return Number(s);
  const t = Date.parse(s);
  if (!Number.isFinite(t)) throw new Error(`ts: '${s}' is neither ms since epoch nor a date`);
  return t;
}

/** Turns one record (column -> raw value) into a row for the set, or throws with the reason. */
export function toRow(set: BatchFeatureSetSpec, rec: Record<string, unknown>): FeatureRow {
  const entity = rec[set.entity];
  if (entity === undefined || entity === null || String(entity) === '') throw new Error(`${set.entity}: missing`);
  if (/[{}]/.test(String(entity))) throw new Error(`${set.entity}: '{' and '}' are not allowed in entity ids`);
  if (rec.ts === undefined || rec.ts === '') throw new Error('ts: missing');
  const values: Record<string, number> = {};
  for (const f of set.fields) values[f.name] = typed(f, rec[f.name]);
  return { entity: String(entity), ts: parseTs(rec.ts), values };
}

async function countLines(file: string): Promise<number> {
  let n = 0;
  for await (const chunk of fs.createReadStream(file)) for (const b of chunk as Buffer) if (b === 10) n++;
  return n;
}

/** Yields [lineNumber, record | Error] for each data line. */
async function* records(file: string, format: 'csv' | 'jsonl'): AsyncGenerator<[number, Record<string, unknown> | Error]> {
  const rl = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
  let header: string[] | undefined;
  let line = 0;
  for await (const text of rl) {
    line++;
    if (text.trim() === '') continue;
    if (format === 'jsonl') {
      try {
        const v: unknown = JSON.parse(text);
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
        yield [line, v as Record<string, unknown>];
      } catch (err) {
        yield [line, new Error(`malformed JSON: ${(err as Error).message}`)];
      }
    } else if (!header) {
      header = splitCsv(text).map((h) => h.trim());
    } else {
      try {
        const cells = splitCsv(text);
        if (cells.length !== header.length) throw new Error(`${cells.length} columns, header has ${header.length}`);
        yield [line, Object.fromEntries(header.map((h, i) => [h, cells[i]]))];
      } catch (err) {
        yield [line, err as Error];
      }
    }
  }
}

/** The newest `ts` among the file's good rows (a first pass, for `redateTo`). */
async function newestTs(set: BatchFeatureSetSpec, file: string, format: 'csv' | 'jsonl'): Promise<number> {
  let newest = -Infinity;
  for await (const [, rec] of records(file, format)) {
    if (rec instanceof Error) continue;
    try {
      newest = Math.max(newest, toRow(set, rec).ts);
    } catch {
      // bad rows are reported by the loading pass
    }
  }
  return Number.isFinite(newest) ? newest : 0;
}

export async function loadFeatureFile(redis: Redis | Cluster, set: BatchFeatureSetSpec, opts: LoadOptions): Promise<LoadResult> {
  const started = Date.now();
  const format = opts.format ?? detectFormat(opts.file);
  const batchRows = opts.batchRows ?? 1000;
  const inFlight = Math.max(1, opts.inFlight ?? 4);
  const total = Math.max(0, (await countLines(opts.file)) - (format === 'csv' ? 1 : 0));
  const tsOffset = opts.redateTo === undefined ? 0 : opts.redateTo - (await newestTs(set, opts.file, format));
  const version = await beginVersion(redis, set.name, opts.file);
  const bad: BadRow[] = [];
  let rows = 0;
  let buf: FeatureRow[] = [];
  const pending = new Set<Promise<void>>();
  const flush = async () => {
    if (buf.length === 0) return;
    const chunk = buf;
    buf = [];
    const p = writeRows(redis, set.name, version, chunk).then(() => {
      rows += chunk.length;
      opts.onProgress?.({ rows, total, bad: bad.length, elapsedMs: Date.now() - started });
    });
    pending.add(p);
    p.finally(() => pending.delete(p)).catch(() => undefined);
    if (pending.size >= inFlight) await Promise.race(pending);
  };
  try {
    for await (const [line, rec] of records(opts.file, format)) {
      try {
        if (rec instanceof Error) throw rec;
        const row = toRow(set, rec);
        row.ts += tsOffset;
        buf.push(row);
      } catch (err) {
        bad.push({ line, reason: (err as Error).message });
        if (opts.onBadRow === 'reject') throw new LoadRejectedError(bad);
        continue;
      }
      if (buf.length >= batchRows) await flush();
    }
    await flush();
    await Promise.all(pending);
  } catch (err) {
    await Promise.allSettled(pending);
    await abortVersion(redis, set.name, version);
    throw err;
  }
  const previous = await flipVersion(redis, set.name, version, rows, opts.file);
  const removedVersions = await collectGarbage(redis, set.name, opts.gracePeriodMs ?? set.config.gracePeriodMs ?? 600_000);
  opts.onProgress?.({ rows, total, bad: bad.length, elapsedMs: Date.now() - started });
  return { set: set.name, version, previous, rows, bad, seconds: (Date.now() - started) / 1000, removedVersions };
}

/** A one-line progress bar (the shared format): `[#####.....] 50.0% 5000/10000 rows  12000 rows/s  ETA 0:01  (2 bad)`. */
export function progressLine(p: LoadProgress, width = 30): string {
  const rate = p.elapsedMs > 0 ? (p.rows / p.elapsedMs) * 1000 : 0;
  const left = p.total - p.rows - p.bad;
  return progressText({ done: p.rows + p.bad, total: p.total, rate, etaMs: left <= 0 ? 0 : rate > 0 ? (left / rate) * 1000 : null, extra: p.bad ? `(${p.bad} bad)` : undefined }, 'rows', width);
}
