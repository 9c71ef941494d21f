/**
 * The systems a run measures and how one is started, restarted on fresh topics, stopped and
 * cleaned up. Every instance gets its own suffix: fresh topics, consumer groups, transactional ids
 * and streaming-state namespace; at the end every topic and group whose name holds the suffix, and
 * its streaming state in Redis, are deleted.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import Redis from 'ioredis';
import { prepareFeatureSets } from '../../src/features/prepare';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import { provisionTopology } from '../../src/stages/pipeline';
import { repoRoot } from '../../src/stack/paths';
import { RECOMMENDED_NODE_FLAGS } from '../../src/util/node-flags';
import type { LoadedTopology } from '../../src/topology/spec';
import { sleep, type ChildConfig, type ChildMessage, type ProcSampler } from './common';
import { OpenLoopDriver, Probe, type Endpoints } from './drive';
import type { Instance, Session } from './live';
import type { Progress } from './progress';
import { driverKeyField, loadVariant, topologyFacts, type CommitSettings, type Delivery, type TopologyFacts, type Variant } from './topologies';
import { loadCode, ownCode, type TributaryCodeRef } from './tributary-code';

export type SystemKind = 'tributary' | 'naive' | 'kstreams';

export interface SystemDef {
  name: string;
  kind: SystemKind;
  variant: Variant;
  delivery?: Delivery;
  fuse?: boolean;
  code?: TributaryCodeRef;
  /** Kafka Streams peer settings (undefined = its defaults). */
  peer?: { commitIntervalMs?: number; lingerMs?: number; guarantee: 'exactly_once_v2' | 'at_least_once'; repartitionBy?: string };
  /** Exactly-once transactions set explicitly (`shared`: exactly-once v2; `per-partition`: classic); undefined: the code's default. */
  transactions?: 'shared' | 'per-partition';
  /** Shared transactions' scope (`Pipeline` option sharedScope); undefined: the code's default (process). */
  sharedScope?: 'process' | 'chain';
  /** Commit settings of this system (a --commit-interval-ms sweep); undefined: the run's. */
  commit?: CommitSettings;
  /**
   * Tributary: processes running the topology side by side, members of the same consumer groups
   * (what an operator gets by starting `tributary run` more than once on a machine). Default 1.
   * Their partitions are split by the group: give the run a partition count they divide.
   */
  processes?: number;
  /** Tributary: the scoring stage's `pool.workers` (0 = the model on the pipeline's thread, as the topology has it); undefined: the topology's. */
  poolWorkers?: number;
  label: string;
}

/** The run's commit settings with a system's own (a sweep's interval) on top; undefined when neither sets any. */
export function mergeCommit(run: CommitSettings | undefined, own: CommitSettings | undefined): CommitSettings | undefined {
  return run || own ? { ...run, ...own } : undefined;
}

/** A sweep: each Tributary system once per commit interval, named <name>~i<N>; others unchanged. */
export function withCommitSweep(defs: SystemDef[], intervals: number[] | undefined): SystemDef[] {
  if (!intervals) return defs;
  return defs.flatMap((d) =>
    d.kind !== 'tributary' ? [d] : intervals.map((ms) => ({ ...d, name: `${d.name}~i${ms}`, commit: { ...d.commit, intervalMs: ms }, label: `${d.label}, commit interval ${ms} ms` })),
  );
}

const DIST = path.join(repoRoot(), 'bench', 'dist', 'bench', 'src');
export const PEER_DIR = path.join(repoRoot(), 'bench', 'peers', 'kstreams');
export const PEER_JAR = path.join(PEER_DIR, 'target', 'tributary-kstreams-peer.jar');

/** Every system the bench knows, for each Tributary checkout under test. */
export function catalog(codes: TributaryCodeRef[]): SystemDef[] {
  const out: SystemDef[] = [];
  for (const code of codes) {
    const at = code.label ? `@${code.label}` : '';
    const t = (variant: Variant, delivery: Delivery, fuse: boolean, label: string): SystemDef => ({
      name: `tributary-${variant}-${delivery === 'exactly-once' ? 'eos' : 'alo'}-${fuse ? 'fused' : 'split'}${at}`,
      kind: 'tributary',
      variant,
      delivery,
      fuse,
      code,
      label: `Tributary${code.label ? ` (${code.label})` : ''}: ${label}, ${delivery}${delivery === 'exactly-once' ? ' (that code\'s default transactions: shared since 2026-11-30, per-partition before)' : ''}, stages ${fuse ? 'fused (fuse: true)' : 'split (fuse: false: one consumer group per stage)'}`,
    });
    const shared = (variant: Variant, label: string): SystemDef => ({
      ...t(variant, 'exactly-once', true, label),
      name: `tributary-${variant}-eos2-fused${at}`,
      transactions: 'shared',
      label: `Tributary${code.label ? ` (${code.label})` : ''}: ${label}, exactly-once v2 (transactions: shared — one transaction at a time for the process), stages fused (fuse: true)`,
    });
    const perChain = (variant: Variant, label: string): SystemDef => ({
      ...t(variant, 'exactly-once', true, label),
      name: `tributary-${variant}-eos2c-fused${at}`,
      transactions: 'shared',
      sharedScope: 'chain',
      label: `Tributary${code.label ? ` (${code.label})` : ''}: ${label}, exactly-once v2 (transactions: shared, one sink per chain — Pipeline option sharedScope: chain: the repartition hop and the chain behind it commit in transactions of their own, concurrently), stages fused (fuse: true)`,
    });
    // The same system as two processes on this machine, one consumer-group member each (named
    // tributary-x2-...: outside the default selections' patterns, chosen by name).
    const twice = (d: SystemDef): SystemDef => ({ ...d, name: d.name.replace(/^tributary-/, 'tributary-x2-'), processes: 2, label: `${d.label}; two processes side by side, members of the same groups` });
    // The model on one worker thread instead of the pipeline's own (named tributary-pool1-...:
    // outside the default selections' patterns): what moving inference off the main thread buys.
    const pooled = (d: SystemDef, workers: number): SystemDef => ({ ...d, name: d.name.replace(/^tributary-(x2-)?/, `tributary-$1pool${workers}-`), poolWorkers: workers, label: `${d.label}; the model on ${workers} inference worker thread${workers === 1 ? '' : 's'} (pool.workers: ${workers}) instead of the pipeline's thread` });
    // One sink as the default has it, but no transaction waits for the chain behind the hop to read
    // what the one before wrote (commit.readerWaitMs 0 on every stage; named outside the default patterns).
    const noReaderWait = (d: SystemDef): SystemDef => ({ ...d, name: d.name.replace('-eos2-', '-eos2w0-'), commit: { ...d.commit, readerWaitMs: 0 }, label: `${d.label}; commit.readerWaitMs 0 on every stage: no transaction waits for the chain behind the hop to read the one before` });
    const classic = (variant: Variant, label: string): SystemDef => ({
      ...t(variant, 'exactly-once', true, label),
      name: `tributary-${variant}-eos1-fused${at}`,
      transactions: 'per-partition',
      label: `Tributary${code.label ? ` (${code.label})` : ''}: ${label}, exactly-once with per-partition transactions (transactions: per-partition — one transactional producer per input partition), stages fused (fuse: true)`,
    });
    out.push(
      t('default', 'exactly-once', true, 'demo topology (model 2, batch + streaming features)'),
      shared('default', 'demo topology (model 2, batch + streaming features)'),
      shared('stateless', 'stateless topology (model 1, base features only)'),
      perChain('default', 'demo topology (model 2, batch + streaming features)'),
      noReaderWait(shared('default', 'demo topology (model 2, batch + streaming features)')),
      classic('default', 'demo topology (model 2, batch + streaming features)'),
      classic('stateless', 'stateless topology (model 1, base features only)'),
      t('default', 'exactly-once', false, 'demo topology (model 2, batch + streaming features)'),
      t('bycard', 'exactly-once', true, 'demo topology (model 2, batch + streaming features) with events keyed by card and partitionBy: none (no repartition hop)'),
      t('dedup', 'exactly-once', true, 'demo topology (model 2, batch + streaming features) with its repartition hop deduplicated (repartition.delivery: deduplicated: the hop written as processed, copies skipped by lineage)'),
      t('nostream', 'exactly-once', true, 'demo topology without its streaming feature sets (model 2 graph, those inputs held at their defaults; no repartition hop)'),
      t('nostream', 'exactly-once', false, 'demo topology without its streaming feature sets (model 2 graph, those inputs held at their defaults; no repartition hop)'),
      t('stateless', 'exactly-once', true, 'stateless topology (model 1, base features only)'),
      t('hop', 'exactly-once', true, 'stateless topology (model 1, base features only) behind a repartition hop (partitionBy: cardId)'),
      t('stateless', 'exactly-once', false, 'stateless topology (model 1, base features only)'),
      t('stateless', 'at-least-once', true, 'stateless topology (model 1, base features only)'),
      t('stateless', 'at-least-once', false, 'stateless topology (model 1, base features only)'),
      twice(t('stateless', 'exactly-once', true, 'stateless topology (model 1, base features only)')),
      twice(t('default', 'exactly-once', true, 'demo topology (model 2, batch + streaming features)')),
      pooled(t('stateless', 'exactly-once', true, 'stateless topology (model 1, base features only)'), 1),
      pooled(twice(t('stateless', 'exactly-once', true, 'stateless topology (model 1, base features only)')), 1),
      twice(t('nostream', 'exactly-once', true, 'demo topology without its streaming feature sets (model 2 graph, those inputs held at their defaults; no repartition hop)')),
    );
  }
  out.push(
    { name: 'naive-default', kind: 'naive', variant: 'default', label: 'naive kafkajs, per event, doing the demo topology\'s work (model 2, same features and Redis reads)' },
    { name: 'naive-stateless', kind: 'naive', variant: 'stateless', label: 'naive kafkajs, per event, doing the stateless topology\'s work (model 1)' },
    { name: 'kstreams-default', kind: 'kstreams', variant: 'stateless', peer: { guarantee: 'exactly_once_v2' }, label: 'Kafka Streams + ONNX Runtime Java peer, exactly_once_v2, Kafka Streams defaults (stateless topology, model 1)' },
    { name: 'kstreams-tuned', kind: 'kstreams', variant: 'stateless', peer: { guarantee: 'exactly_once_v2', commitIntervalMs: 20, lingerMs: 1 }, label: 'Kafka Streams + ONNX Runtime Java peer, exactly_once_v2, tuned for latency (commit.interval.ms=20, linger.ms=1; stateless topology, model 1)' },
    { name: 'kstreams-tuned-hop', kind: 'kstreams', variant: 'hop', peer: { guarantee: 'exactly_once_v2', commitIntervalMs: 20, lingerMs: 1, repartitionBy: 'cardId' }, label: 'Kafka Streams + ONNX Runtime Java peer, exactly_once_v2, tuned for latency (commit.interval.ms=20, linger.ms=1), re-keyed by cardId through a repartition topic before scoring (stateless topology, model 1; the counterpart of tributary-hop-eos-fused)' },
  );
  return out;
}

export const DEFAULT_SYSTEMS = ['tributary-default-eos-fused*', 'tributary-default-eos-split*', 'tributary-nostream-eos-fused*', 'tributary-stateless-*', 'naive-default', 'kstreams-default', 'kstreams-tuned'];
export const QUICK_SYSTEMS = ['tributary-default-eos-fused*', 'tributary-stateless-eos-fused*', 'naive-default', 'kstreams-tuned'];

/**
 * Filters the catalog by names or `*` patterns, in the order the patterns name them (a pattern's
 * matches in the catalog's order; a system matched twice runs once, where first named): the order
 * systems are measured in, which a run with its order reversed needs to choose.
 */
export function selectSystems(all: SystemDef[], patterns: string[]): SystemDef[] {
  const res = patterns.map((p) => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`));
  for (const [i, re] of res.entries()) if (!all.some((s) => re.test(s.name))) throw new Error(`--systems: '${patterns[i]}' matches no system (${all.map((s) => s.name).join(', ')})`);
  const out: SystemDef[] = [];
  for (const re of res) for (const s of all) if (re.test(s.name) && !out.includes(s)) out.push(s);
  return out;
}

/** Why a system cannot run here (peer jar or java missing), or undefined. */
export function unavailable(def: SystemDef): string | undefined {
  if (def.kind !== 'kstreams') return undefined;
  if (!fs.existsSync(PEER_JAR)) return `Kafka Streams peer jar ${path.relative(repoRoot(), PEER_JAR)} not found: build it with bench/peers/kstreams/build.sh (or pass --build-peer)`;
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore' });
  } catch {
    return 'java not found on PATH (the Kafka Streams peer needs a JDK 17)';
  }
  return undefined;
}

export interface SessionContext {
  ep: Endpoints & { redisUrl: string };
  kafka: Kafka;
  admin: Admin;
  sampler: ProcSampler;
  progress: Progress;
  partitions: number;
  runTag: string;
  logsDir: string;
  commit?: { intervalMs?: number; maxRecords?: number };
  baseProcesses: string[];
}

interface Running {
  /** The system's processes (one, or `processes` of a Tributary system). */
  procs: ChildProcess[];
  stop(): Promise<Record<string, number> | undefined>;
}

/** One system, possibly over several instances (a restart moves it to fresh topics). */
export class SystemSession implements Session {
  readonly system: string;
  readonly restarts: string[] = [];
  readonly suffixes: string[] = [];
  readonly logFile: string;
  topology!: LoadedTopology;
  facts!: TopologyFacts;
  counters: Array<Record<string, number> | undefined> = [];
  private inst?: Instance;
  private running?: Running;
  private died?: string;
  private readonly abandonedProbes: Probe[] = [];
  /** Groups cleanup could not delete yet (members not gone). */
  leftoverGroups: string[] = [];

  constructor(
    readonly def: SystemDef,
    private readonly ctx: SessionContext,
  ) {
    this.system = def.name;
    this.logFile = path.join(ctx.logsDir, `${ctx.runTag}-${def.name.replace(/[^A-Za-z0-9_.-]/g, '_')}.log`);
  }

  /** The sampler's name of the system's i-th process. */
  private sutName(i = 0): string {
    return `${this.def.name} (${this.def.kind === 'kstreams' ? 'java' : 'node'}${i > 0 ? ` #${i + 1}` : ''})`;
  }

  /** How many processes the system runs (only a Tributary system has more than one). */
  private get processCount(): number {
    return this.def.kind === 'tributary' ? (this.def.processes ?? 1) : 1;
  }

  private get sutNames(): string[] {
    return Array.from({ length: this.processCount }, (_, i) => this.sutName(i));
  }

  processNames(): string[] {
    return [...this.ctx.baseProcesses, ...this.sutNames];
  }

  current(): Instance {
    if (!this.inst) throw new Error(`${this.system}: not started`);
    return this.inst;
  }

  stepStarted(label: string): void {
    // Only Tributary's node children listen (IPC); the Kafka Streams peer has no channel.
    for (const p of this.running?.procs ?? []) if (p.connected) p.send({ type: 'step', label });
  }

  assertAlive(): void {
    if (this.died) throw new Error(`${this.system}: ${this.died} (log ${path.relative(repoRoot(), this.logFile)})`);
  }

  /** Every probe this system used (abandoned ones first). */
  probes(): Probe[] {
    return this.inst ? [...this.abandonedProbes, this.inst.probe] : [...this.abandonedProbes];
  }

  async start(): Promise<void> {
    const suffix = `${this.ctx.runTag}-${this.suffixes.length}-${this.def.name.replace(/[^A-Za-z0-9-]/g, '-')}`.toLowerCase();
    this.suffixes.push(suffix);
    const code = this.def.code ?? ownCode();
    this.topology = loadVariant(this.def.kind === 'tributary' ? loadCode(code) : loadCode(ownCode()), { variant: this.def.variant, suffix, partitions: this.ctx.partitions, delivery: this.def.delivery, commit: mergeCommit(this.ctx.commit, this.def.commit), transactions: this.def.transactions, poolWorkers: this.def.poolWorkers });
    this.facts = topologyFacts(this.topology);
    await provisionTopology(this.topology, this.ctx.kafka, new SchemaRegistryClient({ url: this.ctx.ep.schemaRegistryUrl }));
    if (this.facts.featureSets.some((s) => s.kind === 'redis_batch')) await prepareFeatureSets(this.topology, this.ctx.ep.redisUrl);
    const probe = new Probe(this.ctx.ep, this.facts.predictionTopic, this.def.kind === 'kstreams' ? undefined : this.facts.deadLetterTopic, `bench-probe-${suffix}`, this.ctx.partitions);
    const driver = new OpenLoopDriver(this.ctx.ep, this.facts.inputTopic, undefined, driverKeyField(this.def.variant));
    await Promise.all([probe.start(), driver.connect()]);
    this.inst = { probe, driver };
    this.died = undefined;
    fs.appendFileSync(this.logFile, `--- ${new Date().toISOString()} bench: starting ${this.def.name} on suffix ${suffix}\n`);
    this.running = this.def.kind === 'kstreams' ? await this.startPeer(suffix) : await this.startNode(suffix);
    this.running.procs.forEach((p, i) => this.ctx.sampler.track(this.sutName(i), p.pid!));
  }

  /** The system's processes, started side by side (each a member of the topology's groups); ready when all are. */
  private async startNode(suffix: string): Promise<Running> {
    const n = this.processCount;
    const started = await Promise.allSettled(Array.from({ length: n }, (_, i) => this.startNodeProcess(suffix, i)));
    const ok = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      for (const r of ok) for (const p of r.procs) p.kill('SIGKILL');
      throw failed.reason;
    }
    if (n === 1) return ok[0];
    return {
      procs: ok.flatMap((r) => r.procs),
      // Counters summed over the processes (each counts what it consumed and produced).
      stop: async () => {
        const all = await Promise.all(ok.map((r) => r.stop()));
        if (all.some((c) => c === undefined)) return undefined;
        const sum: Record<string, number> = {};
        for (const c of all) for (const [k, v] of Object.entries(c!)) sum[k] = (sum[k] ?? 0) + v;
        return sum;
      },
    };
  }

  private async startNodeProcess(suffix: string, index: number): Promise<Running> {
    // Processes of one system stopping together would each move the split era's groups (fencing
    // each other under one transactional id): the first alone does it, as with `run --processes`.
    const cfg: ChildConfig = { ...this.ctx.ep, ...(index > 0 ? { fastForwardOnStop: false } : {}), suffix, partitions: this.ctx.partitions, variant: this.def.variant, delivery: this.def.delivery, fuse: this.def.fuse, transactions: this.def.transactions, sharedScope: this.def.sharedScope, commit: mergeCommit(this.ctx.commit, this.def.commit), poolWorkers: this.def.poolWorkers, code: this.def.code };
    const out = fs.openSync(this.logFile, 'a');
    // BENCH_CPU_PROF_DIR: each system process writes a V8 CPU profile there when it stops
    // (summarise with `node bench/dist/bench/src/profile.js FILE`).
    const profDir = process.env.BENCH_CPU_PROF_DIR;
    // BENCH_NODE_ARGS: more V8/Node flags for the system processes (e.g. --trace-gc, into the system's log).
    // BENCH_NODE_ARGS_<LABEL>: flags for the systems of one --tributary-dir label only (the label
    // upper-cased), so one interleaved run compares the same code under two sets of flags.
    const label = this.def.code?.label;
    const forLabel = label ? process.env[`BENCH_NODE_ARGS_${label.toUpperCase()}`] : undefined;
    const extra = [process.env.BENCH_NODE_ARGS ?? '', forLabel ?? ''].join(' ').split(' ').filter(Boolean);
    // Every Tributary system runs with the flags the `tributary` executable sets (src/util/node-flags.ts),
    // whatever code it runs, so a comparison of two checkouts is about their code; later flags win.
    const execArgv = [...process.execArgv, ...(this.def.kind === 'tributary' ? RECOMMENDED_NODE_FLAGS : []), ...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []), ...extra];
    const proc = fork(path.join(DIST, 'children', `${this.def.kind}.js`), [JSON.stringify(cfg)], { execArgv, stdio: ['ignore', out, out, 'ipc'], env: { ...process.env, TRIBUTARY_LOG_LEVEL: process.env.TRIBUTARY_LOG_LEVEL ?? 'warn' } });
    fs.closeSync(out);
    let stopped!: (c: Record<string, number> | undefined) => void;
    const stoppedP = new Promise<Record<string, number> | undefined>((r) => (stopped = r));
    let ready = false;
    proc.on('exit', (code, sig) => {
      stopped(undefined);
      if (!this.stopping) this.died = `process exited (${code ?? sig}) while being measured`;
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.system}: not ready within 120 s (log ${this.logFile})`)), 120_000);
      proc.on('message', (m: ChildMessage) => {
        if (m.type === 'ready') {
          ready = true;
          clearTimeout(timer);
          resolve();
        } else if (m.type === 'stopped') stopped(m.counters);
        else if (m.type === 'error') {
          clearTimeout(timer);
          reject(new Error(`${this.system} failed: ${m.message.split('\n')[0]} (log ${path.relative(repoRoot(), this.logFile)})`));
        }
      });
      proc.on('exit', (code) => {
        clearTimeout(timer);
        if (!ready) reject(new Error(`${this.system} exited (${code}) before it was ready; log ${path.relative(repoRoot(), this.logFile)}`));
      });
    });
    return {
      procs: [proc],
      stop: async () => {
        proc.send({ type: 'stop' });
        const counters = await Promise.race([stoppedP, sleep(30_000).then(() => undefined)]);
        if (proc.exitCode === null) await Promise.race([new Promise((r) => proc.once('exit', r)), sleep(5_000)]);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
        return counters;
      },
    };
  }

  private async startPeer(suffix: string): Promise<Running> {
    const p = this.def.peer!;
    const args = ['-jar', PEER_JAR, '--bootstrap', this.ctx.ep.brokers.join(','), '--registry', this.ctx.ep.schemaRegistryUrl, '--input', this.facts.inputTopic, '--output', this.facts.predictionTopic, '--app-id', `bench-kstreams-${suffix}`, '--model', 'models/fraud/1/model.onnx', '--card', 'models/fraud/1/model.json', '--spec', 'models/fraud/generator-spec.json', '--guarantee', p.guarantee];
    if (p.commitIntervalMs !== undefined) args.push('--commit-interval-ms', String(p.commitIntervalMs));
    if (p.lingerMs !== undefined) args.push('--linger-ms', String(p.lingerMs));
    if (p.repartitionBy !== undefined) args.push('--repartition-by', p.repartitionBy);
    const out = fs.openSync(this.logFile, 'a');
    const proc = spawn('java', args, { cwd: repoRoot(), stdio: ['ignore', 'pipe', out] });
    fs.closeSync(out);
    let running = false;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.on('exit', (code, sig) => {
      if (!this.stopping) this.died = `peer exited (${code ?? sig}) while being measured`;
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.system}: no {"event":"running"} within 120 s (log ${this.logFile})`)), 120_000);
      let buf = '';
      proc.stdout!.on('data', (d: Buffer) => {
        fs.appendFileSync(this.logFile, d);
        buf += d.toString();
        if (!running && /"event"\s*:\s*"running"/.test(buf)) {
          running = true;
          clearTimeout(timer);
          resolve();
        }
        if (buf.length > 65536) buf = buf.slice(-1024);
      });
      proc.on('exit', (code) => {
        clearTimeout(timer);
        if (!running) reject(new Error(`${this.system} exited (${code}) before running; log ${path.relative(repoRoot(), this.logFile)}`));
      });
    });
    return {
      procs: [proc],
      stop: async () => {
        proc.kill('SIGTERM');
        await Promise.race([exited, sleep(30_000)]);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
        return undefined;
      },
    };
  }

  private stopping = false;

  /** Stops the system (graceful), then the probe and the driver. */
  async stop(): Promise<void> {
    this.stopping = true;
    try {
      if (this.running) {
        this.counters.push(await this.running.stop());
        for (const name of this.sutNames) this.ctx.sampler.untrack(name);
      }
      if (this.inst) await Promise.all([this.inst.probe.stop(), this.inst.driver.close()]);
    } finally {
      this.running = undefined;
      this.stopping = false;
    }
  }

  async restart(reason: string): Promise<void> {
    this.ctx.progress.log(`${this.system}: restarting on fresh topics (${reason})`);
    this.restarts.push(reason);
    const old = this.inst!;
    for (const t of old.probe.phases.values()) if (t.missing() > 0) t.abandoned = true;
    await this.stop();
    this.abandonedProbes.push(old.probe);
    this.inst = undefined;
    await this.start();
  }

  /** Kills what is left, deletes the topics and groups of every suffix and their streaming state. */
  async cleanup(quiet = false): Promise<void> {
    if (this.running) for (const p of this.running.procs) p.kill('SIGKILL');
    const mine = (n: string) => this.suffixes.some((s) => n.includes(s));
    try {
      const topics = (await this.ctx.admin.listTopics()).filter(mine);
      if (topics.length) await this.ctx.admin.deleteTopics({ topics, timeout: 30000 });
    } catch (err) {
      this.ctx.progress.log(`${this.system}: could not delete its topics: ${(err as Error).message}`);
    }
    this.leftoverGroups = await deleteGroups(this.ctx.admin, mine, (msg) => (quiet ? undefined : this.ctx.progress.log(`${this.system}: ${msg}`)));
    const redis = new Redis(this.ctx.ep.redisUrl);
    try {
      for (const s of this.suffixes) {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `tributary:st:{*${s}*}:*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length) await redis.del(...keys);
        } while (cursor !== '0');
      }
    } finally {
      redis.disconnect();
    }
  }

  /** ERROR and WARN lines the system logged (pino levels 50/40, or the words, for the Java peer). */
  logLevels(): { errorLines: number; warnLines: number } {
    let errorLines = 0;
    let warnLines = 0;
    if (!fs.existsSync(this.logFile)) return { errorLines, warnLines };
    for (const line of fs.readFileSync(this.logFile, 'utf8').split('\n')) {
      if (/"level":(50|60)\b|\bERROR\b/.test(line)) errorLines++;
      else if (/"level":40\b|\bWARN\b/.test(line)) warnLines++;
    }
    return { errorLines, warnLines };
  }
}

/**
 * Deletes the consumer groups whose id matches, one by one (kafkajs fails a whole DeleteGroups call
 * for one bad group); a group still emptying after its members left is retried a few times.
 */
export async function deleteGroups(admin: Admin, match: (groupId: string) => boolean, log: (msg: string) => void, attempts = 4): Promise<string[]> {
  let left: string[] = [];
  try {
    left = (await admin.listGroups()).groups.map((g) => g.groupId).filter(match);
  } catch (err) {
    log(`could not list consumer groups: ${(err as Error).message}`);
    return [];
  }
  for (let attempt = 0; attempt < attempts && left.length > 0; attempt++) {
    if (attempt > 0) await sleep(2000);
    const failed: string[] = [];
    for (const g of left) {
      try {
        await admin.deleteGroups([g]);
      } catch (err) {
        const why = JSON.stringify((err as { groups?: unknown }).groups ?? (err as Error).message);
        if (!/GROUP_ID_NOT_FOUND/.test(why)) failed.push(g);
      }
    }
    left = failed;
  }
  if (left.length) log(`consumer groups ${left.join(', ')} still have members (Kafka Streams does not leave its group on close); retried at the end of the run`);
  return left;
}
