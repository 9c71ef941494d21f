/**
 * `npm run bench [-- options]`: raw limits, a naive kafkajs pipeline and Tributary's demo topology,
 * side by side in one run on the local stack. See BENCHMARKS.md for what is measured and how.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import Redis from 'ioredis';
import { TransactionGenerator } from '../../src/demo/generator';
import { SchemaCatalog } from '../../src/kafka/avro-schemas';
import { createKafka } from '../../src/kafka/client';
import { SchemaRegistryClient } from '../../src/kafka/schema-registry';
import { provisionTopology } from '../../src/stages/pipeline';
import { artifactPaths, KAFKA_VERSION } from '../../src/stack/artifacts';
import { repoRoot, stateFilePath } from '../../src/stack/paths';
import { readState } from '../../src/stack/state';
import { startTestStack } from '../../src/stack/test-harness';
import { benchTopology, inputTopic, percentile, predictionTopic, ProcSampler, round, sleep, type ChildConfig, type ChildMessage, type ProcUsage } from './common';
import { Driver, Probe } from './drive';
import { summariseProfile, type ProfileSummary } from './profile';
import { kafkaPerf, preloadRedis, redisRaw, type KafkaPerf, type RedisRaw } from './raw';
import { writeReport } from './report';
import type { OnnxRow } from './children/onnx';

// kafkajs v2's one-time partitioner notice is noise here (children inherit this too)
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';

const BENCH_DIR = path.join(repoRoot(), 'bench');
const DIST = path.join(BENCH_DIR, 'dist', 'bench', 'src');

export const SYSTEMS = {
  naive: { script: 'children/naive.js', redis: true, label: 'naive kafkajs (eachMessage, 1 Redis read + 1 inference + 1 send per event)' },
  'naive-noredis': { script: 'children/naive.js', redis: false, label: 'naive kafkajs without the Redis read (same work as Tributary)' },
  tributary: { script: 'children/tributary.js', redis: false, label: 'Tributary demo topology (extract -> score, both stages in one process)' },
} as const;
type SystemName = keyof typeof SYSTEMS;

const HELP = `npm run bench -- [options]
  --quick                 short run (< 2 min on 2 cores): fewer events, 5 s per load level
  --partitions N          partitions of the data topics and the raw Kafka topic (default 3)
  --messages N            backlog events for the max-throughput phase (default 150000; quick 30000)
  --duration S            seconds per offered-load level (default 20; quick 5)
  --loads LIST            offered loads as fractions of each system's measured max (default 0.25,0.5,0.75)
  --systems LIST          of naive,naive-noredis,tributary (default all three; quick: naive,tributary)
  --raw-records N         records for Kafka's perf tools (default 500000; quick 100000)
  --skip-raw              skip the raw limits
  --profile               run the Tributary child with --cpu-prof and summarise the profile
  --no-markdown           do not touch BENCHMARKS.md
  --tag NAME              label of this run in BENCHMARKS.md (default quick|default)
  --help`;

interface Options {
  quick: boolean;
  partitions: number;
  messages: number;
  duration: number;
  loads: number[];
  systems: SystemName[];
  rawRecords: number;
  skipRaw: boolean;
  profile: boolean;
  markdown: boolean;
  tag: string;
  maxDrainSeconds: number;
  warmupSeconds: number;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      partitions: { type: 'string' },
      messages: { type: 'string' },
      duration: { type: 'string' },
      loads: { type: 'string' },
      systems: { type: 'string' },
      'raw-records': { type: 'string' },
      'skip-raw': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'no-markdown': { type: 'boolean', default: false },
      tag: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const q = values.quick;
  const systems = (values.systems ?? (q ? 'naive,tributary' : 'naive,naive-noredis,tributary')).split(',').map((s) => s.trim()) as SystemName[];
  for (const s of systems) if (!(s in SYSTEMS)) throw new Error(`unknown system '${s}' (${Object.keys(SYSTEMS).join(', ')})`);
  return {
    quick: q,
    partitions: Number(values.partitions ?? 3),
    messages: Number(values.messages ?? (q ? 30000 : 150000)),
    duration: Number(values.duration ?? (q ? 5 : 20)),
    loads: (values.loads ?? '0.25,0.5,0.75').split(',').map(Number),
    systems,
    rawRecords: Number(values['raw-records'] ?? (q ? 100000 : 500000)),
    skipRaw: values['skip-raw'],
    profile: values.profile,
    markdown: !values['no-markdown'],
    tag: values.tag ?? (q ? 'quick' : 'default'),
    maxDrainSeconds: q ? 8 : 25,
    warmupSeconds: q ? 1 : 2,
  };
}

const log = (msg: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

export interface LoadResult {
  fraction: number;
  offeredEps: number;
  seconds: number;
  sent: number;
  predicted: number;
  complete: boolean;
  achievedEps: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number; samples: number };
  /** producedTime - ingestTime as stamped by the system itself (no probe fetch). */
  internalLatencyMs: { p50: number; p95: number; p99: number; max: number; samples: number };
  /** Driver's produce requests, send() to acks=all answer. */
  driverAckMs: { p50: number; p99: number };
  /** Driver could not keep the schedule (requests in flight cap hit) this many times. */
  driverBehind: number;
  processes: Record<string, ProcUsage | undefined>;
}

export interface SystemResult {
  name: SystemName;
  label: string;
  max: { backlog: number; produceSeconds: number; predicted: number; complete: boolean; sustainedEps: number; overallEps: number; seconds: number; processes: Record<string, ProcUsage | undefined> };
  loads: LoadResult[];
  counters?: Record<string, number>;
  restartedForLoads: boolean;
  /** One summary per thread profile of the system's process (main thread first; worker threads after). */
  profiles?: ProfileSummary[];
}

export interface BenchResults {
  meta: {
    tag: string;
    startedAt: string;
    finishedAt?: string;
    options: Options;
    machine: { cores: number; cpuModel: string; memGiB: number; node: string; kernel: string; kafkaVersion: string; stackSource: string };
    /** The code measured: HEAD and whether src/ had uncommitted changes (the bench compiles the working tree). */
    code: { commit: string; srcDirty: boolean; dirtyFiles: string[] };
    latencyDefinition: string;
    throughputDefinition: string;
    notes: string[];
  };
  raw: { messageBytes: number; kafka?: KafkaPerf | { error: string }; onnx?: { rows: OnnxRow[]; pool: string } | { error: string }; redis?: RedisRaw | { error: string } };
  systems: SystemResult[];
  ratios: Record<string, number | string>;
}

const children = new Set<ChildProcess>();

interface RunningChild {
  proc: ChildProcess;
  stopped: Promise<Record<string, number> | undefined>;
}

/** Forks a system-under-test child and waits for its 'ready'. */
async function startChild(name: string, script: string, cfg: ChildConfig, logFile: string, execArgv: string[] = []): Promise<RunningChild> {
  const out = fs.openSync(logFile, 'a');
  const proc = fork(path.join(DIST, script), [JSON.stringify(cfg)], {
    stdio: ['ignore', out, out, 'ipc'],
    execArgv,
    env: { ...process.env, TRIBUTARY_LOG_LEVEL: process.env.TRIBUTARY_LOG_LEVEL ?? 'warn' },
  });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  let stoppedResolve!: (c: Record<string, number> | undefined) => void;
  const stopped = new Promise<Record<string, number> | undefined>((r) => (stoppedResolve = r));
  proc.on('exit', () => stoppedResolve(undefined));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not ready within 120 s (log: ${logFile})`)), 120_000);
    proc.on('message', (m: ChildMessage) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolve();
      } else if (m.type === 'stopped') stoppedResolve(m.counters);
      else if (m.type === 'error') {
        clearTimeout(timer);
        reject(new Error(`${name} failed: ${m.message}`));
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before it was ready; log: ${logFile}`));
    });
  });
  return { proc, stopped };
}

async function stopChild(c: RunningChild): Promise<Record<string, number> | undefined> {
  c.proc.send({ type: 'stop' });
  const counters = await Promise.race([c.stopped, sleep(30_000).then(() => undefined)]);
  if (c.proc.exitCode === null) await Promise.race([new Promise((r) => c.proc.once('exit', r)), sleep(5_000)]);
  if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  return counters;
}

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

function latencyStats(latency: number[], ingest: number[], from: number) {
  const xs = latency.filter((_, i) => ingest[i] >= from).sort((a, b) => a - b);
  return { p50: percentile(xs, 50), p95: percentile(xs, 95), p99: percentile(xs, 99), max: xs.length ? xs[xs.length - 1] : NaN, samples: xs.length };
}

function usages(sampler: ProcSampler, names: string[], from: number, to: number): Record<string, ProcUsage | undefined> {
  const out: Record<string, ProcUsage | undefined> = {};
  for (const n of names) out[n] = sampler.usage(n, from, to);
  return out;
}

async function main(): Promise<void> {
  const opts = options();
  const startedAt = new Date();
  const runTag = `b${startedAt.getTime().toString(36)}`;
  const resultsDir = path.join(BENCH_DIR, 'results');
  const logsDir = path.join(resultsDir, 'logs');
  const profDir = path.join(resultsDir, 'profiles', runTag);
  fs.mkdirSync(logsDir, { recursive: true });
  log(`run ${runTag} (${opts.tag}); options ${JSON.stringify(opts)}`);

  const stack = await startTestStack();
  const sampler = new ProcSampler(250);
  const ep = { brokers: stack.endpoints.brokers, schemaRegistryUrl: stack.endpoints.schemaRegistryUrl };
  const procNames: string[] = ['bench (driver+probe)'];
  sampler.track('bench (driver+probe)', process.pid);
  if (stack.endpoints.source === 'local') {
    const st = readState(stateFilePath());
    if (st) {
      sampler.track('kafka broker (java)', st.kafka.pid);
      sampler.track('schema registry (java)', st.registry.pid);
      sampler.track('redis-server', st.redis.pid);
      procNames.push('kafka broker (java)', 'schema registry (java)', 'redis-server');
    }
  }
  sampler.start();

  const catalog = new SchemaCatalog(path.join(repoRoot(), 'schemas'));
  const gen = new TransactionGenerator({ seed: 1 });
  const sizes: number[] = [];
  for (let i = 0; i < 200; i++) sizes.push(5 + catalog.get('transaction').type.toBuffer(gen.next().tx).length);
  const messageBytes = Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length);
  const cards = gen.spec.cards;

  const results: BenchResults = {
    meta: {
      tag: opts.tag,
      startedAt: startedAt.toISOString(),
      options: opts,
      machine: { cores: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '?', memGiB: round(os.totalmem() / 2 ** 30, 1), node: process.version, kernel: os.release(), kafkaVersion: KAFKA_VERSION, stackSource: stack.endpoints.source },
      code: gitState(),
      latencyDefinition: 'probe receive time of the prediction - Kafka timestamp (CreateTime) of the input record, both taken in the bench process; the first warmupSeconds of each level are excluded',
      throughputDefinition: 'backlog drain: predictions between the 10th and 90th percentile of arrivals divided by the time between them (steady state, group join excluded)',
      notes: [],
    },
    raw: { messageBytes },
    systems: [],
    ratios: {},
  };

  const kafka = createKafka({ clientId: 'bench-admin', brokers: ep.brokers });
  const admin = kafka.admin();
  await admin.connect();
  const createdTopics: string[] = [];
  const cleanup = async () => {
    for (const c of children) c.kill('SIGKILL');
    sampler.stop();
    try {
      const existing = new Set(await admin.listTopics());
      const mine = createdTopics.filter((t) => existing.has(t));
      if (mine.length) await admin.deleteTopics({ topics: mine, timeout: 30000 });
    } catch (err) {
      log(`could not delete bench topics: ${(err as Error).message}`);
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
  let interrupted = false;
  process.once('SIGINT', () => {
    interrupted = true;
    log('interrupted: stopping children and the stack');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    log(`preloading ${cards} card hashes into Redis`);
    await preloadRedis(stack.endpoints.redisUrl, cards);

    // ---- 1. raw limits
    if (!opts.skipRaw) {
      const libs = artifactPaths().kafkaLibsDir;
      if (fs.existsSync(libs)) {
        const topic = `bench.raw.${runTag}`;
        await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: opts.partitions, replicationFactor: 1 }] });
        createdTopics.push(topic);
        log(`raw Kafka: ProducerPerformance + ConsumerPerformance, ${opts.rawRecords} x ${messageBytes} B, ${opts.partitions} partitions`);
        try {
          results.raw.kafka = await kafkaPerf({ classpath: artifactPaths().kafkaClasspath, brokers: ep.brokers.join(','), topic, records: opts.rawRecords, recordSize: messageBytes, group: `bench-raw-${runTag}`, sampler });
          log(`  producer ${results.raw.kafka.producer.recordsPerSecond} rec/s, consumer ${results.raw.kafka.consumer.recordsPerSecond} rec/s (fetch ${results.raw.kafka.consumer.fetchRecordsPerSecond})`);
        } catch (err) {
          results.raw.kafka = { error: (err as Error).message };
          log(`  raw Kafka failed: ${(err as Error).message.split('\n')[0]}`);
        }
      } else {
        results.raw.kafka = { error: `Kafka jars not found in ${libs} (stack not installed locally?)` };
      }
      log('raw onnxruntime: batch inference, 1 thread vs all cores');
      try {
        results.raw.onnx = await runToResult<{ rows: OnnxRow[]; pool: string }>('children/onnx.js', { ...ep, redisUrl: stack.endpoints.redisUrl, suffix: runTag, partitions: opts.partitions, seconds: opts.quick ? 0.4 : 1.5 }, sampler, 'raw onnx (node)');
        const best = Math.max(...results.raw.onnx.rows.map((r) => r.rowsPerSecond));
        log(`  best ${best} rows/s; batch=1: ${results.raw.onnx.rows.filter((r) => r.batch === 1).map((r) => `${r.config} ${r.rowsPerSecond}/s`).join(', ')}`);
      } catch (err) {
        results.raw.onnx = { error: (err as Error).message };
      }
      log('raw Redis: ioredis pipelined/sequential HGETALL, redis-benchmark');
      try {
        results.raw.redis = await redisRaw(stack.endpoints.redisUrl, cards, opts.quick ? 1 : 3, sampler);
        log(`  ioredis pipelined ${results.raw.redis.ioredisPipelinedReadsPerSecond}/s, sequential ${results.raw.redis.ioredisSequentialReadsPerSecond}/s`);
      } catch (err) {
        results.raw.redis = { error: (err as Error).message };
      }
    }

    // ---- 2./3. systems under test
    for (const name of opts.systems) {
      if (interrupted) break;
      const sys = SYSTEMS[name];
      const cfgFor = (suffix: string): ChildConfig => ({ ...ep, redisUrl: stack.endpoints.redisUrl, suffix, partitions: opts.partitions, redis: sys.redis });
      const prepare = async (suffix: string) => {
        const topo = benchTopology(suffix, opts.partitions);
        await provisionTopology(topo, kafka, new SchemaRegistryClient({ url: ep.schemaRegistryUrl }));
        createdTopics.push(...topo.spec.topics.map((t) => t.name));
        const probe = new Probe(ep, predictionTopic(topo), `bench-probe-${suffix}`, opts.partitions);
        const driver = new Driver(ep, inputTopic(topo));
        await Promise.all([probe.start(), driver.connect()]);
        return { probe, driver };
      };
      const sutName = `${name} (node)`;
      const logFile = path.join(logsDir, `${runTag}-${name}.log`);
      const execArgv = opts.profile && name === 'tributary' ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [];
      let suffix = `${runTag}-${name}`;
      let { probe, driver } = await prepare(suffix);

      log(`${name}: producing a backlog of ${opts.messages} events`);
      const bl = await driver.backlog('b', opts.messages);
      log(`  backlog produced in ${bl.seconds.toFixed(1)} s; starting ${name}`);
      let child = await startChild(name, sys.script, cfgFor(suffix), logFile, execArgv);
      sampler.track(sutName, child.proc.pid!);
      const readyAt = Date.now();
      const b = probe.phase('b');
      for (;;) {
        if (b.count >= opts.messages) break;
        const first = b.receivedAt[0];
        if (first !== undefined && Date.now() - first > opts.maxDrainSeconds * 1000) break;
        if (first === undefined && Date.now() - readyAt > 60_000) throw new Error(`${name}: no prediction within 60 s of start (log ${logFile})`);
        await sleep(50);
      }
      const arrivals = [...b.receivedAt].sort((x, y) => x - y);
      const i10 = Math.floor(arrivals.length * 0.1);
      const i90 = Math.max(i10 + 1, Math.floor(arrivals.length * 0.9) - 1);
      const sustainedEps = round((i90 - i10) / ((arrivals[i90] - arrivals[i10]) / 1000 || NaN), 0);
      const overallEps = round((arrivals.length - 1) / ((arrivals[arrivals.length - 1] - arrivals[0]) / 1000 || NaN), 0);
      const complete = b.count >= opts.messages;
      const max = {
        backlog: opts.messages,
        produceSeconds: round(bl.seconds, 2),
        predicted: b.count,
        complete,
        sustainedEps,
        overallEps,
        seconds: round((arrivals[arrivals.length - 1] - arrivals[0]) / 1000, 2),
        processes: usages(sampler, [...procNames, sutName], arrivals[i10], arrivals[i90]),
      };
      log(`  max: ${sustainedEps} events/s sustained (${b.count}/${opts.messages} predicted${complete ? '' : ', time-boxed'}), ${name} CPU ${max.processes[sutName]?.cpuPercent}%`);

      let restartedForLoads = false;
      let counters: Record<string, number> | undefined;
      if (!complete) {
        // leftover backlog would pollute the latency levels: fresh topics and a fresh instance
        restartedForLoads = true;
        counters = await stopChild(child);
        sampler.untrack(sutName);
        await Promise.all([probe.stop(), driver.close()]);
        suffix = `${suffix}-l`;
        ({ probe, driver } = await prepare(suffix));
        child = await startChild(name, sys.script, cfgFor(suffix), logFile, execArgv);
        sampler.track(sutName, child.proc.pid!);
      }

      const loads: LoadResult[] = [];
      for (const [k, fraction] of opts.loads.entries()) {
        if (interrupted) break;
        const rate = Math.max(1, Math.round(fraction * sustainedEps));
        const phase = `l${k}`;
        const r = await driver.paced(phase, rate, opts.duration);
        const done = await probe.waitFor(phase, r.sent, Math.max(5000, opts.duration * 1000));
        const s = probe.phase(phase);
        const arr = [...s.receivedAt].sort((x, y) => x - y);
        const lat = latencyStats(s.latency, s.ingest, r.start + opts.warmupSeconds * 1000);
        const internal = latencyStats(s.internal, s.ingest, r.start + opts.warmupSeconds * 1000);
        const acks = [...driver.ackMs].sort((x, y) => x - y);
        const lr: LoadResult = {
          fraction,
          offeredEps: rate,
          seconds: opts.duration,
          sent: r.sent,
          predicted: s.count,
          complete: done,
          achievedEps: round(s.count / Math.max(opts.duration, (arr[arr.length - 1] - r.start) / 1000), 0),
          latencyMs: lat,
          internalLatencyMs: internal,
          driverAckMs: { p50: percentile(acks, 50), p99: percentile(acks, 99) },
          driverBehind: r.behind,
          processes: usages(sampler, [...procNames, sutName], r.start, r.end),
        };
        loads.push(lr);
        log(`  load ${Math.round(fraction * 100)}% = ${rate}/s: p50 ${lat.p50} ms, p95 ${lat.p95} ms, p99 ${lat.p99} ms [internal p50 ${internal.p50} p99 ${internal.p99}; driver ack p50 ${lr.driverAckMs.p50} p99 ${lr.driverAckMs.p99}] (${s.count}/${r.sent}${done ? '' : ' NOT DRAINED'}), ${name} CPU ${lr.processes[sutName]?.cpuPercent}%, RSS ${lr.processes[sutName]?.rssMaxMiB} MiB`);
      }
      const c2 = await stopChild(child);
      const prefixed = (c: Record<string, number> | undefined, p: string) => Object.fromEntries(Object.entries(c ?? {}).map(([k, v]) => [`${p}${k}`, v]));
      counters = restartedForLoads ? { ...prefixed(counters, 'max-instance.'), ...prefixed(c2, 'load-instance.') } : c2;
      sampler.untrack(sutName);
      await Promise.all([probe.stop(), driver.close()]);
      const sr: SystemResult = { name, label: sys.label, max, loads, counters, restartedForLoads };
      if (execArgv.length > 0 && fs.existsSync(profDir)) {
        // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: one file per thread (inference pool workers too)
        const files = fs.readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')).sort((x, y) => Number(x.split('.')[4]) - Number(y.split('.')[4]));
        sr.profiles = files.map((f) => {
          const p = summariseProfile(path.join(profDir, f), 25);
          p.file = path.relative(repoRoot(), path.join(profDir, f));
          return p;
        });
        for (const p of sr.profiles) log(`  profile ${p.file}: ${p.byArea.slice(0, 5).map((a) => `${a.area} ${a.percentOfBusy}%`).join(', ')}`);
      }
      results.systems.push(sr);
    }

    // ---- ratios
    const tri = results.systems.find((s) => s.name === 'tributary');
    const rawK = results.raw.kafka && 'producer' in results.raw.kafka ? results.raw.kafka : undefined;
    const rawO = results.raw.onnx && 'rows' in results.raw.onnx ? results.raw.onnx : undefined;
    const limits: Record<string, number> = {};
    if (rawK) {
      limits['kafka ProducerPerformance (acks=all)'] = rawK.producer.recordsPerSecond;
      limits['kafka ConsumerPerformance'] = rawK.consumer.recordsPerSecond;
    }
    if (rawO) limits['onnxruntime best batch'] = Math.max(...rawO.rows.map((r) => r.rowsPerSecond));
    const tight = Object.entries(limits).sort((a, b) => a[1] - b[1])[0];
    if (tri && tight) {
      results.ratios['tightest raw limit'] = `${tight[0]}: ${tight[1]} events/s`;
      results.ratios['tributary / tightest raw limit'] = round(tri.max.sustainedEps / tight[1], 3);
    }
    for (const n of ['naive', 'naive-noredis'] as const) {
      const nv = results.systems.find((s) => s.name === n);
      if (tri && nv) {
        results.ratios[`tributary / ${n} (throughput)`] = round(tri.max.sustainedEps / nv.max.sustainedEps, 2);
        results.ratios[`${n} / tributary (max CPU-seconds per event)`] = round(cpuPerEvent(nv) / cpuPerEvent(tri), 2);
      }
    }
    if (tri) results.ratios['tributary CPU ms per event (its process, backlog phase)'] = round(cpuPerEvent(tri) * 1000, 3);
    results.meta.notes.push(
      "Tributary's demo topology does not read Redis yet; 'naive' does one HGETALL per event (extra work), 'naive-noredis' does the same work as Tributary.",
      'Tributary runs two stages (two Kafka hops: transactions -> features -> predictions); the naive pipeline one hop. Raw Kafka limits are per hop.',
      'Every process shares the same cores (broker, registry, Redis, the bench driver/probe and the system under test); CPU % is of one core.',
    );
    results.meta.finishedAt = new Date().toISOString();

    const stamp = startedAt.toISOString().replace(/[:]/g, '-').replace(/\..*/, '');
    const jsonFile = path.join(resultsDir, `${stamp}-${opts.tag}.json`);
    fs.writeFileSync(jsonFile, JSON.stringify(results, null, 2) + '\n');
    log(`results: ${path.relative(repoRoot(), jsonFile)}`);
    const md = writeReport(results, { resultsDir, stamp, updateMarkdown: opts.markdown, markdownFile: path.join(repoRoot(), 'BENCHMARKS.md') });
    log(`plot: ${md.svg}${opts.markdown ? '; BENCHMARKS.md updated' : ''}`);
    for (const [k, v] of Object.entries(results.ratios)) log(`  ${k}: ${v}`);
  } finally {
    if (!interrupted) await cleanup();
  }
}

function gitState(): { commit: string; srcDirty: boolean; dirtyFiles: string[] } {
  const git = (args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: repoRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  };
  const dirty = git(['status', '--porcelain', '--', 'src']).split('\n').filter(Boolean).map((l) => l.slice(3));
  return { commit: git(['rev-parse', 'HEAD']) || 'unknown', srcDirty: dirty.length > 0, dirtyFiles: dirty };
}

/** CPU-seconds of the system's own process per event during the backlog phase. */
function cpuPerEvent(s: SystemResult): number {
  const u = s.max.processes[`${s.name} (node)`];
  return u ? u.cpuPercent / 100 / s.max.sustainedEps : NaN;
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
