/**
 * Live measurements of one running system: open-loop steps at fixed offered rates, the live
 * capacity search, and latency at given rates. Definitions (also written into every result file):
 *
 * - A step offers `rate` events/s for `seconds` (open loop, see drive.ts), then waits up to
 *   `drainTimeoutS` for the predictions of every event it sent.
 * - Latency of an event: probe receive time of its prediction - the time the driver handed it to
 *   the producer (its CreateTime). Percentiles are over EVERY event the step sent; an event with no
 *   prediction by the end of the drain counts as infinitely late.
 * - End-to-end lag at time t: events of the step acknowledged by the broker - events of the step
 *   predicted, sampled every 250 ms while driving. It covers every hop and consumer group of the
 *   system (and works for the naive baseline and the Kafka Streams peer alike). "Not growing": the
 *   least-squares slope of the lag over the second half of the step is at most
 *   `lagSlopeFraction` (2%) of the offered rate per second (the limit is never below a rise of
 *   20 events + 250 ms of traffic over that half: a commit cycle's saw-tooth).
 * - A step is VOID when the driver fell behind its own schedule: the p99 of per-event lateness
 *   exceeded `driverToleranceMs`. A void step never passes; it counts as a failure for the search
 *   only when the system failed by more than the driver's delay explains (events unpredicted, or
 *   p99 - the driver's worst lateness still >= the limit); otherwise it is retried, then ends the search.
 * - A step PASSES when it is not void, its p99 < `p99LimitMs` (1 s), lag is not growing, and every
 *   event it sent was predicted within the drain timeout.
 * - Live capacity: the highest passing offered rate, searched by stepping the rate: doubling from
 *   `startRate` until a step fails (halving first if the start fails), then upward from the highest
 *   pass in steps of at most 10% until a step fails. Capacity = the highest pass; the failing rate
 *   above it is at most 10% higher ("resolved"), unless the search ran into `maxRate` or a void step
 *   (then capacity is a lower bound, flagged). No backlog drain is involved.
 */
import { percentile, round, sleep, type ProcSampler, type ProcUsage } from './common';
import type { DriveResult, OpenLoopDriver, PhaseTrack, Probe } from './drive';
import { describeHostSpeed, measureHostSpeed, type HostSpeed } from './host-speed';
import type { Progress } from './progress';

export interface LiveOptions {
  stepSeconds: number;
  drainTimeoutS: number;
  pauseS: number;
  p99LimitMs: number;
  lagSlopeFraction: number;
  driverToleranceMs: number;
  tickMs: number;
  maxInFlight: number;
  startRate: number;
  minRate: number;
  maxRate: number;
  coarseFactor: number;
  refineStep: number;
  /** Absolute offered rates for the latency table. */
  rates: number[];
  /** Fractions of each system's capacity for the latency table. */
  fractions: number[];
  /** Absolute rates above this multiple of a system's capacity are not run (they only build a backlog), except the lowest. */
  maxOverCapacity: number;
  warmupRate: number;
  warmupSeconds: number;
  /** How often a void step is repeated before it counts as void. */
  voidRetries: number;
}

/** One running instance of a system: its probe, its driver, and what the sampler calls its processes. */
export interface Instance {
  probe: Probe;
  driver: OpenLoopDriver;
}

export interface Session {
  system: string;
  current(): Instance;
  /** Stops the instance, abandons its topics (events not yet predicted are marked abandoned) and starts a fresh one. */
  restart(reason: string): Promise<void>;
  /** Process names to summarise CPU/RSS for. */
  processNames(): string[];
  /** Throws when the system process died. */
  assertAlive(): void;
  /** Tells the system's processes a step starts (BENCH_HEAP_SAMPLE_DIR: each step's heap sample in its own file). */
  stepStarted?(label: string): void;
}

export type StepPurpose = 'warmup' | 'capacity' | 'rate' | 'fraction';

export interface StepResult {
  purpose: StepPurpose;
  phase: string;
  rate: number;
  /** For purpose 'fraction': the fraction of capacity. */
  fraction?: number;
  /** In an interleaved run (`--interleave`): the round (0-based) this step belongs to. */
  round?: number;
  seconds: number;
  sent: number;
  /** Predictions received while driving (start..end of the step) / step seconds. */
  achievedEps: number;
  /** Distinct predictions of this step's events by the end of the drain. */
  predicted: number;
  drained: boolean;
  drainSeconds: number;
  /** Over every sent event; null = infinite (more undelivered events than the percentile leaves out). */
  latencyMs: { p50: number | null; p95: number | null; p99: number | null; max: number | null; undelivered: number };
  /** The 5 slowest 100 ms windows of the step by send time: epoch ms, worst latency (null: undelivered), events sent in it. */
  slowestWindows?: Array<{ t: number; maxMs: number | null; events: number }>;
  /** producedTime stamped by the system - send time, over delivered events: the probe's share is latencyMs minus this. */
  producedLatencyMs: { p50: number | null; p99: number | null };
  /**
   * Receive time - the event's due time by the schedule, over every sent event (undelivered = ∞):
   * latencyMs plus the driver's lateness, i.e. with the wait for the driver's tick (up to --tick-ms)
   * counted as the system's. latencyMs (from hand-over, the record's CreateTime) is the figure the
   * issues' lines use; this one bounds what batching the load into ticks can hide. Absent in
   * result files written before 2026-12-06.
   */
  fromScheduleMs?: { p50: number | null; p99: number | null };
  lag: { endOfStep: number; max: number; slopePerS: number; limitPerS: number; growing: boolean };
  driver: Pick<DriveResult, 'latenessMs' | 'inflightWaits' | 'ackMs'> & { requests?: number };
  void: boolean;
  /** Void, yet failed by more than the driver's delay explains: an upper bound for the capacity search. */
  failsDespiteVoid: boolean;
  pass: boolean;
  reasons: string[];
  duplicates: number;
  deadLettered: number;
  ingestMismatch: number;
  processes: Record<string, ProcUsage | undefined>;
  /**
   * The host's speed just before the step and after its drain (fixed reference work timed in the
   * bench's process while the system is idle: bench/src/host-speed.ts), to compare steps and runs of
   * the same code on. Absent in result files written before 2026-12-06 (session of 05:28 UTC).
   */
  hostSpeed?: { before: HostSpeed; after: HostSpeed };
}

export interface CapacityResult {
  /** Highest passing rate; 0 when no rate down to minRate passed. */
  eps: number;
  /** Lowest failing rate above it (undefined when none). */
  firstFailEps?: number;
  resolved: boolean;
  note: string;
  steps: StepResult[];
}

export class LiveRunner {
  private seq = 0;
  private stepsDone = 0;

  constructor(
    private readonly o: LiveOptions,
    private readonly sampler: ProcSampler,
    private readonly progress: Progress,
    /** Seconds left for the rest of the run after this system (for the ETA). */
    private readonly etaAfter: () => number,
    private readonly stepsPlanned: () => number,
  ) {}

  private eta(stepLeftS: number): number {
    const per = this.o.stepSeconds + this.o.pauseS + 3;
    return stepLeftS + Math.max(0, this.stepsPlanned() - this.stepsDone - 1) * per + this.etaAfter();
  }

  async step(s: Session, purpose: StepPurpose, rate: number, seconds = this.o.stepSeconds, fraction?: number, roundNo?: number): Promise<StepResult> {
    s.assertAlive();
    const inst = s.current();
    const phase = `s${this.seq++}`;
    s.stepStarted?.(`${phase}-${purpose}-${rate}`);
    const total = Math.max(1, Math.round(rate * seconds));
    const track = inst.probe.track(phase, total);
    const speedBefore = measureHostSpeed();
    const lagSamples: Array<[number, number]> = [];
    let lastSample = 0;
    const status = (state: 'driving' | 'draining', elapsedS: number) =>
      this.progress.status({ system: s.system, phase: purpose, step: this.stepsDone + 1, rate, elapsedS, stepS: seconds, etaS: this.eta(Math.max(0, seconds - elapsedS)), state });
    const d = await inst.driver.drive(track, rate, {
      tickMs: this.o.tickMs,
      maxInFlight: this.o.maxInFlight,
      onTick: (ms) => {
        const now = Date.now();
        if (now - lastSample >= 250) {
          lastSample = now;
          lagSamples.push([now, track.acked - track.predicted]);
          status('driving', ms / 1000);
        }
      },
    });
    lagSamples.push([Date.now(), track.acked - track.predicted]);
    const predictedWhileDriving = countIn(track, d.start, d.end);
    const drainStart = Date.now();
    const drained = await inst.probe.drained(track, this.o.drainTimeoutS * 1000, () => status('draining', (Date.now() - d.start) / 1000));
    const drainSeconds = (Date.now() - drainStart) / 1000;
    s.assertAlive();
    const speedAfter = measureHostSpeed();

    const lat = new Float64Array(track.sent);
    const fromSchedule = new Float64Array(track.sent);
    let undelivered = 0;
    for (let i = 0; i < track.sent; i++) {
      const r = track.receivedAt[i];
      if (Number.isNaN(r)) {
        undelivered++;
        lat[i] = Infinity;
        fromSchedule[i] = Infinity;
      } else {
        lat[i] = r - track.sentAt[i];
        fromSchedule[i] = r - track.dueAt[i];
      }
    }
    fromSchedule.sort();
    // The slowest 100 ms windows by send time (epoch ms of the window, its worst latency, events in
    // it): a recurring stall shows as a few windows far above p50, to line up with the system's log.
    const windows = new Map<number, { max: number; n: number }>();
    for (let i = 0; i < track.sent; i++) {
      const w = Math.floor(track.sentAt[i] / 100) * 100;
      const x = windows.get(w) ?? { max: 0, n: 0 };
      x.max = Math.max(x.max, lat[i]);
      x.n += 1;
      windows.set(w, x);
    }
    const slowestWindows = [...windows].sort((a, b) => b[1].max - a[1].max).slice(0, 5).map(([t, x]) => ({ t, maxMs: Number.isFinite(x.max) ? Math.round(x.max) : null, events: x.n }));
    lat.sort();
    // the system's own share: its producedTime - send time (no probe fetch, no read_committed wait)
    const sys: number[] = [];
    for (let i = 0; i < track.sent; i++) if (!Number.isNaN(track.producedAt[i])) sys.push(track.producedAt[i] - track.sentAt[i]);
    sys.sort((a, b) => a - b);
    const fin = (x: number) => (Number.isFinite(x) ? Math.round(x) : null);
    const latencyMs = { p50: fin(percentile(lat, 50)), p95: fin(percentile(lat, 95)), p99: fin(percentile(lat, 99)), max: fin(lat[lat.length - 1]), undelivered };

    const half = d.start + ((d.end - d.start) * 1) / 2;
    const slope = slopePerSecond(lagSamples.filter(([t]) => t >= half));
    // 2% of the offered rate per second, but never less than a rise of 20 events + 250 ms of traffic
    // over the half step: a system's commit cycle alone makes the lag a saw-tooth of about that size,
    // which a short step's fit cannot tell from growth (with 30 s steps the 2% rule decides above 400/s)
    const halfS = (d.end - half) / 1000;
    const limitPerS = Math.max(this.o.lagSlopeFraction * rate, halfS > 0 ? (20 + 0.25 * rate) / halfS : 0);
    const lag = { endOfStep: lagSamples[lagSamples.length - 1][1], max: Math.max(...lagSamples.map((x) => x[1])), slopePerS: round(slope, 1), limitPerS: round(limitPerS, 1), growing: slope > limitPerS };

    const isVoid = d.latenessMs.p99 > this.o.driverToleranceMs;
    // A void step cannot pass. It still bounds capacity from above when the system failed by more
    // than the driver's own delay could explain: events unpredicted, or p99 over the limit even
    // after subtracting the driver's worst lateness (the driver offered less than nominal, in bunches).
    const failsDespiteVoid = isVoid && (undelivered > 0 || (latencyMs.p99 ?? Infinity) - d.latenessMs.max >= this.o.p99LimitMs);
    const reasons: string[] = [];
    if (isVoid) reasons.push(`VOID: driver lateness p99 ${d.latenessMs.p99} ms > ${this.o.driverToleranceMs} ms`);
    if (latencyMs.p99 === null || latencyMs.p99 >= this.o.p99LimitMs) reasons.push(`p99 ${latencyMs.p99 ?? '∞'} ms >= ${this.o.p99LimitMs} ms`);
    if (lag.growing) reasons.push(`lag growing ${lag.slopePerS}/s > ${lag.limitPerS}/s`);
    if (!drained) reasons.push(`${undelivered} events not predicted within ${this.o.drainTimeoutS} s`);
    if (track.duplicates > 0) reasons.push(`${track.duplicates} duplicate predictions`);
    if (track.deadLettered > 0) reasons.push(`${track.deadLettered} dead-lettered`);
    const r: StepResult = {
      purpose,
      phase,
      rate,
      fraction,
      ...(roundNo !== undefined ? { round: roundNo } : {}),
      seconds,
      sent: track.sent,
      achievedEps: round(predictedWhileDriving / seconds, 0),
      predicted: track.predicted,
      drained,
      drainSeconds: round(drainSeconds, 1),
      latencyMs,
      producedLatencyMs: { p50: fin(percentile(sys, 50)), p99: fin(percentile(sys, 99)) },
      fromScheduleMs: { p50: fin(percentile(fromSchedule, 50)), p99: fin(percentile(fromSchedule, 99)) },
      slowestWindows,
      lag,
      driver: { latenessMs: d.latenessMs, inflightWaits: d.inflightWaits, requests: d.requests, ackMs: d.ackMs },
      void: isVoid,
      failsDespiteVoid,
      pass: !isVoid && reasons.length === 0,
      reasons,
      duplicates: track.duplicates,
      deadLettered: track.deadLettered,
      ingestMismatch: track.ingestMismatch,
      processes: Object.fromEntries(s.processNames().map((n) => [n, this.sampler.usage(n, d.start, d.end)])),
      hostSpeed: { before: speedBefore, after: speedAfter },
    };
    this.stepsDone++;
    this.progress.log(
      `${s.system} ${purpose}${fraction !== undefined ? ` ${Math.round(fraction * 100)}%` : ''}${roundNo !== undefined ? ` round ${roundNo + 1}` : ''} ${rate.toLocaleString('en-US')}/s x ${seconds} s: ${r.void ? (failsDespiteVoid ? 'VOID+FAIL' : 'VOID') : r.pass ? 'pass' : 'FAIL'} p50 ${latencyMs.p50 ?? '∞'} p99 ${latencyMs.p99 ?? '∞'} max ${latencyMs.max ?? '∞'} ms (produced p99 ${r.producedLatencyMs.p99 ?? '–'}, from schedule p99 ${r.fromScheduleMs?.p99 ?? '∞'}), achieved ${r.achievedEps}/s, lag end ${lag.endOfStep} slope ${lag.slopePerS}/s, driver late p99 ${d.latenessMs.p99} ms, host ${describeHostSpeed(speedBefore)} → ${describeHostSpeed(speedAfter)}${reasons.length ? ` [${reasons.join('; ')}]` : ''}`,
      { system: s.system, step: r },
    );
    if (!drained) await s.restart(`step ${phase} at ${rate}/s left ${undelivered} events unpredicted after ${this.o.drainTimeoutS} s`);
    else await sleep(this.o.pauseS * 1000);
    return r;
  }

  /** Warm-up (group join, JIT, connections): a short low-rate step, checked for correctness but not judged. */
  warmup(s: Session): Promise<StepResult> {
    return this.step(s, 'warmup', this.o.warmupRate, this.o.warmupSeconds);
  }

  async capacity(s: Session): Promise<CapacityResult> {
    const steps: StepResult[] = [];
    const o = this.o;
    const run = async (rate: number) => {
      let r = await this.step(s, 'capacity', rate);
      steps.push(r);
      // a void step says nothing about the system: retry it (the machine may have been busy)
      for (let retry = 0; r.void && !r.failsDespiteVoid && retry < this.o.voidRetries; retry++) {
        r = await this.step(s, 'capacity', rate);
        steps.push(r);
      }
      return r;
    };
    let lastPass: number | undefined;
    let firstFail: number | undefined;
    /** Lowest rate the driver could not offer (void after retries, not a system failure). */
    let voidAt: number | undefined;
    let stoppedBy: string | undefined;
    const voidStep = (r: StepResult) => r.void && !r.failsDespiteVoid;
    // 1. bracket coarsely
    let rate = o.startRate;
    for (;;) {
      const r = await run(rate);
      if (voidStep(r)) {
        voidAt = rate;
        break;
      }
      if (!r.pass) {
        firstFail = rate;
        break;
      }
      lastPass = rate;
      if (rate >= o.maxRate) {
        stoppedBy = `reached --max-rate ${o.maxRate}/s`;
        break;
      }
      rate = Math.min(o.maxRate, Math.round(rate * o.coarseFactor));
    }
    // nothing passed yet: halve (a void start says nothing, so it halves too)
    if (lastPass === undefined) {
      for (rate = Math.round((firstFail ?? voidAt!) / o.coarseFactor); rate >= o.minRate; rate = Math.round(rate / o.coarseFactor)) {
        const r = await run(rate);
        if (r.pass) {
          lastPass = rate;
          break;
        }
        if (voidStep(r)) voidAt = rate;
        else firstFail = rate;
      }
    }
    // 2. refine upward from the highest pass in steps of at most refineStep (10%), below the lowest
    //    failing rate (or the rate the driver could not offer)
    while (lastPass !== undefined && !stoppedBy) {
      const ceiling = Math.min(firstFail ?? Infinity, voidAt ?? Infinity);
      if (!Number.isFinite(ceiling)) break;
      const next = stepUp(lastPass, o.refineStep);
      if (next >= ceiling) break;
      const r = await run(next);
      if (voidStep(r)) voidAt = next;
      else if (r.pass) lastPass = next;
      else firstFail = next;
    }
    if (!stoppedBy && voidAt !== undefined && (firstFail === undefined || voidAt < firstFail)) stoppedBy = `the driver could not offer ${voidAt}/s (void after ${o.voidRetries} retries)`;
    const eps = lastPass ?? 0;
    const resolved = lastPass !== undefined && firstFail !== undefined && (voidAt === undefined || voidAt > firstFail) && firstFail <= lastPass * (1 + o.refineStep) + 1e-9;
    const note =
      lastPass === undefined
        ? `no offered rate down to ${o.minRate}/s passed${stoppedBy ? `; ${stoppedBy}` : ''}`
        : resolved
          ? `${eps}/s passes, ${firstFail}/s (+${round((firstFail! / eps - 1) * 100, 1)}%) fails`
          : `lower bound: ${stoppedBy ?? 'search stopped'}`;
    this.progress.log(`${s.system}: live capacity ${eps.toLocaleString('en-US')} events/s (${note})`);
    return { eps, firstFailEps: firstFail, resolved, note, steps };
  }

  /** Latency at the absolute rates (up to maxOverCapacity x capacity) and at fractions of capacity, ascending. */
  plannedLatencyRates(capacity: number): Array<{ rate: number; purpose: 'rate' | 'fraction'; fraction?: number }> {
    const out: Array<{ rate: number; purpose: 'rate' | 'fraction'; fraction?: number }> = [];
    // the lowest absolute rate always runs: it is the one point every system shares
    const lowest = Math.min(...this.o.rates);
    for (const r of this.o.rates) if (r === lowest || r <= this.o.maxOverCapacity * capacity) out.push({ rate: r, purpose: 'rate' });
    if (capacity > 0) for (const f of this.o.fractions) out.push({ rate: Math.max(1, Math.round(f * capacity)), purpose: 'fraction', fraction: f });
    return out.sort((a, b) => a.rate - b.rate);
  }
}

/** Next rate at most `step` (10%) above `rate`, rounded down to a round number. */
export function stepUp(rate: number, step: number): number {
  const max = rate * (1 + step);
  const unit = max >= 10000 ? 100 : max >= 1000 ? 10 : 1;
  return Math.max(rate + 1, Math.floor(max / unit) * unit);
}

function countIn(track: PhaseTrack, from: number, to: number): number {
  let n = 0;
  for (let i = 0; i < track.sent; i++) {
    const r = track.receivedAt[i];
    if (r >= from && r <= to) n++;
  }
  return n;
}

/** Least-squares slope (units per second) of (ms epoch, value) samples. */
export function slopePerSecond(samples: Array<[number, number]>): number {
  if (samples.length < 3) return 0;
  const n = samples.length;
  const mt = samples.reduce((a, [t]) => a + t, 0) / n;
  const mv = samples.reduce((a, [, v]) => a + v, 0) / n;
  let num = 0;
  let den = 0;
  for (const [t, v] of samples) {
    num += (t - mt) * (v - mv);
    den += (t - mt) ** 2;
  }
  return den > 0 ? (num / den) * 1000 : 0;
}
