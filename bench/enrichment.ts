/**
 * Enrichment throughput per consumed-batch size, against `redis-benchmark` pipelined reads measured
 * in the same run on the same Redis. Not a test: `npm run bench:enrichment` (stack must be up, or
 * REDIS_URL set). Prints a table and writes bench/results/enrichment-<time>.json.
 *
 * Modes per batch size: batch sets only, LRU off (pure Redis: pointer GET + one HMGET per entity,
 * one pipeline per batch); batch sets with the LRU warm; full vector (batch sets + the Lua streaming
 * script: one round trip per batch for everything).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Redis from 'ioredis';
import { TransactionGenerator } from '../src/demo/generator';
import { Enricher, describeVector, type VectorConfig } from '../src/features/enricher';
import { batchKeys, currentVersion } from '../src/features/batch-store';
import { prepareFeatureSets } from '../src/features/prepare';
import { resolveEndpoints } from '../src/stack/endpoints';
import { repoRoot } from '../src/stack/paths';
import { loadTopology } from '../src/topology/loader';
import { builtinProcessors } from '../src/stages/builtin';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 20000);
const SIZES = (process.env.BENCH_SIZES ?? '1,16,64,256,1024').split(',').map(Number);

async function main(): Promise<void> {
  const root = repoRoot();
  const redisUrl = process.env.REDIS_URL ?? resolveEndpoints().redisUrl;
  const topology = loadTopology(path.join(root, 'topologies/fraud-detection.yaml'), { registry: builtinProcessors(), baseDir: root });
  await prepareFeatureSets(topology, redisUrl);
  const cfg = topology.spec.stages[0].config as unknown as VectorConfig & { spec: string };
  const full = describeVector(cfg, topology.spec.features, path.join(root, cfg.spec));
  const batchOnly = describeVector({ ...cfg, features: cfg.features!.filter((f) => f !== 'card_activity') }, topology.spec.features, path.join(root, cfg.spec));
  const redis = new Redis(redisUrl);
  const events = new TransactionGenerator({ seed: 1 }).take(EVENTS).map((g) => g.tx);
  const rows: Array<Record<string, number | string>> = [];

  const run = async (label: string, vector: typeof full, batchSize: number, cache: boolean) => {
    const enricher = new Enricher(vector, { redis, namespace: `bench-${Date.now()}-${label}-${batchSize}`, cache: cache ? { maxEntries: 100000, ttlMs: 600000 } : { maxEntries: 0 } });
    await enricher.init();
    const n = Math.min(EVENTS, batchSize * 400);
    if (cache) await enricher.enrich(events.slice(0, n).map((tx, i) => ({ tx, topic: 'warm', partition: 0, offset: i }))); // warm the LRU
    const latencies: number[] = [];
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i += batchSize) {
      const s = process.hrtime.bigint();
      await enricher.enrich(events.slice(i, i + batchSize).map((tx, k) => ({ tx, topic: 'bench', partition: 0, offset: i + k })));
      latencies.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    latencies.sort((a, b) => a - b);
    await enricher.streaming?.reset();
    const row = { mode: label, batchSize, events: n, eventsPerSec: Math.round(n / secs), batchP50ms: +latencies[Math.floor(latencies.length / 2)].toFixed(3), batchP99ms: +latencies[Math.floor(latencies.length * 0.99)].toFixed(3), roundTrips: enricher.stats.roundTrips };
    rows.push(row);
    console.log(JSON.stringify(row));
  };
  for (const size of SIZES) {
    await run('batch-sets, no LRU', batchOnly, size, false);
    await run('batch-sets, LRU warm', batchOnly, size, true);
    await run('full vector (batch + streaming Lua)', full, size, false);
  }

  // redis-benchmark: pipelined HMGET of a real entity hash (same fields as the card_profile reads).
  const url = new URL(redisUrl);
  const version = (await currentVersion(redis, 'card_profile'))!;
  const key = batchKeys.entity('card_profile', version, 'card-000001');
  const reference: Array<Record<string, number | string>> = [];
  for (const pipeline of [1, 16, 64, 256]) {
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
  fs.writeFileSync(file, JSON.stringify({ events: EVENTS, enrichment: rows, redisBenchmark: reference }, null, 2));
  console.log(`\n${'mode'.padEnd(38)} ${'batch'.padStart(6)} ${'events/s'.padStart(10)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}`);
  for (const r of rows) console.log(`${String(r.mode).padEnd(38)} ${String(r.batchSize).padStart(6)} ${String(r.eventsPerSec).padStart(10)} ${String(r.batchP50ms).padStart(8)} ${String(r.batchP99ms).padStart(8)}`);
  for (const r of reference) console.log(`${String(r.tool).padEnd(38)} P=${String(r.pipeline).padStart(4)} ${String(r.requestsPerSec).padStart(10)} req/s`);
  console.log(`wrote ${path.relative(root, file)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
