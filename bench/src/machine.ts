import * as fs from 'node:fs';
import * as os from 'node:os';

/**
 * What the bench records of the CPU: model, and on Linux its clock and cache as /proc/cpuinfo
 * states them. Sessions land on different machines of one kind (2 cores, same kernel line), whose
 * CPUs differ (AMD EPYC; Intel Xeon at 2.8 GHz; Intel Xeon at 2.6 GHz with a 480 MB cache), and
 * memory-bound work (the window state, the broker) ran 3-4x apart between them: a figure is only
 * comparable with one measured on the same CPU, which is what these fields let a reader check.
 */
export interface CpuFacts {
  cpuModel: string;
  /** /proc/cpuinfo "cpu MHz" of the first core (absent elsewhere). */
  cpuMHz?: number;
  /** /proc/cpuinfo "cache size" in KB (absent elsewhere). */
  cacheKB?: number;
}

export function cpuFacts(): CpuFacts {
  const facts: CpuFacts = { cpuModel: os.cpus()[0]?.model ?? '?' };
  let text = '';
  try {
    text = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return facts; // not Linux: the model is all there is
  }
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.+)$`, 'm').exec(text)?.[1];
  const mhz = Number(field('cpu MHz'));
  if (Number.isFinite(mhz) && mhz > 0) facts.cpuMHz = Math.round(mhz);
  const cache = /^(\d+)\s*KB$/i.exec(field('cache size') ?? '');
  if (cache) facts.cacheKB = Number(cache[1]);
  return facts;
}

/** "Intel(R) Xeon(R) Processor, 2600 MHz, 480 MB cache" — the model with what /proc adds. */
export function describeCpu(m: CpuFacts): string {
  const extra = [m.cpuMHz ? `${m.cpuMHz} MHz` : '', m.cacheKB ? `${Math.round(m.cacheKB / 1024)} MB cache` : ''].filter(Boolean);
  return [m.cpuModel, ...extra].join(', ');
}
