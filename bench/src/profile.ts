/**
 * Summarises a V8 .cpuprofile (written by `node --cpu-prof`): self time per function and per area
 * (our src/, kafkajs, avsc, onnxruntime, node internals, GC, idle). Usable on its own:
 *   node bench/dist/bench/src/profile.js FILE.cpuprofile [TOP] [--last FROM[:TO]]   (--last: only
 *     the samples from FROM to TO seconds before the profile's end, e.g. a system's last step)
 *   node bench/dist/bench/src/profile.js FILE.cpuprofile --blocks MS   (the main thread's busy
 *     stretches of MS or more — what held the event loop — each with what ran in it)
 */
import * as fs from 'node:fs';
import { round } from './common';

interface CpuNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
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

/** `file:line` of a frame, its path shortened to node_modules/, dist/ or bench/. */
function whereOf(n: CpuNode): string {
  const { url, lineNumber } = n.callFrame;
  return url ? `${url.replace(/^file:\/\//, '').replace(/^.*?\/(node_modules|dist|bench)\//, '$1/')}:${lineNumber + 1}` : '';
}

/**
 * A stretch of a profile, in seconds before its end: `{ fromEndS: 40, toEndS: 5 }` keeps the samples
 * taken between 40 s and 5 s before the profile stopped (a system's last step, without its stop).
 */
export interface ProfileWindow {
  fromEndS: number;
  toEndS: number;
}

export function summariseProfile(file: string, topN = 20, window?: ProfileWindow): ProfileSummary {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  // Sample i was taken at startTime + the sum of timeDeltas up to i (µs).
  let at = prof.startTime;
  const from = window ? prof.endTime - window.fromEndS * 1e6 : -Infinity;
  const to = window ? prof.endTime - window.toEndS * 1e6 : Infinity;
  for (let i = 0; i < prof.samples.length; i++) {
    at += prof.timeDeltas[i] ?? 0;
    if (at < from || at > to) continue;
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0) / 1000);
  }
  const byFn = new Map<string, { fn: string; where: string; area: string; selfMs: number }>();
  const byArea = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id)!;
    const { functionName, url } = n.callFrame;
    const fn = functionName || '(anonymous)';
    const a = area(url, fn);
    total += ms;
    if (a === 'idle') idle += ms;
    byArea.set(a, (byArea.get(a) ?? 0) + ms);
    const where = whereOf(n);
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

export interface BusyBlock {
  /** Start, ms after the profile's start. */
  atMs: number;
  ms: number;
  /** Self time within the block per area. */
  byArea: Record<string, number>;
  /** Self time within the block per function, most first. */
  top: Array<{ fn: string; where: string; ms: number }>;
  /** Self time within the block by the nearest frame of our own code (src/) on the stack: which of our calls the time was spent under. */
  underOurs: Array<{ fn: string; where: string; ms: number }>;
}

/**
 * Stretches where the sampled main thread was never idle for at least `minMs`: an event-loop
 * block (timers, socket reads and writes waited behind it). A stretch ends at the first `(idle)`
 * sample. GC is part of a stretch (it holds the loop too).
 */
export function busyBlocks(file: string, minMs: number, topN = 8): BusyBlock[] {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const ours = new Map<number, CpuNode | null>();
  const nearestOurs = (id: number): CpuNode | null => {
    if (ours.has(id)) return ours.get(id)!;
    const n = byId.get(id)!;
    const found = area(n.callFrame.url, n.callFrame.functionName) === 'tributary (src/)' ? n : parent.has(id) ? nearestOurs(parent.get(id)!) : null;
    ours.set(id, found);
    return found;
  };
  const blocks: BusyBlock[] = [];
  let t = 0;
  let start = -1;
  let samples: Array<[number, number]> = [];
  const close = (end: number) => {
    if (start >= 0 && end - start >= minMs) {
      const byArea: Record<string, number> = {};
      const fns = new Map<string, { fn: string; where: string; ms: number }>();
      const under = new Map<string, { fn: string; where: string; ms: number }>();
      for (const [id, ms] of samples) {
        const n = byId.get(id)!;
        const fn = n.callFrame.functionName || '(anonymous)';
        const a = area(n.callFrame.url, fn);
        byArea[a] = (byArea[a] ?? 0) + ms;
        const key = `${fn}@${whereOf(n)}`;
        const e = fns.get(key) ?? { fn, where: whereOf(n), ms: 0 };
        e.ms += ms;
        fns.set(key, e);
        const o = nearestOurs(id);
        const okey = o ? `${o.callFrame.functionName}@${whereOf(o)}` : '(no src/ frame)';
        const u = under.get(okey) ?? { fn: o ? o.callFrame.functionName || '(anonymous)' : '(no src/ frame)', where: o ? whereOf(o) : '', ms: 0 };
        u.ms += ms;
        under.set(okey, u);
      }
      const sorted = (m: Map<string, { fn: string; where: string; ms: number }>) => [...m.values()].sort((a, b) => b.ms - a.ms).slice(0, topN).map((e) => ({ ...e, ms: round(e.ms, 1) }));
      for (const a of Object.keys(byArea)) byArea[a] = round(byArea[a], 1);
      blocks.push({ atMs: round(start, 0), ms: round(end - start, 1), byArea, top: sorted(fns), underOurs: sorted(under) });
    }
    start = -1;
    samples = [];
  };
  for (let i = 0; i < prof.samples.length; i++) {
    t += (prof.timeDeltas[i] ?? 0) / 1000;
    const n = byId.get(prof.samples[i])!;
    if (n.callFrame.functionName === '(idle)') {
      close(t);
      continue;
    }
    if (start < 0) start = t;
    const next = (prof.timeDeltas[i + 1] ?? 0) / 1000;
    samples.push([prof.samples[i], next]);
  }
  close(t);
  return blocks;
}

if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/dist/bench/src/profile.js FILE.cpuprofile [TOP | --blocks MS]');
    process.exit(2);
  }
  if (process.argv[3] === '--blocks') {
    const blocks = busyBlocks(file, Number(process.argv[4] ?? 40));
    for (const b of blocks) {
      console.log(`block at ${b.atMs} ms: ${b.ms} ms  ${Object.entries(b.byArea).sort((x, y) => y[1] - x[1]).map(([a, ms]) => `${a} ${ms}`).join(', ')}`);
      for (const f of b.top) console.log(`    ${String(f.ms).padStart(6)} ms  ${f.fn}  ${f.where}`);
      console.log('  under our frames:');
      for (const f of b.underOurs) console.log(`    ${String(f.ms).padStart(6)} ms  ${f.fn}  ${f.where}`);
    }
    console.log(`${blocks.length} blocks of ${process.argv[4] ?? 40} ms or more`);
    process.exit(0);
  }
  // --last FROM[:TO]: only the samples from FROM to TO seconds before the profile's end.
  const li = process.argv.indexOf('--last');
  const window = li > 0 ? (([f, t]) => ({ fromEndS: Number(f), toEndS: Number(t ?? 0) }))(process.argv[li + 1].split(':')) : undefined;
  const s = summariseProfile(file, li === 3 ? 25 : Number(process.argv[3] ?? 25), window);
  console.log(`total ${s.totalMs} ms sampled`);
  for (const a of s.byArea) console.log(`${String(a.percentOfBusy).padStart(5)}%  ${a.area}`);
  console.log('');
  for (const t of s.top) console.log(`${String(t.percentOfBusy).padStart(5)}%  ${String(t.selfMs).padStart(6)} ms  ${t.fn}  ${t.where}`);
}
