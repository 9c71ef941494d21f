#!/usr/bin/env node
// Memory under sustained overload: producers offer far more than the pipeline can score for a
// while; the backlog must stay in Kafka (bounded fetches, bounded inference queue, paused
// partitions), so the process's RSS and heap stay flat. Needs `npm run build` and a running stack
// (`node dist/cli/main.js stack up`). Usage: node bench/overload-memory.js [seconds=60] [events=150000]
const fs = require('node:fs');
const path = require('node:path');
const { Pipeline } = require('../dist/stages/pipeline');
const { loadTopology, validateTopology } = require('../dist/stages/load-topology');
const { builtinProcessors } = require('../dist/stages/builtin');
const { prepareFeatureSets } = require('../dist/features/prepare');
const { produceDemoEvents } = require('../dist-examples/examples/fraud/produce');
const { resolveEndpoints } = require('../dist/stack/endpoints');
const { repoRoot } = require('../dist/stack/paths');

async function main() {
  const seconds = Number(process.argv[2] ?? 60);
  const events = Number(process.argv[3] ?? 150000);
  const endpoints = resolveEndpoints();
  const root = repoRoot();
  const base = loadTopology(path.join(root, 'topologies/fraud-detection.yaml'), { registry: builtinProcessors(), baseDir: root });
  const suffix = `mem${Date.now().toString(36)}`;
  const spec = JSON.parse(JSON.stringify(base.spec));
  spec.name = `${spec.name}-${suffix}`;
  for (const t of spec.topics) t.name = `${t.name}.${suffix}`;
  spec.deadLetter.topic = `${spec.deadLetter.topic}.${suffix}`;
  for (const s of spec.stages) {
    s.input.topic = `${s.input.topic}.${suffix}`;
    s.output.topic = `${s.output.topic}.${suffix}`;
  }
  // A small inference queue, so the overload reaches the backpressure path.
  const score = spec.stages.find((s) => s.processor === 'onnx_inference');
  score.config.pool = { workers: 1, maxQueueRows: 256 };
  const topology = validateTopology(spec, base.file, { registry: builtinProcessors(), baseDir: root });
  await prepareFeatureSets(topology, endpoints.redisUrl, { resetStreaming: true });
  const pipeline = await Pipeline.start({ topology, endpoints });
  const samples = [];
  const t0 = Date.now();
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    const c = pipeline.runners.map((r) => r.counters);
    samples.push({ t: (Date.now() - t0) / 1000, rssMiB: m.rss / 2 ** 20, heapUsedMiB: m.heapUsed / 2 ** 20, scored: c[c.length - 1].produced, pauses: c.reduce((n, x) => n + x.backpressurePauses, 0) });
  }, 1000);
  // Offer everything at once (far above the ~10k/s the pipeline sustains here), in the background.
  const producing = produceDemoEvents({ ...endpoints, topic: `${base.spec.stages[0].input.topic}.${suffix}`, count: events, rate: 0, seed: 77 });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  clearInterval(timer);
  await producing;
  await pipeline.stop();
  const steady = samples.filter((s) => s.t >= 10); // after warm-up
  const range = (k) => [Math.min(...steady.map((s) => s[k])), Math.max(...steady.map((s) => s[k]))];
  const summary = {
    at: new Date().toISOString(),
    seconds,
    offeredEvents: events,
    scoredInWindow: samples[samples.length - 1].scored,
    backlogLeft: events - samples[samples.length - 1].scored,
    backpressurePauses: samples[samples.length - 1].pauses,
    rssMiB: range('rssMiB'),
    heapUsedMiB: range('heapUsedMiB'),
    samples,
  };
  const out = path.join(root, 'bench/results', `overload-memory-${summary.at.replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(out, JSON.stringify(summary, null, 2));
  const f = (r) => `${r[0].toFixed(0)}–${r[1].toFixed(0)} MiB`;
  process.stdout.write(`offered ${events} events at once; scored ${summary.scoredInWindow} in ${seconds} s (backlog left in Kafka: ${summary.backlogLeft}); backpressure pauses ${summary.backpressurePauses}\nafter 10 s warm-up: RSS ${f(summary.rssMiB)}, heap used ${f(summary.heapUsedMiB)}\nwrote ${path.relative(root, out)}\n`);
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
