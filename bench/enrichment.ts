/**
 * Enrichment throughput per consumed-batch size, against `redis-benchmark` pipelined reads measured
 * in the same run on the same Redis. Not a test: `npm run bench:enrichment` (stack must be up, or
 * REDIS_URL set). Prints a table and writes bench/results/enrichment-<time>.json.
 *
 * Modes per batch size: batch sets only, LRU off (pure Redis: pointer GET + one HMGET per entity,
 * one pipeline per batch); batch sets with the LRU warm; full vector (batch sets + the streaming
 * state: computed in this process, one commit script per batch, concurrent with the batch reads).
 * Each row also carries the CPU time per event of the Redis server (all its threads, from
 * /proc/<pid>/task/<tid>/schedstat), of this Node process, and their total.
 *
 * Flatness (the demo's five `card_activity` aggregations through the streaming state alone): Redis
 * CPU per event for events of cold entities (one event each) against events of one entity that
 * already holds 10,000 events in its 24 h window, in event-time order and out of order.
 *
 * BENCH_EVENTS, BENCH_SIZES, BENCH_MODES (comma list of: batch, lru, full), BENCH_FLAT=0 to skip it,
 * BENCH_REFERENCE=0 to skip redis-benchmark.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
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

const EVENTS = Number(process.env.BENCH_EVENTS ?? 20000);
const SIZES = (process.env.BENCH_SIZES ?? '1,16,64,256,1024').split(',').map(Number);
const MODES = (process.env.BENCH_MODES ?? 'batch,lru,full').split(',');
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

/** Measures Redis and Node CPU over `fn`, per event, in microseconds. */
async function cpuPerEvent(redisPid: number | undefined, events: number, fn: () => Promise<void>): Promise<{ redisCpuUsPerEvent: number | null; nodeCpuUsPerEvent: number; totalCpuUsPerEvent: number | null }> {
  const r0 = redisPid ? procCpuSeconds(redisPid) : 0;
  const n0 = process.cpuUsage();
  await fn();
  const n1 = process.cpuUsage(n0);
  const r1 = redisPid ? procCpuSeconds(redisPid) : 0;
  const redisUs = redisPid ? ((r1 - r0) * 1e6) / events : null;
  const nodeUs = (n1.user + n1.system) / events;
  return { redisCpuUsPerEvent: redisUs === null ? null : +redisUs.toFixed(1), nodeCpuUsPerEvent: +nodeUs.toFixed(1), totalCpuUsPerEvent: redisUs === null ? null : +(redisUs + nodeUs).toFixed(1) };
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
  const events = new TransactionGenerator({ seed: 1 }).take(EVENTS).map((g) => g.tx);
  const rows: Array<Record<string, number | string | null>> = [];

  const run = async (label: string, vector: typeof full, batchSize: number, cache: boolean, record = true) => {
    const enricher = new Enricher(vector, { redis, namespace: `bench-${Date.now()}-${label}-${batchSize}`, cache: cache ? { maxEntries: 100000, ttlMs: 600000 } : { maxEntries: 0 } });
    await enricher.init();
    const n = Math.min(EVENTS, batchSize * 400);
    if (cache) await enricher.enrich(events.slice(0, n).map((tx, i) => ({ event: tx, eventTime: tx.eventTime, topic: 'warm', partition: 0, offset: i }))); // warm the LRU
    const latencies: number[] = [];
    const t0 = process.hrtime.bigint();
    const cpu = await cpuPerEvent(redisPid, n, async () => {
      for (let i = 0; i < n; i += batchSize) {
        const s = process.hrtime.bigint();
        await enricher.enrich(events.slice(i, i + batchSize).map((tx, k) => ({ event: tx, eventTime: tx.eventTime, topic: 'bench', partition: 0, offset: i + k })));
        latencies.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
    });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    latencies.sort((a, b) => a - b);
    await enricher.streaming?.reset();
    if (!record) return;
    const row = { mode: label, batchSize, events: n, eventsPerSec: Math.round(n / secs), batchP50ms: +latencies[Math.floor(latencies.length / 2)].toFixed(3), batchP99ms: +latencies[Math.floor(latencies.length * 0.99)].toFixed(3), roundTrips: enricher.stats.roundTrips, ...cpu };
    rows.push(row);
    console.log(JSON.stringify(row));
  };
  // Warm-up (not recorded): a live stage runs for hours, so compile the hot paths (V8's optimising
  // compiler runs on background threads whose CPU counts in this process) before measuring.
  if (MODES.includes('full')) await run('warm-up', full, 100, false, false);
  else if (MODES.includes('batch')) await run('warm-up', batchOnly, 100, false, false);
  for (const size of SIZES) {
    if (MODES.includes('batch')) await run('batch-sets, no LRU', batchOnly, size, false);
    if (MODES.includes('lru')) await run('batch-sets, LRU warm', batchOnly, size, true);
    if (MODES.includes('full')) await run('full vector (batch + streaming)', full, size, false);
  }

  // Flatness: Redis CPU per event of the five card_activity aggregations, cold vs 10,000 events in the window.
  const flat: Array<Record<string, number | string | null>> = [];
  if (process.env.BENCH_FLAT !== '0') {
    const activity = topology.spec.features!.sets.find((x) => x.name === 'card_activity') as StreamingFeatureSetSpec;
    const DAY = 86_400_000;
    const T0 = 1_700_000_000_000;
    const ev = (offset: number, card: string, t: number, i: number): StreamEvent => ({ offset, eventTime: t, entities: [card], values: [[String(10 + (i % 97)), `m${i % 50}`]] });
    const measure = async (label: string, prefill: StreamEvent[], make: (i: number, offset: number) => StreamEvent, record = true) => {
      const state = new StreamingState(redis, `bench-flat-${Date.now()}-${flat.length}`, [activity]);
      const epoch = await state.takeEpoch('flat', 0);
      for (let i = 0; i < prefill.length; i += 100) await state.apply('flat', 0, epoch, prefill.slice(i, i + 100));
      const N = Number(process.env.BENCH_FLAT_EVENTS ?? 2000);
      const B = 64;
      const measured = Array.from({ length: N }, (_, i) => make(i, prefill.length + i));
      const cpu = await cpuPerEvent(redisPid, N, async () => {
        for (let i = 0; i < N; i += B) await state.apply('flat', 0, epoch, measured.slice(i, i + B));
      });
      await state.reset();
      if (!record) return;
      const row = { flatness: label, windowEvents: prefill.length, events: N, batchSize: B, ...cpu };
      flat.push(row);
      console.log(JSON.stringify(row));
    };
    const HOT = 10_000;
    const spacing = Math.floor((DAY - 3_600_000) / HOT); // 10,000 events within the last 23 h
    const hot = Array.from({ length: HOT }, (_, i) => ev(i, 'hot', T0 + i * spacing, i));
    const hotEnd = T0 + HOT * spacing;
    await measure('warm-up', hot.slice(0, 2000), (i, o) => ev(o, i % 2 ? 'hot' : `warm-${i}`, hotEnd - ((i * 7919) % 43_200_000), i), false);
    await measure('cold entities (1 event each)', [], (i, o) => ev(o, `cold-${i}`, hotEnd + i * 10, i));
    await measure('hot entity, in event-time order', hot, (i, o) => ev(o, 'hot', hotEnd + i * 10, i));
    await measure('hot entity, out of order (within 12 h)', hot, (i, o) => ev(o, 'hot', hotEnd - ((i * 7919) % 43_200_000), i));
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
  fs.writeFileSync(file, JSON.stringify({ events: EVENTS, enrichment: rows, flatness: flat, redisBenchmark: reference }, null, 2));
  console.log(`\n${'mode'.padEnd(38)} ${'batch'.padStart(6)} ${'events/s'.padStart(10)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'redis µs/ev'.padStart(12)} ${'node µs/ev'.padStart(11)} ${'total µs/ev'.padStart(12)}`);
  for (const r of rows) console.log(`${String(r.mode).padEnd(38)} ${String(r.batchSize).padStart(6)} ${String(r.eventsPerSec).padStart(10)} ${String(r.batchP50ms).padStart(8)} ${String(r.batchP99ms).padStart(8)} ${String(r.redisCpuUsPerEvent).padStart(12)} ${String(r.nodeCpuUsPerEvent).padStart(11)} ${String(r.totalCpuUsPerEvent).padStart(12)}`);
  for (const r of flat) console.log(`${String(r.flatness).padEnd(45)} redis ${String(r.redisCpuUsPerEvent).padStart(8)} µs/event  node ${String(r.nodeCpuUsPerEvent).padStart(8)} µs/event  total ${String(r.totalCpuUsPerEvent).padStart(8)} µs/event`);
  for (const r of reference) console.log(`${String(r.tool).padEnd(38)} P=${String(r.pipeline).padStart(4)} ${String(r.requestsPerSec).padStart(10)} req/s`);
  console.log(`wrote ${path.relative(root, file)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
