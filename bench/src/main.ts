/**
 * `npm run bench [-- options]`: raw limits, then the live path of every selected system measured
 * the same way in one run: an open-loop driver at fixed offered rates, a read_committed probe that
 * times and matches every prediction, live capacity by stepping the rate, and latency at the same
 * absolute rates for all systems plus at 25/50/75% of each one's capacity. See BENCHMARKS.md and
 * live.ts for the definitions. Exits non-zero when a raw tool, a system or a correctness check fails.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import Redis from 'ioredis';
import { TransactionGenerator } from '../../examples/fraud/generator';
import { SchemaCatalog } from '../../src/kafka/avro-schemas';
import { createKafka } from '../../src/kafka/client';
import { artifactPaths, KAFKA_VERSION } from '../../src/stack/artifacts';
import { repoRoot, stateFilePath } from '../../src/stack/paths';
import { readState } from '../../src/stack/state';
import { startTestStack } from '../../src/stack/test-harness';
import { cpuFacts, type CpuFacts } from './machine';
import { interleavedSchedule, voidIfStolen } from './interleave';
import { intervalList, ProcSampler, STEAL, round, type ChildConfig, type ChildMessage, type ProcUsage } from './common';
import { LiveRunner, type CapacityResult, type LiveOptions, type StepResult } from './live';
import { Progress } from './progress';
import { kafkaPerf, preloadRedis, redisRaw, type KafkaPerf, type RedisRaw } from './raw';
import { writeReport } from './report';
import { catalog, mergeCommit, withCommitSweep, deleteGroups, DEFAULT_SYSTEMS, PEER_DIR, PEER_JAR, QUICK_SYSTEMS, selectSystems, SystemSession, unavailable, type SystemDef } from './systems';
import { driverKeyField, loadVariant, topologyFacts, type TopologyFacts } from './topologies';
import { assertCompiledCurrent, exportRef, gitState, loadCode, parseCodeRefs, type CodeState } from './tributary-code';
import type { OnnxRow } from './children/onnx';
import { featuresMarkdown, runFeaturesBench } from './features';
import { FRAUD_SCHEMAS_DIR } from '../../examples/fraud/schemas';

// kafkajs v2's one-time partitioner notice is noise here (children inherit this too)
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';

const BENCH_DIR = path.join(repoRoot(), 'bench');
const DIST = path.join(BENCH_DIR, 'dist', 'bench', 'src');

const HELP = `npm run bench -- [options]
  --quick                 short run: ${'8'} s steps, fewer systems and rates (figures indicative only)
  --systems LIST          names or * patterns (see below), measured in the order named; default: every Tributary variant, naive-default,
                          kstreams-default, kstreams-tuned (quick: ${QUICK_SYSTEMS.join(',')})
  --tributary-dir L=PATH[,L2=PATH2]
                          measure the Tributary code of other checkouts (built with 'npm run build'),
                          each as its own systems named <system>@L; default this checkout's src/
  --compare-ref REF[,REF2]
                          also measure commit REF of this repository (exported with git archive and
                          compiled into the OS temp dir once), as systems <system>@REF
  --rates LIST            absolute offered rates for every system (default 1000,2000,5000,8000,10000,16000,20000;
                          quick 1000,5000)
  --fractions LIST        fractions of each system's live capacity (default 0.25,0.5,0.75)
  --step-seconds S        seconds per step (default 30; quick 8)
  --start-rate N          capacity search: first offered rate (default 1000)
  --warmup-rate N, --warmup-seconds S
                          each system's unrecorded warm-up step after it starts (default 200/s for 5 s;
                          quick 3 s). The broker is a fresh JVM: the first system measured pays its
                          warm-up (BENCHMARKS.md item 30) unless the warm-up is long and fast enough
  --max-rate N            capacity search: highest rate tried (default 64000)
  --driver-tolerance-ms N a step whose driver lateness p99 exceeds this is void (default 50)
  --tick-ms N             the driver hands what fell due to its producer every N ms, one produce
                          request per tick (default 5; 1 = the cadence of runs before 2026-12-06)
  --partitions N          partitions of the data topics (default 3)
  --commit-interval-ms N, --commit-max-records N
                          per-stage commit settings for engines that know them (default: the engine's);
                          a list (--commit-interval-ms 5,10,30) measures every Tributary system once per
                          interval in the same run, as <system>~i<N>
  --interleave N          a paired comparison instead of the capacity search: every selected system is started
                          and warmed up first (also up to 10 s at each rate, not recorded), then N rounds of the --rates, each rate stepped once per system
                          while the others idle, the order reversed every other round (A B, B A, ...), so a
                          drift of the machine's speed hits every system alike; the report adds each round's
                          p50 / p99, their medians and in how many rounds each system beat the first
  --max-steal-pct N       with --interleave: a step during which the hypervisor stole more than N% of the
                          machine's CPU (all cores) is void and retried, like a step whose driver fell behind
                          (default 0: no limit)
  --skip-raw              skip the raw limits (Kafka perf tools, onnxruntime, Redis)
  --raw-records N         records for Kafka's perf tools (default 500000; quick 100000)
  --build-peer            run bench/peers/kstreams/build.sh when the peer jar is missing
  --no-markdown           do not touch BENCHMARKS.md
  --tag NAME              label of this run (results file, BENCHMARKS.md section; default quick|default)
  --features              only the feature-extraction microbenchmark (no stack): declarative fraud_txn vs the
                          frozen hand-written extractor, events/s per core, and random definitions' ns per
                          feature (bench/src/features.ts); every full run measures it first too
  --help`;

interface Options {
  quick: boolean;
  systems: string[];
  tributaryDirs?: string;
  compareRefs: string[];
  partitions: number;
  rawRecords: number;
  skipRaw: boolean;
  buildPeer: boolean;
  markdown: boolean;
  tag: string;
  featuresOnly: boolean;
  commit?: { intervalMs?: number; maxRecords?: number };
  /** Commit intervals (ms) to measure each Tributary system at, as systems <name>~i<N> (one run). */
  commitSweep?: number[];
  /** Rounds of an interleaved (paired) run; 0 = the usual run, one system after the other. */
  interleave: number;
  /** With interleave: steps during which the hypervisor stole more than this % of the machine are void (0 = no limit). */
  maxStealPct: number;
  live: LiveOptions;
}

function positiveIntOrZero(v: string | undefined, flag: string): number {
  if (v === undefined) return 0;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`${flag}: expected a whole number (0 or more), got '${v}'`);
    process.exit(2);
  }
  return n;
}

/** A flag's value as a number > 0, or a clear error naming the flag. */
function positive(flag: string, raw: string): number {
  const x = Number(raw);
  if (!Number.isFinite(x) || x <= 0) throw new Error(`${flag} must be a number > 0, got '${raw}'`);
  return x;
}

const nums = (s: string) => s.split(',').map((x) => Number(x.trim())).filter((x) => Number.isFinite(x) && x > 0);

function options(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      systems: { type: 'string' },
      'tributary-dir': { type: 'string' },
      'compare-ref': { type: 'string' },
      rates: { type: 'string' },
      fractions: { type: 'string' },
      'step-seconds': { type: 'string' },
      'start-rate': { type: 'string' },
      'warmup-rate': { type: 'string' },
      'warmup-seconds': { type: 'string' },
      'max-rate': { type: 'string' },
      'driver-tolerance-ms': { type: 'string' },
      'tick-ms': { type: 'string' },
      partitions: { type: 'string' },
      'commit-interval-ms': { type: 'string' },
      'commit-max-records': { type: 'string' },
      'raw-records': { type: 'string' },
      'skip-raw': { type: 'boolean', default: false },
      interleave: { type: 'string' },
      'max-steal-pct': { type: 'string' },
      'build-peer': { type: 'boolean', default: false },
      'no-markdown': { type: 'boolean', default: false },
      tag: { type: 'string' },
      features: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const q = values.quick;
  const step = Number(values['step-seconds'] ?? (q ? 8 : 30));
  // Several intervals (a sweep): every Tributary system is measured once per interval, as <system>~i<N>.
  const intervals = values['commit-interval-ms'] ? intervalList(values['commit-interval-ms']) : [];
  const sweep = intervals.length > 1 ? intervals : undefined;
  const commit = intervals.length === 1 || values['commit-max-records'] ? { intervalMs: intervals.length === 1 ? intervals[0] : undefined, maxRecords: values['commit-max-records'] ? Number(values['commit-max-records']) : undefined } : undefined;
  return {
    quick: q,
    systems: (values.systems ? values.systems.split(',') : q ? QUICK_SYSTEMS : DEFAULT_SYSTEMS).map((s) => s.trim()).filter(Boolean),
    tributaryDirs: values['tributary-dir'],
    compareRefs: values['compare-ref'] ? values['compare-ref'].split(',').map((x) => x.trim()).filter(Boolean) : [],
    partitions: Number(values.partitions ?? 3),
    rawRecords: Number(values['raw-records'] ?? (q ? 100000 : 500000)),
    skipRaw: values['skip-raw'],
    buildPeer: values['build-peer'],
    markdown: !values['no-markdown'],
    tag: values.tag ?? (q ? 'quick' : 'default'),
    featuresOnly: values.features,
    commit,
    commitSweep: sweep,
    interleave: positiveIntOrZero(values.interleave, '--interleave'),
    maxStealPct: positiveIntOrZero(values['max-steal-pct'], '--max-steal-pct'),
    live: {
      stepSeconds: step,
      drainTimeoutS: Math.max(20, 2 * step),
      pauseS: q ? 1 : 2,
      p99LimitMs: 1000,
      lagSlopeFraction: 0.02,
      driverToleranceMs: Number(values['driver-tolerance-ms'] ?? 50),
      tickMs: positive('--tick-ms', values['tick-ms'] ?? '5'),
      maxInFlight: 64,
      startRate: Number(values['start-rate'] ?? 1000),
      minRate: 25,
      maxRate: Number(values['max-rate'] ?? 64000),
      coarseFactor: 2,
      refineStep: 0.1,
      // 8,000 and 16,000 are issue 12's acceptance rates
      rates: nums(values.rates ?? (q ? '1000,5000' : '1000,2000,5000,8000,10000,16000,20000')),
      fractions: nums(values.fractions ?? '0.25,0.5,0.75'),
      maxOverCapacity: 2,
      warmupRate: positive('--warmup-rate', values['warmup-rate'] ?? '200'),
      warmupSeconds: positive('--warmup-seconds', values['warmup-seconds'] ?? (q ? '3' : '5')),
      voidRetries: 2,
    },
  };
}

export interface Correctness {
  sent: number;
  predicted: number;
  /** Sent events never predicted (abandoned phases excluded). */
  missing: number;
  duplicates: number;
  deadLettered: number;
  /** Dead letters and predictions whose key matches no event of this run. */
  unknown: number;
  undecodable: number;
  abandonedPhases: number;
  abandonedEvents: number;
  ok: boolean;
}

export interface SystemOutcome {
  name: string;
  kind: SystemDef['kind'];
  label: string;
  variant: SystemDef['variant'];
  delivery?: string;
  fuse?: boolean;
  peer?: SystemDef['peer'];
  /** The Tributary code measured (tributary systems) or this checkout (others). */
  code: CodeState & { label: string; root: string; knowsFuse?: boolean };
  status: 'ok' | 'failed' | 'skipped' | 'not-servable';
  error?: string;
  facts?: TopologyFacts;
  /** How this system's work differs from the demo topology's, computed from code and config. */
  differences: string[];
  warmup?: StepResult;
  /**
   * Interleaved runs: unrecorded steps at each of the --rates after the warm-up, before round 1 (the
   * first step at a rate after start-up ran 2-3x slower than later ones: JIT of the system and the
   * broker; without these it fell on the first system of round 1 only).
   */
  rateWarmups?: StepResult[];
  capacity?: CapacityResult;
  latency: StepResult[];
  correctness?: Correctness;
  restarts: string[];
  counters: Array<Record<string, number> | undefined>;
  log?: { file: string; errorLines: number; warnLines: number };
}

export interface BenchResults {
  meta: {
    runId: string;
    tag: string;
    startedAt: string;
    finishedAt?: string;
    wallSeconds?: number;
    options: Options;
    machine: CpuFacts & { cores: number; memGiB: number; node: string; kernel: string; kafkaVersion: string; stackSource: string; loadAvgAtStart: number[] };
    /** The bench's own checkout (and whether its src/ had uncommitted changes). */
    code: CodeState;
    definitions: Record<string, string>;
    notes: string[];
  };
  raw: { messageBytes: number; kafka?: KafkaPerf | { error: string }; onnx?: { rows: OnnxRow[]; pool: string } | { error: string }; redis?: RedisRaw | { error: string } };
  systems: SystemOutcome[];
  failures: string[];
}

const children = new Set<ChildProcess>();

/** Runs one forked child to completion and returns its 'result' message. */
async function runToResult<T>(script: string, cfg: ChildConfig, sampler: ProcSampler, name: string): Promise<T> {
  const proc = fork(path.join(DIST, script), [JSON.stringify(cfg)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, TRIBUTARY_LOG_LEVEL: 'warn' } });
  children.add(proc);
  if (proc.pid) sampler.track(name, proc.pid);
  try {
    return await new Promise<T>((resolve, reject) => {
      proc.on('message', (m: ChildMessage) => (m.type === 'result' ? resolve(m.result as T) : m.type === 'error' ? reject(new Error(m.message)) : undefined));
      proc.on('exit', (code) => reject(new Error(`${script} exited ${code} without a result`)));
    });
  } finally {
    sampler.untrack(name);
    children.delete(proc);
  }
}

/** The differences of a system's work from the demo topology run by Tributary, from config and code. */
function differences(def: SystemDef, facts: TopologyFacts, demo: TopologyFacts): string[] {
  const d: string[] = [];
  if (facts.model !== demo.model) d.push(`model ${facts.model} (${facts.featureCount} features) instead of the demo's ${demo.model} (${demo.featureCount})`);
  const names = (f: TopologyFacts) => f.featureSets.map((s) => `${s.name} (${s.kind})`);
  const dropped = names(demo).filter((n) => !names(facts).includes(n));
  if (dropped.length) d.push(`without feature sets ${dropped.join(', ')}`);
  if (def.kind === 'naive') {
    d.push(`one Kafka hop (input -> predictions) instead of ${facts.stages.length} stages${facts.intermediateTopics.length ? `; does not write ${facts.intermediateTopics.map((t) => t.replace(/\.[^.]*$/, '')).join(', ')}` : ''}`);
    d.push('at-least-once (kafkajs auto-commit after eachMessage) instead of the topology\'s ' + facts.delivery);
    d.push('no dead-letter topic (undecodable or rejected events are counted and dropped)');
    if (facts.featureSets.length) d.push('Redis features through the same Enricher, one event per call (one Redis round trip per event instead of one per batch)');
  } else if (def.kind === 'kstreams') {
    d.push(def.peer?.repartitionBy
      ? `two Kafka hops (input -> ${def.peer.repartitionBy} repartition topic -> predictions; Kafka Streams topology, no feature-vector topic)`
      : 'one Kafka hop (input -> predictions; Kafka Streams topology, no feature-vector topic)');
    d.push(`Java: Kafka Streams ${def.peer?.guarantee}, ONNX Runtime Java${def.peer?.commitIntervalMs !== undefined ? `, commit.interval.ms=${def.peer.commitIntervalMs}` : ', default commit interval'}${def.peer?.lingerMs !== undefined ? `, linger.ms=${def.peer.lingerMs}` : ''}`);
    d.push('no dead-letter topic');
  } else if (facts.delivery !== demo.delivery) d.push(`delivery ${facts.delivery}`);
  if (def.kind === 'tributary' && def.poolWorkers !== undefined) d.push(`the model on ${def.poolWorkers === 0 ? 'the pipeline\'s own thread' : `${def.poolWorkers} inference worker thread(s)`} (pool.workers: ${def.poolWorkers})`);
  if (def.kind === 'tributary' && facts.partitionBy === 'none' && demo.partitionBy !== 'none') {
    d.push(`events keyed by ${driverKeyField(def.variant)} by the driver and \`partitionBy: none\` on extract: no repartition hop (one transaction between event and prediction instead of two)`);
  }
  return d;
}

async function main(): Promise<number> {
  const opts = options();
  const progress = new Progress();
  const startedAt = new Date();
  const runId = `b${startedAt.getTime().toString(36)}`;
  const resultsDir = path.join(BENCH_DIR, 'results');
  const logsDir = path.join(resultsDir, 'logs');
  fs.mkdirSync(logsDir, { recursive: true });
  // ---- 0. feature extraction (one core, no stack): declarative vs the frozen hand-written fraud_txn
  {
    progress.log('feature extraction microbenchmark (declarative vs frozen fraud_txn, random definitions)');
    const fr = runFeaturesBench(opts.quick && !opts.featuresOnly ? { seconds: 0.3, rounds: 5, randomDefinitions: 10 } : {});
    const stamp = startedAt.toISOString().replace(/[:]/g, '-').replace(/\..*/, '');
    const jsonFile = path.join(resultsDir, `${stamp}-features.json`);
    fs.writeFileSync(jsonFile, `${JSON.stringify(fr, null, 2)}\n`);
    progress.log(`fraud_txn: declarative ${fr.fraudTxn.declarativeEventsPerSec}/s, frozen ${fr.fraudTxn.frozenEventsPerSec}/s (x${fr.fraudTxn.ratio}); random definitions ${fr.random.nsPerFeatureMedian} ns/feature (median); ${path.relative(process.cwd(), jsonFile)}`);
    if (opts.markdown) {
      const mdFile = path.join(repoRoot(), 'BENCHMARKS.md');
      const block = `<!-- bench:features:start -->\n${featuresMarkdown(fr, startedAt.toISOString().slice(0, 16), path.relative(path.dirname(mdFile), jsonFile))}\n<!-- bench:features:end -->`;
      let md = fs.existsSync(mdFile) ? fs.readFileSync(mdFile, 'utf8') : '# Benchmarks\n';
      const i = md.indexOf('<!-- bench:features:start -->');
      const j = md.indexOf('<!-- bench:features:end -->');
      md = i >= 0 && j > i ? md.slice(0, i) + block + md.slice(j + '<!-- bench:features:end -->'.length) : `${md.trimEnd()}\n\n${block}\n`;
      fs.writeFileSync(mdFile, md);
    }
    if (fr.fraudTxn.ratio < 1) progress.log(`WARNING: declarative fraud_txn is slower than the frozen hand-written extractor (x${fr.fraudTxn.ratio})`);
    if (opts.featuresOnly) return fr.fraudTxn.ratio >= 0.95 ? 0 : 1;
  }
  const codeRefs = parseCodeRefs(opts.tributaryDirs);
  if (opts.compareRefs.length) {
    // this checkout gets a label too, so every Tributary system says which code it ran
    if (codeRefs.length === 1 && !codeRefs[0].label) codeRefs[0] = { ...codeRefs[0], label: 'this' };
    for (const ref of opts.compareRefs) codeRefs.push(exportRef(ref, (m) => progress.log(m)));
  }
  for (const c of codeRefs) assertCompiledCurrent(c);
  // each checkout's commit and dirty flag as of the start of the run (not of each system's turn)
  const states = new Map<string, CodeState>();
  const codeState = (root: string) => states.get(root) ?? states.set(root, gitState(root)).get(root)!;
  for (const c of codeRefs) if (c.commit) states.set(c.root, { commit: c.commit, srcDirty: false, dirtyFiles: [] });
  for (const c of codeRefs) codeState(c.root);
  codeState(repoRoot());
  const defs = withCommitSweep(selectSystems(catalog(codeRefs), opts.systems), opts.commitSweep);
  progress.log(`run ${runId} (${opts.tag}): ${defs.length} systems: ${defs.map((d) => d.name).join(', ')}; ${opts.live.stepSeconds} s per step`);

  // The load generator should not be starved by other work on a shared machine: the bench process
  // (driver + probe) asks for a slightly higher CPU priority; the systems under test keep the default.
  let benchNice: number | string = 0;
  try {
    os.setPriority(-5);
    benchNice = os.getPriority();
  } catch (err) {
    benchNice = `unchanged (${(err as Error).message})`;
  }
  const stack = await startTestStack();
  const sampler = new ProcSampler(250);
  const ep = { brokers: stack.endpoints.brokers, schemaRegistryUrl: stack.endpoints.schemaRegistryUrl, redisUrl: stack.endpoints.redisUrl };
  const baseProcesses: string[] = ['bench (driver+probe)', STEAL];
  sampler.track('bench (driver+probe)', process.pid);
  sampler.trackSteal();
  if (stack.endpoints.source === 'local') {
    const st = readState(stateFilePath());
    if (st) {
      sampler.track('kafka broker (java)', st.kafka.pid);
      sampler.track('schema registry (java)', st.registry.pid);
      sampler.track('redis-server', st.redis.pid);
      baseProcesses.push('kafka broker (java)', 'schema registry (java)', 'redis-server');
    }
  }
  sampler.start();

  const catalogS = new SchemaCatalog(FRAUD_SCHEMAS_DIR);
  const gen = new TransactionGenerator({ seed: 1 });
  const sizes: number[] = [];
  for (let i = 0; i < 200; i++) sizes.push(5 + catalogS.get('transaction').type.toBuffer(gen.next().tx).length);
  const messageBytes = Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length);
  const cards = gen.spec.cards;

  const results: BenchResults = {
    meta: {
      runId,
      tag: opts.tag,
      startedAt: startedAt.toISOString(),
      options: opts,
      machine: { cores: os.cpus().length, ...cpuFacts(), memGiB: round(os.totalmem() / 2 ** 30, 1), node: process.version, kernel: os.release(), kafkaVersion: KAFKA_VERSION, stackSource: stack.endpoints.source, loadAvgAtStart: os.loadavg().map((x) => round(x, 2)) },
      code: codeState(repoRoot()),
      definitions: {
        latency: 'probe receive time of the prediction (read_committed consumer in the bench process) - the time the driver handed the event to its producer (the record\'s CreateTime); over every event a step sent, an event never predicted within the drain timeout counting as infinitely late',
        step: `open-loop: event i due at t0 + i/rate, handed over every ${opts.live.tickMs} ms in one batch (acks=all, up to ${opts.live.maxInFlight} requests in flight), for ${opts.live.stepSeconds} s; then up to ${opts.live.drainTimeoutS} s for the remaining predictions`,
        void: `a step is VOID when the p99 of per-event driver lateness (handed over - scheduled) exceeds ${opts.live.driverToleranceMs} ms: the driver, not the system, set the pace. A void step never passes; it is retried up to ${opts.live.voidRetries} times; it counts as a failure (upper bound) for the capacity search only when the system failed by more than the driver's delay explains: events unpredicted, or p99 minus the driver's worst lateness still >= ${opts.live.p99LimitMs} ms`,
        lag: `end-to-end lag = events acknowledged by the broker - events predicted, sampled every 250 ms while driving; "not growing" = its least-squares slope over the second half of the step is at most ${opts.live.lagSlopeFraction * 100}% of the offered rate per second (the limit is never below a rise of 20 events + 250 ms of traffic over that half: a commit cycle alone makes the lag a saw-tooth of about that size, which a short step's fit cannot tell from growth; with 30 s steps the 2% rule decides above 400 events/s)`,
        pass: `not void, p99 < ${opts.live.p99LimitMs} ms, lag not growing, every event predicted within the drain timeout, no duplicate and no dead letter`,
        capacity: `live capacity = highest passing offered rate: doubling from ${opts.live.startRate}/s until a step fails (halving first if it fails), then upward from the highest pass in steps of at most ${opts.live.refineStep * 100}% until one fails; steady offered load, never a backlog drain`,
        correctness: 'every event sent is predicted exactly once (matched by key) and none is dead-lettered; events of an instance abandoned by a restart on fresh topics are excluded and counted',
      },
      notes: [
        'Every process shares the same cores: broker, registry, Redis, the bench (driver + probe) and the system under test; CPU % is of one core.',
        `The bench process (driver + probe) runs at nice ${benchNice} so that other load on the machine does not make the driver fall behind; systems under test and the stack run at their default priority.`,
        'Each system runs on fresh suffixed topics, consumer groups and streaming-state namespace, deleted at its end. Steps of one system run back to back on one instance (restarted on fresh topics only when a step leaves events unpredicted).',
      ],
    },
    raw: { messageBytes },
    systems: [],
    failures: [],
  };
  if (opts.quick) results.meta.notes.push(`Quick mode: ${opts.live.stepSeconds} s steps instead of 30 s; capacity and latency figures are indicative, not the issue's 30 s criterion.`);

  const kafka = createKafka({ clientId: 'bench-admin', brokers: ep.brokers });
  const admin = kafka.admin();
  await admin.connect();
  const sessions: SystemSession[] = [];
  const rawTopics: string[] = [];
  let interrupted = false;
  const cleanup = async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const s of sessions) await s.cleanup(!interrupted).catch((err) => progress.log(`cleanup ${s.system}: ${(err as Error).message}`));
    // Kafka Streams keeps its members in the group until their session times out (45 s)
    const leftovers = new Set(sessions.flatMap((s) => s.leftoverGroups));
    if (leftovers.size) {
      const gone = await deleteGroups(admin, (g) => leftovers.has(g), () => undefined, 30);
      if (gone.length) progress.log(`could not delete consumer groups ${gone.join(', ')}`);
    }
    sampler.stop();
    try {
      if (rawTopics.length) await admin.deleteTopics({ topics: rawTopics, timeout: 30000 });
      await deleteGroups(admin, (g) => g.includes(runId), (msg) => progress.log(msg));
    } catch (err) {
      progress.log(`could not delete raw topics/groups: ${(err as Error).message}`);
    }
    await admin.disconnect().catch(() => undefined);
    const redis = new Redis(stack.endpoints.redisUrl);
    try {
      for (let start = 0; start < cards; start += 1000) {
        const keys: string[] = [];
        for (let i = start; i < Math.min(cards, start + 1000); i++) keys.push(`bench:card:card-${String(i).padStart(6, '0')}`, `bench:rb:${String(i).padStart(12, '0')}`);
        await redis.del(...keys);
      }
    } finally {
      redis.disconnect();
    }
    await stack.stop();
  };
  // SIGTERM too (kill, timeout): otherwise the system processes outlive the bench
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      interrupted = true;
      progress.log(`interrupted (${sig}): stopping children, deleting this run's topics`);
      void cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  }

  const paired: Array<{ out: SystemOutcome; session: SystemSession }> = [];
  /** A system failed: recorded on its outcome and logged. */
  const failed = (out: SystemOutcome, err: unknown) => {
    out.status = 'failed';
    out.error = (err as Error).message;
    progress.log(`${out.name}: FAILED: ${out.error}`);
  };
  /** Runs a step, and again while it is void (the driver, or the machine, set the pace) up to voidRetries times; every try is kept. */
  const untilNotVoid = async (out: SystemOutcome, once: () => Promise<StepResult>) => {
    let st = await once();
    for (let retry = 0; st.void && !st.failsDespiteVoid && retry < opts.live.voidRetries; retry++) {
      out.latency.push(st);
      st = await once();
    }
    out.latency.push(st);
  };
  /** The end of one system: the last predictions, stop, correctness, log levels, its topics deleted. */
  const finishSystem = async (out: SystemOutcome, session: SystemSession) => {
    if (out.status === 'ok') {
      try {
        // the last predictions, then a grace second for late duplicates
        for (const t of session.current().probe.phases.values()) await session.current().probe.drained(t, opts.live.drainTimeoutS * 1000);
        await new Promise((r) => setTimeout(r, 1000));
      } catch (err) {
        out.status = 'failed';
        out.error = (err as Error).message;
      }
    }
    await session.stop().catch((err) => progress.log(`${out.name}: stop: ${(err as Error).message}`));
    out.restarts = session.restarts;
    out.counters = session.counters;
    out.correctness = correctness(session);
    out.log = { file: path.relative(repoRoot(), session.logFile), ...session.logLevels() };
    if (out.status === 'failed') results.failures.push(`${out.name}: ${out.error}`);
    if (!out.correctness.ok) results.failures.push(`${out.name}: correctness: ${JSON.stringify(out.correctness)}`);
    progress.log(`${out.name}: correctness ${out.correctness.ok ? 'ok' : 'FAILED'} (${out.correctness.predicted}/${out.correctness.sent} predicted, ${out.correctness.missing} missing, ${out.correctness.duplicates} duplicates, ${out.correctness.deadLettered} dead-lettered${out.correctness.abandonedEvents ? `, ${out.correctness.abandonedEvents} abandoned by restarts` : ''}); log: ${out.log.errorLines} ERROR, ${out.log.warnLines} WARN lines`);
    await session.cleanup();
  };

  try {
    // ---- 1. raw limits
    if (!opts.skipRaw) await rawLimits(opts, results, { ep, admin, sampler, progress, runId, messageBytes, cards, rawTopics });

    // ---- 2. systems
    const demo = topologyFacts(loadVariant(loadCode(codeRefs[0]), { variant: 'default', suffix: 'x', partitions: opts.partitions }));
    const perStep = opts.live.stepSeconds + opts.live.pauseS + 3;
    const stepsPerSystem = 12 + opts.live.rates.length + opts.live.fractions.length;
    let systemsLeft = defs.length;
    for (const def of defs) {
      if (interrupted) break;
      systemsLeft--;
      const code = def.kind === 'tributary' ? def.code! : codeRefs.find((c) => !c.label) ?? parseCodeRefs(undefined)[0];
      const out: SystemOutcome = {
        name: def.name,
        kind: def.kind,
        label: def.label,
        variant: def.variant,
        delivery: def.kind === 'naive' ? 'at-least-once (auto-commit)' : def.kind === 'kstreams' ? def.peer?.guarantee : def.delivery,
        fuse: def.fuse,
        peer: def.peer,
        code: { ...codeState(code.root), label: code.label, root: code.root, knowsFuse: def.kind === 'tributary' ? loadCode(code).knowsFuse : undefined },
        status: 'ok',
        differences: [],
        latency: [],
        restarts: [],
        counters: [],
      };
      results.systems.push(out);
      if (def.kind === 'kstreams' && !fs.existsSync(PEER_JAR) && opts.buildPeer && fs.existsSync(path.join(PEER_DIR, 'build.sh'))) {
        progress.log(`building the Kafka Streams peer (bench/peers/kstreams/build.sh)`);
        try {
          execFileSync('bash', [path.join(PEER_DIR, 'build.sh')], { cwd: PEER_DIR, stdio: ['ignore', 'inherit', 'pipe'] });
        } catch (err) {
          const e = err as Error & { status?: number; stderr?: Buffer };
          // build.sh exits 3 when java or mvn is missing: the peer is skipped, not failed
          out.status = e.status === 3 ? 'skipped' : 'failed';
          out.error = e.status === 3 ? String(e.stderr ?? '').trim() : `build.sh failed: ${e.message}`;
          progress.log(`${def.name}: ${out.status.toUpperCase()}: ${out.error}`);
          if (out.status === 'failed') results.failures.push(`${def.name}: ${out.error}`);
          continue;
        }
      }
      const why = unavailable(def);
      if (why) {
        out.status = 'skipped';
        out.error = why;
        progress.log(`${def.name}: SKIPPED: ${why}`);
        continue;
      }
      // a variant the checkout's loader refuses is reported, not run
      try {
        const facts = topologyFacts(loadVariant(def.kind === 'tributary' ? loadCode(code) : loadCode(codeRefs.find((c) => !c.label) ?? parseCodeRefs(undefined)[0]), { variant: def.variant, suffix: 'x', partitions: opts.partitions, delivery: def.delivery, commit: mergeCommit(opts.commit, def.commit), transactions: def.transactions, poolWorkers: def.poolWorkers }));
        out.facts = facts;
        out.differences = differences(def, facts, demo);
      } catch (err) {
        out.status = 'not-servable';
        out.error = (err as Error).message;
        if (def.variant === 'nostream') {
          // the closest servable variant, with what it drops besides the streaming sets (computed)
          const stateless = topologyFacts(loadVariant(loadCode(code), { variant: 'stateless', suffix: 'x', partitions: opts.partitions }));
          out.differences = [`closest servable variant measured in this run: tributary-stateless-* (${differences(def, stateless, demo).join('; ')})`];
        }
        progress.log(`${def.name}: NOT SERVABLE: the loader refuses this variant: ${out.error.split('\n').slice(0, 3).join(' ')}`);
        continue;
      }
      const session = new SystemSession(def, { ep, kafka, admin, sampler, progress, partitions: opts.partitions, runTag: runId, logsDir, commit: opts.commit, baseProcesses });
      sessions.push(session);
      // an interleaved run only starts and warms each system up here: it is stepped in the rounds below, with the others
      const runner = opts.interleave > 0 ? new LiveRunner(opts.live, sampler, progress, () => 0, () => 1) : new LiveRunner(opts.live, sampler, progress, () => systemsLeft * stepsPerSystem * perStep, () => stepsPerSystem);
      try {
        progress.log(`${def.name}: starting (${def.label})`);
        await session.start();
        out.warmup = await runner.warmup(session);
        if (opts.interleave > 0) {
          out.rateWarmups = [];
          for (const rate of opts.live.rates) out.rateWarmups.push(await runner.step(session, 'warmup', rate, Math.min(10, opts.live.stepSeconds)));
        } else {
          out.capacity = await runner.capacity(session);
          for (const p of runner.plannedLatencyRates(out.capacity.eps)) {
            if (interrupted) break;
            await untilNotVoid(out, () => runner.step(session, p.purpose, p.rate, undefined, p.fraction));
          }
        }
      } catch (err) {
        failed(out, err);
      }
      if (opts.interleave > 0) {
        paired.push({ out, session });
        continue;
      }
      await finishSystem(out, session);
    }
    if (paired.length) {
      // ---- interleaved rounds: every rate once per system per round, the order reversed every other round
      const schedule = interleavedSchedule(opts.interleave, opts.live.rates, paired.length);
      const runner = new LiveRunner(opts.live, sampler, progress, () => 0, () => schedule.length);
      for (const at of schedule) {
        const { out, session } = paired[at.system];
        if (interrupted) break;
        if (out.status !== 'ok') continue;
        try {
          await untilNotVoid(out, async () => {
            const measured = await runner.step(session, 'rate', at.rate, undefined, undefined, at.round);
            const st = voidIfStolen(measured, opts.maxStealPct, os.cpus().length);
            if (st !== measured) progress.log(`${out.name} ${at.rate}/s round ${at.round + 1}: ${st.reasons[st.reasons.length - 1]}`);
            return st;
          });
        } catch (err) {
          failed(out, err);
          await session.stop().catch(() => undefined); // not left running through the other systems' steps
        }
      }
      for (const { out, session } of paired) await finishSystem(out, session);
    }
    for (const s of results.systems) if (s.status === 'skipped') results.meta.notes.push(`${s.name} skipped: ${s.error}`);

    results.meta.finishedAt = new Date().toISOString();
    results.meta.wallSeconds = round((Date.now() - startedAt.getTime()) / 1000, 0);
    const stamp = startedAt.toISOString().replace(/[:]/g, '-').replace(/\..*/, '');
    const jsonFile = path.join(resultsDir, `${stamp}-${opts.tag}.json`);
    fs.writeFileSync(jsonFile, JSON.stringify(results, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
    progress.log(`results: ${path.relative(repoRoot(), jsonFile)} (${results.meta.wallSeconds} s)`);
    const md = writeReport(results, { resultsDir, stamp, updateMarkdown: opts.markdown, markdownFile: path.join(repoRoot(), 'BENCHMARKS.md') });
    progress.log(`plot: ${md.svg}${opts.markdown ? '; BENCHMARKS.md updated' : ''}`);
    for (const s of results.systems) progress.log(`  ${s.name}: ${s.status}${s.capacity ? `, live capacity ${s.capacity.eps}/s (${s.capacity.note})` : ''}${s.error ? `: ${s.error.split('\n')[0]}` : ''}`);
    for (const f of results.failures) progress.log(`FAILURE: ${f.split('\n')[0]}`);
  } finally {
    if (!interrupted) await cleanup();
  }
  return results.failures.length > 0 ? 1 : 0;
}

function correctness(s: SystemSession): Correctness {
  const c: Correctness = { sent: 0, predicted: 0, missing: 0, duplicates: 0, deadLettered: 0, unknown: 0, undecodable: 0, abandonedPhases: 0, abandonedEvents: 0, ok: true };
  for (const probe of s.probes()) {
    c.unknown += probe.unknownKeys + (probe.deadLetters - [...probe.phases.values()].reduce((a, t) => a + t.deadLettered, 0));
    c.undecodable += probe.undecodable;
    for (const t of probe.phases.values()) {
      c.sent += t.sent;
      c.predicted += t.predicted;
      c.duplicates += t.duplicates;
      c.deadLettered += t.deadLettered;
      if (t.abandoned) {
        c.abandonedPhases++;
        c.abandonedEvents += t.missing();
      } else c.missing += t.missing();
    }
  }
  c.ok = c.missing === 0 && c.duplicates === 0 && c.deadLettered === 0 && c.unknown === 0 && c.undecodable === 0;
  return c;
}

interface RawContext {
  ep: { brokers: string[]; schemaRegistryUrl: string; redisUrl: string };
  admin: ReturnType<ReturnType<typeof createKafka>['admin']>;
  sampler: ProcSampler;
  progress: Progress;
  runId: string;
  messageBytes: number;
  cards: number;
  rawTopics: string[];
}

/** Kafka's perf tools, onnxruntime batch inference, Redis reads; a failing tool is a run failure. */
async function rawLimits(opts: Options, results: BenchResults, c: RawContext): Promise<void> {
  const { progress, sampler } = c;
  progress.log(`preloading ${c.cards} card hashes into Redis (raw Redis reads)`);
  await preloadRedis(c.ep.redisUrl, c.cards);
  const libs = artifactPaths().kafkaLibsDir;
  if (fs.existsSync(libs)) {
    const topic = `bench.raw.${c.runId}`;
    await c.admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: opts.partitions, replicationFactor: 1 }] });
    c.rawTopics.push(topic);
    progress.log(`raw Kafka: ProducerPerformance + ConsumerPerformance, ${opts.rawRecords} x ${c.messageBytes} B, ${opts.partitions} partitions`);
    try {
      results.raw.kafka = await kafkaPerf({ classpath: artifactPaths().kafkaClasspath, brokers: c.ep.brokers.join(','), topic, records: opts.rawRecords, recordSize: c.messageBytes, group: `bench-raw-${c.runId}`, sampler });
      progress.log(`  producer ${results.raw.kafka.producer.recordsPerSecond} rec/s, consumer ${results.raw.kafka.consumer.recordsPerSecond} rec/s`);
    } catch (err) {
      results.raw.kafka = { error: (err as Error).message };
    }
  } else results.raw.kafka = { error: `Kafka jars not found in ${libs} (stack not installed locally?)` };
  progress.log('raw onnxruntime: batch inference, 1 thread vs all cores');
  try {
    results.raw.onnx = await runToResult<{ rows: OnnxRow[]; pool: string }>('children/onnx.js', { ...c.ep, suffix: c.runId, partitions: opts.partitions, seconds: opts.quick ? 0.4 : 1.5 }, sampler, 'raw onnx (node)');
  } catch (err) {
    results.raw.onnx = { error: (err as Error).message };
  }
  progress.log('raw Redis: ioredis pipelined/sequential HGETALL, redis-benchmark');
  try {
    results.raw.redis = await redisRaw(c.ep.redisUrl, c.cards, opts.quick ? 1 : 3, sampler);
  } catch (err) {
    results.raw.redis = { error: (err as Error).message };
  }
  for (const [k, v] of Object.entries(results.raw)) if (v && typeof v === 'object' && 'error' in v) results.failures.push(`raw ${k}: ${String(v.error).split('\n')[0]}`);
}

export type { ProcUsage };

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
