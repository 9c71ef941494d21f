import * as fs from 'node:fs';
import * as path from 'node:path';
import { tributaryHome } from '../util/paths';
import { isPidAlive } from '../util/process-alive';

/** A running tributary process that serves /metrics: written at start, removed at stop; `tributary status` reads them. */
export interface RunRecord {
  pid: number;
  /** What runs: `run`, `drift`, ... */
  kind: string;
  topology: string;
  stages: string[];
  metricsUrl: string;
  startedAt: string;
}

export function runsDir(home = tributaryHome()): string {
  return path.join(home, 'runs');
}

/** Records this process; returns a remover (call it on shutdown). */
export function recordRun(rec: Omit<RunRecord, 'pid' | 'startedAt'>, home?: string): () => void {
  const dir = runsDir(home);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${process.pid}-${rec.kind}.json`);
  const full: RunRecord = { pid: process.pid, startedAt: new Date().toISOString(), ...rec };
  fs.writeFileSync(file, `${JSON.stringify(full, null, 2)}\n`);
  return () => fs.rmSync(file, { force: true });
}


/** Records of live processes; files of dead ones are removed. */
export function listRuns(home?: string): RunRecord[] {
  const dir = runsDir(home);
  if (!fs.existsSync(dir)) return [];
  const out: RunRecord[] = [];
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.json')).sort()) {
    const file = path.join(dir, f);
    try {
      const rec = JSON.parse(fs.readFileSync(file, 'utf8')) as RunRecord;
      if (isPidAlive(rec.pid)) out.push(rec);
      else fs.rmSync(file, { force: true });
    } catch {
      // half-written or foreign file: skip
    }
  }
  return out;
}
