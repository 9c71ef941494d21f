/**
 * Summarises a V8 .cpuprofile (written by `node --cpu-prof`): self time per function and per area
 * (our src/, kafkajs, avsc, onnxruntime, node internals, GC, idle). Usable on its own:
 *   node bench/dist/bench/src/profile.js FILE.cpuprofile [TOP]
 */
import * as fs from 'node:fs';
import { round } from './common';

interface CpuNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: CpuNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** Share of non-idle time. */
  byArea: Array<{ area: string; ms: number; percentOfBusy: number }>;
  top: Array<{ fn: string; where: string; area: string; selfMs: number; percentOfBusy: number }>;
}

function area(url: string, fn: string): string {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return 'native/program';
  if (url.includes('/node_modules/')) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    return m ? m[1] : 'node_modules';
  }
  if (url.includes('/dist/src/') || url.includes('/src/')) return 'tributary (src/)';
  if (url.startsWith('node:') || url === '') return 'node internals';
  return 'other';
}

export function summariseProfile(file: string, topN = 20): ProfileSummary {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0) / 1000);
  const byFn = new Map<string, { fn: string; where: string; area: string; selfMs: number }>();
  const byArea = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    const fn = functionName || '(anonymous)';
    const a = area(url, fn);
    total += ms;
    if (a === 'idle') idle += ms;
    byArea.set(a, (byArea.get(a) ?? 0) + ms);
    const where = url ? `${url.replace(/^file:\/\//, '').replace(/^.*?\/(node_modules|dist|bench)\//, '$1/')}:${lineNumber + 1}` : '';
    const key = `${fn}@${where}`;
    const e = byFn.get(key) ?? { fn, where, area: a, selfMs: 0 };
    e.selfMs += ms;
    byFn.set(key, e);
  }
  const busy = total - idle;
  const pct = (ms: number) => round((100 * ms) / busy, 1);
  return {
    file,
    totalMs: round(total, 0),
    byArea: [...byArea.entries()].filter(([a]) => a !== 'idle').sort((x, y) => y[1] - x[1]).map(([a, ms]) => ({ area: a, ms: round(ms, 0), percentOfBusy: pct(ms) })),
    top: [...byFn.values()].filter((e) => e.area !== 'idle').sort((x, y) => y.selfMs - x.selfMs).slice(0, topN).map((e) => ({ ...e, selfMs: round(e.selfMs, 0), percentOfBusy: pct(e.selfMs) })),
  };
}

if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/dist/bench/src/profile.js FILE.cpuprofile [TOP]');
    process.exit(2);
  }
  const s = summariseProfile(file, Number(process.argv[3] ?? 25));
  console.log(`total ${s.totalMs} ms sampled`);
  for (const a of s.byArea) console.log(`${String(a.percentOfBusy).padStart(5)}%  ${a.area}`);
  console.log('');
  for (const t of s.top) console.log(`${String(t.percentOfBusy).padStart(5)}%  ${String(t.selfMs).padStart(6)} ms  ${t.fn}  ${t.where}`);
}
