/**
 * Paired comparison of systems on a machine whose speed drifts (`npm run bench -- --interleave N`).
 *
 * Measured one after the other, two systems meet different machines: on this project's virtual
 * machine the same code has measured 3× apart an hour later (hypervisor steal, a busy neighbour),
 * so "A then B" says as much about the hour as about A and B. Interleaving puts every system on
 * the same minutes: all of them are started and warmed up first, then each round steps every rate
 * once per system while the others idle, the order reversed every round (A B, B A, A B, …) so that
 * a steady drift hits each alike. A verdict is then a count of rounds won, not one pair of figures.
 */
import { median, STEAL } from './common';
import type { StepResult } from './live';

/** One step of the schedule: round r, rate, index of the system to step. */
export interface ScheduledStep {
  round: number;
  rate: number;
  system: number;
}

/**
 * The order of an interleaved run: rounds outermost, then the rates ascending, then the systems —
 * in their given order in even rounds, reversed in odd ones.
 */
export function interleavedSchedule(rounds: number, rates: readonly number[], systems: number): ScheduledStep[] {
  const out: ScheduledStep[] = [];
  const asc = [...rates].sort((a, b) => a - b);
  for (let round = 0; round < rounds; round++) {
    for (const rate of asc) {
      for (let k = 0; k < systems; k++) out.push({ round, rate, system: round % 2 === 0 ? k : systems - 1 - k });
    }
  }
  return out;
}

/** What the comparison reads of a system: its name and its steps (those of an interleaved run carry `round`). */
export interface InterleavedSystem {
  name: string;
  latency: readonly StepResult[];
}

export interface RateRow {
  rate: number;
  /** Per system (in the run's order): per round the p50 / p99 of its last try (null: void or not run; Infinity: events left unpredicted), the machine's CPU steal % during it, and the medians. */
  systems: Array<{ name: string; p50: Array<number | null>; p99: Array<number | null>; medianP50: number | null; medianP99: number | null; steal: Array<number | null> }>;
  /** Each system against the first: rounds where both have a p99, how many of them the other's p99 was lower, and the median ratio other / first. */
  versusFirst: Array<{ name: string; rounds: number; lower: number; medianRatio: number | null }>;
}

/**
 * `--max-steal-pct`: a step during which the hypervisor stole more than `limitPct` % of the
 * machine's CPU (all its cores together) is void — the machine, not the system, set the pace, as
 * when the driver falls behind — and is retried like any void step. The sampler reports steal in %
 * of one core summed over the cores, hence the division. A limit of 0 (or no steal sample) changes
 * nothing. Returns the step itself when it stays valid, a voided copy otherwise.
 */
export function voidIfStolen(step: StepResult, limitPct: number, cores: number): StepResult {
  const stolen = step.processes[STEAL]?.cpuPercent;
  if (!(limitPct > 0) || stolen === undefined || stolen === null) return step;
  const ofMachine = stolen / Math.max(1, cores);
  if (ofMachine <= limitPct) return step;
  return { ...step, void: true, failsDespiteVoid: false, pass: false, reasons: [...step.reasons, `VOID: the hypervisor stole ${ofMachine.toFixed(1)}% of the machine's CPU > ${limitPct}%`] };
}

/** The per-rate rows of an interleaved run (steps without `round` are ignored). */
export function interleavedRows(systems: readonly InterleavedSystem[], rounds: number): RateRow[] {
  const rates = [...new Set(systems.flatMap((s) => s.latency.filter((x) => x.round !== undefined).map((x) => x.rate)))].sort((a, b) => a - b);
  return rates.map((rate) => {
    const per = systems.map((s) => {
      const p50: Array<number | null> = [];
      const p99: Array<number | null> = [];
      const steal: Array<number | null> = [];
      for (let r = 0; r < rounds; r++) {
        const tries = s.latency.filter((x) => x.round === r && x.rate === rate);
        const last = tries[tries.length - 1];
        const ok = last && !last.void;
        // a step that left events unpredicted has an infinite percentile; a void one has none
        p50.push(ok ? (last.latencyMs.p50 ?? Infinity) : null);
        p99.push(ok ? (last.latencyMs.p99 ?? Infinity) : null);
        steal.push(last?.processes[STEAL]?.cpuPercent ?? null);
      }
      const finite = (xs: Array<number | null>) => xs.filter((x): x is number => x !== null);
      return { name: s.name, p50, p99, steal, medianP50: median(finite(p50)), medianP99: median(finite(p99)) };
    });
    const first = per[0];
    const versusFirst = per.slice(1).map((o) => {
      const ratios: number[] = [];
      let lower = 0;
      for (let r = 0; r < rounds; r++) {
        const a = first?.p99[r];
        const b = o.p99[r];
        if (a === null || a === undefined || b === null) continue;
        ratios.push(b / Math.max(a, 1));
        if (b < a) lower++;
      }
      return { name: o.name, rounds: ratios.length, lower, medianRatio: median(ratios) };
    });
    return { rate, systems: per, versusFirst };
  });
}
