/**
 * How fast this host is right now, by three fixed workloads timed in this process: integer
 * arithmetic, dependent reads from memory (a pointer chase over 32 MiB), and short-lived object
 * allocation (the young generation's scavenges included).
 *
 * Why: on the machines the bench runs on, the same code and inputs have measured a factor 1.9 apart
 * in CPU time per event from one run to the next with no steal recorded (BENCHMARKS.md item 44), so
 * a figure near a line cannot say whether the code or the host moved. Timing the same reference
 * work beside each measurement lets a reader see the host's speed of the moment and compare runs on
 * it. The figures describe the host, never correct a result: nothing is divided by them.
 */

export interface HostSpeed {
  /** Nanoseconds per step of an xorshift loop (ALU bound; moves with the core's clock and steal). */
  aluNs: number;
  /** Nanoseconds per dependent read of a random 32 MiB cycle (memory latency: caches, DRAM, neighbours). */
  memoryNs: number;
  /** Nanoseconds per small object allocated and dropped (the allocator and the scavenger). */
  allocNs: number;
}

const CHASE_ENTRIES = 8 * 1024 * 1024; // 32 MiB of Int32: past the private caches of every host we have seen
const ALU_STEPS = 4_000_000;
const CHASE_STEPS = 400_000;
const ALLOC_OBJECTS = 400_000;
const REPEATS = 3;

let chase: Int32Array | undefined;

/**
 * One cycle through all of 0..n-1 in a seeded random order (Sattolo's shuffle of the identity): from
 * any index, following `next[i]` visits every entry once before it returns, so a chase never settles
 * in a cached sub-cycle.
 */
export function randomCycle(n: number, seed = 0x9e3779b9): Int32Array {
  const next = new Int32Array(n);
  for (let i = 0; i < n; i++) next[i] = i;
  let s = seed >>> 0 || 1;
  for (let i = n - 1; i > 0; i--) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const j = s % i; // j < i: Sattolo, a single cycle
    const t = next[i];
    next[i] = next[j];
    next[j] = t;
  }
  return next;
}

let sink = 0; // results kept so the optimiser cannot drop the loops

function aluOnce(): number {
  let x = 0x2545f491 ^ sink;
  const t = process.hrtime.bigint();
  for (let i = 0; i < ALU_STEPS; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  const ns = Number(process.hrtime.bigint() - t);
  sink ^= x;
  return ns / ALU_STEPS;
}

function memoryOnce(next: Int32Array): number {
  let i = sink & (next.length - 1);
  const t = process.hrtime.bigint();
  for (let k = 0; k < CHASE_STEPS; k++) i = next[i];
  const ns = Number(process.hrtime.bigint() - t);
  sink ^= i;
  return ns / CHASE_STEPS;
}

function allocOnce(): number {
  const ring = new Array<{ a: number; b: number; c: string | null }>(1024);
  const t = process.hrtime.bigint();
  for (let k = 0; k < ALLOC_OBJECTS; k++) ring[k & 1023] = { a: k, b: k * 0.5, c: null };
  const ns = Number(process.hrtime.bigint() - t);
  sink ^= ring[sink & 1023]?.a ?? 0;
  return ns / ALLOC_OBJECTS;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[s.length >> 1];
}

/**
 * The host's speed now: each workload run three times, the median kept (one descheduling does not
 * make the host look slow). ~0.1–0.3 s of this thread; the first call also builds the 32 MiB cycle.
 */
export function measureHostSpeed(): HostSpeed {
  chase ??= randomCycle(CHASE_ENTRIES);
  const next = chase;
  const alu: number[] = [];
  const memory: number[] = [];
  const alloc: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    alu.push(aluOnce());
    memory.push(memoryOnce(next));
    alloc.push(allocOnce());
  }
  const round = (x: number) => +x.toFixed(2);
  return { aluNs: round(median(alu)), memoryNs: round(median(memory)), allocNs: round(median(alloc)) };
}

/** "alu 0.61 · memory 92.4 · alloc 14.1 ns" — one line for a table or a log. */
export function describeHostSpeed(h: HostSpeed): string {
  return `alu ${h.aluNs} · memory ${h.memoryNs} · alloc ${h.allocNs} ns`;
}
