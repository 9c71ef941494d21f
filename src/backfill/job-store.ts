/**
 * A backfill job's persisted state, under `<stateDir>/<job>/` (default `$TRIBUTARY_HOME/backfill`):
 *   plan.json        the resolved range and everything that fixes the job's output (written once)
 *   checkpoint.json  file output: per-partition next offsets + output/dead-letter file lengths,
 *                    replaced atomically after each appended batch (topic output: the offsets are
 *                    in the job's Kafka consumer group, committed in the batch's transaction)
 *   counters.json    running totals for the summary (exact for file output; for topic output
 *                    written after each committed transaction, so at worst one batch behind)
 * Every write goes through write-to-temp + fsync + rename, so a crash leaves the old or the new file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tributaryHome } from '../util/paths';
import { TributaryError } from '../util/errors';
import type { PartitionRange } from './range';

export type OutputTarget = { kind: 'topic'; topic: string } | { kind: 'file'; path: string; format: 'jsonl' | 'csv' };

export interface BackfillPlan {
  version: 1;
  job: string;
  createdAt: string;
  topology: string;
  inputTopic: string;
  /** The specs as given, for the record; `ranges` is what they resolved to. */
  specs: { from: string; to: string; warmupFrom?: string };
  ranges: PartitionRange[];
  output: OutputTarget;
  model: { repository: string; name: string; version: string };
  stateNamespace: string;
  /** Consumer group holding the job's committed offsets (topic output). */
  checkpointGroup: string;
  includeFeatures: boolean;
  deadLetterTopic?: string;
}

export interface Counters {
  events: number;
  warmupEvents: number;
  predictions: number;
  deadLettered: number;
  /** Milliseconds spent running, over every attempt. */
  runMs: number;
  attempts: number;
}

export interface FileCheckpoint {
  /** Next offset to read, per partition. */
  offsets: Record<string, number>;
  outputBytes: number;
  deadLetterBytes: number;
  counters: Counters;
  done: boolean;
}

export function defaultStateDir(): string {
  return path.join(tributaryHome(), 'backfill');
}

export function emptyCounters(): Counters {
  return { events: 0, warmupEvents: 0, predictions: 0, deadLettered: 0, runMs: 0, attempts: 0 };
}

/** Writes a file atomically: temp file, fsync, rename (and fsync of the directory, best effort). */
export function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  try {
    const dfd = fs.openSync(path.dirname(file), 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
  } catch {
    // directories cannot be fsynced on every platform
  }
}

export class JobStore {
  readonly dir: string;

  constructor(stateDir: string, readonly job: string) {
    if (!/^[A-Za-z0-9._-]+$/.test(job)) throw new TributaryError(`job name '${job}' may only contain letters, digits, '.', '_' and '-'`);
    this.dir = path.join(stateDir, job);
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  private read<T>(name: string): T | undefined {
    try {
      return JSON.parse(fs.readFileSync(this.file(name), 'utf8')) as T;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new TributaryError(`${this.file(name)}: ${(err as Error).message}`);
    }
  }

  private write(name: string, value: unknown): void {
    fs.mkdirSync(this.dir, { recursive: true });
    writeFileAtomic(this.file(name), `${JSON.stringify(value, null, 2)}\n`);
  }

  plan(): BackfillPlan | undefined {
    return this.read<BackfillPlan>('plan.json');
  }

  savePlan(plan: BackfillPlan): void {
    this.write('plan.json', plan);
  }

  checkpoint(): FileCheckpoint | undefined {
    return this.read<FileCheckpoint>('checkpoint.json');
  }

  saveCheckpoint(c: FileCheckpoint): void {
    this.write('checkpoint.json', c);
  }

  counters(): (Counters & { done?: boolean }) | undefined {
    return this.read<Counters & { done?: boolean }>('counters.json');
  }

  saveCounters(c: Counters & { done?: boolean }): void {
    this.write('counters.json', c);
  }

  /** Forgets the job (a fresh plan follows). */
  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
