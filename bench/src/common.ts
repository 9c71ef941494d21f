/**
 * Shared pieces of the benchmark: percentiles,
 * /proc sampling of CPU and RSS per process, and the IPC messages between the bench and its children.
 */
import * as fs from 'node:fs';
import type { CommitSettings, Delivery, Variant } from './topologies';
import type { TributaryCodeRef } from './tributary-code';

/** What a system-under-test child needs to know (passed as JSON in argv[2]). */
export interface ChildConfig {
  brokers: string[];
  schemaRegistryUrl: string;
  redisUrl: string;
  /** Topic/group suffix of this instance. */
  suffix: string;
  partitions: number;
  variant?: Variant;
  delivery?: Delivery;
  transactions?: 'per-partition' | 'shared';
  /** Shared transactions: one sink for the process (the engine's default) or one per chain. */
  sharedScope?: 'process' | 'chain';
  /** tributary: run consecutive stages as one chain (engines that know the option). */
  fuse?: boolean;
  commit?: CommitSettings;
  /** tributary: the scoring stage's pool.workers (undefined: the topology's). */
  poolWorkers?: number;
  code?: TributaryCodeRef;
  /** tributary: false in every process of a system but its first (`Pipeline` option; older code ignores it). */
  fastForwardOnStop?: boolean;
  /** raw onnx only: seconds per measurement. */
  seconds?: number;
}

export type ChildMessage =
  | { type: 'ready' }
  | { type: 'stopped'; counters: Record<string, number> }
  | { type: 'result'; result: unknown }
  | { type: 'error'; message: string };

/** `--commit-interval-ms`'s list: 0 is an interval (the engine's default: transactions back to back), so it is kept. */
export function intervalList(s: string): number[] {
  return s.split(',').map((x) => Number(x.trim())).filter((x) => Number.isFinite(x) && x >= 0);
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

/** The median (mean of the middle two of an even count); null for none. */
export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return (s[Math.floor((s.length - 1) / 2)] + s[Math.ceil((s.length - 1) / 2)]) / 2;
}

export function round(x: number, digits = 1): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// /proc sampling

const CLK_TCK = 100; // Linux USER_HZ on every mainstream kernel config
const PAGE = 4096;

interface ProcSample {
  t: number;
  /** utime + stime, clock ticks. */
  ticks: number;
  rssBytes: number;
}

/** Reads one pid's CPU ticks and RSS from /proc; undefined when it is gone. */
export function readProc(pid: number): Omit<ProcSample, 't'> | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces: fields start after the closing parenthesis
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    const rssPages = Number(rest[21]);
    return { ticks: utime + stime, rssBytes: rssPages * PAGE };
  } catch {
    return undefined;
  }
}

export interface ProcUsage {
  /** Average CPU over the window, percent of one core (200 = both cores of a 2-core machine). */
  cpuPercent: number;
  /** CPU seconds used in the window. */
  cpuSeconds: number;
  rssMaxMiB: number;
  rssAvgMiB: number;
}

/**
 * The machine's CPU stolen by its hypervisor (`steal` of /proc/stat's `cpu` line, all cores), as a
 * pseudo-process: on a shared VM it moves every figure of a step, so each step reports it.
 */
export const STEAL = 'cpu steal (machine)';
const STEAL_PID = -1;

function readSteal(): Omit<ProcSample, 't'> | undefined {
  try {
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
    // cpu user nice system idle iowait irq softirq steal ...
    return { ticks: Number(cpu[8] ?? 0), rssBytes: 0 };
  } catch {
    return undefined;
  }
}

/** Samples named processes every `intervalMs`; `usage(name, from, to)` summarises a time window. */
export class ProcSampler {
  private readonly samples = new Map<string, ProcSample[]>();
  private readonly pids = new Map<string, number>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly intervalMs = 250) {}

  track(name: string, pid: number): void {
    this.pids.set(name, pid);
    if (!this.samples.has(name)) this.samples.set(name, []);
    this.sampleOne(name, pid);
  }

  untrack(name: string): void {
    const pid = this.pids.get(name);
    if (pid !== undefined) this.sampleOne(name, pid);
    this.pids.delete(name);
  }

  start(): void {
    this.timer = setInterval(() => this.sampleAll(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.sampleAll();
  }

  sampleAll(): void {
    for (const [name, pid] of this.pids) this.sampleOne(name, pid);
  }

  /** Samples the machine's CPU steal too, as the pseudo-process STEAL. */
  trackSteal(): void {
    this.track(STEAL, STEAL_PID);
  }

  private sampleOne(name: string, pid: number): void {
    const s = pid === STEAL_PID ? readSteal() : readProc(pid);
    if (s) this.samples.get(name)!.push({ t: Date.now(), ...s });
  }

  usage(name: string, from: number, to: number): ProcUsage | undefined {
    const all = this.samples.get(name) ?? [];
    const inWin = all.filter((s) => s.t >= from && s.t <= to);
    if (inWin.length < 2) return undefined;
    const a = inWin[0];
    const b = inWin[inWin.length - 1];
    const secs = (b.t - a.t) / 1000;
    const cpuSeconds = (b.ticks - a.ticks) / CLK_TCK;
    const rss = inWin.map((s) => s.rssBytes / 2 ** 20);
    return {
      cpuPercent: round(secs > 0 ? (100 * cpuSeconds) / secs : NaN),
      cpuSeconds: round(cpuSeconds, 2),
      rssMaxMiB: round(Math.max(...rss)),
      rssAvgMiB: round(rss.reduce((x, y) => x + y, 0) / rss.length),
    };
  }

  names(): string[] {
    return [...this.samples.keys()];
  }
}

/** Child-side helper: send an IPC message if there is a parent channel. */
export function tell(msg: ChildMessage): void {
  if (process.send) process.send(msg);
}

export function childConfig(): ChildConfig {
  return JSON.parse(process.argv[2]) as ChildConfig;
}
