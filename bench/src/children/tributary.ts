/**
 * System under test: a Tributary topology variant (see ../topologies.ts), every stage in this one
 * process via `Pipeline.start`, on the bench's suffixed topics, with the code of the checkout named
 * in the config (this one by default). `fuse` is passed through: `true` runs consecutive stages as
 * one chain, `false` each stage its own consumer group; an engine without the option ignores it.
 */
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';
import type { PipelineOptions } from '../../../src/stages/pipeline';
import { childConfig, tell } from '../common';
import { loadVariant } from '../topologies';
import { loadCode, ownCode } from '../tributary-code';

async function main(): Promise<void> {
  const cfg = childConfig();
  const code = loadCode(cfg.code ?? ownCode());
  const topology = loadVariant(code, { variant: cfg.variant ?? 'default', suffix: cfg.suffix, partitions: cfg.partitions, delivery: cfg.delivery, commit: cfg.commit, transactions: cfg.transactions, poolWorkers: cfg.poolWorkers });
  const options: PipelineOptions & { fuse?: boolean } = { topology, endpoints: { brokers: cfg.brokers, schemaRegistryUrl: cfg.schemaRegistryUrl, redisUrl: cfg.redisUrl }, fuse: cfg.fuse, ...(cfg.sharedScope ? { sharedScope: cfg.sharedScope } : {}), ...(cfg.fastForwardOnStop === false ? { fastForwardOnStop: false } : {}) };
  const pipeline = await code.pipeline.Pipeline.start(options);
  tell({ type: 'ready' });
  // BENCH_METRICS_DIR: the system's Prometheus metrics (stage, engine, streaming-state histograms)
  // are written there when it stops, to break a run's latency down by where the time went.
  const metricsDir = process.env.BENCH_METRICS_DIR;
  // ... with the moments this process's event loop was blocked for 40 ms or more (epoch ms, ms late),
  // to tell a stall in this process from one in the broker or Redis.
  const blocked: Array<[number, number]> = [];
  if (metricsDir) {
    fs.mkdirSync(metricsDir, { recursive: true });
    let expected = Date.now() + 10;
    setInterval(() => {
      const now = Date.now();
      if (now - expected >= 40) blocked.push([now, now - expected]);
      expected = now + 10;
    }, 10).unref();
  }
  // BENCH_HEAP_SAMPLE_DIR: a sampling heap profile of what survives young-generation collections
  // (objects still alive at the end of the interval, and those a full collection freed — not those
  // a scavenge freed): the allocation sites that feed the old generation, i.e. the full collections
  // that set the tail. One file per step (the bench says when a step starts: a whole run's sample
  // is dominated by its overload steps, where everything in flight survives), written as
  // <suffix>.<n>-<step label>.heapprofile (Chrome DevTools' format; n = 0 is the start-up).
  // bench/tools/heap-sites.js lists a file's allocation sites. Calibrated (item 42,
  // bench/tools/heap-sample-calibration.js): a site whose objects all die young still shows 2-4 % of
  // what it allocated — the busiest allocators of a pipeline appear whether or not they are promoted.
  const heapDir = process.env.BENCH_HEAP_SAMPLE_DIR;
  const heap = heapDir ? new inspector.Session() : undefined;
  let heapInterval = { n: 0, label: 'start' };
  let rotating = Promise.resolve();
  let stopping = false;
  const startSampling = () =>
    heap!.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false } as inspector.HeapProfiler.StartSamplingParameterType);
  const writeSample = async () => {
    const profile = await new Promise<unknown>((resolve) => heap!.post('HeapProfiler.stopSampling', (err, r) => resolve(err ? { error: err.message } : r.profile)));
    fs.writeFileSync(path.join(heapDir!, `${cfg.suffix}.${heapInterval.n}-${heapInterval.label}.heapprofile`), JSON.stringify(profile));
  };
  if (heap) {
    fs.mkdirSync(heapDir!, { recursive: true }); // a fresh directory name works as the others do
    heap.connect();
    startSampling();
    process.on('message', (m: { type?: string; label?: string }) => {
      if (m?.type !== 'step' || stopping) return;
      const label = String(m.label ?? 'step').replace(/[^A-Za-z0-9.-]+/g, '_');
      rotating = rotating.then(async () => {
        await writeSample();
        heapInterval = { n: heapInterval.n + 1, label };
        startSampling();
      });
    });
  }
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    if (heap && heapDir) {
      await rotating; // a step's file being written: the last interval starts after it
      await writeSample();
    }
    if (metricsDir) {
      const registry = (pipeline as unknown as { metrics?: { registry?: { metrics(): Promise<string> } } }).metrics?.registry;
      if (registry) fs.writeFileSync(path.join(metricsDir, `${cfg.suffix}.prom`), await registry.metrics());
      fs.writeFileSync(path.join(metricsDir, `${cfg.suffix}.blocked.json`), JSON.stringify(blocked));
    }
    await pipeline.stop();
    const counters: Record<string, number> = {};
    // today's engine exposes its stage runners; a rewritten one may not
    const runners = (pipeline as unknown as { runners?: Array<{ groupId: string; counters: Record<string, number> }> }).runners ?? [];
    for (const r of runners) for (const [k, v] of Object.entries(r.counters)) counters[`${r.groupId.split('.').pop()}.${k}`] = v;
    tell({ type: 'stopped', counters });
    // process.exit (not a signal) so that --cpu-prof writes its profile
    setTimeout(() => process.exit(0), 50);
  };
  process.on('SIGTERM', () => void stop());
  process.on('message', (m: { type?: string }) => m?.type === 'stop' && void stop());
}

main().catch((err) => {
  tell({ type: 'error', message: (err as Error).stack ?? String(err) });
  process.exit(1);
});
