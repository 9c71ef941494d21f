/**
 * The benchmark's decision logic, without servers: the live capacity search (bracketing, ≤ 10%
 * refinement, void steps), the lag slope, the topology variants and the system filter, and the
 * check that this checkout's compile is not older than its sources.
 */
import { repoRoot } from '../../src/stack/paths';
import { acceptance } from '../../bench/src/acceptance';
import { intervalList, ProcSampler, STEAL } from '../../bench/src/common';
import { interleavedRows, interleavedSchedule, voidIfStolen } from '../../bench/src/interleave';
import { LiveRunner, slopePerSecond, stepUp, type LiveOptions, type Session, type StepResult, type StepPurpose } from '../../bench/src/live';
import type { SystemOutcome } from '../../bench/src/main';
import type { Progress } from '../../bench/src/progress';
import { catalog, DEFAULT_SYSTEMS, selectSystems, withCommitSweep } from '../../bench/src/systems';
import { driverKeyField, variantSpec } from '../../bench/src/topologies';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ownCode, staleCompiles } from '../../bench/src/tributary-code';

const options: LiveOptions = {
  stepSeconds: 30,
  drainTimeoutS: 60,
  pauseS: 0,
  p99LimitMs: 1000,
  lagSlopeFraction: 0.02,
  driverToleranceMs: 50,
  tickMs: 5,
  maxInFlight: 64,
  startRate: 1000,
  minRate: 25,
  maxRate: 64000,
  coarseFactor: 2,
  refineStep: 0.1,
  rates: [1000, 2000, 5000],
  fractions: [0.25, 0.5, 0.75],
  maxOverCapacity: 2,
  warmupRate: 200,
  warmupSeconds: 5,
  voidRetries: 2,
};

const silent = { log: () => undefined, status: () => undefined } as unknown as Progress;

type Verdict = 'pass' | 'fail' | 'void' | 'void-fail';

/** A runner whose steps are decided by `verdict(rate)` instead of a real system. */
class ScriptedRunner extends LiveRunner {
  readonly rates: number[] = [];
  constructor(private readonly verdict: (rate: number) => Verdict) {
    super(options, new ProcSampler(1000), silent, () => 0, () => 0);
  }
  override async step(_s: Session, purpose: StepPurpose, rate: number): Promise<StepResult> {
    this.rates.push(rate);
    const v = this.verdict(rate);
    return {
      purpose,
      phase: `s${this.rates.length}`,
      rate,
      seconds: 30,
      sent: rate * 30,
      achievedEps: rate,
      predicted: rate * 30,
      drained: true,
      drainSeconds: 0,
      latencyMs: { p50: 10, p95: 20, p99: v === 'pass' ? 30 : 5000, max: 40, undelivered: 0 },
      producedLatencyMs: { p50: 5, p99: 20 },
      lag: { endOfStep: 0, max: 0, slopePerS: 0, limitPerS: 1, growing: false },
      driver: { latenessMs: { p50: 1, p99: v.startsWith('void') ? 200 : 5, max: 300 }, inflightWaits: 0, ackMs: { p50: 1, p99: 2 } },
      void: v.startsWith('void'),
      failsDespiteVoid: v === 'void-fail',
      pass: v === 'pass',
      reasons: [],
      duplicates: 0,
      deadLettered: 0,
      ingestMismatch: 0,
      processes: {},
    };
  }
}

const session = {} as Session;

describe('live capacity search', () => {
  it('brackets by doubling, then refines upward in steps of at most 10% to a resolved capacity', async () => {
    const r = new ScriptedRunner((rate) => (rate <= 3300 ? 'pass' : 'fail'));
    const cap = await r.capacity(session);
    expect(cap.eps).toBeLessThanOrEqual(3300);
    expect(cap.eps).toBeGreaterThan(3300 / 1.1);
    expect(cap.resolved).toBe(true);
    expect(cap.firstFailEps! / cap.eps).toBeLessThanOrEqual(1.1);
    expect(r.rates.slice(0, 3)).toEqual([1000, 2000, 4000]);
    // every refinement step climbs at most 10% above the previous pass
    const refine = r.rates.slice(3);
    let prev = 2000;
    for (const x of refine) {
      expect(x / prev).toBeLessThanOrEqual(1.1 + 1e-9);
      if (x <= 3300) prev = x;
    }
  });

  it('halves below a failing start rate before refining', async () => {
    const r = new ScriptedRunner((rate) => (rate <= 300 ? 'pass' : 'fail'));
    const cap = await r.capacity(session);
    expect(r.rates.slice(0, 3)).toEqual([1000, 500, 250]);
    expect(cap.eps).toBeLessThanOrEqual(300);
    expect(cap.eps).toBeGreaterThan(300 / 1.1);
    expect(cap.resolved).toBe(true);
  });

  it('retries a void step, never counts it as a pass, and reports a lower bound below the rate the driver could not offer', async () => {
    const r = new ScriptedRunner((rate) => (rate >= 8000 ? 'void' : 'pass'));
    const cap = await r.capacity(session);
    expect(r.rates.filter((x) => x === 8000)).toHaveLength(1 + options.voidRetries);
    expect(cap.eps).toBeLessThan(8000);
    expect(cap.eps).toBeGreaterThan(8000 / 1.1);
    expect(cap.resolved).toBe(false);
    expect(cap.note).toMatch(/lower bound: the driver could not offer 8000\/s/);
  });

  it('uses a void step that failed by more than the driver explains as an upper bound, without retrying it', async () => {
    const r = new ScriptedRunner((rate) => (rate <= 1500 ? 'pass' : 'void-fail'));
    const cap = await r.capacity(session);
    expect(r.rates.filter((x) => x === 2000)).toHaveLength(1);
    expect(cap.eps).toBeLessThanOrEqual(1500);
    expect(cap.eps).toBeGreaterThan(1500 / 1.1);
    expect(cap.resolved).toBe(true);
  });

  it('reports no capacity when nothing passes down to the minimum rate', async () => {
    const r = new ScriptedRunner(() => 'fail');
    const cap = await r.capacity(session);
    expect(cap.eps).toBe(0);
    expect(Math.min(...r.rates)).toBeGreaterThanOrEqual(options.minRate);
    expect(cap.note).toMatch(/no offered rate down to 25\/s passed/);
  });

  it('plans the shared absolute rates up to 2x capacity (the lowest always) and the fractions, ascending', () => {
    const r = new ScriptedRunner(() => 'pass');
    expect(r.plannedLatencyRates(1500).map((x) => x.rate)).toEqual([375, 750, 1000, 1125, 2000]);
    expect(r.plannedLatencyRates(100).map((x) => x.rate)).toEqual([25, 50, 75, 1000]);
  });
});

describe('bench helpers', () => {
  it('stepUp climbs by at most 10% and always moves', () => {
    for (const r of [25, 63, 999, 1000, 2420, 9999, 16000, 63000]) {
      const n = stepUp(r, 0.1);
      expect(n).toBeGreaterThan(r);
      expect(n).toBeLessThanOrEqual(r * 1.1);
    }
  });

  it('slopePerSecond is the least-squares slope per second', () => {
    const t0 = 1_000_000;
    expect(slopePerSecond([0, 1, 2, 3, 4].map((i) => [t0 + i * 500, 10 + i * 50] as [number, number]))).toBeCloseTo(100, 6);
    expect(slopePerSecond([0, 1, 2, 3].map((i) => [t0 + i * 250, i % 2 === 0 ? 100 : 0] as [number, number]))).toBeLessThan(0);
  });

  it('derives the variants from the demo topology on suffixed topics', () => {
    const root = repoRoot();
    const def = variantSpec(root, { variant: 'default', suffix: 'sfx', partitions: 5, delivery: 'at-least-once' });
    const extractCfg = (spec: typeof def) => spec.stages.find((s) => s.processor === 'feature_extraction')!.config as { features?: string[] };
    const model = (spec: typeof def) => (spec.stages.find((s) => s.processor === 'onnx_inference')!.config as { model: { version: string } }).model.version;
    expect(def.topics.every((t) => t.name.endsWith('.sfx'))).toBe(true);
    expect(def.topics.filter((t) => t.name !== def.deadLetter.topic).every((t) => t.partitions === 5)).toBe(true);
    expect(def.stages.every((s) => s.delivery === 'at-least-once' && s.input.topic.endsWith('.sfx'))).toBe(true);
    const kinds = new Map((def.features?.sets ?? []).map((s) => [s.name, s.kind]));
    expect(extractCfg(def).features!.some((n) => kinds.get(n) === 'windowed_aggregation')).toBe(true);

    const ns = variantSpec(root, { variant: 'nostream', suffix: 'sfx', partitions: 3 });
    expect(extractCfg(ns).features!.length).toBeGreaterThan(0);
    expect(extractCfg(ns).features!.some((n) => kinds.get(n) === 'windowed_aggregation')).toBe(false);
    expect(model(ns)).toBe(model(def));

    const st = variantSpec(root, { variant: 'stateless', suffix: 'sfx', partitions: 3 });
    expect(extractCfg(st).features).toBeUndefined();
    expect(model(st)).toBe('1');

    // bycard: the same work, the hop skipped (partitionBy: none) and the driver keying by card
    const extractOf = (spec: typeof def) => spec.stages.find((s) => s.processor === 'feature_extraction')! as { partitionBy?: string };
    const bc = variantSpec(root, { variant: 'bycard', suffix: 'sfx', partitions: 3 });
    expect(extractOf(bc).partitionBy).toBe('none');
    expect(extractOf(def).partitionBy).toBeUndefined();
    expect(extractCfg(bc).features).toEqual(extractCfg(def).features);
    expect(model(bc)).toBe(model(def));
    expect(driverKeyField('bycard')).toBe('cardId');
    expect(driverKeyField('default')).toBe('transactionId');
  });

  it('names the per-chain and no-reader-wait shared-transaction, keyed-by-card and deduplicated-hop systems', () => {
    const all = catalog([ownCode()]);
    const perChain = all.find((s) => s.name === 'tributary-default-eos2c-fused')!;
    expect(perChain).toMatchObject({ variant: 'default', transactions: 'shared', sharedScope: 'chain', fuse: true });
    expect(all.find((s) => s.name === 'tributary-default-eos2-fused')!.sharedScope).toBeUndefined();
    // one sink, no reader wait: commit.readerWaitMs 0 on every stage of the spec it runs
    const w0 = all.find((s) => s.name === 'tributary-default-eos2w0-fused')!;
    expect(w0).toMatchObject({ variant: 'default', transactions: 'shared', commit: { readerWaitMs: 0 } });
    expect(variantSpec(repoRoot(), { variant: 'default', suffix: 'sfx', partitions: 3, commit: w0.commit }).stages.map((s) => (s as { commit?: unknown }).commit)).toEqual([{ readerWaitMs: 0 }, { readerWaitMs: 0 }]);
    // the demo with its hop deduplicated: the stage's repartition.delivery set, nothing else changed
    const dedup = all.find((s) => s.name === 'tributary-dedup-eos-fused')!;
    expect(dedup).toMatchObject({ variant: 'dedup', delivery: 'exactly-once', fuse: true });
    const extractOfVariant = (variant: 'dedup' | 'default') => variantSpec(repoRoot(), { variant, suffix: 'sfx', partitions: 3 }).stages.find((s) => s.processor === 'feature_extraction')! as { repartition?: { delivery?: string }; config: unknown };
    expect(extractOfVariant('dedup').repartition?.delivery).toBe('deduplicated');
    expect(extractOfVariant('default').repartition?.delivery).toBeUndefined();
    expect(extractOfVariant('dedup').config).toEqual(extractOfVariant('default').config);
    expect(selectSystems(all, DEFAULT_SYSTEMS).map((s) => s.name)).not.toEqual(expect.arrayContaining(['tributary-dedup-eos-fused']));
    expect(all.find((s) => s.name === 'tributary-bycard-eos-fused')).toMatchObject({ variant: 'bycard', delivery: 'exactly-once', fuse: true });
    // the model on a worker thread: outside the default patterns, its pool set in the spec it runs
    expect(all.find((s) => s.name === 'tributary-pool1-stateless-eos-fused')).toMatchObject({ variant: 'stateless', poolWorkers: 1, fuse: true });
    expect(all.find((s) => s.name === 'tributary-x2-pool1-stateless-eos-fused')).toMatchObject({ poolWorkers: 1, processes: 2 });
    expect(selectSystems(all, DEFAULT_SYSTEMS).some((s) => s.poolWorkers !== undefined)).toBe(false);
    const pool = (o: { poolWorkers?: number }) => (variantSpec(repoRoot(), { variant: 'stateless', suffix: 'sfx', partitions: 3, ...o }).stages.find((s) => s.processor === 'onnx_inference')!.config as { pool?: { workers?: number } }).pool;
    expect(pool({ poolWorkers: 1 })!.workers).toBe(1);
    expect(pool({})!.workers).toBe(0);
  });

  it('keeps 0 in a commit-interval sweep (the engine\'s default: back-to-back transactions)', () => {
    expect(intervalList('0, 20,x,-5')).toEqual([0, 20]);
    expect(withCommitSweep(catalog([ownCode()]).filter((s) => s.name === 'tributary-default-eos-fused'), intervalList('0,20')).map((s) => [s.name, s.commit?.intervalMs])).toEqual([
      ['tributary-default-eos-fused~i0', 0],
      ['tributary-default-eos-fused~i20', 20],
    ]);
  });

  it('selects systems by name and * pattern, and rejects a pattern matching none', () => {
    const all = catalog([ownCode(), { ...ownCode(), label: 'old' }]);
    expect(selectSystems(all, ['tributary-stateless-eos-*']).map((s) => s.name)).toEqual(['tributary-stateless-eos-fused', 'tributary-stateless-eos-split', 'tributary-stateless-eos-fused@old', 'tributary-stateless-eos-split@old'].sort((a, b) => all.findIndex((s) => s.name === a) - all.findIndex((s) => s.name === b)));
    expect(selectSystems(all, ['naive-default']).map((s) => s.name)).toEqual(['naive-default']);
    // Measured in the order named (a reversed-order run), each system once.
    expect(selectSystems(all, ['kstreams-tuned', 'tributary-stateless-eos-fused', 'kstreams-*']).map((s) => s.name)).toEqual(['kstreams-tuned', 'tributary-stateless-eos-fused', 'kstreams-default', 'kstreams-tuned-hop']);
    expect(() => selectSystems(all, ['nope-*'])).toThrow(/matches no system/);
  });
});

describe('interleaved (paired) runs', () => {
  it('steps every rate once per system per round, ascending, reversing the systems every other round', () => {
    const sched = interleavedSchedule(3, [8000, 1000], 2);
    expect(sched.map((x) => `${x.round}:${x.rate}:${x.system}`)).toEqual(['0:1000:0', '0:1000:1', '0:8000:0', '0:8000:1', '1:1000:1', '1:1000:0', '1:8000:1', '1:8000:0', '2:1000:0', '2:1000:1', '2:8000:0', '2:8000:1']);
    // three systems: A B C, then C B A
    expect(interleavedSchedule(2, [500], 3).map((x) => x.system)).toEqual([0, 1, 2, 2, 1, 0]);
  });

  const step = (rate: number, round: number, p99: number | null, o: { void?: boolean; steal?: number } = {}): StepResult => ({
    purpose: 'rate',
    phase: `r${round}`,
    rate,
    round,
    seconds: 30,
    sent: 100,
    achievedEps: rate,
    predicted: 100,
    drained: p99 !== null,
    drainSeconds: 0,
    latencyMs: { p50: p99 === null ? null : Math.round(p99 / 3), p95: p99, p99, max: p99, undelivered: p99 === null ? 5 : 0 },
    producedLatencyMs: { p50: 1, p99: 2 },
    lag: { endOfStep: 0, max: 0, slopePerS: 0, limitPerS: 1, growing: false },
    driver: { latenessMs: { p50: 1, p99: o.void ? 200 : 5, max: 300 }, inflightWaits: 0, ackMs: { p50: 1, p99: 2 } },
    void: o.void ?? false,
    failsDespiteVoid: false,
    pass: !o.void && p99 !== null,
    reasons: [],
    duplicates: 0,
    deadLettered: 0,
    ingestMismatch: 0,
    processes: o.steal === undefined ? {} : { [STEAL]: { cpuPercent: o.steal, rssMaxMiB: 0 } as never },
  });

  it('voids a step during which the hypervisor stole more than the limit of the machine (steal summed over cores)', () => {
    // 2 cores: 30 % of one core summed = 15 % of the machine
    const stolen = voidIfStolen(step(1000, 0, 100, { steal: 30 }), 10, 2);
    expect(stolen).toMatchObject({ void: true, pass: false, failsDespiteVoid: false });
    expect(stolen.reasons.join()).toMatch(/stole 15\.0% of the machine's CPU > 10%/);
    expect(voidIfStolen(step(1000, 0, 100, { steal: 18 }), 10, 2).void).toBe(false);
    // no limit, or no steal sample: unchanged
    expect(voidIfStolen(step(1000, 0, 100, { steal: 90 }), 0, 2).void).toBe(false);
    expect(voidIfStolen(step(1000, 0, 100), 10, 2).void).toBe(false);
  });

  it('compares round by round: wins counted, a void try replaced by its retry, unpredicted events infinitely late', () => {
    const a = { name: 'A', latency: [step(1000, 0, 100, { steal: 2 }), step(1000, 1, 120), step(1000, 2, 90), step(8000, 0, 300), step(8000, 1, 310), step(8000, 2, 290)] };
    // B: round 0 at 1,000/s void first, then retried; round 2 at 8,000/s left events unpredicted
    const b = { name: 'B', latency: [step(1000, 0, 999, { void: true }), step(1000, 0, 80), step(1000, 1, 130), step(1000, 2, 60), step(8000, 0, 200), step(8000, 1, 250), step(8000, 2, null)] };
    const rows = interleavedRows([a, b], 3);
    expect(rows.map((r) => r.rate)).toEqual([1000, 8000]);
    const [r1k, r8k] = rows;
    expect(r1k.systems[0].p99).toEqual([100, 120, 90]);
    expect(r1k.systems[0].steal).toEqual([2, null, null]);
    expect(r1k.systems[1].p99).toEqual([80, 130, 60]);
    expect(r1k.systems[1].medianP99).toBe(80);
    expect(r1k.versusFirst[0]).toMatchObject({ name: 'B', rounds: 3, lower: 2 });
    expect(r1k.versusFirst[0].medianRatio).toBeCloseTo(80 / 100, 6);
    expect(r8k.systems[1].p99).toEqual([200, 250, Infinity]);
    expect(r8k.versusFirst[0]).toMatchObject({ rounds: 3, lower: 2 });
    expect(r8k.systems[1].medianP99).toBe(250);
    // a round left void (after its retries) is no round of the comparison
    const c = { name: 'C', latency: [step(1000, 0, 50, { void: true }), step(1000, 1, 50), step(1000, 2, 500)] };
    const [rc] = interleavedRows([a, c], 3);
    expect(rc.systems[1].p99).toEqual([null, 50, 500]);
    expect(rc.versusFirst[0]).toMatchObject({ rounds: 2, lower: 1 });
  });
});

describe('issue 12 acceptance checks', () => {
  const outcome = (name: string, cap: number, resolved: boolean): SystemOutcome =>
    ({ name, kind: name.startsWith('kstreams') ? 'kstreams' : 'tributary', status: 'ok', capacity: { eps: cap, resolved, note: '', steps: [] }, latency: [], differences: [], restarts: [], counters: [] }) as unknown as SystemOutcome;
  const find = (checks: ReturnType<typeof acceptance>, re: RegExp) => checks.find((c) => re.test(c.criterion))!;

  it('decides a capacity comparison only when the lower figure is exact', () => {
    const exactVsBound = acceptance([outcome('tributary-stateless-eos-fused', 500, true), outcome('kstreams-tuned', 63, false)]);
    expect(find(exactVsBound, /ahead of kstreams-tuned on live capacity/).ok).toBeUndefined();
    const exactVsExact = acceptance([outcome('tributary-stateless-eos-fused', 500, true), outcome('kstreams-tuned', 63, true)]);
    expect(find(exactVsExact, /ahead of kstreams-tuned on live capacity/).ok).toBe(true);
    const behind = acceptance([outcome('tributary-stateless-eos-fused', 50, true), outcome('kstreams-tuned', 63, false)]);
    expect(find(behind, /ahead of kstreams-tuned on live capacity/).ok).toBe(false);
  });

  it('passes the 16,000/s target on a lower bound above it, and never fails it on a lower bound below it', () => {
    expect(find(acceptance([outcome('tributary-stateless-eos-fused', 17000, false)]), /capacity ≥ 16,000/).ok).toBe(true);
    expect(find(acceptance([outcome('tributary-stateless-eos-fused', 9000, false)]), /capacity ≥ 16,000/).ok).toBeUndefined();
    expect(find(acceptance([outcome('tributary-stateless-eos-fused', 9000, true)]), /capacity ≥ 16,000/).ok).toBe(false);
  });

  it('compares an interleaved run with the peer on each rate\'s median round', () => {
    const rounds = (p99s: number[]) => p99s.map((p99, round) => ({ purpose: 'rate', rate: 1000, round, void: false, latencyMs: { p50: 1, p95: p99, p99, max: p99, undelivered: 0 } }) as unknown as StepResult);
    const st = { ...outcome('tributary-stateless-eos-fused', 20000, true), latency: rounds([60, 300, 70]) };
    const peer = { ...outcome('kstreams-tuned', 7000, true), latency: rounds([90, 80, 100]) };
    const c = find(acceptance([st, peer]), /on p99 at equal offered load \(vs kstreams-tuned\)/);
    // medians 70 vs 90: ahead, although one Tributary round (300) was slower than every peer round
    expect(c.measured).toBe('1000/s: 70 ms vs 90 ms');
    expect(c.ok).toBe(true);
    const behind = find(acceptance([{ ...st, latency: rounds([95, 300, 70]) }, peer]), /on p99 at equal offered load \(vs kstreams-tuned\)/);
    expect(behind.ok).toBe(false);
  });

  it('reports criteria whose systems did not run as not measured', () => {
    const checks = acceptance([]);
    expect(checks.length).toBeGreaterThan(5);
    expect(checks.every((c) => c.ok === undefined)).toBe(true);
  });
});

describe('ProcSampler', () => {
  it('reports the machine\'s CPU steal over a window as a pseudo-process (a finite, non-negative % of one core)', async () => {
    const sampler = new ProcSampler(20);
    sampler.trackSteal();
    const from = Date.now();
    sampler.start();
    await new Promise((r) => setTimeout(r, 150));
    sampler.stop();
    const usage = sampler.usage(STEAL, from - 1, Date.now() + 1);
    expect(usage).toBeDefined();
    expect(Number.isFinite(usage!.cpuPercent)).toBe(true);
    expect(usage!.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(sampler.names()).toContain(STEAL);
  });
});

describe('stale compile check', () => {
  it('lists the sources newer than their compiled file, and none once they are compiled again (sources the bench never compiles are not its)', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'stale-'));
    const dist = path.join(root, 'bench', 'dist', 'src');
    fs.mkdirSync(path.join(root, 'src', 'engine'), { recursive: true });
    fs.mkdirSync(path.join(dist, 'engine'), { recursive: true });
    const at = (file: string, seconds: number) => fs.utimesSync(file, seconds, seconds);
    for (const f of ['a.ts', 'engine/b.ts', 'engine/types.d.ts', 'cli.ts']) fs.writeFileSync(path.join(root, 'src', f), '');
    for (const f of ['a.js', 'engine/b.js']) fs.writeFileSync(path.join(dist, f), '');
    at(path.join(root, 'src', 'a.ts'), 1000);
    at(path.join(dist, 'a.js'), 2000);
    at(path.join(root, 'src', 'engine', 'b.ts'), 3000);
    at(path.join(dist, 'engine', 'b.js'), 2000);
    expect(staleCompiles(root, dist)).toEqual([path.join('src', 'engine', 'b.ts')]);
    at(path.join(dist, 'engine', 'b.js'), 4000);
    expect(staleCompiles(root, dist)).toEqual([]);
  });
});
