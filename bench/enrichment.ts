/**
 * Enrichment throughput per consumed-batch size, against `redis-benchmark` pipelined reads measured
 * in the same run on the same Redis. Not a test: `npm run bench:enrichment` (stack must be up, or
 * REDIS_URL set). Prints a table and writes bench/results/enrichment-<time>.json.
 *
 * Modes per batch size: batch sets only, LRU off (pure Redis: one read script per set and batch —
 * pointer, version check and one HMGET per entity); batch sets with the LRU warm; full vector
 * (batch sets, LRU off, + the streaming state: computed in this process, one commit script per
 * batch, concurrent with the batch reads); full vector with the stage's default LRU (100,000
 * entries, 30 s TTL), started cold so it fills from the run's own repeats as a live stage's does.
 * Each row also carries the CPU time per event of the Redis server (all its threads, from
 * /proc/<pid>/task/<tid>/schedstat), of this Node process, and their total; and the host's speed
 * just before and after the row (hostAluNs…, hostMemoryNs…, hostAllocNs…: fixed reference work
 * timed in this process, bench/src/host-speed.ts), so runs of the same code can be compared on it.
 *
 * Flatness (the demo's five `card_activity` aggregations through the streaming state alone): Redis
 * CPU per event for events of cold entities (one event each) against events of one entity that
 * already holds 10,000 events in its 24 h window, in event-time order and out of order. V8 keeps
 * optimising this path for tens of thousands of events (its compiler threads count as this
 * process's CPU), so the three cases first run BENCH_FLAT_WARMUP events each unrecorded (default
 * 20,000), then BENCH_FLAT_ROUNDS recorded rounds (default 3) of BENCH_FLAT_EVENTS (default 5,000);
 * a row is the median round (all rounds are in the JSON).
 *
 * Each batch-size row also says how much of its tail is the garbage collector: the collections
 * (perf_hooks 'gc' entries) during the measured batches, the share of batches that overlapped
 * one, and the p99 of the batches that did not; and the p99 of the batches after the row's first
 * tenth (batchP99SteadyMs: the default LRU filled, each entity's first load done, as in a stage that
 * has been running). BENCH_HEAP_SAMPLE_DIR=<dir> adds V8's sampling
 * heap profile of each row (every allocation, those a scavenge collected included), written as
 * <dir>/<mode>-<batch>.heapprofile, and the bytes allocated per event it estimates;
 * BENCH_HEAP_SURVIVORS=1 samples only what no scavenge collected (what survives and is promoted).
 * The full-vector rows call the enricher as the engine's chain does (a BatchScope): the state's
 * commits are written behind the vectors, so a batch's latency (batchP50ms...) is until its vectors
 * are ready — what the stage after it waits for — and durableP50Ms / durableP99Ms until its commits
 * landed (what the chunk's Kafka commit waits for; the bench awaits them before the next batch, as
 * a lane does). Mode full-lru-awaited: the same as full-lru with the commits awaited inside enrich
 * (a caller without a scope: backfills, tests), for the difference in one run.
 * And where the rest of the tail is (rows with the streaming state): over the batches no collection
 * touched, the p50/p99 of the commit script's round trip (timed around the client's call) and of
 * the rest of the batch (this process's work, with the batch-set reads that overlap it); and the
 * share of the row's scripts that ran past ~1 and ~2 ms inside Redis (its LATENCY HISTOGRAM of
 * EVALSHA, Redis 7+; absent where the server refuses it) — a long round trip with no long script
 * is spent outside the script: this thread busy with the batch's other work, or waiting for a core.
 *
 * BENCH_EVENTS, BENCH_BATCHES (batches per row at most, default 400: the p99 of a row is its 4th
 * slowest batch; a longer row amortises the cold start), BENCH_SIZES, BENCH_MODES (comma list of:
 * batch, lru, full, full-lru, full-lru-awaited), BENCH_FLAT=0
 * to skip it, BENCH_REFERENCE=0 to skip redis-benchmark. BENCH_GROWTH=<events> (blocks of
 * BENCH_GROWTH_BLOCK) measures the cost per event as the state grows; BENCH_HEAP_SNAPSHOT=<file>
 * then writes a heap snapshot of the grown state (summarise with bench/tools/heap-by-type.js).
 * BENCH_BATCH_TRACE=<dir> writes each row's batches (start, vectors ready, commits landed) and
 * collections (start, end, kind) as <dir>/<mode>-<batch>.json, performance.now() milliseconds.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as inspector from 'node:inspector';
import * as path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import Redis from 'ioredis';
import { TransactionGenerator } from '../examples/fraud/generator';
import { Enricher, describeVector, type VectorConfig } from '../src/features/enricher';
import { extractionBase } from '../src/stages/extraction';
import { batchKeys, currentVersion } from '../src/features/batch-store';
import { prepareFeatureSets } from '../src/features/prepare';
import { resolveEndpoints } from '../src/stack/endpoints';
import { repoRoot } from '../src/stack/paths';
import { StreamingState, type StreamEvent } from '../src/features/streaming';
import type { StreamingFeatureSetSpec } from '../src/features/spec';
import { loadTopology } from '../src/stages/load-topology';
import { builtinProcessors } from '../src/stages/builtin';
import { measureHostSpeed, type HostSpeed } from './src/host-speed';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 20000);
const SIZES = (process.env.BENCH_SIZES ?? '1,16,64,256,1024').split(',').map(Number);
const MODES = (process.env.BENCH_MODES ?? 'batch,lru,full,full-lru').split(',');
/** Batches measured per row at most (a row is min(BENCH_EVENTS, batch size × this) events). */
const BATCHES = Number(process.env.BENCH_BATCHES ?? 400);
const TICKS_PER_SEC = 100; // USER_HZ on Linux

/**
 * CPU seconds the process has used so far, from /proc: the sum over its threads of
 * /proc/<pid>/task/<tid>/schedstat (nanoseconds on a CPU), so short runs are not rounded to the
 * 10 ms ticks of /proc/<pid>/stat; falls back to those ticks where schedstat is missing.
 */
function procCpuSeconds(pid: number): number {
  try {
    let ns = 0;
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    return ns / 1e9;
  } catch {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SEC; // utime, stime (fields 14, 15)
  }
}

/** Measures Redis and Node CPU over `fn`, per event, in microseconds; `excludedUs()`: this process's CPU spent on the bench's own work inside fn (making the inputs), not counted. */
async function cpuPerEvent(redisPid: number | undefined, events: number, fn: () => Promise<void>, excludedUs: () => number = () => 0): Promise<{ redisCpuUsPerEvent: number | null; nodeCpuUsPerEvent: number; totalCpuUsPerEvent: number | null }> {
  const r0 = redisPid ? procCpuSeconds(redisPid) : 0;
  const n0 = process.cpuUsage();
  await fn();
  const n1 = process.cpuUsage(n0);
  const r1 = redisPid ? procCpuSeconds(redisPid) : 0;
  const redisUs = redisPid ? ((r1 - r0) * 1e6) / events : null;
  const nodeUs = (n1.user + n1.system - excludedUs()) / events;
  return { redisCpuUsPerEvent: redisUs === null ? null : +redisUs.toFixed(1), nodeCpuUsPerEvent: +nodeUs.toFixed(1), totalCpuUsPerEvent: redisUs === null ? null : +(redisUs + nodeUs).toFixed(1) };
}

/** The heap in use after a full collection, MB (the process's retained state; gc exposed at run time). */
function heapAfterGcMB(): number {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
  return +(process.memoryUsage().heapUsed / 2 ** 20).toFixed(1);
}

/** Typed arrays' backing stores, MB (outside the heap: the window state's columns live there). */
function arrayBuffersMB(): number {
  return +(process.memoryUsage().arrayBuffers / 2 ** 20).toFixed(1);
}

/** Garbage collections seen while `fn` runs: [start, end] in performance.now() ms, and their kinds. */
async function gcDuring<T>(fn: () => Promise<T>): Promise<{ result: T; pauses: Array<[number, number, number]>; scavenges: number; others: number }> {
  // [start, end, kind]: perf_hooks' NODE_PERFORMANCE_GC_* (1 minor, 2 major, 4 incremental, 8 weak callbacks).
  const pauses: Array<[number, number, number]> = [];
  let scavenges = 0;
  let others = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
      pauses.push([e.startTime, e.startTime + e.duration, kind]);
      // NODE_PERFORMANCE_GC_MINOR = 1 (a scavenge); the rest are mark-compact, incremental, weak callbacks.
      if (kind === 1) scavenges++;
      else others++;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const result = await fn();
  // Entries are delivered asynchronously: let the last ones arrive.
  await new Promise((r) => setImmediate(r));
  obs.disconnect();
  return { result, pauses, scavenges, others };
}

/**
 * The Redis server's own latency histogram of EVALSHA (`LATENCY HISTOGRAM`, Redis 7+: cumulative
 * call counts per power-of-two bound in µs), or null where the server has none. Read before and
 * after a row, the difference says how long the row's scripts ran inside Redis — apart from the
 * network and this process (a reply that arrives while this thread is paused waits for it).
 */
async function evalshaHistogram(redis: Redis): Promise<Map<number, number> | null> {
  try {
    const reply = (await redis.call('LATENCY', 'HISTOGRAM', 'evalsha')) as unknown[];
    const body = reply[1] as unknown[] | undefined;
    if (!body) return new Map();
    const hist = body[body.indexOf('histogram_usec') + 1] as number[];
    const out = new Map<number, number>();
    for (let i = 0; i < hist.length; i += 2) out.set(Number(hist[i]), Number(hist[i + 1]));
    return out;
  } catch {
    return null;
  }
}

/** Of the EVALSHA calls between two histograms: how many, and how many ran past ~1 and ~2 ms in Redis (bounds 1,056 and 2,113 µs: the histogram's own). */
function scriptsInRedis(before: Map<number, number> | null, after: Map<number, number> | null): { redisScripts: number; redisScriptsOver1msPct: number; redisScriptsOver2msPct: number } | Record<string, never> {
  if (!before || !after) return {};
  const at = (h: Map<number, number>, bound: number) => {
    // Cumulative counts: the count at the largest bound not above `bound`.
    let c = 0;
    for (const [b, n] of h) if (b <= bound) c = Math.max(c, n);
    return c;
  };
  const total = (h: Map<number, number>) => Math.max(0, ...h.values());
  const calls = total(after) - total(before);
  const within = (bound: number) => at(after, bound) - at(before, bound);
  const pct = (n: number) => (calls === 0 ? 0 : +((100 * n) / calls).toFixed(2));
  return { redisScripts: calls, redisScriptsOver1msPct: pct(calls - within(1056)), redisScriptsOver2msPct: pct(calls - within(2113)) };
}

/**
 * Allocations during `fn` sampled by V8 (every 16 KiB on average, those collected by scavenges and
 * mark-compacts included), written to `file` as a .heapprofile; returns the estimated bytes allocated.
 */
async function sampledAllocations(file: string, fn: () => Promise<void>): Promise<number> {
  const session = new inspector.Session();
  session.connect();
  const post = (method: string, params?: object) => new Promise<unknown>((resolve, reject) => session.post(method, params ?? {}, (err, r) => (err ? reject(err) : resolve(r))));
  // BENCH_HEAP_SURVIVORS=1: only what no scavenge collected (what each scavenge copies and promotes).
  const all = process.env.BENCH_HEAP_SURVIVORS !== '1';
  await post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: all, includeObjectsCollectedByMinorGC: all });
  await fn();
  const { profile } = (await post('HeapProfiler.stopSampling')) as { profile: { head: AllocNode } };
  session.disconnect();
  fs.writeFileSync(file, JSON.stringify(profile));
  type AllocNode = { selfSize: number; children: AllocNode[] };
  const total = (n: AllocNode): number => n.selfSize + n.children.reduce((a, c) => a + total(c), 0);
  return total(profile.head);
}

/** A row's host-speed columns: each workload's ns before and after the row (flat, for the JSON's readers). */
function hostSpeedFields(before: HostSpeed | undefined, after: HostSpeed | undefined): Record<string, number> {
  if (!before || !after) return {};
  return { hostAluNsBefore: before.aluNs, hostAluNsAfter: after.aluNs, hostMemoryNsBefore: before.memoryNs, hostMemoryNsAfter: after.memoryNs, hostAllocNsBefore: before.allocNs, hostAllocNsAfter: after.allocNs };
}

async function main(): Promise<void> {
  const root = repoRoot();
  const redisUrl = process.env.REDIS_URL ?? resolveEndpoints().redisUrl;
  const topology = loadTopology(path.join(root, 'topologies/fraud-detection.yaml'), { registry: builtinProcessors(), baseDir: root });
  await prepareFeatureSets(topology, redisUrl);
  const cfg = topology.spec.stages[0].config as unknown as VectorConfig;
  const full = describeVector(cfg, topology.spec.features, extractionBase(cfg, { topology }));
  const batchOnly = describeVector({ ...cfg, features: cfg.features!.filter((f) => f !== 'card_activity') }, topology.spec.features, extractionBase(cfg, { topology }));
  const redis = new Redis(redisUrl);
  // The Redis server's pid, when it runs on this machine (CPU from /proc); null otherwise.
  const info = await redis.info('server');
  const pidMatch = /process_id:(\d+)/.exec(info);
  const redisPid = pidMatch && fs.existsSync(`/proc/${pidMatch[1]}/stat`) ? Number(pidMatch[1]) : undefined;
  // The events are made batch by batch (the same seeded stream for every row), outside the timed
  // part, and dropped after their batch, as a consumer decodes and lets go of its records: holding
  // the whole row's inputs (~200,000 objects) made the bench's own arrays most of the old
  // generation each major collection marks, a cost no live stage has (BENCHMARKS.md item 40).
  const eventStream = () => {
    const gen = new TransactionGenerator({ seed: 1 });
    return (count: number) => {
      const out = new Array<ReturnType<TransactionGenerator['next']>['tx']>(count);
      for (let i = 0; i < count; i++) out[i] = gen.next().tx;
      return out;
    };
  };
  const rows: Array<Record<string, number | string | null>> = [];
  // The host is often shared: the load average goes with the figures.
  const loadAverage = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`load average at start: ${loadAverage}`);

  // cache: 'warm' = an LRU filled with the measured events first; 'default' = the stage's default LRU, cold at the start.
  // behind = true: as the engine's chain calls it (a BatchScope): the state's commits are written
  // behind the vectors; a batch's latency is until its vectors are ready (what the next stage waits
  // for), and `durable` until its commits landed (what the chunk's Kafka commit waits for). false: as
  // a caller without a scope (backfills, tests): the commits awaited inside enrich.
  const run = async (label: string, vector: typeof full, batchSize: number, cache: 'off' | 'warm' | 'default', record = true, behind = true) => {
    const enricher = new Enricher(vector, { redis, namespace: `bench-${Date.now()}-${label}-${batchSize}`, cache: cache === 'warm' ? { maxEntries: 100000, ttlMs: 600000 } : cache === 'off' ? { maxEntries: 0 } : undefined });
    await enricher.init();
    const n = Math.min(EVENTS, batchSize * BATCHES);
    if (cache === 'warm') await enricher.enrich(eventStream()(n).map((tx, i) => ({ event: tx, eventTime: tx.eventTime, topic: 'warm', partition: 0, offset: i }))); // warm the LRU
    const batches: Array<[number, number]> = []; // [start, vectors ready], performance.now() ms
    const durableMs: number[] = []; // per batch: until its state commits landed
    // The streaming state's commit script, timed from this process per batch (the round trip:
    // the script in Redis, the network, and any pause of this thread before the reply is read).
    // Only timed: the call itself is the client's own.
    const commitMs: number[] = [];
    let commitNow = 0;
    const client = redis as unknown as { tribStreamCommit?: (...a: unknown[]) => Promise<unknown> };
    const commit = client.tribStreamCommit;
    if (commit) {
      client.tribStreamCommit = async (...a: unknown[]) => {
        const t = performance.now();
        try {
          return await commit.apply(redis, a);
        } finally {
          commitNow += performance.now() - t;
        }
      };
    }
    const take = eventStream();
    // The host's speed beside the row (bench/src/host-speed.ts): the same code has measured 1.9x
    // apart between runs on one host; this says whether the host moved.
    const speedBefore = record ? measureHostSpeed() : undefined;
    let makingUs = 0; // CPU spent making the inputs, left out of the row's CPU per event
    const batchCount = Math.ceil(n / batchSize);
    const t0 = process.hrtime.bigint();
    const measured = async () => {
      for (let b = 0; b < batchCount; b++) {
        const made = process.cpuUsage();
        const batch = take(Math.min(batchSize, n - b * batchSize)).map((tx, k) => ({ event: tx, eventTime: tx.eventTime, topic: 'bench', partition: 0, offset: b * batchSize + k }));
        const spent = process.cpuUsage(made);
        makingUs += spent.user + spent.system;
        const s = performance.now();
        commitNow = 0;
        const works: Array<Promise<unknown>> = [];
        await enricher.enrich(batch, behind ? { beforeCommit: (w) => works.push(w) } : undefined);
        const ready = performance.now();
        for (const w of works) await w;
        batches.push([s, ready]);
        durableMs.push(performance.now() - s);
        commitMs.push(commitNow);
      }
    };
    const sampleDir = record ? process.env.BENCH_HEAP_SAMPLE_DIR : undefined;
    let allocated: number | undefined;
    const histBefore = await evalshaHistogram(redis);
    const { result: cpu, pauses, scavenges, others } = await gcDuring(() =>
      cpuPerEvent(
        redisPid,
        n,
        async () => {
          if (!sampleDir) return measured();
          fs.mkdirSync(sampleDir, { recursive: true });
          allocated = await sampledAllocations(path.join(sampleDir, `${label.replace(/[^a-z0-9]+/gi, '-')}-${batchSize}.heapprofile`), measured);
        },
        () => makingUs,
      ),
    );
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const speedAfter = record ? measureHostSpeed() : undefined;
    // BENCH_BATCH_TRACE=<dir>: each batch's [start, vectors ready, commits landed] and the collections' [start, end, kind] (performance.now() ms).
    if (record && process.env.BENCH_BATCH_TRACE) {
      fs.mkdirSync(process.env.BENCH_BATCH_TRACE, { recursive: true });
      fs.writeFileSync(path.join(process.env.BENCH_BATCH_TRACE, `${label.replace(/[^a-z0-9]+/gi, '-')}-${batchSize}.json`), JSON.stringify({ batches: batches.map(([s, e], i) => [s, e, s + durableMs[i]]), pauses }));
    }
    const inRedis = scriptsInRedis(histBefore, await evalshaHistogram(redis));
    if (commit) client.tribStreamCommit = commit;
    // A batch is "hit" when a collection paused the thread during it.
    const hit = batches.map(([s, e]) => pauses.some(([a, b]) => a < e && b > s));
    const latencies = batches.map(([s, e]) => e - s).sort((a, b) => a - b);
    const clean = batches.filter((_, i) => !hit[i]).map(([s, e]) => e - s).sort((a, b) => a - b);
    // Past the first tenth of the row: a stage that has run a while (its caches filled from its own
    // repeats, the first loads of each entity done). Reported beside the whole row, not instead of it.
    const steady = batches.slice(Math.ceil(batches.length / 10)).map(([s, e]) => e - s).sort((a, b) => a - b);
    // The tail's anatomy: the commit's round trip, and the rest of the batch (this process's work
    // and the batch-set reads, which overlap the state's), both over the batches no collection touched.
    const commits = commitMs.filter((_, i) => !hit[i]).sort((a, b) => a - b);
    // Written behind, the commit is not in the batch's latency: the rest is all of it.
    const rest = batches.flatMap(([s, e], i) => (hit[i] ? [] : [e - s - (behind ? 0 : commitMs[i])])).sort((a, b) => a - b);
    const durable = durableMs.slice().sort((a, b) => a - b);
    const pct = (xs: number[], q: number) => (xs.length === 0 ? null : +xs[Math.min(xs.length - 1, Math.floor(xs.length * q))].toFixed(3));
    await enricher.streaming?.reset();
    if (!record) return;
    const gc = { scavenges, otherGcs: others, gcMs: +pauses.reduce((a, [s, e]) => a + e - s, 0).toFixed(1), batchesHitByGcPct: +((100 * hit.filter(Boolean).length) / hit.length).toFixed(1), batchP99NoGcMs: pct(clean, 0.99), batchP99SteadyMs: pct(steady, 0.99) };
    const anatomy = commit && enricher.streaming ? { commitP50NoGcMs: pct(commits, 0.5), commitP99NoGcMs: pct(commits, 0.99), restP50NoGcMs: pct(rest, 0.5), restP99NoGcMs: pct(rest, 0.99), ...inRedis } : {};
    const row = { mode: label, batchSize, events: n, eventsPerSec: Math.round(n / secs), batchP50ms: pct(latencies, 0.5), batchP90ms: pct(latencies, 0.9), batchP99ms: pct(latencies, 0.99), durableP50Ms: pct(durable, 0.5), durableP99Ms: pct(durable, 0.99), roundTrips: enricher.stats.roundTrips, ...cpu, ...gc, ...anatomy, ...(allocated === undefined ? {} : { allocatedBytesPerEvent: Math.round(allocated / n) }), ...hostSpeedFields(speedBefore, speedAfter) };
    rows.push(row);
    console.log(JSON.stringify(row));
  };
  // Warm-up (not recorded): a live stage runs for hours, so compile the hot paths (V8's optimising
  // compiler runs on background threads whose CPU counts in this process) before measuring.
  if (MODES.some((m) => m.startsWith('full'))) await run('warm-up', full, 100, 'off', false);
  else if (MODES.includes('batch')) await run('warm-up', batchOnly, 100, 'off', false);
  for (const size of SIZES) {
    if (MODES.includes('batch')) await run('batch-sets, no LRU', batchOnly, size, 'off');
    if (MODES.includes('lru')) await run('batch-sets, LRU warm', batchOnly, size, 'warm');
    if (MODES.includes('full')) await run('full vector (batch + streaming)', full, size, 'off');
    if (MODES.includes('full-lru')) await run('full vector, default LRU (cold start)', full, size, 'default');
    if (MODES.includes('full-lru-awaited')) await run('full vector, default LRU, commits awaited in enrich', full, size, 'default', true, false);
  }

  // Growth (BENCH_GROWTH=<events>, off by default): the demo stream as the live bench's driver
  // offers it (one generator, the spec's 5,000 cards, event times of one day at 50/s of pacing clock, so every
  // card's 24 h window keeps filling) through the full vector with the stage's default LRU, in
  // batches of 64; CPU per event and events/s per block of BENCH_GROWTH_BLOCK events. A flat row
  // says the state's cost does not grow with the events per card; a rising one names the culprit
  // of a live run that slows down as it goes.
  const growth: Array<Record<string, number | null>> = [];
  const GROWTH = Number(process.env.BENCH_GROWTH ?? 0);
  if (GROWTH > 0) {
    const BLOCK = Number(process.env.BENCH_GROWTH_BLOCK ?? 50000);
    const gen = new TransactionGenerator({ seed: 42, startTime: Date.now() });
    const enricher = new Enricher(full, { redis, namespace: `bench-growth-${Date.now()}` });
    await enricher.init();
    let offset = 0;
    for (let done = 0; done < GROWTH; done += BLOCK) {
      const block = gen.take(BLOCK).map((g) => g.tx);
      const t0 = process.hrtime.bigint();
      const cpu = await cpuPerEvent(redisPid, BLOCK, async () => {
        for (let i = 0; i < BLOCK; i += 64) await enricher.enrich(block.slice(i, i + 64).map((tx, k) => ({ event: tx, eventTime: tx.eventTime, topic: 'growth', partition: 0, offset: offset + i + k })));
      });
      offset += BLOCK;
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const row = { eventsBefore: done, events: BLOCK, eventsPerCardBefore: Math.round(done / gen.spec.cards), eventsPerSec: Math.round(BLOCK / secs), ...cpu, heapAfterGcMB: heapAfterGcMB(), arrayBuffersMB: arrayBuffersMB() };
      growth.push(row);
      console.log(JSON.stringify({ growth: row }));
    }
    // BENCH_HEAP_SNAPSHOT=<file>: the heap once the state has grown (what each held event costs, by constructor).
    if (process.env.BENCH_HEAP_SNAPSHOT) console.log(`heap snapshot: ${v8.writeHeapSnapshot(process.env.BENCH_HEAP_SNAPSHOT)}`);
    await enricher.streaming?.reset();
  }

  // Flatness: Redis CPU per event of the five card_activity aggregations, cold vs 10,000 events in the window.
  const flat: Array<Record<string, number | string | null>> = [];
  if (process.env.BENCH_FLAT !== '0') {
    const activity = topology.spec.features!.sets.find((x) => x.name === 'card_activity') as StreamingFeatureSetSpec;
    const DAY = 86_400_000;
    const T0 = 1_700_000_000_000;
    const ev = (offset: number, card: string, t: number, i: number): StreamEvent => ({ offset, eventTime: t, entities: [card], values: [[String(10 + (i % 97)), `m${i % 50}`]] });
    const N = Number(process.env.BENCH_FLAT_EVENTS ?? 5000);
    const WARMUP = Number(process.env.BENCH_FLAT_WARMUP ?? 20000);
    const ROUNDS = Number(process.env.BENCH_FLAT_ROUNDS ?? 3);
    const B = 64;
    const measure = async (prefill: StreamEvent[], events: number, make: (i: number, offset: number) => StreamEvent) => {
      const state = new StreamingState(redis, `bench-flat-${Date.now()}-${flat.length}-${Math.random().toString(36).slice(2)}`, [activity]);
      const epoch = await state.takeEpoch('flat', 0);
      for (let i = 0; i < prefill.length; i += 100) await state.apply('flat', 0, epoch, prefill.slice(i, i + 100));
      const measured = Array.from({ length: events }, (_, i) => make(i, prefill.length + i));
      const cpu = await cpuPerEvent(redisPid, events, async () => {
        for (let i = 0; i < events; i += B) await state.apply('flat', 0, epoch, measured.slice(i, i + B));
      });
      await state.reset();
      return cpu;
    };
    const HOT = 10_000;
    const spacing = Math.floor((DAY - 3_600_000) / HOT); // 10,000 events within the last 23 h
    const hot = Array.from({ length: HOT }, (_, i) => ev(i, 'hot', T0 + i * spacing, i));
    const hotEnd = T0 + HOT * spacing;
    const cases: Array<[string, StreamEvent[], (i: number, o: number) => StreamEvent]> = [
      ['cold entities (1 event each)', [], (i, o) => ev(o, `cold-${i}`, hotEnd + i * 10, i)],
      ['hot entity, in event-time order', hot, (i, o) => ev(o, 'hot', hotEnd + i * 10, i)],
      ['hot entity, out of order (within 12 h)', hot, (i, o) => ev(o, 'hot', hotEnd - ((i * 7919) % 43_200_000), i)],
    ];
    if (WARMUP > 0) for (const [, prefill, make] of cases) await measure(prefill, WARMUP, make);
    const median = (xs: Array<number | null>) => (xs.some((x) => x === null) ? null : [...(xs as number[])].sort((a, b) => a - b)[Math.floor(xs.length / 2)]);
    for (const [label, prefill, make] of cases) {
      const rounds: Array<Awaited<ReturnType<typeof cpuPerEvent>>> = [];
      for (let r = 0; r < ROUNDS; r++) rounds.push(await measure(prefill, N, make));
      const row = {
        flatness: label,
        windowEvents: prefill.length,
        events: N,
        batchSize: B,
        rounds: ROUNDS,
        warmupEvents: WARMUP,
        redisCpuUsPerEvent: median(rounds.map((x) => x.redisCpuUsPerEvent)),
        nodeCpuUsPerEvent: median(rounds.map((x) => x.nodeCpuUsPerEvent))!,
        totalCpuUsPerEvent: median(rounds.map((x) => x.totalCpuUsPerEvent)),
        perRound: rounds,
      };
      flat.push(row as unknown as Record<string, number | string | null>);
      console.log(JSON.stringify(row));
    }
  }

  // redis-benchmark: pipelined HMGET of a real entity hash (same fields as the card_profile reads).
  const url = new URL(redisUrl);
  const version = (await currentVersion(redis, 'card_profile'))!;
  const key = batchKeys.entity('card_profile', version, 'card-000001');
  const reference: Array<Record<string, number | string>> = [];
  for (const pipeline of process.env.BENCH_REFERENCE === '0' ? [] : [1, 16, 64, 256]) {
    const out = execFileSync('redis-benchmark', ['-h', url.hostname, '-p', url.port, '-n', '200000', '-P', String(pipeline), '-c', '1', '--csv', 'HMGET', key, '__ts', 'card_age_days', 'card_avg_amount_usd', 'card_prior_chargebacks'], { encoding: 'utf8' });
    const last = out.trim().split('\n').pop()!.split(',').map((c) => c.replace(/"/g, ''));
    const r = { tool: 'redis-benchmark HMGET (1 client)', pipeline, requestsPerSec: Number(last[1]) };
    reference.push(r);
    console.log(JSON.stringify(r));
  }
  redis.disconnect();
  const dir = path.join(root, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `enrichment-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  // The node flags go with the figures: the young generation's size moves the tail (README "Node flags").
  fs.writeFileSync(file, JSON.stringify({ events: EVENTS, nodeFlags: process.execArgv, loadAverageAtStart: loadAverage, loadAverageAtEnd: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '), enrichment: rows, flatness: flat, growth, redisBenchmark: reference }, null, 2));
  console.log(`\n${'mode'.padEnd(38)} ${'batch'.padStart(6)} ${'events/s'.padStart(10)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'steady p99'.padStart(10)} ${'redis µs/ev'.padStart(12)} ${'node µs/ev'.padStart(11)} ${'total µs/ev'.padStart(12)} ${'host alu/mem/alloc ns, before → after'}`);
  for (const r of rows) console.log(`${String(r.mode).padEnd(38)} ${String(r.batchSize).padStart(6)} ${String(r.eventsPerSec).padStart(10)} ${String(r.batchP50ms).padStart(8)} ${String(r.batchP99ms).padStart(8)} ${String(r.batchP99SteadyMs).padStart(10)} ${String(r.redisCpuUsPerEvent).padStart(12)} ${String(r.nodeCpuUsPerEvent).padStart(11)} ${String(r.totalCpuUsPerEvent).padStart(12)} ${r.hostAluNsBefore === undefined ? '' : `${r.hostAluNsBefore}/${r.hostMemoryNsBefore}/${r.hostAllocNsBefore} → ${r.hostAluNsAfter}/${r.hostMemoryNsAfter}/${r.hostAllocNsAfter}`}`);
  for (const r of flat) console.log(`${String(r.flatness).padEnd(45)} redis ${String(r.redisCpuUsPerEvent).padStart(8)} µs/event  node ${String(r.nodeCpuUsPerEvent).padStart(8)} µs/event  total ${String(r.totalCpuUsPerEvent).padStart(8)} µs/event`);
  for (const r of reference) console.log(`${String(r.tool).padEnd(38)} P=${String(r.pipeline).padStart(4)} ${String(r.requestsPerSec).padStart(10)} req/s`);
  console.log(`load average at start ${loadAverage}, at end ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  console.log(`wrote ${path.relative(root, file)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
